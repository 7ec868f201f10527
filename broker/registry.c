/*  =========================================================================
    registry - the worker broker's list of workers (Majordomo-style)

    A hash of worker id -> registry_worker_t, owned by one thread (the
    broker's). Nothing here blocks or sends: the owner calls in with the
    time and does the messaging. Invariants: each id is in the hash once;
    memory_mb and envs are what the owner reserved and has not released
    (never negative: a release beyond a reservation is an owner bug, logged
    and clamped rather than carried into later placement choices).
    ========================================================================= */

#include <cjson/cJSON.h>
#include "broker/registry.h"

#define REGISTRY_ID_MAX 255         //  Longest worker id we accept
#define REGISTRY_LOST_MAX 16        //  Lost workers remembered for the operator

//  The workers of one process (its --workers actors) share its memory
typedef struct {
    char *key;                      //  The process (READY's group), or the worker's id
    long capacity_mb;               //  Memory the process offers
    long memory_mb;                 //  Reserved on all its workers together
    size_t members;                 //  Its workers in the registry
    bool suspect;                   //  One of them was lost: the others may be frozen with it
    uint64_t counted;               //  registry_capacity_mb's pass that counted it
} s_group_t;

struct _registry_worker_t {
    char *id;                       //  The worker's own id (host-pid-instance)
    zframe_t *route;                //  Its routing id on the worker socket
    int64_t last_seen;              //  Monotonic ms of its last sign of life
    long capacity_mb;               //  Memory it offers
    double cores;                   //  CPU cores it offers
    char *host;                     //  Its host, as it says
    bool draining;                  //  It is leaving: nothing new for it
    s_group_t *group;               //  Its process, whose memory it shares
    long memory_mb;                 //  Memory reserved for environments on it
    size_t envs;                    //  Environments on it
};

struct _registry_t {
    zhashx_t *workers;              //  id -> registry_worker_t
    zhashx_t *groups;               //  key -> s_group_t
    zlistx_t *lost_list;            //  cJSON * of the workers lost last, oldest first
    long default_capacity_mb;       //  For a READY without capacity
    int64_t expiry_ms;              //  Silence after which a worker is dropped
    int64_t suspect_ms;             //  Silence after which a lost worker's sibling goes with it
    uint64_t pass;                  //  registry_capacity_mb's passes
    registry_lost_fn *lost;         //  Owner's handler for drops, or NULL
    void *lost_arg;                 //  Its argument
};

static void
s_worker_destroy (void **item)
{
    registry_worker_t *worker = (registry_worker_t *) *item;
    if (worker) {
        zframe_destroy (&worker->route);
        free (worker->host);
        free (worker->id);
        free (worker);
        *item = NULL;
    }
}

static void
s_group_destroy (void **item)
{
    s_group_t *group = (s_group_t *) *item;
    if (group) {
        free (group->key);
        free (group);
        *item = NULL;
    }
}

static void
s_json_destroy (void **item)
{
    cJSON_Delete ((cJSON *) *item);
    *item = NULL;
}

registry_t *
registry_new (long default_capacity_mb, int64_t expiry_ms)
{
    registry_t *self = (registry_t *) zmalloc (sizeof (registry_t));
    //  No destructor: a dropped worker leaves the hash before its lost
    //  handler runs (so the handler never sees it in placement's list) and
    //  is freed after
    self->workers = zhashx_new ();
    self->groups = zhashx_new ();
    zhashx_set_destructor (self->groups, s_group_destroy);
    self->lost_list = zlistx_new ();
    zlistx_set_destructor (self->lost_list, s_json_destroy);
    self->default_capacity_mb = default_capacity_mb;
    self->expiry_ms = expiry_ms;
    self->suspect_ms = expiry_ms;
    return self;
}

void
registry_destroy (registry_t **self_p)
{
    if (self_p && *self_p) {
        registry_t *self = *self_p;
        for (void *worker = zhashx_first (self->workers); worker; worker = zhashx_next (self->workers))
            s_worker_destroy (&worker);
        zhashx_destroy (&self->workers);
        zhashx_destroy (&self->groups);
        zlistx_destroy (&self->lost_list);
        free (self);
        *self_p = NULL;
    }
}

void
registry_set_lost_handler (registry_t *self, registry_lost_fn *handler, void *arg)
{
    self->lost = handler;
    self->lost_arg = arg;
}

void
registry_set_heartbeat (registry_t *self, int64_t heartbeat_ms)
{
    //  Two beats missed: a live worker is not that late, even busy
    if (heartbeat_ms > 0 && 2 * heartbeat_ms < self->expiry_ms)
        self->suspect_ms = 2 * heartbeat_ms;
}

void
registry_remove (registry_t *self, registry_worker_t *worker, const char *why)
{
    if (zhashx_lookup (self->workers, worker->id) != worker)
        return;                     //  Already being dropped (a lost handler's own sends failed)
    bool left = streq (why, "left");
    if (left)
        zsys_info ("registry: worker %s left (drained)", worker->id);
    else
        zsys_warning ("registry: worker %s is gone (%s)", worker->id, why);
    zhashx_delete (self->workers, worker->id);
    if (!left) {
        cJSON *item = cJSON_CreateObject ();
        cJSON_AddStringToObject (item, "id", worker->id);
        cJSON_AddStringToObject (item, "host", worker->host ? worker->host : worker->id);
        cJSON_AddStringToObject (item, "state", "lost");
        cJSON_AddNumberToObject (item, "memory_mb", (double) worker->capacity_mb);
        cJSON_AddNumberToObject (item, "cores", worker->cores);
        cJSON_AddNumberToObject (item, "last_seen", (double) worker->last_seen);
        cJSON_AddStringToObject (item, "why", why);
        if (zlistx_size (self->lost_list) >= REGISTRY_LOST_MAX && zlistx_first (self->lost_list))
            zlistx_delete (self->lost_list, zlistx_cursor (self->lost_list));
        zlistx_add_end (self->lost_list, item);
    }
    //  Out of the budget before the handler runs (it counts what is left);
    //  the group itself goes after, as the handler releases what was
    //  reserved on the worker
    s_group_t *group = worker->group;
    group->members--;
    if (!left)
        group->suspect = true;
    if (self->lost)
        self->lost (worker, why, self->lost_arg);
    group->memory_mb -= worker->memory_mb;
    if (group->members == 0)
        zhashx_delete (self->groups, group->key);
    s_worker_destroy ((void **) &worker);
}

//  Forget a lost worker that came back
static void
s_unlose (registry_t *self, const char *id)
{
    for (cJSON *item = (cJSON *) zlistx_first (self->lost_list); item; item = (cJSON *) zlistx_next (self->lost_list))
        if (streq (cJSON_GetStringValue (cJSON_GetObjectItem (item, "id")), id)) {
            zlistx_delete (self->lost_list, zlistx_cursor (self->lost_list));
            return;
        }
}

static void
s_apply_info (registry_t *self, registry_worker_t *worker, const cJSON *info)
{
    double capacity = cJSON_GetNumberValue (cJSON_GetObjectItem (info, "capacity_mb"));
    worker->capacity_mb = !isnan (capacity) && capacity >= 1 && capacity <= (double) (1L << 30)
                          ? (long) capacity : self->default_capacity_mb;
    double cores = cJSON_GetNumberValue (cJSON_GetObjectItem (info, "cores"));
    worker->cores = !isnan (cores) && cores > 0 && cores <= 65536 ? cores : 1;
    worker->draining = cJSON_IsTrue (cJSON_GetObjectItem (info, "draining"));
    const char *host = cJSON_GetStringValue (cJSON_GetObjectItem (info, "host"));
    free (worker->host);
    worker->host = strdup (host && *host && strlen (host) <= REGISTRY_ID_MAX ? host : worker->id);
}

registry_worker_t *
registry_ready (registry_t *self, const char *id, zframe_t *route, const cJSON *info, int64_t now_ms,
                bool *rejoined)
{
    if (rejoined)
        *rejoined = false;
    if (!*id || strlen (id) > REGISTRY_ID_MAX) {
        zsys_warning ("registry: refused a READY with an empty or overlong worker id");
        return NULL;
    }
    registry_worker_t *worker = (registry_worker_t *) zhashx_lookup (self->workers, id);
    if (worker) {
        //  The same process (the id names it): one registration, kept
        if (!zframe_eq (worker->route, route)) {
            zframe_destroy (&worker->route);
            worker->route = zframe_dup (route);
        }
        worker->last_seen = now_ms;
        s_apply_info (self, worker, info);
        worker->group->capacity_mb = worker->capacity_mb;
        if (rejoined)
            *rejoined = true;
        return worker;
    }
    s_unlose (self, id);
    worker = (registry_worker_t *) zmalloc (sizeof (registry_worker_t));
    worker->id = strdup (id);
    worker->route = zframe_dup (route);
    worker->last_seen = now_ms;
    s_apply_info (self, worker, info);
    const char *key = cJSON_GetStringValue (cJSON_GetObjectItem (info, "group"));
    if (!key || !*key || strlen (key) > REGISTRY_ID_MAX)
        key = id;
    worker->group = (s_group_t *) zhashx_lookup (self->groups, key);
    if (!worker->group) {
        worker->group = (s_group_t *) zmalloc (sizeof (s_group_t));
        worker->group->key = strdup (key);
        zhashx_insert (self->groups, key, worker->group);
    }
    worker->group->members++;
    worker->group->capacity_mb = worker->capacity_mb;
    worker->group->suspect = false;     //  Its process speaks again
    zhashx_insert (self->workers, worker->id, worker);
    zsys_info ("registry: worker %s joined (%ld MB, %g cores)", worker->id, worker->capacity_mb, worker->cores);
    return worker;
}

registry_worker_t *
registry_heartbeat (registry_t *self, const char *id, zframe_t *route, int64_t now_ms)
{
    registry_worker_t *worker = (registry_worker_t *) zhashx_lookup (self->workers, id);
    if (worker && route && !zframe_eq (worker->route, route)) {
        zsys_info ("registry: worker %s reconnected", worker->id);
        zframe_destroy (&worker->route);
        worker->route = zframe_dup (route);
    }
    if (worker)
        worker->last_seen = now_ms;
    return worker;
}

bool
registry_offer (registry_worker_t *worker, const cJSON *load)
{
    double capacity = cJSON_GetNumberValue (cJSON_GetObjectItem (load, "capacity_mb"));
    double cores = cJSON_GetNumberValue (cJSON_GetObjectItem (load, "cores"));
    bool changed = false;
    if (!isnan (capacity) && capacity >= 1 && capacity <= (double) (1L << 30) && (long) capacity != worker->capacity_mb) {
        worker->capacity_mb = (long) capacity;
        worker->group->capacity_mb = worker->capacity_mb;
        changed = true;
    }
    if (!isnan (cores) && cores > 0 && cores <= 65536 && cores != worker->cores) {
        worker->cores = cores;
        changed = true;
    }
    return changed;
}

void
registry_drain (registry_worker_t *worker)
{
    if (!worker->draining)
        zsys_info ("registry: worker %s is draining", worker->id);
    worker->draining = true;
}

bool
registry_worker_draining (registry_worker_t *worker)
{
    return worker->draining;
}

registry_worker_t *
registry_lookup (registry_t *self, const char *id)
{
    return (registry_worker_t *) zhashx_lookup (self->workers, id);
}

bool
registry_touch (registry_t *self, registry_worker_t *worker, zframe_t *route, int64_t now_ms)
{
    if (!worker || !route || !zframe_eq (worker->route, route))
        return false;
    worker->last_seen = now_ms;
    return true;
}

size_t
registry_purge (registry_t *self, int64_t now_ms)
{
    //  Collect ids first: a zhashx may not change while it is iterated, and
    //  one drop's handler may drop another worker, so each is looked up again
    zlistx_t *dead = zlistx_new ();
    zlistx_set_destructor (dead, (zlistx_destructor_fn *) zstr_free);
    registry_worker_t *worker;
    for (worker = registry_first (self); worker; worker = registry_next (self))
        if (now_ms - worker->last_seen > self->expiry_ms)
            worker->group->suspect = true;
    //  The workers of a process freeze and die together: one lost, a
    //  sibling silent for two beats goes with it now, not an expiry later
    //  with the calls moved to it in between
    for (worker = registry_first (self); worker; worker = registry_next (self))
        if (now_ms - worker->last_seen > self->expiry_ms
        ||  (worker->group->suspect && now_ms - worker->last_seen > self->suspect_ms)) {
            zlistx_add_end (dead, strdup (worker->id));
            //  Nothing new for it while the others' lost calls move
            worker->draining = true;
        }
    size_t count = 0;
    for (char *id = (char *) zlistx_first (dead); id; id = (char *) zlistx_next (dead)) {
        registry_worker_t *worker = registry_lookup (self, id);
        if (worker) {
            registry_remove (self, worker, "expired: no heartbeat");
            count++;
        }
    }
    zlistx_destroy (&dead);
    return count;
}

size_t
registry_size (registry_t *self)
{
    return zhashx_size (self->workers);
}

registry_worker_t *
registry_first (registry_t *self)
{
    return (registry_worker_t *) zhashx_first (self->workers);
}

registry_worker_t *
registry_next (registry_t *self)
{
    return (registry_worker_t *) zhashx_next (self->workers);
}

void
registry_reserve (registry_worker_t *worker, long memory_mb)
{
    worker->envs++;
    worker->memory_mb += memory_mb;
    worker->group->memory_mb += memory_mb;
}

void
registry_release (registry_worker_t *worker, long memory_mb)
{
    if (worker->envs == 0 || worker->memory_mb < memory_mb) {
        zsys_error ("registry: worker %s released more than was reserved", worker->id);
        worker->group->memory_mb -= worker->memory_mb;
        worker->envs = 0;
        worker->memory_mb = 0;
        return;
    }
    worker->envs--;
    worker->memory_mb -= memory_mb;
    worker->group->memory_mb -= memory_mb;
}

bool
registry_fits (registry_worker_t *worker, long memory_mb)
{
    return worker->group->memory_mb + memory_mb <= worker->group->capacity_mb;
}

char *
registry_json (registry_t *self)
{
    cJSON *workers = cJSON_CreateArray ();
    for (registry_worker_t *worker = registry_first (self); worker; worker = registry_next (self)) {
        if (worker->draining)
            continue;
        cJSON *item = cJSON_CreateObject ();
        cJSON_AddStringToObject (item, "id", worker->id);
        cJSON_AddNumberToObject (item, "envs", (double) worker->envs);
        cJSON_AddNumberToObject (item, "memory_mb", (double) worker->group->memory_mb);
        cJSON_AddNumberToObject (item, "capacity_mb", (double) worker->group->capacity_mb);
        cJSON_AddNumberToObject (item, "cores", worker->cores);
        cJSON_AddItemToArray (workers, item);
    }
    char *text = cJSON_PrintUnformatted (workers);
    cJSON_Delete (workers);
    return text;
}

long
registry_capacity_mb (registry_t *self)
{
    //  A process whose workers all leave offers nothing new
    long total = 0;
    self->pass++;
    for (registry_worker_t *worker = registry_first (self); worker; worker = registry_next (self))
        if (!worker->draining && worker->group->counted != self->pass) {
            worker->group->counted = self->pass;
            total += worker->group->capacity_mb;
        }
    return total;
}

long
registry_largest_mb (registry_t *self)
{
    long largest = 0;
    for (registry_worker_t *worker = registry_first (self); worker; worker = registry_next (self))
        if (!worker->draining && worker->capacity_mb > largest)
            largest = worker->capacity_mb;
    return largest;
}

cJSON *
registry_lost_json (registry_t *self, int64_t now_ms)
{
    cJSON *list = cJSON_CreateArray ();
    for (cJSON *item = (cJSON *) zlistx_first (self->lost_list); item; item = (cJSON *) zlistx_next (self->lost_list)) {
        cJSON *copy = cJSON_Duplicate (item, true);
        double last_seen = cJSON_GetNumberValue (cJSON_GetObjectItem (copy, "last_seen"));
        cJSON_DeleteItemFromObject (copy, "last_seen");
        cJSON_AddNumberToObject (copy, "memory_used_mb", 0);
        cJSON_AddNumberToObject (copy, "running", 0);
        cJSON_AddNumberToObject (copy, "environments", 0);
        cJSON_AddNumberToObject (copy, "last_heartbeat_ms", (double) now_ms - last_seen);
        cJSON_AddItemToArray (list, copy);
    }
    return list;
}

const char *
registry_worker_id (registry_worker_t *worker)
{
    return worker->id;
}

zframe_t *
registry_worker_route (registry_worker_t *worker)
{
    return worker->route;
}

long
registry_worker_capacity_mb (registry_worker_t *worker)
{
    return worker->capacity_mb;
}

long
registry_worker_memory_mb (registry_worker_t *worker)
{
    return worker->memory_mb;
}

size_t
registry_worker_envs (registry_worker_t *worker)
{
    return worker->envs;
}

long
registry_worker_shared_mb (registry_worker_t *worker)
{
    return worker->group->memory_mb;
}

bool
registry_same_process (registry_worker_t *worker, registry_worker_t *other)
{
    return worker && other && worker->group == other->group;
}

const char *
registry_worker_host (registry_worker_t *worker)
{
    return worker->host;
}

double
registry_worker_cores (registry_worker_t *worker)
{
    return worker->cores;
}

int64_t
registry_worker_last_seen (registry_worker_t *worker)
{
    return worker->last_seen;
}

//  --------------------------------------------------------------------------
//  Selftest: register, heartbeat, expiry purge, capacity, re-registration

typedef struct {
    int count;                      //  Drops seen
    char last [64];                 //  Id of the last one
    char why [64];                  //  Its reason
} s_lost_log_t;

static void
s_test_lost (registry_worker_t *worker, const char *why, void *arg)
{
    s_lost_log_t *log = (s_lost_log_t *) arg;
    log->count++;
    snprintf (log->last, sizeof log->last, "%s", registry_worker_id (worker));
    snprintf (log->why, sizeof log->why, "%s", why);
}

//  registry_ready with info given as JSON text (NULL when it does not parse)
static registry_worker_t *
s_test_ready (registry_t *registry, const char *id, zframe_t *route, const char *info, int64_t now_ms)
{
    cJSON *parsed = cJSON_Parse (info);
    registry_worker_t *worker = registry_ready (registry, id, route, parsed, now_ms, NULL);
    cJSON_Delete (parsed);
    return worker;
}

void
registry_test (bool verbose)
{
    printf ("registry: ");
    registry_t *registry = registry_new (4096, 5000);
    s_lost_log_t log = { 0 };
    registry_set_lost_handler (registry, s_test_lost, &log);
    zframe_t *route1 = zframe_new ("r1", 2);
    zframe_t *route2 = zframe_new ("r2", 2);
    zframe_t *route3 = zframe_new ("r3", 2);

    //  Register: capacity from info, the default when info has none or nonsense
    registry_worker_t *w1 = s_test_ready (registry, "w1", route1, "{\"capacity_mb\":512,\"cores\":2,\"host\":\"h\"}", 0);
    registry_worker_t *w2 = s_test_ready (registry, "w2", route2, "not json", 0);
    assert (w1 && w2 && registry_size (registry) == 2);
    assert (registry_worker_capacity_mb (w1) == 512);
    assert (registry_worker_capacity_mb (w2) == 4096);
    assert (registry_worker_cores (w1) == 2 && registry_worker_cores (w2) == 1);
    assert (streq (registry_worker_host (w1), "h") && streq (registry_worker_host (w2), "w2"));
    assert (registry_capacity_mb (registry) == 512 + 4096 && registry_largest_mb (registry) == 4096);
    assert (s_test_ready (registry, "w3", route3, "{\"capacity_mb\":-5}", 0)
            && registry_worker_capacity_mb (registry_lookup (registry, "w3")) == 4096);
    registry_remove (registry, registry_lookup (registry, "w3"), "test");
    assert (log.count == 1 && streq (log.last, "w3"));
    assert (s_test_ready (registry, "", route3, "{}", 0) == NULL);
    assert (registry_lookup (registry, "w1") == w1 && !registry_lookup (registry, "nope"));

    //  Capacity: reservations add up, fits says what is left, placement's list shows them
    registry_reserve (w1, 256);
    registry_reserve (w1, 128);
    assert (registry_worker_envs (w1) == 2 && registry_worker_memory_mb (w1) == 384);
    assert (registry_fits (w1, 128) && !registry_fits (w1, 129));
    registry_release (w1, 128);
    assert (registry_fits (w1, 256) && registry_worker_envs (w1) == 1);
    char *json = registry_json (registry);
    cJSON *list = cJSON_Parse (json);
    assert (cJSON_GetArraySize (list) == 2);
    cJSON *item;
    cJSON_ArrayForEach (item, list)
        if (streq (cJSON_GetStringValue (cJSON_GetObjectItem (item, "id")), "w1"))
            assert (cJSON_GetNumberValue (cJSON_GetObjectItem (item, "memory_mb")) == 256);
    cJSON_Delete (list);
    free (json);
    registry_release (w1, 1000);            //  Owner bug: clamped, logged
    assert (registry_worker_memory_mb (w1) == 0 && registry_worker_envs (w1) == 0);

    //  Two workers of one process share its memory: the budget counts it
    //  once, and what one holds leaves less for the other
    registry_worker_t *p1 = s_test_ready (registry, "p1", route3, "{\"capacity_mb\":300,\"group\":\"proc\"}", 0);
    zframe_t *route4 = zframe_new ("r4", 2);
    registry_worker_t *p2 = s_test_ready (registry, "p2", route4, "{\"capacity_mb\":300,\"group\":\"proc\"}", 0);
    assert (registry_capacity_mb (registry) == 512 + 4096 + 300);
    assert (registry_same_process (p1, p2) && !registry_same_process (p1, w1));
    registry_reserve (p1, 200);
    assert (!registry_fits (p2, 128) && registry_fits (p2, 100) && registry_worker_shared_mb (p2) == 200);
    registry_remove (registry, p1, "left");
    assert (registry_fits (p2, 300) && registry_capacity_mb (registry) == 512 + 4096 + 300);
    registry_remove (registry, p2, "left");
    assert (registry_capacity_mb (registry) == 512 + 4096);
    zframe_destroy (&route4);
    log.count = 0;

    //  A heartbeat's load may change what a worker offers
    assert (!registry_offer (w1, NULL));
    cJSON *load = cJSON_Parse ("{\"capacity_mb\":2048,\"cores\":3,\"running\":1}");
    assert (registry_offer (w1, load) && registry_worker_capacity_mb (w1) == 2048 && registry_worker_cores (w1) == 3);
    assert (!registry_offer (w1, load));
    cJSON_Delete (load);
    load = cJSON_Parse ("{\"capacity_mb\":512,\"cores\":2}");
    assert (registry_offer (w1, load) && registry_worker_capacity_mb (w1) == 512);
    cJSON_Delete (load);

    //  Heartbeat: only from the worker's own routing id
    assert (registry_touch (registry, w1, route1, 4000));
    assert (!registry_touch (registry, w2, route1, 4000));  //  Wrong route: not a sign of life
    assert (!registry_touch (registry, NULL, route1, 4000));

    //  Expiry: w2 was last heard at 0, w1 at 4000
    log.count = 0;
    assert (registry_purge (registry, 5000) == 0);
    assert (registry_purge (registry, 5000 + 1) == 1);
    assert (log.count == 1 && streq (log.last, "w2") && strstr (log.why, "expired"));
    assert (registry_size (registry) == 1 && !registry_lookup (registry, "w2"));
    //  It is remembered as lost until it comes back
    cJSON *lost = registry_lost_json (registry, 6000);
    assert (cJSON_GetArraySize (lost) == 2);        //  w3 (removed above) and w2
    cJSON *w2_lost = cJSON_GetArrayItem (lost, 1);
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (w2_lost, "id")), "w2"));
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (w2_lost, "state")), "lost"));
    assert (cJSON_GetNumberValue (cJSON_GetObjectItem (w2_lost, "last_heartbeat_ms")) == 6000);
    cJSON_Delete (lost);

    //  A READY from a known id is the same process again (a partition
    //  healed): one registration, what is reserved on it kept, the new route
    registry_reserve (w1, 100);
    bool rejoined = false;
    cJSON *info = cJSON_Parse ("{\"capacity_mb\":1024}");
    registry_worker_t *again = registry_ready (registry, "w1", route2, info, 5000, &rejoined);
    cJSON_Delete (info);
    assert (rejoined && again == w1 && log.count == 1);
    assert (registry_size (registry) == 1 && registry_worker_memory_mb (again) == 100);
    assert (registry_worker_capacity_mb (again) == 1024);
    assert (registry_touch (registry, again, route2, 6000) && !registry_touch (registry, again, route1, 6000));
    //  A heartbeat from a new route: the worker reconnected
    assert (registry_heartbeat (registry, "w1", route3, 6500) == w1);
    assert (registry_touch (registry, w1, route3, 6600) && !registry_touch (registry, w1, route2, 6600));
    assert (registry_heartbeat (registry, "nope", route3, 6600) == NULL);
    //  The lost w2 comes back: it joins, and is no longer listed as lost
    assert (s_test_ready (registry, "w2", route2, "{}", 7000));
    lost = registry_lost_json (registry, 7000);
    assert (cJSON_GetArraySize (lost) == 1);
    cJSON_Delete (lost);

    //  Draining: left out of placement's list and of the budget; leaving
    //  after it is not lost
    long before = registry_capacity_mb (registry);
    registry_drain (w1);
    assert (registry_worker_draining (w1));
    assert (registry_capacity_mb (registry) == before - 1024);
    json = registry_json (registry);
    assert (!strstr (json, "\"w1\"") && strstr (json, "\"w2\""));
    free (json);
    registry_remove (registry, w1, "left");
    lost = registry_lost_json (registry, 7000);
    assert (cJSON_GetArraySize (lost) == 1);
    cJSON_Delete (lost);
    assert (log.count == 2 && streq (log.why, "left"));
    zframe_destroy (&route3);
    route3 = zframe_new ("r3", 2);

    //  A process's workers freeze together: one expires, its sibling silent
    //  for two beats goes in the same purge; a sibling that speaks stays
    registry_set_heartbeat (registry, 200);
    zframe_t *route5 = zframe_new ("r5", 2);
    zframe_t *route6 = zframe_new ("r6", 2);
    zframe_t *route7 = zframe_new ("r7", 2);
    s_test_ready (registry, "f1", route5, "{\"group\":\"frozen\"}", 10000);
    s_test_ready (registry, "f2", route6, "{\"group\":\"frozen\"}", 10000);
    s_test_ready (registry, "f3", route7, "{\"group\":\"frozen\"}", 10000);
    assert (registry_heartbeat (registry, "w2", route2, 15001));
    assert (registry_heartbeat (registry, "f2", route6, 15001 - 450));
    assert (registry_heartbeat (registry, "f3", route7, 15001 - 100));
    log.count = 0;
    assert (registry_purge (registry, 15001) == 2);
    assert (log.count == 2 && !registry_lookup (registry, "f1") && !registry_lookup (registry, "f2"));
    assert (registry_lookup (registry, "f3") && registry_lookup (registry, "w2"));
    //  Still suspect: it goes after two beats of silence, not an expiry
    assert (registry_purge (registry, 15001 + 100) == 0);
    assert (registry_purge (registry, 15001 + 301) == 1 && !registry_lookup (registry, "f3"));
    //  Another process is not suspect
    assert (registry_purge (registry, 14000 + 301) == 0 && registry_lookup (registry, "w2"));
    zframe_destroy (&route5);
    zframe_destroy (&route6);
    zframe_destroy (&route7);

    zframe_destroy (&route1);
    zframe_destroy (&route2);
    zframe_destroy (&route3);
    registry_destroy (&registry);
    registry_destroy (&registry);
    assert (log.count == 3);                //  Destroy does not call the handler
    printf ("OK\n");
}
