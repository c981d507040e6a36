/* simd_body.h - the float32 SIMD kernels, written once and compiled per instruction set by
 * simd.c (baseline x86-64, AVX2, AVX-512). Not a header to include elsewhere.
 *
 * The includer defines SL_TGT (the target attribute or nothing), SL_NAME(f) (the variant's name
 * of f), the math vector types VF/VI/VU (float, int32, uint32) of VL = 4, 8 or 16 lanes with
 * VF_SPLAT/VI_SPLAT/VI_IOTA, SL_LOAD_U8(VI *, const uint8_t *) widening VL bytes, and the
 * accumulators: NA of AF/AI (float and int32, 8 lanes in all) and DF (double, as many lanes as
 * AF).
 *
 * Every variant runs the same IEEE float operations on every pixel, and sums pixel k into
 * accumulator lane k % 8 in pixel order (a 4-lane variant keeps two 4-lane accumulators and
 * alternates; a 16-lane one adds its low half, then its high half). FMA is not used, so no
 * multiply-add is contracted. Hence all variants return bit-identical results.
 *
 * Helpers take and return vectors through pointers: a 32-byte vector passed by value would
 * change the ABI of the baseline variant (GCC notes it, clang refuses across targets); every
 * helper is always inlined, so the pointers cost nothing. */

#define SL_INL static inline __attribute__((always_inline)) SL_TGT

/* z <- e^z for z <= 0 (any z <= 0 or -inf; 0 for z < -87.3365, where e^z is below the smallest
 * normal float, 1.2e-38). Cephes expf: z = n ln2 + r with |r| <= ln2/2 (ln2 split in a 9-bit
 * head and a tail so n*head is exact), e^r by a degree-7 polynomial, times 2^n from the exponent
 * bits. Lanes below the cut compute junk (no traps are enabled) that the last mask drops.
 * Max relative error over every float in [-87.3365, 0]: 8.2e-8 (simd.c, test_simd). */
SL_INL void SL_NAME(exp_neg)(VF *z)
{
    const VF magic = VF_SPLAT(12582912.0f); /* 1.5 * 2^23: adding it rounds to an integer */
    const VF zc = *z;
    const VI keep = zc >= VF_SPLAT(-87.3365402f);
    VF t = zc * VF_SPLAT(1.44269504088896341f);
    t = t + magic;
    const VF nf = t - magic;
    const VI ni = (VI)t - (VI)magic;
    VF r = zc - nf * VF_SPLAT(0.693359375f);
    r = r - nf * VF_SPLAT(-2.12194440e-4f);
    /* e^r = 1 + r + r^2 P(r), P of degree 5 evaluated by Estrin's scheme (a shorter chain of
     * dependent operations than Horner's) */
    const VF r2 = r * r;
    const VF pa = VF_SPLAT(5.0000001201e-1f) + VF_SPLAT(1.6666665459e-1f) * r;
    const VF pb = VF_SPLAT(4.1665795894e-2f) + VF_SPLAT(8.3334519073e-3f) * r;
    const VF pc = VF_SPLAT(1.3981999507e-3f) + VF_SPLAT(1.9875691500e-4f) * r;
    VF y = pa + r2 * (pb + r2 * pc);
    y = y * r2;
    y = y + r;
    y = y + VF_SPLAT(1.0f);
    const VF scale = (VF)((VU)(ni + 127) << 23); /* junk lanes: unsigned, no UB */
    *z = (VF)(keep & (VI)(y * scale));
}

/* e <- log(1 + e) for e in [0, 1]: log1p(e) = 2 atanh(t), t = e / (2 + e) in [0, 1/3], by the
 * atanh series (a fitted polynomial), with the rounding error of 2 + e carried into the last
 * addition. Accurate for tiny e as well, where 1 + e would round to 1.
 * Max relative error over every normal float in [0, 1]: 1.3e-7 (simd.c, test_simd). */
SL_INL void SL_NAME(log1p01)(VF *e)
{
    const VF d = VF_SPLAT(2.0f) + *e;
    const VF err = *e - (d - VF_SPLAT(2.0f)); /* exact: 2 + e - d */
    const VF t = *e / d;
    const VF corr = t * err * (VF_SPLAT(0.5f) - VF_SPLAT(0.125f) * *e); /* t err / d, to 4% */
    /* atanh(t)/t = 1 + u Q(u), u = t^2 in [0, 1/9]: Q of degree 4 fitted at Chebyshev nodes
     * (adds under 1e-9 relative), evaluated by Estrin's scheme */
    const VF t2 = t * t, u2 = t2 * t2;
    const VF qa = VF_SPLAT(3.333333433e-1f) + VF_SPLAT(1.999985278e-1f) * t2;
    const VF qb = VF_SPLAT(1.429617852e-1f) + VF_SPLAT(1.085328758e-1f) * t2;
    const VF q = qa + u2 * (qb + u2 * VF_SPLAT(1.161216497e-1f));
    const VF tt = t + t;
    *e = tt + ((tt * t2) * q - (corr + corr));
}

/* Per-lane partial sums of one fused pass: float32 over at most SL_FOLD pixels (then folded
 * into doubles), counts in int32. */
struct SL_NAME(lanes) {
    AF sp[NA], spy[NA], sp2[NA], ce_pos[NA], ce_neg[NA], f_pos[NA], f_neg[NA];
    AI counts[NA]; /* count + 2^8 sy + 2^16 tp + 2^24 sh: each at most SL_FOLD / 8 */
};

struct SL_NAME(dlanes) {
    DF sp[NA], spy[NA], sp2[NA], ce_pos[NA], ce_neg[NA], f_pos[NA], f_neg[NA];
    DF count[NA], sy[NA], tp[NA], sh[NA];
};

/* Bits of t where mask m (lanes all ones or all zeros) is set, else 0. */
#define SL_AND(m, t) ((VF)((m) & (VI)(t)))
/* Lane-wise m ? a : b. */
#define SL_SEL(m, a, b) ((VF)(((m) & (VI)(a)) | (~(m) & (VI)(b))))

/* *acc += the terms of VL pixels, in pixel order: lane l takes pixel l, then pixel 8 + l. */
SL_INL void SL_NAME(addf)(AF *acc, const VF *t)
{
#if VL <= 8
    *acc += *t;
#else
    *acc += __builtin_shufflevector(*t, *t, 0, 1, 2, 3, 4, 5, 6, 7);
    *acc += __builtin_shufflevector(*t, *t, 8, 9, 10, 11, 12, 13, 14, 15);
#endif
}

/* *acc += the packed counts of VL pixels, in pixel order. */
SL_INL void SL_NAME(addm)(AI *acc, const VI *m)
{
#if VL <= 8
    *acc += *m;
#else
    *acc += __builtin_shufflevector(*m, *m, 0, 1, 2, 3, 4, 5, 6, 7);
    *acc += __builtin_shufflevector(*m, *m, 8, 9, 10, 11, 12, 13, 14, 15);
#endif
}

/* VL pixels: logits x, target bytes tb, weights w (what & SL_FZ_W), lanes live (all ones but
 * in the tail), summed into accumulators j. See struct sl__fused_in for what is summed. */
SL_INL void SL_NAME(fused_step)(const struct sl__fused_in *in, const VF *xp, const VI *tb,
                                const VF *wp, const VI *live, struct SL_NAME(lanes) * a, int j,
                                VI *bad, const int what)
{
    const VF one = VF_SPLAT(1.0f), x = *xp;
    const VI m = (*tb != in->ign) & *live;
    const VI y = (*tb == 1) & m;
    const VI h = (x >= VF_SPLAT(in->thr)) & m;
    const VI yh = h & y;
    /* a target byte other than 0, 1 and ignore_index, or a logit NaN or infinite, is refused
     * by validation; a pass that skipped it reports such lanes instead */
    *bad |= (((*tb > 1) & (*tb != in->ign)) | (((VI)x & 0x7f800000) == 0x7f800000)) & *live;
    const VI packed = (m & 1) + (y & 0x100) + (yh & 0x10000) + (h & 0x1000000);
    SL_NAME(addm)(&a->counts[j], &packed);
    if (!(what & SL_FZ_P)) {
        return;
    }
    /* sigmoid from e = exp(-|x|): p = 1/(1+e) for x >= 0, e/(1+e) below; q = 1 - p likewise */
    const VF ax = (VF)((VI)x & 0x7fffffff);
    VF e = -ax;
    SL_NAME(exp_neg)(&e);
    const VF r = one / (one + e), er = e * r;
    const VI pos = x >= VF_SPLAT(0.0f);
    const VF p = SL_SEL(pos, r, er), q = SL_SEL(pos, er, r), p2 = p * p;
    const VF mp = SL_AND(m, p), yp = SL_AND(y, p), mp2 = SL_AND(m, p2);
    SL_NAME(addf)(&a->sp[j], &mp);
    SL_NAME(addf)(&a->spy[j], &yp);
    SL_NAME(addf)(&a->sp2[j], &mp2);
    if (!(what & SL_FZ_LOG)) {
        return;
    }
    /* -log p = log1p(e) + max(-x, 0), -log(1-p) = log1p(e) + max(x, 0) (the stable BCE with
     * logits of PyTorch) */
    VF s = e;
    SL_NAME(log1p01)(&s);
    const VF nlp = s + SL_AND(~pos, ax), nl1p = s + SL_AND(pos, ax);
    const VI ny = m & ~y;
    VF wy = SL_AND(y, one), wn = SL_AND(ny, one);
    if (what & SL_FZ_W) {
        wy = SL_AND(y, *wp);
        wn = SL_AND(ny, *wp);
    }
    const VF cp = wy * nlp, cn = wn * nl1p;
    SL_NAME(addf)(&a->ce_pos[j], &cp);
    SL_NAME(addf)(&a->ce_neg[j], &cn);
    if (what & (SL_FZ_FOCAL_SQ | SL_FZ_FOCAL_EXP)) {
        /* Lin et al. 2017: (1-p)^gamma (-log p) and p^gamma (-log(1-p)); gamma 2 by products,
         * any other gamma as exp(gamma log(1-p)) (MONAI's form) */
        VF qg = q * q, pg = p2;
        if (what & SL_FZ_FOCAL_EXP) {
            const VF g = VF_SPLAT(-in->gamma);
            qg = g * nl1p;
            pg = g * nlp;
            SL_NAME(exp_neg)(&qg);
            SL_NAME(exp_neg)(&pg);
        }
        const VF fp = wy * qg * nlp, fn = wn * pg * nl1p;
        SL_NAME(addf)(&a->f_pos[j], &fp);
        SL_NAME(addf)(&a->f_neg[j], &fn);
    }
}

SL_INL void SL_NAME(fold)(const struct SL_NAME(lanes) * a, struct SL_NAME(dlanes) * d)
{
#define SL_FOLD1(f)                                                                                \
    for (int j = 0; j < NA; j++) {                                                                 \
        d->f[j] += __builtin_convertvector(a->f[j], DF);                                           \
    }
    SL_FOLD1(sp);
    SL_FOLD1(spy);
    SL_FOLD1(sp2);
    SL_FOLD1(ce_pos);
    SL_FOLD1(ce_neg);
    SL_FOLD1(f_pos);
    SL_FOLD1(f_neg);
#undef SL_FOLD1
    for (int j = 0; j < NA; j++) {
        const AI c = a->counts[j];
        d->count[j] += __builtin_convertvector(c & 0xff, DF);
        d->sy[j] += __builtin_convertvector((c >> 8) & 0xff, DF);
        d->tp[j] += __builtin_convertvector((c >> 16) & 0xff, DF);
        d->sh[j] += __builtin_convertvector((c >> 24) & 0xff, DF);
    }
}

/* The sum of the 8 lanes, lane 0 first. */
static inline double SL_NAME(hsum)(const DF *v)
{
    double s = 0;
    for (int j = 0; j < NA; j++) {
        for (int l = 0; l < 8 / NA; l++) {
            s += v[j][l];
        }
    }
    return s;
}

/* The fused pass over in->n pixels for one combination of what (a constant once inlined). */
SL_INL void SL_NAME(fused_body)(const struct sl__fused_in *in, struct sl__fused_out *out,
                                const int what)
{
    struct SL_NAME(dlanes) d;
    VI bad = VI_SPLAT(0);
    const int64_t n = in->n;
    memset(&d, 0, sizeof d);
    for (int64_t base = 0; base < n; base += SL_FOLD) {
        struct SL_NAME(lanes) a;
        memset(&a, 0, sizeof a);
        const int64_t lim = n - base < SL_FOLD ? n : base + SL_FOLD;
        const VI all = VI_SPLAT(-1);
        VF x, w = VF_SPLAT(0.0f);
        VI tb;
        int64_t k = base;
        /* NA steps of VL pixels at a time, one per accumulator (NA = 1 but for 4 lanes) */
        for (; k + VL * NA <= lim; k += VL * NA) {
            for (int j = 0; j < NA; j++) {
                memcpy(&x, in->x + k + j * VL, sizeof x);
                SL_LOAD_U8(&tb, in->t + k + j * VL);
                if (what & SL_FZ_W) {
                    memcpy(&w, in->w + k + j * VL, sizeof w);
                }
                SL_NAME(fused_step)(in, &x, &tb, &w, &all, &a, j, &bad, what);
            }
        }
        for (int j = 0; j < NA && k < lim; j++, k += VL) {
            /* the tail: zero-padded copies, dead lanes masked out */
            float xs[VL] = {0}, ws[VL] = {0};
            uint8_t ts[VL] = {0};
            const int rem = (int)(lim - k < VL ? lim - k : VL);
            memcpy(xs, in->x + k, sizeof(float) * (size_t)rem);
            memcpy(ts, in->t + k, (size_t)rem);
            if (what & SL_FZ_W) {
                memcpy(ws, in->w + k, sizeof(float) * (size_t)rem);
            }
            memcpy(&x, xs, sizeof x);
            memcpy(&w, ws, sizeof w);
            SL_LOAD_U8(&tb, ts);
            const VI live = VI_IOTA < VI_SPLAT(rem);
            SL_NAME(fused_step)(in, &x, &tb, &w, &live, &a, j, &bad, what);
        }
        SL_NAME(fold)(&a, &d);
    }
    out->count += SL_NAME(hsum)(d.count);
    out->sy += SL_NAME(hsum)(d.sy);
    out->sp += SL_NAME(hsum)(d.sp);
    out->spy += SL_NAME(hsum)(d.spy);
    out->sp2 += SL_NAME(hsum)(d.sp2);
    out->ce_pos += SL_NAME(hsum)(d.ce_pos);
    out->ce_neg += SL_NAME(hsum)(d.ce_neg);
    out->f_pos += SL_NAME(hsum)(d.f_pos);
    out->f_neg += SL_NAME(hsum)(d.f_neg);
    out->tp += SL_NAME(hsum)(d.tp);
    out->sh += SL_NAME(hsum)(d.sh);
    for (int l = 0; l < VL; l++) {
        out->bad |= bad[l] != 0;
    }
}

/* The specializations sl__fused_logits normalizes what to. */
static SL_TGT void SL_NAME(fused)(const struct sl__fused_in *in, struct sl__fused_out *out)
{
    enum { P = SL_FZ_P, L = SL_FZ_LOG, SQ = SL_FZ_FOCAL_SQ, EX = SL_FZ_FOCAL_EXP, W = SL_FZ_W };
    switch (in->what) {
    case 0:
        SL_NAME(fused_body)(in, out, 0);
        return;
    case P:
        SL_NAME(fused_body)(in, out, P);
        return;
    case P | L:
        SL_NAME(fused_body)(in, out, P | L);
        return;
    case P | L | SQ:
        SL_NAME(fused_body)(in, out, P | L | SQ);
        return;
    case P | L | EX:
        SL_NAME(fused_body)(in, out, P | L | EX);
        return;
    case P | L | W:
        SL_NAME(fused_body)(in, out, P | L | W);
        return;
    case P | L | SQ | W:
        SL_NAME(fused_body)(in, out, P | L | SQ | W);
        return;
    default: /* P | L | EX | W */
        SL_NAME(fused_body)(in, out, P | L | EX | W);
        return;
    }
}

/* Array forms for the unit tests and for measuring the error; n is a multiple of 16. */
static SL_TGT void SL_NAME(exp_neg_array)(const float *in, float *out, int64_t n)
{
    for (int64_t k = 0; k < n; k += VL) {
        VF v;
        memcpy(&v, in + k, sizeof v);
        SL_NAME(exp_neg)(&v);
        memcpy(out + k, &v, sizeof v);
    }
}

static SL_TGT void SL_NAME(log1p01_array)(const float *in, float *out, int64_t n)
{
    for (int64_t k = 0; k < n; k += VL) {
        VF v;
        memcpy(&v, in + k, sizeof v);
        SL_NAME(log1p01)(&v);
        memcpy(out + k, &v, sizeof v);
    }
}

#undef SL_AND
#undef SL_SEL
#undef SL_INL
