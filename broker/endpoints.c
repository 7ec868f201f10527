/*  =========================================================================
    endpoints - where each actor's service socket lives

    A small table from actor name to ZeroMQ endpoint. It is filled once at
    start-up (defaults, then environment, then command line) and read-only
    afterwards, so actors may share one table by pointer: it is configuration,
    never a message.
    ========================================================================= */

#include "broker/endpoints.h"

const char *endpoints_names [] = {
    "gateway", "assignment", "placement", "worker", "recorder",
    "builder", "database", "agent", NULL
};

struct _endpoints_t {
    zhash_t *table;                 //  name -> endpoint string (owned)
};

endpoints_t *
endpoints_new (void)
{
    endpoints_t *self = (endpoints_t *) zmalloc (sizeof (endpoints_t));
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

bool
endpoints_any_tcp (endpoints_t *self)
{
    for (const char **name = endpoints_names; *name; name++)
        if (strncmp (endpoints_get (self, *name), "tcp://", 6) == 0)
            return true;
    return false;
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

    endpoints_destroy (&endpoints);
    endpoints_destroy (&endpoints);
    printf ("OK\n");
}
