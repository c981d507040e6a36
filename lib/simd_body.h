/* simd_body.h - the float32 SIMD kernels, written once and compiled per instruction set by
 * simd.c (baseline x86-64, AVX2, AVX-512). Not a header to include elsewhere.
 *
 * The includer defines SL_TGT (the target attribute or nothing), SL_NAME(f) (the variant's name
 * of f), the math vector types VF/VI/VU (float, int32, uint32) of VL = 4, 8 or 16 lanes with
 * VF_SPLAT/VI_SPLAT/VI_IOTA, SL_LOAD_U8(VI *, const uint8_t *) widening VL bytes, SL_ANY(VI)
 * (whether any lane of a mask is set), the double and int64 vectors VD/VQ of VL lanes, and the
 * accumulators: NA of AF/AI (float and int32, 8 lanes in all) and DF (double, as many lanes as
 * AF).
 *
 * Every variant runs the same IEEE float operations on every pixel, and sums pixel k into
 * accumulator lane k % 8 in pixel order (a 4-lane variant keeps two 4-lane accumulators and
 * alternates; a 16-lane one adds its low half, then its high half). FMA is not used, so no
 * multiply-add is contracted. Hence all variants return bit-identical results.
 *
 * Float32 covers a pixel only while every intermediate value stays a normal float: |x| <= 40
 * (p, 1 - p, p^2 and (1 - p)^2 are then at least e^-80 = 1.8e-35), for a focal gamma other than
 * 2 also gamma (|x| + ln 2) <= 86 (the factor e^(-gamma |log p|) stays normal), and a weight 0 or
 * in [2^-60, 2^100] ([2^-20, 2^20] with focal; no float sum of 8 terms overflows). Focal terms,
 * as small as e^-124 w, are summed times SL_FOCAL_SCALE. Any other counted lane is "far": the
 * main loop leaves it out and far_block computes it in double, as planes.c's double pass does,
 * with e^z over the whole double range (dexp). So sigmoid(-90) = 8.2e-40 is not flushed to 0
 * (Dice with smooth 0 on an empty target is 1 - 0 / sum p: 1 when any p > 0, not 0/0), and a
 * logit or a weight near 3e38 cannot overflow a float sum. Far lanes are rare in real data;
 * a block that has one costs a second, slower pass over its 64 pixels.
 *
 * Helpers take and return vectors through pointers: a 32-byte vector passed by value would
 * change the ABI of the baseline variant (GCC notes it, clang refuses across targets); every
 * helper but far_block (which takes no vector) is always inlined, so the pointers cost
 * nothing. */

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

/* A double vector of a's. */
#define SL_DSPLAT(a) ((VD){0} + (a))

/* z <- e^z in double for z <= 0 (below -800: 0, as e^z is 0 in double from -745.2 on; NaN,
 * which only a focal gamma beyond FLT_MAX times a log of 0 makes, as that product 0: 1):
 * z = n ln2 + r, |r| <= ln2/2, e^r by its Taylor polynomial of degree 11 (truncation under
 * 1e-14 relative), times 2^n built from exponent bits in two steps so that a result below the
 * smallest normal double is rounded once, as libm's exp rounds it. Only for far lanes. */
SL_INL void SL_NAME(dexp)(VD *z)
{
    const VQ nan = *z != *z, keep = (*z >= -800.0) | nan;
    const VD zc = (VD)((VQ)*z & (keep & ~nan));     /* NaN and z < -800 become 0 */
    const VD magic = SL_DSPLAT(6755399441055744.0); /* 1.5 * 2^52: adding it rounds */
    VD t = zc * 1.4426950408889634 + magic;
    const VD nf = t - magic;
    const VQ ni = (VQ)t - (VQ)magic;
    const VD r = (zc - nf * 0.693147180369123816490) - nf * 1.90821492927058770002e-10;
    VD y = 1.0 + r * (1.0 / 11);
    for (int k = 10; k >= 1; k--) {
        y = 1.0 + r * y * (1.0 / k);
    }
    const VD scale = (VD)((VQ)(ni + (1023 + 600)) << 52);
    *z = (VD)((VQ)((y * scale) * 0x1p-600) & keep);
}

/* Per-lane partial sums of one fused pass over at most SL_FOLD pixels, then folded into
 * dlanes: float32 sums, counts in int32. */
struct SL_NAME(lanes) {
    AF sp[NA], spy[NA], sp2[NA], ce_pos[NA], ce_neg[NA];
    AF f_pos[NA], f_neg[NA]; /* times SL_FOCAL_SCALE */
    AI counts[NA];           /* count + 2^8 sy + 2^16 tp + 2^24 sh: each at most SL_FOLD / 8 */
};

/* The sums over all pixels; far lanes add to them directly. */
struct SL_NAME(dlanes) {
    DF sp[NA], spy[NA], sp2[NA], ce_pos[NA], ce_neg[NA], f_pos[NA], f_neg[NA];
    DF count[NA], sy[NA], tp[NA], sh[NA];
};

/* Bits of t where mask m (lanes all ones or all zeros) is set, else 0. */
#define SL_AND(m, t) ((VF)((m) & (VI)(t)))
/* Lane-wise m ? a : b. */
#define SL_SEL(m, a, b) ((VF)(((m) & (VI)(a)) | (~(m) & (VI)(b))))
/* Conditional sums: SL_MT a lane mask, SL_MEQ / SL_MNE int32 lanes equal / not equal (masks
 * combine with &), SL_MADD(acc, m, x) acc + x where m and acc elsewhere, SL_MINC(acc, m) int32
 * acc + 1 where m. Here masks are vectors of -1 / 0 and the float sum adds +0 where m is false;
 * a variant with mask registers defines its own (one masked add for an and and an add). Both
 * give the same bits: +0 changes no float but -0, and an accumulator that starts at +0 never
 * becomes -0 by additions. */
#ifndef SL_MT
#define SL_MT VI
#define SL_MEQ(a, b) ((a) == (b))
#define SL_MNE(a, b) ((a) != (b))
#define SL_MADD(acc, m, x) ((acc) + SL_AND((m), (x)))
#define SL_MINC(acc, m) ((acc) - (m))
#endif

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

/* *acc += VL double terms, in pixel order. */
SL_INL void SL_NAME(addd)(DF *acc, const VD *t)
{
#if VL <= 8
    *acc += *t;
#else
    *acc += __builtin_shufflevector(*t, *t, 0, 1, 2, 3, 4, 5, 6, 7);
    *acc += __builtin_shufflevector(*t, *t, 8, 9, 10, 11, 12, 13, 14, 15);
#endif
}

/* Lane-wise m ? a : b on doubles (m: int64 lanes all ones or zeros). */
#define SL_DSEL(m, a, b) ((VD)(((m) & (VQ)(a)) | (~(m) & (VQ)(b))))
#define SL_DAND(m, t) ((VD)((m) & (VQ)(t)))

/* The far lanes (mask far, a subset of the counted lanes m; y the positives) of VL pixels, all
 * in double, added to d: the double path's formulas (planes.c) with e = e^-|x| from dexp. */
SL_INL void SL_NAME(far_step)(const struct sl__fused_in *in, const VF *xp, const VI *farp,
                              const VI *yp, const VF *wp, struct SL_NAME(dlanes) * d, int j,
                              const int what)
{
    const VQ far = __builtin_convertvector(*farp, VQ);
    const VQ y = far & __builtin_convertvector(*yp, VQ), ny = far & ~y;
    const VD x = __builtin_convertvector(*xp, VD);
    const VD ax = SL_DSEL(x < 0.0, -x, x);
    VD e = -ax;
    SL_NAME(dexp)(&e);
    /* p = 1/(1+e) for x >= 0, e/(1+e) below; q = 1 - p likewise */
    const VD r = 1.0 / (1.0 + e), er = e * r;
    const VQ pos = x >= 0.0;
    const VD p = SL_DSEL(pos, r, er), q = SL_DSEL(pos, er, r), p2 = p * p;
    const VD mp = SL_DAND(far, p), yp2 = SL_DAND(y, p), mp2 = SL_DAND(far, p2);
    SL_NAME(addd)(&d->sp[j], &mp);
    SL_NAME(addd)(&d->spy[j], &yp2);
    SL_NAME(addd)(&d->sp2[j], &mp2);
    if (!(what & SL_FZ_LOG)) {
        return;
    }
    /* log1p(e): e (1 - e/2 + e^2/3) for e < 1e-5 (within e^3/4 relative), else the float
     * kernel's (far lanes reach that far for a large focal gamma only) */
    VF ef = __builtin_convertvector(e, VF);
    SL_NAME(log1p01)(&ef);
    const VD s =
        SL_DSEL(e < 1e-5, e * (1.0 - e * (0.5 - e * (1.0 / 3))), __builtin_convertvector(ef, VD));
    const VD nlp = s + SL_DAND(~pos, ax), nl1p = s + SL_DAND(pos, ax);
    VD wy = SL_DAND(y, SL_DSPLAT(1.0)), wn = SL_DAND(ny, SL_DSPLAT(1.0));
    if (what & SL_FZ_W) {
        const VD w = __builtin_convertvector(*wp, VD);
        wy = SL_DAND(y, w);
        wn = SL_DAND(ny, w);
    }
    const VD cp = wy * nlp, cn = wn * nl1p;
    SL_NAME(addd)(&d->ce_pos[j], &cp);
    SL_NAME(addd)(&d->ce_neg[j], &cn);
    if (what & (SL_FZ_FOCAL_SQ | SL_FZ_FOCAL_EXP)) {
        VD qg = q * q, pg = p2;
        if (what & SL_FZ_FOCAL_EXP) {
            const double g = -(double)in->gamma;
            qg = g * nl1p;
            pg = g * nlp;
            SL_NAME(dexp)(&qg);
            SL_NAME(dexp)(&pg);
        }
        const VD fp = wy * qg * nlp, fn = wn * pg * nl1p;
        SL_NAME(addd)(&d->f_pos[j], &fp);
        SL_NAME(addd)(&d->f_neg[j], &fn);
    }
}

/* The far lanes among the counted lanes m: |x| above far_x, or (with weights) a weight
 * outside {0} and [2^-60, 2^100] ([2^-20, 2^20] with focal), where a term could leave the
 * normal floats or a float sum of 8 terms overflow. */
SL_INL VI SL_NAME(far_mask)(const VF *ax, const VF *w, const VI *m, const float far_x,
                            const int what)
{
    VI far = *ax > VF_SPLAT(far_x);
    if ((what & SL_FZ_W) && (what & SL_FZ_LOG)) {
        const bool focal = what & (SL_FZ_FOCAL_SQ | SL_FZ_FOCAL_EXP);
        const float lo = focal ? 0x1p-20f : 0x1p-60f, hi = focal ? 0x1p20f : 0x1p100f;
        far |= (*w > VF_SPLAT(hi)) | ((*w < VF_SPLAT(lo)) & (*w > VF_SPLAT(0.0f)));
    }
    return far & *m;
}

/* VL pixels: logits x, target bytes tb, weights w (what & SL_FZ_W), lanes live (all ones but
 * in the tail), summed into accumulators j of a, but for the far lanes, which are added to
 * *farv (far_block sums them). See struct sl__fused_in for what is summed. */
SL_INL void SL_NAME(fused_step)(const struct sl__fused_in *in, const VF *xp, const VI *tb,
                                const VF *wp, const VI *live, const float far_x,
                                struct SL_NAME(lanes) * a, int j, VI *bad, VI *farv, const int what)
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
    const VF ax = (VF)((VI)x & 0x7fffffff);
    /* lanes beyond float32's reach are left to far_block; the rest (mf, yf) are summed here */
    const VI far = SL_NAME(far_mask)(&ax, wp, &m, far_x, what);
    *farv |= far;
    const VI mf = m & ~far, yf = y & ~far;
    /* sigmoid from e = exp(-|x|): p = 1/(1+e) for x >= 0, e/(1+e) below; q = 1 - p likewise */
    VF e = -ax;
    SL_NAME(exp_neg)(&e);
    const VF r = one / (one + e), er = e * r;
    const VI pos = x >= VF_SPLAT(0.0f);
    const VF p = SL_SEL(pos, r, er), q = SL_SEL(pos, er, r), p2 = p * p;
    const VF mp = SL_AND(mf, p), yp = SL_AND(yf, p), mp2 = SL_AND(mf, p2);
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
    const VI nf = mf & ~yf;
    VF cp = SL_AND(yf, nlp), cn = SL_AND(nf, nl1p);
    if (what & SL_FZ_W) {
        cp = cp * *wp;
        cn = cn * *wp;
    }
    SL_NAME(addf)(&a->ce_pos[j], &cp);
    SL_NAME(addf)(&a->ce_neg[j], &cn);
    if (what & (SL_FZ_FOCAL_SQ | SL_FZ_FOCAL_EXP)) {
        /* Lin et al. 2017: (1-p)^gamma (-log p) and p^gamma (-log(1-p)); gamma 2 by products,
         * any other gamma as exp(gamma log(1-p)) (MONAI's form); summed times SL_FOCAL_SCALE */
        VF qg = q * q, pg = p2;
        if (what & SL_FZ_FOCAL_EXP) {
            const VF g = VF_SPLAT(-in->gamma);
            qg = g * nl1p;
            pg = g * nlp;
            SL_NAME(exp_neg)(&qg);
            SL_NAME(exp_neg)(&pg);
        }
        const VF fp = cp * (qg * VF_SPLAT(SL_FOCAL_SCALE));
        const VF fn = cn * (pg * VF_SPLAT(SL_FOCAL_SCALE));
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
#undef SL_FOLD1
    for (int j = 0; j < NA; j++) {
        d->f_pos[j] += __builtin_convertvector(a->f_pos[j], DF) * (1 / (double)SL_FOCAL_SCALE);
        d->f_neg[j] += __builtin_convertvector(a->f_neg[j], DF) * (1 / (double)SL_FOCAL_SCALE);
    }
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

/* The first VL pixels of [k, lim), zero-padded, into x, tb and w (w when what & SL_FZ_W). */
SL_INL void SL_NAME(load_tail)(const struct sl__fused_in *in, int64_t k, int64_t lim, VF *x, VI *tb,
                               VF *w, const int what)
{
    float xs[VL] = {0}, ws[VL] = {0};
    uint8_t ts[VL] = {0};
    const int rem = (int)(lim - k < VL ? lim - k : VL);
    memcpy(xs, in->x + k, sizeof(float) * (size_t)rem);
    memcpy(ts, in->t + k, (size_t)rem);
    if (what & SL_FZ_W) {
        memcpy(ws, in->w + k, sizeof(float) * (size_t)rem);
    }
    memcpy(x, xs, sizeof *x);
    memcpy(w, ws, sizeof *w);
    SL_LOAD_U8(tb, ts);
}

/* The far lanes of pixels [base, lim) (one block, which has some), added to d in the order of
 * fused_body's steps. Out of line and cold: the hot loop keeps its registers. */
static __attribute__((noinline, cold)) SL_TGT void
SL_NAME(far_block)(const struct sl__fused_in *in, int64_t base, int64_t lim, float far_x,
                   struct SL_NAME(dlanes) * d, int what)
{
    VF x, w = VF_SPLAT(0.0f);
    VI tb;
    for (int64_t k = base, j = 0; k < lim; k += VL, j = (j + 1) % NA) {
        VI live = VI_SPLAT(-1);
        if (k + VL <= lim) {
            memcpy(&x, in->x + k, sizeof x);
            SL_LOAD_U8(&tb, in->t + k);
            if (what & SL_FZ_W) {
                memcpy(&w, in->w + k, sizeof w);
            }
        } else {
            SL_NAME(load_tail)(in, k, lim, &x, &tb, &w, what);
            live = VI_IOTA < VI_SPLAT((int)(lim - k));
        }
        const VI m = (tb != in->ign) & live;
        const VI y = (tb == 1) & m;
        const VF ax = (VF)((VI)x & 0x7fffffff);
        const VI far = SL_NAME(far_mask)(&ax, &w, &m, far_x, what);
        if (SL_ANY(far)) {
            SL_NAME(far_step)(in, &x, &far, &y, &w, d, (int)j, what);
        }
    }
}

/* The fused pass over in->n pixels for one combination of what (a constant once inlined). */
SL_INL void SL_NAME(fused_body)(const struct sl__fused_in *in, struct sl__fused_out *out,
                                const int what)
{
    struct SL_NAME(dlanes) d;
    VI bad = VI_SPLAT(0);
    const int64_t n = in->n;
    /* float32's reach (the top of this file): |x| <= 40 keeps p^2 and (1 - p)^2 normal; with a
     * gamma other than 2, e^(-gamma (|x| + ln 2)) must stay normal too */
    float far_x = 40.0f;
    if ((what & SL_FZ_FOCAL_EXP) && in->gamma * 41.0f > 86.0f) {
        far_x = 86.0f / in->gamma - 1.0f;
    }
    memset(&d, 0, sizeof d);
    for (int64_t base = 0; base < n; base += SL_FOLD) {
        struct SL_NAME(lanes) a;
        memset(&a, 0, sizeof a);
        const int64_t lim = n - base < SL_FOLD ? n : base + SL_FOLD;
        const VI all = VI_SPLAT(-1);
        VF x, w = VF_SPLAT(0.0f);
        VI tb, farv = VI_SPLAT(0);
        int64_t k = base;
        /* NA steps of VL pixels at a time, one per accumulator (NA = 1 but for 4 lanes) */
        for (; k + VL * NA <= lim; k += VL * NA) {
            for (int j = 0; j < NA; j++) {
                memcpy(&x, in->x + k + j * VL, sizeof x);
                SL_LOAD_U8(&tb, in->t + k + j * VL);
                if (what & SL_FZ_W) {
                    memcpy(&w, in->w + k + j * VL, sizeof w);
                }
                SL_NAME(fused_step)(in, &x, &tb, &w, &all, far_x, &a, j, &bad, &farv, what);
            }
        }
        for (int j = 0; j < NA && k < lim; j++, k += VL) {
            SL_NAME(load_tail)(in, k, lim, &x, &tb, &w, what);
            const VI live = VI_IOTA < VI_SPLAT((int)(lim - k));
            SL_NAME(fused_step)(in, &x, &tb, &w, &live, far_x, &a, j, &bad, &farv, what);
        }
        SL_NAME(fold)(&a, &d);
        if (SL_ANY(farv)) {
            SL_NAME(far_block)(in, base, lim, far_x, &d, what);
        }
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

/* the multiclass kernel, compiled with the same variant */
#include "simd_mc.h"
/* and the one over probabilities */
#include "simd_mcp.h"

#undef SL_AND
#undef SL_SEL
#undef SL_MT
#undef SL_MEQ
#undef SL_MNE
#undef SL_MADD
#undef SL_MINC
#undef SL_DAND
#undef SL_DSEL
#undef SL_DSPLAT
#undef SL_INL
/* the includer's per-variant parameters, so that the next variant defines its own (the
 * accumulators AF/AI/DF/NA may be shared by several variants: simd.c undefines them) */
#undef SL_TGT
#undef SL_NAME
#undef SL_LOAD_U8
#undef SL_ANY
#undef VF
#undef VI
#undef VU
#undef VL
#undef VF_SPLAT
#undef VI_SPLAT
#undef VI_IOTA
#undef VD
#undef VQ
