#ifndef CLOWDY_ROUTE_H_INCLUDED
#define CLOWDY_ROUTE_H_INCLUDED
#include <stdbool.h>
void
    route_test (bool verbose);
#endif
