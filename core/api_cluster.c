/*  =========================================================================
    api_cluster - GET /api/cluster: the workers as the control process sees
    them

    {"workers": [{id, host, state ("ready", "draining" or "lost"),
    memory_mb (what it offers), cores, memory_used_mb, running (calls in
    flight), environments, last_heartbeat_ms (ms since it was last heard
    from)}], "memory_mb": the cluster's budget (the sum), "cores": the sum}.
    It is assignment's own view (broker/cluster.h), at most one heartbeat
    old; in one process it lists the in-process workers. Lost workers stay
    listed (the last few) until they come back. Authenticated like the other
    read endpoints: the workers serve every user, their ids and load are
    not per user.
    ========================================================================= */

#include <czmq.h>
#include "broker/cluster.h"
#include "core/api_call.h"

int
api_cluster (api_call_t *call)
{
    char *view = cluster_snapshot ();
    cJSON *json = view ? cJSON_Parse (view) : NULL;
    free (view);
    if (!json)
        //  Not published yet (the first heartbeat is coming), or no
        //  assignment in this process: no workers
        json = cJSON_Parse ("{\"workers\":[],\"memory_mb\":0,\"cores\":0}");
    return api_reply (call, 200, json);
}

void
api_cluster_test (bool verbose)
{
    printf ("api_cluster: ");
    api_t *api = api_new (NULL);
    cluster_reset ();
    cJSON *reply = api_test_request (api, "alice", "GET", "/api/cluster", NULL, NULL, 200, NULL);
    assert (cJSON_GetArraySize (cJSON_GetObjectItem (reply, "workers")) == 0);
    assert (api_test_num (reply, "memory_mb") == 0);
    cJSON_Delete (reply);
    cluster_publish ("{\"workers\":[{\"id\":\"w1\",\"host\":\"h\",\"state\":\"ready\",\"memory_mb\":4096,"
                     "\"cores\":2,\"memory_used_mb\":128,\"running\":1,\"environments\":1,"
                     "\"last_heartbeat_ms\":120}],\"memory_mb\":4096,\"cores\":2}");
    reply = api_test_request (api, "alice", "GET", "/api/cluster", NULL, NULL, 200, NULL);
    cJSON *worker = cJSON_GetArrayItem (cJSON_GetObjectItem (reply, "workers"), 0);
    assert (streq (api_test_str (worker, "state"), "ready") && api_test_num (worker, "running") == 1);
    assert (api_test_num (reply, "memory_mb") == 4096 && api_test_num (reply, "cores") == 2);
    cJSON_Delete (reply);
    cluster_reset ();
    api_destroy (&api);
    printf ("OK\n");
}
