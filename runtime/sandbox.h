#ifndef CLOWDY_SANDBOX_H_INCLUDED
#define CLOWDY_SANDBOX_H_INCLUDED
#include <stdbool.h>
void
    sandbox_test (bool verbose);
#endif
