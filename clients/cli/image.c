/* image.c - reads one image of the data set back from its files, to draw it in the report
 * (segloss score --html): its prediction and target as dense C-order arrays, shaped as the
 * server saw that image. body.c streams the same bytes to the server; this file reads them
 * again only for the few images the report draws. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "cli.h"

#define CHUNK (1u << 20) /* bytes per gzread */

/* printf into the caller's message buffer. */
static void errf(char *msg, size_t msglen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
}

/* Opens n's file positioned at byte off of its elements; NULL with msg. */
static gzFile open_at(const struct cli_npy *n, int64_t off, char *msg, size_t msglen)
{
    gzFile f = gzopen(n->path, "rb");
    if (!f) {
        errf(msg, msglen, "%s: %s", n->path, strerror(errno ? errno : ENOENT));
        return NULL;
    }
    gzbuffer(f, 1 << 17);
    z_off_t want = (z_off_t)((int64_t)n->data_offset + off);
    if (gzseek(f, want, SEEK_SET) != want) {
        errf(msg, msglen, "%s: cannot seek to byte %lld", n->path, (long long)want);
        gzclose(f);
        return NULL;
    }
    return f;
}

/* Reads exactly len bytes of f into buf; 0, or -1 with msg naming path. */
static int read_exact(gzFile f, const char *path, unsigned char *buf, int64_t len, char *msg,
                      size_t msglen)
{
    for (int64_t got = 0; got < len;) {
        unsigned k = (unsigned)(len - got < CHUNK ? len - got : CHUNK);
        int r = gzread(f, buf + got, k);
        if (r <= 0) {
            int zerr;
            const char *e = gzerror(f, &zerr);
            errf(msg, msglen, "%s: ended %lld bytes early%s%s", path, (long long)(len - got),
                 zerr ? ": " : "", zerr ? e : "");
            return -1;
        }
        got += r;
    }
    return 0;
}

/* Copies a Fortran-order array (first axis fastest) of shape[0..ndim) and elements of size es
 * from src into dst in C order. */
static void fortran_to_c(const unsigned char *src, unsigned char *dst, const int64_t *shape,
                         int ndim, size_t es)
{
    int64_t idx[SL_MAX_DIMS] = {0}, stride[SL_MAX_DIMS], total = 1;
    for (int a = 0; a < ndim; a++) {
        stride[a] = total; /* Fortran stride of axis a, in elements */
        total *= shape[a];
    }
    int64_t m = 0; /* Fortran index of idx */
    for (int64_t j = 0; j < total; j++) {
        memcpy(dst + (size_t)j * es, src + (size_t)m * es, es);
        /* the next C-order multi-index: the last axis runs fastest */
        for (int a = ndim - 1; a >= 0; a--) {
            if (++idx[a] < shape[a]) {
                m += stride[a];
                break;
            }
            m -= stride[a] * (shape[a] - 1);
            idx[a] = 0;
        }
    }
}

/* Image i of batch file n (axis 0 cut off) into a new buffer *buf with view *t; 0, or -1. */
static int read_batch_image(const struct cli_npy *n, int64_t i, void **buf, struct sl_tensor *t,
                            char *msg, size_t msglen)
{
    const size_t es = sl_dtype_size(n->dtype);
    const int64_t per = cli_npy_image_bytes(n, false), nimg = n->shape[0];
    unsigned char *out = malloc(per > 0 ? (size_t)per : 1);
    unsigned char *chunk = NULL, *gathered = NULL;
    gzFile f = NULL;
    int rc = -1;
    if (!out) {
        errf(msg, msglen, "out of memory reading image %lld of %s", (long long)i, n->path);
        goto out;
    }
    if (!n->fortran || nimg == 1) {
        /* C order (or a single image, where both orders agree on axis 0): one range */
        f = open_at(n, i * per, msg, msglen);
        if (!f || read_exact(f, n->path, out, per, msg, msglen)) {
            goto out;
        }
    } else {
        /* Fortran order: element (i, rest) is at i + N * (Fortran index of rest), so the image
         * is every N-th element from i; read through the file once and put them in C order */
        const int64_t m = per / (int64_t)es;
        const int64_t row = nimg * (int64_t)es; /* bytes of one step along the rest */
        gathered = malloc((size_t)per);
        chunk = malloc((size_t)row);
        f = open_at(n, 0, msg, msglen);
        if (!gathered || !chunk) {
            errf(msg, msglen, "out of memory reading image %lld of %s", (long long)i, n->path);
            goto out;
        }
        if (!f) {
            goto out;
        }
        for (int64_t k = 0; k < m; k++) {
            if (read_exact(f, n->path, chunk, row, msg, msglen)) {
                goto out;
            }
            memcpy(gathered + (size_t)k * es, chunk + (size_t)i * es, es);
        }
        fortran_to_c(gathered, out, n->shape + 1, n->ndim - 1, es);
    }
    t->data = out;
    t->dtype = n->dtype;
    t->ndim = n->ndim - 1;
    memset(t->shape, 0, sizeof t->shape);
    memcpy(t->shape, n->shape + 1, sizeof(int64_t) * (size_t)(n->ndim - 1));
    *buf = out;
    out = NULL;
    rc = 0;
out:
    if (f) {
        gzclose(f);
    }
    free(out);
    free(chunk);
    free(gathered);
    return rc;
}

/* The whole array of file n (one image, C order) into a new buffer *buf with view *t. */
static int read_file_image(const struct cli_npy *n, void **buf, struct sl_tensor *t, char *msg,
                           size_t msglen)
{
    const int64_t len = cli_npy_image_bytes(n, true);
    unsigned char *out = malloc(len > 0 ? (size_t)len : 1);
    if (!out) {
        errf(msg, msglen, "out of memory reading %s", n->path);
        return -1;
    }
    gzFile f = open_at(n, 0, msg, msglen);
    if (!f || read_exact(f, n->path, out, len, msg, msglen)) {
        if (f) {
            gzclose(f);
        }
        free(out);
        return -1;
    }
    gzclose(f);
    t->data = out;
    t->dtype = n->dtype;
    t->ndim = n->ndim;
    memset(t->shape, 0, sizeof t->shape);
    memcpy(t->shape, n->shape, sizeof(int64_t) * (size_t)n->ndim);
    *buf = out;
    return 0;
}

/* Decodes rle (input.c's merged runs "start length ...": 1-based starts, pixels numbered down
 * each column, then the next column, as the server's format "rle") into a new uint8 0/1 mask
 * [h, w] in C order. */
static int decode_rle(const char *rle, int64_t h, int64_t w, const char *id, void **buf,
                      struct sl_tensor *t, char *msg, size_t msglen)
{
    uint8_t *m = calloc((size_t)(h * w), 1);
    if (!m) {
        errf(msg, msglen, "out of memory decoding image %s", id);
        return -1;
    }
    const char *s = rle;
    while (*s) {
        char *e1, *e2 = NULL;
        long long start = strtoll(s, &e1, 10);
        long long len = e1 != s ? strtoll(e1, &e2, 10) : 0;
        if (e1 == s || e2 == e1 || start < 1 || len < 1 || start - 1 + len > h * w) {
            /* input.c has checked every run; this is its own text */
            errf(msg, msglen, "image %s: malformed runs '%.60s'", id, s);
            free(m);
            return -1;
        }
        for (int64_t p = start - 1; p < start - 1 + len; p++) {
            m[(p % h) * w + p / h] = 1; /* pixel p: row p % h of column p / h */
        }
        s = e2;
        while (isspace((unsigned char)*s)) {
            s++;
        }
    }
    t->data = m;
    t->dtype = SL_DT_U8;
    t->ndim = 2;
    memset(t->shape, 0, sizeof t->shape);
    t->shape[0] = h;
    t->shape[1] = w;
    *buf = m;
    return 0;
}

/* Reads image i of d into px (cli.h); 0, or -1 with msg. */
int cli_pixels_read(const struct cli_data *d, int64_t i, struct cli_pixels *px, char *msg,
                    size_t msglen)
{
    memset(px, 0, sizeof *px);
    if (i < 0 || i >= d->nimages) {
        errf(msg, msglen, "image %lld: the data set has %lld", (long long)i, (long long)d->nimages);
        return -1;
    }
    const struct cli_image *im = &d->images[i];
    int rc = -1;
    switch (d->kind) {
    case CLI_SRC_NPY:
        rc = read_batch_image(&d->pred, i, &px->pred_buf, &px->pred, msg, msglen) ||
                     read_batch_image(&d->target, i, &px->target_buf, &px->target, msg, msglen)
                 ? -1
                 : 0;
        break;
    case CLI_SRC_DIR:
        rc = read_file_image(&im->pred, &px->pred_buf, &px->pred, msg, msglen) ||
                     read_file_image(&im->target, &px->target_buf, &px->target, msg, msglen)
                 ? -1
                 : 0;
        break;
    case CLI_SRC_CSV:
        rc = decode_rle(im->pred_rle, d->h, d->w, im->id, &px->pred_buf, &px->pred, msg, msglen) ||
                     decode_rle(im->target_rle, d->h, d->w, im->id, &px->target_buf, &px->target,
                                msg, msglen)
                 ? -1
                 : 0;
        break;
    }
    if (rc) {
        cli_pixels_free(px);
    }
    return rc;
}

/* Frees px's buffers and zeroes it; NULL is fine. */
void cli_pixels_free(struct cli_pixels *px)
{
    if (!px) {
        return;
    }
    free(px->pred_buf);
    free(px->target_buf);
    memset(px, 0, sizeof *px);
}
