/*  =========================================================================
    dbprovider - the provider interface and its default: a SQLite file

    See dbprovider.h for the interface. The sqlite provider gives each
    project <data_dir>/databases/<project id>/db.sqlite3, bound read-write
    at /opt/database in that project's sandboxes only (other projects' sandboxes
    bind nothing there), so DATABASE_URL is sqlite:////opt/database/db.sqlite3.

    Sharing: every environment of the project opens the same file. It is
    made in WAL mode here (the mode is stored in the file), and SQLite's
    own locks (fcntl on the file and its -shm, all on the one host file
    system) keep concurrent writers safe.

    Permissions: each sandbox runs under its own host uid (a slot's range),
    so the three files SQLite uses (db.sqlite3 and its -wal and -shm) are
    0666, made here. The dir itself is the server's, 0755: a function can
    write those three files and make nothing else there, no other file,
    directory or link (see s_sqlite_seal). Only the project's sandboxes
    can reach the dir: databases/ itself is 0711 (no listing) and the data
    dir is the server's.

    Size cap (--sqlite-db-max-mb): the gateway passes it to the runner,
    which gives SQLite connections a max_page_count for it and sets
    RLIMIT_FSIZE (soft and hard, so it stays) at twice the cap plus 8 MB,
    with SIGXFSZ ignored: a write past it fails with EFBIG. With no other
    file to make, and fallocate's KEEP_SIZE refused by the seccomp filter
    (it reserves blocks that RLIMIT_FSIZE does not count), a project's
    database takes at most three times that limit of the host's disk.
    ========================================================================= */

#include <czmq.h>
#include <dirent.h>
#include <fcntl.h>
#include <sqlite3.h>
#include "core/dbprovider.h"
#include "core/util.h"

struct _dbprovider_t {
    const dbprovider_ops_t *ops;    //  The provider's calls
    void *state;                    //  Its state
    dbprovider_made_t made;         //  Whom it tells what it made
};

dbprovider_t *
dbprovider_new (const config_t *config, char *error, size_t error_size)
{
    const dbprovider_ops_t *all [] = { &dbprovider_sqlite_ops, &dbprovider_postgres_ops, &dbprovider_neon_ops };
    for (size_t index = 0; index < sizeof all / sizeof all [0]; index++)
        if (streq (all [index]->name, config->database_provider)) {
            void *state = all [index]->create (config, error, error_size);
            if (!state)
                return NULL;
            dbprovider_t *self = (dbprovider_t *) zmalloc (sizeof (dbprovider_t));
            self->ops = all [index];
            self->state = state;
            return self;
        }
    snprintf (error, error_size, "unknown database provider '%s'", config->database_provider);
    return NULL;
}

const char *
dbprovider_name (dbprovider_t *self)
{
    return self->ops->name;
}

void
dbprovider_set_made_handler (dbprovider_t *self, dbprovider_made_fn *handler, void *arg)
{
    self->made.handler = handler;
    self->made.arg = arg;
}

void
dbprovider_made (const dbprovider_made_t *made, const char *project_id, const char *external_id)
{
    if (made && made->handler)
        made->handler (project_id, external_id, made->arg);
}

int
dbprovider_provision (dbprovider_t *self, const char *project_id, dbprovider_info_t *info,
                      char *error, size_t error_size)
{
    memset (info, 0, sizeof *info);
    *error = 0;
    //  Providers put the id in paths and SQL names as it is: 12 lowercase
    //  hex digits need no quoting and cannot climb out of a directory
    if (!util_is_id (project_id)) {
        snprintf (error, error_size, "Invalid project id");
        return -1;
    }
    int rc = self->ops->provision (self->state, project_id, info, &self->made, error, error_size);
    if (rc) {
        char *stayed = info->external_id;
        info->external_id = NULL;
        dbprovider_info_reset (info);
        info->external_id = stayed;
    }
    if (rc && !*error)
        snprintf (error, error_size, "The database could not be provisioned");
    return rc;
}

int
dbprovider_deprovision (dbprovider_t *self, const char *project_id, const char *external_id,
                        char *error, size_t error_size)
{
    *error = 0;
    if (!util_is_id (project_id)) {
        snprintf (error, error_size, "Invalid project id");
        return -1;
    }
    int rc = self->ops->deprovision (self->state, project_id, external_id, error, error_size);
    if (rc && !*error)
        snprintf (error, error_size, "The database could not be deprovisioned");
    return rc;
}

void
dbprovider_info_reset (dbprovider_info_t *info)
{
    free (info->url);
    free (info->mount_source);
    free (info->mount_target);
    free (info->external_id);
    memset (info, 0, sizeof *info);
}

void
dbprovider_destroy (dbprovider_t **self_p)
{
    if (self_p && *self_p) {
        (*self_p)->ops->destroy ((*self_p)->state);
        free (*self_p);
        *self_p = NULL;
    }
}


//  --------------------------------------------------------------------------
//  sqlite

typedef struct {
    char *root;                     //  Absolute <data_dir>/databases
    int max_mb;                     //  Size cap
} s_sqlite_t;

//  Make the project's dir, open as dir_fd, hold only the database's files:
//  the dir becomes the server's 0755, and the -wal and -shm are made here
//  (0666), since SQLite in a sandbox can no longer make them. SQLite then
//  cannot remove them at its last close either, which it ignores: they stay,
//  as with its own PERSIST_WAL, and the next connection reads them as a
//  crash would leave them. Dirs of projects provisioned before this were
//  0777 and may hold anything a function left, links included: an entry
//  in a -wal or -shm's place that is not a plain file is replaced (never
//  followed). 0, or -1 with errno.
static int
s_sqlite_seal (int dir_fd)
{
    if (fchmod (dir_fd, 0755))
        return -1;
    const char *names [] = { "db.sqlite3-wal", "db.sqlite3-shm" };
    for (size_t index = 0; index < sizeof names / sizeof names [0]; index++) {
        int flags = O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
        int fd = openat (dir_fd, names [index], flags, 0666);
        struct stat status;
        if (fd >= 0 && (fstat (fd, &status) || !S_ISREG (status.st_mode))) {
            close (fd);
            fd = -1;
            errno = ELOOP;          //  Not a plain file: replaced, as a link is
        }
        if (fd < 0 && (errno == ELOOP || errno == ENXIO)) {
            if (unlinkat (dir_fd, names [index], 0))
                return -1;
            fd = openat (dir_fd, names [index], flags | O_EXCL, 0666);
        }
        if (fd < 0)
            return -1;
        int rc = fchmod (fd, 0666);
        int saved = errno;
        close (fd);
        if (rc) {
            errno = saved;
            return -1;
        }
    }
    return 0;
}

//  At start: seal the dirs of projects provisioned before s_sqlite_seal was
//  (each one is sealed again, which changes nothing)
static void
s_sqlite_seal_all (const char *root)
{
    DIR *dir = opendir (root);
    struct dirent *entry;
    while (dir && (entry = readdir (dir))) {
        if (!util_is_id (entry->d_name))
            continue;
        int fd = openat (dirfd (dir), entry->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || s_sqlite_seal (fd))
            zsys_warning ("database: cannot keep %s/%s to its database files: %s",
                          root, entry->d_name, strerror (errno));
        if (fd >= 0)
            close (fd);
    }
    if (dir)
        closedir (dir);
}

static void *
s_sqlite_create (const config_t *config, char *error, size_t error_size)
{
    char *data_dir = realpath (config->data_dir, NULL);
    if (!data_dir) {
        snprintf (error, error_size, "data dir %s: %s", config->data_dir, strerror (errno));
        return NULL;
    }
    s_sqlite_t *self = (s_sqlite_t *) zmalloc (sizeof (s_sqlite_t));
    self->root = zsys_sprintf ("%s/databases", data_dir);
    free (data_dir);
    self->max_mb = (int) config->sqlite_db_max_mb;
    if ((mkdir (self->root, 0711) && errno != EEXIST) || chmod (self->root, 0711)) {
        snprintf (error, error_size, "cannot make %s: %s", self->root, strerror (errno));
        free (self->root);
        free (self);
        return NULL;
    }
    s_sqlite_seal_all (self->root);
    return self;
}

//  Removing a project's files. The function may still run while this does,
//  and may swap any entry for a symlink at any moment: every step is
//  relative to a descriptor and never follows a link (openat O_NOFOLLOW,
//  unlinkat, renameat2), so no swap can lead it out of the tree, as a walk
//  by path name (nftw) could. The tree may be of any depth, and the walk
//  holds two descriptors per level: it goes at most S_REMOVE_DEPTH levels
//  down, and a directory found there moves up into the top directory under
//  a fresh name, to be taken apart by the next pass. Each pass removes the
//  first S_REMOVE_DEPTH levels of every tree it meets, so passes end when
//  one finds the top empty, or when one changes nothing (what stays says
//  why in errno), or after S_REMOVE_PASSES (a function that keeps adding
//  while we remove): the caller says so and its job tries again later.
#define S_REMOVE_DEPTH      32          //  levels one pass goes down
#define S_REMOVE_PASSES     10000       //  passes one removal makes at most

typedef struct {
    int top_fd;                     //  The directory being emptied
    size_t seen;                    //  Entries of the top seen in this pass
    size_t removed;                 //  Entries removed in this pass
    size_t moved;                   //  Directories moved up to the top in this pass
    int error;                      //  errno of the first entry that stayed, or 0
} s_remove_t;

//  Move the directory name in dir_fd up into the top directory, under a
//  fresh name that cannot replace anything there. 0, or -1 with errno.
static int
s_remove_move_up (s_remove_t *self, int dir_fd, const char *name)
{
    for (int attempt = 0; attempt < 8; attempt++) {
        char fresh [32] = ".clowdy-deep-";
        if (util_random_hex (fresh + strlen (fresh), 8))
            return -1;
        int rc = renameat2 (dir_fd, name, self->top_fd, fresh, RENAME_NOREPLACE);
        if (rc && errno == EINVAL)
            //  A file system without RENAME_NOREPLACE: 64 random bits name
            //  nothing there
            rc = renameat (dir_fd, name, self->top_fd, fresh);
        if (rc == 0 || errno != EEXIST)
            return rc;
    }
    return -1;
}

//  One pass over the directory open as dir_fd, depth levels under the top
static void
s_remove_pass (s_remove_t *self, int dir_fd, int depth)
{
    int copy = dup (dir_fd);
    DIR *dir = copy >= 0? fdopendir (copy): NULL;
    if (!dir) {
        if (!self->error)
            self->error = errno;
        if (copy >= 0)
            close (copy);
        return;
    }
    rewinddir (dir);                //  The copy shares dir_fd's offset: where the last pass ended
    struct dirent *entry;
    while ((entry = readdir (dir))) {
        if (streq (entry->d_name, ".") || streq (entry->d_name, ".."))
            continue;
        if (depth == 0)
            self->seen++;
        int rc;
        int child = openat (dir_fd, entry->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (child < 0)
            rc = unlinkat (dir_fd, entry->d_name, 0);
        else
        if (depth + 1 < S_REMOVE_DEPTH) {
            s_remove_pass (self, child, depth + 1);
            close (child);
            rc = unlinkat (dir_fd, entry->d_name, AT_REMOVEDIR);
        }
        else {
            close (child);
            rc = s_remove_move_up (self, dir_fd, entry->d_name);
            if (rc == 0) {
                self->moved++;
                continue;
            }
        }
        if (rc == 0 || errno == ENOENT)
            self->removed++;        //  Gone, whoever removed it
        else
        if (!self->error)
            self->error = errno;
    }
    closedir (dir);
}

//  Remove everything under the directory open as dir_fd. 0, or -1 with
//  errno if something stayed.
static int
s_remove_under (int dir_fd)
{
    s_remove_t remove = { .top_fd = dir_fd };
    for (int pass = 0; pass < S_REMOVE_PASSES; pass++) {
        remove.seen = 0;
        remove.removed = 0;
        remove.moved = 0;
        remove.error = 0;
        s_remove_pass (&remove, dir_fd, 0);
        //  Done when a pass finds the top empty: one that moved directories
        //  up, into the top it was reading, may or may not have seen them
        if (remove.seen == 0 && remove.error == 0)
            return 0;
        if (remove.removed == 0 && remove.moved == 0)
            break;                  //  What stays, stays
    }
    errno = remove.error? remove.error: ENOTEMPTY;
    return -1;
}

static int
s_sqlite_deprovision (void *state, const char *project_id, const char *external_id,
                      char *error, size_t error_size)
{
    (void) external_id;
    s_sqlite_t *self = (s_sqlite_t *) state;
    int rc = 0;
    int root = open (self->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int dir = root >= 0? openat (root, project_id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC): -1;
    if (dir >= 0) {
        rc = s_remove_under (dir);
        int saved = errno;
        close (dir);
        errno = saved;
        if (rc == 0 && unlinkat (root, project_id, AT_REMOVEDIR) && errno != ENOENT)
            rc = -1;
    }
    else
    if (root < 0 || errno != ENOENT)
        rc = -1;
    if (rc) {
        snprintf (error, error_size, "Could not remove the database files: %s", strerror (errno));
        zsys_error ("database: cannot remove %s/%s: %s", self->root, project_id, strerror (errno));
    }
    if (root >= 0)
        close (root);
    return rc;
}

static int
s_sqlite_provision (void *state, const char *project_id, dbprovider_info_t *info, const dbprovider_made_t *made,
                    char *error, size_t error_size)
{
    (void) made;                    //  Nothing outside: the files go by project id
    s_sqlite_t *self = (s_sqlite_t *) state;
    //  A leftover of an attempt that died half way goes first
    if (s_sqlite_deprovision (state, project_id, NULL, error, error_size))
        return -1;
    char *dir = zsys_sprintf ("%s/%s", self->root, project_id);
    char *file = zsys_sprintf ("%s/db.sqlite3", dir);
    sqlite3 *db = NULL;
    int rc = -1;
    if (mkdir (dir, 0755) || chmod (dir, 0755))
        snprintf (error, error_size, "Could not make the database directory: %s", strerror (errno));
    else
    if (sqlite3_open_v2 (file, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK
    ||  sqlite3_exec (db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK)
        snprintf (error, error_size, "Could not create the database file: %s", db? sqlite3_errmsg (db): "out of memory");
    else
        rc = 0;
    sqlite3_close (db);
    if (rc == 0 && chmod (file, 0666)) {
        snprintf (error, error_size, "Could not open up the database file: %s", strerror (errno));
        rc = -1;
    }
    if (rc == 0) {
        int dir_fd = open (dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dir_fd < 0 || s_sqlite_seal (dir_fd)) {
            snprintf (error, error_size, "Could not make the database's journal files: %s", strerror (errno));
            rc = -1;
        }
        if (dir_fd >= 0)
            close (dir_fd);
    }
    if (rc == 0) {
        info->url = strdup ("sqlite:///" DBPROVIDER_SQLITE_FILE);
        info->mount_source = strdup (dir);
        info->mount_target = strdup (DBPROVIDER_SQLITE_DIR);
        info->file_limit_mb = self->max_mb;
    }
    else {
        char ignored [DBPROVIDER_ERROR_SIZE];
        s_sqlite_deprovision (state, project_id, NULL, ignored, sizeof ignored);
    }
    free (file);
    free (dir);
    return rc;
}

static void
s_sqlite_destroy (void *state)
{
    s_sqlite_t *self = (s_sqlite_t *) state;
    free (self->root);
    free (self);
}

const dbprovider_ops_t dbprovider_sqlite_ops = {
    "sqlite", s_sqlite_create, s_sqlite_provision, s_sqlite_deprovision, s_sqlite_destroy
};


//  --------------------------------------------------------------------------
//  Selftest: the sqlite provider on a temp data dir

void
dbprovider_test (bool verbose)
{
    printf ("dbprovider: ");
    char template [] = "/tmp/clowdy-dbprovider-XXXXXX";
    char *data_dir = mkdtemp (template);
    assert (data_dir);
    config_t config;
    char error [DBPROVIDER_ERROR_SIZE];
    char *argv [] = { "clowdy", "--data-dir", data_dir, "--sqlite-db-max-mb", "7", NULL };
    assert (config_parse (&config, 5, argv, error, sizeof error) == 0);
    dbprovider_t *provider = dbprovider_new (&config, error, sizeof error);
    assert (provider);
    assert (streq (dbprovider_name (provider), "sqlite"));

    dbprovider_info_t info;
    //  An id that is not one is refused before a provider sees it
    const char *not_ids [] = { "", "..", "../../etc", "ABCDEFABCDEF", "abcdefabcde", "abcdefabcdef0", NULL };
    for (const char **id = not_ids; *id; id++) {
        assert (dbprovider_provision (provider, *id, &info, error, sizeof error) == -1);
        assert (streq (error, "Invalid project id") && !info.url);
        assert (dbprovider_deprovision (provider, *id, NULL, error, sizeof error) == -1);
        assert (streq (error, "Invalid project id"));
    }
    assert (dbprovider_provision (provider, "abcdefabcdef", &info, error, sizeof error) == 0);
    assert (streq (info.url, "sqlite:////opt/database/db.sqlite3"));
    assert (streq (info.mount_target, "/opt/database"));
    assert (info.file_limit_mb == 7);
    char *file = zsys_sprintf ("%s/db.sqlite3", info.mount_source);
    struct stat status;
    assert (stat (file, &status) == 0 && (status.st_mode & 0777) == 0666);
    //  The dir is the server's: a function writes the three files, makes none
    assert (stat (info.mount_source, &status) == 0 && (status.st_mode & 0777) == 0755);
    assert (status.st_uid == geteuid ());
    const char *journals [] = { "db.sqlite3-wal", "db.sqlite3-shm" };
    for (size_t index = 0; index < 2; index++) {
        char *journal = zsys_sprintf ("%s/%s", info.mount_source, journals [index]);
        assert (lstat (journal, &status) == 0 && S_ISREG (status.st_mode) && (status.st_mode & 0777) == 0666);
        zstr_free (&journal);
    }
    //  A dir from before the seal (0777, and a function's link and fifo
    //  where the journals go) is sealed when the provider starts: the link
    //  is replaced, not followed, and what it pointed at is untouched
    {
        char *legacy = zsys_sprintf ("%s/databases/0123456789ab", data_dir);
        assert (mkdir (legacy, 0777) == 0 && chmod (legacy, 0777) == 0);
        char *target = zsys_sprintf ("%s/target", data_dir);
        FILE *kept = fopen (target, "w");
        assert (kept && fputs ("kept", kept) >= 0 && fclose (kept) == 0);
        chmod (target, 0600);
        char *wal = zsys_sprintf ("%s/db.sqlite3-wal", legacy);
        char *shm = zsys_sprintf ("%s/db.sqlite3-shm", legacy);
        assert (symlink (target, wal) == 0 && mkfifo (shm, 0600) == 0);
        dbprovider_t *again = dbprovider_new (&config, error, sizeof error);
        assert (again);
        assert (stat (legacy, &status) == 0 && (status.st_mode & 0777) == 0755);
        assert (lstat (wal, &status) == 0 && S_ISREG (status.st_mode) && (status.st_mode & 0777) == 0666);
        assert (status.st_size == 0);
        assert (lstat (shm, &status) == 0 && S_ISREG (status.st_mode) && (status.st_mode & 0777) == 0666);
        assert (stat (target, &status) == 0 && (status.st_mode & 0777) == 0600 && status.st_size == 4);
        assert (dbprovider_deprovision (again, "0123456789ab", NULL, error, sizeof error) == 0);
        assert (stat (legacy, &status) == -1 && errno == ENOENT);
        dbprovider_destroy (&again);
        unlink (target);
        zstr_free (&wal);
        zstr_free (&shm);
        zstr_free (&target);
        zstr_free (&legacy);
    }
    //  Provisioning again starts afresh; deprovision removes everything,
    //  files the function made too, and twice is fine
    char *extra = zsys_sprintf ("%s/other", info.mount_source);
    FILE *handle = fopen (extra, "w");
    assert (handle);
    fclose (handle);
    //  A function's links lead nowhere: a link to a directory outside (here
    //  the data dir, holding a file of the server's) and a nested directory
    //  go; what the link points at stays
    char *outside = zsys_sprintf ("%s/server-file", data_dir);
    handle = fopen (outside, "w");
    assert (handle);
    fclose (handle);
    char *link = zsys_sprintf ("%s/escape", info.mount_source);
    assert (symlink (data_dir, link) == 0);
    char *nested = zsys_sprintf ("%s/a", info.mount_source);
    assert (mkdir (nested, 0777) == 0);
    char *nested_link = zsys_sprintf ("%s/a/up", info.mount_source);
    assert (symlink (data_dir, nested_link) == 0);
    //  A tree deeper than one removal pass goes (PATH_MAX is no limit: it
    //  is made one level at a time), each level with a file and a link out
    int level = open (info.mount_source, O_RDONLY | O_DIRECTORY);
    assert (level >= 0);
    for (int depth = 0; depth < 200; depth++) {
        assert (mkdirat (level, "deep", 0777) == 0);
        int file_fd = openat (level, "file", O_WRONLY | O_CREAT, 0666);
        assert (file_fd >= 0);
        close (file_fd);
        assert (symlinkat (data_dir, level, "up") == 0);
        int inner = openat (level, "deep", O_RDONLY | O_DIRECTORY);
        assert (inner >= 0);
        close (level);
        level = inner;
    }
    close (level);
    assert (dbprovider_deprovision (provider, "abcdefabcdef", NULL, error, sizeof error) == 0);
    assert (stat (info.mount_source, &status) == -1 && errno == ENOENT);
    assert (stat (outside, &status) == 0);
    unlink (outside);
    zstr_free (&outside);
    zstr_free (&link);
    zstr_free (&nested);
    zstr_free (&nested_link);
    assert (dbprovider_deprovision (provider, "abcdefabcdef", NULL, error, sizeof error) == 0);
    zstr_free (&extra);
    zstr_free (&file);
    dbprovider_info_reset (&info);
    dbprovider_info_reset (&info);
    dbprovider_destroy (&provider);
    dbprovider_destroy (&provider);

    //  Bad settings are reasons, not crashes
    char *bad [] = { "clowdy", "--data-dir", "/nonexistent/clowdy", NULL };
    config_reset (&config);
    assert (config_parse (&config, 3, bad, error, sizeof error) == 0);
    assert (dbprovider_new (&config, error, sizeof error) == NULL);
    assert (strstr (error, "/nonexistent/clowdy"));
    config_reset (&config);
    char *root = zsys_sprintf ("%s/databases", data_dir);
    rmdir (root);
    zstr_free (&root);
    rmdir (data_dir);
    if (verbose)
        printf ("(sqlite) ");
    printf ("OK\n");
}
