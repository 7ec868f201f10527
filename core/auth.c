/*  auth - placeholder until its work lands; see the issue that builds it.  */
#include <czmq.h>
#include "core/auth.h"

void
auth_test (bool verbose)
{
    printf ("auth: (not built yet) OK\n");
}
