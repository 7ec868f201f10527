/*  =========================================================================
    sigv4 - AWS Signature Version 4 (see sigv4.h)

    The canonical request is built the way botocore's auth.py builds it,
    from what came over the wire:
        METHOD \n quote (raw path, safe "/~") \n sorted raw query pairs \n
        name:trimmed value \n ... \n \n signed;header;names \n hex sha256 (body)
    The body's hash is always computed here, never taken from a header, so
    a signature covers the bytes that arrived. The string to sign is
        AWS4-HMAC-SHA256 \n X-Amz-Date \n DATE/REGION/SERVICE/aws4_request \n
        hex sha256 (canonical request)
    and the key HMAC ("AWS4" + secret, DATE), then REGION, SERVICE,
    "aws4_request". Signatures are compared in constant time.

    `host` and `x-amz-date` must be signed: without them a signature would
    not say where, nor when, it was meant for.
    ========================================================================= */

#include <czmq.h>
#include <pthread.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/crypto.h>
#include "core/sigv4.h"

#define SIGV4_KEY_FILE  "sigv4.key"

static const char *S_MALFORMED = "Authorization header is not a valid AWS4-HMAC-SHA256 signature header";

bool
sigv4_is_header (const char *authorization)
{
    return authorization && strncmp (authorization, SIGV4_ALGORITHM " ", strlen (SIGV4_ALGORITHM) + 1) == 0;
}

//  Copy the value of "name=" in a comma-separated list, up to ',' or the end
static bool
s_field (const char *text, const char *name, char *out, size_t size)
{
    size_t name_size = strlen (name);
    for (const char *at = text; at && *at; ) {
        while (*at == ' ' || *at == ',')
            at++;
        size_t length = strcspn (at, ",");
        if (length > name_size && strncmp (at, name, name_size) == 0 && at [name_size] == '=') {
            size_t value = length - name_size - 1;
            while (value && at [name_size + value] == ' ')
                value--;
            if (value == 0 || value >= size)
                return false;
            memcpy (out, at + name_size + 1, value);
            out [value] = 0;
            return true;
        }
        at += length;
    }
    return false;
}

int
sigv4_parse (const char *authorization, sigv4_auth_t *auth, const char **detail)
{
    memset (auth, 0, sizeof *auth);
    *detail = S_MALFORMED;
    if (!sigv4_is_header (authorization) || strlen (authorization) > 4096)
        return -1;
    const char *rest = authorization + strlen (SIGV4_ALGORITHM) + 1;
    char credential [256];
    if (!s_field (rest, "Credential", credential, sizeof credential)
    ||  !s_field (rest, "SignedHeaders", auth->signed_headers, sizeof auth->signed_headers)
    ||  !s_field (rest, "Signature", auth->signature, sizeof auth->signature))
        return -1;
    //  KEY/DATE/REGION/SERVICE/aws4_request
    char *parts [5] = { NULL };
    int count = 0;
    char *cursor = credential;
    while (count < 5 && cursor) {
        parts [count++] = cursor;
        cursor = strchr (cursor, '/');
        if (cursor)
            *cursor++ = 0;
    }
    if (count != 5 || cursor || strneq (parts [4], "aws4_request") || strlen (parts [1]) != 8
    ||  !*parts [0] || strlen (parts [0]) >= sizeof auth->access_key
    ||  !*parts [2] || strlen (parts [2]) >= sizeof auth->region
    ||  !*parts [3] || strlen (parts [3]) >= sizeof auth->service
    ||  strlen (auth->signature) != 64)
        return -1;
    for (const char *c = parts [1]; *c; c++)
        if (!isdigit ((unsigned char) *c))
            return -1;
    for (const char *c = auth->signature; *c; c++)
        if (!isxdigit ((unsigned char) *c))
            return -1;
    strcpy (auth->access_key, parts [0]);
    strcpy (auth->date, parts [1]);
    strcpy (auth->region, parts [2]);
    strcpy (auth->service, parts [3]);
    *detail = NULL;
    return 0;
}

static void
s_hex (const unsigned char *data, size_t size, char *out)
{
    for (size_t i = 0; i < size; i++)
        snprintf (out + 2 * i, 3, "%02x", data [i]);
}

static void
s_sha256_hex (const void *data, size_t size, char out [65])
{
    unsigned char digest [32];
    unsigned int digest_size = 0;
    EVP_Digest (data, size, digest, &digest_size, EVP_sha256 (), NULL);
    s_hex (digest, 32, out);
}

//  Compare two strings for a sort of query pairs: by key, then by value
static int
s_pair_compare (const void *a, const void *b)
{
    const char *left = *(const char **) a, *right = *(const char **) b;
    size_t left_key = strcspn (left, "="), right_key = strcspn (right, "=");
    size_t shorter = left_key < right_key ? left_key : right_key;
    int rc = memcmp (left, right, shorter);
    if (rc || left_key != right_key)
        return rc ? rc : left_key < right_key ? -1 : 1;
    const char *left_value = left [left_key] ? left + left_key + 1 : "";
    const char *right_value = right [right_key] ? right + right_key + 1 : "";
    return strcmp (left_value, right_value);
}

char *
sigv4_canonical_request (const char *method, const char *raw_path, const char *raw_query, cJSON *headers,
                         const char *signed_headers, const void *body, size_t body_size)
{
    zchunk_t *out = zchunk_new (NULL, 1024);
    zchunk_extend (out, method, strlen (method));
    zchunk_extend (out, "\n", 1);
    //  The path as sent, encoded once more (all but unreserved bytes and '/')
    const char *path = raw_path && *raw_path ? raw_path : "/";
    for (const unsigned char *c = (const unsigned char *) path; *c; c++) {
        if (isalnum (*c) || strchr ("-_.~/", *c))
            zchunk_extend (out, c, 1);
        else {
            char escaped [4];
            snprintf (escaped, sizeof escaped, "%%%02X", *c);
            zchunk_extend (out, escaped, 3);
        }
    }
    zchunk_extend (out, "\n", 1);
    //  The query's raw pairs, sorted by key then value, "key=value"
    if (raw_query && *raw_query) {
        char *query = strdup (raw_query);
        size_t count = 1;
        for (const char *c = query; *c; c++)
            count += *c == '&';
        char **pairs = (char **) calloc (count, sizeof (char *));
        size_t used = 0;
        for (char *pair = strtok (query, "&"); pair; pair = strtok (NULL, "&"))
            pairs [used++] = pair;
        qsort (pairs, used, sizeof (char *), s_pair_compare);
        for (size_t i = 0; i < used; i++) {
            if (i)
                zchunk_extend (out, "&", 1);
            zchunk_extend (out, pairs [i], strlen (pairs [i]));
            if (!strchr (pairs [i], '='))
                zchunk_extend (out, "=", 1);
        }
        free (pairs);
        free (query);
    }
    zchunk_extend (out, "\n", 1);
    //  Each signed header, its value trimmed and its blank runs made one space
    char *names = strdup (signed_headers);
    bool complete = true;
    for (char *name = strtok (names, ";"); name && complete; name = strtok (NULL, ";")) {
        const char *value = cJSON_GetStringValue (cJSON_GetObjectItemCaseSensitive (headers, name));
        if (!value || strchr (name, ':')) {
            complete = false;
            break;
        }
        zchunk_extend (out, name, strlen (name));
        zchunk_extend (out, ":", 1);
        bool blank = false, started = false;
        for (const char *c = value; *c; c++) {
            if (*c == ' ' || *c == '\t') {
                blank = started;
                continue;
            }
            if (blank)
                zchunk_extend (out, " ", 1);
            blank = false;
            started = true;
            zchunk_extend (out, c, 1);
        }
        zchunk_extend (out, "\n", 1);
    }
    free (names);
    if (!complete) {
        zchunk_destroy (&out);
        return NULL;
    }
    zchunk_extend (out, "\n", 1);
    zchunk_extend (out, signed_headers, strlen (signed_headers));
    zchunk_extend (out, "\n", 1);
    char hash [65];
    s_sha256_hex (body ? body : "", body ? body_size : 0, hash);
    zchunk_extend (out, hash, 64);
    char *text = zchunk_strdup (out);
    zchunk_destroy (&out);
    return text;
}

static void
s_hmac (const void *key, size_t key_size, const char *data, unsigned char out [32])
{
    unsigned int size = 32;
    HMAC (EVP_sha256 (), key, (int) key_size, (const unsigned char *) data, strlen (data), out, &size);
}

void
sigv4_sign (const char *secret, const char *amz_date, const char *date, const char *region,
            const char *service, const char *canonical_request, char out [65])
{
    char hash [65];
    s_sha256_hex (canonical_request, strlen (canonical_request), hash);
    char *to_sign = zsys_sprintf (SIGV4_ALGORITHM "\n%s\n%s/%s/%s/aws4_request\n%s",
                                  amz_date, date, region, service, hash);
    char *first = zsys_sprintf ("AWS4%s", secret);
    unsigned char key [32], next [32];
    s_hmac (first, strlen (first), date, key);
    s_hmac (key, 32, region, next);
    s_hmac (next, 32, service, key);
    s_hmac (key, 32, "aws4_request", next);
    s_hmac (next, 32, to_sign, key);
    s_hex (key, 32, out);
    OPENSSL_cleanse (first, strlen (first));
    zstr_free (&first);
    zstr_free (&to_sign);
}

//  X-Amz-Date (YYYYMMDDTHHMMSSZ) as a time, or -1
static time_t
s_amz_time (const char *text)
{
    struct tm tm = { 0 };
    if (!text || strlen (text) != 16 || text [8] != 'T' || text [15] != 'Z')
        return -1;
    const char *end = strptime (text, "%Y%m%dT%H%M%SZ", &tm);
    if (!end || *end)
        return -1;
    return timegm (&tm);
}

int
sigv4_verify (const sigv4_auth_t *auth, const char *secret, const char *method, const char *raw_path,
              const char *raw_query, cJSON *headers, const void *body, size_t body_size, time_t now,
              const char **detail)
{
    char signed_list [sizeof auth->signed_headers + 2];
    snprintf (signed_list, sizeof signed_list, ";%s;", auth->signed_headers);
    if (!strstr (signed_list, ";host;") || !strstr (signed_list, ";x-amz-date;")) {
        *detail = "The signature must cover the host and x-amz-date headers";
        return -1;
    }
    const char *amz_date = cJSON_GetStringValue (cJSON_GetObjectItemCaseSensitive (headers, "x-amz-date"));
    time_t when = s_amz_time (amz_date);
    if (when < 0 || strncmp (amz_date, auth->date, 8)) {
        *detail = "X-Amz-Date is missing, malformed, or not the credential's date";
        return -1;
    }
    if (when < now - SIGV4_SKEW_SECONDS || when > now + SIGV4_SKEW_SECONDS) {
        *detail = "Signature expired: X-Amz-Date is more than 15 minutes from the server's time";
        return -1;
    }
    char *canonical = sigv4_canonical_request (method, raw_path, raw_query, headers, auth->signed_headers,
                                               body, body_size);
    if (!canonical) {
        *detail = "A signed header is missing from the request";
        return -1;
    }
    char expected [65];
    sigv4_sign (secret, amz_date, auth->date, auth->region, auth->service, canonical, expected);
    free (canonical);
    char given [65];
    for (int i = 0; i < 65; i++)
        given [i] = (char) tolower ((unsigned char) auth->signature [i]);
    if (CRYPTO_memcmp (expected, given, 64)) {
        *detail = "The request signature we calculated does not match the signature you provided";
        return -1;
    }
    *detail = NULL;
    return 0;
}

//  --------------------------------------------------------------------------
//  The sealing key and sealed secrets: hex of nonce (12) | ciphertext | tag (16)

static pthread_mutex_t s_key_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char s_key [32];
static bool s_key_loaded;

//  Make the key file whole or not at all: the key goes to a temp file of
//  our own, is synced, then linked into place, so a crash leaves either no
//  key file or a complete one (never a short one), and of two processes
//  starting at once the first link wins and the other reads its key.
//  0 with the key in s_key, 1 when another process made it first, -1.
static int
s_key_make (const char *path)
{
    char *temp = zsys_sprintf ("%s.%d.tmp", path, (int) getpid ());
    unsigned char key [32];
    int rc = -1;
    int fd = open (temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0 && RAND_bytes (key, 32) == 1 && write (fd, key, 32) == 32 && fsync (fd) == 0) {
        if (link (temp, path) == 0) {
            memcpy (s_key, key, 32);
            rc = 0;
        }
        else
        if (errno == EEXIST)
            rc = 1;
    }
    OPENSSL_cleanse (key, 32);
    if (fd >= 0)
        close (fd);
    unlink (temp);
    zstr_free (&temp);
    if (rc == 0) {
        //  The new name lasts a crash too
        char *dir = strdup (path);
        char *slash = strrchr (dir, '/');
        if (slash)
            *slash = 0;
        int dir_fd = open (slash? dir: ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd >= 0) {
            if (fsync (dir_fd)) { }
            close (dir_fd);
        }
        free (dir);
    }
    return rc;
}

int
sigv4_key_load (const char *data_dir)
{
    pthread_mutex_lock (&s_key_lock);
    int rc = 0;
    if (!s_key_loaded) {
        char *path = zsys_sprintf ("%s/" SIGV4_KEY_FILE, data_dir);
        int fd = open (path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT) {
            int made = s_key_make (path);
            if (made == 0)
                s_key_loaded = true;
            else
            if (made == 1)
                fd = open (path, O_RDONLY | O_CLOEXEC);      //  another process made it first
        }
        if (fd >= 0) {
            //  A key file is exactly 32 bytes: anything else is a damaged
            //  file (sealed secrets cannot be opened with a guess at it)
            unsigned char extra;
            ssize_t size = read (fd, s_key, 32);
            bool whole = size == 32 && read (fd, &extra, 1) == 0;
            close (fd);
            if (whole)
                s_key_loaded = true;
            else {
                OPENSSL_cleanse (s_key, 32);
                zsys_error ("sigv4: the key file %s is corrupt (not exactly 32 bytes): API tokens cannot sign"
                            " SigV4 requests; restore it from a backup, or remove it to make a new key"
                            " (the SigV4 secrets of existing tokens are then lost: make new tokens)", path);
                zstr_free (&path);
                pthread_mutex_unlock (&s_key_lock);
                return -1;
            }
        }
        if (!s_key_loaded) {
            zsys_error ("sigv4: cannot read or make %s: API tokens made now cannot sign SigV4 requests", path);
            rc = -1;
        }
        zstr_free (&path);
    }
    pthread_mutex_unlock (&s_key_lock);
    return rc;
}

char *
sigv4_seal (const char *secret)
{
    if (!s_key_loaded || !secret)
        return NULL;
    size_t size = strlen (secret);
    unsigned char *sealed = (unsigned char *) malloc (12 + size + 16);
    if (RAND_bytes (sealed, 12) != 1) {
        free (sealed);
        return NULL;
    }
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new ();
    int length = 0, final = 0;
    bool ok = EVP_EncryptInit_ex (ctx, EVP_aes_256_gcm (), NULL, s_key, sealed) == 1
           && EVP_EncryptUpdate (ctx, sealed + 12, &length, (const unsigned char *) secret, (int) size) == 1
           && EVP_EncryptFinal_ex (ctx, sealed + 12 + length, &final) == 1
           && EVP_CIPHER_CTX_ctrl (ctx, EVP_CTRL_GCM_GET_TAG, 16, sealed + 12 + size) == 1;
    EVP_CIPHER_CTX_free (ctx);
    char *hex = NULL;
    if (ok) {
        hex = (char *) malloc (2 * (12 + size + 16) + 1);
        s_hex (sealed, 12 + size + 16, hex);
    }
    free (sealed);
    return hex;
}

char *
sigv4_unseal (const char *sealed_hex)
{
    size_t hex_size = sealed_hex ? strlen (sealed_hex) : 0;
    if (!s_key_loaded || hex_size % 2 || hex_size < 2 * 28 || hex_size > 2048)
        return NULL;
    size_t size = hex_size / 2;
    unsigned char sealed [1024];
    for (size_t i = 0; i < size; i++) {
        unsigned int byte;
        if (sscanf (sealed_hex + 2 * i, "%2x", &byte) != 1)
            return NULL;
        sealed [i] = (unsigned char) byte;
    }
    size_t secret_size = size - 28;
    char *secret = (char *) malloc (secret_size + 1);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new ();
    int length = 0, final = 0;
    bool ok = EVP_DecryptInit_ex (ctx, EVP_aes_256_gcm (), NULL, s_key, sealed) == 1
           && EVP_DecryptUpdate (ctx, (unsigned char *) secret, &length, sealed + 12, (int) secret_size) == 1
           && EVP_CIPHER_CTX_ctrl (ctx, EVP_CTRL_GCM_SET_TAG, 16, sealed + 12 + secret_size) == 1
           && EVP_DecryptFinal_ex (ctx, (unsigned char *) secret + length, &final) == 1;
    EVP_CIPHER_CTX_free (ctx);
    if (!ok) {
        free (secret);
        return NULL;
    }
    secret [secret_size] = 0;
    return secret;
}

//  --------------------------------------------------------------------------
//  Selftest

void
sigv4_test (bool verbose)
{
    printf ("sigv4: ");
    //  AWS's published example (the GET of the IAM ListUsers docs, "Create
    //  a signed AWS API request"): the canonical request's hash and signature
    cJSON *headers = cJSON_Parse ("{\"content-type\":\"application/x-www-form-urlencoded; charset=utf-8\","
                                  "\"host\":\"iam.amazonaws.com\",\"x-amz-date\":\"20150830T123600Z\"}");
    char *canonical = sigv4_canonical_request ("GET", "/", "Version=2010-05-08&Action=ListUsers", headers,
                                               "content-type;host;x-amz-date", "", 0);
    assert (canonical);
    char hash [65];
    s_sha256_hex (canonical, strlen (canonical), hash);
    assert (streq (hash, "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"));
    char signature [65];
    sigv4_sign ("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830T123600Z", "20150830", "us-east-1", "iam",
                canonical, signature);
    assert (streq (signature, "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"));
    free (canonical);

    //  Parsing
    sigv4_auth_t auth;
    const char *detail;
    const char *header = "AWS4-HMAC-SHA256 Credential=abcdefabcdef/20150830/us-east-1/iam/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date, "
        "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
    assert (sigv4_parse (header, &auth, &detail) == 0);
    assert (streq (auth.access_key, "abcdefabcdef") && streq (auth.date, "20150830") && streq (auth.service, "iam"));
    assert (streq (auth.signed_headers, "content-type;host;x-amz-date"));
    assert (sigv4_parse ("AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host, Signature=00", &auth, &detail));
    assert (sigv4_parse ("AWS4-HMAC-SHA256 ", &auth, &detail) && detail);
    assert (sigv4_parse ("Bearer x", &auth, &detail));
    assert (sigv4_parse (NULL, &auth, &detail));
    //  Verify: the example passes at its time, not with another body, query or secret, nor days later
    sigv4_parse (header, &auth, &detail);
    time_t then = s_amz_time ("20150830T123600Z");
    assert (then > 0);
    const char *secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const char *query = "Version=2010-05-08&Action=ListUsers";
    assert (sigv4_verify (&auth, secret, "GET", "/", query, headers, "", 0, then + 60, &detail) == 0);
    assert (sigv4_verify (&auth, secret, "GET", "/", query, headers, "x", 1, then, &detail) == -1);
    assert (sigv4_verify (&auth, secret, "GET", "/", "Action=DeleteUser", headers, "", 0, then, &detail) == -1);
    assert (sigv4_verify (&auth, secret, "POST", "/", query, headers, "", 0, then, &detail) == -1);
    assert (sigv4_verify (&auth, "other", "GET", "/", query, headers, "", 0, then, &detail) == -1);
    assert (sigv4_verify (&auth, secret, "GET", "/", query, headers, "", 0, then + 86400, &detail) == -1
         && strstr (detail, "expired"));
    cJSON_DeleteItemFromObject (headers, "content-type");
    assert (sigv4_verify (&auth, secret, "GET", "/", query, headers, "", 0, then, &detail) == -1
         && strstr (detail, "missing"));
    cJSON_Delete (headers);
    //  The path is encoded once more, as botocore does
    headers = cJSON_Parse ("{\"host\":\"h\",\"x-amz-date\":\"20150830T123600Z\"}");
    canonical = sigv4_canonical_request ("POST", "/2015-03-31/functions/f%3A1/invocations", "b=2&a=1&a", headers,
                                         "host;x-amz-date", "{}", 2);
    assert (strncmp (canonical, "POST\n/2015-03-31/functions/f%253A1/invocations\na=&a=1&b=2\nhost:h\n", 64) == 0);
    free (canonical);
    cJSON_Delete (headers);

    //  Sealing: a key made in a temp dir, a secret sealed and opened, a
    //  tampered one refused
    char dir [] = "/tmp/clowdy-sigv4-XXXXXX";
    assert (mkdtemp (dir));
    assert (sigv4_key_load (dir) == 0);
    assert (sigv4_key_load (dir) == 0);
    char *sealed = sigv4_seal ("clw_secret");
    assert (sealed);
    char *opened = sigv4_unseal (sealed);
    assert (opened && streq (opened, "clw_secret"));
    free (opened);
    sealed [30] = sealed [30] == '0' ? '1' : '0';
    assert (!sigv4_unseal (sealed));
    assert (!sigv4_unseal ("zz"));
    assert (!sigv4_unseal (NULL));
    free (sealed);

    //  A short or empty key file (a crash mid-write by an older build) is
    //  refused, not used as a key: no token gets a secret sealed with it
    pthread_mutex_lock (&s_key_lock);
    unsigned char kept [32];
    memcpy (kept, s_key, 32);
    s_key_loaded = false;
    pthread_mutex_unlock (&s_key_lock);
    const char *damaged [] = { "", "short" };
    for (int index = 0; index < 2; index++) {
        char broken [] = "/tmp/clowdy-sigv4-XXXXXX";
        assert (mkdtemp (broken));
        char *path = zsys_sprintf ("%s/" SIGV4_KEY_FILE, broken);
        FILE *file = fopen (path, "w");
        assert (file);
        fputs (damaged [index], file);
        fclose (file);
        assert (sigv4_key_load (broken) == -1);
        assert (sigv4_seal ("clw_secret") == NULL);
        //  And it is left as it was, for the operator to restore
        struct stat status;
        assert (stat (path, &status) == 0 && status.st_size == (off_t) strlen (damaged [index]));
        unlink (path);
        zstr_free (&path);
        rmdir (broken);
    }
    //  The key made first is still the one in the file
    assert (sigv4_key_load (dir) == 0);
    assert (memcmp (kept, s_key, 32) == 0);
    char command [128];
    snprintf (command, sizeof command, "rm -rf %s", dir);
    if (system (command)) { }
    printf ("OK\n");
}
