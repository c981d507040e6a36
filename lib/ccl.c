/* ccl.c - connected-component labelling in two raster passes with union-find (union by rank,
 * path halving): the first pass gives each pixel the provisional label of an earlier neighbour
 * (or a new one) and unites the labels of its other earlier neighbours; the final labels number
 * the components in raster order of their first pixel, as skimage.measure.label does. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Root of label x, halving the path on the way. */
static int32_t uf_find(int32_t *parent, int32_t x)
{
    while (parent[x] != x) {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    return x;
}

static void uf_union(int32_t *parent, uint8_t *rank, int32_t a, int32_t b)
{
    a = uf_find(parent, a);
    b = uf_find(parent, b);
    if (a == b) {
        return;
    }
    if (rank[a] < rank[b]) {
        parent[a] = b;
    } else if (rank[a] > rank[b]) {
        parent[b] = a;
    } else {
        parent[b] = a;
        rank[a]++;
    }
}

/* A neighbour that comes earlier in raster order: its step along each axis and flat offset. */
struct nbr {
    int dz, dy, dx;
    int64_t off;
};

/* Labels into out (caller-allocated, one int32 per pixel); scratch is freed before returning.
 * Returns the number of components, SL_ENOMEM, or SL_EINVAL (connectivity not valid for nd, or
 * 2^31 - 1 foreground pixels or more, which int32 labels cannot number). */
int64_t sl__label(const uint8_t *mask, int nd, const int64_t *shape, int connectivity, int32_t *out)
{
    bool full;
    if (nd == 2 && (connectivity == 4 || connectivity == 8)) {
        full = connectivity == 8;
    } else if (nd == 3 && (connectivity == 6 || connectivity == 26)) {
        full = connectivity == 26;
    } else {
        return SL_EINVAL;
    }
    /* 2-D is a 3-D grid of depth 1. */
    int64_t D = nd == 3 ? shape[0] : 1, H = shape[nd - 2], W = shape[nd - 1];
    if (D < 0 || H < 0 || W < 0) {
        return SL_EINVAL;
    }
    int64_t total = D * H * W, nfg = 0;
    for (int64_t i = 0; i < total; i++) {
        nfg += mask[i] != 0;
    }
    if (nfg == 0) {
        memset(out, 0, sizeof(int32_t) * (size_t)total);
        return 0;
    }
    if (nfg >= INT32_MAX) {
        return SL_EINVAL; /* labels are int32 */
    }

    /* The half of the neighbourhood before the centre in raster order (lexicographically
     * negative offsets); face neighbours only (one nonzero component) for 4 and 6. */
    struct nbr nb[13];
    int nnb = 0;
    for (int dz = -1; dz <= 0; dz++) {
        for (int dy = -1; dy <= 1; dy++) {
            for (int dx = -1; dx <= 1; dx++) {
                bool before = dz < 0 || (dz == 0 && (dy < 0 || (dy == 0 && dx < 0)));
                int nonzero = (dz != 0) + (dy != 0) + (dx != 0);
                if (!before || (!full && nonzero != 1) || (nd == 2 && dz != 0)) {
                    continue;
                }
                nb[nnb].dz = dz;
                nb[nnb].dy = dy;
                nb[nnb].dx = dx;
                nb[nnb].off = (dz * H + dy) * W + dx;
                nnb++;
            }
        }
    }

    int32_t *parent = malloc(sizeof(int32_t) * ((size_t)nfg + 1));
    uint8_t *rank = calloc((size_t)nfg + 1, 1);
    if (!parent || !rank) {
        free(parent);
        free(rank);
        return SL_ENOMEM;
    }

    /* Pass 1: out holds provisional labels (0 on background), so earlier pixels read from it. */
    int32_t nlab = 0;
    int64_t i = 0;
    for (int64_t z = 0; z < D; z++) {
        for (int64_t y = 0; y < H; y++) {
            for (int64_t x = 0; x < W; x++, i++) {
                if (!mask[i]) {
                    out[i] = 0;
                    continue;
                }
                int32_t lab = 0;
                for (int k = 0; k < nnb; k++) {
                    const struct nbr *e = &nb[k];
                    if ((e->dz < 0 && z == 0) || (e->dy < 0 && y == 0) ||
                        (e->dy > 0 && y == H - 1) || (e->dx < 0 && x == 0) ||
                        (e->dx > 0 && x == W - 1)) {
                        continue;
                    }
                    int32_t l = out[i + e->off];
                    if (l == 0) {
                        continue;
                    }
                    if (lab == 0) {
                        lab = l;
                    } else if (l != lab) {
                        uf_union(parent, rank, lab, l);
                    }
                }
                if (lab == 0) {
                    lab = ++nlab;
                    parent[lab] = lab;
                }
                out[i] = lab;
            }
        }
    }

    /* Provisional labels were created in raster order and a component's first pixel always
     * opens a new one, so visiting labels in increasing order meets the components in raster
     * order of their first pixel. final[] maps a root to its component and a non-root label
     * to its root's component; the two kinds of slot never overlap. */
    int32_t *final = calloc((size_t)nlab + 1, sizeof(int32_t));
    if (!final) {
        free(parent);
        free(rank);
        return SL_ENOMEM;
    }
    int32_t ncomp = 0;
    for (int32_t l = 1; l <= nlab; l++) {
        int32_t r = uf_find(parent, l);
        if (final[r] == 0) {
            final[r] = ++ncomp;
        }
        final[l] = final[r];
    }
    for (int64_t j = 0; j < total; j++) {
        out[j] = final[out[j]];
    }
    free(final);
    free(parent);
    free(rank);
    return ncomp;
}
