/*  =========================================================================
    tools - what the assistant's model may do, as the calling user

    Each tool is a REST call run through api_handle with the calling user's
    id, so it takes the same code path and the same ownership checks as the
    UI: no tool reaches another user's objects. invoke_function asks the
    gateway to run the function (INVOKE of kind `agent`), so the call runs
    and is recorded like any other, with source `agent`. Blocking: run it
    on a helper thread with its own store connection.

        tools_context_t context = { .api = api, .gateway = dealer, .user_id = "alice",
                                    .deadline = zclock_mono () + 30000 };
        bool failed;
        cJSON *result = tools_call (&context, "get_function", "{\"function_id\":\"...\"}", &failed);
        cJSON *schemas = tools_schemas ();     //  the request's `tools`
    ========================================================================= */

#ifndef CLOWDY_TOOLS_H_INCLUDED
#define CLOWDY_TOOLS_H_INCLUDED

#include <czmq.h>
#include <cjson/cJSON.h>
#include "broker/msg.h"
#include "core/api.h"

#define TOOLS_RESULT_MAX 12000      //  Bytes of a result's JSON shown to the model and the user

typedef struct {
    api_t *api;                     //  Handlers over the caller's thread's store
    zsock_t *gateway;               //  DEALER to the gateway (invoke), or NULL
    msg_outbox_t *invalidates;      //  INVALIDATEs to the gateway, kept in order; or NULL
    const char *user_id;            //  The user the tools act as
    int64_t deadline;               //  zclock_mono () when the chat's time is up
    volatile int *cancel;           //  Non-zero (set by another thread): stop waiting, or NULL
} tools_context_t;

//  The tools as the chat completions API wants them: [{type: "function",
//  function: {name, description, parameters}}]. Caller deletes.
cJSON *
    tools_schemas (void);

//  Run one tool call. arguments is the JSON text the model wrote. Returns
//  the result (caller deletes): the API's reply on success, or {error,
//  status?} when the call failed (malformed arguments, unknown tool, an
//  API error, a function that failed); *failed says which. Secret env var
//  values never appear in it.
cJSON *
    tools_call (tools_context_t *context, const char *name, const char *arguments, bool *failed);

//  The result as the text the model reads: JSON, cut at TOOLS_RESULT_MAX
//  bytes with a note. Caller frees.
char *
    tools_result_text (cJSON *result);

//  A result (or any JSON) made to fit in max bytes of unformatted JSON,
//  keeping its shape so a reader still finds its fields: a long string
//  keeps its start, then " ... [cut: N more bytes]" (the model's note);
//  a list or an object that would not fit keeps its first entries, then a
//  note of how many were left out (a string "[cut: N more items]" in a
//  list, a member "...": "[cut: N more fields]" in an object). Strings
//  are cut shorter, pass by pass, while that lets more entries stay. What
//  still does not fit becomes a string: its JSON text, cut. Takes json,
//  returns what to show (caller deletes); *cut says whether anything was
//  left out.
//      cJSON *shown = tools_result_bound (result, TOOLS_RESULT_MAX, &cut);
cJSON *
    tools_result_bound (cJSON *json, size_t max, bool *cut);

void
    tools_test (bool verbose);

#endif
