/*  =========================================================================
    layerserver - serves dependency layers to workers on other hosts

    On the control host, binds a ROUTER at the "layers" endpoint
    (CLOWDY_ENDPOINT_LAYERS=tcp://HOST:PORT to let workers on other hosts
    in, over CurveZMQ with --curve-dir like every tcp link). A worker that
    needs a layer it does not have asks for the layer's archive a chunk at
    a time (LAYER_FETCH hash offset size); each ask is answered LAYER_CHUNK
    (the bytes, the archive's size and the digest recorded when the layer
    was sealed) or LAYER_ERROR (why not). The worker keeps a few asks
    outstanding (credit), so neither side ever holds more than a few chunks.

    Started with actor_args_t (core/config.h). Pipe commands:
        zstr_send (layerserver, "PING");    //  answers "PONG"
    ========================================================================= */

#ifndef CLOWDY_LAYERSERVER_H_INCLUDED
#define CLOWDY_LAYERSERVER_H_INCLUDED

#include <czmq.h>

#define LAYERSERVER_CHUNK   (256 * 1024)    //  bytes a worker asks for at a time, and the most served
#define LAYERSERVER_CREDIT  8               //  asks a worker keeps outstanding

void
    layerserver_actor (zsock_t *pipe, void *args);

void
    layerserver_test (bool verbose);

#endif
