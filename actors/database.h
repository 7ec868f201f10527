/*  =========================================================================
    database - provisions managed databases per project

    Pipe commands (besides $TERM):
        zstr_send (actor, "PING");      // answers "PONG"
    ========================================================================= */

#ifndef CLOWDY_DATABASE_H_INCLUDED
#define CLOWDY_DATABASE_H_INCLUDED

#include <czmq.h>

void
    database_actor (zsock_t *pipe, void *args);

void
    database_test (bool verbose);

#endif
