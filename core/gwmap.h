#ifndef CLOWDY_GWMAP_H_INCLUDED
#define CLOWDY_GWMAP_H_INCLUDED
#include <stdbool.h>
void
    gwmap_test (bool verbose);
#endif
