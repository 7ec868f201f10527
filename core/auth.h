/*  =========================================================================
    auth - who is calling: JWT (JWKS, RS256/ES256), API tokens, local mode

    One auth_t per server, used on the http actor's thread for every
    request (it is also safe to call from other threads: a mutex guards
    the key cache). See the top of auth.c for the design; core/jwks.c
    fetches and reads the provider's keys, core/tokens.c keeps API tokens.

    auth_check returns 0 and a user id, AUTH_PENDING (see below), or -1 and
    a static sentence for the 401 `detail`:
        "Missing credentials"                   no Authorization header (jwt mode)
        "Authorization header must be 'Bearer <token>'"
        "Token too large"                       over AUTH_MAX_TOKEN bytes
        "Malformed token"                       not three base64url JSON parts
        "Unsupported token algorithm"           alg other than RS256/ES256
        "Unknown signing key"                   kid not in the JWKS (fetched in the last 10 s)
        "Signing keys unavailable"              JWKS could not be fetched
        "Invalid token signature"
        "Token has no expiry" / "Token expired" / "Token not yet valid"
        "Invalid token issuer" / "Invalid token audience"
        "Token has no valid subject"            sub missing, empty or > 128 chars
        "Invalid API token"                     an API token: ask auth_is_api_token
                                                first, and check those with
                                                tokens_check_header (core/tokens.h)
        "JWT authentication is not enabled"     a JWT sent in local mode

    Fetching: auth_check never downloads, only auth_refresh does. When a
    token's key might come with a fetch (an unknown kid and no fetch in the
    last 10 s, no key set yet, or a fetch under way), auth_check answers
    AUTH_PENDING: the caller parks the request, has its fetching thread
    call auth_refresh (asked), and calls auth_check again after that.
    ========================================================================= */

#ifndef CLOWDY_AUTH_H_INCLUDED
#define CLOWDY_AUTH_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#define AUTH_MAX_TOKEN      16384   //  longer credentials are rejected unparsed
#define AUTH_MAX_SUB        128     //  longest accepted user id (JWT sub)
#define AUTH_USER_ID_SIZE   (AUTH_MAX_SUB + 1)
#define AUTH_TOKEN_PREFIX   "clw_"  //  API tokens: "clw_" + 64 hex chars
#define AUTH_TOKEN_ID_SIZE  13      //  12 hex characters + NUL
#define AUTH_PENDING        1       //  auth_check: ask again after auth_refresh

typedef enum {
    AUTH_LOCAL,                     //  no credentials needed; API tokens still name their user
    AUTH_JWT                        //  Bearer JWT verified against a JWKS, or an API token
} auth_mode_t;

typedef struct {
    auth_mode_t mode;               //  AUTH_LOCAL or AUTH_JWT
    const char *jwks_url;           //  jwt mode: JWKS URL (Clerk or any OIDC provider); may be
                                    //  NULL when keys are preloaded with auth_set_jwks_json
    const char *issuer;             //  optional required iss
    const char *audience;           //  optional required aud (string or one of an array)
    int leeway_seconds;             //  exp/nbf leeway: 0 means the default 60, < 0 means none
    const char *local_user;         //  local mode: user without credentials, default "local"
} auth_config_t;

typedef struct _auth_t auth_t;

//  Create an authenticator; copies the strings in config. Returns NULL if
//  the config is unusable (jwt mode without a JWKS URL is allowed only for
//  preloaded keys). Fetches nothing: auth_refresh does.
auth_t *
    auth_new (const auth_config_t *config);

//  Destroy it; safe on NULL and twice.
void
    auth_destroy (auth_t **self_p);

//  Check an Authorization header value (may be NULL). On success writes the
//  user id (JWT sub, the token's user, or the local user) and returns 0;
//  else returns -1 and sets *detail to a static sentence for a 401, or
//  AUTH_PENDING when a JWKS fetch may bring the token's key (never fetched,
//  a fetch under way, or an unknown kid and none in the last 10 s): call
//  auth_refresh (asked) and check again. Never downloads nor waits.
int
    auth_check (auth_t *self, const char *authorization,
                char *user_id, size_t user_id_size, const char **detail);

//  Fetch the JWKS now if it is due (never fetched, five minutes before the
//  key set would age out, or asked: a request got AUTH_PENDING), at most
//  once per 10 s, downloading without holding the lock, so auth_check in
//  other threads does not wait for the provider. Meant to be called from a
//  thread of its own, at start, every minute or so, and when asked.
//  Returns 0 (done or not due), or -1 if the fetch failed (old keys kept).
int
    auth_refresh (auth_t *self, bool asked);

//  The mode it was created with (for the public config endpoint and logs).
auth_mode_t
    auth_mode (auth_t *self);

//  Install a JWKS document ({"keys":[...]}) as the current key set, as a
//  fetch would. Returns the number of usable keys, or -1 if it is not a
//  JWKS. Used by the fuzz target and by tests; with jwks_url NULL these are
//  the only keys.
int
    auth_set_jwks_json (auth_t *self, const char *json);

//  Does this Authorization header carry an API token ("Bearer clw_...")?
//  Checking one reads SQLite, so the http loop hands such requests to a
//  thread that owns a store, which calls tokens_check_header.
bool
    auth_is_api_token (const char *authorization);

//  Read an Authorization header (may be NULL) as auth_check does: "Bearer
//  <token>", the scheme in any case, blanks around the token ignored.
//  Returns NULL and sets *token_p to the token, *len_p bytes long (not
//  terminated there); else returns a static sentence for a 401 ("Missing
//  credentials", "Authorization header must be 'Bearer <token>'", "Token
//  too large").
const char *
    auth_bearer (const char *authorization, const char **token_p, size_t *len_p);

//  Selftest
void
    auth_test (bool verbose);

#endif
