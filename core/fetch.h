/*  =========================================================================
    fetch - a capped download buffer for libcurl

    Everything we download (an LLM reply, a Neon answer, a JWKS) is read
    into memory under a size cap, so that no server can exhaust ours:

        fetch_buffer_t buffer = { .cap = 1 << 20 };
        curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, fetch_buffer_write);
        curl_easy_setopt (curl, CURLOPT_WRITEDATA, &buffer);
        ... curl_easy_perform: buffer.data (NUL-terminated), buffer.size,
            buffer.too_large when the cap cut the transfer short ...
        fetch_buffer_reset (&buffer);
    ========================================================================= */

#ifndef CLOWDY_FETCH_H_INCLUDED
#define CLOWDY_FETCH_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char *data;                     //  Bytes so far, NUL-terminated, or NULL
    size_t size;                    //  Bytes in data
    size_t cap;                     //  Abort the transfer past this many
    bool too_large;                 //  The cap was hit
} fetch_buffer_t;

//  A CURLOPT_WRITEFUNCTION: appends to the fetch_buffer_t in userdata.
//  Returns 0 (aborting the transfer) past the cap or when out of memory.
size_t
    fetch_buffer_write (char *ptr, size_t size, size_t nmemb, void *userdata);

//  Free the bytes and zero the buffer, keeping its cap.
void
    fetch_buffer_reset (fetch_buffer_t *buffer);

void
    fetch_test (bool verbose);

#endif
