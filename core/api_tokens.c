/*  =========================================================================
    api_tokens - the caller's API tokens: GET/POST /api/tokens and
    DELETE /api/tokens/:id

    The endpoints over core/tokens.c. A token is shown once, in the answer
    to POST {name} as {id, name, created_at, last_used_at, token}; lists
    never carry it. Someone
    else's token is "Token not found", as a missing one is. name is
    optional (default "api"), a name as API.md's other names are (trimmed,
    1..100 characters, no control characters).
    ========================================================================= */

#include <czmq.h>
#include <openssl/crypto.h>
#include "core/api_call.h"
#include "core/tokens.h"

_Static_assert (TOKENS_NAME_MAX_CHARS == API_NAME_MAX_CHARS, "a token's name is an API name");

int
api_tokens_list (api_call_t *call)
{
    return api_reply (call, 200, tokens_list (call->store, call->req->user_id));
}

//  {id, name, created_at, last_used_at} as the list shows it, and the
//  token, shown this once
int
api_token_create (api_call_t *call)
{
    if (api_body_parse_as (call, true))
        return 0;
    char *name = api_name (call, "name", false);
    if (api_has_errors (call))
        return api_reply_invalid (call);
    char id [AUTH_TOKEN_ID_SIZE];
    if (store_begin (call->store)) {
        free (name);
        return api_reply_store_error (call);
    }
    char *token = tokens_create (call->store, call->req->user_id, name? name: "api", id);
    free (name);
    //  Revoked tokens stay to say so when one is used, the newest
    //  --max-tokens of them: a user who makes and revokes tokens in a loop
    //  keeps at most twice the quota
    long limit = call->api->quotas->max_tokens;
    int rc = token? 0: -1;
    if (rc == 0 && limit > 0)
        rc = store_exec (call->store,
            "DELETE FROM api_tokens WHERE user_id = ?1 AND revoked_at IS NOT NULL AND id NOT IN"
            " (SELECT id FROM api_tokens WHERE user_id = ?1 AND revoked_at IS NOT NULL"
            "  ORDER BY revoked_at DESC, id LIMIT ?2)", "sI", call->req->user_id, (int64_t) limit) < 0? -1: 0;
    bool over = rc == 0 && api_over_quota (call, limit, "max-tokens",
                                           "You already have as many API tokens as one user may keep; revoke one first",
                                           "SELECT count (*) FROM api_tokens WHERE user_id = ? AND revoked_at IS NULL",
                                           call->req->user_id);
    if (rc == 0 && !over)
        rc = store_commit (call->store);
    if (token && (rc || over)) {
        OPENSSL_cleanse (token, strlen (token));
        zstr_free (&token);
    }
    if (over)
        return 0;
    if (!token)
        return api_reply_store_error (call);
    cJSON *reply = store_query_row (call->store,
        "SELECT id, name, created_at, last_used_at FROM api_tokens WHERE id = ?", "s", id);
    if (reply)
        cJSON_AddStringToObject (reply, "token", token);
    free (token);
    return api_reply (call, 200, reply);
}

int
api_token_revoke (api_call_t *call)
{
    if (tokens_revoke (call->store, call->req->user_id, call->param [0]))
        return api_reply_detail (call, 404, "Token not found");
    return api_reply_detail (call, 200, "Token revoked");
}


//  --------------------------------------------------------------------------
//  Selftest

void
api_tokens_test (bool verbose)
{
    printf ("api_tokens: ");
    store_t *store = store_new (":memory:");
    assert (store);
    api_t *api = api_new (store);

    //  Created with a name, or "api" without a body; shown once
    cJSON *reply = api_test_request (api, "alice", "POST", "/api/tokens", NULL, "{\"name\":\"laptop\"}", 200, NULL);
    assert (streq (api_test_str (reply, "name"), "laptop"));
    char *token = strdup (api_test_str (reply, "token"));
    char *token_id = strdup (api_test_str (reply, "id"));
    assert (strncmp (token, "clw_", 4) == 0);
    cJSON_Delete (reply);
    reply = api_test_request (api, "alice", "POST", "/api/tokens", NULL, NULL, 200, NULL);
    assert (streq (api_test_str (reply, "name"), "api"));
    cJSON_Delete (reply);
    char user [AUTH_USER_ID_SIZE];
    const char *detail;
    assert (tokens_check (store, token, strlen (token), user, sizeof user, &detail) == 0);
    assert (streq (user, "alice"));

    //  Bad names and bodies
    api_test_invalid (api_test_request (api, "alice", "POST", "/api/tokens", NULL, "{\"name\":\"\"}", 422, NULL),
                      "body", "name");
    api_test_invalid (api_test_request (api, "alice", "POST", "/api/tokens", NULL, "{\"name\":7}", 422, NULL),
                      "body", "name");
    char body [256];
    snprintf (body, sizeof body, "{\"name\":\"%0101d\"}", 0);
    api_test_invalid (api_test_request (api, "alice", "POST", "/api/tokens", NULL, body, 422, NULL), "body", "name");
    api_test_invalid (api_test_request (api, "alice", "POST", "/api/tokens", NULL, "{\"name\":\"a\\u0007b\"}", 422,
                                        NULL), "body", "name");
    api_test_invalid (api_test_request (api, "alice", "POST", "/api/tokens", NULL, "{\"name\":\"   \"}", 422, NULL),
                      "body", "name");
    //  Names as the API's other names: trimmed, counted in characters
    reply = api_test_request (api, "carol", "POST", "/api/tokens", NULL, "{\"name\":\"  ci  \"}", 200, NULL);
    assert (streq (api_test_str (reply, "name"), "ci"));
    assert (*api_test_str (reply, "created_at") && cJSON_IsNull (cJSON_GetObjectItem (reply, "last_used_at")));
    cJSON_Delete (reply);
    {
        char *many = strdup ("{\"name\":\"");
        for (int index = 0; index < API_NAME_MAX_CHARS; index++) {
            char *longer = zsys_sprintf ("%s\xc3\xa9", many);          //  é, 2 bytes
            free (many);
            many = longer;
        }
        char *longest = zsys_sprintf ("%s\"}", many);
        cJSON_Delete (api_test_request (api, "carol", "POST", "/api/tokens", NULL, longest, 200, NULL));
        char *too_long = zsys_sprintf ("%sx\"}", many);
        api_test_invalid (api_test_request (api, "carol", "POST", "/api/tokens", NULL, too_long, 422, NULL),
                          "body", "name");
        free (many);
        free (longest);
        free (too_long);
    }
    api_test_detail (api_test_request (api, "alice", "POST", "/api/tokens", NULL, "{", 400, NULL),
                     "Request body is not valid JSON");

    //  Lists: own only, never the secret
    reply = api_test_request (api, "alice", "GET", "/api/tokens", NULL, NULL, 200, NULL);
    assert (cJSON_GetArraySize (reply) == 2);
    char *text = cJSON_PrintUnformatted (reply);
    assert (!strstr (text, token + 4));
    free (text);
    cJSON_Delete (reply);
    reply = api_test_request (api, "bob", "GET", "/api/tokens", NULL, NULL, 200, NULL);
    assert (cJSON_GetArraySize (reply) == 0);
    cJSON_Delete (reply);

    //  Revoke: not bob's to revoke; then alice's; then gone
    char path [128];
    snprintf (path, sizeof path, "/api/tokens/%s", token_id);
    api_test_detail (api_test_request (api, "bob", "DELETE", path, NULL, NULL, 404, NULL), "Token not found");
    api_test_detail (api_test_request (api, "alice", "DELETE", path, NULL, NULL, 200, NULL), "Token revoked");
    api_test_detail (api_test_request (api, "alice", "DELETE", path, NULL, NULL, 404, NULL), "Token not found");
    assert (tokens_check (store, token, strlen (token), user, sizeof user, &detail) == -1);
    api_test_detail (api_test_request (api, "alice", "PUT", "/api/tokens", NULL, NULL, 405, NULL),
                     "Method not allowed");

    free (token);
    free (token_id);
    api_destroy (&api);
    store_destroy (&store);
    printf ("OK\n");
}
