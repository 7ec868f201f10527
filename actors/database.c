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
    A failed provision leaves nothing at the provider (each provider cleans
    up) and a row in state failed with the provider's message for the user.
    A failed deprovision keeps the row and is retried every S_RETRY_MS.

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
#define S_RETRY_MS          10000       //  a failed deprovision is tried again after this

//  --------------------------------------------------------------------------
//  The provider thread

typedef struct {
    store_t *store;
    dbprovider_t *provider;
    zhashx_t *retry_at;             //  project id -> monotonic ms of its next deprovision try
} s_thread_t;

static void
s_retry_free (void **item)
{
    free (*item);
    *item = NULL;
}

//  Record a failed provision (the provider has cleaned up)
static void
s_job_failed (s_thread_t *self, const char *project_id, const char *error)
{
    char now [UTIL_TIME_SIZE];
    util_now_iso (now);
    store_exec (self->store, "UPDATE project_databases SET state = 'failed', detail = ?, updated_at = ?"
                " WHERE project_id = ? AND state = 'provisioning'", "sss", error, now, project_id);
    zsys_warning ("database: provisioning for project %s failed: %s", project_id, error);
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
    if (dbprovider_provision (self->provider, project_id, &info, error, sizeof error)) {
        s_job_failed (self, project_id, error);
        return;
    }
    util_now_iso (now);
    int rc = store_exec (self->store,
        "UPDATE project_databases SET state = 'ready', database_url = ?, mount_source = ?, mount_target = ?,"
        " file_limit_mb = ?, external_id = ?, detail = NULL, updated_at = ?"
        " WHERE project_id = ? AND state = 'provisioning'", "sssisss",
        info.url, info.mount_source, info.mount_target, info.file_limit_mb, info.external_id, now, project_id);
    if (rc == 1) {
        zsys_info ("database: project %s has its %s database", project_id, provider);
        cJSON_AddItemToArray (changed, cJSON_CreateString (project_id));
    }
    else {
        //  Deprovisioned or deleted while we made it: it goes again now
        //  (the row itself, if any, is the next scan's job)
        zsys_info ("database: project %s no longer wants the database just made: removing it", project_id);
        if (dbprovider_deprovision (self->provider, project_id, info.external_id, error, sizeof error))
            zsys_error ("database: could not remove project %s's new database: %s", project_id, error);
        else
        if (rc == 0 && info.external_id)
            //  The row's deprovision will find no id: it is done already
            store_exec (self->store, "UPDATE project_databases SET external_id = NULL"
                        " WHERE project_id = ? AND state = 'deprovisioning'", "s", project_id);
    }
    dbprovider_info_reset (&info);
}

static void
s_deprovision (s_thread_t *self, const char *project_id, const char *provider, const char *external_id,
               cJSON *changed)
{
    int64_t *retry = (int64_t *) zhashx_lookup (self->retry_at, project_id);
    if (retry && *retry > zclock_mono ())
        return;
    char error [DBPROVIDER_ERROR_SIZE];
    if (provider && strneq (provider, dbprovider_name (self->provider))) {
        snprintf (error, sizeof error, "This database was made by the %s provider; the server now runs %s",
                  provider, dbprovider_name (self->provider));
        if (!retry)
            zsys_error ("database: cannot deprovision project %s: %s", project_id, error);
    }
    else
    if (dbprovider_deprovision (self->provider, project_id, external_id, error, sizeof error) == 0) {
        store_exec (self->store, "DELETE FROM project_databases WHERE project_id = ? AND state = 'deprovisioning'",
                    "s", project_id);
        zhashx_delete (self->retry_at, project_id);
        zsys_info ("database: project %s's database is gone", project_id);
        cJSON_AddItemToArray (changed, cJSON_CreateString (project_id));
        return;
    }
    else
        zsys_warning ("database: deprovisioning project %s failed (tried again in %d s): %s",
                      project_id, S_RETRY_MS / 1000, error);
    store_exec (self->store, "UPDATE project_databases SET detail = ? WHERE project_id = ?", "ss", error, project_id);
    int64_t *next = (int64_t *) malloc (sizeof (int64_t));
    *next = zclock_mono () + S_RETRY_MS;
    zhashx_update (self->retry_at, project_id, next);
}

static void
s_scan (s_thread_t *self, cJSON *changed)
{
    cJSON *jobs = store_query (self->store,
        "SELECT project_id, state, provider, external_id FROM project_databases"
        " WHERE state IN ('provisioning', 'deprovisioning') ORDER BY updated_at LIMIT 32", NULL);
    cJSON *job;
    cJSON_ArrayForEach (job, jobs) {
        const char *project_id = cJSON_GetStringValue (cJSON_GetObjectItem (job, "project_id"));
        const char *state = cJSON_GetStringValue (cJSON_GetObjectItem (job, "state"));
        if (!project_id || !state)
            continue;               //  dbprovider checks the id itself
        if (streq (state, "provisioning"))
            s_provision (self, project_id, changed);
        else
            s_deprovision (self, project_id, cJSON_GetStringValue (cJSON_GetObjectItem (job, "provider")),
                           cJSON_GetStringValue (cJSON_GetObjectItem (job, "external_id")), changed);
    }
    cJSON_Delete (jobs);
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
    self.retry_at = zhashx_new ();
    zhashx_set_destructor (self.retry_at, s_retry_free);
    if (self.provider)
        actor_ready (pipe);
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
    zhashx_destroy (&self.retry_at);
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
