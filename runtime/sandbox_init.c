/*  =========================================================================
    clowdy-sandbox-init - pid 1 of every sandbox: reaps, reports, exits

    Why: the first process of a sandbox is a clone of the server; once it has
    built the sandbox and started the user's process, it execs this small
    static program, so that the long-lived pid 1 of each warm environment
    holds a few pages instead of a copy-on-write image of the server (which
    would grow as the server writes to its memory, and holds its secrets).

    Usage (by runtime/sandbox.c only): clowdy-sandbox-init PID FD
    Reaps every process that ends up as our child (orphans in the sandbox);
    when PID ends, writes its wait status (one int) to FD and exits 0, which
    makes the kernel kill whatever else still runs in the pid namespace.
    It runs as uid 0 of the sandbox's user namespace with no capabilities,
    no_new_privs and the sandbox's seccomp filter, all set before the exec.
    ========================================================================= */

#include <errno.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

int
main (int argc, char *argv [])
{
    if (argc != 3)
        return 2;
    pid_t user = (pid_t) atoi (argv [1]);
    int status_fd = atoi (argv [2]);
    if (user <= 0 || status_fd < 0)
        return 2;
    while (1) {
        int status;
        pid_t pid = waitpid (-1, &status, __WALL);
        if (pid == user) {
            if (write (status_fd, &status, sizeof status) < 0)
                return 1;       //  the server falls back to our status
            return 0;
        }
        if (pid < 0 && errno != EINTR)
            return 0;           //  ECHILD: nothing left to wait for
    }
}
