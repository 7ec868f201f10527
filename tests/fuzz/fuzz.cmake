#  libFuzzer targets, built when -DCLOWDY_FUZZ=ON with clang (tests/fuzz/run does it in build-fuzz/).
#  Each target compiles only the sources it needs, so it builds even while other modules are mid-change.
#  A target fuzz_X reads its seed corpus from tests/fuzz/corpus/X/.
if (NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message (FATAL_ERROR "CLOWDY_FUZZ needs clang: cmake -DCMAKE_C_COMPILER=clang -DCLOWDY_FUZZ=ON")
endif ()

set (CLOWDY_FUZZ_FLAGS -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)

function (clowdy_fuzz_target name)
    add_executable (${name} tests/fuzz/${name}.c ${ARGN})
    target_include_directories (${name} PRIVATE ${CMAKE_SOURCE_DIR})
    target_compile_options (${name} PRIVATE ${CLOWDY_FUZZ_FLAGS})
    target_link_options (${name} PRIVATE ${CLOWDY_FUZZ_FLAGS})
    target_link_libraries (${name} PkgConfig::DEPS pthread m)
endfunction ()

#  Authorization header (JWT, API token) and JWKS parsing
clowdy_fuzz_target (fuzz_auth core/auth.c core/jwks.c core/fetch.c core/util.c)
#  Gateway route patterns, request paths, events and function results
clowdy_fuzz_target (fuzz_gateway core/route.c core/gwmap.c core/jsonfit.c core/util.c)
#  The runner protocol reader (bytes a hostile function writes to its fd)
clowdy_fuzz_target (fuzz_proto runtime/proto.c core/jsonfit.c)
#  Control-plane handlers over an in-memory store
clowdy_fuzz_target (fuzz_api core/api.c core/lambda.c core/api_projects.c core/api_functions.c core/api_routes.c
                    core/api_stats.c core/api_tokens.c core/tokens.c core/sigv4.c core/auth.c core/jwks.c core/fetch.c core/store.c
                    core/util.c core/route.c core/api_events.c core/asyncq.c core/schedule.c core/jsonfit.c core/layers.c core/api_cluster.c broker/cluster.c)
#  The HTTP request path: raw bytes over a loopback connection into the real http actor
clowdy_fuzz_target (fuzz_http actors/http.c broker/actor.c broker/endpoints.c broker/msg.c broker/poller.c
                    core/api.c core/lambda.c core/api_projects.c core/api_functions.c core/api_routes.c core/api_stats.c
                    core/api_tokens.c core/apipool.c core/auth.c core/jwks.c core/fetch.c core/tokens.c core/sigv4.c core/store.c
                    core/util.c core/route.c core/gwmap.c core/jsonfit.c core/config.c
                    core/api_events.c core/asyncq.c core/schedule.c core/layers.c core/api_cluster.c broker/cluster.c)
#  Schedule expressions (rate and cron) and their next firing
clowdy_fuzz_target (fuzz_schedule core/schedule.c)
#  The Lambda API's outside input: SigV4 headers and signed requests, zip archives
clowdy_fuzz_target (fuzz_lambda core/sigv4.c core/lambda.c core/api.c core/api_projects.c core/api_functions.c
                    core/api_routes.c core/api_stats.c core/api_tokens.c core/tokens.c core/auth.c core/jwks.c
                    core/fetch.c core/store.c core/util.c core/route.c core/api_events.c core/asyncq.c
                    core/schedule.c core/jsonfit.c core/layers.c core/api_cluster.c broker/cluster.c)
