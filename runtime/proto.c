/*  =========================================================================
    proto - the frame codec between the host and the Python runner

    The worker actor talks to each runner over a SOCK_STREAM socket it polls
    without blocking, so bytes arrive in arbitrary pieces. The reader is a
    small state machine: four header bytes, then a body of exactly that
    length. When a whole body sits inside the bytes being fed it is parsed in
    place; otherwise one buffer of the announced size is allocated (never
    more than max_frame + 1 bytes) and proto_reader_read_fd reads the rest of
    a big body straight into it, so a 5 MB result is copied once.

    Everything a runner sends is untrusted: the function may have written
    garbage to the socket on purpose. A parsed body must be valid UTF-8
    (checked before cJSON sees it, so nothing downstream stores invalid
    text), exactly one JSON value with nothing but whitespace after it, and
    an object with a string "type". cJSON's nesting limit bounds recursion.
    The first violation is sticky: the reader records why, refuses more
    input, and the caller kills the environment. Messages queued before it
    can still be taken.

    Writing is simpler: proto_encode makes one buffer with the prefix, and
    proto_write_all pushes it out, polling when the fd is non-blocking.
    ========================================================================= */

#include <czmq.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include "runtime/proto.h"
#include "core/jsonfit.h"

struct _proto_reader_t {
    size_t max_frame;               //  largest body accepted, in bytes
    unsigned char header [4];       //  length prefix being collected
    size_t header_have;             //  bytes of header collected (0..4)
    char *body;                     //  buffer for a body split across feeds, or NULL
    size_t body_size;               //  length announced by the current header
    size_t body_have;               //  bytes of body collected
    zlist_t *queue;                 //  parsed messages (cJSON *) not yet taken
    char error [160];               //  first protocol error, "" while good
};

proto_reader_t *
proto_reader_new (size_t max_frame)
{
    proto_reader_t *self = (proto_reader_t *) zmalloc (sizeof (proto_reader_t));
    if (!self)
        return NULL;
    self->max_frame = max_frame? max_frame: PROTO_MAX_FRAME_DEFAULT;
    if (self->max_frame > UINT32_MAX)
        self->max_frame = UINT32_MAX;
    self->queue = zlist_new ();
    if (!self->queue) {
        free (self);
        return NULL;
    }
    return self;
}

void
proto_reader_destroy (proto_reader_t **self_p)
{
    assert (self_p);
    proto_reader_t *self = *self_p;
    if (!self)
        return;
    cJSON *msg;
    while ((msg = (cJSON *) zlist_pop (self->queue)))
        cJSON_Delete (msg);
    zlist_destroy (&self->queue);
    free (self->body);
    free (self);
    *self_p = NULL;
}

static int
s_fail (proto_reader_t *self, const char *format, ...)
{
    if (!self->error [0]) {
        va_list args;
        va_start (args, format);
        vsnprintf (self->error, sizeof self->error, format, args);
        va_end (args);
    }
    free (self->body);
    self->body = NULL;
    return -1;
}

//  Length of the valid UTF-8 prefix of data (RFC 3629: no overlong forms,
//  no surrogates, nothing above U+10FFFF).
static size_t
s_utf8_valid_prefix (const unsigned char *data, size_t size)
{
    size_t i = 0;
    while (i < size) {
        unsigned char c = data [i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t extra;
        unsigned char low = 0x80, high = 0xBF;
        if (c >= 0xC2 && c <= 0xDF)
            extra = 1;
        else
        if (c >= 0xE0 && c <= 0xEF) {
            extra = 2;
            if (c == 0xE0)
                low = 0xA0;             //  no overlong 3-byte forms
            else
            if (c == 0xED)
                high = 0x9F;            //  no UTF-16 surrogates
        }
        else
        if (c >= 0xF0 && c <= 0xF4) {
            extra = 3;
            if (c == 0xF0)
                low = 0x90;             //  no overlong 4-byte forms
            else
            if (c == 0xF4)
                high = 0x8F;            //  nothing above U+10FFFF
        }
        else
            return i;
        if (size - i <= extra)
            return i;
        if (data [i + 1] < low || data [i + 1] > high)
            return i;
        for (size_t k = 2; k <= extra; k++)
            if (data [i + k] < 0x80 || data [i + k] > 0xBF)
                return i;
        i += extra + 1;
    }
    return i;
}

//  How many JSON values the text holds, as parsed nodes (an array or an
//  object is one, and so is each value in it; keys are not), counting no
//  further than limit + 1: one for the outermost value, one more after
//  each ',' and for the first value of each container that is not empty
//  (the parser checks the text itself)
static size_t
s_value_count (const char *text, size_t size, size_t limit)
{
    size_t count = 1;
    bool quoted = false, opened = false;
    for (size_t i = 0; i < size && count <= limit; i++) {
        char c = text [i];
        if (quoted) {
            if (c == '\\')
                i++;
            else
            if (c == '"')
                quoted = false;
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
            continue;
        if (opened && c != ']' && c != '}')
            count++;
        opened = c == '[' || c == '{';
        if (c == '"')
            quoted = true;
        else
        if (c == ',')
            count++;
    }
    return count;
}

//  Check and parse one whole body; queue it or fail the reader.
static int
s_parse_body (proto_reader_t *self, const char *body, size_t size)
{
    size_t valid = s_utf8_valid_prefix ((const unsigned char *) body, size);
    if (valid < size)
        return s_fail (self, "frame is not valid UTF-8 (byte %zu of %zu)", valid, size);
    //  A value takes a byte at least: only a bigger frame is counted
    if (size > PROTO_MAX_VALUES && s_value_count (body, size, PROTO_MAX_VALUES) > PROTO_MAX_VALUES)
        return s_fail (self, "frame holds more than %u JSON values", PROTO_MAX_VALUES);
    const char *end = NULL;
    cJSON *msg = cJSON_ParseWithLengthOpts (body, size, &end, false);
    if (!msg) {
        size_t at = end && end >= body && end <= body + size? (size_t) (end - body): 0;
        return s_fail (self, "frame is not valid JSON (near byte %zu of %zu)", at, size);
    }
    size_t at = (size_t) (end - body);
    while (at < size && (body [at] == ' ' || body [at] == '\t'
                      || body [at] == '\n' || body [at] == '\r'))
        at++;
    if (at < size) {
        cJSON_Delete (msg);
        return s_fail (self, "frame has bytes after its JSON value (byte %zu of %zu)", at, size);
    }
    if (!cJSON_IsObject (msg)) {
        cJSON_Delete (msg);
        return s_fail (self, "frame is not a JSON object");
    }
    if (!cJSON_IsString (cJSON_GetObjectItemCaseSensitive (msg, "type"))) {
        cJSON_Delete (msg);
        return s_fail (self, "message has no string \"type\"");
    }
    //  A result's numbers go on with the digits the runner wrote (a Python
    //  int of any size, a float as repr wrote it), not as cJSON prints them
    cJSON *output = cJSON_GetObjectItemCaseSensitive (msg, "output");
    if (output && jsonfit_keep_numbers (msg, body, size, output) < 0) {
        cJSON_Delete (msg);
        return s_fail (self, "out of memory");
    }
    if (zlist_append (self->queue, msg)) {
        cJSON_Delete (msg);
        return s_fail (self, "out of memory");
    }
    return 0;
}

//  A whole header is in: check the length and get ready for the body.
static int
s_start_body (proto_reader_t *self)
{
    uint32_t size = (uint32_t) self->header [0] << 24 | (uint32_t) self->header [1] << 16
                  | (uint32_t) self->header [2] << 8 | self->header [3];
    if (size == 0)
        return s_fail (self, "empty frame");
    if (size > self->max_frame)
        return s_fail (self, "frame of %" PRIu32 " bytes is over the limit of %zu",
                       size, self->max_frame);
    self->body_size = size;
    self->body_have = 0;
    return 0;
}

int
proto_reader_feed (proto_reader_t *self, const void *data, size_t size)
{
    assert (self);
    if (self->error [0])
        return -1;
    const char *bytes = (const char *) data;
    while (size > 0) {
        if (self->header_have < 4) {
            size_t take = 4 - self->header_have;
            if (take > size)
                take = size;
            memcpy (self->header + self->header_have, bytes, take);
            self->header_have += take;
            bytes += take;
            size -= take;
            if (self->header_have == 4 && s_start_body (self))
                return -1;
            continue;
        }
        if (!self->body && size >= self->body_size) {
            //  The whole body is right here: parse it in place
            if (s_parse_body (self, bytes, self->body_size))
                return -1;
            bytes += self->body_size;
            size -= self->body_size;
            self->header_have = 0;
            continue;
        }
        if (!self->body) {
            self->body = (char *) malloc (self->body_size);
            if (!self->body)
                return s_fail (self, "out of memory for a frame of %zu bytes", self->body_size);
        }
        size_t take = self->body_size - self->body_have;
        if (take > size)
            take = size;
        memcpy (self->body + self->body_have, bytes, take);
        self->body_have += take;
        bytes += take;
        size -= take;
        if (self->body_have == self->body_size) {
            int rc = s_parse_body (self, self->body, self->body_size);
            free (self->body);
            self->body = NULL;
            self->header_have = 0;
            if (rc)
                return -1;
        }
    }
    return 0;
}

cJSON *
proto_reader_next (proto_reader_t *self)
{
    assert (self);
    return (cJSON *) zlist_pop (self->queue);
}

const char *
proto_reader_error (proto_reader_t *self)
{
    assert (self);
    return self->error [0]? self->error: NULL;
}

bool
proto_reader_partial (proto_reader_t *self)
{
    assert (self);
    return self->header_have > 0;
}

int
proto_reader_read_fd (proto_reader_t *self, int fd)
{
    assert (self);
    if (self->error [0]) {
        errno = EPROTO;
        return -1;
    }
    char chunk [65536];
    size_t total = 0;
    while (total < 1024 * 1024) {
        //  The rest of a big body goes straight into its buffer
        bool direct = self->body && self->body_size - self->body_have >= sizeof chunk;
        char *into = direct? self->body + self->body_have: chunk;
        size_t room = direct? self->body_size - self->body_have: sizeof chunk;
        ssize_t got = read (fd, into, room);
        if (got > 0) {
            total += (size_t) got;
            if (direct) {
                self->body_have += (size_t) got;
                if (self->body_have == self->body_size) {
                    int rc = s_parse_body (self, self->body, self->body_size);
                    free (self->body);
                    self->body = NULL;
                    self->header_have = 0;
                    if (rc) {
                        errno = EPROTO;
                        return -1;
                    }
                }
            }
            else
            if (proto_reader_feed (self, chunk, (size_t) got)) {
                errno = EPROTO;
                return -1;
            }
            if ((size_t) got < room)
                break;                  //  drained for now
        }
        else
        if (got == 0)
            break;                      //  end of stream; a later call returns 0
        else
        if (errno == EINTR)
            continue;
        else
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (total > 0)
                break;
            errno = EAGAIN;
            return -1;
        }
        else
            return -1;
    }
    return (int) total;
}

char *
proto_encode (const cJSON *msg, size_t *size_p)
{
    assert (msg);
    assert (size_p);
    char *json = cJSON_PrintUnformatted (msg);
    if (!json)
        return NULL;
    size_t size = strlen (json);
    char *frame = size <= UINT32_MAX? (char *) malloc (size + 4): NULL;
    if (frame) {
        frame [0] = (char) (size >> 24);
        frame [1] = (char) (size >> 16);
        frame [2] = (char) (size >> 8);
        frame [3] = (char) size;
        memcpy (frame + 4, json, size);
        *size_p = size + 4;
    }
    cJSON_free (json);
    return frame;
}

int
proto_write_all (int fd, const void *data, size_t size, int timeout_ms)
{
    const char *bytes = (const char *) data;
    int64_t deadline = timeout_ms >= 0? zclock_mono () + timeout_ms: 0;
    bool socket = true;
    while (size > 0) {
        ssize_t done = socket? send (fd, bytes, size, MSG_NOSIGNAL): write (fd, bytes, size);
        if (done < 0 && socket && errno == ENOTSOCK) {
            socket = false;
            continue;
        }
        if (done > 0) {
            bytes += done;
            size -= (size_t) done;
            continue;
        }
        if (done < 0 && errno == EINTR)
            continue;
        if (done < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        int wait_ms = -1;
        if (timeout_ms >= 0) {
            int64_t left = deadline - zclock_mono ();
            if (left <= 0) {
                errno = ETIMEDOUT;
                return -1;
            }
            wait_ms = (int) left;
        }
        struct pollfd item = { .fd = fd, .events = POLLOUT };
        int rc = poll (&item, 1, wait_ms);
        if (rc < 0 && errno != EINTR)
            return -1;
        if (rc > 0 && (item.revents & POLLNVAL)) {
            errno = EBADF;
            return -1;
        }
    }
    return 0;
}

int
proto_send (int fd, const cJSON *msg, int timeout_ms)
{
    size_t size;
    char *frame = proto_encode (msg, &size);
    if (!frame) {
        errno = ENOMEM;
        return -1;
    }
    int rc = proto_write_all (fd, frame, size, timeout_ms);
    int saved = errno;
    free (frame);
    errno = saved;
    return rc;
}

int
proto_send_text (int fd, const char *json, size_t size, int timeout_ms)
{
    assert (json);
    if (size > UINT32_MAX) {
        errno = EMSGSIZE;
        return -1;
    }
    unsigned char header [4] = {
        (unsigned char) (size >> 24), (unsigned char) (size >> 16),
        (unsigned char) (size >> 8), (unsigned char) size
    };
    int64_t deadline = timeout_ms >= 0? zclock_mono () + timeout_ms: 0;
    struct iovec parts [2] = {
        { .iov_base = header, .iov_len = 4 },
        { .iov_base = (void *) json, .iov_len = size }
    };
    struct msghdr message = { .msg_iov = parts, .msg_iovlen = 2 };
    ssize_t done;
    do
        done = sendmsg (fd, &message, MSG_NOSIGNAL);
    while (done < 0 && errno == EINTR);
    if (done < 0 && errno == ENOTSOCK)
        do
            done = writev (fd, parts, 2);
        while (done < 0 && errno == EINTR);
    if (done < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        done = 0;
    }
    //  The socket took part of it: write the rest with what is left of the timeout
    size_t sent = (size_t) done;
    if (sent < 4) {
        int left = timeout_ms >= 0? (int) (deadline - zclock_mono ()): -1;
        if (timeout_ms >= 0 && left < 0)
            left = 0;
        if (proto_write_all (fd, header + sent, 4 - sent, left))
            return -1;
        sent = 4;
    }
    if (sent - 4 < size) {
        int left = timeout_ms >= 0? (int) (deadline - zclock_mono ()): -1;
        if (timeout_ms >= 0 && left < 0)
            left = 0;
        if (proto_write_all (fd, json + (sent - 4), size - (sent - 4), left))
            return -1;
    }
    return 0;
}

cJSON *
proto_recv (proto_reader_t *reader, int fd, int timeout_ms)
{
    assert (reader);
    int64_t deadline = timeout_ms >= 0? zclock_mono () + timeout_ms: 0;
    while (true) {
        cJSON *msg = proto_reader_next (reader);
        if (msg)
            return msg;
        if (proto_reader_error (reader)) {
            errno = EPROTO;
            return NULL;
        }
        int wait_ms = -1;
        if (timeout_ms >= 0) {
            int64_t left = deadline - zclock_mono ();
            if (left <= 0) {
                errno = ETIMEDOUT;
                return NULL;
            }
            wait_ms = (int) left;
        }
        struct pollfd item = { .fd = fd, .events = POLLIN };
        int rc = poll (&item, 1, wait_ms);
        if (rc < 0 && errno != EINTR)
            return NULL;
        if (rc <= 0)
            continue;
        rc = proto_reader_read_fd (reader, fd);
        if (rc == 0) {
            errno = ECONNRESET;
            return NULL;
        }
        if (rc < 0 && errno != EAGAIN)
            return NULL;
    }
}


//  --------------------------------------------------------------------------
//  Self test

//  Feed a whole buffer one way or another; returns the feed result.
static int
s_feed_in_steps (proto_reader_t *reader, const char *data, size_t size, size_t step)
{
    for (size_t at = 0; at < size; at += step) {
        size_t take = size - at < step? size - at: step;
        if (proto_reader_feed (reader, data + at, take))
            return -1;
    }
    return 0;
}

//  One raw frame around body (which may be anything).
static char *
s_raw_frame (const char *body, size_t size, size_t *frame_size)
{
    char *frame = (char *) malloc (size + 4);
    assert (frame);
    frame [0] = (char) (size >> 24);
    frame [1] = (char) (size >> 16);
    frame [2] = (char) (size >> 8);
    frame [3] = (char) size;
    memcpy (frame + 4, body, size);
    *frame_size = size + 4;
    return frame;
}

//  True if feeding body as one frame is a protocol error whose text has words.
static bool
s_rejects (const char *body, size_t size, const char *words)
{
    proto_reader_t *reader = proto_reader_new (1024);
    assert (reader);
    size_t frame_size;
    char *frame = s_raw_frame (body, size, &frame_size);
    int rc = proto_reader_feed (reader, frame, frame_size);
    bool rejected = rc == -1 && proto_reader_error (reader)
                 && strstr (proto_reader_error (reader), words)
                 && proto_reader_next (reader) == NULL
                 && proto_reader_feed (reader, "x", 1) == -1;
    free (frame);
    proto_reader_destroy (&reader);
    return rejected;
}

static int
s_compare_int64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

static cJSON *
s_call (proto_reader_t *reader, int fd, cJSON *msg)
{
    int rc = proto_send (fd, msg, 5000);
    assert (rc == 0);
    cJSON_Delete (msg);
    return proto_recv (reader, fd, 10000);
}

//  Start runtime/runner.py with fd 3 the other end of a socketpair.
static pid_t
s_start_runner (int *host_fd)
{
    int pair [2];
    int rc = socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair);
    assert (rc == 0);
    //  The host end is non-blocking, as in the worker; the runner's is blocking
    rc = fcntl (pair [0], F_SETFL, fcntl (pair [0], F_GETFL) | O_NONBLOCK);
    assert (rc == 0);
    int child = fcntl (pair [1], F_DUPFD_CLOEXEC, 10);
    assert (child >= 10);
    close (pair [1]);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init (&actions);
    posix_spawn_file_actions_adddup2 (&actions, child, 3);
    posix_spawn_file_actions_addopen (&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen (&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2 (&actions, 1, 2);
    posix_spawn_file_actions_addchdir_np (&actions, "/tmp");
    char *argv [] = { "/usr/bin/python3", "-I", "-B",
                      CLOWDY_SOURCE_DIR "/runtime/runner.py", NULL };
    char *envp [] = { "PATH=/usr/bin:/bin", "LANG=C.UTF-8", NULL };
    pid_t pid;
    rc = posix_spawn (&pid, argv [0], &actions, NULL, argv, envp);
    posix_spawn_file_actions_destroy (&actions);
    close (child);
    assert (rc == 0);
    *host_fd = pair [0];
    return pid;
}

static void
s_stop_runner (pid_t pid, int fd)
{
    close (fd);                         //  the runner exits at end of stream
    for (int tries = 0; tries < 200; tries++) {
        if (waitpid (pid, NULL, WNOHANG) == pid)
            return;
        zclock_sleep (10);
    }
    kill (pid, SIGKILL);
    waitpid (pid, NULL, 0);
}

static cJSON *
s_load_msg (const char *code)
{
    cJSON *msg = cJSON_CreateObject ();
    cJSON_AddStringToObject (msg, "type", "load");
    cJSON_AddStringToObject (msg, "function_name", "selftest");
    cJSON_AddNumberToObject (msg, "version", 1);
    cJSON_AddStringToObject (msg, "code", code);
    cJSON *env = cJSON_AddObjectToObject (msg, "env");
    cJSON_AddStringToObject (env, "GREETING", "hello");
    cJSON_AddNumberToObject (msg, "memory_limit_mb", 128);
    cJSON_AddNumberToObject (msg, "timeout_seconds", 30);
    return msg;
}

static cJSON *
s_invoke_msg (const char *id, cJSON *input)
{
    cJSON *msg = cJSON_CreateObject ();
    cJSON_AddStringToObject (msg, "type", "invoke");
    cJSON_AddStringToObject (msg, "invocation_id", id);
    cJSON_AddItemToObject (msg, "input", input);
    cJSON_AddNumberToObject (msg, "timeout_ms", 30000);
    return msg;
}

static const char *
s_type_of (cJSON *msg)
{
    cJSON *type = cJSON_GetObjectItemCaseSensitive (msg, "type");
    return cJSON_IsString (type)? type->valuestring: "";
}

static void
s_test_live_runner (bool verbose)
{
    if (access ("/usr/bin/python3", X_OK)) {
        printf ("(no /usr/bin/python3: live runner test skipped) ");
        return;
    }
    int fd;
    int64_t started = zclock_usecs ();
    pid_t pid = s_start_runner (&fd);
    proto_reader_t *reader = proto_reader_new (0);
    assert (reader);

    cJSON *ready = proto_recv (reader, fd, 10000);
    assert (ready);
    assert (streq (s_type_of (ready), "ready"));
    assert (cJSON_GetObjectItem (ready, "pid")->valuedouble == pid);
    int64_t ready_us = zclock_usecs () - started;
    cJSON_Delete (ready);

    const char *code =
        "import os\n"
        "print('loading')\n"
        "def handler(event, context):\n"
        "    if event == 'fail':\n"
        "        raise ValueError('failed on purpose')\n"
        "    if event == 'garbage':\n"
        "        os.write(3, b'\\x00\\x00\\x00\\x05hello')\n"
        "        return None\n"
        "    if isinstance(event, dict):\n"
        "        print('event', event.get('n'))\n"
        "        return {'n': event.get('n'), 'id': context.invocation_id,\n"
        "                'greeting': os.environ.get('GREETING')}\n"
        "    return event\n";
    started = zclock_usecs ();
    cJSON *reply = s_call (reader, fd, s_load_msg (code));
    int64_t load_us = zclock_usecs () - started;
    assert (reply);
    assert (streq (s_type_of (reply), "loaded"));
    assert (streq (cJSON_GetObjectItem (reply, "logs")->valuestring, "loading\n"));
    cJSON_Delete (reply);

    cJSON *input = cJSON_CreateObject ();
    cJSON_AddNumberToObject (input, "n", 7);
    reply = s_call (reader, fd, s_invoke_msg ("inv-1", input));
    assert (reply);
    assert (streq (s_type_of (reply), "result"));
    assert (cJSON_IsTrue (cJSON_GetObjectItem (reply, "ok")));
    cJSON *output = cJSON_GetObjectItem (reply, "output");
    assert (cJSON_GetObjectItem (output, "n")->valuedouble == 7);
    assert (streq (cJSON_GetObjectItem (output, "id")->valuestring, "inv-1"));
    assert (streq (cJSON_GetObjectItem (output, "greeting")->valuestring, "hello"));
    assert (streq (cJSON_GetObjectItem (reply, "logs")->valuestring, "event 7\n"));
    cJSON_Delete (reply);

    reply = s_call (reader, fd, s_invoke_msg ("inv-2", cJSON_CreateString ("fail")));
    assert (reply);
    assert (cJSON_IsFalse (cJSON_GetObjectItem (reply, "ok")));
    assert (streq (cJSON_GetObjectItem (reply, "error_type")->valuestring, "ValueError"));
    assert (streq (cJSON_GetObjectItem (reply, "error")->valuestring, "failed on purpose"));
    assert (strstr (cJSON_GetObjectItem (reply, "traceback")->valuestring, "main.py"));
    assert (!strstr (cJSON_GetObjectItem (reply, "traceback")->valuestring, "runner.py"));
    cJSON_Delete (reply);

    //  Warm round trips: encode, write, wait, read, parse, as the worker does
    enum { CALLS = 2000 };
    int64_t *samples = (int64_t *) malloc (CALLS * sizeof (int64_t));
    assert (samples);
    for (int i = 0; i < CALLS; i++) {
        int64_t begin = zclock_usecs ();
        cJSON *msg = cJSON_CreateObject ();
        cJSON_AddNumberToObject (msg, "n", i);
        reply = s_call (reader, fd, s_invoke_msg ("warm", msg));
        samples [i] = zclock_usecs () - begin;
        assert (reply);
        assert (cJSON_IsTrue (cJSON_GetObjectItem (reply, "ok")));
        assert (cJSON_GetObjectItem (cJSON_GetObjectItem (reply, "output"), "n")->valuedouble == i);
        cJSON_Delete (reply);
    }
    qsort (samples, CALLS, sizeof (int64_t), s_compare_int64);
    if (verbose)
        printf ("\n    runner start to ready %" PRId64 " us, load %" PRId64 " us,"
                " warm round trip p50 %" PRId64 " us, p99 %" PRId64 " us, max %" PRId64 " us\n    ",
                ready_us, load_us, samples [CALLS / 2], samples [CALLS * 99 / 100],
                samples [CALLS - 1]);
    free (samples);

    //  A 5 MB input, sent as text the way the worker holds it, and echoed back
    {
        size_t big = 5 * 1024 * 1024;
        char *frame_text = (char *) malloc (big + 100);
        assert (frame_text);
        int head = snprintf (frame_text, 100, "{\"type\":\"invoke\",\"invocation_id\":\"big\","
                                               "\"timeout_ms\":30000,\"input\":\"");
        memset (frame_text + head, 'b', big);
        memcpy (frame_text + head + big, "\"}", 3);
        int64_t begin = zclock_usecs ();
        int rc = proto_send_text (fd, frame_text, strlen (frame_text), 10000);
        assert (rc == 0);
        reply = proto_recv (reader, fd, 10000);
        assert (reply);
        cJSON *echo = cJSON_GetObjectItem (reply, "output");
        assert (cJSON_IsString (echo) && strlen (echo->valuestring) == big);
        if (verbose)
            printf ("5 MB input echoed in %" PRId64 " us\n    ", zclock_usecs () - begin);
        cJSON_Delete (reply);
        free (frame_text);
    }

    //  A function that writes its own frame on fd 3 breaks only its environment
    cJSON *msg = s_invoke_msg ("inv-3", cJSON_CreateString ("garbage"));
    int rc = proto_send (fd, msg, 5000);
    assert (rc == 0);
    cJSON_Delete (msg);
    reply = proto_recv (reader, fd, 10000);
    assert (reply == NULL);
    assert (errno == EPROTO);
    assert (strstr (proto_reader_error (reader), "not valid JSON"));

    proto_reader_destroy (&reader);
    s_stop_runner (pid, fd);
}

void
proto_test (bool verbose)
{
    printf ("proto: ");

    //  Round trip of one message, fed whole and then one byte at a time
    cJSON *msg = cJSON_CreateObject ();
    cJSON_AddStringToObject (msg, "type", "invoke");
    cJSON_AddStringToObject (msg, "invocation_id", "abc");
    cJSON_AddStringToObject (msg, "input", "h\xc3\xa9llo \xf0\x9f\x8c\x8d \xe6\x97\xa5");
    cJSON_AddNumberToObject (msg, "timeout_ms", 1500);
    size_t size;
    char *frame = proto_encode (msg, &size);
    assert (frame);
    assert (size > 4);
    assert ((size_t) ((unsigned char) frame [2] << 8 | (unsigned char) frame [3]) == size - 4);

    proto_reader_t *reader = proto_reader_new (0);
    assert (reader);
    assert (proto_reader_next (reader) == NULL);
    assert (proto_reader_error (reader) == NULL);
    assert (proto_reader_feed (reader, frame, size) == 0);
    cJSON *copy = proto_reader_next (reader);
    assert (copy);
    assert (cJSON_Compare (msg, copy, true));
    cJSON_Delete (copy);
    assert (proto_reader_next (reader) == NULL);

    for (size_t step = 1; step <= 7; step++) {
        //  Three frames back to back, split every `step` bytes
        char *three = (char *) malloc (3 * size);
        assert (three);
        for (int i = 0; i < 3; i++)
            memcpy (three + i * size, frame, size);
        assert (s_feed_in_steps (reader, three, 3 * size, step) == 0);
        assert (!proto_reader_partial (reader));
        for (int i = 0; i < 3; i++) {
            copy = proto_reader_next (reader);
            assert (copy);
            assert (cJSON_Compare (msg, copy, true));
            cJSON_Delete (copy);
        }
        assert (proto_reader_next (reader) == NULL);
        free (three);
    }
    //  Half a frame is partial, the rest completes it
    assert (proto_reader_feed (reader, frame, size / 2) == 0);
    assert (proto_reader_partial (reader));
    assert (proto_reader_next (reader) == NULL);
    assert (proto_reader_feed (reader, frame + size / 2, size - size / 2) == 0);
    copy = proto_reader_next (reader);
    assert (copy && cJSON_Compare (msg, copy, true));
    cJSON_Delete (copy);
    proto_reader_destroy (&reader);
    proto_reader_destroy (&reader);
    assert (reader == NULL);
    free (frame);
    cJSON_Delete (msg);

    //  Bad frames: each is a protocol error, and the error is sticky
    const char *plain = "{\"type\":\"x\"}";
    assert (!s_rejects (plain, strlen (plain), "anything"));
    assert (s_rejects ("{not json", 9, "not valid JSON"));
    assert (s_rejects ("[1,2]", 5, "not a JSON object"));
    assert (s_rejects ("\"type\"", 6, "not a JSON object"));
    assert (s_rejects ("{\"kind\":\"x\"}", 12, "no string \"type\""));
    //  Too many values for the bytes (each would be a parsed node): refused
    //  before parsing; commas and brackets inside strings do not count
    size_t many = PROTO_MAX_VALUES + 8, at = 0;
    char *dense = (char *) malloc (2 * many + 64);
    assert (dense);
    at += (size_t) sprintf (dense, "{\"type\":\"result\",\"output\":[");
    for (size_t index = 0; index < many; index++)
        at += (size_t) sprintf (dense + at, index? ",0": "0");
    at += (size_t) sprintf (dense + at, "]}");
    size_t dense_size;
    char *dense_frame = s_raw_frame (dense, at, &dense_size);
    reader = proto_reader_new (0);
    assert (proto_reader_feed (reader, dense_frame, dense_size) == -1);
    assert (strstr (proto_reader_error (reader), "more than 1048576 JSON values"));
    assert (proto_reader_next (reader) == NULL);
    proto_reader_destroy (&reader);
    free (dense_frame);
    //  Empty containers are one value each: 600,000 of them pass
    at = (size_t) sprintf (dense, "{\"type\":\"result\",\"output\":[");
    for (size_t index = 0; index < 600000; index++)
        at += (size_t) sprintf (dense + at, index % 2? ",{}": (index? ",[]": "[]"));
    at += (size_t) sprintf (dense + at, "]}");
    assert (s_value_count (dense, at, PROTO_MAX_VALUES) == 600000 + 3);
    assert (s_value_count ("{\"type\": \"x\", \"a\": [ 0 , {\"b\": [] } ]}", 38, 100) == 6);
    at = (size_t) sprintf (dense, "{\"type\":\"result\",\"output\":\"");
    for (size_t index = 0; index < many; index++)
        at += (size_t) sprintf (dense + at, index % 2? "\\\"": ",[");
    at += (size_t) sprintf (dense + at, "\"}");
    dense_frame = s_raw_frame (dense, at, &dense_size);
    reader = proto_reader_new (0);
    assert (proto_reader_feed (reader, dense_frame, dense_size) == 0);
    copy = proto_reader_next (reader);
    assert (copy && strlen (cJSON_GetStringValue (cJSON_GetObjectItem (copy, "output"))) == many * 3 / 2);
    cJSON_Delete (copy);
    proto_reader_destroy (&reader);
    free (dense_frame);
    free (dense);
    assert (s_rejects ("{\"type\":5}", 10, "no string \"type\""));
    assert (s_rejects ("{\"type\":\"x\"} {}", 15, "after its JSON value"));
    assert (s_rejects ("{\"type\":\"x\"}\0zz", 15, "not valid JSON")
         || s_rejects ("{\"type\":\"x\"}\0zz", 15, "after its JSON value"));
    assert (s_rejects ("{\"type\":\"\xff\"}", 12, "not valid UTF-8"));
    assert (s_rejects ("{\"type\":\"\xc0\xaf\"}", 13, "not valid UTF-8"));           //  overlong
    assert (s_rejects ("{\"type\":\"\xed\xa0\x80\"}", 14, "not valid UTF-8"));       //  surrogate
    assert (s_rejects ("{\"type\":\"\xf4\x90\x80\x80\"}", 15, "not valid UTF-8"));   //  > U+10FFFF
    assert (s_rejects ("{\"type\":\"\xe6\x97\"}", 13, "not valid UTF-8"));           //  cut short
    assert (s_rejects ("{\"type\":NaN}", 12, "not valid JSON"));
    assert (s_rejects ("", 0, "empty frame"));
    assert (!s_rejects ("  {\"type\":\"x\"}\r\n", 16, "anything"));
    {
        //  Deep nesting stops at cJSON's limit instead of the stack's
        size_t depth = 100000;
        char *deep = (char *) malloc (2 * depth + 1);
        assert (deep);
        memset (deep, '[', depth);
        memset (deep + depth, ']', depth);
        proto_reader_t *big = proto_reader_new (0);
        size_t frame_size;
        char *deep_frame = s_raw_frame (deep, 2 * depth, &frame_size);
        assert (proto_reader_feed (big, deep_frame, frame_size) == -1);
        free (deep_frame);
        free (deep);
        proto_reader_destroy (&big);
    }
    {
        //  Oversize: refused at the header, before any body is buffered
        proto_reader_t *small = proto_reader_new (100);
        const unsigned char header [4] = { 0, 0, 0, 101 };
        assert (proto_reader_feed (small, header, 3) == 0);
        assert (proto_reader_feed (small, header + 3, 1) == -1);
        assert (strstr (proto_reader_error (small), "over the limit"));
        proto_reader_destroy (&small);
        proto_reader_t *huge = proto_reader_new (0);
        const unsigned char max_header [4] = { 0xFF, 0xFF, 0xFF, 0xFF };
        assert (proto_reader_feed (huge, max_header, 4) == -1);
        proto_reader_destroy (&huge);
    }
    {
        //  A good frame before a bad one is still delivered
        proto_reader_t *mixed = proto_reader_new (0);
        size_t a_size, b_size;
        char *a = s_raw_frame (plain, strlen (plain), &a_size);
        char *b = s_raw_frame ("oops", 4, &b_size);
        assert (proto_reader_feed (mixed, a, a_size) == 0);
        assert (proto_reader_feed (mixed, b, b_size) == -1);
        copy = proto_reader_next (mixed);
        assert (copy);
        cJSON_Delete (copy);
        assert (proto_reader_next (mixed) == NULL);
        free (a);
        free (b);
        proto_reader_destroy (&mixed);
    }
    {
        //  Random garbage never crashes, whatever the split
        proto_reader_t *fuzz = proto_reader_new (4096);
        unsigned seed = 42;
        for (int round = 0; round < 2000; round++) {
            unsigned char noise [64];
            size_t length = rand_r (&seed) % sizeof noise;
            for (size_t i = 0; i < length; i++)
                noise [i] = (unsigned char) rand_r (&seed);
            if (proto_reader_feed (fuzz, noise, length)) {
                proto_reader_destroy (&fuzz);
                fuzz = proto_reader_new (4096);
            }
            while ((copy = proto_reader_next (fuzz)))
                cJSON_Delete (copy);
        }
        proto_reader_destroy (&fuzz);
    }

    //  Over a socketpair: a 5 MB message through non-blocking fds
    {
        int pair [2];
        int rc = socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair);
        assert (rc == 0);
        char *big_text = (char *) malloc (5 * 1024 * 1024 + 1);
        assert (big_text);
        memset (big_text, 'q', 5 * 1024 * 1024);
        big_text [5 * 1024 * 1024] = 0;
        msg = cJSON_CreateObject ();
        cJSON_AddStringToObject (msg, "type", "result");
        cJSON_AddStringToObject (msg, "output", big_text);
        free (big_text);
        frame = proto_encode (msg, &size);
        assert (frame);
        proto_reader_t *receiver = proto_reader_new (0);
        size_t sent = 0;
        int reads = 0;
        copy = NULL;
        while (!copy) {
            if (sent < size) {
                ssize_t done = send (pair [0], frame + sent, size - sent, MSG_NOSIGNAL);
                if (done > 0)
                    sent += (size_t) done;
                else
                    assert (errno == EAGAIN);
            }
            rc = proto_reader_read_fd (receiver, pair [1]);
            assert (rc > 0 || (rc == -1 && errno == EAGAIN));
            reads++;
            copy = proto_reader_next (receiver);
        }
        assert (cJSON_Compare (msg, copy, true));
        cJSON_Delete (copy);
        rc = proto_reader_read_fd (receiver, pair [1]);
        assert (rc == -1 && errno == EAGAIN);
        free (frame);

        //  proto_send and proto_recv (small enough for the socket buffer)
        cJSON_Delete (msg);
        msg = cJSON_CreateObject ();
        cJSON_AddStringToObject (msg, "type", "pong");
        rc = proto_send (pair [0], msg, 5000);
        assert (rc == 0);
        copy = proto_recv (receiver, pair [1], 5000);
        assert (copy && cJSON_Compare (msg, copy, true));
        cJSON_Delete (copy);
        const char *text = "{\"type\":\"invoke\",\"input\":[1,2,3]}";
        rc = proto_send_text (pair [0], text, strlen (text), 5000);
        assert (rc == 0);
        copy = proto_recv (receiver, pair [1], 5000);
        assert (copy);
        assert (streq (cJSON_GetObjectItem (copy, "type")->valuestring, "invoke"));
        assert (cJSON_GetArraySize (cJSON_GetObjectItem (copy, "input")) == 3);
        cJSON_Delete (copy);
        copy = proto_recv (receiver, pair [1], 50);
        assert (copy == NULL && errno == ETIMEDOUT);
        cJSON_Delete (msg);

        //  A writer nobody reads from times out instead of hanging
        char block [65536] = { 0 };
        int64_t begin = zclock_mono ();
        rc = 0;
        while (rc == 0)
            rc = proto_write_all (pair [0], block, sizeof block, 50);
        assert (errno == ETIMEDOUT);
        assert (zclock_mono () - begin < 2000);

        close (pair [0]);
        while ((rc = proto_reader_read_fd (receiver, pair [1])) > 0)
            while ((copy = proto_reader_next (receiver)))
                cJSON_Delete (copy);
        assert (rc == 0 || errno == EPROTO);
        proto_reader_destroy (&receiver);
        close (pair [1]);
        if (verbose)
            printf ("(5 MB frame in %d reads) ", reads);
    }
    //  Writing to a closed peer is an error, not a SIGPIPE
    {
        int pair [2];
        int rc = socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair);
        assert (rc == 0);
        close (pair [1]);
        rc = proto_write_all (pair [0], "abcd", 4, 100);
        assert (rc == -1 && errno == EPIPE);
        close (pair [0]);
    }

    s_test_live_runner (verbose);
    printf ("OK\n");
}
