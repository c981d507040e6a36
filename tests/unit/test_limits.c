/* test_limits.c - the request-shape limits of struct slp_limits (images, classes, JSON nesting
 * depth and value count, losses and metrics) through the three entry points (JSON body,
 * multipart spec, weight-map body) and through the lib: each is a 413 whose detail names the
 * array or key and the seglossd flag. Bodies are hand-written; their depths, byte offsets and
 * value counts are counted by hand in the comments beside them. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "proto.h"
#include "segloss.h"

#define DETAIL 512

enum route { SCORE, MULTIPART, WEIGHT_MAP };

/* Sends body[0..len) to route under lim (NULL: the defaults) from a heap copy of exactly len
 * bytes, so that ASan sees a read past the end. Returns the status (-1 when an error is not
 * problem+json with the same status) and copies the problem's detail into detail ("" on 200). */
static int send_n(enum route route, const char *body, size_t len, const struct slp_limits *lim,
                  char *detail)
{
    struct slp_response r;
    char *copy = malloc(len ? len : 1);
    if (!copy) {
        return -2;
    }
    memcpy(copy, body, len);
    if (route == SCORE) {
        slp_score_request(copy, len, lim, NULL, &r);
    } else if (route == MULTIPART) {
        const struct slp_part spec = {"spec", (const unsigned char *)copy, len};
        const struct slp_parts parts = {&spec, 1};
        slp_score_multipart(&parts, lim, NULL, &r);
    } else {
        slp_weight_map_request(copy, len, lim, NULL, true, &r);
    }
    free(copy);
    int status = r.status;
    detail[0] = '\0';
    if (status != 200) {
        json_t *j = json_loadb(r.body, r.len, 0, NULL);
        const char *d = json_string_value(json_object_get(j, "detail"));
        snprintf(detail, DETAIL, "%s", d ? d : "");
        if (!d || strcmp(r.content_type, "application/problem+json") != 0 ||
            json_integer_value(json_object_get(j, "status")) != status) {
            status = -1;
        }
        json_decref(j);
    }
    slp_response_free(&r);
    return status;
}

/* The answer to body on route under lim has status want and, unless want is 200, a detail
 * containing part. line: the caller's, printed when a check fails. */
static void expect_(enum route route, const char *body, const struct slp_limits *lim, int want,
                    const char *part, int line)
{
    char detail[DETAIL];
    int failed = check_failed_;
    CHECK_INT(send_n(route, body, strlen(body), lim, detail), want);
    if (part) {
        CHECK_HAS(detail, part);
    }
    if (check_failed_ != failed) {
        fprintf(stderr, "  (the case at line %d; detail: %s)\n", line, detail);
    }
}
#define EXPECT(route, body, lim, want, part) expect_(route, body, lim, want, part, __LINE__)

static struct slp_limits defaults(void)
{
    struct slp_limits lim;
    slp_limits_default(&lim);
    return lim;
}

/* One binary 2x2 image: depth 4 ('{' then prediction's three '['; the third at byte 17), and
 * 17 values: the object, and twice a list holding an image of 2 rows of 2 numbers (1 + 1 + 2 +
 * 4). */
#define ARRAYS "\"prediction\": [[[0, 0], [0, 0]]], \"target\": [[[1, 0], [0, 0]]]"
static const char one_image[] = "{" ARRAYS "}";

/* "[" x depth then "]" x depth, a new string. */
static char *nested(int depth)
{
    char *s = malloc(2 * (size_t)depth + 1);
    memset(s, '[', (size_t)depth);
    memset(s + depth, ']', (size_t)depth);
    s[2 * depth] = '\0';
    return s;
}

static void test_defaults(void)
{
    struct slp_limits lim = defaults();
    CHECK_INT(lim.max_elements, 67108864);
    CHECK_INT(lim.max_array_bytes, 536870912);
    CHECK_INT(lim.max_images, 4096);
    CHECK_INT(lim.max_classes, 1024);
    CHECK_INT(lim.max_depth, 32);
    CHECK_INT(lim.max_json_values, 4194304);
    CHECK_INT(lim.max_specs, 32);
}

static void test_depth(void)
{
    struct slp_limits lim = defaults();
    /* 32 levels pass the scan (jansson parses them; the spec wants an object); 33 do not, and
     * the 33rd '[' is byte 32. A NULL lim is the defaults. */
    char *at = nested(32), *over = nested(33);
    EXPECT(SCORE, at, &lim, 422, "the body must be a JSON object");
    EXPECT(SCORE, over, &lim, 413,
           "JSON nesting deeper than 32 levels at byte 32 (--max-spec-depth)");
    EXPECT(SCORE, over, NULL, 413, "at byte 32 (--max-spec-depth)");
    EXPECT(MULTIPART, over, NULL, 413,
           "JSON nesting deeper than 32 levels at byte 32 of part 'spec' (--max-spec-depth)");
    EXPECT(WEIGHT_MAP, over, NULL, 413, "JSON nesting deeper than 32 levels at byte 32");
    EXPECT(WEIGHT_MAP, at, NULL, 422, "the body must be a JSON object");
    free(at);
    free(over);

    /* objects count as arrays do: {"a": {"a": ... 33 deep, the 33rd '{' at byte 6 * 32 */
    char obj[33 * 6 + 1];
    for (int i = 0; i < 33; i++) {
        memcpy(obj + 6 * i, "{\"a\": ", 6);
    }
    obj[33 * 6] = '\0'; /* the innermost "a" has no value: malformed, but too deep first */
    EXPECT(SCORE, obj, &lim, 413, "JSON nesting deeper than 32 levels at byte 192");

    /* a real request at exactly its depth limit is scored; one level less is refused at the
     * third '[' of prediction */
    lim.max_depth = 4;
    EXPECT(SCORE, one_image, &lim, 200, NULL);
    EXPECT(MULTIPART, one_image, &lim, 200, NULL);
    lim.max_depth = 3;
    EXPECT(SCORE, one_image, &lim, 413,
           "JSON nesting deeper than 3 levels at byte 17 (--max-spec-depth)");
    EXPECT(MULTIPART, one_image, &lim, 413,
           "JSON nesting deeper than 3 levels at byte 17 of part 'spec' (--max-spec-depth)");
    /* 0: no depth limit of ours (jansson keeps its own) */
    lim.max_depth = 0;
    EXPECT(SCORE, one_image, &lim, 200, NULL);
}

/* Brackets, commas and quotes inside strings are not structure. The metrics' "as" keys are the
 * strings a"[[{,  (an escaped quote, then brackets), b\  (an escaped backslash just before the
 * closing quote: a scanner that took \" there as an escape would swap inside and outside for the
 * rest of the body) and [[[[,,,,  (counted only by such a scanner). The body is 4 deep (the
 * arrays) and has 27 values: 17 + the metrics list + 3 x (object, name, as). */
static const char strings_body[] =
    "{" ARRAYS ", \"metrics\": [{\"name\": \"dice\", \"as\": \"a\\\"[[{,\"}, "
    "{\"name\": \"iou\", \"as\": \"b\\\\\"}, {\"name\": \"mcc\", \"as\": \"[[[[,,,,\"}]}";

static void test_strings(void)
{
    struct slp_limits lim = defaults();
    lim.max_depth = 4;
    lim.max_json_values = 27;
    EXPECT(SCORE, strings_body, &lim, 200, NULL);
    EXPECT(MULTIPART, strings_body, &lim, 200, NULL);
    lim.max_json_values = 26;
    EXPECT(SCORE, strings_body, &lim, 413, "JSON body has more than 26 values");

    /* the answer's keys are the strings jansson read: the scan skipped the same bytes */
    struct slp_response r;
    lim.max_json_values = 27;
    slp_score_request(strings_body, strlen(strings_body), &lim, NULL, &r);
    json_t *j = json_loadb(r.body, r.len, 0, NULL);
    json_t *metrics = json_object_get(j, "metrics");
    CHECK(json_object_get(metrics, "a\"[[{,") != NULL);
    CHECK(json_object_get(metrics, "b\\") != NULL);
    CHECK(json_object_get(metrics, "[[[[,,,,") != NULL);
    json_decref(j);
    slp_response_free(&r);

    /* \uXXXX and a string of escaped backslashes and quotes, 4 deep as before */
    EXPECT(SCORE,
           "{" ARRAYS
           ", \"metrics\": [{\"name\": \"dice\", \"as\": \"\\u005b\\\\\\\\\\\"\\\\[\"}]}",
           &lim, 200, NULL);
}

/* Truncated and malformed bodies pass the scan and get jansson's 400; none is read past its
 * end (send_n copies each into a buffer of exactly its length). */
static void test_malformed(void)
{
    static const char *const bodies[] = {
        "{\"prediction\": \"abc",   /* unterminated string */
        "{\"prediction\": \"abc\\", /* ends in the backslash of an escape */
        "{\"prediction\": \"\\\"",  /* ends after an escaped quote */
        "\"",
        "\\",
        "",
        "{\"a\": [1, 2]]]]}}}", /* stray closers do not make the depth negative */
        "]]]]{",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        EXPECT(SCORE, bodies[i], NULL, 400, "malformed JSON");
        EXPECT(MULTIPART, bodies[i][0] ? bodies[i] : " ", NULL, 400, "malformed JSON");
        EXPECT(WEIGHT_MAP, bodies[i], NULL, 400, "malformed JSON");
    }
    /* stray closers first, then 33 levels: still too deep */
    char *over = nested(33);
    char body[128];
    snprintf(body, sizeof body, "]]]%s", over);
    EXPECT(SCORE, body, NULL, 413, "JSON nesting deeper than 32 levels at byte 35");
    free(over);
}

/* Long data strings left out of jansson's parse (the skeleton) are still scanned for the limits
 * as they are: brackets and commas inside them are no structure, byte offsets count from the
 * body's own start, and a body cut anywhere is jansson's 400 on every route. The data strings
 * here are 100 characters "[,[,..." (not base64: refused by the decoder, after the limits). */
static void test_long_strings(void)
{
    char s100[101];
    for (int i = 0; i < 100; i++) {
        s100[i] = i % 2 ? ',' : '[';
    }
    s100[100] = '\0';
    char body[512];
    /* {"prediction": {"data": " is 25 bytes, the string bytes 25..124, then "}, "target":
     * puts target's first '[' at 139 and its third (depth 4) at 141. 7 values: the object,
     * prediction's object, the string, target's three lists and the 1. */
    snprintf(body, sizeof body, "{\"prediction\": {\"data\": \"%s\"}, \"target\": [[[1]]]}", s100);
    CHECK_INT(strchr(body + 25 + 100, '[') - body, 139);
    struct slp_limits lim = defaults();
    lim.max_depth = 3;
    EXPECT(SCORE, body, &lim, 413, "JSON nesting deeper than 3 levels at byte 141");
    EXPECT(MULTIPART, body, &lim, 413, "deeper than 3 levels at byte 141 of part 'spec'");
    lim.max_depth = 4;
    lim.max_json_values = 7;
    EXPECT(SCORE, body, &lim, 422, "prediction.format: required");
    lim.max_json_values = 6;
    EXPECT(SCORE, body, &lim, 413, "JSON body has more than 6 values");
    /* weight map: the target's rle string, cut anywhere, is jansson's 400 */
    snprintf(body, sizeof body,
             "{\"target\": {\"format\": \"rle\", \"shape\": [2, 2], \"data\": \"%s\"}, "
             "\"w0\": 1}",
             s100);
    EXPECT(WEIGHT_MAP, body, NULL, 422, "target.data: token 1");
    size_t len = strlen(body);
    int bad = 0;
    for (size_t cut = 0; cut < len; cut++) {
        char d[DETAIL];
        int st[3] = {send_n(SCORE, body, cut, NULL, d), send_n(WEIGHT_MAP, body, cut, NULL, d),
                     cut ? send_n(MULTIPART, body, cut, NULL, d) : 400};
        bad += st[0] != 400 || st[1] != 400 || st[2] != 400;
    }
    CHECK_INT(bad, 0);
}

static void test_values(void)
{
    struct slp_limits lim = defaults();
    lim.max_json_values = 17;
    EXPECT(SCORE, one_image, &lim, 200, NULL);
    EXPECT(MULTIPART, one_image, &lim, 200, NULL);
    lim.max_json_values = 16;
    EXPECT(SCORE, one_image, &lim, 413,
           "JSON body has more than 16 values (--max-json-values); send large arrays as base64 "
           "raw/npy");
    EXPECT(MULTIPART, one_image, &lim, 413,
           "JSON part 'spec' has more than 16 values (--max-json-values)");
    /* the weight-map body below has 23 values: the object, the list, 3 images of 7 (1 + 2 rows
     * + 4 numbers) */
    lim.max_json_values = 22;
    EXPECT(WEIGHT_MAP, "{\"target\": [[[1, 0], [0, 0]], [[0, 0], [0, 1]], [[0, 0], [0, 0]]]}", &lim,
           413, "JSON body has more than 22 values (--max-json-values)");
    lim.max_json_values = 23;
    EXPECT(WEIGHT_MAP, "{\"target\": [[[1, 0], [0, 0]], [[0, 0], [0, 1]], [[0, 0], [0, 0]]]}", &lim,
           200, NULL);

    /* the default: [0,0,...] of 4194304 zeros is 4194305 values, refused before jansson */
    const size_t zeros = 4194304;
    char *big = malloc(2 * zeros + 2);
    big[0] = '[';
    for (size_t i = 0; i < zeros; i++) {
        big[1 + 2 * i] = '0';
        big[2 + 2 * i] = ',';
    }
    big[2 * zeros] = ']';
    big[2 * zeros + 1] = '\0';
    EXPECT(SCORE, big, NULL, 413,
           "JSON body has more than 4194304 values (--max-json-values); send large arrays as "
           "base64 raw/npy");
    EXPECT(WEIGHT_MAP, big, NULL, 413, "JSON body has more than 4194304 values");
    free(big);
}

/* Three binary 2x2 images in a JSON body, and as raw multipart parts. */
static const char three_images[] =
    "{\"prediction\": [[[0, 0], [0, 0]], [[0, 0], [0, 0]], [[0, 0], [0, 0]]], "
    "\"target\": [[[1, 0], [0, 0]], [[0, 0], [0, 0]], [[0, 0], [0, 1]]]}";

static int multipart_raw_images(int n, const struct slp_limits *lim, char *detail)
{
    static const float pred[3 * 4];
    static const unsigned char mask[3 * 4] = {1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    char spec[256];
    snprintf(spec, sizeof spec,
             "{\"prediction\": {\"format\": \"raw\", \"part\": \"p\", \"dtype\": \"float32\", "
             "\"shape\": [%d, 2, 2]}, \"target\": {\"format\": \"raw\", \"part\": \"y\", "
             "\"dtype\": \"uint8\", \"shape\": [%d, 2, 2]}}",
             n, n);
    const struct slp_part items[] = {
        {"spec", (const unsigned char *)spec, strlen(spec)},
        {"p", (const unsigned char *)pred, sizeof(float) * 4 * (size_t)n},
        {"y", mask, 4 * (size_t)n},
    };
    const struct slp_parts parts = {items, 3};
    struct slp_response r;
    slp_score_multipart(&parts, lim, NULL, &r);
    json_t *j = json_loadb(r.body, r.len, 0, NULL);
    const char *d = json_string_value(json_object_get(j, "detail"));
    snprintf(detail, DETAIL, "%s", d ? d : "");
    json_decref(j);
    int status = r.status;
    slp_response_free(&r);
    return status;
}

static void test_images(void)
{
    char detail[DETAIL];
    struct slp_limits lim = defaults();
    lim.max_images = 2;
    EXPECT(SCORE, three_images, &lim, 413,
           "prediction has 3 images, over the limit of 2 (--max-images)");
    EXPECT(MULTIPART, three_images, &lim, 413,
           "prediction has 3 images, over the limit of 2 (--max-images)");
    CHECK_INT(multipart_raw_images(3, &lim, detail), 413);
    CHECK_HAS(detail, "prediction has 3 images, over the limit of 2 (--max-images)");
    CHECK_INT(multipart_raw_images(2, &lim, detail), 200);
    lim.max_images = 3;
    EXPECT(SCORE, three_images, &lim, 200, NULL);
    lim.max_images = 0; /* no limit */
    EXPECT(SCORE, three_images, &lim, 200, NULL);

    /* /v1/weight-map: N is the target's (and so the instances') dim 0 */
    static const char wm[] =
        "{\"target\": [[[1, 0], [0, 0]], [[0, 0], [0, 1]], [[0, 0], [0, 0]]], "
        "\"instances\": [[[1, 0], [0, 0]], [[0, 0], [0, 1]], [[0, 0], [0, 0]]]}";
    lim.max_images = 2;
    EXPECT(WEIGHT_MAP, wm, &lim, 413, "target has 3 images, over the limit of 2 (--max-images)");
    lim.max_images = 3;
    EXPECT(WEIGHT_MAP, wm, &lim, 200, NULL);
}

/* One image of C = 3 classes, 2x2: multiclass (target of class indices) and multilabel (target
 * [N, C, *S]). */
#define PRED3 "\"prediction\": [[[[0, 1], [0, 0]], [[1, 0], [0, 0]], [[0, 0], [1, 1]]]]"
static const char multiclass[] = "{" PRED3 ", \"target\": [[[1, 0], [2, 2]]]}";
static const char multilabel[] =
    "{" PRED3 ", \"target\": [[[[0, 1], [0, 0]], [[1, 0], [0, 0]], [[0, 0], [1, 1]]]]}";

static void test_classes(void)
{
    struct slp_limits lim = defaults();
    EXPECT(SCORE, multiclass, &lim, 200, NULL);
    EXPECT(SCORE, multilabel, &lim, 200, NULL);
    lim.max_classes = 2;
    EXPECT(SCORE, multiclass, &lim, 413,
           "prediction has 3 classes, over the limit of 2 (--max-classes)");
    EXPECT(SCORE, multilabel, &lim, 413,
           "prediction has 3 classes, over the limit of 2 (--max-classes)");
    EXPECT(MULTIPART, multilabel, &lim, 413,
           "prediction has 3 classes, over the limit of 2 (--max-classes)");
    /* binary: C = 1 is under any limit */
    lim.max_classes = 1;
    EXPECT(SCORE, one_image, &lim, 200, NULL);

    /* a per-class list longer than the limit is refused the same way, before any array is
     * decoded; one as long as the limit goes on to the C check */
    lim.max_classes = 2;
    EXPECT(SCORE,
           "{" PRED3 ", \"target\": [[[1, 0], [2, 2]]], \"losses\": [{\"name\": "
           "\"cross_entropy\", \"class_weights\": [1, 2, 3]}]}",
           &lim, 413,
           "losses[0].class_weights has 3 values, over the limit of 2 classes (--max-classes)");
    EXPECT(SCORE,
           "{" PRED3 ", \"target\": [[[1, 0], [2, 2]]], \"losses\": [{\"name\": \"combo\", "
           "\"terms\": [{\"name\": \"dice\", \"class_weights\": [1, 2, 3]}]}]}",
           &lim, 413, "losses[0].terms[0].class_weights has 3 values, over the limit of 2 classes");
    EXPECT(SCORE,
           "{" PRED3 ", \"target\": [[[1, 0], [2, 2]]], \"losses\": [{\"name\": "
           "\"cross_entropy\", \"class_weights\": [1, 2]}]}",
           &lim, 413, "prediction has 3 classes, over the limit of 2 (--max-classes)");
    lim.max_classes = 3;
    EXPECT(SCORE,
           "{" PRED3 ", \"target\": [[[1, 0], [2, 2]]], \"losses\": [{\"name\": "
           "\"cross_entropy\", \"class_weights\": [1, 2, 3]}]}",
           &lim, 200, NULL);
}

static void test_specs(void)
{
    struct slp_limits lim = defaults();
    lim.max_specs = 2;
    EXPECT(SCORE, "{" ARRAYS ", \"losses\": [\"dice\", \"jaccard\", \"tversky\"]}", &lim, 413,
           "losses has 3 entries, over the limit of 2 (--max-specs)");
    EXPECT(MULTIPART, "{" ARRAYS ", \"metrics\": [\"dice\", \"iou\", \"mcc\"]}", &lim, 413,
           "metrics has 3 entries, over the limit of 2 (--max-specs)");
    EXPECT(SCORE,
           "{" ARRAYS ", \"losses\": [{\"name\": \"dice\"}, {\"name\": \"jaccard\"}], "
           "\"metrics\": [\"dice\", \"iou\"]}",
           &lim, 200, NULL);

    /* the default and the storage cap: 33 metrics are too many, with 0 or 40 as well */
    char body[1024];
    size_t n = (size_t)snprintf(body, sizeof body, "{" ARRAYS ", \"metrics\": [");
    for (int i = 0; i < 33; i++) {
        n += (size_t)snprintf(body + n, sizeof body - n, "%s\"dice\"", i ? ", " : "");
    }
    snprintf(body + n, sizeof body - n, "]}");
    EXPECT(SCORE, body, NULL, 413, "metrics has 33 entries, over the limit of 32 (--max-specs)");
    lim.max_specs = 0;
    EXPECT(SCORE, body, &lim, 413, "over the limit of 32 (--max-specs)");
    lim.max_specs = 40;
    EXPECT(SCORE, body, &lim, 413, "over the limit of 32 (--max-specs)");
}

/* The lib alone: 0 is no limit, and SL_MAX_CLASSES holds whatever max_classes says. */
static void test_lib(void)
{
    char msg[256];
    struct sl_result *res = NULL;
    static float pred[1025 * 4];
    static uint8_t mask[4];
    struct sl_request req;
    sl_request_init(&req);
    CHECK_INT(req.max_images, 0);
    CHECK_INT(req.max_classes, 0);
    req.prediction = (struct sl_tensor){pred, SL_DT_F32, 4, {1, 1025, 2, 2}};
    req.target = (struct sl_tensor){mask, SL_DT_U8, 3, {1, 2, 2}};
    int rc = sl_score(&req, NULL, &res, msg, sizeof msg);
    CHECK_INT(slp_http_status(rc), 413);
    CHECK_HAS(msg, "prediction has 1025 classes, over the limit of 1024 (--max-classes)");
    req.max_classes = 5000;
    rc = sl_score(&req, NULL, &res, msg, sizeof msg);
    CHECK_INT(slp_http_status(rc), 413);
    CHECK_HAS(msg, "over the limit of 1024 (--max-classes)");
    req.prediction.shape[1] = 3;
    rc = sl_score(&req, NULL, &res, msg, sizeof msg);
    CHECK_INT(rc, 0);
    sl_result_free(res);
    req.max_images = 1;
    req.prediction = (struct sl_tensor){pred, SL_DT_F32, 3, {2, 2, 2}};
    req.target = (struct sl_tensor){pred, SL_DT_F32, 3, {2, 2, 2}};
    rc = sl_score(&req, NULL, &res, msg, sizeof msg);
    CHECK_INT(slp_http_status(rc), 413);
    CHECK_HAS(msg, "prediction has 2 images, over the limit of 1 (--max-images)");

    struct sl_weight_map_params p;
    float w[2 * 4];
    sl_weight_map_params_init(&p);
    CHECK_INT(p.max_images, 0);
    const struct sl_tensor t = {mask, SL_DT_U8, 3, {1, 2, 2}};
    const struct sl_tensor t2 = {pred, SL_DT_F32, 3, {2, 2, 2}};
    CHECK_INT(sl_weight_map(&t2, NULL, &p, NULL, w, msg, sizeof msg), 0);
    p.max_images = 1;
    CHECK_INT(sl_weight_map(&t, NULL, &p, NULL, w, msg, sizeof msg), 0);
    rc = sl_weight_map(&t2, NULL, &p, NULL, w, msg, sizeof msg);
    CHECK_INT(slp_http_status(rc), 413);
    CHECK_HAS(msg, "target has 2 images, over the limit of 1 (--max-images)");
}

static const struct check_test tests[] = {
    CHECK_TEST(test_defaults),  CHECK_TEST(test_depth),   CHECK_TEST(test_strings),
    CHECK_TEST(test_malformed), CHECK_TEST(test_values),  CHECK_TEST(test_long_strings),
    CHECK_TEST(test_images),    CHECK_TEST(test_classes), CHECK_TEST(test_specs),
    CHECK_TEST(test_lib),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_limits", tests);
}
