/*  config - placeholder until its work lands; see the issue that builds it.  */
#include <czmq.h>
#include "core/config.h"

void
config_test (bool verbose)
{
    printf ("config: (not built yet) OK\n");
}
