#  Shared non-actor code. One line a module: its .c file and its selftest name.
list (APPEND CLOWDY_SOURCES core/util.c)      # ids, timestamps
list (APPEND CLOWDY_SELFTESTS util)
list (APPEND CLOWDY_SOURCES core/config.c)    # command line and environment
list (APPEND CLOWDY_SELFTESTS config)
list (APPEND CLOWDY_SOURCES core/logstream.c) # log records kept on one line each
list (APPEND CLOWDY_SELFTESTS logstream)
list (APPEND CLOWDY_SOURCES core/store.c)     # SQLite store and migrations
list (APPEND CLOWDY_SELFTESTS store)
list (APPEND CLOWDY_SOURCES core/api.c)       # REST route table, dispatcher, shared replies
list (APPEND CLOWDY_SELFTESTS api)
list (APPEND CLOWDY_SOURCES core/api_projects.c)   # projects, requirements, database status
list (APPEND CLOWDY_SELFTESTS api_projects)
list (APPEND CLOWDY_SOURCES core/api_functions.c)  # functions, versions, invocation logs
list (APPEND CLOWDY_SELFTESTS api_functions)
list (APPEND CLOWDY_SOURCES core/api_routes.c)     # routes and env vars
list (APPEND CLOWDY_SELFTESTS api_routes)
list (APPEND CLOWDY_SOURCES core/api_stats.c)      # stats and their histograms
list (APPEND CLOWDY_SELFTESTS api_stats)
list (APPEND CLOWDY_SOURCES core/api_cluster.c)    # the workers, as assignment sees them
list (APPEND CLOWDY_SELFTESTS api_cluster)
list (APPEND CLOWDY_SOURCES core/api_tokens.c)     # the caller's API tokens
list (APPEND CLOWDY_SELFTESTS api_tokens)
list (APPEND CLOWDY_SOURCES core/api_events.c)     # async invokes, failed events, schedules
list (APPEND CLOWDY_SELFTESTS api_events)
list (APPEND CLOWDY_SOURCES core/asyncq.c)    # the durable queue of async invocations
list (APPEND CLOWDY_SELFTESTS asyncq)
list (APPEND CLOWDY_SOURCES core/schedule.c)  # rate() and cron expressions
list (APPEND CLOWDY_SELFTESTS schedule)
list (APPEND CLOWDY_SOURCES core/cli.c)          # the clowdy command line client (fn, project, route, env)
list (APPEND CLOWDY_SELFTESTS cli)
list (APPEND CLOWDY_SOURCES core/lambda.c)       # the Lambda-compatible API under /2015-03-31
list (APPEND CLOWDY_SELFTESTS lambda)
list (APPEND CLOWDY_SOURCES core/apipool.c)   # control-plane threads, off the http loop
list (APPEND CLOWDY_SELFTESTS apipool)
list (APPEND CLOWDY_SOURCES core/sigv4.c)     # AWS SigV4 signatures, and sealed token secrets
list (APPEND CLOWDY_SELFTESTS sigv4)
list (APPEND CLOWDY_SOURCES core/tokens.c)    # API tokens in the store
list (APPEND CLOWDY_SELFTESTS tokens)
list (APPEND CLOWDY_SOURCES core/route.c)     # gateway route matcher
list (APPEND CLOWDY_SELFTESTS route)
list (APPEND CLOWDY_SOURCES core/gwmap.c)     # gateway event and result mapping
list (APPEND CLOWDY_SELFTESTS gwmap)
list (APPEND CLOWDY_SOURCES core/jsonfit.c)   # JSON kept as written on its way to and from functions
list (APPEND CLOWDY_SELFTESTS jsonfit)
list (APPEND CLOWDY_SOURCES core/auth.c)      # the token check and the key cache
list (APPEND CLOWDY_SELFTESTS auth)
list (APPEND CLOWDY_SOURCES core/fetch.c)     # capped download buffer for libcurl
list (APPEND CLOWDY_SELFTESTS fetch)
list (APPEND CLOWDY_SOURCES core/jwks.c)      # JWKS fetching and JWK-to-key
list (APPEND CLOWDY_SELFTESTS jwks)
list (APPEND CLOWDY_SOURCES core/llm.c)       # OpenAI-compatible chat completions client
list (APPEND CLOWDY_SELFTESTS llm)
list (APPEND CLOWDY_SOURCES core/tools.c)     # the assistant's tools, as the calling user
list (APPEND CLOWDY_SELFTESTS tools)
list (APPEND CLOWDY_SOURCES core/dbprovider.c)        # managed databases: the interface, and sqlite files
list (APPEND CLOWDY_SELFTESTS dbprovider)
list (APPEND CLOWDY_SOURCES core/dbprovider_postgres.c)   # ... a database + role on a PostgreSQL server
list (APPEND CLOWDY_SELFTESTS dbprovider_postgres)
list (APPEND CLOWDY_SOURCES core/dbprovider_neon.c)   # ... a Neon project over its REST API
list (APPEND CLOWDY_SELFTESTS dbprovider_neon)
list (APPEND CLOWDY_SOURCES core/layers.c)    # requirements checks, layer keys, layer file walks
list (APPEND CLOWDY_SELFTESTS layers)
list (APPEND CLOWDY_SOURCES core/layerpack.c) # layers as one tar: packed when sealed, unpacked safely
list (APPEND CLOWDY_SELFTESTS layerpack)
