/*  =========================================================================
    apipool - the control plane's threads: REST requests off the http loop

    A small pool of threads (2 by default), each with its own store
    connection, that run api_handle for the http actor, so that a slow or
    locked database never stalls the http loop (and with it every invoke).
    The http actor owns the pool and calls it from its own thread only:

        apipool_t *pool = apipool_new (&config);            //  NULL: reason logged
        if (apipool_submit (pool, request_id, &api_request, NULL))
            ... answer 503 with Retry-After: the queue is full
        //  poll apipool_socket (pool) for POLLIN, at most apipool_timeout (pool) ms
        apipool_reply_t *reply = apipool_recv (pool);       //  NULL: nothing for a caller
        while ((reply = apipool_expired (pool)))            //  deadlines that passed
            ... answer reply->status with reply->body
        apipool_cancel (pool, request_id);                  //  the client went away

    Every submitted request gets exactly one reply, from apipool_recv or
    apipool_expired (unless cancelled). A request waits in a bounded queue
    until a thread is free; each has a deadline (30 s by default) from the
    moment it was submitted: past it, a queued request is dropped unrun and
    answered 503 with Retry-After, a running one is answered 504, and its
    thread's late reply is dropped and logged when it comes.

    API tokens: checking one reads SQLite, so the http loop submits such a
    request with its Authorization header and the thread checks it first
    (a bad token is a 401 with reply->unauthorized set).
    ========================================================================= */

#ifndef CLOWDY_APIPOOL_H_INCLUDED
#define CLOWDY_APIPOOL_H_INCLUDED

#include <czmq.h>
#include "core/api.h"

#define APIPOOL_THREADS         2           //  default number of threads
#define APIPOOL_QUEUE_DEPTH     64          //  default requests waiting for a thread
#define APIPOOL_DEADLINE_MS     30000       //  default bound on a request, queue included

typedef struct {
    const char *data_dir;           //  each thread opens <data_dir>/clowdy.db (store_open)
    int threads;                    //  0: APIPOOL_THREADS
    int queue_depth;                //  0: APIPOOL_QUEUE_DEPTH
    int deadline_ms;                //  0: APIPOOL_DEADLINE_MS
    int max_memory_mb;              //  api_set_limits; 0: the API's own maximum
    int max_timeout_seconds;        //  ditto
    const config_t *quotas;         //  api_set_quotas from it; NULL: none
} apipool_config_t;

//  The answer to one submitted request
typedef struct {
    char *id;                       //  the id it was submitted with
    int status;                     //  HTTP status
    char *body;                     //  JSON text
    char *invalidate;               //  NULL, or an event for the gateway (core/api.h)
    bool unauthorized;              //  a 401: answer with WWW-Authenticate: Bearer
    int retry_after;                //  > 0: answer with Retry-After: this many seconds
} apipool_reply_t;

typedef struct _apipool_t apipool_t;

//  Start the threads; each opens its store before this returns. NULL (with
//  the reason logged) if any cannot.
apipool_t *
    apipool_new (const apipool_config_t *config);

//  Stop the threads (each finishes the request it is running); replies not
//  yet received are dropped. Safe on NULL and twice.
void
    apipool_destroy (apipool_t **self_p);

//  Submit a request under id (unique among those waiting). authorization:
//  NULL, or an Authorization header with an API token to check first (then
//  req->user_id is ignored). The pool copies what it needs. Returns 0, or
//  -1 when the queue is full (nothing was submitted).
int
    apipool_submit (apipool_t *self, const char *id, const api_request_t *req,
                    const char *authorization);

//  The client went away: a queued request is dropped, a running one's
//  reply will be. Unknown ids are ignored.
void
    apipool_cancel (apipool_t *self, const char *id);

//  Replies arrive here: poll it for ZMQ_POLLIN, then call apipool_recv.
zsock_t *
    apipool_socket (apipool_t *self);

//  Receive one message from a thread (without waiting) and start the next
//  queued request on that thread. Returns the reply, or NULL when there was
//  none or it was for a request cancelled or past its deadline (dropped,
//  and logged if late).
apipool_reply_t *
    apipool_recv (apipool_t *self);

//  The next request whose deadline has passed, answered (503 with
//  Retry-After if it never ran, 504 if it is running), or NULL.
apipool_reply_t *
    apipool_expired (apipool_t *self);

//  Milliseconds until the next deadline, or -1 when nothing waits.
long
    apipool_timeout (apipool_t *self);

//  Requests submitted and not yet answered (queued or running).
size_t
    apipool_waiting (apipool_t *self);

//  Destroy a reply; safe on NULL and twice.
void
    apipool_reply_destroy (apipool_reply_t **self_p);

void
    apipool_test (bool verbose);

#endif
