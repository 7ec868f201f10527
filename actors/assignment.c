/*  =========================================================================
    assignment - the warm pool of execution environments

    State, all owned by this actor's thread:
    - workers: id -> worker_t (routing id, memory in use, last heard from).
      A worker silent for WORKER_EXPIRY_MS is dead: its runs fail with a
      clear error and its environments are forgotten.
    - envs: id -> env_t. Life: CREATING (placed, the worker is creating it
      and running its first call) -> BUSY (running) <-> IDLE (warm, waiting)
      -> gone. One environment runs one call at a time and only ever one
      pool key (function + version + configuration): never shared between
      functions.
    - pools: pool key -> pool_t with its idle environments (most recently
      used at the tail: warm calls take the tail, so the head ages out
      first) and its queue of waiting runs.
    - lru: every idle environment in the order it became idle: eviction for
      the memory budget and the idle reaper take from the head.
    - jobs: job id -> job_t, every run this actor has accepted and not yet
      answered. Each ends in exactly one RESULT to gateway.

    Invariants: memory_mb == sum of memory of every env not gone; an env is
    in its pool's idle list and in lru exactly when it is IDLE.
    ========================================================================= */

#include <cjson/cJSON.h>
#include "actors/assignment.h"
#include "broker/actor.h"
#include "broker/endpoints.h"
#include "broker/msg.h"
#include "core/config.h"
#include "core/util.h"

#define HEARTBEAT_MS 1000           //  How often we tell workers we are alive
#define WORKER_EXPIRY_MS 5000       //  A worker silent this long is dead

typedef enum { ENV_CREATING, ENV_BUSY, ENV_IDLE } env_state_t;

typedef struct _job_t job_t;
typedef struct _pool_t pool_t;

typedef struct {
    char *id;                       //  Our worker id (the worker's choice)
    zframe_t *route;                //  Its routing id on the worker socket
    int64_t last_seen;              //  Monotonic ms of its last message
    long capacity_mb;               //  Memory it offers
    long memory_mb;                 //  Memory of its environments
    size_t envs;                    //  Environments on it
} worker_t;

typedef struct {
    char id [UTIL_ID_SIZE];         //  Environment id
    worker_t *worker;               //  Where it lives (NULL while placing)
    pool_t *pool;                   //  Its pool
    char *function_id;              //  For RETIRE by function
    char *project_id;               //  For RETIRE by project
    env_state_t state;              //  Life-cycle state
    long memory_mb;                 //  Its memory limit
    int64_t idle_since;             //  Monotonic ms it became idle
    bool retiring;                  //  Kill when its current run ends
    job_t *job;                     //  Run in progress, or NULL
    void *idle_handle;              //  Handle in pool->idle while IDLE
    void *lru_handle;               //  Handle in self->lru while IDLE
} env_t;

struct _pool_t {
    char *key;                      //  Pool key
    zlistx_t *idle;                 //  env_t *, most recently used at the tail
    zlistx_t *queue;                //  job_t * waiting for an environment
    size_t envs;                    //  Environments of this pool, any state
};

struct _job_t {
    char id [UTIL_ID_SIZE];         //  Job id = invocation id
    zframe_t *route;                //  Gateway's routing id
    char *pool_key;                 //  Which environments may run it
    char *function;                 //  Function context (JSON text)
    char *input;                    //  Input or event (JSON text)
    char *function_id;              //  From the context
    char *project_id;               //  From the context
    long memory_mb;                 //  From the context
    env_t *env;                     //  Environment running it, or NULL
};

typedef struct {
    zsock_t *pipe;                  //  Actor command pipe
    zsock_t *frontend;              //  ROUTER for gateway
    zsock_t *backend;               //  ROUTER for workers
    zsock_t *placement;             //  DEALER to placement
    zhashx_t *workers;              //  id -> worker_t
    zhashx_t *envs;                 //  id -> env_t
    zhashx_t *pools;                //  key -> pool_t
    zhashx_t *jobs;                 //  id -> job_t
    zlistx_t *lru;                  //  Idle env_t *, least recently idle first
    long memory_mb;                 //  Memory of all environments
    const config_t *config;         //  Settings
    int64_t next_heartbeat;         //  Monotonic ms
    bool terminated;                //  Did caller ask us to quit?
} self_t;

//  --------------------------------------------------------------------------
//  Small helpers

static void
s_job_free (job_t *job)
{
    zframe_destroy (&job->route);
    free (job->pool_key);
    free (job->function);
    free (job->input);
    free (job->function_id);
    free (job->project_id);
    free (job);
}

static void
s_pool_destroy (void **item)
{
    pool_t *pool = (pool_t *) *item;
    if (pool) {
        zlistx_destroy (&pool->idle);
        zlistx_destroy (&pool->queue);
        free (pool->key);
        free (pool);
        *item = NULL;
    }
}

static void
s_worker_destroy (void **item)
{
    worker_t *worker = (worker_t *) *item;
    if (worker) {
        zframe_destroy (&worker->route);
        free (worker->id);
        free (worker);
        *item = NULL;
    }
}

//  Answer a job's RESULT and forget the job
static void
s_finish_job (self_t *self, job_t *job, const char *result)
{
    msg_send (self->frontend, job->route, "RESULT", job->id, result);
    zhashx_delete (self->jobs, job->id);
    s_job_free (job);
}

static void
s_fail_job (self_t *self, job_t *job, const char *status, const char *error)
{
    cJSON *result = cJSON_CreateObject ();
    cJSON_AddStringToObject (result, "status", status);
    cJSON_AddStringToObject (result, "error", error);
    cJSON_AddNumberToObject (result, "duration_us", 0);
    char *text = cJSON_PrintUnformatted (result);
    s_finish_job (self, job, text);
    free (text);
    cJSON_Delete (result);
}

static pool_t *
s_pool_require (self_t *self, const char *key)
{
    pool_t *pool = (pool_t *) zhashx_lookup (self->pools, key);
    if (!pool) {
        pool = (pool_t *) zmalloc (sizeof (pool_t));
        pool->key = strdup (key);
        pool->idle = zlistx_new ();
        pool->queue = zlistx_new ();
        zhashx_insert (self->pools, key, pool);
    }
    return pool;
}

//  Drop a pool with nothing in it, so retired versions do not accumulate
static void
s_pool_maybe_drop (self_t *self, pool_t *pool)
{
    if (pool->envs == 0 && zlistx_size (pool->queue) == 0)
        zhashx_delete (self->pools, pool->key);
}

static void
s_env_unidle (self_t *self, env_t *env)
{
    if (env->state == ENV_IDLE) {
        zlistx_delete (env->pool->idle, env->idle_handle);
        zlistx_delete (self->lru, env->lru_handle);
        env->idle_handle = env->lru_handle = NULL;
    }
}

//  Forget an environment; kill: also tell its worker to kill it
static void
s_env_remove (self_t *self, env_t *env, bool kill)
{
    s_env_unidle (self, env);
    if (kill && env->worker)
        msg_send (self->backend, env->worker->route, "KILL", env->id);
    if (env->worker) {
        env->worker->envs--;
        env->worker->memory_mb -= env->memory_mb;
    }
    self->memory_mb -= env->memory_mb;
    pool_t *pool = env->pool;
    pool->envs--;
    zhashx_delete (self->envs, env->id);
    free (env->function_id);
    free (env->project_id);
    free (env);
    s_pool_maybe_drop (self, pool);
}

//  --------------------------------------------------------------------------
//  Running jobs

static void
s_exec (self_t *self, env_t *env, job_t *job)
{
    s_env_unidle (self, env);
    if (env->state != ENV_CREATING)
        env->state = ENV_BUSY;
    env->job = job;
    job->env = env;
    //  Only a new environment needs the function's code and env
    msg_send (self->backend, env->worker->route, "EXEC", env->id, job->id, job->pool_key,
              env->state == ENV_CREATING ? job->function : "{}", job->input);
}

//  Free memory for a new environment by evicting idle ones, oldest first
static bool
s_make_room (self_t *self, long memory_mb)
{
    while (self->memory_mb + memory_mb > self->config->memory_budget_mb) {
        env_t *oldest = (env_t *) zlistx_first (self->lru);
        if (!oldest)
            return false;
        s_env_remove (self, oldest, true);
    }
    return true;
}

static void
s_place (self_t *self, pool_t *pool, job_t *job)
{
    env_t *env = (env_t *) zmalloc (sizeof (env_t));
    util_new_id (env->id);
    env->pool = pool;
    env->function_id = strdup (job->function_id);
    env->project_id = strdup (job->project_id);
    env->state = ENV_CREATING;
    env->memory_mb = job->memory_mb;
    env->job = job;
    job->env = env;
    pool->envs++;
    self->memory_mb += env->memory_mb;
    zhashx_insert (self->envs, env->id, env);

    cJSON *workers = cJSON_CreateArray ();
    for (worker_t *worker = (worker_t *) zhashx_first (self->workers); worker;
         worker = (worker_t *) zhashx_next (self->workers)) {
        cJSON *item = cJSON_CreateObject ();
        cJSON_AddStringToObject (item, "id", worker->id);
        cJSON_AddNumberToObject (item, "envs", (double) worker->envs);
        cJSON_AddNumberToObject (item, "memory_mb", (double) worker->memory_mb);
        cJSON_AddNumberToObject (item, "capacity_mb", (double) worker->capacity_mb);
        cJSON_AddItemToArray (workers, item);
    }
    char *text = cJSON_PrintUnformatted (workers);
    cJSON_Delete (workers);
    //  PLACE carries the job id; the env id travels back with the job
    msg_send (self->placement, NULL, "PLACE", job->id, pool->key, (int64_t) job->memory_mb, text);
    free (text);
}

//  Route a job to a warm environment, a new one, the queue, or refuse it
static void
s_dispatch (self_t *self, job_t *job)
{
    if (job->memory_mb > self->config->memory_budget_mb) {
        char error [256];
        snprintf (error, sizeof error, "The function's memory limit (%ld MB) is larger than the server's "
                  "memory budget for environments (%ld MB)", job->memory_mb, self->config->memory_budget_mb);
        s_fail_job (self, job, "error", error);
        return;
    }
    pool_t *pool = s_pool_require (self, job->pool_key);
    env_t *env = (env_t *) zlistx_last (pool->idle);
    if (env) {
        s_exec (self, env, job);
        return;
    }
    if ((long) pool->envs < self->config->max_concurrency) {
        if (zhashx_size (self->workers) == 0) {
            s_fail_job (self, job, "unavailable", "No worker is available to run the function; retry shortly");
            s_pool_maybe_drop (self, pool);
            return;
        }
        if (s_make_room (self, job->memory_mb)) {
            s_place (self, pool, job);
            return;
        }
        if (pool->envs == 0) {
            //  Nothing of ours will free up for it: waiting would not help
            s_fail_job (self, job, "unavailable",
                        "The server's memory budget for environments is in use; retry shortly");
            s_pool_maybe_drop (self, pool);
            return;
        }
    }
    if ((long) zlistx_size (pool->queue) < self->config->queue_depth) {
        zlistx_add_end (pool->queue, job);
        return;
    }
    s_fail_job (self, job, "rejected", "Too many concurrent invocations of this function; retry shortly");
}

//  An environment is free: give it the next queued job, or make it idle
static void
s_env_free (self_t *self, env_t *env)
{
    env->job = NULL;
    env->state = ENV_BUSY;
    if (env->retiring) {
        s_env_remove (self, env, true);
        return;
    }
    job_t *next = (job_t *) zlistx_first (env->pool->queue);
    if (next) {
        zlistx_delete (env->pool->queue, zlistx_cursor (env->pool->queue));
        s_exec (self, env, next);
        return;
    }
    env->state = ENV_IDLE;
    env->idle_since = zclock_mono ();
    env->idle_handle = zlistx_add_end (env->pool->idle, env);
    env->lru_handle = zlistx_add_end (self->lru, env);
}

//  --------------------------------------------------------------------------
//  Messages from gateway

static void
s_handle_run (self_t *self, msg_t *msg)
{
    job_t *job = (job_t *) zmalloc (sizeof (job_t));
    snprintf (job->id, sizeof job->id, "%s", msg_string (msg, 0));
    job->route = zframe_dup (msg_route (msg));
    job->pool_key = strdup (msg_string (msg, 1));
    const char *function_id = msg_string (msg, 2);
    job->function_id = strdup (function_id);
    job->project_id = strdup (msg_string (msg, 3));
    int64_t memory_mb = msg_int (msg, 4);
    job->memory_mb = memory_mb > 0 && memory_mb <= 65536 ? (long) memory_mb : 128;
    job->function = strdup (msg_string (msg, 5));
    job->input = strdup (msg_string (msg, 6));
    if (!*function_id || zhashx_lookup (self->jobs, job->id)) {
        zsys_warning ("assignment: dropped a RUN without a function id or with a duplicate job id");
        s_job_free (job);
        return;
    }
    zhashx_insert (self->jobs, job->id, job);
    s_dispatch (self, job);
}

static void
s_handle_retire (self_t *self, const char *what)
{
    bool by_function = strncmp (what, "function ", 9) == 0;
    bool by_project = strncmp (what, "project ", 8) == 0;
    if (!by_function && !by_project)
        return;
    const char *id = strchr (what, ' ') + 1;
    zlistx_t *doomed = zlistx_new ();
    for (env_t *env = (env_t *) zhashx_first (self->envs); env; env = (env_t *) zhashx_next (self->envs))
        if (streq (by_function ? env->function_id : env->project_id, id)) {
            if (env->state == ENV_IDLE)
                zlistx_add_end (doomed, env);
            else
                env->retiring = true;
        }
    for (env_t *env = (env_t *) zlistx_first (doomed); env; env = (env_t *) zlistx_next (doomed))
        s_env_remove (self, env, true);
    zlistx_destroy (&doomed);
}

static void
s_handle_frontend (self_t *self)
{
    msg_t *msg = msg_recv (self->frontend, true);
    if (!msg)
        return;
    const char *command = msg_command (msg);
    if (streq (command, "RUN"))
        s_handle_run (self, msg);
    else
    if (streq (command, "RETIRE"))
        s_handle_retire (self, msg_string (msg, 0));
    else
        zsys_warning ("assignment: unexpected '%s' from gateway", command);
    msg_destroy (&msg);
}

//  --------------------------------------------------------------------------
//  Messages from placement

static void
s_handle_placement (self_t *self)
{
    msg_t *msg = msg_recv (self->placement, false);
    if (!msg)
        return;
    if (streq (msg_command (msg), "PLACED")) {
        job_t *job = (job_t *) zhashx_lookup (self->jobs, msg_string (msg, 0));
        worker_t *worker = (worker_t *) zhashx_lookup (self->workers, msg_string (msg, 1));
        env_t *env = job ? job->env : NULL;
        if (env && env->state == ENV_CREATING && !env->worker) {
            if (worker) {
                env->worker = worker;
                worker->envs++;
                worker->memory_mb += env->memory_mb;
                s_exec (self, env, job);
            }
            else {
                job->env = NULL;
                s_env_remove (self, env, false);
                s_fail_job (self, job, "unavailable", "No worker can run the function now; retry shortly");
            }
        }
    }
    msg_destroy (&msg);
}

//  --------------------------------------------------------------------------
//  Messages from workers

static void
s_worker_lost (self_t *self, worker_t *worker)
{
    zsys_warning ("assignment: worker %s is gone; its environments are dropped", worker->id);
    zlistx_t *doomed = zlistx_new ();
    for (env_t *env = (env_t *) zhashx_first (self->envs); env; env = (env_t *) zhashx_next (self->envs))
        if (env->worker == worker)
            zlistx_add_end (doomed, env);
    for (env_t *env = (env_t *) zlistx_first (doomed); env; env = (env_t *) zlistx_next (doomed)) {
        job_t *job = env->job;
        s_env_remove (self, env, false);
        if (job)
            s_fail_job (self, job, "error", "The worker running this invocation was lost");
    }
    zlistx_destroy (&doomed);
    zhashx_delete (self->workers, worker->id);
}

static void
s_handle_done (self_t *self, msg_t *msg)
{
    env_t *env = (env_t *) zhashx_lookup (self->envs, msg_string (msg, 0));
    job_t *job = (job_t *) zhashx_lookup (self->jobs, msg_string (msg, 1));
    if (job && env && env->job == job && streq (msg_string (msg, 3), "lost")) {
        //  The worker no longer had that environment: the job never ran, so
        //  it starts over on a new one
        job->env = NULL;
        env->job = NULL;
        s_env_remove (self, env, false);
        s_dispatch (self, job);
        return;
    }
    if (job && (!env || env->job == job)) {
        job->env = NULL;
        s_finish_job (self, job, msg_string (msg, 2));
    }
    if (!env)
        return;
    if (streq (msg_string (msg, 3), "warm"))
        s_env_free (self, env);
    else {
        //  The environment died with the run (timeout, out of memory, crash).
        //  A queued job now fits under the cap: it gets a new environment.
        env->job = NULL;
        pool_t *pool = env->pool;
        job_t *next = (job_t *) zlistx_first (pool->queue);
        if (next)
            zlistx_delete (pool->queue, zlistx_cursor (pool->queue));
        //  Removing the env may drop the pool; next keeps its key
        s_env_remove (self, env, false);
        if (next)
            s_dispatch (self, next);
    }
}

static void
s_handle_backend (self_t *self)
{
    msg_t *msg = msg_recv (self->backend, true);
    if (!msg)
        return;
    const char *command = msg_command (msg);
    if (streq (command, "READY")) {
        const char *id = msg_string (msg, 0);
        worker_t *worker = (worker_t *) zhashx_lookup (self->workers, id);
        if (worker)
            s_worker_lost (self, worker);   //  It restarted: what we knew of it is stale
        worker = (worker_t *) zmalloc (sizeof (worker_t));
        worker->id = strdup (id);
        worker->route = zframe_dup (msg_route (msg));
        worker->last_seen = zclock_mono ();
        cJSON *info = cJSON_Parse (msg_string (msg, 1));
        double capacity = cJSON_GetNumberValue (cJSON_GetObjectItem (info, "capacity_mb"));
        worker->capacity_mb = isnan (capacity) ? self->config->memory_budget_mb : (long) capacity;
        cJSON_Delete (info);
        zhashx_insert (self->workers, id, worker);
        zsys_info ("assignment: worker %s joined (%ld MB)", id, worker->capacity_mb);
    }
    else {
        //  Any message from a known worker is a sign of life. Each names its
        //  worker: HEARTBEAT by id, DONE and GONE by one of its environments
        worker_t *worker = NULL;
        if (streq (command, "HEARTBEAT"))
            worker = (worker_t *) zhashx_lookup (self->workers, msg_string (msg, 0));
        else {
            env_t *env = (env_t *) zhashx_lookup (self->envs, msg_string (msg, 0));
            worker = env ? env->worker : NULL;
        }
        if (worker && zframe_eq (worker->route, msg_route (msg)))
            worker->last_seen = zclock_mono ();
        if (streq (command, "DONE"))
            s_handle_done (self, msg);
        else
        if (streq (command, "GONE")) {
            env_t *env = (env_t *) zhashx_lookup (self->envs, msg_string (msg, 0));
            if (env && env->state == ENV_IDLE)
                s_env_remove (self, env, false);
        }
        else
        if (!streq (command, "HEARTBEAT"))
            zsys_warning ("assignment: unexpected '%s' from a worker", command);
    }
    msg_destroy (&msg);
}

//  --------------------------------------------------------------------------
//  Timers: heartbeats, dead workers, idle reaper

static void
s_tick (self_t *self)
{
    int64_t now = zclock_mono ();
    if (now < self->next_heartbeat)
        return;
    self->next_heartbeat = now + HEARTBEAT_MS;
    zlistx_t *dead = zlistx_new ();
    for (worker_t *worker = (worker_t *) zhashx_first (self->workers); worker;
         worker = (worker_t *) zhashx_next (self->workers)) {
        if (now - worker->last_seen > WORKER_EXPIRY_MS)
            zlistx_add_end (dead, worker);
        else
            msg_send (self->backend, worker->route, "HEARTBEAT", "assignment");
    }
    for (worker_t *worker = (worker_t *) zlistx_first (dead); worker; worker = (worker_t *) zlistx_next (dead))
        s_worker_lost (self, worker);
    zlistx_destroy (&dead);

    int64_t idle_ms = self->config->idle_seconds * 1000;
    env_t *oldest;
    while ((oldest = (env_t *) zlistx_first (self->lru)) && now - oldest->idle_since > idle_ms)
        s_env_remove (self, oldest, true);
}

static char *
s_stats (self_t *self)
{
    size_t idle = zlistx_size (self->lru), busy = 0, creating = 0, queued = 0;
    for (env_t *env = (env_t *) zhashx_first (self->envs); env; env = (env_t *) zhashx_next (self->envs)) {
        busy += env->state == ENV_BUSY;
        creating += env->state == ENV_CREATING;
    }
    for (pool_t *pool = (pool_t *) zhashx_first (self->pools); pool; pool = (pool_t *) zhashx_next (self->pools))
        queued += zlistx_size (pool->queue);
    return zsys_sprintf ("{\"envs\":%zu,\"idle\":%zu,\"busy\":%zu,\"creating\":%zu,\"queued\":%zu,"
                         "\"workers\":%zu,\"memory_mb\":%ld,\"jobs\":%zu}",
                         zhashx_size (self->envs), idle, busy, creating, queued,
                         zhashx_size (self->workers), self->memory_mb, zhashx_size (self->jobs));
}

static void
s_self_handle_pipe (self_t *self)
{
    char *command = zstr_recv (self->pipe);
    if (!command) {
        self->terminated = true;
        return;
    }
    if (streq (command, "$TERM"))
        self->terminated = true;
    else
    if (streq (command, "STATS")) {
        char *stats = s_stats (self);
        zstr_send (self->pipe, stats);
        zstr_free (&stats);
    }
    else
    if (streq (command, "PING"))
        zstr_send (self->pipe, "PONG");
    else
        zsys_warning ("assignment: invalid pipe command '%s'", command);
    zstr_free (&command);
}

static void
s_self_destroy (self_t **self_p)
{
    self_t *self = *self_p;
    if (!self)
        return;
    if (self->jobs) {
        //  Every accepted run gets an answer, even at shutdown
        zlistx_t *left = zlistx_new ();
        for (job_t *job = (job_t *) zhashx_first (self->jobs); job; job = (job_t *) zhashx_next (self->jobs))
            zlistx_add_end (left, job);
        for (job_t *job = (job_t *) zlistx_first (left); job; job = (job_t *) zlistx_next (left))
            s_fail_job (self, job, "unavailable", "Server is shutting down");
        zlistx_destroy (&left);
    }
    if (self->envs) {
        zlistx_t *left = zlistx_new ();
        for (env_t *env = (env_t *) zhashx_first (self->envs); env; env = (env_t *) zhashx_next (self->envs))
            zlistx_add_end (left, env);
        for (env_t *env = (env_t *) zlistx_first (left); env; env = (env_t *) zlistx_next (left))
            s_env_remove (self, env, true);
        zlistx_destroy (&left);
    }
    zhashx_destroy (&self->jobs);
    zhashx_destroy (&self->envs);
    zhashx_destroy (&self->pools);
    zhashx_destroy (&self->workers);
    zlistx_destroy (&self->lru);
    zsock_destroy (&self->frontend);
    zsock_destroy (&self->backend);
    zsock_destroy (&self->placement);
    free (self);
    *self_p = NULL;
}

static self_t *
s_self_new (zsock_t *pipe, const actor_args_t *args)
{
    self_t *self = (self_t *) zmalloc (sizeof (self_t));
    self->pipe = pipe;
    self->config = args->config;
    self->workers = zhashx_new ();
    zhashx_set_destructor (self->workers, s_worker_destroy);
    self->envs = zhashx_new ();
    self->pools = zhashx_new ();
    zhashx_set_destructor (self->pools, s_pool_destroy);
    self->jobs = zhashx_new ();
    self->lru = zlistx_new ();
    self->frontend = endpoints_bind (args->endpoints, "assignment", ZMQ_ROUTER);
    self->backend = endpoints_bind (args->endpoints, "worker", ZMQ_ROUTER);
    self->placement = endpoints_connect (args->endpoints, "placement", ZMQ_DEALER);
    if (!self->frontend || !self->backend || !self->placement) {
        s_self_destroy (&self);
        return NULL;
    }
    return self;
}

void
assignment_actor (zsock_t *pipe, void *args)
{
    self_t *self = s_self_new (pipe, (const actor_args_t *) args);
    if (!self) {
        actor_failed (pipe, "%s", endpoints_error ());
        return;
    }
    actor_ready (pipe);
    zpoller_t *poller = zpoller_new (pipe, self->frontend, self->backend, self->placement, NULL);
    while (!self->terminated) {
        //  Wake exactly when the next tick is due, so the reaper keeps time
        int64_t wait = self->next_heartbeat - zclock_mono ();
        zsock_t *which = (zsock_t *) zpoller_wait (poller, wait > 0 ? (int) wait : 0);
        if (which == pipe)
            s_self_handle_pipe (self);
        else
        if (which == self->frontend)
            s_handle_frontend (self);
        else
        if (which == self->backend)
            s_handle_backend (self);
        else
        if (which == self->placement)
            s_handle_placement (self);
        else
        if (zpoller_terminated (poller))
            break;
        s_tick (self);
    }
    zpoller_destroy (&poller);
    s_self_destroy (&self);
}

//  --------------------------------------------------------------------------
//  Selftest: assignment between a fake gateway, a fake placement and two
//  fake workers, so every pool rule is checked without sandboxes.

static msg_t *
s_expect (zsock_t *sock, bool routed, const char *command)
{
    zsock_set_rcvtimeo (sock, 3000);
    msg_t *msg = msg_recv (sock, routed);
    assert (msg);
    if (strneq (msg_command (msg), command)) {
        printf ("expected %s, got %s\n", command, msg_command (msg));
        assert (false);
    }
    return msg;
}

static void
s_run (zsock_t *gateway, const char *job_id, const char *key, const char *function_id, int memory_mb)
{
    msg_send (gateway, NULL, "RUN", job_id, key, function_id, "pppppppppppp", (int64_t) memory_mb,
              "{\"code\":\"...\"}", "{}");
}

static void
s_done (zsock_t *worker, msg_t *exec, const char *state)
{
    msg_send (worker, NULL, "DONE", msg_string (exec, 0), msg_string (exec, 1),
              "{\"status\":\"success\",\"output\":1}", state);
}

void
assignment_test (bool verbose)
{
    printf ("assignment: ");
    char *argv [] = { "clowdy", "--max-concurrency", "2", "--queue-depth", "1",
                      "--memory-budget-mb", "512", "--idle-seconds", "1", NULL };
    config_t config;
    char error [256];
    assert (config_parse (&config, 9, argv, error, sizeof error) == 0);
    endpoints_t *endpoints = endpoints_new ();
    endpoints_set (endpoints, "assignment", "inproc://assignment-test");
    endpoints_set (endpoints, "worker", "inproc://assignment-test-worker");
    endpoints_set (endpoints, "placement", "inproc://assignment-test-placement");
    zsock_t *placement = zsock_new_router ("inproc://assignment-test-placement");
    actor_args_t args = { &config, endpoints, 0 };
    zactor_t *assignment = actor_start (assignment_actor, &args, "assignment", NULL);
    zsock_t *gateway = zsock_new_dealer ("inproc://assignment-test");
    zsock_t *worker = zsock_new_dealer ("inproc://assignment-test-worker");

    //  No worker yet: the run is refused as unavailable, not lost
    s_run (gateway, "job000000001", "f1:1:x", "ffffffffff01", 128);
    msg_t *msg = s_expect (gateway, false, "RESULT");
    assert (strstr (msg_string (msg, 1), "unavailable"));
    msg_destroy (&msg);

    msg_send (worker, NULL, "READY", "w1", "{\"capacity_mb\":4096}");
    zclock_sleep (20);

    //  Cold start: placement is asked, the worker gets EXEC for a new env
    s_run (gateway, "job000000002", "f1:1:x", "ffffffffff01", 128);
    msg = s_expect (placement, true, "PLACE");
    assert (streq (msg_string (msg, 0), "job000000002"));
    assert (msg_int (msg, 2) == 128);
    assert (strstr (msg_string (msg, 3), "\"w1\""));
    msg_send (placement, msg_route (msg), "PLACED", "job000000002", "w1");
    msg_destroy (&msg);
    msg_t *exec = s_expect (worker, false, "EXEC");
    char env1 [UTIL_ID_SIZE];
    snprintf (env1, sizeof env1, "%s", msg_string (exec, 0));
    s_done (worker, exec, "warm");
    msg_destroy (&exec);
    msg = s_expect (gateway, false, "RESULT");
    assert (streq (msg_string (msg, 0), "job000000002"));
    msg_destroy (&msg);

    //  Warm start: same pool key reuses env1 with no placement
    s_run (gateway, "job000000003", "f1:1:x", "ffffffffff01", 128);
    exec = s_expect (worker, false, "EXEC");
    assert (streq (msg_string (exec, 0), env1));

    //  While env1 is busy: a second env (cap 2), then one queued, then 429
    s_run (gateway, "job000000004", "f1:1:x", "ffffffffff01", 128);
    msg = s_expect (placement, true, "PLACE");
    msg_send (placement, msg_route (msg), "PLACED", "job000000004", "w1");
    msg_destroy (&msg);
    msg_t *exec2 = s_expect (worker, false, "EXEC");
    assert (strneq (msg_string (exec2, 0), env1));
    s_run (gateway, "job000000005", "f1:1:x", "ffffffffff01", 128);      //  queued
    s_run (gateway, "job000000006", "f1:1:x", "ffffffffff01", 128);      //  rejected
    msg = s_expect (gateway, false, "RESULT");
    assert (streq (msg_string (msg, 0), "job000000006") && strstr (msg_string (msg, 1), "rejected"));
    msg_destroy (&msg);

    //  env1 finishes: the queued job runs on it at once
    s_done (worker, exec, "warm");
    msg_destroy (&exec);
    msg = s_expect (gateway, false, "RESULT");
    assert (streq (msg_string (msg, 0), "job000000003"));
    msg_destroy (&msg);
    exec = s_expect (worker, false, "EXEC");
    assert (streq (msg_string (exec, 0), env1) && streq (msg_string (exec, 1), "job000000005"));

    //  env2's run ends with the env dead (timeout): it is forgotten
    s_done (worker, exec2, "dead");
    msg_destroy (&exec2);
    msg = s_expect (gateway, false, "RESULT");
    msg_destroy (&msg);
    s_done (worker, exec, "warm");
    msg_destroy (&exec);
    msg = s_expect (gateway, false, "RESULT");
    msg_destroy (&msg);
    zstr_send (assignment, "STATS");
    char *stats = zstr_recv (assignment);
    assert (strstr (stats, "\"envs\":1,\"idle\":1"));
    zstr_free (&stats);

    //  A different function never gets env1
    s_run (gateway, "job000000007", "f2:1:x", "ffffffffff02", 128);
    msg = s_expect (placement, true, "PLACE");
    msg_send (placement, msg_route (msg), "PLACED", "job000000007", "w1");
    msg_destroy (&msg);
    exec = s_expect (worker, false, "EXEC");
    assert (strneq (msg_string (exec, 0), env1));
    s_done (worker, exec, "warm");
    msg_destroy (&exec);
    msg = s_expect (gateway, false, "RESULT");
    msg_destroy (&msg);

    //  The worker lost a warm env: the job is run again on a new one
    s_run (gateway, "job000000009", "f2:1:x", "ffffffffff02", 128);
    msg_t *lost = s_expect (worker, false, "EXEC");
    msg_send (worker, NULL, "DONE", msg_string (lost, 0), "job000000009", "{}", "lost");
    msg = s_expect (placement, true, "PLACE");
    assert (streq (msg_string (msg, 0), "job000000009"));
    msg_send (placement, msg_route (msg), "PLACED", "job000000009", "w1");
    msg_destroy (&msg);
    msg_t *again = s_expect (worker, false, "EXEC");
    assert (strneq (msg_string (again, 0), msg_string (lost, 0)));
    s_done (worker, again, "warm");
    msg_destroy (&again);
    msg_destroy (&lost);
    msg = s_expect (gateway, false, "RESULT");
    assert (streq (msg_string (msg, 0), "job000000009"));
    msg_destroy (&msg);

    //  Memory budget 512 with 256 in use: a 300 MB function evicts the least
    //  recently idle environment (env1), and only that one
    s_run (gateway, "job000000008", "f3:1:x", "ffffffffff03", 300);
    msg = s_expect (worker, false, "KILL");
    assert (streq (msg_string (msg, 0), env1));
    msg_destroy (&msg);
    msg = s_expect (placement, true, "PLACE");
    msg_send (placement, msg_route (msg), "PLACED", "job000000008", "w1");
    msg_destroy (&msg);
    exec = s_expect (worker, false, "EXEC");

    //  RETIRE by function: the busy env is killed once its run ends
    msg_send (gateway, NULL, "RETIRE", "function ffffffffff03");
    s_done (worker, exec, "warm");
    msg_t *kill = s_expect (worker, false, "KILL");
    assert (streq (msg_string (kill, 0), msg_string (exec, 0)));
    msg_destroy (&kill);
    msg_destroy (&exec);
    msg = s_expect (gateway, false, "RESULT");
    msg_destroy (&msg);

    //  Idle reaper (1 s here) kills what is left; a silent worker is dropped
    zclock_sleep (2500);
    msg = s_expect (worker, false, "HEARTBEAT");
    msg_destroy (&msg);
    zstr_send (assignment, "STATS");
    stats = zstr_recv (assignment);
    assert (strstr (stats, "\"envs\":0"));
    zstr_free (&stats);
    if (verbose)
        printf ("(waiting for worker expiry) ");
    zclock_sleep (WORKER_EXPIRY_MS + 1500);
    zstr_send (assignment, "STATS");
    stats = zstr_recv (assignment);
    assert (strstr (stats, "\"workers\":0"));
    zstr_free (&stats);

    zsock_destroy (&worker);
    zsock_destroy (&gateway);
    zactor_destroy (&assignment);
    zsock_destroy (&placement);
    endpoints_destroy (&endpoints);
    config_reset (&config);
    printf ("OK\n");
}
