/* fmt_list.c - wire format "list" (README "Shapes and layouts", openapi ArrayObject): JSON numbers,
 * flat with "shape" or nested, converted to dtype (float64 when absent). Choices a user can see:
 *  - bool accepts true/false and 0/1; integer dtypes accept integral reals (2.0) but not 2.5;
 *    float32 values that round to FLT_MAX are kept, larger ones are SL_ERANGE; float16 and
 *    bfloat16 round to nearest even from the double, and |v| >= 65520 (float16) or
 *    (2 - 2^-8) 2^127 (bfloat16) is SL_ERANGE;
 *  - a bad value in a nested list is named by its path and its flat index;
 *  - the bare-list shorthand names elements as name[i] (there is no "data" key to name).
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array_internal.h"

struct lctx {
    struct slp__areq *r;
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

/* Bits of v in a binary format with mbits stored significand bits and exponent bias `bias`
 * (binary16: 10, 15; bfloat16: 7, 127), rounded to nearest even straight from the double (no
 * double rounding through float); -1 when |v| rounds to infinity. */
static int narrow_from_double(double v, int mbits, int bias, uint16_t *out)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    uint16_t sign = (uint16_t)((b >> 48) & 0x8000);
    int e = (int)((b >> 52) & 0x7ff);
    uint64_t full = (b & 0xfffffffffffffull) | (1ull << 52);
    const int emin = 1 - bias;
    const uint32_t inf = (uint32_t)(2 * bias + 1) << mbits;
    if (e == 0x7ff) {
        return -1;
    }
    if (e == 0) {
        *out = sign; /* zero, or a double subnormal far below the format's range */
        return 0;
    }
    e -= 1023;
    int shift;
    if (e >= emin) {
        if (e > bias) {
            return -1;
        }
        shift = 52 - mbits; /* keep mbits + 1 significant bits */
    } else {
        shift = 52 + emin - mbits - e; /* subnormal: units of 2^(emin - mbits) */
        if (shift > 53) {
            *out = sign; /* below half the smallest subnormal: rounds to zero */
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
    if (e >= emin) {
        /* q in [2^mbits, 2^(mbits+1)]: the top carries into the exponent, as it should */
        h = ((uint32_t)(e + bias) << mbits) + (uint32_t)(q - (1ull << mbits));
        if (h >= inf) {
            return -1;
        }
    } else {
        h = (uint32_t)q; /* 2^mbits is the smallest normal */
    }
    *out = (uint16_t)(sign | h);
    return 0;
}

static int value_error(const struct lctx *c, int code, const char *fmt_tail, const json_t *v,
                       const char *extra)
{
    char p[240], d[40];
    value_path(c, p, sizeof p);
    slp__describe(v, d, sizeof d);
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
        if (narrow_from_double(dv, 10, 15, &h) != 0) {
            return value_error(c, SL_ERANGE, what, v, " (out of range, |v| < 65520)");
        }
        ((uint16_t *)c->buf)[i] = h;
        return 0;
    }
    case SL_DT_BF16: {
        uint16_t h;
        /* (2 - 2^-8) 2^127, the midpoint above the largest bfloat16, rounds to infinity */
        if (narrow_from_double(dv, 7, 127, &h) != 0) {
            return value_error(c, SL_ERANGE, what, v, " (out of range, |v| < 3.3961775e38)");
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
                slp__describe(e, d, sizeof d);
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

/* Format list: a flat list with shape (or 1-D without), or nested lists whose shape is read
 * from their first elements; the bare-list shorthand comes here too. */
int slp__fmt_list(struct slp__areq *r, struct slp_array *out)
{
    struct lctx c;
    memset(&c, 0, sizeof c);
    c.r = r;
    c.dt = r->has_dtype ? r->dt : SL_DT_F64;
    if (!json_is_array(r->data)) {
        char d[40];
        slp__describe(r->data, d, sizeof d);
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
            sl_format_shape(r->shp, r->ndim, s1, sizeof s1);
            sl_format_shape(c.shape, c.ndim, s2, sizeof s2);
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
    int rc = slp__check_size(r, c.shape, c.ndim, c.dt, &numel, &nbytes);
    if (rc) {
        return rc;
    }
    if (!c.nested && (uint64_t)numel != n) {
        sl_format_shape(c.shape, c.ndim, s1, sizeof s1);
        slp__errf(r->msg, r->msglen, "%s: %zu values, but shape %s holds %lld", r->dpath, n, s1,
                  (long long)numel);
        return SL_EINVAL;
    }
    c.buf = slp__alloc_array(r, nbytes);
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
        slp__free_array(r, c.buf);
        return rc;
    }
    slp__array_set(out, c.buf, c.buf, c.dt, c.ndim, c.shape);
    return 0;
}
