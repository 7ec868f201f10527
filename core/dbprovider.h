/*  =========================================================================
    dbprovider - one interface over the places a project's database can live

    The database actor (actors/database.c) picks one provider at start-up
    (--database-provider) and calls it only from its provider thread: every
    call may block (file system, libpq, libcurl), each with its own bound.

        sqlite    core/dbprovider_sqlite.c    a file in the data dir
        postgres  core/dbprovider_postgres.c  a database + role on a server
        neon      core/dbprovider_neon.c      a Neon project over REST API v2

    provision makes the project's database and says how functions reach it;
    on failure it removes what it made and says why in error (shown to the
    user). deprovision removes it; removing what is not there succeeds, so
    both may be retried after a crash.

    What a provider makes outside the server under an id of its own (a Neon
    project) is told to the made handler as soon as it exists, before the
    provider waits for it to be ready: a caller that keeps the id can still
    remove it if the process dies half way. And a failed provision whose
    removal failed too keeps that id in info->external_id, for the caller to
    deprovision later; nothing else in info stays.
    ========================================================================= */

#ifndef CLOWDY_DBPROVIDER_H_INCLUDED
#define CLOWDY_DBPROVIDER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include "core/config.h"

#define DBPROVIDER_ERROR_SIZE 512

//  How functions reach a provisioned database
typedef struct {
    char *url;                      //  DATABASE_URL, unmasked
    char *mount_source;             //  Host dir bound into the project's sandboxes, or NULL
    char *mount_target;             //  Where they see it (/opt/NAME)
    int file_limit_mb;              //  > 0: the mount is writable and files are capped at this
    char *external_id;              //  The provider's id (Neon project id), or NULL
} dbprovider_info_t;

typedef struct _dbprovider_t dbprovider_t;

//  Told of what a provision made, under external_id, as soon as it exists
typedef void (dbprovider_made_fn) (const char *project_id, const char *external_id, void *arg);

//  The provider config names; NULL with error filled when it cannot work
//  (bad settings: a reason for the start-up failure line).
dbprovider_t *
    dbprovider_new (const config_t *config, char *error, size_t error_size);

//  "sqlite", "postgres" or "neon"
const char *
    dbprovider_name (dbprovider_t *self);

//  Call handler (with arg) whenever a provision has made something outside
//  under an id (see above); NULL: nobody is told.
void
    dbprovider_set_made_handler (dbprovider_t *self, dbprovider_made_fn *handler, void *arg);

//  Make project_id's database. 0 with info filled, or -1 with error and
//  info empty but for external_id, set when something made stayed.
int
    dbprovider_provision (dbprovider_t *self, const char *project_id, dbprovider_info_t *info,
                          char *error, size_t error_size);

//  Remove it (external_id as provision gave it, or NULL). 0, or -1 with error.
int
    dbprovider_deprovision (dbprovider_t *self, const char *project_id, const char *external_id,
                            char *error, size_t error_size);

//  Free info's strings and zero it; safe twice.
void
    dbprovider_info_reset (dbprovider_info_t *info);

void
    dbprovider_destroy (dbprovider_t **self_p);

//  The sqlite provider: make sure the project's database dir (a mount
//  source) has its -wal and -shm, the server's and 0666, which functions
//  cannot make and SQLite on the host removes at its last close (two stats
//  when they are there). The worker calls it before each call of a
//  function with such a database. 0, or -1 with errno.
int
    dbprovider_sqlite_journals (const char *dir);

//  The providers behind the interface (dbprovider.c dispatches by name)
typedef struct {
    dbprovider_made_fn *handler;    //  Told of what a provision made, or NULL
    void *arg;                      //  Its argument
} dbprovider_made_t;

//  What providers call to tell the made handler
void
    dbprovider_made (const dbprovider_made_t *made, const char *project_id, const char *external_id);

typedef struct {
    const char *name;
    void *(*create) (const config_t *config, char *error, size_t error_size);
    int (*provision) (void *state, const char *project_id, dbprovider_info_t *info, const dbprovider_made_t *made,
                      char *error, size_t error_size);
    int (*deprovision) (void *state, const char *project_id, const char *external_id, char *error, size_t error_size);
    void (*destroy) (void *state);
} dbprovider_ops_t;

extern const dbprovider_ops_t dbprovider_sqlite_ops;
extern const dbprovider_ops_t dbprovider_postgres_ops;
extern const dbprovider_ops_t dbprovider_neon_ops;

//  Fixed paths inside sandboxes
#define DBPROVIDER_SQLITE_DIR       "/opt/database"
#define DBPROVIDER_SQLITE_FILE      "/opt/database/db.sqlite3"
#define DBPROVIDER_POSTGRES_SOCKETS "/opt/postgresql"

void
    dbprovider_test (bool verbose);
void
    dbprovider_postgres_test (bool verbose);
void
    dbprovider_neon_test (bool verbose);

#endif
