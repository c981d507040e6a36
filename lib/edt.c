/* edt.c - exact squared Euclidean distance transform (Felzenszwalb & Huttenlocher, "Distance
 * Transforms of Sampled Functions", Theory of Computing 8, 2012): the transform of a sampled
 * function is separable, so a 1-D transform (the lower envelope of the parabolas rooted at the
 * samples) is applied along each axis in turn. Seeds start at 0, every other pixel at +inf;
 * samples at +inf root no parabola, so a line without a finite sample stays +inf (no NaN). */
#include <math.h>
#include <stdlib.h>

#include "internal.h"

/* Lines of a strided axis gathered and transformed together: a block of adjacent lines reads
 * one cache line per position along the axis instead of one per element. */
#define SL_EDT_BLOCK 8

/* Scratch of the 1-D transform; d and f hold SL_EDT_BLOCK lines of the longest axis. */
struct edt_scratch {
    double *f;  /* input samples of the block's lines */
    double *d;  /* their transforms */
    double *z;  /* envelope boundaries, n + 1 */
    int64_t *v; /* envelope parabola vertices, n */
    double *r;  /* r[m] = 1 / (2 m sp) for the axis being transformed, n */
};

/* 1-D transform, F&H algorithm DT(f): d[q] = min_p ((q - p) * sp)^2 + f[p] over the finite
 * samples f[p]; all +inf when there is none. v and z are scratch of n and n + 1 entries; r is
 * the table of 1 / (2 m sp), m < n, that replaces a division per intersection. */
static void edt_1d(const double *f, int64_t n, double sp, const double *r, double *d, int64_t *v,
                   double *z)
{
    int64_t k = -1; /* index of the rightmost parabola of the envelope */
    for (int64_t q = 0; q < n; q++) {
        if (isinf(f[q])) {
            continue;
        }
        if (k < 0) {
            k = 0;
            v[0] = q;
            z[0] = -INFINITY;
            z[1] = INFINITY;
            continue;
        }
        /* Intersection of the parabolas rooted at q and p = v[k] (F&H eq. for s), written as
         * (f[q] - f[p]) / (2 (xq - xp)) + (xq + xp) / 2 to avoid the cancellation of xq^2 - xp^2.
         * Both samples are finite, so s is finite and z[0] = -inf ends the loop at k = 0. The
         * rounding of s only moves a boundary between two parabolas that are equal there, and
         * d below is always the exact value of a candidate parabola. */
        double s;
        for (;;) {
            int64_t p = v[k];
            s = (f[q] - f[p]) * r[q - p] + 0.5 * (double)(q + p) * sp;
            if (k == 0 || s > z[k]) {
                break;
            }
            k--;
        }
        k++;
        v[k] = q;
        z[k] = s;
        z[k + 1] = INFINITY;
    }
    if (k < 0) {
        for (int64_t q = 0; q < n; q++) {
            d[q] = INFINITY;
        }
        return;
    }
    k = 0;
    for (int64_t q = 0; q < n; q++) {
        double x = (double)q * sp;
        while (z[k + 1] < x) {
            k++;
        }
        double dx = (double)(q - v[k]) * sp;
        d[q] = dx * dx + f[v[k]];
    }
}

/* The 1-D transform of a 0/+inf line (seeds at 0): the envelope of parabolas of equal height
 * is, at each q, the parabola of the nearest seed, so each gap between seeds is filled from its
 * two ends without intersections. Same values as edt_1d on that line. */
static void edt_1d_seeds(const uint8_t *seed, int64_t n, double sp, double *d)
{
    int64_t prev = -1;
    for (int64_t q = 0; q <= n; q++) {
        if (q < n && !seed[q]) {
            continue;
        }
        if (prev < 0 && q == n) {
            for (int64_t j = 0; j < n; j++) {
                d[j] = INFINITY;
            }
            return;
        }
        int64_t lo = prev + 1;
        if (prev < 0) {
            for (int64_t j = lo; j < q; j++) {
                double dx = (double)(q - j) * sp;
                d[j] = dx * dx;
            }
        } else if (q == n) {
            for (int64_t j = lo; j < q; j++) {
                double dx = (double)(j - prev) * sp;
                d[j] = dx * dx;
            }
        } else {
            int64_t mid = prev + (q - prev) / 2; /* j <= mid is nearer prev (or tied) */
            for (int64_t j = lo; j <= mid; j++) {
                double dx = (double)(j - prev) * sp;
                d[j] = dx * dx;
            }
            for (int64_t j = mid + 1; j < q; j++) {
                double dx = (double)(q - j) * sp;
                d[j] = dx * dx;
            }
        }
        if (q < n) {
            d[q] = 0.0;
        }
        prev = q;
    }
}

/* One pass along an axis of length n and element stride st (> 1), over `outer` blocks of
 * n * st elements: lines are gathered SL_EDT_BLOCK at a time into contiguous rows. */
static void edt_pass_strided(double *out, int64_t outer, int64_t n, int64_t st, double sp,
                             struct edt_scratch *w)
{
    for (int64_t m = 1; m < n; m++) {
        w->r[m] = 1.0 / (2.0 * (double)m * sp);
    }
    for (int64_t o = 0; o < outer; o++) {
        double *base = out + o * n * st;
        for (int64_t i0 = 0; i0 < st; i0 += SL_EDT_BLOCK) {
            int64_t nb = st - i0 < SL_EDT_BLOCK ? st - i0 : SL_EDT_BLOCK;
            for (int64_t q = 0; q < n; q++) {
                const double *src = base + q * st + i0;
                for (int64_t b = 0; b < nb; b++) {
                    w->f[b * n + q] = src[b];
                }
            }
            for (int64_t b = 0; b < nb; b++) {
                edt_1d(w->f + b * n, n, sp, w->r, w->d + b * n, w->v, w->z);
            }
            for (int64_t q = 0; q < n; q++) {
                double *dst = base + q * st + i0;
                for (int64_t b = 0; b < nb; b++) {
                    dst[b] = w->d[b * n + q];
                }
            }
        }
    }
}

/* Writes the squared distances into out (caller-allocated, one double per pixel); scratch is
 * freed before returning. Returns 0, SL_ENOMEM, or SL_EINVAL for nd not 2 or 3. */
int sl__edt_sq(const uint8_t *seed, int nd, const int64_t *shape, const double *spacing,
               double *out)
{
    if (nd != 2 && nd != 3) {
        return SL_EINVAL;
    }
    int64_t total = 1, nmax = 0;
    for (int a = 0; a < nd; a++) {
        if (shape[a] < 0) {
            return SL_EINVAL;
        }
        total *= shape[a];
        nmax = shape[a] > nmax ? shape[a] : nmax;
    }
    if (total == 0) {
        return 0;
    }

    /* The last axis first, straight from the seeds: contiguous lines, no gather. */
    int64_t n = shape[nd - 1];
    double sp = spacing ? spacing[nd - 1] : 1.0;
    for (int64_t o = 0; o < total; o += n) {
        edt_1d_seeds(seed + o, n, sp, out + o);
    }
    if (n == total) {
        return 0;
    }

    struct edt_scratch w;
    size_t lines = (size_t)nmax * SL_EDT_BLOCK;
    w.f = malloc(sizeof(double) * lines);
    w.d = malloc(sizeof(double) * lines);
    w.z = malloc(sizeof(double) * ((size_t)nmax + 1));
    w.v = malloc(sizeof(int64_t) * (size_t)nmax);
    w.r = malloc(sizeof(double) * (size_t)nmax);
    int rc = 0;
    if (!w.f || !w.d || !w.z || !w.v || !w.r) {
        rc = SL_ENOMEM;
        goto out_free;
    }
    /* Then the strided axes, each on the result of the previous passes. */
    int64_t st = n;
    for (int a = nd - 2; a >= 0; a--) {
        n = shape[a];
        sp = spacing ? spacing[a] : 1.0;
        if (n > 1) { /* a line of one sample is its own transform */
            edt_pass_strided(out, total / (n * st), n, st, sp, &w);
        }
        st *= n;
    }

out_free:
    free(w.f);
    free(w.d);
    free(w.z);
    free(w.v);
    free(w.r);
    return rc;
}

/* Two raster passes (Rosenfeld & Pfaltz 1966; Borgefors 1986) with unit steps: the forward
 * pass takes each pixel's neighbours that precede it in raster order, the backward pass those
 * that follow; with the 8/26 neighbours (chessboard) or the 4/6 face neighbours (taxicab) this
 * is the exact L-infinity or L1 distance to the nearest seed. */
int sl__cdt(const uint8_t *seed, int nd, const int64_t *shape, int metric, double *out)
{
    if ((nd != 2 && nd != 3) || (metric != SL_DIST_CHESSBOARD && metric != SL_DIST_TAXICAB)) {
        return SL_EINVAL;
    }
    const int64_t D = nd == 3 ? shape[0] : 1, H = shape[nd - 2], W = shape[nd - 1];
    const int64_t total = D * H * W;
    for (int64_t i = 0; i < total; i++) {
        out[i] = seed[i] ? 0.0 : INFINITY;
    }
    /* the preceding neighbours: offsets whose first nonzero component is -1 */
    int off[13][3], no = 0;
    for (int dz = (nd == 3 ? -1 : 0); dz <= (nd == 3 ? 1 : 0); dz++) {
        for (int dy = -1; dy <= 1; dy++) {
            for (int dx = -1; dx <= 1; dx++) {
                int first = dz ? dz : dy ? dy : dx;
                int steps = (dz != 0) + (dy != 0) + (dx != 0);
                if (first != -1 || (metric == SL_DIST_TAXICAB && steps != 1)) {
                    continue;
                }
                off[no][0] = dz;
                off[no][1] = dy;
                off[no][2] = dx;
                no++;
            }
        }
    }
    for (int pass = 0; pass < 2; pass++) {
        const int sg = pass == 0 ? 1 : -1; /* backward: the following neighbours */
        for (int64_t k = 0; k < total; k++) {
            const int64_t i = pass == 0 ? k : total - 1 - k;
            const int64_t z = i / (H * W), y = i / W % H, x = i % W;
            double best = out[i];
            for (int o = 0; o < no; o++) {
                const int64_t nz = z + sg * off[o][0], ny = y + sg * off[o][1],
                              nx = x + sg * off[o][2];
                if (nz < 0 || nz >= D || ny < 0 || ny >= H || nx < 0 || nx >= W) {
                    continue;
                }
                best = fmin(best, out[(nz * H + ny) * W + nx] + 1.0);
            }
            out[i] = best;
        }
    }
    return 0;
}
