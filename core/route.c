/*  route - placeholder until its work lands; see the issue that builds it.  */
#include <czmq.h>
#include "core/route.h"

void
route_test (bool verbose)
{
    printf ("route: (not built yet) OK\n");
}
