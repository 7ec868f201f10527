/*  =========================================================================
    sandbox - one isolated process tree for untrusted Python (no Docker)

    A sandbox is a process running in new user, pid, net, mount, ipc, uts and
    cgroup namespaces, with a tmpfs root that shows only the host's /usr
    (read-only), a minimal /etc, /proc, a small /dev, a capped tmpfs /tmp, a
    read-only copy of the runtime dir's .py files at /opt/clowdy and an optional
    layer at /opt/layer. It runs as
    uid 1000 inside (an unprivileged host uid outside), without capabilities,
    with no_new_privs and a seccomp filter, inside a cgroup that caps memory
    (no swap), CPU and pids. fds 0/1/2 are /dev/null, fd 3 is the protocol
    socket; sandbox_fd () is the other end. See sandbox.c for the design.

    Usage:
        sandbox_system_init ("clowdy");           //  once, at start-up
        sandbox_config_t config;
        sandbox_config_init (&config);            //  defaults, then adjust
        config.memory_mb = 256;
        sandbox_t *sandbox = sandbox_new (&config);
        int fd = sandbox_fd (sandbox);            //  speak the runner protocol
        ...
        sandbox_destroy (&sandbox);               //  kill, reap, recycle cgroup

    Threads: the functions are thread-safe for different sandboxes; one
    sandbox belongs to one thread at a time. The sandbox is killed when the
    thread that created it exits (PR_SET_PDEATHSIG follows the creating
    thread), so create sandboxes from a long-lived thread (an actor).
    Must run as root (it writes uid maps and cgroups for its children).
    A sandbox's pid 1 is the server's child, or the child of the creating
    thread's zygote (build/clowdy-zygote, also the server's child), which
    runner sandboxes are forked from when it is there: nothing else in the
    server may reap children with waitpid (-1, ...) or set SIGCHLD to
    SIG_IGN. Pid 1 runs build/clowdy-sandbox-init (found beside the running
    binary); without it, sandboxes still work but each pid 1 is a copy of
    the server (or of the zygote).
    ========================================================================= */

#ifndef CLOWDY_SANDBOX_H_INCLUDED
#define CLOWDY_SANDBOX_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

//  Defaults used by sandbox_config_init and for fields left at 0
#define SANDBOX_DEFAULT_MEMORY_MB   128
#define SANDBOX_DEFAULT_CPUS        0.5
#define SANDBOX_STARTUP_CPUS        1.0     //  the runner's own start (one thread): a whole CPU
#define SANDBOX_DEFAULT_PIDS        64
#define SANDBOX_DEFAULT_TMP_MB      64
#define SANDBOX_DEFAULT_CGROUP      "clowdy"
#define SANDBOX_DEFAULT_PYTHON      "/usr/bin/python3"
#define SANDBOX_DEFAULT_RUNTIME_DIR CLOWDY_SOURCE_DIR "/runtime"
#define SANDBOX_ZYGOTE_UID          67208864    //  host uid of zygotes: past every sandbox's ids

//  An extra bind mount of a host directory (a project's database dir, a
//  database server's socket dir). target: "/opt/NAME" (not clowdy or layer).
typedef struct {
    const char *source;             //  host dir
    const char *target;             //  where the sandbox sees it
    bool writable;                  //  false = read-only
} sandbox_mount_t;
#define SANDBOX_MAX_MOUNTS 4
#define SANDBOX_MAX_HOST_PORTS 4

typedef struct {
    const char *runtime_dir;        //  host dir whose top-level .py files (8, 512 KB at most)
                                    //  are copied read-only to /opt/clowdy; NULL = default
    const char *layer_dir;          //  NULL, or host dir bound read-only at /opt/layer
    const char *const *argv;        //  NULL = { python, -I, -B, /opt/clowdy/runner.py }
    const char *python;             //  interpreter for the default argv; NULL = /usr/bin/python3
    int memory_mb;                  //  memory limit, no swap; 0 = 128
    double cpus;                    //  CPU quota in CPUs; 0 = 0.5, < 0 = unlimited
    int pids;                       //  max processes/threads; 0 = 64
    int tmp_mb;                     //  size of the /tmp tmpfs; 0 = 64
    bool network;                   //  false = only lo; true = slirp4netns outbound
    const char *cgroup_name;        //  parent cgroup name; NULL = "clowdy"
    const sandbox_mount_t *mounts;  //  extra bind mounts, mount_count of them (<= SANDBOX_MAX_MOUNTS)
    int mount_count;
    int host_ports [SANDBOX_MAX_HOST_PORTS];    //  with network: TCP ports of the host's loopback
                                    //  reachable at 10.0.2.2 (a build's package index); 0 = none
    bool urgent;                    //  a call waits for it: its cgroup runs at ten times the
                                    //  default CPU weight (ahead of spares being made) until
                                    //  sandbox_set_urgent (false), which must come before any
                                    //  code of the function's runs in it
    void (*on_cgroup) (void *arg, const char *cpu_dir);
                                    //  NULL, or called (in sandbox_new's thread) once the
                                    //  sandbox's cgroup is chosen, before its processes start:
                                    //  cpu_dir names it for sandbox_cpu_dir_urgent
    void *on_cgroup_arg;            //  on_cgroup's argument
} sandbox_config_t;

typedef struct _sandbox_t sandbox_t;

//  Fill a config with the defaults above.
void
    sandbox_config_init (sandbox_config_t *config);

//  Detect cgroup v2 or v1 (logged once), create the parent cgroup, remove
//  cgroups left by dead servers, build the seccomp filters and fill the pool
//  of ready cgroups. Idempotent; sandbox_new calls it too. 0 or -1 (logged).
int
    sandbox_system_init (const char *cgroup_name);

//  Remove pooled cgroups and the parent cgroups if empty (for tests and
//  shutdown). Sandboxes still alive keep working; their cgroups are removed
//  when they are destroyed.
void
    sandbox_system_shutdown (void);

//  Sandboxes for the runner (default argv and python) come from a zygote
//  per creating thread when one is available (see sandbox.c, Zygotes);
//  false makes every sandbox start its own python. Default true.
void
    sandbox_zygote_enable (bool enabled);

//  Starts the calling thread's zygote for sandboxes made with config (the
//  runner's kind, zygotes on), if none runs, without waiting for it: a
//  creating thread calls it when it starts, so that its first sandbox in a
//  burst does not wait for a python's start. That first sandbox_new waits
//  for what is left of the zygote's start, as it would for one it started.
void
    sandbox_zygote_prepare (const sandbox_config_t *config);

//  An urgent sandbox (config.urgent) back at the default CPU weight, or
//  another made urgent. 0 or -1 (logged).
int
    sandbox_set_urgent (sandbox_t *self, bool urgent);

//  Makes urgent a sandbox still being made by another thread, named by the
//  cpu_dir its config.on_cgroup got: a spare a call now waits for. 0 or -1.
int
    sandbox_cpu_dir_urgent (const char *cpu_dir);

//  Stops the calling thread's zygote, if any (its sandboxes die with it).
//  Call from a creating thread before it exits.
void
    sandbox_zygote_stop (void);

//  In clowdy-zygote (runtime/zygote.c) only: serves clone requests on
//  socket until the server goes (returns -1), calling before_fork and
//  after_fork around each clone. Returns 0 in a new sandbox's pid 2,
//  which then runs the runner.
int
    sandbox_zygote_serve (int socket, void (*before_fork) (void), void (*after_fork) (void));

//  Create a sandbox and start its process. Returns NULL and logs the reason
//  on failure (including a failure to exec config->argv [0]).
sandbox_t *
    sandbox_new (const sandbox_config_t *config);

//  Host end of the protocol socket (SOCK_STREAM, non-blocking, CLOEXEC).
//  Owned by the sandbox: do not close it.
int
    sandbox_fd (sandbox_t *self);

//  Host pid of the sandbox's init (pid 1 inside); the user's process is its
//  child.
pid_t
    sandbox_pid (sandbox_t *self);

//  True if a zygote made this sandbox (its python did not start anew)
bool
    sandbox_zygote_made (sandbox_t *self);

//  Change the memory limit of a live sandbox (e.g. a pre-created one that
//  is about to load a function). 0 or -1.
int
    sandbox_set_memory (sandbox_t *self, int memory_mb);

//  Change the CPU quota of a live sandbox, in CPUs (< 0 = unlimited). The
//  worker starts the runner at SANDBOX_STARTUP_CPUS, so python's start is
//  not throttled, and sets the function's quota before its code arrives.
//  0 or -1.
int
    sandbox_set_cpus (sandbox_t *self, double cpus);

//  SIGKILL everything in the sandbox. Idempotent. 0 or -1.
int
    sandbox_kill (sandbox_t *self);

//  Reap the sandbox if it has ended; with wait, block until it has.
//  Returns true once it is dead and reaped.
bool
    sandbox_reap (sandbox_t *self, bool wait);

//  After sandbox_reap returned true: true if the main process was killed
//  by the kernel's OOM killer (SIGKILL and the cgroup's oom_kill counter).
bool
    sandbox_oom_killed (sandbox_t *self);

//  After sandbox_reap returned true: raw wait status of the main process
//  (use WIFEXITED etc.), or of the init if the main process could not be
//  observed (e.g. sandbox_kill). -1 if not reaped yet.
int
    sandbox_exit_status (sandbox_t *self);

//  Peak memory of the sandbox's cgroup in bytes, -1 if unknown. Valid while
//  alive and after sandbox_reap.
int64_t
    sandbox_memory_peak (sandbox_t *self);

//  Kill, reap, stop slirp4netns, and recycle or remove the cgroup. Safe to
//  call twice; nulls the pointer.
void
    sandbox_destroy (sandbox_t **self_p);

//  Self test of this class
void
    sandbox_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
