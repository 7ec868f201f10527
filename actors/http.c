/*  =========================================================================
    http - the HTTP front door: REST API, invoke, gateway and the web UI

    libmicrohttpd runs without threads of its own (MHD_USE_EPOLL with no
    internal polling thread): this actor polls MHD's epoll fd together with
    its pipe and its gateway socket, and calls MHD_run when any is ready or
    when MHD's own timeout expires. We use poller_poll (zmq_poll's contract
    with fewer system calls, broker/poller.h) rather than zpoller because
    the epoll fd is a plain fd and MHD's timeout changes every turn.

    A request's life:
    1. MHD's URI log callback allocates a request_t holding the raw URI (MHD
       hands the access handler a decoded path; the gateway needs the raw
       one to split segments before decoding). The connection (conn_t, from
       MHD's connection notifications) points at it: if MHD gives up on the
       request by itself and no completion callback comes, the connection's
       close frees and logs it.
    2. The access handler's first call has the whole head: the request is
       in flight from there. Heads a proxy could read differently get 400
       (s_check_request); a body over --max-body gets 413, and one that
       would take the bodies held at once past --max-body-total-mb gets
       503, before either is read. Then it collects the body, then
       dispatches: OPTIONS preflight, /api/invoke (but ?async=1, which the
       REST API queues) and /api/gateway go to the
       gateway actor as INVOKE (the connection is suspended and the request
       parked in `pending` under its id); other /api paths are the REST API
       (core/api.h): the few routes that touch no SQLite run here, every
       other one goes to the control-plane threads (core/apipool.h), parked
       in `pending` the same way, so a locked database never stalls this
       loop; POST /api/chat goes to the agent actor as CHAT (parked the
       same way, with a deadline; ANSWER resumes it, EVENTs stream it);
       anything else is a static file of the web UI.
    3. A REPLY from gateway, or a reply from the pool, finds the parked
       request, stores the response and resumes the connection; MHD calls
       the handler again and we queue it. A pool reply's INVALIDATE goes to
       the gateway before the response leaves, so a client that saw its
       write succeed never reads a stale cache. The pool keeps a deadline
       on every request it holds (503/504 with a detail when it passes).
    4. MHD's completion callback writes the access-log line and frees it.

    Connections: at most --http-max-connections, --http-max-per-client from
    one address; silent for --http-idle-timeout before a first request, or
    --http-timeout once one came, and they are closed (a suspended one is
    never silent: it waits for us).

    Every error is JSON {"detail": "..."}; nothing a client sends can crash
    the actor: bodies are capped, headers are copied into cJSON, and only
    well-formed REPLY messages are read from the gateway.
    ========================================================================= */

#include <microhttpd.h>
#include <cjson/cJSON.h>
#include <netdb.h>
#include <poll.h>
#include <sys/stat.h>
#include "actors/http.h"
#include "broker/actor.h"
#include "broker/deadlines.h"
#include "broker/endpoints.h"
#include "broker/msg.h"
#include "broker/poller.h"
#include "core/api.h"
#include "core/apipool.h"
#include "core/auth.h"
#include "core/config.h"
#include "core/gwmap.h"
#include "core/lambda.h"
#include "core/sigv4.h"
#include "core/util.h"

//  A chat's server-sent events: the largest one sent as it is, and the most
//  a client may leave unread (past either, a marker goes instead)
#define HTTP_STREAM_EVENT_MAX   (4 * 1024 * 1024)
#define HTTP_STREAM_BACKLOG_MAX (16 * 1024 * 1024)

typedef struct _request_t request_t;

//  What the loop polls, in this order (items [] in http_actor)
typedef enum {
    ITEM_PIPE, ITEM_GATEWAY, ITEM_MHD, ITEM_POOL, ITEM_AGENT, ITEM_JWKS, ITEM_COUNT
} item_t;

typedef struct {
    zsock_t *pipe;                  //  Actor command pipe
    const config_t *config;         //  Server settings (not owned)
    struct MHD_Daemon *daemon;      //  libmicrohttpd instance
    int epoll_fd;                   //  MHD's epoll fd, polled by us
    int port;                       //  Bound TCP port
    zsock_t *gateway;               //  DEALER to the gateway actor
    api_t *api;                     //  REST handlers that need no store (API_NO_STORE)
    apipool_t *apipool;             //  Control-plane threads: every other REST request
    zsock_t *agent;                 //  DEALER to the agent actor (POST /api/chat)
    auth_t *auth;                   //  Who is calling (JWT, API tokens, local)
    zactor_t *jwks_refresher;       //  Keeps the JWKS fresh off our thread (jwt mode)
    zlistx_t *key_waiters;          //  request_t parked until the refresher fetched keys
    bool fetch_asked;               //  FETCH sent to the refresher, FETCHED not back yet
    zhashx_t *pending;              //  request id -> request_t parked on gateway or pool
    size_t active;                  //  Requests whose head came whole, not completed yet
    bool access_log;                //  Log one line per request?
    bool terminated;                //  Did caller ask us to quit?
    bool draining;                  //  $TERM received; finishing requests in flight
    int64_t drain_deadline;         //  Monotonic ms when draining gives up
    int64_t park_ms;                //  How long a call may stay parked on gateway
    int64_t next_expiry;            //  Monotonic ms of the next look for expired requests
    msg_outbox_t *invalidates;      //  INVALIDATEs gateway's full queue could not take yet
    size_t body_held;               //  Body bytes reserved by requests not completed
    size_t body_cap;                //  Most that may be reserved at once (--max-body-total-mb)
    //  Sockets found empty and not touched since (poller_poll_known): not
    //  asked for their events before the loop sleeps. A send on one (the
    //  agent's, the refresher's) must clear its entry.
    bool known [ITEM_COUNT];
    size_t resumed;                 //  Connections resumed in this turn of the loop
} self_t;

//  Who a suspended request waits for. Those parked on gateway, the pool or
//  the agent are in `pending` under their id; those waiting for keys are in
//  key_waiters.
typedef enum {
    PARKED_NOT,                     //  Not suspended (or answered)
    PARKED_GATEWAY,                 //  An invoke: gateway's REPLY, or our deadline
    PARKED_POOL,                    //  A control-plane request: the pool's reply or deadline
    PARKED_AGENT,                   //  A chat: the agent's ANSWER, our deadline, or the client gone
    PARKED_KEYS                     //  A token whose key the JWKS refresher is fetching
} parked_t;

//  A connection from accept to close (MHD_OPTION_NOTIFY_CONNECTION). MHD
//  may never call the completion callback for a request it gave up on by
//  itself (in 0.9.75, one whose query filled its memory pool never got
//  one), so the connection's close frees what the URI logger allocated.
typedef struct {
    request_t *request;             //  Its request not completed yet, or NULL
    size_t requests;                //  Requests whose head came whole on it
} conn_t;

struct _request_t {
    self_t *self;                   //  Back pointer for callbacks
    conn_t *conn;                   //  Its connection (MHD's socket context), or NULL
    char id [UTIL_ID_SIZE];         //  Our id for the gateway round trip
    char *raw_uri;                  //  URI as sent (path and query, not decoded)
    int64_t started_us;             //  Monotonic start, for the access log
    char *body;                     //  Request body collected so far
    size_t body_size;               //  Bytes in body
    bool too_large;                 //  Body went past the limit
    size_t held;                    //  Bytes of body_held reserved for this request
    bool over_budget;               //  Its body did not fit in --max-body-total-mb: 503
    bool dispatched;                //  Handler has acted on the full request
    bool in_flight;                 //  Its head came whole: counted in self->active
    parked_t parked;                //  Suspended, and waiting for whom
    int64_t deadline;               //  Monotonic ms when we answer 504 ourselves (gateway calls, chats)
    bool streaming;                 //  Chat answered with server-sent events (stream: true)
    bool stream_queued;             //  Its response is queued
    bool stream_done;               //  Its last event is in stream_data
    bool stream_suspended;          //  Suspended in the content reader, waiting for events
    char *stream_data;              //  Events not sent yet
    size_t stream_size;             //  Bytes in stream_data
    size_t stream_sent;             //  Of those, bytes already handed to MHD
    struct MHD_Connection *connection;  //  For resume
    int status;                     //  Status we answered
    int reply_status;               //  Status from the gateway REPLY
    cJSON *reply_headers;           //  Headers from the gateway REPLY
    char *reply_body;               //  Body from the gateway REPLY
    size_t reply_size;              //  Its size
    char *method_copy;              //  For the access log after completion
    char *path_copy;                //  Ditto
    bool lambda;                    //  A Lambda API request (/2015-03-31): Lambda's shapes and errors
    char *lambda_headers;           //  Its headers as JSON, for the pool and the gateway
    char *lambda_forward;           //  An invoke sent on to gateway: how (core/lambda.h), for its reply
};

static void
    s_lambda_pool_reply (request_t *request, apipool_reply_t *reply);
static enum MHD_Result
    s_wait_for_keys (request_t *request, struct MHD_Connection *connection);

//  --------------------------------------------------------------------------
//  Outside input in the log: control characters (C0, DEL and the C1 range
//  U+0080..U+009F), bytes that are not UTF-8 and the backslash are written
//  as \xNN, so a path, a method or a header never starts a log line of its
//  own nor drives the terminal that shows the log; past size, the text is
//  cut and ends in "...". Returns out.

#define HTTP_LOG_TEXT_MAX 512

//  Bytes in the UTF-8 sequence at text (2..4), or 0 if it is not one or
//  encodes a C1 control
static size_t
s_utf8_length (const unsigned char *text)
{
    size_t length = text [0] >= 0xc2 && text [0] <= 0xdf ? 2
                  : text [0] >= 0xe0 && text [0] <= 0xef ? 3
                  : text [0] >= 0xf0 && text [0] <= 0xf4 ? 4 : 0;
    for (size_t i = 1; i < length; i++)
        if ((text [i] & 0xc0) != 0x80)
            return 0;
    if (length == 2 && text [0] == 0xc2 && text [1] < 0xa0)
        return 0;                   //  U+0080..U+009F
    return length;
}

static const char *
s_printable (const char *text, char *out, size_t size)
{
    assert (size >= 16);
    size_t used = 0;
    const unsigned char *byte = (const unsigned char *) (text ? text : "-");
    while (*byte) {
        if (used + 4 + 4 >= size) {
            memcpy (out + used, "...", 3);
            used += 3;
            break;
        }
        size_t length = *byte >= 0x80 ? s_utf8_length (byte) : 1;
        if (length > 1) {
            memcpy (out + used, byte, length);
            used += length;
            byte += length;
        }
        else {
            if (*byte < 0x20 || *byte >= 0x7f || *byte == '\\')
                used += (size_t) snprintf (out + used, size - used, "\\x%02x", *byte);
            else
                out [used++] = (char) *byte;
            byte++;
        }
    }
    out [used] = 0;
    return out;
}

//  --------------------------------------------------------------------------
//  Requests that a proxy in front of us could read differently: each gets
//  400 with a detail before anything acts on it. libmicrohttpd already
//  refuses a header line without a colon, a Content-Length that is not a
//  number and an unknown HTTP version; these are the rest that we can see.
//  It does not let us see two more: bare LF line ends and obs-folded header
//  lines, which 0.9.75 accepts (it joins a folded line to the one before);
//  README says so. Its strict mode (MHD_OPTION_STRICT_FOR_CLIENT) is not
//  used: it closes the connection without an answer on a space in the
//  target, where we answer 400 and say why.

typedef struct {
    int content_length;             //  Content-Length headers seen
    int transfer_encoding;          //  Transfer-Encoding headers seen
    int host;                       //  Host headers seen
    const char *encoding;           //  The last Transfer-Encoding value
    const char *detail;             //  Why the headers are refused, or NULL
} s_header_check_t;

//  RFC 9110 token characters
static bool
s_is_tchar (unsigned char c)
{
    return isalnum (c) || (c && strchr ("!#$%&'*+-.^_`|~", c));
}

static enum MHD_Result
s_check_header (void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    s_header_check_t *check = (s_header_check_t *) cls;
    if (!key || !*key) {
        check->detail = "A header has an empty name";
        return MHD_NO;
    }
    for (const unsigned char *c = (const unsigned char *) key; *c; c++)
        if (!s_is_tchar (*c)) {
            check->detail = "A header name has a character that header names may not have";
            return MHD_NO;
        }
    for (const unsigned char *c = (const unsigned char *) (value ? value : ""); *c; c++)
        if ((*c < 0x20 && *c != '\t') || *c == 0x7f) {
            check->detail = "A header value has a control character (a bare CR, or another)";
            return MHD_NO;
        }
    if (strcasecmp (key, "Content-Length") == 0)
        check->content_length++;
    else
    if (strcasecmp (key, "Transfer-Encoding") == 0) {
        check->transfer_encoding++;
        check->encoding = value ? value : "";
    }
    else
    if (strcasecmp (key, "Host") == 0)
        check->host++;
    return MHD_YES;
}

//  Why this request is refused (400), or NULL
static const char *
s_check_request (request_t *request, struct MHD_Connection *connection, const char *url, const char *method,
                 const char *version)
{
    if (!*method)
        return "The request has no method";
    for (const unsigned char *c = (const unsigned char *) method; *c; c++)
        if (!s_is_tchar (*c))
            return "The method has a character that methods may not have";
    //  Origin form only: a path from the root. An absolute URI or "*"
    //  names a target a proxy would route on, not this server's path
    const char *raw = request->raw_uri ? request->raw_uri : "";
    if (raw [0] != '/')
        return "The request target must be a path starting with '/' (origin form)";
    for (const unsigned char *c = (const unsigned char *) raw; *c; c++)
        if (*c <= 0x20 || *c == 0x7f)
            return "The request target has a control character or a space; percent-encode it";
    //  Decoded control characters in the path (%00 cuts it short for C,
    //  %0d%0a would write lines): never a real path
    const char *query = strchr (raw, '?');
    size_t path_size = query ? (size_t) (query - raw) : strlen (raw);
    for (size_t i = 0; i + 2 < path_size; i++)
        if (raw [i] == '%' && (raw [i + 1] == '0' || raw [i + 1] == '1') && isxdigit ((unsigned char) raw [i + 2]))
            return "The path has an encoded control character (%00 to %1F)";
    for (const unsigned char *c = (const unsigned char *) url; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            return "The path has an encoded control character";

    s_header_check_t check = { 0 };
    MHD_get_connection_values (connection, MHD_HEADER_KIND, s_check_header, &check);
    if (check.detail)
        return check.detail;
    if (check.host > 1)
        return "The request has more than one Host header";
    if (check.host == 0 && version && streq (version, MHD_HTTP_VERSION_1_1))
        return "An HTTP/1.1 request must have a Host header";
    if (check.content_length > 1)
        return "The request has more than one Content-Length header";
    if (check.transfer_encoding && check.content_length)
        return "The request has both Content-Length and Transfer-Encoding; send one";
    if (check.transfer_encoding > 1)
        return "The request has more than one Transfer-Encoding header";
    if (check.transfer_encoding && strcasecmp (check.encoding, "chunked") != 0)
        return "Transfer-Encoding must be 'chunked' alone (no other coding is accepted)";
    return NULL;
}

//  --------------------------------------------------------------------------
//  Responses

static const char *
s_content_type (const char *path)
{
    const char *dot = strrchr (path, '.');
    if (!dot)
        return "application/octet-stream";
    static const char *types [][2] = {
        { ".html", "text/html; charset=utf-8" }, { ".js", "text/javascript; charset=utf-8" },
        { ".mjs", "text/javascript; charset=utf-8" }, { ".css", "text/css; charset=utf-8" },
        { ".json", "application/json" }, { ".svg", "image/svg+xml" }, { ".png", "image/png" },
        { ".ico", "image/x-icon" }, { ".woff2", "font/woff2" }, { ".woff", "font/woff" },
        { ".ttf", "font/ttf" }, { ".map", "application/json" }, { ".txt", "text/plain; charset=utf-8" },
        { ".wasm", "application/wasm" }, { ".jpg", "image/jpeg" }, { ".webp", "image/webp" },
    };
    for (size_t i = 0; i < sizeof types / sizeof types [0]; i++)
        if (streq (dot, types [i][0]))
            return types [i][1];
    return "application/octet-stream";
}

//  CORS per API.md: the configured frontend origin, with credentials
static void
s_add_cors (self_t *self, struct MHD_Connection *connection, struct MHD_Response *response)
{
    const char *origin = MHD_lookup_connection_value (connection, MHD_HEADER_KIND, "Origin");
    if (origin && streq (origin, self->config->frontend_url)) {
        MHD_add_response_header (response, "Access-Control-Allow-Origin", origin);
        MHD_add_response_header (response, "Access-Control-Allow-Credentials", "true");
    }
    MHD_add_response_header (response, "Vary", "Origin");
}

//  Queue a response; takes ownership of body (heap, may be NULL)
static enum MHD_Result
s_respond (request_t *request, struct MHD_Connection *connection, int status,
           const char *content_type, char *body, size_t size, cJSON *headers)
{
    self_t *self = request->self;
    struct MHD_Response *response = MHD_create_response_from_buffer (
        size, body ? body : (void *) "", body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!response) {
        free (body);
        return MHD_NO;
    }
    bool has_type = false;
    cJSON *header;
    cJSON_ArrayForEach (header, headers) {
        if (!cJSON_IsString (header) || !header->string)
            continue;
        if (strcasecmp (header->string, "content-type") == 0)
            has_type = true;
        //  MHD refuses values with CR/LF, so a hostile header cannot split the response
        MHD_add_response_header (response, header->string, header->valuestring);
    }
    if (content_type && !has_type)
        MHD_add_response_header (response, "Content-Type", content_type);
    s_add_cors (self, connection, response);
    request->status = status;
    enum MHD_Result rc = MHD_queue_response (connection, (unsigned int) status, response);
    MHD_destroy_response (response);
    return rc;
}

static enum MHD_Result
s_respond_detail (request_t *request, struct MHD_Connection *connection, int status, const char *detail)
{
    char *body = api_detail_json (detail);
    return s_respond (request, connection, status, "application/json", body, strlen (body), NULL);
}

//  A 503 for a full queue: the caller may retry in a second
static enum MHD_Result
s_respond_busy (request_t *request, struct MHD_Connection *connection, const char *detail)
{
    cJSON *headers = cJSON_CreateObject ();
    cJSON_AddStringToObject (headers, "Retry-After", "1");
    char *body = api_detail_json (detail);
    enum MHD_Result rc = s_respond (request, connection, 503, "application/json", body, strlen (body), headers);
    cJSON_Delete (headers);
    return rc;
}

//  --------------------------------------------------------------------------
//  Static files of the web UI

static enum MHD_Result
s_serve_static (request_t *request, struct MHD_Connection *connection, const char *method, const char *url)
{
    self_t *self = request->self;
    if (strneq (method, "GET") && strneq (method, "HEAD"))
        return s_respond_detail (request, connection, 405, API_METHOD_NOT_ALLOWED);
    //  Refuse any path that could climb out of the web dir
    if (strstr (url, "..") || strchr (url, '\\') || strlen (url) > 1024)
        return s_respond_detail (request, connection, 404, API_NOT_FOUND);

    char path [2048];
    bool is_asset = strncmp (url, "/assets/", 8) == 0;
    snprintf (path, sizeof path, "%s%s", self->config->web_dir, url);
    struct stat st;
    if (stat (path, &st) || !S_ISREG (st.st_mode)) {
        if (is_asset || strrchr (url, '.') > strrchr (url, '/'))
            return s_respond_detail (request, connection, 404, API_NOT_FOUND);
        //  Client-side route: the single-page app decides
        snprintf (path, sizeof path, "%s/index.html", self->config->web_dir);
        if (stat (path, &st) || !S_ISREG (st.st_mode)) {
            const char *page = "<!doctype html><title>Clowdy</title><h1>Clowdy</h1>"
                "<p>The web UI is not built. Run <code>scripts/build-web</code> (scripts/run does it).</p>"
                "<p>The API is at <a href=\"/api/health\">/api</a>.</p>";
            return s_respond (request, connection, 200, "text/html; charset=utf-8",
                              strdup (page), strlen (page), NULL);
        }
    }
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return s_respond_detail (request, connection, 404, API_NOT_FOUND);
    struct MHD_Response *response = MHD_create_response_from_fd ((uint64_t) st.st_size, fd);
    if (!response) {
        close (fd);
        return MHD_NO;
    }
    MHD_add_response_header (response, "Content-Type", s_content_type (path));
    MHD_add_response_header (response, "Cache-Control",
                             is_asset ? "public, max-age=31536000, immutable" : "no-cache");
    request->status = 200;
    enum MHD_Result rc = MHD_queue_response (connection, 200, response);
    MHD_destroy_response (response);
    return rc;
}

//  --------------------------------------------------------------------------
//  Requests for the gateway actor

static enum MHD_Result
s_collect_header (void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    cJSON *headers = (cJSON *) cls;
    if (!key || !value)
        return MHD_YES;
    char name [256];
    size_t len = strlen (key);
    if (len >= sizeof name)
        return MHD_YES;
    for (size_t i = 0; i <= len; i++)
        name [i] = (char) tolower ((unsigned char) key [i]);
    //  Repeated headers: the last one wins, as for query parameters
    cJSON_DeleteItemFromObjectCaseSensitive (headers, name);
    cJSON_AddStringToObject (headers, name, value);
    return MHD_YES;
}

//  Suspend the request until whoever it is parked on answers, or its
//  deadline (0: none of ours) passes
static enum MHD_Result
s_park (request_t *request, struct MHD_Connection *connection, parked_t where, int64_t deadline)
{
    request->parked = where;
    request->connection = connection;
    request->deadline = deadline;
    zhashx_insert (request->self->pending, request->id, request);
    MHD_suspend_connection (connection);
    return MHD_YES;
}

//  MHD answers a resumed connection in its next passes, which the loop
//  makes in the same turn (see http_actor)
static void
s_resume_connection (request_t *request)
{
    request->self->resumed++;
    MHD_resume_connection (request->connection);
}

//  Answer a parked request: it leaves `pending`, and the handler sends the
//  reply when MHD calls it again. Takes headers (NULL: JSON) and body.
static void
s_resume (request_t *request, int status, cJSON *headers, char *body, size_t size)
{
    if (request->parked != PARKED_KEYS)
        zhashx_delete (request->self->pending, request->id);
    request->parked = PARKED_NOT;
    request->reply_status = status >= 100 && status <= 599 ? status : 502;
    if (!headers) {
        headers = cJSON_CreateObject ();
        cJSON_AddStringToObject (headers, "Content-Type", "application/json");
    }
    request->reply_headers = headers;
    request->reply_body = body;
    request->reply_size = size;
    s_resume_connection (request);
}

//  A copy of a reply body, for s_resume
static char *
s_body_copy (const byte *body, size_t size)
{
    char *copy = (char *) malloc (size ? size : 1);
    memcpy (copy, body, size);
    return copy;
}

//  Tell the gateway what a control-plane write changed. The write is done,
//  so this must not be lost: when gateway's queue is full it waits in the
//  outbox, which goes out before any later INVOKE (read-your-writes).
static void
s_send_invalidate (self_t *self, const char *what)
{
    zmsg_t *invalidate = msg_encode_invalidate (NULL, what);
    if (msg_outbox_send (self->invalidates, &invalidate) == 0 && !msg_outbox_flush (self->invalidates))
        zsys_warning ("http: gateway's queue is full; INVALIDATE %s waits in the outbox", what);
}

static enum MHD_Result
s_forward_to_gateway (request_t *request, struct MHD_Connection *connection, const char *method,
                      const char *kind, const char *target, const char *user_id)
{
    self_t *self = request->self;
    if (self->draining)
        return s_respond_detail (request, connection, 503, "Server is shutting down");

    //  Raw path and query from the URI as the client sent it
    const char *raw = request->raw_uri ? request->raw_uri : "";
    const char *question = strchr (raw, '?');
    char *raw_path = question ? strndup (raw, (size_t) (question - raw)) : strdup (raw);
    cJSON *headers = cJSON_CreateObject ();
    MHD_get_connection_values (connection, MHD_HEADER_KIND, s_collect_header, headers);
    char *headers_text = cJSON_PrintUnformatted (headers);
    cJSON_Delete (headers);

    util_new_id (request->id);
    //  Invalidations not yet sent go first, so this call sees those writes
    if (!msg_outbox_flush (self->invalidates)) {
        free (raw_path);
        free (headers_text);
        zsys_warning ("http: gateway's queue is full; request %s answered 503", request->id);
        return s_respond_busy (request, connection, "The gateway could not take the call; retry shortly");
    }
    int rc = msg_send_invoke (self->gateway, NULL, request->id, kind, target, method,
                              raw_path, question ? question + 1 : "", headers_text,
                              request->body, request->body_size, user_id);
    free (raw_path);
    free (headers_text);
    if (rc) {
        zsys_error ("http: could not send INVOKE for request %s to gateway", request->id);
        return s_respond_busy (request, connection, "The gateway could not take the call; retry shortly");
    }
    return s_park (request, connection, PARKED_GATEWAY, zclock_mono () + self->park_ms);
}

static void
s_handle_gateway_reply (self_t *self)
{
    msg_t *msg = msg_recv (self->gateway, false);
    if (!msg)
        return;
    if (msg_id (msg) == MSG_ID_REPLY) {
        request_t *request = (request_t *) zhashx_lookup (self->pending, msg_reply_request_id (msg));
        if (request && request->lambda_forward) {
            size_t size;
            const byte *body = msg_reply_body (msg, &size);
            int status;
            cJSON *headers;
            char *text;
            lambda_invoke_reply (request->lambda_forward, (int) msg_reply_status (msg), (const char *) body, size,
                                 &status, &headers, &text, &size);
            s_resume (request, status, headers, text, size);
        }
        else
        if (request) {
            size_t size;
            const byte *body = msg_reply_body (msg, &size);
            s_resume (request, (int) msg_reply_status (msg), msg_reply_headers_take (msg),
                      s_body_copy (body, size), size);
        }
        else    //  The client went away, or the call expired: drop the reply
            zsys_info ("http: dropped a REPLY for request %s, no longer waiting", msg_reply_request_id (msg));
    }
    else
        zsys_warning ("http: unexpected '%s' from gateway", msg_command (msg));
    msg_destroy (&msg);
}

//  --------------------------------------------------------------------------
//  POST /api/chat: parked on the agent actor until its ANSWER or a deadline
//  (the chat's time budget plus a margin: the agent answers 504 itself at
//  the budget, so ours only fires if the agent is stuck)


static enum MHD_Result
s_forward_to_agent (request_t *request, struct MHD_Connection *connection, const char *method,
                    const char *user_id, const char *authorization)
{
    self_t *self = request->self;
    if (strneq (method, "POST"))
        return s_respond_detail (request, connection, 405, API_METHOD_NOT_ALLOWED);
    if (self->draining)
        return s_respond_detail (request, connection, 503, "Server is shutting down");
    util_new_id (request->id);
    self->known [ITEM_AGENT] = false;
    if (msg_send_chat (self->agent, NULL, request->id, user_id, request->body, request->body_size,
                       authorization ? authorization : "")) {
        zsys_error ("http: could not send CHAT for request %s to the agent", request->id);
        return s_respond_detail (request, connection, 503, "The assistant could not take the chat; retry shortly");
    }
    return s_park (request, connection, PARKED_AGENT,
                   zclock_mono () + deadlines_chat_ms (self->config->ai_timeout * 1000LL));
}

//  A chat that asked for `stream: true` is answered with server-sent events
//  from its first EVENT on: 200 and text/event-stream, then one event per
//  EVENT, and a last `done` (the reply) or `error` ({status, detail,
//  tool_calls}) event from ANSWER. A chat that ends before any EVENT (bad
//  body, not configured, the provider failed at once) gets a plain reply.

static void
s_stream_append (request_t *request, const char *name, cJSON *data)
{
    //  Printed unformatted, so the data is one line whatever was sent
    char *text = data ? cJSON_PrintUnformatted (data) : strdup ("null");
    size_t unsent = request->stream_size - request->stream_sent;
    if (text && (strlen (text) > HTTP_STREAM_EVENT_MAX || unsent + strlen (text) > HTTP_STREAM_BACKLOG_MAX)) {
        //  A huge tool result, or a client that does not read: the client
        //  gets a marker, not the bytes, so memory stays bounded
        zsys_warning ("http: chat %s: a %zu-byte '%s' event is too large to stream; sent a marker",
                      request->id, strlen (text), name);
        free (text);
        text = strdup ("{\"truncated\":true,\"detail\":\"Too large to stream; see the function's logs\"}");
    }
    char *event = zsys_sprintf ("event: %s\ndata: %s\n\n", name, text);
    size_t size = strlen (event);
    if (request->stream_sent > 0) {
        //  Drop what MHD already took, once per event (not per read)
        memmove (request->stream_data, request->stream_data + request->stream_sent, unsent);
        request->stream_size = unsent;
        request->stream_sent = 0;
    }
    request->stream_data = (char *) realloc (request->stream_data, request->stream_size + size);
    memcpy (request->stream_data + request->stream_size, event, size);
    request->stream_size += size;
    zstr_free (&event);
    free (text);
}

//  More to send: let the content reader run again
static void
s_stream_wake (request_t *request)
{
    if (request->stream_suspended) {
        request->stream_suspended = false;
        s_resume_connection (request);
    }
}

//  The last event of a stream: `done` with the reply, or `error`
static void
s_stream_end (request_t *request, int status, cJSON *body)
{
    if (status != 200 && cJSON_IsObject (body))
        cJSON_AddNumberToObject (body, "status", status);
    s_stream_append (request, status == 200 ? "done" : "error", body);
    request->stream_done = true;
    zhashx_delete (request->self->pending, request->id);       //  As s_resume does
    request->parked = PARKED_NOT;
    s_stream_wake (request);
}

//  Answer a parked request with {detail}: the last event of a stream, or
//  a plain reply
static void
s_resume_detail (request_t *request, int status, const char *detail)
{
    if (request->streaming) {
        cJSON *reply = cJSON_CreateObject ();
        cJSON_AddStringToObject (reply, "detail", detail);
        s_stream_end (request, status, reply);
        cJSON_Delete (reply);
    }
    else
    if (request->lambda) {
        char *body = lambda_error_json (status == 429 ? "TooManyRequestsException" : "ServiceException", detail);
        s_resume (request, status, lambda_headers (status, body), body, strlen (body));
    }
    else {
        char *body = api_detail_json (detail);
        s_resume (request, status, NULL, body, strlen (body));
    }
}

//  Tell the agent to stop a chat nobody waits for any more
static void
s_cancel_chat (request_t *request)
{
    request->self->known [ITEM_AGENT] = false;
    if (msg_send_cancel (request->self->agent, NULL, request->id))
        zsys_warning ("http: could not send CANCEL for chat %s to the agent", request->id);
}

static ssize_t
s_stream_reader (void *cls, uint64_t position, char *buffer, size_t max)
{
    request_t *request = (request_t *) cls;
    size_t unsent = request->stream_size - request->stream_sent;
    if (unsent) {
        size_t size = unsent < max ? unsent : max;
        memcpy (buffer, request->stream_data + request->stream_sent, size);
        request->stream_sent += size;
        if (request->stream_sent == request->stream_size)
            request->stream_sent = request->stream_size = 0;
        return (ssize_t) size;
    }
    if (request->stream_done)
        return MHD_CONTENT_READER_END_OF_STREAM;
    //  Nothing yet: wait, off MHD's loop, until the next event wakes us
    request->stream_suspended = true;
    MHD_suspend_connection (request->connection);
    return 0;
}

static enum MHD_Result
s_stream_queue (request_t *request, struct MHD_Connection *connection)
{
    request->stream_queued = true;
    struct MHD_Response *response = MHD_create_response_from_callback (MHD_SIZE_UNKNOWN, 4096,
                                                                       s_stream_reader, request, NULL);
    if (!response)
        return MHD_NO;
    MHD_add_response_header (response, "Content-Type", "text/event-stream");
    MHD_add_response_header (response, "Cache-Control", "no-cache");
    MHD_add_response_header (response, "X-Accel-Buffering", "no");
    s_add_cors (request->self, connection, response);
    request->status = 200;
    enum MHD_Result rc = MHD_queue_response (connection, 200, response);
    MHD_destroy_response (response);
    return rc;
}

static void
s_handle_agent_answer (self_t *self)
{
    msg_t *msg = msg_recv (self->agent, false);
    if (!msg)
        return;
    if (msg_id (msg) == MSG_ID_EVENT) {
        request_t *request = (request_t *) zhashx_lookup (self->pending, msg_event_request_id (msg));
        if (request) {
            bool first = !request->streaming;
            request->streaming = true;
            s_stream_append (request, msg_event_name (msg), msg_event_data (msg));
            if (first)
                s_resume_connection (request);      //  To queue the stream
            else
                s_stream_wake (request);
        }
        msg_destroy (&msg);
        return;
    }
    request_t *request = msg_id (msg) == MSG_ID_ANSWER
                       ? (request_t *) zhashx_lookup (self->pending, msg_answer_request_id (msg)) : NULL;
    if (request && request->streaming) {
        size_t size;
        const byte *body = msg_answer_body (msg, &size);
        cJSON *reply = cJSON_ParseWithLength ((const char *) body, size);
        s_stream_end (request, (int) msg_answer_status (msg), reply);
        cJSON_Delete (reply);
    }
    else
    if (request) {
        size_t size;
        const byte *body = msg_answer_body (msg, &size);
        s_resume (request, (int) msg_answer_status (msg), msg_answer_headers_take (msg),
                  s_body_copy (body, size), size);
    }
    else
    if (msg_id (msg) != MSG_ID_ANSWER)
        zsys_warning ("http: unexpected '%s' from the agent", msg_command (msg));
    //  else: the client went away or the deadline answered it; drop the answer
    msg_destroy (&msg);
}

//  True if the client closed a suspended connection (MHD does not watch
//  those): the UI's stop button aborts its fetch, and the chat should stop
static bool
s_client_gone (request_t *request)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info (request->connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!info)
        return false;
    char byte;
    ssize_t got = recv (info->connect_fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

//  Requests parked on gateway or the agent past their deadline, and chats
//  whose client went away: gateway or the agent is lost (wedged, or its
//  answer dropped), so the client gets 504 now (a chat's agent is told to
//  stop) and a late answer is dropped. The pool keeps its own deadlines.
static void
s_expire_parked (self_t *self)
{
    int64_t now = zclock_mono ();
    if (now < self->next_expiry)
        return;
    self->next_expiry = now + 250;
    zlistx_t *expired = zlistx_new ();
    for (request_t *request = (request_t *) zhashx_first (self->pending); request;
         request = (request_t *) zhashx_next (self->pending))
        if ((request->parked == PARKED_GATEWAY && now > request->deadline)
        ||  (request->parked == PARKED_AGENT && (now > request->deadline || s_client_gone (request))))
            zlistx_add_end (expired, request);
    for (request_t *request = (request_t *) zlistx_first (expired); request;
         request = (request_t *) zlistx_next (expired)) {
        if (request->parked == PARKED_AGENT) {
            s_cancel_chat (request);
            s_resume_detail (request, 504, "The assistant did not answer in time (the --ai-timeout budget "
                                           "and a margin); try again");
        }
        else {
            char path [HTTP_LOG_TEXT_MAX];
            zsys_warning ("http: no answer from gateway for request %s %s by its deadline; answered 504",
                          request->id, s_printable (request->path_copy, path, sizeof path));
            s_resume_detail (request, 504, "The call got no answer in time: the server lost track of it. "
                                           "It may or may not have run; check the function's invocation log");
        }
    }
    zlistx_destroy (&expired);
}

//  --------------------------------------------------------------------------
//  JWKS refresher: fetches the provider's keys at start and before they age
//  out, from its own thread, so requests never wait for the provider (see
//  auth_refresh). auth_t is thread-safe; this actor only calls auth_refresh.

static void
s_jwks_refresher (zsock_t *pipe, void *auth)
{
    actor_name_thread ("jwks refresher");
    zsock_signal (pipe, 0);
    zpoller_t *poller = zpoller_new (pipe, NULL);
    zpoller_set_nonstop (poller, true);
    bool asked = false;
    while (true) {
        //  FETCH: a token named a key we may not have; fetch (if the 10 s
        //  gap allows), then let http check its parked requests again
        auth_refresh ((auth_t *) auth, asked);
        if (asked)
            zstr_send (pipe, "FETCHED");
        asked = false;
        if (zpoller_wait (poller, 30 * 1000) == pipe) {
            char *command = zstr_recv (pipe);
            bool stop = !command || streq (command, "$TERM");
            asked = command && streq (command, "FETCH");
            zstr_free (&command);
            if (stop)
                break;
        }
    }
    zpoller_destroy (&poller);
}

//  --------------------------------------------------------------------------
//  Requests for the control-plane pool

static enum MHD_Result
s_forward_to_pool (request_t *request, struct MHD_Connection *connection, const api_request_t *api_request,
                   const char *authorization)
{
    //  While draining too: a request already in progress (one that waited
    //  for signing keys, say) is finished, within the drain time
    self_t *self = request->self;
    util_new_id (request->id);
    if (apipool_submit (self->apipool, request->id, api_request, authorization)) {
        char method [64], path [HTTP_LOG_TEXT_MAX];
        zsys_warning ("http: control-plane queue full: %s %s answered 503",
                      s_printable (api_request->method, method, sizeof method),
                      s_printable (api_request->path, path, sizeof path));
        return s_respond_busy (request, connection, "The control plane is busy; try again shortly");
    }
    return s_park (request, connection, PARKED_POOL, 0);     //  The pool keeps the deadline
}

//  Resume the request a pool reply (or expiry) answers; an INVALIDATE
//  goes to the gateway first
static void
s_resume_with_pool_reply (self_t *self, apipool_reply_t *reply)
{
    request_t *request = (request_t *) zhashx_lookup (self->pending, reply->id);
    if (!request)
        return;                 //  cannot happen: completion cancels the job
    if (reply->invalidate)
        s_send_invalidate (self, reply->invalidate);
    if (request->lambda) {
        s_lambda_pool_reply (request, reply);
        return;
    }
    cJSON *headers = cJSON_CreateObject ();
    cJSON_AddStringToObject (headers, "Content-Type", "application/json");
    if (reply->unauthorized)
        cJSON_AddStringToObject (headers, "WWW-Authenticate", "Bearer");
    if (reply->retry_after > 0) {
        char seconds [16];
        snprintf (seconds, sizeof seconds, "%d", reply->retry_after);
        cJSON_AddStringToObject (headers, "Retry-After", seconds);
    }
    size_t size = strlen (reply->body);
    s_resume (request, reply->status, headers, reply->body, size);
    reply->body = NULL;
}

//  Replies that came back, and requests whose deadline passed
static void
s_handle_pool (self_t *self, bool readable)
{
    apipool_reply_t *reply;
    while (readable && (zsock_events (apipool_socket (self->apipool)) & ZMQ_POLLIN)) {
        reply = apipool_recv (self->apipool);
        if (reply)
            s_resume_with_pool_reply (self, reply);
        apipool_reply_destroy (&reply);
    }
    while ((reply = apipool_expired (self->apipool))) {
        s_resume_with_pool_reply (self, reply);
        apipool_reply_destroy (&reply);
    }
}

//  --------------------------------------------------------------------------
//  The Lambda API (/2015-03-31, core/lambda.h): every request goes to the
//  pool, with its headers; an invoke comes back LAMBDA_FORWARD and goes on
//  to the gateway under the same id (still parked), as a direct invoke of
//  kind `lambda`; its reply is turned into Lambda's there. An Event comes
//  back already queued by the pool (with its invocation id) and is answered
//  202 at once.

static enum MHD_Result
s_lambda_respond_error (request_t *request, struct MHD_Connection *connection, int status, const char *type,
                        const char *message)
{
    char *body = lambda_error_json (type, message);
    cJSON *headers = lambda_headers (status, body);
    enum MHD_Result rc = s_respond (request, connection, status, NULL, body, strlen (body), headers);
    cJSON_Delete (headers);
    return rc;
}

//  Resume a Lambda request with an error
static void
s_lambda_resume_error (request_t *request, int status, const char *type, const char *message)
{
    char *body = lambda_error_json (type, message);
    s_resume (request, status, lambda_headers (status, body), body, strlen (body));
}

//  Send a resolved invoke to the gateway; the request stays parked under its id
static void
s_lambda_forward (request_t *request, const char *forward_text)
{
    self_t *self = request->self;
    cJSON *forward = cJSON_Parse (forward_text);
    const char *function_id = cJSON_GetStringValue (cJSON_GetObjectItem (forward, "function_id"));
    const char *queued = cJSON_GetStringValue (cJSON_GetObjectItem (forward, "invocation_id"));
    if (queued) {
        //  An Event, which the pool queued (core/asyncq.h): answer it here
        char *reply = zsys_sprintf ("{\"invocation_id\":\"%s\"}", queued);
        int status;
        cJSON *headers = NULL;
        char *body = NULL;
        size_t size = 0;
        lambda_invoke_reply (forward_text, 202, reply, strlen (reply), &status, &headers, &body, &size);
        zstr_free (&reply);
        cJSON_Delete (forward);
        zstr_free (&request->body);
        s_resume (request, status, headers, body, size);
        return;
    }
    if (!function_id || self->draining || !msg_outbox_flush (self->invalidates)) {
        cJSON_Delete (forward);
        s_lambda_resume_error (request, 503, "ServiceException", self->draining ? "Server is shutting down"
                               : "The gateway could not take the call; retry shortly");
        return;
    }
    size_t size;
    char *body = lambda_invoke_body (request->body ? request->body : "", request->body_size, &size);
    char *path = zsys_sprintf ("/api/invoke/%s", function_id);
    //  A named version goes as "version=N" (gateway runs that one)
    char query [32] = "";
    cJSON *version = cJSON_GetObjectItem (forward, "version");
    if (cJSON_IsNumber (version))
        snprintf (query, sizeof query, "version=%d", version->valueint);
    int rc = msg_send_invoke (self->gateway, NULL, request->id, "lambda", function_id, "POST",
                              path, query, request->lambda_headers ? request->lambda_headers : "{}",
                              body, size, "");
    zstr_free (&path);
    free (body);
    cJSON_Delete (forward);
    zstr_free (&request->body);
    if (rc) {
        zsys_error ("http: could not send INVOKE for Lambda request %s to gateway", request->id);
        s_lambda_resume_error (request, 503, "ServiceException", "The gateway could not take the call; retry shortly");
        return;
    }
    request->lambda_forward = strdup (forward_text);
    request->parked = PARKED_GATEWAY;
    request->deadline = zclock_mono () + self->park_ms;
}

//  The pool's answer to a Lambda request: an invoke to send on, a refused
//  credential, or the reply itself
static void
s_lambda_pool_reply (request_t *request, apipool_reply_t *reply)
{
    if (reply->status == LAMBDA_FORWARD) {
        s_lambda_forward (request, reply->body);
        return;
    }
    cJSON *json = cJSON_Parse (reply->body ? reply->body : "");
    const char *detail = cJSON_GetStringValue (cJSON_GetObjectItem (json, "detail"));
    if (reply->unauthorized)
        //  AWS's answers to a bad signature or an unknown key
        s_lambda_resume_error (request, 403, detail && strstr (detail, "ignature") ? "InvalidSignatureException"
                               : "UnrecognizedClientException", detail ? detail : "Invalid credentials");
    else
    if (detail && !cJSON_GetObjectItem (json, "__type"))
        //  The pool's own answer (busy, or past its deadline)
        s_lambda_resume_error (request, reply->status, reply->status == 429 ? "TooManyRequestsException"
                               : "ServiceException", detail);
    else {
        size_t size = strlen (reply->body);
        s_resume (request, reply->status, lambda_headers (reply->status, reply->body), reply->body, size);
        reply->body = NULL;
    }
    cJSON_Delete (json);
}

static enum MHD_Result
s_lambda (request_t *request, struct MHD_Connection *connection, const char *url, const char *method)
{
    self_t *self = request->self;
    request->lambda = true;
    if (request->too_large) {
        char detail [128];
        snprintf (detail, sizeof detail, "Request must be smaller than %ld bytes", self->config->max_body);
        return s_lambda_respond_error (request, connection, 413, "RequestTooLargeException", detail);
    }
    if (self->draining)
        return s_lambda_respond_error (request, connection, 503, "ServiceException", "Server is shutting down");
    //  Who calls: in local mode no one needs credentials (a SigV4 signature
    //  is ignored); else a SigV4 signature or an API token is checked on the
    //  pool (they read the store), a JWT here
    char user_id [AUTH_USER_ID_SIZE] = "local";
    const char *authorization = MHD_lookup_connection_value (connection, MHD_HEADER_KIND, "Authorization");
    bool sigv4 = sigv4_is_header (authorization);
    const char *on_pool = NULL;
    bool local = auth_mode (self->auth) == AUTH_LOCAL && !auth_is_api_token (authorization);
    if (!local && (sigv4 || auth_is_api_token (authorization)))
        on_pool = authorization;
    else
    if (!local) {
        const char *detail = NULL;
        int verdict = auth_check (self->auth, authorization, user_id, sizeof user_id, &detail);
        if (verdict == AUTH_PENDING)
            return s_wait_for_keys (request, connection);
        if (verdict)
            return s_lambda_respond_error (request, connection, 403, "UnrecognizedClientException",
                                           detail ? detail : "Invalid credentials");
    }
    //  The path as sent goes with the headers, for SigV4 (which signs it
    //  encoded); the query goes raw
    const char *raw = request->raw_uri ? request->raw_uri : "";
    const char *question = strchr (raw, '?');
    if (!request->lambda_headers) {
        cJSON *headers = cJSON_CreateObject ();
        MHD_get_connection_values (connection, MHD_HEADER_KIND, s_collect_header, headers);
        char *raw_path = question ? strndup (raw, (size_t) (question - raw)) : strdup (raw);
        cJSON_AddStringToObject (headers, SIGV4_RAW_PATH, raw_path);
        free (raw_path);
        request->lambda_headers = cJSON_PrintUnformatted (headers);
        cJSON_Delete (headers);
    }
    api_request_t api_request = {
        .method = method, .path = url, .body = request->body, .body_size = request->body_size,
        .user_id = user_id, .query = question ? question + 1 : NULL, .headers = request->lambda_headers
    };
    return s_forward_to_pool (request, connection, &api_request, on_pool);
}

//  --------------------------------------------------------------------------
//  Dispatch of a complete request

//  A token whose key may come with a fetch: park the request until the
//  refresher has fetched (never more than its 5 s download timeout), so
//  this thread never waits for the provider
static enum MHD_Result
s_wait_for_keys (request_t *request, struct MHD_Connection *connection)
{
    self_t *self = request->self;
    if (self->draining)
        return s_respond_detail (request, connection, 503, "Server is shutting down");
    request->dispatched = false;        //  dispatched again when resumed
    request->parked = PARKED_KEYS;
    request->connection = connection;
    zlistx_add_end (self->key_waiters, request);
    if (!self->fetch_asked) {
        self->known [ITEM_JWKS] = false;
        zstr_send (self->jwks_refresher, "FETCH");
        self->fetch_asked = true;
    }
    MHD_suspend_connection (connection);
    return MHD_YES;
}

//  Resume a parked request to answer 503: the server is shutting down
static void
s_resume_shutting_down (request_t *request)
{
    request->dispatched = true;
    s_resume_detail (request, 503, "Server is shutting down");
}

//  Resume the requests parked for keys, to be dispatched again (or, when
//  shutting down, to answer 503)
static void
s_resume_key_waiters (self_t *self, bool shutting_down)
{
    request_t *request = (request_t *) zlistx_first (self->key_waiters);
    while (request) {
        if (shutting_down)
            s_resume_shutting_down (request);
        else {
            request->parked = PARKED_NOT;
            s_resume_connection (request);
        }
        request = (request_t *) zlistx_next (self->key_waiters);
    }
    zlistx_purge (self->key_waiters);
}

//  Does the query ask for an async invoke (async=1 or async=true)?
static bool
s_wants_async (const char *raw_uri)
{
    const char *query = raw_uri ? strchr (raw_uri, '?') : NULL;
    bool wants = false;
    for (const char *pair = query ? query + 1 : NULL; pair && *pair; ) {
        const char *amp = strchr (pair, '&');
        size_t length = amp ? (size_t) (amp - pair) : strlen (pair);
        if (strncmp (pair, "async=", 6) == 0)        //  the last one wins
            wants = (length == 7 && pair [6] == '1') || (length == 10 && strncmp (pair + 6, "true", 4) == 0);
        pair = amp ? amp + 1 : NULL;
    }
    return wants;
}

static enum MHD_Result
s_dispatch (request_t *request, struct MHD_Connection *connection, const char *url, const char *method)
{
    self_t *self = request->self;
    //  The functions' own origin (--gateway-host) serves functions only, so
    //  what they serve there never runs beside the dashboard or the API
    bool function_path = strncmp (url, "/api/gateway/", 13) == 0 || streq (url, "/api/gateway")
                      || strncmp (url, "/api/invoke/", 12) == 0;
    if (!function_path && strneq (url, "/api/health")
    &&  gwmap_host_is (MHD_lookup_connection_value (connection, MHD_HEADER_KIND, "Host"), self->config->gateway_host))
        return s_respond_detail (request, connection, 404, "Not found: this host serves only functions");
    if (streq (method, "OPTIONS") && strncmp (url, "/api/gateway/", 13) != 0) {
        struct MHD_Response *response = MHD_create_response_from_buffer (0, (void *) "", MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header (response, "Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS");
        MHD_add_response_header (response, "Access-Control-Allow-Headers", "Authorization, Content-Type");
        MHD_add_response_header (response, "Access-Control-Max-Age", "600");
        s_add_cors (self, connection, response);
        request->status = 204;
        enum MHD_Result rc = MHD_queue_response (connection, 204, response);
        MHD_destroy_response (response);
        return rc;
    }
    if (lambda_is_path (url))
        return s_lambda (request, connection, url, method);
    if (request->too_large) {
        char detail [128];
        snprintf (detail, sizeof detail, "Request body is larger than the limit of %ld bytes",
                  self->config->max_body);
        return s_respond_detail (request, connection, 413, detail);
    }
    if (strncmp (url, "/api/", 5) != 0 && strneq (url, "/api"))
        return s_serve_static (request, connection, method, url);

    //  Public by design: the gateway and direct invoke (and the API routes
    //  flagged API_PUBLIC: health and config)
    if (strncmp (url, "/api/gateway/", 13) == 0 || streq (url, "/api/gateway"))
        return s_forward_to_gateway (request, connection, method, "gateway",
                                     url [12] == '/' ? url + 13 : "", "");
    if (strncmp (url, "/api/invoke/", 12) == 0) {
        if (strneq (method, "POST"))
            return s_respond_detail (request, connection, 405, API_METHOD_NOT_ALLOWED);
        //  ?async=1 is queued by the REST API (public too: api_events.c),
        //  so it is written to SQLite on the pool, never on this loop
        if (!s_wants_async (request->raw_uri))
            return s_forward_to_gateway (request, connection, method, "direct", url + 12, "");
    }
    char user_id [AUTH_USER_ID_SIZE] = "local";
    int flags = api_route_flags (method, url);
    const char *authorization = MHD_lookup_connection_value (connection, MHD_HEADER_KIND, "Authorization");
    //  An API token is checked in the store: on the pool, never here
    bool token_on_pool = (flags < 0 || !(flags & API_PUBLIC)) && auth_is_api_token (authorization);
    if ((flags < 0 || !(flags & API_PUBLIC)) && !token_on_pool) {
        const char *detail = NULL;
        int verdict = auth_check (self->auth, authorization, user_id, sizeof user_id, &detail);
        if (verdict == AUTH_PENDING)
            return s_wait_for_keys (request, connection);
        if (verdict) {
            cJSON *headers = cJSON_CreateObject ();
            cJSON_AddStringToObject (headers, "WWW-Authenticate", "Bearer");
            char *body = api_detail_json (detail ? detail : "Invalid credentials");
            enum MHD_Result rc = s_respond (request, connection, 401, "application/json", body, strlen (body), headers);
            cJSON_Delete (headers);
            return rc;
        }
    }
    if (streq (url, "/api/chat"))
        return s_forward_to_agent (request, connection, method, user_id, token_on_pool ? authorization : NULL);

    api_request_t api_request = {
        .method = method, .path = url, .body = request->body, .body_size = request->body_size,
        .user_id = user_id
    };
    const char *question = request->raw_uri ? strchr (request->raw_uri, '?') : NULL;
    api_request.query = question ? question + 1 : NULL;
    if (token_on_pool || (flags >= 0 && !(flags & API_NO_STORE)))
        return s_forward_to_pool (request, connection, &api_request, token_on_pool ? authorization : NULL);
    if (flags < 0)
        return s_respond_detail (request, connection, 404, API_NOT_FOUND);
    //  Touches no store: answered here
    api_response_t api_response = { 0 };
    api_handle (self->api, &api_request, &api_response);
    char *body = api_response.body;
    api_response.body = NULL;
    enum MHD_Result rc = s_respond (request, connection, api_response.status, "application/json",
                                    body, strlen (body), NULL);
    api_response_reset (&api_response);
    return rc;
}

//  --------------------------------------------------------------------------
//  libmicrohttpd callbacks

//  MHD calls this when a request line has arrived: the request starts here
static void *
s_uri_logger (void *cls, const char *uri, struct MHD_Connection *connection)
{
    self_t *self = (self_t *) cls;
    request_t *request = (request_t *) zmalloc (sizeof (request_t));
    request->self = self;
    request->raw_uri = strdup (uri ? uri : "");
    request->started_us = util_monotonic_us ();
    const union MHD_ConnectionInfo *info = MHD_get_connection_info (connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn_t *conn = info ? (conn_t *) info->socket_context : NULL;
    if (conn) {
        conn->request = request;
        request->conn = conn;
    }
    //  MHD parses the query into its connection's memory pool right after
    //  this call; we never read its parsed arguments (raw_uri has the query),
    //  and a query of thousands of parameters exhausts that pool, after
    //  which libmicrohttpd 0.9.75 leaves the connection hanging without an
    //  answer. So MHD gets an empty query: uri points into MHD's own
    //  writable read buffer, where the query is about to be cut off anyway.
    char *question = uri ? strchr (uri, '?') : NULL;
    if (question)
        question [1] = 0;
    return request;
}

//  Take a body chunk, within --max-body and the global --max-body-total-mb
static void
s_take_body (request_t *request, const char *data, size_t size)
{
    self_t *self = request->self;
    if (request->too_large || request->over_budget)
        return;                     //  Discarded: answered 413 or 503 at the end
    if (request->body_size + size > (size_t) self->config->max_body) {
        request->too_large = true;
        zstr_free (&request->body);
        request->body_size = 0;
        return;
    }
    size_t needed = request->body_size + size;
    if (needed > request->held) {
        //  A chunked body (its size unknown) reserves as it grows
        if (self->body_held + (needed - request->held) > self->body_cap) {
            request->over_budget = true;
            zstr_free (&request->body);
            request->body_size = 0;
            return;
        }
        self->body_held += needed - request->held;
        request->held = needed;
        request->body = (char *) realloc (request->body, request->held + 1);
    }
    else
    if (!request->body)     //  Content-Length known: one allocation of that size
        request->body = (char *) malloc (request->held + 1);
    memcpy (request->body + request->body_size, data, size);
    request->body_size = needed;
    request->body [needed] = 0;
}

//  First call for a request, its headers in: refuse what is malformed,
//  too large or over the body budget before its body is read (MHD then
//  discards the body and closes the connection)
static enum MHD_Result
s_request_headers (request_t *request, struct MHD_Connection *connection, const char *url, const char *method,
                   const char *version)
{
    self_t *self = request->self;
    request->method_copy = strdup (method);
    request->path_copy = strdup (url);
    //  In flight from here (a graceful stop waits for it): a request whose
    //  headers never came whole is not
    request->in_flight = true;
    self->active++;
    //  A connection that has sent a whole request head gets the longer
    //  silence (--http-timeout) from now on, keep-alive included; until
    //  then it is closed after --http-idle-timeout
    if (request->conn && request->conn->requests++ == 0)
        MHD_set_connection_option (connection, MHD_CONNECTION_OPTION_TIMEOUT,
                                   (unsigned int) self->config->http_timeout);
    const char *detail = s_check_request (request, connection, url, method, version);
    if (detail) {
        request->dispatched = true;
        return s_respond_detail (request, connection, 400, detail);
    }
    const char *length = MHD_lookup_connection_value (connection, MHD_HEADER_KIND,
                                                      MHD_HTTP_HEADER_CONTENT_LENGTH);
    long long announced = length ? strtoll (length, NULL, 10) : 0;
    if (announced > self->config->max_body) {
        request->too_large = true;
        request->dispatched = true;
        return s_dispatch (request, connection, url, method);
    }
    if (announced > 0) {
        if (self->body_held + (size_t) announced > self->body_cap) {
            request->dispatched = true;
            zsys_warning ("http: %zu bytes of request bodies held, the --max-body-total-mb limit; "
                          "a %lld-byte body answered 503", self->body_held, announced);
            return s_respond_busy (request, connection,
                                   "The server holds as many request bodies as it may "
                                   "(--max-body-total-mb); retry shortly");
        }
        request->held = (size_t) announced;
        self->body_held += request->held;
    }
    return MHD_YES;
}

static enum MHD_Result
s_access_handler (void *cls, struct MHD_Connection *connection, const char *url, const char *method,
                  const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    request_t *request = (request_t *) *con_cls;
    if (!request)
        return MHD_NO;              //  Cannot happen: the URI logger always runs first
    if (!request->method_copy)
        return s_request_headers (request, connection, url, method, version);
    if (*upload_data_size) {
        s_take_body (request, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (!request->dispatched) {
        request->dispatched = true;
        if (request->over_budget) {
            zsys_warning ("http: %zu bytes of request bodies held, the --max-body-total-mb limit; "
                          "a chunked body answered 503", request->self->body_held);
            return s_respond_busy (request, connection,
                                   "The server holds as many request bodies as it may "
                                   "(--max-body-total-mb); retry shortly");
        }
        enum MHD_Result rc = s_dispatch (request, connection, url, method);
        //  Parked on gateway, the pool or the agent: they have their own
        //  copy, so ours goes (its reservation stays until completion)
        if ((request->parked == PARKED_GATEWAY || request->parked == PARKED_POOL
        ||   request->parked == PARKED_AGENT) && !request->lambda)
            zstr_free (&request->body);
        return rc;
    }
    if (request->streaming && !request->stream_queued)
        return s_stream_queue (request, connection);
    if (request->reply_body) {
        //  Resumed after the gateway's REPLY
        char *body = request->reply_body;
        request->reply_body = NULL;
        enum MHD_Result rc = s_respond (request, connection, request->reply_status, NULL,
                                        body, request->reply_size, request->reply_headers);
        return rc;
    }
    return MHD_YES;
}

//  The end of a request: completed, aborted, or rejected by MHD itself
//  (then only its connection's close tells us). It leaves every list,
//  writes its access-log line and is freed.
static void
s_request_end (self_t *self, request_t *request, struct MHD_Connection *connection, const char *how)
{
    if (request->conn)
        request->conn->request = NULL;
    if (request->parked != PARKED_NOT && request->parked != PARKED_KEYS)
        zhashx_delete (self->pending, request->id);
    if (request->parked == PARKED_POOL)
        apipool_cancel (self->apipool, request->id);
    //  A chat whose connection ended while it was parked: stop its loop
    if (request->parked == PARKED_AGENT)
        s_cancel_chat (request);
    if (request->parked == PARKED_KEYS) {
        void *handle = zlistx_find (self->key_waiters, request);
        if (handle)
            zlistx_delete (self->key_waiters, handle);
    }
    if (self->access_log) {
        int status = request->status;
        if (status == 0) {
            //  MHD answered on its own (a malformed or oversized request)
            const union MHD_ConnectionInfo *info = MHD_get_connection_info (connection, MHD_CONNECTION_INFO_HTTP_STATUS);
            status = info ? (int) info->http_status : 0;
        }
        char method [64], path [HTTP_LOG_TEXT_MAX];
        zsys_info ("http: %s %s %d %" PRId64 "us%s",
                   s_printable (request->method_copy, method, sizeof method),
                   s_printable (request->path_copy ? request->path_copy : request->raw_uri, path, sizeof path),
                   status, util_monotonic_us () - request->started_us, how);
    }
    assert (self->body_held >= request->held);
    self->body_held -= request->held;
    free (request->raw_uri);
    free (request->body);
    free (request->reply_body);
    free (request->stream_data);
    cJSON_Delete (request->reply_headers);
    free (request->method_copy);
    free (request->path_copy);
    free (request->lambda_headers);
    free (request->lambda_forward);
    if (request->in_flight)
        self->active--;
    free (request);
}

static void
s_request_completed (void *cls, struct MHD_Connection *connection, void **con_cls,
                     enum MHD_RequestTerminationCode code)
{
    self_t *self = (self_t *) cls;
    request_t *request = (request_t *) *con_cls;
    if (!request)
        return;
    *con_cls = NULL;
    s_request_end (self, request, connection, code == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (aborted)");
}

//  A connection opens or closes. Its close ends a request that MHD
//  rejected without calling s_request_completed.
static void
s_connection_notify (void *cls, struct MHD_Connection *connection, void **socket_context,
                     enum MHD_ConnectionNotificationCode code)
{
    self_t *self = (self_t *) cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        *socket_context = zmalloc (sizeof (conn_t));
    else
    if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        conn_t *conn = (conn_t *) *socket_context;
        if (conn->request)
            s_request_end (self, conn->request, connection, " (refused by the HTTP parser)");
        free (conn);
        *socket_context = NULL;
    }
}

static void
s_mhd_log (void *cls, const char *format, va_list args)
{
    //  Its messages may quote what a client sent (a malformed line)
    char line [512], printable [HTTP_LOG_TEXT_MAX];
    vsnprintf (line, sizeof line, format, args);
    size_t len = strlen (line);
    while (len && (line [len - 1] == '\n' || line [len - 1] == '\r'))
        line [--len] = 0;
    zsys_debug ("http: microhttpd: %s", s_printable (line, printable, sizeof printable));
}

//  --------------------------------------------------------------------------
//  The actor

static int
s_parse_listen (const char *listen, struct sockaddr_storage *address, socklen_t *size)
{
    const char *colon = strrchr (listen, ':');
    if (!colon)
        return -1;
    char host [256];
    size_t host_len = (size_t) (colon - listen);
    if (host_len == 0 || host_len >= sizeof host)
        return -1;
    memcpy (host, listen, host_len);
    host [host_len] = 0;
    if (host [0] == '[' && host [host_len - 1] == ']') {
        memmove (host, host + 1, host_len - 2);
        host [host_len - 2] = 0;
    }
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
    struct addrinfo *found = NULL;
    if (getaddrinfo (host, colon + 1, &hints, &found) || !found)
        return -1;
    memcpy (address, found->ai_addr, found->ai_addrlen);
    *size = found->ai_addrlen;
    freeaddrinfo (found);
    return 0;
}

//  The actor's set-up, or NULL with why in reason (for the handshake)
static self_t *
s_self_new (zsock_t *pipe, const actor_args_t *args, char *reason, size_t reason_size)
{
    self_t *self = (self_t *) zmalloc (sizeof (self_t));
    self->pipe = pipe;
    self->config = args->config;
    self->access_log = streq (self->config->log_level, "info") || streq (self->config->log_level, "debug");
    self->pending = zhashx_new ();
    self->park_ms = deadlines_http_ms (self->config->max_timeout_seconds * 1000LL);
    self->body_cap = (size_t) self->config->max_body_total_mb * 1024 * 1024;

    //  This thread never touches SQLite: handlers without a store here,
    //  the control-plane threads (each with its own store) for the rest
    self->api = api_new (NULL);
    api_set_config (self->api, self->config->auth, self->config->clerk_publishable_key, CLOWDY_VERSION,
                    config_ai_configured (self->config), self->config->gateway_host);
    auth_config_t auth_config = {
        .mode = streq (self->config->auth, "jwt") ? AUTH_JWT : AUTH_LOCAL,
        .jwks_url = *self->config->jwks_url ? self->config->jwks_url : NULL,
        .issuer = *self->config->jwt_issuer ? self->config->jwt_issuer : NULL,
        .audience = *self->config->jwt_audience ? self->config->jwt_audience : NULL,
    };
    snprintf (reason, reason_size, "cannot open the database in data dir '%s' (is it writable?)",
              self->config->data_dir);
    apipool_config_t pool_config = {
        .data_dir = self->config->data_dir,
        .max_memory_mb = (int) self->config->max_memory_mb,
        .max_timeout_seconds = (int) self->config->max_timeout_seconds,
        .quotas = self->config,
    };
    self->apipool = apipool_new (&pool_config);
    if (!self->apipool)
        goto failed;
    snprintf (reason, reason_size, "cannot set up --auth %s (the cause is logged above)", self->config->auth);
    self->auth = auth_new (&auth_config);
    if (!self->auth)
        goto failed;
    if (auth_config.mode == AUTH_JWT && auth_config.jwks_url)
        self->jwks_refresher = zactor_new (s_jwks_refresher, self->auth);
    self->key_waiters = zlistx_new ();
    self->gateway = endpoints_connect (args->endpoints, "gateway", ZMQ_DEALER);
    if (!self->gateway) {
        snprintf (reason, reason_size, "%s", endpoints_error ());
        goto failed;
    }
    self->invalidates = msg_outbox_new (self->gateway, MSG_OUTBOX_LIMIT);
    self->agent = endpoints_connect (args->endpoints, "agent", ZMQ_DEALER);
    if (!self->agent) {
        snprintf (reason, reason_size, "%s", endpoints_error ());
        goto failed;
    }

    struct sockaddr_storage address;
    socklen_t address_size;
    if (s_parse_listen (self->config->listen, &address, &address_size)) {
        snprintf (reason, reason_size, "cannot use --listen '%s': expected HOST:PORT", self->config->listen);
        goto failed;
    }
    unsigned int flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (address.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    self->daemon = MHD_start_daemon (flags, 0, NULL, NULL, s_access_handler, self,
        MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, self,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &address,
        MHD_OPTION_URI_LOG_CALLBACK, s_uri_logger, self,
        MHD_OPTION_NOTIFY_COMPLETED, s_request_completed, self,
        MHD_OPTION_NOTIFY_CONNECTION, s_connection_notify, self,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int) self->config->http_max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int) self->config->http_max_per_client,
        //  Until its first request; then --http-timeout (s_uri_logger)
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) self->config->http_idle_timeout,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) 128 * 1024,
        MHD_OPTION_END);
    if (!self->daemon) {
        snprintf (reason, reason_size, "cannot listen on %s: %s", self->config->listen, strerror (errno));
        goto failed;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    self->epoll_fd = info ? info->epoll_fd : -1;
    info = MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    self->port = info ? info->port : 0;
    if (self->epoll_fd < 0 || self->port == 0) {
        snprintf (reason, reason_size, "cannot listen on %s: no port or epoll fd from libmicrohttpd",
                  self->config->listen);
        goto failed;
    }
    return self;

failed:
    if (self->daemon)
        MHD_stop_daemon (self->daemon);
    zsock_destroy (&self->gateway);
    zsock_destroy (&self->agent);
    zactor_destroy (&self->jwks_refresher);
    zlistx_destroy (&self->key_waiters);
    auth_destroy (&self->auth);
    apipool_destroy (&self->apipool);
    api_destroy (&self->api);
    zhashx_destroy (&self->pending);
    msg_outbox_destroy (&self->invalidates);
    free (self);
    return NULL;
}

static void
s_self_destroy (self_t **self_p)
{
    if (*self_p) {
        self_t *self = *self_p;
        //  Parked requests get an answer rather than a dropped connection
        //  (answering takes a request out of `pending`: walk a list of them).
        //  What was handed on (a call, a chat, a control-plane request) may
        //  have taken effect: 504, its outcome unknown, not a 503 that says
        //  a retry is safe
        zlistx_t *parked = zhashx_values (self->pending);
        for (request_t *request = (request_t *) zlistx_first (parked); request;
             request = (request_t *) zlistx_next (parked)) {
            request->dispatched = true;
            s_resume_detail (request, 504, "The server stopped before this request finished: it may have "
                             "taken effect, in part or in full; its outcome is unknown");
        }
        zlistx_destroy (&parked);
        zhashx_purge (self->pending);
        //  So do requests waiting for signing keys
        s_resume_key_waiters (self, true);
        MHD_run (self->daemon);
        MHD_stop_daemon (self->daemon);
        zsock_destroy (&self->gateway);
        zsock_destroy (&self->agent);
        zactor_destroy (&self->jwks_refresher);
        zlistx_destroy (&self->key_waiters);
        auth_destroy (&self->auth);
        //  After the parked requests were answered: a thread finishes the
        //  request it runs (bounded by the store's busy timeout) and stops
        apipool_destroy (&self->apipool);
        api_destroy (&self->api);
        zhashx_destroy (&self->pending);
        msg_outbox_destroy (&self->invalidates);
        free (self);
        *self_p = NULL;
    }
}

static void
s_self_handle_pipe (self_t *self)
{
    char *command = zstr_recv (self->pipe);
    if (!command) {
        self->terminated = true;
        return;
    }
    if (streq (command, "$TERM")) {
        //  Stop accepting; requests in flight may finish for up to ACTOR_DRAIN_MS
        self->draining = true;
        self->drain_deadline = zclock_mono () + ACTOR_DRAIN_MS;
        MHD_quiesce_daemon (self->daemon);
    }
    else
    if (streq (command, "PORT"))
        zstr_sendf (self->pipe, "%d", self->port);
    else
    if (streq (command, "PING"))
        zstr_send (self->pipe, "PONG");
    else
    if (streq (command, "PARK-MS")) {
        //  Test hook: how long a call may stay parked on gateway
        char *value = zstr_recv (self->pipe);
        if (value && atoll (value) > 0)
            self->park_ms = atoll (value);
        zstr_free (&value);
    }
    else
        zsys_warning ("http: invalid pipe command '%s'", command);
    zstr_free (&command);
}

void
http_actor (zsock_t *pipe, void *args)
{
    char reason [512];
    self_t *self = s_self_new (pipe, (const actor_args_t *) args, reason, sizeof reason);
    if (!self) {
        actor_failed (pipe, "%s", reason);
        return;
    }
    actor_ready (pipe);

    zmq_pollitem_t items [ITEM_COUNT] = {
        { zsock_resolve (self->pipe), 0, ZMQ_POLLIN, 0 },
        { zsock_resolve (self->gateway), 0, ZMQ_POLLIN, 0 },
        { NULL, self->epoll_fd, ZMQ_POLLIN, 0 },
        { zsock_resolve (apipool_socket (self->apipool)), 0, ZMQ_POLLIN, 0 },
        { zsock_resolve (self->agent), 0, ZMQ_POLLIN, 0 },
        { self->jwks_refresher ? zsock_resolve (self->jwks_refresher) : NULL, 0, ZMQ_POLLIN, 0 }
    };
    int item_count = self->jwks_refresher ? ITEM_COUNT : ITEM_JWKS;
    while (!self->terminated) {
        MHD_UNSIGNED_LONG_LONG mhd_timeout;
        long timeout = 1000;
        if (MHD_get_timeout (self->daemon, &mhd_timeout) == MHD_YES && mhd_timeout < 1000)
            timeout = (long) mhd_timeout;
        //  The next control-plane deadline
        long pool_timeout = apipool_timeout (self->apipool);
        if (pool_timeout >= 0 && pool_timeout < timeout)
            timeout = pool_timeout;
        if (self->draining)
            timeout = 50;
        //  Every call sends on the gateway's socket: always asked. The
        //  others are read only when found readable (and sent on where
        //  they clear their `known`), so one found empty is not asked
        //  again until its descriptor fires: six system calls fewer in
        //  each turn of a warm call.
        self->known [ITEM_GATEWAY] = false;
        int rc = poller_poll_known (items, item_count, timeout, self->known);
        if (rc == -1 && errno != EINTR)
            break;
        if (items [ITEM_PIPE].revents & ZMQ_POLLIN)
            s_self_handle_pipe (self);
        if (item_count == ITEM_COUNT && (items [ITEM_JWKS].revents & ZMQ_POLLIN)) {
            char *reply = zstr_recv (self->jwks_refresher);
            if (reply && streq (reply, "FETCHED")) {
                //  Check the parked requests again against the keys we have now
                self->fetch_asked = false;
                s_resume_key_waiters (self, false);
            }
            zstr_free (&reply);
        }
        //  A socket is read only when the poll saw it readable: asking a
        //  ZMQ socket for its events costs two system calls (libzmq checks
        //  its mailbox and the pid), several per turn of this loop, on every
        //  call's way in and out. What arrives later wakes the next poll.
        //  The poll just said the first message is there: not asked again.
        if (items [ITEM_GATEWAY].revents & ZMQ_POLLIN)
            do
                s_handle_gateway_reply (self);
            while (zsock_events (self->gateway) & ZMQ_POLLIN);
        s_handle_pool (self, items [ITEM_POOL].revents & ZMQ_POLLIN);
        msg_outbox_flush (self->invalidates);
        s_expire_parked (self);
        if (items [ITEM_AGENT].revents & ZMQ_POLLIN)
            do
                s_handle_agent_answer (self);
            while (zsock_events (self->agent) & ZMQ_POLLIN);
        MHD_run (self->daemon);
        //  A resumed connection takes MHD two more passes after its answer
        //  went out (it reads again, then watches the socket again), and
        //  MHD says so with a zero timeout. Making those passes here skips
        //  two turns of asking every ZMQ socket for its events (ten system
        //  calls each): nothing sleeps in between, and the sockets are
        //  asked before the next sleep. Bounded, so that a busy MHD never
        //  keeps the gateway's answers waiting.
        for (int pass = 0; pass < 2; pass++) {
            MHD_UNSIGNED_LONG_LONG again;
            if (MHD_get_timeout (self->daemon, &again) != MHD_YES || again > 0)
                break;
            MHD_run (self->daemon);
        }
        //  The last of those passes watches the socket again, and epoll
        //  reports it writable at once: one look at MHD's descriptor (one
        //  system call) takes that event now, instead of a turn that asks
        //  the sockets and polls (ten calls) only to find it
        if (self->resumed) {
            struct pollfd mhd = { self->epoll_fd, POLLIN, 0 };
            if (poll (&mhd, 1, 0) == 1)
                MHD_run (self->daemon);
            self->resumed = 0;
        }
        if (self->draining && (self->active == 0 || zclock_mono () > self->drain_deadline)) {
            if (self->active > 0)
                zsys_warning ("http: stopped with %zu requests still in flight: the drain time ran out",
                              self->active);
            self->terminated = true;
        }
    }
    s_self_destroy (&self);
}

//  --------------------------------------------------------------------------
//  Selftest: serve a temp data dir and talk plain HTTP to it over a socket

static char *
s_http_exchange (int port, const char *request_text)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert (connect (fd, (struct sockaddr *) &address, sizeof address) == 0);
    assert (write (fd, request_text, strlen (request_text)) == (ssize_t) strlen (request_text));
    shutdown (fd, SHUT_WR);
    char *reply = (char *) zmalloc (65536);
    size_t size = 0;
    ssize_t got;
    while ((got = read (fd, reply + size, 65535 - size)) > 0)
        size += (size_t) got;
    close (fd);
    return reply;
}

void
http_test (bool verbose)
{
    printf ("http: ");
    //  Outside input in the log: one line, no terminal controls
    char printable [HTTP_LOG_TEXT_MAX];
    assert (streq (s_printable ("/a\r\nI: forged\x1b[2J\\", printable, sizeof printable),
                   "/a\\x0d\\x0aI: forged\\x1b[2J\\x5c"));
    assert (streq (s_printable ("/caf\xc3\xa9/\xe2\x82\xac", printable, sizeof printable), "/caf\xc3\xa9/\xe2\x82\xac"));
    assert (streq (s_printable ("\xc2\x9b\xff\xc3", printable, sizeof printable), "\\xc2\\x9b\\xff\\xc3"));
    assert (streq (s_printable (NULL, printable, sizeof printable), "-"));
    char long_text [2000];
    memset (long_text, '\n', sizeof long_text - 1);
    long_text [sizeof long_text - 1] = 0;
    s_printable (long_text, printable, sizeof printable);
    assert (strlen (printable) < sizeof printable && streq (printable + strlen (printable) - 3, "..."));
    char data_dir [] = "/tmp/clowdy-http-test-XXXXXX";
    assert (mkdtemp (data_dir));
    char *argv [] = { "clowdy", "--listen", "127.0.0.1:0", "--data-dir", data_dir,
                      "--log-level", verbose ? "info" : "warning", "--web-dir", "/nonexistent", NULL };
    config_t config;
    char error [256];
    assert (config_parse (&config, 9, argv, error, sizeof error) == 0);
    endpoints_t *endpoints = endpoints_new ();
    endpoints_set (endpoints, "gateway", "inproc://http-test-gateway");
    //  A stand-in gateway that answers every INVOKE with 202 and the body it got
    zsock_t *gateway = zsock_new_router ("inproc://http-test-gateway");
    actor_args_t args = { &config, endpoints, 0 };
    zactor_t *http = actor_start (http_actor, &args, "http", NULL);
    zstr_send (http, "PORT");
    char *port_text = zstr_recv (http);
    int port = atoi (port_text);
    zstr_free (&port_text);
    assert (port > 0);

    char *reply = s_http_exchange (port, "GET /api/health HTTP/1.0\r\n\r\n");
    assert (strstr (reply, "200 OK") && strstr (reply, "{\"status\":\"ok\"}"));
    free (reply);

    reply = s_http_exchange (port, "GET /api/config HTTP/1.0\r\n\r\n");
    assert (strstr (reply, "\"auth_mode\":\"local\""));
    free (reply);

    //  Control-plane requests run on the pool and come back
    reply = s_http_exchange (port, "POST /api/projects HTTP/1.0\r\nContent-Length: 15\r\n\r\n{\"name\":\"Shop\"}");
    assert (strstr (reply, "200 OK") && strstr (reply, "\"slug\":\"shop\"")
         && strstr (reply, "Content-Type: application/json"));
    free (reply);
    reply = s_http_exchange (port, "GET /api/projects HTTP/1.0\r\n\r\n");
    assert (strstr (reply, "200 OK") && strstr (reply, "\"slug\":\"shop\""));
    free (reply);
    reply = s_http_exchange (port, "GET /api/nothing HTTP/1.0\r\n\r\n");
    assert (strstr (reply, "404") && strstr (reply, "Not found"));
    free (reply);
    reply = s_http_exchange (port, "PATCH /api/projects HTTP/1.0\r\n\r\n");
    assert (strstr (reply, "405") && strstr (reply, "Method not allowed"));
    free (reply);
    //  An API token is checked on the pool: a bad one is a 401
    reply = s_http_exchange (port, "GET /api/projects HTTP/1.0\r\nAuthorization: Bearer clw_"
                             "0000000000000000000000000000000000000000000000000000000000000000\r\n\r\n");
    assert (strstr (reply, "401") && strstr (reply, "WWW-Authenticate: Bearer") && strstr (reply, "Invalid API token"));
    free (reply);

    //  The Lambda API runs on the pool too, and answers in its own shapes
    reply = s_http_exchange (port, "GET /2015-03-31/functions/nobody HTTP/1.0\r\n\r\n");
    assert (strstr (reply, "404") && strstr (reply, "x-amzn-ErrorType: ResourceNotFoundException")
         && strstr (reply, "\"Type\":\"User\""));
    free (reply);
    reply = s_http_exchange (port, "GET /2015-03-31/functions/ HTTP/1.0\r\n\r\n");
    assert (strstr (reply, "200 OK") && strstr (reply, "{\"Functions\":[]}"));
    free (reply);
    reply = s_http_exchange (port, "POST /2015-03-31/functions/x/invocations HTTP/1.0\r\nContent-Length: 99999999\r\n\r\n{}");
    assert (strstr (reply, "413") && strstr (reply, "RequestTooLargeException"));
    free (reply);

    reply = s_http_exchange (port, "POST /api/projects HTTP/1.0\r\nContent-Length: 99999999\r\n\r\n{}");
    assert (strstr (reply, "413"));
    free (reply);

    reply = s_http_exchange (port, "GET / HTTP/1.0\r\n\r\n");
    assert (strstr (reply, "200 OK") && strstr (reply, "not built"));
    free (reply);

    reply = s_http_exchange (port, "OPTIONS /api/projects HTTP/1.0\r\nOrigin: http://localhost:5173\r\n\r\n");
    assert (strstr (reply, "204") && strstr (reply, "Access-Control-Allow-Origin: http://localhost:5173"));
    free (reply);

    //  Invoke goes to the gateway with the raw path and query, and comes back
    zpoller_t *poller = zpoller_new (gateway, NULL);
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert (connect (fd, (struct sockaddr *) &address, sizeof address) == 0);
    const char *text = "POST /api/gateway/shop/a%2Fb?x=1 HTTP/1.0\r\nContent-Length: 5\r\nX-Thing: yes\r\n\r\nhello";
    assert (write (fd, text, strlen (text)) == (ssize_t) strlen (text));
    assert (zpoller_wait (poller, 5000) == gateway);
    msg_t *msg = msg_recv (gateway, true);
    assert (msg && msg_id (msg) == MSG_ID_INVOKE);
    assert (streq (msg_invoke_kind (msg), "gateway"));
    assert (streq (msg_invoke_path (msg), "/api/gateway/shop/a%2Fb"));
    assert (streq (msg_invoke_query (msg), "x=1"));
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (msg_invoke_headers (msg), "x-thing")), "yes"));
    size_t size;
    const byte *body = msg_invoke_body (msg, &size);
    assert (size == 5 && memcmp (body, "hello", 5) == 0);
    assert (msg_send_reply (gateway, msg_route (msg), msg_invoke_request_id (msg), 202,
                            "{\"X-Answer\":\"42\"}", "bye", 3) == 0);
    msg_destroy (&msg);
    shutdown (fd, SHUT_WR);
    char answer [4096] = { 0 };
    size_t have = 0;
    ssize_t got;
    while ((got = read (fd, answer + have, sizeof answer - 1 - have)) > 0)
        have += (size_t) got;
    close (fd);
    assert (strstr (answer, "202") && strstr (answer, "X-Answer: 42") && strstr (answer, "\r\n\r\nbye"));

    //  A call that gateway never answers gets 504 at its deadline, and the
    //  late REPLY is dropped without harm
    zstr_sendm (http, "PARK-MS");
    zstr_send (http, "300");
    zstr_send (http, "PING");
    char *pong = zstr_recv (http);
    zstr_free (&pong);
    fd = socket (AF_INET, SOCK_STREAM, 0);
    assert (connect (fd, (struct sockaddr *) &address, sizeof address) == 0);
    text = "POST /api/invoke/aaaaaaaaaaaa HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}";
    assert (write (fd, text, strlen (text)) == (ssize_t) strlen (text));
    assert (zpoller_wait (poller, 5000) == gateway);
    msg = msg_recv (gateway, true);
    assert (msg && msg_id (msg) == MSG_ID_INVOKE);
    shutdown (fd, SHUT_WR);
    memset (answer, 0, sizeof answer);
    have = 0;
    while ((got = read (fd, answer + have, sizeof answer - 1 - have)) > 0)
        have += (size_t) got;
    close (fd);
    assert (strstr (answer, "504") && strstr (answer, "no answer in time"));
    assert (msg_send_reply (gateway, msg_route (msg), msg_invoke_request_id (msg), 200, "{}", "late", 4) == 0);
    msg_destroy (&msg);
    reply = s_http_exchange (port, "GET /api/health HTTP/1.0\r\n\r\n");
    assert (strstr (reply, "200 OK"));
    free (reply);

    zpoller_destroy (&poller);
    zactor_destroy (&http);
    zsock_destroy (&gateway);
    endpoints_destroy (&endpoints);
    config_reset (&config);
    char command [256];
    snprintf (command, sizeof command, "rm -rf %s", data_dir);
    if (system (command)) { }
    printf ("OK\n");
}
