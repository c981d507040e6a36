/* array.c - wire arrays (README "Shapes and layouts", openapi ArrayObject) into owned, C-order,
 * host-order buffers: the table of wire formats, the dispatcher and the validation every format
 * shares.
 *
 * One row per format (after curl's content_encoding.c): its name, its decoder (one fmt_*.c file
 * per format) and what it accepts. The dispatcher reads and type-checks the object's keys, finds
 * the row, then in this order: resolves or refuses "part", requires "data", parses "compression"
 * and "dtype" (SLP__FMT_TYPED rows) and "shape", and calls the decoder. Messages that list formats
 * are written from the table. Sizes are checked against the limits before any buffer of the
 * array's size is allocated, and every byte count is exact. Choices a user can see:
 *  - "part" (npy, raw) takes the bytes of a multipart part as they are, not base64; outside a
 *    multipart body (parts NULL) it is SL_EUNSUPPORTED;
 *  - a JSON list where an array object is expected is the shorthand for format list.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array_internal.h"
#include "bufpool.h"

/* ---- small shared helpers ---- */

void slp__errf(char *msg, size_t msglen, const char *fmt, ...)
{
    if (!msg || msglen == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
}

void slp_limits_default(struct slp_limits *lim)
{
    lim->max_elements = (int64_t)64 * 1024 * 1024;
    lim->max_array_bytes = (size_t)512 * 1024 * 1024;
    lim->max_images = 4096;
    lim->max_classes = SL_MAX_CLASSES;
    lim->max_depth = 32;
    lim->max_json_values = (int64_t)4 * 1024 * 1024;
    lim->max_specs = SLP_MAX_SPECS;
    lim->bufs = NULL;
}

const struct slp_limits *slp__limits_or_default(const struct slp_limits *lim,
                                                struct slp_limits *def)
{
    if (lim) {
        return lim;
    }
    slp_limits_default(def);
    return def;
}

void slp_array_free(struct slp_array *a)
{
    if (!a) {
        return;
    }
    slp_bufpool_put(a->pool, a->buf);
    memset(a, 0, sizeof *a);
}

/* Shortest "%g" text that reads back as v. */
static void fmt_double(double v, char *buf, size_t len)
{
    snprintf(buf, len, "%.15g", v);
    if (strtod(buf, NULL) != v) {
        snprintf(buf, len, "%.17g", v);
    }
}

void slp__describe(const json_t *v, char *buf, size_t len)
{
    switch (json_typeof(v)) {
    case JSON_INTEGER:
        snprintf(buf, len, "%lld", (long long)json_integer_value(v));
        break;
    case JSON_REAL:
        fmt_double(json_real_value(v), buf, len);
        if (!strpbrk(buf, ".eEni")) {
            /* as written in JSON: 2.0 is not the integer 2 */
            size_t n = strlen(buf);
            if (n + 2 < len) {
                memcpy(buf + n, ".0", 3);
            }
        }
        break;
    case JSON_TRUE:
        snprintf(buf, len, "true");
        break;
    case JSON_FALSE:
        snprintf(buf, len, "false");
        break;
    case JSON_NULL:
        snprintf(buf, len, "null");
        break;
    case JSON_STRING:
        snprintf(buf, len, "a string");
        break;
    case JSON_ARRAY:
        snprintf(buf, len, "a list");
        break;
    default:
        snprintf(buf, len, "an object");
        break;
    }
}

/* ---- the format table ---- */

static const struct slp__format formats[] = {
    {"npy", slp__fmt_npy, SLP__FMT_PART | SLP__FMT_COMPRESSION | SLP__FMT_TYPED, "bytes"},
    {"raw", slp__fmt_raw, SLP__FMT_PART | SLP__FMT_COMPRESSION | SLP__FMT_TYPED, "bytes"},
    {"list", slp__fmt_list, SLP__FMT_TYPED, "values"},
    {"rle", slp__fmt_rle, 0, "text"},
    {"coco_rle", slp__fmt_coco_rle, 0, "text"},
};

#define NFORMATS ((int)(sizeof formats / sizeof formats[0]))

const struct slp__format *slp__format_table(int *n)
{
    *n = NFORMATS;
    return formats;
}

/* Writes names[0..n) into buf as prose, the last two joined by last_sep ("a, b or c"). */
static void join_names(const char *const *names, int n, const char *last_sep, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && at < len; i++) {
        const char *sep = i == 0 ? "" : i == n - 1 ? last_sep : ", ";
        int w = snprintf(buf + at, len - at, "%s%s", sep, names[i]);
        if (w < 0) {
            break;
        }
        at += (size_t)w;
    }
}

void slp__dtype_names(const char *last_sep, char *buf, size_t len)
{
    const char *names[SL_DT_COUNT];
    for (int k = 0; k < SL_DT_COUNT; k++) {
        names[k] = sl_dtype_name((enum sl_dtype)k);
    }
    join_names(names, SL_DT_COUNT, last_sep, buf, len);
}

void slp__format_names(unsigned need, const char *last_sep, char *buf, size_t len)
{
    const char *names[NFORMATS];
    int n = 0;
    for (int i = 0; i < NFORMATS; i++) {
        if ((formats[i].accepts & need) == need) {
            names[n++] = formats[i].name;
        }
    }
    join_names(names, n, last_sep, buf, len);
}

/* ---- keys every format shares ---- */

static int parse_compression(struct slp__areq *r)
{
    r->comp = SLP_COMP_NONE;
    if (!r->compression) {
        return 0;
    }
    const char *s = json_string_value(r->compression);
    if (slp__compression_from_name(s, &r->comp) == 0) {
        return 0;
    }
    char all[80];
    slp__compression_names(all, sizeof all);
    slp__errf(r->msg, r->msglen, "%s.compression: unknown compression '%.40s' (expected %s)",
              r->name, s, all);
    return SL_EINVAL;
}

static int parse_dtype(struct slp__areq *r)
{
    if (!r->dtype) {
        return 0;
    }
    const char *s = json_string_value(r->dtype);
    if (sl_dtype_from_name(s, &r->dt) == 0) {
        r->has_dtype = 1;
        return 0;
    }
    char all[160];
    slp__dtype_names(" or ", all, sizeof all);
    slp__errf(r->msg, r->msglen, "%s.dtype: unknown dtype '%.40s' (expected %s)", r->name, s, all);
    return SL_EINVAL;
}

static int parse_shape(struct slp__areq *r)
{
    if (!r->shape) {
        return 0;
    }
    size_t n = json_array_size(r->shape);
    if (n < 1 || n > SL_MAX_DIMS) {
        slp__errf(r->msg, r->msglen, "%s.shape: expected 1 to %d dimensions, got %zu", r->name,
                  SL_MAX_DIMS, n);
        return SL_EINVAL;
    }
    for (size_t k = 0; k < n; k++) {
        const json_t *v = json_array_get(r->shape, k);
        if (!json_is_integer(v) || json_integer_value(v) <= 0) {
            char d[40];
            slp__describe(v, d, sizeof d);
            slp__errf(r->msg, r->msglen, "%s.shape[%zu]: expected a positive integer, got %s",
                      r->name, k, d);
            return SL_EINVAL;
        }
        r->shp[k] = (int64_t)json_integer_value(v);
    }
    r->ndim = (int)n;
    r->has_shape = 1;
    return 0;
}

int slp__check_size(struct slp__areq *r, const int64_t *shape, int ndim, enum sl_dtype dt,
                    int64_t *numel, size_t *nbytes)
{
    char s[160];
    int64_t n = 1;
    for (int k = 0; k < ndim; k++) {
        /* every dimension is >= 1, so a partial product over the limit stays over it */
        if (shape[k] > INT64_MAX / n || n * shape[k] > r->lim->max_elements) {
            sl_format_shape(shape, ndim, s, sizeof s);
            slp__errf(r->msg, r->msglen, "%s: shape %s has more elements than the limit of %lld",
                      r->name, s, (long long)r->lim->max_elements);
            return SL_ETOOLARGE;
        }
        n *= shape[k];
    }
    size_t isz = sl_dtype_size(dt);
    if ((uint64_t)n > SIZE_MAX / isz || (size_t)n * isz > r->lim->max_array_bytes) {
        sl_format_shape(shape, ndim, s, sizeof s);
        slp__errf(r->msg, r->msglen,
                  "%s: shape %s of %s is %llu bytes, over the limit of %zu bytes", r->name, s,
                  sl_dtype_name(dt), (unsigned long long)n * isz, r->lim->max_array_bytes);
        return SL_ETOOLARGE;
    }
    *numel = n;
    *nbytes = (size_t)n * isz;
    return 0;
}

void slp__array_set(struct slp_array *out, void *buf, const void *data, enum sl_dtype dt, int ndim,
                    const int64_t *shape)
{
    out->buf = buf;
    out->t.data = data;
    out->t.dtype = dt;
    out->t.ndim = ndim;
    for (int k = 0; k < SL_MAX_DIMS; k++) {
        out->t.shape[k] = k < ndim ? shape[k] : 0;
    }
}

void *slp__alloc_array(struct slp__areq *r, size_t nbytes)
{
    void *p = slp_bufpool_get(r->lim->bufs, nbytes ? nbytes : 1);
    if (!p) {
        slp__errf(r->msg, r->msglen, "%s: out of memory for %zu bytes", r->name, nbytes);
    }
    return p;
}

void slp__free_array(struct slp__areq *r, void *buf)
{
    slp_bufpool_put(r->lim->bufs, buf);
}

size_t slp__compressed_cap(size_t lim)
{
    size_t extra = lim / 8 + 65536;
    return lim > SIZE_MAX - extra ? SIZE_MAX : lim + extra;
}

int slp__need_string_data(struct slp__areq *r)
{
    if (json_is_string(r->data)) {
        return 0;
    }
    char d[40];
    slp__describe(r->data, d, sizeof d);
    slp__errf(r->msg, r->msglen, "%s: expected a base64 string, got %s", r->dpath, d);
    return SL_EINVAL;
}

int slp__data_string(struct slp__areq *r, const char **s, size_t *len)
{
    int rc = slp__jdoc_string(r->doc, r->data, s, len);
    if (rc) {
        slp__errf(r->msg, r->msglen, "%s: out of memory", r->dpath);
    }
    return rc;
}

int slp__decode_compressed(struct slp__areq *r, size_t cap, unsigned char **cbuf, size_t *clen)
{
    const char *s = NULL;
    size_t slen = 0, n = 0;
    *cbuf = NULL;
    *clen = 0;
    int rc = slp__data_string(r, &s, &slen);
    if (!rc) {
        rc = slp__base64_measure(s, slen, &n, r->dpath, r->msg, r->msglen);
    }
    if (rc) {
        return rc;
    }
    if (n > cap) {
        slp__errf(r->msg, r->msglen, "%s: %zu decoded bytes are over the limit of %zu bytes",
                  r->dpath, n, cap);
        return SL_ETOOLARGE;
    }
    /* slp_base64_decode's work, into a buffer of the pool (freed with slp__free_array) */
    unsigned char *buf = slp_bufpool_get(r->lim->bufs, n ? n : 1);
    if (!buf) {
        slp__errf(r->msg, r->msglen, "%s: out of memory for %zu bytes", r->dpath, n);
        return SL_ENOMEM;
    }
    rc = slp__base64_decode_range(s, slen, 0, n, buf, r->dpath, r->msg, r->msglen);
    if (rc) {
        slp_bufpool_put(r->lim->bufs, buf);
        return rc;
    }
    *cbuf = buf;
    *clen = n;
    return 0;
}

const char *slp__gzip_hint(const struct slp__areq *r)
{
    const struct slp_part *p = r->pt;
    if (p && r->comp == SLP_COMP_NONE && p->len >= 2 && p->data[0] == 0x1f && p->data[1] == 0x8b) {
        return "; it looks gzip-compressed: set \"compression\": \"gzip\"";
    }
    if (p && r->comp == SLP_COMP_NONE && p->len >= 4 &&
        memcmp(p->data, "\x28\xb5\x2f\xfd", 4) == 0) {
        return "; it looks zstd-compressed: set \"compression\": \"zstd\"";
    }
    return "";
}

/* ---- the array object ---- */

static int type_error(struct slp__areq *r, const char *key, const char *want, const json_t *v)
{
    char d[40];
    slp__describe(v, d, sizeof d);
    slp__errf(r->msg, r->msglen, "%s.%s: expected %s, got %s", r->name, key, want, d);
    return SL_EINVAL;
}

/* Sorts the object's keys into r, checking names and JSON types. */
static int read_keys(struct slp__areq *r, const json_t *j)
{
    void *it = json_object_iter((json_t *)j);
    for (; it; it = json_object_iter_next((json_t *)j, it)) {
        const char *key = json_object_iter_key(it);
        const json_t *v = json_object_iter_value(it);
        if (strcmp(key, "format") == 0) {
            if (!json_is_string(v)) {
                return type_error(r, key, "a string", v);
            }
            r->format = v;
        } else if (strcmp(key, "data") == 0) {
            r->data = v; /* its type depends on the format */
        } else if (strcmp(key, "part") == 0) {
            if (!json_is_string(v)) {
                return type_error(r, key, "a string", v);
            }
            r->part = v;
        } else if (strcmp(key, "compression") == 0) {
            if (!json_is_string(v)) {
                return type_error(r, key, "a string", v);
            }
            r->compression = v;
        } else if (strcmp(key, "dtype") == 0) {
            if (!json_is_string(v)) {
                return type_error(r, key, "a string", v);
            }
            r->dtype = v;
        } else if (strcmp(key, "shape") == 0) {
            if (!json_is_array(v)) {
                return type_error(r, key, "a list of positive integers", v);
            }
            r->shape = v;
        } else {
            slp__errf(r->msg, r->msglen, "%s.%.64s: unknown key", r->name, key);
            return SL_EINVAL;
        }
    }
    return 0;
}

/* Resolves "part" to r->pt, which then stands for "data", for a format fmt that takes parts.
 * Refused: for a format that takes no part, outside a multipart body (SL_EUNSUPPORTED), with
 * "data", or naming no part. */
static int find_part(struct slp__areq *r, const struct slp__format *fmt)
{
    const char *want = json_string_value(r->part);
    if (!(fmt->accepts & SLP__FMT_PART)) {
        char takers[80];
        slp__format_names(SLP__FMT_PART, " and ", takers, sizeof takers);
        slp__errf(r->msg, r->msglen,
                  "%s.part: format '%s' takes its %s in \"data\", not a part (parts are for %s)",
                  r->name, fmt->name, fmt->data_is, takers);
        return SL_EINVAL;
    }
    if (!r->parts) {
        slp__errf(r->msg, r->msglen,
                  "%s.part: multipart parts are not supported here: \"part\" is only in a "
                  "multipart/form-data body (send the bytes base64-encoded in \"data\")",
                  r->name);
        return SL_EUNSUPPORTED;
    }
    if (r->data) {
        slp__errf(r->msg, r->msglen, "%s: give either \"data\" or \"part\", not both", r->name);
        return SL_EINVAL;
    }
    for (int i = 0; i < r->parts->n; i++) {
        const struct slp_part *p = &r->parts->items[i];
        if (p->name && strcmp(p->name, want) == 0) {
            r->pt = p;
            snprintf(r->dpath, sizeof r->dpath, "%s (part '%.64s')", r->name, want);
            return 0;
        }
    }
    /* a typo is the likely cause: list what was sent */
    char sent[200] = "";
    size_t at = 0;
    for (int i = 0; i < r->parts->n && at < sizeof sent; i++) {
        const char *n = r->parts->items[i].name;
        int w = snprintf(sent + at, sizeof sent - at, "%s'%.64s'", i ? ", " : "", n ? n : "");
        if (w < 0) {
            break;
        }
        at += (size_t)w;
    }
    slp__errf(r->msg, r->msglen, "%s.part: no multipart part named '%.64s' (the parts sent: %s)",
              r->name, want, r->parts->n ? sent : "none");
    return SL_EINVAL;
}

/* The row of format r->format, or NULL with SL_EINVAL's message (absent, or no such format). */
static const struct slp__format *find_format(struct slp__areq *r)
{
    char all[80];
    if (!r->format) {
        slp__format_names(0, " or ", all, sizeof all);
        slp__errf(r->msg, r->msglen, "%s.format: required (%s)", r->name, all);
        return NULL;
    }
    const char *f = json_string_value(r->format);
    for (int i = 0; i < NFORMATS; i++) {
        if (strcmp(f, formats[i].name) == 0) {
            return &formats[i];
        }
    }
    slp__format_names(0, " or ", all, sizeof all);
    slp__errf(r->msg, r->msglen, "%s.format: unknown format '%.40s' (expected %s)", r->name, f,
              all);
    return NULL;
}

/* The keys every format shares, checked as fmt's row says, in the order the file's header
 * gives; then fmt's decoder. */
static int decode_object(struct slp__areq *r, const json_t *j, struct slp_array *out)
{
    int rc = read_keys(r, j);
    if (rc) {
        return rc;
    }
    const struct slp__format *fmt = find_format(r);
    if (!fmt) {
        return SL_EINVAL;
    }
    if (r->part) {
        rc = find_part(r, fmt);
        if (rc) {
            return rc;
        }
    } else if (!r->data) {
        slp__errf(r->msg, r->msglen, "%s.data: required", r->name);
        return SL_EINVAL;
    }
    if (fmt->accepts & SLP__FMT_TYPED) {
        rc = parse_compression(r);
        if (!rc) {
            rc = parse_dtype(r);
        }
    }
    if (!rc) {
        rc = parse_shape(r);
    }
    if (!rc && r->comp != SLP_COMP_NONE && !(fmt->accepts & SLP__FMT_COMPRESSION)) {
        char takers[80];
        slp__format_names(SLP__FMT_COMPRESSION, " and ", takers, sizeof takers);
        slp__errf(r->msg, r->msglen,
                  "%s.compression: only 'none' is allowed for format '%s' (compression is for "
                  "%s)",
                  r->name, fmt->name, takers);
        rc = SL_EINVAL;
    }
    return rc ? rc : fmt->decode(r, out);
}

int slp_array_from_json(const json_t *j, const char *name, const struct slp_limits *lim,
                        struct slp_array *out, char *msg, size_t msglen)
{
    return slp_array_from_json_parts(j, name, lim, NULL, out, msg, msglen);
}

int slp_array_from_json_parts(const json_t *j, const char *name, const struct slp_limits *lim,
                              const struct slp_parts *parts, struct slp_array *out, char *msg,
                              size_t msglen)
{
    return slp__array_from_json_doc(j, name, lim, parts, NULL, out, msg, msglen);
}

int slp__array_from_json_doc(const json_t *j, const char *name, const struct slp_limits *lim,
                             const struct slp_parts *parts, struct slp__jdoc *doc,
                             struct slp_array *out, char *msg, size_t msglen)
{
    struct slp_limits deflim;
    struct slp__areq r;
    if (msg && msglen) {
        msg[0] = '\0';
    }
    memset(out, 0, sizeof *out);
    if (!name) {
        name = "array";
    }
    memset(&r, 0, sizeof r);
    r.name = name;
    r.lim = slp__limits_or_default(lim, &deflim);
    r.msg = msg;
    r.msglen = msglen;
    r.parts = parts;
    r.doc = doc;
    out->pool = r.lim->bufs; /* whatever buffer the decoder leaves goes back there */
    int rc;
    if (json_is_array(j)) {
        /* shorthand for {"format": "list", "data": j}: elements are named name[i] */
        snprintf(r.dpath, sizeof r.dpath, "%s", name);
        r.data = j;
        rc = slp__fmt_list(&r, out);
    } else if (json_is_object(j)) {
        snprintf(r.dpath, sizeof r.dpath, "%s.data", name);
        rc = decode_object(&r, j, out);
    } else {
        char d[40];
        if (j) {
            slp__describe(j, d, sizeof d);
        } else {
            snprintf(d, sizeof d, "nothing");
        }
        slp__errf(msg, msglen, "%s: expected an array object or a list of numbers, got %s", name,
                  d);
        rc = SL_EINVAL;
    }
    if (rc) {
        slp_array_free(out);
    }
    return rc;
}
