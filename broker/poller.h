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

//  Marks sock (already added) quiet: the caller receives from it and sends
//  on it only after a wait handed it out, as an actor does with its pipe,
//  or else calls poller_touched right after. A wait then asks it for its
//  events again only when its descriptor fired, it was handed out or
//  touched: two system calls fewer per wait. 0, or -1 when sock is not
//  in the poller.
int
    poller_quiet (poller_t *self, zsock_t *sock);

//  sock (a quiet one) was received from or sent on without a wait having
//  handed it out
void
    poller_touched (poller_t *self, zsock_t *sock);

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

//  poller_poll for a loop that keeps, across turns, which of its sockets
//  are known empty: known [index] true on the way in says the last call
//  found that socket empty and the caller has neither received from it
//  nor sent on it since, so it is not asked before sleeping (libzmq makes
//  its descriptor fire when a message comes). On the way out known [index]
//  is true for each socket found empty, false for one found readable; a
//  socket not asked keeps its value. The caller must set known [index]
//  false whenever it touches that socket (a send, or a receive other than
//  of a socket this call found readable), or it may sleep on a message.
//  known may be NULL (poller_poll). Plain descriptors ignore it.
int
    poller_poll_known (zmq_pollitem_t *items, int count, long timeout_ms, bool *known);

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
