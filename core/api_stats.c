/*  =========================================================================
    api_stats - GET /api/stats: totals, percentiles, days and per-function
    figures for the caller

    /api/stats reads only aggregates that the insert trigger on invocations
    keeps (store.c, migrations 1 and 3), so its cost grows with the caller's
    number of functions, never with invocation rows, and retention pruning
    never lowers it:
    - function_stats: per-function totals (count, successes, summed
      duration, cold starts) give the totals and the per-function counts;
    - function_durations: a per-function log-scale histogram (bucket 0 is
      under 0.1 ms, then quarter-octave buckets, each 19% wider than the
      last) with count and summed duration per bucket, gives percentiles;
    - function_days: counts per function per UTC day give the last 14 days.
    Percentiles use the nearest rank: the bucket holding the ceil (p% * n)th
    fastest invocation is found from cumulative counts, and the mean duration
    of that bucket's invocations is reported, in ms with one decimal. It is
    exact when the bucket holds one distinct duration and otherwise off by
    less than the bucket's width (under 19%). Errors are the function's own
    failures (status "error" or "timeout"); "lost" calls (its worker was
    lost: a platform failure, outcome unknown) are counted apart, as `lost`
    (and `platform_errors`), and left out of success_rate, which measures
    the functions' outcomes. All counts are over every
    invocation recorded since the function was created; deleted functions
    drop out of everything.
    ========================================================================= */

#include <czmq.h>
#include <math.h>
#include "core/api_call.h"

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
s_stats_durations (api_call_t *call, zhashx_t *functions_by_id, s_histogram_t *overall)
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
s_stats_days (api_call_t *call)
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

int
api_stats (api_call_t *call)
{
    const char *user_id = call->req->user_id;
    cJSON *functions = store_query (call->store,
        "SELECT f.id AS function_id, f.name,"
        "       coalesce (s.invocations, 0) AS count,"
        "       coalesce (s.invocations - s.successes - s.lost, 0) AS errors,"
        "       coalesce (s.lost, 0) AS lost,"
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
    double total = 0, errors = 0, duration_us = 0, cold_starts = 0, lost = 0;
    cJSON *entry;
    cJSON_ArrayForEach (entry, functions) {
        total += cJSON_GetObjectItem (entry, "count")->valuedouble;
        errors += cJSON_GetObjectItem (entry, "errors")->valuedouble;
        lost += cJSON_GetObjectItem (entry, "lost")->valuedouble;
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
    //  Of the calls whose outcome is known: a lost worker is no failure of
    //  the function's
    double known = total - lost;
    cJSON_AddNumberToObject (stats, "success_rate", known > 0? round ((known - errors) * 100 / known): 0);
    cJSON_AddNumberToObject (stats, "lost", lost);
    cJSON_AddNumberToObject (stats, "platform_errors", lost);
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
    return stats? api_reply (call, 200, stats): api_reply_store_error (call);
}


//  --------------------------------------------------------------------------
//  Selftest


//  Create a project-less function over the API; its id into id
static void
s_stats_function (api_t *api, const char *user, const char *name, char id [UTIL_ID_SIZE])
{
    char body [256];
    snprintf (body, sizeof body, "{\"name\":\"%s\",\"code\":\"def handler(e):\\n    return 1\\n\"}", name);
    cJSON *reply = api_test_request (api, user, "POST", "/api/functions", NULL, body, 200, NULL);
    snprintf (id, UTIL_ID_SIZE, "%s", api_test_str (reply, "id"));
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


//  Stats over known invocations, on a store of its own. Alice has a (100
//  calls of 1..100 ms today, every tenth an error, the first five cold), b
//  (20 calls of 250 ms: ten 13 days ago, the edge of the 14 days, and ten
//  14 days ago, outside it; five errors) and c (never called); bob has x
//  (50 failing 5 s calls today), which alice must never see.
void
api_stats_test (bool verbose)
{
    printf ("api_stats: ");
    store_t *store = store_new (":memory:");
    assert (store);
    api_t *api = api_new (store);

    //  Stats with nothing: zeros
    cJSON *empty = api_test_request (api, "alice", "GET", "/api/stats", NULL, NULL, 200, NULL);
    assert (api_test_num (empty, "total_functions") == 0 && api_test_num (empty, "total_invocations") == 0);
    assert (api_test_num (empty, "success_rate") == 0 && api_test_num (empty, "avg_duration_ms") == 0);
    cJSON_Delete (empty);
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

    cJSON *reply = api_test_request (api, "alice", "GET", "/api/stats", NULL, NULL, 200, NULL);
    assert (api_test_num (reply, "total_functions") == 3);
    assert (api_test_num (reply, "total_invocations") == 120);
    assert (api_test_num (reply, "success_rate") == 88);           //  105 / 120
    assert (api_test_num (reply, "avg_duration_ms") == 84);        //  (5050 + 5000) / 120
    assert (api_test_num (reply, "cold_start_rate") == 4);         //  5 / 120
    assert (api_test_num (reply, "total_projects") == 0);
    //  p50: the 60th of 120 is 60 ms, reported within a bucket's width;
    //  p95: the 114th is one of b's 250 ms calls, whose bucket holds only
    //  250 ms, so it is exact
    double p50 = api_test_double (reply, "p50_duration_ms");
    assert (p50 >= 60 / 1.19 && p50 <= 60 * 1.19);
    assert (api_test_double (reply, "p95_duration_ms") == 250);
    cJSON *days = cJSON_GetObjectItem (reply, "invocations_per_day");
    assert (cJSON_GetArraySize (days) == 14);
    cJSON *first = cJSON_GetArrayItem (days, 0), *last = cJSON_GetArrayItem (days, 13);
    assert (streq (api_test_str (first, "date"), edge));
    assert (api_test_num (first, "count") == 10 && api_test_num (first, "errors") == 3);
    assert (streq (api_test_str (last, "date"), today));
    assert (api_test_num (last, "count") == 100 && api_test_num (last, "errors") == 10);
    for (int index = 1; index < 13; index++) {
        cJSON *day = cJSON_GetArrayItem (days, index);
        char expected [16];
        s_stats_date (13 - index, expected);
        assert (streq (api_test_str (day, "date"), expected));
        assert (api_test_num (day, "count") == 0 && api_test_num (day, "errors") == 0);
    }
    cJSON *functions = cJSON_GetObjectItem (reply, "functions");
    assert (cJSON_GetArraySize (functions) == 3);
    cJSON *fa = cJSON_GetArrayItem (functions, 0);
    cJSON *fb = cJSON_GetArrayItem (functions, 1);
    cJSON *fc = cJSON_GetArrayItem (functions, 2);
    assert (streq (api_test_str (fa, "function_id"), a_id) && streq (api_test_str (fa, "name"), "a"));
    assert (api_test_num (fa, "count") == 100 && api_test_num (fa, "errors") == 10);
    p50 = api_test_double (fa, "p50_duration_ms");                 //  true value 50 ms
    assert (p50 >= 50 / 1.19 && p50 <= 50 * 1.19);
    assert (streq (api_test_str (fb, "function_id"), b_id));
    assert (api_test_num (fb, "count") == 20 && api_test_num (fb, "errors") == 5);
    assert (api_test_double (fb, "p50_duration_ms") == 250);
    assert (streq (api_test_str (fc, "function_id"), c_id));
    assert (api_test_num (fc, "count") == 0 && api_test_num (fc, "errors") == 0);
    assert (api_test_double (fc, "p50_duration_ms") == 0);
    assert (cJSON_GetObjectItem (fa, "duration_us") == NULL);
    cJSON_Delete (reply);

    //  Bob sees only his own
    reply = api_test_request (api, "bob", "GET", "/api/stats", NULL, NULL, 200, NULL);
    assert (api_test_num (reply, "total_functions") == 1 && api_test_num (reply, "total_invocations") == 50);
    assert (api_test_num (reply, "success_rate") == 0 && api_test_num (reply, "cold_start_rate") == 0);
    assert (api_test_double (reply, "p50_duration_ms") == 5000 && api_test_double (reply, "p95_duration_ms") == 5000);
    last = cJSON_GetArrayItem (cJSON_GetObjectItem (reply, "invocations_per_day"), 13);
    assert (api_test_num (last, "count") == 50 && api_test_num (last, "errors") == 50);
    assert (api_test_num (cJSON_GetArrayItem (cJSON_GetObjectItem (reply, "invocations_per_day"), 0), "count") == 0);
    cJSON_Delete (reply);

    //  Someone with nothing: zeros and 14 zero days
    reply = api_test_request (api, "carol", "GET", "/api/stats", NULL, NULL, 200, NULL);
    assert (api_test_num (reply, "total_invocations") == 0 && api_test_double (reply, "p95_duration_ms") == 0);
    assert (cJSON_GetArraySize (cJSON_GetObjectItem (reply, "invocations_per_day")) == 14);
    assert (cJSON_GetArraySize (cJSON_GetObjectItem (reply, "functions")) == 0);
    cJSON_Delete (reply);

    //  Retention pruning rows does not change anything
    assert (store_exec (store, "DELETE FROM invocations WHERE function_id = ?", "s", a_id) == 100);
    reply = api_test_request (api, "alice", "GET", "/api/stats", NULL, NULL, 200, NULL);
    assert (api_test_num (reply, "total_invocations") == 120 && api_test_num (reply, "cold_start_rate") == 4);
    assert (api_test_double (reply, "p95_duration_ms") == 250);
    cJSON_Delete (reply);

    //  A deleted function drops out of everything
    char path [64];
    snprintf (path, sizeof path, "/api/functions/%s", b_id);
    api_test_detail (api_test_request (api, "alice", "DELETE", path, NULL, NULL, 200, NULL), "Function deleted");
    reply = api_test_request (api, "alice", "GET", "/api/stats", NULL, NULL, 200, NULL);
    assert (api_test_num (reply, "total_functions") == 2 && api_test_num (reply, "total_invocations") == 100);
    assert (api_test_num (reply, "success_rate") == 90 && api_test_num (reply, "cold_start_rate") == 5);
    double p95 = api_test_double (reply, "p95_duration_ms");      //  true value 95 ms
    assert (p95 >= 95 / 1.19 && p95 <= 95 * 1.19);
    days = cJSON_GetObjectItem (reply, "invocations_per_day");
    assert (api_test_num (cJSON_GetArrayItem (days, 0), "count") == 0);
    functions = cJSON_GetObjectItem (reply, "functions");
    assert (cJSON_GetArraySize (functions) == 2);
    assert (streq (api_test_str (cJSON_GetArrayItem (functions, 0), "function_id"), a_id));
    assert (streq (api_test_str (cJSON_GetArrayItem (functions, 1), "function_id"), c_id));
    cJSON_Delete (reply);

    //  Lost calls (a platform failure, outcome unknown) are counted apart:
    //  c gets 4 successes and 2 lost; success_rate counts known outcomes
    count = 0;
    for (int i = 0; i < 6; i++)
        rows [count++] = (store_invocation_t) {
            .function_id = c_id, .status = i < 2? "lost": "success", .duration_us = 1000, .version = 1,
            .created_at = stamp_today };
    assert (store_invocations_insert (store, rows, count) == (int) count);
    reply = api_test_request (api, "alice", "GET", "/api/stats", NULL, NULL, 200, NULL);
    assert (api_test_num (reply, "total_invocations") == 106);
    assert (api_test_num (reply, "lost") == 2 && api_test_num (reply, "platform_errors") == 2);
    assert (api_test_num (reply, "success_rate") == 90);           //  94 / 104 known
    fc = cJSON_GetArrayItem (cJSON_GetObjectItem (reply, "functions"), 1);
    assert (streq (api_test_str (fc, "function_id"), c_id));
    assert (api_test_num (fc, "count") == 6 && api_test_num (fc, "errors") == 0 && api_test_num (fc, "lost") == 2);
    last = cJSON_GetArrayItem (cJSON_GetObjectItem (reply, "invocations_per_day"), 13);
    assert (api_test_num (last, "count") == 106 && api_test_num (last, "errors") == 10);
    cJSON_Delete (reply);

    api_destroy (&api);
    store_destroy (&store);
    printf ("OK\n");
}
