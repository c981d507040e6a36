/* array.c - wire arrays (API.md "Arrays") into owned, C-order, host-order buffers.
 *
 * Formats npy, raw and list are decoded here, rle and coco_rle in rle.c; npy/raw bytes come
 * from base64 "data" or from a multipart "part". Sizes are checked against the limits before any
 * buffer of the array's size is allocated, and every byte count is exact. Choices a user can see:
 *  - a list without "dtype" is float64; bool accepts true/false and 0/1; integer dtypes accept
 *    integral reals (2.0) but not 2.5; float32 values that round to FLT_MAX are kept, larger ones
 *    are SL_ERANGE; float16 rounds to nearest even and |v| >= 65520 is SL_ERANGE;
 *  - a bad value in a nested list is named by its path and its flat index;
 *  - the bare-list shorthand names elements as name[i] (there is no "data" key to name);
 *  - "part" (npy, raw) takes the bytes of a multipart part as they are, not base64; outside a
 *    multipart body (parts NULL) it is SL_EUNSUPPORTED.
 */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array_internal.h"

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

void slp__format_shape(const int64_t *shape, int ndim, char *buf, size_t len)
{
    size_t at = 0;
    if (len == 0) {
        return;
    }
    buf[0] = '\0';
    for (int k = 0; k <= ndim && at < len; k++) {
        int w;
        if (k == ndim) {
            w = snprintf(buf + at, len - at, "]");
        } else {
            w = snprintf(buf + at, len - at, "%s%lld", k ? ", " : "[", (long long)shape[k]);
        }
        if (w < 0) {
            break;
        }
        at += (size_t)w;
    }
    if (ndim == 0 && len > 2) {
        snprintf(buf, len, "[]");
    }
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
    free(a->buf);
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

/* A JSON value as a user would recognize it in a message: 3, 1.5, true, a string, a list. */
static void describe(const json_t *v, char *buf, size_t len)
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

/* ---- the request being decoded ---- */

struct areq {
    struct slp__jdoc *doc; /* the strings the JSON text's skeleton left out, or NULL */
    const char *name;
    const struct slp_limits *lim;
    char *msg;
    size_t msglen;
    char dpath[96]; /* "name.data", or "name" for the bare-list shorthand */
    const json_t *format, *data, *part, *compression, *dtype, *shape;
    const struct slp_parts *parts; /* NULL: not a multipart body */
    const struct slp_part *pt;     /* the part named by "part": its bytes replace "data" */
    enum slp_compression comp;
    int has_dtype;
    enum sl_dtype dt;
    int has_shape;
    int ndim;
    int64_t shp[SL_MAX_DIMS];
};

static int parse_compression(struct areq *r)
{
    static const char *const names[] = {"none", "gzip", "zlib", "deflate", "auto"};
    static const enum slp_compression kinds[] = {SLP_COMP_NONE, SLP_COMP_GZIP, SLP_COMP_ZLIB,
                                                 SLP_COMP_DEFLATE, SLP_COMP_AUTO};
    r->comp = SLP_COMP_NONE;
    if (!r->compression) {
        return 0;
    }
    const char *s = json_string_value(r->compression);
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        if (strcmp(s, names[k]) == 0) {
            r->comp = kinds[k];
            return 0;
        }
    }
    slp__errf(r->msg, r->msglen,
              "%s.compression: unknown compression '%.40s' (expected none, gzip, zlib, deflate "
              "or auto)",
              r->name, s);
    return SL_EINVAL;
}

static int parse_dtype(struct areq *r)
{
    if (!r->dtype) {
        return 0;
    }
    const char *s = json_string_value(r->dtype);
    if (sl_dtype_from_name(s, &r->dt) == 0) {
        r->has_dtype = 1;
        return 0;
    }
    slp__errf(r->msg, r->msglen,
              "%s.dtype: unknown dtype '%.40s' (expected bool, uint8, int8, uint16, int16, "
              "uint32, int32, int64, float16, float32 or float64)",
              r->name, s);
    return SL_EINVAL;
}

static int parse_shape(struct areq *r)
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
            describe(v, d, sizeof d);
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

/* Checks shape against the limits (overflow-safe) and returns its element and byte counts. */
static int check_size(struct areq *r, const int64_t *shape, int ndim, enum sl_dtype dt,
                      int64_t *numel, size_t *nbytes)
{
    char s[160];
    int64_t n = 1;
    for (int k = 0; k < ndim; k++) {
        /* every dimension is >= 1, so a partial product over the limit stays over it */
        if (shape[k] > INT64_MAX / n || n * shape[k] > r->lim->max_elements) {
            slp__format_shape(shape, ndim, s, sizeof s);
            slp__errf(r->msg, r->msglen, "%s: shape %s has more elements than the limit of %lld",
                      r->name, s, (long long)r->lim->max_elements);
            return SL_ETOOLARGE;
        }
        n *= shape[k];
    }
    size_t isz = sl_dtype_size(dt);
    if ((uint64_t)n > SIZE_MAX / isz || (size_t)n * isz > r->lim->max_array_bytes) {
        slp__format_shape(shape, ndim, s, sizeof s);
        slp__errf(r->msg, r->msglen,
                  "%s: shape %s of %s is %llu bytes, over the limit of %zu bytes", r->name, s,
                  sl_dtype_name(dt), (unsigned long long)n * isz, r->lim->max_array_bytes);
        return SL_ETOOLARGE;
    }
    *numel = n;
    *nbytes = (size_t)n * isz;
    return 0;
}

/* Makes buf (owned) the array's storage with its elements from data (inside buf) on. */
static int fill_out_at(struct slp_array *out, void *buf, const void *data, enum sl_dtype dt,
                       int ndim, const int64_t *shape)
{
    out->buf = buf;
    out->t.data = data;
    out->t.dtype = dt;
    out->t.ndim = ndim;
    for (int k = 0; k < SL_MAX_DIMS; k++) {
        out->t.shape[k] = k < ndim ? shape[k] : 0;
    }
    return 0;
}

static int fill_out(struct slp_array *out, void *buf, enum sl_dtype dt, int ndim,
                    const int64_t *shape)
{
    return fill_out_at(out, buf, buf, dt, ndim, shape);
}

static void *alloc_array(struct areq *r, size_t nbytes)
{
    void *p = malloc(nbytes ? nbytes : 1);
    if (!p) {
        slp__errf(r->msg, r->msglen, "%s: out of memory for %zu bytes", r->name, nbytes);
    }
    return p;
}

/* Bytes a compressed payload may take: the array limit plus deflate/gzip overhead slack. */
static size_t compressed_cap(size_t lim)
{
    size_t extra = lim / 8 + 65536;
    return lim > SIZE_MAX - extra ? SIZE_MAX : lim + extra;
}

/* ---- list ---- */

struct lctx {
    struct areq *r;
    enum sl_dtype dt;
    void *buf; /* malloc'd, so aligned for every dtype */
    int nested;
    int ndim;
    int64_t shape[SL_MAX_DIMS];
    size_t idx[SL_MAX_DIMS];
    int64_t flat;
};

/* dpath followed by [i] for the first depth indices. */
static void elem_path(const struct lctx *c, int depth, char *buf, size_t len)
{
    int w = snprintf(buf, len, "%s", c->r->dpath);
    size_t at = w > 0 ? (size_t)w : 0;
    for (int k = 0; k < depth && at < len; k++) {
        w = snprintf(buf + at, len - at, "[%zu]", c->idx[k]);
        if (w < 0) {
            break;
        }
        at += (size_t)w;
    }
}

/* The element's path for a message: name.data[i] for flat data, name.data[i][j] (flat index
 * n) for nested data. */
static void value_path(const struct lctx *c, char *buf, size_t len)
{
    if (!c->nested) {
        snprintf(buf, len, "%s[%lld]", c->r->dpath, (long long)c->flat);
        return;
    }
    char p[200];
    elem_path(c, c->ndim, p, sizeof p);
    snprintf(buf, len, "%s (flat index %lld)", p, (long long)c->flat);
}

/* IEEE 754 binary16 bits of v, rounded to nearest even; -1 when |v| rounds to infinity. */
static int half_from_double(double v, uint16_t *out)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    uint16_t sign = (uint16_t)((b >> 48) & 0x8000);
    int e = (int)((b >> 52) & 0x7ff);
    uint64_t full = (b & 0xfffffffffffffull) | (1ull << 52);
    if (e == 0x7ff) {
        return -1;
    }
    if (e == 0) {
        *out = sign; /* zero, or a double subnormal far below half's range */
        return 0;
    }
    e -= 1023;
    int shift;
    if (e >= -14) {
        if (e > 15) {
            return -1;
        }
        shift = 52 - 10; /* keep 11 significant bits */
    } else {
        shift = 28 - e; /* subnormal half: units of 2^-24 */
        if (shift > 53) {
            *out = sign; /* below 2^-25: rounds to zero */
            return 0;
        }
    }
    uint64_t q = full >> shift;
    uint64_t rem = full & ((1ull << shift) - 1);
    uint64_t halfway = 1ull << (shift - 1);
    if (rem > halfway || (rem == halfway && (q & 1))) {
        q++;
    }
    uint32_t h;
    if (e >= -14) {
        /* q in [1024, 2048]: 2048 carries into the exponent, as it should */
        h = ((uint32_t)(e + 15) << 10) + (uint32_t)(q - 1024);
        if (h >= 0x7c00) {
            return -1;
        }
    } else {
        h = (uint32_t)q; /* 1024 is the smallest normal, 0x0400 */
    }
    *out = (uint16_t)(sign | h);
    return 0;
}

static int value_error(const struct lctx *c, int code, const char *fmt_tail, const json_t *v,
                       const char *extra)
{
    char p[240], d[40];
    value_path(c, p, sizeof p);
    describe(v, d, sizeof d);
    slp__errf(c->r->msg, c->r->msglen, "%s: %s %s%s", p, d, fmt_tail, extra);
    return code;
}

/* Valid values of the integer dtypes, and how a message says so. */
static const struct {
    long long lo, hi;
    const char *text;
} int_ranges[SL_DT_COUNT] = {
    [SL_DT_BOOL] = {0, 1, " (0 or 1, true or false)"},
    [SL_DT_U8] = {0, UINT8_MAX, " (0..255)"},
    [SL_DT_I8] = {INT8_MIN, INT8_MAX, " (-128..127)"},
    [SL_DT_U16] = {0, UINT16_MAX, " (0..65535)"},
    [SL_DT_I16] = {INT16_MIN, INT16_MAX, " (-32768..32767)"},
    [SL_DT_U32] = {0, UINT32_MAX, " (0..4294967295)"},
    [SL_DT_I32] = {INT32_MIN, INT32_MAX, " (-2147483648..2147483647)"},
    [SL_DT_I64] = {INT64_MIN, INT64_MAX, ""},
};

/* Converts one JSON value into element c->flat of c->buf. */
static int store(struct lctx *c, const json_t *v)
{
    long long iv = 0;
    double dv = 0;
    int is_int;
    if (json_is_integer(v)) {
        is_int = 1;
        iv = (long long)json_integer_value(v);
        dv = (double)iv;
    } else if (json_is_real(v)) {
        is_int = 0;
        dv = json_real_value(v);
    } else if (json_is_boolean(v) && c->dt == SL_DT_BOOL) {
        is_int = 1;
        iv = json_is_true(v);
        dv = (double)iv;
    } else {
        return value_error(c, SL_EINVAL, "is not a number", v, "");
    }
    int64_t i = c->flat;
    char what[64];
    snprintf(what, sizeof what, "is not a valid %s", sl_dtype_name(c->dt));
    switch (c->dt) {
    case SL_DT_F64:
        ((double *)c->buf)[i] = dv;
        return 0;
    case SL_DT_F32: {
        float f;
        if (fabs(dv) <= FLT_MAX) {
            f = (float)dv;
        } else if (fabs(dv) < 0x1.ffffffp127) {
            /* below the midpoint to 2^128: round-to-nearest gives FLT_MAX */
            f = dv < 0 ? -FLT_MAX : FLT_MAX;
        } else {
            return value_error(c, SL_ERANGE, what, v, " (out of range)");
        }
        ((float *)c->buf)[i] = f;
        return 0;
    }
    case SL_DT_F16: {
        uint16_t h;
        if (half_from_double(dv, &h) != 0) {
            return value_error(c, SL_ERANGE, what, v, " (out of range, |v| < 65520)");
        }
        ((uint16_t *)c->buf)[i] = h;
        return 0;
    }
    default:
        break;
    }
    long long lo = int_ranges[c->dt].lo, hi = int_ranges[c->dt].hi;
    const char *range = int_ranges[c->dt].text;
    if (!is_int) {
        /* an integral real in range: 2.0 is 2; the int64 bounds are exact powers of two */
        if (trunc(dv) != dv) {
            return value_error(c, SL_ERANGE, what, v, "");
        }
        if (!(dv >= -0x1p63 && dv < 0x1p63)) {
            return value_error(c, SL_ERANGE, what, v, range);
        }
        iv = (long long)dv;
    }
    if (iv < lo || iv > hi) {
        return value_error(c, SL_ERANGE, what, v, range);
    }
    switch (c->dt) {
    case SL_DT_BOOL:
    case SL_DT_U8:
        ((uint8_t *)c->buf)[i] = (uint8_t)iv;
        break;
    case SL_DT_I8:
        ((int8_t *)c->buf)[i] = (int8_t)iv;
        break;
    case SL_DT_U16:
        ((uint16_t *)c->buf)[i] = (uint16_t)iv;
        break;
    case SL_DT_I16:
        ((int16_t *)c->buf)[i] = (int16_t)iv;
        break;
    case SL_DT_U32:
        ((uint32_t *)c->buf)[i] = (uint32_t)iv;
        break;
    case SL_DT_I32:
        ((int32_t *)c->buf)[i] = (int32_t)iv;
        break;
    default:
        ((int64_t *)c->buf)[i] = (int64_t)iv;
        break;
    }
    return 0;
}

/* Walks a nested list whose shape was inferred from its first elements. */
static int walk(struct lctx *c, const json_t *a, int depth)
{
    size_t n = json_array_size(a);
    char p[240];
    if ((int64_t)n != c->shape[depth]) {
        elem_path(c, depth, p, sizeof p);
        slp__errf(c->r->msg, c->r->msglen, "%s: ragged list: length %zu, expected %lld", p, n,
                  (long long)c->shape[depth]);
        return SL_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(a, i);
        c->idx[depth] = i;
        int rc;
        if (depth + 1 < c->ndim) {
            if (!json_is_array(e)) {
                char d[40];
                elem_path(c, depth + 1, p, sizeof p);
                describe(e, d, sizeof d);
                slp__errf(c->r->msg, c->r->msglen, "%s: ragged list: expected a list, got %s", p,
                          d);
                return SL_EINVAL;
            }
            rc = walk(c, e, depth + 1);
        } else if (json_is_array(e)) {
            elem_path(c, depth + 1, p, sizeof p);
            slp__errf(c->r->msg, c->r->msglen, "%s: ragged list: expected a number, got a list", p);
            return SL_EINVAL;
        } else {
            rc = store(c, e);
            c->flat++;
        }
        if (rc) {
            return rc;
        }
    }
    return 0;
}

static int decode_list(struct areq *r, struct slp_array *out)
{
    struct lctx c;
    memset(&c, 0, sizeof c);
    c.r = r;
    c.dt = r->has_dtype ? r->dt : SL_DT_F64;
    if (r->comp != SLP_COMP_NONE) {
        slp__errf(r->msg, r->msglen, "%s.compression: only 'none' is allowed for format 'list'",
                  r->name);
        return SL_EINVAL;
    }
    if (!json_is_array(r->data)) {
        char d[40];
        describe(r->data, d, sizeof d);
        slp__errf(r->msg, r->msglen, "%s: expected a list of numbers, got %s", r->dpath, d);
        return SL_EINVAL;
    }
    size_t n = json_array_size(r->data);
    if (n == 0) {
        slp__errf(r->msg, r->msglen, "%s: empty list", r->dpath);
        return SL_EINVAL;
    }
    char s1[160], s2[160];
    if (json_is_array(json_array_get(r->data, 0))) {
        /* nested: the first element at each depth gives the shape; walk() checks the rest */
        c.nested = 1;
        const json_t *x = r->data;
        while (json_is_array(x)) {
            if (c.ndim == SL_MAX_DIMS) {
                elem_path(&c, c.ndim, s1, sizeof s1);
                slp__errf(r->msg, r->msglen, "%s: lists nested deeper than %d levels", s1,
                          SL_MAX_DIMS);
                return SL_EINVAL;
            }
            if (json_array_size(x) == 0) {
                elem_path(&c, c.ndim, s1, sizeof s1);
                slp__errf(r->msg, r->msglen, "%s: empty list", s1);
                return SL_EINVAL;
            }
            c.shape[c.ndim++] = (int64_t)json_array_size(x);
            x = json_array_get(x, 0);
        }
        if (r->has_shape &&
            (r->ndim != c.ndim || memcmp(r->shp, c.shape, sizeof(int64_t) * (size_t)c.ndim) != 0)) {
            slp__format_shape(r->shp, r->ndim, s1, sizeof s1);
            slp__format_shape(c.shape, c.ndim, s2, sizeof s2);
            slp__errf(r->msg, r->msglen, "%s.shape: %s does not match the nested data's shape %s",
                      r->name, s1, s2);
            return SL_EINVAL;
        }
    } else if (r->has_shape) {
        c.ndim = r->ndim;
        memcpy(c.shape, r->shp, sizeof r->shp);
    } else {
        c.ndim = 1;
        c.shape[0] = (int64_t)n;
    }
    int64_t numel;
    size_t nbytes;
    int rc = check_size(r, c.shape, c.ndim, c.dt, &numel, &nbytes);
    if (rc) {
        return rc;
    }
    if (!c.nested && (uint64_t)numel != n) {
        slp__format_shape(c.shape, c.ndim, s1, sizeof s1);
        slp__errf(r->msg, r->msglen, "%s: %zu values, but shape %s holds %lld", r->dpath, n, s1,
                  (long long)numel);
        return SL_EINVAL;
    }
    c.buf = alloc_array(r, nbytes);
    if (!c.buf) {
        return SL_ENOMEM;
    }
    if (c.nested) {
        rc = walk(&c, r->data, 0);
    } else {
        for (size_t i = 0; i < n && !rc; i++) {
            const json_t *e = json_array_get(r->data, i);
            if (json_is_array(e)) {
                slp__errf(r->msg, r->msglen, "%s[%zu]: expected a number, got a list", r->dpath, i);
                rc = SL_EINVAL;
                break;
            }
            rc = store(&c, e);
            c.flat++;
        }
    }
    if (rc) {
        free(c.buf);
        return rc;
    }
    return fill_out(out, c.buf, c.dt, c.ndim, c.shape);
}

/* ---- raw ---- */

static int need_string_data(struct areq *r)
{
    if (json_is_string(r->data)) {
        return 0;
    }
    char d[40];
    describe(r->data, d, sizeof d);
    slp__errf(r->msg, r->msglen, "%s: expected a base64 string, got %s", r->dpath, d);
    return SL_EINVAL;
}

/* The bytes of the string r->data (not NUL-terminated: they may be the original text of a long
 * JSON string the skeleton left out of jansson's tree). */
static int data_string(struct areq *r, const char **s, size_t *len)
{
    int rc = slp__jdoc_string(r->doc, r->data, s, len);
    if (rc) {
        slp__errf(r->msg, r->msglen, "%s: out of memory", r->dpath);
    }
    return rc;
}

/* Base64-decodes a compressed payload into a new buffer (capped). */
static int decode_compressed(struct areq *r, size_t cap, unsigned char **cbuf, size_t *clen)
{
    const char *s = NULL;
    size_t slen = 0;
    int rc = data_string(r, &s, &slen);
    return rc ? rc : slp_base64_decode(s, slen, cap, cbuf, clen, r->dpath, r->msg, r->msglen);
}

/* A hint for a part whose bytes start with the gzip magic while "compression" is none. */
static const char *gzip_hint(const struct areq *r)
{
    const struct slp_part *p = r->pt;
    if (p && r->comp == SLP_COMP_NONE && p->len >= 2 && p->data[0] == 0x1f && p->data[1] == 0x8b) {
        return "; it looks gzip-compressed: set \"compression\": \"gzip\"";
    }
    return "";
}

/* The raw bytes of part r->pt (inflated if compressed) into a new buffer of exactly nbytes. */
static int raw_from_part(struct areq *r, size_t nbytes, unsigned char **bufp)
{
    const struct slp_part *p = r->pt;
    if (r->comp == SLP_COMP_NONE && p->len != nbytes) {
        slp__errf(r->msg, r->msglen, "%s: expected %zu bytes, got %zu in part '%.64s'%s", r->name,
                  nbytes, p->len, p->name, gzip_hint(r));
        return SL_ESIZE;
    }
    unsigned char *buf = alloc_array(r, nbytes);
    if (!buf) {
        return SL_ENOMEM;
    }
    int rc = slp__inflate_exact(p->data, p->len, r->comp, buf, nbytes, r->name, r->dpath, r->msg,
                                r->msglen);
    if (rc) {
        free(buf);
        return rc;
    }
    *bufp = buf;
    return 0;
}

static int decode_raw(struct areq *r, struct slp_array *out)
{
    if (!r->has_dtype) {
        slp__errf(r->msg, r->msglen, "%s.dtype: required for format 'raw'", r->name);
        return SL_EINVAL;
    }
    if (!r->has_shape) {
        slp__errf(r->msg, r->msglen, "%s.shape: required for format 'raw'", r->name);
        return SL_EINVAL;
    }
    int rc = r->pt ? 0 : need_string_data(r);
    int64_t numel = 0;
    size_t nbytes = 0;
    if (!rc) {
        rc = check_size(r, r->shp, r->ndim, r->dt, &numel, &nbytes);
    }
    if (rc) {
        return rc;
    }
    const char *s = NULL;
    size_t slen = 0;
    unsigned char *buf = NULL;
    if (r->pt) {
        rc = raw_from_part(r, nbytes, &buf);
    } else if (r->comp == SLP_COMP_NONE) {
        size_t have = 0;
        rc = data_string(r, &s, &slen);
        if (!rc) {
            rc = slp__base64_measure(s, slen, &have, r->dpath, r->msg, r->msglen);
        }
        if (rc) {
            return rc;
        }
        if (have != nbytes) {
            slp__errf(r->msg, r->msglen, "%s: expected %zu bytes, got %zu", r->name, nbytes, have);
            return SL_ESIZE;
        }
        buf = alloc_array(r, nbytes);
        if (!buf) {
            return SL_ENOMEM;
        }
        rc = slp__base64_decode_range(s, slen, 0, nbytes, buf, r->dpath, r->msg, r->msglen);
    } else {
        unsigned char *cbuf = NULL;
        size_t clen = 0;
        rc = decode_compressed(r, compressed_cap(r->lim->max_array_bytes), &cbuf, &clen);
        if (rc) {
            return rc;
        }
        buf = alloc_array(r, nbytes);
        rc = buf ? slp__inflate_exact(cbuf, clen, r->comp, buf, nbytes, r->name, r->dpath, r->msg,
                                      r->msglen)
                 : SL_ENOMEM;
        free(cbuf);
    }
    if (rc) {
        free(buf);
        return rc;
    }
    if (slp__host_is_big()) {
        slp__byteswap(buf, (size_t)numel, sl_dtype_size(r->dt));
    }
    return fill_out(out, buf, r->dt, r->ndim, r->shp);
}

/* ---- npy ---- */

/* The spec's optional dtype and shape must agree with the header. */
static int npy_agree(struct areq *r, const struct slp__npy_info *info)
{
    if (r->has_dtype && r->dt != info->dtype) {
        slp__errf(r->msg, r->msglen, "%s.dtype: '%s' does not match the npy header's '%s' (%s)",
                  r->name, sl_dtype_name(r->dt), info->descr, sl_dtype_name(info->dtype));
        return SL_EINVAL;
    }
    if (r->has_shape && (r->ndim != info->ndim ||
                         memcmp(r->shp, info->shape, sizeof(int64_t) * (size_t)info->ndim) != 0)) {
        char s1[160], s2[160];
        slp__format_shape(r->shp, r->ndim, s1, sizeof s1);
        slp__format_shape(info->shape, info->ndim, s2, sizeof s2);
        slp__errf(r->msg, r->msglen, "%s.shape: %s does not match the npy header's shape %s",
                  r->name, s1, s2);
        return SL_EINVAL;
    }
    return 0;
}

/* After a .npy header of off bytes in a file of `have`: the header agrees with the spec's dtype
 * and shape, fits the limits, and exactly the data bytes follow (sets *nbytes, *numel). */
static int npy_check_body(struct areq *r, const struct slp__npy_info *info, size_t off, size_t have,
                          size_t *nbytes, int64_t *numel)
{
    int rc = npy_agree(r, info);
    if (!rc) {
        rc = check_size(r, info->shape, info->ndim, info->dtype, numel, nbytes);
    }
    if (rc) {
        return rc;
    }
    if (have - off != *nbytes) {
        slp__errf(r->msg, r->msglen, "%s: expected %zu data bytes after the npy header, got %zu",
                  r->name, *nbytes, have - off);
        return SL_ESIZE;
    }
    return 0;
}

/* Parses the complete header in hdr[0..len), naming the array's data in messages. */
static int npy_header_from(struct areq *r, const unsigned char *hdr, size_t len,
                           struct slp__npy_info *info)
{
    return slp__npy_parse(hdr, len, info, r->dpath, r->msg, r->msglen);
}

static int decode_npy_plain(struct areq *r, struct slp__npy_info *info, unsigned char **bufp,
                            size_t *nbytes, int64_t *numel)
{
    const char *s = NULL;
    size_t slen = 0;
    size_t have = 0;
    unsigned char pre[SLP_NPY_PREAMBLE];
    size_t off = 0;
    int rc = data_string(r, &s, &slen);
    if (!rc) {
        rc = slp__base64_measure(s, slen, &have, r->dpath, r->msg, r->msglen);
    }
    if (rc) {
        return rc;
    }
    size_t npre = have < sizeof pre ? have : sizeof pre;
    rc = slp__base64_decode_range(s, slen, 0, npre, pre, r->dpath, r->msg, r->msglen);
    if (!rc) {
        rc = slp_npy_preamble(pre, npre, &off, r->dpath, r->msg, r->msglen);
    }
    if (rc) {
        return rc;
    }
    if (off > have) {
        slp__errf(r->msg, r->msglen, "%s: npy header is truncated (%zu of %zu bytes)", r->dpath,
                  have, off);
        return SL_EMALFORMED;
    }
    if (off <= npre) {
        rc = npy_header_from(r, pre, off, info);
    } else {
        unsigned char *hdr = malloc(off);
        if (!hdr) {
            slp__errf(r->msg, r->msglen, "%s: out of memory", r->name);
            return SL_ENOMEM;
        }
        rc = slp__base64_decode_range(s, slen, 0, off, hdr, r->dpath, r->msg, r->msglen);
        if (!rc) {
            rc = npy_header_from(r, hdr, off, info);
        }
        free(hdr);
    }
    if (!rc) {
        rc = npy_check_body(r, info, off, have, nbytes, numel);
    }
    if (rc) {
        return rc;
    }
    unsigned char *buf = alloc_array(r, *nbytes);
    if (!buf) {
        return SL_ENOMEM;
    }
    rc = slp__base64_decode_range(s, slen, off, *nbytes, buf, r->dpath, r->msg, r->msglen);
    if (rc) {
        free(buf);
        return rc;
    }
    *bufp = buf;
    return 0;
}

/* The uncompressed .npy file in part r->pt: parse its header, copy exactly the data. */
static int decode_npy_part(struct areq *r, struct slp__npy_info *info, unsigned char **bufp,
                           size_t *nbytes, int64_t *numel)
{
    const unsigned char *p = r->pt->data;
    size_t have = r->pt->len;
    size_t off = 0;
    int rc = 0;
    if (have == 0) {
        slp__errf(r->msg, r->msglen, "%s: the part is empty (expected a .npy file)", r->dpath);
        return SL_EMALFORMED;
    }
    if (*gzip_hint(r)) {
        slp__errf(r->msg, r->msglen, "%s: not a .npy file (no \\x93NUMPY magic)%s", r->dpath,
                  gzip_hint(r));
        return SL_EMALFORMED;
    }
    rc = slp_npy_preamble(p, have, &off, r->dpath, r->msg, r->msglen);
    if (!rc && off > have) {
        slp__errf(r->msg, r->msglen, "%s: npy header is truncated (%zu of %zu bytes)", r->dpath,
                  have, off);
        rc = SL_EMALFORMED;
    }
    if (!rc) {
        rc = npy_header_from(r, p, off, info);
    }
    if (!rc) {
        rc = npy_check_body(r, info, off, have, nbytes, numel);
    }
    if (rc) {
        return rc;
    }
    unsigned char *buf = alloc_array(r, *nbytes);
    if (!buf) {
        return SL_ENOMEM;
    }
    memcpy(buf, p + off, *nbytes);
    *bufp = buf;
    return 0;
}

/* The compressed stream holds the whole .npy file: its header is inflated with zlib (it says how
 * many bytes follow), then the whole file goes into one buffer of exactly header + data bytes -
 * with libdeflate in one call when it can, else by going on with zlib, whose messages then say
 * what is wrong - so that the elements stay where they were inflated: *bufp holds the file, the
 * data starts at *data_off. */
static int inflate_npy(struct areq *r, struct slp__inflater *z, struct slp__npy_info *info,
                       unsigned char **bufp, size_t *data_off, size_t *nbytes, int64_t *numel)
{
    unsigned char pre[SLP_NPY_PREAMBLE];
    size_t got = 0, off = 0;
    int rc = slp__inflater_read(z, pre, sizeof pre, &got, r->msg, r->msglen);
    if (!rc) {
        rc = slp_npy_preamble(pre, got, &off, r->dpath, r->msg, r->msglen);
    }
    if (rc) {
        return rc;
    }
    if (off <= got) {
        /* too short to hold a valid dict; the parser says what is wrong */
        rc = npy_header_from(r, pre, off, info);
        if (!rc) {
            slp__errf(r->msg, r->msglen, "%s: npy header is too short", r->dpath);
            rc = SL_EMALFORMED;
        }
        return rc;
    }
    unsigned char *hdr = malloc(off);
    if (!hdr) {
        slp__errf(r->msg, r->msglen, "%s: out of memory", r->name);
        return SL_ENOMEM;
    }
    memcpy(hdr, pre, got);
    size_t got2 = 0;
    rc = slp__inflater_read(z, hdr + got, off - got, &got2, r->msg, r->msglen);
    if (!rc && got + got2 < off) {
        slp__errf(r->msg, r->msglen, "%s: npy header is truncated (%zu of %zu bytes)", r->dpath,
                  got + got2, off);
        rc = SL_EMALFORMED;
    }
    if (!rc) {
        rc = npy_header_from(r, hdr, off, info);
    }
    free(hdr);
    if (!rc) {
        rc = npy_agree(r, info);
    }
    if (!rc) {
        rc = check_size(r, info->shape, info->ndim, info->dtype, numel, nbytes);
    }
    if (rc) {
        return rc;
    }
    if (*nbytes > SIZE_MAX - off) {
        slp__errf(r->msg, r->msglen, "%s: out of memory for %zu bytes", r->name, *nbytes);
        return SL_ENOMEM;
    }
    unsigned char *buf = alloc_array(r, off + *nbytes);
    if (!buf) {
        return SL_ENOMEM;
    }
    *data_off = off;
    if (slp__inflate_whole(z->in, z->len, z->kind, buf, off + *nbytes) == 1) {
        *bufp = buf;
        return 0;
    }
    /* zlib from the end of the header on decides: exactly the data, then the stream's end */
    int more = 0;
    rc = slp__inflater_read(z, buf + off, *nbytes, &got, r->msg, r->msglen);
    if (!rc && got < *nbytes) {
        slp__errf(r->msg, r->msglen,
                  "%s: expected %zu data bytes after the npy header, got %zu after inflating",
                  r->name, *nbytes, got);
        rc = SL_ESIZE;
    }
    if (!rc) {
        rc = slp__inflater_at_end(z, &more, r->msg, r->msglen);
    }
    if (!rc && more) {
        slp__errf(r->msg, r->msglen,
                  "%s: expected %zu data bytes after the npy header, got at least %zu after "
                  "inflating (stopped there)",
                  r->name, *nbytes, *nbytes + 1);
        rc = SL_ESIZE;
    }
    if (rc) {
        free(buf);
        return rc;
    }
    *bufp = buf;
    return 0;
}

static int decode_npy(struct areq *r, struct slp_array *out)
{
    int rc = r->pt ? 0 : need_string_data(r);
    if (rc) {
        return rc;
    }
    struct slp__npy_info info;
    unsigned char *buf = NULL;
    size_t off = 0; /* the data's offset in buf */
    size_t nbytes = 0;
    int64_t numel = 0;
    memset(&info, 0, sizeof info);
    if (r->comp == SLP_COMP_NONE) {
        rc = r->pt ? decode_npy_part(r, &info, &buf, &nbytes, &numel)
                   : decode_npy_plain(r, &info, &buf, &nbytes, &numel);
    } else {
        unsigned char *cbuf = NULL;
        const unsigned char *cin = NULL;
        size_t clen = 0;
        size_t lim = r->lim->max_array_bytes;
        size_t cap = compressed_cap(
            lim > SIZE_MAX - 2 * SLP__NPY_MAX_HEADER ? SIZE_MAX : lim + 2 * SLP__NPY_MAX_HEADER);
        if (r->pt) {
            /* a part's bytes are the compressed stream as they are (no base64) */
            cin = r->pt->data;
            clen = r->pt->len;
        } else {
            rc = decode_compressed(r, cap, &cbuf, &clen);
            cin = cbuf;
        }
        if (!rc) {
            struct slp__inflater z;
            rc = slp__inflater_init(&z, cin, clen, r->comp, r->name, r->dpath, r->msg, r->msglen);
            if (!rc) {
                rc = inflate_npy(r, &z, &info, &buf, &off, &nbytes, &numel);
            }
            slp__inflater_end(&z);
            free(cbuf);
        }
    }
    if (rc) {
        return rc;
    }
    unsigned char *data = buf + off;
    size_t isz = sl_dtype_size(info.dtype);
    if (info.wire_big != slp__host_is_big() && isz > 1) {
        slp__byteswap(data, (size_t)numel, isz);
    }
    int spread = 0; /* dimensions longer than 1: with fewer than two, both orders agree */
    for (int k = 0; k < info.ndim; k++) {
        spread += info.shape[k] > 1;
    }
    if (info.fortran && spread > 1) {
        unsigned char *c = alloc_array(r, nbytes);
        if (!c) {
            free(buf);
            return SL_ENOMEM;
        }
        slp__fortran_to_c(data, c, isz, info.ndim, info.shape);
        free(buf);
        buf = c;
        data = c;
    } else if ((uintptr_t)data % isz != 0) {
        /* a header whose length is no multiple of the item size: align the elements (malloc's
         * alignment suits every dtype) */
        memmove(buf, data, nbytes);
        data = buf;
    }
    return fill_out_at(out, buf, data, info.dtype, info.ndim, info.shape);
}

/* ---- the array object ---- */

static int type_error(struct areq *r, const char *key, const char *want, const json_t *v)
{
    char d[40];
    describe(v, d, sizeof d);
    slp__errf(r->msg, r->msglen, "%s.%s: expected %s, got %s", r->name, key, want, d);
    return SL_EINVAL;
}

/* Sorts the object's keys into r, checking names and JSON types. */
static int read_keys(struct areq *r, const json_t *j)
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

/* Resolves "part" (npy and raw only) to r->pt, which then stands for "data". Refused: with
 * "data", for format f = list, outside a multipart body (SL_EUNSUPPORTED), or naming no part. */
static int find_part(struct areq *r, const char *f)
{
    const char *want = json_string_value(r->part);
    if (strcmp(f, "list") == 0) {
        slp__errf(r->msg, r->msglen,
                  "%s.part: format 'list' takes its values in \"data\", not a part (parts are for "
                  "npy and raw)",
                  r->name);
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

static int decode_object(struct areq *r, const json_t *j, struct slp_array *out)
{
    int rc = read_keys(r, j);
    if (rc) {
        return rc;
    }
    if (!r->format) {
        slp__errf(r->msg, r->msglen, "%s.format: required (npy, raw, list, rle or coco_rle)",
                  r->name);
        return SL_EINVAL;
    }
    const char *f = json_string_value(r->format);
    int is_npy = strcmp(f, "npy") == 0, is_raw = strcmp(f, "raw") == 0,
        is_list = strcmp(f, "list") == 0;
    if (strcmp(f, "rle") == 0 || strcmp(f, "coco_rle") == 0) {
        /* the mask formats (rle.c) check their own data, part, compression and dtype */
        rc = parse_shape(r);
        if (rc) {
            return rc;
        }
        struct slp__mask_req m = {.doc = r->doc,
                                  .name = r->name,
                                  .dpath = r->dpath,
                                  .lim = r->lim,
                                  .data = r->data,
                                  .part = r->part,
                                  .compression = r->compression,
                                  .dtype = r->dtype,
                                  .has_shape = r->has_shape,
                                  .ndim = r->ndim};
        memcpy(m.shape, r->shp, sizeof m.shape);
        return f[0] == 'r' ? slp__decode_rle(&m, out, r->msg, r->msglen)
                           : slp__decode_coco_rle(&m, out, r->msg, r->msglen);
    }
    if (!is_npy && !is_raw && !is_list) {
        slp__errf(r->msg, r->msglen,
                  "%s.format: unknown format '%.40s' (expected npy, raw, list, rle or coco_rle)",
                  r->name, f);
        return SL_EINVAL;
    }
    if (r->part) {
        rc = find_part(r, f);
        if (rc) {
            return rc;
        }
    } else if (!r->data) {
        slp__errf(r->msg, r->msglen, "%s.data: required", r->name);
        return SL_EINVAL;
    }
    rc = parse_compression(r);
    if (!rc) {
        rc = parse_dtype(r);
    }
    if (!rc) {
        rc = parse_shape(r);
    }
    if (rc) {
        return rc;
    }
    if (is_list) {
        return decode_list(r, out);
    }
    return is_raw ? decode_raw(r, out) : decode_npy(r, out);
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
    struct areq r;
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
    int rc;
    if (json_is_array(j)) {
        /* shorthand for {"format": "list", "data": j}: elements are named name[i] */
        snprintf(r.dpath, sizeof r.dpath, "%s", name);
        r.data = j;
        rc = decode_list(&r, out);
    } else if (json_is_object(j)) {
        snprintf(r.dpath, sizeof r.dpath, "%s.data", name);
        rc = decode_object(&r, j, out);
    } else {
        char d[40];
        if (j) {
            describe(j, d, sizeof d);
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
