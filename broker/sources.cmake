#  The messaging fabric: endpoint configuration and the codec between actors.
list (APPEND CLOWDY_SOURCES broker/endpoints.c broker/msg.c)
list (APPEND CLOWDY_SELFTESTS endpoints msg)
