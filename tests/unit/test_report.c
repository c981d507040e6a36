/* test_report.c - the scoring report (proto/report.h) and its PNG writer (proto/png.h): the
 * thumbnails are decoded here with libpng's simplified read API and their pixels compared with
 * the colours of docs/html.md at hand-placed TP/FP/FN/TN pixels; the worst images of
 * hand-written answers, the slices of 3-D images, the downsampling rule and the escaping of
 * ids are checked against values worked out by hand in the comments. */
#include <jansson.h>
#include <libpng16/png.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../proto/internal.h" /* not lib/internal.h, which -Ilib finds first */
#include "../check.h"
#include "array.h"
#include "png.h"
#include "proto.h"
#include "report.h"
#include "server.h"

/* The contract's colours as 0xRRGGBB. */
#define TP 0xDDAA33
#define FP 0xBB5566
#define FN 0x004488
#define TN 0xFFFFFF
#define IGN 0xBBBBBB
#define BLACK 0x000000

/* A decoded PNG: w x h RGB pixels. */
struct pix {
    int w, h;
    unsigned char *rgb;
};

/* Decodes the PNG file at p (n bytes) with libpng's simplified API into *out (out->rgb
 * malloc'd). Returns 0, or -1. */
static int png_decode(const void *p, size_t n, struct pix *out)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    memset(out, 0, sizeof *out);
    if (!png_image_begin_read_from_memory(&img, p, n)) {
        return -1;
    }
    img.format = PNG_FORMAT_RGB;
    out->rgb = malloc(PNG_IMAGE_SIZE(img));
    if (!out->rgb || !png_image_finish_read(&img, NULL, out->rgb, 0, NULL)) {
        png_image_free(&img);
        free(out->rgb);
        out->rgb = NULL;
        return -1;
    }
    out->w = (int)img.width;
    out->h = (int)img.height;
    return 0;
}

/* Pixel (x, y) of p as 0xRRGGBB, or -1 outside. */
static long at(const struct pix *p, int x, int y)
{
    if (!p->rgb || x < 0 || y < 0 || x >= p->w || y >= p->h) {
        return -1;
    }
    const unsigned char *c = p->rgb + ((size_t)y * (size_t)p->w + (size_t)x) * 3;
    return (long)c[0] << 16 | (long)c[1] << 8 | c[2];
}

#define CHECK_RGB(p, x, y, want)                                                                   \
    do {                                                                                           \
        long got_ = at((p), (x), (y));                                                             \
        if (got_ == (long)(want)) {                                                                \
            check_passed_++;                                                                       \
        } else {                                                                                   \
            check_failed_++;                                                                       \
            fprintf(stderr, "%s:%d: pixel (%d, %d) is #%06lX, want #%06X\n", __FILE__, __LINE__,   \
                    (int)(x), (int)(y), (unsigned long)got_, (unsigned)(want));                    \
        }                                                                                          \
    } while (0)

/* The n-th (from 0) tag starting with open in html, or NULL. */
static const char *nth_tag(const char *html, const char *open, int n)
{
    const char *p = html;
    for (int i = 0; p && (p = strstr(p, open)); i++, p++) {
        if (i == n) {
            return p;
        }
    }
    return NULL;
}

/* The value of attribute name of the tag at tag, into out (len bytes); false when absent. */
static bool attr(const char *tag, const char *name, char *out, size_t len)
{
    char pat[64];
    snprintf(pat, sizeof pat, " %s=\"", name);
    const char *end = strchr(tag, '>');
    const char *a = strstr(tag, pat);
    if (!a || !end || a > end) {
        return false;
    }
    a += strlen(pat);
    size_t n = strcspn(a, "\"");
    if (n >= len) {
        return false;
    }
    memcpy(out, a, n);
    out[n] = '\0';
    return true;
}

/* Decodes the PNG of the n-th overlay img of html into *p. Returns 0 or -1. */
static int overlay(const char *html, int n, struct pix *p)
{
    memset(p, 0, sizeof *p);
    const char *tag = nth_tag(html, "<img class=\"overlay\"", n);
    const char *src = tag ? strstr(tag, "base64,") : NULL;
    if (!src) {
        return -1;
    }
    src += 7;
    size_t len = strcspn(src, "\"");
    unsigned char *bytes = NULL;
    size_t nbytes = 0;
    char msg[128];
    if (slp_base64_decode(src, len, (size_t)1 << 26, &bytes, &nbytes, "src", msg, sizeof msg)) {
        return -1;
    }
    int rc = png_decode(bytes, nbytes, p);
    free(bytes);
    return rc;
}

/* Renders the report of answer text aj with spec text sj (NULL: none); returns the page (new)
 * and the code in *rc. */
static char *render(const char *aj, const char *sj, const char *const *ids,
                    const struct slp_report_image *imgs, int n, int *rc)
{
    json_error_t e;
    json_t *a = json_loads(aj, 0, &e);
    json_t *s = sj ? json_loads(sj, 0, &e) : NULL;
    CHECK(a != NULL);
    struct slp_dynbuf b;
    char msg[256];
    slp_dynbuf_init(&b, (size_t)1 << 28);
    *rc = slp_report_html(&b, a, s, ids, imgs, n, NULL, msg, sizeof msg);
    json_decref(a);
    json_decref(s);
    if (*rc) {
        fprintf(stderr, "    report: %s\n", msg);
        slp_dynbuf_free(&b);
        return NULL;
    }
    return slp_dynbuf_take(&b, NULL);
}

/* A view of n bytes of uint8 data with the given shape. */
static struct sl_tensor u8(const unsigned char *d, int ndim, int64_t a, int64_t b, int64_t c)
{
    struct sl_tensor t = {d, SL_DT_U8, ndim, {a, b, c}};
    return t;
}

/* ---- the PNG writer ------------------------------------------------------------------------ */

static void test_png_roundtrip(void)
{
    /* 3 x 2 pixels, each a different colour */
    const unsigned char rgb[] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 1, 2, 3, 250, 251, 252, 0, 0, 0};
    struct slp_dynbuf b;
    slp_dynbuf_init(&b, 1 << 20);
    CHECK(slp_png_rgb(rgb, 3, 2, &b) == 0);
    CHECK(b.len > 8 && memcmp(b.data, "\x89PNG\r\n\x1a\n", 8) == 0);
    struct pix p;
    CHECK(png_decode(b.data, b.len, &p) == 0);
    CHECK(p.w == 3 && p.h == 2);
    CHECK_RGB(&p, 0, 0, 0xFF0000);
    CHECK_RGB(&p, 1, 0, 0x00FF00);
    CHECK_RGB(&p, 2, 0, 0x0000FF);
    CHECK_RGB(&p, 0, 1, 0x010203);
    CHECK_RGB(&p, 1, 1, 0xFAFBFC);
    CHECK_RGB(&p, 2, 1, 0x000000);
    free(p.rgb);
    CHECK(slp_png_rgb(rgb, 0, 2, &b) == SL_EINVAL);
    slp_dynbuf_free(&b);
    /* a buffer too small for the file: its own error */
    slp_dynbuf_init(&b, 16);
    CHECK(slp_png_rgb(rgb, 3, 2, &b) == SL_ETOOLARGE);
    slp_dynbuf_free(&b);
}

/* ---- binary overlays ----------------------------------------------------------------------- */

/* One 4 x 4 binary image, labels, ignore_index 255: row-major pixels
 *   pred   1 1 0 0     target 1 0 0 0
 *          0 0 0 0            1 0 0 0
 *          0 0 0 0            0 0 255 0
 *          0 0 0 1            0 0 0 1
 * (0,0) TP, (1,0) FP, (0,1) FN, (2,2) ignored, (3,3) TP, the rest TN. Upscaled by
 * floor(128 / 4) = 32 to 128 x 128: image pixel (x, y) covers thumbnail [32x, 32x + 32). */
static const char bin_answer[] =
    "{\"mode\": \"binary\", \"images\": 1, \"classes\": 1, \"shape\": [4, 4],"
    " \"losses\": {}, \"metrics\": {\"dice\": {\"mean\": 0.6667, \"global\": 0.6667,"
    " \"per_image\": [0.6666666666666666], \"undefined\": 0}},"
    " \"conventions\": {\"prediction_type\": \"labels\", \"threshold\": 0.5, \"empty\": \"one\","
    " \"spacing\": [1, 1], \"ignore_index\": 255, \"include_background\": true}}";

static void test_binary_colours(void)
{
    static const unsigned char pred[16] = {1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const unsigned char tgt[16] = {1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 255, 0, 0, 0, 0, 1};
    struct slp_report_image im = {0, NULL, u8(pred, 2, 4, 4, 0), u8(tgt, 2, 4, 4, 0)};
    int rc;
    char *html = render(bin_answer, NULL, NULL, &im, 1, &rc);
    CHECK(rc == 0 && html);
    if (!html) {
        return;
    }
    const char *tag = nth_tag(html, "<img class=\"overlay\"", 0);
    char v[64];
    CHECK(tag && attr(tag, "width", v, sizeof v) && strcmp(v, "128") == 0);
    CHECK(tag && attr(tag, "height", v, sizeof v) && strcmp(v, "128") == 0);
    CHECK(tag && attr(tag, "data-scale", v, sizeof v) && strcmp(v, "32") == 0);
    CHECK(tag && !attr(tag, "data-slice", v, sizeof v) && !attr(tag, "data-channel", v, sizeof v));
    struct pix p;
    CHECK(overlay(html, 0, &p) == 0);
    CHECK(p.w == 128 && p.h == 128);
    CHECK_RGB(&p, 0, 0, TP);
    CHECK_RGB(&p, 31, 31, TP);
    CHECK_RGB(&p, 32, 0, FP);
    CHECK_RGB(&p, 63, 31, FP);
    CHECK_RGB(&p, 64, 0, TN);
    CHECK_RGB(&p, 5, 40, FN);
    CHECK_RGB(&p, 80, 80, IGN);
    CHECK_RGB(&p, 100, 100, TP);
    CHECK_RGB(&p, 127, 127, TP);
    CHECK_RGB(&p, 100, 10, TN);
    free(p.rgb);
    /* the legend names the ignored colour; the figure has index, id and rank */
    CHECK_HAS(html, "ignored (ignore_index)");
    CHECK_HAS(html, "<figure class=\"thumb\" data-index=\"0\" data-id=\"0\" data-rank=\"1\">");
    free(html);
}

/* The same mask as logits and as uint8 probabilities: threshold 0.5 is logit 0 and 128/255. */
static void test_binary_rules(void)
{
    static const float logits[4] = {0.0f, -0.01f, 3.0f, -3.0f};
    static const unsigned char probs[4] = {128, 127, 255, 0};
    static const unsigned char tgt[4] = {1, 1, 0, 0};
    /* 2 x 2 upscaled by 64: (0,0) x >= 0 TP, (1,0) below FN, (0,1) FP, (1,1) TN */
    char aj[512];
    for (int k = 0; k < 2; k++) {
        snprintf(aj, sizeof aj,
                 "{\"mode\": \"binary\", \"images\": 1, \"classes\": 1, \"shape\": [2, 2],"
                 " \"losses\": {}, \"metrics\": {}, \"conventions\": {\"prediction_type\":"
                 " \"%s\", \"threshold\": 0.5, \"include_background\": true}}",
                 k == 0 ? "logits" : "probabilities");
        struct sl_tensor pt = {k == 0 ? (const void *)logits : (const void *)probs,
                               k == 0 ? SL_DT_F32 : SL_DT_U8,
                               2,
                               {2, 2}};
        struct slp_report_image im = {0, NULL, pt, u8(tgt, 2, 2, 2, 0)};
        int rc;
        char *html = render(aj, NULL, NULL, &im, 1, &rc);
        struct pix p;
        CHECK(html && overlay(html, 0, &p) == 0);
        CHECK(p.w == 128 && p.h == 128);
        CHECK_RGB(&p, 10, 10, TP);
        CHECK_RGB(&p, 70, 10, FN);
        CHECK_RGB(&p, 10, 70, FP);
        CHECK_RGB(&p, 70, 70, TN);
        free(p.rgb);
        free(html);
    }
}

/* ---- the downsampling rule ----------------------------------------------------------------- */

/* 600 x 600: f = ceil(600 / 256) = 3, a 200 x 200 thumbnail, data-scale "1/3". Blocks along the
 * first row (block x covers image columns 3x..3x+2, rows 0..2):
 *   block 0: one TP at (0,0) and one FN at (2,2)           -> FN
 *   block 1: one TP at (3,0) and one FP at (5,1)           -> FP
 *   block 2: one TP at (7,2)                               -> TP
 *   block 3: nothing                                       -> TN
 *   block 4: FP at (12,0) and FN at (14,2)                 -> FN
 * and the last block (199, 199): a FP at (599, 599)        -> FP. */
static void test_downsample(void)
{
    const int n = 600;
    unsigned char *pred = calloc((size_t)n * n, 1), *tgt = calloc((size_t)n * n, 1);
    CHECK(pred && tgt);
    if (!pred || !tgt) {
        free(pred);
        free(tgt);
        return;
    }
#define PX(x, y) ((size_t)(y) * (size_t)n + (size_t)(x))
    pred[PX(0, 0)] = tgt[PX(0, 0)] = 1;
    tgt[PX(2, 2)] = 1;
    pred[PX(3, 0)] = tgt[PX(3, 0)] = 1;
    pred[PX(5, 1)] = 1;
    pred[PX(7, 2)] = tgt[PX(7, 2)] = 1;
    pred[PX(12, 0)] = 1;
    tgt[PX(14, 2)] = 1;
    pred[PX(599, 599)] = 1;
#undef PX
    const char *aj = "{\"mode\": \"binary\", \"images\": 1, \"classes\": 1, \"shape\": [600, 600],"
                     " \"losses\": {}, \"metrics\": {}, \"conventions\": {\"prediction_type\":"
                     " \"labels\", \"threshold\": 0.5}}";
    struct slp_report_image im = {0, NULL, u8(pred, 2, n, n, 0), u8(tgt, 2, n, n, 0)};
    int rc;
    char *html = render(aj, NULL, NULL, &im, 1, &rc);
    const char *tag = html ? nth_tag(html, "<img class=\"overlay\"", 0) : NULL;
    char v[64];
    CHECK(tag && attr(tag, "data-scale", v, sizeof v) && strcmp(v, "1/3") == 0);
    CHECK(tag && attr(tag, "width", v, sizeof v) && strcmp(v, "200") == 0);
    struct pix p;
    CHECK(html && overlay(html, 0, &p) == 0);
    CHECK(p.w == 200 && p.h == 200);
    CHECK_RGB(&p, 0, 0, FN);
    CHECK_RGB(&p, 1, 0, FP);
    CHECK_RGB(&p, 2, 0, TP);
    CHECK_RGB(&p, 3, 0, TN);
    CHECK_RGB(&p, 4, 0, FN);
    CHECK_RGB(&p, 0, 1, TN);
    CHECK_RGB(&p, 199, 199, FP);
    free(p.rgb);
    free(html);
    free(pred);
    free(tgt);
}

/* 300 x 100 (not square): f = ceil(300 / 256) = 2, so 150 x 50; 100 x 40 is upscaled by
 * floor(128 / 100) = 1 (no scaling); 40 x 10 by floor(128 / 40) = 3 to 120 x 30. */
static void test_scale_sizes(void)
{
    static const struct {
        int h, w;
        const char *tw, *th, *scale;
    } cases[] = {
        {100, 300, "150", "50", "1/2"}, {40, 100, "100", "40", "1"}, {10, 40, "120", "30", "3"}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const int h = cases[k].h, w = cases[k].w;
        unsigned char *z = calloc((size_t)h * w, 1);
        char aj[400];
        snprintf(aj, sizeof aj,
                 "{\"mode\": \"binary\", \"images\": 1, \"classes\": 1, \"shape\": [%d, %d],"
                 " \"losses\": {}, \"metrics\": {}, \"conventions\": {\"prediction_type\":"
                 " \"labels\"}}",
                 h, w);
        struct slp_report_image im = {0, NULL, u8(z, 2, h, w, 0), u8(z, 2, h, w, 0)};
        int rc;
        char *html = render(aj, NULL, NULL, &im, 1, &rc);
        const char *tag = html ? nth_tag(html, "<img class=\"overlay\"", 0) : NULL;
        char v[32];
        CHECK(tag && attr(tag, "width", v, sizeof v) && strcmp(v, cases[k].tw) == 0);
        CHECK(tag && attr(tag, "height", v, sizeof v) && strcmp(v, cases[k].th) == 0);
        CHECK(tag && attr(tag, "data-scale", v, sizeof v) && strcmp(v, cases[k].scale) == 0);
        struct pix p;
        CHECK(html && overlay(html, 0, &p) == 0);
        CHECK(p.w == atoi(cases[k].tw) && p.h == atoi(cases[k].th));
        CHECK_RGB(&p, 0, 0, TN);
        free(p.rgb);
        free(html);
        free(z);
    }
}

/* ---- multiclass ---------------------------------------------------------------------------- */

/* 3 classes, one 2 x 2 image, logits [3, 2, 2] (argmax per pixel):
 *   (0,0) pred 1, target 1: right, class 1 #332288 everywhere in its 64 x 64 block
 *   (1,0) pred 2, target 0: wrong, class 2 #88CCEE, black where (x + y) % 4 == 0
 *   (0,1) pred 0, target 2: wrong, class 0 white, hatched black
 *   (1,1) pred 0, target 0: right, white */
static void test_multiclass_hatch(void)
{
    static const float logits[12] = {
        0, 0, 1, 5, /* class 0 */
        5, 0, 0, 0, /* class 1 */
        0, 5, 0, 0, /* class 2 */
    };
    static const unsigned char tgt[4] = {1, 0, 2, 0};
    const char *aj = "{\"mode\": \"multiclass\", \"images\": 1, \"classes\": 3, \"shape\": [2, 2],"
                     " \"losses\": {}, \"metrics\": {\"dice\": {\"mean\": 0.5, \"global\": [0.5,"
                     " 1, 0], \"per_class\": [0.5, 1, 0], \"per_image\": [[0.5, 1, 0]],"
                     " \"undefined\": 0}}, \"conventions\": {\"prediction_type\": \"logits\"}}";
    struct sl_tensor pt = {logits, SL_DT_F32, 3, {3, 2, 2}};
    struct slp_report_image im = {0, NULL, pt, u8(tgt, 2, 2, 2, 0)};
    int rc;
    char *html = render(aj, NULL, NULL, &im, 1, &rc);
    struct pix p;
    CHECK(html && overlay(html, 0, &p) == 0);
    CHECK(p.w == 128 && p.h == 128);
    CHECK_RGB(&p, 0, 0, 0x332288); /* right pixels are never hatched */
    CHECK_RGB(&p, 63, 1, 0x332288);
    CHECK_RGB(&p, 64, 0, BLACK); /* 64 + 0 = 64, a multiple of 4 */
    CHECK_RGB(&p, 65, 0, 0x88CCEE);
    CHECK_RGB(&p, 66, 2, BLACK); /* 68 */
    CHECK_RGB(&p, 67, 2, 0x88CCEE);
    CHECK_RGB(&p, 0, 64, BLACK);
    CHECK_RGB(&p, 1, 64, TN);  /* class 0 is white */
    CHECK_RGB(&p, 64, 64, TN); /* right background: no hatch though 128 % 4 == 0 */
    free(p.rgb);
    /* the aggregate rows of the lists, and the class legend */
    CHECK_HAS(html, "<tr data-key=\"metrics.dice.global[2]\">");
    CHECK_HAS(html, "<tr data-key=\"metrics.dice.per_class[1]\">");
    CHECK_HAS(html, "background:#88CCEE\"></i>class 2</span>");
    /* the image's value: the mean over its classes (0.5 + 1 + 0) / 3 = 0.5 */
    CHECK_HAS(html, "<circle data-index=\"0\" data-value=\"0.5\"");
    free(html);
}

/* ---- 3-D ----------------------------------------------------------------------------------- */

/* [5, 2, 2] binary: errors per slice 1, 0, 0, 3, 3 -> the middle slice 5 / 2 = 2 and the worst
 * slice 3 (3 errors, the smaller z of the two). */
static void test_3d_slices(void)
{
    unsigned char pred[20] = {0}, tgt[20] = {0};
    pred[0 * 4 + 0] = 1;                                     /* slice 0: one FP */
    pred[3 * 4 + 0] = pred[3 * 4 + 1] = pred[3 * 4 + 2] = 1; /* slice 3: three FP */
    tgt[4 * 4 + 0] = tgt[4 * 4 + 1] = tgt[4 * 4 + 3] = 1;    /* slice 4: three FN */
    pred[2 * 4 + 3] = tgt[2 * 4 + 3] = 1;                    /* slice 2: one TP */
    const char *aj = "{\"mode\": \"binary\", \"images\": 1, \"classes\": 1, \"shape\": [5, 2, 2],"
                     " \"losses\": {}, \"metrics\": {}, \"conventions\": {\"prediction_type\":"
                     " \"labels\"}}";
    struct slp_report_image im = {0, NULL, u8(pred, 3, 5, 2, 2), u8(tgt, 3, 5, 2, 2)};
    int rc;
    char *html = render(aj, NULL, NULL, &im, 1, &rc);
    const char *t0 = html ? nth_tag(html, "<img class=\"overlay\"", 0) : NULL;
    const char *t1 = html ? nth_tag(html, "<img class=\"overlay\"", 1) : NULL;
    char v[16];
    CHECK(t0 && attr(t0, "data-slice", v, sizeof v) && strcmp(v, "2") == 0);
    CHECK(t1 && attr(t1, "data-slice", v, sizeof v) && strcmp(v, "3") == 0);
    CHECK(html && !nth_tag(html, "<img class=\"overlay\"", 2));
    struct pix p;
    CHECK(html && overlay(html, 0, &p) == 0);
    CHECK_RGB(&p, 127, 127, TP); /* slice 2: (1,1) TP */
    CHECK_RGB(&p, 0, 0, TN);
    free(p.rgb);
    CHECK(html && overlay(html, 1, &p) == 0);
    CHECK_RGB(&p, 0, 0, FP); /* slice 3 */
    CHECK_RGB(&p, 127, 127, TN);
    free(p.rgb);
    free(html);
    /* the worst slice is the middle one: one img */
    memset(pred, 0, sizeof pred);
    memset(tgt, 0, sizeof tgt);
    pred[2 * 4 + 1] = 1;
    html = render(aj, NULL, NULL, &im, 1, &rc);
    t0 = html ? nth_tag(html, "<img class=\"overlay\"", 0) : NULL;
    CHECK(t0 && attr(t0, "data-slice", v, sizeof v) && strcmp(v, "2") == 0);
    CHECK(html && !nth_tag(html, "<img class=\"overlay\"", 1));
    free(html);
}

/* Multilabel, 2 channels of a 2 x 2 image: one img per channel with data-channel. */
static void test_multilabel_channels(void)
{
    static const unsigned char pred[8] = {1, 0, 0, 0, 0, 0, 0, 1};
    static const unsigned char tgt[8] = {1, 1, 0, 0, 0, 0, 1, 0};
    const char *aj = "{\"mode\": \"multilabel\", \"images\": 1, \"classes\": 2, \"shape\": [2,"
                     " 2], \"losses\": {}, \"metrics\": {}, \"conventions\": {\"prediction_type\":"
                     " \"labels\"}}";
    struct slp_report_image im = {0, NULL, u8(pred, 3, 2, 2, 2), u8(tgt, 3, 2, 2, 2)};
    int rc;
    char *html = render(aj, NULL, NULL, &im, 1, &rc);
    char v[16];
    for (int c = 0; c < 2; c++) {
        const char *t = html ? nth_tag(html, "<img class=\"overlay\"", c) : NULL;
        CHECK(t && attr(t, "data-channel", v, sizeof v) && v[0] == '0' + c && !v[1]);
    }
    struct pix p;
    CHECK(html && overlay(html, 0, &p) == 0);
    CHECK_RGB(&p, 0, 0, TP);
    CHECK_RGB(&p, 64, 0, FN);
    free(p.rgb);
    CHECK(html && overlay(html, 1, &p) == 0);
    CHECK_RGB(&p, 0, 64, FN);
    CHECK_RGB(&p, 64, 64, FP);
    free(p.rgb);
    free(html);
}

/* ---- which images, which values ------------------------------------------------------------ */

/* Runs slp_report_worst on answer text aj, spec text sj (may be NULL) with k; the indices into
 * idx, their count returned. */
static int worst(const char *aj, const char *sj, int k, int64_t *idx)
{
    json_t *a = json_loads(aj, 0, NULL);
    json_t *s = sj ? json_loads(sj, 0, NULL) : NULL;
    CHECK(a != NULL);
    int n = slp_report_worst(a, s, k, idx);
    json_decref(a);
    json_decref(s);
    return n;
}

static void test_worst_order(void)
{
    int64_t idx[SLP_REPORT_WORST_MAX];
    /* a distance under an "as" key: higher is worse; null last -> 2 (7), 0 (3), 3 (1), 1 */
    const char *hd = "{\"losses\": {}, \"metrics\": {\"hd\": {\"per_image\": [3, null, 7, 1]}}}";
    const char *hd_spec = "{\"metrics\": [\"dice\", {\"name\": \"hausdorff\", \"as\": \"hd\"}]}";
    CHECK_INT(worst(hd, hd_spec, 8, idx), 4);
    CHECK(idx[0] == 2 && idx[1] == 0 && idx[2] == 3 && idx[3] == 1);
    /* without the spec "hd" is taken for a metric name: not a distance, so lower is worse */
    CHECK_INT(worst(hd, NULL, 2, idx), 2);
    CHECK(idx[0] == 3 && idx[1] == 0);
    /* a ratio: lower is worse, equal values by index: 0.2 (2), 0.2 (4), 0.5 (0), 0.9 (3) */
    const char *dice =
        "{\"metrics\": {\"dice\": {\"per_image\": [0.5, null, 0.2, 0.9, 0.2]}, \"iou\":"
        " {\"per_image\": [0, 0, 0, 0, 0]}}}";
    CHECK_INT(worst(dice, NULL, 3, idx), 3);
    CHECK(idx[0] == 2 && idx[1] == 4 && idx[2] == 0);
    CHECK_INT(worst(dice, NULL, 0, idx), 0);
    /* confusion counts first: the first metric with values decides */
    const char *conf = "{\"metrics\": {\"confusion\": {\"global\": {\"tp\": 1, \"fp\": 0, \"fn\":"
                       " 0, \"tn\": 0}, \"per_image\": [{\"tp\": 1, \"fp\": 0, \"fn\": 0, \"tn\":"
                       " 0}, {\"tp\": 0, \"fp\": 0, \"fn\": 0, \"tn\": 0}]}, \"recall\":"
                       " {\"per_image\": [0.25, 0.75]}}}";
    CHECK_INT(worst(conf, NULL, 8, idx), 2);
    CHECK(idx[0] == 0 && idx[1] == 1);
    /* an error rate (miss_rate, MONAI's fnr): higher is worse, under its row name or a MONAI
     * alias, any case: 0.75 (1), 0.5 (2), 0.25 (0) */
    const char *fnr = "{\"metrics\": {\"miss rate\": {\"per_image\": [0.25, 0.75, 0.5]}}}";
    CHECK_INT(worst(fnr, NULL, 8, idx), 3);
    CHECK(idx[0] == 1 && idx[1] == 2 && idx[2] == 0);
    const char *fpr = "{\"metrics\": {\"f\": {\"per_image\": [0.25, 0.75, 0.5]}}}";
    const char *fpr_spec = "{\"metrics\": [{\"name\": \"fpr\", \"as\": \"f\"}]}";
    CHECK_INT(worst(fpr, fpr_spec, 1, idx), 1);
    CHECK(idx[0] == 1);
    /* no metric: the first loss, higher is worse */
    const char *loss = "{\"losses\": {\"ce\": {\"value\": 0.2, \"per_image\": [0.1, 0.3]}},"
                       " \"metrics\": {}}";
    CHECK_INT(worst(loss, NULL, 8, idx), 2);
    CHECK(idx[0] == 1 && idx[1] == 0);
    /* no per-image values at all */
    CHECK_INT(worst("{\"losses\": {}, \"metrics\": {\"dice\": {\"mean\": 1}}}", NULL, 8, idx), 0);
    /* multiclass: the mean over the image's classes, class 0 only with include_background
     *   image 0 [0, 0.9, 0.9]: all 0.6, without class 0 0.9
     *   image 1 [1, 0.5, 0.5]: all 0.6667, without class 0 0.5 */
#define MC_ANSWER(bg)                                                                              \
    "{\"metrics\": {\"dice\": {\"per_image\": [[0, 0.9, 0.9], [1, 0.5, 0.5]]}},"                   \
    " \"conventions\": {\"include_background\": " bg "}}"
    const char *aj = MC_ANSWER("true");
    CHECK_INT(worst(aj, NULL, 1, idx), 1);
    CHECK_INT(idx[0], 0);
    aj = MC_ANSWER("false");
    CHECK_INT(worst(aj, NULL, 1, idx), 1);
    CHECK_INT(idx[0], 1);
    /* k is capped at SLP_REPORT_WORST_MAX */
    struct slp_dynbuf b;
    slp_dynbuf_init(&b, 1 << 20);
    slp_dynbuf_adds(&b, "{\"metrics\": {\"dice\": {\"per_image\": [");
    for (int i = 0; i < 100; i++) {
        slp_dynbuf_addf(&b, "%s%d", i ? "," : "", i);
    }
    slp_dynbuf_adds(&b, "]}}}");
    CHECK_INT(worst(b.data, NULL, 1000, idx), SLP_REPORT_WORST_MAX);
    CHECK(idx[0] == 0 && idx[63] == 63);
    slp_dynbuf_free(&b);
}

/* Ids are text: escaped in data-id, the caption and the plot's titles; null values are shown as
 * an en dash and written "null", never NaN. */
static void test_ids_and_nulls(void)
{
    static const unsigned char z[4] = {0};
    const char *aj = "{\"mode\": \"binary\", \"images\": 2, \"classes\": 1, \"shape\": [2, 2],"
                     " \"losses\": {}, \"metrics\": {\"dice\": {\"mean\": null, \"global\": null,"
                     " \"per_image\": [null, 0.25], \"undefined\": 1}},"
                     " \"conventions\": {\"prediction_type\": \"labels\"}}";
    const char *const ids[] = {"<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>"};
    struct slp_report_image im[2] = {{1, NULL, u8(z, 2, 2, 2, 0), u8(z, 2, 2, 2, 0)},
                                     {0, "own\"id", u8(z, 2, 2, 2, 0), u8(z, 2, 2, 2, 0)}};
    int rc;
    char *html = render(aj, NULL, ids, im, 2, &rc);
    CHECK(html != NULL);
    if (!html) {
        return;
    }
    CHECK(strstr(html, "<script") == NULL && strstr(html, "<img src") == NULL);
    CHECK(strstr(html, "NaN") == NULL && strstr(html, "nan") == NULL);
    CHECK_HAS(html, "data-id=\"&quot;&gt;&lt;img src=x onerror=alert(1)&gt;\" data-rank=\"1\"");
    CHECK_HAS(html, "<strong>#1 &quot;&gt;&lt;img src=x onerror=alert(1)&gt;</strong>");
    CHECK_HAS(html, "data-id=\"own&quot;id\" data-rank=\"2\"");
    CHECK_HAS(html, "<title>&quot;&gt;&lt;img src=x onerror=alert(1)&gt;: 0.25</title>");
    /* the null mean: "null" for scripts, an en dash for people */
    CHECK_HAS(html, "<tr data-key=\"metrics.dice.mean\"><th>metrics.dice.mean</th><td "
                    "class=\"num value\" data-value=\"null\">\xE2\x80\x93</td></tr>");
    CHECK_HAS(html, "<tr data-key=\"metrics.dice.undefined\">");
    /* one circle: image 0's value is null */
    CHECK_HAS(html, "<circle data-index=\"1\" data-value=\"0.25\"");
    CHECK(strstr(html, "<circle data-index=\"0\"") == NULL);
    free(html);
}

/* An image whose arrays do not fit the answer: SL_ESHAPE. */
static void test_shape_mismatch(void)
{
    static const unsigned char z[9] = {0};
    struct slp_report_image im = {0, NULL, u8(z, 2, 3, 3, 0), u8(z, 2, 3, 3, 0)};
    int rc;
    char *html = render(bin_answer, NULL, NULL, &im, 1, &rc);
    CHECK(html == NULL && rc == SL_ESHAPE);
    im.index = 5; /* past the answer's images */
    html = render(bin_answer, NULL, NULL, &im, 1, &rc);
    CHECK(html == NULL && rc == SL_ESHAPE);
}

/* ---- through the handler: report_worst and the HTML answer ----------------------------------- */

/* Four 2 x 2 binary images, labels; dice per image by hand (2TP / (2TP + FP + FN)):
 *   0: pred 1100 target 1000 -> 2/3     1: pred 0000 target 1000 -> 0
 *   2: pred 1111 target 1111 -> 1       3: pred 1000 target 1100 -> 2/3
 * so the worst by dice are 1, then 0 and 3 (equal: by index), then 2. */
#define HB_ARRAYS                                                                                  \
    "\"prediction\": {\"format\": \"list\", \"shape\": [4, 2, 2], \"data\": [1,1,0,0, 0,0,0,0, "   \
    "1,1,1,1, 1,0,0,0]}, \"target\": {\"format\": \"list\", \"shape\": [4, 2, 2], \"data\": "      \
    "[1,0,0,0, 1,0,0,0, 1,1,1,1, 1,1,0,0]}, \"prediction_type\": \"labels\""

static void run_html(const char *body, struct slp_response *r)
{
    slp_score_request_as(body, strlen(body), NULL, NULL, SLP_ANSWER_HTML, r);
}

static void test_handler_html(void)
{
    struct slp_response r;
    run_html("{" HB_ARRAYS ", \"metrics\": [\"dice\"], \"per_image\": false, \"report_worst\": 3}",
             &r);
    CHECK_INT(r.status, 200);
    CHECK(r.content_type && strcmp(r.content_type, "text/html; charset=utf-8") == 0);
    const char *h = r.body ? r.body : "";
    /* per_image false is overridden for the page: every image has its dot */
    CHECK_HAS(h, "<circle data-index=\"1\" data-value=\"0\"");
    CHECK_HAS(h, "<circle data-index=\"2\" data-value=\"1\"");
    /* dice mean (2/3 + 0 + 1 + 2/3) / 4 = 7/12 */
    CHECK_HAS(h, "<tr data-key=\"metrics.dice.mean\">");
    const char *f1 = nth_tag(h, "<figure class=\"thumb\"", 0);
    const char *f2 = nth_tag(h, "<figure class=\"thumb\"", 1);
    const char *f3 = nth_tag(h, "<figure class=\"thumb\"", 2);
    char v[16];
    CHECK(f1 && attr(f1, "data-index", v, sizeof v) && strcmp(v, "1") == 0);
    CHECK(f2 && attr(f2, "data-index", v, sizeof v) && strcmp(v, "0") == 0);
    CHECK(f3 && attr(f3, "data-index", v, sizeof v) && strcmp(v, "3") == 0);
    CHECK(!nth_tag(h, "<figure class=\"thumb\"", 3));
    /* image 1 (pred empty, target pixel (0,0)): FN at the top left of its 128 x 128 */
    struct pix p;
    CHECK(overlay(h, 0, &p) == 0);
    CHECK_RGB(&p, 0, 0, FN);
    CHECK_RGB(&p, 127, 127, TN);
    free(p.rgb);
    slp_response_free(&r);
    /* report_worst 0: no figure; the default is 8 (all 4 here) */
    run_html("{" HB_ARRAYS ", \"report_worst\": 0}", &r);
    CHECK(r.status == 200 && r.body && !strstr(r.body, "<figure"));
    slp_response_free(&r);
    run_html("{" HB_ARRAYS "}", &r);
    CHECK(r.status == 200 && r.body && nth_tag(r.body, "<figure class=\"thumb\"", 3) &&
          !nth_tag(r.body, "<figure class=\"thumb\"", 4));
    slp_response_free(&r);
}

static void test_report_worst_key(void)
{
    static const char *const bad[] = {"65", "-1", "1.5", "\"8\"", "null", "true"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char body[512];
        snprintf(body, sizeof body, "{" HB_ARRAYS ", \"report_worst\": %s}", bad[i]);
        for (int form = 0; form < 2; form++) {
            struct slp_response r;
            slp_score_request_as(body, strlen(body), NULL, NULL, (enum slp_answer_form)form, &r);
            CHECK_INT(r.status, 422);
            CHECK(r.content_type && strcmp(r.content_type, "application/problem+json") == 0);
            CHECK_HAS(r.body, "report_worst: must be an integer from 0 to 64");
            slp_response_free(&r);
        }
    }
    /* ignored by a JSON answer, which has no report_worst key */
    struct slp_response r;
    const char *ok = "{" HB_ARRAYS ", \"report_worst\": 64}";
    slp_score_request(ok, strlen(ok), NULL, NULL, &r);
    CHECK_INT(r.status, 200);
    CHECK(r.body && !strstr(r.body, "report_worst") && !strstr(r.body, "<"));
    slp_response_free(&r);
    /* a challenge's spec refuses it, as it refuses per_image */
    struct slp_limits lim;
    slp_limits_default(&lim);
    json_t *spec = json_loads("{\"metrics\": [\"dice\"], \"report_worst\": 4}", 0, NULL);
    struct slp_score_req *req = NULL;
    char msg[256] = "";
    CHECK_INT(slp__parse_spec(spec, &lim, false, &req, msg, sizeof msg), SL_EINVAL);
    CHECK_PREFIX(msg, "report_worst: not a key of a challenge's spec");
    CHECK(req == NULL);
    json_decref(spec);
}

/* Which Accept values ask seglossd for the report (server/headers.c): text/html above JSON, where
 * the wildcards stand for JSON when it is not listed. */
static void test_accept_html(void)
{
    CHECK(!srv_accept_prefers_html(NULL));
    CHECK(!srv_accept_prefers_html(""));
    CHECK(!srv_accept_prefers_html("*/*"));
    CHECK(!srv_accept_prefers_html("application/json"));
    CHECK(srv_accept_prefers_html("text/html"));
    CHECK(srv_accept_prefers_html("Text/HTML; charset=utf-8"));
    /* a browser's navigation (Firefox, Chromium) */
    CHECK(srv_accept_prefers_html(
        "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"));
    CHECK(
        srv_accept_prefers_html("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"));
    /* ties and preferences for JSON keep JSON */
    CHECK(!srv_accept_prefers_html("application/json, text/html"));
    CHECK(!srv_accept_prefers_html("text/html, */*"));
    CHECK(!srv_accept_prefers_html("text/html;q=0.5, application/json"));
    CHECK(!srv_accept_prefers_html("text/html;q=0.5, application/*"));
    CHECK(!srv_accept_prefers_html("text/html;q=0"));
    CHECK(srv_accept_prefers_html("application/json;q=0.4, text/html;q=0.6"));
    CHECK(srv_accept_prefers_html("text/html, application/*;q=0.1"));
}

static const struct check_test tests[] = {
    CHECK_TEST(test_png_roundtrip),    CHECK_TEST(test_binary_colours),
    CHECK_TEST(test_binary_rules),     CHECK_TEST(test_downsample),
    CHECK_TEST(test_scale_sizes),      CHECK_TEST(test_multiclass_hatch),
    CHECK_TEST(test_3d_slices),        CHECK_TEST(test_multilabel_channels),
    CHECK_TEST(test_worst_order),      CHECK_TEST(test_ids_and_nulls),
    CHECK_TEST(test_shape_mismatch),   CHECK_TEST(test_handler_html),
    CHECK_TEST(test_report_worst_key), CHECK_TEST(test_accept_html),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_report", tests);
}
