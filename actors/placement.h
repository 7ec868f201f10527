/*  =========================================================================
    placement - decides which worker creates a new execution environment

    Serves a ROUTER at the "placement" endpoint. assignment sends PLACE with
    the job id, the pool key and the workers it knows (id, envs, memory in
    use, capacity); placement answers PLACED with the chosen worker id, or
    "" when none has room. The choice: bounded-load consistent hashing of
    the pool key over the workers (see placement.c): the same worker for a
    function while it is within its fair share of environments (weighted
    by its cores) and has the memory, the next ones on the ring beyond.

    Started with actor_args_t (core/config.h). Pipe commands:
        zstr_send (placement, "PING");  //  answers "PONG"
    ========================================================================= */

#ifndef CLOWDY_PLACEMENT_H_INCLUDED
#define CLOWDY_PLACEMENT_H_INCLUDED

#include <czmq.h>

void
    placement_actor (zsock_t *pipe, void *args);

void
    placement_test (bool verbose);

#endif
