/*  =========================================================================
    agent - the AI assistant with tool calling

    Serves a ROUTER at the "agent" endpoint. From http it takes CHAT (a
    `POST /api/chat` from an authenticated user, parked by http with a
    deadline) and CANCEL (the client went away, or http's deadline
    passed); it answers each CHAT with one ANSWER: 200 `{response,
    tool_calls: [{tool, args, result, ok}], steps}`, or an error status
    with `{detail, tool_calls}` (see the design note in agent.c); a chat
    that asked for `stream: true` also gets EVENTs as it goes. The model
    calls and the tools run on the agent's runner threads, never on its
    loop. See broker/PROTOCOL.md.

    Started with actor_args_t (core/config.h); the --ai-* options configure
    it. Pipe commands:
        zstr_send (agent, "PING");      //  answers "PONG"
    ========================================================================= */

#ifndef CLOWDY_AGENT_H_INCLUDED
#define CLOWDY_AGENT_H_INCLUDED

#include <czmq.h>

void
    agent_actor (zsock_t *pipe, void *args);

void
    agent_test (bool verbose);

#endif
