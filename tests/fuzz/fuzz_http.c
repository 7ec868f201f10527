/*  fuzz_http - libFuzzer target for the HTTP request path: each input is raw
    bytes a client sends. The real http actor (libmicrohttpd, our checks,
    dispatch, the REST handlers on the pool, a temp data dir) listens on a
    loopback port; the bytes go to it over a real TCP connection, and after
    each input /api/health must still answer 200 on a fresh connection.
    Stand-ins for the gateway and the agent answer every INVOKE and CHAT at
    once, so parked requests end rather than pile up.

    An input is not waited on for ever: MHD keeps an HTTP/1.1 connection
    open after its answer, so we read what comes within a few milliseconds
    and close. MHD (epoll, edge-triggered) does not always see a client's
    close that came with the last bytes, so such connections stay until
    the (here 2 s) timeout: a few hundred at a time, hence no per-client
    limit. A crash, an ASan report or a health check that fails stops the
    fuzzer.  */
#include <czmq.h>
#include <dirent.h>
#include <poll.h>
#include "actors/http.h"
#include "broker/actor.h"
#include "broker/endpoints.h"
#include "broker/msg.h"
#include "core/config.h"

static zactor_t *s_http;
static zsock_t *s_gateway;              //  Stand-in gateway: answers INVOKE
static zsock_t *s_agent;                //  Stand-in agent: answers CHAT
static int s_port;
static config_t s_config;
static endpoints_t *s_endpoints;

//  At exit, before CZMQ's own clean-up (registered earlier, run later)
static void
s_stop (void)
{
    zactor_destroy (&s_http);
    zsock_destroy (&s_gateway);
    zsock_destroy (&s_agent);
    endpoints_destroy (&s_endpoints);
    config_reset (&s_config);
}

static void
s_start (void)
{
    static char data_dir [] = "/tmp/clowdy-fuzz-http-XXXXXX";
    assert (mkdtemp (data_dir));
    char *argv [] = { "clowdy", "--listen", "127.0.0.1:0", "--data-dir", data_dir, "--log-level", getenv ("FUZZ_HTTP_LOG") ? "debug" : "error",
                      "--web-dir", "/nonexistent", "--http-idle-timeout", "2", "--http-timeout", "2",
                      "--max-body", "65536", "--max-body-total-mb", "1", "--http-max-per-client", "0", NULL };
    char error [256];
    assert (config_parse (&s_config, 19, argv, error, sizeof error) == 0);
    zsys_set_logstream (getenv ("FUZZ_HTTP_LOG") ? stderr : NULL);
    s_endpoints = endpoints_new ();
    endpoints_set (s_endpoints, "gateway", "inproc://fuzz-http-gateway");
    endpoints_set (s_endpoints, "agent", "inproc://fuzz-http-agent");
    s_gateway = zsock_new_router ("inproc://fuzz-http-gateway");
    s_agent = zsock_new_router ("inproc://fuzz-http-agent");
    static actor_args_t args;
    args = (actor_args_t) { &s_config, s_endpoints, 0 };
    s_http = actor_start (http_actor, &args, "http", NULL);
    assert (s_http);
    zstr_send (s_http, "PORT");
    char *port = zstr_recv (s_http);
    s_port = atoi (port);
    zstr_free (&port);
    assert (s_port > 0);
    atexit (s_stop);
}

//  Answer what the stand-ins got
static void
s_answer_parked (void)
{
    while (zsock_events (s_gateway) & ZMQ_POLLIN) {
        msg_t *msg = msg_recv (s_gateway, true);
        if (msg && msg_id (msg) == MSG_ID_INVOKE)
            msg_send_reply (s_gateway, msg_route (msg), msg_invoke_request_id (msg), 200, "{}", "{}", 2);
        msg_destroy (&msg);
    }
    while (zsock_events (s_agent) & ZMQ_POLLIN) {
        msg_t *msg = msg_recv (s_agent, true);
        if (msg && msg_id (msg) == MSG_ID_CHAT)
            msg_send_answer (s_agent, msg_route (msg), msg_chat_request_id (msg), 200, "{}", "{}", 2);
        msg_destroy (&msg);
    }
}

static int
s_connect (void)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert (fd >= 0);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) s_port) };
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    int rc;
    while ((rc = connect (fd, (struct sockaddr *) &address, sizeof address)) && errno == EINTR)
        ;
    assert (rc == 0);
    return fd;
}

//  Read what arrives until the peer closes or nothing comes for quiet_ms;
//  returns the bytes read (at most size - 1, NUL-terminated)
static size_t
s_read_some (int fd, char *buffer, size_t size, int quiet_ms, int total_ms)
{
    size_t have = 0;
    int64_t deadline = zclock_mono () + total_ms;
    while (have < size - 1 && zclock_mono () < deadline) {
        s_answer_parked ();
        //  libFuzzer's SIGALRM (for -timeout) interrupts waits: go on
        struct pollfd item = { fd, POLLIN, 0 };
        int ready = poll (&item, 1, quiet_ms);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready <= 0)
            break;
        ssize_t got = read (fd, buffer + have, size - 1 - have);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        have += (size_t) got;
    }
    buffer [have] = 0;
    return have;
}

static void
s_send_all (int fd, const uint8_t *data, size_t size)
{
    size_t sent = 0;
    while (sent < size) {
        ssize_t wrote = send (fd, data + sent, size - sent, MSG_NOSIGNAL);
        if (wrote < 0 && errno == EINTR)
            continue;
        if (wrote <= 0)
            break;
        sent += (size_t) wrote;
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (!s_http)
        s_start ();
    int fd = s_connect ();
    //  The server may close early (an answer before the body): not an error
    s_send_all (fd, data, size);
    shutdown (fd, SHUT_WR);
    char reply [4096];
    s_read_some (fd, reply, sizeof reply, 5, 200);
    close (fd);

    //  Still alive and answering
    int64_t asked = zclock_mono ();
    fd = s_connect ();
    const char *health = "GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    s_send_all (fd, (const uint8_t *) health, strlen (health));
    size_t have = s_read_some (fd, reply, sizeof reply, 2000, 5000);
    close (fd);
    if (!(have && strstr (reply, "200 OK") && strstr (reply, "{\"status\":\"ok\"}"))) {
        size_t fds = 0;
        DIR *dir = opendir ("/proc/self/fd");
        while (dir && readdir (dir))
            fds++;
        if (dir)
            closedir (dir);
        fprintf (stderr, "fuzz_http: /api/health did not answer 200 after this input (%zu fds open, "
                 "%" PRId64 " ms): '%s'\n", fds, zclock_mono () - asked, reply);
        abort ();
    }
    return 0;
}
