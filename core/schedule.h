/*  =========================================================================
    schedule - schedule expressions: rate(N unit) and 5-field cron, in UTC

    A schedule fires its function as an async event (actors/events.c). Its
    expression is one of:
        rate(N minute|minutes|hour|hours|day|days)      N from 1
        M H DOM MON DOW                                 cron, UTC
    Cron fields: minute 0-59, hour 0-23, day of month 1-31, month 1-12, day
    of week 0-7 (0 and 7 are Sunday). Each field is a comma list of `*`,
    `A`, `A-B`, with an optional `/STEP` (`1-30/2`; a star with a step; `5/10` meaning
    5-59/10). Names (JAN, MON) and the extensions `L`, `W`, `#`, `?` are not
    accepted. As in Vixie cron, when both day fields are restricted a day
    matching either one fires.

        schedule_t *schedule = schedule_parse ("0 9 * * 1-5", error, sizeof error);
        int64_t next_ms = schedule_next (schedule, now_ms, 1);
        schedule_destroy (&schedule);
    ========================================================================= */

#ifndef CLOWDY_SCHEDULE_H_INCLUDED
#define CLOWDY_SCHEDULE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _schedule_t schedule_t;

//  The longest expression accepted, in bytes
#define SCHEDULE_EXPRESSION_MAX 128

//  Parse an expression. Returns the schedule, or NULL with a sentence for
//  the user in error (a cron expression that can never fire is refused).
schedule_t *
    schedule_parse (const char *expression, char *error, size_t error_size);

void
    schedule_destroy (schedule_t **self_p);

//  The first firing strictly after `after_ms` (Unix time in ms, UTC), or -1
//  when there is none within five years. A rate fires every interval from
//  `after_ms`; cron on whole minutes. scale (>= 1, for tests only: the
//  server's --test-clock-scale) divides a rate's interval; cron ignores it.
int64_t
    schedule_next (schedule_t *self, int64_t after_ms, long scale);

//  Is this a rate(...) expression?
bool
    schedule_is_rate (schedule_t *self);

void
    schedule_test (bool verbose);

#endif
