/*  api - placeholder until its work lands.  */
#include <czmq.h>
#include "core/api.h"

void
api_test (bool verbose)
{
    printf ("api: (not built yet) OK\n");
}
