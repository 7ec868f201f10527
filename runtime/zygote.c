/*  =========================================================================
    clowdy-zygote - a python with the runner imported, forked into sandboxes

    Why: a fresh python takes 10-40 ms to start here, most of a cold start.
    This program starts one python, runs runner.py's module-level code (its
    imports and definitions, not main), then serves the server's clone
    requests (runtime/sandbox.c, sandbox_zygote_serve): each new sandbox's
    pid 2 comes back here, already isolated, and runs the runner's main().

    Usage (by runtime/sandbox.c only), exec'd from a sealed memfd copy with
    a sandbox's python's argv, `/usr/bin/python3 -I -B /opt/clowdy/runner.py`,
    which its children keep (they do not exec): fd 3 is the request socket,
    fd 4 runner.py's source (compiled under the sandbox's name for it). So
    nothing a child can read of itself (cmdline, exe, maps) names a host
    path. It dies with the server thread that started it. It runs as
    SANDBOX_ZYGOTE_UID, with no capabilities and no_new_privs, from before
    python starts.

    The interpreter is configured as `python3 -I -B /opt/clowdy/runner.py`
    is: isolated (no environment variables, no user site, no script dir on
    sys.path), no .pyc writes, sys.argv and sys.executable as there. Only
    the standard library and the runner run here: never a function's code.
    ========================================================================= */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "runtime/sandbox.h"

#define RUNNER_NAME     "/opt/clowdy/runner.py"
#define MAX_RUNNER      (1024 * 1024)
#define MAX_RANGES      512             //  page ranges a child copies at once
#define TRIAL_WAIT_MS   5000            //  for the trial child's ready

#ifndef MADV_POPULATE_WRITE
#   define MADV_POPULATE_WRITE 23       //  Linux 5.14
#endif

//  The pages a child writes on its way to ready, learned from a trial
//  child at start-up (s_learn_pages), as ranges of our own address space
typedef struct {
    uintptr_t start;
    uintptr_t end;
} range_t;

static range_t s_ranges [MAX_RANGES];
static int s_nranges;

static char *
s_read_all (int fd)
{
    char *text = (char *) malloc (MAX_RUNNER + 1);
    size_t size = 0;
    ssize_t got;
    while (text && size < MAX_RUNNER && (got = read (fd, text + size, MAX_RUNNER - size)) > 0)
        size += (size_t) got;
    close (fd);
    if (text)
        text [size] = 0;
    return text;
}

static int
s_configure (void)
{
    PyConfig config;
    PyConfig_InitPythonConfig (&config);
    config.isolated = 1;
    config.use_environment = 0;
    config.user_site_directory = 0;
    config.safe_path = 1;
    config.write_bytecode = 0;
    config.parse_argv = 0;
    char *argv [] = { RUNNER_NAME };
    wchar_t *orig [] = { L"/usr/bin/python3", L"-I", L"-B", L"" RUNNER_NAME };
    PyStatus status = PyConfig_SetBytesString (&config, &config.program_name, "/usr/bin/python3");
    if (!PyStatus_Exception (status))
        status = PyConfig_SetBytesArgv (&config, 1, argv);
    if (!PyStatus_Exception (status))
        status = PyConfig_SetWideStringList (&config, &config.orig_argv, 4, orig);
    if (!PyStatus_Exception (status))
        status = Py_InitializeFromConfig (&config);
    PyConfig_Clear (&config);
    if (PyStatus_Exception (status)) {
        fprintf (stderr, "clowdy-zygote: python did not start: %s\n", status.err_msg? status.err_msg: "?");
        return -1;
    }
    return 0;
}

//  globals [key] = value as a str: the dict takes its own reference, so
//  ours goes once the item is in (PyDict_SetItemString does not steal it)
static int
s_set_string (PyObject *dict, const char *key, const char *value)
{
    PyObject *text = PyUnicode_FromString (value);
    if (!text)
        return -1;
    int rc = PyDict_SetItemString (dict, key, text);
    Py_DECREF (text);
    return rc;
}

//  Of the trial child pid, the pages of our own writable private mappings
//  that it holds for itself (copied or first touched), from its pagemap
//  (present, bit 63; exclusively mapped, bit 56), as ranges in s_ranges
static void
s_scan_pages (pid_t pid)
{
    char path [64];
    snprintf (path, sizeof path, "/proc/%d/pagemap", (int) pid);
    int pagemap = open (path, O_RDONLY | O_CLOEXEC);
    FILE *maps = fopen ("/proc/self/maps", "re");
    long page = sysconf (_SC_PAGESIZE);
    char line [512];
    while (pagemap >= 0 && maps && page > 0 && fgets (line, sizeof line, maps)) {
        unsigned long start, end;
        char perms [5];
        if (sscanf (line, "%lx-%lx %4s", &start, &end, perms) != 3 || perms [1] != 'w' || perms [3] != 'p')
            continue;
        for (unsigned long address = start; address < end; ) {
            uint64_t entries [512];
            size_t count = (end - address) / (unsigned long) page;
            if (count > 512)
                count = 512;
            ssize_t got = pread (pagemap, entries, count * sizeof (uint64_t),
                                 (off_t) (address / (unsigned long) page * sizeof (uint64_t)));
            if (got <= 0)
                break;
            count = (size_t) got / sizeof (uint64_t);
            for (size_t index = 0; index < count; index++, address += (unsigned long) page) {
                if (!((entries [index] >> 63) & 1) || !((entries [index] >> 56) & 1))
                    continue;
                if (s_nranges && s_ranges [s_nranges - 1].end == address)
                    s_ranges [s_nranges - 1].end = address + (unsigned long) page;
                else
                if (s_nranges < MAX_RANGES)
                    s_ranges [s_nranges++] = (range_t) { address, address + (unsigned long) page };
            }
        }
    }
    if (maps)
        fclose (maps);
    if (pagemap >= 0)
        close (pagemap);
}

//  Why: a child's python, on its way to ready, writes about 500 pages it
//  shares with us, and each first write is a page fault that copies one;
//  on a virtual machine a fault costs 15-30 us. MADV_POPULATE_WRITE copies
//  a range in one call at about a quarter of that per page. So before
//  serving, one trial child (a plain fork: no sandbox, our own uid, only
//  our own code: the runner's main with its warm-up, on a socket pair)
//  runs to ready, we read which of our pages it holds for itself, kill it,
//  and every sandbox's pid 2 copies those ranges at once (s_populate).
//  Nothing a function does can change the ranges: they are learned before
//  any sandbox exists. A failure only means no ranges.
static void
s_learn_pages (PyObject *main_function)
{
    int pair [2];
    if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair))
        return;
    PyOS_BeforeFork ();
    pid_t pid = fork ();
    if (pid == 0) {
        PyOS_AfterFork_Child ();
        if (dup2 (pair [1], 3) != 3)
            _exit (1);
        PyObject_CallNoArgs (main_function);    //  ready, then reads fd 3 until it is killed
        _exit (1);
    }
    PyOS_AfterFork_Parent ();
    close (pair [1]);
    if (pid > 0) {
        //  Its ready frame: 4 bytes of length, then the body
        char frame [512];
        size_t have = 0, need = 4;
        struct pollfd poller = { pair [0], POLLIN, 0 };
        while (have < need && poll (&poller, 1, TRIAL_WAIT_MS) == 1) {
            ssize_t got = read (pair [0], frame + have, sizeof frame - have);
            if (got <= 0)
                break;
            have += (size_t) got;
            if (have >= 4)
                need = 4 + (((size_t) (unsigned char) frame [0] << 24) | ((size_t) (unsigned char) frame [1] << 16)
                         |  ((size_t) (unsigned char) frame [2] << 8) | (size_t) (unsigned char) frame [3]);
            if (need > sizeof frame)
                break;
        }
        if (have >= need && need > 4)
            s_scan_pages (pid);
        kill (pid, SIGKILL);
        while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    close (pair [0]);
}

//  In a sandbox's pid 2: copy the pages it is about to write, at once
static void
s_populate (void)
{
    for (int index = 0; index < s_nranges; index++)
        madvise ((void *) s_ranges [index].start, s_ranges [index].end - s_ranges [index].start,
                 MADV_POPULATE_WRITE);
}

int
main (int argc, char *argv [])
{
    int socket = 3;
    if (argc != 4 || strcmp (argv [3], RUNNER_NAME))
        return 2;
    //  If the server's thread went before this, EOF on fd 3 ends us
    if (prctl (PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0))
        return 1;
    char *source = s_read_all (4);
    //  Nothing of the server's but our socket and 0-2
    if (syscall (SYS_close_range, 4, ~0U, 0))
        return 2;
    if (!source) {
        fprintf (stderr, "clowdy-zygote: cannot read the runner on fd 4\n");
        return 1;
    }
    //  From here on no host privilege: an unprivileged uid of our own (the
    //  server opens what a new sandbox needs and passes the fds), no_new_privs,
    //  dumpable (so that /proc/self stays ours); PDEATHSIG again, as the uid
    //  change cleared it
    uid_t id = SANDBOX_ZYGOTE_UID;
    pid_t parent = getppid ();
    if (setgroups (0, NULL) || setresgid (id, id, id) || setresuid (id, id, id)
    ||  prctl (PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) || getppid () != parent
    ||  prctl (PR_SET_DUMPABLE, 1, 0, 0, 0) || prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
        fprintf (stderr, "clowdy-zygote: cannot drop privileges\n");
        return 1;
    }
    prctl (PR_SET_NAME, "clowdy-zygote", 0, 0, 0);     //  not the fd we were exec'd from
    if (s_configure ())
        return 1;
    //  The runner's module-level code, as module __main__ under the
    //  sandbox's file name, without its `if __name__ == "__main__"` part
    PyObject *module = PyImport_AddModule ("__main__");
    PyObject *globals = module? PyModule_GetDict (module): NULL;
    PyObject *code = Py_CompileString (source, RUNNER_NAME, Py_file_input);
    free (source);
    PyObject *result = NULL, *main_function = NULL;
    if (globals && code
    &&  s_set_string (globals, "__file__", RUNNER_NAME) == 0
    &&  s_set_string (globals, "__name__", "__clowdy_zygote__") == 0)
        result = PyEval_EvalCode (code, globals, globals);
    if (result)
        main_function = PyDict_GetItemString (globals, "main");
    if (!main_function || s_set_string (globals, "__name__", "__main__")
    ||  PyDict_SetItemString (globals, "ZYGOTE_CHILD", Py_True)) {
        PyErr_Print ();
        fprintf (stderr, "clowdy-zygote: the runner did not load\n");
        return 1;
    }
    Py_XDECREF (result);
    Py_XDECREF (code);
    Py_INCREF (main_function);
    //  What a child would otherwise pay in its first milliseconds: the
    //  first compile () of a process, and a garbage collection that walks
    //  (and so writes, copying each page) every object inherited from
    //  here; gc.freeze () keeps those out of the child's collections. Then
    //  sys.modules as a sandbox's python has it: without gc, and without
    //  the host's sitecustomize (Debian's lives in /etc, which a sandbox
    //  does not show)
    PyObject *scratch = PyDict_New ();
    PyObject *done = NULL;
    if (scratch && PyDict_SetItemString (scratch, "__builtins__", PyEval_GetBuiltins ()) == 0)
        done = PyRun_String (
            "import sys\n"
            "compile ('def _w (a, b=1, *c, **d):\\n    return [x for x in a if x]\\n', '<warm-up>', 'exec')\n"
            "had_gc = 'gc' in sys.modules\n"
            "import gc\n"
            "gc.collect ()\n"
            "gc.freeze ()\n"
            "if not had_gc:\n"
            "    del sys.modules ['gc']\n"
            "sys.modules.pop ('sitecustomize', None)\n",
            Py_file_input, scratch, scratch);
    if (!done) {
        PyErr_Print ();
        fprintf (stderr, "clowdy-zygote: warm-up failed\n");
        return 1;
    }
    Py_DECREF (done);
    Py_DECREF (scratch);
    s_learn_pages (main_function);
    if (write (socket, "R", 1) != 1)
        return 1;
    if (sandbox_zygote_serve (socket, PyOS_BeforeFork, PyOS_AfterFork_Parent))
        return 0;               //  the server is gone
    //  A sandbox's pid 2: isolated, fds 0-2 on /dev/null and 3 the protocol;
    //  named as a sandbox's python is
    s_populate ();
    PyOS_AfterFork_Child ();
    prctl (PR_SET_NAME, "python3", 0, 0, 0);
    PyObject *returned = PyObject_CallNoArgs (main_function);
    if (!returned)
        PyErr_Print ();
    _exit (1);                  //  main () ends in os._exit: anything else is a failure
}
