/*  =========================================================================
    api_cluster - GET /api/cluster: the workers as the control process sees
    them

    {"workers": [{id, host, state ("ready", "draining" or "lost"),
    memory_mb (what it offers), cores, memory_used_mb, running (calls in
    flight), environments, last_heartbeat_ms (ms since it was last heard
    from)}], "memory_mb": the cluster's budget (the sum), "cores": the sum}.
    It is assignment's own view (broker/cluster.h), at most one heartbeat
    old; in one process it lists the in-process workers. Lost workers stay
    listed (the last few) until they come back.

    Who sees what: the hosts, worker ids and calls running tell one user
    about the machines and about everyone else's traffic, so with auth on
    only the users named by --cluster-admins get that whole view; everyone
    else gets the totals and, per worker, an index, its state, capacity,
    memory in use and environments (enough for the console's card). In
    local mode the operator is the only user and sees it all.
    ========================================================================= */

#include <czmq.h>
#include "broker/cluster.h"
#include "core/api_call.h"

//  ",ID,ID," (a comma around every id, blanks dropped), or NULL: everyone
//  sees the whole view. Set before the threads start, read-only after.
static char *s_admins;

void
api_set_cluster_admins (const char *admins)
{
    free (s_admins);
    s_admins = NULL;
    if (admins) {
        s_admins = zsys_sprintf (",%s,", admins);
        assert (s_admins);
        char *to = s_admins;
        for (const char *from = s_admins; *from; from++)
            if (*from != ' ' && *from != '\t')
                *to++ = *from;
        *to = 0;
    }
}

//  Is the caller one of the cluster admins (or are there no restrictions)?
static bool
s_full_view (api_call_t *call)
{
    if (!s_admins)
        return true;
    const char *user = call->req->user_id;
    if (!user || !*user || strchr (user, ','))
        return false;
    char *needle = zsys_sprintf (",%s,", user);
    bool found = needle && strstr (s_admins, needle) != NULL;
    free (needle);
    return found;
}

//  The reduced view: drop what names a machine or shows others' calls
static void
s_reduce (cJSON *json)
{
    cJSON *workers = cJSON_GetObjectItem (json, "workers");
    int index = 0;
    cJSON *worker;
    cJSON_ArrayForEach (worker, workers) {
        cJSON_DeleteItemFromObject (worker, "id");
        cJSON_DeleteItemFromObject (worker, "host");
        cJSON_DeleteItemFromObject (worker, "running");
        cJSON_DeleteItemFromObject (worker, "why");
        cJSON_AddNumberToObject (worker, "index", index++);
    }
}

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
    if (json && !s_full_view (call))
        s_reduce (json);
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
    assert (api_test_str (worker, "host") && api_test_str (worker, "id"));
    cJSON_Delete (reply);

    //  With auth on, only the admins see hosts, ids and running calls
    api_set_cluster_admins ("root, ops");
    reply = api_test_request (api, "alice", "GET", "/api/cluster", NULL, NULL, 200, NULL);
    worker = cJSON_GetArrayItem (cJSON_GetObjectItem (reply, "workers"), 0);
    assert (!cJSON_GetObjectItem (worker, "host") && !cJSON_GetObjectItem (worker, "id"));
    assert (!cJSON_GetObjectItem (worker, "running"));
    assert (api_test_num (worker, "index") == 0 && api_test_num (worker, "memory_mb") == 4096);
    assert (streq (api_test_str (worker, "state"), "ready") && api_test_num (worker, "environments") == 1);
    assert (api_test_num (reply, "memory_mb") == 4096 && api_test_num (reply, "cores") == 2);
    cJSON_Delete (reply);
    //  Neither a prefix of an admin nor a list-looking id gets in
    reply = api_test_request (api, "roo", "GET", "/api/cluster", NULL, NULL, 200, NULL);
    assert (!cJSON_GetObjectItem (cJSON_GetArrayItem (cJSON_GetObjectItem (reply, "workers"), 0), "host"));
    cJSON_Delete (reply);
    reply = api_test_request (api, "root,ops", "GET", "/api/cluster", NULL, NULL, 200, NULL);
    assert (!cJSON_GetObjectItem (cJSON_GetArrayItem (cJSON_GetObjectItem (reply, "workers"), 0), "host"));
    cJSON_Delete (reply);
    reply = api_test_request (api, "ops", "GET", "/api/cluster", NULL, NULL, 200, NULL);
    worker = cJSON_GetArrayItem (cJSON_GetObjectItem (reply, "workers"), 0);
    assert (streq (api_test_str (worker, "host"), "h") && api_test_num (worker, "running") == 1);
    cJSON_Delete (reply);
    api_set_cluster_admins ("");
    reply = api_test_request (api, "ops", "GET", "/api/cluster", NULL, NULL, 200, NULL);
    assert (!cJSON_GetObjectItem (cJSON_GetArrayItem (cJSON_GetObjectItem (reply, "workers"), 0), "host"));
    cJSON_Delete (reply);
    api_set_cluster_admins (NULL);
    cluster_reset ();
    api_destroy (&api);
    printf ("OK\n");
}
