/* softmax_fast.c - multiclass on the fused float32 kernels (sl__mc_logits, simd_mc.h; over
 * probabilities sl__mc_probs, simd_mcp.h): one image's pixels in sub-blocks, float32 predictions
 * and uint8 targets read in place, any other dtype converted per sub-block; the canonical lanes
 * summed into the image's planes. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Pixels per kernel call: a multiple of SL_MC_BLOCK, small enough for converted rows to stay
 * in cache. */
#define SUB 1024

/* The prediction rows of classes 0..C-1 of image i, pixels [off, off + n), as float32 into dst
 * (row stride SUB), zero beyond n up to SUB: float16 and bfloat16 widened by sl__to_f32, uint8
 * probabilities as u / 255 rounded to float32 (the double pass's p within half a float ulp). */
static void load_pred(const struct sl_tensor *t, int64_t C, int64_t S, int64_t i, int64_t off,
                      int64_t n, float *dst)
{
    for (int64_t c = 0; c < C; c++) {
        float *row = dst + c * SUB;
        const int64_t at = (i * C + c) * S + off;
        if (t->dtype == SL_DT_F32) {
            memcpy(row, (const float *)t->data + at, sizeof(float) * (size_t)n);
        } else if (t->dtype == SL_DT_U8) {
            const uint8_t *u = (const uint8_t *)t->data + at;
            for (int64_t k = 0; k < n; k++) {
                row[k] = (float)(u[k] / 255.0);
            }
        } else {
            /* float16 / bfloat16: widened exactly (F16C where present) */
            sl__to_f32(-1, t->dtype, (const uint16_t *)t->data + at, n, row);
        }
        memset(row + n, 0, sizeof(float) * (size_t)(SUB - n));
    }
}

/* Targets of pixels [off, off + n) of image i (validated: classes, or ignore_index) into dst,
 * zero-padded to SUB: uint8 as they are; other dtypes as class indices with 255 for an ignored
 * pixel when C <= 255, else into dst16 (uint16) with 65535 for an ignored pixel. */
static void load_target(const struct sl_request *req, int64_t S, int64_t i, int64_t off, int64_t n,
                        uint8_t *dst, uint16_t *dst16)
{
    const struct sl_tensor *t = &req->target;
    if (t->dtype == SL_DT_U8) {
        memcpy(dst, (const uint8_t *)t->data + i * S + off, (size_t)n);
    } else if (dst16) {
        for (int64_t k = 0; k < n; k++) {
            const double v = sl_tensor_get(t, i * S + off + k);
            dst16[k] = req->has_ignore && v == (double)req->ignore_index ? 65535 : (uint16_t)v;
        }
        memset(dst16 + n, 0, sizeof *dst16 * (size_t)(SUB - n));
        return;
    } else {
        for (int64_t k = 0; k < n; k++) {
            const double v = sl_tensor_get(t, i * S + off + k);
            dst[k] = req->has_ignore && v == (double)req->ignore_index ? 255 : (uint8_t)v;
        }
    }
    memset(dst + n, 0, (size_t)(SUB - n));
}

/* Whether loss s (or one of its terms) is a squared Dice, the only reader of sum p^2. */
static bool wants_sp2(const struct sl_spec *s)
{
    if (s->def->kernel && s->def->kernel->score == sl__score_dice &&
        s->values[SL_P_DICE_SQUARED].b) {
        return true;
    }
    for (int i = 0; i < s->nterms; i++) {
        if (wants_sp2(&s->terms[i])) {
            return true;
        }
    }
    return false;
}

bool sl__mc_fast_ok(const struct sl_request *req, const struct sl__geom *g,
                    const struct sl__plan *pl)
{
    /* logits, or probabilities (uint8 ones too, as u / 255) */
    if (g->mode != SL_MODE_MULTICLASS ||
        (req->pred_type != SL_PRED_LOGITS && req->pred_type != SL_PRED_PROBABILITIES) ||
        !(req->prediction.dtype == SL_DT_F32 || req->prediction.dtype == SL_DT_F16 ||
          req->prediction.dtype == SL_DT_BF16 ||
          (req->prediction.dtype == SL_DT_U8 && req->pred_type == SL_PRED_PROBABILITIES)) ||
        (req->weight.data && req->weight.dtype != SL_DT_F32 && req->weight.dtype != SL_DT_F16 &&
         req->weight.dtype != SL_DT_BF16) ||
        pl->need_lsm_img || pl->need_lsm_batch || g->classes > SL_MAX_CLASSES) {
        return false;
    }
    for (int f = 0; f < pl->nfocal; f++) {
        /* MONAI's softmax without class 0 stays on the double pass */
        if (pl->focal_nobg[f]) {
            return false;
        }
    }
    return true;
}

/* The kernel over pixels [off0, off0 + len) of image i (off0 a multiple of SUB), added to
 * lanes (C x nq x 16), counts (C x 3 x 16), matrix (C x C, or NULL), *count and *bad. Owns and
 * frees its scratch. Returns 0 or SL_ENOMEM. */
static int mc_sums(const struct sl__plan *pl, int64_t i, int64_t off0, int64_t len, double *lanes,
                   int32_t *counts, int64_t *matrix, int64_t *count, bool *bad)
{
    const struct sl_request *req = pl->req;
    const int64_t C = pl->g->classes, S = pl->g->pixels;
    struct sl__mc_in in;
    struct sl__mc_state st;
    int rc = SL_ENOMEM;
    memset(&in, 0, sizeof in);
    memset(&st, 0, sizeof st);
    double gmax = 0;
    for (int f = 0; f < pl->nfocal; f++) {
        in.gamma[f] = (float)pl->focal_gamma[f];
        if (pl->focal_gamma[f] != 2 && pl->focal_gamma[f] > gmax) {
            gmax = pl->focal_gamma[f];
        }
    }
    in.nfocal = pl->nfocal;
    in.classes = (int)C;
    in.far_d = sl__mc_far_d((int)C, gmax);
    bool sp2 = false;
    for (int k = 0; k < req->nlosses; k++) {
        sp2 = sp2 || wants_sp2(&req->losses[k]);
    }
    in.what = (pl->need_soft ? SL_MC_SOFT : 0) | (pl->need_soft && sp2 ? SL_MC_SP2 : 0) |
              (pl->need_ce ? SL_MC_CE : 0) | (pl->need_ce_all ? SL_MC_LS : 0) |
              (pl->nfocal ? SL_MC_FOCAL : 0) | (req->weight.data ? SL_MC_W : 0) |
              (pl->need_cm ? SL_MC_CM : 0);
    const bool u8 = req->target.dtype == SL_DT_U8, wide = !u8 && C > 255;
    in.ign = !req->has_ignore                                     ? -1
             : wide                                               ? 65535
             : !u8                                                ? 255
             : req->ignore_index >= 0 && req->ignore_index <= 255 ? (int)req->ignore_index
                                                                  : -1;
    st.lanes = lanes;
    st.counts = counts;
    st.matrix = matrix;
    st.e = malloc(sizeof *st.e * (size_t)SL_MC_SCRATCH(C));
    /* the kernel over logits, or over probabilities (simd_mcp.h) */
    void (*kernel)(int, const struct sl__mc_in *, struct sl__mc_state *) =
        req->pred_type == SL_PRED_PROBABILITIES ? sl__mc_probs : sl__mc_logits;
    float *xb = malloc(sizeof *xb * (size_t)(C * SUB)), *wb = malloc(sizeof *wb * SUB);
    uint8_t *tb = malloc(SUB);
    uint16_t *tb16 = wide ? malloc(sizeof *tb16 * SUB) : NULL;
    if (!st.e || !xb || !wb || !tb || (wide && !tb16)) {
        goto out;
    }
    const bool f32 =
        req->prediction.dtype == SL_DT_F32 && (!req->weight.data || req->weight.dtype == SL_DT_F32);
    /* whole blocks read in place when they can be, in one call (its blocks' copies overlap
     * the blocks before: simd_mc.h), the rest through the buffers */
    const int64_t direct = f32 && u8 ? len / SL_MC_BLOCK * SL_MC_BLOCK : 0;
    if (direct > 0) {
        in.x = (const float *)req->prediction.data + i * C * S + off0;
        in.xs = S;
        in.readable = S - off0;
        in.t = (const uint8_t *)req->target.data + i * S + off0;
        in.w = req->weight.data ? (const float *)req->weight.data + i * S + off0 : NULL;
        in.n = direct;
        kernel(-1, &in, &st);
    }
    for (int64_t off = off0 + direct; off < off0 + len; off += SUB) {
        const int64_t n = off0 + len - off < SUB ? off0 + len - off : SUB;
        load_pred(&req->prediction, C, S, i, off, n, xb);
        load_target(req, S, i, off, n, tb, tb16);
        if (req->weight.data) {
            if (req->weight.dtype == SL_DT_F32) {
                memcpy(wb, (const float *)req->weight.data + i * S + off,
                       sizeof(float) * (size_t)n);
            } else { /* float16 / bfloat16, widened exactly */
                sl__to_f32(-1, req->weight.dtype, (const uint16_t *)req->weight.data + i * S + off,
                           n, wb);
            }
            memset(wb + n, 0, sizeof(float) * (size_t)(SUB - n));
        }
        in.x = xb;
        in.xs = SUB;
        in.readable = 0;
        in.t = tb;
        in.t16 = tb16;
        in.w = req->weight.data ? wb : NULL;
        in.n = n;
        kernel(-1, &in, &st);
    }
    *count += st.count;
    *bad = *bad || st.bad;
    rc = 0;
out:
    free(st.e);
    free(xb);
    free(wb);
    free(tb);
    free(tb16);
    return rc;
}

/* Image i's planes (pl->accs) from its summed lanes, counts, pixel count and bad flag. */
static void mc_to_accs(const struct sl__plan *pl, int64_t i, const double *lanes,
                       const int32_t *counts, int64_t count, bool bad)
{
    const int64_t C = pl->g->classes;
    const int nq = SL_MCQ_FOCAL + pl->nfocal;
    struct sl__acc *a = &pl->accs[i * C];
    memset(a, 0, sizeof *a * (size_t)C);
    for (int64_t c = 0; c < C; c++) {
        /* the 16 lanes in order */
        double q[SL_MCQ_FOCAL + SL_MAX_FOCAL];
        int64_t cnt[3];
        for (int j = 0; j < nq; j++) {
            q[j] = 0;
            for (int l = 0; l < 16; l++) {
                q[j] += lanes[(c * nq + j) * 16 + l];
            }
        }
        for (int j = 0; j < 3; j++) {
            cnt[j] = 0;
            for (int l = 0; l < 16; l++) {
                cnt[j] += counts[(c * 3 + j) * 16 + l];
            }
        }
        a[c].count = (double)count;
        a[c].sp = q[SL_MCQ_SP];
        a[c].sp2 = q[SL_MCQ_SP2];
        a[c].spy = q[SL_MCQ_SPY];
        a[c].ce_pos = q[SL_MCQ_CE];
        a[c].lp_all = q[SL_MCQ_LP];
        for (int f = 0; f < pl->nfocal; f++) {
            a[c].focal_pos[f] = q[SL_MCQ_FOCAL + f];
        }
        a[c].sy = (double)cnt[0];
        a[c].invalid = bad;
        if (pl->need_cm) {
            a[c].cm.tp = cnt[1];
            a[c].cm.fn = cnt[0] - cnt[1];
            a[c].cm.fp = cnt[2] - cnt[1];
        }
        a[c].cm.tn = count - a[c].cm.tp - a[c].cm.fp - a[c].cm.fn;
    }
}

int64_t sl__mc_nparts(const struct sl__plan *pl)
{
    const int64_t S = pl->g->pixels;
    return pl->mc_fast && S > SL_MC_PART ? (S + SL_MC_PART - 1) / SL_MC_PART : 1;
}

void sl__mc_part_task(void *arg, int64_t t)
{
    const struct sl__plan *pl = arg;
    const int64_t np = pl->mc_nparts, i = t / np, j = t % np, S = pl->g->pixels;
    const int64_t off = j * SL_MC_PART, len = S - off < SL_MC_PART ? S - off : SL_MC_PART;
    struct sl__mc_part *p = &pl->mc_parts[t];
    p->oom = mc_sums(pl, i, off, len, p->lanes, p->counts, p->matrix, &p->count, &p->bad) != 0;
}

int sl__pass_softmax_fast(const struct sl__plan *pl, int64_t i)
{
    const int64_t C = pl->g->classes, S = pl->g->pixels;
    const int64_t nl = C * (SL_MCQ_FOCAL + pl->nfocal) * 16, nc = C * 3 * 16;
    int64_t *matrix = pl->matrix ? pl->matrix + i * C * C : NULL;
    if (pl->mc_nparts > 1) {
        /* the parts' sums (sl__mc_part_task), added in part order into the first */
        const struct sl__mc_part *p = &pl->mc_parts[i * pl->mc_nparts];
        bool bad = p[0].bad;
        int64_t count = p[0].count;
        for (int64_t j = 0; j < pl->mc_nparts; j++) {
            if (p[j].oom) {
                return SL_ENOMEM;
            }
            if (j > 0) {
                for (int64_t k = 0; k < nl; k++) {
                    p[0].lanes[k] += p[j].lanes[k];
                }
                for (int64_t k = 0; k < nc; k++) {
                    p[0].counts[k] += p[j].counts[k];
                }
                count += p[j].count;
                bad = bad || p[j].bad;
            }
            for (int64_t k = 0; matrix && k < C * C; k++) {
                matrix[k] += p[j].matrix[k];
            }
        }
        mc_to_accs(pl, i, p[0].lanes, p[0].counts, count, bad);
        return 0;
    }
    double *lanes = calloc((size_t)nl, sizeof *lanes);
    int32_t *counts = calloc((size_t)nc, sizeof *counts);
    int64_t count = 0;
    bool bad = false;
    int rc = SL_ENOMEM;
    if (lanes && counts && mc_sums(pl, i, 0, S, lanes, counts, matrix, &count, &bad) == 0) {
        mc_to_accs(pl, i, lanes, counts, count, bad);
        rc = 0;
    }
    free(lanes);
    free(counts);
    return rc;
}
