#ifndef CLOWDY_CONFIG_H_INCLUDED
#define CLOWDY_CONFIG_H_INCLUDED
#include <stdbool.h>
void
    config_test (bool verbose);
#endif
