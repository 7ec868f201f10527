/*  =========================================================================
    api - the control-plane REST handlers (projects, functions, versions,
    env vars, routes, invocation logs, stats), independent of HTTP transport

    Why: the http actor owns sockets, auth and CORS; everything that turns a
    parsed request into rows and back lives here, so that it can be tested
    without a network (api_test drives every endpoint over an in-memory
    store) and so that shapes, status codes and sentences follow
    ../shared/API.md in one place.

    How: api_handle splits the path into segments, picks a handler by
    (segments, method), and each handler does the same three steps:
    1. parse the body (400 "Request body is not valid JSON" when it is not
       UTF-8 JSON; 422 when it is JSON but not an object);
    2. validate every field it reads, collecting all problems into one 422
       list of {loc, msg, type} (FastAPI's shape, which existing clients
       read); unknown fields are ignored, null counts as "not sent" for
       optional fields;
    3. run its SQL through the store, scoped by req->user_id: an object of
       another user is "not found" with the same sentence as a missing one.
    Writes that change something the invoke path caches set resp->invalidate.

    Choices where API.md is silent (documented in the README):
    - Project and function names: 1..100 characters after trimming, any
      printable text (no control characters). Function names are never part
      of a URL (ids are), so users can name them as they like.
    - Saving code identical to the active version's makes no new version.
    - A route whose function exists but lives in another project (or in
      none) is 422 on body.function_id; a missing function is 404.
    - Invocation duration_ms is duration_us rounded to the nearest ms.
    - Route paths are checked by route_validate_path and stored normalised
      (trailing '/' removed); a route with the same method and pattern shape
      as another ("/u/:id" vs "/u/:uid") is a 409 like an exact duplicate,
      since the gateway's table could only keep one of them.
    ========================================================================= */

#include <czmq.h>
#include <math.h>
#include "core/api.h"
#include "core/util.h"
#include "core/route.h"

#define NAME_MAX_CHARS          100
#define DESCRIPTION_MAX_CHARS   1000
#define CODE_MAX_BYTES          (1024 * 1024)
#define ENV_VALUE_MAX_BYTES     (32 * 1024)
#define INVOCATIONS_DEFAULT     50
#define INVOCATIONS_MAX         500
#define SEGMENTS_MAX            8

struct _api_t {
    store_t *store;                 //  The caller's store connection (not owned)
    int max_memory_mb;              //  Server-set maximum for memory_mb (<= 2048)
    int max_timeout_seconds;        //  Server-set maximum for timeout_seconds (<= 900)
};

//  One request being handled: the split path and the reply being built
typedef struct {
    api_t *api;                     //  Handler set
    store_t *store;                 //  Shortcut to api->store
    const api_request_t *req;       //  The request
    api_response_t *resp;           //  The response to fill
    char *segment [SEGMENTS_MAX];   //  Path segments after /api
    int segments;                   //  Number of segments
    cJSON *body;                    //  Parsed body, once s_body_parse ran
    cJSON *errors;                  //  Validation errors (422 list)
} s_call_t;

static const char *PROJECT_SELECT =
    "SELECT p.id, p.name, p.slug, p.description, p.status,"
    "       (SELECT count(*) FROM functions f WHERE f.project_id = p.id) AS function_count,"
    "       p.requirements_txt, p.created_at, p.updated_at"
    "  FROM projects p";

#define FUNCTION_SELECT \
    "SELECT f.id, f.name, f.description, v.code, f.runtime, f.status, f.network_enabled," \
    "       f.timeout_seconds, f.memory_mb, f.active_version, f.project_id, f.created_at," \
    "       f.updated_at" \
    "  FROM functions f" \
    "  LEFT JOIN function_versions v ON v.function_id = f.id AND v.version = f.active_version"

#define ENV_SELECT \
    "SELECT id, key, CASE WHEN is_secret THEN '********' ELSE value END AS value, is_secret," \
    "       created_at, updated_at" \
    "  FROM env_vars"

#define ROUTE_SELECT \
    "SELECT id, project_id, function_id, method, path, description, created_at, updated_at" \
    "  FROM routes"


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
static int
s_reply (s_call_t *call, int status, cJSON *json)
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

static int
s_reply_detail (s_call_t *call, int status, const char *format, ...)
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

static int
s_reply_store_error (s_call_t *call)
{
    return s_reply (call, 500, NULL);
}

static void
s_invalidate (s_call_t *call, const char *kind, const char *id)
{
    free (call->resp->invalidate);
    call->resp->invalidate = zsys_sprintf ("%s %s", kind, id);
}


//  --------------------------------------------------------------------------
//  Validation: FastAPI-shaped errors {"loc": [where, field], "msg", "type"}

static void
s_invalid_at (s_call_t *call, const char *where, const char *field, const char *type,
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

#define s_invalid(call, field, type, ...) s_invalid_at (call, "body", field, type, __VA_ARGS__)

static bool
s_has_errors (s_call_t *call)
{
    return cJSON_GetArraySize (call->errors) > 0;
}

static int
s_reply_invalid (s_call_t *call)
{
    cJSON *json = cJSON_CreateObject ();
    cJSON_AddItemToObject (json, "detail", call->errors);
    call->errors = cJSON_CreateArray ();
    return s_reply (call, 422, json);
}

//  Parse the body into call->body as a JSON object. Returns 0, or -1 with
//  the reply (400 or 422) already made.
static int
s_body_parse (s_call_t *call)
{
    const api_request_t *req = call->req;
    if (!req->body || req->body_size == 0) {
        s_invalid_at (call, "body", NULL, "missing", "Field required");
        s_reply_invalid (call);
        return -1;
    }
    if (util_json_has_nul (req->body, req->body_size)) {
        s_invalid_at (call, "body", NULL, "string_nul",
                      "Strings must not contain the NUL character (\\u0000)");
        s_reply_invalid (call);
        return -1;
    }
    call->body = util_json_parse (req->body, req->body_size);
    if (!call->body) {
        s_reply_detail (call, 400, "Request body is not valid JSON");
        return -1;
    }
    if (!cJSON_IsObject (call->body)) {
        s_invalid_at (call, "body", NULL, "model_attributes_type",
                      "Input should be a valid dictionary or object to extract fields from");
        s_reply_invalid (call);
        return -1;
    }
    return 0;
}

//  The member sent for field, or NULL when absent or null (an error when
//  required).
static cJSON *
s_member (s_call_t *call, const char *field, bool required)
{
    cJSON *item = cJSON_GetObjectItemCaseSensitive (call->body, field);
    if (cJSON_IsNull (item))
        item = NULL;
    if (!item && required)
        s_invalid (call, field, "missing", "Field required");
    return item;
}

//  A string field, or NULL (absent, or invalid with an error added).
//  max_size counts characters when chars, else bytes.
static const char *
s_string (s_call_t *call, const char *field, bool required, size_t max_size, bool chars)
{
    cJSON *item = s_member (call, field, required);
    if (!item)
        return NULL;
    if (!cJSON_IsString (item)) {
        s_invalid (call, field, "string_type", "Input should be a valid string");
        return NULL;
    }
    size_t size = chars? util_utf8_length (item->valuestring): strlen (item->valuestring);
    if (size > max_size) {
        s_invalid (call, field, "string_too_long", "String should have at most %zu %s",
                   max_size, chars? "characters": "bytes");
        return NULL;
    }
    return item->valuestring;
}

//  A display name: trimmed, 1..100 characters, no control characters.
//  Returns a heap copy, or NULL (absent, or invalid with an error added).
static char *
s_name (s_call_t *call, const char *field, bool required)
{
    cJSON *item = s_member (call, field, required);
    if (!item)
        return NULL;
    if (!cJSON_IsString (item)) {
        s_invalid (call, field, "string_type", "Input should be a valid string");
        return NULL;
    }
    char *name = util_trim (item->valuestring);
    size_t chars = util_utf8_length (name);
    const char *problem = NULL;
    if (chars == 0)
        s_invalid (call, field, "string_too_short", "String should have at least 1 character");
    else
    if (chars > NAME_MAX_CHARS)
        s_invalid (call, field, "string_too_long", "String should have at most %d characters",
                   NAME_MAX_CHARS);
    else
        for (const unsigned char *c = (const unsigned char *) name; *c && !problem; c++)
            if (*c < 0x20 || *c == 0x7f)
                problem = "Value error, name must not contain control characters";
    if (problem)
        s_invalid (call, field, "value_error", "%s", problem);
    if (chars == 0 || chars > NAME_MAX_CHARS || problem)
        zstr_free (&name);
    return name;
}

//  An integer field within [min, max]; true when sent and valid.
static bool
s_int (s_call_t *call, const char *field, int min, int max, int *value)
{
    cJSON *item = s_member (call, field, false);
    if (!item)
        return false;
    double number = item->valuedouble;
    if (!cJSON_IsNumber (item) || !isfinite (number) || number != floor (number)) {
        s_invalid (call, field, "int_type", "Input should be a valid integer");
        return false;
    }
    if (number < min) {
        s_invalid (call, field, "greater_than_equal", "Input should be greater than or equal to %d", min);
        return false;
    }
    if (number > max) {
        s_invalid (call, field, "less_than_equal", "Input should be less than or equal to %d", max);
        return false;
    }
    *value = (int) number;
    return true;
}

//  A boolean field; true when sent and valid.
static bool
s_bool (s_call_t *call, const char *field, bool *value)
{
    cJSON *item = s_member (call, field, false);
    if (!item)
        return false;
    if (!cJSON_IsBool (item)) {
        s_invalid (call, field, "bool_type", "Input should be a valid boolean");
        return false;
    }
    *value = cJSON_IsTrue (item);
    return true;
}

//  A route method, upper-cased; heap copy or NULL (error added).
static char *
s_route_method (s_call_t *call, bool required)
{
    const char *text = s_string (call, "method", required, 16, false);
    if (!text)
        return NULL;
    char *method = strdup (text);
    for (char *c = method; *c; c++)
        *c = (char) toupper ((unsigned char) *c);
    if (route_validate_method (method) == 0)
        return method;
    free (method);
    s_invalid (call, "method", "literal_error",
               "Input should be 'GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS' or 'ANY'");
    return NULL;
}

//  A route path pattern, validated by route_validate_path and normalised
//  (trailing '/' removed); heap copy or NULL (error added).
static char *
s_route_path (s_call_t *call, bool required)
{
    const char *path = s_string (call, "path", required, ROUTE_MAX_PATH, false);
    if (!path)
        return NULL;
    const char *problem = NULL;
    if (route_validate_path (path, &problem)) {
        s_invalid (call, "path", "value_error", "%s", problem? problem: "Route path is not valid");
        return NULL;
    }
    return route_normalize_path (path);
}

//  --------------------------------------------------------------------------
//  Lookups scoped by user

//  The project as API.md's Project object, or NULL
static cJSON *
s_project_json (s_call_t *call, const char *project_id)
{
    char *sql = zsys_sprintf ("%s WHERE p.id = ? AND p.user_id = ?", PROJECT_SELECT);
    cJSON *project = store_query_row (call->store, sql, "ss", project_id, call->req->user_id);
    zstr_free (&sql);
    if (project)
        cJSON_AddFalseToObject (project, "has_database");
    return project;
}

static bool
s_project_owned (s_call_t *call, const char *project_id)
{
    if (!util_is_id (project_id))
        return false;
    cJSON *row = store_query_row (call->store, "SELECT id FROM projects WHERE id = ? AND user_id = ?",
                                  "ss", project_id, call->req->user_id);
    cJSON_Delete (row);
    return row != NULL;
}

static cJSON *
s_function_json (s_call_t *call, const char *function_id)
{
    return store_query_row (call->store, FUNCTION_SELECT " WHERE f.id = ? AND f.user_id = ?",
                            "ss", function_id, call->req->user_id);
}

static bool
s_function_owned (s_call_t *call, const char *function_id)
{
    if (!util_is_id (function_id))
        return false;
    cJSON *row = store_query_row (call->store, "SELECT id FROM functions WHERE id = ? AND user_id = ?",
                                  "ss", function_id, call->req->user_id);
    cJSON_Delete (row);
    return row != NULL;
}

//  A free slug for name: its base, else base-1, base-2, ... Call inside a
//  transaction. keep_id: a project whose current slug may be kept.
static char *
s_slug_unique (s_call_t *call, const char *name, const char *keep_id)
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
//  Health and stats
//
//  /api/stats reads only aggregates that the insert trigger on invocations
//  keeps (store.c, migrations 1 and 3), so its cost grows with the caller's
//  number of functions, never with invocation rows, and retention pruning
//  never lowers it:
//  - function_stats: per-function totals (count, successes, summed
//    duration, cold starts) give the totals and the per-function counts;
//  - function_durations: a per-function log-scale histogram (bucket 0 is
//    under 0.1 ms, then quarter-octave buckets, each 19% wider than the
//    last) with count and summed duration per bucket, gives percentiles;
//  - function_days: counts per function per UTC day give the last 14 days.
//  Percentiles use the nearest rank: the bucket holding the ceil (p% * n)th
//  fastest invocation is found from cumulative counts, and the mean duration
//  of that bucket's invocations is reported, in ms with one decimal. It is
//  exact when the bucket holds one distinct duration and otherwise off by
//  less than the bucket's width (under 19%). Errors are invocations whose
//  status is not "success" (errors and timeouts). All counts are over every
//  invocation recorded since the function was created; deleted functions
//  drop out of everything.

#define STATS_DAYS          14      //  Days in invocations_per_day, today included
#define STATS_BUCKETS       104     //  Histogram buckets (store.c, migration 3)

//  One duration histogram: invocations and summed duration_us per bucket
typedef struct {
    int64_t counts [STATS_BUCKETS]; //  Invocations per bucket
    int64_t sums [STATS_BUCKETS];   //  Summed duration_us per bucket
} s_histogram_t;

//  The percent-th percentile of a histogram in ms (one decimal), 0 if empty
static double
s_percentile_ms (const s_histogram_t *histogram, int percent)
{
    int64_t total = 0;
    for (int bucket = 0; bucket < STATS_BUCKETS; bucket++)
        total += histogram->counts [bucket];
    if (total <= 0)
        return 0;
    int64_t rank = (total * percent + 99) / 100;
    if (rank < 1)
        rank = 1;
    int64_t seen = 0;
    for (int bucket = 0; bucket < STATS_BUCKETS; bucket++) {
        seen += histogram->counts [bucket];
        if (seen >= rank && histogram->counts [bucket] > 0) {
            double mean_us = (double) histogram->sums [bucket] / (double) histogram->counts [bucket];
            return round (mean_us / 100) / 10;
        }
    }
    return 0;
}

//  Fill the caller's per-function p50s (by function id, into the objects
//  of functions_by_id) and the overall histogram. 0 or -1 on store error.
static int
s_stats_durations (s_call_t *call, zhashx_t *functions_by_id, s_histogram_t *overall)
{
    sqlite3_stmt *stmt = store_prepare (call->store,
        "SELECT d.function_id, d.bucket, d.invocations, d.duration_us"
        "  FROM functions f JOIN function_durations d ON d.function_id = f.id"
        " WHERE f.user_id = ?"
        " ORDER BY d.function_id, d.bucket");
    if (!stmt)
        return -1;
    sqlite3_bind_text (stmt, 1, call->req->user_id, -1, SQLITE_TRANSIENT);
    s_histogram_t *one = (s_histogram_t *) zmalloc (sizeof (s_histogram_t));
    char current [UTIL_ID_SIZE] = "";
    int rc;
    while (true) {
        rc = sqlite3_step (stmt);
        const char *function_id = rc == SQLITE_ROW? (const char *) sqlite3_column_text (stmt, 0): NULL;
        //  A function's rows are over: set its p50
        if (*current && (!function_id || strneq (function_id, current))) {
            cJSON *entry = (cJSON *) zhashx_lookup (functions_by_id, current);
            if (entry)
                cJSON_ReplaceItemInObject (entry, "p50_duration_ms",
                                           cJSON_CreateNumber (s_percentile_ms (one, 50)));
            memset (one, 0, sizeof *one);
            *current = 0;
        }
        if (!function_id)
            break;
        snprintf (current, sizeof current, "%s", function_id);
        int bucket = sqlite3_column_int (stmt, 1);
        if (bucket < 0 || bucket >= STATS_BUCKETS)
            continue;               //  not a bucket this build knows
        int64_t count = sqlite3_column_int64 (stmt, 2);
        int64_t sum = sqlite3_column_int64 (stmt, 3);
        one->counts [bucket] += count;
        one->sums [bucket] += sum;
        overall->counts [bucket] += count;
        overall->sums [bucket] += sum;
    }
    free (one);
    sqlite3_reset (stmt);
    if (rc != SQLITE_DONE) {
        zsys_error ("api: stats durations failed: %s", sqlite3_errmsg (store_db (call->store)));
        return -1;
    }
    return 0;
}

//  The last STATS_DAYS UTC days, oldest first, zero days included, or NULL
//  on store error
static cJSON *
s_stats_days (s_call_t *call)
{
    char dates [STATS_DAYS][16];
    time_t now = time (NULL);
    for (int index = 0; index < STATS_DAYS; index++) {
        time_t then = now - (time_t) (STATS_DAYS - 1 - index) * 86400;
        struct tm tm;
        gmtime_r (&then, &tm);
        strftime (dates [index], sizeof dates [index], "%Y-%m-%d", &tm);
    }
    int64_t counts [STATS_DAYS] = { 0 }, errors [STATS_DAYS] = { 0 };
    sqlite3_stmt *stmt = store_prepare (call->store,
        "SELECT d.day, sum (d.invocations), sum (d.errors)"
        "  FROM functions f JOIN function_days d ON d.function_id = f.id"
        " WHERE f.user_id = ? AND d.day >= ? AND d.day <= ?"
        " GROUP BY d.day");
    if (!stmt)
        return NULL;
    sqlite3_bind_text (stmt, 1, call->req->user_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text (stmt, 2, dates [0], -1, SQLITE_TRANSIENT);
    sqlite3_bind_text (stmt, 3, dates [STATS_DAYS - 1], -1, SQLITE_TRANSIENT);
    int rc;
    while ((rc = sqlite3_step (stmt)) == SQLITE_ROW) {
        const char *day = (const char *) sqlite3_column_text (stmt, 0);
        for (int index = 0; day && index < STATS_DAYS; index++)
            if (streq (day, dates [index])) {
                counts [index] = sqlite3_column_int64 (stmt, 1);
                errors [index] = sqlite3_column_int64 (stmt, 2);
                break;
            }
    }
    sqlite3_reset (stmt);
    if (rc != SQLITE_DONE) {
        zsys_error ("api: stats days failed: %s", sqlite3_errmsg (store_db (call->store)));
        return NULL;
    }
    cJSON *days = cJSON_CreateArray ();
    for (int index = 0; index < STATS_DAYS; index++) {
        cJSON *day = cJSON_CreateObject ();
        cJSON_AddStringToObject (day, "date", dates [index]);
        cJSON_AddNumberToObject (day, "count", (double) counts [index]);
        cJSON_AddNumberToObject (day, "errors", (double) errors [index]);
        cJSON_AddItemToArray (days, day);
    }
    return days;
}

static int
s_stats (s_call_t *call)
{
    const char *user_id = call->req->user_id;
    cJSON *functions = store_query (call->store,
        "SELECT f.id AS function_id, f.name,"
        "       coalesce (s.invocations, 0) AS count,"
        "       coalesce (s.invocations - s.successes, 0) AS errors,"
        "       0 AS p50_duration_ms,"
        "       coalesce (s.duration_us, 0) AS duration_us,"
        "       coalesce (s.cold_starts, 0) AS cold_starts"
        "  FROM functions f LEFT JOIN function_stats s ON s.function_id = f.id"
        " WHERE f.user_id = ?"
        " ORDER BY count DESC, f.created_at, f.id", "s", user_id);
    cJSON *projects = store_query_row (call->store,
        "SELECT count(*) AS n FROM projects WHERE user_id = ?", "s", user_id);
    cJSON *days = s_stats_days (call);
    zhashx_t *functions_by_id = zhashx_new ();
    s_histogram_t *overall = (s_histogram_t *) zmalloc (sizeof (s_histogram_t));
    cJSON *stats = NULL;
    if (!functions || !projects || !days)
        goto cleanup;

    //  Totals from the per-function counters, which leave the reply
    double total = 0, errors = 0, duration_us = 0, cold_starts = 0;
    cJSON *entry;
    cJSON_ArrayForEach (entry, functions) {
        total += cJSON_GetObjectItem (entry, "count")->valuedouble;
        errors += cJSON_GetObjectItem (entry, "errors")->valuedouble;
        duration_us += cJSON_GetObjectItem (entry, "duration_us")->valuedouble;
        cold_starts += cJSON_GetObjectItem (entry, "cold_starts")->valuedouble;
        cJSON_DeleteItemFromObject (entry, "duration_us");
        cJSON_DeleteItemFromObject (entry, "cold_starts");
        const char *function_id = cJSON_GetStringValue (cJSON_GetObjectItem (entry, "function_id"));
        if (function_id)
            zhashx_insert (functions_by_id, function_id, entry);
    }
    if (s_stats_durations (call, functions_by_id, overall))
        goto cleanup;

    stats = cJSON_CreateObject ();
    cJSON_AddNumberToObject (stats, "total_functions", cJSON_GetArraySize (functions));
    cJSON_AddNumberToObject (stats, "total_invocations", total);
    cJSON_AddNumberToObject (stats, "success_rate", total > 0? round ((total - errors) * 100 / total): 0);
    cJSON_AddNumberToObject (stats, "avg_duration_ms", total > 0? round (duration_us / total / 1000): 0);
    cJSON_AddNumberToObject (stats, "total_projects", cJSON_GetObjectItem (projects, "n")->valuedouble);
    cJSON_AddNumberToObject (stats, "p50_duration_ms", s_percentile_ms (overall, 50));
    cJSON_AddNumberToObject (stats, "p95_duration_ms", s_percentile_ms (overall, 95));
    cJSON_AddNumberToObject (stats, "cold_start_rate",
                             total > 0? fmin (100, round (cold_starts * 100 / total)): 0);
    cJSON_AddItemToObject (stats, "invocations_per_day", days);
    days = NULL;
    cJSON_AddItemToObject (stats, "functions", functions);
    functions = NULL;

cleanup:
    free (overall);
    zhashx_destroy (&functions_by_id);
    cJSON_Delete (functions);
    cJSON_Delete (projects);
    cJSON_Delete (days);
    return stats? s_reply (call, 200, stats): s_reply_store_error (call);
}


//  --------------------------------------------------------------------------
//  Projects

static int
s_projects_list (s_call_t *call)
{
    char *sql = zsys_sprintf ("%s WHERE p.user_id = ? ORDER BY p.created_at DESC, p.rowid DESC",
                              PROJECT_SELECT);
    cJSON *projects = store_query (call->store, sql, "s", call->req->user_id);
    zstr_free (&sql);
    cJSON *project;
    cJSON_ArrayForEach (project, projects)
        cJSON_AddFalseToObject (project, "has_database");
    return s_reply (call, 200, projects);
}

static int
s_project_create (s_call_t *call)
{
    if (s_body_parse (call))
        return 0;
    char *name = s_name (call, "name", true);
    const char *description = s_string (call, "description", false, DESCRIPTION_MAX_CHARS, true);
    if (s_has_errors (call)) {
        free (name);
        return s_reply_invalid (call);
    }
    char id [UTIL_ID_SIZE], now [UTIL_TIME_SIZE];
    util_new_id (id);
    util_now_iso (now);
    if (store_begin (call->store)) {
        free (name);
        return s_reply_store_error (call);
    }
    char *slug = s_slug_unique (call, name, NULL);
    int rc = store_exec (call->store,
        "INSERT INTO projects (id, user_id, name, slug, description, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)", "sssssss",
        id, call->req->user_id, name, slug, description? description: "", now, now);
    free (slug);
    free (name);
    if (rc != 1 || store_commit (call->store)) {
        store_rollback (call->store);
        return s_reply_store_error (call);
    }
    return s_reply (call, 200, s_project_json (call, id));
}

static int
s_project_get (s_call_t *call, const char *project_id)
{
    cJSON *project = util_is_id (project_id)? s_project_json (call, project_id): NULL;
    if (!project)
        return s_reply_detail (call, 404, "Project not found");
    return s_reply (call, 200, project);
}

static int
s_project_update (s_call_t *call, const char *project_id)
{
    if (s_body_parse (call))
        return 0;
    char *name = s_name (call, "name", false);
    const char *description = s_string (call, "description", false, DESCRIPTION_MAX_CHARS, true);
    if (s_has_errors (call)) {
        free (name);
        return s_reply_invalid (call);
    }
    if (store_begin (call->store)) {
        free (name);
        return s_reply_store_error (call);
    }
    if (!s_project_owned (call, project_id)) {
        store_rollback (call->store);
        free (name);
        return s_reply_detail (call, 404, "Project not found");
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
    if (rc < 0 || store_commit (call->store)) {
        store_rollback (call->store);
        return s_reply_store_error (call);
    }
    //  The slug may have changed: the gateway's slug map (kept with the
    //  route tables) must forget it; env and functions are unchanged
    s_invalidate (call, "routes", project_id);
    return s_reply (call, 200, s_project_json (call, project_id));
}

static int
s_project_delete (s_call_t *call, const char *project_id)
{
    if (!util_is_id (project_id))
        return s_reply_detail (call, 404, "Project not found");
    int rc = store_exec (call->store, "DELETE FROM projects WHERE id = ? AND user_id = ?",
                         "ss", project_id, call->req->user_id);
    if (rc < 0)
        return s_reply_store_error (call);
    if (rc == 0)
        return s_reply_detail (call, 404, "Project not found");
    s_invalidate (call, "project", project_id);
    return s_reply_detail (call, 200, "Project deleted");
}

static int
s_project_functions (s_call_t *call, const char *project_id)
{
    if (!s_project_owned (call, project_id))
        return s_reply_detail (call, 404, "Project not found");
    return s_reply (call, 200, store_query (call->store,
        FUNCTION_SELECT " WHERE f.project_id = ? AND f.user_id = ?"
        " ORDER BY f.created_at DESC, f.rowid DESC", "ss", project_id, call->req->user_id));
}


//  --------------------------------------------------------------------------
//  Functions and versions

static int
s_functions_list (s_call_t *call)
{
    return s_reply (call, 200, store_query (call->store,
        FUNCTION_SELECT " WHERE f.user_id = ? ORDER BY f.created_at DESC, f.rowid DESC",
        "s", call->req->user_id));
}

//  Code: a non-blank string of at most 1 MiB
static const char *
s_code (s_call_t *call, bool required)
{
    const char *code = s_string (call, "code", required, CODE_MAX_BYTES, false);
    if (code) {
        const char *c = code;
        while (*c && isspace ((unsigned char) *c))
            c++;
        if (*c == 0) {
            s_invalid (call, "code", "string_too_short", "String should have at least 1 character");
            return NULL;
        }
    }
    return code;
}

static int
s_function_create (s_call_t *call)
{
    if (s_body_parse (call))
        return 0;
    char *name = s_name (call, "name", true);
    const char *code = s_code (call, true);
    const char *description = s_string (call, "description", false, DESCRIPTION_MAX_CHARS, true);
    const char *runtime = s_string (call, "runtime", false, 64, false);
    if (runtime && strneq (runtime, "python"))
        s_invalid (call, "runtime", "literal_error", "Input should be 'python'");
    const char *project_id = s_string (call, "project_id", false, 64, false);
    bool network_enabled = false;
    //  Defaults, lowered to the server's maxima when those are lower
    int timeout_seconds = call->api->max_timeout_seconds < 30 ? call->api->max_timeout_seconds : 30;
    int memory_mb = call->api->max_memory_mb < 128 ? call->api->max_memory_mb : 128;
    s_bool (call, "network_enabled", &network_enabled);
    s_int (call, "timeout_seconds", 1, call->api->max_timeout_seconds, &timeout_seconds);
    s_int (call, "memory_mb", 64, call->api->max_memory_mb, &memory_mb);
    if (s_has_errors (call)) {
        free (name);
        return s_reply_invalid (call);
    }
    if (project_id && *project_id == 0)
        project_id = NULL;          //  "" from a form means "no project"
    char id [UTIL_ID_SIZE], now [UTIL_TIME_SIZE];
    util_new_id (id);
    util_now_iso (now);
    if (store_begin (call->store)) {
        free (name);
        return s_reply_store_error (call);
    }
    if (project_id && !s_project_owned (call, project_id)) {
        store_rollback (call->store);
        free (name);
        return s_reply_detail (call, 404, "Project not found");
    }
    int rc = store_exec (call->store,
        "INSERT INTO functions (id, user_id, project_id, name, description, network_enabled,"
        " timeout_seconds, memory_mb, active_version, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)", "sssssbiiss",
        id, call->req->user_id, project_id, name, description? description: "",
        (int) network_enabled, timeout_seconds, memory_mb, now, now);
    if (rc == 1)
        rc = store_exec (call->store,
            "INSERT INTO function_versions (function_id, version, code, created_at, updated_at)"
            " VALUES (?, 1, ?, ?, ?)", "ssss", id, code, now, now);
    free (name);
    if (rc != 1 || store_commit (call->store)) {
        store_rollback (call->store);
        return s_reply_store_error (call);
    }
    return s_reply (call, 200, s_function_json (call, id));
}

static int
s_function_get (s_call_t *call, const char *function_id)
{
    cJSON *function = util_is_id (function_id)? s_function_json (call, function_id): NULL;
    if (!function)
        return s_reply_detail (call, 404, "Function not found");
    return s_reply (call, 200, function);
}

static int
s_function_update (s_call_t *call, const char *function_id)
{
    if (s_body_parse (call))
        return 0;
    char *name = s_name (call, "name", false);
    const char *code = s_code (call, false);
    const char *description = s_string (call, "description", false, DESCRIPTION_MAX_CHARS, true);
    bool network_enabled;
    int timeout_seconds, memory_mb;
    bool set_network = s_bool (call, "network_enabled", &network_enabled);
    bool set_timeout = s_int (call, "timeout_seconds", 1, call->api->max_timeout_seconds, &timeout_seconds);
    bool set_memory = s_int (call, "memory_mb", 64, call->api->max_memory_mb, &memory_mb);
    //  A disabled function keeps its code, versions and routes, but is not
    //  run: invoke and its gateway routes answer 503 until it is active again
    const char *status = s_string (call, "status", false, 16, false);
    if (status && strneq (status, "active") && strneq (status, "disabled"))
        s_invalid (call, "status", "literal_error", "Input should be 'active' or 'disabled'");
    if (s_has_errors (call)) {
        free (name);
        return s_reply_invalid (call);
    }
    if (store_begin (call->store)) {
        free (name);
        return s_reply_store_error (call);
    }
    cJSON *current = util_is_id (function_id)? s_function_json (call, function_id): NULL;
    if (!current) {
        store_rollback (call->store);
        free (name);
        return s_reply_detail (call, 404, "Function not found");
    }
    char now [UTIL_TIME_SIZE];
    util_now_iso (now);
    int rc = 0;
    const char *active_code = cJSON_GetStringValue (cJSON_GetObjectItem (current, "code"));
    if (code && !(active_code && streq (code, active_code))) {
        //  A new version, numbered past every existing one (so a save
        //  after a rollback never collides), and made active
        rc = store_exec (call->store,
            "INSERT INTO function_versions (function_id, version, code, created_at, updated_at)"
            " SELECT ?, coalesce (max (version), 0) + 1, ?, ?, ? FROM function_versions"
            "  WHERE function_id = ?", "sssss", function_id, code, now, now, function_id);
        if (rc >= 0)
            rc = store_exec (call->store,
                "UPDATE functions SET active_version ="
                " (SELECT max (version) FROM function_versions WHERE function_id = ?) WHERE id = ?",
                "ss", function_id, function_id);
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
    if (rc >= 0 && status)
        rc = store_exec (call->store, "UPDATE functions SET status = ? WHERE id = ?",
                         "ss", status, function_id);
    if (rc >= 0)
        rc = store_exec (call->store, "UPDATE functions SET updated_at = ? WHERE id = ?",
                         "ss", now, function_id);
    cJSON_Delete (current);
    free (name);
    if (rc < 0 || store_commit (call->store)) {
        store_rollback (call->store);
        return s_reply_store_error (call);
    }
    s_invalidate (call, "function", function_id);
    return s_reply (call, 200, s_function_json (call, function_id));
}

static int
s_function_delete (s_call_t *call, const char *function_id)
{
    if (!util_is_id (function_id))
        return s_reply_detail (call, 404, "Function not found");
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
        return s_reply_store_error (call);
    if (rc == 0)
        return s_reply_detail (call, 404, "Function not found");
    if (routed)
        s_invalidate (call, "project", cJSON_GetObjectItem (routed, "project_id")->valuestring);
    else
        s_invalidate (call, "function", function_id);
    cJSON_Delete (routed);
    return s_reply_detail (call, 200, "Function deleted");
}

static int
s_versions_list (s_call_t *call, const char *function_id)
{
    if (!s_function_owned (call, function_id))
        return s_reply_detail (call, 404, "Function not found");
    return s_reply (call, 200, store_query (call->store,
        "SELECT function_id, version, code, created_at, updated_at FROM function_versions"
        " WHERE function_id = ? ORDER BY version DESC", "s", function_id));
}

//  Parse a decimal integer in [min, max] from the whole of text
static bool
s_parse_int (const char *text, long min, long max, long *value)
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

static int
s_version_activate (s_call_t *call, const char *function_id, const char *version_text)
{
    long version;
    if (!s_parse_int (version_text, LONG_MIN, LONG_MAX, &version)) {
        s_invalid_at (call, "path", "version", "int_parsing",
                      "Input should be a valid integer, unable to parse string as an integer");
        return s_reply_invalid (call);
    }
    if (!s_function_owned (call, function_id))
        return s_reply_detail (call, 404, "Function not found");
    if (version < 1 || version > INT_MAX)
        return s_reply_detail (call, 404, "Version not found");
    char now [UTIL_TIME_SIZE];
    util_now_iso (now);
    int rc = store_exec (call->store,
        "UPDATE functions SET active_version = ?, updated_at = ? WHERE id = ? AND EXISTS"
        " (SELECT 1 FROM function_versions WHERE function_id = ? AND version = ?)",
        "isssi", (int) version, now, function_id, function_id, (int) version);
    if (rc < 0)
        return s_reply_store_error (call);
    if (rc == 0)
        return s_reply_detail (call, 404, "Version not found");
    s_invalidate (call, "function", function_id);
    return s_reply (call, 200, s_function_json (call, function_id));
}

//  The value of name in a raw query string (not decoded), or NULL
static char *
s_query_param (const char *query, const char *name)
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

static int
s_invocations_list (s_call_t *call, const char *function_id)
{
    long limit = INVOCATIONS_DEFAULT;
    char *text = s_query_param (call->req->query, "limit");
    if (text) {
        if (!s_parse_int (text, LONG_MIN, LONG_MAX, &limit))
            s_invalid_at (call, "query", "limit", "int_parsing",
                          "Input should be a valid integer, unable to parse string as an integer");
        else
        if (limit < 1)
            s_invalid_at (call, "query", "limit", "greater_than_equal",
                          "Input should be greater than or equal to 1");
        else
        if (limit > INVOCATIONS_MAX)
            s_invalid_at (call, "query", "limit", "less_than_equal",
                          "Input should be less than or equal to %d", INVOCATIONS_MAX);
        zstr_free (&text);
        if (s_has_errors (call))
            return s_reply_invalid (call);
    }
    if (!s_function_owned (call, function_id))
        return s_reply_detail (call, 404, "Function not found");
    return s_reply (call, 200, store_query (call->store,
        "SELECT id, function_id, input, output, status, error,"
        "       (duration_us + 500) / 1000 AS duration_ms, source, http_method, http_path,"
        "       created_at, cold_start, version, logs"
        "  FROM invocations WHERE function_id = ?"
        " ORDER BY created_at DESC, rowid DESC LIMIT ?", "si", function_id, (int) limit));
}


//  --------------------------------------------------------------------------
//  Env vars

static int
s_env_list (s_call_t *call, const char *project_id)
{
    if (!s_project_owned (call, project_id))
        return s_reply_detail (call, 404, "Project not found");
    return s_reply (call, 200, store_query (call->store,
        ENV_SELECT " WHERE project_id = ? ORDER BY key", "s", project_id));
}

static int
s_env_upsert (s_call_t *call, const char *project_id)
{
    if (s_body_parse (call))
        return 0;
    const char *key = s_string (call, "key", true, 1024, false);
    if (key && !util_env_key_valid (key)) {
        if (strncasecmp (key, "CLOWDY_", 7) == 0)
            s_invalid (call, "key", "value_error", "Value error, keys starting with CLOWDY_ are reserved");
        else
            s_invalid (call, "key", "value_error",
                       "Value error, key must match ^[A-Za-z_][A-Za-z0-9_]*$ and be at most 128 characters");
    }
    const char *value = s_string (call, "value", true, ENV_VALUE_MAX_BYTES, false);
    bool is_secret = true;
    s_bool (call, "is_secret", &is_secret);
    if (s_has_errors (call))
        return s_reply_invalid (call);
    if (!s_project_owned (call, project_id))
        return s_reply_detail (call, 404, "Project not found");
    char id [UTIL_ID_SIZE], now [UTIL_TIME_SIZE];
    util_new_id (id);
    util_now_iso (now);
    int rc = store_exec (call->store,
        "INSERT INTO env_vars (id, project_id, key, value, is_secret, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (project_id, key) DO UPDATE SET"
        "   value = excluded.value, is_secret = excluded.is_secret, updated_at = excluded.updated_at",
        "ssssbss", id, project_id, key, value, (int) is_secret, now, now);
    if (rc < 0)
        return s_reply_store_error (call);
    s_invalidate (call, "project", project_id);
    return s_reply (call, 200, store_query_row (call->store,
        ENV_SELECT " WHERE project_id = ? AND key = ?", "ss", project_id, key));
}

static int
s_env_delete (s_call_t *call, const char *project_id, const char *key)
{
    if (!s_project_owned (call, project_id))
        return s_reply_detail (call, 404, "Project not found");
    int rc = store_exec (call->store, "DELETE FROM env_vars WHERE project_id = ? AND key = ?",
                         "ss", project_id, key);
    if (rc < 0)
        return s_reply_store_error (call);
    if (rc == 0)
        return s_reply_detail (call, 404, "Env var '%s' not found", key);
    s_invalidate (call, "project", project_id);
    return s_reply_detail (call, 200, "Env var '%s' deleted", key);
}


//  --------------------------------------------------------------------------
//  Routes

static int
s_routes_list (s_call_t *call, const char *project_id)
{
    if (!s_project_owned (call, project_id))
        return s_reply_detail (call, 404, "Project not found");
    return s_reply (call, 200, store_query (call->store,
        ROUTE_SELECT " WHERE project_id = ? ORDER BY path, method", "s", project_id));
}

//  Check that function_id is the user's and in project_id. Returns 0, or -1
//  with the reply made.
static int
s_route_function_check (s_call_t *call, const char *project_id, const char *function_id)
{
    cJSON *row = util_is_id (function_id)
        ? store_query_row (call->store,
            "SELECT coalesce (project_id, '') AS project_id FROM functions WHERE id = ? AND user_id = ?",
            "ss", function_id, call->req->user_id)
        : NULL;
    if (!row) {
        s_reply_detail (call, 404, "Function not found");
        return -1;
    }
    bool same = streq (cJSON_GetObjectItem (row, "project_id")->valuestring, project_id);
    cJSON_Delete (row);
    if (!same) {
        s_invalid (call, "function_id", "value_error", "Value error, the function must belong to this project");
        s_reply_invalid (call);
        return -1;
    }
    return 0;
}

//  True if the project already has a route with this method and the same
//  pattern shape ("/u/:id" and "/u/:uid" are the same route to the gateway,
//  which would keep only the first). except_id: a route to leave out (the
//  one being updated).
static bool
s_route_taken (s_call_t *call, const char *project_id, const char *except_id,
               const char *method, const char *path)
{
    cJSON *routes = store_routes_for_project (call->store, project_id);
    route_table_t *table = route_table_new ();
    cJSON *route;
    cJSON_ArrayForEach (route, routes) {
        const char *id = cJSON_GetStringValue (cJSON_GetObjectItem (route, "id"));
        if (except_id && id && streq (id, except_id))
            continue;
        route_table_add (table, id,
                         cJSON_GetStringValue (cJSON_GetObjectItem (route, "method")),
                         cJSON_GetStringValue (cJSON_GetObjectItem (route, "path")),
                         cJSON_GetStringValue (cJSON_GetObjectItem (route, "function_id")));
    }
    bool taken = route_table_add (table, "new", method, path, "new") == -2;
    route_table_destroy (&table);
    cJSON_Delete (routes);
    return taken;
}

static int
s_route_create (s_call_t *call, const char *project_id)
{
    if (s_body_parse (call))
        return 0;
    const char *function_id = s_string (call, "function_id", true, 64, false);
    char *method = s_route_method (call, true);
    char *path = s_route_path (call, true);
    const char *description = s_string (call, "description", false, DESCRIPTION_MAX_CHARS, true);
    int rc = 0;
    if (s_has_errors (call))
        s_reply_invalid (call);
    else
    if (!s_project_owned (call, project_id))
        s_reply_detail (call, 404, "Project not found");
    else
    if (s_route_function_check (call, project_id, function_id) == 0) {
        char id [UTIL_ID_SIZE], now [UTIL_TIME_SIZE];
        util_new_id (id);
        util_now_iso (now);
        if (store_begin (call->store))
            rc = STORE_ERROR;
        else
        if (s_route_taken (call, project_id, NULL, method, path))
            rc = STORE_CONFLICT;
        else
            rc = store_exec (call->store,
                "INSERT INTO routes (id, project_id, function_id, method, path, description,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", "ssssssss",
                id, project_id, function_id, method, path, description? description: "", now, now);
        if (rc == 1)
            rc = store_commit (call->store);
        store_rollback (call->store);
        if (rc == STORE_CONFLICT)
            s_reply_detail (call, 409, "A route for %s %s already exists in this project", method, path);
        else
        if (rc < 0)
            s_reply_store_error (call);
        else {
            s_invalidate (call, "routes", project_id);
            s_reply (call, 200, store_query_row (call->store, ROUTE_SELECT " WHERE id = ?", "s", id));
        }
    }
    free (method);
    free (path);
    return 0;
}

static int
s_route_update (s_call_t *call, const char *project_id, const char *route_id)
{
    if (s_body_parse (call))
        return 0;
    const char *function_id = s_string (call, "function_id", false, 64, false);
    char *method = s_route_method (call, false);
    char *path = s_route_path (call, false);
    const char *description = s_string (call, "description", false, DESCRIPTION_MAX_CHARS, true);
    cJSON *route = NULL;
    if (s_has_errors (call))
        s_reply_invalid (call);
    else
    if (!s_project_owned (call, project_id))
        s_reply_detail (call, 404, "Project not found");
    else
    if (!(route = store_query_row (call->store, ROUTE_SELECT " WHERE id = ? AND project_id = ?",
                                   "ss", route_id, project_id)))
        s_reply_detail (call, 404, "Route not found");
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
        if (s_route_taken (call, project_id, route_id, new_method, new_path))
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
        store_rollback (call->store);
        if (rc == STORE_CONFLICT)
            s_reply_detail (call, 409, "A route for %s %s already exists in this project",
                            new_method, new_path);
        else
        if (rc < 0)
            s_reply_store_error (call);
        else {
            s_invalidate (call, "routes", project_id);
            s_reply (call, 200, store_query_row (call->store, ROUTE_SELECT " WHERE id = ?", "s", route_id));
        }
    }
    cJSON_Delete (route);
    free (method);
    free (path);
    return 0;
}

static int
s_route_delete (s_call_t *call, const char *project_id, const char *route_id)
{
    if (!s_project_owned (call, project_id))
        return s_reply_detail (call, 404, "Project not found");
    int rc = store_exec (call->store, "DELETE FROM routes WHERE id = ? AND project_id = ?",
                         "ss", route_id, project_id);
    if (rc < 0)
        return s_reply_store_error (call);
    if (rc == 0)
        return s_reply_detail (call, 404, "Route not found");
    s_invalidate (call, "routes", project_id);
    return s_reply_detail (call, 200, "Route deleted");
}


//  --------------------------------------------------------------------------
//  Dispatch

api_t *
api_new (store_t *store)
{
    if (!store)
        return NULL;
    api_t *self = (api_t *) zmalloc (sizeof (api_t));
    assert (self);
    self->store = store;
    self->max_memory_mb = 2048;
    self->max_timeout_seconds = 900;
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
api_destroy (api_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        free (*self_p);
        *self_p = NULL;
    }
}

//  Split "/api/a/b/c" into call->segment; false if it is not under /api or
//  has too many segments.
static bool
s_split_path (s_call_t *call, const char *path)
{
    if (!path || strncmp (path, "/api", 4) != 0 || (path [4] != 0 && path [4] != '/'))
        return false;
    const char *cursor = path + 4;
    while (*cursor == '/') {
        cursor++;
        if (*cursor == 0)
            break;              //  tolerate one trailing slash
        if (call->segments == SEGMENTS_MAX)
            return false;
        const char *slash = strchr (cursor, '/');
        size_t length = slash? (size_t) (slash - cursor): strlen (cursor);
        call->segment [call->segments++] = strndup (cursor, length);
        cursor += length;
    }
    return true;
}

static int
s_method_not_allowed (s_call_t *call)
{
    return s_reply_detail (call, 405, "Method Not Allowed");
}

#define IS(m) streq (method, m)

static int
s_dispatch_project (s_call_t *call, const char *method)
{
    char **seg = call->segment;
    const char *id = seg [1];
    if (call->segments == 2) {
        if (IS ("GET"))    return s_project_get (call, id);
        if (IS ("PUT"))    return s_project_update (call, id);
        if (IS ("DELETE")) return s_project_delete (call, id);
        return s_method_not_allowed (call);
    }
    const char *what = seg [2];
    if (call->segments == 3 && streq (what, "functions"))
        return IS ("GET")? s_project_functions (call, id): s_method_not_allowed (call);
    if (call->segments == 3 && streq (what, "env")) {
        if (IS ("GET"))  return s_env_list (call, id);
        if (IS ("POST")) return s_env_upsert (call, id);
        return s_method_not_allowed (call);
    }
    if (call->segments == 4 && streq (what, "env"))
        return IS ("DELETE")? s_env_delete (call, id, seg [3]): s_method_not_allowed (call);
    if (call->segments == 3 && streq (what, "routes")) {
        if (IS ("GET"))  return s_routes_list (call, id);
        if (IS ("POST")) return s_route_create (call, id);
        return s_method_not_allowed (call);
    }
    if (call->segments == 4 && streq (what, "routes")) {
        if (IS ("PUT"))    return s_route_update (call, id, seg [3]);
        if (IS ("DELETE")) return s_route_delete (call, id, seg [3]);
        return s_method_not_allowed (call);
    }
    if (call->segments == 3 && streq (what, "requirements")) {
        if ((IS ("GET") || IS ("PUT")) && !s_project_owned (call, id))
            return s_reply_detail (call, 404, "Project not found");
        if (IS ("GET") || IS ("PUT"))
            return s_reply_detail (call, 501, "Requirements are not available yet");
        return s_method_not_allowed (call);
    }
    if (streq (what, "database")) {
        if ((call->segments == 3 && IS ("GET"))
        ||  (call->segments == 4 && streq (seg [3], "provision") && IS ("POST"))
        ||  (call->segments == 4 && streq (seg [3], "deprovision") && IS ("DELETE")))
            return s_project_owned (call, id)
                 ? s_reply_detail (call, 501, "Project databases are not available yet")
                 : s_reply_detail (call, 404, "Project not found");
        if (call->segments == 3
        || (call->segments == 4 && (streq (seg [3], "provision") || streq (seg [3], "deprovision"))))
            return s_method_not_allowed (call);
    }
    return -1;
}

static int
s_dispatch_function (s_call_t *call, const char *method)
{
    char **seg = call->segment;
    const char *id = seg [1];
    if (call->segments == 2) {
        if (IS ("GET"))    return s_function_get (call, id);
        if (IS ("PUT"))    return s_function_update (call, id);
        if (IS ("DELETE")) return s_function_delete (call, id);
        return s_method_not_allowed (call);
    }
    if (call->segments == 3 && streq (seg [2], "versions"))
        return IS ("GET")? s_versions_list (call, id): s_method_not_allowed (call);
    if (call->segments == 4 && streq (seg [2], "versions"))
        return IS ("PUT")? s_version_activate (call, id, seg [3]): s_method_not_allowed (call);
    if (call->segments == 3 && streq (seg [2], "invocations"))
        return IS ("GET")? s_invocations_list (call, id): s_method_not_allowed (call);
    return -1;
}

static int
s_dispatch (s_call_t *call, const char *method)
{
    char **seg = call->segment;
    if (call->segments == 0)
        return -1;
    const char *top = seg [0];
    if (call->segments == 1) {
        if (streq (top, "health"))
            return IS ("GET")? s_reply (call, 200, cJSON_Parse ("{\"status\":\"ok\"}"))
                             : s_method_not_allowed (call);
        if (streq (top, "stats"))
            return IS ("GET")? s_stats (call): s_method_not_allowed (call);
        if (streq (top, "projects")) {
            if (IS ("GET"))  return s_projects_list (call);
            if (IS ("POST")) return s_project_create (call);
            return s_method_not_allowed (call);
        }
        if (streq (top, "functions")) {
            if (IS ("GET"))  return s_functions_list (call);
            if (IS ("POST")) return s_function_create (call);
            return s_method_not_allowed (call);
        }
        if (streq (top, "chat"))
            return IS ("POST")? s_reply_detail (call, 501, "Chat is not available yet")
                              : s_method_not_allowed (call);
        return -1;
    }
    if (streq (top, "projects"))
        return s_dispatch_project (call, method);
    if (streq (top, "functions"))
        return s_dispatch_function (call, method);
    return -1;
}

int
api_handle (api_t *self, const api_request_t *req, api_response_t *resp)
{
    assert (self);
    assert (req);
    assert (resp);
    api_response_reset (resp);
    s_call_t call = { .api = self, .store = self->store, .req = req, .resp = resp };
    call.errors = cJSON_CreateArray ();
    int rc = -1;
    if (req->method && req->user_id && s_split_path (&call, req->path))
        rc = s_dispatch (&call, req->method);
    if (rc == -1) {
        //  Not ours: the caller answers, but leave a sane reply anyway
        free (resp->invalidate);
        resp->invalidate = NULL;
        free (resp->body);
        resp->status = 404;
        resp->body = api_detail_json ("Not Found");
    }
    //  A store transaction left open by a failure path must not leak into
    //  the next request
    store_rollback (self->store);
    for (int index = 0; index < call.segments; index++)
        free (call.segment [index]);
    cJSON_Delete (call.body);
    cJSON_Delete (call.errors);
    return rc == -1? -1: 0;
}


//  --------------------------------------------------------------------------
//  Selftest

//  Make one request and check its status; returns the parsed reply body
//  (caller destroys) and, if invalidate is given, a copy of the invalidation.
static cJSON *
s_request (api_t *api, const char *user, const char *method, const char *path,
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
    assert (json);
    if (invalidate)
        *invalidate = resp.invalidate? strdup (resp.invalidate): NULL;
    api_response_reset (&resp);
    return json;
}

static const char *
s_str (cJSON *json, const char *field)
{
    const char *value = cJSON_GetStringValue (cJSON_GetObjectItem (json, field));
    assert (value);
    return value;
}

static int
s_num (cJSON *json, const char *field)
{
    cJSON *item = cJSON_GetObjectItem (json, field);
    assert (cJSON_IsNumber (item));
    return item->valueint;
}

//  Assert a 422 reply whose first error is at loc [where, field]
static void
s_assert_invalid (cJSON *reply, const char *where, const char *field)
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

static void
s_assert_detail (cJSON *reply, const char *detail)
{
    if (strneq (s_str (reply, "detail"), detail)) {
        printf ("\ndetail '%s', expected '%s'\n", s_str (reply, "detail"), detail);
        assert (false);
    }
    cJSON_Delete (reply);
}

//  Create a project-less function over the API; its id into id
static void
s_stats_function (api_t *api, const char *user, const char *name, char id [UTIL_ID_SIZE])
{
    char body [256];
    snprintf (body, sizeof body, "{\"name\":\"%s\",\"code\":\"def handler(e):\\n    return 1\\n\"}", name);
    cJSON *reply = s_request (api, user, "POST", "/api/functions", NULL, body, 200, NULL);
    snprintf (id, UTIL_ID_SIZE, "%s", s_str (reply, "id"));
    cJSON_Delete (reply);
}

//  The UTC date days_ago days before now, as YYYY-MM-DD
static void
s_stats_date (int days_ago, char date [16])
{
    time_t then = time (NULL) - (time_t) days_ago * 86400;
    struct tm tm;
    gmtime_r (&then, &tm);
    strftime (date, 16, "%Y-%m-%d", &tm);
}

static double
s_double (cJSON *json, const char *field)
{
    cJSON *item = cJSON_GetObjectItem (json, field);
    assert (cJSON_IsNumber (item));
    return item->valuedouble;
}

//  Stats over known invocations, on a store of its own. Alice has a (100
//  calls of 1..100 ms today, every tenth an error, the first five cold), b
//  (20 calls of 250 ms: ten 13 days ago, the edge of the 14 days, and ten
//  14 days ago, outside it; five errors) and c (never called); bob has x
//  (50 failing 5 s calls today), which alice must never see.
static void
s_stats_test (void)
{
    store_t *store = store_new (":memory:");
    assert (store);
    api_t *api = api_new (store);
    char a_id [UTIL_ID_SIZE], b_id [UTIL_ID_SIZE], c_id [UTIL_ID_SIZE], x_id [UTIL_ID_SIZE];
    s_stats_function (api, "alice", "a", a_id);
    s_stats_function (api, "alice", "b", b_id);
    s_stats_function (api, "alice", "c", c_id);
    s_stats_function (api, "bob", "x", x_id);
    char today [16], edge [16], outside [16];
    s_stats_date (0, today);
    s_stats_date (13, edge);
    s_stats_date (14, outside);
    char stamp_today [40], stamp_edge [40], stamp_outside [40];
    snprintf (stamp_today, sizeof stamp_today, "%sT00:00:00.000000Z", today);
    snprintf (stamp_edge, sizeof stamp_edge, "%sT00:00:00.000000Z", edge);
    snprintf (stamp_outside, sizeof stamp_outside, "%sT23:59:59.999999Z", outside);

    store_invocation_t rows [170];
    size_t count = 0;
    for (int i = 1; i <= 100; i++)
        rows [count++] = (store_invocation_t) {
            .function_id = a_id, .status = i % 10 == 0? "error": "success",
            .duration_us = i * 1000, .cold_start = i <= 5, .version = 1, .created_at = stamp_today };
    for (int i = 0; i < 20; i++)
        rows [count++] = (store_invocation_t) {
            .function_id = b_id, .status = i % 4 == 0? "timeout": "success",
            .duration_us = 250000, .version = 1, .created_at = i < 10? stamp_edge: stamp_outside };
    for (int i = 0; i < 50; i++)
        rows [count++] = (store_invocation_t) {
            .function_id = x_id, .status = "error", .duration_us = 5000000, .version = 1,
            .created_at = stamp_today };
    assert (store_invocations_insert (store, rows, count) == (int) count);

    cJSON *reply = s_request (api, "alice", "GET", "/api/stats", NULL, NULL, 200, NULL);
    assert (s_num (reply, "total_functions") == 3);
    assert (s_num (reply, "total_invocations") == 120);
    assert (s_num (reply, "success_rate") == 88);           //  105 / 120
    assert (s_num (reply, "avg_duration_ms") == 84);        //  (5050 + 5000) / 120
    assert (s_num (reply, "cold_start_rate") == 4);         //  5 / 120
    assert (s_num (reply, "total_projects") == 0);
    //  p50: the 60th of 120 is 60 ms, reported within a bucket's width;
    //  p95: the 114th is one of b's 250 ms calls, whose bucket holds only
    //  250 ms, so it is exact
    double p50 = s_double (reply, "p50_duration_ms");
    assert (p50 >= 60 / 1.19 && p50 <= 60 * 1.19);
    assert (s_double (reply, "p95_duration_ms") == 250);
    cJSON *days = cJSON_GetObjectItem (reply, "invocations_per_day");
    assert (cJSON_GetArraySize (days) == 14);
    cJSON *first = cJSON_GetArrayItem (days, 0), *last = cJSON_GetArrayItem (days, 13);
    assert (streq (s_str (first, "date"), edge));
    assert (s_num (first, "count") == 10 && s_num (first, "errors") == 3);
    assert (streq (s_str (last, "date"), today));
    assert (s_num (last, "count") == 100 && s_num (last, "errors") == 10);
    for (int index = 1; index < 13; index++) {
        cJSON *day = cJSON_GetArrayItem (days, index);
        char expected [16];
        s_stats_date (13 - index, expected);
        assert (streq (s_str (day, "date"), expected));
        assert (s_num (day, "count") == 0 && s_num (day, "errors") == 0);
    }
    cJSON *functions = cJSON_GetObjectItem (reply, "functions");
    assert (cJSON_GetArraySize (functions) == 3);
    cJSON *fa = cJSON_GetArrayItem (functions, 0);
    cJSON *fb = cJSON_GetArrayItem (functions, 1);
    cJSON *fc = cJSON_GetArrayItem (functions, 2);
    assert (streq (s_str (fa, "function_id"), a_id) && streq (s_str (fa, "name"), "a"));
    assert (s_num (fa, "count") == 100 && s_num (fa, "errors") == 10);
    p50 = s_double (fa, "p50_duration_ms");                 //  true value 50 ms
    assert (p50 >= 50 / 1.19 && p50 <= 50 * 1.19);
    assert (streq (s_str (fb, "function_id"), b_id));
    assert (s_num (fb, "count") == 20 && s_num (fb, "errors") == 5);
    assert (s_double (fb, "p50_duration_ms") == 250);
    assert (streq (s_str (fc, "function_id"), c_id));
    assert (s_num (fc, "count") == 0 && s_num (fc, "errors") == 0);
    assert (s_double (fc, "p50_duration_ms") == 0);
    assert (cJSON_GetObjectItem (fa, "duration_us") == NULL);
    cJSON_Delete (reply);

    //  Bob sees only his own
    reply = s_request (api, "bob", "GET", "/api/stats", NULL, NULL, 200, NULL);
    assert (s_num (reply, "total_functions") == 1 && s_num (reply, "total_invocations") == 50);
    assert (s_num (reply, "success_rate") == 0 && s_num (reply, "cold_start_rate") == 0);
    assert (s_double (reply, "p50_duration_ms") == 5000 && s_double (reply, "p95_duration_ms") == 5000);
    last = cJSON_GetArrayItem (cJSON_GetObjectItem (reply, "invocations_per_day"), 13);
    assert (s_num (last, "count") == 50 && s_num (last, "errors") == 50);
    assert (s_num (cJSON_GetArrayItem (cJSON_GetObjectItem (reply, "invocations_per_day"), 0), "count") == 0);
    cJSON_Delete (reply);

    //  Someone with nothing: zeros and 14 zero days
    reply = s_request (api, "carol", "GET", "/api/stats", NULL, NULL, 200, NULL);
    assert (s_num (reply, "total_invocations") == 0 && s_double (reply, "p95_duration_ms") == 0);
    assert (cJSON_GetArraySize (cJSON_GetObjectItem (reply, "invocations_per_day")) == 14);
    assert (cJSON_GetArraySize (cJSON_GetObjectItem (reply, "functions")) == 0);
    cJSON_Delete (reply);

    //  Retention pruning rows does not change anything
    assert (store_exec (store, "DELETE FROM invocations WHERE function_id = ?", "s", a_id) == 100);
    reply = s_request (api, "alice", "GET", "/api/stats", NULL, NULL, 200, NULL);
    assert (s_num (reply, "total_invocations") == 120 && s_num (reply, "cold_start_rate") == 4);
    assert (s_double (reply, "p95_duration_ms") == 250);
    cJSON_Delete (reply);

    //  A deleted function drops out of everything
    char path [64];
    snprintf (path, sizeof path, "/api/functions/%s", b_id);
    s_assert_detail (s_request (api, "alice", "DELETE", path, NULL, NULL, 200, NULL), "Function deleted");
    reply = s_request (api, "alice", "GET", "/api/stats", NULL, NULL, 200, NULL);
    assert (s_num (reply, "total_functions") == 2 && s_num (reply, "total_invocations") == 100);
    assert (s_num (reply, "success_rate") == 90 && s_num (reply, "cold_start_rate") == 5);
    double p95 = s_double (reply, "p95_duration_ms");      //  true value 95 ms
    assert (p95 >= 95 / 1.19 && p95 <= 95 * 1.19);
    days = cJSON_GetObjectItem (reply, "invocations_per_day");
    assert (s_num (cJSON_GetArrayItem (days, 0), "count") == 0);
    functions = cJSON_GetObjectItem (reply, "functions");
    assert (cJSON_GetArraySize (functions) == 2);
    assert (streq (s_str (cJSON_GetArrayItem (functions, 0), "function_id"), a_id));
    assert (streq (s_str (cJSON_GetArrayItem (functions, 1), "function_id"), c_id));
    cJSON_Delete (reply);

    api_destroy (&api);
    store_destroy (&store);
}

void
api_test (bool verbose)
{
    printf ("api: ");
    assert (api_new (NULL) == NULL);
    store_t *store = store_new (":memory:");
    assert (store);
    api_t *api = api_new (store);
    assert (api);
    char *inval = NULL;
    char path [256], body [512];
    cJSON *reply;

    //  Health, unknown paths, methods, not-yet endpoints
    reply = s_request (api, "alice", "GET", "/api/health", NULL, NULL, 200, NULL);
    assert (streq (s_str (reply, "status"), "ok"));
    cJSON_Delete (reply);
    api_request_t req = { .method = "POST", .path = "/api/invoke/abcdefabcdef", .user_id = "alice" };
    api_response_t resp = { 0 };
    assert (api_handle (api, &req, &resp) == -1);
    req.path = "/api/gateway/slug/x";
    assert (api_handle (api, &req, &resp) == -1);
    req.path = "/elsewhere";
    assert (api_handle (api, &req, &resp) == -1);
    req.path = "/apix";
    assert (api_handle (api, &req, &resp) == -1);
    req.path = "/api/a/b/c/d/e/f/g/h/i/j";
    assert (api_handle (api, &req, &resp) == -1);
    api_response_reset (&resp);
    s_assert_detail (s_request (api, "alice", "DELETE", "/api/projects", NULL, NULL, 405, NULL),
                     "Method Not Allowed");
    s_assert_detail (s_request (api, "alice", "POST", "/api/chat", NULL, "{}", 501, NULL),
                     "Chat is not available yet");
    //  Not-yet endpoints: 404 for a project that is not the caller's, then 501
    s_assert_detail (s_request (api, "alice", "GET", "/api/projects/abcdefabcdef/requirements",
                                NULL, NULL, 404, NULL), "Project not found");
    s_assert_detail (s_request (api, "alice", "POST", "/api/projects/abcdefabcdef/database/provision",
                                NULL, NULL, 404, NULL), "Project not found");
    cJSON *later = s_request (api, "alice", "POST", "/api/projects", NULL, "{\"name\":\"Later\"}", 200, NULL);
    char *later_path = zsys_sprintf ("/api/projects/%s/requirements",
                                     cJSON_GetStringValue (cJSON_GetObjectItem (later, "id")));
    s_assert_detail (s_request (api, "alice", "GET", later_path, NULL, NULL, 501, NULL),
                     "Requirements are not available yet");
    s_assert_detail (s_request (api, "bob", "GET", later_path, NULL, NULL, 404, NULL), "Project not found");
    zstr_free (&later_path);
    later_path = zsys_sprintf ("/api/projects/%s/database/provision",
                               cJSON_GetStringValue (cJSON_GetObjectItem (later, "id")));
    s_assert_detail (s_request (api, "alice", "POST", later_path, NULL, NULL, 501, NULL),
                     "Project databases are not available yet");
    zstr_free (&later_path);
    later_path = zsys_sprintf ("/api/projects/%s", cJSON_GetStringValue (cJSON_GetObjectItem (later, "id")));
    cJSON_Delete (s_request (api, "alice", "DELETE", later_path, NULL, NULL, 200, NULL));
    zstr_free (&later_path);
    cJSON_Delete (later);

    //  Stats with nothing: zeros
    reply = s_request (api, "alice", "GET", "/api/stats", NULL, NULL, 200, NULL);
    assert (s_num (reply, "total_functions") == 0 && s_num (reply, "total_invocations") == 0);
    assert (s_num (reply, "success_rate") == 0 && s_num (reply, "avg_duration_ms") == 0);
    cJSON_Delete (reply);

    //  Body parsing: 400 for non-JSON, 422 for non-objects and missing bodies
    s_assert_detail (s_request (api, "alice", "POST", "/api/projects", NULL, "{\"name\":", 400, NULL),
                     "Request body is not valid JSON");
    s_assert_detail (s_request (api, "alice", "POST", "/api/projects", NULL, "{} x", 400, NULL),
                     "Request body is not valid JSON");
    s_assert_detail (s_request (api, "alice", "POST", "/api/projects", NULL, "{\"name\":\"\xff\"}", 400, NULL),
                     "Request body is not valid JSON");
    s_assert_invalid (s_request (api, "alice", "POST", "/api/projects", NULL, "[1]", 422, NULL), "body", NULL);
    s_assert_invalid (s_request (api, "alice", "POST", "/api/projects", NULL, "\"s\"", 422, NULL), "body", NULL);
    s_assert_invalid (s_request (api, "alice", "POST", "/api/projects", NULL, NULL, 422, NULL), "body", NULL);

    //  Project validation
    s_assert_invalid (s_request (api, "alice", "POST", "/api/projects", NULL, "{}", 422, NULL), "body", "name");
    s_assert_invalid (s_request (api, "alice", "POST", "/api/projects", NULL, "{\"name\":\"   \"}", 422, NULL),
                      "body", "name");
    s_assert_invalid (s_request (api, "alice", "POST", "/api/projects", NULL, "{\"name\":5}", 422, NULL),
                      "body", "name");
    s_assert_invalid (s_request (api, "alice", "POST", "/api/projects", NULL, "{\"name\":\"a\\nb\"}", 422, NULL),
                      "body", "name");
    char long_name [128];
    memset (long_name, 'x', 101);
    long_name [101] = 0;
    snprintf (body, sizeof body, "{\"name\":\"%s\"}", long_name);
    s_assert_invalid (s_request (api, "alice", "POST", "/api/projects", NULL, body, 422, NULL), "body", "name");
    long_name [100] = 0;
    snprintf (body, sizeof body, "{\"name\":\"  %s  \"}", long_name);
    cJSON_Delete (s_request (api, "alice", "POST", "/api/projects", NULL, body, 200, NULL));
    reply = s_request (api, "alice", "POST", "/api/projects", NULL, "{\"name\":\"n\",\"description\":7}", 422, NULL);
    s_assert_invalid (reply, "body", "description");

    //  Projects: create, slugs, list, get, update
    cJSON *project = s_request (api, "alice", "POST", "/api/projects", NULL,
                                "{\"name\":\" My Project \",\"description\":\"d\",\"extra\":1}", 200, NULL);
    assert (streq (s_str (project, "name"), "My Project"));
    assert (streq (s_str (project, "slug"), "my-project"));
    assert (streq (s_str (project, "status"), "active"));
    assert (streq (s_str (project, "description"), "d"));
    assert (streq (s_str (project, "requirements_txt"), ""));
    assert (s_num (project, "function_count") == 0);
    assert (cJSON_IsFalse (cJSON_GetObjectItem (project, "has_database")));
    assert (util_is_id (s_str (project, "id")));
    assert (strlen (s_str (project, "created_at")) == 27);
    char project_id [UTIL_ID_SIZE];
    snprintf (project_id, sizeof project_id, "%s", s_str (project, "id"));
    cJSON_Delete (project);
    reply = s_request (api, "bob", "POST", "/api/projects", NULL, "{\"name\":\"my_project\"}", 200, NULL);
    assert (streq (s_str (reply, "slug"), "my-project-1"));
    char bob_project [UTIL_ID_SIZE];
    snprintf (bob_project, sizeof bob_project, "%s", s_str (reply, "id"));
    cJSON_Delete (reply);
    reply = s_request (api, "alice", "POST", "/api/projects", NULL, "{\"name\":\"My--Project!\"}", 200, NULL);
    assert (streq (s_str (reply, "slug"), "my-project-2"));
    char third [UTIL_ID_SIZE];
    snprintf (third, sizeof third, "%s", s_str (reply, "id"));
    cJSON_Delete (reply);

    reply = s_request (api, "alice", "GET", "/api/projects", NULL, NULL, 200, NULL);
    assert (cJSON_GetArraySize (reply) == 3);       //  bob's is not there
    assert (streq (s_str (cJSON_GetArrayItem (reply, 0), "id"), third));  //  newest first
    cJSON_Delete (reply);

    snprintf (path, sizeof path, "/api/projects/%s", third);
    //  Renamed to a name with the same base slug: keeps "my-project-2"
    reply = s_request (api, "alice", "PUT", path, NULL, "{\"name\":\"MY PROJECT\"}", 200, &inval);
    assert (streq (s_str (reply, "slug"), "my-project-2"));
    assert (inval && strncmp (inval, "routes ", 7) == 0);
    assert (streq (s_str (reply, "name"), "MY PROJECT"));
    assert (streq (s_str (reply, "description"), ""));
    cJSON_Delete (reply);
    zstr_free (&inval);
    reply = s_request (api, "alice", "PUT", path, NULL, "{\"name\":\"Other\",\"description\":\"x\"}", 200, NULL);
    assert (streq (s_str (reply, "slug"), "other"));
    assert (streq (s_str (reply, "description"), "x"));
    cJSON_Delete (reply);
    reply = s_request (api, "alice", "PUT", path, NULL, "{\"description\":null}", 200, NULL);
    assert (streq (s_str (reply, "description"), "x"));
    cJSON_Delete (reply);
    s_assert_invalid (s_request (api, "alice", "PUT", path, NULL, "{\"name\":\"\"}", 422, NULL), "body", "name");

    //  Scoping: bob cannot see, change or delete alice's project
    s_assert_detail (s_request (api, "bob", "GET", path, NULL, NULL, 404, NULL), "Project not found");
    s_assert_detail (s_request (api, "bob", "PUT", path, NULL, "{\"name\":\"x\"}", 404, NULL), "Project not found");
    s_assert_detail (s_request (api, "bob", "DELETE", path, NULL, NULL, 404, NULL), "Project not found");
    s_assert_detail (s_request (api, "alice", "GET", "/api/projects/nonsense", NULL, NULL, 404, NULL),
                     "Project not found");
    s_assert_detail (s_request (api, "alice", "GET", "/api/projects/abcdefabcdef", NULL, NULL, 404, NULL),
                     "Project not found");

    //  Functions: create with defaults, validation
    const char *fn_body = "{\"name\":\"hello\",\"code\":\"def handler(e):\\n    return 1\\n\",\"project_id\":\"%s\"}";
    snprintf (body, sizeof body, fn_body, project_id);
    cJSON *function = s_request (api, "alice", "POST", "/api/functions", NULL, body, 200, NULL);
    assert (streq (s_str (function, "name"), "hello"));
    assert (streq (s_str (function, "runtime"), "python"));
    assert (streq (s_str (function, "status"), "active"));
    assert (streq (s_str (function, "project_id"), project_id));
    assert (streq (s_str (function, "description"), ""));
    assert (s_num (function, "active_version") == 1);
    assert (s_num (function, "timeout_seconds") == 30);
    assert (s_num (function, "memory_mb") == 128);
    assert (cJSON_IsFalse (cJSON_GetObjectItem (function, "network_enabled")));
    assert (strstr (s_str (function, "code"), "return 1"));
    char function_id [UTIL_ID_SIZE];
    snprintf (function_id, sizeof function_id, "%s", s_str (function, "id"));
    cJSON_Delete (function);

    reply = s_request (api, "alice", "POST", "/api/functions", NULL,
        "{\"name\":\"solo\",\"code\":\"x=1\",\"project_id\":null,\"network_enabled\":true,"
        "\"timeout_seconds\":900,\"memory_mb\":64,\"runtime\":\"python\"}", 200, NULL);
    assert (cJSON_IsNull (cJSON_GetObjectItem (reply, "project_id")));
    assert (cJSON_IsTrue (cJSON_GetObjectItem (reply, "network_enabled")));
    assert (s_num (reply, "timeout_seconds") == 900 && s_num (reply, "memory_mb") == 64);
    char solo_id [UTIL_ID_SIZE];
    snprintf (solo_id, sizeof solo_id, "%s", s_str (reply, "id"));
    cJSON_Delete (reply);

    s_assert_invalid (s_request (api, "alice", "POST", "/api/functions", NULL, "{\"code\":\"x\"}", 422, NULL),
                      "body", "name");
    s_assert_invalid (s_request (api, "alice", "POST", "/api/functions", NULL, "{\"name\":\"f\"}", 422, NULL),
                      "body", "code");
    s_assert_invalid (s_request (api, "alice", "POST", "/api/functions", NULL,
                      "{\"name\":\"f\",\"code\":\"  \\n\"}", 422, NULL), "body", "code");
    s_assert_invalid (s_request (api, "alice", "POST", "/api/functions", NULL,
                      "{\"name\":\"f\",\"code\":[1]}", 422, NULL), "body", "code");
    s_assert_invalid (s_request (api, "alice", "POST", "/api/functions", NULL,
                      "{\"name\":\"f\",\"code\":\"x\",\"memory_mb\":63}", 422, NULL), "body", "memory_mb");
    s_assert_invalid (s_request (api, "alice", "POST", "/api/functions", NULL,
                      "{\"name\":\"f\",\"code\":\"x\",\"memory_mb\":2049}", 422, NULL), "body", "memory_mb");
    s_assert_invalid (s_request (api, "alice", "POST", "/api/functions", NULL,
                      "{\"name\":\"f\",\"code\":\"x\",\"memory_mb\":128.5}", 422, NULL), "body", "memory_mb");
    s_assert_invalid (s_request (api, "alice", "POST", "/api/functions", NULL,
                      "{\"name\":\"f\",\"code\":\"x\",\"timeout_seconds\":0}", 422, NULL), "body", "timeout_seconds");
    s_assert_invalid (s_request (api, "alice", "POST", "/api/functions", NULL,
                      "{\"name\":\"f\",\"code\":\"x\",\"timeout_seconds\":\"30\"}", 422, NULL), "body", "timeout_seconds");
    s_assert_invalid (s_request (api, "alice", "POST", "/api/functions", NULL,
                      "{\"name\":\"f\",\"code\":\"x\",\"network_enabled\":1}", 422, NULL), "body", "network_enabled");
    s_assert_invalid (s_request (api, "alice", "POST", "/api/functions", NULL,
                      "{\"name\":\"f\",\"code\":\"x\",\"runtime\":\"node\"}", 422, NULL), "body", "runtime");
    reply = s_request (api, "alice", "POST", "/api/functions", NULL, "{\"memory_mb\":1}", 422, NULL);
    assert (cJSON_GetArraySize (cJSON_GetObjectItem (reply, "detail")) == 3);   //  all problems at once
    cJSON_Delete (reply);
    snprintf (body, sizeof body, fn_body, bob_project);
    s_assert_detail (s_request (api, "alice", "POST", "/api/functions", NULL, body, 404, NULL),
                     "Project not found");

    //  Code over 1 MiB is refused
    size_t big_size = CODE_MAX_BYTES + 64;
    char *big = (char *) malloc (big_size);
    int prefix = snprintf (big, big_size, "{\"name\":\"big\",\"code\":\"");
    memset (big + prefix, 'x', CODE_MAX_BYTES + 1);
    strcpy (big + prefix + CODE_MAX_BYTES + 1, "\"}");
    s_assert_invalid (s_request (api, "alice", "POST", "/api/functions", NULL, big, 422, NULL), "body", "code");
    free (big);

    //  Function lists and scoping
    reply = s_request (api, "alice", "GET", "/api/functions", NULL, NULL, 200, NULL);
    assert (cJSON_GetArraySize (reply) == 2);
    assert (streq (s_str (cJSON_GetArrayItem (reply, 0), "id"), solo_id));
    cJSON_Delete (reply);
    snprintf (path, sizeof path, "/api/projects/%s/functions", project_id);
    reply = s_request (api, "alice", "GET", path, NULL, NULL, 200, NULL);
    assert (cJSON_GetArraySize (reply) == 1);
    cJSON_Delete (reply);
    s_assert_detail (s_request (api, "bob", "GET", path, NULL, NULL, 404, NULL), "Project not found");
    snprintf (path, sizeof path, "/api/projects/%s", project_id);
    reply = s_request (api, "alice", "GET", path, NULL, NULL, 200, NULL);
    assert (s_num (reply, "function_count") == 1);
    cJSON_Delete (reply);
    reply = s_request (api, "bob", "GET", "/api/functions", NULL, NULL, 200, NULL);
    assert (cJSON_GetArraySize (reply) == 0);
    cJSON_Delete (reply);
    snprintf (path, sizeof path, "/api/functions/%s", function_id);
    s_assert_detail (s_request (api, "bob", "GET", path, NULL, NULL, 404, NULL), "Function not found");
    s_assert_detail (s_request (api, "bob", "PUT", path, NULL, "{\"name\":\"x\"}", 404, NULL), "Function not found");
    s_assert_detail (s_request (api, "bob", "DELETE", path, NULL, NULL, 404, NULL), "Function not found");

    //  Versions: code saves make max+1, identical code makes none, rollback
    reply = s_request (api, "alice", "PUT", path, NULL, "{\"code\":\"v2\",\"memory_mb\":256}", 200, &inval);
    assert (s_num (reply, "active_version") == 2 && s_num (reply, "memory_mb") == 256);
    assert (streq (s_str (reply, "code"), "v2"));
    assert (streq (s_str (reply, "name"), "hello"));
    char *expected = zsys_sprintf ("function %s", function_id);
    assert (inval && streq (inval, expected));
    zstr_free (&inval);
    cJSON_Delete (reply);
    reply = s_request (api, "alice", "PUT", path, NULL, "{\"code\":\"v2\",\"name\":\"renamed\"}", 200, NULL);
    assert (s_num (reply, "active_version") == 2);
    assert (streq (s_str (reply, "name"), "renamed"));
    cJSON_Delete (reply);
    s_assert_invalid (s_request (api, "alice", "PUT", path, NULL, "{\"timeout_seconds\":901}", 422, NULL),
                      "body", "timeout_seconds");
    snprintf (path, sizeof path, "/api/functions/%s/versions/1", function_id);
    reply = s_request (api, "alice", "PUT", path, NULL, NULL, 200, &inval);
    assert (s_num (reply, "active_version") == 1);
    assert (strstr (s_str (reply, "code"), "return 1"));
    assert (inval && streq (inval, expected));
    zstr_free (&inval);
    cJSON_Delete (reply);
    snprintf (path, sizeof path, "/api/functions/%s", function_id);
    reply = s_request (api, "alice", "PUT", path, NULL, "{\"code\":\"v3\"}", 200, NULL);
    assert (s_num (reply, "active_version") == 3);  //  not 2: versions always grow
    cJSON_Delete (reply);
    snprintf (path, sizeof path, "/api/functions/%s/versions", function_id);
    reply = s_request (api, "alice", "GET", path, NULL, NULL, 200, NULL);
    assert (cJSON_GetArraySize (reply) == 3);
    assert (s_num (cJSON_GetArrayItem (reply, 0), "version") == 3);
    assert (streq (s_str (cJSON_GetArrayItem (reply, 0), "code"), "v3"));
    assert (streq (s_str (cJSON_GetArrayItem (reply, 2), "function_id"), function_id));
    cJSON_Delete (reply);
    s_assert_detail (s_request (api, "bob", "GET", path, NULL, NULL, 404, NULL), "Function not found");
    snprintf (path, sizeof path, "/api/functions/%s/versions/99", function_id);
    s_assert_detail (s_request (api, "alice", "PUT", path, NULL, NULL, 404, NULL), "Version not found");
    snprintf (path, sizeof path, "/api/functions/%s/versions/0", function_id);
    s_assert_detail (s_request (api, "alice", "PUT", path, NULL, NULL, 404, NULL), "Version not found");
    snprintf (path, sizeof path, "/api/functions/%s/versions/abc", function_id);
    s_assert_invalid (s_request (api, "alice", "PUT", path, NULL, NULL, 422, NULL), "path", "version");
    snprintf (path, sizeof path, "/api/functions/%s/versions/2", function_id);
    s_assert_detail (s_request (api, "bob", "PUT", path, NULL, NULL, 404, NULL), "Function not found");
    zstr_free (&expected);

    //  Env vars: upsert, masking, validation, delete
    snprintf (path, sizeof path, "/api/projects/%s/env", project_id);
    reply = s_request (api, "alice", "POST", path, NULL, "{\"key\":\"B_TOKEN\",\"value\":\"s3cret\"}", 200, &inval);
    assert (streq (s_str (reply, "key"), "B_TOKEN"));
    assert (streq (s_str (reply, "value"), "********"));
    assert (cJSON_IsTrue (cJSON_GetObjectItem (reply, "is_secret")));
    expected = zsys_sprintf ("project %s", project_id);
    assert (inval && streq (inval, expected));
    zstr_free (&inval);
    zstr_free (&expected);
    char env_id [UTIL_ID_SIZE];
    snprintf (env_id, sizeof env_id, "%s", s_str (reply, "id"));
    cJSON_Delete (reply);
    reply = s_request (api, "alice", "POST", path, NULL,
                       "{\"key\":\"A_MODE\",\"value\":\"debug\",\"is_secret\":false}", 200, NULL);
    assert (streq (s_str (reply, "value"), "debug"));
    cJSON_Delete (reply);
    reply = s_request (api, "alice", "POST", path, NULL,
                       "{\"key\":\"B_TOKEN\",\"value\":\"new\",\"is_secret\":false}", 200, NULL);
    assert (streq (s_str (reply, "value"), "new"));
    assert (streq (s_str (reply, "id"), env_id));  //  upserted, same row
    cJSON_Delete (reply);
    reply = s_request (api, "alice", "GET", path, NULL, NULL, 200, NULL);
    assert (cJSON_GetArraySize (reply) == 2);
    assert (streq (s_str (cJSON_GetArrayItem (reply, 0), "key"), "A_MODE"));     //  sorted by key
    cJSON_Delete (reply);
    s_assert_invalid (s_request (api, "alice", "POST", path, NULL, "{\"key\":\"1X\",\"value\":\"v\"}", 422, NULL),
                      "body", "key");
    s_assert_invalid (s_request (api, "alice", "POST", path, NULL, "{\"key\":\"clowdy_x\",\"value\":\"v\"}", 422, NULL),
                      "body", "key");
    s_assert_invalid (s_request (api, "alice", "POST", path, NULL, "{\"key\":\"X\",\"value\":1}", 422, NULL),
                      "body", "value");
    s_assert_invalid (s_request (api, "alice", "POST", path, NULL, "{\"key\":\"X\"}", 422, NULL), "body", "value");
    s_assert_invalid (s_request (api, "alice", "POST", path, NULL,
                      "{\"key\":\"X\",\"value\":\"v\",\"is_secret\":\"yes\"}", 422, NULL), "body", "is_secret");
    s_assert_detail (s_request (api, "bob", "GET", path, NULL, NULL, 404, NULL), "Project not found");
    s_assert_detail (s_request (api, "bob", "POST", path, NULL, "{\"key\":\"X\",\"value\":\"v\"}", 404, NULL),
                     "Project not found");

    //  The invoke path sees the env unmasked
    store_function_t fn = { 0 };
    assert (store_function_load (store, function_id, &fn) == 0);
    assert (streq (fn.code, "v3") && fn.version == 3 && fn.memory_mb == 256);
    assert (streq (fn.env [0], "A_MODE=debug") && streq (fn.env [1], "B_TOKEN=new") && !fn.env [2]);
    store_function_reset (&fn);

    snprintf (path, sizeof path, "/api/projects/%s/env/A_MODE", project_id);
    s_assert_detail (s_request (api, "bob", "DELETE", path, NULL, NULL, 404, NULL), "Project not found");
    s_assert_detail (s_request (api, "alice", "DELETE", path, NULL, NULL, 200, NULL), "Env var 'A_MODE' deleted");
    s_assert_detail (s_request (api, "alice", "DELETE", path, NULL, NULL, 404, NULL), "Env var 'A_MODE' not found");

    //  Routes
    snprintf (path, sizeof path, "/api/projects/%s/routes", project_id);
    snprintf (body, sizeof body, "{\"function_id\":\"%s\",\"method\":\"post\",\"path\":\"/users/:id\"}", function_id);
    reply = s_request (api, "alice", "POST", path, NULL, body, 200, &inval);
    assert (streq (s_str (reply, "method"), "POST"));
    assert (streq (s_str (reply, "path"), "/users/:id"));
    assert (streq (s_str (reply, "project_id"), project_id));
    assert (streq (s_str (reply, "function_id"), function_id));
    assert (streq (s_str (reply, "description"), ""));
    expected = zsys_sprintf ("routes %s", project_id);
    assert (inval && streq (inval, expected));
    zstr_free (&inval);
    zstr_free (&expected);
    char route_id [UTIL_ID_SIZE];
    snprintf (route_id, sizeof route_id, "%s", s_str (reply, "id"));
    cJSON_Delete (reply);
    s_assert_detail (s_request (api, "alice", "POST", path, NULL, body, 409, NULL),
                     "A route for POST /users/:id already exists in this project");
    snprintf (body, sizeof body, "{\"function_id\":\"%s\",\"method\":\"ANY\",\"path\":\"/\"}", function_id);
    cJSON_Delete (s_request (api, "alice", "POST", path, NULL, body, 200, NULL));
    snprintf (body, sizeof body, "{\"function_id\":\"%s\",\"method\":\"GET\",\"path\":\"/users/:id\"}", function_id);
    cJSON_Delete (s_request (api, "alice", "POST", path, NULL, body, 200, NULL));
    reply = s_request (api, "alice", "GET", path, NULL, NULL, 200, NULL);
    assert (cJSON_GetArraySize (reply) == 3);
    assert (streq (s_str (cJSON_GetArrayItem (reply, 0), "path"), "/"));
    assert (streq (s_str (cJSON_GetArrayItem (reply, 1), "method"), "GET"));        //  path, then method
    assert (streq (s_str (cJSON_GetArrayItem (reply, 2), "method"), "POST"));
    cJSON_Delete (reply);
    const char *bad_paths [] = { "users", "", "/a//b", "/:", "/*rest/x", "/a?b", "/:a/:a" };
    for (size_t i = 0; i < sizeof bad_paths / sizeof bad_paths [0]; i++) {
        snprintf (body, sizeof body, "{\"function_id\":\"%s\",\"method\":\"GET\",\"path\":\"%s\"}",
                  function_id, bad_paths [i]);
        s_assert_invalid (s_request (api, "alice", "POST", path, NULL, body, 422, NULL), "body", "path");
    }
    //  Same shape as an existing route (param names aside) is a conflict
    snprintf (body, sizeof body, "{\"function_id\":\"%s\",\"method\":\"GET\",\"path\":\"/users/:uid/\"}", function_id);
    s_assert_detail (s_request (api, "alice", "POST", path, NULL, body, 409, NULL),
                     "A route for GET /users/:uid already exists in this project");
    snprintf (body, sizeof body, "{\"function_id\":\"%s\",\"method\":\"GET\",\"path\":\"/trailing/\"}", function_id);
    reply = s_request (api, "alice", "POST", path, NULL, body, 200, NULL);
    assert (streq (s_str (reply, "path"), "/trailing"));    //  normalised
    char trailing_id [UTIL_ID_SIZE];
    snprintf (trailing_id, sizeof trailing_id, "%s", s_str (reply, "id"));
    cJSON_Delete (reply);
    snprintf (body, sizeof body, "/api/projects/%s/routes/%s", project_id, trailing_id);
    s_assert_detail (s_request (api, "alice", "DELETE", body, NULL, NULL, 200, NULL), "Route deleted");
    snprintf (body, sizeof body, "{\"function_id\":\"%s\",\"method\":\"FETCH\",\"path\":\"/x\"}", function_id);
    s_assert_invalid (s_request (api, "alice", "POST", path, NULL, body, 422, NULL), "body", "method");
    s_assert_invalid (s_request (api, "alice", "POST", path, NULL, "{\"method\":\"GET\",\"path\":\"/x\"}", 422, NULL),
                      "body", "function_id");
    snprintf (body, sizeof body, "{\"function_id\":\"%s\",\"method\":\"GET\",\"path\":\"/solo\"}", solo_id);
    s_assert_invalid (s_request (api, "alice", "POST", path, NULL, body, 422, NULL), "body", "function_id");
    s_assert_detail (s_request (api, "alice", "POST", path, NULL,
                     "{\"function_id\":\"abcdefabcdef\",\"method\":\"GET\",\"path\":\"/x\"}", 404, NULL),
                     "Function not found");
    s_assert_detail (s_request (api, "bob", "GET", path, NULL, NULL, 404, NULL), "Project not found");

    snprintf (path, sizeof path, "/api/projects/%s/routes/%s", project_id, route_id);
    reply = s_request (api, "alice", "PUT", path, NULL, "{\"path\":\"/people/:id\",\"description\":\"d\"}", 200, NULL);
    assert (streq (s_str (reply, "path"), "/people/:id"));
    assert (streq (s_str (reply, "method"), "POST"));
    assert (streq (s_str (reply, "description"), "d"));
    cJSON_Delete (reply);
    s_assert_detail (s_request (api, "alice", "PUT", path, NULL, "{\"method\":\"ANY\",\"path\":\"/\"}", 409, NULL),
                     "A route for ANY / already exists in this project");
    s_assert_invalid (s_request (api, "alice", "PUT", path, NULL, "{\"path\":\"nope\"}", 422, NULL), "body", "path");
    s_assert_detail (s_request (api, "bob", "PUT", path, NULL, "{}", 404, NULL), "Project not found");
    s_assert_detail (s_request (api, "bob", "DELETE", path, NULL, NULL, 404, NULL), "Project not found");
    s_assert_detail (s_request (api, "alice", "DELETE", path, NULL, NULL, 200, NULL), "Route deleted");
    s_assert_detail (s_request (api, "alice", "DELETE", path, NULL, NULL, 404, NULL), "Route not found");
    s_assert_detail (s_request (api, "alice", "PUT", path, NULL, "{}", 404, NULL), "Route not found");

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
    reply = s_request (api, "alice", "GET", path, NULL, NULL, 200, NULL);
    assert (cJSON_GetArraySize (reply) == 50);
    cJSON *newest = cJSON_GetArrayItem (reply, 0);
    assert (streq (s_str (newest, "created_at"), stamps [59]));
    assert (s_num (newest, "duration_ms") == 2 && s_num (newest, "version") == 3);
    assert (cJSON_IsFalse (cJSON_GetObjectItem (newest, "cold_start")));
    assert (cJSON_IsNull (cJSON_GetObjectItem (newest, "logs")));
    cJSON_Delete (reply);
    reply = s_request (api, "alice", "GET", path, "limit=500", NULL, 200, NULL);
    assert (cJSON_GetArraySize (reply) == 60);
    cJSON_Delete (reply);
    reply = s_request (api, "alice", "GET", path, "x=1&limit=7", NULL, 200, NULL);
    assert (cJSON_GetArraySize (reply) == 7);
    cJSON_Delete (reply);
    s_assert_invalid (s_request (api, "alice", "GET", path, "limit=501", NULL, 422, NULL), "query", "limit");
    s_assert_invalid (s_request (api, "alice", "GET", path, "limit=0", NULL, 422, NULL), "query", "limit");
    s_assert_invalid (s_request (api, "alice", "GET", path, "limit=ten", NULL, 422, NULL), "query", "limit");
    s_assert_invalid (s_request (api, "alice", "GET", path, "limit=", NULL, 422, NULL), "query", "limit");
    s_assert_detail (s_request (api, "bob", "GET", path, NULL, NULL, 404, NULL), "Function not found");
    reply = s_request (api, "alice", "GET", "/api/stats", NULL, NULL, 200, NULL);
    assert (s_num (reply, "total_functions") == 2);
    assert (s_num (reply, "total_invocations") == 60);
    assert (s_num (reply, "success_rate") == 75);
    assert (s_num (reply, "avg_duration_ms") == 2);
    cJSON_Delete (reply);
    reply = s_request (api, "bob", "GET", "/api/stats", NULL, NULL, 200, NULL);
    assert (s_num (reply, "total_functions") == 0 && s_num (reply, "total_invocations") == 0);
    cJSON_Delete (reply);

    //  Deleting a function with routes drops the project's route table too
    snprintf (body, sizeof body, fn_body, project_id);
    reply = s_request (api, "alice", "POST", "/api/functions", NULL, body, 200, NULL);
    char routed_id [UTIL_ID_SIZE];
    snprintf (routed_id, sizeof routed_id, "%s", s_str (reply, "id"));
    cJSON_Delete (reply);
    snprintf (path, sizeof path, "/api/projects/%s/routes", project_id);
    snprintf (body, sizeof body, "{\"function_id\":\"%s\",\"method\":\"GET\",\"path\":\"/routed\"}", routed_id);
    cJSON_Delete (s_request (api, "alice", "POST", path, NULL, body, 200, NULL));
    snprintf (path, sizeof path, "/api/functions/%s", routed_id);
    s_assert_detail (s_request (api, "alice", "DELETE", path, NULL, NULL, 200, &inval), "Function deleted");
    expected = zsys_sprintf ("project %s", project_id);
    assert (inval && streq (inval, expected));
    zstr_free (&inval);
    zstr_free (&expected);

    //  Function delete
    snprintf (path, sizeof path, "/api/functions/%s", solo_id);
    s_assert_detail (s_request (api, "alice", "DELETE", path, NULL, NULL, 200, &inval), "Function deleted");
    expected = zsys_sprintf ("function %s", solo_id);
    assert (inval && streq (inval, expected));
    zstr_free (&inval);
    zstr_free (&expected);
    s_assert_detail (s_request (api, "alice", "GET", path, NULL, NULL, 404, NULL), "Function not found");

    //  Project delete cascades
    snprintf (path, sizeof path, "/api/projects/%s", project_id);
    s_assert_detail (s_request (api, "alice", "DELETE", path, NULL, NULL, 200, &inval), "Project deleted");
    expected = zsys_sprintf ("project %s", project_id);
    assert (inval && streq (inval, expected));
    zstr_free (&inval);
    zstr_free (&expected);
    s_assert_detail (s_request (api, "alice", "GET", path, NULL, NULL, 404, NULL), "Project not found");
    snprintf (path, sizeof path, "/api/functions/%s", function_id);
    s_assert_detail (s_request (api, "alice", "GET", path, NULL, NULL, 404, NULL), "Function not found");
    cJSON *count = store_query_row (store,
        "SELECT (SELECT count(*) FROM invocations) + (SELECT count(*) FROM routes)"
        " + (SELECT count(*) FROM env_vars) + (SELECT count(*) FROM function_versions) AS n", NULL);
    assert (s_num (count, "n") == 0);
    cJSON_Delete (count);
    reply = s_request (api, "alice", "GET", "/api/stats", NULL, NULL, 200, NULL);
    assert (s_num (reply, "total_functions") == 0 && s_num (reply, "total_invocations") == 0);
    cJSON_Delete (reply);

    api_destroy (&api);
    api_destroy (&api);
    store_destroy (&store);
    s_stats_test ();
    printf ("OK\n");
}
