/*  =========================================================================
    asyncq - the durable queue of async invocations, in SQLite

    The writers of the queue (the REST handler of `?async=1`, a Lambda Event
    invoke, the schedules fired by actors/events.c) all come through here,
    so that every event is checked the same way and counted against the
    same caps. The body is checked as the gateway checks a direct invoke's
    (blank is {}, JSON an object, nothing cJSON would change on the way) so
    that a call that would be refused at once is refused here, not later on
    each attempt; it is then stored as it came and forwarded as it is.

    The insert and the caps' counts run in one IMMEDIATE transaction, so
    two writers cannot both take the last place.
    ========================================================================= */

#include <czmq.h>
#include "core/asyncq.h"
#include "core/jsonfit.h"

//  Process-wide, set once by main before any thread starts
static long s_max_per_function = 1000;
static long s_max_total = 10000;
static long s_clock_scale = 1;

void
asyncq_set_limits (long max_per_function, long max_total, long clock_scale)
{
    s_max_per_function = max_per_function > 0 ? max_per_function : 1;
    s_max_total = max_total > 0 ? max_total : 1;
    s_clock_scale = clock_scale > 1 ? clock_scale : 1;
}

long
asyncq_clock_scale (void)
{
    return s_clock_scale;
}

int64_t
asyncq_now_ms (void)
{
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    return (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

void
asyncq_iso (int64_t ms, char out [UTIL_TIME_SIZE])
{
    time_t seconds = (time_t) (ms / 1000);
    struct tm tm;
    gmtime_r (&seconds, &tm);
    size_t len = strftime (out, UTIL_TIME_SIZE, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf (out + len, UTIL_TIME_SIZE - len, ".%06ldZ", (long) (ms % 1000) * 1000);
}

int
asyncq_room (store_t *store, const char *function_id, char *detail, size_t detail_size)
{
    cJSON *row = store_query_row (store,
        "SELECT (SELECT count (*) FROM async_events WHERE function_id = ?1 AND status IN ('queued', 'running'))"
        "       AS mine,"
        "       (SELECT count (*) FROM async_events WHERE status = 'queued')"
        "     + (SELECT count (*) FROM async_events WHERE status = 'running') AS total", "s", function_id);
    if (!row) {
        snprintf (detail, detail_size, "Internal server error");
        return 500;
    }
    double mine = cJSON_GetNumberValue (cJSON_GetObjectItem (row, "mine"));
    double total = cJSON_GetNumberValue (cJSON_GetObjectItem (row, "total"));
    cJSON_Delete (row);
    if (mine >= s_max_per_function) {
        snprintf (detail, detail_size, "This function has %ld async events waiting, its limit; retry later",
                  s_max_per_function);
        return 429;
    }
    if (total >= s_max_total) {
        snprintf (detail, detail_size, "The async queue is full (%ld events waiting); retry later", s_max_total);
        return 503;
    }
    return 0;
}

int
asyncq_insert (store_t *store, const char *function_id, const char *body, const char *source,
               const char *schedule_id, int64_t run_at_ms, char invocation_id [UTIL_ID_SIZE],
               char event_id [UTIL_ID_SIZE], char *detail, size_t detail_size)
{
    int status = asyncq_room (store, function_id, detail, detail_size);
    if (status)
        return status;
    char id [UTIL_ID_SIZE], now [UTIL_TIME_SIZE];
    util_new_id (id);
    util_new_id (invocation_id);
    util_now_iso (now);
    int rc = store_exec (store,
        "INSERT INTO async_events (id, function_id, body, source, schedule_id, status, attempts,"
        " first_invocation_id, next_run_ms, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, 'queued', 0, ?, ?, ?, ?)", "ssssssIss",
        id, function_id, body, source ? source : "async", schedule_id, invocation_id, run_at_ms, now, now);
    if (rc == STORE_FOREIGN) {
        snprintf (detail, detail_size, "Function not found");
        return 404;
    }
    if (rc != 1) {
        snprintf (detail, detail_size, "Internal server error");
        return 500;
    }
    if (event_id)
        memcpy (event_id, id, UTIL_ID_SIZE);
    return 202;
}

//  The body as a direct invoke takes it; 0 or the status of the refusal
static int
s_check_body (const char *body, size_t size, char *detail, size_t detail_size)
{
    bool blank = true;
    for (size_t i = 0; i < size && blank; i++)
        blank = isspace ((unsigned char) body [i]);
    if (blank)
        return 0;
    jsonfit_scan_t scan;
    jsonfit_scan (body, size, &scan);
    if (jsonfit_refusal (&scan, "Request body", detail, detail_size))
        return 400;
    if (scan.nul_escape) {
        snprintf (detail, detail_size, "Strings must not contain the NUL character (\\u0000)");
        return 422;
    }
    cJSON *parsed = util_json_parse (body, size);
    if (!parsed) {
        snprintf (detail, detail_size, "Request body is not valid JSON");
        return 400;
    }
    bool object = cJSON_IsObject (parsed);
    cJSON_Delete (parsed);
    if (!object) {
        snprintf (detail, detail_size, "Input should be an object like {\"input\": ...}");
        return 422;
    }
    return 0;
}

int
asyncq_enqueue (store_t *store, const char *function_id, const char *body, size_t size,
                const char *source, const char *schedule_id, char invocation_id [UTIL_ID_SIZE],
                char *detail, size_t detail_size)
{
    //  Function first: a call of a function that does not exist is a 404
    //  whatever its body (as a direct invoke answers)
    cJSON *function = util_is_id (function_id)
                    ? store_query_row (store, "SELECT status FROM functions WHERE id = ?", "s", function_id) : NULL;
    if (!function) {
        snprintf (detail, detail_size, "Function not found");
        return 404;
    }
    bool active = streq (cJSON_GetStringValue (cJSON_GetObjectItem (function, "status")) ?: "", "active");
    cJSON_Delete (function);
    if (!active) {
        snprintf (detail, detail_size, "Function is disabled");
        return 503;
    }
    int status = s_check_body (body ? body : "", body ? size : 0, detail, detail_size);
    if (status)
        return status;
    //  Stored as text: a body is JSON (checked above), never NUL inside
    char *text = body && size ? strndup (body, size) : strdup ("{}");
    if (store_begin (store)) {
        free (text);
        snprintf (detail, detail_size, "Internal server error");
        return 500;
    }
    status = asyncq_insert (store, function_id, text, source, schedule_id, asyncq_now_ms (),
                            invocation_id, NULL, detail, detail_size);
    free (text);
    if (status != 202) {
        store_rollback (store);
        return status;
    }
    if (store_commit (store)) {
        snprintf (detail, detail_size, "Internal server error");
        return 500;
    }
    return 202;
}

void
asyncq_test (bool verbose)
{
    printf ("asyncq: ");
    store_t *store = store_new (":memory:");
    assert (store);
    assert (store_exec (store, "INSERT INTO functions (id, user_id, name, created_at, updated_at)"
                        " VALUES ('aaaaaaaaaaaa', 'u', 'f', 'now', 'now')", "") == 1);
    assert (store_exec (store, "INSERT INTO functions (id, user_id, name, status, created_at, updated_at)"
                        " VALUES ('bbbbbbbbbbbb', 'u', 'g', 'disabled', 'now', 'now')", "") == 1);
    asyncq_set_limits (3, 4, 1);
    char id [UTIL_ID_SIZE], detail [256];
    const char *body = "{\"input\": {\"n\": 1}}";
    assert (asyncq_enqueue (store, "aaaaaaaaaaaa", body, strlen (body), "async", NULL, id, detail, sizeof detail) == 202);
    assert (util_is_id (id));
    cJSON *row = store_query_row (store, "SELECT * FROM async_events WHERE first_invocation_id = ?", "s", id);
    assert (row && streq (cJSON_GetStringValue (cJSON_GetObjectItem (row, "body")), body));
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (row, "status")), "queued"));
    cJSON_Delete (row);
    //  Blank is {}; refusals as a direct invoke's
    assert (asyncq_enqueue (store, "aaaaaaaaaaaa", "  ", 2, "async", NULL, id, detail, sizeof detail) == 202);
    assert (asyncq_enqueue (store, "cccccccccccc", body, strlen (body), "async", NULL, id, detail, sizeof detail) == 404);
    assert (streq (detail, "Function not found"));
    assert (asyncq_enqueue (store, "../x", body, strlen (body), "async", NULL, id, detail, sizeof detail) == 404);
    assert (asyncq_enqueue (store, "bbbbbbbbbbbb", body, strlen (body), "async", NULL, id, detail, sizeof detail) == 503);
    assert (asyncq_enqueue (store, "aaaaaaaaaaaa", "{", 1, "async", NULL, id, detail, sizeof detail) == 400);
    assert (asyncq_enqueue (store, "aaaaaaaaaaaa", "[1]", 3, "async", NULL, id, detail, sizeof detail) == 422);
    //  Caps: 3 per function (429), then 4 in all (503)
    assert (asyncq_enqueue (store, "aaaaaaaaaaaa", "{}", 2, "async", NULL, id, detail, sizeof detail) == 202);
    assert (asyncq_enqueue (store, "aaaaaaaaaaaa", "{}", 2, "async", NULL, id, detail, sizeof detail) == 429);
    assert (store_exec (store, "UPDATE async_events SET function_id = 'bbbbbbbbbbbb'", "") == 3);
    assert (store_exec (store, "UPDATE functions SET status = 'active'", "") == 2);
    assert (asyncq_enqueue (store, "aaaaaaaaaaaa", "{}", 2, "async", NULL, id, detail, sizeof detail) == 202);
    assert (asyncq_enqueue (store, "aaaaaaaaaaaa", "{}", 2, "async", NULL, id, detail, sizeof detail) == 503);
    //  Failed events do not count
    assert (store_exec (store, "UPDATE async_events SET status = 'failed'", "") == 4);
    assert (asyncq_enqueue (store, "aaaaaaaaaaaa", "{}", 2, "async", NULL, id, detail, sizeof detail) == 202);
    char when [UTIL_TIME_SIZE];
    asyncq_iso (1796056200123LL, when);
    assert (streq (when, "2026-11-30T16:30:00.123000Z"));
    asyncq_set_limits (1000, 10000, 1);
    store_destroy (&store);
    printf ("OK\n");
}
