/* weightmap.c - the U-Net border weight map (Ronneberger, Fischer & Brox 2015, eq. 2):
 * sl_weight_map() validates a batch and computes one image per pool index. Per image the
 * squared distances to the nearest and second-nearest instance come from one of two exact
 * methods, whichever is cheaper (sl__weight_map_image), or from one EDT per instance over the
 * whole image (sl__weight_map_image_naive, the reference for tests and `make bench`).
 *
 * The cutoff. The map is float32, and on a background pixel it is the float32 rounding of
 * w_c + term, w_c = class_weights[0], term = w0 exp(-(d1+d2)^2 / (2 sigma^2)) (neighbors 2) or
 * w0 exp(-d1^2 / (2 sigma^2)) (neighbors 1). A term below a tolerance tol does not change that
 * float (ln_tol_of): a quarter of w_c's float32 ulp when w_c is a float32 value (1, 0.5, 2,
 * ...: w_c + term stays below the midpoint to the next float; 2^-25 for w_c = 1, where a
 * double-precision cutoff such as w0 1e-16 would be far stricter than the answer can show),
 * half the smallest float32 subnormal when w_c = 0 (the term rounds to 0), else w_c 2^-56
 * (under half a double ulp of w_c: w_c + term == w_c already in double). The term is below tol
 * whenever d2 (neighbors 2; d1 + d2 >= d2) exceeds R = sigma sqrt(2 ln(w0 / tol)): 6.3 sigma
 * for the defaults. Both methods keep, per pixel, the two smallest squared distances <= R^2 to
 * distinct instances; they find the true d1 and d2 wherever d2 <= R, and where d2 > R a second
 * value would be a distance to an instance other than the nearest, so at least d2 > R: none is
 * kept, the border term is 0 and the answer is the float32 of w_c, as the naive one is. Both
 * give the naive result (bit for bit in every test and in `make bench`; in general up to the
 * rounding of a sum of squares computed in another order, about 1e-16 relative).
 *
 * Windowed method: one EDT per instance over its bounding box grown by ceil(R / spacing[a])
 * pixels per axis, clipped to the image. A pixel outside that window is farther than R from
 * the instance along one axis, so farther than R; inside it the EDT of the instance alone is
 * exact because every pixel of the instance lies inside. Cost: the sum of the window sizes
 * (about 5 image sizes for 200 cells in 512x512 at sigma 5), independent of the image size.
 *
 * Separable method, for many small instances, where windows overlap many times: the distance
 * to each label is separable (F&H), D_L(x) = min_y (x_a - y_a)^2 s_a^2 + G_L(y) over the
 * positions y on x's line along axis a, with G_L the result of the previous axes. Only the
 * two best labels of every y can be among the two best of x: if L is not among the two best
 * at the y that is optimal for L, the two labels that beat it there beat it at x as well. So
 * one pass per axis carries (value, label) pairs, two per pixel: the first from the seeds
 * (the nearest seed on each side and the nearest one of another label), the others by
 * scanning outward from x until the squared step reaches the second value found or R^2.
 * Cost: at most (2R / spacing + 1) positions per pixel and axis, far fewer where instances are
 * dense; independent of the number of instances.
 *
 * neighbors 1 needs neither: d1 is the distance to the union of the instances, one EDT of the
 * whole image, with no cutoff.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Largest w0 and class weight: w0 + w_c stays finite in float32 (FLT_MAX is 3.4e38). */
#define WM_MAX_WEIGHT 1e30
/* Spacing bounds: squared distances over any image stay far from overflow and underflow. */
#define WM_MIN_SPACING 1e-12
#define WM_MAX_SPACING 1e12
/* The windowed method while its windows hold at most this many pixels per image pixel, else
 * the separable one. Measured crossover (2-D 512x512 and 3-D 96^3, sigma 1 to 10, one-pixel
 * dots to 200 discs): between 20 and 30 in both; away from it the better method is 3-100x
 * faster. */
#define WM_WINDOW_RATIO 24
/* Labels at most this many times the pixel count are relabeled with a direct table. */
#define WM_DENSE_FACTOR 2

void sl_weight_map_params_init(struct sl_weight_map_params *p)
{
    memset(p, 0, sizeof *p);
    p->w0 = 10;
    p->sigma = 5;
    p->class_weights[0] = 1;
    p->class_weights[1] = 1;
    p->neighbors = 2;
    p->connectivity = 0;
    p->nspacing = 0;
}

/* ---- one image -------------------------------------------------------------------------- */

/* An image as a 3-D grid (2-D images get a leading axis of 1). */
struct wm_img {
    const int32_t *labels;
    int64_t n;
    int nd;
    const int64_t *shape;  /* the nd axes, as given to the EDT */
    const double *spacing; /* as given to the EDT: NULL = all 1 */
    int64_t sh[3];         /* the grid */
    double sp[3];          /* spacing of the grid's axes */
    int64_t pixels;
};

static int img_init(struct wm_img *im, const int32_t *labels, int64_t n, int nd,
                    const int64_t *shape, const struct sl_weight_map_params *p)
{
    if (nd != 2 && nd != 3) {
        return SL_EINVAL;
    }
    im->labels = labels;
    im->n = n;
    im->nd = nd;
    im->shape = shape;
    im->spacing = p->nspacing ? p->spacing : NULL;
    im->pixels = 1;
    for (int a = 0; a < 3; a++) {
        int s = a - (3 - nd); /* axis of the caller's shape, or < 0 for the padding axis */
        im->sh[a] = s >= 0 ? shape[s] : 1;
        im->sp[a] = s >= 0 && p->nspacing ? p->spacing[s] : 1.0;
        im->pixels *= im->sh[a];
    }
    return 0;
}

/* w of one pixel from its squared distances to the two nearest instances (sq2 unused with
 * neighbors 1); Ronneberger et al. 2015, eq. 2. */
static inline float weight_of(const struct sl_weight_map_params *p, uint8_t fg, double sq1,
                              double sq2)
{
    if (fg) {
        return (float)p->class_weights[1];
    }
    double d = p->neighbors == 2 ? sqrt(sq1) + sqrt(sq2) : sqrt(sq1);
    double term = 0;
    if (isfinite(d)) {
        /* d / sigma first: sigma^2 may underflow where the ratio is still meaningful */
        double q = d / p->sigma;
        term = p->w0 * exp(-0.5 * q * q);
    }
    return (float)(p->class_weights[0] + term);
}

/* Writes w from best (stride doubles per pixel: sq1, then sq2 when stride is 2). */
static void finish(const uint8_t *mask, const double *best, int stride, int64_t pixels,
                   const struct sl_weight_map_params *p, float *out)
{
    for (int64_t i = 0; i < pixels; i++) {
        const double *b = best + (size_t)stride * (size_t)i;
        out[i] = weight_of(p, mask[i], b[0], stride == 2 ? b[1] : b[0]);
    }
}

/* Fills out with the class weights alone (no border term). */
static void fill_class(const uint8_t *mask, int64_t pixels, const struct sl_weight_map_params *p,
                       float *out)
{
    const float bg = (float)p->class_weights[0], fg = (float)p->class_weights[1];
    for (int64_t i = 0; i < pixels; i++) {
        out[i] = mask[i] ? fg : bg;
    }
}

/* The EDT of instance k over the window [lo, hi] (grid coordinates, inclusive); merges the
 * squared distances <= r2 into best (two per pixel, ascending). seed and dist hold at least
 * the window's size. Returns 0 or SL_ENOMEM. */
static int merge_instance(const struct wm_img *im, int32_t k, const int64_t *lo, const int64_t *hi,
                          double r2, uint8_t *seed, double *dist, double *best)
{
    const int64_t H = im->sh[1], W = im->sh[2];
    int64_t wsh[3];
    for (int a = 0; a < 3; a++) {
        wsh[a] = hi[a] - lo[a] + 1;
    }
    size_t j = 0;
    for (int64_t z = lo[0]; z <= hi[0]; z++) {
        for (int64_t y = lo[1]; y <= hi[1]; y++) {
            const int32_t *row = im->labels + (z * H + y) * W;
            for (int64_t x = lo[2]; x <= hi[2]; x++) {
                seed[j++] = row[x] == k;
            }
        }
    }
    int rc = sl__edt_sq(seed, im->nd, wsh + (3 - im->nd), im->spacing, dist);
    if (rc) {
        return rc;
    }
    j = 0;
    for (int64_t z = lo[0]; z <= hi[0]; z++) {
        for (int64_t y = lo[1]; y <= hi[1]; y++) {
            double *b = best + 2 * (size_t)((z * H + y) * W + lo[2]);
            for (int64_t x = lo[2]; x <= hi[2]; x++, b += 2) {
                double v = dist[j++];
                if (v <= r2) {
                    if (v < b[0]) {
                        b[1] = b[0];
                        b[0] = v;
                    } else if (v < b[1]) {
                        b[1] = v;
                    }
                }
            }
        }
    }
    return 0;
}

/* A best array of two +inf per pixel; NULL when out of memory. */
static double *best_new(int64_t pixels)
{
    double *best = malloc(sizeof(double) * 2 * (size_t)pixels);
    if (best) {
        for (int64_t i = 0; i < 2 * pixels; i++) {
            best[i] = INFINITY;
        }
    }
    return best;
}

/* ln of the tolerance of the file comment: a border term below it leaves the float32 of
 * w_c + term at the float32 of w_c. In logs because the tolerance may underflow a double. */
static double ln_tol_of(double wc)
{
    if (wc == 0) {
        return -152 * M_LN2; /* half the smallest float32 subnormal is 2^-150 */
    }
    if ((double)(float)wc == wc) {
        /* a quarter of the float32 ulp of wc = m 2^e (m in [0.5, 1)): 2^(e - 24 - 2), the ulp
         * staying 2^-149 below the normal range */
        int e;
        frexp(wc, &e);
        return (double)((e - 24 < -149 ? -149 : e - 24) - 2) * M_LN2;
    }
    return log(wc) - 56 * M_LN2;
}

/* R^2 of the file comment: squared distances above it are dropped (0: the term never counts). */
static double cutoff_sq(const struct sl_weight_map_params *p)
{
    double l = log(p->w0) - ln_tol_of(p->class_weights[0]);
    return l > 0 ? 2 * p->sigma * p->sigma * l : 0;
}

/* d1 alone: the EDT of the union of the instances. */
static int nearest_only(const uint8_t *mask, const struct wm_img *im,
                        const struct sl_weight_map_params *p, float *out)
{
    const size_t P = (size_t)im->pixels;
    uint8_t *seed = malloc(P);
    double *dist = malloc(sizeof(double) * P);
    int rc = SL_ENOMEM;
    if (seed && dist) {
        for (size_t i = 0; i < P; i++) {
            seed[i] = im->labels[i] > 0 && im->labels[i] <= im->n;
        }
        rc = sl__edt_sq(seed, im->nd, im->shape, im->spacing, dist);
        if (rc == 0) {
            finish(mask, dist, 1, im->pixels, p, out);
        }
    }
    free(seed);
    free(dist);
    return rc;
}

/* ---- the separable method: the two nearest distinct labels, axis by axis ---------------- */

/* Keeps the two smallest values of distinct labels in (v, l), ascending; label 0 = empty. */
static inline void top2_insert(double *v, int32_t *l, double val, int32_t lab)
{
    if (lab == l[0]) {
        v[0] = val < v[0] ? val : v[0];
    } else if (lab == l[1]) {
        if (val < v[1]) {
            v[1] = val;
            if (v[1] < v[0]) {
                double tv = v[0];
                int32_t tl = l[0];
                v[0] = v[1];
                l[0] = l[1];
                v[1] = tv;
                l[1] = tl;
            }
        }
    } else if (val < v[0]) {
        v[1] = v[0];
        l[1] = l[0];
        v[0] = val;
        l[0] = lab;
    } else if (val < v[1]) {
        v[1] = val;
        l[1] = lab;
    }
}

/* First pass, along the last axis, from the seeds: for each pixel of a line of len pixels at
 * labels lab, the two nearest distinct labels on the line (squared distances <= r2) into v, l
 * (two per pixel, stride 1 between pixels of the line). Nearest on each side: the nearest seed
 * and the nearest seed of another label than that one, found by one sweep each way. */
static void sep_first(const int32_t *lab, int64_t len, int64_t n, double s, double r2, double *v,
                      int32_t *l)
{
    for (int64_t x = 0; x < len; x++) {
        v[2 * x] = v[2 * x + 1] = INFINITY;
        l[2 * x] = l[2 * x + 1] = 0;
    }
    for (int dir = 0; dir < 2; dir++) {
        int64_t p1 = -1, p2 = -1; /* nearest seed so far; nearest with another label */
        for (int64_t k = 0; k < len; k++) {
            const int64_t x = dir == 0 ? k : len - 1 - k;
            const int32_t lx = lab[x] >= 1 && lab[x] <= n ? lab[x] : 0;
            if (lx) {
                if (p1 < 0 || lab[p1] != lx) {
                    p2 = p1;
                }
                p1 = x;
            }
            const int64_t cand[2] = {p1, p2};
            for (int c = 0; c < 2 && cand[c] >= 0; c++) {
                double d = (double)(x - cand[c]) * s;
                if (d * d <= r2) {
                    top2_insert(v + 2 * x, l + 2 * x, d * d, lab[cand[c]]);
                }
            }
        }
    }
}

/* A later pass along a line of len pixels: the input pairs (iv, il), two per pixel, become for
 * each pixel x the two smallest distinct-label values of (x - y)^2 s^2 + iv(y) <= r2 over the
 * positions y within rad (the exchange argument in the file comment: the two best labels of
 * every position are all a later pixel can need). Scans outward from x and stops once the
 * squared step alone reaches the second value found. */
static void sep_line(const double *iv, const int32_t *il, int64_t len, double s, int64_t rad,
                     double r2, double *v, int32_t *l)
{
    for (int64_t x = 0; x < len; x++) {
        double bv[2] = {INFINITY, INFINITY};
        int32_t bl[2] = {0, 0};
        for (int64_t d = 0; d <= rad; d++) {
            double step = (double)d * s;
            step *= step;
            if (step > r2 || step >= bv[1]) {
                break;
            }
            const int64_t ys[2] = {x - d, x + d};
            for (int side = 0; side < (d ? 2 : 1); side++) {
                const int64_t y = ys[side];
                if (y < 0 || y >= len) {
                    continue;
                }
                for (int c = 0; c < 2; c++) {
                    double val = step + iv[2 * y + c];
                    if (val <= r2) {
                        top2_insert(bv, bl, val, il[2 * y + c]);
                    }
                }
            }
        }
        v[2 * x] = bv[0];
        v[2 * x + 1] = bv[1];
        l[2 * x] = bl[0];
        l[2 * x + 1] = bl[1];
    }
}

/* The two smallest squared distances <= r2 to distinct instances, for every pixel, into best
 * (two per pixel), axis by axis: the first pass along the last axis from the seeds, then one
 * pass per other axis. Returns 0 or SL_ENOMEM. */
static int separable(const struct wm_img *im, double r2, const int64_t *rad, double *best)
{
    const int64_t P = im->pixels;
    int64_t longest = im->sh[0] > im->sh[1] ? im->sh[0] : im->sh[1];
    longest = im->sh[2] > longest ? im->sh[2] : longest;
    int32_t *bl = malloc(sizeof(int32_t) * 2 * (size_t)P);
    double *lv = malloc(sizeof(double) * 2 * (size_t)longest);
    int32_t *ll = malloc(sizeof(int32_t) * 2 * (size_t)longest);
    double *ov = malloc(sizeof(double) * 2 * (size_t)longest);
    int32_t *ol = malloc(sizeof(int32_t) * 2 * (size_t)longest);
    int rc = SL_ENOMEM;
    if (!bl || !lv || !ll || !ov || !ol) {
        goto out;
    }
    const int64_t W = im->sh[2];
    for (int64_t line = 0; line < P / W; line++) {
        sep_first(im->labels + line * W, W, im->n, im->sp[2], r2, best + 2 * line * W,
                  bl + 2 * line * W);
    }
    for (int a = 1; a >= 0; a--) {
        const int64_t len = im->sh[a];
        if (len == 1) {
            continue; /* the padding axis of a 2-D image, or a 1-pixel axis */
        }
        const int64_t stride = a == 1 ? W : im->sh[1] * W;
        for (int64_t outer = 0; outer < P / (len * stride); outer++) {
            for (int64_t inner = 0; inner < stride; inner++) {
                const int64_t base = outer * len * stride + inner;
                for (int64_t y = 0; y < len; y++) {
                    const int64_t i = base + y * stride;
                    lv[2 * y] = best[2 * i];
                    lv[2 * y + 1] = best[2 * i + 1];
                    ll[2 * y] = bl[2 * i];
                    ll[2 * y + 1] = bl[2 * i + 1];
                }
                sep_line(lv, ll, len, im->sp[a], rad[a], r2, ov, ol);
                for (int64_t y = 0; y < len; y++) {
                    const int64_t i = base + y * stride;
                    best[2 * i] = ov[2 * y];
                    best[2 * i + 1] = ov[2 * y + 1];
                    bl[2 * i] = ol[2 * y];
                    bl[2 * i + 1] = ol[2 * y + 1];
                }
            }
        }
    }
    rc = 0;
out:
    free(bl);
    free(lv);
    free(ll);
    free(ov);
    free(ol);
    return rc;
}

/* ---- the windowed method and the choice ------------------------------------------------------ */

/* Per-instance EDTs over the windows box (6 per instance: lo, hi; hi[0] < 0: no pixels) into
 * best. largest: the size of the largest window. Returns 0 or SL_ENOMEM. */
static int windowed(const struct wm_img *im, const int64_t *box, int64_t largest, double r2,
                    double *best)
{
    uint8_t *seed = malloc((size_t)largest + 1);
    double *dist = malloc(sizeof(double) * ((size_t)largest + 1));
    int rc = seed && dist ? 0 : SL_ENOMEM;
    for (int64_t k = 0; k < im->n && rc == 0; k++) {
        const int64_t *b = box + 6 * k;
        if (b[3] >= 0) {
            rc = merge_instance(im, (int32_t)(k + 1), b, b + 3, r2, seed, dist, best);
        }
    }
    free(seed);
    free(dist);
    return rc;
}

int sl__weight_map_image(const uint8_t *mask, const int32_t *labels, int64_t n, int nd,
                         const int64_t *shape, const struct sl_weight_map_params *p, float *out)
{
    struct wm_img im;
    int rc = img_init(&im, labels, n, nd, shape, p);
    if (rc) {
        return rc;
    }
    if (!(p->w0 > 0) || n < p->neighbors) {
        fill_class(mask, im.pixels, p, out);
        return 0;
    }
    if (p->neighbors == 1) {
        return nearest_only(mask, &im, p, out);
    }
    const double r2 = cutoff_sq(p);
    const double R = sqrt(r2);
    int64_t rad[3];
    for (int a = 0; a < 3; a++) {
        double r = R / im.sp[a];
        rad[a] = r >= (double)im.sh[a] ? im.sh[a] : (int64_t)ceil(r);
    }

    /* bounding boxes: box[6k + a] = lo, box[6k + 3 + a] = hi (grid axes), k = label - 1 */
    int64_t *box = malloc(sizeof(int64_t) * 6 * (size_t)n);
    double *best = best_new(im.pixels);
    rc = SL_ENOMEM;
    if (!box || !best) {
        goto out;
    }
    for (int64_t k = 0; k < n; k++) {
        for (int a = 0; a < 3; a++) {
            box[6 * k + a] = INT64_MAX;
            box[6 * k + 3 + a] = -1;
        }
    }
    int64_t i = 0;
    for (int64_t z = 0; z < im.sh[0]; z++) {
        for (int64_t y = 0; y < im.sh[1]; y++) {
            for (int64_t x = 0; x < im.sh[2]; x++, i++) {
                int64_t k = (int64_t)labels[i] - 1;
                if (k < 0 || k >= n) {
                    continue;
                }
                int64_t *b = box + 6 * k;
                const int64_t c[3] = {z, y, x};
                for (int a = 0; a < 3; a++) {
                    b[a] = c[a] < b[a] ? c[a] : b[a];
                    b[3 + a] = c[a] > b[3 + a] ? c[a] : b[3 + a];
                }
            }
        }
    }
    /* grow every box into its window, clipped to the image */
    int64_t largest = 0;
    double windows = 0;
    for (int64_t k = 0; k < n; k++) {
        int64_t *b = box + 6 * k, size = 1;
        if (b[3] < 0) {
            continue; /* a label without pixels */
        }
        for (int a = 0; a < 3; a++) {
            b[a] = b[a] - rad[a] > 0 ? b[a] - rad[a] : 0;
            b[3 + a] = b[3 + a] + rad[a] < im.sh[a] - 1 ? b[3 + a] + rad[a] : im.sh[a] - 1;
            size *= b[3 + a] - b[a] + 1;
        }
        largest = size > largest ? size : largest;
        windows += (double)size;
    }
    /* windowed: ~6 ns per window pixel; separable: 50-250 ns per pixel, less where instances
     * are dense (the scans stop at d2) */
    if (windows <= (double)WM_WINDOW_RATIO * (double)im.pixels) {
        rc = windowed(&im, box, largest, r2, best);
    } else {
        rc = separable(&im, r2, rad, best);
    }
    if (rc == 0) {
        finish(mask, best, 2, im.pixels, p, out);
    }
out:
    free(box);
    free(best);
    return rc;
}

int sl__weight_map_image_naive(const uint8_t *mask, const int32_t *labels, int64_t n, int nd,
                               const int64_t *shape, const struct sl_weight_map_params *p,
                               float *out)
{
    struct wm_img im;
    int rc = img_init(&im, labels, n, nd, shape, p);
    if (rc) {
        return rc;
    }
    if (!(p->w0 > 0) || n < p->neighbors) {
        fill_class(mask, im.pixels, p, out);
        return 0;
    }
    const int64_t lo[3] = {0, 0, 0};
    const int64_t hi[3] = {im.sh[0] - 1, im.sh[1] - 1, im.sh[2] - 1};
    double *best = best_new(im.pixels);
    uint8_t *seed = malloc((size_t)im.pixels);
    double *dist = malloc(sizeof(double) * (size_t)im.pixels);
    rc = SL_ENOMEM;
    if (best && seed && dist) {
        rc = 0;
        for (int64_t k = 1; k <= n && rc == 0; k++) {
            rc = merge_instance(&im, (int32_t)k, lo, hi, INFINITY, seed, dist, best);
        }
        if (rc == 0) {
            finish(mask, best, 2, im.pixels, p, out);
        }
    }
    free(best);
    free(seed);
    free(dist);
    return rc;
}

/* ---- the batch ---------------------------------------------------------------------------- */

struct wm_geom {
    int64_t images;
    int64_t pixels; /* per image */
    int nd;
    int64_t shape[3];
};

static bool same_dims(const int64_t *a, const int64_t *b, int n)
{
    for (int i = 0; i < n; i++) {
        if (a[i] != b[i]) {
            return false;
        }
    }
    return true;
}

/* Spatial dimensions of a [N, *S] or [N, 1, *S] target. A 4-D [N, 1, H, W] is a 2-D batch
 * with a channel axis (as /v1/score reads it) unless spacing has 3 values or connectivity is
 * 6 or 26: then it is one 3-D slice deep. */
static int geometry(const struct sl_tensor *t, const struct sl_weight_map_params *p,
                    struct wm_geom *g, char *msg, size_t msglen)
{
    char ts[96];
    int first; /* index of the first spatial axis */
    bool hint3 = p->nspacing == 3 || p->connectivity == 6 || p->connectivity == 26;
    if (t->ndim == 3) {
        first = 1;
    } else if (t->ndim == 4) {
        first = t->shape[1] == 1 && !hint3 ? 2 : 1;
    } else if (t->ndim == 5 && t->shape[1] == 1) {
        first = 2;
    } else {
        sl_format_shape(t->shape, t->ndim, ts, sizeof ts);
        snprintf(msg, msglen,
                 "target: shape %s is not [N, *S] or [N, 1, *S] with 2 or 3 spatial dimensions",
                 ts);
        return SL_ESHAPE;
    }
    g->images = t->shape[0];
    g->nd = t->ndim - first;
    g->pixels = 1;
    for (int a = 0; a < g->nd; a++) {
        g->shape[a] = t->shape[first + a];
        g->pixels *= g->shape[a];
    }
    return 0;
}

/* Whether o is [N, *S] or [N, 1, *S] for the geometry g. */
static bool fits(const struct sl_tensor *o, const struct wm_geom *g)
{
    return (o->ndim == g->nd + 1 && o->shape[0] == g->images &&
            same_dims(o->shape + 1, g->shape, g->nd)) ||
           (o->ndim == g->nd + 2 && o->shape[0] == g->images && o->shape[1] == 1 &&
            same_dims(o->shape + 2, g->shape, g->nd));
}

static int check_weight(double v, const char *name, char *msg, size_t msglen)
{
    if (v >= 0 && v <= WM_MAX_WEIGHT) {
        return 0;
    }
    snprintf(msg, msglen, "%s: must be a number in [0, %g], not %g", name, WM_MAX_WEIGHT, v);
    return SL_ERANGE;
}

/* The parameters that do not depend on the images. */
static int check_params(const struct sl_weight_map_params *p, char *msg, size_t msglen)
{
    int rc = check_weight(p->w0, "w0", msg, msglen);
    if (rc == 0) {
        rc = check_weight(p->class_weights[0], "class_weights[0]", msg, msglen);
    }
    if (rc == 0) {
        rc = check_weight(p->class_weights[1], "class_weights[1]", msg, msglen);
    }
    if (rc) {
        return rc;
    }
    if (!(p->sigma > 0) || !isfinite(p->sigma)) {
        snprintf(msg, msglen, "sigma: must be a finite number > 0, not %g", p->sigma);
        return SL_ERANGE;
    }
    if (p->neighbors != 1 && p->neighbors != 2) {
        snprintf(msg, msglen, "neighbors: must be 1 (d1 only) or 2 (d1 + d2, U-Net), not %d",
                 p->neighbors);
        return SL_ERANGE;
    }
    if (p->nspacing < 0 || p->nspacing > 3) {
        snprintf(msg, msglen, "spacing: has %d values; give one per spatial axis", p->nspacing);
        return SL_EINVAL;
    }
    for (int a = 0; a < p->nspacing; a++) {
        double s = p->spacing[a];
        if (!(s >= WM_MIN_SPACING && s <= WM_MAX_SPACING)) {
            snprintf(msg, msglen, "spacing[%d]: must be a number in [%g, %g], not %g", a,
                     WM_MIN_SPACING, WM_MAX_SPACING, s);
            return SL_ERANGE;
        }
    }
    return 0;
}

/* The parameters that depend on the dimensionality nd. */
static int check_dims(const struct sl_weight_map_params *p, int nd, char *msg, size_t msglen)
{
    int c = p->connectivity;
    bool ok = c == 0 || (nd == 2 ? (c == 4 || c == 8) : (c == 6 || c == 26));
    if (!ok) {
        snprintf(msg, msglen,
                 "connectivity: %d is not valid for %d-D images (2-D: 4 or 8; 3-D: 6 or 26)", c,
                 nd);
        return SL_EINVAL;
    }
    if (p->nspacing && p->nspacing != nd) {
        snprintf(msg, msglen, "spacing: has %d values but the images have %d spatial dimensions",
                 p->nspacing, nd);
        return SL_EINVAL;
    }
    return 0;
}

static int check_target_values(const struct sl_tensor *t, char *msg, size_t msglen)
{
    char idx[128];
    const int64_t n = sl_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        if (t->dtype == SL_DT_U8 || t->dtype == SL_DT_BOOL) {
            /* fast path for the common mask dtype: skip to the first value above 1 */
            const uint8_t *u = t->data;
            while (i < n && u[i] <= 1) {
                i++;
            }
            if (i == n) {
                break;
            }
        }
        double v = sl_tensor_get(t, i);
        if (v == 0 || v == 1) {
            continue;
        }
        sl__format_index(t->shape, t->ndim, i, idx, sizeof idx);
        snprintf(msg, msglen, "target%s (flat index %lld) is %g: weight-map targets must be 0 or 1",
                 idx, (long long)i, v);
        return SL_ERANGE;
    }
    return 0;
}

/* Element i of a validated label map (integral, >= 0) as an integer. int64 is read directly:
 * labels above 2^53 would not survive a double. */
static int64_t label_at(const struct sl_tensor *t, int64_t i)
{
    if (t->dtype == SL_DT_I64) {
        int64_t v;
        memcpy(&v, (const char *)t->data + 8 * (size_t)i, sizeof v);
        return v;
    }
    return (int64_t)sl_tensor_get(t, i);
}

int sl__check_instances(const struct sl_tensor *t, char *msg, size_t msglen)
{
    char idx[128];
    const int64_t n = sl_tensor_numel(t);
    const bool fl = sl__dtype_is_float(t->dtype);
    for (int64_t i = 0; i < n; i++) {
        bool ok;
        double v;
        if (t->dtype == SL_DT_I64) {
            int64_t l = label_at(t, i);
            ok = l >= 0;
            v = (double)l;
        } else {
            v = sl_tensor_get(t, i);
            /* floats: integral and exact in a double */
            ok = v >= 0 && (!fl || (v == floor(v) && v <= 9007199254740992.0));
        }
        if (!ok) {
            sl__format_index(t->shape, t->ndim, i, idx, sizeof idx);
            snprintf(msg, msglen,
                     "instances%s (flat index %lld) is %g: instance labels must be integers >= 0 "
                     "(0 = background)",
                     idx, (long long)i, v);
            return SL_ERANGE;
        }
    }
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Maps the positive labels of the npix values of t from index off to 1..n (any order of the
 * original values, which need not be consecutive). Returns n, or SL_ENOMEM. */
int64_t sl__relabel(const struct sl_tensor *t, int64_t off, int64_t npix, int32_t *out)
{
    int64_t top = 0;
    for (int64_t j = 0; j < npix; j++) {
        int64_t v = label_at(t, off + j);
        top = v > top ? v : top;
    }
    int32_t n = 0;
    if (top / WM_DENSE_FACTOR <= npix) {
        /* a direct table; new labels in raster order of first appearance */
        int32_t *map = calloc((size_t)top + 1, sizeof *map);
        if (!map) {
            return SL_ENOMEM;
        }
        for (int64_t j = 0; j < npix; j++) {
            int64_t v = label_at(t, off + j);
            if (v > 0 && map[v] == 0) {
                map[v] = ++n;
            }
            out[j] = map[v];
        }
        free(map);
        return n;
    }
    /* sparse large values: the sorted distinct values, found by binary search */
    int64_t *vals = malloc(sizeof(int64_t) * (size_t)npix);
    if (!vals) {
        return SL_ENOMEM;
    }
    size_t m = 0;
    for (int64_t j = 0; j < npix; j++) {
        int64_t v = label_at(t, off + j);
        if (v > 0) {
            vals[m++] = v;
        }
    }
    qsort(vals, m, sizeof *vals, cmp_i64);
    size_t u = 0;
    for (size_t j = 0; j < m; j++) {
        if (u == 0 || vals[j] != vals[u - 1]) {
            vals[u++] = vals[j];
        }
    }
    for (int64_t j = 0; j < npix; j++) {
        int64_t v = label_at(t, off + j);
        if (v == 0) {
            out[j] = 0;
            continue;
        }
        const int64_t *hit = bsearch(&v, vals, u, sizeof *vals, cmp_i64);
        out[j] = (int32_t)(hit - vals) + 1;
    }
    free(vals);
    return (int64_t)u;
}

struct wm_batch {
    const struct sl_tensor *target;
    const struct sl_tensor *instances; /* NULL: connected components */
    const struct sl_weight_map_params *p;
    const struct wm_geom *g;
    int connectivity; /* resolved: 4, 8, 6 or 26 */
    float *out;
    int *rc; /* per image */
};

/* One image of the batch: mask, instance labels, map. */
static void batch_image(void *arg, int64_t i)
{
    const struct wm_batch *b = arg;
    const struct wm_geom *g = b->g;
    const int64_t P = g->pixels, off = i * P;
    uint8_t *mask_buf = NULL;
    const uint8_t *mask;
    int rc = SL_ENOMEM;
    if (b->target->dtype == SL_DT_U8 || b->target->dtype == SL_DT_BOOL) {
        mask = (const uint8_t *)b->target->data + off; /* validated 0/1 */
    } else {
        mask = mask_buf = malloc((size_t)P);
        if (!mask_buf) {
            goto out;
        }
        for (int64_t j = 0; j < P; j++) {
            mask_buf[j] = sl_tensor_get(b->target, off + j) != 0;
        }
    }
    int32_t *labels = malloc(sizeof(int32_t) * (size_t)P);
    if (!labels) {
        goto out;
    }
    int64_t n = b->instances ? sl__relabel(b->instances, off, P, labels)
                             : sl__label(mask, g->nd, g->shape, b->connectivity, labels);
    rc =
        n < 0 ? (int)n : sl__weight_map_image(mask, labels, n, g->nd, g->shape, b->p, b->out + off);
    free(labels);
out:
    free(mask_buf);
    b->rc[i] = rc;
}

int sl_weight_map(const struct sl_tensor *target, const struct sl_tensor *instances,
                  const struct sl_weight_map_params *p, struct sl_pool *pool, float *out, char *msg,
                  size_t msglen)
{
    struct wm_geom g;
    char ts[96], is[96];
    if (msglen) {
        msg[0] = '\0';
    }
    if (!target || !target->data) {
        snprintf(msg, msglen, "target: required");
        return SL_EINVAL;
    }
    if (instances && !instances->data) {
        instances = NULL;
    }
    int rc = check_params(p, msg, msglen);
    if (rc == 0) {
        rc = geometry(target, p, &g, msg, msglen);
    }
    if (rc == 0 && p->max_images > 0 && g.images > p->max_images) {
        snprintf(msg, msglen, "target has %lld images, over the limit of %lld (--max-images)",
                 (long long)g.images, (long long)p->max_images);
        rc = SL_ETOOLARGE;
    }
    if (rc == 0) {
        rc = check_dims(p, g.nd, msg, msglen);
    }
    if (rc) {
        return rc;
    }
    if (instances && !fits(instances, &g)) {
        sl_format_shape(instances->shape, instances->ndim, is, sizeof is);
        sl_format_shape(target->shape, target->ndim, ts, sizeof ts);
        snprintf(msg, msglen,
                 "instances: shape %s does not fit target %s (expected [N, *S] or [N, 1, *S] "
                 "with the target's N and spatial shape)",
                 is, ts);
        return SL_ESHAPE;
    }
    rc = check_target_values(target, msg, msglen);
    if (rc == 0 && instances) {
        rc = sl__check_instances(instances, msg, msglen);
    }
    if (rc) {
        return rc;
    }
    if (g.images <= 0 || g.pixels <= 0) {
        return 0;
    }
    int *rcs = calloc((size_t)g.images, sizeof *rcs);
    if (!rcs) {
        snprintf(msg, msglen, "out of memory for %lld images", (long long)g.images);
        return SL_ENOMEM;
    }
    struct wm_batch b = {target, instances, p, &g, 0, out, rcs};
    b.connectivity = p->connectivity ? p->connectivity : (g.nd == 2 ? 8 : 26);
    sl_pool_parallel_for(pool, g.images, batch_image, &b);
    for (int64_t i = 0; i < g.images && rc == 0; i++) {
        rc = rcs[i];
        if (rc) {
            snprintf(msg, msglen, "image %lld: %s", (long long)i, sl_strerror(rc));
        }
    }
    free(rcs);
    return rc;
}
