/*  =========================================================================
    endpoints - where each actor's service socket lives

    Every actor that serves others binds one socket at a named endpoint and
    the others connect to it. By default all endpoints are inproc, so the
    whole platform runs in one process; setting an endpoint to tcp (from the
    environment, CLOWDY_ENDPOINT_<NAME>=tcp://host:port, or the command line)
    moves that link onto the network with no other change.

        endpoints_t *endpoints = endpoints_new ();
        endpoints_set (endpoints, "gateway", "tcp://127.0.0.1:7001");
        const char *where = endpoints_get (endpoints, "gateway");
    ========================================================================= */

#ifndef CLOWDY_ENDPOINTS_H_INCLUDED
#define CLOWDY_ENDPOINTS_H_INCLUDED

#include <czmq.h>

typedef struct _endpoints_t endpoints_t;

//  Names of the actors that own a service endpoint, NULL-terminated.
extern const char *endpoints_names [];

//  Create the table with the inproc default for every name.
endpoints_t *
    endpoints_new (void);

//  Destroy; safe on NULL and twice.
void
    endpoints_destroy (endpoints_t **self_p);

//  The endpoint for a name, or NULL for an unknown name.
const char *
    endpoints_get (endpoints_t *self, const char *name);

//  Set a name's endpoint. Accepts inproc://NAME and tcp://HOST:PORT (port
//  1..65535). Returns 0, or -1 for an unknown name or a malformed endpoint.
int
    endpoints_set (endpoints_t *self, const char *name, const char *endpoint);

//  Apply CLOWDY_ENDPOINT_<NAME> variables from the environment. Returns 0,
//  or -1 if one is malformed (logged, naming the variable).
int
    endpoints_load_env (endpoints_t *self);

//  True if any endpoint is tcp (the process talks to other hosts).
bool
    endpoints_any_tcp (endpoints_t *self);

//  Secure tcp links with CurveZMQ, with the certificates in dir:
//      dir/server.cert, dir/server.cert_secret   the binding side's keys (the
//                                                secret only where it binds)
//      dir/client.cert, dir/client.cert_secret   this host's keys as a client
//      dir/clients/*.cert                        clients the binding side admits
//  Call once at start-up, before any actor starts: it loads the certificates
//  (0, or -1 logged when one is missing) and, where this process binds tcp
//  endpoints, starts zauth so that only admitted clients can connect.
int
    endpoints_set_curve (endpoints_t *self, const char *dir);

//  Create keys in dir as laid out above, keeping any that exist, and admit
//  this host's own client (so one host works at once). 0 or -1.
int
    endpoints_make_keys (const char *dir);

//  New socket of a type (ZMQ_ROUTER, ZMQ_PULL, ...) bound to a name's endpoint;
//  a tcp endpoint is a CURVE server when curve is set. NULL on error (logged).
zsock_t *
    endpoints_bind (endpoints_t *self, const char *name, int type);

//  New socket of a type connected to a name's endpoint; a tcp endpoint is a
//  CURVE client when curve is set. NULL on error (logged).
zsock_t *
    endpoints_connect (endpoints_t *self, const char *name, int type);

void
    endpoints_test (bool verbose);

#endif
