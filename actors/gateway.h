/*  =========================================================================
    gateway - turns HTTP calls into function runs and their results into
    HTTP replies

    Serves a ROUTER at the "gateway" endpoint. From http it takes INVOKE
    (direct invoke by function id, or a project gateway call by slug and
    path) and INVALIDATE (a write changed a function, a project's env vars
    or its routes). It keeps an in-memory cache of function contexts and of
    each project's compiled route table, asks assignment for a run (RUN),
    maps the RESULT back to an HTTP reply (REPLY), and sends the invocation
    record to the recorder. See broker/PROTOCOL.md.

    Started with actor_args_t (core/config.h). Pipe commands:
        zstr_send (gateway, "PING");    //  answers "PONG"
    ========================================================================= */

#ifndef CLOWDY_GATEWAY_H_INCLUDED
#define CLOWDY_GATEWAY_H_INCLUDED

#include <czmq.h>

void
    gateway_actor (zsock_t *pipe, void *args);

void
    gateway_test (bool verbose);

#endif
