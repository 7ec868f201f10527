/*  =========================================================================
    msg - the message codec between actors

    Every message between actors is a ZeroMQ multipart message: an optional
    routing frame (on ROUTER sockets), then the command name, then one frame
    per field. broker/msg_defs.h declares each message once: its command,
    its fields (name and type: s string, i integer, j JSON, b bytes), the
    link it travels on and when it is sent. From that declaration come the
    functions below: for each message a typed sender, for each field a
    typed accessor, and broker/PROTOCOL.md.

    A received message that does not match its declaration (unknown
    command, wrong frame count, an 'i' that is not a number, a string with a
    NUL, a 'j' that is not valid JSON) is logged and dropped: msg_recv
    returns NULL and the caller goes on. So an accessor never fails on a
    message msg_recv returned; calling one on a message of another command
    is a bug in our code and asserts.

        if (msg_send_run (sock, NULL, job_id, pool_key, function_id, project_id,
                          (int64_t) memory_mb, timeout_ms, context_json, input_json))
            ... the send failed: logged here, answer the caller ...

        msg_t *msg = msg_recv (sock, false);
        if (msg && msg_id (msg) == MSG_ID_RESULT) {
            const char *job_id = msg_result_job_id (msg);
            cJSON *result = msg_result_result (msg);    //  owned by msg
            ...
        }
        msg_destroy (&msg);

    Generated for each message COMMAND (lower-case name m) with fields f:
        MSG_ID_COMMAND                              its msg_id_t value
        int msg_send_m (zsock_t *dest, zframe_t *route, <one argument per field>);
            s: const char *f       (NULL sends "")
            i: int64_t f
            j: const char *f       JSON text, must be valid (NULL sends "null")
            b: const void *f, size_t f_size
            Never blocks. Returns 0, or -1 if the socket cannot queue the
            message now (high-water mark reached, no peer); the caller logs
            and handles it.
        const char *msg_m_f (msg_t *self);                     s
        int64_t     msg_m_f (msg_t *self);                     i
        cJSON      *msg_m_f (msg_t *self);                     j, parsed; owned by msg
        cJSON      *msg_m_f_take (msg_t *self);                j, parsed; now the caller's
                                                               (msg_m_f then returns NULL)
        const char *msg_m_f_text (msg_t *self);                j, as received
        const byte *msg_m_f (msg_t *self, size_t *size_p);     b
    ========================================================================= */

#ifndef CLOWDY_MSG_H_INCLUDED
#define CLOWDY_MSG_H_INCLUDED

#include <czmq.h>
#include <cjson/cJSON.h>
#include "broker/msg_defs.h"

typedef struct _msg_t msg_t;

//  One value per declared message, in declaration order
#define MSG_ID_ROW_(COMMAND, m, link, when) MSG_ID_##COMMAND,
typedef enum {
    MSG_MESSAGES (MSG_ID_ROW_)
    MSG_ID_COUNT_
} msg_id_t;
#undef MSG_ID_ROW_

//  Typed senders: msg_send_invoke (dest, route, request_id, kind, ...).
//  MSG_PARAM_ (the parameter list of a field) is also used by msg.c.
#define MSG_PARAM_s_(f) , const char *f
#define MSG_PARAM_i_(f) , int64_t f
#define MSG_PARAM_j_(f) , const char *f
#define MSG_PARAM_b_(f) , const void *f, size_t f##_size
#define MSG_PARAM_(m, f, type, note) MSG_PARAM_##type##_ (f)
#define MSG_SENDER_DECL_(COMMAND, m, link, when) \
    int msg_send_##m (zsock_t *dest, zframe_t *route MSG_FIELDS_##COMMAND (MSG_PARAM_, m));
MSG_MESSAGES (MSG_SENDER_DECL_)
#undef MSG_SENDER_DECL_

//  Typed encoders, for a message that goes into an outbox rather than
//  straight to a socket: msg_encode_invalidate (route, what). Caller owns it.
#define MSG_ENCODER_DECL_(COMMAND, m, link, when) \
    zmsg_t *msg_encode_##m (zframe_t *route MSG_FIELDS_##COMMAND (MSG_PARAM_, m));
MSG_MESSAGES (MSG_ENCODER_DECL_)
#undef MSG_ENCODER_DECL_

//  An outbox keeps, in order, messages that must reach one peer even when
//  its queue is full now (an INVALIDATE after a write that is done): what
//  the peer cannot take yet waits, and goes out first the next time. The
//  sender never blocks. A message queued behind another that waits, waits
//  too, so the order is kept.
typedef struct _msg_outbox_t msg_outbox_t;

//  A limit far above what a bounded producer (a write, answered one at a
//  time per control-plane thread) can queue while a peer is stalled
#define MSG_OUTBOX_LIMIT 10000

//  An outbox for the socket dest, holding at most limit messages
msg_outbox_t *
    msg_outbox_new (zsock_t *dest, size_t limit);

void
    msg_outbox_destroy (msg_outbox_t **self_p);

//  Queue *zmsg_p (taken) behind what waits, and send what the peer takes
//  now. Returns 0, or -1 if the outbox was full and the message dropped
//  (logged: the limit is far above what its user can produce).
int
    msg_outbox_send (msg_outbox_t *self, zmsg_t **zmsg_p);

//  Send what waits, oldest first, while the peer takes it. True when
//  nothing waits (call before a send that must come after, and on each
//  turn of the loop).
bool
    msg_outbox_flush (msg_outbox_t *self);

//  Typed accessors: msg_invoke_request_id (msg), msg_invoke_body (msg, &size)
#define MSG_GETTER_s_(m, f) const char *msg_##m##_##f (msg_t *self);
#define MSG_GETTER_i_(m, f) int64_t msg_##m##_##f (msg_t *self);
#define MSG_GETTER_j_(m, f) \
    cJSON *msg_##m##_##f (msg_t *self); \
    cJSON *msg_##m##_##f##_take (msg_t *self); \
    const char *msg_##m##_##f##_text (msg_t *self);
#define MSG_GETTER_b_(m, f) const byte *msg_##m##_##f (msg_t *self, size_t *size_p);
#define MSG_GETTER_(m, f, type, note) MSG_GETTER_##type##_ (m, f)
#define MSG_GETTERS_DECL_(COMMAND, m, link, when) MSG_FIELDS_##COMMAND (MSG_GETTER_, m)
MSG_MESSAGES (MSG_GETTERS_DECL_)
#undef MSG_GETTERS_DECL_
#undef MSG_GETTER_
#undef MSG_GETTER_s_
#undef MSG_GETTER_i_
#undef MSG_GETTER_j_
#undef MSG_GETTER_b_

//  Receive one message, checked against its declaration. routed: the socket
//  is a ROUTER and the first frame is the sender's routing id. Returns NULL
//  if the message was malformed (logged, dropped) or the receive was
//  interrupted or timed out.
msg_t *
    msg_recv (zsock_t *source, bool routed);

//  Receive one message on an actor's pipe, where CZMQ's own "$TERM" (plain
//  text, outside this codec) may come too. Returns the checked message; NULL
//  with *terminated set on $TERM or an interrupted receive; NULL alone for a
//  malformed message (logged, dropped).
msg_t *
    msg_recv_pipe (zsock_t *pipe, bool *terminated);

//  Which message this is
msg_id_t
    msg_id (msg_t *self);

//  Its command name ("RUN")
const char *
    msg_command (msg_t *self);

//  The routing id frame (owned by msg), or NULL.
zframe_t *
    msg_route (msg_t *self);

void
    msg_destroy (msg_t **self_p);

//  broker/PROTOCOL.md as the declaration says it: the prose and one table
//  per link. Caller frees. `clowdy protocol-doc` prints it.
char *
    msg_protocol_markdown (void);

void
    msg_test (bool verbose);

#endif
