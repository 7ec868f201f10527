/*  =========================================================================
    layerfetch - a worker's thread that brings dependency layers from the
    control host, on a --role worker host

    The worker (actors/worker.c) starts one per worker actor and sends it
    LAYER_WANT hash keep, one at a time; it answers LAYER_FETCHED hash error
    ("" when <data_dir>/layers/<hash> is in place) within LAYERFETCH_MAX_MS.
    It asks the control host's layer server (the "layers" endpoint, see
    actors/layerserver.h) for the layer's archive in chunks, a few asks
    outstanding at a time, writes it under <data_dir>/layers/.fetch-N/,
    checks its sha256 against the digest the control host recorded when it
    sealed the layer, unpacks it refusing anything unsafe, seals it as the
    builder does (root-owned, read-only), trims the cache to
    --layers-max-mb (least recently used first, never one in keep) and
    renames it into place in one step.

    Started with actor_args_t (core/config.h), through actor_start. A pipe
    message other than LAYER_WANT during a fetch ($TERM) ends it.
    ========================================================================= */

#ifndef CLOWDY_LAYERFETCH_H_INCLUDED
#define CLOWDY_LAYERFETCH_H_INCLUDED

#include <czmq.h>

#define LAYERFETCH_IDLE_MS  15000       //  a control host silent this long fails the fetch
#define LAYERFETCH_MAX_MS   300000      //  a fetch ends within this, done or failed
#define LAYERFETCH_WAIT_MS  20000       //  a call waits this long for its layer, then fails clearly

void
    layerfetch_actor (zsock_t *pipe, void *args);

void
    layerfetch_test (bool verbose);

#endif
