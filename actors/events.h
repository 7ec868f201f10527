/*  =========================================================================
    events - runs async invocations: the durable queue, retries, the
    dead-letter list and schedules

    Reads the async_events and schedules tables (written by the REST API,
    core/api_events.c and core/asyncq.c), fires due schedules into the
    queue, and sends each due event to the gateway as an INVOKE of kind
    `async`, as http sends a direct call, at most --async-concurrency at
    once. See events.c for the retry and crash-safety rules.

    Started with actor_args_t (core/config.h), after the gateway, whose
    "gateway" endpoint it connects to. Pipe commands:
        zstr_send (events, "PING");     //  answers "PONG"
        zstr_send (events, "TICK");     //  looks for due work now, answers "OK"
    ========================================================================= */

#ifndef CLOWDY_EVENTS_H_INCLUDED
#define CLOWDY_EVENTS_H_INCLUDED

#include <czmq.h>

void
    events_actor (zsock_t *pipe, void *args);

void
    events_test (bool verbose);

#endif
