/*  =========================================================================
    api_projects - the project resource: projects, and their requirements
    and database (not available yet: status only)

    Choices where API.md is silent (documented in the README):
    - Project names: 1..100 characters after trimming, any printable text
      (no control characters); descriptions at most 1000 characters.
    - A slug is the name's (API.md's "Slugs"); a rename keeps the slug when
      the new name gives the same base, so gateway URLs stay put.
    - Renaming sets "routes <id>" (the gateway's slug map must forget the
      old slug); deleting sets "project <id>" (everything cached goes).
    - Databases: these handlers only record what the user asked for in
      project_databases (state provisioning / deprovisioning) and answer at
      once; the database actor (actors/database.c) does the provider's work
      off every loop and moves the row to ready, failed or away. has_database
      is true only once the database is ready. A failed attempt stays as a
      row with state failed and its error until the next provision.
      Deleting a project turns its database into a deprovisioning job.
    ========================================================================= */

#include <czmq.h>
#include "core/api_call.h"
#include "core/layers.h"

//  API.md's Project, has_database included (one query for a whole list;
//  s_project_fix turns its 0/1 into a JSON boolean)
#define PROJECT_SELECT \
    "SELECT p.id, p.name, p.slug, p.description, p.status," \
    "       (SELECT count(*) FROM functions f WHERE f.project_id = p.id) AS function_count," \
    "       p.requirements_txt, p.created_at, p.updated_at," \
    "       EXISTS (SELECT 1 FROM project_databases d" \
    "                WHERE d.project_id = p.id AND d.state = 'ready') AS has_database" \
    "  FROM projects p"


//  --------------------------------------------------------------------------
//  Lookups scoped by user

//  A computed column has no declared type, so the store reads has_database
//  as a number
static void
s_project_fix (cJSON *project)
{
    cJSON *has_database = cJSON_GetObjectItem (project, "has_database");
    if (has_database)
        cJSON_ReplaceItemInObject (project, "has_database",
                                   cJSON_CreateBool (cJSON_IsNumber (has_database) && has_database->valueint != 0));
}

//  The project as API.md's Project object, or NULL
static cJSON *
s_project_json (api_call_t *call, const char *project_id)
{
    cJSON *project = store_query_row (call->store, PROJECT_SELECT " WHERE p.id = ? AND p.user_id = ?",
                                      "ss", project_id, call->req->user_id);
    if (project)
        s_project_fix (project);
    return project;
}

bool
api_project_owned (api_call_t *call, const char *project_id)
{
    if (!util_is_id (project_id))
        return false;
    cJSON *row = store_query_row (call->store, "SELECT id FROM projects WHERE id = ? AND user_id = ?",
                                  "ss", project_id, call->req->user_id);
    cJSON_Delete (row);
    return row != NULL;
}

//  A free slug for name: its base, else base-1, base-2, ... Call inside a
//  transaction. keep_id: a project whose current slug may be kept.
static char *
s_slug_unique (api_call_t *call, const char *name, const char *keep_id)
{
    char *base = util_slug_from_name (name);
    if (keep_id) {
        cJSON *row = store_query_row (call->store, "SELECT slug FROM projects WHERE id = ?", "s", keep_id);
        const char *current = row? cJSON_GetObjectItem (row, "slug")->valuestring: NULL;
        if (current && util_slug_has_base (current, base)) {
            char *kept = strdup (current);
            cJSON_Delete (row);
            free (base);
            return kept;
        }
        cJSON_Delete (row);
    }
    char *slug = strdup (base);
    for (int suffix = 1; ; suffix++) {
        cJSON *row = store_query_row (call->store, "SELECT id FROM projects WHERE slug = ?", "s", slug);
        if (!row)
            break;
        cJSON_Delete (row);
        free (slug);
        slug = zsys_sprintf ("%s-%d", base, suffix);
    }
    free (base);
    return slug;
}


//  --------------------------------------------------------------------------
//  Projects

int
api_projects_list (api_call_t *call)
{
    cJSON *projects = store_query (call->store,
        PROJECT_SELECT " WHERE p.user_id = ? ORDER BY p.created_at DESC, p.rowid DESC", "s", call->req->user_id);
    cJSON *project;
    cJSON_ArrayForEach (project, projects)
        s_project_fix (project);
    return api_reply (call, 200, projects);
}

int
api_project_create (api_call_t *call)
{
    if (api_body_parse (call))
        return 0;
    char *name = api_name (call, "name", true);
    const char *description = api_string (call, "description", false, API_DESCRIPTION_MAX_CHARS, true);
    if (api_has_errors (call)) {
        free (name);
        return api_reply_invalid (call);
    }
    char id [UTIL_ID_SIZE], now [UTIL_TIME_SIZE];
    util_new_id (id);
    util_now_iso (now);
    if (store_begin (call->store)) {
        free (name);
        return api_reply_store_error (call);
    }
    char *slug = s_slug_unique (call, name, NULL);
    int rc = store_exec (call->store,
        "INSERT INTO projects (id, user_id, name, slug, description, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)", "sssssss",
        id, call->req->user_id, name, slug, description? description: "", now, now);
    free (slug);
    free (name);
    if (rc == 1 && api_over_quota (call, call->api->quotas->max_projects, "max-projects",
                                   "You already have as many projects as one user may keep; delete one first",
                                   "SELECT count (*) FROM projects WHERE user_id = ?", call->req->user_id))
        return 0;
    if (rc != 1 || store_commit (call->store))
        return api_reply_store_error (call);
    return api_reply (call, 200, s_project_json (call, id));
}

int
api_project_get (api_call_t *call)
{
    const char *project_id = call->param [0];
    cJSON *project = util_is_id (project_id)? s_project_json (call, project_id): NULL;
    if (!project)
        return api_reply_detail (call, 404, "Project not found");
    return api_reply (call, 200, project);
}

int
api_project_update (api_call_t *call)
{
    const char *project_id = call->param [0];
    if (api_body_parse (call))
        return 0;
    char *name = api_name (call, "name", false);
    const char *description = api_string (call, "description", false, API_DESCRIPTION_MAX_CHARS, true);
    if (api_has_errors (call)) {
        free (name);
        return api_reply_invalid (call);
    }
    if (store_begin (call->store)) {
        free (name);
        return api_reply_store_error (call);
    }
    if (!api_project_owned (call, project_id)) {
        free (name);
        return api_reply_detail (call, 404, "Project not found");
    }
    char now [UTIL_TIME_SIZE];
    util_now_iso (now);
    int rc = 0;
    if (name) {
        char *slug = s_slug_unique (call, name, project_id);
        rc = store_exec (call->store, "UPDATE projects SET name = ?, slug = ? WHERE id = ?",
                         "sss", name, slug, project_id);
        free (slug);
    }
    if (rc >= 0 && description)
        rc = store_exec (call->store, "UPDATE projects SET description = ? WHERE id = ?",
                         "ss", description, project_id);
    if (rc >= 0)
        rc = store_exec (call->store, "UPDATE projects SET updated_at = ? WHERE id = ?",
                         "ss", now, project_id);
    free (name);
    if (rc < 0 || store_commit (call->store))
        return api_reply_store_error (call);
    //  The slug may have changed: the gateway's slug map (kept with the
    //  route tables) must forget it; env and functions are unchanged
    api_invalidate (call, "routes", project_id);
    return api_reply (call, 200, s_project_json (call, project_id));
}

int
api_project_delete (api_call_t *call)
{
    const char *project_id = call->param [0];
    if (!util_is_id (project_id))
        return api_reply_detail (call, 404, "Project not found");
    //  Its database goes with it: a failed attempt's row simply, a live
    //  (or coming) database as a deprovisioning job for the database actor
    if (store_begin (call->store))
        return api_reply_store_error (call);
    int rc = store_exec (call->store, "DELETE FROM projects WHERE id = ? AND user_id = ?",
                         "ss", project_id, call->req->user_id);
    if (rc == 1)
        rc = store_exec (call->store, "DELETE FROM project_databases WHERE project_id = ? AND state = 'failed'",
                         "s", project_id) < 0? -1: 1;
    if (rc == 1) {
        char now [UTIL_TIME_SIZE];
        util_now_iso (now);
        rc = store_exec (call->store, "UPDATE project_databases SET state = 'deprovisioning', updated_at = ?"
                         " WHERE project_id = ?", "ss", now, project_id) < 0? -1: 1;
    }
    if (rc < 0 || (rc == 1 && store_commit (call->store)))
        return api_reply_store_error (call);
    if (rc == 0)
        return api_reply_detail (call, 404, "Project not found");
    api_invalidate (call, "project", project_id);
    return api_reply_detail (call, 200, "Project deleted");
}


//  --------------------------------------------------------------------------
//  Requirements: the text is checked and stored, and a build queued, here;
//  the builder actor (actors/builder.c) builds the layer off every loop and
//  switches the project to it. A text whose layer is ready already (another
//  project's, or an earlier text of this one) switches at once, no build.

//  The project's requirements and build status (API.md): build_status and
//  build_log are the build of the current text's layer; layer_size_bytes,
//  built_at and active_hash describe the layer functions use now
static cJSON *
s_requirements_status (api_call_t *call, const char *project_id)
{
    cJSON *row = store_query_row (call->store,
        "SELECT p.requirements_txt, p.requirements_hash, p.layer_active,"
        "       w.state AS wanted_state, w.log AS wanted_log,"
        "       a.size_bytes AS active_size, a.built_at AS active_built_at"
        "  FROM projects p"
        "  LEFT JOIN layers w ON w.hash = p.requirements_hash"
        "  LEFT JOIN layers a ON a.hash = p.layer_active AND a.state = 'ready'"
        " WHERE p.id = ?", "s", project_id);
    if (!row)
        return NULL;
    const char *text = cJSON_GetStringValue (cJSON_GetObjectItem (row, "requirements_txt"));
    const char *wanted = cJSON_GetStringValue (cJSON_GetObjectItem (row, "requirements_hash"));
    const char *active = cJSON_GetStringValue (cJSON_GetObjectItem (row, "layer_active"));
    const char *state = cJSON_GetStringValue (cJSON_GetObjectItem (row, "wanted_state"));
    const char *log = cJSON_GetStringValue (cJSON_GetObjectItem (row, "wanted_log"));
    const char *built_at = cJSON_GetStringValue (cJSON_GetObjectItem (row, "active_built_at"));
    cJSON *size = cJSON_GetObjectItem (row, "active_size");
    cJSON *status = cJSON_CreateObject ();
    cJSON_AddStringToObject (status, "requirements_txt", text? text: "");
    if (wanted)
        cJSON_AddStringToObject (status, "requirements_hash", wanted);
    else
        cJSON_AddNullToObject (status, "requirements_hash");
    cJSON_AddBoolToObject (status, "has_custom_image", active != NULL);
    cJSON_AddStringToObject (status, "build_status", wanted && state? state: "none");
    cJSON_AddStringToObject (status, "build_log", wanted && log? log: "");
    if (active && cJSON_IsNumber (size))
        cJSON_AddNumberToObject (status, "layer_size_bytes", size->valuedouble);
    else
        cJSON_AddNullToObject (status, "layer_size_bytes");
    if (active && built_at)
        cJSON_AddStringToObject (status, "built_at", built_at);
    else
        cJSON_AddNullToObject (status, "built_at");
    if (active)
        cJSON_AddStringToObject (status, "active_hash", active);
    else
        cJSON_AddNullToObject (status, "active_hash");
    cJSON_Delete (row);
    return status;
}

//  Dependency builds one user may have queued or building at once
#define API_BUILDS_PER_USER 4

static int
s_requirements_put (api_call_t *call, const char *project_id)
{
    if (api_body_parse (call))
        return 0;
    const char *text = api_string (call, "requirements_txt", true, LAYERS_TEXT_MAX, false);
    char *normalised = NULL;
    char error [256];
    if (text && layers_normalise (text, strlen (text), &normalised, error, sizeof error))
        api_invalid (call, "requirements_txt", "value_error", "%s", error);
    if (api_has_errors (call))
        return api_reply_invalid (call);
    char key [LAYERS_KEY_SIZE] = "";
    if (*normalised)
        layers_key (normalised, key);
    char now [UTIL_TIME_SIZE];
    util_now_iso (now);
    if (store_begin (call->store)) {
        free (normalised);
        return api_reply_store_error (call);
    }
    if (!api_project_owned (call, project_id)) {
        free (normalised);
        return api_reply_detail (call, 404, "Project not found");
    }
    //  The builder builds one layer at a time, round the users; a cap on
    //  what one user may have waiting keeps one from filling the queue.
    //  Only a PUT that adds a build counts (a key not yet queued, building
    //  or ready); the project's own current layer does not.
    if (*key) {
        cJSON *queued = store_query_row (call->store,
            "SELECT (SELECT COUNT(*) FROM layers WHERE hash = ? AND state IN ('queued', 'building', 'ready')) AS known,"
            "  (SELECT COUNT(DISTINCT l.hash) FROM layers l JOIN projects p ON p.requirements_hash = l.hash"
            "    WHERE p.user_id = ? AND p.id != ? AND l.state IN ('queued', 'building')) AS waiting",
            "sss", key, call->req->user_id, project_id);
        if (!queued) {
            free (normalised);
            return api_reply_store_error (call);
        }
        bool adds = cJSON_GetNumberValue (cJSON_GetObjectItem (queued, "known")) == 0;
        double waiting = cJSON_GetNumberValue (cJSON_GetObjectItem (queued, "waiting"));
        cJSON_Delete (queued);
        if (adds && waiting >= API_BUILDS_PER_USER) {
            free (normalised);
            return api_reply_detail (call, 429, "Too many dependency builds waiting: at most %d per user;"
                                     " try again when one has finished", API_BUILDS_PER_USER);
        }
    }
    cJSON *before = store_query_row (call->store, "SELECT layer_active FROM projects WHERE id = ?", "s", project_id);
    const char *active = before? cJSON_GetStringValue (cJSON_GetObjectItem (before, "layer_active")): NULL;
    char *active_before = active? strdup (active): NULL;
    cJSON_Delete (before);
    int rc = store_exec (call->store, "UPDATE projects SET requirements_txt = ?, requirements_hash = ?, updated_at = ?"
                         " WHERE id = ?", "ssss", text, *key? key: NULL, now, project_id);
    if (rc >= 0 && *key)
        //  A new key is queued; a failed one is tried again (the index may
        //  have the package now); queued, building and ready ones stay
        rc = store_exec (call->store,
            "INSERT INTO layers (hash, requirements, state, created_at, updated_at) VALUES (?, ?, 'queued', ?, ?)"
            " ON CONFLICT (hash) DO UPDATE SET state = 'queued', log = '', updated_at = excluded.updated_at"
            " WHERE layers.state = 'failed'", "ssss", key, normalised, now, now);
    if (rc >= 0) {
        //  No requirements: no layer. A ready layer: use it now.
        if (!*key)
            rc = store_exec (call->store, "UPDATE projects SET layer_active = NULL WHERE id = ?", "s", project_id);
        else
            rc = store_exec (call->store, "UPDATE projects SET layer_active = ? WHERE id = ?"
                             " AND EXISTS (SELECT 1 FROM layers WHERE hash = ? AND state = 'ready')",
                             "sss", key, project_id, key);
    }
    free (normalised);
    if (rc < 0 || store_commit (call->store)) {
        free (active_before);
        return api_reply_store_error (call);
    }
    cJSON *status = s_requirements_status (call, project_id);
    const char *active_now = status? cJSON_GetStringValue (cJSON_GetObjectItem (status, "active_hash")): NULL;
    //  The layer changed: cached contexts go and warm environments retire,
    //  as for an env var change, so the next call runs with the new one
    if ((active_before == NULL) != (active_now == NULL) || (active_before && active_now && strneq (active_before, active_now)))
        api_invalidate (call, "project", project_id);
    else
    if (*key && !(active_now && streq (active_now, key)))
        //  A layer on its way: gateway drops the contexts it holds and
        //  loads them for each call until the builder has switched
        //  (store_function_load's unsettled), so a call after the user saw
        //  the build ready runs with it
        api_invalidate (call, "contexts", project_id);
    free (active_before);
    return api_reply (call, 200, status);
}

int
api_requirements (api_call_t *call)
{
    const char *project_id = call->param [0];
    if (streq (call->req->method, "PUT"))
        return s_requirements_put (call, project_id);
    if (!api_project_owned (call, project_id))
        return api_reply_detail (call, 404, "Project not found");
    return api_reply (call, 200, s_requirements_status (call, project_id));
}

//  The URL with its password shown as ***: scheme://user:***@host...
//  The user info ends at the LAST '@' before the path, since a password
//  may hold an unencoded '@' (and anything else but '/'); ending the
//  authority at '/' only, not at '?' or '#' as RFC 3986 does, masks a
//  password holding those too. Masking too much is harmless here, leaking
//  any of the password is not.
static char *
s_database_url_masked (const char *url)
{
    const char *start = strstr (url, "://");
    if (!start)
        return strdup (url);
    const char *authority = start + 3;
    const char *end = authority + strcspn (authority, "/");
    const char *at = NULL;
    for (const char *cursor = authority; cursor < end; cursor++)
        if (*cursor == '@')
            at = cursor;
    const char *colon = at? memchr (authority, ':', (size_t) (at - authority)): NULL;
    if (!colon)
        return strdup (url);
    return zsys_sprintf ("%.*s:***%s", (int) (colon - url), url, at);
}

//  API.md's database status of a project the caller owns
static cJSON *
s_database_status (api_call_t *call, const char *project_id)
{
    cJSON *row = store_query_row (call->store,
        "SELECT provider, state, database_url, external_id, detail FROM project_databases WHERE project_id = ?",
        "s", project_id);
    cJSON *status = cJSON_CreateObject ();
    const char *state = row? cJSON_GetStringValue (cJSON_GetObjectItem (row, "state")): NULL;
    const char *provider = row? cJSON_GetStringValue (cJSON_GetObjectItem (row, "provider")): NULL;
    const char *url = row? cJSON_GetStringValue (cJSON_GetObjectItem (row, "database_url")): NULL;
    const char *external = row? cJSON_GetStringValue (cJSON_GetObjectItem (row, "external_id")): NULL;
    const char *detail = row? cJSON_GetStringValue (cJSON_GetObjectItem (row, "detail")): NULL;
    bool ready = state && streq (state, "ready");
    cJSON_AddBoolToObject (status, "has_database", ready);
    if (ready && url) {
        char *masked = s_database_url_masked (url);
        cJSON_AddStringToObject (status, "database_url", masked);
        free (masked);
    }
    else
        cJSON_AddNullToObject (status, "database_url");
    if (ready && external && provider && streq (provider, "neon"))
        cJSON_AddStringToObject (status, "neon_project_id", external);
    else
        cJSON_AddNullToObject (status, "neon_project_id");
    if (provider)
        cJSON_AddStringToObject (status, "provider", provider);
    else
        cJSON_AddNullToObject (status, "provider");
    if (state)
        cJSON_AddStringToObject (status, "status", state);
    else
        cJSON_AddNullToObject (status, "status");
    if (state && streq (state, "failed") && detail)
        cJSON_AddStringToObject (status, "error", detail);
    cJSON_Delete (row);
    return status;
}

int
api_database_get (api_call_t *call)
{
    if (!api_project_owned (call, call->param [0]))
        return api_reply_detail (call, 404, "Project not found");
    return api_reply (call, 200, s_database_status (call, call->param [0]));
}

//  Record the wish; the database actor provisions within a moment and
//  the UI polls until status is ready (or failed)
int
api_database_provision (api_call_t *call)
{
    const char *project_id = call->param [0];
    if (store_begin (call->store))
        return api_reply_store_error (call);
    if (!api_project_owned (call, project_id))
        return api_reply_detail (call, 404, "Project not found");
    cJSON *row = store_query_row (call->store, "SELECT state, detail FROM project_databases WHERE project_id = ?",
                                  "s", project_id);
    const char *state = row? cJSON_GetStringValue (cJSON_GetObjectItem (row, "state")): NULL;
    if (state && strneq (state, "failed")) {
        //  A deletion that keeps failing is retried with a growing wait
        //  (actors/database.c): say why it is not gone yet
        const char *detail = cJSON_GetStringValue (cJSON_GetObjectItem (row, "detail"));
        int rc = streq (state, "ready")? api_reply_detail (call, 409, "Project already has a database")
               : streq (state, "provisioning")? api_reply_detail (call, 409, "The project's database is being provisioned")
               : detail? api_reply_detail (call, 409, "The project's database is being deprovisioned, and its last "
                                           "attempt failed (%s); it is retried with a growing wait, try again once "
                                           "it is gone", detail)
               : api_reply_detail (call, 409, "The project's database is being deprovisioned; try again shortly");
        cJSON_Delete (row);
        return rc;
    }
    cJSON_Delete (row);
    char now [UTIL_TIME_SIZE];
    util_now_iso (now);
    int rc = store_exec (call->store,
        "INSERT INTO project_databases (project_id, state, created_at, updated_at) VALUES (?, 'provisioning', ?, ?)"
        " ON CONFLICT (project_id) DO UPDATE SET state = 'provisioning', provider = NULL, database_url = NULL,"
        " mount_source = NULL, mount_target = NULL, file_limit_mb = 0, external_id = NULL, detail = NULL,"
        " created_at = excluded.created_at, updated_at = excluded.updated_at", "sss", project_id, now, now);
    if (rc < 0 || store_commit (call->store))
        return api_reply_store_error (call);
    //  The database actor commits ready, then tells gateway: meanwhile
    //  gateway loads the project's contexts for each call (unsettled), so a
    //  call after the user saw ready has DATABASE_URL. Environments stay
    api_invalidate (call, "contexts", project_id);
    return api_reply (call, 200, s_database_status (call, project_id));
}

//  Functions lose DATABASE_URL at once (only ready rows give it), so the
//  project's environments are retired now; the actor drops the database
int
api_database_deprovision (api_call_t *call)
{
    const char *project_id = call->param [0];
    if (store_begin (call->store))
        return api_reply_store_error (call);
    if (!api_project_owned (call, project_id))
        return api_reply_detail (call, 404, "Project not found");
    char now [UTIL_TIME_SIZE];
    util_now_iso (now);
    int rc = store_exec (call->store, "UPDATE project_databases SET state = 'deprovisioning', updated_at = ?"
                         " WHERE project_id = ? AND state IN ('ready', 'provisioning')", "ss", now, project_id);
    if (rc == 0)
        return api_reply_detail (call, 400, "Project has no database");
    if (rc < 0 || store_commit (call->store))
        return api_reply_store_error (call);
    api_invalidate (call, "project", project_id);
    return api_reply (call, 200, s_database_status (call, project_id));
}


//  --------------------------------------------------------------------------
//  Selftest

void
api_projects_test (bool verbose)
{
    printf ("api_projects: ");
    store_t *store = store_new (":memory:");
    assert (store);
    api_t *api = api_new (store);
    char *inval = NULL;
    char path [256], body [512];
    cJSON *reply;

    //  Not-yet endpoints: 404 for a project that is not the caller's, then
    //  501; the database status is there already
    api_test_detail (api_test_request (api, "alice", "GET", "/api/projects/abcdefabcdef/requirements",
                                       NULL, NULL, 404, NULL), "Project not found");
    api_test_detail (api_test_request (api, "alice", "POST", "/api/projects/abcdefabcdef/database/provision",
                                       NULL, NULL, 404, NULL), "Project not found");
    api_test_detail (api_test_request (api, "alice", "GET", "/api/projects/abcdefabcdef/database",
                                       NULL, NULL, 404, NULL), "Project not found");
    char *later = api_test_create (api, "alice", "/api/projects", "{\"name\":\"Later\"}");
    snprintf (path, sizeof path, "/api/projects/%s/requirements", later);
    reply = api_test_request (api, "alice", "GET", path, NULL, NULL, 200, NULL);
    assert (streq (api_test_str (reply, "build_status"), "none"));
    assert (cJSON_IsNull (cJSON_GetObjectItem (reply, "requirements_hash")));
    assert (cJSON_IsNull (cJSON_GetObjectItem (reply, "active_hash")));
    assert (cJSON_IsFalse (cJSON_GetObjectItem (reply, "has_custom_image")));
    cJSON_Delete (reply);
    api_test_detail (api_test_request (api, "bob", "GET", path, NULL, NULL, 404, NULL), "Project not found");
    api_test_detail (api_test_request (api, "bob", "PUT", path, NULL, "{\"requirements_txt\":\"x\"}", 404, NULL),
                     "Project not found");
    api_test_invalid (api_test_request (api, "alice", "PUT", path, NULL, "{}", 422, NULL), "body", "requirements_txt");
    api_test_invalid (api_test_request (api, "alice", "PUT", path, NULL, "{\"requirements_txt\":\"-e .\"}", 422, NULL),
                      "body", "requirements_txt");
    //  Queued: the key is known at once; the same text elsewhere shares it
    reply = api_test_request (api, "alice", "PUT", path, NULL, "{\"requirements_txt\":\"b\\na # x\\n\"}", 200, &inval);
    //  The layer is on its way: gateway drops the cached contexts (not the
    //  environments) and loads them per call until the builder switches
    char contexts [64];
    snprintf (contexts, sizeof contexts, "contexts %s", later);
    assert (inval && streq (inval, contexts));
    zstr_free (&inval);
    assert (streq (api_test_str (reply, "build_status"), "queued"));
    assert (streq (api_test_str (reply, "requirements_txt"), "b\na # x\n"));
    char key [LAYERS_KEY_SIZE];
    layers_key ("a\nb", key);
    assert (streq (api_test_str (reply, "requirements_hash"), key));
    assert (cJSON_IsNull (cJSON_GetObjectItem (reply, "active_hash")));
    cJSON_Delete (reply);
    //  What the builder does once it is built; a project that asks for it
    //  then switches at once and the gateway is told
    assert (store_exec (store, "UPDATE layers SET state = 'ready', size_bytes = 42, built_at = 'T', log = 'done'"
                        " WHERE hash = ?", "s", key) == 1);
    char *sharing = api_test_create (api, "alice", "/api/projects", "{\"name\":\"Sharing\"}");
    char sharing_path [128];
    snprintf (sharing_path, sizeof sharing_path, "/api/projects/%s/requirements", sharing);
    reply = api_test_request (api, "alice", "PUT", sharing_path, NULL, "{\"requirements_txt\":\"a\\nb\"}", 200, &inval);
    assert (streq (api_test_str (reply, "build_status"), "ready"));
    assert (streq (api_test_str (reply, "active_hash"), key));
    assert (api_test_num (reply, "layer_size_bytes") == 42);
    assert (streq (api_test_str (reply, "built_at"), "T"));
    assert (cJSON_IsTrue (cJSON_GetObjectItem (reply, "has_custom_image")));
    assert (inval && strncmp (inval, "project ", 8) == 0);
    zstr_free (&inval);
    cJSON_Delete (reply);
    //  Nothing asked for: no layer
    reply = api_test_request (api, "alice", "PUT", sharing_path, NULL, "{\"requirements_txt\":\"# none\"}", 200, &inval);
    assert (streq (api_test_str (reply, "build_status"), "none"));
    assert (cJSON_IsNull (cJSON_GetObjectItem (reply, "active_hash")));
    assert (inval && strncmp (inval, "project ", 8) == 0);
    zstr_free (&inval);
    cJSON_Delete (reply);
    //  At most API_BUILDS_PER_USER builds waiting per user: the next new
    //  one is a 429; one already queued or built is not a new build, and
    //  another user is not held back
    {
        char *many [API_BUILDS_PER_USER + 1];
        char many_path [128];
        for (int index = 0; index <= API_BUILDS_PER_USER; index++) {
            many [index] = api_test_create (api, "alice", "/api/projects", "{\"name\":\"Many\"}");
            snprintf (many_path, sizeof many_path, "/api/projects/%s/requirements", many [index]);
            char body [64];
            snprintf (body, sizeof body, "{\"requirements_txt\":\"pkg%d\"}", index);
            if (index < API_BUILDS_PER_USER)
                cJSON_Delete (api_test_request (api, "alice", "PUT", many_path, NULL, body, 200, NULL));
            else
                api_test_detail (api_test_request (api, "alice", "PUT", many_path, NULL, body, 429, NULL),
                                 "Too many dependency builds waiting: at most 4 per user;"
                                 " try again when one has finished");
        }
        //  The same text as a queued one, and a built one, add no build
        cJSON_Delete (api_test_request (api, "alice", "PUT", many_path, NULL, "{\"requirements_txt\":\"pkg0\"}", 200, NULL));
        cJSON_Delete (api_test_request (api, "alice", "PUT", many_path, NULL, "{\"requirements_txt\":\"a\\nb\"}", 200, NULL));
        //  A project may change its own waiting layer for another
        snprintf (many_path, sizeof many_path, "/api/projects/%s/requirements", many [0]);
        cJSON_Delete (api_test_request (api, "alice", "PUT", many_path, NULL, "{\"requirements_txt\":\"pkg9\"}", 200, NULL));
        char *other = api_test_create (api, "bob", "/api/projects", "{\"name\":\"Bob capped\"}");
        snprintf (many_path, sizeof many_path, "/api/projects/%s/requirements", other);
        cJSON_Delete (api_test_request (api, "bob", "PUT", many_path, NULL, "{\"requirements_txt\":\"pkg7\"}", 200, NULL));
        zstr_free (&other);
        for (int index = 0; index <= API_BUILDS_PER_USER; index++) {
            snprintf (many_path, sizeof many_path, "/api/projects/%s", many [index]);
            cJSON_Delete (api_test_request (api, "alice", "DELETE", many_path, NULL, NULL, 200, NULL));
            zstr_free (&many [index]);
        }
    }
    snprintf (sharing_path, sizeof sharing_path, "/api/projects/%s", sharing);
    cJSON_Delete (api_test_request (api, "alice", "DELETE", sharing_path, NULL, NULL, 200, NULL));
    zstr_free (&sharing);
    snprintf (path, sizeof path, "/api/projects/%s/database", later);
    reply = api_test_request (api, "alice", "GET", path, NULL, NULL, 200, NULL);
    assert (cJSON_IsFalse (cJSON_GetObjectItem (reply, "has_database")));
    assert (cJSON_IsNull (cJSON_GetObjectItem (reply, "database_url")));
    assert (cJSON_IsNull (cJSON_GetObjectItem (reply, "neon_project_id")));
    assert (cJSON_IsNull (cJSON_GetObjectItem (reply, "status")));
    cJSON_Delete (reply);
    api_test_detail (api_test_request (api, "bob", "GET", path, NULL, NULL, 404, NULL), "Project not found");

    //  Databases: provision records a job and answers at once; a second
    //  one is a 409; deprovision of none is a 400
    snprintf (path, sizeof path, "/api/projects/%s/database/deprovision", later);
    api_test_detail (api_test_request (api, "alice", "DELETE", path, NULL, NULL, 400, NULL), "Project has no database");
    snprintf (path, sizeof path, "/api/projects/%s/database/provision", later);
    api_test_detail (api_test_request (api, "alice", "GET", path, NULL, NULL, 405, NULL), "Method not allowed");
    api_test_detail (api_test_request (api, "bob", "POST", path, NULL, NULL, 404, NULL), "Project not found");
    reply = api_test_request (api, "alice", "POST", path, NULL, NULL, 200, &inval);
    assert (cJSON_IsFalse (cJSON_GetObjectItem (reply, "has_database")));
    assert (streq (api_test_str (reply, "status"), "provisioning"));
    assert (inval && streq (inval, contexts));      //  contexts, not environments
    zstr_free (&inval);
    cJSON_Delete (reply);
    api_test_detail (api_test_request (api, "alice", "POST", path, NULL, NULL, 409, NULL),
                     "The project's database is being provisioned");
    //  What the database actor does when it is made
    assert (store_exec (store, "UPDATE project_databases SET state = 'ready', provider = 'postgres',"
                        " database_url = 'postgresql://clowdy_x:secret@/clowdy_x?host=/opt/postgresql&port=5432'"
                        " WHERE project_id = ?", "s", later) == 1);
    api_test_detail (api_test_request (api, "alice", "POST", path, NULL, NULL, 409, NULL),
                     "Project already has a database");
    snprintf (path, sizeof path, "/api/projects/%s/database", later);
    reply = api_test_request (api, "alice", "GET", path, NULL, NULL, 200, NULL);
    assert (cJSON_IsTrue (cJSON_GetObjectItem (reply, "has_database")));
    assert (streq (api_test_str (reply, "database_url"), "postgresql://clowdy_x:***@/clowdy_x?host=/opt/postgresql&port=5432"));
    assert (streq (api_test_str (reply, "provider"), "postgres"));
    assert (streq (api_test_str (reply, "status"), "ready"));
    cJSON_Delete (reply);
    snprintf (path, sizeof path, "/api/projects/%s", later);
    reply = api_test_request (api, "alice", "GET", path, NULL, NULL, 200, NULL);
    assert (cJSON_IsTrue (cJSON_GetObjectItem (reply, "has_database")));
    cJSON_Delete (reply);
    //  The list says it of each project, from the one query
    {
        char *plain = api_test_create (api, "alice", "/api/projects", "{\"name\":\"Plain\"}");
        reply = api_test_request (api, "alice", "GET", "/api/projects", NULL, NULL, 200, NULL);
        assert (cJSON_GetArraySize (reply) == 2);
        cJSON *each;
        cJSON_ArrayForEach (each, reply) {
            cJSON *has_database = cJSON_GetObjectItem (each, "has_database");
            assert (streq (api_test_str (each, "id"), later)? cJSON_IsTrue (has_database)
                                                           : cJSON_IsFalse (has_database));
        }
        cJSON_Delete (reply);
        snprintf (path, sizeof path, "/api/projects/%s", plain);
        cJSON_Delete (api_test_request (api, "alice", "DELETE", path, NULL, NULL, 200, NULL));
        zstr_free (&plain);
    }
    snprintf (path, sizeof path, "/api/projects/%s/database/deprovision", later);
    reply = api_test_request (api, "alice", "DELETE", path, NULL, NULL, 200, &inval);
    assert (cJSON_IsFalse (cJSON_GetObjectItem (reply, "has_database")));
    assert (streq (api_test_str (reply, "status"), "deprovisioning"));
    assert (inval && strncmp (inval, "project ", 8) == 0);
    zstr_free (&inval);
    cJSON_Delete (reply);
    api_test_detail (api_test_request (api, "alice", "DELETE", path, NULL, NULL, 400, NULL), "Project has no database");
    //  A failed attempt may be provisioned again; deleting the project
    //  turns a live database into a deprovisioning job
    assert (store_exec (store, "UPDATE project_databases SET state = 'failed', detail = 'Neon: no'"
                        " WHERE project_id = ?", "s", later) == 1);
    snprintf (path, sizeof path, "/api/projects/%s/database", later);
    reply = api_test_request (api, "alice", "GET", path, NULL, NULL, 200, NULL);
    assert (streq (api_test_str (reply, "status"), "failed"));
    assert (streq (api_test_str (reply, "error"), "Neon: no"));
    cJSON_Delete (reply);
    snprintf (path, sizeof path, "/api/projects/%s/database/provision", later);
    cJSON_Delete (api_test_request (api, "alice", "POST", path, NULL, NULL, 200, NULL));
    {
        char *masked = s_database_url_masked ("sqlite:////opt/database/db.sqlite3");
        assert (streq (masked, "sqlite:////opt/database/db.sqlite3"));
        free (masked);
        //  No part of a password shows, whatever it holds but '/'; an '@'
        //  after the path is not the user info's
        const char *cases [][2] = {
            { "postgresql://u:p@w@host/db", "postgresql://u:***@host/db" },
            { "postgresql://u:p@w@host", "postgresql://u:***@host" },
            { "postgresql://u:p?x#y:z@host:5432/db", "postgresql://u:***@host:5432/db" },
            { "postgresql://u:@host/db", "postgresql://u:***@host/db" },
            { "postgresql://u:p@/db?host=/run/pg&x=a@b", "postgresql://u:***@/db?host=/run/pg&x=a@b" },
            { "postgresql://u:p@host/db?x=a:b@c", "postgresql://u:***@host/db?x=a:b@c" },
            { "postgresql://u@host/db", "postgresql://u@host/db" },
            { "postgresql://host/db?x=a:b@c", "postgresql://host/db?x=a:b@c" },
            { "postgresql://host:5432/db", "postgresql://host:5432/db" },
            { "not a url: a@b", "not a url: a@b" },
        };
        for (size_t index = 0; index < sizeof cases / sizeof cases [0]; index++) {
            masked = s_database_url_masked (cases [index][0]);
            if (!streq (masked, cases [index][1]))
                printf ("masked %s as %s\n", cases [index][0], masked);
            assert (streq (masked, cases [index][1]));
            free (masked);
        }
    }
    snprintf (path, sizeof path, "/api/projects/%s", later);
    cJSON_Delete (api_test_request (api, "alice", "DELETE", path, NULL, NULL, 200, NULL));
    cJSON *job = store_query_row (store, "SELECT state FROM project_databases WHERE project_id = ?", "s", later);
    assert (job && streq (api_test_str (job, "state"), "deprovisioning"));
    cJSON_Delete (job);
    zstr_free (&later);

    //  Project validation
    api_test_invalid (api_test_request (api, "alice", "POST", "/api/projects", NULL, "{}", 422, NULL), "body", "name");
    api_test_invalid (api_test_request (api, "alice", "POST", "/api/projects", NULL, "{\"name\":\"   \"}", 422, NULL),
                      "body", "name");
    api_test_invalid (api_test_request (api, "alice", "POST", "/api/projects", NULL, "{\"name\":5}", 422, NULL),
                      "body", "name");
    api_test_invalid (api_test_request (api, "alice", "POST", "/api/projects", NULL, "{\"name\":\"a\\nb\"}", 422, NULL),
                      "body", "name");
    char long_name [128];
    memset (long_name, 'x', 101);
    long_name [101] = 0;
    snprintf (body, sizeof body, "{\"name\":\"%s\"}", long_name);
    api_test_invalid (api_test_request (api, "alice", "POST", "/api/projects", NULL, body, 422, NULL), "body", "name");
    long_name [100] = 0;
    snprintf (body, sizeof body, "{\"name\":\"  %s  \"}", long_name);
    cJSON_Delete (api_test_request (api, "alice", "POST", "/api/projects", NULL, body, 200, NULL));
    reply = api_test_request (api, "alice", "POST", "/api/projects", NULL, "{\"name\":\"n\",\"description\":7}", 422, NULL);
    api_test_invalid (reply, "body", "description");

    //  Projects: create, slugs, list, get, update
    cJSON *project = api_test_request (api, "alice", "POST", "/api/projects", NULL,
                                "{\"name\":\" My Project \",\"description\":\"d\",\"extra\":1}", 200, NULL);
    assert (streq (api_test_str (project, "name"), "My Project"));
    assert (streq (api_test_str (project, "slug"), "my-project"));
    assert (streq (api_test_str (project, "status"), "active"));
    assert (streq (api_test_str (project, "description"), "d"));
    assert (streq (api_test_str (project, "requirements_txt"), ""));
    assert (api_test_num (project, "function_count") == 0);
    assert (cJSON_IsFalse (cJSON_GetObjectItem (project, "has_database")));
    assert (util_is_id (api_test_str (project, "id")));
    assert (strlen (api_test_str (project, "created_at")) == 27);
    char project_id [UTIL_ID_SIZE];
    snprintf (project_id, sizeof project_id, "%s", api_test_str (project, "id"));
    cJSON_Delete (project);
    reply = api_test_request (api, "bob", "POST", "/api/projects", NULL, "{\"name\":\"my_project\"}", 200, NULL);
    assert (streq (api_test_str (reply, "slug"), "my-project-1"));
    char bob_project [UTIL_ID_SIZE];
    snprintf (bob_project, sizeof bob_project, "%s", api_test_str (reply, "id"));
    cJSON_Delete (reply);
    reply = api_test_request (api, "alice", "POST", "/api/projects", NULL, "{\"name\":\"My--Project!\"}", 200, NULL);
    assert (streq (api_test_str (reply, "slug"), "my-project-2"));
    char third [UTIL_ID_SIZE];
    snprintf (third, sizeof third, "%s", api_test_str (reply, "id"));
    cJSON_Delete (reply);

    reply = api_test_request (api, "alice", "GET", "/api/projects", NULL, NULL, 200, NULL);
    assert (cJSON_GetArraySize (reply) == 3);       //  bob's is not there
    assert (streq (api_test_str (cJSON_GetArrayItem (reply, 0), "id"), third));  //  newest first
    cJSON_Delete (reply);

    snprintf (path, sizeof path, "/api/projects/%s", third);
    //  Renamed to a name with the same base slug: keeps "my-project-2"
    reply = api_test_request (api, "alice", "PUT", path, NULL, "{\"name\":\"MY PROJECT\"}", 200, &inval);
    assert (streq (api_test_str (reply, "slug"), "my-project-2"));
    assert (inval && strncmp (inval, "routes ", 7) == 0);
    assert (streq (api_test_str (reply, "name"), "MY PROJECT"));
    assert (streq (api_test_str (reply, "description"), ""));
    cJSON_Delete (reply);
    zstr_free (&inval);
    reply = api_test_request (api, "alice", "PUT", path, NULL, "{\"name\":\"Other\",\"description\":\"x\"}", 200, NULL);
    assert (streq (api_test_str (reply, "slug"), "other"));
    assert (streq (api_test_str (reply, "description"), "x"));
    cJSON_Delete (reply);
    reply = api_test_request (api, "alice", "PUT", path, NULL, "{\"description\":null}", 200, NULL);
    assert (streq (api_test_str (reply, "description"), "x"));
    cJSON_Delete (reply);
    api_test_invalid (api_test_request (api, "alice", "PUT", path, NULL, "{\"name\":\"\"}", 422, NULL), "body", "name");

    //  Scoping: bob cannot see, change or delete alice's project
    api_test_detail (api_test_request (api, "bob", "GET", path, NULL, NULL, 404, NULL), "Project not found");
    api_test_detail (api_test_request (api, "bob", "PUT", path, NULL, "{\"name\":\"x\"}", 404, NULL), "Project not found");
    api_test_detail (api_test_request (api, "bob", "DELETE", path, NULL, NULL, 404, NULL), "Project not found");
    //  Those began a transaction and returned without ending it: the
    //  dispatcher rolled it back, so a new one can begin
    assert (store_begin (store) == 0);
    store_rollback (store);
    api_test_detail (api_test_request (api, "alice", "GET", "/api/projects/nonsense", NULL, NULL, 404, NULL),
                     "Project not found");
    api_test_detail (api_test_request (api, "alice", "GET", "/api/projects/abcdefabcdef", NULL, NULL, 404, NULL),
                     "Project not found");


    //  Project delete cascades to functions, versions, env vars, routes
    //  and invocations
    snprintf (body, sizeof body, "{\"name\":\"f\",\"code\":\"x=1\",\"project_id\":\"%s\"}", project_id);
    char *function_id = api_test_create (api, "alice", "/api/functions", body);
    snprintf (path, sizeof path, "/api/projects/%s/env", project_id);
    cJSON_Delete (api_test_request (api, "alice", "POST", path, NULL, "{\"key\":\"K\",\"value\":\"v\"}", 200, NULL));
    snprintf (path, sizeof path, "/api/projects/%s/routes", project_id);
    snprintf (body, sizeof body, "{\"function_id\":\"%s\",\"method\":\"GET\",\"path\":\"/x\"}", function_id);
    cJSON_Delete (api_test_request (api, "alice", "POST", path, NULL, body, 200, NULL));
    store_invocation_t row = { .function_id = function_id, .status = "success", .version = 1 };
    assert (store_invocations_insert (store, &row, 1) == 1);
    snprintf (path, sizeof path, "/api/projects/%s", project_id);
    reply = api_test_request (api, "alice", "GET", path, NULL, NULL, 200, NULL);
    assert (api_test_num (reply, "function_count") == 1);
    cJSON_Delete (reply);
    api_test_detail (api_test_request (api, "alice", "DELETE", path, NULL, NULL, 200, &inval), "Project deleted");
    char *expected = zsys_sprintf ("project %s", project_id);
    assert (inval && streq (inval, expected));
    zstr_free (&inval);
    zstr_free (&expected);
    api_test_detail (api_test_request (api, "alice", "GET", path, NULL, NULL, 404, NULL), "Project not found");
    api_test_detail (api_test_request (api, "alice", "DELETE", path, NULL, NULL, 404, NULL), "Project not found");
    snprintf (path, sizeof path, "/api/functions/%s", function_id);
    api_test_detail (api_test_request (api, "alice", "GET", path, NULL, NULL, 404, NULL), "Function not found");
    cJSON *count = store_query_row (store,
        "SELECT (SELECT count(*) FROM invocations) + (SELECT count(*) FROM routes)"
        " + (SELECT count(*) FROM env_vars) + (SELECT count(*) FROM function_versions) AS n", NULL);
    assert (api_test_num (count, "n") == 0);
    cJSON_Delete (count);
    zstr_free (&function_id);

    api_destroy (&api);
    store_destroy (&store);
    printf ("OK\n");
}
