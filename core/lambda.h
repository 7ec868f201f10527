/*  =========================================================================
    lambda - the Lambda-compatible API under /2015-03-31, for awscli and boto3

    The http actor sends every /2015-03-31/... request to the control-plane
    pool like a REST request (with its headers, for SigV4 and X-Amz-*); a
    pool thread runs lambda_handle, which answers ListFunctions,
    GetFunction, CreateFunction, UpdateFunctionCode and DeleteFunction
    itself, in Lambda's shapes, through the REST handlers (core/api.h).
    An Invoke is resolved there (name or id, qualifier, owner, payload,
    DryRun) and answered LAMBDA_FORWARD: http then sends it to the gateway
    as a direct invoke (`lambda` kind) and turns the gateway's reply into
    Lambda's with lambda_invoke_reply. An Event is queued there, in the
    async queue (core/asyncq.h), and its LAMBDA_FORWARD carries the
    invocation id: http answers it 202 at once.

    Errors are what botocore reads: an `x-amzn-ErrorType` header (http sets
    it from the body's `__type`, lambda_headers) and a JSON body
    {"__type", "Type", "Message"}.
    ========================================================================= */

#ifndef CLOWDY_LAMBDA_H_INCLUDED
#define CLOWDY_LAMBDA_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>
#include "core/api.h"

#define LAMBDA_PREFIX       "/2015-03-31/"
//  An api_response_t status that no final answer has (100 Continue, which
//  the pool passes on as it is): "send this invoke to the gateway"; the
//  body says how ({function_id, event, tail, qualified})
#define LAMBDA_FORWARD      100
//  X-Amz-Log-Result carries the base64 of at most this many bytes of logs
#define LAMBDA_LOG_TAIL     4096

//  Is path one of the Lambda API's (/2015-03-31 and below)?
bool
    lambda_is_path (const char *path);

//  Handle one Lambda request on a thread that owns api's store: fills resp
//  as api_handle does (status, JSON body or "" for 204, invalidate), or
//  status LAMBDA_FORWARD for an invoke to send on. Returns 0.
int
    lambda_handle (api_t *api, const api_request_t *req, api_response_t *resp);

//  {"__type", "Type", "Message"} for an error reply (heap)
char *
    lambda_error_json (const char *error_type, const char *message);

//  The headers of a reply made by lambda_handle (or by http itself with
//  lambda_error_json): Content-Type, and x-amzn-ErrorType for an error
cJSON *
    lambda_headers (int status, const char *body);

//  The body to send the gateway for a forwarded invoke: {"input": payload}
//  (payload was checked to be JSON, or is empty). Heap, *size set.
char *
    lambda_invoke_body (const char *payload, size_t payload_size, size_t *size);

//  Turn the gateway's reply to a forwarded invoke into Lambda's: forward is
//  the LAMBDA_FORWARD body. Sets *status, *headers (new) and *body (heap,
//  *size bytes).
void
    lambda_invoke_reply (const char *forward, int gateway_status, const char *gateway_body,
                         size_t gateway_size, int *status, cJSON **headers, char **body, size_t *size);

//  Find name in a zip archive held in memory and return its contents
//  (heap, NUL-terminated, *size bytes), at most max bytes; NULL with a
//  reason in error. Read with libzip: ZIP64 archives and every compression
//  method Debian's libzip is built with; encrypted members are refused.
char *
    lambda_unzip (const unsigned char *zip, size_t zip_size, const char *name, size_t max,
                  size_t *size, char *error, size_t error_size);

void
    lambda_test (bool verbose);

#endif
