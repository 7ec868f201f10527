/*  =========================================================================
    clowdy - the single binary: every actor of the platform in one process

    main stays thin: read the configuration, start the actors (the ones that
    others connect to first, http last so that "listening on" means ready),
    wait for SIGINT/SIGTERM or an actor's death, then destroy them in reverse
    order. http drains first, so requests in flight still find the gateway
    and the workers alive behind it.
    ========================================================================= */

#include <czmq.h>
#include <arpa/inet.h>
#include "actors/agent.h"
#include "actors/assignment.h"
#include "actors/builder.h"
#include "actors/database.h"
#include "actors/gateway.h"
#include "actors/http.h"
#include "actors/placement.h"
#include "actors/recorder.h"
#include "actors/worker.h"
#include "broker/endpoints.h"
#include "core/config.h"
#include "core/store.h"
#include "core/tokens.h"
#include "runtime/sandbox.h"

#define MAX_ACTORS 80

//  Set by SIGINT/SIGTERM. We take the signals from CZMQ: its handler sets
//  zsys_interrupted, which makes every poller in every actor give up at
//  once, cutting off calls in flight. Actors stop only on $TERM, in order.
static volatile sig_atomic_t s_stop = 0;

static void
s_on_signal (int signal_number)
{
    s_stop = 1;
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
    if (argc > 1 && streq (argv [1], "token"))
        return s_token_command (argc, argv);
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
    if (config.max_memory_mb > config.memory_budget_mb) {
        zsys_warning ("clowdy: --max-memory-mb %ld is over --memory-budget-mb %ld: functions may ask for %ld MB at most",
                      config.max_memory_mb, config.memory_budget_mb, config.memory_budget_mb);
        config.max_memory_mb = config.memory_budget_mb < 64 ? 64 : config.memory_budget_mb;
    }
    if (zsys_dir_create ("%s", config.data_dir)) {
        fprintf (stderr, "clowdy: cannot create data dir '%s': %s\n", config.data_dir, strerror (errno));
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
    zsys_set_linger (0);
    zsys_info ("clowdy %s: data in %s, auth %s", CLOWDY_VERSION, config.data_dir, config.auth);

    //  Actor threads inherit a mask without SIGINT/SIGTERM, so the signals
    //  reach main, whose poll they interrupt at once
    sigset_t stop_signals, previous_mask;
    sigemptyset (&stop_signals);
    sigaddset (&stop_signals, SIGINT);
    sigaddset (&stop_signals, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &stop_signals, &previous_mask);

    //  Start order: services first, then their clients; http last
    zactor_t *actors [MAX_ACTORS];
    actor_args_t args [MAX_ACTORS];
    int count = 0;
    //  --role control runs everything but the workers; --role worker only
    //  the workers, which connect to assignment's "worker" endpoint (tcp)
    bool control = strneq (config.role, "worker");
    bool workers = strneq (config.role, "control");
    struct { zactor_fn *fn; const char *name; long copies; } plan [] = {
        { recorder_actor, "recorder", control },
        { gateway_actor, "gateway", control },
        { assignment_actor, "assignment", control },
        { placement_actor, "placement", control },
        { worker_actor, "worker", workers ? config.workers : 0 },
        { builder_actor, "builder", control },
        { database_actor, "database", control },
        { agent_actor, "agent", control },
        { http_actor, "http", control },
    };
    int rc = 0;
    for (size_t step = 0; step < sizeof plan / sizeof plan [0] && rc == 0; step++)
        for (long copy = 0; copy < plan [step].copies && count < MAX_ACTORS; copy++) {
            args [count] = (actor_args_t) { &config, endpoints, (int) copy };
            actors [count] = zactor_new (plan [step].fn, &args [count]);
            //  An actor that cannot start signals non-zero; zactor_new still returns it
            if (!actors [count]) {
                zsys_error ("clowdy: %s actor did not start", plan [step].name);
                rc = 1;
                break;
            }
            count++;
        }
    pthread_sigmask (SIG_SETMASK, &previous_mask, NULL);
    zactor_t *http = rc == 0 && control ? actors [count - 1] : NULL;
    if (rc == 0 && !control)
        zsys_info ("clowdy: %ld workers connected to %s", config.workers, endpoints_get (endpoints, "worker"));
    if (http) {
        zstr_send (http, "PORT");
        char *port = zstr_recv (http);
        if (port && atoi (port) > 0) {
            const char *colon = strrchr (config.listen, ':');
            printf ("clowdy: listening on http://%.*s:%s\n", (int) (colon - config.listen), config.listen, port);
            fflush (stdout);
        }
        else {
            fprintf (stderr, "clowdy: the http actor could not listen on %s\n", config.listen);
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
    while (count > 0)
        zactor_destroy (&actors [--count]);
    //  The workers are gone: remove the cgroups kept ready for sandboxes
    sandbox_system_shutdown ();
    endpoints_destroy (&endpoints);
    config_reset (&config);
    zsys_info ("clowdy: stopped");
    return rc;
}
