/*  =========================================================================
    layers - requirements checking, layer keys, and the file walks of layers

    Why a whitelist: a requirements file is a small language of its own.
    Besides "name[extras] specifiers ; markers" pip reads options (-e, -r,
    -c, --index-url, --target, ...), local paths, URLs (file: included),
    direct references ("name @ url") and ${VARIABLES} there. Each of those
    could make the build read the host, reach a place on the host's network
    or install somewhere else. So a line must be a plain PEP 508 requirement
    without a URL (letters, digits and the punctuation of specifiers and
    markers), optionally followed by --hash options; everything else is
    refused with the line number and the reason, at PUT time.

    The key covers what decides the layer's content, as far as we can tell
    without running anything: the normalised requirements (so reordering or
    a comment does not rebuild), the interpreter's version (by the name its
    path resolves to, python3.11), the machine, and the build recipe's
    version (bumped when the way we build changes).
    ========================================================================= */

#include <czmq.h>
#include <ftw.h>
#include <sys/utsname.h>
#include <openssl/evp.h>
#include "core/layers.h"

#define S_RECIPE    "clowdy-layer-1"        //  bump when builds change what they make

static char s_tag [160];                    //  layers_python_tag, once set


//  --------------------------------------------------------------------------
//  The key

void
layers_set_python (const char *python)
{
    char resolved [PATH_MAX];
    const char *name = python && realpath (python, resolved)? resolved: python? python: "/usr/bin/python3";
    const char *base = strrchr (name, '/');
    base = base? base + 1: name;
    struct utsname host;
    const char *machine = uname (&host) == 0? host.machine: "unknown";
    snprintf (s_tag, sizeof s_tag, "%.100s %.50s", base, machine);
}

const char *
layers_python_tag (void)
{
    if (!*s_tag)
        layers_set_python ("/usr/bin/python3");
    return s_tag;
}

void
layers_key (const char *normalised, char key [LAYERS_KEY_SIZE])
{
    char *text = zsys_sprintf ("%s\n%s\n%s\n", S_RECIPE, layers_python_tag (), normalised);
    unsigned char digest [EVP_MAX_MD_SIZE];
    unsigned int digest_size = 0;
    EVP_Digest (text, strlen (text), digest, &digest_size, EVP_sha256 (), NULL);
    for (unsigned int index = 0; index < digest_size && index < 32; index++)
        snprintf (key + 2 * index, 3, "%02x", digest [index]);
    key [64] = 0;
    zstr_free (&text);
}

bool
layers_key_valid (const char *text)
{
    if (!text || strlen (text) != 64)
        return false;
    for (const char *cursor = text; *cursor; cursor++)
        if (!isdigit ((unsigned char) *cursor) && !(*cursor >= 'a' && *cursor <= 'f'))
            return false;
    return true;
}


//  --------------------------------------------------------------------------
//  Checking and normalising

static int
s_compare (const void *left, const void *right)
{
    return strcmp (*(char *const *) left, *(char *const *) right);
}

//  Check one stripped, non-empty requirement line; NULL or why not
static const char *
s_line_problem (const char *line, char *offender)
{
    *offender = 0;
    if (line [0] == '-') {
        if (strncmp (line, "-e", 2) == 0 || strncmp (line, "--editable", 10) == 0)
            return "editable installs (-e) are not allowed";
        return "pip options are not allowed (only package requirements, one a line)";
    }
    //  After the requirement, only --hash=ALGO:HEX options. The options
    //  start at the first blank (space or tab) followed by '-', so no
    //  option hides in the requirement part behind a later one
    const char *option = NULL;
    for (const char *scan = line; *scan && !option; scan++)
        if ((*scan == ' ' || *scan == '\t') && scan [1] == '-')
            option = scan;
    size_t body = option? (size_t) (option - line): strlen (line);
    const char *cursor = line + body;
    while (*cursor) {
        while (*cursor == ' ' || *cursor == '\t')
            cursor++;
        if (!*cursor)
            break;
        size_t token = strcspn (cursor, " \t");
        if (strncmp (cursor, "--hash=", 7) != 0)
            return "pip options are not allowed (only package requirements and --hash)";
        for (size_t index = 7; index < token; index++)
            if (!isalnum ((unsigned char) cursor [index]) && cursor [index] != ':')
                return "a --hash is ALGORITHM:HEX";
        cursor += token;
    }
    if (strstr (line, "://") || strncasecmp (line, "file:", 5) == 0)
        return "URLs are not allowed: name packages from the index";
    if (line [0] == '.' || line [0] == '/' || line [0] == '~' || strchr (line, '/') || strchr (line, '\\'))
        return "local paths are not allowed: name packages from the index";
    if (strchr (line, '@'))
        return "direct references (name @ URL) are not allowed";
    if (strchr (line, '$'))
        return "environment variables are not allowed";
    if (!isalnum ((unsigned char) line [0]))
        return "a requirement starts with a package name";
    for (size_t index = 0; index < body; index++) {
        char ch = line [index];
        if (!isalnum ((unsigned char) ch) && !strchr (" \t._-[],<>=!~;'\"()*+", ch)) {
            offender [0] = ch;
            offender [1] = 0;
            return "this character has no place in a requirement";
        }
    }
    return NULL;
}

int
layers_normalise (const char *text, size_t size, char **normalised, char *error, size_t error_size)
{
    *normalised = NULL;
    if (size > LAYERS_TEXT_MAX) {
        snprintf (error, error_size, "requirements_txt is %zu bytes; at most %d are allowed", size, LAYERS_TEXT_MAX);
        return -1;
    }
    if (memchr (text, 0, size)) {
        snprintf (error, error_size, "requirements_txt holds a NUL character");
        return -1;
    }
    char *copy = (char *) malloc (size + 1);
    assert (copy);
    memcpy (copy, text, size);
    copy [size] = 0;
    size_t capacity = 16, count = 0;
    char **lines = (char **) malloc (capacity * sizeof (char *));
    assert (lines);
    int rc = 0;
    int number = 0;
    //  Line by line, numbered from 1 for the messages
    char *cursor = copy;
    while (cursor && rc == 0) {
        char *line = cursor;
        char *end = strchr (cursor, '\n');
        if (end) {
            *end = 0;
            cursor = end + 1;
        }
        else
            cursor = NULL;
        number++;
        //  pip's comment rule: '#' at the start or after whitespace
        for (char *hash = line; (hash = strchr (hash, '#')); hash++)
            if (hash == line || hash [-1] == ' ' || hash [-1] == '\t') {
                *hash = 0;
                break;
            }
        while (*line && isspace ((unsigned char) *line))
            line++;
        size_t len = strlen (line);
        while (len && isspace ((unsigned char) line [len - 1]))
            line [--len] = 0;
        if (!len)
            continue;
        if (line [len - 1] == '\\') {
            snprintf (error, error_size, "line %d: line continuations are not allowed", number);
            rc = -1;
            break;
        }
        for (size_t index = 0; index < len; index++)
            if (iscntrl ((unsigned char) line [index]) && line [index] != '\t') {
                snprintf (error, error_size, "line %d: control characters are not allowed", number);
                rc = -1;
                break;
            }
        if (rc)
            break;
        char offender [2];
        const char *problem = s_line_problem (line, offender);
        if (problem) {
            char shown [48];
            snprintf (shown, sizeof shown, "%.40s%s", line, len > 40? "...": "");
            if (*offender)
                snprintf (error, error_size, "line %d ('%s'): '%s': %s", number, shown, offender, problem);
            else
                snprintf (error, error_size, "line %d ('%s'): %s", number, shown, problem);
            rc = -1;
            break;
        }
        if (count == capacity) {
            capacity *= 2;
            lines = (char **) realloc (lines, capacity * sizeof (char *));
            assert (lines);
        }
        lines [count++] = line;
    }
    if (rc == 0) {
        qsort (lines, count, sizeof (char *), s_compare);
        size_t total = 1;
        for (size_t index = 0; index < count; index++)
            total += strlen (lines [index]) + 1;
        char *out = (char *) malloc (total);
        assert (out);
        char *write = out;
        for (size_t index = 0; index < count; index++) {
            size_t len = strlen (lines [index]);
            memcpy (write, lines [index], len);
            write += len;
            if (index + 1 < count)
                *write++ = '\n';
        }
        *write = 0;
        *normalised = out;
    }
    free (lines);
    free (copy);
    return rc;
}


//  --------------------------------------------------------------------------
//  File walks (nftw keeps its state in statics: one walk at a time per
//  process is enough here, so each walk holds a lock)

static pthread_mutex_t s_walk_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t s_walk_total;
static int64_t s_walk_cap;
static long s_walk_entries;
static long s_walk_entries_max = LAYERS_ENTRIES_MAX;    //  lowered by the selftest only
static int s_walk_errors;

//  Why every entry and its blocks: a build that makes 40,000 empty
//  directories writes no bytes of content, yet takes 160 MB of blocks (or,
//  on tmpfs, which gives directories no blocks, as many inodes), and as
//  many tar headers in its archive. The length too, for sparse files: the
//  archive and a worker's copy hold all of it.
static int
s_size_visit (const char *path, const struct stat *info, int type, struct FTW *ftw)
{
    if (type == FTW_NS) {
        s_walk_errors++;                //  No stat: nothing to count; on with the rest
        return 0;
    }
    if (type == FTW_DNR)
        s_walk_errors++;                //  Counted, but what is in it cannot be
    if (++s_walk_entries > s_walk_entries_max)
        return 1;
    int64_t blocks = (int64_t) info->st_blocks * 512;
    int64_t length = info->st_size > 0? (int64_t) info->st_size: 0;
    s_walk_total += (blocks > length? blocks: length) + LAYERS_ENTRY_BYTES;
    return s_walk_cap >= 0 && s_walk_total > s_walk_cap? 1: 0;
}

int64_t
layers_dir_usage (const char *path, int64_t cap, long *entries, int64_t *counted)
{
    pthread_mutex_lock (&s_walk_lock);
    s_walk_total = 0;
    s_walk_cap = cap;
    s_walk_entries = 0;
    s_walk_errors = 0;
    int rc = nftw (path, s_size_visit, 32, FTW_PHYS);
    int64_t total = rc < 0 || s_walk_errors || s_walk_entries > s_walk_entries_max? -1: s_walk_total;
    if (entries)
        *entries = s_walk_entries;
    if (counted)
        *counted = s_walk_total;
    pthread_mutex_unlock (&s_walk_lock);
    return total;
}

int64_t
layers_dir_size (const char *path, int64_t cap)
{
    return layers_dir_usage (path, cap, NULL, NULL);
}

static int
s_seal_visit (const char *path, const struct stat *info, int type, struct FTW *ftw)
{
    if (type == FTW_SL || type == FTW_SLN) {
        if (lchown (path, 0, 0))
            s_walk_errors++;
        return 0;
    }
    if (type == FTW_DNR || type == FTW_NS) {
        s_walk_errors++;
        return 0;
    }
    if (!S_ISDIR (info->st_mode) && !S_ISREG (info->st_mode)) {
        //  A fifo, socket or device node has no place among packages
        if (unlink (path))
            s_walk_errors++;
        return 0;
    }
    if (lchown (path, 0, 0))
        s_walk_errors++;
    //  Readable by all (pip writes 0644/0755; a hostile build may not),
    //  writable by nobody but root, no set-id or sticky bits
    mode_t mode = info->st_mode & 0755;
    mode |= S_ISDIR (info->st_mode)? 0555: 0444;
    if (chmod (path, mode))
        s_walk_errors++;
    return 0;
}

int
layers_seal (const char *path)
{
    pthread_mutex_lock (&s_walk_lock);
    s_walk_errors = 0;
    //  Directories after their contents (FTW_DEPTH): a directory made
    //  read-only for others still lets root (us) walk into it
    int rc = nftw (path, s_seal_visit, 32, FTW_PHYS | FTW_DEPTH);
    int errors = s_walk_errors;
    pthread_mutex_unlock (&s_walk_lock);
    return rc || errors? -1: 0;
}

static int
s_remove_visit (const char *path, const struct stat *info, int type, struct FTW *ftw)
{
    if (type == FTW_DP)
        return rmdir (path) && errno != ENOENT? (s_walk_errors++, 0): 0;
    if (unlink (path) && errno != ENOENT)
        s_walk_errors++;
    return 0;
}

int
layers_remove (const char *path)
{
    struct stat info;
    if (lstat (path, &info))
        return errno == ENOENT? 0: -1;
    if (!S_ISDIR (info.st_mode))
        return unlink (path);
    pthread_mutex_lock (&s_walk_lock);
    s_walk_errors = 0;
    int rc = nftw (path, s_remove_visit, 32, FTW_PHYS | FTW_DEPTH);
    int errors = s_walk_errors;
    pthread_mutex_unlock (&s_walk_lock);
    if (rc || errors) {
        zsys_error ("layers: could not remove all of %s", path);
        return -1;
    }
    return 0;
}


//  --------------------------------------------------------------------------
//  Selftest

static void
s_test_ok (const char *text, const char *expected)
{
    char *normalised, error [256];
    int rc = layers_normalise (text, strlen (text), &normalised, error, sizeof error);
    if (rc)
        fprintf (stderr, "refused '%s': %s\n", text, error);
    assert (rc == 0);
    if (!streq (normalised, expected))
        printf ("'%s' gave '%s'\n", text, normalised);
    assert (streq (normalised, expected));
    free (normalised);
}

static void
s_test_refused (const char *text, const char *expected)
{
    char *normalised, error [256];
    int rc = layers_normalise (text, strlen (text), &normalised, error, sizeof error);
    if (rc == 0 || !strstr (error, expected))
        fprintf (stderr, "'%s': %s\n", text, rc? error: "accepted");
    assert (rc == -1 && normalised == NULL);
    assert (strstr (error, expected));
}

void
layers_test (bool verbose)
{
    printf ("layers: ");
    s_test_ok ("", "");
    s_test_ok ("\n  # only a comment\n\n", "");
    s_test_ok ("requests==2.31.0\nclick # cli\n\n  Flask[async] >= 2.0 ; python_version >= '3.8'  \n",
               "Flask[async] >= 2.0 ; python_version >= '3.8'\nclick\nrequests==2.31.0");
    s_test_ok ("b\r\na\r\n", "a\nb");
    s_test_ok ("pkg==1.0 --hash=sha256:abcdef0123", "pkg==1.0 --hash=sha256:abcdef0123");
    s_test_refused ("pkg#notacomment", "'#'");
    s_test_refused ("-e .", "editable");
    s_test_refused ("ok\n-e git+https://x/y", "line 2");
    s_test_refused ("--target /tmp/x", "options");
    s_test_refused ("-r other.txt", "options");
    s_test_refused ("-c constraints.txt", "options");
    s_test_refused ("--index-url http://127.0.0.1/", "options");
    s_test_refused ("--prefix=/usr", "options");
    s_test_refused ("pkg --root /", "options");
    s_test_refused ("./local", "local paths");
    s_test_refused ("/etc/passwd", "local paths");
    s_test_refused ("~/x", "local paths");
    s_test_refused ("pkg/sub", "local paths");
    s_test_refused ("file:///etc", "URLs");
    s_test_refused ("FILE:x", "URLs");
    s_test_refused ("https://example.com/p.whl", "URLs");
    s_test_refused ("pkg @ https://example.com/p.whl", "URLs");
    s_test_refused ("pkg @ git", "direct references");
    s_test_refused ("pkg==${VERSION}", "environment variables");
    s_test_refused ("pkg \\", "continuations");
    s_test_refused ("pkg|x", "'|'");
    s_test_refused ("pkg --hash=sha256:ab/cd", "ALGORITHM:HEX");
    s_test_refused ("pkg --hash=x;y", "ALGORITHM:HEX");
    //  An option before a --hash, whichever blank comes before either
    s_test_refused ("pkg\t-i\tx --hash=a:b", "options");
    s_test_refused ("pkg -i\tx\t--hash=a:b", "options");
    s_test_refused ("pkg\t--index-url=http://x --hash=a:b", "options");
    s_test_ok ("pkg==1.0\t--hash=sha256:ab --hash=sha256:cd", "pkg==1.0\t--hash=sha256:ab --hash=sha256:cd");
    s_test_refused ("a\x01", "control");
    char *big = (char *) malloc (LAYERS_TEXT_MAX + 2);
    memset (big, 'a', LAYERS_TEXT_MAX + 1);
    big [LAYERS_TEXT_MAX + 1] = 0;
    s_test_refused (big, "at most 65536");
    free (big);

    //  Keys: the same requirements in any order and comments give one key
    char first [LAYERS_KEY_SIZE], second [LAYERS_KEY_SIZE], third [LAYERS_KEY_SIZE];
    layers_key ("a\nb", first);
    layers_key ("a\nb", second);
    layers_key ("a\nc", third);
    assert (layers_key_valid (first));
    assert (streq (first, second) && strneq (first, third));
    assert (!layers_key_valid ("../x") && !layers_key_valid (NULL));
    assert (strstr (layers_python_tag (), "python"));

    //  The walks: size with a cap, seal, remove (a symlink out is not followed)
    char template [] = "/tmp/clowdy-layers-XXXXXX";
    char *dir = mkdtemp (template);
    assert (dir);
    char *outside = zsys_sprintf ("%s-outside", dir);
    FILE *file = fopen (outside, "w");
    assert (file);
    fputs ("keep", file);
    fclose (file);
    char *path = zsys_sprintf ("%s/pkg", dir);
    assert (mkdir (path, 0777) == 0);
    zstr_free (&path);
    path = zsys_sprintf ("%s/pkg/mod.py", dir);
    file = fopen (path, "w");
    assert (file);
    fputs ("x = 1\n", file);
    fclose (file);
    assert (chmod (path, 04777) == 0);
    struct stat info;
    zstr_free (&path);
    path = zsys_sprintf ("%s/pkg/link", dir);
    assert (symlink (outside, path) == 0);
    zstr_free (&path);
    //  Every entry at its blocks or length and LAYERS_ENTRY_BYTES: the
    //  directories and the link count, not just the file's 6 bytes
    const char *names [] = { "", "/pkg", "/pkg/mod.py", "/pkg/link" };
    int64_t expected = 0;
    for (int index = 0; index < 4; index++) {
        path = zsys_sprintf ("%s%s", dir, names [index]);
        assert (lstat (path, &info) == 0);
        int64_t blocks = (int64_t) info.st_blocks * 512;
        expected += (blocks > info.st_size? blocks: info.st_size) + LAYERS_ENTRY_BYTES;
        zstr_free (&path);
    }
    long entries = 0;
    assert (layers_dir_usage (dir, -1, &entries, NULL) == expected && entries == 4);
    assert (expected >= 6 + 4 * LAYERS_ENTRY_BYTES);
    assert (layers_dir_size (dir, 2) > 2);
    //  Empty directories and files are not free
    for (int index = 0; index < 20; index++) {
        path = zsys_sprintf ("%s/empty%d", dir, index);
        if (index % 2)
            assert (mkdir (path, 0755) == 0);
        else {
            file = fopen (path, "w");
            assert (file);
            fclose (file);
        }
        zstr_free (&path);
    }
    assert (layers_dir_size (dir, -1) >= expected + 20 * LAYERS_ENTRY_BYTES);
    assert (layers_dir_size (dir, 10 * LAYERS_ENTRY_BYTES) > 10 * LAYERS_ENTRY_BYTES);
    //  Too many entries, or a walk that fails, is -1 (over any cap)
    s_walk_entries_max = 10;
    assert (layers_dir_usage (dir, -1, &entries, NULL) == -1 && entries == 11);
    assert (layers_dir_size (dir, -1) == -1);
    s_walk_entries_max = LAYERS_ENTRIES_MAX;
    assert (layers_dir_usage (dir, -1, &entries, NULL) > 0 && entries == 24);
    //  An entry that cannot be looked at is skipped, the rest still counted
    //  (the answer is -1: over any cap). Root passes permissions, so a
    //  directory that cannot be read is out of reach here; a walk of a path
    //  that does not exist is one entry that cannot be looked at
    int64_t counted = -1;
    char *missing = zsys_sprintf ("%s/missing", dir);
    assert (layers_dir_usage (missing, -1, &entries, &counted) == -1 && counted == 0);
    zstr_free (&missing);
    path = zsys_sprintf ("%s/nothing-here", dir);
    assert (layers_dir_usage (path, -1, &entries, NULL) == -1);
    zstr_free (&path);
    assert (layers_seal (dir) == 0);
    path = zsys_sprintf ("%s/pkg/mod.py", dir);
    assert (stat (path, &info) == 0 && (info.st_mode & 07777) == 0755);
    zstr_free (&path);
    assert (layers_remove (dir) == 0);
    assert (stat (dir, &info) && errno == ENOENT);
    assert (stat (outside, &info) == 0);
    assert (layers_remove (dir) == 0);
    unlink (outside);
    zstr_free (&outside);
    printf ("OK\n");
}
