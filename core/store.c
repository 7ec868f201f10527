/*  =========================================================================
    store - the SQLite store: schema, migrations, and the queries the invoke
    path needs

    Why: every piece of control data (projects, functions and their versions,
    env vars, routes, invocation records, API tokens) lives in one SQLite
    file, so that a laptop install needs nothing else running.

    How: a store_t wraps one sqlite3 connection, opened in WAL mode with
    foreign keys on, synchronous=NORMAL (in WAL mode a commit appends to the
    WAL file before returning, so only an OS crash or power cut can lose the
    last commits, never a kill -9 of the process) and a 5 s busy timeout so
    that connections of other threads wait for each other rather than fail.
    Each thread or actor opens its own store_t.

    Migrations are numbered SQL scripts in s_migrations; store_new applies
    those above the highest version recorded in schema_migrations, all in one
    IMMEDIATE transaction, so that two processes (or two actors) starting at
    once apply them exactly once. Never edit a migration that has shipped:
    append a new one.

    Statements are prepared once per connection and cached by their SQL text
    (a zhashx of sqlite3_stmt); store_prepare hands back the cached one reset.

    Invariants kept by the schema:
    - project slugs are globally unique (they are public gateway URLs);
    - deleting a project cascades to its functions, their versions,
      invocations and routes, and its env vars;
    - function_stats holds per-function invocation counters kept by a
      trigger on inserts into invocations, so that /api/stats answers in
      O(functions) even over millions of invocation rows. They count every
      invocation recorded since the function was created: pruning old rows
      (retention) does not lower them; deleting the function drops them.
      The same trigger keeps function_durations (a log-scale histogram of
      durations per function, for percentiles) and function_days (counts per
      function per UTC day), with the same rules.
    ========================================================================= */

#include <czmq.h>
#include "core/store.h"
#include "core/util.h"

struct _store_t {
    sqlite3 *db;                    //  The connection
    zhashx_t *statements;           //  SQL text -> sqlite3_stmt *, prepared once
    char *path;                     //  File path, for log messages
};

//  Numbered migrations: entry N-1 is migration N. Append only.
static const char *s_migrations [] = {
    //  1: the initial schema
    "CREATE TABLE projects ("
    "    id TEXT PRIMARY KEY,"
    "    user_id TEXT NOT NULL,"
    "    name TEXT NOT NULL,"
    "    slug TEXT NOT NULL UNIQUE,"
    "    description TEXT NOT NULL DEFAULT '',"
    "    status TEXT NOT NULL DEFAULT 'active',"
    "    requirements_txt TEXT NOT NULL DEFAULT '',"
    "    requirements_hash TEXT,"
    "    created_at TEXT NOT NULL,"
    "    updated_at TEXT NOT NULL);"
    "CREATE INDEX projects_by_user ON projects (user_id, created_at);"

    "CREATE TABLE functions ("
    "    id TEXT PRIMARY KEY,"
    "    user_id TEXT NOT NULL,"
    "    project_id TEXT REFERENCES projects (id) ON DELETE CASCADE,"
    "    name TEXT NOT NULL,"
    "    description TEXT NOT NULL DEFAULT '',"
    "    runtime TEXT NOT NULL DEFAULT 'python',"
    "    status TEXT NOT NULL DEFAULT 'active',"
    "    network_enabled BOOLEAN NOT NULL DEFAULT 0,"
    "    timeout_seconds INTEGER NOT NULL DEFAULT 30,"
    "    memory_mb INTEGER NOT NULL DEFAULT 128,"
    "    active_version INTEGER NOT NULL DEFAULT 1,"
    "    created_at TEXT NOT NULL,"
    "    updated_at TEXT NOT NULL);"
    "CREATE INDEX functions_by_user ON functions (user_id, created_at);"
    "CREATE INDEX functions_by_project ON functions (project_id, created_at);"

    "CREATE TABLE function_versions ("
    "    function_id TEXT NOT NULL REFERENCES functions (id) ON DELETE CASCADE,"
    "    version INTEGER NOT NULL,"
    "    code TEXT NOT NULL,"
    "    created_at TEXT NOT NULL,"
    "    updated_at TEXT NOT NULL,"
    "    PRIMARY KEY (function_id, version));"

    "CREATE TABLE env_vars ("
    "    id TEXT PRIMARY KEY,"
    "    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,"
    "    key TEXT NOT NULL,"
    "    value TEXT NOT NULL,"
    "    is_secret BOOLEAN NOT NULL DEFAULT 1,"
    "    created_at TEXT NOT NULL,"
    "    updated_at TEXT NOT NULL,"
    "    UNIQUE (project_id, key));"

    "CREATE TABLE routes ("
    "    id TEXT PRIMARY KEY,"
    "    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,"
    "    function_id TEXT NOT NULL REFERENCES functions (id) ON DELETE CASCADE,"
    "    method TEXT NOT NULL,"
    "    path TEXT NOT NULL,"
    "    description TEXT NOT NULL DEFAULT '',"
    "    created_at TEXT NOT NULL,"
    "    updated_at TEXT NOT NULL,"
    "    UNIQUE (project_id, method, path));"
    "CREATE INDEX routes_by_function ON routes (function_id);"

    "CREATE TABLE invocations ("
    "    id TEXT PRIMARY KEY,"
    "    function_id TEXT NOT NULL REFERENCES functions (id) ON DELETE CASCADE,"
    "    input TEXT,"
    "    output TEXT,"
    "    status TEXT NOT NULL,"
    "    error TEXT,"
    "    duration_us INTEGER NOT NULL DEFAULT 0,"
    "    source TEXT NOT NULL DEFAULT 'direct',"
    "    http_method TEXT,"
    "    http_path TEXT,"
    "    cold_start BOOLEAN NOT NULL DEFAULT 0,"
    "    version INTEGER NOT NULL DEFAULT 1,"
    "    logs TEXT,"
    "    peak_memory_kb INTEGER NOT NULL DEFAULT 0,"
    "    created_at TEXT NOT NULL);"
    "CREATE INDEX invocations_by_function ON invocations (function_id, created_at DESC);"
    "CREATE INDEX invocations_by_time ON invocations (created_at);"
    "CREATE INDEX invocations_by_status ON invocations (status);"

    //  Counters per function, kept by triggers, for /api/stats
    "CREATE TABLE function_stats ("
    "    function_id TEXT PRIMARY KEY REFERENCES functions (id) ON DELETE CASCADE,"
    "    invocations INTEGER NOT NULL DEFAULT 0,"
    "    successes INTEGER NOT NULL DEFAULT 0,"
    "    duration_us INTEGER NOT NULL DEFAULT 0);"
    "CREATE TRIGGER invocations_count AFTER INSERT ON invocations BEGIN"
    "    INSERT INTO function_stats (function_id, invocations, successes, duration_us)"
    "    VALUES (NEW.function_id, 1, NEW.status = 'success', NEW.duration_us)"
    "    ON CONFLICT (function_id) DO UPDATE SET"
    "        invocations = invocations + 1,"
    "        successes = successes + excluded.successes,"
    "        duration_us = duration_us + excluded.duration_us;"
    "END;"
    "CREATE TRIGGER invocations_uncount AFTER DELETE ON invocations BEGIN"
    "    UPDATE function_stats SET"
    "        invocations = invocations - 1,"
    "        successes = successes - (OLD.status = 'success'),"
    "        duration_us = duration_us - OLD.duration_us"
    "    WHERE function_id = OLD.function_id;"
    "END;"

    "CREATE TABLE api_tokens ("
    "    id TEXT PRIMARY KEY,"
    "    user_id TEXT NOT NULL,"
    "    name TEXT NOT NULL,"
    "    token_hash TEXT NOT NULL UNIQUE,"
    "    created_at TEXT NOT NULL,"
    "    last_used_at TEXT,"
    "    revoked_at TEXT);"
    "CREATE INDEX api_tokens_by_user ON api_tokens (user_id);",

    //  2: stats count every invocation ever recorded for a live function:
    //  retention pruning (the recorder keeps N rows per function) must not
    //  make /api/stats go down, and deleting rows gets cheaper
    "DROP TRIGGER invocations_uncount;",

    //  3: aggregates for the richer /api/stats, kept on insert like
    //  function_stats (so retention pruning never lowers them) and dropped
    //  with their function. function_durations is a log-scale histogram of
    //  durations per function: bucket 0 holds [0, 100 us), bucket b >= 1
    //  holds [100 us * 2^((b-1)/4), 100 us * 2^(b/4)), a quarter octave (19%)
    //  wide, and bucket 103 (from ~79 min) is open-ended; it keeps the count
    //  and the summed duration of its invocations. function_days counts
    //  invocations, errors and cold starts per function per UTC day (the
    //  first ten characters of created_at). Existing rows are folded in
    //  from the invocations that survive; older pruned ones are gone.
    "ALTER TABLE function_stats ADD COLUMN cold_starts INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE function_durations ("
    "    function_id TEXT NOT NULL REFERENCES functions (id) ON DELETE CASCADE,"
    "    bucket INTEGER NOT NULL,"
    "    invocations INTEGER NOT NULL,"
    "    duration_us INTEGER NOT NULL,"
    "    PRIMARY KEY (function_id, bucket)) WITHOUT ROWID;"
    "CREATE TABLE function_days ("
    "    function_id TEXT NOT NULL REFERENCES functions (id) ON DELETE CASCADE,"
    "    day TEXT NOT NULL,"
    "    invocations INTEGER NOT NULL,"
    "    errors INTEGER NOT NULL,"
    "    cold_starts INTEGER NOT NULL,"
    "    PRIMARY KEY (function_id, day)) WITHOUT ROWID;"
    "DROP TRIGGER invocations_count;"
    "CREATE TRIGGER invocations_count AFTER INSERT ON invocations BEGIN"
    "    INSERT INTO function_stats (function_id, invocations, successes, duration_us, cold_starts)"
    "    VALUES (NEW.function_id, 1, NEW.status = 'success', NEW.duration_us, NEW.cold_start != 0)"
    "    ON CONFLICT (function_id) DO UPDATE SET"
    "        invocations = invocations + 1,"
    "        successes = successes + excluded.successes,"
    "        duration_us = duration_us + excluded.duration_us,"
    "        cold_starts = cold_starts + excluded.cold_starts;"
    "    INSERT INTO function_durations (function_id, bucket, invocations, duration_us)"
    "    VALUES (NEW.function_id,"
    "            CASE WHEN NEW.duration_us < 100 THEN 0"
    "                 ELSE min (103, 1 + CAST (floor (4 * log2 (NEW.duration_us / 100.0)) AS INTEGER))"
    "            END, 1, max (NEW.duration_us, 0))"
    "    ON CONFLICT (function_id, bucket) DO UPDATE SET"
    "        invocations = invocations + 1,"
    "        duration_us = duration_us + excluded.duration_us;"
    "    INSERT INTO function_days (function_id, day, invocations, errors, cold_starts)"
    "    VALUES (NEW.function_id, substr (NEW.created_at, 1, 10), 1,"
    "            NEW.status != 'success', NEW.cold_start != 0)"
    "    ON CONFLICT (function_id, day) DO UPDATE SET"
    "        invocations = invocations + 1,"
    "        errors = errors + excluded.errors,"
    "        cold_starts = cold_starts + excluded.cold_starts;"
    "END;"
    "UPDATE function_stats SET cold_starts = ("
    "    SELECT count(*) FROM invocations i"
    "     WHERE i.function_id = function_stats.function_id AND i.cold_start != 0);"
    "INSERT INTO function_durations (function_id, bucket, invocations, duration_us)"
    "    SELECT function_id,"
    "           CASE WHEN duration_us < 100 THEN 0"
    "                ELSE min (103, 1 + CAST (floor (4 * log2 (duration_us / 100.0)) AS INTEGER))"
    "           END AS b, count(*), sum (max (duration_us, 0))"
    "      FROM invocations GROUP BY function_id, b;"
    "INSERT INTO function_days (function_id, day, invocations, errors, cold_starts)"
    "    SELECT function_id, substr (created_at, 1, 10) AS d, count(*),"
    "           sum (status != 'success'), sum (cold_start != 0)"
    "      FROM invocations GROUP BY function_id, d;",
    //  4: a failed call's output carries its error message, as the original
    //  UI reads it (API.md); records written before this get it too
    "UPDATE invocations SET output = error"
    " WHERE status != 'success' AND output IS NULL AND error IS NOT NULL;",
    //  5: managed databases (actors/database.c). No foreign key to projects
    //  on purpose: deleting a project turns its row into a deprovisioning
    //  job that outlives it until the provider has dropped the database.
    //  state: provisioning, ready, deprovisioning, failed (detail says why)
    "CREATE TABLE project_databases ("
    "    project_id TEXT PRIMARY KEY,"
    "    provider TEXT,"
    "    state TEXT NOT NULL,"
    "    database_url TEXT,"
    "    mount_source TEXT,"
    "    mount_target TEXT,"
    "    file_limit_mb INTEGER NOT NULL DEFAULT 0,"
    "    external_id TEXT,"
    "    detail TEXT,"
    "    created_at TEXT NOT NULL,"
    "    updated_at TEXT NOT NULL);",
    //  6: records are capped and retained by size (actors/recorder.c): a
    //  field longer than --record-max-bytes keeps its start and is marked
    //  truncated; stored_bytes is what a row's input, output, error and logs
    //  take, summed over the newest rows by the index (which covers it, so
    //  pruning never reads the rows' big fields) to keep --retention-mb.
    //  Rows written before this count what they hold.
    "ALTER TABLE invocations ADD COLUMN input_truncated BOOLEAN NOT NULL DEFAULT 0;"
    "ALTER TABLE invocations ADD COLUMN output_truncated BOOLEAN NOT NULL DEFAULT 0;"
    "ALTER TABLE invocations ADD COLUMN logs_truncated BOOLEAN NOT NULL DEFAULT 0;"
    "ALTER TABLE invocations ADD COLUMN stored_bytes INTEGER NOT NULL DEFAULT 0;"
    "UPDATE invocations SET stored_bytes ="
    "    coalesce (length (CAST (input AS BLOB)), 0) + coalesce (length (CAST (output AS BLOB)), 0)"
    "  + coalesce (length (CAST (error AS BLOB)), 0) + coalesce (length (CAST (logs AS BLOB)), 0);"
    "CREATE INDEX invocations_sizes ON invocations (function_id, created_at DESC, stored_bytes);",
    //  7: dependency layers (actors/builder.c, core/layers.h). A project's
    //  requirements_hash is the key of the layer its requirements_txt asks
    //  for (NULL: none); layer_active is the layer its functions run with
    //  now, which stays while a new one builds or when a build fails.
    //  layers has one row per key, shared by every project asking for it.
    //  state: queued, building, ready, failed (log says why); unused_since
    //  is set by the builder's sweep when no project names the layer, and
    //  the layer goes after a grace period.
    "ALTER TABLE projects ADD COLUMN layer_active TEXT;"
    "CREATE TABLE layers ("
    "    hash TEXT PRIMARY KEY,"
    "    requirements TEXT NOT NULL,"
    "    state TEXT NOT NULL,"
    "    log TEXT NOT NULL DEFAULT '',"
    "    size_bytes INTEGER NOT NULL DEFAULT 0,"
    "    built_at TEXT,"
    "    unused_since INTEGER,"
    "    created_at TEXT NOT NULL,"
    "    updated_at TEXT NOT NULL);"
    "CREATE INDEX projects_by_layer ON projects (requirements_hash);"
    "CREATE INDEX projects_by_active_layer ON projects (layer_active);",
    //  8: async invocations, their retries and schedules (actors/events.c,
    //  core/asyncq.c). An event is one async call: queued, running (an
    //  attempt is in flight), or failed (the dead-letter list); a finished
    //  one is deleted, in the recorder's transaction that writes its
    //  successful record. Its body is the request body as sent, forwarded
    //  as it is on every attempt. next_run_ms: Unix ms when it may run.
    //  Each attempt is an invocation record: attempt from 1, and
    //  parent_invocation_id the first attempt's id (NULL on the first).
    "ALTER TABLE functions ADD COLUMN max_retries INTEGER NOT NULL DEFAULT 2;"
    "ALTER TABLE invocations ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;"
    "ALTER TABLE invocations ADD COLUMN parent_invocation_id TEXT;"
    "CREATE TABLE async_events ("
    "    id TEXT PRIMARY KEY,"
    "    function_id TEXT NOT NULL REFERENCES functions (id) ON DELETE CASCADE,"
    "    body TEXT NOT NULL,"
    "    source TEXT NOT NULL DEFAULT 'async',"
    "    schedule_id TEXT,"
    "    status TEXT NOT NULL DEFAULT 'queued',"
    "    attempts INTEGER NOT NULL DEFAULT 0,"
    "    first_invocation_id TEXT NOT NULL,"
    "    current_invocation_id TEXT,"
    "    next_run_ms INTEGER NOT NULL,"
    "    error TEXT,"
    "    created_at TEXT NOT NULL,"
    "    updated_at TEXT NOT NULL,"
    "    failed_at TEXT);"
    "CREATE INDEX async_events_due ON async_events (status, next_run_ms);"
    "CREATE INDEX async_events_by_function ON async_events (function_id, status);"
    "CREATE TABLE schedules ("
    "    id TEXT PRIMARY KEY,"
    "    function_id TEXT NOT NULL REFERENCES functions (id) ON DELETE CASCADE,"
    "    expression TEXT NOT NULL,"
    "    enabled BOOLEAN NOT NULL DEFAULT 1,"
    "    next_run_ms INTEGER NOT NULL,"
    "    last_run_at TEXT,"
    "    created_at TEXT NOT NULL);"
    "CREATE INDEX schedules_due ON schedules (enabled, next_run_ms);"
    "CREATE INDEX schedules_by_function ON schedules (function_id, created_at);",
    //  9: the Lambda API's SigV4 needs a token as an HMAC key: tokens made
    //  from now on keep it sealed under a key outside the database
    //  (core/sigv4.h); NULL for older tokens, which cannot sign
    "ALTER TABLE api_tokens ADD COLUMN sigv4_secret TEXT;",
    //  10: where a call's time went besides the function (issue 15): the
    //  cold start's share of duration_us, and the wait before a worker took
    //  it. NULL on rows written before.
    "ALTER TABLE invocations ADD COLUMN init_us INTEGER;"
    "ALTER TABLE invocations ADD COLUMN queue_us INTEGER;",
    //  11: status "lost" is a platform failure (its worker was lost: the call
    //  may have run, its outcome is unknown), counted apart from the
    //  function's own errors: function_stats.lost, and function_days.errors
    //  no longer counts it. The trigger is migration 3's, with those two.
    "ALTER TABLE function_stats ADD COLUMN lost INTEGER NOT NULL DEFAULT 0;"
    "DROP TRIGGER invocations_count;"
    "CREATE TRIGGER invocations_count AFTER INSERT ON invocations BEGIN"
    "    INSERT INTO function_stats (function_id, invocations, successes, duration_us, cold_starts, lost)"
    "    VALUES (NEW.function_id, 1, NEW.status = 'success', NEW.duration_us, NEW.cold_start != 0,"
    "            NEW.status = 'lost')"
    "    ON CONFLICT (function_id) DO UPDATE SET"
    "        invocations = invocations + 1,"
    "        successes = successes + excluded.successes,"
    "        duration_us = duration_us + excluded.duration_us,"
    "        cold_starts = cold_starts + excluded.cold_starts,"
    "        lost = lost + excluded.lost;"
    "    INSERT INTO function_durations (function_id, bucket, invocations, duration_us)"
    "    VALUES (NEW.function_id,"
    "            CASE WHEN NEW.duration_us < 100 THEN 0"
    "                 ELSE min (103, 1 + CAST (floor (4 * log2 (NEW.duration_us / 100.0)) AS INTEGER))"
    "            END, 1, max (NEW.duration_us, 0))"
    "    ON CONFLICT (function_id, bucket) DO UPDATE SET"
    "        invocations = invocations + 1,"
    "        duration_us = duration_us + excluded.duration_us;"
    "    INSERT INTO function_days (function_id, day, invocations, errors, cold_starts)"
    "    VALUES (NEW.function_id, substr (NEW.created_at, 1, 10), 1,"
    "            NEW.status NOT IN ('success', 'lost'), NEW.cold_start != 0)"
    "    ON CONFLICT (function_id, day) DO UPDATE SET"
    "        invocations = invocations + 1,"
    "        errors = errors + excluded.errors,"
    "        cold_starts = cold_starts + excluded.cold_starts;"
    "END;",
    //  12: every record written (and every one retention deletes) updates
    //  each index of invocations. invocations_sizes (function_id,
    //  created_at DESC, stored_bytes) serves a function's newest-first list
    //  as well as invocations_by_function did, and nothing reads by time
    //  or status alone: three b-trees fewer per record (issue 15)
    "DROP INDEX invocations_by_function;"
    "DROP INDEX invocations_by_time;"
    "DROP INDEX invocations_by_status;",
    //  13: the database actor's retries (actors/database.c). A job that
    //  failed waits until retry_at (ms since the epoch), longer after each
    //  of its attempts, and a scan takes only jobs that are due, so jobs
    //  that keep failing never hide the others. database_leftovers: what a
    //  provider made outside under an id of its own (a Neon project) and no
    //  ready database owns, recorded as soon as it exists and dropped once
    //  its provision ends ready or its deletion worked: a crash half way, a
    //  failed provision whose cleanup failed too, or a provision raced by a
    //  delete leave nothing behind for ever. No foreign key, as above.
    "ALTER TABLE project_databases ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE project_databases ADD COLUMN retry_at INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX project_databases_jobs ON project_databases (retry_at, updated_at)"
    "    WHERE state IN ('provisioning', 'deprovisioning');"
    "CREATE TABLE database_leftovers ("
    "    provider TEXT NOT NULL,"
    "    external_id TEXT NOT NULL,"
    "    project_id TEXT NOT NULL,"
    "    attempts INTEGER NOT NULL DEFAULT 0,"
    "    retry_at INTEGER NOT NULL DEFAULT 0,"
    "    detail TEXT,"
    "    created_at TEXT NOT NULL,"
    "    PRIMARY KEY (provider, external_id));"
    "CREATE INDEX database_leftovers_due ON database_leftovers (retry_at);",
    //  14: each version's code size as a reply prints it (json_text_size:
    //  quotes and escapes counted; set by every INSERT of a version), so
    //  that a list of functions or versions keeps its code within a budget
    //  without reading the code it leaves out (core/api_functions.c). The
    //  index holds what a list reads of a version besides its code: a
    //  column stored after a 1 MiB code would be read through its overflow
    //  pages.
    "ALTER TABLE function_versions ADD COLUMN code_size INTEGER NOT NULL DEFAULT 0;"
    "UPDATE function_versions SET code_size = json_text_size (code);"
    "CREATE INDEX function_versions_sizes"
    "    ON function_versions (function_id, version, code_size, created_at, updated_at);",
    //  15: each function's code_bytes, the code_size of every version it
    //  keeps, kept by triggers, so that --max-code-mb sums a user's
    //  functions (an index of them) rather than all their versions
    //  (core/api_functions.c)
    "ALTER TABLE functions ADD COLUMN code_bytes INTEGER NOT NULL DEFAULT 0;"
    "UPDATE functions SET code_bytes ="
    "    (SELECT coalesce (sum (code_size), 0) FROM function_versions WHERE function_id = functions.id);"
    "CREATE INDEX functions_code_bytes ON functions (user_id, code_bytes);"
    "CREATE TRIGGER function_versions_bytes_in AFTER INSERT ON function_versions BEGIN"
    "    UPDATE functions SET code_bytes = code_bytes + new.code_size WHERE id = new.function_id;"
    "END;"
    "CREATE TRIGGER function_versions_bytes_out AFTER DELETE ON function_versions BEGIN"
    "    UPDATE functions SET code_bytes = code_bytes - old.code_size WHERE id = old.function_id;"
    "END;"
    "CREATE TRIGGER function_versions_bytes_set AFTER UPDATE OF code_size ON function_versions BEGIN"
    "    UPDATE functions SET code_bytes = code_bytes - old.code_size WHERE id = old.function_id;"
    "    UPDATE functions SET code_bytes = code_bytes + new.code_size WHERE id = new.function_id;"
    "END;",
};
#define MIGRATIONS (int) (sizeof s_migrations / sizeof s_migrations [0])

static void
s_statement_destroy (void **item_p)
{
    sqlite3_finalize ((sqlite3_stmt *) *item_p);
    *item_p = NULL;
}

//  Run SQL text without parameters (pragmas, migrations). 0 or STORE_ERROR.
static int
s_exec_script (store_t *self, const char *sql)
{
    char *error = NULL;
    if (sqlite3_exec (self->db, sql, NULL, NULL, &error) != SQLITE_OK) {
        zsys_error ("store: %s: %s", self->path, error? error: "unknown error");
        sqlite3_free (error);
        return STORE_ERROR;
    }
    return 0;
}

static int
s_migrate (store_t *self)
{
    //  The table is created inside the write transaction: BEGIN IMMEDIATE
    //  waits on the busy handler, where a bare CREATE in autocommit could
    //  meet another opener's lock and fail at once
    if (store_begin (self))
        return STORE_ERROR;
    if (s_exec_script (self,
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "    version INTEGER PRIMARY KEY,"
        "    applied_at TEXT NOT NULL)"))
        goto failed;
    int current = store_schema_version (self);
    if (current < 0)
        goto failed;
    if (current > MIGRATIONS)
        zsys_warning ("store: %s has schema version %d, newer than this binary's %d",
                      self->path, current, MIGRATIONS);
    for (int version = current + 1; version <= MIGRATIONS; version++) {
        if (s_exec_script (self, s_migrations [version - 1]))
            goto failed;
        char now [UTIL_TIME_SIZE];
        util_now_iso (now);
        if (store_exec (self, "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                        "is", version, now) != 1)
            goto failed;
        zsys_info ("store: applied migration %d", version);
    }
    return store_commit (self);
failed:
    zsys_error ("store: %s: migration failed, nothing applied", self->path);
    store_rollback (self);
    return STORE_ERROR;
}

//  SQL json_text_size (x): the bytes x takes printed as a JSON string
//  (util_json_string_size), 4 for NULL ("null")
static void
s_json_text_size (sqlite3_context *context, int argc, sqlite3_value **argv)
{
    (void) argc;
    const char *text = (const char *) sqlite3_value_text (argv [0]);
    sqlite3_result_int64 (context, text? (sqlite3_int64) util_json_string_size (text,
                                     (size_t) sqlite3_value_bytes (argv [0])): 4);
}

store_t *
store_new (const char *path)
{
    assert (path);
    store_t *self = (store_t *) zmalloc (sizeof (store_t));
    assert (self);
    self->path = strdup (path);
    self->statements = zhashx_new ();
    zhashx_set_destructor (self->statements, s_statement_destroy);

    int rc = sqlite3_open_v2 (path, &self->db,
                              SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        zsys_error ("store: cannot open %s: %s", path,
                    self->db? sqlite3_errmsg (self->db): sqlite3_errstr (rc));
        goto failed;
    }
    sqlite3_extended_result_codes (self->db, 1);
    sqlite3_busy_timeout (self->db, 5000);
    //  Before the migrations: migration 14 uses it, and so does every
    //  insert of a version (core/api_functions.c)
    rc = sqlite3_create_function (self->db, "json_text_size", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                                  NULL, s_json_text_size, NULL, NULL);
    if (rc != SQLITE_OK) {
        zsys_error ("store: %s: cannot add json_text_size: %s", path, sqlite3_errmsg (self->db));
        goto failed;
    }
    //  Switching a new file to WAL needs an exclusive lock, and SQLite
    //  answers SQLITE_BUSY at once, without the busy handler, when another
    //  connection opening the same file holds a lock: retry for as long
    //  as the busy timeout
    for (int attempt = 0; ; attempt++) {
        rc = sqlite3_exec (self->db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            break;
        if ((rc & 0xff) != SQLITE_BUSY || attempt == 500) {
            zsys_error ("store: %s: cannot set WAL mode: %s", path, sqlite3_errmsg (self->db));
            goto failed;
        }
        zclock_sleep (10);
    }
    //  temp_store in memory: every INSERT of invocation records inside the
    //  recorder's batch transaction keeps a statement journal (its triggers
    //  could abort it halfway), which on disk cost a pwrite per page it
    //  touched: 27 system calls and 57 KB written per record at 64
    //  connections, the recorder thread at 61% of a core; in memory, 35%
    if (s_exec_script (self,
        "PRAGMA synchronous = NORMAL;"
        "PRAGMA temp_store = MEMORY;"
        "PRAGMA foreign_keys = ON;"))
        goto failed;
    if (s_migrate (self))
        goto failed;
    return self;

failed:
    store_destroy (&self);
    return NULL;
}

store_t *
store_open (const char *data_dir)
{
    assert (data_dir);
    char path [PATH_MAX];
    if (snprintf (path, sizeof path, "%s/clowdy.db", data_dir) >= (int) sizeof path) {
        zsys_error ("store: data dir path too long: %s", data_dir);
        return NULL;
    }
    return store_new (path);
}

void
store_destroy (store_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        store_t *self = *self_p;
        zhashx_destroy (&self->statements);
        if (self->db)
            sqlite3_close_v2 (self->db);
        free (self->path);
        free (self);
        *self_p = NULL;
    }
}

sqlite3 *
store_db (store_t *self)
{
    assert (self);
    return self->db;
}

int
store_schema_version (store_t *self)
{
    sqlite3_stmt *stmt = store_prepare (self, "SELECT coalesce (max (version), 0) FROM schema_migrations");
    if (!stmt)
        return STORE_ERROR;
    int version = STORE_ERROR;
    if (sqlite3_step (stmt) == SQLITE_ROW)
        version = sqlite3_column_int (stmt, 0);
    sqlite3_reset (stmt);
    return version;
}

sqlite3_stmt *
store_prepare (store_t *self, const char *sql)
{
    assert (self);
    sqlite3_stmt *stmt = (sqlite3_stmt *) zhashx_lookup (self->statements, sql);
    if (stmt) {
        sqlite3_reset (stmt);
        sqlite3_clear_bindings (stmt);
        return stmt;
    }
    if (sqlite3_prepare_v3 (self->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL) != SQLITE_OK) {
        zsys_error ("store: cannot prepare '%s': %s", sql, sqlite3_errmsg (self->db));
        return NULL;
    }
    zhashx_insert (self->statements, sql, stmt);
    return stmt;
}

//  Bind parameters by format; 0 or STORE_ERROR on an unknown format char.
static int
s_bind (sqlite3_stmt *stmt, const char *fmt, va_list args)
{
    int index = 1;
    for (const char *f = fmt? fmt: ""; *f; f++, index++) {
        int rc;
        if (*f == 's') {
            const char *text = va_arg (args, const char *);
            rc = text? sqlite3_bind_text (stmt, index, text, -1, SQLITE_TRANSIENT)
                     : sqlite3_bind_null (stmt, index);
        }
        else
        if (*f == 'i' || *f == 'b')
            rc = sqlite3_bind_int (stmt, index, va_arg (args, int));
        else
        if (*f == 'I')
            rc = sqlite3_bind_int64 (stmt, index, va_arg (args, int64_t));
        else
        if (*f == 'd')
            rc = sqlite3_bind_double (stmt, index, va_arg (args, double));
        else {
            zsys_error ("store: bad bind format '%c'", *f);
            return STORE_ERROR;
        }
        if (rc != SQLITE_OK) {
            zsys_error ("store: cannot bind parameter %d: %s", index, sqlite3_errstr (rc));
            return STORE_ERROR;
        }
    }
    return 0;
}

//  Map a failed step's result code to a store error code.
static int
s_step_error (store_t *self, int rc, const char *sql)
{
    if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
        return STORE_CONFLICT;
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
        return STORE_FOREIGN;
    zsys_error ("store: '%s' failed: %s", sql, sqlite3_errmsg (self->db));
    return STORE_ERROR;
}

static int
s_exec_va (store_t *self, const char *sql, const char *fmt, va_list args)
{
    sqlite3_stmt *stmt = store_prepare (self, sql);
    if (!stmt || s_bind (stmt, fmt, args))
        return STORE_ERROR;
    int rc = sqlite3_step (stmt);
    while (rc == SQLITE_ROW)
        rc = sqlite3_step (stmt);
    int result = rc == SQLITE_DONE? sqlite3_changes (self->db): s_step_error (self, rc, sql);
    sqlite3_reset (stmt);
    return result;
}

int
store_exec (store_t *self, const char *sql, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    int rc = s_exec_va (self, sql, fmt, args);
    va_end (args);
    return rc;
}

//  The current row as a JSON object
static cJSON *
s_row_json (sqlite3_stmt *stmt)
{
    cJSON *row = cJSON_CreateObject ();
    int columns = sqlite3_column_count (stmt);
    for (int column = 0; column < columns; column++) {
        const char *name = sqlite3_column_name (stmt, column);
        const char *decltype_ = sqlite3_column_decltype (stmt, column);
        cJSON *value;
        switch (sqlite3_column_type (stmt, column)) {
            case SQLITE_INTEGER:
                if (decltype_ && strcasecmp (decltype_, "BOOLEAN") == 0)
                    value = cJSON_CreateBool (sqlite3_column_int64 (stmt, column) != 0);
                else
                    value = cJSON_CreateNumber ((double) sqlite3_column_int64 (stmt, column));
                break;
            case SQLITE_FLOAT:
                value = cJSON_CreateNumber (sqlite3_column_double (stmt, column));
                break;
            case SQLITE_TEXT:
                value = cJSON_CreateString ((const char *) sqlite3_column_text (stmt, column));
                break;
            default:
                value = cJSON_CreateNull ();
        }
        cJSON_AddItemToObject (row, name, value);
    }
    return row;
}

static cJSON *
s_query_va (store_t *self, bool first_only, const char *sql, const char *fmt, va_list args)
{
    sqlite3_stmt *stmt = store_prepare (self, sql);
    if (!stmt || s_bind (stmt, fmt, args))
        return NULL;
    cJSON *rows = cJSON_CreateArray ();
    int rc;
    while ((rc = sqlite3_step (stmt)) == SQLITE_ROW) {
        cJSON_AddItemToArray (rows, s_row_json (stmt));
        if (first_only) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE) {
        s_step_error (self, rc, sql);
        cJSON_Delete (rows);
        rows = NULL;
    }
    sqlite3_reset (stmt);
    return rows;
}

cJSON *
store_query (store_t *self, const char *sql, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    cJSON *rows = s_query_va (self, false, sql, fmt, args);
    va_end (args);
    return rows;
}

cJSON *
store_query_row (store_t *self, const char *sql, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    cJSON *rows = s_query_va (self, true, sql, fmt, args);
    va_end (args);
    cJSON *row = rows? cJSON_DetachItemFromArray (rows, 0): NULL;
    cJSON_Delete (rows);
    return row;
}

int
store_begin (store_t *self)
{
    return store_exec (self, "BEGIN IMMEDIATE", NULL) < 0? STORE_ERROR: 0;
}

int
store_commit (store_t *self)
{
    if (store_exec (self, "COMMIT", NULL) < 0) {
        store_rollback (self);
        return STORE_ERROR;
    }
    return 0;
}

void
store_rollback (store_t *self)
{
    if (!sqlite3_get_autocommit (self->db))
        store_exec (self, "ROLLBACK", NULL);
}

static char *
s_column_strdup (sqlite3_stmt *stmt, int column)
{
    const char *text = (const char *) sqlite3_column_text (stmt, column);
    return text? strdup (text): NULL;
}

static int
s_function_load (store_t *self, const char *function_id, store_function_t *fn)
{
    sqlite3_stmt *stmt = store_prepare (self,
        "SELECT f.id, coalesce (f.project_id, ''), f.user_id, f.name, v.code, f.status,"
        "       p.layer_active, f.active_version, f.timeout_seconds, f.memory_mb,"
        "       f.network_enabled"
        "  FROM functions f"
        "  JOIN function_versions v ON v.function_id = f.id AND v.version = f.active_version"
        "  LEFT JOIN projects p ON p.id = f.project_id"
        " WHERE f.id = ?");
    if (!stmt)
        return -1;
    sqlite3_bind_text (stmt, 1, function_id, -1, SQLITE_TRANSIENT);
    if (sqlite3_step (stmt) != SQLITE_ROW) {
        sqlite3_reset (stmt);
        return -1;
    }
    snprintf (fn->id, sizeof fn->id, "%s", (const char *) sqlite3_column_text (stmt, 0));
    snprintf (fn->project_id, sizeof fn->project_id, "%s", (const char *) sqlite3_column_text (stmt, 1));
    fn->user_id = s_column_strdup (stmt, 2);
    fn->name = s_column_strdup (stmt, 3);
    fn->code = s_column_strdup (stmt, 4);
    fn->status = s_column_strdup (stmt, 5);
    fn->requirements_hash = s_column_strdup (stmt, 6);
    if (fn->requirements_hash && *fn->requirements_hash == 0)
        zstr_free (&fn->requirements_hash);
    fn->version = sqlite3_column_int (stmt, 7);
    fn->timeout_seconds = sqlite3_column_int (stmt, 8);
    fn->memory_mb = sqlite3_column_int (stmt, 9);
    fn->network_enabled = sqlite3_column_int (stmt, 10) != 0;
    sqlite3_reset (stmt);

    //  The project's managed database, once ready: its DATABASE_URL wins
    //  over an env var of that name
    char *database_url = NULL;
    if (*fn->project_id) {
        stmt = store_prepare (self,
            "SELECT database_url, mount_source, mount_target, file_limit_mb FROM project_databases"
            " WHERE project_id = ? AND state = 'ready'");
        if (!stmt) {
            store_function_reset (fn);
            return -1;
        }
        sqlite3_bind_text (stmt, 1, fn->project_id, -1, SQLITE_TRANSIENT);
        if (sqlite3_step (stmt) == SQLITE_ROW) {
            database_url = s_column_strdup (stmt, 0);
            fn->database_mount_source = s_column_strdup (stmt, 1);
            fn->database_mount_target = s_column_strdup (stmt, 2);
            fn->database_file_limit_mb = sqlite3_column_int (stmt, 3);
        }
        sqlite3_reset (stmt);
    }

    //  The project's env vars, unmasked
    size_t count = 0, limit = 8;
    fn->env = (char **) zmalloc (limit * sizeof (char *));
    if (*fn->project_id) {
        stmt = store_prepare (self, "SELECT key, value FROM env_vars WHERE project_id = ? ORDER BY key");
        if (!stmt) {
            free (database_url);
            store_function_reset (fn);
            return -1;
        }
        sqlite3_bind_text (stmt, 1, fn->project_id, -1, SQLITE_TRANSIENT);
        while (sqlite3_step (stmt) == SQLITE_ROW) {
            if (database_url && streq ((const char *) sqlite3_column_text (stmt, 0), "DATABASE_URL"))
                continue;
            if (count + 2 >= limit) {
                limit *= 2;
                fn->env = (char **) realloc (fn->env, limit * sizeof (char *));
                assert (fn->env);
            }
            fn->env [count++] = zsys_sprintf ("%s=%s", sqlite3_column_text (stmt, 0),
                                                     sqlite3_column_text (stmt, 1));
        }
        sqlite3_reset (stmt);
    }
    if (database_url)
        fn->env [count++] = zsys_sprintf ("DATABASE_URL=%s", database_url);
    free (database_url);
    fn->env [count] = NULL;

    //  A database or layer on its way: the database and builder actors
    //  commit it and only then send INVALIDATE, so the context must not be
    //  kept meanwhile (gateway loads it again for each call until settled).
    //  A failed look counts as unsettled: loaded again, never kept stale
    if (*fn->project_id) {
        cJSON *row = store_query_row (self,
            "SELECT EXISTS (SELECT 1 FROM project_databases WHERE project_id = ?1 AND state = 'provisioning')"
            "    OR EXISTS (SELECT 1 FROM projects p JOIN layers w ON w.hash = p.requirements_hash"
            "                WHERE p.id = ?1 AND p.layer_active IS NOT p.requirements_hash"
            "                  AND w.state IN ('queued', 'building')) AS unsettled", "s", fn->project_id);
        fn->unsettled = !row || cJSON_GetNumberValue (cJSON_GetObjectItem (row, "unsettled")) != 0;
        cJSON_Delete (row);
    }
    return 0;
}

//  One read transaction: the context and whether it is settled come from
//  one snapshot, so a commit between two reads cannot make a context that
//  misses the change look settled
int
store_function_load (store_t *self, const char *function_id, store_function_t *fn)
{
    assert (self);
    assert (fn);
    store_function_reset (fn);
    if (!function_id)
        return -1;
    bool own = sqlite3_get_autocommit (self->db) && store_exec (self, "BEGIN", NULL) >= 0;
    int rc = s_function_load (self, function_id, fn);
    if (own && store_exec (self, "COMMIT", NULL) < 0)
        store_rollback (self);
    return rc;
}

void
store_function_reset (store_function_t *fn)
{
    if (!fn)
        return;
    free (fn->user_id);
    free (fn->name);
    free (fn->code);
    free (fn->status);
    free (fn->requirements_hash);
    free (fn->database_mount_source);
    free (fn->database_mount_target);
    if (fn->env) {
        for (char **entry = fn->env; *entry; entry++)
            zstr_free (entry);
        free (fn->env);
    }
    memset (fn, 0, sizeof *fn);
}

int
store_invocations_insert (store_t *self, const store_invocation_t *rows, size_t count)
{
    assert (self);
    if (count == 0)
        return 0;
    if (store_begin (self))
        return STORE_ERROR;
    int inserted = 0;
    char now [UTIL_TIME_SIZE];
    util_now_iso (now);
    for (size_t index = 0; index < count; index++) {
        const store_invocation_t *row = &rows [index];
        char id [UTIL_ID_SIZE];
        if (!row->id)
            util_new_id (id);
        const char *input = row->input? row->input: "{}";
        int64_t stored_bytes = (int64_t) (strlen (input) + (row->output? strlen (row->output): 0)
                             + (row->error? strlen (row->error): 0) + (row->logs? strlen (row->logs): 0));
        int rc = store_exec (self,
            "INSERT INTO invocations (id, function_id, input, output, status, error,"
            " duration_us, source, http_method, http_path, cold_start, version, logs,"
            " peak_memory_kb, created_at, input_truncated, output_truncated, logs_truncated, stored_bytes,"
            " attempt, parent_invocation_id, init_us, queue_us)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            "ssssssIsssbisIsbbbIisII",
            row->id? row->id: id, row->function_id, input,
            row->output, row->status? row->status: "error", row->error,
            row->duration_us, row->source? row->source: "direct",
            row->http_method, row->http_path, (int) row->cold_start, row->version,
            row->logs, row->peak_memory_kb, row->created_at? row->created_at: now,
            (int) row->input_truncated, (int) row->output_truncated, (int) row->logs_truncated, stored_bytes,
            row->attempt > 0? row->attempt: 1, row->parent_invocation_id, row->init_us, row->queue_us);
        //  An async event's successful attempt ends the event in the same
        //  transaction that records it: after a crash it is either still
        //  running with no success on record (so it runs again) or gone,
        //  never run again after a recorded success (actors/events.c)
        if (rc == 1 && row->event_id && row->status && streq (row->status, "success")
        &&  store_exec (self, "DELETE FROM async_events WHERE id = ?", "s", row->event_id) < 0) {
            store_rollback (self);
            return STORE_ERROR;
        }
        if (rc == 1)
            inserted++;
        else
        if (rc == STORE_ERROR) {
            store_rollback (self);
            return STORE_ERROR;
        }
        //  STORE_FOREIGN (function deleted meanwhile) or STORE_CONFLICT
        //  (id replayed): skip that row, keep the others
    }
    if (store_commit (self))
        return STORE_ERROR;
    return inserted;
}

int
store_invocations_trim (store_t *self, const char *function_id, int64_t keep_rows, int64_t keep_bytes)
{
    assert (self && function_id);
    //  Walk the records newest first until the first one past either cap:
    //  that one and every older one go. The index covers created_at and
    //  stored_bytes, so no row's big fields are read; stepping here costs a
    //  tenth of what row_number () and sum () OVER a window of every
    //  record did (3.4 us a record, 37 ms a trim of 11,000)
    const char *walk_sql = "SELECT created_at, rowid, stored_bytes FROM invocations INDEXED BY invocations_sizes"
                           " WHERE function_id = ? ORDER BY created_at DESC, rowid DESC";
    sqlite3_stmt *walk = store_prepare (self, walk_sql);
    if (!walk || sqlite3_bind_text (walk, 1, function_id, -1, SQLITE_STATIC) != SQLITE_OK)
        return STORE_ERROR;
    int64_t rows = 0, bytes = 0, boundary_rowid = 0;
    char *boundary_at = NULL;
    int rc;
    while ((rc = sqlite3_step (walk)) == SQLITE_ROW) {
        rows++;
        bytes += sqlite3_column_int64 (walk, 2);
        if (rows > keep_rows || (bytes > keep_bytes && rows > 1)) {
            const char *at = (const char *) sqlite3_column_text (walk, 0);
            boundary_at = strdup (at ? at : "");
            boundary_rowid = sqlite3_column_int64 (walk, 1);
            break;
        }
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        s_step_error (self, rc, walk_sql);
        sqlite3_reset (walk);
        return STORE_ERROR;
    }
    sqlite3_reset (walk);
    if (!boundary_at)
        return 0;
    //  Older than the boundary in the walk's own order, and the boundary
    int deleted = store_exec (self,
        "DELETE FROM invocations WHERE function_id = ?1"
        " AND (created_at < ?2 OR (created_at = ?2 AND rowid <= ?3))",
        "ssI", function_id, boundary_at, boundary_rowid);
    free (boundary_at);
    return deleted;
}

cJSON *
store_project_by_slug (store_t *self, const char *slug)
{
    assert (self);
    if (!slug)
        return NULL;
    return store_query_row (self, "SELECT id, slug, user_id FROM projects WHERE slug = ?", "s", slug);
}

cJSON *
store_routes_for_project (store_t *self, const char *project_id)
{
    assert (self);
    return store_query (self,
        "SELECT id, method, path, function_id FROM routes WHERE project_id = ? ORDER BY path, method",
        "s", project_id);
}

//  --------------------------------------------------------------------------
//  Selftest

static void
s_seed (store_t *store, const char *project_id, const char *function_id)
{
    const char *now = "2026-01-01T00:00:00.000000Z";
    if (project_id) {
        char slug [32];
        snprintf (slug, sizeof slug, "p-%s", project_id);
        assert (store_exec (store,
            "INSERT INTO projects (id, user_id, name, slug, created_at, updated_at)"
            " VALUES (?, 'alice', 'P', ?, ?, ?)", "ssss", project_id, slug, now, now) == 1);
    }
    assert (store_exec (store,
        "INSERT INTO functions (id, user_id, project_id, name, created_at, updated_at)"
        " VALUES (?, 'alice', ?, 'f', ?, ?)", "ssss", function_id, project_id, now, now) == 1);
    assert (store_exec (store,
        "INSERT INTO function_versions (function_id, version, code, code_size, created_at, updated_at)"
        " VALUES (?, 1, 'def handler(e): return 1', 26, ?, ?)", "sss", function_id, now, now) == 1);
}

static int
s_count (store_t *store, const char *table)
{
    char sql [128];
    snprintf (sql, sizeof sql, "SELECT count(*) AS n FROM %s", table);
    cJSON *row = store_query_row (store, sql, NULL);
    assert (row);
    int count = cJSON_GetObjectItem (row, "n")->valueint;
    cJSON_Delete (row);
    return count;
}

//  The first column of a one-row query as an integer (0 when no row)
static int64_t
s_sum (store_t *store, const char *sql)
{
    sqlite3_stmt *stmt = store_prepare (store, sql);
    assert (stmt);
    int64_t value = 0;
    if (sqlite3_step (stmt) == SQLITE_ROW)
        value = sqlite3_column_int64 (stmt, 0);
    sqlite3_reset (stmt);
    return value;
}

//  Thread body for the concurrent open test: open, check, close
static void *
s_open_thread (void *args)
{
    store_t *store = store_new ((const char *) args);
    bool ok = store && store_schema_version (store) == MIGRATIONS;
    store_destroy (&store);
    return ok? args: NULL;
}

void
store_test (bool verbose)
{
    printf ("store: ");
    char *dir = zsys_sprintf ("/tmp/clowdy-store-test-%d", getpid ());
    zsys_dir_create (dir);
    char *path = zsys_sprintf ("%s/clowdy.db", dir);
    zsys_file_delete (path);

    //  Migration 12: the invocation indexes nothing reads are gone; the one
    //  that serves a function's list and retention stays
    {
        store_t *fresh = store_new (path);
        assert (fresh);
        cJSON *indexes = store_query (fresh, "SELECT name FROM sqlite_master WHERE type = 'index'"
                                             " AND tbl_name = 'invocations' AND name NOT LIKE 'sqlite_%' ORDER BY name", "");
        assert (cJSON_GetArraySize (indexes) == 1);
        assert (streq (cJSON_GetObjectItem (cJSON_GetArrayItem (indexes, 0), "name")->valuestring, "invocations_sizes"));
        cJSON_Delete (indexes);
        store_destroy (&fresh);
    }
    zsys_file_delete (path);

    //  Several actors opening a new file at once: all succeed, and the
    //  migrations apply exactly once
    pthread_t threads [8];
    for (int i = 0; i < 8; i++)
        assert (pthread_create (&threads [i], NULL, s_open_thread, path) == 0);
    for (int i = 0; i < 8; i++) {
        void *result = NULL;
        pthread_join (threads [i], &result);
        assert (result == path);
    }
    zsys_file_delete (path);
    char *wal_path = zsys_sprintf ("%s-wal", path), *shm_path = zsys_sprintf ("%s-shm", path);
    zsys_file_delete (wal_path);
    zsys_file_delete (shm_path);
    zstr_free (&wal_path);
    zstr_free (&shm_path);

    //  Migrations apply once and are recorded; reopening is a no-op
    store_t *store = store_new (path);
    assert (store);
    assert (store_schema_version (store) == MIGRATIONS);
    store_t *other = store_new (path);      //  a second connection, as another actor
    assert (other);
    assert (store_schema_version (other) == MIGRATIONS);
    assert (s_count (other, "schema_migrations") == MIGRATIONS);
    cJSON *mode = store_query_row (store, "PRAGMA journal_mode", NULL);
    assert (streq (cJSON_GetObjectItem (mode, "journal_mode")->valuestring, "wal"));
    cJSON_Delete (mode);
    cJSON *fk = store_query_row (store, "PRAGMA foreign_keys", NULL);
    assert (cJSON_GetObjectItem (fk, "foreign_keys")->valueint == 1);
    cJSON_Delete (fk);
    store_destroy (&other);
    store_destroy (&store);
    store_destroy (&store);
    store = store_new (path);
    assert (store);
    assert (s_count (store, "schema_migrations") == MIGRATIONS);

    //  Statement cache: the same SQL gives the same statement
    sqlite3_stmt *first = store_prepare (store, "SELECT 1");
    assert (first && first == store_prepare (store, "SELECT 1"));
    assert (store_prepare (store, "SELECT nonsense FROM nowhere") == NULL);
    assert (store_query (store, "SELECT nonsense FROM nowhere", NULL) == NULL);
    assert (store_exec (store, "SELECT ?", "x", 1) == STORE_ERROR);

    //  Rows as JSON, with BOOLEAN columns as true/false
    s_seed (store, "aaaaaaaaaaa1", "bbbbbbbbbbb1");
    cJSON *row = store_query_row (store,
        "SELECT id, project_id, network_enabled, memory_mb, NULL AS empty FROM functions WHERE id = ?",
        "s", "bbbbbbbbbbb1");
    assert (row);
    assert (streq (cJSON_GetObjectItem (row, "project_id")->valuestring, "aaaaaaaaaaa1"));
    assert (cJSON_IsFalse (cJSON_GetObjectItem (row, "network_enabled")));
    assert (cJSON_GetObjectItem (row, "memory_mb")->valueint == 128);
    assert (cJSON_IsNull (cJSON_GetObjectItem (row, "empty")));
    cJSON_Delete (row);
    assert (store_query_row (store, "SELECT id FROM functions WHERE id = ?", "s", "missing") == NULL);

    //  Unique slug and foreign keys map to store error codes
    assert (store_exec (store,
        "INSERT INTO projects (id, user_id, name, slug, created_at, updated_at)"
        " VALUES ('aaaaaaaaaaa2', 'bob', 'P', 'p-aaaaaaaaaaa1', '', '')", NULL) == STORE_CONFLICT);
    assert (store_exec (store,
        "INSERT INTO functions (id, user_id, project_id, name, created_at, updated_at)"
        " VALUES ('bbbbbbbbbbb9', 'bob', 'nosuchproject', 'f', '', '')", NULL) == STORE_FOREIGN);

    //  Function load, with env vars
    assert (store_exec (store,
        "INSERT INTO env_vars (id, project_id, key, value, is_secret, created_at, updated_at)"
        " VALUES ('e1', 'aaaaaaaaaaa1', 'B_KEY', 'two=2', 1, '', ''),"
        "        ('e2', 'aaaaaaaaaaa1', 'A_KEY', 'one', 0, '', '')", NULL) == 2);
    store_function_t fn = {0};
    assert (store_function_load (store, "bbbbbbbbbbb1", &fn) == 0);
    assert (streq (fn.id, "bbbbbbbbbbb1"));
    assert (streq (fn.project_id, "aaaaaaaaaaa1"));
    assert (streq (fn.user_id, "alice"));
    assert (streq (fn.code, "def handler(e): return 1"));
    assert (fn.version == 1 && fn.timeout_seconds == 30 && fn.memory_mb == 128);
    assert (!fn.network_enabled);
    assert (fn.requirements_hash == NULL);
    assert (streq (fn.env [0], "A_KEY=one"));
    assert (streq (fn.env [1], "B_KEY=two=2"));
    assert (fn.env [2] == NULL);
    assert (store_function_load (store, "nosuchfunctn", &fn) == -1);
    assert (fn.env == NULL && fn.code == NULL);
    store_function_reset (&fn);

    //  DATABASE_URL: the project's env var of that name, until the project
    //  has a ready managed database, whose URL then replaces it; one still
    //  being provisioned gives nothing
    assert (store_exec (store,
        "INSERT INTO env_vars (id, project_id, key, value, is_secret, created_at, updated_at)"
        " VALUES ('e3', 'aaaaaaaaaaa1', 'DATABASE_URL', 'postgresql://mine', 1, '', '')", NULL) == 1);
    assert (store_exec (store,
        "INSERT INTO project_databases (project_id, provider, state, database_url, mount_source, mount_target,"
        " file_limit_mb, created_at, updated_at) VALUES ('aaaaaaaaaaa1', 'sqlite', 'provisioning',"
        " 'sqlite:////opt/database/db.sqlite3', '/srv/db', '/opt/database', 100, '', '')", NULL) == 1);
    assert (store_function_load (store, "bbbbbbbbbbb1", &fn) == 0);
    assert (streq (fn.env [0], "A_KEY=one") && streq (fn.env [1], "B_KEY=two=2"));
    assert (streq (fn.env [2], "DATABASE_URL=postgresql://mine") && fn.env [3] == NULL);
    assert (fn.database_mount_source == NULL && fn.database_file_limit_mb == 0);
    assert (fn.unsettled);          //  gateway must not keep it: the URL is on its way
    store_function_reset (&fn);
    assert (store_exec (store, "UPDATE project_databases SET state = 'ready'", NULL) == 1);
    assert (store_function_load (store, "bbbbbbbbbbb1", &fn) == 0);
    assert (!fn.unsettled);
    assert (streq (fn.env [0], "A_KEY=one") && streq (fn.env [1], "B_KEY=two=2"));
    assert (streq (fn.env [2], "DATABASE_URL=sqlite:////opt/database/db.sqlite3") && fn.env [3] == NULL);
    assert (streq (fn.database_mount_source, "/srv/db") && streq (fn.database_mount_target, "/opt/database"));
    assert (fn.database_file_limit_mb == 100);
    store_function_reset (&fn);
    assert (store_exec (store, "DELETE FROM project_databases", NULL) == 1);
    assert (store_exec (store, "DELETE FROM env_vars WHERE id = 'e3'", NULL) == 1);

    //  A layer on its way (queued or building, not yet the active one) is
    //  unsettled too; a ready one switched to, or a failed one, is not
    assert (store_exec (store, "INSERT INTO layers (hash, requirements, state, created_at, updated_at)"
                        " VALUES ('k1', 'a', 'queued', '', '')", NULL) == 1);
    assert (store_exec (store, "UPDATE projects SET requirements_hash = 'k1' WHERE id = 'aaaaaaaaaaa1'", NULL) == 1);
    const char *states [] = { "queued", "building", "failed" };
    for (size_t index = 0; index < sizeof states / sizeof states [0]; index++) {
        assert (store_exec (store, "UPDATE layers SET state = ? WHERE hash = 'k1'", "s", states [index]) == 1);
        assert (store_function_load (store, "bbbbbbbbbbb1", &fn) == 0);
        assert (fn.unsettled == !streq (states [index], "failed"));
        assert (fn.requirements_hash == NULL);
        store_function_reset (&fn);
    }
    assert (store_exec (store, "UPDATE layers SET state = 'ready' WHERE hash = 'k1'", NULL) == 1);
    assert (store_exec (store, "UPDATE projects SET layer_active = 'k1' WHERE id = 'aaaaaaaaaaa1'", NULL) == 1);
    assert (store_function_load (store, "bbbbbbbbbbb1", &fn) == 0);
    assert (!fn.unsettled && streq (fn.requirements_hash, "k1"));
    store_function_reset (&fn);
    assert (store_exec (store, "UPDATE projects SET requirements_hash = NULL, layer_active = NULL"
                        " WHERE id = 'aaaaaaaaaaa1'", NULL) == 1);
    assert (store_exec (store, "DELETE FROM layers", NULL) == 1);

    //  A function without a project has an empty env
    s_seed (store, NULL, "bbbbbbbbbbb2");
    assert (store_function_load (store, "bbbbbbbbbbb2", &fn) == 0);
    assert (streq (fn.project_id, "") && fn.env && fn.env [0] == NULL);
    store_function_reset (&fn);

    //  Invocations: a batch in one transaction; rows of missing functions skipped
    store_invocation_t batch [3] = {
        { .function_id = "bbbbbbbbbbb1", .input = "{}", .output = "1", .status = "success",
          .source = "direct", .duration_us = 1500, .cold_start = true, .version = 1 },
        { .function_id = "bbbbbbbbbbb1", .input = "{}", .status = "error", .error = "boom",
          .source = "gateway", .http_method = "GET", .http_path = "/x", .duration_us = 2500,
          .version = 1, .logs = "hello\n" },
        { .function_id = "nosuchfunctn", .status = "success" },
    };
    assert (store_invocations_insert (store, batch, 3) == 2);
    assert (store_invocations_insert (store, batch, 0) == 0);
    cJSON *stats = store_query_row (store,
        "SELECT invocations, successes, duration_us FROM function_stats WHERE function_id = ?",
        "s", "bbbbbbbbbbb1");
    assert (cJSON_GetObjectItem (stats, "invocations")->valueint == 2);
    assert (cJSON_GetObjectItem (stats, "successes")->valueint == 1);
    assert (cJSON_GetObjectItem (stats, "duration_us")->valueint == 4000);
    cJSON_Delete (stats);

    assert (s_sum (store, "SELECT cold_starts FROM function_stats WHERE function_id = 'bbbbbbbbbbb1'") == 1);
    //  1500 us: 4 * log2 (15) = 15.6, bucket 16; 2500 us: 4 * log2 (25) = 18.6, bucket 19
    assert (s_sum (store, "SELECT count(*) FROM function_durations WHERE function_id = 'bbbbbbbbbbb1'") == 2);
    assert (s_sum (store, "SELECT duration_us FROM function_durations"
                          " WHERE function_id = 'bbbbbbbbbbb1' AND bucket = 16") == 1500);
    assert (s_sum (store, "SELECT invocations FROM function_durations"
                          " WHERE function_id = 'bbbbbbbbbbb1' AND bucket = 19") == 1);
    char today [UTIL_TIME_SIZE];
    util_now_iso (today);
    today [10] = 0;
    stats = store_query_row (store, "SELECT day, invocations, errors, cold_starts FROM function_days"
                                    " WHERE function_id = ?", "s", "bbbbbbbbbbb1");
    assert (streq (cJSON_GetObjectItem (stats, "day")->valuestring, today));
    assert (cJSON_GetObjectItem (stats, "invocations")->valueint == 2);
    assert (cJSON_GetObjectItem (stats, "errors")->valueint == 1);
    assert (cJSON_GetObjectItem (stats, "cold_starts")->valueint == 1);
    cJSON_Delete (stats);

    //  Histogram bucket edges: below 100 us, exact powers, the open top
    //  bucket, and nonsense (negative) durations
    s_seed (store, NULL, "bbbbbbbbbbb4");
    int64_t durations [] = { 0, 99, 100, 141, 200, 10000000000000, -5 };
    int expected_bucket [] = { 0, 0, 1, 2, 5, 103, 0 };
    for (size_t i = 0; i < sizeof durations / sizeof durations [0]; i++) {
        store_invocation_t edge = { .function_id = "bbbbbbbbbbb4", .status = "success",
                                    .duration_us = durations [i],
                                    .created_at = "2026-03-04T23:59:59.999999Z" };
        assert (store_invocations_insert (store, &edge, 1) == 1);
        char sql [160];
        snprintf (sql, sizeof sql, "SELECT invocations FROM function_durations"
                  " WHERE function_id = 'bbbbbbbbbbb4' AND bucket = %d", expected_bucket [i]);
        assert (s_sum (store, sql) >= 1);
    }
    assert (s_sum (store, "SELECT sum (invocations) FROM function_durations"
                          " WHERE function_id = 'bbbbbbbbbbb4' AND bucket = 0") == 3);
    assert (s_sum (store, "SELECT duration_us FROM function_durations"
                          " WHERE function_id = 'bbbbbbbbbbb4' AND bucket = 0") == 99);
    assert (s_sum (store, "SELECT invocations FROM function_days"
                          " WHERE function_id = 'bbbbbbbbbbb4' AND day = '2026-03-04'") == 7);
    //  Deleting the function drops its aggregates
    assert (store_exec (store, "DELETE FROM functions WHERE id = 'bbbbbbbbbbb4'", NULL) == 1);
    assert (s_sum (store, "SELECT count(*) FROM function_durations WHERE function_id = 'bbbbbbbbbbb4'") == 0);
    assert (s_sum (store, "SELECT count(*) FROM function_days WHERE function_id = 'bbbbbbbbbbb4'") == 0);

    //  Pruning rows (retention) keeps the counters
    assert (store_exec (store, "DELETE FROM invocations WHERE status = 'error'", NULL) == 1);
    stats = store_query_row (store, "SELECT invocations FROM function_stats WHERE function_id = ?",
                             "s", "bbbbbbbbbbb1");
    assert (cJSON_GetObjectItem (stats, "invocations")->valueint == 2);
    cJSON_Delete (stats);
    assert (s_sum (store, "SELECT sum (invocations) FROM function_durations"
                          " WHERE function_id = 'bbbbbbbbbbb1'") == 2);
    assert (s_sum (store, "SELECT errors FROM function_days WHERE function_id = 'bbbbbbbbbbb1'") == 1);

    //  Routes and slug lookup
    assert (store_exec (store,
        "INSERT INTO routes (id, project_id, function_id, method, path, created_at, updated_at)"
        " VALUES ('r1', 'aaaaaaaaaaa1', 'bbbbbbbbbbb1', 'GET', '/b', '', ''),"
        "        ('r2', 'aaaaaaaaaaa1', 'bbbbbbbbbbb1', 'POST', '/a', '', '')", NULL) == 2);
    assert (store_exec (store,
        "INSERT INTO routes (id, project_id, function_id, method, path, created_at, updated_at)"
        " VALUES ('r3', 'aaaaaaaaaaa1', 'bbbbbbbbbbb1', 'GET', '/b', '', '')", NULL) == STORE_CONFLICT);
    cJSON *routes = store_routes_for_project (store, "aaaaaaaaaaa1");
    assert (cJSON_GetArraySize (routes) == 2);
    assert (streq (cJSON_GetObjectItem (cJSON_GetArrayItem (routes, 0), "path")->valuestring, "/a"));
    cJSON_Delete (routes);
    cJSON *project = store_project_by_slug (store, "p-aaaaaaaaaaa1");
    assert (project);
    assert (streq (cJSON_GetObjectItem (project, "id")->valuestring, "aaaaaaaaaaa1"));
    assert (streq (cJSON_GetObjectItem (project, "user_id")->valuestring, "alice"));
    cJSON_Delete (project);
    assert (store_project_by_slug (store, "nope") == NULL);

    //  A rolled-back transaction leaves nothing behind
    assert (store_begin (store) == 0);
    s_seed (store, NULL, "bbbbbbbbbbb3");
    store_rollback (store);
    assert (store_function_load (store, "bbbbbbbbbbb3", &fn) == -1);

    //  Project delete cascades to everything under it
    assert (store_exec (store, "DELETE FROM projects WHERE id = ?", "s", "aaaaaaaaaaa1") == 1);
    assert (s_count (store, "functions") == 1);     //  the project-less one stays
    assert (s_count (store, "function_versions") == 1);
    assert (s_count (store, "invocations") == 0);
    assert (s_count (store, "routes") == 0);
    assert (s_count (store, "env_vars") == 0);
    assert (s_count (store, "function_stats") == 0);
    assert (s_count (store, "function_durations") == 0);
    assert (s_count (store, "function_days") == 0);
    store_destroy (&store);

    //  A file from an older binary (only migration 1 applied, invocations
    //  recorded) is brought up to date on open: the missing migrations run,
    //  and the new aggregates are filled from the surviving rows
    char *old_path = zsys_sprintf ("%s/old.db", dir);
    zsys_file_delete (old_path);
    sqlite3 *old = NULL;
    assert (sqlite3_open (old_path, &old) == SQLITE_OK);
    assert (sqlite3_exec (old, s_migrations [0], NULL, NULL, NULL) == SQLITE_OK);
    assert (sqlite3_exec (old,
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL);"
        "INSERT INTO schema_migrations VALUES (1, '2026-01-01T00:00:00Z');"
        "INSERT INTO functions (id, user_id, name, created_at, updated_at)"
        "    VALUES ('bbbbbbbbbbb7', 'alice', 'old', '', '');"
        "INSERT INTO invocations (id, function_id, status, duration_us, cold_start, created_at) VALUES"
        "    ('i1', 'bbbbbbbbbbb7', 'success', 1500, 1, '2026-02-01T10:00:00Z'),"
        "    ('i2', 'bbbbbbbbbbb7', 'error', 1500, 0, '2026-02-01T11:00:00Z'),"
        "    ('i3', 'bbbbbbbbbbb7', 'timeout', 30000000, 0, '2026-02-02T00:00:00Z');"
        "UPDATE invocations SET input = '{\"a\":\"\xc3\xa9\"}', logs = 'hi' WHERE id = 'i1';",
        NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close (old);
    store = store_new (old_path);
    assert (store && store_schema_version (store) == MIGRATIONS);
    assert (s_count (store, "sqlite_master WHERE name = 'invocations_uncount'") == 0);
    assert (s_sum (store, "SELECT invocations FROM function_stats") == 3);
    assert (s_sum (store, "SELECT cold_starts FROM function_stats") == 1);
    assert (s_sum (store, "SELECT invocations FROM function_durations WHERE bucket = 16") == 2);
    assert (s_sum (store, "SELECT duration_us FROM function_durations WHERE bucket = 16") == 3000);
    assert (s_sum (store, "SELECT count(*) FROM function_durations") == 2);
    assert (s_sum (store, "SELECT errors FROM function_days WHERE day = '2026-02-01'") == 1);
    assert (s_sum (store, "SELECT cold_starts FROM function_days WHERE day = '2026-02-01'") == 1);
    assert (s_sum (store, "SELECT errors FROM function_days WHERE day = '2026-02-02'") == 1);
    //  Old rows count the bytes they hold (UTF-8 bytes, not characters), for retention by size
    assert (s_sum (store, "SELECT stored_bytes FROM invocations WHERE id = 'i1'") == 10 + 2);
    assert (s_sum (store, "SELECT stored_bytes FROM invocations WHERE id = 'i2'") == 0);
    assert (s_sum (store, "SELECT count(*) FROM invocations WHERE input_truncated OR output_truncated") == 0);
    //  and the new trigger counts from there on
    store_invocation_t later = { .function_id = "bbbbbbbbbbb7", .status = "success",
                                 .duration_us = 1550, .cold_start = true,
                                 .created_at = "2026-02-02T01:00:00Z" };
    assert (store_invocations_insert (store, &later, 1) == 1);
    assert (s_sum (store, "SELECT cold_starts FROM function_stats") == 2);
    assert (s_sum (store, "SELECT invocations FROM function_durations WHERE bucket = 16") == 3);
    assert (s_sum (store, "SELECT invocations FROM function_days WHERE day = '2026-02-02'") == 2);
    assert (s_sum (store, "SELECT stored_bytes FROM invocations WHERE created_at = '2026-02-02T01:00:00Z'") == 2);
    store_destroy (&store);
    zsys_file_delete (old_path);
    char *old_wal = zsys_sprintf ("%s-wal", old_path), *old_shm = zsys_sprintf ("%s-shm", old_path);
    zsys_file_delete (old_wal);
    zsys_file_delete (old_shm);
    zstr_free (&old_wal);
    zstr_free (&old_shm);
    zstr_free (&old_path);
    store = store_new (path);
    assert (store && store_schema_version (store) == MIGRATIONS);

    //  Data survives a reopen
    store_destroy (&store);
    store = store_new (path);
    assert (store_function_load (store, "bbbbbbbbbbb2", &fn) == 0);
    store_function_reset (&fn);
    store_function_reset (&fn);
    store_destroy (&store);

    //  In-memory stores work (the api selftest uses them)
    store = store_new (":memory:");
    assert (store && store_schema_version (store) == MIGRATIONS);
    store_destroy (&store);

    //  A path that cannot be opened fails cleanly
    assert (store_new ("/nonexistent-dir/sub/clowdy.db") == NULL);

    zsys_file_delete (path);
    char *wal = zsys_sprintf ("%s-wal", path), *shm = zsys_sprintf ("%s-shm", path);
    zsys_file_delete (wal);
    zsys_file_delete (shm);
    zstr_free (&wal);
    zstr_free (&shm);
    zsys_dir_delete (dir);
    zstr_free (&path);
    zstr_free (&dir);
    printf ("OK\n");
}
