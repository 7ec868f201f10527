/*  =========================================================================
    api_events - async invocations, the dead-letter list and schedules

    The control-plane half of async work; actors/events.c runs what these
    handlers write (see its design comment for retries and crash safety).

    - POST /api/invoke/:id?async=1 (public, as a direct invoke is): checks
      and queues the call (core/asyncq.c) and answers 202 {invocation_id,
      status: "queued", event_id, function_id} once the event is committed.
      A function that does not exist is a 404 at once. Bodies of async
      calls are capped at 256 KiB (Lambda's limit for Event payloads), so
      that the queue's caps bound its size on disk.
    - GET /api/functions/:id/failed-events: events whose last attempt
      failed, newest first, [{id, invocation_id (the first attempt's),
      last_invocation_id, input, error, attempts, source, created_at,
      failed_at}]; ?limit= 1..500 (100). The answer is bounded whatever
      the bodies (up to 256 KiB each): an input or error longer than
      FAILED_EVENTS_LIST_BYTES / limit / 4 characters is cut in SQL (so
      the whole is never copied out) and named in list_truncated; a cut
      input is then the start of its JSON text, as a string.
      GET .../failed-events/:event_id: one, whole (input as JSON).
      A function keeps its newest --async-max-failed (actors/events.c).
    - GET /api/functions/:id/invocations/:iid of an attempt not ended yet
      (no record) answers from its event, status "queued" or "running"
      (api_functions.c); the list shows records only.
    - POST .../failed-events/:event_id/redrive: the event goes back to the
      queue as a new chain of attempts (attempt 1 again, a new first
      invocation id): 202 {invocation_id, status: "queued", event_id}.
      It counts against the queue's caps as a new call does (429/503
      with a detail past them, core/asyncq.c), checked in the same
      transaction, or redrives could fill the queue past them.
    - DELETE .../failed-events/:event_id: 204.
    - POST /api/functions/:id/schedules {expression}: 201 {id, function_id,
      expression, next_run_at, last_run_at, created_at, enabled}; an
      expression core/schedule.c refuses is a 422 at ["body",
      "expression"]; at most 20 schedules a function (409 past it).
      GET lists them (oldest first); DELETE .../schedules/:sid: 204.
    All but the invoke are scoped by user like every function resource.
    ========================================================================= */

#include <czmq.h>
#include "core/api_call.h"
#include "core/asyncq.h"
#include "core/schedule.h"

#define ASYNC_BODY_MAX          (256 * 1024)
#define FAILED_EVENTS_DEFAULT   100
#define FAILED_EVENTS_MAX       500
#define FAILED_EVENTS_LIST_BYTES (4 * 1024 * 1024)
#define FAILED_EVENTS_FIELD_MIN 256
#define SCHEDULES_MAX           20

static int
s_reply_empty (api_call_t *call, int status)
{
    free (call->resp->body);
    call->resp->status = status;
    call->resp->body = strdup ("");
    return 0;
}

//  --------------------------------------------------------------------------
//  Async invoke

int
api_invoke_async (api_call_t *call)
{
    const char *function_id = call->param [0];
    const api_request_t *req = call->req;
    if (req->body_size > ASYNC_BODY_MAX) {
        //  Unless the function does not exist: that is the answer first
        cJSON *row = util_is_id (function_id)
                   ? store_query_row (call->store, "SELECT id FROM functions WHERE id = ?", "s", function_id) : NULL;
        cJSON_Delete (row);
        if (!row)
            return api_reply_detail (call, 404, "Function not found");
        return api_reply_detail (call, 413, "Request body is larger than the limit of %d bytes for async calls",
                                 ASYNC_BODY_MAX);
    }
    char invocation_id [UTIL_ID_SIZE], detail [256];
    int status = asyncq_enqueue (call->store, function_id, req->body, req->body_size, "async", NULL,
                                 invocation_id, detail, sizeof detail);
    if (status == 422) {
        api_invalid_at (call, "body", NULL, "model_type", "%s", detail);
        return api_reply_invalid (call);
    }
    if (status != 202)
        return api_reply_detail (call, status, "%s", detail);
    cJSON *reply = cJSON_CreateObject ();
    cJSON_AddStringToObject (reply, "invocation_id", invocation_id);
    cJSON_AddStringToObject (reply, "status", "queued");
    cJSON_AddStringToObject (reply, "function_id", function_id);
    return api_reply (call, 202, reply);
}

//  --------------------------------------------------------------------------
//  Failed events

//  The input of a stored body ({"input": ...}, {} when absent)
static cJSON *
s_input_of (const char *body)
{
    cJSON *parsed = body ? cJSON_Parse (body) : NULL;
    cJSON *input = parsed ? cJSON_DetachItemFromObjectCaseSensitive (parsed, "input") : NULL;
    cJSON_Delete (parsed);
    return input ? input : cJSON_CreateObject ();
}

int
api_failed_events_list (api_call_t *call)
{
    const char *function_id = call->param [0];
    long limit = FAILED_EVENTS_DEFAULT;
    char *text = api_query_param (call->req->query, "limit");
    if (text) {
        if (!api_parse_int (text, 1, FAILED_EVENTS_MAX, &limit))
            api_invalid_at (call, "query", "limit", "int_parsing",
                            "Input should be a whole number from 1 to %d", FAILED_EVENTS_MAX);
        zstr_free (&text);
        if (api_has_errors (call))
            return api_reply_invalid (call);
    }
    if (!api_function_owned (call, function_id))
        return api_reply_detail (call, 404, "Function not found");
    long field = FAILED_EVENTS_LIST_BYTES / limit / 4;
    if (field < FAILED_EVENTS_FIELD_MIN)
        field = FAILED_EVENTS_FIELD_MIN;
    //  A short body comes whole; a long one only as the start of its
    //  input's JSON text (json_quote keeps an object's text as it is)
    cJSON *rows = store_query (call->store,
        "SELECT id, first_invocation_id AS invocation_id, current_invocation_id AS last_invocation_id,"
        "       CASE WHEN length (body) > ?1 THEN NULL ELSE body END AS body,"
        "       CASE WHEN length (body) > ?1"
        "            THEN substr (json_quote (json_extract (body, '$.input')), 1, ?1) END AS input_head,"
        "       substr (error, 1, ?1) AS error, length (error) > ?1 AS error_cut,"
        "       attempts, source, created_at, failed_at"
        "  FROM async_events WHERE function_id = ?2 AND status = 'failed'"
        " ORDER BY failed_at DESC, rowid DESC LIMIT ?3", "isi", (int) field, function_id, (int) limit);
    if (!rows)
        return api_reply_store_error (call);
    cJSON *row;
    cJSON_ArrayForEach (row, rows) {
        cJSON *truncated = cJSON_CreateArray ();
        const char *head = cJSON_GetStringValue (cJSON_GetObjectItem (row, "input_head"));
        cJSON *input;
        if (head) {
            input = cJSON_CreateString (head);
            cJSON_AddItemToArray (truncated, cJSON_CreateString ("input"));
        }
        else
            input = s_input_of (cJSON_GetStringValue (cJSON_GetObjectItem (row, "body")));
        cJSON *cut = cJSON_GetObjectItem (row, "error_cut");
        if (cJSON_IsNumber (cut) && cut->valueint)
            cJSON_AddItemToArray (truncated, cJSON_CreateString ("error"));
        cJSON_DeleteItemFromObject (row, "body");
        cJSON_DeleteItemFromObject (row, "input_head");
        cJSON_DeleteItemFromObject (row, "error_cut");
        cJSON_AddItemToObject (row, "input", input);
        if (cJSON_GetArraySize (truncated))
            cJSON_AddItemToObject (row, "list_truncated", truncated);
        else
            cJSON_Delete (truncated);
    }
    return api_reply (call, 200, rows);
}

int
api_failed_event_get (api_call_t *call)
{
    const char *function_id = call->param [0];
    const char *event_id = call->param [1];
    if (!api_function_owned (call, function_id))
        return api_reply_detail (call, 404, "Function not found");
    cJSON *row = store_query_row (call->store,
        "SELECT id, first_invocation_id AS invocation_id, current_invocation_id AS last_invocation_id,"
        "       body, error, attempts, source, created_at, failed_at"
        "  FROM async_events WHERE id = ? AND function_id = ? AND status = 'failed'", "ss", event_id, function_id);
    if (!row)
        return api_reply_detail (call, 404, "Failed event not found");
    cJSON *input = s_input_of (cJSON_GetStringValue (cJSON_GetObjectItem (row, "body")));
    cJSON_DeleteItemFromObject (row, "body");
    cJSON_AddItemToObject (row, "input", input);
    return api_reply (call, 200, row);
}

int
api_failed_event_redrive (api_call_t *call)
{
    const char *function_id = call->param [0];
    const char *event_id = call->param [1];
    if (!api_function_owned (call, function_id))
        return api_reply_detail (call, 404, "Function not found");
    char invocation_id [UTIL_ID_SIZE], now [UTIL_TIME_SIZE], detail [256];
    util_new_id (invocation_id);
    util_now_iso (now);
    //  The caps' count and the move back to the queue in one transaction
    if (store_begin (call->store))
        return api_reply_store_error (call);
    cJSON *event = store_query_row (call->store,
        "SELECT id FROM async_events WHERE id = ? AND function_id = ? AND status = 'failed'",
        "ss", event_id, function_id);
    cJSON_Delete (event);
    if (!event) {
        store_rollback (call->store);
        return api_reply_detail (call, 404, "Failed event not found");
    }
    int status = asyncq_room (call->store, function_id, detail, sizeof detail);
    if (status) {
        store_rollback (call->store);
        return api_reply_detail (call, status, "%s", detail);
    }
    int rc = store_exec (call->store,
        "UPDATE async_events SET status = 'queued', attempts = 0, first_invocation_id = ?,"
        " current_invocation_id = NULL, next_run_ms = ?, error = NULL, failed_at = NULL, updated_at = ?"
        " WHERE id = ? AND function_id = ? AND status = 'failed'",
        "sIsss", invocation_id, asyncq_now_ms (), now, event_id, function_id);
    if (rc != 1 || store_commit (call->store)) {
        store_rollback (call->store);
        return api_reply_store_error (call);
    }
    cJSON *reply = cJSON_CreateObject ();
    cJSON_AddStringToObject (reply, "invocation_id", invocation_id);
    cJSON_AddStringToObject (reply, "status", "queued");
    cJSON_AddStringToObject (reply, "event_id", event_id);
    return api_reply (call, 202, reply);
}

int
api_failed_event_delete (api_call_t *call)
{
    const char *function_id = call->param [0];
    const char *event_id = call->param [1];
    if (!api_function_owned (call, function_id))
        return api_reply_detail (call, 404, "Function not found");
    int rc = store_exec (call->store,
        "DELETE FROM async_events WHERE id = ? AND function_id = ? AND status = 'failed'",
        "ss", event_id, function_id);
    if (rc < 0)
        return api_reply_store_error (call);
    if (rc == 0)
        return api_reply_detail (call, 404, "Failed event not found");
    return s_reply_empty (call, 204);
}

//  --------------------------------------------------------------------------
//  Schedules

//  A schedule row as the API shows it: next_run_ms becomes next_run_at
static void
s_schedule_shape (cJSON *row)
{
    double next = cJSON_GetNumberValue (cJSON_GetObjectItem (row, "next_run_ms"));
    char when [UTIL_TIME_SIZE];
    asyncq_iso (isnan (next) ? 0 : (int64_t) next, when);
    cJSON_DeleteItemFromObject (row, "next_run_ms");
    cJSON_AddStringToObject (row, "next_run_at", when);
}

#define SCHEDULE_COLUMNS "id, function_id, expression, next_run_ms, last_run_at, created_at, enabled"

int
api_schedules_list (api_call_t *call)
{
    const char *function_id = call->param [0];
    if (!api_function_owned (call, function_id))
        return api_reply_detail (call, 404, "Function not found");
    cJSON *rows = store_query (call->store, "SELECT " SCHEDULE_COLUMNS " FROM schedules WHERE function_id = ?"
                               " ORDER BY created_at, rowid", "s", function_id);
    cJSON *row;
    cJSON_ArrayForEach (row, rows)
        s_schedule_shape (row);
    return api_reply (call, 200, rows);
}

int
api_schedule_create (api_call_t *call)
{
    const char *function_id = call->param [0];
    if (api_body_parse (call))
        return 0;
    const char *expression = api_string (call, "expression", true, SCHEDULE_EXPRESSION_MAX, false);
    char error [256] = "";
    schedule_t *schedule = NULL;
    if (expression) {
        //  Spaces around it are not part of it
        char *trimmed = util_trim (expression);
        schedule = schedule_parse (trimmed, error, sizeof error);
        if (!schedule)
            api_invalid (call, "expression", "value_error", "%s", error);
        free (trimmed);
    }
    if (api_has_errors (call)) {
        schedule_destroy (&schedule);
        return api_reply_invalid (call);
    }
    char *trimmed = util_trim (expression);
    if (store_begin (call->store)) {
        schedule_destroy (&schedule);
        free (trimmed);
        return api_reply_store_error (call);
    }
    if (!api_function_owned (call, function_id)) {
        schedule_destroy (&schedule);
        free (trimmed);
        return api_reply_detail (call, 404, "Function not found");
    }
    cJSON *count = store_query_row (call->store, "SELECT count (*) AS n FROM schedules WHERE function_id = ?",
                                    "s", function_id);
    double schedules = count ? cJSON_GetNumberValue (cJSON_GetObjectItem (count, "n")) : 0;
    cJSON_Delete (count);
    if (schedules >= SCHEDULES_MAX) {
        schedule_destroy (&schedule);
        free (trimmed);
        return api_reply_detail (call, 409, "A function has at most %d schedules; delete one first", SCHEDULES_MAX);
    }
    char id [UTIL_ID_SIZE], now [UTIL_TIME_SIZE];
    util_new_id (id);
    util_now_iso (now);
    int64_t next = schedule_next (schedule, asyncq_now_ms (), asyncq_clock_scale ());
    schedule_destroy (&schedule);
    int rc = store_exec (call->store,
        "INSERT INTO schedules (id, function_id, expression, enabled, next_run_ms, created_at)"
        " VALUES (?, ?, ?, 1, ?, ?)", "sssIs", id, function_id, trimmed, next, now);
    free (trimmed);
    if (rc != 1 || store_commit (call->store))
        return api_reply_store_error (call);
    cJSON *row = store_query_row (call->store, "SELECT " SCHEDULE_COLUMNS " FROM schedules WHERE id = ?", "s", id);
    if (row)
        s_schedule_shape (row);
    return api_reply (call, 201, row);
}

int
api_schedule_delete (api_call_t *call)
{
    const char *function_id = call->param [0];
    const char *schedule_id = call->param [1];
    if (!api_function_owned (call, function_id))
        return api_reply_detail (call, 404, "Function not found");
    int rc = store_exec (call->store, "DELETE FROM schedules WHERE id = ? AND function_id = ?",
                         "ss", schedule_id, function_id);
    if (rc < 0)
        return api_reply_store_error (call);
    if (rc == 0)
        return api_reply_detail (call, 404, "Schedule not found");
    return s_reply_empty (call, 204);
}

//  --------------------------------------------------------------------------
//  Selftest

void
api_events_test (bool verbose)
{
    printf ("api_events: ");
    store_t *store = store_new (":memory:");
    assert (store);
    api_t *api = api_new (store);
    char *function_id = api_test_create (api, "alice", "/api/functions", "{\"name\":\"f\",\"code\":\"x\"}");
    char path [256];

    //  Async invoke: 202 and a queued event; 404 for a missing function
    snprintf (path, sizeof path, "/api/invoke/%s", function_id);
    cJSON *reply = api_test_request (api, "local", "POST", path, "async=1", "{\"input\":{\"a\":1}}", 202, NULL);
    assert (util_is_id (api_test_str (reply, "invocation_id")));
    assert (streq (api_test_str (reply, "status"), "queued"));
    //  Its record does not exist yet: GET of its id shows the event
    char record_path [256];
    snprintf (record_path, sizeof record_path, "/api/functions/%s/invocations/%s", function_id,
              api_test_str (reply, "invocation_id"));
    cJSON_Delete (reply);
    reply = api_test_request (api, "alice", "GET", record_path, NULL, NULL, 200, NULL);
    assert (streq (api_test_str (reply, "status"), "queued") && streq (api_test_str (reply, "source"), "async"));
    assert (api_test_num (reply, "attempt") == 1 && cJSON_IsNull (cJSON_GetObjectItem (reply, "parent_invocation_id")));
    assert (streq (api_test_str (reply, "input"), "{\"a\":1}"));
    cJSON_Delete (reply);
    api_test_detail (api_test_request (api, "local", "POST", "/api/invoke/000000000000", "async=1", "{}", 404, NULL),
                     "Function not found");
    api_test_invalid (api_test_request (api, "local", "POST", path, "async=1", "[1]", 422, NULL), "body", NULL);
    cJSON_Delete (api_test_request (api, "local", "POST", path, "async=1", "{", 400, NULL));

    //  Failed events: list, redrive, delete
    assert (store_exec (store, "UPDATE async_events SET status = 'failed', attempts = 3, error = 'boom',"
                        " failed_at = 'now'", "") == 1);
    snprintf (path, sizeof path, "/api/functions/%s/failed-events", function_id);
    reply = api_test_request (api, "alice", "GET", path, NULL, NULL, 200, NULL);
    assert (cJSON_GetArraySize (reply) == 1);
    cJSON *event = cJSON_GetArrayItem (reply, 0);
    assert (api_test_num (event, "attempts") == 3 && streq (api_test_str (event, "error"), "boom"));
    assert (api_test_num (cJSON_GetObjectItem (event, "input"), "a") == 1);
    char event_id [UTIL_ID_SIZE];
    snprintf (event_id, sizeof event_id, "%s", api_test_str (event, "id"));
    cJSON_Delete (reply);
    cJSON_Delete (api_test_request (api, "bob", "GET", path, NULL, NULL, 404, NULL));
    //  One, whole
    snprintf (path, sizeof path, "/api/functions/%s/failed-events/%s", function_id, event_id);
    reply = api_test_request (api, "alice", "GET", path, NULL, NULL, 200, NULL);
    assert (streq (api_test_str (reply, "id"), event_id) && api_test_num (cJSON_GetObjectItem (reply, "input"), "a") == 1);
    cJSON_Delete (reply);
    cJSON_Delete (api_test_request (api, "bob", "GET", path, NULL, NULL, 404, NULL));
    snprintf (path, sizeof path, "/api/functions/%s/failed-events/000000000000", function_id);
    api_test_detail (api_test_request (api, "alice", "GET", path, NULL, NULL, 404, NULL), "Failed event not found");
    //  Redrive is a new call to the caps: past the function's, 429 and the event stays failed
    asyncq_set_limits (1, 10, 1);
    snprintf (path, sizeof path, "/api/invoke/%s", function_id);
    cJSON_Delete (api_test_request (api, "local", "POST", path, "async=1", "{}", 202, NULL));
    snprintf (path, sizeof path, "/api/functions/%s/failed-events/%s/redrive", function_id, event_id);
    reply = api_test_request (api, "alice", "POST", path, NULL, NULL, 429, NULL);
    assert (strstr (api_test_str (reply, "detail"), "limit"));
    cJSON_Delete (reply);
    assert (store_exec (store, "DELETE FROM async_events WHERE status = 'queued'", "") == 1);
    asyncq_set_limits (1000, 10000, 1);
    reply = api_test_request (api, "alice", "POST", path, NULL, NULL, 202, NULL);
    assert (util_is_id (api_test_str (reply, "invocation_id")));
    cJSON_Delete (reply);
    cJSON_Delete (api_test_request (api, "alice", "POST", path, NULL, NULL, 404, NULL));   //  no longer failed
    assert (store_exec (store, "UPDATE async_events SET status = 'failed'", "") == 1);
    snprintf (path, sizeof path, "/api/functions/%s/failed-events/%s", function_id, event_id);
    cJSON_Delete (api_test_request (api, "bob", "DELETE", path, NULL, NULL, 404, NULL));
    cJSON_Delete (api_test_request (api, "alice", "DELETE", path, NULL, NULL, 204, NULL));
    cJSON_Delete (api_test_request (api, "alice", "DELETE", path, NULL, NULL, 404, NULL));

    //  The list is bounded whatever the bodies: a long input comes cut (the
    //  start of its JSON text) and named in list_truncated; GET one is whole
    size_t big_size = 200 * 1024;
    char *big = (char *) malloc (big_size + 64);
    int len = snprintf (big, big_size + 64, "{\"input\": {\"s\": \"");
    memset (big + len, 'x', big_size);
    strcpy (big + len + big_size, "\"}}");
    assert (store_exec (store, "INSERT INTO async_events (id, function_id, body, status, attempts,"
                        " first_invocation_id, next_run_ms, error, created_at, updated_at, failed_at)"
                        " VALUES ('dddddddddddd', ?, ?, 'failed', 1, 'eeeeeeeeeeee', 0, 'boom', 'now', 'now', 'now')",
                        "ss", function_id, big) == 1);
    free (big);
    snprintf (path, sizeof path, "/api/functions/%s/failed-events", function_id);
    reply = api_test_request (api, "alice", "GET", path, "limit=500", NULL, 200, NULL);
    event = cJSON_GetArrayItem (reply, 0);
    const char *head = api_test_str (event, "input");
    assert (head && strncmp (head, "{\"s\":\"xxx", 9) == 0 && strlen (head) == FAILED_EVENTS_LIST_BYTES / 500 / 4);
    cJSON *cut = cJSON_GetObjectItem (event, "list_truncated");
    assert (cJSON_GetArraySize (cut) == 1 && streq (cJSON_GetStringValue (cJSON_GetArrayItem (cut, 0)), "input"));
    cJSON_Delete (reply);
    snprintf (path, sizeof path, "/api/functions/%s/failed-events/dddddddddddd", function_id);
    reply = api_test_request (api, "alice", "GET", path, NULL, NULL, 200, NULL);
    assert (strlen (api_test_str (cJSON_GetObjectItem (reply, "input"), "s")) == big_size);
    assert (!cJSON_GetObjectItem (reply, "list_truncated"));
    cJSON_Delete (reply);
    cJSON_Delete (api_test_request (api, "alice", "DELETE", path, NULL, NULL, 204, NULL));

    //  Schedules
    snprintf (path, sizeof path, "/api/functions/%s/schedules", function_id);
    reply = api_test_request (api, "alice", "POST", path, NULL, "{\"expression\":\" rate(5 minutes) \"}", 201, NULL);
    assert (streq (api_test_str (reply, "expression"), "rate(5 minutes)"));
    assert (strlen (api_test_str (reply, "next_run_at")) == 27);
    assert (cJSON_IsNull (cJSON_GetObjectItem (reply, "last_run_at")));
    assert (cJSON_IsTrue (cJSON_GetObjectItem (reply, "enabled")));
    char schedule_id [UTIL_ID_SIZE];
    snprintf (schedule_id, sizeof schedule_id, "%s", api_test_str (reply, "id"));
    cJSON_Delete (reply);
    api_test_invalid (api_test_request (api, "alice", "POST", path, NULL, "{\"expression\":\"rate(5 weeks)\"}",
                                        422, NULL), "body", "expression");
    api_test_invalid (api_test_request (api, "alice", "POST", path, NULL, "{\"expression\":\"* * *\"}",
                                        422, NULL), "body", "expression");
    api_test_invalid (api_test_request (api, "alice", "POST", path, NULL, "{}", 422, NULL), "body", "expression");
    cJSON_Delete (api_test_request (api, "bob", "POST", path, NULL, "{\"expression\":\"* * * * *\"}", 404, NULL));
    reply = api_test_request (api, "alice", "GET", path, NULL, NULL, 200, NULL);
    assert (cJSON_GetArraySize (reply) == 1);
    cJSON_Delete (reply);
    snprintf (path, sizeof path, "/api/functions/%s/schedules/%s", function_id, schedule_id);
    cJSON_Delete (api_test_request (api, "alice", "DELETE", path, NULL, NULL, 204, NULL));
    cJSON_Delete (api_test_request (api, "alice", "DELETE", path, NULL, NULL, 404, NULL));

    free (function_id);
    api_destroy (&api);
    store_destroy (&store);
    printf ("OK\n");
}
