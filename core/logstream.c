/*  =========================================================================
    logstream - the log stream that keeps one record on one line

    CZMQ's zsys_* functions format a record and write it with one
    fprintf ("%s\n") and an fflush on the log stream. That stream is ours:
    a glibc cookie stream (fopencookie) whose writer escapes every control
    character (C0 other than a write's final newline, DEL) as \xNN before
    the bytes reach the real output. It is unbuffered: glibc formats an
    fprintf on an unbuffered stream into a helper buffer and hands it over
    in one write, under the stream's lock, so each write we get is one
    record (or, past 8 KiB, part of one) and two threads' records never
    reach us as one write, whose inner newline we would escape.

    This is the one place for the whole class: no call site has to know
    which of its arguments came from outside.
    ========================================================================= */

#include <czmq.h>
#include "core/logstream.h"

static ssize_t
s_write (void *cookie, const char *data, size_t size)
{
    FILE *out = (FILE *) cookie;
    char escaped [1024];
    size_t used = 0;
    for (size_t i = 0; i < size; i++) {
        unsigned char c = (unsigned char) data [i];
        bool final_newline = c == '\n' && i == size - 1;
        if (used + 4 > sizeof escaped - 1) {
            fwrite (escaped, 1, used, out);
            used = 0;
        }
        if ((c < 0x20 && c != '\t' && !final_newline) || c == 0x7f)
            used += (size_t) snprintf (escaped + used, sizeof escaped - used, "\\x%02x", c);
        else
            escaped [used++] = (char) c;
    }
    fwrite (escaped, 1, used, out);
    fflush (out);
    return (ssize_t) size;
}

FILE *
logstream_new (FILE *out)
{
    cookie_io_functions_t functions = { .read = NULL, .write = s_write, .seek = NULL, .close = NULL };
    FILE *stream = fopencookie (out, "w", functions);
    if (stream)
        setvbuf (stream, NULL, _IONBF, 0);
    return stream;
}

void
logstream_test (bool verbose)
{
    printf ("logstream: ");
    char *text = NULL;
    size_t size = 0;
    FILE *memory = open_memstream (&text, &size);
    assert (memory);
    FILE *stream = logstream_new (memory);
    assert (stream);
    //  As CZMQ writes a record
    fprintf (stream, "%s\n", "I: (clowdy) http: GET /a\r\nI: (clowdy) forged\x1b[2J\ttab 200");
    fflush (stream);
    fprintf (stream, "%s\n", "second");
    fflush (stream);
    fflush (memory);
    const char *expected = "I: (clowdy) http: GET /a\\x0d\\x0aI: (clowdy) forged\\x1b[2J\ttab 200\nsecond\n";
    assert (streq (text, expected));
    //  A record as long as CZMQ makes them (1023 characters), all escaped:
    //  one write, past the escape buffer's size
    char *big = (char *) malloc (1024);
    memset (big, '\n', 1023);
    big [1023] = 0;
    fprintf (stream, "%s\n", big);
    fflush (memory);
    assert (strstr (text, "second\n\\x0a\\x0a") && strlen (text) == strlen (expected) + 4 * 1023 + 1);
    assert (text [strlen (text) - 1] == '\n' && text [strlen (text) - 2] == 'a');
    free (big);
    fclose (stream);
    fclose (memory);
    free (text);
    printf ("OK\n");
}
