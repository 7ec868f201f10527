/*  =========================================================================
    clowdy_selftest - runs the selftest of one module, or of all of them

    Usage: clowdy_selftest [-v] [NAME ...]
    Each module under actors/, broker/, core/ and runtime/ ends with its own
    x_test (bool verbose); ctest runs each as a separate test.
    ========================================================================= */

#include <czmq.h>
#include "selftests.h"

int
main (int argc, char *argv [])
{
    bool verbose = false;
    int argn = 1;
    if (argn < argc && streq (argv [argn], "-v")) {
        verbose = true;
        argn++;
    }
    int ran = 0;
    for (const selftest_t *t = s_selftests; t->name; t++) {
        bool wanted = argn >= argc;
        for (int i = argn; i < argc; i++)
            if (streq (argv [i], t->name))
                wanted = true;
        if (!wanted)
            continue;
        t->test (verbose);
        ran++;
    }
    if (ran == 0) {
        fprintf (stderr, "clowdy_selftest: no test named");
        for (int i = argn; i < argc; i++)
            fprintf (stderr, " %s", argv [i]);
        fprintf (stderr, "\n");
        return 1;
    }
    return 0;
}
