/*  =========================================================================
    layers - what the API and the builder share about dependency layers:
    checking and normalising a requirements text, the layer key, and the
    few file-system walks a layer needs (size, seal, remove)

    A layer is a read-only directory of pip-installed packages, at
    <data_dir>/layers/<key>, mounted at /opt/layer in every sandbox of the
    projects that use it (actors/builder.c builds them). The key is the
    sha256 of the normalised requirements, the Python the sandboxes run
    and the platform: the same text gives the same layer, across projects.

    Usage:
        char *normalised, error [256];
        if (layers_normalise (text, strlen (text), &normalised, error, sizeof error))
            ...422 with error...
        char key [LAYERS_KEY_SIZE];
        layers_key (normalised, key);
    ========================================================================= */

#ifndef CLOWDY_LAYERS_H_INCLUDED
#define CLOWDY_LAYERS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LAYERS_TEXT_MAX     65536       //  bytes of requirements text at most
#define LAYERS_KEY_SIZE     65          //  sha256 hex and its NUL
#define LAYERS_ENTRIES_MAX  500000      //  files, dirs and links a layer may hold (as core/layerpack.c)
#define LAYERS_ENTRY_BYTES  512         //  what an entry costs besides its blocks (inode, name)

//  Name the interpreter sandboxes run (config->python), once at start-up,
//  before any thread computes a key. Without it, /usr/bin/python3.
void
    layers_set_python (const char *python);

//  "python3.11 x86_64" or the like: what a layer's packages were built for
const char *
    layers_python_tag (void);

//  Check a requirements text and normalise it: comments and blank lines
//  dropped, lines stripped and sorted, one per line, no final newline
//  ("" for a text with no requirements). Refuses what would make pip
//  install something other than named packages from the configured index,
//  or somewhere else: options (-e, -r, -c, --target, --index-url, ...),
//  local paths, file: and other URLs, direct references (name @ url),
//  environment variables, line continuations, and texts over 64 KiB.
//  Returns 0 with *normalised (heap), or -1 with a sentence in error.
int
    layers_normalise (const char *text, size_t size, char **normalised, char *error, size_t error_size);

//  The layer key of a normalised text: lower-case sha256 hex
void
    layers_key (const char *normalised, char key [LAYERS_KEY_SIZE]);

//  Is text a well-formed key (64 lower-case hex digits)?
bool
    layers_key_valid (const char *text);

//  Bytes the tree at path takes on disk, path itself included: for every
//  entry (file, directory, symlink or other; symlinks not followed, hard
//  links counted once per name) its allocated blocks or its length,
//  whichever is more, plus LAYERS_ENTRY_BYTES for its inode and directory
//  entry. So empty files and directories count, and so does a sparse file
//  at its full length (what its archive holds). Stops early and returns a
//  value above cap once the sum passes cap (cap < 0: no cap). -1 if the
//  walk failed or the tree holds more than LAYERS_ENTRIES_MAX entries:
//  callers treat -1 as over any cap.
int64_t
    layers_dir_size (const char *path, int64_t cap);

//  The same, and *entries the entries seen (LAYERS_ENTRIES_MAX + 1 when
//  the walk stopped because there were too many), to tell why it was -1,
//  and *counted (if not NULL) the size of what the walk could measure: an
//  entry that could not be looked at is skipped, the walk goes on (and
//  the answer is -1)
int64_t
    layers_dir_usage (const char *path, int64_t cap, long *entries, int64_t *counted);

//  Make a freshly built tree ours and read-only to its users: owned by
//  root, no set-id bits, nothing writable by group or others, and nothing
//  but directories, regular files and symlinks (others removed). Symlinks
//  are never followed. 0 or -1.
int
    layers_seal (const char *path);

//  Remove a tree without following symlinks. 0 or -1 (logged).
int
    layers_remove (const char *path);

void
    layers_test (bool verbose);

#endif
