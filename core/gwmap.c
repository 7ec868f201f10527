/*  =========================================================================
    gwmap - the gateway's mapping between HTTP and a function

    Why: the gateway actor turns an HTTP request into a function call and
    the call's result back into an HTTP response. Both directions are pure
    data transformations with many edge cases (encodings, header hygiene,
    binary bodies, bad results), so they live here, apart from the actor,
    where every rule can be tested without a socket. The rules are listed in
    gwmap.h.

    Everything that reaches this code comes from outside (a client's bytes,
    a user function's return value), so nothing is assumed: every string
    that goes into JSON is checked to be UTF-8 without NUL bytes, response
    header names must be HTTP tokens and values may not contain CR, LF or
    other controls, and a result that cannot be mapped still gives a
    complete 502 response rather than an error the caller must handle.
    Base64 both ways is OpenSSL's (EVP_EncodeBlock, EVP_Decode*).
    ========================================================================= */

#include <czmq.h>
#include <openssl/evp.h>
#include "core/gwmap.h"
#include "core/jsonfit.h"
#include "core/route.h"
#include "core/util.h"

//  Largest body this code will base64-encode (OpenSSL counts in int)
#define GWMAP_MAX_BINARY (1024 * 1024 * 1024)

//  Most response headers a function may set, and their total size (names,
//  values and ": \r\n"): clients and proxies refuse more (Python's
//  http.client 100 headers and 64 KiB a line, nginx 4-8 KiB by default),
//  so past these the answer could not be read and is a 502 instead
#define GWMAP_MAX_HEADERS 100
#define GWMAP_MAX_HEADER_BYTES (16 * 1024)

//  Request headers the function never sees
static const char *s_hidden_request_headers [] = {
    "host", "connection", "authorization", "proxy-authorization", "cookie", "content-length"
};

//  Response headers a function may not set: hop-by-hop ones, and the
//  length, which the server computes from the body
static const char *s_dropped_response_headers [] = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "transfer-encoding", "upgrade", "content-length"
};

#define COUNT(array) (sizeof (array) / sizeof ((array) [0]))


//  --------------------------------------------------------------------------
//  Event

//  True if text is a usable JSON string: UTF-8, no NUL (cJSON strings stop there)
static bool
s_text_ok (const char *text, size_t size)
{
    return memchr (text, 0, size) == NULL && util_utf8_valid (text, size);
}

static cJSON *
s_event_headers (const cJSON *headers)
{
    cJSON *result = cJSON_CreateObject ();
    const cJSON *item;
    cJSON_ArrayForEach (item, headers) {
        if (!item->string || !cJSON_IsString (item) || !item->valuestring)
            continue;
        size_t size = strlen (item->string);
        if (size == 0 || !util_utf8_valid (item->string, size)
        ||  !util_utf8_valid (item->valuestring, strlen (item->valuestring)))
            continue;
        char *name = strdup (item->string);
        if (!name)
            continue;
        for (char *c = name; *c; c++)
            *c = (char) tolower ((unsigned char) *c);
        bool hidden = false;
        for (size_t i = 0; i < COUNT (s_hidden_request_headers); i++)
            if (streq (name, s_hidden_request_headers [i]))
                hidden = true;
        if (!hidden) {
            cJSON_DeleteItemFromObjectCaseSensitive (result, name);
            cJSON_AddStringToObject (result, name, item->valuestring);
        }
        free (name);
    }
    return result;
}

static cJSON *
s_event_query (const char *query)
{
    cJSON *result = cJSON_CreateObject ();
    const char *cursor = query;
    while (cursor && *cursor) {
        const char *amp = strchr (cursor, '&');
        size_t size = amp? (size_t) (amp - cursor): strlen (cursor);
        const char *equal = memchr (cursor, '=', size);
        size_t name_size = equal? (size_t) (equal - cursor): size;
        size_t name_length = 0, value_length = 0;
        char *name = route_percent_decode (cursor, name_size, true, &name_length);
        char *value = equal
            ? route_percent_decode (equal + 1, size - name_size - 1, true, &value_length)
            : strdup ("");
        if (name && value && name_length > 0
        &&  s_text_ok (name, name_length) && s_text_ok (value, value_length)) {
            cJSON_DeleteItemFromObjectCaseSensitive (result, name);
            cJSON_AddStringToObject (result, name, value);
        }
        free (name);
        free (value);
        cursor = amp? amp + 1: NULL;
    }
    return result;
}

//  The query string as sent, so nothing the parsed query leaves out (a
//  pair that decodes to a NUL or to bytes that are not UTF-8) is lost: as
//  it is when it is UTF-8, else with each byte from 0x80 up percent-encoded
//  (the same query to any URL parser)
static cJSON *
s_event_raw_query (const char *query)
{
    if (!query)
        return cJSON_CreateString ("");
    size_t size = strlen (query);
    if (util_utf8_valid (query, size))
        return cJSON_CreateString (query);
    static const char hex [] = "0123456789ABCDEF";
    char *encoded = (char *) malloc (3 * size + 1);
    if (!encoded)
        return NULL;
    size_t used = 0;
    for (const unsigned char *c = (const unsigned char *) query; *c; c++)
        if (*c < 0x80)
            encoded [used++] = (char) *c;
        else {
            encoded [used++] = '%';
            encoded [used++] = hex [*c >> 4];
            encoded [used++] = hex [*c & 15];
        }
    encoded [used] = 0;
    cJSON *result = cJSON_CreateString (encoded);
    free (encoded);
    return result;
}

//  The body as the function sees it; sets *base64 when it had to encode
static cJSON *
s_event_body (const void *body, size_t body_size, bool *base64)
{
    *base64 = false;
    if (!body || body_size == 0)
        return cJSON_CreateNull ();
    if (!s_text_ok ((const char *) body, body_size)) {
        if (body_size > GWMAP_MAX_BINARY)
            return NULL;
        char *encoded = (char *) malloc (4 * ((body_size + 2) / 3) + 1);
        if (!encoded)
            return NULL;
        EVP_EncodeBlock ((unsigned char *) encoded, (const unsigned char *) body, (int) body_size);
        cJSON *result = cJSON_CreateString (encoded);
        free (encoded);
        *base64 = true;
        return result;
    }
    //  No NUL inside, so a NUL-terminated copy parses exactly the body, and
    //  require_null_terminated refuses anything after the JSON value.
    char *text = (char *) malloc (body_size + 1);
    if (!text)
        return NULL;
    memcpy (text, body, body_size);
    text [body_size] = 0;
    //  JSON that cJSON would change (a \u0000 in a string, a number no
    //  Python value holds) or nest too deep for the runner stays text: the
    //  function gets the bytes as sent. Numbers keep their digits.
    jsonfit_scan_t scan;
    jsonfit_scan (text, body_size, &scan);
    cJSON *result = NULL;
    if (!scan.nul_escape && !scan.bad_number && scan.depth <= JSONFIT_MAX_DEPTH) {
        result = cJSON_ParseWithOpts (text, NULL, true);
        if (result)
            jsonfit_keep_numbers (result, text, body_size, NULL);
    }
    if (!result)
        result = cJSON_CreateString (text);
    free (text);
    return result;
}

cJSON *
gwmap_event (const char *method, const char *path, const cJSON *params, const char *query,
             const cJSON *headers, const void *body, size_t body_size)
{
    if (!method || !path
    ||  !util_utf8_valid (method, strlen (method))
    ||  !util_utf8_valid (path, strlen (path)))
        return NULL;
    bool base64 = false;
    cJSON *body_item = s_event_body (body, body_size, &base64);
    if (!body_item)
        return NULL;
    cJSON *event = cJSON_CreateObject ();
    if (!event) {
        cJSON_Delete (body_item);
        return NULL;
    }
    cJSON_AddStringToObject (event, "method", method);
    cJSON_AddStringToObject (event, "path", path);
    cJSON_AddItemToObject (event, "params", cJSON_IsObject (params)
                           ? cJSON_Duplicate (params, true): cJSON_CreateObject ());
    cJSON_AddItemToObject (event, "query", s_event_query (query));
    cJSON_AddItemToObject (event, "rawQueryString", s_event_raw_query (query));
    cJSON_AddItemToObject (event, "headers", s_event_headers (cJSON_IsObject (headers)? headers: NULL));
    cJSON_AddItemToObject (event, "body", body_item);
    cJSON_AddBoolToObject (event, "isBase64Encoded", base64);
    //  cJSON's adders fail only when out of memory: check every field once
    const char *fields [] = { "method", "path", "params", "query", "rawQueryString", "headers", "body",
                              "isBase64Encoded" };
    for (size_t i = 0; i < COUNT (fields); i++)
        if (!cJSON_GetObjectItemCaseSensitive (event, fields [i])) {
            cJSON_Delete (event);
            return NULL;
        }
    return event;
}


//  --------------------------------------------------------------------------
//  Response

void
gwmap_response_reset (gwmap_response_t *resp)
{
    if (resp) {
        cJSON_Delete (resp->headers);
        free (resp->body);
        memset (resp, 0, sizeof (*resp));
    }
}

//  Take a copy of size bytes as the body
static int
s_set_body (gwmap_response_t *resp, const char *bytes, size_t size)
{
    free (resp->body);
    resp->body = NULL;
    resp->body_size = 0;
    if (size == 0)
        return 0;
    resp->body = (char *) malloc (size + 1);
    if (!resp->body)
        return -1;
    memcpy (resp->body, bytes, size);
    resp->body [size] = 0;
    resp->body_size = size;
    return 0;
}

//  Body = value as compact JSON
static int
s_set_json_body (gwmap_response_t *resp, const cJSON *value)
{
    char *json = value? cJSON_PrintUnformatted (value): strdup ("null");
    if (!json)
        return -1;
    int rc = s_set_body (resp, json, strlen (json));
    free (json);
    return rc;
}

//  Make resp a 502 with {"detail": detail}; returns -1 for the caller
static int
s_fail (gwmap_response_t *resp, const char *detail)
{
    gwmap_response_reset (resp);
    resp->status = 502;
    resp->detail = detail;
    resp->headers = cJSON_CreateObject ();
    cJSON_AddStringToObject (resp->headers, "content-type", "application/json");
    cJSON *body = cJSON_CreateObject ();
    cJSON_AddStringToObject (body, "detail", detail);
    s_set_json_body (resp, body);
    cJSON_Delete (body);
    return -1;
}

//  RFC 9110 token characters
static bool
s_header_name_ok (const char *name)
{
    if (!name || !*name)
        return false;
    for (const char *c = name; *c; c++)
        if (!isalnum ((unsigned char) *c) && !strchr ("!#$%&'*+-.^_`|~", *c))
            return false;
    return true;
}

//  Field value: visible characters, space, tab, obs-text; no CR/LF/controls
static bool
s_header_value_ok (const char *value)
{
    for (const unsigned char *c = (const unsigned char *) value; *c; c++)
        if ((*c < 0x20 && *c != '\t') || *c == 0x7F)
            return false;
    return true;
}

static void
s_response_headers (gwmap_response_t *resp, const cJSON *headers)
{
    const cJSON *item;
    cJSON_ArrayForEach (item, headers) {
        if (!cJSON_IsString (item) || !item->valuestring
        ||  !s_header_name_ok (item->string) || !s_header_value_ok (item->valuestring))
            continue;
        bool dropped = false;
        for (size_t i = 0; i < COUNT (s_dropped_response_headers); i++)
            if (strcasecmp (item->string, s_dropped_response_headers [i]) == 0)
                dropped = true;
        if (dropped)
            continue;
        //  cJSON_DeleteItemFromObject ignores case: one entry per header
        cJSON_DeleteItemFromObject (resp->headers, item->string);
        cJSON_AddStringToObject (resp->headers, item->string, item->valuestring);
    }
}

//  Decode base64 text with OpenSSL's streaming decoder, which takes padding
//  and line breaks as they come and refuses anything else.
static int
s_base64_decode (const char *text, gwmap_response_t *resp)
{
    size_t size = strlen (text);
    if (size > INT_MAX - 80)
        return -1;
    unsigned char *bytes = (unsigned char *) malloc (size / 4 * 3 + 80);
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new ();
    int rc = -1;
    if (bytes && ctx) {
        int length = 0, final = 0;
        EVP_DecodeInit (ctx);
        if (EVP_DecodeUpdate (ctx, bytes, &length, (const unsigned char *) text, (int) size) >= 0
        &&  EVP_DecodeFinal (ctx, bytes + length, &final) == 1)
            rc = s_set_body (resp, (const char *) bytes, (size_t) (length + final));
    }
    EVP_ENCODE_CTX_free (ctx);
    free (bytes);
    return rc;
}

int
gwmap_response (const cJSON *output, gwmap_response_t *resp)
{
    if (!resp)
        return -1;
    gwmap_response_reset (resp);
    resp->headers = cJSON_CreateObject ();
    if (!resp->headers)
        return s_fail (resp, "Out of memory");
    const cJSON *status = cJSON_IsObject (output)
        ? cJSON_GetObjectItemCaseSensitive (output, "statusCode"): NULL;
    if (!status) {
        //  Any other value: JSON, 200
        resp->status = 200;
        cJSON_AddStringToObject (resp->headers, "content-type", "application/json");
        if (s_set_json_body (resp, output))
            return s_fail (resp, "Function result could not be encoded as JSON");
        return 0;
    }
    //  (a raw item is a number kept as written: core/jsonfit.h; it keeps its value)
    double code = cJSON_IsNumber (status) || cJSON_IsRaw (status)? status->valuedouble: 0;
    //  1xx is not a final answer (100 leaves the client waiting, 101 would
    //  switch protocols), so a function may not end a request with one
    if (!(code >= 200 && code <= 599) || (double) (int) code != code)
        return s_fail (resp, "Function returned an invalid statusCode");
    resp->status = (int) code;

    const cJSON *headers = cJSON_GetObjectItemCaseSensitive (output, "headers");
    if (cJSON_IsObject (headers))
        s_response_headers (resp, headers);
    size_t header_count = 0, header_bytes = 0;
    const cJSON *header;
    cJSON_ArrayForEach (header, resp->headers) {
        header_count++;
        header_bytes += strlen (header->string) + strlen (header->valuestring) + 4;
    }
    if (header_count > GWMAP_MAX_HEADERS || header_bytes > GWMAP_MAX_HEADER_BYTES)
        return s_fail (resp, "Function returned more response headers than an HTTP client reads "
                             "(at most 100 headers and 16 KiB in all)");

    const cJSON *body = cJSON_GetObjectItemCaseSensitive (output, "body");
    const char *content_type = NULL;
    if (cJSON_IsString (body)) {
        if (cJSON_IsTrue (cJSON_GetObjectItemCaseSensitive (output, "isBase64Encoded"))) {
            if (s_base64_decode (body->valuestring, resp))
                return s_fail (resp, "Function returned a body that is not valid base64");
            content_type = "application/octet-stream";
        }
        else {
            if (s_set_body (resp, body->valuestring, strlen (body->valuestring)))
                return s_fail (resp, "Out of memory");
            content_type = "text/plain; charset=utf-8";
        }
    }
    else
    if (body && !cJSON_IsNull (body)) {
        if (s_set_json_body (resp, body))
            return s_fail (resp, "Function result could not be encoded as JSON");
        content_type = "application/json";
    }
    if (resp->status < 200 || resp->status == 204 || resp->status == 205 || resp->status == 304) {
        s_set_body (resp, NULL, 0);
        content_type = NULL;
    }
    if (content_type && !cJSON_GetObjectItem (resp->headers, "content-type"))
        cJSON_AddStringToObject (resp->headers, "content-type", content_type);
    return 0;
}


bool
gwmap_host_is (const char *host, const char *name)
{
    if (!host || !name || !*name)
        return false;
    //  The host part of "name", "name:port", "[v6]" or "[v6]:port"
    size_t size = host [0] == '[' ? (strchr (host, ']') ? (size_t) (strchr (host, ']') - host) + 1 : strlen (host))
                                  : strcspn (host, ":");
    return size == strlen (name) && strncasecmp (host, name, size) == 0;
}


//  --------------------------------------------------------------------------
//  Selftest

//  Parse JSON text for a test (asserts it parses)
static cJSON *
s_json (const char *text)
{
    cJSON *value = cJSON_Parse (text);
    assert (value);
    return value;
}

//  Event for a body and query (no headers or params), with its body item
static cJSON *
s_event_of (const char *query, const void *body, size_t size)
{
    cJSON *event = gwmap_event ("POST", "/p", NULL, query, NULL, body, size);
    assert (event);
    return event;
}

//  Map a JSON text result, return the status
static int
s_map (const char *text, gwmap_response_t *resp)
{
    cJSON *output = text? s_json (text): NULL;
    gwmap_response (output, resp);
    cJSON_Delete (output);
    return resp->status;
}

//  A response header's value or NULL (case-insensitive name)
static const char *
s_header (gwmap_response_t *resp, const char *name)
{
    cJSON *item = cJSON_GetObjectItem (resp->headers, name);
    return cJSON_IsString (item)? item->valuestring: NULL;
}

static bool
s_body_is (gwmap_response_t *resp, const char *text)
{
    return resp->body_size == strlen (text)
        && (resp->body_size == 0 || memcmp (resp->body, text, resp->body_size) == 0);
}

void
gwmap_test (bool verbose)
{
    printf ("gwmap: ");

    //  The event object, every field
    cJSON *params = s_json ("{\"id\":\"42\"}");
    cJSON *headers = s_json ("{\"Host\":\"x\",\"Connection\":\"close\",\"Authorization\":\"Bearer t\","
                             "\"Cookie\":\"s=1\",\"Content-Length\":\"2\",\"PROXY-Authorization\":\"p\","
                             "\"Content-Type\":\"application/json\",\"X-Trace-ID\":\"abc\","
                             "\"x-dup\":\"one\",\"X-Dup\":\"two\",\"X-Num\":5,"
                             "\"Accept\":\"*/*\",\"X-Utf\":\"caf\u00e9\"}");
    cJSON *event = gwmap_event ("POST", "/users/42", params, "a=1&b=x+y&a=2&c=%2B%20&d&=skip&e=",
                                headers, "{\"name\": \"Ada\"}", 15);
    assert (event);
    assert (cJSON_GetArraySize (event) == 8);
    assert (streq (cJSON_GetObjectItem (event, "method")->valuestring, "POST"));
    assert (streq (cJSON_GetObjectItem (event, "path")->valuestring, "/users/42"));
    cJSON *item = cJSON_GetObjectItem (event, "params");
    assert (item != params && cJSON_Compare (item, params, true));
    cJSON *expect_query = s_json ("{\"a\":\"2\",\"b\":\"x y\",\"c\":\"+ \",\"d\":\"\",\"e\":\"\"}");
    assert (cJSON_Compare (cJSON_GetObjectItem (event, "query"), expect_query, true));
    cJSON_Delete (expect_query);
    cJSON *expect_headers = s_json ("{\"content-type\":\"application/json\",\"x-trace-id\":\"abc\","
                                    "\"x-dup\":\"two\",\"accept\":\"*/*\",\"x-utf\":\"caf\u00e9\"}");
    assert (cJSON_Compare (cJSON_GetObjectItem (event, "headers"), expect_headers, true));
    cJSON_Delete (expect_headers);
    cJSON *expect_body = s_json ("{\"name\":\"Ada\"}");
    assert (cJSON_Compare (cJSON_GetObjectItem (event, "body"), expect_body, true));
    cJSON_Delete (expect_body);
    assert (cJSON_IsFalse (cJSON_GetObjectItem (event, "isBase64Encoded")));
    cJSON_Delete (event);
    cJSON_Delete (params);
    cJSON_Delete (headers);

    //  Defaults: no params, query, headers or body
    event = gwmap_event ("GET", "/", NULL, NULL, NULL, NULL, 0);
    assert (event);
    assert (cJSON_GetArraySize (cJSON_GetObjectItem (event, "params")) == 0);
    assert (cJSON_IsObject (cJSON_GetObjectItem (event, "query")));
    assert (cJSON_GetArraySize (cJSON_GetObjectItem (event, "query")) == 0);
    assert (cJSON_GetArraySize (cJSON_GetObjectItem (event, "headers")) == 0);
    assert (cJSON_IsNull (cJSON_GetObjectItem (event, "body")));
    assert (cJSON_IsFalse (cJSON_GetObjectItem (event, "isBase64Encoded")));
    cJSON_Delete (event);
    event = s_event_of ("", "x", 0);            //  size 0 wins over a pointer
    assert (cJSON_IsNull (cJSON_GetObjectItem (event, "body")));
    cJSON_Delete (event);
    //  Non-object params and headers are taken as empty
    cJSON *array = s_json ("[1,2]");
    event = gwmap_event ("GET", "/", array, NULL, array, NULL, 0);
    assert (event);
    assert (cJSON_GetArraySize (cJSON_GetObjectItem (event, "params")) == 0);
    assert (cJSON_GetArraySize (cJSON_GetObjectItem (event, "headers")) == 0);
    cJSON_Delete (event);
    cJSON_Delete (array);
    //  Bad method or path
    assert (gwmap_event (NULL, "/", NULL, NULL, NULL, NULL, 0) == NULL);
    assert (gwmap_event ("GET", NULL, NULL, NULL, NULL, NULL, 0) == NULL);
    assert (gwmap_event ("GET", "/caf\xe9", NULL, NULL, NULL, NULL, 0) == NULL);

    //  Query edge cases
    struct { const char *query; const char *expect; } queries [] = {
        { "a=1&a=2&a=3", "{\"a\":\"3\"}" },
        { "q=hello+world%21", "{\"q\":\"hello world!\"}" },
        { "q=a%2Bb", "{\"q\":\"a+b\"}" },
        { "x=%zz&y=100%", "{\"x\":\"%zz\",\"y\":\"100%\"}" },       //  bad escapes kept
        { "&&a=1&&", "{\"a\":\"1\"}" },
        { "=v&k", "{\"k\":\"\"}" },
        { "a=b=c", "{\"a\":\"b=c\"}" },
        { "n=%00x&ok=1", "{\"ok\":\"1\"}" },                         //  NUL: pair dropped
        { "n=%FF&ok=1", "{\"ok\":\"1\"}" },                          //  not UTF-8: dropped
        { "%E2%9C%93=caf%C3%A9", "{\"\u2713\":\"caf\u00e9\"}" },
        { "A=1&a=2", "{\"A\":\"1\",\"a\":\"2\"}" },                  //  names are case-sensitive
    };
    for (size_t i = 0; i < COUNT (queries); i++) {
        event = s_event_of (queries [i].query, NULL, 0);
        cJSON *expect = s_json (queries [i].expect);
        if (!cJSON_Compare (cJSON_GetObjectItem (event, "query"), expect, true)) {
            char *got = cJSON_PrintUnformatted (cJSON_GetObjectItem (event, "query"));
            fprintf (stderr, "\nquery %s: got %s\n", queries [i].query, got);
            assert (false);
        }
        //  And the query as sent, whatever the parsed one left out
        assert (streq (cJSON_GetObjectItem (event, "rawQueryString")->valuestring, queries [i].query));
        cJSON_Delete (expect);
        cJSON_Delete (event);
    }
    event = s_event_of ("a=\xff\xfe&b=caf\xc3\xa9", NULL, 0);        //  raw bytes, not UTF-8
    assert (streq (cJSON_GetObjectItem (event, "rawQueryString")->valuestring, "a=%FF%FE&b=caf%C3%A9"));
    cJSON_Delete (event);
    event = s_event_of (NULL, NULL, 0);
    assert (streq (cJSON_GetObjectItem (event, "rawQueryString")->valuestring, ""));
    cJSON_Delete (event);

    //  Bodies: JSON, text, binary
    struct { const char *body; size_t size; const char *expect; bool base64; } bodies [] = {
        { "{\"a\":[1,2]}", 11, "{\"a\":[1,2]}", false },
        { "  [1, 2]\n", 9, "[1,2]", false },                    //  whitespace around JSON
        { "42", 2, "42", false },
        { "\"quoted\"", 8, "\"quoted\"", false },
        { "true", 4, "true", false },
        { "null", 4, "null", false },
        { "hello world", 11, "\"hello world\"", false },        //  text
        { "{\"a\":1} trailing", 16, "\"{\\\"a\\\":1} trailing\"", false },
        { "{\"a\":1}{}", 9, "\"{\\\"a\\\":1}{}\"", false },
        { "{\"a\":", 5, "\"{\\\"a\\\":\"", false },
        { "name=Ada&x=1", 12, "\"name=Ada&x=1\"", false },
        { "caf\xc3\xa9 \xe2\x9c\x93", 9, "\"caf\u00e9 \u2713\"", false },
        { "caf\xe9", 4, "\"Y2Fm6Q==\"", true },                 //  latin-1: base64
        { "\x89PNG\r\n\x1a\n", 8, "\"iVBORw0KGgo=\"", true },
        { "{}\0x", 4, "\"e30AeA==\"", true },                    //  NUL inside: binary
        { "\0", 1, "\"AA==\"", true },
        { "\xed\xa0\x80", 3, "\"7aCA\"", true },                  //  surrogate is not UTF-8
        //  JSON that would change on the way stays text (core/jsonfit.h)
        { "{\"a\":\"x\\u0000y\"}", 16, "\"{\\\"a\\\":\\\"x\\\\u0000y\\\"}\"", false },
        { "[1e400]", 7, "\"[1e400]\"", false },
    };
    for (size_t i = 0; i < COUNT (bodies); i++) {
        event = s_event_of (NULL, bodies [i].body, bodies [i].size);
        cJSON *expect = s_json (bodies [i].expect);
        cJSON *got = cJSON_GetObjectItem (event, "body");
        if (!cJSON_Compare (got, expect, true)
        ||  cJSON_IsTrue (cJSON_GetObjectItem (event, "isBase64Encoded")) != bodies [i].base64) {
            char *text = cJSON_PrintUnformatted (event);
            fprintf (stderr, "\nbody %zu: got %s\n", i, text);
            assert (false);
        }
        cJSON_Delete (expect);
        cJSON_Delete (event);
    }
    //  Numbers reach the function with the digits sent
    const char *numbers = "{\"big\":9007199254740993,\"f\":10.0,\"e\":1000000000000000}";
    event = s_event_of (NULL, numbers, strlen (numbers));
    char *printed = cJSON_PrintUnformatted (cJSON_GetObjectItem (event, "body"));
    assert (streq (printed, numbers));
    free (printed);
    cJSON_Delete (event);
    //  A statusCode kept as written still counts
    const char *kept_text = "{\"statusCode\":201.0,\"body\":[2.50]}";
    cJSON *kept = s_json (kept_text);
    jsonfit_keep_numbers (kept, kept_text, strlen (kept_text), NULL);
    gwmap_response_t kept_resp = { 0 };
    assert (gwmap_response (kept, &kept_resp) == 0 && kept_resp.status == 201);
    assert (kept_resp.body_size == 6 && memcmp (kept_resp.body, "[2.50]", 6) == 0);
    gwmap_response_reset (&kept_resp);
    cJSON_Delete (kept);

    //  A large binary body round-trips through base64
    size_t big_size = 100000;
    unsigned char *big = (unsigned char *) malloc (big_size);
    for (size_t i = 0; i < big_size; i++)
        big [i] = (unsigned char) (i * 7 + (i >> 8));
    event = s_event_of (NULL, big, big_size);
    assert (cJSON_IsTrue (cJSON_GetObjectItem (event, "isBase64Encoded")));
    const char *encoded = cJSON_GetObjectItem (event, "body")->valuestring;
    assert (strlen (encoded) == 4 * ((big_size + 2) / 3));
    cJSON *result = cJSON_CreateObject ();
    cJSON_AddNumberToObject (result, "statusCode", 200);
    cJSON_AddStringToObject (result, "body", encoded);
    cJSON_AddTrueToObject (result, "isBase64Encoded");
    gwmap_response_t resp = { 0 };
    assert (gwmap_response (result, &resp) == 0);
    assert (resp.body_size == big_size && memcmp (resp.body, big, big_size) == 0);
    assert (streq (s_header (&resp, "content-type"), "application/octet-stream"));
    cJSON_Delete (result);
    cJSON_Delete (event);
    free (big);
    //  Deeply nested JSON body is refused by cJSON's nesting limit: text
    size_t deep_size = 5000;
    char *deep = (char *) malloc (deep_size);
    memset (deep, '[', deep_size);
    event = s_event_of (NULL, deep, deep_size);
    assert (cJSON_IsString (cJSON_GetObjectItem (event, "body")));
    cJSON_Delete (event);
    free (deep);

    //  Results that are not response descriptions: JSON with 200
    const char *plain [][2] = {
        { "{\"a\":1}", "{\"a\":1}" },
        { "[1,\"x\"]", "[1,\"x\"]" },
        { "\"hello\"", "\"hello\"" },
        { "3.5", "3.5" },
        { "false", "false" },
        { "null", "null" },
        { "{\"status\":404,\"body\":\"x\"}", "{\"status\":404,\"body\":\"x\"}" },
        { "{\"StatusCode\":404}", "{\"StatusCode\":404}" },
    };
    for (size_t i = 0; i < COUNT (plain); i++) {
        assert (s_map (plain [i][0], &resp) == 200);
        assert (s_body_is (&resp, plain [i][1]));
        assert (streq (s_header (&resp, "content-type"), "application/json"));
        assert (cJSON_GetArraySize (resp.headers) == 1);
        assert (resp.detail == NULL);
    }
    assert (s_map (NULL, &resp) == 200);            //  NULL is JSON null
    assert (s_body_is (&resp, "null"));

    //  Response descriptions
    assert (s_map ("{\"statusCode\":201,\"body\":\"created\"}", &resp) == 201);
    assert (s_body_is (&resp, "created"));
    assert (streq (s_header (&resp, "content-type"), "text/plain; charset=utf-8"));
    assert (resp.body [resp.body_size] == 0);
    assert (s_map ("{\"statusCode\":200,\"body\":{\"ok\":true}}", &resp) == 200);
    assert (s_body_is (&resp, "{\"ok\":true}"));
    assert (streq (s_header (&resp, "content-type"), "application/json"));
    assert (s_map ("{\"statusCode\":200,\"body\":[1,2]}", &resp) == 200);
    assert (s_body_is (&resp, "[1,2]"));
    assert (s_map ("{\"statusCode\":200,\"body\":7}", &resp) == 200);
    assert (s_body_is (&resp, "7"));
    assert (s_map ("{\"statusCode\":200,\"body\":false}", &resp) == 200);
    assert (s_body_is (&resp, "false"));
    assert (s_map ("{\"statusCode\":404}", &resp) == 404);          //  no body
    assert (resp.body == NULL && resp.body_size == 0);
    assert (cJSON_GetArraySize (resp.headers) == 0);
    assert (s_map ("{\"statusCode\":200,\"body\":null}", &resp) == 200);
    assert (resp.body_size == 0 && !s_header (&resp, "content-type"));
    assert (s_map ("{\"statusCode\":200,\"body\":\"\"}", &resp) == 200);
    assert (resp.body_size == 0);
    assert (s_map ("{\"statusCode\":599.0,\"body\":\"x\"}", &resp) == 599);
    assert (s_map ("{\"statusCode\":100}", &resp) == 502);
    assert (s_map ("{\"statusCode\":199}", &resp) == 502);
    //  Bodies are never sent with 1xx, 204, 205 and 304
    assert (s_map ("{\"statusCode\":204,\"body\":\"gone\"}", &resp) == 204);
    assert (resp.body_size == 0 && !s_header (&resp, "content-type"));
    assert (s_map ("{\"statusCode\":304,\"body\":{\"a\":1}}", &resp) == 304);
    assert (resp.body_size == 0);
    assert (s_map ("{\"statusCode\":205,\"body\":\"reset\"}", &resp) == 205);    //  "MUST NOT generate content"
    assert (resp.body_size == 0 && !s_header (&resp, "content-type"));
    //  The function's own content-type wins, in any case
    assert (s_map ("{\"statusCode\":200,\"headers\":{\"Content-Type\":\"text/html\"},"
                   "\"body\":\"<p>hi</p>\"}", &resp) == 200);
    assert (streq (s_header (&resp, "content-type"), "text/html"));
    assert (cJSON_GetArraySize (resp.headers) == 1);
    assert (s_body_is (&resp, "<p>hi</p>"));
    assert (s_map ("{\"statusCode\":200,\"headers\":{\"content-type\":\"application/problem+json\"},"
                   "\"body\":{\"e\":1}}", &resp) == 200);
    assert (streq (s_header (&resp, "Content-Type"), "application/problem+json"));
    assert (cJSON_GetArraySize (resp.headers) == 1);

    //  Header filtering
    assert (s_map ("{\"statusCode\":302,\"headers\":{"
                   "\"Location\":\"/next\",\"X-Count\":5,\"X-Flag\":true,\"X-Obj\":{},"
                   "\"Content-Length\":\"999\",\"Transfer-Encoding\":\"chunked\",\"Connection\":\"close\","
                   "\"Keep-Alive\":\"5\",\"Upgrade\":\"h2c\",\"TE\":\"trailers\",\"Trailer\":\"x\","
                   "\"Proxy-Authenticate\":\"x\",\"X-Evil\":\"a\\r\\nSet-Cookie: s=1\","
                   "\"X-Nl\":\"a\\nb\",\"X-Nul\":\"a\\u0000b\",\"X-Del\":\"a\\u007fb\",\"Bad Name\":\"v\","
                   "\"Bad:Name\":\"v\",\"\":\"v\",\"X-Tab\":\"a\\tb\",\"X-Utf\":\"caf\u00e9\","
                   "\"x-dup\":\"1\",\"X-DUP\":\"2\",\"Set-Cookie\":\"id=1; HttpOnly\"}}", &resp) == 302);
    //  (cJSON itself cuts "a\u0000b" at the NUL when it parses the result)
    cJSON *expect = s_json ("{\"Location\":\"/next\",\"X-Nul\":\"a\",\"X-Tab\":\"a\\tb\",\"X-Utf\":\"caf\u00e9\","
                            "\"X-DUP\":\"2\",\"Set-Cookie\":\"id=1; HttpOnly\"}");
    if (!cJSON_Compare (resp.headers, expect, true)) {
        fprintf (stderr, "\nheaders: %s\n", cJSON_PrintUnformatted (resp.headers));
        assert (false);
    }
    cJSON_Delete (expect);
    assert (resp.body_size == 0);
    //  Headers that are not an object are ignored
    assert (s_map ("{\"statusCode\":200,\"headers\":[\"a\"],\"body\":\"x\"}", &resp) == 200);
    assert (cJSON_GetArraySize (resp.headers) == 1);
    assert (s_map ("{\"statusCode\":200,\"headers\":\"X-A: 1\",\"body\":\"x\"}", &resp) == 200);

    //  Base64 bodies
    assert (s_map ("{\"statusCode\":200,\"isBase64Encoded\":true,\"body\":\"aGVsbG8=\"}", &resp) == 200);
    assert (s_body_is (&resp, "hello"));
    assert (streq (s_header (&resp, "content-type"), "application/octet-stream"));
    assert (s_map ("{\"statusCode\":200,\"isBase64Encoded\":true,\"body\":\"iVBORw0KGgo=\","
                   "\"headers\":{\"Content-Type\":\"image/png\"}}", &resp) == 200);
    assert (resp.body_size == 8 && memcmp (resp.body, "\x89PNG\r\n\x1a\n", 8) == 0);
    assert (streq (s_header (&resp, "content-type"), "image/png"));
    assert (s_map ("{\"statusCode\":200,\"isBase64Encoded\":true,\"body\":\"AAEC\\nAwQF\\n\"}", &resp) == 200);
    assert (resp.body_size == 6 && memcmp (resp.body, "\0\1\2\3\4\5", 6) == 0);     //  line breaks
    assert (s_map ("{\"statusCode\":200,\"isBase64Encoded\":true,\"body\":\"\"}", &resp) == 200);
    assert (resp.body_size == 0);
    assert (s_map ("{\"statusCode\":200,\"isBase64Encoded\":false,\"body\":\"aGVsbG8=\"}", &resp) == 200);
    assert (s_body_is (&resp, "aGVsbG8="));
    assert (s_map ("{\"statusCode\":200,\"isBase64Encoded\":\"yes\",\"body\":\"aGVsbG8=\"}", &resp) == 200);
    assert (s_body_is (&resp, "aGVsbG8="));         //  only true means true
    assert (s_map ("{\"statusCode\":200,\"isBase64Encoded\":true,\"body\":{\"a\":1}}", &resp) == 200);
    assert (s_body_is (&resp, "{\"a\":1}"));        //  applies to string bodies only
    const char *bad_base64 [] = { "not base64!", "aGVsbG8", "a", "aGVs*G8=", "aGVsbG8=aGVs", "====" };
    for (size_t i = 0; i < COUNT (bad_base64); i++) {
        char text [128];
        snprintf (text, sizeof text,
                  "{\"statusCode\":200,\"isBase64Encoded\":true,\"body\":\"%s\"}", bad_base64 [i]);
        if (s_map (text, &resp) != 502) {
            fprintf (stderr, "\nbase64 %s: status %d size %zu\n", bad_base64 [i], resp.status, resp.body_size);
            assert (false);
        }
        assert (streq (resp.detail, "Function returned a body that is not valid base64"));
        assert (s_body_is (&resp, "{\"detail\":\"Function returned a body that is not valid base64\"}"));
    }

    //  Invalid statusCode: 502 with a detail, headers and body of the result dropped
    const char *bad_status [] = {
        "99", "600", "0", "-200", "200.5", "\"200\"", "null", "true", "[200]", "{}", "1e300", "-1e300"
    };
    for (size_t i = 0; i < COUNT (bad_status); i++) {
        char text [128];
        snprintf (text, sizeof text,
                  "{\"statusCode\":%s,\"headers\":{\"X-A\":\"1\"},\"body\":\"x\"}", bad_status [i]);
        assert (s_map (text, &resp) == 502);
        assert (streq (resp.detail, "Function returned an invalid statusCode"));
        assert (s_body_is (&resp, "{\"detail\":\"Function returned an invalid statusCode\"}"));
        assert (streq (s_header (&resp, "content-type"), "application/json"));
        assert (cJSON_GetArraySize (resp.headers) == 1);
    }
    //  Return codes
    cJSON *value = s_json ("{\"statusCode\":700}");
    assert (gwmap_response (value, &resp) == -1);
    cJSON_Delete (value);
    value = s_json ("{\"statusCode\":200}");
    assert (gwmap_response (value, &resp) == 0);
    assert (resp.detail == NULL);
    cJSON_Delete (value);
    assert (gwmap_response (NULL, NULL) == -1);

    //  Headers no client reads: 502
    cJSON *many = s_json ("{\"statusCode\":200,\"headers\":{}}");
    cJSON *many_headers = cJSON_GetObjectItem (many, "headers");
    for (int i = 0; i < 100; i++) {
        char name [16];
        snprintf (name, sizeof name, "X-H%d", i);
        cJSON_AddStringToObject (many_headers, name, "v");
    }
    assert (gwmap_response (many, &resp) == 0 && resp.status == 200);
    cJSON_AddStringToObject (many_headers, "X-One-Too-Many", "v");
    assert (gwmap_response (many, &resp) == -1 && resp.status == 502);
    assert (strstr (resp.detail, "at most 100 headers"));
    cJSON_Delete (many);
    char *long_value = (char *) malloc (20000);
    memset (long_value, 'a', 19999);
    long_value [19999] = 0;
    value = cJSON_CreateObject ();
    cJSON_AddNumberToObject (value, "statusCode", 200);
    cJSON_AddStringToObject (cJSON_AddObjectToObject (value, "headers"), "X-Big", long_value);
    assert (gwmap_response (value, &resp) == -1 && resp.status == 502);
    cJSON_Delete (value);
    free (long_value);

    //  Host names, with or without a port, in any case
    assert (gwmap_host_is ("fn.example.com", "fn.example.com"));
    assert (gwmap_host_is ("FN.Example.com:8000", "fn.example.com"));
    assert (gwmap_host_is ("[::1]:8000", "[::1]"));
    assert (!gwmap_host_is ("fn.example.com.evil", "fn.example.com"));
    assert (!gwmap_host_is ("example.com", "fn.example.com"));
    assert (!gwmap_host_is ("fn.example.com", ""));
    assert (!gwmap_host_is (NULL, "fn.example.com"));
    assert (!gwmap_host_is ("fn.example.com", NULL));

    gwmap_response_reset (&resp);
    gwmap_response_reset (&resp);
    assert (resp.headers == NULL && resp.body == NULL);
    printf ("OK\n");
}
