/*  fuzz_proto - libFuzzer target for the runner protocol reader: what a
    hostile function writes to its protocol fd reaches proto_reader_feed.
    The first byte sets the chunk size, so frames split at every place.  */
#include <czmq.h>
#include "runtime/proto.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t chunk = (size_t) data [0] % 17 + 1;
    proto_reader_t *reader = proto_reader_new (4096);
    for (size_t offset = 1; offset < size; offset += chunk) {
        size_t part = size - offset < chunk ? size - offset : chunk;
        if (proto_reader_feed (reader, data + offset, part))
            break;
        cJSON *msg;
        while ((msg = proto_reader_next (reader)))
            cJSON_Delete (msg);
    }
    proto_reader_destroy (&reader);
    return 0;
}
