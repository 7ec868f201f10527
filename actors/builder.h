/*  =========================================================================
    builder - builds pip dependency layers

    Pipe commands (besides $TERM):
        zstr_send (actor, "PING");      // answers "PONG"
    ========================================================================= */

#ifndef CLOWDY_BUILDER_H_INCLUDED
#define CLOWDY_BUILDER_H_INCLUDED

#include <czmq.h>

void
    builder_actor (zsock_t *pipe, void *args);

void
    builder_test (bool verbose);

#endif
