/* npy.c - NumPy .npy headers (format versions 1.0, 2.0 and 3.0), byte swapping and the
 * Fortran-to-C reordering of their data.
 *
 * The header dict is parsed as the small Python literal it is: keys 'descr', 'fortran_order' and
 * 'shape' in any order, single or double quotes, any spacing, a trailing comma, a tuple or list
 * for the shape (Python 2's "3L" too). Other keys, duplicates, or text after the dict other than
 * whitespace are malformed. '=' in a descr is taken as little-endian (numpy never writes it).
 */
#include <stdio.h>
#include <string.h>

#include "array_internal.h"

static const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

/* descr without its byte-order character, and the dtype it maps to. */
static const struct {
    const char *code;
    enum sl_dtype dtype;
} npy_codes[] = {
    {"b1", SL_DT_BOOL}, {"u1", SL_DT_U8},  {"i1", SL_DT_I8},  {"u2", SL_DT_U16},
    {"i2", SL_DT_I16},  {"u4", SL_DT_U32}, {"i4", SL_DT_I32}, {"i8", SL_DT_I64},
    {"f2", SL_DT_F16},  {"f4", SL_DT_F32}, {"f8", SL_DT_F64},
};

int slp__host_is_big(void)
{
    const uint16_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 0;
}

void slp__byteswap(void *buf, size_t n, size_t itemsize)
{
    unsigned char *p = buf;
    switch (itemsize) {
    case 2:
        for (size_t i = 0; i < n; i++, p += 2) {
            uint16_t v;
            memcpy(&v, p, 2);
            v = (uint16_t)(v << 8 | v >> 8);
            memcpy(p, &v, 2);
        }
        break;
    case 4:
        for (size_t i = 0; i < n; i++, p += 4) {
            uint32_t v;
            memcpy(&v, p, 4);
            v = (v << 24) | ((v << 8) & 0x00ff0000u) | ((v >> 8) & 0x0000ff00u) | (v >> 24);
            memcpy(p, &v, 4);
        }
        break;
    case 8:
        for (size_t i = 0; i < n; i++, p += 8) {
            uint64_t v;
            memcpy(&v, p, 8);
            v = ((v & 0x00000000000000ffull) << 56) | ((v & 0x000000000000ff00ull) << 40) |
                ((v & 0x0000000000ff0000ull) << 24) | ((v & 0x00000000ff000000ull) << 8) |
                ((v & 0x000000ff00000000ull) >> 8) | ((v & 0x0000ff0000000000ull) >> 24) |
                ((v & 0x00ff000000000000ull) >> 40) | ((v & 0xff00000000000000ull) >> 56);
            memcpy(p, &v, 8);
        }
        break;
    default:
        for (size_t i = 0; i < n; i++, p += itemsize) {
            for (size_t a = 0, b = itemsize - 1; a < b; a++, b--) {
                unsigned char t = p[a];
                p[a] = p[b];
                p[b] = t;
            }
        }
        break;
    }
}

/* Copies n elements of one fixed size from a strided source into a dense destination. */
#define STRIDED_COPY(T)                                                                            \
    do {                                                                                           \
        for (int64_t i_ = 0; i_ < n; i_++) {                                                       \
            memcpy(d + (size_t)i_ * sizeof(T), s + (size_t)(i_ * stride) * sizeof(T), sizeof(T));  \
        }                                                                                          \
    } while (0)

static void gather(unsigned char *d, const unsigned char *s, int64_t n, int64_t stride,
                   size_t itemsize)
{
    switch (itemsize) {
    case 1:
        for (int64_t i = 0; i < n; i++) {
            d[i] = s[i * stride];
        }
        break;
    case 2:
        STRIDED_COPY(uint16_t);
        break;
    case 4:
        STRIDED_COPY(uint32_t);
        break;
    case 8:
        STRIDED_COPY(uint64_t);
        break;
    default:
        for (int64_t i = 0; i < n; i++) {
            memcpy(d + (size_t)i * itemsize, s + (size_t)(i * stride) * itemsize, itemsize);
        }
        break;
    }
}

/* Walks the C-order output; element (i0, .., ik) of a Fortran array sits at
 * i0 + d0 * (i1 + d1 * (i2 + ...)), i.e. Fortran strides 1, d0, d0*d1, ... */
void slp__fortran_to_c(const void *src, void *dst, size_t itemsize, int ndim, const int64_t *shape)
{
    int64_t fstride[SL_MAX_DIMS];
    int64_t count[SL_MAX_DIMS] = {0};
    int64_t total = 1;
    for (int k = 0; k < ndim; k++) {
        fstride[k] = total;
        total *= shape[k];
    }
    if (ndim <= 0 || total <= 0) {
        return;
    }
    const unsigned char *s = src;
    unsigned char *d = dst;
    int64_t inner = shape[ndim - 1];
    int64_t outer = total / inner;
    int64_t base = 0; /* source element index of count[0..ndim-2], last index 0 */
    for (int64_t o = 0; o < outer; o++) {
        gather(d, s + (size_t)base * itemsize, inner, fstride[ndim - 1], itemsize);
        d += (size_t)inner * itemsize;
        for (int k = ndim - 2; k >= 0; k--) {
            count[k]++;
            base += fstride[k];
            if (count[k] < shape[k]) {
                break;
            }
            base -= count[k] * fstride[k];
            count[k] = 0;
        }
    }
}

int slp_npy_preamble(const unsigned char *buf, size_t len, size_t *data_offset, const char *name,
                     char *msg, size_t msglen)
{
    *data_offset = 0;
    size_t cmp = len < sizeof npy_magic ? len : sizeof npy_magic;
    if (memcmp(buf, npy_magic, cmp) != 0) {
        int gz = len >= 2 && buf[0] == 0x1f && buf[1] == 0x8b;
        slp__errf(msg, msglen, "%s: not a .npy file (no \\x93NUMPY magic)%s", name,
                  gz ? "; it looks gzip-compressed: set \"compression\"" : "");
        return SL_EMALFORMED;
    }
    if (len < 8) {
        slp__errf(msg, msglen, "%s: npy file is truncated (%zu bytes)", name, len);
        return SL_EMALFORMED;
    }
    int major = buf[6], minor = buf[7];
    if (major < 1 || major > 3) {
        slp__errf(msg, msglen,
                  "%s: npy format version %d.%d is not supported (1.0, 2.0 and 3.0 are)", name,
                  major, minor);
        return SL_EUNSUPPORTED;
    }
    size_t pre = major == 1 ? 10 : 12;
    if (len < pre) {
        slp__errf(msg, msglen, "%s: npy file is truncated (%zu bytes)", name, len);
        return SL_EMALFORMED;
    }
    size_t hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
    if (major > 1) {
        hlen |= (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
    }
    if (hlen > SLP__NPY_MAX_HEADER) {
        slp__errf(msg, msglen, "%s: npy header of %zu bytes is too long (at most %u)", name, hlen,
                  SLP__NPY_MAX_HEADER);
        return SL_EMALFORMED;
    }
    *data_offset = pre + hlen;
    return 0;
}

/* The header dict being parsed: buf[i..end). */
struct hparse {
    const unsigned char *buf;
    size_t i, end;
    const char *name;
    char *msg;
    size_t msglen;
};

static void skip_ws(struct hparse *h)
{
    while (h->i < h->end && (h->buf[h->i] == ' ' || h->buf[h->i] == '\t' || h->buf[h->i] == '\n' ||
                             h->buf[h->i] == '\r')) {
        h->i++;
    }
}

static int peek(const struct hparse *h)
{
    return h->i < h->end ? h->buf[h->i] : -1;
}

static int expected(struct hparse *h, const char *what)
{
    slp__errf(h->msg, h->msglen, "%s: malformed npy header at byte %zu: expected %s", h->name, h->i,
              what);
    return SL_EMALFORMED;
}

/* A quoted string into out (truncated to outlen - 1; *full = whether it fit). */
static int parse_string(struct hparse *h, char *out, size_t outlen, int *full)
{
    int q = peek(h);
    if (q != '\'' && q != '"') {
        return expected(h, "a quoted string");
    }
    h->i++;
    size_t n = 0;
    *full = 1;
    while (h->i < h->end && h->buf[h->i] != q) {
        if (h->buf[h->i] == '\\') {
            return expected(h, "a string without escapes");
        }
        if (n + 1 < outlen) {
            out[n++] = (char)h->buf[h->i];
        } else {
            *full = 0;
        }
        h->i++;
    }
    out[n] = '\0';
    if (h->i >= h->end) {
        return expected(h, "the end of a string");
    }
    h->i++;
    return 0;
}

static int match_word(struct hparse *h, const char *w)
{
    size_t n = strlen(w);
    if (h->end - h->i >= n && memcmp(h->buf + h->i, w, n) == 0) {
        h->i += n;
        return 1;
    }
    return 0;
}

/* A tuple or list of non-negative integers; *count is the full count, at most SL_MAX_DIMS are
 * stored. */
static int parse_shape(struct hparse *h, int64_t *shape, int *count)
{
    int open = peek(h);
    if (open != '(' && open != '[') {
        return expected(h, "a shape tuple");
    }
    int close = open == '(' ? ')' : ']';
    h->i++;
    *count = 0;
    skip_ws(h);
    if (peek(h) == close) {
        h->i++;
        return 0;
    }
    for (;;) {
        int c = peek(h);
        if (c < '0' || c > '9') {
            return expected(h, "a non-negative integer");
        }
        int64_t v = 0;
        while ((c = peek(h)) >= '0' && c <= '9') {
            if (v > (INT64_MAX - (c - '0')) / 10) {
                slp__errf(h->msg, h->msglen, "%s: npy shape dimension at byte %zu is too large",
                          h->name, h->i);
                return SL_ETOOLARGE;
            }
            v = v * 10 + (c - '0');
            h->i++;
        }
        if (peek(h) == 'L' || peek(h) == 'l') {
            h->i++;
        }
        if (*count < SL_MAX_DIMS) {
            shape[*count] = v;
        }
        if (*count < SL_MAX_DIMS + 1) {
            (*count)++;
        }
        skip_ws(h);
        if (peek(h) == ',') {
            h->i++;
            skip_ws(h);
            if (peek(h) == close) {
                h->i++;
                return 0;
            }
            continue;
        }
        if (peek(h) == close) {
            h->i++;
            return 0;
        }
        return expected(h, "',' or the end of the shape");
    }
}

static int map_descr(const char *descr, int full, struct slp__npy_info *info, const char *name,
                     char *msg, size_t msglen)
{
    char order = descr[0];
    if (full && (order == '<' || order == '>' || order == '|' || order == '=')) {
        for (size_t k = 0; k < sizeof npy_codes / sizeof npy_codes[0]; k++) {
            if (strcmp(descr + 1, npy_codes[k].code) != 0) {
                continue;
            }
            size_t size = sl_dtype_size(npy_codes[k].dtype);
            if (order == '|' && size > 1) {
                break; /* a multi-byte type needs a byte order */
            }
            info->dtype = npy_codes[k].dtype;
            info->wire_big = order == '>' && size > 1;
            return 0;
        }
    }
    /* the dtypes .npy can carry: bfloat16 has no NumPy code (raw carries it) */
    char all[160];
    size_t at = 0;
    const size_t ncodes = sizeof npy_codes / sizeof npy_codes[0];
    all[0] = '\0';
    for (size_t k = 0; k < ncodes && at < sizeof all; k++) {
        int w = snprintf(all + at, sizeof all - at, "%s%s", k ? ", " : "",
                         sl_dtype_name(npy_codes[k].dtype));
        at += w > 0 ? (size_t)w : 0;
    }
    const bool v2 = full && strcmp(descr + 1, "V2") == 0;
    slp__errf(msg, msglen, "%s: npy dtype '%s%s' is not supported (%s are)%s", name, descr,
              full ? "" : "...", all,
              v2 ? "; a bfloat16 array has no npy dtype (NumPy saves one as 'V2'): send its "
                   "bytes as format 'raw' with \"dtype\": \"bfloat16\""
                 : "");
    return SL_EUNSUPPORTED;
}

/* What the header dict has said so far. */
struct npy_dict {
    int have_descr, have_fortran, have_shape;
    int descr_full; /* descr fit in info->descr */
    int count;      /* dimensions of shape */
};

/* Parses one "key: value" member of the header dict at h into info and d. */
static int parse_member(struct hparse *h, struct slp__npy_info *info, struct npy_dict *d)
{
    char key[32];
    int key_full = 1;
    size_t key_at = h->i;
    int rc = parse_string(h, key, sizeof key, &key_full);
    if (rc) {
        return rc;
    }
    skip_ws(h);
    if (peek(h) != ':') {
        return expected(h, "':'");
    }
    h->i++;
    skip_ws(h);
    int *seen = NULL;
    if (key_full && strcmp(key, "descr") == 0) {
        seen = &d->have_descr;
    } else if (key_full && strcmp(key, "fortran_order") == 0) {
        seen = &d->have_fortran;
    } else if (key_full && strcmp(key, "shape") == 0) {
        seen = &d->have_shape;
    } else {
        slp__errf(h->msg, h->msglen, "%s: npy header has an unknown key '%s' at byte %zu", h->name,
                  key, key_at);
        return SL_EMALFORMED;
    }
    if (*seen) {
        slp__errf(h->msg, h->msglen, "%s: npy header repeats the key '%s' at byte %zu", h->name,
                  key, key_at);
        return SL_EMALFORMED;
    }
    *seen = 1;
    if (seen == &d->have_descr) {
        if (peek(h) == '[') {
            slp__errf(h->msg, h->msglen,
                      "%s: npy structured dtypes (a list as 'descr') are not supported", h->name);
            return SL_EUNSUPPORTED;
        }
        return parse_string(h, info->descr, sizeof info->descr, &d->descr_full);
    }
    if (seen == &d->have_fortran) {
        if (match_word(h, "True")) {
            info->fortran = 1;
        } else if (!match_word(h, "False")) {
            return expected(h, "True or False");
        }
        return 0;
    }
    return parse_shape(h, info->shape, &d->count);
}

/* After the dict: every key given, a supported dtype, 1 to SL_MAX_DIMS non-zero dimensions. */
static int check_dict(const struct npy_dict *d, struct slp__npy_info *info, const char *name,
                      char *msg, size_t msglen)
{
    if (!d->have_descr || !d->have_fortran || !d->have_shape) {
        slp__errf(msg, msglen, "%s: npy header lacks '%s'", name,
                  !d->have_descr     ? "descr"
                  : !d->have_fortran ? "fortran_order"
                                     : "shape");
        return SL_EMALFORMED;
    }
    int rc = map_descr(info->descr, d->descr_full, info, name, msg, msglen);
    if (rc) {
        return rc;
    }
    if (d->count == 0) {
        slp__errf(msg, msglen, "%s: 0-d arrays are not accepted (npy shape ())", name);
        return SL_EINVAL;
    }
    if (d->count > SL_MAX_DIMS) {
        slp__errf(msg, msglen, "%s: npy array has more than %d dimensions", name, SL_MAX_DIMS);
        return SL_EINVAL;
    }
    info->ndim = d->count;
    for (int k = 0; k < d->count; k++) {
        if (info->shape[k] == 0) {
            char s[160];
            sl_format_shape(info->shape, d->count, s, sizeof s);
            slp__errf(msg, msglen,
                      "%s: npy shape %s has a zero dimension (empty arrays are not accepted)", name,
                      s);
            return SL_EINVAL;
        }
    }
    return 0;
}

int slp__npy_parse(const unsigned char *buf, size_t len, struct slp__npy_info *info,
                   const char *name, char *msg, size_t msglen)
{
    memset(info, 0, sizeof *info);
    size_t off = 0;
    int rc = slp_npy_preamble(buf, len, &off, name, msg, msglen);
    if (rc) {
        return rc;
    }
    if (len < off) {
        slp__errf(msg, msglen, "%s: npy header is truncated (%zu of %zu bytes)", name, len, off);
        return SL_EMALFORMED;
    }
    struct hparse h = {buf, buf[6] == 1 ? 10 : 12, off, name, msg, msglen};
    struct npy_dict d = {0, 0, 0, 1, 0};
    skip_ws(&h);
    if (peek(&h) != '{') {
        return expected(&h, "'{'");
    }
    h.i++;
    for (;;) {
        skip_ws(&h);
        if (peek(&h) == '}') {
            h.i++;
            break;
        }
        rc = parse_member(&h, info, &d);
        if (rc) {
            return rc;
        }
        skip_ws(&h);
        if (peek(&h) == ',') {
            h.i++;
            continue;
        }
        if (peek(&h) == '}') {
            h.i++;
            break;
        }
        return expected(&h, "',' or '}'");
    }
    skip_ws(&h);
    if (h.i != h.end) {
        return expected(&h, "only spaces after the header dict");
    }
    rc = check_dict(&d, info, name, msg, msglen);
    if (rc) {
        return rc;
    }
    info->data_offset = off;
    return 0;
}

/* Public: as slp__npy_parse, but the caller cannot be told to swap bytes, so only arrays
 * already in host byte order are accepted. */
int slp_npy_header(const unsigned char *buf, size_t len, enum sl_dtype *dtype, int *ndim,
                   int64_t shape[SL_MAX_DIMS], int *fortran, size_t *data_offset, const char *name,
                   char *msg, size_t msglen)
{
    struct slp__npy_info info;
    int rc = slp__npy_parse(buf, len, &info, name, msg, msglen);
    if (!rc && info.wire_big != slp__host_is_big() && sl_dtype_size(info.dtype) > 1) {
        slp__errf(msg, msglen, "%s: npy dtype '%s' is not in host byte order", name, info.descr);
        rc = SL_EUNSUPPORTED;
    }
    if (rc) {
        return rc;
    }
    *dtype = info.dtype;
    *ndim = info.ndim;
    memcpy(shape, info.shape, sizeof info.shape);
    *fortran = info.fortran;
    *data_offset = info.data_offset;
    return 0;
}

size_t slp_npy_write_header(enum sl_dtype dtype, const int64_t *shape, int ndim, int fortran,
                            char *hdr, size_t cap)
{
    const char *code = NULL;
    for (size_t k = 0; k < sizeof npy_codes / sizeof npy_codes[0]; k++) {
        if (npy_codes[k].dtype == dtype) {
            code = npy_codes[k].code;
        }
    }
    if (!code || ndim < 0 || ndim > SL_MAX_DIMS) {
        return 0;
    }
    const char order = sl_dtype_size(dtype) == 1 ? '|' : slp__host_is_big() ? '>' : '<';
    char dict[384];
    size_t n =
        (size_t)snprintf(dict, sizeof dict, "{'descr': '%c%s', 'fortran_order': %s, 'shape': (",
                         order, code, fortran ? "True" : "False");
    for (int a = 0; a < ndim; a++) {
        n += (size_t)snprintf(dict + n, sizeof dict - n, "%s%lld", a ? ", " : "",
                              (long long)shape[a]);
    }
    n += (size_t)snprintf(dict + n, sizeof dict - n, "%s), }", ndim == 1 ? "," : "");
    /* magic, version 1.0, a 2-byte length, then the dict padded with spaces and '\n' up to the
     * next multiple of 64 bytes (the NumPy format specification) */
    const size_t pre = 10, align = 64;
    size_t total = (pre + n + 1 + align - 1) / align * align;
    if (total > cap) {
        return 0;
    }
    size_t hlen = total - pre;
    memcpy(hdr, npy_magic, sizeof npy_magic);
    hdr[6] = 1;
    hdr[7] = 0;
    hdr[8] = (char)(hlen & 0xff);
    hdr[9] = (char)(hlen >> 8);
    memcpy(hdr + pre, dict, n);
    memset(hdr + pre + n, ' ', hlen - n - 1);
    hdr[total - 1] = '\n';
    return total;
}
