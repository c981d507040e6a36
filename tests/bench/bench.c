/* bench.c - `make bench`: Mpix/s of each loss and of the fused set on an 8x512x512 batch,
 * on one core (no pool) and on the worker pool; the fused binary kernel alone per instruction
 * set; Lovász per image against the reference's time; small requests; then the U-Net weight
 * map of 512x512 images with 200 cells, fast method against the naive one, and the 8x512x512
 * batch. Figures are the best of the repetitions (the first argument, default 5).
 * A benchmark, not a test: it asserts nothing. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
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

/* sl_score as seglossd runs it: inside a pool job, so the caller is one of the workers. */
struct job {
    const struct sl_request *req;
    struct sl_pool *pool;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    double seconds;
};

static void job_run(void *arg)
{
    struct job *j = arg;
    struct sl_result *res;
    char msg[256];
    double t0 = now_s();
    if (sl_score(j->req, j->pool, &res, msg, sizeof msg) != 0) {
        fprintf(stderr, "bench: %s\n", msg);
        exit(1);
    }
    sl_result_free(res);
    j->seconds = now_s() - t0;
    pthread_mutex_lock(&j->mu);
    j->done = true;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

/* Best-of-reps seconds for one sl_score call made by a pool worker. */
static double time_score_in_job(const struct sl_request *req, struct sl_pool *pool, int reps)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        struct job j = {.req = req, .pool = pool, .done = false};
        pthread_mutex_init(&j.mu, NULL);
        pthread_cond_init(&j.cv, NULL);
        if (sl_pool_submit(pool, job_run, &j) != 0) {
            fprintf(stderr, "bench: pool busy\n");
            exit(1);
        }
        pthread_mutex_lock(&j.mu);
        while (!j.done) {
            pthread_cond_wait(&j.cv, &j.mu);
        }
        pthread_mutex_unlock(&j.mu);
        pthread_cond_destroy(&j.cv);
        pthread_mutex_destroy(&j.mu);
        best = j.seconds < best ? j.seconds : best;
    }
    return best;
}

/* One row: Mpix/s on one core and on the pool, and the ratio. */
static void row(const char *what, double npix, double t1, double tp)
{
    printf("%-40s %12.1f %12.1f %7.2fx\n", what, npix / t1 / 1e6, npix / tp / 1e6, t1 / tp);
}

/* The fused binary kernel alone (CE + dice sums + focal gamma 2 + counts) over the batch in
 * chunks as sl_score cuts them, on one core, for each instruction set this CPU runs. */
static void bench_kernel(const float *x, const uint8_t *y, size_t npix, int reps)
{
    static const char *const names[] = {"baseline (SSE2)", "AVX2", "AVX-512"};
    printf("\nfused binary kernel alone (ce + dice + focal + counts), 1 core; every instruction "
           "set\nreturns bit-identical sums:\n");
    for (int isa = SL_SIMD_BASE; isa <= sl__simd_best(); isa++) {
        double best = 1e30;
        for (int r = 0; r < reps; r++) {
            struct sl__fused_out o;
            memset(&o, 0, sizeof o);
            double t0 = now_s();
            for (size_t off = 0; off < npix; off += SL_CHUNK) {
                struct sl__fused_in in = {
                    x + off, y + off, NULL, SL_CHUNK,
                    -1,      0.0f,    2.0f, SL_FZ_P | SL_FZ_LOG | SL_FZ_FOCAL_SQ};
                sl__fused_logits(isa, &in, &o);
            }
            double dt = now_s() - t0;
            best = dt < best ? dt : best;
        }
        printf("%-40s %12.1f\n", names[isa], (double)npix / best / 1e6);
    }
}

/* Multiclass probabilities: the softmax of the first C class rows of logits x (S pixels each),
 * as float32 probabilities, scored with ce + dice + dice/iou against targets cls % C. */
static void bench_mc_probs(struct sl_request *req, const struct sl_spec *metrics,
                           struct sl_pool *pool, int reps, const float *x, const uint8_t *cls,
                           int64_t C, int64_t MH, int64_t MW)
{
    const size_t S = (size_t)(MH * MW);
    float *p = malloc(sizeof *p * S * (size_t)C);
    uint8_t *t = malloc(S);
    if (!p || !t) {
        exit(1);
    }
    for (size_t k = 0; k < S; k++) {
        double mx = x[k], s = 0;
        for (int64_t c = 1; c < C; c++) {
            mx = x[(size_t)c * S + k] > mx ? x[(size_t)c * S + k] : mx;
        }
        for (int64_t c = 0; c < C; c++) {
            s += exp(x[(size_t)c * S + k] - mx);
        }
        for (int64_t c = 0; c < C; c++) {
            p[(size_t)c * S + k] = (float)(exp(x[(size_t)c * S + k] - mx) / s);
        }
        t[k] = (uint8_t)(cls[k] % C);
    }
    struct sl_spec mc[2];
    sl_spec_init(&mc[0], sl_find_loss("cross_entropy"));
    sl_spec_init(&mc[1], sl_find_loss("dice"));
    struct sl_request rq = *req;
    rq.prediction = (struct sl_tensor){p, SL_DT_F32, 4, {1, C, MH, MW}};
    rq.target = (struct sl_tensor){t, SL_DT_U8, 3, {1, MH, MW}};
    rq.pred_type = SL_PRED_PROBABILITIES;
    rq.losses = mc;
    rq.nlosses = 2;
    rq.metrics = metrics;
    rq.nmetrics = 2;
    double t1 = time_score(&rq, NULL, reps), tp = time_score(&rq, pool, reps);
    char what[64];
    snprintf(what, sizeof what, "multiclass C=%lld probs: ce+dice+dice/iou", (long long)C);
    row(what, (double)S, t1, tp);
    /* the probabilities kernel alone (simd_mcp.h), the same sums as the logits kernel's rows */
    printf("fused multiclass probabilities kernel alone, C = %lld, 1 core:\n", (long long)C);
    static const char *const names[] = {"baseline (SSE2)", "AVX2", "AVX-512"};
    struct sl__mc_in in;
    memset(&in, 0, sizeof in);
    in.x = p;
    in.xs = (int64_t)S;
    in.t = t;
    in.n = (int64_t)S;
    in.classes = (int)C;
    in.ign = -1;
    in.what = SL_MC_SOFT | SL_MC_CE | SL_MC_CM;
    double *lanes = calloc((size_t)C * SL_MCQ_FOCAL * 16, sizeof *lanes);
    int32_t *counts = calloc((size_t)C * 48, sizeof *counts);
    float *e = malloc(sizeof *e * (size_t)C * 2 * SL_MC_BLOCK);
    for (int isa = SL_SIMD_BASE; isa <= sl__simd_best(); isa++) {
        double best = 1e30;
        for (int r = 0; r < reps; r++) {
            struct sl__mc_state st = {lanes, counts, NULL, 0, e, false};
            double t0 = now_s();
            sl__mc_probs(isa, &in, &st);
            double dt = now_s() - t0;
            best = dt < best ? dt : best;
        }
        printf("%-40s %12.1f\n", names[isa], (double)S / best / 1e6);
    }
    free(lanes);
    free(counts);
    free(e);
    free(p);
    free(t);
}

/* Multiclass C = 19 (Cityscapes-like 1 x 19 x 512 x 1024 float32 logits, uint8 targets):
 * ce + dice + dice/iou through sl_score, then the fused multiclass kernel alone per instruction
 * set for C = 19 and C = 4 (the same sums). */
static void bench_mc19(struct sl_request *req, const struct sl_spec *metrics, struct sl_pool *pool,
                       int reps, uint64_t *seed)
{
    const int64_t C = 19, MH = 512, MW = 1024;
    const size_t mpix = (size_t)(MH * MW);
    float *x = malloc(sizeof *x * mpix * (size_t)C);
    uint8_t *cls = malloc(mpix);
    if (!x || !cls) {
        exit(1);
    }
    for (size_t i = 0; i < mpix; i++) {
        cls[i] = (uint8_t)(next(seed) % (uint64_t)C);
    }
    for (size_t i = 0; i < mpix * (size_t)C; i++) {
        /* the target class a little ahead of the others */
        const double u = (double)(next(seed) >> 11) / 9007199254740992.0;
        x[i] = (float)(8 * (u - 0.5) + (cls[i % mpix] == i / mpix ? 2.0 : 0.0));
    }
    struct sl_spec mc[2];
    sl_spec_init(&mc[0], sl_find_loss("cross_entropy"));
    sl_spec_init(&mc[1], sl_find_loss("dice"));
    req->prediction = (struct sl_tensor){x, SL_DT_F32, 4, {1, C, MH, MW}};
    req->target = (struct sl_tensor){cls, SL_DT_U8, 3, {1, MH, MW}};
    req->losses = mc;
    req->nlosses = 2;
    req->metrics = metrics;
    req->nmetrics = 2;
    double t1 = time_score(req, NULL, reps), tp = time_score(req, pool, reps);
    row("multiclass C=19: ce + dice + dice/iou", (double)mpix, t1, tp);
    bench_mc_probs(req, metrics, pool, reps, x, cls, 19, MH, MW);
    bench_mc_probs(req, metrics, pool, reps, x, cls, 4, MH, MW);
    static const char *const names[] = {"baseline (SSE2)", "AVX2", "AVX-512"};
    for (int cc = 0; cc < 2; cc++) {
        const int nc = cc == 0 ? 19 : 4;
        printf("fused multiclass kernel alone, C = %d (ce + soft sums + counts), 1 core:\n", nc);
        struct sl__mc_in in;
        memset(&in, 0, sizeof in);
        in.x = x;
        in.xs = (int64_t)mpix;
        in.t = cls;
        in.n = (int64_t)mpix;
        in.classes = nc;
        in.ign = -1;
        in.what = SL_MC_SOFT | SL_MC_CE | SL_MC_CM;
        in.far_d = sl__mc_far_d(nc, 0);
        double *lanes = calloc((size_t)nc * SL_MCQ_FOCAL * 16, sizeof *lanes);
        int32_t *counts = calloc((size_t)nc * 48, sizeof *counts);
        float *e = malloc(sizeof *e * (size_t)SL_MC_SCRATCH(nc));
        if (nc == 4) {
            for (size_t i = 0; i < mpix; i++) {
                cls[i] = (uint8_t)(cls[i] % 4);
            }
        }
        for (int isa = SL_SIMD_BASE; isa <= sl__simd_best(); isa++) {
            double best = 1e30;
            for (int r = 0; r < reps; r++) {
                struct sl__mc_state st = {lanes, counts, NULL, 0, e, false};
                double t0 = now_s();
                sl__mc_logits(isa, &in, &st);
                double dt = now_s() - t0;
                best = dt < best ? dt : best;
            }
            printf("%-40s %12.1f\n", names[isa], (double)mpix / best / 1e6);
        }
        free(lanes);
        free(counts);
        free(e);
    }
    free(x);
    free(cls);
}

/* ---- U-Net weight maps -------------------------------------------------------------------- */

#define CELLS 200

/* CELLS random discs of radius 6-12 into one H x W mask, none touching another (8-connected
 * components are the discs). */
static void random_cells(uint64_t *seed, uint8_t *mask)
{
    double cy[CELLS], cx[CELLS], cr[CELLS];
    int n = 0;
    memset(mask, 0, (size_t)H * W);
    while (n < CELLS) {
        double r = 6 + 6 * (double)(next(seed) >> 11) / 9007199254740992.0;
        double y = r + (H - 2 * r) * (double)(next(seed) >> 11) / 9007199254740992.0;
        double x = r + (W - 2 * r) * (double)(next(seed) >> 11) / 9007199254740992.0;
        bool free_spot = true;
        for (int k = 0; k < n && free_spot; k++) {
            double dy = y - cy[k], dx = x - cx[k];
            free_spot = sqrt(dy * dy + dx * dx) > r + cr[k] + 2;
        }
        if (!free_spot) {
            continue;
        }
        cy[n] = y;
        cx[n] = x;
        cr[n] = r;
        n++;
        for (int64_t i = (int64_t)(y - r); i <= (int64_t)(y + r) + 1 && i < H; i++) {
            for (int64_t j = (int64_t)(x - r); j <= (int64_t)(x + r) + 1 && j < W; j++) {
                if (((double)i - y) * ((double)i - y) + ((double)j - x) * ((double)j - x) <=
                    r * r) {
                    mask[i * W + j] = 1;
                }
            }
        }
    }
}

typedef int (*wm_image_fn)(const uint8_t *, const int32_t *, int64_t, int, const int64_t *,
                           const struct sl_weight_map_params *, float *);

/* Best-of-reps seconds of one weight-map method on one image. */
static double time_wm_image(wm_image_fn fn, const uint8_t *mask, const int32_t *labels, int64_t n,
                            const struct sl_weight_map_params *p, float *out, int reps)
{
    const int64_t shape[2] = {H, W};
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        if (fn(mask, labels, n, 2, shape, p, out) != 0) {
            fprintf(stderr, "bench: weight map failed\n");
            exit(1);
        }
        double dt = now_s() - t0;
        best = dt < best ? dt : best;
    }
    return best;
}

/* Best-of-reps seconds of sl_weight_map over the batch. */
static double time_wm_batch(const struct sl_tensor *t, const struct sl_weight_map_params *p,
                            struct sl_pool *pool, float *out, int reps)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        char msg[256];
        double t0 = now_s();
        if (sl_weight_map(t, NULL, p, pool, out, msg, sizeof msg) != 0) {
            fprintf(stderr, "bench: %s\n", msg);
            exit(1);
        }
        double dt = now_s() - t0;
        best = dt < best ? dt : best;
    }
    return best;
}

static void bench_weight_map(struct sl_pool *pool, int reps, uint64_t *seed)
{
    const size_t P = (size_t)H * W;
    uint8_t *mask = malloc(N * P);
    int32_t *labels = malloc(P * sizeof *labels);
    float *fast = malloc(N * P * sizeof *fast), *naive = malloc(P * sizeof *naive);
    if (!mask || !labels || !fast || !naive) {
        exit(1);
    }
    for (int i = 0; i < N; i++) {
        random_cells(seed, mask + (size_t)i * P);
    }
    const int64_t shape[2] = {H, W};
    int64_t n = sl__label(mask, 2, shape, 8, labels);
    struct sl_weight_map_params p;
    sl_weight_map_params_init(&p);
    double tf = time_wm_image(sl__weight_map_image, mask, labels, n, &p, fast, reps);
    double tn =
        time_wm_image(sl__weight_map_image_naive, mask, labels, n, &p, naive, reps < 2 ? reps : 2);
    int64_t differ = 0;
    for (size_t i = 0; i < P; i++) {
        differ += fast[i] != naive[i];
    }
    printf("\nU-Net weight map (w0 10, sigma 5, neighbors 2) of one %dx%d image, Mpix/s on one "
           "core:\n",
           H, W);
    printf("%-40s %12.1f\n", "naive, 200 cells (EDT per cell)", P / tn / 1e6);
    printf("%-40s %12.1f   speed-up %.1fx, %lld of %zu pixels differ\n",
           "fast, 200 cells (windowed)", P / tf / 1e6, tn / tf, (long long)differ, P);
    /* the other regime: 16384 one-pixel objects on a 4-pixel lattice, where the windows would
     * cover the image 280 times over and the separable method takes over */
    uint8_t *dots = calloc(P, 1);
    if (!dots) {
        exit(1);
    }
    for (size_t i = 0; i < P; i++) {
        dots[i] = (i / W) % 4 == 0 && (i % W) % 4 == 0;
    }
    int64_t nd = sl__label(dots, 2, shape, 8, labels);
    double td = time_wm_image(sl__weight_map_image, dots, labels, nd, &p, naive, reps);
    char what[64];
    snprintf(what, sizeof what, "fast, %lld dots (separable)", (long long)nd);
    printf("%-40s %12.1f   (naive: about %.0f s)\n", what, P / td / 1e6,
           tn / (double)n * (double)nd);
    free(dots);
    struct sl_tensor t = {mask, SL_DT_U8, 3, {N, H, W}};
    double t1 = time_wm_batch(&t, &p, NULL, fast, reps),
           tp = time_wm_batch(&t, &p, pool, fast, reps);
    printf("%-40s %12s %12s\n", "", "1 core Mpix/s", "pool Mpix/s");
    row("sl_weight_map 8x512x512 batch", (double)(N * P), t1, tp);
    free(mask);
    free(labels);
    free(fast);
    free(naive);
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    size_t npix = (size_t)N * H * W;
    float *x = malloc(npix * sizeof *x), *xs = malloc(npix * sizeof *xs);
    uint8_t *y = malloc(npix);
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    double lovasz_ms = 0, lovasz_worst_ms = 0;
    if (!x || !xs || !y) {
        return 1;
    }
    for (size_t i = 0; i < npix; i++) {
        /* blobs: a smooth field thresholded, logits noisy around it */
        size_t r = (i / W) % H, c = i % W;
        y[i] = ((r / 64 + c / 64) % 3) == 0;
        double u = (double)(next(&seed) >> 11) / 9007199254740992.0;
        x[i] = (float)((y[i] ? 1.5 : -1.5) + 4 * (u - 0.5));
        xs[i] = x[i] / 4; /* |xs| < 1: every hinge error is > 0 */
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
    printf("segloss bench: %dx%dx%d float32 logits, best of %d, pool of %d threads (called from "
           "the main thread\nunless the row says \"in a pool job\"), kernels: %s\n",
           N, H, W, reps, sl_pool_threads(pool),
           sl__simd_best() == SL_SIMD_AVX512 ? "AVX-512"
           : sl__simd_best() == SL_SIMD_AVX2 ? "AVX2"
                                             : "baseline");
    printf("%-40s %12s %12s %8s\n", "what", "1 core Mpix/s", "pool Mpix/s", "pool/1");
    for (int i = 0; i < nl; i++) {
        struct sl_spec s;
        sl_spec_init(&s, sl_find_loss(losses[i]));
        req.losses = &s;
        req.nlosses = 1;
        req.nmetrics = 0;
        double t1 = time_score(&req, NULL, reps), tp = time_score(&req, pool, reps);
        row(losses[i], (double)npix, t1, tp);
        if (strcmp(losses[i], "lovasz_hinge") == 0) {
            lovasz_ms = t1 / N * 1e3;
        }
    }
    {
        /* label smoothing: a smoothed target weighs both logs of every pixel */
        struct sl_spec s;
        sl_spec_init(&s, sl_find_loss("cross_entropy"));
        s.values[sl_param_index(s.def, "label_smoothing")] =
            (struct sl_value){.kind = SL_V_NUMBER, .num = 0.1};
        req.losses = &s;
        req.nlosses = 1;
        req.nmetrics = 0;
        double t1 = time_score(&req, NULL, reps), tp = time_score(&req, pool, reps);
        row("cross_entropy label_smoothing 0.1", (double)npix, t1, tp);
    }
    {
        /* the batch form, and the worst case where no error is <= 0 (|logit| < 1 everywhere),
         * so that every pixel is sorted */
        struct sl_spec s;
        sl_spec_init(&s, sl_find_loss("lovasz_hinge"));
        s.values[sl_param_index(s.def, "per_image")] = (struct sl_value){.kind = SL_V_BOOL};
        req.losses = &s;
        req.nlosses = 1;
        req.nmetrics = 0;
        double t1 = time_score(&req, NULL, reps), tp = time_score(&req, pool, reps);
        row("lovasz_hinge per_image false", (double)npix, t1, tp);
        s.values[sl_param_index(s.def, "per_image")].b = true;
        req.prediction.data = xs;
        t1 = time_score(&req, NULL, reps);
        tp = time_score(&req, pool, reps);
        row("lovasz_hinge, every error > 0", (double)npix, t1, tp);
        lovasz_worst_ms = t1 / N * 1e3;
        req.prediction.data = x;
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
    row("ce + dice + focal + dice/iou", (double)npix, t1, tp);
    /* more repetitions: an idle virtual CPU can take milliseconds to wake until the host's
     * halt polling adapts to the pattern */
    tp = time_score_in_job(&req, pool, reps < 20 ? 20 : reps);
    row("ce + dice + focal + dice/iou, pool job", (double)npix, t1, tp);
    req.nlosses = 0;
    t1 = time_score(&req, NULL, reps);
    tp = time_score(&req, pool, reps);
    row("metrics only (dice, iou)", (double)npix, t1, tp);
    /* surface distances: one EDT per surface per image */
    {
        struct sl_spec surf[4];
        sl_spec_init(&surf[0], sl_find_metric("hausdorff"));
        sl_spec_init(&surf[1], sl_find_metric("hausdorff"));
        surf[1].values[sl_param_index(surf[1].def, "percentile")] =
            (struct sl_value){.kind = SL_V_NUMBER, .num = 95};
        snprintf(surf[1].key, sizeof surf[1].key, "hd95");
        sl_spec_init(&surf[2], sl_find_metric("assd"));
        sl_spec_init(&surf[3], sl_find_metric("nsd"));
        req.metrics = surf;
        req.nmetrics = 4;
        t1 = time_score(&req, NULL, reps);
        tp = time_score(&req, pool, reps);
        row("hausdorff + hd95 + assd + nsd", (double)npix, t1, tp);
        req.metrics = metrics;
        req.nmetrics = 2;
    }
    {
        struct sl_spec dw;
        sl_spec_init(&dw, sl_find_loss("distance_weighted_cross_entropy"));
        req.losses = &dw;
        req.nlosses = 1;
        req.nmetrics = 0;
        t1 = time_score(&req, NULL, reps);
        tp = time_score(&req, pool, reps);
        row("distance_weighted_cross_entropy", (double)npix, t1, tp);
    }
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
        row("multiclass C=4: ce + dice + dice/iou", (double)mpix, t1, tp);
        req.losses = &mc[2];
        req.nlosses = 1;
        req.nmetrics = 0;
        t1 = time_score(&req, NULL, reps);
        tp = time_score(&req, pool, reps);
        row("multiclass C=4: lovasz_softmax", (double)mpix, t1, tp);
        mc[2].values[sl_param_index(mc[2].def, "per_image")] =
            (struct sl_value){.kind = SL_V_BOOL, .b = true};
        t1 = time_score(&req, NULL, reps);
        tp = time_score(&req, pool, reps);
        row("multiclass C=4: lovasz_softmax per image", (double)mpix, t1, tp);
        free(cls);
    }
    /* runs of 5-10 ms: the best of 4 x reps, since single runs on a shared machine swing by
     * +-20 % */
    bench_mc19(&req, metrics, pool, 4 * reps, &seed);
    printf("(multiclass rows count image pixels, each with C class scores)\n");
    /* Lovász-Softmax on a Cityscapes-like image, 1 x 19 x 512 x 1024 float32 logits: 16 x 16
     * tiles of 16 of the 19 classes, logits uniform in [-2, 2) plus 4 on the tile's class;
     * cross_entropy alone beside it is the softmax pass the loss needs first
     * (tests/bench/lovasz_compare.py times the reference on the same shape) */
    {
        const int64_t C = 19, LH = 512, LW = 1024, S = LH * LW;
        float *lx = malloc(sizeof *lx * (size_t)(C * S));
        uint8_t *ly = malloc((size_t)S);
        if (!lx || !ly) {
            return 1;
        }
        for (int64_t k = 0; k < S; k++) {
            ly[k] = (uint8_t)(((k / LW / 16) * 7 + (k % LW / 16) * 3) % 16);
        }
        for (int64_t c = 0; c < C; c++) {
            for (int64_t k = 0; k < S; k++) {
                const double u = (double)(next(&seed) >> 11) / 9007199254740992.0;
                lx[c * S + k] = (float)(4 * (u - 0.5) + (ly[k] == c ? 4 : 0));
            }
        }
        req.prediction = (struct sl_tensor){lx, SL_DT_F32, 4, {1, C, LH, LW}};
        req.target = (struct sl_tensor){ly, SL_DT_U8, 3, {1, LH, LW}};
        struct sl_spec ls[2];
        sl_spec_init(&ls[0], sl_find_loss("lovasz_softmax"));
        sl_spec_init(&ls[1], sl_find_loss("cross_entropy"));
        req.nlosses = 1;
        req.nmetrics = 0;
        const char *what[3] = {"C=19 1x512x1024: lovasz_softmax", "C=19 1x512x1024: lsm per image",
                               "C=19 1x512x1024: cross_entropy"};
        double ms[3][2];
        for (int k = 0; k < 3; k++) {
            req.losses = &ls[k == 2];
            ls[0].values[sl_param_index(ls[0].def, "per_image")] =
                (struct sl_value){.kind = SL_V_BOOL, .b = k == 1};
            t1 = time_score(&req, NULL, reps);
            tp = time_score(&req, pool, reps);
            row(what[k], (double)S, t1, tp);
            ms[k][0] = t1 * 1e3;
            ms[k][1] = tp * 1e3;
        }
        printf("C=19 1x512x1024 ms (1 core / pool): lovasz_softmax %.1f / %.1f, per image %.1f / "
               "%.1f, cross_entropy %.1f / %.1f\n",
               ms[0][0], ms[0][1], ms[1][0], ms[1][1], ms[2][0], ms[2][1]);
        free(lx);
        free(ly);
    }
    printf("lovasz_hinge per image, 1 core: %.2f ms (every error > 0: %.2f ms); the reference "
           "code takes 28 ms\n",
           lovasz_ms, lovasz_worst_ms);
    /* small requests: 1x64x64 run on the calling thread whatever the pool */
    {
        req.prediction = (struct sl_tensor){x, SL_DT_F32, 3, {1, 64, 64}};
        req.target = (struct sl_tensor){y, SL_DT_U8, 3, {1, 64, 64}};
        req.losses = set;
        req.nlosses = 3;
        req.metrics = metrics;
        req.nmetrics = 2;
        const int many = 200 * reps;
        t1 = time_score(&req, NULL, many);
        tp = time_score(&req, pool, many);
        double tj = time_score_in_job(&req, pool, many);
        printf("1x64x64 ce + dice + focal + dice/iou: %.1f us per request on 1 core, %.1f us with "
               "the pool,\n%.1f us in a pool job\n",
               t1 * 1e6, tp * 1e6, tj * 1e6);
    }
    bench_kernel(x, y, npix, reps);
    bench_weight_map(pool, reps, &seed);
    sl_pool_free(pool);
    free(x);
    free(xs);
    free(y);
    return 0;
}
