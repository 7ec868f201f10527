/*  =========================================================================
    placement - decides which worker creates a new execution environment

    Bounded-load consistent hashing (Mirrokni, Thorup and Zadimoghaddam,
    2016) of pool keys onto workers. Each worker has RING_POINTS points on
    a hash ring; a pool key's preference list is the workers in the order
    the ring meets them, walking clockwise from the key's own hash. So a
    function's new environments go to the same worker while it can take
    them (its image layer and page cache are warm there, and its warm
    environments are found there), and a worker joining or leaving moves
    only the keys next to it.

    The bound: a worker takes a new environment only while its environments
    stay within LOAD_FACTOR times its fair share of all of them (the share
    weighted by the cores it offers), rounded up. A worker at its bound
    passes the environment to the next on the ring, so a function whose
    load asks for more environments than one worker's share spreads over
    the hosts, and a crowded host sheds new work to quieter ones. No worker
    under its bound with the memory: the first on the list with the memory
    takes it. Memory that is free comes first: a worker that would have to
    evict idle environments (idle_mb) for the new one is chosen only when no
    worker has the memory free. None has it even so: "" (assignment answers
    503).

    Stateless: the decision is a pure function of the PLACE message, tested
    directly through s_choose.
    ========================================================================= */

#include <cjson/cJSON.h>
#include "actors/placement.h"
#include "broker/actor.h"
#include "broker/endpoints.h"
#include "broker/msg.h"
#include "core/config.h"

#define RING_POINTS     64          //  Points per worker on the hash ring
#define LOAD_FACTOR     1.25        //  A worker's bound over its fair share of environments

typedef struct {
    zsock_t *pipe;                  //  Actor command pipe
    zsock_t *frontend;              //  ROUTER for assignment
    bool terminated;                //  Did caller ask us to quit?
} self_t;

//  64-bit FNV-1a, then a finaliser (splitmix64) so that close keys spread
static uint64_t
s_hash (const char *text, uint64_t salt)
{
    uint64_t hash = 14695981039346656037ULL ^ salt;
    for (const unsigned char *byte = (const unsigned char *) text; *byte; byte++) {
        hash ^= *byte;
        hash *= 1099511628211ULL;
    }
    hash ^= hash >> 30;
    hash *= 0xbf58476d1ce4e5b9ULL;
    hash ^= hash >> 27;
    hash *= 0x94d049bb133111ebULL;
    hash ^= hash >> 31;
    return hash;
}

typedef struct {
    uint64_t hash;                  //  Where the point is on the ring
    int worker;                     //  Index of its worker
} s_point_t;

static int
s_point_compare (const void *a, const void *b)
{
    uint64_t x = ((const s_point_t *) a)->hash, y = ((const s_point_t *) b)->hash;
    return x < y ? -1 : x > y ? 1 : 0;
}

typedef struct {
    const char *id;                 //  Worker id (in the PLACE message)
    double free_mb;                 //  Memory it has left
    double idle_mb;                 //  Of the memory in use, what idle environments hold
    double envs;                    //  Environments on it
    double cores;                   //  Cores it offers
} s_worker_t;

//  Pick a worker for a new environment of memory_mb of pool_key; returns
//  its id (owned by workers) or NULL when none has room.
static const char *
s_choose (const char *pool_key, cJSON *workers, double memory_mb)
{
    int count = cJSON_IsArray (workers) ? cJSON_GetArraySize (workers) : 0;
    if (count == 0)
        return NULL;
    s_worker_t *list = (s_worker_t *) zmalloc (sizeof (s_worker_t) * (size_t) count);
    int valid = 0;
    double total_envs = 0, total_cores = 0;
    cJSON *worker;
    cJSON_ArrayForEach (worker, workers) {
        const char *id = cJSON_GetStringValue (cJSON_GetObjectItem (worker, "id"));
        double capacity = cJSON_GetNumberValue (cJSON_GetObjectItem (worker, "capacity_mb"));
        double used = cJSON_GetNumberValue (cJSON_GetObjectItem (worker, "memory_mb"));
        double envs = cJSON_GetNumberValue (cJSON_GetObjectItem (worker, "envs"));
        double cores = cJSON_GetNumberValue (cJSON_GetObjectItem (worker, "cores"));
        double idle = cJSON_GetNumberValue (cJSON_GetObjectItem (worker, "idle_mb"));
        if (!id || isnan (capacity) || isnan (used) || isnan (envs) || envs < 0)
            continue;
        list [valid] = (s_worker_t) { id, capacity - used, isnan (idle) || idle < 0 ? 0 : idle, envs,
                                      isnan (cores) || cores <= 0 ? 1 : cores };
        total_envs += envs;
        total_cores += list [valid].cores;
        valid++;
    }
    const char *chosen = NULL;
    if (valid) {
        //  The ring, and the key's place on it
        s_point_t *ring = (s_point_t *) zmalloc (sizeof (s_point_t) * (size_t) valid * RING_POINTS);
        for (int index = 0; index < valid; index++)
            for (int point = 0; point < RING_POINTS; point++)
                ring [index * RING_POINTS + point] = (s_point_t) { s_hash (list [index].id, (uint64_t) point + 1), index };
        size_t points = (size_t) valid * RING_POINTS;
        qsort (ring, points, sizeof (s_point_t), s_point_compare);
        uint64_t key = s_hash (pool_key, 0);
        size_t start = 0;
        while (start < points && ring [start].hash < key)
            start++;
        //  Walk it once: the first worker under its bound with free room,
        //  else the first with free room, else the first with room once
        //  its idle environments are evicted
        bool *seen = (bool *) zmalloc (sizeof (bool) * (size_t) valid);
        const char *first_with_room = NULL, *first_reclaiming = NULL;
        for (size_t step = 0; step < points && !chosen; step++) {
            int index = ring [(start + step) % points].worker;
            if (seen [index])
                continue;
            seen [index] = true;
            s_worker_t *candidate = &list [index];
            if (candidate->free_mb < memory_mb) {
                if (!first_reclaiming && candidate->free_mb + candidate->idle_mb >= memory_mb)
                    first_reclaiming = candidate->id;
                continue;
            }
            if (!first_with_room)
                first_with_room = candidate->id;
            double bound = ceil (LOAD_FACTOR * (total_envs + 1) * candidate->cores / total_cores);
            if (candidate->envs + 1 <= bound)
                chosen = candidate->id;
        }
        if (!chosen)
            chosen = first_with_room ? first_with_room : first_reclaiming;
        free (seen);
        free (ring);
    }
    free (list);
    return chosen;
}

static void
s_handle_frontend (self_t *self)
{
    msg_t *msg = msg_recv (self->frontend, true);
    if (!msg)
        return;
    if (msg_id (msg) == MSG_ID_PLACE) {
        //  assignment's budget bounds all workers together (the sum of
        //  what they offer); each worker's own memory is checked here
        const char *job_id = msg_place_job_id (msg);
        const char *pool_key = msg_place_pool_key (msg);
        cJSON *workers = msg_place_workers (msg);
        const char *chosen = s_choose (pool_key, workers, (double) msg_place_memory_mb (msg));
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
    //  Only workers with the memory; nobody has room: none
    assert (strneq (s_choose ("k", workers, 600), "a") && strneq (s_choose ("k", workers, 600), "c"));
    assert (s_choose ("k", workers, 4096) == NULL);
    cJSON_Delete (workers);
    assert (s_choose ("k", NULL, 1) == NULL);

    //  Affinity: with room and load to spare, a key always goes to the same
    //  worker, and different keys spread over the workers
    workers = cJSON_Parse ("[{\"id\":\"w1\",\"envs\":0,\"memory_mb\":0,\"capacity_mb\":4096,\"cores\":2},"
                           " {\"id\":\"w2\",\"envs\":0,\"memory_mb\":0,\"capacity_mb\":4096,\"cores\":2},"
                           " {\"id\":\"w3\",\"envs\":0,\"memory_mb\":0,\"capacity_mb\":4096,\"cores\":2}]");
    int hits [3] = { 0 };
    for (int key = 0; key < 300; key++) {
        char name [32];
        snprintf (name, sizeof name, "f%d:1:x", key);
        const char *chosen = s_choose (name, workers, 128);
        assert (chosen && streq (chosen, s_choose (name, workers, 128)));
        hits [chosen [1] - '1']++;
    }
    assert (hits [0] > 50 && hits [1] > 50 && hits [2] > 50);
    //  One key's environments placed one after another: the first worker on
    //  its ring takes them up to its bound, then the others share them
    int placed [3] = { 0 };
    const char *home = s_choose ("busy:1:x", workers, 128);
    for (int env = 0; env < 12; env++) {
        const char *chosen = s_choose ("busy:1:x", workers, 128);
        int index = chosen [1] - '1';
        placed [index]++;
        cJSON *item = cJSON_GetArrayItem (workers, index);
        cJSON_SetNumberValue (cJSON_GetObjectItem (item, "envs"), placed [index]);
        cJSON_SetNumberValue (cJSON_GetObjectItem (item, "memory_mb"), placed [index] * 128);
    }
    assert (placed [home [1] - '1'] >= 4);
    for (int index = 0; index < 3; index++)
        assert (placed [index] >= 2 && placed [index] <= 5);
    //  A full worker is passed over even when it is the key's first
    cJSON *first = cJSON_GetArrayItem (workers, home [1] - '1');
    cJSON_SetNumberValue (cJSON_GetObjectItem (first, "memory_mb"), 4096);
    assert (strneq (s_choose ("busy:1:x", workers, 128), cJSON_GetStringValue (cJSON_GetObjectItem (first, "id"))));
    cJSON_Delete (workers);

    //  Free memory first: a worker that must evict idle environments for
    //  the new one is chosen only when no other has the memory free
    workers = cJSON_Parse ("[{\"id\":\"full\",\"envs\":1,\"memory_mb\":128,\"idle_mb\":128,\"capacity_mb\":128},"
                           " {\"id\":\"free\",\"envs\":1,\"memory_mb\":0,\"idle_mb\":0,\"capacity_mb\":128}]");
    for (int key = 0; key < 20; key++) {
        char name [32];
        snprintf (name, sizeof name, "g%d", key);
        assert (streq (s_choose (name, workers, 128), "free"));
    }
    cJSON_SetNumberValue (cJSON_GetObjectItem (cJSON_GetArrayItem (workers, 1), "memory_mb"), 128);
    assert (streq (s_choose ("g1", workers, 128), "full"));
    cJSON_Delete (workers);

    //  Cores weigh the bound: a 3-core worker takes about three times the
    //  environments of a 1-core one
    workers = cJSON_Parse ("[{\"id\":\"big\",\"envs\":0,\"memory_mb\":0,\"capacity_mb\":65536,\"cores\":3},"
                           " {\"id\":\"small\",\"envs\":0,\"memory_mb\":0,\"capacity_mb\":65536,\"cores\":1}]");
    int big = 0, small = 0;
    for (int env = 0; env < 40; env++) {
        const char *chosen = s_choose ("k:1:x", workers, 128);
        bool is_big = streq (chosen, "big");
        cJSON *item = cJSON_GetArrayItem (workers, is_big ? 0 : 1);
        cJSON_SetNumberValue (cJSON_GetObjectItem (item, "envs"), is_big ? ++big : ++small);
    }
    assert (big >= 26 && big <= 34 && small >= 6 && small <= 14);
    cJSON_Delete (workers);

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
