#  The messaging fabric: the actor start-up handshake, endpoint configuration,
#  the codec between actors and the worker registry.
list (APPEND CLOWDY_SOURCES broker/actor.c broker/endpoints.c broker/msg.c broker/registry.c)
list (APPEND CLOWDY_SELFTESTS actor endpoints msg registry)
