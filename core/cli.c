/*  =========================================================================
    cli - the clowdy command line client (see cli.h)

    Every command is one or two REST calls: names are resolved to ids
    first (GET /api/functions or /api/projects: an id, else an exact name,
    else a project's slug), then the call itself. What the server says goes
    to the user as it is: the reply's JSON with --json, else a short human
    form (tables with a header row); a refusal prints the server's `detail`
    (each field of a 422 list on its own line) and exits 1. Nothing is
    retried: a script sees the first answer.
    ========================================================================= */

#include <czmq.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <signal.h>
#include "core/cli.h"
#include "core/fetch.h"

#define CLI_DEFAULT_SERVER  "http://127.0.0.1:8000"
#define CLI_REPLY_MAX       (256 * 1024 * 1024)
#define CLI_FILE_MAX        (8 * 1024 * 1024)

typedef struct {
    const char *server;             //  Base URL, without a trailing '/'
    const char *token;              //  $CLOWDY_TOKEN, or NULL
    bool json;                      //  --json: print the server's JSON
    int argc;                       //  Positional arguments (options taken out)
    char *argv [32];
    const char *project;            //  --project
    const char *memory;             //  --memory
    const char *timeout;            //  --timeout
    const char *data;               //  --data
    const char *description;        //  --description
    bool network;                   //  --network
    bool async;                     //  --async
    bool follow;                    //  --follow
    bool plain;                     //  --plain (env set: not a secret)
} cli_t;

static const char *S_USAGE =
    "usage: clowdy fn deploy NAME FILE.py [--project P] [--memory MB] [--timeout S] [--network]\n"
    "       clowdy fn invoke NAME [--data JSON|@FILE] [--async]\n"
    "       clowdy fn logs NAME [--follow]\n"
    "       clowdy fn list\n"
    "       clowdy fn rollback NAME VERSION\n"
    "       clowdy project create NAME [--description TEXT] | project list\n"
    "       clowdy route add PROJECT METHOD PATH FUNCTION [--description TEXT]\n"
    "       clowdy route list PROJECT | route rm PROJECT ROUTE_ID\n"
    "       clowdy env set PROJECT KEY VALUE [--plain] | env list PROJECT | env rm PROJECT KEY\n"
    "options: --server URL (default $CLOWDY_SERVER or " CLI_DEFAULT_SERVER "), --json;\n"
    "         $CLOWDY_TOKEN is sent as the API token\n";

bool
cli_is_command (const char *command)
{
    return command && (streq (command, "fn") || streq (command, "project") || streq (command, "route")
                    || streq (command, "env"));
}

//  --------------------------------------------------------------------------
//  HTTP

//  One request: the status (or -1 when the server was not reached, said on
//  stderr) and the parsed reply (NULL when it is not JSON)
static int
s_call (cli_t *self, const char *method, const char *path, const char *body, cJSON **reply)
{
    *reply = NULL;
    CURL *curl = curl_easy_init ();
    if (!curl) {
        fprintf (stderr, "clowdy: cannot start libcurl\n");
        return -1;
    }
    char *url = zsys_sprintf ("%s%s", self->server, path);
    struct curl_slist *headers = curl_slist_append (NULL, "Content-Type: application/json");
    char *authorization = NULL;
    if (self->token && *self->token) {
        authorization = zsys_sprintf ("Authorization: Bearer %s", self->token);
        headers = curl_slist_append (headers, authorization);
    }
    fetch_buffer_t buffer = { .cap = CLI_REPLY_MAX };
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, fetch_buffer_write);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, &buffer);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT, 10L);
    if (body)
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, body);
    CURLcode rc = curl_easy_perform (curl);
    long status = -1;
    if (rc == CURLE_OK) {
        curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
        *reply = buffer.data ? cJSON_Parse (buffer.data) : NULL;
    }
    else
        fprintf (stderr, "clowdy: cannot reach %s: %s\n", self->server, curl_easy_strerror (rc));
    fetch_buffer_reset (&buffer);
    curl_slist_free_all (headers);
    zstr_free (&authorization);
    zstr_free (&url);
    curl_easy_cleanup (curl);
    return (int) status;
}

//  Say why the server refused: its detail, or each problem of a 422 list
static void
s_print_error (int status, cJSON *reply)
{
    cJSON *detail = cJSON_GetObjectItem (reply, "detail");
    if (cJSON_IsString (detail))
        fprintf (stderr, "clowdy: %s\n", detail->valuestring);
    else
    if (cJSON_IsArray (detail)) {
        cJSON *problem;
        cJSON_ArrayForEach (problem, detail) {
            cJSON *loc = cJSON_GetObjectItem (problem, "loc");
            cJSON *last = cJSON_GetArrayItem (loc, cJSON_GetArraySize (loc) - 1);
            fprintf (stderr, "clowdy: %s: %s\n", cJSON_IsString (last) ? last->valuestring : "body",
                     cJSON_GetStringValue (cJSON_GetObjectItem (problem, "msg")) ?: "invalid");
        }
    }
    else
        fprintf (stderr, "clowdy: the server answered %d\n", status);
}

//  A call that must answer 200: its reply, or NULL with the error said
static cJSON *
s_call_ok (cli_t *self, const char *method, const char *path, const char *body)
{
    cJSON *reply;
    int status = s_call (self, method, path, body, &reply);
    if (status == 200 || (status == 202 && reply))
        return reply ? reply : cJSON_CreateNull ();
    if (status >= 0)
        s_print_error (status, reply);
    cJSON_Delete (reply);
    return NULL;
}

static void
s_print_json (cJSON *json)
{
    char *text = cJSON_Print (json);
    printf ("%s\n", text);
    free (text);
}

//  Percent-encode a path segment; heap
static char *
s_escape (const char *text)
{
    char *out = (char *) malloc (3 * strlen (text) + 1);
    size_t used = 0;
    for (const unsigned char *c = (const unsigned char *) text; *c; c++)
        if (isalnum (*c) || strchr ("-_.~", *c))
            out [used++] = (char) *c;
        else
            used += (size_t) sprintf (out + used, "%%%02X", *c);
    out [used] = 0;
    return out;
}

//  --------------------------------------------------------------------------
//  Names to ids

static const char *
s_str (cJSON *json, const char *field)
{
    const char *value = cJSON_GetStringValue (cJSON_GetObjectItem (json, field));
    return value ? value : "";
}

//  The project named by text (id, name or slug): a copy of it, or NULL said
static cJSON *
s_project (cli_t *self, const char *text)
{
    cJSON *projects = s_call_ok (self, "GET", "/api/projects", NULL);
    if (!projects)
        return NULL;
    cJSON *found = NULL;
    const char *fields [] = { "id", "name", "slug" };
    for (size_t field = 0; field < 3 && !found; field++) {
        cJSON *project;
        cJSON_ArrayForEach (project, projects)
            if (!found && streq (s_str (project, fields [field]), text))
                found = cJSON_Duplicate (project, true);
    }
    cJSON_Delete (projects);
    if (!found)
        fprintf (stderr, "clowdy: no project '%s'\n", text);
    return found;
}

//  The function named by text (id or name, the newest of that name; within
//  project_id when given): a copy, or NULL (said when complain)
static cJSON *
s_function (cli_t *self, const char *text, const char *project_id, bool complain)
{
    cJSON *functions = s_call_ok (self, "GET", "/api/functions", NULL);
    if (!functions)
        return NULL;
    cJSON *found = NULL, *function;
    cJSON_ArrayForEach (function, functions)
        if (!found && streq (s_str (function, "id"), text))
            found = cJSON_Duplicate (function, true);
    //  Newest first: the first of that name is the newest
    cJSON_ArrayForEach (function, functions)
        if (!found && streq (s_str (function, "name"), text)
        &&  (!project_id || streq (s_str (function, "project_id"), project_id)))
            found = cJSON_Duplicate (function, true);
    cJSON_Delete (functions);
    if (!found && complain)
        fprintf (stderr, "clowdy: no function '%s'\n", text);
    return found;
}

//  A file's contents (heap), or NULL said
static char *
s_read_file (const char *path)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        fprintf (stderr, "clowdy: cannot read %s: %s\n", path, strerror (errno));
        return NULL;
    }
    char *data = (char *) malloc (CLI_FILE_MAX + 1);
    size_t size = fread (data, 1, CLI_FILE_MAX + 1, file);
    fclose (file);
    if (size > CLI_FILE_MAX) {
        fprintf (stderr, "clowdy: %s is larger than %d bytes\n", path, CLI_FILE_MAX);
        free (data);
        return NULL;
    }
    data [size] = 0;
    return data;
}

//  --------------------------------------------------------------------------
//  fn

static bool
s_number (const char *text, long min, long max, long *value)
{
    char *end;
    errno = 0;
    long number = text ? strtol (text, &end, 10) : 0;
    if (!text || !*text || *end || errno || number < min || number > max)
        return false;
    *value = number;
    return true;
}

static int
s_fn_deploy (cli_t *self)
{
    if (self->argc != 4)
        return 2;
    const char *name = self->argv [2];
    long memory = 0, timeout = 0;
    if ((self->memory && !s_number (self->memory, 1, 1 << 20, &memory))
    ||  (self->timeout && !s_number (self->timeout, 1, 1 << 20, &timeout))) {
        fprintf (stderr, "clowdy: --memory and --timeout take whole numbers (MB, seconds)\n");
        return 2;
    }
    char *code = s_read_file (self->argv [3]);
    if (!code)
        return 1;
    cJSON *project = self->project ? s_project (self, self->project) : NULL;
    if (self->project && !project) {
        free (code);
        return 1;
    }
    const char *project_id = project ? s_str (project, "id") : NULL;
    cJSON *existing = s_function (self, name, project_id, false);
    cJSON *body = cJSON_CreateObject ();
    cJSON_AddStringToObject (body, "code", code);
    free (code);
    if (memory)
        cJSON_AddNumberToObject (body, "memory_mb", (double) memory);
    if (timeout)
        cJSON_AddNumberToObject (body, "timeout_seconds", (double) timeout);
    if (self->network)
        cJSON_AddBoolToObject (body, "network_enabled", true);
    cJSON *reply;
    if (existing) {
        char *path = zsys_sprintf ("/api/functions/%s", s_str (existing, "id"));
        char *text = cJSON_PrintUnformatted (body);
        reply = s_call_ok (self, "PUT", path, text);
        free (text);
        zstr_free (&path);
    }
    else {
        cJSON_AddStringToObject (body, "name", name);
        if (project_id)
            cJSON_AddStringToObject (body, "project_id", project_id);
        char *text = cJSON_PrintUnformatted (body);
        reply = s_call_ok (self, "POST", "/api/functions", text);
        free (text);
    }
    cJSON_Delete (body);
    int rc = reply ? 0 : 1;
    if (reply && self->json)
        s_print_json (reply);
    else
    if (reply)
        printf ("%s %s (%s): version %d is active\n", existing ? "Updated" : "Created", s_str (reply, "name"),
                s_str (reply, "id"), (int) cJSON_GetNumberValue (cJSON_GetObjectItem (reply, "active_version")));
    cJSON_Delete (reply);
    cJSON_Delete (existing);
    cJSON_Delete (project);
    return rc;
}

static int
s_fn_invoke (cli_t *self)
{
    if (self->argc != 3)
        return 2;
    char *data = NULL;
    if (self->data && self->data [0] == '@') {
        data = s_read_file (self->data + 1);
        if (!data)
            return 1;
    }
    else
        data = strdup (self->data ? self->data : "{}");
    cJSON *input = cJSON_Parse (data);
    free (data);
    if (!input) {
        fprintf (stderr, "clowdy: --data is not JSON\n");
        return 2;
    }
    cJSON *function = s_function (self, self->argv [2], NULL, true);
    if (!function) {
        cJSON_Delete (input);
        return 1;
    }
    cJSON *body = cJSON_CreateObject ();
    cJSON_AddItemToObject (body, "input", input);
    char *text = cJSON_PrintUnformatted (body);
    cJSON_Delete (body);
    char *path = zsys_sprintf ("/api/invoke/%s%s", s_str (function, "id"), self->async ? "?async=1" : "");
    cJSON_Delete (function);
    cJSON *reply;
    int status = s_call (self, "POST", path, text, &reply);
    free (text);
    zstr_free (&path);
    int rc = 1;
    if (status < 0)
        rc = 1;                     //  not reached: said already
    else
    if (self->async && status == 202) {
        if (self->json)
            s_print_json (reply);
        else
            printf ("Queued: invocation %s\n", s_str (reply, "invocation_id"));
        rc = 0;
    }
    else
    if (self->async && status == 200)
        fprintf (stderr, "clowdy: this server has no async queue; it ran the call\n");
    else
    if (status == 200 && cJSON_IsObject (reply)) {
        bool success = cJSON_IsTrue (cJSON_GetObjectItem (reply, "success"));
        if (self->json)
            s_print_json (reply);
        else
        if (success)
            s_print_json (cJSON_GetObjectItem (reply, "output"));
        if (!success)
            fprintf (stderr, "clowdy: the function failed: %s\n", s_str (reply, "error"));
        rc = success ? 0 : 1;
    }
    else
        s_print_error (status, reply);
    cJSON_Delete (reply);
    return rc;
}

static void
s_print_invocation (cJSON *invocation)
{
    printf ("%s  %-7s  %5d ms  %s  v%d\n", s_str (invocation, "created_at"), s_str (invocation, "status"),
            (int) cJSON_GetNumberValue (cJSON_GetObjectItem (invocation, "duration_ms")),
            s_str (invocation, "id"), (int) cJSON_GetNumberValue (cJSON_GetObjectItem (invocation, "version")));
    const char *logs = s_str (invocation, "logs");
    if (*logs)
        printf ("%s%s", logs, logs [strlen (logs) - 1] == '\n' ? "" : "\n");
    if (strneq (s_str (invocation, "status"), "success") && *s_str (invocation, "error"))
        printf ("error: %s\n", s_str (invocation, "error"));
}

static int
s_fn_logs (cli_t *self)
{
    if (self->argc != 3)
        return 2;
    cJSON *function = s_function (self, self->argv [2], NULL, true);
    if (!function)
        return 1;
    char *path = zsys_sprintf ("/api/functions/%s/invocations?limit=%d", s_str (function, "id"),
                               self->follow ? 50 : 20);
    cJSON_Delete (function);
    zhashx_t *seen = zhashx_new ();
    int rc = 0;
    while (true) {
        cJSON *list = s_call_ok (self, "GET", path, NULL);
        if (!list) {
            rc = 1;
            break;
        }
        //  Newest first from the server: printed oldest first
        for (int index = cJSON_GetArraySize (list) - 1; index >= 0; index--) {
            cJSON *invocation = cJSON_GetArrayItem (list, index);
            const char *id = s_str (invocation, "id");
            if (zhashx_lookup (seen, id))
                continue;
            zhashx_insert (seen, id, (void *) 1);
            if (self->json) {
                char *text = cJSON_PrintUnformatted (invocation);
                printf ("%s\n", text);
                free (text);
            }
            else
                s_print_invocation (invocation);
        }
        cJSON_Delete (list);
        fflush (stdout);
        if (!self->follow || zsys_interrupted)
            break;
        zclock_sleep (1000);
        if (zsys_interrupted)
            break;
    }
    zhashx_destroy (&seen);
    zstr_free (&path);
    return rc;
}

static int
s_fn_list (cli_t *self)
{
    if (self->argc != 2)
        return 2;
    cJSON *functions = s_call_ok (self, "GET", "/api/functions", NULL);
    if (!functions)
        return 1;
    if (self->json)
        s_print_json (functions);
    else {
        printf ("%-12s  %-24s  %-7s  %-6s  %-7s  %s\n", "ID", "NAME", "VERSION", "MEMORY", "TIMEOUT", "PROJECT");
        cJSON *function;
        cJSON_ArrayForEach (function, functions)
            printf ("%-12s  %-24s  %-7d  %-6d  %-7d  %s\n", s_str (function, "id"), s_str (function, "name"),
                    (int) cJSON_GetNumberValue (cJSON_GetObjectItem (function, "active_version")),
                    (int) cJSON_GetNumberValue (cJSON_GetObjectItem (function, "memory_mb")),
                    (int) cJSON_GetNumberValue (cJSON_GetObjectItem (function, "timeout_seconds")),
                    *s_str (function, "project_id") ? s_str (function, "project_id") : "-");
    }
    cJSON_Delete (functions);
    return 0;
}

static int
s_fn_rollback (cli_t *self)
{
    long version;
    if (self->argc != 4 || !s_number (self->argv [3], 1, INT32_MAX, &version))
        return 2;
    cJSON *function = s_function (self, self->argv [2], NULL, true);
    if (!function)
        return 1;
    char *path = zsys_sprintf ("/api/functions/%s/versions/%ld", s_str (function, "id"), version);
    cJSON_Delete (function);
    cJSON *reply = s_call_ok (self, "PUT", path, NULL);
    zstr_free (&path);
    if (reply && self->json)
        s_print_json (reply);
    else
    if (reply)
        printf ("%s (%s): version %d is active\n", s_str (reply, "name"), s_str (reply, "id"),
                (int) cJSON_GetNumberValue (cJSON_GetObjectItem (reply, "active_version")));
    int rc = reply ? 0 : 1;
    cJSON_Delete (reply);
    return rc;
}

//  --------------------------------------------------------------------------
//  project, route, env

static int
s_project_command (cli_t *self, const char *action)
{
    if (streq (action, "create") && self->argc == 3) {
        cJSON *body = cJSON_CreateObject ();
        cJSON_AddStringToObject (body, "name", self->argv [2]);
        if (self->description)
            cJSON_AddStringToObject (body, "description", self->description);
        char *text = cJSON_PrintUnformatted (body);
        cJSON_Delete (body);
        cJSON *reply = s_call_ok (self, "POST", "/api/projects", text);
        free (text);
        if (reply && self->json)
            s_print_json (reply);
        else
        if (reply)
            printf ("Created project %s (%s), slug %s\n", s_str (reply, "name"), s_str (reply, "id"),
                    s_str (reply, "slug"));
        int rc = reply ? 0 : 1;
        cJSON_Delete (reply);
        return rc;
    }
    if (streq (action, "list") && self->argc == 2) {
        cJSON *projects = s_call_ok (self, "GET", "/api/projects", NULL);
        if (!projects)
            return 1;
        if (self->json)
            s_print_json (projects);
        else {
            printf ("%-12s  %-24s  %-24s  %s\n", "ID", "NAME", "SLUG", "FUNCTIONS");
            cJSON *project;
            cJSON_ArrayForEach (project, projects)
                printf ("%-12s  %-24s  %-24s  %d\n", s_str (project, "id"), s_str (project, "name"),
                        s_str (project, "slug"),
                        (int) cJSON_GetNumberValue (cJSON_GetObjectItem (project, "function_count")));
        }
        cJSON_Delete (projects);
        return 0;
    }
    return 2;
}

//  The shared tail of 'route rm' and 'env rm': DELETE one item under a
//  project's collection (its name escaped); the reply, or NULL (said)
static cJSON *
s_delete_item (cli_t *self, const char *collection, const char *name)
{
    char *escaped = s_escape (name);
    char *item_path = zsys_sprintf ("%s/%s", collection, escaped);
    free (escaped);
    cJSON *reply = s_call_ok (self, "DELETE", item_path, NULL);
    zstr_free (&item_path);
    if (reply && !self->json)
        printf ("%s\n", s_str (reply, "detail"));
    return reply;
}

//  The end of a project item command: print --json, free what it held,
//  and its exit status
static int
s_item_done (cli_t *self, cJSON *reply, char **path_p, cJSON **project_p)
{
    if (reply && self->json)
        s_print_json (reply);
    int rc = reply ? 0 : 1;
    cJSON_Delete (reply);
    zstr_free (path_p);
    cJSON_Delete (*project_p);
    *project_p = NULL;
    return rc;
}

static int
s_route_command (cli_t *self, const char *action)
{
    bool add = streq (action, "add") && self->argc == 6;
    bool list = streq (action, "list") && self->argc == 3;
    bool remove = streq (action, "rm") && self->argc == 4;
    if (!add && !list && !remove)
        return 2;
    cJSON *project = s_project (self, self->argv [2]);
    if (!project)
        return 1;
    char *path = zsys_sprintf ("/api/projects/%s/routes", s_str (project, "id"));
    cJSON *reply = NULL;
    if (add) {
        cJSON *function = s_function (self, self->argv [5], s_str (project, "id"), false);
        if (!function)
            function = s_function (self, self->argv [5], NULL, true);
        if (function) {
            cJSON *body = cJSON_CreateObject ();
            cJSON_AddStringToObject (body, "function_id", s_str (function, "id"));
            cJSON_AddStringToObject (body, "method", self->argv [3]);
            cJSON_AddStringToObject (body, "path", self->argv [4]);
            if (self->description)
                cJSON_AddStringToObject (body, "description", self->description);
            char *text = cJSON_PrintUnformatted (body);
            cJSON_Delete (body);
            reply = s_call_ok (self, "POST", path, text);
            free (text);
            if (reply && !self->json)
                printf ("Added route %s %s %s -> %s\n", s_str (reply, "id"), s_str (reply, "method"),
                        s_str (reply, "path"), self->argv [5]);
        }
        cJSON_Delete (function);
    }
    else
    if (list) {
        reply = s_call_ok (self, "GET", path, NULL);
        if (reply && !self->json) {
            printf ("%-12s  %-7s  %-32s  %s\n", "ID", "METHOD", "PATH", "FUNCTION");
            cJSON *route;
            cJSON_ArrayForEach (route, reply)
                printf ("%-12s  %-7s  %-32s  %s\n", s_str (route, "id"), s_str (route, "method"),
                        s_str (route, "path"), s_str (route, "function_id"));
        }
    }
    else
        reply = s_delete_item (self, path, self->argv [3]);
    return s_item_done (self, reply, &path, &project);
}

static int
s_env_command (cli_t *self, const char *action)
{
    bool set = streq (action, "set") && self->argc == 5;
    bool list = streq (action, "list") && self->argc == 3;
    bool remove = streq (action, "rm") && self->argc == 4;
    if (!set && !list && !remove)
        return 2;
    cJSON *project = s_project (self, self->argv [2]);
    if (!project)
        return 1;
    char *path = zsys_sprintf ("/api/projects/%s/env", s_str (project, "id"));
    cJSON *reply = NULL;
    if (set) {
        cJSON *body = cJSON_CreateObject ();
        cJSON_AddStringToObject (body, "key", self->argv [3]);
        cJSON_AddStringToObject (body, "value", self->argv [4]);
        cJSON_AddBoolToObject (body, "is_secret", !self->plain);
        char *text = cJSON_PrintUnformatted (body);
        cJSON_Delete (body);
        reply = s_call_ok (self, "POST", path, text);
        free (text);
        if (reply && !self->json)
            printf ("Set %s in %s%s\n", s_str (reply, "key"), s_str (project, "name"),
                    cJSON_IsTrue (cJSON_GetObjectItem (reply, "is_secret")) ? " (secret)" : "");
    }
    else
    if (list) {
        reply = s_call_ok (self, "GET", path, NULL);
        if (reply && !self->json) {
            printf ("%-32s  %-6s  %s\n", "KEY", "SECRET", "VALUE");
            cJSON *variable;
            cJSON_ArrayForEach (variable, reply)
                printf ("%-32s  %-6s  %s\n", s_str (variable, "key"),
                        cJSON_IsTrue (cJSON_GetObjectItem (variable, "is_secret")) ? "yes" : "no",
                        s_str (variable, "value"));
        }
    }
    else
        reply = s_delete_item (self, path, self->argv [3]);
    return s_item_done (self, reply, &path, &project);
}

//  --------------------------------------------------------------------------
//  The command line

//  Take the options out of argv; -1 on a usage error (said)
static int
s_parse (cli_t *self, int argc, char *argv [])
{
    const char *server = getenv ("CLOWDY_SERVER");
    self->server = server && *server ? server : CLI_DEFAULT_SERVER;
    self->token = getenv ("CLOWDY_TOKEN");
    for (int index = 1; index < argc; index++) {
        const char *arg = argv [index];
        const char *value = index + 1 < argc ? argv [index + 1] : NULL;
        const char **target = streq (arg, "--server") ? &self->server
                            : streq (arg, "--project") ? &self->project
                            : streq (arg, "--memory") ? &self->memory
                            : streq (arg, "--timeout") ? &self->timeout
                            : streq (arg, "--data") ? &self->data
                            : streq (arg, "--description") ? &self->description : NULL;
        if (target) {
            if (!value) {
                fprintf (stderr, "clowdy: %s needs a value\n", arg);
                return -1;
            }
            *target = value;
            index++;
        }
        else
        if (streq (arg, "--json"))
            self->json = true;
        else
        if (streq (arg, "--network"))
            self->network = true;
        else
        if (streq (arg, "--async"))
            self->async = true;
        else
        if (streq (arg, "--follow") || streq (arg, "-f"))
            self->follow = true;
        else
        if (streq (arg, "--plain"))
            self->plain = true;
        else
        if (strncmp (arg, "--", 2) == 0 && arg [2]) {
            fprintf (stderr, "clowdy: unknown option %s\n", arg);
            return -1;
        }
        else
        if (self->argc < (int) (sizeof self->argv / sizeof self->argv [0]))
            self->argv [self->argc++] = (char *) arg;
    }
    //  "http://host:8000/" and "http://host:8000" are the same server
    static char server_copy [1024];
    snprintf (server_copy, sizeof server_copy, "%s", self->server);
    size_t length = strlen (server_copy);
    while (length && server_copy [length - 1] == '/')
        server_copy [--length] = 0;
    self->server = server_copy;
    return 0;
}

int
cli_main (int argc, char *argv [])
{
    cli_t self = { 0 };
    if (s_parse (&self, argc, argv)) {
        fputs (S_USAGE, stderr);
        return 2;
    }
    //  Quiet: no CZMQ banner or log lines on a client's terminal
    zsys_set_logstream (NULL);
    zsys_handler_set (NULL);
    signal (SIGINT, SIG_DFL);
    curl_global_init (CURL_GLOBAL_DEFAULT);
    const char *command = self.argc > 0 ? self.argv [0] : "";
    const char *action = self.argc > 1 ? self.argv [1] : "";
    int rc = 2;
    if (streq (command, "fn")) {
        rc = streq (action, "deploy") ? s_fn_deploy (&self)
           : streq (action, "invoke") ? s_fn_invoke (&self)
           : streq (action, "logs") ? s_fn_logs (&self)
           : streq (action, "list") ? s_fn_list (&self)
           : streq (action, "rollback") ? s_fn_rollback (&self) : 2;
    }
    else
    if (streq (command, "project"))
        rc = s_project_command (&self, action);
    else
    if (streq (command, "route"))
        rc = s_route_command (&self, action);
    else
    if (streq (command, "env"))
        rc = s_env_command (&self, action);
    if (rc == 2)
        fputs (S_USAGE, stderr);
    curl_global_cleanup ();
    return rc;
}

//  --------------------------------------------------------------------------
//  Selftest: parsing (the commands themselves run against a real server in
//  tests/e2e/test_cli.py)

void
cli_test (bool verbose)
{
    printf ("cli: ");
    assert (cli_is_command ("fn") && cli_is_command ("env") && !cli_is_command ("token") && !cli_is_command (NULL));
    cli_t self = { 0 };
    char *argv [] = { "clowdy", "fn", "deploy", "--json", "hello", "--memory", "256", "app.py", "--network",
                      "--server", "http://h:1//", NULL };
    assert (s_parse (&self, 11, argv) == 0);
    assert (self.argc == 4 && streq (self.argv [0], "fn") && streq (self.argv [2], "hello")
         && streq (self.argv [3], "app.py"));
    assert (self.json && self.network && streq (self.memory, "256") && streq (self.server, "http://h:1"));
    cli_t other = { 0 };
    char *bad [] = { "clowdy", "fn", "list", "--bogus", NULL };
    assert (s_parse (&other, 4, bad) == -1);
    cli_t missing = { 0 };
    char *no_value [] = { "clowdy", "fn", "invoke", "x", "--data", NULL };
    assert (s_parse (&missing, 5, no_value) == -1);
    long number;
    assert (s_number ("12", 1, 20, &number) && number == 12);
    assert (!s_number ("12x", 1, 20, &number) && !s_number ("0", 1, 20, &number) && !s_number (NULL, 1, 2, &number));
    char *escaped = s_escape ("A b/c");
    assert (streq (escaped, "A%20b%2Fc"));
    free (escaped);
    printf ("OK\n");
}
