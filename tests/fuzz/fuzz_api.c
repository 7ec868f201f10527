/*  fuzz_api - libFuzzer target for the control-plane handlers: any method,
    path, query and body a client can send reaches api_handle, over a real
    in-memory store. Input: first byte picks the method, then the path up
    to the first newline, then the query up to the next, then the body.  */
#include <czmq.h>
#include "core/api.h"

static store_t *s_store;
static api_t *s_api;

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    static const char *methods [] = { "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS" };
    if (size < 2)
        return 0;
    if (!s_store) {
        zsys_init ();
        zsys_set_logsystem (false);
        s_store = store_new (":memory:");
        s_api = api_new (s_store);
        //  Something to find: a project with a function, env var and route
        const char *setup [][3] = {
            { "POST", "/api/projects", "{\"name\":\"Shop\"}" },
        };
        api_request_t req = { .method = setup [0][0], .path = setup [0][1], .body = setup [0][2],
                              .body_size = strlen (setup [0][2]), .user_id = "local" };
        api_response_t resp = { 0 };
        api_handle (s_api, &req, &resp);
        api_response_reset (&resp);
    }
    char *text = (char *) malloc (size);
    memcpy (text, data + 1, size - 1);
    text [size - 1] = 0;
    char *path = text;
    char *query = strchr (path, '\n');
    if (query)
        *query++ = 0;
    char *body = query ? strchr (query, '\n') : NULL;
    if (body)
        *body++ = 0;
    api_request_t req = {
        .method = methods [data [0] % 7], .path = path, .query = query,
        .body = body, .body_size = body ? (size_t) (text + size - 1 - body) : 0, .user_id = "local"
    };
    api_response_t resp = { 0 };
    api_handle (s_api, &req, &resp);
    assert (resp.status >= 200 || resp.status == 0);
    api_response_reset (&resp);
    free (text);
    return 0;
}
