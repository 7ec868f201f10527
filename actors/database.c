/*  =========================================================================
    database - provisions and removes each project's managed database

    What is asked lives in SQLite, not in messages: the control plane's
    handlers (core/api_projects.c) record a wish in project_databases
    (state provisioning or deprovisioning; deleting a project makes its
    database a deprovisioning job) and answer at once. This actor does the
    jobs. Kept in the store, a job survives a restart of the server half
    way (the provider's steps are idempotent, so it is simply done again),
    and the control plane needs no socket to us.

    The work itself blocks (the file system, libpq, libcurl: core/
    dbprovider*.c, one provider chosen by --database-provider), so it runs
    on a provider thread with its own store connection, never on this
    loop. The loop only paces it: every S_SCAN_MS, when the thread is idle,
    a DB_SCAN goes down; the thread does every job it finds and answers
    DB_SCANNED with the projects whose database became ready or went away;
    for each, we send gateway INVALIDATE "project ID", which drops its
    cached function contexts (DATABASE_URL and the sandbox mount are part
    of them) and retires the project's warm environments, as an env var
    change does.

    Each provider call is bounded (connect and statement timeouts, HTTP
    timeouts, a deadline for Neon's operations). If a scan still outlasts
    S_SCAN_DEADLINE_MS we say so in the log once; nothing else waits on it.

    Races: a job's outcome is written only if the row is still in the state
    the job started from (UPDATE ... WHERE state = 'provisioning'). A
    database made for a row that was meanwhile deprovisioned or its project
    deleted is removed again at once, so nothing half-made stays behind.
    A failed provision leaves a row in state failed with the provider's
    message for the user; the provider removes what it made.

    Retries: a failed deprovision keeps its row, and is tried again after
    S_RETRY_MS, doubled after each failure up to S_RETRY_MAX_MS (the row's
    attempts and retry_at). A scan takes only jobs that are due, new ones
    first, so jobs that can never succeed (a provider that keeps failing,
    rows of the provider the server ran before) are retried for ever
    without delaying anyone else's.

    Leftovers: what a provider makes under an id of its own (a Neon project)
    goes into database_leftovers as soon as it exists (the made handler),
    and leaves it in the same transaction that makes the row ready. A
    provision that failed but could not remove what it made, a database
    made for a row that no longer wants it whose removal failed, or one
    whose provision died with the server stays there, and is deleted by the
    scans with the same backoff until that works. The user's row is not
    involved: it says failed (and may be provisioned again, or its project
    deleted) while its leftover waits.

    Pipe commands (besides $TERM):
        zstr_send (actor, "PING");      // answers "PONG"
    ========================================================================= */

#include <czmq.h>
#include "actors/database.h"
#include "broker/actor.h"
#include "broker/endpoints.h"
#include "broker/msg.h"
#include "core/config.h"
#include "core/dbprovider.h"
#include "core/store.h"
#include "core/util.h"

#define S_SCAN_MS           250         //  how often the jobs are looked for
#define S_SCAN_DEADLINE_MS  300000      //  a scan longer than this is logged
#define S_SCAN_JOBS         32          //  jobs, and leftovers, one scan takes at most
#define S_RETRY_MS          10000       //  a failed job is tried again after this,
#define S_RETRY_MAX_MS      300000      //  doubled after each failure up to this

//  --------------------------------------------------------------------------
//  The provider thread

typedef struct {
    store_t *store;
    dbprovider_t *provider;
    char *made;                     //  External id the running provision made, or NULL
} s_thread_t;

//  When a job or leftover that has failed failures times in a row is tried
//  again (ms since the epoch)
static int64_t
s_retry_at (int failures)
{
    int64_t wait = S_RETRY_MS;
    while (--failures > 0 && wait < S_RETRY_MAX_MS)
        wait *= 2;
    return zclock_time () + (wait < S_RETRY_MAX_MS? wait: S_RETRY_MAX_MS);
}

//  The provider made something under an id of its own: a leftover, until
//  the provision ends ready (s_provision) or its deletion works
static void
s_made (const char *project_id, const char *external_id, void *arg)
{
    s_thread_t *self = (s_thread_t *) arg;
    zstr_free (&self->made);
    self->made = strdup (external_id);
    char now [UTIL_TIME_SIZE];
    util_now_iso (now);
    if (store_exec (self->store, "INSERT INTO database_leftovers (provider, external_id, project_id, created_at)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING", "ssss",
                    dbprovider_name (self->provider), external_id, project_id, now) < 0)
        zsys_error ("database: cannot record project %s's new database %s: a crash now would leave it behind",
                    project_id, external_id);
}

static void
s_leftover_gone (s_thread_t *self, const char *provider, const char *external_id)
{
    store_exec (self->store, "DELETE FROM database_leftovers WHERE provider = ? AND external_id = ?",
                "ss", provider, external_id);
}

//  Its deletion failed (failures times in a row, this one counted): it is
//  tried again later (recorded now if the made handler could not)
static void
s_leftover_failed (s_thread_t *self, const char *provider, const char *external_id, const char *project_id,
                   int failures, const char *error)
{
    char now [UTIL_TIME_SIZE];
    util_now_iso (now);
    if (store_exec (self->store,
        "INSERT INTO database_leftovers (provider, external_id, project_id, attempts, retry_at, detail, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (provider, external_id) DO UPDATE SET"
        " attempts = excluded.attempts, retry_at = excluded.retry_at, detail = excluded.detail", "sssiIss",
        provider, external_id, project_id, failures, s_retry_at (failures), error, now) != 1)
        zsys_error ("database: cannot record %s, left by project %s: it stays behind", external_id, project_id);
}

//  Record a failed provision
static void
s_job_failed (s_thread_t *self, const char *project_id, const char *error)
{
    char now [UTIL_TIME_SIZE];
    util_now_iso (now);
    store_exec (self->store, "UPDATE project_databases SET state = 'failed', detail = ?, updated_at = ?"
                " WHERE project_id = ? AND state = 'provisioning'", "sss", error, now, project_id);
    zsys_warning ("database: provisioning for project %s failed: %s", project_id, error);
}

//  The row ready with info, and what the provider made no leftover, at once.
//  1, 0 if the row is no longer provisioning, or -1 (store failed)
static int
s_job_ready (s_thread_t *self, const char *project_id, dbprovider_info_t *info)
{
    char now [UTIL_TIME_SIZE];
    util_now_iso (now);
    if (store_begin (self->store))
        return -1;
    int rc = store_exec (self->store,
        "UPDATE project_databases SET state = 'ready', database_url = ?, mount_source = ?, mount_target = ?,"
        " file_limit_mb = ?, external_id = ?, detail = NULL, updated_at = ?"
        " WHERE project_id = ? AND state = 'provisioning'", "sssisss",
        info->url, info->mount_source, info->mount_target, info->file_limit_mb, info->external_id, now, project_id);
    if (rc == 1 && info->external_id
    &&  store_exec (self->store, "DELETE FROM database_leftovers WHERE provider = ? AND external_id = ?",
                    "ss", dbprovider_name (self->provider), info->external_id) < 0)
        rc = -1;
    if (rc < 0 || store_commit (self->store)) {
        store_rollback (self->store);
        return -1;
    }
    return rc;
}

static void
s_provision (s_thread_t *self, const char *project_id, cJSON *changed)
{
    char now [UTIL_TIME_SIZE];
    util_now_iso (now);
    const char *provider = dbprovider_name (self->provider);
    if (store_exec (self->store, "UPDATE project_databases SET provider = ?, updated_at = ?"
                    " WHERE project_id = ? AND state = 'provisioning'", "sss", provider, now, project_id) != 1)
        return;                     //  Changed meanwhile, or the store failed: next scan
    dbprovider_info_t info;
    char error [DBPROVIDER_ERROR_SIZE];
    zstr_free (&self->made);
    if (dbprovider_provision (self->provider, project_id, &info, error, sizeof error)) {
        s_job_failed (self, project_id, error);
        //  What it made and could not remove is deleted later
        if (info.external_id)
            s_leftover_failed (self, provider, info.external_id, project_id, 1, "Left by a failed provision");
        else
        if (self->made)
            s_leftover_gone (self, provider, self->made);
        dbprovider_info_reset (&info);
        return;
    }
    int rc = s_job_ready (self, project_id, &info);
    if (rc == 1) {
        zsys_info ("database: project %s has its %s database", project_id, provider);
        cJSON_AddItemToArray (changed, cJSON_CreateString (project_id));
    }
    else {
        //  Deprovisioned or deleted while we made it (or the store failed:
        //  the row is provisioned again): it goes again now. The row itself,
        //  if any, is the next scan's job: it has no external id, so that is
        //  the project id's files or database
        if (rc == 0)
            zsys_info ("database: project %s no longer wants the database just made: removing it", project_id);
        else
            zsys_error ("database: cannot record project %s's new database: removing it", project_id);
        if (dbprovider_deprovision (self->provider, project_id, info.external_id, error, sizeof error) == 0) {
            if (info.external_id)
                s_leftover_gone (self, provider, info.external_id);
        }
        else
        if (info.external_id) {
            zsys_warning ("database: could not remove project %s's new database %s (tried again later): %s",
                          project_id, info.external_id, error);
            s_leftover_failed (self, provider, info.external_id, project_id, 1, error);
        }
        else
            zsys_error ("database: could not remove project %s's new database: %s", project_id, error);
    }
    dbprovider_info_reset (&info);
}

static void
s_deprovision (s_thread_t *self, cJSON *job, cJSON *changed)
{
    const char *project_id = cJSON_GetStringValue (cJSON_GetObjectItem (job, "project_id"));
    const char *provider = cJSON_GetStringValue (cJSON_GetObjectItem (job, "provider"));
    const char *external_id = cJSON_GetStringValue (cJSON_GetObjectItem (job, "external_id"));
    int failures = (int) cJSON_GetNumberValue (cJSON_GetObjectItem (job, "attempts")) + 1;
    char error [DBPROVIDER_ERROR_SIZE];
    if (provider && strneq (provider, dbprovider_name (self->provider))) {
        snprintf (error, sizeof error, "This database was made by the %s provider; the server now runs %s",
                  provider, dbprovider_name (self->provider));
        if (failures == 1)
            zsys_error ("database: cannot deprovision project %s: %s", project_id, error);
    }
    else
    if (dbprovider_deprovision (self->provider, project_id, external_id, error, sizeof error) == 0) {
        store_exec (self->store, "DELETE FROM project_databases WHERE project_id = ? AND state = 'deprovisioning'",
                    "s", project_id);
        zsys_info ("database: project %s's database is gone", project_id);
        cJSON_AddItemToArray (changed, cJSON_CreateString (project_id));
        return;
    }
    else
        zsys_warning ("database: deprovisioning project %s failed (%d times; tried again later): %s",
                      project_id, failures, error);
    store_exec (self->store, "UPDATE project_databases SET detail = ?, attempts = ?, retry_at = ?"
                " WHERE project_id = ? AND state = 'deprovisioning'", "siIs",
                error, failures, s_retry_at (failures), project_id);
}

//  Delete what a provision left behind
static void
s_leftover (s_thread_t *self, cJSON *leftover)
{
    const char *provider = cJSON_GetStringValue (cJSON_GetObjectItem (leftover, "provider"));
    const char *external_id = cJSON_GetStringValue (cJSON_GetObjectItem (leftover, "external_id"));
    const char *project_id = cJSON_GetStringValue (cJSON_GetObjectItem (leftover, "project_id"));
    int failures = (int) cJSON_GetNumberValue (cJSON_GetObjectItem (leftover, "attempts")) + 1;
    if (!provider || !external_id || !project_id)
        return;
    char error [DBPROVIDER_ERROR_SIZE];
    if (strneq (provider, dbprovider_name (self->provider))) {
        snprintf (error, sizeof error, "This database was made by the %s provider; the server now runs %s",
                  provider, dbprovider_name (self->provider));
        if (failures == 1)
            zsys_error ("database: cannot delete %s, left by project %s: %s", external_id, project_id, error);
    }
    else
    if (dbprovider_deprovision (self->provider, project_id, external_id, error, sizeof error) == 0) {
        s_leftover_gone (self, provider, external_id);
        zsys_info ("database: %s, left by project %s, is gone", external_id, project_id);
        return;
    }
    else
        zsys_warning ("database: deleting %s, left by project %s, failed (%d times; tried again later): %s",
                      external_id, project_id, failures, error);
    s_leftover_failed (self, provider, external_id, project_id, failures, error);
}

static void
s_scan (s_thread_t *self, cJSON *changed)
{
    //  Only what is due, new jobs first: one that failed waits for its
    //  retry_at, so however many keep failing they hide nothing (a retry_at
    //  further ahead than the longest wait is a clock that went back: due)
    int64_t now = zclock_time ();
    cJSON *jobs = store_query (self->store,
        "SELECT project_id, state, provider, external_id, attempts FROM project_databases"
        " WHERE state IN ('provisioning', 'deprovisioning') AND (retry_at <= ?1 OR retry_at > ?1 + ?2)"
        " ORDER BY retry_at, updated_at LIMIT ?3", "Iii", now, S_RETRY_MAX_MS, S_SCAN_JOBS);
    cJSON *job;
    cJSON_ArrayForEach (job, jobs) {
        const char *project_id = cJSON_GetStringValue (cJSON_GetObjectItem (job, "project_id"));
        const char *state = cJSON_GetStringValue (cJSON_GetObjectItem (job, "state"));
        if (!project_id || !state)
            continue;               //  dbprovider checks the id itself
        if (streq (state, "provisioning"))
            s_provision (self, project_id, changed);
        else
            s_deprovision (self, job, changed);
    }
    cJSON_Delete (jobs);
    //  Leftovers are looked at only here, between provisions: one recorded
    //  by a provision under way is never taken for one left behind
    cJSON *leftovers = store_query (self->store,
        "SELECT provider, external_id, project_id, attempts FROM database_leftovers"
        " WHERE retry_at <= ?1 OR retry_at > ?1 + ?2 ORDER BY retry_at LIMIT ?3", "Iii",
        now, S_RETRY_MAX_MS, S_SCAN_JOBS);
    cJSON *leftover;
    cJSON_ArrayForEach (leftover, leftovers)
        s_leftover (self, leftover);
    cJSON_Delete (leftovers);
}

//  Answers its start with "" or the reason it cannot work, then serves DB_SCAN
static void
s_provider_thread (zsock_t *pipe, void *args_)
{
    const config_t *config = (const config_t *) args_;
    s_thread_t self = { 0 };
    char error [DBPROVIDER_ERROR_SIZE] = "";
    self.store = store_open (config->data_dir);
    if (!self.store)
        snprintf (error, sizeof error, "cannot open the store in data dir '%s'", config->data_dir);
    else
        self.provider = dbprovider_new (config, error, sizeof error);
    if (self.provider) {
        dbprovider_set_made_handler (self.provider, s_made, &self);
        actor_ready (pipe);
    }
    else
        actor_failed (pipe, "%s", error);
    bool terminated = !self.provider;
    while (!terminated) {
        msg_t *msg = msg_recv_pipe (pipe, &terminated);
        if (msg && msg_id (msg) == MSG_ID_DB_SCAN) {
            cJSON *changed = cJSON_CreateArray ();
            s_scan (&self, changed);
            char *text = cJSON_PrintUnformatted (changed);
            if (msg_send_db_scanned (pipe, NULL, text))
                zsys_error ("database: provider thread cannot answer its actor");
            free (text);
            cJSON_Delete (changed);
        }
        else
        if (msg)
            zsys_warning ("database: provider thread: unexpected '%s'", msg_command (msg));
        msg_destroy (&msg);
    }
    zstr_free (&self.made);
    dbprovider_destroy (&self.provider);
    store_destroy (&self.store);
}


//  --------------------------------------------------------------------------
//  The actor

typedef struct {
    zsock_t *pipe;                  //  Actor command pipe
    zsock_t *gateway;               //  DEALER to gateway, for INVALIDATE
    msg_outbox_t *invalidates;      //  INVALIDATEs gateway's full queue could not take yet
    zactor_t *thread;               //  The provider thread
    int64_t scan_started;           //  When the DB_SCAN that is out went (monotonic ms), or 0
    bool late_logged;               //  Its lateness is in the log already
    bool terminated;                //  Did caller ask us to quit?
} self_t;

static void
s_handle_pipe (self_t *self)
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
        zsys_warning ("database: invalid pipe command '%s'", command);
    zstr_free (&command);
}

static void
s_handle_thread (self_t *self)
{
    msg_t *msg = msg_recv (zactor_sock (self->thread), false);
    if (!msg)
        return;
    if (msg_id (msg) == MSG_ID_DB_SCANNED) {
        self->scan_started = 0;
        if (self->late_logged)
            zsys_info ("database: the late scan ended");
        self->late_logged = false;
        cJSON *project;
        cJSON_ArrayForEach (project, msg_db_scanned_changed (msg)) {
            const char *project_id = cJSON_GetStringValue (project);
            if (!project_id)
                continue;
            char what [64];
            snprintf (what, sizeof what, "project %s", project_id);
            //  Must arrive, or warm environments keep the old DATABASE_URL:
            //  what gateway cannot take now waits, and goes on the next tick
            zmsg_t *invalidate = msg_encode_invalidate (NULL, what);
            msg_outbox_send (self->invalidates, &invalidate);
        }
    }
    else
        zsys_warning ("database: unexpected '%s' from the provider thread", msg_command (msg));
    msg_destroy (&msg);
}

static void
s_tick (self_t *self)
{
    int64_t now = zclock_mono ();
    if (self->scan_started) {
        if (!self->late_logged && now - self->scan_started > S_SCAN_DEADLINE_MS) {
            zsys_warning ("database: a provisioning scan has run for %d s", S_SCAN_DEADLINE_MS / 1000);
            self->late_logged = true;
        }
        return;
    }
    if (msg_send_db_scan (zactor_sock (self->thread), NULL) == 0)
        self->scan_started = now > 0? now: 1;
}

void
database_actor (zsock_t *pipe, void *args_)
{
    const actor_args_t *args = (const actor_args_t *) args_;
    self_t self = { .pipe = pipe };
    self.gateway = endpoints_connect (args->endpoints, "gateway", ZMQ_DEALER);
    if (!self.gateway) {
        actor_failed (pipe, "%s", endpoints_error ());
        return;
    }
    char *reason = NULL;
    //  The config outlives both: the thread reads it, never writes it
    self.thread = actor_start (s_provider_thread, (void *) args->config, "database provider", &reason);
    if (!self.thread) {
        zsock_destroy (&self.gateway);
        actor_failed (pipe, "database provider %s: %s", args->config->database_provider, reason);
        zstr_free (&reason);
        return;
    }
    self.invalidates = msg_outbox_new (self.gateway, MSG_OUTBOX_LIMIT);
    actor_ready (pipe);

    zpoller_t *poller = zpoller_new (pipe, zactor_sock (self.thread), NULL);
    int64_t next_tick = zclock_mono ();
    while (!self.terminated) {
        int64_t wait = next_tick - zclock_mono ();
        void *which = zpoller_wait (poller, wait < 0? 0: (int) wait);
        if (which == pipe)
            s_handle_pipe (&self);
        else
        if (which == zactor_sock (self.thread))
            s_handle_thread (&self);
        else
        if (zpoller_terminated (poller))
            break;
        if (zclock_mono () >= next_tick) {
            msg_outbox_flush (self.invalidates);
            s_tick (&self);
            next_tick = zclock_mono () + S_SCAN_MS;
        }
    }
    zpoller_destroy (&poller);
    //  The thread may be in a provider call: zactor_destroy waits for it,
    //  and every such call is bounded
    zactor_destroy (&self.thread);
    msg_outbox_destroy (&self.invalidates);
    zsock_destroy (&self.gateway);
}


//  --------------------------------------------------------------------------
//  Selftest: a provision and a deprovision with the sqlite provider, seen in
//  the store and as INVALIDATEs on a fake gateway

static cJSON *
s_test_row (store_t *store, const char *project_id)
{
    return store_query_row (store, "SELECT * FROM project_databases WHERE project_id = ?", "s", project_id);
}

static void
s_test_wait_state (store_t *store, const char *project_id, const char *state)
{
    for (int attempt = 0; attempt < 400; attempt++) {
        cJSON *row = s_test_row (store, project_id);
        const char *now = row? cJSON_GetStringValue (cJSON_GetObjectItem (row, "state")): NULL;
        bool done = state? now && streq (now, state): row == NULL;
        cJSON_Delete (row);
        if (done)
            return;
        zclock_sleep (50);
    }
    assert (!"database: state never came");
}

//  Wait until query (with ? for now, ms since the epoch) counts count as n
static void
s_test_wait_tried (store_t *store, const char *query, int count)
{
    for (int attempt = 0; attempt < 400; attempt++) {
        cJSON *row = store_query_row (store, query, "I", zclock_time ());
        bool done = row && (int) cJSON_GetNumberValue (cJSON_GetObjectItem (row, "n")) == count;
        cJSON_Delete (row);
        if (done)
            return;
        zclock_sleep (50);
    }
    assert (!"database: the jobs were never tried");
}

static void
s_test_expect_invalidate (zsock_t *gateway, const char *project_id)
{
    zsock_set_rcvtimeo (gateway, 20000);
    msg_t *msg = msg_recv (gateway, true);
    assert (msg && msg_id (msg) == MSG_ID_INVALIDATE);
    char *expected = zsys_sprintf ("project %s", project_id);
    assert (streq (msg_invalidate_what (msg), expected));
    zstr_free (&expected);
    msg_destroy (&msg);
}

void
database_test (bool verbose)
{
    printf ("database: ");
    char template [] = "/tmp/clowdy-database-XXXXXX";
    char *data_dir = mkdtemp (template);
    assert (data_dir);
    config_t config;
    char error [256];
    char *argv [] = { "clowdy", "--data-dir", data_dir, NULL };
    assert (config_parse (&config, 3, argv, error, sizeof error) == 0);
    endpoints_t *endpoints = endpoints_new ();
    endpoints_set (endpoints, "gateway", "inproc://database-test-gateway");
    zsock_t *gateway = zsock_new_router ("inproc://database-test-gateway");
    assert (gateway);
    actor_args_t args = { .config = &config, .endpoints = endpoints };
    store_t *store = store_open (data_dir);
    assert (store);
    assert (store_exec (store, "INSERT INTO projects (id, user_id, name, slug, created_at, updated_at)"
                        " VALUES ('abcdefabcdef', 'u', 'p', 'p', 'x', 'x')", NULL) == 1);
    assert (store_exec (store, "INSERT INTO project_databases (project_id, state, created_at, updated_at)"
                        " VALUES ('abcdefabcdef', 'provisioning', 'x', 'x')", NULL) == 1);
    //  Jobs that can never succeed, older than it and more than a scan
    //  takes (databases of a provider the server no longer runs), and a
    //  leftover of that provider: they wait for their retries, and hide
    //  nothing meanwhile
    for (int index = 0; index < 40; index++) {
        char project_id [UTIL_ID_SIZE];
        snprintf (project_id, sizeof project_id, "0000000000%02d", index);
        assert (store_exec (store, "INSERT INTO project_databases (project_id, provider, state, created_at, updated_at)"
                            " VALUES (?, 'neon', 'deprovisioning', 'a', 'a')", "s", project_id) == 1);
    }
    assert (store_exec (store, "INSERT INTO database_leftovers (provider, external_id, project_id, created_at)"
                        " VALUES ('neon', 'p-left', '000000000000', 'a')", NULL) == 1);

    zactor_t *actor = actor_start (database_actor, &args, "database", NULL);
    assert (actor);
    zstr_send (actor, "PING");
    char *reply = zstr_recv (actor);
    assert (reply && streq (reply, "PONG"));
    zstr_free (&reply);

    //  Provisioned: ready, with the URL and the mount, and the gateway told
    s_test_wait_state (store, "abcdefabcdef", "ready");
    s_test_expect_invalidate (gateway, "abcdefabcdef");
    cJSON *row = s_test_row (store, "abcdefabcdef");
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (row, "provider")), "sqlite"));
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (row, "database_url")),
                   "sqlite:////opt/database/db.sqlite3"));
    char *file = zsys_sprintf ("%s/db.sqlite3", cJSON_GetStringValue (cJSON_GetObjectItem (row, "mount_source")));
    assert (zsys_file_exists (file));
    cJSON_Delete (row);
    s_test_wait_tried (store, "SELECT count(*) AS n FROM project_databases WHERE state = 'deprovisioning'"
                       " AND attempts = 1 AND retry_at > ? AND detail LIKE '%neon provider%'", 40);
    s_test_wait_tried (store, "SELECT count(*) AS n FROM database_leftovers WHERE external_id = 'p-left'"
                       " AND attempts = 1 AND retry_at > ? AND detail LIKE '%neon provider%'", 1);
    store_function_t fn = { 0 };
    assert (store_exec (store, "INSERT INTO functions (id, user_id, project_id, name, active_version, created_at,"
                        " updated_at) VALUES ('fedcbafedcba', 'u', 'abcdefabcdef', 'f', 1, 'x', 'x')", NULL) == 1);
    assert (store_exec (store, "INSERT INTO function_versions (function_id, version, code, created_at, updated_at)"
                        " VALUES ('fedcbafedcba', 1, 'x=1', 'x', 'x')", NULL) == 1);
    assert (store_exec (store, "INSERT INTO env_vars (id, project_id, key, value, created_at, updated_at)"
                        " VALUES ('e1', 'abcdefabcdef', 'DATABASE_URL', 'mine', 'x', 'x')", NULL) == 1);
    assert (store_function_load (store, "fedcbafedcba", &fn) == 0);
    assert (streq (fn.env [0], "DATABASE_URL=sqlite:////opt/database/db.sqlite3"));
    assert (fn.env [1] == NULL);
    assert (streq (fn.database_mount_target, "/opt/database"));
    assert (fn.database_file_limit_mb == 100);
    store_function_reset (&fn);

    //  The project is deleted (as api_project_delete does): gone, files too
    assert (store_exec (store, "UPDATE project_databases SET state = 'deprovisioning' WHERE project_id = 'abcdefabcdef'",
                        NULL) == 1);
    s_test_wait_state (store, "abcdefabcdef", NULL);
    s_test_expect_invalidate (gateway, "abcdefabcdef");
    assert (!zsys_file_exists (file));
    zstr_free (&file);

    zactor_destroy (&actor);
    //  A provider that cannot work is a start-up failure with a reason
    config_reset (&config);
    char *bad [] = { "clowdy", "--data-dir", "/nonexistent/clowdy-db", NULL };
    assert (config_parse (&config, 3, bad, error, sizeof error) == 0);
    char *reason = NULL;
    assert (actor_start (database_actor, &args, "database", &reason) == NULL);
    assert (reason && strstr (reason, "/nonexistent/clowdy-db"));
    if (verbose)
        printf ("(%s) ", reason);
    zstr_free (&reason);

    store_destroy (&store);
    zsock_destroy (&gateway);
    endpoints_destroy (&endpoints);
    config_reset (&config);
    zsys_dir_delete ("%s/databases", data_dir);
    char *path = zsys_sprintf ("%s/clowdy.db", data_dir);
    unlink (path);
    zstr_free (&path);
    path = zsys_sprintf ("%s/clowdy.db-wal", data_dir);
    unlink (path);
    zstr_free (&path);
    path = zsys_sprintf ("%s/clowdy.db-shm", data_dir);
    unlink (path);
    zstr_free (&path);
    rmdir (data_dir);
    printf ("OK\n");
}
