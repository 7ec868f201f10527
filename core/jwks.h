/*  =========================================================================
    jwks - a provider's signing keys: JWKS fetching and JWK-to-key

    Turns a JWKS document ({"keys": [...]}) into verification keys libjwt
    can use (RS256: RSA of 2048..8192 bits; ES256: EC P-256 on the curve),
    fetched over http/https with libcurl. Pure functions with no shared
    state: core/auth.c keeps the key set and decides when to fetch. Also
    home of the JOSE base64url codec both need.
    ========================================================================= */

#ifndef CLOWDY_JWKS_H_INCLUDED
#define CLOWDY_JWKS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <jwt.h>

#define JWKS_MAX_BYTES      (1024 * 1024)   //  largest JWKS document accepted
#define JWKS_MAX_KEYS       64              //  keys kept from one JWKS

//  One verification key from a JWKS
typedef struct {
    char *kid;                  //  key id, or NULL when the JWK has none
    jwt_alg_t alg;              //  JWT_ALG_RS256 or JWT_ALG_ES256, from kty (and alg)
    char *pem;                  //  SubjectPublicKeyInfo PEM for libjwt
    int pem_len;                //  strlen (pem)
} jwks_key_t;

//  Parse a JWKS document into a new key array (free with jwks_keys_free).
//  Returns the number of usable keys (junk keys are skipped), or -1 if it
//  is not a JWKS document.
int
    jwks_parse (const char *json, size_t len, jwks_key_t **keys_out);

//  Download (timeout_ms for the whole fetch, JWKS_MAX_BYTES at most,
//  http/https only) and parse a JWKS. Returns the number of usable keys,
//  filling *keys_out, or -1, with the reason logged.
int
    jwks_download (const char *jwks_url, long timeout_ms, jwks_key_t **keys_out);

//  Free a key array; safe on NULL.
void
    jwks_keys_free (jwks_key_t *keys, size_t count);

//  Are these len bytes all base64url characters?
bool
    jwks_is_b64url (const char *text, size_t len);

//  Decode unpadded base64url (RFC 7515) into a new NUL-terminated buffer;
//  NULL on bad characters or length.
unsigned char *
    jwks_b64url_decode (const char *text, size_t len, size_t *out_len);

//  Base64url without padding; a new string.
char *
    jwks_b64url_encode (const unsigned char *data, size_t len);

void
    jwks_test (bool verbose);

#endif
