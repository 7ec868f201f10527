/*  =========================================================================
    worker - drives runners inside sandboxes on this host

    Connects to the "worker" endpoint of assignment (Majordomo-style: it
    registers with READY, heartbeats, and gets EXEC messages). For each EXEC
    it either reuses the named environment (warm) or creates it (cold): it
    takes a pre-started empty sandbox from its small pool when the function
    fits one (no network, no dependency layer) or makes a new sandbox, sends
    the runner the function's code (load), then the input (invoke), enforces
    the timeout by killing the sandbox, and answers DONE with the result and
    whether the environment is still warm. It tells a timeout from running
    out of memory from a crash. Sandboxes are created on a helper thread,
    so a slow creation never delays heartbeats or other calls. On a
    --role worker host, a cold start whose dependency layer is not in the
    data dir waits (at most LAYERFETCH_WAIT_MS) while a layer fetch thread
    (actors/layerfetch.h) brings it from the control host.

    Started with actor_args_t (core/config.h); args->instance numbers it.
    Pipe commands:
        zstr_send (worker, "STATS");    //  answers JSON: envs, spare, creating
        zstr_send (worker, "PING");     //  answers "PONG"
        zstr_send (worker, "CREATE-DELAY 2000");    //  test hook: each sandbox creation waits 2 s first
        zstr_send (worker, "CGROUP-DELAY 2000");    //  test hook: a spare's creation waits 2 s once
                                                    //  its cgroup is named (its CGROUP sent)
    ========================================================================= */

#ifndef CLOWDY_WORKER_H_INCLUDED
#define CLOWDY_WORKER_H_INCLUDED

#include <czmq.h>

void
    worker_actor (zsock_t *pipe, void *args);

void
    worker_test (bool verbose);

#endif
