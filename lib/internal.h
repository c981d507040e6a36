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
enum { SL_P_REDUCTION = 0 };
enum { SL_P_WCE_BETA = 0, SL_P_WCE_REDUCTION };
enum { SL_P_BCE_BETA = 0, SL_P_BCE_REDUCTION };
enum { SL_P_FOCAL_ALPHA = 0, SL_P_FOCAL_GAMMA, SL_P_FOCAL_REDUCTION };
enum { SL_P_DICE_SMOOTH = 0, SL_P_DICE_SQUARED, SL_P_DICE_LOG, SL_P_DICE_PER_IMAGE };
enum { SL_P_JAC_SMOOTH = 0, SL_P_JAC_LOG, SL_P_JAC_PER_IMAGE };
enum {
    SL_P_TV_BETA = 0,
    SL_P_TV_FP,
    SL_P_TV_FN,
    SL_P_TV_GAMMA,
    SL_P_TV_SMOOTH,
    SL_P_TV_LOG,
    SL_P_TV_PER_IMAGE
};
enum { SL_P_LH_PER_IMAGE = 0 };
enum { SL_P_COMBO_TERMS = 0 };
enum { SL_P_FBETA_BETA = 0 };

/* Choices of enum parameters. */
enum { SL_RED_MEAN = 0, SL_RED_SUM };
enum { SL_BETA_AUTO = 0, SL_BETA_AUTO_PER_IMAGE };

/* Binary mode: an input geometry after mode inference. */
struct sl__geom {
    int64_t images;
    int64_t pixels; /* per image */
    int nspatial;
    int64_t spatial[3];
};

/* Scores a validated binary request (geometry g) into res (allocated by the caller). */
int sl__score_binary(const struct sl_request *req, const struct sl__geom *g, struct sl_pool *pool,
                     struct sl_result *res, char *msg, size_t msglen);

/* A hinge error 1 - logit * sign(y) with its label. */
struct sl__ey {
    double e;
    uint8_t y;
};

/* Lovász hinge of n (error, label) pairs; sorts v in place by decreasing error.
 * Berman, Triki & Blaschko 2018, reference code lovasz_hinge_flat. */
double sl__lovasz_hinge_flat(struct sl__ey *v, int64_t n);

/* Metric value from confusion counts with the `empty` convention (NaN = undefined). */
double sl__metric_value(const struct sl_spec *spec, const struct sl_confusion *c, enum sl_empty e);

#endif /* SL_INTERNAL_H */
