/*  =========================================================================
    registry - the worker broker's list of workers (Majordomo-style)

    Workers connect to assignment's "worker" socket, register with READY,
    heartbeat, and get work. The registry is what the broker knows of them:
    each worker's id, its routing id on that socket, when it was last heard
    from, the memory it offers (capacity) and what is placed on it. It keeps
    the rules of the worker link in one place:

    - READY registers a worker; a READY from an id already known means the
      worker restarted, so the old entry is dropped first (lost).
    - Any message from a known worker at its own routing id is a sign of
      life (registry_touch). One from another routing id is not: an old
      connection must not keep a new worker alive.
    - A worker silent for WORKER_EXPIRY_MS (broker/deadlines.h) is dead:
      registry_purge, called from the owner's timer, drops it (lost).
    - Capacity: the owner reserves a worker's memory for each environment
      placed on it and releases it when the environment ends.

    Every drop, whatever the cause, goes through the one lost handler, so
    the owner (assignment) fails the runs that were on that worker in one
    place. The handler must not register workers; it may drop others (a
    send to one fails), and a worker already being dropped is left alone.
    The registry sends
    nothing: the owner drives the socket, so this class is plain data and
    tested without one.

        registry_t *registry = registry_new (4096);
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

//  A registry; default_capacity_mb is used for a worker that does not say.
registry_t *
    registry_new (long default_capacity_mb);

//  Destroy without calling the lost handler; safe on NULL and twice.
void
    registry_destroy (registry_t **self_p);

void
    registry_set_lost_handler (registry_t *self, registry_lost_fn *handler, void *arg);

//  READY from route: register worker id with info (READY's parsed JSON
//  {capacity_mb, host}, or NULL; a missing or bad capacity means the
//  default). Returns the new entry, or
//  NULL for an empty id or one longer than 255 bytes (logged).
registry_worker_t *
    registry_ready (registry_t *self, const char *id, zframe_t *route, const cJSON *info, int64_t now_ms);

//  The worker with this id, or NULL.
registry_worker_t *
    registry_lookup (registry_t *self, const char *id);

//  A message from route about worker (may be NULL): a sign of life when it
//  comes from the worker's own routing id. Returns true when counted.
bool
    registry_touch (registry_t *self, registry_worker_t *worker, zframe_t *route, int64_t now_ms);

//  Drop every worker silent for more than WORKER_EXPIRY_MS. Returns how many.
size_t
    registry_purge (registry_t *self, int64_t now_ms);

//  Drop one worker now: out of the registry, lost handler, freed. Nothing
//  happens for a worker already being dropped (inside its lost handler).
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

//  True if the worker has memory_mb left of its capacity.
bool
    registry_fits (registry_worker_t *worker, long memory_mb);

//  The list placement chooses from: [{id, envs, memory_mb, capacity_mb}].
//  Caller frees it.
char *
    registry_json (registry_t *self);

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

void
    registry_test (bool verbose);

#endif
