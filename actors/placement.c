/*  =========================================================================
    placement - decides which worker creates a new execution environment

    Stateless but for a small memory of where each pool key was last placed
    (affinity). The decision is a pure function of the PLACE message and
    that memory, so it is tested directly through s_choose.
    ========================================================================= */

#include <cjson/cJSON.h>
#include "actors/placement.h"
#include "broker/actor.h"
#include "broker/endpoints.h"
#include "broker/msg.h"
#include "core/config.h"

#define AFFINITY_MAX 4096           //  Pool keys remembered

typedef struct {
    zsock_t *pipe;                  //  Actor command pipe
    zsock_t *frontend;              //  ROUTER for assignment
    zhashx_t *affinity;             //  pool key -> worker id it was last placed on
    bool terminated;                //  Did caller ask us to quit?
} self_t;

//  Pick a worker for a new environment of memory_mb; returns its id (owned
//  by workers) or NULL when none has room.
static const char *
s_choose (zhashx_t *affinity, const char *pool_key, cJSON *workers, double memory_mb)
{
    const char *preferred = affinity ? (const char *) zhashx_lookup (affinity, pool_key) : NULL;
    const char *best = NULL;
    double best_free = -1, best_envs = 0;
    cJSON *worker;
    cJSON_ArrayForEach (worker, workers) {
        const char *id = cJSON_GetStringValue (cJSON_GetObjectItem (worker, "id"));
        double capacity = cJSON_GetNumberValue (cJSON_GetObjectItem (worker, "capacity_mb"));
        double used = cJSON_GetNumberValue (cJSON_GetObjectItem (worker, "memory_mb"));
        double envs = cJSON_GetNumberValue (cJSON_GetObjectItem (worker, "envs"));
        if (!id || isnan (capacity) || isnan (used) || isnan (envs))
            continue;
        double free_mb = capacity - used;
        if (free_mb < memory_mb)
            continue;
        if (preferred && streq (id, preferred))
            return id;
        if (free_mb > best_free || (free_mb == best_free && envs < best_envs)) {
            best = id;
            best_free = free_mb;
            best_envs = envs;
        }
    }
    return best;
}

static void
s_handle_frontend (self_t *self)
{
    msg_t *msg = msg_recv (self->frontend, true);
    if (!msg)
        return;
    if (msg_id (msg) == MSG_ID_PLACE) {
        //  assignment's budget bounds all workers together; each worker's
        //  own capacity is checked here, against the environment's memory
        const char *job_id = msg_place_job_id (msg);
        const char *pool_key = msg_place_pool_key (msg);
        cJSON *workers = msg_place_workers (msg);
        const char *chosen = s_choose (self->affinity, pool_key, workers, (double) msg_place_memory_mb (msg));
        if (chosen) {
            if (zhashx_size (self->affinity) >= AFFINITY_MAX)
                zhashx_purge (self->affinity);
            zhashx_update (self->affinity, pool_key, strdup (chosen));
        }
        //  Nothing else to do when it fails: assignment's wait for PLACED
        //  is what ends that job
        if (msg_send_placed (self->frontend, msg_route (msg), job_id, chosen ? chosen : ""))
            zsys_error ("placement: could not send PLACED for job %s to assignment", job_id);
    }
    else
        zsys_warning ("placement: unexpected '%s' from assignment", msg_command (msg));
    msg_destroy (&msg);
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
    if (streq (command, "PING"))
        zstr_send (self->pipe, "PONG");
    else
        zsys_warning ("placement: invalid pipe command '%s'", command);
    zstr_free (&command);
}

void
placement_actor (zsock_t *pipe, void *args_)
{
    const actor_args_t *args = (const actor_args_t *) args_;
    self_t self = { .pipe = pipe };
    self.frontend = endpoints_bind (args->endpoints, "placement", ZMQ_ROUTER);
    if (!self.frontend) {
        actor_failed (pipe, "%s", endpoints_error ());
        return;
    }
    self.affinity = zhashx_new ();
    zhashx_set_destructor (self.affinity, (zhashx_destructor_fn *) zstr_free);
    actor_ready (pipe);
    zpoller_t *poller = zpoller_new (pipe, self.frontend, NULL);
    while (!self.terminated) {
        zsock_t *which = (zsock_t *) zpoller_wait (poller, -1);
        if (which == pipe)
            s_self_handle_pipe (&self);
        else
        if (which == self.frontend)
            s_handle_frontend (&self);
        else
            break;
    }
    zpoller_destroy (&poller);
    zhashx_destroy (&self.affinity);
    zsock_destroy (&self.frontend);
}

void
placement_test (bool verbose)
{
    printf ("placement: ");
    cJSON *workers = cJSON_Parse (
        "[{\"id\":\"a\",\"envs\":3,\"memory_mb\":900,\"capacity_mb\":1024},"
        " {\"id\":\"b\",\"envs\":1,\"memory_mb\":128,\"capacity_mb\":1024},"
        " {\"id\":\"c\",\"envs\":0,\"memory_mb\":0,\"capacity_mb\":512},"
        " {\"bogus\":true}]");
    //  Most free memory wins
    assert (streq (s_choose (NULL, "k", workers, 128), "b"));
    //  Affinity wins when that worker has room, not otherwise
    zhashx_t *affinity = zhashx_new ();
    zhashx_insert (affinity, "k", "c");
    assert (streq (s_choose (affinity, "k", workers, 128), "c"));
    assert (streq (s_choose (affinity, "k", workers, 600), "b"));
    zhashx_destroy (&affinity);
    //  Nobody has room
    assert (s_choose (NULL, "k", workers, 4096) == NULL);
    cJSON_Delete (workers);
    assert (s_choose (NULL, "k", NULL, 1) == NULL);

    //  Over the actor's socket, garbage in the worker list included
    char *argv [] = { "clowdy", NULL };
    config_t config;
    char error [256];
    assert (config_parse (&config, 1, argv, error, sizeof error) == 0);
    endpoints_t *endpoints = endpoints_new ();
    endpoints_set (endpoints, "placement", "inproc://placement-test");
    actor_args_t args = { &config, endpoints, 0 };
    zactor_t *placement = actor_start (placement_actor, &args, "placement", NULL);
    zsock_t *client = zsock_new_dealer ("inproc://placement-test");
    zsock_set_rcvtimeo (client, 3000);
    const char *one = "[{\"id\":\"w\",\"envs\":0,\"memory_mb\":0,\"capacity_mb\":100}]";
    //  Not JSON: the codec drops it, no answer
    assert (zstr_sendx (client, "PLACE", "j0", "k", "64", "not json", NULL) == 0);
    assert (msg_send_place (client, NULL, "j1", "k", 64, "{\"not\":\"a list\"}") == 0);
    assert (msg_send_place (client, NULL, "j2", "k", 64, one) == 0);
    assert (msg_send_place (client, NULL, "j3", "k", 128, one) == 0);     //  no room on w
    msg_t *msg = msg_recv (client, false);
    assert (msg && msg_id (msg) == MSG_ID_PLACED);
    assert (streq (msg_placed_job_id (msg), "j1") && streq (msg_placed_worker_id (msg), ""));
    msg_destroy (&msg);
    msg = msg_recv (client, false);
    assert (msg && streq (msg_placed_job_id (msg), "j2") && streq (msg_placed_worker_id (msg), "w"));
    msg_destroy (&msg);
    msg = msg_recv (client, false);
    assert (msg && streq (msg_placed_job_id (msg), "j3") && streq (msg_placed_worker_id (msg), ""));
    msg_destroy (&msg);
    zsock_destroy (&client);
    zactor_destroy (&placement);
    endpoints_destroy (&endpoints);
    config_reset (&config);
    printf ("OK\n");
}
