/* internal.h - declarations shared between lib/ files; not part of the public API. */
#ifndef SL_INTERNAL_H
#define SL_INTERNAL_H

#include "segloss.h"

/* Clip of probabilities before a log (Keras backend epsilon). */
#define SL_EPS 1e-7
/* Floor of a ratio before -log in the log-form region losses (smp's eps). */
#define SL_LOG_FLOOR 1e-7

bool sl__dtype_is_float(enum sl_dtype dtype);
/* Writes the multi-index of flat index i in shape as "[a, b, c]". */
void sl__format_index(const int64_t *shape, int ndim, int64_t i, char *buf, size_t len);

/* Parameter indices, in the order of each table row. */
enum { SL_P_CE_REDUCTION = 0, SL_P_CE_CLASS_WEIGHTS };
enum { SL_P_WCE_BETA = 0, SL_P_WCE_REDUCTION };
enum { SL_P_BCE_BETA = 0, SL_P_BCE_REDUCTION };
enum { SL_P_FOCAL_ALPHA = 0, SL_P_FOCAL_GAMMA, SL_P_FOCAL_REDUCTION };
enum {
    SL_P_DICE_SMOOTH = 0,
    SL_P_DICE_SQUARED,
    SL_P_DICE_LOG,
    SL_P_DICE_PER_IMAGE,
    SL_P_DICE_CLASS_WEIGHTS
};
enum { SL_P_JAC_SMOOTH = 0, SL_P_JAC_LOG, SL_P_JAC_PER_IMAGE, SL_P_JAC_CLASS_WEIGHTS };
enum {
    SL_P_TV_BETA = 0,
    SL_P_TV_FP,
    SL_P_TV_FN,
    SL_P_TV_GAMMA,
    SL_P_TV_SMOOTH,
    SL_P_TV_LOG,
    SL_P_TV_PER_IMAGE,
    SL_P_TV_CLASS_WEIGHTS
};
enum { SL_P_LH_PER_IMAGE = 0 };
enum { SL_P_LSM_CLASSES = 0, SL_P_LSM_PER_IMAGE };
enum { SL_LSM_PRESENT = 0, SL_LSM_ALL };
enum {
    SL_P_DW_W0 = 0,
    SL_P_DW_SIGMA,
    SL_P_DW_CLASS_WEIGHTS,
    SL_P_DW_NEIGHBORS,
    SL_P_DW_CONNECTIVITY,
    SL_P_DW_REDUCTION
};
enum { SL_P_COMBO_TERMS = 0 };
enum { SL_P_FBETA_BETA = 0 };
enum { SL_P_HD_PERCENTILE = 0, SL_P_HD_POOLING, SL_P_HD_EMPTY };
enum { SL_P_ASSD_EMPTY = 0 };
enum { SL_P_NSD_TOLERANCE = 0 };
enum { SL_POOL_MAX = 0, SL_POOL_POOLED };

/* Choices of enum parameters. */
enum { SL_RED_MEAN = 0, SL_RED_SUM };
enum { SL_BETA_AUTO = 0, SL_BETA_AUTO_PER_IMAGE };

/* An input geometry after mode inference. A plane is one image's channel (binary: C = 1;
 * multilabel: one binary problem per channel; multiclass: one class of the softmax). */
struct sl__geom {
    enum sl_mode mode;
    int64_t images;
    int64_t classes; /* C; 1 in binary mode */
    int64_t pixels;  /* per image (and per plane) */
    int nspatial;
    int64_t spatial[3];
    bool target_has_c; /* target is [N, C, *S] (multilabel) */
    bool weight_has_c; /* weight is [N, C, *S] (multilabel) */
};

#define SL_MAX_FOCAL 16
#define SL_MAX_DWCE 4
#define SL_MAX_SURFACE 16

/* A hinge error 1 - logit * sign(y), or a softmax error |fg - p|, with its label. */
struct sl__ey {
    double e;
    uint8_t y;
};

/* Sums of one plane, all in double. Binary/multilabel: the CE family is linear in its two
 * halves, so every variant is recovered from ce_pos and ce_neg after the pass. Multiclass:
 * ce_pos and focal_pos sum -log p_c (times the focal factor) over the pixels of class c. */
struct sl__acc {
    double count;            /* counted (not ignored) pixels */
    double ce_pos, ce_neg;   /* sum w * -y log p, sum w * -(1-y) log(1-p) */
    double sp, sy, spy, sp2; /* sum p, sum y, sum p*y, sum p*p */
    double focal_pos[SL_MAX_FOCAL], focal_neg[SL_MAX_FOCAL];
    struct sl_confusion cm;
    double dwce[SL_MAX_DWCE]; /* sum w * map * CE per distance-weighted CE spec */
    double lovasz;            /* the plane's Lovász loss (hinge, or softmax class) */
    bool lovasz_fg;           /* the plane has foreground (Lovász-Softmax "present") */
};

/* What the pass must compute, derived once from the request, and where it goes. */
struct sl__plan {
    const struct sl_request *req;
    const struct sl__geom *g;
    bool need_ce, need_soft, need_cm, need_matrix;
    bool need_hinge_img, need_hinge_batch, need_lsm_img, need_lsm_batch;
    int nfocal;
    double focal_gamma[SL_MAX_FOCAL];
    int ndwce;
    const struct sl_spec *dwce[SL_MAX_DWCE]; /* distinct distance-weighted CE specs */
    int nsurf;
    const struct sl_spec *surf[SL_MAX_SURFACE]; /* surface-distance metrics */
    double *surf_values;                        /* N x C x nsurf */
    double thr_logit;                           /* hard prediction on logits: x >= thr_logit */
    struct sl__acc *accs;                       /* N x C planes, image-major */
    int64_t *matrix;                            /* multiclass confusion: N x C x C, or NULL */
    float *probs; /* multiclass Lovász-Softmax: N x C x S softmax probabilities */
    int *oom;     /* N flags: an image's scratch could not be allocated */
};

/* Index of the focal accumulator of gamma in the plan (it exists after planning). */
int sl__focal_slot(const struct sl__plan *pl, double gamma);

/* Binary and multilabel: the fused pass over plane (image i, channel c). */
void sl__pass_plane(const struct sl__plan *pl, int64_t i, int64_t c);
/* Hinge errors of the counted pixels of plane (i, c), appended at v; returns how many. */
int64_t sl__hinge_errors(const struct sl__plan *pl, int64_t i, int64_t c, struct sl__ey *v);

/* Multiclass: the fused softmax pass over image i (all C planes, the confusion matrix, and the
 * probabilities for Lovász-Softmax when asked). Returns 0 or SL_ENOMEM. */
int sl__pass_softmax(const struct sl__plan *pl, int64_t i);
/* |fg - p_c| errors of the counted pixels of image i for class c, appended at v. */
int64_t sl__softmax_errors(const struct sl__plan *pl, int64_t i, int64_t c, struct sl__ey *v);

/* Hard prediction and target masks of plane (i, c): 1 = foreground; ignored pixels are 0 in
 * both. arg: the image's argmax (multiclass), else NULL. */
void sl__plane_masks(const struct sl__plan *pl, int64_t i, int64_t c, const int *arg, uint8_t *pred,
                     uint8_t *tgt);
/* Multiclass: the argmax class of every pixel of image i (first maximum on ties). */
void sl__argmax_image(const struct sl__plan *pl, int64_t i, int *arg);
/* sum over counted pixels of w * map * CE for binary plane (i, c). */
double sl__mapped_ce_sum(const struct sl__plan *pl, int64_t i, int64_t c, const float *map);

/* Surface-distance metrics (hausdorff, assd, nsd) of one plane's masks into vals[k] for
 * specs[k]; NaN = undefined. Returns 0 or SL_ENOMEM. */
int sl__surface_metrics(const uint8_t *pred, const uint8_t *tgt, int nd, const int64_t *shape,
                        const double *spacing, const struct sl_spec *const *specs, int n,
                        double *vals);

/* Index of spec s in the plan's distance-weighted CE list (it exists after planning). */
int sl__dwce_slot(const struct sl__plan *pl, const struct sl_spec *s);

/* Fills every loss and metric of res from the planes. Returns 0 or a negative code. */
int sl__reduce(const struct sl__plan *pl, struct sl_result *res, char *msg, size_t msglen);

/* Plans, runs the passes over the pool and reduces (score.c validated everything). */
int sl__run(const struct sl_request *req, const struct sl__geom *g, struct sl_pool *pool,
            struct sl_result *res, char *msg, size_t msglen);

/* Lovász extension of the Jaccard loss at errors v (n pairs, sorted in place by decreasing
 * error): sum of relu(e) times the gradient. Berman, Triki & Blaschko 2018, reference code
 * lovasz_hinge_flat and lovasz_softmax_flat (one class). */
double sl__lovasz_flat(struct sl__ey *v, int64_t n);

/* ---- distances (edt.c, ccl.c, weightmap.c) ---- */

/* Squared exact Euclidean distance transform (Felzenszwalb & Huttenlocher 2012, separable,
 * linear in the number of pixels) of a grid of nd = 2 or 3 dims: out[i] is the squared distance,
 * in spacing units (spacing NULL: all 1), from pixel i to the nearest pixel whose seed is
 * nonzero; +INFINITY everywhere when there is no seed. Returns 0 or SL_ENOMEM. */
int sl__edt_sq(const uint8_t *seed, int nd, const int64_t *shape, const double *spacing,
               double *out);

/* Connected components of the nonzero pixels of mask (nd = 2 or 3 dims) with connectivity
 * 4 or 8 (2-D), 6 or 26 (3-D): out[i] = 0 on background, else a label 1..n in raster order of
 * first appearance. Returns n (>= 0), or SL_ENOMEM / SL_EINVAL (bad connectivity). */
int64_t sl__label(const uint8_t *mask, int nd, const int64_t *shape, int connectivity,
                  int32_t *out);

/* The weight map of one image: mask (0/1) and labels (0 = background, 1..n instances) of S
 * pixels; out receives S floats. Returns 0 or SL_ENOMEM. */
int sl__weight_map_image(const uint8_t *mask, const int32_t *labels, int64_t n, int nd,
                         const int64_t *shape, const struct sl_weight_map_params *p, float *out);

/* Checks an instance label map: integers >= 0 (0 = background), naming the first bad index. */
int sl__check_instances(const struct sl_tensor *t, char *msg, size_t msglen);

/* Maps the positive labels of the npix values of instance map t from index off to compact
 * labels 1..n (0 stays background). Returns n, or SL_ENOMEM. */
int64_t sl__relabel(const struct sl_tensor *t, int64_t off, int64_t npix, int32_t *out);

/* The same map by the naive method (one full EDT per instance), for tests and `make bench`. */
int sl__weight_map_image_naive(const uint8_t *mask, const int32_t *labels, int64_t n, int nd,
                               const int64_t *shape, const struct sl_weight_map_params *p,
                               float *out);

/* Metric value from confusion counts with the `empty` convention (NaN = undefined). */
double sl__metric_value(const struct sl_spec *spec, const struct sl_confusion *c, enum sl_empty e);

/* The clipped probability [eps, 1 - eps] (Keras). */
static inline double sl__clip(double p)
{
    return p < SL_EPS ? SL_EPS : (p > 1 - SL_EPS ? 1 - SL_EPS : p);
}

#endif /* SL_INTERNAL_H */
