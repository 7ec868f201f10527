/*  =========================================================================
    clowdy - the single binary: every actor of the platform in one process

    main stays thin: read the configuration, start the actors (the ones that
    others connect to first, http last so that "listening on" means ready),
    wait for SIGINT/SIGTERM or an actor's death, then destroy them in reverse
    order. http drains first, so requests in flight still find the gateway
    and the workers alive behind it.

    Each actor answers the start-up handshake (broker/actor.h): READY, or
    FAILED with a reason. On the first failure main prints one line naming
    the actor and the cause, stops the actors already started and exits
    non-zero, without a "listening on" line. Shutdown is bounded: once it
    begins, a watchdog thread ends the process after ACTOR_DRAIN_MS +
    ACTOR_STOP_MARGIN_MS, naming the actor that did not stop, so a stuck
    actor can never make SIGTERM hang.
    ========================================================================= */

#include <czmq.h>
#include <arpa/inet.h>
#include <malloc.h>
#include <stdatomic.h>
#include "actors/agent.h"
#include "actors/assignment.h"
#include "actors/builder.h"
#include "actors/layerserver.h"
#include "core/layers.h"
#include "actors/database.h"
#include "actors/events.h"
#include "actors/gateway.h"
#include "actors/http.h"
#include "actors/placement.h"
#include "actors/recorder.h"
#include "actors/worker.h"
#include "broker/actor.h"
#include "broker/endpoints.h"
#include "broker/msg.h"
#include "core/api.h"
#include "core/asyncq.h"
#include "core/cli.h"
#include "core/config.h"
#include "core/logstream.h"
#include "core/sigv4.h"
#include "core/store.h"
#include "core/tokens.h"
#include "runtime/sandbox.h"

#define MAX_ACTORS 80

//  Every actor of the platform, in start order: services before the actors
//  that connect to them, http last. This table is the one place where an
//  actor is registered (see "Adding an actor" in the README). A worker-side
//  actor runs in --role worker (and in one process), config.workers times;
//  the others run in --role control (and in one process), once.
static const struct {
    const char *name;               //  For the handshake's failure line
    zactor_fn *handler;             //  Its X_actor function
    bool worker_side;               //  Started per worker, on worker hosts
} s_actors [] = {
    { "recorder", recorder_actor, false },
    { "gateway", gateway_actor, false },
    { "assignment", assignment_actor, false },
    { "placement", placement_actor, false },
    { "worker", worker_actor, true },
    { "builder", builder_actor, false },
    { "layerserver", layerserver_actor, false },
    { "database", database_actor, false },
    { "agent", agent_actor, false },
    { "events", events_actor, false },
    { "http", http_actor, false },
};

//  Set by SIGINT/SIGTERM. We take the signals from CZMQ: its handler sets
//  zsys_interrupted, which makes every poller in every actor give up at
//  once, cutting off calls in flight. Actors stop only on $TERM, in order.
static volatile sig_atomic_t s_stop = 0;

static void
s_on_signal (int signal_number)
{
    s_stop = 1;
}

//  The actor main is stopping now, for the watchdog's last words
static _Atomic (const char *) s_stopping = NULL;

//  Shutdown's bound: sleeps that long, then ends the process if it is
//  still here (a clean shutdown returns from main well before)
static void *
s_watchdog (void *args)
{
    struct timespec deadline;
    clock_gettime (CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (ACTOR_DRAIN_MS + ACTOR_STOP_MARGIN_MS) / 1000;
    while (clock_nanosleep (CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL) == EINTR)
        ;
    //  Not stdio: a stuck thread may hold its lock
    const char *stuck = atomic_load (&s_stopping);
    dprintf (STDERR_FILENO, "clowdy: %s did not stop within %d s of the shutdown; exiting now\n",
             stuck ? stuck : "the shutdown", (ACTOR_DRAIN_MS + ACTOR_STOP_MARGIN_MS) / 1000);
    _exit (3);
}

static void
s_watchdog_start (void)
{
    pthread_t thread;
    pthread_attr_t attributes;
    pthread_attr_init (&attributes);
    pthread_attr_setdetachstate (&attributes, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create (&thread, &attributes, s_watchdog, NULL);
    if (rc)
        zsys_warning ("clowdy: no shutdown watchdog: %s", strerror (rc));
    pthread_attr_destroy (&attributes);
}

//  True if the --listen host is a loopback address (local mode needs one)
static bool
s_listen_is_loopback (const char *listen)
{
    const char *colon = strrchr (listen, ':');
    if (!colon)
        return false;
    size_t len = (size_t) (colon - listen);
    char host [256];
    if (len == 0 || len >= sizeof host)
        return false;
    memcpy (host, listen, len);
    host [len] = 0;
    if (streq (host, "localhost") || streq (host, "[::1]"))
        return true;
    struct in_addr address;
    return inet_pton (AF_INET, host, &address) == 1 && (ntohl (address.s_addr) >> 24) == 127;
}

static void
s_set_log_level (const char *level)
{
    //  CZMQ prints every level; below "info" we silence its stdout logging of
    //  info and debug by routing them nowhere, warnings and errors still show.
    zsys_set_logident ("clowdy");
    //  Records carry outside input: each stays on one line (core/logstream.h)
    FILE *stream = logstream_new (stdout);
    if (stream)
        zsys_set_logstream (stream);
    if (streq (level, "error") || streq (level, "warning"))
        zsys_set_logsystem (false);
}

//  clowdy token create --user NAME [--name LABEL] | list [--user NAME] | revoke ID
//  [--data-dir DIR]: manage API tokens in the data dir's database. The
//  plaintext is printed once, on create; only its hash is stored.
static int
s_token_command (int argc, char *argv [])
{
    const char *usage = "usage: clowdy token create --user NAME [--name LABEL] [--data-dir DIR]\n"
                        "       clowdy token list [--user NAME] [--data-dir DIR]\n"
                        "       clowdy token revoke ID [--data-dir DIR]\n";
    //  stdout carries the token alone (TOKEN=$(clowdy token create ...)):
    //  log lines, such as the first run's migrations, go to stderr
    zsys_set_logstream (stderr);
    const char *action = argc > 2 ? argv [2] : "";
    const char *user = NULL, *name = "cli", *target = NULL;
    const char *data_dir = getenv ("CLOWDY_DATA_DIR") ? getenv ("CLOWDY_DATA_DIR") : "data";
    for (int argn = 3; argn < argc; argn++) {
        const char *value = argn + 1 < argc ? argv [argn + 1] : NULL;
        if (streq (argv [argn], "--user") && value)
            user = argv [++argn];
        else
        if (streq (argv [argn], "--name") && value)
            name = argv [++argn];
        else
        if (streq (argv [argn], "--data-dir") && value)
            data_dir = argv [++argn];
        else
        if (!target && argv [argn][0] != '-')
            target = argv [argn];
        else {
            fputs (usage, stderr);
            return 2;
        }
    }
    bool create = streq (action, "create"), list = streq (action, "list"), revoke = streq (action, "revoke");
    if ((!create && !list && !revoke) || (create && (!user || !*user)) || (revoke && !target)) {
        fputs (usage, stderr);
        return 2;
    }
    if (zsys_dir_create ("%s", data_dir)) {
        fprintf (stderr, "clowdy: cannot create data dir '%s'\n", data_dir);
        return 1;
    }
    store_t *store = store_open (data_dir);
    int rc = 1;
    if (store && create) {
        sigv4_key_load (data_dir);          //  so the token can sign SigV4 requests (core/sigv4.h)
        char id [AUTH_TOKEN_ID_SIZE];
        char *token = tokens_create (store, user, name, id);
        if (token) {
            printf ("%s\n", token);
            fprintf (stderr, "clowdy: token %s created for user '%s'; it is shown only this once\n", id, user);
            free (token);
            rc = 0;
        }
    }
    else
    if (store && list) {
        cJSON *tokens = tokens_list (store, user);
        cJSON *token;
        cJSON_ArrayForEach (token, tokens) {
            cJSON *used = cJSON_GetObjectItem (token, "last_used_at");
            printf ("%s  %-20s  %-24s  created %s  last used %s\n",
                    cJSON_GetStringValue (cJSON_GetObjectItem (token, "id")),
                    cJSON_GetStringValue (cJSON_GetObjectItem (token, "user_id")) ?
                        cJSON_GetStringValue (cJSON_GetObjectItem (token, "user_id")) : user,
                    cJSON_GetStringValue (cJSON_GetObjectItem (token, "name")),
                    cJSON_GetStringValue (cJSON_GetObjectItem (token, "created_at")),
                    cJSON_IsString (used) ? used->valuestring : "never");
        }
        rc = tokens ? 0 : 1;
        cJSON_Delete (tokens);
    }
    else
    if (store && revoke) {
        rc = tokens_revoke (store, NULL, target) == 0 ? 0 : 1;
        fprintf (stderr, rc ? "clowdy: no live token %s\n" : "clowdy: token %s revoked\n", target);
    }
    store_destroy (&store);
    return rc;
}

int
main (int argc, char *argv [])
{
    //  Request bodies, inputs and results of megabytes pass through several
    //  threads. glibc would serve them from its heaps and, once freed, keep
    //  them (its mmap threshold grows with every big free, up to 32 MB), so
    //  an attack of slow 6 MiB bodies left the server 200 MB bigger for
    //  good (scripts/soak). Blocks of 256 KiB and more are mapped and given
    //  back to the system when freed.
    mallopt (M_MMAP_THRESHOLD, 256 * 1024);
    if (argc > 1 && streq (argv [1], "token"))
        return s_token_command (argc, argv);
    //  The client commands (fn, project, route, env): core/cli.c
    if (argc > 1 && cli_is_command (argv [1]))
        return cli_main (argc, argv);
    if (argc > 1 && streq (argv [1], "protocol-doc")) {
        //  Hidden: prints broker/PROTOCOL.md as broker/msg_defs.h declares it
        char *doc = msg_protocol_markdown ();
        fputs (doc, stdout);
        free (doc);
        return 0;
    }
    if (argc > 1 && streq (argv [1], "keys")) {
        //  clowdy keys --curve-dir DIR: certificates for CurveZMQ tcp links
        const char *dir = argc == 4 && streq (argv [2], "--curve-dir") ? argv [3] : NULL;
        if (!dir) {
            fputs ("usage: clowdy keys --curve-dir DIR\n", stderr);
            return 2;
        }
        if (endpoints_make_keys (dir)) {
            fprintf (stderr, "clowdy: cannot write keys in %s\n", dir);
            return 1;
        }
        printf ("Keys are in %s. On the control host keep server.cert and server.cert_secret;\n"
                "give each worker host a curve dir with server.cert (public only) and its own client\n"
                "keys ('clowdy keys' there), and copy each worker's client.cert into the control\n"
                "host's %s/clients/ to admit it.\n", dir, dir);
        return 0;
    }

    config_t config;
    char error [512];
    if (config_parse (&config, argc, argv, error, sizeof error)) {
        fprintf (stderr, "clowdy: %s\n", error);
        config_reset (&config);
        return 2;
    }
    if (config.help) {
        config_usage (stdout);
        config_reset (&config);
        return 0;
    }
    if (config.version) {
        printf ("clowdy %s\n", CLOWDY_VERSION);
        config_reset (&config);
        return 0;
    }
    if (streq (config.auth, "local") && strneq (config.role, "worker") && !s_listen_is_loopback (config.listen)) {
        fprintf (stderr, "clowdy: refusing to start: --auth local (no credentials) is only allowed on a "
                         "loopback address, not '%s'; use --auth jwt or listen on 127.0.0.1\n", config.listen);
        config_reset (&config);
        return 2;
    }
    zsys_handler_set (NULL);
    struct sigaction action = { .sa_handler = s_on_signal };
    sigemptyset (&action.sa_mask);
    sigaction (SIGINT, &action, NULL);
    sigaction (SIGTERM, &action, NULL);
    signal (SIGPIPE, SIG_IGN);
    s_set_log_level (config.log_level);
    //  Layer keys name the interpreter: known before any thread makes one
    layers_set_python (config.python);
    if (config.max_memory_mb > config.memory_budget_mb) {
        zsys_warning ("clowdy: --max-memory-mb %ld is over --memory-budget-mb %ld: functions may ask for %ld MB at most",
                      config.max_memory_mb, config.memory_budget_mb, config.memory_budget_mb);
        config.max_memory_mb = config.memory_budget_mb < 64 ? 64 : config.memory_budget_mb;
    }
    if (zsys_dir_create ("%s", config.data_dir) || !(zsys_file_mode (config.data_dir) & S_IFDIR)) {
        fprintf (stderr, "clowdy: cannot create data dir '%s': %s\n", config.data_dir,
                 zsys_file_exists (config.data_dir) ? "it exists and is not a directory" : strerror (errno));
        config_reset (&config);
        return 1;
    }
    endpoints_t *endpoints = endpoints_new ();
    if (endpoints_load_env (endpoints)) {
        endpoints_destroy (&endpoints);
        config_reset (&config);
        return 2;
    }
    if (*config.curve_dir && endpoints_set_curve (endpoints, config.curve_dir)) {
        endpoints_destroy (&endpoints);
        config_reset (&config);
        return 2;
    }
    endpoints_set_heartbeat (endpoints, (int) config.heartbeat_ms, (int) config.worker_expiry_ms);
    zsys_set_linger (0);
    zsys_info ("clowdy %s: data in %s, auth %s", CLOWDY_VERSION, config.data_dir, config.auth);
    //  The async queue's caps, read by the control-plane threads (core/asyncq.h)
    asyncq_set_limits (config.async_max_per_function, config.async_max_queued, config.test_clock_scale);
    api_set_records_sync (recorder_sync);
    //  Local mode: the operator is the only user and sees the cluster whole
    api_set_cluster_admins (streq (config.auth, "local") ? NULL : config.cluster_admins);
    if (config.test_clock_scale > 1)
        zsys_warning ("clowdy: --test-clock-scale %ld: schedule rates run faster (for tests only)",
                      config.test_clock_scale);

    //  Actor threads inherit a mask without SIGINT/SIGTERM, so the signals
    //  reach main, whose poll they interrupt at once
    sigset_t stop_signals, previous_mask;
    sigemptyset (&stop_signals);
    sigaddset (&stop_signals, SIGINT);
    sigaddset (&stop_signals, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &stop_signals, &previous_mask);

    //  Test hook, read once: CLOWDY_DEBUG_WEDGE=<actor> makes that actor
    //  sleep for ever once started, as if stuck (see broker/actor.h)
    actor_set_wedge (getenv ("CLOWDY_DEBUG_WEDGE"));

    //  In the order of s_actors; the first failure stops the start
    zactor_t *actors [MAX_ACTORS];
    const char *names [MAX_ACTORS];
    actor_args_t args [MAX_ACTORS];
    int count = 0;
    //  --role control runs everything but the workers; --role worker only
    //  the workers, which connect to assignment's "worker" endpoint (tcp)
    bool control = strneq (config.role, "worker");
    bool workers = strneq (config.role, "control");
    int rc = 0;
    for (size_t entry = 0; entry < sizeof s_actors / sizeof s_actors [0] && rc == 0; entry++) {
        bool here = s_actors [entry].worker_side ? workers : control;
        long copies = !here ? 0 : s_actors [entry].worker_side ? config.workers : 1;
        for (long copy = 0; copy < copies && count < MAX_ACTORS && rc == 0; copy++) {
            args [count] = (actor_args_t) { &config, endpoints, (int) copy };
            char *reason = NULL;
            actors [count] = actor_start (s_actors [entry].handler, &args [count], s_actors [entry].name, &reason);
            if (actors [count])
                names [count++] = s_actors [entry].name;
            else {
                fprintf (stderr, "clowdy: %s: %s\n", s_actors [entry].name, reason);
                rc = 1;
            }
            zstr_free (&reason);
        }
    }
    pthread_sigmask (SIG_SETMASK, &previous_mask, NULL);
    zactor_t *http = rc == 0 && control ? actors [count - 1] : NULL;
    if (rc == 0 && !control)
        zsys_info ("clowdy: %ld workers connected to %s", config.workers, endpoints_get (endpoints, "worker"));
    if (http) {
        zstr_send (http, "PORT");
        zpoller_t *poller = zpoller_new (http, NULL);
        char *port = zpoller_wait (poller, ACTOR_START_TIMEOUT_MS) ? zstr_recv (http) : NULL;
        zpoller_destroy (&poller);
        if (port && atoi (port) > 0) {
            const char *colon = strrchr (config.listen, ':');
            printf ("clowdy: listening on http://%.*s:%s\n", (int) (colon - config.listen), config.listen, port);
            fflush (stdout);
        }
        else {
            fprintf (stderr, "clowdy: http: gave no port for %s\n", config.listen);
            rc = 1;
        }
        zstr_free (&port);
    }
    //  Wait for a signal, or for the http actor to stop on its own
    zpoller_t *poller = rc == 0 ? zpoller_new (http ? http : actors [0], NULL) : NULL;
    while (poller && !s_stop) {
        if (zpoller_wait (poller, 500) && http) {
            zsys_error ("clowdy: the http actor stopped unexpectedly");
            rc = 1;
            break;
        }
    }
    zpoller_destroy (&poller);
    zsys_info ("clowdy: shutting down");
    s_watchdog_start ();
    //  A worker host leaves in good order: every worker says so at once and
    //  finishes the calls it runs (within ACTOR_DRAIN_MS) before it stops
    if (!control)
        for (int index = 0; index < count; index++)
            zstr_send (actors [index], "DRAIN");
    while (count > 0) {
        atomic_store (&s_stopping, names [--count]);
        zactor_destroy (&actors [count]);
    }
    atomic_store (&s_stopping, NULL);
    //  The workers are gone: remove the cgroups kept ready for sandboxes
    sandbox_system_shutdown ();
    endpoints_destroy (&endpoints);
    config_reset (&config);
    zsys_info ("clowdy: stopped");
    return rc;
}
