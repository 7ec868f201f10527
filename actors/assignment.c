/*  =========================================================================
    assignment - the warm pool of execution environments

    State, all owned by this actor's thread:
    - registry (broker/registry): the workers, their heartbeats, expiry and
      capacity. The memory budget (budget_mb) is what the worker processes
      offer together, updated as they come and go. A worker it drops is
      "lost": the runs it was sent are answered "lost" at once (they may
      have run, so they are never run again); calls that never reached it
      (queued, being placed, declined by a draining worker) run elsewhere.
      A READY from a worker already known is the same process again: one
      registration, its environments reconciled with the ones it lists.
      LEAVING drains a worker: nothing new is placed on it, its idle
      environments end now and its busy ones after their run.
    - envs: id -> env_t, in the states below. One environment runs one call
      at a time and only ever one pool key (function + version +
      configuration): never shared between functions.
    - pools: pool key -> pool_t with its idle environments (most recently
      used at the tail: warm calls take the tail, so the head ages out
      first) and its queue of waiting runs.
    - lru: every idle environment in the order it became idle: eviction for
      the memory budget and the idle reaper take from the head.
    - jobs: job id -> job_t, every run this actor has accepted and not yet
      answered. Each ends in exactly one RESULT to gateway, sent from here,
      or by its worker when the worker is in gateway's process (DONE's
      `delivered`: assignment then only frees or ends the environment).

    Environment states:

        state     | what it is doing              | leaves on                      | deadline
        ----------+-------------------------------+--------------------------------+---------------------
        PLACING   | PLACE sent (one at a time,    | PLACED -> CREATING (EXEC cold) | PLACE_DEADLINE_MS
                  | the rest wait in to_place)    |                                |
        CREATING  | worker creates it, first run  | DONE warm -> IDLE or next run  | run bound, cold
        BUSY      | running a call, warm          | DONE warm -> IDLE or next run  | run bound, warm
        IDLE      | warm, in its pool and in lru  | a RUN -> BUSY (EXEC)           | idle reaper
        RETIRING  | RETIRE came while it had a    | its run's DONE -> gone (KILL); | as the run it has
                  | run (PLACING/CREATING/BUSY)   | PLACED -> EXEC cold first      |
        any       | DONE dead or lost, GONE, worker lost, a run deadline, a send that cannot be queued,
                  | eviction, RETIRE while IDLE  -> gone
        (a lost worker's idle environments pass through RETIRING while they
        are ended, so that no call is handed one on the way)

    One place, s_env_end, ends an environment whatever the cause: it answers
    its run if it has one, tells the worker KILL when the worker may still
    hold it, releases its memory and gives the freed slot to the next call
    queued for its pool. Deadlines live on jobs (one per job, for the phase
    it is in: queued, placing, running; values in broker/deadlines.h) and
    are checked by the loop's one-second timer; one place, s_job_expired,
    handles them. A late answer (PLACED, DONE) for a job or environment we
    have given up on is dropped and logged.

    Every send is checked; ROUTER sockets here are mandatory and no send
    blocks. A send to a worker whose connection is closed (EHOSTUNREACH)
    drops that worker at once, and the call, which never ran, is dispatched
    again; a send that cannot be queued (a full queue) fails the call as
    "unavailable" (503 with Retry-After upstream). Both are logged.

    Memory and shares. Every environment not gone holds its memory limit of
    --memory-budget-mb. A run that needs a new environment gets one at once
    when the memory is free (evicting idle environments, those of tenants
    over their share first, then the least recently idle) and nobody is
    waiting for memory; otherwise it waits in its pool's queue, and the pool
    joins "starved", the pools waiting for memory in the order they began.
    Whenever memory may have come free (an environment ended or went idle, a
    waiting call gave up), s_serve_starved places the first waiting call of
    the oldest starved pool whose call is entitled (its function and owner
    stay within --function-share / --owner-share, broker/shares), and only
    when no entitled call waits, the others: first come, first served among
    equals, and a call that does not fit holds back those behind it, so
    small calls never starve a big one. An environment whose tenant holds
    more than its share gives its memory back when its run ends, instead of
    taking its own function's next call, while an entitled call of another
    tenant waits. So a lone function may use the whole budget, yet another
    function's call waits at most for one run to end, never for a function's
    whole queue, and is answered 503 only when its queue deadline passes.
    Running calls are never killed to make room.

    Invariants: placing is the one env whose PLACE is out, and to_place
    holds the other PLACING envs whose PLACE waits; memory_mb == sum of memory of every env not gone, and shares
    hold the same sums per function and per owner; idle_mb == sum over lru;
    an env is in its pool's idle list and in lru exactly when it is IDLE; a
    job is in its pool's queue exactly when it has no environment; a pool in
    starved has queued jobs or is skipped and dropped from it on the next look.
    ========================================================================= */

#include <cjson/cJSON.h>
#include <ctype.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include "actors/assignment.h"
#include "broker/actor.h"
#include "broker/cluster.h"
#include "broker/deadlines.h"
#include "broker/endpoints.h"
#include "broker/msg.h"
#include "broker/poller.h"
#include "broker/registry.h"
#include "broker/shares.h"
#include "core/config.h"
#include "core/util.h"

//  A tcp worker's result up to this size is parsed before it is passed on
//  (s_handle_done); a bigger one is only checked to be an object's text
#define DONE_PARSE_MAX  (64 * 1024)

typedef enum { ENV_PLACING, ENV_CREATING, ENV_BUSY, ENV_IDLE, ENV_RETIRING } env_state_t;

static const char *s_state_names [] = { "placing", "creating", "busy", "idle", "retiring" };

typedef struct _job_t job_t;
typedef struct _pool_t pool_t;

typedef struct {
    char id [UTIL_ID_SIZE];         //  Environment id
    registry_worker_t *worker;      //  Where it lives (NULL while placing)
    pool_t *pool;                   //  Its pool
    char *function_id;              //  For RETIRE by function
    char *project_id;               //  For RETIRE by project
    char *owner_id;                 //  The function's user, for its share
    env_state_t state;              //  See the table above
    long memory_mb;                 //  Its memory limit
    int64_t idle_since;             //  Monotonic ms it became idle
    job_t *job;                     //  Run in progress (or being placed), or NULL
    void *idle_handle;              //  Handle in pool->idle while IDLE
    void *lru_handle;               //  Handle in self->lru while IDLE
    void *place_handle;             //  Handle in self->to_place while its PLACE waits its turn
} env_t;

struct _pool_t {
    char *key;                      //  Pool key
    zlistx_t *idle;                 //  env_t *, most recently used at the tail
    zlistx_t *queue;                //  job_t * waiting for an environment
    size_t envs;                    //  Environments of this pool, any state
    void *starved_handle;           //  Handle in self->starved while waiting for memory
};

struct _job_t {
    char id [UTIL_ID_SIZE];         //  Job id = invocation id
    zframe_t *route;                //  Gateway's routing id
    char *pool_key;                 //  Which environments may run it
    char *function;                 //  Function context (JSON text)
    char *input;                    //  Input or event (JSON text)
    char *function_id;              //  From RUN
    char *project_id;               //  From RUN
    char *owner_id;                 //  From RUN
    long memory_mb;                 //  From RUN
    int64_t timeout_ms;             //  The function's timeout, from RUN
    env_t *env;                     //  Environment running (or placing) it, or NULL
    void *queue_handle;             //  Handle in its pool's queue while queued
    bool cold;                      //  Its run creates its environment
    int64_t deadline;               //  Monotonic ms its current phase must end by
};

typedef struct {
    zsock_t *pipe;                  //  Actor command pipe
    zsock_t *frontend;              //  ROUTER for gateway
    zsock_t *backend;               //  ROUTER for workers
    zsock_t *placement;             //  DEALER to placement
    bool tcp;                       //  Workers come over tcp (none in this process says delivered)
    poller_t *poller;               //  Our loop's: told when we send on placement
    registry_t *registry;           //  The workers
    zhashx_t *envs;                 //  id -> env_t
    zhashx_t *pools;                //  key -> pool_t
    zhashx_t *jobs;                 //  id -> job_t
    zlistx_t *lru;                  //  Idle env_t *, least recently idle first
    zlistx_t *starved;              //  pool_t * waiting for memory, longest waiting first
    zlistx_t *to_place;             //  env_t * PLACING whose PLACE waits for the one out to be answered
    env_t *placing;                 //  The env whose PLACE is out, or NULL
    shares_t *shares;               //  Memory held per function and per owner
    long memory_mb;                 //  Memory of all environments
    long idle_mb;                   //  Memory of idle environments (evictable)
    long budget_mb;                 //  Memory the workers offer together (the cap on memory_mb)
    bool serving;                   //  Inside s_serve_starved (it does not nest)
    const config_t *config;         //  Settings
    int64_t next_tick;              //  Monotonic ms of the next timer tick
    bool terminated;                //  Did caller ask us to quit?
} self_t;

static void s_dispatch (self_t *self, job_t *job);
static void s_serve_starved (self_t *self);
static void s_publish (self_t *self, int64_t now);
static void s_place_next (self_t *self);
static void s_handle_backend (self_t *self);

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
    free (job->owner_id);
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

//  A pool's queued calls wait for memory
static void
s_pool_starve (self_t *self, pool_t *pool)
{
    if (!pool->starved_handle)
        pool->starved_handle = zlistx_add_end (self->starved, pool);
}

static void
s_pool_unstarve (self_t *self, pool_t *pool)
{
    if (pool->starved_handle) {
        zlistx_delete (self->starved, pool->starved_handle);
        pool->starved_handle = NULL;
    }
}

//  Drop a pool with nothing in it, so retired versions do not accumulate
static void
s_pool_maybe_drop (self_t *self, pool_t *pool)
{
    if (zlistx_size (pool->queue) == 0)
        s_pool_unstarve (self, pool);
    if (pool->envs == 0 && zlistx_size (pool->queue) == 0)
        zhashx_delete (self->pools, pool->key);
}

//  Answer a job's RESULT and forget the job, wherever it was; result NULL:
//  its worker sent the RESULT to gateway itself (DONE's delivered), so the
//  job is only forgotten
static void
s_finish_job (self_t *self, job_t *job, const char *result)
{
    if (job->env) {
        job->env->job = NULL;
        job->env = NULL;
    }
    if (job->queue_handle) {
        pool_t *pool = (pool_t *) zhashx_lookup (self->pools, job->pool_key);
        zlistx_delete (pool->queue, job->queue_handle);
        job->queue_handle = NULL;
        s_pool_maybe_drop (self, pool);
    }
    if (result && msg_send_result (self->frontend, job->route, job->id, result))
        //  gateway's queue is full or it is gone: its own deadline answers
        //  the client; nothing here can do better
        zsys_warning ("assignment: could not send RESULT for job %s to gateway (%s); dropped",
                      job->id, zmq_strerror (zmq_errno ()));
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

static void
s_env_unidle (self_t *self, env_t *env)
{
    if (env->state == ENV_IDLE && env->lru_handle) {
        zlistx_delete (env->pool->idle, env->idle_handle);
        zlistx_delete (self->lru, env->lru_handle);
        env->idle_handle = env->lru_handle = NULL;
        self->idle_mb -= env->memory_mb;
    }
}

//  Put a job in its pool's queue, at the front when it was already running
static void
s_job_queue (self_t *self, pool_t *pool, job_t *job, bool front)
{
    job->queue_handle = front ? zlistx_add_start (pool->queue, job) : zlistx_add_end (pool->queue, job);
    job->deadline = zclock_mono () + deadlines_queue_ms (job->timeout_ms);
}

static job_t *
s_job_unqueue_first (pool_t *pool)
{
    job_t *job = (job_t *) zlistx_first (pool->queue);
    if (job) {
        zlistx_delete (pool->queue, job->queue_handle);
        job->queue_handle = NULL;
    }
    return job;
}

//  --------------------------------------------------------------------------
//  The one place an environment ends. If it has a run, the run is answered
//  with status and error (a run already answered has been detached). kill:
//  tell its worker to kill it (the worker may still hold it).

static void
s_env_end (self_t *self, env_t *env, const char *status, const char *error, bool kill)
{
    if (env->job)
        s_fail_job (self, env->job, status, error);
    s_env_unidle (self, env);
    if (env->place_handle) {
        zlistx_delete (self->to_place, env->place_handle);
        env->place_handle = NULL;
    }
    bool was_placing = self->placing == env;
    if (was_placing)
        self->placing = NULL;       //  Its late PLACED, if any, is dropped
    if (kill && env->worker
    &&  msg_send_kill (self->backend, registry_worker_route (env->worker), env->id))
        zsys_warning ("assignment: could not send KILL %s to worker %s (%s); it keeps the sandbox "
                      "until it registers again", env->id, registry_worker_id (env->worker),
                      zmq_strerror (zmq_errno ()));
    if (env->worker)
        registry_release (env->worker, env->memory_mb);
    self->memory_mb -= env->memory_mb;
    shares_add (self->shares, env->function_id, env->owner_id, -env->memory_mb);
    pool_t *pool = env->pool;
    pool->envs--;
    zhashx_delete (self->envs, env->id);
    free (env->function_id);
    free (env->project_id);
    free (env->owner_id);
    free (env);
    //  The freed slot and memory go to the calls waiting for them, this
    //  pool's among the others, in s_serve_starved's order
    if (zlistx_size (pool->queue) && (long) pool->envs < self->config->max_concurrency)
        s_pool_starve (self, pool);
    else
        s_pool_maybe_drop (self, pool);
    s_serve_starved (self);
    if (was_placing)
        s_place_next (self);
}

//  --------------------------------------------------------------------------
//  Running jobs

static void
s_exec (self_t *self, env_t *env, job_t *job, bool cold)
{
    s_env_unidle (self, env);
    if (env->state != ENV_RETIRING)
        env->state = cold ? ENV_CREATING : ENV_BUSY;
    env->job = job;
    job->env = env;
    job->cold = cold;
    job->deadline = zclock_mono () + deadlines_run_ms (job->timeout_ms, cold);
    //  Only a new environment needs the function's code and env
    if (msg_send_exec (self->backend, registry_worker_route (env->worker), env->id, job->id, job->pool_key,
                       (int64_t) job->memory_mb, job->timeout_ms, cold ? job->function : "{}", job->input)) {
        int error = zmq_errno ();
        zsys_warning ("assignment: could not send EXEC for job %s to worker %s (%s)", job->id,
                      registry_worker_id (env->worker), zmq_strerror (error));
        if (error == EHOSTUNREACH) {
            //  Its connection is closed: the worker is gone now, not in
            //  WORKER_EXPIRY_MS, and the call, which never ran, goes first
            //  to whatever its environment's end frees
            env->job = NULL;
            job->env = NULL;
            s_job_queue (self, env->pool, job, true);
            registry_remove (self->registry, env->worker, "unreachable: its connection is closed");
        }
        else
            s_env_end (self, env, "unavailable", "The worker's queue is full; retry shortly", !cold);
    }
}

//  Is there memory for a new environment, counting what evicting every
//  idle one would free?
static bool
s_fits (self_t *self, long memory_mb)
{
    return self->memory_mb - self->idle_mb + memory_mb <= self->budget_mb;
}

//  Free memory for a new environment by evicting idle ones: those of
//  tenants over their share first, then the least recently idle. Evicts
//  nothing unless that makes enough room.
static bool
s_make_room (self_t *self, long memory_mb)
{
    if (!s_fits (self, memory_mb))
        return false;
    while (self->memory_mb + memory_mb > self->budget_mb) {
        env_t *victim = NULL;
        for (env_t *env = (env_t *) zlistx_first (self->lru); env && !victim; env = (env_t *) zlistx_next (self->lru))
            if (shares_over (self->shares, env->function_id, env->owner_id))
                victim = env;
        if (!victim)
            victim = (env_t *) zlistx_first (self->lru);
        assert (victim);            //  s_fits counted it
        s_env_end (self, victim, NULL, NULL, true);
    }
    return true;
}

//  May job take a new environment while others wait for memory?
static bool
s_entitled (self_t *self, job_t *job)
{
    return shares_entitled (self->shares, job->function_id, job->owner_id, job->memory_mb);
}

//  Should env, whose run just ended, give its memory back rather than take
//  its own function's next call? When its tenant holds more than its share
//  and a call of another function waits for memory that it would be
//  entitled to once env is gone (an owner over its share gives way only to
//  other owners).
static bool
s_gives_back (self_t *self, env_t *env)
{
    bool function_over = shares_function_mb (self->shares, env->function_id)
                       > shares_function_share_mb (self->shares);
    bool owner_over = shares_owner_over (self->shares, env->owner_id);
    if (!function_over && !owner_over)
        return false;
    bool gives = false;
    shares_add (self->shares, env->function_id, env->owner_id, -env->memory_mb);
    for (pool_t *pool = (pool_t *) zlistx_first (self->starved); pool && !gives;
         pool = (pool_t *) zlistx_next (self->starved)) {
        job_t *job = (job_t *) zlistx_first (pool->queue);
        gives = job && (long) pool->envs < self->config->max_concurrency
             && strneq (job->function_id, env->function_id) && s_entitled (self, job)
             && (function_over || strneq (job->owner_id, env->owner_id));
    }
    shares_add (self->shares, env->function_id, env->owner_id, env->memory_mb);
    return gives;
}

//  Ask placement for a worker, with the registry as it stands now. PLACE
//  carries the job id; the env id travels back with the job. One PLACE is
//  out at a time, the others wait their turn in to_place: each is then
//  chosen from a registry that counts the environments placed before it,
//  so a burst of cold starts spreads by placement's load bound instead of
//  all landing where the first one did. (A choice takes a round trip to
//  placement, far less than the cold start it is for.)
static void
s_send_place (self_t *self, env_t *env, job_t *job)
{
    if (self->placing && self->placing != env) {
        if (!env->place_handle)
            env->place_handle = zlistx_add_end (self->to_place, env);
        return;
    }
    self->placing = env;
    //  Idle environments can be evicted for the new one: placement is told
    //  how much each worker holds idle (it prefers memory that is free), and
    //  on the worker it chooses s_handle_placed evicts what it must
    char *text = registry_json (self->registry);
    cJSON *list = cJSON_Parse (text);
    free (text);
    cJSON *item;
    cJSON_ArrayForEach (item, list) {
        const char *id = cJSON_GetStringValue (cJSON_GetObjectItem (item, "id"));
        //  Idle on its process (memory_mb and capacity_mb are its process's)
        registry_worker_t *worker = id ? registry_lookup (self->registry, id) : NULL;
        long idle = 0;
        for (env_t *other = (env_t *) zlistx_first (self->lru); other; other = (env_t *) zlistx_next (self->lru))
            if (registry_same_process (other->worker, worker))
                idle += other->memory_mb;
        cJSON_AddNumberToObject (item, "idle_mb", (double) idle);
    }
    char *workers = cJSON_PrintUnformatted (list);
    cJSON_Delete (list);
    int rc = msg_send_place (self->placement, NULL, job->id, env->pool->key, (int64_t) env->memory_mb, workers);
    if (self->poller)
        poller_touched (self->poller, self->placement);
    free (workers);
    if (rc) {
        zsys_warning ("assignment: could not send PLACE for job %s (%s)", job->id, zmq_strerror (zmq_errno ()));
        s_env_end (self, env, "unavailable", "Placement is not taking requests now; retry shortly", false);
    }
}

//  The PLACE that was out is answered or given up: the next one's turn
static void
s_place_next (self_t *self)
{
    while (!self->placing && zlistx_size (self->to_place)) {
        env_t *env = (env_t *) zlistx_first (self->to_place);
        zlistx_delete (self->to_place, env->place_handle);
        env->place_handle = NULL;
        if (env->job)
            s_send_place (self, env, env->job);
        else                    //  Its call was answered meanwhile: nothing to place
            s_env_end (self, env, NULL, NULL, false);
    }
}

static void
s_place (self_t *self, pool_t *pool, job_t *job)
{
    env_t *env = (env_t *) zmalloc (sizeof (env_t));
    util_new_id (env->id);
    env->pool = pool;
    env->function_id = strdup (job->function_id);
    env->project_id = strdup (job->project_id);
    env->owner_id = strdup (job->owner_id);
    env->state = ENV_PLACING;
    env->memory_mb = job->memory_mb;
    env->job = job;
    job->env = env;
    job->deadline = zclock_mono () + PLACE_DEADLINE_MS;
    pool->envs++;
    self->memory_mb += env->memory_mb;
    shares_add (self->shares, env->function_id, env->owner_id, env->memory_mb);
    zhashx_insert (self->envs, env->id, env);
    s_send_place (self, env, job);
}

//  Place the waiting calls that memory allows, in the order the design
//  note gives: the oldest starved pool whose first call is entitled, else
//  (none is) the oldest starved pool; stop at the first that does not fit.
//  Called whenever memory may have come free; does not nest (evictions and
//  failed placements inside it end environments).
static void
s_serve_starved (self_t *self)
{
    if (self->serving)
        return;
    self->serving = true;
    while (true) {
        pool_t *choice = NULL, *fallback = NULL;
        zlistx_t *stale = zlistx_new ();
        for (pool_t *pool = (pool_t *) zlistx_first (self->starved); pool && !choice;
             pool = (pool_t *) zlistx_next (self->starved)) {
            job_t *job = (job_t *) zlistx_first (pool->queue);
            if (!job || (long) pool->envs >= self->config->max_concurrency)
                zlistx_add_end (stale, pool);       //  Its own environments serve it, or nothing waits
            else
            if (s_entitled (self, job))
                choice = pool;
            else
            if (!fallback)
                fallback = pool;
        }
        for (pool_t *pool = (pool_t *) zlistx_first (stale); pool; pool = (pool_t *) zlistx_next (stale)) {
            s_pool_unstarve (self, pool);
            s_pool_maybe_drop (self, pool);
        }
        zlistx_destroy (&stale);
        if (!choice)
            choice = fallback;
        if (!choice)
            break;
        job_t *job = (job_t *) zlistx_first (choice->queue);
        if (registry_size (self->registry) > 0 && !s_make_room (self, job->memory_mb))
            break;
        s_job_unqueue_first (choice);
        if (zlistx_size (choice->queue) == 0)
            s_pool_unstarve (self, choice);
        if (registry_size (self->registry) == 0)
            s_fail_job (self, job, "unavailable", "No worker is available to run the function; retry shortly");
        else
            s_place (self, choice, job);
    }
    self->serving = false;
}

//  Route a job to a warm environment, a new one, the queue, or refuse it
static void
s_dispatch (self_t *self, job_t *job)
{
    long largest = registry_largest_mb (self->registry);
    if (largest > 0 && job->memory_mb > largest) {
        char error [256];
        snprintf (error, sizeof error, "The function's memory limit (%ld MB) is larger than any worker's "
                  "memory budget for environments (%ld MB at most)", job->memory_mb, largest);
        s_fail_job (self, job, "error", error);
        return;
    }
    pool_t *pool = s_pool_require (self, job->pool_key);
    env_t *env = (env_t *) zlistx_last (pool->idle);
    if (env) {
        s_exec (self, env, job, false);
        return;
    }
    if ((long) pool->envs < self->config->max_concurrency) {
        //  None, or every one leaving (none offers memory): not worth a wait
        if (largest == 0) {
            s_fail_job (self, job, "unavailable", "No worker is available to run the function; retry shortly");
            s_pool_maybe_drop (self, pool);
            return;
        }
        //  Nobody waits for memory and there is room: take it, share or not
        if (zlistx_size (self->starved) == 0 && s_make_room (self, job->memory_mb)) {
            s_place (self, pool, job);
            return;
        }
        //  Memory is short: wait for it in the queue, served in turn
        if ((long) zlistx_size (pool->queue) < self->config->queue_depth) {
            s_job_queue (self, pool, job, false);
            s_pool_starve (self, pool);
            s_serve_starved (self);
            return;
        }
        s_fail_job (self, job, "unavailable",
                    "The server's memory budget for environments is in use and this function's queue is full; "
                    "retry shortly");
        s_pool_maybe_drop (self, pool);
        return;
    }
    if ((long) zlistx_size (pool->queue) < self->config->queue_depth) {
        s_job_queue (self, pool, job, false);
        return;
    }
    s_fail_job (self, job, "rejected", "Too many concurrent invocations of this function; retry shortly");
    s_pool_maybe_drop (self, pool);
}

//  An environment finished a run and is still warm: the next queued job, or idle
static void
s_env_free (self_t *self, env_t *env)
{
    if (env->state == ENV_RETIRING || registry_worker_draining (env->worker)) {
        //  Retired, or its worker is leaving: its next call goes elsewhere
        s_env_end (self, env, NULL, NULL, true);
        return;
    }
    env->state = ENV_BUSY;
    if (zlistx_size (env->pool->queue) && s_gives_back (self, env)) {
        //  Over its tenant's share while another waits: its memory goes to
        //  them, and its own next call waits its turn
        s_env_end (self, env, NULL, NULL, true);
        return;
    }
    job_t *next = s_job_unqueue_first (env->pool);
    if (next) {
        if (zlistx_size (env->pool->queue) == 0)
            s_pool_unstarve (self, env->pool);
        s_exec (self, env, next, false);
        return;
    }
    s_pool_unstarve (self, env->pool);
    env->state = ENV_IDLE;
    env->idle_since = zclock_mono ();
    env->idle_handle = zlistx_add_end (env->pool->idle, env);
    env->lru_handle = zlistx_add_end (self->lru, env);
    self->idle_mb += env->memory_mb;
    //  Idle memory can be evicted for calls waiting for memory
    s_serve_starved (self);
}

//  A job's deadline passed: the one place that says what that means
static void
s_job_expired (self_t *self, job_t *job)
{
    env_t *env = job->env;
    char error [256];
    if (!env) {
        zsys_warning ("assignment: job %s waited too long in its function's queue", job->id);
        pool_t *pool = (pool_t *) zhashx_lookup (self->pools, job->pool_key);
        if (pool && pool->starved_handle)
            snprintf (error, sizeof error, "The call waited %" PRId64 " s for memory for an environment: the "
                      "server's memory budget (%ld MB) is in use; this function holds %ld MB (its share while "
                      "others wait: %ld MB), its owner %ld MB (share %ld MB); retry shortly",
                      deadlines_queue_ms (job->timeout_ms) / 1000, self->budget_mb,
                      shares_function_mb (self->shares, job->function_id), shares_function_share_mb (self->shares),
                      shares_owner_mb (self->shares, job->owner_id), shares_owner_share_mb (self->shares));
        else
            snprintf (error, sizeof error, "The call waited %" PRId64 " s for a free environment of its "
                      "function; retry shortly", deadlines_queue_ms (job->timeout_ms) / 1000);
        s_fail_job (self, job, "unavailable", error);
    }
    else
    if (!env->worker) {
        zsys_warning ("assignment: placement did not answer for job %s in time", job->id);
        s_env_end (self, env, "unavailable", "Placement did not answer in time; retry shortly", false);
    }
    else {
        zsys_warning ("assignment: worker %s did not answer job %s in time; environment %s dropped",
                      registry_worker_id (env->worker), job->id, env->id);
        snprintf (error, sizeof error, "Worker did not answer in time: no result %" PRId64 " s after the run "
                  "started (the function's timeout is %g s); the environment was dropped",
                  deadlines_run_ms (job->timeout_ms, job->cold) / 1000, job->timeout_ms / 1000.0);
        s_env_end (self, env, "lost", error, true);
    }
}

//  --------------------------------------------------------------------------
//  Messages from gateway

static void
s_handle_run (self_t *self, msg_t *msg)
{
    const char *job_id = msg_run_job_id (msg);
    const char *pool_key = msg_run_pool_key (msg);
    const char *function_id = msg_run_function_id (msg);
    const char *project_id = msg_run_project_id (msg);
    const char *owner_id = msg_run_owner_id (msg);
    int64_t memory_mb = msg_run_memory_mb (msg);
    int64_t timeout_ms = msg_run_timeout_ms (msg);
    //  Passed on to the worker unread: the worker checks and reads them
    const char *function = msg_run_function (msg);
    const char *input = msg_run_input (msg);
    if (!*function_id || !*job_id || strlen (job_id) >= UTIL_ID_SIZE || zhashx_lookup (self->jobs, job_id)) {
        zsys_warning ("assignment: dropped a RUN without a function id, with a bad job id or a duplicate one");
        return;
    }
    job_t *job = (job_t *) zmalloc (sizeof (job_t));
    snprintf (job->id, sizeof job->id, "%s", job_id);
    job->route = zframe_dup (msg_route (msg));
    job->pool_key = strdup (pool_key);
    job->function_id = strdup (function_id);
    job->project_id = strdup (project_id);
    job->owner_id = strdup (owner_id);
    //  The one place a call's limits are checked: the budget, the deadlines
    //  and the worker's sandbox (EXEC) all use these values
    job->memory_mb = memory_mb >= MIN_MEMORY_MB && memory_mb <= MAX_MEMORY_MB ? (long) memory_mb : DEFAULT_MEMORY_MB;
    job->function = strdup (function);
    job->input = strdup (input);
    //  Every deadline of the run is measured from the function's timeout
    job->timeout_ms = timeout_ms > 0 && timeout_ms <= MAX_TIMEOUT_MS ? timeout_ms : DEFAULT_TIMEOUT_MS;
    zhashx_insert (self->jobs, job->id, job);
    s_dispatch (self, job);
}

static void
s_handle_retire (self_t *self, msg_t *msg)
{
    const char *what = msg_retire_what (msg);
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
                env->state = ENV_RETIRING;
        }
    //  Out of the idle lists first, so that no eviction or call made while
    //  they end picks one of them
    for (env_t *env = (env_t *) zlistx_first (doomed); env; env = (env_t *) zlistx_next (doomed)) {
        s_env_unidle (self, env);
        env->state = ENV_RETIRING;
    }
    for (env_t *env = (env_t *) zlistx_first (doomed); env; env = (env_t *) zlistx_next (doomed))
        s_env_end (self, env, NULL, NULL, true);
    zlistx_destroy (&doomed);
}

static void
s_handle_frontend (self_t *self)
{
    msg_t *msg = msg_recv (self->frontend, true);
    if (!msg)
        return;
    if (msg_id (msg) == MSG_ID_RUN) {
        //  What the workers sent first: an in-process worker sends a run's
        //  RESULT to gateway itself, after its DONE, so the DONE that frees
        //  the environment is readable here (inproc) before any RUN that
        //  gateway's answer led to; reading it first keeps a client's next
        //  call on the environment its last one left warm
        if (zsock_events (self->backend) & ZMQ_POLLIN)
            s_handle_backend (self);
        s_handle_run (self, msg);
    }
    else
    if (msg_id (msg) == MSG_ID_RETIRE)
        s_handle_retire (self, msg);
    else
        zsys_warning ("assignment: unexpected '%s' from gateway", msg_command (msg));
    msg_destroy (&msg);
}

//  --------------------------------------------------------------------------
//  Messages from placement

static void s_handle_placed_for (self_t *self, msg_t *msg, env_t *env, job_t *job);

static void
s_handle_placed (self_t *self, msg_t *msg)
{
    job_t *job = (job_t *) zhashx_lookup (self->jobs, msg_placed_job_id (msg));
    env_t *env = job ? job->env : NULL;
    if (env && !env->worker && env == self->placing) {
        self->placing = NULL;
        s_handle_placed_for (self, msg, env, job);
        s_place_next (self);
    }
    else
        zsys_warning ("assignment: dropped a late PLACED for job %s (no longer placing)", msg_placed_job_id (msg));
}

//  PLACED for env, whose PLACE was the one out
static void
s_handle_placed_for (self_t *self, msg_t *msg, env_t *env, job_t *job)
{
    const char *job_id = msg_placed_job_id (msg);
    const char *worker_id = msg_placed_worker_id (msg);
    registry_worker_t *worker = registry_lookup (self->registry, worker_id);
    if (!*worker_id) {
        s_env_end (self, env, "unavailable", "No worker can run the function now; retry shortly", false);
        return;
    }
    if (worker && registry_worker_draining (worker)) {
        //  It began to leave (or is being dropped) since PLACE went out:
        //  placement is asked again, and leaves it out now
        zsys_info ("assignment: job %s was placed on %s, leaving since; placing it again", job_id, worker_id);
        s_send_place (self, env, job);
        return;
    }
    if (!worker && registry_size (self->registry) == 0) {
        s_env_end (self, env, "unavailable", "No worker is available to run the function; retry shortly", false);
        return;
    }
    if (!worker) {
        //  The chosen worker was lost (or left) since PLACE went out: the
        //  call never ran, so placement is asked again with the workers as
        //  they are now (the job's placement deadline still bounds it)
        zsys_info ("assignment: job %s was placed on %s, gone since; placing it again", job_id, worker_id);
        s_send_place (self, env, job);
        return;
    }
    //  Placement may have chosen a worker whose process must evict idle
    //  environments for the new one: evict them, least recently used
    //  first, until it fits
    long reclaimable = 0;
    for (env_t *idle = (env_t *) zlistx_first (self->lru); idle; idle = (env_t *) zlistx_next (self->lru))
        if (registry_same_process (idle->worker, worker))
            reclaimable += idle->memory_mb;
    if (!registry_fits (worker, env->memory_mb)
    &&  registry_worker_shared_mb (worker) - reclaimable + env->memory_mb <= registry_worker_capacity_mb (worker)) {
        env_t *victim;
        while (!registry_fits (worker, env->memory_mb)) {
            for (victim = (env_t *) zlistx_first (self->lru); victim && !registry_same_process (victim->worker, worker);
                 victim = (env_t *) zlistx_next (self->lru))
                ;
            if (!victim)
                break;
            s_env_end (self, victim, NULL, NULL, true);
        }
    }
    //  Placement chose from the registry as it was when PLACE left; another
    //  environment may have taken that room since. Ask again with the
    //  registry as it is now (the job's placement deadline still bounds it).
    if (!registry_fits (worker, env->memory_mb)) {
        s_send_place (self, env, job);
        return;
    }
    env->worker = worker;
    registry_reserve (worker, env->memory_mb);
    s_exec (self, env, job, true);
}

static void
s_handle_placement (self_t *self)
{
    msg_t *msg = msg_recv (self->placement, false);
    if (!msg)
        return;
    if (msg_id (msg) == MSG_ID_PLACED)
        s_handle_placed (self, msg);
    else
        zsys_warning ("assignment: unexpected '%s' from placement", msg_command (msg));
    msg_destroy (&msg);
}

//  --------------------------------------------------------------------------
//  Messages from workers

//  The cluster's budget is what the workers offer together
static void
s_budget_update (self_t *self)
{
    self->budget_mb = registry_capacity_mb (self->registry);
    shares_set_budget (self->shares, self->budget_mb, self->config->function_share, self->config->owner_share);
}

//  The registry dropped a worker (expired, unreachable, or it left after
//  draining): every environment on it is gone. A run it was sent (EXEC
//  went out) is answered "lost": it may have run there, in part or in
//  full, so it is never run again. Calls that never reached it (queued
//  behind --max-concurrency, or being placed) are not touched: the slots
//  its environments free go to them, on the other workers (s_env_end).
static void
s_worker_lost (registry_worker_t *worker, const char *why, void *arg)
{
    self_t *self = (self_t *) arg;
    s_budget_update (self);
    zlistx_t *doomed = zlistx_new ();
    for (env_t *env = (env_t *) zhashx_first (self->envs); env; env = (env_t *) zhashx_next (self->envs))
        if (env->worker == worker)
            zlistx_add_end (doomed, env);
    //  Out of the idle lists first, so that a call handed a slot freed below
    //  never picks another of this worker's environments
    for (env_t *env = (env_t *) zlistx_first (doomed); env; env = (env_t *) zlistx_next (doomed))
        if (env->state == ENV_IDLE) {
            s_env_unidle (self, env);
            env->state = ENV_RETIRING;
        }
    char error [256];
    snprintf (error, sizeof error, "The worker running this invocation stopped answering (%s): the call may have run, "
              "in part or in full; its outcome is unknown", why);
    for (env_t *env = (env_t *) zlistx_first (doomed); env; env = (env_t *) zlistx_next (doomed))
        s_env_end (self, env, "lost", error, false);
    zlistx_destroy (&doomed);
}

//  Can gateway read what a worker in another process answered in its DONE?
//  It must be a result, there being no other way for it to come (only a
//  worker in gateway's own process, over inproc, says `delivered`). This
//  one thread schedules the whole cluster, so only a small result is
//  parsed here (gateway parses it anyway); a big one must at least be an
//  object's text whole, and gateway's deadline answers one that is not
//  JSON inside
static bool
s_done_readable (msg_t *msg)
{
    if (msg_done_delivered (msg))
        return false;
    const char *result = msg_done_result (msg);
    size_t size = strlen (result);
    if (size <= DONE_PARSE_MAX) {
        cJSON *parsed = cJSON_ParseWithOpts (result, NULL, true);
        bool readable = cJSON_IsObject (parsed);
        cJSON_Delete (parsed);
        return readable;
    }
    while (size > 0 && isspace ((unsigned char) result [size - 1]))
        size--;
    while (isspace ((unsigned char) *result)) {
        result++;
        size--;
    }
    return *result == '{' && size > 0 && result [size - 1] == '}';
}

static void
s_handle_done (self_t *self, msg_t *msg, env_t *env)
{
    const char *env_id = msg_done_env_id (msg);
    const char *job_id = msg_done_job_id (msg);
    const char *result = msg_done_result (msg);         //  Passed on to gateway (read over tcp)
    const char *env_state = msg_done_env_state (msg);
    job_t *job = (job_t *) zhashx_lookup (self->jobs, job_id);
    if (!env || !job || env->job != job) {
        //  We gave up on this run (its deadline, its worker expired) or it
        //  was never ours: the answer is too late to use
        zsys_warning ("assignment: dropped a late or stray DONE for job %s on environment %s", job_id, env_id);
        if (env && !env->job && env->state == ENV_IDLE && strneq (env_state, "warm"))
            s_env_end (self, env, NULL, NULL, false);
        return;
    }
    if (streq (env_state, "lost")) {
        //  The worker no longer had that environment: the job never ran, so
        //  it starts over on a new one, ahead of the calls queued after it
        job->env = NULL;
        env->job = NULL;
        s_job_queue (self, env->pool, job, true);
        s_env_end (self, env, NULL, NULL, false);
        return;
    }
    if (self->tcp && !s_done_readable (msg)) {
        zsys_warning ("assignment: worker %s sent an unreadable DONE for job %s; its environment ends",
                      registry_worker_id (env->worker), job_id);
        s_env_end (self, env, "lost", "The worker running this invocation sent an answer that cannot be "
                   "read: the call may have run, in part or in full; its outcome is unknown", true);
        return;
    }
    s_finish_job (self, job, msg_done_delivered (msg) ? NULL : result);
    if (streq (env_state, "warm"))
        s_env_free (self, env);
    else
        //  The environment died with the run (timeout, out of memory, crash)
        s_env_end (self, env, NULL, NULL, false);
}

//  Is text one of the strings in list (a JSON array)?
static bool
s_listed (cJSON *list, const char *text)
{
    cJSON *item;
    cJSON_ArrayForEach (item, list)
        if (cJSON_IsString (item) && streq (item->valuestring, text))
            return true;
    return false;
}

//  READY: a worker joins, or the same worker again (after a partition, or
//  its READYs repeated while it heard nothing). Either way one registration,
//  and its environments are reconciled with what it says it holds: ours
//  that it no longer has end (a run on one is lost: it may have run), its
//  own that we do not know are killed.
static void
s_handle_ready (self_t *self, msg_t *msg, int64_t now)
{
    bool rejoined = false;
    registry_worker_t *worker = registry_ready (self->registry, msg_ready_worker_id (msg), msg_route (msg),
                                                msg_ready_info (msg), now, &rejoined);
    if (!worker)
        return;
    s_budget_update (self);
    cJSON *held = cJSON_GetObjectItem (msg_ready_info (msg), "envs");
    cJSON *running = cJSON_GetObjectItem (msg_ready_info (msg), "jobs");
    if (rejoined) {
        zlistx_t *gone = zlistx_new ();
        for (env_t *env = (env_t *) zhashx_first (self->envs); env; env = (env_t *) zhashx_next (self->envs))
            if (env->worker == worker && !s_listed (held, env->id)
            &&  !(env->job && s_listed (running, env->job->id)))
                zlistx_add_end (gone, env);
        for (env_t *env = (env_t *) zlistx_first (gone); env; env = (env_t *) zlistx_next (gone))
            if (env->state == ENV_IDLE) {
                s_env_unidle (self, env);
                env->state = ENV_RETIRING;
            }
        if (zlistx_size (gone))
            zsys_info ("assignment: worker %s registered again without %zu of its environments; they are "
                       "dropped", registry_worker_id (worker), zlistx_size (gone));
        for (env_t *env = (env_t *) zlistx_first (gone); env; env = (env_t *) zlistx_next (gone))
            s_env_end (self, env, "lost", "The worker running this invocation lost track of it (it was cut off "
                       "and registered again): the call may have run, in part or in full; its outcome is unknown",
                       false);
        zlistx_destroy (&gone);
    }
    cJSON *item;
    cJSON_ArrayForEach (item, held) {
        if (!cJSON_IsString (item))
            continue;
        env_t *env = (env_t *) zhashx_lookup (self->envs, item->valuestring);
        if ((!env || env->worker != worker)
        &&  msg_send_kill (self->backend, registry_worker_route (worker), item->valuestring))
            zsys_warning ("assignment: could not send KILL %s to worker %s", item->valuestring,
                          registry_worker_id (worker));
    }
    s_serve_starved (self);
}

//  LEAVING: a worker stops. Draining: nothing new goes to it, its idle
//  environments end now and each busy one after its run (s_env_free), so
//  calls waiting for this function go to the other workers. Left: its
//  runs are over and it exits.
static void
s_handle_leaving (self_t *self, msg_t *msg, int64_t now)
{
    registry_worker_t *worker = registry_heartbeat (self->registry, msg_leaving_worker_id (msg), msg_route (msg),
                                                    now);
    if (!worker)
        return;
    if (streq (msg_leaving_phase (msg), "left")) {
        //  It said "left" once its runs were answered (one cut off by its
        //  drain bound is answered by the worker itself), and after
        //  "draining" it starts nothing: a run still out on it is an EXEC
        //  it never started (sent before we read "draining", and not read
        //  before it left). It goes first to what its environment's end
        //  frees, on another worker.
        for (env_t *env = (env_t *) zhashx_first (self->envs); env; env = (env_t *) zhashx_next (self->envs))
            if (env->worker == worker && env->job) {
                zsys_info ("assignment: job %s never started on %s, which left; running it elsewhere",
                           env->job->id, registry_worker_id (worker));
                s_job_queue (self, env->pool, env->job, true);
                env->job->env = NULL;
                env->job = NULL;
            }
        registry_remove (self->registry, worker, "left");
        return;
    }
    registry_drain (worker);
    //  Its memory is no longer on offer: calls wait for the others' memory
    //  rather than be placed against what it held
    s_budget_update (self);
    zlistx_t *idle = zlistx_new ();
    for (env_t *env = (env_t *) zlistx_first (self->lru); env; env = (env_t *) zlistx_next (self->lru))
        if (env->worker == worker)
            zlistx_add_end (idle, env);
    for (env_t *env = (env_t *) zlistx_first (idle); env; env = (env_t *) zlistx_next (idle)) {
        s_env_unidle (self, env);
        env->state = ENV_RETIRING;
    }
    for (env_t *env = (env_t *) zlistx_first (idle); env; env = (env_t *) zlistx_next (idle))
        s_env_end (self, env, NULL, NULL, true);
    zlistx_destroy (&idle);
    //  Pools whose environments were all there: their queues go elsewhere now
    s_serve_starved (self);
}

static void
s_handle_backend_one (self_t *self)
{
    msg_t *msg = msg_recv (self->backend, true);
    if (!msg)
        return;
    msg_id_t id = msg_id (msg);
    const char *command = msg_command (msg);
    zframe_t *route = msg_route (msg);
    int64_t now = zclock_mono ();
    if (id == MSG_ID_READY)
        s_handle_ready (self, msg, now);
    else
    if (id == MSG_ID_HEARTBEAT) {
        registry_worker_t *worker = registry_heartbeat (self->registry, msg_heartbeat_worker_id (msg), route, now);
        //  What it offers may have changed (its process's budget)
        if (worker && registry_offer (worker, msg_heartbeat_load (msg)))
            s_budget_update (self);
    }
    else
    if (id == MSG_ID_LEAVING)
        s_handle_leaving (self, msg, now);
    else
    if (id == MSG_ID_DONE || id == MSG_ID_GONE) {
        //  Each names one of the worker's environments; one from another
        //  connection than the environment's worker is stale
        const char *env_id = id == MSG_ID_DONE ? msg_done_env_id (msg) : msg_gone_env_id (msg);
        env_t *env = (env_t *) zhashx_lookup (self->envs, env_id);
        if (env && env->worker && !registry_touch (self->registry, env->worker, route, now)) {
            zsys_warning ("assignment: dropped %s for environment %s from a connection not its worker's",
                          command, env_id);
            env = NULL;
        }
        if (id == MSG_ID_DONE)
            s_handle_done (self, msg, env);
        else
        if (env && env->state == ENV_IDLE)
            s_env_end (self, env, NULL, NULL, false);
    }
    else
        zsys_warning ("assignment: unexpected '%s' from a worker", command);
    msg_destroy (&msg);
}

//  Everything the workers sent, before the timer looks for silent ones: a
//  busy loop must not expire a worker whose heartbeats wait here unread
static void
s_handle_backend (self_t *self)
{
    for (int count = 0; count < 1000; count++) {
        s_handle_backend_one (self);
        if (!(zsock_events (self->backend) & ZMQ_POLLIN))
            break;
    }
}

//  --------------------------------------------------------------------------
//  The timer: heartbeats, dead workers, deadlines, idle reaper

static void
s_tick (self_t *self)
{
    int64_t now = zclock_mono ();
    if (now < self->next_tick)
        return;
    self->next_tick = now + self->config->heartbeat_ms;
    //  Heartbeats that wait unread are signs of life: read them first
    if (zsock_events (self->backend) & ZMQ_POLLIN)
        s_handle_backend (self);
    now = zclock_mono ();
    //  By id: dropping one may drop another (its lost handler's sends fail)
    zlistx_t *unreachable = zlistx_new ();
    zlistx_set_destructor (unreachable, (zlistx_destructor_fn *) zstr_free);
    for (registry_worker_t *worker = registry_first (self->registry); worker;
         worker = registry_next (self->registry))
        if (msg_send_heartbeat (self->backend, registry_worker_route (worker), "assignment", "{}")
        &&  zmq_errno () == EHOSTUNREACH)
            zlistx_add_end (unreachable, strdup (registry_worker_id (worker)));
        //  A full queue is no sign of death: its silence, if any, will tell
    for (char *id = (char *) zlistx_first (unreachable); id; id = (char *) zlistx_next (unreachable)) {
        registry_worker_t *worker = registry_lookup (self->registry, id);
        if (worker)
            registry_remove (self->registry, worker, "unreachable: its connection is closed");
    }
    zlistx_destroy (&unreachable);
    //  After the closed connections: a worker of the same process as one
    //  just dropped goes with it if it is silent too (registry_purge)
    registry_purge (self->registry, now);

    zlistx_t *expired = zlistx_new ();
    for (job_t *job = (job_t *) zhashx_first (self->jobs); job; job = (job_t *) zhashx_next (self->jobs))
        if (job->deadline && now > job->deadline)
            zlistx_add_end (expired, job);
    //  Ending one job's environment may answer another's: look each up again
    for (job_t *job = (job_t *) zlistx_first (expired); job; job = (job_t *) zlistx_next (expired))
        if (zhashx_lookup (self->jobs, job->id) == job && now > job->deadline)
            s_job_expired (self, job);
    zlistx_destroy (&expired);
    //  No queued call is left without a way out: a pool with calls waiting
    //  and room for an environment waits for memory in turn (s_env_end
    //  starves it whenever one of its environments ends; this catches any
    //  path that did not), and is served below
    for (pool_t *pool = (pool_t *) zhashx_first (self->pools); pool; pool = (pool_t *) zhashx_next (self->pools))
        if (zlistx_size (pool->queue) && !zlistx_size (pool->idle)
        &&  (long) pool->envs < self->config->max_concurrency && !pool->starved_handle) {
            zsys_warning ("assignment: pool %s had calls waiting with room for an environment; serving them",
                          pool->key);
            s_pool_starve (self, pool);
        }
    //  A call that gave up may have held back smaller ones behind it
    s_serve_starved (self);
    s_publish (self, now);

    int64_t idle_ms = self->config->idle_seconds * 1000;
    env_t *oldest;
    while ((oldest = (env_t *) zlistx_first (self->lru)) && now - oldest->idle_since > idle_ms)
        s_env_end (self, oldest, NULL, NULL, true);
}

//  The operator's view of the workers (GET /api/cluster), published for
//  the control-plane threads (broker/cluster.h)
static void
s_publish (self_t *self, int64_t now)
{
    cJSON *view = cJSON_CreateObject ();
    cJSON *workers = cJSON_AddArrayToObject (view, "workers");
    double cores = 0;
    for (registry_worker_t *worker = registry_first (self->registry); worker;
         worker = registry_next (self->registry)) {
        size_t running = 0;
        for (env_t *env = (env_t *) zhashx_first (self->envs); env; env = (env_t *) zhashx_next (self->envs))
            if (env->worker == worker && env->job)
                running++;
        cJSON *item = cJSON_CreateObject ();
        cJSON_AddStringToObject (item, "id", registry_worker_id (worker));
        cJSON_AddStringToObject (item, "host", registry_worker_host (worker));
        cJSON_AddStringToObject (item, "state", registry_worker_draining (worker) ? "draining" : "ready");
        cJSON_AddNumberToObject (item, "memory_mb", (double) registry_worker_capacity_mb (worker));
        cJSON_AddNumberToObject (item, "cores", registry_worker_cores (worker));
        cJSON_AddNumberToObject (item, "memory_used_mb", (double) registry_worker_memory_mb (worker));
        cJSON_AddNumberToObject (item, "running", (double) running);
        cJSON_AddNumberToObject (item, "environments", (double) registry_worker_envs (worker));
        cJSON_AddNumberToObject (item, "last_heartbeat_ms", (double) (now - registry_worker_last_seen (worker)));
        cJSON_AddItemToArray (workers, item);
        cores += registry_worker_cores (worker);
    }
    cJSON *lost = registry_lost_json (self->registry, now);
    while (cJSON_GetArraySize (lost))
        cJSON_AddItemToArray (workers, cJSON_DetachItemFromArray (lost, 0));
    cJSON_Delete (lost);
    cJSON_AddNumberToObject (view, "memory_mb", (double) self->budget_mb);
    cJSON_AddNumberToObject (view, "cores", cores);
    char *text = cJSON_PrintUnformatted (view);
    cluster_publish (text);
    free (text);
    cJSON_Delete (view);
}

static char *
s_stats (self_t *self)
{
    size_t counts [ENV_RETIRING + 1] = { 0 }, queued = 0;
    for (env_t *env = (env_t *) zhashx_first (self->envs); env; env = (env_t *) zhashx_next (self->envs))
        counts [env->state]++;
    for (pool_t *pool = (pool_t *) zhashx_first (self->pools); pool; pool = (pool_t *) zhashx_next (self->pools))
        queued += zlistx_size (pool->queue);
    cJSON *stats = cJSON_CreateObject ();
    cJSON_AddNumberToObject (stats, "envs", (double) zhashx_size (self->envs));
    for (int state = ENV_PLACING; state <= ENV_RETIRING; state++)
        cJSON_AddNumberToObject (stats, s_state_names [state], (double) counts [state]);
    cJSON_AddNumberToObject (stats, "queued", (double) queued);
    cJSON_AddNumberToObject (stats, "workers", (double) registry_size (self->registry));
    size_t draining = 0;
    for (registry_worker_t *worker = registry_first (self->registry); worker; worker = registry_next (self->registry))
        draining += registry_worker_draining (worker);
    cJSON_AddNumberToObject (stats, "draining", (double) draining);
    cJSON_AddNumberToObject (stats, "budget_mb", (double) self->budget_mb);
    cJSON_AddNumberToObject (stats, "memory_mb", (double) self->memory_mb);
    cJSON_AddNumberToObject (stats, "starved", (double) zlistx_size (self->starved));
    cJSON_AddNumberToObject (stats, "jobs", (double) zhashx_size (self->jobs));
    char *text = cJSON_PrintUnformatted (stats);
    cJSON_Delete (stats);
    return text;
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
        free (stats);
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
        //  A job whose EXEC went out may have run (the workers stopped
        //  before us): lost, and so recorded; the others never ran
        for (job_t *job = (job_t *) zlistx_first (left); job; job = (job_t *) zlistx_next (left))
            if (job->env && job->env->state != ENV_PLACING)
                s_fail_job (self, job, "lost", "The server stopped while the call was running: it may have "
                            "run, in part or in full; its outcome is unknown");
            else
                s_fail_job (self, job, "unavailable", "Server is shutting down");
        zlistx_destroy (&left);
    }
    //  No PLACE goes out now: ending the environment whose PLACE is out
    //  would send the next one's, whose job was answered above
    for (env_t *env = (env_t *) zlistx_first (self->to_place); env; env = (env_t *) zlistx_next (self->to_place))
        env->place_handle = NULL;
    zlistx_purge (self->to_place);
    self->placing = NULL;
    if (self->envs) {
        zlistx_t *left = zlistx_new ();
        for (env_t *env = (env_t *) zhashx_first (self->envs); env; env = (env_t *) zhashx_next (self->envs))
            zlistx_add_end (left, env);
        for (env_t *env = (env_t *) zlistx_first (left); env; env = (env_t *) zlistx_next (left))
            s_env_end (self, env, NULL, NULL, true);
        zlistx_destroy (&left);
    }
    cluster_reset ();
    zhashx_destroy (&self->jobs);
    zhashx_destroy (&self->envs);
    zhashx_destroy (&self->pools);
    registry_destroy (&self->registry);
    zlistx_destroy (&self->lru);
    zlistx_destroy (&self->starved);
    zlistx_destroy (&self->to_place);
    shares_destroy (&self->shares);
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
    self->tcp = endpoints_is_tcp (args->endpoints, "worker");
    self->registry = registry_new (self->config->memory_budget_mb,
                                   deadlines_expiry_ms (self->config->worker_expiry_ms, self->tcp));
    registry_set_lost_handler (self->registry, s_worker_lost, self);
    registry_set_heartbeat (self->registry, self->config->heartbeat_ms);
    self->envs = zhashx_new ();
    self->pools = zhashx_new ();
    zhashx_set_destructor (self->pools, s_pool_destroy);
    self->jobs = zhashx_new ();
    self->lru = zlistx_new ();
    self->starved = zlistx_new ();
    self->to_place = zlistx_new ();
    self->shares = shares_new (self->config->memory_budget_mb, self->config->function_share,
                               self->config->owner_share);
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
    poller_t *poller = poller_new (pipe, self->frontend, self->backend, self->placement, NULL);
    //  Read only when handed out (placement: sent on only in s_send_place,
    //  which says so): asked again only then
    poller_quiet (poller, pipe);
    poller_quiet (poller, self->placement);
    self->poller = poller;
    while (!self->terminated) {
        //  Wake exactly when the next tick is due, so deadlines keep time
        int64_t wait = self->next_tick - zclock_mono ();
        zsock_t *which = poller_wait (poller, wait > 0 ? (int) wait : 0);
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
        if (poller_terminated (poller))
            break;
        s_tick (self);
    }
    self->poller = NULL;
    poller_destroy (&poller);
    s_self_destroy (&self);
}

//  --------------------------------------------------------------------------
//  Selftest: assignment between a fake gateway, a fake placement and two
//  fake workers, so every pool rule is checked without sandboxes.

//  An assignment actor started with argv (NULL-terminated) between a fake
//  gateway and a fake placement, on endpoints named after name; workers
//  connect to worker_endpoint (NULL: an inproc one named after name)
typedef struct {
    config_t config;
    endpoints_t *endpoints;
    actor_args_t args;
    zactor_t *assignment;
    zsock_t *gateway;               //  DEALER, as gateway's
    zsock_t *placement;             //  ROUTER, as placement's
} s_rig_t;

static void
s_rig_start (s_rig_t *rig, const char *name, const char *worker_endpoint, char *argv [])
{
    int argc = 0;
    while (argv [argc])
        argc++;
    char error [256];
    assert (config_parse (&rig->config, argc, argv, error, sizeof error) == 0);
    rig->endpoints = endpoints_new ();
    char endpoint [128];
    snprintf (endpoint, sizeof endpoint, "inproc://assignment-%s", name);
    endpoints_set (rig->endpoints, "assignment", endpoint);
    snprintf (endpoint, sizeof endpoint, "inproc://assignment-%s-worker", name);
    endpoints_set (rig->endpoints, "worker", worker_endpoint ? worker_endpoint : endpoint);
    snprintf (endpoint, sizeof endpoint, "inproc://assignment-%s-placement", name);
    endpoints_set (rig->endpoints, "placement", endpoint);
    rig->placement = zsock_new_router (endpoint);
    rig->args = (actor_args_t) { &rig->config, rig->endpoints, 0 };
    rig->assignment = actor_start (assignment_actor, &rig->args, "assignment", NULL);
    snprintf (endpoint, sizeof endpoint, "inproc://assignment-%s", name);
    rig->gateway = zsock_new_dealer (endpoint);
}

static void
s_rig_stop (s_rig_t *rig)
{
    zsock_destroy (&rig->gateway);
    zactor_destroy (&rig->assignment);
    zsock_destroy (&rig->placement);
    endpoints_destroy (&rig->endpoints);
    config_reset (&rig->config);
}

//  The next message on sock, which must be command (heartbeats skipped)
static msg_t *
s_expect (zsock_t *sock, bool routed, msg_id_t id)
{
    zsock_set_rcvtimeo (sock, 3000);
    while (true) {
        msg_t *msg = msg_recv (sock, routed);
        assert (msg);
        if (msg_id (msg) == MSG_ID_HEARTBEAT && id != MSG_ID_HEARTBEAT) {
            msg_destroy (&msg);
            continue;
        }
        if (msg_id (msg) != id) {
            printf ("expected message %d, got %s\n", (int) id, msg_command (msg));
            assert (false);
        }
        return msg;
    }
}

//  One number from the actor's STATS
static long
s_stat (zactor_t *assignment, const char *name)
{
    zstr_send (assignment, "STATS");
    char *text = zstr_recv (assignment);
    cJSON *stats = cJSON_Parse (text);
    double value = cJSON_GetNumberValue (cJSON_GetObjectItem (stats, name));
    assert (!isnan (value));
    cJSON_Delete (stats);
    zstr_free (&text);
    return (long) value;
}

//  Wait until the actor's STATS show value for name (it handles the
//  messages of each socket in turn, so a count may lag a message sent on
//  another socket)
static void
s_wait_stat (zactor_t *assignment, const char *name, long value)
{
    int64_t give_up = zclock_mono () + 10000;
    while (s_stat (assignment, name) != value) {
        assert (zclock_mono () < give_up);
        zclock_sleep (10);
    }
}

//  Wait for gateway's next RESULT, the worker heartbeating meanwhile so it
//  stays alive; checks the result's status and that error mentions a phrase
static void
s_expect_result (zsock_t *gateway, zsock_t *worker, const char *worker_id, const char *job_id, const char *status,
                 const char *phrase)
{
    zpoller_t *poller = zpoller_new (gateway, NULL);
    int64_t give_up = zclock_mono () + 60000;       //  Far beyond any deadline here
    while (!zpoller_wait (poller, 500)) {
        assert (zclock_mono () < give_up);
        if (worker)
            assert (msg_send_heartbeat (worker, NULL, worker_id, "{}") == 0);
    }
    zpoller_destroy (&poller);
    msg_t *msg = s_expect (gateway, false, MSG_ID_RESULT);
    cJSON *result = msg_result_result (msg);
    if (strneq (msg_result_job_id (msg), job_id)
    ||  strneq (cJSON_GetStringValue (cJSON_GetObjectItem (result, "status")), status)
    ||  !strstr (cJSON_GetStringValue (cJSON_GetObjectItem (result, "error")), phrase)) {
        printf ("expected %s %s '%s', got %s %s\n", job_id, status, phrase, msg_result_job_id (msg),
                msg_result_result_text (msg));
        assert (false);
    }
    msg_destroy (&msg);
}

static void
s_run (zsock_t *gateway, const char *job_id, const char *key, const char *function_id, int memory_mb)
{
    assert (msg_send_run (gateway, NULL, job_id, key, function_id, "pppppppppppp", "alice", (int64_t) memory_mb, 1000,
                          "{\"code\":\"...\",\"timeout_seconds\":1}", "{}") == 0);
}

static void
s_done (zsock_t *worker, msg_t *exec, const char *state)
{
    assert (msg_send_done (worker, NULL, msg_exec_env_id (exec), msg_exec_job_id (exec),
                           "{\"status\":\"success\",\"output\":1}", state, 0) == 0);
}

//  Shares of the memory budget: a function over its share gives way to
//  another function's call at the end of its run, and takes its own next
//  call once back within it; idle environments of a tenant over its share
//  are evicted before others'
static void
s_test_shares (bool verbose)
{
    char *argv [] = { "clowdy", "--max-concurrency", "4", "--queue-depth", "4", "--memory-budget-mb", "512",
                      "--function-share", "50", "--owner-share", "75", NULL };
    s_rig_t rig;
    s_rig_start (&rig, "shares", NULL, argv);
    zactor_t *assignment = rig.assignment;
    zsock_t *placement = rig.placement, *gateway = rig.gateway;
    zsock_t *worker = zsock_new_dealer ("inproc://assignment-shares-worker");
    assert (msg_send_ready (worker, NULL, "w1", "{\"capacity_mb\":512}") == 0);
    s_wait_stat (assignment, "workers", 1);
    const char *context = "{\"code\":\"...\",\"timeout_seconds\":30}";
    #define S_RUN(job, key, function, owner, mb) \
        assert (msg_send_run (gateway, NULL, job, key, function, "pppppppppppp", owner, (int64_t) (mb), \
                              30000, context, "{}") == 0)

    //  Alone, the hog takes the whole budget: two 256 MB environments
    msg_t *hog [2], *msg;
    const char *hog_jobs [] = { "hog000000001", "hog000000002" };
    for (int i = 0; i < 2; i++) {
        S_RUN (hog_jobs [i], "h:1:x", "hhhhhhhhhhhh", "alice", 256);
        msg = s_expect (placement, true, MSG_ID_PLACE);
        assert (msg_send_placed (placement, msg_route (msg), hog_jobs [i], "w1") == 0);
        msg_destroy (&msg);
        hog [i] = s_expect (worker, false, MSG_ID_EXEC);
    }
    assert (s_stat (assignment, "memory_mb") == 512);
    //  Its third call and another user's call wait for memory, not 503
    S_RUN ("hog000000003", "h:1:x", "hhhhhhhhhhhh", "alice", 256);
    S_RUN ("oth000000001", "o:1:x", "oooooooooooo", "bob", 128);
    s_wait_stat (assignment, "queued", 2);
    assert (s_stat (assignment, "starved") == 2);

    //  The hog's first run ends: it is over its share (512 > 256), so its
    //  environment goes and the other call gets the memory, not hog 3
    s_done (worker, hog [0], "warm");
    msg = s_expect (gateway, false, MSG_ID_RESULT);
    assert (streq (msg_result_job_id (msg), "hog000000001"));
    msg_destroy (&msg);
    msg = s_expect (worker, false, MSG_ID_KILL);
    assert (streq (msg_kill_env_id (msg), msg_exec_env_id (hog [0])));
    msg_destroy (&msg);
    msg = s_expect (placement, true, MSG_ID_PLACE);
    assert (streq (msg_place_job_id (msg), "oth000000001"));
    assert (msg_send_placed (placement, msg_route (msg), "oth000000001", "w1") == 0);
    msg_destroy (&msg);
    msg_t *other = s_expect (worker, false, MSG_ID_EXEC);
    assert (streq (msg_exec_job_id (other), "oth000000001"));
    assert (s_stat (assignment, "memory_mb") == 384 && s_stat (assignment, "queued") == 1);

    //  The hog's second run ends: back within its share (256), it keeps
    //  its environment and takes its own next call, warm
    s_done (worker, hog [1], "warm");
    msg = s_expect (gateway, false, MSG_ID_RESULT);
    msg_destroy (&msg);
    msg_t *third = s_expect (worker, false, MSG_ID_EXEC);
    assert (streq (msg_exec_job_id (third), "hog000000003"));
    assert (streq (msg_exec_env_id (third), msg_exec_env_id (hog [1])));
    msg_destroy (&hog [0]);
    msg_destroy (&hog [1]);

    //  Both finish and idle (hog 256 + other 128). A third function of
    //  alice's needs 256: 128 must go. The other's environment is the least
    //  recently idle, but nobody is over a share, so LRU decides: it goes.
    s_done (worker, other, "warm");
    msg = s_expect (gateway, false, MSG_ID_RESULT);
    msg_destroy (&msg);
    s_done (worker, third, "warm");
    msg = s_expect (gateway, false, MSG_ID_RESULT);
    msg_destroy (&msg);
    assert (s_stat (assignment, "idle") == 2 && s_stat (assignment, "starved") == 0);
    S_RUN ("new000000001", "n:1:x", "nnnnnnnnnnnn", "alice", 256);
    msg = s_expect (worker, false, MSG_ID_KILL);
    assert (streq (msg_kill_env_id (msg), msg_exec_env_id (other)));
    msg_destroy (&msg);
    msg = s_expect (placement, true, MSG_ID_PLACE);
    assert (streq (msg_place_job_id (msg), "new000000001"));
    assert (msg_send_placed (placement, msg_route (msg), "new000000001", "w1") == 0);
    msg_destroy (&msg);
    msg_t *fresh = s_expect (worker, false, MSG_ID_EXEC);
    s_done (worker, fresh, "warm");
    msg_destroy (&fresh);
    msg = s_expect (gateway, false, MSG_ID_RESULT);
    msg_destroy (&msg);
    msg_destroy (&other);

    //  Now alice holds 512 (idle), over her 384 share: bob's 256 MB call
    //  evicts one of hers, never blocks
    S_RUN ("oth000000002", "o:1:x", "oooooooooooo", "bob", 256);
    msg = s_expect (worker, false, MSG_ID_KILL);
    assert (streq (msg_kill_env_id (msg), msg_exec_env_id (third)));
    msg_destroy (&msg);
    msg = s_expect (placement, true, MSG_ID_PLACE);
    assert (streq (msg_place_job_id (msg), "oth000000002"));
    msg_destroy (&msg);
    msg_destroy (&third);
    #undef S_RUN

    zsock_destroy (&worker);
    s_rig_stop (&rig);
}

//  The cluster's rules: a READY from a known worker (a partition healed,
//  on a new connection) is one registration that reconciles environments;
//  LEAVING drains a worker while its queued calls go elsewhere; a PLACED
//  naming a worker gone since is placed again; the budget is the workers'
static void
s_test_cluster (bool verbose)
{
    char *argv [] = { "clowdy", "--max-concurrency", "1", "--queue-depth", "4", NULL };
    s_rig_t rig;
    s_rig_start (&rig, "cluster", NULL, argv);
    zactor_t *assignment = rig.assignment;
    zsock_t *placement = rig.placement, *gateway = rig.gateway;
    zsock_t *wa = zsock_new_dealer ("inproc://assignment-cluster-worker");
    assert (msg_send_ready (wa, NULL, "wa", "{\"capacity_mb\":1024,\"cores\":2}") == 0);
    s_wait_stat (assignment, "workers", 1);
    assert (s_stat (assignment, "budget_mb") == 1024);

    //  E1 idle and E2 running j2 on wa
    s_run (gateway, "cjob00000001", "c1:1:x", "cccccccccc01", 128);
    msg_t *msg = s_expect (placement, true, MSG_ID_PLACE);
    assert (msg_send_placed (placement, msg_route (msg), "cjob00000001", "wa") == 0);
    msg_destroy (&msg);
    msg_t *exec = s_expect (wa, false, MSG_ID_EXEC);
    char e1 [UTIL_ID_SIZE];
    snprintf (e1, sizeof e1, "%s", msg_exec_env_id (exec));
    s_done (wa, exec, "warm");
    msg_destroy (&exec);
    msg = s_expect (gateway, false, MSG_ID_RESULT);
    msg_destroy (&msg);
    s_run (gateway, "cjob00000002", "c2:1:x", "cccccccccc02", 128);
    msg = s_expect (placement, true, MSG_ID_PLACE);
    assert (msg_send_placed (placement, msg_route (msg), "cjob00000002", "wa") == 0);
    msg_destroy (&msg);
    exec = s_expect (wa, false, MSG_ID_EXEC);
    msg_destroy (&exec);

    //  wa comes back on a new connection holding E1 and an environment we
    //  never knew, but not E2: one registration; j2 is lost (it may have
    //  run), E1 stays warm, the stranger is killed
    zsock_t *wb = zsock_new_dealer ("inproc://assignment-cluster-worker");
    char info [256];
    snprintf (info, sizeof info, "{\"capacity_mb\":1024,\"envs\":[\"%s\",\"stranger0001\"],\"jobs\":[]}", e1);
    assert (msg_send_ready (wb, NULL, "wa", info) == 0);
    s_expect_result (gateway, wb, "wa", "cjob00000002", "lost", "may have run");
    msg = s_expect (wb, false, MSG_ID_KILL);
    assert (streq (msg_kill_env_id (msg), "stranger0001"));
    msg_destroy (&msg);
    assert (s_stat (assignment, "workers") == 1 && s_stat (assignment, "envs") == 1);
    s_run (gateway, "cjob00000003", "c1:1:x", "cccccccccc01", 128);
    exec = s_expect (wb, false, MSG_ID_EXEC);                //  Warm, on its new connection
    assert (streq (msg_exec_env_id (exec), e1));
    zsock_destroy (&wa);

    //  wa leaves while j3 runs and j4 waits behind --max-concurrency 1: j3
    //  finishes there, j4 goes to wc, wa gets nothing new
    s_run (gateway, "cjob00000004", "c1:1:x", "cccccccccc01", 128);
    s_wait_stat (assignment, "queued", 1);
    zsock_t *wc = zsock_new_dealer ("inproc://assignment-cluster-worker");
    assert (msg_send_ready (wc, NULL, "wc", "{\"capacity_mb\":512}") == 0);
    s_wait_stat (assignment, "workers", 2);
    assert (s_stat (assignment, "budget_mb") == 1024 + 512);
    assert (msg_send_leaving (wb, NULL, "wa", "draining") == 0);
    s_wait_stat (assignment, "draining", 1);
    s_done (wb, exec, "warm");
    msg_destroy (&exec);
    msg = s_expect (gateway, false, MSG_ID_RESULT);
    assert (streq (msg_result_job_id (msg), "cjob00000003") && strstr (msg_result_result_text (msg), "success"));
    msg_destroy (&msg);
    msg = s_expect (wb, false, MSG_ID_KILL);                 //  Its environment ends with its run
    assert (streq (msg_kill_env_id (msg), e1));
    msg_destroy (&msg);
    msg = s_expect (placement, true, MSG_ID_PLACE);
    assert (streq (msg_place_job_id (msg), "cjob00000004"));
    assert (!strstr (msg_place_workers_text (msg), "\"wa\"") && strstr (msg_place_workers_text (msg), "\"wc\""));
    //  Placement names a worker gone since: asked again, the call never ran
    assert (msg_send_placed (placement, msg_route (msg), "cjob00000004", "ghost") == 0);
    msg_destroy (&msg);
    msg = s_expect (placement, true, MSG_ID_PLACE);
    assert (streq (msg_place_job_id (msg), "cjob00000004"));
    assert (msg_send_placed (placement, msg_route (msg), "cjob00000004", "wc") == 0);
    msg_destroy (&msg);
    exec = s_expect (wc, false, MSG_ID_EXEC);
    assert (streq (msg_exec_job_id (exec), "cjob00000004"));
    s_done (wc, exec, "warm");
    msg_destroy (&exec);
    msg = s_expect (gateway, false, MSG_ID_RESULT);
    assert (streq (msg_result_job_id (msg), "cjob00000004") && strstr (msg_result_result_text (msg), "success"));
    msg_destroy (&msg);
    //  Its goodbye: gone, not lost; the budget is wc's alone
    assert (msg_send_leaving (wb, NULL, "wa", "left") == 0);
    s_wait_stat (assignment, "workers", 1);
    assert (s_stat (assignment, "budget_mb") == 512);

    //  wd joins and gets j5; PLACE for j6 goes out too. wd begins to leave:
    //  its memory leaves the budget; the PLACED naming it is placed again;
    //  it says "left" without having read the EXEC of j5 (sent before its
    //  LEAVING was read), so j5 never started: it runs on wc, not "lost"
    zsock_t *wd = zsock_new_dealer ("inproc://assignment-cluster-worker");
    assert (msg_send_ready (wd, NULL, "wd", "{\"capacity_mb\":1024}") == 0);
    s_wait_stat (assignment, "workers", 2);
    s_run (gateway, "cjob00000005", "c5:1:x", "cccccccccc05", 128);
    msg = s_expect (placement, true, MSG_ID_PLACE);
    assert (msg_send_placed (placement, msg_route (msg), "cjob00000005", "wd") == 0);
    msg_destroy (&msg);
    exec = s_expect (wd, false, MSG_ID_EXEC);
    assert (streq (msg_exec_job_id (exec), "cjob00000005"));
    msg_destroy (&exec);
    s_run (gateway, "cjob00000006", "c6:1:x", "cccccccccc06", 128);
    msg_t *place = s_expect (placement, true, MSG_ID_PLACE);
    assert (streq (msg_place_job_id (place), "cjob00000006"));
    assert (msg_send_leaving (wd, NULL, "wd", "draining") == 0);
    s_wait_stat (assignment, "draining", 1);
    assert (s_stat (assignment, "budget_mb") == 512);
    assert (msg_send_placed (placement, msg_route (place), "cjob00000006", "wd") == 0);
    msg_destroy (&place);
    msg = s_expect (placement, true, MSG_ID_PLACE);
    assert (streq (msg_place_job_id (msg), "cjob00000006") && !strstr (msg_place_workers_text (msg), "\"wd\""));
    assert (msg_send_placed (placement, msg_route (msg), "cjob00000006", "wc") == 0);
    msg_destroy (&msg);
    exec = s_expect (wc, false, MSG_ID_EXEC);
    assert (streq (msg_exec_job_id (exec), "cjob00000006"));
    s_done (wc, exec, "warm");
    msg_destroy (&exec);
    msg = s_expect (gateway, false, MSG_ID_RESULT);
    assert (streq (msg_result_job_id (msg), "cjob00000006") && strstr (msg_result_result_text (msg), "success"));
    msg_destroy (&msg);
    assert (msg_send_leaving (wd, NULL, "wd", "left") == 0);
    msg = s_expect (placement, true, MSG_ID_PLACE);
    assert (streq (msg_place_job_id (msg), "cjob00000005") && !strstr (msg_place_workers_text (msg), "\"wd\""));
    assert (msg_send_placed (placement, msg_route (msg), "cjob00000005", "wc") == 0);
    msg_destroy (&msg);
    exec = s_expect (wc, false, MSG_ID_EXEC);
    assert (streq (msg_exec_job_id (exec), "cjob00000005"));
    s_done (wc, exec, "warm");
    msg_destroy (&exec);
    msg = s_expect (gateway, false, MSG_ID_RESULT);
    assert (streq (msg_result_job_id (msg), "cjob00000005") && strstr (msg_result_result_text (msg), "success"));
    msg_destroy (&msg);
    assert (s_stat (assignment, "workers") == 1);
    zsock_destroy (&wd);

    zsock_destroy (&wb);
    zsock_destroy (&wc);
    s_rig_stop (&rig);
}

//  A worker over tcp answers in its DONE: an answer gateway could not read
//  (not JSON, or `delivered`, which only a worker in gateway's process
//  may say) is answered "lost" at once instead of leaving the call to its
//  deadline, and that environment ends; a readable one passes on
static void
s_test_remote_done (void)
{
    //  A free port, from the kernel: a plain socket is closed when close
    //  returns (libzmq closes a listener later, on its own thread), and with
    //  "*" CZMQ takes the first free port from 49152, as other selftests
    //  running beside this one do
    int probe = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    socklen_t length = sizeof address;
    assert (probe >= 0 && bind (probe, (struct sockaddr *) &address, sizeof address) == 0);
    assert (getsockname (probe, (struct sockaddr *) &address, &length) == 0);
    int port = ntohs (address.sin_port);
    close (probe);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    char *argv [] = { "clowdy", NULL };
    s_rig_t rig;
    s_rig_start (&rig, "remote", endpoint, argv);
    zactor_t *assignment = rig.assignment;
    zsock_t *placement = rig.placement, *gateway = rig.gateway;
    zsock_t *worker = zsock_new_dealer (endpoint);
    assert (msg_send_ready (worker, NULL, "wr", "{\"capacity_mb\":1024}") == 0);
    s_wait_stat (assignment, "workers", 1);
    const char *answers [] = { "{\"status\":\"success\",\"output\":1", "{}", "{\"status\":\"success\",\"output\":2}" };
    const int delivered [] = { 0, 1, 0 };
    for (int index = 0; index < 3; index++) {
        char job_id [16], key [16], function_id [16];
        snprintf (job_id, sizeof job_id, "rjob0000000%d", index);
        snprintf (key, sizeof key, "r%d:1:x", index);
        snprintf (function_id, sizeof function_id, "rrrrrrrrrr0%d", index);
        s_run (gateway, job_id, key, function_id, 128);
        msg_t *msg = s_expect (placement, true, MSG_ID_PLACE);
        assert (msg_send_placed (placement, msg_route (msg), job_id, "wr") == 0);
        msg_destroy (&msg);
        msg_t *exec = s_expect (worker, false, MSG_ID_EXEC);
        assert (msg_send_done (worker, NULL, msg_exec_env_id (exec), job_id, answers [index], "warm",
                               delivered [index]) == 0);
        msg_destroy (&exec);
        if (index < 2) {
            s_expect_result (gateway, worker, "wr", job_id, "lost", "cannot be read");
            msg = s_expect (worker, false, MSG_ID_KILL);
            msg_destroy (&msg);
        }
        else {
            msg = s_expect (gateway, false, MSG_ID_RESULT);
            assert (streq (msg_result_job_id (msg), job_id) && strstr (msg_result_result_text (msg), "\"output\":2"));
            msg_destroy (&msg);
        }
    }
    s_wait_stat (assignment, "idle", 1);            //  only the third environment is kept
    zsock_destroy (&worker);
    s_rig_stop (&rig);
}

//  Stopping while cold starts wait for placement: one PLACE is out and
//  another waits its turn. Every run is answered, and ending the
//  environment whose PLACE is out does not send the next one (its job was
//  answered already)
static void
s_test_stop_while_placing (void)
{
    char *argv [] = { "clowdy", NULL };
    s_rig_t rig;
    s_rig_start (&rig, "stop", NULL, argv);
    zactor_t *assignment = rig.assignment;
    zsock_t *placement = rig.placement, *gateway = rig.gateway;
    zsock_t *worker = zsock_new_dealer ("inproc://assignment-stop-worker");
    assert (msg_send_ready (worker, NULL, "ws", "{\"capacity_mb\":1024}") == 0);
    s_wait_stat (assignment, "workers", 1);
    for (int index = 0; index < 3; index++) {
        char job_id [16], key [16], function_id [16];
        snprintf (job_id, sizeof job_id, "sjob0000000%d", index);
        snprintf (key, sizeof key, "s%d:1:x", index);
        snprintf (function_id, sizeof function_id, "ssssssssss0%d", index);
        s_run (gateway, job_id, key, function_id, 128);
    }
    msg_t *msg = s_expect (placement, true, MSG_ID_PLACE);      //  never answered
    msg_destroy (&msg);
    s_wait_stat (assignment, "placing", 3);
    zactor_destroy (&rig.assignment);
    for (int index = 0; index < 3; index++) {
        msg = s_expect (gateway, false, MSG_ID_RESULT);
        assert (strstr (msg_result_result_text (msg), "shutting down"));
        msg_destroy (&msg);
    }
    zsock_destroy (&worker);
    s_rig_stop (&rig);
}

void
assignment_test (bool verbose)
{
    printf ("assignment: ");
    s_test_shares (verbose);
    s_test_cluster (verbose);
    s_test_stop_while_placing ();
    s_test_remote_done ();
    char *argv [] = { "clowdy", "--max-concurrency", "2", "--queue-depth", "1",
                      "--memory-budget-mb", "512", "--idle-seconds", "1", NULL };
    s_rig_t rig;
    s_rig_start (&rig, "test", NULL, argv);
    zactor_t *assignment = rig.assignment;
    zsock_t *placement = rig.placement, *gateway = rig.gateway;
    zsock_t *worker = zsock_new_dealer ("inproc://assignment-test-worker");

    //  No worker yet: the run is refused as unavailable, not lost
    s_run (gateway, "job000000001", "f1:1:x", "ffffffffff01", 128);
    msg_t *msg = s_expect (gateway, false, MSG_ID_RESULT);
    assert (strstr (msg_result_result_text (msg), "unavailable"));
    msg_destroy (&msg);

    assert (msg_send_ready (worker, NULL, "w1", "{\"capacity_mb\":512}") == 0);
    s_wait_stat (assignment, "workers", 1);

    //  Cold start: placement is asked, the worker gets EXEC for a new env
    s_run (gateway, "job000000002", "f1:1:x", "ffffffffff01", 128);
    msg = s_expect (placement, true, MSG_ID_PLACE);
    assert (streq (msg_place_job_id (msg), "job000000002"));
    assert (msg_place_memory_mb (msg) == 128);
    assert (strstr (msg_place_workers_text (msg), "\"w1\""));
    assert (msg_send_placed (placement, msg_route (msg), "job000000002", "w1") == 0);
    msg_destroy (&msg);
    msg_t *exec = s_expect (worker, false, MSG_ID_EXEC);
    char env1 [UTIL_ID_SIZE];
    snprintf (env1, sizeof env1, "%s", msg_exec_env_id (exec));
    s_done (worker, exec, "warm");
    msg_destroy (&exec);
    msg = s_expect (gateway, false, MSG_ID_RESULT);
    assert (streq (msg_result_job_id (msg), "job000000002"));
    msg_destroy (&msg);

    //  Warm start: same pool key reuses env1 with no placement
    s_run (gateway, "job000000003", "f1:1:x", "ffffffffff01", 128);
    exec = s_expect (worker, false, MSG_ID_EXEC);
    assert (streq (msg_exec_env_id (exec), env1));

    //  While env1 is busy: a second env (cap 2), then one queued, then 429
    s_run (gateway, "job000000004", "f1:1:x", "ffffffffff01", 128);
    msg = s_expect (placement, true, MSG_ID_PLACE);
    assert (msg_send_placed (placement, msg_route (msg), "job000000004", "w1") == 0);
    msg_destroy (&msg);
    msg_t *exec2 = s_expect (worker, false, MSG_ID_EXEC);
    assert (strneq (msg_exec_env_id (exec2), env1));
    s_run (gateway, "job000000005", "f1:1:x", "ffffffffff01", 128);      //  queued
    s_run (gateway, "job000000006", "f1:1:x", "ffffffffff01", 128);      //  rejected
    msg = s_expect (gateway, false, MSG_ID_RESULT);
    assert (streq (msg_result_job_id (msg), "job000000006") && strstr (msg_result_result_text (msg), "rejected"));
    msg_destroy (&msg);

    //  env1 finishes: the queued job runs on it at once
    s_done (worker, exec, "warm");
    msg_destroy (&exec);
    msg = s_expect (gateway, false, MSG_ID_RESULT);
    assert (streq (msg_result_job_id (msg), "job000000003"));
    msg_destroy (&msg);
    exec = s_expect (worker, false, MSG_ID_EXEC);
    assert (streq (msg_exec_env_id (exec), env1) && streq (msg_exec_job_id (exec), "job000000005"));

    //  env2's run ends with the env dead (timeout): it is forgotten
    s_done (worker, exec2, "dead");
    msg_destroy (&exec2);
    msg = s_expect (gateway, false, MSG_ID_RESULT);
    msg_destroy (&msg);
    s_done (worker, exec, "warm");
    msg_destroy (&exec);
    msg = s_expect (gateway, false, MSG_ID_RESULT);
    msg_destroy (&msg);
    assert (s_stat (assignment, "envs") == 1 && s_stat (assignment, "idle") == 1);

    //  A DONE whose RESULT the worker sent to gateway itself (delivered, one
    //  process): assignment answers nothing and env1 is free again. The
    //  caller's next RUN, sent right after that DONE, is read after it (the
    //  DONE is read first whichever socket wakes assignment), so it is warm
    s_run (gateway, "job000000020", "f1:1:x", "ffffffffff01", 128);
    exec = s_expect (worker, false, MSG_ID_EXEC);
    assert (streq (msg_exec_env_id (exec), env1));
    assert (msg_send_done (worker, NULL, env1, "job000000020", "{}", "warm", 1) == 0);
    msg_destroy (&exec);
    s_run (gateway, "job000000021", "f1:1:x", "ffffffffff01", 128);
    exec = s_expect (worker, false, MSG_ID_EXEC);
    assert (streq (msg_exec_env_id (exec), env1) && streq (msg_exec_job_id (exec), "job000000021"));
    s_done (worker, exec, "warm");
    msg_destroy (&exec);
    msg = s_expect (gateway, false, MSG_ID_RESULT);         //  The first RESULT since: job 21's
    assert (streq (msg_result_job_id (msg), "job000000021"));
    msg_destroy (&msg);
    assert (s_stat (assignment, "envs") == 1 && s_stat (assignment, "idle") == 1);

    //  A different function never gets env1
    s_run (gateway, "job000000007", "f2:1:x", "ffffffffff02", 128);
    msg = s_expect (placement, true, MSG_ID_PLACE);
    assert (msg_send_placed (placement, msg_route (msg), "job000000007", "w1") == 0);
    msg_destroy (&msg);
    exec = s_expect (worker, false, MSG_ID_EXEC);
    assert (strneq (msg_exec_env_id (exec), env1));
    s_done (worker, exec, "warm");
    msg_destroy (&exec);
    msg = s_expect (gateway, false, MSG_ID_RESULT);
    msg_destroy (&msg);

    //  The worker lost a warm env: the job is run again on a new one
    s_run (gateway, "job000000009", "f2:1:x", "ffffffffff02", 128);
    msg_t *lost = s_expect (worker, false, MSG_ID_EXEC);
    assert (msg_send_done (worker, NULL, msg_exec_env_id (lost), "job000000009", "{}", "lost", 0) == 0);
    msg = s_expect (placement, true, MSG_ID_PLACE);
    assert (streq (msg_place_job_id (msg), "job000000009"));
    assert (msg_send_placed (placement, msg_route (msg), "job000000009", "w1") == 0);
    msg_destroy (&msg);
    msg_t *again = s_expect (worker, false, MSG_ID_EXEC);
    assert (strneq (msg_exec_env_id (again), msg_exec_env_id (lost)));
    s_done (worker, again, "warm");
    msg_destroy (&again);
    msg_destroy (&lost);
    msg = s_expect (gateway, false, MSG_ID_RESULT);
    assert (streq (msg_result_job_id (msg), "job000000009"));
    msg_destroy (&msg);

    //  Memory budget 512 with 256 in use: a 300 MB function evicts the least
    //  recently idle environment (env1), and only that one
    s_run (gateway, "job000000008", "f3:1:x", "ffffffffff03", 300);
    msg = s_expect (worker, false, MSG_ID_KILL);
    assert (streq (msg_kill_env_id (msg), env1));
    msg_destroy (&msg);
    msg = s_expect (placement, true, MSG_ID_PLACE);
    assert (msg_send_placed (placement, msg_route (msg), "job000000008", "w1") == 0);
    msg_destroy (&msg);
    exec = s_expect (worker, false, MSG_ID_EXEC);

    //  RETIRE by function: the busy env is killed once its run ends
    assert (msg_send_retire (gateway, NULL, "function ffffffffff03") == 0);
    s_done (worker, exec, "warm");
    msg_t *kill = s_expect (worker, false, MSG_ID_KILL);
    assert (streq (msg_kill_env_id (kill), msg_exec_env_id (exec)));
    msg_destroy (&kill);
    msg_destroy (&exec);
    msg = s_expect (gateway, false, MSG_ID_RESULT);
    msg_destroy (&msg);

    //  Idle reaper (1 s here) kills what is left; a silent worker is dropped
    zclock_sleep (2500);
    msg = s_expect (worker, false, MSG_ID_HEARTBEAT);
    msg_destroy (&msg);
    assert (s_stat (assignment, "envs") == 0);
    assert (s_stat (assignment, "memory_mb") == 0);
    zsock_set_rcvtimeo (worker, 100);
    while ((msg = msg_recv (worker, false))) {     //  The reaper's KILLs
        assert (msg_id (msg) == MSG_ID_KILL || msg_id (msg) == MSG_ID_HEARTBEAT);
        msg_destroy (&msg);
    }

    //  Deadlines. A warm run whose worker heartbeats but never answers, and
    //  a placement that never answers, side by side. Timeout 1 s: the run is
    //  given up after 1 + RUN_MARGIN_MS, the placement after PLACE_DEADLINE_MS.
    if (verbose)
        printf ("(waiting for deadlines) ");
    s_run (gateway, "job000000010", "f4:1:x", "ffffffffff04", 128);
    msg = s_expect (placement, true, MSG_ID_PLACE);
    assert (msg_send_placed (placement, msg_route (msg), "job000000010", "w1") == 0);
    msg_destroy (&msg);
    exec = s_expect (worker, false, MSG_ID_EXEC);
    s_done (worker, exec, "warm");
    msg_destroy (&exec);
    msg = s_expect (gateway, false, MSG_ID_RESULT);
    msg_destroy (&msg);
    s_run (gateway, "job000000011", "f4:1:x", "ffffffffff04", 128);
    msg_t *stuck = s_expect (worker, false, MSG_ID_EXEC);
    assert (streq (msg_exec_job_id (stuck), "job000000011"));
    s_run (gateway, "job000000012", "f5:1:x", "ffffffffff05", 128);
    msg_t *unplaced = s_expect (placement, true, MSG_ID_PLACE);
    assert (s_stat (assignment, "placing") == 1 && s_stat (assignment, "busy") == 1);
    s_expect_result (gateway, worker, "w1", "job000000012", "unavailable", "Placement did not answer in time");
    s_expect_result (gateway, worker, "w1", "job000000011", "lost", "Worker did not answer in time");
    msg = s_expect (worker, false, MSG_ID_KILL);             //  The worker may still hold it
    assert (streq (msg_kill_env_id (msg), msg_exec_env_id (stuck)));
    msg_destroy (&msg);
    assert (s_stat (assignment, "envs") == 0 && s_stat (assignment, "jobs") == 0);
    //  Late answers are dropped: no second RESULT, no EXEC
    assert (msg_send_placed (placement, msg_route (unplaced), "job000000012", "w1") == 0);
    s_done (worker, stuck, "warm");
    msg_destroy (&stuck);
    msg_destroy (&unplaced);
    zsock_set_rcvtimeo (gateway, 300);
    msg = msg_recv (gateway, false);
    assert (!msg);
    assert (s_stat (assignment, "envs") == 0 && s_stat (assignment, "memory_mb") == 0);

    //  A worker that falls silent mid-call: expired, its run answered "lost"
    s_run (gateway, "job000000013", "f4:1:x", "ffffffffff04", 128);
    msg = s_expect (placement, true, MSG_ID_PLACE);
    assert (msg_send_placed (placement, msg_route (msg), "job000000013", "w1") == 0);
    msg_destroy (&msg);
    exec = s_expect (worker, false, MSG_ID_EXEC);
    msg_destroy (&exec);
    if (verbose)
        printf ("(waiting for worker expiry) ");
    s_expect_result (gateway, NULL, NULL, "job000000013", "lost", "stopped answering");
    assert (s_stat (assignment, "workers") == 0 && s_stat (assignment, "envs") == 0);

    //  Checked sends: a worker whose connection is gone cannot be sent EXEC:
    //  it is dropped at once (not after expiry) and the call, which never
    //  ran, is dispatched again: here no worker is left, so "unavailable"
    zsock_t *vanishing = zsock_new_dealer ("inproc://assignment-test-worker");
    assert (msg_send_ready (vanishing, NULL, "w2", "{}") == 0);
    s_wait_stat (assignment, "workers", 1);
    zsock_destroy (&vanishing);
    zclock_sleep (50);
    s_run (gateway, "job000000014", "f4:1:x", "ffffffffff04", 128);
    msg = s_expect (placement, true, MSG_ID_PLACE);
    assert (msg_send_placed (placement, msg_route (msg), "job000000014", "w2") == 0);
    msg_destroy (&msg);
    s_expect_result (gateway, NULL, NULL, "job000000014", "unavailable", "No worker is available");
    assert (s_stat (assignment, "workers") == 0);
    assert (s_stat (assignment, "envs") == 0 && s_stat (assignment, "memory_mb") == 0);

    //  Two placements, where w4 has room for one of them: one PLACE is out
    //  at a time, so the second is chosen from a registry that counts the
    //  first; a PLACED that names a worker without room anyway is not
    //  squeezed onto it: placement is asked again with the registry as it is
    zsock_t *w4 = zsock_new_dealer ("inproc://assignment-test-worker");
    assert (msg_send_ready (w4, NULL, "w4", "{\"capacity_mb\":200}") == 0);
    //  w5 makes the cluster's budget (the sum) big enough for both calls;
    //  placement (this test) never chooses it
    zsock_t *w5 = zsock_new_dealer ("inproc://assignment-test-worker");
    assert (msg_send_ready (w5, NULL, "w5", "{\"capacity_mb\":300}") == 0);
    s_wait_stat (assignment, "workers", 2);
    s_run (gateway, "job000000018", "f7:1:x", "ffffffffff07", 128);
    msg_t *first = s_expect (placement, true, MSG_ID_PLACE);
    assert (strstr (msg_place_workers_text (first), "\"memory_mb\":0"));
    s_run (gateway, "job000000019", "f8:1:x", "ffffffffff08", 128);
    s_wait_stat (assignment, "placing", 2);
    zsock_set_rcvtimeo (placement, 200);
    msg = msg_recv (placement, true);
    assert (!msg);                          //  Its turn comes after the first's PLACED
    assert (msg_send_placed (placement, msg_route (first), "job000000018", "w4") == 0);
    exec = s_expect (w4, false, MSG_ID_EXEC);
    assert (streq (msg_exec_job_id (exec), "job000000018"));
    msg_t *second = s_expect (placement, true, MSG_ID_PLACE);
    assert (streq (msg_place_job_id (second), "job000000019"));
    assert (strstr (msg_place_workers_text (second), "\"id\":\"w4\",\"envs\":1,\"memory_mb\":128"));
    assert (msg_send_placed (placement, msg_route (second), "job000000019", "w4") == 0);
    msg = s_expect (placement, true, MSG_ID_PLACE);
    assert (streq (msg_place_job_id (msg), "job000000019"));
    assert (strstr (msg_place_workers_text (msg), "\"memory_mb\":128"));
    assert (msg_send_placed (placement, msg_route (msg), "job000000019", "") == 0);
    s_expect_result (gateway, w4, "w4", "job000000019", "unavailable", "No worker can run");
    msg_destroy (&msg);
    msg_destroy (&first);
    msg_destroy (&second);
    s_done (w4, exec, "warm");
    msg_destroy (&exec);
    msg = s_expect (gateway, false, MSG_ID_RESULT);
    assert (streq (msg_result_job_id (msg), "job000000018") && strstr (msg_result_result_text (msg), "success"));
    msg_destroy (&msg);
    assert (s_stat (assignment, "envs") == 1 && s_stat (assignment, "memory_mb") == 128);
    zsock_destroy (&w5);
    s_wait_stat (assignment, "workers", 1);

    //  A queued call waits at most what a cold run may take: two calls hold
    //  both environments of the pool (timeout 30 s, so their runs outlast
    //  the test), the third (timeout 1 s) waits in the queue and is answered
    //  "unavailable" after deadlines_queue_ms (1 s), while the worker lives
    if (verbose)
        printf ("(waiting for the queue deadline) ");
    assert (msg_send_heartbeat (w4, NULL, "w4", "{}") == 0);
    zsock_t *w3 = zsock_new_dealer ("inproc://assignment-test-worker");
    assert (msg_send_ready (w3, NULL, "w3", "{}") == 0);
    s_wait_stat (assignment, "workers", 2);
    const char *long_context = "{\"code\":\"...\",\"timeout_seconds\":30}";
    const char *holders [] = { "job000000015", "job000000016" };
    for (int i = 0; i < 2; i++) {
        assert (msg_send_run (gateway, NULL, holders [i], "f6:1:x", "ffffffffff06", "pppppppppppp", "alice", (int64_t) 128,
                              30000, long_context, "{}") == 0);
        msg = s_expect (placement, true, MSG_ID_PLACE);
        assert (msg_send_placed (placement, msg_route (msg), holders [i], "w3") == 0);
        msg_destroy (&msg);
        msg = s_expect (w3, false, MSG_ID_EXEC);
        msg_destroy (&msg);
    }
    s_run (gateway, "job000000017", "f6:1:x", "ffffffffff06", 128);
    s_wait_stat (assignment, "queued", 1);
    s_expect_result (gateway, w3, "w3", "job000000017", "unavailable", "waited");
    assert (s_stat (assignment, "queued") == 0 && s_stat (assignment, "creating") == 2);
    zsock_destroy (&w3);
    zsock_destroy (&w4);

    zsock_destroy (&worker);
    s_rig_stop (&rig);
    printf ("OK\n");
}
