/*  =========================================================================
    fetch - a capped download buffer for libcurl

    One write callback for every download: the bytes grow in one block,
    always NUL-terminated (the JSON parsers read it as a string), and the
    transfer stops the moment it would pass the cap, or when memory runs
    out, rather than after it has been read.
    ========================================================================= */

#include <czmq.h>
#include "core/fetch.h"

size_t
fetch_buffer_write (char *ptr, size_t size, size_t nmemb, void *userdata)
{
    fetch_buffer_t *buffer = (fetch_buffer_t *) userdata;
    size_t bytes = size * nmemb;
    if (bytes > buffer->cap || buffer->size > buffer->cap - bytes) {
        buffer->too_large = true;
        return 0;                   //  Aborts the transfer
    }
    char *grown = (char *) realloc (buffer->data, buffer->size + bytes + 1);
    if (!grown)
        return 0;
    memcpy (grown + buffer->size, ptr, bytes);
    buffer->data = grown;
    buffer->size += bytes;
    buffer->data [buffer->size] = 0;
    return bytes;
}

void
fetch_buffer_reset (fetch_buffer_t *buffer)
{
    free (buffer->data);
    size_t cap = buffer->cap;
    memset (buffer, 0, sizeof *buffer);
    buffer->cap = cap;
}

void
fetch_test (bool verbose)
{
    printf ("fetch: ");
    fetch_buffer_t buffer = { .cap = 8 };
    char bytes [] = "abcdefghij";
    assert (fetch_buffer_write (bytes, 1, 3, &buffer) == 3);
    assert (fetch_buffer_write (bytes + 3, 1, 5, &buffer) == 5);
    assert (buffer.size == 8 && streq (buffer.data, "abcdefgh") && !buffer.too_large);
    //  One byte past the cap stops the transfer and keeps what came
    assert (fetch_buffer_write (bytes, 1, 1, &buffer) == 0);
    assert (buffer.too_large && buffer.size == 8 && streq (buffer.data, "abcdefgh"));
    fetch_buffer_reset (&buffer);
    assert (buffer.data == NULL && buffer.size == 0 && !buffer.too_large && buffer.cap == 8);
    //  A single chunk larger than the cap
    assert (fetch_buffer_write (bytes, 1, 10, &buffer) == 0 && buffer.too_large && buffer.data == NULL);
    fetch_buffer_reset (&buffer);
    fetch_buffer_reset (&buffer);   //  Safe twice
    printf ("OK\n");
}
