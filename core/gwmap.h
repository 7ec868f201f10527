/*  =========================================================================
    gwmap - the gateway's mapping between HTTP and a function

    Two pure functions, no actor and no I/O: build the event object a
    function receives for a gateway request, and turn the function's return
    value into an HTTP response (API.md, Gateway).

    Event: {method, path, params, query, rawQueryString, headers, body,
    isBase64Encoded}
      - headers: names lower-cased; host, connection, authorization,
        proxy-authorization, cookie and content-length left out (credentials
        and transport details are not the function's business); a name
        given twice (in any case) keeps the last value; a name or value that
        is not a string or not UTF-8 is left out;
      - query: "a=1&b=x+y" -> {"a":"1","b":"x y"}; percent-decoded with '+'
        as space; the last value of a name wins; "a" alone gives "a":"";
        pairs with an empty name, or that decode to a NUL or to bytes that
        are not UTF-8, are left out;
      - rawQueryString: the query as sent (without '?'), so what query
        leaves out is still there; bytes from 0x80 up percent-encoded when
        it is not UTF-8;
      - body: null when empty; the parsed JSON value if the whole body is
        JSON that reaches the function unchanged (numbers keep the digits
        sent; core/jsonfit.h), else the text if it is UTF-8 without NUL
        bytes (so also JSON with a \u0000 in a string, a number no Python
        value holds, or nesting deeper than JSONFIT_MAX_DEPTH); else the
        bytes base64-encoded with isBase64Encoded true (false in every other
        case).

    Response:
      - an object with "statusCode" is a response description: statusCode
        must be an integer in 200..599 (a final status) (else 502, detail below); "headers",
        if an object, gives the response headers: string values only, names
        that are HTTP tokens, values without control characters (so no
        header injection), hop-by-hop headers and content-length dropped; a
        name given twice in any case keeps the last; "body": a string is
        sent as it is (text/plain; charset=utf-8 unless the function set a
        content-type), or, with "isBase64Encoded": true, base64-decoded
        (application/octet-stream by default; bad base64 gives a 502);
        null or absent is an empty body without a content-type; any other
        value is sent as JSON (application/json);
      - any other value (object without statusCode, array, string, number,
        bool, null) is sent as JSON with 200 and application/json;
      - 204, 205 and 304 responses never carry a body (HTTP forbids it);
      - more than 100 headers, or over 16 KiB of them, is a 502: clients
        and proxies would refuse the answer.
    A mapping failure fills the response with 502, application/json and
    {"detail": "<sentence>"}, so the caller always has a response to send.
    ========================================================================= */

#ifndef CLOWDY_GWMAP_H_INCLUDED
#define CLOWDY_GWMAP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

//  An HTTP response to send. Zero it before first use; gwmap_response_reset
//  frees what it holds.
typedef struct {
    int status;                     //  HTTP status, 100..599
    cJSON *headers;                 //  object: header name -> string value
    char *body;                     //  body bytes (heap, NUL after them), NULL if empty
    size_t body_size;               //  number of body bytes
    const char *detail;             //  why the mapping gave a 502 (static), else NULL
} gwmap_response_t;

//  Build the event object given to the function. method and path must be
//  UTF-8 strings (path as requested, without the query); params is the
//  route match's params object (copied; NULL gives {}); query is the raw
//  query string without '?' (NULL or "" gives {}); headers is an object of
//  name -> value as received (NULL gives {}); body is body_size bytes (may
//  be NULL when body_size is 0). Returns a new object for the caller to
//  cJSON_Delete, or NULL if method or path is NULL or not UTF-8 (a 400).
cJSON *
    gwmap_event (const char *method, const char *path, const cJSON *params, const char *query,
                 const cJSON *headers, const void *body, size_t body_size);

//  Map a function's return value (NULL counts as JSON null) to a response.
//  resp is reset first. Returns 0, or -1 when the value cannot be mapped:
//  then resp is a 502 with {"detail": ...} and resp->detail says why.
int
    gwmap_response (const cJSON *output, gwmap_response_t *resp);

//  True if host (a Host header: "name", "name:port", "[v6]:port") names
//  the host name given (no port; case does not matter). False when either
//  is NULL or name is empty.
bool
    gwmap_host_is (const char *host, const char *name);

//  Free what a response holds and zero it; safe on a zeroed response.
void
    gwmap_response_reset (gwmap_response_t *resp);

//  Self test of this class.
void
    gwmap_test (bool verbose);

#endif
