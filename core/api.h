/*  =========================================================================
    api - the control-plane REST handlers (projects, functions, versions,
    env vars, routes, invocation logs, stats), independent of HTTP transport

    The http actor parses a request, authenticates it, and calls api_handle()
    for every /api path it does not forward to another actor. api_handle()
    runs synchronously on the caller's thread with the caller's own store
    connection, and fills in a response: status, JSON body, and, for writes
    that change what the invoke path caches, an invalidation event that the
    http actor forwards to the gateway actor.

    Shapes, status codes and `detail` sentences follow ../shared/API.md.
    ========================================================================= */

#ifndef CLOWDY_API_H_INCLUDED
#define CLOWDY_API_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include "core/store.h"

typedef struct {
    const char *method;             //  "GET", "POST", ... (upper case)
    const char *path;               //  Decoded path without query, e.g. "/api/projects/abc"
    const char *query;              //  Raw query string after '?', or NULL
    const char *body;               //  Request body bytes, or NULL
    size_t body_size;               //  Body length in bytes
    const char *user_id;            //  Authenticated user id (never NULL; "local" in local mode)
} api_request_t;

typedef struct {
    int status;                     //  HTTP status code
    char *body;                     //  JSON text (heap; api_response_reset frees it)
    char *invalidate;               //  NULL, or an event for the gateway (below)
} api_response_t;

//  Invalidation events (resp->invalidate), one per write at most:
//    "function <id>"   a function's code, limits or active version changed,
//                      or it was deleted (and no route pointed to it)
//    "project <id>"    a project's env vars changed, the project was deleted,
//                      or a function with routes in it was deleted: drop
//                      everything cached for the project, its functions too
//    "routes <id>"     a project's routes changed, or it was renamed (its
//                      slug may have changed): drop its route table and slug

typedef struct _api_t api_t;

//  Create a handler set over an open store (not owned). Returns NULL on error.
api_t *
    api_new (store_t *store);

//  Lower the largest memory_mb and timeout_seconds a function may have
//  (defaults 2048 and 900, the API's own maxima; values outside are ignored).
void
    api_set_limits (api_t *self, int max_memory_mb, int max_timeout_seconds);

//  Destroy; safe on NULL and twice.
void
    api_destroy (api_t **self_p);

//  Handle one request. Always fills resp (status and body); returns 0, or -1
//  only when the path is not one api owns (caller answers 404).
int
    api_handle (api_t *self, const api_request_t *req, api_response_t *resp);

//  Free the response's fields and zero it.
void
    api_response_reset (api_response_t *resp);

//  Helper shared with the http actor: build {"detail": "..."} (heap string).
char *
    api_detail_json (const char *detail);

void
    api_test (bool verbose);

#endif
