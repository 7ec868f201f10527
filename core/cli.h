/*  =========================================================================
    cli - the clowdy command line client: `clowdy fn|project|route|env ...`

    A client of the REST API (../shared/API.md) over libcurl, in the same
    binary as the server:

        clowdy fn deploy NAME FILE.py [--project P] [--memory MB] [--timeout S] [--network]
        clowdy fn invoke NAME [--data JSON|@FILE] [--async]
        clowdy fn logs NAME [--follow]
        clowdy fn list
        clowdy fn rollback NAME VERSION
        clowdy project create NAME [--description TEXT] | list
        clowdy route add PROJECT METHOD PATH FUNCTION [--description TEXT] | list PROJECT | rm PROJECT ROUTE_ID
        clowdy env set PROJECT KEY VALUE [--plain] | list PROJECT | rm PROJECT KEY

    Options anywhere: --server URL (default $CLOWDY_SERVER, else
    http://127.0.0.1:8000), --json (the server's JSON, for scripts).
    $CLOWDY_TOKEN is sent as a Bearer token. Functions and projects are
    named by name or id. Exit status: 0, 1 when the server refused or could
    not be reached (its `detail` on stderr), 2 for a usage error.
    ========================================================================= */

#ifndef CLOWDY_CLI_H_INCLUDED
#define CLOWDY_CLI_H_INCLUDED

#include <stdbool.h>

//  Is argv [1] one of the client's commands?
bool
    cli_is_command (const char *command);

//  Run the command line; returns the exit status
int
    cli_main (int argc, char *argv []);

void
    cli_test (bool verbose);

#endif
