/*  =========================================================================
    llm - one call to an OpenAI-compatible chat completions API

    Groq, OpenAI, Ollama, llama.cpp's server and vLLM all speak the same
    format: POST {base}/chat/completions with {model, messages, tools,
    tool_choice}; the reply's choices[0].message holds content and
    tool_calls [{id, type: "function", function: {name, arguments}}], where
    arguments is a JSON document *as a string*. Providers differ at the
    edges, and we take what they send rather than what the spec says:
    Ollama gives arguments as an object (we print it to text), some give no
    id (we make one), content may be null or absent with tool calls.

    Everything outside our process is untrusted here: the reply is read
    into a capped buffer (the transfer aborts past the cap), parsed as
    JSON, and every field is type-checked before use. A fault becomes one
    sentence the user can act on and the status we answer with:
        provider unreachable, 4xx/5xx, non-JSON, empty   502
        429 (rate limited), with its Retry-After         503
        no answer within the time budget                 504
    Groq's 400 `tool_use_failed` (the model wrote a tool call Groq could
    not parse) is named as such: rephrasing usually helps.
    ========================================================================= */

#include <czmq.h>
#include <curl/curl.h>
#include "core/fetch.h"
#include "core/llm.h"

//  Tool calls we take from one turn of the model, streamed or not; a reply
//  that asks for more gets the first ones (the rest are never run)
#define LLM_TOOL_CALLS_MAX 64

//  --------------------------------------------------------------------------
//  Request

char *
llm_request_body (const char *model, cJSON *messages, cJSON *tools, bool stream)
{
    cJSON *body = cJSON_CreateObject ();
    cJSON_AddStringToObject (body, "model", model);
    if (stream)
        cJSON_AddTrueToObject (body, "stream");
    cJSON_AddItemReferenceToObject (body, "messages", messages);
    if (tools && cJSON_GetArraySize (tools) > 0) {
        cJSON_AddItemReferenceToObject (body, "tools", tools);
        cJSON_AddStringToObject (body, "tool_choice", "auto");
    }
    char *text = cJSON_PrintUnformatted (body);
    cJSON_Delete (body);
    return text;
}

//  --------------------------------------------------------------------------
//  Reply

void
llm_reply_reset (llm_reply_t *reply)
{
    free (reply->content);
    cJSON_Delete (reply->tool_calls);
    free (reply->detail);
    memset (reply, 0, sizeof *reply);
}

static int
s_fail (llm_reply_t *reply, int status, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char detail [1024];
    vsnprintf (detail, sizeof detail, format, args);
    va_end (args);
    free (reply->detail);
    reply->detail = strdup (detail);
    reply->status = status;
    return -1;
}

//  The provider's own words for an error: error.message (OpenAI, Groq),
//  error as a string (Ollama, llama.cpp), or detail; at most 300 bytes
//  without control characters, so it fits in our sentence
static void
s_provider_message (cJSON *json, char *out, size_t size)
{
    cJSON *error = cJSON_GetObjectItem (json, "error");
    const char *text = cJSON_GetStringValue (cJSON_GetObjectItem (error, "message"));
    if (!text)
        text = cJSON_GetStringValue (error);
    if (!text)
        text = cJSON_GetStringValue (cJSON_GetObjectItem (json, "detail"));
    if (!text)
        text = cJSON_GetStringValue (cJSON_GetObjectItem (json, "message"));
    size_t used = 0;
    for (const char *c = text ? text : ""; *c && used + 1 < size && used < 300; c++)
        out [used++] = (unsigned char) *c < 0x20 ? ' ' : *c;
    out [used] = 0;
}

//  One entry of reply->tool_calls, {id, name, arguments}, from what the
//  provider sent for it: the id made up (call_N, N its position) when it
//  gave none, arguments as text whether it sent a string (as the spec
//  says) or an object (as Ollama does), "{}" when it sent none
static void
s_add_tool_call (cJSON *calls, int position, const char *id, const char *name, cJSON *arguments)
{
    char made [32];
    snprintf (made, sizeof made, "call_%d", position);
    char *printed = !cJSON_IsString (arguments) && arguments && !cJSON_IsNull (arguments)
                  ? cJSON_PrintUnformatted (arguments) : NULL;
    const char *text = cJSON_IsString (arguments) ? arguments->valuestring : printed;
    cJSON *item = cJSON_CreateObject ();
    cJSON_AddStringToObject (item, "id", id && *id ? id : made);
    cJSON_AddStringToObject (item, "name", name ? name : "");
    cJSON_AddStringToObject (item, "arguments", text && *text ? text : "{}");
    cJSON_AddItemToArray (calls, item);
    free (printed);
}

int
llm_parse_reply (long http_status, const char *body, size_t size, long retry_after,
                 llm_reply_t *reply)
{
    llm_reply_reset (reply);
    cJSON *json = size ? cJSON_ParseWithLength (body, size) : NULL;
    char said [320] = "";
    if (json)
        s_provider_message (json, said, sizeof said);
    const char *colon = *said ? ": " : "";
    const char *code = cJSON_GetStringValue (cJSON_GetObjectItem (cJSON_GetObjectItem (json, "error"), "code"));
    int rc = -1;
    if (http_status == 429) {
        reply->retry_after = retry_after > 0 && retry_after < 86400 ? retry_after : 0;
        if (reply->retry_after)
            s_fail (reply, 503, "The AI provider is rate limiting requests (429); try again in %ld s%s%s",
                    reply->retry_after, colon, said);
        else
            s_fail (reply, 503, "The AI provider is rate limiting requests (429); try again shortly%s%s",
                    colon, said);
    }
    else
    if (http_status == 401 || http_status == 403)
        s_fail (reply, 502, "The AI provider refused the API key (%ld)%s%s. Check --ai-api-key "
                "(CLOWDY_AI_API_KEY or GROQ_API_KEY)", http_status, colon, said);
    else
    if (http_status == 400 && code && streq (code, "tool_use_failed"))
        s_fail (reply, 502, "The model wrote a tool call the AI provider could not parse (tool_use_failed); "
                "try again or rephrase the request");
    else
    if (http_status >= 500)
        s_fail (reply, 502, "The AI provider failed (HTTP %ld)%s%s; try again later", http_status, colon, said);
    else
    if (http_status != 200)
        s_fail (reply, 502, "The AI provider refused the request (HTTP %ld)%s%s", http_status, colon, said);
    else
    if (size == 0)
        s_fail (reply, 502, "The AI provider sent an empty reply");
    else
    if (!json)
        s_fail (reply, 502, "The AI provider's reply is not valid JSON");
    else {
        cJSON *choice = cJSON_GetArrayItem (cJSON_GetObjectItem (json, "choices"), 0);
        cJSON *message = cJSON_GetObjectItem (choice, "message");
        if (!cJSON_IsObject (message))
            s_fail (reply, 502, "The AI provider's reply has no message (no choices[0].message)%s%s",
                    colon, said);
        else {
            const char *content = cJSON_GetStringValue (cJSON_GetObjectItem (message, "content"));
            reply->content = content ? strdup (content) : NULL;
            reply->tool_calls = cJSON_CreateArray ();
            cJSON *call;
            int index = 0;
            cJSON_ArrayForEach (call, cJSON_GetObjectItem (message, "tool_calls")) {
                if (index >= LLM_TOOL_CALLS_MAX)
                    break;
                cJSON *function = cJSON_GetObjectItem (call, "function");
                s_add_tool_call (reply->tool_calls, index++,
                                 cJSON_GetStringValue (cJSON_GetObjectItem (call, "id")),
                                 cJSON_GetStringValue (cJSON_GetObjectItem (function, "name")),
                                 cJSON_GetObjectItem (function, "arguments"));
            }
            if (!reply->content && cJSON_GetArraySize (reply->tool_calls) == 0)
                s_fail (reply, 502, "The AI provider's reply has neither text nor tool calls");
            else
                rc = 0;
        }
    }
    cJSON_Delete (json);
    return rc;
}

//  --------------------------------------------------------------------------
//  Streamed reply: one `data: {chunk}` line per event


typedef struct {
    bool seen;                      //  At least one data: line
    bool done;                      //  data: [DONE] came
    char *content;                  //  Text so far, or NULL
    size_t content_size;            //  Its length
    cJSON *calls;                   //  [{id, name, arguments}] by index (slots may be null)
    char *error;                    //  An error event's message, or NULL
    void (*on_delta) (const char *text, void *arg);  //  Text as it comes, or NULL
    void *delta_arg;                //  Its argument
} s_stream_t;

static void
s_stream_reset (s_stream_t *stream)
{
    free (stream->content);
    cJSON_Delete (stream->calls);
    free (stream->error);
}

//  Append text to a string field of a tool call slot
static void
s_append_field (cJSON *slot, const char *field, const char *text)
{
    cJSON *item = cJSON_GetObjectItem (slot, field);
    const char *old = cJSON_GetStringValue (item);
    char *joined = zsys_sprintf ("%s%s", old ? old : "", text);
    if (item)
        cJSON_SetValuestring (item, joined);
    else
        cJSON_AddStringToObject (slot, field, joined);
    zstr_free (&joined);
}

static void
s_stream_line (s_stream_t *stream, const char *line, size_t size)
{
    while (size && (line [size - 1] == '\r' || line [size - 1] == '\n'))
        size--;
    if (size < 5 || strncmp (line, "data:", 5) != 0)
        return;                     //  Comments, event names, blank lines
    line += 5;
    size -= 5;
    while (size && *line == ' ') {
        line++;
        size--;
    }
    stream->seen = true;
    if (size == 6 && strncmp (line, "[DONE]", 6) == 0) {
        stream->done = true;
        return;
    }
    cJSON *chunk = cJSON_ParseWithLength (line, size);
    if (!chunk)
        return;                     //  A line we cannot read is skipped, as a browser would
    cJSON *error = cJSON_GetObjectItem (chunk, "error");
    if (error && !stream->error) {
        char said [320];
        s_provider_message (chunk, said, sizeof said);
        stream->error = strdup (*said ? said : "an error event");
    }
    cJSON *choice = cJSON_GetArrayItem (cJSON_GetObjectItem (chunk, "choices"), 0);
    cJSON *delta = cJSON_GetObjectItem (choice, "delta");
    if (!delta)
        delta = cJSON_GetObjectItem (choice, "message");     //  Some servers send whole messages
    const char *text = cJSON_GetStringValue (cJSON_GetObjectItem (delta, "content"));
    if (text && *text) {
        size_t length = strlen (text);
        stream->content = (char *) realloc (stream->content, stream->content_size + length + 1);
        memcpy (stream->content + stream->content_size, text, length + 1);
        stream->content_size += length;
        if (stream->on_delta)
            stream->on_delta (text, stream->delta_arg);
    }
    cJSON *call;
    int position = 0;
    cJSON_ArrayForEach (call, cJSON_GetObjectItem (delta, "tool_calls")) {
        double number = cJSON_GetNumberValue (cJSON_GetObjectItem (call, "index"));
        int index = isnan (number) ? position : (int) number;
        position++;
        if (index < 0 || index >= LLM_TOOL_CALLS_MAX)
            continue;
        if (!stream->calls)
            stream->calls = cJSON_CreateArray ();
        while (cJSON_GetArraySize (stream->calls) <= index)
            cJSON_AddItemToArray (stream->calls, cJSON_CreateObject ());
        cJSON *slot = cJSON_GetArrayItem (stream->calls, index);
        const char *id = cJSON_GetStringValue (cJSON_GetObjectItem (call, "id"));
        if (id && *id) {
            cJSON_DeleteItemFromObject (slot, "id");
            cJSON_AddStringToObject (slot, "id", id);
        }
        cJSON *function = cJSON_GetObjectItem (call, "function");
        const char *name = cJSON_GetStringValue (cJSON_GetObjectItem (function, "name"));
        if (name)
            s_append_field (slot, "name", name);
        cJSON *arguments = cJSON_GetObjectItem (function, "arguments");
        if (cJSON_IsString (arguments))
            s_append_field (slot, "arguments", arguments->valuestring);
        else
        if (cJSON_IsObject (arguments)) {
            char *printed = cJSON_PrintUnformatted (arguments);
            s_append_field (slot, "arguments", printed);
            free (printed);
        }
    }
    cJSON_Delete (chunk);
}

//  The reply a finished stream gives
static int
s_stream_reply (s_stream_t *stream, llm_reply_t *reply)
{
    llm_reply_reset (reply);
    if (stream->error)
        return s_fail (reply, 502, "The AI provider failed while streaming: %s", stream->error);
    reply->tool_calls = cJSON_CreateArray ();
    cJSON *slot;
    int index = 0;
    cJSON_ArrayForEach (slot, stream->calls) {
        const char *name = cJSON_GetStringValue (cJSON_GetObjectItem (slot, "name"));
        if (name)                   //  Else an index the provider skipped
            s_add_tool_call (reply->tool_calls, index, cJSON_GetStringValue (cJSON_GetObjectItem (slot, "id")),
                             name, cJSON_GetObjectItem (slot, "arguments"));
        index++;
    }
    if (stream->content_size)
        reply->content = strdup (stream->content);
    if (!reply->content && cJSON_GetArraySize (reply->tool_calls) == 0)
        return s_fail (reply, 502, "The AI provider's streamed reply has neither text nor tool calls");
    return 0;
}

int
llm_parse_stream (const char *text, size_t size, llm_reply_t *reply)
{
    s_stream_t stream = { 0 };
    size_t start = 0;
    for (size_t at = 0; at <= size; at++)
        if (at == size || text [at] == '\n') {
            s_stream_line (&stream, text + start, at - start);
            start = at + 1;
        }
    int rc = stream.seen ? s_stream_reply (&stream, reply)
                         : s_fail (reply, 502, "The AI provider's streamed reply has no events");
    s_stream_reset (&stream);
    return rc;
}

cJSON *
llm_assistant_message (const llm_reply_t *reply)
{
    cJSON *message = cJSON_CreateObject ();
    cJSON_AddStringToObject (message, "role", "assistant");
    if (reply->content)
        cJSON_AddStringToObject (message, "content", reply->content);
    else
        cJSON_AddNullToObject (message, "content");
    if (cJSON_GetArraySize (reply->tool_calls) > 0) {
        cJSON *calls = cJSON_AddArrayToObject (message, "tool_calls");
        cJSON *call;
        cJSON_ArrayForEach (call, reply->tool_calls) {
            cJSON *item = cJSON_CreateObject ();
            cJSON_AddStringToObject (item, "id", cJSON_GetStringValue (cJSON_GetObjectItem (call, "id")));
            cJSON_AddStringToObject (item, "type", "function");
            cJSON *function = cJSON_AddObjectToObject (item, "function");
            cJSON_AddStringToObject (function, "name", cJSON_GetStringValue (cJSON_GetObjectItem (call, "name")));
            cJSON_AddStringToObject (function, "arguments",
                                     cJSON_GetStringValue (cJSON_GetObjectItem (call, "arguments")));
            cJSON_AddItemToArray (calls, item);
        }
    }
    return message;
}

//  --------------------------------------------------------------------------
//  Transport

typedef struct {
    fetch_buffer_t body;            //  Reply bytes so far, under the cap
    volatile int *cancel;           //  Non-zero aborts
    CURL *curl;                     //  For the status, once headers are in
    bool stream;                    //  We asked for a stream
    size_t parsed;                  //  Bytes of data handed to the stream parser
    s_stream_t events;              //  The stream so far
} s_transfer_t;

static size_t
s_write (char *ptr, size_t size, size_t nmemb, void *userdata)
{
    s_transfer_t *transfer = (s_transfer_t *) userdata;
    size_t bytes = fetch_buffer_write (ptr, size, nmemb, &transfer->body);
    if (bytes == 0)
        return 0;                   //  Past the cap: aborts the transfer
    //  A 200 to a stream request: read each complete line as it comes,
    //  so text deltas reach the user while the model writes
    long status = 0;
    if (transfer->stream)
        curl_easy_getinfo (transfer->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status == 200) {
        fetch_buffer_t *body = &transfer->body;
        char *newline;
        while ((newline = memchr (body->data + transfer->parsed, '\n', body->size - transfer->parsed))) {
            size_t length = (size_t) (newline - (body->data + transfer->parsed));
            s_stream_line (&transfer->events, body->data + transfer->parsed, length);
            transfer->parsed += length + 1;
        }
    }
    return bytes;
}

static int
s_progress (void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    s_transfer_t *transfer = (s_transfer_t *) userdata;
    return transfer->cancel && __atomic_load_n (transfer->cancel, __ATOMIC_RELAXED) ? 1 : 0;
}

int
llm_complete (const llm_call_t *call, cJSON *messages, cJSON *tools, llm_reply_t *reply)
{
    llm_reply_reset (reply);
    char url [2048];
    size_t base_length = strlen (call->base_url);
    while (base_length && call->base_url [base_length - 1] == '/')
        base_length--;
    if (base_length + 20 >= sizeof url)
        return s_fail (reply, 502, "The AI provider's base URL is too long");
    snprintf (url, sizeof url, "%.*s/chat/completions", (int) base_length, call->base_url);

    char *body = llm_request_body (call->model, messages, tools, call->stream);
    s_transfer_t transfer = {
        .body = { .cap = LLM_REPLY_MAX }, .cancel = call->cancel,
        .stream = call->stream, .events = { .on_delta = call->on_delta, .delta_arg = call->delta_arg }
    };
    CURL *curl = curl_easy_init ();
    transfer.curl = curl;
    if (!curl) {
        free (body);
        return s_fail (reply, 502, "Could not start a call to the AI provider");
    }
    struct curl_slist *headers = curl_slist_append (NULL, "Content-Type: application/json");
    headers = curl_slist_append (headers, call->stream ? "Accept: text/event-stream, application/json"
                                                       : "Accept: application/json");
    if (call->api_key && *call->api_key) {
        char *authorization = zsys_sprintf ("Authorization: Bearer %s", call->api_key);
        headers = curl_slist_append (headers, authorization);
        zstr_free (&authorization);
    }
    long timeout_ms = call->timeout_ms > 0 ? call->timeout_ms : 1;
    long connect_ms = 10000;
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt (curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT_MS, connect_ms < timeout_ms ? connect_ms : timeout_ms);
    curl_easy_setopt (curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) transfer.body.cap);
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt (curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt (curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) strlen (body));
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_write);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, &transfer);
    curl_easy_setopt (curl, CURLOPT_XFERINFOFUNCTION, s_progress);
    curl_easy_setopt (curl, CURLOPT_XFERINFODATA, &transfer);
    curl_easy_setopt (curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt (curl, CURLOPT_USERAGENT, "clowdy/" CLOWDY_VERSION);
    CURLcode code = curl_easy_perform (curl);
    long status = 0;
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
    curl_off_t retry_after = 0;         //  Seconds, or an HTTP date made into them
    curl_easy_getinfo (curl, CURLINFO_RETRY_AFTER, &retry_after);
    curl_easy_cleanup (curl);
    curl_slist_free_all (headers);
    free (body);

    int rc;
    if (code == CURLE_ABORTED_BY_CALLBACK) {
        rc = s_fail (reply, 499, "The chat was stopped");
    }
    else
    if (transfer.body.too_large || code == CURLE_FILESIZE_EXCEEDED)
        rc = s_fail (reply, 502, "The AI provider's reply was larger than the %zu-byte limit", transfer.body.cap);
    else
    if (code == CURLE_OPERATION_TIMEDOUT)
        rc = s_fail (reply, 504, "The AI provider did not answer within the chat's time budget "
                     "(%ld s left; --ai-timeout)", (timeout_ms + 999) / 1000);
    else
    if (code != CURLE_OK)
        rc = s_fail (reply, 502, "Could not reach the AI provider at %s: %s", call->base_url,
                     curl_easy_strerror (code));
    else
    if (status == 200 && transfer.stream && transfer.events.seen) {
        //  The last line may have come without its newline
        if (transfer.parsed < transfer.body.size)
            s_stream_line (&transfer.events, transfer.body.data + transfer.parsed,
                           transfer.body.size - transfer.parsed);
        rc = s_stream_reply (&transfer.events, reply);
    }
    else        //  Not streamed (an error, or a server that ignores stream): one JSON body
        rc = llm_parse_reply (status, transfer.body.data ? transfer.body.data : "", transfer.body.size,
                              (long) retry_after, reply);
    s_stream_reset (&transfer.events);
    if (rc)
        zsys_warning ("llm: %s", reply->detail);
    fetch_buffer_reset (&transfer.body);
    return rc;
}

//  --------------------------------------------------------------------------
//  Selftest: the wire format both ways, and every fault's sentence

void
llm_test (bool verbose)
{
    printf ("llm: ");
    llm_reply_t reply = { 0 };

    //  The request carries the conversation and the tools by reference
    cJSON *messages = cJSON_Parse ("[{\"role\":\"user\",\"content\":\"hi\"}]");
    cJSON *tools = cJSON_Parse ("[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{}}}]");
    char *body = llm_request_body ("m1", messages, tools, false);
    cJSON *parsed = cJSON_Parse (body);
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (parsed, "model")), "m1"));
    assert (cJSON_GetArraySize (cJSON_GetObjectItem (parsed, "tools")) == 1);
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (parsed, "tool_choice")), "auto"));
    cJSON_Delete (parsed);
    free (body);
    body = llm_request_body ("m1", messages, NULL, false);
    assert (!strstr (body, "tools") && !strstr (body, "stream"));
    free (body);
    body = llm_request_body ("m1", messages, NULL, true);
    assert (strstr (body, "\"stream\":true"));
    free (body);
    cJSON_Delete (messages);
    cJSON_Delete (tools);

    //  Groq's shape: two calls in one turn, ids opaque, arguments a string
    const char *groq = "{\"choices\":[{\"index\":0,\"finish_reason\":\"tool_calls\",\"message\":{\"role\":"
        "\"assistant\",\"tool_calls\":[{\"id\":\"functions.create_function:0\",\"type\":\"function\","
        "\"function\":{\"name\":\"create_function\",\"arguments\":\"{\\\"name\\\":\\\"a\\\"}\"}},"
        "{\"id\":\"functions.list_projects:1\",\"type\":\"function\",\"function\":{\"name\":"
        "\"list_projects\",\"arguments\":\"{}\"}}]}}]}";
    assert (llm_parse_reply (200, groq, strlen (groq), 0, &reply) == 0);
    assert (reply.content == NULL);
    assert (cJSON_GetArraySize (reply.tool_calls) == 2);
    cJSON *first = cJSON_GetArrayItem (reply.tool_calls, 0);
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (first, "id")), "functions.create_function:0"));
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (first, "arguments")), "{\"name\":\"a\"}"));
    //  Echoed back as the wire format wants it
    cJSON *echo = llm_assistant_message (&reply);
    assert (cJSON_IsNull (cJSON_GetObjectItem (echo, "content")));
    cJSON *echoed = cJSON_GetArrayItem (cJSON_GetObjectItem (echo, "tool_calls"), 1);
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (echoed, "id")), "functions.list_projects:1"));
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (echoed, "type")), "function"));
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (cJSON_GetObjectItem (echoed, "function"),
                                                                "name")), "list_projects"));
    cJSON_Delete (echo);

    //  Ollama's shape: arguments as an object, no id
    const char *ollama = "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":"
        "[{\"function\":{\"name\":\"get_function\",\"arguments\":{\"function_id\":\"x\"}}}]}}]}";
    assert (llm_parse_reply (200, ollama, strlen (ollama), 0, &reply) == 0);
    first = cJSON_GetArrayItem (reply.tool_calls, 0);
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (first, "id")), "call_0"));
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (first, "arguments")), "{\"function_id\":\"x\"}"));
    //  No arguments, or empty ones, are no arguments, streamed or not
    const char *bare = "{\"choices\":[{\"message\":{\"tool_calls\":[{\"id\":\"\",\"function\":{\"name\":\"a\","
        "\"arguments\":\"\"}},{\"function\":{\"name\":\"b\",\"arguments\":null}}]}}]}";
    assert (llm_parse_reply (200, bare, strlen (bare), 0, &reply) == 0);
    assert (cJSON_GetArraySize (reply.tool_calls) == 2);
    first = cJSON_GetArrayItem (reply.tool_calls, 0);
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (first, "id")), "call_0"));
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (first, "arguments")), "{}"));
    first = cJSON_GetArrayItem (reply.tool_calls, 1);
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (first, "id")), "call_1"));
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (first, "arguments")), "{}"));

    //  Streamed: text deltas joined; two tool calls, each split over
    //  deltas and interleaved, joined by index
    const char *streamed =
        ": keep-alive\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Let me \"}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"check.\"}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"functions.get_function:0\","
        "\"type\":\"function\",\"function\":{\"name\":\"get_function\",\"arguments\":\"{\\\"function_\"}}]}}]}\r\n\r\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"functions.list_projects:1\","
        "\"function\":{\"name\":\"list_projects\",\"arguments\":\"\"}}]}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
        "\"id\\\":\\\"abc\\\"}\"}}]}}]}\n\n"
        "data: not json\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n"
        "data: [DONE]\n\n";
    assert (llm_parse_stream (streamed, strlen (streamed), &reply) == 0);
    assert (streq (reply.content, "Let me check."));
    assert (cJSON_GetArraySize (reply.tool_calls) == 2);
    first = cJSON_GetArrayItem (reply.tool_calls, 0);
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (first, "id")), "functions.get_function:0"));
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (first, "arguments")), "{\"function_id\":\"abc\"}"));
    cJSON *second = cJSON_GetArrayItem (reply.tool_calls, 1);
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (second, "name")), "list_projects"));
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (second, "arguments")), "{}"));
    const char *stream_error = "data: {\"error\":{\"message\":\"overloaded\"}}\n\n";
    assert (llm_parse_stream (stream_error, strlen (stream_error), &reply) == -1);
    assert (reply.status == 502 && strstr (reply.detail, "while streaming: overloaded"));
    assert (llm_parse_stream ("data: [DONE]\n", 13, &reply) == -1);
    assert (llm_parse_stream ("hello", 5, &reply) == -1 && strstr (reply.detail, "no events"));

    //  A plain answer
    const char *text = "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"Done.\"},"
                       "\"finish_reason\":\"stop\"}]}";
    assert (llm_parse_reply (200, text, strlen (text), 0, &reply) == 0);
    assert (streq (reply.content, "Done.") && cJSON_GetArraySize (reply.tool_calls) == 0);

    //  Faults, each with its status and sentence
    assert (llm_parse_reply (200, "", 0, 0, &reply) == -1);
    assert (reply.status == 502 && strstr (reply.detail, "empty"));
    assert (llm_parse_reply (200, "<html>", 6, 0, &reply) == -1);
    assert (reply.status == 502 && strstr (reply.detail, "not valid JSON"));
    assert (llm_parse_reply (200, "{\"choices\":[]}", 14, 0, &reply) == -1);
    assert (strstr (reply.detail, "no message"));
    const char *denied = "{\"error\":{\"message\":\"Invalid API Key\",\"type\":\"invalid_request_error\"}}";
    assert (llm_parse_reply (401, denied, strlen (denied), 0, &reply) == -1);
    assert (reply.status == 502 && strstr (reply.detail, "refused the API key (401): Invalid API Key"));
    assert (llm_parse_reply (429, "{}", 2, 7, &reply) == -1);
    assert (reply.status == 503 && reply.retry_after == 7 && strstr (reply.detail, "try again in 7 s"));
    assert (llm_parse_reply (429, "", 0, 0, &reply) == -1);
    assert (reply.retry_after == 0 && strstr (reply.detail, "try again shortly"));
    assert (llm_parse_reply (429, "", 0, 86400 * 365, &reply) == -1);
    assert (reply.retry_after == 0 && strstr (reply.detail, "try again shortly"));
    const char *failed = "{\"error\":{\"message\":\"Failed to call a function.\",\"code\":\"tool_use_failed\","
                         "\"failed_generation\":\"<function=x>\"}}";
    assert (llm_parse_reply (400, failed, strlen (failed), 0, &reply) == -1);
    assert (reply.status == 502 && strstr (reply.detail, "tool_use_failed"));
    assert (llm_parse_reply (400, "{\"error\":\"bad\\nthing\"}", 22, 0, &reply) == -1);
    assert (strstr (reply.detail, "(HTTP 400): bad thing"));
    assert (llm_parse_reply (503, "oops", 4, 0, &reply) == -1);
    assert (reply.status == 502 && strstr (reply.detail, "failed (HTTP 503)"));
    llm_reply_reset (&reply);

    //  Nothing listens: a clear sentence, quickly
    curl_global_init (CURL_GLOBAL_DEFAULT);
    llm_call_t call = { .base_url = "http://127.0.0.1:1/v1", .model = "m", .timeout_ms = 5000 };
    messages = cJSON_Parse ("[]");
    assert (llm_complete (&call, messages, 0, &reply) == -1);
    assert (reply.status == 502 && strstr (reply.detail, "Could not reach the AI provider"));
    llm_reply_reset (&reply);
    cJSON_Delete (messages);
    printf ("OK\n");
}
