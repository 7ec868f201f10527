/*  =========================================================================
    poller - zpoller's job, with fewer system calls per wake-up

    See poller.h for why. The invariant: a socket is "known empty" only
    after its ZMQ_EVENTS showed no message and nothing has touched it
    since; libzmq then makes its descriptor readable when a message (or
    any command) arrives, so sleeping in poll () on the descriptors of
    known-empty sockets misses nothing. Every socket is unknown when a
    wait begins (since the last one, the caller may have received or sent
    on any of them, and either can consume the descriptor's signal), and a
    socket whose descriptor fired is unknown until its events are read. So
    a wait that sleeps reads every socket's events once before and only the
    fired ones' after: 2N + 1 + 2 system calls where zmq_poll makes 4N + 2.

    Except for a quiet socket (an actor's pipe), which the caller touches
    only after a wait handed it out or says so (poller_touched): it stays
    known empty from one wait to the next until its descriptor fires, a
    wait hands it out or it is touched, and is asked again only then. poller_poll_known does the same for the sockets
    a loop says it did not touch.
    ========================================================================= */

#include <poll.h>
#include "broker/poller.h"

#define POLLER_MAX 16

struct _poller_t {
    zsock_t *socks [POLLER_MAX];        //  The sockets, in the order added
    void *handles [POLLER_MAX];         //  Their libzmq handles
    struct pollfd fds [POLLER_MAX];     //  Their ZMQ_FD descriptors, for poll ()
    bool unknown [POLLER_MAX];          //  Events must be read before we may sleep
    bool quiet [POLLER_MAX];            //  Touched only once handed out (poller_quiet)
    size_t size;                        //  Sockets in use
    size_t next;                        //  Where the next look starts (taking turns)
    bool terminated;                    //  Interrupted, or the context ended
};

int
poller_socket_events (void *handle)
{
    int events = 0;
    size_t size = sizeof events;
    while (zmq_getsockopt (handle, ZMQ_EVENTS, &events, &size))
        if (zmq_errno () != EINTR)
            return -1;
    return events;
}

short
poller_revents (short revents)
{
    return (short) ((revents & POLLIN ? ZMQ_POLLIN : 0)
                  | (revents & POLLOUT ? ZMQ_POLLOUT : 0)
                  | (revents & POLLPRI ? ZMQ_POLLPRI : 0)
                  | (revents & ~(POLLIN | POLLOUT | POLLPRI) ? ZMQ_POLLERR : 0));
}

poller_t *
poller_new (zsock_t *first, ...)
{
    poller_t *self = (poller_t *) zmalloc (sizeof (poller_t));
    va_list args;
    va_start (args, first);
    for (zsock_t *sock = first; sock; sock = va_arg (args, zsock_t *))
        if (poller_add (self, sock)) {
            va_end (args);
            poller_destroy (&self);
            return NULL;
        }
    va_end (args);
    return self;
}

void
poller_destroy (poller_t **self_p)
{
    if (*self_p) {
        free (*self_p);
        *self_p = NULL;
    }
}

int
poller_add (poller_t *self, zsock_t *sock)
{
    if (self->size >= POLLER_MAX || !sock)
        return -1;
    size_t index = self->size++;
    self->socks [index] = sock;
    self->handles [index] = zsock_resolve (sock);
    self->fds [index].fd = zsock_fd (sock);
    self->fds [index].events = POLLIN;
    self->unknown [index] = true;
    return 0;
}

int
poller_quiet (poller_t *self, zsock_t *sock)
{
    for (size_t index = 0; index < self->size; index++)
        if (self->socks [index] == sock) {
            self->quiet [index] = true;
            return 0;
        }
    return -1;
}

void
poller_touched (poller_t *self, zsock_t *sock)
{
    for (size_t index = 0; index < self->size; index++)
        if (self->socks [index] == sock)
            self->unknown [index] = true;
}

//  Before an answer given without a sleep: a quiet socket known empty may
//  have had a message since (its descriptor says so, and only it). One
//  look at the descriptors, so that it takes its turn rather than waiting
//  until every other socket is empty, and a look (timeout 0) finds it.
//  True if one fired (it is unknown now).
static bool
s_look_at_quiet (poller_t *self)
{
    bool any = false;
    for (size_t index = 0; index < self->size; index++)
        any = any || (self->quiet [index] && !self->unknown [index]);
    if (!any || poll (self->fds, self->size, 0) <= 0)
        return false;
    bool fired = false;
    for (size_t index = 0; index < self->size; index++)
        if (self->quiet [index] && !self->unknown [index] && self->fds [index].revents) {
            self->unknown [index] = true;
            fired = true;
        }
    return fired;
}

zsock_t *
poller_wait (poller_t *self, int timeout_ms)
{
    self->terminated = false;
    int64_t end = timeout_ms > 0 ? zclock_mono () + timeout_ms : 0;
    //  Since the last wait the caller may have received or sent on any of
    //  them (a handler, a timer), which can take a descriptor's signal. A
    //  quiet socket keeps what we knew: the caller touched it only if we
    //  handed it out, and then it was left unknown.
    for (size_t index = 0; index < self->size; index++)
        if (!self->quiet [index])
            self->unknown [index] = true;
    bool looked = false;            //  At the quiet ones' descriptors, in this wait
    while (true) {
        //  Read the events of every socket that may hold a message, in
        //  turn from the one after the last handed out
        size_t found = self->size;
        for (size_t count = 0; count < self->size && found == self->size; count++) {
            size_t index = (self->next + count) % self->size;
            if (!self->unknown [index])
                continue;
            int events = poller_socket_events (self->handles [index]);
            if (events == -1) {
                self->terminated = true;
                return NULL;
            }
            if (events & ZMQ_POLLIN)
                found = index;
            else
                self->unknown [index] = false;
        }
        int wait = -1;
        if (timeout_ms == 0)
            wait = 0;
        else
        if (timeout_ms > 0) {
            int64_t left = end - zclock_mono ();
            wait = left > 0 ? (int) left : 0;
        }
        //  An answer without a sleep (a socket, or nothing on a look) has
        //  not seen the quiet sockets' descriptors yet: look once first
        if ((found < self->size || wait == 0) && !looked) {
            looked = true;
            if (s_look_at_quiet (self))
                continue;
        }
        if (found < self->size) {
            self->next = found + 1;
            return self->socks [found];
        }
        if (wait == 0)
            return NULL;
        //  Every socket is known empty: sleep on their descriptors
        int rc = poll (self->fds, self->size, wait);
        if (rc == -1 || zsys_interrupted) {
            self->terminated = true;
            return NULL;
        }
        if (rc == 0)
            return NULL;
        for (size_t index = 0; index < self->size; index++)
            if (self->fds [index].revents)
                self->unknown [index] = true;
        looked = true;              //  The poll saw every descriptor
    }
}

int
poller_poll (zmq_pollitem_t *items, int count, long timeout_ms)
{
    return poller_poll_known (items, count, timeout_ms, NULL);
}

int
poller_poll_known (zmq_pollitem_t *items, int count, long timeout_ms, bool *known)
{
    if (count <= 0 || count > POLLER_MAX) {
        errno = EINVAL;
        return -1;
    }
    struct pollfd fds [POLLER_MAX];
    int ready = 0;
    bool plain = false;             //  Any plain descriptor among them
    bool skipped = false;           //  Any socket known empty, not asked
    for (int index = 0; index < count; index++) {
        items [index].revents = 0;
        fds [index].events = 0;
        fds [index].revents = 0;
        if (items [index].socket) {
            size_t fd_size = sizeof fds [index].fd;
            if (zmq_getsockopt (items [index].socket, ZMQ_FD, &fds [index].fd, &fd_size))
                return -1;
            fds [index].events = POLLIN;
            if (known && known [index]) {
                skipped = true;
                continue;           //  Empty, untouched: its descriptor will fire
            }
            int events = poller_socket_events (items [index].socket);
            if (events == -1)
                return -1;
            items [index].revents = (short) (events & items [index].events);
            if (items [index].revents)
                ready++;
            if (known)
                known [index] = !(events & ZMQ_POLLIN);
        }
        else {
            plain = true;
            fds [index].fd = items [index].fd;
            fds [index].events = (short) ((items [index].events & ZMQ_POLLIN ? POLLIN : 0)
                                        | (items [index].events & ZMQ_POLLOUT ? POLLOUT : 0)
                                        | (items [index].events & ZMQ_POLLPRI ? POLLPRI : 0));
        }
    }
    if (ready && !plain && !skipped)
        return ready;               //  Else one look at the rest, so each gets its turn
    int64_t end = timeout_ms > 0 ? zclock_mono () + timeout_ms : 0;
    while (true) {
        int wait = ready || timeout_ms == 0 ? 0 : -1;
        if (!ready && timeout_ms > 0) {
            int64_t left = end - zclock_mono ();
            wait = left > 0 ? (int) left : 0;
        }
        int rc = poll (fds, (nfds_t) count, wait);
        if (rc == -1)
            return -1;
        for (int index = 0; index < count; index++) {
            if (!fds [index].revents)
                continue;
            if (items [index].socket) {
                if (items [index].revents)
                    continue;       //  Already counted
                int events = poller_socket_events (items [index].socket);
                if (events == -1)
                    return -1;
                items [index].revents = (short) (events & items [index].events);
                if (known)
                    known [index] = !(events & ZMQ_POLLIN);
            }
            else
                items [index].revents = poller_revents (fds [index].revents);
            if (items [index].revents)
                ready++;
        }
        //  A descriptor that fired for a socket with nothing to read (a
        //  command, not a message): its signal is taken, sleep again
        if (ready || wait == 0)
            return ready;
    }
}

bool
poller_terminated (poller_t *self)
{
    return self->terminated;
}

//  --------------------------------------------------------------------------
//  Selftest

//  Sends "late" to poller-test-c after a pause, from a thread of its own
static void
s_late_sender (zsock_t *pipe, void *args)
{
    zsock_signal (pipe, 0);
    zsock_t *out = zsock_new_push ("inproc://poller-test-c");
    zclock_sleep (30);
    zstr_send (out, "late");
    char *command = zstr_recv (pipe);       //  $TERM
    zstr_free (&command);
    zsock_destroy (&out);
}

//  Receives one message from sock: it must be there (and be expected,
//  unless NULL)
static void
s_test_take (zsock_t *sock, const char *expected)
{
    char *text = zstr_recv (sock);
    assert (text && (!expected || streq (text, expected)));
    zstr_free (&text);
}

void
poller_test (bool verbose)
{
    printf ("poller: ");
    zsock_t *a_in = zsock_new_pull ("inproc://poller-test-a");
    zsock_t *b_in = zsock_new_pull ("inproc://poller-test-b");
    zsock_t *a_out = zsock_new_push ("inproc://poller-test-a");
    zsock_t *b_out = zsock_new_push ("inproc://poller-test-b");
    poller_t *poller = poller_new (a_in, b_in, NULL);
    assert (poller);

    //  Nothing waiting: a look returns at once, a wait after its timeout
    assert (poller_wait (poller, 0) == NULL && !poller_terminated (poller));
    int64_t start = zclock_mono ();
    assert (poller_wait (poller, 50) == NULL && !poller_terminated (poller));
    assert (zclock_mono () - start >= 40);

    //  A message sent while it sleeps (from another thread's view, the
    //  same: the descriptor fires) wakes it, on the right socket
    zstr_send (b_out, "one");
    assert (poller_wait (poller, 1000) == b_in);
    char *text = zstr_recv (b_in);
    assert (streq (text, "one"));
    zstr_free (&text);

    //  Both have messages: they take turns, and every message is handed out
    for (int i = 0; i < 3; i++) {
        zstr_send (a_out, "a");
        zstr_send (b_out, "b");
    }
    int from_a = 0, from_b = 0;
    zsock_t *last = NULL;
    for (int i = 0; i < 6; i++) {
        zsock_t *which = poller_wait (poller, 1000);
        assert (which == a_in || which == b_in);
        assert (which != last);
        last = which;
        text = zstr_recv (which);
        if (which == a_in)
            from_a++;
        else
            from_b++;
        zstr_free (&text);
    }
    assert (from_a == 3 && from_b == 3);
    assert (poller_wait (poller, 0) == NULL);

    //  Messages that came in while the handler was busy (no sleep between)
    //  are found without a descriptor's signal: every socket is looked at
    //  again after one was handed out
    zstr_send (a_out, "x");
    assert (poller_wait (poller, 1000) == a_in);
    zstr_send (b_out, "y");
    zstr_send (a_out, "z");
    text = zstr_recv (a_in);
    zstr_free (&text);
    assert (poller_wait (poller, 0) != NULL);
    assert (poller_wait (poller, 0) != NULL);
    zsock_t *got [2] = { NULL, NULL };
    //  (the two above were not read: both sockets still hold one)
    got [0] = poller_wait (poller, 0);
    text = zstr_recv (got [0]);
    zstr_free (&text);
    got [1] = poller_wait (poller, 0);
    assert (got [1] && got [1] != got [0]);
    text = zstr_recv (got [1]);
    zstr_free (&text);
    assert (poller_wait (poller, 0) == NULL);

    //  A thread that sends later wakes a poller asleep with no limit
    zsock_t *c_in = zsock_new_pull ("inproc://poller-test-c");
    assert (poller_add (poller, c_in) == 0);
    zactor_t *sender = zactor_new (s_late_sender, NULL);
    assert (poller_wait (poller, -1) == c_in);
    text = zstr_recv (c_in);
    assert (streq (text, "late"));
    zstr_free (&text);
    zactor_destroy (&sender);
    assert (poller_wait (poller, 0) == NULL);
    poller_destroy (&poller);
    poller_destroy (&poller);
    zsock_destroy (&c_in);

    //  A quiet socket is asked again only when its descriptor fired or it
    //  was handed out: two messages, one read, and the next wait (a look,
    //  or one that would sleep) hands it out again; a message that comes
    //  while it is known empty is found by a look too
    poller_t *quiet = poller_new (a_in, b_in, NULL);
    assert (poller_quiet (quiet, a_in) == 0);
    assert (poller_quiet (quiet, a_out) == -1);
    assert (poller_wait (quiet, 0) == NULL);
    zstr_send (a_out, "1");
    zstr_send (a_out, "2");
    assert (poller_wait (quiet, 1000) == a_in);
    s_test_take (a_in, "1");
    assert (poller_wait (quiet, 0) == a_in);
    s_test_take (a_in, "2");
    assert (poller_wait (quiet, 10) == NULL);
    zstr_send (b_out, "b");
    assert (poller_wait (quiet, 1000) == b_in);
    zstr_send (a_out, "3");     //  While b's handler runs
    s_test_take (b_in, "b");
    assert (poller_wait (quiet, 0) == a_in);
    s_test_take (a_in, "3");
    assert (poller_wait (quiet, 0) == NULL);
    poller_destroy (&quiet);

    //  A quiet socket takes its turn while another keeps having messages:
    //  a has one, b always has more, and a is next in turn
    poller_t *fair = poller_new (a_in, b_in, NULL);
    assert (poller_quiet (fair, a_in) == 0);
    assert (poller_wait (fair, 0) == NULL);
    zstr_send (b_out, "b");
    assert (poller_wait (fair, 0) == b_in);
    zstr_send (a_out, "a");
    zstr_send (b_out, "b");
    assert (poller_wait (fair, 0) == a_in);
    s_test_take (a_in, "a");
    for (int i = 0; i < 2; i++) {
        assert (poller_wait (fair, 0) == b_in);
        s_test_take (b_in, "b");
    }
    assert (poller_wait (fair, 0) == NULL);
    poller_destroy (&fair);

    //  A quiet socket sent on outside a wait (libzmq then takes its
    //  descriptor's signal) is asked again once poller_touched says so;
    //  without it the wait sleeps on the message. (libzmq 4.3 handles a
    //  socket's pending commands in a send at most once a millisecond or
    //  so: the send comes 5 ms after the message, on a fresh socket.)
    for (int touch = 0; touch < 2; touch++) {
        char endpoint [64];
        snprintf (endpoint, sizeof endpoint, "inproc://poller-test-touch-%d", touch);
        zsock_t *in = zsock_new (ZMQ_PAIR);
        zsock_t *out = zsock_new (ZMQ_PAIR);
        assert (zsock_bind (in, "%s", endpoint) == 0 && zsock_connect (out, "%s", endpoint) == 0);
        poller_t *touched = poller_new (in, NULL);
        assert (poller_quiet (touched, in) == 0);
        assert (poller_wait (touched, 0) == NULL);
        zstr_send (out, "m");
        zclock_sleep (5);
        zstr_send (in, "echo");
        if (touch)
            poller_touched (touched, in);
        assert (poller_wait (touched, 100) == (touch ? in : NULL));
        s_test_take (in, "m");
        poller_destroy (&touched);
        zsock_destroy (&in);
        zsock_destroy (&out);
    }

    //  poller_poll: zmq_poll's contract, sockets and a plain descriptor
    int pair [2];
    assert (pipe (pair) == 0);
    zmq_pollitem_t items [] = {
        { zsock_resolve (a_in), 0, ZMQ_POLLIN, 0 },
        { NULL, pair [0], ZMQ_POLLIN, 0 },
        { zsock_resolve (b_in), 0, ZMQ_POLLIN, 0 }
    };
    assert (poller_poll (items, 3, 0) == 0);
    start = zclock_mono ();
    assert (poller_poll (items, 3, 50) == 0);
    assert (zclock_mono () - start >= 40);
    assert (write (pair [1], "x", 1) == 1);
    assert (poller_poll (items, 3, 1000) == 1 && items [1].revents == ZMQ_POLLIN && !items [0].revents);
    zstr_send (b_out, "b");
    assert (poller_poll (items, 3, 1000) == 2 && items [1].revents && items [2].revents && !items [0].revents);
    char byte;
    assert (read (pair [0], &byte, 1) == 1);
    text = zstr_recv (b_in);
    zstr_free (&text);
    assert (poller_poll (items, 3, 0) == 0);
    zactor_t *late = zactor_new (s_late_sender, NULL);
    zsock_t *c_again = zsock_new_pull ("inproc://poller-test-c");
    zmq_pollitem_t late_items [] = {
        { zsock_resolve (c_again), 0, ZMQ_POLLIN, 0 },
        { NULL, pair [0], ZMQ_POLLIN, 0 }
    };
    assert (poller_poll (late_items, 2, 2000) == 1 && late_items [0].revents == ZMQ_POLLIN);
    text = zstr_recv (c_again);
    assert (streq (text, "late"));
    zstr_free (&text);
    zactor_destroy (&late);
    zsock_destroy (&c_again);

    //  poller_poll_known: a socket found empty is known so on the way out;
    //  one left unread is not, and is found again; a known socket's message
    //  still wakes the call, and a look (timeout 0) finds it too
    bool known [3] = { false, false, false };
    assert (poller_poll_known (items, 3, 0, known) == 0 && known [0] && !known [1] && known [2]);
    zstr_send (b_out, "1");
    zstr_send (b_out, "2");
    assert (poller_poll_known (items, 3, 1000, known) == 1 && items [2].revents == ZMQ_POLLIN && !known [2]);
    s_test_take (b_in, "1");
    assert (poller_poll_known (items, 3, 0, known) == 1 && items [2].revents == ZMQ_POLLIN && known [0]);
    s_test_take (b_in, "2");
    assert (poller_poll_known (items, 3, 0, known) == 0 && known [0] && known [2]);
    zstr_send (a_out, "a");
    assert (poller_poll_known (items, 3, 0, known) == 1 && items [0].revents == ZMQ_POLLIN && !known [0]);
    s_test_take (a_in, "a");
    assert (poller_poll_known (items, 3, 10, known) == 0 && known [0]);
    late = zactor_new (s_late_sender, NULL);
    c_again = zsock_new_pull ("inproc://poller-test-c");
    late_items [0].socket = zsock_resolve (c_again);
    bool late_known [2] = { false, false };
    assert (poller_poll_known (late_items, 2, 0, late_known) == 0 && late_known [0]);
    assert (poller_poll_known (late_items, 2, 2000, late_known) == 1 && late_items [0].revents == ZMQ_POLLIN);
    s_test_take (c_again, "late");
    zactor_destroy (&late);
    zsock_destroy (&c_again);
    close (pair [0]);
    close (pair [1]);
    zsock_destroy (&a_out);
    zsock_destroy (&b_out);
    zsock_destroy (&a_in);
    zsock_destroy (&b_in);
    if (verbose)
        printf ("(verbose) ");
    printf ("OK\n");
}
