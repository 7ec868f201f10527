/*  =========================================================================
    reactor - zloop's job, with fewer system calls per wake-up

    See reactor.h for why. Each turn: read the events of every ZMQ socket
    (the handlers may have received or sent on any of them, which can take
    a descriptor's signal), sleep in poll () over every descriptor unless a
    socket already has a message or until the next timer, read the events
    again only of the sockets whose descriptor fired, then run the timers
    that are due and the handlers of what is ready.

    Items and timers live in arrays. A handler may add or end either during
    a turn: an ended one is marked dead (never called again) and taken out
    at the start of the next turn; a new one waits for the next turn.
    ========================================================================= */

#include <poll.h>
#include "broker/poller.h"
#include "broker/reactor.h"

typedef struct {
    zsock_t *sock;                  //  A ZMQ socket, or NULL for a plain descriptor
    void *handle;                   //  Its libzmq handle
    int fd;                         //  ZMQ_FD of the socket, or the plain descriptor
    short events;                   //  What a plain descriptor waits for: ZMQ_POLLIN, ZMQ_POLLOUT
    reactor_reader_fn *reader;      //  Handler of a socket
    reactor_fd_fn *fd_handler;      //  Handler of a plain descriptor
    void *arg;                      //  Given to the handler
    short revents;                  //  What this turn found (ZMQ_POLL* flags)
    bool dead;                      //  Ended: never called again, taken out next turn
    bool quiet;                     //  Touched only by its handler, or said (reactor_quiet)
    bool known;                     //  Quiet, found empty, untouched since: not asked
} item_t;

typedef struct {
    int id;                         //  As reactor_timer returned it
    size_t delay;                   //  Ms between runs
    size_t times;                   //  Runs left; 0: until ended
    int64_t when;                   //  Monotonic ms of the next run
    reactor_timer_fn *handler;      //  Called when due
    void *arg;                      //  Given to the handler
    bool dead;                      //  Ended or ran its times: taken out next turn
} rtimer_t;

struct _reactor_t {
    item_t *items;
    size_t items_size, items_max;
    struct pollfd *fds;             //  One per item, as of the last rebuild
    size_t fds_size, fds_max;
    bool rebuild;                   //  Items changed since fds was built
    rtimer_t *timers;
    size_t timers_size, timers_max;
    int next_id;                    //  Next timer id to try
    bool started;
};

reactor_t *
reactor_new (void)
{
    return (reactor_t *) zmalloc (sizeof (reactor_t));
}

void
reactor_destroy (reactor_t **self_p)
{
    if (*self_p) {
        reactor_t *self = *self_p;
        free (self->items);
        free (self->fds);
        free (self->timers);
        free (self);
        *self_p = NULL;
    }
}

//  Grow an array to hold at least needed elements (doubling); false when
//  out of memory
static bool
s_reserve (void **array, size_t *max, size_t needed, size_t element)
{
    if (needed <= *max)
        return true;
    size_t more = *max ? *max : 16;
    while (more < needed)
        more *= 2;
    void *bigger = realloc (*array, more * element);
    if (!bigger)
        return false;
    *array = bigger;
    *max = more;
    return true;
}

static int
s_add (reactor_t *self, item_t *item)
{
    if (!s_reserve ((void **) &self->items, &self->items_max, self->items_size + 1, sizeof (item_t)))
        return -1;
    self->items [self->items_size++] = *item;
    self->rebuild = true;
    return 0;
}

int
reactor_reader (reactor_t *self, zsock_t *sock, reactor_reader_fn handler, void *arg)
{
    assert (self && sock && handler);
    item_t item = { .sock = sock, .handle = zsock_resolve (sock), .fd = zsock_fd (sock),
                    .events = ZMQ_POLLIN, .reader = handler, .arg = arg };
    return item.fd < 0 ? -1 : s_add (self, &item);
}

void
reactor_poller_end (reactor_t *self, zmq_pollitem_t *item)
{
    for (size_t index = 0; index < self->items_size; index++)
        if (!self->items [index].sock && self->items [index].fd == item->fd && !self->items [index].dead) {
            self->items [index].dead = true;
            self->rebuild = true;
        }
}

int
reactor_poller (reactor_t *self, zmq_pollitem_t *item, reactor_fd_fn handler, void *arg)
{
    assert (self && item && handler);
    if (item->socket || item->fd < 0)
        return -1;                  //  Plain descriptors only: sockets are readers
    reactor_poller_end (self, item);
    item_t entry = { .fd = item->fd, .events = item->events, .fd_handler = handler, .arg = arg };
    return s_add (self, &entry);
}

static bool
s_id_used (reactor_t *self, int id)
{
    for (size_t index = 0; index < self->timers_size; index++)
        if (self->timers [index].id == id && !self->timers [index].dead)
            return true;
    return false;
}

int
reactor_timer (reactor_t *self, size_t delay, size_t times, reactor_timer_fn handler, void *arg)
{
    assert (self && handler);
    if (!s_reserve ((void **) &self->timers, &self->timers_max, self->timers_size + 1, sizeof (rtimer_t)))
        return -1;
    //  One timer per warm call: ids wrap, and an id still in use is skipped
    int id;
    do {
        id = self->next_id;
        self->next_id = self->next_id == INT_MAX ? 0 : self->next_id + 1;
    } while (s_id_used (self, id));
    self->timers [self->timers_size++] = (rtimer_t) {
        .id = id, .delay = delay, .times = times, .when = zclock_mono () + (int64_t) delay,
        .handler = handler, .arg = arg };
    return id;
}

void
reactor_timer_end (reactor_t *self, int timer_id)
{
    for (size_t index = 0; index < self->timers_size; index++)
        if (self->timers [index].id == timer_id)
            self->timers [index].dead = true;
}

//  Take dead items out and build the pollfd array again
static int
s_rebuild (reactor_t *self)
{
    size_t live = 0;
    for (size_t index = 0; index < self->items_size; index++)
        if (!self->items [index].dead)
            self->items [live++] = self->items [index];
    self->items_size = live;
    if (!s_reserve ((void **) &self->fds, &self->fds_max, live, sizeof (struct pollfd)))
        return -1;
    for (size_t index = 0; index < live; index++) {
        item_t *item = &self->items [index];
        self->fds [index].fd = item->fd;
        self->fds [index].events = item->sock ? POLLIN
                                 : (short) ((item->events & ZMQ_POLLIN ? POLLIN : 0)
                                          | (item->events & ZMQ_POLLOUT ? POLLOUT : 0));
        self->fds [index].revents = 0;
    }
    self->fds_size = live;
    self->rebuild = false;
    return 0;
}

static void
s_timers_compact (reactor_t *self)
{
    size_t live = 0;
    for (size_t index = 0; index < self->timers_size; index++)
        if (!self->timers [index].dead)
            self->timers [live++] = self->timers [index];
    self->timers_size = live;
}

//  A socket's message events; false when the context ended. A quiet
//  socket found empty is known so until its descriptor fires or it is
//  touched.
static bool
s_socket_events (item_t *item)
{
    int events = poller_socket_events (item->handle);
    if (events == -1)
        return false;
    item->revents = (short) (events & ZMQ_POLLIN);
    item->known = item->quiet && !item->revents;
    return true;
}

int
reactor_quiet (reactor_t *self, zsock_t *sock)
{
    int found = -1;
    for (size_t index = 0; index < self->items_size; index++)
        if (self->items [index].sock == sock && !self->items [index].dead) {
            self->items [index].quiet = true;
            found = 0;
        }
    return found;
}

void
reactor_touched (reactor_t *self, zsock_t *sock)
{
    for (size_t index = 0; index < self->items_size; index++)
        if (self->items [index].sock == sock)
            self->items [index].known = false;
}

int
reactor_start (reactor_t *self)
{
    assert (self);
    if (!self->started) {
        //  As zloop: timers made before the start count from it
        int64_t now = zclock_mono ();
        for (size_t index = 0; index < self->timers_size; index++)
            self->timers [index].when = now + (int64_t) self->timers [index].delay;
        self->started = true;
    }
    while (!zsys_interrupted) {
        s_timers_compact (self);
        if (self->rebuild && s_rebuild (self)) {
            zsys_error ("reactor: out of memory");
            return 0;
        }
        //  Sockets first: one with a message waiting means no sleep. A
        //  quiet one known empty is not asked: its descriptor will fire.
        bool ready = false;
        for (size_t index = 0; index < self->fds_size; index++) {
            item_t *item = &self->items [index];
            item->revents = 0;
            if (item->sock && !item->known) {
                if (!s_socket_events (item))
                    return 0;       //  The context ended
                ready = ready || item->revents;
            }
        }
        int wait = -1;
        if (ready)
            wait = 0;
        else
        if (self->timers_size) {
            int64_t first = self->timers [0].when;
            for (size_t index = 1; index < self->timers_size; index++)
                if (self->timers [index].when < first)
                    first = self->timers [index].when;
            int64_t left = first - zclock_mono ();
            wait = left > 0 ? (left < INT_MAX ? (int) left : INT_MAX) : 0;
        }
        for (size_t index = 0; index < self->fds_size; index++)
            self->fds [index].revents = 0;
        if (!self->fds_size && wait == -1)
            return 0;               //  Nothing to watch and no timer: nothing can happen
        int rc = poll (self->fds, (nfds_t) self->fds_size, wait);
        if (rc == -1) {
            if (errno == EINTR)
                continue;           //  zsys_interrupted is checked at the top
            zsys_error ("reactor: poll failed: %s", strerror (errno));
            return 0;
        }
        for (size_t index = 0; rc > 0 && index < self->fds_size; index++) {
            short revents = self->fds [index].revents;
            item_t *item = &self->items [index];
            if (!revents)
                continue;
            if (item->sock) {
                if (!item->revents && !s_socket_events (item))
                    return 0;
            }
            else
                item->revents = poller_revents (revents);
        }
        //  Timers that are due, then what is ready (as zloop)
        int64_t now = zclock_mono ();
        size_t timers = self->timers_size;
        for (size_t index = 0; index < timers; index++) {
            rtimer_t *timer = &self->timers [index];
            if (timer->dead || now < timer->when)
                continue;
            int id = timer->id;
            if (timer->handler (self, id, timer->arg) == -1)
                return -1;
            timer = &self->timers [index];      //  The handler may have grown the array
            if (timer->dead || timer->id != id)
                continue;
            if (timer->times && --timer->times == 0)
                timer->dead = true;
            else {
                timer->when += (int64_t) timer->delay;
                if (timer->when <= now)         //  Late: no burst to catch up
                    timer->when = now + (int64_t) timer->delay;
            }
        }
        size_t items = self->fds_size;
        for (size_t index = 0; index < items; index++) {
            item_t *item = &self->items [index];
            if (item->dead || !item->revents)
                continue;
            int handled;
            if (item->sock) {
                item->known = false;            //  Its handler reads it
                handled = item->reader (self, item->sock, item->arg);
            }
            else {
                zmq_pollitem_t pollitem = { NULL, item->fd, item->events, item->revents };
                handled = item->fd_handler (self, &pollitem, item->arg);
            }
            if (handled == -1)
                return -1;
        }
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Selftest

typedef struct {
    int ids [4];                    //  Timers under test
    int fired [4];                  //  Runs of each
    int ended_by [4];               //  Timer index -> id it ends when it runs, or -1
    int self_end_after;             //  Timer 0 ends itself after this many runs (0: never)
    int stop_after;                 //  A timer run returns -1 after this many of timer 1's runs
    zmq_pollitem_t *end_item;       //  A timer run ends this poller, when set
    int reads;                      //  Messages the reader got
    int fd_calls;                   //  Calls of the plain-descriptor handler
    int out_calls;                  //  Calls with ZMQ_POLLOUT
} test_state_t;

static int
s_test_timer (reactor_t *reactor, int timer_id, void *arg)
{
    test_state_t *state = (test_state_t *) arg;
    for (int index = 0; index < 4; index++)
        if (state->ids [index] == timer_id) {
            state->fired [index]++;
            if (state->ended_by [index] >= 0)
                reactor_timer_end (reactor, state->ended_by [index]);
            if (index == 0 && state->self_end_after && state->fired [0] == state->self_end_after)
                reactor_timer_end (reactor, timer_id);
            if (index == 1 && state->stop_after && state->fired [1] == state->stop_after)
                return -1;
        }
    if (state->end_item) {
        reactor_poller_end (reactor, state->end_item);
        state->end_item = NULL;
    }
    return 0;
}

static int
s_test_end (reactor_t *reactor, int timer_id, void *arg)
{
    zstr_send ((zsock_t *) arg, "END");
    return 0;
}

static int
s_test_reader (reactor_t *reactor, zsock_t *reader, void *arg)
{
    test_state_t *state = (test_state_t *) arg;
    char *text = zstr_recv (reader);
    state->reads++;
    int rc = text && streq (text, "END") ? -1 : 0;
    zstr_free (&text);
    return rc;
}

static int
s_test_fd (reactor_t *reactor, zmq_pollitem_t *item, void *arg)
{
    test_state_t *state = (test_state_t *) arg;
    if (item->revents & ZMQ_POLLOUT) {
        state->out_calls++;
        reactor_poller_end (reactor, item);     //  Writable for ever: once is enough
        return 0;
    }
    state->fd_calls++;
    char byte;
    if (read (item->fd, &byte, 1) != 1)
        reactor_poller_end (reactor, item);
    return 0;
}

//  Quiet readers' test: the reader ends the loop at "three"; a timer sends
//  "three" to it, then sends on the reader's socket itself (libzmq then
//  takes the descriptor's signal) and says so
static zsock_t *s_test_quiet_in, *s_test_quiet_out;

static int
s_test_quiet_reader (reactor_t *reactor, zsock_t *reader, void *arg)
{
    char *text = zstr_recv (reader);
    ((test_state_t *) arg)->reads++;
    int rc = text && streq (text, "three") ? -1 : 0;
    zstr_free (&text);
    return rc;
}

static int
s_test_touch (reactor_t *reactor, int timer_id, void *arg)
{
    zstr_send (s_test_quiet_out, "three");
    zclock_sleep (5);
    zstr_send (s_test_quiet_in, "echo");
    if (arg)
        reactor_touched (reactor, s_test_quiet_in);
    return 0;
}

static int
s_test_stop (reactor_t *reactor, int timer_id, void *arg)
{
    return -1;
}

//  Sends "LATE" on its pipe 30 ms after it started: a message that comes
//  while the reactor sleeps, from another thread, as EXEC comes to a worker
static void
s_test_late_sender (zsock_t *pipe, void *args)
{
    zsock_signal (pipe, 0);
    zclock_sleep (30);
    zstr_send (pipe, "LATE");
    char *command = zstr_recv (pipe);           //  $TERM
    zstr_free (&command);
}

void
reactor_test (bool verbose)
{
    printf ("reactor: ");
    int pair [2];
    assert (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pair) == 0);

    //  Timers: a repeating one that ends itself after 3 runs, a single
    //  shot, and two due in the same turn where the first ends the second
    //  (never run). A message from another thread while the loop sleeps,
    //  messages waiting before it starts, and "END" from a timer.
    reactor_t *reactor = reactor_new ();
    test_state_t state = { .ended_by = { -1, -1, -1, -1 }, .self_end_after = 3 };
    state.ids [0] = reactor_timer (reactor, 5, 0, s_test_timer, &state);
    state.ids [1] = reactor_timer (reactor, 5, 1, s_test_timer, &state);
    state.ids [2] = reactor_timer (reactor, 2, 1, s_test_timer, &state);
    state.ids [3] = reactor_timer (reactor, 2, 1, s_test_timer, &state);
    state.ended_by [2] = state.ids [3];
    assert (state.ids [0] != state.ids [1] && state.ids [2] != state.ids [3]);
    zsock_t *sink = zsock_new_pair ("@inproc://reactor-test");
    zsock_t *source = zsock_new_pair (">inproc://reactor-test");
    zactor_t *late = zactor_new (s_test_late_sender, NULL);
    assert (sink && source && late);
    assert (reactor_reader (reactor, sink, s_test_reader, &state) == 0);
    assert (reactor_reader (reactor, zactor_sock (late), s_test_reader, &state) == 0);
    zstr_send (source, "one");
    zstr_send (source, "two");
    assert (reactor_timer (reactor, 200, 1, s_test_end, source) >= 0);
    //  A descriptor watched twice is called once for one byte
    zmq_pollitem_t item = { NULL, pair [0], ZMQ_POLLIN, 0 };
    assert (reactor_poller (reactor, &item, s_test_fd, &state) == 0);
    assert (reactor_poller (reactor, &item, s_test_fd, &state) == 0);
    assert (write (pair [1], "a", 1) == 1);
    //  A writable descriptor says ZMQ_POLLOUT
    zmq_pollitem_t writable = { NULL, pair [1], ZMQ_POLLOUT, 0 };
    assert (reactor_poller (reactor, &writable, s_test_fd, &state) == 0);
    assert (reactor_start (reactor) == -1);
    assert (state.reads == 4);                  //  one, two, LATE, END
    assert (state.fd_calls == 1);
    assert (state.out_calls == 1);
    assert (state.fired [0] == 3);
    assert (state.fired [1] == 1);
    assert (state.fired [2] == 1);
    assert (state.fired [3] == 0);

    //  A poller ended by a timer that runs in the same turn as its byte
    //  comes is not called; a timer's -1 ends the loop
    assert (write (pair [1], "b", 1) == 1);
    state.end_item = &item;
    state.ids [1] = reactor_timer (reactor, 0, 0, s_test_timer, &state);
    state.fired [1] = 0;
    state.stop_after = 2;
    assert (reactor_start (reactor) == -1);
    assert (state.fd_calls == 1);
    assert (state.fired [1] == 2);
    assert (state.fired [0] == 3);              //  Ended itself: never again

    //  A quiet reader: all its messages are read, one per call of its
    //  handler, and one that came before a send on its socket outside the
    //  handler is read because the sender said reactor_touched (without
    //  it, the loop sleeps until the 300 ms stop; libzmq 4.3 handles a
    //  socket's pending commands in a send at most once a millisecond or
    //  so, hence the timer's 5 ms before it sends)
    for (int touch = 0; touch < 2; touch++) {
        reactor_t *quiet = reactor_new ();
        test_state_t counted = { .ended_by = { -1, -1, -1, -1 } };
        char endpoint [64];
        snprintf (endpoint, sizeof endpoint, "inproc://reactor-quiet-%d", touch);
        s_test_quiet_in = zsock_new (ZMQ_PAIR);
        s_test_quiet_out = zsock_new (ZMQ_PAIR);
        assert (zsock_bind (s_test_quiet_in, "%s", endpoint) == 0);
        assert (zsock_connect (s_test_quiet_out, "%s", endpoint) == 0);
        assert (reactor_reader (quiet, s_test_quiet_in, s_test_quiet_reader, &counted) == 0);
        assert (reactor_quiet (quiet, s_test_quiet_in) == 0);
        assert (reactor_quiet (quiet, s_test_quiet_out) == -1);
        zstr_send (s_test_quiet_out, "one");
        zstr_send (s_test_quiet_out, "two");
        assert (reactor_timer (quiet, 30, 1, s_test_touch, touch ? &counted : NULL) >= 0);
        assert (reactor_timer (quiet, 300, 1, s_test_stop, NULL) >= 0);
        assert (reactor_start (quiet) == -1);
        assert (counted.reads == (touch ? 3 : 2));
        zsock_destroy (&s_test_quiet_in);
        zsock_destroy (&s_test_quiet_out);
        reactor_destroy (&quiet);
    }

    //  Nothing left to watch or wait for: the loop returns
    reactor_t *empty = reactor_new ();
    assert (reactor_start (empty) == 0);
    reactor_destroy (&empty);

    close (pair [0]);
    close (pair [1]);
    zactor_destroy (&late);
    zsock_destroy (&source);
    zsock_destroy (&sink);
    reactor_destroy (&reactor);
    reactor_destroy (&reactor);
    printf ("OK\n");
}
