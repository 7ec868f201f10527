/*  fuzz_schedule - libFuzzer target for schedule expressions: any text a
    client sends as `expression` reaches schedule_parse, and an accepted one
    must give a next firing after a few instants (with and without the test
    clock scale) that is later than the instant, or none.  */
#include <czmq.h>
#include "core/schedule.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char *text = (char *) malloc (size + 1);
    memcpy (text, data, size);
    text [size] = 0;
    char error [256];
    schedule_t *schedule = schedule_parse (text, error, sizeof error);
    if (schedule) {
        const int64_t instants [] = { 0, 1796056200123LL, 4102444799000LL };
        for (size_t i = 0; i < sizeof instants / sizeof instants [0]; i++) {
            int64_t next = schedule_next (schedule, instants [i], 1);
            assert (next == -1 || next > instants [i]);
            next = schedule_next (schedule, instants [i], 600);
            assert (next == -1 || next > instants [i]);
        }
    }
    else
        assert (*error);
    schedule_destroy (&schedule);
    free (text);
    return 0;
}
