/*  =========================================================================
    api_functions - the function resource: functions, their versions
    (save, list, rollback) and their invocation logs

    Choices where API.md is silent (documented in the README):
    - Function names: 1..100 characters after trimming, any printable text;
      names are never part of a URL (ids are), so users can name them as
      they like.
    - Saving code identical to the active version's makes no new version;
      a new version is numbered max+1, so a save after a rollback never
      collides.
    - Invocation duration_ms is duration_us rounded to the nearest ms; both
      are sent (the console shows sub-ms durations), with peak_memory_kb.
    - Writes set "function <id>"; deleting a function that routes point to
      sets "project <id>" (its routes went with it, so the project's route
      table must go too).
    ========================================================================= */

#include <czmq.h>
#include "core/api_call.h"

#define CODE_MAX_BYTES          (1024 * 1024)
#define INVOCATIONS_DEFAULT     50
#define INVOCATIONS_MAX         500
//  The list's answer stays near this size whatever the records hold: each
//  record's input, output, error and logs are cut to a prefix of
//  LIST_BYTES / limit / 4 characters (at least FIELD_MIN), and the record
//  names the fields cut in "list_truncated". At the default limit of 50 that is
//  83,886 characters a field, more than the 64 KiB a call's logs are capped
//  at, so the default list (and the UI's test panel, at 20) shows them
//  whole; at 500, 8,388 a field, about 16 MB at most. The single-record
//  GET returns everything.
#define INVOCATIONS_LIST_BYTES  (16 * 1024 * 1024)
#define INVOCATIONS_FIELD_MIN   1024
#define INVOCATION_COLUMNS \
    "id, function_id, %s AS input, %s AS output, status, %s AS error," \
    " (duration_us + 500) / 1000 AS duration_ms, source, http_method, http_path," \
    " created_at, cold_start, version, %s AS logs, duration_us, peak_memory_kb," \
    " input_truncated, output_truncated, logs_truncated, attempt, parent_invocation_id," \
    " round (init_us / 1000.0, 3) AS init_ms, round (queue_us / 1000.0, 3) AS queue_ms"

//  A list of functions or versions holds each one's code, up to 1 MiB, and
//  neither their number nor their versions have a cap: the code of the
//  first rows in the list's order is whole while the list's code stays
//  within LIST_CODE_BYTES as printed (function_versions.code_size, escapes
//  counted); each row after that has "" for code, and names "code" in
//  "list_truncated". The code left out is never read: sizes come from an
//  index (migration 14). The answer (built whole on a pool thread, then
//  printed and sent) so stays near that size, and its work near that
//  reading, whatever a user stored; GET of the function, or of the
//  version, returns its code whole. A version list has at most
//  VERSIONS_MAX rows, the highest first (?limit= asks for fewer).
#define LIST_CODE_BYTES         (16 * 1024 * 1024)
#define VERSIONS_MAX            1000
//  In a list's query, whose subquery r gives each row the code it and the
//  rows before it hold (running): its code within the budget (?1), and
//  whether it was left out
#define LIST_CODE \
    "CASE WHEN r.running <= ?1 THEN v.code ELSE '' END AS code, r.running > ?1 AS code_cut"

#define FUNCTION_FIELDS(code) \
    "f.id, f.name, f.description, " code ", f.runtime, f.status, f.network_enabled," \
    "       f.timeout_seconds, f.memory_mb, f.active_version, f.project_id, f.created_at," \
    "       f.updated_at, f.max_retries," \
    "       (SELECT p.layer_active FROM projects p WHERE p.id = f.project_id) AS layer_hash"
#define FUNCTION_FROM \
    "  FROM functions f" \
    "  LEFT JOIN function_versions v ON v.function_id = f.id AND v.version = f.active_version"
#define FUNCTION_SELECT         "SELECT " FUNCTION_FIELDS ("v.code") FUNCTION_FROM
#define FUNCTION_LIST_ORDER     "f.created_at DESC, f.rowid DESC"
//  The caller's functions that match where (its ?2 on), newest first, with
//  their code within the budget (?1)
#define FUNCTION_LIST(where) \
    "SELECT " FUNCTION_FIELDS (LIST_CODE) \
    "  FROM (SELECT f.rowid AS function_row, sum (coalesce (v.code_size, 0))" \
    "               OVER (ORDER BY " FUNCTION_LIST_ORDER " ROWS UNBOUNDED PRECEDING) AS running" \
    "          FROM functions f" \
    "          LEFT JOIN function_versions v INDEXED BY function_versions_sizes" \
    "            ON v.function_id = f.id AND v.version = f.active_version" \
    "         WHERE " where ") r" \
    "  JOIN functions f ON f.rowid = r.function_row" \
    "  LEFT JOIN function_versions v ON v.function_id = f.id AND v.version = f.active_version" \
    " ORDER BY " FUNCTION_LIST_ORDER


//  --------------------------------------------------------------------------
//  Lookups scoped by user

static cJSON *
s_function_json (api_call_t *call, const char *function_id)
{
    return store_query_row (call->store, FUNCTION_SELECT " WHERE f.id = ? AND f.user_id = ?",
                            "ss", function_id, call->req->user_id);
}

//  Is function_id one of the caller's functions? (shared: api_call.h)
bool
api_function_owned (api_call_t *call, const char *function_id)
{
    if (!util_is_id (function_id))
        return false;
    cJSON *row = store_query_row (call->store, "SELECT id FROM functions WHERE id = ? AND user_id = ?",
                                  "ss", function_id, call->req->user_id);
    cJSON_Delete (row);
    return row != NULL;
}


//  --------------------------------------------------------------------------
//  Functions and versions

//  Rows of a list whose code was cut say so in "list_truncated"
static cJSON *
s_list_cut (cJSON *rows)
{
    cJSON *row;
    cJSON_ArrayForEach (row, rows) {
        cJSON *cut = cJSON_GetObjectItem (row, "code_cut");
        if (cJSON_IsNumber (cut) && cut->valueint) {
            cJSON *truncated = cJSON_CreateArray ();
            cJSON_AddItemToArray (truncated, cJSON_CreateString ("code"));
            cJSON_AddItemToObject (row, "list_truncated", truncated);
        }
        cJSON_DeleteItemFromObject (row, "code_cut");
    }
    return rows;
}

int
api_functions_list (api_call_t *call)
{
    return api_reply (call, 200, s_list_cut (store_query (call->store,
        FUNCTION_LIST ("f.user_id = ?2"), "is", LIST_CODE_BYTES, call->req->user_id)));
}

//  Code: a non-blank string of at most 1 MiB
static const char *
s_code (api_call_t *call, bool required)
{
    const char *code = api_string (call, "code", required, CODE_MAX_BYTES, false);
    if (code) {
        const char *c = code;
        while (*c && isspace ((unsigned char) *c))
            c++;
        if (*c == 0) {
            api_invalid (call, "code", "string_too_short", "String should have at least 1 character");
            return NULL;
        }
    }
    return code;
}

//  MB of code the caller's functions keep, every kept version counted (a
//  sum over an index of their functions: no code is read), or -1
static double
s_code_mb (api_call_t *call)
{
    cJSON *row = store_query_row (call->store,
        "SELECT coalesce (sum (code_bytes), 0) / 1048576.0 AS mb FROM functions WHERE user_id = ?",
        "s", call->req->user_id);
    cJSON *mb = cJSON_GetObjectItem (row, "mb");
    double value = cJSON_IsNumber (mb)? mb->valuedouble: -1;
    cJSON_Delete (row);
    return value;
}

//  After an insert: the caller's code past --max-code-mb replies 409. A
//  save of code no bigger than the version it replaces (replaced; NULL for
//  a new function) is let through, so that after the quota was lowered the
//  user can still ship a smaller fix.
static bool
s_over_code_quota (api_call_t *call, const char *code, const char *replaced)
{
    long limit = call->api->quotas->max_code_mb;
    if (limit <= 0 || (replaced && util_json_string_size (code, strlen (code))
                                   <= util_json_string_size (replaced, strlen (replaced))))
        return false;
    double after = s_code_mb (call);
    if (after < 0)
        api_reply_store_error (call);
    else
    if (after > (double) limit)
        api_reply_detail (call, 409, "Your functions would keep %.2f MB of code, more than the %ld MB one user"
                          " may keep (--max-code-mb), every version a function keeps (--max-versions) counted;"
                          " delete functions or make this code smaller than the version it replaces",
                          after, limit);
    else
        return false;
    return true;
}

int
api_function_create (api_call_t *call)
{
    if (api_body_parse (call))
        return 0;
    char *name = api_name (call, "name", true);
    const char *code = s_code (call, true);
    const char *description = api_string (call, "description", false, API_DESCRIPTION_MAX_CHARS, true);
    const char *runtime = api_string (call, "runtime", false, 64, false);
    if (runtime && strneq (runtime, "python"))
        api_invalid (call, "runtime", "literal_error", "Input should be 'python'");
    const char *project_id = api_string (call, "project_id", false, 64, false);
    bool network_enabled = false;
    //  Defaults, lowered to the server's maxima when those are lower
    int timeout_seconds = call->api->max_timeout_seconds < 30 ? call->api->max_timeout_seconds : 30;
    int memory_mb = call->api->max_memory_mb < 128 ? call->api->max_memory_mb : 128;
    api_bool (call, "network_enabled", &network_enabled);
    api_int (call, "timeout_seconds", 1, call->api->max_timeout_seconds, &timeout_seconds);
    api_int (call, "memory_mb", 64, call->api->max_memory_mb, &memory_mb);
    int max_retries = 2;            //  Async calls' retries (actors/events.c)
    api_int (call, "max_retries", 0, 10, &max_retries);
    if (api_has_errors (call)) {
        free (name);
        return api_reply_invalid (call);
    }
    if (project_id && *project_id == 0)
        project_id = NULL;          //  "" from a form means "no project"
    char id [UTIL_ID_SIZE], now [UTIL_TIME_SIZE];
    util_new_id (id);
    util_now_iso (now);
    if (store_begin (call->store)) {
        free (name);
        return api_reply_store_error (call);
    }
    if (project_id && !api_project_owned (call, project_id)) {
        free (name);
        return api_reply_detail (call, 404, "Project not found");
    }
    int rc = store_exec (call->store,
        "INSERT INTO functions (id, user_id, project_id, name, description, network_enabled,"
        " timeout_seconds, memory_mb, active_version, created_at, updated_at, max_retries)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)", "sssssbiissi",
        id, call->req->user_id, project_id, name, description? description: "",
        (int) network_enabled, timeout_seconds, memory_mb, now, now, max_retries);
    if (rc == 1)
        rc = store_exec (call->store,
            "INSERT INTO function_versions (function_id, version, code, code_size, created_at, updated_at)"
            " VALUES (?1, 1, ?2, json_text_size (?2), ?3, ?3)", "sss", id, code, now);
    free (name);
    if (rc == 1 && (api_over_quota (call, call->api->quotas->max_functions, "max-functions",
                                    "You already have as many functions as one user may keep; delete one first",
                                    "SELECT count (*) FROM functions WHERE user_id = ?", call->req->user_id)
                ||  s_over_code_quota (call, code, NULL)))
        return 0;
    if (rc != 1 || store_commit (call->store))
        return api_reply_store_error (call);
    return api_reply (call, 200, s_function_json (call, id));
}

int
api_function_get (api_call_t *call)
{
    const char *function_id = call->param [0];
    cJSON *function = util_is_id (function_id)? s_function_json (call, function_id): NULL;
    if (!function)
        return api_reply_detail (call, 404, "Function not found");
    return api_reply (call, 200, function);
}

int
api_function_update (api_call_t *call)
{
    const char *function_id = call->param [0];
    if (api_body_parse (call))
        return 0;
    char *name = api_name (call, "name", false);
    const char *code = s_code (call, false);
    const char *description = api_string (call, "description", false, API_DESCRIPTION_MAX_CHARS, true);
    bool network_enabled;
    int timeout_seconds, memory_mb;
    bool set_network = api_bool (call, "network_enabled", &network_enabled);
    bool set_timeout = api_int (call, "timeout_seconds", 1, call->api->max_timeout_seconds, &timeout_seconds);
    bool set_memory = api_int (call, "memory_mb", 64, call->api->max_memory_mb, &memory_mb);
    int max_retries;
    bool set_retries = api_int (call, "max_retries", 0, 10, &max_retries);
    //  A disabled function keeps its code, versions and routes, but is not
    //  run: invoke and its gateway routes answer 503 until it is active again
    const char *status = api_string (call, "status", false, 16, false);
    if (status && strneq (status, "active") && strneq (status, "disabled"))
        api_invalid (call, "status", "literal_error", "Input should be 'active' or 'disabled'");
    if (api_has_errors (call)) {
        free (name);
        return api_reply_invalid (call);
    }
    if (store_begin (call->store)) {
        free (name);
        return api_reply_store_error (call);
    }
    cJSON *current = util_is_id (function_id)? s_function_json (call, function_id): NULL;
    if (!current) {
        free (name);
        return api_reply_detail (call, 404, "Function not found");
    }
    char now [UTIL_TIME_SIZE];
    util_now_iso (now);
    int rc = 0;
    const char *active_code = cJSON_GetStringValue (cJSON_GetObjectItem (current, "code"));
    if (code && !(active_code && streq (code, active_code))) {
        //  A new version, numbered past every existing one (so a save
        //  after a rollback never collides), and made active
        rc = store_exec (call->store,
            "INSERT INTO function_versions (function_id, version, code, code_size, created_at, updated_at)"
            " SELECT ?1, coalesce (max (version), 0) + 1, ?2, json_text_size (?2), ?3, ?3"
            "  FROM function_versions WHERE function_id = ?1", "sss", function_id, code, now);
        if (rc >= 0)
            rc = store_exec (call->store,
                "UPDATE functions SET active_version ="
                " (SELECT max (version) FROM function_versions WHERE function_id = ?) WHERE id = ?",
                "ss", function_id, function_id);
        //  The function keeps its newest --max-versions (the new one, which
        //  is active, and those before it) and the one that was active
        //  until now, which a rollback may have made an old one
        if (rc >= 0 && call->api->quotas->max_versions > 0)
            rc = store_exec (call->store,
                "DELETE FROM function_versions WHERE function_id = ?1 AND version <> ?3 AND version <="
                " (SELECT max (version) FROM function_versions WHERE function_id = ?1) - ?2",
                "sIi", function_id, (int64_t) call->api->quotas->max_versions,
                (int) cJSON_GetNumberValue (cJSON_GetObjectItem (current, "active_version")));
        if (rc >= 0 && s_over_code_quota (call, code, active_code? active_code: "")) {
            cJSON_Delete (current);
            free (name);
            return 0;
        }
    }
    if (rc >= 0 && name)
        rc = store_exec (call->store, "UPDATE functions SET name = ? WHERE id = ?", "ss", name, function_id);
    if (rc >= 0 && description)
        rc = store_exec (call->store, "UPDATE functions SET description = ? WHERE id = ?",
                         "ss", description, function_id);
    if (rc >= 0 && set_network)
        rc = store_exec (call->store, "UPDATE functions SET network_enabled = ? WHERE id = ?",
                         "bs", (int) network_enabled, function_id);
    if (rc >= 0 && set_timeout)
        rc = store_exec (call->store, "UPDATE functions SET timeout_seconds = ? WHERE id = ?",
                         "is", timeout_seconds, function_id);
    if (rc >= 0 && set_memory)
        rc = store_exec (call->store, "UPDATE functions SET memory_mb = ? WHERE id = ?",
                         "is", memory_mb, function_id);
    if (rc >= 0 && set_retries)
        rc = store_exec (call->store, "UPDATE functions SET max_retries = ? WHERE id = ?",
                         "is", max_retries, function_id);
    if (rc >= 0 && status)
        rc = store_exec (call->store, "UPDATE functions SET status = ? WHERE id = ?",
                         "ss", status, function_id);
    if (rc >= 0)
        rc = store_exec (call->store, "UPDATE functions SET updated_at = ? WHERE id = ?",
                         "ss", now, function_id);
    cJSON_Delete (current);
    free (name);
    if (rc < 0 || store_commit (call->store))
        return api_reply_store_error (call);
    api_invalidate (call, "function", function_id);
    return api_reply (call, 200, s_function_json (call, function_id));
}

int
api_function_delete (api_call_t *call)
{
    const char *function_id = call->param [0];
    if (!util_is_id (function_id))
        return api_reply_detail (call, 404, "Function not found");
    //  Routes to it go with it (cascade); then the gateway must drop the
    //  project's route table as well as the function, which "project <id>"
    //  does in one event
    cJSON *routed = store_query_row (call->store,
        "SELECT r.project_id FROM routes r WHERE r.function_id = ? LIMIT 1", "s", function_id);
    int rc = store_exec (call->store, "DELETE FROM functions WHERE id = ? AND user_id = ?",
                         "ss", function_id, call->req->user_id);
    if (rc < 0 || rc == 0)
        cJSON_Delete (routed);
    if (rc < 0)
        return api_reply_store_error (call);
    if (rc == 0)
        return api_reply_detail (call, 404, "Function not found");
    if (routed)
        api_invalidate (call, "project", cJSON_GetObjectItem (routed, "project_id")->valuestring);
    else
        api_invalidate (call, "function", function_id);
    cJSON_Delete (routed);
    return api_reply_detail (call, 200, "Function deleted");
}

int
api_versions_list (api_call_t *call)
{
    const char *function_id = call->param [0];
    long limit;
    if (!api_query_limit (call, VERSIONS_MAX, VERSIONS_MAX, &limit))
        return api_reply_invalid (call);
    if (!api_function_owned (call, function_id))
        return api_reply_detail (call, 404, "Function not found");
    //  Sizes and dates from the index (r), code only for the rows it fits
    return api_reply (call, 200, s_list_cut (store_query (call->store,
        "SELECT r.function_id, r.version, " LIST_CODE ", r.created_at, r.updated_at"
        "  FROM (SELECT function_id, version, created_at, updated_at, sum (code_size)"
        "               OVER (ORDER BY version DESC ROWS UNBOUNDED PRECEDING) AS running"
        "          FROM function_versions INDEXED BY function_versions_sizes"
        "         WHERE function_id = ?2 ORDER BY version DESC LIMIT ?3) r"
        "  JOIN function_versions v ON v.function_id = r.function_id AND v.version = r.version"
        " ORDER BY r.version DESC",
        "isi", LIST_CODE_BYTES, function_id, (int) limit)));
}

//  The version a path names (/api/functions/:id/versions/:version), of
//  one of the caller's functions: its number, or 0 when the call has been
//  answered (422 not a number, 404 no such function or version number)
static int
s_path_version (api_call_t *call)
{
    long version;
    if (!api_parse_int (call->param [1], LONG_MIN, LONG_MAX, &version)) {
        api_invalid_at (call, "path", "version", "int_parsing",
                      "Input should be a valid integer, unable to parse string as an integer");
        api_reply_invalid (call);
        return 0;
    }
    if (!api_function_owned (call, call->param [0])) {
        api_reply_detail (call, 404, "Function not found");
        return 0;
    }
    if (version < 1 || version > INT_MAX) {
        api_reply_detail (call, 404, "Version not found");
        return 0;
    }
    return (int) version;
}

int
api_version_get (api_call_t *call)
{
    int version = s_path_version (call);
    if (!version)
        return 0;
    cJSON *row = store_query_row (call->store,
        "SELECT function_id, version, code, created_at, updated_at FROM function_versions"
        " WHERE function_id = ? AND version = ?", "si", call->param [0], version);
    if (!row)
        return api_reply_detail (call, 404, "Version not found");
    return api_reply (call, 200, row);
}


int
api_version_activate (api_call_t *call)
{
    const char *function_id = call->param [0];
    int version = s_path_version (call);
    if (!version)
        return 0;
    char now [UTIL_TIME_SIZE];
    util_now_iso (now);
    int rc = store_exec (call->store,
        "UPDATE functions SET active_version = ?, updated_at = ? WHERE id = ? AND EXISTS"
        " (SELECT 1 FROM function_versions WHERE function_id = ? AND version = ?)",
        "isssi", version, now, function_id, function_id, version);
    if (rc < 0)
        return api_reply_store_error (call);
    if (rc == 0)
        return api_reply_detail (call, 404, "Version not found");
    api_invalidate (call, "function", function_id);
    return api_reply (call, 200, s_function_json (call, function_id));
}


int
api_invocations_list (api_call_t *call)
{
    const char *function_id = call->param [0];
    long limit;
    if (!api_query_limit (call, INVOCATIONS_DEFAULT, INVOCATIONS_MAX, &limit))
        return api_reply_invalid (call);
    if (!api_function_owned (call, function_id))
        return api_reply_detail (call, 404, "Function not found");
    //  Read-your-writes: a call whose answer has left is in the list
    if (api_records_sync ())
        zsys_warning ("api: the recorder did not answer; the newest invocations may be missing");
    long field = INVOCATIONS_LIST_BYTES / limit / 4;
    if (field < INVOCATIONS_FIELD_MIN)
        field = INVOCATIONS_FIELD_MIN;
    //  Cut in SQL (substr counts characters, so UTF-8 stays whole), so the
    //  full texts are never copied out of SQLite
    char sql [1024];
    snprintf (sql, sizeof sql,
        "SELECT " INVOCATION_COLUMNS ","
        "       length (input) > ?1 AS input_cut, length (output) > ?1 AS output_cut,"
        "       length (error) > ?1 AS error_cut, length (logs) > ?1 AS logs_cut"
        "  FROM invocations WHERE function_id = ?2"
        " ORDER BY created_at DESC, rowid DESC LIMIT ?3",
        "substr (input, 1, ?1)", "substr (output, 1, ?1)", "substr (error, 1, ?1)", "substr (logs, 1, ?1)");
    cJSON *rows = store_query (call->store, sql, "isi", (int) field, function_id, (int) limit);
    cJSON *row;
    cJSON_ArrayForEach (row, rows) {
        cJSON *truncated = cJSON_CreateArray ();
        const char *fields [] = { "input", "output", "error", "logs" };
        for (size_t i = 0; i < sizeof fields / sizeof fields [0]; i++) {
            char name [16];
            snprintf (name, sizeof name, "%s_cut", fields [i]);
            cJSON *cut = cJSON_GetObjectItem (row, name);
            if (cJSON_IsNumber (cut) && cut->valueint)
                cJSON_AddItemToArray (truncated, cJSON_CreateString (fields [i]));
            cJSON_DeleteItemFromObject (row, name);
        }
        if (cJSON_GetArraySize (truncated))
            cJSON_AddItemToObject (row, "list_truncated", truncated);
        else
            cJSON_Delete (truncated);
    }
    return api_reply (call, 200, rows);
}

//  An async attempt not ended yet has no record: what its event says
//  instead, with status "queued" or "running" (also for a `done` event,
//  whose success's record is on its way; actors/events.c)
static cJSON *
s_pending_attempt (api_call_t *call, const char *function_id, const char *invocation_id)
{
    cJSON *event = store_query_row (call->store,
        "SELECT status, source, attempts, first_invocation_id, current_invocation_id, body, created_at"
        "  FROM async_events WHERE function_id = ?1 AND status IN ('queued', 'running', 'done')"
        "   AND (first_invocation_id = ?2 OR current_invocation_id = ?2)", "ss", function_id, invocation_id);
    if (!event)
        return NULL;
    const char *status = cJSON_GetStringValue (cJSON_GetObjectItem (event, "status"));
    const char *first = cJSON_GetStringValue (cJSON_GetObjectItem (event, "first_invocation_id"));
    int attempts = (int) cJSON_GetNumberValue (cJSON_GetObjectItem (event, "attempts"));
    //  A queued event's next attempt is the one after those made
    //  A done one succeeded and its record is on its way: still "running" here
    if (streq (status, "done"))
        status = "running";
    int attempt = streq (status, "running") ? attempts : attempts + 1;
    cJSON *record = cJSON_CreateObject ();
    cJSON_AddStringToObject (record, "id", invocation_id);
    cJSON_AddStringToObject (record, "function_id", function_id);
    cJSON *parsed = cJSON_Parse (cJSON_GetStringValue (cJSON_GetObjectItem (event, "body")) ?: "{}");
    cJSON *input = parsed ? cJSON_GetObjectItemCaseSensitive (parsed, "input") : NULL;
    char *input_text = input ? cJSON_PrintUnformatted (input) : strdup ("{}");
    cJSON_AddStringToObject (record, "input", input_text);
    free (input_text);
    cJSON_Delete (parsed);
    cJSON_AddNullToObject (record, "output");
    cJSON_AddStringToObject (record, "status", status);
    cJSON_AddNullToObject (record, "error");
    cJSON_AddStringToObject (record, "source", cJSON_GetStringValue (cJSON_GetObjectItem (event, "source")));
    cJSON_AddStringToObject (record, "created_at", cJSON_GetStringValue (cJSON_GetObjectItem (event, "created_at")));
    cJSON_AddNumberToObject (record, "attempt", attempt);
    if (first && strneq (first, invocation_id))
        cJSON_AddStringToObject (record, "parent_invocation_id", first);
    else
        cJSON_AddNullToObject (record, "parent_invocation_id");
    cJSON_Delete (event);
    return record;
}

//  One invocation record, whole (the list cuts long fields)
int
api_invocation_get (api_call_t *call)
{
    const char *function_id = call->param [0];
    const char *invocation_id = call->param [1];
    if (!api_function_owned (call, function_id))
        return api_reply_detail (call, 404, "Function not found");
    if (api_records_sync ())
        zsys_warning ("api: the recorder did not answer; the newest invocations may be missing");
    char sql [512];
    snprintf (sql, sizeof sql, "SELECT " INVOCATION_COLUMNS " FROM invocations WHERE function_id = ? AND id = ?",
              "input", "output", "error", "logs");
    cJSON *rows = store_query (call->store, sql, "ss", function_id, invocation_id);
    if (!rows)
        return api_reply_store_error (call);
    cJSON *record = cJSON_DetachItemFromArray (rows, 0);
    cJSON_Delete (rows);
    if (!record)
        record = s_pending_attempt (call, function_id, invocation_id);
    if (!record)
        return api_reply_detail (call, 404, "Invocation not found");
    return api_reply (call, 200, record);
}

int
api_project_functions (api_call_t *call)
{
    const char *project_id = call->param [0];
    if (!api_project_owned (call, project_id))
        return api_reply_detail (call, 404, "Project not found");
    return api_reply (call, 200, s_list_cut (store_query (call->store,
        FUNCTION_LIST ("f.project_id = ?2 AND f.user_id = ?3"), "iss", LIST_CODE_BYTES, project_id,
        call->req->user_id)));
}


//  --------------------------------------------------------------------------
//  Selftest

//  A body {"name": tag, "code": "x=1  # tag" + size bytes of comment} into body
static void
s_test_code_body (char *body, size_t size, const char *tag)
{
    int used = sprintf (body, "{\"name\":\"%s\",\"code\":\"x=1  # %s", tag, tag);
    memset (body + used, 'c', size);
    strcpy (body + used + size, "\"}");
}

void
api_functions_test (bool verbose)
{
    printf ("api_functions: ");
    store_t *store = store_new (":memory:");
    assert (store);
    api_t *api = api_new (store);
    char *inval = NULL, *expected = NULL;
    char path [256], body [512];
    cJSON *reply;
    char *project_id = api_test_create (api, "alice", "/api/projects", "{\"name\":\"Shop\"}");
    char *bob_project = api_test_create (api, "bob", "/api/projects", "{\"name\":\"Bob's\"}");

    //  Functions: create with defaults, validation
    const char *fn_body = "{\"name\":\"hello\",\"code\":\"def handler(e):\\n    return 1\\n\",\"project_id\":\"%s\"}";
    snprintf (body, sizeof body, fn_body, project_id);
    cJSON *function = api_test_request (api, "alice", "POST", "/api/functions", NULL, body, 200, NULL);
    assert (streq (api_test_str (function, "name"), "hello"));
    assert (streq (api_test_str (function, "runtime"), "python"));
    assert (streq (api_test_str (function, "status"), "active"));
    assert (streq (api_test_str (function, "project_id"), project_id));
    assert (streq (api_test_str (function, "description"), ""));
    assert (api_test_num (function, "active_version") == 1);
    assert (api_test_num (function, "timeout_seconds") == 30);
    assert (api_test_num (function, "memory_mb") == 128);
    assert (api_test_num (function, "max_retries") == 2);
    assert (cJSON_IsFalse (cJSON_GetObjectItem (function, "network_enabled")));
    assert (strstr (api_test_str (function, "code"), "return 1"));
    char function_id [UTIL_ID_SIZE];
    snprintf (function_id, sizeof function_id, "%s", api_test_str (function, "id"));
    cJSON_Delete (function);

    reply = api_test_request (api, "alice", "POST", "/api/functions", NULL,
        "{\"name\":\"solo\",\"code\":\"x=1\",\"project_id\":null,\"network_enabled\":true,"
        "\"timeout_seconds\":900,\"memory_mb\":64,\"runtime\":\"python\"}", 200, NULL);
    assert (cJSON_IsNull (cJSON_GetObjectItem (reply, "project_id")));
    assert (cJSON_IsTrue (cJSON_GetObjectItem (reply, "network_enabled")));
    assert (api_test_num (reply, "timeout_seconds") == 900 && api_test_num (reply, "memory_mb") == 64);
    char solo_id [UTIL_ID_SIZE];
    snprintf (solo_id, sizeof solo_id, "%s", api_test_str (reply, "id"));
    cJSON_Delete (reply);

    api_test_invalid (api_test_request (api, "alice", "POST", "/api/functions", NULL, "{\"code\":\"x\"}", 422, NULL),
                      "body", "name");
    api_test_invalid (api_test_request (api, "alice", "POST", "/api/functions", NULL, "{\"name\":\"f\"}", 422, NULL),
                      "body", "code");
    api_test_invalid (api_test_request (api, "alice", "POST", "/api/functions", NULL,
                      "{\"name\":\"f\",\"code\":\"  \\n\"}", 422, NULL), "body", "code");
    api_test_invalid (api_test_request (api, "alice", "POST", "/api/functions", NULL,
                      "{\"name\":\"f\",\"code\":[1]}", 422, NULL), "body", "code");
    api_test_invalid (api_test_request (api, "alice", "POST", "/api/functions", NULL,
                      "{\"name\":\"f\",\"code\":\"x\",\"memory_mb\":63}", 422, NULL), "body", "memory_mb");
    api_test_invalid (api_test_request (api, "alice", "POST", "/api/functions", NULL,
                      "{\"name\":\"f\",\"code\":\"x\",\"memory_mb\":2049}", 422, NULL), "body", "memory_mb");
    api_test_invalid (api_test_request (api, "alice", "POST", "/api/functions", NULL,
                      "{\"name\":\"f\",\"code\":\"x\",\"memory_mb\":128.5}", 422, NULL), "body", "memory_mb");
    api_test_invalid (api_test_request (api, "alice", "POST", "/api/functions", NULL,
                      "{\"name\":\"f\",\"code\":\"x\",\"timeout_seconds\":0}", 422, NULL), "body", "timeout_seconds");
    api_test_invalid (api_test_request (api, "alice", "POST", "/api/functions", NULL,
                      "{\"name\":\"f\",\"code\":\"x\",\"timeout_seconds\":\"30\"}", 422, NULL), "body", "timeout_seconds");
    api_test_invalid (api_test_request (api, "alice", "POST", "/api/functions", NULL,
                      "{\"name\":\"f\",\"code\":\"x\",\"network_enabled\":1}", 422, NULL), "body", "network_enabled");
    api_test_invalid (api_test_request (api, "alice", "POST", "/api/functions", NULL,
                      "{\"name\":\"f\",\"code\":\"x\",\"runtime\":\"node\"}", 422, NULL), "body", "runtime");
    reply = api_test_request (api, "alice", "POST", "/api/functions", NULL, "{\"memory_mb\":1}", 422, NULL);
    assert (cJSON_GetArraySize (cJSON_GetObjectItem (reply, "detail")) == 3);   //  all problems at once
    cJSON_Delete (reply);
    snprintf (body, sizeof body, fn_body, bob_project);
    api_test_detail (api_test_request (api, "alice", "POST", "/api/functions", NULL, body, 404, NULL),
                     "Project not found");

    //  Code over 1 MiB is refused
    size_t big_size = CODE_MAX_BYTES + 64;
    char *big = (char *) malloc (big_size);
    int prefix = snprintf (big, big_size, "{\"name\":\"big\",\"code\":\"");
    memset (big + prefix, 'x', CODE_MAX_BYTES + 1);
    strcpy (big + prefix + CODE_MAX_BYTES + 1, "\"}");
    api_test_invalid (api_test_request (api, "alice", "POST", "/api/functions", NULL, big, 422, NULL), "body", "code");
    free (big);

    //  Function lists and scoping
    reply = api_test_request (api, "alice", "GET", "/api/functions", NULL, NULL, 200, NULL);
    assert (cJSON_GetArraySize (reply) == 2);
    assert (streq (api_test_str (cJSON_GetArrayItem (reply, 0), "id"), solo_id));
    cJSON_Delete (reply);
    snprintf (path, sizeof path, "/api/projects/%s/functions", project_id);
    reply = api_test_request (api, "alice", "GET", path, NULL, NULL, 200, NULL);
    assert (cJSON_GetArraySize (reply) == 1);
    cJSON_Delete (reply);
    api_test_detail (api_test_request (api, "bob", "GET", path, NULL, NULL, 404, NULL), "Project not found");
    snprintf (path, sizeof path, "/api/projects/%s", project_id);
    reply = api_test_request (api, "alice", "GET", path, NULL, NULL, 200, NULL);
    assert (api_test_num (reply, "function_count") == 1);
    cJSON_Delete (reply);
    reply = api_test_request (api, "bob", "GET", "/api/functions", NULL, NULL, 200, NULL);
    assert (cJSON_GetArraySize (reply) == 0);
    cJSON_Delete (reply);
    snprintf (path, sizeof path, "/api/functions/%s", function_id);
    api_test_detail (api_test_request (api, "bob", "GET", path, NULL, NULL, 404, NULL), "Function not found");
    api_test_detail (api_test_request (api, "bob", "PUT", path, NULL, "{\"name\":\"x\"}", 404, NULL), "Function not found");
    api_test_detail (api_test_request (api, "bob", "DELETE", path, NULL, NULL, 404, NULL), "Function not found");

    //  Versions: code saves make max+1, identical code makes none, rollback
    reply = api_test_request (api, "alice", "PUT", path, NULL, "{\"code\":\"v2\",\"memory_mb\":256}", 200, &inval);
    assert (api_test_num (reply, "active_version") == 2 && api_test_num (reply, "memory_mb") == 256);
    assert (streq (api_test_str (reply, "code"), "v2"));
    assert (streq (api_test_str (reply, "name"), "hello"));
    expected = zsys_sprintf ("function %s", function_id);
    assert (inval && streq (inval, expected));
    zstr_free (&inval);
    cJSON_Delete (reply);
    reply = api_test_request (api, "alice", "PUT", path, NULL, "{\"code\":\"v2\",\"name\":\"renamed\"}", 200, NULL);
    assert (api_test_num (reply, "active_version") == 2);
    assert (streq (api_test_str (reply, "name"), "renamed"));
    cJSON_Delete (reply);
    api_test_invalid (api_test_request (api, "alice", "PUT", path, NULL, "{\"timeout_seconds\":901}", 422, NULL),
                      "body", "timeout_seconds");
    reply = api_test_request (api, "alice", "PUT", path, NULL, "{\"max_retries\":0}", 200, NULL);
    assert (api_test_num (reply, "max_retries") == 0);
    cJSON_Delete (reply);
    api_test_invalid (api_test_request (api, "alice", "PUT", path, NULL, "{\"max_retries\":11}", 422, NULL),
                      "body", "max_retries");
    api_test_invalid (api_test_request (api, "alice", "PUT", path, NULL, "{\"max_retries\":-1}", 422, NULL),
                      "body", "max_retries");
    snprintf (path, sizeof path, "/api/functions/%s/versions/1", function_id);
    reply = api_test_request (api, "alice", "PUT", path, NULL, NULL, 200, &inval);
    assert (api_test_num (reply, "active_version") == 1);
    assert (strstr (api_test_str (reply, "code"), "return 1"));
    assert (inval && streq (inval, expected));
    zstr_free (&inval);
    cJSON_Delete (reply);
    snprintf (path, sizeof path, "/api/functions/%s", function_id);
    reply = api_test_request (api, "alice", "PUT", path, NULL, "{\"code\":\"v3\"}", 200, NULL);
    assert (api_test_num (reply, "active_version") == 3);  //  not 2: versions always grow
    cJSON_Delete (reply);
    snprintf (path, sizeof path, "/api/functions/%s/versions", function_id);
    reply = api_test_request (api, "alice", "GET", path, NULL, NULL, 200, NULL);
    assert (cJSON_GetArraySize (reply) == 3);
    assert (api_test_num (cJSON_GetArrayItem (reply, 0), "version") == 3);
    assert (streq (api_test_str (cJSON_GetArrayItem (reply, 0), "code"), "v3"));
    assert (streq (api_test_str (cJSON_GetArrayItem (reply, 2), "function_id"), function_id));
    cJSON_Delete (reply);
    api_test_detail (api_test_request (api, "bob", "GET", path, NULL, NULL, 404, NULL), "Function not found");
    snprintf (path, sizeof path, "/api/functions/%s/versions/99", function_id);
    api_test_detail (api_test_request (api, "alice", "PUT", path, NULL, NULL, 404, NULL), "Version not found");
    snprintf (path, sizeof path, "/api/functions/%s/versions/0", function_id);
    api_test_detail (api_test_request (api, "alice", "PUT", path, NULL, NULL, 404, NULL), "Version not found");
    snprintf (path, sizeof path, "/api/functions/%s/versions/abc", function_id);
    api_test_invalid (api_test_request (api, "alice", "PUT", path, NULL, NULL, 422, NULL), "path", "version");
    snprintf (path, sizeof path, "/api/functions/%s/versions/2", function_id);
    api_test_detail (api_test_request (api, "bob", "PUT", path, NULL, NULL, 404, NULL), "Function not found");
    zstr_free (&expected);

    //  Invocations and stats
    store_invocation_t rows [60];
    char stamps [60][UTIL_TIME_SIZE];
    for (int i = 0; i < 60; i++) {
        snprintf (stamps [i], UTIL_TIME_SIZE, "2026-01-01T00:00:%02d.000000Z", i);
        rows [i] = (store_invocation_t) {
            .function_id = function_id, .input = "{}", .output = "1",
            .status = i % 4 == 0? "error": "success", .source = "direct",
            .duration_us = 2000, .version = 3, .cold_start = i == 0, .created_at = stamps [i] };
    }
    assert (store_invocations_insert (store, rows, 60) == 60);
    snprintf (path, sizeof path, "/api/functions/%s/invocations", function_id);
    reply = api_test_request (api, "alice", "GET", path, NULL, NULL, 200, NULL);
    assert (cJSON_GetArraySize (reply) == 50);
    cJSON *newest = cJSON_GetArrayItem (reply, 0);
    assert (streq (api_test_str (newest, "created_at"), stamps [59]));
    assert (api_test_num (newest, "duration_ms") == 2 && api_test_num (newest, "version") == 3);
    assert (api_test_num (newest, "duration_us") == 2000);
    assert (cJSON_IsFalse (cJSON_GetObjectItem (newest, "cold_start")));
    assert (cJSON_IsNull (cJSON_GetObjectItem (newest, "logs")));
    cJSON_Delete (reply);
    reply = api_test_request (api, "alice", "GET", path, "limit=500", NULL, 200, NULL);
    assert (cJSON_GetArraySize (reply) == 60);
    cJSON_Delete (reply);
    reply = api_test_request (api, "alice", "GET", path, "x=1&limit=7", NULL, 200, NULL);
    assert (cJSON_GetArraySize (reply) == 7);
    cJSON_Delete (reply);
    api_test_invalid (api_test_request (api, "alice", "GET", path, "limit=501", NULL, 422, NULL), "query", "limit");
    api_test_invalid (api_test_request (api, "alice", "GET", path, "limit=0", NULL, 422, NULL), "query", "limit");
    api_test_invalid (api_test_request (api, "alice", "GET", path, "limit=ten", NULL, 422, NULL), "query", "limit");
    api_test_invalid (api_test_request (api, "alice", "GET", path, "limit=", NULL, 422, NULL), "query", "limit");
    api_test_detail (api_test_request (api, "bob", "GET", path, NULL, NULL, 404, NULL), "Function not found");
    //  A big record: the list cuts its long fields and says which, the
    //  single-record GET has them whole
    size_t list_big_size = 100 * 1024;
    char *list_big = (char *) malloc (list_big_size + 1);
    memset (list_big, 'x', list_big_size);
    list_big [list_big_size] = 0;
    store_invocation_t big_row = { .id = "b16b16b16b16", .function_id = function_id, .input = list_big, .output = "1",
                                   .status = "success", .source = "direct", .logs = list_big,
                                   .created_at = "2026-01-02T00:00:00.000000Z" };
    assert (store_invocations_insert (store, &big_row, 1) == 1);
    reply = api_test_request (api, "alice", "GET", path, "limit=500", NULL, 200, NULL);
    newest = cJSON_GetArrayItem (reply, 0);
    assert (streq (api_test_str (newest, "id"), "b16b16b16b16"));
    assert (strlen (api_test_str (newest, "input")) == INVOCATIONS_LIST_BYTES / 500 / 4);
    assert (strlen (api_test_str (newest, "logs")) == INVOCATIONS_LIST_BYTES / 500 / 4);
    assert (streq (api_test_str (newest, "output"), "1"));
    cJSON *truncated = cJSON_GetObjectItem (newest, "list_truncated");
    assert (cJSON_GetArraySize (truncated) == 2);
    assert (streq (cJSON_GetStringValue (cJSON_GetArrayItem (truncated, 0)), "input"));
    assert (streq (cJSON_GetStringValue (cJSON_GetArrayItem (truncated, 1)), "logs"));
    assert (!cJSON_GetObjectItem (newest, "input_cut"));
    assert (!cJSON_GetObjectItem (cJSON_GetArrayItem (reply, 1), "list_truncated"));
    cJSON_Delete (reply);
    snprintf (path, sizeof path, "/api/functions/%s/invocations/b16b16b16b16", function_id);
    reply = api_test_request (api, "alice", "GET", path, NULL, NULL, 200, NULL);
    assert (strlen (api_test_str (reply, "input")) == list_big_size && strlen (api_test_str (reply, "logs")) == list_big_size);
    assert (!cJSON_GetObjectItem (reply, "list_truncated"));
    cJSON_Delete (reply);
    api_test_detail (api_test_request (api, "bob", "GET", path, NULL, NULL, 404, NULL), "Function not found");
    snprintf (path, sizeof path, "/api/functions/%s/invocations/000000000000", function_id);
    api_test_detail (api_test_request (api, "alice", "GET", path, NULL, NULL, 404, NULL), "Invocation not found");
    free (list_big);

    //  Deleting a function with routes drops the project's route table too
    snprintf (body, sizeof body, fn_body, project_id);
    reply = api_test_request (api, "alice", "POST", "/api/functions", NULL, body, 200, NULL);
    char routed_id [UTIL_ID_SIZE];
    snprintf (routed_id, sizeof routed_id, "%s", api_test_str (reply, "id"));
    cJSON_Delete (reply);
    snprintf (path, sizeof path, "/api/projects/%s/routes", project_id);
    snprintf (body, sizeof body, "{\"function_id\":\"%s\",\"method\":\"GET\",\"path\":\"/routed\"}", routed_id);
    cJSON_Delete (api_test_request (api, "alice", "POST", path, NULL, body, 200, NULL));
    snprintf (path, sizeof path, "/api/functions/%s", routed_id);
    api_test_detail (api_test_request (api, "alice", "DELETE", path, NULL, NULL, 200, &inval), "Function deleted");
    expected = zsys_sprintf ("project %s", project_id);
    assert (inval && streq (inval, expected));
    zstr_free (&inval);
    zstr_free (&expected);

    //  Function delete
    snprintf (path, sizeof path, "/api/functions/%s", solo_id);
    api_test_detail (api_test_request (api, "alice", "DELETE", path, NULL, NULL, 200, &inval), "Function deleted");
    expected = zsys_sprintf ("function %s", solo_id);
    assert (inval && streq (inval, expected));
    zstr_free (&inval);
    zstr_free (&expected);
    api_test_detail (api_test_request (api, "alice", "GET", path, NULL, NULL, 404, NULL), "Function not found");


    //  Limits the server lowered apply to defaults and checks
    api_set_limits (api, 256, 10);
    reply = api_test_request (api, "alice", "POST", "/api/functions", NULL, "{\"name\":\"low\",\"code\":\"x=1\"}", 200, NULL);
    assert (api_test_num (reply, "timeout_seconds") == 10 && api_test_num (reply, "memory_mb") == 128);
    cJSON_Delete (reply);
    api_test_invalid (api_test_request (api, "alice", "POST", "/api/functions", NULL,
                      "{\"name\":\"f\",\"code\":\"x\",\"memory_mb\":512}", 422, NULL), "body", "memory_mb");

    //  Quotas: carol may keep two functions; each keeps its newest two
    //  versions and the one active before a save
    config_t quotas = { 0 };
    api_set_quotas (api, &quotas);
    quotas.max_functions = 2;
    quotas.max_versions = 2;
    char *quota_id = api_test_create (api, "carol", "/api/functions", "{\"name\":\"q1\",\"code\":\"x=1\"}");
    zstr_free (&quota_id);
    quota_id = api_test_create (api, "carol", "/api/functions", "{\"name\":\"q2\",\"code\":\"x=1\"}");
    api_test_detail (api_test_request (api, "carol", "POST", "/api/functions", NULL,
                     "{\"name\":\"q3\",\"code\":\"x=1\"}", 409, NULL),
                     "You already have as many functions as one user may keep; delete one first"
                     " (at most 2, --max-functions)");
    assert (cJSON_GetArraySize (reply = api_test_request (api, "carol", "GET", "/api/functions",
                                                          NULL, NULL, 200, NULL)) == 2);
    cJSON_Delete (reply);
    snprintf (path, sizeof path, "/api/functions/%s", quota_id);
    for (int version = 2; version <= 4; version++) {
        snprintf (body, sizeof body, "{\"code\":\"x=%d\"}", version);
        cJSON_Delete (api_test_request (api, "carol", "PUT", path, NULL, body, 200, NULL));
    }
    snprintf (path, sizeof path, "/api/functions/%s/versions/3", quota_id);
    cJSON_Delete (api_test_request (api, "carol", "PUT", path, NULL, NULL, 200, NULL));
    snprintf (path, sizeof path, "/api/functions/%s", quota_id);
    cJSON_Delete (api_test_request (api, "carol", "PUT", path, NULL, "{\"code\":\"x=5\"}", 200, NULL));
    snprintf (path, sizeof path, "/api/functions/%s/versions", quota_id);
    reply = api_test_request (api, "carol", "GET", path, NULL, NULL, 200, NULL);
    assert (cJSON_GetArraySize (reply) == 3);
    assert (api_test_num (cJSON_GetArrayItem (reply, 0), "version") == 5);
    assert (api_test_num (cJSON_GetArrayItem (reply, 1), "version") == 4);
    assert (api_test_num (cJSON_GetArrayItem (reply, 2), "version") == 3);
    cJSON_Delete (reply);
    //  The code each function keeps is summed by the triggers
    cJSON *bytes = store_query_row (store, "SELECT code_bytes, (SELECT sum (code_size) FROM function_versions"
                                    " WHERE function_id = ?1) AS summed FROM functions WHERE id = ?1", "s", quota_id);
    assert (api_test_num (bytes, "code_bytes") == api_test_num (bytes, "summed"));
    assert (api_test_num (bytes, "code_bytes") == 3 * strlen ("\"x=1\""));
    cJSON_Delete (bytes);
    zstr_free (&quota_id);
    quotas.max_functions = 0;

    //  The code quota refuses a save that takes the total over it with
    //  bigger code than the version it replaces, not one with smaller code
    //  (the quota was lowered since)
    quotas.max_versions = 0;
    char *big_body = (char *) malloc (900 * 1024);
    s_test_code_body (big_body, 700 * 1024, "q");
    quota_id = api_test_create (api, "dana", "/api/functions", big_body);
    snprintf (path, sizeof path, "/api/functions/%s", quota_id);
    s_test_code_body (big_body, 700 * 1024, "v2");
    cJSON_Delete (api_test_request (api, "dana", "PUT", path, NULL, big_body, 200, NULL));
    quotas.max_versions = 2;
    quotas.max_code_mb = 1;
    s_test_code_body (big_body, 500 * 1024, "v3");        //  Smaller than v2: let through
    cJSON_Delete (api_test_request (api, "dana", "PUT", path, NULL, big_body, 200, NULL));
    s_test_code_body (big_body, 800 * 1024, "v4");        //  Bigger, 1.3 MB over 1: refused
    reply = api_test_request (api, "dana", "PUT", path, NULL, big_body, 409, NULL);
    assert (strstr (api_test_str (reply, "detail"), "--max-code-mb"));
    cJSON_Delete (reply);
    reply = api_test_request (api, "dana", "GET", path, NULL, NULL, 200, NULL);
    assert (api_test_num (reply, "active_version") == 3);
    cJSON_Delete (reply);
    api_test_detail (api_test_request (api, "dana", "POST", "/api/functions", NULL,
                     "{\"name\":\"more\",\"code\":\"x=1\"}", 409, NULL),
                     "Your functions would keep 1.17 MB of code, more than the 1 MB one user may keep"
                     " (--max-code-mb), every version a function keeps (--max-versions) counted;"
                     " delete functions or make this code smaller than the version it replaces");
    //  A small fix still ships while the total is over and grows, with no
    //  older version to prune: it is no bigger than the version it replaces
    quotas.max_versions = 0;
    cJSON_Delete (api_test_request (api, "dana", "PUT", path, NULL, "{\"code\":\"x=2\"}", 200, NULL));
    free (big_body);
    zstr_free (&quota_id);
    api_set_quotas (api, NULL);

    zstr_free (&project_id);
    zstr_free (&bob_project);
    api_destroy (&api);
    store_destroy (&store);
    printf ("OK\n");
}
