/* report.c - the visual report of one scoring (proto/report.h): the aggregate table, a strip
 * plot of every per-image value, and the worst images drawn as PNG overlays, following the
 * structure docs/html.md describes (and the tests check). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "html.h"
#include "png.h"
#include "report.h"

/* Thumbnails: a long side over THUMB_MAX pixels is downsampled by ceil(side / THUMB_MAX); a
 * long side of at most THUMB_MIN / 2 is upscaled by floor(THUMB_MIN / side). */
#define THUMB_MAX 256
#define THUMB_MIN 128

/* Overlay categories of a binary (or multilabel channel) pixel, in the priority order of a
 * downsampled block: the highest present wins, so errors never vanish. */
enum cat { CAT_IGNORED, CAT_TN, CAT_TP, CAT_FP, CAT_FN };

static const unsigned char cat_rgb[5][3] = {
    {0xBB, 0xBB, 0xBB}, /* ignored */
    {0xFF, 0xFF, 0xFF}, /* TN */
    {0xDD, 0xAA, 0x33}, /* TP: SLP_HTML_TP */
    {0xBB, 0x55, 0x66}, /* FP: SLP_HTML_FP */
    {0x00, 0x44, 0x88}, /* FN: SLP_HTML_FN */
};

/* Paul Tol's muted scheme, the colours of classes 1.. in order (class 0 is white). */
static const unsigned char muted_rgb[9][3] = {
    {0x33, 0x22, 0x88}, {0x88, 0xCC, 0xEE}, {0x44, 0xAA, 0x99},
    {0x11, 0x77, 0x33}, {0x99, 0x99, 0x33}, {0xDD, 0xCC, 0x77},
    {0xCC, 0x66, 0x77}, {0x88, 0x22, 0x55}, {0xAA, 0x44, 0x99},
};

/* The colour of multiclass class c. */
static const unsigned char *class_rgb(int64_t c)
{
    static const unsigned char white[3] = {0xFF, 0xFF, 0xFF};
    return c <= 0 ? white : muted_rgb[(c - 1) % 9];
}

static const char report_css[] =
    "#aggregate tbody th{background:none;font-weight:normal;font-family:monospace}"
    ".thumbs{display:flex;flex-wrap:wrap;gap:1rem}"
    "figure.thumb{margin:0;padding:.4rem;border:1px solid #ddd;max-width:100%}"
    "figure.thumb img{image-rendering:pixelated;border:1px solid #999;margin:0 .3rem .3rem 0;"
    "max-width:100%;height:auto}"
    "figcaption{font-size:.85rem;font-variant-numeric:tabular-nums}"
    ".legend span{display:inline-block;margin-right:.8rem}"
    ".sw{display:inline-block;width:.9rem;height:.9rem;border:1px solid #999;"
    "vertical-align:middle;margin-right:.25rem}"
    "svg.dist{display:block;margin:.2rem 0 .8rem}"
    "svg.dist circle{fill:#004488;fill-opacity:.55}";

/* ---- the answer's values -------------------------------------------------------------------- */

/* A JSON number as a double, NaN for null or anything else. */
static double num_of(const json_t *j)
{
    return json_is_number(j) ? json_number_value(j) : NAN;
}

/* Whether metric entry m (borrowed) holds confusion counts rather than values. */
static bool is_counts(const json_t *m)
{
    const json_t *g = json_object_get(m, "global");
    return json_is_object(g) || json_is_object(json_array_get(g, 0));
}

/* Whether the answer counts class 0 in means over classes (its include_background). */
static bool counts_background(const json_t *answer)
{
    const json_t *bg =
        json_object_get(json_object_get(answer, "conventions"), "include_background");
    return !json_is_false(bg);
}

/* One image's value of a per-image entry e: a number, or (multiclass, multilabel) the mean of
 * the image's defined values over the classes the answer counts (class 0 only when it counts
 * the background; a single class always counts), as the metric's mean does. NaN: null. */
static double image_value(const json_t *e, size_t i, bool bg)
{
    const json_t *v = json_array_get(e, i);
    if (!json_is_array(v)) {
        return num_of(v);
    }
    const size_t c = json_array_size(v);
    double sum = 0;
    int n = 0;
    for (size_t k = 0; k < c; k++) {
        double x = num_of(json_array_get(v, k));
        if ((bg || c == 1 || k > 0) && !isnan(x)) {
            sum += x;
            n++;
        }
    }
    return n ? sum / n : NAN;
}

/* The metric name behind response key key of spec's metrics (a bare name, or an object with
 * "name" and perhaps "as"); key itself when spec does not say. Borrowed. */
static const char *metric_name(const json_t *spec, const char *key)
{
    const json_t *list = json_object_get(spec, "metrics");
    size_t i;
    const json_t *m;
    json_array_foreach(list, i, m)
    {
        if (json_is_string(m) && strcmp(json_string_value(m), key) == 0) {
            return key;
        }
        const char *name = json_string_value(json_object_get(m, "name"));
        const char *as = json_string_value(json_object_get(m, "as"));
        if (name && strcmp(as ? as : name, key) == 0) {
            return name;
        }
    }
    return key;
}

/* Whether a lower value of metric name (a row name or alias) is better: its row says so
 * (distances, error rates such as miss_rate); the other ratios are better higher. */
static bool lower_is_better(const char *name)
{
    const struct sl_def *d = sl_find_metric(name);
    return d && (d->flags & SL_DEF_LOWER);
}

/* The entry the worst images are ranked by: the first metric with per-image values (not
 * counts), else the first loss with them. Sets *key, *higher_worse; returns its per_image list
 * (borrowed) or NULL. */
static const json_t *rank_entry(const json_t *answer, const json_t *spec, const char **key,
                                bool *higher_worse)
{
    const char *k;
    const json_t *e;
    json_object_foreach((json_t *)json_object_get(answer, "metrics"), k, e)
    {
        const json_t *pi = json_object_get(e, "per_image");
        if (json_is_array(pi) && !is_counts(e)) {
            *key = k;
            *higher_worse = lower_is_better(metric_name(spec, k));
            return pi;
        }
    }
    json_object_foreach((json_t *)json_object_get(answer, "losses"), k, e)
    {
        const json_t *pi = json_object_get(e, "per_image");
        if (json_is_array(pi)) {
            *key = k;
            *higher_worse = true;
            return pi;
        }
    }
    return NULL;
}

struct ranked {
    double v; /* NaN: null */
    int64_t i;
};

/* qsort order: defined before null, worse before better (v is negated so that lower is
 * worse), then the smaller index. */
static int ranked_cmp(const void *a, const void *b)
{
    const struct ranked *x = a, *y = b;
    bool nx = isnan(x->v), ny = isnan(y->v);
    if (nx != ny) {
        return nx ? 1 : -1;
    }
    if (!nx && x->v != y->v) {
        return x->v < y->v ? -1 : 1;
    }
    return x->i < y->i ? -1 : x->i > y->i;
}

int slp_report_worst(const json_t *answer, const json_t *spec, int k, int64_t *idx)
{
    const char *key = NULL;
    bool higher_worse = false;
    const json_t *pi = rank_entry(answer, spec, &key, &higher_worse);
    if (k > SLP_REPORT_WORST_MAX) {
        k = SLP_REPORT_WORST_MAX;
    }
    const size_t n = json_array_size(pi);
    if (!pi || k <= 0 || n == 0) {
        return 0;
    }
    struct ranked *r = malloc(n * sizeof *r);
    if (!r) {
        return 0;
    }
    const bool bg = counts_background(answer);
    for (size_t i = 0; i < n; i++) {
        double v = image_value(pi, i, bg);
        r[i].v = higher_worse ? -v : v;
        r[i].i = (int64_t)i;
    }
    qsort(r, n, sizeof *r, ranked_cmp);
    int m = (size_t)k < n ? k : (int)n;
    for (int j = 0; j < m; j++) {
        idx[j] = r[j].i;
    }
    free(r);
    return m;
}

/* ---- the aggregate table -------------------------------------------------------------------- */

/* One row: key (data-key, shown) and its value. */
static void agg_row(struct slp_dynbuf *b, const char *key, double v)
{
    slp_dynbuf_adds(b, "<tr data-key=\"");
    slp_html_attr(b, key);
    slp_dynbuf_adds(b, "\"><th>");
    slp_html_text(b, key);
    slp_dynbuf_adds(b, "</th><td class=\"num value\" data-value=\"");
    slp_html_exact(b, v);
    slp_dynbuf_adds(b, "\">");
    slp_html_num(b, v, 4);
    slp_dynbuf_adds(b, "</td></tr>\n");
}

/* The rows of one list field (global or per_class, one per class): key[c]. */
static void agg_list(struct slp_dynbuf *b, const char *prefix, const json_t *list)
{
    char key[300];
    size_t c;
    const json_t *v;
    json_array_foreach(list, c, v)
    {
        snprintf(key, sizeof key, "%s[%zu]", prefix, c);
        agg_row(b, key, num_of(v));
    }
}

/* The rows of confusion counts object o under prefix (prefix.tp, ...). */
static void agg_counts(struct slp_dynbuf *b, const char *prefix, const json_t *o)
{
    static const char *const f[] = {"tp", "fp", "fn", "tn"};
    char key[320];
    for (int k = 0; k < 4; k++) {
        snprintf(key, sizeof key, "%s.%s", prefix, f[k]);
        agg_row(b, key, num_of(json_object_get(o, f[k])));
    }
}

/* The aggregate table: losses.K.value, metrics.K.mean, metrics.K.global (or .global[c]),
 * metrics.K.per_class[c], metrics.K.undefined; counts as metrics.K.global[.c].tp ... */
static void write_aggregate(struct slp_dynbuf *b, const json_t *answer)
{
    char key[300];
    const char *k;
    const json_t *e;
    slp_dynbuf_adds(b, "<h2>Aggregate values</h2>\n<div class=\"scroll\"><table id=\"aggregate\">"
                       "<thead><tr><th>key</th><th class=\"num\">value</th></tr></thead><tbody>\n");
    json_object_foreach((json_t *)json_object_get(answer, "losses"), k, e)
    {
        snprintf(key, sizeof key, "losses.%.200s.value", k);
        agg_row(b, key, num_of(json_object_get(e, "value")));
    }
    json_object_foreach((json_t *)json_object_get(answer, "metrics"), k, e)
    {
        const json_t *g = json_object_get(e, "global");
        if (is_counts(e)) {
            if (json_is_object(g)) {
                snprintf(key, sizeof key, "metrics.%.200s.global", k);
                agg_counts(b, key, g);
            } else {
                size_t c;
                const json_t *o;
                json_array_foreach(g, c, o)
                {
                    snprintf(key, sizeof key, "metrics.%.200s.global[%zu]", k, c);
                    agg_counts(b, key, o);
                }
            }
            continue;
        }
        snprintf(key, sizeof key, "metrics.%.200s.mean", k);
        agg_row(b, key, num_of(json_object_get(e, "mean")));
        snprintf(key, sizeof key, "metrics.%.200s.global", k);
        if (json_is_array(g)) {
            agg_list(b, key, g);
        } else if (g) {
            agg_row(b, key, num_of(g));
        }
        snprintf(key, sizeof key, "metrics.%.200s.per_class", k);
        agg_list(b, key, json_object_get(e, "per_class"));
        snprintf(key, sizeof key, "metrics.%.200s.undefined", k);
        agg_row(b, key, num_of(json_object_get(e, "undefined")));
    }
    slp_dynbuf_adds(b, "</tbody></table></div>\n");
}

/* ---- distribution plots --------------------------------------------------------------------- */

/* The name an image is shown by: its id, or its index. Writes into buf (n bytes). */
static const char *image_label(const char *const *ids, int64_t i, const char *id, char *buf,
                               size_t n)
{
    if (id) {
        return id;
    }
    if (ids && ids[i]) {
        return ids[i];
    }
    snprintf(buf, n, "%lld", (long long)i);
    return buf;
}

/* One strip plot of per-image list pi (key "losses.K" or "metrics.K"): a circle per image with
 * a defined value, x from the smallest to the largest value, y spread by the index so that
 * equal values stay apart. */
static void write_strip(struct slp_dynbuf *b, const char *key, const json_t *pi, bool bg,
                        const char *const *ids)
{
    const double W = 640, H = 64, L = 70, R = 70; /* plot from x = L to W - R */
    const size_t n = json_array_size(pi);
    double lo = INFINITY, hi = -INFINITY;
    size_t defined = 0;
    for (size_t i = 0; i < n; i++) {
        double v = image_value(pi, i, bg);
        if (!isnan(v)) {
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
            defined++;
        }
    }
    slp_dynbuf_adds(b, "<h3>");
    slp_html_text(b, key);
    slp_dynbuf_addf(b, " <span class=\"muted\">(%zu of %zu images defined)</span></h3>\n", defined,
                    n);
    slp_dynbuf_adds(b, "<svg class=\"dist\" data-key=\"");
    slp_html_attr(b, key);
    slp_dynbuf_addf(b,
                    "\" viewBox=\"0 0 %g %g\" width=\"%g\" height=\"%g\" role=\"img\" "
                    "aria-label=\"",
                    W, H, W, H);
    slp_html_attr(b, key);
    slp_dynbuf_adds(b, ": one dot per image\">");
    slp_dynbuf_addf(b, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"#999\"/>", L, H - 16,
                    W - R, H - 16);
    if (defined) {
        slp_dynbuf_addf(b, "<text x=\"%g\" y=\"%g\" text-anchor=\"end\" font-size=\"11\">", L - 6,
                        H - 12);
        slp_html_num(b, lo, 4);
        slp_dynbuf_addf(b, "</text><text x=\"%g\" y=\"%g\" font-size=\"11\">", W - R + 6, H - 12);
        slp_html_num(b, hi, 4);
        slp_dynbuf_adds(b, "</text>");
    }
    char buf[32];
    for (size_t i = 0; i < n; i++) {
        double v = image_value(pi, i, bg);
        if (isnan(v)) {
            continue;
        }
        double x = hi > lo ? L + (v - lo) / (hi - lo) * (W - L - R) : L + (W - L - R) / 2;
        /* a fixed pseudo-random spread of 7 rows (Knuth's multiplicative hash of the index) */
        double y = 6 + (double)(((uint32_t)i * 2654435761u) >> 29) * 5.5;
        slp_dynbuf_addf(b, "<circle data-index=\"%zu\" data-value=\"", i);
        slp_html_exact(b, v);
        slp_dynbuf_addf(b, "\" cx=\"%.1f\" cy=\"%.1f\" r=\"3\"><title>", x, y);
        slp_html_text(b, image_label(ids, (int64_t)i, NULL, buf, sizeof buf));
        slp_dynbuf_adds(b, ": ");
        slp_html_num(b, v, 6);
        slp_dynbuf_adds(b, "</title></circle>");
    }
    slp_dynbuf_adds(b, "</svg>\n");
}

static void write_plots(struct slp_dynbuf *b, const json_t *answer, const char *const *ids)
{
    char key[300];
    const char *k;
    const json_t *e;
    const bool bg = counts_background(answer);
    slp_dynbuf_adds(b, "<h2>Per-image distributions</h2>\n<p class=\"muted\">One dot per image "
                       "with a defined value (multiclass and multilabel: the mean over the "
                       "image's counted classes).</p>\n");
    json_object_foreach((json_t *)json_object_get(answer, "losses"), k, e)
    {
        const json_t *pi = json_object_get(e, "per_image");
        if (json_is_array(pi)) {
            snprintf(key, sizeof key, "losses.%.200s", k);
            write_strip(b, key, pi, bg, ids);
        }
    }
    json_object_foreach((json_t *)json_object_get(answer, "metrics"), k, e)
    {
        const json_t *pi = json_object_get(e, "per_image");
        if (json_is_array(pi) && !is_counts(e)) {
            snprintf(key, sizeof key, "metrics.%.200s", k);
            write_strip(b, key, pi, bg, ids);
        }
    }
}

/* ---- the overlays --------------------------------------------------------------------------- */

/* What the overlays of one answer need: its mode and geometry and the hard-prediction rules. */
struct geom {
    enum sl_mode mode;
    int64_t classes; /* C (1 in binary) */
    int nspatial;
    int64_t depth, height, width; /* depth 1 for 2-D; height 1 for 1-D */
    int64_t plane;                /* height * width */
    int64_t pixels;               /* depth * plane */
    enum sl_pred_type pred_type;
    double threshold, thr_logit;
    bool has_ignore;
    double ignore_index;
    bool several; /* "shapes" (a combination of images of several sizes): each image's own */
};

/* Reads the answer's mode, shape and conventions into *g (an answer with "shapes" instead of
 * "shape": the first one's). Returns 0, or SL_EINVAL with msg. */
static int geom_of(const json_t *answer, struct geom *g, char *msg, size_t msglen)
{
    memset(g, 0, sizeof *g);
    const char *mode = json_string_value(json_object_get(answer, "mode"));
    const json_t *shape = json_object_get(answer, "shape");
    if (!shape) {
        shape = json_array_get(json_object_get(answer, "shapes"), 0);
        g->several = shape != NULL;
    }
    const json_t *conv = json_object_get(answer, "conventions");
    const char *pt = json_string_value(json_object_get(conv, "prediction_type"));
    g->mode = !mode                             ? SL_MODE_AUTO
              : strcmp(mode, "binary") == 0     ? SL_MODE_BINARY
              : strcmp(mode, "multiclass") == 0 ? SL_MODE_MULTICLASS
              : strcmp(mode, "multilabel") == 0 ? SL_MODE_MULTILABEL
                                                : SL_MODE_AUTO;
    g->classes = json_integer_value(json_object_get(answer, "classes"));
    g->nspatial = (int)json_array_size(shape);
    if (g->mode == SL_MODE_AUTO || g->nspatial < 1 || g->nspatial > 3 || g->classes < 1 ||
        (g->mode == SL_MODE_BINARY && g->classes != 1)) {
        snprintf(msg, msglen, "the answer has no mode, classes and shape to draw images by");
        return SL_EINVAL;
    }
    int64_t d[3] = {1, 1, 1};
    for (int k = 0; k < g->nspatial; k++) {
        d[3 - g->nspatial + k] = json_integer_value(json_array_get(shape, (size_t)k));
        if (d[3 - g->nspatial + k] < 1) {
            snprintf(msg, msglen, "the answer's shape[%d] is not a positive integer", k);
            return SL_EINVAL;
        }
    }
    g->depth = d[0];
    g->height = d[1];
    g->width = d[2];
    g->plane = g->height * g->width;
    g->pixels = g->depth * g->plane;
    g->pred_type = !pt || strcmp(pt, "logits") == 0 ? SL_PRED_LOGITS
                   : strcmp(pt, "labels") == 0      ? SL_PRED_LABELS
                                                    : SL_PRED_PROBABILITIES;
    const json_t *t = json_object_get(conv, "threshold");
    g->threshold = json_is_number(t) ? json_number_value(t) : 0.5;
    /* binary hard prediction on logits: x >= logit(threshold) (lib/run.c) */
    g->thr_logit = log(g->threshold) - log1p(-g->threshold);
    const json_t *ig = json_object_get(conv, "ignore_index");
    g->has_ignore = json_is_number(ig);
    g->ignore_index = num_of(ig);
    return 0;
}

/* Image im's geometry when the answer has several shapes: g's with the image's own size, read
 * off its target ([*S], or [C, *S] in multilabel). Returns 0, or SL_ESHAPE with msg. */
static int geom_image(const struct geom *g, const struct slp_report_image *im, struct geom *gi,
                      char *msg, size_t msglen)
{
    *gi = *g;
    const int lead = g->mode == SL_MODE_MULTILABEL;
    const int ns = im->target.ndim - lead;
    if (ns != g->nspatial) {
        snprintf(msg, msglen, "image %lld: its target has %d axes, an image of this answer %d",
                 (long long)im->index, im->target.ndim, g->nspatial + lead);
        return SL_ESHAPE;
    }
    int64_t d[3] = {1, 1, 1};
    for (int k = 0; k < ns; k++) {
        d[3 - ns + k] = im->target.shape[lead + k];
    }
    gi->depth = d[0];
    gi->height = d[1];
    gi->width = d[2];
    gi->plane = gi->height * gi->width;
    gi->pixels = gi->depth * gi->plane;
    return 0;
}

/* Checks that image im's arrays fit g: prediction of pixels (binary) or C x pixels elements,
 * target of pixels (C x pixels in multilabel). Returns 0 or SL_ESHAPE with msg. */
static int check_image(const struct geom *g, const struct slp_report_image *im, char *msg,
                       size_t msglen)
{
    const int64_t np = sl_tensor_numel(&im->pred), nt = sl_tensor_numel(&im->target);
    const int64_t want_p = g->mode == SL_MODE_BINARY ? g->pixels : g->classes * g->pixels;
    const int64_t want_t = g->mode == SL_MODE_MULTILABEL ? g->classes * g->pixels : g->pixels;
    if (!im->pred.data || !im->target.data || np != want_p || nt != want_t) {
        snprintf(msg, msglen,
                 "image %lld: its prediction has %lld values and its target %lld, but a %s "
                 "image of this answer has %lld and %lld",
                 (long long)im->index, (long long)np, (long long)nt, sl_mode_name(g->mode),
                 (long long)want_p, (long long)want_t);
        return SL_ESHAPE;
    }
    return 0;
}

/* Whether the prediction value x is positive under g's hard-prediction rule (binary and
 * multilabel; lib/planes.c): logits x >= logit(threshold), labels x != 0, probabilities
 * p >= threshold where uint8 probabilities are v / 255. */
static bool hard_positive(const struct geom *g, const struct sl_tensor *p, double x)
{
    switch (g->pred_type) {
    case SL_PRED_LOGITS:
        return x >= g->thr_logit;
    case SL_PRED_LABELS:
        return x != 0;
    default:
        return (p->dtype == SL_DT_U8 ? x / 255.0 : x) >= g->threshold;
    }
}

/* The category of pixel p (index within the image's pixels) of channel c (binary: 0). */
static enum cat pixel_cat(const struct geom *g, const struct slp_report_image *im, int64_t c,
                          int64_t p)
{
    const int64_t at = c * g->pixels + p;
    double t = sl_tensor_get(&im->target, g->mode == SL_MODE_MULTILABEL ? at : p);
    if (g->has_ignore && t == g->ignore_index) {
        return CAT_IGNORED;
    }
    bool h = hard_positive(g, &im->pred, sl_tensor_get(&im->pred, at));
    bool y = t > 0;
    return h ? (y ? CAT_TP : CAT_FP) : (y ? CAT_FN : CAT_TN);
}

/* Multiclass: the predicted class of pixel p (argmax over C, the first of equal maxima, as
 * lib/softmax.c), the target class in *target (-1: ignored). */
static int64_t pixel_class(const struct geom *g, const struct slp_report_image *im, int64_t p,
                           int64_t *target)
{
    double t = sl_tensor_get(&im->target, p);
    *target = g->has_ignore && t == g->ignore_index ? -1 : (int64_t)t;
    int64_t arg = 0;
    double best = sl_tensor_get(&im->pred, p);
    for (int64_t c = 1; c < g->classes; c++) {
        double x = sl_tensor_get(&im->pred, c * g->pixels + p);
        if (x > best) {
            best = x;
            arg = c;
        }
    }
    return arg;
}

/* Errors (FP + FN; multiclass: wrong pixels) of slice z of channel c. */
static int64_t slice_errors(const struct geom *g, const struct slp_report_image *im, int64_t c,
                            int64_t z)
{
    int64_t n = 0;
    for (int64_t p = z * g->plane; p < (z + 1) * g->plane; p++) {
        if (g->mode == SL_MODE_MULTICLASS) {
            int64_t t;
            int64_t k = pixel_class(g, im, p, &t);
            n += t >= 0 && k != t;
        } else {
            enum cat a = pixel_cat(g, im, c, p);
            n += a == CAT_FP || a == CAT_FN;
        }
    }
    return n;
}

/* A thumbnail's size for an H x W slice: *up the upscale factor (>= 1) or *down the
 * downsample factor (> 1, then *up is 1). */
static void thumb_scale(int64_t h, int64_t w, int64_t *up, int64_t *down)
{
    const int64_t side = h > w ? h : w;
    *up = 1;
    *down = 1;
    if (side > THUMB_MAX) {
        *down = (side + THUMB_MAX - 1) / THUMB_MAX;
    } else if (THUMB_MIN / side >= 2) {
        *up = THUMB_MIN / side;
    }
}

/* Multiclass ranks within a downsampled block: a wrong pixel first, then a correct foreground
 * one, then a correct background one, then an ignored one; the first of the highest rank in
 * raster order is shown. */
static int mc_rank(int64_t pred, int64_t target)
{
    if (target < 0) {
        return 0;
    }
    return pred != target ? 3 : pred > 0 ? 2 : 1;
}

/* Draws slice z of channel c of image im into rgb (tw x th pixels, 3 bytes each). */
static void draw_slice(const struct geom *g, const struct slp_report_image *im, int64_t c,
                       int64_t z, int64_t up, int64_t f, unsigned char *rgb, int64_t tw, int64_t th)
{
    const int64_t base = z * g->plane;
    for (int64_t ty = 0; ty < th; ty++) {
        for (int64_t tx = 0; tx < tw; tx++) {
            /* the source block: one pixel when upscaled, f x f (cut at the edges) when down */
            const int64_t y0 = f > 1 ? ty * f : ty / up, x0 = f > 1 ? tx * f : tx / up;
            const int64_t y1 = f > 1 ? (y0 + f < g->height ? y0 + f : g->height) : y0 + 1;
            const int64_t x1 = f > 1 ? (x0 + f < g->width ? x0 + f : g->width) : x0 + 1;
            unsigned char *o = rgb + (ty * tw + tx) * 3;
            if (g->mode == SL_MODE_MULTICLASS) {
                int best = -1;
                int64_t bp = 0, bt = 0;
                for (int64_t y = y0; y < y1 && best < 3; y++) {
                    for (int64_t x = x0; x < x1 && best < 3; x++) {
                        int64_t t, k = pixel_class(g, im, base + y * g->width + x, &t);
                        int r = mc_rank(k, t);
                        if (r > best) {
                            best = r;
                            bp = k;
                            bt = t;
                        }
                    }
                }
                const unsigned char *col = bt < 0 ? cat_rgb[CAT_IGNORED] : class_rgb(bp);
                if (bt >= 0 && bp != bt && (tx + ty) % 4 == 0) {
                    static const unsigned char black[3] = {0, 0, 0};
                    col = black;
                }
                memcpy(o, col, 3);
            } else {
                enum cat best = CAT_IGNORED;
                for (int64_t y = y0; y < y1 && best != CAT_FN; y++) {
                    for (int64_t x = x0; x < x1 && best != CAT_FN; x++) {
                        enum cat a = pixel_cat(g, im, c, base + y * g->width + x);
                        best = a > best ? a : best;
                    }
                }
                memcpy(o, cat_rgb[best], 3);
            }
        }
    }
}

/* One <img> of slice z (-1: a 2-D image) of channel c (-1: not multilabel). */
static int write_img(struct slp_dynbuf *b, const struct geom *g, const struct slp_report_image *im,
                     int64_t c, int64_t z)
{
    int64_t up, f;
    thumb_scale(g->height, g->width, &up, &f);
    const int64_t tw = f > 1 ? (g->width + f - 1) / f : g->width * up;
    const int64_t th = f > 1 ? (g->height + f - 1) / f : g->height * up;
    unsigned char *rgb = malloc((size_t)(tw * th * 3));
    struct slp_dynbuf png;
    slp_dynbuf_init(&png, (size_t)1 << 26);
    if (!rgb) {
        return SL_ENOMEM;
    }
    draw_slice(g, im, c < 0 ? 0 : c, z < 0 ? 0 : z, up, f, rgb, tw, th);
    int rc = slp_png_rgb(rgb, (int)tw, (int)th, &png);
    free(rgb);
    if (rc) {
        slp_dynbuf_free(&png);
        return rc;
    }
    slp_dynbuf_adds(b, "<img class=\"overlay\" alt=\"overlay");
    if (z >= 0) {
        slp_dynbuf_addf(b, ", slice %lld", (long long)z);
    }
    if (c >= 0) {
        slp_dynbuf_addf(b, ", channel %lld", (long long)c);
    }
    slp_dynbuf_adds(b, "\" src=\"data:image/png;base64,");
    slp_html_base64(b, png.data, png.len);
    slp_dynbuf_free(&png);
    slp_dynbuf_addf(b, "\" width=\"%lld\" height=\"%lld\" data-scale=\"", (long long)tw,
                    (long long)th);
    if (f > 1) {
        slp_dynbuf_addf(b, "1/%lld\"", (long long)f);
    } else {
        slp_dynbuf_addf(b, "%lld\"", (long long)up);
    }
    if (z >= 0) {
        slp_dynbuf_addf(b, " data-slice=\"%lld\"", (long long)z);
    }
    if (c >= 0) {
        slp_dynbuf_addf(b, " data-channel=\"%lld\"", (long long)c);
    }
    slp_dynbuf_adds(b, ">");
    return b->err;
}

/* The imgs of channel c (-1: not multilabel) of image im: the slice of a 2-D image, or a 3-D
 * image's middle slice D / 2 and, when it differs, the slice with the most errors (the
 * smallest z of equals). */
static int write_channel(struct slp_dynbuf *b, const struct geom *g,
                         const struct slp_report_image *im, int64_t c)
{
    if (g->nspatial < 3) {
        return write_img(b, g, im, c, -1);
    }
    const int64_t mid = g->depth / 2;
    int64_t worst = 0, most = -1;
    for (int64_t z = 0; z < g->depth; z++) {
        int64_t e = slice_errors(g, im, c < 0 ? 0 : c, z);
        if (e > most) {
            most = e;
            worst = z;
        }
    }
    int rc = write_img(b, g, im, c, mid);
    if (!rc && worst != mid) {
        rc = write_img(b, g, im, c, worst);
    }
    return rc;
}

/* The caption's values of image i: every loss and metric with per-image values. */
static void write_values(struct slp_dynbuf *b, const json_t *answer, size_t i)
{
    static const char *const groups[] = {"losses", "metrics"};
    const bool bg = counts_background(answer);
    for (int gi = 0; gi < 2; gi++) {
        const char *k;
        const json_t *e;
        json_object_foreach((json_t *)json_object_get(answer, groups[gi]), k, e)
        {
            const json_t *pi = json_object_get(e, "per_image");
            if (!json_is_array(pi) || (gi == 1 && is_counts(e))) {
                continue;
            }
            slp_dynbuf_addf(b, "<br>%s.", groups[gi]);
            slp_html_text(b, k);
            slp_dynbuf_adds(b, " ");
            slp_html_num(b, image_value(pi, i, bg), 4);
        }
    }
}

/* One figure: image imgs[r] at rank r + 1. */
static int write_figure(struct slp_dynbuf *b, const json_t *answer, const struct geom *g,
                        const char *const *ids, const struct slp_report_image *im, int rank)
{
    char buf[32];
    const char *label = image_label(ids, im->index, im->id, buf, sizeof buf);
    slp_dynbuf_addf(b, "<figure class=\"thumb\" data-index=\"%lld\" data-id=\"",
                    (long long)im->index);
    slp_html_attr(b, label);
    slp_dynbuf_addf(b, "\" data-rank=\"%d\">", rank);
    int rc = 0;
    if (g->mode == SL_MODE_MULTILABEL) {
        for (int64_t c = 0; c < g->classes && !rc; c++) {
            rc = write_channel(b, g, im, c);
        }
    } else {
        rc = write_channel(b, g, im, -1);
    }
    if (rc) {
        return rc;
    }
    slp_dynbuf_addf(b, "<figcaption><strong>#%d ", rank);
    if (!im->id && !(ids && ids[im->index])) {
        slp_dynbuf_adds(b, "image ");
    }
    slp_html_text(b, label);
    slp_dynbuf_adds(b, "</strong>");
    if (im->id || (ids && ids[im->index])) {
        slp_dynbuf_addf(b, " <span class=\"muted\">(image %lld)</span>", (long long)im->index);
    }
    write_values(b, answer, (size_t)im->index);
    slp_dynbuf_adds(b, "</figcaption></figure>\n");
    return b->err;
}

/* A colour swatch and its label. */
static void swatch(struct slp_dynbuf *b, const unsigned char *rgb, const char *label, bool hatch)
{
    slp_dynbuf_addf(b, "<span><i class=\"sw\" style=\"background:#%02X%02X%02X%s\"></i>", rgb[0],
                    rgb[1], rgb[2],
                    hatch ? ";background-image:repeating-linear-gradient(45deg,#000 0 2px,"
                            "transparent 2px 6px)"
                          : "");
    slp_html_text(b, label);
    slp_dynbuf_adds(b, "</span>");
}

static void write_legend(struct slp_dynbuf *b, const struct geom *g)
{
    slp_dynbuf_adds(b, "<p class=\"legend\">");
    if (g->mode == SL_MODE_MULTICLASS) {
        char label[48];
        for (int64_t c = 0; c < g->classes; c++) {
            snprintf(label, sizeof label, "class %lld", (long long)c);
            swatch(b, class_rgb(c), label, false);
        }
        swatch(b, muted_rgb[0], "wrong: the predicted class, hatched black", true);
    } else {
        swatch(b, cat_rgb[CAT_TP], "true positive", false);
        swatch(b, cat_rgb[CAT_FP], "false positive", false);
        swatch(b, cat_rgb[CAT_FN], "false negative", false);
        swatch(b, cat_rgb[CAT_TN], "true negative", false);
    }
    if (g->has_ignore) {
        swatch(b, cat_rgb[CAT_IGNORED], "ignored (ignore_index)", false);
    }
    slp_dynbuf_adds(b, "</p>\n");
}

/* A section of thumbnails: <section id="sec_id"><h2>heading</h2>, a line saying how imgs are
 * ranked (lead, plain text; NULL: the worst by the first metric, as slp_report_worst ranks),
 * the legend and the thumbnails. */
static int write_thumbs(struct slp_dynbuf *b, const json_t *answer, const json_t *spec,
                        const char *const *ids, const struct slp_report_image *imgs, int nimgs,
                        const char *sec_id, const char *heading, const char *lead, char *msg,
                        size_t msglen)
{
    struct geom g;
    int rc = geom_of(answer, &g, msg, msglen);
    if (rc) {
        return rc;
    }
    const int64_t n = json_integer_value(json_object_get(answer, "images"));
    for (int j = 0; j < nimgs; j++) {
        if (imgs[j].index < 0 || imgs[j].index >= n) {
            snprintf(msg, msglen, "image %lld: the answer has %lld images",
                     (long long)imgs[j].index, (long long)n);
            return SL_ESHAPE;
        }
        struct geom gi = g;
        rc = g.several ? geom_image(&g, &imgs[j], &gi, msg, msglen) : 0;
        if (rc || (rc = check_image(&gi, &imgs[j], msg, msglen))) {
            return rc;
        }
    }
    const char *key = NULL;
    bool higher_worse = false;
    rank_entry(answer, spec, &key, &higher_worse);
    slp_dynbuf_adds(b, "<section id=\"");
    slp_html_attr(b, sec_id);
    slp_dynbuf_adds(b, "\"><h2>");
    slp_html_text(b, heading);
    slp_dynbuf_adds(b, "</h2>\n<p class=\"muted\">");
    if (lead) {
        slp_html_text(b, lead);
    } else if (key) {
        slp_dynbuf_addf(b, "The %d worst by ", nimgs);
        slp_html_text(b, key);
        slp_dynbuf_addf(b, " (%s is worse), worst first.", higher_worse ? "higher" : "lower");
    } else {
        slp_dynbuf_adds(b, "No per-image values to rank the images by.");
    }
    if (g.nspatial == 3) {
        slp_dynbuf_adds(b, " 3-D: the middle slice, then the slice with the most errors.");
    }
    int64_t up, f = 1;
    for (int j = 0; j < (g.several ? nimgs : 1); j++) { /* several sizes: the largest factor */
        struct geom gi = g;
        int64_t fj;
        if (g.several) {
            geom_image(&g, &imgs[j], &gi, msg, msglen);
        }
        thumb_scale(gi.height, gi.width, &up, &fj);
        f = fj > f ? fj : f;
    }
    if (f > 1) {
        slp_dynbuf_addf(b, " Downsampled by %s%lld: a thumbnail pixel shows ",
                        g.several ? "up to " : "", (long long)f);
        slp_dynbuf_adds(b, g.mode == SL_MODE_MULTICLASS
                               ? "the first wrong pixel of its block, if any."
                               : "the worst of its block (false negative, then false positive, "
                                 "then true positive).");
    }
    slp_dynbuf_adds(b, "</p>\n");
    write_legend(b, &g);
    slp_dynbuf_adds(b, "<div class=\"thumbs\">\n");
    for (int j = 0; j < nimgs; j++) {
        struct geom gi = g;
        if (g.several) {
            geom_image(&g, &imgs[j], &gi, msg, msglen); /* checked above */
        }
        rc = write_figure(b, answer, &gi, ids, &imgs[j], j + 1);
        if (rc) {
            if (rc != SL_ENOMEM && rc != SL_ETOOLARGE) {
                snprintf(msg, msglen, "image %lld: its thumbnail could not be written",
                         (long long)imgs[j].index);
            }
            return rc;
        }
    }
    slp_dynbuf_adds(b, "</div></section>\n");
    return b->err;
}

/* The line under the title: mode, images, classes, shape, conventions. */
static void write_summary(struct slp_dynbuf *b, const json_t *answer)
{
    const json_t *conv = json_object_get(answer, "conventions");
    slp_dynbuf_adds(b, "<p class=\"muted\" id=\"summary\">mode ");
    slp_html_text(b, json_string_value(json_object_get(answer, "mode")));
    long long n = (long long)json_integer_value(json_object_get(answer, "images"));
    long long c = (long long)json_integer_value(json_object_get(answer, "classes"));
    slp_dynbuf_addf(b, ", %lld image%s, %lld class%s, ", n, n == 1 ? "" : "s", c,
                    c == 1 ? "" : "es");
    /* a combination of images of several sizes has "shapes" */
    const json_t *shapes = json_object_get(answer, "shapes");
    const json_t *list = json_object_get(answer, "shape");
    slp_dynbuf_adds(b, shapes ? "shapes " : "shape ");
    for (size_t s = 0; s < (shapes ? json_array_size(shapes) : 1); s++) {
        size_t k;
        const json_t *d;
        slp_dynbuf_adds(b, s ? ", [" : "[");
        json_array_foreach(shapes ? json_array_get(shapes, s) : list, k, d)
        {
            slp_dynbuf_addf(b, "%s%lld", k ? ", " : "", (long long)json_integer_value(d));
        }
        slp_dynbuf_adds(b, "]");
    }
    slp_dynbuf_adds(b, "; prediction_type ");
    slp_html_text(b, json_string_value(json_object_get(conv, "prediction_type")));
    slp_dynbuf_adds(b, ", threshold ");
    slp_html_num(b, num_of(json_object_get(conv, "threshold")), 6);
    slp_dynbuf_adds(b, ", empty ");
    slp_html_text(b, json_string_value(json_object_get(conv, "empty")));
    slp_dynbuf_adds(b, "</p>\n");
}

int slp_report_html(struct slp_dynbuf *out, const json_t *answer, const json_t *spec,
                    const char *const *ids, const struct slp_report_image *imgs, int nimgs,
                    const char *title, char *msg, size_t msglen)
{
    msg[0] = '\0';
    if (!json_is_object(answer)) {
        snprintf(msg, msglen, "the answer is not a JSON object");
        return SL_EINVAL;
    }
    if (!title) {
        title = "segloss report";
    }
    slp_html_begin(out, title, report_css);
    slp_dynbuf_adds(out, "<h1>");
    slp_html_text(out, title);
    slp_dynbuf_adds(out, "</h1>\n");
    write_summary(out, answer);
    write_aggregate(out, answer);
    write_plots(out, answer, ids);
    int rc = write_thumbs(out, answer, spec, ids, imgs, nimgs, "worst", "Worst images", NULL, msg,
                          msglen);
    if (rc) {
        return rc;
    }
    slp_html_end(out);
    if (out->err) {
        snprintf(msg, msglen, "%s",
                 out->err == SL_ETOOLARGE ? "the report is over the size limit of its buffer"
                                          : "out of memory while writing the report");
    }
    return out->err;
}

int slp_report_thumbs(struct slp_dynbuf *out, const json_t *answer, const char *const *ids,
                      const struct slp_report_image *imgs, int nimgs, const char *sec_id,
                      const char *heading, const char *lead, char *msg, size_t msglen)
{
    msg[0] = '\0';
    int rc = write_thumbs(out, answer, NULL, ids, imgs, nimgs, sec_id, heading, lead, msg, msglen);
    if (!rc && out->err) {
        snprintf(msg, msglen, "%s",
                 out->err == SL_ETOOLARGE ? "the report is over the size limit of its buffer"
                                          : "out of memory while writing the report");
    }
    return rc ? rc : out->err;
}
