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

//  Every socket made here queues at most this many messages per peer, each
//  way; a send that finds the queue full (or no peer at all) fails at once
//  with -1 rather than blocking the actor's loop, and the caller answers 503.
//  The bench's 64 connections keep far fewer than this in flight: a queue
//  fills only when its reader has stopped reading.
#define ENDPOINTS_HWM   1000    //  Default; CLOWDY_ENDPOINTS_HWM overrides it
#define ENDPOINTS_ANSWER_HWM 100000 //  Send limit of sockets that carry answers

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

//  ZMTP heartbeats on every tcp socket made from now on: a PING every
//  interval_ms, the link closed after timeout_ms without traffic from the
//  peer (both 0: none, the default).
void
    endpoints_set_heartbeat (endpoints_t *self, int interval_ms, int timeout_ms);

//  True when the endpoint of name is tcp (a link that can be cut).
bool
    endpoints_is_tcp (endpoints_t *self, const char *name);

//  The inproc endpoint where the gateway of this process takes RESULT
//  straight from the workers of this process (a PULL socket), one hop fewer
//  than through assignment. Gateway binds it, then says so with
//  endpoints_set_results_bound (self, true), and false before it closes it; a
//  worker sends there only while endpoints_results_bound is true and its own
//  link to assignment is inproc (so that its DONE, sent first, is readable at
//  assignment before the caller's next RUN can be: see actors/worker.c). Not
//  configurable: it never leaves the process.
const char *
    endpoints_results (endpoints_t *self);
void
    endpoints_set_results_bound (endpoints_t *self, bool bound);
bool
    endpoints_results_bound (endpoints_t *self);

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
//  a tcp endpoint is a CURVE server when curve is set. NULL on error (logged,
//  and endpoints_error says why).
//  Sockets from endpoints_bind and endpoints_connect have send and receive
//  high-water marks of ENDPOINTS_HWM and a send timeout of 0: a send that
//  cannot be queued returns -1 (errno EAGAIN) instead of blocking. Sockets
//  that carry answers (ROUTERs, PUSH, a worker's DEALER) send up to
//  ENDPOINTS_ANSWER_HWM: an answer is never refused while its request was
//  taken, since the requests outstanding bound how many there can be. A ROUTER
//  is also mandatory: a send to a peer that is gone returns -1 (EHOSTUNREACH)
//  instead of vanishing. A message that fails is not queued at all.
zsock_t *
    endpoints_bind (endpoints_t *self, const char *name, int type);

//  New socket of a type connected to a name's endpoint; a tcp endpoint is a
//  CURVE client when curve is set. NULL on error (logged, and endpoints_error
//  says why). Same queue limits and send semantics as endpoints_bind.
zsock_t *
    endpoints_connect (endpoints_t *self, const char *name, int type);

//  Why the calling thread's last failed endpoints_bind or endpoints_connect
//  failed, as a phrase naming the endpoint ("cannot bind tcp://127.0.0.1:7100:
//  Address already in use"); "" if none failed. For an actor's start-up
//  failure reason (each actor has its own thread, so its own answer).
const char *
    endpoints_error (void);

void
    endpoints_test (bool verbose);

#endif
