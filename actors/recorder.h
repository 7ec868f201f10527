/*  =========================================================================
    recorder - writes invocation records in batches, off the request path

    Listens on a PULL socket at the "recorder" endpoint for RECORD messages
    (one invocation row as JSON, see broker/PROTOCOL.md) and writes them to
    SQLite in one transaction per batch: when 256 rows are waiting or 50 ms
    after the first one, whichever comes first. Then it trims each touched
    function to its newest --retention rows.

    Started with actor_args_t (core/config.h). Pipe commands:
        zstr_send (recorder, "FLUSH");  //  writes what is waiting, answers "OK"
        zstr_send (recorder, "PING");   //  answers "PONG"
    $TERM writes what is waiting, then stops.

    recorder_sync (from any thread of the process) returns once every
    RECORD already sent to the running recorder is written: the API calls it
    before it reads invocation records, so a call whose answer has left is
    in the list (read-your-writes without a write per call).
    ========================================================================= */

#ifndef CLOWDY_RECORDER_H_INCLUDED
#define CLOWDY_RECORDER_H_INCLUDED

#include <czmq.h>

void
    recorder_actor (zsock_t *pipe, void *args);

#define RECORDER_SYNC_MS 2000         //  Longest recorder_sync waits (a batch write under a lock)

//  Wait until every RECORD already sent to this process's recorder is
//  written. 0 when done or no recorder runs here, -1 if it did not answer.
int
    recorder_sync (void);

void
    recorder_test (bool verbose);

#endif
