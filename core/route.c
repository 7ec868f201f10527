/*  =========================================================================
    route - the gateway's compiled route table

    Why: every gateway call has to find its route, and a project may have
    thousands of them, so lookup must not scan the list. Routes are compiled
    into a trie with one level per path segment. A node has:
      - its literal children in a hash (decoded segment -> node),
      - at most one param child (every ":name" at this depth shares it; the
        names live in the route, since "/u/:id" and "/u/:uid/x" share a node),
      - the routes that end here, one slot per method (ANY included),
      - the "*name" routes whose wildcard starts here, one slot per method.

    Matching splits and decodes the request path once, then walks the trie
    depth first: literal child, then param child, and at each node offers the
    wildcard and (at the end of the path) the terminal routes as candidates.
    It keeps the best candidate by the precedence in route.h, which is a
    total order, so insertion order never matters. Every step descends one
    trie edge and a trie is a tree, so a match visits each trie node at most
    once, and only nodes whose path agrees with the request: in practice a
    handful of O(1) hash lookups however many routes there are. A branch is
    cut when even all-literal remaining segments could not beat an exact-
    method best on literal count.

    Invariants: a route's shape string ('a' literal, 'b' param, 'c' wildcard
    per segment) plus its method identifies its slot; two routes in one slot
    are duplicates and the second is refused. Param values captured during
    the walk are indexes into the decoded segments, copied into the match
    only for the winner.
    ========================================================================= */

#include <czmq.h>
#include <curl/curl.h>
#include <time.h>
#include "core/route.h"
#include "core/util.h"

//  Methods a route may name; ANY is the last slot.
static const char *s_methods [] = {
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"
};
#define METHOD_COUNT 8
#define METHOD_ANY 7

//  One compiled route
typedef struct {
    char *id;                       //  route id
    char *function_id;              //  function it points to
    char *pattern;                  //  normalised path pattern
    int method;                     //  index into s_methods
    char *names [ROUTE_MAX_SEGMENTS];   //  param names in order, wildcard last
    size_t name_count;              //  entries in names
    size_t literals;                //  literal segments
    size_t params;                  //  ":name" segments
    bool wildcard;                  //  ends with "*name"
    char shape [ROUTE_MAX_SEGMENTS + 1];    //  'a' literal, 'b' param, 'c' wildcard
} route_t;

//  One trie node (one path depth)
typedef struct _node_t node_t;
struct _node_t {
    zhashx_t *literals;             //  decoded segment -> node_t, NULL until needed
    node_t *param;                  //  the ":name" child, NULL until needed
    route_t *end [METHOD_COUNT];    //  routes that end at this node, by method
    route_t *wild [METHOD_COUNT];   //  "*name" routes starting here, by method
};

struct _route_table_t {
    node_t *root;                   //  trie root (depth 0)
    route_t **routes;               //  every route added, owned
    size_t size;                    //  routes in use
    size_t capacity;                //  slots allocated in routes
};

//  A route pattern taken apart, before it goes into the trie
typedef struct {
    route_t *route;                 //  the route being built
    char *literal [ROUTE_MAX_SEGMENTS];     //  decoded literal per segment, or NULL
    size_t segments;                //  segments in the pattern
} parsed_t;

//  State of one match walk
typedef struct {
    char **segs;                    //  decoded request segments
    size_t count;                   //  number of segments
    int method;                     //  request method index, -1 if not a route method
    route_t *best;                  //  best candidate so far
    bool best_exact;                //  best matched by exact method (not ANY)
    size_t caps [ROUTE_MAX_SEGMENTS];       //  segment index of each param on the current path
    size_t best_caps [ROUTE_MAX_SEGMENTS];  //  the same, for best
    size_t best_wild_from;          //  first segment the best's wildcard takes
    size_t visits;                  //  trie nodes visited (for the bench)
} walk_t;


//  --------------------------------------------------------------------------
//  Text helpers

char *
route_percent_decode (const char *text, size_t size, bool plus_as_space, size_t *out_size)
{
    char *source = NULL;
    if (plus_as_space) {
        //  '+' first, so that an encoded "%2B" still decodes to '+'
        source = (char *) malloc (size + 1);
        if (!source)
            return NULL;
        for (size_t i = 0; i < size; i++)
            source [i] = text [i] == '+'? ' ': text [i];
        source [size] = 0;
        text = source;
    }
    if (size == 0 || size > INT_MAX) {
        //  libcurl reads a length of 0 as "use strlen"
        free (source);
        if (size)
            return NULL;
        if (out_size)
            *out_size = 0;
        return strdup ("");
    }
    //  libcurl decodes %XX and copies malformed escapes as they are
    int length = 0;
    char *decoded = curl_easy_unescape (NULL, text, (int) size, &length);
    free (source);
    if (!decoded)
        return NULL;
    char *result = (char *) malloc ((size_t) length + 1);
    if (result) {
        memcpy (result, decoded, (size_t) length);
        result [length] = 0;
        if (out_size)
            *out_size = (size_t) length;
    }
    curl_free (decoded);
    return result;
}

static int
s_method_index (const char *method)
{
    if (method)
        for (int index = 0; index < METHOD_COUNT; index++)
            if (streq (method, s_methods [index]))
                return index;
    return -1;
}

int
route_validate_method (const char *method)
{
    return s_method_index (method) < 0? -1: 0;
}

char *
route_normalize_path (const char *path)
{
    if (!path)
        return NULL;
    size_t length = strlen (path);
    while (length > 0 && path [length - 1] == '/')
        length--;
    bool slash = length == 0 || path [0] != '/';
    char *result = (char *) malloc (length + 2);
    if (!result)
        return NULL;
    size_t at = 0;
    if (slash)
        result [at++] = '/';
    memcpy (result + at, path, length);
    result [at + length] = 0;
    return result;
}


//  --------------------------------------------------------------------------
//  Pattern parsing

static bool
s_valid_name (const char *name, size_t size)
{
    if (size == 0 || !(isalpha ((unsigned char) name [0]) || name [0] == '_'))
        return false;
    for (size_t i = 1; i < size; i++)
        if (!(isalnum ((unsigned char) name [i]) || name [i] == '_'))
            return false;
    return true;
}

static void
s_route_destroy (route_t **self_p)
{
    if (*self_p) {
        route_t *self = *self_p;
        free (self->id);
        free (self->function_id);
        free (self->pattern);
        for (size_t i = 0; i < self->name_count; i++)
            free (self->names [i]);
        free (self);
        *self_p = NULL;
    }
}

static void
s_parsed_reset (parsed_t *parsed)
{
    s_route_destroy (&parsed->route);
    for (size_t i = 0; i < parsed->segments; i++)
        zstr_free (&parsed->literal [i]);
    parsed->segments = 0;
}

//  Take a pattern apart into parsed (the route's names, counts and shape,
//  and the decoded literals). Returns 0, or -1 with a sentence in *detail.
//  parsed must be zeroed; on error it holds nothing.
static int
s_parse (const char *path, parsed_t *parsed, const char **detail)
{
    const char *problem = NULL;
    if (!path || !*path)
        problem = "Route path is required";
    else
    if (path [0] != '/')
        problem = "Route path must start with '/'";
    else
    if (strlen (path) > ROUTE_MAX_PATH)
        problem = "Route path is too long";
    else
    if (!util_utf8_valid (path, strlen (path)))
        problem = "Route path must be valid UTF-8";
    if (problem) {
        if (detail)
            *detail = problem;
        return -1;
    }
    route_t *route = (route_t *) zmalloc (sizeof (route_t));
    parsed->route = route;
    size_t length = strlen (path);
    if (length > 1 && path [length - 1] == '/')
        length--;               //  one trailing slash is normalised away

    const char *cursor = path + 1;
    const char *end = path + length;
    while (cursor < end && !problem) {
        const char *slash = memchr (cursor, '/', (size_t) (end - cursor));
        const char *stop = slash? slash: end;
        size_t size = (size_t) (stop - cursor);
        if (size == 0) {
            problem = "Route path must not contain empty segments";
            break;
        }
        if (parsed->segments == ROUTE_MAX_SEGMENTS) {
            problem = "Route path has too many segments";
            break;
        }
        if (route->wildcard) {
            problem = "A '*' wildcard must be the last segment of a route path";
            break;
        }
        for (size_t i = 0; i < size; i++) {
            unsigned char c = (unsigned char) cursor [i];
            if (c < 0x20 || c == 0x7F || c == '?' || c == '#') {
                problem = "Route path contains an invalid character";
                break;
            }
        }
        if (problem)
            break;
        size_t index = parsed->segments;
        if (cursor [0] == ':' || cursor [0] == '*') {
            if (!s_valid_name (cursor + 1, size - 1)) {
                problem = "Route parameter names must match [A-Za-z_][A-Za-z0-9_]*";
                break;
            }
            for (size_t i = 0; i < route->name_count; i++)
                if (strlen (route->names [i]) == size - 1
                &&  memcmp (route->names [i], cursor + 1, size - 1) == 0)
                    problem = "Route parameter names must be unique";
            if (problem)
                break;
            char *name = (char *) zmalloc (size);
            memcpy (name, cursor + 1, size - 1);
            route->names [route->name_count++] = name;
            if (cursor [0] == ':') {
                route->params++;
                route->shape [index] = 'b';
            }
            else {
                route->wildcard = true;
                route->shape [index] = 'c';
            }
        }
        else {
            size_t decoded_size = 0;
            char *decoded = route_percent_decode (cursor, size, false, &decoded_size);
            if (!decoded)
                problem = "Out of memory";
            else
            if (decoded_size != strlen (decoded))
                problem = "Route path contains an invalid character";
            else
            if (!util_utf8_valid (decoded, decoded_size))
                problem = "Route path must be valid UTF-8";
            parsed->literal [index] = decoded;
            route->literals++;
            route->shape [index] = 'a';
        }
        parsed->segments++;
        cursor = stop + 1;
    }
    if (problem) {
        s_parsed_reset (parsed);
        if (detail)
            *detail = problem;
        return -1;
    }
    return 0;
}

int
route_validate_path (const char *path, const char **detail)
{
    parsed_t parsed = { 0 };
    int rc = s_parse (path, &parsed, detail);
    s_parsed_reset (&parsed);
    return rc;
}


//  --------------------------------------------------------------------------
//  The trie

static node_t *
s_node_new (void)
{
    return (node_t *) zmalloc (sizeof (node_t));
}

static void
s_node_destroy (node_t **self_p)
{
    if (*self_p) {
        node_t *self = *self_p;
        zhashx_destroy (&self->literals);
        s_node_destroy (&self->param);
        free (self);
        *self_p = NULL;
    }
}

//  zhashx item destructor for literal children
static void
s_node_destructor (void **item)
{
    s_node_destroy ((node_t **) item);
}

route_table_t *
route_table_new (void)
{
    route_table_t *self = (route_table_t *) zmalloc (sizeof (route_table_t));
    self->root = s_node_new ();
    return self;
}

void
route_table_destroy (route_table_t **self_p)
{
    if (self_p && *self_p) {
        route_table_t *self = *self_p;
        s_node_destroy (&self->root);
        for (size_t i = 0; i < self->size; i++)
            s_route_destroy (&self->routes [i]);
        free (self->routes);
        free (self);
        *self_p = NULL;
    }
}

size_t
route_table_size (route_table_t *self)
{
    return self? self->size: 0;
}

int
route_table_add (route_table_t *self, const char *route_id, const char *method,
                 const char *path, const char *function_id)
{
    return route_table_try_add (self, route_id, method, path, function_id, NULL);
}

int
route_table_try_add (route_table_t *self, const char *route_id, const char *method,
                     const char *path, const char *function_id, const char **existing_id)
{
    if (existing_id)
        *existing_id = NULL;
    if (!self || !route_id || !function_id)
        return -1;
    int method_index = s_method_index (method);
    if (method_index < 0)
        return -1;
    parsed_t parsed = { 0 };
    if (s_parse (path, &parsed, NULL))
        return -1;

    //  Walk (and grow) the trie down to the route's last node
    node_t *node = self->root;
    route_t *route = parsed.route;
    for (size_t index = 0; index < parsed.segments; index++) {
        char kind = route->shape [index];
        if (kind == 'c')
            break;              //  the wildcard hangs off the node it starts at
        if (kind == 'b') {
            if (!node->param)
                node->param = s_node_new ();
            node = node->param;
        }
        else {
            if (!node->literals) {
                node->literals = zhashx_new ();
                zhashx_set_destructor (node->literals, s_node_destructor);
            }
            node_t *child = (node_t *) zhashx_lookup (node->literals, parsed.literal [index]);
            if (!child) {
                child = s_node_new ();
                zhashx_insert (node->literals, parsed.literal [index], child);
            }
            node = child;
        }
    }
    route_t **slot = route->wildcard? &node->wild [method_index]: &node->end [method_index];
    if (*slot) {
        if (existing_id)
            *existing_id = (*slot)->id;
        s_parsed_reset (&parsed);
        return -2;
    }
    if (self->size == self->capacity) {
        size_t capacity = self->capacity? self->capacity * 2: 16;
        route_t **routes = (route_t **) realloc (self->routes, capacity * sizeof (route_t *));
        if (!routes) {
            s_parsed_reset (&parsed);
            return -1;
        }
        self->routes = routes;
        self->capacity = capacity;
    }
    route->id = strdup (route_id);
    route->function_id = strdup (function_id);
    route->pattern = route_normalize_path (path);
    route->method = method_index;
    if (!route->id || !route->function_id || !route->pattern) {
        s_parsed_reset (&parsed);
        return -1;
    }
    *slot = route;
    self->routes [self->size++] = route;
    parsed.route = NULL;        //  the table owns it now
    s_parsed_reset (&parsed);
    return 0;
}


//  --------------------------------------------------------------------------
//  Matching

//  True if route a (matched by exact method or not) ranks above b
static bool
s_better (const route_t *a, bool a_exact, const route_t *b, bool b_exact)
{
    if (!b)
        return true;
    if (a_exact != b_exact)
        return a_exact;
    if (a->literals != b->literals)
        return a->literals > b->literals;
    if (a->wildcard != b->wildcard)
        return !a->wildcard;
    if (a->params != b->params)
        return a->params < b->params;
    return strcmp (a->shape, b->shape) < 0;
}

static void
s_offer (walk_t *walk, route_t *const *slots, size_t params, size_t wild_from)
{
    route_t *candidates [2] = {
        walk->method >= 0? slots [walk->method]: NULL,
        slots [METHOD_ANY]
    };
    for (int i = 0; i < 2; i++) {
        route_t *route = candidates [i];
        bool exact = i == 0;
        if (route && (route != walk->best) && s_better (route, exact, walk->best, walk->best_exact)) {
            walk->best = route;
            walk->best_exact = exact;
            memcpy (walk->best_caps, walk->caps, params * sizeof (size_t));
            walk->best_wild_from = wild_from;
        }
    }
}

static void
s_walk (walk_t *walk, node_t *node, size_t depth, size_t literals, size_t params)
{
    walk->visits++;
    //  Even if every remaining segment matched a literal, could this branch
    //  still beat an exact-method best? Wildcards count: their literal
    //  count is at most what was matched already.
    if (walk->best && walk->best_exact
    &&  literals + (walk->count - depth) < walk->best->literals)
        return;
    s_offer (walk, node->wild, params, depth);
    if (depth == walk->count) {
        s_offer (walk, node->end, params, depth);
        return;
    }
    const char *segment = walk->segs [depth];
    if (node->literals) {
        node_t *child = (node_t *) zhashx_lookup (node->literals, segment);
        if (child)
            s_walk (walk, child, depth + 1, literals + 1, params);
    }
    if (node->param && *segment && params < ROUTE_MAX_SEGMENTS) {
        walk->caps [params] = depth;
        s_walk (walk, node->param, depth + 1, literals, params + 1);
    }
}

void
route_match_reset (route_match_t *match)
{
    if (match) {
        free (match->route_id);
        free (match->function_id);
        free (match->method);
        free (match->pattern);
        cJSON_Delete (match->params);
        memset (match, 0, sizeof (*match));
    }
}

//  Match with the walk state left for the caller (selftest reads visits)
static int
s_match (route_table_t *self, const char *method, const char *path,
         route_match_t *match, walk_t *walk)
{
    route_match_reset (match);
    if (!self || !method || !path || !match)
        return -1;
    char *normal = route_normalize_path (path);
    if (!normal)
        return -1;

    //  Split, then decode each segment
    size_t count = 0;
    if (normal [1])
        for (const char *c = normal; *c; c++)
            count += *c == '/';
    char **segs = (char **) calloc (count? count: 1, sizeof (char *));
    int rc = segs? 0: -1;
    const char *cursor = normal + 1;
    for (size_t index = 0; index < count && rc == 0; index++) {
        const char *slash = strchr (cursor, '/');
        size_t size = slash? (size_t) (slash - cursor): strlen (cursor);
        size_t decoded_size = 0;
        segs [index] = route_percent_decode (cursor, size, false, &decoded_size);
        if (!segs [index]
        ||  decoded_size != strlen (segs [index])
        ||  !util_utf8_valid (segs [index], decoded_size))
            rc = -1;
        cursor += size + 1;
    }
    if (rc == 0) {
        walk->segs = segs;
        walk->count = count;
        walk->method = s_method_index (method);
        s_walk (walk, self->root, 0, 0, 0);
        rc = walk->best? 0: -1;
    }
    if (rc == 0) {
        route_t *route = walk->best;
        match->route_id = strdup (route->id);
        match->function_id = strdup (route->function_id);
        match->method = strdup (s_methods [route->method]);
        match->pattern = strdup (route->pattern);
        match->params = cJSON_CreateObject ();
        for (size_t i = 0; i < route->params; i++)
            cJSON_AddStringToObject (match->params, route->names [i],
                                     segs [walk->best_caps [i]]);
        if (route->wildcard) {
            //  The rest of the path, decoded segments joined with '/'
            size_t size = 1;
            for (size_t i = walk->best_wild_from; i < count; i++)
                size += strlen (segs [i]) + 1;
            char *rest = (char *) zmalloc (size);
            char *at = rest;
            for (size_t i = walk->best_wild_from; i < count; i++) {
                if (at != rest)
                    *at++ = '/';
                size_t length = strlen (segs [i]);
                memcpy (at, segs [i], length);
                at += length;
            }
            *at = 0;
            cJSON_AddStringToObject (match->params, route->names [route->name_count - 1], rest);
            free (rest);
        }
        if (!match->route_id || !match->function_id || !match->method
        ||  !match->pattern || !match->params) {
            route_match_reset (match);
            rc = -1;
        }
    }
    if (segs)
        for (size_t i = 0; i < count; i++)
            free (segs [i]);
    free (segs);
    free (normal);
    return rc;
}

int
route_table_match (route_table_t *self, const char *method, const char *path,
                   route_match_t *match)
{
    walk_t walk;
    memset (&walk, 0, sizeof (walk));
    return s_match (self, method, path, match, &walk);
}


//  --------------------------------------------------------------------------
//  Selftest

//  Match and return the route id (static buffer), or "-" when nothing matches
static const char *
s_which (route_table_t *table, const char *method, const char *path)
{
    static char id [64];
    route_match_t match = { 0 };
    if (route_table_match (table, method, path, &match) != 0)
        return "-";
    snprintf (id, sizeof id, "%s", match.route_id);
    route_match_reset (&match);
    return id;
}

//  Match and return params.name (static buffer), "-" if no match, "?" if unset
static const char *
s_param (route_table_t *table, const char *method, const char *path, const char *name)
{
    static char value [256];
    route_match_t match = { 0 };
    if (route_table_match (table, method, path, &match) != 0)
        return "-";
    cJSON *item = cJSON_GetObjectItemCaseSensitive (match.params, name);
    snprintf (value, sizeof value, "%s", cJSON_IsString (item)? item->valuestring: "?");
    route_match_reset (&match);
    return value;
}

//  A precedence case: route a must win over route b for the request, when
//  added in either order, and each must still match alone.
static void
s_assert_wins (const char *method, const char *path,
               const char *a_method, const char *a_path,
               const char *b_method, const char *b_path)
{
    for (int order = 0; order < 2; order++) {
        route_table_t *table = route_table_new ();
        if (order == 0) {
            assert (route_table_add (table, "a", a_method, a_path, "fa") == 0);
            assert (route_table_add (table, "b", b_method, b_path, "fb") == 0);
        }
        else {
            assert (route_table_add (table, "b", b_method, b_path, "fb") == 0);
            assert (route_table_add (table, "a", a_method, a_path, "fa") == 0);
        }
        const char *winner = s_which (table, method, path);
        if (strneq (winner, "a")) {
            printf ("\nprecedence: %s %s: expected %s %s over %s %s, got %s (order %d)\n",
                    method, path, a_method, a_path, b_method, b_path, winner, order);
            assert (false);
        }
        route_table_destroy (&table);
    }
    route_table_t *table = route_table_new ();
    assert (route_table_add (table, "b", b_method, b_path, "fb") == 0);
    assert (streq (s_which (table, method, path), "b"));
    route_table_destroy (&table);
}

static int
s_compare_long (const void *a, const void *b)
{
    long x = *(const long *) a, y = *(const long *) b;
    return x < y? -1: x > y;
}

static long
s_now_ns (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return now.tv_sec * 1000000000L + now.tv_nsec;
}

//  Build a table of `routes` routes of several shapes and time `samples`
//  matches spread over them (or, if hot, one request for the middle route
//  over and over); fills p50/p99 in nanoseconds and the largest number of
//  trie nodes a match visited.
static void
s_bench (size_t routes, size_t samples, bool hot, long *p50, long *p99, size_t *max_visits)
{
    route_table_t *table = route_table_new ();
    char path [128], id [32];
    for (size_t i = 0; i < routes; i++) {
        snprintf (id, sizeof id, "r%zu", i);
        switch (i % 5) {
            case 0: snprintf (path, sizeof path, "/svc%zu/users/:id", i); break;
            case 1: snprintf (path, sizeof path, "/svc%zu/users/:id/posts/:post", i); break;
            case 2: snprintf (path, sizeof path, "/svc%zu/files/*path", i); break;
            case 3: snprintf (path, sizeof path, "/:tenant/svc%zu/items", i); break;
            default: snprintf (path, sizeof path, "/svc%zu/static/page", i); break;
        }
        assert (route_table_add (table, id, i % 2? "ANY": "GET", path, "f") == 0);
    }
    long *times = (long *) malloc (samples * sizeof (long));
    route_match_t match = { 0 };
    *max_visits = 0;
    for (size_t s = 0; s < samples; s++) {
        size_t i = hot? routes / 2: (s * 7919) % routes;
        switch (i % 5) {
            case 0: snprintf (path, sizeof path, "/svc%zu/users/42", i); break;
            case 1: snprintf (path, sizeof path, "/svc%zu/users/42/posts/7", i); break;
            case 2: snprintf (path, sizeof path, "/svc%zu/files/a/b/c.txt", i); break;
            case 3: snprintf (path, sizeof path, "/acme/svc%zu/items", i); break;
            default: snprintf (path, sizeof path, "/svc%zu/static/page", i); break;
        }
        walk_t walk;
        memset (&walk, 0, sizeof (walk));
        long start = s_now_ns ();
        int rc = s_match (table, "GET", path, &match, &walk);
        times [s] = s_now_ns () - start;
        assert (rc == 0);
        snprintf (id, sizeof id, "r%zu", i);
        assert (streq (match.route_id, id));
        if (walk.visits > *max_visits)
            *max_visits = walk.visits;
    }
    route_match_reset (&match);
    qsort (times, samples, sizeof (long), s_compare_long);
    *p50 = times [samples / 2];
    *p99 = times [samples * 99 / 100];
    free (times);
    route_table_destroy (&table);
}

void
route_test (bool verbose)
{
    printf ("route: ");
    const char *detail = NULL;

    //  Methods
    const char *good_methods [] = { "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY" };
    for (size_t i = 0; i < sizeof good_methods / sizeof good_methods [0]; i++)
        assert (route_validate_method (good_methods [i]) == 0);
    assert (route_validate_method ("get") == -1);
    assert (route_validate_method ("TRACE") == -1);
    assert (route_validate_method ("") == -1);
    assert (route_validate_method (NULL) == -1);

    //  Normalisation
    const char *normal [][2] = {
        { "", "/" }, { "/", "/" }, { "//", "/" }, { "users", "/users" },
        { "/users/", "/users" }, { "users/5/", "/users/5" }, { "/a//", "/a" },
        { "/a//b", "/a//b" }
    };
    for (size_t i = 0; i < sizeof normal / sizeof normal [0]; i++) {
        char *result = route_normalize_path (normal [i][0]);
        assert (streq (result, normal [i][1]));
        free (result);
    }
    assert (route_normalize_path (NULL) == NULL);

    //  Valid and invalid patterns, each with its sentence
    const char *valid [] = {
        "/", "/users", "/users/", "/users/:id", "/users/:id/posts/:post_id",
        "/files/*path", "/*rest", "/:a/:b/*c", "/café/:nom", "/a%20b", "/a:b", "/v1.0/x-y_z~",
        "/_x/:_y/:Z9"
    };
    for (size_t i = 0; i < sizeof valid / sizeof valid [0]; i++) {
        detail = NULL;
        if (route_validate_path (valid [i], &detail) != 0) {
            printf ("\n%s rejected: %s\n", valid [i], detail);
            assert (false);
        }
    }
    const char *invalid [][2] = {
        { "", "Route path is required" },
        { "users", "Route path must start with '/'" },
        { "/a//b", "Route path must not contain empty segments" },
        { "/a///", "Route path must not contain empty segments" },
        { "/users/:", "Route parameter names must match [A-Za-z_][A-Za-z0-9_]*" },
        { "/users/:1d", "Route parameter names must match [A-Za-z_][A-Za-z0-9_]*" },
        { "/users/:i-d", "Route parameter names must match [A-Za-z_][A-Za-z0-9_]*" },
        { "/files/*", "Route parameter names must match [A-Za-z_][A-Za-z0-9_]*" },
        { "/:id/x/:id", "Route parameter names must be unique" },
        { "/:id/*id", "Route parameter names must be unique" },
        { "/files/*path/x", "A '*' wildcard must be the last segment of a route path" },
        { "/*a/*b", "A '*' wildcard must be the last segment of a route path" },
        { "/a?b=1", "Route path contains an invalid character" },
        { "/a#frag", "Route path contains an invalid character" },
        { "/a\tb", "Route path contains an invalid character" },
        { "/a%00b", "Route path contains an invalid character" },
        { "/caf\xe9", "Route path must be valid UTF-8" },
        { "/a%FFb", "Route path must be valid UTF-8" },
    };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid [0]; i++) {
        detail = NULL;
        int rc = route_validate_path (invalid [i][0], &detail);
        if (rc != -1 || !detail || strneq (detail, invalid [i][1])) {
            printf ("\n%s: rc=%d detail=%s\n", invalid [i][0], rc, detail? detail: "(none)");
            assert (false);
        }
    }
    assert (route_validate_path (NULL, &detail) == -1);
    assert (route_validate_path ("users", NULL) == -1);
    char long_path [ROUTE_MAX_PATH + 8];
    memset (long_path, 'a', sizeof long_path - 1);
    long_path [0] = '/';
    long_path [sizeof long_path - 1] = 0;
    assert (route_validate_path (long_path, &detail) == -1);
    assert (streq (detail, "Route path is too long"));
    char deep [ROUTE_MAX_SEGMENTS * 2 + 8] = "";
    for (int i = 0; i <= ROUTE_MAX_SEGMENTS; i++)
        strcat (deep, "/a");
    assert (route_validate_path (deep, &detail) == -1);
    assert (streq (detail, "Route path has too many segments"));
    deep [ROUTE_MAX_SEGMENTS * 2] = 0;
    assert (route_validate_path (deep, &detail) == 0);

    //  A table: params, literals, root, trailing slash
    route_table_t *table = route_table_new ();
    assert (table);
    assert (route_table_size (table) == 0);
    assert (route_table_add (table, "root", "GET", "/", "f-root") == 0);
    assert (route_table_add (table, "user", "GET", "/users/:id", "f-user") == 0);
    assert (route_table_add (table, "users", "POST", "/users/", "f-users") == 0);
    assert (route_table_add (table, "post", "GET", "/users/:id/posts/:post_id", "f-post") == 0);
    assert (route_table_add (table, "files", "ANY", "/files/*path", "f-files") == 0);
    assert (route_table_add (table, "cafe", "GET", "/café/:nom", "f-cafe") == 0);
    assert (route_table_add (table, "space", "GET", "/a%20b", "f-space") == 0);
    assert (route_table_size (table) == 7);

    route_match_t match = { 0 };
    assert (route_table_match (table, "GET", "/users/42", &match) == 0);
    assert (streq (match.route_id, "user"));
    assert (streq (match.function_id, "f-user"));
    assert (streq (match.method, "GET"));
    assert (streq (match.pattern, "/users/:id"));
    assert (cJSON_GetArraySize (match.params) == 1);
    assert (streq (cJSON_GetObjectItem (match.params, "id")->valuestring, "42"));
    //  Reusing a match frees what it held (ASan checks)
    assert (route_table_match (table, "GET", "/users/42/posts/7", &match) == 0);
    assert (streq (match.route_id, "post"));
    assert (streq (cJSON_GetObjectItem (match.params, "id")->valuestring, "42"));
    assert (streq (cJSON_GetObjectItem (match.params, "post_id")->valuestring, "7"));
    assert (route_table_match (table, "GET", "/nothing", &match) == -1);
    assert (match.route_id == NULL && match.params == NULL);
    route_match_reset (&match);
    route_match_reset (&match);

    assert (streq (s_which (table, "GET", "/"), "root"));
    assert (streq (s_which (table, "GET", ""), "root"));
    assert (streq (s_which (table, "GET", "//"), "root"));
    assert (streq (s_which (table, "POST", "/"), "-"));
    assert (streq (s_which (table, "GET", "/users/42/"), "user"));
    assert (streq (s_which (table, "GET", "users/42"), "user"));
    assert (streq (s_which (table, "POST", "/users"), "users"));
    assert (streq (s_which (table, "POST", "/users/"), "users"));
    assert (streq (s_which (table, "GET", "/users"), "-"));           //  no GET /users
    assert (streq (s_which (table, "GET", "/users//"), "-"));         //  trailing "/"s all go: GET /users
    assert (streq (s_which (table, "GET", "/users//posts/1"), "-"));  //  empty segment is no param
    assert (streq (s_which (table, "GET", "/Users/42"), "-"));        //  case-sensitive
    assert (streq (s_which (table, "GET", "/users/42/posts"), "-"));
    assert (streq (s_which (table, "DELETE", "/users/42"), "-"));
    assert (streq (s_which (table, "HEAD", "/users/42"), "-"));       //  HEAD is not GET
    assert (streq (s_which (table, "get", "/users/42"), "-"));        //  methods are case-sensitive

    //  Wildcard: zero, one and many segments; any method (ANY)
    assert (streq (s_param (table, "GET", "/files", "path"), ""));
    assert (streq (s_param (table, "GET", "/files/", "path"), ""));
    assert (streq (s_param (table, "PUT", "/files/a.txt", "path"), "a.txt"));
    assert (streq (s_param (table, "DELETE", "/files/a/b/c.txt", "path"), "a/b/c.txt"));
    assert (streq (s_param (table, "PROPFIND", "/files/x", "path"), "x"));  //  ANY takes any method
    assert (streq (s_param (table, "GET", "/files/a//b", "path"), "a//b")); //  empty segments kept
    assert (streq (s_param (table, "GET", "/files/a%20b/c%2Fd", "path"), "a b/c/d"));
    assert (streq (s_which (table, "GET", "/filesx"), "-"));

    //  Percent-encoding, decoded per segment after splitting
    assert (streq (s_param (table, "GET", "/users/a%20b", "id"), "a b"));
    assert (streq (s_param (table, "GET", "/users/a%2Fb", "id"), "a/b"));   //  %2F stays in one param
    assert (streq (s_param (table, "GET", "/users/a%2fb", "id"), "a/b"));
    assert (streq (s_param (table, "GET", "/users/a+b", "id"), "a+b"));     //  '+' is not a space in paths
    assert (streq (s_param (table, "GET", "/users/%zz", "id"), "%zz"));     //  bad escape kept literally
    assert (streq (s_param (table, "GET", "/users/100%", "id"), "100%"));
    assert (streq (s_param (table, "GET", "/users/%4", "id"), "%4"));
    assert (streq (s_which (table, "GET", "/users/a%00b"), "-"));           //  NUL: no match
    assert (streq (s_which (table, "GET", "/users/%FF"), "-"));             //  not UTF-8: no match
    assert (streq (s_which (table, "GET", "/users/%C0%AF"), "-"));          //  overlong '/'
    assert (streq (s_which (table, "GET", "/users/%ED%A0%80"), "-"));       //  surrogate
    assert (streq (s_which (table, "GET", "/users/%F4%90%80%80"), "-"));    //  past U+10FFFF
    assert (streq (s_which (table, "GET", "/%75sers/42"), "user"));         //  literal encoded in request
    assert (streq (s_which (table, "GET", "/a%20b"), "space"));             //  encoded in pattern and request
    assert (streq (s_which (table, "GET", "/a b"), "space"));
    assert (streq (s_which (table, "GET", "/a%2520b"), "-"));

    //  Unicode, raw or encoded, in literals and params
    assert (streq (s_param (table, "GET", "/café/crème", "nom"), "crème"));
    assert (streq (s_param (table, "GET", "/caf%C3%A9/%E2%9C%93", "nom"), "✓"));
    assert (streq (s_param (table, "GET", "/café/日本語", "nom"), "日本語"));
    assert (streq (s_param (table, "GET", "/users/\xF0\x9F\x98\x80", "id"), "\xF0\x9F\x98\x80"));
    assert (streq (s_which (table, "GET", "/cafe/x"), "-"));
    assert (streq (s_which (table, "GET", "/caf\xe9/x"), "-"));             //  latin-1 bytes

    //  Duplicates: same method and shape refused, first one stays
    assert (route_table_add (table, "user2", "GET", "/users/:uid", "f-other") == -2);
    assert (route_table_add (table, "user3", "GET", "/users/:id/", "f-other") == -2);
    assert (route_table_add (table, "files2", "ANY", "/files/*rest", "f-other") == -2);
    //  try_add names the route that stays
    const char *existing = "x";
    assert (route_table_try_add (table, "user4", "GET", "/users/:who", "f", &existing) == -2);
    assert (existing && streq (existing, "user"));
    assert (route_table_try_add (table, "files3", "ANY", "/files/*all", "f", &existing) == -2);
    assert (existing && streq (existing, "files"));
    assert (route_table_try_add (table, "bad", "GET", "/x/:", "f", &existing) == -1 && existing == NULL);
    assert (route_table_add (table, "root2", "GET", "", "f-other") == -1);  //  invalid path
    assert (route_table_add (table, "bad", "GET", "/x/:", "f") == -1);
    assert (route_table_add (table, "bad", "FETCH", "/x", "f") == -1);
    assert (route_table_add (table, "bad", "GET", NULL, "f") == -1);
    assert (route_table_add (table, NULL, "GET", "/x", "f") == -1);
    assert (route_table_add (table, "bad", "GET", "/x", NULL) == -1);
    assert (route_table_add (NULL, "bad", "GET", "/x", "f") == -1);
    assert (route_table_size (table) == 7);
    assert (streq (s_param (table, "GET", "/users/9", "id"), "9"));
    //  Same shape, other method: not a duplicate
    assert (route_table_add (table, "user-put", "PUT", "/users/:uid", "f-put") == 0);
    assert (streq (s_param (table, "PUT", "/users/9", "uid"), "9"));
    assert (streq (s_param (table, "PUT", "/users/9", "id"), "?"));
    //  Bad arguments never crash
    assert (route_table_match (NULL, "GET", "/", &match) == -1);
    assert (route_table_match (table, NULL, "/", &match) == -1);
    assert (route_table_match (table, "GET", NULL, &match) == -1);
    assert (route_table_match (table, "GET", "/", NULL) == -1);
    route_table_destroy (&table);
    route_table_destroy (&table);
    assert (table == NULL);

    //  Precedence, every rule, both insertion orders
    //  1. exact method beats ANY, even when ANY is more specific
    s_assert_wins ("GET", "/users/5", "GET", "/users/:id", "ANY", "/users/:id");
    s_assert_wins ("GET", "/users/5", "GET", "/:a/:b", "ANY", "/users/5");
    s_assert_wins ("GET", "/files/x", "GET", "/*all", "ANY", "/files/:name");
    //  2. more literal segments first
    s_assert_wins ("GET", "/users/me", "GET", "/users/me", "GET", "/users/:id");
    s_assert_wins ("GET", "/a/b/c", "GET", "/a/:x/c", "GET", "/:x/:y/c");
    s_assert_wins ("GET", "/a/b/c", "GET", "/a/b/*rest", "GET", "/a/:x/:y");   //  literals before wildcard
    s_assert_wins ("GET", "/a/b/c", "GET", "/:x/b/c", "GET", "/a/*rest");
    //  3. no wildcard beats a wildcard at equal literals
    s_assert_wins ("GET", "/files/x", "GET", "/files/:name", "GET", "/files/*path");
    s_assert_wins ("GET", "/files/x/y", "GET", "/files/:a/:b", "GET", "/files/*path");
    s_assert_wins ("GET", "/files", "GET", "/files", "GET", "/files/*path");
    s_assert_wins ("GET", "/", "GET", "/", "GET", "/*all");
    //  4. fewer params at equal literals and wildcard (without a wildcard,
    //  equal literals on one request means equal params, so only wildcard
    //  routes get this far)
    s_assert_wins ("GET", "/a/b/c", "GET", "/a/*rest", "GET", "/a/:x/*rest");
    s_assert_wins ("GET", "/x/y/z", "GET", "/*rest", "GET", "/:p/:q/*rest");
    //  5. tie: the earlier literal wins
    s_assert_wins ("GET", "/a/b", "GET", "/a/:y", "GET", "/:x/b");
    s_assert_wins ("GET", "/a/b/c", "GET", "/a/:y/*rest", "GET", "/:x/b/*rest");
    //  Backtracking past a better-looking branch
    s_assert_wins ("GET", "/a/b/c/d", "GET", "/a/:x/c/d", "GET", "/a/b/*rest");
    table = route_table_new ();
    assert (route_table_add (table, "new", "GET", "/users/new", "f") == 0);
    assert (route_table_add (table, "edit", "GET", "/users/:id/edit", "f") == 0);
    assert (route_table_add (table, "deep", "GET", "/users/new/x/y", "f") == 0);
    assert (streq (s_which (table, "GET", "/users/new"), "new"));
    assert (streq (s_param (table, "GET", "/users/new/edit", "id"), "new"));
    assert (streq (s_which (table, "GET", "/users/new/x"), "-"));
    route_table_destroy (&table);

    //  Params come from the winning path only
    table = route_table_new ();
    assert (route_table_add (table, "one", "GET", "/:x/b/:z", "f") == 0);
    assert (route_table_add (table, "two", "GET", "/a/:y/c", "f") == 0);
    assert (route_table_match (table, "GET", "/a/b/c", &match) == 0);
    assert (streq (match.route_id, "two"));         //  2 literals beat 1
    assert (cJSON_GetArraySize (match.params) == 1);
    assert (streq (cJSON_GetObjectItem (match.params, "y")->valuestring, "b"));
    assert (route_table_match (table, "GET", "/q/b/r", &match) == 0);
    assert (streq (match.route_id, "one"));
    assert (streq (cJSON_GetObjectItem (match.params, "x")->valuestring, "q"));
    assert (streq (cJSON_GetObjectItem (match.params, "z")->valuestring, "r"));
    route_match_reset (&match);
    route_table_destroy (&table);

    //  The bench: lookup cost does not grow with the number of routes. The
    //  samples walk over all the routes, so a big table also pays for cache
    //  misses that a 10-route table (all in L1) does not; the nodes visited
    //  per match are the algorithm's cost and must be the same.
    long p50_small, p99_small, p50_big, p99_big;
    size_t visits_small, visits_big;
    s_bench (10, 20000, false, &p50_small, &p99_small, &visits_small);
    s_bench (10000, 20000, false, &p50_big, &p99_big, &visits_big);
    if (verbose) {
        //  Also 1,000 and 100,000 routes, to show the curve flattens
        size_t sizes [] = { 10, 1000, 10000, 100000 };
        for (size_t i = 0; i < 4; i++) {
            long p50 = p50_small, p99 = p99_small;
            size_t visits = visits_small;
            if (sizes [i] == 10000) {
                p50 = p50_big;
                p99 = p99_big;
                visits = visits_big;
            }
            else
            if (sizes [i] != 10)
                s_bench (sizes [i], 20000, false, &p50, &p99, &visits);
            printf ("\n    %6zu routes: match p50 %5ld ns, p99 %5ld ns, at most %zu trie nodes visited",
                    sizes [i], p50, p99, visits);
        }
        //  One request again and again (caches warm): the algorithm alone
        for (size_t i = 0; i < 4; i++) {
            long p50, p99;
            size_t visits;
            s_bench (sizes [i], 20000, true, &p50, &p99, &visits);
            printf ("\n    %6zu routes, one request repeated: p50 %5ld ns, p99 %5ld ns",
                    sizes [i], p50, p99);
        }
        printf ("\n    ");
    }
    assert (visits_big == visits_small);
    //  Generous bound so that a loaded machine or ASan does not fail it;
    //  a linear scan of 10,000 routes would be some 1000 times slower.
    assert (p50_big < p50_small * 5 + 2000);

    printf ("OK\n");
}
