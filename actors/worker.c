/*  =========================================================================
    worker - drives runners inside sandboxes on this host

    The worker's environments, each a wenv_t, move through these states:

        CREATING --sandbox up--> STARTING --ready--> IDLE --EXEC/invoke--> BUSY --result--> IDLE
           (the creator thread      |  (a cold EXEC before ready parks load+invoke; sent on ready)
            is making its sandbox)  '--> LOADING --loaded--> BUSY ...
        any --EOF, protocol error, deadline, KILL, creation failed--> gone

    One place, s_env_end, handles every way an environment can end: it kills
    and reaps the sandbox, tells assignment DONE (when a run was in flight:
    timeout, out of memory or crash, told apart) or GONE (when idle and not
    already reported dead), and frees it. An environment answered DONE "dead"
    has been reported: nothing more is said of it. The loop is a reactor
    (broker/reactor.h: zloop's job in fewer system calls) over: the
    pipe, the assignment socket, the creator's pipe, one fd poller per
    runner (POLLOUT too while a frame waits for it), a heartbeat timer and
    one deadline timer per run.

    Nothing here waits on one runner: frames go out with non-blocking
    sends, the rest queued per environment (s_env_send), and a runner that
    ended by itself is looked for on a timer (s_env_end_soon). A runner
    that stops reading delays only its own call, which its deadline ends.

    Sandbox creation can take seconds (sandbox_new waits up to 10 s for the
    child's set-up), so it never runs on this loop: CREATORS creator threads,
    alive as long as the worker (a sandbox dies with the thread that created
    it), make sandboxes and hand each back on their pipe, named by a token.
    Meanwhile heartbeats, warm calls and results on other environments keep
    flowing. A request goes to the creator with the fewest waiting, so the
    sandboxes of a burst of cold starts are made side by side (sandbox_new
    is thread-safe; its own selftest runs four threads at once), and a
    spare is only given to an idle creator, so one is free for a call.
    An environment ended while its sandbox is being made (KILL) forgets its
    token; the sandbox that arrives for it later is destroyed. The sandbox
    pointer crosses only these private inproc pipes between threads of one
    process, never the fabric.

    Pre-started sandboxes (runner up, no function) sit in `spare`; a cold
    start that fits takes one and only pays for loading the code. When none
    is up, it adopts one still being made (`spare_creating`): that one is
    further along than a new one would be. The pool is refilled after the
    cold EXEC is sent on, so the refill never delays the call that used the
    spare. Without zygotes it stays at --prewarm: a pool grown with the
    recent cold-start rate was measured (README, Benchmarks) and on two busy
    cores the extra spares' python starts took the CPU the calls in flight
    needed. With zygotes (runtime/sandbox.c) a spare is a fork, so the pool
    grows by the cold starts of the last 2 s (s_pool_target, at most
    POOL_BURST_MAX more), both creators make spares, and the heartbeat lets
    the extra ones go once the burst is over.

    In a burst the two cores are shared by the calls' sandboxes and the
    spares being made for later calls. A sandbox a call waits for (made for
    it, or a spare it adopted while still being made) is "urgent": its
    cgroup has ten times the default CPU weight until its load, so that the
    call does not also wait for the spares made beside it (the slowest call
    of the bench's burst went from 46-63 ms to 22-33 ms, README). A spare's
    creator names its cgroup early (CGROUP) so that an adoption can raise
    it at once; whatever was raised, s_env_limit_for_code writes the
    default back before code that is not ours runs.

    Every send to assignment is checked; one that cannot be queued is logged
    (assignment's deadline answers the caller of a DONE that was lost).
    ========================================================================= */

#include <cjson/cJSON.h>
#include <glob.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include "actors/layerfetch.h"
#include "actors/worker.h"
#include "broker/actor.h"
#include "broker/deadlines.h"
#include "broker/endpoints.h"
#include "broker/reactor.h"
#include "broker/msg.h"
#include "core/config.h"
#include "core/dbprovider.h"
#include "core/layers.h"
#include "core/util.h"
#include "runtime/proto.h"
#include "runtime/sandbox.h"

#define CREATORS            2       //  creator threads per worker (more only contend on a 2-core host)
#define POOL_BURST_MAX      8       //  spares added to --prewarm while cold starts come (zygotes on)
#define POOL_BURST_MS       2000    //  ... counting the cold starts of this long

#define KIND_IDLE_MS        120000  //  a project's spare goes after this long without a cold start of it
#define KIND_MODULES_MAX    2000    //  modules learned per project (the runner's PRELOAD_MAX)
#define KIND_FAILURES_MAX   3       //  spares of a project that could not be made before it gets none
#define PRELOAD_DEADLINE_MS 30000   //  a preload still running after this is killed, and preloads stop

typedef enum { WENV_CREATING, WENV_STARTING, WENV_PRELOADING, WENV_LOADING, WENV_IDLE, WENV_BUSY } wenv_state_t;

struct _self_t;

typedef struct {
    char id [UTIL_ID_SIZE];         //  Environment id (assignment's), or "" while spare
    sandbox_t *sandbox;             //  The sandbox with its runner (NULL while CREATING)
    proto_reader_t *reader;         //  Frames from the runner
    wenv_state_t state;             //  See the diagram above
    char token [24];                //  Creator request while CREATING, else ""
    int creator;                    //  Index of the creator making it, while CREATING
    int resize_mb;                  //  Memory limit to set once its sandbox is up (an adopted spare), or 0
    char *job_id;                   //  Run in flight, or NULL
    char *pending_load;             //  Load frame waiting for ready, or NULL
    cJSON *pending_input;           //  Input waiting for loaded, or NULL
    int timeout_ms;                 //  Function's timeout
    int memory_mb;                  //  Function's memory limit
    bool cold;                      //  The run in flight created this environment
    bool timed_out;                 //  We killed it for its deadline
    bool reported;                  //  DONE "dead" was sent: say nothing more of it
    int deadline_timer;             //  reactor timer id, or -1
    int64_t started_us;             //  When the run in flight was received
    int64_t init_us;                //  Of a cold run, the time until its handler was called
    bool registered;                //  Its fd is in the loop
    char *out;                      //  Frame bytes the runner has not taken yet, or NULL
    size_t out_size;                //  Bytes in out
    size_t out_sent;                //  Of those, bytes already written
    bool polling_out;               //  Its fd is polled for POLLOUT too (out is not empty)
    struct _self_t *owner;          //  The worker, for the end timer
    int end_timer;                  //  reactor timer while waiting for a runner that ended itself, or -1
    int end_looks;                  //  Looks left before it is killed
    char *end_why;                  //  The reason the end was given, kept over the wait
    char layer [LAYERS_KEY_SIZE];   //  The layer it mounts, or ""
    uint64_t kind_id;               //  The project kind it was made for (kind_t), or 0
    cJSON *preload_vars;            //  The variables its preloads ran with (object), or NULL if none ran
    int mount_fd;                   //  A project spare's database dir as mounted (O_PATH), or -1
    char *database_dir;             //  Its project's SQLite database dir (host), to check the
                                    //  journals of before each call, or NULL
    bool urgent;                    //  A call waits for it: its cgroup at ten times the CPU
                                    //  weight until its load (s_env_load)
    char *cgroup_dir;               //  A spare while CREATING: its cgroup's CPU dir (the
                                    //  creator's CGROUP), to make it urgent; else NULL
} wenv_t;

//  One project's kind of sandbox (its layer, database mount and network),
//  which the plain spares cannot serve: it keeps one spare of its own, with
//  the modules the project's functions imported at load already imported
//  (see "Project spares" below)
typedef struct {
    uint64_t id;                    //  Named by this in wenv_t.kind_id
    char *key;                      //  project \t layer dir \t mount \t network
    char *layer_dir;                //  Mounted at /opt/layer, or NULL
    char *mount;                    //  The database mount, as s_env_new takes it, or NULL
    char *mount_source;             //  ... its host dir, or NULL
    bool network;                   //  Its sandboxes have a network
    int memory_mb;                  //  Of its last cold start: its spare is made with it
    int64_t used_at;                //  Monotonic ms of its last cold start
    cJSON *vars;                    //  The project's variables, as its last cold start had them
    int file_limit_mb;              //  Its database's file cap, as its last cold start had it, or 0
    int learned_mb;                 //  Largest memory limit of the loads that taught it modules
    cJSON *modules;                 //  Names its functions' loads imported, in import order
    zhashx_t *module_set;           //  The same names, so each is added once
    bool preload_off;               //  A preload failed: its spares import nothing
    int failures;                   //  Spares of it that could not be made, in a row
    wenv_t *spare;                  //  Its one pre-started sandbox, or NULL
} kind_t;

//  A cold start waiting for its layer to arrive from the control host
typedef struct {
    char env_id [UTIL_ID_SIZE];     //  Its environment, to be
    char *job_id;                   //  Its run
    char layer [LAYERS_KEY_SIZE];   //  The layer it waits for
    int memory_mb;                  //  As EXEC said
    int timeout_ms;                 //  As EXEC said
    cJSON *context;                 //  The function's context (owned)
    cJSON *input;                   //  The input, a raw item (owned)
    int64_t started_us;             //  When its EXEC came
} waiting_t;

typedef struct {
    const config_t *config;         //  Settings (read only)
    atomic_bool stopping;           //  Worker is shutting down: create nothing more
} creator_args_t;

typedef struct _self_t {
    zsock_t *pipe;                  //  Actor command pipe
    zsock_t *backend;               //  DEALER to assignment
    endpoints_t *endpoints;         //  Where gateway's results socket is, and whether it is up
    zsock_t *results;               //  PUSH to gateway in this process (made on first use), or NULL
    reactor_t *loop;                //  Our reactor
    const config_t *config;         //  Settings
    char worker_id [128];           //  Our id: host, process mark, pid, instance
    zhashx_t *envs;                 //  env id -> wenv_t (assigned environments)
    zlistx_t *spare;                //  wenv_t * pre-started, no function yet
    zhashx_t *creating;             //  token -> wenv_t whose sandbox the creator is making
    zactor_t *creators [CREATORS];  //  The creator threads
    size_t creator_load [CREATORS]; //  Requests each has not answered yet
    creator_args_t creator_args;    //  Shared with them
    uint64_t next_token;            //  Last creation token used
    zlistx_t *spare_creating;       //  wenv_t * spares the creators are making (also in creating)
    wenv_t **by_fd;                 //  protocol fd -> its environment (spare or assigned)
    size_t by_fd_size;              //  entries in by_fd
    int64_t last_heard;             //  Monotonic ms of the last message from assignment
    int64_t expiry_ms;              //  Silence after which assignment is taken as gone
    double cores;                   //  Cores this worker offers (its share of the process's)
    bool sandboxes_ok;              //  sandbox_system_init succeeded
    bool refill_scheduled;          //  A refill timer is pending
    bool zygote_up;                 //  The last sandbox made came from a zygote
    int64_t cold_at [POOL_BURST_MAX];   //  When the last cold starts that could take a spare came
    int cold_next;                  //  Next slot of cold_at
    bool draining;                  //  Leaving: runs what it has, takes nothing new
    bool terminating;               //  $TERM came while draining: end once drained
    int64_t drain_deadline;         //  Monotonic ms the drain ends by, whatever runs
    zactor_t *fetcher;              //  Layer fetch thread (--role worker only), or NULL
    zlistx_t *waiting;              //  waiting_t * cold starts whose layer is on its way
    zlistx_t *wanted;               //  Layer keys to fetch after the one in flight (char *)
    char *fetching;                 //  The layer key being fetched, or NULL
    zlistx_t *kinds;                //  kind_t * projects with spares of their own, at most --prewarm-projects
    uint64_t next_kind_id;          //  Last kind id used
} self_t;

static int s_refill_timer (reactor_t *loop, int timer_id, void *arg);
static int s_runner_readable (reactor_t *loop, zmq_pollitem_t *item, void *arg);
static void s_schedule_refill (self_t *self);
static void s_kind_preload (self_t *self, wenv_t *env);
static void s_kind_learn (self_t *self, wenv_t *env, cJSON *modules);
static void s_kind_preloaded (self_t *self, wenv_t *env);

//  --------------------------------------------------------------------------
//  The creator thread: makes sandboxes off the worker's loop.
//      zsock_send (creator, "ssiissi", "CREATE", token, memory_mb, network, layer_dir, mount,
//                  urgent);
//          answers "CREATED", token, sandbox_t * (NULL if it failed); mount is
//          "" or "SOURCE\tTARGET\tMODE" (MODE rw or ro): the project database's dir.
//          One not urgent (a spare) first says "CGROUP", token, NULL, cpu dir
//          (picture "ssps") once its cgroup is chosen, so that the worker can
//          make it urgent (sandbox_cpu_dir_urgent) when a call takes it; twice
//          when a zygote fails and it is made again without (another cgroup)
//      zsock_send (creator, "ssiiss", "DELAY", "", ms, when, "", "");     //  test hook: slow every
//          create by ms, before it (when 0) or once a spare's CGROUP is sent (1)
//      zsock_send (creator, "ssiiss", "STOP", "", 0, 0, "", "");      //  answers "STOPPED", "", NULL

//  What a spare's on_cgroup tells the worker
typedef struct {
    zsock_t *pipe;
    const char *token;
    int delay_ms;                   //  test hook: then waits this long
} cgroup_note_t;

static void
s_creator_cgroup (void *arg, const char *cpu_dir)
{
    cgroup_note_t *note = (cgroup_note_t *) arg;
    zsock_send (note->pipe, "ssps", "CGROUP", note->token, NULL, cpu_dir);
    if (note->delay_ms)
        zclock_sleep (note->delay_ms);
}

static void
s_creator_actor (zsock_t *pipe, void *args_)
{
    creator_args_t *args = (creator_args_t *) args_;
    int delay_ms = 0, cgroup_delay_ms = 0;
    actor_name_thread ("creator");
    sandbox_zygote_enable (args->config->zygote != 0);
    //  Every creator's zygote starts now, not at its first request: the
    //  second creator's first request comes in a burst of cold starts, and
    //  it would wait for a python's start (and classic clones meanwhile)
    sandbox_config_t kind;
    sandbox_config_init (&kind);
    kind.runtime_dir = args->config->runtime_dir;
    kind.python = args->config->python;
    sandbox_zygote_prepare (&kind);
    zsock_signal (pipe, 0);
    while (true) {
        char *command = NULL, *token = NULL, *layer_dir = NULL, *mount = NULL;
        int memory_mb = 0, network = 0, urgent = 0;
        if (zsock_recv (pipe, "ssiissi", &command, &token, &memory_mb, &network, &layer_dir, &mount,
                        &urgent)) {
            zstr_free (&command);
            zstr_free (&token);
            zstr_free (&layer_dir);
            zstr_free (&mount);
            break;                      //  Interrupted
        }
        bool stop = !command || streq (command, "$TERM");
        if (!stop && streq (command, "CREATE")) {
            sandbox_t *sandbox = NULL;
            if (!atomic_load (&args->stopping)) {
                if (delay_ms)
                    zclock_sleep (delay_ms);
                sandbox_config_t config;
                sandbox_config_init (&config);
                config.runtime_dir = args->config->runtime_dir;
                config.python = args->config->python;
                config.cgroup_name = args->config->cgroup_name;
                config.memory_mb = memory_mb;
                //  python's start is ours and runs at a whole CPU; the
                //  function's quota is set before its code is sent (s_env_load)
                config.cpus = SANDBOX_STARTUP_CPUS;
                config.network = network != 0;
                config.layer_dir = layer_dir && *layer_dir ? layer_dir : NULL;
                cgroup_note_t note = { pipe, token, cgroup_delay_ms };
                config.urgent = urgent != 0;
                if (!urgent) {
                    config.on_cgroup = s_creator_cgroup;
                    config.on_cgroup_arg = &note;
                }
                sandbox_mount_t extra = { .source = mount };
                char *tab = mount ? strchr (mount, '\t') : NULL;
                char *mode = tab ? strchr (tab + 1, '\t') : NULL;
                if (mode) {
                    *tab = *mode = 0;
                    extra.target = tab + 1;
                    extra.writable = streq (mode + 1, "rw");
                    config.mounts = &extra;
                    config.mount_count = 1;
                }
                sandbox = sandbox_new (&config);
            }
            zsock_send (pipe, "ssp", "CREATED", token, sandbox);
        }
        else
        if (!stop && streq (command, "DELAY")) {
            if (network)
                cgroup_delay_ms = memory_mb;
            else
                delay_ms = memory_mb;
        }
        else
        if (!stop && streq (command, "STOP"))
            zsock_send (pipe, "ssp", "STOPPED", "", NULL);
        zstr_free (&command);
        zstr_free (&token);
        zstr_free (&layer_dir);
        zstr_free (&mount);
        if (stop)
            break;
    }
    sandbox_zygote_stop ();     //  its sandboxes are gone or going with this thread
}

//  --------------------------------------------------------------------------
//  Sending to assignment, checked

static void
s_send_done (self_t *self, const char *env_id, const char *job_id, const char *result, const char *state)
{
    if (msg_send_done (self->backend, NULL, env_id, job_id, result, state, 0))
        zsys_warning ("worker %s: could not send DONE for job %s (%s); assignment's deadline will answer "
                      "its caller", self->worker_id, job_id, zmq_strerror (zmq_errno ()));
}

//  A run that ended (warm or dead): its RESULT goes to gateway straight when
//  gateway lives in this process and our link to assignment is inproc, one
//  hop and one thread's wake-up fewer than through assignment. The DONE goes
//  first, so that assignment can read it (inproc: it is in its queue once
//  sent) before the RUN that gateway's answer may lead to, which keeps a
//  client's next call on this warm environment. Otherwise, or when the
//  results socket cannot be made, the RESULT rides in the DONE as before.
static void
s_send_result (self_t *self, const char *env_id, const char *job_id, const char *result, const char *state)
{
    if (!*job_id) {         //  No run to answer: assignment sorts it out
        s_send_done (self, env_id, job_id, result, state);
        return;
    }
    if (!self->results
    &&  endpoints_results_bound (self->endpoints) && !endpoints_is_tcp (self->endpoints, "worker")) {
        self->results = zsock_new (ZMQ_PUSH);
        if (self->results) {
            //  An answer is never refused while its request was taken, and
            //  a send never blocks the loop (as every endpoints socket)
            zsock_set_sndhwm (self->results, ENDPOINTS_ANSWER_HWM);
            zsock_set_sndtimeo (self->results, 0);
            zsock_set_linger (self->results, 0);
            if (zsock_connect (self->results, "%s", endpoints_results (self->endpoints)))
                zsock_destroy (&self->results);
        }
    }
    if (!self->results || !endpoints_results_bound (self->endpoints)) {
        s_send_done (self, env_id, job_id, result, state);
        return;
    }
    if (msg_send_done (self->backend, NULL, env_id, job_id, "{}", state, 1))
        zsys_warning ("worker %s: could not send DONE for job %s (%s); assignment's deadline will answer "
                      "its caller", self->worker_id, job_id, zmq_strerror (zmq_errno ()));
    else
    if (msg_send_result (self->results, NULL, job_id, result))
        //  gateway's queue is full or it is gone: its own deadline answers
        //  the client (504, recorded as lost); nothing here can do better
        zsys_warning ("worker %s: could not send RESULT for job %s to gateway (%s); dropped", self->worker_id,
                      job_id, zmq_strerror (zmq_errno ()));
}

static void
s_send_gone (self_t *self, const char *env_id, const char *why)
{
    if (msg_send_gone (self->backend, NULL, env_id, why))
        zsys_warning ("worker %s: could not send GONE for environment %s (%s)", self->worker_id, env_id,
                      zmq_strerror (zmq_errno ()));
}

//  --------------------------------------------------------------------------
//  Environments

//  The kind whose spare env is, or NULL
static kind_t *
s_kind_spare_of (self_t *self, wenv_t *env)
{
    for (kind_t *kind = self->kinds ? (kind_t *) zlistx_first (self->kinds) : NULL; kind;
         kind = (kind_t *) zlistx_next (self->kinds))
        if (kind->spare == env)
            return kind;
    return NULL;
}

static kind_t *
s_kind_find (self_t *self, uint64_t id)
{
    for (kind_t *kind = id && self->kinds ? (kind_t *) zlistx_first (self->kinds) : NULL; kind;
         kind = (kind_t *) zlistx_next (self->kinds))
        if (kind->id == id)
            return kind;
    return NULL;
}

static void
s_env_free (self_t *self, wenv_t *env)
{
    kind_t *kind = s_kind_spare_of (self, env);
    if (kind) {
        kind->spare = NULL;
        if (env->state == WENV_PRELOADING || env->preload_vars) {
            //  Killed by its deadline, out of memory, or the import (or a
            //  thread it left) ended the runner: not safe to repeat. Spares
            //  ended on purpose are taken off their kind first
            zsys_warning ("worker %s: a project's pre-started sandbox ended while importing its modules or "
                          "after; its next ones import nothing before their function", self->worker_id);
            kind->preload_off = true;
        }
    }
    if (*env->token) {
        zhashx_delete (self->creating, env->token);
        void *handle = zlistx_find (self->spare_creating, env);
        if (handle)
            zlistx_delete (self->spare_creating, handle);
    }
    if (env->sandbox) {
        int fd = sandbox_fd (env->sandbox);
        if (fd >= 0 && (size_t) fd < self->by_fd_size && self->by_fd [fd] == env)
            self->by_fd [fd] = NULL;
        if (env->registered) {
            zmq_pollitem_t item = { NULL, fd, ZMQ_POLLIN, 0 };
            reactor_poller_end (self->loop, &item);
        }
    }
    if (env->deadline_timer >= 0)
        reactor_timer_end (self->loop, env->deadline_timer);
    if (env->end_timer >= 0)
        reactor_timer_end (self->loop, env->end_timer);
    free (env->end_why);
    free (env->cgroup_dir);
    sandbox_destroy (&env->sandbox);
    proto_reader_destroy (&env->reader);
    free (env->job_id);
    free (env->out);
    free (env->pending_load);
    cJSON_Delete (env->pending_input);
    cJSON_Delete (env->preload_vars);
    if (env->mount_fd >= 0)
        close (env->mount_fd);
    free (env->database_dir);
    free (env);
}

//  Writing to runners never blocks this loop. A runner that does not read
//  (stopped with SIGSTOP, or busy in a thread of its own) would otherwise
//  hold the worker, and every other function on it, for as long as a
//  blocking write waits. So a frame goes out with a non-blocking send; what
//  the socket does not take now waits in the environment's `out`, and the
//  fd is polled for POLLOUT until it is gone. The run's deadline still
//  bounds it: a runner that never reads is killed at its timeout like one
//  that never answers.

//  Poll env's fd for POLLOUT as well as POLLIN, or stop
static void
s_env_poll_out (self_t *self, wenv_t *env, bool on)
{
    if (env->polling_out == on || !env->sandbox)
        return;
    zmq_pollitem_t item = { NULL, sandbox_fd (env->sandbox), ZMQ_POLLIN, 0 };
    if (env->registered)
        reactor_poller_end (self->loop, &item);
    if (on)
        item.events |= ZMQ_POLLOUT;
    env->registered = reactor_poller (self->loop, &item, s_runner_readable, self) == 0;
    env->polling_out = on;
}

//  Write what waits in out while the socket takes it; false if the runner
//  is gone (its socket refuses writes)
static bool
s_env_flush (self_t *self, wenv_t *env)
{
    int fd = sandbox_fd (env->sandbox);
    while (env->out_sent < env->out_size) {
        ssize_t done = send (fd, env->out + env->out_sent, env->out_size - env->out_sent,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
        if (done < 0 && errno == EINTR)
            continue;
        if (done < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;            //  The rest when POLLOUT says so
        if (done < 0)
            return false;
        env->out_sent += (size_t) done;
    }
    zstr_free (&env->out);
    env->out_size = env->out_sent = 0;
    s_env_poll_out (self, env, false);
    return true;
}

//  Send one frame to the runner (never blocking: see above); false if the
//  runner cannot take it. The text is ours (printed by cJSON here, the
//  input as gateway wrote it), so it is not parsed again.
static bool
s_env_send (self_t *self, wenv_t *env, const char *json)
{
    size_t size = strlen (json);
    if (size > UINT32_MAX)
        return false;
    unsigned char header [4] = {
        (unsigned char) (size >> 24), (unsigned char) (size >> 16),
        (unsigned char) (size >> 8), (unsigned char) size
    };
    int fd = sandbox_fd (env->sandbox);
    size_t sent = 0;
    if (!env->out) {
        struct iovec parts [2] = {
            { .iov_base = header, .iov_len = 4 },
            { .iov_base = (void *) json, .iov_len = size }
        };
        struct msghdr message = { .msg_iov = parts, .msg_iovlen = 2 };
        ssize_t done;
        do
            done = sendmsg (fd, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
        while (done < 0 && errno == EINTR);
        if (done < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return false;
        sent = done > 0 ? (size_t) done : 0;
        if (sent == size + 4)
            return true;
    }
    //  Keep what the socket did not take, behind what already waits
    size_t waiting = env->out ? env->out_size - env->out_sent : 0;
    char *buffer = (char *) malloc (waiting + size + 4 - sent);
    if (!buffer)
        return false;
    if (waiting)
        memcpy (buffer, env->out + env->out_sent, waiting);
    for (size_t i = sent; i < 4; i++)
        buffer [waiting++] = (char) header [i];
    size_t from = sent > 4 ? sent - 4 : 0;
    memcpy (buffer + waiting, json + from, size - from);
    free (env->out);
    env->out = buffer;
    env->out_size = waiting + size - from;
    env->out_sent = 0;
    s_env_poll_out (self, env, true);
    return true;
}

static void
s_done (self_t *self, wenv_t *env, cJSON *result, bool warm)
{
    int64_t duration_us = util_monotonic_us () - env->started_us;
    cJSON_AddNumberToObject (result, "duration_us", (double) duration_us);
    cJSON_AddBoolToObject (result, "cold_start", env->cold);
    //  A cold start's share of duration_us: the sandbox (or the wait for a
    //  spare), python and the runner's start, and the module-level code.
    //  A run that never reached its handler spent it all there
    if (env->cold)
        cJSON_AddNumberToObject (result, "init_us", (double) (env->init_us ? env->init_us : duration_us));
    int64_t peak = env->sandbox ? sandbox_memory_peak (env->sandbox) : 0;
    cJSON_AddNumberToObject (result, "peak_memory_kb", peak > 0 ? (double) (peak / 1024) : 0);
    char *text = cJSON_PrintUnformatted (result);
    s_send_result (self, env->id, env->job_id ? env->job_id : "", text, warm ? "warm" : "dead");
    free (text);
    zstr_free (&env->job_id);
    env->cold = false;
    env->reported = !warm;
    if (env->deadline_timer >= 0) {
        reactor_timer_end (self->loop, env->deadline_timer);
        env->deadline_timer = -1;
    }
}

static cJSON *
s_error_result (const char *status, const char *error, const char *logs)
{
    cJSON *result = cJSON_CreateObject ();
    cJSON_AddStringToObject (result, "status", status);
    cJSON_AddStringToObject (result, "error", error);
    if (logs)
        cJSON_AddStringToObject (result, "logs", logs);
    return result;
}

//  The one place an environment ends, whatever the cause
static void
s_env_end (self_t *self, wenv_t *env, const char *why)
{
    int wait_status = -1;
    bool oom = false;
    if (env->end_timer >= 0) {
        //  Ended (KILL, a second EXEC) while s_env_end_soon waited for it
        reactor_timer_end (self->loop, env->end_timer);
        env->end_timer = -1;
        if (!why)
            why = env->end_why;
    }
    if (env->sandbox) {
        sandbox_kill (env->sandbox);
        sandbox_reap (env->sandbox, true);
        wait_status = sandbox_exit_status (env->sandbox);
        oom = sandbox_oom_killed (env->sandbox);
    }
    if (env->job_id) {
        char error [256];
        const char *status = "error";
        if (env->timed_out && (env->state == WENV_LOADING || env->state == WENV_PRELOADING)) {
            status = "timeout";
            snprintf (error, sizeof error, "Function timed out: its module-level code did not finish loading within "
                      "%g s (its timeout plus %d s for start-up)", env->timeout_ms / 1000.0, LOAD_ALLOWANCE_MS / 1000);
        }
        else
        if (env->timed_out) {
            status = "timeout";
            snprintf (error, sizeof error, "Function timed out after %g s", env->timeout_ms / 1000.0);
        }
        else
        if (oom)
            snprintf (error, sizeof error, "Function ran out of memory: it hit its memory limit of %d MB",
                      env->memory_mb);
        else
        if (why)
            snprintf (error, sizeof error, "%s", why);
        else
        if (wait_status >= 0 && WIFEXITED (wait_status))
            snprintf (error, sizeof error, "Function's process exited with code %d before returning a result",
                      WEXITSTATUS (wait_status));
        else
        if (wait_status >= 0 && WIFSIGNALED (wait_status))
            snprintf (error, sizeof error, "Function's process was killed by signal %d before returning a result",
                      WTERMSIG (wait_status));
        else
            snprintf (error, sizeof error, "Function's process ended before returning a result");
        cJSON *result = s_error_result (status, error, NULL);
        s_done (self, env, result, false);
        cJSON_Delete (result);
    }
    else
    if (*env->id && !env->reported)
        s_send_gone (self, env->id, why ? why : "ended");
    if (*env->id)
        zhashx_delete (self->envs, env->id);
    else {
        void *handle = zlistx_find (self->spare, env);
        if (handle)
            zlistx_delete (self->spare, handle);
    }
    s_env_free (self, env);
}

//  Looks again, every 5 ms, for a runner that ended by itself
static int
s_end_timer (reactor_t *loop, int timer_id, void *arg)
{
    wenv_t *env = (wenv_t *) arg;
    if (sandbox_reap (env->sandbox, false) || --env->end_looks <= 0) {
        reactor_timer_end (loop, timer_id);
        env->end_timer = -1;
        char *why = env->end_why;
        env->end_why = NULL;
        s_env_end (env->owner, env, why);
        free (why);
    }
    return 0;
}

//  The runner's end of the protocol closed or broke: it ended by itself (or
//  is ending). Its sandbox goes down within moments: look for that for up to
//  100 ms, on a timer so the loop goes on meanwhile, so that its own exit
//  status (or the OOM kill) is what we report; then s_env_end makes sure.
static void
s_env_end_soon (self_t *self, wenv_t *env, const char *why)
{
    if (!env->sandbox || !env->job_id || env->timed_out || env->end_timer >= 0
    ||  sandbox_reap (env->sandbox, false)) {
        s_env_end (self, env, why);
        return;
    }
    env->owner = self;
    env->end_looks = 20;
    env->end_why = why ? strdup (why) : NULL;
    if (env->registered) {
        //  Its fd has nothing more to say (EOF would end it again)
        zmq_pollitem_t item = { NULL, sandbox_fd (env->sandbox), ZMQ_POLLIN, 0 };
        reactor_poller_end (self->loop, &item);
        env->registered = false;
    }
    env->end_timer = reactor_timer (self->loop, 5, 0, s_end_timer, env);
    if (env->end_timer < 0) {
        zstr_free (&env->end_why);
        s_env_end (self, env, why);
    }
}

//  --------------------------------------------------------------------------
//  Runner frames

static void
s_send_invoke (self_t *self, wenv_t *env)
{
    cJSON *invoke = cJSON_CreateObject ();
    cJSON_AddStringToObject (invoke, "type", "invoke");
    cJSON_AddStringToObject (invoke, "invocation_id", env->job_id);
    cJSON_AddNumberToObject (invoke, "timeout_ms", env->timeout_ms);
    cJSON_AddItemToObject (invoke, "input", env->pending_input ? env->pending_input : cJSON_CreateObject ());
    env->pending_input = NULL;
    if (env->cold)
        env->init_us = util_monotonic_us () - env->started_us;
    char *frame = cJSON_PrintUnformatted (invoke);
    cJSON_Delete (invoke);
    env->state = WENV_BUSY;
    if (!s_env_send (self, env, frame))
        s_env_end (self, env, "Function's runner stopped taking input");
    free (frame);
}

//  Before code that is not ours runs in env (a load's module-level code,
//  a project spare's preloads): the function's CPU quota (the runner
//  started at SANDBOX_STARTUP_CPUS) and the default CPU weight, written
//  whether or not it was made urgent (a cgroup's weight is written by name
//  too, s_env_urgent). 0, or -1 if either could not be set.
static int
s_env_limit_for_code (wenv_t *env)
{
    env->urgent = false;
    if (sandbox_set_cpus (env->sandbox, SANDBOX_DEFAULT_CPUS)
    ||  sandbox_set_urgent (env->sandbox, false))
        return -1;
    return 0;
}

//  Send the load frame, at the function's limits (s_env_limit_for_code).
//  False if the environment was ended.
static bool
s_env_load (self_t *self, wenv_t *env, const char *load_text)
{
    env->state = WENV_LOADING;
    if (s_env_limit_for_code (env)) {
        s_env_end (self, env, "Could not set the CPU limit of the function's sandbox (see the server log)");
        return false;
    }
    if (!s_env_send (self, env, load_text)) {
        s_env_end (self, env, "Function's runner stopped taking input");
        return false;
    }
    return true;
}

static int
s_deadline_timer (reactor_t *loop, int timer_id, void *arg)
{
    wenv_t *env = (wenv_t *) arg;
    env->deadline_timer = -1;           //  Single-shot: the reactor ends it
    env->timed_out = true;
    sandbox_kill (env->sandbox);        //  EOF on its fd ends the run as a timeout
    return 0;
}

static void
s_start_deadline (self_t *self, wenv_t *env, int ms)
{
    if (env->deadline_timer >= 0)
        reactor_timer_end (self->loop, env->deadline_timer);
    env->deadline_timer = reactor_timer (self->loop, (size_t) ms, 1, s_deadline_timer, env);
}

static void
s_handle_runner_message (self_t *self, wenv_t *env, cJSON *msg)
{
    const char *type = cJSON_GetStringValue (cJSON_GetObjectItem (msg, "type"));
    if (!type)
        type = "";
    if (streq (type, "ready")) {
        if (env->state == WENV_STARTING) {
            env->state = WENV_IDLE;
            if (env->pending_load) {
                char *load_text = env->pending_load;
                env->pending_load = NULL;
                s_env_load (self, env, load_text);
                free (load_text);
            }
            else
            if (s_kind_spare_of (self, env))
                s_kind_preload (self, env);
        }
    }
    else
    if (streq (type, "preloaded") && env->state == WENV_PRELOADING)
        s_kind_preloaded (self, env);
    else
    if (streq (type, "loaded") && env->state == WENV_LOADING && env->job_id) {
        if (env->kind_id)
            s_kind_learn (self, env, cJSON_GetObjectItem (msg, "modules"));
        s_start_deadline (self, env, env->timeout_ms);
        s_send_invoke (self, env);
    }
    else
    if (streq (type, "load_error") && env->job_id) {
        const char *error = cJSON_GetStringValue (cJSON_GetObjectItem (msg, "error"));
        const char *error_type = cJSON_GetStringValue (cJSON_GetObjectItem (msg, "error_type"));
        const char *traceback = cJSON_GetStringValue (cJSON_GetObjectItem (msg, "traceback"));
        const char *logs = cJSON_GetStringValue (cJSON_GetObjectItem (msg, "logs"));
        char *text = zsys_sprintf ("Function failed to load: %s%s%s", error_type ? error_type : "",
                                   error_type ? ": " : "", error ? error : "unknown error");
        char *all_logs = zsys_sprintf ("%s%s", logs ? logs : "", traceback ? traceback : "");
        cJSON *result = s_error_result ("error", text, all_logs);
        s_done (self, env, result, false);
        cJSON_Delete (result);
        zstr_free (&text);
        zstr_free (&all_logs);
        s_env_end (self, env, NULL);
    }
    else
    if (streq (type, "result") && env->state == WENV_BUSY && env->job_id) {
        bool ok = cJSON_IsTrue (cJSON_GetObjectItem (msg, "ok"));
        cJSON *result = cJSON_CreateObject ();
        cJSON_AddStringToObject (result, "status", ok ? "success" : "error");
        const char *logs = cJSON_GetStringValue (cJSON_GetObjectItem (msg, "logs"));
        if (ok) {
            cJSON *output = cJSON_DetachItemFromObjectCaseSensitive (msg, "output");
            cJSON_AddItemToObject (result, "output", output ? output : cJSON_CreateNull ());
            if (logs)
                cJSON_AddStringToObject (result, "logs", logs);
        }
        else {
            const char *error = cJSON_GetStringValue (cJSON_GetObjectItem (msg, "error"));
            const char *error_type = cJSON_GetStringValue (cJSON_GetObjectItem (msg, "error_type"));
            const char *traceback = cJSON_GetStringValue (cJSON_GetObjectItem (msg, "traceback"));
            char *text = zsys_sprintf ("%s%s%s", error_type ? error_type : "", error_type ? ": " : "",
                                       error ? error : "unknown error");
            cJSON_AddStringToObject (result, "error", text);
            zstr_free (&text);
            if (error_type)
                cJSON_AddStringToObject (result, "error_type", error_type);
            if (traceback)
                cJSON_AddStringToObject (result, "traceback", traceback);
            char *all_logs = zsys_sprintf ("%s%s", logs ? logs : "", traceback ? traceback : "");
            cJSON_AddStringToObject (result, "logs", all_logs);
            zstr_free (&all_logs);
        }
        if (cJSON_IsTrue (cJSON_GetObjectItem (msg, "logs_truncated")))
            cJSON_AddBoolToObject (result, "logs_truncated", true);
        env->state = WENV_IDLE;
        bool keep = self->config->reuse != 0;
        s_done (self, env, result, keep);
        cJSON_Delete (result);
        if (!keep)
            s_env_end (self, env, NULL);
    }
    else
    if (streq (type, "error")) {
        const char *error = cJSON_GetStringValue (cJSON_GetObjectItem (msg, "error"));
        zsys_warning ("worker: runner reported: %s", error ? error : "?");
        s_env_end (self, env, "Function's runner failed");
    }
    //  Anything else, or a message out of turn, is ignored: the runner is
    //  untrusted, and the deadline still bounds the run
}

//  True while env, known by the id it had, is still one of ours: a message
//  handler may have ended (freed) it, so env itself is not dereferenced
static bool
s_env_alive (self_t *self, wenv_t *env, const char *id)
{
    if (*id)
        return zhashx_lookup (self->envs, id) == env;
    return zlistx_find (self->spare, env) != NULL || s_kind_spare_of (self, env) != NULL;
}

static int
s_runner_readable (reactor_t *loop, zmq_pollitem_t *item, void *arg)
{
    //  By fd, not by a pointer given to the reactor: an environment that
    //  ended took its poller with it (the reactor never calls an ended
    //  one), so this only guards against an fd no environment holds
    self_t *self = (self_t *) arg;
    wenv_t *env = item->fd >= 0 && (size_t) item->fd < self->by_fd_size ? self->by_fd [item->fd] : NULL;
    if (!env) {
        reactor_poller_end (loop, item);
        return 0;
    }
    if (env->end_timer >= 0)
        return 0;                       //  Ending (s_env_end_soon): nothing more from it
    if ((item->revents & ZMQ_POLLOUT) && env->out && !s_env_flush (self, env)) {
        s_env_end (self, env, env->timed_out ? NULL : "Function's runner stopped taking input");
        return 0;
    }
    if (!(item->revents & (ZMQ_POLLIN | ZMQ_POLLERR)))
        return 0;
    //  A runner speaks only when spoken to: with nothing asked of it (a
    //  spare, or a warm environment between calls) what it sends is the
    //  function's own doing (a thread it left writing to fd 3), or its end.
    //  The environment ends, unread: a frame is not parsed for nothing
    if (env->state == WENV_IDLE && !env->job_id) {
        s_env_end (self, env, NULL);
        return 0;
    }
    int rc = proto_reader_read_fd (env->reader, item->fd);
    int error = errno;
    cJSON *msg;
    while ((msg = proto_reader_next (env->reader))) {
        char id [UTIL_ID_SIZE];
        snprintf (id, sizeof id, "%s", env->id);
        s_handle_runner_message (self, env, msg);
        cJSON_Delete (msg);
        if (!s_env_alive (self, env, id) || env->end_timer >= 0)
            return 0;
    }
    if (rc == 0)
        s_env_end_soon (self, env, NULL);
    else
    if (rc < 0 && error != EAGAIN && error != EWOULDBLOCK && error != EINTR) {
        char broke [300];
        snprintf (broke, sizeof broke, "Function's runner broke the protocol: %s",
                  proto_reader_error (env->reader) ?: "bad frame");
        s_env_end_soon (self, env, error == EPROTO && !env->timed_out ? broke : NULL);
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Creating environments (through the creator thread)

//  The creator with the fewest requests waiting
static int
s_creator_pick (self_t *self)
{
    int best = 0;
    for (int index = 1; index < CREATORS; index++)
        if (self->creator_load [index] < self->creator_load [best])
            best = index;
    return best;
}

//  A new environment whose sandbox a creator is asked for; NULL if the
//  request cannot be made. An urgent one (a call waits for it) is made
//  ahead of the spares being made beside it (s_env_urgent), and of the
//  warm sandboxes running calls, for the time it takes.
static wenv_t *
s_env_new (self_t *self, int memory_mb, bool network, const char *layer_dir, const char *mount,
           bool urgent)
{
    if (!self->sandboxes_ok)
        return NULL;
    wenv_t *env = (wenv_t *) zmalloc (sizeof (wenv_t));
    env->mount_fd = -1;
    env->state = WENV_CREATING;
    env->deadline_timer = -1;
    env->end_timer = -1;
    env->memory_mb = memory_mb;
    env->urgent = urgent;
    env->creator = s_creator_pick (self);
    snprintf (env->token, sizeof env->token, "%" PRIu64, ++self->next_token);
    int rc = zsock_send (self->creators [env->creator], "ssiissi", "CREATE", env->token, memory_mb,
                         network ? 1 : 0, layer_dir ? layer_dir : "", mount ? mount : "", urgent ? 1 : 0);
    reactor_touched (self->loop, zactor_sock (self->creators [env->creator]));
    if (rc) {
        zsys_error ("worker %s: cannot ask a creator thread for a sandbox", self->worker_id);
        free (env);
        return NULL;
    }
    self->creator_load [env->creator]++;
    zhashx_insert (self->creating, env->token, env);
    return env;
}

//  The creator made (or failed to make) the sandbox for env
static void
s_env_attach (self_t *self, wenv_t *env, sandbox_t *sandbox)
{
    env->sandbox = sandbox;
    env->reader = proto_reader_new (0);
    env->state = WENV_STARTING;
    if (env->resize_mb && sandbox_set_memory (sandbox, env->resize_mb) == 0)
        env->memory_mb = env->resize_mb;
    int fd = sandbox_fd (sandbox);
    if ((size_t) fd >= self->by_fd_size) {
        size_t size = (size_t) fd * 2 + 16;
        self->by_fd = (wenv_t **) realloc (self->by_fd, size * sizeof (wenv_t *));
        memset (self->by_fd + self->by_fd_size, 0, (size - self->by_fd_size) * sizeof (wenv_t *));
        self->by_fd_size = size;
    }
    self->by_fd [fd] = env;
    zmq_pollitem_t item = { NULL, fd, ZMQ_POLLIN, 0 };
    if (reactor_poller (self->loop, &item, s_runner_readable, self) == 0)
        env->registered = true;
}

//  A call now waits for this spare: while it is being made (or its runner
//  starts) it gets ten times the CPU of each spare being made beside it,
//  so that the call does not wait for theirs too. One whose cgroup is not
//  known yet is made urgent when it is (s_creator_readable). The weight
//  goes back to the default before the function's code is sent (s_env_load).
static void
s_env_urgent (wenv_t *env)
{
    if (env->urgent || (env->state != WENV_CREATING && env->state != WENV_STARTING))
        return;
    env->urgent = true;
    if (env->sandbox)
        sandbox_set_urgent (env->sandbox, true);
    else
    if (env->cgroup_dir)
        sandbox_cpu_dir_urgent (env->cgroup_dir);
}

static int
s_creator_readable (reactor_t *loop, zsock_t *reader, void *arg)
{
    self_t *self = (self_t *) arg;
    char *command = NULL, *token = NULL, *cpu_dir = NULL;
    void *pointer = NULL;
    if (zsock_recv (reader, "ssps", &command, &token, &pointer, &cpu_dir))
        return 0;
    wenv_t *env = token ? (wenv_t *) zhashx_lookup (self->creating, token) : NULL;
    if (command && streq (command, "CGROUP")) {
        //  A spare's cgroup, chosen before its processes start: taken by
        //  a call meanwhile, it is made urgent now
        if (env && cpu_dir && !env->sandbox) {
            free (env->cgroup_dir);
            env->cgroup_dir = cpu_dir;
            cpu_dir = NULL;
            if (env->urgent)
                sandbox_cpu_dir_urgent (env->cgroup_dir);
        }
        zstr_free (&command);
        zstr_free (&token);
        zstr_free (&cpu_dir);
        return 0;
    }
    zstr_free (&cpu_dir);
    for (int index = 0; index < CREATORS; index++)
        if (zactor_sock (self->creators [index]) == reader && self->creator_load [index])
            self->creator_load [index]--;
    sandbox_t *sandbox = (sandbox_t *) pointer;
    if (!command || strneq (command, "CREATED") || !env) {
        //  Ended (KILL, re-registration) while its sandbox was being made
        sandbox_destroy (&sandbox);
        zstr_free (&command);
        zstr_free (&token);
        return 0;
    }
    zstr_free (&command);
    zstr_free (&token);
    zhashx_delete (self->creating, env->token);
    *env->token = 0;
    zstr_free (&env->cgroup_dir);       //  the sandbox names it from now on
    bool spare = !*env->id;
    void *handle = zlistx_find (self->spare_creating, env);
    if (handle)
        zlistx_delete (self->spare_creating, handle);
    if (!sandbox) {
        if (spare) {
            zsys_warning ("worker %s: could not pre-start a sandbox (see above)", self->worker_id);
            kind_t *kind = s_kind_spare_of (self, env);
            if (kind)
                kind->failures++;
            s_env_free (self, env);
        }
        else
            s_env_end (self, env, "Could not create a sandbox for the function (see the server log)");
        return 0;
    }
    self->zygote_up = sandbox_zygote_made (sandbox);
    s_env_attach (self, env, sandbox);
    if (env->resize_mb && env->memory_mb != env->resize_mb) {
        s_env_end (self, env, "Could not set the memory limit of a pre-started sandbox (see the server log)");
        return 0;
    }
    kind_t *kind = spare ? s_kind_spare_of (self, env) : NULL;
    if (kind)
        kind->failures = 0;
    else
    if (spare)
        zlistx_add_end (self->spare, env);
    else
        //  The load frame waits for the runner's ready; the bound covers
        //  loading the code and the first run
        s_start_deadline (self, env, env->timeout_ms + LOAD_ALLOWANCE_MS);
    //  A creator is free again: spares the pool still lacks (a refill that
    //  found every creator busy making a cold start's sandbox) are asked now
    s_schedule_refill (self);
    return 0;
}

//  How many spares to keep: --prewarm, and with zygotes up (the last
//  sandbox made came from one: a spare costs a fork, not a python start;
//  a missing or failing zygote means python starts again) one more per cold start of the last 2 s that
//  could have taken one but found none up, up to POOL_BURST_MAX, so that a
//  burst's later calls find theirs made while its first ones ran (and a
//  pool that keeps up does not grow)
static long
s_pool_target (self_t *self)
{
    long target = self->config->prewarm;
    if (self->config->zygote && self->zygote_up && target > 0) {
        int64_t now = zclock_mono ();
        for (int index = 0; index < POOL_BURST_MAX; index++)
            target += self->cold_at [index] && now - self->cold_at [index] < POOL_BURST_MS;
    }
    return target;
}

//  Spares past the target, made for a burst that is over, are let go
static void s_kinds_trim (self_t *self);

static void
s_pool_trim (self_t *self)
{
    s_kinds_trim (self);
    long target = s_pool_target (self);
    while ((long) zlistx_size (self->spare) > target)
        s_env_end (self, (wenv_t *) zlistx_first (self->spare), NULL);     //  (it leaves the list)
}

static bool s_kinds_short (self_t *self);
static void s_kinds_refill (self_t *self);

static void
s_schedule_refill (self_t *self)
{
    if (!self->refill_scheduled
    &&  ((long) (zlistx_size (self->spare) + zlistx_size (self->spare_creating)) < s_pool_target (self)
         || s_kinds_short (self))) {
        self->refill_scheduled = true;
        reactor_timer (self->loop, 1, 1, s_refill_timer, self);
    }
}

static int
s_refill_timer (reactor_t *loop, int timer_id, void *arg)
{
    self_t *self = (self_t *) arg;
    self->refill_scheduled = false;
    //  Spares go only to idle creators; without zygotes one creator stays
    //  free for a cold start that cannot use a spare (a python start takes
    //  long); the rest are asked for as these come up
    size_t creating_max = self->config->zygote? CREATORS: CREATORS - 1;
    while ((long) (zlistx_size (self->spare) + zlistx_size (self->spare_creating)) < s_pool_target (self)
    &&     zlistx_size (self->spare_creating) < creating_max
    &&     self->creator_load [s_creator_pick (self)] == 0) {
        wenv_t *env = s_env_new (self, SANDBOX_DEFAULT_MEMORY_MB, false, NULL, NULL, false);
        if (!env)
            break;
        zlistx_add_end (self->spare_creating, env);
    }
    s_kinds_refill (self);
    return 0;
}

//  --------------------------------------------------------------------------
//  Project spares: heavy imports once
//
//  The plain spares serve functions with no layer, database or network. A
//  project's functions with any of these (its "kind": layer, database mount,
//  network) get spares of their own: each of the --prewarm-projects
//  projects that had a cold start here in the last KIND_IDLE_MS keeps one.
//  A function's load reports the modules it imported (its layer's and the
//  interpreter's, in import order; runtime/runner.py s_module_names), the
//  kind keeps their union, and its spare imports them ("preload") before a
//  function arrives. The import runs inside that spare, a full sandbox of
//  the project, at the function's CPU quota and within a deadline: no
//  package code runs outside a sandbox, and a spare serves one function
//  only, so no module state passes from one function to another. What a
//  load reports is trusted only for the project that reported it (the kind
//  is keyed by project).
//
//  A package may read environment variables at import. A preload runs with
//  the project's variables (and database file cap) as its last cold start
//  had them; the variables are the project's, so a spare goes only to a
//  cold start with exactly the same ones, and one whose variables are out
//  of date is let go and made again. What module-level code set in the
//  environment is kept for the load. A spare still importing is not given
//  out, nor one whose imports were learned from functions with a larger
//  memory limit than the cold start's; the spare is made with the largest
//  limit seen. A spare that ends while importing or after (deadline,
//  memory, a crash, a thread it left) turns preloading off for the project;
//  a module that raises is left to the function's own load.

static void
s_kind_destroy (self_t *self, kind_t **kind_p)
{
    kind_t *kind = *kind_p;
    if (!kind)
        return;
    wenv_t *spare = kind->spare;
    kind->spare = NULL;
    if (spare)
        s_env_end (self, spare, NULL);
    free (kind->key);
    free (kind->layer_dir);
    free (kind->mount);
    free (kind->mount_source);
    cJSON_Delete (kind->vars);
    cJSON_Delete (kind->modules);
    zhashx_destroy (&kind->module_set);
    free (kind);
    *kind_p = NULL;
}

//  The kind of a cold start with a layer, a database mount or a network, made
//  if new (the least recently used one goes past --prewarm-projects); NULL
//  when the function has no project or project spares are off
static kind_t *
s_kind_for (self_t *self, cJSON *context, const char *layer_dir, const char *mount, bool network, int memory_mb)
{
    const char *project = cJSON_GetStringValue (cJSON_GetObjectItem (context, "project_id"));
    if (self->config->prewarm_projects <= 0 || !project || !*project || self->draining)
        return NULL;
    char *key = zsys_sprintf ("%s\t%s\t%s\t%d", project, layer_dir ? layer_dir : "", mount ? mount : "", network);
    kind_t *kind = NULL;
    for (kind = (kind_t *) zlistx_first (self->kinds); kind; kind = (kind_t *) zlistx_next (self->kinds))
        if (streq (kind->key, key))
            break;
    if (kind) {
        zstr_free (&key);
        zlistx_move_end (self->kinds, zlistx_cursor (self->kinds));
    }
    else {
        while ((long) zlistx_size (self->kinds) >= self->config->prewarm_projects) {
            kind_t *oldest = (kind_t *) zlistx_first (self->kinds);
            zlistx_delete (self->kinds, zlistx_cursor (self->kinds));
            s_kind_destroy (self, &oldest);
        }
        kind = (kind_t *) zmalloc (sizeof (kind_t));
        kind->id = ++self->next_kind_id;
        kind->key = key;
        kind->layer_dir = layer_dir ? strdup (layer_dir) : NULL;
        kind->mount = mount ? strdup (mount) : NULL;
        kind->mount_source = mount ? strndup (mount, strcspn (mount, "\t")) : NULL;
        kind->network = network;
        kind->modules = cJSON_CreateArray ();
        kind->module_set = zhashx_new ();
        zlistx_add_end (self->kinds, kind);
    }
    //  Its spare is made with the largest limit seen (lowered when taken),
    //  so that a small function does not make its imports run out of memory
    if (memory_mb > kind->memory_mb)
        kind->memory_mb = memory_mb;
    double file_limit_mb = cJSON_GetNumberValue (cJSON_GetObjectItem (context, "file_limit_mb"));
    kind->file_limit_mb = !isnan (file_limit_mb) && file_limit_mb >= 1 && file_limit_mb <= 1 << 20 ? (int) file_limit_mb : 0;
    kind->used_at = zclock_mono ();
    cJSON *vars = cJSON_GetObjectItem (context, "env");
    cJSON_Delete (kind->vars);
    kind->vars = cJSON_IsObject (vars) ? cJSON_Duplicate (vars, true) : cJSON_CreateObject ();
    return kind;
}

//  True if env's preloads ran with these variables. They are the project's
//  (every function of it has the same), so the whole set is compared: a
//  package may read them from C (getenv) as well as from os.environ
static bool
s_kind_vars_match (wenv_t *env, cJSON *vars)
{
    return !env->preload_vars || cJSON_Compare (env->preload_vars, vars, true);
}

//  True if env mounts the kind's database dir as it is now (it holds the
//  dir it mounted open, so that dir's inode cannot be reused meanwhile)
static bool
s_kind_mount_current (kind_t *kind, wenv_t *env)
{
    if (!kind->mount_source)
        return true;
    struct stat then, now;
    return env->mount_fd >= 0 && fstat (env->mount_fd, &then) == 0 && then.st_nlink > 0
        && stat (kind->mount_source, &now) == 0 && then.st_ino == now.st_ino && then.st_dev == now.st_dev;
}

//  The kind's spare for a function with the kind's variables (kind->vars)
//  and this memory limit, taken; NULL if it has none that may serve it
static wenv_t *
s_kind_take (self_t *self, kind_t *kind, int memory_mb)
{
    wenv_t *env = kind->spare;
    if (!env || env->end_timer >= 0 || env->timed_out || env->state == WENV_PRELOADING)
        return NULL;
    if (!s_kind_vars_match (env, kind->vars) || !s_kind_mount_current (kind, env)) {
        //  The project's variables changed since it imported, or its
        //  database dir was made again: made again
        kind->spare = NULL;
        s_env_end (self, env, NULL);
        return NULL;
    }
    //  Its imports were learned from functions with up to learned_mb: one
    //  with less might not hold them beside its own memory
    if (env->preload_vars && memory_mb < kind->learned_mb)
        return NULL;
    if (env->state == WENV_CREATING)
        env->resize_mb = memory_mb;     //  Set once it is up (s_env_attach), and checked there
    else
    if (sandbox_set_memory (env->sandbox, memory_mb))
        return NULL;                    //  It holds more than this function may: left for another
    else
        env->memory_mb = memory_mb;
    kind->spare = NULL;
    return env;
}

//  A load's modules join its kind's set; the kind's idle spare imports the
//  new ones now
static void
s_kind_learn (self_t *self, wenv_t *env, cJSON *modules)
{
    kind_t *kind = s_kind_find (self, env->kind_id);
    if (!kind || !cJSON_IsArray (modules))
        return;
    bool grew = false;
    int size = cJSON_GetArraySize (kind->modules);
    for (cJSON *item = modules->child; item && size < KIND_MODULES_MAX; item = item->next) {
        //  From the runner, so untrusted: dotted ASCII names only
        const char *name = cJSON_GetStringValue (item);
        size_t length = name ? strlen (name) : 0;
        if (!length || length > 200 || strspn (name, "abcdefghijklmnopqrstuvwxyz"
                                                    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.") != length
        ||  *name == '.' || name [length - 1] == '.' || strstr (name, "..") || zhashx_lookup (kind->module_set, name))
            continue;
        zhashx_insert (kind->module_set, name, (void *) 1);
        cJSON_AddItemToArray (kind->modules, cJSON_CreateString (name));
        size++;
        grew = true;
    }
    if (grew && env->memory_mb > kind->learned_mb)
        kind->learned_mb = env->memory_mb;
    if (grew && kind->spare && kind->spare->state == WENV_IDLE) {
        if (!s_kind_vars_match (kind->spare, kind->vars)) {
            wenv_t *stale = kind->spare;            //  It imported with other variables: made again
            kind->spare = NULL;
            s_env_end (self, stale, NULL);
        }
        else
            s_kind_preload (self, kind->spare);
    }
}

//  An idle spare of a kind imports the kind's modules
static void
s_kind_preload (self_t *self, wenv_t *env)
{
    kind_t *kind = s_kind_spare_of (self, env);
    if (!kind || kind->preload_off || !cJSON_GetArraySize (kind->modules) || env->state != WENV_IDLE)
        return;
    cJSON *frame = cJSON_CreateObject ();
    cJSON_AddStringToObject (frame, "type", "preload");
    cJSON_AddItemReferenceToObject (frame, "modules", kind->modules);
    cJSON_AddItemReferenceToObject (frame, "env", kind->vars);
    if (kind->file_limit_mb)
        cJSON_AddNumberToObject (frame, "file_limit_mb", kind->file_limit_mb);
    cJSON_Delete (env->preload_vars);
    env->preload_vars = cJSON_Duplicate (kind->vars, true);
    char *text = cJSON_PrintUnformatted (frame);
    cJSON_Delete (frame);
    //  Module-level code runs at the function's limits, as in a load
    if (!text || s_env_limit_for_code (env)) {
        free (text);
        s_env_end (self, env, NULL);
        return;
    }
    env->state = WENV_PRELOADING;
    s_start_deadline (self, env, PRELOAD_DEADLINE_MS);
    if (!s_env_send (self, env, text))
        s_env_end (self, env, NULL);
    free (text);
}

//  The runner imported what it was asked: the spare is idle again (a spare
//  is never given out while it imports)
static void
s_kind_preloaded (self_t *self, wenv_t *env)
{
    if (env->timed_out)
        return;                         //  Killed by its deadline: its end is on the way
    env->state = WENV_IDLE;
    if (env->deadline_timer >= 0) {
        reactor_timer_end (self->loop, env->deadline_timer);
        env->deadline_timer = -1;
    }
}

//  A kind lacks its spare
static bool
s_kind_short (self_t *self, kind_t *kind)
{
    return !kind->spare && !self->draining && kind->failures < KIND_FAILURES_MAX
        && (!kind->layer_dir || zsys_file_exists (kind->layer_dir));
}

static bool
s_kinds_short (self_t *self)
{
    for (kind_t *kind = (kind_t *) zlistx_first (self->kinds); kind; kind = (kind_t *) zlistx_next (self->kinds))
        if (s_kind_short (self, kind))
            return true;
    return false;
}

//  Spares for the kinds that lack one, from idle creators only
static void
s_kinds_refill (self_t *self)
{
    for (kind_t *kind = (kind_t *) zlistx_first (self->kinds); kind; kind = (kind_t *) zlistx_next (self->kinds)) {
        if (!s_kind_short (self, kind))
            continue;
        //  From an idle creator; without zygotes a spare is a python start,
        //  so one creator stays free for calls (as for the plain spares)
        bool busy = false;
        for (int index = 0; index < CREATORS; index++)
            busy |= self->creator_load [index] != 0;
        if (self->creator_load [s_creator_pick (self)] != 0 || (busy && !self->zygote_up))
            break;
        wenv_t *env = s_env_new (self, kind->memory_mb, kind->network, kind->layer_dir, kind->mount, false);
        if (!env)
            break;
        env->kind_id = kind->id;
        kind->spare = env;
        //  The database dir as it is now: one deprovisioned and made again
        //  meanwhile is another dir, which this spare does not see
        if (kind->mount_source)
            env->mount_fd = open (kind->mount_source, O_PATH | O_DIRECTORY | O_CLOEXEC);
    }
}

//  Kinds with no cold start for KIND_IDLE_MS go, with their spares
static void
s_kinds_trim (self_t *self)
{
    int64_t now = zclock_mono ();
    kind_t *kind = (kind_t *) zlistx_first (self->kinds);
    while (kind) {
        if (now - kind->used_at > KIND_IDLE_MS || self->draining) {
            zlistx_delete (self->kinds, zlistx_cursor (self->kinds));
            s_kind_destroy (self, &kind);
            kind = (kind_t *) zlistx_first (self->kinds);
        }
        else
            kind = (kind_t *) zlistx_next (self->kinds);
    }
}

//  --------------------------------------------------------------------------
//  Layers that come from the control host (--role worker): one fetch at a
//  time on the fetch thread (actors/layerfetch.c), one per layer however
//  many calls wait for it, each call waiting at most LAYERFETCH_WAIT_MS

static void s_cold_start (self_t *self, const char *env_id, const char *job_id, int memory, int timeout_ms,
                          cJSON *context, cJSON *input, int64_t started_us);
static void s_layer_fetched (self_t *self, const char *hash, const char *error);

static void
s_waiting_free (waiting_t **waiting_p)
{
    waiting_t *waiting = *waiting_p;
    if (waiting) {
        free (waiting->job_id);
        cJSON_Delete (waiting->context);
        cJSON_Delete (waiting->input);
        free (waiting);
        *waiting_p = NULL;
    }
}

//  The call fails (it never ran); its environment was never made
static void
s_waiting_fail (self_t *self, waiting_t *waiting, const char *reason)
{
    cJSON *result = s_error_result ("error", reason, NULL);
    int64_t duration_us = util_monotonic_us () - waiting->started_us;
    cJSON_AddNumberToObject (result, "duration_us", (double) duration_us);
    cJSON_AddBoolToObject (result, "cold_start", true);
    cJSON_AddNumberToObject (result, "init_us", (double) duration_us);
    cJSON_AddNumberToObject (result, "peak_memory_kb", 0);
    char *text = cJSON_PrintUnformatted (result);
    s_send_done (self, waiting->env_id, waiting->job_id, text, "dead");
    free (text);
    cJSON_Delete (result);
}

//  Take the waiting calls that match (layer, or env_id) out of the list
static zlistx_t *
s_waiting_take (self_t *self, const char *layer, const char *env_id, int64_t older_than_us)
{
    zlistx_t *taken = zlistx_new ();
    for (waiting_t *waiting = (waiting_t *) zlistx_first (self->waiting); waiting;
         waiting = (waiting_t *) zlistx_next (self->waiting))
        if ((layer && streq (waiting->layer, layer)) || (env_id && streq (waiting->env_id, env_id))
        ||  (older_than_us && waiting->started_us < older_than_us))
            zlistx_add_end (taken, waiting);
    for (waiting_t *waiting = (waiting_t *) zlistx_first (taken); waiting; waiting = (waiting_t *) zlistx_next (taken))
        zlistx_delete (self->waiting, zlistx_find (self->waiting, waiting));
    return taken;
}

//  Ask the fetch thread for the next wanted layer, if it is idle
static void
s_layer_fetch_next (self_t *self)
{
    if (self->fetching || zlistx_size (self->wanted) == 0)
        return;
    self->fetching = (char *) zlistx_first (self->wanted);
    zlistx_delete (self->wanted, zlistx_cursor (self->wanted));
    //  What the environments and waiting calls use is not evicted
    cJSON *keep = cJSON_CreateArray ();
    for (wenv_t *env = (wenv_t *) zhashx_first (self->envs); env; env = (wenv_t *) zhashx_next (self->envs))
        if (*env->layer)
            cJSON_AddItemToArray (keep, cJSON_CreateString (env->layer));
    for (waiting_t *waiting = (waiting_t *) zlistx_first (self->waiting); waiting;
         waiting = (waiting_t *) zlistx_next (self->waiting))
        cJSON_AddItemToArray (keep, cJSON_CreateString (waiting->layer));
    char *text = cJSON_PrintUnformatted (keep);
    cJSON_Delete (keep);
    zsys_info ("worker %s: layer %s is not on this host: fetching it from the control host", self->worker_id,
               self->fetching);
    int rc = msg_send_layer_want (zactor_sock (self->fetcher), NULL, self->fetching, text);
    free (text);
    if (rc) {
        char *hash = strdup (self->fetching);
        s_layer_fetched (self, hash, "the worker's layer fetch thread does not answer");
        free (hash);
    }
}

static void
s_layer_want (self_t *self, const char *hash)
{
    if (self->fetching && streq (self->fetching, hash))
        return;
    for (char *wanted = (char *) zlistx_first (self->wanted); wanted; wanted = (char *) zlistx_next (self->wanted))
        if (streq (wanted, hash))
            return;
    zlistx_add_end (self->wanted, strdup (hash));
    s_layer_fetch_next (self);
}

//  The fetch of hash ended: its waiting calls go on, or fail with the reason
static void
s_layer_fetched (self_t *self, const char *hash, const char *error)
{
    if (self->fetching && streq (self->fetching, hash))
        zstr_free (&self->fetching);
    zlistx_t *taken = s_waiting_take (self, hash, NULL, 0);
    for (waiting_t *waiting = (waiting_t *) zlistx_first (taken); waiting; waiting = (waiting_t *) zlistx_next (taken)) {
        if (*error) {
            char *reason = zsys_sprintf ("Could not get the function's dependency layer %.12s from the control "
                                         "host: %s", hash, error);
            s_waiting_fail (self, waiting, reason);
            zstr_free (&reason);
        }
        else {
            s_cold_start (self, waiting->env_id, waiting->job_id, waiting->memory_mb, waiting->timeout_ms,
                          waiting->context, waiting->input, waiting->started_us);
            waiting->context = waiting->input = NULL;
        }
        s_waiting_free (&waiting);
    }
    zlistx_destroy (&taken);
    s_layer_fetch_next (self);
}

static int
s_fetcher_readable (reactor_t *loop, zsock_t *reader, void *arg)
{
    self_t *self = (self_t *) arg;
    msg_t *msg = msg_recv (reader, false);
    if (msg && msg_id (msg) == MSG_ID_LAYER_FETCHED)
        s_layer_fetched (self, msg_layer_fetched_hash (msg), msg_layer_fetched_error (msg));
    else
    if (msg)
        zsys_warning ("worker: unexpected '%s' from the layer fetch thread", msg_command (msg));
    msg_destroy (&msg);
    return 0;
}

//  Calls that waited LAYERFETCH_WAIT_MS for their layer fail clearly; the
//  fetch goes on, for the calls after them
static void
s_waiting_expire (self_t *self)
{
    zlistx_t *taken = s_waiting_take (self, NULL, NULL, util_monotonic_us () - (int64_t) LAYERFETCH_WAIT_MS * 1000);
    for (waiting_t *waiting = (waiting_t *) zlistx_first (taken); waiting; waiting = (waiting_t *) zlistx_next (taken)) {
        char *reason = zsys_sprintf ("The function's dependency layer %.12s is still on its way from the control "
                                     "host after %d s; try again shortly", waiting->layer, LAYERFETCH_WAIT_MS / 1000);
        s_waiting_fail (self, waiting, reason);
        zstr_free (&reason);
        s_waiting_free (&waiting);
    }
    zlistx_destroy (&taken);
}

//  Forget waiting calls (assignment forgot them): by env id, or all
static void
s_waiting_drop (self_t *self, const char *env_id)
{
    zlistx_t *taken = env_id ? s_waiting_take (self, NULL, env_id, 0) : s_waiting_take (self, NULL, NULL, INT64_MAX);
    for (waiting_t *waiting = (waiting_t *) zlistx_first (taken); waiting; waiting = (waiting_t *) zlistx_next (taken))
        s_waiting_free (&waiting);
    zlistx_destroy (&taken);
}

//  Before a call of a function with a SQLite database (dir, or NULL for
//  none): its journals, which SQLite on the host (root) removes at its last
//  close and functions cannot make again (core/dbprovider.c)
static void
s_database_journals (const char *dir)
{
    if (dir && dbprovider_sqlite_journals (dir))
        zsys_warning ("worker: the database in %s lacks its journal files: %s", dir, strerror (errno));
}

static void
s_handle_exec (self_t *self, msg_t *msg)
{
    const char *env_id = msg_exec_env_id (msg);
    const char *job_id = msg_exec_job_id (msg);
    if (!*env_id || strlen (env_id) >= UTIL_ID_SIZE || !*job_id) {
        zsys_warning ("worker %s: dropped an EXEC with a bad environment or job id", self->worker_id);
        return;
    }
    wenv_t *env = (wenv_t *) zhashx_lookup (self->envs, env_id);
    if (env && (env->state != WENV_IDLE || env->job_id)) {
        //  assignment thinks this environment is free while it is running
        //  another call: it gave up on that one. The new call never ran here:
        //  "lost" makes assignment run it on a new environment and forget
        //  this one, which is ended (its old call's answer is no longer wanted)
        zsys_warning ("worker %s: EXEC for job %s on environment %s, still running job %s; "
                      "answered lost, environment ended", self->worker_id, job_id, env_id,
                      env->job_id ? env->job_id : "(starting)");
        s_send_done (self, env_id, job_id, "{}", "lost");
        s_env_end (self, env, "Environment was given a second call while running one");
        return;
    }
    //  Checked at receive; sent to the runner as the text gateway wrote
    //  (a raw item), so its numbers keep their digits (core/jsonfit.h)
    cJSON *input = cJSON_CreateRaw (msg_exec_input_text (msg));
    if (env) {
        //  Warm
        env->job_id = strdup (job_id);
        env->started_us = util_monotonic_us ();
        env->cold = false;
        env->timed_out = false;
        env->pending_input = input;
        s_database_journals (env->database_dir);
        s_start_deadline (self, env, env->timeout_ms);
        s_send_invoke (self, env);
        return;
    }
    //  Cold start
    int64_t started_us = util_monotonic_us ();
    cJSON *context = msg_exec_function_take (msg);
    if (!cJSON_IsString (cJSON_GetObjectItem (context, "code"))) {
        //  A warm EXEC (no context) for an environment we no longer have (it
        //  died and our GONE crossed this EXEC): assignment runs it elsewhere
        cJSON_Delete (context);
        cJSON_Delete (input);
        s_send_done (self, env_id, job_id, "{}", "lost");
        return;
    }
    //  assignment checked the limits: it budgets for this memory and measures
    //  its deadlines from this timeout
    s_cold_start (self, env_id, job_id, (int) msg_exec_memory_mb (msg), (int) msg_exec_timeout_ms (msg),
                  context, input, started_us);
}

//  A cold start: a new environment for env_id (context and input are
//  taken). One whose layer is not on this host yet waits for it (on a
//  --role worker host; see s_layer_want)
static void
s_cold_start (self_t *self, const char *env_id, const char *job_id, int memory, int timeout_ms,
              cJSON *context, cJSON *input, int64_t started_us)
{
    wenv_t *env = NULL;
    bool network = cJSON_IsTrue (cJSON_GetObjectItem (context, "network_enabled"));
    const char *layer = cJSON_GetStringValue (cJSON_GetObjectItem (context, "requirements_hash"));
    char *layer_dir = layers_key_valid (layer) ? zsys_sprintf ("%s/layers/%s", self->config->data_dir, layer) : NULL;
    if (layer_dir && !zsys_file_exists (layer_dir) && self->fetcher) {
        //  A --role worker host: the layer comes from the control host,
        //  and the call waits for it (bounded: s_waiting_expire)
        waiting_t *waiting = (waiting_t *) zmalloc (sizeof (waiting_t));
        snprintf (waiting->env_id, sizeof waiting->env_id, "%s", env_id);
        waiting->job_id = strdup (job_id);
        snprintf (waiting->layer, sizeof waiting->layer, "%s", layer);
        waiting->memory_mb = memory;
        waiting->timeout_ms = timeout_ms;
        waiting->context = context;
        waiting->input = input;
        waiting->started_us = started_us;
        zlistx_add_end (self->waiting, waiting);
        s_layer_want (self, waiting->layer);
        zstr_free (&layer_dir);
        return;
    }
    if (layer_dir && !zsys_file_exists (layer_dir)) {
        //  In one process the builder makes a layer active only once it is
        //  in place here: it was removed since
        zsys_warning ("worker: layer %s is not in this host's data dir: the function runs without it", layer);
        zstr_free (&layer_dir);
    }
    if (layer_dir && self->fetcher)
        utimensat (AT_FDCWD, layer_dir, NULL, 0);   //  Its last use, for the cache's eviction order
    //  The project's database dir (actors/database.c): the gateway put it
    //  in the context; the sandbox checks the target
    cJSON *database = cJSON_GetObjectItem (context, "database_mount");
    const char *mount_source = cJSON_GetStringValue (cJSON_GetObjectItem (database, "source"));
    const char *mount_target = cJSON_GetStringValue (cJSON_GetObjectItem (database, "target"));
    char *mount = mount_source && mount_target && !strchr (mount_source, '\t') && !strchr (mount_target, '\t')
                ? zsys_sprintf ("%s\t%s\t%s", mount_source, mount_target,
                                cJSON_IsTrue (cJSON_GetObjectItem (database, "writable")) ? "rw" : "ro")
                : NULL;
    double file_limit_mb = cJSON_GetNumberValue (cJSON_GetObjectItem (context, "file_limit_mb"));
    //  A project's SQLite database: its journals, which SQLite on the host
    //  removes at its last close and functions cannot make (core/dbprovider.c)
    const char *database_dir = mount && streq (mount_target, DBPROVIDER_SQLITE_DIR)
                            && cJSON_IsTrue (cJSON_GetObjectItem (database, "writable"))? mount_source: NULL;
    s_database_journals (database_dir);

    kind_t *kind = NULL;
    if (network || layer_dir || mount) {
        //  Its project's own spare, its modules maybe imported already
        kind = s_kind_for (self, context, layer_dir, mount, network, memory);
        if (kind)
            env = s_kind_take (self, kind, memory);
    }
    else {
        //  A spare that is up (or nearly) and can take this memory limit
        env = (wenv_t *) zlistx_first (self->spare);
        if (env) {
            zlistx_delete (self->spare, zlistx_cursor (self->spare));
            if (sandbox_set_memory (env->sandbox, memory)) {
                s_env_end (self, env, NULL);
                env = NULL;
            }
            else
                env->memory_mb = memory;
        }
        else {
            //  None was up: the pool was short (s_pool_target)
            self->cold_at [self->cold_next] = zclock_mono ();
            self->cold_next = (self->cold_next + 1) % POOL_BURST_MAX;
            //  One being made is further along than a new one would be;
            //  its memory limit is set when it is up (s_env_attach)
            env = (wenv_t *) zlistx_first (self->spare_creating);
            if (env) {
                zlistx_delete (self->spare_creating, zlistx_cursor (self->spare_creating));
                env->resize_mb = memory;
            }
        }
    }
    if (!env)
        env = s_env_new (self, memory, network, layer_dir, mount, true);
    if (env) {
        env->kind_id = kind ? kind->id : 0;     //  What its load imports is learned for the project
        s_env_urgent (env);                     //  A call waits for it now
    }
    zstr_free (&layer_dir);
    zstr_free (&mount);
    if (!env) {
        cJSON *result = s_error_result ("error", "Could not create a sandbox for the function (see the server log)", NULL);
        char *text = cJSON_PrintUnformatted (result);
        s_send_done (self, env_id, job_id, text, "dead");
        free (text);
        cJSON_Delete (result);
        cJSON_Delete (context);
        cJSON_Delete (input);
        return;
    }
    snprintf (env->id, sizeof env->id, "%s", env_id);
    snprintf (env->layer, sizeof env->layer, "%s", layers_key_valid (layer) ? layer : "");
    env->job_id = strdup (job_id);
    env->started_us = started_us;
    env->init_us = 0;
    env->cold = true;
    env->timeout_ms = timeout_ms;
    env->pending_input = input;
    free (env->database_dir);
    env->database_dir = database_dir? strdup (database_dir): NULL;
    zhashx_insert (self->envs, env->id, env);

    cJSON *load = cJSON_CreateObject ();
    cJSON_AddStringToObject (load, "type", "load");
    cJSON *name = cJSON_GetObjectItem (context, "name");
    cJSON_AddStringToObject (load, "function_name", cJSON_IsString (name) ? name->valuestring : "function");
    cJSON_AddNumberToObject (load, "version", cJSON_GetNumberValue (cJSON_GetObjectItem (context, "version")));
    cJSON *code = cJSON_GetObjectItem (context, "code");
    cJSON_AddStringToObject (load, "code", cJSON_IsString (code) ? code->valuestring : "");
    cJSON *vars = cJSON_DetachItemFromObject (context, "env");
    cJSON_AddItemToObject (load, "env", cJSON_IsObject (vars) ? vars : cJSON_CreateObject ());
    if (vars && !cJSON_IsObject (vars))
        cJSON_Delete (vars);
    cJSON_AddNumberToObject (load, "memory_limit_mb", memory);
    cJSON_AddNumberToObject (load, "timeout_seconds", timeout_ms / 1000.0);
    if (!isnan (file_limit_mb) && file_limit_mb >= 1 && file_limit_mb <= 1 << 20)
        cJSON_AddNumberToObject (load, "file_limit_mb", (int) file_limit_mb);
    char *load_text = cJSON_PrintUnformatted (load);
    cJSON_Delete (load);
    cJSON_Delete (context);
    if (env->state == WENV_CREATING)
        env->pending_load = load_text;  //  Deadline and load once the sandbox is up
    else {
        s_start_deadline (self, env, timeout_ms + LOAD_ALLOWANCE_MS);
        if (env->state == WENV_IDLE) {
            s_env_load (self, env, load_text);
            free (load_text);
        }
        else
            env->pending_load = load_text;  //  Sent when the runner says ready
    }
    s_schedule_refill (self);
}

//  --------------------------------------------------------------------------
//  Assignment link

//  The CPUs this process may use: its affinity mask, capped by the CPU
//  quota of its cgroup (v2 cpu.max, up the tree), so a worker host that is
//  a cgroup with a quota offers what the quota gives
static double
s_detect_cores (void)
{
    cpu_set_t set;
    double cores = sched_getaffinity (0, sizeof set, &set) == 0 ? CPU_COUNT (&set) : 1;
    char line [512] = "";
    FILE *file = fopen ("/proc/self/cgroup", "r");
    while (file && fgets (line, sizeof line, file))
        if (strncmp (line, "0::", 3) == 0)
            break;
    if (file)
        fclose (file);
    if (strncmp (line, "0::", 3) != 0)
        return cores;
    char *path = line + 3;
    path [strcspn (path, "\n")] = 0;
    while (*path) {
        char *name = zsys_sprintf ("/sys/fs/cgroup%s/cpu.max", path);
        FILE *max = name ? fopen (name, "r") : NULL;
        long quota = 0, period = 0;
        char first [32] = "";
        if (max && fscanf (max, "%31s %ld", first, &period) == 2 && strneq (first, "max")
        &&  (quota = atol (first)) > 0 && period > 0 && (double) quota / period < cores)
            cores = (double) quota / period;
        if (max)
            fclose (max);
        zstr_free (&name);
        char *slash = strrchr (path, '/');
        if (!slash)
            break;
        *slash = 0;
    }
    return cores;
}

//  This process's mark in its workers' ids and group: a hostname and a pid
//  are not enough (two containers with the same hostname each run their
//  worker as pid 1), and two processes taken for one would share one
//  registration and one memory budget, each ending the other's calls
static pthread_once_t s_process_once = PTHREAD_ONCE_INIT;
static char s_process_mark [UTIL_ID_SIZE];

static void
s_process_mark_init (void)
{
    util_new_id (s_process_mark);
    s_process_mark [8] = 0;
}

static const char *
s_process_tag (void)
{
    pthread_once (&s_process_once, s_process_mark_init);
    return s_process_mark;
}

//  READY: what this worker offers (this process's --memory-budget-mb,
//  shared with its sibling workers: the group; its share of the cores),
//  and what it holds, so that assignment reconciles its environments when
//  it registers again
static void
s_register (self_t *self)
{
    long workers = self->config->workers > 0 ? self->config->workers : 1;
    double cores = self->config->cores > 0 ? (double) self->config->cores : s_detect_cores ();
    self->cores = cores / (double) workers;
    char host [64] = "host";
    gethostname (host, sizeof host - 1);
    char group [128];
    snprintf (group, sizeof group, "%s-%s-%d", host, s_process_tag (), getpid ());
    cJSON *info = cJSON_CreateObject ();
    cJSON_AddNumberToObject (info, "capacity_mb", (double) self->config->memory_budget_mb);
    cJSON_AddStringToObject (info, "group", group);
    cJSON_AddNumberToObject (info, "cores", self->cores);
    cJSON_AddStringToObject (info, "host", host);
    if (self->draining)
        cJSON_AddBoolToObject (info, "draining", true);     //  Still leaving, if it was taken for lost
    cJSON *envs = cJSON_AddArrayToObject (info, "envs");
    cJSON *jobs = cJSON_AddArrayToObject (info, "jobs");
    for (wenv_t *env = (wenv_t *) zhashx_first (self->envs); env; env = (wenv_t *) zhashx_next (self->envs)) {
        cJSON_AddItemToArray (envs, cJSON_CreateString (env->id));
        if (env->job_id)
            cJSON_AddItemToArray (jobs, cJSON_CreateString (env->job_id));
    }
    char *text = cJSON_PrintUnformatted (info);
    cJSON_Delete (info);
    if (msg_send_ready (self->backend, NULL, self->worker_id, text))
        zsys_warning ("worker %s: could not send READY (%s); trying again in %" PRId64 " ms", self->worker_id,
                      zmq_strerror (zmq_errno ()), self->expiry_ms);
    free (text);
    self->last_heard = zclock_mono ();
}

//  Is anything of assignment's still running here?
static bool
s_running (self_t *self)
{
    for (wenv_t *env = (wenv_t *) zhashx_first (self->envs); env; env = (wenv_t *) zhashx_next (self->envs))
        if (env->job_id)
            return true;
    return false;
}

//  Leaving (SIGTERM on a worker host): say so, so that nothing new comes,
//  and finish what runs; s_drain_timer ends the loop once it is done
static void
s_drain_begin (self_t *self)
{
    if (self->draining)
        return;
    self->draining = true;
    //  Within main's shutdown bound (ACTOR_DRAIN_MS + ACTOR_STOP_MARGIN_MS),
    //  with a moment to spare for the goodbye
    self->drain_deadline = zclock_mono () + ACTOR_DRAIN_MS + ACTOR_STOP_MARGIN_MS - 2000;
    zsys_info ("worker %s: leaving: finishing the calls it runs, taking no new ones", self->worker_id);
    if (msg_send_leaving (self->backend, NULL, self->worker_id, "draining"))
        zsys_warning ("worker %s: could not send LEAVING (%s)", self->worker_id, zmq_strerror (zmq_errno ()));
}

//  The drain is over: the goodbye, given a moment to leave (the process
//  lingers on no socket otherwise), so that assignment drops this worker as
//  gone, not lost
static void
s_send_left (self_t *self)
{
    zsock_set_linger (self->backend, 1000);
    if (msg_send_leaving (self->backend, NULL, self->worker_id, "left"))
        zsys_warning ("worker %s: could not send LEAVING (%s)", self->worker_id, zmq_strerror (zmq_errno ()));
}

static int
s_drain_timer (reactor_t *loop, int timer_id, void *arg)
{
    self_t *self = (self_t *) arg;
    if (!self->terminating)
        return 0;
    if (s_running (self) && zclock_mono () < self->drain_deadline)
        return 0;
    if (s_running (self))
        zsys_warning ("worker %s: calls still running at the end of the drain; they are ended", self->worker_id);
    //  Each answered here, before "left": assignment takes a run still out
    //  when we leave for one we never started, and runs it elsewhere
    for (wenv_t *env = (wenv_t *) zhashx_first (self->envs); env; env = (wenv_t *) zhashx_next (self->envs))
        if (env->job_id) {
            cJSON *result = s_error_result ("lost", "The worker host stopped before the call finished (its drain "
                                            "time ran out): the call may have run, in part; its outcome is unknown", NULL);
            s_done (self, env, result, false);
            cJSON_Delete (result);
        }
    s_send_left (self);
    return -1;
}

static int
s_heartbeat_timer (reactor_t *loop, int timer_id, void *arg)
{
    self_t *self = (self_t *) arg;
    if (zclock_mono () - self->last_heard > self->expiry_ms) {
        //  assignment restarted, or the link was cut: register again, saying
        //  what we hold; assignment keeps what it knows of it and has us
        //  KILL the rest (one registration, never a drop and a join)
        zsys_warning ("worker %s: no word from assignment; registering again", self->worker_id);
        s_waiting_drop (self, NULL);   //  Calls parked for a layer: assignment has answered them
        s_register (self);
        return 0;
    }
    //  What it offers and holds, with each heartbeat
    size_t running = 0;
    for (wenv_t *env = (wenv_t *) zhashx_first (self->envs); env; env = (wenv_t *) zhashx_next (self->envs))
        running += env->job_id != NULL;
    char load [160];
    snprintf (load, sizeof load, "{\"capacity_mb\":%ld,\"cores\":%g,\"environments\":%zu,\"running\":%zu}",
              self->config->memory_budget_mb, self->cores, zhashx_size (self->envs), running);
    if (msg_send_heartbeat (self->backend, NULL, self->worker_id, load))
        zsys_debug ("worker %s: could not send HEARTBEAT (%s)", self->worker_id, zmq_strerror (zmq_errno ()));
    s_waiting_expire (self);
    s_pool_trim (self);
    return 0;
}

static int
s_backend_readable (reactor_t *loop, zsock_t *reader, void *arg)
{
    self_t *self = (self_t *) arg;
    msg_t *msg = msg_recv (self->backend, false);
    if (!msg)
        return 0;
    self->last_heard = zclock_mono ();
    msg_id_t id = msg_id (msg);
    if (id == MSG_ID_EXEC && self->draining) {
        //  Sent before assignment read our LEAVING: it never ran here, so
        //  assignment runs it elsewhere
        s_send_done (self, msg_exec_env_id (msg), msg_exec_job_id (msg), "{}", "lost");
        wenv_t *env = (wenv_t *) zhashx_lookup (self->envs, msg_exec_env_id (msg));
        if (env && !env->job_id)
            s_env_end (self, env, NULL);
    }
    else
    if (id == MSG_ID_EXEC)
        s_handle_exec (self, msg);
    else
    if (id == MSG_ID_KILL) {
        const char *env_id = msg_kill_env_id (msg);
        wenv_t *env = (wenv_t *) zhashx_lookup (self->envs, env_id);
        if (env) {
            zstr_free (&env->job_id);   //  assignment already forgot its run
            if (env->sandbox) {
                sandbox_kill (env->sandbox);
                sandbox_reap (env->sandbox, true);
            }
            zhashx_delete (self->envs, env->id);
            s_env_free (self, env);
        }
        else
            s_waiting_drop (self, env_id);     //  One still waiting for its layer
    }
    else
    if (id != MSG_ID_HEARTBEAT)
        zsys_warning ("worker: unexpected '%s' from assignment", msg_command (msg));
    msg_destroy (&msg);
    return 0;
}

static int
s_pipe_readable (reactor_t *loop, zsock_t *reader, void *arg)
{
    self_t *self = (self_t *) arg;
    char *command = zstr_recv (self->pipe);
    int rc = 0;
    if (!command)
        rc = -1;
    else
    if (streq (command, "$TERM") && self->draining && s_running (self)) {
        //  Leaving: the drain timer ends the loop once the runs are over
        self->terminating = true;
        zsys_info ("worker %s: waiting for its calls to finish", self->worker_id);
    }
    else
    if (streq (command, "$TERM")) {
        if (self->draining)
            s_send_left (self);
        rc = -1;
    }
    else
    if (streq (command, "DRAIN"))
        s_drain_begin (self);
    else
    if (streq (command, "STATS")) {
        size_t preloaded = 0;
        for (kind_t *kind = (kind_t *) zlistx_first (self->kinds); kind; kind = (kind_t *) zlistx_next (self->kinds))
            preloaded += kind->spare && kind->spare->state == WENV_IDLE && kind->spare->preload_vars;
        zstr_sendf (self->pipe, "{\"envs\":%zu,\"spare\":%zu,\"creating\":%zu,\"preloaded\":%zu}",
                    zhashx_size (self->envs), zlistx_size (self->spare), zhashx_size (self->creating), preloaded);
    }
    else
    if (streq (command, "PING"))
        zstr_send (self->pipe, "PONG");
    else
    if (strncmp (command, "CREATE-DELAY ", 13) == 0 || strncmp (command, "CGROUP-DELAY ", 13) == 0) {
        //  Every creation is slowed by the ms: before it, or once a
        //  spare's CGROUP is sent (the DELAY's fourth field)
        int after_cgroup = command [1] == 'G';
        for (int index = 0; index < CREATORS; index++) {
            zsock_send (self->creators [index], "ssiiss", "DELAY", "", atoi (command + 13), after_cgroup, "", "");
            reactor_touched (self->loop, zactor_sock (self->creators [index]));
        }
    }
    else
        zsys_warning ("worker: invalid pipe command '%s'", command);
    zstr_free (&command);
    return rc;
}

//  Stop the creators: nothing more is created, and a sandbox one is making
//  or has made but we have not read is destroyed here
static void
s_creator_stop (self_t *self)
{
    atomic_store (&self->creator_args.stopping, true);
    for (int index = 0; index < CREATORS; index++) {
        zactor_t *creator = self->creators [index];
        if (creator && zsock_send (creator, "ssiiss", "STOP", "", 0, 0, "", "") == 0)
            zsock_set_rcvtimeo (creator, SANDBOX_CREATE_MS + 2000);
        else
        if (creator)
            zactor_destroy (&self->creators [index]);
    }
    for (int index = 0; index < CREATORS; index++) {
        zactor_t *creator = self->creators [index];
        if (!creator)
            continue;
        while (true) {
            char *command = NULL, *token = NULL;
            void *pointer = NULL;
            if (zsock_recv (creator, "ssp", &command, &token, &pointer))
                break;
            sandbox_t *sandbox = (sandbox_t *) pointer;
            sandbox_destroy (&sandbox);
            bool stopped = command && streq (command, "STOPPED");
            zstr_free (&command);
            zstr_free (&token);
            if (stopped)
                break;
        }
        zactor_destroy (&self->creators [index]);
    }
}

static void
s_self_destroy (self_t **self_p)
{
    self_t *self = *self_p;
    zlistx_t *all = zlistx_new ();
    for (wenv_t *env = (wenv_t *) zhashx_first (self->envs); env; env = (wenv_t *) zhashx_next (self->envs))
        zlistx_add_end (all, env);
    for (kind_t *kind = self->kinds ? (kind_t *) zlistx_first (self->kinds) : NULL; kind;
         kind = (kind_t *) zlistx_next (self->kinds))
        if (kind->spare && kind->spare->state != WENV_CREATING)
            zlistx_add_end (all, kind->spare);     //  Those being made are in creating
    for (kind_t *kind = self->kinds ? (kind_t *) zlistx_first (self->kinds) : NULL; kind;
         kind = (kind_t *) zlistx_next (self->kinds))
        kind->spare = NULL;
    for (wenv_t *env = (wenv_t *) zlistx_first (self->spare); env; env = (wenv_t *) zlistx_next (self->spare))
        zlistx_add_end (all, env);
    for (wenv_t *env = (wenv_t *) zhashx_first (self->creating); env; env = (wenv_t *) zhashx_next (self->creating))
        if (!*env->id)              //  Spares being made (assigned ones are in envs)
            zlistx_add_end (all, env);
    for (wenv_t *env = (wenv_t *) zlistx_first (all); env; env = (wenv_t *) zlistx_next (all))
        s_env_free (self, env);
    zlistx_destroy (&all);
    s_creator_stop (self);
    //  A fetch in flight ends at the $TERM
    zactor_destroy (&self->fetcher);
    if (self->waiting)
        s_waiting_drop (self, NULL);
    zlistx_destroy (&self->waiting);
    for (char *wanted = self->wanted ? (char *) zlistx_first (self->wanted) : NULL; wanted;
         wanted = (char *) zlistx_next (self->wanted))
        free (wanted);
    zlistx_destroy (&self->wanted);
    zstr_free (&self->fetching);
    zhashx_destroy (&self->envs);
    zhashx_destroy (&self->creating);
    zlistx_destroy (&self->spare_creating);
    zlistx_destroy (&self->spare);
    while (self->kinds && zlistx_first (self->kinds)) {
        kind_t *kind = (kind_t *) zlistx_first (self->kinds);
        zlistx_delete (self->kinds, zlistx_cursor (self->kinds));
        s_kind_destroy (self, &kind);
    }
    zlistx_destroy (&self->kinds);
    reactor_destroy (&self->loop);
    zsock_destroy (&self->backend);
    zsock_destroy (&self->results);
    free (self->by_fd);
    free (self);
    *self_p = NULL;
}

void
worker_actor (zsock_t *pipe, void *args_)
{
    const actor_args_t *args = (const actor_args_t *) args_;
    self_t *self = (self_t *) zmalloc (sizeof (self_t));
    self->pipe = pipe;
    self->config = args->config;
    char host [64] = "host";
    gethostname (host, sizeof host - 1);
    snprintf (self->worker_id, sizeof self->worker_id, "%s-%s-%d-%d", host, s_process_tag (), getpid (),
              args->instance);
    self->envs = zhashx_new ();
    self->spare = zlistx_new ();
    self->creating = zhashx_new ();
    self->spare_creating = zlistx_new ();
    self->kinds = zlistx_new ();
    self->waiting = zlistx_new ();
    self->wanted = zlistx_new ();
    self->loop = reactor_new ();
    self->backend = endpoints_connect (args->endpoints, "worker", ZMQ_DEALER);
    self->endpoints = args->endpoints;
    self->sandboxes_ok = self->backend && sandbox_system_init (self->config->cgroup_name) == 0;
    if (!self->sandboxes_ok) {
        s_self_destroy (&self);
        if (*endpoints_error ())
            actor_failed (pipe, "%s", endpoints_error ());
        else
            actor_failed (pipe, "sandboxes are not available here (root, namespaces and cgroups are needed; "
                                "the cause is logged above): this worker does not register");
        return;
    }
    if (streq (self->config->role, "worker")) {
        //  On a host of its own, layers come from the control host
        char *reason = NULL;
        self->fetcher = actor_start (layerfetch_actor, (void *) args, "layer fetch", &reason);
        if (!self->fetcher) {
            s_self_destroy (&self);
            actor_failed (pipe, "%s", reason ? reason : "the layer fetch thread did not start");
            zstr_free (&reason);
            return;
        }
    }
    self->creator_args.config = self->config;
    atomic_init (&self->creator_args.stopping, false);
    for (int index = 0; index < CREATORS; index++)
        self->creators [index] = zactor_new (s_creator_actor, &self->creator_args);
    //  A worker that cannot make a sandbox must never get calls: before it
    //  registers it makes one (kept as its first spare) or stops here
    sandbox_t *probe = NULL;
    zsock_set_rcvtimeo (self->creators [0], SANDBOX_CREATE_MS + 2000);
    if (zsock_send (self->creators [0], "ssiissi", "CREATE", "probe", SANDBOX_DEFAULT_MEMORY_MB, 0, "", "", 0) == 0)
        while (true) {
            //  (a spare: its CGROUP comes first, and is of no use here)
            char *command = NULL, *token = NULL;
            void *pointer = NULL;
            bool created = false;
            if (zsock_recv (self->creators [0], "ssp", &command, &token, &pointer) == 0
            &&  command && streq (command, "CREATED")) {
                probe = (sandbox_t *) pointer;
                created = true;
            }
            bool cgroup = command && streq (command, "CGROUP");
            zstr_free (&command);
            zstr_free (&token);
            if (created || !cgroup)
                break;
        }
    zsock_set_rcvtimeo (self->creators [0], -1);
    if (!probe) {
        zsys_error ("worker %s: cannot create a sandbox here (the cause is logged above); not registering",
                    self->worker_id);
        s_self_destroy (&self);
        actor_failed (pipe, "cannot create a sandbox on this host (the cause is logged above): this worker "
                            "does not register");
        return;
    }
    self->zygote_up = sandbox_zygote_made (probe);
    if (self->config->prewarm > 0) {
        wenv_t *env = (wenv_t *) zmalloc (sizeof (wenv_t));
        env->mount_fd = -1;
        env->deadline_timer = -1;
        env->end_timer = -1;
        env->memory_mb = SANDBOX_DEFAULT_MEMORY_MB;
        s_env_attach (self, env, probe);
        zlistx_add_end (self->spare, env);
    }
    else
        sandbox_destroy (&probe);
    self->expiry_ms = deadlines_expiry_ms (self->config->worker_expiry_ms,
                                           endpoints_is_tcp (args->endpoints, "worker"));
    reactor_reader (self->loop, pipe, s_pipe_readable, self);
    reactor_reader (self->loop, self->backend, s_backend_readable, self);
    if (self->fetcher)
        reactor_reader (self->loop, zactor_sock (self->fetcher), s_fetcher_readable, self);
    for (int index = 0; index < CREATORS; index++)
        reactor_reader (self->loop, zactor_sock (self->creators [index]), s_creator_readable, self);
    //  Read only by their handlers, and sent on where reactor_touched says
    //  so: asked for their events only when their descriptors fire
    reactor_quiet (self->loop, pipe);
    for (int index = 0; index < CREATORS; index++)
        reactor_quiet (self->loop, zactor_sock (self->creators [index]));
    reactor_timer (self->loop, self->config->heartbeat_ms, 0, s_heartbeat_timer, self);
    reactor_timer (self->loop, 50, 0, s_drain_timer, self);
    s_register (self);
    s_schedule_refill (self);
    actor_ready (pipe);

    reactor_start (self->loop);

    s_self_destroy (&self);
}

//  --------------------------------------------------------------------------
//  Selftest: a worker against a fake assignment, with real sandboxes

//  Until the worker's pool is full again (one spare up, none being made;
//  with zygotes it grew with the cold starts before and shrinks back once
//  they are 2 s old): heartbeats meanwhile, so that the worker does not
//  take assignment for gone
static void
s_test_pool_settle (zactor_t *worker, zsock_t *assignment, zframe_t *route)
{
    for (int tries = 0; tries < 300; tries++) {
        zstr_send (worker, "STATS");
        char *stats = zstr_recv (worker);
        bool settled = stats && strstr (stats, "\"spare\":1,\"creating\":0");
        zstr_free (&stats);
        if (settled)
            break;
        assert (msg_send_heartbeat (assignment, route, "assignment", "{}") == 0);
        zclock_sleep (100);
    }
}

//  How many of the test's sandbox cgroups have the urgent CPU weight (v1
//  cpu.shares 10240, v2 cpu.weight 1000)
static int
s_test_urgent_cgroups (void)
{
    const char *patterns [] = { "/sys/fs/cgroup/cpu/clowdy-worker-test/*/cpu.shares",
                                "/sys/fs/cgroup/clowdy-worker-test/*/cpu.weight" };
    int count = 0;
    for (int index = 0; index < 2; index++) {
        glob_t found;
        if (glob (patterns [index], 0, NULL, &found) == 0)
            for (size_t at = 0; at < found.gl_pathc; at++) {
                FILE *file = fopen (found.gl_pathv [at], "re");
                int weight = 0;
                if (file && fscanf (file, "%d", &weight) == 1 && weight == (index == 0? 10240: 1000))
                    count++;
                if (file)
                    fclose (file);
            }
        globfree (&found);
    }
    return count;
}

static msg_t *
s_expect (zsock_t *sock, msg_id_t id)
{
    while (true) {
        msg_t *msg = msg_recv (sock, true);
        assert (msg);
        if (msg_id (msg) == id)
            return msg;
        assert (msg_id (msg) == MSG_ID_HEARTBEAT || msg_id (msg) == MSG_ID_READY);
        msg_destroy (&msg);
    }
}

static cJSON *
s_exec (zsock_t *assignment, zframe_t *route, const char *env_id, const char *job_id,
        const char *code, int timeout_s, const char *input, char *state, size_t state_size)
{
    cJSON *context = cJSON_CreateObject ();
    cJSON_AddStringToObject (context, "id", "ffffffffffff");
    cJSON_AddStringToObject (context, "name", "test");
    cJSON_AddNumberToObject (context, "version", 1);
    cJSON_AddStringToObject (context, "code", code);
    cJSON_AddItemToObject (context, "env", cJSON_Parse ("{\"GREETING\":\"hi\"}"));
    char *text = cJSON_PrintUnformatted (context);
    assert (msg_send_exec (assignment, route, env_id, job_id, "k", 64, timeout_s * 1000, text, input) == 0);
    free (text);
    cJSON_Delete (context);
    msg_t *done = s_expect (assignment, MSG_ID_DONE);
    assert (streq (msg_done_env_id (done), env_id) && streq (msg_done_job_id (done), job_id));
    snprintf (state, state_size, "%s", msg_done_env_state (done));
    cJSON *result = cJSON_Parse (msg_done_result (done));
    assert (result);
    msg_destroy (&done);
    return result;
}

//  Send a cold EXEC of a function of project with the database dir mounted
//  read-only (so no plain spare can serve it: a project spare does)
static void
s_send_exec_project (zsock_t *assignment, zframe_t *route, const char *env_id, const char *job_id,
                     const char *code, const char *project, const char *mount_source)
{
    cJSON *context = cJSON_CreateObject ();
    cJSON_AddStringToObject (context, "id", "eeeeeeeeeeee");
    cJSON_AddStringToObject (context, "name", "test");
    cJSON_AddNumberToObject (context, "version", 1);
    cJSON_AddStringToObject (context, "code", code);
    cJSON_AddStringToObject (context, "project_id", project);
    cJSON_AddItemToObject (context, "env", cJSON_CreateObject ());
    cJSON *mount = cJSON_AddObjectToObject (context, "database_mount");
    cJSON_AddStringToObject (mount, "source", mount_source);
    cJSON_AddStringToObject (mount, "target", "/opt/database");
    cJSON_AddBoolToObject (mount, "writable", false);
    char *text = cJSON_PrintUnformatted (context);
    assert (msg_send_exec (assignment, route, env_id, job_id, "p", 64, 5000, text, "{}") == 0);
    free (text);
    cJSON_Delete (context);
}

//  Send EXEC; the context only when code is given (a cold start)
static void
s_send_exec (zsock_t *assignment, zframe_t *route, const char *env_id, const char *job_id,
             const char *code, const char *input)
{
    char *context = code ? zsys_sprintf ("{\"name\":\"test\",\"version\":1,\"code\":\"%s\"}", code) : strdup ("{}");
    assert (msg_send_exec (assignment, route, env_id, job_id, "k", 64, 5000, context, input) == 0);
    zstr_free (&context);
}

//  The next message from the worker other than a HEARTBEAT, heartbeating
//  it meanwhile (so it does not re-register); counts the worker's
//  heartbeats seen on the way
static msg_t *
s_next (zsock_t *assignment, zframe_t *route, int *heartbeats)
{
    zpoller_t *poller = zpoller_new (assignment, NULL);
    int64_t give_up = zclock_mono () + 15000;
    while (true) {
        if (!zpoller_wait (poller, 300)) {
            assert (zclock_mono () < give_up);
            assert (msg_send_heartbeat (assignment, route, "assignment", "{}") == 0);
            continue;
        }
        msg_t *msg = msg_recv (assignment, true);
        assert (msg);
        if (msg_id (msg) == MSG_ID_HEARTBEAT) {
            //  Answered, as assignment would: a wait longer than the
            //  worker's expiry (a cold start on an emulated VM) must not
            //  look like assignment gone
            if (heartbeats)
                (*heartbeats)++;
            msg_destroy (&msg);
            assert (msg_send_heartbeat (assignment, route, "assignment", "{}") == 0);
            continue;
        }
        zpoller_destroy (&poller);
        return msg;
    }
}

static void
s_expect_done (msg_t *msg, const char *job_id, const char *state)
{
    if (msg_id (msg) != MSG_ID_DONE || strneq (msg_done_job_id (msg), job_id)
    ||  strneq (msg_done_env_state (msg), state)) {
        printf ("expected DONE %s %s, got %s %s\n", job_id, state, msg_command (msg),
                msg_id (msg) == MSG_ID_DONE ? msg_done_job_id (msg) : "");
        assert (false);
    }
}

void
worker_test (bool verbose)
{
    printf ("worker: ");
    if (geteuid () != 0) {
        printf ("needs root to create sandboxes (run the tests as root)\n");
        assert (false);
    }
    char *argv [] = { "clowdy", "--prewarm", "1", "--cgroup", "clowdy-worker-test", NULL };
    config_t config;
    char error [256];
    assert (config_parse (&config, 5, argv, error, sizeof error) == 0);
    endpoints_t *endpoints = endpoints_new ();
    endpoints_set (endpoints, "worker", "inproc://worker-test");
    zsock_t *assignment = zsock_new_router ("inproc://worker-test");
    zsock_set_rcvtimeo (assignment, 15000);
    actor_args_t args = { &config, endpoints, 0 };
    zactor_t *worker = actor_start (worker_actor, &args, "worker", NULL);
    msg_t *ready = s_expect (assignment, MSG_ID_READY);
    zframe_t *route = zframe_dup (msg_route (ready));
    msg_destroy (&ready);
    zclock_sleep (300);         //  Let the spare start

    char state [16];
    const char *code =
        "import os\n"
        "calls = 0\n"
        "def handler(event, context):\n"
        "    global calls\n"
        "    calls += 1\n"
        "    print('called', calls)\n"
        "    if event.get('sleep'):\n"
        "        import time; time.sleep(event['sleep'])\n"
        "    if event.get('hog'):\n"
        "        hog = bytearray(512 * 1024 * 1024)\n"
        "    if event.get('fail'):\n"
        "        raise ValueError('no thanks')\n"
        "    if event.get('exit'):\n"
        "        os._exit(3)\n"
        "    return {'calls': calls, 'greeting': os.environ.get('GREETING')}\n";
    //  Cold, then warm: module state survives between calls
    cJSON *result = s_exec (assignment, route, "env000000001", "job000000001", code, 5, "{}", state, sizeof state);
    assert (streq (state, "warm"));
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (result, "status")), "success"));
    assert (cJSON_IsTrue (cJSON_GetObjectItem (result, "cold_start")));
    assert (cJSON_GetObjectItem (cJSON_GetObjectItem (result, "output"), "calls")->valueint == 1);
    assert (strstr (cJSON_GetStringValue (cJSON_GetObjectItem (result, "logs")), "called 1"));
    if (verbose)
        printf ("(cold %.2f ms) ", cJSON_GetNumberValue (cJSON_GetObjectItem (result, "duration_us")) / 1000);
    cJSON_Delete (result);
    result = s_exec (assignment, route, "env000000001", "job000000002", code, 5, "{}", state, sizeof state);
    assert (!cJSON_IsTrue (cJSON_GetObjectItem (result, "cold_start")));
    assert (cJSON_GetObjectItem (cJSON_GetObjectItem (result, "output"), "calls")->valueint == 2);
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (cJSON_GetObjectItem (result, "output"), "greeting")), "hi"));
    if (verbose)
        printf ("(warm %.3f ms) ", cJSON_GetNumberValue (cJSON_GetObjectItem (result, "duration_us")) / 1000);
    cJSON_Delete (result);

    //  An exception: error result, environment stays warm
    result = s_exec (assignment, route, "env000000001", "job000000003", code, 5, "{\"fail\":true}", state, sizeof state);
    assert (streq (state, "warm"));
    assert (strstr (cJSON_GetStringValue (cJSON_GetObjectItem (result, "error")), "ValueError: no thanks"));
    cJSON_Delete (result);

    //  Timeout: killed, reported as timeout, environment gone
    result = s_exec (assignment, route, "env000000005", "job000000004", code, 1, "{\"sleep\":5}", state, sizeof state);
    assert (streq (state, "dead"));
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (result, "status")), "timeout"));
    cJSON_Delete (result);

    //  Out of memory (64 MB limit, 512 MB asked): told apart from a timeout
    result = s_exec (assignment, route, "env000000002", "job000000005", code, 5, "{\"hog\":true}", state, sizeof state);
    assert (streq (state, "dead"));
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (result, "status")), "error"));
    assert (strstr (cJSON_GetStringValue (cJSON_GetObjectItem (result, "error")), "memory limit of 64 MB"));
    cJSON_Delete (result);

    //  The process exits: a crash with its exit code
    result = s_exec (assignment, route, "env000000003", "job000000006", code, 5, "{\"exit\":true}", state, sizeof state);
    assert (streq (state, "dead"));
    assert (strstr (cJSON_GetStringValue (cJSON_GetObjectItem (result, "error")), "exited with code 3"));
    cJSON_Delete (result);

    //  Code that does not load
    result = s_exec (assignment, route, "env000000004", "job000000007", "def handler(:\n", 5, "{}", state, sizeof state);
    assert (streq (state, "dead"));
    assert (strstr (cJSON_GetStringValue (cJSON_GetObjectItem (result, "error")), "SyntaxError"));
    cJSON_Delete (result);

    //  Regression: after DONE "dead" the worker says nothing more of that
    //  environment (it used to send GONE too). The next message is the next
    //  call's answer.
    s_send_exec (assignment, route, "env000000001", "job000000008", NULL, "{}");
    msg_t *msg = s_next (assignment, route, NULL);
    s_expect_done (msg, "job000000008", "warm");
    msg_destroy (&msg);

    //  Regression: JSON is built with cJSON, so an id with a quote stays an
    //  id. (Input that is not JSON never reaches the worker: the codec
    //  refuses the EXEC at receive, see the msg selftest.)
    s_send_exec (assignment, route, "env000000001", "job\"quoted", NULL, "{\"a\":\"\\\"\"}");
    msg = s_next (assignment, route, NULL);
    s_expect_done (msg, "job\"quoted", "warm");
    assert (strstr (msg_done_result (msg), "\"status\":\"success\""));
    msg_destroy (&msg);

    //  Sandbox creation runs off the loop: while two cold starts wait for a
    //  slow creator (test hook), a warm call is answered and heartbeats go on
    if (verbose)
        printf ("(slow creation) ");
    //  First the pool is full again (one spare up, none being made), so the
    //  second cold start below finds no spare to take or adopt, and waits
    //  (with zygotes the pool grew with the cold starts above, and shrinks
    //  back once they are 2 s old: heartbeats meanwhile, so that the worker
    //  does not take assignment for gone)
    s_test_pool_settle (worker, assignment, route);
    zstr_send (worker, "CREATE-DELAY 2000");
    s_send_exec (assignment, route, "env000000006", "job000000010", "def handler(e, c):\\n    return 6\\n", "{}");
    s_send_exec (assignment, route, "env000000007", "job000000011", "def handler(e, c):\\n    return 7\\n", "{}");
    s_send_exec (assignment, route, "env000000001", "job000000012", NULL, "{}");
    int heartbeats = 0;
    bool warm_answered = false, cold_answered = false;
    for (int answers = 0; answers < 3; answers++) {
        msg = s_next (assignment, route, &heartbeats);
        assert (msg_id (msg) == MSG_ID_DONE);
        assert (strstr (msg_done_result (msg), "\"status\":\"success\""));
        if (streq (msg_done_job_id (msg), "job000000012"))
            warm_answered = true;
        else
        if (streq (msg_done_job_id (msg), "job000000011")) {
            //  This one waited for a created sandbox: by then the warm call
            //  was answered and the worker went on heartbeating
            assert (warm_answered && heartbeats > 0);
            cold_answered = true;
        }
        msg_destroy (&msg);
    }
    assert (warm_answered && cold_answered);
    zstr_send (worker, "CREATE-DELAY 0");

    //  A call that adopts a spare still being made raises that spare's
    //  cgroup to the urgent CPU weight at once, by the name its creator sent
    //  (the spare's creation is held for 1.5 s right after, test hook), and
    //  its function's code runs at the default weight again
    if (verbose)
        printf ("(urgent adoption) ");
    s_test_pool_settle (worker, assignment, route);
    assert (s_test_urgent_cgroups () == 0);
    zstr_send (worker, "CGROUP-DELAY 1500");
    s_send_exec (assignment, route, "env00000000a", "job000000020", "def handler(e, c):\n    return 10\n", "{}");
    msg = s_next (assignment, route, NULL);     //  took the spare that was up
    s_expect_done (msg, "job000000020", "warm");
    msg_destroy (&msg);
    zclock_sleep (300);                         //  its refill names its cgroup, then waits
    zstr_send (worker, "STATS");
    char *stats = zstr_recv (worker);
    assert (stats && strstr (stats, "\"spare\":0,\"creating\":1"));
    zstr_free (&stats);
    assert (s_test_urgent_cgroups () == 0);     //  a spare: the default weight
    s_send_exec (assignment, route, "env00000000b", "job000000021", "def handler(e, c):\n    return 11\n", "{}");
    int urgent = 0;
    for (int tries = 0; tries < 50 && !urgent; tries++) {
        zclock_sleep (10);
        urgent = s_test_urgent_cgroups ();
    }
    assert (urgent == 1);                       //  adopted: raised
    zclock_sleep (200);
    assert (s_test_urgent_cgroups () == 1);     //  ... while its creation is still held
    msg = s_next (assignment, route, NULL);
    s_expect_done (msg, "job000000021", "warm");
    assert (strstr (msg_done_result (msg), "\"output\":11"));
    msg_destroy (&msg);
    assert (s_test_urgent_cgroups () == 0);     //  its load set the default back
    zstr_send (worker, "CGROUP-DELAY 0");

    //  Regression: an EXEC for an environment still running a call used to
    //  be answered DONE "warm", so assignment freed an environment whose run
    //  went on. Now: the new call is "lost" (it never ran: assignment runs it
    //  elsewhere) and the environment ends, its old call with it.
    s_send_exec (assignment, route, "env000000001", "job000000013", NULL, "{\"sleep\":3}");
    s_send_exec (assignment, route, "env000000001", "job000000014", NULL, "{}");
    msg = s_next (assignment, route, NULL);
    s_expect_done (msg, "job000000014", "lost");
    msg_destroy (&msg);
    msg = s_next (assignment, route, NULL);
    s_expect_done (msg, "job000000013", "dead");
    msg_destroy (&msg);

    //  Input reaches the runner as gateway wrote it, and the output comes
    //  back the same: numbers keep their digits (core/jsonfit.h)
    const char *stopper = "import os, signal, threading\\n"
                          "def handler(e, c):\\n"
                          "    if e.get('stop'):\\n"
                          "        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGSTOP)).start()\\n"
                          "    if e.get('echo'):\\n"
                          "        return e\\n"
                          "    return len(e.get('data', ''))\\n";
    s_send_exec (assignment, route, "env000000009", "job000000015", stopper,
                 "{\"echo\":1,\"n\":9007199254740993,\"f\":10.0,\"z\":-0.0}");
    msg = s_next (assignment, route, NULL);
    s_expect_done (msg, "job000000015", "warm");
    assert (strstr (msg_done_result (msg), "\"output\":{\"echo\":1,\"n\":9007199254740993,\"f\":10.0,\"z\":-0.0}"));
    msg_destroy (&msg);

    //  A runner that stops reading (SIGSTOP after it answered) never
    //  blocks the worker: a large input for it waits in its environment's
    //  queue, the next call to another environment is answered first, and
    //  the stopped one ends by its own timeout (5 s)
    if (verbose)
        printf ("(stopped runner) ");
    s_send_exec (assignment, route, "env000000008", "job000000016", stopper, "{\"stop\":true}");
    msg = s_next (assignment, route, NULL);
    s_expect_done (msg, "job000000016", "warm");
    msg_destroy (&msg);
    zclock_sleep (500);
    size_t big_size = 4 << 20;
    char *big = (char *) malloc (big_size + 16);
    memcpy (big, "{\"data\":\"", 9);
    memset (big + 9, 'x', big_size);
    memcpy (big + 9 + big_size, "\"}", 3);
    s_send_exec (assignment, route, "env000000008", "job000000017", NULL, big);
    free (big);
    s_send_exec (assignment, route, "env000000009", "job000000018", NULL, "{}");
    msg = s_next (assignment, route, NULL);
    s_expect_done (msg, "job000000018", "warm");
    msg_destroy (&msg);
    msg = s_next (assignment, route, NULL);
    s_expect_done (msg, "job000000017", "dead");
    assert (strstr (msg_done_result (msg), "\"status\":\"timeout\""));
    msg_destroy (&msg);

    //  Project spares: a function with a database mount (no plain spare
    //  serves it) teaches its project's spare what its load imported; the
    //  spare imports it, and the project's next cold start finds it imported.
    //  Another project's cold start does not.
    if (verbose)
        printf ("(project spares) ");
    char *database = zsys_sprintf ("/tmp/clowdy-worker-test-db-%d", getpid ());
    assert (mkdir (database, 0755) == 0 || errno == EEXIST);
    const char *importer = "import sys\nHAD = 'fractions' in sys.modules\nimport fractions\n"
                           "def handler(e, c):\n    return {'had': HAD}\n";
    const char *project_jobs [] = { "job000000020", "job000000021", "job000000022" };
    const char *projects [] = { "project-a", "project-a", "project-b" };
    const char *had [] = { "\"had\":false", "\"had\":true", "\"had\":false" };
    for (int index = 0; index < 3; index++) {
        if (index == 1) {
            //  Its spare is up and has imported (heartbeats meanwhile)
            bool preloaded = false;
            for (int tries = 0; tries < 300 && !preloaded; tries++) {
                zstr_send (worker, "STATS");
                char *stats = zstr_recv (worker);
                preloaded = stats && strstr (stats, "\"preloaded\":1");
                zstr_free (&stats);
                if (!preloaded) {
                    assert (msg_send_heartbeat (assignment, route, "assignment", "{}") == 0);
                    zclock_sleep (100);
                }
            }
            assert (preloaded);
        }
        char env_id [16];
        snprintf (env_id, sizeof env_id, "env0000000%d", 20 + index);
        s_send_exec_project (assignment, route, env_id, project_jobs [index], importer, projects [index], database);
        msg = s_next (assignment, route, NULL);
        s_expect_done (msg, project_jobs [index], "warm");
        assert (strstr (msg_done_result (msg), "\"status\":\"success\""));
        assert (strstr (msg_done_result (msg), had [index]));
        msg_destroy (&msg);
    }
    rmdir (database);
    zstr_free (&database);

    zframe_destroy (&route);
    zactor_destroy (&worker);
    zsock_destroy (&assignment);
    endpoints_destroy (&endpoints);
    config_reset (&config);
    sandbox_system_shutdown ();
    printf ("OK\n");
}
