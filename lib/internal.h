/* internal.h - declarations shared between lib/ files; not part of the public API. */
#ifndef SL_INTERNAL_H
#define SL_INTERNAL_H

#include <string.h>

#include "segloss.h"

/* Clip of probabilities before a log (Keras backend epsilon). */
#define SL_EPS 1e-7
/* Floor of a ratio before -log in the log-form region losses (smp's eps). */
#define SL_LOG_FLOOR 1e-7

bool sl__dtype_is_float(enum sl_dtype dtype);
/* Widens n float16 or bfloat16 elements at src into float32 at dst (exactly; a float16 NaN may
 * come out quiet): F16C where the CPU has it (isa < 0: best available), the scalar loop for isa
 * 0; bfloat16 is the high half of a float32. Other dtypes: dst is left alone. */
void sl__to_f32(int isa, enum sl_dtype dt, const void *src, int64_t n, float *dst);
/* The include_background that loss s follows: its own parameter when given, else inherited
 * (its combo's, or the request's). */
bool sl__include_bg(const struct sl_spec *s, bool inherited);
/* Writes the multi-index of flat index i in shape as "[a, b, c]". */
void sl__format_index(const int64_t *shape, int ndim, int64_t i, char *buf, size_t len);

/* Parameter indices of each row. lib/table.c places every parameter at its index with a
 * designated initializer ([SL_P_DICE_SMOOTH] = ...) and asserts that the row has _N of them, so
 * an index cannot drift from its row; the kernels read values[SL_P_...]. */
enum {
    SL_P_CE_REDUCTION,
    SL_P_CE_CLASS_WEIGHTS,
    SL_P_CE_INCLUDE_BG,
    SL_P_CE_LABEL_SMOOTHING,
    SL_P_CE_SMOOTH_FACTOR,
    SL_P_CE_N
};
enum { SL_P_WCE_BETA, SL_P_WCE_REDUCTION, SL_P_WCE_INCLUDE_BG, SL_P_WCE_N };
enum { SL_P_BCE_BETA, SL_P_BCE_REDUCTION, SL_P_BCE_INCLUDE_BG, SL_P_BCE_N };
enum {
    SL_P_FOCAL_ALPHA,
    SL_P_FOCAL_GAMMA,
    SL_P_FOCAL_REDUCTION,
    SL_P_FOCAL_INCLUDE_BG,
    SL_P_FOCAL_N
};
enum {
    SL_P_DICE_SMOOTH,
    SL_P_DICE_SQUARED,
    SL_P_DICE_LOG,
    SL_P_DICE_PER_IMAGE,
    SL_P_DICE_CLASS_WEIGHTS,
    SL_P_DICE_INCLUDE_BG,
    SL_P_DICE_SMOOTH_NR,
    SL_P_DICE_SMOOTH_DR,
    SL_P_DICE_ABSENT,
    SL_P_DICE_REDUCTION,
    SL_P_DICE_N
};
enum {
    SL_P_JAC_SMOOTH,
    SL_P_JAC_LOG,
    SL_P_JAC_PER_IMAGE,
    SL_P_JAC_CLASS_WEIGHTS,
    SL_P_JAC_INCLUDE_BG,
    SL_P_JAC_SMOOTH_NR,
    SL_P_JAC_SMOOTH_DR,
    SL_P_JAC_ABSENT,
    SL_P_JAC_REDUCTION,
    SL_P_JAC_N
};
enum {
    SL_P_TV_BETA,
    SL_P_TV_FP,
    SL_P_TV_FN,
    SL_P_TV_GAMMA,
    SL_P_TV_SMOOTH,
    SL_P_TV_LOG,
    SL_P_TV_PER_IMAGE,
    SL_P_TV_CLASS_WEIGHTS,
    SL_P_TV_INCLUDE_BG,
    SL_P_TV_SMOOTH_NR,
    SL_P_TV_SMOOTH_DR,
    SL_P_TV_ABSENT,
    SL_P_TV_REDUCTION,
    SL_P_TV_N
};
enum {
    SL_P_GD_W_TYPE,
    SL_P_GD_SMOOTH,
    SL_P_GD_SMOOTH_NR,
    SL_P_GD_SMOOTH_DR,
    SL_P_GD_PER_IMAGE,
    SL_P_GD_REDUCTION,
    SL_P_GD_INCLUDE_BG,
    SL_P_GD_N
};
enum { SL_GD_SQUARE = 0, SL_GD_SIMPLE, SL_GD_UNIFORM };
enum { SL_P_MCC_EPS, SL_P_MCC_PER_IMAGE, SL_P_MCC_INCLUDE_BG, SL_P_MCC_N };
/* Region losses' absent_classes: a class absent from the target counts as computed (today), or
 * adds 0 to the mean over classes (smp). */
enum { SL_ABSENT_COUNT = 0, SL_ABSENT_ZERO };
enum { SL_P_LH_PER_IMAGE, SL_P_LH_INCLUDE_BG, SL_P_LH_N };
enum { SL_P_LSM_CLASSES, SL_P_LSM_PER_IMAGE, SL_P_LSM_INCLUDE_BG, SL_P_LSM_N };
enum { SL_LSM_PRESENT = 0, SL_LSM_ALL };
enum {
    SL_P_DW_W0,
    SL_P_DW_SIGMA,
    SL_P_DW_CLASS_WEIGHTS,
    SL_P_DW_NEIGHBORS,
    SL_P_DW_CONNECTIVITY,
    SL_P_DW_REDUCTION,
    SL_P_DW_N
};
enum { SL_P_COMBO_TERMS, SL_P_COMBO_INCLUDE_BG, SL_P_COMBO_N };
enum { SL_P_FBETA_BETA, SL_P_FBETA_ZERO_DIVISION, SL_P_FBETA_REDUCTION, SL_P_FBETA_N };
/* confusion-matrix metrics: dice and iou (MONAI's ignore_empty), segloss's other ratios, the
 * rows following MONAI ConfusionMatrixMetric */
enum {
    SL_P_OVERLAP_IGNORE_EMPTY,
    SL_P_OVERLAP_ZERO_DIVISION,
    SL_P_OVERLAP_REDUCTION,
    SL_P_OVERLAP_N
};
enum { SL_P_RATIO_ZERO_DIVISION, SL_P_RATIO_REDUCTION, SL_P_RATIO_N };
enum { SL_P_CM_REDUCTION, SL_P_CM_N };
enum {
    SL_P_HD_PERCENTILE,
    SL_P_HD_POOLING,
    SL_P_HD_EMPTY,
    SL_P_HD_DIRECTION,
    SL_P_HD_DISTANCE,
    SL_P_HD_EMPTY_RULE,
    SL_P_HD_SURFACES,
    SL_P_HD_REDUCTION,
    SL_P_HD_N
};
enum {
    SL_P_ASSD_EMPTY,
    SL_P_ASSD_DIRECTION,
    SL_P_ASSD_DISTANCE,
    SL_P_ASSD_EMPTY_RULE,
    SL_P_ASSD_SURFACES,
    SL_P_ASSD_REDUCTION,
    SL_P_ASSD_N
};
enum { SL_P_NSD_TOLERANCE, SL_P_NSD_DISTANCE, SL_P_NSD_EMPTY_RULE, SL_P_NSD_REDUCTION, SL_P_NSD_N };
enum {
    SL_P_SDICE_TOLERANCE,
    SL_P_SDICE_DISTANCE,
    SL_P_SDICE_EMPTY_RULE,
    SL_P_SDICE_REDUCTION,
    SL_P_SDICE_N
};
enum {
    SL_P_SOVL_TOLERANCE,
    SL_P_SOVL_DIRECTION,
    SL_P_SOVL_DISTANCE,
    SL_P_SOVL_EMPTY_RULE,
    SL_P_SOVL_REDUCTION,
    SL_P_SOVL_N
};
enum { SL_POOL_MAX = 0, SL_POOL_POOLED };
/* Choices of the surface metrics' direction, distance_metric, empty_rule and surfaces. */
enum { SL_DIR_SYMMETRIC = 0, SL_DIR_PRED_TO_TARGET, SL_DIR_TARGET_TO_PRED };
enum { SL_DIST_EUCLIDEAN = 0, SL_DIST_CHESSBOARD, SL_DIST_TAXICAB };
enum { SL_EMPTY_RULE_SEGLOSS = 0, SL_EMPTY_RULE_MONAI, SL_EMPTY_RULE_DEEPMIND };
enum { SL_SURF_VOXELS = 0, SL_SURF_SURFELS };

/* Choices of enum parameters. */
enum { SL_RED_MEAN = 0, SL_RED_SUM, SL_RED_NONE };
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
    bool soft_target;  /* binary/multilabel float target with a value strictly in (0, 1) */
};

#define SL_MAX_FOCAL 16
#define SL_MAX_DWCE 4
#define SL_MAX_SURFACE 16

/* A hinge error 1 - logit * sign(y), or a softmax error |fg - p|, with its label; key is the
 * sort's scratch. */
struct sl__ey {
    double e;
    uint32_t key;
    uint8_t y;
};

/* Sums of one plane, all in double. Binary/multilabel: the CE family is linear in its two
 * halves, so every variant is recovered from ce_pos and ce_neg after the pass. Multiclass:
 * ce_pos and focal_pos sum -log p_c (times the focal factor) over the pixels of class c. */
struct sl__acc {
    double count;            /* counted (not ignored) pixels */
    double ce_pos, ce_neg;   /* sum w * -y log p, sum w * -(1-y) log(1-p) */
    double sp, sy, spy, sp2; /* sum p, sum y, sum p*y, sum p*p */
    /* label smoothing (plan need_ce_all): binary/multilabel sum w * -log p and sum w *
     * -log(1-p) over every counted pixel, whatever its y (the fused pass keeps their sum in
     * lp_all); multiclass sum w * -log p_c */
    double lp_all, l1p_all;
    double focal_pos[SL_MAX_FOCAL], focal_neg[SL_MAX_FOCAL];
    struct sl_confusion cm;
    double dwce[SL_MAX_DWCE]; /* sum w * map * CE per distance-weighted CE spec */
    double lovasz;            /* the plane's Lovász loss (hinge, or softmax class) */
    bool lovasz_fg;           /* the plane has foreground (Lovász-Softmax "present") */
    bool invalid;             /* the fused kernel saw a value validation would refuse */
};

/* What the pass must compute, derived once from the request, and where it goes. */
struct sl__plan {
    const struct sl_request *req;
    const struct sl__geom *g;
    bool need_ce, need_soft, need_cm, need_matrix;
    bool need_ce_all; /* a cross entropy smooths its labels: lp_all and l1p_all */
    bool need_hinge_img, need_hinge_batch, need_lsm_img, need_lsm_batch;
    int nfocal;
    double focal_gamma[SL_MAX_FOCAL];
    bool focal_nobg[SL_MAX_FOCAL]; /* multiclass: softmax over classes 1..C-1 (MONAI) */
    bool lovasz_bg;                /* some Lovász loss counts class/channel 0 */
    int ndwce;
    const struct sl_spec *dwce[SL_MAX_DWCE]; /* distinct distance-weighted CE specs */
    int nsurf;
    const struct sl_spec *surf[SL_MAX_SURFACE]; /* surface-distance metrics */
    double *surf_values;                        /* N x C x nsurf */
    double thr_logit;                           /* hard prediction on logits: x >= thr_logit */
    float thr_f;           /* the least float >= thr_logit: float x >= thr_logit iff x >= thr_f */
    bool fast;             /* binary planes run the fused float32 kernel (sl__fused_logits) */
    int fast_what;         /* its SL_FZ_* flags, focal aside */
    bool mc_fast;          /* multiclass runs the fused float32 kernel (sl__mc_fast_ok) */
    struct sl__acc *accs;  /* N x C planes, image-major */
    int64_t *matrix;       /* multiclass confusion: N x C x C, or NULL */
    float *probs;          /* multiclass Lovász-Softmax: N x C x S softmax probabilities */
    int *oom;              /* N flags: an image's scratch could not be allocated */
    double *lovasz_batch;  /* C batch Lovász values (per_image false), or NULL */
    int *lovasz_batch_rc;  /* C: 0 computed, 1 not (reduce computes it), or SL_ENOMEM */
    bool lsm_all;          /* a batch Lovász-Softmax wants every class, present or not */
    struct sl_pool *pool;  /* for the batch Lovász sorts (NULL: the calling thread) */
    int64_t nimg_tasks;    /* whole-image tasks (0 or N) */
    int64_t nchunks;       /* chunks per binary plane */
    struct sl__acc *parts; /* N x C x nchunks chunk sums */
    int64_t mc_nparts;     /* multiclass fused kernel: parts per image (1: the image task) */
    struct sl__mc_part *mc_parts; /* N x mc_nparts part sums when mc_nparts > 1 */
};

/* One part's sums of the multiclass kernel (softmax_fast.c): lanes classes x (SL_MCQ_FOCAL +
 * nfocal) x 16, counts classes x 3 x 16, matrix classes x classes or NULL (sl__mc_state), the
 * counted pixels, bad, and oom when its scratch could not be allocated. */
struct sl__mc_part {
    double *lanes;
    int32_t *counts;
    int64_t *matrix;
    int64_t count;
    bool bad, oom;
};
/* Pixels of one multiclass part: an image with more is cut in parts of SL_MC_PART pixels, each
 * summed on its own (a pool task) and added in part order, so that one large image uses every
 * worker and its sums do not depend on the pool. */
#define SL_MC_PART 65536

/* Pixels of a binary plane summed by one task. */
#define SL_CHUNK 65536
/* Memory the batch Lovász sorts of several classes may hold at once on the pool. */
#define SL_LOVASZ_PARALLEL_BYTES ((int64_t)256 << 20)
/* Requests with fewer pixels (N x C x S) run on the calling thread, never on the pool. */
#define SL_INLINE_PIXELS (2 * SL_CHUNK)
/* sl__run's answer when the fused kernel met a value that validation skipped for it would refuse:
 * validate fully and report that. */
#define SL_EAGAIN_CHECK 1

/* One class's soft sums over counted pixels (of one image, or pooled over the batch): pixels,
 * sum p, sum y, sum p y, sum p^2. */
struct sl__soft {
    double n, sp, sy, spy, sp2;
};

/* The surface distances of one plane, as a surface metric's kernel reads them. d[0..np) are
 * the distances from the prediction's surface elements to the target's surface, d[np..np+nt)
 * the distances back; w (same layout) the elements' lengths or areas (surfels), or NULL when
 * every element (a boundary voxel) counts 1. np == 0 or nt == 0: that surface is empty (d and
 * w hold only the other's elements, all at distance +inf). tmp: np + nt doubles of scratch. */
struct sl__surf_in {
    const double *d;
    const double *w;
    int64_t np, nt;
    double *tmp;
    int64_t cls;         /* the plane's class or channel (per-class tolerances) */
    enum sl_empty empty; /* the request's empty convention */
    int nd;
    const int64_t *shape;
    const double *spacing; /* NULL: all 1 */
};

/* A row's entry points (struct sl_def.kernel): the loss or metric itself, found by the row
 * instead of by a switch. NULL where a row has no such step. */
struct sl__kernel {
    /* losses: records in the plan what the fused pass must compute for s; bg is the
     * include_background s inherits. Returns 0 or SL_ETOOLARGE (a plan table is full). */
    int (*plan)(struct sl__plan *pl, const struct sl_spec *s, bool bg);
    /* losses: fills per_image[N] and *value from the plane sums; *has_per_image is false when
     * the loss pools the batch. Returns 0 or a negative code. */
    int (*value)(const struct sl__plan *pl, const struct sl_spec *s, bool bg, double *per_image,
                 bool *has_per_image, double *value);
    /* pixel losses, binary/multilabel: the loss sum of plane (i, c); beta_auto[c] is the
     * batch's mean(1-y) of channel c. */
    double (*plane_sum)(const struct sl__plan *pl, const struct sl_spec *s, int64_t i, int64_t c,
                        const double *beta_auto);
    /* pixel losses, multiclass: numerator and denominator of image i's mean. */
    void (*softmax_sum)(const struct sl__plan *pl, const struct sl_spec *s, bool bg, int64_t i,
                        double *num, double *den);
    /* region losses: the score of one class's soft sums; *use_log: report -log(score). */
    double (*score)(const struct sl_spec *s, const struct sl__soft *u, bool *use_log);
    /* region losses: applied to the mean over classes (focal Tversky's gamma), or NULL. */
    double (*finish)(const struct sl_spec *s, double v);
    /* losses: rules beyond the modes and per-class list lengths (which score.c checks for every
     * row), for geometry g; where names the spec. Returns 0 or a negative code with msg. */
    int (*check)(const struct sl_spec *s, const struct sl__geom *g, const char *where, char *msg,
                 size_t msglen);
    /* losses: NULL when s takes soft targets (binary/multilabel floats in [0, 1]) as given;
     * else a function naming, in a static sentence, why s needs targets of exactly 0 or 1
     * (NULL from it: this spec takes them). score.c refuses such a request. */
    const char *(*hard_target)(const struct sl_spec *s);
    /* losses: how a value split over batches recombines (sl_loss_combine). */
    enum sl_combine (*combine)(const struct sl_spec *s, const char **why);
    /* confusion-matrix metrics: the value from the counts; a zero denominator gives degenerate
     * (the `empty` value when prediction and target agree, else 0). */
    double (*from_counts)(const struct sl_spec *s, double tp, double fp, double fn, double tn,
                          double degenerate);
    /* surface metrics: the value of one plane from its surface distances (struct sl__surf_in),
     * empty surfaces included */
    double (*surface)(const struct sl_spec *s, const struct sl__surf_in *in);
};

/* ---- kernel entry points, named in the rows of lib/table.c ---- */

/* run.c: what each loss family asks of the pass */
int sl__plan_ce(struct sl__plan *pl, const struct sl_spec *s, bool bg);
int sl__plan_cross_entropy(struct sl__plan *pl, const struct sl_spec *s, bool bg);
int sl__plan_focal(struct sl__plan *pl, const struct sl_spec *s, bool bg);
int sl__plan_soft(struct sl__plan *pl, const struct sl_spec *s, bool bg);
int sl__plan_lovasz_hinge(struct sl__plan *pl, const struct sl_spec *s, bool bg);
int sl__plan_lovasz_softmax(struct sl__plan *pl, const struct sl_spec *s, bool bg);
int sl__plan_dwce(struct sl__plan *pl, const struct sl_spec *s, bool bg);
int sl__plan_terms(struct sl__plan *pl, const struct sl_spec *s, bool bg);
/* Plans loss s under the inherited include_background bg (its row's plan). */
int sl__plan_loss(struct sl__plan *pl, const struct sl_spec *s, bool bg);

/* reduce.c: values per family, and each loss's own formula */
int sl__value_pixel(const struct sl__plan *pl, const struct sl_spec *s, bool bg, double *per_image,
                    bool *has_per_image, double *value);
int sl__value_region(const struct sl__plan *pl, const struct sl_spec *s, bool bg, double *per_image,
                     bool *has_per_image, double *value);
int sl__value_lovasz(const struct sl__plan *pl, const struct sl_spec *s, bool bg, double *per_image,
                     bool *has_per_image, double *value);
int sl__value_terms(const struct sl__plan *pl, const struct sl_spec *s, bool bg, double *per_image,
                    bool *has_per_image, double *value);
double sl__sum_ce(const struct sl__plan *pl, const struct sl_spec *s, int64_t i, int64_t c,
                  const double *beta_auto);
double sl__sum_wce(const struct sl__plan *pl, const struct sl_spec *s, int64_t i, int64_t c,
                   const double *beta_auto);
double sl__sum_bce(const struct sl__plan *pl, const struct sl_spec *s, int64_t i, int64_t c,
                   const double *beta_auto);
double sl__sum_focal(const struct sl__plan *pl, const struct sl_spec *s, int64_t i, int64_t c,
                     const double *beta_auto);
double sl__sum_dwce(const struct sl__plan *pl, const struct sl_spec *s, int64_t i, int64_t c,
                    const double *beta_auto);
void sl__softmax_ce(const struct sl__plan *pl, const struct sl_spec *s, bool bg, int64_t i,
                    double *num, double *den);
void sl__softmax_focal(const struct sl__plan *pl, const struct sl_spec *s, bool bg, int64_t i,
                       double *num, double *den);
double sl__score_dice(const struct sl_spec *s, const struct sl__soft *u, bool *use_log);
double sl__score_jaccard(const struct sl_spec *s, const struct sl__soft *u, bool *use_log);
double sl__score_tversky(const struct sl_spec *s, const struct sl__soft *u, bool *use_log);
double sl__score_mcc(const struct sl_spec *s, const struct sl__soft *u, bool *use_log);
double sl__finish_tversky(const struct sl_spec *s, double v);
int sl__value_gdice(const struct sl__plan *pl, const struct sl_spec *s, bool bg, double *per_image,
                    bool *has_per_image, double *value);
/* Region losses with reduction "none": each counted class's loss (times its class weight) per
 * image into per_image_class[N x C] (NULL when the loss pools the batch) and its mean over
 * images (or pooled value) into per_class[C]; classes left out are NaN. */
void sl__region_per_class(const struct sl__plan *pl, const struct sl_spec *s, bool bg,
                          double *per_class, double *per_image_class);
/* Rules of the region losses (reduction against focal Tversky's gamma; struct sl__kernel.check). */
int sl__check_region(const struct sl_spec *s, const struct sl__geom *g, const char *where,
                     char *msg, size_t msglen);

/* reduce.c: confusion-matrix metric formulas (struct sl__kernel.from_counts) */
double sl__m_dice(const struct sl_spec *s, double tp, double fp, double fn, double tn, double dg);
double sl__m_iou(const struct sl_spec *s, double tp, double fp, double fn, double tn, double dg);
double sl__m_precision(const struct sl_spec *s, double tp, double fp, double fn, double tn,
                       double dg);
double sl__m_recall(const struct sl_spec *s, double tp, double fp, double fn, double tn, double dg);
double sl__m_specificity(const struct sl_spec *s, double tp, double fp, double fn, double tn,
                         double dg);
double sl__m_accuracy(const struct sl_spec *s, double tp, double fp, double fn, double tn,
                      double dg);
double sl__m_balanced_accuracy(const struct sl_spec *s, double tp, double fp, double fn, double tn,
                               double dg);
double sl__m_npv(const struct sl_spec *s, double tp, double fp, double fn, double tn, double dg);
double sl__m_mcc(const struct sl_spec *s, double tp, double fp, double fn, double tn, double dg);
double sl__m_fbeta(const struct sl_spec *s, double tp, double fp, double fn, double tn, double dg);
/* MONAI compute_confusion_matrix_metric: a zero denominator is NaN, dg is not used */
double sl__m_miss_rate(const struct sl_spec *s, double tp, double fp, double fn, double tn,
                       double dg);
double sl__m_fall_out(const struct sl_spec *s, double tp, double fp, double fn, double tn,
                      double dg);
double sl__m_fdr(const struct sl_spec *s, double tp, double fp, double fn, double tn, double dg);
double sl__m_for(const struct sl_spec *s, double tp, double fp, double fn, double tn, double dg);
double sl__m_pt(const struct sl_spec *s, double tp, double fp, double fn, double tn, double dg);
double sl__m_ts(const struct sl_spec *s, double tp, double fp, double fn, double tn, double dg);
double sl__m_f1(const struct sl_spec *s, double tp, double fp, double fn, double tn, double dg);
double sl__m_fm(const struct sl_spec *s, double tp, double fp, double fn, double tn, double dg);
double sl__m_bm(const struct sl_spec *s, double tp, double fp, double fn, double tn, double dg);
double sl__m_mk(const struct sl_spec *s, double tp, double fp, double fn, double tn, double dg);

/* surface.c: surface-distance metrics */
double sl__surf_hausdorff(const struct sl_spec *s, const struct sl__surf_in *in);
double sl__surf_assd(const struct sl_spec *s, const struct sl__surf_in *in);
double sl__surf_nsd(const struct sl_spec *s, const struct sl__surf_in *in);
double sl__surf_dice(const struct sl_spec *s, const struct sl__surf_in *in);
double sl__surf_overlap(const struct sl_spec *s, const struct sl__surf_in *in);
/* The length (2-D, nd = 2: 16 codes) or area (3-D: 256 codes) of the marching-squares/cubes
 * surface of every 2^nd neighbourhood code at spacing (NULL: all 1), into table. */
void sl__surfel_table(int nd, const double *spacing, double *table);

/* planes.c / softmax.c: cross entropy with label smoothing (label_smoothing, smooth_factor;
 * 0 of both: exactly sl__sum_ce and sl__softmax_ce) */
double sl__sum_ce_smooth(const struct sl__plan *pl, const struct sl_spec *s, int64_t i, int64_t c,
                         const double *beta_auto);
void sl__softmax_ce_smooth(const struct sl__plan *pl, const struct sl_spec *s, bool bg, int64_t i,
                           double *num, double *den);
/* The label smoothing of cross entropy spec s: binary/multilabel: y becomes a + (1 - 2a) y,
 * returns a; multiclass (mc): the one-hot row becomes (1 - e) one_hot + e / C, returns e. */
double sl__ce_smoothing(const struct sl_spec *s, bool mc);

/* score.c: per-loss rules */
int sl__check_ce(const struct sl_spec *s, const struct sl__geom *g, const char *where, char *msg,
                 size_t msglen);
int sl__check_dwce(const struct sl_spec *s, const struct sl__geom *g, const char *where, char *msg,
                   size_t msglen);
/* Reasons of the losses that need targets of exactly 0 or 1 (struct sl__kernel.hard_target). */
const char *sl__hard_focal(const struct sl_spec *s);
const char *sl__hard_lovasz(const struct sl_spec *s);
const char *sl__hard_dwce(const struct sl_spec *s);

/* Index of the focal accumulator of gamma in the plan (it exists after planning); nobg: a
 * multiclass focal without class 0 (false in binary and multilabel mode, where channels are
 * left out in the reduction). */
int sl__focal_slot(const struct sl__plan *pl, double gamma, bool nobg);

/* Binary and multilabel: the fused pass over pixels [start, start + len) of plane (image i,
 * channel c), added to *a. */
void sl__pass_range(const struct sl__plan *pl, int64_t i, int64_t c, int64_t start, int64_t len,
                    struct sl__acc *a);
/* Hinge errors of the counted pixels of plane (i, c) that are > 0, appended at v; returns how
 * many, and adds the plane's counted positives to *gts. (Errors <= 0 sort last and add nothing
 * to the Lovász loss, so they are left out.) */
int64_t sl__hinge_errors(const struct sl__plan *pl, int64_t i, int64_t c, struct sl__ey *v,
                         int64_t *gts);

/* Multiclass: the fused softmax pass over image i (all C planes, the confusion matrix, and the
 * probabilities for Lovász-Softmax when asked). Returns 0 or SL_ENOMEM. */
int sl__pass_softmax(const struct sl__plan *pl, int64_t i);
/* Whether the multiclass pass can run the fused float32 kernel (softmax_fast.c): float32,
 * float16 or bfloat16 logits or probabilities (uint8 probabilities too), weights of those dtypes
 * or none, any targets (uint8 read in place; others as bytes, or uint16 when C > 255), no
 * Lovász-Softmax (which keeps the double pass's probabilities), no focal without class 0. */
bool sl__mc_fast_ok(const struct sl_request *req, const struct sl__geom *g,
                    const struct sl__plan *pl);
/* sl__pass_softmax on the fused kernel (plan mc_fast): the kernel over the image, or with
 * parts (mc_nparts > 1) the sums of its parts added in order. Returns 0 or SL_ENOMEM. */
int sl__pass_softmax_fast(const struct sl__plan *pl, int64_t i);
/* Parts per image of the fused multiclass kernel: 1 unless plan mc_fast and the image has more
 * than SL_MC_PART pixels. */
int64_t sl__mc_nparts(const struct sl__plan *pl);
/* Pool task t (image t / mc_nparts, part t % mc_nparts): the kernel's sums of that part into
 * pl->mc_parts[t] (zeroed by the caller). */
void sl__mc_part_task(void *arg, int64_t t);
/* The Lovász-Softmax errors > 0 of class c over the counted pixels of image i, as the float
 * bits of p_c (from pl->probs, in [0, 1]; -0 as +0): the error is 1 - p_c on the pixels of class
 * c, appended at v[*nfg] (*nfg grows), p_c on the others, appended downwards from v[cap - 1 -
 * *nbg] (*nbg grows); adds the counted pixels of class c to *gts. v holds cap >= *nfg + *nbg +
 * the image's pixels. */
void sl__softmax_errors(const struct sl__plan *pl, int64_t i, int64_t c, uint32_t *v, int64_t cap,
                        int64_t *nfg, int64_t *nbg, int64_t *gts);
/* The Lovász-Softmax of every class c with want[c] (want NULL: every class), the images
 * [i0, i1) pooled, into out[c] (the caller's C values; the others untouched): each class's
 * sorts on one thread, classes side by side on pool (NULL: the calling thread) while their
 * scratch stays under SL_LOVASZ_PARALLEL_BYTES, so the values do not depend on the pool.
 * Returns 0 or SL_ENOMEM. */
int sl__lovasz_softmax_classes(const struct sl__plan *pl, struct sl_pool *pool, int64_t i0,
                               int64_t i1, const bool *want, double *out);

/* Hard prediction and target masks of plane (i, c): 1 = foreground; ignored pixels are 0 in
 * both. arg: the image's argmax (multiclass), else NULL. */
void sl__plane_masks(const struct sl__plan *pl, int64_t i, int64_t c, const int *arg, uint8_t *pred,
                     uint8_t *tgt);
/* Multiclass: the argmax class of every pixel of image i (first maximum on ties). */
void sl__argmax_image(const struct sl__plan *pl, int64_t i, int *arg);
/* sum over counted pixels of w * map * CE for binary plane (i, c). */
double sl__mapped_ce_sum(const struct sl__plan *pl, int64_t i, int64_t c, const float *map);

/* Surface-distance metrics (hausdorff, assd, nsd, surface_dice, surface_overlap) of one
 * plane's masks, of class/channel cls, into vals[k] for specs[k]; NaN = undefined, +inf for
 * the MONAI and DeepMind empty rules; empty is the request's. Returns 0 or SL_ENOMEM. */
int sl__surface_metrics(const uint8_t *pred, const uint8_t *tgt, int nd, const int64_t *shape,
                        const double *spacing, int64_t cls, enum sl_empty empty,
                        const struct sl_spec *const *specs, int n, double *vals);

/* Index of spec s in the plan's distance-weighted CE list (it exists after planning). */
int sl__dwce_slot(const struct sl__plan *pl, const struct sl_spec *s);

/* The Lovász loss of class/channel c over the whole batch (every image's errors in one sort)
 * into *out. Returns 0 or SL_ENOMEM. */
int sl__lovasz_batch_class(const struct sl__plan *pl, int64_t c, double *out);

/* Fills every loss and metric of res from the planes. Returns 0 or a negative code. */
int sl__reduce(const struct sl__plan *pl, struct sl_result *res, char *msg, size_t msglen);

/* Whether sl__run's fused kernel checks the prediction's finiteness and the target values as
 * it reads them, so that validation may leave them out (sl__run answers SL_EAGAIN_CHECK when it
 * meets one validation would refuse, before any other work reads the data). */
bool sl__run_validates(const struct sl_request *req, const struct sl__geom *g);

/* Plans, runs the passes over the pool and reduces (score.c validated everything). */
int sl__run(const struct sl_request *req, const struct sl__geom *g, struct sl_pool *pool,
            struct sl_result *res, char *msg, size_t msglen);

/* Lovász extension of the Jaccard loss at errors v (n pairs, sorted in place by decreasing
 * error) of a set of pixels with gts positives: sum of relu(e) times the gradient. v may leave
 * out errors <= 0 (gts still counts their positives). Berman, Triki & Blaschko 2018, reference
 * code lovasz_hinge_flat and lovasz_softmax_flat (one class). */
double sl__lovasz_flat(struct sl__ey *v, int64_t n, int64_t gts);

/* Sorts v[0..n) by decreasing e (exactly, as doubles; equal errors in no promised order) with
 * an LSD radix sort on float keys; tmp holds n entries of scratch (NULL: qsort is used). */
void sl__sort_desc(struct sl__ey *v, struct sl__ey *tmp, int64_t n);
/* A key whose unsigned order is the decreasing order of f (-0 after +0, NaN aside). */
static inline uint32_t sl__key_desc(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    /* ascending: negative floats have every bit flipped, non-negative ones the sign bit set;
     * descending is its complement */
    const uint32_t asc = b ^ ((b >> 31) ? 0xffffffffu : 0x80000000u);
    return ~asc;
}
/* Sorts v[0..n) by increasing high 32 bits, stably, with an LSD radix sort (tmp: n items of
 * scratch; NULL: qsort, not stable), on the pool for many items (pool may be NULL). */
void sl__radix_u64(struct sl_pool *pool, uint64_t *v, uint64_t *tmp, int64_t n);

/* The Lovász loss of n errors > 0 packed as 8-byte items (a set of pixels with gts positives),
 * sorted in place. Hinge items (softmax false): high half sl__key_desc(k) of the float
 * k = -x for a positive, x for a negative, whose error 1 + k is exact; low half the label.
 * Softmax items: high half sl__key_desc((float)e), low half the bits of the float p_c with the
 * label in the top bit (e = 1 - p_c for the class, p_c else). The sort runs on pool (may be
 * NULL). */
double sl__lovasz_items(struct sl_pool *pool, uint64_t *v, int64_t n, int64_t gts, bool softmax);

/* Sorts v[0..n) increasing with an LSD radix sort (tmp: n entries of scratch; NULL: qsort). */
void sl__radix_u32(uint32_t *v, uint32_t *tmp, int64_t n);
/* The Lovász-Softmax of one class from its errors > 0 as float bits of p_c (sl__softmax_errors):
 * fg[nfg] of the class's pixels (error 1 - p_c), bg[nbg] of the others (error p_c), gts the
 * class's counted pixels; both lists are sorted in place (tmp: max(nfg, nbg) entries) and
 * merged by decreasing error into the sum of sl__lovasz_flat. Equals sl__lovasz_flat on the
 * same errors up to the order of equal errors of both labels (rounding only); with gts 0 it is
 * the largest error, without a sort. */
double sl__lovasz_softmax_lists(uint32_t *fg, int64_t nfg, uint32_t *bg, int64_t nbg, int64_t gts,
                                uint32_t *tmp);

/* Whether plane (i, c) errors can be hinge items: float32 logits, uint8 or bool targets. */
bool sl__hinge_items_ok(const struct sl__plan *pl);
/* Hinge items (sl__lovasz_items) of the errors > 0 of plane (i, c), appended at v; returns how
 * many and adds the counted positives to *gts. Needs sl__hinge_items_ok. */
int64_t sl__hinge_items(const struct sl__plan *pl, int64_t i, int64_t c, uint64_t *v, int64_t *gts);

/* ---- float32 SIMD kernels (simd.c) ---- */

/* Instruction sets a kernel can be run with: baseline x86-64 (or the host's plain C), AVX2,
 * AVX-512 (F and VL). Every variant returns bit-identical results. */
enum { SL_SIMD_BASE = 0, SL_SIMD_AVX2 = 1, SL_SIMD_AVX512 = 2 };
/* The best instruction set this CPU (and its OS) runs. */
int sl__simd_best(void);

/* What a fused pass over float32 logits computes, beyond the counts (counted pixels, positives,
 * hard-predicted positives and true positives), which it always computes. */
enum {
    SL_FZ_P = 1,         /* p = sigmoid(x): sum p, sum p y, sum p^2 */
    SL_FZ_LOG = 2,       /* the cross-entropy halves (implies SL_FZ_P) */
    SL_FZ_FOCAL_SQ = 4,  /* focal halves with gamma 2 (implies SL_FZ_LOG) */
    SL_FZ_FOCAL_EXP = 8, /* focal halves with any gamma (implies SL_FZ_LOG) */
    SL_FZ_W = 16,        /* weights multiply the cross-entropy and focal terms */
};

/* One fused pass over n pixels of a plane: float32 logits x, target bytes t (0, 1, or the
 * ignored value ign; ign = -1 when nothing is ignored), float32 weights w (SL_FZ_W) or NULL.
 * The hard prediction is x >= thr. */
struct sl__fused_in {
    const float *x;
    const uint8_t *t;
    const float *w;
    int64_t n;
    int ign;
    float thr;
    float gamma;
    int what;
};

/* Sums over the counted pixels, added to by sl__fused_logits: count, sy = sum y, sp = sum p,
 * spy = sum p y, sp2 = sum p^2, ce_pos = sum w y (-log p), ce_neg = sum w (1-y) (-log(1-p)),
 * f_pos/f_neg the same times (1-p)^gamma / p^gamma, tp = sum y h, sh = sum h. bad: a target
 * byte other than 0, 1, ign, or a logit NaN or infinite, was seen (the values are then junk). */
struct sl__fused_out {
    double count, sy, sp, spy, sp2, ce_pos, ce_neg, f_pos, f_neg, tp, sh;
    bool bad;
};

/* Runs the fused pass with the best instruction set (isa < 0) or the one given (the baseline
 * when the CPU lacks it). Per-pixel
 * values are float32 (exp and log1p below); per-lane float32 sums over at most SL_FOLD / 8
 * pixels are folded into double, so a sum's relative error is at most (SL_FOLD / 8 - 1) 2^-24
 * plus the per-term error; pixels whose values would leave the normal floats (|x| > 40,
 * extreme weights) are computed in double instead; results are bit-identical for every isa. */
void sl__fused_logits(int isa, const struct sl__fused_in *in, struct sl__fused_out *out);
/* out[k] = e^in[k] for in[k] <= 0 (0 below -87.3365) with the kernels' float32 exp; n is a
 * multiple of 16. isa < 0: the best; an isa this CPU lacks: the baseline. For tests and error
 * measurements. */
void sl__exp_neg_f32(int isa, const float *in, float *out, int64_t n);
/* out[k] = e^in[k] for in[k] in [-87, 0] (e^-87 below) with the multiclass kernel's float32 exp
 * (simd_mc.h); n % 16 == 0, isa as sl__exp_neg_f32. */
void sl__mc_exp_f32(int isa, const float *in, float *out, int64_t n);
/* out[k] = log(1 + in[k]) for in[k] in [0, 1] with the kernels' float32 log1p; n % 16 == 0. */
void sl__log1p01_f32(int isa, const float *in, float *out, int64_t n);

/* Multiclass: the fused softmax kernel over float32 logits (simd_mc.h). Pixels are taken in
 * blocks of SL_MC_BLOCK; a call's inputs are readable up to its n rounded up to a block. */
#define SL_MC_BLOCK 128
/* Floats of a call's scratch (sl__mc_state.e) for C classes: three rows per class. */
#define SL_MC_SCRATCH(C) (3 * (int64_t)(C)*SL_MC_BLOCK)
enum {
    SL_MC_SOFT = 1,  /* sum p_c of every class */
    SL_MC_CE = 2,    /* sum w (-log p_y) per target class y */
    SL_MC_LS = 4,    /* sum w (-log p_c) of every class (label smoothing) */
    SL_MC_FOCAL = 8, /* sum w (1 - p_y)^gamma (-log p_y) per target class, per gamma */
    SL_MC_W = 16,    /* pixel weights multiply the CE, label-smoothing and focal terms */
    SL_MC_CM = 32,   /* per class the argmax's true positives and predicted pixels */
    SL_MC_SP2 = 64,  /* sum p_c^2 of every class (with SL_MC_SOFT; a squared Dice) */
};
/* The double lanes of a class: sum p, sum p^2, sum p y, CE, label smoothing, focal per gamma. */
enum { SL_MCQ_SP, SL_MCQ_SP2, SL_MCQ_SPY, SL_MCQ_CE, SL_MCQ_LP, SL_MCQ_FOCAL };

/* One call's pixels: logit of class c at pixel k x[c * xs + k], target bytes t (a class, or ign
 * for an ignored pixel; ign -1: none) or, when not NULL, uint16 targets t16 instead (C > 255),
 * pixel weights w (SL_MC_W) or NULL. far_d: a pixel with
 * a logit more than far_d below its max is computed in double (sl__mc_far_d). readable: the
 * pixels of each row of x that exist (0: n), for the kernels' prefetches past the call's end. */
struct sl__mc_in {
    const float *x;
    int64_t xs;
    int64_t readable;
    const uint8_t *t;
    const uint16_t *t16;
    const float *w;
    int64_t n;
    int classes;
    int ign;
    int what;
    int nfocal;
    float gamma[SL_MAX_FOCAL];
    float far_d;
};

/* Sums that calls add to, in canonical lanes (pixel k of a call in lane k % 16; a call starts
 * on a block boundary of the image for the lanes to mean the same): lanes classes x
 * (SL_MCQ_FOCAL + nfocal) x 16 doubles, counts classes x 3 x 16 (pixels of the class in the
 * target, argmax true positives, argmax pixels), matrix classes x classes (target-major) or
 * NULL, count the counted pixels, bad (below); e is scratch of SL_MC_SCRATCH(classes) floats.
 * The caller allocates (zeroed) and frees all. */
struct sl__mc_state {
    double *lanes;
    int32_t *counts;
    int64_t *matrix;
    int64_t count;
    float *e;
    bool bad; /* a logit NaN or infinite, or a target byte neither a class nor ign (the sums
                 are then junk) */
};

/* The far threshold for C classes and the largest focal gamma other than 2 (0: none). */
float sl__mc_far_d(int classes, double gamma_max);
/* The multiclass kernel (best isa when isa < 0; the baseline when the CPU lacks it); every isa
 * adds the same bits. Accuracy: simd.c. */
void sl__mc_logits(int isa, const struct sl__mc_in *in, struct sl__mc_state *st);
/* The same over float32 probabilities (x holds p_c; far_d unused): the soft sums and argmax of
 * p, -log of p clipped to [SL_EPS, 1 - SL_EPS], focal (1 - p_y)^gamma, as softmax.c's double
 * pass; st->bad also when a p is outside [0, 1] or NaN, ignored pixels included. Accuracy:
 * simd.c. */
void sl__mc_probs(int isa, const struct sl__mc_in *in, struct sl__mc_state *st);
/* out[k] = -log in[k] for in[k] a normal float in (0, 1], the probabilities kernel's float32
 * log; n % 16 == 0. For tests and error measurements. */
void sl__nlog01_f32(int isa, const float *in, float *out, int64_t n);

/* ---- distances (edt.c, ccl.c, weightmap.c) ---- */

/* Squared exact Euclidean distance transform (Felzenszwalb & Huttenlocher 2012, separable,
 * linear in the number of pixels) of a grid of nd = 2 or 3 dims: out[i] is the squared distance,
 * in spacing units (spacing NULL: all 1), from pixel i to the nearest pixel whose seed is
 * nonzero; +INFINITY everywhere when there is no seed. Returns 0 or SL_ENOMEM. */
int sl__edt_sq(const uint8_t *seed, int nd, const int64_t *shape, const double *spacing,
               double *out);

/* Chamfer distance transform (as scipy's distance_transform_cdt) with metric SL_DIST_CHESSBOARD
 * (max of the axis steps) or SL_DIST_TAXICAB (their sum), in pixels, of a grid of nd = 2 or 3
 * dims: out[i] is the distance from pixel i to the nearest pixel whose seed is nonzero;
 * +INFINITY everywhere when there is no seed. Returns 0 or SL_EINVAL. */
int sl__cdt(const uint8_t *seed, int nd, const int64_t *shape, int metric, double *out);

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

/* The clipped probability [eps, 1 - eps] (Keras). */
static inline double sl__clip(double p)
{
    return p < SL_EPS ? SL_EPS : (p > 1 - SL_EPS ? 1 - SL_EPS : p);
}

#endif /* SL_INTERNAL_H */
