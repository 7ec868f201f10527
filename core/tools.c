/*  =========================================================================
    tools - what the assistant's model may do, as the calling user

    One table declares every tool: its name, the sentence and JSON Schema
    the model sees, and the REST call it makes (method, a path template,
    which arguments go into the body, which into the query). A call fills
    the template from the arguments, checks each value the path takes
    (ids are 12 hex characters, versions whole numbers, env keys
    [A-Za-z_][A-Za-z0-9_]*), builds the body from the named fields only,
    and runs the request through api_handle as the user. So the model's
    text never reaches a path, SQL or a shell unchecked: the API's own
    validation sees the rest, and its 404 for someone else's object is
    what the model gets.

    Two tools are more than one REST call:
    - invoke_function first GETs the function as the user (ownership), then
      sends INVOKE (kind `agent`) to the gateway and waits for its REPLY,
      no longer than the function's timeout plus a margin, nor past the
      chat's deadline. A late REPLY is dropped by id.
    - list_functions trims each function to what the model needs to pick
      one (no code), so a large account does not flood the context.
    A write the API says changes what the gateway caches is told to the
    gateway (INVALIDATE) on the same socket as later invokes, so an invoke
    after an update runs the new code.
    ========================================================================= */

#include "core/tools.h"
#include "broker/msg.h"
#include "core/util.h"

typedef enum {
    TOOL_REST,                      //  One REST call
    TOOL_LIST_FUNCTIONS,            //  REST, then trimmed
    TOOL_INVOKE                     //  Ownership check, then INVOKE to the gateway
} tool_kind_t;

typedef struct {
    const char *name;               //  As the model calls it
    const char *description;        //  What the model reads
    const char *parameters;         //  JSON Schema of the arguments
    const char *method;             //  REST method
    const char *path;               //  Template: {function_id}, {project_id}, {route_id}, {version}, {key}
    const char *body;               //  Space-separated arguments copied into the body, or NULL
    const char *query;              //  An argument sent as ?name=value, or NULL
    tool_kind_t kind;               //  How it runs
} tool_t;

#define ID_SCHEMA(what) "{\"type\":\"string\",\"description\":\"" what " id (12 hex characters)\"}"
#define FUNCTION_ID "\"function_id\":" ID_SCHEMA ("function")
#define PROJECT_ID "\"project_id\":" ID_SCHEMA ("project")
#define LIMITS "\"network_enabled\":{\"type\":\"boolean\"},\"timeout_seconds\":{\"type\":\"integer\"}," \
               "\"memory_mb\":{\"type\":\"integer\"}"

static const tool_t s_tools [] = {
    { "list_functions", "List the user's functions (id, name, status, active version, project).",
      "{\"type\":\"object\",\"properties\":{}}",
      "GET", "/api/functions", NULL, NULL, TOOL_LIST_FUNCTIONS },
    { "get_function", "Get one function with the code of its active version.",
      "{\"type\":\"object\",\"properties\":{" FUNCTION_ID "},\"required\":[\"function_id\"]}",
      "GET", "/api/functions/{function_id}", NULL, NULL, TOOL_REST },
    { "create_function", "Create a Python function. Its code defines handler(input) (or handler(event, "
      "context)) and returns a JSON-serialisable value; print() goes to the logs.",
      "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"code\":{\"type\":\"string\"},"
      "\"description\":{\"type\":\"string\"}," PROJECT_ID "," LIMITS "},\"required\":[\"name\",\"code\"]}",
      "POST", "/api/functions", "name code description project_id network_enabled timeout_seconds memory_mb",
      NULL, TOOL_REST },
    { "update_function", "Change a function; new code makes a new version and makes it active.",
      "{\"type\":\"object\",\"properties\":{" FUNCTION_ID ",\"name\":{\"type\":\"string\"},\"code\":"
      "{\"type\":\"string\"},\"description\":{\"type\":\"string\"}," LIMITS "},\"required\":[\"function_id\"]}",
      "PUT", "/api/functions/{function_id}", "name code description network_enabled timeout_seconds memory_mb",
      NULL, TOOL_REST },
    { "delete_function", "Delete a function with its versions and history.",
      "{\"type\":\"object\",\"properties\":{" FUNCTION_ID "},\"required\":[\"function_id\"]}",
      "DELETE", "/api/functions/{function_id}", NULL, NULL, TOOL_REST },
    { "list_versions", "List a function's versions, highest first, with their code.",
      "{\"type\":\"object\",\"properties\":{" FUNCTION_ID "},\"required\":[\"function_id\"]}",
      "GET", "/api/functions/{function_id}/versions", NULL, NULL, TOOL_REST },
    { "rollback_function", "Make an earlier version of a function the active one.",
      "{\"type\":\"object\",\"properties\":{" FUNCTION_ID ",\"version\":{\"type\":\"integer\"}},"
      "\"required\":[\"function_id\",\"version\"]}",
      "PUT", "/api/functions/{function_id}/versions/{version}", NULL, NULL, TOOL_REST },
    { "invoke_function", "Run a function with an input and get its output or its error.",
      "{\"type\":\"object\",\"properties\":{" FUNCTION_ID ",\"input\":{\"description\":\"any JSON value "
      "given to handler\"}},\"required\":[\"function_id\"]}",
      "POST", "/api/invoke/{function_id}", NULL, NULL, TOOL_INVOKE },
    { "list_invocations", "Recent calls of a function, newest first: status, input, output or error, "
      "logs (what it printed), duration.",
      "{\"type\":\"object\",\"properties\":{" FUNCTION_ID ",\"limit\":{\"type\":\"integer\",\"description\":"
      "\"how many, default 10\"}},\"required\":[\"function_id\"]}",
      "GET", "/api/functions/{function_id}/invocations", NULL, "limit", TOOL_REST },
    { "list_projects", "List the user's projects.",
      "{\"type\":\"object\",\"properties\":{}}",
      "GET", "/api/projects", NULL, NULL, TOOL_REST },
    { "create_project", "Create a project (it groups functions, routes and env vars).",
      "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"description\":{\"type\":\"string\"}},"
      "\"required\":[\"name\"]}",
      "POST", "/api/projects", "name description", NULL, TOOL_REST },
    { "list_routes", "List a project's HTTP routes (served at /api/gateway/<project slug>/<path>).",
      "{\"type\":\"object\",\"properties\":{" PROJECT_ID "},\"required\":[\"project_id\"]}",
      "GET", "/api/projects/{project_id}/routes", NULL, NULL, TOOL_REST },
    { "create_route", "Add an HTTP route to a project: method (GET, POST, ... or ANY) and path "
      "(/items/:id, /files/*rest) to a function of the project.",
      "{\"type\":\"object\",\"properties\":{" PROJECT_ID "," FUNCTION_ID ",\"method\":{\"type\":\"string\"},"
      "\"path\":{\"type\":\"string\"},\"description\":{\"type\":\"string\"}},"
      "\"required\":[\"project_id\",\"function_id\",\"method\",\"path\"]}",
      "POST", "/api/projects/{project_id}/routes", "function_id method path description", NULL, TOOL_REST },
    { "delete_route", "Delete a route of a project.",
      "{\"type\":\"object\",\"properties\":{" PROJECT_ID ",\"route_id\":" ID_SCHEMA ("route") "},"
      "\"required\":[\"project_id\",\"route_id\"]}",
      "DELETE", "/api/projects/{project_id}/routes/{route_id}", NULL, NULL, TOOL_REST },
    { "list_env_vars", "List a project's environment variables (secret values are hidden).",
      "{\"type\":\"object\",\"properties\":{" PROJECT_ID "},\"required\":[\"project_id\"]}",
      "GET", "/api/projects/{project_id}/env", NULL, NULL, TOOL_REST },
    { "set_env_var", "Set an environment variable of a project (its functions see it in os.environ).",
      "{\"type\":\"object\",\"properties\":{" PROJECT_ID ",\"key\":{\"type\":\"string\"},\"value\":"
      "{\"type\":\"string\"},\"is_secret\":{\"type\":\"boolean\"}},\"required\":[\"project_id\",\"key\",\"value\"]}",
      "POST", "/api/projects/{project_id}/env", "key value is_secret", NULL, TOOL_REST },
    { "delete_env_var", "Delete an environment variable of a project.",
      "{\"type\":\"object\",\"properties\":{" PROJECT_ID ",\"key\":{\"type\":\"string\"}},"
      "\"required\":[\"project_id\",\"key\"]}",
      "DELETE", "/api/projects/{project_id}/env/{key}", NULL, NULL, TOOL_REST },
    { "get_requirements", "A project's requirements.txt and the status of its dependency build.",
      "{\"type\":\"object\",\"properties\":{" PROJECT_ID "},\"required\":[\"project_id\"]}",
      "GET", "/api/projects/{project_id}/requirements", NULL, NULL, TOOL_REST },
    { "set_requirements", "Set a project's requirements.txt (pip packages); the build runs in the background.",
      "{\"type\":\"object\",\"properties\":{" PROJECT_ID ",\"requirements_txt\":{\"type\":\"string\"}},"
      "\"required\":[\"project_id\",\"requirements_txt\"]}",
      "PUT", "/api/projects/{project_id}/requirements", "requirements_txt", NULL, TOOL_REST },
    { "get_database_status", "Whether a project has a database, and its status.",
      "{\"type\":\"object\",\"properties\":{" PROJECT_ID "},\"required\":[\"project_id\"]}",
      "GET", "/api/projects/{project_id}/database", NULL, NULL, TOOL_REST },
};
#define TOOL_COUNT (sizeof s_tools / sizeof s_tools [0])

cJSON *
tools_schemas (void)
{
    cJSON *tools = cJSON_CreateArray ();
    for (size_t index = 0; index < TOOL_COUNT; index++) {
        cJSON *tool = cJSON_CreateObject ();
        cJSON_AddStringToObject (tool, "type", "function");
        cJSON *function = cJSON_AddObjectToObject (tool, "function");
        cJSON_AddStringToObject (function, "name", s_tools [index].name);
        cJSON_AddStringToObject (function, "description", s_tools [index].description);
        cJSON *parameters = cJSON_Parse (s_tools [index].parameters);
        assert (parameters);        //  Our own text
        cJSON_AddItemToObject (function, "parameters", parameters);
        cJSON_AddItemToArray (tools, tool);
    }
    return tools;
}

//  --------------------------------------------------------------------------
//  Results

static cJSON *
s_error (const char *message, int status)
{
    cJSON *error = cJSON_CreateObject ();
    cJSON_AddStringToObject (error, "error", message);
    if (status)
        cJSON_AddNumberToObject (error, "status", status);
    return error;
}

//  Every object marked is_secret shows "********" as its value, whatever
//  the API answered (it masks them too: this is the second lock)
static void
s_mask_secrets (cJSON *json)
{
    if (cJSON_IsObject (json) && cJSON_IsTrue (cJSON_GetObjectItem (json, "is_secret"))
    &&  cJSON_GetObjectItem (json, "value"))
        cJSON_ReplaceItemInObject (json, "value", cJSON_CreateString ("********"));
    cJSON *child;
    cJSON_ArrayForEach (child, json)
        s_mask_secrets (child);
}

//  text (size bytes, size > keep) cut to its first keep bytes, on a UTF-8
//  boundary, with a note of how much was left out. Caller frees.
static char *
s_cut_text (const char *text, size_t size, size_t keep)
{
    while (keep > 0 && ((unsigned char) text [keep] & 0xC0) == 0x80)
        keep--;
    return zsys_sprintf ("%.*s ... [cut: %zu more bytes]", (int) keep, text, size - keep);
}

char *
tools_result_text (cJSON *result)
{
    char *text = cJSON_PrintUnformatted (result);
    if (!text)
        return strdup ("null");
    size_t size = strlen (text);
    if (size > TOOLS_RESULT_MAX) {
        char *shown = s_cut_text (text, size, TOOLS_RESULT_MAX);
        free (text);
        text = shown;
    }
    return text;
}

//  One pass of tools_result_bound: a copy of the JSON with strings cut at
//  string_max bytes, that stops adding entries once its size (counted as
//  cJSON prints it) would pass budget. Room for a note is kept for each
//  list or object the copy is inside, so the notes of where it stopped fit.
#define S_NOTE_MAX  48              //  Bytes of a note and its comma and key, at most
typedef struct {
    size_t string_max;              //  Longest string kept whole
    size_t budget;                  //  Bytes of JSON the copy may take
    size_t used;                    //  Bytes it takes so far
    size_t notes;                   //  Bytes kept for notes of the lists and objects it is in
    bool full;                      //  An entry did not fit: no more are added
    bool cut;                       //  Something was left out
} s_bound_t;

static cJSON *
s_bound_string (s_bound_t *bound, const char *text)
{
    size_t size = strlen (text);
    cJSON *copy;
    if (size > bound->string_max) {
        char *shown = s_cut_text (text, size, bound->string_max);
        copy = cJSON_CreateString (shown);
        bound->used += util_json_string_size (shown, strlen (shown));
        bound->cut = true;
        free (shown);
    }
    else {
        copy = cJSON_CreateString (text);
        bound->used += util_json_string_size (text, size);
    }
    return copy;
}

static cJSON *
s_bound_copy (s_bound_t *bound, cJSON *json)
{
    if (cJSON_IsString (json))
        return s_bound_string (bound, json->valuestring ? json->valuestring : "");
    if (cJSON_IsArray (json) || cJSON_IsObject (json)) {
        bool object = cJSON_IsObject (json);
        cJSON *copy = object ? cJSON_CreateObject () : cJSON_CreateArray ();
        bound->used += 2;
        bound->notes += S_NOTE_MAX;
        int kept = 0;
        int left = 0;
        cJSON *child;
        cJSON_ArrayForEach (child, json) {
            if (bound->full) {
                left++;
                continue;
            }
            size_t before = bound->used;
            const char *key = child->string ? child->string : "";
            bound->used += (kept ? 1 : 0) + (object ? util_json_string_size (key, strlen (key)) + 1 : 0);
            cJSON *item = s_bound_copy (bound, child);
            if (bound->used + bound->notes > bound->budget) {
                //  This one does not fit: it and the ones after it are left out
                cJSON_Delete (item);
                bound->used = before;
                bound->full = true;
                left++;
                continue;
            }
            if (object)
                cJSON_AddItemToObject (copy, key, item);
            else
                cJSON_AddItemToArray (copy, item);
            kept++;
        }
        if (left) {
            char note [64];
            snprintf (note, sizeof note, "[cut: %d more %s]", left, object ? "fields" : "items");
            bound->used += (kept ? 1 : 0) + util_json_string_size (note, strlen (note))
                         + (object ? util_json_string_size ("...", 3) + 1 : 0);
            if (object)
                cJSON_AddStringToObject (copy, "...", note);
            else
                cJSON_AddItemToArray (copy, cJSON_CreateString (note));
            bound->cut = true;
        }
        bound->notes -= S_NOTE_MAX;
        return copy;
    }
    //  A number, true, false, null: at most as long as cJSON prints it
    char *text = cJSON_PrintUnformatted (json);
    bound->used += text ? strlen (text) : 4;
    free (text);
    return cJSON_Duplicate (json, false);
}

cJSON *
tools_result_bound (cJSON *json, size_t max, bool *cut)
{
    *cut = false;
    char *text = cJSON_PrintUnformatted (json);
    size_t size = text ? strlen (text) : 0;
    if (text && size <= max) {
        free (text);
        return json;
    }
    //  First pass: strings up to half the room. Each next one halves that,
    //  while entries are left out and strings are still long enough to read
    *cut = true;
    cJSON *shown = NULL;
    for (size_t string_max = max / 2; !shown || string_max >= 128; string_max /= 2) {
        s_bound_t bound = { .string_max = string_max, .budget = max };
        cJSON *copy = s_bound_copy (&bound, json);
        char *printed = cJSON_PrintUnformatted (copy);
        bool fits = printed && strlen (printed) <= max;
        free (printed);
        if (fits) {
            cJSON_Delete (shown);
            shown = copy;
            if (!bound.full)
                break;              //  Nothing but long strings was cut
        }
        else
            cJSON_Delete (copy);
        if (string_max < 16)
            break;
    }
    if (!shown) {
        //  No shape fits (a key too long, notes in too many levels): the
        //  JSON text as a string, cut
        size_t keep = max > 64 ? (max - 64) / 6 : 0;
        char *note = text && size > keep ? s_cut_text (text, size, keep) : NULL;
        shown = cJSON_CreateString (note ? note : "[cut]");
        free (note);
    }
    free (text);
    cJSON_Delete (json);
    return shown;
}

//  --------------------------------------------------------------------------
//  Calls

//  One REST call as the user. Returns the reply body parsed (caller
//  deletes) and its status in *status_p.
static cJSON *
s_rest (tools_context_t *context, const char *method, const char *path, const char *query,
        const char *body, int *status_p)
{
    api_request_t request = {
        .method = method, .path = path, .query = query, .body = body,
        .body_size = body ? strlen (body) : 0, .user_id = context->user_id
    };
    api_response_t response = { 0 };
    int rc = api_handle (context->api, &request, &response);
    *status_p = rc ? 404 : response.status;
    if (response.invalidate && context->invalidates) {
        //  The write is done: its INVALIDATE must reach gateway before this
        //  chat's next call, or gateway serves the old code or env. This is
        //  a helper thread, not an actor loop: it may wait for room (up to
        //  the chat's deadline); what is still waiting then goes first next time.
        zmsg_t *invalidate = msg_encode_invalidate (NULL, response.invalidate);
        msg_outbox_send (context->invalidates, &invalidate);
        while (!msg_outbox_flush (context->invalidates) && zclock_mono () < context->deadline)
            zclock_sleep (10);
    }
    cJSON *reply = response.body ? cJSON_Parse (response.body) : NULL;
    api_response_reset (&response);
    return reply ? reply : cJSON_CreateNull ();
}

//  An API reply that is not 2xx, as the model's error
static cJSON *
s_api_error (cJSON *reply, int status)
{
    cJSON *detail = cJSON_GetObjectItem (reply, "detail");
    cJSON *error = cJSON_CreateObject ();
    if (cJSON_IsString (detail))
        cJSON_AddStringToObject (error, "error", detail->valuestring);
    else {
        //  A 422 list: one sentence, and the list for the details
        cJSON_AddStringToObject (error, "error", "The arguments failed validation");
        if (detail)
            cJSON_AddItemToObject (error, "detail", cJSON_Duplicate (detail, true));
    }
    cJSON_AddNumberToObject (error, "status", status);
    cJSON_Delete (reply);
    return error;
}

//  Fill the path template from the arguments. Returns a heap path, or NULL
//  with the reason in error.
static char *
s_fill_path (const char *template, cJSON *arguments, char *error, size_t error_size)
{
    char path [512] = "";
    size_t used = 0;
    const char *cursor = template;
    while (*cursor) {
        const char *open = strchr (cursor, '{');
        size_t literal = open ? (size_t) (open - cursor) : strlen (cursor);
        if (used + literal >= sizeof path)
            return NULL;
        memcpy (path + used, cursor, literal);
        used += literal;
        path [used] = 0;
        if (!open)
            break;
        const char *end = strchr (open, '}');
        char name [32];
        snprintf (name, sizeof name, "%.*s", (int) (end - open - 1), open + 1);
        cursor = end + 1;
        cJSON *value = cJSON_GetObjectItem (arguments, name);
        char text [160];
        bool valid;
        if (streq (name, "version")) {
            double number = cJSON_GetNumberValue (value);
            if (cJSON_IsString (value))
                number = strspn (value->valuestring, "0123456789") == strlen (value->valuestring)
                         && strlen (value->valuestring) < 10 ? atof (value->valuestring) : NAN;
            valid = !isnan (number) && number >= 1 && number < 1e9 && number == (double) (long) number;
            snprintf (text, sizeof text, "%ld", valid ? (long) number : 0L);
        }
        else {
            const char *string = cJSON_GetStringValue (value);
            valid = string && strlen (string) < sizeof text
                 && (streq (name, "key") ? util_env_key_valid (string) : util_is_id (string));
            snprintf (text, sizeof text, "%s", valid ? string : "");
        }
        if (!valid) {
            snprintf (error, error_size, value ? "Argument '%s' is not a valid %s" : "Argument '%s' is missing",
                      name, streq (name, "key") ? "environment variable name"
                          : streq (name, "version") ? "version number" : "id (12 hex characters)");
            return NULL;
        }
        if (used + strlen (text) >= sizeof path)
            return NULL;
        strcpy (path + used, text);
        used += strlen (text);
    }
    return strdup (path);
}

//  invoke_function: through the gateway, recorded with source `agent`
static cJSON *
s_invoke (tools_context_t *context, const char *path, cJSON *arguments, bool *failed)
{
    const char *function_id = path + strlen ("/api/invoke/");
    char owned_path [64];
    snprintf (owned_path, sizeof owned_path, "/api/functions/%s", function_id);
    int status;
    cJSON *function = s_rest (context, "GET", owned_path, NULL, NULL, &status);
    if (status != 200)
        return s_api_error (function, status);
    double timeout_seconds = cJSON_GetNumberValue (cJSON_GetObjectItem (function, "timeout_seconds"));
    cJSON_Delete (function);
    if (!context->gateway)
        return s_error ("Invoking is not available here", 0);

    cJSON *body = cJSON_CreateObject ();
    cJSON *input = cJSON_GetObjectItem (arguments, "input");
    cJSON_AddItemToObject (body, "input", input ? cJSON_Duplicate (input, true) : cJSON_CreateObject ());
    char *body_text = cJSON_PrintUnformatted (body);
    cJSON_Delete (body);
    char request_id [UTIL_ID_SIZE];
    util_new_id (request_id);
    //  This chat's writes reach gateway before its call does
    int rc = context->invalidates && !msg_outbox_flush (context->invalidates)
           ? -1 : msg_send_invoke (context->gateway, NULL, request_id, "agent", function_id, "POST", path, "",
                              "{}", body_text, strlen (body_text), context->user_id);
    free (body_text);
    if (rc)
        return s_error ("The gateway could not take the call; try again", 503);

    //  The function's own timeout and a margin for a cold start, never past
    //  the chat's deadline
    int64_t wait_until = zclock_mono () + (int64_t) ((isnan (timeout_seconds) ? 30 : timeout_seconds) + 15) * 1000;
    if (context->deadline && wait_until > context->deadline)
        wait_until = context->deadline;
    zpoller_t *poller = zpoller_new (context->gateway, NULL);
    cJSON *result = NULL;
    while (!result) {
        int64_t left = wait_until - zclock_mono ();
        if (context->cancel && __atomic_load_n (context->cancel, __ATOMIC_RELAXED)) {
            result = s_error ("The chat was stopped while the call ran; it may still finish", 499);
            break;
        }
        if (left <= 0) {
            result = s_error ("No result before the chat's time ran out; the call may still finish "
                              "(see list_invocations)", 504);
            break;
        }
        //  In slices, so a cancel is seen within a quarter second
        if (!zpoller_wait (poller, left < 250 ? (int) left : 250))
            continue;
        msg_t *msg = msg_recv (context->gateway, false);
        if (msg && msg_id (msg) == MSG_ID_REPLY && streq (msg_reply_request_id (msg), request_id)) {
            size_t size;
            const byte *reply = msg_reply_body (msg, &size);
            cJSON *parsed = cJSON_ParseWithLength ((const char *) reply, size);
            int64_t reply_status = msg_reply_status (msg);
            if (reply_status == 200 && cJSON_IsObject (parsed)) {
                result = parsed;
                *failed = !cJSON_IsTrue (cJSON_GetObjectItem (parsed, "success"));
            }
            else
                result = s_api_error (parsed, (int) reply_status);
        }
        //  else: a late reply to an earlier call, or noise: dropped
        msg_destroy (&msg);
    }
    zpoller_destroy (&poller);
    return result;
}

cJSON *
tools_call (tools_context_t *context, const char *name, const char *arguments_text, bool *failed)
{
    *failed = true;
    const tool_t *tool = NULL;
    for (size_t index = 0; index < TOOL_COUNT && name; index++)
        if (streq (s_tools [index].name, name))
            tool = &s_tools [index];
    if (!tool) {
        char message [200];
        snprintf (message, sizeof message, "Unknown tool '%.100s'", name ? name : "");
        return s_error (message, 0);
    }
    cJSON *arguments = arguments_text && *arguments_text
                     ? cJSON_Parse (arguments_text) : cJSON_CreateObject ();
    if (!cJSON_IsObject (arguments)) {
        cJSON_Delete (arguments);
        return s_error ("The arguments are not a JSON object; send them as a JSON object string", 0);
    }
    char error [200];
    char *path = s_fill_path (tool->path, arguments, error, sizeof error);
    if (!path) {
        cJSON_Delete (arguments);
        return s_error (error, 0);
    }
    cJSON *result;
    if (tool->kind == TOOL_INVOKE)
        result = s_invoke (context, path, arguments, failed);
    else {
        char *body_text = NULL;
        if (tool->body) {
            cJSON *body = cJSON_CreateObject ();
            char fields [128];
            snprintf (fields, sizeof fields, "%s", tool->body);
            for (char *field = strtok (fields, " "); field; field = strtok (NULL, " ")) {
                cJSON *value = cJSON_GetObjectItem (arguments, field);
                if (value && !cJSON_IsNull (value))
                    cJSON_AddItemToObject (body, field, cJSON_Duplicate (value, true));
            }
            body_text = cJSON_PrintUnformatted (body);
            cJSON_Delete (body);
        }
        char query [64] = "";
        if (tool->query) {
            double number = cJSON_GetNumberValue (cJSON_GetObjectItem (arguments, tool->query));
            long value = isnan (number) ? 10 : number < 1 ? 1 : number > 100 ? 100 : (long) number;
            snprintf (query, sizeof query, "%s=%ld", tool->query, value);
        }
        int status;
        cJSON *reply = s_rest (context, tool->method, path, tool->query ? query : NULL, body_text, &status);
        free (body_text);
        if (status < 200 || status > 299)
            result = s_api_error (reply, status);
        else {
            *failed = false;
            result = reply;
            if (tool->kind == TOOL_LIST_FUNCTIONS && cJSON_IsArray (reply)) {
                const char *keep [] = { "id", "name", "description", "status", "active_version",
                                        "project_id", "updated_at", NULL };
                result = cJSON_CreateArray ();
                cJSON *function;
                cJSON_ArrayForEach (function, reply) {
                    cJSON *summary = cJSON_CreateObject ();
                    for (const char **field = keep; *field; field++) {
                        cJSON *value = cJSON_GetObjectItem (function, *field);
                        if (value)
                            cJSON_AddItemToObject (summary, *field, cJSON_Duplicate (value, true));
                    }
                    cJSON_AddItemToArray (result, summary);
                }
                cJSON_Delete (reply);
            }
        }
    }
    s_mask_secrets (result);
    free (path);
    cJSON_Delete (arguments);
    return result;
}

//  --------------------------------------------------------------------------
//  Selftest: tools over a real store, as two users

static cJSON *
s_call (tools_context_t *context, const char *name, const char *arguments, bool expect_failed)
{
    bool failed;
    cJSON *result = tools_call (context, name, arguments, &failed);
    assert (result);
    if (failed != expect_failed) {
        char *text = cJSON_PrintUnformatted (result);
        fprintf (stderr, "tools: %s %s -> %s\n", name, arguments, text);
        free (text);
        assert (false);
    }
    return result;
}

void
tools_test (bool verbose)
{
    printf ("tools: ");
    char data_dir [] = "/tmp/clowdy-tools-test-XXXXXX";
    assert (mkdtemp (data_dir));
    store_t *store = store_open (data_dir);
    assert (store);
    api_t *api = api_new (store);
    tools_context_t alice = { .api = api, .user_id = "alice" };
    tools_context_t bob = { .api = api, .user_id = "bob" };

    //  Every schema is valid JSON, every tool named once
    cJSON *schemas = tools_schemas ();
    assert ((size_t) cJSON_GetArraySize (schemas) == TOOL_COUNT);
    cJSON_Delete (schemas);

    cJSON *made = s_call (&alice, "create_function",
                          "{\"name\":\"adder\",\"code\":\"def handler(input):\\n    return 1\\n\",\"owner\":\"x\"}", false);
    const char *id = cJSON_GetStringValue (cJSON_GetObjectItem (made, "id"));
    assert (id && util_is_id (id));
    char arguments [256];
    snprintf (arguments, sizeof arguments, "{\"function_id\":\"%s\"}", id);

    cJSON *result = s_call (&alice, "list_functions", "{}", false);
    assert (cJSON_GetArraySize (result) == 1);
    assert (!cJSON_GetObjectItem (cJSON_GetArrayItem (result, 0), "code"));
    cJSON_Delete (result);
    result = s_call (&alice, "get_function", arguments, false);
    assert (strstr (cJSON_GetStringValue (cJSON_GetObjectItem (result, "code")), "return 1"));
    cJSON_Delete (result);
    snprintf (arguments, sizeof arguments, "{\"function_id\":\"%s\",\"code\":\"def handler(i):\\n    return 2\\n\"}", id);
    result = s_call (&alice, "update_function", arguments, false);
    assert (cJSON_GetNumberValue (cJSON_GetObjectItem (result, "active_version")) == 2);
    cJSON_Delete (result);
    snprintf (arguments, sizeof arguments, "{\"function_id\":\"%s\",\"version\":1}", id);
    result = s_call (&alice, "rollback_function", arguments, false);
    assert (cJSON_GetNumberValue (cJSON_GetObjectItem (result, "active_version")) == 1);
    cJSON_Delete (result);

    //  Bob sees nothing of Alice's: the API's own 404
    snprintf (arguments, sizeof arguments, "{\"function_id\":\"%s\"}", id);
    result = s_call (&bob, "get_function", arguments, true);
    assert (cJSON_GetNumberValue (cJSON_GetObjectItem (result, "status")) == 404);
    cJSON_Delete (result);
    result = s_call (&bob, "delete_function", arguments, true);
    cJSON_Delete (result);
    result = s_call (&bob, "invoke_function", arguments, true);
    assert (cJSON_GetNumberValue (cJSON_GetObjectItem (result, "status")) == 404);
    cJSON_Delete (result);
    result = s_call (&bob, "list_functions", "{}", false);
    assert (cJSON_GetArraySize (result) == 0);
    cJSON_Delete (result);

    //  Bad arguments: a sentence, never a path built from them
    result = s_call (&alice, "get_function", "{\"function_id\":\"../../etc\"}", true);
    assert (strstr (cJSON_GetStringValue (cJSON_GetObjectItem (result, "error")), "not a valid id"));
    cJSON_Delete (result);
    result = s_call (&alice, "get_function", "{}", true);
    assert (strstr (cJSON_GetStringValue (cJSON_GetObjectItem (result, "error")), "missing"));
    cJSON_Delete (result);
    result = s_call (&alice, "get_function", "{\"function_id\": ", true);
    assert (strstr (cJSON_GetStringValue (cJSON_GetObjectItem (result, "error")), "not a JSON object"));
    cJSON_Delete (result);
    result = s_call (&alice, "format_disk", "{}", true);
    assert (strstr (cJSON_GetStringValue (cJSON_GetObjectItem (result, "error")), "Unknown tool"));
    cJSON_Delete (result);
    result = s_call (&alice, "create_function", "{\"name\":\"\"}", true);
    assert (cJSON_GetNumberValue (cJSON_GetObjectItem (result, "status")) == 422);
    cJSON_Delete (result);

    //  Projects, env vars (a secret never shows), routes
    cJSON *project = s_call (&alice, "create_project", "{\"name\":\"Shop\"}", false);
    const char *project_id = cJSON_GetStringValue (cJSON_GetObjectItem (project, "id"));
    snprintf (arguments, sizeof arguments, "{\"project_id\":\"%s\",\"key\":\"TOKEN\",\"value\":\"hunter2\"}",
              project_id);
    result = s_call (&alice, "set_env_var", arguments, false);
    cJSON_Delete (result);
    snprintf (arguments, sizeof arguments, "{\"project_id\":\"%s\"}", project_id);
    result = s_call (&alice, "list_env_vars", arguments, false);
    char *text = tools_result_text (result);
    assert (strstr (text, "TOKEN") && !strstr (text, "hunter2"));
    free (text);
    cJSON_Delete (result);
    result = s_call (&bob, "list_env_vars", arguments, true);
    cJSON_Delete (result);
    snprintf (arguments, sizeof arguments, "{\"project_id\":\"%s\",\"key\":\"A/B\"}", project_id);
    result = s_call (&alice, "delete_env_var", arguments, true);
    cJSON_Delete (result);
    snprintf (arguments, sizeof arguments, "{\"project_id\":\"%s\",\"key\":\"TOKEN\"}", project_id);
    result = s_call (&alice, "delete_env_var", arguments, false);
    cJSON_Delete (result);
    snprintf (arguments, sizeof arguments,
              "{\"project_id\":\"%s\",\"function_id\":\"%s\",\"method\":\"GET\",\"path\":\"/x\"}", project_id, id);
    result = s_call (&alice, "create_route", arguments, true);      //  function is not in the project
    cJSON_Delete (result);
    cJSON_Delete (project);
    cJSON_Delete (made);

    //  A long result is cut for the model, on a character boundary
    cJSON *big = cJSON_CreateString ("");
    char *long_text = (char *) malloc (TOOLS_RESULT_MAX * 2);
    memset (long_text, 'x', TOOLS_RESULT_MAX * 2 - 1);
    long_text [TOOLS_RESULT_MAX * 2 - 1] = 0;
    cJSON_SetValuestring (big, long_text);
    text = tools_result_text (big);
    assert (strlen (text) < TOOLS_RESULT_MAX + 64 && strstr (text, "[cut:"));
    free (text);

    //  Bounded for showing: small results stay as they are
    bool cut;
    cJSON *small = cJSON_Parse ("{\"id\":\"0123456789ab\",\"name\":\"f\"}");
    assert (tools_result_bound (small, TOOLS_RESULT_MAX, &cut) == small && !cut);
    cJSON_Delete (small);
    //  A function with long code keeps every field, its code's start and a note
    cJSON *function = cJSON_CreateObject ();
    cJSON_AddStringToObject (function, "id", "0123456789ab");
    cJSON_AddStringToObject (function, "code", long_text);
    cJSON_AddNumberToObject (function, "active_version", 3);
    function = tools_result_bound (function, TOOLS_RESULT_MAX, &cut);
    text = cJSON_PrintUnformatted (function);
    assert (cut && strlen (text) <= TOOLS_RESULT_MAX);
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (function, "id")), "0123456789ab"));
    assert (cJSON_GetNumberValue (cJSON_GetObjectItem (function, "active_version")) == 3);
    const char *code = cJSON_GetStringValue (cJSON_GetObjectItem (function, "code"));
    assert (strncmp (code, "xxxx", 4) == 0 && strstr (code, " ... [cut: "));
    free (text);
    cJSON_Delete (function);
    //  A long list keeps its first entries and says how many more there were
    cJSON *list = cJSON_CreateArray ();
    for (int index = 0; index < 5000; index++) {
        cJSON *row = cJSON_CreateObject ();
        cJSON_AddNumberToObject (row, "index", index);
        cJSON_AddStringToObject (row, "name", "a function of the list");
        cJSON_AddItemToArray (list, row);
    }
    list = tools_result_bound (list, TOOLS_RESULT_MAX, &cut);
    text = cJSON_PrintUnformatted (list);
    int rows = cJSON_GetArraySize (list);
    assert (cut && strlen (text) <= TOOLS_RESULT_MAX && rows > 100);
    assert (cJSON_GetNumberValue (cJSON_GetObjectItem (cJSON_GetArrayItem (list, 5), "index")) == 5);
    assert (strstr (cJSON_GetStringValue (cJSON_GetArrayItem (list, rows - 1)), "more items]"));
    free (text);
    cJSON_Delete (list);
    //  A few long entries: shorter strings, so that all of them stay
    list = cJSON_CreateArray ();
    for (int index = 0; index < 4; index++) {
        cJSON *version = cJSON_CreateObject ();
        cJSON_AddNumberToObject (version, "version", 4 - index);
        cJSON_AddStringToObject (version, "code", long_text);
        cJSON_AddItemToArray (list, version);
    }
    list = tools_result_bound (list, TOOLS_RESULT_MAX, &cut);
    text = cJSON_PrintUnformatted (list);
    assert (cut && strlen (text) <= TOOLS_RESULT_MAX && cJSON_GetArraySize (list) == 4
            && !strstr (text, "more items") && !strstr (text, "more fields"));
    assert (cJSON_GetNumberValue (cJSON_GetObjectItem (cJSON_GetArrayItem (list, 3), "version")) == 1);
    free (text);
    cJSON_Delete (list);
    //  Escapes count as printed; a key too long for the room; deep nesting:
    //  whatever the shape, the JSON fits
    char *controls = (char *) malloc (TOOLS_RESULT_MAX * 2);
    memset (controls, 1, TOOLS_RESULT_MAX * 2 - 1);
    controls [TOOLS_RESULT_MAX * 2 - 1] = 0;
    cJSON *odd [4];
    odd [0] = cJSON_CreateString (controls);
    odd [1] = cJSON_CreateObject ();
    cJSON_AddNumberToObject (odd [1], long_text, 1);
    odd [2] = cJSON_CreateArray ();
    cJSON *level = odd [2];
    for (int depth = 0; depth < 900; depth++) {
        cJSON *inner = cJSON_CreateArray ();
        cJSON_AddItemToArray (level, inner);
        cJSON_AddItemToArray (level, cJSON_CreateString ("a sibling that takes room"));
        cJSON_AddItemToArray (level, cJSON_CreateString ("and another one"));
        level = inner;
    }
    odd [3] = cJSON_CreateArray ();
    cJSON_AddItemToArray (odd [3], cJSON_CreateString (controls));
    cJSON_AddItemToArray (odd [3], cJSON_CreateString (long_text));
    for (int index = 0; index < 4; index++) {
        odd [index] = tools_result_bound (odd [index], TOOLS_RESULT_MAX, &cut);
        text = cJSON_PrintUnformatted (odd [index]);
        assert (cut && text && strlen (text) <= TOOLS_RESULT_MAX);
        assert (cJSON_IsString (odd [index]) == (index == 0));     //  JSON of the same shape
        free (text);
        cJSON_Delete (odd [index]);
    }
    free (controls);
    free (long_text);
    cJSON_Delete (big);

    api_destroy (&api);
    store_destroy (&store);
    char command [256];
    snprintf (command, sizeof command, "rm -rf %s", data_dir);
    if (system (command)) { }
    printf ("OK\n");
}
