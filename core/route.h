/*  =========================================================================
    route - the gateway's compiled route table

    A project's routes (method + path pattern -> function) compiled into a
    trie by path segment, and matched against a request's method and path.
    Pure logic: no actor, no I/O. The gateway builds one table per project
    and rebuilds it when the project's routes change.

    Patterns (API.md, Gateway):
      - a leading "/", then segments separated by "/";
      - ":name" matches one non-empty segment and binds params.name;
      - a final "*name" matches the rest of the path (zero or more segments)
        and binds params.name to the decoded segments joined with "/";
      - any other segment matches literally, case-sensitive, after both
        sides are percent-decoded (so "/caf%C3%A9" and "/café" are the same
        literal, in a pattern and in a request);
      - name is [A-Za-z_][A-Za-z0-9_]*, unique within a pattern; at most
        ROUTE_MAX_SEGMENTS segments and ROUTE_MAX_PATH bytes.

    Precedence when several routes match (a total order, so the result never
    depends on insertion order):
      1. a route with the request's exact method beats an ANY route;
      2. more literal segments beat fewer;
      3. a route without a wildcard beats one with a wildcard;
      4. fewer ":params" beat more;
      5. then, left to right, the first segment where the two patterns differ
         in kind decides: literal before param before wildcard. (Two routes
         tied that far have the same shape, so they can only both match if
         they are the same route: route_table_add refuses those.)
    HEAD matches only HEAD and ANY routes, never GET: a route runs a user
    function, which may have effects, so it runs only for methods its owner
    chose; an owner who wants HEAD to behave like GET adds a HEAD (or ANY)
    route to the same function.

    Requests: the path is normalised (leading "/" added, trailing "/"
    removed except the root), split on "/", and only then each segment is
    percent-decoded, so "%2F" stays inside one segment. A malformed escape
    ("%zz", a lone "%") is kept literally. A segment that decodes to a NUL
    byte or to bytes that are not UTF-8 matches nothing (it could not be
    given to the function as a JSON string), so the request gets a 404.
    The path must not carry the query string.
    ========================================================================= */

#ifndef CLOWDY_ROUTE_H_INCLUDED
#define CLOWDY_ROUTE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#define ROUTE_MAX_PATH 2048         //  longest route pattern, bytes
#define ROUTE_MAX_SEGMENTS 64       //  most segments in a route pattern

typedef struct _route_table_t route_table_t;

//  What route_table_match found. Zero it before first use; every string and
//  the params object are owned by the match and freed by route_match_reset.
typedef struct {
    char *route_id;                 //  id of the matched route
    char *function_id;              //  function the route points to
    char *method;                   //  the route's method ("GET", "ANY", ...)
    char *pattern;                  //  the route's normalised path pattern
    cJSON *params;                  //  object: param name -> decoded value
} route_match_t;

//  Validate a route pattern (as stored: a single trailing "/" is tolerated
//  since it is normalised away). Returns 0, or -1 with a static sentence in
//  *detail (detail may be NULL) fit for a 422, e.g.
//  "Route path must start with '/'".
int
    route_validate_path (const char *path, const char **detail);

//  Returns 0 if method is GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or
//  ANY (upper case, as stored), else -1.
int
    route_validate_method (const char *method);

//  Normalise a path: leading "/" added, trailing "/"s removed except the
//  root. Returns a fresh string (free it with free), NULL if path is NULL.
char *
    route_normalize_path (const char *path);

//  Create an empty route table.
route_table_t *
    route_table_new (void);

//  Destroy a table; safe on NULL and twice.
void
    route_table_destroy (route_table_t **self_p);

//  Add a route; the path is normalised first. Returns 0; -1 if the method or
//  path is invalid (route_validate_*) or an argument is NULL; -2 if a route
//  with the same method and the same pattern shape (param names aside:
//  "/u/:id" and "/u/:uid" are the same) is already in the table: the first
//  one added stays (so add a project's routes oldest first).
int
    route_table_add (route_table_t *self, const char *route_id, const char *method,
                     const char *path, const char *function_id);

//  route_table_add that names the clash: on -2 sets *existing_id (if given)
//  to the id of the route already in the table (owned by the table), else
//  to NULL. The API checks a new route against a project's routes with it.
int
    route_table_try_add (route_table_t *self, const char *route_id, const char *method,
                         const char *path, const char *function_id, const char **existing_id);

//  Number of routes in the table.
size_t
    route_table_size (route_table_t *self);

//  Match a request's method and path (not yet normalised, not decoded, no
//  query string). A method that is not a route method ("PROPFIND") can
//  match ANY routes only. On success fills match (after resetting it) and returns 0;
//  returns -1 if nothing matches. Cost does not grow with the number of
//  routes: at most one visit per trie node on the request's path, each an
//  O(1) hash lookup (see route.c).
int
    route_table_match (route_table_t *self, const char *method, const char *path,
                       route_match_t *match);

//  Free what a match holds and zero it; safe on a zeroed match.
void
    route_match_reset (route_match_t *match);

//  Percent-decode size bytes of text into a fresh NUL-terminated string;
//  malformed escapes are kept literally; plus_as_space turns '+' into ' '
//  (query strings). Sets *out_size to the decoded length (may be NULL).
//  Returns NULL when out of memory or size is above INT_MAX.
char *
    route_percent_decode (const char *text, size_t size, bool plus_as_space, size_t *out_size);

//  Self test of this class.
void
    route_test (bool verbose);

#endif
