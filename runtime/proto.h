/*  =========================================================================
    proto - the frame codec between the host and the Python runner

    Each frame is a 4-byte big-endian length, then that many bytes of UTF-8
    JSON: an object with a string "type". runtime/PROTOCOL.md lists the
    messages; this codec only frames, checks and parses them.

    The reader is fed bytes as they arrive (any split, down to one byte at a
    time) and queues each whole frame as a parsed cJSON object. A frame over
    the size limit, empty, not UTF-8, not JSON, not an object or without a
    string "type" is a protocol error: the reader stops, keeps the message in
    proto_reader_error, and every later call fails. It never crashes or
    buffers more than one frame's worth of bytes.

        proto_reader_t *reader = proto_reader_new (0);
        while (proto_reader_read_fd (reader, fd) > 0) {
            cJSON *msg;
            while ((msg = proto_reader_next (reader))) {
                puts (cJSON_GetObjectItem (msg, "type")->valuestring);
                cJSON_Delete (msg);
            }
        }
        proto_reader_destroy (&reader);
    ========================================================================= */

#ifndef CLOWDY_PROTO_H_INCLUDED
#define CLOWDY_PROTO_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#define PROTO_MAX_FRAME_DEFAULT (16u * 1024 * 1024)
//  Most JSON values a frame may hold (parsed nodes: a list or an object is
//  one, and so is each value in it): a parsed value costs about 40 times
//  the bytes of a dense one ("0,"), so a 16 MiB frame of small numbers would
//  take some 700 MB and seconds to parse on the reading thread. runner.py's
//  MAX_VALUES is the same
#define PROTO_MAX_VALUES        (1024u * 1024)

typedef struct _proto_reader_t proto_reader_t;

//  Create a reader that accepts frames of at most max_frame bytes of JSON
//  (0 means PROTO_MAX_FRAME_DEFAULT). Returns NULL if out of memory.
proto_reader_t *
    proto_reader_new (size_t max_frame);

//  Destroy a reader and any messages still queued. Safe on NULL.
void
    proto_reader_destroy (proto_reader_t **self_p);

//  Feed bytes from the stream. Whole frames are parsed and queued.
//  Returns 0, or -1 on a protocol error (also on every call after one).
int
    proto_reader_feed (proto_reader_t *self, const void *data, size_t size);

//  The next whole message, which the caller owns (cJSON_Delete), or NULL
//  when no whole frame is buffered. Frames received before a protocol
//  error are still returned.
cJSON *
    proto_reader_next (proto_reader_t *self);

//  Read what fd has ready (up to about 1 MiB per call, so one busy peer
//  cannot starve a loop) and feed it. Returns the bytes read (> 0), 0 at
//  end of stream, or -1 with errno set: EAGAIN when nothing was ready on a
//  non-blocking fd (not an error), EPROTO on a protocol error, else the
//  read error.
int
    proto_reader_read_fd (proto_reader_t *self, int fd);

//  The protocol error, or NULL while the stream is good.
const char *
    proto_reader_error (proto_reader_t *self);

//  True if part of a frame is buffered (so end of stream now cuts a frame).
bool
    proto_reader_partial (proto_reader_t *self);

//  Encode msg as one frame (length prefix and JSON) in a heap buffer that
//  the caller frees; sets *size_p. Returns NULL if out of memory or if the
//  JSON is over 4 GiB.
char *
    proto_encode (const cJSON *msg, size_t *size_p);

//  Write all of data to fd, waiting for it to drain when it is
//  non-blocking. timeout_ms < 0 waits forever. SIGPIPE is not raised on
//  sockets. Returns 0, or -1 with errno set (ETIMEDOUT, EPIPE, ...).
int
    proto_write_all (int fd, const void *data, size_t size, int timeout_ms);

//  Encode msg and write it to fd (proto_encode + proto_write_all).
//  Returns 0, or -1 with errno set.
int
    proto_send (int fd, const cJSON *msg, int timeout_ms);

//  Send JSON text the caller built itself (trusted, not checked) as one
//  frame, without parsing and printing it again: the length prefix and the
//  text go out in one sendmsg where the socket takes them. For big inputs
//  the worker already holds as text. Returns 0, or -1 with errno set.
int
    proto_send_text (int fd, const char *json, size_t size, int timeout_ms);

//  Blocking receive for simple callers (start-up, tests): the next message
//  from reader, reading fd as needed for up to timeout_ms (< 0: forever).
//  Returns the message (caller owns it), or NULL with errno ETIMEDOUT,
//  ECONNRESET (end of stream), EPROTO (see proto_reader_error) or a read
//  error.
cJSON *
    proto_recv (proto_reader_t *reader, int fd, int timeout_ms);

//  Self test: codec round trips, partial feeds, bad frames, and a live
//  runner (runtime/runner.py) measured over ~2000 warm invocations.
void
    proto_test (bool verbose);

#endif
