/*  =========================================================================
    api_routes - a project's HTTP surface: its gateway routes and the env
    vars its functions see

    Choices where API.md is silent (documented in the README):
    - Env var keys match ^[A-Za-z_][A-Za-z0-9_]*$, at most 128 characters,
      not starting with CLOWDY_ (the runtime's own); values are strings of
      at most 32 KiB; secrets read back as "********" (the invoke path,
      store_function_load, sees them unmasked).
    - A route whose function exists but lives in another project (or in
      none) is 422 on body.function_id; a missing function is 404.
    - Route paths are checked by route_validate_path and stored normalised
      (trailing '/' removed). A route with the same method and pattern
      shape as another ("/u/:id" vs "/u/:uid") is a 409 like an exact
      duplicate, since the gateway's table could only keep one of them;
      the 409 names the route it clashes with and its id, so the user
      knows which one to change.
    - Env writes set "project <id>" (every function of the project caches
      the env); route writes set "routes <id>".
    ========================================================================= */

#include <czmq.h>
#include "core/api_call.h"
#include "core/route.h"

#define ENV_VALUE_MAX_BYTES     (32 * 1024)

#define ENV_SELECT \
    "SELECT id, key, CASE WHEN is_secret THEN '********' ELSE value END AS value, is_secret," \
    "       created_at, updated_at" \
    "  FROM env_vars"

#define ROUTE_SELECT \
    "SELECT id, project_id, function_id, method, path, description, created_at, updated_at" \
    "  FROM routes"


//  --------------------------------------------------------------------------
//  Route fields

static char *
s_route_method (api_call_t *call, bool required)
{
    const char *text = api_string (call, "method", required, 16, false);
    if (!text)
        return NULL;
    char *method = strdup (text);
    for (char *c = method; *c; c++)
        *c = (char) toupper ((unsigned char) *c);
    if (route_validate_method (method) == 0)
        return method;
    free (method);
    api_invalid (call, "method", "literal_error",
               "Input should be 'GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS' or 'ANY'");
    return NULL;
}

//  A route path pattern, validated by route_validate_path and normalised
//  (trailing '/' removed); heap copy or NULL (error added).
static char *
s_route_path (api_call_t *call, bool required)
{
    const char *path = api_string (call, "path", required, ROUTE_MAX_PATH, false);
    if (!path)
        return NULL;
    const char *problem = NULL;
    if (route_validate_path (path, &problem)) {
        api_invalid (call, "path", "value_error", "%s", problem? problem: "Route path is not valid");
        return NULL;
    }
    return route_normalize_path (path);
}


//  --------------------------------------------------------------------------
//  Env vars

int
api_env_list (api_call_t *call)
{
    const char *project_id = call->param [0];
    if (!api_project_owned (call, project_id))
        return api_reply_detail (call, 404, "Project not found");
    return api_reply (call, 200, store_query (call->store,
        ENV_SELECT " WHERE project_id = ? ORDER BY key", "s", project_id));
}

int
api_env_upsert (api_call_t *call)
{
    const char *project_id = call->param [0];
    if (api_body_parse (call))
        return 0;
    const char *key = api_string (call, "key", true, 1024, false);
    if (key && !util_env_key_valid (key)) {
        if (strncasecmp (key, "CLOWDY_", 7) == 0)
            api_invalid (call, "key", "value_error", "Value error, keys starting with CLOWDY_ are reserved");
        else
            api_invalid (call, "key", "value_error",
                       "Value error, key must match ^[A-Za-z_][A-Za-z0-9_]*$ and be at most 128 characters");
    }
    const char *value = api_string (call, "value", true, ENV_VALUE_MAX_BYTES, false);
    bool is_secret = true;
    api_bool (call, "is_secret", &is_secret);
    if (api_has_errors (call))
        return api_reply_invalid (call);
    if (!api_project_owned (call, project_id))
        return api_reply_detail (call, 404, "Project not found");
    char id [UTIL_ID_SIZE], now [UTIL_TIME_SIZE];
    util_new_id (id);
    util_now_iso (now);
    if (store_begin (call->store))
        return api_reply_store_error (call);
    //  Changing a key the project has is no new env var, whatever the count
    cJSON *had = store_query_row (call->store, "SELECT 1 AS had FROM env_vars WHERE project_id = ? AND key = ?",
                                  "ss", project_id, key);
    bool existing = had != NULL;
    cJSON_Delete (had);
    int rc = store_exec (call->store,
        "INSERT INTO env_vars (id, project_id, key, value, is_secret, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (project_id, key) DO UPDATE SET"
        "   value = excluded.value, is_secret = excluded.is_secret, updated_at = excluded.updated_at",
        "ssssbss", id, project_id, key, value, (int) is_secret, now, now);
    if (rc >= 0 && !existing && api_over_quota (call, call->api->quotas->max_env_vars, "max-env-vars",
                                   "This project already has as many env vars as it may have; delete one first",
                                   "SELECT count (*) FROM env_vars WHERE project_id = ?", project_id))
        return 0;
    if (rc < 0 || store_commit (call->store))
        return api_reply_store_error (call);
    api_invalidate (call, "project", project_id);
    return api_reply (call, 200, store_query_row (call->store,
        ENV_SELECT " WHERE project_id = ? AND key = ?", "ss", project_id, key));
}

int
api_env_delete (api_call_t *call)
{
    const char *project_id = call->param [0];
    const char *key = call->param [1];
    if (!api_project_owned (call, project_id))
        return api_reply_detail (call, 404, "Project not found");
    int rc = store_exec (call->store, "DELETE FROM env_vars WHERE project_id = ? AND key = ?",
                         "ss", project_id, key);
    if (rc < 0)
        return api_reply_store_error (call);
    if (rc == 0)
        return api_reply_detail (call, 404, "Env var '%s' not found", key);
    api_invalidate (call, "project", project_id);
    return api_reply_detail (call, 200, "Env var '%s' deleted", key);
}


//  --------------------------------------------------------------------------
//  Routes

int
api_routes_list (api_call_t *call)
{
    const char *project_id = call->param [0];
    if (!api_project_owned (call, project_id))
        return api_reply_detail (call, 404, "Project not found");
    return api_reply (call, 200, store_query (call->store,
        ROUTE_SELECT " WHERE project_id = ? ORDER BY path, method", "s", project_id));
}

//  Check that function_id is the user's and in project_id. Returns 0, or -1
//  with the reply made.
static int
s_route_function_check (api_call_t *call, const char *project_id, const char *function_id)
{
    cJSON *row = util_is_id (function_id)
        ? store_query_row (call->store,
            "SELECT coalesce (project_id, '') AS project_id FROM functions WHERE id = ? AND user_id = ?",
            "ss", function_id, call->req->user_id)
        : NULL;
    if (!row) {
        api_reply_detail (call, 404, "Function not found");
        return -1;
    }
    bool same = streq (cJSON_GetObjectItem (row, "project_id")->valuestring, project_id);
    cJSON_Delete (row);
    if (!same) {
        api_invalid (call, "function_id", "value_error", "Value error, the function must belong to this project");
        api_reply_invalid (call);
        return -1;
    }
    return 0;
}

//  The project's route that a new route (method, path) would clash with:
//  the same method and pattern shape ("/u/:id" and "/u/:uid" are the same
//  route to the gateway, which would keep only the first), or NULL.
//  except_id: a route to leave out (the one being updated). The caller
//  destroys the row {id, method, path, function_id}.
static cJSON *
s_route_clash (api_call_t *call, const char *project_id, const char *except_id,
               const char *method, const char *path)
{
    cJSON *routes = store_routes_for_project (call->store, project_id);
    //  One table of the project's routes, then the new route, which the
    //  table refuses if it clashes, naming the route it clashes with
    route_table_t *table = route_table_new ();
    cJSON *route;
    cJSON_ArrayForEach (route, routes) {
        const char *id = cJSON_GetStringValue (cJSON_GetObjectItem (route, "id"));
        if (!(except_id && id && streq (id, except_id)))
            route_table_add (table, id,
                             cJSON_GetStringValue (cJSON_GetObjectItem (route, "method")),
                             cJSON_GetStringValue (cJSON_GetObjectItem (route, "path")),
                             cJSON_GetStringValue (cJSON_GetObjectItem (route, "function_id")));
    }
    const char *existing_id = NULL;
    cJSON *clash = NULL;
    if (route_table_try_add (table, "new", method, path, "new", &existing_id) == -2)
        cJSON_ArrayForEach (route, routes) {
            const char *id = cJSON_GetStringValue (cJSON_GetObjectItem (route, "id"));
            if (id && existing_id && streq (id, existing_id)) {
                clash = cJSON_Duplicate (route, true);
                break;
            }
        }
    route_table_destroy (&table);
    cJSON_Delete (routes);
    return clash;
}

//  409 naming the route a new one clashes with
static int
s_reply_clash (api_call_t *call, const char *method, const char *path, cJSON *clash)
{
    if (!clash)
        return api_reply_detail (call, 409, "A route for %s %s already exists in this project", method, path);
    return api_reply_detail (call, 409, "A route for %s %s clashes with %s %s (route %s)", method, path,
                             cJSON_GetStringValue (cJSON_GetObjectItem (clash, "method")),
                             cJSON_GetStringValue (cJSON_GetObjectItem (clash, "path")),
                             cJSON_GetStringValue (cJSON_GetObjectItem (clash, "id")));
}

int
api_route_create (api_call_t *call)
{
    const char *project_id = call->param [0];
    if (api_body_parse (call))
        return 0;
    const char *function_id = api_string (call, "function_id", true, 64, false);
    char *method = s_route_method (call, true);
    char *path = s_route_path (call, true);
    const char *description = api_string (call, "description", false, API_DESCRIPTION_MAX_CHARS, true);
    int rc = 0;
    cJSON *clash = NULL;
    if (api_has_errors (call))
        api_reply_invalid (call);
    else
    if (!api_project_owned (call, project_id))
        api_reply_detail (call, 404, "Project not found");
    else
    if (s_route_function_check (call, project_id, function_id) == 0) {
        char id [UTIL_ID_SIZE], now [UTIL_TIME_SIZE];
        util_new_id (id);
        util_now_iso (now);
        if (store_begin (call->store))
            rc = STORE_ERROR;
        else
        if ((clash = s_route_clash (call, project_id, NULL, method, path)))
            rc = STORE_CONFLICT;
        else
            rc = store_exec (call->store,
                "INSERT INTO routes (id, project_id, function_id, method, path, description,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", "ssssssss",
                id, project_id, function_id, method, path, description? description: "", now, now);
        bool over = rc == 1 && api_over_quota (call, call->api->quotas->max_routes, "max-routes",
                                               "This project already has as many routes as it may have;"
                                               " delete one first",
                                               "SELECT count (*) FROM routes WHERE project_id = ?", project_id);
        if (rc == 1 && !over)
            rc = store_commit (call->store);
        if (over)
            ;                       //  Answered
        else
        if (rc == STORE_CONFLICT)
            s_reply_clash (call, method, path, clash);
        else
        if (rc < 0)
            api_reply_store_error (call);
        else {
            api_invalidate (call, "routes", project_id);
            api_reply (call, 200, store_query_row (call->store, ROUTE_SELECT " WHERE id = ?", "s", id));
        }
    }
    cJSON_Delete (clash);
    free (method);
    free (path);
    return 0;
}

int
api_route_update (api_call_t *call)
{
    const char *project_id = call->param [0];
    const char *route_id = call->param [1];
    if (api_body_parse (call))
        return 0;
    const char *function_id = api_string (call, "function_id", false, 64, false);
    char *method = s_route_method (call, false);
    char *path = s_route_path (call, false);
    const char *description = api_string (call, "description", false, API_DESCRIPTION_MAX_CHARS, true);
    cJSON *route = NULL, *clash = NULL;
    if (api_has_errors (call))
        api_reply_invalid (call);
    else
    if (!api_project_owned (call, project_id))
        api_reply_detail (call, 404, "Project not found");
    else
    if (!(route = store_query_row (call->store, ROUTE_SELECT " WHERE id = ? AND project_id = ?",
                                   "ss", route_id, project_id)))
        api_reply_detail (call, 404, "Route not found");
    else
    if (!function_id || s_route_function_check (call, project_id, function_id) == 0) {
        char now [UTIL_TIME_SIZE];
        util_now_iso (now);
        const char *new_method = method? method: cJSON_GetObjectItem (route, "method")->valuestring;
        const char *new_path = path? path: cJSON_GetObjectItem (route, "path")->valuestring;
        int rc;
        if (store_begin (call->store))
            rc = STORE_ERROR;
        else
        if ((clash = s_route_clash (call, project_id, route_id, new_method, new_path)))
            rc = STORE_CONFLICT;
        else
            rc = store_exec (call->store,
                "UPDATE routes SET function_id = ?, method = ?, path = ?, description = ?,"
                " updated_at = ? WHERE id = ?", "ssssss",
                function_id? function_id: cJSON_GetObjectItem (route, "function_id")->valuestring,
                new_method, new_path,
                description? description: cJSON_GetObjectItem (route, "description")->valuestring,
                now, route_id);
        if (rc >= 0)
            rc = store_commit (call->store);
        if (rc == STORE_CONFLICT)
            s_reply_clash (call, new_method, new_path, clash);
        else
        if (rc < 0)
            api_reply_store_error (call);
        else {
            api_invalidate (call, "routes", project_id);
            api_reply (call, 200, store_query_row (call->store, ROUTE_SELECT " WHERE id = ?", "s", route_id));
        }
    }
    cJSON_Delete (route);
    cJSON_Delete (clash);
    free (method);
    free (path);
    return 0;
}

int
api_route_delete (api_call_t *call)
{
    const char *project_id = call->param [0];
    const char *route_id = call->param [1];
    if (!api_project_owned (call, project_id))
        return api_reply_detail (call, 404, "Project not found");
    int rc = store_exec (call->store, "DELETE FROM routes WHERE id = ? AND project_id = ?",
                         "ss", route_id, project_id);
    if (rc < 0)
        return api_reply_store_error (call);
    if (rc == 0)
        return api_reply_detail (call, 404, "Route not found");
    api_invalidate (call, "routes", project_id);
    return api_reply_detail (call, 200, "Route deleted");
}


//  --------------------------------------------------------------------------
//  Selftest

void
api_routes_test (bool verbose)
{
    printf ("api_routes: ");
    store_t *store = store_new (":memory:");
    assert (store);
    api_t *api = api_new (store);
    char *inval = NULL, *expected = NULL;
    char path [256], body [512];
    cJSON *reply;
    char *project_id = api_test_create (api, "alice", "/api/projects", "{\"name\":\"Shop\"}");
    snprintf (body, sizeof body, "{\"name\":\"f\",\"code\":\"v1\",\"project_id\":\"%s\"}", project_id);
    char *function_id = api_test_create (api, "alice", "/api/functions", body);
    char *solo_id = api_test_create (api, "alice", "/api/functions", "{\"name\":\"solo\",\"code\":\"x=1\"}");

    //  Env vars: upsert, masking, validation, delete
    snprintf (path, sizeof path, "/api/projects/%s/env", project_id);
    reply = api_test_request (api, "alice", "POST", path, NULL, "{\"key\":\"B_TOKEN\",\"value\":\"s3cret\"}", 200, &inval);
    assert (streq (api_test_str (reply, "key"), "B_TOKEN"));
    assert (streq (api_test_str (reply, "value"), "********"));
    assert (cJSON_IsTrue (cJSON_GetObjectItem (reply, "is_secret")));
    expected = zsys_sprintf ("project %s", project_id);
    assert (inval && streq (inval, expected));
    zstr_free (&inval);
    zstr_free (&expected);
    char env_id [UTIL_ID_SIZE];
    snprintf (env_id, sizeof env_id, "%s", api_test_str (reply, "id"));
    cJSON_Delete (reply);
    reply = api_test_request (api, "alice", "POST", path, NULL,
                       "{\"key\":\"A_MODE\",\"value\":\"debug\",\"is_secret\":false}", 200, NULL);
    assert (streq (api_test_str (reply, "value"), "debug"));
    cJSON_Delete (reply);
    reply = api_test_request (api, "alice", "POST", path, NULL,
                       "{\"key\":\"B_TOKEN\",\"value\":\"new\",\"is_secret\":false}", 200, NULL);
    assert (streq (api_test_str (reply, "value"), "new"));
    assert (streq (api_test_str (reply, "id"), env_id));  //  upserted, same row
    cJSON_Delete (reply);
    reply = api_test_request (api, "alice", "GET", path, NULL, NULL, 200, NULL);
    assert (cJSON_GetArraySize (reply) == 2);
    assert (streq (api_test_str (cJSON_GetArrayItem (reply, 0), "key"), "A_MODE"));     //  sorted by key
    cJSON_Delete (reply);
    api_test_invalid (api_test_request (api, "alice", "POST", path, NULL, "{\"key\":\"1X\",\"value\":\"v\"}", 422, NULL),
                      "body", "key");
    api_test_invalid (api_test_request (api, "alice", "POST", path, NULL, "{\"key\":\"clowdy_x\",\"value\":\"v\"}", 422, NULL),
                      "body", "key");
    api_test_invalid (api_test_request (api, "alice", "POST", path, NULL, "{\"key\":\"X\",\"value\":1}", 422, NULL),
                      "body", "value");
    api_test_invalid (api_test_request (api, "alice", "POST", path, NULL, "{\"key\":\"X\"}", 422, NULL), "body", "value");
    api_test_invalid (api_test_request (api, "alice", "POST", path, NULL,
                      "{\"key\":\"X\",\"value\":\"v\",\"is_secret\":\"yes\"}", 422, NULL), "body", "is_secret");
    api_test_detail (api_test_request (api, "bob", "GET", path, NULL, NULL, 404, NULL), "Project not found");
    api_test_detail (api_test_request (api, "bob", "POST", path, NULL, "{\"key\":\"X\",\"value\":\"v\"}", 404, NULL),
                     "Project not found");
    //  Over --max-env-vars (lowered below the two it has): a new key is
    //  refused and stored nowhere, a key it has can still change
    config_t quotas = { 0 };
    api_set_quotas (api, &quotas);
    quotas.max_env_vars = 1;
    api_test_detail (api_test_request (api, "alice", "POST", path, NULL, "{\"key\":\"C\",\"value\":\"v\"}", 409, NULL),
                     "This project already has as many env vars as it may have; delete one first"
                     " (at most 1, --max-env-vars)");
    reply = api_test_request (api, "alice", "POST", path, NULL, "{\"key\":\"B_TOKEN\",\"value\":\"new\"}", 200, NULL);
    cJSON_Delete (reply);
    reply = api_test_request (api, "alice", "GET", path, NULL, NULL, 200, NULL);
    assert (cJSON_GetArraySize (reply) == 2);
    cJSON_Delete (reply);
    api_set_quotas (api, NULL);

    //  The invoke path sees the env unmasked
    store_function_t fn = { 0 };
    assert (store_function_load (store, function_id, &fn) == 0);
    assert (streq (fn.code, "v1") && fn.version == 1);
    assert (streq (fn.env [0], "A_MODE=debug") && streq (fn.env [1], "B_TOKEN=new") && !fn.env [2]);
    store_function_reset (&fn);

    snprintf (path, sizeof path, "/api/projects/%s/env/A_MODE", project_id);
    api_test_detail (api_test_request (api, "bob", "DELETE", path, NULL, NULL, 404, NULL), "Project not found");
    api_test_detail (api_test_request (api, "alice", "DELETE", path, NULL, NULL, 200, NULL), "Env var 'A_MODE' deleted");
    api_test_detail (api_test_request (api, "alice", "DELETE", path, NULL, NULL, 404, NULL), "Env var 'A_MODE' not found");

    //  Routes
    snprintf (path, sizeof path, "/api/projects/%s/routes", project_id);
    snprintf (body, sizeof body, "{\"function_id\":\"%s\",\"method\":\"post\",\"path\":\"/users/:id\"}", function_id);
    reply = api_test_request (api, "alice", "POST", path, NULL, body, 200, &inval);
    assert (streq (api_test_str (reply, "method"), "POST"));
    assert (streq (api_test_str (reply, "path"), "/users/:id"));
    assert (streq (api_test_str (reply, "project_id"), project_id));
    assert (streq (api_test_str (reply, "function_id"), function_id));
    assert (streq (api_test_str (reply, "description"), ""));
    expected = zsys_sprintf ("routes %s", project_id);
    assert (inval && streq (inval, expected));
    zstr_free (&inval);
    zstr_free (&expected);
    char route_id [UTIL_ID_SIZE];
    snprintf (route_id, sizeof route_id, "%s", api_test_str (reply, "id"));
    cJSON_Delete (reply);
    //  A clash names the route it clashes with and that route's id
    char sentence [256];
    snprintf (sentence, sizeof sentence, "A route for POST /users/:id clashes with POST /users/:id (route %s)",
              route_id);
    api_test_detail (api_test_request (api, "alice", "POST", path, NULL, body, 409, NULL), sentence);
    snprintf (body, sizeof body, "{\"function_id\":\"%s\",\"method\":\"ANY\",\"path\":\"/\"}", function_id);
    char *any_id = api_test_create (api, "alice", path, body);
    snprintf (body, sizeof body, "{\"function_id\":\"%s\",\"method\":\"GET\",\"path\":\"/users/:id\"}", function_id);
    char *get_id = api_test_create (api, "alice", path, body);
    reply = api_test_request (api, "alice", "GET", path, NULL, NULL, 200, NULL);
    assert (cJSON_GetArraySize (reply) == 3);
    assert (streq (api_test_str (cJSON_GetArrayItem (reply, 0), "path"), "/"));
    assert (streq (api_test_str (cJSON_GetArrayItem (reply, 1), "method"), "GET"));        //  path, then method
    assert (streq (api_test_str (cJSON_GetArrayItem (reply, 2), "method"), "POST"));
    cJSON_Delete (reply);
    const char *bad_paths [] = { "users", "", "/a//b", "/:", "/*rest/x", "/a?b", "/:a/:a" };
    for (size_t i = 0; i < sizeof bad_paths / sizeof bad_paths [0]; i++) {
        snprintf (body, sizeof body, "{\"function_id\":\"%s\",\"method\":\"GET\",\"path\":\"%s\"}",
                  function_id, bad_paths [i]);
        api_test_invalid (api_test_request (api, "alice", "POST", path, NULL, body, 422, NULL), "body", "path");
    }
    //  Same shape as an existing route (param names aside) is a conflict
    snprintf (body, sizeof body, "{\"function_id\":\"%s\",\"method\":\"GET\",\"path\":\"/users/:uid/\"}", function_id);
    snprintf (sentence, sizeof sentence, "A route for GET /users/:uid clashes with GET /users/:id (route %s)",
              get_id);
    api_test_detail (api_test_request (api, "alice", "POST", path, NULL, body, 409, NULL), sentence);
    snprintf (body, sizeof body, "{\"function_id\":\"%s\",\"method\":\"GET\",\"path\":\"/trailing/\"}", function_id);
    reply = api_test_request (api, "alice", "POST", path, NULL, body, 200, NULL);
    assert (streq (api_test_str (reply, "path"), "/trailing"));    //  normalised
    char trailing_id [UTIL_ID_SIZE];
    snprintf (trailing_id, sizeof trailing_id, "%s", api_test_str (reply, "id"));
    cJSON_Delete (reply);
    snprintf (body, sizeof body, "/api/projects/%s/routes/%s", project_id, trailing_id);
    api_test_detail (api_test_request (api, "alice", "DELETE", body, NULL, NULL, 200, NULL), "Route deleted");
    snprintf (body, sizeof body, "{\"function_id\":\"%s\",\"method\":\"FETCH\",\"path\":\"/x\"}", function_id);
    api_test_invalid (api_test_request (api, "alice", "POST", path, NULL, body, 422, NULL), "body", "method");
    api_test_invalid (api_test_request (api, "alice", "POST", path, NULL, "{\"method\":\"GET\",\"path\":\"/x\"}", 422, NULL),
                      "body", "function_id");
    snprintf (body, sizeof body, "{\"function_id\":\"%s\",\"method\":\"GET\",\"path\":\"/solo\"}", solo_id);
    api_test_invalid (api_test_request (api, "alice", "POST", path, NULL, body, 422, NULL), "body", "function_id");
    api_test_detail (api_test_request (api, "alice", "POST", path, NULL,
                     "{\"function_id\":\"abcdefabcdef\",\"method\":\"GET\",\"path\":\"/x\"}", 404, NULL),
                     "Function not found");
    api_test_detail (api_test_request (api, "bob", "GET", path, NULL, NULL, 404, NULL), "Project not found");

    snprintf (path, sizeof path, "/api/projects/%s/routes/%s", project_id, route_id);
    reply = api_test_request (api, "alice", "PUT", path, NULL, "{\"path\":\"/people/:id\",\"description\":\"d\"}", 200, NULL);
    assert (streq (api_test_str (reply, "path"), "/people/:id"));
    assert (streq (api_test_str (reply, "method"), "POST"));
    assert (streq (api_test_str (reply, "description"), "d"));
    cJSON_Delete (reply);
    snprintf (sentence, sizeof sentence, "A route for ANY / clashes with ANY / (route %s)", any_id);
    api_test_detail (api_test_request (api, "alice", "PUT", path, NULL, "{\"method\":\"ANY\",\"path\":\"/\"}", 409, NULL),
                     sentence);
    //  Updating a route to its own shape is no clash
    reply = api_test_request (api, "alice", "PUT", path, NULL, "{\"path\":\"/people/:who\"}", 200, NULL);
    cJSON_Delete (reply);
    api_test_invalid (api_test_request (api, "alice", "PUT", path, NULL, "{\"path\":\"nope\"}", 422, NULL), "body", "path");
    api_test_detail (api_test_request (api, "bob", "PUT", path, NULL, "{}", 404, NULL), "Project not found");
    api_test_detail (api_test_request (api, "bob", "DELETE", path, NULL, NULL, 404, NULL), "Project not found");
    api_test_detail (api_test_request (api, "alice", "DELETE", path, NULL, NULL, 200, NULL), "Route deleted");
    api_test_detail (api_test_request (api, "alice", "DELETE", path, NULL, NULL, 404, NULL), "Route not found");
    api_test_detail (api_test_request (api, "alice", "PUT", path, NULL, "{}", 404, NULL), "Route not found");


    zstr_free (&project_id);
    zstr_free (&function_id);
    zstr_free (&solo_id);
    zstr_free (&any_id);
    zstr_free (&get_id);
    api_destroy (&api);
    store_destroy (&store);
    printf ("OK\n");
}
