/*  =========================================================================
    jsonfit - JSON that reaches a function, and comes back from it, as it was

    Why a scan beside cJSON rather than another parser: cJSON is what every
    actor already speaks, and its trees keep their children in the order of
    the text. So the numbers of a tree, visited depth first, are the number
    tokens of its text in order, and one linear pass over the text (strings
    skipped as cJSON skips them: a backslash escapes the next byte) pairs
    each number item with the token it came from. No second tree, no
    offsets kept by cJSON, and a tree parsed by someone else (the message
    codec) can be fixed up after the fact from the text it was parsed from.

    The rules are in jsonfit.h.
    ========================================================================= */

#include <czmq.h>
#include <math.h>
#include "core/jsonfit.h"

//  Python refuses to convert integers longer than this (sys.int_info,
//  3.11's default int_max_str_digits)
#define JSONFIT_MAX_INT_DIGITS 4300

//  A cursor over JSON text that finds number tokens, as cJSON reads them
typedef struct {
    const char *text;               //  Start of the text
    size_t size;                    //  Its length
    size_t at;                      //  Where the next look starts
} s_cursor_t;

static bool
s_number_char (char c)
{
    return (c >= '0' && c <= '9') || c == '+' || c == '-' || c == 'e' || c == 'E' || c == '.';
}

//  Next number token: its start and size; false at the end. When scan is
//  set, also notes raw NULs, \u0000 escapes and the nesting depth.
static bool
s_next_number (s_cursor_t *cursor, const char **token, size_t *token_size, jsonfit_scan_t *scan,
               int *depth)
{
    const char *text = cursor->text;
    size_t size = cursor->size;
    size_t i = cursor->at;
    while (i < size) {
        char c = text [i];
        if (c == '"') {
            for (i++; i < size && text [i] != '"'; i++) {
                if (scan && text [i] == 0)
                    scan->raw_nul = true;
                if (text [i] == '\\') {
                    if (scan && i + 5 < size && text [i + 1] == 'u' && memcmp (text + i + 2, "0000", 4) == 0)
                        scan->nul_escape = true;
                    i++;                //  The escaped byte, whatever it is
                }
            }
            i++;                        //  The closing quote
        }
        else
        if (c == '-' || (c >= '0' && c <= '9')) {
            size_t start = i;
            while (i < size && s_number_char (text [i]))
                i++;
            cursor->at = i;
            *token = text + start;
            *token_size = i - start;
            return true;
        }
        else {
            if (scan) {
                if (c == 0)
                    scan->raw_nul = true;
                else
                if (c == '[' || c == '{') {
                    if (++*depth > scan->depth)
                        scan->depth = *depth;
                }
                else
                if ((c == ']' || c == '}') && *depth > 0)
                    --*depth;
            }
            i++;
        }
    }
    cursor->at = size;
    return false;
}

//  -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, and whether it has a
//  fraction or exponent; the digit count of its integer part in *digits
static bool
s_strict (const char *token, size_t size, bool *is_float, size_t *digits)
{
    size_t i = 0;
    *is_float = false;
    if (i < size && token [i] == '-')
        i++;
    size_t first = i;
    while (i < size && isdigit ((unsigned char) token [i]))
        i++;
    *digits = i - first;
    if (*digits == 0 || (*digits > 1 && token [first] == '0'))
        return false;
    if (i < size && token [i] == '.') {
        *is_float = true;
        size_t from = ++i;
        while (i < size && isdigit ((unsigned char) token [i]))
            i++;
        if (i == from)
            return false;
    }
    if (i < size && (token [i] == 'e' || token [i] == 'E')) {
        *is_float = true;
        i++;
        if (i < size && (token [i] == '+' || token [i] == '-'))
            i++;
        size_t from = i;
        while (i < size && isdigit ((unsigned char) token [i]))
            i++;
        if (i == from)
            return false;
    }
    return i == size;
}

//  Why no Python value holds this strict token, or NULL
static const char *
s_out_of_range (const char *token, size_t size, bool is_float, size_t digits)
{
    if (!is_float)
        return digits > JSONFIT_MAX_INT_DIGITS
             ? "is an integer of more than 4300 digits, which Python does not convert" : NULL;
    char small [64];
    char *copy = size < sizeof small ? small : (char *) malloc (size + 1);
    if (!copy)
        return NULL;
    memcpy (copy, token, size);
    copy [size] = 0;
    double value = strtod (copy, NULL);
    bool nonzero = false;
    for (size_t i = 0; i < size && token [i] != 'e' && token [i] != 'E'; i++)
        if (token [i] >= '1' && token [i] <= '9')
            nonzero = true;
    if (copy != small)
        free (copy);
    if (isinf (value))
        return "is out of the range of a double (it would become infinity)";
    if (value == 0 && nonzero)
        return "is too small for a double (it would become 0)";
    return NULL;
}

void
jsonfit_scan (const char *text, size_t size, jsonfit_scan_t *scan)
{
    memset (scan, 0, sizeof (*scan));
    s_cursor_t cursor = { text, text ? size : 0, 0 };
    const char *token;
    size_t token_size;
    int depth = 0;
    while (s_next_number (&cursor, &token, &token_size, scan, &depth)) {
        if (scan->bad_number)
            continue;
        bool is_float;
        size_t digits;
        if (!s_strict (token, token_size, &is_float, &digits))
            continue;
        const char *why = s_out_of_range (token, token_size, is_float, digits);
        if (why) {
            scan->bad_number = token;
            scan->bad_number_size = token_size;
            scan->bad_why = why;
        }
    }
}

bool
jsonfit_refusal (const jsonfit_scan_t *scan, const char *what, char *out, size_t size)
{
    if (scan->raw_nul)
        snprintf (out, size, "%s holds a NUL byte, which JSON text may not contain", what);
    else
    if (scan->depth > JSONFIT_MAX_DEPTH)
        snprintf (out, size, "%s is nested %d levels deep; arrays and objects may nest at most %d levels",
                  what, scan->depth, JSONFIT_MAX_DEPTH);
    else
    if (scan->bad_number) {
        int shown = scan->bad_number_size > 40 ? 40 : (int) scan->bad_number_size;
        snprintf (out, size, "%s holds the number %.*s%s, which %s; send it as a string", what, shown,
                  scan->bad_number, scan->bad_number_size > 40 ? "..." : "", scan->bad_why);
    }
    else
        return false;
    return true;
}

//  True if cJSON prints this token back as it is: -?[0-9]{1,15}, no
//  leading zero (a double holds 15 digits exactly, and cJSON prints such
//  an integer without an exponent)
static bool
s_simple (const char *token, size_t size)
{
    size_t i = token [0] == '-' ? 1 : 0;
    if (size - i < 1 || size - i > 15 || (size - i > 1 && token [i] == '0'))
        return false;
    for (; i < size; i++)
        if (!isdigit ((unsigned char) token [i]))
            return false;
    return true;
}

static int
s_keep (cJSON *item, s_cursor_t *cursor, const cJSON *only, bool inside)
{
    int changed = 0;
    for (; item; item = item->next) {
        bool in = inside || item == only;
        if (cJSON_IsNumber (item)) {
            const char *token;
            size_t size;
            if (!s_next_number (cursor, &token, &size, NULL, NULL))
                return -1;
            bool is_float;
            size_t digits;
            if (in && !s_simple (token, size) && s_strict (token, size, &is_float, &digits)) {
                char *raw = strndup (token, size);
                if (!raw)
                    return -1;
                item->type = cJSON_Raw;
                item->valuestring = raw;
                changed++;
            }
        }
        else
        if (item->child) {
            int rc = s_keep (item->child, cursor, only, in);
            if (rc < 0)
                return -1;
            changed += rc;
        }
    }
    return changed;
}

int
jsonfit_keep_numbers (cJSON *tree, const char *text, size_t size, const cJSON *only)
{
    if (!tree || !text)
        return -1;
    s_cursor_t cursor = { text, size, 0 };
    //  The root alone (its siblings, if any, are not ours)
    cJSON *next = tree->next;
    tree->next = NULL;
    int rc = s_keep (tree, &cursor, only, only == NULL);
    tree->next = next;
    return rc;
}


//  --------------------------------------------------------------------------
//  Selftest

//  Parse, keep numbers, print: what a reader down the line gets
static char *
s_round_trip (const char *text)
{
    cJSON *tree = cJSON_Parse (text);
    assert (tree);
    assert (jsonfit_keep_numbers (tree, text, strlen (text), NULL) >= 0);
    char *printed = cJSON_PrintUnformatted (tree);
    cJSON_Delete (tree);
    return printed;
}

void
jsonfit_test (bool verbose)
{
    printf ("jsonfit: ");
    //  Numbers come back as written; simple integers stay numbers
    const char *same [] = {
        "[9007199254740993,-9007199254740993,10.0,1000000000000000,-0.0,0.1,1e400,1E+2,123456789012345]",
        "{\"a\":{\"b\":[1,2.50,{\"c\":3e-5}]},\"d\":\"1.0 in a string\",\"e\":100000000000000000000000}",
        "{\"k\\\"2.0\":2.0,\"x\":[true,false,null,-1.5e-300]}",
    };
    for (size_t i = 0; i < sizeof same / sizeof same [0]; i++) {
        char *printed = s_round_trip (same [i]);
        if (strneq (printed, same [i])) {
            fprintf (stderr, "\nround trip: %s -> %s\n", same [i], printed);
            assert (false);
        }
        free (printed);
    }
    const char *mixed = "{\"n\":42,\"f\":2.5,\"big\":12345678901234567}";
    cJSON *tree = cJSON_Parse (mixed);
    assert (jsonfit_keep_numbers (tree, mixed, strlen (mixed), NULL) == 2);
    assert (cJSON_IsNumber (cJSON_GetObjectItem (tree, "n")));
    assert (cJSON_IsRaw (cJSON_GetObjectItem (tree, "f")));
    assert (streq (cJSON_GetObjectItem (tree, "big")->valuestring, "12345678901234567"));
    cJSON_Delete (tree);
    //  Only under one item; whitespace and layout do not matter
    const char *text = "{ \"a\" : 1.0 , \"input\" : [ 2.0 , 3 ] , \"z\" : 4.0 }";
    tree = cJSON_Parse (text);
    assert (jsonfit_keep_numbers (tree, text, strlen (text), cJSON_GetObjectItem (tree, "input")) == 1);
    char *printed = cJSON_PrintUnformatted (tree);
    assert (streq (printed, "{\"a\":1,\"input\":[2.0,3],\"z\":4}"));
    free (printed);
    cJSON_Delete (tree);
    //  Not strict JSON (cJSON is lenient): left as cJSON read it
    tree = cJSON_Parse ("[007, 1.]");
    assert (jsonfit_keep_numbers (tree, "[007, 1.]", 9, NULL) == 0);
    cJSON_Delete (tree);
    //  Tree and text that do not match
    tree = cJSON_Parse ("[1.5]");
    assert (jsonfit_keep_numbers (tree, "[]", 2, NULL) == -1);
    cJSON_Delete (tree);

    //  Scans
    jsonfit_scan_t scan;
    char detail [256];
    jsonfit_scan ("{\"a\":[1,{\"b\":2}]}", 17, &scan);
    assert (scan.depth == 3 && !scan.raw_nul && !scan.nul_escape && !scan.bad_number);
    assert (!jsonfit_refusal (&scan, "Input", detail, sizeof detail));
    jsonfit_scan ("{\"a\":\"x\0y\"}", 11, &scan);
    assert (scan.raw_nul && !scan.nul_escape);
    assert (jsonfit_refusal (&scan, "Request body", detail, sizeof detail));
    assert (strstr (detail, "NUL byte"));
    jsonfit_scan ("{\"a\":\"x\\u0000y\"}", 15, &scan);
    assert (!scan.raw_nul && scan.nul_escape);
    jsonfit_scan ("{\"a\":\"x\\\\u0000y\"}", 16, &scan);      //  An escaped backslash, then text
    assert (!scan.nul_escape);
    jsonfit_scan ("{\"a\":\"[[[\",\"b\":\"]\\\"{\"}", 22, &scan);  //  Brackets in strings do not nest
    assert (scan.depth == 1);
    jsonfit_scan ("[1e400]", 7, &scan);
    assert (scan.bad_number && scan.bad_number_size == 5 && strstr (scan.bad_why, "infinity"));
    assert (jsonfit_refusal (&scan, "Input", detail, sizeof detail));
    assert (streq (detail, "Input holds the number 1e400, which is out of the range of a double (it would "
                           "become infinity); send it as a string"));
    jsonfit_scan ("[-1.5e-400, 0.0, 0e5, 5e-324]", 29, &scan);
    assert (scan.bad_number && strncmp (scan.bad_number, "-1.5e-400", 9) == 0 && strstr (scan.bad_why, "0"));
    jsonfit_scan ("[0.0, 0e5, 5e-324, 1e308, 123456789012345678901234567890]", 56, &scan);
    assert (!scan.bad_number);
    size_t long_size = 4400;
    char *long_int = (char *) malloc (long_size + 3);
    long_int [0] = '[';
    memset (long_int + 1, '7', long_size);
    long_int [long_size + 1] = ']';
    long_int [long_size + 2] = 0;
    jsonfit_scan (long_int, long_size + 2, &scan);
    assert (scan.bad_number && scan.bad_number_size == long_size);
    assert (jsonfit_refusal (&scan, "Input", detail, sizeof detail));
    assert (strstr (detail, "77777...") && strstr (detail, "4300 digits"));
    free (long_int);
    size_t deep_size = 2 * (JSONFIT_MAX_DEPTH + 1);
    char *deep = (char *) malloc (deep_size);
    memset (deep, '[', deep_size / 2);
    memset (deep + deep_size / 2, ']', deep_size / 2);
    jsonfit_scan (deep, deep_size, &scan);
    assert (scan.depth == JSONFIT_MAX_DEPTH + 1);
    assert (jsonfit_refusal (&scan, "Input", detail, sizeof detail));
    assert (strstr (detail, "nested 513 levels deep"));
    jsonfit_scan (deep + 1, deep_size - 2, &scan);
    assert (scan.depth == JSONFIT_MAX_DEPTH && !jsonfit_refusal (&scan, "Input", detail, sizeof detail));
    free (deep);
    jsonfit_scan (NULL, 0, &scan);
    assert (scan.depth == 0);
    jsonfit_scan ("\"unterminated \\", 15, &scan);       //  Never reads past the end
    printf ("OK\n");
}
