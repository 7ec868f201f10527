/*  =========================================================================
    msg_defs - the one declaration of every message between actors

    This is the protocol. broker/msg.h and broker/msg.c expand these tables
    (X-macros) into the codec's spec table, the receive-time validation,
    typed senders (msg_send_run), typed accessors (msg_run_job_id) and the
    codec selftest; msg_protocol_markdown () renders them, with the prose
    below, as broker/PROTOCOL.md:

        build/clowdy protocol-doc > broker/PROTOCOL.md

    and the msg selftest fails when that file differs from what this one
    generates. To add a message: one MESSAGE row in MSG_MESSAGES, one
    MSG_FIELDS_<COMMAND> list, regenerate PROTOCOL.md, handle it in the
    receiving actor.

    MSG_LINKS (LINK):       LINK (ID, "heading"): a pair of actors, in the
                            order the tables appear in PROTOCOL.md
    MSG_MESSAGES (MESSAGE): MESSAGE (COMMAND, name, LINK_ID, "when it is
                            sent"): COMMAND is the first frame; name, lower
                            case, names the generated functions
    MSG_FIELDS_<COMMAND> (FIELD, m): FIELD (m, field, type, "note"), one
                            frame each, in order. type is one of
                            s   string: UTF-8 text without NUL
                            i   integer: decimal text, int64_t
                            j   JSON document: text, parsed at receive
                            b   raw bytes
                            note is printed after "field t" in the table
                            (with a space, unless it starts with ':' or ',')

    Every COMMAND needs its MSG_FIELDS_<COMMAND>, even an empty one.
    ========================================================================= */

#ifndef CLOWDY_MSG_DEFS_H_INCLUDED
#define CLOWDY_MSG_DEFS_H_INCLUDED

#define MSG_LINKS(LINK) \
    LINK (HTTP_GATEWAY,         "http ↔ gateway") \
    LINK (GATEWAY_ASSIGNMENT,   "gateway ↔ assignment") \
    LINK (ASSIGNMENT_PLACEMENT, "assignment ↔ placement") \
    LINK (ASSIGNMENT_WORKER,    "assignment ↔ worker") \
    LINK (GATEWAY_RECORDER,     "gateway → recorder") \
    LINK (HTTP_APIPOOL,         "http ↔ control-plane pool") \
    LINK (HTTP_AGENT,           "http ↔ agent") \
    LINK (DATABASE_PROVIDER,    "database ↔ its provider thread") \
    LINK (BUILDER_THREAD,       "builder ↔ its build thread") \
    LINK (WORKER_LAYERSERVER,   "worker ↔ layer server") \
    LINK (WORKER_LAYERFETCH,    "worker ↔ its layer fetch thread")

#define MSG_MESSAGES(MESSAGE) \
    MESSAGE (INVOKE, invoke, HTTP_GATEWAY, \
        "a call to `/api/invoke/:id` or `/api/gateway/...` arrived; http has suspended the connection " \
        "(the events actor sends it too, as a client like http, for each attempt of an async event)") \
    MESSAGE (REPLY, reply, HTTP_GATEWAY, \
        "the call is answered (always exactly once per INVOKE)") \
    MESSAGE (INVALIDATE, invalidate, HTTP_GATEWAY, \
        "a control-plane write changed what gateway caches") \
    MESSAGE (RUN, run, GATEWAY_ASSIGNMENT, \
        "gateway wants the function run with this input (or gateway event); assignment reads only the " \
        "plain fields, never the context") \
    MESSAGE (RESULT, result, GATEWAY_ASSIGNMENT, \
        "exactly once per RUN; `rejected` (per-function cap and queue full: 429) and `unavailable` " \
        "(no worker, memory, a full queue, a deadline before it ran: 503) never ran; `lost`: its worker " \
        "stopped answering (lost: expired, unreachable, cut off; or no DONE by the run's deadline) and it may have run (504, " \
        "recorded with status `lost`). A worker in gateway's own process sends a run's RESULT itself, on " \
        "the results socket, after its DONE (`delivered` 1): one hop fewer; gateway takes the first RESULT " \
        "of a job and drops a later one") \
    MESSAGE (RETIRE, retire, GATEWAY_ASSIGNMENT, \
        "environments built from old code, env or limits must go: idle ones now, busy ones after their run") \
    MESSAGE (PLACE, place, ASSIGNMENT_PLACEMENT, \
        "a run needs a new environment") \
    MESSAGE (PLACED, placed, ASSIGNMENT_PLACEMENT, \
        "the choice") \
    MESSAGE (READY, ready, ASSIGNMENT_WORKER, \
        "a worker starts (once it has made and destroyed a sandbox), or registers again after " \
        "--worker-expiry-ms without word from assignment; a READY from a worker id already known is the " \
        "same process (one registration, never a drop and a join): assignment reconciles its environments " \
        "with `envs` and `jobs` (ends what the worker no longer has, KILLs what it does not know)") \
    MESSAGE (HEARTBEAT, heartbeat, ASSIGNMENT_WORKER, \
        "both ways, every --heartbeat-ms (200 ms); a worker silent for --worker-expiry-ms (600 ms, tcp; " \
        "5 s at least inproc) is dropped by the registry (`broker/registry.c`): the runs it was sent are " \
        "answered `lost` (they may have run), its queued calls go to other workers. A worker's HEARTBEAT " \
        "from a new routing id means its connection came back: that id is used from then on") \
    MESSAGE (LEAVING, leaving, ASSIGNMENT_WORKER, \
        "a worker stops (SIGTERM): `draining` first (nothing new is placed on it, its idle environments " \
        "are ended, each busy one after its run), `left` once its runs are over, just before it exits") \
    MESSAGE (EXEC, exec, ASSIGNMENT_WORKER, \
        "run this job in that environment; an env id the worker does not have means create it (cold " \
        "start), and only then is the function context sent (`{}` for a warm environment)") \
    MESSAGE (DONE, done, ASSIGNMENT_WORKER, \
        "the run ended; `dead` when the environment ended with it (timeout, out of memory, crash, load " \
        "error: no GONE follows); `lost` when the job never ran there (the worker no longer had that " \
        "environment, or it was still running another call; result `{}`): assignment runs it on a new one. " \
        "A DONE after assignment gave up on the run is dropped and logged") \
    MESSAGE (KILL, kill, ASSIGNMENT_WORKER, \
        "assignment evicts or retires an environment") \
    MESSAGE (GONE, gone, ASSIGNMENT_WORKER, \
        "an idle environment died on its own") \
    MESSAGE (RECORD, record, GATEWAY_RECORDER, \
        "a run that happened (never for `rejected`/`unavailable`); written in batches") \
    MESSAGE (API_REQUEST, api_request, HTTP_APIPOOL, \
        "a control-plane request (`/api/...` other than invokes), down one idle pool thread's pipe " \
        "(`core/apipool.c`)") \
    MESSAGE (API_REPLY, api_reply, HTTP_APIPOOL, \
        "the thread's answer, PUSHed to http's PULL socket; exactly once per API_REQUEST (one that comes " \
        "after the request's deadline or its client left is dropped)") \
    MESSAGE (CHAT, chat, HTTP_AGENT, \
        "a `POST /api/chat` arrived from an authenticated user; http has suspended the connection until " \
        "ANSWER or its deadline (the chat time budget plus a margin)") \
    MESSAGE (ANSWER, answer, HTTP_AGENT, \
        "the chat is over: the reply, or why it failed (exactly once per CHAT, unless cancelled)") \
    MESSAGE (EVENT, event, HTTP_AGENT, \
        "a chat that asked for `stream: true` made progress: `delta` `{content}` as the model writes, " \
        "`tool` `{tool, args, result, ok}` as each tool call ends; ANSWER still ends the chat") \
    MESSAGE (CANCEL, cancel, HTTP_AGENT, \
        "the client went away or http's deadline passed: stop that chat's loop; its ANSWER, if any, is dropped") \
    MESSAGE (DB_SCAN, db_scan, DATABASE_PROVIDER, \
        "the database actor's timer (every 250 ms, when the thread is idle): do the provisioning and " \
        "deprovisioning jobs recorded in `project_databases` (`actors/database.c`)") \
    MESSAGE (DB_SCANNED, db_scanned, DATABASE_PROVIDER, \
        "exactly once per DB_SCAN; the actor sends gateway `INVALIDATE project ID` for each project listed") \
    MESSAGE (BUILD_SCAN, build_scan, BUILDER_THREAD, \
        "the builder's timer (every 250 ms, when the thread is idle): sweep unused layers now and then, " \
        "and build the oldest queued layer a project asks for (`actors/builder.c`)") \
    MESSAGE (BUILD_SCANNED, build_scanned, BUILDER_THREAD, \
        "exactly once per BUILD_SCAN; the actor sends gateway `INVALIDATE project ID` for each project listed") \
    MESSAGE (LAYER_FETCH, layer_fetch, WORKER_LAYERSERVER, \
        "a worker on another host needs a layer it does not have: it asks for the layer's archive a chunk " \
        "at a time, with at most 8 asks outstanding (credit, as the zguide's fileio), so neither side holds " \
        "more than 8 chunks (`actors/layerserver.c`)") \
    MESSAGE (LAYER_CHUNK, layer_chunk, WORKER_LAYERSERVER, \
        "one answer per LAYER_FETCH the server could read: the bytes asked for (fewer only at the end)") \
    MESSAGE (LAYER_ERROR, layer_error, WORKER_LAYERSERVER, \
        "instead of LAYER_CHUNK: the layer is not on the control host (not built, removed, or built before " \
        "layers travelled) or a bad ask; the worker's fetch fails with the reason") \
    MESSAGE (LAYER_WANT, layer_want, WORKER_LAYERFETCH, \
        "a cold start on a `--role worker` host needs a layer its data dir does not have; the call waits, " \
        "and so do others for the same layer, which is asked for once (`actors/layerfetch.c`)") \
    MESSAGE (LAYER_FETCHED, layer_fetched, WORKER_LAYERFETCH, \
        "exactly once per LAYER_WANT, within the fetch's deadline: the layer is in place (checked against " \
        "its digest, sealed, the cache trimmed to `--layers-max-mb`), or why not; the waiting calls go on " \
        "or fail with that reason")

//  http <-> gateway
#define MSG_FIELDS_INVOKE(FIELD, m) \
    FIELD (m, request_id, s, "") \
    FIELD (m, kind,       s, "(`direct`/`gateway`/`agent`: a direct call made by the assistant's tool, " \
                              "recorded with source `agent`/`async`: an attempt of an async event, sent by " \
                              "the events actor, whose headers carry x-clowdy-invocation-id, x-clowdy-attempt, " \
                              "x-clowdy-parent-id, x-clowdy-event-id and x-clowdy-source; " \
                              "`lambda`: a direct call from the Lambda API, " \
                              "whose reply adds `version`, `logs`, `error_type` and `traceback`, and whose " \
                              "query `version=N` runs that version)") \
    FIELD (m, target,     s, "") \
    FIELD (m, method,     s, "") \
    FIELD (m, path,       s, "(raw, as sent)") \
    FIELD (m, query,      s, "(raw)") \
    FIELD (m, headers,    j, "(lower-case names)") \
    FIELD (m, body,       b, "") \
    FIELD (m, user_id,    s, "")
#define MSG_FIELDS_REPLY(FIELD, m) \
    FIELD (m, request_id, s, "") \
    FIELD (m, status,     i, "") \
    FIELD (m, headers,    j, "") \
    FIELD (m, body,       b, "")
#define MSG_FIELDS_INVALIDATE(FIELD, m) \
    FIELD (m, what, s, ": `function ID`, `project ID` (env vars, database, rename, delete), `routes PROJECT_ID` or " \
                       "`contexts PROJECT_ID` (a database or layer on its way: cached contexts only); " \
                       "also sent by the database actor (DEALER) when a project's database changes")

//  gateway <-> assignment
#define MSG_FIELDS_RUN(FIELD, m) \
    FIELD (m, job_id,      s, "(= invocation id)") \
    FIELD (m, pool_key,    s, "") \
    FIELD (m, function_id, s, "") \
    FIELD (m, project_id,  s, "") \
    FIELD (m, owner_id,    s, "(the function's user: whose share of the memory budget it uses)") \
    FIELD (m, memory_mb,   i, "(assignment keeps it within the limits, budgets for it and passes it on in EXEC)") \
    FIELD (m, timeout_ms,  i, "(the function's timeout: assignment keeps it within the limits, measures every " \
                              "deadline of the run from it and passes it on in EXEC)") \
    FIELD (m, function,    s, "(JSON text that assignment passes on unread, in EXEC: id, name, version, code, " \
                              "env, network_enabled, project_id, requirements_hash?, " \
                              "database_mount? {source, target, writable}, file_limit_mb?)") \
    FIELD (m, input,       s, "(JSON text, passed on unread in EXEC)")
#define MSG_FIELDS_RESULT(FIELD, m) \
    FIELD (m, job_id, s, "") \
    FIELD (m, result, j, ": status (`success`/`error`/`timeout`/`rejected`/`unavailable`/`lost`), output?, error?, " \
                         "logs?, duration_us, cold_start, peak_memory_kb")
#define MSG_FIELDS_RETIRE(FIELD, m) \
    FIELD (m, what, s, ", as INVALIDATE")

//  assignment <-> placement
#define MSG_FIELDS_PLACE(FIELD, m) \
    FIELD (m, job_id,    s, "") \
    FIELD (m, pool_key,  s, "") \
    FIELD (m, memory_mb, i, "(the new environment's)") \
    FIELD (m, workers,   j, ": [{id, envs, memory_mb, idle_mb, capacity_mb, cores}] (workers taking new work; " \
                            "memory_mb, idle_mb and capacity_mb are its process's, shared with its sibling workers; " \
                            "idle_mb: what its idle environments hold, which assignment evicts on the chosen worker if it must)")
#define MSG_FIELDS_PLACED(FIELD, m) \
    FIELD (m, job_id,    s, "") \
    FIELD (m, worker_id, s, "(`\"\"` when none fits)")

//  assignment <-> worker (Majordomo-style: workers connect and register)
#define MSG_FIELDS_READY(FIELD, m) \
    FIELD (m, worker_id, s, "") \
    FIELD (m, info,      j, ": {capacity_mb, group (its process: workers of one group share its capacity_mb), " \
                            "cores (its share), host, envs: [env ids it holds], jobs: [job ids it runs], " \
                            "draining? (true: it is leaving)}")
#define MSG_FIELDS_HEARTBEAT(FIELD, m) \
    FIELD (m, worker_id, s, "") \
    FIELD (m, load,      j, ": from a worker {capacity_mb, cores, environments, running} (what it offers may " \
                            "change, as its process's budget; assignment's own view of its load is what it counts), " \
                            "from assignment `{}`")
#define MSG_FIELDS_LEAVING(FIELD, m) \
    FIELD (m, worker_id, s, "") \
    FIELD (m, phase,     s, "(`draining` or `left`)")
#define MSG_FIELDS_EXEC(FIELD, m) \
    FIELD (m, env_id,   s, "") \
    FIELD (m, job_id,   s, "") \
    FIELD (m, pool_key, s, "") \
    FIELD (m, memory_mb,  i, "(the environment's memory limit, as assignment budgets for it)") \
    FIELD (m, timeout_ms, i, "(the function's timeout)") \
    FIELD (m, function, j, "") \
    FIELD (m, input,    j, "")
#define MSG_FIELDS_DONE(FIELD, m) \
    FIELD (m, env_id,    s, "") \
    FIELD (m, job_id,    s, "") \
    FIELD (m, result,    s, "(JSON text, as RESULT's: assignment passes it on unread; `{}` when delivered)") \
    FIELD (m, env_state, s, "(`warm`, `dead` or `lost`)") \
    FIELD (m, delivered, i, "(1: the worker, in gateway's process, sends the RESULT to gateway itself, " \
                            "right after this DONE; assignment only frees or ends the environment. 0: " \
                            "assignment sends the RESULT, as always for `lost` and over tcp)")
#define MSG_FIELDS_KILL(FIELD, m) \
    FIELD (m, env_id, s, "")
#define MSG_FIELDS_GONE(FIELD, m) \
    FIELD (m, env_id, s, "") \
    FIELD (m, reason, s, "")

//  gateway -> recorder
#define MSG_FIELDS_RECORD(FIELD, m) \
    FIELD (m, row, j, ": id, function_id, input, output, status, error, source, http_method, http_path, logs, " \
                      "duration_us, cold_start, version, peak_memory_kb, created_at; async attempts also attempt, " \
                      "parent_invocation_id?, event_id (a success deletes the event in the same transaction)")

//  http <-> control-plane pool
#define MSG_FIELDS_API_REQUEST(FIELD, m) \
    FIELD (m, id,            s, "(http's request id)") \
    FIELD (m, method,        s, "") \
    FIELD (m, path,          s, "") \
    FIELD (m, query,         s, "(raw)") \
    FIELD (m, body,          b, "") \
    FIELD (m, user_id,       s, "(`\"\"` when the caller is not known yet)") \
    FIELD (m, authorization, s, "(an API-token header the thread checks first, or `\"\"`)") \
    FIELD (m, headers,       s, "(the request's headers as a JSON object, lower-case names, for the Lambda API " \
                                "(SigV4, `X-Amz-*`), or `\"\"`)")
#define MSG_FIELDS_API_REPLY(FIELD, m) \
    FIELD (m, thread,        i, "(the pool thread's index)") \
    FIELD (m, id,            s, "") \
    FIELD (m, status,        i, "") \
    FIELD (m, body,          s, "(the JSON response as text: http sends it on as it is)") \
    FIELD (m, invalidate,    s, "(an INVALIDATE for gateway, or `\"\"`)") \
    FIELD (m, unauthorized,  i, "(1 when the API token was refused)")
//  http <-> agent
#define MSG_FIELDS_CHAT(FIELD, m) \
    FIELD (m, request_id, s, "") \
    FIELD (m, user_id,    s, "(the tools act as this user)") \
    FIELD (m, body,       b, "(as sent: `{messages: [{role, content}]}`)") \
    FIELD (m, authorization, s, "(an API-token header the chat thread checks first, or `\"\"`)")
#define MSG_FIELDS_ANSWER(FIELD, m) \
    FIELD (m, request_id, s, "") \
    FIELD (m, status,     i, "") \
    FIELD (m, headers,    j, "") \
    FIELD (m, body,       b, "")
#define MSG_FIELDS_EVENT(FIELD, m) \
    FIELD (m, request_id, s, "") \
    FIELD (m, name,       s, "(`delta` or `tool`)") \
    FIELD (m, data,       j, "")
#define MSG_FIELDS_CANCEL(FIELD, m) \
    FIELD (m, request_id, s, "")

//  database <-> its provider thread
#define MSG_FIELDS_DB_SCAN(FIELD, m)
#define MSG_FIELDS_DB_SCANNED(FIELD, m) \
    FIELD (m, changed, j, ": [project ids whose database became ready or went away]")

//  builder <-> its build thread
#define MSG_FIELDS_BUILD_SCAN(FIELD, m)
#define MSG_FIELDS_BUILD_SCANNED(FIELD, m) \
    FIELD (m, changed, j, ": [project ids that now run with a new layer]")

//  worker <-> layer server
#define MSG_FIELDS_LAYER_FETCH(FIELD, m) \
    FIELD (m, hash,   s, "(the layer key)") \
    FIELD (m, offset, i, "(byte of the archive to start at)") \
    FIELD (m, size,   i, "(bytes wanted, at most 262144)")
#define MSG_FIELDS_LAYER_CHUNK(FIELD, m) \
    FIELD (m, hash,   s, "") \
    FIELD (m, offset, i, "") \
    FIELD (m, total,  i, "(the archive's size)") \
    FIELD (m, digest, s, "(sha256 hex of the archive, recorded when the layer was sealed: the worker " \
                         "checks what it received against it)") \
    FIELD (m, data,   b, "")
#define MSG_FIELDS_LAYER_ERROR(FIELD, m) \
    FIELD (m, hash,   s, "") \
    FIELD (m, reason, s, "")

//  worker <-> its layer fetch thread
#define MSG_FIELDS_LAYER_WANT(FIELD, m) \
    FIELD (m, hash, s, "(the layer key)") \
    FIELD (m, keep, j, ": [layer keys the worker's environments and waiting calls use: never evicted]")
#define MSG_FIELDS_LAYER_FETCHED(FIELD, m) \
    FIELD (m, hash,  s, "") \
    FIELD (m, error, s, "(`\"\"` when `<data_dir>/layers/<key>` is in place)")

//  The prose of broker/PROTOCOL.md around the generated tables
#define MSG_DOC_INTRO \
"# Messages between Clowdy's actors\n" \
"\n" \
"Every message is a ZeroMQ multipart message: on ROUTER sockets first the peer's routing id, then the\n" \
"command name, then one frame per field. Field types: `s` string (UTF-8, no NUL), `i` integer (decimal\n" \
"text), `j` JSON document (sent as text, parsed by the receiving codec), `b` raw bytes. This file is\n" \
"generated from the one declaration in `broker/msg_defs.h`, which also gives the codec, its checks and\n" \
"the typed functions actors use (`msg_send_run (...)`, `msg_run_job_id (msg)`); regenerate it with\n" \
"`build/clowdy protocol-doc > broker/PROTOCOL.md` (the msg selftest fails while it is out of date).\n" \
"Every received message is checked before any field is read: an unknown command, a wrong number of\n" \
"frames, a NUL in a text field, a non-numeric `i` or a `j` that is not valid JSON is logged and the\n" \
"message dropped. No frame ever carries a pointer, so any link can move from `inproc://` to `tcp://` by\n" \
"configuration (`CLOWDY_ENDPOINT_<NAME>`, see `broker/endpoints.h`). With `--curve-dir`, a tcp link is\n" \
"CurveZMQ: the binding side is the CURVE server, and zauth admits only the client keys in `clients/`.\n" \
"\n" \
"## Sockets\n" \
"| endpoint | bound by | socket | who connects |\n" \
"|---|---|---|---|\n" \
"| gateway | gateway | ROUTER | http, and the agent's chat threads (INVOKE of kind `agent`, INVALIDATE) (DEALER); database (DEALER, INVALIDATE only) |\n" \
"| assignment | assignment | ROUTER | gateway (DEALER) |\n" \
"| worker | assignment | ROUTER | every worker (DEALER), Majordomo-style |\n" \
"| placement | placement | ROUTER | assignment (DEALER) |\n" \
"| recorder | recorder | PULL | gateway (PUSH) |\n" \
"| `inproc://clowdy-results-*` (in-process only, `endpoints_results`) | gateway | PULL | the workers of " \
"gateway's own process whose link to assignment is inproc (PUSH): RESULT straight from the worker |\n" \
"| `inproc://clowdy-apipool-*` (one per pool) | http | PULL | each control-plane pool thread (PUSH); " \
"http sends API_REQUEST down a thread's actor pipe |\n" \
"| agent | agent | ROUTER | http (DEALER) |\n" \
"| (the database actor's pipe to its provider thread) | database | PAIR | DB_SCAN down, DB_SCANNED up |\n" \
"| (the builder actor's pipe to its build thread) | builder | PAIR | BUILD_SCAN down, BUILD_SCANNED up |\n" \
"| layers | layerserver | ROUTER | each worker's layer fetch thread (DEALER), on a worker host only |\n" \
"| (a worker's pipe to its layer fetch thread) | worker | PAIR | LAYER_WANT down, LAYER_FETCHED up |\n"

#define MSG_DOC_OUTRO \
"The runner inside a sandbox speaks its own framed JSON protocol with the worker: see\n" \
"`runtime/PROTOCOL.md`.\n"

#endif
