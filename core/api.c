/*  =========================================================================
    api - the control-plane REST API: one route table and its dispatcher,
    independent of HTTP transport

    Why: the http actor owns sockets, auth and CORS; everything that turns a
    parsed request into rows and back lives behind api_handle, so that it can
    be tested without a network and so that shapes, status codes and
    sentences follow ../shared/API.md in one place. Every REST endpoint is a
    row of s_routes below: method, pattern, handler, and flags that tell the
    http actor where it may run (API_PUBLIC: no credentials; API_NO_STORE:
    touches no SQLite, so it may run on the http loop; everything else runs
    on the control-plane pool, core/apipool.c, with its own connection).

    Files: this one holds the table, the dispatcher and the helpers every
    handler shares (core/api_call.h): one {"detail"} builder, one 422
    builder, one phrasing per error ("Not found", "Method not allowed").
    The handlers live by resource: api_projects.c (projects, their
    requirements and database), api_functions.c (functions, versions,
    invocation logs), api_routes.c (routes and env vars), api_stats.c
    (stats and their histograms), api_tokens.c (API tokens).

    How: api_handle splits the path after /api into segments and walks the
    table. A pattern segment ":name" binds any one segment (call->param, in
    order); others match literally. The first row whose pattern and method
    match runs; a path some row matches with another method is a 405; a
    path no row matches is not ours (-1, the caller answers 404). Each
    handler then does the same three steps:
    1. parse the body (400 "Request body is not valid JSON" when it is not
       UTF-8 JSON; 422 when it is JSON but not an object);
    2. validate every field it reads, collecting all problems into one 422
       list of {loc, msg, type} (FastAPI's shape, which existing clients
       read); unknown fields are ignored, null counts as "not sent" for
       optional fields;
    3. run its SQL through the store, scoped by req->user_id: an object of
       another user is "not found" with the same sentence as a missing one.
    Writes that change something the invoke path caches set resp->invalidate.

    Choices where API.md is silent are documented at the top of each
    resource file and in the README.
    ========================================================================= */

#include <czmq.h>
#include <math.h>
#include "core/api_call.h"
#include "core/lambda.h"

#define SEGMENTS_MAX            8       //  path segments after /api

//  One REST endpoint
typedef struct {
    const char *method;                 //  "GET", "POST", ...
    const char *pattern;                //  "/api/projects/:id/routes/:route_id"
    api_handler_fn *handler;            //  Fills the reply
    int flags;                          //  API_PUBLIC, API_NO_STORE
} s_route_t;

//  Every REST endpoint of the server. Invoke and the gateway are not here:
//  the http actor hands them to the gateway actor.
static const s_route_t s_routes [] = {
    { "GET",    "/api/health",                              api_health,             API_PUBLIC | API_NO_STORE },
    { "GET",    "/api/config",                              api_config,             API_PUBLIC | API_NO_STORE },
    { "GET",    "/api/stats",                               api_stats,              0 },
    { "GET",    "/api/cluster",                             api_cluster,            API_NO_STORE },
    //  Projects (api_projects.c)
    { "GET",    "/api/projects",                            api_projects_list,      0 },
    { "POST",   "/api/projects",                            api_project_create,     0 },
    { "GET",    "/api/projects/:id",                        api_project_get,        0 },
    { "PUT",    "/api/projects/:id",                        api_project_update,     0 },
    { "DELETE", "/api/projects/:id",                        api_project_delete,     0 },
    { "GET",    "/api/projects/:id/requirements",           api_requirements,       0 },
    { "PUT",    "/api/projects/:id/requirements",           api_requirements,       0 },
    { "GET",    "/api/projects/:id/database",               api_database_get,       0 },
    { "POST",   "/api/projects/:id/database/provision",     api_database_provision, 0 },
    { "DELETE", "/api/projects/:id/database/deprovision",   api_database_deprovision, 0 },
    //  Functions, versions and invocation logs (api_functions.c)
    { "GET",    "/api/functions",                           api_functions_list,     0 },
    { "POST",   "/api/functions",                           api_function_create,    0 },
    { "GET",    "/api/functions/:id",                       api_function_get,       0 },
    { "PUT",    "/api/functions/:id",                       api_function_update,    0 },
    { "DELETE", "/api/functions/:id",                       api_function_delete,    0 },
    { "GET",    "/api/projects/:id/functions",              api_project_functions,  0 },
    { "GET",    "/api/functions/:id/versions",              api_versions_list,      0 },
    { "GET",    "/api/functions/:id/versions/:version",     api_version_get,        0 },
    { "PUT",    "/api/functions/:id/versions/:version",     api_version_activate,   0 },
    { "GET",    "/api/functions/:id/invocations",           api_invocations_list,   0 },
    { "GET",    "/api/functions/:id/invocations/:invocation_id", api_invocation_get, 0 },
    //  Routes and env vars (api_routes.c)
    { "GET",    "/api/projects/:id/env",                    api_env_list,           0 },
    { "POST",   "/api/projects/:id/env",                    api_env_upsert,         0 },
    { "DELETE", "/api/projects/:id/env/:key",               api_env_delete,         0 },
    { "GET",    "/api/projects/:id/routes",                 api_routes_list,        0 },
    { "POST",   "/api/projects/:id/routes",                 api_route_create,       0 },
    { "PUT",    "/api/projects/:id/routes/:route_id",       api_route_update,       0 },
    { "DELETE", "/api/projects/:id/routes/:route_id",       api_route_delete,       0 },
    //  Async invocations, failed events and schedules (api_events.c). A
    //  direct invoke goes to the gateway; http sends ?async=1 ones here.
    { "POST",   "/api/invoke/:id",                          api_invoke_async,       API_PUBLIC },
    { "GET",    "/api/functions/:id/failed-events",         api_failed_events_list, 0 },
    { "POST",   "/api/functions/:id/failed-events/:event_id/redrive", api_failed_event_redrive, 0 },
    { "GET",    "/api/functions/:id/failed-events/:event_id", api_failed_event_get, 0 },
    { "DELETE", "/api/functions/:id/failed-events/:event_id", api_failed_event_delete, 0 },
    { "GET",    "/api/functions/:id/schedules",             api_schedules_list,     0 },
    { "POST",   "/api/functions/:id/schedules",             api_schedule_create,    0 },
    { "DELETE", "/api/functions/:id/schedules/:schedule_id", api_schedule_delete,   0 },
    //  API tokens of the caller (api_tokens.c)
    { "GET",    "/api/tokens",                              api_tokens_list,        0 },
    { "POST",   "/api/tokens",                              api_token_create,       0 },
    { "DELETE", "/api/tokens/:id",                          api_token_revoke,       0 },
};
#define S_ROUTES (sizeof s_routes / sizeof s_routes [0])


//  --------------------------------------------------------------------------
//  Replies

char *
api_detail_json (const char *detail)
{
    cJSON *json = cJSON_CreateObject ();
    cJSON_AddStringToObject (json, "detail", detail? detail: "");
    char *text = cJSON_PrintUnformatted (json);
    cJSON_Delete (json);
    return text;
}

void
api_response_reset (api_response_t *resp)
{
    if (!resp)
        return;
    free (resp->body);
    free (resp->invalidate);
    memset (resp, 0, sizeof *resp);
}

//  Reply with a JSON value (taken over and destroyed); NULL means the store
//  failed, which is a 500.
int
api_reply (api_call_t *call, int status, cJSON *json)
{
    free (call->resp->body);
    if (!json) {
        call->resp->status = 500;
        call->resp->body = api_detail_json ("Internal server error");
        return 0;
    }
    call->resp->status = status;
    call->resp->body = cJSON_PrintUnformatted (json);
    cJSON_Delete (json);
    return 0;
}

int
api_reply_detail (api_call_t *call, int status, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char *detail = zsys_vprintf (format, args);
    va_end (args);
    free (call->resp->body);
    call->resp->status = status;
    call->resp->body = api_detail_json (detail);
    zstr_free (&detail);
    return 0;
}

int
api_reply_store_error (api_call_t *call)
{
    return api_reply (call, 500, NULL);
}

void
api_invalidate (api_call_t *call, const char *kind, const char *id)
{
    free (call->resp->invalidate);
    call->resp->invalidate = zsys_sprintf ("%s %s", kind, id);
}


//  --------------------------------------------------------------------------
//  Validation: FastAPI-shaped errors {"loc": [where, field], "msg", "type"}

void
api_invalid_at (api_call_t *call, const char *where, const char *field, const char *type,
                const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char *msg = zsys_vprintf (format, args);
    va_end (args);
    cJSON *error = cJSON_CreateObject ();
    cJSON *loc = cJSON_AddArrayToObject (error, "loc");
    cJSON_AddItemToArray (loc, cJSON_CreateString (where));
    if (field)
        cJSON_AddItemToArray (loc, cJSON_CreateString (field));
    cJSON_AddStringToObject (error, "msg", msg);
    cJSON_AddStringToObject (error, "type", type);
    cJSON_AddItemToArray (call->errors, error);
    zstr_free (&msg);
}


bool
api_has_errors (api_call_t *call)
{
    return cJSON_GetArraySize (call->errors) > 0;
}

int
api_reply_invalid (api_call_t *call)
{
    cJSON *json = cJSON_CreateObject ();
    cJSON_AddItemToObject (json, "detail", call->errors);
    call->errors = cJSON_CreateArray ();
    return api_reply (call, 422, json);
}

//  Parse the body into call->body as a JSON object. Returns 0, or -1 with
//  the reply (400 or 422) already made.
int
api_body_parse_as (api_call_t *call, bool empty_ok)
{
    const api_request_t *req = call->req;
    if ((!req->body || req->body_size == 0) && empty_ok) {
        call->body = cJSON_CreateObject ();
        return 0;
    }
    if (!req->body || req->body_size == 0) {
        api_invalid_at (call, "body", NULL, "missing", "Field required");
        api_reply_invalid (call);
        return -1;
    }
    if (util_json_has_nul (req->body, req->body_size)) {
        api_invalid_at (call, "body", NULL, "string_nul",
                      "Strings must not contain the NUL character (\\u0000)");
        api_reply_invalid (call);
        return -1;
    }
    call->body = util_json_parse (req->body, req->body_size);
    if (!call->body) {
        api_reply_detail (call, 400, "Request body is not valid JSON");
        return -1;
    }
    if (!cJSON_IsObject (call->body)) {
        api_invalid_at (call, "body", NULL, "model_attributes_type",
                      "Input should be a valid dictionary or object to extract fields from");
        api_reply_invalid (call);
        return -1;
    }
    return 0;
}

//  The member sent for field, or NULL when absent or null (an error when
//  required).
static cJSON *
s_member (api_call_t *call, const char *field, bool required)
{
    cJSON *item = cJSON_GetObjectItemCaseSensitive (call->body, field);
    if (cJSON_IsNull (item))
        item = NULL;
    if (!item && required)
        api_invalid (call, field, "missing", "Field required");
    return item;
}

//  A string field, or NULL (absent, or invalid with an error added).
//  max_size counts characters when chars, else bytes.
const char *
api_string (api_call_t *call, const char *field, bool required, size_t max_size, bool chars)
{
    cJSON *item = s_member (call, field, required);
    if (!item)
        return NULL;
    if (!cJSON_IsString (item)) {
        api_invalid (call, field, "string_type", "Input should be a valid string");
        return NULL;
    }
    size_t size = chars? util_utf8_length (item->valuestring): strlen (item->valuestring);
    if (size > max_size) {
        api_invalid (call, field, "string_too_long", "String should have at most %zu %s",
                   max_size, chars? "characters": "bytes");
        return NULL;
    }
    return item->valuestring;
}

//  A display name: trimmed, 1..100 characters, no control characters.
//  Returns a heap copy, or NULL (absent, or invalid with an error added).
char *
api_name (api_call_t *call, const char *field, bool required)
{
    cJSON *item = s_member (call, field, required);
    if (!item)
        return NULL;
    if (!cJSON_IsString (item)) {
        api_invalid (call, field, "string_type", "Input should be a valid string");
        return NULL;
    }
    char *name = util_trim (item->valuestring);
    size_t chars = util_utf8_length (name);
    const char *problem = NULL;
    if (chars == 0)
        api_invalid (call, field, "string_too_short", "String should have at least 1 character");
    else
    if (chars > API_NAME_MAX_CHARS)
        api_invalid (call, field, "string_too_long", "String should have at most %d characters",
                   API_NAME_MAX_CHARS);
    else
        for (const unsigned char *c = (const unsigned char *) name; *c && !problem; c++)
            if (*c < 0x20 || *c == 0x7f)
                problem = "Value error, name must not contain control characters";
    if (problem)
        api_invalid (call, field, "value_error", "%s", problem);
    if (chars == 0 || chars > API_NAME_MAX_CHARS || problem)
        zstr_free (&name);
    return name;
}

//  An integer field within [min, max]; true when sent and valid.
bool
api_int (api_call_t *call, const char *field, int min, int max, int *value)
{
    cJSON *item = s_member (call, field, false);
    if (!item)
        return false;
    double number = item->valuedouble;
    if (!cJSON_IsNumber (item) || !isfinite (number) || number != floor (number)) {
        api_invalid (call, field, "int_type", "Input should be a valid integer");
        return false;
    }
    if (number < min) {
        api_invalid (call, field, "greater_than_equal", "Input should be greater than or equal to %d", min);
        return false;
    }
    if (number > max) {
        api_invalid (call, field, "less_than_equal", "Input should be less than or equal to %d", max);
        return false;
    }
    *value = (int) number;
    return true;
}

//  A boolean field; true when sent and valid.
bool
api_bool (api_call_t *call, const char *field, bool *value)
{
    cJSON *item = s_member (call, field, false);
    if (!item)
        return false;
    if (!cJSON_IsBool (item)) {
        api_invalid (call, field, "bool_type", "Input should be a valid boolean");
        return false;
    }
    *value = cJSON_IsTrue (item);
    return true;
}


//  Parse a decimal integer in [min, max] from the whole of text
bool
api_parse_int (const char *text, long min, long max, long *value)
{
    if (!text || !*text || strlen (text) > 18)
        return false;
    char *end;
    errno = 0;
    long number = strtol (text, &end, 10);
    if (errno || *end || !(isdigit ((unsigned char) text [0]) || text [0] == '-'))
        return false;
    if (number < min || number > max)
        return false;
    *value = number;
    return true;
}

//  The value of name in a raw query string (not decoded), or NULL
char *
api_query_param (const char *query, const char *name)
{
    size_t name_len = strlen (name);
    char *found = NULL;
    for (const char *pair = query; pair && *pair; ) {
        const char *amp = strchr (pair, '&');
        size_t length = amp? (size_t) (amp - pair): strlen (pair);
        if (length > name_len && strncmp (pair, name, name_len) == 0 && pair [name_len] == '=') {
            free (found);           //  the last value wins
            found = strndup (pair + name_len + 1, length - name_len - 1);
        }
        else
        if (length == name_len && strncmp (pair, name, name_len) == 0) {
            free (found);
            found = strdup ("");
        }
        pair = amp? amp + 1: NULL;
    }
    return found;
}

//  The list's ?limit= (fallback when absent) into *limit: false, with the
//  error added to the call's, when it is not a whole number from 1 to max
bool
api_query_limit (api_call_t *call, long fallback, long max, long *limit)
{
    *limit = fallback;
    char *text = api_query_param (call->req->query, "limit");
    if (!text)
        return true;
    if (!api_parse_int (text, LONG_MIN, LONG_MAX, limit))
        api_invalid_at (call, "query", "limit", "int_parsing",
                      "Input should be a valid integer, unable to parse string as an integer");
    else
    if (*limit < 1)
        api_invalid_at (call, "query", "limit", "greater_than_equal",
                      "Input should be greater than or equal to 1");
    else
    if (*limit > max)
        api_invalid_at (call, "query", "limit", "less_than_equal",
                      "Input should be less than or equal to %ld", max);
    zstr_free (&text);
    return !api_has_errors (call);
}


//  --------------------------------------------------------------------------
//  Endpoints with no store and no resource of their own

int
api_health (api_call_t *call)
{
    return api_reply (call, 200, cJSON_Parse ("{\"status\":\"ok\"}"));
}

int
api_config (api_call_t *call)
{
    const char *config = call->api->config_json;
    return api_reply (call, 200, cJSON_Parse (config? config: "{\"auth_mode\":\"local\"}"));
}



//  --------------------------------------------------------------------------
//  The handler set

static int (*s_records_sync) (void);

void
api_set_records_sync (int (*sync) (void))
{
    s_records_sync = sync;
}

int
api_records_sync (void)
{
    return s_records_sync ? s_records_sync () : 0;
}

api_t *
api_new (store_t *store)
{
    api_t *self = (api_t *) zmalloc (sizeof (api_t));
    assert (self);
    self->store = store;
    self->max_memory_mb = 2048;
    self->max_timeout_seconds = 900;
    api_set_quotas (self, NULL);
    return self;
}

void
api_set_limits (api_t *self, int max_memory_mb, int max_timeout_seconds)
{
    if (max_memory_mb >= 64 && max_memory_mb <= 2048)
        self->max_memory_mb = max_memory_mb;
    if (max_timeout_seconds >= 1 && max_timeout_seconds <= 900)
        self->max_timeout_seconds = max_timeout_seconds;
}

void
api_set_quotas (api_t *self, const config_t *config)
{
    static const config_t no_quotas;        //  Every limit 0: none
    self->quotas = config? config: &no_quotas;
}

bool
api_over_quota (api_call_t *call, long limit, const char *flag, const char *refusal,
                const char *sql, const char *id)
{
    if (limit <= 0)
        return false;
    cJSON *row = store_query_row (call->store, sql, "s", id);
    cJSON *count = row? row->child: NULL;
    bool known = cJSON_IsNumber (count);
    double value = known? count->valuedouble: 0;
    cJSON_Delete (row);
    if (!known)
        api_reply_store_error (call);
    else
    if (value > (double) limit)
        api_reply_detail (call, 409, "%s (at most %ld, --%s)", refusal, limit, flag);
    else
        return false;
    return true;
}

void
api_set_config (api_t *self, const char *auth_mode, const char *clerk_publishable_key, const char *version,
                bool assistant_configured, const char *gateway_host)
{
    cJSON *config = cJSON_CreateObject ();
    cJSON_AddStringToObject (config, "auth_mode", auth_mode? auth_mode: "local");
    if (clerk_publishable_key && *clerk_publishable_key)
        cJSON_AddStringToObject (config, "clerk_publishable_key", clerk_publishable_key);
    cJSON_AddStringToObject (config, "version", version? version: "dev");
    cJSON *assistant = cJSON_AddObjectToObject (config, "assistant");
    cJSON_AddBoolToObject (assistant, "configured", assistant_configured);
    //  The functions' own origin, so the UI shows gateway URLs there (the
    //  console's origin sandboxes function answers when one is set)
    if (gateway_host && *gateway_host)
        cJSON_AddStringToObject (config, "gateway_host", gateway_host);
    else
        cJSON_AddNullToObject (config, "gateway_host");
    free (self->config_json);
    self->config_json = cJSON_PrintUnformatted (config);
    cJSON_Delete (config);
}

void
api_destroy (api_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        free ((*self_p)->config_json);
        free (*self_p);
        *self_p = NULL;
    }
}


//  --------------------------------------------------------------------------
//  Dispatch

//  Split "/api/a/b/c" into segment; returns how many, or -1 if the path is
//  not under /api or has too many segments. One trailing '/' is tolerated.
static int
s_split_path (const char *path, char *segment [SEGMENTS_MAX])
{
    if (!path || strncmp (path, "/api", 4) != 0 || (path [4] != 0 && path [4] != '/'))
        return -1;
    int segments = 0;
    const char *cursor = path + 4;
    while (*cursor == '/') {
        cursor++;
        if (*cursor == 0)
            break;
        if (segments == SEGMENTS_MAX) {
            while (segments)
                free (segment [--segments]);
            return -1;
        }
        const char *slash = strchr (cursor, '/');
        size_t length = slash? (size_t) (slash - cursor): strlen (cursor);
        segment [segments++] = strndup (cursor, length);
        cursor += length;
    }
    return segments;
}

//  Does pattern ("/api/x/:id") match the segments? Binds its ":name"
//  segments into param, in order.
static bool
s_match (const char *pattern, char *segment [], int segments, const char *param [API_PARAMS_MAX])
{
    const char *cursor = pattern + 4;       //  past "/api"
    int index = 0, bound = 0;
    while (*cursor == '/') {
        cursor++;
        const char *slash = strchr (cursor, '/');
        size_t length = slash? (size_t) (slash - cursor): strlen (cursor);
        if (index == segments)
            return false;
        if (*cursor == ':') {
            assert (bound < API_PARAMS_MAX);
            param [bound++] = segment [index];
        }
        else
        if (strlen (segment [index]) != length || memcmp (segment [index], cursor, length))
            return false;
        index++;
        cursor += length;
    }
    return index == segments;
}

//  The route for method and the split path: the row, or NULL with
//  *path_known true when some row has that path under another method
static const s_route_t *
s_lookup (const char *method, char *segment [], int segments, const char *param [API_PARAMS_MAX],
          bool *path_known)
{
    *path_known = false;
    for (size_t index = 0; index < S_ROUTES; index++) {
        const char *bound [API_PARAMS_MAX] = { NULL };
        if (!s_match (s_routes [index].pattern, segment, segments, bound))
            continue;
        *path_known = true;
        if (streq (method, s_routes [index].method)) {
            memcpy (param, bound, sizeof bound);
            return &s_routes [index];
        }
    }
    return NULL;
}

int
api_route_flags (const char *method, const char *path)
{
    char *segment [SEGMENTS_MAX];
    int segments = method? s_split_path (path, segment): -1;
    if (segments < 0)
        return -1;
    const char *param [API_PARAMS_MAX];
    bool path_known;
    const s_route_t *route = s_lookup (method, segment, segments, param, &path_known);
    while (segments)
        free (segment [--segments]);
    if (route)
        return route->flags;
    //  A 405 needs no store; a path that is not ours is the caller's
    return path_known? API_NO_STORE: -1;
}

//  404 / 405 in the one phrasing of each (api.h)
static int
s_reply_not_found (api_call_t *call)
{
    return api_reply_detail (call, 404, API_NOT_FOUND);
}

static int
s_reply_method_not_allowed (api_call_t *call)
{
    return api_reply_detail (call, 405, API_METHOD_NOT_ALLOWED);
}

int
api_handle (api_t *self, const api_request_t *req, api_response_t *resp)
{
    assert (self);
    assert (req);
    assert (resp);
    //  The Lambda API (core/lambda.c) has its own paths, shapes and errors
    if (req->method && req->user_id && lambda_is_path (req->path))
        return lambda_handle (self, req, resp);
    api_response_reset (resp);
    api_call_t call = { .api = self, .store = self->store, .req = req, .resp = resp };
    call.errors = cJSON_CreateArray ();
    char *segment [SEGMENTS_MAX];
    //  A decoded path that is not UTF-8 names nothing here (ids, keys and
    //  names are UTF-8), and its bytes must not reach a detail sentence
    bool readable = req->path && util_utf8_valid (req->path, strlen (req->path));
    int segments = req->method && req->user_id && readable? s_split_path (req->path, segment): -1;
    int rc = -1;
    if (segments >= 0) {
        bool path_known;
        const s_route_t *route = s_lookup (req->method, segment, segments, call.param, &path_known);
        if (route && !self->store && !(route->flags & API_NO_STORE)) {
            zsys_error ("api: %s %s needs a store and this handler set has none", req->method, req->path);
            rc = api_reply_store_error (&call);
        }
        else
        if (route)
            rc = route->handler (&call);
        else
        if (path_known)
            rc = s_reply_method_not_allowed (&call);
    }
    if (rc == -1) {
        //  Not ours: the caller answers, but leave a sane reply anyway
        free (resp->invalidate);
        resp->invalidate = NULL;
        s_reply_not_found (&call);
        rc = -1;
    }
    //  The one rollback: a handler returns from any path that does not
    //  commit with its transaction still open, and it must not leak into
    //  the next request
    if (self->store)
        store_rollback (self->store);
    while (segments > 0)
        free (segment [--segments]);
    cJSON_Delete (call.body);
    cJSON_Delete (call.errors);
    return rc == -1? -1: 0;
}


//  --------------------------------------------------------------------------
//  Selftest helpers, shared by the resource files' selftests

//  Make one request and check its status; returns the parsed reply body
//  (caller destroys) and, if invalidate is given, a copy of the invalidation.
cJSON *
api_test_request (api_t *api, const char *user, const char *method, const char *path,
                  const char *query, const char *body, int status, char **invalidate)
{
    api_request_t req = { .method = method, .path = path, .query = query, .body = body,
                          .body_size = body? strlen (body): 0, .user_id = user };
    api_response_t resp = { 0 };
    int rc = api_handle (api, &req, &resp);
    if (resp.status != status) {
        printf ("\n%s %s -> %d %s (expected %d)\n", method, path, resp.status, resp.body, status);
        assert (false);
    }
    assert (rc == 0 || status == 404);
    cJSON *json = cJSON_Parse (resp.body);
    assert (json || status == 204);
    if (invalidate)
        *invalidate = resp.invalidate? strdup (resp.invalidate): NULL;
    api_response_reset (&resp);
    return json;
}

const char *
api_test_str (cJSON *json, const char *field)
{
    const char *value = cJSON_GetStringValue (cJSON_GetObjectItem (json, field));
    assert (value);
    return value;
}

int
api_test_num (cJSON *json, const char *field)
{
    cJSON *item = cJSON_GetObjectItem (json, field);
    assert (cJSON_IsNumber (item));
    return item->valueint;
}

//  Assert a 422 reply whose first error is at loc [where, field]
void
api_test_invalid (cJSON *reply, const char *where, const char *field)
{
    cJSON *first = cJSON_GetArrayItem (cJSON_GetObjectItem (reply, "detail"), 0);
    assert (first);
    cJSON *loc = cJSON_GetObjectItem (first, "loc");
    assert (streq (cJSON_GetArrayItem (loc, 0)->valuestring, where));
    if (field)
        assert (streq (cJSON_GetArrayItem (loc, 1)->valuestring, field));
    else
        assert (cJSON_GetArraySize (loc) == 1);
    assert (cJSON_IsString (cJSON_GetObjectItem (first, "msg")));
    assert (cJSON_IsString (cJSON_GetObjectItem (first, "type")));
    cJSON_Delete (reply);
}

void
api_test_detail (cJSON *reply, const char *detail)
{
    if (strneq (api_test_str (reply, "detail"), detail)) {
        printf ("\ndetail '%s', expected '%s'\n", api_test_str (reply, "detail"), detail);
        assert (false);
    }
    cJSON_Delete (reply);
}

double
api_test_double (cJSON *json, const char *field)
{
    cJSON *item = cJSON_GetObjectItem (json, field);
    assert (cJSON_IsNumber (item));
    return item->valuedouble;
}

char *
api_test_create (api_t *api, const char *user, const char *path, const char *body)
{
    cJSON *reply = api_test_request (api, user, "POST", path, NULL, body, 200, NULL);
    char *id = strdup (api_test_str (reply, "id"));
    cJSON_Delete (reply);
    return id;
}


//  --------------------------------------------------------------------------
//  Selftest: the route table and the dispatcher

void
api_test (bool verbose)
{
    printf ("api: ");
    //  Patterns bind their parameters in order; literal segments must match
    char *segment [SEGMENTS_MAX];
    const char *param [API_PARAMS_MAX] = { NULL };
    int segments = s_split_path ("/api/projects/p1/routes/r2", segment);
    assert (segments == 4);
    assert (s_match ("/api/projects/:id/routes/:route_id", segment, segments, param));
    assert (streq (param [0], "p1") && streq (param [1], "r2"));
    assert (!s_match ("/api/projects/:id/env/:key", segment, segments, param));
    assert (!s_match ("/api/projects/:id/routes", segment, segments, param));
    assert (!s_match ("/api/projects/:id/routes/:route_id/x", segment, segments, param));
    bool path_known;
    const s_route_t *route = s_lookup ("PUT", segment, segments, param, &path_known);
    assert (route && route->handler == api_route_update && path_known);
    route = s_lookup ("PATCH", segment, segments, param, &path_known);
    assert (!route && path_known);
    while (segments)
        free (segment [--segments]);
    assert (s_split_path ("/api/", segment) == 0);
    assert (s_split_path ("/apix", segment) == -1);
    assert (s_split_path ("/elsewhere", segment) == -1);
    assert (s_split_path ("/api/a/b/c/d/e/f/g/h/i/j", segment) == -1);
    segments = s_split_path ("/api/projects/", segment);  //  one trailing '/' is tolerated
    assert (segments == 1 && streq (segment [0], "projects"));
    free (segment [0]);
    //  Every pattern is under /api, binds at most API_PARAMS_MAX, and no
    //  two rows share method and pattern
    for (size_t index = 0; index < S_ROUTES; index++) {
        assert (strncmp (s_routes [index].pattern, "/api/", 5) == 0);
        for (size_t other = index + 1; other < S_ROUTES; other++)
            assert (strneq (s_routes [index].pattern, s_routes [other].pattern)
                 || strneq (s_routes [index].method, s_routes [other].method));
    }
    //  Flags tell http where a request may run
    assert (api_route_flags ("GET", "/api/health") == (API_PUBLIC | API_NO_STORE));
    assert (api_route_flags ("GET", "/api/config") == (API_PUBLIC | API_NO_STORE));
    assert (api_route_flags ("GET", "/api/projects") == 0);
    assert (api_route_flags ("DELETE", "/api/tokens/abc") == 0);
    assert (api_route_flags ("DELETE", "/api/projects") == API_NO_STORE);     //  a 405
    assert (api_route_flags ("GET", "/api/nothing") == -1);
    assert (api_route_flags ("POST", "/api/invoke/abcdefabcdef") == API_PUBLIC);     //  ?async=1 only
    assert (api_route_flags ("GET", "/api/gateway/shop/x") == -1);
    assert (api_route_flags (NULL, "/api/health") == -1);

    //  A handler set without a store answers what needs none, and a 500
    //  (never a crash) for what does
    api_t *bare = api_new (NULL);
    api_set_config (bare, "jwt", "pk_test", "1.2.3", false, "");
    cJSON *reply = api_test_request (bare, "alice", "GET", "/api/config", NULL, NULL, 200, NULL);
    assert (streq (api_test_str (reply, "auth_mode"), "jwt"));
    assert (streq (api_test_str (reply, "clerk_publishable_key"), "pk_test"));
    assert (streq (api_test_str (reply, "version"), "1.2.3"));
    assert (cJSON_IsFalse (cJSON_GetObjectItem (cJSON_GetObjectItem (reply, "assistant"), "configured")));
    assert (cJSON_IsNull (cJSON_GetObjectItem (reply, "gateway_host")));    //  No functions' origin: null
    cJSON_Delete (reply);
    api_set_config (bare, "local", NULL, "1.2.3", true, "fn.example.com");
    reply = api_test_request (bare, "alice", "GET", "/api/config", NULL, NULL, 200, NULL);
    assert (streq (api_test_str (reply, "gateway_host"), "fn.example.com"));
    assert (cJSON_GetObjectItem (reply, "clerk_publishable_key") == NULL);
    cJSON_Delete (reply);
    api_test_detail (api_test_request (bare, "alice", "GET", "/api/projects", NULL, NULL, 500, NULL),
                     "Internal server error");
    api_test_detail (api_test_request (bare, "alice", "PATCH", "/api/projects", NULL, NULL, 405, NULL),
                     "Method not allowed");
    api_destroy (&bare);

    store_t *store = store_new (":memory:");
    assert (store);
    api_t *api = api_new (store);
    assert (api);
    reply = api_test_request (api, "alice", "GET", "/api/health", NULL, NULL, 200, NULL);
    assert (streq (api_test_str (reply, "status"), "ok"));
    cJSON_Delete (reply);
    //  A direct invoke is the gateway's (only ?async=1 ones come here, to api_events.c)
    api_request_t req = { .method = "POST", .path = "/api/gateway/slug/x", .user_id = "alice" };
    api_response_t resp = { 0 };
    assert (api_handle (api, &req, &resp) == -1);
    req.path = "/elsewhere";
    assert (api_handle (api, &req, &resp) == -1);
    req.path = "/apix";
    assert (api_handle (api, &req, &resp) == -1);
    req.path = "/api/a/b/c/d/e/f/g/h/i/j";
    assert (api_handle (api, &req, &resp) == -1);
    api_response_reset (&resp);
    api_test_detail (api_test_request (api, "alice", "DELETE", "/api/projects", NULL, NULL, 405, NULL),
                     "Method not allowed");
    //  Body parsing: 400 for non-JSON, 422 for non-objects and missing bodies
    api_test_detail (api_test_request (api, "alice", "POST", "/api/projects", NULL, "{\"name\":", 400, NULL),
                     "Request body is not valid JSON");
    api_test_detail (api_test_request (api, "alice", "POST", "/api/projects", NULL, "{} x", 400, NULL),
                     "Request body is not valid JSON");
    api_test_detail (api_test_request (api, "alice", "POST", "/api/projects", NULL, "{\"name\":\"\xff\"}", 400, NULL),
                     "Request body is not valid JSON");
    api_test_invalid (api_test_request (api, "alice", "POST", "/api/projects", NULL, "[1]", 422, NULL), "body", NULL);
    api_test_invalid (api_test_request (api, "alice", "POST", "/api/projects", NULL, "\"s\"", 422, NULL), "body", NULL);
    api_test_invalid (api_test_request (api, "alice", "POST", "/api/projects", NULL, NULL, 422, NULL), "body", NULL);

    //  Path parameters reach handlers, also odd ones (empty, encoded)
    api_test_detail (api_test_request (api, "alice", "GET", "/api/projects//functions", NULL, NULL, 404, NULL),
                     "Project not found");
    api_test_detail (api_test_request (api, "alice", "GET", "/api/functions/%2e%2e", NULL, NULL, 404, NULL),
                     "Function not found");
    api_test_detail (api_test_request (api, "alice", "GET", "/api/projects/x/nothing", NULL, NULL, 404, NULL),
                     "Not found");

    api_destroy (&api);
    api_destroy (&api);
    store_destroy (&store);
    printf ("OK\n");
}
