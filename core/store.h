/*  =========================================================================
    store - the SQLite store: schema, migrations, and the queries the invoke
    path needs

    One store_t is one SQLite connection; each thread or actor opens its own
    (SQLite connections must not be shared between threads here). The file is
    <data_dir>/clowdy.db (store_open builds that path). WAL mode with
    synchronous=NORMAL: a committed write is in the WAL before the commit
    returns, so it survives kill -9 of the process. Migrations run inside
    store_new.

    Besides the typed calls the invoke path uses, store_prepare/store_exec/
    store_query give the API layer cached prepared statements and rows as
    JSON objects (INTEGER -> number, REAL -> number, TEXT -> string, NULL ->
    null, columns declared BOOLEAN -> true/false).

    Bind formats (the fmt argument): one character per '?' parameter
        s   const char *    (NULL binds SQL NULL)
        i   int
        I   int64_t
        d   double
        b   bool (passed as int)
    ========================================================================= */

#ifndef CLOWDY_STORE_H_INCLUDED
#define CLOWDY_STORE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>
#include <cjson/cJSON.h>

typedef struct _store_t store_t;

//  Store error codes (negative; >= 0 means success)
#define STORE_ERROR      -1         //  SQL or I/O error (logged)
#define STORE_CONFLICT   -2         //  UNIQUE or PRIMARY KEY constraint failed
#define STORE_FOREIGN    -3         //  FOREIGN KEY constraint failed

//  Open or create the database at path (":memory:" for tests) and apply any
//  pending migrations. Returns NULL, with the reason logged, on error.
store_t *
    store_new (const char *path);

//  The server's database: store_new of <data_dir>/clowdy.db
store_t *
    store_open (const char *data_dir);

//  Close the connection; safe on NULL and twice.
void
    store_destroy (store_t **self_p);

//  The raw connection (for modules with their own tables, e.g. auth).
sqlite3 *
    store_db (store_t *self);

//  Schema version after migrations (highest applied migration number).
int
    store_schema_version (store_t *self);

//  Return the cached prepared statement for sql, reset and with its
//  bindings cleared, or NULL (logged) if it does not compile. The store owns
//  it: do not finalize; call sqlite3_reset when done stepping.
sqlite3_stmt *
    store_prepare (store_t *self, const char *sql);

//  Run one statement with bound parameters. Returns the number of rows
//  changed (>= 0), or STORE_CONFLICT, STORE_FOREIGN or STORE_ERROR.
int
    store_exec (store_t *self, const char *sql, const char *fmt, ...);

//  Run a query and return every row as a JSON object keyed by column name,
//  in a JSON array (empty when no rows). NULL on error (logged).
cJSON *
    store_query (store_t *self, const char *sql, const char *fmt, ...);

//  Like store_query but returns the first row only, or NULL when there is
//  none (or on error).
cJSON *
    store_query_row (store_t *self, const char *sql, const char *fmt, ...);

//  Transactions. store_begin takes the write lock at once (BEGIN IMMEDIATE),
//  so read-then-write sequences inside it cannot interleave with another
//  connection's writes. Return 0 or STORE_ERROR.
int
    store_begin (store_t *self);
int
    store_commit (store_t *self);
void
    store_rollback (store_t *self);

//  What the invoke path needs to run a function: the active version's code,
//  its limits, and the project's env vars.
typedef struct {
    char id [13];                   //  Function id
    char project_id [13];           //  Project id, "" when none
    char *user_id;                  //  Owner
    char *name;                     //  Function name
    char *code;                     //  Active version's code
    char *status;                   //  "active", ...
    char *requirements_hash;        //  The layer its project runs with now (projects.layer_active), NULL when none
    int version;                    //  Active version number
    int timeout_seconds;            //  Per-invocation timeout
    int memory_mb;                  //  Memory limit
    bool network_enabled;           //  Outbound network allowed
    char **env;                     //  NULL-terminated "KEY=VALUE", unmasked; never NULL after load
                                    //  (a ready managed database's DATABASE_URL replaces the env var's)
    char *database_mount_source;    //  Host dir its sandboxes bind (sqlite file, postgres socket), or NULL
    char *database_mount_target;    //  Where the sandbox sees it
    int database_file_limit_mb;     //  Largest file a function may write (sqlite cap), 0 = none
    bool unsettled;                 //  A change of this context is under way (the project's database
                                    //  being provisioned, or its new layer queued or building): the
                                    //  actor that finishes it commits, then tells gateway, so a copy
                                    //  cached meanwhile could outlive the commit the user already sees
} store_function_t;

//  Load a function with its active version and project env. Returns 0, or
//  -1 when there is no such function (or on error). fn is reset first.
int
    store_function_load (store_t *self, const char *function_id, store_function_t *fn);

//  Free what store_function_load allocated and zero fn; safe twice.
void
    store_function_reset (store_function_t *fn);

//  One invocation record. id NULL: a new id is made; created_at NULL: now.
typedef struct {
    const char *id;                 //  Invocation id, or NULL
    const char *function_id;        //  Function invoked (must exist)
    const char *input;              //  JSON text
    const char *output;             //  JSON text, or NULL
    const char *status;             //  "success", "error", "timeout"
    const char *error;              //  Error message, or NULL
    const char *source;             //  "direct", "gateway", "agent", ...
    const char *http_method;        //  Gateway calls: request method, else NULL
    const char *http_path;          //  Gateway calls: request path, else NULL
    const char *logs;               //  Captured stdout/stderr, or NULL
    int64_t duration_us;            //  Wall time of the invocation
    bool cold_start;                //  A new environment was created for it
    int version;                    //  Function version that ran
    int64_t peak_memory_kb;         //  Peak memory, 0 when unknown
    const char *created_at;         //  ISO 8601 UTC, or NULL for now
    bool input_truncated;           //  input is the start of a longer one
    bool output_truncated;          //  output (and error) are the start of longer ones
    bool logs_truncated;            //  logs are the start of longer ones
    int attempt;                    //  Async calls: attempt from 1 (0 means 1)
    const char *parent_invocation_id;   //  Async retries: the first attempt's id, else NULL
    const char *event_id;           //  Async calls: their event (ended here on success), else NULL
    int64_t init_us;                //  Of duration_us, the cold start (sandbox, python, module code); 0 warm
    int64_t queue_us;               //  Time in the platform before a worker took the call
} store_invocation_t;

//  Insert count invocation records in one transaction. Rows whose function
//  no longer exists are skipped (it may have been deleted meanwhile). A
//  successful row with an event_id deletes that async event in the same
//  transaction. Each
//  row's stored_bytes is what its input, output, error and logs take.
//  Returns the number inserted, or STORE_ERROR (nothing inserted).
int
    store_invocations_insert (store_t *self, const store_invocation_t *rows, size_t count);

//  Retention: keep a function's newest keep_rows records and, of those, the
//  newest whose stored_bytes add up to keep_bytes (the newest one always
//  stays); delete the rest. Returns the number deleted, or STORE_ERROR.
int
    store_invocations_trim (store_t *self, const char *function_id, int64_t keep_rows, int64_t keep_bytes);

//  {id, slug, user_id} of the project with this slug, or NULL.
cJSON *
    store_project_by_slug (store_t *self, const char *slug);

//  [{id, method, path, function_id}] of a project's routes (empty array
//  when none), or NULL on error.
cJSON *
    store_routes_for_project (store_t *self, const char *project_id);

void
    store_test (bool verbose);

#endif
