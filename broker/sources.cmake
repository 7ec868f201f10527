#  The messaging fabric: endpoint configuration, the codec between actors and the worker registry.
list (APPEND CLOWDY_SOURCES broker/endpoints.c broker/msg.c broker/registry.c)
list (APPEND CLOWDY_SELFTESTS endpoints msg registry)
