/*  =========================================================================
    actor - how every actor starts: a handshake that says ready or why not

    zactor_new returns once the actor thread has signalled, and throws the
    signal's status away. Before this file every actor did its set-up and
    then signalled 0 or 1; main could not see the 1, printed "listening on"
    over a platform with a dead assignment, and the first invoke hung.

    So the handshake has two steps. actor_start runs the actor through a
    small shim that signals at once (zactor_new returns at once), then calls
    the actor's own function. The actor does its set-up and answers on its
    pipe, exactly once, either "READY" or "FAILED" plus one frame with the
    reason. actor_start waits for that answer with a deadline, so a set-up
    that hangs (a locked database, a stuck mount) is reported as one rather
    than hanging main. A failed actor still serves $TERM (actor_failed waits
    for it), so stopping it never hangs.

    The shim also knows the actor's name: it names the thread (top -H,
    ps -L, perf show it), and it is what the test hook needs:
    CLOWDY_DEBUG_WEDGE names one actor that, right after READY, sleeps for
    ever like an actor stuck in a blocking call. main's bounded shutdown
    must still end the process; tests/e2e/test_startup.py proves it.
    ========================================================================= */

#include "broker/actor.h"

//  What the shim needs; it copies it before signalling, because it lives on
//  actor_start's stack, which zactor_new's wait keeps alive until then.
typedef struct {
    zactor_fn *handler;             //  The actor's own function
    void *args;                     //  Its arguments
    const char *name;               //  Its name, for the thread and the test hook
} start_t;

//  The actor named by CLOWDY_DEBUG_WEDGE, or NULL. Set once by main before
//  any actor starts, read-only afterwards.
static char s_wedge_name [64];
static char s_wedge_until [256];    //  A file whose creation ends the stall, or ""

//  True in the thread of the actor to wedge
static __thread bool s_wedged = false;

//  The thread's name as top -H, ps -L and perf show it: the actor's, cut
//  to the kernel's 15 characters (threads are otherwise all "clowdy")
void
actor_name_thread (const char *name)
{
    char text [16];
    snprintf (text, sizeof text, "%s", name);
    pthread_setname_np (pthread_self (), text);
}

static void
s_shim (zsock_t *pipe, void *arg)
{
    start_t start = *(start_t *) arg;
    if (start.name)
        actor_name_thread (start.name);
    s_wedged = *s_wedge_name && start.name && streq (s_wedge_name, start.name);
    zsock_signal (pipe, 0);
    start.handler (pipe, start.args);
}

zactor_t *
actor_start (zactor_fn *handler, void *args, const char *name, char **reason_p)
{
    start_t start = { handler, args, name };
    zactor_t *actor = zactor_new (s_shim, &start);
    char *reason = NULL;
    if (!actor)
        reason = strdup ("cannot start its thread");
    else {
        zpoller_t *poller = zpoller_new (actor, NULL);
        int64_t deadline = zclock_mono () + ACTOR_START_TIMEOUT_MS;
        void *which = NULL;
        //  A signal handled in this thread ends the wait early: wait again
        while (!which && !zsys_interrupted && zclock_mono () < deadline)
            which = zpoller_wait (poller, (int) (deadline - zclock_mono ()));
        zpoller_destroy (&poller);
        char *status = NULL, *why = NULL;
        if (which)
            zstr_recvx (actor, &status, &why, NULL);
        if (status && streq (status, "READY")) { }
        else
        if (status && streq (status, "FAILED"))
            reason = strdup (why && *why ? why : "failed to start (no reason given)");
        else
        if (which)
            reason = strdup ("stopped during its set-up without saying why");
        else
            reason = zsys_sprintf ("did not finish its set-up within %d s", ACTOR_START_TIMEOUT_MS / 1000);
        zstr_free (&status);
        zstr_free (&why);
        if (reason && which) {
            //  An actor that returned has already sent its last signal,
            //  which we just read: do not wait long for another one
            zsock_set_rcvtimeo (zactor_sock (actor), 1000);
            zactor_destroy (&actor);
        }
        else
        if (reason)
            actor = NULL;           //  Still in its set-up: cannot be joined, abandoned
    }
    if (reason_p)
        *reason_p = reason;
    else
        zstr_free (&reason);
    return actor;
}

void
actor_ready (zsock_t *pipe)
{
    zstr_send (pipe, "READY");
    while (s_wedged) {              //  Test hook: see actor.h
        if (*s_wedge_until && access (s_wedge_until, F_OK) == 0)
            break;
        zclock_sleep (*s_wedge_until? 10: 3600 * 1000);
    }
}

void
actor_failed (zsock_t *pipe, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char *reason = zsys_vprintf (format, args);
    va_end (args);
    zstr_sendx (pipe, "FAILED", reason ? reason : "failed to start", NULL);
    zstr_free (&reason);
    //  Serve nothing but $TERM, so that zactor_destroy does not hang
    while (true) {
        char *command = zstr_recv (pipe);
        bool stop = !command || streq (command, "$TERM");
        zstr_free (&command);
        if (stop)
            break;
    }
}

void
actor_set_wedge (const char *spec)
{
    *s_wedge_name = 0;
    *s_wedge_until = 0;
    if (!spec || !*spec)
        return;
    const char *colon = strchr (spec, ':');
    size_t len = colon ? (size_t) (colon - spec) : strlen (spec);
    if (len >= sizeof s_wedge_name)
        return;
    memcpy (s_wedge_name, spec, len);
    s_wedge_name [len] = 0;
    if (colon)
        snprintf (s_wedge_until, sizeof s_wedge_until, "%s", colon + 1);
}

//  --------------------------------------------------------------------------
//  Selftest: one actor of each kind of start

static void
s_good_actor (zsock_t *pipe, void *args)
{
    actor_ready (pipe);
    while (true) {
        char *command = zstr_recv (pipe);
        if (!command || streq (command, "$TERM")) {
            zstr_free (&command);
            break;
        }
        if (streq (command, "PING"))
            zstr_send (pipe, "PONG");
        else
        if (streq (command, "NAME")) {
            char name [16] = "";
            pthread_getname_np (pthread_self (), name, sizeof name);
            zstr_send (pipe, name);
        }
        zstr_free (&command);
    }
}

static void
s_bad_actor (zsock_t *pipe, void *args)
{
    actor_failed (pipe, "cannot bind %s: %s", (const char *) args, "Address already in use");
}

static void
s_silent_actor (zsock_t *pipe, void *args)
{
    //  Returns without a word: a bug, but it must not hang main either
}

void
actor_test (bool verbose)
{
    printf ("actor: ");
    char *reason = NULL;
    zactor_t *good = actor_start (s_good_actor, NULL, "good", &reason);
    assert (good && reason == NULL);
    //  The handshake is not left on the pipe for the next command to read
    zstr_send (good, "PING");
    char *reply = zstr_recv (good);
    assert (reply && streq (reply, "PONG"));
    zstr_free (&reply);
    zactor_destroy (&good);

    //  Its thread bears its name, cut to the kernel's 15 characters
    good = actor_start (s_good_actor, NULL, "a name longer than fifteen", &reason);
    assert (good);
    zstr_send (good, "NAME");
    reply = zstr_recv (good);
    assert (reply && streq (reply, "a name longer t"));
    zstr_free (&reply);
    zactor_destroy (&good);

    zactor_t *bad = actor_start (s_bad_actor, "tcp://127.0.0.1:9", "bad", &reason);
    assert (bad == NULL);
    assert (reason && streq (reason, "cannot bind tcp://127.0.0.1:9: Address already in use"));
    zstr_free (&reason);
    //  Without reason_p, the reason is freed here
    assert (actor_start (s_bad_actor, "x", "bad", NULL) == NULL);

    zactor_t *silent = actor_start (s_silent_actor, NULL, "silent", &reason);
    assert (silent == NULL && reason && strstr (reason, "without saying why"));
    zstr_free (&reason);

    //  The wedge names another actor: this one serves as usual
    actor_set_wedge ("someone-else");
    good = actor_start (s_good_actor, NULL, "good", &reason);
    assert (good);
    zactor_destroy (&good);

    //  Wedged until a file exists: no answer before, the PING answered after
    char until [] = "/tmp/clowdy-actor-test-XXXXXX";
    int fd = mkstemp (until);
    assert (fd >= 0);
    close (fd);
    unlink (until);
    char spec [64];
    snprintf (spec, sizeof spec, "good:%s", until);
    actor_set_wedge (spec);
    good = actor_start (s_good_actor, NULL, "good", &reason);
    assert (good);
    zstr_send (good, "PING");
    zsock_set_rcvtimeo (good, 200);
    reply = zstr_recv (good);
    assert (reply == NULL);                 //  Stalled
    fd = open (until, O_CREAT | O_WRONLY, 0600);
    assert (fd >= 0);
    close (fd);
    zsock_set_rcvtimeo (good, 10000);
    reply = zstr_recv (good);
    assert (reply && streq (reply, "PONG"));
    zstr_free (&reply);
    zactor_destroy (&good);
    unlink (until);
    actor_set_wedge (NULL);
    printf ("OK\n");
}
