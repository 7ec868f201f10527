#  The sandbox and what runs inside it (runner.py is installed next to the binary's source).
list (APPEND CLOWDY_SOURCES runtime/sandbox.c)
list (APPEND CLOWDY_SELFTESTS sandbox)
#  sandbox: cgroup v1/v2 backends
list (APPEND CLOWDY_SOURCES runtime/cgroup.c)
list (APPEND CLOWDY_SELFTESTS cgroup)
#  runner protocol: frame codec between the worker and runtime/runner.py
list (APPEND CLOWDY_SOURCES runtime/proto.c)
list (APPEND CLOWDY_SELFTESTS proto)
