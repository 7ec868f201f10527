/*  =========================================================================
    util - small helpers every part shares: ids, timestamps, slugs
    ========================================================================= */

#ifndef CLOWDY_UTIL_H_INCLUDED
#define CLOWDY_UTIL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#define UTIL_ID_SIZE 13             //  12 lowercase hex characters + NUL
#define UTIL_TIME_SIZE 32           //  "2026-11-22T02:15:00.123456Z" + NUL

//  Fill id with 12 random lowercase hex characters (util_random_hex).
void
    util_new_id (char id [UTIL_ID_SIZE]);

//  Write 2 * bytes random lowercase hex characters and a NUL to out (which
//  holds 2 * bytes + 1). The randomness is the kernel's CSPRNG (getrandom),
//  fit for secrets: ids, API tokens, database passwords. Returns 0, or -1
//  (out is "") if the system gives none.
int
    util_random_hex (char *out, size_t bytes);

//  True if text is exactly 12 lowercase hex characters.
bool
    util_is_id (const char *text);

//  Current UTC time as ISO 8601 with microseconds and a Z suffix.
void
    util_now_iso (char out [UTIL_TIME_SIZE]);

//  Monotonic clock in microseconds.
int64_t
    util_monotonic_us (void);

//  Project slug from a display name, per API.md's Slugs section: lower-case,
//  keep ASCII letters, digits, spaces, '_' and '-' (everything else, non-ASCII
//  included, is dropped), runs of spaces/'_' become '-', repeated '-' collapse,
//  '-' trimmed at both ends. Returns a heap string (caller frees); "project"
//  when nothing is left. Never NULL.
char *
    util_slug_from_name (const char *name);

//  True if slug is base itself or base followed by "-N" (N decimal digits):
//  a project renamed to a name with the same base slug keeps its slug.
bool
    util_slug_has_base (const char *slug, const char *base);

//  True if the size bytes at data are well-formed UTF-8 (no overlongs, no
//  surrogates, nothing above U+10FFFF).
bool
    util_utf8_valid (const char *data, size_t size);

//  Number of code points in a valid UTF-8 string.
size_t
    util_utf8_length (const char *text);

//  Bytes the size bytes of text take printed as a JSON string by cJSON:
//  its quotes, two bytes for \" \\ \b \f \n \r \t, six for any other
//  control character (\u00XX), one for every other byte
size_t
    util_json_string_size (const char *text, size_t size);

//  Heap copy of text without leading/trailing ASCII whitespace.
char *
    util_trim (const char *text);

//  True if key is a valid environment variable name for a user's project:
//  ^[A-Za-z_][A-Za-z0-9_]*$, at most 128 bytes, not starting with CLOWDY_
//  (any case).
bool
    util_env_key_valid (const char *key);

//  Parse size bytes as one JSON document: valid UTF-8, nothing but white
//  space after the value. Returns the value (caller deletes) or NULL.
cJSON *
    util_json_parse (const char *data, size_t size);

//  True if a JSON text holds a \u0000 escape in a string. cJSON (and any C
//  string) would cut such a string short, so callers refuse it instead.
bool
    util_json_has_nul (const char *data, size_t size);

void
    util_test (bool verbose);

#endif
