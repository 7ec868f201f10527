/*  =========================================================================
    agent - the AI assistant with tool calling

    A chat message becomes a loop on a runner thread: ask the model (any
    OpenAI-compatible chat completions API, core/llm), run the tool calls it
    asks for as the calling user (core/tools: the REST API's own handlers
    and ownership checks, invokes through the gateway), hand the results
    back, and ask again, until the model answers in plain text, or the loop
    hits --ai-max-steps model calls, or the chat's --ai-timeout budget runs
    out, or the client goes away (CANCEL). Every tool call that ran is in
    the reply, in order, failed ones included, so nothing half-done is
    hidden whatever ends the loop.

    Sizes. A tool's result can be large (a function's code is up to 1 MiB,
    a list holds many), and a model may ask for 64 calls a turn: kept
    whole, a small model reply made replies of hundreds of MB. So each
    result is cut once, to TOOLS_RESULT_MAX bytes of JSON of the same shape
    (tools_result_bound), and that one copy is what the model reads and
    what the reply and its `tool` event list (result_truncated: true when
    cut; args are cut the same way). The entries listed whole stop at
    AGENT_CALLS_BYTES of JSON a chat: later calls are still listed, in
    order, with their args cut to AGENT_ARGS_SHORT and a note for result.

    Threads. The actor's own loop only routes: CHAT goes to an idle runner
    (or waits in a short queue; past that, 503 with Retry-After), the
    runner's answer goes back to http as ANSWER, CANCEL sets the runner's
    cancel flag (checked by curl's progress callback, between steps, and
    while an invoke waits). Each runner owns its store connection, its api
    handlers and its DEALER to the gateway, and blocks freely: that is what
    it is for. AGENT_RUNNERS chats run at once.

    What the client gets (documented in the README's "Assistant"):
        200  {response, tool_calls, steps}: the model's answer; when the
             step limit ended the loop, response says so. tool_calls:
             [{tool, args, result, ok, args_truncated?, result_truncated?}]
        422  the body is not {messages: [{role: user|assistant, content}]}
        503  not configured (detail says how), busy (Retry-After), or the
             provider rate-limits (its Retry-After passed on)
        502  the provider failed: unreachable, 401, 4xx (Groq's
             tool_use_failed named), 5xx, empty or non-JSON reply, a reply
             over the size cap
        504  the time budget ran out
    Every error body is {detail, tool_calls}: tool_calls lists what ran
    before the fault. With `stream: true` the provider is asked to stream,
    and the runner sends EVENTs as it goes (`delta` per piece of text,
    `tool` per tool call that ran); http turns them, and the ANSWER that
    ends the chat, into server-sent events.
    ========================================================================= */

#include <curl/curl.h>
#include "actors/agent.h"
#include "broker/actor.h"
#include "broker/endpoints.h"
#include "broker/msg.h"
#include "core/api.h"
#include "core/auth.h"
#include "core/config.h"
#include "core/llm.h"
#include "core/store.h"
#include "core/tokens.h"
#include "core/tools.h"
#include "core/util.h"

#define AGENT_RUNNERS       4           //  Chats at once
#define AGENT_QUEUE_MAX     16          //  Chats waiting for a runner before 503
#define AGENT_MESSAGES_MAX  200         //  Messages in one chat request
#define AGENT_CONTENT_MAX   100000      //  Bytes in one message
#define AGENT_CALLS_BYTES   (1024 * 1024)   //  JSON of a reply's tool_calls listed whole
#define AGENT_ARGS_SHORT    256         //  Bytes of JSON of args past AGENT_CALLS_BYTES
#define AGENT_NAME_MAX      128         //  Bytes of JSON of a tool's name as listed

static const char *s_system_prompt =
    "You are the assistant of Clowdy, a serverless platform for Python functions. You act for the "
    "signed-in user through tools: create, inspect, invoke, update, roll back and delete their "
    "functions; manage projects, HTTP routes, environment variables and requirements. A function's "
    "code defines handler(input) (or handler(event, context)) and returns a JSON-serialisable value; "
    "print() output goes to its logs. When you write or change a function, invoke it to test it; "
    "if it fails, read the error (and list_invocations for logs), fix the code with update_function "
    "and invoke it again. Use ids exactly as tools return them. Never show secret values. When done, "
    "answer briefly in plain text: what you did and the result.";

typedef struct {
    const config_t *config;         //  Settings (not owned)
    endpoints_t *endpoints;         //  Where the gateway is (not owned)
    zactor_t *actor;                //  The runner thread
    char *request_id;               //  The chat it runs, or NULL when idle
    zframe_t *route;                //  http's routing id for the ANSWER
    volatile int cancel;            //  Set by the actor: stop this chat
} runner_t;

typedef struct {
    zsock_t *pipe;                  //  Actor command pipe
    const config_t *config;         //  Settings (not owned)
    zsock_t *frontend;              //  ROUTER for http
    runner_t runners [AGENT_RUNNERS];   //  The chat threads
    zlistx_t *queue;                //  msg_t CHAT waiting for a runner
    zpoller_t *poller;              //  pipe, frontend, runners
    bool configured;                //  A model provider is set
    bool terminated;                //  Did caller ask us to quit?
} self_t;

//  --------------------------------------------------------------------------
//  The chat request and the reply (pure: tested in the selftest)

//  The conversation of a POST /api/chat body: [{role, content}] with roles
//  user and assistant only (a client cannot speak as the system or as a
//  tool). NULL on bad input, with *error set to the 422 body's detail list.
static cJSON *
s_conversation (const byte *body, size_t size, cJSON **error, bool *stream)
{
    *error = NULL;
    *stream = false;
    const char *problem = NULL;
    const char *field = "messages";
    cJSON *json = size ? util_json_parse ((const char *) body, size) : NULL;
    cJSON *messages = cJSON_GetObjectItem (json, "messages");
    int count = cJSON_GetArraySize (messages);
    if (!cJSON_IsObject (json))
        problem = "The body should be a JSON object {\"messages\": [{\"role\", \"content\"}]}", field = NULL;
    else
    if (!cJSON_IsArray (messages) || count == 0)
        problem = "messages should be a non-empty list of {role, content}";
    else
    if (count > AGENT_MESSAGES_MAX)
        problem = "messages holds too many entries (at most 200)";
    *stream = cJSON_IsTrue (cJSON_GetObjectItem (json, "stream"));
    cJSON *conversation = cJSON_CreateArray ();
    cJSON *message;
    cJSON *list = problem ? NULL : messages;
    cJSON_ArrayForEach (message, list) {
        const char *role = cJSON_GetStringValue (cJSON_GetObjectItem (message, "role"));
        const char *content = cJSON_GetStringValue (cJSON_GetObjectItem (message, "content"));
        if (!role || (strneq (role, "user") && strneq (role, "assistant"))) {
            problem = "Each message's role should be 'user' or 'assistant'";
            break;
        }
        if (!content || strlen (content) > AGENT_CONTENT_MAX) {
            problem = "Each message's content should be a string of at most 100000 bytes";
            break;
        }
        cJSON *copy = cJSON_CreateObject ();
        cJSON_AddStringToObject (copy, "role", role);
        cJSON_AddStringToObject (copy, "content", content);
        cJSON_AddItemToArray (conversation, copy);
    }
    cJSON_Delete (json);
    if (!problem)
        return conversation;
    cJSON_Delete (conversation);
    *error = cJSON_CreateArray ();
    cJSON *item = cJSON_CreateObject ();
    cJSON *loc = cJSON_AddArrayToObject (item, "loc");
    cJSON_AddItemToArray (loc, cJSON_CreateString ("body"));
    if (field)
        cJSON_AddItemToArray (loc, cJSON_CreateString (field));
    cJSON_AddStringToObject (item, "msg", problem);
    cJSON_AddStringToObject (item, "type", "value_error");
    cJSON_AddItemToArray (*error, item);
    return NULL;
}

//  The messages sent to the model: our system prompt, then the conversation
static cJSON *
s_model_messages (cJSON *conversation)
{
    cJSON *messages = cJSON_CreateArray ();
    cJSON *system = cJSON_CreateObject ();
    cJSON_AddStringToObject (system, "role", "system");
    cJSON_AddStringToObject (system, "content", s_system_prompt);
    cJSON_AddItemToArray (messages, system);
    cJSON *message;
    cJSON_ArrayForEach (message, conversation)
        cJSON_AddItemToArray (messages, cJSON_Duplicate (message, true));
    return messages;
}

//  One entry of the reply's tool_calls: {tool, args, result, ok}, with
//  args_truncated, result_truncated: true when either was cut. args is
//  the parsed object, or the text as the model wrote it when it does not
//  parse. whole: args cut to TOOLS_RESULT_MAX bytes of JSON like the
//  result (which the caller cut: result_cut says whether it was); else
//  args cut to AGENT_ARGS_SHORT and a note in place of the result. The
//  tool's name is cut to AGENT_NAME_MAX. Takes result (or NULL).
static cJSON *
s_entry_new (const char *name, const char *arguments, cJSON *result, bool failed, bool result_cut, bool whole)
{
    cJSON *args = arguments ? cJSON_Parse (arguments) : NULL;
    if (!args)
        args = cJSON_CreateString (arguments ? arguments : "");
    bool args_cut, name_cut;
    args = tools_result_bound (args, whole ? TOOLS_RESULT_MAX : AGENT_ARGS_SHORT, &args_cut);
    if (!whole) {
        cJSON_Delete (result);
        result = cJSON_CreateString ("[cut: left out, the chat's tool calls are over their limit]");
        result_cut = true;
    }
    cJSON *entry = cJSON_CreateObject ();
    cJSON_AddItemToObject (entry, "tool", tools_result_bound (cJSON_CreateString (name ? name : ""),
                                                              AGENT_NAME_MAX, &name_cut));
    cJSON_AddItemToObject (entry, "args", args);
    if (args_cut)
        cJSON_AddBoolToObject (entry, "args_truncated", true);
    cJSON_AddItemToObject (entry, "result", result ? result : cJSON_CreateNull ());
    if (result_cut)
        cJSON_AddBoolToObject (entry, "result_truncated", true);
    cJSON_AddBoolToObject (entry, "ok", !failed);
    return entry;
}

//  The entry of a tool call that ran, within the chat's AGENT_CALLS_BYTES
//  of tool_calls (*room is what is left of them): whole while it fits;
//  from the first that does not, every entry is short (its result left
//  out), so however many calls a model asks for, the reply stays small
//  and still lists them all, in order. Takes result.
static cJSON *
s_tool_entry (const char *name, const char *arguments, cJSON *result, bool failed, bool result_cut,
              size_t *room)
{
    if (*room > 0) {
        cJSON *entry = s_entry_new (name, arguments, result, failed, result_cut, true);
        char *text = cJSON_PrintUnformatted (entry);
        bool fits = text && strlen (text) <= *room;
        size_t size = text ? strlen (text) : 0;
        free (text);
        if (fits) {
            *room -= size;
            return entry;
        }
        cJSON_Delete (entry);
        *room = 0;
        result = NULL;
    }
    return s_entry_new (name, arguments, result, failed, true, false);
}

//  The model's turn's tool message: {role: "tool", tool_call_id, content}
static cJSON *
s_tool_message (const char *call_id, cJSON *result)
{
    cJSON *message = cJSON_CreateObject ();
    cJSON_AddStringToObject (message, "role", "tool");
    cJSON_AddStringToObject (message, "tool_call_id", call_id);
    char *text = tools_result_text (result);
    cJSON_AddStringToObject (message, "content", text);
    free (text);
    return message;
}

//  An ANSWER's headers: JSON, a Bearer challenge on 401, and Retry-After when
//  retry_after > 0 (seconds). Caller frees.
static char *
s_answer_headers (int status, long retry_after)
{
    cJSON *headers = cJSON_CreateObject ();
    cJSON_AddStringToObject (headers, "Content-Type", "application/json");
    if (status == 401)
        cJSON_AddStringToObject (headers, "WWW-Authenticate", "Bearer");
    if (retry_after > 0) {
        char seconds [32];
        snprintf (seconds, sizeof seconds, "%ld", retry_after);
        cJSON_AddStringToObject (headers, "Retry-After", seconds);
    }
    char *text = cJSON_PrintUnformatted (headers);
    cJSON_Delete (headers);
    return text;
}

//  --------------------------------------------------------------------------
//  The loop, on a runner thread

typedef struct {
    int status;                     //  HTTP status
    cJSON *body;                    //  Reply body
    long retry_after;               //  Seconds for a Retry-After header, or 0
} s_outcome_t;

//  Where a streamed chat's progress goes: the runner's pipe, as EVENT (the
//  actor forwards it to http)
typedef struct {
    zsock_t *pipe;                  //  The runner's pipe
    const char *request_id;         //  The chat
    bool stream;                    //  The client asked for stream: true
} s_events_t;

static void
s_event (s_events_t *events, const char *name, cJSON *data)
{
    if (!events->stream)
        return;
    char *text = cJSON_PrintUnformatted (data);
    if (msg_send_event (events->pipe, NULL, events->request_id, name, text))
        zsys_warning ("agent: chat %s: could not pass on a %s event", events->request_id, name);
    free (text);
}

static void
s_on_delta (const char *text, void *arg)
{
    cJSON *data = cJSON_CreateObject ();
    cJSON_AddStringToObject (data, "content", text);
    s_event ((s_events_t *) arg, "delta", data);
    cJSON_Delete (data);
}

//  The answer: {response, tool_calls, steps} (and step_limit: true when the
//  limit ended the loop). Takes calls.
static void
s_succeed (s_outcome_t *outcome, const char *response, cJSON *calls, long steps, bool step_limit)
{
    outcome->status = 200;
    outcome->body = cJSON_CreateObject ();
    cJSON_AddStringToObject (outcome->body, "response", response);
    cJSON_AddItemToObject (outcome->body, "tool_calls", calls);
    cJSON_AddNumberToObject (outcome->body, "steps", (double) steps);
    if (step_limit)
        cJSON_AddBoolToObject (outcome->body, "step_limit", true);
}

//  A fault: {detail, tool_calls}. Takes calls.
static void
s_fail (s_outcome_t *outcome, int status, const char *detail, cJSON *calls)
{
    outcome->status = status;
    outcome->body = cJSON_CreateObject ();
    cJSON_AddStringToObject (outcome->body, "detail", detail);
    cJSON_AddItemToObject (outcome->body, "tool_calls", calls ? calls : cJSON_CreateArray ());
}

static void
s_chat (runner_t *runner, api_t *api, zsock_t *gateway, msg_outbox_t *invalidates, cJSON *tools,
        const char *user_id, const byte *body, size_t size, s_events_t *events, s_outcome_t *outcome)
{
    const config_t *config = runner->config;
    int64_t deadline = zclock_mono () + config->ai_timeout * 1000;
    cJSON *error;
    cJSON *conversation = s_conversation (body, size, &error, &events->stream);
    if (!conversation) {
        outcome->status = 422;
        outcome->body = cJSON_CreateObject ();
        cJSON_AddItemToObject (outcome->body, "detail", error);
        return;
    }
    cJSON *messages = s_model_messages (conversation);
    cJSON_Delete (conversation);
    cJSON *calls = cJSON_CreateArray ();
    size_t room = AGENT_CALLS_BYTES;    //  What is left of it for calls listed whole
    tools_context_t context = {
        .api = api, .gateway = gateway, .invalidates = invalidates, .user_id = user_id,
        .deadline = deadline, .cancel = &runner->cancel
    };
    llm_call_t call = {
        .base_url = config->ai_base_url, .model = config->ai_model, .api_key = config->ai_api_key,
        .cancel = &runner->cancel, .stream = events->stream, .on_delta = s_on_delta, .delta_arg = events
    };
    llm_reply_t reply = { 0 };
    long steps = 0;
    while (true) {
        char detail [512];
        if (__atomic_load_n (&runner->cancel, __ATOMIC_RELAXED)) {
            s_fail (outcome, 499, "The chat was stopped", calls);
            break;
        }
        if (steps >= config->ai_max_steps) {
            snprintf (detail, sizeof detail, "I stopped after %ld steps (the server's limit, --ai-max-steps) "
                      "before I was done. The tool calls so far are listed; ask me to continue.", steps);
            s_succeed (outcome, detail, calls, steps, true);
            break;
        }
        int64_t left = deadline - zclock_mono ();
        if (left <= 0) {
            snprintf (detail, sizeof detail, "The assistant ran out of its %ld s time budget (--ai-timeout) "
                      "after %ld steps; the tool calls so far are listed", config->ai_timeout, steps);
            s_fail (outcome, 504, detail, calls);
            break;
        }
        call.timeout_ms = (long) left;
        steps++;
        if (llm_complete (&call, messages, tools, &reply)) {
            outcome->retry_after = reply.retry_after;
            s_fail (outcome, reply.status, reply.detail, calls);
            break;
        }
        int count = cJSON_GetArraySize (reply.tool_calls);
        if (count == 0) {
            s_succeed (outcome, reply.content ? reply.content : "", calls, steps, false);
            break;
        }
        //  The assistant's turn goes back as it was, then one answer per call
        cJSON_AddItemToArray (messages, llm_assistant_message (&reply));
        cJSON *tool_call;
        cJSON_ArrayForEach (tool_call, reply.tool_calls) {
            //  A stop or the end of the budget ends the turn before the next
            //  call runs (the loop's top then answers); nothing more starts
            if (__atomic_load_n (&runner->cancel, __ATOMIC_RELAXED) || zclock_mono () >= deadline)
                break;
            const char *id = cJSON_GetStringValue (cJSON_GetObjectItem (tool_call, "id"));
            const char *name = cJSON_GetStringValue (cJSON_GetObjectItem (tool_call, "name"));
            const char *arguments = cJSON_GetStringValue (cJSON_GetObjectItem (tool_call, "arguments"));
            bool failed, cut;
            cJSON *result = tools_call (&context, name, arguments, &failed);
            //  The model and the user see the same result, cut the same way
            result = tools_result_bound (result, TOOLS_RESULT_MAX, &cut);
            cJSON_AddItemToArray (messages, s_tool_message (id, result));
            cJSON *entry = s_tool_entry (name, arguments, result, failed, cut, &room);
            s_event (events, "tool", entry);
            cJSON_AddItemToArray (calls, entry);
        }
    }
    llm_reply_reset (&reply);
    cJSON_Delete (messages);
}

//  The runner thread: takes CHAT on its pipe; sends EVENT as a streamed chat
//  goes, and ends it with ANSWER (the same messages, as declared in
//  broker/msg_defs.h, as between http and the agent)
static void
s_runner (zsock_t *pipe, void *args)
{
    runner_t *runner = (runner_t *) args;
    store_t *store = store_open (runner->config->data_dir);
    api_t *api = store ? api_new (store) : NULL;
    if (api) {
        api_set_limits (api, (int) runner->config->max_memory_mb, (int) runner->config->max_timeout_seconds);
        api_set_quotas (api, runner->config);
    }
    zsock_t *gateway = endpoints_connect (runner->endpoints, "gateway", ZMQ_DEALER);
    msg_outbox_t *invalidates = gateway ? msg_outbox_new (gateway, MSG_OUTBOX_LIMIT) : NULL;
    //  A chat with an API token is checked here, in the store, as the
    //  control-plane threads do: never on http's loop
    cJSON *tools = tools_schemas ();
    if (api && gateway)
        actor_ready (pipe);
    else
        actor_failed (pipe, "a chat thread could not open the store at %s", runner->config->data_dir);
    bool terminated = !(api && gateway);
    while (!terminated) {
        msg_t *request = msg_recv_pipe (pipe, &terminated);
        if (!request || msg_id (request) != MSG_ID_CHAT) {
            msg_destroy (&request);
            continue;
        }
        const char *request_id = msg_chat_request_id (request);
        const char *authorization = msg_chat_authorization (request);
        size_t body_size;
        const byte *body = msg_chat_body (request, &body_size);
        s_outcome_t outcome = { 0 };
        s_events_t events = { .pipe = pipe, .request_id = request_id };
        char user [AUTH_USER_ID_SIZE];
        const char *detail = NULL;
        if (*authorization && tokens_check_header (store, authorization, user, sizeof user, &detail)) {
            outcome.status = 401;
            outcome.body = cJSON_CreateObject ();
            cJSON_AddStringToObject (outcome.body, "detail", detail);
        }
        else
            s_chat (runner, api, gateway, invalidates, tools, *authorization ? user : msg_chat_user_id (request), body,
                    body_size, &events, &outcome);
        char *headers_text = s_answer_headers (outcome.status, outcome.retry_after);
        char *body_text = cJSON_PrintUnformatted (outcome.body);
        if (msg_send_answer (pipe, NULL, request_id, outcome.status, headers_text, body_text, strlen (body_text)))
            zsys_error ("agent: chat %s: could not pass on its answer", request_id);
        free (headers_text);
        free (body_text);
        cJSON_Delete (outcome.body);
        msg_destroy (&request);
    }
    cJSON_Delete (tools);
    msg_outbox_destroy (&invalidates);
    zsock_destroy (&gateway);
    api_destroy (&api);
    store_destroy (&store);
}

//  --------------------------------------------------------------------------
//  The actor: routes chats to runners and answers back to http

static void
s_answer (self_t *self, zframe_t *route, const char *request_id, int status, const char *detail,
          long retry_after)
{
    char *headers_text = s_answer_headers (status, retry_after);
    char *body = api_detail_json (detail);
    if (msg_send_answer (self->frontend, route, request_id, status, headers_text, body, strlen (body)))
        zsys_error ("agent: could not send the %d answer for chat %s to http", status, request_id);
    free (body);
    free (headers_text);
}

static void
s_start_chat (self_t *self, runner_t *runner, msg_t *msg)
{
    size_t size;
    const byte *body = msg_chat_body (msg, &size);
    runner->request_id = strdup (msg_chat_request_id (msg));
    runner->route = zframe_dup (msg_route (msg));
    __atomic_store_n (&runner->cancel, 0, __ATOMIC_RELAXED);
    //  Cannot fail: the runner is idle and its pipe empty
    msg_send_chat (zactor_sock (runner->actor), NULL, runner->request_id, msg_chat_user_id (msg), body, size,
                   msg_chat_authorization (msg));
}

static runner_t *
s_idle_runner (self_t *self)
{
    for (int index = 0; index < AGENT_RUNNERS; index++)
        if (self->runners [index].actor && !self->runners [index].request_id)
            return &self->runners [index];
    return NULL;
}

static void
s_handle_frontend (self_t *self)
{
    msg_t *msg = msg_recv (self->frontend, true);
    if (!msg)
        return;
    if (msg_id (msg) == MSG_ID_CHAT) {
        runner_t *runner = self->configured ? s_idle_runner (self) : NULL;
        if (!self->configured)
            s_answer (self, msg_route (msg), msg_chat_request_id (msg), 503,
                      "The AI assistant is not configured on this server. Start it with --ai-api-key KEY "
                      "(or CLOWDY_AI_API_KEY or GROQ_API_KEY) for Groq, or --ai-base-url URL (and "
                      "--ai-model NAME) for another OpenAI-compatible provider such as OpenAI, Ollama, "
                      "llama.cpp's server or vLLM", 0);
        else
        if (runner)
            s_start_chat (self, runner, msg);
        else
        if (zlistx_size (self->queue) < AGENT_QUEUE_MAX) {
            zlistx_add_end (self->queue, msg);
            msg = NULL;
        }
        else
            s_answer (self, msg_route (msg), msg_chat_request_id (msg), 503,
                      "The AI assistant is busy with other chats; try again shortly", 5);
    }
    else
    if (msg_id (msg) == MSG_ID_CANCEL) {
        const char *request_id = msg_cancel_request_id (msg);
        for (int index = 0; index < AGENT_RUNNERS; index++) {
            runner_t *runner = &self->runners [index];
            if (runner->request_id && streq (runner->request_id, request_id))
                __atomic_store_n (&runner->cancel, 1, __ATOMIC_RELAXED);
        }
        for (msg_t *queued = (msg_t *) zlistx_first (self->queue); queued;
             queued = (msg_t *) zlistx_next (self->queue))
            if (streq (msg_chat_request_id (queued), request_id)) {
                zlistx_delete (self->queue, zlistx_cursor (self->queue));
                break;
            }
    }
    else
        zsys_warning ("agent: unexpected '%s' from http", msg_command (msg));
    msg_destroy (&msg);
}

static void
s_handle_runner (self_t *self, runner_t *runner)
{
    msg_t *msg = msg_recv (zactor_sock (runner->actor), false);
    if (!msg)
        return;
    //  Cancelled chats are answered by http already: what they say is dropped
    bool current = runner->request_id && !runner->cancel;
    if (msg_id (msg) == MSG_ID_EVENT) {
        //  A streamed chat's progress: on to http, the chat goes on
        if (current && streq (msg_event_request_id (msg), runner->request_id)
        &&  msg_send_event (self->frontend, runner->route, runner->request_id, msg_event_name (msg),
                            msg_event_data_text (msg)))
            zsys_warning ("agent: could not send a %s event for chat %s to http", msg_event_name (msg),
                          runner->request_id);
        msg_destroy (&msg);
        return;
    }
    if (msg_id (msg) != MSG_ID_ANSWER) {
        zsys_warning ("agent: unexpected '%s' from a chat thread", msg_command (msg));
        msg_destroy (&msg);
        return;
    }
    size_t size;
    const byte *body = msg_answer_body (msg, &size);
    if (current && streq (msg_answer_request_id (msg), runner->request_id)
    &&  msg_send_answer (self->frontend, runner->route, runner->request_id, msg_answer_status (msg),
                         msg_answer_headers_text (msg), body, size))
        zsys_error ("agent: could not send the answer for chat %s to http", runner->request_id);
    msg_destroy (&msg);
    zstr_free (&runner->request_id);
    zframe_destroy (&runner->route);
    msg_t *next = (msg_t *) zlistx_first (self->queue);
    if (next) {
        s_start_chat (self, runner, next);
        zlistx_delete (self->queue, zlistx_cursor (self->queue));
    }
}

static void
s_self_handle_pipe (self_t *self)
{
    char *command = zstr_recv (self->pipe);
    if (!command) {
        self->terminated = true;    //  Interrupted
        return;
    }
    if (streq (command, "$TERM"))
        self->terminated = true;
    else
    if (streq (command, "PING"))
        zstr_send (self->pipe, "PONG");
    else
        zsys_warning ("agent: invalid pipe command '%s'", command);
    zstr_free (&command);
}

static void
s_self_destroy (self_t **self_p)
{
    self_t *self = *self_p;
    if (self) {
        //  Stop the chats in flight first, so each runner ends quickly
        for (int index = 0; index < AGENT_RUNNERS; index++)
            __atomic_store_n (&self->runners [index].cancel, 1, __ATOMIC_RELAXED);
        for (int index = 0; index < AGENT_RUNNERS; index++) {
            zactor_destroy (&self->runners [index].actor);
            zstr_free (&self->runners [index].request_id);
            zframe_destroy (&self->runners [index].route);
        }
        zpoller_destroy (&self->poller);
        zlistx_destroy (&self->queue);
        zsock_destroy (&self->frontend);
        free (self);
        *self_p = NULL;
    }
}

static void
s_queued_destroy (void **item)
{
    msg_destroy ((msg_t **) item);
}

static self_t *
s_self_new (zsock_t *pipe, const actor_args_t *args)
{
    self_t *self = (self_t *) zmalloc (sizeof (self_t));
    self->pipe = pipe;
    self->config = args->config;
    //  A key, or a provider of one's own (a local server needs no key)
    self->configured = config_ai_configured (self->config);
    self->queue = zlistx_new ();
    zlistx_set_destructor (self->queue, s_queued_destroy);
    self->frontend = endpoints_bind (args->endpoints, "agent", ZMQ_ROUTER);
    if (!self->frontend) {
        zsys_error ("agent: cannot bind its endpoint %s", endpoints_get (args->endpoints, "agent"));
        s_self_destroy (&self);
        return NULL;
    }
    self->poller = zpoller_new (pipe, self->frontend, NULL);
    curl_global_init (CURL_GLOBAL_DEFAULT);
    for (int index = 0; index < AGENT_RUNNERS && self->configured; index++) {
        runner_t *runner = &self->runners [index];
        runner->config = args->config;
        runner->endpoints = args->endpoints;
        char *reason = NULL;
        runner->actor = actor_start (s_runner, runner, "agent runner", &reason);
        if (!runner->actor) {
            zsys_error ("agent: %s", reason ? reason : "a chat thread did not start");
            zstr_free (&reason);
            s_self_destroy (&self);
            return NULL;
        }
        zpoller_add (self->poller, runner->actor);
    }
    return self;
}

void
agent_actor (zsock_t *pipe, void *args)
{
    self_t *self = s_self_new (pipe, (const actor_args_t *) args);
    if (!self) {
        actor_failed (pipe, "cannot bind its endpoint or start its chat threads (see the log above)");
        return;
    }
    if (self->configured)
        zsys_info ("agent: assistant uses %s at %s", self->config->ai_model, self->config->ai_base_url);
    actor_ready (pipe);
    while (!self->terminated) {
        void *which = zpoller_wait (self->poller, -1);
        if (which == pipe)
            s_self_handle_pipe (self);
        else
        if (which == self->frontend)
            s_handle_frontend (self);
        else
        if (which) {
            for (int index = 0; index < AGENT_RUNNERS; index++)
                if (which == self->runners [index].actor)
                    s_handle_runner (self, &self->runners [index]);
        }
        else
        if (zpoller_terminated (self->poller))
            break;
    }
    s_self_destroy (&self);
}

//  --------------------------------------------------------------------------
//  Selftest: the request and reply shapes, and the actor's answers

void
agent_test (bool verbose)
{
    printf ("agent: ");
    //  The conversation: roles user and assistant only, content a string
    cJSON *error;
    bool stream;
    const char *good = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\",\"extra\":1},"
                       "{\"role\":\"assistant\",\"content\":\"hello\"}],\"stream\":false}";
    cJSON *conversation = s_conversation ((const byte *) good, strlen (good), &error, &stream);
    assert (conversation && !error && !stream && cJSON_GetArraySize (conversation) == 2);
    assert (!cJSON_GetObjectItem (cJSON_GetArrayItem (conversation, 0), "extra"));
    cJSON *messages = s_model_messages (conversation);
    assert (cJSON_GetArraySize (messages) == 3);
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (cJSON_GetArrayItem (messages, 0), "role")), "system"));
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (cJSON_GetArrayItem (messages, 2), "content")), "hello"));
    cJSON_Delete (messages);
    cJSON_Delete (conversation);
    const char *bad [] = {
        "", "[]", "{}", "{\"messages\":[]}", "{\"messages\":[{\"role\":\"system\",\"content\":\"x\"}]}",
        "{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}", "{\"messages\":[{\"role\":\"user\"}]}",
        "{\"messages\":[{\"role\":\"user\",\"content\":5}]}", "{\"messages\":\"hi\"}", "{\"messages\":[1]}",
        "not json", NULL
    };
    for (const char **text = bad; *text; text++) {
        assert (s_conversation ((const byte *) *text, strlen (*text), &error, &stream) == NULL);
        assert (cJSON_IsArray (error) && cJSON_GetObjectItem (cJSON_GetArrayItem (error, 0), "msg"));
        cJSON_Delete (error);
    }

    //  A tool step: args parsed when they parse, kept as text when not
    size_t room = AGENT_CALLS_BYTES;
    cJSON *entry = s_tool_entry ("get_function", "{\"function_id\":\"x\"}", cJSON_CreateObject (), false,
                                 false, &room);
    assert (cJSON_IsObject (cJSON_GetObjectItem (entry, "args")));
    assert (cJSON_IsTrue (cJSON_GetObjectItem (entry, "ok")));
    assert (!cJSON_GetObjectItem (entry, "result_truncated") && !cJSON_GetObjectItem (entry, "args_truncated"));
    assert (room < AGENT_CALLS_BYTES);
    cJSON_Delete (entry);
    entry = s_tool_entry ("get_function", "{\"function_id\":", cJSON_CreateObject (), true, false, &room);
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (entry, "args")), "{\"function_id\":"));
    assert (cJSON_IsFalse (cJSON_GetObjectItem (entry, "ok")));
    cJSON_Delete (entry);

    //  Large results are cut as the model's copy is, and the chat's calls
    //  listed whole stop at AGENT_CALLS_BYTES: the ones after that are
    //  listed short, in order, each marked
    char *code = (char *) malloc (1000001);
    memset (code, 'x', 1000000);
    code [1000000] = 0;
    char *big_args = zsys_sprintf ("{\"function_id\":\"x\",\"code\":\"%s\"}", code);
    room = AGENT_CALLS_BYTES;
    size_t total = 0;
    int whole = 0;
    for (int index = 0; index < 200; index++) {
        cJSON *made = cJSON_CreateObject ();
        cJSON_AddStringToObject (made, "id", "0123456789ab");
        cJSON_AddStringToObject (made, "code", code);
        bool cut;
        made = tools_result_bound (made, TOOLS_RESULT_MAX, &cut);
        assert (cut);
        entry = s_tool_entry ("update_function", big_args, made, false, cut, &room);
        assert (cJSON_IsTrue (cJSON_GetObjectItem (entry, "result_truncated")));
        assert (cJSON_IsTrue (cJSON_GetObjectItem (entry, "args_truncated")));
        assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (entry, "tool")), "update_function"));
        cJSON *shown = cJSON_GetObjectItem (entry, "result");
        if (cJSON_IsObject (shown)) {
            assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (shown, "id")), "0123456789ab"));
            assert (strstr (cJSON_GetStringValue (cJSON_GetObjectItem (shown, "code")), "[cut:"));
            whole++;
        }
        else
            assert (strstr (cJSON_GetStringValue (shown), "left out"));
        char *text = cJSON_PrintUnformatted (entry);
        assert (strlen (text) < TOOLS_RESULT_MAX * 2 + 200);
        total += strlen (text);
        free (text);
        cJSON_Delete (entry);
    }
    assert (whole > 10 && whole < 200 && room == 0);
    assert (total < AGENT_CALLS_BYTES + 200 * (AGENT_ARGS_SHORT + AGENT_NAME_MAX + 200));
    free (big_args);
    free (code);
    cJSON *result = cJSON_Parse ("{\"error\":\"Function not found\",\"status\":404}");
    cJSON *message = s_tool_message ("functions.get_function:0", result);
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (message, "tool_call_id")), "functions.get_function:0"));
    assert (strstr (cJSON_GetStringValue (cJSON_GetObjectItem (message, "content")), "Function not found"));
    cJSON_Delete (message);
    cJSON_Delete (result);

    //  Not configured: CHAT gets 503 saying how to configure it
    char data_dir [] = "/tmp/clowdy-agent-test-XXXXXX";
    assert (mkdtemp (data_dir));
    char *argv [] = { "clowdy", "--data-dir", data_dir, "--ai-api-key", "", NULL };
    config_t config;
    char problem [256];
    unsetenv ("GROQ_API_KEY");
    assert (config_parse (&config, 5, argv, problem, sizeof problem) == 0);
    endpoints_t *endpoints = endpoints_new ();
    endpoints_set (endpoints, "agent", "inproc://agent-test");
    actor_args_t args = { &config, endpoints, 0 };
    zactor_t *agent = actor_start (agent_actor, &args, "agent", NULL);
    assert (agent);
    zstr_send (agent, "PING");
    char *pong = zstr_recv (agent);
    assert (pong && streq (pong, "PONG"));
    zstr_free (&pong);
    zsock_t *http = zsock_new_dealer ("inproc://agent-test");
    zsock_set_rcvtimeo (http, 5000);
    assert (msg_send_chat (http, NULL, "r1", "local", good, strlen (good), "") == 0);
    msg_t *msg = msg_recv (http, false);
    assert (msg && msg_id (msg) == MSG_ID_ANSWER && msg_answer_status (msg) == 503);
    assert (streq (msg_answer_request_id (msg), "r1"));
    size_t size;
    const byte *body = msg_answer_body (msg, &size);
    assert (memmem (body, size, "--ai-api-key", 12));
    msg_destroy (&msg);
    zsock_destroy (&http);
    zactor_destroy (&agent);

    //  Configured, with runners: a malformed chat gets 422, a chat to a
    //  provider that is not there gets 502 with the reason
    config_reset (&config);
    char *argv2 [] = { "clowdy", "--data-dir", data_dir, "--ai-base-url", "http://127.0.0.1:1/v1", NULL };
    assert (config_parse (&config, 5, argv2, problem, sizeof problem) == 0);
    //  A fresh endpoint: the first actor's may not be unbound yet
    endpoints_set (endpoints, "agent", "inproc://agent-test-2");
    agent = actor_start (agent_actor, &args, "agent", NULL);
    assert (agent);
    http = zsock_new_dealer ("inproc://agent-test-2");
    zsock_set_rcvtimeo (http, 15000);
    assert (msg_send_chat (http, NULL, "r2", "local", "{}", 2, "") == 0);
    msg = msg_recv (http, false);
    assert (msg && msg_answer_status (msg) == 422);
    msg_destroy (&msg);
    assert (msg_send_chat (http, NULL, "r3", "local", good, strlen (good), "") == 0);
    msg = msg_recv (http, false);
    assert (msg && msg_answer_status (msg) == 502);
    body = msg_answer_body (msg, &size);
    assert (memmem (body, size, "Could not reach the AI provider", 31));
    assert (memmem (body, size, "\"tool_calls\":[]", 15));
    msg_destroy (&msg);
    zsock_destroy (&http);
    zactor_destroy (&agent);

    endpoints_destroy (&endpoints);
    config_reset (&config);
    char command [256];
    snprintf (command, sizeof command, "rm -rf %s", data_dir);
    if (system (command)) { }
    printf ("OK\n");
}
