/*  =========================================================================
    layerfetch - bringing a layer from the control host, checked

    What the control host sends is not trusted: a broken or hostile one
    could send another layer's bytes, more bytes than the cap, chunks out
    of order, or an archive whose names climb out of the layer. So:
    - the archive's size is checked against --layers-max-mb before any
      byte is written, each chunk against the offset and size asked for,
      and the digest against the one the first chunk named;
    - the whole archive's sha256 must equal that digest before it is
      unpacked (the layer key is a hash of the requirements, not of the
      content: the digest is what the control host recorded when it
      sealed the layer, so a layer changed on its disk since is refused);
    - unpacking (core/layerpack.c) takes only relative names inside the
      layer and only files and directories, into a fresh directory;
    - the result is sealed (core/layers.h) and renamed into layers/<key>
      in one step, so a sandbox never mounts half a layer, and a failed
      fetch leaves nothing in the cache.

    Flow control is the zguide's fileio pattern: at most LAYERSERVER_CREDIT
    asks of LAYERSERVER_CHUNK bytes are outstanding, a new ask goes out as
    each chunk arrives, so at most a few MB are in flight whatever the
    layer's size. One DEALER per fetch: replies still in flight when a
    fetch ends go with its socket, never into the next fetch.

    The cache: layers/<key> directories, their modification time the last
    use (the worker touches a layer when a cold start mounts it). Before a
    new one goes in, the least recently used ones that no environment or
    waiting call uses, and that were not used in the last minute (a cold
    start may be mounting one), go until the total fits in --layers-max-mb.
    ========================================================================= */

#include <cjson/cJSON.h>
#include "actors/layerfetch.h"
#include "actors/layerserver.h"
#include "broker/actor.h"
#include "broker/endpoints.h"
#include "broker/msg.h"
#include "core/config.h"
#include "core/layerpack.h"
#include "core/layers.h"

#define S_RECENT_S      60          //  a layer used this recently is not evicted
#define S_FLIGHTS       128         //  fetches in flight in one process at most (one per worker actor)

//  The layers being fetched in this process: a --role worker process runs
//  several worker actors, each with its fetch thread, and one fetch per
//  layer is enough for all of them
static pthread_mutex_t s_flight_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t s_flight_done = PTHREAD_COND_INITIALIZER;
static char s_flights [S_FLIGHTS][LAYERS_KEY_SIZE];

typedef struct {
    zsock_t *pipe;                  //  Our pipe to the worker
    const config_t *config;         //  Settings
    endpoints_t *endpoints;         //  Where the layer server is
    char *layers_dir;               //  <data_dir>/layers
    char *fetch_dir;                //  <data_dir>/layers/.fetch-N, ours alone
    bool terminated;                //  $TERM came
} self_t;

static int64_t
s_cap (self_t *self)
{
    return (int64_t) self->config->layers_max_mb * 1024 * 1024;
}

//  Bring the archive into path; its digest as the control host says it
static int
s_transfer (self_t *self, const char *hash, const char *path, char digest [LAYERPACK_DIGEST_SIZE],
            int64_t *total_p, char *error, size_t error_size)
{
    *digest = 0;
    zsock_t *sock = endpoints_connect (self->endpoints, "layers", ZMQ_DEALER);
    if (!sock) {
        snprintf (error, error_size, "%s", endpoints_error ());
        return -1;
    }
    int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf (error, error_size, "cannot write %s: %s", path, strerror (errno));
        zsock_destroy (&sock);
        return -1;
    }
    zpoller_t *poller = zpoller_new (sock, self->pipe, NULL);
    int64_t cap = s_cap (self);
    int64_t next_ask = 0, received = 0, total = -1;
    int outstanding = 0;
    int64_t deadline = zclock_mono () + LAYERFETCH_MAX_MS;
    while (!*error) {
        while (outstanding < LAYERSERVER_CREDIT && next_ask <= cap && (total < 0 || next_ask < total)) {
            if (msg_send_layer_fetch (sock, NULL, hash, next_ask, LAYERSERVER_CHUNK)) {
                if (outstanding == 0)
                    snprintf (error, error_size, "cannot reach the control host's layer server at %s (%s): "
                              "CLOWDY_ENDPOINT_LAYERS names it", endpoints_get (self->endpoints, "layers"),
                              zmq_strerror (zmq_errno ()));
                break;
            }
            next_ask += LAYERSERVER_CHUNK;
            outstanding++;
        }
        if (*error || (total >= 0 && received == total))
            break;
        int64_t left = deadline - zclock_mono ();
        void *which = zpoller_wait (poller, (int) (left < LAYERFETCH_IDLE_MS? (left > 0? left: 0): LAYERFETCH_IDLE_MS));
        if (which == self->pipe || zpoller_terminated (poller)) {
            //  The worker sends one LAYER_WANT at a time: this is $TERM
            self->terminated = true;
            snprintf (error, error_size, "the worker is stopping");
            break;
        }
        if (!which) {
            if (zclock_mono () >= deadline)
                snprintf (error, error_size, "the fetch took longer than %d s", LAYERFETCH_MAX_MS / 1000);
            else
                snprintf (error, error_size, "the control host's layer server did not answer for %d s (is "
                          "CLOWDY_ENDPOINT_LAYERS its tcp endpoint, and does it run?)", LAYERFETCH_IDLE_MS / 1000);
            break;
        }
        msg_t *msg = msg_recv (sock, false);
        if (!msg)
            continue;                   //  Malformed: logged and dropped
        if (msg_id (msg) == MSG_ID_LAYER_ERROR)
            snprintf (error, error_size, "the control host says: %.300s", msg_layer_error_reason (msg));
        else
        if (msg_id (msg) != MSG_ID_LAYER_CHUNK || strneq (msg_layer_chunk_hash (msg), hash))
            snprintf (error, error_size, "the control host answered with something else than the layer asked for");
        else {
            outstanding--;
            size_t size;
            const byte *data = msg_layer_chunk_data (msg, &size);
            int64_t offset = msg_layer_chunk_offset (msg);
            int64_t said_total = msg_layer_chunk_total (msg);
            const char *said_digest = msg_layer_chunk_digest (msg);
            if (total < 0) {
                total = said_total;
                snprintf (digest, LAYERPACK_DIGEST_SIZE, "%s", said_digest);
            }
            if (said_total < 0 || !layers_key_valid (said_digest))
                snprintf (error, error_size, "the control host sent no valid size or digest");
            else
            if (said_total != total || strneq (said_digest, digest))
                snprintf (error, error_size, "the control host changed the layer's size or digest during the fetch");
            else
            if (total > cap)
                snprintf (error, error_size, "the layer is %.1f MB, over this worker's --layers-max-mb (%ld MB)",
                          total / 1048576.0, self->config->layers_max_mb);
            else
            if (offset >= total) {
                if (size)
                    snprintf (error, error_size, "the control host sent bytes past the layer's end");
            }
            else
            if (offset != received)
                snprintf (error, error_size, "the control host sent chunks out of order");
            else
            if ((int64_t) size != (total - offset < LAYERSERVER_CHUNK? total - offset: LAYERSERVER_CHUNK))
                snprintf (error, error_size, "the control host sent a chunk of the wrong size");
            else
            if (write (fd, data, size) != (ssize_t) size)
                snprintf (error, error_size, "cannot write %s: %s", path, strerror (errno));
            else
                received += (int64_t) size;
        }
        msg_destroy (&msg);
    }
    zpoller_destroy (&poller);
    zsock_destroy (&sock);
    if (close (fd) && !*error)
        snprintf (error, error_size, "cannot write %s: %s", path, strerror (errno));
    *total_p = received;
    return *error? -1: 0;
}

static bool
s_kept (cJSON *keep, const char *hash)
{
    cJSON *item;
    cJSON_ArrayForEach (item, keep)
        if (cJSON_IsString (item) && streq (item->valuestring, hash))
            return true;
    return false;
}

typedef struct {
    char hash [LAYERS_KEY_SIZE];    //  Its key
    int64_t size;                   //  Bytes
    time_t used;                    //  Its directory's modification time: the last use
} s_cached_t;

static int
s_older_first (const void *left, const void *right)
{
    time_t a = ((const s_cached_t *) left)->used, b = ((const s_cached_t *) right)->used;
    return a < b? -1: a > b? 1: 0;
}

//  Make room for need more bytes under the cap: the least recently used
//  layers that keep does not name go first
static void
s_evict (self_t *self, const char *hash, cJSON *keep, int64_t need)
{
    DIR *dir = opendir (self->layers_dir);
    if (!dir)
        return;
    size_t count = 0, capacity = 16;
    s_cached_t *cached = (s_cached_t *) malloc (capacity * sizeof (s_cached_t));
    assert (cached);
    int64_t total = need;
    struct dirent *entry;
    while ((entry = readdir (dir))) {
        if (!layers_key_valid (entry->d_name) || streq (entry->d_name, hash))
            continue;
        char *path = zsys_sprintf ("%s/%s", self->layers_dir, entry->d_name);
        struct stat info;
        int64_t size = lstat (path, &info) == 0 && S_ISDIR (info.st_mode)? layers_dir_size (path, -1): -1;
        zstr_free (&path);
        if (size < 0)
            continue;
        total += size;
        //  One used in the last minute may be being mounted by a cold start
        //  that came after keep was made
        if (s_kept (keep, entry->d_name) || info.st_mtime > time (NULL) - S_RECENT_S)
            continue;
        if (count == capacity) {
            capacity *= 2;
            cached = (s_cached_t *) realloc (cached, capacity * sizeof (s_cached_t));
            assert (cached);
        }
        memcpy (cached [count].hash, entry->d_name, LAYERS_KEY_SIZE);    //  a valid key: 64 digits and its NUL
        cached [count].size = size;
        cached [count].used = info.st_mtime;
        count++;
    }
    closedir (dir);
    qsort (cached, count, sizeof (s_cached_t), s_older_first);
    for (size_t index = 0; index < count && total > s_cap (self); index++) {
        char *path = zsys_sprintf ("%s/%s", self->layers_dir, cached [index].hash);
        if (layers_remove (path) == 0) {
            total -= cached [index].size;
            zsys_info ("worker: evicted cached layer %s (%" PRId64 " bytes) to stay within --layers-max-mb",
                       cached [index].hash, cached [index].size);
        }
        zstr_free (&path);
    }
    if (total > s_cap (self))
        zsys_warning ("worker: the layers in use take %.1f MB, over --layers-max-mb (%ld MB)",
                      total / 1048576.0, self->config->layers_max_mb);
    free (cached);
}

//  Wait until no other thread of this process fetches hash, then claim
//  it: the slot's index, or -1 if $TERM came meanwhile or all are taken
static int
s_flight_claim (self_t *self, const char *hash)
{
    pthread_mutex_lock (&s_flight_lock);
    int slot = -1;
    while (slot < 0 && !self->terminated) {
        int free_slot = -1;
        bool busy = false;
        for (int index = 0; index < S_FLIGHTS; index++)
            if (streq (s_flights [index], hash))
                busy = true;
            else
            if (!*s_flights [index] && free_slot < 0)
                free_slot = index;
        if (!busy && free_slot >= 0) {
            snprintf (s_flights [free_slot], LAYERS_KEY_SIZE, "%s", hash);
            slot = free_slot;
            break;
        }
        //  Another thread brings it (or, rarely, every slot is taken)
        struct timespec until;
        clock_gettime (CLOCK_REALTIME, &until);
        until.tv_nsec += 200 * 1000 * 1000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait (&s_flight_done, &s_flight_lock, &until);
        if (zsock_events (self->pipe) & ZMQ_POLLIN)
            self->terminated = true;    //  The worker sends one LAYER_WANT at a time: $TERM
    }
    pthread_mutex_unlock (&s_flight_lock);
    return slot;
}

static void
s_flight_release (int slot)
{
    pthread_mutex_lock (&s_flight_lock);
    s_flights [slot][0] = 0;
    pthread_cond_broadcast (&s_flight_done);
    pthread_mutex_unlock (&s_flight_lock);
}

static int s_fetch_claimed (self_t *self, const char *hash, cJSON *keep, char *error, size_t error_size);

//  Bring layers/<hash> into place; 0, or -1 with the reason in error
static int
s_fetch (self_t *self, const char *hash, cJSON *keep, char *error, size_t error_size)
{
    *error = 0;
    if (!layers_key_valid (hash)) {
        snprintf (error, error_size, "'%.80s' is not a layer key", hash);
        return -1;
    }
    int slot = s_flight_claim (self, hash);
    if (slot < 0) {
        snprintf (error, error_size, "the worker is stopping");
        return -1;
    }
    int rc = s_fetch_claimed (self, hash, keep, error, error_size);
    s_flight_release (slot);
    return rc;
}

static int
s_fetch_claimed (self_t *self, const char *hash, cJSON *keep, char *error, size_t error_size)
{
    char *target = zsys_sprintf ("%s/%s", self->layers_dir, hash);
    struct stat info;
    if (lstat (target, &info) == 0 && S_ISDIR (info.st_mode)) {
        zstr_free (&target);
        return 0;                       //  Another worker of this process brought it meanwhile
    }
    int64_t started = zclock_mono ();
    char *work = zsys_sprintf ("%s/%s", self->fetch_dir, hash);
    char *archive = zsys_sprintf ("%s/layer.tar", work);
    char *tree = zsys_sprintf ("%s/tree", work);
    layers_remove (work);
    char digest [LAYERPACK_DIGEST_SIZE], computed [LAYERPACK_DIGEST_SIZE];
    int64_t bytes = 0, size = 0;
    if (mkdir (work, 0700) || mkdir (tree, 0755))
        snprintf (error, error_size, "cannot create %s: %s", work, strerror (errno));
    if (!*error)
        s_transfer (self, hash, archive, digest, &bytes, error, error_size);
    if (!*error && (layerpack_file_digest (archive, computed) || strneq (computed, digest)))
        snprintf (error, error_size, "the layer's archive does not match the digest the control host recorded "
                  "when it was built (sha256 %.12s..., expected %.12s...): refused", computed, digest);
    if (!*error)
        layerpack_unpack (archive, tree, s_cap (self), error, error_size);
    unlink (archive);
    if (!*error && ((size = layers_dir_size (tree, -1)) < 0 || layers_seal (tree)))
        snprintf (error, error_size, "the received layer could not be sealed");
    if (!*error) {
        s_evict (self, hash, keep, size);
        if (rename (tree, target) && !(lstat (target, &info) == 0 && S_ISDIR (info.st_mode)))
            snprintf (error, error_size, "cannot move the layer into place: %s", strerror (errno));
    }
    layers_remove (work);
    if (*error)
        zsys_warning ("worker: could not fetch layer %s: %s", hash, error);
    else
        zsys_info ("worker: fetched layer %s from the control host (%" PRId64 " bytes, digest checked) in %.1f s",
                   hash, bytes, (zclock_mono () - started) / 1000.0);
    zstr_free (&target);
    zstr_free (&work);
    zstr_free (&archive);
    zstr_free (&tree);
    return *error? -1: 0;
}

void
layerfetch_actor (zsock_t *pipe, void *args_)
{
    const actor_args_t *args = (const actor_args_t *) args_;
    self_t self = { .pipe = pipe, .config = args->config, .endpoints = args->endpoints };
    self.layers_dir = zsys_sprintf ("%s/layers", self.config->data_dir);
    self.fetch_dir = zsys_sprintf ("%s/layers/.fetch-%d", self.config->data_dir, args->instance);
    //  What a fetch cut off by the last stop left goes
    layers_remove (self.fetch_dir);
    if ((mkdir (self.layers_dir, 0755) && errno != EEXIST) || mkdir (self.fetch_dir, 0700)) {
        actor_failed (pipe, "cannot create %s: %s", self.fetch_dir, strerror (errno));
        zstr_free (&self.layers_dir);
        zstr_free (&self.fetch_dir);
        return;
    }
    actor_ready (pipe);
    while (!self.terminated) {
        msg_t *msg = msg_recv_pipe (pipe, &self.terminated);
        if (msg && msg_id (msg) == MSG_ID_LAYER_WANT) {
            char error [512];
            s_fetch (&self, msg_layer_want_hash (msg), msg_layer_want_keep (msg), error, sizeof error);
            if (msg_send_layer_fetched (pipe, NULL, msg_layer_want_hash (msg), error))
                zsys_error ("worker: the layer fetch thread cannot answer its worker");
        }
        else
        if (msg)
            zsys_warning ("worker: layer fetch thread: unexpected '%s'", msg_command (msg));
        msg_destroy (&msg);
    }
    layers_remove (self.fetch_dir);
    zstr_free (&self.layers_dir);
    zstr_free (&self.fetch_dir);
}


//  --------------------------------------------------------------------------
//  Selftest: against a real layer server, a layer arrives sealed; a
//  changed archive is refused and leaves nothing; the cache is trimmed

static char *
s_test_fetch (zactor_t *fetcher, const char *hash, const char *keep)
{
    assert (msg_send_layer_want (zactor_sock (fetcher), NULL, hash, keep) == 0);
    msg_t *msg = msg_recv (zactor_sock (fetcher), false);
    assert (msg && msg_id (msg) == MSG_ID_LAYER_FETCHED && streq (msg_layer_fetched_hash (msg), hash));
    char *error = strdup (msg_layer_fetched_error (msg));
    msg_destroy (&msg);
    return error;
}

//  A sealed layer on the control side, with n bytes in one file
static void
s_test_layer (const char *control_dir, const char *hash, size_t n)
{
    char *tree = zsys_sprintf ("%s/layers/%s", control_dir, hash);
    char *pkg = zsys_sprintf ("%s/pkg", tree);
    assert (zsys_dir_create ("%s", pkg) == 0);
    char *file = zsys_sprintf ("%s/__init__.py", pkg);
    FILE *handle = fopen (file, "w");
    assert (handle);
    for (size_t index = 0; index < n; index++)
        fputc ('#', handle);
    fclose (handle);
    assert (layers_seal (tree) == 0);
    char *archive = zsys_sprintf ("%s.tar", tree);
    char digest [LAYERPACK_DIGEST_SIZE];
    assert (layerpack_pack (tree, archive, digest) == 0);
    char *digest_file = zsys_sprintf ("%s.digest", tree);
    handle = fopen (digest_file, "w");
    fprintf (handle, "%s\n", digest);
    fclose (handle);
    zstr_free (&tree);
    zstr_free (&pkg);
    zstr_free (&file);
    zstr_free (&archive);
    zstr_free (&digest_file);
}

void
layerfetch_test (bool verbose)
{
    printf ("layerfetch: ");
    char control_template [] = "/tmp/clowdy-layerfetch-control-XXXXXX";
    char worker_template [] = "/tmp/clowdy-layerfetch-worker-XXXXXX";
    char *control_dir = mkdtemp (control_template);
    char *worker_dir = mkdtemp (worker_template);
    assert (control_dir && worker_dir);
    char *control_argv [] = { "clowdy", "--data-dir", control_dir, NULL };
    char *worker_argv [] = { "clowdy", "--data-dir", worker_dir, "--layers-max-mb", "1", NULL };
    config_t control_config, worker_config;
    char error [256];
    assert (config_parse (&control_config, 3, control_argv, error, sizeof error) == 0);
    assert (config_parse (&worker_config, 5, worker_argv, error, sizeof error) == 0);
    char first [LAYERS_KEY_SIZE], second [LAYERS_KEY_SIZE], tampered [LAYERS_KEY_SIZE], missing [LAYERS_KEY_SIZE];
    layers_key ("first", first);
    layers_key ("second", second);
    layers_key ("tampered", tampered);
    layers_key ("missing", missing);
    //  600 KB: three chunks; two of these do not fit in the worker's 1 MB
    s_test_layer (control_dir, first, 600 * 1024);
    s_test_layer (control_dir, second, 600 * 1024);
    s_test_layer (control_dir, tampered, 1000);
    char *path = zsys_sprintf ("%s/layers/%s.tar", control_dir, tampered);
    FILE *handle = fopen (path, "r+");
    assert (handle && fseek (handle, 700, SEEK_SET) == 0);
    fputc ('!', handle);                //  Inside the file's bytes: the tar stays readable
    fclose (handle);
    zstr_free (&path);

    endpoints_t *endpoints = endpoints_new ();
    endpoints_set (endpoints, "layers", "inproc://layerfetch-test");
    actor_args_t server_args = { &control_config, endpoints, 0 };
    actor_args_t fetch_args = { &worker_config, endpoints, 0 };
    zactor_t *server = actor_start (layerserver_actor, &server_args, "layerserver", NULL);
    zactor_t *fetcher = actor_start (layerfetch_actor, &fetch_args, "layer fetch", NULL);
    assert (server && fetcher);

    char *fetched = s_test_fetch (fetcher, first, "[]");
    assert (streq (fetched, ""));
    zstr_free (&fetched);
    path = zsys_sprintf ("%s/layers/%s/pkg/__init__.py", worker_dir, first);
    struct stat info;
    assert (stat (path, &info) == 0 && info.st_size == 600 * 1024 && info.st_uid == 0 && !(info.st_mode & 0222 & ~0200));
    zstr_free (&path);
    //  The archive's digest is not what it was sealed with: refused, nothing kept
    fetched = s_test_fetch (fetcher, tampered, "[]");
    if (verbose)
        printf ("(%s) ", fetched);
    assert (strstr (fetched, "does not match the digest"));
    zstr_free (&fetched);
    path = zsys_sprintf ("%s/layers/%s", worker_dir, tampered);
    assert (!zsys_file_exists (path));
    zstr_free (&path);
    fetched = s_test_fetch (fetcher, missing, "[]");
    assert (strstr (fetched, "no such layer"));
    zstr_free (&fetched);
    //  The second does not fit beside the first: kept when in use (over
    //  the cap, with a warning), evicted when not
    char *keep = zsys_sprintf ("[\"%s\"]", first);
    fetched = s_test_fetch (fetcher, second, keep);
    assert (streq (fetched, ""));
    zstr_free (&fetched);
    path = zsys_sprintf ("%s/layers/%s", worker_dir, first);
    assert (zsys_file_exists (path));
    char *second_path = zsys_sprintf ("%s/layers/%s", worker_dir, second);
    assert (layers_remove (second_path) == 0);
    fetched = s_test_fetch (fetcher, second, "[]");
    assert (streq (fetched, ""));               //  first was used just now: kept
    zstr_free (&fetched);
    assert (zsys_file_exists (path));
    assert (layers_remove (second_path) == 0);
    struct timespec long_ago [2] = { { .tv_sec = 1000000000 }, { .tv_sec = 1000000000 } };
    assert (utimensat (AT_FDCWD, path, long_ago, 0) == 0);
    fetched = s_test_fetch (fetcher, second, "[]");
    assert (streq (fetched, ""));
    zstr_free (&fetched);
    assert (!zsys_file_exists (path) && zsys_file_exists (second_path));
    zstr_free (&path);
    zstr_free (&second_path);
    zstr_free (&keep);
    //  No layer server where the endpoint says: a clear failure, not a hang
    zactor_destroy (&server);
    fetched = s_test_fetch (fetcher, missing, "[]");
    if (verbose)
        printf ("(%s) ", fetched);
    assert (strstr (fetched, "CLOWDY_ENDPOINT_LAYERS"));
    zstr_free (&fetched);
    layers_key ("nobody", missing);
    //  (the idle bound is long; the selftest checks the stop instead: $TERM
    //  during a fetch ends it at once)
    assert (msg_send_layer_want (zactor_sock (fetcher), NULL, missing, "[]") == 0);
    zclock_sleep (100);
    int64_t stopping = zclock_mono ();
    zactor_destroy (&fetcher);
    assert (zclock_mono () - stopping < 5000);

    endpoints_destroy (&endpoints);
    config_reset (&control_config);
    config_reset (&worker_config);
    layers_remove (control_dir);
    layers_remove (worker_dir);
    printf ("OK\n");
}
