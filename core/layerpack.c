/*  =========================================================================
    layerpack - layers packed into one tar to travel, and unpacked safely

    Why one archive and not file by file: the fetch is then a byte range
    copy (credit-based chunks of one file, see actors/layerserver.c), the
    digest is one sha256 over one file, and a half-sent layer is a short
    file, never a half-made tree. Why no compression: the layers are
    mostly small .py and .pyc files, the link is a LAN or loopback, and
    the CPU of a loaded control host is better spent elsewhere.

    Why unpacking is written out here rather than left to
    archive_write_disk: what a hostile or broken control host could send
    is small to list (names with "..", absolute names, links of either
    kind, special files, more bytes than the cap) and each is refused by a
    check that reads as such; the writes then go through openat under one
    directory fd with O_EXCL | O_NOFOLLOW, into a fresh directory where
    nothing but directories and regular files is ever created.
    ========================================================================= */

#include <czmq.h>
#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>
#include "core/layerpack.h"

#define S_ENTRIES_MAX   500000      //  files and directories an archive may hold


//  --------------------------------------------------------------------------
//  Packing

int
layerpack_pack (const char *dir, const char *archive, char digest [LAYERPACK_DIGEST_SIZE])
{
    int rc = -1;
    char root [PATH_MAX];
    snprintf (root, sizeof root, "%s", dir);
    size_t root_len = strlen (root);
    while (root_len > 1 && root [root_len - 1] == '/')
        root [--root_len] = 0;
    struct archive *disk = archive_read_disk_new ();
    struct archive *out = archive_write_new ();
    struct archive_entry *entry = archive_entry_new ();
    char *buffer = (char *) malloc (65536);
    assert (disk && out && entry && buffer);
    archive_read_disk_set_symlink_physical (disk);
    archive_write_set_format_pax_restricted (out);
    if (archive_read_disk_open (disk, root) != ARCHIVE_OK) {
        zsys_error ("layerpack: cannot read %s: %s", root, archive_error_string (disk));
        goto cleanup;
    }
    if (archive_write_open_filename (out, archive) != ARCHIVE_OK) {
        zsys_error ("layerpack: cannot write %s: %s", archive, archive_error_string (out));
        goto cleanup;
    }
    int status;
    while ((status = archive_read_next_header2 (disk, entry)) == ARCHIVE_OK) {
        archive_read_disk_descend (disk);
        const char *path = archive_entry_pathname (entry);
        mode_t type = archive_entry_filetype (entry);
        if (!path || strncmp (path, root, root_len) != 0 || path [root_len] != '/' || !path [root_len + 1]
        ||  (type != AE_IFREG && type != AE_IFDIR)) {
            archive_entry_clear (entry);
            continue;                   //  The root itself, or what a layer does not hold
        }
        char name [PATH_MAX];
        snprintf (name, sizeof name, "%s", path + root_len + 1);
        archive_entry_set_pathname (entry, name);
        archive_entry_set_uid (entry, 0);
        archive_entry_set_gid (entry, 0);
        archive_entry_set_uname (entry, NULL);
        archive_entry_set_gname (entry, NULL);
        archive_entry_set_perm (entry, archive_entry_perm (entry) & 0755);
        if (archive_write_header (out, entry) != ARCHIVE_OK) {
            zsys_error ("layerpack: %s: %s", name, archive_error_string (out));
            goto cleanup;
        }
        if (type == AE_IFREG) {
            la_ssize_t got;
            while ((got = archive_read_data (disk, buffer, 65536)) > 0)
                if (archive_write_data (out, buffer, (size_t) got) != got) {
                    zsys_error ("layerpack: %s: %s", name, archive_error_string (out));
                    goto cleanup;
                }
            if (got < 0) {
                zsys_error ("layerpack: %s: %s", name, archive_error_string (disk));
                goto cleanup;
            }
        }
        archive_entry_clear (entry);
    }
    if (status != ARCHIVE_EOF) {
        zsys_error ("layerpack: walking %s: %s", root, archive_error_string (disk));
        goto cleanup;
    }
    if (archive_write_close (out) != ARCHIVE_OK) {
        zsys_error ("layerpack: %s: %s", archive, archive_error_string (out));
        goto cleanup;
    }
    rc = layerpack_file_digest (archive, digest);
cleanup:
    free (buffer);
    archive_entry_free (entry);
    archive_read_free (disk);
    archive_write_free (out);
    return rc;
}

int
layerpack_file_digest (const char *path, char digest [LAYERPACK_DIGEST_SIZE])
{
    FILE *file = fopen (path, "rb");
    if (!file)
        return -1;
    EVP_MD_CTX *context = EVP_MD_CTX_new ();
    assert (context);
    EVP_DigestInit_ex (context, EVP_sha256 (), NULL);
    char *buffer = (char *) malloc (65536);
    assert (buffer);
    size_t got;
    while ((got = fread (buffer, 1, 65536, file)) > 0)
        EVP_DigestUpdate (context, buffer, got);
    int rc = ferror (file)? -1: 0;
    unsigned char sum [EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    EVP_DigestFinal_ex (context, sum, &size);
    for (unsigned int index = 0; index < size && index < 32; index++)
        snprintf (digest + 2 * index, 3, "%02x", sum [index]);
    digest [64] = 0;
    free (buffer);
    EVP_MD_CTX_free (context);
    fclose (file);
    return rc;
}


//  --------------------------------------------------------------------------
//  Unpacking

//  Is name (trailing '/' already dropped) a relative path that stays
//  inside: no empty, "." or ".." component, not absolute?
static bool
s_name_safe (const char *name)
{
    if (!*name || *name == '/' || strlen (name) >= PATH_MAX - 1)
        return false;
    const char *cursor = name;
    while (*cursor) {
        size_t length = strcspn (cursor, "/");
        if (length == 0 || (length == 1 && cursor [0] == '.') || (length == 2 && cursor [0] == '.' && cursor [1] == '.'))
            return false;
        cursor += length;
        if (*cursor == '/')
            cursor++;
        if (!*cursor && cursor [-1] == '/')
            return false;
    }
    return true;
}

//  Make the directories leading to name (each component but the last)
static int
s_make_parents (int root, char *name)
{
    for (char *slash = strchr (name, '/'); slash; slash = strchr (slash + 1, '/')) {
        *slash = 0;
        struct stat info;
        int rc = mkdirat (root, name, 0755);
        if (rc && errno == EEXIST)
            rc = fstatat (root, name, &info, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR (info.st_mode)? 0: -1;
        *slash = '/';
        if (rc)
            return -1;
    }
    return 0;
}

int
layerpack_unpack (const char *archive, const char *dir, int64_t cap, char *error, size_t error_size)
{
    *error = 0;
    int root = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) {
        snprintf (error, error_size, "cannot open %s: %s", dir, strerror (errno));
        return -1;
    }
    struct archive *in = archive_read_new ();
    assert (in);
    archive_read_support_format_tar (in);
    char *buffer = (char *) malloc (65536);
    assert (buffer);
    int64_t total = 0;
    long entries = 0;
    if (archive_read_open_filename (in, archive, 65536) != ARCHIVE_OK)
        snprintf (error, error_size, "the layer archive cannot be read: %s", archive_error_string (in));
    struct archive_entry *entry;
    int status = ARCHIVE_FATAL;
    while (!*error && (status = archive_read_next_header (in, &entry)) == ARCHIVE_OK) {
        char name [PATH_MAX];
        const char *raw = archive_entry_pathname (entry);
        snprintf (name, sizeof name, "%s", raw? raw: "");
        size_t length = strlen (name);
        mode_t type = archive_entry_filetype (entry);
        if (type == AE_IFDIR && length > 1 && name [length - 1] == '/')
            name [--length] = 0;
        if (++entries > S_ENTRIES_MAX)
            snprintf (error, error_size, "the layer archive holds more than %d entries", S_ENTRIES_MAX);
        else
        if (!s_name_safe (name))
            snprintf (error, error_size, "the layer archive holds an unsafe name '%.100s' (absolute, empty, or "
                      "with a '..' component)", name);
        else
        if (archive_entry_hardlink (entry) || archive_entry_symlink (entry) || type == AE_IFLNK)
            snprintf (error, error_size, "the layer archive holds a link ('%.100s'): a layer holds only files "
                      "and directories", name);
        else
        if (type != AE_IFREG && type != AE_IFDIR)
            snprintf (error, error_size, "the layer archive holds '%.100s', which is neither a file nor a "
                      "directory", name);
        else
        if (s_make_parents (root, name))
            snprintf (error, error_size, "cannot make the directories of '%.100s': %s", name, strerror (errno));
        if (*error)
            break;
        mode_t mode = (archive_entry_perm (entry) & 0755) | (type == AE_IFDIR? 0700: 0600);
        if (type == AE_IFDIR) {
            struct stat info;
            if (mkdirat (root, name, mode)
            &&  !(errno == EEXIST && fstatat (root, name, &info, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR (info.st_mode)))
                snprintf (error, error_size, "cannot make the directory '%.100s': %s", name, strerror (errno));
            continue;
        }
        int64_t size = archive_entry_size (entry);
        if (size < 0 || total + size > cap) {
            snprintf (error, error_size, "the layer archive is over the size cap (%.1f MB)", cap / 1048576.0);
            break;
        }
        int fd = openat (root, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0) {
            snprintf (error, error_size, "cannot create '%.100s': %s", name, strerror (errno));
            break;
        }
        int64_t written = 0;
        la_ssize_t got;
        while (!*error && (got = archive_read_data (in, buffer, 65536)) > 0) {
            written += got;
            if (written > size || write (fd, buffer, (size_t) got) != got)
                snprintf (error, error_size, "cannot write '%.100s'", name);
        }
        if (!*error && (got < 0 || written != size))
            snprintf (error, error_size, "the layer archive is cut short in '%.100s'", name);
        if (close (fd) && !*error)
            snprintf (error, error_size, "cannot write '%.100s': %s", name, strerror (errno));
        total += size;
    }
    if (!*error && status != ARCHIVE_EOF)
        snprintf (error, error_size, "the layer archive is not a readable tar: %s", archive_error_string (in));
    free (buffer);
    archive_read_free (in);
    close (root);
    return *error? -1: 0;
}


//  --------------------------------------------------------------------------
//  Selftest: a tree round-trips; hostile archives are refused

static void
s_test_write (const char *path, const char *text)
{
    FILE *file = fopen (path, "w");
    assert (file);
    fputs (text, file);
    fclose (file);
}

//  A tar at path with one entry of the given type and name
static void
s_test_hostile (const char *path, const char *name, mode_t type, const char *link)
{
    struct archive *out = archive_write_new ();
    archive_write_set_format_pax_restricted (out);
    assert (archive_write_open_filename (out, path) == ARCHIVE_OK);
    struct archive_entry *entry = archive_entry_new ();
    archive_entry_set_pathname (entry, name);
    archive_entry_set_filetype (entry, type);
    archive_entry_set_perm (entry, 0644);
    if (type == AE_IFLNK)
        archive_entry_set_symlink (entry, link);
    if (link && type == AE_IFREG)
        archive_entry_set_hardlink (entry, link);
    archive_entry_set_size (entry, type == AE_IFREG && !link? 2: 0);
    assert (archive_write_header (out, entry) == ARCHIVE_OK);
    if (type == AE_IFREG && !link)
        archive_write_data (out, "x\n", 2);
    archive_entry_free (entry);
    archive_write_close (out);
    archive_write_free (out);
}

static void
s_test_refused (const char *work, const char *name, mode_t type, const char *link, const char *says)
{
    char *tar = zsys_sprintf ("%s/hostile.tar", work);
    char *into = zsys_sprintf ("%s/into", work);
    s_test_hostile (tar, name, type, link);
    char *command = zsys_sprintf ("rm -rf %s && mkdir %s", into, into);
    assert (system (command) == 0);
    char error [256];
    int rc = layerpack_unpack (tar, into, 1 << 20, error, sizeof error);
    if (rc == 0 || !strstr (error, says))
        fprintf (stderr, "'%s': %s\n", name, rc? error: "accepted");
    assert (rc == -1 && strstr (error, says));
    zstr_free (&command);
    zstr_free (&tar);
    zstr_free (&into);
}

void
layerpack_test (bool verbose)
{
    printf ("layerpack: ");
    char template [] = "/tmp/clowdy-layerpack-XXXXXX";
    char *work = mkdtemp (template);
    assert (work);
    char *path = zsys_sprintf ("%s/tree", work);
    assert (mkdir (path, 0755) == 0);
    zstr_free (&path);
    path = zsys_sprintf ("%s/tree/pkg", work);
    assert (mkdir (path, 0755) == 0);
    zstr_free (&path);
    path = zsys_sprintf ("%s/tree/pkg/__init__.py", work);
    s_test_write (path, "X = 1\n");
    zstr_free (&path);
    path = zsys_sprintf ("%s/tree/top.py", work);
    s_test_write (path, "Y = 2\n");
    assert (chmod (path, 0755) == 0);
    zstr_free (&path);
    path = zsys_sprintf ("%s/tree/pkg/link", work);
    assert (symlink ("/etc/passwd", path) == 0);     //  not packed
    zstr_free (&path);

    //  Round trip: the same files, modes kept, the link left out
    char *tar = zsys_sprintf ("%s/layer.tar", work);
    char digest [LAYERPACK_DIGEST_SIZE], again [LAYERPACK_DIGEST_SIZE];
    char *tree = zsys_sprintf ("%s/tree", work);
    assert (layerpack_pack (tree, tar, digest) == 0);
    assert (strlen (digest) == 64);
    assert (layerpack_file_digest (tar, again) == 0 && streq (digest, again));
    char *into = zsys_sprintf ("%s/into", work);
    assert (mkdir (into, 0755) == 0);
    char error [256];
    assert (layerpack_unpack (tar, into, 1 << 20, error, sizeof error) == 0);
    struct stat info;
    path = zsys_sprintf ("%s/pkg/__init__.py", into);
    assert (stat (path, &info) == 0 && info.st_size == 6);
    zstr_free (&path);
    path = zsys_sprintf ("%s/top.py", into);
    assert (stat (path, &info) == 0 && (info.st_mode & 0777) == 0755);
    zstr_free (&path);
    path = zsys_sprintf ("%s/pkg/link", into);
    assert (lstat (path, &info) == -1 && errno == ENOENT);
    zstr_free (&path);
    //  Over the cap
    char *command = zsys_sprintf ("rm -rf %s && mkdir %s", into, into);
    assert (system (command) == 0);
    assert (layerpack_unpack (tar, into, 8, error, sizeof error) == -1 && strstr (error, "size cap"));
    //  Not a tar at all
    path = zsys_sprintf ("%s/top.py", tree);
    assert (system (command) == 0);
    int not_tar = layerpack_unpack (path, into, 1 << 20, error, sizeof error);
    if (verbose)
        printf ("(%s) ", error);
    assert (not_tar == -1 && strstr (error, "layer archive"));
    zstr_free (&path);

    //  What a hostile or broken control host could send
    s_test_refused (work, "../escape.py", AE_IFREG, NULL, "unsafe name");
    s_test_refused (work, "pkg/../../escape.py", AE_IFREG, NULL, "unsafe name");
    s_test_refused (work, "/etc/clowdy-escape", AE_IFREG, NULL, "unsafe name");
    s_test_refused (work, "a//b", AE_IFREG, NULL, "unsafe name");
    s_test_refused (work, "link", AE_IFLNK, "/etc", "link");
    s_test_refused (work, "hard", AE_IFREG, "/etc/passwd", "link");
    s_test_refused (work, "fifo", AE_IFIFO, NULL, "neither a file");
    assert (!zsys_file_exists ("/etc/clowdy-escape"));
    path = zsys_sprintf ("%s/escape.py", work);
    assert (!zsys_file_exists (path));
    zstr_free (&path);
    if (verbose)
        printf ("(digest %s) ", digest);

    zstr_free (&command);
    command = zsys_sprintf ("rm -rf %s", work);
    assert (system (command) == 0);
    zstr_free (&command);
    zstr_free (&tar);
    zstr_free (&tree);
    zstr_free (&into);
    printf ("OK\n");
}
