/* body.c - one batch as a multipart/form-data body, produced as curl reads it: the `spec`
 * part, then `pred` and `mask` as .npy bytes (a new header for the batch, then the elements
 * read from the files), each optionally gzip- or zstd-compressed on the fly. Memory stays a few
 * buffers whatever the batch size; a retry rewinds and reads the files again.
 *
 * A challenge's reference or submission is the same machinery with other parts: one .npy part
 * per image named by its id (cli_body_images), or a Kaggle CSV part and its shape. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "array.h"
#include "cli.h"

struct seg {
    char *mem; /* owned text, or NULL for a file range */
    size_t len;
    const char *path; /* borrowed from the data set */
    int64_t off, flen;
};

struct part {
    char *head; /* boundary line and part headers */
    struct seg *segs;
    int nsegs;
    enum cli_compress codec; /* CLI_COMPRESS_NONE, _GZIP or _ZSTD */
};

/* zstd level of the parts: its fastest regular level, which keeps the client's time per byte
 * near gzip -1's while the server inflates several times faster. */
#define ZSTD_PART_LEVEL 1

/* An open input file, kept across parts and batches so a .gz is not decompressed again
 * from its start for every batch. */
struct handle {
    const char *path;
    gzFile f;
    int64_t pos;
};

enum phase { PH_HEAD, PH_CONTENT, PH_CRLF, PH_TAIL, PH_DONE };

struct cli_body {
    const struct cli_data *d;
    enum cli_compress comp;
    enum cli_compress auto_codec; /* what auto compresses integer arrays with */
    char boundary[48];
    char ctype[96];
    struct part *parts; /* cap of them, the first nparts in use */
    int nparts, cap;
    char tail[64];
    /* reading state */
    int pi;
    enum phase ph;
    size_t pos; /* in head/crlf/tail */
    int si;
    int64_t spos; /* in the current segment */
    z_stream z;
    bool zinit, zfinish;
    ZSTD_CCtx *zc;           /* zstd context, made once and reused for every part (owned) */
    bool zopen;              /* zstd: a part's frame is being written */
    size_t zin_len, zin_pos; /* zstd: bytes of `in` read and taken */
    bool zdone;              /* zstd: the frame has been written out whole */
    unsigned char in[1 << 16];
    struct handle h[2];
    /* the message buffer of the cli_body_read() call in progress (the caller's) */
    char *msg;
    size_t msglen;
};

/* Writes the reason of a failing read into the caller's message buffer. */
static void berr(struct cli_body *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->msg, b->msglen, fmt, ap);
    va_end(ap);
}

/* Whether t is a floating-point dtype. */
static bool is_float(enum sl_dtype t)
{
    return t == SL_DT_F16 || t == SL_DT_BF16 || t == SL_DT_F32 || t == SL_DT_F64;
}

/* Frees a part's head and segments and zeroes it. */
static void part_clear(struct part *p)
{
    free(p->head);
    for (int i = 0; i < p->nsegs; i++) {
        free(p->segs[i].mem);
    }
    free(p->segs);
    memset(p, 0, sizeof *p);
}

/* Closes the body's open input files. */
static void handles_close(struct cli_body *b)
{
    for (int i = 0; i < 2; i++) {
        if (b->h[i].f) {
            gzclose(b->h[i].f);
        }
        memset(&b->h[i], 0, sizeof b->h[i]);
    }
}

/* Clears every part of b and makes room for n zeroed ones; 0, or -1 on out of memory. */
static int parts_reset(struct cli_body *b, int n)
{
    for (int i = 0; i < b->cap; i++) {
        part_clear(&b->parts[i]);
    }
    b->nparts = 0;
    if (n > b->cap) {
        struct part *np = realloc(b->parts, sizeof *np * (size_t)n);
        if (!np) {
            return -1;
        }
        memset(np + b->cap, 0, sizeof *np * (size_t)(n - b->cap));
        b->parts = np;
        b->cap = n;
    }
    return 0;
}

/* A new body over d (borrowed) with its boundary and Content-Type; NULL on out of memory. */
struct cli_body *cli_body_new(const struct cli_data *d, enum cli_compress comp,
                              enum cli_compress auto_codec)
{
    struct cli_body *b = calloc(1, sizeof *b);
    if (!b) {
        return NULL;
    }
    b->d = d;
    b->comp = comp;
    b->auto_codec = auto_codec == CLI_COMPRESS_ZSTD ? CLI_COMPRESS_ZSTD : CLI_COMPRESS_GZIP;
    unsigned long long r = (unsigned long long)(uintptr_t)b ^ (unsigned long long)rand();
    snprintf(b->boundary, sizeof b->boundary, "segloss-%016llx%08x", r, (unsigned)rand());
    snprintf(b->ctype, sizeof b->ctype, "multipart/form-data; boundary=%s", b->boundary);
    snprintf(b->tail, sizeof b->tail, "--%s--\r\n", b->boundary);
    return b;
}

/* The codec of an array of dtype t: --compress's, or for auto the auto codec on integers (floats
 * barely shrink: random float32 logits 1.08x under zstd -1 and gzip -1 alike). */
static enum cli_compress codec_of(const struct cli_body *b, enum sl_dtype t)
{
    if (b->comp == CLI_COMPRESS_AUTO) {
        return is_float(t) ? CLI_COMPRESS_NONE : b->auto_codec;
    }
    return b->comp;
}

/* The file name suffix, part Content-Type and "compression" value of a codec. */
static const char *codec_suffix(enum cli_compress c)
{
    return c == CLI_COMPRESS_GZIP ? ".gz" : c == CLI_COMPRESS_ZSTD ? ".zst" : "";
}

static const char *codec_type(enum cli_compress c)
{
    return c == CLI_COMPRESS_GZIP   ? "application/gzip"
           : c == CLI_COMPRESS_ZSTD ? "application/zstd"
                                    : "application/x-npy";
}

static const char *codec_name(enum cli_compress c)
{
    return c == CLI_COMPRESS_GZIP ? "gzip" : c == CLI_COMPRESS_ZSTD ? "zstd" : "none";
}

/* The boundary line and headers of part name (new, 512 bytes); NULL on out of memory. */
static char *part_head(const struct cli_body *b, const char *name, const char *filename,
                       const char *type)
{
    char *h = malloc(512);
    if (h) {
        snprintf(h, 512,
                 "--%s\r\nContent-Disposition: form-data; name=\"%s\"%s%s%s\r\n"
                 "Content-Type: %s\r\n\r\n",
                 b->boundary, name, filename ? "; filename=\"" : "", filename ? filename : "",
                 filename ? "\"" : "", type);
    }
    return h;
}

/* Appends segment s to p, which takes s.mem; 0, or -1 (s.mem freed) on out of memory. */
static int add_seg(struct part *p, struct seg s)
{
    struct seg *ns = realloc(p->segs, sizeof *ns * (size_t)(p->nsegs + 1));
    if (!ns) {
        free(s.mem);
        return -1;
    }
    p->segs = ns;
    p->segs[p->nsegs++] = s;
    return 0;
}

/* The npy part of one array (pred or target) of images [first, last). */
static int npy_part(struct cli_body *b, struct part *p, bool pred, int64_t first, int64_t last)
{
    const struct cli_data *d = b->d;
    const struct cli_npy *n = d->kind == CLI_SRC_NPY
                                  ? (pred ? &d->pred : &d->target)
                                  : (pred ? &d->images[first].pred : &d->images[first].target);
    /* the batch's shape: [last - first] + an image's shape (axis 0 of a batch file cut off) */
    const int skip = d->kind == CLI_SRC_NPY;
    int64_t shape[SL_MAX_DIMS + 1] = {last - first};
    memcpy(shape + 1, n->shape + skip, sizeof(int64_t) * (size_t)(n->ndim - skip));
    /* a Fortran-order batch file is only ever sent whole (cli_data_open) */
    bool fortran = skip && n->fortran;
    char *hdr = malloc(512);
    size_t hl =
        hdr ? slp_npy_write_header(n->dtype, shape, n->ndim - skip + 1, fortran, hdr, 512) : 0;
    p->codec = codec_of(b, n->dtype);
    const char *name = pred ? "pred" : "mask";
    char filename[32];
    snprintf(filename, sizeof filename, "%s.npy%s", name, codec_suffix(p->codec));
    p->head = part_head(b, name, filename, codec_type(p->codec));
    if (!hl || !p->head) {
        free(hdr);
        return -1;
    }
    if (add_seg(p, (struct seg){hdr, hl, NULL, 0, 0})) {
        return -1;
    }
    if (d->kind == CLI_SRC_NPY) {
        int64_t per = cli_npy_image_bytes(n, false);
        return add_seg(p, (struct seg){NULL, 0, n->path, (int64_t)n->data_offset + first * per,
                                       (last - first) * per});
    }
    for (int64_t i = first; i < last; i++) {
        const struct cli_npy *f = pred ? &d->images[i].pred : &d->images[i].target;
        if (add_seg(p, (struct seg){NULL, 0, f->path, (int64_t)f->data_offset,
                                    cli_npy_image_bytes(f, true)})) {
            return -1;
        }
    }
    return 0;
}

/* Sets the batch: images [first, last) with the spec object (borrowed; its prediction and
 * target members are set here). Returns 0, or -1 with msg. */
int cli_body_batch(struct cli_body *b, int64_t first, int64_t last, json_t *spec, char *msg,
                   size_t msglen)
{
    const struct cli_data *d = b->d;
    if (parts_reset(b, 3)) {
        snprintf(msg, msglen, "out of memory");
        return -1;
    }
    if (d->kind == CLI_SRC_CSV) {
        json_t *shape =
            json_pack("[III]", (json_int_t)(last - first), (json_int_t)d->h, (json_int_t)d->w);
        json_t *pd = json_array(), *td = json_array();
        for (int64_t i = first; i < last; i++) {
            json_array_append_new(pd, json_string(d->images[i].pred_rle));
            json_array_append_new(td, json_string(d->images[i].target_rle));
        }
        json_object_set_new(
            spec, "prediction",
            json_pack("{s:s, s:O, s:o}", "format", "rle", "shape", shape, "data", pd));
        json_object_set_new(
            spec, "target",
            json_pack("{s:s, s:o, s:o}", "format", "rle", "shape", shape, "data", td));
    } else {
        for (int k = 0; k < 2; k++) {
            struct part *p = &b->parts[1 + k];
            if (npy_part(b, p, k == 0, first, last)) {
                snprintf(msg, msglen, "out of memory");
                return -1;
            }
            json_object_set_new(spec, k == 0 ? "prediction" : "target",
                                json_pack("{s:s, s:s, s:s}", "format", "npy", "part",
                                          k == 0 ? "pred" : "mask", "compression",
                                          codec_name(p->codec)));
        }
    }
    char *text = json_dumps(spec, JSON_COMPACT);
    b->parts[0].head = part_head(b, "spec", NULL, "application/json");
    if (!text || !b->parts[0].head ||
        add_seg(&b->parts[0], (struct seg){text, strlen(text), NULL, 0, 0})) {
        snprintf(msg, msglen, "out of memory");
        return -1;
    }
    b->nparts = d->kind == CLI_SRC_CSV ? 1 : 3;
    cli_body_rewind(b);
    return 0;
}

/* The .npy part of image i of a single source (cli_source_open): a new header of the image's
 * dtype and shape, then its elements from the stacked file or its own file. 0, or -1 on out of
 * memory. */
static int image_part(struct cli_body *b, struct part *p, int64_t i)
{
    const struct cli_data *d = b->d;
    const bool stacked = d->kind == CLI_SRC_NPY;
    const struct cli_npy *n = stacked ? &d->pred : &d->images[i].pred;
    const int skip = stacked;
    char *hdr = malloc(512);
    size_t hl =
        hdr ? slp_npy_write_header(n->dtype, n->shape + skip, n->ndim - skip, n->fortran, hdr, 512)
            : 0;
    p->codec = codec_of(b, n->dtype);
    char filename[160];
    snprintf(filename, sizeof filename, "%s.npy%s", d->images[i].id, codec_suffix(p->codec));
    p->head = part_head(b, d->images[i].id, filename, codec_type(p->codec));
    if (!hl || !p->head) {
        free(hdr);
        return -1;
    }
    if (add_seg(p, (struct seg){hdr, hl, NULL, 0, 0})) {
        return -1;
    }
    int64_t per = cli_npy_image_bytes(n, !stacked);
    int64_t off = (int64_t)n->data_offset + (stacked ? i * per : 0);
    return add_seg(p, (struct seg){NULL, 0, n->path, off, per});
}

/* A text part name holding text (copied); 0, or -1 on out of memory. */
static int text_part(struct cli_body *b, struct part *p, const char *name, const char *filename,
                     const char *type, const char *text)
{
    char *copy = strdup(text);
    p->head = part_head(b, name, filename, type);
    if (!copy || !p->head) {
        free(copy);
        return -1;
    }
    return add_seg(p, (struct seg){copy, strlen(copy), NULL, 0, 0});
}

/* The Kaggle CSV text of a CSV source's images (new), one row per image with its merged runs
 * (an empty mask an empty EncodedPixels); NULL on out of memory. */
static char *csv_text(const struct cli_data *d)
{
    size_t cap = 32;
    for (int64_t i = 0; i < d->nimages; i++) {
        cap += strlen(d->images[i].id) + strlen(d->images[i].pred_rle) + 3;
    }
    char *s = malloc(cap);
    if (!s) {
        return NULL;
    }
    size_t len = (size_t)snprintf(s, cap, "ImageId,EncodedPixels\n");
    for (int64_t i = 0; i < d->nimages; i++) {
        len +=
            (size_t)snprintf(s + len, cap - len, "%s,%s\n", d->images[i].id, d->images[i].pred_rle);
    }
    return s;
}

/* Sets the body to a single source's images (cli.h); 0, or -1 with msg. */
int cli_body_images(struct cli_body *b, const char *note, char *msg, size_t msglen)
{
    const struct cli_data *d = b->d;
    bool csv = d->kind == CLI_SRC_CSV;
    int64_t n = csv ? 2 : d->nimages;
    if (n + 1 > (1 << 30) || parts_reset(b, (int)n + 1)) {
        snprintf(msg, msglen, "out of memory");
        return -1;
    }
    int rc = 0;
    if (csv) {
        char spec[64];
        snprintf(spec, sizeof spec, "{\"shape\":[%lld,%lld]}", (long long)d->h, (long long)d->w);
        char *text = csv_text(d);
        rc = text && text_part(b, &b->parts[0], "spec", NULL, "application/json", spec) == 0 &&
                     text_part(b, &b->parts[1], "csv", "masks.csv", "text/csv", text) == 0
                 ? 0
                 : -1;
        free(text);
    } else {
        for (int64_t i = 0; rc == 0 && i < n; i++) {
            rc = image_part(b, &b->parts[i], i);
        }
    }
    if (rc == 0 && note) {
        rc = text_part(b, &b->parts[n], "note", NULL, "text/plain; charset=utf-8", note);
    }
    if (rc) {
        snprintf(msg, msglen, "out of memory");
        return -1;
    }
    b->nparts = (int)n + (note ? 1 : 0);
    cli_body_rewind(b);
    return 0;
}

/* Back to the first byte of the body; the input files stay open. */
void cli_body_rewind(struct cli_body *b)
{
    b->pi = 0;
    b->ph = PH_HEAD;
    b->pos = 0;
    b->si = 0;
    b->spos = 0;
    if (b->zinit) {
        deflateEnd(&b->z);
        b->zinit = false;
    }
    b->zopen = false; /* the next part starts a new frame on the same context */
}

/* Frees b, its parts and its open files; NULL is fine. */
void cli_body_free(struct cli_body *b)
{
    if (!b) {
        return;
    }
    cli_body_rewind(b);
    ZSTD_freeCCtx(b->zc); /* NULL is fine */
    for (int i = 0; i < b->cap; i++) {
        part_clear(&b->parts[i]);
    }
    free(b->parts);
    handles_close(b);
    free(b);
}

/* The multipart Content-Type with its boundary (borrowed from b). */
const char *cli_body_content_type(const struct cli_body *b)
{
    return b->ctype;
}

/* Up to n bytes of file range s from its position b->spos. */
static long file_read(struct cli_body *b, const struct seg *s, unsigned char *buf, size_t n)
{
    struct handle *h = NULL;
    for (int i = 0; i < 2 && !h; i++) {
        if (b->h[i].f && strcmp(b->h[i].path, s->path) == 0) {
            h = &b->h[i];
        }
    }
    if (!h) {
        /* reuse the slot of the other array's file least: pred is part 1, target part 2 */
        h = &b->h[b->pi == 2 ? 1 : 0];
        if (h->f) {
            gzclose(h->f);
        }
        h->f = gzopen(s->path, "rb");
        h->path = s->path;
        h->pos = 0;
        if (!h->f) {
            berr(b, "%s: cannot open", s->path);
            return -1;
        }
        gzbuffer(h->f, 1 << 17);
    }
    int64_t want = s->off + b->spos;
    if (h->pos != want) {
        if (gzseek(h->f, (z_off_t)want, SEEK_SET) != (z_off_t)want) {
            berr(b, "%s: cannot seek to byte %lld", s->path, (long long)want);
            return -1;
        }
        h->pos = want;
    }
    int64_t left = s->flen - b->spos;
    unsigned k = (unsigned)((int64_t)n < left ? (int64_t)n : left);
    int got = gzread(h->f, buf, k);
    if (got <= 0) {
        int zerr;
        const char *e = gzerror(h->f, &zerr);
        berr(b, "%s: ended at byte %lld, %lld more expected%s%s", s->path, (long long)want,
             (long long)left, zerr ? ": " : "", zerr ? e : "");
        return -1;
    }
    h->pos += got;
    return got;
}

/* Up to n uncompressed content bytes of the current part; 0 at its end, -1 on error. */
static long content_read(struct cli_body *b, unsigned char *buf, size_t n)
{
    struct part *p = &b->parts[b->pi];
    while (b->si < p->nsegs) {
        const struct seg *s = &p->segs[b->si];
        int64_t len = s->mem ? (int64_t)s->len : s->flen;
        if (b->spos == len) {
            b->si++;
            b->spos = 0;
            continue;
        }
        long got;
        if (s->mem) {
            got = (long)((int64_t)n < len - b->spos ? (int64_t)n : len - b->spos);
            memcpy(buf, s->mem + b->spos, (size_t)got);
        } else {
            got = file_read(b, s, buf, n);
        }
        if (got > 0) {
            b->spos += got;
        }
        return got;
    }
    return 0;
}

/* Compressed content bytes of the current part into buf; 0 once the gzip stream has ended. */
static long gz_read(struct cli_body *b, unsigned char *buf, size_t n)
{
    if (!b->zinit) {
        memset(&b->z, 0, sizeof b->z);
        if (deflateInit2(&b->z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
            berr(b, "out of memory (deflate)");
            return -1;
        }
        b->zinit = true;
        b->zfinish = false;
    }
    const uInt room = (uInt)(n > (1u << 30) ? (1u << 30) : n);
    b->z.next_out = buf;
    b->z.avail_out = room;
    while (b->z.avail_out == room) { /* until some output, or the stream's end */
        if (b->z.avail_in == 0 && !b->zfinish) {
            long got = content_read(b, b->in, sizeof b->in);
            if (got < 0) {
                return -1;
            }
            b->z.next_in = b->in;
            b->z.avail_in = (uInt)got;
            b->zfinish = got == 0;
        }
        int rc = deflate(&b->z, b->zfinish ? Z_FINISH : Z_NO_FLUSH);
        if (rc == Z_STREAM_END) {
            break;
        }
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            berr(b, "deflate failed (%d)", rc);
            return -1;
        }
    }
    long produced = (long)((unsigned char *)b->z.next_out - buf);
    if (produced == 0) {
        deflateEnd(&b->z);
        b->zinit = false;
    }
    return produced;
}

/* Bytes of the current part's content before compression (the sum of its segments). */
static unsigned long long part_bytes(const struct part *p)
{
    unsigned long long n = 0;
    for (int i = 0; i < p->nsegs; i++) {
        n += p->segs[i].mem ? (unsigned long long)p->segs[i].len
                            : (unsigned long long)p->segs[i].flen;
    }
    return n;
}

/* zstd content bytes of the current part into buf: one frame that declares the part's size (so
 * the server decodes it in one call); 0 once it has been written out whole. */
static long zstd_read(struct cli_body *b, unsigned char *buf, size_t n)
{
    if (!b->zopen) {
        /* one context for every part and batch: its tables are allocated once */
        if (!b->zc && !(b->zc = ZSTD_createCCtx())) {
            berr(b, "out of memory (zstd)");
            return -1;
        }
        ZSTD_CCtx_reset(b->zc, ZSTD_reset_session_and_parameters);
        ZSTD_CCtx_setParameter(b->zc, ZSTD_c_compressionLevel, ZSTD_PART_LEVEL);
        ZSTD_CCtx_setPledgedSrcSize(b->zc, part_bytes(&b->parts[b->pi]));
        b->zin_len = b->zin_pos = 0;
        b->zfinish = false;
        b->zdone = false;
        b->zopen = true;
    }
    ZSTD_outBuffer o = {buf, n, 0};
    while (o.pos == 0 && !b->zdone) {
        if (b->zin_pos == b->zin_len && !b->zfinish) {
            long got = content_read(b, b->in, sizeof b->in);
            if (got < 0) {
                return -1;
            }
            b->zin_len = (size_t)got;
            b->zin_pos = 0;
            b->zfinish = got == 0;
        }
        ZSTD_inBuffer i = {b->in, b->zin_len, b->zin_pos};
        size_t r = ZSTD_compressStream2(b->zc, &o, &i, b->zfinish ? ZSTD_e_end : ZSTD_e_continue);
        b->zin_pos = i.pos;
        if (ZSTD_isError(r)) {
            berr(b, "zstd failed: %s", ZSTD_getErrorName(r));
            return -1;
        }
        b->zdone = b->zfinish && r == 0;
    }
    if (o.pos == 0) {
        b->zopen = false;
    }
    return (long)o.pos;
}

/* Copies what is left of text from b->pos into buf (at most n); returns the count. */
static long copy_text(struct cli_body *b, const char *text, char *buf, size_t n)
{
    size_t len = strlen(text) - b->pos;
    size_t k = n < len ? n : len;
    memcpy(buf, text + b->pos, k);
    b->pos += k;
    return (long)k;
}

/* Produces up to n bytes of the body into buf: heads, contents, CRLFs, the closing boundary.
 * Returns the count (0 at the end), or -1 with msg. */
long cli_body_read(struct cli_body *b, char *buf, size_t n, char *msg, size_t msglen)
{
    b->msg = msg;
    b->msglen = msglen;
    while (b->ph != PH_DONE) {
        long got = 0;
        switch (b->ph) {
        case PH_HEAD:
            got = copy_text(b, b->parts[b->pi].head, buf, n);
            if (got == 0) {
                b->ph = PH_CONTENT;
                b->si = 0;
                b->spos = 0;
            }
            break;
        case PH_CONTENT:
            switch (b->parts[b->pi].codec) {
            case CLI_COMPRESS_GZIP:
                got = gz_read(b, (unsigned char *)buf, n);
                break;
            case CLI_COMPRESS_ZSTD:
                got = zstd_read(b, (unsigned char *)buf, n);
                break;
            default:
                got = content_read(b, (unsigned char *)buf, n);
            }
            if (got == 0) {
                b->ph = PH_CRLF;
                b->pos = 0;
            }
            break;
        case PH_CRLF:
            got = copy_text(b, "\r\n", buf, n);
            if (got == 0) {
                b->pos = 0;
                b->ph = ++b->pi < b->nparts ? PH_HEAD : PH_TAIL;
            }
            break;
        case PH_TAIL:
            got = copy_text(b, b->tail, buf, n);
            if (got == 0) {
                b->ph = PH_DONE;
            }
            break;
        case PH_DONE:
            break;
        }
        if (got != 0) {
            return got;
        }
    }
    return 0;
}
