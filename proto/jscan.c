/* jscan.c - the pre-scan of a JSON text before jansson parses it, and the text's skeleton.
 *
 * One linear pass does two jobs:
 *  - limits: the nesting depth against lim->max_depth and the number of values against
 *    lim->max_json_values, so that a body over them costs one pass and no memory (jansson
 *    spends 40+ bytes on each value and recurses once per nesting level);
 *  - the skeleton: a long string VALUE of a "data" or "counts" key (the base64 of npy/raw bytes,
 *    an rle string, a COCO counts string; also each string of a list under such a key) is not
 *    given to jansson, which parses strings at ~100 MB/s and copies each one. jansson parses a
 *    copy of the text - the skeleton - in which the contents of each such string are replaced
 *    by a placeholder "\u0000slp:K", K its index in a side table holding the string's bytes
 *    [off, off + len) in the original text. The array decoders ask slp__jdoc_string() for the
 *    bytes of a string value and get the original ones, without a copy.
 *
 * Why the placeholder is unambiguous: the skeleton is parsed with JSON_ALLOW_NUL, but only when
 * no string of the text (key or value, short or long) holds a \u0000 escape; a text with one
 * is parsed as it is, without JSON_ALLOW_NUL, exactly as before (jansson refuses it). So a
 * string of the parsed tree that contains U+0000 can only be a placeholder. Keys are never
 * replaced (JSON_REJECT_DUPLICATES sees them as they are), nor is a value of any other key, so
 * every message that quotes a user's string (an unknown loss name, a format) quotes it as
 * before, however long it is.
 *
 * A string is replaced only when the scan proves that jansson would accept it: printable ASCII
 * (0x20..0x7f) and the escapes \" \\ \/ \b \f \n \r \t \uXXXX (XXXX neither 0000 nor a
 * surrogate half). Anything else (UTF-8 text, a control character, a bad escape, a surrogate
 * pair) is left in the skeleton for jansson to decode or refuse. Replacing one valid string
 * literal by another changes no token, so the skeleton parses if and only if the text does.
 * When the skeleton does not parse, the original text is parsed again without it, so that the
 * 400 names the line, column and jansson's reason in the user's text exactly as before.
 *
 * The scan counts; it does not validate structure. It never reads outside the text, whatever
 * the bytes are.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "array_internal.h"
#include "internal.h"

/* What scan_string saw in a string literal. */
enum {
    STR_ESC = 1, /* a backslash escape (all of them valid so far) */
    STR_NUL = 2, /* a \u0000 escape */
    STR_ODD = 4  /* something only jansson should judge: a byte outside 0x20..0x7f, a bad or
                    surrogate escape, or the text ends inside the literal */
};

/* The placeholder's text inside the quotes of the skeleton, before the index. */
static const char placeholder[] = "\\u0000slp:";
#define PLACEHOLDER_LEN (sizeof placeholder - 1)
/* ... and as jansson decodes it */
static const char placeholder_value[] = "\0slp:";
#define PLACEHOLDER_VALUE_LEN (sizeof placeholder_value - 1)

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The code unit of the 4 hex digits at p, or -1. */
static long hex4(const char *p)
{
    long v = 0;
    for (int k = 0; k < 4; k++) {
        int d = hex_value((unsigned char)p[k]);
        if (d < 0) {
            return -1;
        }
        v = v << 4 | d;
    }
    return v;
}

/* Looks at the escape whose backslash is s[i] (i + 1 < len); returns the offset after it and
 * adds to *f what it is. An escape that is not valid JSON, or that jansson must combine (a
 * surrogate half), makes the string STR_ODD; it then covers only the byte after the backslash,
 * which is all the end of the string depends on. */
static size_t escape_end(const char *s, size_t len, size_t i, unsigned *f)
{
    const char e = s[i + 1];
    *f |= STR_ESC;
    if (e == 'u') {
        long u = i + 6 <= len ? hex4(s + i + 2) : -1;
        if (u < 0 || (u >= 0xd800 && u <= 0xdfff)) {
            *f |= STR_ODD;
            return i + 2;
        }
        if (u == 0) {
            *f |= STR_NUL;
        }
        return i + 6;
    }
    if (e == '\0' || !strchr("\"\\/bfnrt", e)) {
        *f |= STR_ODD;
    }
    return i + 2;
}

/* Out of line and 64-byte aligned: inlined into slp__json_skeleton, the 16-byte loop (the same
 * instructions) ran at 28 or 14 GB/s on proto_bench's body depending on where the linker put
 * that function. */
#if defined(__GNUC__) || defined(__clang__)
#define SCAN_LOOP_ALIGNED __attribute__((noinline, aligned(64)))
#else
#define SCAN_LOOP_ALIGNED
#endif

/* Returns the offset of the closing quote of the string literal whose contents begin at s[i]
 * (len when the text ends first, with STR_ODD) and sets *flags. A backslash escapes the byte
 * after it, as in jansson's lexer. Plain printable ASCII goes 16 bytes per step. */
SCAN_LOOP_ALIGNED static size_t scan_string(const char *s, size_t len, size_t i, unsigned *flags)
{
    unsigned f = 0;
    for (;;) {
#if defined(__SSE2__)
        const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'),
                      space = _mm_set1_epi8(0x20);
        while (len - i >= 16) {
            const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
            __m128i m = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash));
            if (!(f & STR_ODD)) {
                /* signed: bytes 0x80..0xff are negative, so this also finds non-ASCII */
                m = _mm_or_si128(m, _mm_cmplt_epi8(v, space));
            }
            const unsigned bits = (unsigned)_mm_movemask_epi8(m);
            if (bits) {
                i += (size_t)__builtin_ctz(bits);
                break;
            }
            i += 16;
        }
#endif
        while (i < len) {
            const unsigned char c = (unsigned char)s[i];
            if (c == '"' || c == '\\' || (!(f & STR_ODD) && (c < 0x20 || c >= 0x80))) {
                break;
            }
            i++;
        }
        if (i >= len) {
            *flags = f | STR_ODD;
            return len;
        }
        const char c = s[i];
        if (c == '"') {
            *flags = f;
            return i;
        }
        if (c == '\\') {
            if (i + 1 >= len) {
                *flags = f | STR_ODD;
                return len;
            }
            i = escape_end(s, len, i, &f);
        } else {
            f |= STR_ODD; /* a control character or a byte of UTF-8: jansson decides */
            i++;
        }
    }
}

/* Where the text came from, for messages: "body", or "part 'NAME'" of a multipart body. */
static const char *origin(const char *part, char *buf, size_t len)
{
    if (!part) {
        return "body";
    }
    snprintf(buf, len, "part '%.64s'", part);
    return buf;
}

/* Levels whose kind the scan remembers; deeper strings are never replaced. */
#define SCAN_STACK 64

struct level {
    unsigned char obj;   /* an object (else a list) */
    unsigned char owned; /* a list that is the value of "data"/"counts" (or inside one) */
};

/* Appends a string left out of the parse to doc's table. Returns 0 or SL_ENOMEM. */
static int add_string(struct slp__jdoc *doc, size_t off, size_t len, int escaped)
{
    const struct slp__jstr e = {.off = off, .len = len, .escaped = escaped};
    if (slp_dynbuf_add(&doc->table, &e, sizeof e) != 0) {
        /* over the cap cannot happen (each string takes SLP__JSON_LONG bytes of the text) */
        return SL_ENOMEM;
    }
    /* the records live in the buffer's (malloc'd, so suitably aligned) data */
    doc->strs = (struct slp__jstr *)(void *)doc->table.data;
    doc->n++;
    return 0;
}

/* Digits of k in decimal. */
static size_t digits(size_t k)
{
    size_t n = 1;
    while (k >= 10) {
        k /= 10;
        n++;
    }
    return n;
}

/* Writes the skeleton of doc's text (doc->n > 0). Returns 0 or SL_ENOMEM. */
static int build_skeleton(struct slp__jdoc *doc)
{
    size_t total = doc->len;
    for (size_t k = 0; k < doc->n; k++) {
        /* every replaced string is at least SLP__JSON_LONG bytes: the text only shrinks */
        total = total - doc->strs[k].len + PLACEHOLDER_LEN + digits(k);
    }
    char *o = malloc(total ? total : 1);
    if (!o) {
        return SL_ENOMEM;
    }
    size_t at = 0, from = 0;
    for (size_t k = 0; k < doc->n; k++) {
        const struct slp__jstr *e = &doc->strs[k];
        memcpy(o + at, doc->text + from, e->off - from);
        at += e->off - from;
        memcpy(o + at, placeholder, PLACEHOLDER_LEN);
        at += PLACEHOLDER_LEN;
        char num[24];
        const int w = snprintf(num, sizeof num, "%zu", k);
        memcpy(o + at, num, (size_t)w);
        at += (size_t)w;
        from = e->off + e->len;
    }
    memcpy(o + at, doc->text + from, doc->len - from);
    at += doc->len - from;
    doc->skel = o;
    doc->skel_len = at;
    return 0;
}

int slp__json_skeleton(const char *s, size_t len, const struct slp_limits *lim, const char *part,
                       struct slp__jdoc *doc, char *msg, size_t msglen)
{
    const int max_depth = lim->max_depth;
    const int64_t max_values = lim->max_json_values;
    int depth = 0;
    int64_t values = 1; /* the top-level value */
    char where[80];
    struct level st[SCAN_STACK];
    int expect_key = 0; /* in an object, before a member's ':' */
    int key_owned = 0;  /* the current member's key is "data" or "counts" */
    int nul = 0;
    memset(doc, 0, sizeof *doc);
    doc->text = s;
    doc->len = len;
    slp_dynbuf_init(&doc->table, (len / SLP__JSON_LONG + 1) * sizeof(struct slp__jstr));
    size_t i = 0;
    while (i < len) {
        const char c = s[i++];
        if (c == '"') {
            unsigned f = 0;
            const size_t q = scan_string(s, len, i, &f);
            const struct level *top = depth > 0 && depth <= SCAN_STACK ? &st[depth - 1] : NULL;
            nul |= (f & STR_NUL) != 0;
            if (top && top->obj && expect_key) {
                const size_t n = q - i;
                key_owned = (n == 4 && memcmp(s + i, "data", 4) == 0) ||
                            (n == 6 && memcmp(s + i, "counts", 6) == 0);
                expect_key = 0;
            } else if (top && (top->obj ? key_owned : top->owned) && q - i >= SLP__JSON_LONG &&
                       !(f & (STR_ODD | STR_NUL))) {
                if (add_string(doc, i, q - i, (f & STR_ESC) != 0)) {
                    slp__jdoc_free(doc);
                    snprintf(msg, msglen, "out of memory while scanning the JSON %s",
                             origin(part, where, sizeof where));
                    return SL_ENOMEM;
                }
            }
            i = q < len ? q + 1 : len;
        } else if (c == ']' || c == '}') {
            /* a stray closer is jansson's to report; the count must not go negative */
            if (depth > 0) {
                depth--;
            }
            expect_key = 0;
        } else if (c == '[' || c == '{' || c == ',') {
            if (c != ',' && max_depth > 0 && ++depth > max_depth) {
                snprintf(msg, msglen,
                         "JSON nesting deeper than %d levels at byte %zu%s%s (--max-spec-depth)",
                         max_depth, i - 1, part ? " of " : "",
                         part ? origin(part, where, sizeof where) : "");
                slp__jdoc_free(doc);
                return SL_ETOOLARGE;
            }
            if (++values > max_values && max_values > 0) {
                snprintf(msg, msglen,
                         "JSON %s has more than %lld values (--max-json-values); send large "
                         "arrays as base64 raw/npy",
                         origin(part, where, sizeof where), (long long)max_values);
                slp__jdoc_free(doc);
                return SL_ETOOLARGE;
            }
            if (c == ',') {
                expect_key = depth > 0 && depth <= SCAN_STACK && st[depth - 1].obj;
                continue;
            }
            if (max_depth <= 0) {
                depth++; /* counted above when there is a limit */
            }
            /* the new container is at level depth - 1; its parent at depth - 2 */
            const struct level *up = depth > 1 && depth - 1 <= SCAN_STACK ? &st[depth - 2] : NULL;
            if (depth <= SCAN_STACK) {
                st[depth - 1].obj = c == '{';
                st[depth - 1].owned = c == '[' && up && (up->obj ? key_owned : up->owned);
            }
            expect_key = c == '{';
        } else if (c == ':') {
            expect_key = 0;
        }
    }
    if (nul) {
        /* jansson must see the text as it is, without JSON_ALLOW_NUL, to refuse it */
        doc->n = 0;
    }
    if (doc->n > 0 && build_skeleton(doc) != 0) {
        slp__jdoc_free(doc);
        snprintf(msg, msglen, "out of memory while scanning the JSON %s",
                 origin(part, where, sizeof where));
        return SL_ENOMEM;
    }
    return 0;
}

int slp__json_parse(struct slp__jdoc *doc, const char *part, json_t **root, char *msg,
                    size_t msglen)
{
    json_error_t e;
    json_t *j = NULL;
    *root = NULL;
    if (doc->skel) {
        j = json_loadb(doc->skel, doc->skel_len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &e);
        free(doc->skel);
        doc->skel = NULL;
        if (!j) {
            doc->n = 0; /* parse the text itself below: its error, as jansson words it */
        }
    }
    if (!j) {
        j = json_loadb(doc->text, doc->len, JSON_REJECT_DUPLICATES, &e);
    }
    if (!j) {
        if (part) {
            snprintf(msg, msglen, "malformed JSON in part '%.64s' at line %d, column %d: %s", part,
                     e.line, e.column, e.text);
        } else {
            snprintf(msg, msglen, "malformed JSON at line %d, column %d: %s", e.line, e.column,
                     e.text);
        }
        return SL_EMALFORMED;
    }
    *root = j;
    return 0;
}

int slp__json_load(const char *s, size_t len, const struct slp_limits *lim, const char *part,
                   struct slp__jdoc *doc, json_t **root, char *msg, size_t msglen)
{
    *root = NULL;
    int rc = slp__json_skeleton(s, len, lim, part, doc, msg, msglen);
    if (!rc) {
        rc = slp__json_parse(doc, part, root, msg, msglen);
    }
    if (rc) {
        slp__jdoc_free(doc);
    }
    return rc;
}

/* Appends code point u (1..0xffff, no surrogate) to o as UTF-8; returns the bytes written. */
static size_t put_utf8(unsigned char *o, long u)
{
    if (u < 0x80) {
        o[0] = (unsigned char)u;
        return 1;
    }
    if (u < 0x800) {
        o[0] = (unsigned char)(0xc0 | u >> 6);
        o[1] = (unsigned char)(0x80 | (u & 0x3f));
        return 2;
    }
    o[0] = (unsigned char)(0xe0 | u >> 12);
    o[1] = (unsigned char)(0x80 | ((u >> 6) & 0x3f));
    o[2] = (unsigned char)(0x80 | (u & 0x3f));
    return 3;
}

int slp__json_unescape(const char *s, size_t len, char **out, size_t *outlen)
{
    /* an escape of k bytes yields at most k - 3 bytes (\uXXXX: 6 -> 3) or 1 (\n: 2 -> 1) */
    unsigned char *o = malloc(len ? len : 1);
    size_t at = 0;
    *out = NULL;
    *outlen = 0;
    if (!o) {
        return SL_ENOMEM;
    }
    size_t i = 0;
    while (i < len) {
        const char *b = memchr(s + i, '\\', len - i);
        size_t plain = b ? (size_t)(b - (s + i)) : len - i;
        memcpy(o + at, s + i, plain);
        at += plain;
        i += plain;
        if (!b) {
            break;
        }
        if (i + 1 >= len) {
            free(o);
            return SL_EINTERNAL; /* the scan proved every escape complete */
        }
        const char e = s[i + 1];
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        const char *k = e ? strchr(from, e) : NULL;
        if (k) {
            o[at++] = (unsigned char)to[k - from];
            i += 2;
            continue;
        }
        long u = e == 'u' && i + 6 <= len ? hex4(s + i + 2) : -1;
        if (u <= 0 || (u >= 0xd800 && u <= 0xdfff)) {
            free(o);
            return SL_EINTERNAL;
        }
        at += put_utf8(o + at, u);
        i += 6;
    }
    *out = (char *)o;
    *outlen = at;
    return 0;
}

int slp__jdoc_string(struct slp__jdoc *doc, const json_t *j, const char **s, size_t *len)
{
    const char *v = json_string_value(j);
    size_t n = json_string_length(j);
    *s = v;
    *len = n;
    if (!doc || doc->n == 0 || !v || n <= PLACEHOLDER_VALUE_LEN ||
        memcmp(v, placeholder_value, PLACEHOLDER_VALUE_LEN) != 0) {
        return 0;
    }
    size_t k = 0;
    for (size_t i = PLACEHOLDER_VALUE_LEN; i < n; i++) {
        if (v[i] < '0' || v[i] > '9' || k > (SIZE_MAX - 9) / 10) {
            return 0;
        }
        k = k * 10 + (size_t)(v[i] - '0');
    }
    if (k >= doc->n) {
        return 0;
    }
    struct slp__jstr *e = &doc->strs[k];
    if (!e->escaped) {
        *s = doc->text + e->off;
        *len = e->len;
        return 0;
    }
    if (!e->unesc) {
        int rc = slp__json_unescape(doc->text + e->off, e->len, &e->unesc, &e->unesc_len);
        if (rc) {
            return rc;
        }
    }
    *s = e->unesc;
    *len = e->unesc_len;
    return 0;
}

void slp__jdoc_free(struct slp__jdoc *doc)
{
    if (!doc) {
        return;
    }
    for (size_t k = 0; k < doc->n; k++) {
        free(doc->strs[k].unesc);
    }
    slp_dynbuf_free(&doc->table);
    free(doc->skel);
    memset(doc, 0, sizeof *doc);
}
