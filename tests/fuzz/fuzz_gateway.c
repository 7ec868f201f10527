/*  fuzz_gateway - libFuzzer target for the gateway's pure logic: route
    patterns and request paths (route), request events and function results
    (gwmap). The first byte picks what the rest of the input is.  */
#include <czmq.h>
#include "core/route.h"
#include "core/gwmap.h"

static route_table_t *s_table;

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (!s_table) {
        s_table = route_table_new ();
        const char *patterns [][2] = {
            { "GET", "/" }, { "GET", "/users/:id" }, { "POST", "/users" },
            { "ANY", "/files/*path" }, { "GET", "/:a/:b/*rest" }, { "GET", "/a/:x/c" },
            { "PUT", "/café/:nom" }, { "ANY", "/*all" }, { "GET", "/a/b/:c/d" }
        };
        char id [8];
        for (size_t i = 0; i < sizeof patterns / sizeof patterns [0]; i++) {
            snprintf (id, sizeof id, "r%zu", i);
            route_table_add (s_table, id, patterns [i][0], patterns [i][1], "f");
        }
    }
    char *text = (char *) malloc (size);
    memcpy (text, data + 1, size - 1);
    text [size - 1] = 0;
    int mode = data [0] % 4;
    if (mode == 0) {
        //  text as a request path against the fixed table
        route_match_t match = { 0 };
        route_table_match (s_table, "GET", text, &match);
        route_table_match (s_table, "DELETE", text, &match);
        route_match_reset (&match);
    }
    else
    if (mode == 1) {
        //  text as a pattern, then as a path against a table holding it
        const char *detail = NULL;
        route_validate_path (text, &detail);
        char *normal = route_normalize_path (text);
        free (normal);
        route_table_t *table = route_table_new ();
        route_table_add (table, "x", "GET", text, "f");
        route_table_add (table, "y", "ANY", text, "f");
        route_match_t match = { 0 };
        route_table_match (table, "GET", text, &match);
        route_table_match (table, "GET", "/a/b/c", &match);
        route_match_reset (&match);
        route_table_destroy (&table);
    }
    else
    if (mode == 2) {
        //  event: the query is text up to the first NUL, the body all bytes
        cJSON *headers = cJSON_CreateObject ();
        cJSON_AddStringToObject (headers, text, text);
        cJSON_AddStringToObject (headers, "Host", "x");
        cJSON *event = gwmap_event ("POST", "/p", NULL, text, headers, data + 1, size - 1);
        cJSON_Delete (event);
        cJSON_Delete (headers);
    }
    else {
        //  text as a function's JSON result
        cJSON *output = cJSON_ParseWithLength ((const char *) data + 1, size - 1);
        gwmap_response_t resp = { 0 };
        gwmap_response (output, &resp);
        gwmap_response_reset (&resp);
        cJSON_Delete (output);
    }
    free (text);
    return 0;
}
