/*  =========================================================================
    dbprovider_neon - one Neon project per Clowdy project, over Neon's REST
    API v2 (libcurl)

    The requests, as Neon documents them (base URL --neon-api-url, default
    https://console.neon.tech/api/v2; header Authorization: Bearer KEY):
    - GET /users/me/organizations: {"organizations": [{"id", ...}]}; the
      first organisation's id goes into the new project (none: no org_id).
      A refusal here is not fatal (keys scoped to one organisation cannot
      list them); the create that follows says what is wrong.
    - POST /projects {"project": {"name": "clowdy-P", "org_id"?}} -> 201
      {"project": {"id"}, "connection_uris": [{"connection_uri"}],
       "operations": [{"id", "status"}], ...}
    - GET /projects/{id}/operations/{op}: {"operation": {"status"}} until
      every operation is "finished" (or "failed"/"error": the provision
      fails), polled each second for at most S_OPERATIONS_MS.
    - GET /projects/{id}/connection_uri?database_name=D&role_name=R: {"uri"}
      when the create gave no connection URI.
    - DELETE /projects/{id}: 200; 404 counts as gone.
    Errors come as {"code", "message"}: the message is what the user sees.
    423 Locked (another operation runs on the project) and 429 (rate limit)
    are retried with exponential backoff (Retry-After when given), up to
    S_ATTEMPTS times. A server stopping (SIGINT/SIGTERM) cuts the waits short,
    so that the database actor's thread ends promptly. Every request has a
    connect and a total timeout. The new project's id goes to the made
    handler as soon as the create answers. A provision that fails after the
    create deletes the Neon project; if that DELETE fails, the id stays in
    info->external_id and the database actor deletes it later.
    ========================================================================= */

#include <czmq.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include "core/dbprovider.h"
#include "core/fetch.h"

#define S_ATTEMPTS          6           //  per request, counting 423/429 retries
#define S_BACKOFF_MS        500         //  first wait; doubles
#define S_BACKOFF_MAX_MS    8000
#define S_TIMEOUT_MS        30000       //  one request, all in
#define S_CONNECT_MS        10000
#define S_OPERATIONS_MS     120000      //  waiting for the create's operations
#define S_RESPONSE_MAX      (4 << 20)

typedef struct {
    char *api_url;                  //  Base, without a trailing /
    char *auth_header;              //  "Authorization: Bearer KEY"
} s_neon_t;

static void *
s_create (const config_t *config, char *error, size_t error_size)
{
    const char *url = config->neon_api_url;
    if (strncmp (url, "https://", 8) && strncmp (url, "http://", 7)) {
        snprintf (error, error_size, "--neon-api-url must be an http(s) URL");
        return NULL;
    }
    if (strpbrk (config->neon_api_key, "\r\n")) {
        snprintf (error, error_size, "--neon-api-key must be one line");
        return NULL;
    }
    curl_global_init (CURL_GLOBAL_DEFAULT);
    s_neon_t *self = (s_neon_t *) zmalloc (sizeof (s_neon_t));
    self->api_url = strdup (url);
    size_t length = strlen (self->api_url);
    while (length && self->api_url [length - 1] == '/')
        self->api_url [--length] = 0;
    self->auth_header = zsys_sprintf ("Authorization: Bearer %s", config->neon_api_key);
    return self;
}

static void
s_destroy (void *state)
{
    s_neon_t *self = (s_neon_t *) state;
    free (self->api_url);
    free (self->auth_header);
    free (self);
}

//  One API call, with 423/429 retried. Returns the HTTP status (0 when no
//  answer came) and the parsed JSON body in *reply (NULL if none or not
//  JSON). On a non-2xx answer or none, error says why, for the user.
static int
s_request (s_neon_t *self, const char *method, const char *path, const char *body, cJSON **reply,
           char *error, size_t error_size)
{
    *reply = NULL;
    char *url = zsys_sprintf ("%s%s", self->api_url, path);
    int status = 0;
    long wait_ms = S_BACKOFF_MS;
    for (int attempt = 1; attempt <= S_ATTEMPTS; attempt++) {
        CURL *curl = curl_easy_init ();
        struct curl_slist *headers = curl_slist_append (NULL, self->auth_header);
        headers = curl_slist_append (headers, "Accept: application/json");
        if (body)
            headers = curl_slist_append (headers, "Content-Type: application/json");
        fetch_buffer_t buffer = { .cap = S_RESPONSE_MAX };
        curl_easy_setopt (curl, CURLOPT_URL, url);
        curl_easy_setopt (curl, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);
        if (body)
            curl_easy_setopt (curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, fetch_buffer_write);
        curl_easy_setopt (curl, CURLOPT_WRITEDATA, &buffer);
        curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, (long) S_TIMEOUT_MS);
        curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT_MS, (long) S_CONNECT_MS);
        curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, "http,https");
        CURLcode code = curl_easy_perform (curl);
        long http_status = 0;
        curl_off_t retry_after = 0;
        if (code == CURLE_OK) {
            curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &http_status);
            curl_easy_getinfo (curl, CURLINFO_RETRY_AFTER, &retry_after);
        }
        else
            snprintf (error, error_size, "Could not reach the Neon API: %s",
                      buffer.too_large? "answer too large": curl_easy_strerror (code));
        curl_slist_free_all (headers);
        curl_easy_cleanup (curl);
        status = (int) http_status;
        cJSON_Delete (*reply);
        *reply = buffer.data? cJSON_Parse (buffer.data): NULL;
        fetch_buffer_reset (&buffer);
        if ((status == 423 || status == 429) && attempt < S_ATTEMPTS && !zsys_interrupted) {
            long pause = retry_after > 0? (long) retry_after * 1000: wait_ms;
            zclock_sleep ((int) (pause < S_BACKOFF_MAX_MS? pause: S_BACKOFF_MAX_MS));
            wait_ms = wait_ms * 2 < S_BACKOFF_MAX_MS? wait_ms * 2: S_BACKOFF_MAX_MS;
            continue;
        }
        break;
    }
    free (url);
    if (status && (status < 200 || status > 299)) {
        const char *message = cJSON_GetStringValue (cJSON_GetObjectItem (*reply, "message"));
        if (message)
            snprintf (error, error_size, "Neon: %s", message);
        else
            snprintf (error, error_size, "Neon answered %d to %s %s", status, method, path);
    }
    else
    if (status && !*reply) {
        snprintf (error, error_size, "Neon answered %s %s with something that is not JSON", method, path);
        status = 0;
    }
    return status;
}

static int
s_delete_project (s_neon_t *self, const char *neon_id, char *error, size_t error_size)
{
    char *escaped = curl_easy_escape (NULL, neon_id, 0);
    char *path = zsys_sprintf ("/projects/%s", escaped);
    curl_free (escaped);
    cJSON *reply;
    int status = s_request (self, "DELETE", path, NULL, &reply, error, error_size);
    cJSON_Delete (reply);
    free (path);
    if (status == 404 || (status >= 200 && status <= 299))
        return 0;
    return -1;
}

static int
s_deprovision (void *state, const char *project_id, const char *external_id, char *error, size_t error_size)
{
    (void) project_id;
    if (!external_id || !*external_id)
        return 0;                   //  The create never answered: nothing to remove
    return s_delete_project ((s_neon_t *) state, external_id, error, error_size);
}

//  Wait for the create's operations; 0, or -1 with error
static int
s_wait_operations (s_neon_t *self, const char *escaped_id, cJSON *operations, char *error, size_t error_size)
{
    int64_t deadline = zclock_mono () + S_OPERATIONS_MS;
    cJSON *operation;
    cJSON_ArrayForEach (operation, operations) {
        const char *op_id = cJSON_GetStringValue (cJSON_GetObjectItem (operation, "id"));
        const char *status = cJSON_GetStringValue (cJSON_GetObjectItem (operation, "status"));
        if (!op_id)
            continue;
        char *escaped_op = curl_easy_escape (NULL, op_id, 0);
        char *path = zsys_sprintf ("/projects/%s/operations/%s", escaped_id, escaped_op);
        curl_free (escaped_op);
        int rc = 0;
        char state [32];                //  The latest status, copied out of its reply
        while (!status || strneq (status, "finished")) {
            if (status && (streq (status, "failed") || streq (status, "error") || streq (status, "cancelled"))) {
                snprintf (error, error_size, "Neon: operation %.64s %s", op_id, status);
                rc = -1;
                break;
            }
            if (zsys_interrupted) {
                snprintf (error, error_size, "The server stopped while Neon made the project");
                rc = -1;
                break;
            }
            if (zclock_mono () > deadline) {
                snprintf (error, error_size, "Neon: the new project was not ready in %d s", S_OPERATIONS_MS / 1000);
                rc = -1;
                break;
            }
            zclock_sleep (1000);
            cJSON *reply;
            int http = s_request (self, "GET", path, NULL, &reply, error, error_size);
            status = NULL;
            if (http >= 200 && http <= 299) {
                const char *now = cJSON_GetStringValue (cJSON_GetObjectItem (
                                  cJSON_GetObjectItem (reply, "operation"), "status"));
                snprintf (state, sizeof state, "%s", now? now: "");     //  reply goes below
                status = now? state: NULL;
                if (!now)
                    snprintf (error, error_size, "Neon: an operation without a status");
            }
            cJSON_Delete (reply);
            if (!status) {
                rc = -1;
                break;
            }
        }
        free (path);
        if (rc)
            return -1;
    }
    return 0;
}

static int
s_provision (void *state, const char *project_id, dbprovider_info_t *info, const dbprovider_made_t *made,
             char *error, size_t error_size)
{
    s_neon_t *self = (s_neon_t *) state;
    cJSON *reply;
    char ignored [DBPROVIDER_ERROR_SIZE];
    char *org_id = NULL;
    int status = s_request (self, "GET", "/users/me/organizations", NULL, &reply, ignored, sizeof ignored);
    if (status >= 200 && status <= 299) {
        const char *first = cJSON_GetStringValue (cJSON_GetObjectItem (
                             cJSON_GetArrayItem (cJSON_GetObjectItem (reply, "organizations"), 0), "id"));
        org_id = first? strdup (first): NULL;
    }
    cJSON_Delete (reply);

    cJSON *request = cJSON_CreateObject ();
    cJSON *project = cJSON_AddObjectToObject (request, "project");
    char name [64];
    snprintf (name, sizeof name, "clowdy-%s", project_id);
    cJSON_AddStringToObject (project, "name", name);
    if (org_id)
        cJSON_AddStringToObject (project, "org_id", org_id);
    free (org_id);
    char *body = cJSON_PrintUnformatted (request);
    cJSON_Delete (request);
    status = s_request (self, "POST", "/projects", body, &reply, error, error_size);
    free (body);
    if (status < 200 || status > 299) {
        cJSON_Delete (reply);
        return -1;
    }
    const char *neon_id = cJSON_GetStringValue (cJSON_GetObjectItem (cJSON_GetObjectItem (reply, "project"), "id"));
    if (!neon_id || !*neon_id) {
        snprintf (error, error_size, "Neon created a project but gave no project id");
        cJSON_Delete (reply);
        return -1;
    }
    info->external_id = strdup (neon_id);
    //  From here on it exists: the caller keeps its id, so that it goes
    //  even if this process dies while Neon makes it
    dbprovider_made (made, project_id, neon_id);
    char *escaped_id = curl_easy_escape (NULL, neon_id, 0);
    int rc = s_wait_operations (self, escaped_id, cJSON_GetObjectItem (reply, "operations"), error, error_size);
    const char *uri = cJSON_GetStringValue (cJSON_GetObjectItem (
                      cJSON_GetArrayItem (cJSON_GetObjectItem (reply, "connection_uris"), 0), "connection_uri"));
    if (rc == 0 && uri)
        info->url = strdup (uri);
    else
    if (rc == 0) {
        const char *database = cJSON_GetStringValue (cJSON_GetObjectItem (
                               cJSON_GetArrayItem (cJSON_GetObjectItem (reply, "databases"), 0), "name"));
        const char *role = cJSON_GetStringValue (cJSON_GetObjectItem (
                           cJSON_GetArrayItem (cJSON_GetObjectItem (reply, "roles"), 0), "name"));
        char *escaped_db = curl_easy_escape (NULL, database? database: "neondb", 0);
        char *escaped_role = curl_easy_escape (NULL, role? role: "neondb_owner", 0);
        char *path = zsys_sprintf ("/projects/%s/connection_uri?database_name=%s&role_name=%s",
                                   escaped_id, escaped_db, escaped_role);
        curl_free (escaped_db);
        curl_free (escaped_role);
        cJSON *answer;
        status = s_request (self, "GET", path, NULL, &answer, error, error_size);
        free (path);
        const char *found = cJSON_GetStringValue (cJSON_GetObjectItem (answer, "uri"));
        if (status >= 200 && status <= 299 && found)
            info->url = strdup (found);
        else {
            if (status >= 200 && status <= 299)
                snprintf (error, error_size, "Neon gave no connection URI");
            rc = -1;
        }
        cJSON_Delete (answer);
    }
    if (rc == 0 && strncmp (info->url, "postgres", 8)) {
        snprintf (error, error_size, "Neon gave a connection URI that is not PostgreSQL's");
        rc = -1;
    }
    curl_free (escaped_id);
    cJSON_Delete (reply);
    if (rc) {
        //  The id stays in info when the project does: the caller tries again
        if (s_delete_project (self, info->external_id, ignored, sizeof ignored))
            zsys_warning ("database: could not delete Neon project %s after a failed provision"
                          " (tried again later): %s", info->external_id, ignored);
        else
            zstr_free (&info->external_id);
        return -1;
    }
    return 0;
}

const dbprovider_ops_t dbprovider_neon_ops = {
    "neon", s_create, s_provision, s_deprovision, s_destroy
};


//  --------------------------------------------------------------------------
//  Selftest: settings, and an API that is not there (the fake Neon is in
//  tests/e2e/test_database.py)

void
dbprovider_neon_test (bool verbose)
{
    printf ("dbprovider_neon: ");
    config_t config;
    char error [DBPROVIDER_ERROR_SIZE];
    char *argv [] = { "clowdy", "--database-provider", "neon", "--neon-api-key", "k",
                      "--neon-api-url", "http://127.0.0.1:9/api/v2/", NULL };
    assert (config_parse (&config, 7, argv, error, sizeof error) == 0);
    dbprovider_t *provider = dbprovider_new (&config, error, sizeof error);
    assert (provider);
    dbprovider_info_t info;
    assert (dbprovider_provision (provider, "abcdefabcdef", &info, error, sizeof error) == -1);
    assert (strstr (error, "Could not reach the Neon API"));
    assert (dbprovider_deprovision (provider, "abcdefabcdef", NULL, error, sizeof error) == 0);
    assert (dbprovider_deprovision (provider, "abcdefabcdef", "p-1", error, sizeof error) == -1);
    dbprovider_destroy (&provider);
    config_reset (&config);
    char *bad [] = { "clowdy", "--database-provider", "neon", "--neon-api-key", "k", "--neon-api-url", "ftp://x", NULL };
    assert (config_parse (&config, 7, bad, error, sizeof error) == 0);
    assert (dbprovider_new (&config, error, sizeof error) == NULL);
    config_reset (&config);
    char *none [] = { "clowdy", "--database-provider", "neon", NULL };
    unsetenv ("NEON_API_KEY");
    assert (config_parse (&config, 3, none, error, sizeof error) == -1);
    assert (strstr (error, "--neon-api-key"));
    config_reset (&config);
    if (verbose)
        printf ("(%s) ", error);
    printf ("OK\n");
}
