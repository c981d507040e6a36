/* test_rle.c - proto/fmt_rle.c: the mask formats rle (Kaggle EncodedPixels) and coco_rle (COCO RLE,
 * counts list and compressed string), through slp_array_from_json.
 * Expected masks and strings are worked out by hand in the comments; the compressed strings of
 * the golden cases (pycocotools output) are checked against their counts lists; a small encoder
 * written here from the format descriptions round-trips random masks. */
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "array.h"
#include "array_internal.h"

#define MSGLEN 512

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

/* Parses the literal JSON and decodes it as "target"; the JSON is freed before returning, so a
 * passing test also shows the mask owns its bytes. */
static int run(const char *json, const struct slp_limits *lim, struct slp_array *a, char *msg)
{
    json_error_t e;
    json_t *j = json_loads(json, JSON_DECODE_ANY, &e);
    if (!j) {
        fprintf(stderr, "test JSON does not parse: %s: %.80s\n", e.text, json);
        memset(a, 0, sizeof *a);
        msg[0] = '\0';
        return 999;
    }
    int rc = slp_array_from_json(j, "target", lim, a, msg, MSGLEN);
    json_decref(j);
    return rc;
}

/* Runs json, which must fail with code and a message starting with prefix, leaving no array. */
#define CHECK_FAILS(json, code, prefix)                                                            \
    do {                                                                                           \
        struct slp_array a_;                                                                       \
        char m_[MSGLEN];                                                                           \
        CHECK_INT(run((json), NULL, &a_, m_), (code));                                             \
        CHECK_PREFIX(m_, prefix);                                                                  \
        CHECK(a_.buf == NULL && a_.t.data == NULL && a_.t.ndim == 0);                              \
    } while (0)

/* As CHECK_FAILS, with a part that the message must contain anywhere. */
#define CHECK_FAILS_HAS(json, code, part)                                                          \
    do {                                                                                           \
        struct slp_array a_;                                                                       \
        char m_[MSGLEN];                                                                           \
        CHECK_INT(run((json), NULL, &a_, m_), (code));                                             \
        CHECK_HAS(m_, part);                                                                       \
        CHECK(a_.buf == NULL && a_.t.data == NULL && a_.t.ndim == 0);                              \
    } while (0)

/* 1 when a is a [n, h, w] mask of dtype dt holding exactly want (C order). */
static int is_mask(const struct slp_array *a, enum sl_dtype dt, int64_t n, int64_t h, int64_t w,
                   const uint8_t *want)
{
    if (!a->buf || a->t.data != a->buf || a->t.dtype != dt || a->t.ndim != 3 ||
        a->t.shape[0] != n || a->t.shape[1] != h || a->t.shape[2] != w) {
        fprintf(stderr, "  mask: dtype %d ndim %d shape [%lld, %lld, %lld]\n", (int)a->t.dtype,
                a->t.ndim, (long long)a->t.shape[0], (long long)a->t.shape[1],
                (long long)a->t.shape[2]);
        return 0;
    }
    if (memcmp(a->buf, want, (size_t)(n * h * w)) != 0) {
        const uint8_t *g = a->buf;
        for (int64_t k = 0; k < n * h * w; k++) {
            if (g[k] != want[k]) {
                fprintf(stderr, "  mask: element %lld is %d, want %d\n", (long long)k, g[k],
                        want[k]);
                break;
            }
        }
        return 0;
    }
    return 1;
}

/* Decodes json, which must succeed with the [n, h, w] uint8 mask want. */
#define CHECK_DECODES(json, n, h, w, want)                                                         \
    do {                                                                                           \
        struct slp_array a_;                                                                       \
        char m_[MSGLEN];                                                                           \
        int rc_ = run((json), NULL, &a_, m_);                                                      \
        CHECK_INT(rc_, 0);                                                                         \
        if (rc_) {                                                                                 \
            fprintf(stderr, "  message: %s\n", m_);                                                \
        }                                                                                          \
        CHECK(is_mask(&a_, SL_DT_U8, (n), (h), (w), (want)));                                      \
        slp_array_free(&a_);                                                                       \
    } while (0)

/* The hand-made 3 x 4 mask (H = 3 rows, W = 4 columns):
 *     row 0:  0 1 1 0
 *     row 1:  1 1 0 0
 *     row 2:  1 0 1 1
 * Column-major pixel numbers (1-based), pixel (r, c) = c*3 + r + 1:
 *     row 0:  1 4 7 10
 *     row 1:  2 5 8 11
 *     row 2:  3 6 9 12
 * Read down the columns the pixels are 0 1 1 | 1 1 0 | 1 0 1 | 0 0 1, so the ones are pixels
 * 2, 3, 4, 5, 7, 9, 12:
 *     Kaggle:      "2 4 7 1 9 1 12 1"
 *     COCO counts: 1 zero, 4 ones, 1 zero, 1 one, 1 zero, 1 one, 2 zeros, 1 one
 *                  = [1, 4, 1, 1, 1, 1, 2, 1] (sum 12 = 3 * 4). */
static const uint8_t mask34[12] = {0, 1, 1, 0, 1, 1, 0, 0, 1, 0, 1, 1};
#define MASK34_RLE "2 4 7 1 9 1 12 1"
#define MASK34_COUNTS "[1, 4, 1, 1, 1, 1, 2, 1]"
/* The compressed string of those counts, by hand (maskApi.c rleToString): counts 0..2 are
 * written as they are, count i >= 3 as count[i] - count[i-2]:
 *     values  1, 4, 1, 1-4 = -3, 1-1 = 0, 1-1 = 0, 2-1 = 1, 1-1 = 0
 * Each value goes out in 5-bit chunks, low bits first, as the character '0' + chunk, where the
 * chunk gets 0x20 when more chunks follow; the last chunk's bit 0x10 is the sign:
 *     1  -> chunk 1 (nothing left, bit 0x10 clear)          -> '0' + 1  = '1'
 *     4  -> '4';  0 -> '0'
 *     -3 -> low 5 bits of -3 are 11101b = 29, the rest is -1 and bit 0x10 is set (the
 *           sign), so one chunk is enough                    -> '0' + 29 = 'M'
 * giving "1" "4" "1" "M" "0" "0" "1" "0". */
#define MASK34_STRING "141M0010"

static void test_rle_hand(void)
{
    static const uint8_t zeros[12] = {0};
    uint8_t two[24];
    memcpy(two, mask34, 12);
    memset(two + 12, 0, 12);
    two[12 + 0 * 4 + 3] = 1; /* pixel 10 = (0, 3) */
    two[12 + 1 * 4 + 3] = 1; /* pixel 11 = (1, 3) */

    CHECK_DECODES("{\"format\": \"rle\", \"shape\": [3, 4], \"data\": \"" MASK34_RLE "\"}", 1, 3, 4,
                  mask34);
    /* a single string may also come with shape [1, H, W] */
    CHECK_DECODES("{\"format\": \"rle\", \"shape\": [1, 3, 4], \"data\": \"" MASK34_RLE "\"}", 1, 3,
                  4, mask34);
    CHECK_DECODES("{\"format\": \"rle\", \"shape\": [1, 3, 4], \"data\": [\"" MASK34_RLE "\"]}", 1,
                  3, 4, mask34);
    /* any run of ASCII whitespace separates tokens, leading and trailing included */
    CHECK_DECODES("{\"format\": \"rle\", \"shape\": [3, 4], \"data\": \" 2  4\\t7\\n1\\r\\n9 1 "
                  "12\\u000b1\\f \"}",
                  1, 3, 4, mask34);
    /* leading zeros are still positive integers */
    CHECK_DECODES("{\"format\": \"rle\", \"shape\": [3, 4], \"data\": \"02 004 7 1 9 01 12 1\"}", 1,
                  3, 4, mask34);
    /* touching runs are allowed: 2..3 then 4..5 */
    CHECK_DECODES("{\"format\": \"rle\", \"shape\": [3, 4], \"data\": \"2 2 4 2 7 1 9 1 12 1\"}", 1,
                  3, 4, mask34);
    /* empty masks */
    CHECK_DECODES("{\"format\": \"rle\", \"shape\": [3, 4], \"data\": \"\"}", 1, 3, 4, zeros);
    CHECK_DECODES("{\"format\": \"rle\", \"shape\": [3, 4], \"data\": \"-\"}", 1, 3, 4, zeros);
    CHECK_DECODES("{\"format\": \"rle\", \"shape\": [3, 4], \"data\": \"  - \"}", 1, 3, 4, zeros);
    CHECK_DECODES("{\"format\": \"rle\", \"shape\": [3, 4], \"data\": \" \\t \"}", 1, 3, 4, zeros);
    /* the whole image is pixels 1..12 */
    {
        uint8_t ones[12];
        memset(ones, 1, sizeof ones);
        CHECK_DECODES("{\"format\": \"rle\", \"shape\": [3, 4], \"data\": \"1 12\"}", 1, 3, 4,
                      ones);
    }
    /* batch of two: the hand mask, then pixels 10..11 = (0, 3) and (1, 3) */
    CHECK_DECODES("{\"format\": \"rle\", \"shape\": [2, 3, 4], \"data\": [\"" MASK34_RLE
                  "\", \"10 2\"]}",
                  2, 3, 4, two);
    /* shape [H, W] with a list: one image per string */
    CHECK_DECODES("{\"format\": \"rle\", \"shape\": [3, 4], \"data\": [\"" MASK34_RLE
                  "\", \"10 2\"]}",
                  2, 3, 4, two);
    /* the batch with an empty image first */
    {
        uint8_t z2[24];
        memset(z2, 0, 12);
        memcpy(z2 + 12, mask34, 12);
        CHECK_DECODES("{\"format\": \"rle\", \"shape\": [2, 3, 4], \"data\": [\"-\", "
                      "\"" MASK34_RLE "\"]}",
                      2, 3, 4, z2);
    }
    /* a 1-row and a 1-column image: column-major numbering is then plain left-to-right, resp.
     * top-to-bottom */
    {
        static const uint8_t row[5] = {0, 1, 1, 0, 1};
        CHECK_DECODES("{\"format\": \"rle\", \"shape\": [1, 5], \"data\": \"2 2 5 1\"}", 1, 1, 5,
                      row);
        CHECK_DECODES("{\"format\": \"rle\", \"shape\": [5, 1], \"data\": \"2 2 5 1\"}", 1, 5, 1,
                      row);
    }
    /* dtype: absent or uint8 gives uint8, bool gives bool; compression "none" is the default */
    {
        struct slp_array a;
        char m[MSGLEN];
        CHECK_INT(run("{\"format\": \"rle\", \"shape\": [3, 4], \"dtype\": \"bool\", \"data\": "
                      "\"" MASK34_RLE "\"}",
                      NULL, &a, m),
                  0);
        CHECK(is_mask(&a, SL_DT_BOOL, 1, 3, 4, mask34));
        slp_array_free(&a);
        CHECK_INT(run("{\"format\": \"rle\", \"shape\": [3, 4], \"dtype\": \"uint8\", "
                      "\"compression\": \"none\", \"data\": \"" MASK34_RLE "\"}",
                      NULL, &a, m),
                  0);
        CHECK(is_mask(&a, SL_DT_U8, 1, 3, 4, mask34));
        slp_array_free(&a);
    }
}

static void test_rle_errors(void)
{
    /* the pairs: odd count, zero, sorted, non-overlapping, inside the image */
    CHECK_FAILS("{\"format\": \"rle\", \"shape\": [3, 4], \"data\": \"2 4 7\"}", SL_ERANGE,
                "target.data: odd number of tokens (3): pair 2 (start 7) has no length");
    CHECK_FAILS("{\"format\": \"rle\", \"shape\": [3, 4], \"data\": \"2 4 7 0\"}", SL_ERANGE,
                "target.data: pair 2 (start 7, length 0): length must be a positive integer");
    CHECK_FAILS("{\"format\": \"rle\", \"shape\": [3, 4], \"data\": \"0 4\"}", SL_ERANGE,
                "target.data: pair 1 (start 0, length 4): start must be a positive integer");
    CHECK_FAILS("{\"format\": \"rle\", \"shape\": [3, 4], \"data\": \"7 1 2 4\"}", SL_ERANGE,
                "target.data: pair 2 (start 2, length 4) is not sorted: it starts before pair 1 "
                "(start 7, length 1)");
    CHECK_FAILS("{\"format\": \"rle\", \"shape\": [3, 4], \"data\": \"2 4 5 1\"}", SL_ERANGE,
                "target.data: pair 2 (start 5, length 1) overlaps pair 1 (start 2, length 4)");
    CHECK_FAILS("{\"format\": \"rle\", \"shape\": [3, 4], \"data\": \"2 4 2 1\"}", SL_ERANGE,
                "target.data: pair 2 (start 2, length 1) overlaps pair 1 (start 2, length 4)");
    /* the golden case err_rle_overlap, in a batch */
    CHECK_FAILS("{\"format\": \"rle\", \"shape\": [1, 16, 20], \"data\": [\"1 5 3 4\"]}", SL_ERANGE,
                "target.data[0]: pair 2 (start 3, length 4) overlaps pair 1 (start 1, length 5)");
    CHECK_FAILS("{\"format\": \"rle\", \"shape\": [3, 4], \"data\": \"12 2\"}", SL_ERANGE,
                "target.data: pair 1 (start 12, length 2) runs past the last pixel 12 of a 3 x 4 "
                "image");
    CHECK_FAILS("{\"format\": \"rle\", \"shape\": [3, 4], \"data\": \"2 1 13 1\"}", SL_ERANGE,
                "target.data: pair 2 (start 13, length 1) runs past the last pixel 12");
    CHECK_FAILS("{\"format\": \"rle\", \"shape\": [3, 4], \"data\": \"1 99999999999999999999999\"}",
                SL_ERANGE,
                "target.data: pair 1 (start 1, length 99999999999999999999999) runs past");
    CHECK_FAILS("{\"format\": \"rle\", \"shape\": [3, 4], \"data\": \"18446744073709551617 1\"}",
                SL_ERANGE, "target.data: pair 1 (start 18446744073709551617, length 1) runs past");
    /* the second image of a batch is named by its index */
    CHECK_FAILS("{\"format\": \"rle\", \"shape\": [2, 3, 4], \"data\": [\"1 1\", \"3 1 1 1\"]}",
                SL_ERANGE, "target.data[1]: pair 2 (start 1, length 1) is not sorted");

    /* malformed tokens: SL_EINVAL with the token's number and offset */
    CHECK_FAILS("{\"format\": \"rle\", \"shape\": [3, 4], \"data\": \"2 4x\"}", SL_EINVAL,
                "target.data: token 2 ('4x', at offset 2) is not a positive integer");
    CHECK_FAILS("{\"format\": \"rle\", \"shape\": [3, 4], \"data\": \"+2 4\"}", SL_EINVAL,
                "target.data: token 1 ('+2', at offset 0) is not a positive integer");
    CHECK_FAILS("{\"format\": \"rle\", \"shape\": [3, 4], \"data\": \"2 -4\"}", SL_EINVAL,
                "target.data: token 2 ('-4', at offset 2)");
    CHECK_FAILS("{\"format\": \"rle\", \"shape\": [3, 4], \"data\": \"2 4 7 1.0\"}", SL_EINVAL,
                "target.data: token 4 ('1.0', at offset 6)");
    CHECK_FAILS("{\"format\": \"rle\", \"shape\": [3, 4], \"data\": \"2,4\"}", SL_EINVAL,
                "target.data: token 1 ('2,4', at offset 0)");
    CHECK_FAILS("{\"format\": \"rle\", \"shape\": [3, 4], \"data\": \"2 4 - \"}", SL_EINVAL,
                "target.data: token 3 ('-', at offset 4)");
    CHECK_FAILS("{\"format\": \"rle\", \"shape\": [3, 4], \"data\": \"--\"}", SL_EINVAL,
                "target.data: token 1 ('--', at offset 0)");
    /* a non-ASCII token is shown with '?' for each byte outside printable ASCII (U+00E9 is two
     * UTF-8 bytes), and a long token is cut */
    CHECK_FAILS("{\"format\": \"rle\", \"shape\": [3, 4], \"data\": \"2 \\u00e9\"}", SL_EINVAL,
                "target.data: token 2 ('?"
                "?', at offset 2)");
    CHECK_FAILS("{\"format\": \"rle\", \"shape\": [3, 4], \"data\": \"1 "
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
                SL_EINVAL, "target.data: token 2 ('aaaaaaaaaaaaaaaaaaaaaaaaaaaa...', at offset 2)");
    CHECK_FAILS("{\"format\": \"rle\", \"shape\": [2, 3, 4], \"data\": [\"1 1\", \"1 x\"]}",
                SL_EINVAL, "target.data[1]: token 2 ('x', at offset 2)");

    /* the number of strings, their type, the shape */
    CHECK_FAILS("{\"format\": \"rle\", \"shape\": [3, 3, 4], \"data\": [\"1 1\", \"2 2\"]}",
                SL_ESHAPE,
                "target.data: 2 string(s) for shape [3, 3, 4] (expected 3, one per image)");
    CHECK_FAILS("{\"format\": \"rle\", \"shape\": [2, 3, 4], \"data\": \"1 1\"}", SL_ESHAPE,
                "target.data: 1 string(s) for shape [2, 3, 4] (expected 2, one per image)");
    CHECK_FAILS("{\"format\": \"rle\", \"shape\": [1, 3, 4], \"data\": []}", SL_ESHAPE,
                "target.data: 0 string(s) for shape [1, 3, 4]");
    CHECK_FAILS("{\"format\": \"rle\", \"shape\": [3, 4], \"data\": []}", SL_EINVAL,
                "target.data: empty list (one string per image)");
    CHECK_FAILS("{\"format\": \"rle\", \"shape\": [2, 3, 4], \"data\": [\"1 1\", 5]}", SL_EINVAL,
                "target.data[1]: expected an RLE string, got an integer");
    CHECK_FAILS("{\"format\": \"rle\", \"shape\": [3, 4], \"data\": [1, 2]}", SL_EINVAL,
                "target.data[0]: expected an RLE string, got an integer");
    CHECK_FAILS("{\"format\": \"rle\", \"shape\": [3, 4], \"data\": {\"counts\": \"1 1\"}}",
                SL_EINVAL, "target.data: expected an RLE string or a list of them, got an object");
    CHECK_FAILS("{\"format\": \"rle\", \"data\": \"1 1\"}", SL_EINVAL,
                "target.shape: format 'rle' needs [H, W] or [N, H, W] (required)");
    CHECK_FAILS("{\"format\": \"rle\", \"shape\": [12], \"data\": \"1 1\"}", SL_EINVAL,
                "target.shape: format 'rle' needs [H, W] or [N, H, W]");
    CHECK_FAILS("{\"format\": \"rle\", \"shape\": [1, 1, 3, 4], \"data\": \"1 1\"}", SL_EINVAL,
                "target.shape: format 'rle' needs [H, W] or [N, H, W]");
    CHECK_FAILS("{\"format\": \"rle\", \"shape\": [3, 0], \"data\": \"1 1\"}", SL_EINVAL,
                "target.shape[1]: expected a positive integer, got 0");
    CHECK_FAILS("{\"format\": \"rle\", \"shape\": [3, 4]}", SL_EINVAL, "target.data: required");

    /* keys that do not apply */
    CHECK_FAILS("{\"format\": \"rle\", \"shape\": [3, 4], \"dtype\": \"float32\", \"data\": \"\"}",
                SL_EINVAL,
                "target.dtype: format 'rle' decodes to a 0/1 mask: expected uint8 or bool, got "
                "'float32'");
    CHECK_FAILS("{\"format\": \"rle\", \"shape\": [3, 4], \"compression\": \"gzip\", \"data\": "
                "\"\"}",
                SL_EINVAL, "target.compression: not allowed with format 'rle'");
    CHECK_FAILS("{\"format\": \"rle\", \"shape\": [3, 4], \"part\": \"mask\"}", SL_EINVAL,
                "target.part: format 'rle' takes its text in \"data\", not a part");
}

static void test_rle_limits(void)
{
    struct slp_limits l = {.max_elements = 12, .max_array_bytes = 1000};
    struct slp_array a;
    char m[MSGLEN];
    /* 3 x 4 = 12 elements fit; two images (24) do not, and nothing is decoded */
    CHECK_INT(
        run("{\"format\": \"rle\", \"shape\": [3, 4], \"data\": \"" MASK34_RLE "\"}", &l, &a, m),
        0);
    CHECK(is_mask(&a, SL_DT_U8, 1, 3, 4, mask34));
    slp_array_free(&a);
    CHECK_INT(run("{\"format\": \"rle\", \"shape\": [2, 3, 4], \"data\": [\"\", \"\"]}", &l, &a, m),
              SL_ETOOLARGE);
    CHECK_PREFIX(m, "target: 2 image(s) of 3 x 4 pixels is over the limit of 12 elements");
    CHECK(a.buf == NULL);
    l.max_elements = 1000;
    l.max_array_bytes = 11;
    CHECK_INT(run("{\"format\": \"rle\", \"shape\": [3, 4], \"data\": \"\"}", &l, &a, m),
              SL_ETOOLARGE);
    CHECK(a.buf == NULL);
    /* a shape whose product overflows int64 is refused before any allocation */
    CHECK_INT(run("{\"format\": \"rle\", \"shape\": [4294967296, 4294967296], \"data\": \"\"}",
                  NULL, &a, m),
              SL_ETOOLARGE);
    CHECK_INT(run("{\"format\": \"rle\", \"shape\": [9223372036854775807, 9223372036854775807], "
                  "\"data\": \"\"}",
                  NULL, &a, m),
              SL_ETOOLARGE);
    CHECK_INT(run("{\"format\": \"coco_rle\", \"data\": {\"size\": [4294967296, 4294967296], "
                  "\"counts\": []}}",
                  NULL, &a, m),
              SL_ETOOLARGE);
    CHECK(a.buf == NULL);
}

/* ---- coco_rle ---- */

static void test_coco_hand(void)
{
    CHECK_DECODES(
        "{\"format\": \"coco_rle\", \"data\": {\"size\": [3, 4], \"counts\": " MASK34_COUNTS "}}",
        1, 3, 4, mask34);
    CHECK_DECODES("{\"format\": \"coco_rle\", \"data\": {\"size\": [3, 4], \"counts\": "
                  "\"" MASK34_STRING "\"}}",
                  1, 3, 4, mask34);
    /* all zeros, all ones (a zero count of leading zeros), zero runs in the middle */
    {
        static const uint8_t zeros[12] = {0};
        uint8_t ones[12];
        memset(ones, 1, sizeof ones);
        CHECK_DECODES("{\"format\": \"coco_rle\", \"data\": {\"size\": [3, 4], \"counts\": [12]}}",
                      1, 3, 4, zeros);
        CHECK_DECODES(
            "{\"format\": \"coco_rle\", \"data\": {\"size\": [3, 4], \"counts\": [0, 12]}}", 1, 3,
            4, ones);
        CHECK_DECODES("{\"format\": \"coco_rle\", \"data\": {\"size\": [3, 4], \"counts\": [0, 5, "
                      "0, 7]}}",
                      1, 3, 4, ones);
        /* 12 -> chunk 12 = '<'; "0<" is [0, 12] */
        CHECK_DECODES("{\"format\": \"coco_rle\", \"data\": {\"size\": [3, 4], \"counts\": "
                      "\"<\"}}",
                      1, 3, 4, zeros);
        CHECK_DECODES("{\"format\": \"coco_rle\", \"data\": {\"size\": [3, 4], \"counts\": "
                      "\"0<\"}}",
                      1, 3, 4, ones);
    }
    /* 44 = 101100b: chunk 01100b = 12 with more to come: 12|0x20 = 44 -> '0' + 44 = 92, a
     * backslash; then 1 -> '1'. A 4 x 11 image of ones is [0, 44]: '0', backslash, '1' (the
     * backslash escaped once for JSON and once more for C). */
    {
        uint8_t ones[44];
        memset(ones, 1, sizeof ones);
        CHECK_DECODES("{\"format\": \"coco_rle\", \"data\": {\"size\": [4, 11], \"counts\": "
                      "\"0\\\\1\"}}",
                      1, 4, 11, ones);
    }
    /* Multi-chunk counts, by hand, on a 5 x 8 image (40 pixels), counts [16, 24]:
     *   16 = 10000b: one chunk would be 16, whose bit 0x10 reads as a sign, so a second chunk
     *        0 follows: chunks 16|0x20 = 48 -> '0' + 48 = '`', then 0 -> '0'
     *   24 = 11000b: the same: 24|0x20 = 56 -> 'h', then '0'
     * so "`0h0". The ones are column-major pixels 16..39: (1, 3)..(4, 3) and columns 4..7. */
    {
        uint8_t want[40] = {0};
        for (int r = 0; r < 5; r++) {
            for (int c = 3; c < 8; c++) {
                want[r * 8 + c] = (uint8_t)(c > 3 || r > 0);
            }
        }
        CHECK_DECODES("{\"format\": \"coco_rle\", \"data\": {\"size\": [5, 8], \"counts\": "
                      "\"`0h0\"}}",
                      1, 5, 8, want);
        CHECK_DECODES("{\"format\": \"coco_rle\", \"data\": {\"size\": [5, 8], \"counts\": [16, "
                      "24]}}",
                      1, 5, 8, want);
    }
    /* A negative two-chunk delta, by hand, on a 1 x 50 image, counts [5, 1, 40, 3, 1]:
     *   written values 5, 1, 40, 3 - 1 = 2, 1 - 40 = -39
     *   5 -> '5';  1 -> '1';  2 -> '2'
     *   40 = 101000b: chunk 01000b = 8 with more to come: 8|0x20 = 40 -> 'X'; then 1 -> '1'
     *   -39 = -2*32 + 25: chunk 25 = 11001b, the rest -2 is not yet -1: 25|0x20 = 57 -> 'i';
     *         then -2 = -1*32 + 30: chunk 30 = 11110b, rest -1 and bit 0x10 set -> 'N'
     * so "51X12iN"; ones at 0-based columns 5 and 46..48. */
    {
        uint8_t want[50] = {0};
        want[5] = want[46] = want[47] = want[48] = 1;
        CHECK_DECODES("{\"format\": \"coco_rle\", \"data\": {\"size\": [1, 50], \"counts\": "
                      "\"51X12iN\"}}",
                      1, 1, 50, want);
        CHECK_DECODES("{\"format\": \"coco_rle\", \"data\": {\"size\": [1, 50], \"counts\": [5, 1, "
                      "40, 3, 1]}}",
                      1, 1, 50, want);
    }
    /* a batch mixing both forms, with the optional shape in both spellings */
    {
        uint8_t two[24];
        memcpy(two, mask34, 12);
        memset(two + 12, 1, 12);
        static const char *const shapes[] = {"", ", \"shape\": [2, 3, 4]"};
        for (int k = 0; k < 2; k++) {
            char *js = strf("{\"format\": \"coco_rle\"%s, \"data\": [{\"size\": [3, 4], "
                            "\"counts\": \"" MASK34_STRING "\"}, {\"counts\": [0, 12], \"size\": "
                            "[3, 4]}]}",
                            shapes[k]);
            CHECK_DECODES(js, 2, 3, 4, two);
            free(js);
        }
        CHECK_DECODES("{\"format\": \"coco_rle\", \"shape\": [3, 4], \"data\": {\"size\": [3, 4], "
                      "\"counts\": " MASK34_COUNTS "}}",
                      1, 3, 4, mask34);
        CHECK_DECODES("{\"format\": \"coco_rle\", \"shape\": [1, 3, 4], \"data\": {\"size\": [3, "
                      "4], \"counts\": " MASK34_COUNTS "}}",
                      1, 3, 4, mask34);
    }
    /* dtype bool */
    {
        struct slp_array a;
        char m[MSGLEN];
        CHECK_INT(
            run("{\"format\": \"coco_rle\", \"dtype\": \"bool\", \"data\": {\"size\": [3, 4], "
                "\"counts\": \"" MASK34_STRING "\"}}",
                NULL, &a, m),
            0);
        CHECK(is_mask(&a, SL_DT_BOOL, 1, 3, 4, mask34));
        slp_array_free(&a);
    }
}

/* The golden cases enc_coco_rle and enc_coco_rle_list give the same three 16 x 20 masks as
 * pycocotools' compressed strings and as counts lists: both forms must decode alike. */
static void test_coco_golden_pair(void)
{
    static const char *const strings[3] = {"P:", "h61>2N20N2NF0:20ND", "52>0^60bI0]1"};
    static const char *const lists[3] = {
        "[320]", "[216, 1, 14, 3, 12, 5, 12, 3, 14, 1, 4, 1, 14, 3, 14, 1, 2]",
        "[5, 2, 14, 2, 220, 2, 14, 2, 59]"};
    for (int k = 0; k < 3; k++) {
        struct slp_array a, b;
        char m[MSGLEN];
        char *js =
            strf("{\"format\": \"coco_rle\", \"data\": {\"size\": [16, 20], \"counts\": \"%s\"}}",
                 strings[k]);
        char *jl = strf(
            "{\"format\": \"coco_rle\", \"data\": {\"size\": [16, 20], \"counts\": %s}}", lists[k]);
        CHECK_INT(run(js, NULL, &a, m), 0);
        CHECK_INT(run(jl, NULL, &b, m), 0);
        CHECK(a.buf && b.buf && memcmp(a.buf, b.buf, 320) == 0);
        slp_array_free(&a);
        slp_array_free(&b);
        free(js);
        free(jl);
    }
    /* the third mask by hand: runs of 2 ones at column-major pixels 5..6, 21..22 (column 0 rows
     * 5, 6 and column 1 rows 5, 6), 243..244 and 259..260 (column 15 rows 3, 4 and column 16
     * rows 3, 4) */
    {
        uint8_t want[320] = {0};
        want[5 * 20 + 0] = want[6 * 20 + 0] = want[5 * 20 + 1] = want[6 * 20 + 1] = 1;
        want[3 * 20 + 15] = want[4 * 20 + 15] = want[3 * 20 + 16] = want[4 * 20 + 16] = 1;
        CHECK_DECODES("{\"format\": \"coco_rle\", \"data\": {\"size\": [16, 20], \"counts\": "
                      "\"52>0^60bI0]1\"}}",
                      1, 16, 20, want);
        /* and the Kaggle form of the same mask in enc_kaggle_rle */
        CHECK_DECODES("{\"format\": \"rle\", \"shape\": [16, 20], \"data\": \"6 2 22 2 244 2 260 "
                      "2\"}",
                      1, 16, 20, want);
    }
}

static void test_coco_errors(void)
{
    /* counts lists */
    CHECK_FAILS("{\"format\": \"coco_rle\", \"data\": {\"size\": [3, 4], \"counts\": [1, 4, 1]}}",
                SL_ERANGE, "target.data.counts: counts sum to 6, expected 12 (3 x 4)");
    CHECK_FAILS(
        "{\"format\": \"coco_rle\", \"data\": {\"size\": [3, 4], \"counts\": [6, 7]}}", SL_ERANGE,
        "target.data.counts: count 1 is 7: the runs go past the 12 pixels of a 3 x 4 image");
    CHECK_FAILS("{\"format\": \"coco_rle\", \"data\": {\"size\": [3, 4], \"counts\": [6, -1, "
                "7]}}",
                SL_ERANGE, "target.data.counts: count 1 is negative (-1)");
    CHECK_FAILS("{\"format\": \"coco_rle\", \"data\": {\"size\": [3, 4], \"counts\": [6, 6.0]}}",
                SL_EINVAL, "target.data.counts[1]: expected a non-negative integer, got a real");
    CHECK_FAILS("{\"format\": \"coco_rle\", \"data\": {\"size\": [3, 4], \"counts\": [\"6\"]}}",
                SL_EINVAL, "target.data.counts[0]: expected a non-negative integer, got a string");
    CHECK_FAILS("{\"format\": \"coco_rle\", \"data\": {\"size\": [3, 4], \"counts\": []}}",
                SL_ERANGE, "target.data.counts: counts sum to 0, expected 12");
    CHECK_FAILS("{\"format\": \"coco_rle\", \"data\": [{\"size\": [3, 4], \"counts\": [12]}, "
                "{\"size\": [3, 4], \"counts\": [11]}]}",
                SL_ERANGE, "target.data[1].counts: counts sum to 11, expected 12 (3 x 4)");
    CHECK_FAILS("{\"format\": \"coco_rle\", \"data\": {\"size\": [3, 4], \"counts\": "
                "[9223372036854775807, 1]}}",
                SL_ERANGE, "target.data.counts: count 0 is 9223372036854775807: the runs go past");

    /* compressed strings */
    CHECK_FAILS("{\"format\": \"coco_rle\", \"data\": {\"size\": [3, 4], \"counts\": \"141M001\"}}",
                SL_ERANGE, "target.data.counts: counts sum to 11, expected 12 (3 x 4)");
    /* "111M": 1, 1, 1, then -3 + count 1 = -2 */
    CHECK_FAILS("{\"format\": \"coco_rle\", \"data\": {\"size\": [3, 4], \"counts\": \"111M\"}}",
                SL_ERANGE, "target.data.counts: count 3 (at offset 3) is negative (-2)");
    /* "M" alone: -3 as the first count */
    CHECK_FAILS("{\"format\": \"coco_rle\", \"data\": {\"size\": [3, 4], \"counts\": \"M\"}}",
                SL_ERANGE, "target.data.counts: count 0 (at offset 0) is negative (-3)");
    CHECK_FAILS("{\"format\": \"coco_rle\", \"data\": {\"size\": [3, 4], \"counts\": \"=\"}}",
                SL_ERANGE,
                "target.data.counts: count 0 (at offset 0) is 13: the runs go past the 12 pixels");
    CHECK_FAILS("{\"format\": \"coco_rle\", \"data\": {\"size\": [3, 4], \"counts\": \"14 1\"}}",
                SL_EMALFORMED,
                "target.data.counts: character ' ' (byte 32, at offset 2) is outside '0'..'o'");
    CHECK_FAILS("{\"format\": \"coco_rle\", \"data\": {\"size\": [3, 4], \"counts\": \"14p\"}}",
                SL_EMALFORMED, "target.data.counts: character 'p' (byte 112, at offset 2)");
    CHECK_FAILS("{\"format\": \"coco_rle\", \"data\": {\"size\": [3, 4], \"counts\": \"14/\"}}",
                SL_EMALFORMED, "target.data.counts: character '/' (byte 47, at offset 2)");
    CHECK_FAILS("{\"format\": \"coco_rle\", \"data\": {\"size\": [3, 4], \"counts\": "
                "\"1\\u00e9\"}}",
                SL_EMALFORMED, "target.data.counts: character '?' (byte 195, at offset 1)");
    /* 'X' = chunk 8 | 0x20: another chunk must follow */
    CHECK_FAILS(
        "{\"format\": \"coco_rle\", \"data\": {\"size\": [3, 4], \"counts\": \"14X\"}}",
        SL_EMALFORMED,
        "target.data.counts: count 2 (at offset 2) is truncated: the string ends inside it");
    CHECK_FAILS("{\"format\": \"coco_rle\", \"data\": {\"size\": [3, 4], \"counts\": "
                "\"oooooooooooo0\"}}",
                SL_EMALFORMED, "target.data.counts: count 0 (at offset 0) is too long");
    CHECK_FAILS("{\"format\": \"coco_rle\", \"data\": {\"size\": [3, 4], \"counts\": \"\"}}",
                SL_ERANGE, "target.data.counts: counts sum to 0, expected 12");
    CHECK_FAILS("{\"format\": \"coco_rle\", \"data\": [{\"size\": [3, 4], \"counts\": \"<\"}, "
                "{\"size\": [3, 4], \"counts\": \"<}\"}]}",
                SL_EMALFORMED, "target.data[1].counts: character '}' (byte 125, at offset 1)");

    /* objects, sizes, shape */
    CHECK_FAILS("{\"format\": \"coco_rle\", \"data\": [{\"size\": [3, 4], \"counts\": [12]}, "
                "{\"size\": [4, 3], \"counts\": [12]}]}",
                SL_ESHAPE, "target.data[1].size: [4, 3] differs from target.data[0].size [3, 4]");
    CHECK_FAILS("{\"format\": \"coco_rle\", \"shape\": [2, 3, 4], \"data\": {\"size\": [3, 4], "
                "\"counts\": [12]}}",
                SL_ESHAPE, "target.shape: [2, 3, 4] does not match the RLE data's [1, 3, 4]");
    CHECK_FAILS("{\"format\": \"coco_rle\", \"shape\": [4, 3], \"data\": {\"size\": [3, 4], "
                "\"counts\": [12]}}",
                SL_ESHAPE, "target.shape: [4, 3] does not match the RLE data's [3, 4]");
    CHECK_FAILS("{\"format\": \"coco_rle\", \"shape\": [12], \"data\": {\"size\": [3, 4], "
                "\"counts\": [12]}}",
                SL_EINVAL, "target.shape: format 'coco_rle' has shape [h, w] or [N, h, w]");
    CHECK_FAILS("{\"format\": \"coco_rle\", \"data\": {\"size\": [3, 4]}}", SL_EINVAL,
                "target.data.counts: required");
    CHECK_FAILS("{\"format\": \"coco_rle\", \"data\": [{\"size\": [3, 4], \"counts\": [12]}, "
                "{\"counts\": [12]}]}",
                SL_EINVAL, "target.data[1].size: required");
    CHECK_FAILS("{\"format\": \"coco_rle\", \"data\": {\"size\": [3, 4], \"counts\": [12], "
                "\"area\": 0}}",
                SL_EINVAL, "target.data.area: unknown key (expected size and counts)");
    CHECK_FAILS("{\"format\": \"coco_rle\", \"data\": {\"size\": [12], \"counts\": [12]}}",
                SL_EINVAL, "target.data.size: expected [h, w], two positive integers");
    CHECK_FAILS("{\"format\": \"coco_rle\", \"data\": {\"size\": [0, 4], \"counts\": []}}",
                SL_EINVAL, "target.data.size[0]: expected a positive integer");
    CHECK_FAILS("{\"format\": \"coco_rle\", \"data\": {\"size\": [3, 4], \"counts\": 12}}",
                SL_EINVAL,
                "target.data.counts: expected a list of run lengths or a compressed string, got "
                "an integer");
    CHECK_FAILS("{\"format\": \"coco_rle\", \"data\": [{\"size\": [3, 4], \"counts\": [12]}, "
                "[12]]}",
                SL_EINVAL, "target.data[1]: expected an object");
    CHECK_FAILS("{\"format\": \"coco_rle\", \"data\": []}", SL_EINVAL,
                "target.data: empty list (one RLE object per image)");
    CHECK_FAILS("{\"format\": \"coco_rle\", \"data\": \"141M0010\"}", SL_EINVAL,
                "target.data: expected an RLE object");
    CHECK_FAILS("{\"format\": \"coco_rle\"}", SL_EINVAL, "target.data: required");
    CHECK_FAILS("{\"format\": \"coco_rle\", \"dtype\": \"int64\", \"data\": {\"size\": [3, 4], "
                "\"counts\": [12]}}",
                SL_EINVAL, "target.dtype: format 'coco_rle' decodes to a 0/1 mask");
    CHECK_FAILS("{\"format\": \"coco_rle\", \"compression\": \"zlib\", \"data\": {\"size\": [3, "
                "4], \"counts\": [12]}}",
                SL_EINVAL, "target.compression: not allowed with format 'coco_rle'");
    CHECK_FAILS_HAS("{\"format\": \"coco_rle\", \"part\": \"m\"}", SL_EINVAL, "not a part");
    {
        struct slp_limits l = {.max_elements = 23, .max_array_bytes = 1000};
        struct slp_array a;
        char m[MSGLEN];
        CHECK_INT(run("{\"format\": \"coco_rle\", \"data\": [{\"size\": [3, 4], \"counts\": [12]}, "
                      "{\"size\": [3, 4], \"counts\": [12]}]}",
                      &l, &a, m),
                  SL_ETOOLARGE);
        CHECK_PREFIX(m, "target: 2 image(s) of 3 x 4 pixels is over the limit of 23 elements");
        CHECK(a.buf == NULL);
    }
}

/* ---- round trips through the test's own encoders ---- */

/* Kaggle EncodedPixels of the C-order h x w mask: 1-based column-major start, length pairs. */
static char *kaggle_encode(const uint8_t *mask, int h, int w)
{
    char *s = malloc((size_t)h * (size_t)w * 24 + 2);
    size_t at = 0;
    int run_start = 0, len = 0;
    s[0] = '\0';
    for (int p = 0; p <= h * w; p++) {
        int on = p < h * w && mask[(p % h) * w + p / h];
        if (on && len == 0) {
            run_start = p + 1;
        }
        if (on) {
            len++;
        } else if (len) {
            at += (size_t)sprintf(s + at, "%s%d %d", at ? " " : "", run_start, len);
            len = 0;
        }
    }
    return s;
}

/* COCO counts of the C-order h x w mask (column-major, zeros first); returns how many. */
static int coco_counts(const uint8_t *mask, int h, int w, long *counts)
{
    int n = 0;
    long run = 0;
    int cur = 0;
    for (int p = 0; p < h * w; p++) {
        int v = mask[(p % h) * w + p / h];
        if (v != cur) {
            counts[n++] = run;
            run = 0;
            cur = v;
        }
        run++;
    }
    counts[n++] = run;
    return n;
}

/* The compressed form, from its description: value i is counts[i], minus counts[i-2] when
 * i > 2; each value in 5-bit chunks (low first) as '0' + chunk, 0x20 marking "more follows",
 * stopping once the rest is 0 (or -1) and the chunk's bit 0x10 agrees with that sign. */
static char *coco_string(const long *counts, int n)
{
    char *s = malloc((size_t)n * 14 + 1);
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        long long x = counts[i] - (i > 2 ? counts[i - 2] : 0);
        for (;;) {
            int c = (int)(x & 0x1f);
            x = (x - c) / 32; /* exact: floor division for negative x too */
            int done = (c & 0x10) ? x == -1 : x == 0;
            s[at++] = (char)(48 + (done ? c : (c | 0x20)));
            if (done) {
                break;
            }
        }
    }
    s[at] = '\0';
    return s;
}

/* s as the body of a JSON string: the compressed alphabet '0'..'o' holds one character that
 * JSON escapes, the backslash. Frees s; returns a new string. */
static char *json_escape(char *s)
{
    char *o = malloc(strlen(s) * 2 + 1);
    size_t at = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '\\') {
            o[at++] = '\\';
        }
        o[at++] = *p;
    }
    o[at] = '\0';
    free(s);
    return o;
}

static uint32_t lcg(uint32_t *st)
{
    *st = *st * 1664525u + 1013904223u;
    return *st >> 8;
}

static void test_round_trip(void)
{
    static const int sizes[][2] = {{1, 1},   {1, 7},   {6, 1},   {3, 4},   {7, 9},
                                   {16, 20}, {33, 17}, {64, 64}, {1, 2000}};
    uint32_t st = 12345;
    int cases = 0, good = 0;
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        int h = sizes[si][0], w = sizes[si][1];
        for (int trial = 0; trial < 12; trial++) {
            uint8_t *mask = malloc((size_t)h * (size_t)w);
            /* trial 0: empty, 1: full, then blocky (long runs) or speckled (short runs) masks */
            int block = trial % 2 ? 1 : 1 + (int)(lcg(&st) % 23);
            for (int r = 0; r < h; r++) {
                for (int c = 0; c < w; c++) {
                    uint8_t v;
                    if (trial < 2) {
                        v = (uint8_t)trial;
                    } else if (block > 1) {
                        uint32_t q = (uint32_t)((r / block) * 7919 + (c / block) * 104729);
                        uint32_t t = q ^ (uint32_t)trial * 2654435761u;
                        v = (uint8_t)((t * 2246822519u) >> 31);
                    } else {
                        v = (uint8_t)(lcg(&st) % 3 == 0);
                    }
                    mask[r * w + c] = v;
                }
            }
            long *counts = malloc(((size_t)h * (size_t)w + 1) * sizeof *counts);
            int nc = coco_counts(mask, h, w, counts);
            char *cs = json_escape(coco_string(counts, nc));
            char *ks = kaggle_encode(mask, h, w);
            char *cl = malloc((size_t)nc * 12 + 3);
            size_t at = 0;
            cl[at++] = '[';
            for (int k = 0; k < nc; k++) {
                at += (size_t)sprintf(cl + at, "%s%ld", k ? "," : "", counts[k]);
            }
            cl[at++] = ']';
            cl[at] = '\0';
            char *j1 = strf(
                "{\"format\": \"coco_rle\", \"data\": {\"size\": [%d, %d], \"counts\": \"%s\"}}", h,
                w, cs);
            char *j2 = strf("{\"format\": \"coco_rle\", \"data\": [{\"size\": [%d, %d], "
                            "\"counts\": %s}]}",
                            h, w, cl);
            char *j3 =
                strf("{\"format\": \"rle\", \"shape\": [%d, %d], \"data\": \"%s\"}", h, w, ks);
            const char *js[3] = {j1, j2, j3};
            for (int k = 0; k < 3; k++) {
                struct slp_array a;
                char m[MSGLEN];
                int rc = run(js[k], NULL, &a, m);
                int ok = rc == 0 && is_mask(&a, SL_DT_U8, 1, h, w, mask);
                if (!ok) {
                    fprintf(stderr, "round trip %d x %d trial %d form %d: rc %d %s\n", h, w, trial,
                            k, rc, m);
                }
                cases++;
                good += ok;
                slp_array_free(&a);
            }
            free(j1);
            free(j2);
            free(j3);
            free(cl);
            free(ks);
            free(cs);
            free(counts);
            free(mask);
        }
    }
    CHECK_INT(good, cases);
    CHECK_INT(cases, 9 * 12 * 3);
    /* the test encoder reproduces the strings worked out by hand and by pycocotools */
    {
        static const long c1[] = {1, 4, 1, 1, 1, 1, 2, 1};
        static const long c2[] = {5, 1, 40, 3, 1};
        static const long c3[] = {216, 1, 14, 3, 12, 5, 12, 3, 14, 1, 4, 1, 14, 3, 14, 1, 2};
        char *s1 = coco_string(c1, 8), *s2 = coco_string(c2, 5), *s3 = coco_string(c3, 17);
        CHECK(strcmp(s1, MASK34_STRING) == 0);
        CHECK(strcmp(s2, "51X12iN") == 0);
        CHECK(strcmp(s3, "h61>2N20N2NF0:20ND") == 0);
        free(s1);
        free(s2);
        free(s3);
        char *k = kaggle_encode(mask34, 3, 4);
        CHECK(strcmp(k, MASK34_RLE) == 0);
        free(k);
    }
}

static const struct check_test tests[] = {
    CHECK_TEST(test_rle_hand),   CHECK_TEST(test_rle_errors),       CHECK_TEST(test_rle_limits),
    CHECK_TEST(test_coco_hand),  CHECK_TEST(test_coco_golden_pair), CHECK_TEST(test_coco_errors),
    CHECK_TEST(test_round_trip),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_rle", tests);
}
