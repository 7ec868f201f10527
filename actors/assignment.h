/*  =========================================================================
    assignment - the warm pool of execution environments

    Pipe commands (besides $TERM):
        zstr_send (actor, "PING");      // answers "PONG"
    ========================================================================= */

#ifndef CLOWDY_ASSIGNMENT_H_INCLUDED
#define CLOWDY_ASSIGNMENT_H_INCLUDED

#include <czmq.h>

void
    assignment_actor (zsock_t *pipe, void *args);

void
    assignment_test (bool verbose);

#endif
