#  The messaging fabric: the actor start-up handshake, endpoint configuration,
#  the codec between actors, the worker registry, the memory shares, the published cluster view and the poller of the invoke path's actors and the worker's reactor.
list (APPEND CLOWDY_SOURCES broker/actor.c broker/endpoints.c broker/msg.c broker/registry.c broker/shares.c broker/cluster.c broker/poller.c broker/reactor.c)
list (APPEND CLOWDY_SELFTESTS actor endpoints msg registry shares cluster poller reactor)
