/* test_chal_forms.c - the images of a challenge's reference or submission (proto/challenge.h):
 * the JSON form split into images, the multipart forms (.npy parts, gzip'd parts, Kaggle CSV
 * with a shape), the note, id lists and the bundle. Expected bytes are the ones written into
 * the inputs, or masks derived by hand in the comments. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../check.h"
#include "challenge.h"
#include "dynbuf.h"

static char msg[512];

/* ---- the JSON form ---- */

static int from_json(const char *text, enum slc_role role, struct slc_images **im)
{
    msg[0] = '\0';
    return slc_images_from_json(text, strlen(text), role, NULL, im, msg, sizeof msg);
}

static void json_refused(const char *text, enum slc_role role, int code, const char *prefix)
{
    struct slc_images *im = (struct slc_images *)1;
    int rc = from_json(text, role, &im);
    CHECK_INT(rc, code);
    CHECK(im == NULL);
    CHECK_PREFIX(msg, prefix);
    if (rc == 0) {
        slc_images_free(im);
    }
}

/* A raw uint8 [2, 2, 2] array of the bytes 0..7 (base64 "AAECAwQFBgc=": python3 -c "import
 * base64; print(base64.b64encode(bytes(range(8))).decode())"). */
#define STACK                                                                                      \
    "{\"format\": \"raw\", \"dtype\": \"uint8\", \"shape\": [2, 2, 2], \"data\": "                 \
    "\"AAECAwQFBgc=\"}"

static void test_json_split(void)
{
    struct slc_images *im = NULL;
    CHECK_INT(from_json("{\"target\": " STACK "}", SLC_REFERENCE, &im), 0);
    if (!im) {
        fprintf(stderr, "  %s\n", msg);
        return;
    }
    /* image 0 is bytes 0..3, image 1 bytes 4..7, each [2, 2]; ids default "0", "1" */
    CHECK_INT(im->n, 2);
    CHECK(im->note == NULL);
    static const uint8_t want0[4] = {0, 1, 2, 3}, want1[4] = {4, 5, 6, 7};
    CHECK(strcmp(im->items[0].id, "0") == 0 && strcmp(im->items[1].id, "1") == 0);
    for (int i = 0; i < 2; i++) {
        CHECK(im->items[i].a.t.dtype == SL_DT_U8);
        CHECK_INT(im->items[i].a.t.ndim, 2);
        CHECK(im->items[i].a.t.shape[0] == 2 && im->items[i].a.t.shape[1] == 2);
        /* each image owns its buffer */
        CHECK(im->items[i].a.buf != NULL && im->items[i].a.t.data == im->items[i].a.buf);
    }
    CHECK(memcmp(im->items[0].a.t.data, want0, 4) == 0);
    CHECK(memcmp(im->items[1].a.t.data, want1, 4) == 0);
    slc_images_free(im);

    /* a submission: ids as given, in their order, and a note */
    CHECK_INT(from_json("{\"prediction\": " STACK
                        ", \"ids\": [\"z.png\", \"a_1\"], \"note\": \"run \xc3\xa9\"}",
                        SLC_SUBMISSION, &im),
              0);
    if (im) {
        CHECK(strcmp(im->items[0].id, "z.png") == 0 && strcmp(im->items[1].id, "a_1") == 0);
        CHECK(im->note && strcmp(im->note, "run \xc3\xa9") == 0);
        CHECK(memcmp(im->items[1].a.t.data, want1, 4) == 0);
        slc_images_free(im);
    }
    /* no note given: "" */
    CHECK_INT(from_json("{\"prediction\": [[1.5], [2.5]]}", SLC_SUBMISSION, &im), 0);
    if (im) {
        CHECK(im->note && im->note[0] == '\0');
        CHECK_INT(im->n, 2);
        CHECK(im->items[1].a.t.dtype == SL_DT_F64 && im->items[1].a.t.ndim == 1);
        CHECK(((const double *)im->items[1].a.t.data)[0] == 2.5);
        slc_images_free(im);
    }
    slc_images_free(NULL);
}

static void test_json_errors(void)
{
    json_refused("{\"prediction\": " STACK ", \"mode\": \"binary\"}", SLC_SUBMISSION, SL_EINVAL,
                 "mode: the challenge's spec applies; a submission sends prediction, ids and "
                 "note only");
    json_refused("{\"target\": " STACK ", \"losses\": []}", SLC_REFERENCE, SL_EINVAL,
                 "losses: the challenge's spec applies; a reference sends target and ids only");
    json_refused("{\"target\": " STACK ", \"note\": \"x\"}", SLC_REFERENCE, SL_EINVAL,
                 "note: unknown key; a reference sends target and ids only");
    json_refused("{\"target\": " STACK "}", SLC_SUBMISSION, SL_EINVAL, "target: unknown key");
    json_refused("{\"ids\": []}", SLC_SUBMISSION, SL_EINVAL, "prediction: required");
    json_refused("[1]", SLC_SUBMISSION, SL_EINVAL, "the body must be a JSON object");
    json_refused("{\"target\": ", SLC_REFERENCE, SL_EMALFORMED, "malformed JSON");
    json_refused("{\"target\": [1, 2]}", SLC_REFERENCE, SL_ESHAPE,
                 "target: expected the images stacked, shape [N, *S], got [2]");
    json_refused("{\"target\": " STACK ", \"ids\": [\"a\"]}", SLC_REFERENCE, SL_ESHAPE,
                 "ids: 1 ids for 2 images");
    json_refused("{\"target\": " STACK ", \"ids\": [\"a\", \"a\"]}", SLC_REFERENCE, SL_EINVAL,
                 "ids[1]: 'a' repeats ids[0]");
    json_refused("{\"target\": " STACK ", \"ids\": [\"a\", \"b/c\"]}", SLC_REFERENCE, SL_EINVAL,
                 "ids[1]: 'b/c' is not an image id");
    json_refused("{\"target\": " STACK ", \"ids\": [\"a\", 2]}", SLC_REFERENCE, SL_EINVAL,
                 "ids[1]: expected a string");
    json_refused("{\"target\": " STACK ", \"ids\": \"a\"}", SLC_REFERENCE, SL_EINVAL,
                 "ids: expected a list");
    json_refused("{\"prediction\": " STACK ", \"note\": 3}", SLC_SUBMISSION, SL_EINVAL,
                 "note: expected a string");
    json_refused("{\"prediction\": {\"format\": \"raw\"}}", SLC_SUBMISSION, SL_EINVAL,
                 "prediction");
    /* 129 characters is one over the id limit */
    char t[1024];
    snprintf(t, sizeof t, "{\"target\": [[1]], \"ids\": [\"%0129d\"]}", 0);
    json_refused(t, SLC_REFERENCE, SL_EINVAL, "ids[0]: '");
    snprintf(t, sizeof t, "{\"target\": [[1]], \"ids\": [\"%0128d\"]}", 0);
    struct slc_images *im = NULL;
    CHECK_INT(from_json(t, SLC_REFERENCE, &im), 0);
    slc_images_free(im);
    /* a note of 201 characters is over SLC_NOTE_MAX; 200 two-byte ones are fine */
    strcpy(t, "{\"prediction\": [[1]], \"note\": \"");
    for (int i = 0; i < 201; i++) {
        strcat(t, "x");
    }
    strcat(t, "\"}");
    json_refused(t, SLC_SUBMISSION, SL_EINVAL, "note: 201 characters, at most 200");
    strcpy(t, "{\"prediction\": [[1]], \"note\": \"");
    for (int i = 0; i < 200; i++) {
        strcat(t, "\xc3\xa9");
    }
    strcat(t, "\"}");
    CHECK_INT(from_json(t, SLC_SUBMISSION, &im), 0);
    slc_images_free(im);
    /* over max_images */
    struct slp_limits lim;
    slp_limits_default(&lim);
    lim.max_images = 1;
    const char *two = "{\"target\": " STACK "}";
    im = NULL;
    CHECK_INT(slc_images_from_json(two, strlen(two), SLC_REFERENCE, &lim, &im, msg, sizeof msg),
              SL_ETOOLARGE);
    CHECK_PREFIX(msg, "target: 2 images, over the limit of 1");
}

/* ---- ids ---- */

static void test_ids(void)
{
    char **ids = NULL;
    size_t n = 9;
    json_t *j = json_pack("[s, s, s]", "A-z.0_9", "b", "c");
    CHECK_INT(slc_ids_parse(j, "ids", &ids, &n, msg, sizeof msg), 0);
    CHECK(n == 3 && ids && strcmp(ids[0], "A-z.0_9") == 0 && strcmp(ids[2], "c") == 0);
    slc_ids_free(ids, n);
    json_decref(j);
    /* the first repeat by position is named: ids[3] repeats ids[1] */
    j = json_pack("[s, s, s, s, s]", "x", "y", "z", "y", "x");
    CHECK_INT(slc_ids_parse(j, "split.public_ids", &ids, &n, msg, sizeof msg), SL_EINVAL);
    CHECK_PREFIX(msg, "split.public_ids[3]: 'y' repeats split.public_ids[1]");
    CHECK(ids == NULL && n == 0);
    json_decref(j);
    j = json_pack("[s]", "");
    CHECK_INT(slc_ids_parse(j, "ids", &ids, &n, msg, sizeof msg), SL_EINVAL);
    CHECK_PREFIX(msg, "ids[0]: '' is not an image id");
    json_decref(j);
    j = json_array();
    CHECK_INT(slc_ids_parse(j, "ids", &ids, &n, msg, sizeof msg), 0);
    CHECK(n == 0);
    slc_ids_free(ids, n);
    json_decref(j);
    slc_ids_free(NULL, 0);
}

/* ---- multipart ---- */

/* A .npy v1.0 file of uint8 [h, w] with the given bytes into buf (the header by
 * slp_npy_write_header, NumPy's layout, tested in test_array). Returns its length. */
static size_t npy_u8(uint8_t *buf, int64_t h, int64_t w, const uint8_t *data)
{
    int64_t shape[2] = {h, w};
    size_t hl = slp_npy_write_header(SL_DT_U8, shape, 2, 0, (char *)buf, 512);
    memcpy(buf + hl, data, (size_t)(h * w));
    return hl + (size_t)(h * w);
}

/* gzip of in[0..n) into out (cap bytes) with zlib; returns its length. */
static size_t gzip_of(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
    z.next_in = (Bytef *)(uintptr_t)in; /* zlib reads it only */
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    deflate(&z, Z_FINISH);
    size_t len = z.total_out;
    deflateEnd(&z);
    return len;
}

static int from_parts(struct slp_part *p, int n, enum slc_role role, struct slc_images **im)
{
    struct slp_parts ps = {p, n};
    msg[0] = '\0';
    return slc_images_from_parts(&ps, role, NULL, im, msg, sizeof msg);
}

static void parts_refused(struct slp_part *p, int n, enum slc_role role, int code,
                          const char *prefix)
{
    struct slc_images *im = (struct slc_images *)1;
    int rc = from_parts(p, n, role, &im);
    CHECK_INT(rc, code);
    CHECK(im == NULL);
    CHECK_PREFIX(msg, prefix);
    if (rc == 0) {
        slc_images_free(im);
    }
}

static void test_npy_parts(void)
{
    uint8_t f1[600], f2[600], gz[700];
    static const uint8_t d1[4] = {1, 0, 0, 1}, d2[6] = {9, 8, 7, 6, 5, 4};
    size_t n1 = npy_u8(f1, 2, 2, d1), n2 = npy_u8(f2, 2, 3, d2);
    size_t ngz = gzip_of(f2, n2, gz, sizeof gz);
    CHECK(gz[0] == 0x1f && gz[1] == 0x8b);
    struct slp_part p[3] = {{"img-1", f1, n1}, {"img.2", gz, ngz}, {"note", (const void *)"hi", 2}};
    struct slc_images *im = NULL;
    /* images of different sizes, the second gzip'd, and a note */
    CHECK_INT(from_parts(p, 3, SLC_SUBMISSION, &im), 0);
    if (im) {
        CHECK_INT(im->n, 2);
        CHECK(strcmp(im->items[0].id, "img-1") == 0 && strcmp(im->items[1].id, "img.2") == 0);
        CHECK(im->items[0].a.t.shape[0] == 2 && im->items[0].a.t.shape[1] == 2);
        CHECK(im->items[1].a.t.shape[0] == 2 && im->items[1].a.t.shape[1] == 3);
        CHECK(memcmp(im->items[0].a.t.data, d1, 4) == 0);
        CHECK(memcmp(im->items[1].a.t.data, d2, 6) == 0);
        CHECK(strcmp(im->note, "hi") == 0);
        slc_images_free(im);
    }
    /* a reference has no note */
    parts_refused(p, 3, SLC_REFERENCE, SL_EINVAL, "part 'note': a reference has no note");
    CHECK_INT(from_parts(p, 2, SLC_REFERENCE, &im), 0);
    if (im) {
        CHECK(im->note == NULL);
        slc_images_free(im);
    }
    /* a bad name, a repeated one, a spec part without csv, nothing at all */
    struct slp_part q[2] = {{"a b", f1, n1}, {"x", f1, n1}};
    parts_refused(q, 2, SLC_REFERENCE, SL_EINVAL, "part 'a b': the part's name is the image id");
    q[0].name = "x";
    parts_refused(q, 2, SLC_REFERENCE, SL_EINVAL, "part 'x': given twice");
    q[0].name = "spec";
    parts_refused(q, 2, SLC_REFERENCE, SL_EINVAL, "part 'spec': the challenge's spec applies");
    parts_refused(q, 0, SLC_REFERENCE, SL_EINVAL, "the body holds no images");
    /* a truncated file, a truncated gzip stream: named by the part */
    struct slp_part t = {"cut", f1, n1 - 1};
    parts_refused(&t, 1, SLC_REFERENCE, SL_ESIZE, "part 'cut': expected 4 data bytes");
    t.data = gz;
    t.len = ngz - 5;
    parts_refused(&t, 1, SLC_REFERENCE, SL_EMALFORMED, "part 'cut'");
    t.data = (const void *)"hello";
    t.len = 5;
    parts_refused(&t, 1, SLC_REFERENCE, SL_EMALFORMED, "part 'cut'");
    /* a note that is not UTF-8 */
    struct slp_part nb[2] = {{"a", f1, n1}, {"note", (const void *)"\xff", 1}};
    parts_refused(nb, 2, SLC_SUBMISSION, SL_EINVAL, "part 'note': not UTF-8 text");
    /* over max_images */
    struct slp_limits lim;
    slp_limits_default(&lim);
    lim.max_images = 1;
    struct slp_parts ps = {p, 2};
    im = NULL;
    CHECK_INT(slc_images_from_parts(&ps, SLC_REFERENCE, &lim, &im, msg, sizeof msg), SL_ETOOLARGE);
    CHECK_PREFIX(msg, "part 'img.2': over the limit of 1 images");
}

/* ---- Kaggle CSV ---- */

static int from_csv(const char *text, int64_t h, int64_t w, struct slc_images **im)
{
    msg[0] = '\0';
    return slc_images_from_csv(text, strlen(text), h, w, NULL, im, msg, sizeof msg);
}

static void csv_refused(const char *text, int64_t h, int64_t w, int code, const char *prefix)
{
    struct slc_images *im = (struct slc_images *)1;
    int rc = from_csv(text, h, w, &im);
    CHECK_INT(rc, code);
    CHECK(im == NULL);
    CHECK_PREFIX(msg, prefix);
    if (rc == 0) {
        slc_images_free(im);
    }
}

static void test_csv(void)
{
    struct slc_images *im = NULL;
    /* Kaggle's convention: pixels numbered from 1, column-major (down the first column, then
     * the next). In a 2 x 2 image pixel 1 is (row 0, col 0), 2 is (1, 0), 3 is (0, 1), 4 is
     * (1, 1). "1 2" is the run of 2 pixels from pixel 1: (0, 0) and (1, 0), the first column,
     * so the C-order mask is [[1, 0], [1, 0]] = bytes 1 0 1 0. */
    CHECK_INT(from_csv("ImageId,EncodedPixels\nimg1,1 2\n", 2, 2, &im), 0);
    if (im) {
        static const uint8_t want[4] = {1, 0, 1, 0};
        CHECK_INT(im->n, 1);
        CHECK(strcmp(im->items[0].id, "img1") == 0);
        CHECK(im->items[0].a.t.dtype == SL_DT_U8 && im->items[0].a.t.ndim == 2);
        CHECK(im->items[0].a.t.shape[0] == 2 && im->items[0].a.t.shape[1] == 2);
        CHECK(memcmp(im->items[0].a.t.data, want, 4) == 0);
        slc_images_free(im);
    }
    /* 2 x 3 image (H 2, W 3): column-major numbering 1:(0,0) 2:(1,0) 3:(0,1) 4:(1,1) 5:(0,2)
     * 6:(1,2). Image a: rows "1 1" and "5 2" merge: (0,0), (0,2), (1,2) -> C-order
     * [[1,0,1],[0,0,1]]. Image b: empty EncodedPixels, an empty mask. Image c: "3 2" -> (0,1),
     * (1,1) -> [[0,1,0],[0,1,0]]. A header in other case, CRLF lines, a BOM. */
    CHECK_INT(
        from_csv("\xef\xbb\xbfimageid,encodedpixels\r\na,1 1\r\nb,\r\na,5 2\r\nc,3 2", 2, 3, &im),
        0);
    if (im) {
        static const uint8_t a[6] = {1, 0, 1, 0, 0, 1}, b[6] = {0}, c[6] = {0, 1, 0, 0, 1, 0};
        CHECK_INT(im->n, 3);
        CHECK(strcmp(im->items[0].id, "a") == 0 && strcmp(im->items[1].id, "b") == 0 &&
              strcmp(im->items[2].id, "c") == 0);
        CHECK(memcmp(im->items[0].a.t.data, a, 6) == 0);
        CHECK(memcmp(im->items[1].a.t.data, b, 6) == 0);
        CHECK(memcmp(im->items[2].a.t.data, c, 6) == 0);
        slc_images_free(im);
    }
    csv_refused("", 2, 2, SL_EINVAL, "line 1: expected the header ImageId,EncodedPixels");
    csv_refused("img1,1 2\n", 2, 2, SL_EINVAL, "line 1: expected the header");
    csv_refused("ImageId,EncodedPixels\n", 2, 2, SL_EINVAL, "no rows after the header");
    csv_refused("ImageId,EncodedPixels\nimg1\n", 2, 2, SL_EINVAL,
                "line 2: expected two fields ImageId,EncodedPixels, got 'img1'");
    csv_refused("ImageId,EncodedPixels\nimg1,1 2,3\n", 2, 2, SL_EINVAL,
                "line 2: expected two fields");
    csv_refused("ImageId,EncodedPixels\n\nim g,1 2\n", 2, 2, SL_EINVAL,
                "line 3: ImageId 'im g': an image id is");
    /* 4 pixels in a 2 x 2 image: a run from 4 of length 2 goes past */
    csv_refused("ImageId,EncodedPixels\nok,1 1\nimg1,4 2\n", 2, 2, SL_ERANGE,
                "line 3 (ImageId 'img1') EncodedPixels: pair 1 (start 4, length 2) runs past");
    csv_refused("ImageId,EncodedPixels\nimg1,1 x\n", 2, 2, SL_EINVAL,
                "line 2 (ImageId 'img1') EncodedPixels: token 2");
    /* rows of one image may overlap (separate objects): 2 x 2, "1 3" covers pixels 1..3 =
     * (0,0), (1,0), (0,1); "3 2" covers 3..4 = (0,1), (1,1): together every pixel, [[1,1],[1,1]].
     * "-" is an empty mask, like an empty field. */
    CHECK_INT(from_csv("ImageId,EncodedPixels\nx,1 3\nx,3 2\ny,-\n", 2, 2, &im), 0);
    if (im) {
        static const uint8_t all[4] = {1, 1, 1, 1}, none[4] = {0};
        CHECK_INT(im->n, 2);
        CHECK(memcmp(im->items[0].a.t.data, all, 4) == 0);
        CHECK(memcmp(im->items[1].a.t.data, none, 4) == 0);
        slc_images_free(im);
    }
    /* within a row, runs are sorted and apart; pairs complete; starts and lengths positive */
    csv_refused("ImageId,EncodedPixels\nx,3 1 1 1\n", 2, 2, SL_ERANGE,
                "line 2 (ImageId 'x') EncodedPixels: pair 2 (start 1, length 1) starts at or "
                "before the end 3 of pair 1");
    csv_refused("ImageId,EncodedPixels\nx,1 2 2 1\n", 2, 2, SL_ERANGE,
                "line 2 (ImageId 'x') EncodedPixels: pair 2 (start 2, length 1) starts at or "
                "before the end 2 of pair 1");
    csv_refused("ImageId,EncodedPixels\nx,1 1 3\n", 2, 2, SL_ERANGE,
                "line 2 (ImageId 'x') EncodedPixels: odd number of tokens: pair 2 (start 3)");
    csv_refused("ImageId,EncodedPixels\nx,0 1\n", 2, 2, SL_ERANGE,
                "line 2 (ImageId 'x') EncodedPixels: pair 1 (start 0, length 1): start must be");
    csv_refused("ImageId,EncodedPixels\nx,1 0\n", 2, 2, SL_ERANGE,
                "line 2 (ImageId 'x') EncodedPixels: pair 1 (start 1, length 0): length must be");
    /* 99999999999999999999 saturates: past any image, never wrapped */
    csv_refused("ImageId,EncodedPixels\nx,1 99999999999999999999\n", 2, 2, SL_ERANGE,
                "line 2 (ImageId 'x') EncodedPixels: pair 1 (start 1, length 4611686018427387904) "
                "runs past the last pixel 4");
    csv_refused("ImageId,EncodedPixels\nx,1 1\n", 0, 2, SL_EINVAL, "shape [0, 2]");
    /* over max_images, over max_elements */
    struct slp_limits lim;
    slp_limits_default(&lim);
    lim.max_elements = 6;
    const char *one = "ImageId,EncodedPixels\na,1 1\n";
    im = NULL;
    CHECK_INT(slc_images_from_csv(one, strlen(one), 2, 4, &lim, &im, msg, sizeof msg),
              SL_ETOOLARGE);
    CHECK_PREFIX(msg, "shape [2, 4]: an image is over the limit of 6 elements");
    slp_limits_default(&lim);
    lim.max_images = 1;
    const char *two = "ImageId,EncodedPixels\na,1 1\nb,1 1\n";
    im = NULL;
    CHECK_INT(slc_images_from_csv(two, strlen(two), 2, 2, &lim, &im, msg, sizeof msg),
              SL_ETOOLARGE);
    CHECK_PREFIX(msg, "line 3: ImageId 'b' is over the limit of 1 images");
}

static void test_csv_parts(void)
{
    const char *csv = "ImageId,EncodedPixels\nimg1,1 2\n";
    const char *spec = "{\"shape\": [2, 2]}";
    struct slp_part p[3] = {{"csv", (const void *)csv, strlen(csv)},
                            {"spec", (const void *)spec, strlen(spec)},
                            {"note", (const void *)"n", 1}};
    struct slc_images *im = NULL;
    CHECK_INT(from_parts(p, 3, SLC_SUBMISSION, &im), 0);
    if (im) {
        static const uint8_t want[4] = {1, 0, 1, 0}; /* as in test_csv */
        CHECK_INT(im->n, 1);
        CHECK(memcmp(im->items[0].a.t.data, want, 4) == 0);
        CHECK(strcmp(im->note, "n") == 0);
        slc_images_free(im);
    }
    CHECK_INT(from_parts(p, 2, SLC_REFERENCE, &im), 0);
    if (im) {
        CHECK(im->note == NULL);
        slc_images_free(im);
    }
    parts_refused(p, 3, SLC_REFERENCE, SL_EINVAL,
                  "part 'note': the CSV form takes the parts csv, spec only");
    parts_refused(p, 1, SLC_REFERENCE, SL_EINVAL, "part 'spec': required with part 'csv'");
    const char *bad[] = {"{\"shape\": [2]}", "{\"shape\": [2, 0]}", "{\"shape\": [2, 2.0]}",
                         "{\"shape\": [2, 2], \"mode\": \"binary\"}", "[2, 2]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p[1].data = (const void *)bad[i];
        p[1].len = strlen(bad[i]);
        parts_refused(p, 2, SLC_REFERENCE, SL_EINVAL, "part 'spec': expected {\"shape\": [H, W]}");
    }
    p[1].data = (const void *)"{";
    p[1].len = 1;
    parts_refused(p, 2, SLC_REFERENCE, SL_EMALFORMED, "malformed JSON in part 'spec'");
    p[1].data = (const void *)spec;
    p[1].len = strlen(spec);
    p[0].data = (const void *)"ImageId,EncodedPixels\nimg1,9 9\n";
    p[0].len = strlen((const char *)p[0].data);
    parts_refused(p, 2, SLC_REFERENCE, SL_ERANGE, "part 'csv': line 2 (ImageId 'img1')");
}

/* ---- the bundle ---- */

static void test_bundle(void)
{
    struct slc_images *im = NULL;
    CHECK_INT(from_json("{\"target\": " STACK ", \"ids\": [\"b\", \"a\"]}", SLC_REFERENCE, &im), 0);
    if (!im) {
        return;
    }
    struct slp_dynbuf b;
    slp_dynbuf_init(&b, 1 << 20);
    CHECK_INT(slc_bundle_write(im, &b), 0);
    /* "SLCBNDL1", count 2 (u32 LE), then sorted by id: "a" (bytes 4..7) first, as u32 1, "a",
     * u64 npy length, the file */
    CHECK(memcmp(b.data, "SLCBNDL1\x02\x00\x00\x00", 12) == 0);
    CHECK(memcmp(b.data + 12,
                 "\x01\x00\x00\x00"
                 "a",
                 5) == 0);
    /* the npy length: a 128-byte v1.0 header (NumPy pads the header of a 2-d uint8 array to
     * 128 bytes; python3 -c "import numpy as np, io; b = io.BytesIO(); np.save(b,
     * np.zeros((2, 2), np.uint8)); print(len(b.getvalue()))" prints 132) + 4 data bytes */
    CHECK(memcmp(b.data + 17, "\x84\x00\x00\x00\x00\x00\x00\x00", 8) == 0);
    CHECK(memcmp(b.data + 25, "\x93NUMPY\x01\x00", 8) == 0);
    CHECK(memcmp(b.data + 25 + 128, "\x04\x05\x06\x07", 4) == 0);
    CHECK(memcmp(b.data + 25 + 132,
                 "\x01\x00\x00\x00"
                 "b",
                 5) == 0);
    CHECK_INT(b.len, 12 + 2 * (4 + 1 + 8 + 132));
    struct slc_images *back = NULL;
    CHECK_INT(slc_bundle_read(b.data, b.len, NULL, &back, msg, sizeof msg), 0);
    if (back) {
        CHECK_INT(back->n, 2);
        CHECK(strcmp(back->items[0].id, "a") == 0 && strcmp(back->items[1].id, "b") == 0);
        CHECK(memcmp(back->items[0].a.t.data, "\x04\x05\x06\x07", 4) == 0);
        CHECK(memcmp(back->items[1].a.t.data, "\x00\x01\x02\x03", 4) == 0);
        CHECK(back->items[1].a.t.ndim == 2 && back->items[1].a.t.shape[1] == 2);
        /* the copy owns its buffers: the bundle can go */
        CHECK(back->items[0].a.buf != NULL);
        slc_images_free(back);
    }
    /* every truncation is refused */
    int refused = 0;
    for (size_t cut = 1; cut < b.len; cut++) {
        back = (struct slc_images *)1;
        int rc = slc_bundle_read(b.data, cut, NULL, &back, msg, sizeof msg);
        refused += rc != 0 && back == NULL;
    }
    CHECK_INT(refused, (long long)b.len - 1);
    back = NULL;
    CHECK_INT(slc_bundle_read(b.data, 3, NULL, &back, msg, sizeof msg), SL_EMALFORMED);
    CHECK_PREFIX(msg, "bundle: truncated in its first 12 bytes");
    CHECK_INT(slc_bundle_read(b.data, 14, NULL, &back, msg, sizeof msg), SL_EMALFORMED);
    CHECK_PREFIX(msg, "bundle: truncated at byte 12");
    CHECK_INT(slc_bundle_read(b.data, 22, NULL, &back, msg, sizeof msg), SL_EMALFORMED);
    CHECK_PREFIX(msg, "bundle: image 'a': truncated at byte 17");
    /* 100 bytes: 100 - 25 = 75 left for the 132 of the file */
    CHECK_INT(slc_bundle_read(b.data, 100, NULL, &back, msg, sizeof msg), SL_EMALFORMED);
    CHECK_PREFIX(msg, "bundle: image 'a': npy length 132 at byte 17 runs past the end (75 bytes");
    /* cut exactly after image "a" (12 + 145 bytes): the count says 2 */
    CHECK_INT(slc_bundle_read(b.data, 157, NULL, &back, msg, sizeof msg), SL_EMALFORMED);
    CHECK_PREFIX(msg, "bundle: truncated at byte 157 (image 1's id length)");
    char *copy = malloc(b.len + 1);
    memcpy(copy, b.data, b.len);
    copy[b.len] = 'x';
    CHECK_INT(slc_bundle_read(copy, b.len + 1, NULL, &back, msg, sizeof msg), SL_EMALFORMED);
    CHECK_PREFIX(msg, "bundle: 1 bytes after the last of its 2 images");
    copy[0] = 'X';
    CHECK_INT(slc_bundle_read(copy, b.len, NULL, &back, msg, sizeof msg), SL_EMALFORMED);
    CHECK_PREFIX(msg, "bundle: not a bundle");
    copy[0] = 'S';
    /* out of order: image 0's id "a" becomes "c", after "b" */
    copy[16] = 'c';
    CHECK_INT(slc_bundle_read(copy, b.len, NULL, &back, msg, sizeof msg), SL_EMALFORMED);
    CHECK_PREFIX(msg, "bundle: image 1: id 'b' comes after 'c'");
    copy[16] = 'b';
    CHECK_INT(slc_bundle_read(copy, b.len, NULL, &back, msg, sizeof msg), SL_EMALFORMED);
    CHECK_PREFIX(msg, "bundle: image 1: id 'b' repeats 'b'");
    copy[16] = '/';
    CHECK_INT(slc_bundle_read(copy, b.len, NULL, &back, msg, sizeof msg), SL_EMALFORMED);
    CHECK_PREFIX(msg, "bundle: image 0: not an image id at byte 16");
    copy[16] = 'a';
    copy[12] = 0; /* id length 0 */
    CHECK_INT(slc_bundle_read(copy, b.len, NULL, &back, msg, sizeof msg), SL_EMALFORMED);
    CHECK_PREFIX(msg, "bundle: image 0: bad id length 0 at byte 12");
    copy[12] = 1;
    copy[25] = 'X'; /* the npy magic */
    CHECK_INT(slc_bundle_read(copy, b.len, NULL, &back, msg, sizeof msg), SL_EMALFORMED);
    CHECK_PREFIX(msg, "bundle image 'a'");
    copy[25] = '\x93';
    struct slp_limits lim;
    slp_limits_default(&lim);
    lim.max_images = 1;
    CHECK_INT(slc_bundle_read(copy, b.len, &lim, &back, msg, sizeof msg), SL_ETOOLARGE);
    CHECK_PREFIX(msg, "bundle: 2 images, over the limit of 1");
    free(copy);
    /* an empty bundle is no images */
    struct slc_images none = {NULL, 0, NULL};
    slp_dynbuf_reset(&b);
    CHECK_INT(slc_bundle_write(&none, &b), 0);
    CHECK_INT(b.len, 12);
    CHECK_INT(slc_bundle_read(b.data, b.len, NULL, &back, msg, sizeof msg), 0);
    CHECK(back && back->n == 0);
    slc_images_free(back);
    slp_dynbuf_free(&b);
    slc_images_free(im);
}

static const struct check_test tests[] = {
    CHECK_TEST(test_json_split), CHECK_TEST(test_json_errors), CHECK_TEST(test_ids),
    CHECK_TEST(test_npy_parts),  CHECK_TEST(test_csv),         CHECK_TEST(test_csv_parts),
    CHECK_TEST(test_bundle),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_chal_forms", tests);
}
