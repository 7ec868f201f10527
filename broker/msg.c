/*  =========================================================================
    msg - the message codec between actors

    The table below is the single list of messages actors exchange, with
    each one's field picture; broker/PROTOCOL.md says when each is sent.
    msg_send encodes from varargs by the picture; msg_decode checks a whole
    multipart message against it before anyone reads a field, so handlers
    never see a short or mistyped message.
    ========================================================================= */

#include "broker/msg.h"

typedef struct {
    const char *command;            //  Command name, the first frame
    const char *picture;            //  One letter per field: s, i, j, b
} msg_spec_t;

static const msg_spec_t s_specs [] = {
    //  http <-> gateway
    { "INVOKE",       "ssssssjbs" },  //  request_id kind target method path query headers body user_id
    { "REPLY",        "sijb" },       //  request_id status headers body
    { "INVALIDATE",   "s" },          //  "function ID" | "project ID" | "routes PROJECT_ID"
    //  gateway <-> assignment
    { "RUN",          "ssssijj" },    //  job_id pool_key function_id project_id memory_mb function input
    { "RESULT",       "sj" },         //  job_id result
    { "RETIRE",       "s" },          //  what: as INVALIDATE
    //  assignment <-> placement
    { "PLACE",        "ssij" },       //  job_id pool_key memory_mb workers
    { "PLACED",       "ss" },         //  job_id worker_id ("" when none fits)
    //  assignment <-> worker (Majordomo-style: workers connect and register)
    { "READY",        "sj" },         //  worker_id info
    { "HEARTBEAT",    "s" },          //  worker_id
    { "EXEC",         "sssjj" },      //  env_id job_id pool_key function input
    { "DONE",         "ssjs" },       //  env_id job_id result env_state (warm, dead, lost)
    { "KILL",         "s" },          //  env_id
    { "GONE",         "ss" },         //  env_id reason
    //  gateway -> recorder
    { "RECORD",       "j" },          //  invocation row
    //  anyone
    { "PING",         "" },
    { "PONG",         "" },
    { NULL, NULL }
};

#define MSG_MAX_FIELDS 12

struct _msg_t {
    zmsg_t *zmsg;                   //  The message as received
    zframe_t *route;                //  Routing id, or NULL
    char *command;                  //  Command name
    const char *picture;            //  Its spec's picture
    zframe_t *fields [MSG_MAX_FIELDS];  //  Field frames (owned by zmsg)
    char *strings [MSG_MAX_FIELDS];     //  NUL-terminated copies of s/j/i fields
};

const char *
msg_picture (const char *command)
{
    for (const msg_spec_t *spec = s_specs; spec->command; spec++)
        if (streq (spec->command, command))
            return spec->picture;
    return NULL;
}

int
msg_send (zsock_t *dest, zframe_t *route, const char *command, ...)
{
    const char *picture = msg_picture (command);
    if (!picture) {
        zsys_error ("msg: cannot send unknown command '%s'", command);
        return -1;
    }
    zmsg_t *zmsg = zmsg_new ();
    if (route)
        zmsg_append (zmsg, &(zframe_t *) { zframe_dup (route) });
    zmsg_addstr (zmsg, command);
    va_list args;
    va_start (args, command);
    for (const char *p = picture; *p; p++) {
        if (*p == 's' || *p == 'j') {
            const char *text = va_arg (args, const char *);
            zmsg_addstr (zmsg, text ? text : "");
        }
        else
        if (*p == 'i')
            zmsg_addstrf (zmsg, "%" PRId64, va_arg (args, int64_t));
        else {
            const void *data = va_arg (args, const void *);
            size_t size = va_arg (args, size_t);
            zmsg_addmem (zmsg, data, data ? size : 0);
        }
    }
    va_end (args);
    //  zmsg_send keeps the message when it fails (a full or vanished peer)
    int rc = zmsg_send (&zmsg, dest);
    zmsg_destroy (&zmsg);
    return rc;
}

msg_t *
msg_recv (zsock_t *source, bool routed)
{
    zmsg_t *zmsg = zmsg_recv (source);
    if (!zmsg)
        return NULL;
    return msg_decode (&zmsg, routed);
}

void
msg_destroy (msg_t **self_p)
{
    if (self_p && *self_p) {
        msg_t *self = *self_p;
        for (int i = 0; i < MSG_MAX_FIELDS; i++)
            free (self->strings [i]);
        free (self->command);
        zframe_destroy (&self->route);
        zmsg_destroy (&self->zmsg);
        free (self);
        *self_p = NULL;
    }
}

static msg_t *
s_malformed (msg_t *self, const char *why)
{
    zsys_warning ("msg: dropped malformed message '%s': %s",
                  self->command ? self->command : "?", why);
    msg_destroy (&self);
    return NULL;
}

msg_t *
msg_decode (zmsg_t **zmsg_p, bool routed)
{
    msg_t *self = (msg_t *) zmalloc (sizeof (msg_t));
    self->zmsg = *zmsg_p;
    *zmsg_p = NULL;
    if (routed) {
        self->route = zmsg_pop (self->zmsg);
        if (!self->route)
            return s_malformed (self, "no routing frame");
    }
    self->command = zmsg_popstr (self->zmsg);
    if (!self->command)
        return s_malformed (self, "no command frame");
    self->picture = msg_picture (self->command);
    if (!self->picture)
        return s_malformed (self, "unknown command");
    size_t count = strlen (self->picture);
    if (zmsg_size (self->zmsg) != count)
        return s_malformed (self, "wrong number of fields");
    zframe_t *frame = zmsg_first (self->zmsg);
    for (size_t i = 0; i < count; i++, frame = zmsg_next (self->zmsg)) {
        self->fields [i] = frame;
        char type = self->picture [i];
        if (type == 'b')
            continue;
        size_t size = zframe_size (frame);
        if (memchr (zframe_data (frame), 0, size))
            return s_malformed (self, "NUL inside a text field");
        self->strings [i] = (char *) malloc (size + 1);
        memcpy (self->strings [i], zframe_data (frame), size);
        self->strings [i][size] = 0;
        if (type == 'i') {
            char *end;
            errno = 0;
            (void) strtoll (self->strings [i], &end, 10);
            if (size == 0 || *end || errno)
                return s_malformed (self, "integer field is not a number");
        }
    }
    return self;
}

const char *
msg_command (msg_t *self)
{
    return self->command;
}

zframe_t *
msg_route (msg_t *self)
{
    return self->route;
}

const char *
msg_string (msg_t *self, int index)
{
    assert (index >= 0 && index < (int) strlen (self->picture));
    assert (self->picture [index] != 'b');
    return self->strings [index];
}

int64_t
msg_int (msg_t *self, int index)
{
    assert (index >= 0 && index < (int) strlen (self->picture));
    assert (self->picture [index] == 'i');
    return strtoll (self->strings [index], NULL, 10);
}

const byte *
msg_bytes (msg_t *self, int index, size_t *size_p)
{
    assert (index >= 0 && index < (int) strlen (self->picture));
    assert (self->picture [index] == 'b');
    *size_p = zframe_size (self->fields [index]);
    return zframe_data (self->fields [index]);
}

//  --------------------------------------------------------------------------
//  Selftest: an echo actor serving a ROUTER socket, reached over inproc and
//  then over tcp on loopback, proves that the same actor code works on both.

static void
s_echo_actor (zsock_t *pipe, void *args)
{
    //  Binding "tcp://127.0.0.1:*" picks a free port; the caller learns the
    //  endpoint from the pipe, so tests can run side by side
    zsock_t *router = zsock_new_router ((const char *) args);
    assert (router);
    zsock_signal (pipe, 0);
    char *endpoint = zsock_last_endpoint (router);
    zstr_send (pipe, endpoint);
    zstr_free (&endpoint);
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    while (true) {
        zsock_t *which = (zsock_t *) zpoller_wait (poller, -1);
        if (which == pipe || !which)
            break;              //  $TERM or interrupted
        msg_t *msg = msg_recv (router, true);
        if (!msg)
            continue;           //  Malformed: dropped, we go on
        if (streq (msg_command (msg), "PING"))
            msg_send (router, msg_route (msg), "PONG");
        else
        if (streq (msg_command (msg), "REPLY")) {
            size_t size;
            const byte *body = msg_bytes (msg, 3, &size);
            msg_send (router, msg_route (msg), "REPLY", msg_string (msg, 0),
                      msg_int (msg, 1) + 1, msg_string (msg, 2), body, size);
        }
        msg_destroy (&msg);
    }
    zpoller_destroy (&poller);
    zsock_destroy (&router);
}

static void
s_test_link (const char *bind_endpoint, bool verbose)
{
    zactor_t *echo = zactor_new (s_echo_actor, (void *) bind_endpoint);
    char *endpoint = zstr_recv (echo);
    if (verbose)
        printf ("(%s) ", endpoint);
    zsock_t *client = zsock_new_dealer (endpoint);
    zstr_free (&endpoint);
    assert (client);
    zsock_set_rcvtimeo (client, 5000);

    //  Garbage first: the actor drops it and keeps serving
    zstr_send (client, "NOSUCHCOMMAND");
    zstr_sendx (client, "REPLY", "too", "few", NULL);
    zstr_sendx (client, "REPLY", "r1", "notanumber", "{}", "", NULL);

    assert (msg_send (client, NULL, "PING") == 0);
    msg_t *msg = msg_recv (client, false);
    assert (msg && streq (msg_command (msg), "PONG"));
    msg_destroy (&msg);

    byte body [] = { 0, 1, 2, 255 };
    assert (msg_send (client, NULL, "REPLY", "r2", (int64_t) 41, "{\"a\":1}", body, sizeof body) == 0);
    msg = msg_recv (client, false);
    assert (msg && streq (msg_command (msg), "REPLY"));
    assert (streq (msg_string (msg, 0), "r2"));
    assert (msg_int (msg, 1) == 42);
    assert (streq (msg_string (msg, 2), "{\"a\":1}"));
    size_t size;
    const byte *echoed = msg_bytes (msg, 3, &size);
    assert (size == sizeof body && memcmp (echoed, body, size) == 0);
    msg_destroy (&msg);

    zsock_destroy (&client);
    zactor_destroy (&echo);
}

void
msg_test (bool verbose)
{
    printf ("msg: ");
    assert (streq (msg_picture ("INVOKE"), "ssssssjbs"));
    assert (msg_picture ("NOPE") == NULL);

    //  Decoding checks shape before anyone reads a field
    zmsg_t *zmsg = zmsg_new ();
    zmsg_addstr (zmsg, "INVALIDATE");
    zmsg_addmem (zmsg, "a\0b", 3);
    assert (msg_decode (&zmsg, false) == NULL);
    assert (zmsg == NULL);
    zmsg = zmsg_new ();
    assert (msg_decode (&zmsg, true) == NULL);
    zmsg = zmsg_new ();
    zmsg_addstr (zmsg, "INVALIDATE");
    zmsg_addstr (zmsg, "function abc");
    msg_t *msg = msg_decode (&zmsg, false);
    assert (msg && streq (msg_string (msg, 0), "function abc"));
    msg_destroy (&msg);
    msg_destroy (&msg);

    //  The same actor over inproc, then over tcp on loopback
    s_test_link ("inproc://msg-test", verbose);
    s_test_link ("tcp://127.0.0.1:*", verbose);
    printf ("OK\n");
}
