#ifndef CLOWDY_MSG_H_INCLUDED
#define CLOWDY_MSG_H_INCLUDED
#include <stdbool.h>
void
    msg_test (bool verbose);
#endif
