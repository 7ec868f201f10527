/*  msg - placeholder until its work lands; see the issue that builds it.  */
#include <czmq.h>
#include "broker/msg.h"

void
msg_test (bool verbose)
{
    printf ("msg: (not built yet) OK\n");
}
