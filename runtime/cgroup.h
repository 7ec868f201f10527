/*  =========================================================================
    cgroup - the sandbox's resource limits on cgroup v2 or v1

    One cgroup_t is one sandbox's cgroup: a directory under a parent cgroup
    (e.g. "clowdy") in the unified v2 hierarchy, or one directory per
    controller (memory, cpu, pids) in v1. The version is detected once by
    cgroup_system_init and logged; the rest of the API is the same for both.
    ========================================================================= */

#ifndef CLOWDY_CGROUP_H_INCLUDED
#define CLOWDY_CGROUP_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct _cgroup_t cgroup_t;

//  Detect v2 (/sys/fs/cgroup/cgroup.controllers) or v1 and log it once.
//  Returns 2, 1, or -1 when neither has the controllers we need.
int
    cgroup_system_init (void);

//  Create the parent cgroup (name: letters, digits, '.', '_', '-') in every
//  controller, enable the controllers for its children (v2), and remove
//  children left behind by servers that are no longer running. 0 or -1.
int
    cgroup_parent_prepare (const char *parent);

//  Remove the parent cgroup if it has no children left (best effort).
void
    cgroup_parent_remove (const char *parent);

//  Remove parents named "<prefix><pid>" whose pid is no longer running,
//  with their children (tests name their parents this way).
void
    cgroup_remove_stale_parents (const char *prefix);

//  Create a new, empty cgroup under parent, named "<our pid>-<sequence>".
//  NULL on failure (logged).
cgroup_t *
    cgroup_new (const char *parent);

//  The parent this cgroup was created under.
const char *
    cgroup_parent (cgroup_t *self);

//  Set every limit: memory in MB (and no swap), cpus (< 0 = unlimited),
//  pids. 0 or -1.
int
    cgroup_set_limits (cgroup_t *self, int memory_mb, double cpus, int pids);

//  Set only the memory limit (raise or lower). 0 or -1.
int
    cgroup_set_memory (cgroup_t *self, int memory_mb);

//  Set the CPU quota alone, in CPUs (< 0 = unlimited). 0 or -1.
int
    cgroup_set_cpus (cgroup_t *self, double cpus);

//  Set the CPU weight among the parent's children: ten times the default
//  (cpu.shares 10240, cpu.weight 1000) when urgent, else the default (1024,
//  100). Under contention an urgent cgroup gets ten times the CPU of each
//  sibling. 0 or -1.
int
    cgroup_set_urgent (cgroup_t *self, bool urgent);

//  The directory holding the cgroup's CPU files, for cgroup_dir_set_urgent
//  from another thread. The name outlives the cgroup_t: on v1 a recycled
//  cgroup keeps it for its next sandbox, so a holder must stop using it
//  when the sandbox it was given for is gone.
const char *
    cgroup_cpu_dir (cgroup_t *self);

//  cgroup_set_urgent by the CPU directory (another thread's cgroup, named
//  by cgroup_cpu_dir). 0 or -1.
int
    cgroup_dir_set_urgent (const char *cpu_dir, bool urgent);

//  Move a process into the cgroup. 0 or -1.
int
    cgroup_attach (cgroup_t *self, pid_t pid);

//  Fast path for v1: move the calling thread into the cgroup, so that a
//  child it clones now starts inside it; then cgroup_leave moves the thread
//  back where it was. A process write to cgroup.procs takes a global lock
//  whose first use after a quiet spell waits for an RCU grace period (5-20
//  ms here); moving only the current thread skips that lock. Returns -1 (and
//  changes nothing) where unsupported (v2): use cgroup_attach instead.
int
    cgroup_enter (cgroup_t *self);

//  For a child that moves itself in (v1): opens the tasks file of each
//  controller's directory for writing into fds (at most max). A process
//  that writes "0" to each (with these open-time credentials) moves its own
//  thread in, skipping the global lock as cgroup_enter does. Returns how
//  many were opened, 0 where unsupported (v2: use cgroup_attach), -1 on
//  error (nothing left open).
int
    cgroup_task_fds (cgroup_t *self, int *fds, int max);

//  Move the calling thread back to the cgroups it was in before
//  cgroup_enter; does nothing (returns 0) when it did not enter. 0 or -1
//  (logged).
int
    cgroup_leave (cgroup_t *self);

//  Number of processes the OOM killer has killed in this cgroup since it
//  was created; -1 if unknown.
int64_t
    cgroup_oom_kills (cgroup_t *self);

//  Peak memory use in bytes since creation or the last reset; -1 if unknown.
int64_t
    cgroup_memory_peak (cgroup_t *self);

//  Get the cgroup ready for reuse by another sandbox: true if it is empty
//  and its peak counter was reset. False means destroy it instead.
bool
    cgroup_recycle (cgroup_t *self);

//  Remove the cgroup's directories (it must be empty) and free it.
void
    cgroup_destroy (cgroup_t **self_p);

void
    cgroup_test (bool verbose);

#endif
