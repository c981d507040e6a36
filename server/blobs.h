/* blobs.h - content-addressed files under one directory (store.h's blobs), for every backend:
 * written durably (temporary name, fsync, rename, directory fsync), read whole, swept of what no
 * row names. Errors: 0 or a negative SL_E* code (STORE_ENOTFOUND for a missing blob) with a
 * message for the log in msg. */
#ifndef SRV_BLOBS_H
#define SRV_BLOBS_H

#include <stdbool.h>
#include <stddef.h>

/* Whether s is a blob name: 64 lowercase hex digits. */
bool srv_blob_name_ok(const char *s);
/* Creates root (mode 0700) when it does not exist. */
int srv_blob_init(const char *root, char *msg, size_t msglen);
/* Writes data[0..len) as the blob named by its SHA-256 (64 hex digits and a NUL into sha) under
 * root; an existing blob is kept (its directory is fsynced again). */
int srv_blob_put(const char *root, const void *data, size_t len, char sha[65], char *msg,
                 size_t msglen);
/* Reads blob sha into a new buffer *data (malloc'd, caller frees; never NULL on success, even
 * for 0 bytes) of *len bytes. STORE_ENOTFOUND when absent, SL_EINVAL when sha is not a name. */
int srv_blob_get(const char *root, const char *sha, void **data, size_t *len, char *msg,
                 size_t msglen);
/* Removes the temporary files under root and every blob for which keep(sha, arg) is false;
 * *removed (may be NULL) counts both. Other files are left alone. */
int srv_blob_sweep(const char *root, bool (*keep)(const char *sha, void *arg), void *arg,
                   size_t *removed, char *msg, size_t msglen);

#endif /* SRV_BLOBS_H */
