/*  =========================================================================
    logstream - the log stream that keeps one record on one line

    Log lines carry outside input (paths, methods, names, messages of the
    libraries we use), so every record goes through a stream that writes
    control characters as \xNN: no record can start a line of its own (a
    forged entry) or drive the terminal that shows the log.
    ========================================================================= */

#ifndef CLOWDY_LOGSTREAM_H_INCLUDED
#define CLOWDY_LOGSTREAM_H_INCLUDED

#include <stdbool.h>
#include <stdio.h>

//  A stream over out for zsys_set_logstream: each record CZMQ writes
//  (one fprintf of "TEXT\n") reaches out with its control characters,
//  other than the final newline, escaped. Unbuffered, so records from
//  different threads never merge. NULL if the stream cannot be made.
FILE *
    logstream_new (FILE *out);

//  Selftest
void
    logstream_test (bool verbose);

#endif
