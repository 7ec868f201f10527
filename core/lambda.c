/*  =========================================================================
    lambda - the Lambda-compatible API under /2015-03-31 (see lambda.h)

    Why: people have `aws lambda invoke` and boto3 in their scripts. With
    --endpoint-url pointing here, those work unchanged against Clowdy.

    How Lambda's model maps onto Clowdy's:
    - A function is found by its Clowdy id or its name (the caller's
      newest function of that name), also inside an ARN
      (arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]).
    - Code: Clowdy keeps one Python file per version, with `handler`. A
      Lambda zip gives the file the Handler names (`module.function` takes
      module.py, `dir/module.function` dir/module.py); other files in the zip
      are not used. Clowdy appends two lines to it: a marker comment that
      keeps the Handler, and `handler = function` when the function is not
      called `handler`. GetFunction reads the Handler back from the marker.
    - Versions: $LATEST (or no qualifier) runs the active version and says
      $LATEST; a number runs that version's code (gateway makes an entry for
      it, with the function's current settings), and says it. An Event
      runs the active version only (the async queue knows no other): 409
      for another. X-Amz-Executed-Version says which ran.
    - Everything a write does goes through the REST handlers (core/api.h),
      on this same thread and store, so validation, version numbering and
      the gateway's invalidation are the REST API's own.

    Error types: ResourceNotFoundException 404, ResourceConflictException
    409, InvalidRequestContentException 400 (a body that is not JSON),
    InvalidParameterValueException 400 (a field out of range, a bad zip),
    RequestTooLargeException 413, TooManyRequestsException 429,
    ServiceException 5xx.
    ========================================================================= */

#include <czmq.h>
#include <zip.h>
#include <openssl/evp.h>
#include "core/api_call.h"
#include "core/lambda.h"
#include "core/asyncq.h"

#define LAMBDA_ARN_PREFIX       "arn:aws:lambda:local:000000000000:function:"
#define LAMBDA_HANDLER_MARKER   "# clowdy: Lambda Handler "
#define LAMBDA_DEFAULT_HANDLER  "main.handler"
#define LAMBDA_CODE_MAX         (1024 * 1024)   //  a version's code, as the REST API allows
#define LAMBDA_EVENT_MAX        (256 * 1024)    //  an Event payload, as Lambda's
#define LAMBDA_LIST_MAX         50              //  a page, as AWS's ListFunctions (more asks get this)

//  --------------------------------------------------------------------------
//  Small helpers

bool
lambda_is_path (const char *path)
{
    return path && (strncmp (path, LAMBDA_PREFIX, strlen (LAMBDA_PREFIX)) == 0 || streq (path, "/2015-03-31"));
}

char *
lambda_error_json (const char *error_type, const char *message)
{
    cJSON *json = cJSON_CreateObject ();
    cJSON_AddStringToObject (json, "__type", error_type);
    //  Lambda's own: "User" for what the caller can fix, "Service" for ours
    bool service = streq (error_type, "ServiceException");
    cJSON_AddStringToObject (json, "Type", service ? "Service" : "User");
    cJSON_AddStringToObject (json, "Message", message ? message : "");
    char *text = cJSON_PrintUnformatted (json);
    cJSON_Delete (json);
    return text;
}

cJSON *
lambda_headers (int status, const char *body)
{
    cJSON *headers = cJSON_CreateObject ();
    if (status == 204)
        return headers;
    cJSON_AddStringToObject (headers, "Content-Type", "application/json");
    if (status >= 400 && body) {
        cJSON *json = cJSON_Parse (body);
        const char *type = cJSON_GetStringValue (cJSON_GetObjectItemCaseSensitive (json, "__type"));
        cJSON_AddStringToObject (headers, "x-amzn-ErrorType", type ? type : "ServiceException");
        cJSON_Delete (json);
    }
    return headers;
}

static int
s_error (api_response_t *resp, int status, const char *error_type, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char *message = zsys_vprintf (format, args);
    va_end (args);
    free (resp->body);
    resp->status = status;
    resp->body = lambda_error_json (error_type, message);
    zstr_free (&message);
    return 0;
}

static int
s_reply (api_response_t *resp, int status, cJSON *json)
{
    free (resp->body);
    resp->status = status;
    resp->body = json ? cJSON_PrintUnformatted (json) : strdup ("");
    cJSON_Delete (json);
    return 0;
}

//  Percent-decode a query value ('+' is a space); heap
static char *
s_decode (const char *text)
{
    char *out = (char *) malloc (strlen (text) + 1);
    size_t used = 0;
    for (const char *c = text; *c; c++) {
        if (*c == '%' && isxdigit ((unsigned char) c [1]) && isxdigit ((unsigned char) c [2])) {
            char hex [3] = { c [1], c [2], 0 };
            out [used++] = (char) strtol (hex, NULL, 16);
            c += 2;
        }
        else
            out [used++] = *c == '+' ? ' ' : *c;
    }
    out [used] = 0;
    return out;
}

//  A decoded query parameter, or NULL
static char *
s_query (const api_request_t *req, const char *name)
{
    char *raw = api_query_param (req->query, name);
    char *value = raw ? s_decode (raw) : NULL;
    free (raw);
    return value;
}

//  A request header (names are lower-case in req->headers), or NULL
static const char *
s_header (cJSON *headers, const char *name)
{
    return cJSON_GetStringValue (cJSON_GetObjectItemCaseSensitive (headers, name));
}

//  Base64 (standard, padded) of bytes; heap
static char *
s_base64 (const unsigned char *data, size_t size)
{
    char *out = (char *) malloc (4 * ((size + 2) / 3) + 1);
    EVP_EncodeBlock ((unsigned char *) out, data, (int) size);
    return out;
}

//  Decode standard base64 (blanks ignored); heap, or NULL if it is not base64
static unsigned char *
s_unbase64 (const char *text, size_t *size)
{
    size_t length = strlen (text);
    char *clean = (char *) malloc (length + 1);
    size_t used = 0;
    for (size_t i = 0; i < length; i++)
        if (!isspace ((unsigned char) text [i]))
            clean [used++] = text [i];
    clean [used] = 0;
    if (used % 4) {
        free (clean);
        return NULL;
    }
    unsigned char *out = (unsigned char *) malloc (used / 4 * 3 + 1);
    int decoded = used ? EVP_DecodeBlock (out, (unsigned char *) clean, (int) used) : 0;
    if (decoded < 0) {
        free (clean);
        free (out);
        return NULL;
    }
    //  EVP_DecodeBlock counts the padding as zero bytes
    size_t padding = used >= 1 && clean [used - 1] == '=' ? (used >= 2 && clean [used - 2] == '=' ? 2 : 1) : 0;
    *size = (size_t) decoded - padding;
    free (clean);
    return out;
}

//  --------------------------------------------------------------------------
//  Zip archives are read with libzip: it knows the format's corners (ZIP64,
//  data descriptors, the compression methods Debian builds it with) and
//  checks each member's CRC. What is ours is the cap: the member's declared
//  size is checked against max before anything is allocated, and reading
//  stops one byte past it, so a member whose data inflates past what its
//  header declares (a zip bomb) costs at most max bytes.

char *
lambda_unzip (const unsigned char *zip, size_t zip_size, const char *name, size_t max,
              size_t *size, char *error, size_t error_size)
{
    //  libzip opens an empty buffer as an empty archive; an upload of nothing is no zip
    if (zip_size == 0) {
        snprintf (error, error_size, "the file is not a zip archive");
        return NULL;
    }
    zip_error_t zip_error;
    zip_error_init (&zip_error);
    zip_source_t *source = zip_source_buffer_create (zip, zip_size, 0, &zip_error);
    //  ZIP_CHECKCONS: every local header must agree with the central directory,
    //  so an archive cannot show one file to us and another to other readers
    zip_t *archive = source ? zip_open_from_source (source, ZIP_RDONLY | ZIP_CHECKCONS, &zip_error) : NULL;
    if (!archive) {
        if (zip_error_code_zip (&zip_error) == ZIP_ER_NOZIP)
            snprintf (error, error_size, "the file is not a zip archive");
        else
            snprintf (error, error_size, "the zip archive is damaged (%s)", zip_error_strerror (&zip_error));
        zip_error_fini (&zip_error);
        zip_source_free (source);       //  opening failed, so the source is still ours
        return NULL;
    }
    zip_error_fini (&zip_error);

    char *out = NULL;
    zip_file_t *file = NULL;
    zip_stat_t member;
    zip_int64_t index = zip_name_locate (archive, name, 0);
    if (index < 0)
        snprintf (error, error_size, "the zip archive has no %s", name);
    else
    if (zip_stat_index (archive, (zip_uint64_t) index, 0, &member) != 0 || !(member.valid & ZIP_STAT_SIZE))
        snprintf (error, error_size, "the zip archive is damaged");
    else
    if ((member.valid & ZIP_STAT_ENCRYPTION_METHOD) && member.encryption_method != ZIP_EM_NONE)
        snprintf (error, error_size, "%s in the zip archive is encrypted; encrypted files are not read", name);
    else
    if (member.size > max)
        snprintf (error, error_size, "%s is larger than %zu bytes", name, max);
    else
    if (!(file = zip_fopen_index (archive, (zip_uint64_t) index, 0))) {
        int code = zip_error_code_zip (zip_get_error (archive));
        if (code == ZIP_ER_COMPNOTSUPP)
            snprintf (error, error_size, "%s is compressed with method %d, which is not read",
                      name, (int) member.comp_method);
        else
        if (code == ZIP_ER_ENCRNOTSUPP || code == ZIP_ER_NOPASSWD)
            snprintf (error, error_size, "%s in the zip archive is encrypted; encrypted files are not read", name);
        else
            snprintf (error, error_size, "the zip archive is damaged (%s)", zip_strerror (archive));
    }
    else {
        //  Read the declared size, then one byte more: there must be none, and
        //  reading to the end is what makes libzip check the CRC
        size_t got = 0;
        out = (char *) malloc ((size_t) member.size + 1);
        zip_int64_t n = 0;
        while (got < member.size && (n = zip_fread (file, out + got, member.size - got)) > 0)
            got += (size_t) n;
        char extra;
        if (n >= 0 && got == member.size)
            n = zip_fread (file, &extra, 1);
        if (n != 0) {
            if (n > 0)
                snprintf (error, error_size, "%s in the zip archive holds more than its header says", name);
            else
                snprintf (error, error_size, "%s in the zip archive does not inflate (%s)", name,
                          zip_file_strerror (file));
            free (out);
            out = NULL;
        }
        else
        if (got < member.size) {
            snprintf (error, error_size, "%s in the zip archive does not inflate (it ends early)", name);
            free (out);
            out = NULL;
        }
        else {
            out [got] = 0;
            *size = got;
        }
        zip_fclose (file);
    }
    zip_discard (archive);              //  read-only: nothing to write; frees the source too
    return out;
}

//  --------------------------------------------------------------------------
//  Functions in Lambda's shape

//  The Handler kept in code by the marker line, or the default
static char *
s_handler_of (const char *code)
{
    const char *found = NULL;
    for (const char *at = code ? strstr (code, LAMBDA_HANDLER_MARKER) : NULL; at;
         at = strstr (at + 1, LAMBDA_HANDLER_MARKER))
        found = at;
    if (!found)
        return strdup (LAMBDA_DEFAULT_HANDLER);
    found += strlen (LAMBDA_HANDLER_MARKER);
    size_t length = strcspn (found, "\r\n");
    return length ? strndup (found, length) : strdup (LAMBDA_DEFAULT_HANDLER);
}

//  FunctionConfiguration from a row of the REST API's Function shape
static cJSON *
s_configuration (cJSON *function)
{
    const char *name = cJSON_GetStringValue (cJSON_GetObjectItem (function, "name"));
    const char *code = cJSON_GetStringValue (cJSON_GetObjectItem (function, "code"));
    const char *description = cJSON_GetStringValue (cJSON_GetObjectItem (function, "description"));
    const char *updated = cJSON_GetStringValue (cJSON_GetObjectItem (function, "updated_at"));
    cJSON *json = cJSON_CreateObject ();
    cJSON_AddStringToObject (json, "FunctionName", name ? name : "");
    char *arn = zsys_sprintf (LAMBDA_ARN_PREFIX "%s", name ? name : "");
    cJSON_AddStringToObject (json, "FunctionArn", arn);
    zstr_free (&arn);
    cJSON_AddStringToObject (json, "Runtime", "python3.11");
    cJSON_AddStringToObject (json, "Role", "arn:aws:iam::000000000000:role/clowdy");
    char *handler = s_handler_of (code);
    cJSON_AddStringToObject (json, "Handler", handler);
    free (handler);
    cJSON_AddNumberToObject (json, "CodeSize", code ? (double) strlen (code) : 0);
    unsigned char digest [32];
    unsigned int digest_size = 0;
    EVP_Digest (code ? code : "", code ? strlen (code) : 0, digest, &digest_size, EVP_sha256 (), NULL);
    char *sha = s_base64 (digest, digest_size);
    cJSON_AddStringToObject (json, "CodeSha256", sha);
    free (sha);
    cJSON_AddStringToObject (json, "Description", description ? description : "");
    cJSON_AddNumberToObject (json, "Timeout",
        cJSON_GetNumberValue (cJSON_GetObjectItem (function, "timeout_seconds")));
    cJSON_AddNumberToObject (json, "MemorySize",
        cJSON_GetNumberValue (cJSON_GetObjectItem (function, "memory_mb")));
    //  Lambda writes 2026-11-30T14:30:42.123+0000
    char modified [40] = "1970-01-01T00:00:00.000+0000";
    if (updated && strlen (updated) >= 19)
        snprintf (modified, sizeof modified, "%.19s.%.3s+0000", updated,
                  strlen (updated) >= 23 && updated [19] == '.' ? updated + 20 : "000");
    cJSON_AddStringToObject (json, "LastModified", modified);
    cJSON_AddStringToObject (json, "Version", "$LATEST");
    cJSON_AddStringToObject (json, "State", "Active");
    cJSON_AddStringToObject (json, "LastUpdateStatus", "Successful");
    cJSON_AddStringToObject (json, "PackageType", "Zip");
    cJSON *architectures = cJSON_AddArrayToObject (json, "Architectures");
    cJSON_AddItemToArray (architectures, cJSON_CreateString ("x86_64"));
    //  Clowdy's own (botocore ignores what its model does not name)
    const char *id = cJSON_GetStringValue (cJSON_GetObjectItem (function, "id"));
    cJSON_AddStringToObject (json, "FunctionId", id ? id : "");
    cJSON_AddNumberToObject (json, "ActiveVersion",
        cJSON_GetNumberValue (cJSON_GetObjectItem (function, "active_version")));
    return json;
}

//  Run a REST request on this thread as the same user; returns its status
//  and parsed body (caller destroys); a write's invalidation goes to resp
static int
s_rest (api_t *api, const api_request_t *req, const char *method, const char *path, const char *body,
        cJSON **reply, api_response_t *resp)
{
    api_request_t rest = { .method = method, .path = path, .body = body, .body_size = body ? strlen (body) : 0,
                           .user_id = req->user_id };
    api_response_t answer = { 0 };
    api_handle (api, &rest, &answer);
    if (answer.invalidate) {
        free (resp->invalidate);
        resp->invalidate = answer.invalidate;
        answer.invalidate = NULL;
    }
    *reply = answer.body ? cJSON_Parse (answer.body) : NULL;
    int status = answer.status;
    api_response_reset (&answer);
    return status;
}

//  A REST error as a Lambda error
//  What the detail of a REST error reply says: its sentence, or for
//  FastAPI's list the first field and what is wrong with it (in buffer);
//  NULL when it has neither
static const char *
s_detail_text (cJSON *reply, char *buffer, size_t size)
{
    cJSON *detail = cJSON_GetObjectItem (reply, "detail");
    if (!cJSON_IsArray (detail))
        return cJSON_GetStringValue (detail);
    cJSON *first = cJSON_GetArrayItem (detail, 0);
    cJSON *loc = cJSON_GetObjectItem (first, "loc");
    const char *field = cJSON_GetStringValue (cJSON_GetArrayItem (loc, cJSON_GetArraySize (loc) - 1));
    snprintf (buffer, size, "%s: %s", field ? field : "body",
              cJSON_GetStringValue (cJSON_GetObjectItem (first, "msg")) ?: "invalid");
    return buffer;
}

static int
s_rest_error (api_response_t *resp, int status, cJSON *reply)
{
    char buffer [512];
    const char *message = s_detail_text (reply, buffer, sizeof buffer);
    const char *type = status == 404 ? "ResourceNotFoundException"
                     : status == 409 ? "ResourceConflictException"
                     : status == 413 ? "RequestTooLargeException"
                     : status == 429 ? "TooManyRequestsException"
                     : status >= 400 && status < 500 ? "InvalidParameterValueException" : "ServiceException";
    return s_error (resp, status == 422 ? 400 : status, type, "%s", message ? message : "The request failed");
}

//  The caller's function named by text (an id, a name, or an ARN with
//  either), as the REST API's Function row; *qualifier gets what followed
//  a ':' that is not part of the name. NULL when there is none.
static cJSON *
s_find (api_call_t *call, const char *text, char **qualifier)
{
    *qualifier = NULL;
    const char *arn = strstr (text, ":function:");
    if (strncmp (text, "arn:", 4) == 0 && arn)
        text = arn + strlen (":function:");
    char *name = strdup (text);
    for (int attempt = 0; attempt < 2; attempt++) {
        cJSON *row = NULL;
        if (util_is_id (name))
            row = store_query_row (call->store, "SELECT id FROM functions WHERE id = ? AND user_id = ?",
                                   "ss", name, call->req->user_id);
        if (!row)
            row = store_query_row (call->store, "SELECT id FROM functions WHERE name = ? AND user_id = ?"
                                   " ORDER BY created_at DESC, rowid DESC", "ss", name, call->req->user_id);
        if (row) {
            char *path = zsys_sprintf ("/api/functions/%s", cJSON_GetStringValue (cJSON_GetObjectItem (row, "id")));
            cJSON_Delete (row);
            cJSON *function = NULL;
            api_response_t ignored = { 0 };
            int status = s_rest (call->api, call->req, "GET", path, NULL, &function, &ignored);
            api_response_reset (&ignored);
            zstr_free (&path);
            free (name);
            if (status == 200)
                return function;
            cJSON_Delete (function);
            free (*qualifier);
            *qualifier = NULL;
            return NULL;
        }
        char *colon = strrchr (name, ':');
        if (attempt || !colon)
            break;
        *qualifier = strdup (colon + 1);
        *colon = 0;
    }
    free (name);
    free (*qualifier);
    *qualifier = NULL;
    return NULL;
}

static int
s_not_found (api_response_t *resp, const char *name)
{
    return s_error (resp, 404, "ResourceNotFoundException", "Function not found: " LAMBDA_ARN_PREFIX "%s", name);
}

//  Lambda's function names: letters, digits, '-' and '_', 1 to 64
static bool
s_valid_name (const char *name)
{
    size_t length = name ? strlen (name) : 0;
    if (length == 0 || length > 64)
        return false;
    for (const char *c = name; *c; c++)
        if (!isalnum ((unsigned char) *c) && *c != '-' && *c != '_')
            return false;
    return true;
}

//  The code for a version: the handler file from the zip, and the marker
//  (and alias) lines. NULL with the error made.
static char *
s_code_from_zip (api_response_t *resp, const char *zip_base64, const char *handler)
{
    const char *dot = handler ? strrchr (handler, '.') : NULL;
    bool valid = dot && dot > handler && dot [1] && strlen (handler) <= 128;
    for (const char *c = handler; valid && *c; c++)
        valid = isalnum ((unsigned char) *c) || *c == '_' || *c == '.' || *c == '/' || *c == '-';
    if (valid && (isdigit ((unsigned char) dot [1]) || strstr (handler, "..")))
        valid = false;
    for (const char *c = valid ? dot + 1 : ""; *c; c++)
        valid = valid && (isalnum ((unsigned char) *c) || *c == '_');
    if (!valid) {
        s_error (resp, 400, "InvalidParameterValueException",
                 "Handler must be 'module.function' (a Python file in the zip and a function in it): '%s'",
                 handler ? handler : "");
        return NULL;
    }
    size_t zip_size = 0;
    unsigned char *zip = zip_base64 ? s_unbase64 (zip_base64, &zip_size) : NULL;
    if (!zip) {
        s_error (resp, 400, "InvalidParameterValueException", "Code.ZipFile is not base64");
        return NULL;
    }
    char *file = zsys_sprintf ("%.*s.py", (int) (dot - handler), handler);
    char error [256];
    size_t size = 0;
    char *source = lambda_unzip (zip, zip_size, file, LAMBDA_CODE_MAX, &size, error, sizeof error);
    free (zip);
    if (!source) {
        s_error (resp, 400, "InvalidParameterValueException", "Could not unzip uploaded file: %s", error);
        zstr_free (&file);
        return NULL;
    }
    zstr_free (&file);
    if (strlen (source) != size) {
        free (source);
        s_error (resp, 400, "InvalidParameterValueException", "The handler file has a NUL byte");
        return NULL;
    }
    const char *function = dot + 1;
    char *code = streq (function, "handler")
               ? zsys_sprintf ("%s\n\n" LAMBDA_HANDLER_MARKER "%s\n", source, handler)
               : zsys_sprintf ("%s\n\n" LAMBDA_HANDLER_MARKER "%s\nhandler = %s\n", source, handler, function);
    free (source);
    return code;
}

//  --------------------------------------------------------------------------
//  Operations

static int
s_list (api_call_t *call)
{
    api_response_t *resp = call->resp;
    char *marker = s_query (call->req, "Marker");
    char *max_text = s_query (call->req, "MaxItems");
    long offset = 0, max_items = LAMBDA_LIST_MAX;
    bool valid = (!marker || !*marker || api_parse_int (marker, 0, INT32_MAX, &offset))
              && (!max_text || api_parse_int (max_text, 1, INT32_MAX, &max_items));
    free (marker);
    free (max_text);
    if (!valid)
        return s_error (resp, 400, "InvalidParameterValueException",
                        "Marker must be one a list returned, and MaxItems a positive whole number");
    //  Every row carries its code (the Handler, CodeSize and CodeSha256
    //  come from it), so a page is as small as AWS's: at most 50
    if (max_items > LAMBDA_LIST_MAX)
        max_items = LAMBDA_LIST_MAX;
    //  Oldest first, so a marker (an offset) stays right while new ones come
    cJSON *rows = store_query (call->store,
        "SELECT f.id, f.name, f.description, v.code, f.timeout_seconds, f.memory_mb, f.active_version,"
        "       f.updated_at"
        "  FROM functions f"
        "  LEFT JOIN function_versions v ON v.function_id = f.id AND v.version = f.active_version"
        " WHERE f.user_id = ? ORDER BY f.created_at, f.rowid LIMIT ? OFFSET ?",
        "sii", call->req->user_id, (int) max_items, (int) offset);
    //  Is there a next page? One row past this one, without its code
    cJSON *more = rows ? store_query_row (call->store,
        "SELECT 1 AS more FROM functions WHERE user_id = ? ORDER BY created_at, rowid LIMIT 1 OFFSET ?",
        "sI", call->req->user_id, (int64_t) offset + max_items) : NULL;
    if (!rows)
        return s_error (resp, 500, "ServiceException", "Internal server error");
    cJSON *json = cJSON_CreateObject ();
    cJSON *functions = cJSON_AddArrayToObject (json, "Functions");
    int count = 0;
    cJSON *row;
    cJSON_ArrayForEach (row, rows)
        if (count++ < max_items)
            cJSON_AddItemToArray (functions, s_configuration (row));
    if (more) {
        char next [32];
        snprintf (next, sizeof next, "%ld", offset + max_items);
        cJSON_AddStringToObject (json, "NextMarker", next);
    }
    cJSON_Delete (more);
    cJSON_Delete (rows);
    return s_reply (resp, 200, json);
}

static int
s_get (api_call_t *call, const char *name, bool configuration_only)
{
    char *qualifier = NULL;
    cJSON *function = s_find (call, name, &qualifier);
    free (qualifier);
    if (!function)
        return s_not_found (call->resp, name);
    cJSON *configuration = s_configuration (function);
    cJSON_Delete (function);
    if (configuration_only)
        return s_reply (call->resp, 200, configuration);
    cJSON *json = cJSON_CreateObject ();
    cJSON_AddItemToObject (json, "Configuration", configuration);
    cJSON *code = cJSON_AddObjectToObject (json, "Code");
    cJSON_AddStringToObject (code, "RepositoryType", "Clowdy");
    cJSON_AddStringToObject (code, "Location", "");
    return s_reply (call->resp, 200, json);
}

static int
s_create (api_call_t *call)
{
    api_response_t *resp = call->resp;
    cJSON *body = call->body;
    const char *name = cJSON_GetStringValue (cJSON_GetObjectItem (body, "FunctionName"));
    const char *handler = cJSON_GetStringValue (cJSON_GetObjectItem (body, "Handler"));
    const char *runtime = cJSON_GetStringValue (cJSON_GetObjectItem (body, "Runtime"));
    cJSON *code = cJSON_GetObjectItem (body, "Code");
    const char *zip = cJSON_GetStringValue (cJSON_GetObjectItem (code, "ZipFile"));
    if (!s_valid_name (name))
        return s_error (resp, 400, "InvalidParameterValueException",
                        "FunctionName must be 1 to 64 letters, digits, '-' or '_'");
    if (runtime && strncmp (runtime, "python3", 7))
        return s_error (resp, 400, "InvalidParameterValueException",
                        "Runtime %s is not supported: Clowdy runs Python (python3.x)", runtime);
    if (!zip)
        return s_error (resp, 400, "InvalidParameterValueException",
                        "Code.ZipFile is required (Clowdy takes no S3 or image code)");
    char *qualifier = NULL;
    cJSON *existing = s_find (call, name, &qualifier);
    free (qualifier);
    if (existing) {
        cJSON_Delete (existing);
        return s_error (resp, 409, "ResourceConflictException", "Function already exist: %s", name);
    }
    char *source = s_code_from_zip (resp, zip, handler ? handler : LAMBDA_DEFAULT_HANDLER);
    if (!source)
        return 0;
    cJSON *rest = cJSON_CreateObject ();
    cJSON_AddStringToObject (rest, "name", name);
    cJSON_AddStringToObject (rest, "code", source);
    free (source);
    const char *fields [][2] = { { "Description", "description" }, { "Timeout", "timeout_seconds" },
                                 { "MemorySize", "memory_mb" } };
    for (size_t i = 0; i < 3; i++) {
        cJSON *item = cJSON_GetObjectItem (body, fields [i][0]);
        if (item)
            cJSON_AddItemToObject (rest, fields [i][1], cJSON_Duplicate (item, true));
    }
    char *text = cJSON_PrintUnformatted (rest);
    cJSON_Delete (rest);
    cJSON *reply = NULL;
    int status = s_rest (call->api, call->req, "POST", "/api/functions", text, &reply, resp);
    free (text);
    if (status == 200)
        s_reply (resp, 201, s_configuration (reply));
    else
        s_rest_error (resp, status, reply);
    cJSON_Delete (reply);
    return 0;
}

static int
s_update_code (api_call_t *call, const char *name)
{
    api_response_t *resp = call->resp;
    const char *zip = cJSON_GetStringValue (cJSON_GetObjectItem (call->body, "ZipFile"));
    if (!zip)
        return s_error (resp, 400, "InvalidParameterValueException",
                        "ZipFile is required (Clowdy takes no S3 or image code)");
    char *qualifier = NULL;
    cJSON *function = s_find (call, name, &qualifier);
    free (qualifier);
    if (!function)
        return s_not_found (resp, name);
    char *handler = s_handler_of (cJSON_GetStringValue (cJSON_GetObjectItem (function, "code")));
    char *source = s_code_from_zip (resp, zip, handler);
    free (handler);
    if (!source) {
        cJSON_Delete (function);
        return 0;
    }
    char *path = zsys_sprintf ("/api/functions/%s", cJSON_GetStringValue (cJSON_GetObjectItem (function, "id")));
    cJSON_Delete (function);
    cJSON *rest = cJSON_CreateObject ();
    cJSON_AddStringToObject (rest, "code", source);
    free (source);
    char *text = cJSON_PrintUnformatted (rest);
    cJSON_Delete (rest);
    cJSON *reply = NULL;
    int status = s_rest (call->api, call->req, "PUT", path, text, &reply, resp);
    free (text);
    zstr_free (&path);
    if (status == 200) {
        cJSON *configuration = s_configuration (reply);
        if (cJSON_IsTrue (cJSON_GetObjectItem (call->body, "Publish"))) {
            char version [16];
            snprintf (version, sizeof version, "%d",
                      (int) cJSON_GetNumberValue (cJSON_GetObjectItem (reply, "active_version")));
            cJSON_ReplaceItemInObject (configuration, "Version", cJSON_CreateString (version));
        }
        s_reply (resp, 200, configuration);
    }
    else
        s_rest_error (resp, status, reply);
    cJSON_Delete (reply);
    return 0;
}

static int
s_delete (api_call_t *call, const char *name)
{
    char *qualifier = NULL;
    cJSON *function = s_find (call, name, &qualifier);
    char *query_qualifier = s_query (call->req, "Qualifier");
    bool versioned = (qualifier && strneq (qualifier, "$LATEST"))
                  || (query_qualifier && *query_qualifier && strneq (query_qualifier, "$LATEST"));
    free (qualifier);
    free (query_qualifier);
    if (!function)
        return s_not_found (call->resp, name);
    if (versioned) {
        cJSON_Delete (function);
        return s_error (call->resp, 400, "InvalidParameterValueException",
                        "Clowdy deletes whole functions, not one version: leave out the qualifier");
    }
    char *path = zsys_sprintf ("/api/functions/%s", cJSON_GetStringValue (cJSON_GetObjectItem (function, "id")));
    cJSON_Delete (function);
    cJSON *reply = NULL;
    int status = s_rest (call->api, call->req, "DELETE", path, NULL, &reply, call->resp);
    zstr_free (&path);
    if (status == 200)
        s_reply (call->resp, 204, NULL);
    else
        s_rest_error (call->resp, status, reply);
    cJSON_Delete (reply);
    return 0;
}

//  Invoke: resolve, check, and hand the call to http to send on
static int
s_invoke (api_call_t *call, const char *name)
{
    api_response_t *resp = call->resp;
    const api_request_t *req = call->req;
    cJSON *headers = req->headers ? cJSON_Parse (req->headers) : NULL;
    const char *type = s_header (headers, "x-amz-invocation-type");
    const char *log_type = s_header (headers, "x-amz-log-type");
    if (!type || !*type)
        type = "RequestResponse";
    if (strneq (type, "RequestResponse") && strneq (type, "Event") && strneq (type, "DryRun")) {
        s_error (resp, 400, "InvalidParameterValueException",
                 "X-Amz-Invocation-Type must be RequestResponse, Event or DryRun, not '%s'", type);
        cJSON_Delete (headers);
        return 0;
    }
    bool event = streq (type, "Event");
    bool dry_run = streq (type, "DryRun");
    bool tail = log_type && streq (log_type, "Tail");
    cJSON_Delete (headers);         //  type and log_type go with it

    char *qualifier = NULL;
    cJSON *function = s_find (call, name, &qualifier);
    char *query_qualifier = s_query (req, "Qualifier");
    if (query_qualifier && *query_qualifier) {
        if (qualifier && strneq (qualifier, query_qualifier)) {
            s_error (resp, 400, "InvalidParameterValueException",
                     "The qualifier in the name (%s) and the Qualifier parameter (%s) differ",
                     qualifier, query_qualifier);
            goto done;
        }
        free (qualifier);
        qualifier = query_qualifier;
        query_qualifier = NULL;
    }
    if (!function) {
        s_not_found (resp, name);
        goto done;
    }
    int active = (int) cJSON_GetNumberValue (cJSON_GetObjectItem (function, "active_version"));
    const char *function_id = cJSON_GetStringValue (cJSON_GetObjectItem (function, "id"));
    long version = 0;
    if (qualifier && strneq (qualifier, "$LATEST")) {
        if (!api_parse_int (qualifier, 1, INT32_MAX, &version)) {
            s_error (resp, 404, "ResourceNotFoundException", "Function not found: " LAMBDA_ARN_PREFIX "%s:%s "
                     "(Clowdy has no aliases: the qualifier is $LATEST or a version number)",
                     cJSON_GetStringValue (cJSON_GetObjectItem (function, "name")), qualifier);
            goto done;
        }
        cJSON *row = store_query_row (call->store,
            "SELECT version FROM function_versions WHERE function_id = ? AND version = ?", "si",
            function_id, (int) version);
        cJSON_Delete (row);
        if (!row) {
            s_error (resp, 404, "ResourceNotFoundException", "Function not found: " LAMBDA_ARN_PREFIX "%s:%ld",
                     cJSON_GetStringValue (cJSON_GetObjectItem (function, "name")), version);
            goto done;
        }
        if (version != active && event) {
            //  The async queue runs a function's active version
            s_error (resp, 409, "ResourceConflictException",
                     "Version %ld is not the active version (%d): an Event runs the active version; "
                     "roll back to %ld, or invoke it synchronously", version, active, version);
            goto done;
        }
    }
    //  The payload is the event itself: JSON, or nothing ({})
    bool blank = true;
    for (size_t i = 0; i < req->body_size && blank; i++)
        blank = isspace ((unsigned char) req->body [i]);
    if (!blank) {
        cJSON *payload = util_json_parse (req->body, req->body_size);
        cJSON_Delete (payload);
        if (!payload) {
            s_error (resp, 400, "InvalidRequestContentException", "Could not parse request body into json: "
                     "the payload must be JSON (UTF-8)");
            goto done;
        }
    }
    if (event && req->body_size > LAMBDA_EVENT_MAX) {
        s_error (resp, 413, "RequestTooLargeException", "An Event payload may be at most %d bytes",
                 LAMBDA_EVENT_MAX);
        goto done;
    }
    if (dry_run) {
        s_reply (resp, 204, NULL);
        goto done;
    }
    char invocation_id [UTIL_ID_SIZE] = "";
    if (event) {
        //  An Event is queued here, in the async queue (core/asyncq.h), as
        //  POST /api/invoke/:id?async=1 queues it: committed before the 202
        size_t size;
        char *body = lambda_invoke_body (req->body ? req->body : "", req->body_size, &size);
        char detail [256];
        int status = asyncq_enqueue (call->store, function_id, body, size, "async", NULL,
                                     invocation_id, detail, sizeof detail);
        free (body);
        if (status != 202) {
            s_error (resp, status, status == 404 ? "ResourceNotFoundException"
                                 : status == 429 ? "TooManyRequestsException"
                                 : status >= 500 ? "ServiceException"
                                 : "InvalidRequestContentException", "%s", detail);
            goto done;
        }
    }
    cJSON *forward = cJSON_CreateObject ();
    cJSON_AddStringToObject (forward, "function_id", function_id);
    cJSON_AddBoolToObject (forward, "event", event);
    if (event)
        cJSON_AddStringToObject (forward, "invocation_id", invocation_id);
    cJSON_AddBoolToObject (forward, "tail", tail);
    cJSON_AddBoolToObject (forward, "qualified", version > 0);
    if (version > 0)
        cJSON_AddNumberToObject (forward, "version", (double) version);
    s_reply (resp, LAMBDA_FORWARD, forward);
done:
    cJSON_Delete (function);
    free (qualifier);
    free (query_qualifier);
    return 0;
}

int
lambda_handle (api_t *api, const api_request_t *req, api_response_t *resp)
{
    api_response_reset (resp);
    api_call_t call = { .api = api, .store = api->store, .req = req, .resp = resp };
    const char *method = req->method ? req->method : "";
    const char *rest = req->path + strlen ("/2015-03-31");
    if (!api->store) {
        s_error (resp, 500, "ServiceException", "Internal server error");
        return 0;
    }
    //  A decoded path that is not UTF-8 names no function, and its bytes
    //  must not reach a message (the reply would not be JSON)
    if (!util_utf8_valid (req->path, strlen (req->path)))
        return s_error (resp, 404, "ResourceNotFoundException", "Function not found: the path is not UTF-8");
    //  Operations with a body parse it first: Lambda's bodies are JSON objects
    bool with_body = streq (method, "POST") || streq (method, "PUT");
    bool invoke = strlen (rest) > 14 && streq (rest + strlen (rest) - 12, "/invocations");
    if (with_body && !invoke) {
        call.body = req->body_size ? util_json_parse (req->body, req->body_size) : cJSON_CreateObject ();
        if (!cJSON_IsObject (call.body)) {
            cJSON_Delete (call.body);
            return s_error (resp, 400, "InvalidRequestContentException",
                            "Could not parse request body into json: a JSON object is expected");
        }
    }
    if (strncmp (rest, "/functions", 10) || (rest [10] && rest [10] != '/')) {
        s_error (resp, 404, "UnknownOperationException", "Unknown operation %s %s", method, req->path);
        goto done;
    }
    const char *after = rest + 10;
    while (*after == '/')
        after++;
    const char *slash = strchr (after, '/');
    char *name = slash ? strndup (after, (size_t) (slash - after)) : strdup (after);
    const char *operation = slash ? slash + 1 : NULL;
    const char *known = NULL;
    if (!*name)
        known = streq (method, "GET") ? "list" : streq (method, "POST") ? "create" : NULL;
    else
    if (!operation || !*operation)
        known = streq (method, "GET") ? "get" : streq (method, "DELETE") ? "delete" : NULL;
    else
    if (streq (operation, "invocations"))
        known = streq (method, "POST") ? "invoke" : NULL;
    else
    if (streq (operation, "code"))
        known = streq (method, "PUT") ? "code" : NULL;
    else
    if (streq (operation, "configuration"))
        known = streq (method, "GET") ? "configuration" : NULL;
    else {
        s_error (resp, 404, "UnknownOperationException", "Unknown operation %s %s", method, req->path);
        free (name);
        goto done;
    }
    if (!known)
        s_error (resp, 405, "InvalidRequestContentException", "Method %s is not allowed on %s", method, req->path);
    else
    if (streq (known, "list"))
        s_list (&call);
    else
    if (streq (known, "create"))
        s_create (&call);
    else
    if (streq (known, "get"))
        s_get (&call, name, false);
    else
    if (streq (known, "configuration"))
        s_get (&call, name, true);
    else
    if (streq (known, "delete"))
        s_delete (&call, name);
    else
    if (streq (known, "invoke"))
        s_invoke (&call, name);
    else
        s_update_code (&call, name);
    free (name);
done:
    store_rollback (api->store);
    cJSON_Delete (call.body);
    return 0;
}

//  --------------------------------------------------------------------------
//  The gateway's reply to a forwarded invoke, in Lambda's shape

char *
lambda_invoke_body (const char *payload, size_t payload_size, size_t *size)
{
    bool blank = true;
    for (size_t i = 0; i < payload_size && blank; i++)
        blank = isspace ((unsigned char) payload [i]);
    if (blank) {
        *size = 2;
        return strdup ("{}");
    }
    char *body = (char *) malloc (payload_size + 11);
    memcpy (body, "{\"input\":", 9);
    memcpy (body + 9, payload, payload_size);
    body [9 + payload_size] = '}';
    body [10 + payload_size] = 0;
    *size = payload_size + 10;
    return body;
}

//  Lambda's error body for a function that failed
static char *
s_function_error (cJSON *reply)
{
    const char *error = cJSON_GetStringValue (cJSON_GetObjectItem (reply, "error"));
    const char *error_type = cJSON_GetStringValue (cJSON_GetObjectItem (reply, "error_type"));
    const char *traceback = cJSON_GetStringValue (cJSON_GetObjectItem (reply, "traceback"));
    bool timeout = cJSON_IsTrue (cJSON_GetObjectItem (reply, "timeout"));
    if (!error)
        error = "The function failed";
    //  The worker writes "Type: message": Lambda keeps them apart
    size_t type_size = error_type ? strlen (error_type) : 0;
    if (type_size && strncmp (error, error_type, type_size) == 0 && strncmp (error + type_size, ": ", 2) == 0)
        error += type_size + 2;
    cJSON *json = cJSON_CreateObject ();
    cJSON_AddStringToObject (json, "errorMessage", error);
    cJSON_AddStringToObject (json, "errorType", error_type ? error_type : timeout ? "Sandbox.Timedout" : "Runtime.Error");
    cJSON *trace = cJSON_AddArrayToObject (json, "stackTrace");
    for (const char *line = traceback; line && *line; ) {
        size_t length = strcspn (line, "\n");
        if (length) {
            char *text = strndup (line, length);
            cJSON_AddItemToArray (trace, cJSON_CreateString (text));
            free (text);
        }
        line += length + (line [length] == '\n');
    }
    char *text = cJSON_PrintUnformatted (json);
    cJSON_Delete (json);
    return text;
}

void
lambda_invoke_reply (const char *forward_text, int gateway_status, const char *gateway_body,
                     size_t gateway_size, int *status, cJSON **headers, char **body, size_t *size)
{
    cJSON *forward = cJSON_Parse (forward_text ? forward_text : "{}");
    bool event = cJSON_IsTrue (cJSON_GetObjectItem (forward, "event"));
    bool tail = cJSON_IsTrue (cJSON_GetObjectItem (forward, "tail"));
    bool qualified = cJSON_IsTrue (cJSON_GetObjectItem (forward, "qualified"));
    cJSON_Delete (forward);
    cJSON *reply = gateway_body ? cJSON_ParseWithLength (gateway_body, gateway_size) : NULL;
    char detail_buffer [512];
    const char *detail = s_detail_text (reply, detail_buffer, sizeof detail_buffer);
    char *text = NULL;
    *status = 200;
    if (event && gateway_status == 202) {
        *status = 202;
        *headers = cJSON_CreateObject ();
        //  Lambda's answer to an Event has no body; the id is ours, in a header
        const char *id = cJSON_GetStringValue (cJSON_GetObjectItem (reply, "invocation_id"));
        if (id)
            cJSON_AddStringToObject (*headers, "X-Clowdy-Invocation-Id", id);
        text = strdup ("");
    }
    else
    if (!event && gateway_status == 200 && cJSON_IsObject (reply)) {
        *headers = cJSON_CreateObject ();
        cJSON_AddStringToObject (*headers, "Content-Type", "application/json");
        char version [24];
        cJSON *run = cJSON_GetObjectItem (reply, "version");
        if (qualified && cJSON_IsNumber (run))
            snprintf (version, sizeof version, "%d", run->valueint);
        else
            snprintf (version, sizeof version, "$LATEST");
        cJSON_AddStringToObject (*headers, "X-Amz-Executed-Version", version);
        const char *id = cJSON_GetStringValue (cJSON_GetObjectItem (reply, "invocation_id"));
        if (id)
            cJSON_AddStringToObject (*headers, "X-Clowdy-Invocation-Id", id);
        if (tail) {
            const char *logs = cJSON_GetStringValue (cJSON_GetObjectItem (reply, "logs"));
            size_t length = logs ? strlen (logs) : 0;
            size_t from = length > LAMBDA_LOG_TAIL ? length - LAMBDA_LOG_TAIL : 0;
            char *encoded = s_base64 ((const unsigned char *) (logs ? logs + from : ""), length - from);
            cJSON_AddStringToObject (*headers, "X-Amz-Log-Result", encoded);
            free (encoded);
        }
        if (cJSON_IsTrue (cJSON_GetObjectItem (reply, "success"))) {
            cJSON *output = cJSON_GetObjectItem (reply, "output");
            text = output ? cJSON_PrintUnformatted (output) : strdup ("null");
        }
        else {
            cJSON_AddStringToObject (*headers, "X-Amz-Function-Error", "Unhandled");
            text = s_function_error (reply);
        }
    }
    else {
        //  The call did not run (or its answer is not one we know): an error
        int code = gateway_status;
        const char *type = code == 404 ? "ResourceNotFoundException"
                         : code == 413 ? "RequestTooLargeException"
                         : code == 429 ? "TooManyRequestsException"
                         : code == 400 || code == 422 ? "InvalidRequestContentException" : "ServiceException";
        if (code == 422)
            code = 400;
        char message [512];
        if (detail)
            snprintf (message, sizeof message, "%s", detail);
        else
            snprintf (message, sizeof message, "The invoke failed (status %d)", gateway_status);
        if (code < 400)
            code = 500;
        *status = code;
        text = lambda_error_json (type, message);
        *headers = lambda_headers (code, text);
        if (code == 429 || code == 503)
            cJSON_AddStringToObject (*headers, "Retry-After", "1");
    }
    cJSON_Delete (reply);
    *body = text;
    *size = strlen (text);
}

//  --------------------------------------------------------------------------
//  Selftest

//  A zip archive of one member written by libzip, in memory (heap, *size bytes)
typedef enum { S_TEST_STORED, S_TEST_DEFLATED, S_TEST_ENCRYPTED } s_test_how_t;

static unsigned char *
s_test_zip (const char *name, const char *content, s_test_how_t how, size_t *size)
{
    zip_source_t *buffer = zip_source_buffer_create (NULL, 0, 0, NULL);
    assert (buffer);
    zip_source_keep (buffer);           //  zip_close must leave it for us to read back
    zip_t *archive = zip_open_from_source (buffer, ZIP_TRUNCATE, NULL);
    assert (archive);
    zip_source_t *data = zip_source_buffer (archive, content, strlen (content), 0);
    zip_int64_t index = zip_file_add (archive, name, data, ZIP_FL_ENC_UTF_8);
    assert (index >= 0);
    assert (zip_set_file_compression (archive, (zip_uint64_t) index,
                                      how == S_TEST_STORED ? ZIP_CM_STORE : ZIP_CM_DEFLATE, 0) == 0);
    if (how == S_TEST_ENCRYPTED) {
        zip_uint16_t method = zip_encryption_method_supported (ZIP_EM_AES_256, 1) ? ZIP_EM_AES_256 : ZIP_EM_TRAD_PKWARE;
        assert (zip_file_set_encryption (archive, (zip_uint64_t) index, method, "secret") == 0);
    }
    assert (zip_close (archive) == 0);
    zip_stat_t stat;
    assert (zip_source_stat (buffer, &stat) == 0 && (stat.valid & ZIP_STAT_SIZE));
    unsigned char *zip = (unsigned char *) zmalloc ((size_t) stat.size);
    assert (zip_source_open (buffer) == 0);
    assert (zip_source_read (buffer, zip, stat.size) == (zip_int64_t) stat.size);
    zip_source_close (buffer);
    zip_source_free (buffer);
    *size = (size_t) stat.size;
    return zip;
}

//  Offset of the first record with this signature, or 0
static size_t
s_test_find (const unsigned char *zip, size_t size, uint32_t signature)
{
    for (size_t at = 0; at + 4 <= size; at++)
        if ((zip [at] | zip [at + 1] << 8 | zip [at + 2] << 16 | (uint32_t) zip [at + 3] << 24) == signature)
            return at;
    return 0;
}

static void
s_test_put (unsigned char *p, uint64_t value, int bytes)
{
    for (int byte = 0; byte < bytes; byte++)
        p [byte] = (unsigned char) (value >> (8 * byte));
}

//  The same archive with a ZIP64 end of central directory (as a writer makes
//  it past 65535 members or 4 GiB): the classic record only says "see ZIP64"
static unsigned char *
s_test_zip64 (const unsigned char *zip, size_t zip_size, size_t *size)
{
    assert (zip_size >= 22);
    const unsigned char *end = zip + zip_size - 22;     //  libzip writes no archive comment
    uint64_t directory_size = end [12] | end [13] << 8 | end [14] << 16 | (uint64_t) end [15] << 24;
    uint64_t directory = end [16] | end [17] << 8 | end [18] << 16 | (uint64_t) end [19] << 24;
    size_t at = zip_size - 22;
    unsigned char *out = (unsigned char *) zmalloc (at + 56 + 20 + 22);
    memcpy (out, zip, at);
    unsigned char *p = out + at;
    s_test_put (p, 0x06064b50, 4); s_test_put (p + 4, 44, 8); s_test_put (p + 12, 45, 2);
    s_test_put (p + 14, 45, 2); s_test_put (p + 16, 0, 4); s_test_put (p + 20, 0, 4);
    s_test_put (p + 24, 1, 8); s_test_put (p + 32, 1, 8); s_test_put (p + 40, directory_size, 8);
    s_test_put (p + 48, directory, 8);
    p += 56;
    s_test_put (p, 0x07064b50, 4); s_test_put (p + 4, 0, 4); s_test_put (p + 8, at, 8); s_test_put (p + 16, 1, 4);
    p += 20;
    s_test_put (p, 0x06054b50, 4); s_test_put (p + 4, 0, 2); s_test_put (p + 6, 0, 2);
    s_test_put (p + 8, 0xffff, 2); s_test_put (p + 10, 0xffff, 2); s_test_put (p + 12, 0xffffffff, 4);
    s_test_put (p + 16, 0xffffffff, 4); s_test_put (p + 20, 0, 2);
    *size = at + 56 + 20 + 22;
    return out;
}

static cJSON *
s_test_call (api_t *api, const char *method, const char *path, const char *query, const char *headers,
             const char *body, int status)
{
    api_request_t req = { .method = method, .path = path, .query = query, .body = body,
                          .body_size = body ? strlen (body) : 0, .user_id = "alice", .headers = headers };
    api_response_t resp = { 0 };
    assert (api_handle (api, &req, &resp) == 0);
    if (resp.status != status) {
        fprintf (stderr, "\n%s %s -> %d %s (expected %d)\n", method, path, resp.status, resp.body, status);
        assert (false);
    }
    cJSON *json = *resp.body ? cJSON_Parse (resp.body) : cJSON_CreateNull ();
    assert (json);
    api_response_reset (&resp);
    return json;
}

static void
s_test_error (cJSON *reply, const char *type)
{
    const char *got = cJSON_GetStringValue (cJSON_GetObjectItem (reply, "__type"));
    if (!got || strneq (got, type)) {
        fprintf (stderr, "\nerror type %s, expected %s\n", got ? got : "(none)", type);
        assert (false);
    }
    assert (cJSON_GetStringValue (cJSON_GetObjectItem (reply, "Message")));
    cJSON_Delete (reply);
}

void
lambda_test (bool verbose)
{
    printf ("lambda: ");
    assert (lambda_is_path ("/2015-03-31/functions") && lambda_is_path ("/2015-03-31"));
    assert (!lambda_is_path ("/api/functions") && !lambda_is_path ("/2015-03-310"));

    //  Zips: stored, deflated and ZIP64, damaged, lying, encrypted and hostile archives
    char error [256];
    size_t size = 0, zip_size = 0;
    unsigned char *zip = s_test_zip ("app.py", "def handler(e):\n    return e\n", S_TEST_DEFLATED, &zip_size);
    char *file = lambda_unzip (zip, zip_size, "app.py", 1024, &size, error, sizeof error);
    assert (file && streq (file, "def handler(e):\n    return e\n") && size == strlen (file));
    free (file);
    assert (!lambda_unzip (zip, zip_size, "other.py", 1024, &size, error, sizeof error) && strstr (error, "no other.py"));
    assert (!lambda_unzip (zip, zip_size, "app.py", 10, &size, error, sizeof error) && strstr (error, "larger"));
    for (size_t cut = 0; cut < zip_size; cut++) {
        //  Every truncation and every flipped byte: an error or a file, never a crash
        char *partial = lambda_unzip (zip, cut, "app.py", 1024, &size, error, sizeof error);
        free (partial);
        unsigned char *copy = (unsigned char *) malloc (zip_size);
        memcpy (copy, zip, zip_size);
        copy [cut] ^= 0xff;
        partial = lambda_unzip (copy, zip_size, "app.py", 1024, &size, error, sizeof error);
        free (partial);
        free (copy);
    }
    free (zip);
    zip = s_test_zip ("pkg/mod.py", "x = 1\n", S_TEST_STORED, &zip_size);
    file = lambda_unzip (zip, zip_size, "pkg/mod.py", 1024, &size, error, sizeof error);
    assert (file && streq (file, "x = 1\n"));
    free (file);
    //  The same member behind a ZIP64 end of central directory
    size_t zip64_size;
    unsigned char *zip64 = s_test_zip64 (zip, zip_size, &zip64_size);
    file = lambda_unzip (zip64, zip64_size, "pkg/mod.py", 1024, &size, error, sizeof error);
    assert (file && streq (file, "x = 1\n"));
    free (file);
    free (zip64);
    //  A local header that disagrees with the central directory
    zip [s_test_find (zip, zip_size, 0x04034b50) + 14] ^= 0xff;     //  its CRC
    assert (!lambda_unzip (zip, zip_size, "pkg/mod.py", 1024, &size, error, sizeof error)
            && strstr (error, "damaged"));
    free (zip);
    //  A bomb: 100 KB that deflate to little, declared as 10 bytes in both headers
    char *zeros = (char *) zmalloc (100001);
    memset (zeros, '0', 100000);
    zip = s_test_zip ("app.py", zeros, S_TEST_DEFLATED, &zip_size);
    free (zeros);
    assert (zip_size < 1000);
    s_test_put (zip + s_test_find (zip, zip_size, 0x04034b50) + 22, 10, 4);
    s_test_put (zip + s_test_find (zip, zip_size, 0x02014b50) + 24, 10, 4);
    assert (!lambda_unzip (zip, zip_size, "app.py", 1024, &size, error, sizeof error)
            && strstr (error, "more than its header says"));
    free (zip);
    //  Encrypted members are refused, not guessed at
    zip = s_test_zip ("app.py", "secret = 1\n", S_TEST_ENCRYPTED, &zip_size);
    assert (!lambda_unzip (zip, zip_size, "app.py", 1024, &size, error, sizeof error) && strstr (error, "encrypted"));
    free (zip);
    assert (!lambda_unzip ((const unsigned char *) "not a zip", 9, "a.py", 1024, &size, error, sizeof error)
            && strstr (error, "not a zip archive"));
    assert (!lambda_unzip ((const unsigned char *) "", 0, "a.py", 1024, &size, error, sizeof error)
            && strstr (error, "not a zip archive"));
    size_t decoded_size;
    unsigned char *decoded = s_unbase64 ("aGk=", &decoded_size);
    assert (decoded && decoded_size == 2 && memcmp (decoded, "hi", 2) == 0);
    free (decoded);
    assert (!s_unbase64 ("aGk", &decoded_size));
    assert (!s_unbase64 ("a*k=", &decoded_size));
    char *handler = s_handler_of ("x = 1\n\n" LAMBDA_HANDLER_MARKER "app.main\nhandler = main\n");
    assert (streq (handler, "app.main"));
    free (handler);
    handler = s_handler_of ("def handler(e): pass\n");
    assert (streq (handler, LAMBDA_DEFAULT_HANDLER));
    free (handler);

    //  Operations over an in-memory store
    store_t *store = store_new (":memory:");
    api_t *api = api_new (store);
    zip = s_test_zip ("app.py", "def main(event, context):\n    return {'got': event}\n", true, &zip_size);
    char *zip_text = s_base64 (zip, zip_size);
    free (zip);
    char *create = zsys_sprintf ("{\"FunctionName\":\"echo\",\"Runtime\":\"python3.11\",\"Role\":\"r\","
                                 "\"Handler\":\"app.main\",\"Code\":{\"ZipFile\":\"%s\"},\"Timeout\":5}", zip_text);
    cJSON *reply = s_test_call (api, "POST", "/2015-03-31/functions", NULL, NULL, create, 201);
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (reply, "Handler")), "app.main"));
    assert (cJSON_GetNumberValue (cJSON_GetObjectItem (reply, "Timeout")) == 5);
    char *function_id = strdup (cJSON_GetStringValue (cJSON_GetObjectItem (reply, "FunctionId")));
    cJSON_Delete (reply);
    s_test_error (s_test_call (api, "POST", "/2015-03-31/functions/", NULL, NULL, create, 409),
                  "ResourceConflictException");
    zstr_free (&create);
    s_test_error (s_test_call (api, "POST", "/2015-03-31/functions", NULL, NULL, "{\"FunctionName\":\"a b\"}", 400),
                  "InvalidParameterValueException");
    s_test_error (s_test_call (api, "POST", "/2015-03-31/functions", NULL, NULL, "{nope", 400),
                  "InvalidRequestContentException");
    s_test_error (s_test_call (api, "POST", "/2015-03-31/functions", NULL, NULL,
                  "{\"FunctionName\":\"x\",\"Handler\":\"app.main\",\"Code\":{\"ZipFile\":\"aGk=\"}}", 400),
                  "InvalidParameterValueException");
    create = zsys_sprintf ("{\"FunctionName\":\"big\",\"Handler\":\"app.main\",\"Code\":{\"ZipFile\":\"%s\"},"
                           "\"MemorySize\":99999}", zip_text);
    s_test_error (s_test_call (api, "POST", "/2015-03-31/functions", NULL, NULL, create, 400),
                  "InvalidParameterValueException");
    zstr_free (&create);

    reply = s_test_call (api, "GET", "/2015-03-31/functions/echo", NULL, NULL, NULL, 200);
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (cJSON_GetObjectItem (reply, "Configuration"),
                                                              "FunctionName")), "echo"));
    cJSON_Delete (reply);
    char path [128];
    snprintf (path, sizeof path, "/2015-03-31/functions/%s", function_id);
    cJSON_Delete (s_test_call (api, "GET", path, NULL, NULL, NULL, 200));
    cJSON_Delete (s_test_call (api, "GET", "/2015-03-31/functions/" LAMBDA_ARN_PREFIX "echo", NULL, NULL, NULL, 200));
    s_test_error (s_test_call (api, "GET", "/2015-03-31/functions/nobody", NULL, NULL, NULL, 404),
                  "ResourceNotFoundException");
    s_test_error (s_test_call (api, "GET", "/2015-03-31/layers", NULL, NULL, NULL, 404), "UnknownOperationException");

    //  Invoke: resolved and forwarded; DryRun answered here
    reply = s_test_call (api, "POST", "/2015-03-31/functions/echo/invocations", NULL,
                         "{\"x-amz-log-type\":\"Tail\"}", "{\"a\":1}", LAMBDA_FORWARD);
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (reply, "function_id")), function_id));
    assert (cJSON_IsTrue (cJSON_GetObjectItem (reply, "tail")) && cJSON_IsFalse (cJSON_GetObjectItem (reply, "event")));
    cJSON_Delete (reply);
    reply = s_test_call (api, "POST", "/2015-03-31/functions/echo:1/invocations", NULL,
                         "{\"x-amz-invocation-type\":\"Event\"}", NULL, LAMBDA_FORWARD);
    assert (cJSON_IsTrue (cJSON_GetObjectItem (reply, "event")) && cJSON_IsTrue (cJSON_GetObjectItem (reply, "qualified")));
    //  The Event is queued already, under the id the 202 will name
    const char *queued = cJSON_GetStringValue (cJSON_GetObjectItem (reply, "invocation_id"));
    assert (queued);
    cJSON *event = store_query_row (store, "SELECT function_id FROM async_events WHERE first_invocation_id = ?",
                                    "s", queued);
    assert (event && streq (cJSON_GetStringValue (cJSON_GetObjectItem (event, "function_id")), function_id));
    cJSON_Delete (event);
    cJSON_Delete (reply);
    cJSON_Delete (s_test_call (api, "POST", "/2015-03-31/functions/echo/invocations", "Qualifier=%24LATEST",
                               "{\"x-amz-invocation-type\":\"DryRun\"}", "{}", 204));
    s_test_error (s_test_call (api, "POST", "/2015-03-31/functions/echo/invocations", "Qualifier=7", NULL, "{}", 404),
                  "ResourceNotFoundException");
    s_test_error (s_test_call (api, "POST", "/2015-03-31/functions/echo/invocations", "Qualifier=live", NULL, "{}", 404),
                  "ResourceNotFoundException");
    s_test_error (s_test_call (api, "POST", "/2015-03-31/functions/echo/invocations", NULL, NULL, "{x", 400),
                  "InvalidRequestContentException");
    s_test_error (s_test_call (api, "POST", "/2015-03-31/functions/echo/invocations", NULL,
                               "{\"x-amz-invocation-type\":\"Later\"}", "{}", 400), "InvalidParameterValueException");
    s_test_error (s_test_call (api, "POST", "/2015-03-31/functions/ghost/invocations", NULL, NULL, "{}", 404),
                  "ResourceNotFoundException");

    //  A new version through UpdateFunctionCode keeps the handler; the old one is refused
    zip = s_test_zip ("app.py", "def main(event, context):\n    return 2\n", false, &zip_size);
    char *zip_two = s_base64 (zip, zip_size);
    free (zip);
    char *update = zsys_sprintf ("{\"ZipFile\":\"%s\",\"Publish\":true}", zip_two);
    reply = s_test_call (api, "PUT", "/2015-03-31/functions/echo/code", NULL, NULL, update, 200);
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (reply, "Version")), "2"));
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (reply, "Handler")), "app.main"));
    cJSON_Delete (reply);
    zstr_free (&update);
    free (zip_two);
    reply = s_test_call (api, "POST", "/2015-03-31/functions/echo:1/invocations", NULL, NULL, "{}", LAMBDA_FORWARD);
    assert (cJSON_GetNumberValue (cJSON_GetObjectItem (reply, "version")) == 1);
    cJSON_Delete (reply);
    s_test_error (s_test_call (api, "POST", "/2015-03-31/functions/echo:1/invocations", NULL,
                               "{\"x-amz-invocation-type\":\"Event\"}", "{}", 409), "ResourceConflictException");

    //  Lists page with Marker and MaxItems
    for (int i = 0; i < 3; i++) {
        char *more = zsys_sprintf ("{\"FunctionName\":\"f%d\",\"Handler\":\"app.main\",\"Code\":{\"ZipFile\":\"%s\"}}",
                                   i, zip_text);
        cJSON_Delete (s_test_call (api, "POST", "/2015-03-31/functions", NULL, NULL, more, 201));
        zstr_free (&more);
    }
    reply = s_test_call (api, "GET", "/2015-03-31/functions/", "MaxItems=3", NULL, NULL, 200);
    assert (cJSON_GetArraySize (cJSON_GetObjectItem (reply, "Functions")) == 3);
    char *next = strdup (cJSON_GetStringValue (cJSON_GetObjectItem (reply, "NextMarker")));
    cJSON_Delete (reply);
    reply = s_test_call (api, "GET", "/2015-03-31/functions", next, NULL, NULL, 200);
    free (next);
    cJSON_Delete (reply);
    char query [64];
    snprintf (query, sizeof query, "MaxItems=3&Marker=3");
    reply = s_test_call (api, "GET", "/2015-03-31/functions", query, NULL, NULL, 200);
    assert (cJSON_GetArraySize (cJSON_GetObjectItem (reply, "Functions")) == 1);
    assert (!cJSON_GetObjectItem (reply, "NextMarker"));
    cJSON_Delete (reply);
    s_test_error (s_test_call (api, "GET", "/2015-03-31/functions", "MaxItems=0", NULL, NULL, 400),
                  "InvalidParameterValueException");
    //  More than a page asked for: a page (50 at most), as AWS answers
    reply = s_test_call (api, "GET", "/2015-03-31/functions", "MaxItems=100000", NULL, NULL, 200);
    assert (cJSON_GetArraySize (cJSON_GetObjectItem (reply, "Functions")) == 4);
    assert (!cJSON_GetObjectItem (reply, "NextMarker"));
    cJSON_Delete (reply);

    cJSON_Delete (s_test_call (api, "DELETE", "/2015-03-31/functions/echo", NULL, NULL, NULL, 204));
    s_test_error (s_test_call (api, "DELETE", "/2015-03-31/functions/echo", NULL, NULL, NULL, 404),
                  "ResourceNotFoundException");
    free (zip_text);
    free (function_id);

    //  The gateway's replies in Lambda's shape
    int status;
    cJSON *headers;
    char *body;
    lambda_invoke_reply ("{\"tail\":true}", 200,
                         "{\"success\":true,\"output\":{\"x\":1},\"logs\":\"hello\\n\",\"version\":2}", 62,
                         &status, &headers, &body, &size);
    assert (status == 200 && streq (body, "{\"x\":1}"));
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (headers, "X-Amz-Log-Result")), "aGVsbG8K"));
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (headers, "X-Amz-Executed-Version")), "$LATEST"));
    free (body);
    cJSON_Delete (headers);
    const char *failed = "{\"success\":false,\"error\":\"ValueError: boom\",\"error_type\":\"ValueError\","
                         "\"traceback\":\"Traceback:\\n  line 1\\nValueError: boom\\n\",\"version\":3}";
    lambda_invoke_reply ("{\"qualified\":true}", 200, failed, strlen (failed), &status, &headers, &body, &size);
    assert (status == 200);
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (headers, "X-Amz-Function-Error")), "Unhandled"));
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (headers, "X-Amz-Executed-Version")), "3"));
    reply = cJSON_Parse (body);
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (reply, "errorMessage")), "boom"));
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (reply, "errorType")), "ValueError"));
    assert (cJSON_GetArraySize (cJSON_GetObjectItem (reply, "stackTrace")) == 3);
    cJSON_Delete (reply);
    free (body);
    cJSON_Delete (headers);
    lambda_invoke_reply ("{\"event\":true}", 202, "{\"invocation_id\":\"abc\"}", 24, &status, &headers, &body, &size);
    assert (status == 202 && size == 0);
    free (body);
    cJSON_Delete (headers);
    lambda_invoke_reply ("{}", 429, "{\"detail\":\"busy\"}", 17, &status, &headers, &body, &size);
    assert (status == 429);
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (headers, "x-amzn-ErrorType")), "TooManyRequestsException"));
    free (body);
    cJSON_Delete (headers);
    lambda_invoke_reply ("{}", 200, "not json", 8, &status, &headers, &body, &size);
    assert (status == 500);
    free (body);
    cJSON_Delete (headers);
    //  The gateway's 422 names the field in FastAPI's list: its sentence is
    //  the message, not a bare status
    const char *refused = "{\"detail\":[{\"loc\":[\"body\",\"input\"],\"msg\":\"no NUL here\",\"type\":\"value_error\"}]}";
    lambda_invoke_reply ("{}", 422, refused, strlen (refused), &status, &headers, &body, &size);
    assert (status == 400);
    cJSON *said = cJSON_Parse (body);
    assert (streq (cJSON_GetStringValue (cJSON_GetObjectItem (said, "Message")), "input: no NUL here"));
    cJSON_Delete (said);
    free (body);
    cJSON_Delete (headers);

    api_destroy (&api);
    store_destroy (&store);
    printf ("OK\n");
}
