/*  =========================================================================
    deadlines - the fabric's clocks, in one place

    Everything that waits for another actor waits on a deadline, and the
    deadlines are layered so that the actor nearest to the trouble answers
    first, with the clearest error:

        worker       the function's timeout (warm run); timeout + load
                     allowance for a cold start, counted from the sandbox
                     being up; kills the sandbox and answers DONE "timeout".
        assignment   a run on a worker: the worker's bound + the sandbox's
                     own start-up bound (cold) + a margin: no DONE by then,
                     the environment is dropped and the caller told "lost".
                     A placement request: PLACE_DEADLINE_MS. A queued call:
                     what a cold run may take (it waits for a run to end).
        gateway      a job waiting for RESULT: everything assignment may take
                     (queue + placement + cold run) + a margin; the client
                     gets 504 and the invocation is recorded as such.
        http         a call parked on gateway: gateway's bound for the
                     largest --max-timeout + a margin, for a gateway that
                     is lost; the client gets 504.
        registry     a worker silent for --worker-expiry-ms is dead: its runs
                     are answered "lost" at once, its queued calls go on.

    Both sides of the worker link use --heartbeat-ms and --worker-expiry-ms
    (deadlines_expiry_ms), so a worker and assignment agree on when the
    other is gone. On tcp, ZMTP heartbeats on the connection itself (same
    interval and expiry) close a link whose peer froze or vanished, so a
    send to it fails at once. An inproc link cannot be cut: its peer is a
    thread of this process, so its expiry is INPROC_EXPIRY_MS at least, and
    a busy machine never makes a worker thread look dead.
    ========================================================================= */

#ifndef CLOWDY_DEADLINES_H_INCLUDED
#define CLOWDY_DEADLINES_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#define INPROC_EXPIRY_MS        5000    //  Least silence after which an inproc worker link is gone
#define SANDBOX_CREATE_MS       10000   //  Sandbox start-up bound (runtime/sandbox.c waits as long)
#define LOAD_ALLOWANCE_MS       10000   //  Extra time a cold start may take to load the code
#define PLACE_DEADLINE_MS       5000    //  placement answers PLACE within this
#define RUN_MARGIN_MS           5000    //  Slack over the worker's own bound before a run is lost
#define GATEWAY_MARGIN_MS       5000    //  Slack over assignment's bounds for a gateway job
#define DEFAULT_TIMEOUT_MS      30000   //  A function's timeout when none is given
#define MAX_TIMEOUT_MS          86400000    //  Above this a timeout is taken as none given
#define DEFAULT_MEMORY_MB       128     //  A function's memory limit when none (or an absurd one) is given
#define MIN_MEMORY_MB           16      //  The limits a memory_mb must be within
#define MAX_MEMORY_MB           65536
#define HTTP_MARGIN_MS          5000    //  Slack over gateway's bound for a parked HTTP call
#define CHAT_MARGIN_MS          10000   //  Slack over a chat's --ai-timeout budget

//  Silence after which the other side of the worker link is gone
static inline int64_t
deadlines_expiry_ms (int64_t expiry_ms, bool tcp)
{
    return tcp || expiry_ms >= INPROC_EXPIRY_MS ? expiry_ms : INPROC_EXPIRY_MS;
}

//  The longest a run may take on a worker before assignment gives up on it:
//  cold runs also create the sandbox and load the code first.
static inline int64_t
deadlines_run_ms (int64_t timeout_ms, bool cold)
{
    return timeout_ms + (cold ? SANDBOX_CREATE_MS + LOAD_ALLOWANCE_MS : 0) + RUN_MARGIN_MS;
}

//  How long a call may wait in its function's queue: until a run (at worst
//  a cold one) ends and frees an environment for it.
static inline int64_t
deadlines_queue_ms (int64_t timeout_ms)
{
    return deadlines_run_ms (timeout_ms, true);
}

//  How long gateway waits for a job's RESULT: the longest assignment may
//  take (queued, then placed, then a cold run) plus a margin, so that
//  assignment's own, clearer answer always comes first.
static inline int64_t
deadlines_job_ms (int64_t timeout_ms)
{
    return deadlines_queue_ms (timeout_ms) + PLACE_DEADLINE_MS + deadlines_run_ms (timeout_ms, true)
           + GATEWAY_MARGIN_MS;
}

//  How long http keeps a call parked on gateway: gateway's own bound for
//  the longest timeout any function may have (--max-timeout), plus a margin.
//  It fires only when gateway itself is lost; gateway answers first for
//  every call whose function it knows.
static inline int64_t
deadlines_http_ms (int64_t max_timeout_ms)
{
    return deadlines_job_ms (max_timeout_ms) + HTTP_MARGIN_MS;
}

//  How long http keeps a chat parked on the agent: its time budget (the
//  agent answers 504 itself then), plus a margin, for an agent that is lost
static inline int64_t
deadlines_chat_ms (int64_t budget_ms)
{
    return budget_ms + CHAT_MARGIN_MS;
}

#endif
