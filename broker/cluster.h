/*  =========================================================================
    cluster - the operator's view of the workers, as assignment last saw them

    GET /api/cluster answers from a control-plane pool thread, while the
    workers are known only to assignment's thread. Assignment publishes a
    snapshot (JSON text) whenever it ticks or its workers change; a reader
    takes a copy. Only this text crosses threads, under one mutex, never a
    pointer into assignment's state. It is a read-only view for dashboards:
    a message round trip into assignment's loop per poll would buy nothing
    (the view is already as fresh as the last heartbeat) and would put
    dashboard traffic on the invoke path's thread.

        cluster_publish ("{\"workers\":[],\"memory_mb\":0,\"cores\":0}");
        char *view = cluster_snapshot ();   //  NULL before the first publish
        free (view);
    ========================================================================= */

#ifndef CLOWDY_CLUSTER_H_INCLUDED
#define CLOWDY_CLUSTER_H_INCLUDED

#include <czmq.h>

//  Replace the published view (JSON text, copied).
void
    cluster_publish (const char *json);

//  A copy of the view last published, or NULL; caller frees it.
char *
    cluster_snapshot (void);

//  Forget the view (at shutdown, and between tests).
void
    cluster_reset (void);

void
    cluster_test (bool verbose);

#endif
