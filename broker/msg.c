/*  =========================================================================
    msg - the message codec between actors

    Everything here is generated from the declaration in broker/msg_defs.h,
    an X-macro table, so the protocol is written once: the spec table the
    decoder checks against, the typed senders and accessors, the markdown
    of broker/PROTOCOL.md and the selftest's messages and malformed
    variants all expand from the same rows. We chose X-macros over a zproto
    model because they need no generator outside the C compiler, and the
    compiler itself then checks that every caller passes each field with
    its declared type.

    s_decode checks a whole multipart message before anyone reads a
    field: a known command, exactly its number of frames, no NUL in any
    text field, an 'i' that is a decimal int64, a 'j' that parses as one
    whole JSON document (kept parsed, so handlers never parse it again).
    Anything else is logged and dropped, so an accessor cannot fail on a
    message msg_recv returned; it asserts only that the caller asked the
    right message (our own contract).

    Senders never block (see s_send) and do not log a failed send: the
    caller knows what it meant and what to do (answer 503, fail the job),
    and logs it there.
    ========================================================================= */

#include "broker/msg.h"

#define MSG_MAX_FIELDS 12

typedef struct {
    const char *name;               //  Field name, as in the declaration
    char type;                      //  's', 'i', 'j' or 'b'
    const char *note;               //  Shown after "name t" in PROTOCOL.md
} msg_field_t;

typedef struct {
    const char *command;            //  Command name, the first frame
    msg_id_t id;                    //  Its msg_id_t
    int link;                       //  Index in s_links
    const char *when;               //  When it is sent
    const char *picture;            //  One letter per field: s, i, j, b
    const msg_field_t *fields;      //  Its fields, ended by a NULL name
} msg_spec_t;

//  Links, in declaration order
#define S_LINK_ENUM(ID, heading) S_LINK_##ID,
enum { MSG_LINKS (S_LINK_ENUM) S_LINK_COUNT };
#define S_LINK_HEADING(ID, heading) heading,
static const char *s_links [] = { MSG_LINKS (S_LINK_HEADING) };

//  Each message's fields: a table, an index enum (S_IX_run_job_id) and a
//  count (S_COUNT_run); S_ID_run is MSG_ID_RUN, for the accessors
#define S_TYPE_s 's'
#define S_TYPE_i 'i'
#define S_TYPE_j 'j'
#define S_TYPE_b 'b'
#define S_FIELD_ROW(m, f, type, note) { #f, S_TYPE_##type, note },
#define S_FIELD_TABLE(COMMAND, m, link, when) \
    static const msg_field_t s_fields_##m [] = { MSG_FIELDS_##COMMAND (S_FIELD_ROW, m) { NULL, 0, NULL } };
MSG_MESSAGES (S_FIELD_TABLE)

#define S_FIELD_INDEX(m, f, type, note) S_IX_##m##_##f,
#define S_FIELD_ENUM(COMMAND, m, link, when) \
    enum { MSG_FIELDS_##COMMAND (S_FIELD_INDEX, m) S_COUNT_##m }; \
    _Static_assert (S_COUNT_##m <= MSG_MAX_FIELDS, #COMMAND " has more than MSG_MAX_FIELDS fields");
MSG_MESSAGES (S_FIELD_ENUM)

#define S_ID_ROW(COMMAND, m, link, when) S_ID_##m = MSG_ID_##COMMAND,
enum { MSG_MESSAGES (S_ID_ROW) };

//  The spec table, indexed by msg_id_t
#define S_PICTURE(m, f, type, note) #type
#define S_SPEC_ROW(COMMAND, m, link, when) \
    { #COMMAND, MSG_ID_##COMMAND, S_LINK_##link, when, "" MSG_FIELDS_##COMMAND (S_PICTURE, m), s_fields_##m },
static const msg_spec_t s_specs [] = { MSG_MESSAGES (S_SPEC_ROW) };

struct _msg_t {
    zmsg_t *zmsg;                   //  The message as received
    zframe_t *route;                //  Routing id, or NULL
    char *command;                  //  Command name
    const msg_spec_t *spec;         //  Its declaration
    zframe_t *fields [MSG_MAX_FIELDS];  //  Field frames (owned by zmsg)
    char *strings [MSG_MAX_FIELDS];     //  NUL-terminated copies of s/i/j fields
    int64_t ints [MSG_MAX_FIELDS];      //  Values of i fields
    cJSON *json [MSG_MAX_FIELDS];       //  Parsed j fields
};

static const msg_spec_t *
s_spec (const char *command)
{
    for (size_t i = 0; i < MSG_ID_COUNT_; i++)
        if (streq (s_specs [i].command, command))
            return &s_specs [i];
    return NULL;
}

//  --------------------------------------------------------------------------
//  Sending

static zmsg_t *
s_start (zframe_t *route, const char *command)
{
    zmsg_t *zmsg = zmsg_new ();
    if (route)
        zmsg_append (zmsg, &(zframe_t *) { zframe_dup (route) });
    zmsg_addstr (zmsg, command);
    return zmsg;
}

//  Never blocks: a message the socket cannot queue now (its high-water
//  mark reached, no peer at all) fails at once, so no actor's loop waits on
//  another actor. ZeroMQ queues or refuses a multipart message as a whole,
//  at its first frame. Destroys the message either way.
static int
s_send (zmsg_t **zmsg_p, zsock_t *dest)
{
    zmsg_t *zmsg = *zmsg_p;
    int rc = 0;
    size_t left = zmsg_size (zmsg);
    while (rc == 0 && left > 0) {
        zframe_t *frame = zmsg_pop (zmsg);
        rc = zframe_send (&frame, dest, ZFRAME_DONTWAIT | (--left ? ZFRAME_MORE : 0));
        zframe_destroy (&frame);        //  Still ours when the send failed
    }
    zmsg_destroy (zmsg_p);
    return rc == 0 ? 0 : -1;
}

//  Typed senders: one per message, each field added by its type
#define S_ADD_s(f) zmsg_addstr (zmsg, f ? f : "");
#define S_ADD_i(f) zmsg_addstrf (zmsg, "%" PRId64, f);
#define S_ADD_j(f) zmsg_addstr (zmsg, f ? f : "null");
#define S_ADD_b(f) zmsg_addmem (zmsg, f, f ? f##_size : 0);
#define S_ADD(m, f, type, note) S_ADD_##type (f)
#define S_ENCODER(COMMAND, m, link, when) \
    zmsg_t * \
    msg_encode_##m (zframe_t *route MSG_FIELDS_##COMMAND (MSG_PARAM_, m)) \
    { \
        zmsg_t *zmsg = s_start (route, #COMMAND); \
        MSG_FIELDS_##COMMAND (S_ADD, m) \
        return zmsg; \
    }
MSG_MESSAGES (S_ENCODER)

#define S_ARG_s_(f) , f
#define S_ARG_i_(f) , f
#define S_ARG_j_(f) , f
#define S_ARG_b_(f) , f, f##_size
#define S_ARG(m, f, type, note) S_ARG_##type##_ (f)
#define S_SENDER(COMMAND, m, link, when) \
    int \
    msg_send_##m (zsock_t *dest, zframe_t *route MSG_FIELDS_##COMMAND (MSG_PARAM_, m)) \
    { \
        zmsg_t *zmsg = msg_encode_##m (route MSG_FIELDS_##COMMAND (S_ARG, m)); \
        return s_send (&zmsg, dest); \
    }
MSG_MESSAGES (S_SENDER)

//  --------------------------------------------------------------------------
//  Outbox

struct _msg_outbox_t {
    zsock_t *dest;                  //  The peer's socket (not ours to destroy)
    zlistx_t *waiting;              //  zmsg_t the peer could not take yet, oldest first
    size_t limit;                   //  Most that may wait
};

msg_outbox_t *
msg_outbox_new (zsock_t *dest, size_t limit)
{
    msg_outbox_t *self = (msg_outbox_t *) zmalloc (sizeof (msg_outbox_t));
    self->dest = dest;
    self->waiting = zlistx_new ();
    zlistx_set_destructor (self->waiting, (zlistx_destructor_fn *) zmsg_destroy);
    self->limit = limit;
    return self;
}

void
msg_outbox_destroy (msg_outbox_t **self_p)
{
    if (*self_p) {
        msg_outbox_t *self = *self_p;
        if (zlistx_size (self->waiting))
            zsys_warning ("msg: an outbox is destroyed with %zu messages the peer never took",
                          zlistx_size (self->waiting));
        zlistx_destroy (&self->waiting);
        free (self);
        *self_p = NULL;
    }
}

bool
msg_outbox_flush (msg_outbox_t *self)
{
    zmsg_t *head;
    while ((head = (zmsg_t *) zlistx_first (self->waiting))) {
        zmsg_t *copy = zmsg_dup (head);     //  s_send consumes it, even when refused
        if (s_send (&copy, self->dest))
            return false;
        zlistx_delete (self->waiting, zlistx_cursor (self->waiting));
    }
    return true;
}

int
msg_outbox_send (msg_outbox_t *self, zmsg_t **zmsg_p)
{
    if (zlistx_size (self->waiting) >= self->limit) {
        zsys_error ("msg: an outbox is full (%zu messages its peer has not taken); dropped one",
                    self->limit);
        zmsg_destroy (zmsg_p);
        return -1;
    }
    zlistx_add_end (self->waiting, *zmsg_p);
    *zmsg_p = NULL;
    msg_outbox_flush (self);
    return 0;
}

//  --------------------------------------------------------------------------
//  Receiving

//  Check a received message against its declaration (takes ownership of
//  *zmsg_p); the message, or NULL when malformed (logged, dropped)
static msg_t *
    s_decode (zmsg_t **zmsg_p, bool routed);

msg_t *
msg_recv_pipe (zsock_t *pipe, bool *terminated)
{
    zmsg_t *zmsg = zmsg_recv (pipe);
    char *first = zmsg? zframe_strdup (zmsg_first (zmsg)): NULL;
    *terminated = !first || streq (first, "$TERM");
    zstr_free (&first);
    if (*terminated) {
        zmsg_destroy (&zmsg);
        return NULL;
    }
    return s_decode (&zmsg, false);
}

msg_t *
msg_recv (zsock_t *source, bool routed)
{
    zmsg_t *zmsg = zmsg_recv (source);
    if (!zmsg)
        return NULL;
    return s_decode (&zmsg, routed);
}

void
msg_destroy (msg_t **self_p)
{
    if (self_p && *self_p) {
        msg_t *self = *self_p;
        for (int i = 0; i < MSG_MAX_FIELDS; i++) {
            free (self->strings [i]);
            cJSON_Delete (self->json [i]);
        }
        free (self->command);
        zframe_destroy (&self->route);
        zmsg_destroy (&self->zmsg);
        free (self);
        *self_p = NULL;
    }
}

static msg_t *
s_malformed (msg_t *self, const char *why, const char *field)
{
    zsys_warning ("msg: dropped malformed message '%.40s': %s%s%s", self->command ? self->command : "?",
                  field ? "field " : "", field ? field : "", why);
    msg_destroy (&self);
    return NULL;
}

//  Strictly decimal: an optional minus, then digits, and within int64_t
static bool
s_parse_int (const char *text, int64_t *value)
{
    const char *digits = text [0] == '-' ? text + 1 : text;
    if (!*digits)
        return false;
    for (const char *c = digits; *c; c++)
        if (*c < '0' || *c > '9')
            return false;
    errno = 0;
    long long parsed = strtoll (text, NULL, 10);
    if (errno)
        return false;
    *value = (int64_t) parsed;
    return true;
}

static msg_t *
s_decode (zmsg_t **zmsg_p, bool routed)
{
    msg_t *self = (msg_t *) zmalloc (sizeof (msg_t));
    self->zmsg = *zmsg_p;
    *zmsg_p = NULL;
    if (routed) {
        self->route = zmsg_pop (self->zmsg);
        if (!self->route)
            return s_malformed (self, "no routing frame", NULL);
    }
    self->command = zmsg_popstr (self->zmsg);
    if (!self->command)
        return s_malformed (self, "no command frame", NULL);
    self->spec = s_spec (self->command);
    if (!self->spec)
        return s_malformed (self, "unknown command", NULL);
    size_t count = strlen (self->spec->picture);
    if (zmsg_size (self->zmsg) != count)
        return s_malformed (self, "wrong number of fields", NULL);
    zframe_t *frame = zmsg_first (self->zmsg);
    for (size_t i = 0; i < count; i++, frame = zmsg_next (self->zmsg)) {
        self->fields [i] = frame;
        const char *name = self->spec->fields [i].name;
        char type = self->spec->picture [i];
        if (type == 'b')
            continue;
        size_t size = zframe_size (frame);
        if (memchr (zframe_data (frame), 0, size))
            return s_malformed (self, " holds a NUL", name);
        self->strings [i] = (char *) malloc (size + 1);
        memcpy (self->strings [i], zframe_data (frame), size);
        self->strings [i][size] = 0;
        if (type == 'i' && !s_parse_int (self->strings [i], &self->ints [i]))
            return s_malformed (self, " is not a decimal integer", name);
        if (type == 'j') {
            //  The whole frame must be one document: nothing after it
            self->json [i] = cJSON_ParseWithOpts (self->strings [i], NULL, true);
            if (!self->json [i])
                return s_malformed (self, " is not valid JSON", name);
        }
    }
    return self;
}

msg_id_t
msg_id (msg_t *self)
{
    assert (self);
    return self->spec->id;
}

const char *
msg_command (msg_t *self)
{
    assert (self);
    return self->command;
}

zframe_t *
msg_route (msg_t *self)
{
    assert (self);
    return self->route;
}

//  Typed accessors: one per field, each asserting the message is the one
//  the caller meant
static void
s_expect (msg_t *self, int id)
{
    assert (self);
    assert (self->spec->id == (msg_id_t) id);
}

#define S_GET_s(m, f) \
    const char *msg_##m##_##f (msg_t *self) \
    { s_expect (self, S_ID_##m); return self->strings [S_IX_##m##_##f]; }
#define S_GET_i(m, f) \
    int64_t msg_##m##_##f (msg_t *self) \
    { s_expect (self, S_ID_##m); return self->ints [S_IX_##m##_##f]; }
#define S_GET_j(m, f) \
    cJSON *msg_##m##_##f (msg_t *self) \
    { s_expect (self, S_ID_##m); return self->json [S_IX_##m##_##f]; } \
    cJSON *msg_##m##_##f##_take (msg_t *self) \
    { \
        s_expect (self, S_ID_##m); \
        cJSON *json = self->json [S_IX_##m##_##f]; \
        self->json [S_IX_##m##_##f] = NULL; \
        return json; \
    } \
    const char *msg_##m##_##f##_text (msg_t *self) \
    { s_expect (self, S_ID_##m); return self->strings [S_IX_##m##_##f]; }
#define S_GET_b(m, f) \
    const byte *msg_##m##_##f (msg_t *self, size_t *size_p) \
    { \
        s_expect (self, S_ID_##m); \
        zframe_t *frame = self->fields [S_IX_##m##_##f]; \
        if (size_p) \
            *size_p = zframe_size (frame); \
        return zframe_data (frame); \
    }
#define S_GET(m, f, type, note) S_GET_##type (m, f)
#define S_GETTERS(COMMAND, m, link, when) MSG_FIELDS_##COMMAND (S_GET, m)
MSG_MESSAGES (S_GETTERS)

//  --------------------------------------------------------------------------
//  PROTOCOL.md

char *
msg_protocol_markdown (void)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    assert (out);
    fputs (MSG_DOC_INTRO, out);
    for (int link = 0; link < S_LINK_COUNT; link++) {
        fprintf (out, "\n## %s\n| message | fields | when |\n|---|---|---|\n", s_links [link]);
        for (size_t i = 0; i < MSG_ID_COUNT_; i++) {
            const msg_spec_t *spec = &s_specs [i];
            if (spec->link != link)
                continue;
            fprintf (out, "| %s | ", spec->command);
            if (!spec->fields [0].name)
                fputs ("(none)", out);
            for (const msg_field_t *field = spec->fields; field->name; field++) {
                const char *note = field->note;
                const char *space = *note && *note != ':' && *note != ',' ? " " : "";
                fprintf (out, "%s%s %c%s%s", field == spec->fields ? "" : ", ",
                         field->name, field->type, space, note);
            }
            fprintf (out, " | %s |\n", spec->when);
        }
    }
    fprintf (out, "\n%s", MSG_DOC_OUTRO);
    fclose (out);
    return text;
}

//  --------------------------------------------------------------------------
//  Selftest, generated from the declaration like the codec: every message
//  goes both ways over a DEALER/ROUTER pair (inproc, then tcp on loopback)
//  with sample values of each type, then with empty ones; every malformed
//  variant of every message is refused, by s_decode and over the link.

static const byte s_sample_bytes [] = { 0, 1, 2, 'x', 0, 255 };

//  Sample values: text naming its field (with a non-ASCII letter), the
//  lowest int64, a JSON document holding its field's name, bytes with NULs
#define S_SAMPLE_s(f) , "sample " #f " \xc3\xa9"
#define S_SAMPLE_i(f) , INT64_MIN
#define S_SAMPLE_j(f) , "{\"" #f "\":[1,\"two\",null,{\"three\":true}]}"
#define S_SAMPLE_b(f) , s_sample_bytes, sizeof s_sample_bytes
#define S_SAMPLE(m, f, type, note) S_SAMPLE_##type (f)
#define S_CHECK_s(m, f) assert (streq (msg_##m##_##f (msg), "sample " #f " \xc3\xa9"));
#define S_CHECK_i(m, f) assert (msg_##m##_##f (msg) == INT64_MIN);
#define S_CHECK_j(m, f) \
    assert (streq (msg_##m##_##f##_text (msg), "{\"" #f "\":[1,\"two\",null,{\"three\":true}]}")); \
    assert (cJSON_GetArraySize (cJSON_GetObjectItemCaseSensitive (msg_##m##_##f (msg), #f)) == 4);
#define S_CHECK_b(m, f) { \
        size_t size; \
        const byte *data = msg_##m##_##f (msg, &size); \
        assert (size == sizeof s_sample_bytes && memcmp (data, s_sample_bytes, size) == 0); \
    }
#define S_CHECK(m, f, type, note) S_CHECK_##type (m, f)

//  Empty values: NULL text, the highest int64, NULL JSON (sent as null),
//  no bytes
#define S_EMPTY_s(f) , NULL
#define S_EMPTY_i(f) , INT64_MAX
#define S_EMPTY_j(f) , NULL
#define S_EMPTY_b(f) , NULL, (size_t) 0
#define S_EMPTY(m, f, type, note) S_EMPTY_##type (f)
#define S_CHECK_EMPTY_s(m, f) assert (streq (msg_##m##_##f (msg), ""));
#define S_CHECK_EMPTY_i(m, f) assert (msg_##m##_##f (msg) == INT64_MAX);
#define S_CHECK_EMPTY_j(m, f) { \
        cJSON *json = msg_##m##_##f##_take (msg); \
        assert (cJSON_IsNull (json) && msg_##m##_##f (msg) == NULL); \
        cJSON_Delete (json); \
    }
#define S_CHECK_EMPTY_b(m, f) { size_t size = 1; msg_##m##_##f (msg, &size); assert (size == 0); }
#define S_CHECK_EMPTY(m, f, type, note) S_CHECK_EMPTY_##type (m, f)

//  client sends to server, which checks the fields and sends the same back
//  to the client's route, which checks them again
#define S_ROUNDTRIP(COMMAND, m, link, when) \
    static void \
    s_roundtrip_##m (zsock_t *client, zsock_t *server) \
    { \
        assert (msg_send_##m (client, NULL MSG_FIELDS_##COMMAND (S_SAMPLE, m)) == 0); \
        msg_t *msg = msg_recv (server, true); \
        assert (msg && msg_id (msg) == MSG_ID_##COMMAND && streq (msg_command (msg), #COMMAND)); \
        assert (msg_route (msg)); \
        MSG_FIELDS_##COMMAND (S_CHECK, m) \
        assert (msg_send_##m (server, msg_route (msg) MSG_FIELDS_##COMMAND (S_SAMPLE, m)) == 0); \
        msg_destroy (&msg); \
        msg = msg_recv (client, false); \
        assert (msg && msg_id (msg) == MSG_ID_##COMMAND && !msg_route (msg)); \
        MSG_FIELDS_##COMMAND (S_CHECK, m) \
        msg_destroy (&msg); \
        assert (msg_send_##m (client, NULL MSG_FIELDS_##COMMAND (S_EMPTY, m)) == 0); \
        msg = msg_recv (server, true); \
        assert (msg && msg_id (msg) == MSG_ID_##COMMAND); \
        MSG_FIELDS_##COMMAND (S_CHECK_EMPTY, m) \
        msg_destroy (&msg); \
    }
MSG_MESSAGES (S_ROUNDTRIP)

#define S_ROUNDTRIP_CALL(COMMAND, m, link, when) s_roundtrip_##m (client, server);

static void
s_test_roundtrips (const char *bind_endpoint, bool verbose)
{
    zsock_t *server = zsock_new_router (bind_endpoint);
    assert (server);
    char *endpoint = zsock_last_endpoint (server);
    if (verbose)
        printf ("(%s) ", endpoint);
    zsock_t *client = zsock_new_dealer (endpoint);
    zstr_free (&endpoint);
    assert (client);
    zsock_set_rcvtimeo (client, 10000);
    zsock_set_rcvtimeo (server, 10000);
    MSG_MESSAGES (S_ROUNDTRIP_CALL)
    zsock_destroy (&client);
    zsock_destroy (&server);
}

//  A valid frame of each type, and wrong ones (NULL ends each list)
static zframe_t *
s_valid_frame (char type)
{
    if (type == 's')
        return zframe_from ("text");
    if (type == 'i')
        return zframe_from ("-42");
    if (type == 'j')
        return zframe_from ("{\"a\":[1,2]}");
    return zframe_new (s_sample_bytes, sizeof s_sample_bytes);
}

typedef struct {
    const char *data;               //  Frame content
    size_t size;                    //  Its size (data may hold a NUL)
} s_wrong_t;

static const s_wrong_t s_wrong_s [] = { { "a\0b", 3 }, { "\0", 1 }, { NULL, 0 } };
static const s_wrong_t s_wrong_i [] = {
    { "", 0 }, { "12x", 3 }, { " 1", 2 }, { "+1", 2 }, { "1.5", 3 }, { "-", 1 },
    { "99999999999999999999", 20 }, { "4\0", 2 }, { NULL, 0 }
};
static const s_wrong_t s_wrong_j [] = {
    { "", 0 }, { "{not json", 9 }, { "{} {}", 5 }, { "[1,]", 4 }, { "{\"a\":1}\0", 8 }, { NULL, 0 }
};

//  A message of spec: valid frames, but frame `skip` left out, frame `wrong`
//  replaced by `bad`, and `extra` more frames at the end
static zmsg_t *
s_variant (const char *command, const char *picture, int skip, int wrong, const s_wrong_t *bad, int extra)
{
    zmsg_t *zmsg = zmsg_new ();
    zmsg_addstr (zmsg, command);
    for (int i = 0; picture [i]; i++) {
        if (i == skip)
            continue;
        zframe_t *frame = i == wrong ? zframe_new (bad->data, bad->size) : s_valid_frame (picture [i]);
        zmsg_append (zmsg, &frame);
    }
    while (extra--)
        zmsg_addstr (zmsg, "extra");
    return zmsg;
}

//  Every malformed variant of every message, each as its own zmsg
static zlistx_t *
s_malformed_variants (void)
{
    zlistx_t *variants = zlistx_new ();
    zlistx_set_destructor (variants, (zlistx_destructor_fn *) zmsg_destroy);
    for (size_t id = 0; id < MSG_ID_COUNT_; id++) {
        const char *command = s_specs [id].command;
        const char *picture = s_specs [id].picture;
        int count = (int) strlen (picture);
        for (int skip = 0; skip < count; skip++)
            zlistx_add_end (variants, s_variant (command, picture, skip, -1, NULL, 0));
        zlistx_add_end (variants, s_variant (command, picture, -1, -1, NULL, 1));
        for (int field = 0; field < count; field++) {
            char type = picture [field];
            const s_wrong_t *wrong = type == 's' ? s_wrong_s : type == 'i' ? s_wrong_i
                                   : type == 'j' ? s_wrong_j : NULL;
            for (; wrong && wrong->data; wrong++)
                zlistx_add_end (variants, s_variant (command, picture, -1, field, wrong, 0));
        }
        //  The command in another case is another, unknown, command
        char lower [32];
        snprintf (lower, sizeof lower, "%s", command);
        for (char *c = lower; *c; c++)
            *c = (char) tolower ((unsigned char) *c);
        zlistx_add_end (variants, s_variant (lower, picture, -1, -1, NULL, 0));
    }
    zlistx_add_end (variants, s_variant ("NOSUCHCOMMAND", "", -1, -1, NULL, 0));
    zlistx_add_end (variants, s_variant ("", "", -1, -1, NULL, 0));
    zlistx_add_end (variants, zmsg_new ());
    return variants;
}

static void
s_test_malformed (bool verbose)
{
    //  Each valid base message decodes, so each variant fails for its flaw
    for (size_t id = 0; id < MSG_ID_COUNT_; id++) {
        zmsg_t *zmsg = s_variant (s_specs [id].command, s_specs [id].picture, -1, -1, NULL, 0);
        msg_t *msg = s_decode (&zmsg, false);
        assert (msg && msg_id (msg) == (msg_id_t) id && !zmsg);
        msg_destroy (&msg);
    }
    //  Hundreds of "dropped" warnings say nothing a failed assert would not
    if (!verbose)
        zsys_set_logstream (NULL);
    zlistx_t *variants = s_malformed_variants ();
    for (zmsg_t *variant = (zmsg_t *) zlistx_first (variants); variant;
         variant = (zmsg_t *) zlistx_next (variants)) {
        zmsg_t *copy = zmsg_dup (variant);
        assert (s_decode (&copy, false) == NULL && !copy);
    }
    //  No routing frame at all on a ROUTER-side decode
    zmsg_t *empty = zmsg_new ();
    assert (s_decode (&empty, true) == NULL);

    //  Over a link the receiver drops each one and still gets what follows
    zsock_t *server = zsock_new_router ("inproc://msg-test-malformed");
    zsock_t *client = zsock_new_dealer ("inproc://msg-test-malformed");
    assert (server && client);
    zsock_set_rcvtimeo (server, 10000);
    size_t sent = 0;
    for (zmsg_t *variant = (zmsg_t *) zlistx_first (variants); variant;
         variant = (zmsg_t *) zlistx_next (variants)) {
        if (zmsg_size (variant) == 0)
            continue;           //  An empty message cannot be sent
        zmsg_t *copy = zmsg_dup (variant);
        assert (zmsg_send (&copy, client) == 0);
        sent++;
    }
    assert (msg_send_db_scan (client, NULL) == 0);
    size_t dropped = 0;
    msg_t *msg = NULL;
    while (!msg) {
        msg = msg_recv (server, true);
        if (!msg)
            dropped++;
        assert (dropped <= sent);
    }
    assert (msg_id (msg) == MSG_ID_DB_SCAN && dropped == sent);
    msg_destroy (&msg);
    zsys_set_logstream (stdout);        //  CZMQ's default
    if (verbose)
        printf ("(%zu malformed variants refused) ", sent);
    zsock_destroy (&client);
    zsock_destroy (&server);
    zlistx_destroy (&variants);
}

//  broker/PROTOCOL.md must be what the declaration says
static void
s_test_protocol_doc (void)
{
    char *generated = msg_protocol_markdown ();
    const char *path = CLOWDY_SOURCE_DIR "/broker/PROTOCOL.md";
    FILE *file = fopen (path, "rb");
    char *written = NULL;
    size_t size = 0;
    if (file) {
        FILE *out = open_memstream (&written, &size);
        char buffer [4096];
        size_t got;
        while ((got = fread (buffer, 1, sizeof buffer, file)) > 0)
            fwrite (buffer, 1, got, out);
        fclose (out);
        fclose (file);
    }
    if (!written || strneq (written, generated)) {
        //  Show the first line that differs, then fail
        int line = 1;
        const char *a = written ? written : "", *b = generated;
        const char *line_a = a, *line_b = b;
        while (*a && *a == *b) {
            if (*a == '\n') {
                line++;
                line_a = a + 1;
                line_b = b + 1;
            }
            a++;
            b++;
        }
        fprintf (stderr, "\nmsg: %s is out of date (line %d):\n  file:      %.*s\n  generated: %.*s\n"
                 "regenerate it: build/clowdy protocol-doc > broker/PROTOCOL.md\n", path, line,
                 (int) strcspn (line_a, "\n"), line_a, (int) strcspn (line_b, "\n"), line_b);
        assert (!"broker/PROTOCOL.md differs from broker/msg_defs.h");
    }
    free (written);
    free (generated);
}

void
msg_test (bool verbose)
{
    printf ("msg: ");
    //  The declaration is well formed: unique commands, known types, the
    //  picture and the field table agree, every link has a message
    bool used [S_LINK_COUNT] = { false };
    for (size_t id = 0; id < MSG_ID_COUNT_; id++) {
        const msg_spec_t *spec = &s_specs [id];
        assert (spec->id == (msg_id_t) id && s_spec (spec->command) == spec);
        assert (strlen (spec->command) < 32 && *spec->when && !strchr (spec->when, '|'));
        size_t count = 0;
        for (const msg_field_t *field = spec->fields; field->name; field++, count++) {
            assert (strchr ("sijb", field->type) && spec->picture [count] == field->type);
            assert (!strchr (field->note, '|'));
        }
        assert (count == strlen (spec->picture));
        used [spec->link] = true;
    }
    for (int link = 0; link < S_LINK_COUNT; link++)
        assert (used [link]);
    assert (streq (s_spec ("INVOKE")->picture, "ssssssjbs"));
    assert (s_spec ("NOPE") == NULL);

    s_test_protocol_doc ();
    s_test_malformed (verbose);

    //  Every message both ways, over inproc, then over tcp on loopback
    s_test_roundtrips ("inproc://msg-test", verbose);
    s_test_roundtrips ("tcp://127.0.0.1:*", verbose);

    //  An outbox keeps what the peer cannot take yet, in order, up to its limit
    zsock_t *lonely_sender = zsock_new (ZMQ_DEALER);
    zsock_set_sndtimeo (lonely_sender, 0);
    msg_outbox_t *outbox = msg_outbox_new (lonely_sender, 2);
    zmsg_t *zmsg = msg_encode_invalidate (NULL, "function a");
    assert (msg_outbox_send (outbox, &zmsg) == 0 && zmsg == NULL);
    zmsg = msg_encode_invalidate (NULL, "function b");
    assert (msg_outbox_send (outbox, &zmsg) == 0);
    zmsg = msg_encode_invalidate (NULL, "function c");
    assert (msg_outbox_send (outbox, &zmsg) == -1 && zmsg == NULL);     //  Full: dropped, logged
    assert (!msg_outbox_flush (outbox));                                //  Still no peer
    zsock_t *taker = zsock_new_router ("inproc://msg-test-outbox");
    zsock_set_rcvtimeo (taker, 10000);
    assert (zsock_connect (lonely_sender, "inproc://msg-test-outbox") == 0);
    assert (msg_outbox_flush (outbox));
    const char *expect [] = { "function a", "function b" };
    for (int index = 0; index < 2; index++) {
        msg_t *taken = msg_recv (taker, true);
        assert (taken && msg_id (taken) == MSG_ID_INVALIDATE && streq (msg_invalidate_what (taken), expect [index]));
        msg_destroy (&taken);
    }
    msg_outbox_destroy (&outbox);
    msg_outbox_destroy (&outbox);
    zsock_destroy (&taker);
    zsock_destroy (&lonely_sender);

    //  A j field sent as NULL arrives as JSON null; its text is "null"
    zsock_t *server = zsock_new_router ("inproc://msg-test-null");
    zsock_t *client = zsock_new_dealer ("inproc://msg-test-null");
    zsock_set_rcvtimeo (server, 10000);
    zsock_set_rcvtimeo (client, 10000);
    assert (msg_send_db_scan (client, NULL) == 0);
    msg_t *msg = msg_recv (server, true);
    assert (msg && msg_id (msg) == MSG_ID_DB_SCAN);
    assert (msg_send_result (server, msg_route (msg), "j1", NULL) == 0);
    msg_destroy (&msg);
    msg = msg_recv (client, false);
    assert (msg && streq (msg_result_job_id (msg), "j1") && cJSON_IsNull (msg_result_result (msg)));
    assert (streq (msg_result_result_text (msg), "null"));

    //  Asking a DONE for a RUN field is our bug, and asserts (in a child,
    //  which dies of it)
    fflush (stdout);
    pid_t child = fork ();
    assert (child >= 0);
    if (child == 0) {
        if (!freopen ("/dev/null", "w", stderr)) { }
        msg_run_job_id (msg);
        _exit (0);
    }
    int status;
    assert (waitpid (child, &status, 0) == child);
    assert (WIFSIGNALED (status) && WTERMSIG (status) == SIGABRT);
    msg_destroy (&msg);
    zsock_destroy (&client);
    zsock_destroy (&server);

    //  A socket that cannot queue fails at once, never blocks: a DEALER
    //  with no peer, a PUSH past its high-water mark with nobody pulling
    zsock_t *lonely = zsock_new (ZMQ_DEALER);
    assert (msg_send_run (lonely, NULL, "j", "k", "f", "p", "u", 1, 1000, "{}", "{}") == -1);
    zsock_destroy (&lonely);
    zsock_t *push = zsock_new (ZMQ_PUSH);
    zsock_set_sndhwm (push, 2);
    assert (zsock_connect (push, "inproc://msg-test-nobody-pulls") == 0);
    int sent = 0;
    while (sent < 100 && msg_send_record (push, NULL, "{}") == 0)
        sent++;
    assert (sent >= 2 && sent < 100);
    zsock_destroy (&push);
    printf ("OK\n");
}
