#  Shared non-actor code. One line a module: its .c file and its selftest name.
list (APPEND CLOWDY_SOURCES core/util.c)      # ids, timestamps
list (APPEND CLOWDY_SELFTESTS util)
list (APPEND CLOWDY_SOURCES core/config.c)    # command line and environment
list (APPEND CLOWDY_SELFTESTS config)
list (APPEND CLOWDY_SOURCES core/store.c)     # SQLite store and migrations
list (APPEND CLOWDY_SELFTESTS store)
list (APPEND CLOWDY_SOURCES core/api.c)       # control-plane REST handlers
list (APPEND CLOWDY_SELFTESTS api)
list (APPEND CLOWDY_SOURCES core/route.c)     # gateway route matcher
list (APPEND CLOWDY_SELFTESTS route)
list (APPEND CLOWDY_SOURCES core/gwmap.c)     # gateway event and result mapping
list (APPEND CLOWDY_SELFTESTS gwmap)
list (APPEND CLOWDY_SOURCES core/auth.c)      # JWT/JWKS and API tokens
list (APPEND CLOWDY_SELFTESTS auth)
list (APPEND CLOWDY_SOURCES core/llm.c)       # OpenAI-compatible chat completions client
list (APPEND CLOWDY_SELFTESTS llm)
list (APPEND CLOWDY_SOURCES core/tools.c)     # the assistant's tools, as the calling user
list (APPEND CLOWDY_SELFTESTS tools)
