/*  =========================================================================
    assignment - the warm pool of execution environments

    Serves two ROUTER sockets: "assignment", where gateway asks for runs
    (RUN, RETIRE) and gets RESULTs, and "worker", where workers register
    (READY), heartbeat, and report finished runs (DONE) and lost
    environments (GONE). A run goes to an idle environment of its pool key
    when there is one (warm start); otherwise, within the function's
    concurrency cap and the global memory budget, placement picks a worker
    and the run creates a new environment there (cold start); otherwise it
    waits in the function's short queue, or is rejected (429). The workers
    are kept in broker/registry; every queued call, placement request and
    run has a deadline (broker/deadlines.h), after which the caller is
    answered (unavailable, or lost for a run whose worker stopped answering).

    Started with actor_args_t (core/config.h). Pipe commands:
        zstr_send (assignment, "STATS");   //  answers JSON: envs, one count per state, queued, workers, draining, budget_mb, memory_mb, jobs
        zstr_send (assignment, "PING");    //  answers "PONG"
    ========================================================================= */

#ifndef CLOWDY_ASSIGNMENT_H_INCLUDED
#define CLOWDY_ASSIGNMENT_H_INCLUDED

#include <czmq.h>

void
    assignment_actor (zsock_t *pipe, void *args);

void
    assignment_test (bool verbose);

#endif
