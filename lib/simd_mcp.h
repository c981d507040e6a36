/* simd_mcp.h - the multiclass kernel over float32 probabilities, written once and compiled per
 * instruction set: simd_body.h includes it after simd_mc.h, before it undefines the variant's
 * macros (VF, VI, VU, VL, VD, SL_NAME, SL_TGT, SL_LOAD_U8, SL_ANY). Not a header to include
 * elsewhere. It uses simd_body.h's exp_neg and log1p01 and simd_mc.h's mc_fold and mc_foldi.
 *
 * The prediction is p_c itself, as softmax.c's double pass takes it (block_probs,
 * block_ce_focal): the soft sums and the argmax of p as given, -log of p clipped to
 * [SL_EPS, 1 - SL_EPS] (Keras) for cross entropy, label smoothing and focal, and the focal
 * factor (1 - p_y)^gamma of the unclipped p_y. One block of SL_MC_BLOCK pixels at a time:
 *   1. the rows copied to scratch rows, then per pixel the first maximum (the argmax: ties to
 *      the lowest class), p_y, and whether any p_c is outside [0, 1] (or NaN, or -0), or, when
 *      sum p^2 is asked for, in (0, 2^-63) (p_c^2 would leave the normal floats): such a pixel
 *      is "far";
 *   2. per pixel -log clip(p_y) and the focal factors;
 *   3. per class the sums.
 * A p_c below 2^-63 is otherwise exact in float as it is (subnormal ones too: no flush to zero)
 * and below the clip, so only p^2 needs double.
 * Sums are the canonical 16 lanes of simd_mc.h: pixel k of a call adds to lane k % 16 in pixel
 * order, float32 within a block (8 terms per lane), then folded into double; masked terms add
 * +0, so every variant returns the same bits. Far pixels (above, an extreme weight, or a focal
 * factor (1 - p_y)^gamma below e^-86) are left out of the float sums and computed in double by
 * mcp_far_pixel (simd.c), which also flags a value validation refuses (st->bad) even where the
 * target is ignored: validation of the prediction's range is deferred to this pass. */

#define SL_MCP_NV (16 / VL)
#define SL_MCP_NVB (SL_MC_BLOCK / VL)
/* Blocks ahead that a block prefetches. */
#define SL_MCP_PREFETCH 3

/* z <- -log(z) for a normal float z in (0, 1]: z in [1/2, 1) as -log1p(z - 1) (z - 1 exact),
 * else z = m 2^k with m in [1, 2), -(k ln 2 + log1p(m - 1)) (k <= -2: no cancellation beyond a
 * factor 2), ln 2 split as in exp_neg. log1p01 holds on [-1/2, 0) as on [0, 1] (t = e / (2 + e)
 * in [-1/3, 0], the same odd series; 2 + e is split exactly as there). Other lanes: junk. */
SL_INL void SL_NAME(mcp_nlog)(VF *z)
{
    const VI b = (VI)*z;
    const VI e = (b >> 23) - 127;
    const VI top = e == -1;
    const VF m = (VF)((b & 0x007fffff) | 0x3f800000);
    VF f = SL_SEL(top, *z, m) - VF_SPLAT(1.0f);
    const VF k = __builtin_convertvector(~top & e, VF);
    SL_NAME(log1p01)(&f);
    *z = -(k * VF_SPLAT(0.693359375f) + (f + k * VF_SPLAT(-2.12194440e-4f)));
}

/* -log of p clipped to [SL_EPS, 1 - SL_EPS] (the constants of *L, as the double pass compares
 * in double) for p in [0, 1]. */
SL_INL VF SL_NAME(mcp_nlclip)(const VF *p, const struct mcp_lim *L)
{
    VF z = *p;
    SL_NAME(mcp_nlog)(&z);
    z = SL_SEL(*p < VF_SPLAT(L->lo), VF_SPLAT(L->nl_lo), z);
    return SL_SEL(*p >= VF_SPLAT(L->hi), VF_SPLAT(L->nl_hi), z);
}

/* The probabilities pass over in->n pixels for one combination of what (constant once
 * inlined), added to *st. */
SL_INL void SL_NAME(mcp_body)(const struct sl__mc_in *in, struct sl__mc_state *st, const int what)
{
    const int C = in->classes, nf = (what & SL_MC_FOCAL) ? in->nfocal : 0;
    const int nq = SL_MCQ_FOCAL + in->nfocal;
    struct mcp_lim L;
    mcp_limits(in, &L);
    const VF one = VF_SPLAT(1.0f), zero = VF_SPLAT(0.0f);
    const bool focal_any = what & SL_MC_FOCAL;
    const float wlo = focal_any ? 0x1p-20f : 0x1p-60f, whi = focal_any ? 0x1p20f : 0x1p100f;
    /* odd values, from the bits b of p: the largest b above 1's (above 1, NaN or infinite), the
     * sign bit in any (negative or -0), and with sum p^2 a b in [1, bits of 2^-63) (the least
     * b + 2^31 - 1 below tiny: 0 wraps to the top) */
    const VI onebits = VI_SPLAT(0x3f800000), tiny = VI_SPLAT(INT32_MIN + 0x20000000 - 1);
    VI counted = VI_SPLAT(0);
    const int64_t readable = in->readable > in->n ? in->readable : in->n;
    for (int64_t base = 0; base < in->n; base += SL_MC_BLOCK) {
        const int64_t rem = in->n - base;
        VF pyv[SL_MCP_NVB], wv[SL_MCP_NVB], cew[SL_MCP_NVB];
        VF ft[SL_MAX_FOCAL][SL_MCP_NVB];
        VI tbv[SL_MCP_NVB], hv[SL_MCP_NVB], mfv[SL_MCP_NVB], farv[SL_MCP_NVB], livev[SL_MCP_NVB];
        VI mxv[SL_MCP_NVB], orv[SL_MCP_NVB], tzv[SL_MCP_NVB];
        VI farb = VI_SPLAT(0);
        /* prefetched a line of a class row per step of the class loop below (simd_mc.h) */
        const float *const ahead = base + (SL_MCP_PREFETCH + 1) * SL_MC_BLOCK <= readable
                                       ? in->x + base + SL_MCP_PREFETCH * SL_MC_BLOCK
                                       : NULL;
        /* 1: the block's rows copied into the scratch rows (read class after class in runs of
         * SL_MC_BLOCK pixels; rows a power of two apart share their cache sets, as simd_mc.h
         * says, the scratch rows do not), then per vector of pixels, class after class, the
         * first maximum, p_y and the odd values, in registers */
        for (int c = 0; c < C; c++) {
            const float *row = in->x + (int64_t)c * in->xs + base;
            float *srow = st->e + (int64_t)c * SL_MC_BLOCK;
            for (int v = 0; v < SL_MCP_NVB; v++) {
                VF p;
                memcpy(&p, row + v * VL, sizeof p);
                memcpy(srow + v * VL, &p, sizeof p);
            }
        }
        for (int v = 0; v < SL_MCP_NVB; v++) {
            const int64_t k = base + (int64_t)v * VL;
            const int64_t left = rem - (int64_t)v * VL;
            const VI live = VI_IOTA < VI_SPLAT((int)(left < VL ? (left > 0 ? left : 0) : VL));
            VI tb;
            SL_NAME(mc_target)(in, k, &tb);
            const VI m = (tb != in->ign) & live;
            counted -= m;
            mfv[v] = m;
            livev[v] = live;
            tbv[v] = tb;
            wv[v] = one;
            if (what & SL_MC_W) {
                memcpy(&wv[v], in->w + k, sizeof wv[v]);
            }
            const float *col = st->e + v * VL;
            VF p;
            memcpy(&p, col, sizeof p);
            VI mx = (VI)p, orb = (VI)p, tz = (VI)((VU)p + 0x7fffffffu), h = VI_SPLAT(0);
            VF py = SL_AND(tb == 0, p);
            const bool pf = ahead && (v * VL) % 16 == 0;
            if (pf) {
                __builtin_prefetch(ahead + v * VL, 0, 2);
            }
            for (int c = 1; c < C; c++) {
                memcpy(&p, col + (int64_t)c * SL_MC_BLOCK, sizeof p);
                if (pf) {
                    __builtin_prefetch(ahead + (int64_t)c * in->xs + v * VL, 0, 2);
                }
                /* the first maximum, strictly greater moving it, compared as int32 bits (the
                 * order of floats in [+0, 1]; any other value makes the pixel far) */
                const VI b = (VI)p, gt = b > mx;
                h = (gt & c) | (~gt & h);
                mx = (gt & b) | (~gt & mx);
                py = SL_SEL(tb == c, p, py);
                orb |= b;
                if (what & SL_MC_SP2) {
                    const VI z = (VI)((VU)b + 0x7fffffffu), lt = z < tz;
                    tz = (lt & z) | (~lt & tz);
                }
            }
            mxv[v] = mx;
            orv[v] = orb;
            tzv[v] = tz;
            hv[v] = h;
            pyv[v] = py;
        }
        /* far: an odd value anywhere (validation's range check is deferred here), or in a
         * counted pixel a target byte beyond the classes, an extreme weight, a focal factor
         * below e^-86 */
        for (int v = 0; v < SL_MCP_NVB; v++) {
            const VI m = mfv[v];
            VI bad = tbv[v] >= C;
            if (what & SL_MC_W) {
                const VF w = wv[v];
                bad |= (w > VF_SPLAT(whi)) | ((w < VF_SPLAT(wlo)) & (w > zero));
            }
            if (what & SL_MC_FOCAL) {
                const VF q = one - pyv[v];
                bad |= (q > zero) & (q < VF_SPLAT(L.qmin));
            }
            VI odd = (mxv[v] > onebits) | (orv[v] < 0);
            if (what & SL_MC_SP2) {
                odd |= tzv[v] < tiny;
            }
            const VI far = (odd & livev[v]) | (bad & m);
            farb |= far;
            farv[v] = far;
            mfv[v] = m & ~far;
            /* the target and the argmax of the float pixels, -1 elsewhere (for phase 3) */
            tbv[v] = (mfv[v] & tbv[v]) | ~mfv[v];
            hv[v] = (mfv[v] & hv[v]) | ~mfv[v];
        }
        /* 2: per pixel the cross entropy -log clip(p_y) and the focal terms */
        for (int v = 0; v < SL_MCP_NVB && (what & (SL_MC_CE | SL_MC_FOCAL)); v++) {
            const VI mf = mfv[v];
            const VF py = pyv[v];
            VF c0 = SL_AND(mf, SL_NAME(mcp_nlclip)(&py, &L));
            if (what & SL_MC_W) {
                c0 = c0 * wv[v];
            }
            cew[v] = c0;
            if (what & SL_MC_FOCAL) {
                /* Lin et al. 2017: (1 - p_y)^gamma of the unclipped p_y; gamma 2 as q q, any
                 * other as exp(gamma log q) (MONAI), q = 0 giving 0 (gamma 0: 1, as pow) */
                const VF q = one - py;
                const VI qpos = q > zero;
                VF nlq = SL_SEL(qpos, q, one);
                if (L.any_exp) {
                    SL_NAME(mcp_nlog)(&nlq);
                }
                for (int f = 0; f < nf; f++) {
                    VF qg;
                    if (in->gamma[f] == 2.0f) {
                        qg = q * q;
                    } else {
                        qg = VF_SPLAT(-in->gamma[f]) * nlq;
                        SL_NAME(exp_neg)(&qg);
                        qg = SL_SEL(qpos, qg, VF_SPLAT(in->gamma[f] == 0.0f ? 1.0f : 0.0f));
                    }
                    ft[f][v] = SL_AND(mf, c0 * (qg * VF_SPLAT(SL_FOCAL_SCALE)));
                }
            }
        }
        /* 3: per class, the sums over the block's pixels */
        for (int c = 0; c < C; c++) {
            VF asp[SL_MCP_NV], asp2[SL_MCP_NV], aspy[SL_MCP_NV], ace[SL_MCP_NV], alp[SL_MCP_NV];
            VF af[SL_MAX_FOCAL][SL_MCP_NV];
            VI asy[SL_MCP_NV], atp[SL_MCP_NV], ash[SL_MCP_NV];
            for (int j = 0; j < SL_MCP_NV; j++) {
                asp[j] = asp2[j] = aspy[j] = ace[j] = alp[j] = zero;
                asy[j] = atp[j] = ash[j] = VI_SPLAT(0);
                for (int f = 0; f < nf; f++) {
                    af[f][j] = zero;
                }
            }
            /* vector v adds to accumulators j = v % SL_MCP_NV, unrolled so that they stay in
             * registers */
#pragma GCC unroll 16
            for (int v = 0; v < SL_MCP_NVB; v++) {
                const int j = v % SL_MCP_NV;
                VF pr;
                memcpy(&pr, st->e + (int64_t)c * SL_MC_BLOCK + v * VL, sizeof pr);
                const VI mf = mfv[v];
                const VF p = SL_AND(mf, pr);
                const VI eq = tbv[v] == c;
                if (what & SL_MC_SOFT) {
                    asp[j] += p;
                }
                if (what & SL_MC_SP2) {
                    asp2[j] += p * p;
                }
                aspy[j] += SL_AND(eq, p);
                if (what & SL_MC_CE) {
                    ace[j] += SL_AND(eq, cew[v]);
                }
                if (what & SL_MC_LS) {
                    /* every class's -log clip(p_c), for label smoothing */
                    VF lt = SL_NAME(mcp_nlclip)(&pr, &L);
                    if (what & SL_MC_W) {
                        lt = lt * wv[v];
                    }
                    alp[j] += SL_AND(mf, lt);
                }
                for (int f = 0; f < nf; f++) {
                    af[f][j] += SL_AND(eq, ft[f][v]);
                }
                asy[j] -= eq;
                if (what & SL_MC_CM) {
                    const VI hc = hv[v] == c;
                    ash[j] -= hc;
                    atp[j] -= eq & hc;
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
                    mcp_far_pixel(in, st, base + k, what);
                }
            }
        }
    }
    int64_t cnt = 0;
    for (int l = 0; l < VL; l++) {
        cnt += counted[l];
    }
    st->count += cnt;
}

/* The specializations of the common requests; any other runs the general body. */
static SL_TGT void SL_NAME(mcp)(const struct sl__mc_in *in, struct sl__mc_state *st)
{
    enum { S = SL_MC_SOFT, CE = SL_MC_CE, CM = SL_MC_CM, W = SL_MC_W };
    switch (in->what) {
    case S | CE | CM:
        SL_NAME(mcp_body)(in, st, S | CE | CM);
        return;
    case S | CE:
        SL_NAME(mcp_body)(in, st, S | CE);
        return;
    case S | CM:
        SL_NAME(mcp_body)(in, st, S | CM);
        return;
    case S | CE | CM | W:
        SL_NAME(mcp_body)(in, st, S | CE | CM | W);
        return;
    default:
        SL_NAME(mcp_body)(in, st, in->what);
        return;
    }
}

/* -log z of n floats z in (0, 1] (n % 16 == 0), for the unit tests and the error measurement. */
static SL_TGT void SL_NAME(mcp_nlog_array)(const float *in, float *out, int64_t n)
{
    for (int64_t k = 0; k < n; k += VL) {
        VF v;
        memcpy(&v, in + k, sizeof v);
        SL_NAME(mcp_nlog)(&v);
        memcpy(out + k, &v, sizeof v);
    }
}

#undef SL_MCP_NV
#undef SL_MCP_NVB
#undef SL_MCP_PREFETCH
