/*  =========================================================================
    registry - the worker broker's list of workers (Majordomo-style)

    Workers connect to assignment's "worker" socket, register with READY,
    heartbeat, and get work. The registry is what the broker knows of them:
    each worker's id, its routing id on that socket, when it was last heard
    from, the memory it offers (capacity) and what is placed on it. It keeps
    the rules of the worker link in one place:

    - READY registers a worker. A worker id names one process (host, pid,
      instance), so a READY from an id already known is that process again
      (after a partition, or its repeated READYs while it heard nothing):
      one registration, its entry kept with its new routing id and info,
      never a drop and a join (the owner reconciles its environments).
    - Any message from a known worker at its own routing id is a sign of
      life (registry_touch). One from another routing id is not: an old
      connection must not keep a worker alive. A HEARTBEAT names its worker,
      so registry_heartbeat adopts the routing id it comes from (the
      worker's connection came back with a new one).
    - A worker silent for the expiry given to registry_new (the --worker-
      expiry-ms option on tcp links) is dead: registry_purge, called from
      the owner's timer, drops it (lost).
    - A worker that says it is leaving is draining: nothing new is placed on
      it (registry_json leaves it out) while its runs end; then it leaves.
    - Capacity: each worker offers its own memory and cores (READY's info);
      the cluster's budget is their sum, draining ones left out
      (registry_capacity_mb). The owner
      reserves a worker's memory for each environment placed on it and
      releases it when the environment ends.
    - The few workers lost last are remembered (registry_lost_json) for the
      operator's view, until they come back or are pushed out.

    Every drop, whatever the cause, goes through the one lost handler, so
    the owner (assignment) fails the runs that were on that worker in one
    place. The handler must not register workers; it may drop others (a
    send to one fails), and a worker already being dropped is left alone.
    The registry sends
    nothing: the owner drives the socket, so this class is plain data and
    tested without one.

        registry_t *registry = registry_new (4096, 600);
        registry_set_lost_handler (registry, s_worker_lost, self);
        registry_worker_t *worker = registry_ready (registry, "w1", route, msg_ready_info (msg), now);
        registry_reserve (worker, 128);     //  an environment placed on it
        registry_touch (registry, worker, route, now);
        registry_purge (registry, zclock_mono ());
    ========================================================================= */

#ifndef CLOWDY_REGISTRY_H_INCLUDED
#define CLOWDY_REGISTRY_H_INCLUDED

#include <czmq.h>
#include <cjson/cJSON.h>
#include "broker/deadlines.h"

typedef struct _registry_t registry_t;
typedef struct _registry_worker_t registry_worker_t;

//  Called for each worker dropped (expired, re-registered, removed), once it
//  is out of the registry and before it is freed. why: a short phrase for the log ("expired", "re-registered").
typedef void (registry_lost_fn) (registry_worker_t *worker, const char *why, void *arg);

//  A registry; default_capacity_mb is used for a worker that does not say;
//  a worker silent for more than expiry_ms is dropped by registry_purge.
registry_t *
    registry_new (long default_capacity_mb, int64_t expiry_ms);

//  Destroy without calling the lost handler; safe on NULL and twice.
void
    registry_destroy (registry_t **self_p);

void
    registry_set_lost_handler (registry_t *self, registry_lost_fn *handler, void *arg);

//  The workers' heartbeat interval: when a worker is lost, a worker of the
//  same process (READY's group) silent for two intervals is dropped with it
//  by registry_purge (they froze or died together). Unset: only the expiry.
void
    registry_set_heartbeat (registry_t *self, int64_t heartbeat_ms);

//  READY from route: register worker id with info (READY's parsed JSON
//  {capacity_mb, cores, host, group?, draining?}, or NULL; a missing or bad
//  capacity means the default, missing cores 1; workers with one group
//  share its capacity, counted once in the budget). A known id keeps its entry (what is reserved
//  on it included), with the new route and info, and is ready again;
//  *rejoined (may be NULL) says so. Returns the entry, or NULL for an empty
//  id or one longer than 255 bytes (logged).
registry_worker_t *
    registry_ready (registry_t *self, const char *id, zframe_t *route, const cJSON *info, int64_t now_ms,
                    bool *rejoined);

//  HEARTBEAT from route naming worker id: a sign of life, and the worker's
//  routing id from now on. Returns the worker, or NULL when id is unknown.
registry_worker_t *
    registry_heartbeat (registry_t *self, const char *id, zframe_t *route, int64_t now_ms);

//  A HEARTBEAT's load {capacity_mb, cores, ...}: what the worker offers
//  now. Returns true when it changed (the owner updates the budget).
bool
    registry_offer (registry_worker_t *worker, const cJSON *load);

//  The worker said it is leaving: nothing new goes to it.
void
    registry_drain (registry_worker_t *worker);
bool
    registry_worker_draining (registry_worker_t *worker);

//  The worker with this id, or NULL.
registry_worker_t *
    registry_lookup (registry_t *self, const char *id);

//  A message from route about worker (may be NULL): a sign of life when it
//  comes from the worker's own routing id. Returns true when counted.
bool
    registry_touch (registry_t *self, registry_worker_t *worker, zframe_t *route, int64_t now_ms);

//  Drop every worker silent for more than the expiry. Returns how many.
size_t
    registry_purge (registry_t *self, int64_t now_ms);

//  Drop one worker now: out of the registry, lost handler, freed. Nothing
//  happens for a worker already being dropped (inside its lost handler).
//  Unless why is "left" (it drained and said goodbye), it is remembered
//  among the lost ones.
void
    registry_remove (registry_t *self, registry_worker_t *worker, const char *why);

size_t
    registry_size (registry_t *self);

//  Iterate; do not add or remove while iterating.
registry_worker_t *
    registry_first (registry_t *self);
registry_worker_t *
    registry_next (registry_t *self);

//  An environment of memory_mb placed on / gone from the worker.
void
    registry_reserve (registry_worker_t *worker, long memory_mb);
void
    registry_release (registry_worker_t *worker, long memory_mb);

//  True if the worker's process has memory_mb left of its capacity (the
//  workers of one process, READY's group, share its memory).
bool
    registry_fits (registry_worker_t *worker, long memory_mb);

//  The list placement chooses from, the workers that take new work:
//  [{id, envs, memory_mb, capacity_mb, cores}]. Caller frees it.
char *
    registry_json (registry_t *self);

//  Memory all registered workers offer together (the cluster's budget: each
//  process once), and the largest one worker offers.
long
    registry_capacity_mb (registry_t *self);
long
    registry_largest_mb (registry_t *self);

//  The workers lost last, for the operator's view: [{id, host, state
//  "lost", memory_mb, cores, last_heartbeat_ms (ms since)}]; caller owns it.
cJSON *
    registry_lost_json (registry_t *self, int64_t now_ms);

const char *
    registry_worker_id (registry_worker_t *worker);
zframe_t *
    registry_worker_route (registry_worker_t *worker);
long
    registry_worker_capacity_mb (registry_worker_t *worker);
long
    registry_worker_memory_mb (registry_worker_t *worker);
size_t
    registry_worker_envs (registry_worker_t *worker);
//  Memory reserved on the worker's whole process (its siblings included),
//  and whether two workers live in one process (READY's group)
long
    registry_worker_shared_mb (registry_worker_t *worker);
bool
    registry_same_process (registry_worker_t *worker, registry_worker_t *other);
const char *
    registry_worker_host (registry_worker_t *worker);
double
    registry_worker_cores (registry_worker_t *worker);
int64_t
    registry_worker_last_seen (registry_worker_t *worker);

void
    registry_test (bool verbose);

#endif
