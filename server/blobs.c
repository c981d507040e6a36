/* blobs.c - the content-addressed blob files (blobs.h).
 *
 * Layout: ROOT/ab/abcdef... - the blob whose SHA-256 is the 64 hex digits abcdef... lives in the
 * subdirectory named by its first two digits (at most 256 subdirectories, so no directory grows
 * past a few thousand entries). A blob is written to ROOT/ab/.tmp-<sha>-<16 random hex> (created
 * with O_EXCL), written whole, fsynced, closed, renamed onto its name, and the subdirectory
 * fsynced (ROOT too when the subdirectory was just made), so once srv_blob_put returns the blob
 * survives a crash and power loss: rename(2) is atomic, readers see the whole file or none.
 * Names starting with ".tmp-" are leftovers of an interrupted write; srv_blob_sweep removes them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blobs.h"
#include "segloss.h"
#include "sha256.h"
#include "store.h"

#define TMP_PREFIX ".tmp-"

/* Whether s is 64 lowercase hex digits. */
bool srv_blob_name_ok(const char *s)
{
    for (int i = 0; i < 64; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return s[64] == '\0';
}

/* Writes "what path: strerror(e)" into msg and returns SL_EINTERNAL (SL_ENOMEM for ENOMEM). */
static int io_err(char *msg, size_t msglen, const char *what, const char *path, int e)
{
    snprintf(msg, msglen, "blobs: %s %s: %s", what, path, strerror(e));
    return e == ENOMEM ? SL_ENOMEM : SL_EINTERNAL;
}

/* fsyncs directory path. Returns 0 or SL_EINTERNAL. */
static int fsync_dir(const char *path, char *msg, size_t msglen)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return io_err(msg, msglen, "open", path, errno);
    }
    int rc = 0;
    if (fsync(fd) != 0) {
        rc = io_err(msg, msglen, "fsync", path, errno);
    }
    close(fd);
    return rc;
}

/* Creates root when absent (mode 0700). */
int srv_blob_init(const char *root, char *msg, size_t msglen)
{
    if (mkdir(root, 0700) != 0 && errno != EEXIST) {
        return io_err(msg, msglen, "mkdir", root, errno);
    }
    return 0;
}

/* Writes all of data[0..len) to fd, through short writes and EINTR. Returns 0 or errno. */
static int write_all(int fd, const unsigned char *data, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, data, len);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno;
        }
        data += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Writes data to a new temporary file in dir (name into tmp), fsynced and closed. Returns 0 or
 * an error (the temporary file then removed). */
static int write_tmp(const char *dir, const char *sha, const void *data, size_t len, char *tmp,
                     size_t tmplen, char *msg, size_t msglen)
{
    int fd = -1;
    for (int attempt = 0; attempt < 8 && fd < 0; attempt++) {
        unsigned char r[8];
        if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
            return io_err(msg, msglen, "getrandom for", dir, errno);
        }
        char hex[17];
        for (int i = 0; i < 8; i++) {
            snprintf(hex + 2 * i, 3, "%02x", r[i]);
        }
        snprintf(tmp, tmplen, "%s/" TMP_PREFIX "%s-%s", dir, sha, hex);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST) {
            return io_err(msg, msglen, "create", tmp, errno);
        }
    }
    if (fd < 0) {
        return io_err(msg, msglen, "create", tmp, EEXIST);
    }
    int e = write_all(fd, data, len);
    const char *what = "write";
    if (e == 0 && fsync(fd) != 0) {
        e = errno;
        what = "fsync";
    }
    if (close(fd) != 0 && e == 0) {
        e = errno;
        what = "close";
    }
    if (e != 0) {
        unlink(tmp);
        return io_err(msg, msglen, what, tmp, e);
    }
    return 0;
}

/* Stores data under its SHA-256 (see the file's comment for the steps). */
int srv_blob_put(const char *root, const void *data, size_t len, char sha[65], char *msg,
                 size_t msglen)
{
    slp_sha256_hex(data, len, sha);
    size_t rl = strlen(root);
    size_t cap = rl + 100;
    char *dir = malloc(cap), *path = malloc(cap), *tmp = malloc(cap);
    int rc = SL_ENOMEM;
    if (!dir || !path || !tmp) {
        snprintf(msg, msglen, "blobs: out of memory");
        goto out;
    }
    snprintf(dir, cap, "%s/%.2s", root, sha);
    snprintf(path, cap, "%s/%s", dir, sha);
    bool made = mkdir(dir, 0700) == 0;
    if (!made && errno != EEXIST) {
        rc = io_err(msg, msglen, "mkdir", dir, errno);
        goto out;
    }
    if (made && (rc = fsync_dir(root, msg, msglen)) != 0) {
        goto out;
    }
    struct stat st;
    if (stat(path, &st) == 0) {
        /* content-addressed: the same name holds the same bytes; make its entry durable in case
         * the process that renamed it died before fsyncing the directory */
        rc = fsync_dir(dir, msg, msglen);
        goto out;
    }
    if ((rc = write_tmp(dir, sha, data, len, tmp, cap, msg, msglen)) != 0) {
        goto out;
    }
    if (rename(tmp, path) != 0) {
        rc = io_err(msg, msglen, "rename", tmp, errno);
        unlink(tmp);
        goto out;
    }
    rc = fsync_dir(dir, msg, msglen);
out:
    free(dir);
    free(path);
    free(tmp);
    return rc;
}

/* Reads blob sha whole into a new buffer. */
int srv_blob_get(const char *root, const char *sha, void **data, size_t *len, char *msg,
                 size_t msglen)
{
    *data = NULL;
    *len = 0;
    if (!srv_blob_name_ok(sha)) {
        snprintf(msg, msglen, "blobs: not a blob name (64 lowercase hex digits)");
        return SL_EINVAL;
    }
    size_t cap = strlen(root) + 100;
    char *path = malloc(cap);
    if (!path) {
        snprintf(msg, msglen, "blobs: out of memory");
        return SL_ENOMEM;
    }
    snprintf(path, cap, "%s/%.2s/%s", root, sha, sha);
    int rc = 0;
    unsigned char *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            snprintf(msg, msglen, "blobs: no blob %s", sha);
            rc = STORE_ENOTFOUND;
        } else {
            rc = io_err(msg, msglen, "open", path, errno);
        }
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = io_err(msg, msglen, "stat", path, errno);
        goto out;
    }
    size_t n = (size_t)st.st_size;
    buf = malloc(n ? n : 1);
    if (!buf) {
        rc = SL_ENOMEM;
        snprintf(msg, msglen, "blobs: out of memory for %zu bytes", n);
        goto out;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            rc = io_err(msg, msglen, "read", path, r < 0 ? errno : EIO);
            goto out;
        }
        got += (size_t)r;
    }
    *data = buf;
    *len = n;
    buf = NULL;
out:
    if (fd >= 0) {
        close(fd);
    }
    free(buf);
    free(path);
    return rc;
}

/* Sweeps one subdirectory sub (two hex digits) of root. */
static int sweep_sub(const char *root, const char *sub, bool (*keep)(const char *, void *),
                     void *arg, size_t *removed, char *msg, size_t msglen)
{
    size_t cap = strlen(root) + 100;
    char *dir = malloc(cap), *path = malloc(cap);
    int rc = 0;
    DIR *d = NULL;
    if (!dir || !path) {
        snprintf(msg, msglen, "blobs: out of memory");
        rc = SL_ENOMEM;
        goto out;
    }
    snprintf(dir, cap, "%s/%s", root, sub);
    d = opendir(dir);
    if (!d) {
        rc = io_err(msg, msglen, "opendir", dir, errno);
        goto out;
    }
    bool any = false;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        bool tmp = strncmp(n, TMP_PREFIX, strlen(TMP_PREFIX)) == 0;
        bool blob = srv_blob_name_ok(n) && strncmp(n, sub, 2) == 0;
        if (!tmp && !(blob && !keep(n, arg))) {
            continue;
        }
        if (strlen(n) > 90) {
            continue; /* not a name this file writes */
        }
        snprintf(path, cap, "%s/%s", dir, n);
        if (unlink(path) != 0 && errno != ENOENT) {
            rc = io_err(msg, msglen, "unlink", path, errno);
            goto out;
        }
        any = true;
        if (removed) {
            (*removed)++;
        }
    }
    if (any) {
        rc = fsync_dir(dir, msg, msglen);
    }
out:
    if (d) {
        closedir(d);
    }
    free(dir);
    free(path);
    return rc;
}

/* Removes temporary files and the blobs keep rejects. */
int srv_blob_sweep(const char *root, bool (*keep)(const char *sha, void *arg), void *arg,
                   size_t *removed, char *msg, size_t msglen)
{
    if (removed) {
        *removed = 0;
    }
    DIR *d = opendir(root);
    if (!d) {
        return io_err(msg, msglen, "opendir", root, errno);
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        bool hex2 =
            strlen(n) == 2 && strchr("0123456789abcdef", n[0]) && strchr("0123456789abcdef", n[1]);
        if (hex2) {
            rc = sweep_sub(root, n, keep, arg, removed, msg, msglen);
        }
    }
    closedir(d);
    return rc;
}
