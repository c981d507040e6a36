/* test_parts.c - multipart parts (proto/array.h slp_array_from_json_parts, proto/proto.h
 * slp_score_multipart) with hand-built parts: .npy files and raw bytes written here, gzip and
 * zlib streams made with zlib. Every expected value is the test's own input coming back, or the
 * seed example computed by hand from its formulas. */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../check.h"
#include "array_internal.h"
#include "proto.h"

#define MSGLEN 512

/* ---- the test's own encoders ---- */

/* The seed example: probabilities [0.5, 0.6, 0.2, 0.1] of shape [1, 2, 2], target [1, 1, 0, 0]. */
static const float seed_p[4] = {0.5f, 0.6f, 0.2f, 0.1f};
static const unsigned char seed_y[4] = {1, 1, 0, 0};

/* CE + Dice of the seed by hand, in float64 (float32 rounding of the inputs moves it ~1e-8):
 *   CE   = -(ln 0.5 + ln 0.6 + ln(1 - 0.2) + ln(1 - 0.1)) / 4
 *   Dice = 1 - 2 (0.5 + 0.6) / ((0.5 + 0.6 + 0.2 + 0.1) + (1 + 1)) = 1 - 2.2 / 3.4 */
static double seed_expected(void)
{
    double ce = -(log(0.5) + log(0.6) + log(0.8) + log(0.9)) / 4.0;
    double dice = 1.0 - 2.0 * 1.1 / 3.4;
    return ce + dice;
}

/* n float32 values as little-endian bytes into out (4n bytes). */
static void f32_le(const float *v, size_t n, unsigned char *out)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        for (int b = 0; b < 4; b++) {
            out[4 * i + (size_t)b] = (unsigned char)(u >> (8 * b));
        }
    }
}

/* A .npy v1.0 file: magic, version 1.0, header length (little-endian), the dict padded with
 * spaces and ended by '\n' so that the header is `total` bytes, then the data. Returns a new
 * buffer (its size in *len), or NULL when the dict does not fit. */
static unsigned char *npy_file(const char *dict, size_t total, const void *data, size_t n,
                               size_t *len)
{
    size_t dl = strlen(dict);
    if (total < 10 + dl + 1 || total - 10 > 65535) {
        return NULL;
    }
    unsigned char *f = malloc(total + n);
    if (!f) {
        return NULL;
    }
    memcpy(f, "\x93NUMPY\x01\x00", 8);
    f[8] = (unsigned char)((total - 10) & 0xff);
    f[9] = (unsigned char)((total - 10) >> 8);
    memcpy(f + 10, dict, dl);
    memset(f + 10 + dl, ' ', total - 10 - dl - 1);
    f[total - 1] = '\n';
    memcpy(f + total, data, n);
    *len = total + n;
    return f;
}

/* in compressed by zlib's deflate; window_bits 31 = gzip, 15 = zlib, -15 = raw deflate.
 * Returns a new buffer (its size in *outlen) or NULL. */
static unsigned char *zpack(const void *in, size_t len, int window_bits, size_t *outlen)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        return NULL;
    }
    size_t cap = deflateBound(&z, (uLong)len);
    unsigned char *out = malloc(cap);
    if (!out) {
        deflateEnd(&z);
        return NULL;
    }
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    *outlen = cap - z.avail_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

/* ---- fixtures: the seed's arrays as parts ---- */

struct fixture {
    unsigned char *pred_npy; /* '<f4' (1, 2, 2), header of exactly 64 bytes */
    size_t pred_npy_len;
    unsigned char *pred_gz; /* pred_npy gzipped */
    size_t pred_gz_len;
    unsigned char *pred_zlib; /* pred_npy zlib-wrapped */
    size_t pred_zlib_len;
    unsigned char *mask_npy; /* '|u1' (1, 2, 2), numpy's own dict layout, 128-byte header */
    size_t mask_npy_len;
    unsigned char pred_raw[16]; /* float32 little-endian */
    unsigned char *pred_raw_gz;
    size_t pred_raw_gz_len;
};

/* Builds the fixture's bodies; 0, or -1 when one could not be made (test_fixture says which). */
static int fixture_init(struct fixture *fx)
{
    memset(fx, 0, sizeof *fx);
    f32_le(seed_p, 4, fx->pred_raw);
    /* 10 bytes of preamble + 53 of dict + '\n' = 64: a v1.0 header with no padding at all */
    static const char compact[] = "{'descr':'<f4','fortran_order':False,'shape':(1,2,2)}";
    fx->pred_npy = npy_file(compact, 64, fx->pred_raw, 16, &fx->pred_npy_len);
    /* as numpy writes it: the dict needs 62 bytes, so the header is padded to 128 */
    fx->mask_npy = npy_file("{'descr': '|u1', 'fortran_order': False, 'shape': (1, 2, 2), }", 128,
                            seed_y, 4, &fx->mask_npy_len);
    if (fx->pred_npy) {
        fx->pred_gz = zpack(fx->pred_npy, fx->pred_npy_len, 31, &fx->pred_gz_len);
        fx->pred_zlib = zpack(fx->pred_npy, fx->pred_npy_len, 15, &fx->pred_zlib_len);
    }
    fx->pred_raw_gz = zpack(fx->pred_raw, 16, 31, &fx->pred_raw_gz_len);
    bool ok = fx->pred_npy && fx->mask_npy && fx->pred_gz && fx->pred_zlib && fx->pred_raw_gz;
    return ok ? 0 : -1;
}

static void fixture_free(struct fixture *fx)
{
    free(fx->pred_npy);
    free(fx->pred_gz);
    free(fx->pred_zlib);
    free(fx->mask_npy);
    free(fx->pred_raw_gz);
}

/* ---- slp_array_from_json_parts ---- */

/* Decodes the literal JSON array object called name against parts (NULL: no multipart). */
static int run(const char *json, const char *name, const struct slp_parts *parts,
               struct slp_array *a, char *msg)
{
    json_error_t e;
    json_t *j = json_loads(json, 0, &e);
    if (!j) {
        fprintf(stderr, "test JSON does not parse: %s: %.80s\n", e.text, json);
        memset(a, 0, sizeof *a);
        msg[0] = '\0';
        return 999;
    }
    int rc = slp_array_from_json_parts(j, name, NULL, parts, a, msg, MSGLEN);
    json_decref(j);
    return rc;
}

/* a holds float32 [1, 2, 2] with the seed's probabilities. */
static void check_seed_pred(const struct slp_array *a)
{
    CHECK_INT(a->t.dtype, SL_DT_F32);
    CHECK_INT(a->t.ndim, 3);
    CHECK(a->t.shape[0] == 1 && a->t.shape[1] == 2 && a->t.shape[2] == 2);
    const float *v = a->t.data;
    for (int i = 0; v && i < 4; i++) {
        CHECK(v[i] == seed_p[i]);
    }
}

static void check_seed_mask(const struct slp_array *a)
{
    CHECK_INT(a->t.dtype, SL_DT_U8);
    CHECK_INT(a->t.ndim, 3);
    CHECK(a->t.shape[0] == 1 && a->t.shape[1] == 2 && a->t.shape[2] == 2);
    const unsigned char *v = a->t.data;
    CHECK(v && memcmp(v, seed_y, 4) == 0);
}

static void check_arrays(const struct fixture *fx)
{
    char msg[MSGLEN];
    struct slp_array a;
    unsigned char three[3] = {1, 2, 3};
    const struct slp_part items[] = {
        {"pred", fx->pred_npy, fx->pred_npy_len},
        {"pred_gz", fx->pred_gz, fx->pred_gz_len},
        {"pred_zlib", fx->pred_zlib, fx->pred_zlib_len},
        {"mask", fx->mask_npy, fx->mask_npy_len},
        {"raw", fx->pred_raw, 16},
        {"raw_gz", fx->pred_raw_gz, fx->pred_raw_gz_len},
        {"mask_raw", seed_y, 4},
        {"three", three, 3},
        {"empty", NULL, 0},
        {"short_npy", fx->pred_npy, fx->pred_npy_len - 4},
        {"corrupt_gz", fx->pred_gz, fx->pred_gz_len / 2},
    };
    const struct slp_parts parts = {items, (int)(sizeof items / sizeof items[0])};

    /* the bytes of the part as they are: no base64 */
    CHECK_INT(run("{\"format\": \"npy\", \"part\": \"pred\"}", "prediction", &parts, &a, msg), 0);
    check_seed_pred(&a);
    slp_array_free(&a);
    CHECK_INT(run("{\"format\": \"npy\", \"part\": \"mask\"}", "target", &parts, &a, msg), 0);
    check_seed_mask(&a);
    slp_array_free(&a);
    /* compression applies as for "data" */
    static const char *const compressed[] = {
        "{\"format\": \"npy\", \"part\": \"pred_gz\", \"compression\": \"gzip\"}",
        "{\"format\": \"npy\", \"part\": \"pred_gz\", \"compression\": \"auto\"}",
        "{\"format\": \"npy\", \"part\": \"pred_zlib\", \"compression\": \"zlib\"}",
        "{\"format\": \"npy\", \"part\": \"pred_zlib\", \"compression\": \"auto\"}",
        "{\"format\": \"raw\", \"part\": \"raw\", \"dtype\": \"float32\", \"shape\": [1, 2, 2]}",
        ("{\"format\": \"raw\", \"part\": \"raw_gz\", \"compression\": \"gzip\", \"dtype\": "
         "\"float32\", \"shape\": [1, 2, 2]}"),
    };
    for (size_t i = 0; i < sizeof compressed / sizeof compressed[0]; i++) {
        int rc = run(compressed[i], "prediction", &parts, &a, msg);
        CHECK_INT(rc, 0);
        if (rc) {
            fprintf(stderr, "  %s: %s\n", compressed[i], msg);
        }
        check_seed_pred(&a);
        slp_array_free(&a);
    }
    CHECK_INT(run("{\"format\": \"raw\", \"part\": \"mask_raw\", \"dtype\": \"uint8\", "
                  "\"shape\": [1, 2, 2]}",
                  "target", &parts, &a, msg),
              0);
    check_seed_mask(&a);
    slp_array_free(&a);

    /* compressed npy parts: the elements stay in the inflated file, after its 64-byte header;
     * zlib has no size field, gzip's ISIZE is not needed: the npy header says the size, and
     * libdeflate inflates the whole part in one call */
    {
        unsigned char whole[80];
        CHECK_INT(slp__inflate_whole(fx->pred_zlib, fx->pred_zlib_len, SLP_COMP_ZLIB, whole, 80),
                  1);
        CHECK(memcmp(whole, fx->pred_npy, 80) == 0);
        CHECK_INT(slp__inflate_whole(fx->pred_gz, fx->pred_gz_len, SLP_COMP_GZIP, whole, 80), 1);
        CHECK(memcmp(whole, fx->pred_npy, 80) == 0);
        static const char *const parts_npy[] = {"pred_gz", "pred_zlib"};
        for (int k = 0; k < 2; k++) {
            char js[128];
            snprintf(js, sizeof js,
                     "{\"format\": \"npy\", \"part\": \"%s\", \"compression\": "
                     "\"auto\"}",
                     parts_npy[k]);
            CHECK_INT(run(js, "prediction", &parts, &a, msg), 0);
            check_seed_pred(&a);
            CHECK((const char *)a.t.data == (const char *)a.buf + 64);
            slp_array_free(&a);
        }
    }

    /* what "part" is refused with */
    CHECK_INT(run("{\"format\": \"npy\", \"part\": \"pred\", \"data\": \"AAAA\"}", "prediction",
                  &parts, &a, msg),
              SL_EINVAL);
    CHECK_HAS(msg, "prediction: give either \"data\" or \"part\", not both");
    CHECK_INT(run("{\"format\": \"list\", \"part\": \"pred\"}", "prediction", &parts, &a, msg),
              SL_EINVAL);
    CHECK_HAS(msg, "prediction.part: format 'list'");
    CHECK_INT(run("{\"format\": \"rle\", \"part\": \"mask\", \"shape\": [2, 2]}", "target", &parts,
                  &a, msg),
              SL_EINVAL);
    CHECK_HAS(msg, "target.part");
    CHECK_INT(run("{\"format\": \"coco_rle\", \"part\": \"mask\"}", "target", &parts, &a, msg),
              SL_EINVAL);
    CHECK_HAS(msg, "target.part");
    CHECK_INT(run("{\"format\": \"npy\", \"part\": 3}", "prediction", &parts, &a, msg), SL_EINVAL);
    CHECK_HAS(msg, "prediction.part: expected a string");
    CHECK_INT(run("{\"format\": \"npy\", \"part\": \"prd\"}", "prediction", &parts, &a, msg),
              SL_EINVAL);
    CHECK_HAS(msg, "prediction.part: no multipart part named 'prd'");
    /* a JSON body has no parts */
    CHECK_INT(run("{\"format\": \"npy\", \"part\": \"pred\"}", "prediction", NULL, &a, msg),
              SL_EUNSUPPORTED);
    CHECK_HAS(msg, "prediction.part: multipart parts are not supported");
    CHECK_HAS(msg, "only in a multipart/form-data body");
    CHECK(a.buf == NULL);

    /* gzip bytes declared uncompressed: the message says what to set */
    CHECK_INT(run("{\"format\": \"npy\", \"part\": \"pred_gz\"}", "prediction", &parts, &a, msg),
              SL_EMALFORMED);
    CHECK_HAS(msg, "prediction (part 'pred_gz'): not a .npy file");
    CHECK_HAS(msg, "it looks gzip-compressed: set \"compression\": \"gzip\"");
    CHECK_INT(run("{\"format\": \"raw\", \"part\": \"raw_gz\", \"dtype\": \"float32\", \"shape\": "
                  "[1, 2, 2]}",
                  "prediction", &parts, &a, msg),
              SL_ESIZE);
    CHECK_HAS(msg, "prediction: expected 16 bytes, got");
    CHECK_HAS(msg, "it looks gzip-compressed: set \"compression\": \"gzip\"");
    /* byte counts are exact, raw or inflated */
    CHECK_INT(run("{\"format\": \"raw\", \"part\": \"three\", \"dtype\": \"uint8\", \"shape\": "
                  "[1, 2, 2]}",
                  "target", &parts, &a, msg),
              SL_ESIZE);
    CHECK_HAS(msg, "target: expected 4 bytes, got 3 in part 'three'");
    CHECK(strstr(msg, "gzip") == NULL);
    CHECK_INT(run("{\"format\": \"npy\", \"part\": \"short_npy\"}", "prediction", &parts, &a, msg),
              SL_ESIZE);
    CHECK_HAS(msg, "prediction: expected 16 data bytes after the npy header, got 12");
    CHECK_INT(run("{\"format\": \"npy\", \"part\": \"empty\"}", "prediction", &parts, &a, msg),
              SL_EMALFORMED);
    CHECK_HAS(msg, "prediction (part 'empty'): the part is empty");
    CHECK_INT(run("{\"format\": \"raw\", \"part\": \"empty\", \"dtype\": \"uint8\", \"shape\": "
                  "[4]}",
                  "target", &parts, &a, msg),
              SL_ESIZE);
    CHECK_HAS(msg, "target: expected 4 bytes, got 0 in part 'empty'");
    CHECK_INT(run("{\"format\": \"npy\", \"part\": \"corrupt_gz\", \"compression\": \"gzip\"}",
                  "prediction", &parts, &a, msg),
              SL_EMALFORMED);
    CHECK_HAS(msg, "prediction (part 'corrupt_gz'): gzip stream is truncated");
    /* the spec's dtype and shape must agree with the part's npy header */
    CHECK_INT(run("{\"format\": \"npy\", \"part\": \"pred\", \"dtype\": \"uint8\"}", "prediction",
                  &parts, &a, msg),
              SL_EINVAL);
    CHECK_HAS(msg, "prediction.dtype: 'uint8' does not match the npy header's '<f4'");
    CHECK(a.buf == NULL);
}

/* ---- slp_score_multipart ---- */

/* Scores parts; returns the status and keeps the parsed answer in *out (caller decrefs). An
 * error that is not problem+json is status -1. */
static int score(const struct slp_part *items, int n, json_t **out)
{
    struct slp_response r;
    const struct slp_parts parts = {items, n};
    slp_score_multipart(&parts, NULL, NULL, &r);
    *out = json_loadb(r.body, r.len, 0, NULL);
    int status = r.status;
    if (status != 200 && (!*out || !strstr(r.content_type, "problem+json"))) {
        status = -1;
    }
    slp_response_free(&r);
    return status;
}

/* The answer is a problem of status want whose detail contains part. */
static void expect_problem(const struct slp_part *items, int n, int want, const char *part)
{
    json_t *j;
    CHECK_INT(score(items, n, &j), want);
    CHECK_HAS(json_string_value(json_object_get(j, "detail")), part);
    CHECK_INT(json_integer_value(json_object_get(j, "status")), want);
    json_decref(j);
}

#define SPEC_TAIL                                                                                  \
    "\"prediction_type\": \"probabilities\", \"losses\": [{\"name\": \"combo\", \"terms\": "       \
    "[{\"name\": \"cross_entropy\"}, {\"name\": \"dice\"}]}], \"metrics\": []}"

static const char spec_npy[] =
    "{\"prediction\": {\"format\": \"npy\", \"part\": \"pred\", \"compression\": \"gzip\"}, "
    "\"target\": {\"format\": \"npy\", \"part\": \"mask\"}, " SPEC_TAIL;

/* A part holding the text s (borrowed). */
static struct slp_part text_part(const char *name, const char *s)
{
    struct slp_part p = {name, (const unsigned char *)s, s ? strlen(s) : 0};
    return p;
}

static void check_score(const struct fixture *fx)
{
    json_t *j;
    const double want = seed_expected();

    /* what curl -F spec=@spec.json -F pred=@pred.npy.gz -F mask=@mask.npy sends, split */
    const struct slp_part seed[] = {
        text_part("spec", spec_npy),
        {"pred", fx->pred_gz, fx->pred_gz_len},
        {"mask", fx->mask_npy, fx->mask_npy_len},
    };
    CHECK_INT(score(seed, 3, &j), 200);
    const json_t *combo = json_object_get(json_object_get(j, "losses"), "combo");
    CHECK_CLOSE(json_number_value(json_object_get(combo, "value")), want, 0, 1e-6);
    CHECK_CLOSE(json_number_value(json_array_get(json_object_get(combo, "per_image"), 0)), want, 0,
                1e-6);
    json_decref(j);

    /* the parts in another order; raw parts; a weight map of ones (the value stays) */
    static const char spec_raw[] =
        "{\"prediction\": {\"format\": \"raw\", \"part\": \"p\", \"dtype\": \"float32\", "
        "\"shape\": [1, 2, 2]}, \"target\": {\"format\": \"raw\", \"part\": \"y\", \"dtype\": "
        "\"uint8\", \"shape\": [1, 2, 2]}, \"weight\": {\"format\": \"raw\", \"part\": \"w\", "
        "\"dtype\": \"uint8\", \"shape\": [1, 2, 2]}, " SPEC_TAIL;
    static const unsigned char ones[4] = {1, 1, 1, 1};
    const struct slp_part raw[] = {
        {"y", seed_y, 4},
        {"w", ones, 4},
        text_part("spec", spec_raw),
        {"p", fx->pred_raw, 16},
    };
    CHECK_INT(score(raw, 4, &j), 200);
    combo = json_object_get(json_object_get(j, "losses"), "combo");
    CHECK_CLOSE(json_number_value(json_object_get(combo, "value")), want, 0, 1e-6);
    json_decref(j);

    /* the spec part */
    expect_problem(seed + 1, 2, 400, "multipart body has no part named 'spec'");
    const struct slp_part bad_json[] = {text_part("spec", "{\"prediction\": ")};
    expect_problem(bad_json, 1, 400, "malformed JSON in part 'spec'");
    const struct slp_part empty_spec[] = {{"spec", NULL, 0}};
    expect_problem(empty_spec, 1, 400, "part 'spec' is empty");
    const struct slp_part not_object[] = {text_part("spec", "[1, 2]")};
    expect_problem(not_object, 1, 422, "must be a JSON object");

    /* every part is named by an array; every named part is there; names are unique */
    const struct slp_part unused[] = {seed[0], seed[1], seed[2], {"extra", seed_y, 4}};
    expect_problem(unused, 4, 422, "multipart part 'extra' is not used");
    const struct slp_part typo[] = {seed[0], {"prd", fx->pred_gz, fx->pred_gz_len}, seed[2]};
    expect_problem(typo, 3, 422, "prediction.part: no multipart part named 'pred'");
    const struct slp_part twice[] = {seed[0], seed[1], seed[2], seed[1]};
    expect_problem(twice, 4, 422, "two parts named 'pred'");

    /* the spec part's own long strings (here prediction: 16 seed images, 256 bytes of float32,
     * 344 base64 characters) are read from the part's text, as a JSON body's are; the target is
     * a part. Every image is the seed. */
    {
        unsigned char p16[256], y16[64];
        for (int i = 0; i < 16; i++) {
            memcpy(p16 + 16 * i, fx->pred_raw, 16);
            memcpy(y16 + 4 * i, seed_y, 4);
        }
        static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        char b64[345];
        for (int i = 0, k = 0; i < 256; i += 3) {
            uint32_t v = (uint32_t)p16[i] << 16 | (i + 1 < 256 ? (uint32_t)p16[i + 1] << 8 : 0) |
                         (i + 2 < 256 ? p16[i + 2] : 0);
            b64[k++] = al[v >> 18 & 63];
            b64[k++] = al[v >> 12 & 63];
            b64[k++] = i + 1 < 256 ? al[v >> 6 & 63] : '=';
            b64[k++] = i + 2 < 256 ? al[v & 63] : '=';
            b64[k] = '\0';
        }
        CHECK_INT(strlen(b64), 344);
        char *spec = malloc(1024);
        snprintf(spec, 1024,
                 "{\"prediction\": {\"format\": \"raw\", \"dtype\": \"float32\", \"shape\": "
                 "[16, 2, 2], \"data\": \"%s\"}, \"target\": {\"format\": \"raw\", \"part\": "
                 "\"y\", \"dtype\": \"uint8\", \"shape\": [16, 2, 2]}, " SPEC_TAIL,
                 b64);
        const struct slp_part inline_pred[] = {text_part("spec", spec), {"y", y16, 64}};
        CHECK_INT(score(inline_pred, 2, &j), 200);
        combo = json_object_get(json_object_get(j, "losses"), "combo");
        CHECK_CLOSE(json_number_value(json_object_get(combo, "value")), want, 0, 1e-6);
        CHECK_CLOSE(json_number_value(json_array_get(json_object_get(combo, "per_image"), 15)),
                    want, 0, 1e-6);
        json_decref(j);
        /* a bad character at offset 200 of that string is named as such */
        spec[strstr(spec, b64) - spec + 200] = '*';
        expect_problem(inline_pred, 2, 400, "prediction.data: invalid base64 at offset 200");
        free(spec);
    }

    /* the same spec as a JSON body: no parts to name */
    struct slp_response r;
    slp_score_request(spec_npy, strlen(spec_npy), NULL, NULL, &r);
    CHECK_INT(r.status, 422);
    j = json_loadb(r.body, r.len, 0, NULL);
    CHECK_HAS(json_string_value(json_object_get(j, "detail")),
              "prediction.part: multipart parts are not supported here: \"part\" is only in a "
              "multipart/form-data body");
    json_decref(j);
    slp_response_free(&r);
}

/* The fixture's own bodies, byte counts by hand. */
static void test_fixture(void)
{
    struct fixture fx;
    CHECK_INT(strlen("{'descr':'<f4','fortran_order':False,'shape':(1,2,2)}"), 53);
    CHECK(fixture_init(&fx) == 0);
    CHECK_INT(fx.pred_npy_len, 64 + 16);
    CHECK_INT(fx.mask_npy_len, 128 + 4);
    fixture_free(&fx);
}

static void test_arrays(void)
{
    struct fixture fx;
    if (fixture_init(&fx) == 0) {
        check_arrays(&fx);
    }
    fixture_free(&fx);
}

static void test_score(void)
{
    struct fixture fx;
    if (fixture_init(&fx) == 0) {
        check_score(&fx);
    }
    fixture_free(&fx);
}

static const struct check_test tests[] = {
    CHECK_TEST(test_fixture),
    CHECK_TEST(test_arrays),
    CHECK_TEST(test_score),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_parts", tests);
}
