/*  =========================================================================
    layerpack - a layer as one archive that can travel: packed on the
    control host when the layer is sealed, checked and unpacked on a worker
    host that fetched it

    The archive is a plain (uncompressed) POSIX tar of the layer's tree,
    made with libarchive: directories and regular files with their modes,
    owned by root, nothing else. Its sha256 is the layer's content digest,
    recorded when the layer is sealed (the layer key is a hash of the
    requirements, not of what pip made, so it cannot vouch for content).

    Unpacking trusts nothing in the archive: every name must be relative
    and stay inside (no "..", no absolute path, no empty name), only
    directories and regular files are taken (a symlink, hard link, device
    or fifo refuses the whole archive), and the bytes written are capped.
    Files are created with O_EXCL | O_NOFOLLOW under a fresh directory.

        char digest [LAYERPACK_DIGEST_SIZE];
        layerpack_pack ("/data/layers/.build/x/out", "/data/layers/.build/x/layer.tar", digest);
        layerpack_file_digest ("/w/layers/.fetch/x/layer.tar", digest);
        char error [256];
        if (layerpack_unpack ("/w/.../layer.tar", "/w/.../tree", cap, error, sizeof error))
            ...refused, error says why...
    ========================================================================= */

#ifndef CLOWDY_LAYERPACK_H_INCLUDED
#define CLOWDY_LAYERPACK_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LAYERPACK_DIGEST_SIZE   65      //  sha256 hex and its NUL

//  Pack the tree under dir (symlinks inside are not followed and not
//  packed: layers_seal leaves none that pip makes) into a new tar at
//  archive, and its sha256 hex into digest. 0 or -1 (logged).
int
    layerpack_pack (const char *dir, const char *archive, char digest [LAYERPACK_DIGEST_SIZE]);

//  sha256 hex of a file's bytes. 0 or -1.
int
    layerpack_file_digest (const char *path, char digest [LAYERPACK_DIGEST_SIZE]);

//  Unpack a tar into dir, an existing empty directory, refusing what is
//  unsafe (see above) and more than cap bytes of files. 0, or -1 with a
//  sentence in error; on -1 dir may hold part of the archive (the caller
//  removes it).
int
    layerpack_unpack (const char *archive, const char *dir, int64_t cap, char *error, size_t error_size);

void
    layerpack_test (bool verbose);

#endif
