/* surface.c - surface-distance metrics of one plane: Hausdorff (maximum or a percentile, the
 * directed percentiles' maximum or the pooled percentile), ASSD and normalized surface Dice.
 *
 * Surfaces (README): mask XOR erosion(mask) with the cross element (4- or 6-connected), the
 * outside of the image counting as background (scipy binary_erosion with border_value 0, as
 * MONAI's get_mask_edges). Distances from each surface pixel to the nearest pixel of the other
 * surface come from one exact EDT per surface. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Marks the surface of mask into surf; returns its pixel count. */
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

/* Distances (sqrt of the EDT of `to`) at the pixels of `from`, appended to d. */
static int64_t gather(const uint8_t *from, const double *edt_sq, int64_t S, double *d)
{
    int64_t n = 0;
    for (int64_t i = 0; i < S; i++) {
        if (from[i]) {
            d[n++] = sqrt(edt_sq[i]);
        }
    }
    return n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* q-th percentile of d[0..n) with linear interpolation (numpy's default); sorts d. */
static double percentile(double *d, int64_t n, double q)
{
    qsort(d, (size_t)n, sizeof *d, cmp_double);
    double pos = q / 100.0 * (double)(n - 1);
    int64_t lo = (int64_t)floor(pos), hi = (int64_t)ceil(pos);
    return d[lo] + (d[hi] - d[lo]) * (pos - (double)lo);
}

static double max_of(const double *d, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        m = fmax(m, d[i]);
    }
    return m;
}

/* Value when exactly one mask is empty: empty_distance, default the image diagonal. */
static double one_empty(const struct sl_value *v, int nd, const int64_t *shape,
                        const double *spacing)
{
    if (v->kind == SL_V_ENUM) {
        return NAN; /* "nan" */
    }
    if (v->kind == SL_V_NUMBER) {
        return v->num;
    }
    double diag = 0;
    for (int a = 0; a < nd; a++) {
        double len = (double)shape[a] * (spacing ? spacing[a] : 1.0);
        diag += len * len;
    }
    return sqrt(diag);
}

/* Distances with a surface empty: 0 when both are, else the row's empty_distance. */
double sl__surf_empty_distance(const struct sl_spec *s, bool both, int nd, const int64_t *shape,
                               const double *spacing)
{
    int e = sl_param_index(s->def, "empty_distance");
    return both || e < 0 ? 0.0 : one_empty(&s->values[e], nd, shape, spacing);
}

/* NSD with a surface empty: 1 when both are, 0 when one is. */
double sl__surf_empty_nsd(const struct sl_spec *s, bool both, int nd, const int64_t *shape,
                          const double *spacing)
{
    (void)s;
    (void)nd;
    (void)shape;
    (void)spacing;
    return both ? 1.0 : 0.0;
}

/* Hausdorff: the maximum, a max of directed percentiles (MONAI) or a pooled one (MedPy). */
double sl__surf_hausdorff(const struct sl_spec *s, const double *d, int64_t np, int64_t nt,
                          double *tmp)
{
    const struct sl_value *q = &s->values[SL_P_HD_PERCENTILE];
    if (q->kind != SL_V_NUMBER) {
        return fmax(max_of(d, np), max_of(d + np, nt));
    }
    memcpy(tmp, d, sizeof(double) * (size_t)(np + nt));
    if (s->values[SL_P_HD_POOLING].choice == SL_POOL_POOLED) {
        return percentile(tmp, np + nt, q->num);
    }
    double a = percentile(tmp, np, q->num);
    return fmax(a, percentile(tmp + np, nt, q->num));
}

/* ASSD: the mean of both directions' distances together (MONAI symmetric, MedPy). */
double sl__surf_assd(const struct sl_spec *s, const double *d, int64_t np, int64_t nt, double *tmp)
{
    (void)s;
    (void)tmp;
    double sum = 0;
    for (int64_t i = 0; i < np + nt; i++) {
        sum += d[i];
    }
    return sum / (double)(np + nt);
}

/* NSD (Nikolov et al. 2021): the share of both surfaces within tolerance of the other. */
double sl__surf_nsd(const struct sl_spec *s, const double *d, int64_t np, int64_t nt, double *tmp)
{
    (void)tmp;
    double tol = s->values[SL_P_NSD_TOLERANCE].num;
    int64_t within = 0;
    for (int64_t i = 0; i < np + nt; i++) {
        within += d[i] <= tol;
    }
    return (double)within / (double)(np + nt);
}

int sl__surface_metrics(const uint8_t *pred, const uint8_t *tgt, int nd, const int64_t *shape,
                        const double *spacing, const struct sl_spec *const *specs, int n,
                        double *vals)
{
    int64_t S = 1;
    for (int a = 0; a < nd; a++) {
        S *= shape[a];
    }
    int rc = SL_ENOMEM;
    uint8_t *sp = malloc((size_t)S), *st = malloc((size_t)S);
    double *edt = malloc(sizeof(double) * (size_t)S);
    double *d = malloc(sizeof(double) * (size_t)(2 * S)), *tmp = NULL;
    if (!sp || !st || !edt || !d) {
        goto out;
    }
    int64_t np = surface(pred, nd, shape, sp), nt = surface(tgt, nd, shape, st);
    if (np == 0 || nt == 0) {
        /* both empty: distance 0, NSD 1; one empty: empty_distance, NSD 0 */
        for (int k = 0; k < n; k++) {
            const struct sl_spec *s = specs[k];
            vals[k] = s->def->kernel->surface_empty(s, np == 0 && nt == 0, nd, shape, spacing);
        }
        rc = 0;
        goto out;
    }
    /* d[0..np): pred surface to target surface; d[np..np+nt): target to prediction */
    if ((rc = sl__edt_sq(st, nd, shape, spacing, edt)) != 0) {
        goto out;
    }
    gather(sp, edt, S, d);
    if ((rc = sl__edt_sq(sp, nd, shape, spacing, edt)) != 0) {
        goto out;
    }
    gather(st, edt, S, d + np);
    tmp = malloc(sizeof(double) * (size_t)(np + nt));
    if (!tmp) {
        rc = SL_ENOMEM;
        goto out;
    }
    for (int k = 0; k < n; k++) {
        const struct sl_spec *s = specs[k];
        vals[k] = s->def->kernel->surface(s, d, np, nt, tmp);
    }
    rc = 0;
out:
    free(sp);
    free(st);
    free(edt);
    free(d);
    free(tmp);
    return rc;
}
