/*  =========================================================================
    gateway - turns HTTP calls into function runs and their results into
    HTTP replies

    Two caches make the hot path free of SQL:
    - functions: function id -> the context a run needs (code, env, limits)
      as the JSON text sent to assignment, plus its pool key. A pool key is
      "<function>:<version>:<hash of env, limits, network, layer>", so any
      change that matters gives new environments, never a stale one.
    - projects: slug -> the project's compiled route table (core/route).
    INVALIDATE drops the entries a write touched and tells assignment to
    retire environments built from them (RETIRE). A miss reads SQLite once.

    Each call in flight is a job, keyed by its id (which is also the
    invocation id the client sees), holding what the reply and the
    invocation record need. RESULT completes it: from assignment, or
    straight from a worker of this process on the results socket
    (broker/endpoints.h), one hop fewer; the first RESULT of a job
    answers it and a later one is dropped.
    ========================================================================= */

#include <cjson/cJSON.h>
#include "actors/gateway.h"
#include "broker/actor.h"
#include "broker/deadlines.h"
#include "broker/endpoints.h"
#include "broker/msg.h"
#include "broker/poller.h"
#include "core/config.h"
#include "core/gwmap.h"
#include "core/jsonfit.h"
#include "core/route.h"
#include "core/store.h"
#include "core/util.h"

typedef struct {
    char *context;                  //  JSON text of the function context for RUN
    char *pool_key;                 //  Environments that may serve it
    char *project_id;               //  "" when none
    char *owner_id;                 //  The function's user (its share of the memory budget)
    int version;                    //  Active version
    int memory_mb;                  //  Memory limit
    int timeout_seconds;            //  Timeout, for the job's deadline
    bool active;                    //  Status is "active"
    bool unsettled;                 //  Loaded while its database or layer was on the way: used for
                                    //  one call, loaded again for the next
} function_entry_t;

typedef struct {
    char *project_id;               //  Project id
    route_table_t *routes;          //  Compiled routes
} project_entry_t;

typedef struct {
    zframe_t *route;                //  Routing id of the http actor that asked
    char *request_id;               //  http's id for the parked connection
    bool gateway_call;              //  Project gateway call (else direct invoke)
    bool agent_call;                //  Direct invoke made by the assistant (source `agent`)
    char *source;                   //  Async attempts: "async" or "schedule", else NULL
    int attempt;                    //  Async attempts: from 1, else 0
    char *parent_invocation_id;     //  Async retries: the first attempt's id, else NULL
    char *event_id;                 //  Async attempts: their event, else NULL
    bool lambda_call;               //  Direct invoke from the Lambda API: the reply adds logs and error fields
    char *function_id;              //  Function run
    int version;                    //  Version run
    char *input;                    //  Input or event as JSON text, for the record
    char *method;                   //  Gateway calls: HTTP method
    char *path;                     //  Gateway calls: path within the project
    bool own_origin;                //  Asked on --gateway-host: the functions' own origin
    int64_t deadline;               //  Monotonic ms by which RESULT must come
    int64_t started_us;             //  Monotonic us when RUN went to assignment
    int64_t queue_us;               //  Set at RESULT: the call's time here less the worker's
} job_t;

typedef struct {
    zsock_t *pipe;                  //  Actor command pipe
    const config_t *config;         //  Settings (read only)
    zsock_t *frontend;              //  ROUTER for http
    zsock_t *assignment;            //  DEALER to assignment
    zsock_t *results;               //  PULL: RESULT straight from this process's workers, or NULL
    endpoints_t *endpoints;         //  Endpoint table (results socket bound flag)
    zsock_t *recorder;              //  PUSH to the recorder
    store_t *store;                 //  Our own store connection
    zhashx_t *functions;            //  function id -> function_entry_t
    zhashx_t *projects;             //  slug -> project_entry_t
    zhashx_t *jobs;                 //  job id -> job_t
    bool terminated;                //  Did caller ask us to quit?
} self_t;

static void
s_function_entry_destroy (void **item)
{
    function_entry_t *entry = (function_entry_t *) *item;
    if (entry) {
        free (entry->context);
        free (entry->pool_key);
        free (entry->project_id);
        free (entry->owner_id);
        free (entry);
        *item = NULL;
    }
}

static void
s_project_entry_destroy (void **item)
{
    project_entry_t *entry = (project_entry_t *) *item;
    if (entry) {
        free (entry->project_id);
        route_table_destroy (&entry->routes);
        free (entry);
        *item = NULL;
    }
}

static void
s_job_destroy (void **item)
{
    job_t *job = (job_t *) *item;
    if (job) {
        zframe_destroy (&job->route);
        free (job->request_id);
        free (job->function_id);
        free (job->input);
        free (job->method);
        free (job->path);
        free (job->source);
        free (job->parent_invocation_id);
        free (job->event_id);
        free (job);
        *item = NULL;
    }
}

//  FNV-1a, 64 bits: the pool key only needs to tell configurations apart
static uint64_t
s_hash (uint64_t hash, const char *text)
{
    for (const unsigned char *c = (const unsigned char *) text; *c; c++) {
        hash ^= *c;
        hash *= 1099511628211ULL;
    }
    //  A separator byte no text contains, so "ab"+"c" differs from "a"+"bc"
    hash ^= 0xff;
    return hash * 1099511628211ULL;
}

//  --------------------------------------------------------------------------
//  Caches

static function_entry_t *
s_function_lookup (self_t *self, const char *function_id)
{
    function_entry_t *entry = (function_entry_t *) zhashx_lookup (self->functions, function_id);
    if (entry && !entry->unsettled)
        return entry;
    store_function_t fn = { 0 };
    if (store_function_load (self->store, function_id, &fn))
        return entry;           //  The store failed: the copy we had, if any, serves this call
    if (entry)
        zhashx_delete (self->functions, function_id);
    cJSON *context = cJSON_CreateObject ();
    cJSON_AddStringToObject (context, "id", fn.id);
    cJSON_AddStringToObject (context, "name", fn.name);
    cJSON_AddNumberToObject (context, "version", fn.version);
    cJSON_AddStringToObject (context, "code", fn.code);
    cJSON_AddStringToObject (context, "project_id", fn.project_id);
    cJSON_AddBoolToObject (context, "network_enabled", fn.network_enabled);
    if (fn.requirements_hash)
        cJSON_AddStringToObject (context, "requirements_hash", fn.requirements_hash);
    uint64_t hash = 14695981039346656037ULL;
    char limits [128];
    snprintf (limits, sizeof limits, "%d/%d/%d/", fn.memory_mb, fn.timeout_seconds, fn.network_enabled);
    hash = s_hash (hash, limits);
    hash = s_hash (hash, fn.requirements_hash ? fn.requirements_hash : "-");
    //  The project's managed database (actors/database.c): DATABASE_URL is
    //  in env; the dir its sandboxes bind and the file cap go along
    if (fn.database_mount_source && fn.database_mount_target) {
        cJSON *mount = cJSON_AddObjectToObject (context, "database_mount");
        cJSON_AddStringToObject (mount, "source", fn.database_mount_source);
        cJSON_AddStringToObject (mount, "target", fn.database_mount_target);
        cJSON_AddBoolToObject (mount, "writable", fn.database_file_limit_mb > 0);
        hash = s_hash (hash, fn.database_mount_source);
        hash = s_hash (hash, fn.database_mount_target);
    }
    if (fn.database_file_limit_mb > 0) {
        cJSON_AddNumberToObject (context, "file_limit_mb", fn.database_file_limit_mb);
        snprintf (limits, sizeof limits, "db%d", fn.database_file_limit_mb);
        hash = s_hash (hash, limits);
    }
    cJSON *env = cJSON_AddObjectToObject (context, "env");
    for (char **pair = fn.env; pair && *pair; pair++) {
        char *equals = strchr (*pair, '=');
        if (!equals)
            continue;
        *equals = 0;
        cJSON_AddStringToObject (env, *pair, equals + 1);
        *equals = '=';
        hash = s_hash (hash, *pair);
    }
    entry = (function_entry_t *) zmalloc (sizeof (function_entry_t));
    entry->context = cJSON_PrintUnformatted (context);
    cJSON_Delete (context);
    entry->project_id = strdup (fn.project_id);
    entry->owner_id = strdup (fn.user_id ? fn.user_id : "");
    entry->version = fn.version;
    entry->memory_mb = fn.memory_mb;
    entry->timeout_seconds = fn.timeout_seconds;
    entry->active = fn.status && streq (fn.status, "active");
    entry->unsettled = fn.unsettled;
    char key [128];
    snprintf (key, sizeof key, "%s:%d:%016" PRIx64, fn.id, fn.version, hash);
    entry->pool_key = strdup (key);
    store_function_reset (&fn);
    zhashx_insert (self->functions, function_id, entry);
    return entry;
}

static project_entry_t *
s_project_lookup (self_t *self, const char *slug)
{
    project_entry_t *entry = (project_entry_t *) zhashx_lookup (self->projects, slug);
    if (entry)
        return entry;
    cJSON *project = store_project_by_slug (self->store, slug);
    cJSON *id = cJSON_GetObjectItemCaseSensitive (project, "id");
    if (!cJSON_IsString (id)) {
        cJSON_Delete (project);
        return NULL;
    }
    cJSON *routes = store_routes_for_project (self->store, id->valuestring);
    entry = (project_entry_t *) zmalloc (sizeof (project_entry_t));
    entry->project_id = strdup (id->valuestring);
    entry->routes = route_table_new ();
    cJSON *route;
    cJSON_ArrayForEach (route, routes) {
        const char *route_id = cJSON_GetStringValue (cJSON_GetObjectItem (route, "id"));
        const char *method = cJSON_GetStringValue (cJSON_GetObjectItem (route, "method"));
        const char *path = cJSON_GetStringValue (cJSON_GetObjectItem (route, "path"));
        const char *function_id = cJSON_GetStringValue (cJSON_GetObjectItem (route, "function_id"));
        if (route_table_add (entry->routes, route_id, method, path, function_id) == -1)
            zsys_warning ("gateway: project %s: skipped invalid route %s %s", slug,
                          method ? method : "?", path ? path : "?");
    }
    cJSON_Delete (routes);
    cJSON_Delete (project);
    zhashx_insert (self->projects, slug, entry);
    return entry;
}

static void
s_invalidate (self_t *self, const char *what)
{
    if (strncmp (what, "function ", 9) == 0)
        zhashx_delete (self->functions, what + 9);
    else
    if (strncmp (what, "project ", 8) == 0 || strncmp (what, "routes ", 7) == 0
    ||  strncmp (what, "contexts ", 9) == 0) {
        //  project: routes, contexts and environments; routes: the route
        //  table only; contexts: the cached contexts only (a change on its
        //  way: they are loaded again until it is done, environments stay)
        const char *project_id = strchr (what, ' ') + 1;
        bool routes = what [0] != 'c';
        bool contexts = what [0] != 'r';
        bool env_too = what [0] == 'p';
        //  Collect first: deleting while iterating a zhashx is not allowed
        zlistx_t *doomed = zlistx_new ();
        zlistx_set_destructor (doomed, (zlistx_destructor_fn *) zstr_free);
        if (routes) {
            for (project_entry_t *project = (project_entry_t *) zhashx_first (self->projects);
                 project; project = (project_entry_t *) zhashx_next (self->projects))
                if (streq (project->project_id, project_id))
                    zlistx_add_end (doomed, strdup ((const char *) zhashx_cursor (self->projects)));
            for (char *slug = (char *) zlistx_first (doomed); slug; slug = (char *) zlistx_next (doomed))
                zhashx_delete (self->projects, slug);
            zlistx_purge (doomed);
        }
        if (contexts) {
            for (function_entry_t *fn = (function_entry_t *) zhashx_first (self->functions);
                 fn; fn = (function_entry_t *) zhashx_next (self->functions))
                if (streq (fn->project_id, project_id))
                    zlistx_add_end (doomed, strdup ((const char *) zhashx_cursor (self->functions)));
            for (char *id = (char *) zlistx_first (doomed); id; id = (char *) zlistx_next (doomed))
                zhashx_delete (self->functions, id);
        }
        zlistx_destroy (&doomed);
        if (!env_too)
            return;             //  Routes and contexts alone do not touch environments
    }
    else {
        zsys_warning ("gateway: unknown invalidation '%s'", what);
        return;
    }
    if (msg_send_retire (self->assignment, NULL, what))
        zsys_error ("gateway: could not send RETIRE '%s' to assignment: environments built from "
                    "the old settings keep serving until they are evicted", what);
}

//  --------------------------------------------------------------------------
//  Replies

//  The origin policy (README, "Functions' answers and the dashboard's
//  origin"). On the dashboard's origin an answer must not act as the
//  dashboard: Content-Security-Policy: sandbox makes a page it serves an
//  opaque origin (no access to the dashboard's cookies, storage or API as
//  the signed-in user), nosniff stops a browser from reading JSON or text
//  as HTML, and the function's Set-Cookie is dropped so it cannot set or
//  overwrite the dashboard's cookies (Clerk's __session). On the host
//  given by --gateway-host, which serves nothing else, the function's
//  answer is its own: its cookies and scripts are left as they are.
static void
s_origin_policy (cJSON *headers, bool own_origin)
{
    if (own_origin)
        return;
    //  cJSON_DeleteItemFromObject ignores case, and a name may come twice
    while (cJSON_GetObjectItem (headers, "Set-Cookie"))
        cJSON_DeleteItemFromObject (headers, "Set-Cookie");
    while (cJSON_GetObjectItem (headers, "X-Content-Type-Options"))
        cJSON_DeleteItemFromObject (headers, "X-Content-Type-Options");
    cJSON_AddStringToObject (headers, "X-Content-Type-Options", "nosniff");
    //  A policy of the function's own stays, and is enforced as well: a
    //  second policy can only restrict, so "sandbox" holds whatever it says
    cJSON_AddStringToObject (headers, "Content-Security-Policy", "sandbox");
}

//  A REPLY that cannot be sent leaves the client to http's own deadline:
//  we have nothing else to answer it with, so we log it. Every reply gets
//  the origin policy; own_origin only for a function's answer on
//  --gateway-host.
static void
s_reply (self_t *self, zframe_t *route, const char *request_id, int status, cJSON *headers,
         const char *body, size_t size, bool own_origin)
{
    cJSON *owned = headers ? NULL : cJSON_CreateObject ();
    if (owned) {
        headers = owned;
        cJSON_AddStringToObject (headers, "Content-Type", "application/json");
    }
    s_origin_policy (headers, own_origin);
    char *headers_text = cJSON_PrintUnformatted (headers);
    cJSON_Delete (owned);
    if (msg_send_reply (self->frontend, route, request_id, status, headers_text ? headers_text : "{}",
                        body, size))
        zsys_error ("gateway: could not send the %d reply to http for request %s", status, request_id);
    free (headers_text);
}

//  Reply {"detail": detail}; takes ownership of detail (a sentence, or the
//  422 list of {loc, msg, type})
//  and one more header when header is set (Retry-After, the invocation id)
static void
s_reply_detail_json (self_t *self, zframe_t *route, const char *request_id, int status, cJSON *detail,
                     const char *header, const char *value)
{
    cJSON *headers = cJSON_CreateObject ();
    cJSON_AddStringToObject (headers, "Content-Type", "application/json");
    if (header)
        cJSON_AddStringToObject (headers, header, value);
    cJSON *body = cJSON_CreateObject ();
    cJSON_AddItemToObject (body, "detail", detail);
    char *text = cJSON_PrintUnformatted (body);
    s_reply (self, route, request_id, status, headers, text, strlen (text), false);
    free (text);
    cJSON_Delete (body);
    cJSON_Delete (headers);
}

static void
s_reply_detail (self_t *self, zframe_t *route, const char *request_id, int status, const char *detail,
                const char *header, const char *value)
{
    s_reply_detail_json (self, route, request_id, status, cJSON_CreateString (detail), header, value);
}

//  422 with one validation error at loc ["body"] or ["body", field]
static void
s_reply_invalid (self_t *self, zframe_t *route, const char *request_id, const char *field,
                 const char *message, const char *type)
{
    cJSON *error = cJSON_CreateObject ();
    cJSON *loc = cJSON_AddArrayToObject (error, "loc");
    cJSON_AddItemToArray (loc, cJSON_CreateString ("body"));
    if (field)
        cJSON_AddItemToArray (loc, cJSON_CreateString (field));
    cJSON_AddStringToObject (error, "msg", message);
    cJSON_AddStringToObject (error, "type", type);
    cJSON *errors = cJSON_CreateArray ();
    cJSON_AddItemToArray (errors, error);
    s_reply_detail_json (self, route, request_id, 422, errors, NULL, NULL);
}

//  A request path fit for a `detail` sentence: printable ASCII as it is,
//  every other byte percent-encoded (so the JSON is valid whatever the client
//  sent), cut at a whole escape when longer than the buffer.
static void
s_path_for_detail (const char *path, char *out, size_t size)
{
    static const char hex [] = "0123456789ABCDEF";
    size_t used = 0;
    for (const unsigned char *c = (const unsigned char *) path; *c; c++) {
        bool plain = *c >= 0x20 && *c < 0x7f;
        size_t need = plain ? 1 : 3;
        if (used + need + 4 >= size) {
            memcpy (out + used, "...", 3);
            used += 3;
            break;
        }
        if (plain)
            out [used++] = (char) *c;
        else {
            out [used++] = '%';
            out [used++] = hex [*c >> 4];
            out [used++] = hex [*c & 15];
        }
    }
    out [used] = 0;
}

//  --------------------------------------------------------------------------
//  INVOKE: resolve the function, start a job, ask assignment to run it

static void
s_start_job (self_t *self, msg_t *msg, const char *function_id, function_entry_t *fn,
             cJSON *input, bool gateway_call, const char *method, const char *path)
{
    job_t *job = (job_t *) zmalloc (sizeof (job_t));
    char job_id [UTIL_ID_SIZE];
    util_new_id (job_id);
    job->route = zframe_dup (msg_route (msg));
    job->request_id = strdup (msg_invoke_request_id (msg));
    job->gateway_call = gateway_call;
    job->agent_call = streq (msg_invoke_kind (msg), "agent");
    if (streq (msg_invoke_kind (msg), "async")) {
        //  An attempt of an async event (actors/events.c, the only sender
        //  of this kind): its invocation id and lineage come in the headers
        cJSON *headers = msg_invoke_headers (msg);
        const char *id = cJSON_GetStringValue (cJSON_GetObjectItem (headers, "x-clowdy-invocation-id"));
        if (id && util_is_id (id) && !zhashx_lookup (self->jobs, id))
            snprintf (job_id, sizeof job_id, "%s", id);
        const char *source = cJSON_GetStringValue (cJSON_GetObjectItem (headers, "x-clowdy-source"));
        job->source = strdup (source && streq (source, "schedule") ? "schedule" : "async");
        const char *attempt = cJSON_GetStringValue (cJSON_GetObjectItem (headers, "x-clowdy-attempt"));
        job->attempt = attempt ? atoi (attempt) : 1;
        const char *parent = cJSON_GetStringValue (cJSON_GetObjectItem (headers, "x-clowdy-parent-id"));
        if (parent && util_is_id (parent))
            job->parent_invocation_id = strdup (parent);
        const char *event = cJSON_GetStringValue (cJSON_GetObjectItem (headers, "x-clowdy-event-id"));
        if (event && util_is_id (event))
            job->event_id = strdup (event);
    }
    job->lambda_call = streq (msg_invoke_kind (msg), "lambda");
    job->function_id = strdup (function_id);
    job->version = fn->version;
    job->input = cJSON_PrintUnformatted (input);
    job->method = method ? strdup (method) : NULL;
    job->path = path ? strdup (path) : NULL;
    job->own_origin = gwmap_host_is (cJSON_GetStringValue (cJSON_GetObjectItem (msg_invoke_headers (msg), "host")),
                                     self->config->gateway_host);
    int64_t timeout_ms = fn->timeout_seconds > 0 ? fn->timeout_seconds * 1000LL : DEFAULT_TIMEOUT_MS;
    job->deadline = zclock_mono () + deadlines_job_ms (timeout_ms);
    job->started_us = util_monotonic_us ();
    if (msg_send_run (self->assignment, NULL, job_id, fn->pool_key, function_id, fn->project_id, fn->owner_id,
                      fn->memory_mb, timeout_ms, fn->context, job->input)) {
        //  assignment's queue is full (or it is gone): the call never ran
        zsys_warning ("gateway: could not send RUN for job %s (%s); answered 503", job_id, zmq_strerror (zmq_errno ()));
        s_reply_detail (self, job->route, job->request_id, 503, "The server is too busy to take the call now; "
                        "retry shortly", "Retry-After", "1");
        s_job_destroy ((void **) &job);
        return;
    }
    zhashx_insert (self->jobs, job_id, job);
}

//  A version other than the active one, for a Lambda invoke that names it
//  (`name:2`): the active entry with that version's code, its own pool key,
//  made for this call and not cached (not the hot path). NULL when the
//  function has no such version.
static function_entry_t *
s_function_version (self_t *self, const char *function_id, function_entry_t *fn, int version)
{
    cJSON *row = store_query_row (self->store,
        "SELECT code FROM function_versions WHERE function_id = ? AND version = ?", "si", function_id, version);
    const char *code = cJSON_GetStringValue (cJSON_GetObjectItem (row, "code"));
    cJSON *context = code ? cJSON_Parse (fn->context) : NULL;
    if (!context) {
        cJSON_Delete (row);
        return NULL;
    }
    cJSON_ReplaceItemInObject (context, "code", cJSON_CreateString (code));
    cJSON_ReplaceItemInObject (context, "version", cJSON_CreateNumber (version));
    cJSON_Delete (row);
    function_entry_t *entry = (function_entry_t *) zmalloc (sizeof (function_entry_t));
    *entry = *fn;
    entry->context = cJSON_PrintUnformatted (context);
    cJSON_Delete (context);
    entry->project_id = strdup (fn->project_id);
    entry->owner_id = strdup (fn->owner_id);
    entry->version = version;
    //  "<function>:<version>:<hash>": the same hash, since only the code differs
    const char *hash = strrchr (fn->pool_key, ':');
    char key [128];
    snprintf (key, sizeof key, "%s:%d%s", function_id, version, hash ? hash : ":0");
    entry->pool_key = strdup (key);
    return entry;
}

static void
s_handle_direct (self_t *self, msg_t *msg)
{
    zframe_t *route = msg_route (msg);
    const char *request_id = msg_invoke_request_id (msg);
    const char *function_id = msg_invoke_target (msg);
    function_entry_t *fn = util_is_id (function_id) ? s_function_lookup (self, function_id) : NULL;
    if (!fn) {
        s_reply_detail (self, route, request_id, 404, "Function not found", NULL, NULL);
        return;
    }
    if (!fn->active) {
        s_reply_detail (self, route, request_id, 503, "Function is disabled", NULL, NULL);
        return;
    }
    size_t size;
    const byte *body = msg_invoke_body (msg, &size);
    cJSON *input = NULL;
    bool blank = true;
    for (size_t i = 0; i < size && blank; i++)
        blank = isspace (body [i]);
    if (blank)
        input = cJSON_CreateObject ();
    else {
        //  What cJSON cannot carry is refused with the reason, never
        //  changed on the way (core/jsonfit.h)
        jsonfit_scan_t scan;
        jsonfit_scan ((const char *) body, size, &scan);
        char detail [256];
        if (jsonfit_refusal (&scan, "Request body", detail, sizeof detail)) {
            s_reply_detail (self, route, request_id, 400, detail, NULL, NULL);
            return;
        }
        if (scan.nul_escape) {
            s_reply_invalid (self, route, request_id, "input",
                             "Strings must not contain the NUL character (\\u0000)", "string_nul");
            return;
        }
        cJSON *parsed = util_json_parse ((const char *) body, size);
        if (!parsed) {
            s_reply_detail (self, route, request_id, 400, "Request body is not valid JSON", NULL, NULL);
            return;
        }
        if (!cJSON_IsObject (parsed)) {
            cJSON_Delete (parsed);
            s_reply_invalid (self, route, request_id, NULL,
                             "Input should be an object like {\"input\": ...}", "model_type");
            return;
        }
        //  Numbers reach the function with the digits the client wrote
        jsonfit_keep_numbers (parsed, (const char *) body, size,
                              cJSON_GetObjectItemCaseSensitive (parsed, "input"));
        input = cJSON_DetachItemFromObjectCaseSensitive (parsed, "input");
        if (!input)
            input = cJSON_CreateObject ();
        cJSON_Delete (parsed);
    }
    //  The Lambda API may name a version (query "version=N"): another than
    //  the active one runs from its own entry
    const char *query = msg_invoke_query (msg);
    int version = streq (msg_invoke_kind (msg), "lambda") && strncmp (query, "version=", 8) == 0
                ? atoi (query + 8) : 0;
    if (version > 0 && version != fn->version) {
        function_entry_t *other = s_function_version (self, function_id, fn, version);
        if (other)
            s_start_job (self, msg, function_id, other, input, false, NULL, NULL);
        else
            s_reply_detail (self, route, request_id, 404, "Function version not found", NULL, NULL);
        s_function_entry_destroy ((void **) &other);
    }
    else
        s_start_job (self, msg, function_id, fn, input, false, NULL, NULL);
    cJSON_Delete (input);
}

static void
s_handle_gateway (self_t *self, msg_t *msg)
{
    zframe_t *route = msg_route (msg);
    const char *request_id = msg_invoke_request_id (msg);
    const char *method = msg_invoke_method (msg);
    const char *raw_path = msg_invoke_path (msg);
    //  raw_path is "/api/gateway/<slug>[/<rest>]" exactly as the client sent it
    const char *rest = raw_path + strlen ("/api/gateway");
    while (*rest == '/')
        rest++;
    const char *slash = strchr (rest, '/');
    size_t slug_size = slash ? (size_t) (slash - rest) : strlen (rest);
    char *slug = route_percent_decode (rest, slug_size, false, NULL);
    const char *sub_path = slash ? slash : "/";
    project_entry_t *project = slug && *slug ? s_project_lookup (self, slug) : NULL;
    free (slug);
    if (!project) {
        s_reply_detail (self, route, request_id, 404, "Project not found", NULL, NULL);
        return;
    }
    route_match_t match = { 0 };
    char *normal = route_normalize_path (sub_path);
    if (route_table_match (project->routes, method, sub_path, &match)) {
        char shown [400], detail [512];
        s_path_for_detail (normal, shown, sizeof shown);
        snprintf (detail, sizeof detail, "No route matches %.32s %s", method, shown);
        s_reply_detail (self, route, request_id, 404, detail, NULL, NULL);
        free (normal);
        return;
    }
    function_entry_t *fn = s_function_lookup (self, match.function_id);
    if (!fn || !fn->active) {
        s_reply_detail (self, route, request_id, 503, fn ? "The route's function is disabled"
                        : "The route's function no longer exists", NULL, NULL);
        route_match_reset (&match);
        free (normal);
        return;
    }
    //  The path the function sees: within the project, decoded when it is valid UTF-8
    size_t decoded_size;
    char *decoded = route_percent_decode (normal, strlen (normal), false, &decoded_size);
    cJSON *headers = msg_invoke_headers (msg);
    const char *query = msg_invoke_query (msg);
    size_t body_size;
    const byte *body = msg_invoke_body (msg, &body_size);
    cJSON *event = gwmap_event (method, decoded, match.params, query, headers, body, body_size);
    if (!event)
        event = gwmap_event (method, normal, match.params, query, headers, body, body_size);
    if (!event)
        s_reply_detail (self, route, request_id, 400, "Request path is not valid UTF-8", NULL, NULL);
    else
        s_start_job (self, msg, match.function_id, fn, event, true, method, normal);
    cJSON_Delete (event);
    free (decoded);
    free (normal);
    route_match_reset (&match);
}

//  --------------------------------------------------------------------------
//  RESULT: reply and record

static void
s_record (self_t *self, const char *job_id, job_t *job, cJSON *result, const char *status,
          const char *output_text)
{
    cJSON *row = cJSON_CreateObject ();
    cJSON_AddStringToObject (row, "id", job_id);
    cJSON_AddStringToObject (row, "function_id", job->function_id);
    cJSON_AddStringToObject (row, "input", job->input);
    cJSON_AddStringToObject (row, "status", status);
    const char *error = cJSON_GetStringValue (cJSON_GetObjectItem (result, "error"));
    if (error)
        cJSON_AddStringToObject (row, "error", error);
    //  A failed call's output is its error message, as the original UI
    //  shows it in its log table (API.md); error keeps it too
    if (output_text)
        cJSON_AddStringToObject (row, "output", output_text);
    else
    if (!streq (status, "success"))
        cJSON_AddStringToObject (row, "output", error ? error : "The function failed");
    cJSON_AddStringToObject (row, "source", job->source ? job->source : job->gateway_call ? "gateway"
                                          : job->agent_call ? "agent" : "direct");
    if (job->attempt > 0)
        cJSON_AddNumberToObject (row, "attempt", job->attempt);
    if (job->parent_invocation_id)
        cJSON_AddStringToObject (row, "parent_invocation_id", job->parent_invocation_id);
    if (job->event_id)
        cJSON_AddStringToObject (row, "event_id", job->event_id);
    if (job->method)
        cJSON_AddStringToObject (row, "http_method", job->method);
    if (job->path)
        cJSON_AddStringToObject (row, "http_path", job->path);
    const char *logs = cJSON_GetStringValue (cJSON_GetObjectItem (result, "logs"));
    if (logs)
        cJSON_AddStringToObject (row, "logs", logs);
    if (cJSON_IsTrue (cJSON_GetObjectItem (result, "logs_truncated")))
        cJSON_AddBoolToObject (row, "logs_truncated", true);
    cJSON_AddNumberToObject (row, "duration_us", cJSON_GetNumberValue (cJSON_GetObjectItem (result, "duration_us")));
    cJSON_AddBoolToObject (row, "cold_start", cJSON_IsTrue (cJSON_GetObjectItem (result, "cold_start")));
    cJSON_AddNumberToObject (row, "version", job->version);
    double peak = cJSON_GetNumberValue (cJSON_GetObjectItem (result, "peak_memory_kb"));
    cJSON_AddNumberToObject (row, "peak_memory_kb", isnan (peak) ? 0 : peak);
    double init_us = cJSON_GetNumberValue (cJSON_GetObjectItem (result, "init_us"));
    cJSON_AddNumberToObject (row, "init_us", isnan (init_us) ? 0 : init_us);
    cJSON_AddNumberToObject (row, "queue_us", (double) job->queue_us);
    char now [UTIL_TIME_SIZE];
    util_now_iso (now);
    cJSON_AddStringToObject (row, "created_at", now);
    char *text = cJSON_PrintUnformatted (row);
    if (msg_send_record (self->recorder, NULL, text))
        zsys_error ("gateway: could not send RECORD to the recorder: invocation %s is not in the history",
                    job_id);
    free (text);
    cJSON_Delete (row);
}

//  The call was lost on the way (its worker stopped answering, or no RESULT
//  came by the job's deadline): 504 with what happened, recorded with status
//  "lost": a platform failure whose outcome is unknown (it may have run),
//  counted apart from the function's own errors
static void
s_job_lost (self_t *self, const char *job_id, job_t *job, cJSON *result, const char *error)
{
    s_record (self, job_id, job, result, "lost", NULL);
    s_reply_detail (self, job->route, job->request_id, 504, error, "X-Clowdy-Invocation-Id", job_id);
    zhashx_delete (self->jobs, job_id);
}

//  Jobs past their deadline: the one place they are given up
static void
s_expire_jobs (self_t *self)
{
    int64_t now = zclock_mono ();
    zlistx_t *expired = zlistx_new ();
    for (job_t *job = (job_t *) zhashx_first (self->jobs); job; job = (job_t *) zhashx_next (self->jobs))
        if (now > job->deadline)
            zlistx_add_end (expired, strdup ((const char *) zhashx_cursor (self->jobs)));
    for (char *job_id = (char *) zlistx_first (expired); job_id; job_id = (char *) zlistx_next (expired)) {
        job_t *job = (job_t *) zhashx_lookup (self->jobs, job_id);
        zsys_warning ("gateway: no RESULT for job %s by its deadline; answered 504", job_id);
        cJSON *result = cJSON_CreateObject ();
        const char *error = "The call got no result in time: the platform lost track of it (no answer from "
                            "assignment by the call's deadline, its timeout plus a margin)";
        cJSON_AddStringToObject (result, "error", error);
        s_job_lost (self, job_id, job, result, error);
        cJSON_Delete (result);
        free (job_id);
    }
    zlistx_destroy (&expired);
}

static void
s_handle_result (self_t *self, msg_t *msg)
{
    const char *job_id = msg_result_job_id (msg);
    job_t *job = (job_t *) zhashx_lookup (self->jobs, job_id);
    if (!job) {
        zsys_warning ("gateway: dropped a late RESULT for job %s (already answered)", job_id);
        return;
    }
    cJSON *result = msg_result_result (msg);        //  Owned by msg
    const char *result_text = msg_result_result_text (msg);
    const char *status = cJSON_GetStringValue (cJSON_GetObjectItem (result, "status"));
    if (!status)
        status = "error";
    const char *error = cJSON_GetStringValue (cJSON_GetObjectItem (result, "error"));
    if (streq (status, "lost")) {
        s_job_lost (self, job_id, job, result, error ? error : "The worker running the call stopped answering");
        return;
    }
    double duration_us = cJSON_GetNumberValue (cJSON_GetObjectItem (result, "duration_us"));
    int64_t duration_ms = isnan (duration_us) ? 0 : (int64_t) ((duration_us + 500) / 1000);
    bool cold_start = cJSON_IsTrue (cJSON_GetObjectItem (result, "cold_start"));
    //  The platform's own share, beside the function's: the worker measured
    //  duration_us (cold start included, init_us of it); the rest of the
    //  call's time here went on waiting for a worker (assignment's queue)
    //  and the hops to it and back
    double init_us = cJSON_GetNumberValue (cJSON_GetObjectItem (result, "init_us"));
    if (isnan (init_us) || init_us < 0)
        init_us = 0;
    job->queue_us = util_monotonic_us () - job->started_us - (isnan (duration_us) ? 0 : (int64_t) duration_us);
    if (job->queue_us < 0)
        job->queue_us = 0;

    if (streq (status, "rejected") || streq (status, "unavailable")) {
        //  Never ran: nothing to record
        bool busy = streq (status, "rejected");
        s_reply_detail (self, job->route, job->request_id, busy ? 429 : 503,
                        error ? error : "No capacity to run the function now; retry shortly",
                        "Retry-After", "1");
        zhashx_delete (self->jobs, job_id);
        return;
    }
    bool success = streq (status, "success");
    cJSON *output = cJSON_GetObjectItem (result, "output");
    //  The output's numbers go on with the digits the function's JSON had
    if (success && output && result_text)
        jsonfit_keep_numbers (result, result_text, strlen (result_text), output);
    //  A gateway answer is mapped before it is recorded: a result that
    //  cannot be sent as a conforming HTTP answer is a failed call (502
    //  with the reason), and its record says so, never "success"
    gwmap_response_t response = { 0 };
    if (success && job->gateway_call && gwmap_response (output, &response)) {
        success = false;
        status = "error";
        error = response.detail;
        cJSON_DeleteItemFromObject (result, "error");
        cJSON_AddStringToObject (result, "error", error);
    }
    char *output_text = success && output ? cJSON_PrintUnformatted (output) : NULL;
    s_record (self, job_id, job, result, status, output_text);

    if (!job->gateway_call) {
        cJSON *reply = cJSON_CreateObject ();
        cJSON_AddBoolToObject (reply, "success", success);
        if (success)        //  printed once already, for the record
            cJSON_AddRawToObject (reply, "output", output_text ? output_text : "null");
        else
            cJSON_AddStringToObject (reply, "error", error ? error : "The function failed");
        if (!success && streq (status, "timeout"))
            cJSON_AddBoolToObject (reply, "timeout", true);
        cJSON_AddNumberToObject (reply, "duration_ms", (double) duration_ms);
        cJSON_AddStringToObject (reply, "invocation_id", job_id);
        cJSON_AddBoolToObject (reply, "cold_start", cold_start);
        if (job->lambda_call) {
            //  The Lambda API (core/lambda.c) answers with the version run,
            //  the logs' tail and Lambda's error fields. Only http sends this
            //  kind, for a caller it authenticated as the function's owner
            cJSON_AddNumberToObject (reply, "version", job->version);
            const char *fields [] = { "logs", "error_type", "traceback" };
            for (size_t i = 0; i < sizeof fields / sizeof fields [0]; i++) {
                const char *value = cJSON_GetStringValue (cJSON_GetObjectItem (result, fields [i]));
                if (value)
                    cJSON_AddStringToObject (reply, fields [i], value);
            }
        }
        cJSON_AddNumberToObject (reply, "init_ms", round (init_us) / 1000);
        cJSON_AddNumberToObject (reply, "queue_ms", (double) job->queue_us / 1000);
        char *text = cJSON_PrintUnformatted (reply);
        cJSON *headers = cJSON_CreateObject ();
        cJSON_AddStringToObject (headers, "Content-Type", "application/json");
        s_reply (self, job->route, job->request_id, 200, headers, text, strlen (text), false);
        cJSON_Delete (headers);
        free (text);
        cJSON_Delete (reply);
    }
    else
    if (!success) {
        bool timeout = streq (status, "timeout");
        s_reply_detail (self, job->route, job->request_id, timeout ? 504 : 502,
                        error ? error : "The function failed", "X-Clowdy-Invocation-Id", job_id);
    }
    else {
        //  Ours, whatever the function said (names are case-insensitive)
        cJSON_DeleteItemFromObject (response.headers, "X-Clowdy-Invocation-Id");
        cJSON_AddStringToObject (response.headers, "X-Clowdy-Invocation-Id", job_id);
        s_reply (self, job->route, job->request_id, response.status, response.headers,
                 response.body ? response.body : "", response.body_size, job->own_origin);
    }
    gwmap_response_reset (&response);
    free (output_text);
    zhashx_delete (self->jobs, job_id);
}

//  --------------------------------------------------------------------------
//  The actor

static void
s_handle_frontend (self_t *self)
{
    msg_t *msg = msg_recv (self->frontend, true);
    if (!msg)
        return;
    if (msg_id (msg) == MSG_ID_INVOKE) {
        if (streq (msg_invoke_kind (msg), "gateway"))
            s_handle_gateway (self, msg);
        else
            s_handle_direct (self, msg);
    }
    else
    if (msg_id (msg) == MSG_ID_INVALIDATE)
        s_invalidate (self, msg_invalidate_what (msg));
    else
        zsys_warning ("gateway: unexpected '%s' from http", msg_command (msg));
    msg_destroy (&msg);
}

//  RESULT from assignment, or from a worker of this process (the same
//  message: whichever comes first answers the job, a later one is dropped)
static void
s_handle_assignment (self_t *self, zsock_t *socket)
{
    msg_t *msg = msg_recv (socket, false);
    if (!msg)
        return;
    if (msg_id (msg) == MSG_ID_RESULT)
        s_handle_result (self, msg);
    else
        zsys_warning ("gateway: unexpected '%s' from assignment", msg_command (msg));
    msg_destroy (&msg);
}

static void
s_self_handle_pipe (self_t *self)
{
    char *command = zstr_recv (self->pipe);
    if (!command) {
        self->terminated = true;
        return;
    }
    if (streq (command, "$TERM"))
        self->terminated = true;
    else
    if (streq (command, "PING"))
        zstr_send (self->pipe, "PONG");
    else
        zsys_warning ("gateway: invalid pipe command '%s'", command);
    zstr_free (&command);
}

static void
    s_self_destroy (self_t **self_p);

static self_t *
s_self_new (zsock_t *pipe, const actor_args_t *args)
{
    self_t *self = (self_t *) zmalloc (sizeof (self_t));
    self->pipe = pipe;
    self->config = args->config;
    self->functions = zhashx_new ();
    zhashx_set_destructor (self->functions, s_function_entry_destroy);
    self->projects = zhashx_new ();
    zhashx_set_destructor (self->projects, s_project_entry_destroy);
    self->jobs = zhashx_new ();
    zhashx_set_destructor (self->jobs, s_job_destroy);
    self->store = store_open (args->config->data_dir);
    self->frontend = endpoints_bind (args->endpoints, "gateway", ZMQ_ROUTER);
    self->assignment = endpoints_connect (args->endpoints, "assignment", ZMQ_DEALER);
    self->recorder = endpoints_connect (args->endpoints, "recorder", ZMQ_PUSH);
    if (!self->store || !self->frontend || !self->assignment || !self->recorder) {
        zsys_error ("gateway: cannot start");
        s_self_destroy (&self);
        return NULL;
    }
    //  The workers of this process answer here, one hop fewer than through
    //  assignment (broker/endpoints.h). Without it they answer through
    //  assignment, as workers on other hosts do: slower, never wrong
    self->endpoints = args->endpoints;
    self->results = zsock_new (ZMQ_PULL);
    if (self->results) {
        zsock_set_rcvhwm (self->results, ENDPOINTS_ANSWER_HWM);
        zsock_set_linger (self->results, 0);
        if (zsock_bind (self->results, "%s", endpoints_results (self->endpoints)) == 0)
            endpoints_set_results_bound (self->endpoints, true);
        else {
            zsys_warning ("gateway: cannot bind %s (%s); results come through assignment",
                          endpoints_results (self->endpoints), zmq_strerror (zmq_errno ()));
            zsock_destroy (&self->results);
        }
    }
    return self;
}

static void
s_self_destroy (self_t **self_p)
{
    self_t *self = *self_p;
    if (self) {
        zhashx_destroy (&self->jobs);
        zhashx_destroy (&self->projects);
        zhashx_destroy (&self->functions);
        zsock_destroy (&self->frontend);
        zsock_destroy (&self->assignment);
        zsock_destroy (&self->recorder);
        if (self->results) {
            endpoints_set_results_bound (self->endpoints, false);
            zsock_destroy (&self->results);
        }
        store_destroy (&self->store);
        free (self);
        *self_p = NULL;
    }
}

void
gateway_actor (zsock_t *pipe, void *args)
{
    self_t *self = s_self_new (pipe, (const actor_args_t *) args);
    if (!self) {
        if (*endpoints_error ())
            actor_failed (pipe, "%s", endpoints_error ());
        else
            actor_failed (pipe, "cannot open the database in data dir '%s' (is it writable?)",
                          ((const actor_args_t *) args)->config->data_dir);
        return;
    }
    actor_ready (pipe);
    poller_t *poller = poller_new (pipe, self->frontend, self->assignment, NULL);
    if (self->results)
        poller_add (poller, self->results);
    //  Read only when the poller hands them out: asked again only then
    poller_quiet (poller, pipe);
    if (self->results)
        poller_quiet (poller, self->results);
    int64_t next_expiry = zclock_mono () + 1000;
    while (!self->terminated) {
        zsock_t *which = poller_wait (poller, 1000);
        if (zclock_mono () >= next_expiry) {
            s_expire_jobs (self);
            next_expiry = zclock_mono () + 1000;
        }
        if (which == pipe)
            s_self_handle_pipe (self);
        else
        if (which == self->frontend)
            s_handle_frontend (self);
        else
        if (which == self->assignment || (which && which == self->results))
            s_handle_assignment (self, which);
        else
        if (poller_terminated (poller))
            break;
    }
    poller_destroy (&poller);
    //  assignment stopped before us and answered every call it had: take
    //  those answers in, so that a call that may have run is recorded
    //  (http is gone; nobody waits for the replies)
    for (int which = 0; which < 2; which++) {
        zsock_t *socket = which ? self->results : self->assignment;
        while (socket && (zsock_events (socket) & ZMQ_POLLIN))
            s_handle_assignment (self, socket);
    }
    s_self_destroy (&self);
}

void
gateway_test (bool verbose)
{
    printf ("gateway: ");
    //  The gateway is exercised end to end (tests/e2e) with every actor
    //  behind it; here: it starts, answers, and refuses what is not a call.
    char data_dir [] = "/tmp/clowdy-gateway-test-XXXXXX";
    assert (mkdtemp (data_dir));
    char *argv [] = { "clowdy", "--data-dir", data_dir, NULL };
    config_t config;
    char error [256];
    assert (config_parse (&config, 3, argv, error, sizeof error) == 0);
    endpoints_t *endpoints = endpoints_new ();
    endpoints_set (endpoints, "gateway", "inproc://gateway-test");
    endpoints_set (endpoints, "assignment", "inproc://gateway-test-assignment");
    endpoints_set (endpoints, "recorder", "inproc://gateway-test-recorder");
    actor_args_t args = { &config, endpoints, 0 };
    zactor_t *gateway = actor_start (gateway_actor, &args, "gateway", NULL);
    zsock_t *http = zsock_new_dealer ("inproc://gateway-test");
    zsock_set_rcvtimeo (http, 5000);

    //  Unknown function id, bad id, unknown project
    assert (msg_send_invoke (http, NULL, "r1", "direct", "aaaaaaaaaaaa", "POST", "/api/invoke/aaaaaaaaaaaa",
                             "", "{}", "", 0, "local") == 0);
    msg_t *msg = msg_recv (http, false);
    assert (msg && msg_id (msg) == MSG_ID_REPLY && msg_reply_status (msg) == 404);
    assert (streq (msg_reply_request_id (msg), "r1"));
    msg_destroy (&msg);
    assert (msg_send_invoke (http, NULL, "r2", "direct", "../etc", "POST", "/api/invoke/../etc",
                             "", "{}", "", 0, "local") == 0);
    msg = msg_recv (http, false);
    assert (msg && msg_reply_status (msg) == 404);
    msg_destroy (&msg);
    assert (msg_send_invoke (http, NULL, "r3", "gateway", "nope/x", "GET", "/api/gateway/nope/x",
                             "a=1", "{\"x\":\"y\"}", "", 0, "") == 0);
    msg = msg_recv (http, false);
    assert (msg && msg_reply_status (msg) == 404);
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (msg_reply_headers (msg), "Content-Type")),
                   "application/json"));
    size_t size;
    const byte *body = msg_reply_body (msg, &size);
    assert (memmem (body, size, "Project not found", 17));
    //  The origin policy is on every reply of the dashboard's origin
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (msg_reply_headers (msg), "Content-Security-Policy")),
                   "sandbox"));
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (msg_reply_headers (msg), "X-Content-Type-Options")),
                   "nosniff"));
    msg_destroy (&msg);

    //  Workers of this process can answer here (broker/endpoints.h); a
    //  RESULT for no job of ours is dropped, and gateway goes on
    assert (endpoints_results_bound (endpoints));
    zsock_t *worker = zsock_new (ZMQ_PUSH);
    assert (zsock_connect (worker, "%s", endpoints_results (endpoints)) == 0);
    assert (msg_send_result (worker, NULL, "ffffffffffff", "{\"status\":\"success\",\"output\":1}") == 0);
    assert (msg_send_invoke (http, NULL, "r4", "direct", "aaaaaaaaaaaa", "POST", "/api/invoke/aaaaaaaaaaaa",
                             "", "{}", "", 0, "local") == 0);
    msg = msg_recv (http, false);
    assert (msg && msg_reply_status (msg) == 404 && streq (msg_reply_request_id (msg), "r4"));
    msg_destroy (&msg);
    zsock_destroy (&worker);

    //  A context is kept until INVALIDATE, but not while a change is on
    //  its way: a database being provisioned makes gateway load it for
    //  each call, so the first call after the database actor's commit has
    //  DATABASE_URL though no INVALIDATE came yet. `contexts` drops the
    //  cached contexts and retires no environment
    zsock_t *assignment = zsock_new_router ("inproc://gateway-test-assignment");
    zsock_set_rcvtimeo (assignment, 5000);
    store_t *store = store_open (data_dir);
    assert (store);
    assert (store_exec (store, "INSERT INTO projects (id, user_id, name, slug, created_at, updated_at)"
                        " VALUES ('abcdefabcdef', 'u', 'P', 'p', 'x', 'x')", NULL) == 1);
    assert (store_exec (store, "INSERT INTO functions (id, user_id, project_id, name, active_version, created_at,"
                        " updated_at) VALUES ('fedcbafedcba', 'u', 'abcdefabcdef', 'f', 1, 'x', 'x')", NULL) == 1);
    assert (store_exec (store, "INSERT INTO function_versions (function_id, version, code, created_at, updated_at)"
                        " VALUES ('fedcbafedcba', 1, 'x=1', 'x', 'x')", NULL) == 1);
    //  Each step: what gateway sends assignment for a call, and whether its
    //  context has the URL
    struct { const char *sql; const char *invalidate; bool url; } steps [] = {
        { NULL, NULL, false },                          //  loaded and kept
        { "INSERT INTO project_databases (project_id, state, database_url, created_at, updated_at)"
          " VALUES ('abcdefabcdef', 'provisioning', 'postgresql://db', 'x', 'x')", NULL, false },  //  the copy kept
        { NULL, "contexts abcdefabcdef", false },      //  dropped; loaded, unsettled
        { "UPDATE project_databases SET state = 'ready'", NULL, true },                        //  loaded again
        { NULL, NULL, true },                           //  kept now
    };
    for (size_t index = 0; index < sizeof steps / sizeof steps [0]; index++) {
        if (steps [index].sql)
            assert (store_exec (store, steps [index].sql, NULL) == 1);
        if (steps [index].invalidate)
            assert (msg_send_invalidate (http, NULL, steps [index].invalidate) == 0);
        char request_id [16];
        snprintf (request_id, sizeof request_id, "c%zu", index);
        assert (msg_send_invoke (http, NULL, request_id, "direct", "fedcbafedcba", "POST",
                                 "/api/invoke/fedcbafedcba", "", "{}", "", 0, "local") == 0);
        msg = msg_recv (assignment, true);          //  a RETIRE first would fail here
        assert (msg && msg_id (msg) == MSG_ID_RUN);
        assert ((strstr (msg_run_function (msg), "postgresql://db") != NULL) == steps [index].url);
        assert (msg_send_result (assignment, msg_route (msg), msg_run_job_id (msg),
                                 "{\"status\":\"success\",\"output\":1}") == 0);
        msg_destroy (&msg);
        msg = msg_recv (http, false);
        assert (msg && msg_id (msg) == MSG_ID_REPLY && msg_reply_status (msg) == 200);
        assert (streq (msg_reply_request_id (msg), request_id));
        msg_destroy (&msg);
    }
    store_destroy (&store);
    zsock_destroy (&assignment);

    zsock_destroy (&http);
    zactor_destroy (&gateway);
    assert (!endpoints_results_bound (endpoints));     //  Workers answer through assignment again
    endpoints_destroy (&endpoints);
    config_reset (&config);
    char command [256];
    snprintf (command, sizeof command, "rm -rf %s", data_dir);
    if (system (command)) { }
    printf ("OK\n");
}
