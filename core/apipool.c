/*  =========================================================================
    apipool - the control plane's threads: REST requests off the http loop

    Why: every control-plane request reads or writes SQLite, and a write
    may wait up to the store's 5 s busy timeout for another connection's
    lock (a migration, a backup, the recorder's batch, a user's sqlite3
    shell). Run on the http loop, that wait stalls every invoke and every
    health check behind it. Here it stalls one of a few threads, and the
    http loop goes on serving.

    How: each thread is a CZMQ actor with its own store connection and
    handler set (core/api.h); it also checks API tokens, since checking one
    reads SQLite (tokens_check_header). The owner (the http actor) talks to
    them by message: an API_REQUEST goes down one thread's pipe, and every
    thread PUSHes its API_REPLY to one PULL socket the owner polls. Both
    cross inproc sockets as copies (no pointers), so they are declared in
    broker/msg_defs.h like every other message and checked by its codec at
    receive.

    The owner keeps every job not yet answered in one list, in submission
    order, which is also deadline order since every job gets the same
    bound. A job is queued until a thread is free (at most queue_depth of
    them: past that, apipool_submit says no and the caller answers 503 with
    Retry-After), then running on exactly one thread. Threads are handed
    jobs only when idle, so a slow request never has others queued behind
    it on its thread while another thread is free. A thread is idle again
    when its reply comes back, even when that reply is for a job that was
    cancelled or expired meanwhile (then it is dropped; late ones logged),
    so the count of busy threads is always true.

    Deadlines (apipool_expired, from the owner's timer): a queued job past
    its deadline never ran: 503 with Retry-After. A running one may still
    commit: 504, saying so.
    ========================================================================= */

#include <czmq.h>
#include "broker/actor.h"
#include "broker/msg.h"
#include "core/apipool.h"
#include "core/sigv4.h"
#include "core/store.h"
#include "core/tokens.h"
#include "core/util.h"

//  What a thread needs to start
typedef struct {
    char *data_dir;                 //  Its store is <data_dir>/clowdy.db (store_open)
    char *endpoint;                 //  The owner's PULL socket
    int index;                      //  This thread's index
    int max_memory_mb;              //  api_set_limits
    int max_timeout_seconds;        //  ditto
    const config_t *quotas;         //  api_set_quotas, read before the thread says ready
} s_thread_args_t;

//  Why a thread's current reply is no longer wanted
typedef enum {
    S_WANTED,                       //  Its job still waits for it
    S_EXPIRED,                      //  Its job's deadline passed: the reply is late
    S_CANCELLED                     //  Its job's client went away
} s_abandon_t;

typedef struct {
    zactor_t *actor;                //  The thread
    s_thread_args_t args;           //  Its start arguments (owned)
    char *job_id;                   //  Id of the job it runs, NULL when idle
    s_abandon_t abandon;            //  Whether that job still wants the reply
} s_thread_t;

//  One submitted request, not yet answered
typedef struct {
    char *id;                       //  Caller's request id
    char *method;                   //  Request, copied
    char *path;
    char *query;
    char *user_id;
    char *authorization;            //  "" or an API-token header to check first
    char *headers;                  //  "" or the request's headers as JSON (the Lambda API reads them)
    byte *body;                     //  Body bytes, or NULL
    size_t body_size;               //  Their size
    int64_t deadline;               //  zclock_mono () when it expires
    int thread;                     //  Index of the thread running it, -1 while queued
} s_job_t;

struct _apipool_t {
    s_thread_t *threads;            //  The threads
    int thread_count;               //  How many
    zsock_t *replies;               //  PULL: every thread's replies
    char *endpoint;                 //  Where replies is bound
    zlistx_t *jobs;                 //  s_job_t, in submission (= deadline) order
    size_t queue_depth;             //  Most jobs that may wait
    int deadline_ms;                //  Bound on a job, queue included
};


//  --------------------------------------------------------------------------
//  A thread

static void
s_thread_run (zsock_t *pipe, void *argument)
{
    s_thread_args_t *args = (s_thread_args_t *) argument;
    store_t *store = store_open (args->data_dir);
    api_t *api = store? api_new (store): NULL;
    zsock_t *replies = zsock_new_push (args->endpoint);
    bool ready = store && api && replies;
    //  Tokens made on this thread keep a sealed SigV4 secret (core/sigv4.h)
    if (ready)
        sigv4_key_load (args->data_dir);
    if (ready) {
        api_set_limits (api, args->max_memory_mb, args->max_timeout_seconds);
        api_set_quotas (api, args->quotas);
        actor_ready (pipe);
    }
    else
        actor_failed (pipe, "cannot open the database in %s", args->data_dir);

    bool terminated = !ready;
    while (!terminated) {
        msg_t *msg = msg_recv_pipe (pipe, &terminated);
        if (msg && msg_id (msg) != MSG_ID_API_REQUEST)
            zsys_warning ("apipool: thread %d: unexpected '%s'", args->index, msg_command (msg));
        else
        if (msg) {
            const char *id = msg_api_request_id (msg);
            const char *authorization = msg_api_request_authorization (msg);
            size_t body_size = 0;
            const byte *body = msg_api_request_body (msg, &body_size);
            api_request_t req = {
                .method = msg_api_request_method (msg), .path = msg_api_request_path (msg),
                .query = msg_api_request_query (msg), .body = (const char *) body,
                .body_size = body_size, .user_id = msg_api_request_user_id (msg),
                .headers = msg_api_request_headers (msg)
            };
            api_response_t resp = { 0 };
            char user [AUTH_USER_ID_SIZE];
            const char *detail = NULL;
            bool unauthorized = false;
            if (*authorization && sigv4_is_header (authorization)) {
                //  The Lambda API, signed: the path as sent is in the headers
                cJSON *headers = cJSON_Parse (req.headers ? req.headers : "");
                const char *raw_path = cJSON_GetStringValue (cJSON_GetObjectItem (headers, SIGV4_RAW_PATH));
                if (tokens_check_sigv4 (store, authorization, req.method, raw_path ? raw_path : req.path,
                                        req.query, headers, req.body, req.body_size, user, sizeof user,
                                        &detail) == 0)
                    req.user_id = user;
                else {
                    unauthorized = true;
                    resp.status = 401;
                    resp.body = api_detail_json (detail);
                }
                cJSON_Delete (headers);
            }
            else
            if (*authorization) {
                if (tokens_check_header (store, authorization, user, sizeof user, &detail) == 0)
                    req.user_id = user;
                else {
                    unauthorized = true;
                    resp.status = 401;
                    resp.body = api_detail_json (detail);
                }
            }
            if (!unauthorized)
                api_handle (api, &req, &resp);     //  -1 (not ours) leaves its 404
            if (msg_send_api_reply (replies, NULL, args->index, id, resp.status,
                                    resp.body? resp.body: "null", resp.invalidate? resp.invalidate: "",
                                    (int64_t) unauthorized))
                //  Cannot happen on our own inproc socket; the job's deadline answers it
                zsys_error ("apipool: thread %d cannot send its reply for %s", args->index, id);
            api_response_reset (&resp);
        }
        msg_destroy (&msg);
    }
    zsock_destroy (&replies);
    api_destroy (&api);
    store_destroy (&store);
}


//  --------------------------------------------------------------------------
//  Jobs

static void
s_job_destroy (s_job_t **self_p)
{
    if (*self_p) {
        s_job_t *self = *self_p;
        free (self->id);
        free (self->method);
        free (self->path);
        free (self->query);
        free (self->user_id);
        free (self->authorization);
        free (self->headers);
        free (self->body);
        free (self);
        *self_p = NULL;
    }
}

static void
s_job_destructor (void **item)
{
    s_job_destroy ((s_job_t **) item);
}

//  The job with this id, and its handle in the list, or NULL
static s_job_t *
s_job_find (apipool_t *self, const char *id, void **handle_p)
{
    for (s_job_t *job = (s_job_t *) zlistx_first (self->jobs); job;
         job = (s_job_t *) zlistx_next (self->jobs))
        if (streq (job->id, id)) {
            *handle_p = zlistx_cursor (self->jobs);
            return job;
        }
    return NULL;
}

//  Jobs waiting for a thread
static size_t
s_queued (apipool_t *self)
{
    size_t queued = 0;
    for (s_job_t *job = (s_job_t *) zlistx_first (self->jobs); job;
         job = (s_job_t *) zlistx_next (self->jobs))
        queued += job->thread < 0;
    return queued;
}

//  Hand the oldest queued job to an idle thread, if both exist
static void
s_start_next (apipool_t *self)
{
    int index;
    for (index = 0; index < self->thread_count; index++)
        if (!self->threads [index].job_id)
            break;
    if (index == self->thread_count)
        return;
    for (s_job_t *job = (s_job_t *) zlistx_first (self->jobs); job;
         job = (s_job_t *) zlistx_next (self->jobs)) {
        if (job->thread >= 0)
            continue;
        s_thread_t *thread = &self->threads [index];
        if (msg_send_api_request (zactor_sock (thread->actor), NULL, job->id, job->method, job->path, job->query,
                                  job->body, job->body_size, job->user_id, job->authorization,
                                  job->headers)) {
            //  Cannot happen on an inproc pipe we own; the deadline answers it
            zsys_error ("apipool: cannot hand %s to thread %d", job->id, index);
            return;
        }
        job->thread = index;
        thread->job_id = strdup (job->id);
        thread->abandon = S_WANTED;
        return;
    }
}

static apipool_reply_t *
s_reply_new (const char *id, int status, const char *detail)
{
    apipool_reply_t *reply = (apipool_reply_t *) zmalloc (sizeof (apipool_reply_t));
    reply->id = strdup (id);
    reply->status = status;
    reply->body = api_detail_json (detail);
    return reply;
}


//  --------------------------------------------------------------------------
//  The pool

apipool_t *
apipool_new (const apipool_config_t *config)
{
    assert (config && config->data_dir);
    apipool_t *self = (apipool_t *) zmalloc (sizeof (apipool_t));
    self->thread_count = config->threads > 0? config->threads: APIPOOL_THREADS;
    self->queue_depth = config->queue_depth > 0? (size_t) config->queue_depth: APIPOOL_QUEUE_DEPTH;
    self->deadline_ms = config->deadline_ms > 0? config->deadline_ms: APIPOOL_DEADLINE_MS;
    self->jobs = zlistx_new ();
    zlistx_set_destructor (self->jobs, s_job_destructor);
    self->threads = (s_thread_t *) zmalloc (sizeof (s_thread_t) * (size_t) self->thread_count);
    //  Named by a counter, not by our address: a destroyed pool's inproc
    //  name stays bound until libzmq's reaper closes its socket, and the
    //  next pool may well be given the same memory
    static unsigned int s_pools = 0;
    self->endpoint = zsys_sprintf ("inproc://clowdy-apipool-%u",
                                   __atomic_fetch_add (&s_pools, 1, __ATOMIC_RELAXED));
    char *bind = zsys_sprintf ("@%s", self->endpoint);
    self->replies = zsock_new_pull (bind);
    zstr_free (&bind);
    if (!self->replies)
        zsys_error ("apipool: cannot bind %s", self->endpoint);
    bool ready = self->replies != NULL;
    for (int index = 0; ready && index < self->thread_count; index++) {
        s_thread_t *thread = &self->threads [index];
        thread->args = (s_thread_args_t) {
            .data_dir = strdup (config->data_dir), .endpoint = strdup (self->endpoint), .index = index,
            .max_memory_mb = config->max_memory_mb, .max_timeout_seconds = config->max_timeout_seconds,
            .quotas = config->quotas
        };
        char *reason = NULL;
        thread->actor = actor_start (s_thread_run, &thread->args, "control-plane thread", &reason);
        if (!thread->actor) {
            zsys_error ("apipool: control-plane thread %d: %s", index, reason);
            zstr_free (&reason);
            ready = false;
        }
    }
    if (!ready)
        apipool_destroy (&self);
    return self;
}

void
apipool_destroy (apipool_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        apipool_t *self = *self_p;
        for (int index = 0; index < self->thread_count; index++) {
            s_thread_t *thread = &self->threads [index];
            zactor_destroy (&thread->actor);
            free (thread->args.data_dir);
            free (thread->args.endpoint);
            free (thread->job_id);
        }
        free (self->threads);
        zsock_destroy (&self->replies);
        zlistx_destroy (&self->jobs);
        free (self->endpoint);
        free (self);
        *self_p = NULL;
    }
}

int
apipool_submit (apipool_t *self, const char *id, const api_request_t *req, const char *authorization)
{
    assert (self);
    assert (id && req && req->method && req->path);
    bool idle = false;
    for (int index = 0; index < self->thread_count; index++)
        idle = idle || !self->threads [index].job_id;
    if (!idle && s_queued (self) >= self->queue_depth)
        return -1;
    s_job_t *job = (s_job_t *) zmalloc (sizeof (s_job_t));
    job->id = strdup (id);
    job->method = strdup (req->method);
    job->path = strdup (req->path);
    job->query = strdup (req->query? req->query: "");
    job->user_id = strdup (req->user_id? req->user_id: "");
    job->authorization = strdup (authorization? authorization: "");
    job->headers = strdup (req->headers? req->headers: "");
    if (req->body && req->body_size) {
        job->body = (byte *) malloc (req->body_size);
        memcpy (job->body, req->body, req->body_size);
        job->body_size = req->body_size;
    }
    job->deadline = zclock_mono () + self->deadline_ms;
    job->thread = -1;
    zlistx_add_end (self->jobs, job);
    s_start_next (self);
    return 0;
}

void
apipool_cancel (apipool_t *self, const char *id)
{
    assert (self);
    void *handle = NULL;
    s_job_t *job = id? s_job_find (self, id, &handle): NULL;
    if (!job)
        return;
    if (job->thread >= 0)
        self->threads [job->thread].abandon = S_CANCELLED;
    zlistx_delete (self->jobs, handle);
}

zsock_t *
apipool_socket (apipool_t *self)
{
    assert (self);
    return self->replies;
}

apipool_reply_t *
apipool_recv (apipool_t *self)
{
    assert (self);
    if (!(zsock_events (self->replies) & ZMQ_POLLIN))
        return NULL;
    msg_t *msg = msg_recv (self->replies, false);
    if (!msg)
        return NULL;                //  Malformed (logged) or interrupted
    apipool_reply_t *reply = NULL;
    int64_t index = msg_id (msg) == MSG_ID_API_REPLY? msg_api_reply_thread (msg): -1;
    const char *id = index >= 0? msg_api_reply_id (msg): "";
    if (index < 0 || index >= self->thread_count
    ||  !self->threads [index].job_id || strneq (self->threads [index].job_id, id))
        zsys_error ("apipool: unexpected reply from thread %" PRId64 " dropped", index);
    else {
        s_thread_t *thread = &self->threads [index];
        int64_t status = msg_api_reply_status (msg);
        void *handle = NULL;
        s_job_t *job = thread->abandon == S_WANTED? s_job_find (self, id, &handle): NULL;
        if (job) {
            const char *invalidate = msg_api_reply_invalidate (msg);
            reply = (apipool_reply_t *) zmalloc (sizeof (apipool_reply_t));
            reply->id = strdup (id);
            reply->status = status >= 100 && status <= 599? (int) status: 500;
            reply->body = strdup (msg_api_reply_body (msg));
            reply->invalidate = *invalidate? strdup (invalidate): NULL;
            reply->unauthorized = msg_api_reply_unauthorized (msg) != 0;
            zlistx_delete (self->jobs, handle);
        }
        else
        if (thread->abandon == S_EXPIRED)
            zsys_warning ("apipool: late reply for %s (status %" PRId64 ") dropped: its deadline had passed",
                          id, status);
        else
            zsys_debug ("apipool: reply for %s dropped: its client went away", id);
        zstr_free (&thread->job_id);
        s_start_next (self);
    }
    msg_destroy (&msg);
    return reply;
}

apipool_reply_t *
apipool_expired (apipool_t *self)
{
    assert (self);
    s_job_t *job = (s_job_t *) zlistx_first (self->jobs);
    if (!job || job->deadline > zclock_mono ())
        return NULL;
    apipool_reply_t *reply;
    int seconds = (self->deadline_ms + 999) / 1000;
    if (job->thread >= 0) {
        self->threads [job->thread].abandon = S_EXPIRED;
        char *detail = zsys_sprintf ("The control plane did not answer within %d s; the change may "
                                     "still be applied", seconds);
        reply = s_reply_new (job->id, 504, detail);
        zstr_free (&detail);
    }
    else {
        char *detail = zsys_sprintf ("The control plane is busy: the request waited %d s and was not "
                                     "run; try again shortly", seconds);
        reply = s_reply_new (job->id, 503, detail);
        reply->retry_after = 1;
        zstr_free (&detail);
    }
    zsys_warning ("apipool: %s %s passed its deadline (%s)", job->method, job->path,
                  job->thread >= 0? "running": "never ran");
    zlistx_delete (self->jobs, zlistx_cursor (self->jobs));
    return reply;
}

long
apipool_timeout (apipool_t *self)
{
    assert (self);
    s_job_t *job = (s_job_t *) zlistx_first (self->jobs);
    if (!job)
        return -1;
    int64_t left = job->deadline - zclock_mono ();
    return left > 0? (long) left: 0;
}

size_t
apipool_waiting (apipool_t *self)
{
    assert (self);
    return zlistx_size (self->jobs);
}

void
apipool_reply_destroy (apipool_reply_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        apipool_reply_t *self = *self_p;
        free (self->id);
        free (self->body);
        free (self->invalidate);
        free (self);
        *self_p = NULL;
    }
}


//  --------------------------------------------------------------------------
//  Selftest

//  Wait up to timeout_ms for one reply or expiry
static apipool_reply_t *
s_next (apipool_t *pool, int timeout_ms)
{
    zpoller_t *poller = zpoller_new (apipool_socket (pool), NULL);
    int64_t until = zclock_mono () + timeout_ms;
    apipool_reply_t *reply = NULL;
    while (!reply && zclock_mono () < until) {
        reply = apipool_expired (pool);
        if (reply)
            break;
        long wait = apipool_timeout (pool);
        zpoller_wait (poller, wait >= 0 && wait < 100? (int) wait + 1: 100);
        reply = apipool_recv (pool);
    }
    zpoller_destroy (&poller);
    return reply;
}

void
apipool_test (bool verbose)
{
    printf ("apipool: ");
    char dir [] = "/tmp/clowdy-apipool-test-XXXXXX";
    assert (mkdtemp (dir));
    char *path = zsys_sprintf ("%s/clowdy.db", dir);
    store_t *mine = store_new (path);
    assert (mine);

    //  A database that cannot be opened: no pool, a reason logged
    apipool_config_t broken = { .data_dir = "/nonexistent/dir", .threads = 1 };
    assert (apipool_new (&broken) == NULL);

    apipool_config_t config = { .data_dir = dir, .threads = 2, .queue_depth = 2, .deadline_ms = 1500 };
    apipool_t *pool = apipool_new (&config);
    assert (pool);
    assert (apipool_timeout (pool) == -1 && apipool_waiting (pool) == 0);

    //  A write: its reply, with the invalidation for the gateway
    api_request_t create = { .method = "POST", .path = "/api/projects", .body = "{\"name\":\"Shop\"}",
                             .body_size = 15, .user_id = "alice" };
    assert (apipool_submit (pool, "r1", &create, NULL) == 0);
    assert (apipool_waiting (pool) == 1 && apipool_timeout (pool) > 0);
    apipool_reply_t *reply = s_next (pool, 5000);
    assert (reply && streq (reply->id, "r1") && reply->status == 200 && !reply->invalidate);
    cJSON *project = cJSON_Parse (reply->body);
    char *project_path = zsys_sprintf ("/api/projects/%s",
                                       cJSON_GetStringValue (cJSON_GetObjectItem (project, "id")));
    cJSON_Delete (project);
    apipool_reply_destroy (&reply);
    apipool_reply_destroy (&reply);
    api_request_t rename = { .method = "PUT", .path = project_path, .body = "{\"name\":\"Shop 2\"}",
                             .body_size = 17, .user_id = "alice" };
    assert (apipool_submit (pool, "r2", &rename, NULL) == 0);
    reply = s_next (pool, 5000);
    assert (reply && reply->status == 200 && reply->invalidate && strncmp (reply->invalidate, "routes ", 7) == 0);
    apipool_reply_destroy (&reply);
    //  Not the API's: 404
    api_request_t nowhere = { .method = "GET", .path = "/api/nothing", .user_id = "alice" };
    assert (apipool_submit (pool, "r3", &nowhere, NULL) == 0);
    reply = s_next (pool, 5000);
    assert (reply && reply->status == 404 && strstr (reply->body, "Not found"));
    apipool_reply_destroy (&reply);

    //  API tokens are checked on the thread: the token's user, or a 401
    char token_id [AUTH_TOKEN_ID_SIZE];
    char *token = tokens_create (mine, "alice", "t", token_id);
    assert (token);
    char *header = zsys_sprintf ("Bearer %s", token);
    api_request_t list = { .method = "GET", .path = "/api/projects" };
    assert (apipool_submit (pool, "r4", &list, header) == 0);
    reply = s_next (pool, 5000);
    assert (reply && reply->status == 200 && strstr (reply->body, "Shop 2") && !reply->unauthorized);
    apipool_reply_destroy (&reply);
    header [strlen (header) - 1] = header [strlen (header) - 1] == '0'? '1': '0';
    assert (apipool_submit (pool, "r5", &list, header) == 0);
    reply = s_next (pool, 5000);
    assert (reply && reply->status == 401 && reply->unauthorized && strstr (reply->body, "Invalid API token"));
    apipool_reply_destroy (&reply);

    //  The database locked by another connection: two writes run (and
    //  wait), two wait in the queue, the fifth is refused; at the deadline
    //  the queued ones are 503 and never ran, the running ones 504; their
    //  late replies are dropped once the lock goes
    assert (store_begin (mine) == 0);
    assert (store_exec (mine, "UPDATE projects SET description = 'locked'", NULL) == 1);
    const char *ids [] = { "w1", "w2", "w3", "w4" };
    for (int index = 0; index < 4; index++)
        assert (apipool_submit (pool, ids [index], &rename, NULL) == 0);
    assert (apipool_submit (pool, "w5", &rename, NULL) == -1);
    assert (apipool_waiting (pool) == 4);
    apipool_cancel (pool, "w4");            //  a client that went away
    assert (apipool_waiting (pool) == 3);
    int statuses [3];
    for (int index = 0; index < 3; index++) {
        reply = s_next (pool, 5000);
        assert (reply && streq (reply->id, ids [index]));
        statuses [index] = reply->status;
        if (reply->status == 503)
            assert (reply->retry_after > 0 && strstr (reply->body, "not run"));
        else
            assert (reply->status == 504 && strstr (reply->body, "did not answer"));
        apipool_reply_destroy (&reply);
    }
    assert (statuses [0] == 504 && statuses [1] == 504 && statuses [2] == 503);
    assert (apipool_waiting (pool) == 0 && apipool_timeout (pool) == -1);
    store_commit (mine);
    //  The threads come free (their late replies dropped) and work again
    zclock_sleep (200);
    assert (apipool_submit (pool, "r6", &nowhere, NULL) == 0);
    reply = s_next (pool, 8000);
    assert (reply && streq (reply->id, "r6") && reply->status == 404);
    apipool_reply_destroy (&reply);
    assert (apipool_submit (pool, "r7", &nowhere, NULL) == 0);
    assert (apipool_submit (pool, "r8", &nowhere, NULL) == 0);
    reply = s_next (pool, 8000);
    assert (reply && reply->status == 404);
    apipool_reply_destroy (&reply);
    reply = s_next (pool, 8000);
    assert (reply && reply->status == 404);
    apipool_reply_destroy (&reply);

    //  Destroyed with a request in flight: its reply is dropped
    assert (apipool_submit (pool, "r9", &list, NULL) == 0);
    apipool_destroy (&pool);
    apipool_destroy (&pool);

    free (header);
    free (token);
    zstr_free (&project_path);
    store_destroy (&mine);
    zstr_free (&path);
    char command [256];
    snprintf (command, sizeof command, "rm -rf %s", dir);
    if (system (command)) { }
    printf ("OK\n");
}
