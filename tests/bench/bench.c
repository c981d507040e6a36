/* bench.c - `make bench`: Mpix/s of each loss and of the fused set on an 8x512x512 batch,
 * on one core (no pool) and on the worker pool. A benchmark, not a test: it asserts nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "segloss.h"

#define N 8
#define H 512
#define W 512

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* xorshift64*: reproducible inputs without libc's rand state */
static uint64_t next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

/* Best-of-reps seconds for one sl_score call. */
static double time_score(const struct sl_request *req, struct sl_pool *pool, int reps)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        struct sl_result *res;
        char msg[256];
        double t0 = now_s();
        if (sl_score(req, pool, &res, msg, sizeof msg) != 0) {
            fprintf(stderr, "bench: %s\n", msg);
            exit(1);
        }
        double dt = now_s() - t0;
        sl_result_free(res);
        best = dt < best ? dt : best;
    }
    return best;
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    size_t npix = (size_t)N * H * W;
    float *x = malloc(npix * sizeof *x);
    uint8_t *y = malloc(npix);
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    if (!x || !y) {
        return 1;
    }
    for (size_t i = 0; i < npix; i++) {
        /* blobs: a smooth field thresholded, logits noisy around it */
        size_t r = (i / W) % H, c = i % W;
        y[i] = ((r / 64 + c / 64) % 3) == 0;
        double u = (double)(next(&seed) >> 11) / 9007199254740992.0;
        x[i] = (float)((y[i] ? 1.5 : -1.5) + 4 * (u - 0.5));
    }
    struct sl_pool *pool = sl_pool_new(0, 16);
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = (struct sl_tensor){x, SL_DT_F32, 3, {N, H, W}};
    req.target = (struct sl_tensor){y, SL_DT_U8, 3, {N, H, W}};
    const char *losses[] = {"cross_entropy",
                            "weighted_cross_entropy",
                            "balanced_cross_entropy",
                            "focal",
                            "dice",
                            "jaccard",
                            "tversky",
                            "lovasz_hinge"};
    int nl = (int)(sizeof losses / sizeof losses[0]);
    printf("segloss bench: %dx%dx%d float32 logits, best of %d, pool of %d threads\n", N, H, W,
           reps, sl_pool_threads(pool));
    printf("%-34s %12s %12s\n", "what", "1 core Mpix/s", "pool Mpix/s");
    for (int i = 0; i < nl; i++) {
        struct sl_spec s;
        sl_spec_init(&s, sl_find_loss(losses[i]));
        req.losses = &s;
        req.nlosses = 1;
        req.nmetrics = 0;
        double t1 = time_score(&req, NULL, reps), tp = time_score(&req, pool, reps);
        printf("%-34s %12.1f %12.1f\n", losses[i], npix / t1 / 1e6, npix / tp / 1e6);
    }
    /* the fused set of issue targets: cross_entropy + dice + focal + confusion counts */
    struct sl_spec set[3], metrics[2];
    sl_spec_init(&set[0], sl_find_loss("cross_entropy"));
    sl_spec_init(&set[1], sl_find_loss("dice"));
    sl_spec_init(&set[2], sl_find_loss("focal"));
    sl_spec_init(&metrics[0], sl_find_metric("dice"));
    sl_spec_init(&metrics[1], sl_find_metric("iou"));
    req.losses = set;
    req.nlosses = 3;
    req.metrics = metrics;
    req.nmetrics = 2;
    double t1 = time_score(&req, NULL, reps), tp = time_score(&req, pool, reps);
    printf("%-34s %12.1f %12.1f\n", "ce + dice + focal + dice/iou", npix / t1 / 1e6,
           npix / tp / 1e6);
    req.nlosses = 0;
    t1 = time_score(&req, NULL, reps);
    tp = time_score(&req, pool, reps);
    printf("%-34s %12.1f %12.1f\n", "metrics only (dice, iou)", npix / t1 / 1e6, npix / tp / 1e6);
    /* multiclass: the same floats as C = 4 softmax classes of 8 x 4 x 128 x 512 */
    {
        const int64_t C = 4, mh = H / C;
        size_t mpix = (size_t)N * mh * W;
        uint8_t *cls = malloc(mpix);
        struct sl_spec mc[3];
        if (!cls) {
            return 1;
        }
        for (size_t i = 0; i < mpix; i++) {
            cls[i] = (uint8_t)(next(&seed) % (uint64_t)C);
        }
        req.prediction = (struct sl_tensor){x, SL_DT_F32, 4, {N, C, mh, W}};
        req.target = (struct sl_tensor){cls, SL_DT_U8, 3, {N, mh, W}};
        sl_spec_init(&mc[0], sl_find_loss("cross_entropy"));
        sl_spec_init(&mc[1], sl_find_loss("dice"));
        sl_spec_init(&mc[2], sl_find_loss("lovasz_softmax"));
        req.losses = mc;
        req.nlosses = 2;
        req.metrics = metrics;
        req.nmetrics = 2;
        t1 = time_score(&req, NULL, reps);
        tp = time_score(&req, pool, reps);
        printf("%-34s %12.1f %12.1f\n", "multiclass C=4: ce + dice + dice/iou", mpix / t1 / 1e6,
               mpix / tp / 1e6);
        req.losses = &mc[2];
        req.nlosses = 1;
        req.nmetrics = 0;
        t1 = time_score(&req, NULL, reps);
        tp = time_score(&req, pool, reps);
        printf("%-34s %12.1f %12.1f\n", "multiclass C=4: lovasz_softmax", mpix / t1 / 1e6,
               mpix / tp / 1e6);
        free(cls);
    }
    printf("(multiclass rows count image pixels, each with C = 4 class scores)\n");
    sl_pool_free(pool);
    free(x);
    free(y);
    return 0;
}
