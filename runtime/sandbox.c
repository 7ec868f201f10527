/*  =========================================================================
    sandbox - one isolated process tree for untrusted Python (no Docker)

    Why: Clowdy runs users' Python on the host, next to its own database and
    sockets. Like runc and nsjail, it uses the kernel directly: namespaces
    for what the code can see, cgroups for what it can use, capabilities,
    no_new_privs and seccomp for what it can ask the kernel to do.

    How a sandbox starts (sandbox_new):

    1.  The parent (a thread of the server) prepares everything that needs
        memory: the mount plan, /etc file contents, argv, envp, and the
        seccomp BPF, which libseccomp builds once per network setting at
        sandbox_system_init and exports as raw BPF. A cgroup with the limits
        comes from a pool of ready cgroups (see below).
    2.  It clone()s the child, fork-like (raw SYS_clone, no new stack), with
        new user, pid, net, mount, ipc and uts namespaces. The server is
        multithreaded, so the child only makes plain system calls from here
        on: no malloc, no stdio, no libseccomp, no czmq (clowdy-zygote,
        which runs this child side too, links neither), and setresuid & co through
        syscall() because glibc's wrappers would try to signal the parent's
        threads. We chose this over exec'ing a single-threaded helper for
        the set-up: it saves an exec on the start-up path, and the list of
        calls the child makes is short and reviewed. (The small program
        pid 1 execs in step 5 runs after the user's process has started.)
    3.  The parent writes the child's uid_map and gid_map (inside 0..65535 =
        an unprivileged host range of 65536 ids per slot, from 100000 up),
        makes sure it is in its cgroup (see Cgroups below), starts
        slirp4netns if the network is on, then releases the child through
        the sync pipe.
    4.  The child becomes root of its user namespace, enters a new cgroup
        namespace (now that it is in its cgroup), and builds the root file
        system on a tmpfs: a read-only bind of /usr (with the merged-usr
        symlinks), our own /etc, a copy of the runner in /opt/clowdy and
        the layer at /opt/layer as a read-only overlay (a bind would name
        its host path in /proc/self/mountinfo), a /dev with four bound
        device nodes, a capped tmpfs /tmp, and /proc with hidepid. /proc
        is mounted before pivot_root, as a user namespace may only mount
        proc while a fully visible proc is still in view. After pivot_root
        the old root is detached and / remounted read-only.
    5.  The child is pid 1 of its pid namespace. It vforks the user's
        process (pid 2), drops all capabilities, loads the seccomp filter
        and execs clowdy-sandbox-init (runtime/sandbox_init.c, a small
        static program opened once at start-up and exec'd through its fd,
        since the new root does not show it): it reaps every zombie, and
        when pid 2 exits it reports pid 2's wait status on the status pipe
        and exits, which makes the kernel kill everything else in the
        namespace. The exec matters: otherwise pid 1 of every warm sandbox
        would be a copy-on-write image of the server (3+ MB resident here,
        growing as the server writes, holding its secrets) instead of ~0.7
        MB. Without the program (not built), the child reaps in place. Init
        keeps uid 0 of the namespace, so uid 1000 cannot signal, trace or
        even see it (hidepid).
    6.  Pid 2 gets fds 0/1/2 = /dev/null and 3 = the protocol socket and no
        other fds, sets uid/gid 1000 (dropping every capability), then
        PR_SET_PDEATHSIG (after the uid change, which clears it),
        no_new_privs, the seccomp filter, and execs argv with a clean env.
        Errors on the way are reported on the setup pipe, which is CLOEXEC:
        EOF on it means the exec succeeded, so sandbox_new returns a running
        sandbox or NULL with the reason logged.

    Init holds the server's PR_SET_PDEATHSIG, so if the server (precisely:
    the creating thread) dies, every sandbox dies with it; slirp4netns gets
    an --exit-fd for the same reason. slirp4netns runs in the sandbox's
    cgroup (born there while the creating thread is in it, or attached on
    v2), so a function's network traffic spends the function's CPU quota.

    Cgroups: measured here, a write of a pid to a v1 cgroup.procs takes 5-20
    ms whenever no other migration happened in the last ~100 ms, fresh
    cgroup or not: it takes the kernel's cgroup_threadgroup_rwsem for
    writing, which waits for an RCU grace period after a quiet spell. So on
    v1 the creating thread moves itself (tasks, "0": no global lock, 0.1-0.4
    ms) into the sandbox's cgroups, clones, and moves back; the child is
    born inside. v2 has no per-thread move for normal cgroups and attaches
    the child through cgroup.procs (clone3's CLONE_INTO_CGROUP would be the
    v2 fast path; not done, this host is v1). A small pool keeps cgroups
    ready, and a dead sandbox's v1 cgroup goes back to it (peak counter
    reset; the oom_kill counter cannot be reset, so each sandbox remembers
    the value it started with); v2 cgroups are not reused (memory.peak
    cannot be reset on most kernels).

    A sandbox a call waits for (config.urgent) has ten times the default
    CPU weight while it is made: ahead of the spares made beside it, and
    of the warm sandboxes running calls too, for the 20 ms or so it takes
    (at most one CPU: its quota). The worker sets the default back before
    any of the function's code runs.

    OOM: memory.failcnt stays 0 on this kernel, so a sandbox was OOM-killed
    when its main process died of SIGKILL and the cgroup's oom_kill counter
    went up during its life.
    ========================================================================= */

#include <czmq.h>
#include <dirent.h>
#include <sched.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <spawn.h>
#include <net/if.h>
#include <net/route.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include "runtime/sandbox.h"
#include "runtime/cgroup.h"

#define SANDBOX_UID         1000            //  the user's uid and gid inside
#define HOST_ID_BASE        100000          //  first host uid of slot 0
#define HOST_ID_RANGE       65536           //  ids mapped per sandbox
#define MAX_SLOTS           1024            //  concurrent sandboxes
_Static_assert (SANDBOX_ZYGOTE_UID == HOST_ID_BASE + MAX_SLOTS * HOST_ID_RANGE,
                "zygotes run as the first host uid past every slot's range");
#define POOL_MIN            2               //  ready cgroups made at init
#define POOL_MAX            64              //  recycled cgroups kept
#define SETUP_TIMEOUT_MS    10000           //  child setup + exec
#define MAX_BINDS           12
#define MAX_FILES           16
#define MAX_RUNTIME_FILES   8               //  .py files copied from the runtime dir
#define MAX_RUNTIME_BYTES   (512 * 1024)    //  their total size (the root tmpfs is 1 MB)
#define MAX_DIRS            12
#define MAX_LINKS           10
#define MAX_ARGS            64

//  Where the child mounts its new root before pivot_root; only ever a
//  mount point inside the child's own mount namespace.
static const char *s_newroot_candidates [] = { "/run/clowdy-sandbox", "/tmp/.clowdy-sandbox", NULL };

//  Setup stages, reported by the child on failure
enum {
    STAGE_SYNC, STAGE_IDS, STAGE_CGROUPNS, STAGE_PRIVATE, STAGE_ROOT, STAGE_MKDIR,
    STAGE_SYMLINK, STAGE_FILE, STAGE_BIND, STAGE_REMOUNT, STAGE_TMP, STAGE_PROC,
    STAGE_PIVOT, STAGE_ROOT_RO, STAGE_CLONE, STAGE_FDS, STAGE_USER, STAGE_CAPS,
    STAGE_PRCTL, STAGE_SECCOMP, STAGE_EXEC, STAGE_CGROUP, STAGE_COUNT
};
static const char *s_stage_names [STAGE_COUNT] = {
    "wait for parent", "become root of the user namespace", "new cgroup namespace",
    "make mounts private", "mount tmpfs root", "mkdir", "symlink", "write /etc file",
    "bind mount", "remount read-only", "mount /tmp", "mount /proc", "pivot_root",
    "remount / read-only", "clone the process", "set up fds", "change to the sandbox user",
    "drop capabilities", "prctl", "load seccomp filter", "exec", "enter the cgroup"
};

//  A bind mount of a host path into the new root
typedef struct {
    const char *source;             //  host path
    char *target;                   //  absolute path under the new root
    bool is_file;                   //  device node: mount point is a file
    bool readonly;                  //  remount read-only after binding
    bool overlay;                   //  a directory: try a read-only overlay first
    unsigned long flags;            //  flags of the source mount to keep
    int mount_index;                //  source is mount_sources [mount_index], or -1
} bind_t;

//  A file written into the new root
typedef struct {
    char *path;                     //  absolute path under the new root
    const char *content;            //  its bytes
    size_t size;                    //  how many
    bool owned;                     //  content is ours to free
} file_t;

//  A symlink in the new root
typedef struct {
    const char *target;             //  what it points to
    char *path;                     //  absolute path under the new root
} link_t;

//  Everything the child needs, prepared by the parent (no malloc after clone)
typedef struct {
    int sync_fd;                    //  read end: one byte = go; EOF = server gone
    int setup_fd;                   //  write end: {stage, errno} on failure
    int status_fd;                  //  write end: the main process's wait status
    int proto_fd;                   //  child end of the protocol socketpair
    int init_fd;                    //  clowdy-sandbox-init to exec as pid 1, or -1
    const char *newroot;            //  where the new root is mounted
    char *root_options;             //  tmpfs options of the root
    char *tmp_path;                 //  newroot/tmp
    char *tmp_options;              //  tmpfs options of /tmp
    char *proc_path;                //  newroot/proc
    char *dirs [MAX_DIRS];          //  directories to create, in order
    int ndirs;                      //  number of dirs
    link_t links [MAX_LINKS];       //  symlinks to create
    int nlinks;                     //  number of links
    file_t files [MAX_FILES];       //  files to write
    int nfiles;                     //  number of files
    bind_t binds [MAX_BINDS];       //  bind mounts, in order
    int nbinds;                     //  number of binds
    const char *mount_paths [SANDBOX_MAX_MOUNTS + 1];   //  the layer's and extra mounts' host dirs
    char mount_sources [SANDBOX_MAX_MOUNTS + 1][32];    //  "/proc/self/fd/N" for each
    int nmounts;                    //  number of those (the layer, then extra mounts)
    int mount_fd;                   //  the child opens mount_paths [i] on fd mount_fd + i
    const struct sock_fprog *filter;    //  seccomp program
    char *argv [MAX_ARGS + 1];      //  the user's process
    char *const *envp;              //  its environment
    bool zygote;                    //  cloned by a zygote: pid 2 returns into its python, no exec
    int cgroup_fds [4];             //  (zygote) tasks files pid 1 writes "0" to first
    int ncgroup_fds;                //  how many
    int mount_src_fds [SANDBOX_MAX_MOUNTS + 1];     //  (zygote) mount_paths opened by the server
} plan_t;

struct _sandbox_t {
    pid_t pid;                      //  host pid of init, 0 once reaped
    pid_t init_pid;                 //  host pid of init, kept after reaping
    int fd;                         //  host end of the protocol socket
    int sync_fd;                    //  write end of the sync pipe (held open)
    int status_fd;                  //  read end of the status pipe
    int slot;                       //  uid range slot
    cgroup_t *cgroup;               //  our cgroup
    int64_t oom_base;               //  cgroup oom_kill count at start
    pid_t slirp_pid;                //  slirp4netns, or 0
    int slirp_exit_fd;              //  closing it stops slirp4netns
    bool reaped;                    //  init has been reaped
    int exit_status;                //  main process wait status, -1 until reaped
    bool oom_killed;                //  verdict after reaping
    int64_t memory_peak;            //  bytes, measured at reaping
    int pidfd;                      //  init's pidfd when a zygote made it (not our child), else -1
    bool cgroup_named;              //  on_cgroup gave its cgroup's name out and the sandbox has
                                    //  not started: if it fails, the cgroup is removed, not
                                    //  pooled, so that a late write by name reaches no other
};

//  Process-wide state, guarded by s_mutex
static pthread_mutex_t s_mutex = PTHREAD_MUTEX_INITIALIZER;
static bool s_initialized = false;              //  filters built, newroot made
static const char *s_newroot = NULL;            //  chosen mount point
static struct sock_fprog s_filter_net;          //  seccomp with network
static struct sock_fprog s_filter_nonet;        //  seccomp without network
static zlistx_t *s_parents = NULL;              //  prepared parent cgroup names
static zlistx_t *s_pool = NULL;                 //  ready cgroup_t's
static int s_init_fd = -1;                      //  clowdy-sandbox-init, or -1
static bool s_overlay = false;                  //  the kernel has overlayfs
static unsigned char s_slots [MAX_SLOTS];       //  uid range slots in use
static char *s_env [] = {
    "PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8",
    "PYTHONDONTWRITEBYTECODE=1", NULL
};

static const char s_passwd [] =
    "root:x:0:0:root:/root:/usr/sbin/nologin\n"
    "sandbox:x:1000:1000:sandbox:/tmp:/usr/sbin/nologin\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
static const char s_group [] = "root:x:0:\nsandbox:x:1000:\nnogroup:x:65534:\n";
static const char s_hosts [] = "127.0.0.1\tlocalhost clowdy\n::1\tlocalhost\n";
static const char s_nsswitch [] = "passwd: files\ngroup: files\nhosts: files dns\n";
static const char s_resolv [] = "nameserver 10.0.2.3\n";      //  slirp4netns DNS


//  --------------------------------------------------------------------------
//  Seccomp: built with libseccomp in the parent, loaded as raw BPF in the child
//
//  An allow list. Every call the filter does not name fails with ENOSYS, the
//  answer of a kernel that lacks the call, so the C library and Python fall
//  back as they would there; that includes every call newer than the
//  installed libseccomp (a deny list let those through: open_tree_attr gave
//  a mount fd while open_tree was refused). The list is Docker's default
//  profile's unconditional one (moby profiles/seccomp/default.json) minus what
//  we refuse on purpose, which fails with EPERM instead (s_denied_syscalls).
//  Names this architecture or libseccomp does not know are skipped.

//  The generic preallocation ioctls (fs/ioctl.c), which the kernel's uapi
//  headers do not export: each calls fallocate, with FALLOC_FL_KEEP_SIZE
//  (RESVSP) or FALLOC_FL_ZERO_RANGE, on any file system
struct s_space_resv {
    int16_t l_whence;
    int16_t l_type;
    int64_t l_start;
    int64_t l_len;
    int32_t l_sysid;
    uint32_t l_pid;
    int32_t l_pad [4];
};
#define S_FS_IOC_RESVSP     _IOW ('X', 40, struct s_space_resv)
#define S_FS_IOC_RESVSP64   _IOW ('X', 42, struct s_space_resv)
#define S_FS_IOC_ZERO_RANGE _IOW ('X', 57, struct s_space_resv)

static const char *s_allowed_syscalls [] = {
    //  files and directories
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2",
    "pwritev2", "open", "openat", "openat2", "creat", "close", "close_range", "lseek", "_llseek",
    "stat", "fstat", "lstat", "newfstatat", "statx", "stat64", "fstat64", "lstat64", "fstatat64",
    "statfs", "fstatfs", "statfs64", "fstatfs64", "access", "faccessat", "faccessat2",
    "getdents", "getdents64", "getcwd", "chdir", "fchdir", "mkdir", "mkdirat", "rmdir",
    "rename", "renameat", "renameat2", "link", "linkat", "unlink", "unlinkat", "symlink",
    "symlinkat", "readlink", "readlinkat", "chmod", "fchmod", "fchmodat", "fchmodat2", "chown",
    "fchown", "lchown", "fchownat", "chown32", "fchown32", "lchown32", "umask", "truncate",
    "ftruncate", "truncate64", "ftruncate64", "fadvise64", "fadvise64_64",
    "readahead", "fsync", "fdatasync", "sync", "syncfs", "sync_file_range", "flock", "fcntl",
    "fcntl64", "dup", "dup2", "dup3", "pipe", "pipe2", "mknod", "mknodat", "utime", "utimes",
    "utimensat", "futimesat", "utimensat_time64", "getxattr", "lgetxattr", "fgetxattr",
    "listxattr", "llistxattr", "flistxattr",
    "removexattr", "lremovexattr", "fremovexattr", "copy_file_range", "sendfile", "sendfile64",
    "splice", "tee", "vmsplice", "inotify_init", "inotify_init1", "inotify_add_watch",
    "inotify_rm_watch", "fanotify_mark", "memfd_create", "memfd_secret", "cachestat",
    "io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "io_pgetevents",
    "io_pgetevents_time64", "ioprio_get", "ioprio_set",
    //  memory
    "brk", "mmap", "mmap2", "munmap", "mremap", "mprotect", "madvise", "mincore", "msync",
    "mlock", "mlock2", "mlockall", "munlock", "munlockall", "remap_file_pages", "membarrier",
    "pkey_alloc", "pkey_free", "pkey_mprotect", "map_shadow_stack",
    //  processes, threads, signals
    "fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid", "waitpid",
    "getpid", "getppid", "gettid", "getpgid", "getpgrp", "getsid", "setpgid", "setsid",
    "kill", "tkill", "tgkill", "pidfd_open", "pidfd_send_signal", "process_mrelease",
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigsuspend", "rt_sigpending",
    "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
    "sigaltstack", "sigreturn", "sigprocmask", "signalfd", "signalfd4", "pause",
    "restart_syscall", "set_tid_address", "set_robust_list", "get_robust_list", "futex",
    "futex_time64", "futex_waitv", "futex_wake", "futex_wait", "futex_requeue", "rseq",
    "arch_prctl", "set_thread_area", "get_thread_area", "modify_ldt", "prctl", "seccomp",
    "capget", "capset", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
    //  scheduling, time, limits, identity
    "sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getparam",
    "sched_setparam", "sched_getscheduler", "sched_setscheduler", "sched_getattr",
    "sched_setattr", "sched_get_priority_max", "sched_get_priority_min",
    "sched_rr_get_interval", "sched_rr_get_interval_time64", "getcpu", "getpriority",
    "setpriority", "clock_gettime", "clock_getres", "clock_nanosleep", "clock_gettime64",
    "clock_getres_time64", "clock_nanosleep_time64", "gettimeofday", "time", "nanosleep",
    "times", "alarm", "getitimer", "setitimer", "timer_create", "timer_settime",
    "timer_gettime", "timer_getoverrun", "timer_delete", "timer_settime64", "timer_gettime64",
    "timerfd_create", "timerfd_settime", "timerfd_gettime", "timerfd_settime64",
    "timerfd_gettime64", "getrlimit", "setrlimit", "prlimit64", "ugetrlimit", "getrusage",
    "sysinfo", "uname", "getrandom", "getuid", "geteuid", "getgid", "getegid", "getresuid",
    "getresgid", "getgroups", "setuid", "setgid", "setreuid", "setregid", "setresuid",
    "setresgid", "setgroups", "setfsuid", "setfsgid", "getuid32", "geteuid32", "getgid32",
    "getegid32", "getresuid32", "getresgid32", "getgroups32", "setuid32", "setgid32",
    "setreuid32", "setregid32", "setresuid32", "setresgid32", "setgroups32", "setfsuid32",
    "setfsgid32",
    //  waiting for many things
    "poll", "ppoll", "ppoll_time64", "select", "_newselect", "pselect6", "pselect6_time64",
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2",
    "epoll_ctl_old", "epoll_wait_old", "eventfd", "eventfd2",
    //  sockets (socket itself has its own rules below)
    "socketpair", "bind", "listen", "accept", "accept4", "connect", "getsockname",
    "getpeername", "getsockopt", "setsockopt", "shutdown", "send", "sendto", "sendmsg",
    "sendmmsg", "recv", "recvfrom", "recvmsg", "recvmmsg", "recvmmsg_time64",
    //  System V and POSIX IPC (the sandbox has its own IPC namespace)
    "ipc", "msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop", "semtimedop",
    "semtimedop_time64", "semctl", "shmget", "shmat", "shmdt", "shmctl", "mq_open", "mq_unlink",
    "mq_timedsend", "mq_timedreceive", "mq_timedsend_time64", "mq_timedreceive_time64",
    "mq_notify", "mq_getsetattr",
    NULL
};

//  Refused with EOPNOTSUPP, as where the file system lacks them: they put
//  data on disk that RLIMIT_FSIZE does not count, so one call on a
//  writable host directory (a project's database, a build's output) could
//  fill the host's disk before anything measured it.
//  - fallocate, every mode: KEEP_SIZE reserves blocks past the end of a
//    file without changing its size, and mode 0 inside a size made earlier
//    (or by INSERT_RANGE) grows nothing. glibc's posix_fallocate, which
//    SQLite and Python use, writes the blocks instead on EOPNOTSUPP.
//  - setting extended attributes: on XFS, btrfs or ext4 with ea_inode a
//    file's attributes can take gigabytes. Copying tools (cp -a, Python's
//    shutil.copystat) skip attributes on EOPNOTSUPP.
static const char *s_unsupported_syscalls [] = {
    "fallocate", "setxattr", "lsetxattr", "fsetxattr", NULL
};

//  Refused on purpose, with EPERM: debugging other processes, mounts and
//  namespaces, kernel keys, BPF, modules, io_uring, the clock and the like
static const char *s_denied_syscalls [] = {
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    "mount", "umount2", "pivot_root", "chroot", "fsopen", "fsconfig", "fsmount",
    "fspick", "move_mount", "open_tree", "mount_setattr",
    "unshare", "setns", "keyctl", "add_key", "request_key", "bpf",
    "perf_event_open", "kexec_load", "kexec_file_load", "init_module",
    "finit_module", "delete_module", "reboot", "swapon", "swapoff",
    "userfaultfd", "open_by_handle_at", "name_to_handle_at", "io_uring_setup",
    "io_uring_enter", "io_uring_register", "acct", "quotactl", "quotactl_fd", "syslog",
    "lookup_dcookie", "fanotify_init", "settimeofday", "clock_settime",
    "clock_adjtime", "adjtimex", "sethostname", "setdomainname", "iopl",
    "ioperm", "vhangup", "uselib", "nfsservctl", NULL
};

//  Rules for "the low 32 bits of argument arg are none of values". The
//  kernel reads int arguments (a socket's family, an ioctl's request) from
//  the low 32 bits only, so a 64-bit comparison would let family
//  0x1_00000028 past a rule against 40 (AF_VSOCK). libseccomp has no
//  masked not-equal, and an unconditional rule would override the
//  conditional ones of the same call, so the complement of the values is
//  cut into masked-equal rules, a bit at a time from the lowest: while the
//  bits fixed so far (mask, datum) still match some of the values, fix the
//  next one both ways; once they match none, one rule covers every number
//  with those bits. At most 32 rules per value.
static int
s_rule_add_low32_outside (scmp_filter_ctx ctx, uint32_t action, int nr, unsigned int arg,
                          const uint32_t *values, size_t count, int bit, uint32_t mask, uint32_t datum)
{
    if (bit == 32)
        return 0;                   //  One of the values itself
    uint32_t next_mask = mask | (uint32_t) 1 << bit;
    int rc = 0;
    for (uint32_t side = 0; side < 2 && rc == 0; side++) {
        uint32_t next_datum = datum | side << bit;
        bool matches = false;
        for (size_t index = 0; index < count && !matches; index++)
            matches = (values [index] & next_mask) == next_datum;
        if (matches)
            rc = s_rule_add_low32_outside (ctx, action, nr, arg, values, count, bit + 1, next_mask, next_datum);
        else
            rc = seccomp_rule_add (ctx, action, nr, 1, SCMP_CMP (arg, SCMP_CMP_MASKED_EQ, next_mask, next_datum));
    }
    return rc;
}

static int
s_rule_add_low32_ne (scmp_filter_ctx ctx, uint32_t action, int nr, unsigned int arg, uint32_t value)
{
    return s_rule_add_low32_outside (ctx, action, nr, arg, &value, 1, 0, 0, 0);
}

static int
s_rule_add_low32_eq (scmp_filter_ctx ctx, uint32_t action, int nr, unsigned int arg, uint32_t value)
{
    return seccomp_rule_add (ctx, action, nr, 1, SCMP_CMP (arg, SCMP_CMP_MASKED_EQ, 0xFFFFFFFFu, value));
}

//  Add one action for a list of names; names unknown here are skipped
static int
s_rule_add_names (scmp_filter_ctx ctx, uint32_t action, const char **names)
{
    int rc = 0;
    for (int index = 0; names [index] && rc == 0; index++) {
        int nr = seccomp_syscall_resolve_name (names [index]);
        if (nr >= 0)
            rc = seccomp_rule_add (ctx, action, nr, 0);
    }
    return rc;
}

static int
s_filter_build (bool network, struct sock_fprog *program)
{
    scmp_filter_ctx ctx = seccomp_init (SCMP_ACT_ERRNO (ENOSYS));
    if (!ctx)
        return -1;
    //  A binary tree over syscall numbers rather than a chain of ~350 tests
    seccomp_attr_set (ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
    //  Other ABIs (i386's int 0x80, x32's numbers) are refused the same way,
    //  ENOSYS rather than a kill
    seccomp_attr_set (ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ERRNO (ENOSYS));
    int rc = s_rule_add_names (ctx, SCMP_ACT_ALLOW, s_allowed_syscalls);
    if (rc == 0)
        rc = s_rule_add_names (ctx, SCMP_ACT_ERRNO (EPERM), s_denied_syscalls);
    //  clone without namespace flags (threads, fork, posix_spawn); with one,
    //  EPERM. The flags are all in the low 32 bits, which the masks test
    //  whatever the high bits hold. clone3 hides its flags in memory: it
    //  stays unlisted (ENOSYS), and the C library falls back to clone.
    static const uint64_t ns_flags [] = {
        CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID,
        CLONE_NEWNET, CLONE_NEWCGROUP
    };
    uint64_t ns_mask = 0;
    for (size_t index = 0; index < sizeof ns_flags / sizeof ns_flags [0] && rc == 0; index++) {
        ns_mask |= ns_flags [index];
        rc = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), SCMP_SYS (clone), 1,
                               SCMP_A0 (SCMP_CMP_MASKED_EQ, ns_flags [index], ns_flags [index]));
    }
    if (rc == 0)
        rc = seccomp_rule_add (ctx, SCMP_ACT_ALLOW, SCMP_SYS (clone), 1,
                               SCMP_A0 (SCMP_CMP_MASKED_EQ, ns_mask, 0));
    //  ioctl, except faking terminal input and the requests that reserve
    //  disk blocks as fallocate does (below), on any file system
    const uint32_t refused_ioctls [] = { TIOCSTI, S_FS_IOC_RESVSP, S_FS_IOC_RESVSP64, S_FS_IOC_ZERO_RANGE };
    size_t refused_count = sizeof refused_ioctls / sizeof refused_ioctls [0];
    for (size_t index = 0; index < refused_count && rc == 0; index++)
        rc = s_rule_add_low32_eq (ctx, SCMP_ACT_ERRNO (EPERM), SCMP_SYS (ioctl), 1, refused_ioctls [index]);
    if (rc == 0)
        rc = s_rule_add_low32_outside (ctx, SCMP_ACT_ALLOW, SCMP_SYS (ioctl), 1,
                                       refused_ioctls, refused_count, 0, 0, 0);
    //  EOPNOTSUPP, as a file system without them says, for what puts data on
    //  disk that RLIMIT_FSIZE does not count (see s_unsupported_syscalls)
    if (rc == 0)
        rc = s_rule_add_names (ctx, SCMP_ACT_ERRNO (EOPNOTSUPP), s_unsupported_syscalls);
    //  personality: the values Docker allows (Linux, 32-bit, uname26, query)
    static const uint32_t personas [] = { 0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFFu };
    for (size_t index = 0; index < sizeof personas / sizeof personas [0] && rc == 0; index++)
        rc = s_rule_add_low32_eq (ctx, SCMP_ACT_ALLOW, SCMP_SYS (personality), 0, personas [index]);
    //  socket: never AF_VSOCK (on a VM host it reaches the hypervisor's
    //  services, past every route); without network, AF_UNIX alone
    if (rc == 0 && network) {
        rc = s_rule_add_low32_eq (ctx, SCMP_ACT_ERRNO (EAFNOSUPPORT), SCMP_SYS (socket), 0, AF_VSOCK);
        if (rc == 0)
            rc = s_rule_add_low32_ne (ctx, SCMP_ACT_ALLOW, SCMP_SYS (socket), 0, AF_VSOCK);
    }
    if (rc == 0 && !network) {
        rc = s_rule_add_low32_eq (ctx, SCMP_ACT_ALLOW, SCMP_SYS (socket), 0, AF_UNIX);
        if (rc == 0)
            rc = s_rule_add_low32_ne (ctx, SCMP_ACT_ERRNO (EAFNOSUPPORT), SCMP_SYS (socket), 0, AF_UNIX);
    }
    //  Export the BPF to a memfd and read it back
    int fd = -1;
    if (rc == 0) {
        fd = memfd_create ("clowdy-seccomp", MFD_CLOEXEC);
        rc = fd < 0? -errno: seccomp_export_bpf (ctx, fd);
    }
    if (rc == 0) {
        off_t size = lseek (fd, 0, SEEK_END);
        if (size <= 0 || size % sizeof (struct sock_filter) || size > 65536)
            rc = -EINVAL;
        else {
            struct sock_filter *code = (struct sock_filter *) zmalloc (size);
            if (pread (fd, code, size, 0) != size) {
                free (code);
                rc = -EIO;
            }
            else {
                program->filter = code;
                program->len = (unsigned short) (size / sizeof (struct sock_filter));
            }
        }
    }
    if (fd >= 0)
        close (fd);
    seccomp_release (ctx);
    if (rc)
        zsys_error ("sandbox: cannot build seccomp filter: %s", strerror (-rc));
    return rc? -1: 0;
}


//  --------------------------------------------------------------------------
//  The child: init (pid 1) and the user's process (pid 2). Only plain system
//  calls from here on; see the design notes above.

static void
s_fail (plan_t *plan, int stage, int error)
{
    int report [2] = { stage, error };
    if (write (plan->setup_fd, report, sizeof report) < 0)
        {}  //  nothing more we can do
    _exit (127);
}

//  Decimal text of a non-negative int, without stdio
static void
s_format_int (char *buffer, int value)
{
    char digits [16];
    int count = 0;
    do {
        digits [count++] = (char) ('0' + value % 10);
        value /= 10;
    } while (value > 0 && count < 15);
    for (int index = 0; index < count; index++)
        buffer [index] = digits [count - 1 - index];
    buffer [count] = 0;
}

static void
s_reset_signals (void)
{
    struct sigaction action;
    memset (&action, 0, sizeof action);
    action.sa_handler = SIG_DFL;
    for (int signum = 1; signum < _NSIG; signum++)
        sigaction (signum, &action, NULL);      //  fails for KILL/STOP/internal: fine
    sigset_t none;
    sigemptyset (&none);
    sigprocmask (SIG_SETMASK, &none, NULL);
}

//  Close every fd except the listed ones (-1 entries are ignored)
static void
s_close_except (int *keep, int count)
{
    //  Insertion sort: no libc helpers that might allocate
    for (int index = 1; index < count; index++)
        for (int at = index; at > 0 && keep [at - 1] > keep [at]; at--) {
            int swap = keep [at];
            keep [at] = keep [at - 1];
            keep [at - 1] = swap;
        }
    unsigned int from = 0;
    for (int index = 0; index < count; index++) {
        if (keep [index] < 0 || (unsigned int) keep [index] < from)
            continue;
        if ((unsigned int) keep [index] > from)
            syscall (SYS_close_range, from, keep [index] - 1, 0);
        from = keep [index] + 1;
    }
    syscall (SYS_close_range, from, ~0U, 0);
}

static int
s_drop_bounding_set (void)
{
    for (int cap = 0; cap <= 63; cap++)
        if (prctl (PR_CAPBSET_DROP, cap, 0, 0, 0) && errno != EINVAL)
            return -1;
    return 0;
}

static int
s_drop_all_caps (void)
{
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data [2];
    memset (data, 0, sizeof data);
    if (syscall (SYS_capset, &header, data))
        return -1;
    return prctl (PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL? -1: 0;
}

//  pid 2: becomes the user's process (execs it; a zygote's returns, ready
//  to go back into the zygote's python, having closed the setup pipe)
static void
s_run_user (const plan_t *init_plan)
{
    //  Our own copy: init's memory is shared until exec
    plan_t copy = *init_plan;
    plan_t *plan = &copy;
    //  fds: 0/1/2 = /dev/null, 3 = protocol, 4 = setup pipe (CLOEXEC)
    int null_fd = open ("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd < 0)
        s_fail (plan, STAGE_FDS, errno);
    int high_null = fcntl (null_fd, F_DUPFD_CLOEXEC, 5);
    int high_proto = fcntl (plan->proto_fd, F_DUPFD_CLOEXEC, 5);
    int high_setup = fcntl (plan->setup_fd, F_DUPFD_CLOEXEC, 5);
    if (high_null < 0 || high_proto < 0 || high_setup < 0)
        s_fail (plan, STAGE_FDS, errno);
    plan->setup_fd = high_setup;
    if (dup2 (high_null, 0) < 0 || dup2 (high_null, 1) < 0 || dup2 (high_null, 2) < 0
    ||  dup2 (high_proto, 3) < 0 || dup3 (high_setup, 4, O_CLOEXEC) < 0)
        s_fail (plan, STAGE_FDS, errno);
    plan->setup_fd = 4;
    syscall (SYS_close_range, 5, ~0U, 0);
    setsid ();

    //  The sandbox user: set ids with raw syscalls (see design notes)
    if (syscall (SYS_setgroups, 0, NULL)
    ||  syscall (SYS_setresgid, SANDBOX_UID, SANDBOX_UID, SANDBOX_UID))
        s_fail (plan, STAGE_USER, errno);
    if (s_drop_bounding_set ())
        s_fail (plan, STAGE_CAPS, errno);
    if (syscall (SYS_setresuid, SANDBOX_UID, SANDBOX_UID, SANDBOX_UID))
        s_fail (plan, STAGE_USER, errno);
    if (s_drop_all_caps ())
        s_fail (plan, STAGE_CAPS, errno);
    if (prctl (PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)
    ||  prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
        s_fail (plan, STAGE_PRCTL, errno);
    //  The uid change made us non-dumpable (/proc/self owned by root); an
    //  exec would make a plain program dumpable again, so a zygote's child,
    //  which does not exec, does so itself
    if (plan->zygote && prctl (PR_SET_DUMPABLE, 1, 0, 0, 0))
        s_fail (plan, STAGE_PRCTL, errno);
    if (getppid () != 1)
        _exit (1);              //  init died before PDEATHSIG was set
    struct rlimit no_core = { 0, 0 };
    setrlimit (RLIMIT_CORE, &no_core);
    if (chdir ("/tmp"))
        s_fail (plan, STAGE_FDS, errno);
    if (prctl (PR_SET_SECCOMP, SECCOMP_MODE_FILTER, plan->filter, 0, 0))
        s_fail (plan, STAGE_SECCOMP, errno);
    if (plan->zygote) {
        close (plan->setup_fd);         //  EOF: set up, as an exec would say
        return;
    }
    execve (plan->argv [0], plan->argv, plan->envp);
    s_fail (plan, STAGE_EXEC, errno);
}

//  Make a bind read-only, nosuid and nodev, with every mount below it (the
//  bind is recursive: a user namespace may not hide mounts below it)
static int
s_make_readonly (const bind_t *bind)
{
    struct mount_attr attr;
    memset (&attr, 0, sizeof attr);
    attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
    if (mount_setattr (AT_FDCWD, bind->target, AT_RECURSIVE, &attr, sizeof attr) == 0)
        return 0;
    if (errno != ENOSYS)
        return -1;
    //  Before Linux 5.12: the top mount only
    return mount (NULL, bind->target, NULL,
                  MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | bind->flags, NULL);
}

//  A host directory as a read-only overlay whose layers are named through
//  /proc/self/fd: mountinfo then shows "lowerdir=/proc/self/fd/N:/proc/self/
//  fd/M" where a bind would show the directory's host path (a layer lives in
//  the data dir). Without an upper layer overlay wants two lower ones; the
//  second is the mount point itself, an empty directory of our root tmpfs.
//  Mounts below the source do not show through (binds would carry them).
//  Needs Linux 5.11 for overlay in a user namespace: -1 and the caller binds.
static int
s_mount_overlay (const bind_t *bind)
{
    int source = open (bind->source, O_PATH | O_DIRECTORY | O_CLOEXEC);
    int target = open (bind->target, O_PATH | O_DIRECTORY | O_CLOEXEC);
    int rc = -1;
    if (source >= 0 && target >= 0) {
        char options [96] = "ro,lowerdir=/proc/self/fd/";
        char number [16];
        s_format_int (number, source);
        strcat (options, number);
        strcat (options, ":/proc/self/fd/");
        s_format_int (number, target);
        strcat (options, number);
        //  noexec if the source is (a bind would keep that flag)
        rc = mount ("overlay", bind->target, "overlay",
                    MS_RDONLY | MS_NOSUID | MS_NODEV | (bind->flags & MS_NOEXEC), options);
    }
    if (source >= 0)
        close (source);
    if (target >= 0)
        close (target);
    return rc;
}

static int
s_mount_proc (const char *path)
{
    static const char *options [] = { "hidepid=invisible,subset=pid", "hidepid=2", NULL };
    unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
    for (int index = 0; options [index]; index++)
        if (mount ("proc", path, "proc", flags, options [index]) == 0)
            return 0;
    return mount ("proc", path, "proc", flags, NULL);
}

//  A zygote's pid 1 gets the layer and extra mounts as detached trees the
//  server cloned (open_tree): a mount of the server's own namespace, which
//  a bind or an overlay here may not use. Attached in our namespace first
//  (move_mount), a tree is then what a classic clone's bind source is. The
//  layer goes through a staging dir beside its target and becomes a
//  read-only overlay as in s_child, the staging mount detached after; when
//  overlay cannot be used the tree is moved onto the target. 0 or -1.
static int
s_attach_tree (plan_t *plan, bind_t *bind)
{
    int tree = plan->mount_fd + bind->mount_index;
    if (!bind->overlay)
        return move_mount (tree, "", AT_FDCWD, bind->target, MOVE_MOUNT_F_EMPTY_PATH);
    char staging [PATH_MAX];
    size_t length = strlen (bind->target);
    if (length + 8 >= sizeof staging)
        return -1;
    memcpy (staging, bind->target, length);
    memcpy (staging + length, ".source", 8);
    if (mkdir (staging, 0700) || move_mount (tree, "", AT_FDCWD, staging, MOVE_MOUNT_F_EMPTY_PATH))
        return -1;
    const char *source = bind->source;
    bind->source = staging;
    int rc = s_mount_overlay (bind);
    bind->source = source;
    if (rc == 0)
        rc = umount2 (staging, MNT_DETACH) || rmdir (staging)? -1: 0;
    else
        rc = move_mount (AT_FDCWD, staging, AT_FDCWD, bind->target, 0) || rmdir (staging)? -1: 0;
    return rc;
}

//  pid 1: builds the sandbox, starts pid 2, then reaps until pid 2 exits.
//  Returns only in a zygote's pid 2 (see s_zygote_serve).
static void
s_child (plan_t *plan)
{
    if (plan->zygote) {
        //  Into our cgroup before anything else (so pid 2 is born there):
        //  "0" moves this thread without the global lock (see cgroup_enter)
        for (int index = 0; index < plan->ncgroup_fds; index++) {
            if (write (plan->cgroup_fds [index], "0", 1) != 1)
                s_fail (plan, STAGE_CGROUP, errno);
            close (plan->cgroup_fds [index]);
        }
        //  The zygote's dispositions are python's own (SIGPIPE ignored...),
        //  which pid 2, going back into that python, must keep
        sigset_t none;
        sigemptyset (&none);
        sigprocmask (SIG_SETMASK, &none, NULL);
    }
    else
        s_reset_signals ();
    //  We hold copies of every fd of the server, including the pipes of
    //  sandboxes other threads are creating: drop them now, or they would
    //  wait for their EOFs until we are done
    int keep [5 + SANDBOX_MAX_MOUNTS + 1] = {
        plan->sync_fd, plan->setup_fd, plan->status_fd, plan->proto_fd, plan->init_fd
    };
    int nkeep = 5;
    for (int index = 0; plan->zygote && index < plan->nmounts; index++)
        keep [nkeep++] = plan->mount_src_fds [index];
    s_close_except (keep, nkeep);
    //  Extra mounts' sources, opened now, with the server's host uid (see
    //  s_plan_build), or by the server for a zygote (which has no right to
    //  them); CLOEXEC, so they are gone at init's exec. No wanted fd is one
    //  we keep (s_plan_mount_fds)
    for (int index = 0; index < plan->nmounts; index++) {
        int wanted = plan->mount_fd + index;
        int fd = plan->zygote? plan->mount_src_fds [index]
                             : open (plan->mount_paths [index], O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || (fd != wanted && dup3 (fd, wanted, O_CLOEXEC) < 0))
            s_fail (plan, STAGE_BIND, errno);
        if (fd != wanted)
            close (fd);
    }
    char byte;
    if (read (plan->sync_fd, &byte, 1) != 1)
        _exit (1);              //  the parent gave up on us
    //  Parent wrote our uid/gid maps: become root of the user namespace
    if (syscall (SYS_setresgid, 0, 0, 0) || syscall (SYS_setresuid, 0, 0, 0))
        s_fail (plan, STAGE_IDS, errno);
    if (prctl (PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0))
        s_fail (plan, STAGE_PRCTL, errno);
    //  The parent holds the sync pipe open: EOF/HUP now means it died
    struct pollfd poller = { plan->sync_fd, POLLIN, 0 };
    if (poll (&poller, 1, 0) != 0)
        _exit (1);
    //  Now that we are in our cgroup, make it the root of our view
    if (unshare (CLONE_NEWCGROUP))
        s_fail (plan, STAGE_CGROUPNS, errno);
    if (sethostname ("clowdy", 6))
        {}                      //  cosmetic

    //  Loopback up (the only interface without network)
    int sock = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock >= 0) {
        struct ifreq request;
        memset (&request, 0, sizeof request);
        memcpy (request.ifr_name, "lo", 3);
        if (ioctl (sock, SIOCGIFFLAGS, &request) == 0) {
            request.ifr_flags |= IFF_UP;
            if (ioctl (sock, SIOCSIFFLAGS, &request))
                {}              //  sandbox still works, without 127.0.0.1
        }
        close (sock);
    }

    //  The root file system
    if (mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
        s_fail (plan, STAGE_PRIVATE, errno);
    if (mount ("tmpfs", plan->newroot, "tmpfs", MS_NOSUID | MS_NODEV, plan->root_options))
        s_fail (plan, STAGE_ROOT, errno);
    for (int index = 0; index < plan->ndirs; index++)
        if (mkdir (plan->dirs [index], 0755))
            s_fail (plan, STAGE_MKDIR, errno);
    for (int index = 0; index < plan->nlinks; index++)
        if (symlink (plan->links [index].target, plan->links [index].path))
            s_fail (plan, STAGE_SYMLINK, errno);
    for (int index = 0; index < plan->nfiles; index++) {
        int fd = open (plan->files [index].path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
            s_fail (plan, STAGE_FILE, errno);
        size_t size = plan->files [index].size;
        if (write (fd, plan->files [index].content, size) != (ssize_t) size)
            s_fail (plan, STAGE_FILE, errno);
        close (fd);
    }
    for (int index = 0; index < plan->nbinds; index++) {
        bind_t *bind = &plan->binds [index];
        if (bind->is_file) {
            int fd = open (bind->target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
            if (fd < 0)
                s_fail (plan, STAGE_BIND, errno);
            close (fd);
        }
        else
        if (mkdir (bind->target, 0755) && errno != EEXIST)
            s_fail (plan, STAGE_MKDIR, errno);
        if (plan->zygote && bind->mount_index >= 0) {
            if (s_attach_tree (plan, bind))
                s_fail (plan, STAGE_BIND, errno);
        }
        else {
            if (bind->overlay && s_mount_overlay (bind) == 0)
                continue;
            if (mount (bind->source, bind->target, NULL, MS_BIND | MS_REC, NULL))
                s_fail (plan, STAGE_BIND, errno);
        }
        if (bind->readonly && s_make_readonly (bind))
            s_fail (plan, STAGE_REMOUNT, errno);
    }
    if (mkdir (plan->tmp_path, 0755)
    ||  mount ("tmpfs", plan->tmp_path, "tmpfs", MS_NOSUID | MS_NODEV, plan->tmp_options))
        s_fail (plan, STAGE_TMP, errno);
    //  proc before pivot_root: see design notes
    if (mkdir (plan->proc_path, 0555) || s_mount_proc (plan->proc_path))
        s_fail (plan, STAGE_PROC, errno);
    if (chdir (plan->newroot)
    ||  syscall (SYS_pivot_root, ".", ".")
    ||  umount2 (".", MNT_DETACH)
    ||  chdir ("/"))
        s_fail (plan, STAGE_PIVOT, errno);
    if (mount (NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL))
        s_fail (plan, STAGE_ROOT_RO, errno);

    //  The user's process. vfork: it borrows init's memory until its exec
    //  (init waits), which saves copying the server's page tables again;
    //  it only makes system calls, writes its own locals, and never returns.
    //  A zygote's pid 2 does not exec but goes on in python: a real fork.
    pid_t user = plan->zygote? fork (): vfork ();
    if (user < 0)
        s_fail (plan, STAGE_CLONE, errno);
    if (user == 0) {
        s_run_user (plan);      //  returns only in a zygote's child
        return;
    }

    //  Init: keep only the status pipe (and the init program), drop
    //  everything, then become clowdy-sandbox-init, or reap here without it
    //  (a zygote's pid 1 still has python's dispositions: SIGPIPE ignored...)
    if (plan->zygote)
        s_reset_signals ();
    int status_fd = plan->status_fd;
    int keep_init [] = { status_fd, plan->init_fd };
    s_close_except (keep_init, 2);
    if (s_drop_bounding_set () == 0 && s_drop_all_caps () == 0) {
        prctl (PR_SET_DUMPABLE, 0, 0, 0, 0);
        prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        prctl (PR_SET_SECCOMP, SECCOMP_MODE_FILTER, plan->filter, 0, 0);
    }
    else {
        kill (user, SIGKILL);   //  never leave a privileged init behind
        _exit (127);
    }
    if (plan->init_fd >= 0) {
        char user_text [16], fd_text [16];
        s_format_int (user_text, user);
        s_format_int (fd_text, status_fd);
        char *init_argv [] = { "clowdy-sandbox-init", user_text, fd_text, NULL };
        char *init_envp [] = { NULL };
        fcntl (status_fd, F_SETFD, 0);      //  the pipe is CLOEXEC: keep it
        syscall (SYS_execveat, plan->init_fd, "", init_argv, init_envp, AT_EMPTY_PATH);
        //  Still here: reap in this process instead
    }
    while (true) {
        int status;
        pid_t pid = waitpid (-1, &status, __WALL);
        if (pid == user) {
            if (write (status_fd, &status, sizeof status) < 0)
                {}              //  the parent falls back to our status
            _exit (0);
        }
        if (pid < 0 && errno == ECHILD)
            _exit (0);
    }
}


//  --------------------------------------------------------------------------
//  The parent side

static int
s_write_file (const char *path, const char *content)
{
    int fd = open (path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t size = (ssize_t) strlen (content);
    int rc = write (fd, content, size) == size? 0: -1;
    int saved = errno;
    close (fd);
    errno = saved;
    return rc;
}

//  Mount flags of the file system holding path, to keep when remounting a
//  bind of it (a user namespace may not clear locked flags)
static unsigned long
s_mount_flags (const char *path)
{
    struct statvfs info;
    if (statvfs (path, &info))
        return 0;
    unsigned long flags = 0;
    if (info.f_flag & ST_NOEXEC)
        flags |= MS_NOEXEC;
    if (info.f_flag & ST_NOATIME)
        flags |= MS_NOATIME;
    if (info.f_flag & ST_NODIRATIME)
        flags |= MS_NODIRATIME;
    if (info.f_flag & ST_RELATIME)
        flags |= MS_RELATIME;
    return flags;
}

static void
s_plan_destroy (plan_t *plan)
{
    free (plan->root_options);
    free (plan->tmp_path);
    free (plan->tmp_options);
    free (plan->proc_path);
    for (int index = 0; index < plan->ndirs; index++)
        free (plan->dirs [index]);
    for (int index = 0; index < plan->nlinks; index++)
        free (plan->links [index].path);
    for (int index = 0; index < plan->nfiles; index++) {
        free (plan->files [index].path);
        if (plan->files [index].owned)
            free ((char *) plan->files [index].content);
    }
    for (int index = 0; index < plan->nbinds; index++)
        free (plan->binds [index].target);

    for (int index = 0; plan->argv [index]; index++)
        free (plan->argv [index]);
}

static void
s_plan_bind (plan_t *plan, const char *source, const char *target, bool is_file, bool readonly)
{
    assert (plan->nbinds < MAX_BINDS);
    bind_t *bind = &plan->binds [plan->nbinds++];
    bind->source = source;
    bind->target = zsys_sprintf ("%s%s", plan->newroot, target);
    bind->is_file = is_file;
    bind->readonly = readonly;
    bind->overlay = false;
    bind->flags = readonly? s_mount_flags (source): 0;
    bind->mount_index = -1;
}

static void
s_plan_dir (plan_t *plan, const char *path)
{
    assert (plan->ndirs < MAX_DIRS);
    plan->dirs [plan->ndirs++] = zsys_sprintf ("%s%s", plan->newroot, path);
}

static void
s_plan_link (plan_t *plan, const char *target, const char *path)
{
    assert (plan->nlinks < MAX_LINKS);
    plan->links [plan->nlinks].target = target;
    plan->links [plan->nlinks++].path = zsys_sprintf ("%s%s", plan->newroot, path);
}

static void
s_plan_file (plan_t *plan, const char *path, const char *content)
{
    assert (plan->nfiles < MAX_FILES);
    plan->files [plan->nfiles].content = content;
    plan->files [plan->nfiles].size = strlen (content);
    plan->files [plan->nfiles].owned = false;
    plan->files [plan->nfiles++].path = zsys_sprintf ("%s%s", plan->newroot, path);
}

//  The runtime (runner.py and any other top-level .py file of runtime_dir)
//  is copied into /opt/clowdy on the sandbox's root tmpfs rather than bound:
//  a bind mount shows its source's path within the host's file system in
//  /proc/self/mountinfo (the source tree or install dir, e.g. /work/...),
//  and a copy of ~30 KB costs less than the mount. Read-only all the same,
//  as the root is. -1 if the dir cannot be read or holds too much (logged).
static int
s_plan_runtime (plan_t *plan, const char *runtime_dir)
{
    DIR *dir = opendir (runtime_dir);
    if (!dir) {
        zsys_error ("sandbox: cannot read runtime_dir %s: %s", runtime_dir, strerror (errno));
        return -1;
    }
    s_plan_dir (plan, "/opt/clowdy");
    int rc = 0, count = 0;
    size_t total = 0;
    struct dirent *entry;
    while (rc == 0 && (entry = readdir (dir))) {
        size_t length = strlen (entry->d_name);
        if (entry->d_name [0] == '.' || length < 4 || strcmp (entry->d_name + length - 3, ".py"))
            continue;
        int fd = openat (dirfd (dir), entry->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        struct stat info;
        if (fd < 0 || fstat (fd, &info) || !S_ISREG (info.st_mode)) {
            if (fd >= 0)
                close (fd);
            continue;
        }
        total += (size_t) info.st_size;
        if (++count > MAX_RUNTIME_FILES || total > MAX_RUNTIME_BYTES) {
            zsys_error ("sandbox: runtime_dir %s holds more than %d .py files or %d bytes",
                        runtime_dir, MAX_RUNTIME_FILES, MAX_RUNTIME_BYTES);
            close (fd);
            rc = -1;
            break;
        }
        char *content = (char *) malloc ((size_t) info.st_size + 1);
        ssize_t got = content? read (fd, content, (size_t) info.st_size): -1;
        close (fd);
        if (got != (ssize_t) info.st_size) {
            zsys_error ("sandbox: cannot read %s/%s", runtime_dir, entry->d_name);
            free (content);
            rc = -1;
            break;
        }
        assert (plan->nfiles < MAX_FILES);
        file_t *file = &plan->files [plan->nfiles++];
        file->path = zsys_sprintf ("%s/opt/clowdy/%s", plan->newroot, entry->d_name);
        file->content = content;
        file->size = (size_t) got;
        file->owned = true;
    }
    closedir (dir);
    return rc;
}

//  Number the fds the child opens extra mounts' sources on: past every fd
//  it keeps (s_child), so that none is closed or clobbered
static void
s_plan_mount_fds (plan_t *plan)
{
    int kept [] = { plan->sync_fd, plan->setup_fd, plan->status_fd, plan->proto_fd, plan->init_fd };
    int highest = 2;
    for (size_t index = 0; index < sizeof kept / sizeof kept [0]; index++)
        highest = kept [index] > highest? kept [index]: highest;
    for (int index = 0; plan->zygote && index < plan->nmounts; index++)
        highest = plan->mount_src_fds [index] > highest? plan->mount_src_fds [index]: highest;
    for (int index = 0; plan->zygote && index < plan->ncgroup_fds; index++)
        highest = plan->cgroup_fds [index] > highest? plan->cgroup_fds [index]: highest;
    plan->mount_fd = highest + 1;
    for (int index = 0; index < plan->nmounts; index++)
        snprintf (plan->mount_sources [index], sizeof plan->mount_sources [0], "/proc/self/fd/%d",
                  plan->mount_fd + index);
}

//  Build the mount plan and argv; -1 if the config is unusable (logged)
static int
s_plan_build (plan_t *plan, const sandbox_config_t *config, int tmp_mb)
{
    plan->newroot = s_newroot;
    plan->root_options = strdup ("size=1m,nr_inodes=256,mode=0755");
    plan->tmp_path = zsys_sprintf ("%s/tmp", s_newroot);
    plan->tmp_options = zsys_sprintf ("size=%dm,mode=1777", tmp_mb);
    plan->proc_path = zsys_sprintf ("%s/proc", s_newroot);
    plan->filter = config->network? &s_filter_net: &s_filter_nonet;
    plan->init_fd = s_init_fd;
    plan->envp = s_env;

    const char *runtime_dir = config->runtime_dir? config->runtime_dir: SANDBOX_DEFAULT_RUNTIME_DIR;
    struct stat info;
    if (stat (runtime_dir, &info) || !S_ISDIR (info.st_mode)) {
        zsys_error ("sandbox: runtime_dir %s is not a directory", runtime_dir);
        return -1;
    }
    if (config->layer_dir && (stat (config->layer_dir, &info) || !S_ISDIR (info.st_mode))) {
        zsys_error ("sandbox: layer_dir %s is not a directory", config->layer_dir);
        return -1;
    }
    if (config->mount_count < 0 || config->mount_count > SANDBOX_MAX_MOUNTS) {
        zsys_error ("sandbox: at most %d extra mounts", SANDBOX_MAX_MOUNTS);
        return -1;
    }
    for (int index = 0; index < config->mount_count; index++) {
        const sandbox_mount_t *extra = &config->mounts [index];
        //  Under /opt only, so that no extra mount can cover /etc, /dev, /usr...
        const char *name = extra->target && strncmp (extra->target, "/opt/", 5) == 0? extra->target + 5: NULL;
        if (!name || !*name || strchr (name, '/') || streq (name, ".") || streq (name, "..")
        ||  streq (name, "clowdy") || streq (name, "layer")) {
            zsys_error ("sandbox: mount target %s must be /opt/NAME", extra->target? extra->target: "(null)");
            return -1;
        }
        if (!extra->source || extra->source [0] != '/' || stat (extra->source, &info) || !S_ISDIR (info.st_mode)) {
            zsys_error ("sandbox: mount source %s is not a directory", extra->source? extra->source: "(null)");
            return -1;
        }
    }
    //  Merged /usr: the top-level dirs that are symlinks into usr/ on the host
    static const char *merged [] = { "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32", NULL };
    static const char *targets [] = { "usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "usr/lib32", "usr/libx32" };
    for (int index = 0; merged [index]; index++) {
        char target [PATH_MAX];
        ssize_t len = readlink (merged [index], target, sizeof target - 1);
        if (len <= 0)
            continue;
        target [len] = 0;
        if (strncmp (target, "usr/", 4) == 0 || strncmp (target, "/usr/", 5) == 0)
            s_plan_link (plan, targets [index], merged [index]);
    }
    s_plan_dir (plan, "/etc");
    s_plan_dir (plan, "/dev");
    s_plan_dir (plan, "/opt");
    s_plan_link (plan, "/proc/self/fd", "/dev/fd");
    s_plan_link (plan, "/proc/self/fd/0", "/dev/stdin");
    s_plan_link (plan, "/proc/self/fd/1", "/dev/stdout");
    s_plan_link (plan, "/proc/self/fd/2", "/dev/stderr");
    //  POSIX shared memory and semaphores (multiprocessing locks) live in the
    //  capped /tmp, so they count against the same limit
    s_plan_link (plan, "/tmp", "/dev/shm");
    s_plan_file (plan, "/etc/passwd", s_passwd);
    s_plan_file (plan, "/etc/group", s_group);
    s_plan_file (plan, "/etc/hosts", s_hosts);
    s_plan_file (plan, "/etc/nsswitch.conf", s_nsswitch);
    if (config->network)
        s_plan_file (plan, "/etc/resolv.conf", s_resolv);
    if (s_plan_runtime (plan, runtime_dir))
        return -1;
    s_plan_bind (plan, "/usr", "/usr", false, true);
    if (config->layer_dir) {
        //  Opened early like the extra mounts below: a layer lives in the
        //  data dir, which the child's namespaced uid may not walk
        plan->mount_paths [plan->nmounts] = config->layer_dir;
        s_plan_bind (plan, config->layer_dir, "/opt/layer", false, true);
        plan->binds [plan->nbinds - 1].source = plan->mount_sources [plan->nmounts];
        plan->binds [plan->nbinds - 1].mount_index = plan->nmounts;
        plan->binds [plan->nbinds - 1].overlay = s_overlay;
        plan->nmounts++;
    }
    //  Extra mounts are bound from an fd the child opens while it still has
    //  the server's host uid: once it is root of its user namespace, its
    //  host uid may not walk to the source (a data dir of mode 0700). The
    //  fd numbers are set once the child's other fds are known (s_plan_mount_fds)
    for (int index = 0; index < config->mount_count; index++) {
        plan->mount_paths [plan->nmounts] = config->mounts [index].source;
        s_plan_bind (plan, config->mounts [index].source, config->mounts [index].target, false,
                     !config->mounts [index].writable);
        plan->binds [plan->nbinds - 1].source = plan->mount_sources [plan->nmounts];
        plan->binds [plan->nbinds - 1].mount_index = plan->nmounts;
        plan->nmounts++;
    }
    static const char *devices [] = { "/dev/null", "/dev/zero", "/dev/urandom", "/dev/random", NULL };
    for (int index = 0; devices [index]; index++)
        s_plan_bind (plan, devices [index], devices [index], true, false);

    //  argv
    int argc = 0;
    if (config->argv) {
        while (config->argv [argc]) {
            if (argc == MAX_ARGS) {
                zsys_error ("sandbox: more than %d arguments", MAX_ARGS);
                return -1;
            }
            plan->argv [argc] = strdup (config->argv [argc]);
            argc++;
        }
    }
    else {
        plan->argv [argc++] = strdup (config->python? config->python: SANDBOX_DEFAULT_PYTHON);
        plan->argv [argc++] = strdup ("-I");
        plan->argv [argc++] = strdup ("-B");
        plan->argv [argc++] = strdup ("/opt/clowdy/runner.py");
    }
    plan->argv [argc] = NULL;
    if (argc == 0 || plan->argv [0][0] != '/') {
        zsys_error ("sandbox: argv[0] must be an absolute path");
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Zygotes: a python with the runner imported, forked into each sandbox
//
//  A fresh python takes 10-40 ms to start on machines of this kind, most of
//  a cold start. So each creating thread keeps a zygote (clowdy-zygote,
//  runtime/zygote.c): a process started from a clean exec with the runner's
//  module already run (its imports done), which holds nothing of the
//  server's and no user's code or data. For a sandbox, sandbox_new sends it
//  the plan and the child's fds over a SOCK_SEQPACKET pair; the zygote
//  clone()s pid 1 with the same namespace flags, and pid 1 runs the same
//  s_child as a server-made one, with three differences: it first moves
//  itself into the sandbox's v1 cgroups (tasks files the server opened);
//  the layer and extra mounts come as detached trees the server cloned
//  (open_tree), attached in pid 1's own namespace (s_attach_tree); and
//  pid 2 is a real fork that, once it has dropped to uid 1000 with no
//  capabilities, no_new_privs and the seccomp filter (and is made dumpable,
//  as an exec would), returns into the zygote's python and runs the
//  runner's main() instead of exec'ing a new python. The server does
//  everything else as for its own clone: uid/gid
//  maps, v2 cgroup, slirp4netns, the release through the sync pipe, the
//  wait for the setup pipe's EOF. Pid 1 is the zygote's child, not ours, so
//  the zygote sends back a pidfd (CLONE_PIDFD) to kill and wait on it; pid
//  2's status still comes on the status pipe.
//
//  What environments forked from one zygote share: the read-only pages of
//  python and the runner (copy-on-write), the address-space layout (ASLR
//  offsets) and python's str hash seed, which is fixed when an interpreter
//  starts. Neither is a function's secret: the zygote never sees a
//  function's code, env or input, and each environment gets its own copy
//  of everything it writes. No fd, pid, mount, uid range or cgroup is
//  shared (pid 1 closes all but the plan's fds, pid 2 keeps 0-3). A zygote
//  runs as SANDBOX_ZYGOTE_UID, past every slot's range, with no
//  capabilities on the host: the server opens what pid 1 needs (cgroup
//  tasks files, the layer and database trees) and passes the fds. The user
//  namespaces it creates are its own, so a zygote could enter its
//  sandboxes; nothing in a sandbox can see or signal a zygote. A zygote
//  is replaced after ZYGOTE_MAX_FORKS forks, so a layout and a seed do not
//  live for ever.
//
//  The zygote is started on the first sandbox a thread makes, which waits
//  for it up to ZYGOTE_START_WAIT_MS (a python's start, as a clone of our
//  own would pay); until it is ready, and for ZYGOTE_RETRY_MS after it
//  failed, sandbox_new clones by itself, as before. Its sandboxes' pid 1s
//  die with it (PR_SET_PDEATHSIG), and it with the thread that started it,
//  so a zygote that is replaced is not killed: it takes no more requests
//  and exits once its last sandbox has ended (reaped here later). One that
//  fails (no answer, a broken socket) is killed, and its sandboxes go.

#define ZYGOTE_MAX_REQUEST  (2 * 1024 * 1024)   //  a plan: mostly the runtime's .py files
#define ZYGOTE_MAX_FDS      16
#define ZYGOTE_TIMEOUT_MS   5000                //  for its answer to a clone
#define ZYGOTE_RETRY_MS     10000               //  after a failure, classic clones this long
#define ZYGOTE_MAX_FORKS    512                 //  then a new zygote (new seed and layout)
#define ZYGOTE_START_WAIT_MS 1000               //  for a new zygote's start, at most

typedef enum { ZYGOTE_NONE, ZYGOTE_STARTING, ZYGOTE_READY, ZYGOTE_FAILED } zygote_state_t;

static bool s_zygote_enabled = true;            //  sandbox_zygote_enable
static int s_zygote_exe = -1;                   //  clowdy-zygote (O_PATH), or -1
static __thread zygote_state_t s_zygote_state = ZYGOTE_NONE;
static __thread int s_zygote_fd = -1;           //  our end of the pair
static __thread pid_t s_zygote_pid = 0;
static __thread int64_t s_zygote_retry_at = 0;
static __thread int64_t s_zygote_started_at = 0;    //  monotonic ms of its start
static __thread int s_zygote_forks = 0;
static __thread char s_zygote_runtime [PATH_MAX];   //  the runtime dir it was started with
static __thread pid_t s_zygote_retired [64];        //  retired zygotes not reaped yet
static __thread int s_zygote_nretired = 0;
static __thread bool s_zygote_bypass = false;       //  the next sandbox clones by itself

//  A growing buffer of length-prefixed fields
typedef struct {
    unsigned char *data;
    size_t size, max;
} pack_t;

static void
s_pack_put (pack_t *pack, const void *data, size_t size)
{
    if (pack->size + size > pack->max) {
        pack->max = (pack->size + size) * 2 + 4096;
        pack->data = (unsigned char *) realloc (pack->data, pack->max);
        assert (pack->data);
    }
    memcpy (pack->data + pack->size, data, size);
    pack->size += size;
}

static void
s_pack_int (pack_t *pack, int64_t value)
{
    s_pack_put (pack, &value, sizeof value);
}

//  Bytes then a NUL, so a string can be used where it lies
static void
s_pack_bytes (pack_t *pack, const void *data, size_t size)
{
    s_pack_int (pack, (int64_t) size);
    if (size)
        s_pack_put (pack, data, size);
    s_pack_put (pack, "", 1);
}

static void
s_pack_str (pack_t *pack, const char *text)
{
    s_pack_bytes (pack, text? text: "", text? strlen (text): 0);
}

typedef struct {
    unsigned char *data;
    size_t size, at;
    bool bad;
} unpack_t;

static int64_t
s_unpack_int (unpack_t *unpack)
{
    int64_t value = 0;
    if (unpack->at + sizeof value > unpack->size)
        unpack->bad = true;
    else {
        memcpy (&value, unpack->data + unpack->at, sizeof value);
        unpack->at += sizeof value;
    }
    return value;
}

static char *
s_unpack_bytes (unpack_t *unpack, size_t *size_p)
{
    int64_t size = s_unpack_int (unpack);
    if (unpack->bad || size < 0 || (uint64_t) size >= unpack->size - unpack->at
    ||  unpack->data [unpack->at + size] != 0) {
        unpack->bad = true;
        return "";
    }
    char *bytes = (char *) unpack->data + unpack->at;
    unpack->at += (size_t) size + 1;
    if (size_p)
        *size_p = (size_t) size;
    return bytes;
}

static int
s_unpack_count (unpack_t *unpack, int max)
{
    int64_t count = s_unpack_int (unpack);
    if (count < 0 || count > max)
        unpack->bad = true;
    return unpack->bad? 0: (int) count;
}

//  The plan's contents (not its fds, which travel beside it)
static void
s_plan_pack (const plan_t *plan, pack_t *pack)
{
    s_pack_str (pack, plan->newroot);
    s_pack_str (pack, plan->root_options);
    s_pack_str (pack, plan->tmp_path);
    s_pack_str (pack, plan->tmp_options);
    s_pack_str (pack, plan->proc_path);
    s_pack_int (pack, plan->ndirs);
    for (int index = 0; index < plan->ndirs; index++)
        s_pack_str (pack, plan->dirs [index]);
    s_pack_int (pack, plan->nlinks);
    for (int index = 0; index < plan->nlinks; index++) {
        s_pack_str (pack, plan->links [index].target);
        s_pack_str (pack, plan->links [index].path);
    }
    s_pack_int (pack, plan->nfiles);
    for (int index = 0; index < plan->nfiles; index++) {
        s_pack_str (pack, plan->files [index].path);
        s_pack_bytes (pack, plan->files [index].content, plan->files [index].size);
    }
    s_pack_int (pack, plan->nbinds);
    for (int index = 0; index < plan->nbinds; index++) {
        const bind_t *bind = &plan->binds [index];
        s_pack_str (pack, bind->mount_index >= 0? "": bind->source);
        s_pack_int (pack, bind->mount_index);
        s_pack_str (pack, bind->target);
        s_pack_int (pack, bind->is_file);
        s_pack_int (pack, bind->readonly);
        s_pack_int (pack, bind->overlay);
        s_pack_int (pack, (int64_t) bind->flags);
    }
    s_pack_int (pack, plan->nmounts);
    for (int index = 0; index < plan->nmounts; index++)
        s_pack_str (pack, plan->mount_paths [index]);
    s_pack_bytes (pack, plan->filter->filter, plan->filter->len * sizeof (struct sock_filter));
}

//  The zygote's side: a plan whose strings point into data; fds are sync,
//  setup, status, proto, then init if has_init, then the cgroup fds.
//  0, or -1 if the message is not a whole plan.
static int
s_plan_unpack (plan_t *plan, unsigned char *data, size_t size, const int *fds, int nfds)
{
    static struct sock_filter code [BPF_MAXINSNS];  //  aligned, as the kernel wants
    static struct sock_fprog program;
    unpack_t unpack = { data, size, 0, false };
    memset (plan, 0, sizeof *plan);
    if (size < 16 || memcmp (data, "CZY1", 4))
        return -1;
    unpack.at = 4;
    int has_init = (int) s_unpack_int (&unpack);
    int ncgroups = s_unpack_count (&unpack, 4);
    int first_mount = 4 + (has_init? 1: 0) + ncgroups;
    if (unpack.bad || nfds < first_mount)
        return -1;
    plan->sync_fd = fds [0];
    plan->setup_fd = fds [1];
    plan->status_fd = fds [2];
    plan->proto_fd = fds [3];
    plan->init_fd = has_init? fds [4]: -1;
    for (int index = 0; index < ncgroups; index++)
        plan->cgroup_fds [index] = fds [4 + (has_init? 1: 0) + index];
    plan->ncgroup_fds = ncgroups;
    plan->zygote = true;

    plan->newroot = s_unpack_bytes (&unpack, NULL);
    plan->root_options = s_unpack_bytes (&unpack, NULL);
    plan->tmp_path = s_unpack_bytes (&unpack, NULL);
    plan->tmp_options = s_unpack_bytes (&unpack, NULL);
    plan->proc_path = s_unpack_bytes (&unpack, NULL);
    plan->ndirs = s_unpack_count (&unpack, MAX_DIRS);
    for (int index = 0; index < plan->ndirs; index++)
        plan->dirs [index] = s_unpack_bytes (&unpack, NULL);
    plan->nlinks = s_unpack_count (&unpack, MAX_LINKS);
    for (int index = 0; index < plan->nlinks; index++) {
        plan->links [index].target = s_unpack_bytes (&unpack, NULL);
        plan->links [index].path = s_unpack_bytes (&unpack, NULL);
    }
    plan->nfiles = s_unpack_count (&unpack, MAX_FILES);
    for (int index = 0; index < plan->nfiles; index++) {
        plan->files [index].path = s_unpack_bytes (&unpack, NULL);
        plan->files [index].content = s_unpack_bytes (&unpack, &plan->files [index].size);
    }
    plan->nbinds = s_unpack_count (&unpack, MAX_BINDS);
    for (int index = 0; index < plan->nbinds; index++) {
        bind_t *bind = &plan->binds [index];
        bind->source = s_unpack_bytes (&unpack, NULL);
        bind->mount_index = (int) s_unpack_int (&unpack);
        bind->target = s_unpack_bytes (&unpack, NULL);
        bind->is_file = s_unpack_int (&unpack) != 0;
        bind->readonly = s_unpack_int (&unpack) != 0;
        bind->overlay = s_unpack_int (&unpack) != 0;
        bind->flags = (unsigned long) s_unpack_int (&unpack);
    }
    plan->nmounts = s_unpack_count (&unpack, SANDBOX_MAX_MOUNTS + 1);
    if (nfds != first_mount + plan->nmounts)
        return -1;
    for (int index = 0; index < plan->nmounts; index++) {
        plan->mount_paths [index] = s_unpack_bytes (&unpack, NULL);
        plan->mount_src_fds [index] = fds [first_mount + index];
    }
    size_t filter_size = 0;
    char *filter = s_unpack_bytes (&unpack, &filter_size);
    if (unpack.bad || filter_size == 0 || filter_size % sizeof (struct sock_filter)
    ||  filter_size > sizeof code)
        return -1;
    memcpy (code, filter, filter_size);
    program.filter = code;
    program.len = (unsigned short) (filter_size / sizeof (struct sock_filter));
    plan->filter = &program;
    //  Mount sources are /proc/self/fd/N past our own fds, as for the server
    s_plan_mount_fds (plan);
    for (int index = 0; index < plan->nbinds; index++) {
        bind_t *bind = &plan->binds [index];
        if (bind->mount_index >= plan->nmounts)
            return -1;
        if (bind->mount_index >= 0)
            bind->source = plan->mount_sources [bind->mount_index];
    }
    return 0;
}

//  Send fds and bytes in one message; 0 or -1
static int
s_send_with_fds (int socket, const void *data, size_t size, const int *fds, int nfds)
{
    char control [CMSG_SPACE (sizeof (int) * ZYGOTE_MAX_FDS)];
    memset (control, 0, sizeof control);
    struct iovec vector = { (void *) data, size };
    struct msghdr message = { 0 };
    message.msg_iov = &vector;
    message.msg_iovlen = 1;
    if (nfds > 0) {
        message.msg_control = control;
        message.msg_controllen = CMSG_SPACE (sizeof (int) * nfds);
        struct cmsghdr *header = CMSG_FIRSTHDR (&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN (sizeof (int) * nfds);
        memcpy (CMSG_DATA (header), fds, sizeof (int) * nfds);
    }
    ssize_t sent;
    do
        sent = sendmsg (socket, &message, MSG_NOSIGNAL);
    while (sent < 0 && errno == EINTR);
    return sent == (ssize_t) size? 0: -1;
}

//  Receive one message and its fds (CLOEXEC); bytes received, 0 at EOF, -1
static ssize_t
s_recv_with_fds (int socket, void *data, size_t size, int *fds, int *nfds)
{
    char control [CMSG_SPACE (sizeof (int) * ZYGOTE_MAX_FDS)];
    struct iovec vector = { data, size };
    struct msghdr message = { 0 };
    message.msg_iov = &vector;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    ssize_t got;
    do
        got = recvmsg (socket, &message, MSG_CMSG_CLOEXEC);
    while (got < 0 && errno == EINTR);
    *nfds = 0;
    for (struct cmsghdr *header = got >= 0? CMSG_FIRSTHDR (&message): NULL; header;
         header = CMSG_NXTHDR (&message, header))
        if (header->cmsg_level == SOL_SOCKET && header->cmsg_type == SCM_RIGHTS) {
            int count = (int) ((header->cmsg_len - CMSG_LEN (0)) / sizeof (int));
            for (int index = 0; index < count; index++) {
                int fd;
                memcpy (&fd, CMSG_DATA (header) + index * sizeof (int), sizeof fd);
                if (*nfds < ZYGOTE_MAX_FDS)
                    fds [(*nfds)++] = fd;
                else
                    close (fd);
            }
        }
    if (got > 0 && (message.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
        for (int index = 0; index < *nfds; index++)
            close (fds [index]);
        *nfds = 0;
        errno = EMSGSIZE;
        return -1;
    }
    return got;
}

int
sandbox_zygote_serve (int socket, void (*before_fork) (void), void (*after_fork) (void))
{
    static unsigned char buffer [ZYGOTE_MAX_REQUEST];
    while (true) {
        //  Our children are pid 1s; the server waits on them by pidfd
        while (waitpid (-1, NULL, WNOHANG | __WALL) > 0)
            ;
        struct pollfd poller = { socket, POLLIN, 0 };
        int rc = poll (&poller, 1, 1000);
        if (rc == 0 || (rc < 0 && errno == EINTR))
            continue;
        int fds [ZYGOTE_MAX_FDS], nfds = 0;
        ssize_t size = rc < 0? -1: s_recv_with_fds (socket, buffer, sizeof buffer, fds, &nfds);
        if (size == 0 || (size < 0 && errno != EMSGSIZE)) {
            //  Retired (or the server is gone, and we with it): our sandboxes'
            //  pid 1s die with us (PDEATHSIG), so stay until the last has ended
            close (socket);
            while (waitpid (-1, NULL, __WALL) > 0 || errno == EINTR)
                ;
            return -1;
        }
        plan_t plan;
        int32_t answer [2] = { -1, EINVAL };
        int pidfd = -1;
        if (size > 0 && s_plan_unpack (&plan, buffer, (size_t) size, fds, nfds) == 0) {
            int flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWNS
                      | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_PIDFD | SIGCHLD;
            before_fork ();
            pid_t pid = (pid_t) syscall (SYS_clone, flags, 0, &pidfd, 0, 0);
            if (pid == 0) {
                s_child (&plan);
                //  pid 2, on its way back into python: forget the plan (it
                //  names host paths) before the function's code can look
                explicit_bzero (buffer, (size_t) size);
                return 0;
            }
            answer [0] = pid;
            answer [1] = pid < 0? errno: 0;
            after_fork ();
        }
        for (int index = 0; index < nfds; index++)
            close (fds [index]);
        if (size > 0)
            explicit_bzero (buffer, (size_t) size);
        int rc_send = s_send_with_fds (socket, answer, sizeof answer, &pidfd, pidfd >= 0? 1: 0);
        if (pidfd >= 0)
            close (pidfd);
        if (rc_send)
            return -1;
    }
}

void
sandbox_zygote_enable (bool enabled)
{
    s_zygote_enabled = enabled;
}

//  Reap retired zygotes that have ended
static void
s_zygote_reap_retired (void)
{
    for (int index = 0; index < s_zygote_nretired; )
        if (waitpid (s_zygote_retired [index], NULL, WNOHANG) == 0)
            index++;
        else
            s_zygote_retired [index] = s_zygote_retired [--s_zygote_nretired];
}

//  Let go of this thread's zygote; classic clones follow until retry_ms
//  pass. A broken one (gone, or silent) is killed, and its sandboxes with
//  it; otherwise it is retired: it takes no more requests and exits once
//  its sandboxes have all ended, as their pid 1s die with it
static void
s_zygote_drop (int retry_ms, bool broken)
{
    if (s_zygote_fd >= 0)
        close (s_zygote_fd);
    s_zygote_fd = -1;
    s_zygote_reap_retired ();
    if (s_zygote_pid > 0 && !broken && s_zygote_nretired < 64)
        s_zygote_retired [s_zygote_nretired++] = s_zygote_pid;
    else
    if (s_zygote_pid > 0) {
        kill (s_zygote_pid, SIGKILL);
        while (waitpid (s_zygote_pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    s_zygote_pid = 0;
    s_zygote_forks = 0;
    s_zygote_state = retry_ms > 0? ZYGOTE_FAILED: ZYGOTE_NONE;
    s_zygote_retry_at = zclock_mono () + retry_ms;
}

void
sandbox_zygote_stop (void)
{
    //  The thread is ending: its zygotes get PDEATHSIG, and their sandboxes
    s_zygote_drop (0, true);
    for (int index = 0; index < s_zygote_nretired; index++)
        kill (s_zygote_retired [index], SIGKILL);
    for (int index = 0; index < s_zygote_nretired; index++)
        while (waitpid (s_zygote_retired [index], NULL, 0) < 0 && errno == EINTR)
            ;
    s_zygote_nretired = 0;
}

//  Start this thread's zygote for runtime_dir; it says "R" when ready
static void
s_zygote_start (const char *runtime_dir)
{
    int pair [2];
    if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair)) {
        s_zygote_drop (ZYGOTE_RETRY_MS, true);
        return;
    }
    int buffer_size = ZYGOTE_MAX_REQUEST + 65536;
    if (setsockopt (pair [0], SOL_SOCKET, SO_SNDBUFFORCE, &buffer_size, sizeof buffer_size))
        setsockopt (pair [0], SOL_SOCKET, SO_SNDBUF, &buffer_size, sizeof buffer_size);
    //  Its argv is a sandbox's python's, which its children keep (they do
    //  not exec): nothing in /proc/self/cmdline names a host path or pid.
    //  The runner comes on fd 4, the requests on fd 3
    char runner [PATH_MAX], exe [32];
    snprintf (runner, sizeof runner, "%s/runner.py", runtime_dir);
    snprintf (exe, sizeof exe, "/proc/self/fd/%d", s_zygote_exe);
    int source = open (runner, O_RDONLY | O_CLOEXEC);
    if (source < 0) {
        zsys_warning ("sandbox: cannot open %s: %s", runner, strerror (errno));
        close (pair [0]);
        close (pair [1]);
        s_zygote_drop (ZYGOTE_RETRY_MS, true);
        return;
    }
    char *argv [] = { SANDBOX_DEFAULT_PYTHON, "-I", "-B", "/opt/clowdy/runner.py", NULL };
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init (&actions);
    posix_spawn_file_actions_adddup2 (&actions, pair [1], 3);
    posix_spawn_file_actions_adddup2 (&actions, source, 4);
    posix_spawn_file_actions_addopen (&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen (&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawnattr_t attributes;
    posix_spawnattr_init (&attributes);
    sigset_t none, all;
    sigemptyset (&none);
    sigfillset (&all);
    posix_spawnattr_setsigmask (&attributes, &none);
    posix_spawnattr_setsigdefault (&attributes, &all);
    posix_spawnattr_setflags (&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    int rc = posix_spawn (&pid, exe, &actions, &attributes, argv, s_env);
    posix_spawn_file_actions_destroy (&actions);
    posix_spawnattr_destroy (&attributes);
    close (pair [1]);
    close (source);
    if (rc) {
        zsys_warning ("sandbox: cannot start clowdy-zygote: %s", strerror (rc));
        close (pair [0]);
        s_zygote_drop (ZYGOTE_RETRY_MS, true);
        return;
    }
    s_zygote_fd = pair [0];
    s_zygote_pid = pid;
    s_zygote_forks = 0;
    s_zygote_state = ZYGOTE_STARTING;
    s_zygote_started_at = zclock_mono ();
    snprintf (s_zygote_runtime, sizeof s_zygote_runtime, "%s", runtime_dir);
}

//  True if sandboxes made with config are the zygote's kind (the runner
//  with the default python) and zygotes are on
static bool
s_zygote_kind (const sandbox_config_t *config)
{
    return s_zygote_enabled && s_zygote_exe >= 0 && !config->argv
        && (!config->python || streq (config->python, SANDBOX_DEFAULT_PYTHON));
}

void
sandbox_zygote_prepare (const sandbox_config_t *config)
{
    if (s_zygote_kind (config) && s_zygote_state == ZYGOTE_NONE)
        s_zygote_start (config->runtime_dir? config->runtime_dir: SANDBOX_DEFAULT_RUNTIME_DIR);
}

//  True if this sandbox can come from this thread's zygote now; starts,
//  checks and replaces the zygote as needed (waits for a starting one
//  only until ZYGOTE_START_WAIT_MS after its start)
static bool
s_zygote_usable (const sandbox_config_t *config)
{
    bool bypass = s_zygote_bypass;
    s_zygote_bypass = false;
    if (bypass || !s_zygote_kind (config))
        return false;
    s_zygote_reap_retired ();
    const char *runtime_dir = config->runtime_dir? config->runtime_dir: SANDBOX_DEFAULT_RUNTIME_DIR;
    //  Another runtime dir, or its time is up (unless too many retired ones
    //  still hold sandboxes: then it serves on rather than be killed)
    if (s_zygote_state != ZYGOTE_NONE && s_zygote_state != ZYGOTE_FAILED
    &&  (strcmp (s_zygote_runtime, runtime_dir)
    ||   (s_zygote_forks >= ZYGOTE_MAX_FORKS && s_zygote_nretired < 64)))
        s_zygote_drop (0, false);
    if (s_zygote_state == ZYGOTE_FAILED && zclock_mono () >= s_zygote_retry_at)
        s_zygote_state = ZYGOTE_NONE;
    //  A new zygote is waited for (a python's start, as a classic clone
    //  would pay), within reason: until ZYGOTE_START_WAIT_MS after its
    //  start, whether that start was this call's or sandbox_zygote_prepare's
    if (s_zygote_state == ZYGOTE_NONE)
        s_zygote_start (runtime_dir);
    if (s_zygote_state == ZYGOTE_STARTING) {
        int64_t left = s_zygote_started_at + ZYGOTE_START_WAIT_MS - zclock_mono ();
        int wait_ms = left > 0 ? (int) left : 0;
        struct pollfd poller = { s_zygote_fd, POLLIN, 0 };
        char byte = 0;
        if (poll (&poller, 1, wait_ms) == 1) {
            if (read (s_zygote_fd, &byte, 1) == 1 && byte == 'R')
                s_zygote_state = ZYGOTE_READY;
            else {
                zsys_warning ("sandbox: clowdy-zygote did not start; sandboxes start their own python");
                s_zygote_drop (ZYGOTE_RETRY_MS, true);
            }
        }
    }
    return s_zygote_state == ZYGOTE_READY;
}

//  Ask this thread's zygote to clone pid 1 for plan; the host pid, with
//  its pidfd in *pidfd_p, or -1. A zygote that is gone or silent is
//  killed (with its sandboxes); one that answered a failure is retired; a
//  failure on our side (a mount that cannot be cloned) leaves it be.
static pid_t
s_zygote_clone (const plan_t *plan, const int *cgroup_fds, int ncgroups, int *pidfd_p)
{
    pack_t pack = { NULL, 0, 0 };
    s_pack_put (&pack, "CZY1", 4);
    s_pack_int (&pack, plan->init_fd >= 0);
    s_pack_int (&pack, ncgroups);
    s_plan_pack (plan, &pack);
    int fds [ZYGOTE_MAX_FDS], nfds = 0;
    fds [nfds++] = plan->sync_fd;
    fds [nfds++] = plan->setup_fd;
    fds [nfds++] = plan->status_fd;
    fds [nfds++] = plan->proto_fd;
    if (plan->init_fd >= 0)
        fds [nfds++] = plan->init_fd;
    for (int index = 0; index < ncgroups; index++)
        fds [nfds++] = cgroup_fds [index];
    //  The zygote may not open the layer or the data dir: we do
    int rc = 0;
    int first_mount = nfds;
    for (int index = 0; index < plan->nmounts; index++) {
        //  A detached copy of the mount (see s_attach_tree), which also
        //  needs no right of the zygote's to the dir
        fds [nfds] = open_tree (AT_FDCWD, plan->mount_paths [index],
                                OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
        if (fds [nfds++] < 0) {
            zsys_warning ("sandbox: cannot clone the mount of %s: %s", plan->mount_paths [index],
                          strerror (errno));
            rc = -1;
        }
    }
    pid_t pid = -1;
    bool answered = false;              //  an answer, even a failure, says it is alive
    bool sent = false;
    if (rc == 0 && pack.size <= ZYGOTE_MAX_REQUEST) {
        rc = s_send_with_fds (s_zygote_fd, pack.data, pack.size, fds, nfds);
        sent = rc == 0;
        if (rc && errno != EPIPE && errno != ECONNRESET && errno != ENOTCONN)
            answered = true;            //  ENOBUFS, ENOMEM...: ours, not the zygote's
    }
    else {
        rc = -1;
        answered = true;                //  nothing was asked of it
    }
    for (int index = first_mount; index < nfds; index++)
        if (fds [index] >= 0)
            close (fds [index]);
    free (pack.data);
    struct pollfd poller = { s_zygote_fd, POLLIN, 0 };
    if (rc == 0 && poll (&poller, 1, ZYGOTE_TIMEOUT_MS) == 1) {
        int32_t answer [2] = { -1, 0 };
        int got_fds [ZYGOTE_MAX_FDS], ngot = 0;
        ssize_t got = s_recv_with_fds (s_zygote_fd, answer, sizeof answer, got_fds, &ngot);
        answered = got == sizeof answer;
        if (got == sizeof answer && answer [0] > 0 && ngot == 1) {
            pid = answer [0];
            *pidfd_p = got_fds [0];
            s_zygote_forks++;
        }
        else {
            zsys_warning ("sandbox: clowdy-zygote could not clone: %s",
                          got == sizeof answer? strerror (answer [1]): "no answer");
            for (int index = 0; index < ngot; index++)
                close (got_fds [index]);
        }
    }
    if (pid < 0 && (sent || !answered))
        s_zygote_drop (ZYGOTE_RETRY_MS, !answered);
    return pid;
}


//  Take a uid slot; -1 if all are in use
static int
s_slot_take (void)
{
    pthread_mutex_lock (&s_mutex);
    int slot = -1;
    for (int index = 0; index < MAX_SLOTS; index++)
        if (!s_slots [index]) {
            s_slots [index] = 1;
            slot = index;
            break;
        }
    pthread_mutex_unlock (&s_mutex);
    return slot;
}

static void
s_slot_release (int slot)
{
    if (slot < 0)
        return;
    pthread_mutex_lock (&s_mutex);
    s_slots [slot] = 0;
    pthread_mutex_unlock (&s_mutex);
}

//  A ready cgroup under parent, from the pool or new
static cgroup_t *
s_pool_take (const char *parent)
{
    pthread_mutex_lock (&s_mutex);
    cgroup_t *cgroup = NULL;
    if (s_pool) {
        cgroup_t *item = (cgroup_t *) zlistx_first (s_pool);
        while (item && !streq (cgroup_parent (item), parent))
            item = (cgroup_t *) zlistx_next (s_pool);
        if (item) {
            zlistx_delete (s_pool, zlistx_cursor (s_pool));
            cgroup = item;
        }
    }
    pthread_mutex_unlock (&s_mutex);
    return cgroup? cgroup: cgroup_new (parent);
}

//  Return a cgroup to the pool, or destroy it
static void
s_pool_give (cgroup_t **cgroup_p)
{
    cgroup_t *cgroup = *cgroup_p;
    if (!cgroup)
        return;
    *cgroup_p = NULL;
    if (cgroup_recycle (cgroup)) {
        pthread_mutex_lock (&s_mutex);
        if (s_pool && zlistx_size (s_pool) < POOL_MAX) {
            zlistx_add_end (s_pool, cgroup);
            cgroup = NULL;
        }
        pthread_mutex_unlock (&s_mutex);
    }
    cgroup_destroy (&cgroup);
}

//  Open one of our helper programs (clowdy-sandbox-init, clowdy-zygote):
//  beside our own binary, else where the build put it (built, or NULL). It
//  runs in every sandbox, so it must be root's and not writable by others.
//  Returns an O_PATH fd or -1.
static int
s_program_open (const char *name, const char *built)
{
    char self [PATH_MAX];
    ssize_t len = readlink ("/proc/self/exe", self, sizeof self - 1);
    char candidates [2][PATH_MAX];
    int count = 0;
    if (len > 0) {
        self [len] = 0;
        char *slash = strrchr (self, '/');
        if (slash) {
            *slash = 0;
            snprintf (candidates [count++], PATH_MAX, "%.*s/%s", PATH_MAX - 64, self, name);
        }
    }
    if (built)
        snprintf (candidates [count++], PATH_MAX, "%s", built);
    for (int index = 0; index < count; index++) {
        int fd = open (candidates [index], O_PATH | O_CLOEXEC);
        if (fd < 0)
            continue;
        struct stat info;
        if (fstat (fd, &info) == 0 && S_ISREG (info.st_mode) && (info.st_mode & S_IXUSR)
        &&  (info.st_uid == 0 || info.st_uid == geteuid ()) && !(info.st_mode & (S_IWGRP | S_IWOTH))) {
            zsys_info ("sandbox: using %s", candidates [index]);
            return fd;
        }
        zsys_warning ("sandbox: ignoring %s (not a root-owned executable, or writable by others)",
                      candidates [index]);
        close (fd);
    }
    return -1;
}

//  clowdy-sandbox-init, pid 1 of every sandbox; -1 (logged) if there is
//  none: sandboxes then keep a copy of the server as pid 1
static int
s_init_open (void)
{
#ifdef CLOWDY_SANDBOX_INIT
    int fd = s_program_open ("clowdy-sandbox-init", CLOWDY_SANDBOX_INIT);
#else
    int fd = s_program_open ("clowdy-sandbox-init", NULL);
#endif
    if (fd < 0)
        zsys_warning ("sandbox: clowdy-sandbox-init not found: pid 1 of each sandbox stays a copy of the server");
    return fd;
}

#ifndef MFD_EXEC
#   define MFD_EXEC 0x0010U             //  Linux 6.3: an executable memfd, said so
#endif

//  clowdy-zygote, as a sealed memfd copy of it: a zygote's children keep
//  its executable mapped, and /proc/self/exe and maps then show
//  "/memfd:clowdy-zygote" rather than its host path. -1 (logged) if there
//  is none: each sandbox then starts its own python, as before zygotes
static int
s_zygote_open (void)
{
#ifdef CLOWDY_ZYGOTE
    int fd = s_program_open ("clowdy-zygote", CLOWDY_ZYGOTE);
#else
    int fd = s_program_open ("clowdy-zygote", NULL);
#endif
    if (fd < 0) {
        zsys_warning ("sandbox: clowdy-zygote not found: each sandbox starts its own python");
        return -1;
    }
    char path [32];
    snprintf (path, sizeof path, "/proc/self/fd/%d", fd);
    int source = open (path, O_RDONLY | O_CLOEXEC);
    close (fd);
    int copy = memfd_create ("clowdy-zygote", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
    if (copy < 0 && errno == EINVAL)
        copy = memfd_create ("clowdy-zygote", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    struct stat info;
    bool ok = source >= 0 && copy >= 0 && fstat (source, &info) == 0;
    off_t done = 0;
    while (ok && done < info.st_size) {
        ssize_t moved = sendfile (copy, source, NULL, (size_t) (info.st_size - done));
        ok = moved > 0;
        done += moved > 0? moved: 0;
    }
    ok = ok && fcntl (copy, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) == 0;
    if (source >= 0)
        close (source);
    if (!ok) {
        zsys_warning ("sandbox: cannot copy clowdy-zygote into memory (%s): each sandbox starts its own python",
                      strerror (errno));
        if (copy >= 0)
            close (copy);
        return -1;
    }
    return copy;
}

//  True if the kernel knows overlayfs (layers are mounted with it, see
//  s_mount_overlay); logs what happens without it
static bool
s_overlay_available (void)
{
    char line [256];
    bool found = false;
    FILE *file = fopen ("/proc/filesystems", "re");
    while (file && !found && fgets (line, sizeof line, file))
        found = streq (line, "nodev\toverlay\n");
    if (file)
        fclose (file);
    if (!found)
        zsys_warning ("sandbox: no overlayfs in this kernel (modprobe overlay): dependency layers "
                      "are bound, and /proc/self/mountinfo inside shows their host path");
    return found;
}

void
sandbox_config_init (sandbox_config_t *config)
{
    assert (config);
    memset (config, 0, sizeof *config);
    config->runtime_dir = SANDBOX_DEFAULT_RUNTIME_DIR;
    config->python = SANDBOX_DEFAULT_PYTHON;
    config->memory_mb = SANDBOX_DEFAULT_MEMORY_MB;
    config->cpus = SANDBOX_DEFAULT_CPUS;
    config->pids = SANDBOX_DEFAULT_PIDS;
    config->tmp_mb = SANDBOX_DEFAULT_TMP_MB;
    config->cgroup_name = SANDBOX_DEFAULT_CGROUP;
}

int
sandbox_system_init (const char *cgroup_name)
{
    if (!cgroup_name)
        cgroup_name = SANDBOX_DEFAULT_CGROUP;
    pthread_mutex_lock (&s_mutex);
    int rc = 0;
    if (!s_initialized) {
        if (geteuid () != 0) {
            zsys_error ("sandbox: must run as root to create sandboxes");
            rc = -1;
        }
        for (int index = 0; rc == 0 && s_newroot_candidates [index]; index++) {
            const char *path = s_newroot_candidates [index];
            char parent [64];
            snprintf (parent, sizeof parent, "%s", path);
            *strrchr (parent, '/') = 0;
            if (access (parent, F_OK))
                continue;
            if (mkdir (path, 0700) && errno != EEXIST)
                continue;
            struct stat info;
            if (lstat (path, &info) == 0 && S_ISDIR (info.st_mode) && info.st_uid == 0) {
                s_newroot = path;
                break;
            }
        }
        if (rc == 0 && !s_newroot) {
            zsys_error ("sandbox: no mount point for sandbox roots");
            rc = -1;
        }
        if (rc == 0)
            s_init_fd = s_init_open ();
        if (rc == 0 && s_zygote_exe < 0)
            s_zygote_exe = s_zygote_open ();
        if (rc == 0)
            s_overlay = s_overlay_available ();
        if (rc == 0)
            rc = s_filter_build (false, &s_filter_nonet);
        if (rc == 0)
            rc = s_filter_build (true, &s_filter_net);
        if (rc == 0) {
            s_parents = zlistx_new ();
            zlistx_set_destructor (s_parents, (zlistx_destructor_fn *) zstr_free);
            zlistx_set_duplicator (s_parents, (zlistx_duplicator_fn *) strdup);
            zlistx_set_comparator (s_parents, (zlistx_comparator_fn *) strcmp);
            s_pool = zlistx_new ();
            s_initialized = true;
        }
    }
    bool prepared = rc == 0 && zlistx_find (s_parents, (void *) cgroup_name);
    pthread_mutex_unlock (&s_mutex);
    if (rc || prepared)
        return rc;

    //  A new parent cgroup: create it and fill the pool (outside the lock,
    //  it takes a while; a race only makes a few extra cgroups)
    if (cgroup_parent_prepare (cgroup_name))
        return -1;
    zlistx_t *fresh = zlistx_new ();
    for (int index = 0; index < POOL_MIN; index++) {
        cgroup_t *cgroup = cgroup_new (cgroup_name);
        if (cgroup)
            zlistx_add_end (fresh, cgroup);
    }
    pthread_mutex_lock (&s_mutex);
    if (!zlistx_find (s_parents, (void *) cgroup_name))
        zlistx_add_end (s_parents, (void *) cgroup_name);
    cgroup_t *cgroup;
    while ((cgroup = (cgroup_t *) zlistx_detach (fresh, NULL)))
        zlistx_add_end (s_pool, cgroup);
    pthread_mutex_unlock (&s_mutex);
    zlistx_destroy (&fresh);
    zsys_info ("sandbox: ready, cgroup parent '%s', roots mounted at %s", cgroup_name, s_newroot);
    return 0;
}

void
sandbox_system_shutdown (void)
{
    pthread_mutex_lock (&s_mutex);
    zlistx_t *pool = s_pool;
    zlistx_t *parents = s_parents;
    s_pool = NULL;
    s_parents = NULL;
    if (s_initialized) {
        free (s_filter_net.filter);
        free (s_filter_nonet.filter);
        s_filter_net.filter = s_filter_nonet.filter = NULL;
        if (s_init_fd >= 0)
            close (s_init_fd);
        s_init_fd = -1;
        s_initialized = false;
    }
    pthread_mutex_unlock (&s_mutex);
    cgroup_t *cgroup;
    while (pool && (cgroup = (cgroup_t *) zlistx_detach (pool, NULL)))
        cgroup_destroy (&cgroup);
    zlistx_destroy (&pool);
    const char *parent = parents? (const char *) zlistx_first (parents): NULL;
    while (parent) {
        cgroup_parent_remove (parent);
        parent = (const char *) zlistx_next (parents);
    }
    zlistx_destroy (&parents);
}

//  Start slirp4netns for the child's network namespace; 0 or -1
static int
s_slirp_start (sandbox_t *self, pid_t child, bool host_loopback)
{
    int ready [2], stop [2];
    if (pipe2 (ready, O_CLOEXEC))
        return -1;
    if (pipe2 (stop, O_CLOEXEC)) {
        close (ready [0]);
        close (ready [1]);
        return -1;
    }
    //  slirp4netns gets its two pipe ends as fds 3 and 4
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init (&actions);
    int ready_high = fcntl (ready [1], F_DUPFD_CLOEXEC, 10);
    int stop_high = fcntl (stop [0], F_DUPFD_CLOEXEC, 10);
    posix_spawn_file_actions_addopen (&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen (&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen (&actions, 2, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2 (&actions, ready_high, 3);
    posix_spawn_file_actions_adddup2 (&actions, stop_high, 4);
    //  slirp4netns parses the sandbox's packets: it joins the sandbox's user
    //  namespace, and confines itself (own empty root, no caps, seccomp)
    char pid_text [16], userns [64];
    snprintf (pid_text, sizeof pid_text, "%d", (int) child);
    snprintf (userns, sizeof userns, "--userns-path=/proc/%d/ns/user", (int) child);
    //  With host_loopback, 10.0.2.2 is the host's 127.0.0.1 (a build's
    //  package index there); s_block_routes lets only the given ports through
    char *argv [16];
    int argc = 0;
    argv [argc++] = "slirp4netns";
    argv [argc++] = "--configure";
    argv [argc++] = "--mtu=65520";
    if (!host_loopback)
        argv [argc++] = "--disable-host-loopback";
    argv [argc++] = "--enable-sandbox";
    argv [argc++] = "--enable-seccomp";
    argv [argc++] = userns;
    argv [argc++] = "--ready-fd=3";
    argv [argc++] = "--exit-fd=4";
    argv [argc++] = pid_text;
    argv [argc++] = "tap0";
    argv [argc] = NULL;
    extern char **environ;
    pid_t pid;
    int rc = ready_high < 0 || stop_high < 0? errno:
             posix_spawnp (&pid, "slirp4netns", &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy (&actions);
    close (ready [1]);
    close (stop [0]);
    if (ready_high >= 0)
        close (ready_high);
    if (stop_high >= 0)
        close (stop_high);
    if (rc) {
        zsys_error ("sandbox: cannot start slirp4netns: %s", strerror (rc));
        close (ready [0]);
        close (stop [1]);
        return -1;
    }
    self->slirp_pid = pid;
    self->slirp_exit_fd = stop [1];
    //  Wait for "1" on the ready fd (network configured)
    struct pollfd poller = { ready [0], POLLIN, 0 };
    char byte = 0;
    rc = poll (&poller, 1, 5000) == 1 && read (ready [0], &byte, 1) == 1 && byte == '1'? 0: -1;
    close (ready [0]);
    if (rc)
        zsys_error ("sandbox: slirp4netns did not get ready");
    return rc;
}

//  What a network-enabled function may not reach through slirp4netns: the
//  host's LAN and private ranges, link-local (cloud metadata at
//  169.254.169.254), carrier-grade NAT, multicast and reserved space. The
//  host's own addresses, the subnets on its interfaces and the gateways of
//  its routes are added at run time (a LAN or a gateway need not be in a
//  private range: this host's is 192.0.2.0/24). slirp's own 10.0.2.0/24 stays
//  reachable (its connected route is more specific), for DNS at 10.0.2.3.
static const char *s_blocked_ranges [] = {
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4", NULL
};

//  slirp4netns's network inside the sandbox (its default --cidr)
#define SLIRP_NETWORK   0x0A000200u         //  10.0.2.0, host order
#define SLIRP_PREFIX    24

//  Write "route replace unreachable ADDRESS/PREFIX" for one host network,
//  unless it lies inside slirp's 10.0.2.0/24 (a host on qemu's user network
//  has 10.0.2.15/24 and gateway 10.0.2.2): there slirp answers for every
//  address itself (DNS at .3, a refusal for the rest, as the host loopback
//  alias is disabled), nothing leaves for the host's LAN, and a route would
//  only hide slirp's DNS and gateway from the sandbox.
static void
s_block_network (FILE *batch, struct in_addr address, int prefix)
{
    if (prefix <= 0 || prefix > 32)
        return;                 //  a /0 would be the default route
    uint32_t host = ntohl (address.s_addr);
    uint32_t mask = 0xFFFFFFFFu << (32 - prefix);
    if (prefix >= SLIRP_PREFIX && (host & 0xFFFFFF00u) == SLIRP_NETWORK)
        return;
    struct in_addr network = { htonl (host & mask) };
    char text [INET_ADDRSTRLEN];
    inet_ntop (AF_INET, &network, text, sizeof text);
    fprintf (batch, "route replace unreachable %s/%d\n", text, prefix);
}

//  The host's IPv4 addresses (as /32s) and the subnets they are on
static void
s_block_host_networks (FILE *batch)
{
    struct ifaddrs *interfaces;
    if (getifaddrs (&interfaces))
        return;
    for (struct ifaddrs *item = interfaces; item; item = item->ifa_next) {
        if (!item->ifa_addr || item->ifa_addr->sa_family != AF_INET || (item->ifa_flags & IFF_LOOPBACK))
            continue;
        struct in_addr address = ((struct sockaddr_in *) item->ifa_addr)->sin_addr;
        s_block_network (batch, address, 32);
        if (item->ifa_netmask && item->ifa_netmask->sa_family == AF_INET) {
            uint32_t mask = ntohl (((struct sockaddr_in *) item->ifa_netmask)->sin_addr.s_addr);
            s_block_network (batch, address, __builtin_popcount (mask));
        }
    }
    freeifaddrs (interfaces);
}

//  The gateways of the host's IPv4 routes (the default one and any other),
//  from /proc/net/route: hex addresses in network byte order
static void
s_block_gateways (FILE *batch)
{
    FILE *routes = fopen ("/proc/net/route", "re");
    if (!routes)
        return;
    char line [512];
    while (fgets (line, sizeof line, routes)) {
        char name [64];
        unsigned int destination, gateway, flags;
        if (sscanf (line, "%63s %x %x %x", name, &destination, &gateway, &flags) == 4
        &&  (flags & RTF_GATEWAY) && gateway != 0) {
            struct in_addr address = { gateway };
            s_block_network (batch, address, 32);
        }
    }
    fclose (routes);
}

//  Add "unreachable" routes for all those inside the sandbox's network
//  namespace (the sandbox has no capabilities, so it cannot remove them).
//  Runs `nsenter --net=/proc/PID/ns/net ip -batch -`; 0 or -1.
static int
s_block_routes (pid_t child, const int *host_ports)
{
    char *batch = NULL;
    size_t used = 0;
    FILE *stream = open_memstream (&batch, &used);
    if (!stream)
        return -1;
    for (const char **range = s_blocked_ranges; *range; range++)
        fprintf (stream, "route add unreachable %s\n", *range);
    s_block_host_networks (stream);
    s_block_gateways (stream);
    //  slirp forwards whatever reaches its DNS address, on any port, to the
    //  host's resolver, which is often the LAN's gateway (or on the host's
    //  loopback): only DNS may go there
    fprintf (stream,
        "rule add priority 100 to 10.0.2.3/32 ipproto udp dport 53 lookup main\n"
        "rule add priority 101 to 10.0.2.3/32 ipproto tcp dport 53 lookup main\n"
        "rule add priority 102 to 10.0.2.3/32 unreachable\n");
    //  The host's loopback at 10.0.2.2, when slirp maps it (host_ports):
    //  those TCP ports only, nothing else of the host
    bool host_loopback = false;
    for (int index = 0; index < SANDBOX_MAX_HOST_PORTS; index++)
        if (host_ports [index] > 0 && host_ports [index] < 65536) {
            fprintf (stream, "rule add priority %d to 10.0.2.2/32 ipproto tcp dport %d lookup main\n",
                     110 + index, host_ports [index]);
            host_loopback = true;
        }
    if (host_loopback)
        fprintf (stream, "rule add priority 120 to 10.0.2.2/32 unreachable\n");
    if (fclose (stream)) {
        free (batch);
        return -1;
    }
    int input [2];
    if (pipe2 (input, O_CLOEXEC)) {
        free (batch);
        return -1;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init (&actions);
    posix_spawn_file_actions_adddup2 (&actions, input [0], 0);
    posix_spawn_file_actions_addopen (&actions, 1, "/dev/null", O_WRONLY, 0);
    char netns [64];
    snprintf (netns, sizeof netns, "--net=/proc/%d/ns/net", (int) child);
    char *argv [] = { "nsenter", netns, "ip", "-batch", "-", NULL };
    extern char **environ;
    pid_t pid;
    int rc = posix_spawnp (&pid, "nsenter", &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy (&actions);
    close (input [0]);
    if (rc) {
        close (input [1]);
        free (batch);
        zsys_error ("sandbox: cannot run nsenter to restrict the network: %s", strerror (rc));
        return -1;
    }
    bool written = write (input [1], batch, used) == (ssize_t) used;
    close (input [1]);
    free (batch);
    int status = 0;
    while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!written || !WIFEXITED (status) || WEXITSTATUS (status) != 0) {
        zsys_error ("sandbox: could not restrict the sandbox's network (ip -batch failed)");
        return -1;
    }
    return 0;
}

static void
s_slirp_stop (sandbox_t *self)
{
    if (self->slirp_exit_fd >= 0) {
        close (self->slirp_exit_fd);
        self->slirp_exit_fd = -1;
    }
    if (self->slirp_pid > 0) {
        //  It exits when its exit fd closes; do not wait for ever
        int attempt;
        for (attempt = 0; attempt < 200; attempt++) {
            pid_t rc = waitpid (self->slirp_pid, NULL, WNOHANG);
            if (rc == self->slirp_pid || (rc < 0 && errno != EINTR))
                break;
            usleep (1000);
        }
        if (attempt == 200) {
            kill (self->slirp_pid, SIGKILL);
            waitpid (self->slirp_pid, NULL, 0);
        }
        self->slirp_pid = 0;
    }
}

sandbox_t *
sandbox_new (const sandbox_config_t *config)
{
    assert (config);
    const char *cgroup_name = config->cgroup_name? config->cgroup_name: SANDBOX_DEFAULT_CGROUP;
    if (sandbox_system_init (cgroup_name))
        return NULL;
    int memory_mb = config->memory_mb > 0? config->memory_mb: SANDBOX_DEFAULT_MEMORY_MB;
    double cpus = config->cpus != 0? config->cpus: SANDBOX_DEFAULT_CPUS;
    int pids = config->pids > 0? config->pids: SANDBOX_DEFAULT_PIDS;
    if (pids < 4)
        pids = 4;               //  init, the process, and our thread while it clones
    int tmp_mb = config->tmp_mb > 0? config->tmp_mb: SANDBOX_DEFAULT_TMP_MB;

    sandbox_t *self = (sandbox_t *) zmalloc (sizeof (sandbox_t));
    self->fd = self->sync_fd = self->status_fd = self->slirp_exit_fd = self->pidfd = -1;
    self->exit_status = -1;
    self->memory_peak = -1;
    int sockets [2] = { -1, -1 }, sync [2] = { -1, -1 }, setup [2] = { -1, -1 }, status [2] = { -1, -1 };
    plan_t plan;
    memset (&plan, 0, sizeof plan);
    bool ok = false;
    bool zygote = s_zygote_usable (config);
    bool zygote_failed = false;         //  then we try again without it

    self->slot = s_slot_take ();
    if (self->slot < 0) {
        zsys_error ("sandbox: all %d uid slots in use", MAX_SLOTS);
        goto cleanup;
    }
    if (s_plan_build (&plan, config, tmp_mb))
        goto cleanup;
    self->cgroup = s_pool_take (cgroup_name);
    if (!self->cgroup || cgroup_set_limits (self->cgroup, memory_mb, cpus, pids))
        goto cleanup;
    //  Written every time (a recycled cgroup may have been either); one
    //  that cannot be written only costs speed: the worker writes the
    //  default again before any of a function's code runs (s_env_load)
    cgroup_set_urgent (self->cgroup, config->urgent);
    if (config->on_cgroup) {
        self->cgroup_named = true;
        config->on_cgroup (config->on_cgroup_arg, cgroup_cpu_dir (self->cgroup));
    }
    self->oom_base = cgroup_oom_kills (self->cgroup);
    if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sockets)
    ||  pipe2 (sync, O_CLOEXEC) || pipe2 (setup, O_CLOEXEC) || pipe2 (status, O_CLOEXEC)) {
        zsys_error ("sandbox: cannot create pipes: %s", strerror (errno));
        goto cleanup;
    }
    plan.sync_fd = sync [0];
    plan.setup_fd = setup [1];
    plan.status_fd = status [1];
    plan.proto_fd = sockets [1];
    s_plan_mount_fds (&plan);

    bool entered = false;               //  this thread is in the cgroup
    bool born_inside = false;           //  the child moves itself in (zygote, v1)
    pid_t pid;
    if (zygote) {
        int cgroup_fds [4];
        int ncgroups = cgroup_task_fds (self->cgroup, cgroup_fds, 4);
        pid = ncgroups < 0? -1: s_zygote_clone (&plan, cgroup_fds, ncgroups, &self->pidfd);
        for (int index = 0; index < ncgroups; index++)
            close (cgroup_fds [index]);
        if (pid < 0) {
            zygote_failed = true;
            goto cleanup;
        }
        born_inside = ncgroups > 0;
    }
    else {
        int flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWNS
                  | CLONE_NEWIPC | CLONE_NEWUTS | SIGCHLD;
        //  Clone from inside the cgroup where we can (see cgroup_enter)
        entered = cgroup_enter (self->cgroup) == 0;
        pid = (pid_t) syscall (SYS_clone, flags, 0, 0, 0, 0);
        if (pid == 0)
            s_child (&plan);        //  never returns
        if (pid < 0) {
            zsys_error ("sandbox: clone failed: %s", strerror (errno));
            goto cleanup;
        }
    }
    self->pid = self->init_pid = pid;
    close (sync [0]);
    close (setup [1]);
    close (status [1]);
    close (sockets [1]);
    sync [0] = setup [1] = status [1] = sockets [1] = -1;

    //  uid/gid maps, cgroup, network, then let the child go
    char path [64], map [64];
    snprintf (map, sizeof map, "0 %d %d\n", HOST_ID_BASE + self->slot * HOST_ID_RANGE, HOST_ID_RANGE);
    snprintf (path, sizeof path, "/proc/%d/uid_map", pid);
    if (s_write_file (path, map)) {
        zsys_error ("sandbox: cannot write %s: %s", path, strerror (errno));
        goto cleanup;
    }
    snprintf (path, sizeof path, "/proc/%d/gid_map", pid);
    if (s_write_file (path, map)) {
        zsys_error ("sandbox: cannot write %s: %s", path, strerror (errno));
        goto cleanup;
    }
    if (!entered && !born_inside && cgroup_attach (self->cgroup, pid))
        goto cleanup;
    //  slirp4netns does the sandbox's network work, so it counts against the
    //  sandbox's CPU, memory and pids: born in the cgroup while this thread
    //  is still in it (v1), or attached (v2)
    bool host_loopback = false;
    for (int index = 0; index < SANDBOX_MAX_HOST_PORTS; index++)
        host_loopback |= config->host_ports [index] > 0 && config->host_ports [index] < 65536;
    if (config->network && zygote)
        entered = cgroup_enter (self->cgroup) == 0;
    if (config->network && s_slirp_start (self, pid, host_loopback))
        goto cleanup;
    if (config->network && !entered && cgroup_attach (self->cgroup, self->slirp_pid))
        goto cleanup;
    if (cgroup_leave (self->cgroup))        //  a no-op unless entered
        goto cleanup;                       //  refuse to run with a half-moved server
    if (config->network && s_block_routes (pid, config->host_ports))
        goto cleanup;
    if (write (sync [1], "x", 1) != 1)
        goto cleanup;
    self->sync_fd = sync [1];
    sync [1] = -1;

    //  Wait for the exec (EOF on the setup pipe) or a setup error
    struct pollfd poller = { setup [0], POLLIN, 0 };
    int report [2] = { 0, 0 };
    int rc = poll (&poller, 1, SETUP_TIMEOUT_MS);
    ssize_t got = rc == 1? read (setup [0], report, sizeof report): -1;
    if (got == 0)
        ok = true;
    else
    if (got == sizeof report && report [0] >= 0 && report [0] < STAGE_COUNT)
        zsys_error ("sandbox: %s failed: %s (%s)", s_stage_names [report [0]],
                    strerror (report [1]), report [0] == STAGE_EXEC? plan.argv [0]: "setup");
    else
        zsys_error ("sandbox: setup did not finish (%s)", rc == 0? "timeout": "no report");
    if (ok) {
        self->fd = sockets [0];
        sockets [0] = -1;
        fcntl (self->fd, F_SETFL, fcntl (self->fd, F_GETFL) | O_NONBLOCK);
        self->status_fd = status [0];
        status [0] = -1;
    }

cleanup:
    if (self->cgroup)
        cgroup_leave (self->cgroup);        //  a no-op unless still entered
    for (int index = 0; index < 2; index++) {
        if (sockets [index] >= 0)
            close (sockets [index]);
        if (sync [index] >= 0)
            close (sync [index]);
        if (setup [index] >= 0)
            close (setup [index]);
        if (status [index] >= 0)
            close (status [index]);
    }
    s_plan_destroy (&plan);
    if (ok)
        self->cgroup_named = false;     //  its name's holder owns the sandbox now
    else
        sandbox_destroy (&self);
    if (zygote_failed) {
        s_zygote_bypass = true;         //  this one clones by itself
        return sandbox_new (config);
    }
    return self;
}

int
sandbox_fd (sandbox_t *self)
{
    assert (self);
    return self->fd;
}

pid_t
sandbox_pid (sandbox_t *self)
{
    assert (self);
    return self->init_pid;
}

bool
sandbox_zygote_made (sandbox_t *self)
{
    assert (self);
    return self->pidfd >= 0;
}

int
sandbox_set_memory (sandbox_t *self, int memory_mb)
{
    assert (self);
    if (self->reaped || !self->cgroup)
        return -1;
    return cgroup_set_memory (self->cgroup, memory_mb);
}

int
sandbox_set_cpus (sandbox_t *self, double cpus)
{
    assert (self);
    if (self->reaped || !self->cgroup)
        return -1;
    return cgroup_set_cpus (self->cgroup, cpus);
}

int
sandbox_set_urgent (sandbox_t *self, bool urgent)
{
    assert (self);
    if (self->reaped || !self->cgroup)
        return -1;
    return cgroup_set_urgent (self->cgroup, urgent);
}

int
sandbox_cpu_dir_urgent (const char *cpu_dir)
{
    return cgroup_dir_set_urgent (cpu_dir, true);
}

int
sandbox_kill (sandbox_t *self)
{
    assert (self);
    if (self->reaped || self->pid <= 0)
        return 0;
    //  Killing init makes the kernel kill the whole pid namespace
    int rc = self->pidfd >= 0
           ? (int) syscall (SYS_pidfd_send_signal, self->pidfd, SIGKILL, NULL, 0)
           : kill (self->pid, SIGKILL);
    if (rc && errno != ESRCH) {
        zsys_error ("sandbox: cannot kill %d: %s", self->pid, strerror (errno));
        return -1;
    }
    return 0;
}

bool
sandbox_reap (sandbox_t *self, bool wait)
{
    assert (self);
    if (self->reaped)
        return true;
    if (self->pid <= 0)
        return false;
    int status = 0;
    pid_t rc;
    if (self->pidfd >= 0) {
        //  A zygote's child: its pidfd is readable once it has exited (the
        //  zygote reaps it); the main process's status comes on the pipe
        struct pollfd poller = { self->pidfd, POLLIN, 0 };
        do
            rc = poll (&poller, 1, wait? -1: 0);
        while (rc < 0 && errno == EINTR);
        if (rc == 0)
            return false;
        status = W_EXITCODE (0, SIGKILL);
        rc = self->pid;
    }
    else
        do
            rc = waitpid (self->pid, &status, wait? 0: WNOHANG);
        while (rc < 0 && errno == EINTR);
    if (rc == 0)
        return false;
    if (rc < 0) {
        zsys_error ("sandbox: waitpid %d: %s", self->pid, strerror (errno));
        status = W_EXITCODE (0, SIGKILL);       //  treat as killed
    }
    self->reaped = true;
    self->pid = 0;
    //  The main process's status if init reported it, else init's own
    self->exit_status = status;
    if (self->status_fd >= 0) {
        int user_status;
        struct pollfd poller = { self->status_fd, POLLIN, 0 };
        if (poll (&poller, 1, 0) == 1
        &&  read (self->status_fd, &user_status, sizeof user_status) == sizeof user_status)
            self->exit_status = user_status;
    }
    if (self->cgroup) {
        int64_t kills = cgroup_oom_kills (self->cgroup);
        self->oom_killed = kills > self->oom_base && self->oom_base >= 0
                        && WIFSIGNALED (self->exit_status) && WTERMSIG (self->exit_status) == SIGKILL;
        self->memory_peak = cgroup_memory_peak (self->cgroup);
    }
    return true;
}

bool
sandbox_oom_killed (sandbox_t *self)
{
    assert (self);
    return self->reaped && self->oom_killed;
}

int
sandbox_exit_status (sandbox_t *self)
{
    assert (self);
    return self->reaped? self->exit_status: -1;
}

int64_t
sandbox_memory_peak (sandbox_t *self)
{
    assert (self);
    if (!self->reaped && self->cgroup)
        return cgroup_memory_peak (self->cgroup);
    return self->memory_peak;
}

void
sandbox_destroy (sandbox_t **self_p)
{
    assert (self_p);
    sandbox_t *self = *self_p;
    if (!self)
        return;
    if (self->pid > 0) {
        sandbox_kill (self);
        sandbox_reap (self, true);
    }
    s_slirp_stop (self);
    if (self->fd >= 0)
        close (self->fd);
    if (self->sync_fd >= 0)
        close (self->sync_fd);
    if (self->status_fd >= 0)
        close (self->status_fd);
    if (self->pidfd >= 0)
        close (self->pidfd);
    if (self->cgroup_named)
        cgroup_destroy (&self->cgroup);
    else
        s_pool_give (&self->cgroup);
    s_slot_release (self->slot);
    free (self);
    *self_p = NULL;
}


//  --------------------------------------------------------------------------
//  Selftest

#define TEST_TIMEOUT_MS 20000

//  Run a python program in a sandbox; returns what it wrote to fd 3 (until
//  EOF), fills the exit status and OOM verdict. The caller frees the text.
static char *
s_run (sandbox_config_t *config, const char *program, int *status, bool *oom)
{
    const char *argv [] = { "/usr/bin/python3", "-I", "-B", "-c", program, NULL };
    config->argv = argv;
    sandbox_t *sandbox = sandbox_new (config);
    config->argv = NULL;
    assert (sandbox);
    zchunk_t *output = zchunk_new (NULL, 0);
    int64_t deadline = zclock_mono () + TEST_TIMEOUT_MS;
    while (zclock_mono () < deadline) {
        struct pollfd poller = { sandbox_fd (sandbox), POLLIN, 0 };
        if (poll (&poller, 1, 100) <= 0)
            continue;
        char buffer [4096];
        ssize_t got = read (sandbox_fd (sandbox), buffer, sizeof buffer);
        if (got > 0)
            zchunk_extend (output, buffer, got);
        else
        if (got == 0 || (errno != EAGAIN && errno != EINTR))
            break;
    }
    if (zclock_mono () >= deadline)
        sandbox_kill (sandbox);
    assert (sandbox_reap (sandbox, true));
    if (status)
        *status = sandbox_exit_status (sandbox);
    if (oom)
        *oom = sandbox_oom_killed (sandbox);
    sandbox_destroy (&sandbox);
    char *text = zchunk_strdup (output);
    zchunk_destroy (&output);
    return text;
}

//  Run a program that must print exactly "expected" and exit 0
static void
s_expect (sandbox_config_t *config, const char *what, const char *program, const char *expected, bool verbose)
{
    int status;
    char *output = s_run (config, program, &status, NULL);
    if (!streq (output, expected) || !WIFEXITED (status) || WEXITSTATUS (status) != 0) {
        fprintf (stderr, "\n   %s: expected '%s', got '%s' (status %d)\n", what, expected, output, status);
        assert (false);
    }
    if (verbose) {
        printf ("\n   - %s: %s", what, output);
        fflush (stdout);
    }
    free (output);
}

//  Read a small file into buffer (NUL-terminated); bytes read or -1
static ssize_t
s_read_file (const char *path, char *buffer, size_t size)
{
    FILE *file = fopen (path, "re");
    if (!file)
        return -1;
    size_t got = fread (buffer, 1, size - 1, file);
    fclose (file);
    buffer [got] = 0;
    return (ssize_t) got;
}

//  Uid of a host process, -1 if unknown
static int
s_host_uid (pid_t pid)
{
    char path [64], buffer [4096];
    snprintf (path, sizeof path, "/proc/%d/status", pid);
    FILE *file = fopen (path, "r");
    if (!file)
        return -1;
    int uid = -1;
    while (fgets (buffer, sizeof buffer, file))
        if (strncmp (buffer, "Uid:", 4) == 0) {
            uid = atoi (buffer + 4);
            break;
        }
    fclose (file);
    return uid;
}

static int
s_compare_int64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y? -1: x > y;
}

//  A TCP listener on address:0; returns the fd, fills the port
static int
s_listen (const char *address, int *port)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert (fd >= 0);
    struct sockaddr_in addr;
    memset (&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    inet_pton (AF_INET, address, &addr.sin_addr);
    assert (bind (fd, (struct sockaddr *) &addr, sizeof addr) == 0);
    assert (listen (fd, 16) == 0);
    socklen_t len = sizeof addr;
    getsockname (fd, (struct sockaddr *) &addr, &len);
    *port = ntohs (addr.sin_port);
    return fd;
}

//  What a network-on sandbox's routes say to a host address: "none" when
//  the host has no such address, "routed" inside slirp's own 10.0.2.0/24
//  (slirp answers there itself, see s_block_network), else "blocked"
static const char *
s_route_expected (const char *address)
{
    struct in_addr parsed;
    if (!*address || inet_pton (AF_INET, address, &parsed) != 1)
        return "none";
    return (ntohl (parsed.s_addr) & 0xFFFFFF00u) == SLIRP_NETWORK? "routed": "blocked";
}

//  Thread body: make a sandbox that says "up" and sleeps, check its pid 1,
//  and return it; the thread then exits, which must kill the sandbox
static void *
s_thread_sandbox (void *args)
{
    sandbox_config_t *config = (sandbox_config_t *) args;
    const char *argv [] = { "/usr/bin/python3", "-I", "-c",
        "import os, time\n"
        "os.write(3, b'up'); time.sleep(1000)\n", NULL };
    config->argv = argv;
    sandbox_t *sandbox = sandbox_new (config);
    config->argv = NULL;
    assert (sandbox);
    char buffer [4];
    struct pollfd poller = { sandbox_fd (sandbox), POLLIN, 0 };
    assert (poll (&poller, 1, TEST_TIMEOUT_MS) == 1);
    assert (read (sandbox_fd (sandbox), buffer, 2) == 2);
    return sandbox;
}

//  Thread body: create and end sandboxes, one a network one; count failures
static void *
s_thread_churn (void *args)
{
    sandbox_config_t config = *(sandbox_config_t *) args;
    const char *argv [] = { "/usr/bin/python3", "-I", "-S", "-c", "import os; os.write(3, b'x')", NULL };
    config.argv = argv;
    intptr_t failures = 0;
    for (int run = 0; run < 5; run++) {
        config.network = run == 2;
        sandbox_t *sandbox = sandbox_new (&config);
        if (!sandbox) {
            failures++;
            continue;
        }
        char byte;
        struct pollfd poller = { sandbox_fd (sandbox), POLLIN, 0 };
        if (poll (&poller, 1, TEST_TIMEOUT_MS) != 1 || read (sandbox_fd (sandbox), &byte, 1) != 1)
            failures++;
        sandbox_destroy (&sandbox);
    }
    return (void *) failures;
}

//  What on_cgroup saw: the cgroup's CPU dir and how many processes were in it
typedef struct {
    char dir [PATH_MAX];
    int processes;
} s_test_cgroup_t;

static void
s_test_on_cgroup (void *arg, const char *cpu_dir)
{
    s_test_cgroup_t *seen = (s_test_cgroup_t *) arg;
    snprintf (seen->dir, sizeof seen->dir, "%s", cpu_dir);
    char path [PATH_MAX + 32];
    snprintf (path, sizeof path, "%s/cgroup.procs", cpu_dir);
    FILE *file = fopen (path, "re");
    seen->processes = 0;
    char line [32];
    while (file && fgets (line, sizeof line, file))
        seen->processes++;
    if (file)
        fclose (file);
}

//  A cgroup's CPU weight (cpu.weight on v2, cpu.shares on v1), or -1
static int
s_test_weight (const char *cpu_dir)
{
    const char *names [] = { "cpu.weight", "cpu.shares" };
    for (int index = 0; index < 2; index++) {
        char path [PATH_MAX + 32];
        snprintf (path, sizeof path, "%s/%s", cpu_dir, names [index]);
        FILE *file = fopen (path, "re");
        int value = -1;
        if (file && fscanf (file, "%d", &value) != 1)
            value = -1;
        if (file)
            fclose (file);
        if (value > 0)
            return value;
    }
    return -1;
}

//  Test helpers for the zygote part: one runner frame, read or sent
static bool
s_test_frame (sandbox_t *sandbox, char *text, size_t size)
{
    unsigned char header [4];
    size_t got = 0;
    while (got < sizeof header) {
        struct pollfd poller = { sandbox_fd (sandbox), POLLIN, 0 };
        if (poll (&poller, 1, TEST_TIMEOUT_MS) != 1)
            return false;
        ssize_t rc = read (sandbox_fd (sandbox), header + got, sizeof header - got);
        if (rc <= 0 && !(rc < 0 && errno == EAGAIN))
            return false;
        got += rc > 0? (size_t) rc: 0;
    }
    size_t length = (size_t) header [0] << 24 | header [1] << 16 | header [2] << 8 | header [3];
    if (length >= size)
        return false;
    got = 0;
    while (got < length) {
        struct pollfd poller = { sandbox_fd (sandbox), POLLIN, 0 };
        if (poll (&poller, 1, TEST_TIMEOUT_MS) != 1)
            return false;
        ssize_t rc = read (sandbox_fd (sandbox), text + got, length - got);
        if (rc <= 0 && !(rc < 0 && errno == EAGAIN))
            return false;
        got += rc > 0? (size_t) rc: 0;
    }
    text [length] = 0;
    return true;
}

static void
s_test_send (sandbox_t *sandbox, const char *json)
{
    size_t length = strlen (json);
    unsigned char header [4] = { (unsigned char) (length >> 24), (unsigned char) (length >> 16),
                                 (unsigned char) (length >> 8), (unsigned char) length };
    struct pollfd poller = { sandbox_fd (sandbox), POLLOUT, 0 };
    assert (poll (&poller, 1, TEST_TIMEOUT_MS) == 1);
    assert (write (sandbox_fd (sandbox), header, 4) == 4);
    assert (write (sandbox_fd (sandbox), json, length) == (ssize_t) length);
}

//  Starts this thread's zygote and waits until it is ready, however slow
//  the machine (an emulated VM takes seconds where sandbox_new waits 1 s)
static void
s_test_zygote_ready (const sandbox_config_t *config)
{
    for (int attempt = 0; attempt < 1200 && !s_zygote_usable (config); attempt++)
        zclock_sleep (100);
    assert (s_zygote_state == ZYGOTE_READY);
}

//  A number field of /proc/PID/status (the first number; hex for Cap*), or -1
static long
s_status_field (const char *path, const char *name)
{
    char text [4096];
    if (s_read_file (path, text, sizeof text) <= 0)
        return -1;
    char *line = strstr (text, name);
    if (!line)
        return -1;
    return strtol (line + strlen (name), NULL, strncmp (name, "Cap", 3)? 10: 16);
}

static int
s_host_rss_kb (pid_t pid)
{
    char path [64], buffer [4096];
    snprintf (path, sizeof path, "/proc/%d/status", pid);
    FILE *file = fopen (path, "r");
    if (!file)
        return -1;
    int rss = -1;
    while (fgets (buffer, sizeof buffer, file))
        if (strncmp (buffer, "VmRSS:", 6) == 0) {
            rss = atoi (buffer + 6);
            break;
        }
    fclose (file);
    return rss;
}

void
sandbox_test (bool verbose)
{
    printf (" * sandbox: ");
    if (geteuid () != 0) {
        printf ("FAILED: the sandbox test must run as root (it creates user namespaces and cgroups)\n");
        assert (false);
    }
    if (access ("/proc/self/ns/user", F_OK)) {
        printf ("FAILED: this kernel has no user namespaces\n");
        assert (false);
    }
    //  Our own parent cgroup, so tests can run side by side with a server;
    //  first remove those of test runs that died
    cgroup_remove_stale_parents ("clowdy-test-");
    char cgroup_name [64];
    snprintf (cgroup_name, sizeof cgroup_name, "clowdy-test-%d", getpid ());
    int64_t start = zclock_usecs ();
    assert (sandbox_system_init (cgroup_name) == 0);
    assert (sandbox_system_init (cgroup_name) == 0);      //  idempotent
    if (verbose)
        printf ("\n   - system init %.1f ms; seccomp filters of %d (network) and %d instructions",
                (zclock_usecs () - start) / 1000.0, s_filter_net.len, s_filter_nonet.len);

    sandbox_config_t config;
    sandbox_config_init (&config);
    config.cgroup_name = cgroup_name;
    char *output;
    int status;
    bool oom;

    //  Bad configs fail cleanly
    const char *missing [] = { "/nonexistent/python", NULL };
    config.argv = missing;
    assert (sandbox_new (&config) == NULL);
    const char *relative [] = { "python3", NULL };
    config.argv = relative;
    assert (sandbox_new (&config) == NULL);
    config.argv = NULL;
    config.layer_dir = "/nonexistent";
    assert (sandbox_new (&config) == NULL);
    config.layer_dir = NULL;

    //  Identity, fds and environment inside
    s_expect (&config, "identity",
        "import os\n"
        "fds = []\n"
        "for fd in range(256):\n"
        "    try: os.fstat(fd); fds.append(fd)\n"
        "    except OSError: pass\n"
        "out = '%d %d %d %d %s %s %s' % (os.getuid(), os.getgid(), os.getpid(), os.getppid(),\n"
        "    fds, sorted(os.environ), os.uname().nodename)\n"
        "os.write(3, out.encode())\n",
        "1000 1000 2 1 [0, 1, 2, 3] ['HOME', 'LANG', 'PATH', 'PYTHONDONTWRITEBYTECODE'] clowdy",
        verbose);

    //  Only our files are visible
    char expected_root [256] = "['bin', 'dev', 'etc', 'lib', ";
    if (access ("/lib32", F_OK) == 0)
        strcat (expected_root, "'lib32', ");
    if (access ("/lib64", F_OK) == 0)
        strcat (expected_root, "'lib64', ");
    if (access ("/libx32", F_OK) == 0)
        strcat (expected_root, "'libx32', ");
    strcat (expected_root, "'opt', 'proc', 'sbin', 'tmp', 'usr']");
    char *expected = zsys_sprintf ("%s ['group', 'hosts', 'nsswitch.conf', 'passwd'] ['clowdy'] "
                                   "['fd', 'null', 'random', 'shm', 'stderr', 'stdin', 'stdout', 'urandom', 'zero'] "
                                   "FileNotFoundError FileNotFoundError FileNotFoundError ['2'] 1",
                                   expected_root);
    s_expect (&config, "files",
        "import os\n"
        "def tryopen(path):\n"
        "    try: open(path).read(); return 'readable'\n"
        "    except Exception as e: return type(e).__name__\n"
        "procs = sorted(p for p in os.listdir('/proc') if p.isdigit())\n"
        "out = '%s %s %s %s %s %s %s %s %d' % (sorted(os.listdir('/')), sorted(os.listdir('/etc')),\n"
        "    sorted(os.listdir('/opt')), sorted(os.listdir('/dev')), tryopen('/etc/shadow'),\n"
        "    tryopen('" CLOWDY_SOURCE_DIR "/CMakeLists.txt'), tryopen('/root/.bashrc'), procs,\n"
        "    os.path.exists('/opt/clowdy/runner.py') or 1)\n"
        "os.write(3, out.encode())\n",
        expected, verbose);
    free (expected);

    //  The mount tables inside name no host path: not the source tree the
    //  runner comes from, not the build dir, not where roots are mounted
    char build_dir [PATH_MAX] = "";
    ssize_t build_len = readlink ("/proc/self/exe", build_dir, sizeof build_dir - 1);
    build_dir [build_len > 0? build_len: 0] = 0;
    if (strrchr (build_dir, '/'))
        *strrchr (build_dir, '/') = 0;
    char *mounts_program = zsys_sprintf (
        "import os\n"
        "bad = [line for name in ['/proc/self/mountinfo', '/proc/self/mounts']\n"
        "       for line in open(name).read().splitlines()\n"
        "       if any(path in line for path in ['%s', '%s', '%s'])]\n"
        "os.write(3, (str(bad) + ' ' + open('/opt/clowdy/runner.py').read(9)).encode())\n",
        CLOWDY_SOURCE_DIR, s_newroot, *build_dir? build_dir: s_newroot);
    s_expect (&config, "mount tables", mounts_program, "[] \"\"\"Clowdy", verbose);
    zstr_free (&mounts_program);

    //  A layer dir shows read-only at /opt/layer (first clean up after test
    //  runs that died with their layer's tmpfs mounted)
    FILE *mounts = fopen ("/proc/self/mounts", "r");
    if (mounts) {
        char line [1024];
        while (fgets (line, sizeof line, mounts)) {
            int pid;
            char stale [128];
            if (sscanf (line, "%*s /tmp/clowdy-layer-%d/sub", &pid) == 1 && pid != getpid ()
            &&  kill (pid, 0) && errno == ESRCH) {
                snprintf (stale, sizeof stale, "/tmp/clowdy-layer-%d/sub", pid);
                umount (stale);
                rmdir (stale);
                *strrchr (stale, '/') = 0;
                snprintf (stale + strlen (stale), sizeof stale - strlen (stale), "/mod.py");
                unlink (stale);
                *strrchr (stale, '/') = 0;
                rmdir (stale);
            }
        }
        fclose (mounts);
    }
    char *layer = zsys_sprintf ("/tmp/clowdy-layer-%d", getpid ());
    char *layer_file = zsys_sprintf ("%s/mod.py", layer);
    assert (mkdir (layer, 0755) == 0);
    FILE *handle = fopen (layer_file, "w");
    assert (handle);
    fprintf (handle, "VALUE = 42\n");
    fclose (handle);
    config.layer_dir = layer;
    //  It is an overlay named through /proc/self/fd: mountinfo does not name
    //  its host path (a bind would)
    char *layer_program = zsys_sprintf (
        "import os, sys, errno\n"
        "sys.path.insert(0, '/opt/layer')\n"
        "import mod\n"
        "try: open('/opt/layer/x', 'w'); res = 'WROTE'\n"
        "except OSError as e: res = errno.errorcode[e.errno]\n"
        "named = [line for line in open('/proc/self/mountinfo') if '%s' in line]\n"
        "kind = [line.split(' - ')[1].split()[0] for line in open('/proc/self/mountinfo') if ' /opt/layer ' in line]\n"
        "kind = 'overlay %%s' %% named if kind == ['overlay'] else 'bind'\n"
        "os.write(3, ('%%d %%s %%s %%s' %% (mod.VALUE, res, sorted(os.listdir('/opt')), kind)).encode())\n",
        layer);
    //  (a kernel without overlayfs gets the bind, whose root names the path)
    s_expect (&config, s_overlay? "layer": "layer (no overlayfs: bound)", layer_program,
              s_overlay? "42 EROFS ['clowdy', 'layer'] overlay []":
                         "42 EROFS ['clowdy', 'layer'] bind", verbose);
    zstr_free (&layer_program);
    //  With a world-writable mount inside it, which must be read-only too:
    //  overlay refuses a layer with mounts below it that a user namespace
    //  may not reveal, and the sandbox falls back to a recursive bind
    char *layer_sub = zsys_sprintf ("%s/sub", layer);
    assert (mkdir (layer_sub, 0755) == 0);
    assert (mount ("tmpfs", layer_sub, "tmpfs", 0, "size=1m,mode=1777") == 0);
    s_expect (&config, "layer with a mount inside",
        "import os, sys, errno\n"
        "sys.path.insert(0, '/opt/layer')\n"
        "import mod\n"
        "res = []\n"
        "for path in ['/opt/layer/x', '/opt/layer/sub/x']:\n"
        "    try: open(path, 'w'); res.append('WROTE')\n"
        "    except OSError as e: res.append(errno.errorcode[e.errno])\n"
        "os.write(3, ('%d %s %s' % (mod.VALUE, res, sorted(os.listdir('/opt')))).encode())\n",
        "42 ['EROFS', 'EROFS'] ['clowdy', 'layer']", verbose);
    config.layer_dir = NULL;
    assert (umount (layer_sub) == 0);
    rmdir (layer_sub);
    zstr_free (&layer_sub);
    unlink (layer_file);
    rmdir (layer);
    zstr_free (&layer_file);
    zstr_free (&layer);

    //  Writes outside /tmp fail; /tmp works
    s_expect (&config, "read-only",
        "import os, errno\n"
        "res = []\n"
        "for path in ['/x', '/etc/passwd', '/etc/new', '/usr/x', '/opt/clowdy/x', '/dev/x', '/proc/x']:\n"
        "    try: open(path, 'a').write('x'); res.append('WROTE ' + path)\n"
        "    except OSError as e: res.append(errno.errorcode[e.errno])\n"
        "open('/tmp/ok', 'w').write('hello')\n"
        "res.append(open('/tmp/ok').read())\n"
        "os.write(3, ' '.join(sorted(set(res))).encode())\n",
        "EACCES ENOENT EROFS hello", verbose);

    //  /tmp fills up at its cap
    config.tmp_mb = 8;
    s_expect (&config, "fill /tmp (8 MB)",
        "import os, errno\n"
        "total = 0\n"
        "try:\n"
        "    with open('/tmp/fill', 'wb') as f:\n"
        "        while True:\n"
        "            f.write(b'x' * 65536); f.flush(); total += 65536\n"
        "except OSError as e:\n"
        "    os.write(3, ('%s %s' % (errno.errorcode[e.errno], 7 << 20 <= total <= 8 << 20)).encode())\n",
        "ENOSPC True", verbose);
    config.tmp_mb = 0;

    //  Seccomp and capabilities: ptrace, mount, unshare, setns, keyctl all EPERM
    s_expect (&config, "denied syscalls",
        "import ctypes, os, errno\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "def err(rc): return errno.errorcode.get(ctypes.get_errno(), '?') if rc == -1 else 'OK'\n"
        "res = [err(libc.ptrace(0, 0, 0, 0)),\n"
        "       err(libc.mount(b'none', b'/tmp', b'tmpfs', 0, None)),\n"
        "       err(libc.unshare(0x10000000)), err(libc.unshare(0x00020000)),\n"
        "       err(libc.setns(3, 0)), err(libc.syscall(250, 0, 0, 0, 0, 0)),\n"
        "       err(libc.chroot(b'/tmp')), err(libc.syscall(321, 0, 0, 0))]\n"
        "try: os.setuid(0); res.append('SETUID')\n"
        "except OSError as e: res.append(errno.errorcode[e.errno])\n"
        "try: os.kill(1, 9); res.append('KILLED INIT')\n"
        "except OSError as e: res.append(errno.errorcode[e.errno])\n"
        "os.write(3, ' '.join(sorted(set(res))).encode())\n",
        "EPERM", verbose);

#if defined (__x86_64__)
    //  An allow list: calls it does not name fail with ENOSYS, among them
    //  every number newer than libseccomp (open_tree_attr, 467), x32's
    //  numbering, and numbers no kernel has; open_tree (428) is refused on
    //  purpose. Raw x86_64 numbers, with arguments that would do something.
    s_expect (&config, "unlisted syscalls",
        "import ctypes, os, errno\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "libc.syscall.restype = ctypes.c_long\n"
        "def err(n, *a):\n"
        "    ctypes.set_errno(0)\n"
        "    rc = libc.syscall(ctypes.c_long(n), *[ctypes.c_long(x) for x in a])\n"
        "    return errno.errorcode.get(ctypes.get_errno(), '?') if rc == -1 else 'OK'\n"
        "unknown = set(err(n, -100, 0, 1, 0, 0) for n in list(range(457, 471)) + [0x40000027, 1000])\n"
        "os.write(3, ('%s %s %s' % (sorted(unknown), err(467, -100, 0, 1, 0, 0), err(428, -100, 0, 1))).encode())\n",
        "['ENOSYS'] ENOSYS EPERM", verbose);
#endif

    //  Network off: only AF_UNIX sockets; AF_VSOCK however the family is
    //  spelt (the kernel reads an int: high bits must not hide it)
    s_expect (&config, "network off",
        "import socket, os, ctypes, errno\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "res = []\n"
        "for family in [socket.AF_INET, socket.AF_INET6, socket.AF_NETLINK, socket.AF_PACKET, socket.AF_VSOCK]:\n"
        "    try: socket.socket(family, socket.SOCK_DGRAM if family != socket.AF_NETLINK else socket.SOCK_RAW); res.append('OPEN')\n"
        "    except OSError as e: res.append(errno.errorcode[e.errno])\n"
        "a, b = socket.socketpair(); res.append('unix ok')\n"
        "os.write(3, ' '.join(res).encode())\n",
        "EAFNOSUPPORT EAFNOSUPPORT EAFNOSUPPORT EAFNOSUPPORT EAFNOSUPPORT unix ok", verbose);

    //  Network on: slirp4netns gives tap0 and outbound, not the host's loopback
    int loop_port, any_port;
    int loop_fd = s_listen ("127.0.0.1", &loop_port);
    int any_fd = s_listen ("0.0.0.0", &any_port);
    //  The host's address, another address on its subnet, and its gateway
    char host_address [INET_ADDRSTRLEN] = "", neighbour [INET_ADDRSTRLEN] = "",
         gateway [INET_ADDRSTRLEN] = "";
    struct ifaddrs *interfaces;
    if (getifaddrs (&interfaces) == 0) {
        for (struct ifaddrs *item = interfaces; item; item = item->ifa_next)
            if (item->ifa_addr && item->ifa_addr->sa_family == AF_INET && item->ifa_netmask
            &&  !(item->ifa_flags & IFF_LOOPBACK) && (item->ifa_flags & IFF_UP) && !*host_address) {
                struct in_addr address = ((struct sockaddr_in *) item->ifa_addr)->sin_addr;
                uint32_t mask = ntohl (((struct sockaddr_in *) item->ifa_netmask)->sin_addr.s_addr);
                inet_ntop (AF_INET, &address, host_address, sizeof host_address);
                uint32_t other = (ntohl (address.s_addr) & mask) | (77 & ~mask);
                struct in_addr other_address = { htonl (other) };
                if (other != ntohl (address.s_addr) && (~mask) > 77)
                    inet_ntop (AF_INET, &other_address, neighbour, sizeof neighbour);
            }
        freeifaddrs (interfaces);
    }
    FILE *routes = fopen ("/proc/net/route", "re");
    char route [512];
    while (routes && fgets (route, sizeof route, routes) && !*gateway) {
        unsigned int destination, gateway_address, flags;
        if (sscanf (route, "%*s %x %x %x", &destination, &gateway_address, &flags) == 3
        &&  (flags & RTF_GATEWAY) && gateway_address) {
            struct in_addr address = { gateway_address };
            inet_ntop (AF_INET, &address, gateway, sizeof gateway);
        }
    }
    if (routes)
        fclose (routes);
    char *program = zsys_sprintf (
        "import socket, os, ctypes, errno\n"
        "def conn(host, port):\n"
        "    s = socket.socket(); s.settimeout(2)\n"
        "    try: s.connect((host, port)); return 'CONNECTED'\n"
        "    except OSError as e: return 'refused'\n"
        "res = [conn('10.0.2.2', %d), conn('127.0.0.1', %d)]\n"
        "res.append(conn('%s', %d) if '%s' else 'refused')\n"
        "res += [conn('169.254.169.254', 80), conn('192.168.1.1', 80), conn('10.1.2.3', 80)]\n"
        "res.append(str(sorted(n for i, n in socket.if_nameindex())))\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "def vsock(family):\n"
        "    rc = libc.syscall(ctypes.c_long(41), ctypes.c_long(family), ctypes.c_long(1), ctypes.c_long(0))\n"
        "    return 'VSOCK' if rc >= 0 else errno.errorcode[ctypes.get_errno()]\n"
        "res += [vsock(socket.AF_VSOCK), vsock((1 << 32) | socket.AF_VSOCK)]\n"
        "import ipaddress, errno\n"
        "def blocked(host, aliased=True):\n"
        "    if not host: return 'blocked'\n"
        "    s = socket.socket(); s.settimeout(2)\n"
        "    try: s.connect((host, 80)); return 'CONNECTED'\n"
        "    except OSError as e:\n"
        "        if e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH): return 'blocked'\n"
        "        if aliased and ipaddress.ip_address(host) in ipaddress.ip_network('10.0.2.0/24') and e.errno == errno.ECONNREFUSED: return 'blocked'\n"
        "        return errno.errorcode.get(e.errno, str(e))\n"
        "res.append(blocked('10.0.2.3', False))\n"
        //  The routes themselves: a UDP connect sends nothing, so only the
        //  sandbox's route table can refuse it (a TCP connect to a host that
        //  is not there fails through slirp as well, blocked or not)
        "def routed(host, port=80):\n"
        "    if not host: return 'none'\n"
        "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "    try: s.connect((host, port)); return 'routed'\n"
        "    except OSError as e:\n"
        "        if e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH): return 'blocked'\n"
        "        return errno.errorcode.get(e.errno, str(e))\n"
        "res += [routed(h) for h in ('%s', '%s', '%s', '169.254.169.254', '192.168.1.1', '10.1.2.3',\n"
        "                            '172.16.0.1', '100.64.0.1', '10.0.2.3')]\n"
        "res += [routed('10.0.2.3', 53), routed('203.0.113.5')]\n"
        "os.write(3, ' '.join(res).encode())\n",
        loop_port, loop_port, host_address, any_port, host_address, host_address, neighbour, gateway);
    //  What the host has: a host on no LAN has no neighbour or gateway to
    //  block; on qemu's user network (10.0.2.0/24) slirp answers for them
    char *network_expected = zsys_sprintf (
        "refused refused refused refused refused refused ['lo', 'tap0'] EAFNOSUPPORT EAFNOSUPPORT "
        "blocked %s %s %s blocked blocked blocked blocked blocked blocked routed %s",
        s_route_expected (host_address), s_route_expected (neighbour), s_route_expected (gateway),
        //  Outside every blocked range, unless this host is on that network
        strncmp (host_address, "203.0.113.", 10)? "routed": "blocked");
    config.network = true;
    start = zclock_usecs ();
    //  This thread enters the sandbox's cgroup to start it and slirp4netns,
    //  and must be back in its own afterwards, whether or not that worked
    char home_before [4096], home_after [4096];
    assert (s_read_file ("/proc/thread-self/cgroup", home_before, sizeof home_before) > 0);
    //  Neither the host (loopback, its own addresses) nor private, link-local
    //  (cloud metadata) or LAN ranges; outbound elsewhere goes through tap0
    s_expect (&config, "network on", program, network_expected, verbose);
    assert (s_read_file ("/proc/thread-self/cgroup", home_after, sizeof home_after) > 0);
    assert (streq (home_before, home_after));
    char *path = strdup (getenv ("PATH") ? getenv ("PATH") : "/usr/bin:/bin");
    setenv ("PATH", "/nonexistent", 1);         //  slirp4netns cannot start now
    config.argv = (const char *[]) { "/usr/bin/python3", "-c", "pass", NULL };
    sandbox_t *broken = sandbox_new (&config);
    setenv ("PATH", path, 1);
    free (path);
    assert (broken == NULL);
    assert (s_read_file ("/proc/thread-self/cgroup", home_after, sizeof home_after) > 0);
    assert (streq (home_before, home_after));
    if (verbose)
        printf (" (host address %s, a neighbour %s, gateway %s, whole run %.1f ms)",
                *host_address? host_address: "none", *neighbour? neighbour: "none",
                *gateway? gateway: "none", (zclock_usecs () - start) / 1000.0);
    config.network = false;
    zstr_free (&program);
    zstr_free (&network_expected);
    close (loop_fd);
    close (any_fd);

    //  Memory bomb: killed by the OOM killer, and we can tell
    config.memory_mb = 64;
    output = s_run (&config,
        "import os\n"
        "os.write(3, b'start')\n"
        "hog = []\n"
        "while True: hog.append(bytearray(8 << 20))\n", &status, &oom);
    assert (streq (output, "start"));
    assert (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL);
    assert (oom);
    free (output);
    //  ... and a program under the limit is not
    output = s_run (&config,
        "import os\n"
        "hog = bytearray(32 << 20)\n"
        "os.write(3, b'fine')\n", &status, &oom);
    assert (streq (output, "fine") && WIFEXITED (status) && !oom);
    free (output);
    if (verbose)
        printf ("\n   - memory bomb at 64 MB: OOM-killed; 32 MB allocation fine");

    //  sandbox_set_memory raises the limit of a live sandbox
    {
        const char *argv [] = { "/usr/bin/python3", "-I", "-c",
            "import os\n"
            "os.read(3, 1)\n"
            "hog = bytearray(100 << 20)\n"
            "os.write(3, b'big')\n", NULL };
        config.argv = argv;
        sandbox_t *sandbox = sandbox_new (&config);
        config.argv = NULL;
        assert (sandbox);
        assert (sandbox_set_memory (sandbox, 256) == 0);
        assert (write (sandbox_fd (sandbox), "g", 1) == 1);
        char buffer [8] = "";
        struct pollfd poller = { sandbox_fd (sandbox), POLLIN, 0 };
        assert (poll (&poller, 1, TEST_TIMEOUT_MS) == 1);
        assert (read (sandbox_fd (sandbox), buffer, 3) == 3);
        assert (memcmp (buffer, "big", 3) == 0);
        assert (sandbox_reap (sandbox, true));
        assert (!sandbox_oom_killed (sandbox));
        assert (sandbox_memory_peak (sandbox) >= 100 << 20);
        if (verbose)
            printf ("\n   - raised to 256 MB live: 100 MB allocation fine, peak %" PRId64 " MB",
                    sandbox_memory_peak (sandbox) >> 20);
        sandbox_destroy (&sandbox);
    }
    config.memory_mb = 0;

    //  sandbox_set_cpus lowers the quota of a live sandbox started at a
    //  whole CPU (the worker's start-up quota): its busy loop then gets at
    //  most about 0.2 CPU (only the upper bound is strict: the host is busy)
    {
        const char *argv [] = { "/usr/bin/python3", "-I", "-S", "-c",
            "import os, time\n"
            "os.read(3, 1)\n"
            "start = time.monotonic(); cpu = time.process_time()\n"
            "while time.monotonic() - start < 1.0: pass\n"
            "os.write(3, ('%.3f' % (time.process_time() - cpu)).encode())\n", NULL };
        config.argv = argv;
        config.cpus = SANDBOX_STARTUP_CPUS;
        sandbox_t *sandbox = sandbox_new (&config);
        config.argv = NULL;
        config.cpus = 0;
        assert (sandbox);
        assert (sandbox_set_cpus (sandbox, 0.2) == 0);
        assert (write (sandbox_fd (sandbox), "g", 1) == 1);
        char buffer [16] = "";
        struct pollfd poller = { sandbox_fd (sandbox), POLLIN, 0 };
        assert (poll (&poller, 1, TEST_TIMEOUT_MS) == 1);
        assert (read (sandbox_fd (sandbox), buffer, sizeof buffer - 1) > 0);
        double used = atof (buffer);
        assert (used > 0.0 && used < 0.3);
        if (verbose)
            printf ("\n   - started at 1 CPU, lowered to 0.2 live: a 1 s busy loop used %.3f s", used);
        assert (sandbox_reap (sandbox, true));
        assert (sandbox_set_cpus (sandbox, 0.5) == -1);     //  gone: nothing to set
        sandbox_destroy (&sandbox);
    }

    //  An urgent sandbox's cgroup has ten times the default CPU weight until
    //  sandbox_set_urgent (false); on_cgroup names that cgroup before any
    //  process is in it, and sandbox_cpu_dir_urgent works through the name
    {
        const char *argv [] = { "/usr/bin/python3", "-I", "-S", "-c", "import os\nos.read(3, 1)\n", NULL };
        s_test_cgroup_t seen = { "", -1 };
        config.argv = argv;
        config.urgent = true;
        config.on_cgroup = s_test_on_cgroup;
        config.on_cgroup_arg = &seen;
        sandbox_t *sandbox = sandbox_new (&config);
        config.urgent = false;
        config.on_cgroup = NULL;
        config.on_cgroup_arg = NULL;
        assert (sandbox);
        assert (streq (seen.dir, cgroup_cpu_dir (sandbox->cgroup)));
        assert (seen.processes == 0);
        int urgent = s_test_weight (seen.dir);
        assert (sandbox_set_urgent (sandbox, false) == 0);
        int normal = s_test_weight (seen.dir);
        assert (normal > 0 && urgent == 10 * normal);
        assert (sandbox_cpu_dir_urgent (seen.dir) == 0);
        assert (s_test_weight (seen.dir) == urgent);
        sandbox_destroy (&sandbox);
        //  Not urgent: the default, whatever the recycled cgroup had. On v1
        //  the urgent one's cgroup comes back from the pool (first in, first
        //  out) within POOL_MAX + 1 sandboxes; v2 never reuses a cgroup
        char urgent_dir [PATH_MAX];
        snprintf (urgent_dir, sizeof urgent_dir, "%s", seen.dir);
        bool reused = false;
        for (int attempt = 0; attempt <= POOL_MAX + 1 && !reused; attempt++) {
            sandbox = sandbox_new (&config);
            assert (sandbox);
            assert (s_test_weight (cgroup_cpu_dir (sandbox->cgroup)) == normal);
            reused = streq (cgroup_cpu_dir (sandbox->cgroup), urgent_dir);
            sandbox_destroy (&sandbox);
        }
        config.argv = NULL;
        assert (reused || cgroup_system_init () == 2);
        if (verbose)
            printf ("\n   - urgent: CPU weight %d, then %d%s", urgent, normal,
                    reused? ", and the default again when its cgroup was reused": "");
    }

    //  Fork bomb: the pids cap holds, the sandbox stays killable
    {
        config.pids = 16;
        const char *argv [] = { "/usr/bin/python3", "-I", "-c",
            "import os, time\n"
            "n = 0\n"
            "try:\n"
            "    while True:\n"
            "        if os.fork() == 0:\n"
            "            time.sleep(1000); os._exit(0)\n"
            "        n += 1\n"
            "except OSError as e:\n"
            "    os.write(3, ('capped %d' % n).encode())\n"
            "time.sleep(1000)\n", NULL };
        config.argv = argv;
        sandbox_t *sandbox = sandbox_new (&config);
        config.argv = NULL;
        assert (sandbox);
        char buffer [32] = "";
        struct pollfd poller = { sandbox_fd (sandbox), POLLIN, 0 };
        assert (poll (&poller, 1, TEST_TIMEOUT_MS) == 1);
        assert (read (sandbox_fd (sandbox), buffer, sizeof buffer - 1) > 0);
        assert (strncmp (buffer, "capped ", 7) == 0);
        assert (atoi (buffer + 7) < 16);
        start = zclock_usecs ();
        assert (sandbox_kill (sandbox) == 0);
        assert (sandbox_kill (sandbox) == 0);
        assert (sandbox_reap (sandbox, true));
        assert (!sandbox_oom_killed (sandbox));
        if (verbose)
            printf ("\n   - fork bomb: %s, killed and reaped in %.1f ms", buffer,
                    (zclock_usecs () - start) / 1000.0);
        sandbox_destroy (&sandbox);
        config.pids = 0;
    }

    //  Init reaps orphans: 100 double forks under a cap of 16 pids
    s_expect (&config, "zombies reaped",
        "import os, time\n"
        "for i in range(100):\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        if os.fork() == 0: os._exit(0)\n"
        "        os._exit(0)\n"
        "    os.waitpid(pid, 0)\n"
        "os.write(3, b'100 forks')\n", "100 forks", verbose);

    //  Background processes die with the main process
    {
        const char *argv [] = { "/usr/bin/python3", "-I", "-c",
            "import os, time\n"
            "if os.fork() == 0:\n"
            "    os.setsid(); time.sleep(1000)\n"
            "os.write(3, b'left a child')\n", NULL };
        config.argv = argv;
        sandbox_t *sandbox = sandbox_new (&config);
        config.argv = NULL;
        assert (sandbox);
        start = zclock_usecs ();
        assert (sandbox_reap (sandbox, true));
        assert (WIFEXITED (sandbox_exit_status (sandbox)));
        if (verbose)
            printf ("\n   - background child killed with the runner (%.1f ms)",
                    (zclock_usecs () - start) / 1000.0);
        sandbox_destroy (&sandbox);
    }

    //  Host uids are unprivileged; sandbox_kill ends a live process
    {
        const char *argv [] = { "/usr/bin/python3", "-I", "-c",
            "import os, time\n"
            "os.write(3, b'up'); time.sleep(1000)\n", NULL };
        config.argv = argv;
        sandbox_t *sandbox = sandbox_new (&config);
        config.argv = NULL;
        assert (sandbox);
        char buffer [4];
        struct pollfd poller = { sandbox_fd (sandbox), POLLIN, 0 };
        assert (poll (&poller, 1, TEST_TIMEOUT_MS) == 1);
        assert (read (sandbox_fd (sandbox), buffer, 2) == 2);
        int init_uid = s_host_uid (sandbox_pid (sandbox));
        assert (init_uid >= HOST_ID_BASE);
        char path [64];
        snprintf (path, sizeof path, "/proc/%d/task/%d/children", sandbox_pid (sandbox), sandbox_pid (sandbox));
        int user_uid = -1;
        FILE *file = fopen (path, "r");
        if (file) {
            int user_pid = 0;
            if (fscanf (file, "%d", &user_pid) == 1)
                user_uid = s_host_uid (user_pid);
            fclose (file);
            assert (user_uid == init_uid + SANDBOX_UID);
        }
        assert (sandbox_kill (sandbox) == 0);
        assert (sandbox_reap (sandbox, true));
        assert (WIFSIGNALED (sandbox_exit_status (sandbox)));
        assert (!sandbox_oom_killed (sandbox));
        if (verbose)
            printf ("\n   - host uids: init %d, process %d", init_uid, user_uid);
        sandbox_destroy (&sandbox);
    }

    //  Pid 1 is clowdy-sandbox-init when built; the sandbox dies with the
    //  thread that created it (PR_SET_PDEATHSIG survives the exec)
    {
        pthread_t thread;
        sandbox_t *sandbox = NULL;
        assert (pthread_create (&thread, NULL, s_thread_sandbox, &config) == 0);
        assert (pthread_join (thread, (void **) &sandbox) == 0);
        assert (sandbox);
        start = zclock_usecs ();
        bool dead = false;
        while (!dead && zclock_usecs () - start < 5000000) {
            dead = sandbox_reap (sandbox, false);
            if (!dead)
                zclock_sleep (1);
        }
        assert (dead);
        assert (WIFSIGNALED (sandbox_exit_status (sandbox)));
        if (verbose)
            printf ("\n   - creating thread exited: sandbox dead in %.1f ms",
                    (zclock_usecs () - start) / 1000.0);
        sandbox_destroy (&sandbox);

        const char *argv [] = { "/usr/bin/python3", "-I", "-c",
            "import os, time\n"
            "os.write(3, b'up'); time.sleep(1000)\n", NULL };
        config.argv = argv;
        sandbox = sandbox_new (&config);
        config.argv = NULL;
        assert (sandbox);
        char buffer [4];
        struct pollfd poller = { sandbox_fd (sandbox), POLLIN, 0 };
        assert (poll (&poller, 1, TEST_TIMEOUT_MS) == 1);
        assert (read (sandbox_fd (sandbox), buffer, 2) == 2);
        char path [64], exe [PATH_MAX] = "";
        snprintf (path, sizeof path, "/proc/%d/exe", sandbox_pid (sandbox));
        start = zclock_usecs ();
        while (zclock_usecs () - start < 1000000) {
            ssize_t len = readlink (path, exe, sizeof exe - 1);
            exe [len > 0? len: 0] = 0;
            if (strstr (exe, "clowdy-sandbox-init"))
                break;
            zclock_sleep (1);
        }
        if (s_init_fd >= 0)
            assert (strstr (exe, "clowdy-sandbox-init"));
        if (verbose)
            printf ("\n   - pid 1: %s, resident %d kB", exe, s_host_rss_kb (sandbox_pid (sandbox)));
        sandbox_destroy (&sandbox);
    }

    //  Four threads creating sandboxes at once
    {
        pthread_t threads [4];
        start = zclock_usecs ();
        for (int index = 0; index < 4; index++)
            assert (pthread_create (&threads [index], NULL, s_thread_churn, &config) == 0);
        intptr_t failures = 0;
        for (int index = 0; index < 4; index++) {
            void *result;
            assert (pthread_join (threads [index], &result) == 0);
            failures += (intptr_t) result;
        }
        assert (failures == 0);
        if (verbose)
            printf ("\n   - 4 threads x 5 sandboxes (one with network each): %.1f ms",
                    (zclock_usecs () - start) / 1000.0);
    }

    //  One sandbox's /tmp is not another's
    {
        const char *argv [] = { "/usr/bin/python3", "-I", "-c",
            "import os, time\n"
            "open('/tmp/secret', 'w').write('mine')\n"
            "os.write(3, b'written'); time.sleep(1000)\n", NULL };
        config.argv = argv;
        sandbox_t *first = sandbox_new (&config);
        config.argv = NULL;
        assert (first);
        char buffer [8];
        struct pollfd poller = { sandbox_fd (first), POLLIN, 0 };
        assert (poll (&poller, 1, TEST_TIMEOUT_MS) == 1);
        assert (read (sandbox_fd (first), buffer, 7) == 7);
        s_expect (&config, "other /tmp",
            "import os\n"
            "os.write(3, str(os.listdir('/tmp')).encode())\n", "[]", verbose);
        sandbox_destroy (&first);
    }

    //  CPU quota: a busy loop gets at most about 0.5 CPU (less when the
    //  host is busy, so only the upper bound is strict)
    output = s_run (&config,
        "import os, time\n"
        "start = time.monotonic(); cpu = time.process_time()\n"
        "while time.monotonic() - start < 1.0: pass\n"
        "os.write(3, ('%.3f' % (time.process_time() - cpu)).encode())\n", &status, NULL);
    double used = atof (output);
    if (verbose)
        printf ("\n   - cpu quota 0.5: a 1 s busy loop used %.3f s of CPU", used);
    assert (used > 0.02 && used < 0.6);
    free (output);

    //  Latency: sandbox_new alone, and sandbox_new to the first byte
    int runs = 50;
    int64_t news [50], firsts [50], cpus [50];
    const char *argv [] = { "/usr/bin/python3", "-I", "-S", "-c", "import os; os.write(3, b'x')", NULL };
    config.argv = argv;
    for (int run = 0; run < runs; run++) {
        struct timespec cpu_start, cpu_end;
        clock_gettime (CLOCK_THREAD_CPUTIME_ID, &cpu_start);
        start = zclock_usecs ();
        sandbox_t *sandbox = sandbox_new (&config);
        assert (sandbox);
        news [run] = zclock_usecs () - start;
        clock_gettime (CLOCK_THREAD_CPUTIME_ID, &cpu_end);
        cpus [run] = (cpu_end.tv_sec - cpu_start.tv_sec) * 1000000
                   + (cpu_end.tv_nsec - cpu_start.tv_nsec) / 1000;
        struct pollfd poller = { sandbox_fd (sandbox), POLLIN, 0 };
        assert (poll (&poller, 1, TEST_TIMEOUT_MS) == 1);
        firsts [run] = zclock_usecs () - start;
        sandbox_destroy (&sandbox);
    }
    config.argv = NULL;
    qsort (news, runs, sizeof news [0], s_compare_int64);
    qsort (firsts, runs, sizeof firsts [0], s_compare_int64);
    qsort (cpus, runs, sizeof cpus [0], s_compare_int64);
    if (verbose)
        printf ("\n   - over %d runs: sandbox_new p50 %.2f ms (min %.2f, p90 %.2f), to first byte "
                "from python -I -S p50 %.2f ms (min %.2f, p90 %.2f)", runs,
                news [runs / 2] / 1000.0, news [0] / 1000.0, news [runs * 9 / 10] / 1000.0,
                firsts [runs / 2] / 1000.0, firsts [0] / 1000.0, firsts [runs * 9 / 10] / 1000.0);
    if (verbose) {
        double load [1] = { 0 };
        getloadavg (load, 1);
        printf ("\n   - sandbox_new CPU time in the calling thread p50 %.2f ms; host load average %.1f",
                cpus [runs / 2] / 1000.0, load [0]);
    }

    //  Zygotes: a runner sandbox comes from this thread's zygote, isolated
    //  the same way, is killed and waited for through its pidfd, outlives
    //  a retired zygote, and dies with a killed one
    sandbox_zygote_enable (true);
    sandbox_config_t runner;
    sandbox_config_init (&runner);
    runner.cgroup_name = cgroup_name;
    s_test_zygote_ready (&runner);
    sandbox_t *first = sandbox_new (&runner);
    assert (first && first->pidfd >= 0);
    assert (s_zygote_state == ZYGOTE_READY && s_zygote_pid > 0);
    pid_t first_zygote = s_zygote_pid;
    char text [4096];
    assert (s_test_frame (first, text, sizeof text));
    assert (strstr (text, "\"type\":\"ready\"") && strstr (text, "\"pid\":2"));
    //  Its pid 1 is the zygote's child, and the zygote has no host privilege
    char status_path [64];
    snprintf (status_path, sizeof status_path, "/proc/%d/status", (int) sandbox_pid (first));
    assert (s_status_field (status_path, "PPid:") == (long) first_zygote);
    assert (s_status_field (status_path, "Uid:") >= HOST_ID_BASE);
    snprintf (status_path, sizeof status_path, "/proc/%d/status", (int) first_zygote);
    assert (s_status_field (status_path, "Uid:") == SANDBOX_ZYGOTE_UID);
    assert (s_status_field (status_path, "CapEff:") == 0);
    //  A function that exits: its status comes through init's pipe
    s_test_send (first, "{\"type\":\"load\",\"function_name\":\"t\",\"version\":1,\"env\":{},"
                        "\"memory_limit_mb\":128,\"timeout_seconds\":5,"
                        "\"code\":\"import os\\nos._exit(7)\\n\"}");
    assert (sandbox_reap (first, true));
    assert (WIFEXITED (sandbox_exit_status (first)) && WEXITSTATUS (sandbox_exit_status (first)) == 7);
    sandbox_destroy (&first);
    //  Retired: the zygote takes no more requests, its sandbox lives on
    first = sandbox_new (&runner);
    assert (first && first->pidfd >= 0 && s_zygote_pid == first_zygote);
    s_zygote_drop (0, false);
    s_test_zygote_ready (&runner);
    sandbox_t *second = sandbox_new (&runner);
    assert (second && second->pidfd >= 0 && s_zygote_pid != first_zygote);
    assert (s_test_frame (first, text, sizeof text) && strstr (text, "\"ready\""));
    s_test_send (first, "{\"type\":\"ping\"}");
    assert (s_test_frame (first, text, sizeof text) && strstr (text, "\"pong\""));
    assert (!sandbox_reap (first, false));
    sandbox_destroy (&first);
    for (int attempt = 0; attempt < 500 && s_zygote_nretired; attempt++) {
        zclock_sleep (10);          //  it exits once its last sandbox has
        s_zygote_reap_retired ();
    }
    assert (s_zygote_nretired == 0);
    //  A zygote killed takes its sandboxes with it; the next sandbox is
    //  cloned here, and a zygote comes back after the retry delay
    assert (kill (s_zygote_pid, SIGKILL) == 0);
    assert (sandbox_reap (second, true));
    sandbox_destroy (&second);
    second = sandbox_new (&runner);
    assert (second && second->pidfd < 0 && s_zygote_state == ZYGOTE_FAILED);
    assert (s_test_frame (second, text, sizeof text) && strstr (text, "\"ready\""));
    sandbox_destroy (&second);
    //  Off: classic clones
    sandbox_zygote_stop ();
    sandbox_zygote_enable (false);
    second = sandbox_new (&runner);
    assert (second && second->pidfd < 0 && s_zygote_state == ZYGOTE_NONE);
    sandbox_destroy (&second);
    sandbox_zygote_enable (true);
    if (verbose)
        printf ("\n   - zygote: made, isolated, retired and killed as expected");

    sandbox_t *none = NULL;
    sandbox_destroy (&none);
    sandbox_system_shutdown ();
    if (verbose)
        printf ("\n   ");
    printf ("OK\n");
}
