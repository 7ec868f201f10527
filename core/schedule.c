/*  =========================================================================
    schedule - schedule expressions: rate(N unit) and 5-field cron, in UTC

    A cron expression is kept as one bit set per field (minutes 0-59, hours
    0-23, days 1-31, months 1-12, weekdays 0-6). The next firing is found
    day by day (at most five years of days, so an impossible date such as
    "0 0 30 2 *" is refused at parse time rather than searched for ever),
    then the first matching hour and minute in that day. Time is UTC and
    computed with days-from-civil arithmetic, never the process time zone.
    ========================================================================= */

#include <czmq.h>
#include "core/schedule.h"

#define SEARCH_DAYS (5 * 366)

struct _schedule_t {
    bool rate;                      //  rate(...) rather than cron
    int64_t interval_ms;            //  rate: the interval
    uint64_t minutes;               //  cron: bit m set when minute m fires
    uint32_t hours;                 //  cron: bit h for hour h
    uint32_t days;                  //  cron: bit d for day of month d (1-31)
    uint16_t months;                //  cron: bit m for month m (1-12)
    uint8_t weekdays;               //  cron: bit w for weekday w (0 = Sunday)
    bool days_star;                 //  cron: day of month was `*`
    bool weekdays_star;             //  cron: day of week was `*`
};

//  Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm)
static int64_t
s_days_from_civil (int64_t year, int month, int day)
{
    year -= month <= 2;
    int64_t era = (year >= 0 ? year : year - 399) / 400;
    int64_t yoe = year - era * 400;
    int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void
s_civil_from_days (int64_t days, int64_t *year, int *month, int *day)
{
    days += 719468;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    int64_t doe = days - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *day = (int) (doy - (153 * mp + 2) / 5 + 1);
    *month = (int) (mp < 10 ? mp + 3 : mp - 9);
    *year = yoe + era * 400 + (*month <= 2);
}

//  A number of at most 4 digits at *text; advances past it
static bool
s_number (const char **text, int *value)
{
    const char *c = *text;
    int number = 0, digits = 0;
    while (isdigit ((unsigned char) *c) && digits < 5) {
        number = number * 10 + (*c - '0');
        c++;
        digits++;
    }
    if (digits == 0 || digits > 4)
        return false;
    *value = number;
    *text = c;
    return true;
}

//  One cron field (text up to its end) into bits; false with error filled
static bool
s_field (const char *text, size_t size, int low, int high, uint64_t *bits, bool *star,
         const char *name, char *error, size_t error_size)
{
    char field [SCHEDULE_EXPRESSION_MAX + 1];
    memcpy (field, text, size);
    field [size] = 0;
    *bits = 0;
    *star = streq (field, "*");
    const char *c = field;
    while (true) {
        int from = low, to = high, step = 1;
        if (*c == '*')
            c++;
        else {
            if (!s_number (&c, &from))
                goto bad;
            to = from;
            if (*c == '-') {
                c++;
                if (!s_number (&c, &to))
                    goto bad;
            }
            else
            if (*c == '/')
                to = high;          //  "5/10": from 5 to the end, every 10
        }
        if (*c == '/') {
            c++;
            if (!s_number (&c, &step) || step < 1)
                goto bad;
        }
        if (from < low || to > high || from > to) {
            snprintf (error, error_size, "The %s field of the cron expression is out of range (%d-%d): '%s'",
                      name, low, high, field);
            return false;
        }
        for (int value = from; value <= to; value += step)
            *bits |= 1ULL << value;
        if (*c == 0)
            return true;
        if (*c != ',')
            goto bad;
        c++;
    }
bad:
    snprintf (error, error_size, "The %s field of the cron expression is not valid: '%s' (use *, N, N-M, "
              "lists with ',' and steps with '/')", name, field);
    return false;
}

static bool
s_parse_rate (schedule_t *self, const char *expression, char *error, size_t error_size)
{
    const char *c = expression + 5;             //  past "rate("
    while (*c == ' ')
        c++;
    long number = 0;
    int digits = 0;
    while (isdigit ((unsigned char) *c) && digits < 7) {
        number = number * 10 + (*c - '0');
        c++;
        digits++;
    }
    const char *unit = c;
    while (*unit == ' ')
        unit++;
    size_t unit_size = 0;
    while (isalpha ((unsigned char) unit [unit_size]))
        unit_size++;
    const char *rest = unit + unit_size;
    while (*rest == ' ')
        rest++;
    int64_t unit_ms = 0;
    if (unit_size && unit == c)
        unit_ms = 0;            //  no space between the number and its unit
    else
    if ((unit_size == 6 && strncmp (unit, "minute", 6) == 0) || (unit_size == 7 && strncmp (unit, "minutes", 7) == 0))
        unit_ms = 60 * 1000;
    else
    if ((unit_size == 4 && strncmp (unit, "hour", 4) == 0) || (unit_size == 5 && strncmp (unit, "hours", 5) == 0))
        unit_ms = 3600 * 1000;
    else
    if ((unit_size == 3 && strncmp (unit, "day", 3) == 0) || (unit_size == 4 && strncmp (unit, "days", 4) == 0))
        unit_ms = 86400 * 1000;
    if (digits == 0 || digits > 6 || number < 1 || unit_ms == 0 || !streq (rest, ")")) {
        snprintf (error, error_size, "A rate expression is rate(N minutes), rate(N hours) or rate(N days), "
                  "with N a whole number from 1 to 999999");
        return false;
    }
    self->rate = true;
    self->interval_ms = number * unit_ms;
    return true;
}

schedule_t *
schedule_parse (const char *expression, char *error, size_t error_size)
{
    schedule_t *self = (schedule_t *) zmalloc (sizeof (schedule_t));
    if (!expression || !*expression) {
        snprintf (error, error_size, "The expression is empty: use rate(N minutes) or a 5-field cron expression");
        goto failed;
    }
    if (strlen (expression) > SCHEDULE_EXPRESSION_MAX) {
        snprintf (error, error_size, "The expression is longer than %d characters", SCHEDULE_EXPRESSION_MAX);
        goto failed;
    }
    if (strncmp (expression, "rate(", 5) == 0) {
        if (!s_parse_rate (self, expression, error, error_size))
            goto failed;
        return self;
    }
    //  Cron: exactly five fields separated by spaces
    const char *names [] = { "minute", "hour", "day-of-month", "month", "day-of-week" };
    const int lows [] = { 0, 0, 1, 1, 0 };
    const int highs [] = { 59, 23, 31, 12, 7 };
    uint64_t bits [5];
    bool stars [5];
    const char *c = expression;
    int fields = 0;
    while (*c) {
        while (*c == ' ' || *c == '\t')
            c++;
        if (!*c)
            break;
        const char *start = c;
        while (*c && *c != ' ' && *c != '\t')
            c++;
        if (fields == 5) {
            fields++;
            break;
        }
        if (!s_field (start, (size_t) (c - start), lows [fields], highs [fields], &bits [fields],
                      &stars [fields], names [fields], error, error_size))
            goto failed;
        fields++;
    }
    if (fields != 5) {
        snprintf (error, error_size, "A cron expression has 5 fields (minute hour day-of-month month "
                  "day-of-week, UTC); this one has %s", fields > 5 ? "more" : "fewer");
        goto failed;
    }
    self->minutes = bits [0];
    self->hours = (uint32_t) bits [1];
    self->days = (uint32_t) bits [2];
    self->months = (uint16_t) bits [3];
    uint64_t weekdays = bits [4];
    if (weekdays & (1ULL << 7))
        weekdays |= 1;                          //  7 is Sunday too
    self->weekdays = (uint8_t) (weekdays & 0x7f);
    self->days_star = stars [2];
    self->weekdays_star = stars [4];
    if (schedule_next (self, 0, 1) < 0 && schedule_next (self, zclock_time (), 1) < 0) {
        snprintf (error, error_size, "The cron expression never fires (no such date)");
        goto failed;
    }
    return self;
failed:
    free (self);
    return NULL;
}

void
schedule_destroy (schedule_t **self_p)
{
    if (self_p && *self_p) {
        free (*self_p);
        *self_p = NULL;
    }
}

bool
schedule_is_rate (schedule_t *self)
{
    return self->rate;
}

static bool
s_day_matches (schedule_t *self, int64_t days)
{
    int64_t year;
    int month, day;
    s_civil_from_days (days, &year, &month, &day);
    if (!(self->months & (1u << month)))
        return false;
    int weekday = (int) (((days % 7) + 7 + 4) % 7);     //  1970-01-01 was a Thursday
    bool day_ok = (self->days >> day) & 1;
    bool weekday_ok = (self->weekdays >> weekday) & 1;
    if (self->days_star || self->weekdays_star)
        return day_ok && weekday_ok;
    return day_ok || weekday_ok;
}

int64_t
schedule_next (schedule_t *self, int64_t after_ms, long scale)
{
    assert (self);
    if (self->rate) {
        int64_t interval = self->interval_ms / (scale > 1 ? scale : 1);
        return after_ms + (interval > 0 ? interval : 1);
    }
    //  The first whole minute strictly after after_ms
    int64_t minute = (after_ms >= 0 ? after_ms / 60000 : (after_ms - 59999) / 60000) + 1;
    int64_t day = minute >= 0 ? minute / 1440 : (minute - 1439) / 1440;
    int start = (int) (minute - day * 1440);
    for (int64_t count = 0; count < SEARCH_DAYS; count++, day++, start = 0) {
        if (!s_day_matches (self, day))
            continue;
        for (int at = start; at < 1440; at++)
            if (((self->hours >> (at / 60)) & 1) && ((self->minutes >> (at % 60)) & 1))
                return (day * 1440 + at) * 60000;
    }
    return -1;
}

void
schedule_test (bool verbose)
{
    printf ("schedule: ");
    char error [256];
    //  Civil date arithmetic
    assert (s_days_from_civil (1970, 1, 1) == 0);
    assert (s_days_from_civil (2000, 3, 1) == 11017);
    int64_t year;
    int month, day;
    s_civil_from_days (s_days_from_civil (2028, 2, 29), &year, &month, &day);
    assert (year == 2028 && month == 2 && day == 29);

    int64_t base = s_days_from_civil (2026, 11, 30) * 86400000LL + (14 * 60 + 37) * 60000LL + 12345;  //  Mon 14:37:12.345

    //  Rates, with and without the test scale
    schedule_t *schedule = schedule_parse ("rate(5 minutes)", error, sizeof error);
    assert (schedule && schedule_is_rate (schedule));
    assert (schedule_next (schedule, base, 1) == base + 300000);
    assert (schedule_next (schedule, base, 60) == base + 5000);
    schedule_destroy (&schedule);
    schedule_destroy (&schedule);
    const char *good_rates [] = { "rate(1 minute)", "rate(1 hour)", "rate(2 days)", "rate( 3 hours )", NULL };
    for (int i = 0; good_rates [i]; i++) {
        schedule = schedule_parse (good_rates [i], error, sizeof error);
        assert (schedule);
        schedule_destroy (&schedule);
    }
    const char *bad [] = { "", "rate()", "rate(0 minutes)", "rate(5 weeks)", "rate(5minutes)", "rate(5 minutes",
                           "rate(-1 minutes)", "rate(1.5 hours)", "rate(9999999 days)",
                           "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *",
                           "* * * * 8", "*/0 * * * *", "a * * * *", "1- * * * *", "5-1 * * * *", "0 0 30 2 *",
                           "0 0 31 4,6,9,11 *", ",1 * * * *", "1,,2 * * * *", "99999 * * * *", NULL };
    for (int i = 0; bad [i]; i++) {
        schedule = schedule_parse (bad [i], error, sizeof error);
        if (schedule && verbose)
            printf ("accepted '%s'\n", bad [i]);
        assert (!schedule && *error);
    }

    //  Cron: every 15 minutes
    schedule = schedule_parse ("*/15 * * * *", error, sizeof error);
    assert (schedule && !schedule_is_rate (schedule));
    int64_t next = schedule_next (schedule, base, 1);
    assert (next == base - 12345 + 8 * 60000);                  //  14:45
    assert (schedule_next (schedule, next, 1) == next + 15 * 60000);
    schedule_destroy (&schedule);
    //  At 9:30 on weekdays: Monday 14:37 -> Tuesday 9:30
    schedule = schedule_parse ("30 9 * * 1-5", error, sizeof error);
    next = schedule_next (schedule, base, 1);
    assert (next == s_days_from_civil (2026, 12, 1) * 86400000LL + (9 * 60 + 30) * 60000LL);
    schedule_destroy (&schedule);
    //  Sundays (0 and 7) at midnight: from Monday the 30th, Sunday 6 December
    schedule = schedule_parse ("0 0 * * 7", error, sizeof error);
    assert (schedule_next (schedule, base, 1) == s_days_from_civil (2026, 12, 6) * 86400000LL);
    schedule_destroy (&schedule);
    //  Both day fields restricted: either matches (the 1st, or a Wednesday)
    schedule = schedule_parse ("0 12 1 * 3", error, sizeof error);
    assert (schedule_next (schedule, base, 1) == s_days_from_civil (2026, 12, 1) * 86400000LL + 12 * 3600000LL);
    schedule_destroy (&schedule);
    //  Lists, ranges with steps, a month in the future, leap days
    schedule = schedule_parse ("0,30 8-18/2 * 3 *", error, sizeof error);
    assert (schedule_next (schedule, base, 1) == s_days_from_civil (2027, 3, 1) * 86400000LL + 8 * 3600000LL);
    schedule_destroy (&schedule);
    schedule = schedule_parse ("0 0 29 2 *", error, sizeof error);
    assert (schedule_next (schedule, base, 1) == s_days_from_civil (2028, 2, 29) * 86400000LL);
    schedule_destroy (&schedule);
    //  "5/20": 5, 25, 45
    schedule = schedule_parse ("5/20 * * * *", error, sizeof error);
    assert (schedule_next (schedule, base, 1) == base - 12345 + 8 * 60000);    //  14:45
    schedule_destroy (&schedule);
    //  Exactly on a firing minute: the next one, never the same
    schedule = schedule_parse ("* * * * *", error, sizeof error);
    assert (schedule_next (schedule, base - 12345, 1) == base - 12345 + 60000);
    schedule_destroy (&schedule);
    printf ("OK\n");
}
