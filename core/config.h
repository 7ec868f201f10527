/*  =========================================================================
    config - the server's settings, from defaults, environment and command line

    Every option has a command-line form and an environment variable
    (--data-dir / CLOWDY_DATA_DIR); the command line wins. config_parse()
    fills a config_t that main hands, read-only, to the actors.
    ========================================================================= */

#ifndef CLOWDY_CONFIG_H_INCLUDED
#define CLOWDY_CONFIG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char *role;                     //  all, control (no workers) or worker (workers only)
    char *listen;                   //  HOST:PORT for HTTP; port 0 picks a free one
    char *data_dir;                 //  Where clowdy.db and function files live
    char *log_level;                //  error, warning, info or debug
    char *web_dir;                  //  Built UI (web/dist) served at /
    char *frontend_url;             //  CORS origin allowed with credentials
    char *gateway_host;             //  Host name of the functions' own origin, or ""
    char *auth;                     //  "local" or "jwt"
    char *jwks_url;                 //  JWKS for jwt mode
    char *jwt_issuer;               //  Required iss, or empty
    char *jwt_audience;             //  Required aud, or empty
    char *cluster_admins;           //  User ids who see GET /api/cluster whole (auth on), or empty
    char *clerk_publishable_key;    //  Shown to the UI for Clerk sign-in, or empty
    char *runtime_dir;              //  Holds runner.py
    char *python;                   //  Python interpreter used in sandboxes
    char *cgroup_name;              //  Parent cgroup of all sandboxes
    char *curve_dir;                //  CurveZMQ certificates for tcp links, or empty
    char *ai_base_url;              //  OpenAI-compatible chat completions API (…/v1)
    char *ai_model;                 //  Model the assistant asks
    char *ai_api_key;               //  Bearer key for it, or empty (also GROQ_API_KEY)
    long ai_max_steps;              //  Model calls per chat message at most
    long ai_timeout;                //  Time budget of one chat message, in seconds
    char *database_provider;        //  Managed databases: sqlite, postgres or neon
    char *postgres_admin_url;       //  libpq conninfo of the admin role (postgres)
    char *postgres_socket_dir;      //  Server's unix socket dir, or "" (from the admin URL)
    char *postgres_function_host;   //  HOST[:PORT] for functions instead of the socket, or ""
    char *neon_api_key;             //  Neon API key (neon)
    char *neon_api_url;             //  Neon API base URL
    long sqlite_db_max_mb;          //  Size cap of a project's SQLite database
    long max_body;                  //  Request body limit in bytes
    long max_body_total_mb;         //  Bodies held at once over all requests, in MiB
    long http_max_connections;      //  Open HTTP connections at once
    long http_max_per_client;       //  Open HTTP connections per client address (0: no limit)
    long http_idle_timeout;         //  Seconds a new connection may wait before its first request
    long http_timeout;              //  Seconds of silence on a connection that has sent a request
    long workers;                   //  Worker actors (each drives its own sandboxes)
    long prewarm;                   //  Empty sandboxes kept ready per worker
    long prewarm_projects;          //  Projects keeping a pre-started, preloaded sandbox each per worker
    long zygote;                    //  1: runner sandboxes come from a zygote (see runtime/sandbox.c)
    long idle_seconds;              //  Warm environment idle reaper
    long memory_budget_mb;          //  Memory this process's workers offer (the cluster sums them)
    long cores;                     //  Cores this process's workers offer, 0: detect
    long heartbeat_ms;              //  Worker link heartbeat interval
    long worker_expiry_ms;          //  Silence after which the other side of a tcp worker link is gone
    long max_concurrency;           //  Environments at once per function
    long queue_depth;               //  Calls waiting per function before 429
    long function_share;            //  Percent of the memory budget one function may hold while others wait
    long owner_share;               //  Percent of the memory budget one owner's functions may hold while others wait
    long max_memory_mb;             //  Server-set maximum for memory_mb
    long max_timeout_seconds;       //  Server-set maximum for timeout_seconds
    long max_functions;             //  Quotas (0: none): functions per user,
    long max_projects;              //  projects per user,
    long max_versions;              //  versions kept per function,
    long max_code_mb;               //  MB of code per user, kept versions counted,
    long max_routes;                //  routes per project,
    long max_env_vars;              //  env vars per project,
    long max_tokens;                //  API tokens per user
    long retention;                 //  Invocation rows kept per function
    long retention_mb;              //  Stored bytes of invocation records kept per function, in MB
    long record_max_bytes;          //  Bytes of input, output, error and logs each kept per record
    char *pip_index_url;            //  Index for dependency builds, or "" (pip's default)
    char *pip_extra_index_url;      //  A second index, or ""
    char *pip_find_links;           //  URL or host dir of wheels, or ""
    long build_timeout;             //  Seconds a dependency build may take
    long layers_max_mb;             //  MB all layers may take (and one at most)
    long layers_grace;              //  Seconds an unused layer is kept
    long reuse;                     //  1: keep environments warm; 0: one process per call (baseline)
    long async_concurrency;         //  Async events running at once (actors/events.c)
    long async_max_queued;          //  Async events waiting over all functions before 503
    long async_max_per_function;    //  Async events waiting per function before 429
    long async_max_failed;          //  Failed async events kept per function (oldest dropped)
    long async_backoff_ms;          //  Delay before an async event's first retry; doubles each time
    long test_clock_scale;          //  Tests only: schedule rates run this many times faster
    bool help;                      //  --help was given
    bool version;                   //  --version was given
} config_t;

//  What main hands every actor at start-up: read-only configuration and the
//  endpoint table (both outlive the actors).
typedef struct _endpoints_t endpoints_t;
typedef struct {
    const config_t *config;         //  Settings
    endpoints_t *endpoints;         //  Where each actor's service socket lives
    int instance;                   //  Which one, for actors started several times
} actor_args_t;

//  Parse argv (argv[0] is skipped) over the environment and the defaults.
//  Returns 0, or -1 with a message in error (for the user) on a bad option.
int
    config_parse (config_t *config, int argc, char **argv, char *error, size_t error_size);

//  Free the strings; safe twice.
void
    config_reset (config_t *config);

//  Print the usage text.
void
    config_usage (FILE *out);

//  Is a model provider set for the AI assistant? A key, or a base URL of
//  one's own (a local server such as Ollama needs no key).
bool
    config_ai_configured (const config_t *config);

void
    config_test (bool verbose);

#endif
