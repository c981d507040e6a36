/* table.c - the loss and metric tables: the extension point of the library.
 *
 * A row is everything the rest of the service knows about a loss or metric: its name, its
 * parameters (type, default, range, choices, which go together), a summary and the peer
 * convention it follows, the modes it accepts, flags (needs distances, is the confusion counts,
 * is a sum of terms) and its kernel, the functions that compute it (struct sl__kernel,
 * lib/internal.h). As jq's builtin table pairs a name with a function, a loss is one row plus
 * its kernel functions: the parser (proto/spec.c) validates against the row, /v1/catalog lists
 * it, score.c checks its modes and rule, run.c plans the fused pass with its plan, reduce.c and
 * surface.c compute it with its functions, the response writer and the CLI read its flags and
 * its batch recombination (sl_loss_combine). tests/unit/test_openapi.c holds proto/openapi.json
 * to these rows; README "Adding a loss or a metric" lists the steps.
 *
 * Parameter indices (SL_P_* in lib/internal.h) are placed here with designated initializers and
 * each row is asserted to have as many parameters as its index enum names. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define NUM(v)                                                                                     \
    {                                                                                              \
        .kind = SL_V_NUMBER, .num = (v)                                                            \
    }
#define BOOLV(v)                                                                                   \
    {                                                                                              \
        .kind = SL_V_BOOL, .b = (v)                                                                \
    }
#define CHOICE(i)                                                                                  \
    {                                                                                              \
        .kind = SL_V_ENUM, .choice = (i)                                                           \
    }
#define NULLV                                                                                      \
    {                                                                                              \
        .kind = SL_V_NULL                                                                          \
    }
#define ABSENT                                                                                     \
    {                                                                                              \
        .kind = SL_V_ABSENT                                                                        \
    }
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const char *const reduction_choices[] = {"mean", "sum", NULL};
static const char *const auto_choices[] = {"auto", "auto_per_image", NULL};

#define REDUCTION_PARAM                                                                            \
    {                                                                                              \
        "reduction", SL_PT_ENUM, CHOICE(SL_RED_MEAN), 0, 0, false, reduction_choices,              \
            "mean over counted pixels, or their sum"                                               \
    }
#define SMOOTH_PARAM                                                                               \
    {                                                                                              \
        "smooth", SL_PT_NUMBER, NUM(0), 0, INFINITY, false, NULL,                                  \
            "added to numerator and denominator"                                                   \
    }
#define LOG_PARAM                                                                                  \
    {                                                                                              \
        "log", SL_PT_BOOL, BOOLV(false), 0, 0, false, NULL,                                        \
            "-log(max(score, 1e-7)) instead of 1 - score"                                          \
    }
#define PER_IMAGE_PARAM(doc)                                                                       \
    {                                                                                              \
        "per_image", SL_PT_BOOL, BOOLV(true), 0, 0, false, NULL, doc                               \
    }

/* Per loss: absent = the request's include_background (or its combo's); MONAI's flag of the
 * same name, which each MONAI loss takes. */
#define INCLUDE_BG_PARAM(doc)                                                                      \
    {                                                                                              \
        "include_background", SL_PT_BOOL, ABSENT, 0, 0, false, NULL, doc                           \
    }
#define INCLUDE_BG_CHANNELS                                                                        \
    "false: multilabel leaves channel 0 out (mean over channels 1..C-1); default: the request's "  \
    "include_background"
#define INCLUDE_BG_CLASSES                                                                         \
    "false: multiclass/multilabel leave class/channel 0 out of the mean over classes; default: "   \
    "the request's include_background"

#define CLASS_WEIGHTS_PARAM(doc)                                                                   \
    {                                                                                              \
        "class_weights", SL_PT_LIST, NULLV, 0, INFINITY, false, NULL, doc                          \
    }

static const struct sl_param_def ce_params[] = {
    [SL_P_CE_REDUCTION] = REDUCTION_PARAM,
    [SL_P_CE_CLASS_WEIGHTS] = CLASS_WEIGHTS_PARAM(
        "multiclass: weight of each class, PyTorch cross_entropy weight= (the mean "
        "divides by the summed weights); multilabel: weight of each channel"),
    [SL_P_CE_INCLUDE_BG] = INCLUDE_BG_PARAM(
        "false: multilabel leaves channel 0 out (mean over channels 1..C-1); false "
        "is a 422 in multiclass, whose softmax CE keeps every class (MONAI "
        "DiceCELoss); default: the request's include_background, which multiclass "
        "CE does not follow"),
    [SL_P_CE_LABEL_SMOOTHING] =
        {"label_smoothing", SL_PT_NUMBER, NUM(0), 0, 1, false, NULL,
         "multiclass: the target row becomes (1 - e) one_hot + e / C (PyTorch "
         "CrossEntropyLoss label_smoothing); binary/multilabel: y becomes (1 - e) y + e / 2 "
         "(Keras BinaryCrossentropy label_smoothing, PyTorch's rule with 2 classes); 0: none",
         NULL, "smooth_factor"},
    [SL_P_CE_SMOOTH_FACTOR] =
        {"smooth_factor", SL_PT_NUMBER, NUM(0), 0, 1, false, NULL,
         "binary/multilabel: y becomes (1 - y) f + y (1 - f) (smp SoftBCEWithLogitsLoss "
         "smooth_factor: 0.1 makes [1, 0] [0.9, 0.1]); multiclass: as label_smoothing (smp "
         "SoftCrossEntropyLoss, label_smoothed_nll_loss); 0: none; not with label_smoothing"},
};
_Static_assert(COUNT(ce_params) == SL_P_CE_N, "ce_params: one row per index");
static const struct sl_param_def wce_params[] = {
    [SL_P_WCE_BETA] = {"beta", SL_PT_NUMBER, NUM(1), 0, INFINITY, false, NULL,
                       "weight of the positive term (pos_weight)"},
    [SL_P_WCE_REDUCTION] = REDUCTION_PARAM,
    [SL_P_WCE_INCLUDE_BG] = INCLUDE_BG_PARAM(INCLUDE_BG_CHANNELS),
};
_Static_assert(COUNT(wce_params) == SL_P_WCE_N, "wce_params: one row per index");
static const struct sl_param_def bce_params[] = {
    [SL_P_BCE_BETA] =
        {"beta", SL_PT_NUMBER_ENUM, CHOICE(SL_BETA_AUTO), 0, 1, false, auto_choices,
         "weight of the positive term, 1-beta of the negative; auto = mean(1-y) over the batch, "
         "auto_per_image = over each image"},
    [SL_P_BCE_REDUCTION] = REDUCTION_PARAM,
    [SL_P_BCE_INCLUDE_BG] = INCLUDE_BG_PARAM(INCLUDE_BG_CHANNELS),
};
_Static_assert(COUNT(bce_params) == SL_P_BCE_N, "bce_params: one row per index");
static const struct sl_param_def focal_params[] = {
    [SL_P_FOCAL_ALPHA] = {"alpha", SL_PT_NUMBER_NULL_LIST, NUM(0.25), 0, 1, false, NULL,
                          "binary: weight of the positive term, 1-alpha of the negative; "
                          "multiclass: weight of every "
                          "class, or a list of one per class; null = no weighting"},
    [SL_P_FOCAL_GAMMA] = {"gamma", SL_PT_NUMBER, NUM(2), 0, INFINITY, false, NULL,
                          "focusing exponent"},
    [SL_P_FOCAL_REDUCTION] = REDUCTION_PARAM,
    [SL_P_FOCAL_INCLUDE_BG] = INCLUDE_BG_PARAM(
        "false: multilabel leaves channel 0 out (mean over channels 1..C-1); "
        "multiclass takes the softmax over classes 1..C-1, class-0 pixels adding 0 "
        "(MONAI FocalLoss); default: the request's include_background"),
};
_Static_assert(COUNT(focal_params) == SL_P_FOCAL_N, "focal_params: one row per index");
#define REGION_CW_DOC                                                                              \
    "multiclass/multilabel: each class's loss is multiplied by its weight before the mean over "   \
    "classes (MONAI weight=)"

static const struct sl_param_def dice_params[] = {
    [SL_P_DICE_SMOOTH] = SMOOTH_PARAM,
    [SL_P_DICE_SQUARED] = {"squared", SL_PT_BOOL, BOOLV(false), 0, 0, false, NULL,
                           "V-Net denominator sum(p^2) + sum(y^2)"},
    [SL_P_DICE_LOG] = LOG_PARAM,
    [SL_P_DICE_PER_IMAGE] =
        PER_IMAGE_PARAM("true: mean of per-image losses; false: sums pooled over the batch first"),
    [SL_P_DICE_CLASS_WEIGHTS] = CLASS_WEIGHTS_PARAM(REGION_CW_DOC),
    [SL_P_DICE_INCLUDE_BG] = INCLUDE_BG_PARAM(INCLUDE_BG_CLASSES),
};
_Static_assert(COUNT(dice_params) == SL_P_DICE_N, "dice_params: one row per index");
static const struct sl_param_def jaccard_params[] = {
    [SL_P_JAC_SMOOTH] = SMOOTH_PARAM,
    [SL_P_JAC_LOG] = LOG_PARAM,
    [SL_P_JAC_PER_IMAGE] =
        PER_IMAGE_PARAM("true: mean of per-image losses; false: sums pooled over the batch first"),
    [SL_P_JAC_CLASS_WEIGHTS] = CLASS_WEIGHTS_PARAM(REGION_CW_DOC),
    [SL_P_JAC_INCLUDE_BG] = INCLUDE_BG_PARAM(INCLUDE_BG_CLASSES),
};
_Static_assert(COUNT(jaccard_params) == SL_P_JAC_N, "jaccard_params: one row per index");
static const struct sl_param_def tversky_params[] = {
    [SL_P_TV_BETA] =
        {"beta", SL_PT_NUMBER, ABSENT, 0, 1, false, NULL,
         "one number for both: fp weight beta, fn weight 1-beta (0.5 when no weights are given)",
         NULL, "fp_weight"},
    [SL_P_TV_FP] = {"fp_weight", SL_PT_NUMBER, ABSENT, 0, INFINITY, false, NULL,
                    "weight of false positives (MONAI alpha); give with fn_weight", "fn_weight",
                    NULL},
    [SL_P_TV_FN] = {"fn_weight", SL_PT_NUMBER, ABSENT, 0, INFINITY, false, NULL,
                    "weight of false negatives (MONAI beta); give with fp_weight", "fp_weight",
                    NULL},
    [SL_P_TV_GAMMA] = {"gamma", SL_PT_NUMBER, NUM(1), 0, INFINITY, true, NULL,
                       "focal Tversky exponent: loss^gamma"},
    [SL_P_TV_SMOOTH] = SMOOTH_PARAM,
    [SL_P_TV_LOG] = LOG_PARAM,
    [SL_P_TV_PER_IMAGE] =
        PER_IMAGE_PARAM("true: mean of per-image losses; false: sums pooled over the batch first"),
    [SL_P_TV_CLASS_WEIGHTS] = CLASS_WEIGHTS_PARAM(REGION_CW_DOC),
    [SL_P_TV_INCLUDE_BG] = INCLUDE_BG_PARAM(INCLUDE_BG_CLASSES),
};
_Static_assert(COUNT(tversky_params) == SL_P_TV_N, "tversky_params: one row per index");
static const struct sl_param_def lovasz_hinge_params[] = {
    [SL_P_LH_PER_IMAGE] =
        PER_IMAGE_PARAM("true: mean of per-image losses; false: one loss over the flattened batch"),
    [SL_P_LH_INCLUDE_BG] = INCLUDE_BG_PARAM(INCLUDE_BG_CHANNELS),
};
_Static_assert(COUNT(lovasz_hinge_params) == SL_P_LH_N, "lovasz_hinge_params: one row per index");
static const char *const lsm_classes_choices[] = {"present", "all", NULL};
static const struct sl_param_def lovasz_softmax_params[] = {
    [SL_P_LSM_CLASSES] =
        {"classes", SL_PT_ENUM, CHOICE(SL_LSM_PRESENT), 0, 0, false, lsm_classes_choices,
         "present: average over the classes present in the target; all: over every class"},
    [SL_P_LSM_PER_IMAGE] =
        {"per_image", SL_PT_BOOL, BOOLV(false), 0, 0, false, NULL,
         "true: mean of per-image losses; false: one loss over the flattened batch"},
    [SL_P_LSM_INCLUDE_BG] = INCLUDE_BG_PARAM(INCLUDE_BG_CLASSES),
};
_Static_assert(COUNT(lovasz_softmax_params) == SL_P_LSM_N,
               "lovasz_softmax_params: one row per index");
static const struct sl_param_def dwce_params[] = {
    [SL_P_DW_W0] = {"w0", SL_PT_NUMBER, NUM(10), 0, INFINITY, false, NULL, "border weight"},
    [SL_P_DW_SIGMA] = {"sigma", SL_PT_NUMBER, NUM(5), 0, INFINITY, true, NULL,
                       "border width, in spacing units"},
    [SL_P_DW_CLASS_WEIGHTS] = {"class_weights", SL_PT_LIST, NULLV, 0, INFINITY, false, NULL,
                               "[background, foreground] class weights w_c (default [1, 1])"},
    [SL_P_DW_NEIGHBORS] = {"neighbors", SL_PT_INTEGER, NUM(2), 1, 2, false, NULL,
                           "2: d1 + d2 as U-Net; 1: d1 only (the one-object variant)"},
    [SL_P_DW_CONNECTIVITY] =
        {"connectivity", SL_PT_INTEGER, NUM(0), 0, 26, false, NULL,
         "instances as connected components with 4 or 8 (2-D), 6 or 26 (3-D) neighbours; 0: 8/26"},
    [SL_P_DW_REDUCTION] = REDUCTION_PARAM,
};
_Static_assert(COUNT(dwce_params) == SL_P_DW_N, "dwce_params: one row per index");
static const struct sl_param_def combo_params[] = {
    [SL_P_COMBO_TERMS] =
        {"terms", SL_PT_TERMS, ABSENT, 1, SL_MAX_TERMS, false, NULL,
         "loss specs, each with an optional weight (default 1); the value is the weighted sum"},
    [SL_P_COMBO_INCLUDE_BG] =
        INCLUDE_BG_PARAM("the include_background of every term that does not give its own (MONAI "
                         "DiceCELoss and DiceFocalLoss pass theirs to both terms; multiclass "
                         "cross_entropy keeps every class); default: the request's"),
};
_Static_assert(COUNT(combo_params) == SL_P_COMBO_N, "combo_params: one row per index");

/* Modes of the losses that refuse some. */
#define NOT_MULTICLASS (SL_MODE_BIT(SL_MODE_BINARY) | SL_MODE_BIT(SL_MODE_MULTILABEL))
#define ONLY(m) SL_MODE_BIT(SL_MODE_##m)

/* Kernels shared by a family: the family's plan and value, each loss's own formula. */
#define PIXEL_KERNEL(plan_fn, sum, softmax, combine_fn, check_fn)                                  \
    &(const struct sl__kernel)                                                                     \
    {                                                                                              \
        .plan = (plan_fn), .value = sl__value_pixel, .plane_sum = (sum), .softmax_sum = (softmax), \
        .combine = (combine_fn), .check = (check_fn)                                               \
    }
#define REGION_KERNEL(score_fn, finish_fn)                                                         \
    &(const struct sl__kernel)                                                                     \
    {                                                                                              \
        .plan = sl__plan_soft, .value = sl__value_region, .score = (score_fn),                     \
        .finish = (finish_fn), .combine = combine_per_image                                        \
    }

static enum sl_combine combine_pixel(const struct sl_spec *s, const char **why);
static enum sl_combine combine_bce(const struct sl_spec *s, const char **why);
static enum sl_combine combine_per_image(const struct sl_spec *s, const char **why);
static enum sl_combine combine_terms(const struct sl_spec *s, const char **why);

static const struct sl_def loss_table[] = {
    {.name = "cross_entropy",
     .params = ce_params,
     .nparams = COUNT(ce_params),
     .summary = "-(y log p + (1-y) log(1-p)) per pixel",
     .convention = "PyTorch binary_cross_entropy_with_logits (stable form); from probabilities "
                   "Keras BinaryCrossentropy, p clipped to [1e-7, 1-1e-7]; soft targets as "
                   "given; label_smoothing as PyTorch CrossEntropyLoss (multiclass, "
                   "aten/src/ATen/native/LossNLL.cpp cross_entropy_loss_label_smoothing) and "
                   "Keras BinaryCrossentropy (binary, keras/src/losses/losses.py), smooth_factor "
                   "as smp SoftBCEWithLogitsLoss (losses/soft_bce.py) and SoftCrossEntropyLoss "
                   "(losses/soft_ce.py)",
     .modes = SL_MODES_ALL,
     .kernel = &(const struct sl__kernel){.plan = sl__plan_cross_entropy,
                                          .value = sl__value_pixel,
                                          .plane_sum = sl__sum_ce_smooth,
                                          .softmax_sum = sl__softmax_ce_smooth,
                                          .combine = combine_pixel,
                                          .check = sl__check_ce}},
    {.name = "weighted_cross_entropy",
     .params = wce_params,
     .nparams = COUNT(wce_params),
     .summary = "-(beta y log p + (1-y) log(1-p)) per pixel",
     .convention = "TensorFlow weighted_cross_entropy_with_logits, pos_weight = beta; soft "
                   "targets as given",
     .modes = NOT_MULTICLASS,
     .mode_hint = "use cross_entropy with class_weights",
     .kernel = PIXEL_KERNEL(sl__plan_ce, sl__sum_wce, NULL, combine_pixel, NULL)},
    {.name = "balanced_cross_entropy",
     .params = bce_params,
     .nparams = COUNT(bce_params),
     .summary = "-(beta y log p + (1-beta)(1-y) log(1-p)) per pixel",
     .convention = "HED (Xie & Tu 2015) class-balanced cross entropy; soft targets as given",
     .modes = NOT_MULTICLASS,
     .mode_hint = "use cross_entropy with class_weights",
     .kernel = PIXEL_KERNEL(sl__plan_ce, sl__sum_bce, NULL, combine_bce, NULL)},
    {.name = "focal",
     .params = focal_params,
     .nparams = COUNT(focal_params),
     .summary = "-(alpha (1-p)^gamma y log p + (1-alpha) p^gamma (1-y) log(1-p)) per pixel",
     .convention = "Lin et al. 2017; MONAI FocalLoss and smp focal_loss_with_logits; 0/1 "
                   "targets only (a soft target is a 422)",
     .modes = SL_MODES_ALL,
     .kernel = &(const struct sl__kernel){.plan = sl__plan_focal,
                                          .value = sl__value_pixel,
                                          .plane_sum = sl__sum_focal,
                                          .softmax_sum = sl__softmax_focal,
                                          .combine = combine_pixel,
                                          .hard_target = sl__hard_focal}},
    {.name = "dice",
     .params = dice_params,
     .nparams = COUNT(dice_params),
     .summary = "1 - (2 tp + smooth) / (sum p + sum y + smooth) per image",
     .convention = "MONAI DiceLoss (smooth_nr = smooth_dr = smooth); smp DiceLoss with per_image "
                   "false; soft targets as given (MONAI monai/losses/dice.py, smp "
                   "losses/_functional.py soft_dice_score; squared: 0/1 targets only)",
     .modes = SL_MODES_ALL,
     .kernel = REGION_KERNEL(sl__score_dice, NULL)},
    {.name = "jaccard",
     .params = jaccard_params,
     .nparams = COUNT(jaccard_params),
     .summary = "1 - (tp + smooth) / (tp + fp + fn + smooth) per image",
     .convention = "smp JaccardLoss; soft targets as given (smp losses/_functional.py "
                   "soft_jaccard_score)",
     .modes = SL_MODES_ALL,
     .kernel = REGION_KERNEL(sl__score_jaccard, NULL)},
    {.name = "tversky",
     .params = tversky_params,
     .nparams = COUNT(tversky_params),
     .summary = "(1 - (tp + smooth) / (tp + fp_weight fp + fn_weight fn + smooth))^gamma per image",
     .convention =
         "Salehi et al. 2017; MONAI TverskyLoss (alpha = fp weight); focal Tversky as smp; "
         "soft targets as given (MONAI monai/losses/tversky.py, smp losses/_functional.py "
         "soft_tversky_score)",
     .modes = SL_MODES_ALL,
     .kernel = REGION_KERNEL(sl__score_tversky, sl__finish_tversky)},
    {.name = "lovasz_hinge",
     .params = lovasz_hinge_params,
     .nparams = COUNT(lovasz_hinge_params),
     .summary = "Lovász extension of the Jaccard loss on hinge errors of the logits",
     .convention = "Berman, Triki & Blaschko 2018, reference lovasz_hinge; 0/1 targets only (a "
                   "soft target is a 422)",
     .modes = NOT_MULTICLASS,
     .mode_hint = "use lovasz_softmax",
     .kernel = &(const struct sl__kernel){.plan = sl__plan_lovasz_hinge,
                                          .value = sl__value_lovasz,
                                          .combine = combine_per_image,
                                          .hard_target = sl__hard_lovasz}},
    {.name = "lovasz_softmax",
     .params = lovasz_softmax_params,
     .nparams = COUNT(lovasz_softmax_params),
     .summary = "Lovász extension of the Jaccard loss per class on softmax probabilities "
                "(multiclass)",
     .convention = "Berman, Triki & Blaschko 2018, reference lovasz_softmax",
     .modes = ONLY(MULTICLASS),
     .mode_hint = "use lovasz_hinge",
     .kernel = &(const struct sl__kernel){.plan = sl__plan_lovasz_softmax,
                                          .value = sl__value_lovasz,
                                          .combine = combine_per_image}},
    {.name = "distance_weighted_cross_entropy",
     .params = dwce_params,
     .nparams = COUNT(dwce_params),
     .summary = "w(x) CE(x) per pixel, w = w_c + w0 exp(-(d1 + d2)^2 / (2 sigma^2)) on background",
     .convention = "Ronneberger et al. 2015 (U-Net) border weight map; the map is POST "
                   "/v1/weight-map",
     .modes = ONLY(BINARY),
     .flags = SL_DEF_DISTANCES,
     .kernel = &(const struct sl__kernel){.plan = sl__plan_dwce,
                                          .value = sl__value_pixel,
                                          .plane_sum = sl__sum_dwce,
                                          .combine = combine_pixel,
                                          .check = sl__check_dwce,
                                          .hard_target = sl__hard_dwce}},
    {.name = "combo",
     .params = combo_params,
     .nparams = COUNT(combo_params),
     .summary = "sum of weight * term over its terms, per image and per batch",
     .convention = "MONAI DiceCELoss is combo of cross_entropy and dice",
     .modes = SL_MODES_ALL,
     .flags = SL_DEF_TERMS,
     .kernel = &(const struct sl__kernel){.plan = sl__plan_terms,
                                          .value = sl__value_terms,
                                          .combine = combine_terms}},
};

static const struct sl_param_def fbeta_params[] = {
    [SL_P_FBETA_BETA] = {"beta", SL_PT_NUMBER, NUM(1), 0, INFINITY, true, NULL,
                         "recall is beta times as important"},
};
_Static_assert(COUNT(fbeta_params) == SL_P_FBETA_N, "fbeta_params: one row per index");

static const char *const pooling_choices[] = {"max", "pooled", NULL};
static const char *const nan_choice[] = {"nan", NULL};
#define EMPTY_DISTANCE_PARAM                                                                       \
    {                                                                                              \
        "empty_distance", SL_PT_NUMBER_ENUM, ABSENT, 0, INFINITY, false, nan_choice,               \
            "value when exactly one mask is empty (default: the image diagonal in spacing units; " \
            "\"nan\" reports null)"                                                                \
    }
static const struct sl_param_def hausdorff_params[] = {
    [SL_P_HD_PERCENTILE] =
        {"percentile", SL_PT_NUMBER, ABSENT, 0, 100, false, NULL,
         "a percentile of the surface distances (95 for HD95; default: the maximum)"},
    [SL_P_HD_POOLING] =
        {"pooling", SL_PT_ENUM, CHOICE(SL_POOL_MAX), 0, 0, false, pooling_choices,
         "max: the larger of the two directed percentiles (MONAI, Metrics Reloaded); pooled: the "
         "percentile of both directions together (MedPy)"},
    [SL_P_HD_EMPTY] = EMPTY_DISTANCE_PARAM,
};
_Static_assert(COUNT(hausdorff_params) == SL_P_HD_N, "hausdorff_params: one row per index");
static const struct sl_param_def assd_params[] = {[SL_P_ASSD_EMPTY] = EMPTY_DISTANCE_PARAM};
_Static_assert(COUNT(assd_params) == SL_P_ASSD_N, "assd_params: one row per index");
static const struct sl_param_def nsd_params[] = {
    [SL_P_NSD_TOLERANCE] =
        {"tolerance", SL_PT_NUMBER, NUM(1), 0, INFINITY, false, NULL,
         "surface pixels closer than this (spacing units) to the other surface count as correct"},
};
_Static_assert(COUNT(nsd_params) == SL_P_NSD_N, "nsd_params: one row per index");

/* A confusion-matrix metric: its formula is its kernel. */
#define COUNTS_KERNEL(fn)                                                                          \
    &(const struct sl__kernel)                                                                     \
    {                                                                                              \
        .from_counts = (fn)                                                                        \
    }
/* A surface-distance metric: its value from the distances, and with an empty surface. */
#define SURFACE_KERNEL(fn, empty_fn)                                                               \
    &(const struct sl__kernel)                                                                     \
    {                                                                                              \
        .surface = (fn), .surface_empty = (empty_fn)                                               \
    }
/* A metric row's name, summary and convention; its kernel, parameters and flags follow. */
#define METRIC(nm, sum, conv)                                                                      \
    .name = (nm), .summary = (sum), .convention = (conv), .modes = SL_MODES_ALL
/* A confusion-matrix metric row: its name, formula, summary and convention. */
#define COUNTS(nm, fn, sum, conv) METRIC(nm, sum, conv), .kernel = COUNTS_KERNEL(fn)

static const struct sl_def metric_table[] = {
    {COUNTS("dice", sl__m_dice, "2TP / (2TP + FP + FN)", "MONAI DiceMetric")},
    {COUNTS("iou", sl__m_iou, "TP / (TP + FP + FN)", "MONAI MeanIoU")},
    {COUNTS("precision", sl__m_precision, "TP / (TP + FP)", NULL)},
    {COUNTS("recall", sl__m_recall, "TP / (TP + FN)", NULL)},
    {COUNTS("specificity", sl__m_specificity, "TN / (TN + FP)", NULL)},
    {COUNTS("accuracy", sl__m_accuracy, "(TP + TN) / (TP + FP + FN + TN)", NULL)},
    {COUNTS("balanced_accuracy", sl__m_balanced_accuracy, "(recall + specificity) / 2", NULL)},
    {COUNTS("npv", sl__m_npv, "TN / (TN + FN)",
            "negative predictive value, MONAI ConfusionMatrixMetric \"npv\"")},
    {COUNTS("mcc", sl__m_mcc, "(TP TN - FP FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN))",
            "Matthews 1975")},
    {COUNTS("fbeta", sl__m_fbeta, "(1+b^2) TP / ((1+b^2) TP + b^2 FN + FP)", NULL),
     .params = fbeta_params, .nparams = COUNT(fbeta_params)},
    {METRIC("confusion", "TP, FP, FN, TN counts", NULL), .flags = SL_DEF_COUNTS},
    {METRIC("hausdorff",
            "symmetric Hausdorff distance between the surfaces (or a percentile of it)",
            "MONAI compute_hausdorff_distance; pooled percentile as MedPy hd95"),
     .params = hausdorff_params, .nparams = COUNT(hausdorff_params), .flags = SL_DEF_DISTANCES,
     .kernel = SURFACE_KERNEL(sl__surf_hausdorff, sl__surf_empty_distance)},
    {METRIC("assd", "mean of the surface distances of both directions together",
            "MONAI compute_average_surface_distance(symmetric=True), MedPy assd"),
     .params = assd_params, .nparams = COUNT(assd_params), .flags = SL_DEF_DISTANCES,
     .kernel = SURFACE_KERNEL(sl__surf_assd, sl__surf_empty_distance)},
    {METRIC("nsd", "normalized surface Dice: share of both surfaces within tolerance of the other",
            "Nikolov et al. 2021; MONAI compute_surface_dice"),
     .params = nsd_params, .nparams = COUNT(nsd_params), .flags = SL_DEF_DISTANCES,
     .kernel = SURFACE_KERNEL(sl__surf_nsd, sl__surf_empty_nsd)},
};

const struct sl_def *sl_loss_table(int *count)
{
    *count = COUNT(loss_table);
    return loss_table;
}

const struct sl_def *sl_metric_table(int *count)
{
    *count = COUNT(metric_table);
    return metric_table;
}

static const struct sl_def *find(const struct sl_def *table, int n, const char *name)
{
    for (int i = 0; i < n; i++) {
        if (strcmp(table[i].name, name) == 0) {
            return &table[i];
        }
    }
    return NULL;
}

const struct sl_def *sl_find_loss(const char *name)
{
    return find(loss_table, COUNT(loss_table), name);
}

const struct sl_def *sl_find_metric(const char *name)
{
    return find(metric_table, COUNT(metric_table), name);
}

/* Pixel losses: the mean over counted pixels, or the batch sum. */
static enum sl_combine combine_pixel(const struct sl_spec *s, const char **why)
{
    (void)why;
    int r = sl_param_index(s->def, "reduction"), cw = sl_param_index(s->def, "class_weights");
    if (r >= 0 && s->values[r].kind == SL_V_ENUM && s->values[r].choice == SL_RED_SUM) {
        return SL_COMBINE_SUM;
    }
    return cw >= 0 && s->values[cw].kind == SL_V_LIST ? SL_COMBINE_WEIGHTED_MEAN
                                                      : SL_COMBINE_PIXEL_MEAN;
}

/* Balanced CE: beta "auto" is mean(1 - y) over the whole batch. */
static enum sl_combine combine_bce(const struct sl_spec *s, const char **why)
{
    const struct sl_value *b = &s->values[SL_P_BCE_BETA];
    if (b->kind == SL_V_ENUM && b->choice == SL_BETA_AUTO) {
        if (why) {
            *why = "its beta \"auto\" is a mean over the whole batch";
        }
        return SL_COMBINE_POOLED;
    }
    return combine_pixel(s, why);
}

/* Region and Lovász losses: the mean of per-image values, unless per_image is false. */
static enum sl_combine combine_per_image(const struct sl_spec *s, const char **why)
{
    int k = sl_param_index(s->def, "per_image");
    if (k >= 0 && s->values[k].kind == SL_V_BOOL && !s->values[k].b) {
        if (why) {
            *why = "with per_image false it pools the sums of the whole batch";
        }
        return SL_COMBINE_POOLED;
    }
    return SL_COMBINE_IMAGE_MEAN;
}

static enum sl_combine combine_terms(const struct sl_spec *s, const char **why)
{
    (void)s;
    (void)why;
    return SL_COMBINE_TERMS;
}

enum sl_combine sl_loss_combine(const struct sl_spec *s, const char **why)
{
    if (!s->def->kernel || !s->def->kernel->combine) {
        return SL_COMBINE_IMAGE_MEAN;
    }
    return s->def->kernel->combine(s, why);
}

bool sl__include_bg(const struct sl_spec *s, bool inherited)
{
    int i = sl_param_index(s->def, "include_background");
    return i >= 0 && s->values[i].kind == SL_V_BOOL ? s->values[i].b : inherited;
}

int sl_param_index(const struct sl_def *def, const char *name)
{
    for (int i = 0; i < def->nparams; i++) {
        if (strcmp(def->params[i].name, name) == 0) {
            return i;
        }
    }
    return -1;
}

void sl_spec_init(struct sl_spec *spec, const struct sl_def *def)
{
    memset(spec, 0, sizeof *spec);
    spec->def = def;
    snprintf(spec->key, sizeof spec->key, "%s", def->name);
    for (int i = 0; i < def->nparams && i < SL_MAX_PARAMS; i++) {
        spec->values[i] = def->params[i].def;
    }
    spec->weight = 1;
}

static int num_in_range(const struct sl_param_def *p, double v)
{
    if (!isfinite(v)) {
        return 0;
    }
    if (p->min_open ? !(v > p->min) : !(v >= p->min)) {
        return 0;
    }
    return v <= p->max;
}

static void range_text(const struct sl_param_def *p, char *buf, size_t len)
{
    if (isinf(p->max)) {
        snprintf(buf, len, "%s %g", p->min_open ? ">" : ">=", p->min);
    } else {
        snprintf(buf, len, "in %c%g, %g]", p->min_open ? '(' : '[', p->min, p->max);
    }
}

int sl_param_check(const struct sl_param_def *p, const struct sl_value *v, const char *path,
                   char *msg, size_t msglen)
{
    char range[64];
    range_text(p, range, sizeof range);
    if (v->kind == SL_V_LIST) {
        if (p->type != SL_PT_LIST && p->type != SL_PT_NUMBER_NULL_LIST) {
            snprintf(msg, msglen, "%s: takes a single value, not a list", path);
            return SL_EINVAL;
        }
        if (v->nlist < 1) {
            snprintf(msg, msglen, "%s: must not be an empty list", path);
            return SL_EINVAL;
        }
        for (int i = 0; i < v->nlist; i++) {
            if (!num_in_range(p, v->list[i])) {
                snprintf(msg, msglen, "%s[%d]: %g is out of range (must be %s)", path, i,
                         v->list[i], range);
                return SL_ERANGE;
            }
        }
        return 0;
    }
    switch (p->type) {
    case SL_PT_NUMBER:
    case SL_PT_INTEGER:
        if (v->kind != SL_V_NUMBER) {
            snprintf(msg, msglen, "%s: must be a number %s", path, range);
            return SL_EINVAL;
        }
        if (!num_in_range(p, v->num) || (p->type == SL_PT_INTEGER && v->num != floor(v->num))) {
            snprintf(msg, msglen, "%s: %g is out of range (must be %s%s)", path, v->num,
                     p->type == SL_PT_INTEGER ? "an integer " : "", range);
            return SL_ERANGE;
        }
        return 0;
    case SL_PT_NUMBER_NULL:
    case SL_PT_NUMBER_NULL_LIST:
        if (v->kind == SL_V_NULL) {
            return 0;
        }
        if (v->kind != SL_V_NUMBER) {
            snprintf(msg, msglen, "%s: must be null or a number %s", path, range);
            return SL_EINVAL;
        }
        if (!num_in_range(p, v->num)) {
            snprintf(msg, msglen, "%s: %g is out of range (must be null or %s)", path, v->num,
                     range);
            return SL_ERANGE;
        }
        return 0;
    case SL_PT_NUMBER_ENUM:
        if (v->kind == SL_V_ENUM) {
            return 0;
        }
        if (v->kind != SL_V_NUMBER) {
            snprintf(msg, msglen, "%s: must be a number %s or one of the names", path, range);
            return SL_EINVAL;
        }
        if (!num_in_range(p, v->num)) {
            snprintf(msg, msglen, "%s: %g is out of range (must be %s)", path, v->num, range);
            return SL_ERANGE;
        }
        return 0;
    case SL_PT_BOOL:
        if (v->kind != SL_V_BOOL) {
            snprintf(msg, msglen, "%s: must be true or false", path);
            return SL_EINVAL;
        }
        return 0;
    case SL_PT_ENUM:
        if (v->kind != SL_V_ENUM) {
            snprintf(msg, msglen, "%s: must be one of the names listed in the catalog", path);
            return SL_EINVAL;
        }
        return 0;
    case SL_PT_TERMS:
        return 0;
    case SL_PT_LIST:
        if (v->kind != SL_V_NULL) {
            snprintf(msg, msglen, "%s: must be a list of numbers %s, one per class (or null)", path,
                     range);
            return SL_EINVAL;
        }
        return 0;
    }
    snprintf(msg, msglen, "%s: unknown parameter type", path);
    return SL_EINTERNAL;
}

const char *sl_mode_name(enum sl_mode m)
{
    static const char *const names[] = {"auto", "binary", "multiclass", "multilabel"};
    return (unsigned)m < 4 ? names[m] : "?";
}

const char *sl_pred_type_name(enum sl_pred_type t)
{
    static const char *const names[] = {"logits", "probabilities", "labels"};
    return (unsigned)t < 3 ? names[t] : "?";
}

const char *sl_empty_name(enum sl_empty e)
{
    static const char *const names[] = {"one", "zero", "nan"};
    return (unsigned)e < 3 ? names[e] : "?";
}

void sl_request_init(struct sl_request *req)
{
    memset(req, 0, sizeof *req);
    req->mode = SL_MODE_AUTO;
    req->pred_type = SL_PRED_LOGITS;
    req->threshold = 0.5;
    req->empty = SL_EMPTY_ONE;
    req->include_background = true;
}
