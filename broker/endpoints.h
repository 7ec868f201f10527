#ifndef CLOWDY_ENDPOINTS_H_INCLUDED
#define CLOWDY_ENDPOINTS_H_INCLUDED
#include <stdbool.h>
void
    endpoints_test (bool verbose);
#endif
