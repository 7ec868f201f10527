/*  =========================================================================
    events - runs async invocations: the durable queue, retries, the
    dead-letter list and schedules

    Why an actor of its own: an async call must outlive the request that
    made it (and the process), so it lives in SQLite (async_events, written
    and committed before the caller hears 202, core/asyncq.c), and
    something must take it from there, retry it, and give up on it. This
    actor is that something. It is a client of the gateway exactly as http
    is (a DEALER sending INVOKE, receiving REPLY), with kind `async`, so an
    attempt takes the same path as a direct call: the gateway's caches,
    assignment's warm pool and caps, the recorder.

    An event's life (async_events.status):
        queued --claim--> running --success REPLY--> done --record written / swept--> (deleted)
                             |--success recorded first-------------------------------> (deleted)
                             |--error/timeout/lost, attempts left--> queued (next_run_ms = backoff)
                             |--error/timeout/lost, none left-----> failed (the dead-letter list)
                             '--429/503 (never ran)---------------> queued (the attempt is not counted)
    failed --redrive (REST, within the queue's caps)--> queued, a new chain from attempt 1.
    A success has two writers, either of which ends the event: this actor,
    which marks it `done` in its own commit when the REPLY comes, and the
    recorder, whose transaction that writes the success's record deletes
    the event (core/store.c). Neither alone is enough: the record can be
    dropped (the gateway hands it over without blocking and drops it when
    the recorder's queue is full; the recorder drops a batch it cannot
    write), and a kill -9 can come between the record's commit and ours.
    A `done` event is kept (out of the caps, not run again) only so that
    GET of its attempt still answers until the record lands; the sweep
    deletes it DONE_KEEP_MS later, and start-up deletes every one.
    A claim bumps `attempts`, names the attempt's invocation id (the
    first attempt's is the id the 202 gave; later ones are new, linked to
    it as parent_invocation_id) and sets next_run_ms to the claim's time
    (while running, that is what it holds) in one committed write before
    the INVOKE leaves.

    The dead-letter list is bounded: a function keeps its newest
    --async-max-failed failed events; the transaction that fails one drops
    the oldest past that (logged). The 202 is public, so without this
    anyone could fill the disk with failing calls of 256 KiB. Backoff before retry n (n from 1): --async-backoff-ms * 2^(n-1),
    at most 15 minutes. Events of a disabled function stay queued until it
    is active again; deleting a function deletes its events and schedules.

    Concurrency: at most --async-concurrency attempts in flight, whatever
    the queue holds, so a flood of events takes that many environments and
    leaves the rest (and assignment's per-function caps) to direct calls.
    Due events are claimed oldest first, across functions.

    Crash safety (kill -9 at any point):
    - An event is on disk before its 202; nothing is kept only in memory.
    - A successful attempt's record and the event's deletion are one
      transaction (the recorder's, core/store.c), and its REPLY marks the
      event `done` in ours: once either writer has the success, it never
      runs again.
    - At start-up every event still `running` was in flight when the
      server died. If its attempt's record is there, that outcome is taken
      as it stands (success: ended; error: retry or fail as usual). If
      not, neither writer heard how it ended: it is recorded as an error
      ("the server stopped before it ended; it may not have run": a kill
      -9 between our claim's commit and the INVOKE's send leaves the same
      trace as one mid-run, and nothing durable tells them apart) and the
      event is retried as a new attempt, or fails if that was its last.
      Such an attempt is counted against max_retries even though it may
      not have run: otherwise a function that takes the server down with
      it would be retried for ever.
      So delivery is at-least-once only for an attempt whose outcome
      reached neither writer (its function may have run, its result not
      reached the disk); nothing runs again after a success either heard.
    - The same holds for an attempt whose REPLY does not come by its
      deadline (the gateway answers first; this is for a lost gateway),
      and, at run time, for an event still `running` with no attempt in
      flight in this process past its function's deadline plus
      SWEEP_MARGIN_MS (a write of ours that failed): every SWEEP_MS the
      sweep treats it as start-up recovery does.

    Schedules: every tick (100 ms) the due ones (next_run_ms <= now) each
    queue one event with source `schedule` and get their next firing after
    now, in one transaction. So firings missed while the server was down
    run once at start-up, not once per missed firing. The event's input is
    {"source": "clowdy.schedule", "schedule_id", "expression", "time"}.
    --test-clock-scale (tests only) divides rate intervals.

    A queued or running attempt has no invocation record yet: its record
    is written when it ends; until then GET /api/functions/:id/invocations/
    :iid answers from the event, with status "queued" or "running" (also
    while `done` waits for its record; core/api_functions.c), and the
    invocation list does not show it.
    ========================================================================= */

#include <cjson/cJSON.h>
#include "actors/events.h"
#include "broker/actor.h"
#include "broker/deadlines.h"
#include "broker/endpoints.h"
#include "broker/msg.h"
#include "core/asyncq.h"
#include "core/config.h"
#include "core/schedule.h"
#include "core/store.h"
#include "core/util.h"

#define TICK_MS             100             //  Look for due events and schedules this often
#define BUSY_RETRY_MS       1000            //  An attempt refused for capacity (429/503) waits this long
#define BACKOFF_MAX_MS      (15 * 60 * 1000)
#define SCHEDULES_PER_TICK  100             //  Due schedules fired per tick at most
#define SWEEP_MS            5000            //  Look for stranded running events and old done ones this often
#define SWEEP_MARGIN_MS     10000           //  Past an attempt's deadline before the sweep takes it
#define DONE_KEEP_MS        60000           //  A done event waits this long for its record

//  An attempt in flight, keyed by its invocation id (also the INVOKE's request id)
typedef struct {
    char *event_id;                 //  Its event
    char *function_id;              //  The function run
    int attempt;                    //  From 1
    int max_retries;                //  The function's, when claimed
    int64_t deadline;               //  Monotonic ms by which the REPLY must come
} flight_t;

typedef struct {
    zsock_t *pipe;                  //  Actor command pipe
    zsock_t *gateway;               //  DEALER to the gateway, as http
    store_t *store;                 //  Our own store connection
    zhashx_t *flights;              //  invocation id -> flight_t
    long concurrency;               //  Attempts in flight at most
    long backoff_ms;                //  Delay before the first retry
    long clock_scale;               //  Tests only: rates run this much faster
    long max_failed;                //  Failed events kept per function
    int64_t next_sweep;             //  Monotonic ms of the next sweep
    bool terminated;                //  Did caller ask us to quit?
} self_t;

static void
s_flight_destroy (void **item)
{
    flight_t *flight = (flight_t *) *item;
    if (flight) {
        free (flight->event_id);
        free (flight->function_id);
        free (flight);
        *item = NULL;
    }
}

static int64_t
s_backoff_ms (self_t *self, int attempt)
{
    int64_t delay = self->backoff_ms;
    for (int n = 1; n < attempt && delay < BACKOFF_MAX_MS; n++)
        delay *= 2;
    return delay < BACKOFF_MAX_MS ? delay : BACKOFF_MAX_MS;
}

//  --------------------------------------------------------------------------
//  Outcomes (each one committed write)

//  The attempt failed (error, timeout, lost): retry, or the dead-letter list
//  A failed event joins its function's dead-letter list, which keeps the
//  newest max_failed: the oldest past that go in the same transaction
static int
s_event_fail (self_t *self, const char *function_id, const char *event_id, int attempt, const char *error)
{
    char now [UTIL_TIME_SIZE];
    util_now_iso (now);
    if (store_begin (self->store))
        return -1;
    int rc = store_exec (self->store,
        "UPDATE async_events SET status = 'failed', error = ?, failed_at = ?, updated_at = ?"
        " WHERE id = ? AND status = 'running'", "ssss", error, now, now, event_id);
    int dropped = rc < 0 ? -1 : store_exec (self->store,
        "DELETE FROM async_events WHERE id IN (SELECT id FROM async_events"
        " WHERE function_id = ? AND status = 'failed' ORDER BY failed_at DESC, rowid DESC LIMIT -1 OFFSET ?)",
        "sI", function_id, (int64_t) self->max_failed);
    if (dropped < 0 || store_commit (self->store)) {
        store_rollback (self->store);
        return -1;
    }
    zsys_info ("events: event %s failed after %d attempts: %s", event_id, attempt, error);
    if (dropped > 0)
        zsys_warning ("events: function %s has more than %ld failed events; dropped the %d oldest",
                      function_id, self->max_failed, dropped);
    return 0;
}

static void
s_attempt_failed (self_t *self, const char *function_id, const char *event_id, int attempt, int max_retries,
                  const char *error)
{
    char now [UTIL_TIME_SIZE];
    util_now_iso (now);
    int rc;
    if (attempt < 1 + max_retries)
        rc = store_exec (self->store,
            "UPDATE async_events SET status = 'queued', next_run_ms = ?, error = ?, updated_at = ?"
            " WHERE id = ? AND status = 'running'",
            "Isss", asyncq_now_ms () + s_backoff_ms (self, attempt), error, now, event_id);
    else
        rc = s_event_fail (self, function_id, event_id, attempt, error);
    if (rc < 0)
        zsys_error ("events: could not record the failed attempt of event %s", event_id);
}

//  The attempt succeeded: over, whether or not the recorder's write of its
//  record (which deletes the event) comes. Only the attempt this REPLY is
//  for, and only while running: after the recorder's delete, nothing.
static void
s_attempt_succeeded (self_t *self, const char *event_id, const char *invocation_id)
{
    char now [UTIL_TIME_SIZE];
    util_now_iso (now);
    if (store_exec (self->store,
            "UPDATE async_events SET status = 'done', next_run_ms = ?, updated_at = ?"
            " WHERE id = ? AND status = 'running' AND current_invocation_id = ?",
            "Isss", asyncq_now_ms (), now, event_id, invocation_id) < 0)
        zsys_error ("events: could not end event %s (its success is recorded by the recorder, or swept)",
                    event_id);
}

//  The attempt never ran (capacity, disabled meanwhile): back to the queue, not counted
static void
s_attempt_refused (self_t *self, const char *event_id)
{
    if (store_exec (self->store,
            "UPDATE async_events SET status = 'queued', attempts = attempts - 1, next_run_ms = ?"
            " WHERE id = ? AND status = 'running'", "Is", asyncq_now_ms () + BUSY_RETRY_MS, event_id) < 0)
        zsys_error ("events: could not put event %s back in the queue", event_id);
}

//  The event is over without a success to record (its function is gone, or
//  its success was recorded before a crash)
static void
s_event_end (self_t *self, const char *event_id)
{
    if (store_exec (self->store, "DELETE FROM async_events WHERE id = ?", "s", event_id) < 0)
        zsys_error ("events: could not end event %s", event_id);
}

//  --------------------------------------------------------------------------
//  Recovery: events `running` with no attempt in flight here (at start-up,
//  all of them; at run time, the sweep's)

#define RECOVER_SELECT \
    "SELECT e.id, e.function_id, e.attempts, e.first_invocation_id, e.current_invocation_id, e.body," \
    "       e.source, e.next_run_ms AS claimed_ms, f.max_retries, f.active_version, f.timeout_seconds," \
    "       i.status AS outcome, i.error AS outcome_error" \
    "  FROM async_events e JOIN functions f ON f.id = e.function_id" \
    "  LEFT JOIN invocations i ON i.id = e.current_invocation_id" \
    " WHERE e.status = 'running'"

#define LOST_ERROR "The server stopped before this attempt ended, or lost track of it: it may not have run." \
                   " It is retried as a new attempt while retries are left"

static void
s_recover_row (self_t *self, cJSON *row)
{
    const char *event_id = cJSON_GetStringValue (cJSON_GetObjectItem (row, "id"));
    const char *function_id = cJSON_GetStringValue (cJSON_GetObjectItem (row, "function_id"));
    const char *outcome = cJSON_GetStringValue (cJSON_GetObjectItem (row, "outcome"));
    const char *current = cJSON_GetStringValue (cJSON_GetObjectItem (row, "current_invocation_id"));
    const char *first = cJSON_GetStringValue (cJSON_GetObjectItem (row, "first_invocation_id"));
    int attempt = (int) cJSON_GetNumberValue (cJSON_GetObjectItem (row, "attempts"));
    int max_retries = (int) cJSON_GetNumberValue (cJSON_GetObjectItem (row, "max_retries"));
    if (outcome && streq (outcome, "success")) {
        s_event_end (self, event_id);
        return;
    }
    const char *error = cJSON_GetStringValue (cJSON_GetObjectItem (row, "outcome_error"));
    if (!outcome) {
        //  Neither writer heard its end: its record says so, then a new attempt
        error = LOST_ERROR;
        cJSON *parsed = cJSON_Parse (cJSON_GetStringValue (cJSON_GetObjectItem (row, "body")) ?: "{}");
        cJSON *input = parsed ? cJSON_GetObjectItemCaseSensitive (parsed, "input") : NULL;
        char *input_text = input ? cJSON_PrintUnformatted (input) : strdup ("{}");
        store_invocation_t record = {
            .id = current, .function_id = function_id,
            .input = input_text, .status = "error", .error = error, .output = error,
            .source = cJSON_GetStringValue (cJSON_GetObjectItem (row, "source")),
            .version = (int) cJSON_GetNumberValue (cJSON_GetObjectItem (row, "active_version")),
            .attempt = attempt, .parent_invocation_id = current && first && strneq (current, first) ? first : NULL
        };
        if (current && store_invocations_insert (self->store, &record, 1) < 0)
            zsys_error ("events: could not record the lost attempt %s", current);
        free (input_text);
        cJSON_Delete (parsed);
    }
    zsys_info ("events: event %s was running with no attempt in flight (attempt %d)", event_id, attempt);
    s_attempt_failed (self, function_id, event_id, attempt, max_retries, error ? error : "The function failed");
}

static void
s_recover (self_t *self)
{
    //  A done event's success was heard; the record it waited for went with the process
    if (store_exec (self->store, "DELETE FROM async_events WHERE status = 'done'", "") < 0)
        zsys_error ("events: could not clear the ended events");
    cJSON *rows = store_query (self->store, RECOVER_SELECT, "");
    cJSON *row;
    cJSON_ArrayForEach (row, rows)
        s_recover_row (self, row);
    cJSON_Delete (rows);
}

//  The deadline of an attempt of a function with this timeout, from its send
static int64_t
s_attempt_deadline_ms (double timeout_seconds)
{
    int64_t timeout_ms = isnan (timeout_seconds) || timeout_seconds < 1 ? 30000 : (int64_t) timeout_seconds * 1000;
    return deadlines_job_ms (timeout_ms) + GATEWAY_MARGIN_MS;
}

//  At run time: done events whose record never came, and running events
//  with no attempt in flight here, past their deadline (a write of ours
//  failed): as at start-up
static void
s_sweep (self_t *self)
{
    int64_t now_ms = asyncq_now_ms ();
    if (store_exec (self->store, "DELETE FROM async_events WHERE status = 'done' AND next_run_ms < ?",
                    "I", now_ms - DONE_KEEP_MS) < 0)
        zsys_error ("events: could not clear the ended events");
    cJSON *rows = store_query (self->store, RECOVER_SELECT, "");
    cJSON *row;
    cJSON_ArrayForEach (row, rows) {
        const char *current = cJSON_GetStringValue (cJSON_GetObjectItem (row, "current_invocation_id"));
        if (current && zhashx_lookup (self->flights, current))
            continue;
        double claimed = cJSON_GetNumberValue (cJSON_GetObjectItem (row, "claimed_ms"));
        double timeout_seconds = cJSON_GetNumberValue (cJSON_GetObjectItem (row, "timeout_seconds"));
        if (!isnan (claimed)
        &&  now_ms < (int64_t) claimed + s_attempt_deadline_ms (timeout_seconds) + SWEEP_MARGIN_MS)
            continue;
        zsys_warning ("events: event %s is running with no attempt in flight past its deadline",
                      cJSON_GetStringValue (cJSON_GetObjectItem (row, "id")));
        s_recover_row (self, row);
    }
    cJSON_Delete (rows);
}

//  --------------------------------------------------------------------------
//  Schedules: due ones queue one event each and move to their next firing

static void
s_fire_schedules (self_t *self)
{
    int64_t now_ms = asyncq_now_ms ();
    cJSON *rows = store_query (self->store,
        "SELECT id, function_id, expression, next_run_ms FROM schedules"
        " WHERE enabled = 1 AND next_run_ms <= ? ORDER BY next_run_ms LIMIT ?",
        "Ii", now_ms, SCHEDULES_PER_TICK);
    if (!rows || cJSON_GetArraySize (rows) == 0) {
        cJSON_Delete (rows);
        return;
    }
    if (store_begin (self->store)) {
        cJSON_Delete (rows);
        return;
    }
    char now [UTIL_TIME_SIZE];
    util_now_iso (now);
    cJSON *row;
    cJSON_ArrayForEach (row, rows) {
        const char *schedule_id = cJSON_GetStringValue (cJSON_GetObjectItem (row, "id"));
        const char *function_id = cJSON_GetStringValue (cJSON_GetObjectItem (row, "function_id"));
        const char *expression = cJSON_GetStringValue (cJSON_GetObjectItem (row, "expression"));
        int64_t due = (int64_t) cJSON_GetNumberValue (cJSON_GetObjectItem (row, "next_run_ms"));
        char error [256];
        schedule_t *schedule = schedule_parse (expression, error, sizeof error);
        if (!schedule) {
            //  Checked when it was made: a row someone edited by hand
            zsys_warning ("events: schedule %s has a bad expression (%s); disabled", schedule_id, error);
            store_exec (self->store, "UPDATE schedules SET enabled = 0 WHERE id = ?", "s", schedule_id);
            continue;
        }
        //  The cadence is kept from the due time; missed firings collapse into this one
        int64_t next = schedule_next (schedule, due, self->clock_scale);
        if (next >= 0 && next <= now_ms)
            next = schedule_next (schedule, now_ms, self->clock_scale);
        schedule_destroy (&schedule);
        char when [UTIL_TIME_SIZE];
        asyncq_iso (due, when);
        cJSON *body = cJSON_CreateObject ();
        cJSON *input = cJSON_AddObjectToObject (body, "input");
        cJSON_AddStringToObject (input, "source", "clowdy.schedule");
        cJSON_AddStringToObject (input, "schedule_id", schedule_id);
        cJSON_AddStringToObject (input, "expression", expression);
        cJSON_AddStringToObject (input, "time", when);
        char *text = cJSON_PrintUnformatted (body);
        cJSON_Delete (body);
        char invocation_id [UTIL_ID_SIZE], detail [256];
        int status = asyncq_insert (self->store, function_id, text, "schedule", schedule_id, now_ms,
                                    invocation_id, NULL, detail, sizeof detail);
        free (text);
        if (status != 202)
            zsys_warning ("events: schedule %s skipped a firing: %s", schedule_id, detail);
        if (next < 0)
            store_exec (self->store, "UPDATE schedules SET enabled = 0, last_run_at = ? WHERE id = ?",
                        "ss", now, schedule_id);
        else
            store_exec (self->store, "UPDATE schedules SET next_run_ms = ?, last_run_at = ? WHERE id = ?",
                        "Iss", next, now, schedule_id);
    }
    if (store_commit (self->store))
        zsys_error ("events: could not fire the due schedules");
    cJSON_Delete (rows);
}

//  --------------------------------------------------------------------------
//  Dispatch: claim due events up to the concurrency bound, send them

static void
s_dispatch (self_t *self)
{
    long room = self->concurrency - (long) zhashx_size (self->flights);
    if (room <= 0)
        return;
    int64_t now_ms = asyncq_now_ms ();
    cJSON *rows = store_query (self->store,
        "SELECT e.id, e.function_id, e.body, e.source, e.attempts, e.first_invocation_id,"
        "       f.max_retries, f.timeout_seconds"
        "  FROM async_events e JOIN functions f ON f.id = e.function_id"
        " WHERE e.status = 'queued' AND e.next_run_ms <= ? AND f.status = 'active'"
        " ORDER BY e.next_run_ms, e.rowid LIMIT ?", "Ii", now_ms, (int) room);
    if (!rows || cJSON_GetArraySize (rows) == 0) {
        cJSON_Delete (rows);
        return;
    }
    //  Claim them all in one committed write, then send
    if (store_begin (self->store)) {
        cJSON_Delete (rows);
        return;
    }
    char now [UTIL_TIME_SIZE];
    util_now_iso (now);
    cJSON *row;
    cJSON_ArrayForEach (row, rows) {
        int attempt = (int) cJSON_GetNumberValue (cJSON_GetObjectItem (row, "attempts")) + 1;
        char invocation_id [UTIL_ID_SIZE];
        if (attempt == 1)
            snprintf (invocation_id, sizeof invocation_id, "%s",
                      cJSON_GetStringValue (cJSON_GetObjectItem (row, "first_invocation_id")));
        else
            util_new_id (invocation_id);
        cJSON_AddStringToObject (row, "invocation_id", invocation_id);
        cJSON_AddNumberToObject (row, "attempt", attempt);
        if (store_exec (self->store,
                "UPDATE async_events SET status = 'running', attempts = ?, current_invocation_id = ?,"
                " next_run_ms = ?, updated_at = ? WHERE id = ? AND status = 'queued'",
                "isIss", attempt, invocation_id, now_ms, now,
                cJSON_GetStringValue (cJSON_GetObjectItem (row, "id"))) != 1) {
            store_rollback (self->store);
            cJSON_Delete (rows);
            return;
        }
    }
    if (store_commit (self->store)) {
        cJSON_Delete (rows);
        return;
    }
    cJSON_ArrayForEach (row, rows) {
        const char *event_id = cJSON_GetStringValue (cJSON_GetObjectItem (row, "id"));
        const char *function_id = cJSON_GetStringValue (cJSON_GetObjectItem (row, "function_id"));
        const char *invocation_id = cJSON_GetStringValue (cJSON_GetObjectItem (row, "invocation_id"));
        const char *first = cJSON_GetStringValue (cJSON_GetObjectItem (row, "first_invocation_id"));
        const char *body = cJSON_GetStringValue (cJSON_GetObjectItem (row, "body")) ?: "{}";
        const char *source = cJSON_GetStringValue (cJSON_GetObjectItem (row, "source")) ?: "async";
        int attempt = (int) cJSON_GetNumberValue (cJSON_GetObjectItem (row, "attempt"));
        double timeout_seconds = cJSON_GetNumberValue (cJSON_GetObjectItem (row, "timeout_seconds"));
        cJSON *headers = cJSON_CreateObject ();
        cJSON_AddStringToObject (headers, "x-clowdy-invocation-id", invocation_id);
        char number [16];
        snprintf (number, sizeof number, "%d", attempt);
        cJSON_AddStringToObject (headers, "x-clowdy-attempt", number);
        if (attempt > 1)
            cJSON_AddStringToObject (headers, "x-clowdy-parent-id", first);
        cJSON_AddStringToObject (headers, "x-clowdy-event-id", event_id);
        cJSON_AddStringToObject (headers, "x-clowdy-source", source);
        char *headers_text = cJSON_PrintUnformatted (headers);
        cJSON_Delete (headers);
        char path [64];
        snprintf (path, sizeof path, "/api/invoke/%s", function_id);
        int rc = msg_send_invoke (self->gateway, NULL, invocation_id, "async", function_id, "POST", path, "",
                                  headers_text, body, strlen (body), "");
        free (headers_text);
        if (rc) {
            zsys_warning ("events: the gateway cannot take event %s now; it waits", event_id);
            s_attempt_refused (self, event_id);
            continue;
        }
        flight_t *flight = (flight_t *) zmalloc (sizeof (flight_t));
        flight->event_id = strdup (event_id);
        flight->function_id = strdup (function_id);
        flight->attempt = attempt;
        flight->max_retries = (int) cJSON_GetNumberValue (cJSON_GetObjectItem (row, "max_retries"));
        flight->deadline = zclock_mono () + s_attempt_deadline_ms (timeout_seconds);
        zhashx_insert (self->flights, invocation_id, flight);
    }
    cJSON_Delete (rows);
}

//  --------------------------------------------------------------------------
//  REPLY: the attempt's outcome

static void
s_handle_reply (self_t *self, msg_t *msg)
{
    const char *invocation_id = msg_reply_request_id (msg);
    flight_t *flight = (flight_t *) zhashx_lookup (self->flights, invocation_id);
    if (!flight) {
        zsys_warning ("events: dropped a REPLY for attempt %s, no longer waiting", invocation_id);
        return;
    }
    int status = (int) msg_reply_status (msg);
    size_t size;
    const byte *body = msg_reply_body (msg, &size);
    cJSON *reply = util_json_parse ((const char *) body, size);
    const char *error = cJSON_GetStringValue (cJSON_GetObjectItem (reply, "error"));
    const char *detail = cJSON_GetStringValue (cJSON_GetObjectItem (reply, "detail"));
    if (status == 200 && cJSON_IsTrue (cJSON_GetObjectItem (reply, "success")))
        //  Ours to end too: the recorder's delete may never come
        s_attempt_succeeded (self, flight->event_id, invocation_id);
    else
    if (status == 200 || status == 504)
        //  Ran and failed (error, timeout), or lost on the way: recorded, counted
        s_attempt_failed (self, flight->function_id, flight->event_id, flight->attempt, flight->max_retries,
                          error ? error : detail ? detail : "The function failed");
    else
    if (status == 429 || status == 503)
        s_attempt_refused (self, flight->event_id);
    else
    if (status == 404)
        //  The function is gone (its events went with it)
        s_event_end (self, flight->event_id);
    else {
        //  Refused for good (a body the gateway would not take): no retry helps
        char *text = zsys_sprintf ("The call was refused (%d): %s", status, detail ? detail : "bad request");
        s_attempt_failed (self, flight->function_id, flight->event_id, flight->attempt, 0, text);
        zstr_free (&text);
    }
    cJSON_Delete (reply);
    zhashx_delete (self->flights, invocation_id);
}

//  Attempts whose REPLY did not come by their deadline: lost
static void
s_expire_flights (self_t *self)
{
    int64_t now = zclock_mono ();
    zlistx_t *expired = zlistx_new ();
    zlistx_set_destructor (expired, (zlistx_destructor_fn *) zstr_free);
    for (flight_t *flight = (flight_t *) zhashx_first (self->flights); flight;
         flight = (flight_t *) zhashx_next (self->flights))
        if (now > flight->deadline)
            zlistx_add_end (expired, strdup ((const char *) zhashx_cursor (self->flights)));
    for (char *id = (char *) zlistx_first (expired); id; id = (char *) zlistx_next (expired)) {
        flight_t *flight = (flight_t *) zhashx_lookup (self->flights, id);
        zsys_warning ("events: no REPLY for attempt %s by its deadline; counted as lost", id);
        s_attempt_failed (self, flight->function_id, flight->event_id, flight->attempt, flight->max_retries,
                          "The attempt got no answer in time: the platform lost track of it");
        zhashx_delete (self->flights, id);
    }
    zlistx_destroy (&expired);
}

static void
s_tick (self_t *self)
{
    s_expire_flights (self);
    if (zclock_mono () >= self->next_sweep) {
        s_sweep (self);
        self->next_sweep = zclock_mono () + SWEEP_MS;
    }
    s_fire_schedules (self);
    s_dispatch (self);
}

//  --------------------------------------------------------------------------
//  The actor

static void
s_handle_gateway (self_t *self)
{
    msg_t *msg = msg_recv (self->gateway, false);
    if (!msg)
        return;
    if (msg_id (msg) == MSG_ID_REPLY)
        s_handle_reply (self, msg);
    else
        zsys_warning ("events: unexpected '%s' from the gateway", msg_command (msg));
    msg_destroy (&msg);
    //  A slot is free: the next due event goes now, not at the next tick
    s_dispatch (self);
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
    if (streq (command, "TICK")) {
        s_tick (self);
        zstr_send (self->pipe, "OK");
    }
    else
    if (streq (command, "SWEEP")) {
        //  Tests: the sweep now, not in SWEEP_MS
        s_sweep (self);
        zstr_send (self->pipe, "OK");
    }
    else
        zsys_warning ("events: invalid pipe command '%s'", command);
    zstr_free (&command);
}

static void
    s_self_destroy (self_t **self_p);

static self_t *
s_self_new (zsock_t *pipe, const actor_args_t *args)
{
    self_t *self = (self_t *) zmalloc (sizeof (self_t));
    self->pipe = pipe;
    self->concurrency = args->config->async_concurrency > 0 ? args->config->async_concurrency : 4;
    self->backoff_ms = args->config->async_backoff_ms > 0 ? args->config->async_backoff_ms : 1000;
    self->clock_scale = args->config->test_clock_scale > 1 ? args->config->test_clock_scale : 1;
    self->max_failed = args->config->async_max_failed > 0 ? args->config->async_max_failed : 1000;
    self->next_sweep = zclock_mono () + SWEEP_MS;
    self->flights = zhashx_new ();
    zhashx_set_destructor (self->flights, s_flight_destroy);
    self->store = store_open (args->config->data_dir);
    self->gateway = endpoints_connect (args->endpoints, "gateway", ZMQ_DEALER);
    if (!self->store || !self->gateway) {
        zsys_error ("events: cannot start");
        s_self_destroy (&self);
        return NULL;
    }
    s_recover (self);
    return self;
}

static void
s_self_destroy (self_t **self_p)
{
    self_t *self = *self_p;
    if (self) {
        zhashx_destroy (&self->flights);
        zsock_destroy (&self->gateway);
        store_destroy (&self->store);
        free (self);
        *self_p = NULL;
    }
}

void
events_actor (zsock_t *pipe, void *args)
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
    zpoller_t *poller = zpoller_new (pipe, self->gateway, NULL);
    int64_t next_tick = zclock_mono ();
    while (!self->terminated) {
        int64_t wait = next_tick - zclock_mono ();
        zsock_t *which = (zsock_t *) zpoller_wait (poller, wait > 0 ? (int) wait : 0);
        if (which == pipe)
            s_self_handle_pipe (self);
        else
        if (which == self->gateway)
            s_handle_gateway (self);
        else
        if (zpoller_terminated (poller))
            break;
        if (zclock_mono () >= next_tick) {
            s_tick (self);
            next_tick = zclock_mono () + TICK_MS;
        }
    }
    zpoller_destroy (&poller);
    s_self_destroy (&self);
}

//  --------------------------------------------------------------------------
//  Selftest: a stand-in gateway answers each attempt as the test says

static void
s_seed_function (store_t *store, const char *id, int max_retries)
{
    assert (store_exec (store, "INSERT INTO functions (id, user_id, name, max_retries, created_at, updated_at)"
                        " VALUES (?, 'u', 'f', ?, 'now', 'now')", "si", id, max_retries) == 1);
}

//  Receive one INVOKE at the stand-in gateway, answer it with status and body
static void
s_answer (zsock_t *gateway, int status, const char *body, char *attempt_out, char *parent_out)
{
    msg_t *msg = msg_recv (gateway, true);
    assert (msg && msg_id (msg) == MSG_ID_INVOKE);
    assert (streq (msg_invoke_kind (msg), "async"));
    cJSON *headers = msg_invoke_headers (msg);
    if (attempt_out)
        strcpy (attempt_out, cJSON_GetStringValue (cJSON_GetObjectItem (headers, "x-clowdy-attempt")));
    if (parent_out) {
        const char *parent = cJSON_GetStringValue (cJSON_GetObjectItem (headers, "x-clowdy-parent-id"));
        strcpy (parent_out, parent ? parent : "");
    }
    assert (msg_send_reply (gateway, msg_route (msg), msg_invoke_request_id (msg), status,
                            "{}", body, strlen (body)) == 0);
    msg_destroy (&msg);
}

static const char *
s_event_status (store_t *store, const char *invocation_id)
{
    static char status [32];
    cJSON *row = store_query_row (store, "SELECT status FROM async_events WHERE first_invocation_id = ?",
                                  "s", invocation_id);
    snprintf (status, sizeof status, "%s", row ? cJSON_GetStringValue (cJSON_GetObjectItem (row, "status")) : "gone");
    cJSON_Delete (row);
    return status;
}

//  The actor writes on its own thread: wait (5 s at most) for the status
static bool
s_wait_status (store_t *store, const char *invocation_id, const char *status)
{
    for (int i = 0; i < 500; i++) {
        if (streq (s_event_status (store, invocation_id), status))
            return true;
        zclock_sleep (10);
    }
    return false;
}

void
events_test (bool verbose)
{
    printf ("events: ");
    char data_dir [] = "/tmp/clowdy-events-test-XXXXXX";
    assert (mkdtemp (data_dir));
    char *argv [] = { "clowdy", "--data-dir", data_dir, "--async-backoff-ms", "1", "--async-concurrency", "2",
                      "--async-max-failed", "2", NULL };
    config_t config;
    char error [256];
    assert (config_parse (&config, 9, argv, error, sizeof error) == 0);
    store_t *store = store_open (data_dir);
    assert (store);
    s_seed_function (store, "aaaaaaaaaaaa", 2);
    s_seed_function (store, "bbbbbbbbbbbb", 0);
    //  An event that was running when a server died, with no record: lost
    char lost [UTIL_ID_SIZE], detail [256];
    assert (asyncq_enqueue (store, "bbbbbbbbbbbb", "{}", 2, "async", NULL, lost, detail, sizeof detail) == 202);
    assert (store_exec (store, "UPDATE async_events SET status = 'running', attempts = 1,"
                        " current_invocation_id = first_invocation_id", "") == 1);

    endpoints_t *endpoints = endpoints_new ();
    endpoints_set (endpoints, "gateway", "inproc://events-test-gateway");
    zsock_t *gateway = zsock_new_router ("inproc://events-test-gateway");
    zsock_set_rcvtimeo (gateway, 5000);
    actor_args_t args = { &config, endpoints, 0 };
    zactor_t *events = actor_start (events_actor, &args, "events", NULL);
    assert (events);
    //  The lost attempt was recorded as an error; with no retries left, it failed
    assert (streq (s_event_status (store, lost), "failed"));
    cJSON *record = store_query_row (store, "SELECT status, error, attempt FROM invocations WHERE id = ?", "s", lost);
    assert (record && streq (cJSON_GetStringValue (cJSON_GetObjectItem (record, "status")), "error"));
    //  Nothing tells a lost attempt from one never sent: the record says it may not have run
    assert (strstr (cJSON_GetStringValue (cJSON_GetObjectItem (record, "error")), "may not have run"));
    cJSON_Delete (record);

    //  Fails twice, then succeeds: attempts 1, 2, 3, linked to the first
    char first [UTIL_ID_SIZE], attempt [16], parent [UTIL_ID_SIZE];
    assert (asyncq_enqueue (store, "aaaaaaaaaaaa", "{\"input\":1}", 11, "async", NULL, first, detail,
                            sizeof detail) == 202);
    s_answer (gateway, 200, "{\"success\":false,\"error\":\"boom\"}", attempt, parent);
    assert (streq (attempt, "1") && streq (parent, ""));
    s_answer (gateway, 503, "{\"detail\":\"busy\"}", attempt, parent);          //  never ran: not counted
    assert (streq (attempt, "2") && streq (parent, first));
    s_answer (gateway, 504, "{\"detail\":\"lost\"}", attempt, parent);
    assert (streq (attempt, "2"));
    s_answer (gateway, 200, "{\"success\":true,\"output\":1}", attempt, parent);
    assert (streq (attempt, "3") && streq (parent, first));
    //  Its success REPLY ends it, though the recorder's record of it may never come
    assert (s_wait_status (store, first, "done"));
    zstr_send (events, "TICK");
    char *ok = zstr_recv (events);
    zstr_free (&ok);
    zsock_set_rcvtimeo (gateway, 300);
    assert (msg_recv (gateway, true) == NULL);                                  //  not run again
    zsock_set_rcvtimeo (gateway, 5000);
    //  The recorder's write, when it comes, deletes it (idempotent with ours)
    cJSON *event = store_query_row (store, "SELECT id, current_invocation_id FROM async_events"
                                    " WHERE first_invocation_id = ?", "s", first);
    store_invocation_t success = {
        .id = cJSON_GetStringValue (cJSON_GetObjectItem (event, "current_invocation_id")),
        .function_id = "aaaaaaaaaaaa", .status = "success", .output = "1", .source = "async", .attempt = 3,
        .parent_invocation_id = first, .event_id = cJSON_GetStringValue (cJSON_GetObjectItem (event, "id"))
    };
    assert (store_invocations_insert (store, &success, 1) == 1);
    cJSON_Delete (event);
    assert (streq (s_event_status (store, first), "gone"));

    //  Always fails: 1 + max_retries attempts, then the dead-letter list
    assert (asyncq_enqueue (store, "aaaaaaaaaaaa", "{}", 2, "async", NULL, first, detail, sizeof detail) == 202);
    for (int i = 0; i < 3; i++)
        s_answer (gateway, 200, "{\"success\":false,\"error\":\"boom\"}", attempt, NULL);
    assert (streq (attempt, "3"));
    assert (s_wait_status (store, first, "failed"));
    zstr_send (events, "TICK");
    ok = zstr_recv (events);
    assert (ok && streq (ok, "OK"));
    zstr_free (&ok);
    zsock_set_rcvtimeo (gateway, 300);
    assert (msg_recv (gateway, true) == NULL);                                  //  no fourth attempt

    //  The dead-letter list keeps a function's newest --async-max-failed (2):
    //  the lost event failed first, so a third failure drops it
    char second [UTIL_ID_SIZE], third [UTIL_ID_SIZE];
    zsock_set_rcvtimeo (gateway, 5000);
    assert (asyncq_enqueue (store, "bbbbbbbbbbbb", "{}", 2, "async", NULL, second, detail, sizeof detail) == 202);
    s_answer (gateway, 200, "{\"success\":false,\"error\":\"boom\"}", NULL, NULL);
    assert (s_wait_status (store, second, "failed"));
    assert (streq (s_event_status (store, lost), "failed"));
    assert (asyncq_enqueue (store, "bbbbbbbbbbbb", "{}", 2, "async", NULL, third, detail, sizeof detail) == 202);
    s_answer (gateway, 200, "{\"success\":false,\"error\":\"boom\"}", NULL, NULL);
    assert (s_wait_status (store, third, "failed"));
    assert (streq (s_event_status (store, lost), "gone"));
    assert (streq (s_event_status (store, second), "failed"));

    //  The sweep: a running event with no attempt in flight here, claimed
    //  long ago (a write of ours failed), is recovered as at start-up
    assert (asyncq_enqueue (store, "aaaaaaaaaaaa", "{}", 2, "async", NULL, first, detail, sizeof detail) == 202);
    assert (store_exec (store, "UPDATE async_events SET status = 'running', attempts = 1, next_run_ms = 0,"
                        " current_invocation_id = first_invocation_id WHERE first_invocation_id = ?",
                        "s", first) == 1);
    zstr_send (events, "SWEEP");
    ok = zstr_recv (events);
    zstr_free (&ok);
    record = store_query_row (store, "SELECT status FROM invocations WHERE id = ?", "s", first);
    assert (record && streq (cJSON_GetStringValue (cJSON_GetObjectItem (record, "status")), "error"));
    cJSON_Delete (record);
    s_answer (gateway, 200, "{\"success\":true}", attempt, NULL);             //  retried as attempt 2
    assert (streq (attempt, "2"));
    assert (s_wait_status (store, first, "done"));
    //  A done event whose record never came is cleared by the sweep later
    assert (store_exec (store, "UPDATE async_events SET next_run_ms = 0 WHERE first_invocation_id = ?",
                        "s", first) == 1);
    zstr_send (events, "SWEEP");
    ok = zstr_recv (events);
    zstr_free (&ok);
    assert (streq (s_event_status (store, first), "gone"));

    //  A due schedule queues one event, however many firings it missed
    assert (store_exec (store, "INSERT INTO schedules (id, function_id, expression, next_run_ms, created_at)"
                        " VALUES ('cccccccccccc', 'aaaaaaaaaaaa', 'rate(1 hour)', 1000, 'now')", "") == 1);
    zsock_set_rcvtimeo (gateway, 5000);
    msg_t *msg = msg_recv (gateway, true);
    assert (msg && streq (cJSON_GetStringValue (cJSON_GetObjectItem (msg_invoke_headers (msg), "x-clowdy-source")),
                          "schedule"));
    assert (msg_send_reply (gateway, msg_route (msg), msg_invoke_request_id (msg), 200, "{}",
                            "{\"success\":true}", 16) == 0);
    msg_destroy (&msg);
    cJSON *schedule = store_query_row (store, "SELECT next_run_ms FROM schedules", "");
    assert (cJSON_GetNumberValue (cJSON_GetObjectItem (schedule, "next_run_ms")) > asyncq_now_ms () + 3000000);
    cJSON_Delete (schedule);
    zsock_set_rcvtimeo (gateway, 300);
    assert (msg_recv (gateway, true) == NULL);

    zactor_destroy (&events);
    zsock_destroy (&gateway);
    store_destroy (&store);
    endpoints_destroy (&endpoints);
    config_reset (&config);
    char command [256];
    snprintf (command, sizeof command, "rm -rf %s", data_dir);
    if (system (command)) { }
    printf ("OK\n");
}
