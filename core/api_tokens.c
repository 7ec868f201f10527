/*  =========================================================================
    api_tokens - the caller's API tokens: GET/POST /api/tokens and
    DELETE /api/tokens/:id

    The endpoints over core/tokens.c. A token is shown once, in the answer
    to POST {name} as {id, name, token}; lists never carry it. Someone
    else's token is "Token not found", as a missing one is. name is
    optional (default "api"), 1..100 bytes.
    ========================================================================= */

#include <czmq.h>
#include "core/api_call.h"
#include "core/tokens.h"

#define TOKEN_NAME_MAX_BYTES    100

int
api_tokens_list (api_call_t *call)
{
    cJSON *tokens = tokens_list (call->store, call->req->user_id);
    if (!tokens)
        return api_reply_detail (call, 500, "Could not list tokens");
    return api_reply (call, 200, tokens);
}

int
api_token_create (api_call_t *call)
{
    if (api_body_parse_as (call, true))
        return 0;
    cJSON *name = api_member (call, "name", false);
    const char *token_name = cJSON_IsString (name)? name->valuestring: "api";
    if ((name && !cJSON_IsString (name)) || strlen (token_name) == 0
    ||  strlen (token_name) > TOKEN_NAME_MAX_BYTES) {
        api_invalid (call, "name", "value_error", "name must be a string of 1 to %d characters",
                     TOKEN_NAME_MAX_BYTES);
        return api_reply_invalid (call);
    }
    char id [AUTH_TOKEN_ID_SIZE];
    char *token = tokens_create (call->store, call->req->user_id, token_name, id);
    if (!token)
        return api_reply_detail (call, 500, "Could not create a token");
    cJSON *reply = cJSON_CreateObject ();
    cJSON_AddStringToObject (reply, "id", id);
    cJSON_AddStringToObject (reply, "name", token_name);
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
