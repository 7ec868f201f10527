/*  =========================================================================
    util - small helpers every part shares: ids, timestamps, slugs
    ========================================================================= */

#include <czmq.h>
#include <pthread.h>
#include <sys/random.h>
#include <sys/wait.h>
#include "core/util.h"

//  Fill buffer with size random bytes; 0, or -1 (getrandom without
//  GRND_NONBLOCK only fails on a kernel that lacks it, before 3.17)
static int
s_random_fill (unsigned char *buffer, size_t size)
{
    size_t have = 0;
    while (have < size) {
        ssize_t rc = getrandom (buffer + have, size - have, 0);
        if (rc > 0)
            have += (size_t) rc;
        else
        if (rc < 0 && errno != EINTR)
            return -1;
    }
    return 0;
}

//  Write 2 * size lowercase hex characters for size bytes (no NUL)
static void
s_hex (char *out, const unsigned char *bytes, size_t size)
{
    static const char hex [] = "0123456789abcdef";
    for (size_t i = 0; i < size; i++) {
        out [2 * i] = hex [bytes [i] >> 4];
        out [2 * i + 1] = hex [bytes [i] & 15];
    }
}

int
util_random_hex (char *out, size_t bytes)
{
    unsigned char chunk [32];
    size_t done = 0;
    while (done < bytes) {
        size_t want = bytes - done < sizeof chunk? bytes - done: sizeof chunk;
        if (s_random_fill (chunk, want)) {
            explicit_bzero (chunk, sizeof chunk);
            explicit_bzero (out, 2 * done);
            out [0] = 0;
            return -1;
        }
        s_hex (out + 2 * done, chunk, want);
        done += want;
    }
    explicit_bzero (chunk, sizeof chunk);
    out [2 * bytes] = 0;
    return 0;
}

//  Ids come from getrandom's bytes like secrets do, but a warm call makes
//  two of them (its request and its invocation), and on a virtual machine
//  a system call is dear: each thread takes the bytes for 42 ids at once
//  (252 bytes: getrandom fills up to 256 in one call). A child made with
//  fork () starts with none, so parent and child never make the same ids;
//  the sandboxes' raw clone () children keep a copy, and never make ids.
#define ID_BYTES ((UTIL_ID_SIZE - 1) / 2)
#define ID_BUFFERED 42
static __thread unsigned char s_id_bytes [ID_BUFFERED * ID_BYTES];
static __thread size_t s_id_left;
static pthread_once_t s_id_once = PTHREAD_ONCE_INIT;

static void
s_id_forked (void)
{
    explicit_bzero (s_id_bytes, sizeof s_id_bytes);
    s_id_left = 0;
}

static void
s_id_init (void)
{
    pthread_atfork (NULL, NULL, s_id_forked);
}

void
util_new_id (char id [UTIL_ID_SIZE])
{
    pthread_once (&s_id_once, s_id_init);
    if (s_id_left < ID_BYTES) {
        //  No ids can be made at all where getrandom fails
        int rc = s_random_fill (s_id_bytes, sizeof s_id_bytes);
        assert (rc == 0);
        s_id_left = sizeof s_id_bytes;
    }
    unsigned char *bytes = s_id_bytes + sizeof s_id_bytes - s_id_left;
    s_hex (id, bytes, ID_BYTES);
    id [2 * ID_BYTES] = 0;
    explicit_bzero (bytes, ID_BYTES);
    s_id_left -= ID_BYTES;
}

bool
util_is_id (const char *text)
{
    if (!text || strlen (text) != 12)
        return false;
    for (const char *c = text; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return false;
    return true;
}

void
util_now_iso (char out [UTIL_TIME_SIZE])
{
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r (&now.tv_sec, &tm);
    size_t len = strftime (out, UTIL_TIME_SIZE, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf (out + len, UTIL_TIME_SIZE - len, ".%06ldZ", now.tv_nsec / 1000);
}

int64_t
util_monotonic_us (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000000 + now.tv_nsec / 1000;
}

char *
util_slug_from_name (const char *name)
{
    size_t size = name? strlen (name): 0;
    char *slug = (char *) malloc (size + sizeof "project");
    assert (slug);
    size_t len = 0;
    for (const char *c = name; c && *c; c++) {
        char ch = *c;
        if (ch >= 'A' && ch <= 'Z')
            ch = (char) (ch - 'A' + 'a');
        if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))
            slug [len++] = ch;
        else
        if (ch == ' ' || ch == '_' || ch == '-' || ch == '\t' || ch == '\n'
        ||  ch == '\r' || ch == '\f' || ch == '\v') {
            //  Runs of separators (and repeated '-') become one '-';
            //  none at the start
            if (len > 0 && slug [len - 1] != '-')
                slug [len++] = '-';
        }
        //  Anything else (punctuation, non-ASCII bytes) is dropped
    }
    while (len > 0 && slug [len - 1] == '-')
        len--;
    slug [len] = 0;
    if (len == 0)
        strcpy (slug, "project");
    return slug;
}

bool
util_slug_has_base (const char *slug, const char *base)
{
    size_t base_len = strlen (base);
    if (strncmp (slug, base, base_len) != 0)
        return false;
    const char *rest = slug + base_len;
    if (*rest == 0)
        return true;
    if (*rest++ != '-' || *rest == 0)
        return false;
    for (; *rest; rest++)
        if (*rest < '0' || *rest > '9')
            return false;
    return true;
}

bool
util_utf8_valid (const char *data, size_t size)
{
    const unsigned char *byte = (const unsigned char *) data;
    size_t pos = 0;
    while (pos < size) {
        unsigned char lead = byte [pos];
        size_t extra;
        uint32_t code, min;
        if (lead < 0x80) {
            pos++;
            continue;
        }
        else
        if ((lead & 0xE0) == 0xC0) { extra = 1; code = lead & 0x1F; min = 0x80; }
        else
        if ((lead & 0xF0) == 0xE0) { extra = 2; code = lead & 0x0F; min = 0x800; }
        else
        if ((lead & 0xF8) == 0xF0) { extra = 3; code = lead & 0x07; min = 0x10000; }
        else
            return false;
        if (size - pos <= extra)
            return false;
        for (size_t i = 1; i <= extra; i++) {
            if ((byte [pos + i] & 0xC0) != 0x80)
                return false;
            code = (code << 6) | (byte [pos + i] & 0x3F);
        }
        if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF))
            return false;
        pos += extra + 1;
    }
    return true;
}

size_t
util_utf8_length (const char *text)
{
    size_t count = 0;
    for (const unsigned char *c = (const unsigned char *) text; *c; c++)
        if ((*c & 0xC0) != 0x80)
            count++;
    return count;
}

size_t
util_json_string_size (const char *text, size_t size)
{
    size_t total = 2;
    for (size_t index = 0; index < size; index++) {
        unsigned char c = (unsigned char) text [index];
        total += c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t'? 2
               : c < 0x20? 6: 1;
    }
    return total;
}

char *
util_trim (const char *text)
{
    while (*text && isspace ((unsigned char) *text))
        text++;
    size_t len = strlen (text);
    while (len > 0 && isspace ((unsigned char) text [len - 1]))
        len--;
    char *copy = strndup (text, len);
    assert (copy);
    return copy;
}

bool
util_env_key_valid (const char *key)
{
    size_t len = key? strlen (key): 0;
    if (len == 0 || len > 128)
        return false;
    if (!(isalpha ((unsigned char) key [0]) || key [0] == '_'))
        return false;
    for (size_t i = 1; i < len; i++)
        if (!(isalnum ((unsigned char) key [i]) || key [i] == '_'))
            return false;
    if (strncasecmp (key, "CLOWDY_", 7) == 0)
        return false;
    return true;
}

static void
s_assert_slug (const char *name, const char *expected)
{
    char *slug = util_slug_from_name (name);
    if (strneq (slug, expected)) {
        printf ("slug of '%s' is '%s', expected '%s'\n", name, slug, expected);
        assert (false);
    }
    free (slug);
}

cJSON *
util_json_parse (const char *data, size_t size)
{
    if (!data || !util_utf8_valid (data, size))
        return NULL;
    const char *end = NULL;
    cJSON *value = cJSON_ParseWithLengthOpts (data, size, &end, false);
    if (!value)
        return NULL;
    for (; end < data + size; end++)
        if (!(*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')) {
            cJSON_Delete (value);
            return NULL;
        }
    return value;
}

bool
util_json_has_nul (const char *data, size_t size)
{
    for (size_t i = 0; data && i + 1 < size; i++) {
        if (data [i] != '\\')
            continue;
        if (data [i + 1] == 'u' && i + 5 < size && memcmp (data + i + 2, "0000", 4) == 0)
            return true;
        i++;                    //  Skip the escaped character ("\\u0000" is no NUL)
    }
    return false;
}

void
util_test (bool verbose)
{
    printf ("util: ");
    char a [UTIL_ID_SIZE], b [UTIL_ID_SIZE];
    util_new_id (a);
    util_new_id (b);
    assert (util_is_id (a));
    assert (util_is_id (b));
    assert (strneq (a, b));
    {
        //  Ids taken from one buffer across refills: all valid, none twice;
        //  a forked child does not make the ids its parent makes next
        zhashx_t *seen = zhashx_new ();
        for (int i = 0; i < 500; i++) {
            char id [UTIL_ID_SIZE];
            util_new_id (id);
            assert (util_is_id (id));
            assert (zhashx_insert (seen, id, (void *) 1) == 0);
        }
        zhashx_destroy (&seen);
        int pipe_fds [2];
        assert (pipe (pipe_fds) == 0);
        pid_t child = fork ();
        assert (child >= 0);
        if (child == 0) {
            char id [UTIL_ID_SIZE];
            util_new_id (id);
            _exit (write (pipe_fds [1], id, UTIL_ID_SIZE) == UTIL_ID_SIZE ? 0 : 1);
        }
        char theirs [UTIL_ID_SIZE];
        assert (read (pipe_fds [0], theirs, UTIL_ID_SIZE) == UTIL_ID_SIZE);
        int status;
        assert (waitpid (child, &status, 0) == child && WIFEXITED (status) && WEXITSTATUS (status) == 0);
        assert (util_is_id (theirs));
        //  Whatever was left in the parent's buffer at the fork: none of
        //  its next ids is the child's first
        for (int i = 0; i < ID_BUFFERED; i++) {
            char mine [UTIL_ID_SIZE];
            util_new_id (mine);
            assert (strneq (mine, theirs));
        }
        close (pipe_fds [0]);
        close (pipe_fds [1]);
    }
    {
        char secret [65], other [65];
        assert (util_random_hex (secret, 32) == 0 && util_random_hex (other, 32) == 0);
        assert (strlen (secret) == 64 && strspn (secret, "0123456789abcdef") == 64 && strneq (secret, other));
        char longer [2 * 100 + 1];          //  more than one chunk
        assert (util_random_hex (longer, 100) == 0 && strlen (longer) == 200);
        assert (strspn (longer, "0123456789abcdef") == 200);
        char none [1] = "x";
        assert (util_random_hex (none, 0) == 0 && none [0] == 0);
    }
    assert (!util_is_id ("ABCDEF012345"));
    assert (!util_is_id ("abc"));
    assert (!util_is_id (NULL));
    char when [UTIL_TIME_SIZE];
    util_now_iso (when);
    assert (strlen (when) == 27 && when [26] == 'Z' && when [10] == 'T');
    int64_t t0 = util_monotonic_us ();
    assert (util_monotonic_us () >= t0);

    //  Slugs, per API.md
    s_assert_slug ("My Project", "my-project");
    s_assert_slug ("  Hello   World  ", "hello-world");
    s_assert_slug ("snake_case__name", "snake-case-name");
    s_assert_slug ("a - b -- c", "a-b-c");
    s_assert_slug ("--Trim--", "trim");
    s_assert_slug ("Caf\xc3\xa9 & Bar!", "caf-bar");
    s_assert_slug ("v1.2 API", "v12-api");
    s_assert_slug ("!!!", "project");
    s_assert_slug ("", "project");
    s_assert_slug ("ABC123", "abc123");
    s_assert_slug ("tab\tsep", "tab-sep");
    assert (util_slug_has_base ("foo", "foo"));
    assert (util_slug_has_base ("foo-12", "foo"));
    assert (!util_slug_has_base ("foo-", "foo"));
    assert (!util_slug_has_base ("foo-bar", "foo"));
    assert (!util_slug_has_base ("foobar", "foo"));
    assert (!util_slug_has_base ("fo", "foo"));

    //  UTF-8
    assert (util_utf8_valid ("plain", 5));
    assert (util_utf8_valid ("caf\xc3\xa9", 5));
    assert (util_utf8_valid ("\xf0\x9f\x98\x80", 4));
    assert (!util_utf8_valid ("\xc3", 1));
    assert (!util_utf8_valid ("\xc0\xaf", 2));          //  overlong
    assert (!util_utf8_valid ("\xed\xa0\x80", 3));      //  surrogate
    assert (!util_utf8_valid ("\xff", 1));
    assert (util_utf8_length ("caf\xc3\xa9") == 4);
    assert (util_json_string_size ("a\"\\\n\x01\xc3\xa9", 7) == 2 + 1 + 2 + 2 + 2 + 6 + 2);
    char *trimmed = util_trim ("  x y \n");
    assert (streq (trimmed, "x y"));
    free (trimmed);
    trimmed = util_trim ("   ");
    assert (streq (trimmed, ""));
    free (trimmed);

    //  Environment variable names
    assert (util_env_key_valid ("API_KEY"));
    assert (util_env_key_valid ("_x1"));
    assert (!util_env_key_valid ("1ABC"));
    assert (!util_env_key_valid ("A-B"));
    assert (!util_env_key_valid (""));
    assert (!util_env_key_valid ("CLOWDY_SECRET"));
    assert (!util_env_key_valid ("clowdy_x"));
    assert (util_env_key_valid ("CLOWDYX"));
    char long_key [130];
    memset (long_key, 'K', 129);
    long_key [129] = 0;
    assert (!util_env_key_valid (long_key));
    long_key [128] = 0;
    assert (util_env_key_valid (long_key));
    cJSON *value = util_json_parse ("{\"a\": 1} \n", 9);
    assert (cJSON_IsObject (value));
    cJSON_Delete (value);
    assert (util_json_parse ("{\"a\": 1} x", 10) == NULL);       //  trailing garbage
    assert (util_json_parse ("\"\xff\"", 3) == NULL);            //  not UTF-8
    assert (util_json_parse ("", 0) == NULL);
    assert (util_json_has_nul ("\"a\\u0000b\"", 10));
    assert (!util_json_has_nul ("\"a\\\\u0000b\"", 11));    //  an escaped backslash, then text
    assert (!util_json_has_nul ("\"a\\u0001\"", 9));
    printf ("OK\n");
}
