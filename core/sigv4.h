/*  =========================================================================
    sigv4 - AWS Signature Version 4, checked on requests to the Lambda API

    With auth on, awscli and boto3 sign each request with an API token:
    the access key id is the token's id, the secret access key the token
    itself. The server checks the signature the way AWS does (canonical
    request, string to sign, HMAC-SHA256 chain), payload hash included, so a
    captured request cannot be sent again with another body, path, query or
    signed header, nor more than SIGV4_SKEW_SECONDS from its X-Amz-Date.

    The store keeps a token's SHA-256 only, which cannot key an HMAC; so a
    token made since also keeps its plaintext sealed (AES-256-GCM) under a
    key in the data dir (sigv4.key, mode 0600), never in the database: a
    copy of the database alone still gives no working credential.
    ========================================================================= */

#ifndef CLOWDY_SIGV4_H_INCLUDED
#define CLOWDY_SIGV4_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include <cjson/cJSON.h>

#define SIGV4_ALGORITHM     "AWS4-HMAC-SHA256"
#define SIGV4_SKEW_SECONDS  (15 * 60)       //  as AWS: a signature is good this long around its date
//  The request's path as sent, in the headers JSON the pool gets (no real
//  header has a ':' in its name, so a client cannot set it)
#define SIGV4_RAW_PATH      ":raw-path"

//  What an Authorization header says
typedef struct {
    char access_key [64];           //  Credential's access key id
    char date [9];                  //  YYYYMMDD
    char region [64];
    char service [64];
    char signed_headers [1024];     //  "host;x-amz-date"
    char signature [65];            //  lower-case hex
} sigv4_auth_t;

//  Is this an Authorization header of SigV4?
bool
    sigv4_is_header (const char *authorization);

//  Read an Authorization header. 0, or -1 with a sentence in *detail.
int
    sigv4_parse (const char *authorization, sigv4_auth_t *auth, const char **detail);

//  The canonical request (heap) for a request: headers is a JSON object of
//  lower-case names; NULL if a signed header is missing
char *
    sigv4_canonical_request (const char *method, const char *raw_path, const char *raw_query, cJSON *headers,
                             const char *signed_headers, const void *body, size_t body_size);

//  The signature (hex into out) of a canonical request
void
    sigv4_sign (const char *secret, const char *amz_date, const char *date, const char *region,
                const char *service, const char *canonical_request, char out [65]);

//  Check a request's signature with secret. 0, or -1 with a sentence in *detail.
int
    sigv4_verify (const sigv4_auth_t *auth, const char *secret, const char *method, const char *raw_path,
                  const char *raw_query, cJSON *headers, const void *body, size_t body_size, time_t now,
                  const char **detail);

//  Load (or make) the sealing key in data_dir; once per process, thread-safe.
//  0, or -1 (logged): tokens made then have no SigV4 secret.
int
    sigv4_key_load (const char *data_dir);

//  Seal a secret under the key (hex, heap), or NULL with no key loaded
char *
    sigv4_seal (const char *secret);

//  Open a sealed secret (heap), or NULL
char *
    sigv4_unseal (const char *sealed);

void
    sigv4_test (bool verbose);

#endif
