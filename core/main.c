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

int
main (int argc, char *argv [])
{
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
    if (streq (config.auth, "local") && !s_listen_is_loopback (config.listen)) {
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
    zsys_set_linger (0);
    zsys_info ("clowdy %s: data in %s, auth %s", CLOWDY_VERSION, config.data_dir, config.auth);

    //  Start order: services first, then their clients; http last
    zactor_t *actors [MAX_ACTORS];
    actor_args_t args [MAX_ACTORS];
    int count = 0;
    struct { zactor_fn *fn; const char *name; long copies; } plan [] = {
        { recorder_actor, "recorder", 1 },
        { gateway_actor, "gateway", 1 },
        { assignment_actor, "assignment", 1 },
        { placement_actor, "placement", 1 },
        { worker_actor, "worker", config.workers },
        { builder_actor, "builder", 1 },
        { database_actor, "database", 1 },
        { agent_actor, "agent", 1 },
        { http_actor, "http", 1 },
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
    zactor_t *http = rc == 0 ? actors [count - 1] : NULL;
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
    zpoller_t *poller = http && rc == 0 ? zpoller_new (http, NULL) : NULL;
    while (poller && !s_stop) {
        if (zpoller_wait (poller, 500) == http) {
            zsys_error ("clowdy: the http actor stopped unexpectedly");
            rc = 1;
            break;
        }
    }
    zpoller_destroy (&poller);
    zsys_info ("clowdy: shutting down");
    while (count > 0)
        zactor_destroy (&actors [--count]);
    endpoints_destroy (&endpoints);
    config_reset (&config);
    zsys_info ("clowdy: stopped");
    return rc;
}
