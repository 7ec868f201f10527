/*  =========================================================================
    jwks - a provider's signing keys: JWKS fetching and JWK-to-key

    JWK to key. OpenSSL 3 turns each JWK into a PEM public key once, when
    the JWKS is parsed, so verifying a token later costs one libjwt decode.
    RSA keys need n and e (a 2048..8192-bit modulus, an odd exponent of at
    most 64 bits); EC keys need crv P-256 and x, y of 32 bytes each, and
    the point is checked to be on the curve. A JWK whose use is not "sig",
    whose alg does not fit its kty, or that is anything else (oct, P-384,
    junk) is skipped, never fatal: a provider may publish keys we do not
    use beside the ones we do.

    Fetching. libcurl, http and https only (redirects too, at most 3), one
    timeout for the whole fetch, connect included, and a 1 MiB cap on the
    document. It touches no shared state, so it needs no lock: auth_refresh
    calls it without holding the key cache's mutex.
    ========================================================================= */

#include <czmq.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include "core/fetch.h"
#include "core/jwks.h"

#ifndef CLOWDY_VERSION
#   define CLOWDY_VERSION "dev"
#endif


//  --------------------------------------------------------------------------
//  base64url (RFC 7515)


bool
jwks_is_b64url (const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = text [i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
           || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return false;
    }
    return true;
}

//  Decode unpadded base64url (RFC 7515) into a new NUL-terminated buffer.
//  Returns NULL on bad characters or length.
unsigned char *
jwks_b64url_decode (const char *text, size_t len, size_t *out_len)
{
    if (len % 4 == 1 || !jwks_is_b64url (text, len) || len > 4 * JWKS_MAX_BYTES)
        return NULL;
    size_t pad = (4 - len % 4) % 4;
    char *std = malloc (len + pad + 1);
    unsigned char *out = malloc ((len + pad) / 4 * 3 + 1);
    if (!std || !out) {
        free (std);
        free (out);
        return NULL;
    }
    for (size_t i = 0; i < len; i++)
        std [i] = text [i] == '-'? '+': text [i] == '_'? '/': text [i];
    memset (std + len, '=', pad);
    std [len + pad] = 0;
    int rc = len + pad > 0? EVP_DecodeBlock (out, (unsigned char *) std, (int) (len + pad)): 0;
    free (std);
    if (rc < 0 || (size_t) rc < pad) {
        free (out);
        return NULL;
    }
    *out_len = (size_t) rc - pad;
    out [*out_len] = 0;
    return out;
}

//  Base64url without padding; returns a new string.
char *
jwks_b64url_encode (const unsigned char *data, size_t len)
{
    char *out = malloc ((len + 2) / 3 * 4 + 1);
    if (!out)
        return NULL;
    int n = EVP_EncodeBlock ((unsigned char *) out, data, (int) len);
    while (n > 0 && out [n - 1] == '=')
        n--;
    out [n] = 0;
    for (int i = 0; i < n; i++)
        out [i] = out [i] == '+'? '-': out [i] == '/'? '_': out [i];
    return out;
}


void
jwks_keys_free (jwks_key_t *keys, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free (keys [i].kid);
        free (keys [i].pem);
    }
    free (keys);
}


//  --------------------------------------------------------------------------
//  JWK to PEM (OpenSSL 3)

//  Decode a base64url JWK member into a BIGNUM; NULL if absent or bad.
static BIGNUM *
s_jwk_bn (cJSON *jwk, const char *name, size_t *len_out)
{
    cJSON *item = cJSON_GetObjectItemCaseSensitive (jwk, name);
    if (!cJSON_IsString (item))
        return NULL;
    size_t len = 0;
    unsigned char *bytes = jwks_b64url_decode (item->valuestring, strlen (item->valuestring), &len);
    if (!bytes || len == 0 || len > 1024) {
        free (bytes);
        return NULL;
    }
    BIGNUM *bn = BN_bin2bn (bytes, (int) len, NULL);
    free (bytes);
    if (len_out)
        *len_out = len;
    return bn;
}

static EVP_PKEY *
s_jwk_rsa (cJSON *jwk)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    BIGNUM *n = s_jwk_bn (jwk, "n", NULL);
    BIGNUM *e = s_jwk_bn (jwk, "e", NULL);
    if (!n || !e)
        goto cleanup;
    //  2048..8192-bit modulus, odd public exponent of at most 64 bits
    if (BN_num_bits (n) < 2048 || BN_num_bits (n) > 8192
    ||  BN_num_bits (e) > 64 || BN_is_one (e) || !BN_is_odd (e))
        goto cleanup;
    bld = OSSL_PARAM_BLD_new ();
    if (!bld
    ||  !OSSL_PARAM_BLD_push_BN (bld, OSSL_PKEY_PARAM_RSA_N, n)
    ||  !OSSL_PARAM_BLD_push_BN (bld, OSSL_PKEY_PARAM_RSA_E, e)
    ||  !(params = OSSL_PARAM_BLD_to_param (bld)))
        goto cleanup;
    ctx = EVP_PKEY_CTX_new_from_name (NULL, "RSA", NULL);
    if (!ctx || EVP_PKEY_fromdata_init (ctx) <= 0
    ||  EVP_PKEY_fromdata (ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        pkey = NULL;
cleanup:
    EVP_PKEY_CTX_free (ctx);
    OSSL_PARAM_free (params);
    OSSL_PARAM_BLD_free (bld);
    BN_free (n);
    BN_free (e);
    return pkey;
}

static EVP_PKEY *
s_jwk_ec (cJSON *jwk)
{
    cJSON *crv = cJSON_GetObjectItemCaseSensitive (jwk, "crv");
    if (!cJSON_IsString (crv) || strcmp (crv->valuestring, "P-256"))
        return NULL;
    cJSON *x = cJSON_GetObjectItemCaseSensitive (jwk, "x");
    cJSON *y = cJSON_GetObjectItemCaseSensitive (jwk, "y");
    if (!cJSON_IsString (x) || !cJSON_IsString (y))
        return NULL;
    size_t x_len = 0, y_len = 0;
    unsigned char *xb = jwks_b64url_decode (x->valuestring, strlen (x->valuestring), &x_len);
    unsigned char *yb = jwks_b64url_decode (y->valuestring, strlen (y->valuestring), &y_len);
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY_CTX *check = NULL;
    if (!xb || !yb || x_len != 32 || y_len != 32)
        goto cleanup;
    //  Uncompressed SEC1 point: 0x04 || x || y
    unsigned char point [65];
    point [0] = 0x04;
    memcpy (point + 1, xb, 32);
    memcpy (point + 33, yb, 32);
    char group [] = "prime256v1";
    OSSL_PARAM params [] = {
        OSSL_PARAM_construct_utf8_string (OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
        OSSL_PARAM_construct_octet_string (OSSL_PKEY_PARAM_PUB_KEY, point, sizeof (point)),
        OSSL_PARAM_construct_end ()
    };
    ctx = EVP_PKEY_CTX_new_from_name (NULL, "EC", NULL);
    if (!ctx || EVP_PKEY_fromdata_init (ctx) <= 0
    ||  EVP_PKEY_fromdata (ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
        pkey = NULL;
        goto cleanup;
    }
    //  The point must be on the curve
    check = EVP_PKEY_CTX_new_from_pkey (NULL, pkey, NULL);
    if (!check || EVP_PKEY_public_check (check) != 1) {
        EVP_PKEY_free (pkey);
        pkey = NULL;
    }
cleanup:
    EVP_PKEY_CTX_free (check);
    EVP_PKEY_CTX_free (ctx);
    free (xb);
    free (yb);
    return pkey;
}

//  Turn one JWK into a key; false if it is not a usable signature key.
static bool
s_jwk_to_key (cJSON *jwk, jwks_key_t *key)
{
    memset (key, 0, sizeof (*key));
    if (!cJSON_IsObject (jwk))
        return false;
    cJSON *kty = cJSON_GetObjectItemCaseSensitive (jwk, "kty");
    cJSON *alg = cJSON_GetObjectItemCaseSensitive (jwk, "alg");
    cJSON *use = cJSON_GetObjectItemCaseSensitive (jwk, "use");
    cJSON *kid = cJSON_GetObjectItemCaseSensitive (jwk, "kid");
    if (!cJSON_IsString (kty))
        return false;
    if (use && !(cJSON_IsString (use) && streq (use->valuestring, "sig")))
        return false;
    if (kid && (!cJSON_IsString (kid) || strlen (kid->valuestring) > 256))
        return false;

    EVP_PKEY *pkey = NULL;
    if (streq (kty->valuestring, "RSA")) {
        if (alg && !(cJSON_IsString (alg) && streq (alg->valuestring, "RS256")))
            return false;
        key->alg = JWT_ALG_RS256;
        pkey = s_jwk_rsa (jwk);
    }
    else
    if (streq (kty->valuestring, "EC")) {
        if (alg && !(cJSON_IsString (alg) && streq (alg->valuestring, "ES256")))
            return false;
        key->alg = JWT_ALG_ES256;
        pkey = s_jwk_ec (jwk);
    }
    if (!pkey)
        return false;

    BIO *bio = BIO_new (BIO_s_mem ());
    char *data = NULL;
    long len = 0;
    if (bio && PEM_write_bio_PUBKEY (bio, pkey) == 1)
        len = BIO_get_mem_data (bio, &data);
    if (len > 0 && data) {
        key->pem = strndup (data, (size_t) len);
        key->pem_len = (int) len;
        key->kid = kid? strdup (kid->valuestring): NULL;
    }
    BIO_free (bio);
    EVP_PKEY_free (pkey);
    if (!key->pem || (kid && !key->kid)) {
        free (key->pem);
        free (key->kid);
        return false;
    }
    return true;
}

//  Parse a JWKS document into a new key array. Returns the number of
//  usable keys, or -1 if it is not a JWKS. Caller holds no lock.
int
jwks_parse (const char *json, size_t len, jwks_key_t **keys_out)
{
    *keys_out = NULL;
    cJSON *root = cJSON_ParseWithLength (json, len);
    cJSON *array = cJSON_GetObjectItemCaseSensitive (root, "keys");
    if (!cJSON_IsObject (root) || !cJSON_IsArray (array)) {
        cJSON_Delete (root);
        return -1;
    }
    jwks_key_t *keys = calloc (JWKS_MAX_KEYS, sizeof (jwks_key_t));
    if (!keys) {
        cJSON_Delete (root);
        return -1;
    }
    int count = 0;
    cJSON *jwk;
    cJSON_ArrayForEach (jwk, array) {
        if (count == JWKS_MAX_KEYS)
            break;
        if (s_jwk_to_key (jwk, &keys [count]))
            count++;
    }
    cJSON_Delete (root);
    *keys_out = keys;
    return count;
}

//  --------------------------------------------------------------------------
//  JWKS fetch (libcurl)

//  Download and parse a JWKS; touches no auth_t, so it needs no lock.
//  Returns the number of usable keys (filling *keys_out) or -1, logged.
int
jwks_download (const char *jwks_url, long timeout_ms, jwks_key_t **keys_out)
{
    fetch_buffer_t buffer = { .cap = JWKS_MAX_BYTES };
    CURL *curl = curl_easy_init ();
    if (!curl) {
        zsys_warning ("jwks: cannot start a JWKS fetch");
        return -1;
    }
    curl_easy_setopt (curl, CURLOPT_URL, jwks_url);
    curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt (curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt (curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt (curl, CURLOPT_MAXREDIRS, 3L);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) JWKS_MAX_BYTES);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, fetch_buffer_write);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, &buffer);
    curl_easy_setopt (curl, CURLOPT_USERAGENT, "clowdy/" CLOWDY_VERSION);
    CURLcode rc = curl_easy_perform (curl);
    long status = 0;
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup (curl);

    int count = -1;
    if (rc != CURLE_OK)
        zsys_warning ("jwks: JWKS fetch from %s failed: %s", jwks_url,
                      buffer.too_large? "document larger than 1 MiB": curl_easy_strerror (rc));
    else
    if (status != 200)
        zsys_warning ("jwks: JWKS fetch from %s answered HTTP %ld", jwks_url, status);
    else {
        count = jwks_parse (buffer.data? buffer.data: "", buffer.size, keys_out);
        if (count < 0)
            zsys_warning ("jwks: %s is not a JWKS document", jwks_url);
        else
        if (count == 0)
            zsys_warning ("jwks: JWKS at %s has no usable RS256/ES256 keys", jwks_url);
    }
    fetch_buffer_reset (&buffer);
    return count;
}


//  --------------------------------------------------------------------------
//  Selftest (key sets made from real keys are tested in auth_test)

void
jwks_test (bool verbose)
{
    printf ("jwks: ");
    //  base64url codec
    size_t len = 0;
    unsigned char *bytes = jwks_b64url_decode ("aGVsbG8", 7, &len);
    assert (bytes && len == 5 && memcmp (bytes, "hello", 5) == 0);
    free (bytes);
    assert (jwks_b64url_decode ("aGVsbG8=", 8, &len) == NULL);
    assert (jwks_b64url_decode ("a", 1, &len) == NULL);
    assert (jwks_b64url_decode ("a+b/", 4, &len) == NULL);
    char *text = jwks_b64url_encode ((const unsigned char *) "\xfb\xff", 2);
    assert (streq (text, "-_8"));
    bytes = jwks_b64url_decode (text, strlen (text), &len);
    assert (len == 2 && bytes [0] == 0xfb && bytes [1] == 0xff);
    free (bytes);
    free (text);
    assert (jwks_is_b64url ("abc-_09", 7) && !jwks_is_b64url ("a.b", 3));

    //  Documents that are not a JWKS, and junk keys that are skipped
    jwks_key_t *keys = NULL;
    assert (jwks_parse ("not json", 8, &keys) == -1 && keys == NULL);
    assert (jwks_parse ("{\"keys\":{}}", 11, &keys) == -1);
    const char *empty = "{\"keys\":[]}";
    assert (jwks_parse (empty, strlen (empty), &keys) == 0);
    jwks_keys_free (keys, 0);
    const char *junk =
        "{\"keys\":[1,\"x\",{},{\"kty\":\"RSA\"},{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"},"
        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAA\",\"y\":\"AAAA\"},"
        "{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"AAAA\",\"y\":\"AAAA\"},"
        "{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"},"
        "{\"kty\":\"EC\",\"crv\":\"P-256\","
        "\"x\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE\","
        "\"y\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE\"}]}";
    assert (jwks_parse (junk, strlen (junk), &keys) == 0);
    jwks_keys_free (keys, 0);

    //  A real P-256 key, then the same with use "enc" and a wrong alg
    EVP_PKEY *pkey = EVP_EC_gen ("P-256");
    assert (pkey);
    BIGNUM *x = NULL, *y = NULL;
    assert (EVP_PKEY_get_bn_param (pkey, OSSL_PKEY_PARAM_EC_PUB_X, &x));
    assert (EVP_PKEY_get_bn_param (pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &y));
    unsigned char xb [32], yb [32];
    assert (BN_bn2binpad (x, xb, 32) == 32 && BN_bn2binpad (y, yb, 32) == 32);
    char *x64 = jwks_b64url_encode (xb, 32), *y64 = jwks_b64url_encode (yb, 32);
    char *doc = zsys_sprintf ("{\"keys\":[{\"kty\":\"EC\",\"kid\":\"k1\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"},"
        "{\"kty\":\"EC\",\"use\":\"enc\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"},"
        "{\"kty\":\"EC\",\"alg\":\"RS256\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}]}",
        x64, y64, x64, y64, x64, y64);
    assert (jwks_parse (doc, strlen (doc), &keys) == 1);
    assert (streq (keys [0].kid, "k1") && keys [0].alg == JWT_ALG_ES256);
    assert (strstr (keys [0].pem, "BEGIN PUBLIC KEY") && keys [0].pem_len == (int) strlen (keys [0].pem));
    jwks_keys_free (keys, 1);
    zstr_free (&doc);
    free (x64);
    free (y64);
    BN_free (x);
    BN_free (y);
    EVP_PKEY_free (pkey);

    //  A fetch from nowhere fails, logged, with no keys
    keys = NULL;
    assert (jwks_download ("file:///etc/passwd", 1000, &keys) == -1 && keys == NULL);
    printf ("OK\n");
}
