/*  =========================================================================
    util - small helpers every part shares: ids, timestamps, slugs
    ========================================================================= */

#ifndef CLOWDY_UTIL_H_INCLUDED
#define CLOWDY_UTIL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UTIL_ID_SIZE 13             //  12 lowercase hex characters + NUL
#define UTIL_TIME_SIZE 32           //  "2026-11-22T02:15:00.123456Z" + NUL

//  Fill id with 12 random lowercase hex characters (getrandom).
void
    util_new_id (char id [UTIL_ID_SIZE]);

//  True if text is exactly 12 lowercase hex characters.
bool
    util_is_id (const char *text);

//  Current UTC time as ISO 8601 with microseconds and a Z suffix.
void
    util_now_iso (char out [UTIL_TIME_SIZE]);

//  Monotonic clock in microseconds.
int64_t
    util_monotonic_us (void);

void
    util_test (bool verbose);

#endif
