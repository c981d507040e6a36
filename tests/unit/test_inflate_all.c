/* test_inflate_all.c - proto/inflate.h (a whole gzip/zlib/deflate stream into a capped dynbuf,
 * HTTP's deflate kind) and proto/jsonw.h (JSON string literals). Streams are made here with
 * zlib; expected lengths and escapes are counted by hand. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../check.h"
#include "inflate.h"
#include "jsonw.h"
#include "segloss.h"

/* Compresses in[0..len) with zlib's deflate (window_bits 31 gzip, 15 zlib, -15 raw) into out
 * (cap bytes); returns the compressed length, 0 on failure. */
static size_t zpack(const void *in, size_t len, int window_bits, unsigned char *out, size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        return 0;
    }
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    size_t n = cap - z.avail_out;
    deflateEnd(&z);
    return rc == Z_STREAM_END ? n : 0;
}

static void test_kinds(void)
{
    /* 100000 bytes of a repeating 10-byte pattern */
    size_t len = 100000;
    char *plain = malloc(len);
    unsigned char *z = malloc(len);
    CHECK(plain && z);
    if (!plain || !z) {
        free(plain);
        free(z);
        return;
    }
    for (size_t i = 0; i < len; i++) {
        plain[i] = (char)('0' + i % 10);
    }
    static const int wbits[] = {31, 15, -15};
    static const enum slp_compression comp[] = {SLP_COMP_GZIP, SLP_COMP_ZLIB, SLP_COMP_DEFLATE};
    for (int k = 0; k < 3; k++) {
        size_t zlen = zpack(plain, len, wbits[k], z, len);
        CHECK(zlen > 0);
        char msg[256] = "";
        struct slp_dynbuf out;
        /* exactly the size fits */
        slp_dynbuf_init(&out, len);
        CHECK_INT(slp_inflate_all(z, zlen, comp[k], &out, "body", msg, sizeof msg), 0);
        CHECK(out.len == len && memcmp(out.data, plain, len) == 0);
        slp_dynbuf_free(&out);
        /* one byte less is over the cap */
        slp_dynbuf_init(&out, len - 1);
        CHECK_INT(slp_inflate_all(z, zlen, comp[k], &out, "body", msg, sizeof msg), SL_ETOOLARGE);
        CHECK_HAS(msg, "body inflates to more than 99999 bytes");
        slp_dynbuf_free(&out);
        /* cut short */
        slp_dynbuf_init(&out, len);
        CHECK_INT(slp_inflate_all(z, zlen / 2, comp[k], &out, "body", msg, sizeof msg),
                  SL_EMALFORMED);
        CHECK_HAS(msg, "truncated");
        slp_dynbuf_free(&out);
        /* HTTP's deflate: the zlib wrapper is found by its header, raw deflate otherwise */
        if (k > 0) {
            CHECK_INT(slp_http_deflate_kind(z, zlen), comp[k]);
        }
    }
    /* trailing bytes after a zlib stream */
    size_t zlen = zpack(plain, 1000, 15, z, len);
    memcpy(z + zlen, "xyz", 3);
    struct slp_dynbuf out;
    char msg[256] = "";
    slp_dynbuf_init(&out, len);
    CHECK_INT(slp_inflate_all(z, zlen + 3, SLP_COMP_ZLIB, &out, "body", msg, sizeof msg),
              SL_EMALFORMED);
    CHECK_HAS(msg, "3 bytes of trailing data");
    slp_dynbuf_free(&out);
    /* two gzip members are one stream: 1000 + 500 bytes */
    zlen = zpack(plain, 1000, 31, z, len);
    zlen += zpack(plain, 500, 31, z + zlen, len - zlen);
    slp_dynbuf_init(&out, len);
    CHECK_INT(slp_inflate_all(z, zlen, SLP_COMP_GZIP, &out, "body", msg, sizeof msg), 0);
    CHECK_INT(out.len, 1500);
    slp_dynbuf_free(&out);
    free(plain);
    free(z);
}

static void test_json_str(void)
{
    struct slp_dynbuf b;
    slp_dynbuf_init(&b, 100);
    /* quote and backslash escaped, a tab and the byte 0xc3 as \u00XX */
    CHECK_INT(slp_json_add_str(&b, "a\"b\\c\t\xc3", SLP_JSON_ASCII), 0);
    CHECK(strcmp(b.data, "\"a\\\"b\\\\c\\u0009\\u00c3\"") == 0);
    slp_dynbuf_reset(&b);
    CHECK_INT(slp_json_add_str(&b, "\xc3\xa9", 0), 0); /* UTF-8 as it is */
    CHECK(strcmp(b.data, "\"\xc3\xa9\"") == 0);
    slp_dynbuf_reset(&b);
    CHECK_INT(slp_json_add_str(&b, NULL, 0), 0);
    CHECK(strcmp(b.data, "\"\"") == 0);
    slp_dynbuf_free(&b);
    /* over the cap: the buffer's sticky error */
    slp_dynbuf_init(&b, 4);
    CHECK_INT(slp_json_add_str(&b, "abcdef", 0), SL_ETOOLARGE);
    slp_dynbuf_free(&b);
}

/* A gzip body's ISIZE trailer is a hint only: right, the body inflates (one libdeflate call);
 * wrong by one either way, or over the cap, the answer is zlib's as it always was; bytes
 * appended after what a buffer already holds; random bytes (incompressible) too. */
static void test_gzip_size_hint(void)
{
    size_t len = 300000;
    unsigned char *plain = malloc(len), *z = malloc(len + 1024);
    CHECK(plain && z);
    if (!plain || !z) {
        free(plain);
        free(z);
        return;
    }
    uint32_t s = 7;
    for (size_t i = 0; i < len; i++) {
        s = s * 1103515245u + 12345u;
        plain[i] = i < len / 2 ? (unsigned char)('a' + i % 7) : (unsigned char)(s >> 24);
    }
    size_t zlen = zpack(plain, len, 31, z, len + 1024);
    CHECK(zlen > 18);
    /* ISIZE is the last 4 bytes, little-endian: 300000 = 0x000493e0 */
    CHECK(z[zlen - 4] == 0xe0 && z[zlen - 3] == 0x93 && z[zlen - 2] == 0x04 && z[zlen - 1] == 0);
    char msg[256] = "";
    struct slp_dynbuf out;
    slp_dynbuf_init(&out, len + 10);
    CHECK_INT(slp_dynbuf_add(&out, "head", 4), 0);
    CHECK_INT(slp_inflate_all(z, zlen, SLP_COMP_GZIP, &out, "body", msg, sizeof msg), 0);
    CHECK(out.len == len + 4 && memcmp(out.data + 4, plain, len) == 0 &&
          memcmp(out.data, "head", 4) == 0);
    slp_dynbuf_free(&out);
    /* the cap exactly, then one byte under it (with the hint in range of neither path) */
    slp_dynbuf_init(&out, len);
    CHECK_INT(slp_inflate_all(z, zlen, SLP_COMP_GZIP, &out, "body", msg, sizeof msg), 0);
    CHECK(out.len == len && memcmp(out.data, plain, len) == 0);
    slp_dynbuf_free(&out);
    slp_dynbuf_init(&out, len - 1);
    CHECK_INT(slp_inflate_all(z, zlen, SLP_COMP_GZIP, &out, "body", msg, sizeof msg), SL_ETOOLARGE);
    CHECK_HAS(msg, "body inflates to more than 299999 bytes");
    slp_dynbuf_free(&out);
    /* a wrong ISIZE: zlib checks the trailer and refuses the stream, as before */
    for (int d = -1; d <= 1; d += 2) {
        z[zlen - 4] = (unsigned char)(0xe0 + d);
        slp_dynbuf_init(&out, 2 * len);
        CHECK_INT(slp_inflate_all(z, zlen, SLP_COMP_GZIP, &out, "body", msg, sizeof msg),
                  SL_EMALFORMED);
        CHECK_HAS(msg, "incorrect length check");
        slp_dynbuf_free(&out);
    }
    z[zlen - 4] = 0xe0;
    /* a corrupt byte inside the data: zlib's message */
    z[zlen / 2] ^= 0x55;
    slp_dynbuf_init(&out, 2 * len);
    CHECK_INT(slp_inflate_all(z, zlen, SLP_COMP_GZIP, &out, "body", msg, sizeof msg),
              SL_EMALFORMED);
    slp_dynbuf_free(&out);
    free(plain);
    free(z);
}

static const struct check_test tests[] = {
    CHECK_TEST(test_kinds),
    CHECK_TEST(test_gzip_size_hint),
    CHECK_TEST(test_json_str),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_inflate_all", tests);
}
