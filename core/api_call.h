/*  =========================================================================
    api_call - what the control-plane handlers share (private to core/api*.c)

    api.c owns the route table and the dispatcher; each resource lives in
    its own file (api_projects.c, api_functions.c, api_routes.c,
    api_stats.c, api_tokens.c) and exports its handlers here. A handler
    gets one api_call_t: the request, the path parameters the route's
    pattern bound (":id" and the like, in order), and the response to fill
    through the builders below, which are the only places that shape a
    reply: one `{"detail": "..."}` builder, one FastAPI-shaped 422 list,
    one phrasing per error.
    ========================================================================= */

#ifndef CLOWDY_API_CALL_H_INCLUDED
#define CLOWDY_API_CALL_H_INCLUDED

#include <czmq.h>
#include "core/api.h"
#include "core/util.h"

#define API_NAME_MAX_CHARS          100
#define API_DESCRIPTION_MAX_CHARS   1000
#define API_PARAMS_MAX              4       //  path parameters one pattern may bind

struct _api_t {
    store_t *store;                 //  The caller's store connection (not owned), or NULL
    int max_memory_mb;              //  Server-set maximum for memory_mb (<= 2048)
    int max_timeout_seconds;        //  Server-set maximum for timeout_seconds (<= 900)
    char *config_json;              //  What GET /api/config answers
    const config_t *quotas;         //  Where --max-functions & co. are read (api_set_quotas)
};

//  One request being handled
typedef struct {
    api_t *api;                     //  Handler set
    store_t *store;                 //  Shortcut to api->store
    const api_request_t *req;       //  The request
    api_response_t *resp;           //  The response to fill
    const char *param [API_PARAMS_MAX]; //  Path parameters bound by the route's pattern
    cJSON *body;                    //  Parsed body, once api_body_parse ran
    cJSON *errors;                  //  Validation errors (422 list)
} api_call_t;

//  A handler: fills call->resp; returns 0. A handler that began a store
//  transaction and does not commit it just returns: the dispatcher rolls
//  back whatever a handler left open.
typedef int (api_handler_fn) (api_call_t *call);

//  --------------------------------------------------------------------------
//  Replies (api.c). Each returns 0, so a handler can `return api_reply (...)`.

//  Reply with a JSON value (taken over); NULL means the store failed: 500
int
    api_reply (api_call_t *call, int status, cJSON *json);
//  A quota, checked by a handler after its insert, in its write transaction
//  (BEGIN IMMEDIATE takes writers one at a time, so two requests at once
//  cannot both slip under it): when the count sql gives for id is over
//  limit (0: no limit), replies 409 "<refusal> (at most <limit>, --<flag>)",
//  or 500 if the store failed, and returns true; the handler just returns,
//  and the dispatcher rolls its insert back.
bool
    api_over_quota (api_call_t *call, long limit, const char *flag, const char *refusal,
                    const char *sql, const char *id);

//  Reply {"detail": <formatted sentence>}
int
    api_reply_detail (api_call_t *call, int status, const char *format, ...)
    CHECK_PRINTF (3);
//  500 "Internal server error"
int
    api_reply_store_error (api_call_t *call);
//  Tell the http actor what the gateway must forget (api.h lists the kinds)
void
    api_invalidate (api_call_t *call, const char *kind, const char *id);

//  --------------------------------------------------------------------------
//  Validation (api.c): FastAPI-shaped errors {"loc": [where, field], "msg", "type"}

void
    api_invalid_at (api_call_t *call, const char *where, const char *field, const char *type,
                    const char *format, ...) CHECK_PRINTF (5);
#define api_invalid(call, field, type, ...) api_invalid_at (call, "body", field, type, __VA_ARGS__)
bool
    api_has_errors (api_call_t *call);
//  422 with every error collected so far
int
    api_reply_invalid (api_call_t *call);
//  Parse the body into call->body as a JSON object. Returns 0, or -1 with
//  the reply (400 or 422) made. empty_ok: no body at all counts as {}.
int
    api_body_parse_as (api_call_t *call, bool empty_ok);
#define api_body_parse(call) api_body_parse_as (call, false)
//  A string field, or NULL (absent, or invalid with an error added).
//  max_size counts characters when chars, else bytes.
const char *
    api_string (api_call_t *call, const char *field, bool required, size_t max_size, bool chars);
//  A display name: trimmed, 1..100 characters, no control characters.
//  Heap copy, or NULL (absent, or invalid with an error added).
char *
    api_name (api_call_t *call, const char *field, bool required);
//  An integer field within [min, max]; true when sent and valid
bool
    api_int (api_call_t *call, const char *field, int min, int max, int *value);
//  A boolean field; true when sent and valid
bool
    api_bool (api_call_t *call, const char *field, bool *value);
//  A decimal integer in [min, max] from the whole of text
bool
    api_parse_int (const char *text, long min, long max, long *value);
//  The value of name in a raw query string (not decoded; heap), or NULL
char *
    api_query_param (const char *query, const char *name);
//  The list's ?limit= (fallback when absent) into *limit: false, with the
//  error added to the call's, when it is not a whole number from 1 to max
bool
    api_query_limit (api_call_t *call, long fallback, long max, long *limit);

//  --------------------------------------------------------------------------
//  Lookups shared between resources (api_projects.c, api_functions.c)

//  Is project_id one of the caller's projects?
bool
    api_project_owned (api_call_t *call, const char *project_id);

//  Is function_id (checked as an id) one of the caller's functions?
bool
    api_function_owned (api_call_t *call, const char *function_id);

//  --------------------------------------------------------------------------
//  Handlers, by resource file

int api_health (api_call_t *call);                  //  api.c
int api_config (api_call_t *call);

int api_projects_list (api_call_t *call);           //  api_projects.c
int api_project_create (api_call_t *call);
int api_project_get (api_call_t *call);
int api_project_update (api_call_t *call);
int api_project_delete (api_call_t *call);
int api_requirements (api_call_t *call);
int api_database_get (api_call_t *call);
int api_database_provision (api_call_t *call);
int api_database_deprovision (api_call_t *call);

int api_functions_list (api_call_t *call);          //  api_functions.c
int api_function_create (api_call_t *call);
int api_function_get (api_call_t *call);
int api_function_update (api_call_t *call);
int api_function_delete (api_call_t *call);
int api_project_functions (api_call_t *call);
int api_versions_list (api_call_t *call);
int api_version_get (api_call_t *call);
int api_version_activate (api_call_t *call);
int api_invocations_list (api_call_t *call);
int api_invocation_get (api_call_t *call);

int api_env_list (api_call_t *call);                //  api_routes.c
int api_env_upsert (api_call_t *call);
int api_env_delete (api_call_t *call);
int api_routes_list (api_call_t *call);
int api_route_create (api_call_t *call);
int api_route_update (api_call_t *call);
int api_route_delete (api_call_t *call);

int api_stats (api_call_t *call);                   //  api_stats.c

int api_invoke_async (api_call_t *call);            //  api_events.c
int api_failed_events_list (api_call_t *call);
int api_failed_event_get (api_call_t *call);
int api_failed_event_redrive (api_call_t *call);
int api_failed_event_delete (api_call_t *call);
int api_schedules_list (api_call_t *call);
int api_schedule_create (api_call_t *call);
int api_schedule_delete (api_call_t *call);
int api_cluster (api_call_t *call);                 //  api_cluster.c

int api_tokens_list (api_call_t *call);             //  api_tokens.c
int api_token_create (api_call_t *call);
int api_token_revoke (api_call_t *call);

//  --------------------------------------------------------------------------
//  Selftest helpers (api.c), shared by the resource files' selftests

//  Make one request and assert its status; returns the parsed reply body
//  (caller destroys) and, if invalidate is given, a copy of the invalidation
cJSON *
    api_test_request (api_t *api, const char *user, const char *method, const char *path,
                      const char *query, const char *body, int status, char **invalidate);
//  POST body to path and return a heap copy of the new object's "id"
char *
    api_test_create (api_t *api, const char *user, const char *path, const char *body);
const char *
    api_test_str (cJSON *json, const char *field);
int
    api_test_num (cJSON *json, const char *field);
double
    api_test_double (cJSON *json, const char *field);
//  Assert a 422 reply whose first error is at loc [where, field]; destroys reply
void
    api_test_invalid (cJSON *reply, const char *where, const char *field);
//  Assert reply's detail; destroys reply
void
    api_test_detail (cJSON *reply, const char *detail);

void api_projects_test (bool verbose);
void api_functions_test (bool verbose);
void api_routes_test (bool verbose);
void api_stats_test (bool verbose);
void api_cluster_test (bool verbose);
void api_tokens_test (bool verbose);
void api_events_test (bool verbose);

#endif
