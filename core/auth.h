#ifndef CLOWDY_AUTH_H_INCLUDED
#define CLOWDY_AUTH_H_INCLUDED
#include <stdbool.h>
void
    auth_test (bool verbose);
#endif
