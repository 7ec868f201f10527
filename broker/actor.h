/*  =========================================================================
    actor - how every actor starts: a handshake that says ready or why not

    zactor_new waits for the actor's first signal and drops its status, so it
    cannot tell main that an actor failed to bind its endpoint or open the
    database. actor_start adds a second step, as zbeacon's callers do: the
    actor does its set-up, then says "READY" or "FAILED <reason>" on its
    pipe, and actor_start waits for that answer with a deadline.

    In the actor (it never calls zsock_signal itself):

        void
        placement_actor (zsock_t *pipe, void *args)
        {
            zsock_t *frontend = endpoints_bind (endpoints, "placement", ZMQ_ROUTER);
            if (!frontend) {
                actor_failed (pipe, "%s", endpoints_error ());
                return;                 //  actor_failed waited for $TERM
            }
            actor_ready (pipe);
            ... the loop, until $TERM ...
        }

    In main (or a selftest):

        char *reason = NULL;
        zactor_t *placement = actor_start (placement_actor, &args, "placement", &reason);
        if (!placement)
            fprintf (stderr, "clowdy: placement: %s\n", reason);
        zstr_free (&reason);
    ========================================================================= */

#ifndef CLOWDY_ACTOR_H_INCLUDED
#define CLOWDY_ACTOR_H_INCLUDED

#include <czmq.h>

//  How long an actor may take over its set-up (database migrations, sandbox
//  system checks) before actor_start gives up on it.
#define ACTOR_START_TIMEOUT_MS  30000

//  How long http keeps serving the requests in flight after $TERM.
#define ACTOR_DRAIN_MS          10000

//  After the drain, how long the other actors get to stop before main gives
//  up on them: SIGTERM ends the process within ACTOR_DRAIN_MS + this.
#define ACTOR_STOP_MARGIN_MS    5000

//  Start an actor and wait for its handshake. Returns the actor once it said
//  READY. Otherwise returns NULL and, if reason_p is not NULL, sets it to a
//  new string (the caller frees it) saying why: the actor's own reason, or
//  that it gave no answer within ACTOR_START_TIMEOUT_MS. A failed actor is
//  stopped here; one that never answered is abandoned (it cannot be joined),
//  which main's bounded shutdown then covers.
zactor_t *
    actor_start (zactor_fn *handler, void *args, const char *name, char **reason_p);

//  Name the calling thread (top -H, ps -L, perf), cut to 15 characters.
//  actor_start names each actor's thread after its name; threads started
//  otherwise (zactor_new) may call this.
void
    actor_name_thread (const char *name);

//  In the actor: its set-up is done; it serves from now on.
void
    actor_ready (zsock_t *pipe);

//  In the actor: its set-up failed for this reason (printf format). Says so
//  and waits for $TERM (so that zactor_destroy does not hang); the actor
//  returns right after.
void
    actor_failed (zsock_t *pipe, const char *format, ...) CHECK_PRINTF (2);

//  Test hook (CLOWDY_DEBUG_WEDGE=<actor>[:<file>], read once by main): the
//  named actor, once READY, sleeps instead of serving, as a stuck actor
//  would: for ever, or until the file exists, and then serves what queued
//  up meanwhile (the test says when, so no clock decides it). Lets the e2e tests prove that shutdown is bounded and that a
//  full queue is refused, not waited on. NULL: none.
void
    actor_set_wedge (const char *spec);

void
    actor_test (bool verbose);

#endif
