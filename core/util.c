/*  =========================================================================
    util - small helpers every part shares: ids, timestamps, slugs
    ========================================================================= */

#include <czmq.h>
#include <sys/random.h>
#include "core/util.h"

void
util_new_id (char id [UTIL_ID_SIZE])
{
    static const char hex [] = "0123456789abcdef";
    unsigned char bytes [6];
    size_t have = 0;
    while (have < sizeof bytes) {
        ssize_t rc = getrandom (bytes + have, sizeof bytes - have, 0);
        if (rc > 0)
            have += (size_t) rc;
    }
    for (size_t i = 0; i < sizeof bytes; i++) {
        id [2 * i] = hex [bytes [i] >> 4];
        id [2 * i + 1] = hex [bytes [i] & 15];
    }
    id [12] = 0;
}

bool
util_is_id (const char *text)
{
    if (!text || strlen (text) != 12)
        return false;
    for (const char *c = text; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return false;
    return true;
}

void
util_now_iso (char out [UTIL_TIME_SIZE])
{
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r (&now.tv_sec, &tm);
    size_t len = strftime (out, UTIL_TIME_SIZE, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf (out + len, UTIL_TIME_SIZE - len, ".%06ldZ", now.tv_nsec / 1000);
}

int64_t
util_monotonic_us (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000000 + now.tv_nsec / 1000;
}

void
util_test (bool verbose)
{
    printf ("util: ");
    char a [UTIL_ID_SIZE], b [UTIL_ID_SIZE];
    util_new_id (a);
    util_new_id (b);
    assert (util_is_id (a));
    assert (util_is_id (b));
    assert (strneq (a, b));
    assert (!util_is_id ("ABCDEF012345"));
    assert (!util_is_id ("abc"));
    assert (!util_is_id (NULL));
    char when [UTIL_TIME_SIZE];
    util_now_iso (when);
    assert (strlen (when) == 27 && when [26] == 'Z' && when [10] == 'T');
    int64_t t0 = util_monotonic_us ();
    assert (util_monotonic_us () >= t0);
    printf ("OK\n");
}
