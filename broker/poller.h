/*  =========================================================================
    poller - zpoller's job, with fewer system calls per wake-up

    An actor on the invoke path wakes for every message of every call, and
    on a virtual machine a system call is dear. zmq_poll (behind zpoller)
    asks each ZMQ socket for its events before it sleeps and again after
    it wakes, and each ask is two system calls (libzmq looks at the
    socket's mailbox and at the pid), and it polls once without sleeping
    first: 18 calls for one wake-up of an actor with four sockets. This
    poller asks every socket once before it sleeps (the caller may have
    received or sent on any of them since, and either may take the
    socket's wake-up signal) and, after a wake-up, only the sockets whose
    descriptor fired: 11 calls. A socket whose events were read and showed
    nothing signals its descriptor when a message comes (libzmq's ZMQ_FD
    contract), so nothing is missed. Same use as zpoller:

        poller_t *poller = poller_new (pipe, frontend, backend, NULL);
        zsock_t *which = (zsock_t *) poller_wait (poller, 1000);
        if (!which && poller_terminated (poller))
            break;
        poller_destroy (&poller);
    ========================================================================= */

#ifndef CLOWDY_POLLER_H_INCLUDED
#define CLOWDY_POLLER_H_INCLUDED

#include <czmq.h>

typedef struct _poller_t poller_t;

//  A poller over the sockets given (zsock_t *, NULL-terminated; at most 16).
poller_t *
    poller_new (zsock_t *first, ...);

//  Safe on NULL and twice.
void
    poller_destroy (poller_t **self_p);

//  One more socket. 0, or -1 when the poller is full.
int
    poller_add (poller_t *self, zsock_t *sock);

//  A socket with a message waiting, taking turns between sockets that have
//  one; NULL when timeout_ms passed (0: look, never sleep; -1: no limit) or
//  when interrupted (then see poller_terminated).
zsock_t *
    poller_wait (poller_t *self, int timeout_ms);

//  True after poller_wait returned NULL because the process is stopping
//  (SIGINT/SIGTERM with CZMQ's handler, or the ZMQ context ended), as
//  zpoller_terminated.
bool
    poller_terminated (poller_t *self);

//  zmq_poll's contract (items: ZMQ sockets and plain descriptors; revents
//  set for each; the number of items ready, 0 on timeout, -1 on error),
//  with the same saving: each socket's events read once before sleeping
//  and, after a wake-up, again only for the sockets whose descriptor
//  fired. For loops that look at several sources each turn (http's).
int
    poller_poll (zmq_pollitem_t *items, int count, long timeout_ms);

//  A ZMQ socket's ZMQ_EVENTS (handle: libzmq's socket), asked again when
//  interrupted by a signal; -1 when it cannot say (the context ended).
//  Two system calls (libzmq looks at the socket's mailbox and the pid).
int
    poller_socket_events (void *handle);

//  poll ()'s revents as zmq_poll's: ZMQ_POLLIN, ZMQ_POLLOUT, ZMQ_POLLPRI,
//  and ZMQ_POLLERR for any error or hang-up.
short
    poller_revents (short revents);

//  Selftest
void
    poller_test (bool verbose);

#endif
