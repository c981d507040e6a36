/* surface.c - surface-distance metrics of one plane: Hausdorff (maximum or a percentile, the
 * directed percentiles' maximum or the pooled percentile, or one direction), ASSD (both
 * directions or one), normalized surface Dice, DeepMind's surface Dice and surface overlap.
 *
 * Two kinds of surface (README):
 * - boundary voxels (MONAI get_mask_edges without subvoxels): mask XOR erosion(mask) with the
 *   cross element (4- or 6-connected), the outside of the image counting as background (scipy
 *   binary_erosion with border_value 0); every boundary voxel counts 1;
 * - surfels (DeepMind surface-distance compute_surface_distances; MONAI use_subvoxels=True):
 *   the corners of the voxel grid, (n + 1) per axis, whose 2^nd neighbouring voxels are
 *   neither all inside nor all outside; each carries the length (2-D) or area (3-D) of the
 *   marching-squares/cubes surface through its neighbourhood (sl__surfel_table).
 * Distances from each element to the nearest element of the other surface come from one
 * distance transform per surface: the exact EDT (euclidean, in spacing units) or a chamfer
 * transform (chessboard, taxicab: in pixels, as MONAI's distance_transform_cdt, which ignores
 * the spacing). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Marks the boundary voxels of mask into surf; returns their count. */
static int64_t surface(const uint8_t *mask, int nd, const int64_t *shape, uint8_t *surf)
{
    const int64_t D = nd == 3 ? shape[0] : 1, H = shape[nd - 2], W = shape[nd - 1];
    int64_t n = 0;
    for (int64_t z = 0; z < D; z++) {
        for (int64_t y = 0; y < H; y++) {
            for (int64_t x = 0; x < W; x++) {
                int64_t i = (z * H + y) * W + x;
                uint8_t s = 0;
                if (mask[i]) {
                    /* on the surface when a cross neighbour is background or outside */
                    s = x == 0 || x == W - 1 || y == 0 || y == H - 1 || !mask[i - 1] ||
                        !mask[i + 1] || !mask[i - W] || !mask[i + W];
                    if (!s && nd == 3) {
                        s = z == 0 || z == D - 1 || !mask[i - H * W] || !mask[i + H * W];
                    }
                }
                surf[i] = s;
                n += s;
            }
        }
    }
    return n;
}

/* ---- surfels: the marching-squares/cubes length or area of each neighbourhood code ----
 *
 * A corner's code has one bit per neighbouring voxel at offset (a, b, c) in {0, 1}^3 from the
 * corner's lower neighbour (voxel (z-1, y-1, x-1)): bit 7 - (4a + 2b + c) in 3-D, 3 - (2b + c)
 * in 2-D (DeepMind's ENCODE_NEIGHBOURHOOD kernels). The surface through the cell joins the
 * midpoints of the cell's edges whose two ends differ: on each face with two such edges one
 * segment; on a face with four (diagonal corners alike) one segment around each inside
 * corner. In 3-D a code with more than four inside corners takes the surface of its
 * complement (the classic marching-cubes table's symmetry); the segments close into loops,
 * and each loop is cut into the triangles of largest total area at unit spacing, whose areas
 * are then measured at the given spacing. This rule gives, for all 256 codes and for several
 * anisotropic spacings, the areas of DeepMind's lookup_tables.py (checked outside the
 * repository; the golden cases surface_dice_* hold its results). */

#define SL_CELL_MAXV 12 /* points of a loop: at most the cell's 12 edge midpoints */

/* Whether corner p (coordinates 0/1 per axis) of a cell is inside for code. */
static int corner_in(unsigned code, int nd, const int *p)
{
    int bit = nd == 3 ? 7 - (4 * p[0] + 2 * p[1] + p[2]) : 3 - (2 * p[0] + p[1]);
    return (code >> bit) & 1;
}

/* Area of the triangle of points a, b, c (half units) at spacing sp. */
static double tri_area(const int *a, const int *b, const int *c, const double *sp)
{
    double u[3], v[3];
    for (int k = 0; k < 3; k++) {
        u[k] = (b[k] - a[k]) * 0.5 * sp[k];
        v[k] = (c[k] - a[k]) * 0.5 * sp[k];
    }
    double x = u[1] * v[2] - u[2] * v[1], y = u[2] * v[0] - u[0] * v[2],
           z = u[0] * v[1] - u[1] * v[0];
    return 0.5 * sqrt(x * x + y * y + z * z);
}

/* Area at sp of the triangles of chain v[i..j] that split[][] chose. */
static double chain_area(int (*v)[3], int split[][SL_CELL_MAXV], int i, int j, const double *sp)
{
    if (j - i < 2) {
        return 0;
    }
    int k = split[i][j];
    return chain_area(v, split, i, k, sp) + chain_area(v, split, k, j, sp) +
           tri_area(v[i], v[k], v[j], sp);
}

/* Area at sp of loop v[0..n): the triangulation of largest area at unit spacing (dynamic
 * programming: the triangle on edge (i, j) has its apex k between them). */
static double loop_area(int (*v)[3], int n, const double *sp)
{
    static const double unit[3] = {1, 1, 1};
    double best[SL_CELL_MAXV][SL_CELL_MAXV] = {{0}};
    int split[SL_CELL_MAXV][SL_CELL_MAXV] = {{0}};
    for (int len = 2; len < n; len++) {
        for (int i = 0; i + len < n; i++) {
            int j = i + len;
            best[i][j] = -1;
            for (int k = i + 1; k < j; k++) {
                double a = best[i][k] + best[k][j] + tri_area(v[i], v[k], v[j], unit);
                if (a > best[i][j]) {
                    best[i][j] = a;
                    split[i][j] = k;
                }
            }
        }
    }
    return chain_area(v, split, 0, n - 1, sp);
}

/* Length (2-D) or area (3-D) at sp of the surface of code in one cell. */
static double code_area(unsigned code, int nd, const double *sp)
{
    const unsigned full = nd == 3 ? 255u : 15u;
    if (code == 0 || code == full) {
        return 0;
    }
    if (nd == 3 && __builtin_popcount(code) > 4) {
        code = full ^ code;
    }
    /* the faces: (axis, side) in 3-D, the cell itself in 2-D; corners in cyclic order */
    static const int cyc[4][2] = {{0, 0}, {0, 1}, {1, 1}, {1, 0}};
    int seg[12][2][3], ns = 0;
    const int nfaces = nd == 3 ? 6 : 1;
    for (int f = 0; f < nfaces; f++) {
        int ax = f / 2, side = f % 2, o0 = nd == 3 ? (ax == 0 ? 1 : 0) : 0,
            o1 = nd == 3 ? (ax == 2 ? 1 : 2) : 1;
        int pc[4][3], in[4];
        for (int k = 0; k < 4; k++) {
            memset(pc[k], 0, sizeof pc[k]);
            if (nd == 3) {
                pc[k][ax] = side;
            }
            pc[k][o0] = cyc[k][0];
            pc[k][o1] = cyc[k][1];
            in[k] = corner_in(code, nd, pc[k]);
        }
        int ch[4], nch = 0;
        for (int k = 0; k < 4; k++) {
            if (in[k] != in[(k + 1) % 4]) {
                ch[nch++] = k;
            }
        }
        /* the segment (k0 to k0+1 edge) - (k1 to k1+1 edge), points in half units */
        int pairs[2][2], np = 0;
        if (nch == 2) {
            pairs[np][0] = ch[0];
            pairs[np++][1] = ch[1];
        } else if (nch == 4) {
            for (int k = 0; k < 4; k++) {
                if (in[k]) { /* around inside corner k: edges (k-1, k) and (k, k+1) */
                    pairs[np][0] = (k + 3) % 4;
                    pairs[np++][1] = k;
                }
            }
        }
        for (int q = 0; q < np; q++) {
            for (int e = 0; e < 2; e++) {
                int k = pairs[q][e];
                for (int a = 0; a < 3; a++) {
                    seg[ns][e][a] = pc[k][a] + pc[(k + 1) % 4][a];
                }
            }
            ns++;
        }
    }
    double total = 0;
    if (nd == 2) {
        for (int q = 0; q < ns; q++) {
            double dy = (seg[q][1][0] - seg[q][0][0]) * 0.5 * sp[0];
            double dx = (seg[q][1][1] - seg[q][0][1]) * 0.5 * sp[1];
            total += sqrt(dy * dy + dx * dx);
        }
        return total;
    }
    /* 3-D: join the segments into loops (every midpoint ends exactly two segments) */
    bool used[12] = {false};
    for (int start = 0; start < ns; start++) {
        if (used[start]) {
            continue;
        }
        int v[SL_CELL_MAXV][3], n = 0, cur = start, end = 1;
        used[start] = true;
        memcpy(v[n++], seg[start][0], sizeof v[0]);
        for (;;) {
            const int *p = seg[cur][end];
            if (memcmp(p, v[0], sizeof v[0]) == 0 || n == SL_CELL_MAXV) {
                break;
            }
            memcpy(v[n++], p, sizeof v[0]);
            int next = -1, nend = 0;
            for (int q = 0; q < ns && next < 0; q++) {
                if (used[q]) {
                    continue;
                }
                for (int e = 0; e < 2; e++) {
                    if (memcmp(seg[q][e], p, sizeof v[0]) == 0) {
                        next = q;
                        nend = 1 - e;
                        break;
                    }
                }
            }
            if (next < 0) {
                break;
            }
            used[next] = true;
            cur = next;
            end = nend;
        }
        total += loop_area(v, n, sp);
    }
    return total;
}

void sl__surfel_table(int nd, const double *spacing, double *table)
{
    double sp[3] = {1, 1, 1};
    for (int a = 0; a < nd && spacing; a++) {
        sp[a] = spacing[a];
    }
    const unsigned ncodes = nd == 3 ? 256u : 16u;
    for (unsigned c = 0; c < ncodes; c++) {
        table[c] = code_area(c, nd, sp);
    }
}

/* Writes the neighbourhood code of every corner of mask's corner grid (shape + 1 per axis)
 * into code and marks the surface corners (neither all inside nor all outside) in surf;
 * returns their count. */
static int64_t corner_codes(const uint8_t *mask, int nd, const int64_t *shape, uint8_t *code,
                            uint8_t *surf)
{
    const int64_t D = nd == 3 ? shape[0] : 1, H = shape[nd - 2], W = shape[nd - 1];
    const int64_t Dc = nd == 3 ? D + 1 : 1, Hc = H + 1, Wc = W + 1;
    const unsigned full = nd == 3 ? 255u : 15u;
    int64_t n = 0;
    for (int64_t zc = 0; zc < Dc; zc++) {
        for (int64_t yc = 0; yc < Hc; yc++) {
            for (int64_t xc = 0; xc < Wc; xc++) {
                unsigned v = 0;
                for (int a = 0; a < (nd == 3 ? 2 : 1); a++) {
                    int64_t z = nd == 3 ? zc - 1 + a : 0;
                    for (int b = 0; b < 2; b++) {
                        int64_t y = yc - 1 + b;
                        for (int c = 0; c < 2; c++) {
                            int64_t x = xc - 1 + c;
                            if (z < 0 || z >= D || y < 0 || y >= H || x < 0 || x >= W ||
                                !mask[(z * H + y) * W + x]) {
                                continue;
                            }
                            v |= 1u << (nd == 3 ? 7 - (4 * a + 2 * b + c) : 3 - (2 * b + c));
                        }
                    }
                }
                int64_t i = (zc * Hc + yc) * Wc + xc;
                code[i] = (uint8_t)v;
                surf[i] = v != 0 && v != full;
                n += surf[i];
            }
        }
    }
    return n;
}

/* ---- distances ---- */

/* Distances of the surfaces of one kind under one distance metric (struct sl__surf_in's d, w,
 * np, nt and tmp; all owned here, freed by dset_free). */
struct dset {
    double *d, *w, *tmp;
    int64_t np, nt;
};

static void dset_free(struct dset *ds)
{
    free(ds->d);
    free(ds->w);
    free(ds->tmp);
}

/* The distance map of the seeds of grid g: squared euclidean (*squared set) or chamfer. */
static int distance_map(const uint8_t *seed, int nd, const int64_t *g, const double *spacing,
                        int metric, double *map, bool *squared)
{
    *squared = metric == SL_DIST_EUCLIDEAN;
    return *squared ? sl__edt_sq(seed, nd, g, spacing, map) : sl__cdt(seed, nd, g, metric, map);
}

/* Distances of map at the marked elements of from (in raster order), appended to d. */
static int64_t gather(const uint8_t *from, const double *map, bool squared, int64_t S, double *d)
{
    int64_t n = 0;
    for (int64_t i = 0; i < S; i++) {
        if (from[i]) {
            d[n++] = squared ? sqrt(map[i]) : map[i];
        }
    }
    return n;
}

/* The surfaces (boundary voxels, or surfels with their areas) of pred and tgt and their
 * distances under metric, into ds. Returns 0 or SL_ENOMEM (ds is then still freeable). */
static int build(const uint8_t *pred, const uint8_t *tgt, int nd, const int64_t *shape,
                 const double *spacing, bool surfels, int metric, struct dset *ds)
{
    int64_t g[3], G = 1;
    for (int a = 0; a < nd; a++) {
        g[a] = shape[a] + (surfels ? 1 : 0);
        G *= g[a];
    }
    int rc = SL_ENOMEM;
    uint8_t *sp = malloc((size_t)G), *st = malloc((size_t)G);
    uint8_t *cp = surfels ? malloc((size_t)G) : NULL, *ct = surfels ? malloc((size_t)G) : NULL;
    double *map = NULL;
    if (!sp || !st || (surfels && (!cp || !ct))) {
        goto out;
    }
    if (surfels) {
        ds->np = corner_codes(pred, nd, shape, cp, sp);
        ds->nt = corner_codes(tgt, nd, shape, ct, st);
    } else {
        ds->np = surface(pred, nd, shape, sp);
        ds->nt = surface(tgt, nd, shape, st);
    }
    const int64_t n = ds->np + ds->nt;
    ds->d = malloc(sizeof(double) * (size_t)(n + 1));
    ds->tmp = malloc(sizeof(double) * (size_t)(2 * n + 2));
    ds->w = surfels ? malloc(sizeof(double) * (size_t)(n + 1)) : NULL;
    if (!ds->d || !ds->tmp || (surfels && !ds->w)) {
        goto out;
    }
    if (ds->np == 0 || ds->nt == 0) {
        /* the other surface is empty: every distance is +inf (the empty rules decide) */
        for (int64_t i = 0; i < n; i++) {
            ds->d[i] = INFINITY;
        }
    } else {
        map = malloc(sizeof(double) * (size_t)G);
        bool sq;
        if (!map) {
            goto out;
        }
        /* d[0..np): prediction to target; d[np..np+nt): target to prediction */
        if ((rc = distance_map(st, nd, g, spacing, metric, map, &sq)) != 0) {
            goto out;
        }
        gather(sp, map, sq, G, ds->d);
        if ((rc = distance_map(sp, nd, g, spacing, metric, map, &sq)) != 0) {
            goto out;
        }
        gather(st, map, sq, G, ds->d + ds->np);
    }
    if (surfels) {
        double table[256];
        sl__surfel_table(nd, spacing, table);
        int64_t k = 0;
        for (int64_t i = 0; i < G; i++) {
            if (sp[i]) {
                ds->w[k++] = table[cp[i]];
            }
        }
        for (int64_t i = 0; i < G; i++) {
            if (st[i]) {
                ds->w[k++] = table[ct[i]];
            }
        }
    }
    rc = 0;
out:
    free(sp);
    free(st);
    free(cp);
    free(ct);
    free(map);
    return rc;
}

/* ---- the metrics ---- */

/* The choice of s's enum parameter name, or dflt when the row has none. */
static int choice(const struct sl_spec *s, const char *name, int dflt)
{
    int i = sl_param_index(s->def, name);
    return i >= 0 && s->values[i].kind == SL_V_ENUM ? s->values[i].choice : dflt;
}

/* The tolerance of class cls: the number, or the class's entry of the list. */
static double tolerance(const struct sl_spec *s, int64_t cls)
{
    const struct sl_value *v = &s->values[sl_param_index(s->def, "tolerance")];
    return v->kind == SL_V_LIST ? v->list[cls < v->nlist ? cls : 0] : v->num;
}

/* The elements [*lo, *hi) of direction dir. */
static void dir_range(int dir, const struct sl__surf_in *in, int64_t *lo, int64_t *hi)
{
    *lo = dir == SL_DIR_TARGET_TO_PRED ? in->np : 0;
    *hi = dir == SL_DIR_PRED_TO_TARGET ? in->np : in->np + in->nt;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* (distance, area) pairs in increasing order of distance, then area. */
static int cmp_pair(const void *a, const void *b)
{
    const double *x = a, *y = b;
    int c = (x[0] > y[0]) - (x[0] < y[0]);
    return c ? c : (x[1] > y[1]) - (x[1] < y[1]);
}

/* q-th percentile of d[0..n) with linear interpolation (numpy's default); sorts d. */
static double percentile(double *d, int64_t n, double q)
{
    qsort(d, (size_t)n, sizeof *d, cmp_double);
    double pos = q / 100.0 * (double)(n - 1);
    int64_t lo = (int64_t)floor(pos), hi = (int64_t)ceil(pos);
    return d[lo] + (d[hi] - d[lo]) * (pos - (double)lo);
}

/* DeepMind's area-weighted percentile (compute_robust_hausdorff) of elements [lo, hi): in
 * increasing distance, the first whose cumulated area share reaches q / 100 (the last if
 * none does). tmp: 2 (hi - lo) doubles. */
static double wpercentile(const struct sl__surf_in *in, int64_t lo, int64_t hi, double q,
                          double *tmp)
{
    const int64_t n = hi - lo;
    double total = 0;
    for (int64_t i = 0; i < n; i++) {
        tmp[2 * i] = in->d[lo + i];
        tmp[2 * i + 1] = in->w[lo + i];
        total += in->w[lo + i];
    }
    qsort(tmp, (size_t)n, 2 * sizeof *tmp, cmp_pair);
    double cum = 0;
    for (int64_t i = 0; i < n; i++) {
        cum += tmp[2 * i + 1];
        if (cum / total >= q / 100.0) {
            return tmp[2 * i];
        }
    }
    return tmp[2 * (n - 1)];
}

static double max_of(const double *d, int64_t lo, int64_t hi)
{
    double m = 0;
    for (int64_t i = lo; i < hi; i++) {
        m = fmax(m, d[i]);
    }
    return m;
}

/* Value when exactly one mask is empty under the segloss rule: empty_distance, default the
 * image diagonal. */
static double one_empty(const struct sl_value *v, const struct sl__surf_in *in)
{
    if (v->kind == SL_V_ENUM) {
        return NAN; /* "nan" */
    }
    if (v->kind == SL_V_NUMBER) {
        return v->num;
    }
    double diag = 0;
    for (int a = 0; a < in->nd; a++) {
        double len = (double)in->shape[a] * (in->spacing ? in->spacing[a] : 1.0);
        diag += len * len;
    }
    return sqrt(diag);
}

/* What a metric is, for the empty rules. */
enum surf_kind { K_HD, K_ASSD, K_SCORE, K_OVERLAP };

/* The value with a surface empty (in->np == 0 or in->nt == 0) under s's empty_rule:
 * - both empty: segloss 0 (distances) or 1 (scores), NaN when the request's empty is "nan";
 *   MONAI NaN (monai/metrics/hausdorff_distance.py, surface_distance.py, surface_dice.py);
 *   DeepMind Hausdorff +inf, the rest NaN (surface_distance/metrics.py);
 * - one empty: segloss empty_distance (distances) or 0 (scores); MONAI +inf for distances
 *   (get_surface_distance's inf distances), 0 for the surface Dice; DeepMind +inf for
 *   Hausdorff, for ASSD +inf toward the empty surface and NaN (0 / 0) from it, 0 for the
 *   surface Dice, and for an overlap 0 toward the empty surface and NaN from it. */
static double empty_value(const struct sl_spec *s, const struct sl__surf_in *in,
                          enum surf_kind kind, int dir)
{
    const int rule = choice(s, "empty_rule", SL_EMPTY_RULE_SEGLOSS);
    const bool both = in->np == 0 && in->nt == 0;
    const bool from_empty = (dir == SL_DIR_PRED_TO_TARGET && in->np == 0) ||
                            (dir == SL_DIR_TARGET_TO_PRED && in->nt == 0);
    const bool distance = kind == K_HD || kind == K_ASSD;
    if (both) {
        if (rule == SL_EMPTY_RULE_SEGLOSS) {
            return in->empty == SL_EMPTY_NAN ? NAN : distance ? 0.0 : 1.0;
        }
        return rule == SL_EMPTY_RULE_DEEPMIND && kind == K_HD ? INFINITY : NAN;
    }
    switch (kind) {
    case K_HD:
    case K_ASSD:
        if (rule == SL_EMPTY_RULE_MONAI) {
            return INFINITY;
        }
        if (rule == SL_EMPTY_RULE_DEEPMIND) {
            return kind == K_ASSD && from_empty ? NAN : INFINITY;
        }
        return one_empty(&s->values[sl_param_index(s->def, "empty_distance")], in);
    case K_SCORE:
        return 0.0;
    case K_OVERLAP:
        return rule != SL_EMPTY_RULE_SEGLOSS && from_empty ? NAN : 0.0;
    }
    return NAN;
}

/* Hausdorff: the maximum, a max of directed percentiles (MONAI, DeepMind), a pooled one
 * (MedPy), or one direction's (MONAI directed=True); surfels weigh by area (DeepMind). */
double sl__surf_hausdorff(const struct sl_spec *s, const struct sl__surf_in *in)
{
    const int dir = s->values[SL_P_HD_DIRECTION].choice;
    if (in->np == 0 || in->nt == 0) {
        return empty_value(s, in, K_HD, dir);
    }
    int64_t lo, hi;
    dir_range(dir, in, &lo, &hi);
    const struct sl_value *q = &s->values[SL_P_HD_PERCENTILE];
    if (q->kind != SL_V_NUMBER) {
        return max_of(in->d, lo, hi);
    }
    const bool pooled = s->values[SL_P_HD_POOLING].choice == SL_POOL_POOLED;
    if (in->w) {
        if (dir != SL_DIR_SYMMETRIC || pooled) {
            return wpercentile(in, lo, hi, q->num, in->tmp);
        }
        return fmax(wpercentile(in, 0, in->np, q->num, in->tmp),
                    wpercentile(in, in->np, in->np + in->nt, q->num, in->tmp));
    }
    memcpy(in->tmp, in->d + lo, sizeof(double) * (size_t)(hi - lo));
    if (dir != SL_DIR_SYMMETRIC || pooled) {
        return percentile(in->tmp, hi - lo, q->num);
    }
    double a = percentile(in->tmp, in->np, q->num);
    return fmax(a, percentile(in->tmp + in->np, in->nt, q->num));
}

/* ASSD: the mean of both directions' distances together (MONAI symmetric, MedPy), or of one
 * direction (MONAI symmetric=False, DeepMind compute_average_surface_distance); surfels weigh
 * by area. */
double sl__surf_assd(const struct sl_spec *s, const struct sl__surf_in *in)
{
    const int dir = s->values[SL_P_ASSD_DIRECTION].choice;
    if (in->np == 0 || in->nt == 0) {
        return empty_value(s, in, K_ASSD, dir);
    }
    int64_t lo, hi;
    dir_range(dir, in, &lo, &hi);
    double sum = 0, den = 0;
    for (int64_t i = lo; i < hi; i++) {
        double w = in->w ? in->w[i] : 1.0;
        sum += w * in->d[i];
        den += w;
    }
    return sum / den;
}

/* The share (by count, or by area for surfels) of elements [lo, hi) within tol. */
static double within(const struct sl__surf_in *in, int64_t lo, int64_t hi, double tol)
{
    double num = 0, den = 0;
    for (int64_t i = lo; i < hi; i++) {
        double w = in->w ? in->w[i] : 1.0;
        den += w;
        if (in->d[i] <= tol) {
            num += w;
        }
    }
    return num / den;
}

/* NSD (Nikolov et al. 2021) on boundary voxels: the share of both surfaces within tolerance. */
double sl__surf_nsd(const struct sl_spec *s, const struct sl__surf_in *in)
{
    if (in->np == 0 || in->nt == 0) {
        return empty_value(s, in, K_SCORE, SL_DIR_SYMMETRIC);
    }
    return within(in, 0, in->np + in->nt, tolerance(s, in->cls));
}

/* DeepMind compute_surface_dice_at_tolerance: the same share on surfels, weighed by area. */
double sl__surf_dice(const struct sl_spec *s, const struct sl__surf_in *in)
{
    if (in->np == 0 || in->nt == 0) {
        return empty_value(s, in, K_SCORE, SL_DIR_SYMMETRIC);
    }
    return within(in, 0, in->np + in->nt, tolerance(s, in->cls));
}

/* DeepMind compute_surface_overlap_at_tolerance: one direction's share (symmetric: both
 * surfaces', the surface Dice). */
double sl__surf_overlap(const struct sl_spec *s, const struct sl__surf_in *in)
{
    const int dir = s->values[SL_P_SOVL_DIRECTION].choice;
    if (in->np == 0 || in->nt == 0) {
        return empty_value(s, in, K_OVERLAP, dir);
    }
    int64_t lo, hi;
    dir_range(dir, in, &lo, &hi);
    return within(in, lo, hi, tolerance(s, in->cls));
}

bool sl_metric_can_be_infinite(const struct sl_spec *spec)
{
    const struct sl__kernel *k = spec->def->kernel;
    if (!k || (k->surface != sl__surf_hausdorff && k->surface != sl__surf_assd)) {
        return false;
    }
    return choice(spec, "empty_rule", SL_EMPTY_RULE_SEGLOSS) != SL_EMPTY_RULE_SEGLOSS;
}

/* Whether spec measures surfels rather than boundary voxels. */
static bool wants_surfels(const struct sl_spec *s)
{
    const struct sl__kernel *k = s->def->kernel;
    return k->surface == sl__surf_dice || k->surface == sl__surf_overlap ||
           choice(s, "surfaces", SL_SURF_VOXELS) == SL_SURF_SURFELS;
}

int sl__surface_metrics(const uint8_t *pred, const uint8_t *tgt, int nd, const int64_t *shape,
                        const double *spacing, int64_t cls, enum sl_empty empty,
                        const struct sl_spec *const *specs, int n, double *vals)
{
    /* one set of distances per (surface kind, distance metric) some spec asks for */
    struct dset sets[6];
    bool built[6] = {false};
    memset(sets, 0, sizeof sets);
    int rc = 0;
    for (int k = 0; k < n; k++) {
        const struct sl_spec *s = specs[k];
        const bool surfels = wants_surfels(s);
        const int metric = choice(s, "distance_metric", SL_DIST_EUCLIDEAN);
        const int slot = (surfels ? 3 : 0) + metric;
        if (!built[slot]) {
            built[slot] = true;
            if ((rc = build(pred, tgt, nd, shape, spacing, surfels, metric, &sets[slot])) != 0) {
                goto out;
            }
        }
        const struct dset *ds = &sets[slot];
        const struct sl__surf_in in = {.d = ds->d,
                                       .w = ds->w,
                                       .np = ds->np,
                                       .nt = ds->nt,
                                       .tmp = ds->tmp,
                                       .cls = cls,
                                       .empty = empty,
                                       .nd = nd,
                                       .shape = shape,
                                       .spacing = spacing};
        vals[k] = s->def->kernel->surface(s, &in);
    }
out:
    for (int k = 0; k < 6; k++) {
        dset_free(&sets[k]);
    }
    return rc;
}
