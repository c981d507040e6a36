/* simd_mc.h - the multiclass softmax kernel over float32 logits, written once and compiled per
 * instruction set: simd_body.h includes it before it undefines the variant's macros (VF, VI,
 * VL, VD, SL_NAME, SL_TGT, SL_LOAD_U8, SL_ANY, and SL_VMAX/SL_VMIN: a > b ? a : b and
 * a < b ? a : b lane-wise, SL_RNDN: round to nearest even, SL_POW2MUL(y, n): y 2^n, undefined
 * here). Not a header to include elsewhere.
 *
 * One block of SL_MC_BLOCK pixels at a time:
 *   0. the block's rows in a scratch row per class, copied row by row during pass 2 of the
 *      block before (the copy's cache misses overlap that block's exps: 7 % at C = 19);
 *   1. for each vector of pixels, class by class with its running values in registers, per
 *      pixel the max logit (the first maximum is the argmax: ties go to the lowest class), the
 *      least logit and the target class's logit;
 *   2. for each pair of vectors, class by class (two exps side by side keep the floating-point
 *      units busier than one: 6-10 % at C = 19), e_c = e^(x_c - max) (mc_exp, within 8.3e-8
 *      relative), written over the scratch row (and the next block's rows copied), and
 *      so = the sum of e_c over the classes other than the argmax (e = 1 there), so that
 *      -log p_y = log1p(so) + (max - x_y) and, for y the argmax, 1 - p_y = so / (1 + so) keep
 *      their relative accuracy when p_y is near 1;
 *   3. per class c, p_c = e_c / (1 + so) and the sums (masked adds: SL_MADD, simd_body.h).
 * Sums are canonical 16 lanes: pixel k of a call adds to lane k % 16 in pixel order (a VL-lane
 * variant keeps 16 / VL accumulators and cycles through them), float32 within a block (8 terms
 * per lane), then folded into double lanes; a class's terms are masked (adding +0 changes no
 * bit), so every variant returns the same bits. Far pixels (a class more than far_d below the
 * max, where p_c^2 or a focal term would leave the normal floats, or an extreme weight) are
 * left out of the float sums and computed in double by mc_far_pixel (simd.c), added after the
 * block's fold. */

#define SL_MC_NV (16 / VL)
#define SL_MC_NVB (SL_MC_BLOCK / VL)
_Static_assert(SL_MC_NVB % 2 == 0, "pass 2 takes the vectors of a block in pairs");
/* Blocks ahead that a block prefetches, one line of one class row per step of pass 2 (into the
 * second-level cache: prefetcht1). A burst of C x SL_MC_BLOCK / 16 prefetches at the block's
 * start fills the miss buffers and stalls behind them; spread over pass 2 they arrive as the
 * block computes (C = 19 on 512 x 1024: 77 -> 97 Mpix/s on one core of the reference machine). */
#ifndef SL_MC_PREFETCH
#define SL_MC_PREFETCH 3
#endif

/* z <- e^z for z in [-87, 0]: exp_neg's reduction (Cephes expf, simd_body.h) with the variant's
 * rounding (SL_RNDN) and scaling by 2^n (SL_POW2MUL), and e^r = 1 + r + r^2 P(r) with P of degree
 * 4 instead of Cephes's 5 (a relative minimax fit on |r| <= 0.348, 3.1e-9 in double, its
 * coefficients rounded to float): within 8.26e-8 relative of e^z over every float of [-87, 0],
 * as exp_neg is within 8.24e-8 (the last roundings dominate; test_simd --exhaustive), with two
 * operations fewer per class and pixel;
 * z below -87 (a far pixel's class, which the sums leave out) is taken as -87, so every lane's
 * value is a normal float. */
SL_INL void SL_NAME(mc_exp)(VF *z)
{
    const VF zc = SL_VMAX(*z, VF_SPLAT(-87.0f));
    const VF nf = SL_RNDN(zc * VF_SPLAT(1.44269504088896341f));
    VF r = zc - nf * VF_SPLAT(0.693359375f);
    r = r - nf * VF_SPLAT(-2.12194440e-4f);
    const VF r2 = r * r;
    const VF pa = VF_SPLAT(4.999999404e-01f) + VF_SPLAT(1.666651964e-01f) * r;
    const VF pb = VF_SPLAT(4.166840762e-02f) + VF_SPLAT(8.368919604e-03f) * r;
    VF y = pa + r2 * (pb + r2 * VF_SPLAT(1.381417969e-03f));
    y = y * r2;
    y = y + r;
    y = y + VF_SPLAT(1.0f);
    *z = SL_POW2MUL(y, nf);
}

/* *tb = the targets of pixels k..k + VL - 1: bytes, or uint16 (C > 255) when in->t16. */
SL_INL void SL_NAME(mc_target)(const struct sl__mc_in *in, int64_t k, VI *tb)
{
    if (in->t16) {
        for (int l = 0; l < VL; l++) {
            (*tb)[l] = in->t16[k + l];
        }
    } else {
        SL_LOAD_U8(tb, in->t + k);
    }
}

/* z <- log(z) for a positive normal float: z = m 2^k with m in [1, 2), k ln 2 + log1p(m - 1)
 * (m - 1 is exact), ln 2 split as in exp_neg. */
SL_INL void SL_NAME(mc_log)(VF *z)
{
    const VI b = (VI)*z;
    const VF k = __builtin_convertvector((b >> 23) - 127, VF);
    VF m1 = (VF)((b & 0x007fffff) | 0x3f800000) - VF_SPLAT(1.0f);
    SL_NAME(log1p01)(&m1);
    *z = k * VF_SPLAT(0.693359375f) + (m1 + k * VF_SPLAT(-2.12194440e-4f));
}

/* log(1 + so) for so >= 0: log1p01 up to 1, else mc_log(1 + so) (at least ln 2: the rounding
 * of 1 + so costs one unit in the last place). */
SL_INL VF SL_NAME(mc_log1p)(const VF *so)
{
    const VI small = *so <= VF_SPLAT(1.0f);
    VF a = SL_AND(small, *so);
    SL_NAME(log1p01)(&a);
    VF b = VF_SPLAT(1.0f) + *so;
    SL_NAME(mc_log)(&b);
    return SL_SEL(small, a, b);
}

/* acc[j] (16 / VL vectors) folded into 16 double lanes at dl, times scale. */
SL_INL void SL_NAME(mc_fold)(const VF *acc, double *dl, double scale)
{
    for (int j = 0; j < SL_MC_NV; j++) {
        VD cur;
        memcpy(&cur, dl + j * VL, sizeof cur);
        cur += __builtin_convertvector(acc[j], VD) * scale;
        memcpy(dl + j * VL, &cur, sizeof cur);
    }
}

/* Int32 lane counts acc[j] added to the 16 lanes at cl. */
SL_INL void SL_NAME(mc_foldi)(const VI *acc, int32_t *cl)
{
    for (int j = 0; j < SL_MC_NV; j++) {
        VI cur;
        memcpy(&cur, cl + j * VL, sizeof cur);
        cur += acc[j];
        memcpy(cl + j * VL, &cur, sizeof cur);
    }
}

/* The multiclass pass over in->n pixels for one combination of what (constant once inlined),
 * added to *st. */
SL_INL void SL_NAME(mc_body)(const struct sl__mc_in *in, struct sl__mc_state *st, const int what)
{
    const int C = in->classes, nf = (what & SL_MC_FOCAL) ? in->nfocal : 0;
    const int nq = SL_MCQ_FOCAL + in->nfocal;
    const VF one = VF_SPLAT(1.0f), fard = VF_SPLAT(in->far_d);
    const bool focal_any = what & SL_MC_FOCAL;
    const float wlo = focal_any ? 0x1p-20f : 0x1p-60f, whi = focal_any ? 0x1p20f : 0x1p100f;
    VI counted = VI_SPLAT(0), igbad = VI_SPLAT(0);
    /* the scratch: the block's rows (x, then e), the next block's rows (x), and with label
     * smoothing the rows of x - max */
    float *cur = st->e, *nxt = st->e + (int64_t)C * SL_MC_BLOCK;
    float *const drows = st->e + 2 * (int64_t)C * SL_MC_BLOCK;
    const int64_t readable = in->readable > in->n ? in->readable : in->n;
    /* 0: the first block's rows copied into the scratch, row by row (rows a power of two apart,
     * as in 512 x 1024 images, share their cache sets: read side by side, or a second time,
     * they would miss); each later block's rows are copied during pass 2 of the one before */
    for (int c = 0; in->n > 0 && c < C; c++) {
        for (int v = 0; v < SL_MC_NVB; v++) {
            VF xc;
            memcpy(&xc, in->x + (int64_t)c * in->xs + v * VL, sizeof xc);
            memcpy(cur + (int64_t)c * SL_MC_BLOCK + v * VL, &xc, sizeof xc);
        }
    }
    for (int64_t base = 0; base < in->n; base += SL_MC_BLOCK) {
        const bool more = base + SL_MC_BLOCK < in->n;
        const int64_t rem = in->n - base;
        VF rv[SL_MC_NVB], mxv[SL_MC_NVB], lsv[SL_MC_NVB], wv[SL_MC_NVB], cew[SL_MC_NVB];
        VF ft[SL_MAX_FOCAL][SL_MC_NVB];
        VI tbv[SL_MC_NVB], hv[SL_MC_NVB], mfv[SL_MC_NVB], farv[SL_MC_NVB];
        VI tqv[SL_MC_NVB], hqv[SL_MC_NVB];
        VI farb = VI_SPLAT(0);
        const float *const ahead = base + (SL_MC_PREFETCH + 1) * SL_MC_BLOCK <= readable
                                       ? in->x + base + SL_MC_PREFETCH * SL_MC_BLOCK
                                       : NULL;
        VF sov[SL_MC_NVB], xyv[SL_MC_NVB];
        for (int v = 0; v < SL_MC_NVB; v++) {
            /* 1: per pixel the max, the min and the target's logit, class by class (one vector
             * of pixels at a time, so that its running values stay in registers) */
            const int64_t k = base + (int64_t)v * VL;
            const int64_t left = rem - (int64_t)v * VL;
            const VI live = VI_IOTA < VI_SPLAT((int)(left < VL ? (left > 0 ? left : 0) : VL));
            VI tb;
            SL_NAME(mc_target)(in, k, &tb);
            const VI m = (tb != in->ign) & live;
            counted -= m;
            tbv[v] = tb;
            VF w = one;
            if (what & SL_MC_W) {
                memcpy(&w, in->w + k, sizeof w);
            }
            wv[v] = w;
            VF mx;
            memcpy(&mx, cur + v * VL, sizeof mx);
            VF mn = mx, sx = mx, xy = SL_AND(tb == 0, mx);
            VI h = VI_SPLAT(0);
            for (int c = 1; c < C; c++) {
                VF xc;
                memcpy(&xc, cur + (int64_t)c * SL_MC_BLOCK + v * VL, sizeof xc);
                /* the first maximum: strictly greater moves it (ties to the lowest class) */
                const VI gt = xc > mx;
                h = (gt & c) | (~gt & h);
                mx = SL_VMAX(xc, mx);
                mn = SL_VMIN(xc, mn);
                xy = SL_SEL(tb == c, xc, xy);
                sx += xc;
            }
            /* far: the spread beyond far_d (or not finite), or an extreme weight, and a pixel
             * validation would refuse (a logit NaN or infinite: the sum of its logits is not
             * finite; a target byte neither a class nor ign): mc_far_pixel checks it exactly */
            const VI nonfin = ~((sx - sx) == VF_SPLAT(0.0f));
            VI far = ~((mx - mn) <= fard) | nonfin | (tb >= C);
            if (what & SL_MC_W) {
                far |= (w > VF_SPLAT(whi)) | ((w < VF_SPLAT(wlo)) & (w > VF_SPLAT(0.0f)));
            }
            /* a logit not finite at an ignored pixel: refused as well (st->bad) */
            igbad |= nonfin & live & ~m;
            far &= m;
            farb |= far;
            farv[v] = far;
            mfv[v] = m & ~far;
            mxv[v] = mx;
            hv[v] = h;
            xyv[v] = xy;
        }
        /* 2: e_c; so sums them over the classes other than the argmax; two vectors at a time */
        for (int v = 0; v < SL_MC_NVB; v += 2) {
            VF so0 = VF_SPLAT(0.0f), so1 = VF_SPLAT(0.0f);
            for (int c = 0; c < C; c++) {
                float *erow = cur + (int64_t)c * SL_MC_BLOCK + v * VL;
                VF e0, e1;
                memcpy(&e0, erow, sizeof e0);
                memcpy(&e1, erow + VL, sizeof e1);
                e0 = e0 - mxv[v];
                e1 = e1 - mxv[v + 1];
                if (what & SL_MC_LS) {
                    memcpy(drows + (int64_t)c * SL_MC_BLOCK + v * VL, &e0, sizeof e0);
                    memcpy(drows + (int64_t)c * SL_MC_BLOCK + v * VL + VL, &e1, sizeof e1);
                }
                const SL_MT other0 = SL_MNE(hv[v], VI_SPLAT(c));
                const SL_MT other1 = SL_MNE(hv[v + 1], VI_SPLAT(c));
                if (ahead && (v * VL) % 16 == 0) {
                    __builtin_prefetch(ahead + (int64_t)c * in->xs + v * VL, 0, 2);
                }
                if (ahead && ((v + 1) * VL) % 16 == 0) {
                    __builtin_prefetch(ahead + (int64_t)c * in->xs + v * VL + VL, 0, 2);
                }
                if (more) {
                    /* the next block's rows, copied while this one computes */
                    const float *src = in->x + (int64_t)c * in->xs + base + SL_MC_BLOCK + v * VL;
                    float *dst = nxt + (int64_t)c * SL_MC_BLOCK + v * VL;
                    VF n0, n1;
                    memcpy(&n0, src, sizeof n0);
                    memcpy(&n1, src + VL, sizeof n1);
                    memcpy(dst, &n0, sizeof n0);
                    memcpy(dst + VL, &n1, sizeof n1);
                }
                SL_NAME(mc_exp)(&e0);
                SL_NAME(mc_exp)(&e1);
                memcpy(erow, &e0, sizeof e0);
                memcpy(erow + VL, &e1, sizeof e1);
                so0 = SL_MADD(so0, other0, e0);
                so1 = SL_MADD(so1, other1, e1);
            }
            sov[v] = so0;
            sov[v + 1] = so1;
        }
        for (int v = 0; v < SL_MC_NVB; v++) {
            const VF so = sov[v], best = mxv[v], xy = xyv[v], w = wv[v];
            const VI mf = mfv[v], tb = tbv[v], h = hv[v];
            const VF ls = SL_NAME(mc_log1p)(&so);
            const VF r = one / (one + so);
            /* r, the target and the argmax of the counted lanes; 0, -1, -1 in the others */
            rv[v] = SL_AND(mf, r);
            tqv[v] = tb | ~mf;
            hqv[v] = h | ~mf;
            lsv[v] = ls;
            if (what & (SL_MC_CE | SL_MC_FOCAL)) {
                /* -log p_y = log1p(so) + (max - x_y): PyTorch's log_softmax, max subtracted */
                const VF nlp = ls + (best - xy);
                VF c0 = SL_AND(mf, nlp);
                if (what & SL_MC_W) {
                    c0 = c0 * w;
                }
                cew[v] = c0;
                if (what & SL_MC_FOCAL) {
                    VF ey = xy - best;
                    SL_NAME(exp_neg)(&ey);
                    /* 1 - p_y: so / (1 + so) when y is the argmax, else 1 - p_y >= 1/2 */
                    const VF q = SL_SEL(tb == h, so * r, one - ey * r);
                    VF lq = q;
                    SL_NAME(mc_log)(&lq);
                    for (int f = 0; f < nf; f++) {
                        VF qg;
                        if (in->gamma[f] == 2.0f) {
                            qg = q * q;
                        } else {
                            /* Lin et al. 2017 (1 - p)^gamma as exp(gamma log(1 - p)) (MONAI) */
                            qg = VF_SPLAT(in->gamma[f]) * lq;
                            SL_NAME(exp_neg)(&qg);
                        }
                        ft[f][v] = SL_AND(mf, c0 * (qg * VF_SPLAT(SL_FOCAL_SCALE)));
                    }
                }
            }
        }
        /* 3: per class, the sums over the block's pixels */
        for (int c = 0; c < C; c++) {
            VF asp[SL_MC_NV], asp2[SL_MC_NV], aspy[SL_MC_NV], ace[SL_MC_NV], alp[SL_MC_NV];
            VF af[SL_MAX_FOCAL][SL_MC_NV];
            VI asy[SL_MC_NV], atp[SL_MC_NV], ash[SL_MC_NV];
            for (int j = 0; j < SL_MC_NV; j++) {
                asp[j] = asp2[j] = aspy[j] = ace[j] = alp[j] = VF_SPLAT(0.0f);
                asy[j] = atp[j] = ash[j] = VI_SPLAT(0);
                for (int f = 0; f < nf; f++) {
                    af[f][j] = VF_SPLAT(0.0f);
                }
            }
            /* unrolled, so that the accumulators stay in registers */
            _Pragma("GCC unroll 32") for (int v = 0; v < SL_MC_NVB; v++)
            {
                const int j = v % SL_MC_NV;
                VF e;
                memcpy(&e, cur + (int64_t)c * SL_MC_BLOCK + v * VL, sizeof e);
                /* p of the counted float lanes, 0 in the others (e is finite; cew and ft are
                 * masked too) */
                const VF p = e * rv[v];
                const SL_MT eq = SL_MEQ(tqv[v], VI_SPLAT(c));
                if (what & SL_MC_SOFT) {
                    asp[j] += p;
                }
                if (what & SL_MC_SP2) {
                    asp2[j] += p * p;
                }
                aspy[j] = SL_MADD(aspy[j], eq, p);
                if (what & SL_MC_CE) {
                    ace[j] = SL_MADD(ace[j], eq, cew[v]);
                }
                if (what & SL_MC_LS) {
                    /* every class's -log p_c = log1p(so) + (max - x_c), for label smoothing */
                    VF d;
                    memcpy(&d, drows + (int64_t)c * SL_MC_BLOCK + v * VL, sizeof d);
                    VF lt = lsv[v] - d;
                    if (what & SL_MC_W) {
                        lt = lt * wv[v];
                    }
                    alp[j] += SL_AND(mfv[v], lt);
                }
                for (int f = 0; f < nf; f++) {
                    af[f][j] = SL_MADD(af[f][j], eq, ft[f][v]);
                }
                asy[j] = SL_MINC(asy[j], eq);
                if (what & SL_MC_CM) {
                    const SL_MT hc = SL_MEQ(hqv[v], VI_SPLAT(c));
                    ash[j] = SL_MINC(ash[j], hc);
                    atp[j] = SL_MINC(atp[j], eq & hc);
                }
            }
            double *dl = st->lanes + (int64_t)c * nq * 16;
            if (what & SL_MC_SOFT) {
                SL_NAME(mc_fold)(asp, dl + SL_MCQ_SP * 16, 1.0);
            }
            if (what & SL_MC_SP2) {
                SL_NAME(mc_fold)(asp2, dl + SL_MCQ_SP2 * 16, 1.0);
            }
            SL_NAME(mc_fold)(aspy, dl + SL_MCQ_SPY * 16, 1.0);
            if (what & SL_MC_CE) {
                SL_NAME(mc_fold)(ace, dl + SL_MCQ_CE * 16, 1.0);
            }
            if (what & SL_MC_LS) {
                SL_NAME(mc_fold)(alp, dl + SL_MCQ_LP * 16, 1.0);
            }
            for (int f = 0; f < nf; f++) {
                SL_NAME(mc_fold)(af[f], dl + (SL_MCQ_FOCAL + f) * 16, 1 / (double)SL_FOCAL_SCALE);
            }
            int32_t *cl = st->counts + (int64_t)c * 3 * 16;
            SL_NAME(mc_foldi)(asy, cl);
            if (what & SL_MC_CM) {
                SL_NAME(mc_foldi)(atp, cl + 16);
                SL_NAME(mc_foldi)(ash, cl + 32);
            }
        }
        if (st->matrix) {
            /* the C x C confusion matrix (target-major) of the block's float pixels */
            int32_t ts[SL_MC_BLOCK], hs[SL_MC_BLOCK], ms[SL_MC_BLOCK];
            memcpy(ts, tbv, sizeof ts);
            memcpy(hs, hv, sizeof hs);
            memcpy(ms, mfv, sizeof ms);
            for (int k = 0; k < SL_MC_BLOCK; k++) {
                if (ms[k]) {
                    st->matrix[(int64_t)ts[k] * C + hs[k]]++;
                }
            }
        }
        if (SL_ANY(farb)) {
            int32_t fs[SL_MC_BLOCK];
            memcpy(fs, farv, sizeof fs);
            for (int k = 0; k < SL_MC_BLOCK; k++) {
                if (fs[k]) {
                    mc_far_pixel(in, st, base + k, what);
                }
            }
        }
        float *const t = cur;
        cur = nxt;
        nxt = t;
    }
    if (SL_ANY(igbad)) {
        st->bad = true;
    }
    int64_t cnt = 0;
    for (int l = 0; l < VL; l++) {
        cnt += counted[l];
    }
    st->count += cnt;
}

/* mc_exp of n floats (n % 16 == 0), for the unit tests and the error measurement. */
static SL_TGT void SL_NAME(mc_exp_array)(const float *in, float *out, int64_t n)
{
    for (int64_t k = 0; k < n; k += VL) {
        VF v;
        memcpy(&v, in + k, sizeof v);
        SL_NAME(mc_exp)(&v);
        memcpy(out + k, &v, sizeof v);
    }
}

/* The specializations of the common requests; any other runs the general body. */
static SL_TGT void SL_NAME(mc)(const struct sl__mc_in *in, struct sl__mc_state *st)
{
    enum { S = SL_MC_SOFT, CE = SL_MC_CE, CM = SL_MC_CM, W = SL_MC_W };
    switch (in->what) {
    case S | CE | CM:
        SL_NAME(mc_body)(in, st, S | CE | CM);
        return;
    case S | CE:
        SL_NAME(mc_body)(in, st, S | CE);
        return;
    case S | CM:
        SL_NAME(mc_body)(in, st, S | CM);
        return;
    case S | CE | CM | W:
        SL_NAME(mc_body)(in, st, S | CE | CM | W);
        return;
    default:
        SL_NAME(mc_body)(in, st, in->what);
        return;
    }
}

#undef SL_MC_NV
#undef SL_MC_NVB
#undef SL_MC_PREFETCH
#undef SL_VMAX
#undef SL_RNDN
#undef SL_POW2MUL
#undef SL_VMIN
