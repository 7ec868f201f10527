/*  =========================================================================
    cluster - the operator's view of the workers, as assignment last saw them

    One string under one mutex: assignment replaces it, readers copy it.
    ========================================================================= */

#include "broker/cluster.h"

static pthread_mutex_t s_mutex = PTHREAD_MUTEX_INITIALIZER;
static char *s_view = NULL;         //  Last published view, or NULL

void
cluster_publish (const char *json)
{
    char *copy = json ? strdup (json) : NULL;
    pthread_mutex_lock (&s_mutex);
    char *old = s_view;
    s_view = copy;
    pthread_mutex_unlock (&s_mutex);
    free (old);
}

char *
cluster_snapshot (void)
{
    pthread_mutex_lock (&s_mutex);
    char *copy = s_view ? strdup (s_view) : NULL;
    pthread_mutex_unlock (&s_mutex);
    return copy;
}

void
cluster_reset (void)
{
    cluster_publish (NULL);
}

void
cluster_test (bool verbose)
{
    printf ("cluster: ");
    cluster_reset ();
    assert (cluster_snapshot () == NULL);
    cluster_publish ("{\"workers\":[]}");
    char *view = cluster_snapshot ();
    assert (view && streq (view, "{\"workers\":[]}"));
    free (view);
    cluster_publish ("{\"workers\":[1]}");
    view = cluster_snapshot ();
    assert (streq (view, "{\"workers\":[1]}"));
    free (view);
    cluster_reset ();
    assert (cluster_snapshot () == NULL);
    printf ("OK\n");
}
