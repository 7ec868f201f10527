/*  =========================================================================
    asyncq - the durable queue of async invocations, in SQLite

    An async call (`POST /api/invoke/:id?async=1`, a Lambda `Event` invoke,
    a schedule's firing) is a row of async_events, written and committed
    before the caller hears 202; actors/events.c runs it from there. This
    module holds what those writers share: the checks of the call (the
    function exists and is active, the body is what a direct invoke
    accepts, the queue has room) and the insert, in one transaction.

    The caps are process-wide, set once by main before any thread starts:

        asyncq_set_limits (1000, 10000, 1);
        char invocation_id [UTIL_ID_SIZE], detail [256];
        int status = asyncq_enqueue (store, function_id, body, size, "async", NULL,
                                     invocation_id, detail, sizeof detail);
        //  202: queued; else 400/404/422/429/503/500 with detail (422: the
        //  body was JSON but not {"input": ...} of what cJSON can carry)
    ========================================================================= */

#ifndef CLOWDY_ASYNCQ_H_INCLUDED
#define CLOWDY_ASYNCQ_H_INCLUDED

#include <stddef.h>
#include "core/store.h"
#include "core/util.h"

//  The caps on events not finished (queued or running): per function (429
//  past it) and over all functions (503), and the test clock's scale
//  (schedule rates divided by it; 1 outside tests).
void
    asyncq_set_limits (long max_per_function, long max_total, long clock_scale);

//  The test clock scale set above (>= 1)
long
    asyncq_clock_scale (void);

//  Queue one call of function_id with this request body ({"input": ...},
//  blank for {}). source: "async" or "schedule"; schedule_id or NULL.
//  Returns 202 with the first attempt's invocation id (and the event's id
//  in event_id, when not NULL), or the HTTP status of the refusal with a
//  sentence in detail.
int
    asyncq_enqueue (store_t *store, const char *function_id, const char *body, size_t size,
                    const char *source, const char *schedule_id, char invocation_id [UTIL_ID_SIZE],
                    char *detail, size_t detail_size);

//  As asyncq_enqueue, inside a transaction the caller holds (no checks of
//  the body, which the caller built; the caps still apply). event_id may
//  be NULL.
int
    asyncq_insert (store_t *store, const char *function_id, const char *body, const char *source,
                   const char *schedule_id, int64_t run_at_ms, char invocation_id [UTIL_ID_SIZE],
                   char event_id [UTIL_ID_SIZE], char *detail, size_t detail_size);

//  Is there room in the caps for one more event of function_id? 0, or
//  429/503 (500 on a store error) with a sentence in detail. Call it in
//  the IMMEDIATE transaction (store_begin) that then queues the event, as
//  asyncq_insert does and a redrive must.
int
    asyncq_room (store_t *store, const char *function_id, char *detail, size_t detail_size);

//  Unix time now, in ms
int64_t
    asyncq_now_ms (void);

//  Unix ms as ISO 8601 UTC ("2026-11-30T14:45:00.000000Z")
void
    asyncq_iso (int64_t ms, char out [UTIL_TIME_SIZE]);

void
    asyncq_test (bool verbose);

#endif
