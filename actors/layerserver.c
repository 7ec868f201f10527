/*  =========================================================================
    layerserver - the control host's side of layers travelling to workers

    Stateless, as the zguide's fileio server: each LAYER_FETCH names the
    layer, the offset and the size it wants, and the answer is read from
    <data_dir>/layers/<key>.tar with one pread, with the digest from
    <key>.digest beside it (both written by the builder when it sealed the
    layer, see actors/builder.c). Nothing is kept between asks, so a worker
    that goes away costs nothing, and the flow control is the worker's: it
    asks again only as chunks arrive. A read is at most LAYERSERVER_CHUNK
    bytes of a local file, so the loop never waits long on one.

    A layer that is not there (never built here, removed as unused, or
    built before layers travelled) is answered LAYER_ERROR with the reason,
    as is a malformed ask; the digest is what the worker checks, so a
    changed archive on this host fails the worker's check instead of
    spreading.
    ========================================================================= */

#include "actors/layerserver.h"
#include "broker/actor.h"
#include "broker/endpoints.h"
#include "broker/msg.h"
#include "core/config.h"
#include "core/layers.h"

typedef struct {
    zsock_t *pipe;                  //  Actor command pipe
    zsock_t *frontend;              //  ROUTER the workers' fetch threads connect to
    const config_t *config;         //  Settings
    char *buffer;                   //  One chunk
    bool terminated;                //  Did caller ask us to quit?
} self_t;

static void
s_error (self_t *self, zframe_t *route, const char *hash, const char *reason)
{
    if (msg_send_layer_error (self->frontend, route, hash, reason))
        zsys_debug ("layerserver: the worker that asked for %s is gone", hash);
}

static void
s_handle_fetch (self_t *self, msg_t *msg)
{
    zframe_t *route = msg_route (msg);
    const char *hash = msg_layer_fetch_hash (msg);
    int64_t offset = msg_layer_fetch_offset (msg);
    int64_t size = msg_layer_fetch_size (msg);
    if (!layers_key_valid (hash) || offset < 0 || size < 1 || size > LAYERSERVER_CHUNK) {
        s_error (self, route, layers_key_valid (hash)? hash: "",
                 "a layer fetch names a layer key, an offset and 1 to 262144 bytes");
        return;
    }
    char *path = zsys_sprintf ("%s/layers/%s.digest", self->config->data_dir, hash);
    char digest [80] = "";
    FILE *file = fopen (path, "r");
    if (file) {
        if (!fgets (digest, sizeof digest, file))
            digest [0] = 0;
        fclose (file);
    }
    digest [strcspn (digest, "\n")] = 0;
    zstr_free (&path);
    path = zsys_sprintf ("%s/layers/%s.tar", self->config->data_dir, hash);
    int fd = strlen (digest) == 64? open (path, O_RDONLY | O_CLOEXEC): -1;
    zstr_free (&path);
    struct stat info;
    if (fd < 0 || fstat (fd, &info)) {
        s_error (self, route, hash, "the control host has no such layer ready to send (not built, removed as "
                                    "unused, or built before layers travelled: save the requirements again)");
        if (fd >= 0)
            close (fd);
        return;
    }
    ssize_t got = offset < info.st_size? pread (fd, self->buffer, (size_t) size, (off_t) offset): 0;
    close (fd);
    if (got < 0) {
        s_error (self, route, hash, "the control host cannot read the layer's archive");
        return;
    }
    if (msg_send_layer_chunk (self->frontend, route, hash, offset, (int64_t) info.st_size, digest,
                              self->buffer, (size_t) got))
        zsys_debug ("layerserver: the worker that asked for %s is gone", hash);
}

static void
s_handle_pipe (self_t *self)
{
    char *command = zstr_recv (self->pipe);
    if (!command || streq (command, "$TERM"))
        self->terminated = true;
    else
    if (streq (command, "PING"))
        zstr_send (self->pipe, "PONG");
    else
        zsys_warning ("layerserver: invalid pipe command '%s'", command);
    zstr_free (&command);
}

void
layerserver_actor (zsock_t *pipe, void *args_)
{
    const actor_args_t *args = (const actor_args_t *) args_;
    self_t self = { .pipe = pipe, .config = args->config };
    self.frontend = endpoints_bind (args->endpoints, "layers", ZMQ_ROUTER);
    if (!self.frontend) {
        actor_failed (pipe, "%s", endpoints_error ());
        return;
    }
    self.buffer = (char *) malloc (LAYERSERVER_CHUNK);
    assert (self.buffer);
    actor_ready (pipe);
    zpoller_t *poller = zpoller_new (pipe, self.frontend, NULL);
    while (!self.terminated) {
        void *which = zpoller_wait (poller, -1);
        if (which == pipe)
            s_handle_pipe (&self);
        else
        if (which == self.frontend) {
            msg_t *msg = msg_recv (self.frontend, true);
            if (msg && msg_id (msg) == MSG_ID_LAYER_FETCH)
                s_handle_fetch (&self, msg);
            else
            if (msg)
                zsys_warning ("layerserver: unexpected '%s'", msg_command (msg));
            msg_destroy (&msg);
        }
        else
            break;                  //  Interrupted
    }
    zpoller_destroy (&poller);
    free (self.buffer);
    zsock_destroy (&self.frontend);
}


//  --------------------------------------------------------------------------
//  Selftest: chunks of a layer's archive, its digest, and the refusals

void
layerserver_test (bool verbose)
{
    printf ("layerserver: ");
    char template [] = "/tmp/clowdy-layerserver-XXXXXX";
    char *data_dir = mkdtemp (template);
    assert (data_dir);
    char *argv [] = { "clowdy", "--data-dir", data_dir, NULL };
    config_t config;
    char error [256];
    assert (config_parse (&config, 3, argv, error, sizeof error) == 0);
    char key [LAYERS_KEY_SIZE];
    layers_key ("served", key);
    char *path = zsys_sprintf ("%s/layers", data_dir);
    assert (mkdir (path, 0755) == 0);
    zstr_free (&path);
    //  An archive of 300000 bytes: two chunks, the second short
    path = zsys_sprintf ("%s/layers/%s.tar", data_dir, key);
    FILE *file = fopen (path, "w");
    assert (file);
    for (int index = 0; index < 300000; index++)
        fputc ('a' + index % 26, file);
    fclose (file);
    zstr_free (&path);
    const char *digest = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    path = zsys_sprintf ("%s/layers/%s.digest", data_dir, key);
    file = fopen (path, "w");
    assert (file);
    fprintf (file, "%s\n", digest);
    fclose (file);
    zstr_free (&path);

    endpoints_t *endpoints = endpoints_new ();
    endpoints_set (endpoints, "layers", "inproc://layerserver-test");
    actor_args_t args = { &config, endpoints, 0 };
    zactor_t *server = actor_start (layerserver_actor, &args, "layerserver", NULL);
    assert (server);
    zsock_t *worker = zsock_new_dealer ("inproc://layerserver-test");
    zsock_set_rcvtimeo (worker, 5000);
    assert (msg_send_layer_fetch (worker, NULL, key, 0, LAYERSERVER_CHUNK) == 0);
    assert (msg_send_layer_fetch (worker, NULL, key, LAYERSERVER_CHUNK, LAYERSERVER_CHUNK) == 0);
    msg_t *msg = msg_recv (worker, false);
    assert (msg && msg_id (msg) == MSG_ID_LAYER_CHUNK);
    size_t size;
    const byte *data = msg_layer_chunk_data (msg, &size);
    assert (size == LAYERSERVER_CHUNK && data [0] == 'a' && data [27] == 'b');
    assert (msg_layer_chunk_total (msg) == 300000 && streq (msg_layer_chunk_digest (msg), digest));
    msg_destroy (&msg);
    msg = msg_recv (worker, false);
    assert (msg && msg_id (msg) == MSG_ID_LAYER_CHUNK);
    data = msg_layer_chunk_data (msg, &size);
    assert (size == 300000 - LAYERSERVER_CHUNK && msg_layer_chunk_offset (msg) == LAYERSERVER_CHUNK);
    msg_destroy (&msg);
    //  Past the end: an empty chunk
    assert (msg_send_layer_fetch (worker, NULL, key, 300000, 10) == 0);
    msg = msg_recv (worker, false);
    assert (msg && msg_id (msg) == MSG_ID_LAYER_CHUNK);
    msg_layer_chunk_data (msg, &size);
    assert (size == 0);
    msg_destroy (&msg);
    //  Refused: a layer not here, a name that is no key, a chunk too big
    char other [LAYERS_KEY_SIZE];
    layers_key ("other", other);
    assert (msg_send_layer_fetch (worker, NULL, other, 0, 10) == 0);
    assert (msg_send_layer_fetch (worker, NULL, "../../etc/passwd", 0, 10) == 0);
    assert (msg_send_layer_fetch (worker, NULL, key, 0, LAYERSERVER_CHUNK + 1) == 0);
    for (int index = 0; index < 3; index++) {
        msg = msg_recv (worker, false);
        assert (msg && msg_id (msg) == MSG_ID_LAYER_ERROR);
        if (verbose)
            printf ("(%s) ", msg_layer_error_reason (msg));
        assert (index? strstr (msg_layer_error_reason (msg), "262144") != NULL
                     : strstr (msg_layer_error_reason (msg), "no such layer") != NULL);
        msg_destroy (&msg);
    }
    zstr_send (server, "PING");
    char *reply = zstr_recv (server);
    assert (reply && streq (reply, "PONG"));
    zstr_free (&reply);
    zsock_destroy (&worker);
    zactor_destroy (&server);
    endpoints_destroy (&endpoints);
    config_reset (&config);
    char *command = zsys_sprintf ("rm -rf %s", data_dir);
    assert (system (command) == 0);
    zstr_free (&command);
    printf ("OK\n");
}
