/*  =========================================================================
    builder - builds pip dependency layers

    Not built yet: the actor starts, answers PING on its pipe and stops on
    $TERM, so that main can start every actor of the design from day one.
    ========================================================================= */

#include "actors/builder.h"
#include "broker/actor.h"

typedef struct {
    zsock_t *pipe;                  //  Actor command pipe
    bool terminated;                //  Did caller ask us to quit?
} self_t;

static void
s_self_handle_pipe (self_t *self)
{
    char *command = zstr_recv (self->pipe);
    if (!command) {
        self->terminated = true;    //  Interrupted
        return;
    }
    if (streq (command, "$TERM"))
        self->terminated = true;
    else
    if (streq (command, "PING"))
        zstr_send (self->pipe, "PONG");
    else
        zsys_warning ("builder: invalid pipe command '%s'", command);
    zstr_free (&command);
}

void
builder_actor (zsock_t *pipe, void *args)
{
    self_t self = { .pipe = pipe };
    actor_ready (pipe);
    while (!self.terminated)
        s_self_handle_pipe (&self);
}

void
builder_test (bool verbose)
{
    printf ("builder: ");
    zactor_t *actor = actor_start (builder_actor, NULL, "builder", NULL);
    assert (actor);
    zstr_send (actor, "PING");
    char *reply = zstr_recv (actor);
    assert (reply && streq (reply, "PONG"));
    zstr_free (&reply);
    zactor_destroy (&actor);
    printf ("OK\n");
}
