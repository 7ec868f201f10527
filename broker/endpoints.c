/*  endpoints - placeholder until its work lands; see the issue that builds it.  */
#include <czmq.h>
#include "broker/endpoints.h"

void
endpoints_test (bool verbose)
{
    printf ("endpoints: (not built yet) OK\n");
}
