/* simd.c - the float32 SIMD kernels of simd_body.h compiled three times: baseline x86-64
 * (SSE2, 4 lanes; on other architectures plain GCC vector extensions), AVX2 (8 lanes) and
 * AVX-512 F+VL (16 lanes), chosen at run time by what the CPU and the OS support. The build
 * needs no -m flag: the wider variants carry target attributes, so the binary runs on any
 * x86-64. All variants return bit-identical results (simd_body.h says why).
 *
 * Accuracy, measured over every float argument (tests/unit/test_simd --exhaustive), against
 * libm's double exp and log1p:
 *   exp_neg  (e^z, z in [-87.3365, 0])       max relative error 8.24e-8 (1.38 x 2^-24)
 *   log1p01  (log(1 + e), e in [0, 1] normal) max relative error 1.23e-7 (2.07 x 2^-24)
 * e^z below the smallest normal float is 0 (absolute error < 1.2e-38).
 * Per pixel (first-order worst cases, u = 2^-24): -log p = log1p(e^-|x|) + max(-x, 0) within
 * 2.7e-7 relative (the same for -log(1 - p)); p and 1 - p within 3e-7; p^2 and (1 - p)^2 within
 * 6.6e-7; a focal term within 1.1e-6 for gamma 2 (products), for other gammas
 * exp(gamma log(1 - p)) adds about 6 gamma |log(1 - p)| u (gamma is rounded to float).
 * Sums: float32 per lane over at most SL_FOLD / 8 = 8 non-negative terms, within 7 u = 4.2e-7
 * relative, then double. Pixels beyond float32's normal range ("far": |x| > 40, extreme
 * weights; simd_body.h) are computed in double with e^z to about 1e-14 and log1p to float
 * accuracy, so these bounds hold for them too. So a plane's sums are within 7.5e-7 (cross
 * entropy), 7.2e-7 (sum p, sum p y), 1.1e-6 (sum p^2) and 1.5e-6 (focal, gamma 2) of the exact
 * sums. test_fused compares the losses with the double pass on random inputs at 1e-6 relative
 * (focal 2e-6); the largest difference it sees is about 1e-7.
 *
 * The multiclass kernel (simd_mc.h; u = 2^-24): d_c = x_c - max is rounded once (|d_c| u), so
 * e_c = e^d_c is within (|d_c| + 1.4) u; so = sum of the e_c but the argmax's within another
 * (C - 2) u; p_c = e_c / (1 + so) within (|d_c| + C + 3) u, at most (far_d + C + 3) u
 * (far_d = 40 - ln C); -log p_y = log1p(so) + (max - x_y), a sum of non-negative terms,
 * within (C + 4) u, and 1 - p_y (focal) is so / (1 + so) when y is the argmax, so neither
 * loses its relative accuracy as p_y nears 1. Float lanes sum 8 terms (7 u) before double.
 * Pixels with a logit more than far_d below their max (p_c^2 or a focal term would leave the
 * normal floats), or an extreme weight, are computed in double (mc_far_pixel). test_fused_mc
 * compares every loss with the double pass at 2e-6 relative (focal 4e-6) for C up to 64; the
 * largest difference it sees is 1.2e-7. The argmax is the first maximum of the float logits
 * (the double pass takes it on double probabilities: the two differ only where two logits are
 * within 1e-16 of each other, whose probabilities round alike in double).
 *
 * The probabilities kernel (simd_mcp.h): p_c is the input, exact in float, so the soft sums and
 * the argmax (the first maximum, as the double pass takes it) are those of the double pass up to
 * the sums' rounding. -log p by mcp_nlog: max relative error 1.26e-7 (2.11 u) measured over
 * every 61st float of [1e-7, 1] (test_fused_mcp); the clip bounds are compared exactly (the
 * least float >= 1e-7, the least float > 1 - 1e-7) and their logs rounded once. Focal: 1 - p_y
 * within u/2 (exact for p_y >= 1/2), its square within 1.5 u, other gammas add about
 * 2 gamma |log(1 - p_y)| u. So a CE term is within 3 u and a sum within 10 u = 6e-7, focal
 * gamma 2 within 12 u. Far pixels, in double: a p_c outside [0, 1] or NaN (refused: validation
 * is deferred to this pass), with sum p^2 one in (0, 2^-63) (p^2 would leave the normal
 * floats), an extreme weight, or 1 - p_y in (0, e^(-86 / gamma)). test_fused_mcp compares every
 * loss with the double pass at the logits kernel's 2e-6 relative (focal 4e-6) for C up to 64 in
 * float32, float16 and bfloat16; the largest differences it sees are 4.3e-8 (focal 2.0e-7). */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"

typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));
typedef uint32_t v4u __attribute__((vector_size(16)));
typedef double v4d __attribute__((vector_size(32)));
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
typedef uint32_t v8u __attribute__((vector_size(32)));
typedef double v8d __attribute__((vector_size(64)));
typedef double v16d __attribute__((vector_size(128)));
typedef int64_t v4q __attribute__((vector_size(32)));
typedef int64_t v8q __attribute__((vector_size(64)));
typedef int64_t v16q __attribute__((vector_size(128)));
typedef float v16f __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));
typedef uint32_t v16u __attribute__((vector_size(64)));
/* Pixels a float32 lane sum runs over before it is folded into double: 8 per lane. */
#define SL_FOLD 64
/* Focal terms are summed times 2^75: outside the far lanes they lie in [2^-179, 2^5.4] (or
 * [2^-199, 2^25.4] times a weight in [2^-20, 2^20]), which 2^75 moves into the normal floats
 * (simd_body.h). */
#define SL_FOCAL_SCALE 0x1p75f

/* Vectors are passed in memory between the wider variants' helpers; every helper is inlined,
 * the ABI note does not concern us. */
#pragma GCC diagnostic ignored "-Wpsabi"
/* No multiply-add contraction (AVX-512 brings FMA), so that every variant rounds alike: GCC
 * would contract in GNU C mode or with -ffp-contract=fast, clang within an expression. (Only an
 * explicit clang -ffp-contract=fast overrides this; test_simd would then see the variants
 * differ.) */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#if defined(__x86_64__)
#include <immintrin.h>
#define SL_HAVE_X86 1
#endif

/* Pixel k of a multiclass call (simd_mc.h) in double, as softmax.c computes every pixel: the
 * far pixels, whose float32 values would leave the normal floats. Added to lane k % 16 of st
 * after the block's float sums: one function for every variant, so their bits agree. */
static void mc_far_pixel(const struct sl__mc_in *in, struct sl__mc_state *st, int64_t k, int what)
{
    const int C = in->classes, y = in->t16 ? in->t16[k] : in->t[k], nq = SL_MCQ_FOCAL + in->nfocal;
    const int64_t lane = k % 16;
    const double w = (what & SL_MC_W) ? (double)in->w[k] : 1.0;
    bool bad = y >= C;
    for (int c = 0; c < C; c++) {
        bad = bad || !isfinite(in->x[(int64_t)c * in->xs + k]);
    }
    if (bad) {
        st->bad = true;
        return;
    }
    double mx = in->x[k];
    int h = 0;
    for (int c = 1; c < C; c++) {
        if (in->x[(int64_t)c * in->xs + k] > mx) {
            mx = in->x[(int64_t)c * in->xs + k];
            h = c;
        }
    }
    double s = 0, so = 0;
    for (int c = 0; c < C; c++) {
        const double e = exp((double)in->x[(int64_t)c * in->xs + k] - mx);
        s += e;
        so += c == h ? 0.0 : e;
    }
    const double ls = log1p(so);
    for (int c = 0; c < C && (what & (SL_MC_SOFT | SL_MC_LS)); c++) {
        double *dl = st->lanes + (int64_t)c * nq * 16 + lane;
        const double d = (double)in->x[(int64_t)c * in->xs + k] - mx, p = exp(d) / s;
        if (what & SL_MC_SOFT) {
            dl[SL_MCQ_SP * 16] += p;
        }
        if (what & SL_MC_SP2) {
            dl[SL_MCQ_SP2 * 16] += p * p;
        }
        if (what & SL_MC_LS) {
            dl[SL_MCQ_LP * 16] += w * (ls - d);
        }
    }
    double *dy = st->lanes + (int64_t)y * nq * 16 + lane;
    const double dyv = (double)in->x[(int64_t)y * in->xs + k] - mx, py = exp(dyv) / s;
    const double nlp = ls - dyv;
    dy[SL_MCQ_SPY * 16] += py;
    if (what & SL_MC_CE) {
        dy[SL_MCQ_CE * 16] += w * nlp;
    }
    if (what & SL_MC_FOCAL) {
        const double q = y == h ? so / s : 1 - py;
        for (int f = 0; f < in->nfocal; f++) {
            const double g = in->gamma[f];
            dy[(SL_MCQ_FOCAL + f) * 16] += w * (g == 2 ? q * q : pow(q, g)) * nlp;
        }
    }
    st->counts[(int64_t)y * 48 + lane]++;
    if (what & SL_MC_CM) {
        st->counts[(int64_t)h * 48 + 32 + lane]++;
        st->counts[(int64_t)y * 48 + 16 + lane] += y == h;
    }
    if (st->matrix) {
        st->matrix[(int64_t)y * C + h]++;
    }
}

/* The float thresholds of the probabilities kernel (simd_mcp.h), computed once per call in
 * double by one function for every variant. */
struct mcp_lim {
    float lo, hi;       /* p < lo: p < SL_EPS; p >= hi: p > 1 - SL_EPS (the double pass's clip) */
    float nl_lo, nl_hi; /* -log SL_EPS and -log(1 - SL_EPS), rounded to float */
    float qmin;         /* a focal factor's base 1 - p_y in (0, qmin) makes the pixel far */
    bool any_exp;       /* a focal gamma other than 2 (exp(gamma log q)) */
};

/* The least float >= v. */
static float float_up(double v)
{
    const float f = (float)v;
    return (double)f < v ? nextafterf(f, INFINITY) : f;
}

/* The thresholds for in: clip bounds compared in float as the double pass compares in double;
 * with focal gammas other than 2 (largest g), q^g must stay above e^-86 (a normal float, times
 * the weight, -log p_y >= 1e-7 and SL_FOCAL_SCALE), so q < e^(-86 / g) is far (a gamma beyond
 * FLT_MAX or infinite: every q > 0). */
static void mcp_limits(const struct sl__mc_in *in, struct mcp_lim *l)
{
    l->lo = float_up(SL_EPS);
    l->hi = float_up(1 - SL_EPS);
    if ((double)l->hi == 1 - SL_EPS) {
        l->hi = nextafterf(l->hi, INFINITY);
    }
    l->nl_lo = (float)-log(SL_EPS);
    l->nl_hi = (float)-log(1 - SL_EPS);
    double g = 0;
    l->any_exp = false;
    for (int f = 0; f < in->nfocal && (in->what & SL_MC_FOCAL); f++) {
        if (in->gamma[f] != 2.0f) {
            l->any_exp = true;
            g = in->gamma[f] > g ? in->gamma[f] : g;
        }
    }
    l->qmin = g <= 0 ? 0.0f : g <= FLT_MAX ? float_up(exp(-86 / g)) : 2.0f;
}

/* Pixel k of a probabilities call (simd_mcp.h) in double, as softmax.c computes every pixel
 * (block_probs, block_ce_focal): the far pixels. A prediction outside [0, 1] (or NaN) sets
 * st->bad even where the target is ignored (validation deferred to the pass), as does a
 * counted target byte beyond the classes. Added to lane k % 16 after the block's float sums. */
static void mcp_far_pixel(const struct sl__mc_in *in, struct sl__mc_state *st, int64_t k, int what)
{
    const int C = in->classes, y = in->t16 ? in->t16[k] : in->t[k], nq = SL_MCQ_FOCAL + in->nfocal;
    for (int c = 0; c < C; c++) {
        const float v = in->x[(int64_t)c * in->xs + k];
        if (!(v >= 0 && v <= 1)) {
            st->bad = true;
            return;
        }
    }
    if (y == in->ign) {
        return;
    }
    if (y >= C) {
        st->bad = true;
        return;
    }
    const int64_t lane = k % 16;
    const double w = (what & SL_MC_W) ? (double)in->w[k] : 1.0;
    double mx = in->x[k];
    int h = 0;
    for (int c = 1; c < C; c++) {
        if (in->x[(int64_t)c * in->xs + k] > mx) {
            mx = in->x[(int64_t)c * in->xs + k];
            h = c;
        }
    }
    for (int c = 0; c < C && (what & (SL_MC_SOFT | SL_MC_LS)); c++) {
        double *dl = st->lanes + (int64_t)c * nq * 16 + lane;
        const double p = in->x[(int64_t)c * in->xs + k];
        if (what & SL_MC_SOFT) {
            dl[SL_MCQ_SP * 16] += p;
        }
        if (what & SL_MC_SP2) {
            dl[SL_MCQ_SP2 * 16] += p * p;
        }
        if (what & SL_MC_LS) {
            dl[SL_MCQ_LP * 16] += w * -log(sl__clip(p));
        }
    }
    double *dy = st->lanes + (int64_t)y * nq * 16 + lane;
    const double py = in->x[(int64_t)y * in->xs + k], nl = -log(sl__clip(py));
    dy[SL_MCQ_SPY * 16] += py;
    if (what & SL_MC_CE) {
        dy[SL_MCQ_CE * 16] += w * nl;
    }
    for (int f = 0; f < in->nfocal && (what & SL_MC_FOCAL); f++) {
        dy[(SL_MCQ_FOCAL + f) * 16] += w * pow(fmax(1.0 - py, 0.0), in->gamma[f]) * nl;
    }
    st->counts[(int64_t)y * 48 + lane]++;
    if (what & SL_MC_CM) {
        st->counts[(int64_t)h * 48 + 32 + lane]++;
        st->counts[(int64_t)y * 48 + 16 + lane] += y == h;
    }
    if (st->matrix) {
        st->matrix[(int64_t)y * C + h]++;
    }
}

/* ---- the baseline variant: 4 lanes (SSE2, or any 128-bit SIMD), two accumulators ---- */
#define VF v4f
#define VI v4i
#define VU v4u
#define VL 4
#define VF_SPLAT(a) ((v4f){(a), (a), (a), (a)})
#define VI_SPLAT(a) ((v4i){(a), (a), (a), (a)})
#define VI_IOTA ((v4i){0, 1, 2, 3})
#define AF v4f
#define AI v4i
#define DF v4d
#define NA 2
#define VD v4d
#define VQ v4q

/* VL bytes at p widened to VL int32 lanes. */
static inline __attribute__((always_inline)) void base_load_u8(v4i *out, const uint8_t *p)
{
#if defined(__x86_64__)
    int32_t b;
    memcpy(&b, p, sizeof b);
    const __m128i z = _mm_setzero_si128();
    *out = (v4i)_mm_unpacklo_epi16(_mm_unpacklo_epi8(_mm_cvtsi32_si128(b), z), z);
#else
    for (int l = 0; l < 4; l++) {
        (*out)[l] = p[l];
    }
#endif
}

/* Whether any lane of mask m is set. */
static inline __attribute__((always_inline)) int base_any(v4i m)
{
#if defined(__x86_64__)
    return _mm_movemask_ps((__m128)m) != 0;
#else
    return (m[0] | m[1] | m[2] | m[3]) != 0;
#endif
}

/* a > b ? a : b and a < b ? a : b lane-wise (maxps/minps: the second operand when unordered) */
#if defined(__x86_64__)
#define SL_VMAX(a, b) ((v4f)_mm_max_ps((__m128)(a), (__m128)(b)))
#define SL_VMIN(a, b) ((v4f)_mm_min_ps((__m128)(a), (__m128)(b)))
#else
#define SL_VMAX(a, b) ((v4f)((((a) > (b)) & (v4i)(a)) | (~((a) > (b)) & (v4i)(b))))
#define SL_VMIN(a, b) ((v4f)((((a) < (b)) & (v4i)(a)) | (~((a) < (b)) & (v4i)(b))))
#endif
/* Lane-wise round to nearest (ties to even) of |t| < 2^22, and y 2^n for integer-valued n with
 * y 2^n normal (simd_mc.h mc_exp): the same values in every variant. */
static inline __attribute__((always_inline)) v4f base_rndn(v4f t)
{
    const v4f magic = {12582912.0f, 12582912.0f, 12582912.0f, 12582912.0f}; /* 1.5 * 2^23 */
    return (t + magic) - magic;
}
#define SL_RNDN(t) base_rndn(t)
#define SL_POW2MUL(y, n) ((y) * (v4f)((__builtin_convertvector((n), v4i) + 127) << 23))
#define SL_TGT
#define SL_NAME(f) base_##f
#define SL_LOAD_U8 base_load_u8
#define SL_ANY base_any
#include "simd_body.h"
#undef AF
#undef AI
#undef DF
#undef NA

#ifdef SL_HAVE_X86
#define SL_AVX2 "avx2"
#define SL_AVX512 "avx512f,avx512vl"

/* ---- AVX2: 8 lanes ---- */
#define VF v8f
#define VI v8i
#define VU v8u
#define VL 8
#define VF_SPLAT(a) ((v8f){(a), (a), (a), (a), (a), (a), (a), (a)})
#define VI_SPLAT(a) ((v8i){(a), (a), (a), (a), (a), (a), (a), (a)})
#define VI_IOTA ((v8i){0, 1, 2, 3, 4, 5, 6, 7})
#define AF v8f
#define AI v8i
#define DF v8d
#define NA 1
#define VD v8d
#define VQ v8q

static inline __attribute__((always_inline, target(SL_AVX2))) void avx2_load_u8(v8i *out,
                                                                                const uint8_t *p)
{
    *out = (v8i)_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)p));
}

static inline __attribute__((always_inline, target(SL_AVX2))) int avx2_any(v8i m)
{
    return _mm256_movemask_ps((__m256)m) != 0;
}

#define SL_VMAX(a, b) ((v8f)_mm256_max_ps((__m256)(a), (__m256)(b)))
#define SL_VMIN(a, b) ((v8f)_mm256_min_ps((__m256)(a), (__m256)(b)))
#define SL_RNDN(t)                                                                                 \
    ((v8f)_mm256_round_ps((__m256)(t), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC))
#define SL_POW2MUL(y, n) ((y) * (v8f)((__builtin_convertvector((n), v8i) + 127) << 23))
#define SL_TGT __attribute__((target(SL_AVX2)))
#define SL_NAME(f) avx2_##f
#define SL_LOAD_U8 avx2_load_u8
#define SL_ANY avx2_any
#include "simd_body.h"

/* ---- AVX-512: 16 lanes of math, summed into 8-lane accumulators ---- */
#define VF v16f
#define VI v16i
#define VU v16u
#define VL 16
#define VF_SPLAT(a)                                                                                \
    ((v16f){(a), (a), (a), (a), (a), (a), (a), (a), (a), (a), (a), (a), (a), (a), (a), (a)})
#define VI_SPLAT(a)                                                                                \
    ((v16i){(a), (a), (a), (a), (a), (a), (a), (a), (a), (a), (a), (a), (a), (a), (a), (a)})
#define VI_IOTA ((v16i){0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})

static inline __attribute__((always_inline, target(SL_AVX512))) void
avx512_load_u8(v16i *out, const uint8_t *p)
{
    *out = (v16i)_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)p));
}

static inline __attribute__((always_inline, target(SL_AVX512))) int avx512_any(v16i m)
{
    return _mm512_test_epi32_mask((__m512i)m, (__m512i)m) != 0;
}

#define VD v16d
#define VQ v16q
#define SL_VMAX(a, b) ((v16f)_mm512_max_ps((__m512)(a), (__m512)(b)))
#define SL_VMIN(a, b) ((v16f)_mm512_min_ps((__m512)(a), (__m512)(b)))
#define SL_RNDN(t)                                                                                 \
    ((v16f)_mm512_roundscale_ps((__m512)(t), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC))
#define SL_POW2MUL(y, n) ((v16f)_mm512_scalef_ps((__m512)(y), (__m512)(n)))
#define SL_MT __mmask16
#define SL_MEQ(a, b) _mm512_cmpeq_epi32_mask((__m512i)(a), (__m512i)(b))
#define SL_MNE(a, b) _mm512_cmpneq_epi32_mask((__m512i)(a), (__m512i)(b))
#define SL_MADD(acc, m, x)                                                                         \
    ((v16f)_mm512_mask_add_ps((__m512)(acc), (m), (__m512)(acc), (__m512)(x)))
#define SL_MINC(acc, m)                                                                            \
    ((v16i)_mm512_mask_sub_epi32((__m512i)(acc), (m), (__m512i)(acc), _mm512_set1_epi32(-1)))
#define SL_TGT __attribute__((target(SL_AVX512)))
#define SL_NAME(f) avx512_##f
#define SL_LOAD_U8 avx512_load_u8
#define SL_ANY avx512_any
#include "simd_body.h"
#endif

int sl__simd_best(void)
{
#ifdef SL_HAVE_X86
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")) {
        return SL_SIMD_AVX512;
    }
    if (__builtin_cpu_supports("avx2")) {
        return SL_SIMD_AVX2;
    }
#endif
    return SL_SIMD_BASE;
}

/* Calls the variant of f for isa: the best one when isa < 0, the baseline one when this CPU
 * lacks the instruction set asked for. */
#ifdef SL_HAVE_X86
#define SL_DISPATCH(isa, f, ...)                                                                   \
    do {                                                                                           \
        const int best_ = sl__simd_best();                                                         \
        const int use_ = (isa) < 0 || (isa) > best_ ? best_ : (isa);                               \
        if (use_ == SL_SIMD_AVX512) {                                                              \
            avx512_##f(__VA_ARGS__);                                                               \
        } else if (use_ == SL_SIMD_AVX2) {                                                         \
            avx2_##f(__VA_ARGS__);                                                                 \
        } else {                                                                                   \
            base_##f(__VA_ARGS__);                                                                 \
        }                                                                                          \
    } while (0)
#else
#define SL_DISPATCH(isa, f, ...) base_##f(__VA_ARGS__)
#endif

void sl__exp_neg_f32(int isa, const float *in, float *out, int64_t n)
{
    SL_DISPATCH(isa, exp_neg_array, in, out, n);
}

void sl__mc_exp_f32(int isa, const float *in, float *out, int64_t n)
{
    SL_DISPATCH(isa, mc_exp_array, in, out, n);
}

void sl__log1p01_f32(int isa, const float *in, float *out, int64_t n)
{
    SL_DISPATCH(isa, log1p01_array, in, out, n);
}

void sl__fused_logits(int isa, const struct sl__fused_in *in, struct sl__fused_out *out)
{
    struct sl__fused_in f = *in;
    /* normalize what to the combinations simd_body.h specializes */
    if (f.what & (SL_FZ_FOCAL_SQ | SL_FZ_FOCAL_EXP)) {
        f.what |= SL_FZ_LOG;
    }
    if (f.what & SL_FZ_FOCAL_EXP) {
        f.what &= ~SL_FZ_FOCAL_SQ;
    }
    if (f.what & SL_FZ_LOG) {
        f.what |= SL_FZ_P;
    }
    if (!(f.what & SL_FZ_LOG) || !f.w) {
        f.what &= ~SL_FZ_W;
    }
    SL_DISPATCH(isa, fused, &f, out);
}

float sl__mc_far_d(int classes, double gamma_max)
{
    /* p_c >= e^-far_d / C and (1 - p_y)^2 stay above e^-80 (p^2 normal), and with a gamma g
     * other than 2, (1 - p_y)^g above e^-(86 - 2 g) (simd_mc.h) */
    double d = 40 - log((double)classes);
    if (gamma_max > 0 && 86 / gamma_max - log((double)classes) - 2 < d) {
        d = 86 / gamma_max - log((double)classes) - 2;
    }
    return d > 0 ? (float)d : 0.0f;
}

void sl__mc_logits(int isa, const struct sl__mc_in *in, struct sl__mc_state *st)
{
    SL_DISPATCH(isa, mc, in, st);
}

void sl__mc_probs(int isa, const struct sl__mc_in *in, struct sl__mc_state *st)
{
    SL_DISPATCH(isa, mcp, in, st);
}

void sl__nlog01_f32(int isa, const float *in, float *out, int64_t n)
{
    SL_DISPATCH(isa, mcp_nlog_array, in, out, n);
}
