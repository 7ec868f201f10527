/*  =========================================================================
    dbprovider_postgres - one database and one login role per project on a
    PostgreSQL server, over libpq

    Clowdy connects as the admin role (--postgres-admin-url, a libpq
    conninfo or URL of a superuser, or a role with CREATEDB and CREATEROLE
    that can SET ROLE to the roles it makes) only from the database actor's
    provider thread, one short connection per job, with a connect timeout
    and a statement timeout, so a server that is down or hung costs a
    bounded wait there and nothing anywhere else.

    Per project P: role clowdy_P (LOGIN, a random 48-hex-digit password,
    NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS, a
    connection limit) owning database clowdy_P and nothing else.
    - CONNECT and TEMPORARY on clowdy_P are revoked from PUBLIC, so no other
      project's role can open it.
    - PUBLIC's CONNECT on every other database is revoked (the admin keeps
      an explicit grant), as no grant can be taken from one role while
      PUBLIC holds it: run Clowdy on a PostgreSQL server of its own, or
      grant CONNECT explicitly to other roles that need it.
    - Inside clowdy_P, PUBLIC loses SELECT on the catalogs that list the
      server's databases and roles (pg_database, pg_roles, ...), so a
      function cannot even see its neighbours' names.
    Deprovision drops the database (WITH (FORCE): open sessions go) and the
    role; both IF EXISTS, so a provision that died half way is cleaned up by
    the next provision or deprovision of the project.

    How functions connect: through the server's unix socket directory
    (--postgres-socket-dir, else the admin URL's host when it is a dir),
    bound read-only at /opt/postgresql in the project's sandboxes, so that
    functions with the network off reach their database and nothing else;
    DATABASE_URL=postgresql://clowdy_P:PASSWORD@/clowdy_P?host=/opt/postgresql&port=N.
    With --postgres-function-host HOST[:PORT] (functions on --role worker
    hosts), DATABASE_URL names that TCP address instead and nothing is bound.
    ========================================================================= */

#include <czmq.h>
#include <libpq-fe.h>
#include "core/dbprovider.h"
#include "core/util.h"

#define S_CONNECT_TIMEOUT   "10"                //  seconds, libpq's connect_timeout
#define S_OPTIONS           "-c statement_timeout=30000 -c lock_timeout=10000"
#define S_CONNECTION_LIMIT  32                  //  per project role

typedef struct {
    char *admin_url;                //  Admin conninfo
    char *socket_dir;               //  Host socket dir, or NULL
    char *port;                     //  Server port ("5432" by default)
    char *tcp_host;                 //  HOST[:PORT] for functions when not the socket, or NULL
} s_postgres_t;

//  The value of keyword in a parsed conninfo, or NULL
static const char *
s_conninfo_value (PQconninfoOption *options, const char *keyword)
{
    for (PQconninfoOption *option = options; option && option->keyword; option++)
        if (streq (option->keyword, keyword) && option->val && *option->val)
            return option->val;
    return NULL;
}

static void *
s_create (const config_t *config, char *error, size_t error_size)
{
    char *message = NULL;
    PQconninfoOption *options = PQconninfoParse (config->postgres_admin_url, &message);
    if (!options) {
        snprintf (error, error_size, "--postgres-admin-url: %s", message? message: "out of memory");
        PQfreemem (message);
        return NULL;
    }
    s_postgres_t *self = (s_postgres_t *) zmalloc (sizeof (s_postgres_t));
    self->admin_url = strdup (config->postgres_admin_url);
    const char *host = s_conninfo_value (options, "host");
    const char *port = s_conninfo_value (options, "port");
    self->port = strdup (port? port: "5432");
    if (*config->postgres_socket_dir)
        self->socket_dir = strdup (config->postgres_socket_dir);
    else
    if (host && host [0] == '/' && !strchr (host, ','))
        self->socket_dir = strdup (host);
    if (*config->postgres_function_host)
        self->tcp_host = strdup (config->postgres_function_host);
    else
    if (!self->socket_dir)
        self->tcp_host = zsys_sprintf ("%s:%s", host? host: "localhost", self->port);
    PQconninfoFree (options);
    if (self->socket_dir && self->socket_dir [0] != '/') {
        snprintf (error, error_size, "--postgres-socket-dir must be an absolute path");
        free (self->admin_url);
        free (self->socket_dir);
        free (self->port);
        free (self->tcp_host);
        free (self);
        return NULL;
    }
    return self;
}

static void
s_destroy (void *state)
{
    s_postgres_t *self = (s_postgres_t *) state;
    free (self->admin_url);
    free (self->socket_dir);
    free (self->port);
    free (self->tcp_host);
    free (self);
}

//  libpq's message without its trailing newline, for the user
static void
s_error (char *error, size_t error_size, const char *what, const char *message)
{
    snprintf (error, error_size, "%s: %s", what, message && *message? message: "unknown error");
    size_t length = strlen (error);
    while (length && (error [length - 1] == '\n' || error [length - 1] == ' '))
        error [--length] = 0;
}

//  An admin connection (to dbname, or the admin URL's own database), or NULL with error
static PGconn *
s_connect (s_postgres_t *self, const char *dbname, char *error, size_t error_size)
{
    const char *keys [] = { "dbname", "dbname", "connect_timeout", "options", "application_name", NULL };
    const char *values [] = { self->admin_url, dbname, S_CONNECT_TIMEOUT, S_OPTIONS, "clowdy", NULL };
    if (!dbname) {
        keys [1] = "connect_timeout"; values [1] = S_CONNECT_TIMEOUT;
        keys [2] = "options"; values [2] = S_OPTIONS;
        keys [3] = "application_name"; values [3] = "clowdy";
        keys [4] = NULL; values [4] = NULL;
    }
    PGconn *conn = PQconnectdbParams (keys, values, 1);
    if (PQstatus (conn) != CONNECTION_OK) {
        s_error (error, error_size, "Could not connect to the PostgreSQL server", PQerrorMessage (conn));
        PQfinish (conn);
        return NULL;
    }
    return conn;
}

//  Run one statement; 0, or -1 with error
static int
s_exec (PGconn *conn, const char *sql, char *error, size_t error_size)
{
    PGresult *result = PQexec (conn, sql);
    ExecStatusType status = PQresultStatus (result);
    int rc = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK? 0: -1;
    if (rc)
        s_error (error, error_size, "PostgreSQL refused", PQresultErrorMessage (result));
    PQclear (result);
    return rc;
}

static int
s_drop (PGconn *conn, const char *name, char *error, size_t error_size)
{
    char sql [256];
    snprintf (sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    if (s_exec (conn, sql, error, error_size))
        return -1;
    snprintf (sql, sizeof sql, "DROP ROLE IF EXISTS %s", name);
    return s_exec (conn, sql, error, error_size);
}

static int
s_deprovision (void *state, const char *project_id, const char *external_id, char *error, size_t error_size)
{
    (void) external_id;
    s_postgres_t *self = (s_postgres_t *) state;
    PGconn *conn = s_connect (self, NULL, error, error_size);
    if (!conn)
        return -1;
    char name [64];
    snprintf (name, sizeof name, "clowdy_%s", project_id);
    int rc = s_drop (conn, name, error, error_size);
    PQfinish (conn);
    return rc;
}

//  What a function's own database should not show: the server's other
//  databases and roles. Run as the admin inside the project's database.
static const char *s_hidden_catalogs =
    "REVOKE SELECT ON pg_catalog.pg_database, pg_catalog.pg_roles, pg_catalog.pg_user,"
    " pg_catalog.pg_auth_members, pg_catalog.pg_stat_database, pg_catalog.pg_stat_activity,"
    " pg_catalog.pg_shdescription, pg_catalog.pg_db_role_setting, pg_catalog.pg_stat_database_conflicts"
    " FROM PUBLIC";

static int
s_provision (void *state, const char *project_id, dbprovider_info_t *info, const dbprovider_made_t *made,
             char *error, size_t error_size)
{
    (void) made;                    //  Database and role go by project id
    s_postgres_t *self = (s_postgres_t *) state;
    //  The id is 12 lowercase hex digits (dbprovider_provision checked):
    //  the names need no quoting
    char name [64];
    snprintf (name, sizeof name, "clowdy_%s", project_id);
    char password [2 * 24 + 1];
    if (util_random_hex (password, 24)) {
        snprintf (error, error_size, "No randomness for a password");
        return -1;
    }

    PGconn *conn = s_connect (self, NULL, error, error_size);
    if (!conn)
        return -1;
    char sql [1024];
    int rc = s_drop (conn, name, error, error_size);
    if (rc == 0) {
        snprintf (sql, sizeof sql, "CREATE ROLE %s LOGIN PASSWORD '%s' NOSUPERUSER NOCREATEDB NOCREATEROLE"
                  " NOREPLICATION NOBYPASSRLS CONNECTION LIMIT %d", name, password, S_CONNECTION_LIMIT);
        rc = s_exec (conn, sql, error, error_size);
    }
    if (rc == 0) {
        snprintf (sql, sizeof sql, "CREATE DATABASE %s OWNER %s", name, name);
        rc = s_exec (conn, sql, error, error_size);
    }
    if (rc == 0) {
        snprintf (sql, sizeof sql, "REVOKE ALL ON DATABASE %s FROM PUBLIC", name);
        rc = s_exec (conn, sql, error, error_size);
    }
    if (rc == 0) {
        //  PUBLIC's CONNECT elsewhere (see the top): best effort, as a
        //  non-superuser admin may not own those databases
        PGresult *result = PQexec (conn, "SELECT quote_ident (datname) FROM pg_database"
                                         " WHERE datallowconn AND datname NOT LIKE 'clowdy\\_%'");
        for (int row = 0; PQresultStatus (result) == PGRES_TUPLES_OK && row < PQntuples (result); row++) {
            char ignored [DBPROVIDER_ERROR_SIZE];
            const char *other = PQgetvalue (result, row, 0);
            snprintf (sql, sizeof sql, "GRANT CONNECT ON DATABASE %s TO CURRENT_USER", other);
            if (s_exec (conn, sql, ignored, sizeof ignored) == 0) {
                snprintf (sql, sizeof sql, "REVOKE CONNECT ON DATABASE %s FROM PUBLIC", other);
                if (s_exec (conn, sql, ignored, sizeof ignored))
                    zsys_warning ("database: %s", ignored);
            }
        }
        PQclear (result);
        PGconn *inside = s_connect (self, name, error, error_size);
        if (!inside)
            rc = -1;
        else {
            //  The role owns its schema (whatever the server's version
            //  gives PUBLIC there)
            snprintf (sql, sizeof sql, "ALTER SCHEMA public OWNER TO %s", name);
            rc = s_exec (inside, sql, error, error_size);
            if (rc == 0) {
                snprintf (sql, sizeof sql, "REVOKE ALL ON SCHEMA public FROM PUBLIC");
                rc = s_exec (inside, sql, error, error_size);
            }
            char ignored [DBPROVIDER_ERROR_SIZE];
            if (rc == 0 && s_exec (inside, s_hidden_catalogs, ignored, sizeof ignored))
                zsys_warning ("database: %s: %s", name, ignored);
            PQfinish (inside);
        }
    }
    if (rc) {
        char ignored [DBPROVIDER_ERROR_SIZE];
        if (s_drop (conn, name, ignored, sizeof ignored))
            zsys_error ("database: could not clean up %s after a failed provision: %s", name, ignored);
    }
    PQfinish (conn);
    if (rc)
        return -1;
    if (self->tcp_host)
        info->url = zsys_sprintf ("postgresql://%s:%s@%s/%s", name, password, self->tcp_host, name);
    else {
        info->url = zsys_sprintf ("postgresql://%s:%s@/%s?host=%s&port=%s", name, password, name,
                                  DBPROVIDER_POSTGRES_SOCKETS, self->port);
        info->mount_source = strdup (self->socket_dir);
        info->mount_target = strdup (DBPROVIDER_POSTGRES_SOCKETS);
    }
    info->external_id = strdup (name);
    return 0;
}

const dbprovider_ops_t dbprovider_postgres_ops = {
    "postgres", s_create, s_provision, s_deprovision, s_destroy
};


//  --------------------------------------------------------------------------
//  Selftest: settings, and a server that is not there (the real server is
//  tests/e2e/test_database.py's)

void
dbprovider_postgres_test (bool verbose)
{
    printf ("dbprovider_postgres: ");
    config_t config;
    char error [DBPROVIDER_ERROR_SIZE];
    char *argv [] = { "clowdy", "--database-provider", "postgres", "--postgres-admin-url",
                      "host=/nonexistent/pg port=5999 user=admin dbname=postgres", NULL };
    assert (config_parse (&config, 5, argv, error, sizeof error) == 0);
    dbprovider_t *provider = dbprovider_new (&config, error, sizeof error);
    assert (provider);
    assert (streq (dbprovider_name (provider), "postgres"));
    dbprovider_info_t info;
    assert (dbprovider_provision (provider, "abcdefabcdef", &info, error, sizeof error) == -1);
    assert (strstr (error, "Could not connect to the PostgreSQL server"));
    assert (!info.url);
    assert (dbprovider_provision (provider, "ABC;DROP", &info, error, sizeof error) == -1);
    assert (streq (error, "Invalid project id"));
    assert (dbprovider_deprovision (provider, "abcdefabcdef", NULL, error, sizeof error) == -1);
    assert (strstr (error, "/nonexistent/pg"));
    dbprovider_destroy (&provider);
    config_reset (&config);

    char *bad [] = { "clowdy", "--database-provider", "postgres", "--postgres-admin-url", "nonsense", NULL };
    assert (config_parse (&config, 5, bad, error, sizeof error) == 0);
    assert (dbprovider_new (&config, error, sizeof error) == NULL);
    assert (strstr (error, "--postgres-admin-url"));
    config_reset (&config);
    if (verbose)
        printf ("(%s) ", error);
    printf ("OK\n");
}
