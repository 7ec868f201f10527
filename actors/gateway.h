/*  =========================================================================
    gateway - routes requests to functions and asks for environments

    Pipe commands (besides $TERM):
        zstr_send (actor, "PING");      // answers "PONG"
    ========================================================================= */

#ifndef CLOWDY_GATEWAY_H_INCLUDED
#define CLOWDY_GATEWAY_H_INCLUDED

#include <czmq.h>

void
    gateway_actor (zsock_t *pipe, void *args);

void
    gateway_test (bool verbose);

#endif
