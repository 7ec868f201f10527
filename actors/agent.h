/*  =========================================================================
    agent - the AI assistant with tool calling

    Pipe commands (besides $TERM):
        zstr_send (actor, "PING");      // answers "PONG"
    ========================================================================= */

#ifndef CLOWDY_AGENT_H_INCLUDED
#define CLOWDY_AGENT_H_INCLUDED

#include <czmq.h>

void
    agent_actor (zsock_t *pipe, void *args);

void
    agent_test (bool verbose);

#endif
