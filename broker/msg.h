/*  =========================================================================
    msg - the message codec between actors

    Every message between actors is a ZeroMQ multipart message: an optional
    routing frame (on ROUTER sockets), then the command name, then the fields
    its spec lists, each one frame. Fields are strings ('s', UTF-8 without
    NUL), integers ('i', sent as decimal text), JSON documents ('j', sent as
    text and parsed by the receiver) or raw bytes ('b'). No frame ever holds
    a pointer, so any link can move from inproc to tcp. broker/PROTOCOL.md
    lists each message and when it is sent; msg.c holds the same table.

    A received message that does not match its spec (unknown command, wrong
    frame count, an 'i' that is not a number, a string with a NUL) is logged
    and dropped: msg_recv returns NULL and the caller goes on.

        msg_send (sock, NULL, "INVALIDATE", "function abc123abc123");
        msg_t *msg = msg_recv (sock, false);
        if (msg && streq (msg_command (msg), "INVALIDATE"))
            puts (msg_string (msg, 0));
        msg_destroy (&msg);
    ========================================================================= */

#ifndef CLOWDY_MSG_H_INCLUDED
#define CLOWDY_MSG_H_INCLUDED

#include <czmq.h>

typedef struct _msg_t msg_t;

//  The picture of a command's fields ("ssjb"), or NULL if unknown.
const char *
    msg_picture (const char *command);

//  Send a message. route is a routing id frame for ROUTER sockets (not
//  consumed), or NULL. Fields follow the command's picture: 's' and 'j'
//  take const char *, 'i' takes int64_t, 'b' takes (const void *, size_t).
//  Returns 0, or -1 for an unknown command or a send failure.
int
    msg_send (zsock_t *dest, zframe_t *route, const char *command, ...);

//  Receive one message, checked against its spec. routed: the socket is a
//  ROUTER and the first frame is the sender's routing id. Returns NULL if the
//  message was malformed (logged, dropped) or the receive was interrupted.
msg_t *
    msg_recv (zsock_t *source, bool routed);

//  Same, from a message already received (takes ownership of *zmsg_p).
msg_t *
    msg_decode (zmsg_t **zmsg_p, bool routed);

const char *
    msg_command (msg_t *self);

//  The routing id frame (owned by msg), or NULL.
zframe_t *
    msg_route (msg_t *self);

//  Field accessors by index (0 = first field after the command).
const char *
    msg_string (msg_t *self, int index);
int64_t
    msg_int (msg_t *self, int index);
const byte *
    msg_bytes (msg_t *self, int index, size_t *size_p);

void
    msg_destroy (msg_t **self_p);

void
    msg_test (bool verbose);

#endif
