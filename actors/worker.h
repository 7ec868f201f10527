/*  =========================================================================
    worker - drives runners inside sandboxes

    Pipe commands (besides $TERM):
        zstr_send (actor, "PING");      // answers "PONG"
    ========================================================================= */

#ifndef CLOWDY_WORKER_H_INCLUDED
#define CLOWDY_WORKER_H_INCLUDED

#include <czmq.h>

void
    worker_actor (zsock_t *pipe, void *args);

void
    worker_test (bool verbose);

#endif
