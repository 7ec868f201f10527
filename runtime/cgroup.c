/*  =========================================================================
    cgroup - the sandbox's resource limits on cgroup v2 or v1

    Why: every sandbox needs a memory cap without swap, a CPU quota and a
    pids cap, and the OOM killer's verdict afterwards. Hosts have either the
    unified v2 hierarchy or the legacy v1 one (this development machine is
    v1), so there is one API and two small backends, chosen once at start-up.

    How: a backend is a table of knobs, each a (controller, file) pair. In v1
    each controller has its own directory (/sys/fs/cgroup/memory/clowdy/X,
    .../cpu/clowdy/X, .../pids/clowdy/X); in v2 all live in one directory
    (/sys/fs/cgroup/clowdy/X). A cgroup keeps its cgroup.procs files open so
    that attaching a process is one write per directory.

    CPU uses a short period (10 ms) so that a quota of 0.5 CPU throttles in
    5 ms slices rather than stalling a call for 50 ms of a 100 ms period.

    v2 only lets a cgroup's children have limits while it holds no
    processes itself, the real root excepted. In a container, the root of
    the cgroup namespace is the container's cgroup and holds its processes:
    they move into a leaf child (clowdy-leaf) first, as container inits do.
    tests/vm runs the v2 backend in a VM, at the root and in that case.

    Children are named "<server pid>-<sequence>"; cgroup_parent_prepare
    removes those whose server pid no longer runs, so a crashed server does
    not leave cgroups behind for ever.
    ========================================================================= */

#include <czmq.h>
#include <dirent.h>
#include "runtime/cgroup.h"

#define CGROUP_ROOT      "/sys/fs/cgroup"
#define CGROUP_LEAF      "clowdy-leaf"  //  v2: where a namespace root's processes go
#define CPU_PERIOD_US    10000          //  short period: see above
#define CPU_PERIOD_TEXT  "10000"        //  the same, for writing

//  Controllers, as indices into a cgroup's directories (v1)
enum { CTL_MEMORY, CTL_CPU, CTL_PIDS, CTL_COUNT };
static const char *s_controller_names [CTL_COUNT] = { "memory", "cpu", "pids" };

//  One backend: the files each knob lives in
typedef struct {
    int version;                    //  1 or 2
    const char *memory_max;         //  memory limit, bytes
    const char *swap_max;           //  swap (+memory in v1) limit, bytes
    const char *oom_file;           //  file holding the "oom_kill N" line
    const char *peak_file;          //  peak usage, bytes
    const char *pids_max;           //  pids limit
    const char *cpu_weight;         //  CPU weight among siblings
    const char *weight_default;     //  ... its default
    const char *weight_urgent;      //  ... ten times it
} backend_t;

static const backend_t s_backend_v1 = {
    1, "memory.limit_in_bytes", "memory.memsw.limit_in_bytes",
    "memory.oom_control", "memory.max_usage_in_bytes", "pids.max",
    "cpu.shares", "1024", "10240"
};
static const backend_t s_backend_v2 = {
    2, "memory.max", "memory.swap.max", "memory.events", "memory.peak", "pids.max",
    "cpu.weight", "100", "1000"
};

static const backend_t *s_backend = NULL;          //  chosen by cgroup_system_init
static pthread_mutex_t s_mutex = PTHREAD_MUTEX_INITIALIZER;
static unsigned int s_sequence = 0;                //  names new cgroups

struct _cgroup_t {
    char *parent;                   //  parent cgroup name, e.g. "clowdy"
    char *name;                     //  our name under the parent
    char *dirs [CTL_COUNT];         //  directory per controller (v2: all [0])
    int ndirs;                      //  3 in v1, 1 in v2
    int procs [CTL_COUNT];          //  open cgroup.procs per directory
    int peak_fd;                    //  the memory peak file, opened at its first read, or -1
    bool has_swap;                  //  the swap limit file exists
    char *home [CTL_COUNT];         //  tasks files of the thread, between enter and leave
    int memory_mb;                  //  limits last written (a recycled cgroup
    double cpus;                    //  usually gets the same ones again,
    int pids;                       //  which saves the writes); 0 = none yet
};

//  Directory holding a controller's files
static const char *
s_dir (cgroup_t *self, int controller)
{
    return self->dirs [self->ndirs == 1? 0: controller];
}

//  Write a string to dir/file. 0 or -errno.
static int
s_write (const char *dir, const char *file, const char *value)
{
    char path [PATH_MAX + 64];
    snprintf (path, sizeof path, "%s/%s", dir, file);
    int fd = open (path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = 0;
    ssize_t len = (ssize_t) strlen (value);
    if (write (fd, value, len) != len)
        rc = -errno;
    close (fd);
    return rc;
}

//  Read dir/file into buffer (NUL-terminated). Bytes read or -1.
static ssize_t
s_read (const char *dir, const char *file, char *buffer, size_t size)
{
    char path [PATH_MAX + 64];
    snprintf (path, sizeof path, "%s/%s", dir, file);
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t total = 0;
    while ((size_t) total < size - 1) {
        ssize_t rc = read (fd, buffer + total, size - 1 - total);
        if (rc <= 0)
            break;
        total += rc;
    }
    close (fd);
    buffer [total] = 0;
    return total;
}

static bool
s_valid_name (const char *name)
{
    if (!name || !*name || strlen (name) > 64 || streq (name, ".") || streq (name, ".."))
        return false;
    for (const char *c = name; *c; c++)
        if (!isalnum ((unsigned char) *c) && *c != '.' && *c != '_' && *c != '-')
            return false;
    return true;
}

//  v2: a controller list ("cpuset cpu io memory pids") names all three of
//  ours, as whole words ("cpu" is not "cpuset")
static bool
s_has_controllers (const char *list)
{
    char copy [256];
    snprintf (copy, sizeof copy, "%s", list);
    int found = 0;
    char *state = NULL;
    for (char *word = strtok_r (copy, " \n", &state); word; word = strtok_r (NULL, " \n", &state))
        found |= streq (word, "memory")? 1: streq (word, "cpu")? 2: streq (word, "pids")? 4: 0;
    return found == 7;
}

int
cgroup_system_init (void)
{
    pthread_mutex_lock (&s_mutex);
    if (!s_backend) {
        if (access (CGROUP_ROOT "/cgroup.controllers", F_OK) == 0) {
            char controllers [256];
            if (s_read (CGROUP_ROOT, "cgroup.controllers", controllers, sizeof controllers) > 0
            &&  s_has_controllers (controllers))
                s_backend = &s_backend_v2;
            else
                zsys_error ("cgroup: v2 hierarchy lacks memory, cpu or pids: '%s'", controllers);
        }
        else
        if (access (CGROUP_ROOT "/memory/memory.limit_in_bytes", F_OK) == 0
        &&  access (CGROUP_ROOT "/cpu/cpu.cfs_quota_us", F_OK) == 0
        &&  access (CGROUP_ROOT "/pids/cgroup.procs", F_OK) == 0)
            s_backend = &s_backend_v1;
        else
            zsys_error ("cgroup: no cgroup v2 nor v1 memory/cpu/pids under " CGROUP_ROOT);
        if (s_backend)
            zsys_info ("cgroup: using cgroup v%d under " CGROUP_ROOT, s_backend->version);
    }
    int version = s_backend? s_backend->version: -1;
    pthread_mutex_unlock (&s_mutex);
    return version;
}

//  Directory of a controller for a relative cgroup path; a path too long
//  for the buffer comes out empty, so it fails loudly instead of truncated
static void
s_path (char *buffer, size_t size, int controller, const char *relative)
{
    int length;
    if (s_backend->version == 2)
        length = snprintf (buffer, size, CGROUP_ROOT "/%s", relative);
    else
        length = snprintf (buffer, size, CGROUP_ROOT "/%s/%s", s_controller_names [controller], relative);
    if (length < 0 || (size_t) length >= size)
        buffer [0] = 0;
}

//  Remove children "<pid>-<n>" whose server pid is not running any more
static void
s_remove_stale (const char *parent)
{
    int ndirs = s_backend->version == 2? 1: CTL_COUNT;
    for (int ctl = 0; ctl < ndirs; ctl++) {
        char dir [PATH_MAX];
        s_path (dir, sizeof dir, ctl, parent);
        DIR *handle = opendir (dir);
        if (!handle)
            continue;
        struct dirent *entry;
        while ((entry = readdir (handle))) {
            int server_pid;
            unsigned int sequence;
            char tail;
            if (entry->d_type != DT_DIR
            ||  sscanf (entry->d_name, "%d-%u%c", &server_pid, &sequence, &tail) != 2
            ||  server_pid <= 0)
                continue;
            if (server_pid == getpid ()
            ||  kill (server_pid, 0) == 0 || errno != ESRCH)
                continue;
            char path [PATH_MAX + 256];
            snprintf (path, sizeof path, "%s/%s", dir, entry->d_name);
            if (rmdir (path) == 0)
                zsys_info ("cgroup: removed stale %s", path);
            else
                zsys_warning ("cgroup: cannot remove stale %s: %s", path, strerror (errno));
        }
        closedir (handle);
    }
}

//  v2: make memory, cpu and pids available to the children of dir. v2
//  refuses that while dir itself holds processes, unless dir is the real
//  root; the root of a cgroup namespace is not, and in a container it holds
//  the container's processes. Those move into a leaf child first, as
//  container inits do. 0 or -1.
static int
s_enable_controllers (const char *dir)
{
    char enabled [256];
    if (s_read (dir, "cgroup.subtree_control", enabled, sizeof enabled) >= 0 && s_has_controllers (enabled))
        return 0;
    int rc = s_write (dir, "cgroup.subtree_control", "+memory +cpu +pids");
    if (rc == -EBUSY) {
        char leaf [PATH_MAX + 32];
        snprintf (leaf, sizeof leaf, "%s/" CGROUP_LEAF, dir);
        if (mkdir (leaf, 0755) && errno != EEXIST) {
            zsys_error ("cgroup: cannot create %s: %s", leaf, strerror (errno));
            return -1;
        }
        //  cgroup.procs lists whole processes; moving one moves its threads
        int moved = 0;
        for (int round = 0; round < 10 && rc == -EBUSY; round++) {
            char procs [8192];
            if (s_read (dir, "cgroup.procs", procs, sizeof procs) < 0)
                break;
            char *state = NULL;
            for (char *line = strtok_r (procs, "\n", &state); line; line = strtok_r (NULL, "\n", &state))
                if (s_write (leaf, "cgroup.procs", line) == 0)
                    moved++;
            rc = s_write (dir, "cgroup.subtree_control", "+memory +cpu +pids");
        }
        zsys_info ("cgroup: moved %d processes from %s into %s so that its children can have limits",
                   moved, dir, leaf);
    }
    if (rc) {
        zsys_error ("cgroup: cannot enable memory, cpu and pids for the children of %s: %s",
                    dir, strerror (-rc));
        return -1;
    }
    return 0;
}

int
cgroup_parent_prepare (const char *parent)
{
    if (cgroup_system_init () < 0)
        return -1;
    if (!s_valid_name (parent)) {
        zsys_error ("cgroup: invalid parent name '%s'", parent? parent: "(null)");
        return -1;
    }
    if (s_backend->version == 2) {
        //  Let our parent and its children use the three controllers
        if (s_enable_controllers (CGROUP_ROOT))
            return -1;
        char dir [PATH_MAX];
        s_path (dir, sizeof dir, 0, parent);
        if (mkdir (dir, 0755) && errno != EEXIST) {
            zsys_error ("cgroup: cannot create %s: %s", dir, strerror (errno));
            return -1;
        }
        if (s_enable_controllers (dir))
            return -1;
    }
    else
        for (int ctl = 0; ctl < CTL_COUNT; ctl++) {
            char dir [PATH_MAX];
            s_path (dir, sizeof dir, ctl, parent);
            if (mkdir (dir, 0755) && errno != EEXIST) {
                zsys_error ("cgroup: cannot create %s: %s", dir, strerror (errno));
                return -1;
            }
            if (ctl == CTL_MEMORY)
                s_write (dir, "memory.use_hierarchy", "1");     //  old kernels
        }
    s_remove_stale (parent);
    return 0;
}

void
cgroup_parent_remove (const char *parent)
{
    if (!s_backend || !s_valid_name (parent))
        return;
    int ndirs = s_backend->version == 2? 1: CTL_COUNT;
    for (int ctl = 0; ctl < ndirs; ctl++) {
        char dir [PATH_MAX];
        s_path (dir, sizeof dir, ctl, parent);
        rmdir (dir);            //  fails while children exist: that is fine
    }
}

void
cgroup_remove_stale_parents (const char *prefix)
{
    if (cgroup_system_init () < 0 || !prefix)
        return;
    char dir [PATH_MAX];
    s_path (dir, sizeof dir, CTL_MEMORY, "");
    DIR *handle = opendir (dir);
    if (!handle)
        return;
    zlistx_t *stale = zlistx_new ();
    zlistx_set_destructor (stale, (zlistx_destructor_fn *) zstr_free);
    struct dirent *entry;
    size_t length = strlen (prefix);
    while ((entry = readdir (handle))) {
        int pid;
        char tail;
        if (entry->d_type == DT_DIR && strncmp (entry->d_name, prefix, length) == 0
        &&  sscanf (entry->d_name + length, "%d%c", &pid, &tail) == 1 && pid > 0
        &&  kill (pid, 0) && errno == ESRCH && s_valid_name (entry->d_name))
            zlistx_add_end (stale, strdup (entry->d_name));
    }
    closedir (handle);
    for (char *name = (char *) zlistx_first (stale); name; name = (char *) zlistx_next (stale)) {
        s_remove_stale (name);
        cgroup_parent_remove (name);
    }
    zlistx_destroy (&stale);
}

cgroup_t *
cgroup_new (const char *parent)
{
    if (cgroup_system_init () < 0 || !s_valid_name (parent))
        return NULL;
    cgroup_t *self = (cgroup_t *) zmalloc (sizeof (cgroup_t));
    pthread_mutex_lock (&s_mutex);
    unsigned int sequence = ++s_sequence;
    pthread_mutex_unlock (&s_mutex);
    self->parent = strdup (parent);
    self->name = zsys_sprintf ("%d-%u", getpid (), sequence);
    self->ndirs = s_backend->version == 2? 1: CTL_COUNT;
    for (int ctl = 0; ctl < CTL_COUNT; ctl++)
        self->procs [ctl] = -1;
    self->peak_fd = -1;
    for (int ctl = 0; ctl < self->ndirs; ctl++) {
        char dir [PATH_MAX];
        char relative [PATH_MAX];
        snprintf (relative, sizeof relative, "%s/%s", parent, self->name);
        s_path (dir, sizeof dir, ctl, relative);
        if (mkdir (dir, 0755)) {
            zsys_error ("cgroup: cannot create %s: %s", dir, strerror (errno));
            goto failed;
        }
        self->dirs [ctl] = strdup (dir);
        char procs [PATH_MAX + 16];
        snprintf (procs, sizeof procs, "%s/cgroup.procs", dir);
        self->procs [ctl] = open (procs, O_WRONLY | O_CLOEXEC);
        if (self->procs [ctl] < 0) {
            zsys_error ("cgroup: cannot open %s: %s", procs, strerror (errno));
            goto failed;
        }
    }
    char path [PATH_MAX + 64];
    snprintf (path, sizeof path, "%s/%s", s_dir (self, CTL_MEMORY), s_backend->swap_max);
    self->has_swap = access (path, F_OK) == 0;
    return self;

failed:
    cgroup_destroy (&self);
    return NULL;
}

const char *
cgroup_parent (cgroup_t *self)
{
    assert (self);
    return self->parent;
}

int
cgroup_set_memory (cgroup_t *self, int memory_mb)
{
    assert (self);
    if (memory_mb <= 0)
        return -1;
    char bytes [32];
    snprintf (bytes, sizeof bytes, "%" PRId64, (int64_t) memory_mb * 1024 * 1024);
    const char *dir = s_dir (self, CTL_MEMORY);
    int rc;
    if (s_backend->version == 2) {
        rc = s_write (dir, s_backend->memory_max, bytes);
        if (rc == 0 && self->has_swap)
            rc = s_write (dir, s_backend->swap_max, "0");
    }
    else {
        //  v1: memsw (memory + swap) must stay >= limit, so the order of the
        //  two writes depends on whether we raise or lower: try memsw first,
        //  and if that was refused (lowering), write it again after limit.
        int swap_rc = self->has_swap? s_write (dir, s_backend->swap_max, bytes): 0;
        rc = s_write (dir, s_backend->memory_max, bytes);
        if (rc == 0 && swap_rc)
            rc = s_write (dir, s_backend->swap_max, bytes);
        if (!self->has_swap)
            s_write (dir, "memory.swappiness", "0");
    }
    if (rc)
        zsys_error ("cgroup: cannot set memory of %s to %d MB: %s", dir, memory_mb, strerror (-rc));
    self->memory_mb = rc? 0: memory_mb;
    return rc? -1: 0;
}

int
cgroup_set_limits (cgroup_t *self, int memory_mb, double cpus, int pids)
{
    assert (self);
    if (memory_mb == self->memory_mb && cpus == self->cpus && pids == self->pids && pids)
        return 0;
    self->pids = 0;             //  unknown until every write succeeded
    if (cgroup_set_memory (self, memory_mb) || cgroup_set_cpus (self, cpus))
        return -1;
    const char *dir = s_dir (self, CTL_PIDS);
    char value [64];
    if (pids > 0)
        snprintf (value, sizeof value, "%d", pids);
    else
        snprintf (value, sizeof value, "max");
    int rc = s_write (dir, s_backend->pids_max, value);
    if (rc) {
        zsys_error ("cgroup: cannot set pids of %s to %s: %s", dir, value, strerror (-rc));
        return -1;
    }
    self->pids = pids;
    return 0;
}

int
cgroup_set_cpus (cgroup_t *self, double cpus)
{
    assert (self);
    const char *dir = s_dir (self, CTL_CPU);
    char value [64];
    long quota = cpus < 0? -1: (long) (cpus * CPU_PERIOD_US);
    if (quota >= 0 && quota < 1000)
        quota = 1000;                   //  kernel minimum: 1 ms
    int rc;
    if (s_backend->version == 2) {
        if (quota < 0)
            snprintf (value, sizeof value, "max %d", CPU_PERIOD_US);
        else
            snprintf (value, sizeof value, "%ld %d", quota, CPU_PERIOD_US);
        s_write (dir, "cpu.max.burst", "0");           //  must stay <= quota
        rc = s_write (dir, "cpu.max", value);
        if (rc == 0 && quota > 0) {
            snprintf (value, sizeof value, "%ld", quota);
            s_write (dir, "cpu.max.burst", value);          //  see v1 below
        }
    }
    else {
        //  Unlimited first, so that the kernel accepts any new pair
        snprintf (value, sizeof value, "%ld", quota);
        s_write (dir, "cpu.cfs_burst_us", "0");        //  must stay <= quota
        s_write (dir, "cpu.cfs_quota_us", "-1");
        rc = s_write (dir, "cpu.cfs_period_us", CPU_PERIOD_TEXT);
        if (rc == 0)
            rc = s_write (dir, "cpu.cfs_quota_us", value);
        //  Unused quota may carry over, up to one quota (kernel maximum):
        //  eases python's start-up without raising the average
        if (rc == 0 && quota > 0)
            s_write (dir, "cpu.cfs_burst_us", value);       //  absent on old kernels
    }
    if (rc) {
        zsys_error ("cgroup: cannot set cpu of %s to %.2f: %s", dir, cpus, strerror (-rc));
        self->cpus = 0;
        return -1;
    }
    self->cpus = cpus;
    return 0;
}

int
cgroup_set_urgent (cgroup_t *self, bool urgent)
{
    assert (self);
    return cgroup_dir_set_urgent (s_dir (self, CTL_CPU), urgent);
}

const char *
cgroup_cpu_dir (cgroup_t *self)
{
    assert (self);
    return s_dir (self, CTL_CPU);
}

int
cgroup_dir_set_urgent (const char *cpu_dir, bool urgent)
{
    assert (cpu_dir);
    if (!s_backend)
        return -1;
    int rc = s_write (cpu_dir, s_backend->cpu_weight,
                      urgent? s_backend->weight_urgent: s_backend->weight_default);
    if (rc) {
        zsys_error ("cgroup: cannot set the CPU weight of %s: %s", cpu_dir, strerror (-rc));
        return -1;
    }
    return 0;
}

int
cgroup_attach (cgroup_t *self, pid_t pid)
{
    assert (self);
    char value [32];
    int len = snprintf (value, sizeof value, "%d", (int) pid);
    for (int ctl = 0; ctl < self->ndirs; ctl++)
        if (write (self->procs [ctl], value, len) != len) {
            zsys_error ("cgroup: cannot move %d into %s: %s", pid, self->dirs [ctl], strerror (errno));
            return -1;
        }
    return 0;
}

//  Write "0" (the calling thread) to a tasks file
static int
s_move_self (const char *tasks)
{
    int fd = open (tasks, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = write (fd, "0", 1) == 1? 0: -1;
    int saved = errno;
    close (fd);
    errno = saved;
    return rc;
}

int
cgroup_enter (cgroup_t *self)
{
    assert (self);
    if (s_backend->version != 1)
        return -1;
    //  Where the calling thread is now, per controller
    FILE *file = fopen ("/proc/thread-self/cgroup", "re");
    if (!file)
        return -1;
    char line [1024];
    while (fgets (line, sizeof line, file)) {
        //  "4:memory:/path" or "2:cpu,cpuacct:/path"
        line [strcspn (line, "\n")] = 0;
        char *controllers = strchr (line, ':');
        char *path = controllers? strchr (controllers + 1, ':'): NULL;
        if (!path)
            continue;
        *path++ = 0;
        controllers++;
        for (int ctl = 0; ctl < CTL_COUNT; ctl++) {
            char *name = controllers, *comma;
            size_t length = strlen (s_controller_names [ctl]);
            do {
                comma = strchr (name, ',');
                size_t size = comma? (size_t) (comma - name): strlen (name);
                if (size == length && memcmp (name, s_controller_names [ctl], length) == 0 && !self->home [ctl])
                    self->home [ctl] = zsys_sprintf (CGROUP_ROOT "/%s%s%stasks",
                        s_controller_names [ctl], path, streq (path, "/")? "": "/");
                name = comma + 1;
            } while (comma);
        }
    }
    fclose (file);
    int rc = 0;
    for (int ctl = 0; ctl < CTL_COUNT && rc == 0; ctl++)
        if (!self->home [ctl] || access (self->home [ctl], W_OK))
            rc = -1;
    int moved = 0;
    for (int ctl = 0; ctl < CTL_COUNT && rc == 0; ctl++) {
        char tasks [PATH_MAX + 16];
        snprintf (tasks, sizeof tasks, "%s/tasks", self->dirs [ctl]);
        if (s_move_self (tasks))
            rc = -1;
        else
            moved++;
    }
    if (rc) {
        //  Undo what was done
        for (int ctl = 0; ctl < moved; ctl++)
            s_move_self (self->home [ctl]);
        for (int ctl = 0; ctl < CTL_COUNT; ctl++)
            zstr_free (&self->home [ctl]);
    }
    return rc;
}

int
cgroup_task_fds (cgroup_t *self, int *fds, int max)
{
    assert (self);
    if (s_backend->version != 1)
        return 0;
    if (self->ndirs > max)
        return -1;
    for (int ctl = 0; ctl < self->ndirs; ctl++) {
        char tasks [PATH_MAX + 16];
        snprintf (tasks, sizeof tasks, "%s/tasks", self->dirs [ctl]);
        fds [ctl] = open (tasks, O_WRONLY | O_CLOEXEC);
        if (fds [ctl] < 0) {
            zsys_error ("cgroup: cannot open %s: %s", tasks, strerror (errno));
            while (ctl-- > 0)
                close (fds [ctl]);
            return -1;
        }
    }
    return self->ndirs;
}

int
cgroup_leave (cgroup_t *self)
{
    assert (self);
    int rc = 0;
    for (int ctl = 0; ctl < CTL_COUNT; ctl++)
        if (self->home [ctl]) {
            //  This must not fail: the thread would stay under the limits
            int attempt;
            for (attempt = 0; attempt < 3 && s_move_self (self->home [ctl]); attempt++)
                usleep (1000);
            if (attempt == 3) {
                zsys_error ("cgroup: cannot move thread back to %s: %s", self->home [ctl], strerror (errno));
                rc = -1;
            }
            zstr_free (&self->home [ctl]);
        }
    return rc;
}

int64_t
cgroup_oom_kills (cgroup_t *self)
{
    assert (self);
    char buffer [1024];
    if (s_read (s_dir (self, CTL_MEMORY), s_backend->oom_file, buffer, sizeof buffer) <= 0)
        return -1;
    const char *line = strstr (buffer, "oom_kill ");
    while (line && line != buffer && line [-1] != '\n')
        line = strstr (line + 1, "oom_kill ");
    if (!line)
        return -1;
    return strtoll (line + strlen ("oom_kill "), NULL, 10);
}

int64_t
cgroup_memory_peak (cgroup_t *self)
{
    assert (self);
    //  Read after every warm call: the file stays open and is read with
    //  pread, which costs a fifth of an open, read and close here
    if (self->peak_fd < 0) {
        char path [PATH_MAX + 64];
        snprintf (path, sizeof path, "%s/%s", s_dir (self, CTL_MEMORY), s_backend->peak_file);
        self->peak_fd = open (path, O_RDONLY | O_CLOEXEC);
        if (self->peak_fd < 0)
            return -1;
    }
    char buffer [64];
    ssize_t size = pread (self->peak_fd, buffer, sizeof buffer - 1, 0);
    if (size <= 0)
        return -1;
    buffer [size] = 0;
    char *end;
    int64_t value = strtoll (buffer, &end, 10);
    return end == buffer? -1: value;
}

bool
cgroup_recycle (cgroup_t *self)
{
    assert (self);
    //  v2's memory.peak cannot be reset on most kernels: a fresh cgroup
    if (s_backend->version != 1)
        return false;
    for (int ctl = 0; ctl < self->ndirs; ctl++) {
        char buffer [16];
        if (s_read (self->dirs [ctl], "cgroup.procs", buffer, sizeof buffer) != 0)
            return false;           //  not empty (or unreadable)
    }
    return s_write (s_dir (self, CTL_MEMORY), s_backend->peak_file, "0") == 0;
}

void
cgroup_destroy (cgroup_t **self_p)
{
    assert (self_p);
    cgroup_t *self = *self_p;
    if (!self)
        return;
    if (self->peak_fd >= 0)
        close (self->peak_fd);
    for (int ctl = 0; ctl < CTL_COUNT; ctl++) {
        if (self->procs [ctl] >= 0)
            close (self->procs [ctl]);
        if (self->dirs [ctl]) {
            //  The last process may still be leaving: retry briefly
            int attempt;
            for (attempt = 0; attempt < 50; attempt++) {
                if (rmdir (self->dirs [ctl]) == 0 || errno == ENOENT)
                    break;
                if (errno != EBUSY)
                    break;
                usleep (1000);
            }
            if (attempt == 50 || (errno != ENOENT && access (self->dirs [ctl], F_OK) == 0))
                zsys_warning ("cgroup: cannot remove %s: %s", self->dirs [ctl], strerror (errno));
            free (self->dirs [ctl]);
        }
    }
    for (int ctl = 0; ctl < CTL_COUNT; ctl++)
        zstr_free (&self->home [ctl]);
    free (self->parent);
    free (self->name);
    free (self);
    *self_p = NULL;
}

void
cgroup_test (bool verbose)
{
    printf (" * cgroup: ");
    if (geteuid () != 0) {
        printf ("FAILED: must run as root to create cgroups\n");
        assert (false);
    }
    int version = cgroup_system_init ();
    assert (version == 1 || version == 2);
    assert (!s_valid_name ("../x"));
    assert (!s_valid_name ("a/b"));
    assert (!s_valid_name (""));
    assert (s_valid_name ("clowdy-test_1.2"));
    assert (cgroup_new ("..") == NULL);
    assert (s_has_controllers ("cpuset cpu io memory hugetlb pids rdma misc\n"));
    assert (s_has_controllers ("memory pids cpu"));
    assert (!s_has_controllers ("cpuset io memory pids"));     //  cpuset is not cpu
    assert (!s_has_controllers ("cpu memory"));
    assert (!s_has_controllers (""));

    cgroup_remove_stale_parents ("clowdy-cgtest-");
    char parent [64];
    snprintf (parent, sizeof parent, "clowdy-cgtest-%d", getpid ());
    assert (cgroup_parent_prepare (parent) == 0);
    assert (cgroup_parent_prepare (parent) == 0);      //  idempotent

    //  A stale child of a dead "server" is removed by prepare
    char stale [PATH_MAX], relative [PATH_MAX];
    snprintf (relative, sizeof relative, "%s/999999999-1", parent);
    s_path (stale, sizeof stale, CTL_MEMORY, relative);
    assert (mkdir (stale, 0755) == 0);
    assert (cgroup_parent_prepare (parent) == 0);
    assert (access (stale, F_OK) != 0);

    cgroup_t *cgroup = cgroup_new (parent);
    assert (cgroup);
    assert (streq (cgroup_parent (cgroup), parent));
    assert (cgroup_set_limits (cgroup, 64, 0.5, 16) == 0);
    assert (cgroup_set_memory (cgroup, 256) == 0);         //  raise
    assert (cgroup_set_memory (cgroup, 32) == 0);          //  lower
    char buffer [64];
    assert (s_read (s_dir (cgroup, CTL_MEMORY), s_backend->memory_max, buffer, sizeof buffer) > 0);
    assert (strtoll (buffer, NULL, 10) == 32 * 1024 * 1024);
    assert (s_read (s_dir (cgroup, CTL_PIDS), "pids.max", buffer, sizeof buffer) > 0);
    assert (atoi (buffer) == 16);
    assert (cgroup_set_limits (cgroup, 64, -1, 0) == 0);   //  unlimited cpu and pids
    assert (cgroup_set_limits (cgroup, 64, 0.01, 16) == 0);    //  clamped to 1 ms
    //  Urgent: ten times the default CPU weight; back to the default by the dir
    assert (cgroup_set_urgent (cgroup, true) == 0);
    assert (s_read (cgroup_cpu_dir (cgroup), s_backend->cpu_weight, buffer, sizeof buffer) > 0);
    assert (atoi (buffer) == atoi (s_backend->weight_urgent));
    assert (cgroup_dir_set_urgent (cgroup_cpu_dir (cgroup), false) == 0);
    assert (s_read (cgroup_cpu_dir (cgroup), s_backend->cpu_weight, buffer, sizeof buffer) > 0);
    assert (atoi (buffer) == atoi (s_backend->weight_default));
    assert (cgroup_oom_kills (cgroup) == 0);
    assert (cgroup_memory_peak (cgroup) >= 0 || version == 2);

    //  Attach a child process, time the write, and recycle after it exits
    pid_t pid = fork ();
    assert (pid >= 0);
    if (pid == 0) {
        pause ();
        _exit (0);
    }
    int64_t start = zclock_usecs ();
    assert (cgroup_attach (cgroup, pid) == 0);
    int64_t first = zclock_usecs () - start;
    assert (!cgroup_recycle (cgroup));      //  not empty
    kill (pid, SIGKILL);
    waitpid (pid, NULL, 0);
    if (version == 1)
        assert (cgroup_recycle (cgroup));
    pid = fork ();
    assert (pid >= 0);
    if (pid == 0) {
        pause ();
        _exit (0);
    }
    start = zclock_usecs ();
    assert (cgroup_attach (cgroup, pid) == 0);
    int64_t second = zclock_usecs () - start;
    kill (pid, SIGKILL);
    waitpid (pid, NULL, 0);
    //  Enter/leave: a child forked in between starts inside
    zclock_sleep (200);                 //  a quiet spell, as between sandboxes
    start = zclock_usecs ();
    int entered = cgroup_enter (cgroup);
    int64_t enter_time = zclock_usecs () - start;
    if (version == 1) {
        assert (entered == 0);
        pid = fork ();
        assert (pid >= 0);
        if (pid == 0) {
            pause ();
            _exit (0);
        }
        start = zclock_usecs ();
        assert (cgroup_leave (cgroup) == 0);
        int64_t leave_time = zclock_usecs () - start;
        char procs [64];
        assert (s_read (s_dir (cgroup, CTL_PIDS), "cgroup.procs", procs, sizeof procs) > 0);
        assert (atoi (procs) == pid);       //  the child only: we left
        kill (pid, SIGKILL);
        waitpid (pid, NULL, 0);
        if (verbose)
            printf ("(enter %.2f ms, leave %.2f ms) ", enter_time / 1000.0, leave_time / 1000.0);
    }
    else
        assert (entered == -1);
    if (verbose)
        printf ("(v%d, attach to a new cgroup %.2f ms, to a used one %.2f ms) ",
                version, first / 1000.0, second / 1000.0);
    cgroup_destroy (&cgroup);
    cgroup_destroy (&cgroup);
    assert (cgroup == NULL);
    cgroup_parent_remove (parent);
    s_path (stale, sizeof stale, CTL_MEMORY, parent);
    assert (access (stale, F_OK) != 0);
    printf ("OK\n");
}
