/*  =========================================================================
    fuzz_auth - libFuzzer target for core/auth (credentials and JWKS parsing)

    The first input byte picks what the rest is:
      0  an Authorization header value, given to auth_check as-is
      1  "<JOSE header JSON>\n<payload bytes>", base64url-encoded and signed
         with ES256 by this target, so that inputs get past the signature
         and reach libjwt's claim decoding and our claim checks
      2  a JWKS document, given to auth_set_jwks_json (a scratch instance)
    auth runs in jwt mode with keys generated at start-up and preloaded with
    auth_set_jwks_json: no network, no database.
    ========================================================================= */

#include <czmq.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include "core/auth.h"

static auth_t *s_auth;              //  jwt mode, fixed key set (kid "r" RSA, kid "e" EC)
static auth_t *s_scratch;           //  for JWKS documents from the input
static EVP_PKEY *s_ec_key;          //  signs mode-1 inputs (kid "e")

static char *
s_b64url (const unsigned char *data, size_t len)
{
    char *out = malloc ((len + 2) / 3 * 4 + 1);
    int n = EVP_EncodeBlock ((unsigned char *) out, data, (int) len);
    while (n > 0 && out [n - 1] == '=')
        n--;
    out [n] = 0;
    for (int i = 0; i < n; i++)
        out [i] = out [i] == '+'? '-': out [i] == '/'? '_': out [i];
    return out;
}

static char *
s_bn_param (EVP_PKEY *pkey, const char *name, int pad)
{
    BIGNUM *bn = NULL;
    EVP_PKEY_get_bn_param (pkey, name, &bn);
    int len = pad? pad: BN_num_bytes (bn);
    unsigned char buffer [1024];
    BN_bn2binpad (bn, buffer, len);
    BN_free (bn);
    return s_b64url (buffer, (size_t) len);
}

static void
s_setup (void)
{
    zsys_set_logstream (NULL);
    zsys_set_logsystem (false);
    EVP_PKEY *rsa = EVP_RSA_gen (2048);
    s_ec_key = EVP_EC_gen ("P-256");
    char *n = s_bn_param (rsa, OSSL_PKEY_PARAM_RSA_N, 0);
    char *e = s_bn_param (rsa, OSSL_PKEY_PARAM_RSA_E, 0);
    char *x = s_bn_param (s_ec_key, OSSL_PKEY_PARAM_EC_PUB_X, 32);
    char *y = s_bn_param (s_ec_key, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
    char *jwks = zsys_sprintf (
        "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"r\",\"alg\":\"RS256\",\"n\":\"%s\",\"e\":\"%s\"},"
        "{\"kty\":\"EC\",\"kid\":\"e\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}]}", n, e, x, y);
    auth_config_t config = {
        .mode = AUTH_JWT, .issuer = "https://issuer.test", .audience = "clowdy"
    };
    s_auth = auth_new (&config);
    assert (auth_set_jwks_json (s_auth, jwks) == 2);
    s_scratch = auth_new (&config);
    free (n);
    free (e);
    free (x);
    free (y);
    free (jwks);
    EVP_PKEY_free (rsa);
}

//  "Bearer b64(header).b64(payload).b64(ES256 signature)"
static char *
s_signed (const uint8_t *data, size_t size)
{
    const uint8_t *newline = memchr (data, '\n', size);
    size_t head_len = newline? (size_t) (newline - data): size;
    const uint8_t *body = newline? newline + 1: data + size;
    size_t body_len = newline? size - head_len - 1: 0;
    char *h = s_b64url (data, head_len);
    char *p = s_b64url (body, body_len);
    char *input = zsys_sprintf ("%s.%s", h, p);
    unsigned char der [128];
    size_t der_len = sizeof (der);
    EVP_MD_CTX *md = EVP_MD_CTX_new ();
    EVP_DigestSignInit (md, NULL, EVP_sha256 (), NULL, s_ec_key);
    EVP_DigestSign (md, der, &der_len, (unsigned char *) input, strlen (input));
    EVP_MD_CTX_free (md);
    const unsigned char *cursor = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG (NULL, &cursor, (long) der_len);
    unsigned char raw [64];
    BN_bn2binpad (ECDSA_SIG_get0_r (sig), raw, 32);
    BN_bn2binpad (ECDSA_SIG_get0_s (sig), raw + 32, 32);
    ECDSA_SIG_free (sig);
    char *s = s_b64url (raw, sizeof (raw));
    char *header = zsys_sprintf ("Bearer %s.%s", input, s);
    free (h);
    free (p);
    free (s);
    free (input);
    return header;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (!s_auth)
        s_setup ();
    if (size == 0)
        return 0;
    uint8_t mode = data [0] % 3;
    data++;
    size--;
    char user [AUTH_USER_ID_SIZE];
    const char *detail = NULL;
    if (mode == 0) {
        char *text = strndup ((const char *) data, size);
        int rc = auth_check (s_auth, text, user, sizeof (user), &detail);
        assert (rc == 0 || (rc == -1 && detail));
        free (text);
    }
    else
    if (mode == 1) {
        if (size > 12000)
            return 0;
        char *header = s_signed (data, size);
        int rc = auth_check (s_auth, header, user, sizeof (user), &detail);
        assert (rc == 0 || (rc == -1 && detail));
        if (rc == 0)
            assert (strlen (user) > 0 && strlen (user) <= AUTH_MAX_SUB);
        if (getenv ("FUZZ_AUTH_DEBUG"))     //  when replaying one input
            fprintf (stderr, "fuzz_auth: signed input: rc=%d user=%s detail=%s\n",
                     rc, rc == 0? user: "", detail? detail: "");
        free (header);
    }
    else {
        char *text = strndup ((const char *) data, size);
        auth_set_jwks_json (s_scratch, text);
        free (text);
    }
    return 0;
}
