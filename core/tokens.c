/*  =========================================================================
    tokens - API tokens, stored in the store's api_tokens table

    A token is "clw_" + 64 hex characters from the OpenSSL RNG (256 bits).
    The table holds its SHA-256 (hex), never the plaintext, so a copy of
    the database gives no working token; the plaintext is returned once, at
    creation. A check looks the hash up (the column is UNIQUE, so indexed),
    refuses a revoked token with its own sentence, and writes last_used_at
    at most once a minute per token, so a busy script does not turn every
    request into a write.

    All SQL runs through the store's cached prepared statements
    (store_prepare, store_exec, store_query) on the caller's connection:
    the caller is a thread that owns one. In the server that is a
    control-plane thread (core/apipool.c), never the http loop, since any
    SQLite call may wait on another connection's write lock.
    ========================================================================= */

#include <czmq.h>
#include <openssl/evp.h>
#include "core/sigv4.h"
#include "core/tokens.h"
#include "core/util.h"

#define TOKEN_HEX           64          //  hex characters after the prefix
#define TOKEN_TOUCH_SECONDS 60          //  last_used_at resolution

static const char *S_API_TOKEN = "Invalid API token";
static const char *S_REVOKED = "API token revoked";
static const char *S_INTERNAL = "Authentication failed";

//  Lower-case hex SHA-256 of text into out [65]
static void
s_sha256_hex (const char *text, size_t len, char out [65])
{
    unsigned char digest [32];
    unsigned int digest_len = 0;
    EVP_Digest (text, len, digest, &digest_len, EVP_sha256 (), NULL);
    for (int i = 0; i < 32; i++)
        snprintf (out + 2 * i, 3, "%02x", digest [i]);
}

//  ISO 8601 time as util_now_iso writes it, for a given time_t
static void
s_iso_time (time_t when, char out [UTIL_TIME_SIZE])
{
    struct tm tm;
    gmtime_r (&when, &tm);
    size_t len = strftime (out, UTIL_TIME_SIZE, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf (out + len, UTIL_TIME_SIZE - len, ".000000Z");
}

bool
tokens_is_token (const char *token, size_t len)
{
    size_t prefix = strlen (AUTH_TOKEN_PREFIX);
    if (!token || len != prefix + TOKEN_HEX || memcmp (token, AUTH_TOKEN_PREFIX, prefix))
        return false;
    for (size_t i = prefix; i < len; i++)
        if (!((token [i] >= '0' && token [i] <= '9') || (token [i] >= 'a' && token [i] <= 'f')))
            return false;
    return true;
}

//  Is a token's last_used_at old enough to write again? Once a minute at
//  most, so a busy token is not a write per request
static bool
s_touch_due (const char *last_used)
{
    char cutoff [UTIL_TIME_SIZE];
    s_iso_time (time (NULL) - TOKEN_TOUCH_SECONDS, cutoff);
    return !last_used || strcmp (last_used, cutoff) < 0;
}

//  Record a token's use now
static void
s_touch (store_t *store, const char *token_id)
{
    char now [UTIL_TIME_SIZE];
    util_now_iso (now);
    if (store_exec (store, "UPDATE api_tokens SET last_used_at = ? WHERE id = ?", "ss", now, token_id) < 0)
        zsys_warning ("tokens: cannot record the use of token %s", token_id);
}

int
tokens_check (store_t *store, const char *token, size_t len,
              char *user_id, size_t user_id_size, const char **detail)
{
    *detail = S_API_TOKEN;
    if (!store || !tokens_is_token (token, len))
        return -1;
    char hash [65];
    s_sha256_hex (token, len, hash);
    sqlite3_stmt *stmt = store_prepare (store,
        "SELECT id, user_id, revoked_at, last_used_at FROM api_tokens WHERE token_hash = ?");
    if (!stmt) {
        *detail = S_INTERNAL;
        return -1;
    }
    sqlite3_bind_text (stmt, 1, hash, -1, SQLITE_TRANSIENT);
    int rc = -1;
    char token_id [AUTH_TOKEN_ID_SIZE] = "";
    bool touch = false;
    int step = sqlite3_step (stmt);
    if (step == SQLITE_ROW) {
        const char *id = (const char *) sqlite3_column_text (stmt, 0);
        const char *user = (const char *) sqlite3_column_text (stmt, 1);
        const char *last_used = (const char *) sqlite3_column_text (stmt, 3);
        size_t user_len = user? strlen (user): 0;
        if (sqlite3_column_type (stmt, 2) != SQLITE_NULL)
            *detail = S_REVOKED;
        else
        if (id && user_len > 0 && user_len < user_id_size) {
            memcpy (user_id, user, user_len + 1);
            snprintf (token_id, sizeof (token_id), "%s", id);
            touch = s_touch_due (last_used);
            rc = 0;
        }
    }
    else
    if (step != SQLITE_DONE) {
        zsys_error ("tokens: lookup failed: %s", sqlite3_errmsg (store_db (store)));
        *detail = S_INTERNAL;
    }
    sqlite3_reset (stmt);
    if (touch)
        s_touch (store, token_id);
    return rc;
}

int
tokens_check_header (store_t *store, const char *authorization,
                     char *user_id, size_t user_id_size, const char **detail)
{
    const char *token;
    size_t len;
    const char *unread = auth_bearer (authorization, &token, &len);
    if (unread) {
        *detail = unread;
        return -1;
    }
    return tokens_check (store, token, len, user_id, user_id_size, detail);
}

int
tokens_check_sigv4 (store_t *store, const char *authorization, const char *method, const char *raw_path,
                    const char *raw_query, cJSON *headers, const void *body, size_t body_size,
                    char *user_id, size_t user_id_size, const char **detail)
{
    sigv4_auth_t auth;
    if (!store || sigv4_parse (authorization, &auth, detail))
        return -1;
    cJSON *row = store_query_row (store,
        "SELECT user_id, revoked_at, sigv4_secret, last_used_at FROM api_tokens WHERE id = ?", "s", auth.access_key);
    const char *user = cJSON_GetStringValue (cJSON_GetObjectItem (row, "user_id"));
    const char *sealed = cJSON_GetStringValue (cJSON_GetObjectItem (row, "sigv4_secret"));
    int rc = -1;
    if (!user)
        *detail = "The security token included in the request is invalid: no API token has this access key id";
    else
    if (!cJSON_IsNull (cJSON_GetObjectItem (row, "revoked_at")))
        *detail = S_REVOKED;
    else
    if (!sealed)
        *detail = "This API token was made before SigV4 was supported (or without a sealing key): make a new one";
    else {
        char *secret = sigv4_unseal (sealed);
        if (!secret)
            *detail = "This API token's SigV4 secret cannot be opened with this server's sealing key";
        else
        if (sigv4_verify (&auth, secret, method, raw_path, raw_query, headers, body, body_size, time (NULL),
                          detail) == 0) {
            if (strlen (user) < user_id_size) {
                memcpy (user_id, user, strlen (user) + 1);
                rc = 0;
                if (s_touch_due (cJSON_GetStringValue (cJSON_GetObjectItem (row, "last_used_at"))))
                    s_touch (store, auth.access_key);
            }
            else
                *detail = S_INTERNAL;
        }
        if (secret) {
            OPENSSL_cleanse (secret, strlen (secret));
            free (secret);
        }
    }
    cJSON_Delete (row);
    return rc;
}

char *
tokens_create (store_t *store, const char *user_id, const char *name,
               char id_out [AUTH_TOKEN_ID_SIZE])
{
    if (!store || !user_id || !name || !id_out)
        return NULL;
    size_t user_len = strlen (user_id);
    size_t name_chars = util_utf8_length (name);
    if (user_len == 0 || user_len > AUTH_MAX_SUB || name_chars == 0 || name_chars > TOKENS_NAME_MAX_CHARS)
        return NULL;

    size_t prefix = strlen (AUTH_TOKEN_PREFIX);
    char *token = malloc (prefix + TOKEN_HEX + 1);
    if (!token)
        return NULL;
    memcpy (token, AUTH_TOKEN_PREFIX, prefix);
    if (util_random_hex (token + prefix, TOKEN_HEX / 2)) {
        free (token);
        return NULL;
    }

    char hash [65];
    s_sha256_hex (token, strlen (token), hash);
    char id [UTIL_ID_SIZE];
    util_new_id (id);
    char now [UTIL_TIME_SIZE];
    util_now_iso (now);
    //  Sealed for SigV4 when the server has a sealing key (core/sigv4.h)
    char *sealed = sigv4_seal (token);
    int rc = store_exec (store,
        "INSERT INTO api_tokens (id, user_id, name, token_hash, created_at, sigv4_secret) VALUES (?, ?, ?, ?, ?, ?)",
        "ssssss", id, user_id, name, hash, now, sealed);
    free (sealed);
    if (rc != 1) {
        zsys_error ("tokens: cannot create an API token for '%s'", user_id);
        OPENSSL_cleanse (token, strlen (token));
        free (token);
        return NULL;
    }
    memcpy (id_out, id, AUTH_TOKEN_ID_SIZE);
    return token;
}

cJSON *
tokens_list (store_t *store, const char *user_id)
{
    if (!store)
        return NULL;
    if (user_id)
        return store_query (store,
            "SELECT id, name, created_at, last_used_at FROM api_tokens"
            " WHERE revoked_at IS NULL AND user_id = ? ORDER BY created_at DESC, id", "s", user_id);
    return store_query (store,
        "SELECT id, name, created_at, last_used_at, user_id FROM api_tokens"
        " WHERE revoked_at IS NULL ORDER BY created_at DESC, id", NULL);
}

int
tokens_revoke (store_t *store, const char *user_id, const char *token_id)
{
    if (!store || !token_id)
        return -1;
    char now [UTIL_TIME_SIZE];
    util_now_iso (now);
    int rc = user_id
        ? store_exec (store, "UPDATE api_tokens SET revoked_at = ?"
                             " WHERE id = ? AND revoked_at IS NULL AND user_id = ?",
                      "sss", now, token_id, user_id)
        : store_exec (store, "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                      "ss", now, token_id);
    return rc == 1? 0: -1;
}


//  --------------------------------------------------------------------------
//  Selftest

static void
s_expect (store_t *store, const char *token, int rc, const char *user, const char *detail)
{
    char user_id [AUTH_USER_ID_SIZE] = "";
    const char *said = NULL;
    assert (tokens_check (store, token, strlen (token), user_id, sizeof user_id, &said) == rc);
    if (rc == 0)
        assert (streq (user_id, user));
    else
        assert (said && streq (said, detail));
}

void
tokens_test (bool verbose)
{
    printf ("tokens: ");
    store_t *store = store_new (":memory:");
    assert (store);
    char id [AUTH_TOKEN_ID_SIZE];
    char *plain = tokens_create (store, "alice", "laptop", id);
    assert (plain && strlen (plain) == 4 + TOKEN_HEX && strncmp (plain, "clw_", 4) == 0);
    assert (util_is_id (id));
    assert (tokens_is_token (plain, strlen (plain)));
    char *plain2 = tokens_create (store, "alice", "ci", id);
    char id2 [AUTH_TOKEN_ID_SIZE];
    memcpy (id2, id, sizeof (id2));
    char *plain_bob = tokens_create (store, "bob", "script", id);
    assert (plain2 && plain_bob && strcmp (plain, plain2));
    assert (tokens_create (store, "", "x", id) == NULL);
    assert (tokens_create (store, "alice", "", id) == NULL);
    assert (tokens_create (NULL, "alice", "x", id) == NULL);

    //  Only hashes are stored
    cJSON *rows = store_query (store, "SELECT id, user_id, name, token_hash, created_at FROM api_tokens", NULL);
    assert (cJSON_GetArraySize (rows) == 3);
    char *text = cJSON_PrintUnformatted (rows);
    assert (!strstr (text, plain + 4) && !strstr (text, plain2 + 4) && !strstr (text, plain_bob + 4));
    free (text);
    cJSON *row;
    cJSON_ArrayForEach (row, rows)
        assert (strlen (cJSON_GetObjectItem (row, "token_hash")->valuestring) == 64);
    cJSON_Delete (rows);

    s_expect (store, plain, 0, "alice", NULL);
    s_expect (store, plain_bob, 0, "bob", NULL);

    //  Lists: own tokens only, newest first, no secrets
    cJSON *list = tokens_list (store, "alice");
    assert (cJSON_GetArraySize (list) == 2);
    cJSON *first = cJSON_GetArrayItem (list, 0);
    assert (streq (cJSON_GetObjectItem (first, "id")->valuestring, id2));
    assert (streq (cJSON_GetObjectItem (first, "name")->valuestring, "ci"));
    assert (cJSON_IsNull (cJSON_GetObjectItem (first, "last_used_at")));
    cJSON *second = cJSON_GetArrayItem (list, 1);
    assert (cJSON_IsString (cJSON_GetObjectItem (second, "last_used_at")));
    assert (cJSON_GetObjectItem (second, "user_id") == NULL);
    text = cJSON_PrintUnformatted (list);
    assert (!strstr (text, plain + 4) && !strstr (text, "token_hash"));
    free (text);
    cJSON_Delete (list);
    list = tokens_list (store, NULL);
    assert (cJSON_GetArraySize (list) == 3);
    assert (cJSON_GetObjectItem (cJSON_GetArrayItem (list, 0), "user_id"));
    cJSON_Delete (list);

    //  Revoke: not someone else's, then own, then it fails
    assert (tokens_revoke (store, "bob", id2) == -1);
    assert (tokens_revoke (store, "alice", "000000000000") == -1);
    assert (tokens_revoke (store, "alice", id2) == 0);
    assert (tokens_revoke (store, "alice", id2) == -1);
    s_expect (store, plain2, -1, NULL, S_REVOKED);

    //  From an Authorization header, as the control-plane threads and the
    //  agent's runners check them (the scheme in any case, blanks ignored)
    {
        char user_id [AUTH_USER_ID_SIZE] = "";
        const char *said = NULL;
        char *header = zsys_sprintf ("bearer   %s  ", plain);
        assert (tokens_check_header (store, header, user_id, sizeof user_id, &said) == 0);
        assert (streq (user_id, "alice"));
        zstr_free (&header);
        header = zsys_sprintf ("Bearer %s", plain2);
        assert (tokens_check_header (store, header, user_id, sizeof user_id, &said) == -1);
        assert (streq (said, S_REVOKED));
        zstr_free (&header);
        said = NULL;
        assert (tokens_check_header (store, "Basic clw_x", user_id, sizeof user_id, &said) == -1 && said);
        said = NULL;
        assert (tokens_check_header (store, NULL, user_id, sizeof user_id, &said) == -1 && said);
        assert (tokens_check_header (store, "Bearer clw_", user_id, sizeof user_id, &said) == -1);
        assert (streq (said, S_API_TOKEN));
    }
    list = tokens_list (store, "alice");
    assert (cJSON_GetArraySize (list) == 1);
    cJSON_Delete (list);

    //  Near misses
    char *wrong = strdup (plain);
    wrong [strlen (wrong) - 1] = wrong [strlen (wrong) - 1] == '0'? '1': '0';
    s_expect (store, wrong, -1, NULL, S_API_TOKEN);
    wrong [strlen (wrong) - 1] = 0;
    s_expect (store, wrong, -1, NULL, S_API_TOKEN);
    free (wrong);
    s_expect (store, "clw_", -1, NULL, S_API_TOKEN);
    s_expect (store, "clw_ZZZZ000000000000000000000000000000000000000000000000000000000000", -1, NULL, S_API_TOKEN);

    //  last_used_at is not rewritten within a minute
    assert (store_exec (store, "UPDATE api_tokens SET last_used_at = '2000-01-01T00:00:00.000000Z'", NULL) == 3);
    s_expect (store, plain, 0, "alice", NULL);
    const char *touched_sql = "SELECT last_used_at FROM api_tokens WHERE user_id = 'alice' AND revoked_at IS NULL";
    row = store_query_row (store, touched_sql, NULL);
    char *touched = strdup (cJSON_GetObjectItem (row, "last_used_at")->valuestring);
    cJSON_Delete (row);
    assert (strcmp (touched, "2000") > 0);
    s_expect (store, plain, 0, "alice", NULL);
    row = store_query_row (store, touched_sql, NULL);
    assert (streq (cJSON_GetObjectItem (row, "last_used_at")->valuestring, touched));
    cJSON_Delete (row);
    free (touched);
    {
        //  A name of 100 characters (not bytes) is the longest
        char name [4 * TOKENS_NAME_MAX_CHARS + 8] = "";
        for (int index = 0; index < TOKENS_NAME_MAX_CHARS; index++)
            strcat (name, "\xc3\xa9");                    //  é, 2 bytes
        char carol [AUTH_TOKEN_ID_SIZE];
        char *made = tokens_create (store, "carol", name, carol);
        assert (made);
        free (made);
        assert (tokens_revoke (store, "carol", carol) == 0);
        strcat (name, "e");
        assert (tokens_create (store, "carol", name, carol) == NULL);
    }

    {
        //  A SigV4-signed request records the token's use as a bearer one
        //  does, and not more than once a minute
        char dir [] = "/tmp/clowdy-tokens-XXXXXX";
        assert (mkdtemp (dir));
        assert (sigv4_key_load (dir) == 0);
        char dave [AUTH_TOKEN_ID_SIZE];
        char *secret = tokens_create (store, "dave", "aws", dave);
        assert (secret);
        time_t now = time (NULL);
        char amz_date [17], date [9];
        strftime (amz_date, sizeof amz_date, "%Y%m%dT%H%M%SZ", gmtime (&now));
        memcpy (date, amz_date, 8);
        date [8] = 0;
        cJSON *headers = cJSON_CreateObject ();
        cJSON_AddStringToObject (headers, "host", "h");
        cJSON_AddStringToObject (headers, "x-amz-date", amz_date);
        char *canonical = sigv4_canonical_request ("GET", "/2015-03-31/functions", "", headers,
                                                   "host;x-amz-date", "", 0);
        assert (canonical);
        char signature [65];
        sigv4_sign (secret, amz_date, date, "us-east-1", "lambda", canonical, signature);
        free (canonical);
        char *authorization = zsys_sprintf (SIGV4_ALGORITHM " Credential=%s/%s/us-east-1/lambda/aws4_request,"
                                            " SignedHeaders=host;x-amz-date, Signature=%s", dave, date, signature);
        const char *touched_dave = "SELECT last_used_at FROM api_tokens WHERE id = ?";
        row = store_query_row (store, touched_dave, "s", dave);
        assert (cJSON_IsNull (cJSON_GetObjectItem (row, "last_used_at")));
        cJSON_Delete (row);
        char user [AUTH_MAX_SUB + 1];
        const char *detail = NULL;
        int rc = tokens_check_sigv4 (store, authorization, "GET", "/2015-03-31/functions", "", headers, "", 0,
                                     user, sizeof user, &detail);
        if (rc)
            printf ("\n%s\n", detail);
        assert (rc == 0 && streq (user, "dave"));
        row = store_query_row (store, touched_dave, "s", dave);
        char *first_use = strdup (cJSON_GetStringValue (cJSON_GetObjectItem (row, "last_used_at")));
        cJSON_Delete (row);
        assert (tokens_check_sigv4 (store, authorization, "GET", "/2015-03-31/functions", "", headers, "", 0,
                                    user, sizeof user, &detail) == 0);
        row = store_query_row (store, touched_dave, "s", dave);
        assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (row, "last_used_at")), first_use));
        cJSON_Delete (row);
        free (first_use);
        free (authorization);
        cJSON_Delete (headers);
        free (secret);
        char command [128];
        snprintf (command, sizeof command, "rm -rf %s", dir);
        if (system (command)) { }
    }

    free (plain);
    free (plain2);
    free (plain_bob);
    store_destroy (&store);
    printf ("OK\n");
}
