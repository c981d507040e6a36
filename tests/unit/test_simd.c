/* test_simd.c - the float32 exp and log1p of the SIMD kernels against libm's double exp and
 * log1p, over a dense sweep of the floats they are used on (every float with --exhaustive,
 * which is how the bounds in simd_body.h were measured), and the variants' bit-identity.
 *
 * Usage: test_simd [--exhaustive] */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "internal.h"

/* The documented maximum relative errors (simd_body.h), measured over every float. */
#define EXP_MAX_REL 8.3e-8    /* exp_neg on [-87.3365, 0] */
#define MC_EXP_MAX_REL 8.3e-8 /* mc_exp (simd_mc.h) on [-87, 0] */
#define LOG1P_MAX_REL 1.3e-7  /* log1p01 on the normal floats of [0, 1] */
/* Below the smallest normal float: absolute error at most that float. */
#define FLT_NORMAL_MIN 1.17549435e-38

enum { BATCH = 4096 };

static float from_bits(uint32_t b)
{
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

static uint32_t to_bits(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

struct sweep {
    double max_rel;   /* over results >= FLT_NORMAL_MIN (exp) or inputs (log1p) */
    double max_abs;   /* over the rest */
    float worst;      /* the argument of max_rel */
    int64_t count;    /* arguments tried */
    int64_t mismatch; /* results of another variant that differ in any bit from the baseline */
};

/* Runs fn over the float bit patterns lo..hi (inclusive, increasing as floats when lo <= hi,
 * or decreasing as negative floats do) with the given stride, for every variant this CPU runs;
 * compares the best variant with ref and every variant with the baseline. */
static struct sweep run_sweep(void (*fn)(int, const float *, float *, int64_t),
                              double (*ref)(double), uint32_t lo, uint32_t hi, uint32_t stride,
                              bool exp_like)
{
    static float in[BATCH], out[BATCH], base[BATCH];
    struct sweep s = {0, 0, 0, 0, 0};
    const int best = sl__simd_best();
    for (uint64_t b = lo; b <= hi;) {
        int n = 0;
        for (; n < BATCH && b <= hi; n++, b += stride) {
            in[n] = from_bits((uint32_t)b);
        }
        for (int k = n; k < BATCH; k++) {
            in[k] = in[0];
        }
        fn(SL_SIMD_BASE, in, base, BATCH);
        for (int isa = SL_SIMD_BASE + 1; isa <= best; isa++) {
            fn(isa, in, out, BATCH);
            for (int k = 0; k < n; k++) {
                s.mismatch += to_bits(out[k]) != to_bits(base[k]);
            }
        }
        for (int k = 0; k < n; k++) {
            const double want = ref((double)in[k]), got = base[k];
            const bool relative = exp_like ? want >= FLT_NORMAL_MIN : in[k] >= FLT_NORMAL_MIN;
            if (relative) {
                const double e = fabs(got - want) / want;
                if (e > s.max_rel) {
                    s.max_rel = e;
                    s.worst = in[k];
                }
            } else if (fabs(got - want) > s.max_abs) {
                s.max_abs = fabs(got - want);
            }
        }
        s.count += n;
    }
    return s;
}

static void check_exp(uint32_t stride)
{
    /* z in [-87.3365, 0]: the negative floats from -0 down to the cut, by their bits */
    const uint32_t lo = to_bits(-0.0f), hi = to_bits(-87.3365402f);
    struct sweep s = run_sweep(sl__exp_neg_f32, exp, lo, hi, stride, true);
    printf("exp_neg: %lld floats in [-87.3365, 0], max rel err %.3g at %.9g (bound %.2g), "
           "max abs err below normal %.3g, %lld variant mismatches\n",
           (long long)s.count, s.max_rel, (double)s.worst, EXP_MAX_REL, s.max_abs,
           (long long)s.mismatch);
    CHECK(s.count > 1000);
    CHECK(s.max_rel <= EXP_MAX_REL);
    CHECK(s.max_abs <= FLT_NORMAL_MIN);
    CHECK_INT(s.mismatch, 0);
    /* exact points and the cut: e^0 = 1, below the cut 0, -inf gives 0 */
    float in[16] = {0.0f, -0.0f, -88.0f, -1000.0f, -INFINITY, -87.3365f, -1.0f, -0.5f};
    float out[16];
    sl__exp_neg_f32(-1, in, out, 16);
    CHECK(out[0] == 1.0f && out[1] == 1.0f);
    CHECK(out[2] == 0.0f && out[3] == 0.0f && out[4] == 0.0f);
    CHECK(out[5] > 0.0f);
    CHECK_CLOSE(out[6], exp(-1.0), EXP_MAX_REL, 0);
    CHECK_CLOSE(out[7], exp(-0.5), EXP_MAX_REL, 0);
}

/* The multiclass kernel's exp (degree-6 polynomial) on [-87, 0], and its clamp below. */
static void check_mc_exp(uint32_t stride)
{
    const uint32_t lo = to_bits(-0.0f), hi = to_bits(-87.0f);
    struct sweep s = run_sweep(sl__mc_exp_f32, exp, lo, hi, stride, true);
    printf("mc_exp: %lld floats in [-87, 0], max rel err %.3g at %.9g (bound %.2g), %lld variant "
           "mismatches\n",
           (long long)s.count, s.max_rel, (double)s.worst, MC_EXP_MAX_REL, (long long)s.mismatch);
    CHECK(s.count > 1000);
    CHECK(s.max_rel <= MC_EXP_MAX_REL);
    CHECK(s.max_abs == 0); /* every result is a normal float */
    CHECK_INT(s.mismatch, 0);
    float in[16] = {0.0f, -0.0f, -87.0f, -88.0f, -1000.0f, -1.0f, -0.5f, -20.0f};
    float out[16], clamp[16];
    sl__mc_exp_f32(-1, in, out, 16);
    CHECK(out[0] == 1.0f && out[1] == 1.0f);
    in[3] = in[4] = -87.0f;
    sl__mc_exp_f32(-1, in, clamp, 16);
    CHECK(out[3] == clamp[2] && out[4] == clamp[2]); /* below -87: e^-87 */
    CHECK_CLOSE(out[2], exp(-87.0), MC_EXP_MAX_REL, 0);
    CHECK_CLOSE(out[5], exp(-1.0), MC_EXP_MAX_REL, 0);
    CHECK_CLOSE(out[6], exp(-0.5), MC_EXP_MAX_REL, 0);
    CHECK_CLOSE(out[7], exp(-20.0), MC_EXP_MAX_REL, 0);
}

static void check_log1p(uint32_t stride)
{
    struct sweep s = run_sweep(sl__log1p01_f32, log1p, 0, to_bits(1.0f), stride, false);
    printf("log1p01: %lld floats in [0, 1], max rel err %.3g at %.9g (bound %.2g), max abs err "
           "below normal %.3g, %lld variant mismatches\n",
           (long long)s.count, s.max_rel, (double)s.worst, LOG1P_MAX_REL, s.max_abs,
           (long long)s.mismatch);
    CHECK(s.count > 1000);
    CHECK(s.max_rel <= LOG1P_MAX_REL);
    CHECK(s.max_abs <= FLT_NORMAL_MIN);
    CHECK_INT(s.mismatch, 0);
    float in[16] = {0.0f, 1.0f, 1e-30f, 0.5f}, out[16];
    sl__log1p01_f32(-1, in, out, 16);
    CHECK(out[0] == 0.0f);
    CHECK_CLOSE(out[1], log(2.0), LOG1P_MAX_REL, 0);
    CHECK_CLOSE(out[2], 1e-30, LOG1P_MAX_REL, 0); /* where 1 + e rounds to 1 */
    CHECK_CLOSE(out[3], log1p(0.5), LOG1P_MAX_REL, 0);
}

/* xorshift64*: reproducible inputs */
static uint64_t next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static double unit(uint64_t *s)
{
    return (double)(next(s) >> 11) / 9007199254740992.0;
}

/* The fused kernel gives bit-identical sums with every instruction set, for every length (the
 * tails) and every specialization. */
static void test_fused_variants(void)
{
    enum { N = 1000 };
    static float x[N], w[N];
    static uint8_t t[N];
    uint64_t seed = 42;
    for (int k = 0; k < N; k++) {
        x[k] = (float)(30 * (unit(&seed) - 0.5));
        w[k] = (float)(2 * unit(&seed));
        t[k] = (uint8_t)(next(&seed) % 3 == 0 ? 1 : next(&seed) % 7 == 0 ? 255 : 0);
    }
    x[5] = 100.0f; /* beyond the exp cut */
    x[6] = -100.0f;
    x[7] = -0.0f;
    /* far lanes (computed in double), alone and beside others, weights near FLT_MAX */
    const float far[] = {45.0f, -45.0f, -90.0f, 3e38f, -3e38f, -800.0f, 20.0f, -17.0f};
    for (int k = 0; k < N; k += 11) {
        x[k] = far[(k / 11) % 8];
        w[k] = k % 3 == 0 ? 1e38f : w[k];
    }
    const int whats[] = {0,
                         SL_FZ_P,
                         SL_FZ_P | SL_FZ_LOG,
                         SL_FZ_FOCAL_SQ,
                         SL_FZ_FOCAL_EXP,
                         SL_FZ_LOG | SL_FZ_W,
                         SL_FZ_FOCAL_SQ | SL_FZ_W,
                         SL_FZ_FOCAL_EXP | SL_FZ_W};
    const int lens[] = {1, 3, 4, 5, 8, 15, 16, 17, 63, 64, 65, 100, 129, N};
    int64_t mismatch = 0, runs = 0;
    /* gamma 5: lanes with |x| > 86/5 - 1 are far too */
    for (size_t wi = 0; wi < 2 * sizeof whats / sizeof whats[0]; wi++) {
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
            const size_t nw = sizeof whats / sizeof whats[0];
            struct sl__fused_in in = {
                x, t, w, lens[li], 255, 0.5f, wi < nw ? 0.7f : 5.0f, whats[wi % nw]};
            struct sl__fused_out base, o;
            memset(&base, 0, sizeof base);
            sl__fused_logits(SL_SIMD_BASE, &in, &base);
            for (int isa = SL_SIMD_BASE + 1; isa <= sl__simd_best(); isa++) {
                memset(&o, 0, sizeof o);
                sl__fused_logits(isa, &in, &o);
                mismatch += memcmp(&o, &base, sizeof o) != 0;
                runs++;
            }
            CHECK(!base.bad);
        }
    }
    printf("fused kernel: %lld runs of other variants, %lld differ from the baseline\n",
           (long long)runs, (long long)mismatch);
    CHECK_INT(mismatch, 0);
    /* bad values: a NaN, an infinity, a target byte 7 */
    for (int c = 0; c < 3; c++) {
        float xs[20] = {0};
        uint8_t ts[20] = {0};
        if (c == 0) {
            xs[19] = NAN;
        } else if (c == 1) {
            xs[3] = -INFINITY;
        } else {
            ts[18] = 7;
        }
        for (int isa = SL_SIMD_BASE; isa <= sl__simd_best(); isa++) {
            struct sl__fused_in in = {xs, ts, NULL, 20, 255, 0.0f, 2.0f, 0};
            struct sl__fused_out o;
            memset(&o, 0, sizeof o);
            sl__fused_logits(isa, &in, &o);
            CHECK(o.bad);
        }
    }
}

/* a prime stride visits about 1.1e9 / 97 arguments of each function, every binade;
 * --exhaustive (main's first argument) sets 1 */
static uint32_t stride_ = 97;

static void test_exp(void)
{
    check_exp(stride_);
}

static void test_mc_exp(void)
{
    check_mc_exp(stride_);
}

static void test_log1p(void)
{
    check_log1p(stride_);
}

static const struct check_test tests[] = {
    CHECK_TEST(test_exp),
    CHECK_TEST(test_mc_exp),
    CHECK_TEST(test_log1p),
    CHECK_TEST(test_fused_variants),
};

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--exhaustive") == 0) {
        stride_ = 1;
        argv[1] = argv[0];
        argc--;
        argv++;
    }
    printf("instruction sets: baseline%s%s\n", sl__simd_best() >= SL_SIMD_AVX2 ? ", AVX2" : "",
           sl__simd_best() >= SL_SIMD_AVX512 ? ", AVX-512" : "");
    return CHECK_RUN("test_simd", tests);
}
