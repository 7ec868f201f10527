/*  =========================================================================
    http - the HTTP front door: REST API, invoke, gateway and the web UI

    Serves libmicrohttpd from the actor's own thread: MHD runs in external
    epoll mode and its epoll fd sits in the actor's poll set beside the pipe
    and the gateway socket, so no thread is ever blocked on a request.
    Control-plane calls are answered on the spot through core/api; invoke
    and gateway calls are sent to the gateway actor while the connection is
    suspended, and resumed when the REPLY comes back.

    Started with actor_args_t (core/config.h). Pipe commands:
        zstr_send (http, "PORT");       //  answers the bound TCP port, e.g. "8000"
        zstr_send (http, "PING");       //  answers "PONG"
    $TERM stops accepting, lets requests in flight finish (up to 10 s), then
    stops. The actor signals 0 once it listens, -1 if it could not start.
    ========================================================================= */

#ifndef CLOWDY_HTTP_H_INCLUDED
#define CLOWDY_HTTP_H_INCLUDED

#include <czmq.h>

void
    http_actor (zsock_t *pipe, void *args);

void
    http_test (bool verbose);

#endif
