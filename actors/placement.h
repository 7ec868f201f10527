/*  =========================================================================
    placement - decides which worker creates a new execution environment

    Serves a ROUTER at the "placement" endpoint. assignment sends PLACE with
    the job id, the pool key and the workers it knows (id, envs, memory in
    use, capacity); placement answers PLACED with the chosen worker id, or
    "" when none has room. The choice: the worker with the most free memory,
    then the fewest environments; a worker that already ran the same pool
    key recently is preferred when it has room (its image layer and page
    cache are warm).

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
