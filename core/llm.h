/*  =========================================================================
    llm - one call to an OpenAI-compatible chat completions API

    The assistant's wire format, and nothing else: build the request body
    (model, messages, tools), POST it with libcurl under a connect timeout,
    a total timeout and a reply-size cap, and read the reply into the
    assistant message with its tool calls, or into a sentence a user can
    read and the HTTP status to answer with. Blocking: call it from a
    helper thread, never from an actor's loop.

        llm_call_t call = { .base_url = "https://api.groq.com/openai/v1",
                            .model = "...", .api_key = key, .timeout_ms = 30000 };
        llm_reply_t reply = { 0 };
        if (llm_complete (&call, messages, tools, &reply) == 0)
            ... reply.content, reply.tool_calls [{id, name, arguments}] ...
        else
            ... reply.status (502, 503, 504), reply.detail ...
        llm_reply_reset (&reply);
    ========================================================================= */

#ifndef CLOWDY_LLM_H_INCLUDED
#define CLOWDY_LLM_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#define LLM_REPLY_MAX (4 * 1024 * 1024)     //  Largest reply body we read

typedef struct {
    const char *base_url;           //  e.g. https://api.groq.com/openai/v1 (we add /chat/completions)
    const char *model;              //  Model name
    const char *api_key;            //  Bearer key, or NULL/"" for none (local servers)
    long timeout_ms;                //  Whole call, connect included (connect: 10 s at most)
    volatile int *cancel;           //  Non-zero (set by another thread) aborts the call, or NULL
    bool stream;                    //  Ask for a streamed reply (server-sent events)
    void (*on_delta) (const char *text, void *arg);  //  Streamed: each piece of text as it comes
    void *delta_arg;                //  Its argument
} llm_call_t;

typedef struct {
    //  Success
    char *content;                  //  The assistant's text, or NULL
    cJSON *tool_calls;              //  [{id, name, arguments (JSON text)}], never NULL on success
    //  Failure
    int status;                     //  HTTP status for our client: 502, 503 (rate limited), 504,
                                    //  or 499 when cancelled
    char *detail;                   //  A sentence for the user
    long retry_after;               //  Seconds (from a 429), or 0
} llm_reply_t;

//  The request body: {model, messages, tools, tool_choice: "auto", stream?}
//  (tools left out when NULL or empty). Caller frees.
char *
    llm_request_body (const char *model, cJSON *messages, cJSON *tools, bool stream);

//  Read a reply (HTTP status, body, the Retry-After header in seconds as
//  libcurl read it, or 0) into reply. Returns 0 for a usable assistant
//  message, else -1 with status and detail set.
int
    llm_parse_reply (long http_status, const char *body, size_t size, long retry_after,
                     llm_reply_t *reply);

//  Read a streamed reply (the server-sent events of a 200 with stream:
//  true): text deltas are joined, tool calls split over several deltas are
//  joined by their index, `data: [DONE]` ends it. 0 or -1, as above.
int
    llm_parse_stream (const char *text, size_t size, llm_reply_t *reply);

//  The assistant message to echo back into the conversation, as the wire
//  format wants it: {role: "assistant", content, tool_calls: [{id, type:
//  "function", function: {name, arguments}}]}. Caller deletes.
cJSON *
    llm_assistant_message (const llm_reply_t *reply);

//  POST the request and read the reply. 0 or -1, as llm_parse_reply.
int
    llm_complete (const llm_call_t *call, cJSON *messages, cJSON *tools, llm_reply_t *reply);

//  Free the reply's fields and zero it.
void
    llm_reply_reset (llm_reply_t *reply);

void
    llm_test (bool verbose);

#endif
