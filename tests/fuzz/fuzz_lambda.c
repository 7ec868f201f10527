/*  fuzz_lambda - libFuzzer target for what the Lambda API reads from outside
    before anyone is known: the SigV4 Authorization header and the request it
    signs (core/sigv4.c), and the zip archives of CreateFunction and
    UpdateFunctionCode (lambda_unzip). The first input byte picks:
      0  "<Authorization header>\n<headers JSON>\n<query>\n<body>": parsed,
         then verified (a canonical request built) with a fixed secret
      1  a zip archive, searched for "app.py" and "a/b.py"  */
#include <czmq.h>
#include "core/lambda.h"
#include "core/sigv4.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data [0] == 1) {
        char error [256];
        size_t unzipped = 0;
        char *file = lambda_unzip (data + 1, size - 1, "app.py", 1 << 20, &unzipped, error, sizeof error);
        free (file);
        file = lambda_unzip (data + 1, size - 1, "a/b.py", 64, &unzipped, error, sizeof error);
        free (file);
        return 0;
    }
    char *text = (char *) malloc (size);
    memcpy (text, data + 1, size - 1);
    text [size - 1] = 0;
    char *parts [4] = { text, "", "", "" };
    for (int part = 1; part < 4; part++) {
        char *newline = strchr (parts [part - 1], '\n');
        if (!newline)
            break;
        *newline = 0;
        parts [part] = newline + 1;
    }
    sigv4_auth_t auth;
    const char *detail;
    cJSON *headers = cJSON_Parse (parts [1]);
    if (sigv4_parse (parts [0], &auth, &detail) == 0)
        sigv4_verify (&auth, "clw_secret", "POST", "/2015-03-31/functions/f/invocations", parts [2], headers,
                      parts [3], strlen (parts [3]), 1700000000, &detail);
    char *canonical = sigv4_canonical_request ("GET", parts [2], parts [2], headers, "host;x-amz-date",
                                               parts [3], strlen (parts [3]));
    free (canonical);
    cJSON_Delete (headers);
    free (text);
    return 0;
}
