/*  =========================================================================
    api - the control-plane REST handlers (projects, functions, versions,
    env vars, routes, invocation logs, stats), independent of HTTP transport

    Every REST endpoint is a row of one route table (core/api.c); the
    handlers live by resource in core/api_*.c. The http actor parses a
    request, asks api_route_flags where it may run, authenticates it, and
    has api_handle() run it: on its own loop for the few routes that touch
    no store (API_NO_STORE), else on a control-plane thread (core/apipool.c)
    with that thread's own store connection. api_handle() runs synchronously
    on the caller's thread and fills in a response: status, JSON body, and,
    for writes that change what the invoke path caches, an invalidation
    event that the http actor forwards to the gateway actor.

    Shapes, status codes and `detail` sentences follow ../shared/API.md.
    ========================================================================= */

#ifndef CLOWDY_API_H_INCLUDED
#define CLOWDY_API_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include "core/config.h"
#include "core/store.h"

typedef struct {
    const char *method;             //  "GET", "POST", ... (upper case)
    const char *path;               //  Decoded path without query, e.g. "/api/projects/abc"
    const char *query;              //  Raw query string after '?', or NULL
    const char *body;               //  Request body bytes, or NULL
    size_t body_size;               //  Body length in bytes
    const char *user_id;            //  Authenticated user id (never NULL; "local" in local mode)
    const char *headers;            //  Lambda API only: headers as a JSON object (lower-case names), or NULL
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

//  Read-your-writes for invocation records: a function the API calls
//  before it reads them, which writes what the recorder still holds and
//  returns 0 (main sets it to recorder_sync; core does not reach into the
//  actors). Set once, before any thread starts; NULL: nothing to wait for.
void
    api_set_records_sync (int (*sync) (void));

//  Call the function above, if set; 0 when none or when it succeeded
int
    api_records_sync (void);

typedef struct _api_t api_t;

//  The one phrasing of a 404 and a 405 `detail`, for the http actor's own
//  answers too
#define API_NOT_FOUND           "Not found"
#define API_METHOD_NOT_ALLOWED  "Method not allowed"

//  Route flags (api_route_flags)
#define API_PUBLIC      1           //  answered without credentials (health, config)
#define API_NO_STORE    2           //  touches no SQLite: may run on the http loop

//  Create a handler set over an open store (not owned). store may be NULL:
//  then only API_NO_STORE routes are served (the others answer 500).
api_t *
    api_new (store_t *store);

//  Who sees GET /api/cluster whole (worker ids, hosts, calls running):
//  everyone when admins is NULL (local mode: the operator is the user),
//  else only the user ids in admins ("ID,ID,..."; "" names nobody); the
//  others get the totals and each worker's state and capacity, by index.
//  For the whole process (the http thread and the pool's threads answer
//  it): main sets it once before the threads start.
void
    api_set_cluster_admins (const char *admins);

//  What GET /api/config answers: {auth_mode, clerk_publishable_key?, version,
//  assistant: {configured}, gateway_host} (the UI says the assistant is not
//  set up before anyone types to it, and shows gateway URLs on the functions'
//  own origin when there is one). gateway_host NULL or "" answers null.
void
    api_set_config (api_t *self, const char *auth_mode, const char *clerk_publishable_key,
                    const char *version, bool assistant_configured, const char *gateway_host);

//  The flags of the route method and path name (API_PUBLIC, API_NO_STORE,
//  or 0), API_NO_STORE for a known path under another method (a 405), or -1
//  when the path is not the API's (the caller forwards or answers 404).
int
    api_route_flags (const char *method, const char *path);

//  Lower the largest memory_mb and timeout_seconds a function may have
//  (defaults 2048 and 900, the API's own maxima; values outside are ignored).
void
    api_set_limits (api_t *self, int max_memory_mb, int max_timeout_seconds);

//  Read the quotas from config, which must outlive self: what one user may
//  keep (--max-functions, --max-projects, --max-code-mb, --max-tokens), what
//  one project may have (--max-routes, --max-env-vars) and the versions a
//  function keeps (--max-versions). NULL, as a new api_t has: none.
void
    api_set_quotas (api_t *self, const config_t *config);

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
