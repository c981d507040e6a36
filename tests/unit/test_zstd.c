/* test_zstd.c - zstd on the wire (RFC 8878): proto/inflate.c's zstd row under the rules gzip
 * has (exact sizes, the expected + 1 cap, trailing data), plus its own (one frame, no skippable
 * frame, no dictionary, a declared size checked at the header, the 8 MiB window), the arrays'
 * "compression": "zstd" and the server's Accept-Encoding choice. Frames are made here by
 * libzstd's encoder, or written byte by byte from RFC 8878 section 3.1.1 where the encoder
 * would not make them; every expected value is counted in the test. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "../check.h"
#include "array_internal.h"
#include "inflate.h"
#include "proto.h"
#include "segloss.h"
#include "server.h"

#define MSGLEN 512

/* One frame of in[0..len) at level 3 with its content size (ZSTD_compress writes it) into a
 * new buffer; its length in *n. */
static unsigned char *pack(const void *in, size_t len, size_t *n)
{
    size_t cap = ZSTD_compressBound(len);
    unsigned char *out = malloc(cap);
    *n = out ? ZSTD_compress(out, cap, in, len, 3) : 0;
    CHECK(out && !ZSTD_isError(*n));
    return out;
}

/* One frame without a content size (the streaming encoder, never told the size), with a
 * checksum; a new buffer, its length in *n. */
static unsigned char *pack_stream(const void *in, size_t len, size_t *n)
{
    size_t cap = ZSTD_compressBound(len) + 64;
    unsigned char *out = malloc(cap);
    ZSTD_CCtx *c = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
    ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0);
    ZSTD_outBuffer o = {out, cap, 0};
    ZSTD_inBuffer i = {in, len, 0};
    size_t r = ZSTD_compressStream2(c, &o, &i, ZSTD_e_end);
    ZSTD_freeCCtx(c);
    CHECK(r == 0);
    *n = o.pos;
    return out;
}

/* The bytes 0, 1, ..., 250, 0, 1, ... (n of them): compressible, and any shift shows. */
static unsigned char *pattern(size_t n)
{
    unsigned char *p = malloc(n);
    for (size_t i = 0; p && i < n; i++) {
        p[i] = (unsigned char)(i % 251);
    }
    return p;
}

static void test_exact(void)
{
    size_t n = 100000, zl = 0, sl = 0;
    unsigned char *src = pattern(n), *out = malloc(n + 1);
    unsigned char *z = pack(src, n, &zl), *s = pack_stream(src, n, &sl);
    char m[MSGLEN];
    /* both frames give exactly the source */
    CHECK_INT(slp_inflate_exact(z, zl, SLP_COMP_ZSTD, out, n, "p", m, sizeof m), 0);
    CHECK(memcmp(out, src, n) == 0);
    memset(out, 0, n);
    CHECK_INT(slp_inflate_exact(s, sl, SLP_COMP_ZSTD, out, n, "p", m, sizeof m), 0);
    CHECK(memcmp(out, src, n) == 0);
    /* a declared size other than the expected one: refused at the header */
    CHECK_INT(slp_inflate_exact(z, zl, SLP_COMP_ZSTD, out, n - 1, "p", m, sizeof m), SL_ESIZE);
    CHECK_PREFIX(m, "p: expected 99999 bytes, the zstd frame declares 100000");
    CHECK_INT(slp_inflate_exact(z, zl, SLP_COMP_ZSTD, out, n + 1, "p", m, sizeof m), SL_ESIZE);
    CHECK_PREFIX(m, "p: expected 100001 bytes, the zstd frame declares 100000");
    /* no declared size: the stream stops at expected + 1, or ends short */
    CHECK_INT(slp_inflate_exact(s, sl, SLP_COMP_ZSTD, out, n - 1, "p", m, sizeof m), SL_ESIZE);
    CHECK_PREFIX(m, "p: expected 99999 bytes, got at least 100000 after inflating");
    CHECK_INT(slp_inflate_exact(s, sl, SLP_COMP_ZSTD, out, n + 1, "p", m, sizeof m), SL_ESIZE);
    CHECK_PREFIX(m, "p: expected 100001 bytes, got 100000 after inflating");
    /* truncated by one byte (both kinds), or to its header */
    CHECK_INT(slp_inflate_exact(z, zl - 1, SLP_COMP_ZSTD, out, n, "p", m, sizeof m), SL_EMALFORMED);
    CHECK_PREFIX(m, "p: zstd frame is truncated (the input ends before the frame does)");
    CHECK_INT(slp_inflate_exact(s, sl - 1, SLP_COMP_ZSTD, out, n, "p", m, sizeof m), SL_EMALFORMED);
    CHECK_PREFIX(m, "p: zstd frame is truncated");
    CHECK_INT(slp_inflate_exact(z, 3, SLP_COMP_ZSTD, out, n, "p", m, sizeof m), SL_EMALFORMED);
    CHECK_PREFIX(m, "p: zstd frame is truncated (the input ends in its header)");
    CHECK_INT(slp_inflate_exact(z, 0, SLP_COMP_ZSTD, out, n, "p", m, sizeof m), SL_EMALFORMED);
    /* a gzip stream is no zstd frame */
    CHECK_INT(slp_inflate_exact((const unsigned char *)"\x1f\x8b\x08\x00\x00", 5, SLP_COMP_ZSTD,
                                out, n, "p", m, sizeof m),
              SL_EMALFORMED);
    CHECK_PREFIX(m, "p: not a zstd frame (no 28 b5 2f fd magic)");
    /* a flipped byte in the middle: corrupt, never a success (the frame has a checksum) */
    s[sl / 2] ^= 0x55;
    CHECK(slp_inflate_exact(s, sl, SLP_COMP_ZSTD, out, n, "p", m, sizeof m) != 0);
    free(src);
    free(out);
    free(z);
    free(s);
}

static void test_frames(void)
{
    const char *text = "zstd frames, one at a time";
    size_t tl = strlen(text), zl = 0;
    unsigned char *z = pack(text, tl, &zl);
    unsigned char *two = malloc(2 * zl + 16), out[64];
    char m[MSGLEN];
    /* two frames back to back, which zstd -d would join: refused, whatever the size asked */
    memcpy(two, z, zl);
    memcpy(two + zl, z, zl);
    CHECK_INT(slp_inflate_exact(two, 2 * zl, SLP_COMP_ZSTD, out, tl, "p", m, sizeof m),
              SL_EMALFORMED);
    CHECK_PREFIX(m, "p: ");
    CHECK_HAS(m, "after the end of the zstd frame (one frame only, nothing after it)");
    CHECK_INT(slp_inflate_exact(two, 2 * zl, SLP_COMP_ZSTD, out, 2 * tl, "p", m, sizeof m),
              SL_ESIZE);
    /* one trailing byte */
    memcpy(two, z, zl);
    two[zl] = 0;
    CHECK_INT(slp_inflate_exact(two, zl + 1, SLP_COMP_ZSTD, out, tl, "p", m, sizeof m),
              SL_EMALFORMED);
    CHECK_PREFIX(m, "p: 1 byte after the end of the zstd frame");
    /* a skippable frame (magic 0x184D2A50, 4-byte length 3, 3 bytes) before the frame */
    static const unsigned char skip[] = {0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 'a', 'b', 'c'};
    memcpy(two, skip, sizeof skip);
    memcpy(two + sizeof skip, z, zl);
    CHECK_INT(slp_inflate_exact(two, sizeof skip + zl, SLP_COMP_ZSTD, out, tl, "p", m, sizeof m),
              SL_EMALFORMED);
    CHECK_PREFIX(m, "p: skippable zstd frames are not accepted");
    /* and after it */
    memcpy(two, z, zl);
    memcpy(two + zl, skip, sizeof skip);
    CHECK_INT(slp_inflate_exact(two, zl + sizeof skip, SLP_COMP_ZSTD, out, tl, "p", m, sizeof m),
              SL_EMALFORMED);
    CHECK_PREFIX(m, "p: 11 bytes after the end of the zstd frame");
    free(z);
    free(two);
}

/* Headers written from RFC 8878 3.1.1.1: magic, Frame_Header_Descriptor, then the fields. */
static void test_headers(void)
{
    unsigned char out[16];
    char m[MSGLEN];
    /* FHD 0x40: a 2-byte content size 0x4099 + 256 = 16793 after the window 0x58; then the
     * last block, compressed, of 0 bytes (block header 05 00 00): a frame holding nothing,
     * which libzstd 1.5.4 ends without an error (found by fuzz_inflate) */
    static const unsigned char shortf[] = {0x28, 0xb5, 0x2f, 0xfd, 0x40, 0x58,
                                           0x99, 0x40, 0x05, 0x00, 0x00};
    struct slp__inflater z;
    int more = 0;
    CHECK_INT(slp__inflater_init(&z, shortf, sizeof shortf, SLP_COMP_ZSTD, "p", "p", m, sizeof m),
              0);
    CHECK_INT(slp__inflater_at_end(&z, &more, m, sizeof m), SL_EMALFORMED);
    CHECK_PREFIX(m, "p: corrupt zstd frame: it declares 16793 bytes and holds 0");
    slp__inflater_end(&z);
    /* with more room libzstd sees it itself */
    struct slp_dynbuf b;
    slp_dynbuf_init(&b, 1 << 20);
    CHECK_INT(slp_inflate_all(shortf, sizeof shortf, SLP_COMP_ZSTD, &b, "body", m, sizeof m),
              SL_EMALFORMED);
    CHECK_PREFIX(m, "body: corrupt zstd frame: ");
    slp_dynbuf_free(&b);
    /* FHD 0x00: no content size, not single-segment, so a Window_Descriptor follows:
     * 0x70 = exponent 14, mantissa 0: 2^(10+14) = 16 MiB, over 8 MiB */
    static const unsigned char w16[] = {0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x70, 0, 0, 0};
    CHECK_INT(slp_inflate_exact(w16, sizeof w16, SLP_COMP_ZSTD, out, 1, "p", m, sizeof m),
              SL_ETOOLARGE);
    CHECK_PREFIX(m, "p: zstd frame asks for a window of 16777216 bytes, over the 8388608");
    /* 0x69 = exponent 13, mantissa 1: 8 MiB + 1 MiB */
    static const unsigned char w9[] = {0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x69, 0, 0, 0};
    CHECK_INT(slp_inflate_exact(w9, sizeof w9, SLP_COMP_ZSTD, out, 1, "p", m, sizeof m),
              SL_ETOOLARGE);
    CHECK_HAS(m, "window of 9437184 bytes");
    /* 0x68 = exactly 8 MiB: accepted; the block that should follow is missing */
    static const unsigned char w8[] = {0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x68};
    CHECK_INT(slp_inflate_exact(w8, sizeof w8, SLP_COMP_ZSTD, out, 1, "p", m, sizeof m),
              SL_EMALFORMED);
    CHECK_PREFIX(m, "p: zstd frame is truncated");
    /* FHD 0x01: a 1-byte Dictionary_ID (7) after the Window_Descriptor */
    static const unsigned char dict[] = {0x28, 0xb5, 0x2f, 0xfd, 0x01, 0x50, 0x07, 0, 0, 0};
    CHECK_INT(slp_inflate_exact(dict, sizeof dict, SLP_COMP_ZSTD, out, 1, "p", m, sizeof m),
              SL_EMALFORMED);
    CHECK_PREFIX(m, "p: zstd frame needs dictionary 7 (not supported)");
    /* FHD 0x08: the reserved bit */
    static const unsigned char res[] = {0x28, 0xb5, 0x2f, 0xfd, 0x08, 0x50, 0, 0, 0};
    CHECK_INT(slp_inflate_exact(res, sizeof res, SLP_COMP_ZSTD, out, 1, "p", m, sizeof m),
              SL_EMALFORMED);
    CHECK_PREFIX(m, "p: corrupt zstd frame header (reserved bit set)");
    /* FHD 0xe0: single segment with an 8-byte content size of 2^40: a lie about 1 TiB, refused
     * at the header when 16 bytes are expected (no window to allocate, nothing decoded) */
    static const unsigned char big[] = {0x28, 0xb5, 0x2f, 0xfd, 0xe0, 0, 0, 0, 0, 0, 1, 0, 0};
    CHECK_INT(slp_inflate_exact(big, sizeof big, SLP_COMP_ZSTD, out, 16, "p", m, sizeof m),
              SL_ESIZE);
    CHECK_PREFIX(m, "p: expected 16 bytes, the zstd frame declares 1099511627776");
    /* FHD 0x40 with a 2-byte content size: the value + 256 (RFC 8878): 0x0000 declares 256 */
    static const unsigned char two[] = {0x28, 0xb5, 0x2f, 0xfd, 0x40, 0x50, 0, 0};
    CHECK_INT(slp_inflate_exact(two, sizeof two, SLP_COMP_ZSTD, out, 16, "p", m, sizeof m),
              SL_ESIZE);
    CHECK_PREFIX(m, "p: expected 16 bytes, the zstd frame declares 256");
}

/* A bomb: 64 MiB of zeros is a frame of a few KiB. Asked for 1000 bytes it stops at 1001; with
 * its size declared, an HTTP body's cap refuses it at the header. */
static void test_bomb(void)
{
    size_t big = (size_t)64 << 20, zl = 0, sl = 0;
    unsigned char *zeros = calloc(1, big);
    unsigned char *z = pack(zeros, big, &zl), *s = pack_stream(zeros, big, &sl);
    free(zeros);
    CHECK(zl < 16384 && sl < 16384);
    unsigned char out[1000];
    char m[MSGLEN];
    CHECK_INT(slp_inflate_exact(s, sl, SLP_COMP_ZSTD, out, sizeof out, "p", m, sizeof m), SL_ESIZE);
    CHECK_PREFIX(m, "p: expected 1000 bytes, got at least 1001 after inflating (stopped there)");
    CHECK_INT(slp_inflate_exact(z, zl, SLP_COMP_ZSTD, out, sizeof out, "p", m, sizeof m), SL_ESIZE);
    CHECK_PREFIX(m, "p: expected 1000 bytes, the zstd frame declares 67108864");
    struct slp_dynbuf b;
    slp_dynbuf_init(&b, 1 << 20);
    CHECK_INT(slp_inflate_all(z, zl, SLP_COMP_ZSTD, &b, "body", m, sizeof m), SL_ETOOLARGE);
    CHECK_PREFIX(m, "body inflates to more than 1048576 bytes (the zstd frame declares 67108864)");
    CHECK_INT(b.len, 0); /* not a byte decoded */
    slp_dynbuf_free(&b);
    slp_dynbuf_init(&b, 1 << 20);
    CHECK_INT(slp_inflate_all(s, sl, SLP_COMP_ZSTD, &b, "body", m, sizeof m), SL_ETOOLARGE);
    CHECK_PREFIX(m, "body inflates to more than 1048576 bytes");
    CHECK(b.len <= (size_t)1 << 20);
    slp_dynbuf_free(&b);
    free(z);
    free(s);
}

static void test_inflate_all(void)
{
    size_t n = 300000, zl = 0, sl = 0;
    unsigned char *src = pattern(n);
    unsigned char *z = pack(src, n, &zl), *s = pack_stream(src, n, &sl);
    char m[MSGLEN];
    for (int k = 0; k < 2; k++) {
        struct slp_dynbuf b;
        slp_dynbuf_init(&b, n);
        CHECK_INT(slp_inflate_all(k ? s : z, k ? sl : zl, SLP_COMP_ZSTD, &b, "body", m, sizeof m),
                  0);
        CHECK(b.len == n && memcmp(b.data, src, n) == 0);
        slp_dynbuf_free(&b);
        /* one byte under the size */
        slp_dynbuf_init(&b, n - 1);
        CHECK_INT(slp_inflate_all(k ? s : z, k ? sl : zl, SLP_COMP_ZSTD, &b, "body", m, sizeof m),
                  SL_ETOOLARGE);
        CHECK_PREFIX(m, "body inflates to more than 299999 bytes");
        slp_dynbuf_free(&b);
    }
    free(src);
    free(z);
    free(s);
}

/* {"format": ..., "compression": "zstd", ...} arrays, as "prediction". */
static char *b64(const unsigned char *p, size_t n)
{
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *o = malloc((n + 2) / 3 * 4 + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        o[k++] = alpha[(v >> 18) & 63];
        o[k++] = alpha[(v >> 12) & 63];
        o[k++] = i + 1 < n ? alpha[(v >> 6) & 63] : '=';
        o[k++] = i + 2 < n ? alpha[v & 63] : '=';
    }
    o[k] = '\0';
    return o;
}

static int decode(const char *fmt, const unsigned char *z, size_t zl, const char *extra,
                  struct slp_array *a, char *m)
{
    char *e = b64(z, zl);
    size_t len = strlen(e) + 256;
    char *js = malloc(len);
    snprintf(js, len, "{\"format\": \"%s\", \"compression\": \"zstd\", \"data\": \"%s\"%s}", fmt, e,
             extra);
    json_t *j = json_loads(js, 0, NULL);
    struct slp_limits lim;
    slp_limits_default(&lim);
    memset(a, 0, sizeof *a);
    int rc = slp_array_from_json(j, "prediction", &lim, a, m, MSGLEN);
    json_decref(j);
    free(js);
    free(e);
    return rc;
}

static void test_arrays(void)
{
    /* float32 [2, 3]: 0.5 * i; a .npy v1.0 file with NumPy's 128-byte header */
    float v[6];
    for (int i = 0; i < 6; i++) {
        v[i] = 0.5f * (float)i;
    }
    const int64_t shape[2] = {2, 3};
    unsigned char npy[128 + sizeof v];
    size_t hl = slp_npy_write_header(SL_DT_F32, shape, 2, 0, (char *)npy, 128);
    CHECK_INT(hl, 128);
    memcpy(npy + hl, v, sizeof v);
    size_t zl = 0, rl = 0, sl = 0, wl = 0;
    unsigned char *z = pack(npy, sizeof npy, &zl), *r = pack(v, sizeof v, &rl);
    unsigned char *s = pack_stream(npy, sizeof npy, &sl), *w = pack(npy, sizeof npy - 4, &wl);
    struct slp_array a;
    char m[MSGLEN];
    /* npy with and without a declared size, raw */
    for (int k = 0; k < 3; k++) {
        int rc = k == 0 ? decode("npy", z, zl, "", &a, m)
                 : k == 1
                     ? decode("npy", s, sl, "", &a, m)
                     : decode("raw", r, rl, ", \"dtype\": \"float32\", \"shape\": [2, 3]", &a, m);
        CHECK_INT(rc, 0);
        CHECK(a.t.dtype == SL_DT_F32 && a.t.ndim == 2 && a.t.shape[0] == 2 && a.t.shape[1] == 3);
        for (int i = 0; rc == 0 && i < 6; i++) {
            CHECK_CLOSE(((const float *)a.t.data)[i], 0.5 * i, 0, 0);
        }
        slp_array_free(&a);
    }
    /* a frame of the file less its last element declares 148 bytes for a header of 128 and
     * 24 data bytes: refused at the frame header */
    CHECK_INT(decode("npy", w, wl, "", &a, m), SL_ESIZE);
    CHECK_PREFIX(m, "prediction: expected 24 data bytes after the npy header, the zstd frame "
                    "declares 148 bytes for the whole file (128 of header)");
    /* raw: shape says 8 floats (32 bytes), the frame declares 24 */
    CHECK_INT(decode("raw", r, rl, ", \"dtype\": \"float32\", \"shape\": [2, 4]", &a, m), SL_ESIZE);
    CHECK_PREFIX(m, "prediction: expected 32 bytes, the zstd frame declares 24");
    /* truncated: names the data */
    CHECK_INT(decode("npy", z, zl - 2, "", &a, m), SL_EMALFORMED);
    CHECK_PREFIX(m, "prediction.data: zstd frame is truncated");
    /* a zstd part sent as "none" gets a hint */
    struct slp_part part = {"pred", z, zl};
    struct slp_parts parts = {&part, 1};
    json_t *j = json_loads("{\"format\": \"npy\", \"part\": \"pred\"}", 0, NULL);
    struct slp_limits lim;
    slp_limits_default(&lim);
    memset(&a, 0, sizeof a);
    CHECK_INT(slp_array_from_json_parts(j, "prediction", &lim, &parts, &a, m, MSGLEN),
              SL_EMALFORMED);
    CHECK_HAS(m, "it looks zstd-compressed: set \"compression\": \"zstd\"");
    json_decref(j);
    /* and read as zstd, it decodes */
    j = json_loads("{\"format\": \"npy\", \"part\": \"pred\", \"compression\": \"zstd\"}", 0, NULL);
    CHECK_INT(slp_array_from_json_parts(j, "prediction", &lim, &parts, &a, m, MSGLEN), 0);
    CHECK(a.t.ndim == 2 && ((const float *)a.t.data)[5] == 2.5f);
    slp_array_free(&a);
    json_decref(j);
    free(z);
    free(r);
    free(s);
    free(w);
}

/* The names come from the decoder table; the catalog lists them. */
static void test_names(void)
{
    char buf[80];
    slp__compression_names(buf, sizeof buf);
    CHECK(strcmp(buf, "none, gzip, zlib, deflate, auto or zstd") == 0);
    enum slp_compression c = SLP_COMP_NONE;
    CHECK_INT(slp__compression_from_name("zstd", &c), 0);
    CHECK_INT(c, SLP_COMP_ZSTD);
    CHECK_INT(slp__compression_from_name("ZSTD", &c), -1);
    CHECK(strcmp(slp__compression_name(SLP_COMP_ZSTD), "zstd") == 0);
    size_t len = 0;
    char *cat = slp_catalog_json(&len);
    json_t *j = cat ? json_loadb(cat, len, 0, NULL) : NULL;
    json_t *comp = json_object_get(j, "compression"), *ce = json_object_get(j, "content_encoding");
    CHECK_INT(json_array_size(comp), 6);
    CHECK(strcmp(json_string_value(json_array_get(comp, 5)), "zstd") == 0);
    CHECK_INT(json_array_size(ce), 4);
    CHECK(strcmp(json_string_value(json_array_get(ce, 3)), "zstd") == 0);
    json_decref(j);
    free(cat);
}

/* Accept-Encoding's q-values (RFC 9110 12.5.3): zstd when named with a q at least gzip's. */
static void test_accept(void)
{
    CHECK_INT(srv_accept_encoding_pick(NULL), SRV_ENC_IDENTITY);
    CHECK_INT(srv_accept_encoding_pick("identity"), SRV_ENC_IDENTITY);
    CHECK_INT(srv_accept_encoding_pick("zstd"), SRV_ENC_ZSTD);
    CHECK_INT(srv_accept_encoding_pick("ZSTD"), SRV_ENC_ZSTD);
    CHECK_INT(srv_accept_encoding_pick("gzip"), SRV_ENC_GZIP);
    /* curl --compressed and browsers: all at q=1, a tie */
    CHECK_INT(srv_accept_encoding_pick("deflate, gzip, br, zstd"), SRV_ENC_ZSTD);
    CHECK_INT(srv_accept_encoding_pick("gzip, zstd;q=0.5"), SRV_ENC_GZIP);
    CHECK_INT(srv_accept_encoding_pick("gzip;q=0.5, zstd;q=0.8"), SRV_ENC_ZSTD);
    CHECK_INT(srv_accept_encoding_pick("zstd;q=0, gzip"), SRV_ENC_GZIP);
    CHECK_INT(srv_accept_encoding_pick("zstd;q=0"), SRV_ENC_IDENTITY);
    /* "*" stands for gzip only; named zstd against it compares with its q */
    CHECK_INT(srv_accept_encoding_pick("*"), SRV_ENC_GZIP);
    CHECK_INT(srv_accept_encoding_pick("*;q=0.9, zstd;q=0.5"), SRV_ENC_GZIP);
    CHECK_INT(srv_accept_encoding_pick("zstd, *;q=0"), SRV_ENC_ZSTD);
    CHECK_INT(srv_accept_encoding_pick("zstdx, xzstd"), SRV_ENC_IDENTITY);
    /* Content-Encoding */
    enum srv_encoding e = SRV_ENC_IDENTITY;
    CHECK_INT(srv_parse_encoding(" zstd ", &e), 0);
    CHECK_INT(e, SRV_ENC_ZSTD);
    CHECK_INT(srv_parse_encoding("zstd, gzip", &e), SL_EUNSUPPORTED);
}

static const struct check_test tests[] = {
    CHECK_TEST(test_exact), CHECK_TEST(test_frames),      CHECK_TEST(test_headers),
    CHECK_TEST(test_bomb),  CHECK_TEST(test_inflate_all), CHECK_TEST(test_arrays),
    CHECK_TEST(test_names), CHECK_TEST(test_accept),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_zstd", tests);
}
