/*  =========================================================================
    config - the server's settings, from defaults, environment and command line

    One table lists every option once: its flag, its variable, its default,
    and where it lands in config_t. Parsing walks the table three times:
    defaults, then the environment, then argv, so precedence is plain.
    ========================================================================= */

#include <czmq.h>
#include <stdio.h>
#include "core/config.h"

typedef enum { OPT_STRING, OPT_LONG } opt_type_t;

typedef struct {
    const char *flag;               //  Command-line flag without "--"
    const char *variable;           //  Environment variable
    opt_type_t type;                //  How to parse it
    size_t offset;                  //  Field in config_t
    const char *fallback;           //  Default, as text
    long min, max;                  //  Range for numbers
    const char *help;               //  One line for --help
} opt_t;

#define STR(field, flag, var, fallback, help) \
    { flag, var, OPT_STRING, offsetof (config_t, field), fallback, 0, 0, help }
#define NUM(field, flag, var, fallback, min, max, help) \
    { flag, var, OPT_LONG, offsetof (config_t, field), fallback, min, max, help }

static const opt_t s_options [] = {
    STR (role, "role", "CLOWDY_ROLE", "all", "all (one process), control (no workers) or worker (workers only; set CLOWDY_ENDPOINT_WORKER)"),
    STR (listen, "listen", "CLOWDY_LISTEN", "127.0.0.1:8000", "HOST:PORT to serve HTTP on (port 0: any free port)"),
    STR (data_dir, "data-dir", "CLOWDY_DATA_DIR", "data", "directory for the SQLite database and function files"),
    STR (log_level, "log-level", "CLOWDY_LOG_LEVEL", "info", "error, warning, info or debug"),
    STR (web_dir, "web-dir", "CLOWDY_WEB_DIR", CLOWDY_SOURCE_DIR "/web/dist", "built web UI served at /"),
    STR (frontend_url, "frontend-url", "CLOWDY_FRONTEND_URL", "http://localhost:5173", "origin allowed by CORS"),
    STR (gateway_host, "gateway-host", "CLOWDY_GATEWAY_HOST", "", "host name that serves only functions (gateway, invoke): their answers keep cookies and scripts there; elsewhere they are sandboxed"),
    STR (auth, "auth", "CLOWDY_AUTH", "local", "local (no credentials, loopback only) or jwt"),
    STR (jwks_url, "jwks-url", "CLOWDY_JWKS_URL", "", "JWKS URL of the OIDC provider (jwt mode)"),
    STR (jwt_issuer, "jwt-issuer", "CLOWDY_JWT_ISSUER", "", "required token issuer (jwt mode, optional)"),
    STR (jwt_audience, "jwt-audience", "CLOWDY_JWT_AUDIENCE", "", "required token audience (jwt mode, optional)"),
    STR (cluster_admins, "cluster-admins", "CLOWDY_CLUSTER_ADMINS", "", "user ids (USER_ID,...) who see GET /api/cluster whole: worker hosts, ids, calls running (jwt mode; others see totals and capacity)"),
    STR (clerk_publishable_key, "clerk-publishable-key", "CLOWDY_CLERK_PUBLISHABLE_KEY", "", "Clerk key for the UI's sign-in"),
    STR (runtime_dir, "runtime-dir", "CLOWDY_RUNTIME_DIR", CLOWDY_SOURCE_DIR "/runtime", "directory holding runner.py"),
    STR (python, "python", "CLOWDY_PYTHON", "/usr/bin/python3", "Python interpreter inside sandboxes"),
    STR (cgroup_name, "cgroup", "CLOWDY_CGROUP", "clowdy", "parent cgroup for sandboxes"),
    STR (curve_dir, "curve-dir", "CLOWDY_CURVE_DIR", "", "CurveZMQ certificates securing tcp links (see 'clowdy keys')"),
    STR (ai_base_url, "ai-base-url", "CLOWDY_AI_BASE_URL", "https://api.groq.com/openai/v1", "OpenAI-compatible API of the assistant's model (Groq, OpenAI, Ollama, llama.cpp, vLLM)"),
    STR (ai_model, "ai-model", "CLOWDY_AI_MODEL", "meta-llama/llama-4-scout-17b-16e-instruct", "model the assistant uses"),
    STR (ai_api_key, "ai-api-key", "CLOWDY_AI_API_KEY", "", "API key of the model provider (GROQ_API_KEY is read too)"),
    NUM (ai_max_steps, "ai-max-steps", "CLOWDY_AI_MAX_STEPS", "8", 1, 100, "model calls per chat message at most"),
    NUM (ai_timeout, "ai-timeout", "CLOWDY_AI_TIMEOUT", "120", 1, 3600, "time budget of one chat message, in seconds"),
    NUM (max_body, "max-body", "CLOWDY_MAX_BODY", "6291456", 1024, 1L << 30, "request body limit in bytes"),
    NUM (max_body_total_mb, "max-body-total-mb", "CLOWDY_MAX_BODY_TOTAL_MB", "256", 1, 1L << 20, "request bodies held at once, over all connections, in MiB (past it: 503)"),
    NUM (http_max_connections, "http-max-connections", "CLOWDY_HTTP_MAX_CONNECTIONS", "4096", 16, 1000000, "open HTTP connections at once"),
    NUM (http_max_per_client, "http-max-per-client", "CLOWDY_HTTP_MAX_PER_CLIENT", "256", 0, 1000000, "open HTTP connections per client address (0: no limit; raise it behind a proxy)"),
    NUM (http_idle_timeout, "http-idle-timeout", "CLOWDY_HTTP_IDLE_TIMEOUT", "10", 1, 3600, "seconds a new connection may stay silent before its first request"),
    NUM (http_timeout, "http-timeout", "CLOWDY_HTTP_TIMEOUT", "120", 1, 86400, "seconds of silence after which a connection that has sent a request is closed"),
    NUM (workers, "workers", "CLOWDY_WORKERS", "2", 1, 64, "worker actors"),
    NUM (prewarm, "prewarm", "CLOWDY_PREWARM", "2", 0, 64, "empty sandboxes kept ready per worker"),
    NUM (prewarm_projects, "prewarm-projects", "CLOWDY_PREWARM_PROJECTS", "4", 0, 64, "projects (functions with a layer, database or network) that keep one pre-started sandbox each per worker, with the modules their functions import already imported"),
    NUM (zygote, "zygote", "CLOWDY_ZYGOTE", "1", 0, 1, "1: runner sandboxes are forked from a python with the runner already imported (a zygote per creator thread); 0: each starts its own python"),
    NUM (idle_seconds, "idle-seconds", "CLOWDY_IDLE_SECONDS", "600", 1, 86400, "idle warm environments are reaped after this"),
    NUM (memory_budget_mb, "memory-budget-mb", "CLOWDY_MEMORY_BUDGET_MB", "4096", 64, 1L << 20, "memory this process's workers offer environments (split among its --workers); the cluster's budget is the sum over every worker"),
    NUM (cores, "cores", "CLOWDY_CORES", "0", 0, 4096, "CPU cores this process's workers offer placement (0: the CPUs it may use, its cgroup's quota included)"),
    NUM (heartbeat_ms, "heartbeat-ms", "CLOWDY_HEARTBEAT_MS", "200", 10, 10000, "heartbeat interval on the worker link (and ZMTP heartbeats on tcp)"),
    NUM (worker_expiry_ms, "worker-expiry-ms", "CLOWDY_WORKER_EXPIRY_MS", "600", 50, 600000, "silence after which a tcp worker (or the control process, seen from a worker) is gone"),
    NUM (max_concurrency, "max-concurrency", "CLOWDY_MAX_CONCURRENCY", "8", 1, 1024, "environments at once per function"),
    NUM (queue_depth, "queue-depth", "CLOWDY_QUEUE_DEPTH", "64", 0, 100000, "calls waiting per function before 429"),
    NUM (function_share, "function-share", "CLOWDY_FUNCTION_SHARE", "50", 1, 100, "percent of the memory budget one function's environments may hold while other functions wait for memory"),
    NUM (owner_share, "owner-share", "CLOWDY_OWNER_SHARE", "75", 1, 100, "percent of the memory budget one user's functions may hold while other users' functions wait for memory"),
    NUM (max_memory_mb, "max-memory-mb", "CLOWDY_MAX_MEMORY_MB", "2048", 64, 2048, "largest memory_mb a function may ask for"),
    NUM (max_timeout_seconds, "max-timeout", "CLOWDY_MAX_TIMEOUT", "900", 1, 900, "largest timeout_seconds a function may ask for"),
    NUM (max_functions, "max-functions", "CLOWDY_MAX_FUNCTIONS", "5000", 0, 100000000, "functions one user may keep (0: no limit)"),
    NUM (max_projects, "max-projects", "CLOWDY_MAX_PROJECTS", "200", 0, 100000000, "projects one user may keep (0: no limit)"),
    NUM (max_versions, "max-versions", "CLOWDY_MAX_VERSIONS", "100", 0, 100000000, "versions kept per function besides the one active before a save: a new one removes the oldest past it (0: all)"),
    NUM (max_code_mb, "max-code-mb", "CLOWDY_MAX_CODE_MB", "2048", 0, 1L << 30, "MB of code one user's functions may keep, every kept version counted (0: no limit)"),
    NUM (max_routes, "max-routes", "CLOWDY_MAX_ROUTES", "1000", 0, 100000000, "gateway routes per project (0: no limit)"),
    NUM (max_env_vars, "max-env-vars", "CLOWDY_MAX_ENV_VARS", "100", 0, 100000000, "env vars per project (0: no limit)"),
    NUM (max_tokens, "max-tokens", "CLOWDY_MAX_TOKENS", "200", 0, 100000000, "API tokens one user may keep (0: no limit)"),
    NUM (retention, "retention", "CLOWDY_RETENTION", "10000", 10, 100000000, "invocation records kept per function"),
    NUM (retention_mb, "retention-mb", "CLOWDY_RETENTION_MB", "64", 1, 1L << 20, "MB of invocation records (input, output, error, logs) kept per function; the oldest go first"),
    NUM (record_max_bytes, "record-max-bytes", "CLOWDY_RECORD_MAX_BYTES", "65536", 1024, 1L << 30, "bytes of an invocation's input, output, error and logs each kept in its record; a longer one keeps its start and is marked truncated"),
    STR (database_provider, "database-provider", "CLOWDY_DATABASE_PROVIDER", "sqlite", "managed databases per project: sqlite (a file), postgres or neon"),
    NUM (sqlite_db_max_mb, "sqlite-db-max-mb", "CLOWDY_SQLITE_DB_MAX_MB", "100", 1, 1L << 20, "largest a project's SQLite database may grow (sqlite provider)"),
    STR (postgres_admin_url, "postgres-admin-url", "CLOWDY_POSTGRES_ADMIN_URL", "", "libpq conninfo of a role with CREATEDB and CREATEROLE (postgres provider)"),
    STR (postgres_socket_dir, "postgres-socket-dir", "CLOWDY_POSTGRES_SOCKET_DIR", "", "the server's unix socket dir, mounted into sandboxes (default: the admin URL's host when it is a dir)"),
    STR (postgres_function_host, "postgres-function-host", "CLOWDY_POSTGRES_FUNCTION_HOST", "", "HOST[:PORT] functions use instead of the socket (worker hosts)"),
    STR (neon_api_key, "neon-api-key", "NEON_API_KEY", "", "Neon API key (neon provider)"),
    STR (neon_api_url, "neon-api-url", "CLOWDY_NEON_API_URL", "https://console.neon.tech/api/v2", "Neon API base URL"),
    STR (pip_index_url, "pip-index-url", "CLOWDY_PIP_INDEX_URL", "", "package index for dependency builds (PEP 503 simple URL; default pip's, PyPI); one on 127.0.0.1/localhost is reached from the build sandbox"),
    STR (pip_extra_index_url, "pip-extra-index-url", "CLOWDY_PIP_EXTRA_INDEX_URL", "", "a second index for dependency builds"),
    STR (pip_find_links, "pip-find-links", "CLOWDY_PIP_FIND_LINKS", "", "a URL or a host directory of wheels for dependency builds (a directory is mounted read-only)"),
    NUM (build_timeout, "build-timeout", "CLOWDY_BUILD_TIMEOUT", "600", 5, 86400, "seconds a dependency build may take"),
    NUM (layers_max_mb, "layers-max-mb", "CLOWDY_LAYERS_MAX_MB", "4096", 1, 1L << 20, "MB all dependency layers may take in the data dir (and one layer at most)"),
    NUM (layers_grace, "layers-grace", "CLOWDY_LAYERS_GRACE", "3600", 0, 30L * 86400, "seconds an unused dependency layer is kept before it is removed"),
    NUM (reuse, "reuse", "CLOWDY_REUSE", "1", 0, 1, "0: a new sandbox and process for every call (benchmark baseline)"),
    NUM (async_concurrency, "async-concurrency", "CLOWDY_ASYNC_CONCURRENCY", "4", 1, 1024, "async invocations running at once (kept apart so a flood of events cannot starve direct calls)"),
    NUM (async_max_queued, "async-max-queued", "CLOWDY_ASYNC_MAX_QUEUED", "10000", 1, 10000000, "async events waiting over all functions (past it: 503)"),
    NUM (async_max_per_function, "async-max-per-function", "CLOWDY_ASYNC_MAX_PER_FUNCTION", "1000", 1, 10000000, "async events waiting per function (past it: 429)"),
    NUM (async_max_failed, "async-max-failed", "CLOWDY_ASYNC_MAX_FAILED", "1000", 1, 10000000, "failed async events kept per function (the oldest are dropped past it)"),
    NUM (async_backoff_ms, "async-backoff-ms", "CLOWDY_ASYNC_BACKOFF_MS", "1000", 1, 3600000, "delay before an async call's first retry; it doubles with each retry (at most 15 minutes)"),
    NUM (test_clock_scale, "test-clock-scale", "CLOWDY_TEST_CLOCK_SCALE", "1", 1, 86400, "FOR TESTS ONLY: schedule rates fire this many times faster (rate(1 minute) every second at 60)"),
    { NULL, NULL, OPT_STRING, 0, NULL, 0, 0, NULL }
};

static int
s_apply (config_t *config, const opt_t *opt, const char *value, const char *source,
         char *error, size_t error_size)
{
    char *field = (char *) config + opt->offset;
    if (opt->type == OPT_STRING) {
        free (*(char **) field);
        *(char **) field = strdup (value);
        return 0;
    }
    char *end;
    errno = 0;
    long number = strtol (value, &end, 10);
    if (*value == 0 || *end || errno || number < opt->min || number > opt->max) {
        snprintf (error, error_size, "%s: '%s' is not a whole number from %ld to %ld",
                  source, value, opt->min, opt->max);
        return -1;
    }
    *(long *) field = number;
    return 0;
}

int
config_parse (config_t *config, int argc, char **argv, char *error, size_t error_size)
{
    memset (config, 0, sizeof *config);
    const opt_t *opt;
    for (opt = s_options; opt->flag; opt++)
        s_apply (config, opt, opt->fallback, opt->flag, error, error_size);
    for (opt = s_options; opt->flag; opt++) {
        const char *value = getenv (opt->variable);
        if (value && s_apply (config, opt, value, opt->variable, error, error_size))
            return -1;
    }
    for (int argn = 1; argn < argc; argn++) {
        const char *arg = argv [argn];
        if (streq (arg, "--help") || streq (arg, "-h")) {
            config->help = true;
            continue;
        }
        if (streq (arg, "--version")) {
            config->version = true;
            continue;
        }
        if (strncmp (arg, "--", 2) != 0) {
            snprintf (error, error_size, "unexpected argument '%s' (see --help)", arg);
            return -1;
        }
        const char *name = arg + 2;
        const char *equals = strchr (name, '=');
        size_t name_len = equals ? (size_t) (equals - name) : strlen (name);
        for (opt = s_options; opt->flag; opt++)
            if (strlen (opt->flag) == name_len && strncmp (opt->flag, name, name_len) == 0)
                break;
        if (!opt->flag) {
            snprintf (error, error_size, "unknown option '%s' (see --help)", arg);
            return -1;
        }
        const char *value = equals ? equals + 1 : NULL;
        if (!value) {
            if (argn + 1 >= argc) {
                snprintf (error, error_size, "option '%s' needs a value", arg);
                return -1;
            }
            value = argv [++argn];
        }
        if (s_apply (config, opt, value, arg, error, error_size))
            return -1;
    }
    //  GROQ_API_KEY, as the original reads it, when no other key is given
    if (*config->ai_api_key == 0 && getenv ("GROQ_API_KEY")) {
        free (config->ai_api_key);
        config->ai_api_key = strdup (getenv ("GROQ_API_KEY"));
    }
    if (strncmp (config->ai_base_url, "http://", 7) && strncmp (config->ai_base_url, "https://", 8)) {
        snprintf (error, error_size, "--ai-base-url must start with http:// or https://, not '%s'",
                  config->ai_base_url);
        return -1;
    }
    if (strneq (config->role, "all") && strneq (config->role, "control") && strneq (config->role, "worker")) {
        snprintf (error, error_size, "--role must be 'all', 'control' or 'worker', not '%s'", config->role);
        return -1;
    }
    if (strneq (config->auth, "local") && strneq (config->auth, "jwt")) {
        snprintf (error, error_size, "--auth must be 'local' or 'jwt', not '%s'", config->auth);
        return -1;
    }
    if (streq (config->auth, "jwt") && *config->jwks_url == 0) {
        snprintf (error, error_size, "--auth jwt needs --jwks-url (or CLOWDY_JWKS_URL)");
        return -1;
    }
    if (strneq (config->database_provider, "sqlite") && strneq (config->database_provider, "postgres")
    &&  strneq (config->database_provider, "neon")) {
        snprintf (error, error_size, "--database-provider must be 'sqlite', 'postgres' or 'neon', not '%s'",
                  config->database_provider);
        return -1;
    }
    if (streq (config->database_provider, "postgres") && *config->postgres_admin_url == 0) {
        snprintf (error, error_size, "--database-provider postgres needs --postgres-admin-url (or CLOWDY_POSTGRES_ADMIN_URL)");
        return -1;
    }
    if (streq (config->database_provider, "neon") && *config->neon_api_key == 0) {
        snprintf (error, error_size, "--database-provider neon needs --neon-api-key (or NEON_API_KEY)");
        return -1;
    }
    const char *levels [] = { "error", "warning", "info", "debug", NULL };
    bool known = false;
    for (const char **level = levels; *level; level++)
        known = known || streq (*level, config->log_level);
    if (!known) {
        snprintf (error, error_size, "--log-level must be error, warning, info or debug");
        return -1;
    }
    return 0;
}

bool
config_ai_configured (const config_t *config)
{
    return *config->ai_api_key || strneq (config->ai_base_url, "https://api.groq.com/openai/v1");
}

void
config_reset (config_t *config)
{
    for (const opt_t *opt = s_options; opt->flag; opt++)
        if (opt->type == OPT_STRING) {
            char **field = (char **) ((char *) config + opt->offset);
            free (*field);
            *field = NULL;
        }
}

void
config_usage (FILE *out)
{
    fprintf (out, "Usage: clowdy [OPTIONS]\n"
                  "Runs the Clowdy serverless platform: every actor in one process.\n\nOptions:\n");
    for (const opt_t *opt = s_options; opt->flag; opt++) {
        char flag [64];
        snprintf (flag, sizeof flag, "--%s %s", opt->flag, opt->type == OPT_LONG ? "N" : "VALUE");
        fprintf (out, "  %-28s %s\n  %-28s (env %s, default %s)\n",
                 flag, opt->help, "", opt->variable, *opt->fallback ? opt->fallback : "none");
    }
    fprintf (out, "  %-28s %s\n  %-28s %s\n", "--help", "show this text", "--version", "show the version");
}

void
config_test (bool verbose)
{
    printf ("config: ");
    config_t config;
    char error [256];
    char *plain [] = { "clowdy", NULL };
    unsetenv ("CLOWDY_LISTEN");
    assert (config_parse (&config, 1, plain, error, sizeof error) == 0);
    assert (streq (config.listen, "127.0.0.1:8000"));
    assert (config.max_body == 6291456);
    assert (config.max_body_total_mb == 256 && config.http_max_per_client == 256 && config.http_idle_timeout == 10);
    assert (streq (config.auth, "local"));
    //  What one tenant may take: shares of the memory budget, record sizes
    assert (config.function_share == 50 && config.owner_share == 75);
    assert (config.record_max_bytes == 65536 && config.retention_mb == 64);
    assert (streq (config.gateway_host, ""));            //  No functions' own origin unless asked
    config_reset (&config);
    char *gateway_host [] = { "clowdy", "--gateway-host", "fn.example.com", NULL };
    assert (config_parse (&config, 3, gateway_host, error, sizeof error) == 0);
    assert (streq (config.gateway_host, "fn.example.com"));
    config_reset (&config);

    setenv ("CLOWDY_LISTEN", "127.0.0.1:9000", 1);
    setenv ("CLOWDY_WORKERS", "3", 1);
    char *args [] = { "clowdy", "--listen", "127.0.0.1:0", "--data-dir=/tmp/x", "--version", NULL };
    assert (config_parse (&config, 5, args, error, sizeof error) == 0);
    assert (streq (config.listen, "127.0.0.1:0"));       //  argv beats environment
    assert (streq (config.data_dir, "/tmp/x"));
    assert (config.workers == 3);                         //  environment beats default
    assert (config.version);
    config_reset (&config);
    config_reset (&config);
    unsetenv ("CLOWDY_LISTEN");

    setenv ("CLOWDY_WORKERS", "lots", 1);
    assert (config_parse (&config, 1, plain, error, sizeof error) == -1);
    assert (strstr (error, "CLOWDY_WORKERS"));
    config_reset (&config);
    unsetenv ("CLOWDY_WORKERS");

    //  The assistant's key: its own option first, GROQ_API_KEY as a fallback
    setenv ("GROQ_API_KEY", "gsk-test", 1);
    assert (config_parse (&config, 1, plain, error, sizeof error) == 0);
    assert (streq (config.ai_api_key, "gsk-test") && config.ai_max_steps == 8);
    config_reset (&config);
    char *keyed [] = { "clowdy", "--ai-api-key", "mine", NULL };
    assert (config_parse (&config, 3, keyed, error, sizeof error) == 0);
    assert (streq (config.ai_api_key, "mine"));
    config_reset (&config);
    unsetenv ("GROQ_API_KEY");
    char *bad_url [] = { "clowdy", "--ai-base-url", "file:///etc", NULL };
    assert (config_parse (&config, 3, bad_url, error, sizeof error) == -1);
    config_reset (&config);

    char *bad1 [] = { "clowdy", "--nope", NULL };
    assert (config_parse (&config, 2, bad1, error, sizeof error) == -1);
    config_reset (&config);
    char *bad2 [] = { "clowdy", "--listen", NULL };
    assert (config_parse (&config, 2, bad2, error, sizeof error) == -1);
    config_reset (&config);
    char *bad3 [] = { "clowdy", "--auth", "magic", NULL };
    assert (config_parse (&config, 3, bad3, error, sizeof error) == -1);
    config_reset (&config);
    char *bad_share [] = { "clowdy", "--function-share", "0", NULL };
    assert (config_parse (&config, 3, bad_share, error, sizeof error) == -1);
    assert (strstr (error, "from 1 to 100"));
    config_reset (&config);
    char *bad4 [] = { "clowdy", "--auth", "jwt", NULL };
    assert (config_parse (&config, 3, bad4, error, sizeof error) == -1);
    assert (strstr (error, "jwks"));
    config_reset (&config);
    printf ("OK\n");
}
