/* test_array.c - proto/array.h: base64, bounded inflate, .npy headers and wire arrays.
 * Every expected value is written here by hand (RFC 4648 vectors, IEEE bit patterns, byte
 * orders worked out on paper) or is the test's own input coming back unchanged. */
#define ZLIB_CONST /* as proto/array_internal.h: next_in is const */

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "../check.h"
#include "array.h"
#include "array_internal.h"

#define MSGLEN 256

/* ---- helpers: the test's own encoders (checked against RFC 4648 below) ---- */

static char *b64enc(const unsigned char *p, size_t n)
{
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *o = malloc((n + 2) / 3 * 4 + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n) {
            v |= (uint32_t)p[i + 1] << 8;
        }
        if (i + 2 < n) {
            v |= p[i + 2];
        }
        o[k++] = alpha[(v >> 18) & 63];
        o[k++] = alpha[(v >> 12) & 63];
        o[k++] = i + 1 < n ? alpha[(v >> 6) & 63] : '=';
        o[k++] = i + 2 < n ? alpha[v & 63] : '=';
    }
    o[k] = '\0';
    return o;
}

/* deflate with the given windowBits (31 gzip, 15 zlib, -15 raw) */
static unsigned char *zpack(const void *in, size_t len, int wbits, size_t *outlen)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, 6, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        return NULL;
    }
    size_t cap = deflateBound(&zs, (uLong)len) + 32;
    unsigned char *o = malloc(cap);
    zs.next_in = (const Bytef *)in;
    zs.avail_in = (uInt)len;
    zs.next_out = o;
    zs.avail_out = (uInt)cap;
    int ret = deflate(&zs, Z_FINISH);
    *outlen = cap - zs.avail_out;
    deflateEnd(&zs);
    if (ret != Z_STREAM_END) {
        free(o);
        return NULL;
    }
    return o;
}

/* .npy bytes: preamble of version major, dict, spaces up to a multiple of align, '\n', data. */
static unsigned char *npy_build(int major, const char *dict, size_t align, const void *data,
                                size_t dlen, size_t *outlen)
{
    size_t pre = major == 1 ? 10 : 12;
    size_t dl = strlen(dict);
    size_t total = pre + dl + 1;
    size_t pad = align ? (align - total % align) % align : 0;
    size_t hlen = dl + pad + 1;
    unsigned char *b = malloc(pre + hlen + dlen + 1);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)major;
    b[7] = 0;
    b[8] = (unsigned char)(hlen & 0xff);
    b[9] = (unsigned char)(hlen >> 8);
    if (major > 1) {
        b[10] = (unsigned char)(hlen >> 16);
        b[11] = (unsigned char)(hlen >> 24);
    }
    memcpy(b + pre, dict, dl);
    memset(b + pre + dl, ' ', pad);
    b[pre + dl + pad] = '\n';
    if (dlen) {
        memcpy(b + pre + hlen, data, dlen);
    }
    *outlen = pre + hlen + dlen;
    return b;
}

static char *strf(const char *fmt, ...) SLP__PRINTF(1, 2);
static char *strf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* Parses the literal JSON and decodes it; the JSON is freed before returning, so a passing
 * test also shows the array owns its bytes. */
static int run(const char *json, const char *name, const struct slp_limits *lim,
               struct slp_array *a, char *msg)
{
    json_error_t e;
    json_t *j = json_loads(json, JSON_DECODE_ANY, &e);
    if (!j) {
        fprintf(stderr, "test JSON does not parse: %s: %.80s\n", e.text, json);
        memset(a, 0, sizeof *a);
        msg[0] = '\0';
        return 999;
    }
    int rc = slp_array_from_json(j, name, lim, a, msg, MSGLEN);
    json_decref(j);
    return rc;
}

/* {"format": fmt, "data": base64(bytes), extra...} decoded as name. */
static int run_b64(const char *fmt, const void *bytes, size_t n, const char *extra,
                   const char *name, const struct slp_limits *lim, struct slp_array *a, char *msg)
{
    char *b = b64enc(bytes, n);
    char *js = strf("{\"format\": \"%s\", \"data\": \"%s\"%s%s}", fmt, b, extra ? ", " : "",
                    extra ? extra : "");
    int rc = run(js, name, lim, a, msg);
    free(js);
    free(b);
    return rc;
}

#define CHECK_FAILS(rc_expr, code, prefix)                                                         \
    do {                                                                                           \
        struct slp_array a_;                                                                       \
        char m_[MSGLEN];                                                                           \
        int rc_ = (rc_expr);                                                                       \
        CHECK_INT(rc_, code);                                                                      \
        CHECK_PREFIX(m_, prefix);                                                                  \
        CHECK(a_.buf == NULL && a_.t.data == NULL && a_.t.ndim == 0);                              \
    } while (0)

/* a_ and m_ are the names CHECK_FAILS provides to its expression */
#define RUN(json, name) run((json), (name), NULL, &a_, m_)

static const struct slp_limits *small_limits(int64_t elems, size_t bytes)
{
    static struct slp_limits l;
    l.max_elements = elems;
    l.max_array_bytes = bytes;
    return &l;
}

/* ---- base64 ---- */

static void test_base64(void)
{
    /* RFC 4648 section 10 */
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const enc[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                      "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    static const char *const bare[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    char m[MSGLEN];
    for (int i = 0; i < 7; i++) {
        unsigned char *out = NULL;
        size_t n = 99;
        char *e = b64enc((const unsigned char *)plain[i], strlen(plain[i]));
        CHECK(strcmp(e, enc[i]) == 0);
        free(e);
        CHECK_INT(slp_base64_decode(enc[i], strlen(enc[i]), 100, &out, &n, "x", m, MSGLEN), 0);
        CHECK_INT(n, strlen(plain[i]));
        CHECK(out && memcmp(out, plain[i], n) == 0);
        free(out);
        out = NULL;
        CHECK_INT(slp_base64_decode(bare[i], strlen(bare[i]), 100, &out, &n, "x", m, MSGLEN), 0);
        CHECK_INT(n, strlen(plain[i]));
        CHECK(out && memcmp(out, plain[i], n) == 0);
        free(out);
    }
    /* every byte value: "AAECAwQFBgcICQoLDA0ODw==" is 00..0f (hand-checked groups) */
    {
        unsigned char *out = NULL;
        size_t n = 0;
        const char *s = "AAECAwQFBgcICQoLDA0ODw==";
        CHECK_INT(slp_base64_decode(s, strlen(s), 100, &out, &n, "x", m, MSGLEN), 0);
        CHECK_INT(n, 16);
        for (size_t i = 0; out && i < 16; i++) {
            CHECK_INT(out[i], i);
        }
        free(out);
        s = "+/+/";
        CHECK_INT(slp_base64_decode(s, strlen(s), 100, &out, &n, "x", m, MSGLEN), 0);
        CHECK(n == 3 && out[0] == 0xfb && out[1] == 0xff && out[2] == 0xbf);
        free(out);
    }
    struct {
        const char *in;
        int code;
        const char *msg;
    } bad[] = {
        {"Zm9v!mFy", SL_EMALFORMED, "prediction.data: invalid base64 at offset 4"},
        {"Zm 9v", SL_EMALFORMED, "prediction.data: invalid base64 at offset 2"},
        {"Zm9v\nYmFy", SL_EMALFORMED, "prediction.data: invalid base64 at offset 4"},
        {"Zm=v", SL_EMALFORMED, "prediction.data: invalid base64 at offset 2"},
        {"Zm9v-_", SL_EMALFORMED, "prediction.data: invalid base64 at offset 4"},
        {"Zg=", SL_EMALFORMED, "prediction.data: invalid base64 at offset 3"},
        {"Zg===", SL_EMALFORMED, "prediction.data: invalid base64 at offset 4"},
        {"Zm9v=", SL_EMALFORMED, "prediction.data: invalid base64 at offset 4"},
        {"Zm8==", SL_EMALFORMED, "prediction.data: invalid base64 at offset 4"},
        {"Z", SL_EMALFORMED, "prediction.data: invalid base64 at offset 0"},
        {"Zm9vY", SL_EMALFORMED, "prediction.data: invalid base64 at offset 4"},
        {"==", SL_EMALFORMED, "prediction.data: invalid base64 at offset 0"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unsigned char *out = (unsigned char *)"sentinel";
        size_t n = 5;
        int rc = slp_base64_decode(bad[i].in, strlen(bad[i].in), 100, &out, &n, "prediction.data",
                                   m, MSGLEN);
        CHECK_INT(rc, bad[i].code);
        CHECK_PREFIX(m, bad[i].msg);
        CHECK(out == NULL && n == 0);
    }
    /* over max_out: 6 bytes with a limit of 5 */
    {
        unsigned char *out = NULL;
        size_t n = 0;
        CHECK_INT(slp_base64_decode("Zm9vYmFy", 8, 5, &out, &n, "x", m, MSGLEN), SL_ETOOLARGE);
        CHECK(out == NULL);
    }
    /* decoding a range: bytes 1..4 of "foobar" are "ooba"; 2..2 of "foobar" is "o" */
    {
        unsigned char o[8] = {0};
        CHECK_INT(slp__base64_decode_range("Zm9vYmFy", 8, 1, 4, o, "x", m, MSGLEN), 0);
        CHECK(memcmp(o, "ooba", 4) == 0);
        CHECK_INT(slp__base64_decode_range("Zm9vYmE=", 8, 4, 1, o, "x", m, MSGLEN), 0);
        CHECK(o[0] == 'a');
        CHECK_INT(slp__base64_decode_range("Zm9vYmFy", 8, 5, 2, o, "x", m, MSGLEN), SL_EINTERNAL);
    }
}

/* ---- inflate ---- */

static void test_inflate(void)
{
    unsigned char src[64];
    unsigned char out[64];
    char m[MSGLEN];
    for (int i = 0; i < 64; i++) {
        src[i] = (unsigned char)(i * 7 + 3);
    }
    /* zlib via compress2, as zlib's own one-shot API writes it */
    uLongf zlen = compressBound(64);
    unsigned char *zb = malloc(zlen);
    CHECK_INT(compress2(zb, &zlen, src, 64, 9), Z_OK);
    CHECK_INT(slp_inflate_exact(zb, zlen, SLP_COMP_ZLIB, out, 64, "p", m, MSGLEN), 0);
    CHECK(memcmp(out, src, 64) == 0);
    memset(out, 0, sizeof out);
    CHECK_INT(slp_inflate_exact(zb, zlen, SLP_COMP_AUTO, out, 64, "p", m, MSGLEN), 0);
    CHECK(memcmp(out, src, 64) == 0);
    /* expecting 65 from a 64-byte stream, and 63 */
    unsigned char big[65];
    CHECK_INT(slp_inflate_exact(zb, zlen, SLP_COMP_ZLIB, big, 65, "p", m, MSGLEN), SL_ESIZE);
    CHECK_PREFIX(m, "p: expected 65 bytes, got 64");
    CHECK_INT(slp_inflate_exact(zb, zlen, SLP_COMP_ZLIB, out, 63, "p", m, MSGLEN), SL_ESIZE);
    CHECK_PREFIX(m, "p: expected 63 bytes, got at least 64");
    /* corrupt Adler-32 trailer */
    zb[zlen - 1] ^= 0x55;
    CHECK_INT(slp_inflate_exact(zb, zlen, SLP_COMP_ZLIB, out, 64, "p", m, MSGLEN), SL_EMALFORMED);
    CHECK_HAS(m, "incorrect data check");
    zb[zlen - 1] ^= 0x55;
    /* trailing garbage after the zlib stream */
    unsigned char *zt = malloc(zlen + 2);
    memcpy(zt, zb, zlen);
    zt[zlen] = 'x';
    zt[zlen + 1] = 'y';
    CHECK_INT(slp_inflate_exact(zt, zlen + 2, SLP_COMP_ZLIB, out, 64, "p", m, MSGLEN),
              SL_EMALFORMED);
    CHECK_PREFIX(m, "p: 2 bytes of trailing data after the end of the zlib stream");
    free(zt);
    /* truncated: the last byte of the trailer is missing */
    CHECK_INT(slp_inflate_exact(zb, zlen - 1, SLP_COMP_ZLIB, out, 64, "p", m, MSGLEN),
              SL_EMALFORMED);
    CHECK_HAS(m, "truncated");
    free(zb);

    /* gzip */
    size_t glen = 0;
    unsigned char *gz = zpack(src, 64, 31, &glen);
    CHECK(gz && gz[0] == 0x1f && gz[1] == 0x8b);
    memset(out, 0, sizeof out);
    CHECK_INT(slp_inflate_exact(gz, glen, SLP_COMP_GZIP, out, 64, "p", m, MSGLEN), 0);
    CHECK(memcmp(out, src, 64) == 0);
    memset(out, 0, sizeof out);
    CHECK_INT(slp_inflate_exact(gz, glen, SLP_COMP_AUTO, out, 64, "p", m, MSGLEN), 0);
    CHECK(memcmp(out, src, 64) == 0);
    /* a gzip stream read as zlib */
    CHECK_INT(slp_inflate_exact(gz, glen, SLP_COMP_ZLIB, out, 64, "p", m, MSGLEN), SL_EMALFORMED);
    CHECK_HAS(m, "incorrect header check");
    /* CRC-32 in the trailer (bytes len-8 .. len-5) */
    gz[glen - 8] ^= 1;
    CHECK_INT(slp_inflate_exact(gz, glen, SLP_COMP_GZIP, out, 64, "p", m, MSGLEN), SL_EMALFORMED);
    CHECK_PREFIX(m, "p: corrupt gzip stream: incorrect data check");
    gz[glen - 8] ^= 1;
    /* CM byte must be 8 */
    gz[2] = 7;
    CHECK_INT(slp_inflate_exact(gz, glen, SLP_COMP_GZIP, out, 64, "p", m, MSGLEN), SL_EMALFORMED);
    gz[2] = 8;
    /* without ISIZE */
    CHECK_INT(slp_inflate_exact(gz, glen - 4, SLP_COMP_GZIP, out, 64, "p", m, MSGLEN),
              SL_EMALFORMED);
    CHECK_HAS(m, "truncated");
    /* two members: first 40 bytes, then the last 24, read as one stream */
    {
        size_t l1 = 0, l2 = 0;
        unsigned char *g1 = zpack(src, 40, 31, &l1);
        unsigned char *g2 = zpack(src + 40, 24, 31, &l2);
        unsigned char *cat = malloc(l1 + l2 + 3);
        memcpy(cat, g1, l1);
        memcpy(cat + l1, g2, l2);
        memset(out, 0, sizeof out);
        CHECK_INT(slp_inflate_exact(cat, l1 + l2, SLP_COMP_GZIP, out, 64, "p", m, MSGLEN), 0);
        CHECK(memcmp(out, src, 64) == 0);
        memcpy(cat + l1 + l2, "abc", 3);
        CHECK_INT(slp_inflate_exact(cat, l1 + l2 + 3, SLP_COMP_GZIP, out, 64, "p", m, MSGLEN),
                  SL_EMALFORMED);
        CHECK_PREFIX(m, "p: 3 bytes of trailing data after the end of the gzip stream");
        /* a zlib stream has one member: the second gzip member is trailing data */
        free(g1);
        free(g2);
        free(cat);
    }
    free(gz);

    /* raw deflate */
    size_t dlen = 0;
    unsigned char *df = zpack(src, 64, -15, &dlen);
    memset(out, 0, sizeof out);
    CHECK_INT(slp_inflate_exact(df, dlen, SLP_COMP_DEFLATE, out, 64, "p", m, MSGLEN), 0);
    CHECK(memcmp(out, src, 64) == 0);
    /* BFINAL=1, BTYPE=11 (reserved) */
    unsigned char keep = df[0];
    df[0] = 0x07;
    CHECK_INT(slp_inflate_exact(df, dlen, SLP_COMP_DEFLATE, out, 64, "p", m, MSGLEN),
              SL_EMALFORMED);
    CHECK_PREFIX(m, "p: corrupt deflate stream: invalid block type");
    df[0] = keep;
    free(df);

    /* auto on bytes that are neither gzip nor zlib */
    CHECK_INT(slp_inflate_exact((const unsigned char *)"\x01\x02\x03", 3, SLP_COMP_AUTO, out, 3,
                                "p", m, MSGLEN),
              SL_EMALFORMED);
    CHECK_PREFIX(m, "p: compression 'auto' found neither a gzip nor a zlib header");
    /* none: a plain exact copy */
    CHECK_INT(slp_inflate_exact(src, 64, SLP_COMP_NONE, out, 64, "p", m, MSGLEN), 0);
    CHECK_INT(slp_inflate_exact(src, 64, SLP_COMP_NONE, out, 63, "p", m, MSGLEN), SL_ESIZE);
    CHECK_PREFIX(m, "p: expected 63 bytes, got 64");

    /* bomb: 1 MiB of zeros (about 1 KiB compressed) into 64 bytes */
    {
        size_t n = 1 << 20, blen = 0;
        unsigned char *zeros = calloc(n, 1);
        unsigned char *bomb = zpack(zeros, n, 31, &blen);
        CHECK(bomb && blen < 4096);
        CHECK_INT(slp_inflate_exact(bomb, blen, SLP_COMP_GZIP, out, 64, "p", m, MSGLEN), SL_ESIZE);
        CHECK_PREFIX(m, "p: expected 64 bytes, got at least 65");
        free(bomb);
        free(zeros);
    }
}

/* ---- the fast paths: base64 32 characters a step (AVX2), libdeflate ---- */

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static int in_alphabet(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

static void test_base64_fast(void)
{
    char m[MSGLEN];
    uint64_t rs = 42;
    /* random bytes of every length up to 400 and a few large ones come back; every range of
     * them decodes to the same bytes */
    static const size_t big[] = {4095, 4096, 4097, 100000, 100001, 100002};
    for (size_t k = 0; k < 401 + sizeof big / sizeof big[0]; k++) {
        size_t n = k < 401 ? k : big[k - 401];
        unsigned char *src = malloc(n + 1);
        for (size_t i = 0; i < n; i++) {
            src[i] = (unsigned char)(rng_next(&rs) >> 24);
        }
        char *e = b64enc(src, n);
        unsigned char *out = NULL;
        size_t got = 0;
        /* padded and unpadded */
        for (int pad = 0; pad < 2; pad++) {
            size_t len = strlen(e);
            while (pad && len && e[len - 1] == '=') {
                len--;
            }
            int rc = slp_base64_decode(e, len, SIZE_MAX, &out, &got, "x", m, MSGLEN);
            CHECK(rc == 0 && got == n && (n == 0 || memcmp(out, src, n) == 0));
            free(out);
            out = NULL;
        }
        if (n > 0) {
            unsigned char *o = malloc(n);
            for (int r = 0; r < 4; r++) {
                size_t a = (size_t)(rng_next(&rs) % n), b = (size_t)(rng_next(&rs) % (n - a + 1));
                int rc = slp__base64_decode_range(e, strlen(e), a, b, o, "x", m, MSGLEN);
                CHECK(rc == 0 && (b == 0 || memcmp(o, src + a, b) == 0));
            }
            free(o);
        }
        free(e);
        free(src);
    }
    /* every byte value at positions inside and at the edges of the 32-character steps: the
     * alphabet decodes, anything else is named at its offset (the text is 1000 characters, so
     * '=' is padding only at the end, which is not tried) */
    {
        unsigned char src[750];
        for (size_t i = 0; i < sizeof src; i++) {
            src[i] = (unsigned char)(i * 37 + 11);
        }
        char *e = b64enc(src, sizeof src);
        CHECK_INT(strlen(e), 1000);
        static const size_t pos[] = {0,   1,   3,   4,   31,  32,  33,  63, 64,
                                     100, 500, 640, 900, 955, 956, 960, 997};
        int wrong = 0;
        for (size_t k = 0; k < sizeof pos / sizeof pos[0]; k++) {
            for (int c = 0; c < 256; c++) {
                char keep = e[pos[k]];
                e[pos[k]] = (char)c;
                unsigned char *out = NULL;
                size_t got = 0;
                int rc = slp_base64_decode(e, 1000, SIZE_MAX, &out, &got, "x", m, MSGLEN);
                char want[64];
                snprintf(want, sizeof want, "x: invalid base64 at offset %zu", pos[k]);
                if (in_alphabet(c)) {
                    wrong += rc != 0 || got != 750;
                } else {
                    wrong += rc != SL_EMALFORMED || strncmp(m, want, strlen(want)) != 0 ||
                             (m[strlen(want)] != '\0' && m[strlen(want)] != ':');
                }
                free(out);
                e[pos[k]] = keep;
            }
        }
        CHECK_INT(wrong, 0);
        /* two bad characters: the first is named */
        e[700] = '*';
        e[300] = '-';
        unsigned char *out = NULL;
        size_t got = 0;
        CHECK_INT(slp_base64_decode(e, 1000, SIZE_MAX, &out, &got, "x", m, MSGLEN), SL_EMALFORMED);
        CHECK_PREFIX(m, "x: invalid base64 at offset 300");
        CHECK(out == NULL);
        free(e);
    }
}

/* A gzip member of in (via raw deflate) with the header flags flg; FHCRC (0x02) adds the header
 * CRC-16 (RFC 1952: the low 16 bits of the CRC-32 of the header bytes before it), bad_hcrc
 * spoils it. */
static unsigned char *gzip_with_flags(const unsigned char *in, size_t len, unsigned char flg,
                                      int bad_hcrc, size_t *outlen)
{
    size_t dl = 0;
    unsigned char *d = zpack(in, len, -15, &dl);
    unsigned char *g = malloc(12 + dl + 8);
    static const unsigned char head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    memcpy(g, head, 10);
    g[3] = flg;
    size_t at = 10;
    if (flg & 0x02) {
        uLong h = crc32(0L, g, 10) ^ (bad_hcrc ? 1u : 0u);
        g[at++] = (unsigned char)(h & 0xff);
        g[at++] = (unsigned char)((h >> 8) & 0xff);
    }
    memcpy(g + at, d, dl);
    at += dl;
    uLong c = crc32(0L, in, (uInt)len);
    for (int k = 0; k < 4; k++) {
        g[at++] = (unsigned char)(c >> (8 * k));
    }
    for (int k = 0; k < 4; k++) {
        g[at++] = (unsigned char)(len >> (8 * k));
    }
    free(d);
    *outlen = at;
    return g;
}

static void test_inflate_fast(void)
{
    char m[MSGLEN];
    unsigned char src[3000], out[3001];
    for (size_t i = 0; i < sizeof src; i++) {
        src[i] = (unsigned char)((i * i) % 251); /* some repeats, mostly literals */
    }
    /* libdeflate takes a complete stream of exactly the size, of each kind */
    static const struct {
        int wbits, kind;
    } kinds[] = {{31, SLP_COMP_GZIP}, {15, SLP_COMP_ZLIB}, {-15, SLP_COMP_DEFLATE}};
    for (size_t k = 0; k < 3; k++) {
        size_t zl = 0;
        unsigned char *z = zpack(src, sizeof src, kinds[k].wbits, &zl);
        memset(out, 0, sizeof out);
        CHECK_INT(slp__inflate_whole(z, zl, kinds[k].kind, out, sizeof src), 1);
        CHECK(memcmp(out, src, sizeof src) == 0);
        /* one byte short or long, and a stream cut or followed by a byte: zlib's turn */
        CHECK_INT(slp__inflate_whole(z, zl, kinds[k].kind, out, sizeof src - 1), 0);
        CHECK_INT(slp__inflate_whole(z, zl, kinds[k].kind, out, sizeof src + 1), 0);
        CHECK_INT(slp__inflate_whole(z, zl - 1, kinds[k].kind, out, sizeof src), 0);
        unsigned char *zt = malloc(zl + 1);
        memcpy(zt, z, zl);
        zt[zl] = 0;
        CHECK_INT(slp__inflate_whole(zt, zl + 1, kinds[k].kind, out, sizeof src), 0);
        /* and zlib says the same as before for each */
        CHECK_INT(slp_inflate_exact(z, zl, (enum slp_compression)kinds[k].kind, out, sizeof src - 1,
                                    "p", m, MSGLEN),
                  SL_ESIZE);
        CHECK_PREFIX(m, "p: expected 2999 bytes, got at least 3000 after inflating");
        CHECK_INT(slp_inflate_exact(z, zl, (enum slp_compression)kinds[k].kind, out, sizeof src + 1,
                                    "p", m, MSGLEN),
                  SL_ESIZE);
        CHECK_PREFIX(m, "p: expected 3001 bytes, got 3000 after inflating");
        if (kinds[k].kind != SLP_COMP_DEFLATE) {
            /* a raw deflate stream cannot tell a missing trailer byte from the end */
            CHECK_INT(slp_inflate_exact(z, zl - 1, (enum slp_compression)kinds[k].kind, out,
                                        sizeof src, "p", m, MSGLEN),
                      SL_EMALFORMED);
            CHECK_HAS(m, "truncated");
        }
        CHECK_INT(slp_inflate_exact(zt, zl + 1, (enum slp_compression)kinds[k].kind, out,
                                    sizeof src, "p", m, MSGLEN),
                  SL_EMALFORMED);
        CHECK_HAS(m, "1 byte of trailing data after the end of the");
        free(zt);
        free(z);
    }
    /* gzip whose ISIZE lies (the size mod 2^32 in the trailer): refused, as zlib words it */
    {
        size_t gl = 0;
        unsigned char *g = zpack(src, sizeof src, 31, &gl);
        g[gl - 4] ^= 0x01; /* ISIZE 3000 -> 3001 */
        CHECK_INT(slp__inflate_whole(g, gl, SLP_COMP_GZIP, out, sizeof src), 0);
        CHECK_INT(slp_inflate_exact(g, gl, SLP_COMP_GZIP, out, sizeof src, "p", m, MSGLEN),
                  SL_EMALFORMED);
        CHECK_PREFIX(m, "p: corrupt gzip stream: incorrect length check");
        /* asked for the size it claims: zlib finds 3000 bytes and the lie */
        CHECK_INT(slp_inflate_exact(g, gl, SLP_COMP_GZIP, out, sizeof src + 1, "p", m, MSGLEN),
                  SL_EMALFORMED);
        CHECK_PREFIX(m, "p: corrupt gzip stream: incorrect length check");
        free(g);
    }
    /* a gzip header with a header CRC: libdeflate would not check it, so zlib does */
    {
        size_t gl = 0;
        unsigned char *g = gzip_with_flags(src, sizeof src, 0x02, 0, &gl);
        CHECK_INT(slp__inflate_whole(g, gl, SLP_COMP_GZIP, out, sizeof src), 0);
        memset(out, 0, sizeof out);
        CHECK_INT(slp_inflate_exact(g, gl, SLP_COMP_GZIP, out, sizeof src, "p", m, MSGLEN), 0);
        CHECK(memcmp(out, src, sizeof src) == 0);
        free(g);
        g = gzip_with_flags(src, sizeof src, 0x02, 1, &gl);
        CHECK_INT(slp_inflate_exact(g, gl, SLP_COMP_GZIP, out, sizeof src, "p", m, MSGLEN),
                  SL_EMALFORMED);
        CHECK_PREFIX(m, "p: corrupt gzip stream: header crc mismatch");
        free(g);
        /* reserved flag bits: refused by both */
        g = gzip_with_flags(src, sizeof src, 0x20, 0, &gl);
        CHECK_INT(slp__inflate_whole(g, gl, SLP_COMP_GZIP, out, sizeof src), 0);
        CHECK_INT(slp_inflate_exact(g, gl, SLP_COMP_GZIP, out, sizeof src, "p", m, MSGLEN),
                  SL_EMALFORMED);
        CHECK_PREFIX(m, "p: corrupt gzip stream: unknown header flags set");
        free(g);
        /* FNAME: the name is skipped by both */
        g = gzip_with_flags(src, sizeof src, 0x00, 0, &gl);
        unsigned char *named = malloc(gl + 4);
        memcpy(named, g, 10);
        named[3] = 0x08;
        memcpy(named + 10, "a.b", 4);
        memcpy(named + 14, g + 10, gl - 10);
        CHECK_INT(slp__inflate_whole(named, gl + 4, SLP_COMP_GZIP, out, sizeof src), 1);
        CHECK(memcmp(out, src, sizeof src) == 0);
        free(named);
        free(g);
    }
    /* zlib with a window under 32 KiB (CINFO 2): zlib's, which checks distances against it */
    {
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        CHECK_INT(deflateInit2(&zs, 6, Z_DEFLATED, 10, 8, Z_DEFAULT_STRATEGY), Z_OK);
        unsigned char z[4096];
        zs.next_in = src;
        zs.avail_in = sizeof src;
        zs.next_out = z;
        zs.avail_out = sizeof z;
        CHECK_INT(deflate(&zs, Z_FINISH), Z_STREAM_END);
        size_t zl = sizeof z - zs.avail_out;
        deflateEnd(&zs);
        CHECK_INT(z[0] >> 4, 2);
        CHECK_INT(slp__inflate_whole(z, zl, SLP_COMP_ZLIB, out, sizeof src), 0);
        memset(out, 0, sizeof out);
        CHECK_INT(slp_inflate_exact(z, zl, SLP_COMP_AUTO, out, sizeof src, "p", m, MSGLEN), 0);
        CHECK(memcmp(out, src, sizeof src) == 0);
    }
    /* bombs of each kind: 4 MiB of zeros into 3000 bytes, refused after 3001 */
    {
        size_t n = (size_t)4 << 20;
        unsigned char *zeros = calloc(n, 1);
        for (size_t k = 0; k < 3; k++) {
            size_t bl = 0;
            unsigned char *bomb = zpack(zeros, n, kinds[k].wbits, &bl);
            CHECK(bomb && bl < 8192);
            CHECK_INT(slp__inflate_whole(bomb, bl, kinds[k].kind, out, sizeof src), 0);
            CHECK_INT(slp_inflate_exact(bomb, bl, (enum slp_compression)kinds[k].kind, out,
                                        sizeof src, "p", m, MSGLEN),
                      SL_ESIZE);
            CHECK_PREFIX(m, "p: expected 3000 bytes, got at least 3001 after inflating");
            free(bomb);
        }
        free(zeros);
    }
    CHECK_INT(slp__compression_kind(SLP_COMP_AUTO, (const unsigned char *)"\x1f\x8b", 2),
              SLP_COMP_GZIP);
    CHECK_INT(slp__compression_kind(SLP_COMP_AUTO, (const unsigned char *)"\x78\x9c", 2),
              SLP_COMP_ZLIB);
    CHECK_INT(slp__compression_kind(SLP_COMP_AUTO, (const unsigned char *)"ab", 2), -1);
    CHECK_INT(slp__compression_kind(SLP_COMP_DEFLATE, (const unsigned char *)"ab", 2),
              SLP_COMP_DEFLATE);
}

/* ---- npy headers ---- */

/* float32 1..6 little-endian, by hand: 1.0f = 0x3f800000, 2 = 0x40000000, 3 = 0x40400000,
 * 4 = 0x40800000, 5 = 0x40a00000, 6 = 0x40c00000 */
#define F1 0x00, 0x00, 0x80, 0x3f
#define F2 0x00, 0x00, 0x00, 0x40
#define F3 0x00, 0x00, 0x40, 0x40
#define F4 0x00, 0x00, 0x80, 0x40
#define F5 0x00, 0x00, 0xa0, 0x40
#define F6 0x00, 0x00, 0xc0, 0x40

static const char dict_f4_23[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";

static void test_npy_header(void)
{
    char m[MSGLEN];
    /* hand count: the dict is 59 characters; 10 + 59 + 1 = 70 pads to 128, so HEADER_LEN is
     * 118 = 0x76 and the data starts at byte 128 */
    CHECK_INT(strlen(dict_f4_23), 59);
    unsigned char hand[128];
    memcpy(hand, "\x93NUMPY\x01\x00\x76\x00", 10);
    memcpy(hand + 10, dict_f4_23, 59);
    memset(hand + 69, ' ', 58);
    hand[127] = '\n';
    size_t blen = 0;
    unsigned char *built = npy_build(1, dict_f4_23, 64, NULL, 0, &blen);
    CHECK_INT(blen, 128);
    CHECK(memcmp(built, hand, 128) == 0);
    free(built);

    enum sl_dtype dt = SL_DT_COUNT;
    int ndim = -1, fortran = -1;
    int64_t shape[SL_MAX_DIMS] = {0};
    size_t off = 0;
    CHECK_INT(slp_npy_header(hand, 128, &dt, &ndim, shape, &fortran, &off, "p", m, MSGLEN), 0);
    CHECK_INT(dt, SL_DT_F32);
    CHECK_INT(ndim, 2);
    CHECK_INT(shape[0], 2);
    CHECK_INT(shape[1], 3);
    CHECK_INT(fortran, 0);
    CHECK_INT(off, 128);
    /* the header alone is truncated when cut */
    CHECK_INT(slp_npy_header(hand, 100, &dt, &ndim, shape, &fortran, &off, "p", m, MSGLEN),
              SL_EMALFORMED);

    struct {
        int major;
        const char *dict;
        int code; /* 0: parses */
        enum sl_dtype dt;
        int ndim;
        int64_t d0, d1;
        int fortran;
        const char *msg;
    } cases[] = {
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}", 0, SL_DT_F32, 2, 2, 3, 0,
         NULL},
        {1, "{'shape': (7,), 'fortran_order': True, 'descr': '|u1'}", 0, SL_DT_U8, 1, 7, 0, 1,
         NULL},
        {1, "{ \"descr\" : \"<i8\" ,\"fortran_order\":False,\"shape\":( 4 , 5 , ) , }", 0,
         SL_DT_I64, 2, 4, 5, 0, NULL},
        {1, "{'descr': '|b1', 'fortran_order': False, 'shape': (3L, 2L)}", 0, SL_DT_BOOL, 2, 3, 2,
         0, NULL},
        {2, "{'descr': '<u2', 'fortran_order': False, 'shape': (9,), }", 0, SL_DT_U16, 1, 9, 0, 0,
         NULL},
        {3, "{'descr': '<f2', 'fortran_order': False, 'shape': [2, 2], }", 0, SL_DT_F16, 2, 2, 2, 0,
         NULL},
        {1, "{'descr': '=i4', 'fortran_order': False, 'shape': (1,), }", 0, SL_DT_I32, 1, 1, 0, 0,
         NULL},
        {1, "{'descr': '<i1', 'fortran_order': False, 'shape': (1,), }", 0, SL_DT_I8, 1, 1, 0, 0,
         NULL},
        {1, "{'descr': '<u4', 'fortran_order': False, 'shape': (1,), }", 0, SL_DT_U32, 1, 1, 0, 0,
         NULL},
        {1, "{'descr': '<i2', 'fortran_order': False, 'shape': (1,), }", 0, SL_DT_I16, 1, 1, 0, 0,
         NULL},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", 0, SL_DT_F64, 1, 1, 0, 0,
         NULL},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", SL_EINVAL, 0, 0, 0, 0, 0,
         "p: 0-d arrays are not accepted"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 0), }", SL_EINVAL, 0, 0, 0, 0, 0,
         "p: npy shape [2, 0] has a zero dimension"},
        {1, "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", SL_EUNSUPPORTED, 0, 0, 0,
         0, 0, "p: npy dtype '<c8' is not supported"},
        {1, "{'descr': '<U3', 'fortran_order': False, 'shape': (2,), }", SL_EUNSUPPORTED, 0, 0, 0,
         0, 0, "p: npy dtype '<U3' is not supported"},
        {1, "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", SL_EUNSUPPORTED, 0, 0, 0, 0,
         0, "p: npy dtype '|O' is not supported"},
        {1, "{'descr': '<u8', 'fortran_order': False, 'shape': (2,), }", SL_EUNSUPPORTED, 0, 0, 0,
         0, 0, "p: npy dtype '<u8' is not supported"},
        {1, "{'descr': '|i4', 'fortran_order': False, 'shape': (2,), }", SL_EUNSUPPORTED, 0, 0, 0,
         0, 0, "p: npy dtype '|i4'"},
        {1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", SL_EUNSUPPORTED,
         0, 0, 0, 0, 0, "p: npy structured dtypes"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", SL_EINVAL,
         0, 0, 0, 0, 0, "p: npy array has more than 8 dimensions"},
        {1, "{'descr': '<f4', 'fortran_order': False}", SL_EMALFORMED, 0, 0, 0, 0, 0,
         "p: npy header lacks 'shape'"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", SL_EMALFORMED, 0, 0,
         0, 0, 0, "p: npy header has an unknown key 'x'"},
        {1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}",
         SL_EMALFORMED, 0, 0, 0, 0, 0, "p: npy header repeats the key 'descr'"},
        {1, "{'descr': '<f4', 'fortran_order': false, 'shape': (2,)}", SL_EMALFORMED, 0, 0, 0, 0, 0,
         "p: malformed npy header at byte"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,-1)}", SL_EMALFORMED, 0, 0, 0, 0,
         0, "p: malformed npy header at byte"},
        {1, "{'descr': '<f4' 'fortran_order': False, 'shape': (2,)}", SL_EMALFORMED, 0, 0, 0, 0, 0,
         "p: malformed npy header at byte 26: expected ',' or '}'"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x", SL_EMALFORMED, 0, 0, 0, 0,
         0, "p: malformed npy header"},
        {1, "['descr', '<f4']", SL_EMALFORMED, 0, 0, 0, 0, 0, "p: malformed npy header at byte 10"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = 0;
        unsigned char *b = npy_build(cases[i].major, cases[i].dict, 64, NULL, 0, &n);
        int rc = slp_npy_header(b, n, &dt, &ndim, shape, &fortran, &off, "p", m, MSGLEN);
        if (rc != cases[i].code) {
            fprintf(stderr, "npy case %zu: %s\n", i, m);
        }
        CHECK_INT(rc, cases[i].code);
        if (cases[i].code == 0 && rc == 0) {
            CHECK_INT(dt, cases[i].dt);
            CHECK_INT(ndim, cases[i].ndim);
            CHECK_INT(shape[0], cases[i].d0);
            if (cases[i].ndim > 1) {
                CHECK_INT(shape[1], cases[i].d1);
            }
            CHECK_INT(fortran, cases[i].fortran);
            CHECK_INT(off, n);
            CHECK_INT(off % 64, 0);
        } else if (cases[i].msg) {
            CHECK_PREFIX(m, cases[i].msg);
        }
        free(b);
    }
    /* preamble problems */
    {
        unsigned char b[128];
        memcpy(b, hand, 128);
        b[1] = 'X';
        CHECK_INT(slp_npy_header(b, 128, &dt, &ndim, shape, &fortran, &off, "p", m, MSGLEN),
                  SL_EMALFORMED);
        CHECK_PREFIX(m, "p: not a .npy file");
        memcpy(b, hand, 128);
        b[6] = 4;
        CHECK_INT(slp_npy_header(b, 128, &dt, &ndim, shape, &fortran, &off, "p", m, MSGLEN),
                  SL_EUNSUPPORTED);
        CHECK_PREFIX(m, "p: npy format version 4.0 is not supported");
        CHECK_INT(slp_npy_header(hand, 5, &dt, &ndim, shape, &fortran, &off, "p", m, MSGLEN),
                  SL_EMALFORMED);
        /* v2 header length 0x00010000 is over the 65535 cap */
        unsigned char v2[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0x00, 0x00, 0x01, 0x00};
        CHECK_INT(slp_npy_header(v2, 12, &dt, &ndim, shape, &fortran, &off, "p", m, MSGLEN),
                  SL_EMALFORMED);
        CHECK_HAS(m, "too long");
    }
    /* the public header reader refuses big-endian data it cannot tell the caller to swap */
    {
        size_t n = 0;
        unsigned char *b = npy_build(1, "{'descr': '>i2', 'fortran_order': False, 'shape': (3,), }",
                                     64, NULL, 0, &n);
        CHECK_INT(slp_npy_header(b, n, &dt, &ndim, shape, &fortran, &off, "p", m, MSGLEN),
                  SL_EUNSUPPORTED);
        free(b);
        b = npy_build(1, "{'descr': '>u1', 'fortran_order': False, 'shape': (3,), }", 64, NULL, 0,
                      &n);
        CHECK_INT(slp_npy_header(b, n, &dt, &ndim, shape, &fortran, &off, "p", m, MSGLEN), 0);
        CHECK_INT(dt, SL_DT_U8);
        free(b);
    }
}

/* ---- npy arrays through slp_array_from_json ---- */

static void test_npy_array(void)
{
    char m[MSGLEN];
    struct slp_array a;
    static const unsigned char c_order[] = {F1, F2, F3, F4, F5, F6};
    /* a[i][j] = 1 + 3i + j; Fortran order walks i fastest: a00 a10 a01 a11 a02 a12 */
    static const unsigned char f_order[] = {F1, F4, F2, F5, F3, F6};
    const float want23[6] = {1, 2, 3, 4, 5, 6};

    size_t n = 0;
    unsigned char *b = npy_build(1, dict_f4_23, 64, c_order, sizeof c_order, &n);
    CHECK_INT(run_b64("npy", b, n, NULL, "prediction", NULL, &a, m), 0);
    CHECK_INT(a.t.dtype, SL_DT_F32);
    CHECK_INT(a.t.ndim, 2);
    CHECK(a.t.shape[0] == 2 && a.t.shape[1] == 3 && a.t.shape[2] == 0);
    CHECK(a.t.data != NULL && memcmp(a.t.data, want23, sizeof want23) == 0);
    slp_array_free(&a);
    CHECK(a.buf == NULL && a.t.data == NULL);
    slp_array_free(&a);
    slp_array_free(NULL);
    /* spec dtype/shape that agree, and that do not */
    CHECK_INT(run_b64("npy", b, n, "\"dtype\": \"float32\", \"shape\": [2, 3]", "prediction", NULL,
                      &a, m),
              0);
    slp_array_free(&a);
    CHECK_FAILS(run_b64("npy", b, n, "\"dtype\": \"float64\"", "prediction", NULL, &a_, m_),
                SL_EINVAL, "prediction.dtype: 'float64' does not match the npy header's '<f4'");
    CHECK_FAILS(run_b64("npy", b, n, "\"shape\": [3, 2]", "prediction", NULL, &a_, m_), SL_EINVAL,
                "prediction.shape: [3, 2] does not match the npy header's shape [2, 3]");
    /* one byte short and one byte long */
    CHECK_FAILS(run_b64("npy", b, n - 1, NULL, "prediction", NULL, &a_, m_), SL_ESIZE,
                "prediction: expected 24 data bytes after the npy header, got 23");
    free(b);
    {
        unsigned char longer[sizeof c_order + 1];
        memcpy(longer, c_order, sizeof c_order);
        longer[sizeof c_order] = 0;
        b = npy_build(1, dict_f4_23, 64, longer, sizeof longer, &n);
        CHECK_FAILS(run_b64("npy", b, n, NULL, "prediction", NULL, &a_, m_), SL_ESIZE,
                    "prediction: expected 24 data bytes after the npy header, got 25");
        free(b);
    }
    /* Fortran order comes out in C order */
    b = npy_build(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 64, f_order,
                  sizeof f_order, &n);
    CHECK_INT(run_b64("npy", b, n, NULL, "prediction", NULL, &a, m), 0);
    CHECK(a.t.ndim == 2 && a.t.shape[0] == 2 && a.t.shape[1] == 3);
    CHECK(memcmp(a.t.data, want23, sizeof want23) == 0);
    slp_array_free(&a);
    free(b);
    /* 2x2x2 uint8, C value 4i+2j+k; Fortran position i + 2j + 4k: 0 4 2 6 1 5 3 7 */
    {
        static const unsigned char f222[8] = {0, 4, 2, 6, 1, 5, 3, 7};
        b = npy_build(1, "{'descr': '|u1', 'fortran_order': True, 'shape': (2, 2, 2), }", 16, f222,
                      8, &n);
        CHECK_INT(run_b64("npy", b, n, NULL, "target", NULL, &a, m), 0);
        const unsigned char *u = a.t.data;
        for (int i = 0; i < 8; i++) {
            CHECK_INT(u[i], i);
        }
        slp_array_free(&a);
        free(b);
    }
    /* 2x3x4 uint16, Fortran bytes written by walking i fastest; value = C flat index */
    {
        uint16_t f[24];
        int p = 0;
        for (int k = 0; k < 4; k++) {
            for (int j = 0; j < 3; j++) {
                for (int i = 0; i < 2; i++) {
                    f[p++] = (uint16_t)(i * 12 + j * 4 + k);
                }
            }
        }
        b = npy_build(2, "{'descr': '<u2', 'fortran_order': True, 'shape': (2, 3, 4), }", 64, f,
                      sizeof f, &n);
        CHECK_INT(run_b64("npy", b, n, NULL, "target", NULL, &a, m), 0);
        CHECK(a.t.ndim == 3 && a.t.shape[2] == 4 && a.t.dtype == SL_DT_U16);
        const uint16_t *u = a.t.data;
        int ok = 1;
        for (int i = 0; i < 24; i++) {
            ok &= u[i] == i;
        }
        CHECK(ok);
        slp_array_free(&a);
        free(b);
    }
    /* '>i2': 1, -2, 258 are 00 01, ff fe, 01 02 big-endian */
    {
        static const unsigned char be[6] = {0x00, 0x01, 0xff, 0xfe, 0x01, 0x02};
        b = npy_build(1, "{'descr': '>i2', 'fortran_order': False, 'shape': (3,), }", 64, be, 6,
                      &n);
        CHECK_INT(run_b64("npy", b, n, NULL, "target", NULL, &a, m), 0);
        const int16_t *v = a.t.data;
        CHECK(a.t.dtype == SL_DT_I16 && a.t.ndim == 1 && a.t.shape[0] == 3);
        CHECK(v[0] == 1 && v[1] == -2 && v[2] == 258);
        slp_array_free(&a);
        free(b);
    }
    /* '>f8' 1.5 = 3f f8 00 00 00 00 00 00, Fortran (1, 2) with -2 = c0 00 .. */
    {
        static const unsigned char be[16] = {0x3f, 0xf8, 0, 0, 0, 0, 0, 0,
                                             0xc0, 0x00, 0, 0, 0, 0, 0, 0};
        b = npy_build(1, "{'descr': '>f8', 'fortran_order': True, 'shape': (1, 2), }", 64, be, 16,
                      &n);
        CHECK_INT(run_b64("npy", b, n, NULL, "target", NULL, &a, m), 0);
        const double *v = a.t.data;
        CHECK(v[0] == 1.5 && v[1] == -2.0);
        slp_array_free(&a);
        free(b);
    }
    /* v2 header, and an unaligned data offset (no padding at all) */
    {
        static const unsigned char u8[5] = {9, 8, 7, 6, 5};
        b = npy_build(2, "{'descr': '|u1', 'fortran_order': False, 'shape': (5,), }", 64, u8, 5,
                      &n);
        CHECK_INT(b[6], 2);
        CHECK_INT(run_b64("npy", b, n, NULL, "target", NULL, &a, m), 0);
        CHECK(a.t.shape[0] == 5 && memcmp(a.t.data, u8, 5) == 0);
        slp_array_free(&a);
        free(b);
        static const unsigned char i4[8] = {1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff};
        b = npy_build(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2,)}", 0, i4, 8, &n);
        CHECK((n - 8) % 4 != 0); /* the data really starts unaligned */
        CHECK_INT(run_b64("npy", b, n, NULL, "target", NULL, &a, m), 0);
        const int32_t *v = a.t.data;
        CHECK((uintptr_t)a.t.data % 4 == 0);
        CHECK(v[0] == 1 && v[1] == -1);
        slp_array_free(&a);
        free(b);
    }
    /* errors surface through from_json with the array's path */
    {
        b = npy_build(1, "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", 64,
                      "\0\0\0\0\0\0\0\0", 8, &n);
        CHECK_FAILS(run_b64("npy", b, n, NULL, "prediction", NULL, &a_, m_), SL_EUNSUPPORTED,
                    "prediction.data: npy dtype '<c8' is not supported");
        free(b);
        b = npy_build(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 64, "\0\0\0\0",
                      4, &n);
        CHECK_FAILS(run_b64("npy", b, n, NULL, "prediction", NULL, &a_, m_), SL_EINVAL,
                    "prediction.data: 0-d arrays are not accepted");
        free(b);
        CHECK_FAILS(run_b64("npy", "hello, world", 12, NULL, "prediction", NULL, &a_, m_),
                    SL_EMALFORMED, "prediction.data: not a .npy file");
        CHECK_FAILS(RUN("{\"format\": \"npy\", \"data\": \"\"}", "prediction"), SL_EMALFORMED,
                    "prediction.data: npy file is truncated");
        CHECK_FAILS(RUN("{\"format\": \"npy\", \"data\": \"k05VTVBZ!QB2AA==\"}", "prediction"),
                    SL_EMALFORMED, "prediction.data: invalid base64 at offset 8");
        CHECK_FAILS(RUN("{\"format\": \"npy\", \"data\": [1, 2]}", "prediction"), SL_EINVAL,
                    "prediction.data: expected a base64 string, got a list");
        /* header says 1000000 x 1000 float32: over the default 64 Mi elements, caught before
         * any data is looked at (there is none) */
        b = npy_build(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000)}", 64,
                      NULL, 0, &n);
        CHECK_FAILS(run_b64("npy", b, n, NULL, "prediction", NULL, &a_, m_), SL_ETOOLARGE,
                    "prediction: shape [1000000, 1000] has more elements than the limit");
        free(b);
    }
}

static void test_npy_compressed(void)
{
    char m[MSGLEN];
    struct slp_array a;
    static const unsigned char c_order[] = {F1, F2, F3, F4, F5, F6};
    static const unsigned char f_order[] = {F1, F4, F2, F5, F3, F6};
    const float want23[6] = {1, 2, 3, 4, 5, 6};
    size_t n = 0, zl = 0;
    unsigned char *b = npy_build(1, dict_f4_23, 64, c_order, sizeof c_order, &n);
    static const struct {
        int wbits;
        const char *comp;
    } kinds[] = {{31, "gzip"}, {15, "zlib"}, {-15, "deflate"}, {31, "auto"}, {15, "auto"}};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        unsigned char *z = zpack(b, n, kinds[k].wbits, &zl);
        char *extra = strf("\"compression\": \"%s\"", kinds[k].comp);
        CHECK_INT(run_b64("npy", z, zl, extra, "prediction", NULL, &a, m), 0);
        CHECK(a.t.ndim == 2 && a.t.shape[1] == 3);
        CHECK(a.t.data && memcmp(a.t.data, want23, sizeof want23) == 0);
        slp_array_free(&a);
        free(extra);
        free(z);
    }
    free(b);
    /* Fortran + gzip */
    b = npy_build(3, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 64, f_order,
                  sizeof f_order, &n);
    unsigned char *z = zpack(b, n, 31, &zl);
    CHECK_INT(run_b64("npy", z, zl, "\"compression\": \"gzip\"", "prediction", NULL, &a, m), 0);
    CHECK(a.t.data && memcmp(a.t.data, want23, sizeof want23) == 0);
    slp_array_free(&a);
    free(z);
    free(b);
    /* the .npy inside the stream has a trailing byte / lacks one */
    {
        unsigned char longer[sizeof c_order + 1];
        memcpy(longer, c_order, sizeof c_order);
        longer[sizeof c_order] = 7;
        b = npy_build(1, dict_f4_23, 64, longer, sizeof longer, &n);
        z = zpack(b, n, 31, &zl);
        CHECK_FAILS(run_b64("npy", z, zl, "\"compression\": \"gzip\"", "prediction", NULL, &a_, m_),
                    SL_ESIZE,
                    "prediction: expected 24 data bytes after the npy header, got at least 25");
        free(z);
        z = zpack(b, n - 2, 31, &zl);
        CHECK_FAILS(run_b64("npy", z, zl, "\"compression\": \"gzip\"", "prediction", NULL, &a_, m_),
                    SL_ESIZE, "prediction: expected 24 data bytes after the npy header, got 23");
        free(z);
        /* the stream ends inside the header */
        z = zpack(b, 50, 31, &zl);
        CHECK_FAILS(run_b64("npy", z, zl, "\"compression\": \"gzip\"", "prediction", NULL, &a_, m_),
                    SL_EMALFORMED, "prediction.data: npy header is truncated (50 of 128 bytes)");
        free(z);
        free(b);
        /* the compressed stream itself is cut short (inside the CRC-32) */
        b = npy_build(1, dict_f4_23, 64, c_order, sizeof c_order, &n);
        z = zpack(b, n, 31, &zl);
        CHECK_FAILS(
            run_b64("npy", z, zl - 6, "\"compression\": \"gzip\"", "prediction", NULL, &a_, m_),
            SL_EMALFORMED, "prediction.data: gzip stream is truncated");
        /* garbage after the stream */
        unsigned char *zt = malloc(zl + 1);
        memcpy(zt, z, zl);
        zt[zl] = 0;
        CHECK_FAILS(
            run_b64("npy", zt, zl + 1, "\"compression\": \"gzip\"", "prediction", NULL, &a_, m_),
            SL_EMALFORMED, "prediction.data: 1 byte of trailing data after the end of the gzip");
        free(zt);
        free(z);
        free(b);
    }
    /* the elements stay where they were inflated, after the 128-byte header */
    b = npy_build(1, dict_f4_23, 64, c_order, sizeof c_order, &n);
    z = zpack(b, n, 31, &zl);
    CHECK_INT(n, 128 + 24);
    CHECK_INT(run_b64("npy", z, zl, "\"compression\": \"gzip\"", "prediction", NULL, &a, m), 0);
    CHECK((const char *)a.t.data == (const char *)a.buf + 128);
    CHECK(memcmp(a.t.data, want23, sizeof want23) == 0);
    slp_array_free(&a);
    /* ISIZE that lies: the stream is corrupt, as zlib says */
    z[zl - 1] ^= 0x80;
    CHECK_FAILS(run_b64("npy", z, zl, "\"compression\": \"gzip\"", "prediction", NULL, &a_, m_),
                SL_EMALFORMED, "prediction.data: corrupt gzip stream: incorrect length check");
    free(z);
    /* two gzip members, the header in the first and the data in the second: libdeflate stops
     * after one member, zlib reads on */
    {
        size_t l1 = 0, l2 = 0;
        unsigned char *g1 = zpack(b, 128, 31, &l1);
        unsigned char *g2 = zpack(b + 128, 24, 31, &l2);
        unsigned char *cat = malloc(l1 + l2);
        memcpy(cat, g1, l1);
        memcpy(cat + l1, g2, l2);
        CHECK_INT(
            run_b64("npy", cat, l1 + l2, "\"compression\": \"gzip\"", "prediction", NULL, &a, m),
            0);
        CHECK(a.t.data && memcmp(a.t.data, want23, sizeof want23) == 0);
        slp_array_free(&a);
        free(cat);
        free(g1);
        free(g2);
    }
    free(b);
    /* zlib and raw deflate have no size field: the npy header inside says it */
    {
        static const unsigned char i4[8] = {1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff};
        b = npy_build(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2,)}", 0, i4, 8, &n);
        CHECK((n - 8) % 4 != 0); /* and the data starts unaligned in the inflated file */
        static const int wb[] = {15, -15, 31};
        static const char *const cn[] = {"zlib", "deflate", "gzip"};
        for (int k = 0; k < 3; k++) {
            z = zpack(b, n, wb[k], &zl);
            char *extra = strf("\"compression\": \"%s\"", cn[k]);
            CHECK_INT(run_b64("npy", z, zl, extra, "target", NULL, &a, m), 0);
            const int32_t *v = a.t.data;
            CHECK((uintptr_t)a.t.data % 4 == 0);
            CHECK(v && v[0] == 1 && v[1] == -1);
            slp_array_free(&a);
            free(extra);
            free(z);
        }
        free(b);
    }
    /* a bomb: a (4,) float32 header followed by 1 MiB of zeros */
    {
        size_t big = 1 << 20;
        unsigned char *zeros = calloc(big, 1);
        b = npy_build(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", 64, zeros,
                      big, &n);
        z = zpack(b, n, 31, &zl);
        CHECK(zl < 8192);
        CHECK_FAILS(run_b64("npy", z, zl, "\"compression\": \"auto\"", "prediction", NULL, &a_, m_),
                    SL_ESIZE,
                    "prediction: expected 16 data bytes after the npy header, got at least 17");
        free(z);
        free(b);
        free(zeros);
    }
    /* uncompressed npy given compression auto */
    b = npy_build(1, dict_f4_23, 64, c_order, sizeof c_order, &n);
    CHECK_FAILS(run_b64("npy", b, n, "\"compression\": \"auto\"", "prediction", NULL, &a_, m_),
                SL_EMALFORMED, "prediction.data: compression 'auto' found neither");
    /* gzip data without "compression": the hint says so */
    z = zpack(b, n, 31, &zl);
    CHECK_FAILS(run_b64("npy", z, zl, NULL, "prediction", NULL, &a_, m_), SL_EMALFORMED,
                "prediction.data: not a .npy file");
    free(z);
    free(b);
}

/* ---- raw ---- */

static void test_raw(void)
{
    char m[MSGLEN];
    struct slp_array a;
    /* "AQIDBA==" is 01 02 03 04 (hand-encoded) */
    CHECK_INT(run("{\"format\": \"raw\", \"dtype\": \"uint8\", \"shape\": [2, 2], \"data\": "
                  "\"AQIDBA==\"}",
                  "target", NULL, &a, m),
              0);
    CHECK(a.t.dtype == SL_DT_U8 && a.t.ndim == 2 && a.t.shape[0] == 2 && a.t.shape[1] == 2);
    CHECK(memcmp(a.t.data, "\x01\x02\x03\x04", 4) == 0);
    CHECK(a.t.data == a.buf);
    slp_array_free(&a);
    /* unpadded form of the same */
    CHECK_INT(run("{\"format\": \"raw\", \"dtype\": \"uint8\", \"shape\": [4], \"data\": "
                  "\"AQIDBA\"}",
                  "target", NULL, &a, m),
              0);
    slp_array_free(&a);
    /* "AQD//w==" is 01 00 ff ff: int16 1 and -1 little-endian */
    CHECK_INT(run("{\"format\": \"raw\", \"dtype\": \"int16\", \"shape\": [2], \"data\": "
                  "\"AQD//w==\"}",
                  "target", NULL, &a, m),
              0);
    const int16_t *v = a.t.data;
    CHECK(v[0] == 1 && v[1] == -1);
    slp_array_free(&a);
    /* float32 [1,4,4] is 64 bytes: 80 and 48 are wrong */
    unsigned char bytes[80];
    memset(bytes, 0, sizeof bytes);
    CHECK_FAILS(run_b64("raw", bytes, 80, "\"dtype\": \"float32\", \"shape\": [1, 4, 4]",
                        "prediction", NULL, &a_, m_),
                SL_ESIZE, "prediction: expected 64 bytes, got 80");
    CHECK_FAILS(run_b64("raw", bytes, 48, "\"dtype\": \"float32\", \"shape\": [1, 4, 4]",
                        "prediction", NULL, &a_, m_),
                SL_ESIZE, "prediction: expected 64 bytes, got 48");
    CHECK_INT(run_b64("raw", bytes, 64, "\"dtype\": \"float32\", \"shape\": [1, 4, 4]",
                      "prediction", NULL, &a, m),
              0);
    CHECK(a.t.ndim == 3 && a.t.shape[0] == 1 && a.t.shape[2] == 4);
    slp_array_free(&a);
    /* missing dtype / shape, bad base64 */
    CHECK_FAILS(RUN("{\"format\": \"raw\", \"shape\": [4], \"data\": \"AQIDBA==\"}", "target"),
                SL_EINVAL, "target.dtype: required");
    CHECK_FAILS(
        RUN("{\"format\": \"raw\", \"dtype\": \"uint8\", \"data\": \"AQIDBA==\"}", "target"),
        SL_EINVAL, "target.shape: required");
    CHECK_FAILS(RUN("{\"format\": \"raw\", \"dtype\": \"uint8\", \"shape\": [4], \"data\": "
                    "\"AQ*DBA==\"}",
                    "prediction"),
                SL_EMALFORMED, "prediction.data: invalid base64 at offset 2");
    CHECK_FAILS(RUN("{\"format\": \"raw\", \"dtype\": \"uint8\", \"shape\": [4], \"data\": "
                    "\"AQIDBA=\"}",
                    "prediction"),
                SL_EMALFORMED, "prediction.data: invalid base64");

    /* compressed raw: 16 float32 values 0.5 * i, each way */
    float f[16];
    for (int i = 0; i < 16; i++) {
        f[i] = 0.5f * (float)i;
    }
    static const struct {
        int wbits;
        const char *comp;
    } kinds[] = {{31, "gzip"}, {15, "zlib"}, {-15, "deflate"}, {31, "auto"}, {15, "auto"}};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        size_t zl = 0;
        unsigned char *z = zpack(f, sizeof f, kinds[k].wbits, &zl);
        char *extra = strf("\"compression\": \"%s\", \"dtype\": \"float32\", \"shape\": [1, 4, 4]",
                           kinds[k].comp);
        CHECK_INT(run_b64("raw", z, zl, extra, "prediction", NULL, &a, m), 0);
        CHECK(a.t.data && memcmp(a.t.data, f, sizeof f) == 0);
        slp_array_free(&a);
        /* the same stream declared one element short / long */
        free(extra);
        extra =
            strf("\"compression\": \"%s\", \"dtype\": \"float32\", \"shape\": [15]", kinds[k].comp);
        CHECK_FAILS(run_b64("raw", z, zl, extra, "prediction", NULL, &a_, m_), SL_ESIZE,
                    "prediction: expected 60 bytes, got at least 61");
        free(extra);
        extra =
            strf("\"compression\": \"%s\", \"dtype\": \"float32\", \"shape\": [17]", kinds[k].comp);
        CHECK_FAILS(run_b64("raw", z, zl, extra, "prediction", NULL, &a_, m_), SL_ESIZE,
                    "prediction: expected 68 bytes, got 64");
        free(extra);
        free(z);
    }
    /* corrupt zlib check value names the array's data and zlib's reason */
    {
        size_t zl = 0;
        unsigned char *z = zpack(f, sizeof f, 15, &zl);
        z[zl - 2] ^= 0xff;
        CHECK_FAILS(run_b64("raw", z, zl,
                            "\"compression\": \"zlib\", \"dtype\": \"float32\", \"shape\": [16]",
                            "prediction", NULL, &a_, m_),
                    SL_EMALFORMED, "prediction.data: corrupt zlib stream: incorrect data check");
        free(z);
    }
    /* the bomb of the brief: 1 MiB of zeros declared as [1, 4, 4] float32 */
    {
        size_t big = 1 << 20, zl = 0;
        unsigned char *zeros = calloc(big, 1);
        unsigned char *z = zpack(zeros, big, 31, &zl);
        CHECK_FAILS(run_b64("raw", z, zl,
                            "\"compression\": \"gzip\", \"dtype\": \"float32\", "
                            "\"shape\": [1, 4, 4]",
                            "prediction", NULL, &a_, m_),
                    SL_ESIZE, "prediction: expected 64 bytes, got at least 65");
        free(z);
        free(zeros);
    }
}

/* ---- list ---- */

static void test_list(void)
{
    char m[MSGLEN];
    struct slp_array a;
    /* flat + shape */
    CHECK_INT(run("{\"format\": \"list\", \"dtype\": \"uint8\", \"shape\": [2, 3], "
                  "\"data\": [1, 2, 3, 4, 5, 255]}",
                  "target", NULL, &a, m),
              0);
    CHECK(a.t.dtype == SL_DT_U8 && a.t.ndim == 2 && a.t.shape[0] == 2 && a.t.shape[1] == 3);
    CHECK(memcmp(a.t.data, "\x01\x02\x03\x04\x05\xff", 6) == 0);
    slp_array_free(&a);
    /* flat without shape is 1-D, float64 by default */
    CHECK_INT(run("{\"format\": \"list\", \"data\": [0.25, -1, 3]}", "target", NULL, &a, m), 0);
    CHECK(a.t.dtype == SL_DT_F64 && a.t.ndim == 1 && a.t.shape[0] == 3);
    const double *d = a.t.data;
    CHECK(d[0] == 0.25 && d[1] == -1.0 && d[2] == 3.0);
    slp_array_free(&a);
    /* nested: shape inferred */
    CHECK_INT(run("{\"format\": \"list\", \"dtype\": \"int32\", \"data\": [[[1, 2], [3, 4], "
                  "[5, 6]], [[7, 8], [9, 10], [11, -12]]]}",
                  "target", NULL, &a, m),
              0);
    CHECK(a.t.ndim == 3 && a.t.shape[0] == 2 && a.t.shape[1] == 3 && a.t.shape[2] == 2);
    const int32_t *iv = a.t.data;
    CHECK(iv[0] == 1 && iv[5] == 6 && iv[6] == 7 && iv[11] == -12);
    slp_array_free(&a);
    /* nested with an agreeing shape, and a disagreeing one */
    CHECK_INT(run("{\"format\": \"list\", \"shape\": [2, 2], \"data\": [[1, 2], [3, 4]]}", "target",
                  NULL, &a, m),
              0);
    slp_array_free(&a);
    CHECK_FAILS(RUN("{\"format\": \"list\", \"shape\": [4], \"data\": [[1, 2], [3, 4]]}", "target"),
                SL_EINVAL, "target.shape: [4] does not match the nested data's shape [2, 2]");
    /* the bare list shorthand */
    CHECK_INT(run("[[1, 0], [0, 1]]", "target", NULL, &a, m), 0);
    CHECK(a.t.dtype == SL_DT_F64 && a.t.ndim == 2);
    d = a.t.data;
    CHECK(d[0] == 1 && d[1] == 0 && d[2] == 0 && d[3] == 1);
    slp_array_free(&a);
    CHECK_FAILS(RUN("[[1, 0], [0]]", "target"), SL_EINVAL,
                "target[1]: ragged list: length 1, expected 2");
    /* ragged */
    CHECK_FAILS(RUN("{\"format\": \"list\", \"data\": [[1, 2, 3], [4, 5, 6], [7, 8]]}", "target"),
                SL_EINVAL, "target.data[2]: ragged list: length 2, expected 3");
    CHECK_FAILS(RUN("{\"format\": \"list\", \"data\": [[1, 2], [3, 4, 5]]}", "target"), SL_EINVAL,
                "target.data[1]: ragged list: length 3, expected 2");
    CHECK_FAILS(RUN("{\"format\": \"list\", \"data\": [[[1], [2]], [[3], 4]]}", "target"),
                SL_EINVAL, "target.data[1][1]: ragged list: expected a list, got 4");
    CHECK_FAILS(RUN("{\"format\": \"list\", \"data\": [[1, 2], [3, [4]]]}", "target"), SL_EINVAL,
                "target.data[1][1]: ragged list: expected a number, got a list");
    CHECK_FAILS(RUN("{\"format\": \"list\", \"data\": [1, [2]]}", "target"), SL_EINVAL,
                "target.data[1]: expected a number, got a list");
    CHECK_FAILS(RUN("{\"format\": \"list\", \"data\": [[], []]}", "target"), SL_EINVAL,
                "target.data[0]: empty list");
    CHECK_FAILS(RUN("{\"format\": \"list\", \"data\": []}", "target"), SL_EINVAL,
                "target.data: empty list");
    CHECK_FAILS(RUN("[]", "target"), SL_EINVAL, "target: empty list");
    CHECK_FAILS(RUN("{\"format\": \"list\", \"data\": [[[[[[[[[1]]]]]]]]]}", "target"), SL_EINVAL,
                "target.data[0][0][0][0][0][0][0][0]: lists nested deeper than 8 levels");
    /* flat count must match the shape */
    CHECK_FAILS(
        RUN("{\"format\": \"list\", \"shape\": [2, 3], \"data\": [1, 2, 3, 4, 5]}", "target"),
        SL_EINVAL, "target.data: 5 values, but shape [2, 3] holds 6");
    /* values */
    CHECK_FAILS(
        RUN("{\"format\": \"list\", \"dtype\": \"uint8\", \"data\": [0, 1, 1.5]}", "target"),
        SL_ERANGE, "target.data[2]: 1.5 is not a valid uint8");
    {
        /* the brief's example: index 17 */
        CHECK_FAILS(RUN("{\"format\": \"list\", \"dtype\": \"uint8\", \"data\": [0, 0, 0, 0, 0, "
                        "0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1.5]}",
                        "target"),
                    SL_ERANGE, "target.data[17]: 1.5 is not a valid uint8");
    }
    CHECK_FAILS(
        RUN("{\"format\": \"list\", \"dtype\": \"uint8\", \"data\": [[0, 1], [2, 1.5]]}", "target"),
        SL_ERANGE, "target.data[1][1] (flat index 3): 1.5 is not a valid uint8");
    CHECK_FAILS(RUN("{\"format\": \"list\", \"dtype\": \"uint8\", \"data\": [256]}", "target"),
                SL_ERANGE, "target.data[0]: 256 is not a valid uint8 (0..255)");
    CHECK_FAILS(RUN("{\"format\": \"list\", \"dtype\": \"uint8\", \"data\": [-1]}", "target"),
                SL_ERANGE, "target.data[0]: -1 is not a valid uint8");
    CHECK_FAILS(RUN("{\"format\": \"list\", \"dtype\": \"int8\", \"data\": [127, 128]}", "target"),
                SL_ERANGE, "target.data[1]: 128 is not a valid int8 (-128..127)");
    CHECK_FAILS(
        RUN("{\"format\": \"list\", \"dtype\": \"int8\", \"data\": [-128, -129]}", "target"),
        SL_ERANGE, "target.data[1]: -129 is not a valid int8");
    CHECK_FAILS(RUN("{\"format\": \"list\", \"dtype\": \"int8\", \"data\": [-129.0]}", "target"),
                SL_ERANGE, "target.data[0]: -129.0 is not a valid int8");
    CHECK_FAILS(
        RUN("{\"format\": \"list\", \"dtype\": \"uint32\", \"data\": [4294967296]}", "target"),
        SL_ERANGE, "target.data[0]: 4294967296 is not a valid uint32");
    CHECK_FAILS(RUN("{\"format\": \"list\", \"dtype\": \"int64\", \"data\": [1e19]}", "target"),
                SL_ERANGE, "target.data[0]: 1e+19 is not a valid int64");
    CHECK_FAILS(RUN("{\"format\": \"list\", \"data\": [1, \"2\"]}", "target"), SL_EINVAL,
                "target.data[1]: a string is not a number");
    CHECK_FAILS(RUN("{\"format\": \"list\", \"data\": [null]}", "target"), SL_EINVAL,
                "target.data[0]: null is not a number");
    CHECK_FAILS(RUN("{\"format\": \"list\", \"dtype\": \"uint8\", \"data\": [true]}", "target"),
                SL_EINVAL, "target.data[0]: true is not a number");
    /* integral reals are accepted for integer dtypes; extreme integers survive exactly */
    CHECK_INT(run("{\"format\": \"list\", \"dtype\": \"int64\", \"data\": [2.0, "
                  "9007199254740993, -9223372036854775808, 9223372036854775807]}",
                  "target", NULL, &a, m),
              0);
    const int64_t *l = a.t.data;
    CHECK(l[0] == 2 && l[1] == 9007199254740993LL && l[2] == INT64_MIN && l[3] == INT64_MAX);
    slp_array_free(&a);
    CHECK_INT(run("{\"format\": \"list\", \"dtype\": \"uint32\", \"data\": [4294967295, 0]}",
                  "target", NULL, &a, m),
              0);
    CHECK(((const uint32_t *)a.t.data)[0] == 4294967295u);
    slp_array_free(&a);
    CHECK_INT(run("{\"format\": \"list\", \"dtype\": \"int16\", \"data\": [-32768, 32767]}",
                  "target", NULL, &a, m),
              0);
    CHECK(((const int16_t *)a.t.data)[0] == -32768 && ((const int16_t *)a.t.data)[1] == 32767);
    slp_array_free(&a);
    CHECK_FAILS(RUN("{\"format\": \"list\", \"dtype\": \"uint16\", \"data\": [65536]}", "target"),
                SL_ERANGE, "target.data[0]: 65536 is not a valid uint16");
    /* bool */
    CHECK_INT(run("{\"format\": \"list\", \"dtype\": \"bool\", \"data\": [true, false, 0, 1, 1.0]}",
                  "target", NULL, &a, m),
              0);
    CHECK(a.t.dtype == SL_DT_BOOL && memcmp(a.t.data, "\x01\x00\x00\x01\x01", 5) == 0);
    slp_array_free(&a);
    CHECK_FAILS(RUN("{\"format\": \"list\", \"dtype\": \"bool\", \"data\": [2]}", "target"),
                SL_ERANGE, "target.data[0]: 2 is not a valid bool");
    CHECK_FAILS(RUN("{\"format\": \"list\", \"dtype\": \"bool\", \"data\": [0.5]}", "target"),
                SL_ERANGE, "target.data[0]: 0.5 is not a valid bool");
    /* float32: FLT_MAX = 3.4028234663852886e38 stays; up to the rounding midpoint it is FLT_MAX;
     * 1e300 and 3.5e38 are out of range */
    CHECK_INT(run("{\"format\": \"list\", \"dtype\": \"float32\", \"data\": [0.5, "
                  "3.4028234663852886e38, -3.4028235e38, 1e-300, 16777217]}",
                  "prediction", NULL, &a, m),
              0);
    const float *fv = a.t.data;
    CHECK(fv[0] == 0.5f && fv[1] == 0x1.fffffep127f && fv[2] == -0x1.fffffep127f);
    CHECK(fv[3] == 0.0f);
    CHECK(fv[4] == 16777216.0f); /* 2^24 + 1 rounds to even */
    slp_array_free(&a);
    CHECK_FAILS(
        RUN("{\"format\": \"list\", \"dtype\": \"float32\", \"data\": [1, 1e300]}", "prediction"),
        SL_ERANGE, "prediction.data[1]: 1e+300 is not a valid float32");
    CHECK_FAILS(
        RUN("{\"format\": \"list\", \"dtype\": \"float32\", \"data\": [-3.5e38]}", "prediction"),
        SL_ERANGE, "prediction.data[0]: -3.5e+38 is not a valid float32");
    /* float16 bit patterns by hand: 1 = 0x3c00; 65504 = 0x7bff (max); 0.1 = 1.6 * 2^-4 gives
     * exponent 11 and mantissa round(0.6 * 1024) = 614 = 0x266: 0x2e66; 1/3 = 0x3555; 2^-24 =
     * 0x0001; -2 = 0xc000; 1 + 2^-11 is a tie, even: 0x3c00; 1 + 3 * 2^-11 ties up: 0x3c02;
     * 65519 rounds down: 0x7bff; 2^-14 = 0x0400; 1023 * 2^-24 = 0x03ff; 2^-25 ties to 0;
     * 3e-8 > 2^-25 rounds to 0x0001; -0.0 = 0x8000 */
    CHECK_INT(run("{\"format\": \"list\", \"dtype\": \"float16\", \"data\": [1, 65504, 0.1, "
                  "0.3333333333333333, 5.9604644775390625e-08, -2, 1.00048828125, "
                  "1.00146484375, 65519, 6.103515625e-05, 6.097555160522461e-05, "
                  "2.98023223876953125e-08, 3e-08, -0.0]}",
                  "prediction", NULL, &a, m),
              0);
    {
        static const uint16_t want[] = {0x3c00, 0x7bff, 0x2e66, 0x3555, 0x0001, 0xc000, 0x3c00,
                                        0x3c02, 0x7bff, 0x0400, 0x03ff, 0x0000, 0x0001, 0x8000};
        const uint16_t *h = a.t.data;
        CHECK_INT(a.t.shape[0], 14);
        for (int i = 0; i < 14; i++) {
            if (h[i] != want[i]) {
                fprintf(stderr, "float16 element %d: 0x%04x, want 0x%04x\n", i, h[i], want[i]);
            }
            CHECK_INT(h[i], want[i]);
        }
        slp_array_free(&a);
    }
    CHECK_FAILS(
        RUN("{\"format\": \"list\", \"dtype\": \"float16\", \"data\": [65520]}", "prediction"),
        SL_ERANGE, "prediction.data[0]: 65520 is not a valid float16");
    CHECK_FAILS(
        RUN("{\"format\": \"list\", \"dtype\": \"float16\", \"data\": [-1e6]}", "prediction"),
        SL_ERANGE, "prediction.data[0]: -1000000.0 is not a valid float16");
    /* compression is for npy/raw only */
    CHECK_FAILS(RUN("{\"format\": \"list\", \"compression\": \"gzip\", \"data\": [1]}", "target"),
                SL_EINVAL, "target.compression: only 'none' is allowed for format 'list'");
    CHECK_INT(run("{\"format\": \"list\", \"compression\": \"none\", \"data\": [1]}", "target",
                  NULL, &a, m),
              0);
    slp_array_free(&a);
    CHECK_FAILS(RUN("{\"format\": \"list\", \"data\": \"AQID\"}", "target"), SL_EINVAL,
                "target.data: expected a list of numbers, got a string");
}

/* ---- keys, formats, limits ---- */

static void test_keys_and_limits(void)
{
    char m[MSGLEN];
    struct slp_array a;
    CHECK_FAILS(RUN("{\"format\": \"list\", \"data\": [1], \"foo\": 1}", "prediction"), SL_EINVAL,
                "prediction.foo: unknown key");
    /* rle and coco_rle are decoded by proto/fmt_rle.c (tests/unit/test_rle.c): a 2 x 2 mask */
    CHECK_INT(
        run("{\"format\": \"rle\", \"data\": \"1 3\", \"shape\": [2, 2]}", "target", NULL, &a, m),
        0);
    CHECK(a.t.ndim == 3 && a.t.shape[0] == 1 && a.t.shape[1] == 2 && a.t.shape[2] == 2);
    slp_array_free(&a);
    CHECK_INT(run("{\"format\": \"coco_rle\", \"data\": {\"size\": [2, 2], \"counts\": [4]}}",
                  "target", NULL, &a, m),
              0);
    CHECK(a.t.ndim == 3 && a.t.shape[0] == 1 && a.t.shape[1] == 2 && a.t.shape[2] == 2);
    slp_array_free(&a);
    CHECK_FAILS(RUN("{\"format\": \"npy\", \"part\": \"pred\"}", "prediction"), SL_EUNSUPPORTED,
                "prediction.part: multipart parts are not supported");
    CHECK_FAILS(RUN("{\"format\": \"png\", \"data\": \"\"}", "prediction"), SL_EINVAL,
                "prediction.format: unknown format 'png'");
    CHECK_FAILS(RUN("{\"data\": [1]}", "prediction"), SL_EINVAL, "prediction.format: required");
    CHECK_FAILS(RUN("{\"format\": 3, \"data\": [1]}", "prediction"), SL_EINVAL,
                "prediction.format: expected a string, got 3");
    CHECK_FAILS(RUN("{\"format\": \"raw\", \"dtype\": \"uint8\", \"shape\": [1]}", "prediction"),
                SL_EINVAL, "prediction.data: required");
    CHECK_FAILS(RUN("{\"format\": \"list\", \"data\": [1], \"shape\": 4}", "target"), SL_EINVAL,
                "target.shape: expected a list of positive integers, got 4");
    CHECK_FAILS(RUN("{\"format\": \"list\", \"data\": [1], \"dtype\": 8}", "target"), SL_EINVAL,
                "target.dtype: expected a string, got 8");
    CHECK_FAILS(RUN("{\"format\": \"list\", \"data\": [1], \"compression\": null}", "target"),
                SL_EINVAL, "target.compression: expected a string, got null");
    CHECK_FAILS(RUN("{\"format\": \"list\", \"data\": [1, 2], \"shape\": [2, 0]}", "target"),
                SL_EINVAL, "target.shape[1]: expected a positive integer, got 0");
    CHECK_FAILS(RUN("{\"format\": \"list\", \"data\": [1, 2], \"shape\": [2, 1.0]}", "target"),
                SL_EINVAL, "target.shape[1]: expected a positive integer, got 1.0");
    CHECK_FAILS(RUN("{\"format\": \"list\", \"data\": [1, 2], \"shape\": [-2]}", "target"),
                SL_EINVAL, "target.shape[0]: expected a positive integer, got -2");
    CHECK_FAILS(RUN("{\"format\": \"list\", \"data\": [1], \"shape\": []}", "target"), SL_EINVAL,
                "target.shape: expected 1 to 8 dimensions, got 0");
    CHECK_FAILS(
        RUN("{\"format\": \"list\", \"data\": [1], \"shape\": [1,1,1,1,1,1,1,1,1]}", "target"),
        SL_EINVAL, "target.shape: expected 1 to 8 dimensions, got 9");
    CHECK_FAILS(RUN("{\"format\": \"list\", \"data\": [1], \"dtype\": \"float128\"}", "target"),
                SL_EINVAL, "target.dtype: unknown dtype 'float128'");
    CHECK_FAILS(RUN("{\"format\": \"raw\", \"data\": \"AA==\", \"dtype\": \"uint8\", \"shape\": "
                    "[1], \"compression\": \"bz2\"}",
                    "target"),
                SL_EINVAL, "target.compression: unknown compression 'bz2'");
    CHECK_FAILS(RUN("\"AQID\"", "target"), SL_EINVAL,
                "target: expected an array object or a list of numbers, got a string");
    CHECK_FAILS(RUN("7", "target"), SL_EINVAL, "target: expected an array object");
    CHECK_FAILS(slp_array_from_json(NULL, "target", NULL, &a_, m_, MSGLEN), SL_EINVAL,
                "target: expected an array object");

    /* limits: 10 elements, 40 bytes */
    const struct slp_limits *lim = small_limits(10, 40);
    CHECK_INT(run("[1, 2, 3, 4, 5]", "target", lim, &a, m), 0);
    slp_array_free(&a);
    CHECK_FAILS(run("[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]", "target", lim, &a_, m_), SL_ETOOLARGE,
                "target: shape [11] has more elements than the limit of 10");
    CHECK_FAILS(run("[1, 2, 3, 4, 5, 6]", "target", lim, &a_, m_), SL_ETOOLARGE,
                "target: shape [6] of float64 is 48 bytes, over the limit of 40 bytes");
    CHECK_INT(run("{\"format\": \"list\", \"dtype\": \"float32\", \"data\": [1, 2, 3, 4, 5, 6, 7, "
                  "8, 9, 10]}",
                  "target", lim, &a, m),
              0);
    slp_array_free(&a);
    /* raw: the limit is checked before the data (which is absent here: "" would be ESIZE) */
    CHECK_FAILS(run("{\"format\": \"raw\", \"dtype\": \"uint8\", \"shape\": [4, 4], \"data\": "
                    "\"\"}",
                    "target", lim, &a_, m_),
                SL_ETOOLARGE, "target: shape [4, 4] has more elements than the limit of 10");
    /* overflow of the element count itself: 2^62 * 4 */
    CHECK_FAILS(RUN("{\"format\": \"raw\", \"dtype\": \"uint8\", \"shape\": [4611686018427387904, "
                    "4], \"data\": \"\"}",
                    "target"),
                SL_ETOOLARGE, "target: shape [4611686018427387904, 4] has more elements");
    CHECK_FAILS(RUN("{\"format\": \"raw\", \"dtype\": \"uint8\", \"shape\": [1000000, 1000000, "
                    "1000000, 1000000], \"data\": \"\"}",
                    "target"),
                SL_ETOOLARGE, "target: shape [1000000, 1000000, 1000000, 1000000] has more");
    /* default limits: 64 Mi + 1 elements are over; 64 Mi int64 are exactly 512 MiB, which is
     * allowed (nothing is allocated: the empty data is a size error first) */
    struct slp_limits def;
    slp_limits_default(&def);
    CHECK_INT(def.max_elements, 67108864);
    CHECK_INT(def.max_array_bytes, 536870912);
    CHECK_FAILS(RUN("{\"format\": \"raw\", \"dtype\": \"uint8\", \"shape\": [67108865], \"data\": "
                    "\"\"}",
                    "target"),
                SL_ETOOLARGE, "target: shape [67108865] has more elements than the limit");
    CHECK_FAILS(RUN("{\"format\": \"raw\", \"dtype\": \"int64\", \"shape\": [33554432, 2], "
                    "\"data\": \"\"}",
                    "target"),
                SL_ESIZE, "target: expected 536870912 bytes, got 0");
    /* the byte limit on its own: 10 elements allowed, but not 10 float64 in 40 bytes */
    CHECK_FAILS(run("{\"format\": \"raw\", \"dtype\": \"float64\", \"shape\": [2, 5], \"data\": "
                    "\"\"}",
                    "target", lim, &a_, m_),
                SL_ETOOLARGE, "target: shape [2, 5] of float64 is 80 bytes, over the limit of 40");
    /* compressed payload over its cap: 40-byte limit -> cap 40 + 5 + 65536; a 70000-byte
     * base64 payload (52500 bytes) fits, 100000 bytes do not */
    {
        unsigned char *junk = calloc(100000, 1);
        char *extra = strf("\"compression\": \"gzip\", \"dtype\": \"uint8\", \"shape\": [4]");
        CHECK_FAILS(run_b64("raw", junk, 100000, extra, "target", lim, &a_, m_), SL_ETOOLARGE,
                    "target.data: 100000 decoded bytes are over the limit of 65581 bytes");
        free(extra);
        free(junk);
    }
    /* messages fit the buffer they are given */
    {
        char tiny[12];
        json_t *j = json_loads("{\"format\": \"list\", \"data\": [1], \"foo\": 1}", 0, NULL);
        memset(tiny, 'x', sizeof tiny);
        CHECK_INT(slp_array_from_json(j, "prediction", NULL, &a, tiny, sizeof tiny), SL_EINVAL);
        CHECK(strcmp(tiny, "prediction.") == 0);
        CHECK_INT(slp_array_from_json(j, "prediction", NULL, &a, NULL, 0), SL_EINVAL);
        json_decref(j);
    }
}

/* ---- a realistic size: 8x512x512 float32 (8 MiB), raw and gzip'd npy ---- */

static void test_big(void)
{
    char m[MSGLEN];
    struct slp_array a;
    size_t count = (size_t)8 * 512 * 512, nbytes = count * 4;
    float *f = malloc(nbytes);
    for (size_t i = 0; i < count; i++) {
        f[i] = (float)(i % 1000) * 0.125f - 7.0f;
    }
    CHECK_INT(run_b64("raw", f, nbytes, "\"dtype\": \"float32\", \"shape\": [8, 512, 512]",
                      "prediction", NULL, &a, m),
              0);
    CHECK(a.t.ndim == 3 && a.t.shape[0] == 8 && a.t.shape[2] == 512);
    CHECK(a.t.data && memcmp(a.t.data, f, nbytes) == 0);
    slp_array_free(&a);
    {
        char *b = b64enc((const unsigned char *)f, nbytes);
        size_t blen = strlen(b), have = 0;
        unsigned char *out = malloc(nbytes);
        CHECK_INT(slp__base64_measure(b, blen, &have, "x", m, MSGLEN), 0);
        CHECK_INT(have, nbytes);
        CHECK_INT(slp__base64_decode_range(b, blen, 0, nbytes, out, "x", m, MSGLEN), 0);
        CHECK(memcmp(out, f, nbytes) == 0);
        free(out);
        free(b);
    }
    size_t n = 0, zl = 0;
    unsigned char *b = npy_build(
        1, "{'descr': '<f4', 'fortran_order': False, 'shape': (8, 512, 512), }", 64, f, nbytes, &n);
    unsigned char *z = zpack(b, n, 31, &zl);
    CHECK_INT(run_b64("npy", z, zl, "\"compression\": \"gzip\"", "prediction", NULL, &a, m), 0);
    CHECK(a.t.data && memcmp(a.t.data, f, nbytes) == 0);
    slp_array_free(&a);
    free(z);
    free(b);
    free(f);
}

/* The value of a binary16 (mbits 10, bias 15) or bfloat16 (7, 127) finite bit pattern, by
 * IEEE 754's definition (the subnormals: 2^(1 - bias) m / 2^mbits). */
static double narrow_value(uint32_t b, int mbits, int bias)
{
    const int e = (int)(b >> mbits) & ((1 << (15 - mbits)) - 1), m = (int)b & ((1 << mbits) - 1);
    const double v = e ? ldexp((1 << mbits) + m, e - bias - mbits) : ldexp(m, 1 - bias - mbits);
    return b & 0x8000 ? -v : v;
}

/* Format list into dtype dt (float16: mbits 10, bias 15, largest pattern 0x7bff; bfloat16: 7,
 * 127, 0x7f7f), both signs, against the definition: every finite value gives its own pattern;
 * each midpoint of two neighbours (exact in double) the one with the even pattern; a double
 * just below or above the midpoint the lower or upper one (nearest, no double rounding); the
 * midpoint above the largest value is out of range. */
static void check_narrow_list(const char *dt, int mbits, int bias, uint32_t top)
{
    const size_t cap = (size_t)(top + 1) * 2 * 4;
    double *v = malloc(sizeof *v * cap);
    uint16_t *want = malloc(sizeof *want * cap);
    size_t n = 0;
    for (uint32_t sign = 0; sign <= 0x8000; sign += 0x8000) {
        for (uint32_t k = 0; k <= top; k++) {
            v[n] = narrow_value(sign | k, mbits, bias);
            want[n++] = (uint16_t)(sign | k);
            if (k == top) {
                continue;
            }
            const double a = narrow_value(sign | k, mbits, bias);
            const double b = narrow_value(sign | (k + 1), mbits, bias);
            const double mid = (a + b) / 2;
            v[n] = mid;
            want[n++] = (uint16_t)(sign | (k % 2 ? k + 1 : k));
            v[n] = nextafter(mid, a);
            want[n++] = (uint16_t)(sign | k);
            v[n] = nextafter(mid, b);
            want[n++] = (uint16_t)(sign | (k + 1));
        }
    }
    size_t len = 64 + n * 26;
    char *js = malloc(len);
    size_t at =
        (size_t)snprintf(js, len, "{\"format\": \"list\", \"dtype\": \"%s\", \"data\": [", dt);
    for (size_t i = 0; i < n; i++) {
        at += (size_t)snprintf(js + at, len - at, "%s%.17e", i ? "," : "", v[i]);
    }
    snprintf(js + at, len - at, "]}");
    struct slp_array a;
    char m[MSGLEN];
    CHECK_INT(run(js, "prediction", NULL, &a, m), 0);
    const uint16_t *h = a.t.data;
    int bad = 0;
    for (size_t i = 0; h && i < n; i++) {
        if (h[i] != want[i] && bad++ < 5) {
            fprintf(stderr, "%s list: %.17e gave 0x%04x, want 0x%04x\n", dt, v[i], h[i], want[i]);
        }
    }
    CHECK_INT(bad, 0);
    slp_array_free(&a);
    /* the midpoint above the largest finite value rounds to infinity: out of range */
    const double over = (narrow_value(top, mbits, bias) + ldexp(1.0, bias + 1)) / 2;
    snprintf(js, len, "{\"format\": \"list\", \"dtype\": \"%s\", \"data\": [%.17e]}", dt, over);
    CHECK_INT(run(js, "prediction", NULL, &a, m), SL_ERANGE);
    snprintf(js, len, "{\"format\": \"list\", \"dtype\": \"%s\", \"data\": [%.17e]}", dt,
             -nextafter(over, 0));
    CHECK_INT(run(js, "prediction", NULL, &a, m), 0);
    CHECK(a.t.data && ((const uint16_t *)a.t.data)[0] == (0x8000 | top));
    slp_array_free(&a);
    free(js);
    free(v);
    free(want);
}

static void test_list_narrow_floats(void)
{
    check_narrow_list("float16", 10, 15, 0x7bff);
    check_narrow_list("bfloat16", 7, 127, 0x7f7f);
    /* by hand: bfloat16 1 = 0x3f80, 1 + 2^-8 ties to even 0x3f80, 1 + 3 * 2^-8 ties up to
     * 0x3f82, 3.3895313892515355e38 = 0x7f7f (the largest), 3.4e38 is out of range */
    struct slp_array a;
    char m[MSGLEN];
    CHECK_INT(run("{\"format\": \"list\", \"dtype\": \"bfloat16\", \"data\": [1, 1.00390625, "
                  "1.01171875, 3.3895313892515355e38]}",
                  "prediction", NULL, &a, m),
              0);
    const uint16_t *h = a.t.data;
    CHECK(h && h[0] == 0x3f80 && h[1] == 0x3f80 && h[2] == 0x3f82 && h[3] == 0x7f7f);
    slp_array_free(&a);
    CHECK_INT(run("{\"format\": \"list\", \"dtype\": \"bfloat16\", \"data\": [3.4e38]}",
                  "prediction", NULL, &a, m),
              SL_ERANGE);
    CHECK(strcmp(m, "prediction.data[0]: 3.4e+38 is not a valid bfloat16 (out of range, |v| < "
                    "3.3961775e38)") == 0);
}

static const struct check_test tests[] = {
    CHECK_TEST(test_list_narrow_floats),
    CHECK_TEST(test_base64),
    CHECK_TEST(test_base64_fast),
    CHECK_TEST(test_inflate),
    CHECK_TEST(test_inflate_fast),
    CHECK_TEST(test_npy_header),
    CHECK_TEST(test_npy_array),
    CHECK_TEST(test_npy_compressed),
    CHECK_TEST(test_raw),
    CHECK_TEST(test_list),
    CHECK_TEST(test_keys_and_limits),
    CHECK_TEST(test_big),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_array", tests);
}
