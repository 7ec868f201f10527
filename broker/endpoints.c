/*  =========================================================================
    endpoints - where each actor's service socket lives

    A small table from actor name to ZeroMQ endpoint. It is filled once at
    start-up (defaults, then environment, then command line) and read-only
    afterwards, so actors may share one table by pointer: it is configuration,
    never a message.

    Every socket between actors is made here, so the queue rules live here
    too: a bounded high-water mark on every socket (an unbounded queue to a
    reader that stopped grows until the process dies) and a send timeout of
    0 (a DEALER with no peer blocks its sender for ever otherwise: a gateway
    whose assignment failed to start hung every invoke and then shutdown).
    ZMQ_IMMEDIATE is not set: a worker's messages to a control host that is
    briefly unreachable over tcp should wait in the queue, within the mark.
    ========================================================================= */

#include <stdatomic.h>
#include "broker/endpoints.h"

const char *endpoints_names [] = {
    "gateway", "assignment", "placement", "worker", "recorder",
    "builder", "database", "agent", "layers", NULL
};

//  Why this thread's last bind or connect failed (see endpoints_error)
static __thread char s_error [320];

//  Messages queued per peer and direction: ENDPOINTS_HWM, or
//  CLOWDY_ENDPOINTS_HWM (set once by endpoints_load_env, before any actor)
static int s_hwm = ENDPOINTS_HWM;

struct _endpoints_t {
    zhash_t *table;                 //  name -> endpoint string (owned)
    zcert_t *server;                //  CURVE server keys (secret only where we bind), or NULL
    zcert_t *client;                //  This host's CURVE client keys, or NULL
    zactor_t *auth;                 //  zauth admitting known clients, where we bind tcp
    int heartbeat_ms;               //  ZMTP heartbeat interval on tcp links, 0: none
    int heartbeat_timeout_ms;       //  Silence after which ZMTP closes a tcp link
    char results [64];              //  inproc endpoint of gateway's RESULT socket
    atomic_bool results_bound;      //  A gateway of this process has bound it
};

endpoints_t *
endpoints_new (void)
{
    endpoints_t *self = (endpoints_t *) zmalloc (sizeof (endpoints_t));
    //  One per table, so two tables in one process (selftests) never meet
    snprintf (self->results, sizeof self->results, "inproc://clowdy-results-%p", (void *) self);
    atomic_init (&self->results_bound, false);
    self->table = zhash_new ();
    zhash_autofree (self->table);
    for (const char **name = endpoints_names; *name; name++) {
        char endpoint [64];
        snprintf (endpoint, sizeof endpoint, "inproc://clowdy-%s", *name);
        zhash_insert (self->table, *name, endpoint);
    }
    return self;
}

void
endpoints_destroy (endpoints_t **self_p)
{
    if (self_p && *self_p) {
        zactor_destroy (&(*self_p)->auth);
        zcert_destroy (&(*self_p)->server);
        zcert_destroy (&(*self_p)->client);
        zhash_destroy (&(*self_p)->table);
        free (*self_p);
        *self_p = NULL;
    }
}

const char *
endpoints_get (endpoints_t *self, const char *name)
{
    return (const char *) zhash_lookup (self->table, name);
}

//  True if text is inproc://NAME or tcp://HOST:PORT with a sane port
static bool
s_valid_endpoint (const char *endpoint)
{
    if (strncmp (endpoint, "inproc://", 9) == 0)
        return endpoint [9] != 0 && strlen (endpoint) < 256;
    if (strncmp (endpoint, "tcp://", 6) != 0)
        return false;
    const char *host = endpoint + 6;
    const char *colon = strrchr (host, ':');
    if (!colon || colon == host || strlen (host) > 255)
        return false;
    char *end;
    long port = strtol (colon + 1, &end, 10);
    return *end == 0 && colon [1] != 0 && port >= 1 && port <= 65535;
}

int
endpoints_set (endpoints_t *self, const char *name, const char *endpoint)
{
    if (!zhash_lookup (self->table, name) || !endpoint || !s_valid_endpoint (endpoint))
        return -1;
    zhash_update (self->table, name, (void *) endpoint);
    return 0;
}

int
endpoints_load_env (endpoints_t *self)
{
    int rc = 0;
    const char *hwm = getenv ("CLOWDY_ENDPOINTS_HWM");
    if (hwm) {
        char *end;
        long value = strtol (hwm, &end, 10);
        if (*end || value < 1 || value > 1000000) {
            zsys_error ("endpoints: CLOWDY_ENDPOINTS_HWM='%s' is not a number from 1 to 1000000", hwm);
            rc = -1;
        }
        else
            s_hwm = (int) value;
    }
    for (const char **name = endpoints_names; *name; name++) {
        char variable [64];
        snprintf (variable, sizeof variable, "CLOWDY_ENDPOINT_%s", *name);
        for (char *c = variable; *c; c++)
            *c = (char) toupper ((unsigned char) *c);
        const char *value = getenv (variable);
        if (value && endpoints_set (self, *name, value)) {
            zsys_error ("endpoints: %s='%s' is not inproc://NAME or tcp://HOST:PORT", variable, value);
            rc = -1;
        }
    }
    return rc;
}

void
endpoints_set_heartbeat (endpoints_t *self, int interval_ms, int timeout_ms)
{
    self->heartbeat_ms = interval_ms;
    self->heartbeat_timeout_ms = timeout_ms;
}

bool
endpoints_any_tcp (endpoints_t *self)
{
    for (const char **name = endpoints_names; *name; name++)
        if (strncmp (endpoints_get (self, *name), "tcp://", 6) == 0)
            return true;
    return false;
}

static bool
s_is_tcp (const char *endpoint)
{
    return endpoint && strncmp (endpoint, "tcp://", 6) == 0;
}

bool
endpoints_is_tcp (endpoints_t *self, const char *name)
{
    return s_is_tcp (endpoints_get (self, name));
}

const char *
endpoints_results (endpoints_t *self)
{
    return self->results;
}

void
endpoints_set_results_bound (endpoints_t *self, bool bound)
{
    atomic_store (&self->results_bound, bound);
}

bool
endpoints_results_bound (endpoints_t *self)
{
    return atomic_load (&self->results_bound);
}

int
endpoints_make_keys (const char *dir)
{
    if (zsys_dir_create ("%s/clients", dir))
        return -1;
    const char *names [] = { "server", "client" };
    for (size_t i = 0; i < 2; i++) {
        char path [1024];
        snprintf (path, sizeof path, "%s/%s.cert", dir, names [i]);
        if (zsys_file_exists (path))
            continue;
        zcert_t *cert = zcert_new ();
        zcert_set_meta (cert, "role", "%s", names [i]);
        int rc = zcert_save (cert, path);
        zcert_destroy (&cert);
        if (rc)
            return -1;
    }
    //  Admit our own client, so that a single host works at once
    char path [1024], admitted [1024];
    snprintf (path, sizeof path, "%s/client.cert", dir);
    zcert_t *client = zcert_load (path);
    if (!client)
        return -1;
    //  Named by the key in hex: Z85 text may hold '/'
    const byte *key = zcert_public_key (client);
    snprintf (admitted, sizeof admitted, "%s/clients/%02x%02x%02x%02x%02x%02x.cert", dir,
              key [0], key [1], key [2], key [3], key [4], key [5]);
    int rc = zsys_file_exists (admitted) ? 0 : zcert_save_public (client, admitted);
    zcert_destroy (&client);
    return rc;
}

int
endpoints_set_curve (endpoints_t *self, const char *dir)
{
    char path [1024];
    snprintf (path, sizeof path, "%s/server.cert", dir);
    self->server = zcert_load (path);       //  Loads the secret too when it is there
    snprintf (path, sizeof path, "%s/client.cert", dir);
    self->client = zcert_load (path);
    if (!self->server || !self->client) {
        zsys_error ("endpoints: --curve-dir %s needs server.cert and client.cert (make them with "
                    "'clowdy keys --curve-dir %s')", dir, dir);
        return -1;
    }
    //  Where we may bind tcp, only admitted clients get in
    bool binds_tcp = false;
    for (const char **name = endpoints_names; *name; name++)
        binds_tcp = binds_tcp || s_is_tcp (endpoints_get (self, *name));
    if (binds_tcp) {
        snprintf (path, sizeof path, "%s/clients", dir);
        self->auth = zactor_new (zauth, NULL);
        zstr_sendx (self->auth, "CURVE", path, NULL);
        zsock_wait (self->auth);
    }
    return 0;
}

static bool
s_has_secret (zcert_t *cert)
{
    const byte *secret = zcert_secret_key (cert);
    for (int i = 0; i < 32; i++)
        if (secret [i])
            return true;
    return false;
}

//  A new socket with the queue limits and send semantics above, or NULL
static zsock_t *
s_socket_new (endpoints_t *self, const char *name, const char *endpoint, int type)
{
    zsock_t *sock = endpoint ? zsock_new (type) : NULL;
    if (!sock) {
        snprintf (s_error, sizeof s_error, "no socket for endpoint '%s'", name);
        return NULL;
    }
    //  Requests queue up to the high-water mark and are refused past it (the
    //  caller answers 503). Answers (a service's ROUTER, a worker's DEALER
    //  to assignment) and invocation records must not be refused: their
    //  number is already bounded by the requests outstanding, so their
    //  limit is far above it, and a full queue there is a bug to log.
    bool answers = type == ZMQ_ROUTER || type == ZMQ_PUSH || (type == ZMQ_DEALER && streq (name, "worker"));
    zsock_set_sndhwm (sock, answers ? ENDPOINTS_ANSWER_HWM : s_hwm);
    zsock_set_rcvhwm (sock, s_hwm);
    zsock_set_sndtimeo (sock, 0);
    if (type == ZMQ_ROUTER)
        zsock_set_router_mandatory (sock, 1);
    if (s_is_tcp (endpoint) && self->heartbeat_ms > 0) {
        //  ZMTP PINGs on the connection: a peer that froze, vanished or sits
        //  behind a cut link stops answering them, and the connection is
        //  closed after the timeout, so a ROUTER's send to it fails at once
        //  (EHOSTUNREACH) and the peer reconnects when it can. Set before
        //  bind/connect: a connection takes the options it is made with.
        zsock_set_heartbeat_ivl (sock, self->heartbeat_ms);
        zsock_set_heartbeat_timeout (sock, self->heartbeat_timeout_ms);
        zsock_set_heartbeat_ttl (sock, self->heartbeat_timeout_ms);
    }
    return sock;
}

const char *
endpoints_error (void)
{
    return s_error;
}

zsock_t *
endpoints_bind (endpoints_t *self, const char *name, int type)
{
    const char *endpoint = endpoints_get (self, name);
    zsock_t *sock = s_socket_new (self, name, endpoint, type);
    if (!sock)
        return NULL;
    if (s_is_tcp (endpoint) && self->server) {
        if (!s_has_secret (self->server)) {
            zsys_error ("endpoints: binding %s needs server.cert_secret in the curve dir", endpoint);
            snprintf (s_error, sizeof s_error, "cannot bind %s: the curve dir has no server.cert_secret", endpoint);
            zsock_destroy (&sock);
            return NULL;
        }
        zcert_apply (self->server, sock);
        zsock_set_curve_server (sock, 1);
    }
    else
    if (s_is_tcp (endpoint))
        zsys_warning ("endpoints: %s is tcp without CurveZMQ: not encrypted, anyone who reaches it may "
                      "join (set --curve-dir)", endpoint);
    if (zsock_bind (sock, "%s", endpoint) < 0) {
        snprintf (s_error, sizeof s_error, "cannot bind %s: %s", endpoint, zmq_strerror (zmq_errno ()));
        zsys_error ("endpoints: %s", s_error);
        zsock_destroy (&sock);
    }
    return sock;
}

zsock_t *
endpoints_connect (endpoints_t *self, const char *name, int type)
{
    const char *endpoint = endpoints_get (self, name);
    zsock_t *sock = s_socket_new (self, name, endpoint, type);
    if (!sock)
        return NULL;
    if (s_is_tcp (endpoint) && self->server && self->client) {
        zcert_apply (self->client, sock);
        zsock_set_curve_serverkey (sock, zcert_public_txt (self->server));
    }
    if (zsock_connect (sock, "%s", endpoint) < 0) {
        snprintf (s_error, sizeof s_error, "cannot connect to %s: %s", endpoint, zmq_strerror (zmq_errno ()));
        zsys_error ("endpoints: %s", s_error);
        zsock_destroy (&sock);
    }
    return sock;
}

void
endpoints_test (bool verbose)
{
    printf ("endpoints: ");
    endpoints_t *endpoints = endpoints_new ();
    assert (streq (endpoints_get (endpoints, "gateway"), "inproc://clowdy-gateway"));
    assert (endpoints_get (endpoints, "nosuch") == NULL);
    assert (!endpoints_any_tcp (endpoints));
    assert (endpoints_set (endpoints, "gateway", "tcp://127.0.0.1:7001") == 0);
    assert (streq (endpoints_get (endpoints, "gateway"), "tcp://127.0.0.1:7001"));
    assert (endpoints_any_tcp (endpoints));
    assert (endpoints_set (endpoints, "gateway", "tcp://127.0.0.1:0") == -1);
    assert (endpoints_set (endpoints, "gateway", "tcp://127.0.0.1:99999") == -1);
    assert (endpoints_set (endpoints, "gateway", "tcp://:80") == -1);
    assert (endpoints_set (endpoints, "gateway", "udp://x:1") == -1);
    assert (endpoints_set (endpoints, "gateway", "inproc://") == -1);
    assert (endpoints_set (endpoints, "nosuch", "inproc://x") == -1);
    assert (streq (endpoints_get (endpoints, "gateway"), "tcp://127.0.0.1:7001"));

    setenv ("CLOWDY_ENDPOINT_WORKER", "tcp://10.0.0.2:7100", 1);
    assert (endpoints_load_env (endpoints) == 0);
    assert (streq (endpoints_get (endpoints, "worker"), "tcp://10.0.0.2:7100"));
    setenv ("CLOWDY_ENDPOINT_WORKER", "bogus", 1);
    assert (endpoints_load_env (endpoints) == -1);
    assert (streq (endpoints_get (endpoints, "worker"), "tcp://10.0.0.2:7100"));
    unsetenv ("CLOWDY_ENDPOINT_WORKER");

    //  Queues are bounded and sends never block: to a peer that does not read,
    //  to a peer that is gone, to a ROUTER identity nobody has
    assert (endpoints_set (endpoints, "placement", "inproc://endpoints-test-placement") == 0);
    zsock_t *deaf = endpoints_bind (endpoints, "placement", ZMQ_ROUTER);
    zsock_t *talker = endpoints_connect (endpoints, "placement", ZMQ_DEALER);
    assert (deaf && talker);
    int sent = 0;
    while (sent < 10 * ENDPOINTS_HWM && zstr_send (talker, "hello") == 0)
        sent++;
    assert (sent >= ENDPOINTS_HWM && sent < 10 * ENDPOINTS_HWM);
    assert (zmq_errno () == EAGAIN);
    zframe_t *nobody = zframe_new ("nobody", 6);
    assert (zframe_send (&nobody, deaf, ZFRAME_MORE) == -1);
    zframe_destroy (&nobody);
    zsock_destroy (&deaf);
    for (int attempt = 0; attempt < 100 && zstr_send (talker, "anyone?") == 0; attempt++)
        zclock_sleep (10);                  //  The pipe to a closed peer ends soon
    assert (zstr_send (talker, "anyone?") == -1);
    zsock_destroy (&talker);
    //  Why a bind failed names the endpoint
    zsock_t *holder = zsock_new (ZMQ_PULL);
    int held = zsock_bind (holder, "tcp://127.0.0.1:*");
    char taken [64];
    snprintf (taken, sizeof taken, "tcp://127.0.0.1:%d", held);
    assert (endpoints_set (endpoints, "recorder", taken) == 0);
    assert (endpoints_bind (endpoints, "recorder", ZMQ_PULL) == NULL);
    assert (strstr (endpoints_error (), "cannot bind") && strstr (endpoints_error (), taken));
    zsock_destroy (&holder);

    endpoints_destroy (&endpoints);
    endpoints_destroy (&endpoints);

    //  CurveZMQ over tcp: an admitted client talks, an unknown one is refused
    char dir [] = "/tmp/clowdy-curve-test-XXXXXX";
    assert (mkdtemp (dir));
    assert (endpoints_make_keys (dir) == 0);
    assert (endpoints_make_keys (dir) == 0);            //  keeps what exists
    endpoints_t *server = endpoints_new ();
    zsock_t *probe = zsock_new (ZMQ_PULL);
    int port = zsock_bind (probe, "tcp://127.0.0.1:*");
    zsock_destroy (&probe);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    assert (endpoints_set (server, "recorder", endpoint) == 0);
    assert (endpoints_set_curve (server, dir) == 0);
    zsock_t *inbox = NULL;
    for (int attempt = 0; attempt < 50 && !inbox; attempt++) {
        inbox = endpoints_bind (server, "recorder", ZMQ_PULL);
        if (!inbox)
            zclock_sleep (20);          //  The probe's port may take a moment to free
    }
    assert (inbox);
    zsock_set_rcvtimeo (inbox, 2000);
    zsock_t *admitted = endpoints_connect (server, "recorder", ZMQ_PUSH);
    zstr_send (admitted, "hello");
    char *got = zstr_recv (inbox);
    assert (got && streq (got, "hello"));
    zstr_free (&got);
    //  A client with keys the server never admitted
    char stranger_dir [] = "/tmp/clowdy-curve-stranger-XXXXXX";
    assert (mkdtemp (stranger_dir));
    assert (endpoints_make_keys (stranger_dir) == 0);
    char path [1024];
    snprintf (path, sizeof path, "%s/client.cert", stranger_dir);
    zcert_t *stranger_cert = zcert_load (path);
    zsock_t *stranger = zsock_new (ZMQ_PUSH);
    zcert_apply (stranger_cert, stranger);
    snprintf (path, sizeof path, "%s/server.cert", dir);
    zcert_t *server_cert = zcert_load (path);
    zsock_set_curve_serverkey (stranger, zcert_public_txt (server_cert));
    zsock_connect (stranger, "%s", endpoint);
    zsock_set_sndtimeo (stranger, 200);
    zstr_send (stranger, "intruder");
    zsock_set_rcvtimeo (inbox, 500);
    got = zstr_recv (inbox);
    assert (got == NULL);
    //  Plain (no CURVE) is refused too
    zsock_t *plain = zsock_new_push (endpoint);
    zsock_set_sndtimeo (plain, 200);
    zstr_send (plain, "plain");
    got = zstr_recv (inbox);
    assert (got == NULL);
    zsock_destroy (&plain);
    zsock_destroy (&stranger);
    zcert_destroy (&stranger_cert);
    zcert_destroy (&server_cert);
    zsock_destroy (&admitted);
    zsock_destroy (&inbox);
    endpoints_destroy (&server);
    char command [256];
    snprintf (command, sizeof command, "rm -rf %s %s", dir, stranger_dir);
    if (system (command)) { }
    printf ("OK\n");
}
