/*  =========================================================================
    builder - builds pip dependency layers, off every loop, in a sandbox

    What is asked lives in SQLite, as for the database actor: PUT
    /api/projects/:id/requirements (core/api_projects.c) checks the text,
    sets the project's requirements_hash to the layer key (core/layers.h)
    and queues a row in layers; this actor builds queued layers one at a
    time, then points every project that asks for the layer at it
    (projects.layer_active) and sends gateway INVALIDATE "project ID" for
    each, which drops the cached function contexts and retires the warm
    environments, as an env var change does: the next call gets a sandbox
    with the new layer at /opt/layer. Until then, and for good when a build
    fails, functions keep the layer they had.

    A build: the layer's normalised requirements go into a fresh directory
    <data_dir>/layers/.build/<key>-<n>/ with an empty out/, and a sandbox
    (runtime/sandbox.h) runs `python -m pip install --isolated --no-input
    --no-build-isolation --target /opt/out -r /opt/req/requirements.txt`
    there: network on (slirp4netns, the host's LAN and private ranges
    blocked), 1 CPU, memory, pids and /tmp capped, requirements read-only
    and out/ the one writable host directory; the data dir, other layers
    and the host's files are not in its view. An sdist's setup.py runs in
    there too. pip's output (stdout and stderr, fd 3 of the sandbox) is
    the build log: its tail is written to the row every S_LOG_FLUSH_MS so
    GET shows it growing. The sandbox is killed past --build-timeout, and
    when out/ passes --layers-max-mb (as layers_dir_size counts: blocks
    and inodes, so empty directories and files count too) or holds more
    than LAYERS_ENTRIES_MAX entries; a walk that fails counts as over
    the cap. A build that ends well is sealed
    (owned by root, read-only, no set-id bits or special files; see
    layers_seal) and renamed into layers/<key> in one step, so a worker
    never mounts half a layer. Beside it go layers/<key>.tar, the layer
    packed into one archive (core/layerpack.h), and layers/<key>.digest,
    that archive's sha256: what actors/layerserver.c serves to workers on
    other hosts, which check what they get against the digest.

    Index: --pip-index-url, --pip-extra-index-url, --pip-find-links (a URL
    or a host directory of wheels, mounted read-only at /opt/wheels). An
    index on the host's loopback (127.0.0.1, localhost) is rewritten to
    10.0.2.2, which slirp4netns maps to the host's loopback; the sandbox's
    routing rules then let only that index's TCP port through to the host.

    Sweeps (every S_SWEEP_MS): a layer no project names (as wanted or
    active) is marked unused_since; after --layers-grace seconds it goes,
    directory and row. When the layers' total passes --layers-max-mb,
    unused ones go at once, oldest unused first; a new layer that still
    does not fit fails its build with that reason.

    Threads: SQL, the file walks and the build itself block, so they run on
    a build thread with its own store connection; the actor's loop only
    paces it (BUILD_SCAN down, its answer up: the projects to invalidate)
    and forwards the INVALIDATEs (broker/msg_defs.h declares both). $TERM
    during a build kills the sandbox
    and puts the layer back in the queue for the next start.

    Pipe commands (besides $TERM):
        zstr_send (actor, "PING");      // answers "PONG"
    ========================================================================= */

#include <czmq.h>
#include <poll.h>
#include <sys/wait.h>
#include "actors/builder.h"
#include "broker/actor.h"
#include "broker/endpoints.h"
#include "broker/msg.h"
#include "core/config.h"
#include "core/layerpack.h"
#include "core/layers.h"
#include "core/store.h"
#include "core/util.h"
#include "runtime/sandbox.h"

#define S_SCAN_MS           250         //  how often queued builds are looked for
#define S_SWEEP_MS          10000       //  how often unused layers are looked for
#define S_LOG_MAX           (64 * 1024) //  bytes of a build's log kept (its tail)
#define S_LOG_FLUSH_MS      500         //  how often a running build's log is written
#define S_SIZE_CHECK_MS     1000        //  how often a running build's output is measured
#define S_BUILD_PIDS        256         //  processes a build may run at once
#define S_BUILD_CPUS        1.0         //  CPUs a build may use
#define S_BUILD_SLACK_MB    512         //  memory beside the layer itself (pip, a compiler)
#define S_STRING_(x)        #x          //  a number in a message, through S_STRING
#define S_STRING(x)         S_STRING_(x)
#define S_TOO_MANY          "the installed packages hold more than " S_STRING (LAYERS_ENTRIES_MAX) \
                            " files, directories and links"

//  Runs in the build sandbox before pip: pip's output goes to fd 3 (ours
//  to read), then pip replaces it
static const char s_wrapper [] =
    "import os, sys\n"
    "os.dup2(3, 1); os.dup2(3, 2); os.close(3)\n"
    "os.environ.update(HOME='/tmp', TMPDIR='/tmp', LANG='C.UTF-8')\n"
    "os.execv(sys.executable, [sys.executable, '-I'] + sys.argv[1:])\n";


//  --------------------------------------------------------------------------
//  The build thread

typedef struct {
    zsock_t *pipe;                  //  Our pipe to the actor
    const config_t *config;         //  Settings (not owned)
    store_t *store;                 //  Own store connection
    char *layers_dir;               //  <data_dir>/layers
    char *build_dir;                //  <data_dir>/layers/.build
    char *index_url;                //  --pip-index-url as the sandbox reaches it, or NULL
    char *extra_index_url;          //  the same for --pip-extra-index-url
    char *find_links;               //  a find-links URL as the sandbox reaches it, or NULL
    char *find_links_dir;           //  a find-links host dir, mounted at /opt/wheels, or NULL
    int host_ports [SANDBOX_MAX_HOST_PORTS];    //  host loopback ports the build may reach
    int64_t next_sweep;             //  zclock_mono () of the next sweep
    int serial;                     //  numbers build dirs
    bool archives_checked;          //  Layers sealed before layers travelled were packed
    bool terminated;                //  $TERM came during a build
    char *last_owner;               //  User whose layer was built last (round-robin), or NULL
} s_thread_t;

//  An index URL as the build sandbox reaches it: a loopback host becomes
//  10.0.2.2 and its port one the sandbox may reach. Heap copy.
static char *
s_index_for_sandbox (s_thread_t *self, const char *url)
{
    const char *scheme_end = strstr (url, "://");
    if (!scheme_end)
        return strdup (url);
    const char *host = scheme_end + 3;
    const char *at = strchr (host, '@');
    const char *path = host + strcspn (host, "/?#");
    if (at && at < path)
        host = at + 1;
    const char *names [] = { "127.0.0.1", "localhost", NULL };
    for (int index = 0; names [index]; index++) {
        size_t len = strlen (names [index]);
        if (strncasecmp (host, names [index], len) == 0 && (host [len] == ':' || host + len == path)) {
            int port = strncasecmp (url, "https", 5) == 0? 443: 80;
            if (host [len] == ':')
                port = atoi (host + len + 1);
            for (int slot = 0; slot < SANDBOX_MAX_HOST_PORTS; slot++)
                if (self->host_ports [slot] == 0 || self->host_ports [slot] == port) {
                    self->host_ports [slot] = port;
                    break;
                }
            return zsys_sprintf ("%.*s10.0.2.2%s", (int) (host - url), url, host + len);
        }
    }
    return strdup (url);
}

//  A copy of text in which every byte that is not part of well-formed
//  UTF-8 is a '?' (a build prints what it likes, and the tail may start
//  inside a character); JSON answers carry the log as it is stored
static char *
s_log_clean (const char *text)
{
    char *clean = strdup (text);
    assert (clean);
    size_t size = strlen (clean);
    for (size_t index = 0; index < size; ) {
        unsigned char lead = (unsigned char) clean [index];
        size_t length = lead < 0x80? 1: (lead >> 5) == 6? 2: (lead >> 4) == 14? 3: (lead >> 3) == 30? 4: 0;
        if (length && index + length <= size && util_utf8_valid (clean + index, length))
            index += length;
        else
            clean [index++] = '?';
    }
    return clean;
}

//  Replace the row's log (the tail if longer than S_LOG_MAX)
static void
s_log_write (s_thread_t *self, const char *hash, const char *state, const char *log)
{
    char now [UTIL_TIME_SIZE];
    util_now_iso (now);
    char *clean = s_log_clean (log);
    store_exec (self->store, "UPDATE layers SET state = ?, log = ?, updated_at = ? WHERE hash = ?",
                "ssss", state, clean, now, hash);
    free (clean);
}

//  Append text to a log buffer, keeping its last S_LOG_MAX bytes. A NUL
//  in the text becomes a '?', as s_log_clean does with bad UTF-8: the log
//  is a C string from here on, and a NUL would cut off all that follows
static void
s_log_append (char *log, size_t *used, const char *text, size_t size)
{
    if (size >= S_LOG_MAX) {
        text += size - (S_LOG_MAX - 1);
        size = S_LOG_MAX - 1;
    }
    if (*used + size >= S_LOG_MAX) {
        size_t drop = *used + size - (S_LOG_MAX - 1);
        memmove (log, log + drop, *used - drop);
        *used -= drop;
    }
    memcpy (log + *used, text, size);
    for (size_t index = *used; index < *used + size; index++)
        if (!log [index])
            log [index] = '?';
    *used += size;
    log [*used] = 0;
}

static void
s_log_line (char *log, size_t *used, const char *format, ...)
{
    char line [512];
    va_list args;
    va_start (args, format);
    vsnprintf (line, sizeof line, format, args);
    va_end (args);
    s_log_append (log, used, line, strlen (line));
}

//  Sum of the ready layers' sizes
static int64_t
s_layers_total (s_thread_t *self)
{
    cJSON *row = store_query_row (self->store,
        "SELECT coalesce (sum (size_bytes), 0) AS total FROM layers WHERE state = 'ready'", NULL);
    int64_t total = row? (int64_t) cJSON_GetNumberValue (cJSON_GetObjectItem (row, "total")): 0;
    cJSON_Delete (row);
    return total;
}

//  Projects name a layer as wanted or active
#define S_LAYERS_USED \
    "(SELECT requirements_hash FROM projects WHERE requirements_hash IS NOT NULL" \
    " UNION SELECT layer_active FROM projects WHERE layer_active IS NOT NULL)"

//  The archive workers on other hosts fetch (layers/<key>.tar) and its
//  digest (layers/<key>.digest), made when the layer was sealed
static void
s_archive_remove (s_thread_t *self, const char *hash)
{
    const char *suffixes [] = { "tar", "digest" };
    for (int index = 0; index < 2; index++) {
        char *path = zsys_sprintf ("%s/%s.%s", self->layers_dir, hash, suffixes [index]);
        if (unlink (path) && errno != ENOENT)
            zsys_warning ("builder: cannot remove %s: %s", path, strerror (errno));
        zstr_free (&path);
    }
}

//  The row goes first, and only if still unused in that same statement: a
//  PUT that names the layer meanwhile either keeps it or, once the row is
//  gone, queues it again. A directory that stays (its removal failed) is
//  an orphan the next start removes.
static void
s_layer_drop (s_thread_t *self, const char *hash)
{
    if (!layers_key_valid (hash))
        return;
    if (store_exec (self->store, "DELETE FROM layers WHERE hash = ? AND state != 'building' AND hash NOT IN "
                    S_LAYERS_USED, "s", hash) != 1)
        return;
    char *path = zsys_sprintf ("%s/%s", self->layers_dir, hash);
    if (layers_remove (path) == 0)
        zsys_info ("builder: removed unused layer %s", hash);
    s_archive_remove (self, hash);
    zstr_free (&path);
}

//  Remove unused layers, oldest unused first, until need more bytes fit
//  under the cap (need 0: until the total is under it); true if they fit
static bool
s_make_room (s_thread_t *self, int64_t need)
{
    int64_t cap = (int64_t) self->config->layers_max_mb * 1024 * 1024;
    if (s_layers_total (self) + need <= cap)
        return true;
    cJSON *unused = store_query (self->store,
        "SELECT hash FROM layers WHERE state = 'ready' AND unused_since IS NOT NULL ORDER BY unused_since", NULL);
    cJSON *row;
    cJSON_ArrayForEach (row, unused) {
        s_layer_drop (self, cJSON_GetStringValue (cJSON_GetObjectItem (row, "hash")));
        if (s_layers_total (self) + need <= cap)
            break;
    }
    cJSON_Delete (unused);
    return s_layers_total (self) + need <= cap;
}

//  Pack one ready layer into layers/<key>.tar and its digest into
//  <key>.digest (a layer sealed before layers travelled has neither); the
//  archive is made under .build and renamed into place, digest last, so the
//  layer server never sends half an archive. 0 or -1.
static int
s_archive_make (s_thread_t *self, const char *hash)
{
    char *layer = zsys_sprintf ("%s/%s", self->layers_dir, hash);
    char *archive = zsys_sprintf ("%s/%s.tar", self->build_dir, hash);
    char *digest_file = zsys_sprintf ("%s/%s.digest", self->build_dir, hash);
    char *archive_target = zsys_sprintf ("%s/%s.tar", self->layers_dir, hash);
    char *digest_target = zsys_sprintf ("%s/%s.digest", self->layers_dir, hash);
    char digest [LAYERPACK_DIGEST_SIZE];
    FILE *handle = NULL;
    int rc = layerpack_pack (layer, archive, digest) || !(handle = fopen (digest_file, "w"))
          || fprintf (handle, "%s\n", digest) < 0? -1: 0;
    if (handle && fclose (handle))
        rc = -1;
    if (rc == 0 && (rename (archive, archive_target) || rename (digest_file, digest_target)))
        rc = -1;
    unlink (archive);
    unlink (digest_file);
    if (rc == 0)
        zsys_info ("builder: packed layer %s for workers on other hosts", hash);
    zstr_free (&layer);
    zstr_free (&archive);
    zstr_free (&digest_file);
    zstr_free (&archive_target);
    zstr_free (&digest_target);
    return rc;
}

//  Ready layers sealed before layers travelled get their archive
static void
s_archive_missing (s_thread_t *self)
{
    cJSON *ready = store_query (self->store, "SELECT hash FROM layers WHERE state = 'ready'", NULL);
    cJSON *row;
    cJSON_ArrayForEach (row, ready) {
        const char *hash = cJSON_GetStringValue (cJSON_GetObjectItem (row, "hash"));
        if (!layers_key_valid (hash))
            continue;
        char *layer = zsys_sprintf ("%s/%s", self->layers_dir, hash);
        char *digest = zsys_sprintf ("%s/%s.digest", self->layers_dir, hash);
        if (zsys_file_exists (layer) && !zsys_file_exists (digest) && s_archive_make (self, hash))
            zsys_warning ("builder: cannot pack layer %s for workers on other hosts", hash);
        zstr_free (&layer);
        zstr_free (&digest);
    }
    cJSON_Delete (ready);
}

static void
s_sweep (s_thread_t *self)
{
    int64_t now = (int64_t) time (NULL);
    const char *used = S_LAYERS_USED;
    char *sql = zsys_sprintf ("UPDATE layers SET unused_since = NULL WHERE unused_since IS NOT NULL AND hash IN %s", used);
    store_exec (self->store, sql, NULL);
    zstr_free (&sql);
    sql = zsys_sprintf ("UPDATE layers SET unused_since = ? WHERE unused_since IS NULL AND hash NOT IN %s", used);
    store_exec (self->store, sql, "I", now);
    zstr_free (&sql);
    cJSON *expired = store_query (self->store,
        "SELECT hash FROM layers WHERE unused_since IS NOT NULL AND unused_since <= ? AND state != 'building'",
        "I", now - (int64_t) self->config->layers_grace);
    cJSON *row;
    cJSON_ArrayForEach (row, expired)
        s_layer_drop (self, cJSON_GetStringValue (cJSON_GetObjectItem (row, "hash")));
    cJSON_Delete (expired);
    s_make_room (self, 0);
}

//  A directory under layers/ that no row names (a crash between the
//  rename and the row's update, or a removed row): it goes
static void
s_sweep_orphans (s_thread_t *self)
{
    DIR *dir = opendir (self->layers_dir);
    if (!dir)
        return;
    struct dirent *entry;
    while ((entry = readdir (dir))) {
        //  <key>, <key>.tar or <key>.digest
        char key [LAYERS_KEY_SIZE];
        size_t length = strnlen (entry->d_name, LAYERS_KEY_SIZE - 1);
        memcpy (key, entry->d_name, length);
        key [length] = 0;
        const char *suffix = entry->d_name + length;
        if (!layers_key_valid (key) || (*suffix && strneq (suffix, ".tar") && strneq (suffix, ".digest")))
            continue;
        cJSON *row = store_query_row (self->store, "SELECT hash FROM layers WHERE hash = ? AND state = 'ready'",
                                      "s", key);
        if (!row) {
            char *path = zsys_sprintf ("%s/%s", self->layers_dir, entry->d_name);
            zsys_info ("builder: removing %s, which no ready layer names", path);
            layers_remove (path);
            zstr_free (&path);
        }
        cJSON_Delete (row);
    }
    closedir (dir);
}

//  Run pip in a sandbox over dir/req into dir/out; 0 when pip succeeded
//  and the output is within the cap, else -1 with the reason in the log
static int
s_run_pip (s_thread_t *self, const char *hash, const char *dir, char *log, size_t *log_used)
{
    int64_t cap = (int64_t) self->config->layers_max_mb * 1024 * 1024;
    char *req = zsys_sprintf ("%s/req", dir);
    char *out = zsys_sprintf ("%s/out", dir);
    sandbox_mount_t mounts [3] = {
        { req, "/opt/req", false },
        { out, "/opt/out", true },
        { self->find_links_dir, "/opt/wheels", false },
    };
    const char *argv [48];
    int argc = 0;
    argv [argc++] = self->config->python;
    argv [argc++] = "-I";
    argv [argc++] = "-c";
    argv [argc++] = s_wrapper;
    argv [argc++] = "-m";
    argv [argc++] = "pip";
    argv [argc++] = "install";
    argv [argc++] = "--isolated";
    argv [argc++] = "--no-input";
    argv [argc++] = "--disable-pip-version-check";
    argv [argc++] = "--no-cache-dir";
    argv [argc++] = "--progress-bar";
    argv [argc++] = "off";
    argv [argc++] = "--no-warn-script-location";
    //  sdists build with the interpreter's own setuptools and wheel: build
    //  isolation would fetch them from the index each time
    argv [argc++] = "--no-build-isolation";
    argv [argc++] = "--target";
    argv [argc++] = "/opt/out";
    if (self->index_url) {
        argv [argc++] = "--index-url";
        argv [argc++] = self->index_url;
    }
    if (self->extra_index_url) {
        argv [argc++] = "--extra-index-url";
        argv [argc++] = self->extra_index_url;
    }
    if (self->find_links) {
        argv [argc++] = "--find-links";
        argv [argc++] = self->find_links;
    }
    if (self->find_links_dir) {
        argv [argc++] = "--find-links";
        argv [argc++] = "/opt/wheels";
    }
    if (self->host_ports [0]) {
        //  pip trusts plain http on loopback only: 10.0.2.2 is the host's
        argv [argc++] = "--trusted-host";
        argv [argc++] = "10.0.2.2";
    }
    argv [argc++] = "-r";
    argv [argc++] = "/opt/req/requirements.txt";
    argv [argc] = NULL;

    sandbox_config_t config;
    sandbox_config_init (&config);
    config.runtime_dir = self->config->runtime_dir;
    config.python = self->config->python;
    config.argv = argv;
    config.network = true;
    config.cpus = S_BUILD_CPUS;
    config.pids = S_BUILD_PIDS;
    //  pip --target installs in /tmp first, then moves: /tmp holds the
    //  layer once, and its pages count against the memory limit
    int layer_mb = (int) (self->config->layers_max_mb < 8192? self->config->layers_max_mb: 8192);
    config.tmp_mb = layer_mb + 256;
    config.memory_mb = config.tmp_mb + S_BUILD_SLACK_MB;
    config.cgroup_name = self->config->cgroup_name;
    config.mounts = mounts;
    config.mount_count = self->find_links_dir? 3: 2;
    memcpy (config.host_ports, self->host_ports, sizeof config.host_ports);

    int rc = -1;
    sandbox_t *sandbox = sandbox_new (&config);
    if (!sandbox) {
        s_log_line (log, log_used, "\nThe build sandbox could not start (see the server log).\n");
        goto done;
    }
    int fd = sandbox_fd (sandbox);
    int64_t started = zclock_mono ();
    int64_t deadline = started + self->config->build_timeout * 1000;
    int64_t next_flush = started + S_LOG_FLUSH_MS;
    int64_t next_size = started + S_SIZE_CHECK_MS;
    const char *killed = NULL;
    bool open = true, dirty = false;
    while (open || !sandbox_reap (sandbox, false)) {
        struct pollfd items [2] = {
            { zsock_fd (self->pipe), POLLIN, 0 },
            { open? fd: -1, POLLIN, 0 },
        };
        poll (items, 2, open? 100: 20);
        if (zsock_events (self->pipe) & ZMQ_POLLIN) {
            char *command = zstr_recv_nowait (self->pipe);
            if (!command || streq (command, "$TERM")) {
                self->terminated = true;
                killed = "the server is stopping";
            }
            zstr_free (&command);
        }
        if (open && (items [1].revents & (POLLIN | POLLHUP | POLLERR))) {
            char buffer [8192];
            ssize_t got = read (fd, buffer, sizeof buffer);
            if (got > 0) {
                s_log_append (log, log_used, buffer, (size_t) got);
                dirty = true;
            }
            else
            if (got == 0 || (errno != EAGAIN && errno != EINTR))
                open = false;
        }
        int64_t now = zclock_mono ();
        if (!killed && now >= deadline)
            killed = "the build took longer than --build-timeout";
        if (!killed && now >= next_size) {
            //  While pip runs, what the walk could measure counts: an entry
            //  gone between the listing and the look (pip removes files) is
            //  skipped, not a reason to stop the build, and cannot hide the
            //  rest either. The check once pip has ended counts any entry
            //  it could not look at as over the cap
            long entries = 0;
            int64_t counted = 0;
            layers_dir_usage (out, cap, &entries, &counted);
            if (entries > LAYERS_ENTRIES_MAX)
                killed = S_TOO_MANY;
            else
            if (counted > cap)
                killed = "the installed packages passed the size cap (--layers-max-mb)";
            next_size = now + S_SIZE_CHECK_MS;
        }
        if (dirty && now >= next_flush) {
            s_log_write (self, hash, "building", log);
            dirty = false;
            next_flush = now + S_LOG_FLUSH_MS;
        }
        if (killed) {
            sandbox_kill (sandbox);
            sandbox_reap (sandbox, true);
            break;
        }
    }
    if (killed)
        s_log_line (log, log_used, "\nBuild stopped: %s (%ld s, %ld MB).\n", killed,
                    self->config->build_timeout, self->config->layers_max_mb);
    else
    if (sandbox_oom_killed (sandbox))
        s_log_line (log, log_used, "\nBuild failed: it ran out of memory (%d MB).\n", config.memory_mb);
    else {
        int status = sandbox_exit_status (sandbox);
        if (WIFEXITED (status) && WEXITSTATUS (status) == 0)
            rc = 0;
        else
        if (WIFEXITED (status))
            s_log_line (log, log_used, "\nBuild failed: pip exited with status %d.\n", WEXITSTATUS (status));
        else
            s_log_line (log, log_used, "\nBuild failed: pip was killed by signal %d.\n",
                        WIFSIGNALED (status)? WTERMSIG (status): 0);
    }
    sandbox_destroy (&sandbox);
done:
    zstr_free (&req);
    zstr_free (&out);
    return rc;
}

//  Build one layer; its projects that now have it go into changed
static void
s_build (s_thread_t *self, const char *hash, const char *requirements, cJSON *changed)
{
    char now [UTIL_TIME_SIZE];
    util_now_iso (now);
    if (store_exec (self->store, "UPDATE layers SET state = 'building', log = '', updated_at = ?"
                    " WHERE hash = ? AND state = 'queued'", "ss", now, hash) != 1)
        return;
    zsys_info ("builder: building layer %s", hash);
    char *log = (char *) malloc (S_LOG_MAX);
    assert (log);
    size_t log_used = 0;
    log [0] = 0;
    s_log_line (log, &log_used, "Building for %s: pip install -r requirements.txt\n", layers_python_tag ());
    s_log_write (self, hash, "building", log);

    int64_t started = zclock_mono ();
    char *dir = zsys_sprintf ("%s/%s-%d", self->build_dir, hash, ++self->serial);
    char *req = zsys_sprintf ("%s/req", dir);
    char *out = zsys_sprintf ("%s/out", dir);
    char *file = zsys_sprintf ("%s/requirements.txt", req);
    char *target = zsys_sprintf ("%s/%s", self->layers_dir, hash);
    layers_remove (dir);
    int rc = mkdir (dir, 0755) || mkdir (req, 0755) || mkdir (out, 0755) || chmod (out, 0777)? -1: 0;
    FILE *handle = rc? NULL: fopen (file, "w");
    if (!handle || fprintf (handle, "%s\n", requirements) < 0 || fclose (handle)) {
        s_log_line (log, &log_used, "\nBuild failed: cannot prepare %s: %s\n", dir, strerror (errno));
        rc = -1;
    }
    if (rc == 0)
        rc = s_run_pip (self, hash, dir, log, &log_used);
    int64_t size = -1;
    struct stat info;
    if (rc == 0) {
        //  out/ was a mount point in the sandbox, so it is still our
        //  directory; what is in it is the build's and gets sealed
        long entries = 0;
        size = lstat (out, &info) == 0 && S_ISDIR (info.st_mode)? layers_dir_usage (out, -1, &entries, NULL): -1;
        int64_t cap = (int64_t) self->config->layers_max_mb * 1024 * 1024;
        if (entries > LAYERS_ENTRIES_MAX) {
            s_log_line (log, &log_used, "\nBuild failed: %s.\n", S_TOO_MANY);
            rc = -1;
        }
        else
        if (size < 0 || layers_seal (out)) {
            s_log_line (log, &log_used, "\nBuild failed: the installed files could not be checked.\n");
            rc = -1;
        }
        else
        if (size > cap) {
            s_log_line (log, &log_used, "\nBuild failed: the layer is %.1f MB, over --layers-max-mb (%ld MB).\n",
                        size / 1048576.0, self->config->layers_max_mb);
            rc = -1;
        }
        else
        if (!s_make_room (self, size)) {
            s_log_line (log, &log_used, "\nBuild failed: the layers in use and this one (%.1f MB) do not fit"
                        " in --layers-max-mb (%ld MB).\n", size / 1048576.0, self->config->layers_max_mb);
            rc = -1;
        }
    }
    if (rc == 0) {
        layers_remove (target);
        s_archive_remove (self, hash);
        if (rename (out, target)) {
            s_log_line (log, &log_used, "\nBuild failed: cannot move the layer into place: %s\n", strerror (errno));
            rc = -1;
        }
    }
    //  The archive that workers on other hosts fetch, and its digest: they
    //  check what they receive against it (actors/layerserver.c). The layer
    //  is in place but no project uses it before the row says ready
    if (rc == 0 && s_archive_make (self, hash)) {
        s_log_line (log, &log_used, "\nBuild failed: cannot pack the layer for workers on other hosts.\n");
        rc = -1;
    }
    layers_remove (dir);
    if (self->terminated) {
        //  Not the build's fault: again at the next start
        store_exec (self->store, "UPDATE layers SET state = 'queued', log = '' WHERE hash = ?", "s", hash);
    }
    else
    if (rc == 0) {
        s_log_line (log, &log_used, "\nLayer ready: %.1f MB in %.1f s.\n", size / 1048576.0,
                    (zclock_mono () - started) / 1000.0);
        util_now_iso (now);
        char *clean = s_log_clean (log);
        //  One transaction: a project whose build shows ready runs with it
        //  (gateway loads the contexts of a project whose layer is on its
        //  way for each call, until this commit, then takes INVALIDATE)
        cJSON *projects = NULL;
        bool recorded = store_begin (self->store) == 0
            && store_exec (self->store, "UPDATE layers SET state = 'ready', log = ?, size_bytes = ?,"
                           " built_at = ?, updated_at = ? WHERE hash = ?", "sIsss", clean, size, now, now, hash) == 1
            && (projects = store_query (self->store, "SELECT id FROM projects"
                                        " WHERE requirements_hash = ? AND layer_active IS NOT ?", "ss", hash, hash))
            && store_exec (self->store, "UPDATE projects SET layer_active = ? WHERE requirements_hash = ?",
                           "ss", hash, hash) >= 0
            && store_commit (self->store) == 0;
        free (clean);
        if (recorded) {
            cJSON *row;
            cJSON_ArrayForEach (row, projects) {
                const char *id = cJSON_GetStringValue (cJSON_GetObjectItem (row, "id"));
                if (id)
                    cJSON_AddItemToArray (changed, cJSON_CreateString (id));
            }
            zsys_info ("builder: layer %s is ready (%" PRId64 " bytes)", hash, size);
        }
        else {
            //  Not left building for ever: failed, so that a PUT tries again
            store_rollback (self->store);
            s_log_line (log, &log_used, "\nBuild failed: the server could not record the layer.\n");
            s_log_write (self, hash, "failed", log);
            zsys_error ("builder: could not record layer %s as ready (the store failed; if it still"
                        " fails, the layer shows building until the next start)", hash);
        }
        cJSON_Delete (projects);
    }
    else {
        s_log_write (self, hash, "failed", log);
        zsys_info ("builder: layer %s failed", hash);
    }
    free (log);
    zstr_free (&dir);
    zstr_free (&req);
    zstr_free (&out);
    zstr_free (&file);
    zstr_free (&target);
}

//  The next layer to build: {hash, requirements, owner}, or NULL. Only a
//  layer some project still asks for is worth its build. Builds run one at
//  a time, so they go round the users: a layer belongs to the user owning
//  the oldest project that waits for it, and the next build is the oldest
//  layer of the first user after the last one served (in id order, wrapping
//  round), so one user's many builds cannot hold everyone else's back.
static cJSON *
s_next_job (s_thread_t *self)
{
    cJSON *job = store_query_row (self->store,
        "SELECT hash, requirements, owner FROM ("
        "  SELECT l.hash, l.requirements, l.updated_at,"
        "    (SELECT p.user_id FROM projects p WHERE p.requirements_hash = l.hash"
        "      ORDER BY p.updated_at, p.rowid LIMIT 1) AS owner"
        "  FROM layers l WHERE l.state = 'queued'"
        "   AND l.hash IN (SELECT requirements_hash FROM projects WHERE requirements_hash IS NOT NULL))"
        " ORDER BY (? IS NOT NULL AND owner <= ?), owner, updated_at LIMIT 1",
        "ss", self->last_owner, self->last_owner);
    const char *owner = job? cJSON_GetStringValue (cJSON_GetObjectItem (job, "owner")): NULL;
    if (owner) {
        zstr_free (&self->last_owner);
        self->last_owner = strdup (owner);
    }
    return job;
}

static void
s_scan (s_thread_t *self, cJSON *changed)
{
    if (!self->archives_checked) {
        //  Once, after start-up (packing may take a while)
        s_archive_missing (self);
        self->archives_checked = true;
    }
    if (zclock_mono () >= self->next_sweep) {
        s_sweep (self);
        self->next_sweep = zclock_mono () + S_SWEEP_MS;
    }
    cJSON *job = s_next_job (self);
    const char *hash = job? cJSON_GetStringValue (cJSON_GetObjectItem (job, "hash")): NULL;
    const char *requirements = job? cJSON_GetStringValue (cJSON_GetObjectItem (job, "requirements")): NULL;
    if (layers_key_valid (hash) && requirements)
        s_build (self, hash, requirements, changed);
    cJSON_Delete (job);
}

static void
s_thread_reset (s_thread_t *self)
{
    store_destroy (&self->store);
    zstr_free (&self->layers_dir);
    zstr_free (&self->build_dir);
    zstr_free (&self->index_url);
    zstr_free (&self->extra_index_url);
    zstr_free (&self->find_links);
    zstr_free (&self->find_links_dir);
    zstr_free (&self->last_owner);
}

//  Answers its start with ready or the reason it cannot work, then serves
//  "SCAN" with "SCANNED" and the JSON list of projects whose layer changed
static void
s_build_thread (zsock_t *pipe, void *args_)
{
    const config_t *config = (const config_t *) args_;
    s_thread_t self = { .pipe = pipe, .config = config };
    self.store = store_open (config->data_dir);
    self.layers_dir = zsys_sprintf ("%s/layers", config->data_dir);
    self.build_dir = zsys_sprintf ("%s/layers/.build", config->data_dir);
    if (!self.store) {
        actor_failed (pipe, "cannot open the store in data dir '%s'", config->data_dir);
        s_thread_reset (&self);
        return;
    }
    //  Builds cut off by the last stop start again; their dirs go
    layers_remove (self.build_dir);
    if ((mkdir (self.layers_dir, 0755) && errno != EEXIST) || (mkdir (self.build_dir, 0700) && errno != EEXIST)) {
        actor_failed (pipe, "cannot create %s: %s", self.build_dir, strerror (errno));
        s_thread_reset (&self);
        return;
    }
    store_exec (self.store, "UPDATE layers SET state = 'queued', log = '' WHERE state = 'building'", NULL);
    s_sweep_orphans (&self);
    if (*config->pip_index_url)
        self.index_url = s_index_for_sandbox (&self, config->pip_index_url);
    if (*config->pip_extra_index_url)
        self.extra_index_url = s_index_for_sandbox (&self, config->pip_extra_index_url);
    if (*config->pip_find_links && config->pip_find_links [0] == '/')
        self.find_links_dir = strdup (config->pip_find_links);
    else
    if (*config->pip_find_links)
        self.find_links = s_index_for_sandbox (&self, config->pip_find_links);
    actor_ready (pipe);

    while (!self.terminated) {
        msg_t *msg = msg_recv_pipe (pipe, &self.terminated);
        if (msg && msg_id (msg) == MSG_ID_BUILD_SCAN) {
            cJSON *changed = cJSON_CreateArray ();
            s_scan (&self, changed);
            char *text = cJSON_PrintUnformatted (changed);
            if (msg_send_build_scanned (pipe, NULL, text))
                zsys_error ("builder: build thread cannot answer its actor");
            free (text);
            cJSON_Delete (changed);
        }
        else
        if (msg)
            zsys_warning ("builder: build thread: unexpected '%s'", msg_command (msg));
        msg_destroy (&msg);
    }
    s_thread_reset (&self);
}


//  --------------------------------------------------------------------------
//  The actor

typedef struct {
    zsock_t *pipe;                  //  Actor command pipe
    zsock_t *gateway;               //  DEALER to gateway, for INVALIDATE
    msg_outbox_t *invalidates;      //  INVALIDATEs gateway's full queue could not take yet
    zactor_t *thread;               //  The build thread
    bool scanning;                  //  A SCAN is out
    bool terminated;                //  Did caller ask us to quit?
} self_t;

static void
s_handle_pipe (self_t *self)
{
    char *command = zstr_recv (self->pipe);
    if (!command) {
        self->terminated = true;    //  Interrupted
        return;
    }
    if (streq (command, "$TERM"))
        self->terminated = true;
    else
    if (streq (command, "PING"))
        zstr_send (self->pipe, "PONG");
    else
        zsys_warning ("builder: invalid pipe command '%s'", command);
    zstr_free (&command);
}

static void
s_handle_thread (self_t *self)
{
    msg_t *msg = msg_recv (zactor_sock (self->thread), false);
    if (!msg)
        return;
    if (msg_id (msg) == MSG_ID_BUILD_SCANNED) {
        self->scanning = false;
        cJSON *project;
        cJSON_ArrayForEach (project, msg_build_scanned_changed (msg)) {
            const char *project_id = cJSON_GetStringValue (project);
            if (!project_id || !util_is_id (project_id))
                continue;
            char what [64];
            snprintf (what, sizeof what, "project %s", project_id);
            //  Must arrive, or warm environments keep the old layer
            zmsg_t *invalidate = msg_encode_invalidate (NULL, what);
            msg_outbox_send (self->invalidates, &invalidate);
        }
    }
    else
        zsys_warning ("builder: unexpected '%s' from the build thread", msg_command (msg));
    msg_destroy (&msg);
}

void
builder_actor (zsock_t *pipe, void *args_)
{
    const actor_args_t *args = (const actor_args_t *) args_;
    self_t self = { .pipe = pipe };
    self.gateway = endpoints_connect (args->endpoints, "gateway", ZMQ_DEALER);
    if (!self.gateway) {
        actor_failed (pipe, "%s", endpoints_error ());
        return;
    }
    char *reason = NULL;
    //  The config outlives both: the thread reads it, never writes it
    self.thread = actor_start (s_build_thread, (void *) args->config, "builder thread", &reason);
    if (!self.thread) {
        zsock_destroy (&self.gateway);
        actor_failed (pipe, "builder: %s", reason);
        zstr_free (&reason);
        return;
    }
    self.invalidates = msg_outbox_new (self.gateway, MSG_OUTBOX_LIMIT);
    actor_ready (pipe);

    zpoller_t *poller = zpoller_new (pipe, zactor_sock (self.thread), NULL);
    int64_t next_tick = zclock_mono ();
    while (!self.terminated) {
        int64_t wait = next_tick - zclock_mono ();
        void *which = zpoller_wait (poller, wait < 0? 0: (int) wait);
        if (which == pipe)
            s_handle_pipe (&self);
        else
        if (which == zactor_sock (self.thread))
            s_handle_thread (&self);
        else
        if (zpoller_terminated (poller))
            break;
        if (zclock_mono () >= next_tick) {
            msg_outbox_flush (self.invalidates);
            if (!self.scanning && msg_send_build_scan (zactor_sock (self.thread), NULL) == 0)
                self.scanning = true;
            next_tick = zclock_mono () + S_SCAN_MS;
        }
    }
    zpoller_destroy (&poller);
    //  A build in progress sees the $TERM and kills its sandbox
    zactor_destroy (&self.thread);
    msg_outbox_destroy (&self.invalidates);
    zsock_destroy (&self.gateway);
}


//  --------------------------------------------------------------------------
//  Selftest: a build that fails (no index answers), seen in the store; the
//  sweep of a layer nobody uses; orphan dirs

static cJSON *
s_test_row (store_t *store, const char *hash)
{
    return store_query_row (store, "SELECT * FROM layers WHERE hash = ?", "s", hash);
}

static void
s_test_wait_state (store_t *store, const char *hash, const char *state)
{
    for (int attempt = 0; attempt < 1200; attempt++) {
        cJSON *row = s_test_row (store, hash);
        const char *now = row? cJSON_GetStringValue (cJSON_GetObjectItem (row, "state")): NULL;
        bool done = state? now && streq (now, state): row == NULL;
        cJSON_Delete (row);
        if (done)
            return;
        zclock_sleep (50);
    }
    assert (!"builder: state never came");
}

//  Builds go round the users: bob's one layer comes second even though
//  alice queued three before it
static void
s_test_round_robin (void)
{
    store_t *store = store_new (":memory:");
    assert (store);
    const char *owners [] = { "alice", "alice", "alice", "bob" };
    char keys [4][LAYERS_KEY_SIZE];
    for (int index = 0; index < 4; index++) {
        char name [32];
        snprintf (name, sizeof name, "layer%d", index);
        layers_key (name, keys [index]);
        char stamp [32];
        snprintf (stamp, sizeof stamp, "2026-01-01T00:00:0%d", index);
        char *id = zsys_sprintf ("project%05d", index);
        assert (store_exec (store, "INSERT INTO projects (id, user_id, name, slug, requirements_hash,"
                            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)", "sssssss",
                            id, owners [index], id, id, keys [index], stamp, stamp) == 1);
        assert (store_exec (store, "INSERT INTO layers (hash, requirements, state, created_at, updated_at)"
                            " VALUES (?, 'x', 'queued', ?, ?)", "sss", keys [index], stamp, stamp) == 1);
        zstr_free (&id);
    }
    s_thread_t thread = { .store = store };
    const int expected [] = { 0, 3, 1, 2 };
    for (int turn = 0; turn < 4; turn++) {
        cJSON *job = s_next_job (&thread);
        assert (job);
        assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (job, "hash")), keys [expected [turn]]));
        assert (store_exec (store, "UPDATE layers SET state = 'ready' WHERE hash = ?", "s",
                            keys [expected [turn]]) == 1);
        cJSON_Delete (job);
    }
    assert (s_next_job (&thread) == NULL);
    zstr_free (&thread.last_owner);
    store_destroy (&store);
}

void
builder_test (bool verbose)
{
    printf ("builder: ");
    s_test_round_robin ();
    char template [] = "/tmp/clowdy-builder-XXXXXX";
    char *data_dir = mkdtemp (template);
    assert (data_dir);
    config_t config;
    char error [256];
    //  Port 9 on loopback: nothing answers, pip fails at once
    char *argv [] = { "clowdy", "--data-dir", data_dir, "--pip-index-url", "http://127.0.0.1:9/simple",
                      "--layers-grace", "0", NULL };
    assert (config_parse (&config, 7, argv, error, sizeof error) == 0);
    endpoints_t *endpoints = endpoints_new ();
    endpoints_set (endpoints, "gateway", "inproc://builder-test-gateway");
    zsock_t *gateway = zsock_new_router ("inproc://builder-test-gateway");
    assert (gateway);
    actor_args_t args = { .config = &config, .endpoints = endpoints };
    store_t *store = store_open (data_dir);
    assert (store);
    char *normalised;
    assert (layers_normalise ("nosuchpackage-clowdy==1.0", 25, &normalised, error, sizeof error) == 0);
    char key [LAYERS_KEY_SIZE];
    layers_key (normalised, key);
    assert (store_exec (store, "INSERT INTO projects (id, user_id, name, slug, requirements_hash, created_at, updated_at)"
                        " VALUES ('abcdefabcdef', 'u', 'p', 'p', ?, 'x', 'x')", "s", key) == 1);
    assert (store_exec (store, "INSERT INTO layers (hash, requirements, state, created_at, updated_at)"
                        " VALUES (?, ?, 'queued', 'x', 'x')", "ss", key, normalised) == 1);
    //  A layer nobody names, and a directory no layer names
    char unused [LAYERS_KEY_SIZE];
    layers_key ("unused", unused);
    assert (store_exec (store, "INSERT INTO layers (hash, requirements, state, size_bytes, created_at, updated_at)"
                        " VALUES (?, 'unused', 'ready', 1, 'x', 'x')", "s", unused) == 1);
    char *layers_dir = zsys_sprintf ("%s/layers", data_dir);
    assert (mkdir (layers_dir, 0755) == 0);
    char *unused_dir = zsys_sprintf ("%s/%s", layers_dir, unused);
    assert (mkdir (unused_dir, 0755) == 0);
    char orphan [LAYERS_KEY_SIZE];
    layers_key ("orphan", orphan);
    char *orphan_dir = zsys_sprintf ("%s/%s", layers_dir, orphan);
    assert (mkdir (orphan_dir, 0755) == 0);
    free (normalised);

    zactor_t *actor = actor_start (builder_actor, &args, "builder", NULL);
    assert (actor);
    zstr_send (actor, "PING");
    char *reply = zstr_recv (actor);
    assert (reply && streq (reply, "PONG"));
    zstr_free (&reply);

    s_test_wait_state (store, key, "failed");
    cJSON *row = s_test_row (store, key);
    const char *log = cJSON_GetStringValue (cJSON_GetObjectItem (row, "log"));
    if (verbose)
        printf ("\n%s\n", log);
    assert (log && strstr (log, "Build failed: pip exited with status 1"));
    assert (strstr (log, "nosuchpackage-clowdy"));
    cJSON_Delete (row);
    cJSON *project = store_query_row (store, "SELECT layer_active FROM projects WHERE id = 'abcdefabcdef'", NULL);
    assert (project && cJSON_IsNull (cJSON_GetObjectItem (project, "layer_active")));
    cJSON_Delete (project);
    s_test_wait_state (store, unused, NULL);
    assert (!zsys_file_exists (unused_dir));
    assert (!zsys_file_exists (orphan_dir));
    zactor_destroy (&actor);
    char *clean = s_log_clean ("ok \xc3\xa9 \xa9" "bad \xe2\x82 \xf0\x9f\x99\x82");
    assert (streq (clean, "ok \xc3\xa9 ?bad ?? \xf0\x9f\x99\x82"));
    free (clean);
    //  A NUL in a build's output does not end the log
    char *appended = (char *) malloc (S_LOG_MAX);
    assert (appended);
    size_t appended_used = 0;
    s_log_append (appended, &appended_used, "first\n\0hidden\n", 14);
    s_log_line (appended, &appended_used, "Build failed: %s.\n", "why");
    assert (streq (appended, "first\n?hidden\nBuild failed: why.\n"));
    free (appended);

    //  Over --layers-max-mb: unused layers go, oldest unused first, until
    //  the rest fits; used ones and those within their grace stay
    {
        config_t capped;
        char *capped_argv [] = { "clowdy", "--data-dir", data_dir, "--layers-max-mb", "1", NULL };
        assert (config_parse (&capped, 5, capped_argv, error, sizeof error) == 0);
        s_thread_t thread = { .config = &capped, .store = store, .layers_dir = layers_dir };
        const char *names [] = { "older", "newer", "used" };
        char keys [3][LAYERS_KEY_SIZE];
        int64_t now = (int64_t) time (NULL);
        for (int index = 0; index < 3; index++) {
            layers_key (names [index], keys [index]);
            char *path = zsys_sprintf ("%s/%s", layers_dir, keys [index]);
            assert (mkdir (path, 0755) == 0);
            zstr_free (&path);
            assert (store_exec (store, "INSERT INTO layers (hash, requirements, state, size_bytes, unused_since,"
                                " created_at, updated_at) VALUES (?, 'x', 'ready', ?, ?, 'x', 'x')", "sII",
                                keys [index], (int64_t) (index == 2? 300: 400) * 1024,
                                index == 2? now: now - 20 + index * 10) == 1);
        }
        assert (store_exec (store, "UPDATE projects SET layer_active = ? WHERE id = 'abcdefabcdef'", "s", keys [2]) == 1);
        s_sweep (&thread);
        for (int index = 0; index < 3; index++) {
            cJSON *left = s_test_row (store, keys [index]);
            char *path = zsys_sprintf ("%s/%s", layers_dir, keys [index]);
            assert ((left != NULL) == (index != 0));
            assert (zsys_file_exists (path) == (index != 0));
            zstr_free (&path);
            cJSON_Delete (left);
        }
        config_reset (&capped);
    }

    //  A ready layer sealed before layers travelled gets its archive
    {
        s_thread_t thread = { .config = &config, .store = store, .layers_dir = layers_dir };
        thread.build_dir = zsys_sprintf ("%s/.build", layers_dir);
        char old [LAYERS_KEY_SIZE];
        layers_key ("old", old);
        char *path = zsys_sprintf ("%s/%s/pkg", layers_dir, old);
        assert (zsys_dir_create ("%s", path) == 0);
        zstr_free (&path);
        assert (store_exec (store, "INSERT INTO layers (hash, requirements, state, size_bytes, created_at, updated_at)"
                            " VALUES (?, 'old', 'ready', 1, 'x', 'x')", "s", old) == 1);
        s_archive_missing (&thread);
        path = zsys_sprintf ("%s/%s.tar", layers_dir, old);
        assert (zsys_file_exists (path));
        zstr_free (&path);
        path = zsys_sprintf ("%s/%s.digest", layers_dir, old);
        assert (zsys_file_exists (path));
        zstr_free (&path);
        zstr_free (&thread.build_dir);
    }

    store_destroy (&store);
    zsock_destroy (&gateway);
    endpoints_destroy (&endpoints);
    config_reset (&config);
    layers_remove (data_dir);
    zstr_free (&layers_dir);
    zstr_free (&unused_dir);
    zstr_free (&orphan_dir);
    printf ("OK\n");
}
