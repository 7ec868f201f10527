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
    with SIGXFSZ ignored: a write past it fails with EFBIG. RLIMIT_FSIZE
    checks growth only, so the bound holds while each file's size is
    within it: the seccomp filter refuses fallocate (KEEP_SIZE reserves
    blocks past the end, INSERT_RANGE makes a size without blocks), and
    dirs from earlier versions are brought back within it at start
    (s_sqlite_tidy). With no other file to make, a project's database
    takes at most three times that limit of the host's disk.
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

//  The three files of a project's database, and the dir that keeps, out of
//  functions' reach, what they left beside it before the dir was sealed
static const char *s_sqlite_files [] = { "db.sqlite3", "db.sqlite3-wal", "db.sqlite3-shm" };
#define S_SQLITE_FILES      3
#define S_SQLITE_KEPT       ".clowdy-kept"

//  Make the project's dir, open as dir_fd, hold only the database's files:
//  the dir becomes the server's 0755, the -wal and -shm are made here if
//  they are missing, and the three files are the server's, 0666. SQLite in
//  a sandbox can neither make the journals nor remove them at its last
//  close, which it ignores: they stay, as with its own PERSIST_WAL, and
//  the next connection reads them as a crash would leave them. An entry in
//  their place that is not a plain file (a dir from before the seal may
//  hold one, until s_sqlite_tidy moves it) is an error, never followed.
//  0, or -1 with errno.
static int
s_sqlite_seal (int dir_fd)
{
    if (fchmod (dir_fd, 0755))
        return -1;
    for (size_t index = 0; index < S_SQLITE_FILES; index++) {
        bool journal = index > 0;
        int fd = openat (dir_fd, s_sqlite_files [index],
                         O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | (journal? O_CREAT: 0), 0666);
        if (fd < 0 && !journal && errno == ENOENT)
            continue;               //  The caller makes the database
        if (fd < 0)
            return -1;
        //  A file a function made before the seal was its own, to chmod
        struct stat status;
        int rc = fstat (fd, &status);
        if (rc == 0 && !S_ISREG (status.st_mode)) {
            errno = EEXIST;
            rc = -1;
        }
        if (rc == 0)
            rc = fchown (fd, geteuid (), getegid ());
        if (rc == 0)
            rc = fchmod (fd, 0666);
        int saved = errno;
        close (fd);
        if (rc) {
            errno = saved;
            return -1;
        }
    }
    return 0;
}

int
dbprovider_sqlite_journals (const char *dir)
{
    //  Two stats when they are there, as they nearly always are
    char path [PATH_MAX];
    struct stat status;
    bool there = true;
    for (size_t index = 1; index < S_SQLITE_FILES && there; index++)
        there = snprintf (path, sizeof path, "%s/%s", dir, s_sqlite_files [index]) < (int) sizeof path
             && stat (path, &status) == 0;
    if (there)
        return 0;
    int dir_fd = open (dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int rc = dir_fd < 0? -1: s_sqlite_seal (dir_fd);
    int saved = errno;
    if (dir_fd >= 0)
        close (dir_fd);
    errno = saved;
    return rc;
}

//  Make the database file (in WAL mode, 0666). 0, or -1 with the reason.
static int
s_sqlite_make (const char *file, char *error, size_t error_size)
{
    sqlite3 *db = NULL;
    int rc = -1;
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
    return rc;
}

//  What one tidy (s_sqlite_tidy) did
typedef struct {
    int dir_fd;                     //  The project's dir
    int kept_fd;                    //  Its kept dir, once made, or -1
    size_t moved;                   //  Entries moved into it
    size_t failed;                  //  Steps that failed
    int last_error;                 //  errno of the last of those
} s_tidy_t;

static void
s_tidy_failed (s_tidy_t *tidy)
{
    tidy->failed++;
    tidy->last_error = errno;
}

//  Move the entry name of the project's dir into its kept dir (made at the
//  first move, root's and 0700: no function can reach into it), under a
//  fresh name if its own is taken there
static void
s_tidy_keep (s_tidy_t *tidy, const char *name)
{
    if (tidy->kept_fd < 0) {
        struct stat status;
        if (mkdirat (tidy->dir_fd, S_SQLITE_KEPT, 0700) && errno != EEXIST) {
            s_tidy_failed (tidy);
            return;
        }
        tidy->kept_fd = openat (tidy->dir_fd, S_SQLITE_KEPT, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (tidy->kept_fd >= 0
        &&  (fstat (tidy->kept_fd, &status) || status.st_uid != geteuid () || fchmod (tidy->kept_fd, 0700))) {
            close (tidy->kept_fd);
            tidy->kept_fd = -1;
            errno = EPERM;
        }
        if (tidy->kept_fd < 0) {
            s_tidy_failed (tidy);
            return;
        }
    }
    char fresh [NAME_MAX + 1];
    int rc = renameat2 (tidy->dir_fd, name, tidy->kept_fd, name, RENAME_NOREPLACE);
    if (rc && (errno == EEXIST || errno == EINVAL)) {
        snprintf (fresh, sizeof fresh, "%.200s-", name);
        rc = util_random_hex (fresh + strlen (fresh), 8)? -1
           : renameat (tidy->dir_fd, name, tidy->kept_fd, fresh);
    }
    if (rc)
        s_tidy_failed (tidy);
    else
        tidy->moved++;
}

//  At start, while no sandbox runs: bring a project's dir, open as dir_fd,
//  to what a function can have there since the seal. A dir made by an
//  earlier version was 0777 and may hold anything a function made: every
//  entry but the three plain files moves into .clowdy-kept (an entry of
//  that name that is not the server's dir moves in too, under another
//  name). Each of the three files must be within the backstop the runner
//  sets (RLIMIT_FSIZE, twice the cap plus 8 MB): that limit checks only
//  growth, so a bigger size (fallocate's INSERT_RANGE, refused since)
//  would let writes inside it fill the disk. An oversized journal is set
//  aside (not checkpointed: that could copy gigabytes while the server
//  starts; SQLite checkpoints at 4 MB, so only a hostile or stale one is
//  that big), and so is a database file bigger than the backstop by more
//  than the backstop in holes (a big database from before the cap was
//  lowered has its blocks, and is left as it is); a new, empty database
//  takes its place.
static void
s_sqlite_tidy (s_sqlite_t *self, int dir_fd, const char *project_id)
{
    char *dir = zsys_sprintf ("%s/%s", self->root, project_id);
    int64_t backstop = ((int64_t) 2 * self->max_mb + 8) * 1024 * 1024;
    s_tidy_t tidy = { .dir_fd = dir_fd, .kept_fd = -1 };
    struct stat status;
    if (fchmod (dir_fd, 0755))
        s_tidy_failed (&tidy);
    if (fstatat (dir_fd, S_SQLITE_KEPT, &status, AT_SYMLINK_NOFOLLOW) == 0
    &&  (!S_ISDIR (status.st_mode) || status.st_uid != geteuid ())) {
        char fresh [64] = ".clowdy-moved-";
        if (util_random_hex (fresh + strlen (fresh), 8) || renameat (dir_fd, S_SQLITE_KEPT, dir_fd, fresh))
            s_tidy_failed (&tidy);
    }
    int copy = dup (dir_fd);
    DIR *listing = copy >= 0? fdopendir (copy): NULL;
    if (!listing && copy >= 0)
        close (copy);
    struct dirent *entry;
    while (listing && (entry = readdir (listing))) {
        const char *name = entry->d_name;
        if (streq (name, ".") || streq (name, "..") || streq (name, S_SQLITE_KEPT))
            continue;
        bool own = false;
        for (size_t index = 0; index < S_SQLITE_FILES; index++)
            own = own || streq (name, s_sqlite_files [index]);
        if (!own || fstatat (dir_fd, name, &status, AT_SYMLINK_NOFOLLOW) || !S_ISREG (status.st_mode))
            s_tidy_keep (&tidy, name);
    }
    if (listing)
        closedir (listing);
    //  Sizes past the backstop
    for (size_t index = 1; index < S_SQLITE_FILES; index++)
        if (fstatat (dir_fd, s_sqlite_files [index], &status, AT_SYMLINK_NOFOLLOW) == 0 && status.st_size > backstop)
            s_tidy_keep (&tidy, s_sqlite_files [index]);
    if (fstatat (dir_fd, "db.sqlite3", &status, AT_SYMLINK_NOFOLLOW) == 0 && status.st_size > backstop
    &&  status.st_size - (int64_t) status.st_blocks * 512 > backstop) {
        zsys_warning ("database: project %s: its database file says %jd bytes with %jd on disk, past the"
                      " size cap: set aside in %s/%s", project_id, (intmax_t) status.st_size,
                      (intmax_t) status.st_blocks * 512, dir, S_SQLITE_KEPT);
        s_tidy_keep (&tidy, "db.sqlite3");
    }
    char error [DBPROVIDER_ERROR_SIZE];
    char *file = zsys_sprintf ("%s/db.sqlite3", dir);
    if (fstatat (dir_fd, "db.sqlite3", &status, AT_SYMLINK_NOFOLLOW) && errno == ENOENT
    &&  s_sqlite_make (file, error, sizeof error))
        zsys_warning ("database: project %s: %s", project_id, error);
    if (tidy.moved)
        zsys_warning ("database: project %s: %zu entries beside its database moved to %s/%s, where"
                      " functions cannot reach them", project_id, tidy.moved, dir, S_SQLITE_KEPT);
    if (tidy.failed)
        zsys_warning ("database: project %s: %zu steps of tidying its database dir failed, the last"
                      " with: %s", project_id, tidy.failed, strerror (tidy.last_error));
    if (tidy.kept_fd >= 0)
        close (tidy.kept_fd);
    zstr_free (&file);
    zstr_free (&dir);
}

//  At start: each project's dir tidied (s_sqlite_tidy) and sealed
static void
s_sqlite_seal_all (s_sqlite_t *self)
{
    DIR *dir = opendir (self->root);
    struct dirent *entry;
    while (dir && (entry = readdir (dir))) {
        if (!util_is_id (entry->d_name))
            continue;
        int fd = openat (dirfd (dir), entry->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0)
            s_sqlite_tidy (self, fd, entry->d_name);
        if (fd < 0 || s_sqlite_seal (fd))
            zsys_warning ("database: cannot keep %s/%s to its database files: %s",
                          self->root, entry->d_name, strerror (errno));
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
    s_sqlite_seal_all (self);
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
    int rc = -1;
    if (mkdir (dir, 0755) || chmod (dir, 0755))
        snprintf (error, error_size, "Could not make the database directory: %s", strerror (errno));
    else
        rc = s_sqlite_make (file, error, error_size);
    if (rc == 0 && dbprovider_sqlite_journals (dir)) {
        snprintf (error, error_size, "Could not make the database's journal files: %s", strerror (errno));
        rc = -1;
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
    //  A dir from before the seal (0777) is tidied and sealed when the
    //  provider starts. Here a function left: a link and a fifo where the
    //  journals go, a file and a directory beside them, a .clowdy-kept of
    //  its own, a database file chmod'ed to itself alone, and a WAL whose
    //  size is far past the backstop (as fallocate's INSERT_RANGE made
    //  one). Links are moved, not followed: what one pointed at stays.
    {
        const char *legacy_id = "0123456789ab";
        char *legacy = zsys_sprintf ("%s/databases/%s", data_dir, legacy_id);
        assert (mkdir (legacy, 0777) == 0 && chmod (legacy, 0777) == 0);
        char *target = zsys_sprintf ("%s/target", data_dir);
        FILE *kept = fopen (target, "w");
        assert (kept && fputs ("kept", kept) >= 0 && fclose (kept) == 0);
        chmod (target, 0600);
        int legacy_fd = open (legacy, O_RDONLY | O_DIRECTORY);
        assert (legacy_fd >= 0);
        char *legacy_db = zsys_sprintf ("%s/db.sqlite3", legacy);
        assert (s_sqlite_make (legacy_db, error, sizeof error) == 0);
        assert (chown (legacy_db, 12345, 12345) == 0 && chmod (legacy_db, 0600) == 0);
        assert (symlinkat (target, legacy_fd, "db.sqlite3-wal") == 0);
        assert (mkfifoat (legacy_fd, "db.sqlite3-shm", 0600) == 0);
        assert (mkdirat (legacy_fd, "stash", 0777) == 0 && mkdirat (legacy_fd, ".clowdy-kept", 0777) == 0);
        assert (fchownat (legacy_fd, ".clowdy-kept", 12345, 12345, 0) == 0);
        int fd = openat (legacy_fd, "notes.txt", O_WRONLY | O_CREAT, 0666);
        assert (fd >= 0 && write (fd, "x", 1) == 1);
        close (fd);
        dbprovider_t *again = dbprovider_new (&config, error, sizeof error);
        assert (again);
        assert (fstat (legacy_fd, &status) == 0 && (status.st_mode & 0777) == 0755);
        const char *names [] = { "db.sqlite3", "db.sqlite3-wal", "db.sqlite3-shm" };
        for (size_t index = 0; index < 3; index++) {
            assert (fstatat (legacy_fd, names [index], &status, AT_SYMLINK_NOFOLLOW) == 0);
            assert (S_ISREG (status.st_mode) && (status.st_mode & 0777) == 0666 && status.st_uid == geteuid ());
        }
        assert (stat (target, &status) == 0 && (status.st_mode & 0777) == 0600 && status.st_size == 4);
        //  Beside the three files only the kept dir, the server's and closed
        DIR *listing = fdopendir (dup (legacy_fd));
        struct dirent *entry;
        size_t entries = 0;
        while ((entry = readdir (listing)))
            if (entry->d_name [0] != '.' || streq (entry->d_name, ".clowdy-kept"))
                entries++;
        closedir (listing);
        assert (entries == 4);
        assert (fstatat (legacy_fd, ".clowdy-kept", &status, AT_SYMLINK_NOFOLLOW) == 0);
        assert (S_ISDIR (status.st_mode) && status.st_uid == geteuid () && (status.st_mode & 0777) == 0700);
        int kept_fd = openat (legacy_fd, ".clowdy-kept", O_RDONLY | O_DIRECTORY);
        assert (kept_fd >= 0);
        assert (fstatat (kept_fd, "notes.txt", &status, AT_SYMLINK_NOFOLLOW) == 0 && status.st_size == 1);
        assert (fstatat (kept_fd, "stash", &status, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR (status.st_mode));
        assert (fstatat (kept_fd, "db.sqlite3-wal", &status, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK (status.st_mode));
        close (kept_fd);
        dbprovider_destroy (&again);

        //  Sizes past the backstop (2 x 7 + 8 MB here): a WAL with a size
        //  of 1 GB and no blocks is set aside; so is a database file that is
        //  mostly holes, and a new one takes its place
        int64_t huge = (int64_t) 1 << 30;
        fd = openat (legacy_fd, "db.sqlite3-wal", O_WRONLY);
        assert (fd >= 0 && ftruncate (fd, huge) == 0);
        close (fd);
        again = dbprovider_new (&config, error, sizeof error);
        assert (again);
        assert (fstatat (legacy_fd, "db.sqlite3-wal", &status, AT_SYMLINK_NOFOLLOW) == 0 && status.st_size < huge);
        dbprovider_destroy (&again);
        fd = openat (legacy_fd, "db.sqlite3", O_WRONLY);
        assert (fd >= 0 && ftruncate (fd, huge) == 0);
        close (fd);
        again = dbprovider_new (&config, error, sizeof error);
        assert (again);
        assert (fstatat (legacy_fd, "db.sqlite3", &status, AT_SYMLINK_NOFOLLOW) == 0 && status.st_size < huge);
        assert (status.st_size > 0 && (status.st_mode & 0777) == 0666);
        sqlite3 *db = NULL;
        assert (sqlite3_open_v2 (legacy_db, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
        assert (sqlite3_exec (db, "SELECT count (*) FROM sqlite_master", NULL, NULL, NULL) == SQLITE_OK);
        sqlite3_close (db);
        assert (dbprovider_deprovision (again, legacy_id, NULL, error, sizeof error) == 0);
        assert (fstat (legacy_fd, &status) == 0 && status.st_nlink == 0);
        close (legacy_fd);
        dbprovider_destroy (&again);
        unlink (target);
        zstr_free (&legacy_db);
        zstr_free (&target);
        zstr_free (&legacy);
    }
    //  SQLite on the host removes the journals at its last close; the
    //  worker makes them again before a call
    {
        char *wal = zsys_sprintf ("%s/db.sqlite3-wal", info.mount_source);
        assert (unlink (wal) == 0);
        assert (dbprovider_sqlite_journals (info.mount_source) == 0);
        assert (lstat (wal, &status) == 0 && S_ISREG (status.st_mode) && (status.st_mode & 0777) == 0666);
        zstr_free (&wal);
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
