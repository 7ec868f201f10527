/*  =========================================================================
    jsonfit - JSON that reaches a function, and comes back from it, as it was

    cJSON holds a number as a double and a string as a C string, and prints
    numbers its own way. Between a client and a Python function that would
    change data without a word: 9007199254740993 arrives as
    9007199254740992, 10.0 as the int 10, 1e15 as the float 1e+15, 1e400 as
    null, a raw NUL byte cuts a string. This module lets the parts on the
    way keep what the sender wrote, or refuse it with a reason:

    - jsonfit_scan reads JSON text once and says what cJSON cannot carry:
      its deepest nesting, a raw NUL byte, a \u0000 escape, and the first
      number no Python float or int can hold (a float that overflows to
      infinity or underflows to zero, an integer over Python's 4300 digits).
    - jsonfit_keep_numbers turns every number of a parsed tree that cJSON
      would print differently into a raw item holding the token as it was
      written, so printing the tree gives the sender's digits back.

    Numbers written as -?[0-9]{1,15} print back identically and stay
    numbers (cheap, and what code reads with cJSON_GetNumberValue); every
    other strict JSON number becomes raw. A token that is not strict JSON
    (cJSON takes "1." or "007") stays as cJSON parsed it: kept raw it would
    make the text invalid for a strict reader such as Python's.
    ========================================================================= */

#ifndef CLOWDY_JSONFIT_H_INCLUDED
#define CLOWDY_JSONFIT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

//  Deepest nesting of arrays and objects an input may have: well under
//  cJSON's 1000 and the runner's Python decoder (about 990), so a deeper
//  input gets a clear error here rather than a parse failure further on
#define JSONFIT_MAX_DEPTH 512

//  What jsonfit_scan found
typedef struct {
    int depth;                      //  Deepest nesting of arrays and objects
    bool raw_nul;                   //  A NUL byte in the text
    bool nul_escape;                //  A \u0000 escape in a string
    const char *bad_number;         //  First number no Python value holds (points into the text), or NULL
    size_t bad_number_size;         //  Its length
    const char *bad_why;            //  Why (static text), or NULL
} jsonfit_scan_t;

//  Scan size bytes of JSON text (need not be valid: the scan follows
//  cJSON's reading of strings and numbers and never fails).
void
    jsonfit_scan (const char *text, size_t size, jsonfit_scan_t *scan);

//  A detail sentence for a scan that found a reason to refuse the text, in
//  out (size bytes), naming what (e.g. "Request body"); false when nothing
//  in the scan is a reason (raw NUL, too deep, a number out of range).
bool
    jsonfit_refusal (const jsonfit_scan_t *scan, const char *what, char *out, size_t size);

//  tree is what cJSON parsed from text. Every number item under only (the
//  whole tree when only is NULL) whose token would print differently
//  becomes a raw item with that token. Returns the number of items
//  changed, or -1 if tree and text do not match (nothing is then wrong
//  with the tree: it is left as it was from the first mismatch on).
int
    jsonfit_keep_numbers (cJSON *tree, const char *text, size_t size, const cJSON *only);

//  Self test of this class.
void
    jsonfit_test (bool verbose);

#endif
