#  The sandbox and what runs inside it (runner.py is installed next to the binary's source).
list (APPEND CLOWDY_SOURCES runtime/sandbox.c)
list (APPEND CLOWDY_SELFTESTS sandbox)
#  sandbox: cgroup v1/v2 backends
list (APPEND CLOWDY_SOURCES runtime/cgroup.c)
list (APPEND CLOWDY_SELFTESTS cgroup)
#  sandbox: pid 1 of every sandbox, a tiny static program built next to the binaries
#  (sandbox.c finds it beside /proc/self/exe, else at CLOWDY_SANDBOX_INIT)
add_executable (clowdy-sandbox-init runtime/sandbox_init.c)
target_compile_options (clowdy-sandbox-init PRIVATE -fno-sanitize=all)
target_link_options (clowdy-sandbox-init PRIVATE -static -fno-sanitize=all)
set_property (SOURCE runtime/sandbox.c APPEND PROPERTY COMPILE_DEFINITIONS
              CLOWDY_SANDBOX_INIT="${CMAKE_BINARY_DIR}/clowdy-sandbox-init")
cmake_language (DEFER CALL add_dependencies clowdy_lib clowdy-sandbox-init)
#  sandbox: clowdy-zygote, a python with the runner imported that each runner
#  sandbox is forked from (sandbox.c finds it like clowdy-sandbox-init). It links
#  libpython and sandbox.c's child side; never sanitized (its children run python).
#  Only the functions it calls are kept (--gc-sections), and those use neither
#  czmq nor libseccomp, so it does not link them: with them came 26 more shared
#  libraries (libzmq, libsodium, krb5, gcrypt...), 198 mappings instead of 55,
#  which every sandbox's fork copied and every sandbox's python carried
pkg_check_modules (PYEMBED REQUIRED IMPORTED_TARGET python3-embed)
pkg_check_modules (ZYGOTE_DEPS REQUIRED libczmq libseccomp)
add_executable (clowdy-zygote runtime/zygote.c runtime/sandbox.c runtime/cgroup.c)
target_include_directories (clowdy-zygote PRIVATE ${CMAKE_SOURCE_DIR} ${ZYGOTE_DEPS_INCLUDE_DIRS})
target_link_libraries (clowdy-zygote PkgConfig::PYEMBED pthread m)
target_compile_options (clowdy-zygote PRIVATE -fno-sanitize=all -ffunction-sections -fdata-sections)
target_link_options (clowdy-zygote PRIVATE -fno-sanitize=all -Wl,--gc-sections)
set_property (SOURCE runtime/sandbox.c APPEND PROPERTY COMPILE_DEFINITIONS
              CLOWDY_ZYGOTE="${CMAKE_BINARY_DIR}/clowdy-zygote")
cmake_language (DEFER CALL add_dependencies clowdy_lib clowdy-zygote)
#  runner protocol: frame codec between the worker and runtime/runner.py
list (APPEND CLOWDY_SOURCES runtime/proto.c)
list (APPEND CLOWDY_SELFTESTS proto)
