#ifndef CLOWDY_STORE_H_INCLUDED
#define CLOWDY_STORE_H_INCLUDED
#include <stdbool.h>
typedef struct _store_t store_t;
void
    store_test (bool verbose);
#endif
