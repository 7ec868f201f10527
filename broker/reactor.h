/*  =========================================================================
    reactor - zloop's job, with fewer system calls per wake-up

    The worker's loop wakes twice for every warm call (the EXEC, then the
    runner's answer) and watches its ZMQ sockets (pipe, backend, creators)
    beside one plain descriptor per runner. zloop hands them all to
    zmq_poll, which asks every ZMQ socket for its events before it sleeps,
    polls once without sleeping, and asks every socket again after it
    wakes: each ask is two system calls (libzmq looks at the socket's
    mailbox and at the pid). This reactor asks each socket once before it
    sleeps and, after a wake-up, only the sockets whose descriptor fired,
    as broker/poller.c does for the other actors: for the worker's four
    sockets, 11 calls a wake-up where zmq_poll made 19.

    The same use as zloop, for the parts the worker needs:

        reactor_t *reactor = reactor_new ();
        reactor_reader (reactor, backend, s_backend_readable, self);
        zmq_pollitem_t item = { NULL, fd, ZMQ_POLLIN, 0 };
        reactor_poller (reactor, &item, s_fd_readable, self);
        int timer = reactor_timer (reactor, 50, 0, s_tick, self);
        reactor_start (reactor);        //  until a handler returns -1
        reactor_destroy (&reactor);

    Differences from zloop: every descriptor is tolerant (an error is
    passed to its handler as ZMQ_POLLERR, which decides), and a timer ended
    by a handler never fires after that, not even later in the same turn.
    ========================================================================= */

#ifndef CLOWDY_REACTOR_H_INCLUDED
#define CLOWDY_REACTOR_H_INCLUDED

#include <czmq.h>

typedef struct _reactor_t reactor_t;

typedef int (reactor_reader_fn) (reactor_t *reactor, zsock_t *reader, void *arg);
typedef int (reactor_fd_fn) (reactor_t *reactor, zmq_pollitem_t *item, void *arg);
typedef int (reactor_timer_fn) (reactor_t *reactor, int timer_id, void *arg);

reactor_t *
    reactor_new (void);

//  Safe on NULL and twice.
void
    reactor_destroy (reactor_t **self_p);

//  Call handler whenever sock has a message. 0, or -1 on error.
int
    reactor_reader (reactor_t *self, zsock_t *sock, reactor_reader_fn handler, void *arg);

//  Marks sock's reader quiet: it is touched (received from, sent on) only
//  by its own handler, or else the caller says so with reactor_touched
//  right after. A quiet socket found empty is not asked for its events
//  again (two system calls each turn) until its descriptor fires, its
//  handler runs, or it is touched. 0, or -1 when sock has no reader.
int
    reactor_quiet (reactor_t *self, zsock_t *sock);

//  sock (a quiet reader's) was received from or sent on outside its handler
void
    reactor_touched (reactor_t *self, zsock_t *sock);

//  Call handler when the plain descriptor item->fd is ready for
//  item->events (ZMQ_POLLIN, ZMQ_POLLOUT); the item it gets has revents
//  set, ZMQ_POLLERR included. A descriptor is watched once: a second call
//  replaces the first. 0, or -1 on error.
int
    reactor_poller (reactor_t *self, zmq_pollitem_t *item, reactor_fd_fn handler, void *arg);

//  Stop watching item->fd. Safe when it is not watched.
void
    reactor_poller_end (reactor_t *self, zmq_pollitem_t *item);

//  Call handler every delay ms, times times (0: until ended). Returns the
//  timer's id (>= 0), or -1 on error. A timer that ran its times is gone.
int
    reactor_timer (reactor_t *self, size_t delay, size_t times, reactor_timer_fn handler, void *arg);

//  End a timer. Safe on an id that already ended.
void
    reactor_timer_end (reactor_t *self, int timer_id);

//  Run until a handler returns -1 (returns -1), or return 0 when the
//  process is interrupted, the ZMQ context ends, nothing is left to watch
//  or wait for, or on a failure (out of memory, poll failing; logged).
int
    reactor_start (reactor_t *self);

//  Selftest
void
    reactor_test (bool verbose);

#endif
