/*  =========================================================================
    auth - who is calling: the token check and the key cache

    The http actor calls auth_check for every request that needs a user. The
    Authorization header is the only input; everything in it is hostile until
    proven otherwise, so the order of checks matters:

    1.  Size first: a credential over AUTH_MAX_TOKEN bytes is refused before
        anything parses it.
    2.  "Bearer clw_..." is an API token in every mode; core/tokens.c checks
        it against the store (its SHA-256 is looked up in api_tokens). That
        is SQLite, which the http loop must not touch, so auth_check refuses
        API tokens: the caller asks auth_is_api_token first and has a thread
        that owns a store call tokens_check_header.
    3.  Any other bearer value is a JWT (jwt mode only). We split and decode
        the JOSE header ourselves and accept only alg RS256 or ES256. The key
        is chosen by kid from the key set, and its type must match the
        header's alg (RSA for RS256, EC P-256 for ES256). Only then does
        libjwt see the token, with that key's PEM: libjwt would otherwise let
        a token choose HS256 and be "verified" with the public key's PEM as
        an HMAC secret. After libjwt verified the signature we read the
        claims it decoded: exp (required) and nbf with leeway, iss and aud if
        configured, sub as the user id (1..128 characters, no control
        characters).

    Cache. OpenSSL 3.0 needs ~350 us to parse a PEM key, which libjwt does
    on every decode, so a verified token is remembered (in a direct-mapped
    table keyed by the SHA-256 of its exact bytes) with its sub, exp and nbf.
    A browser or script sends the same token for many requests until it
    expires; a hit costs one hash and re-checks exp and nbf. Installing a new
    key set empties the table, so a withdrawn key stops working at once.

    Keys. core/jwks.c turns the provider's JWKS into keys and fetches it;
    this file keeps the current set and decides when to fetch: on first
    use, when a token names an unknown kid (at most one fetch per 10 s, so
    random kids cannot hammer the provider), and when the set is over an
    hour old (so a key the provider withdrew stops working). A failed fetch
    keeps the keys we have. Only auth_refresh downloads, from a thread of
    the caller's (the http actor's refresher), at start, before the set ages
    out and when asked, without holding the lock while it downloads.
    auth_check never downloads nor waits for a download: when a fetch might
    bring a token's key (an unknown kid, no keys yet, a fetch under way) it
    answers AUTH_PENDING; the http actor parks the request, asks its
    refresher for auth_refresh (asked), and checks again after.

    A mutex guards the key set, so auth_check may be called from any thread.
    ========================================================================= */

#include <czmq.h>
#include <pthread.h>
#include <jwt.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include "core/auth.h"
#include "core/jwks.h"
#include "core/util.h"

#define AUTH_FETCH_TIMEOUT_MS 5000              //  whole JWKS fetch, connect included
#define AUTH_REFETCH_US       (10 * 1000000LL)  //  at most one refetch per 10 s
#define AUTH_MAX_KEY_AGE_US   (3600 * 1000000LL)//  refresh a key set older than this
#define AUTH_EARLY_REFRESH_US (300 * 1000000LL) //  auth_refresh renews this much sooner
#define AUTH_DEFAULT_LEEWAY   60                //  seconds of clock skew allowed
#define AUTH_CACHE_SLOTS      1024              //  verified JWTs remembered (direct-mapped)

//  A JWT that passed every check, remembered by the SHA-256 of its bytes
typedef struct {
    unsigned char hash [32];    //  SHA-256 of the token; all zero when the slot is empty
    double exp;                 //  its exp claim, re-checked on every hit
    double nbf;                 //  its nbf claim, or 0
    char sub [AUTH_USER_ID_SIZE];   //  its subject
} s_verified_t;


struct _auth_t {
    auth_mode_t mode;           //  AUTH_LOCAL or AUTH_JWT
    char *jwks_url;             //  where the JWKS lives, or NULL (preloaded keys only)
    char *issuer;               //  required iss, or NULL
    char *audience;             //  required aud, or NULL
    int leeway;                 //  seconds allowed on exp and nbf
    char *local_user;           //  user id in local mode without credentials
    pthread_mutex_t mutex;      //  guards everything below
    jwks_key_t *keys;              //  current key set
    size_t key_count;           //  entries in keys
    int64_t last_fetch_us;      //  monotonic time of the last fetch attempt, 0 = never
    int64_t last_success_us;    //  monotonic time the key set was last installed, 0 = never
    int64_t refetch_us;         //  minimum gap between fetches (tests shorten it)
    long fetch_timeout_ms;      //  curl timeout (tests shorten it)
    size_t fetches;             //  fetch attempts so far (for tests and logs)
    bool fetching;              //  auth_refresh is downloading without the lock
    size_t key_generation;      //  bumped by every key set install
    s_verified_t *cache;        //  AUTH_CACHE_SLOTS verified tokens, emptied with each new key set
    size_t cache_hits;          //  tokens accepted from the cache (for tests)
};

static const char *S_MISSING = "Missing credentials";
static const char *S_SCHEME = "Authorization header must be 'Bearer <token>'";
static const char *S_TOO_LARGE = "Token too large";
static const char *S_MALFORMED = "Malformed token";
static const char *S_ALG = "Unsupported token algorithm";
static const char *S_ALG_KEY = "Token algorithm does not match its key";
static const char *S_TYP = "Unsupported token type: the header's typ must be JWT";
static const char *S_UNKNOWN_KEY = "Unknown signing key";
static const char *S_NO_KEYS = "Signing keys unavailable";
static const char *S_PENDING = "Signing keys are being fetched";     //  AUTH_PENDING, not a 401
static const char *S_SIGNATURE = "Invalid token signature";
static const char *S_NO_EXP = "Token has no expiry";
static const char *S_EXPIRED = "Token expired";
static const char *S_NOT_YET = "Token not yet valid";
static const char *S_ISSUER = "Invalid token issuer";
static const char *S_AUDIENCE = "Invalid token audience";
static const char *S_SUBJECT = "Token has no valid subject";
static const char *S_API_TOKEN = "Invalid API token";
static const char *S_NO_JWT = "JWT authentication is not enabled";
static const char *S_INTERNAL = "Authentication failed";


//  --------------------------------------------------------------------------
//  Small helpers

//  Copy a user id if it fits; false otherwise
static bool
s_copy_user (char *user_id, size_t size, const char *value)
{
    size_t len = strlen (value);
    if (len == 0 || len >= size)
        return false;
    memcpy (user_id, value, len + 1);
    return true;
}


//  Read an Authorization header: "Bearer <token>", the scheme in any case,
//  blanks around the token ignored. Returns NULL and the token (len bytes,
//  not terminated there), or the sentence saying why there is none:
//  S_MISSING (no header, or no token), S_SCHEME (another scheme) or
//  S_TOO_LARGE. The one reader of the header, for auth_check and for the
//  API-token checks (auth_is_api_token, tokens_check_header).
static const char *
s_bearer (const char *authorization, const char **token_p, size_t *len_p)
{
    *token_p = NULL;
    *len_p = 0;
    const char *cursor = authorization? authorization: "";
    while (*cursor == ' ' || *cursor == '\t')
        cursor++;
    if (*cursor == 0)
        return S_MISSING;
    if (strnlen (cursor, AUTH_MAX_TOKEN + 64) >= AUTH_MAX_TOKEN + 64)
        return S_TOO_LARGE;
    if (strncasecmp (cursor, "Bearer", 6) || (cursor [6] != ' ' && cursor [6] != '\t' && cursor [6] != 0))
        return S_SCHEME;
    const char *token = cursor + 6;
    while (*token == ' ' || *token == '\t')
        token++;
    size_t len = strlen (token);
    while (len > 0 && (token [len - 1] == ' ' || token [len - 1] == '\t'))
        len--;
    if (len == 0)
        return S_MISSING;
    if (len > AUTH_MAX_TOKEN)
        return S_TOO_LARGE;
    *token_p = token;
    *len_p = len;
    return NULL;
}

//  Does a bearer token name an API token (by its prefix; tokens_check
//  judges the rest)?
static bool
s_is_api_token (const char *token, size_t len)
{
    size_t prefix = strlen (AUTH_TOKEN_PREFIX);
    return len >= prefix && memcmp (token, AUTH_TOKEN_PREFIX, prefix) == 0;
}


//  --------------------------------------------------------------------------
//  The key set

//  Replace the key set; caller holds the lock.
static void
s_install (auth_t *self, jwks_key_t *keys, size_t count)
{
    memset (self->cache, 0, AUTH_CACHE_SLOTS * sizeof (s_verified_t));
    self->key_generation++;
    jwks_keys_free (self->keys, self->key_count);
    self->keys = keys;
    self->key_count = count;
    self->last_success_us = util_monotonic_us ();
}


//  Find the key for a token; caller holds the lock. kid may be NULL (then
//  the only key of that algorithm is used). Returns the key, or NULL with
//  *detail set: S_PENDING when a fetch may bring it (none yet, one under
//  way, or the last over 10 s ago, so random kids cannot hammer the
//  provider), then the caller asks auth_refresh and checks again.
static const jwks_key_t *
s_find_key (auth_t *self, const char *kid, jwt_alg_t alg, const char **detail)
{
    const jwks_key_t *found = NULL;
    size_t alg_matches = 0;
    for (size_t i = 0; i < self->key_count; i++) {
        const jwks_key_t *key = &self->keys [i];
        if (kid) {
            if (key->kid && streq (key->kid, kid)) {
                found = key;
                break;
            }
        }
        else
        if (key->alg == alg) {
            found = key;
            alg_matches++;
        }
    }
    if (!kid && alg_matches > 1)
        found = NULL;       //  ambiguous without a kid
    if (found) {
        if (found->alg != alg) {
            *detail = S_ALG_KEY;
            return NULL;
        }
        return found;
    }
    if (self->jwks_url
    && (self->fetching || self->last_fetch_us == 0
     || util_monotonic_us () - self->last_fetch_us >= self->refetch_us)) {
        *detail = S_PENDING;
        return NULL;
    }
    *detail = self->last_success_us == 0? S_NO_KEYS: S_UNKNOWN_KEY;
    return NULL;
}


//  --------------------------------------------------------------------------
//  JWT verification

//  exp and nbf against the clock, with leeway; 0 if the token is current
static int
s_check_times (auth_t *self, double exp, double nbf, const char **detail)
{
    double now = (double) time (NULL);
    if (now >= exp + self->leeway) {
        *detail = S_EXPIRED;
        return -1;
    }
    if (now + self->leeway < nbf) {
        *detail = S_NOT_YET;
        return -1;
    }
    return 0;
}

//  Check the claims of a verified token; returns 0 and the user or -1.
static int
s_check_claims (auth_t *self, cJSON *claims, char *user_id, size_t user_id_size,
                double *exp_out, double *nbf_out, const char **detail)
{
    cJSON *exp = cJSON_GetObjectItemCaseSensitive (claims, "exp");
    if (!cJSON_IsNumber (exp)) {
        *detail = S_NO_EXP;
        return -1;
    }
    cJSON *nbf = cJSON_GetObjectItemCaseSensitive (claims, "nbf");
    if (nbf && !cJSON_IsNumber (nbf)) {
        *detail = S_MALFORMED;
        return -1;
    }
    *exp_out = exp->valuedouble;
    *nbf_out = nbf? nbf->valuedouble: 0;
    if (s_check_times (self, *exp_out, *nbf_out, detail))
        return -1;
    if (self->issuer) {
        cJSON *iss = cJSON_GetObjectItemCaseSensitive (claims, "iss");
        if (!cJSON_IsString (iss) || strcmp (iss->valuestring, self->issuer)) {
            *detail = S_ISSUER;
            return -1;
        }
    }
    if (self->audience) {
        cJSON *aud = cJSON_GetObjectItemCaseSensitive (claims, "aud");
        bool match = false;
        if (cJSON_IsString (aud))
            match = streq (aud->valuestring, self->audience);
        else
        if (cJSON_IsArray (aud)) {
            cJSON *item;
            cJSON_ArrayForEach (item, aud)
                if (cJSON_IsString (item) && streq (item->valuestring, self->audience))
                    match = true;
        }
        if (!match) {
            *detail = S_AUDIENCE;
            return -1;
        }
    }
    cJSON *sub = cJSON_GetObjectItemCaseSensitive (claims, "sub");
    if (!cJSON_IsString (sub)) {
        *detail = S_SUBJECT;
        return -1;
    }
    size_t len = strlen (sub->valuestring);
    if (len == 0 || len > AUTH_MAX_SUB) {
        *detail = S_SUBJECT;
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) sub->valuestring [i];
        if (c < 0x20 || c == 0x7f) {
            *detail = S_SUBJECT;
            return -1;
        }
    }
    if (!s_copy_user (user_id, user_id_size, sub->valuestring)) {
        *detail = S_SUBJECT;
        return -1;
    }
    return 0;
}

static int
s_check_jwt (auth_t *self, const char *token, size_t len,
             char *user_id, size_t user_id_size, const char **detail)
{
    //  Three base64url parts: header, payload, signature
    const char *dot1 = memchr (token, '.', len);
    const char *dot2 = dot1? memchr (dot1 + 1, '.', len - (size_t) (dot1 + 1 - token)): NULL;
    if (!dot1 || !dot2 || memchr (dot2 + 1, '.', len - (size_t) (dot2 + 1 - token))) {
        *detail = S_MALFORMED;
        return -1;
    }
    size_t head_len = (size_t) (dot1 - token);
    size_t body_len = (size_t) (dot2 - dot1 - 1);
    size_t sig_len = len - (size_t) (dot2 + 1 - token);
    if (head_len == 0 || body_len == 0 || !jwks_is_b64url (dot1 + 1, body_len)) {
        *detail = S_MALFORMED;
        return -1;
    }
    size_t header_size = 0;
    unsigned char *header_text = jwks_b64url_decode (token, head_len, &header_size);
    cJSON *header = header_text? cJSON_ParseWithLength ((char *) header_text, header_size): NULL;
    free (header_text);
    if (!cJSON_IsObject (header)) {
        cJSON_Delete (header);
        *detail = S_MALFORMED;
        return -1;
    }
    cJSON *alg_item = cJSON_GetObjectItemCaseSensitive (header, "alg");
    cJSON *kid_item = cJSON_GetObjectItemCaseSensitive (header, "kid");
    jwt_alg_t alg = JWT_ALG_INVAL;
    if (cJSON_IsString (alg_item)) {
        if (streq (alg_item->valuestring, "RS256"))
            alg = JWT_ALG_RS256;
        else
        if (streq (alg_item->valuestring, "ES256"))
            alg = JWT_ALG_ES256;
    }
    if (alg == JWT_ALG_INVAL) {
        cJSON_Delete (header);
        *detail = S_ALG;
        return -1;
    }
    //  libjwt 1.10 verifies only typ "JWT" (or none): say so rather than
    //  let it report a bad signature for an RFC 9068 "at+jwt" access token
    cJSON *typ_item = cJSON_GetObjectItemCaseSensitive (header, "typ");
    if (typ_item && !(cJSON_IsString (typ_item) && strcasecmp (typ_item->valuestring, "JWT") == 0)) {
        cJSON_Delete (header);
        *detail = S_TYP;
        return -1;
    }
    //  A critical extension we do not understand must be refused (RFC 7515)
    if ((kid_item && !cJSON_IsString (kid_item))
    ||  cJSON_GetObjectItemCaseSensitive (header, "crit")
    ||  sig_len == 0 || !jwks_is_b64url (dot2 + 1, sig_len)) {
        cJSON_Delete (header);
        *detail = S_MALFORMED;
        return -1;
    }
    char *token_copy = strndup (token, len);
    if (!token_copy) {
        cJSON_Delete (header);
        *detail = S_INTERNAL;
        return -1;
    }
    int rc = -1;
    jwt_t *jwt = NULL;
    char *claims_text = NULL;
    cJSON *claims = NULL;
    unsigned char hash [32];
    EVP_Digest (token, len, hash, NULL, EVP_sha256 (), NULL);
    size_t slot_index = ((size_t) hash [0] << 8 | hash [1]) % AUTH_CACHE_SLOTS;

    pthread_mutex_lock (&self->mutex);
    s_verified_t *slot = &self->cache [slot_index];
    if (memcmp (slot->hash, hash, sizeof (hash)) == 0) {
        //  Seen and verified with the current key set: only the clock can say no
        rc = s_check_times (self, slot->exp, slot->nbf, detail);
        if (rc == 0 && !s_copy_user (user_id, user_id_size, slot->sub)) {
            *detail = S_SUBJECT;
            rc = -1;
        }
        self->cache_hits++;
        pthread_mutex_unlock (&self->mutex);
        cJSON_Delete (header);
        free (token_copy);
        return rc;
    }
    const jwks_key_t *key = s_find_key (self, kid_item? kid_item->valuestring: NULL, alg, detail);
    int verified = key? jwt_decode (&jwt, token_copy, (const unsigned char *) key->pem, key->pem_len): -1;
    size_t generation = self->key_generation;
    pthread_mutex_unlock (&self->mutex);
    cJSON_Delete (header);
    if (!key) {
        if (*detail == S_PENDING)
            rc = AUTH_PENDING;
        goto cleanup;
    }
    if (verified != 0 || !jwt || jwt_get_alg (jwt) != alg) {
        *detail = S_SIGNATURE;
        goto cleanup;
    }
    claims_text = jwt_get_grants_json (jwt, NULL);
    claims = claims_text? cJSON_Parse (claims_text): NULL;
    if (!cJSON_IsObject (claims)) {
        *detail = S_MALFORMED;
        goto cleanup;
    }
    double exp = 0, nbf = 0;
    rc = s_check_claims (self, claims, user_id, user_id_size, &exp, &nbf, detail);
    if (rc == 0) {
        //  Remember it, unless the key set changed while we verified
        pthread_mutex_lock (&self->mutex);
        if (self->key_generation == generation) {
            memcpy (slot->hash, hash, sizeof (hash));
            slot->exp = exp;
            slot->nbf = nbf;
            snprintf (slot->sub, sizeof (slot->sub), "%s", user_id);
        }
        pthread_mutex_unlock (&self->mutex);
    }
cleanup:
    cJSON_Delete (claims);
    free (claims_text);
    if (jwt)
        jwt_free (jwt);
    free (token_copy);
    return rc;
}


//  --------------------------------------------------------------------------
//  Public API

auth_t *
auth_new (const auth_config_t *config)
{
    if (!config || (config->mode != AUTH_LOCAL && config->mode != AUTH_JWT))
        return NULL;
    auth_t *self = (auth_t *) zmalloc (sizeof (auth_t));
    self->mode = config->mode;
    self->jwks_url = config->jwks_url && *config->jwks_url? strdup (config->jwks_url): NULL;
    self->issuer = config->issuer && *config->issuer? strdup (config->issuer): NULL;
    self->audience = config->audience && *config->audience? strdup (config->audience): NULL;
    self->leeway = config->leeway_seconds == 0? AUTH_DEFAULT_LEEWAY
                 : config->leeway_seconds < 0? 0: config->leeway_seconds;
    self->local_user = strdup (config->local_user && *config->local_user? config->local_user: "local");
    self->refetch_us = AUTH_REFETCH_US;
    self->fetch_timeout_ms = AUTH_FETCH_TIMEOUT_MS;
    self->cache = (s_verified_t *) zmalloc (AUTH_CACHE_SLOTS * sizeof (s_verified_t));
    pthread_mutex_init (&self->mutex, NULL);
    if (self->jwks_url)
        curl_global_init (CURL_GLOBAL_DEFAULT);
    return self;
}

void
auth_destroy (auth_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        auth_t *self = *self_p;
        if (self->jwks_url)
            curl_global_cleanup ();
        jwks_keys_free (self->keys, self->key_count);
        free (self->cache);
        pthread_mutex_destroy (&self->mutex);
        free (self->jwks_url);
        free (self->issuer);
        free (self->audience);
        free (self->local_user);
        free (self);
        *self_p = NULL;
    }
}

int
auth_refresh (auth_t *self, bool asked)
{
    pthread_mutex_lock (&self->mutex);
    int64_t now = util_monotonic_us ();
    bool gap_ok = self->last_fetch_us == 0 || now - self->last_fetch_us >= self->refetch_us;
    bool due = self->jwks_url && !self->fetching && gap_ok
            && (self->last_success_us == 0 || asked
             || now - self->last_success_us > AUTH_MAX_KEY_AGE_US - AUTH_EARLY_REFRESH_US);
    if (!due) {
        pthread_mutex_unlock (&self->mutex);
        return 0;
    }
    self->fetching = true;
    self->last_fetch_us = now;
    self->fetches++;
    char *url = strdup (self->jwks_url);
    long timeout_ms = self->fetch_timeout_ms;
    pthread_mutex_unlock (&self->mutex);

    jwks_key_t *keys = NULL;
    int count = jwks_download (url, timeout_ms, &keys);
    free (url);

    pthread_mutex_lock (&self->mutex);
    if (count >= 0)
        s_install (self, keys, (size_t) count);
    self->fetching = false;
    pthread_mutex_unlock (&self->mutex);
    return count >= 0? 0: -1;
}

auth_mode_t
auth_mode (auth_t *self)
{
    assert (self);
    return self->mode;
}

int
auth_set_jwks_json (auth_t *self, const char *json)
{
    if (!self || !json)
        return -1;
    jwks_key_t *keys = NULL;
    int count = jwks_parse (json, strlen (json), &keys);
    if (count < 0)
        return -1;
    pthread_mutex_lock (&self->mutex);
    s_install (self, keys, (size_t) count);
    if (self->last_fetch_us == 0)
        self->last_fetch_us = self->last_success_us;
    pthread_mutex_unlock (&self->mutex);
    return count;
}

int
auth_check (auth_t *self, const char *authorization,
            char *user_id, size_t user_id_size, const char **detail)
{
    const char *ignored;
    if (!detail)
        detail = &ignored;
    *detail = S_INTERNAL;
    if (!self || !user_id || user_id_size == 0)
        return -1;
    user_id [0] = 0;

    const char *token = NULL;
    size_t len = 0;
    const char *unread = s_bearer (authorization, &token, &len);
    if (unread == S_TOO_LARGE) {
        *detail = unread;
        return -1;
    }
    if (unread) {
        //  Local mode needs no credentials and ignores other schemes (a
        //  proxy's Basic auth, say)
        if (self->mode == AUTH_LOCAL && s_copy_user (user_id, user_id_size, self->local_user)) {
            *detail = NULL;
            return 0;
        }
        *detail = unread;
        return -1;
    }
    int rc;
    if (s_is_api_token (token, len)) {
        *detail = S_API_TOKEN;          //  the caller should have asked auth_is_api_token
        rc = -1;
    }
    else
    if (self->mode != AUTH_JWT) {
        *detail = S_NO_JWT;
        rc = -1;
    }
    else
        rc = s_check_jwt (self, token, len, user_id, user_id_size, detail);
    if (rc == 0)
        *detail = NULL;
    else
        user_id [0] = 0;
    return rc;
}

bool
auth_is_api_token (const char *authorization)
{
    const char *token;
    size_t len;
    return s_bearer (authorization, &token, &len) == NULL && s_is_api_token (token, len);
}

const char *
auth_bearer (const char *authorization, const char **token_p, size_t *len_p)
{
    return s_bearer (authorization, token_p, len_p);
}


//  --------------------------------------------------------------------------
//  Selftest

#include <microhttpd.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <netinet/in.h>
#include <sys/socket.h>

//  A JWKS server on loopback whose document the test can change
typedef struct {
    struct MHD_Daemon *daemon;  //  microhttpd with its own thread
    pthread_mutex_t mutex;      //  guards body and hits
    char *body;                 //  current JWKS document
    int hits;                   //  requests served
    int port;                   //  bound port
    int delay_ms;               //  answer this much later (a slow provider)
} s_jwks_server_t;

static enum MHD_Result
s_jwks_handler (void *cls, struct MHD_Connection *connection, const char *url,
                const char *method, const char *version, const char *upload_data,
                size_t *upload_data_size, void **req_cls)
{
    s_jwks_server_t *server = (s_jwks_server_t *) cls;
    pthread_mutex_lock (&server->mutex);
    int delay_ms = server->delay_ms;
    pthread_mutex_unlock (&server->mutex);
    if (delay_ms)
        zclock_sleep (delay_ms);
    pthread_mutex_lock (&server->mutex);
    server->hits++;
    struct MHD_Response *response = MHD_create_response_from_buffer (
        strlen (server->body), server->body, MHD_RESPMEM_MUST_COPY);
    pthread_mutex_unlock (&server->mutex);
    MHD_add_response_header (response, "Content-Type", "application/json");
    enum MHD_Result rc = MHD_queue_response (connection, MHD_HTTP_OK, response);
    MHD_destroy_response (response);
    return rc;
}

static void
s_jwks_server_set (s_jwks_server_t *server, const char *body)
{
    pthread_mutex_lock (&server->mutex);
    free (server->body);
    server->body = strdup (body);
    pthread_mutex_unlock (&server->mutex);
}

static void *
s_refresh_thread (void *auth)
{
    auth_refresh ((auth_t *) auth, false);
    return NULL;
}

static int
s_jwks_server_hits (s_jwks_server_t *server)
{
    pthread_mutex_lock (&server->mutex);
    int hits = server->hits;
    pthread_mutex_unlock (&server->mutex);
    return hits;
}

//  Test keys: generated private key, its PEM, and its public JWK
typedef struct {
    EVP_PKEY *pkey;             //  private key
    char *private_pem;          //  for libjwt signing
    char *public_pem;           //  for the HS256-with-public-key attack
    cJSON *jwk;                 //  public JWK with kid
} s_test_key_t;

static char *
s_bn_b64url (EVP_PKEY *pkey, const char *param, int pad)
{
    BIGNUM *bn = NULL;
    assert (EVP_PKEY_get_bn_param (pkey, param, &bn) == 1);
    int len = pad? pad: BN_num_bytes (bn);
    unsigned char *bytes = malloc ((size_t) len);
    assert (BN_bn2binpad (bn, bytes, len) == len);
    char *text = jwks_b64url_encode (bytes, (size_t) len);
    free (bytes);
    BN_free (bn);
    return text;
}

static char *
s_pem (EVP_PKEY *pkey, bool private_key)
{
    BIO *bio = BIO_new (BIO_s_mem ());
    if (private_key)
        assert (PEM_write_bio_PrivateKey (bio, pkey, NULL, NULL, 0, NULL, NULL) == 1);
    else
        assert (PEM_write_bio_PUBKEY (bio, pkey) == 1);
    char *data = NULL;
    long len = BIO_get_mem_data (bio, &data);
    char *pem = strndup (data, (size_t) len);
    BIO_free (bio);
    return pem;
}

static void
s_test_key_new (s_test_key_t *key, bool ec, const char *kid)
{
    key->pkey = ec? EVP_EC_gen ("P-256"): EVP_RSA_gen (2048);
    assert (key->pkey);
    key->private_pem = s_pem (key->pkey, true);
    key->public_pem = s_pem (key->pkey, false);
    key->jwk = cJSON_CreateObject ();
    cJSON_AddStringToObject (key->jwk, "kid", kid);
    cJSON_AddStringToObject (key->jwk, "use", "sig");
    if (ec) {
        char *x = s_bn_b64url (key->pkey, OSSL_PKEY_PARAM_EC_PUB_X, 32);
        char *y = s_bn_b64url (key->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
        cJSON_AddStringToObject (key->jwk, "kty", "EC");
        cJSON_AddStringToObject (key->jwk, "crv", "P-256");
        cJSON_AddStringToObject (key->jwk, "alg", "ES256");
        cJSON_AddStringToObject (key->jwk, "x", x);
        cJSON_AddStringToObject (key->jwk, "y", y);
        free (x);
        free (y);
    }
    else {
        char *n = s_bn_b64url (key->pkey, OSSL_PKEY_PARAM_RSA_N, 0);
        char *e = s_bn_b64url (key->pkey, OSSL_PKEY_PARAM_RSA_E, 0);
        cJSON_AddStringToObject (key->jwk, "kty", "RSA");
        cJSON_AddStringToObject (key->jwk, "alg", "RS256");
        cJSON_AddStringToObject (key->jwk, "n", n);
        cJSON_AddStringToObject (key->jwk, "e", e);
        free (n);
        free (e);
    }
}

static void
s_test_key_destroy (s_test_key_t *key)
{
    EVP_PKEY_free (key->pkey);
    free (key->private_pem);
    free (key->public_pem);
    cJSON_Delete (key->jwk);
}

//  A JWKS document holding the given keys
static char *
s_jwks (s_test_key_t **keys, int count)
{
    cJSON *root = cJSON_CreateObject ();
    cJSON *array = cJSON_AddArrayToObject (root, "keys");
    for (int i = 0; i < count; i++)
        cJSON_AddItemToArray (array, cJSON_Duplicate (keys [i]->jwk, true));
    char *text = cJSON_PrintUnformatted (root);
    cJSON_Delete (root);
    return text;
}

//  Sign claims (JSON text) with libjwt; returns "Bearer <jwt>" (freed by caller)
static char *
s_sign (jwt_alg_t alg, const char *key, size_t key_len, const char *kid, const char *claims)
{
    jwt_t *jwt = NULL;
    assert (jwt_new (&jwt) == 0);
    assert (jwt_add_grants_json (jwt, claims) == 0);
    if (kid)
        assert (jwt_add_header (jwt, "kid", kid) == 0);
    assert (jwt_set_alg (jwt, alg, (const unsigned char *) key, (int) key_len) == 0);
    char *token = jwt_encode_str (jwt);
    assert (token);
    jwt_free (jwt);
    char *header = zsys_sprintf ("Bearer %s", token);
    free (token);
    return header;
}

//  Sign any header and payload bytes with an RSA key (RS256) by hand,
//  for payloads libjwt would refuse to produce
static char *
s_sign_raw (EVP_PKEY *pkey, const char *header, const char *payload)
{
    char *h = jwks_b64url_encode ((const unsigned char *) header, strlen (header));
    char *p = jwks_b64url_encode ((const unsigned char *) payload, strlen (payload));
    char *input = zsys_sprintf ("%s.%s", h, p);
    EVP_MD_CTX *md = EVP_MD_CTX_new ();
    unsigned char sig [1024];
    size_t sig_len = sizeof (sig);
    assert (EVP_DigestSignInit (md, NULL, EVP_sha256 (), NULL, pkey) == 1);
    assert (EVP_DigestSign (md, sig, &sig_len, (unsigned char *) input, strlen (input)) == 1);
    EVP_MD_CTX_free (md);
    char *s = jwks_b64url_encode (sig, sig_len);
    char *token = zsys_sprintf ("Bearer %s.%s", input, s);
    free (h);
    free (p);
    free (s);
    free (input);
    return token;
}

//  HS256 by hand with any secret (the public key's PEM, for the attack)
static char *
s_sign_hs256_raw (const char *secret, const char *header, const char *payload)
{
    char *h = jwks_b64url_encode ((const unsigned char *) header, strlen (header));
    char *p = jwks_b64url_encode ((const unsigned char *) payload, strlen (payload));
    char *input = zsys_sprintf ("%s.%s", h, p);
    unsigned char mac [32];
    unsigned int mac_len = sizeof (mac);
    assert (HMAC (EVP_sha256 (), secret, (int) strlen (secret),
                  (unsigned char *) input, strlen (input), mac, &mac_len));
    char *s = jwks_b64url_encode (mac, mac_len);
    char *token = zsys_sprintf ("Bearer %s.%s", input, s);
    free (h);
    free (p);
    free (s);
    free (input);
    return token;
}

//  auth_check as the http actor uses it: on AUTH_PENDING, have the keys
//  fetched (auth_refresh, asked) and check once more
static int
s_check (auth_t *auth, const char *header, char *user, size_t user_size, const char **detail)
{
    int rc = auth_check (auth, header, user, user_size, detail);
    if (rc == AUTH_PENDING) {
        auth_refresh (auth, true);
        rc = auth_check (auth, header, user, user_size, detail);
    }
    return rc;
}

//  Expect auth_check to fail with the given detail
static void
s_expect_fail (auth_t *auth, const char *header, const char *expected, const char *what)
{
    char user [AUTH_USER_ID_SIZE];
    const char *detail = NULL;
    int rc = s_check (auth, header, user, sizeof (user), &detail);
    if (rc != -1 || !detail || (expected && strcmp (detail, expected))) {
        fprintf (stderr, "auth: %s: rc=%d detail=%s (expected %s)\n",
                 what, rc, detail? detail: "(null)", expected? expected: "any failure");
        assert (false);
    }
}

static void
s_expect_user (auth_t *auth, const char *header, const char *expected, const char *what)
{
    char user [AUTH_USER_ID_SIZE];
    const char *detail = NULL;
    int rc = s_check (auth, header, user, sizeof (user), &detail);
    if (rc != 0 || strcmp (user, expected)) {
        fprintf (stderr, "auth: %s: rc=%d user=%s detail=%s\n",
                 what, rc, user, detail? detail: "(null)");
        assert (false);
    }
}

static char *
s_claims (const char *sub, long exp_offset, const char *extra)
{
    long now = (long) time (NULL);
    if (sub)
        return zsys_sprintf ("{\"sub\":\"%s\",\"exp\":%ld,\"iat\":%ld,\"iss\":\"https://issuer.test\","
                             "\"aud\":[\"other\",\"clowdy\"]%s%s}",
                             sub, now + exp_offset, now, extra? ",": "", extra? extra: "");
    return zsys_sprintf ("{\"exp\":%ld,\"iss\":\"https://issuer.test\",\"aud\":\"clowdy\"%s%s}",
                         now + exp_offset, extra? ",": "", extra? extra: "");
}

void
auth_test (bool verbose)
{
    printf ("auth: ");
    fflush (stdout);

    s_test_key_t rsa_a, ec_b, rsa_c, rsa_wrong, ec_wrong;
    s_test_key_new (&rsa_a, false, "a");
    s_test_key_new (&ec_b, true, "b");
    s_test_key_new (&rsa_c, false, "c");
    s_test_key_new (&rsa_wrong, false, "a");
    s_test_key_new (&ec_wrong, true, "b");

    //  The JWKS server on a free loopback port, publishing a and b
    s_jwks_server_t server;
    memset (&server, 0, sizeof (server));
    pthread_mutex_init (&server.mutex, NULL);
    s_test_key_t *initial [] = { &rsa_a, &ec_b };
    char *jwks = s_jwks (initial, 2);
    s_jwks_server_set (&server, jwks);
    free (jwks);
    struct sockaddr_in bind_addr;
    memset (&bind_addr, 0, sizeof (bind_addr));
    bind_addr.sin_family = AF_INET;
    bind_addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    server.daemon = MHD_start_daemon (MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
                                      s_jwks_handler, &server,
                                      MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &bind_addr,
                                      MHD_OPTION_END);
    assert (server.daemon);
    server.port = MHD_get_daemon_info (server.daemon, MHD_DAEMON_INFO_BIND_PORT)->port;
    char *url = zsys_sprintf ("http://127.0.0.1:%d/.well-known/jwks.json", server.port);

    auth_config_t config = {
        .mode = AUTH_JWT, .jwks_url = url, .issuer = "https://issuer.test",
        .audience = "clowdy"
    };
    auth_t *auth = auth_new (&config);
    assert (auth);
    assert (auth_mode (auth) == AUTH_JWT);
    assert (auth->leeway == AUTH_DEFAULT_LEEWAY);

    //  Good RS256 and ES256 tokens; the first check fetches the JWKS once
    char *claims = s_claims ("user_alice", 3600, NULL);
    char *good_rs = s_sign (JWT_ALG_RS256, rsa_a.private_pem, strlen (rsa_a.private_pem), "a", claims);
    char *good_es = s_sign (JWT_ALG_ES256, ec_b.private_pem, strlen (ec_b.private_pem), "b", claims);
    s_expect_user (auth, good_rs, "user_alice", "RS256");
    s_expect_user (auth, good_es, "user_alice", "ES256");
    assert (s_jwks_server_hits (&server) == 1);
    assert (auth->fetches == 1);

    //  Scheme handling: lower-case bearer, extra blanks, other schemes, none
    char *spaced = zsys_sprintf ("bearer   %s  ", good_rs + 7);
    s_expect_user (auth, spaced, "user_alice", "lower-case scheme");
    zstr_free (&spaced);
    s_expect_fail (auth, NULL, S_MISSING, "no header");
    s_expect_fail (auth, "", S_MISSING, "empty header");
    s_expect_fail (auth, "Bearer ", S_MISSING, "empty bearer");
    s_expect_fail (auth, "Basic dXNlcjpwYXNz", S_SCHEME, "basic");
    s_expect_fail (auth, "Bearerx abc", S_SCHEME, "glued scheme");
    s_expect_fail (auth, good_rs + 7, S_SCHEME, "token without scheme");

    //  A token the user_id buffer cannot hold is refused, never truncated
    {
        char small [4];
        const char *detail = NULL;
        assert (auth_check (auth, good_rs, small, sizeof (small), &detail) == -1);
        assert (streq (detail, S_SUBJECT));
    }

    //  Tokens that must fail
    char *token;
    token = s_sign (JWT_ALG_RS256, rsa_wrong.private_pem, strlen (rsa_wrong.private_pem), "a", claims);
    s_expect_fail (auth, token, S_SIGNATURE, "wrong RSA key");
    zstr_free (&token);
    token = s_sign (JWT_ALG_ES256, ec_wrong.private_pem, strlen (ec_wrong.private_pem), "b", claims);
    s_expect_fail (auth, token, S_SIGNATURE, "wrong EC key");
    zstr_free (&token);
    token = s_sign (JWT_ALG_NONE, NULL, 0, "a", claims);
    s_expect_fail (auth, token, S_ALG, "alg none");
    zstr_free (&token);
    token = s_sign (JWT_ALG_HS256, rsa_a.public_pem, strlen (rsa_a.public_pem), "a", claims);
    s_expect_fail (auth, token, S_ALG, "HS256 with the RSA public key PEM");
    zstr_free (&token);
    token = s_sign (JWT_ALG_HS256, ec_b.public_pem, strlen (ec_b.public_pem), "b", claims);
    s_expect_fail (auth, token, S_ALG, "HS256 with the EC public key PEM");
    zstr_free (&token);
    token = s_sign (JWT_ALG_RS384, rsa_a.private_pem, strlen (rsa_a.private_pem), "a", claims);
    s_expect_fail (auth, token, S_ALG, "RS384");
    zstr_free (&token);
    //  Header says ES256 but names the RSA key, and the other way round
    token = s_sign (JWT_ALG_ES256, ec_b.private_pem, strlen (ec_b.private_pem), "a", claims);
    s_expect_fail (auth, token, S_ALG_KEY, "ES256 naming an RSA key");
    zstr_free (&token);
    token = s_sign (JWT_ALG_RS256, rsa_a.private_pem, strlen (rsa_a.private_pem), "b", claims);
    s_expect_fail (auth, token, S_ALG_KEY, "RS256 naming an EC key");
    zstr_free (&token);

    char *other;
    other = s_claims ("user_alice", -3600, NULL);
    token = s_sign (JWT_ALG_RS256, rsa_a.private_pem, strlen (rsa_a.private_pem), "a", other);
    s_expect_fail (auth, token, S_EXPIRED, "expired");
    zstr_free (&token);
    zstr_free (&other);
    other = s_claims ("user_alice", -30, NULL);     //  within the leeway
    token = s_sign (JWT_ALG_RS256, rsa_a.private_pem, strlen (rsa_a.private_pem), "a", other);
    s_expect_user (auth, token, "user_alice", "expired within leeway");
    zstr_free (&token);
    zstr_free (&other);
    other = zsys_sprintf ("\"nbf\":%ld", (long) time (NULL) + 3600);
    char *nbf_claims = s_claims ("user_alice", 7200, other);
    token = s_sign (JWT_ALG_RS256, rsa_a.private_pem, strlen (rsa_a.private_pem), "a", nbf_claims);
    s_expect_fail (auth, token, S_NOT_YET, "not yet valid");
    zstr_free (&token);
    zstr_free (&nbf_claims);
    zstr_free (&other);
    other = zsys_sprintf ("{\"sub\":\"u\",\"exp\":%ld,\"iss\":\"https://evil.test\",\"aud\":\"clowdy\"}",
                          (long) time (NULL) + 600);
    token = s_sign (JWT_ALG_RS256, rsa_a.private_pem, strlen (rsa_a.private_pem), "a", other);
    s_expect_fail (auth, token, S_ISSUER, "wrong issuer");
    zstr_free (&token);
    zstr_free (&other);
    other = zsys_sprintf ("{\"sub\":\"u\",\"exp\":%ld,\"iss\":\"https://issuer.test\",\"aud\":[\"a\",\"b\"]}",
                          (long) time (NULL) + 600);
    token = s_sign (JWT_ALG_RS256, rsa_a.private_pem, strlen (rsa_a.private_pem), "a", other);
    s_expect_fail (auth, token, S_AUDIENCE, "wrong audience (array)");
    zstr_free (&token);
    zstr_free (&other);
    other = zsys_sprintf ("{\"sub\":\"u\",\"exp\":%ld,\"iss\":\"https://issuer.test\",\"aud\":\"clowdy2\"}",
                          (long) time (NULL) + 600);
    token = s_sign (JWT_ALG_RS256, rsa_a.private_pem, strlen (rsa_a.private_pem), "a", other);
    s_expect_fail (auth, token, S_AUDIENCE, "wrong audience (string)");
    zstr_free (&token);
    zstr_free (&other);
    other = s_claims (NULL, 600, NULL);
    token = s_sign (JWT_ALG_RS256, rsa_a.private_pem, strlen (rsa_a.private_pem), "a", other);
    s_expect_fail (auth, token, S_SUBJECT, "missing sub");
    zstr_free (&token);
    zstr_free (&other);
    other = s_claims ("", 600, NULL);
    token = s_sign (JWT_ALG_RS256, rsa_a.private_pem, strlen (rsa_a.private_pem), "a", other);
    s_expect_fail (auth, token, S_SUBJECT, "empty sub");
    zstr_free (&token);
    zstr_free (&other);
    {
        char long_sub [AUTH_MAX_SUB + 2];
        memset (long_sub, 'x', AUTH_MAX_SUB + 1);
        long_sub [AUTH_MAX_SUB + 1] = 0;
        other = s_claims (long_sub, 600, NULL);
        token = s_sign (JWT_ALG_RS256, rsa_a.private_pem, strlen (rsa_a.private_pem), "a", other);
        s_expect_fail (auth, token, S_SUBJECT, "sub too long");
        zstr_free (&token);
        zstr_free (&other);
        long_sub [AUTH_MAX_SUB] = 0;
        other = s_claims (long_sub, 600, NULL);
        token = s_sign (JWT_ALG_RS256, rsa_a.private_pem, strlen (rsa_a.private_pem), "a", other);
        s_expect_user (auth, token, long_sub, "sub of 128 characters");
        zstr_free (&token);
        zstr_free (&other);
    }
    other = zsys_sprintf ("{\"sub\":\"u\",\"iss\":\"https://issuer.test\",\"aud\":\"clowdy\"}");
    token = s_sign (JWT_ALG_RS256, rsa_a.private_pem, strlen (rsa_a.private_pem), "a", other);
    s_expect_fail (auth, token, S_NO_EXP, "no exp");
    zstr_free (&token);
    zstr_free (&other);
    //  Payloads libjwt would not produce, signed by hand with the real key
    token = s_sign_raw (rsa_a.pkey, "{\"alg\":\"RS256\",\"kid\":\"a\"}", "not json at all");
    s_expect_fail (auth, token, NULL, "non-JSON payload");
    zstr_free (&token);
    token = s_sign_raw (rsa_a.pkey, "{\"alg\":\"RS256\",\"kid\":\"a\"}", "[1,2,3]");
    s_expect_fail (auth, token, NULL, "array payload");
    zstr_free (&token);
    other = zsys_sprintf ("{\"sub\":\"u\",\"exp\":\"%ld\",\"iss\":\"https://issuer.test\",\"aud\":\"clowdy\"}",
                          (long) time (NULL) + 600);
    token = s_sign_raw (rsa_a.pkey, "{\"alg\":\"RS256\",\"kid\":\"a\"}", other);
    s_expect_fail (auth, token, NULL, "exp as a string");
    zstr_free (&token);
    zstr_free (&other);
    other = zsys_sprintf ("{\"sub\":\"u\\u0000x\",\"exp\":%ld,\"iss\":\"https://issuer.test\",\"aud\":\"clowdy\"}",
                          (long) time (NULL) + 600);
    token = s_sign_raw (rsa_a.pkey, "{\"alg\":\"RS256\",\"kid\":\"a\"}", other);
    s_expect_fail (auth, token, NULL, "sub with NUL");
    zstr_free (&token);
    zstr_free (&other);
    other = zsys_sprintf ("{\"sub\":\"raw_user\",\"exp\":%ld,\"iss\":\"https://issuer.test\",\"aud\":\"clowdy\"}",
                          (long) time (NULL) + 600);
    token = s_sign_raw (rsa_a.pkey, "{\"alg\":\"RS256\",\"kid\":\"a\"}", other);
    s_expect_user (auth, token, "raw_user", "hand-signed token without typ");
    zstr_free (&token);
    token = s_sign_raw (rsa_a.pkey, "{\"alg\":\"RS256\",\"kid\":\"a\",\"typ\":\"jwt\"}", other);
    s_expect_user (auth, token, "raw_user", "typ jwt in lower case");
    zstr_free (&token);
    token = s_sign_raw (rsa_a.pkey, "{\"alg\":\"RS256\",\"kid\":\"a\",\"typ\":\"at+jwt\"}", other);
    s_expect_fail (auth, token, S_TYP, "typ at+jwt (RFC 9068), which libjwt 1.10 cannot verify");
    zstr_free (&token);
    token = s_sign_raw (rsa_a.pkey, "{\"alg\":\"RS256\",\"kid\":\"a\",\"typ\":7}", other);
    s_expect_fail (auth, token, S_TYP, "typ not a string");
    zstr_free (&token);
    //  Duplicate alg: we read the first (RS256), jansson in libjwt the last
    //  (HS256); the HMAC made with the public PEM must still fail
    token = s_sign_hs256_raw (rsa_a.public_pem,
        "{\"alg\":\"RS256\",\"kid\":\"a\",\"alg\":\"HS256\"}", other);
    s_expect_fail (auth, token, S_SIGNATURE, "duplicate alg, HS256 with the public PEM");
    zstr_free (&token);
    token = s_sign_hs256_raw (rsa_a.public_pem, "{\"alg\":\"HS256\",\"kid\":\"a\"}", other);
    s_expect_fail (auth, token, S_ALG, "HS256 by hand with the public PEM");
    zstr_free (&token);
    token = s_sign_raw (rsa_a.pkey, "{\"alg\":\"RS256\",\"kid\":\"a\",\"crit\":[\"exp\"]}", other);
    s_expect_fail (auth, token, S_MALFORMED, "crit header");
    zstr_free (&token);
    token = s_sign_raw (rsa_a.pkey, "{\"alg\":\"RS256\",\"kid\":7}", other);
    s_expect_fail (auth, token, S_MALFORMED, "numeric kid");
    zstr_free (&token);
    token = s_sign_raw (rsa_a.pkey, "{\"alg\":\"RS256\"}", other);
    s_expect_user (auth, token, "raw_user", "no kid, one RSA key");
    zstr_free (&token);
    zstr_free (&other);

    //  Structure: truncated, huge, garbage
    {
        char *cut = strdup (good_rs);
        cut [strlen (cut) - 10] = 0;
        s_expect_fail (auth, cut, S_SIGNATURE, "truncated signature");
        char *dot = strrchr (cut, '.');
        *dot = 0;
        s_expect_fail (auth, cut, S_MALFORMED, "two parts");
        cut [20] = 0;
        s_expect_fail (auth, cut, S_MALFORMED, "truncated header");
        free (cut);
        size_t huge_len = 20 * 1024;
        char *huge = malloc (huge_len + 8);
        memcpy (huge, "Bearer ", 7);
        memset (huge + 7, 'A', huge_len);
        huge [7 + huge_len] = 0;
        huge [100] = '.';
        huge [200] = '.';
        s_expect_fail (auth, huge, S_TOO_LARGE, "huge");
        free (huge);
        s_expect_fail (auth, "Bearer a$b.c!d.e", S_MALFORMED, "garbage base64");
        s_expect_fail (auth, "Bearer ....", S_MALFORMED, "only dots");
        s_expect_fail (auth, "Bearer abc", S_MALFORMED, "one part");
        s_expect_fail (auth, "Bearer e30.e30.e30", S_ALG, "empty header object");
        s_expect_fail (auth, "Bearer bm90IGpzb24.e30.e30", S_MALFORMED, "non-JSON header");
        s_expect_fail (auth, "Bearer eyJhbGciOiJSUzI1NiJ9.e30.", S_MALFORMED, "empty signature");
        s_expect_fail (auth, "Bearer eyJhbGciOiJSUzI1NiJ9.e30.e30.e30", S_MALFORMED, "four parts");
        s_expect_fail (auth, "Bearer eyJhbGciOiJSUzI1NiJ9.e30.!!!", S_MALFORMED, "bad signature chars");
        s_expect_fail (auth, "Bearer eyJhbGciOiJSUzI1NiJ9.e30.AAAA", S_SIGNATURE, "short signature");
        s_expect_fail (auth, "Bearer eyJhbGciOiJFUzI1NiJ9.e30.AAAA", S_SIGNATURE, "short EC signature");
    }
    assert (auth->fetches == 1);

    //  Unknown kid: one refetch, then rate-limited; rotation picks up kid c
    token = s_sign (JWT_ALG_RS256, rsa_c.private_pem, strlen (rsa_c.private_pem), "c", claims);
    s_expect_fail (auth, token, S_UNKNOWN_KEY, "unknown kid, within 10 s of the last fetch");
    assert (auth->fetches == 1);
    auth->last_fetch_us -= AUTH_REFETCH_US;     //  as if 10 s went by
    s_expect_fail (auth, token, S_UNKNOWN_KEY, "unknown kid");
    assert (auth->fetches == 2);
    assert (s_jwks_server_hits (&server) == 2);
    s_expect_fail (auth, token, S_UNKNOWN_KEY, "unknown kid again");
    assert (auth->fetches == 2);        //  rate-limited: no new fetch
    s_test_key_t *rotated [] = { &ec_b, &rsa_c };
    jwks = s_jwks (rotated, 2);
    s_jwks_server_set (&server, jwks);
    free (jwks);
    auth->last_fetch_us -= AUTH_REFETCH_US;     //  as if 10 s went by
    s_expect_user (auth, token, "user_alice", "rotated key c");
    assert (auth->fetches == 3);
    //  Key a was withdrawn: its tokens now fail (after the rate limit)
    auth->last_fetch_us -= AUTH_REFETCH_US;
    s_expect_fail (auth, good_rs, S_UNKNOWN_KEY, "withdrawn key a");
    s_expect_user (auth, good_es, "user_alice", "key b still there");
    zstr_free (&token);

    //  auth_check never downloads. Key a comes back: its token is pending
    //  until auth_refresh fetched
    {
        s_test_key_t *all [] = { &rsa_a, &ec_b, &rsa_c };
        jwks = s_jwks (all, 3);
        s_jwks_server_set (&server, jwks);
        free (jwks);
        auth->last_fetch_us -= AUTH_REFETCH_US;
        size_t fetches = auth->fetches;
        char user [AUTH_USER_ID_SIZE];
        const char *detail = NULL;
        assert (auth_check (auth, good_rs, user, sizeof user, &detail) == AUTH_PENDING);
        assert (auth->fetches == fetches);
        assert (auth_check (auth, good_es, user, sizeof user, &detail) == 0);  //  known: no wait
        assert (auth_refresh (auth, false) == 0 && auth->fetches == fetches);  //  not asked: not due
        assert (auth_refresh (auth, true) == 0);
        assert (auth->fetches == fetches + 1);
        s_expect_user (auth, good_rs, "user_alice", "key a after the background fetch");
        //  Within the 10 s gap an unknown kid is refused at once, and even
        //  an asked refresh fetches nothing
        char *stranger = s_sign (JWT_ALG_RS256, rsa_a.private_pem, strlen (rsa_a.private_pem),
                                 "nobody", claims);
        s_expect_fail (auth, stranger, S_UNKNOWN_KEY, "unknown kid within the gap");
        assert (auth_refresh (auth, true) == 0 && auth->fetches == fetches + 1);
        zstr_free (&stranger);
    }

    //  A JWKS that is not one leaves the keys in place
    s_jwks_server_set (&server, "<html>not json</html>");
    auth->last_fetch_us -= AUTH_REFETCH_US;
    auth->last_success_us -= AUTH_MAX_KEY_AGE_US + 1;   //  stale: a refresh is due
    int before = auth->fetches;
    assert (auth_refresh (auth, false) == -1);
    assert ((int) auth->fetches == before + 1);
    s_expect_user (auth, good_es, "user_alice", "bad JWKS keeps old keys");

    //  Verify speed: first sight of a token (full verify), then cached
    {
        enum { ROUNDS = 50 };
        char user [AUTH_USER_ID_SIZE];
        const char *detail;
        char *rs_tokens [ROUNDS], *es_tokens [ROUNDS];
        for (int i = 0; i < ROUNDS; i++) {
            char *jti = zsys_sprintf ("\"jti\":\"%d\"", i);
            char *unique = s_claims ("user_speed", 600, jti);
            rs_tokens [i] = s_sign (JWT_ALG_RS256, rsa_c.private_pem, strlen (rsa_c.private_pem), "c", unique);
            es_tokens [i] = s_sign (JWT_ALG_ES256, ec_b.private_pem, strlen (ec_b.private_pem), "b", unique);
            zstr_free (&unique);
            zstr_free (&jti);
        }
        size_t hits = auth->cache_hits;
        int64_t start = util_monotonic_us ();
        for (int i = 0; i < ROUNDS; i++)
            assert (auth_check (auth, rs_tokens [i], user, sizeof (user), &detail) == 0);
        int64_t rs_us = (util_monotonic_us () - start) / ROUNDS;
        start = util_monotonic_us ();
        for (int i = 0; i < ROUNDS; i++)
            assert (auth_check (auth, es_tokens [i], user, sizeof (user), &detail) == 0);
        int64_t es_us = (util_monotonic_us () - start) / ROUNDS;
        assert (auth->cache_hits == hits);
        for (int round = 0; round < 20; round++)
            for (int i = 0; i < ROUNDS; i++)
                assert (auth_check (auth, rs_tokens [i], user, sizeof (user), &detail) == 0);
        //  Direct-mapped: a few of the 50 may share a slot
        assert (auth->cache_hits > hits + 10 * ROUNDS);
        start = util_monotonic_us ();
        for (int i = 0; i < 1000; i++)
            assert (auth_check (auth, rs_tokens [0], user, sizeof (user), &detail) == 0);
        int64_t hit_ns = (util_monotonic_us () - start);
        for (int i = 0; i < ROUNDS; i++) {
            zstr_free (&rs_tokens [i]);
            zstr_free (&es_tokens [i]);
        }
        printf ("verify RS256 %lld us, ES256 %lld us, cached %lld ns; ",
                (long long) rs_us, (long long) es_us, (long long) hit_ns);
    }

    //  A document that is not a JWKS installs nothing (core/jwks.c tests
    //  which keys are usable)
    assert (auth_set_jwks_json (auth, "not json") == -1);
    auth_destroy (&auth);
    assert (auth == NULL);
    auth_destroy (&auth);

    //  No kid with two keys of the same type is ambiguous; preloaded keys only
    {
        auth_config_t preload = { .mode = AUTH_JWT, .leeway_seconds = -1 };
        auth = auth_new (&preload);
        assert (auth->leeway == 0);
        s_test_key_t *two [] = { &rsa_a, &rsa_c, &ec_b };
        jwks = s_jwks (two, 3);
        assert (auth_set_jwks_json (auth, jwks) == 3);
        free (jwks);
        other = s_claims ("bob", 600, NULL);
        token = s_sign (JWT_ALG_RS256, rsa_a.private_pem, strlen (rsa_a.private_pem), NULL, other);
        s_expect_fail (auth, token, S_UNKNOWN_KEY, "no kid, two RSA keys");
        zstr_free (&token);
        token = s_sign (JWT_ALG_ES256, ec_b.private_pem, strlen (ec_b.private_pem), NULL, other);
        s_expect_user (auth, token, "bob", "no kid, one EC key");
        //  A cached token still expires
        size_t hits = auth->cache_hits;
        s_expect_user (auth, token, "bob", "no kid, one EC key, cached");
        assert (auth->cache_hits == hits + 1);
        for (int i = 0; i < AUTH_CACHE_SLOTS; i++)
            if (streq (auth->cache [i].sub, "bob"))
                auth->cache [i].exp = (double) time (NULL) - 1;
        s_expect_fail (auth, token, S_EXPIRED, "cached token past exp");
        zstr_free (&token);
        zstr_free (&other);
        //  No leeway: one second past exp fails
        other = s_claims ("bob", -1, NULL);
        token = s_sign (JWT_ALG_RS256, rsa_a.private_pem, strlen (rsa_a.private_pem), "a", other);
        s_expect_fail (auth, token, S_EXPIRED, "expired, no leeway");
        zstr_free (&token);
        zstr_free (&other);
        auth_destroy (&auth);
    }

    //  auth_refresh downloads without the lock: a check arriving meanwhile
    //  is answered at once (pending, never a 401, never a second fetch);
    //  after the download it passes, and nothing is due
    {
        char *document = s_jwks (initial, 2);
        s_jwks_server_set (&server, document);
        free (document);
        pthread_mutex_lock (&server.mutex);
        server.delay_ms = 1000;
        pthread_mutex_unlock (&server.mutex);
        auth_t *background = auth_new (&config);
        int hits_before = s_jwks_server_hits (&server);
        pthread_t thread;
        assert (pthread_create (&thread, NULL, s_refresh_thread, background) == 0);
        //  Until the download is under way (the server holds it 1 s; the
        //  bound is a hang guard only)
        bool under_way = false;
        for (int waited = 0; waited < 5000 && !under_way; waited += 5) {
            pthread_mutex_lock (&background->mutex);
            under_way = background->fetching;
            pthread_mutex_unlock (&background->mutex);
            if (!under_way)
                zclock_sleep (5);
        }
        assert (under_way);
        char user [AUTH_USER_ID_SIZE];
        const char *detail = NULL;
        assert (auth_check (background, good_rs, user, sizeof user, &detail) == AUTH_PENDING);
        assert (auth_refresh (background, true) == 0);      //  under way: not again
        pthread_join (thread, NULL);
        s_expect_user (background, good_rs, "user_alice", "after a background refresh");
        assert (s_jwks_server_hits (&server) == hits_before + 1);
        assert (background->fetches == 1);
        assert (auth_refresh (background, false) == 0 && background->fetches == 1);
        pthread_mutex_lock (&server.mutex);
        server.delay_ms = 0;
        pthread_mutex_unlock (&server.mutex);
        auth_destroy (&background);
    }

    //  A JWKS URL that never answers costs at most the fetch timeout
    {
        int listener = socket (AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in addr;
        memset (&addr, 0, sizeof (addr));
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
        assert (bind (listener, (struct sockaddr *) &addr, sizeof (addr)) == 0);
        assert (listen (listener, 4) == 0);     //  never accepted
        socklen_t addr_len = sizeof (addr);
        getsockname (listener, (struct sockaddr *) &addr, &addr_len);
        char *dead_url = zsys_sprintf ("http://127.0.0.1:%d/jwks", ntohs (addr.sin_port));
        auth_config_t dead = { .mode = AUTH_JWT, .jwks_url = dead_url };
        auth = auth_new (&dead);
        auth->fetch_timeout_ms = 300;
        int64_t start = util_monotonic_us ();
        s_expect_fail (auth, good_rs, S_NO_KEYS, "JWKS never answers");
        int64_t took = util_monotonic_us () - start;
        assert (took < 2000000);
        assert (auth->fetches == 1);
        //  And the next token does not wait again (rate limit)
        s_expect_fail (auth, good_rs, S_NO_KEYS, "JWKS never answers, again");
        assert (auth->fetches == 1);
        auth_destroy (&auth);
        close (listener);
        zstr_free (&dead_url);
    }

    //  Local mode: no credentials is the local user; a JWT is refused
    {
        auth_config_t local = { .mode = AUTH_LOCAL };
        auth = auth_new (&local);
        s_expect_user (auth, NULL, "local", "local, no header");
        s_expect_user (auth, "", "local", "local, empty header");
        s_expect_user (auth, "Bearer ", "local", "local, empty bearer");
        s_expect_user (auth, "Basic dXNlcjpwYXNz", "local", "local, other scheme");
        s_expect_fail (auth, good_rs, S_NO_JWT, "local, a JWT");
        auth_destroy (&auth);
        local.local_user = "me";
        auth = auth_new (&local);
        s_expect_user (auth, NULL, "me", "local user name");
        auth_destroy (&auth);
    }

    //  A "clw_" bearer is an API token in every mode: auth_is_api_token
    //  sends it to a thread with a store (tokens_check_header, tested in
    //  core/tokens.c), and auth_check, which has none, refuses it
    {
        const char *api_token = "Bearer clw_0000000000000000000000000000000000000000000000000000000000000000";
        assert (auth_is_api_token (api_token) && auth_is_api_token ("bearer   clw_x  "));
        assert (!auth_is_api_token (NULL) && !auth_is_api_token ("") && !auth_is_api_token ("Bearer"));
        assert (!auth_is_api_token (good_rs) && !auth_is_api_token ("Basic clw_x"));
        auth_config_t local = { .mode = AUTH_LOCAL };
        auth = auth_new (&local);
        s_expect_fail (auth, api_token, S_API_TOKEN, "local, API token");
        auth_destroy (&auth);
        auth_config_t jwt = { .mode = AUTH_JWT };
        auth = auth_new (&jwt);
        s_expect_fail (auth, api_token, S_API_TOKEN, "jwt, API token");
        auth_destroy (&auth);
        //  The reader both use
        const char *token;
        size_t len;
        assert (auth_bearer ("  bearer\tabc  ", &token, &len) == NULL && len == 3 && memcmp (token, "abc", 3) == 0);
        assert (auth_bearer (NULL, &token, &len) == S_MISSING && token == NULL);
        assert (auth_bearer ("Bearer  ", &token, &len) == S_MISSING);
        assert (auth_bearer ("Basic x", &token, &len) == S_SCHEME);
    }
    assert (auth_new (NULL) == NULL);
    assert (auth_check (NULL, "Bearer x", NULL, 0, NULL) == -1);

    zstr_free (&good_rs);
    zstr_free (&good_es);
    zstr_free (&claims);
    MHD_stop_daemon (server.daemon);
    free (server.body);
    pthread_mutex_destroy (&server.mutex);
    zstr_free (&url);
    s_test_key_destroy (&rsa_a);
    s_test_key_destroy (&ec_b);
    s_test_key_destroy (&rsa_c);
    s_test_key_destroy (&rsa_wrong);
    s_test_key_destroy (&ec_wrong);
    printf ("OK\n");
}
