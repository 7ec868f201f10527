#  The messaging fabric: the actor start-up handshake, endpoint configuration
#  and the codec between actors.
list (APPEND CLOWDY_SOURCES broker/actor.c broker/endpoints.c broker/msg.c)
list (APPEND CLOWDY_SELFTESTS actor endpoints msg)
