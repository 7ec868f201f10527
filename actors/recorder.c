/*  =========================================================================
    recorder - writes invocation records in batches, off the request path

    Invariant: every RECORD received is written before the actor stops,
    unless the database refuses it (then the error is logged once per batch).
    The request path never waits for this actor: gateway PUSHes and goes on.
    With WAL and synchronous=NORMAL a batch costs one WAL append, no fsync.

    What one tenant may put on disk is bounded twice, so that a function fed
    5 MiB inputs cannot fill the data dir:
    - per record: input, output, error and logs each keep at most
      --record-max-bytes (cut at a UTF-8 character boundary), and the record
      says so (input_truncated, output_truncated, logs_truncated). The
      prefix is what a person reading the log needs; a truncated input is no
      longer valid JSON, which is why the flag is there.
    - per function: the newest --retention rows and, of those, the newest
      whose stored bytes add up to --retention-mb; older ones are deleted,
      oldest first. Per function, not overall, so that one busy function
      never prunes another's history. SQLite reuses the freed pages, so the
      file stops growing once a function's records reach the cap.

    Read-your-writes (DESIGN.md): once an invoke's answer has left, the next
    list of its function's invocations shows it. Gateway PUSHes the RECORD
    before it answers, so by the time a client can ask, the row is in our
    inbox, but it may wait up to BATCH_DELAY_MS to be written. Rather than
    write every row at once (one transaction per call on the hot path), the
    read asks: recorder_sync, called by the API before it reads invocation
    records, sends SYNC to our sync socket (a ROUTER on a private inproc
    endpoint), and we take in everything already sent, write it, and answer.
    A read costs one round trip to this thread (and the batch's write when
    rows were waiting); calls keep their batched writes.

    Wake-ups: a RECORD that finds the inbox watched wakes this thread;
    from then on the inbox is read every BATCH_LOOK_MS (5 ms), at most
    BATCH_MAX rows a look, for as long as each look finds rows, so a busy
    function costs this thread a wake-up per 5 ms, not one per call, and
    gateway no wake-up signal per RECORD (libzmq signals a reader only
    once it found its queue empty). A look that finds none watches the
    inbox again, so a quiet function costs no more wake-ups than before.
    The inbox's queue (gateway's PUSH sends up to ENDPOINTS_ANSWER_HWM)
    holds over 100,000 RECORDs: 5 ms of them at 20 million a second.
    ========================================================================= */

#include <pthread.h>

#include <cjson/cJSON.h>
#include "actors/recorder.h"
#include "broker/actor.h"
#include "broker/endpoints.h"
#include "broker/msg.h"
#include "broker/poller.h"
#include "core/config.h"
#include "core/store.h"

#define BATCH_MAX 256               //  Rows per transaction at most
#define BATCH_DELAY_MS 50           //  Longest a row waits to be written
#define BATCH_LOOK_MS 5             //  How often the inbox is read while a batch fills

typedef struct {
    zsock_t *pipe;                  //  Actor command pipe
    zsock_t *inbox;                 //  PULL socket for RECORD messages
    zsock_t *sync;                  //  ROUTER for recorder_sync
    char sync_endpoint [64];        //  Its endpoint
    store_t *store;                 //  Our own store connection
    cJSON *batch [BATCH_MAX];       //  Rows waiting to be written
    size_t count;                   //  Rows in batch
    int64_t first_at;               //  Monotonic ms when batch [0] arrived
    long retention;                 //  Rows kept per function
    int64_t retention_bytes;        //  Stored bytes kept per function
    size_t record_max_bytes;        //  Longest input, output, error or logs kept
    zhashx_t *since_trim;           //  function id -> trim_t, written since its last trim
    bool terminated;                //  Did caller ask us to quit?
} self_t;

//  The running recorder's sync endpoint, "" when none runs in this process
static pthread_mutex_t s_sync_mutex = PTHREAD_MUTEX_INITIALIZER;
static char s_sync_endpoint [64];

static const char *
s_text (cJSON *row, const char *name)
{
    cJSON *item = cJSON_GetObjectItemCaseSensitive (row, name);
    return cJSON_IsString (item) ? item->valuestring : NULL;
}

static double
s_number (cJSON *row, const char *name)
{
    cJSON *item = cJSON_GetObjectItemCaseSensitive (row, name);
    return cJSON_IsNumber (item) ? item->valuedouble : 0;
}

//  What a function has written since its last trim
typedef struct {
    size_t rows;                    //  Rows
    int64_t bytes;                  //  Their stored bytes
} trim_t;

//  Cut row's string field to at most max bytes, at a UTF-8 character
//  boundary. Returns true when it was cut.
static bool
s_cap (cJSON *row, const char *name, size_t max)
{
    cJSON *item = cJSON_GetObjectItemCaseSensitive (row, name);
    if (!cJSON_IsString (item) || strlen (item->valuestring) <= max)
        return false;
    size_t cut = max;
    //  Back off continuation bytes (10xxxxxx) so a character is never split
    while (cut > 0 && ((unsigned char) item->valuestring [cut] & 0xC0) == 0x80)
        cut--;
    item->valuestring [cut] = 0;
    return true;
}

//  Logs are read by people, who see no flag: a cut log ends in a line that
//  says so, as the runner's own cap does, within the same max bytes
static bool
s_cap_logs (cJSON *row, size_t max)
{
    const char *logs = s_text (row, "logs");
    if (!logs || strlen (logs) <= max)
        return false;
    const size_t note_max = 96;     //  The note below, with room to spare
    if (max <= 2 * note_max)
        return s_cap (row, "logs", max);
    s_cap (row, "logs", max - note_max);
    logs = s_text (row, "logs");
    char *text = zsys_sprintf ("%s\n[clowdy: logs truncated: this record keeps the first %zu bytes]\n",
                               logs, strlen (logs));
    cJSON_ReplaceItemInObjectCaseSensitive (row, "logs", cJSON_CreateString (text));
    zstr_free (&text);
    return true;
}

static void
s_flush (self_t *self)
{
    if (self->count == 0)
        return;
    store_invocation_t rows [BATCH_MAX];
    for (size_t i = 0; i < self->count; i++) {
        cJSON *row = self->batch [i];
        bool input_cut = s_cap (row, "input", self->record_max_bytes);
        bool output_cut = s_cap (row, "output", self->record_max_bytes);
        output_cut = s_cap (row, "error", self->record_max_bytes) || output_cut;
        bool logs_cut = s_cap_logs (row, self->record_max_bytes);
        rows [i] = (store_invocation_t) {
            .id = s_text (row, "id"), .function_id = s_text (row, "function_id"),
            .input = s_text (row, "input"), .output = s_text (row, "output"),
            .status = s_text (row, "status"), .error = s_text (row, "error"),
            .source = s_text (row, "source"), .http_method = s_text (row, "http_method"),
            .http_path = s_text (row, "http_path"), .logs = s_text (row, "logs"),
            .duration_us = (int64_t) s_number (row, "duration_us"),
            .cold_start = cJSON_IsTrue (cJSON_GetObjectItemCaseSensitive (row, "cold_start")),
            .version = (int) s_number (row, "version"),
            .peak_memory_kb = (int64_t) s_number (row, "peak_memory_kb"),
            .init_us = (int64_t) s_number (row, "init_us"),
            .queue_us = (int64_t) s_number (row, "queue_us"),
            .created_at = s_text (row, "created_at"),
            .input_truncated = input_cut,
            .output_truncated = output_cut,
            //  The runner caps logs too, and says so in the result
            .logs_truncated = logs_cut || cJSON_IsTrue (cJSON_GetObjectItemCaseSensitive (row, "logs_truncated")),
            //  Async attempts (actors/events.c): a success ends its event here
            .attempt = (int) s_number (row, "attempt"),
            .parent_invocation_id = s_text (row, "parent_invocation_id"),
            .event_id = s_text (row, "event_id"),
        };
    }
    if (store_invocations_insert (self->store, rows, self->count) < 0)
        zsys_error ("recorder: could not write %zu invocation records", self->count);

    //  Retention: trimming walks the function's index entries (up to
    //  `retention` of them), so a function is trimmed once it has written a
    //  tenth of its row or byte retention since its last trim (and on its
    //  first batch after start): it holds at most 10% more rows or bytes
    //  than kept for a while, and the cost per row stays small. The newest
    //  record always stays (store_invocations_trim).
    size_t every_rows = self->retention / 10 > 0 ? (size_t) (self->retention / 10) : 1;
    int64_t every_bytes = self->retention_bytes / 10 > 0 ? self->retention_bytes / 10 : 1;
    for (size_t i = 0; i < self->count; i++) {
        const char *function_id = rows [i].function_id;
        if (!function_id)
            continue;
        int64_t bytes = (int64_t) (strlen (rows [i].input ? rows [i].input : "{}")
                      + (rows [i].output ? strlen (rows [i].output) : 0)
                      + (rows [i].error ? strlen (rows [i].error) : 0)
                      + (rows [i].logs ? strlen (rows [i].logs) : 0));
        trim_t *pending = (trim_t *) zhashx_lookup (self->since_trim, function_id);
        if (!pending) {
            pending = (trim_t *) zmalloc (sizeof (trim_t));
            pending->rows = every_rows;         //  Unknown since start: trim it now
            zhashx_insert (self->since_trim, function_id, pending);
        }
        else {
            pending->rows++;
            pending->bytes += bytes;
        }
        if (pending->rows >= every_rows || pending->bytes >= every_bytes) {
            pending->rows = 0;
            pending->bytes = 0;
            if (store_invocations_trim (self->store, function_id, self->retention, self->retention_bytes) < 0)
                zsys_error ("recorder: could not apply retention to function %s's records", function_id);
        }
    }
    if (zhashx_size (self->since_trim) > 100000)
        zhashx_purge (self->since_trim);    //  Deleted functions must not pile up
    for (size_t i = 0; i < self->count; i++)
        cJSON_Delete (self->batch [i]);
    self->count = 0;
}

//  Take one RECORD from the inbox (which never blocks: its receive timeout
//  is 0); false when none was waiting or what came was malformed (logged
//  and dropped by the codec)
static bool
s_handle_inbox (self_t *self)
{
    msg_t *msg = msg_recv (self->inbox, false);
    if (!msg)
        return false;
    if (msg_id (msg) == MSG_ID_RECORD) {
        cJSON *row = msg_record_row_take (msg);
        if (cJSON_IsObject (row) && s_text (row, "function_id")) {
            if (self->count == 0)
                self->first_at = zclock_mono ();
            self->batch [self->count++] = row;
            if (self->count == BATCH_MAX)
                s_flush (self);
        }
        else {
            zsys_warning ("recorder: dropped a RECORD without a function_id");
            cJSON_Delete (row);
        }
    }
    msg_destroy (&msg);
    return true;
}

//  Take in the RECORDs already sent, at most max of them; how many. Each
//  receive that finds a message costs no system call; the socket's events
//  (two) are asked only when one found none, which may also mean that a
//  malformed message was dropped
static size_t
s_drain_inbox (self_t *self, size_t max)
{
    size_t taken = 0;
    while (taken < max) {
        if (!s_handle_inbox (self) && !(zsock_events (self->inbox) & ZMQ_POLLIN))
            break;
        taken++;
    }
    return taken;
}

static void
s_self_handle_pipe (self_t *self)
{
    char *command = zstr_recv (self->pipe);
    if (!command) {
        self->terminated = true;
        return;
    }
    if (streq (command, "$TERM"))
        self->terminated = true;
    else
    if (streq (command, "FLUSH")) {
        //  Take in everything already sent, then write it
        s_drain_inbox (self, SIZE_MAX);
        s_flush (self);
        zstr_send (self->pipe, "OK");
    }
    else
    if (streq (command, "PING"))
        zstr_send (self->pipe, "PONG");
    else
        zsys_warning ("recorder: invalid pipe command '%s'", command);
    zstr_free (&command);
}

//  SYNC from recorder_sync: write everything already sent, then answer
static void
s_handle_sync (self_t *self)
{
    zmsg_t *request = zmsg_recv (self->sync);
    if (!request)
        return;
    s_drain_inbox (self, SIZE_MAX);
    s_flush (self);
    //  [identity][""]["SYNC"] -> [identity][""]["OK"]
    zframe_t *last = zmsg_last (request);
    if (zmsg_size (request) >= 3 && last) {
        zmsg_remove (request, last);
        zframe_destroy (&last);
        zmsg_addstr (request, "OK");
        zmsg_send (&request, self->sync);
    }
    zmsg_destroy (&request);
}

int
recorder_sync (void)
{
    char endpoint [sizeof s_sync_endpoint];
    pthread_mutex_lock (&s_sync_mutex);
    memcpy (endpoint, s_sync_endpoint, sizeof endpoint);
    pthread_mutex_unlock (&s_sync_mutex);
    if (!*endpoint)
        return 0;                   //  No recorder here: nothing waits in this process
    zsock_t *request = zsock_new_req (endpoint);
    if (!request)
        return -1;
    zsock_set_rcvtimeo (request, RECORDER_SYNC_MS);
    zsock_set_sndtimeo (request, RECORDER_SYNC_MS);
    char *answer = NULL;
    if (zstr_send (request, "SYNC") == 0)
        answer = zstr_recv (request);
    int rc = answer && streq (answer, "OK") ? 0 : -1;
    zstr_free (&answer);
    zsock_destroy (&request);
    return rc;
}

void
recorder_actor (zsock_t *pipe, void *args_)
{
    const actor_args_t *args = (const actor_args_t *) args_;
    self_t *self = (self_t *) zmalloc (sizeof (self_t));
    self->pipe = pipe;
    self->retention = args->config->retention;
    self->retention_bytes = (int64_t) args->config->retention_mb * 1024 * 1024;
    self->record_max_bytes = (size_t) args->config->record_max_bytes;
    self->since_trim = zhashx_new ();
    zhashx_set_destructor (self->since_trim, (zhashx_destructor_fn *) zstr_free);
    self->store = store_open (args->config->data_dir);
    self->inbox = endpoints_bind (args->endpoints, "recorder", ZMQ_PULL);
    if (self->inbox)
        zsock_set_rcvtimeo (self->inbox, 0);
    snprintf (self->sync_endpoint, sizeof self->sync_endpoint, "inproc://clowdy-recorder-sync-%p", (void *) self);
    self->sync = zsock_new_router (self->sync_endpoint);
    if (!self->store || !self->inbox || !self->sync) {
        zhashx_destroy (&self->since_trim);
        zsock_destroy (&self->sync);
        zsock_destroy (&self->inbox);
        store_destroy (&self->store);
        free (self);
        if (*endpoints_error ())
            actor_failed (pipe, "%s", endpoints_error ());
        else
            actor_failed (pipe, "cannot open the database in data dir '%s' (is it writable?)",
                          args->config->data_dir);
        return;
    }
    pthread_mutex_lock (&s_sync_mutex);
    snprintf (s_sync_endpoint, sizeof s_sync_endpoint, "%s", self->sync_endpoint);
    pthread_mutex_unlock (&s_sync_mutex);
    actor_ready (pipe);

    //  idle watches the inbox; filling, used while rows keep coming,
    //  leaves it to a look every BATCH_LOOK_MS (see the top of this file)
    poller_t *idle = poller_new (pipe, self->inbox, self->sync, NULL);
    poller_t *filling = poller_new (pipe, self->sync, NULL);
    if (!idle || !filling)
        zsys_error ("recorder: cannot poll its sockets; invocation records are not written");
    bool looking = false;           //  Rows came lately: read the inbox by looks
    while (!self->terminated && idle && filling) {
        bool filling_now = self->count && looking;
        poller_t *poller = filling_now ? filling : idle;
        int timeout = -1;
        if (self->count) {
            int64_t left = self->first_at + BATCH_DELAY_MS - zclock_mono ();
            timeout = left <= 0 ? 0 : filling_now && left > BATCH_LOOK_MS ? BATCH_LOOK_MS : (int) left;
        }
        zsock_t *which = poller_wait (poller, timeout);
        bool looked = false;
        if (which == pipe)
            s_self_handle_pipe (self);
        else
        if (which == self->inbox) {
            s_handle_inbox (self);
            looking = true;         //  More may follow it
        }
        else
        if (which == self->sync)
            s_handle_sync (self);
        else
        if (poller_terminated (poller))
            break;
        else
        if (filling_now) {
            looking = s_drain_inbox (self, BATCH_MAX) > 0;
            looked = true;
        }
        if (self->count && zclock_mono () >= self->first_at + BATCH_DELAY_MS) {
            if (!looked)
                s_drain_inbox (self, BATCH_MAX);
            s_flush (self);
        }
    }
    //  Nothing that arrived is lost on a clean stop
    s_drain_inbox (self, SIZE_MAX);
    s_flush (self);
    pthread_mutex_lock (&s_sync_mutex);
    if (streq (s_sync_endpoint, self->sync_endpoint))
        *s_sync_endpoint = 0;
    pthread_mutex_unlock (&s_sync_mutex);
    poller_destroy (&filling);
    poller_destroy (&idle);
    zsock_destroy (&self->sync);
    zsock_destroy (&self->inbox);
    store_destroy (&self->store);
    zhashx_destroy (&self->since_trim);
    free (self);
}

//  Test helpers: send a row (and destroy it); have the recorder write all
//  it has been sent
static void
s_test_send_row (zsock_t *push, cJSON *row)
{
    char *text = cJSON_PrintUnformatted (row);
    assert (msg_send_record (push, NULL, text) == 0);
    free (text);
    cJSON_Delete (row);
}

static void
s_test_flush (zactor_t *recorder)
{
    zstr_send (recorder, "FLUSH");
    char *ok = zstr_recv (recorder);
    assert (ok && streq (ok, "OK"));
    zstr_free (&ok);
}

void
recorder_test (bool verbose)
{
    printf ("recorder: ");
    char data_dir [] = "/tmp/clowdy-recorder-test-XXXXXX";
    assert (mkdtemp (data_dir));
    char *argv [] = { "clowdy", "--data-dir", data_dir, "--retention", "10", "--retention-mb", "1",
                      "--record-max-bytes", "200000", NULL };
    config_t config;
    char error [256];
    assert (config_parse (&config, 9, argv, error, sizeof error) == 0);
    endpoints_t *endpoints = endpoints_new ();
    endpoints_set (endpoints, "recorder", "inproc://recorder-test");

    //  A function to record against
    store_t *store = store_open (data_dir);
    assert (store);
    assert (store_exec (store, "INSERT INTO functions (id, user_id, name, description, runtime, status,"
        " network_enabled, timeout_seconds, memory_mb, active_version, created_at, updated_at)"
        " VALUES ('aaaaaaaaaaaa', 'local', 'f', '', 'python', 'active', 0, 30, 128, 1, 'x', 'x')", "") == 1);
    assert (store_exec (store, "INSERT INTO functions (id, user_id, name, description, runtime, status,"
        " network_enabled, timeout_seconds, memory_mb, active_version, created_at, updated_at)"
        " VALUES ('cccccccccccc', 'local', 'big', '', 'python', 'active', 0, 30, 128, 1, 'x', 'x')", "") == 1);

    actor_args_t args = { &config, endpoints, 0 };
    zactor_t *recorder = actor_start (recorder_actor, &args, "recorder", NULL);
    zsock_t *push = zsock_new_push ("inproc://recorder-test");
    for (int i = 0; i < 25; i++) {
        char row [256];
        snprintf (row, sizeof row, "{\"function_id\":\"aaaaaaaaaaaa\",\"status\":\"success\","
                  "\"input\":\"{}\",\"output\":\"%d\",\"source\":\"direct\",\"duration_us\":1500,\"version\":1}", i);
        assert (msg_send_record (push, NULL, row) == 0);
    }
    assert (zstr_sendx (push, "RECORD", "not json", NULL) == 0);        //  Dropped by the codec
    assert (msg_send_record (push, NULL, "[\"not\", \"a row\"]") == 0);
    assert (msg_send_record (push, NULL, "{\"function_id\":\"bbbbbbbbbbbb\",\"status\":\"success\"}") == 0);
    s_test_flush (recorder);
    //  Retention keeps the newest 10 of 25 (with --retention 10 a trim runs
    //  every row); the unknown function's row is skipped
    cJSON *rows = store_query (store, "SELECT output FROM invocations ORDER BY created_at DESC, rowid DESC", "");
    assert (cJSON_GetArraySize (rows) == 10);
    assert (streq (cJSON_GetObjectItem (cJSON_GetArrayItem (rows, 0), "output")->valuestring, "24"));
    cJSON_Delete (rows);

    //  Big records: each field keeps its first 200000 bytes, never half a
    //  character ("x" then 2-byte characters: byte 200000 is the second half
    //  of one, so 199999 are kept), and says it was cut; a short field is
    //  whole. Retention by bytes then keeps the newest records that fit in
    //  1 MiB: 5 of about 200 KB each (6 would be 1.2 MB), whatever the rows.
    size_t big_size = 300001;
    char *big = (char *) malloc (big_size + 1);
    big [0] = 'x';
    for (size_t i = 1; i < big_size; i += 2)
        memcpy (big + i, "\xc3\xa9", 2);
    big [big_size] = 0;
    for (int i = 0; i < 12; i++) {
        cJSON *row = cJSON_CreateObject ();
        cJSON_AddStringToObject (row, "function_id", "cccccccccccc");
        cJSON_AddStringToObject (row, "status", "success");
        cJSON_AddStringToObject (row, "input", big);
        char output [16];
        snprintf (output, sizeof output, "%d", i);
        cJSON_AddStringToObject (row, "output", output);
        cJSON_AddStringToObject (row, "logs", "printed\n");
        s_test_send_row (push, row);
    }
    free (big);
    s_test_flush (recorder);
    rows = store_query (store, "SELECT output, length (CAST (input AS BLOB)) AS size, input_truncated,"
                               " output_truncated, logs_truncated, stored_bytes, logs FROM invocations"
                               " WHERE function_id = 'cccccccccccc' ORDER BY created_at DESC, rowid DESC", "");
    assert (cJSON_GetArraySize (rows) == 5);
    cJSON *newest = cJSON_GetArrayItem (rows, 0);
    assert (streq (cJSON_GetObjectItem (newest, "output")->valuestring, "11"));
    assert (cJSON_GetObjectItem (newest, "size")->valueint == 199999);
    assert (cJSON_IsTrue (cJSON_GetObjectItem (newest, "input_truncated")));
    assert (cJSON_IsFalse (cJSON_GetObjectItem (newest, "output_truncated")));
    assert (cJSON_IsFalse (cJSON_GetObjectItem (newest, "logs_truncated")));
    assert (streq (cJSON_GetObjectItem (newest, "logs")->valuestring, "printed\n"));
    assert (cJSON_GetObjectItem (newest, "stored_bytes")->valueint == 199999 + 2 + 8);
    cJSON_Delete (rows);
    //  A cut log ends in a line that says so, within the cap
    cJSON *row = cJSON_CreateObject ();
    cJSON_AddStringToObject (row, "function_id", "cccccccccccc");
    cJSON_AddStringToObject (row, "status", "success");
    char *long_logs = (char *) malloc (300001);
    memset (long_logs, 'y', 300000);
    long_logs [300000] = 0;
    cJSON_AddStringToObject (row, "logs", long_logs);
    free (long_logs);
    s_test_send_row (push, row);
    s_test_flush (recorder);
    rows = store_query (store, "SELECT logs, logs_truncated FROM invocations WHERE function_id = 'cccccccccccc'"
                               " ORDER BY created_at DESC, rowid DESC", "");
    const char *cut_logs = cJSON_GetObjectItem (cJSON_GetArrayItem (rows, 0), "logs")->valuestring;
    assert (strlen (cut_logs) <= 200000 && strlen (cut_logs) > 199000);
    assert (strstr (cut_logs, "yyy\n[clowdy: logs truncated: this record keeps the first "));
    assert (cJSON_IsTrue (cJSON_GetObjectItem (cJSON_GetArrayItem (rows, 0), "logs_truncated")));
    cJSON_Delete (rows);
    //  The row retention of the other function is untouched by this one's bytes
    cJSON *kept = store_query_row (store, "SELECT count(*) AS n FROM invocations WHERE function_id = 'aaaaaaaaaaaa'", "");
    assert (cJSON_GetObjectItem (kept, "n")->valueint == 10);
    cJSON_Delete (kept);

    //  recorder_sync: a row sent is in the store when it returns, long
    //  before the batch's delay, every time
    for (int i = 0; i < 20; i++) {
        char text [160];
        snprintf (text, sizeof text, "{\"function_id\":\"aaaaaaaaaaaa\",\"status\":\"success\","
                  "\"output\":\"synced%d\",\"init_us\":1234,\"queue_us\":56}", i);
        assert (msg_send_record (push, NULL, text) == 0);
        assert (recorder_sync () == 0);
        char output [16];
        snprintf (output, sizeof output, "synced%d", i);
        cJSON *synced = store_query_row (store, "SELECT count(*) AS n, max (init_us) AS init,"
                                  " max (queue_us) AS queue FROM invocations WHERE output = ?", "s", output);
        assert (synced && cJSON_GetObjectItem (synced, "n")->valueint == 1);
        assert (cJSON_GetObjectItem (synced, "init")->valueint == 1234);
        assert (cJSON_GetObjectItem (synced, "queue")->valueint == 56);
        cJSON_Delete (synced);
    }

    //  Rows that nobody asks for are written by themselves, within the
    //  batch's delay: a burst (read by looks after the first row woke the
    //  recorder), then, once that batch is written, a single row (the
    //  inbox is watched again). Waited for generously, never forced
    for (int round = 0; round < 2; round++) {
        int rows = round == 0 ? 8 : 1;    //  Within --retention 10
        for (int i = 0; i < rows; i++) {
            char text [160];
            snprintf (text, sizeof text, "{\"function_id\":\"cccccccccccc\",\"status\":\"success\","
                      "\"output\":\"unforced%d-%d\"}", round, i);
            assert (msg_send_record (push, NULL, text) == 0);
            if (i % 3 == 2)
                zclock_sleep (7);               //  Past a look
        }
        char pattern [32];
        snprintf (pattern, sizeof pattern, "unforced%d-%%", round);
        int written = 0;
        for (int tries = 0; tries < 500 && written < rows; tries++) {
            zclock_sleep (10);
            cJSON *count = store_query_row (store, "SELECT count(*) AS n FROM invocations WHERE output LIKE ?",
                                            "s", pattern);
            written = count ? cJSON_GetObjectItem (count, "n")->valueint : 0;
            cJSON_Delete (count);
        }
        assert (written == rows);
    }

    //  A clean stop writes what is still waiting
    assert (msg_send_record (push, NULL,
                             "{\"function_id\":\"aaaaaaaaaaaa\",\"status\":\"error\",\"output\":\"late\"}") == 0);
    zclock_sleep (10);
    zactor_destroy (&recorder);
    cJSON *late = store_query_row (store, "SELECT count(*) AS n FROM invocations WHERE output = 'late'", "");
    assert (late && cJSON_GetObjectItem (late, "n")->valueint == 1);
    cJSON_Delete (late);
    assert (recorder_sync () == 0);     //  None runs now: nothing to wait for

    zsock_destroy (&push);
    store_destroy (&store);
    endpoints_destroy (&endpoints);
    config_reset (&config);
    char command [256];
    snprintf (command, sizeof command, "rm -rf %s", data_dir);
    if (system (command)) { }
    printf ("OK\n");
}
