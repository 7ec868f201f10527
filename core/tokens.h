/*  =========================================================================
    tokens - API tokens, stored in the store's api_tokens table

    An API token is "clw_" + 64 lower-case hex characters (AUTH_TOKEN_PREFIX,
    core/auth.h). Only its SHA-256 (hex) is stored; the plaintext is shown
    once, when it is made. Every call runs on the caller's store connection
    through the store's cached prepared statements, so it belongs on a
    thread that owns one (a control-plane thread or the CLI), never on the
    http loop.
    ========================================================================= */

#ifndef CLOWDY_TOKENS_H_INCLUDED
#define CLOWDY_TOKENS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>
#include "core/auth.h"
#include "core/store.h"

//  Is token (len bytes, no "Bearer ") shaped like an API token?
bool
    tokens_is_token (const char *token, size_t len);

//  Check an API token (len bytes, no "Bearer "). Returns 0 and writes its
//  user, recording its use (last_used_at, at most once a minute); else -1
//  and a static sentence for a 401 in *detail: "Invalid API token",
//  "API token revoked", or "Authentication failed" (store error).
int
    tokens_check (store_t *store, const char *token, size_t len,
                  char *user_id, size_t user_id_size, const char **detail);

//  Check the API token in an Authorization header ("Bearer clw_...", as
//  auth_bearer reads it; see auth_is_api_token). Returns 0 and writes its
//  user, or -1 and a static sentence for a 401 in *detail (never NULL):
//  tokens_check's, or auth_bearer's when the header holds no bearer token.
//  The one API-token check of the threads that own a store.
int
    tokens_check_header (store_t *store, const char *authorization,
                         char *user_id, size_t user_id_size, const char **detail);

//  Check a SigV4-signed request (the Lambda API): the access key id is a
//  token's id, the secret the token itself (kept sealed, core/sigv4.h).
//  raw_path and raw_query as sent, headers a JSON object of lower-case
//  names. 0 and the token's user, or -1 with a sentence in *detail.
int
    tokens_check_sigv4 (store_t *store, const char *authorization, const char *method, const char *raw_path,
                        const char *raw_query, cJSON *headers, const void *body, size_t body_size,
                        char *user_id, size_t user_id_size, const char **detail);

#define TOKENS_NAME_MAX_CHARS   100     //  a token's name: 1..100 characters (the API's names)

//  Create a token for user_id named name (1..TOKENS_NAME_MAX_CHARS
//  characters). Returns the plaintext (the caller frees it; it is never
//  stored) and writes its id into id_out; NULL on error (bad arguments,
//  SQL error).
char *
    tokens_create (store_t *store, const char *user_id, const char *name,
                   char id_out [AUTH_TOKEN_ID_SIZE]);

//  The user's live (unrevoked) tokens, newest first:
//  [{id, name, created_at, last_used_at (or null)}]. user_id NULL lists every
//  user's tokens and adds user_id to each (for the admin CLI). NULL on error.
cJSON *
    tokens_list (store_t *store, const char *user_id);

//  Revoke one of the user's tokens (user_id NULL: anyone's, for the admin
//  CLI). Returns 0, or -1 if there is no such live token of that user.
int
    tokens_revoke (store_t *store, const char *user_id, const char *token_id);

void
    tokens_test (bool verbose);

#endif
