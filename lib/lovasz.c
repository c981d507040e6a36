/* lovasz.c - the Lovász extension of the Jaccard loss (Berman, Triki & Blaschko, "The
 * Lovász-Softmax loss", CVPR 2018), following their reference lovasz_hinge_flat and
 * lovasz_softmax_flat: sort errors in decreasing order, take the gradient of the Lovász
 * extension at the sorted labels, dot with relu(errors) (softmax errors are >= 0 already). */
#include <stdlib.h>

#include "internal.h"

static int cmp_desc(const void *a, const void *b)
{
    double x = ((const struct sl__ey *)a)->e, z = ((const struct sl__ey *)b)->e;
    return (x < z) - (x > z);
}

double sl__lovasz_flat(struct sl__ey *v, int64_t n)
{
    if (n <= 0) {
        return 0.0; /* reference: an empty set of pixels has loss 0 */
    }
    double gts = 0;
    for (int64_t i = 0; i < n; i++) {
        gts += v[i].y;
    }
    qsort(v, (size_t)n, sizeof *v, cmp_desc);
    /* jaccard_k = 1 - (gts - cumsum(y)_k) / (gts + cumsum(1-y)_k); grad = its first difference.
     * Ties are harmless: a tied run contributes relu(e) times the sum of its gradients, which
     * depends only on the run's label counts. */
    double loss = 0, cum_y = 0, cum_ny = 0, prev = 0;
    for (int64_t i = 0; i < n; i++) {
        cum_y += v[i].y;
        cum_ny += 1 - v[i].y;
        double jac = 1.0 - (gts - cum_y) / (gts + cum_ny);
        double grad = jac - prev;
        prev = jac;
        if (v[i].e > 0) {
            loss += v[i].e * grad;
        }
    }
    return loss;
}
