/*  =========================================================================
    http - the HTTP front door (libmicrohttpd)

    Pipe commands (besides $TERM):
        zstr_send (actor, "PING");      // answers "PONG"
    ========================================================================= */

#ifndef CLOWDY_HTTP_H_INCLUDED
#define CLOWDY_HTTP_H_INCLUDED

#include <czmq.h>

void
    http_actor (zsock_t *pipe, void *args);

void
    http_test (bool verbose);

#endif
