/* fmt_rle.c - the mask formats of openapi.json's arrays: Kaggle EncodedPixels (rle) and COCO RLE
 * (coco_rle, counts list or compressed string), decoded into a 0/1 mask [N, H, W] in C order.
 *
 * Both encodings number pixels column-major (down each column, then the next column). Every
 * image is validated completely while it is decoded; the output is allocated only after the
 * number of images and their size are known and checked against the limits. Choices a user can
 * see:
 *  - rle: shape [H, W] is the size of every image: a string gives [1, H, W], a list of N strings
 *    gives [N, H, W]; shape [N, H, W] takes a list of exactly N strings, or one string when N = 1;
 *  - rle: tokens are separated by any run of ASCII whitespace (leading and trailing is fine);
 *    "-" or a string with no tokens is an empty mask; runs may touch but not overlap; pairs and
 *    tokens are numbered from 1 in messages, images by their 0-based index in data;
 *  - coco_rle: an object is {"size": [h, w], "counts": ...} and nothing else; counts may contain
 *    zero runs anywhere; the compressed string is maskApi.c's form, where the delta coding
 *    (count minus the count two before) starts at the fourth count (index 3), as rleToString
 *    writes it;
 *  - dtype may be absent (uint8) or uint8 or bool (the output's dtype); compression may only be
 *    absent or "none"; "part" is refused (the mask formats are JSON text).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array_internal.h"

/* ---- shared ---- */

/* Checks compression and dtype (openapi.json: mask formats are uint8/bool, uncompressed); array.c
 * has refused "part" and required "data" from the table's row. */
static int mask_common(const struct slp__areq *m, const char *fmt, enum sl_dtype *dt, char *msg,
                       size_t msglen)
{
    *dt = SL_DT_U8;
    if (m->compression && strcmp(json_string_value(m->compression), "none") != 0) {
        char takers[80];
        slp__format_names(SLP__FMT_COMPRESSION, " and ", takers, sizeof takers);
        slp__errf(msg, msglen, "%s.compression: not allowed with format '%s' (%s only)", m->name,
                  fmt, takers);
        return SL_EINVAL;
    }
    if (m->dtype) {
        const char *s = json_string_value(m->dtype);
        if (strcmp(s, "uint8") == 0) {
            *dt = SL_DT_U8;
        } else if (strcmp(s, "bool") == 0) {
            *dt = SL_DT_BOOL;
        } else {
            slp__errf(msg, msglen,
                      "%s.dtype: format '%s' decodes to a 0/1 mask: expected uint8 or bool, got "
                      "'%.40s'",
                      m->name, fmt, s);
            return SL_EINVAL;
        }
    }
    return 0;
}

/* The bytes of the JSON string v (borrowed; a long one may be a placeholder whose bytes are the
 * request text's, not NUL-terminated). */
static int mask_string(const struct slp__areq *m, const json_t *v, const char **s, size_t *n,
                       const char *path, char *msg, size_t msglen)
{
    int rc = slp__jdoc_string(m->doc, v, s, n);
    if (rc) {
        slp__errf(msg, msglen, "%s: out of memory", path);
    }
    return rc;
}

/* What a JSON value is, for "expected X, got Y" messages. */
static const char *kind_of(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "a list";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a real number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

/* Checks n images of h x w against the limits (overflow-safe), then allocates the zeroed mask
 * and fills *out (which then owns it). Returns 0, SL_ETOOLARGE or SL_ENOMEM. */
static int alloc_mask(const struct slp__areq *m, int64_t n, int64_t h, int64_t w, enum sl_dtype dt,
                      struct slp_array *out, char *msg, size_t msglen)
{
    int64_t lim = m->lim->max_elements;
    /* every factor is >= 1, so a partial product over the limit stays over it */
    if (h > lim || w > lim / h || n > lim / (h * w) ||
        (uint64_t)(n * h * w) > (uint64_t)m->lim->max_array_bytes) {
        slp__errf(msg, msglen,
                  "%s: %lld image(s) of %lld x %lld pixels is over the limit of %lld elements and "
                  "%zu bytes",
                  m->name, (long long)n, (long long)h, (long long)w, (long long)lim,
                  m->lim->max_array_bytes);
        return SL_ETOOLARGE;
    }
    size_t nbytes = (size_t)(n * h * w);
    void *buf = calloc(nbytes ? nbytes : 1, 1);
    if (!buf) {
        slp__errf(msg, msglen, "%s: out of memory for %zu bytes", m->name, nbytes);
        return SL_ENOMEM;
    }
    out->buf = buf;
    out->t.data = buf;
    out->t.dtype = dt;
    out->t.ndim = 3;
    memset(out->t.shape, 0, sizeof out->t.shape);
    out->t.shape[0] = n;
    out->t.shape[1] = h;
    out->t.shape[2] = w;
    return 0;
}

/* The path of image i's data in messages: "target.data[i]" + tail, or "target.data" + tail
 * when data holds a single image rather than a list. */
static void image_path(const struct slp__areq *m, int is_list, int64_t i, const char *tail,
                       char *buf, size_t len)
{
    if (is_list) {
        snprintf(buf, len, "%s[%lld]%s", m->dpath, (long long)i, tail);
    } else {
        snprintf(buf, len, "%s%s", m->dpath, tail);
    }
}

/* Sets len pixels to 1 from column-major pixel offset at (0-based) in the C-order h x w plane.
 * The caller has checked at + len <= h * w. */
static void fill_run(uint8_t *plane, int64_t h, int64_t w, int64_t at, int64_t len)
{
    int64_t r = at % h, c = at / h;
    for (int64_t k = 0; k < len; k++) {
        plane[r * w + c] = 1;
        if (++r == h) {
            r = 0;
            c++;
        }
    }
}

/* Copies text into buf for a message: printable ASCII kept, other bytes as '?', long text cut
 * with "..." (a message must stay valid UTF-8 for the problem+json body). */
static void safe_text(const char *s, size_t n, char *buf, size_t len)
{
    size_t keep = n, k = 0;
    if (len < 8) {
        if (len) {
            buf[0] = '\0';
        }
        return;
    }
    if (keep > len - 1) {
        keep = len - 4;
    }
    for (; k < keep; k++) {
        unsigned char ch = (unsigned char)s[k];
        buf[k] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    if (keep < n) {
        memcpy(buf + k, "...", 3);
        k += 3;
    }
    buf[k] = '\0';
}

/* ---- rle (Kaggle EncodedPixels) ---- */

/* Values at or over this are only ever reported, never used in arithmetic. */
#define RLE_HUGE ((uint64_t)1 << 62)

struct rle_tok {
    const char *s;
    size_t len;
    size_t off;   /* byte offset in the string */
    size_t index; /* 1-based token number */
    uint64_t v;   /* saturated at RLE_HUGE */
};

static int is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

/* Reads the next token of s[0..n) from *at. Returns 1 with *t set, 0 at the end of s, or
 * SL_EINVAL when the token is not all digits. */
static int rle_next(const char *s, size_t n, size_t *at, size_t *count, struct rle_tok *t,
                    const char *path, char *msg, size_t msglen)
{
    size_t i = *at;
    while (i < n && is_space(s[i])) {
        i++;
    }
    if (i == n) {
        *at = i;
        return 0;
    }
    size_t b = i;
    while (i < n && !is_space(s[i])) {
        i++;
    }
    *at = i;
    t->s = s + b;
    t->len = i - b;
    t->off = b;
    t->index = ++*count;
    t->v = 0;
    for (size_t k = 0; k < t->len; k++) {
        char ch = t->s[k];
        if (ch < '0' || ch > '9') {
            char txt[32];
            safe_text(t->s, t->len, txt, sizeof txt);
            slp__errf(msg, msglen,
                      "%s: token %zu ('%s', at offset %zu) is not a positive integer (expected "
                      "space-separated 'start length' pairs)",
                      path, t->index, txt, t->off);
            return SL_EINVAL;
        }
        if (t->v >= RLE_HUGE / 10) {
            t->v = RLE_HUGE; /* saturate: far past any image */
        } else {
            t->v = t->v * 10 + (uint64_t)(ch - '0');
        }
    }
    return 1;
}

/* "pair 2 (start 3, length 4)" as the user wrote the numbers. */
static void pair_text(size_t pair, const struct rle_tok *st, const struct rle_tok *ln, char *buf,
                      size_t len)
{
    char a[32], b[32];
    safe_text(st->s, st->len, a, sizeof a);
    safe_text(ln->s, ln->len, b, sizeof b);
    snprintf(buf, len, "pair %zu (start %s, length %s)", pair, a, b);
}

/* Decodes one EncodedPixels string s[0..n) into the C-order h x w plane (zeroed). path names
 * the string in messages ("target.data[1]"). Returns 0, SL_EINVAL (a token that is not an
 * unsigned integer) or SL_ERANGE (zero, odd count, unsorted, overlapping, past the image). */
static int rle_decode_one(const char *s, size_t n, int64_t h, int64_t w, uint8_t *plane,
                          const char *path, char *msg, size_t msglen)
{
    uint64_t hw = (uint64_t)h * (uint64_t)w;
    size_t at = 0, count = 0, pair = 0;
    struct rle_tok st, ln, pst = {0}, pln = {0};
    char p1[96], p2[96];
    uint64_t prev_end = 0; /* last pixel (1-based) of the previous run; 0 before the first */

    size_t b = 0, e = n; /* the text without surrounding whitespace, for "-" */
    while (e > b && is_space(s[e - 1])) {
        e--;
    }
    while (b < e && is_space(s[b])) {
        b++;
    }
    if (e - b == 1 && s[b] == '-') {
        return 0;
    }
    for (;;) {
        int rc = rle_next(s, n, &at, &count, &st, path, msg, msglen);
        if (rc <= 0) {
            return rc;
        }
        rc = rle_next(s, n, &at, &count, &ln, path, msg, msglen);
        if (rc < 0) {
            return rc;
        }
        pair++;
        if (rc == 0) {
            char txt[32];
            safe_text(st.s, st.len, txt, sizeof txt);
            slp__errf(msg, msglen,
                      "%s: odd number of tokens (%zu): pair %zu (start %s) has no length", path,
                      count, pair, txt);
            return SL_ERANGE;
        }
        pair_text(pair, &st, &ln, p1, sizeof p1);
        if (st.v == 0 || ln.v == 0) {
            slp__errf(msg, msglen, "%s: %s: %s must be a positive integer (starts are 1-based)",
                      path, p1, st.v == 0 ? "start" : "length");
            return SL_ERANGE;
        }
        if (st.v > hw || ln.v > hw - st.v + 1) {
            slp__errf(msg, msglen, "%s: %s runs past the last pixel %llu of a %lld x %lld image",
                      path, p1, (unsigned long long)hw, (long long)h, (long long)w);
            return SL_ERANGE;
        }
        if (pair > 1 && st.v <= prev_end) {
            pair_text(pair - 1, &pst, &pln, p2, sizeof p2);
            slp__errf(msg, msglen, "%s: %s %s %s", path, p1,
                      st.v < pst.v ? "is not sorted: it starts before" : "overlaps", p2);
            return SL_ERANGE;
        }
        fill_run(plane, h, w, (int64_t)st.v - 1, (int64_t)ln.v);
        prev_end = st.v + ln.v - 1;
        pst = st;
        pln = ln;
    }
}

static int decode_rle(const struct slp__areq *m, struct slp_array *out, char *msg, size_t msglen)
{
    enum sl_dtype dt;
    int rc = mask_common(m, "rle", &dt, msg, msglen);
    if (rc) {
        return rc;
    }
    if (!m->has_shape || (m->ndim != 2 && m->ndim != 3)) {
        slp__errf(msg, msglen, "%s.shape: format 'rle' needs [H, W] or [N, H, W]%s", m->name,
                  m->has_shape ? "" : " (required)");
        return SL_EINVAL;
    }
    int64_t h = m->shp[m->ndim - 2], w = m->shp[m->ndim - 1];
    int is_list = json_is_array(m->data);
    if (!is_list && !json_is_string(m->data)) {
        slp__errf(msg, msglen, "%s: expected an RLE string or a list of them, got %s", m->dpath,
                  kind_of(m->data));
        return SL_EINVAL;
    }
    int64_t n = is_list ? (int64_t)json_array_size(m->data) : 1;
    char sh[160];
    sl_format_shape(m->shp, m->ndim, sh, sizeof sh);
    if (m->ndim == 3 && n != m->shp[0]) {
        slp__errf(msg, msglen, "%s: %lld string(s) for shape %s (expected %lld, one per image)",
                  m->dpath, (long long)n, sh, (long long)m->shp[0]);
        return SL_ESHAPE;
    }
    if (n == 0) {
        slp__errf(msg, msglen, "%s: empty list (one string per image)", m->dpath);
        return SL_EINVAL;
    }
    for (int64_t i = 0; is_list && i < n; i++) {
        const json_t *v = json_array_get(m->data, (size_t)i);
        if (!json_is_string(v)) {
            slp__errf(msg, msglen, "%s[%lld]: expected an RLE string, got %s", m->dpath,
                      (long long)i, kind_of(v));
            return SL_EINVAL;
        }
    }
    rc = alloc_mask(m, n, h, w, dt, out, msg, msglen);
    if (rc) {
        return rc;
    }
    for (int64_t i = 0; i < n; i++) {
        const json_t *v = is_list ? json_array_get(m->data, (size_t)i) : m->data;
        char path[128];
        image_path(m, is_list, i, "", path, sizeof path);
        const char *text = NULL;
        size_t tlen = 0;
        rc = mask_string(m, v, &text, &tlen, path, msg, msglen);
        if (!rc) {
            rc = rle_decode_one(text, tlen, h, w, (uint8_t *)out->buf + i * h * w, path, msg,
                                msglen);
        }
        if (rc) {
            slp_array_free(out);
            return rc;
        }
    }
    return 0;
}

/* ---- coco_rle ---- */

/* One image's runs being written: counts alternate zeros, ones, zeros, ... */
struct coco_runs {
    uint8_t *plane; /* C-order h x w, zeroed */
    int64_t h, w;
    int64_t pos;  /* pixels covered so far (column-major) */
    size_t count; /* counts seen so far */
};

/* Adds the next count v. Returns 0, or SL_ERANGE (negative, or past h*w) with a message. */
static int coco_put(struct coco_runs *c, int64_t v, const char *path, const char *where, char *msg,
                    size_t msglen)
{
    int64_t hw = c->h * c->w;
    if (v < 0) {
        slp__errf(msg, msglen, "%s: count %zu%s is negative (%lld)", path, c->count, where,
                  (long long)v);
        return SL_ERANGE;
    }
    if (v > hw - c->pos) {
        slp__errf(msg, msglen,
                  "%s: count %zu%s is %lld: the runs go past the %lld pixels of a %lld x %lld "
                  "image",
                  path, c->count, where, (long long)v, (long long)hw, (long long)c->h,
                  (long long)c->w);
        return SL_ERANGE;
    }
    if (c->count & 1) {
        fill_run(c->plane, c->h, c->w, c->pos, v);
    }
    c->pos += v;
    c->count++;
    return 0;
}

static int coco_end(const struct coco_runs *c, const char *path, char *msg, size_t msglen)
{
    if (c->pos != c->h * c->w) {
        slp__errf(msg, msglen, "%s: counts sum to %lld, expected %lld (%lld x %lld)", path,
                  (long long)c->pos, (long long)(c->h * c->w), (long long)c->h, (long long)c->w);
        return SL_ERANGE;
    }
    return 0;
}

static int coco_counts_list(struct coco_runs *c, const json_t *a, const char *path, char *msg,
                            size_t msglen)
{
    size_t n = json_array_size(a);
    for (size_t k = 0; k < n; k++) {
        const json_t *v = json_array_get(a, k);
        if (!json_is_integer(v)) {
            slp__errf(msg, msglen, "%s[%zu]: expected a non-negative integer, got %s", path, k,
                      kind_of(v));
            return SL_EINVAL;
        }
        int rc = coco_put(c, (int64_t)json_integer_value(v), path, "", msg, msglen);
        if (rc) {
            return rc;
        }
    }
    return coco_end(c, path, msg, msglen);
}

/* Longest count in the compressed form: 12 chunks of 5 bits keep every value inside int64. */
#define COCO_MAX_CHUNKS 12

/* Decodes the compressed counts string (maskApi.c rleFrString's format): each count is a run of
 * characters '0' + chunk, chunk = 5 value bits (least significant first) | 0x20 when another
 * chunk follows; the last chunk's 0x10 bit is the sign. From the fourth count on (index > 2) the
 * value is the difference from the count two positions before. */
static int coco_counts_string(struct coco_runs *c, const char *s, size_t n, const char *path,
                              char *msg, size_t msglen)
{
    int64_t back2 = 0, back1 = 0; /* the counts two and one positions before */
    size_t i = 0;
    while (i < n) {
        size_t start = i;
        uint64_t x = 0;
        int k = 0, more = 1, neg = 0;
        while (more) {
            if (i == n) {
                slp__errf(msg, msglen,
                          "%s: count %zu (at offset %zu) is truncated: the string ends inside it",
                          path, c->count, start);
                return SL_EMALFORMED;
            }
            unsigned char ch = (unsigned char)s[i];
            if (ch < 48 || ch > 48 + 63) {
                char txt[8];
                safe_text(s + i, 1, txt, sizeof txt);
                slp__errf(msg, msglen,
                          "%s: character '%s' (byte %u, at offset %zu) is outside '0'..'o'", path,
                          txt, (unsigned)ch, i);
                return SL_EMALFORMED;
            }
            if (k == COCO_MAX_CHUNKS) {
                slp__errf(msg, msglen, "%s: count %zu (at offset %zu) is too long (over %d chunks)",
                          path, c->count, start, COCO_MAX_CHUNKS);
                return SL_EMALFORMED;
            }
            unsigned d = ch - 48u;
            x |= (uint64_t)(d & 0x1f) << (5 * k);
            more = (d & 0x20) != 0;
            neg = !more && (d & 0x10);
            i++;
            k++;
        }
        /* sign-extend from bit 5k - 1: the value is x - 2^(5k) */
        int64_t v = neg ? (int64_t)x - ((int64_t)1 << (5 * k)) : (int64_t)x;
        if (c->count > 2) {
            v += back2; /* |v| < 2^60 and 0 <= back2 <= h*w: no overflow */
        }
        char where[48];
        snprintf(where, sizeof where, " (at offset %zu)", start);
        int rc = coco_put(c, v, path, where, msg, msglen);
        if (rc) {
            return rc;
        }
        back2 = back1;
        back1 = v;
    }
    return coco_end(c, path, msg, msglen);
}

/* Reads one RLE object's size into h, w, checking its keys. path names it ("target.data[2]"). */
static int coco_size(const json_t *o, const char *path, int64_t *h, int64_t *w, char *msg,
                     size_t msglen)
{
    if (!json_is_object(o)) {
        slp__errf(msg, msglen, "%s: expected an object {\"size\": [h, w], \"counts\": ...}, got %s",
                  path, kind_of(o));
        return SL_EINVAL;
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)o, key, v)
    {
        if (strcmp(key, "size") != 0 && strcmp(key, "counts") != 0) {
            slp__errf(msg, msglen, "%s.%.64s: unknown key (expected size and counts)", path, key);
            return SL_EINVAL;
        }
    }
    const json_t *size = json_object_get(o, "size");
    const json_t *counts = json_object_get(o, "counts");
    if (!size || !counts) {
        slp__errf(msg, msglen, "%s.%s: required", path, size ? "counts" : "size");
        return SL_EINVAL;
    }
    if (!json_is_array(size) || json_array_size(size) != 2) {
        slp__errf(msg, msglen, "%s.size: expected [h, w], two positive integers", path);
        return SL_EINVAL;
    }
    int64_t d[2];
    for (size_t k = 0; k < 2; k++) {
        const json_t *e = json_array_get(size, k);
        if (!json_is_integer(e) || json_integer_value(e) <= 0) {
            slp__errf(msg, msglen, "%s.size[%zu]: expected a positive integer", path, k);
            return SL_EINVAL;
        }
        d[k] = (int64_t)json_integer_value(e);
    }
    if (!json_is_array(counts) && !json_is_string(counts)) {
        slp__errf(msg, msglen,
                  "%s.counts: expected a list of run lengths or a compressed string, got %s", path,
                  kind_of(counts));
        return SL_EINVAL;
    }
    *h = d[0];
    *w = d[1];
    return 0;
}

static int decode_coco_rle(const struct slp__areq *m, struct slp_array *out, char *msg,
                           size_t msglen)
{
    enum sl_dtype dt;
    int rc = mask_common(m, "coco_rle", &dt, msg, msglen);
    if (rc) {
        return rc;
    }
    int is_list = json_is_array(m->data);
    if (!is_list && !json_is_object(m->data)) {
        slp__errf(msg, msglen,
                  "%s: expected an RLE object {\"size\": [h, w], \"counts\": ...} or a list of "
                  "them, got %s",
                  m->dpath, kind_of(m->data));
        return SL_EINVAL;
    }
    int64_t n = is_list ? (int64_t)json_array_size(m->data) : 1;
    if (n == 0) {
        slp__errf(msg, msglen, "%s: empty list (one RLE object per image)", m->dpath);
        return SL_EINVAL;
    }
    if (m->has_shape && m->ndim != 2 && m->ndim != 3) {
        slp__errf(msg, msglen, "%s.shape: format 'coco_rle' has shape [h, w] or [N, h, w]",
                  m->name);
        return SL_EINVAL;
    }
    int64_t h = 0, w = 0;
    char path[128];
    for (int64_t i = 0; i < n; i++) {
        const json_t *o = is_list ? json_array_get(m->data, (size_t)i) : m->data;
        int64_t hi, wi;
        image_path(m, is_list, i, "", path, sizeof path);
        rc = coco_size(o, path, &hi, &wi, msg, msglen);
        if (rc) {
            return rc;
        }
        if (i == 0) {
            h = hi;
            w = wi;
        } else if (hi != h || wi != w) {
            slp__errf(msg, msglen, "%s.size: [%lld, %lld] differs from %s[0].size [%lld, %lld]",
                      path, (long long)hi, (long long)wi, m->dpath, (long long)h, (long long)w);
            return SL_ESHAPE;
        }
    }
    if (m->has_shape) {
        int64_t want[3] = {n, h, w};
        const int64_t *got = m->shp;
        int off = 3 - m->ndim;
        if (memcmp(got, want + off, sizeof(int64_t) * (size_t)m->ndim) != 0) {
            char s1[160], s2[160];
            sl_format_shape(got, m->ndim, s1, sizeof s1);
            sl_format_shape(want + off, m->ndim, s2, sizeof s2);
            slp__errf(msg, msglen, "%s.shape: %s does not match the RLE data's %s", m->name, s1,
                      s2);
            return SL_ESHAPE;
        }
    }
    rc = alloc_mask(m, n, h, w, dt, out, msg, msglen);
    if (rc) {
        return rc;
    }
    for (int64_t i = 0; i < n && !rc; i++) {
        const json_t *o = is_list ? json_array_get(m->data, (size_t)i) : m->data;
        const json_t *counts = json_object_get(o, "counts");
        struct coco_runs c = {(uint8_t *)out->buf + i * h * w, h, w, 0, 0};
        image_path(m, is_list, i, ".counts", path, sizeof path);
        if (json_is_array(counts)) {
            rc = coco_counts_list(&c, counts, path, msg, msglen);
        } else {
            const char *text = NULL;
            size_t tlen = 0;
            rc = mask_string(m, counts, &text, &tlen, path, msg, msglen);
            if (!rc) {
                rc = coco_counts_string(&c, text, tlen, path, msg, msglen);
            }
        }
    }
    if (rc) {
        slp_array_free(out);
    }
    return rc;
}

int slp__fmt_rle(struct slp__areq *r, struct slp_array *out)
{
    return decode_rle(r, out, r->msg, r->msglen);
}

int slp__fmt_coco_rle(struct slp__areq *r, struct slp_array *out)
{
    return decode_coco_rle(r, out, r->msg, r->msglen);
}
