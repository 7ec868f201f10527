/*  =========================================================================
    placement - creates execution environments (cold starts)

    Pipe commands (besides $TERM):
        zstr_send (actor, "PING");      // answers "PONG"
    ========================================================================= */

#ifndef CLOWDY_PLACEMENT_H_INCLUDED
#define CLOWDY_PLACEMENT_H_INCLUDED

#include <czmq.h>

void
    placement_actor (zsock_t *pipe, void *args);

void
    placement_test (bool verbose);

#endif
