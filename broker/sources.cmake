#  The messaging fabric: the actor start-up handshake, endpoint configuration,
#  the codec between actors, the worker registry and the memory shares.
list (APPEND CLOWDY_SOURCES broker/actor.c broker/endpoints.c broker/msg.c broker/registry.c broker/shares.c)
list (APPEND CLOWDY_SELFTESTS actor endpoints msg registry shares)
