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

/* MONAI DiceLoss/TverskyLoss/GeneralizedDiceLoss smooth_nr and smooth_dr: each replaces smooth on
 * its side of the ratio; either one with smooth is a 422 (proto/spec.c: a row has one excludes,
 * and tversky's is beta/fp_weight). */
#define SMOOTH_NR_PARAM(doc)                                                                       \
    {                                                                                              \
        "smooth_nr", SL_PT_NUMBER, ABSENT, 0, INFINITY, false, NULL, doc                           \
    }
#define SMOOTH_DR_PARAM(doc)                                                                       \
    {                                                                                              \
        "smooth_dr", SL_PT_NUMBER, ABSENT, 0, INFINITY, false, NULL, doc                           \
    }
#define SMOOTH_NR_DOC                                                                              \
    "added to the numerator only (MONAI smooth_nr; default: smooth); not with smooth"
#define SMOOTH_DR_DOC                                                                              \
    "added to the denominator only (MONAI smooth_dr; default: smooth); not with smooth"
static const char *const absent_choices[] = {"count", "zero", NULL};
/* smp losses/dice.py, jaccard.py, tversky.py: loss *= (y_true.sum(dims) > 0) */
#define ABSENT_PARAM                                                                               \
    {                                                                                              \
        "absent_classes", SL_PT_ENUM, CHOICE(SL_ABSENT_COUNT), 0, 0, false, absent_choices,        \
            "count: a class absent from the target scores as computed; zero: it adds 0 to the "    \
            "mean over classes, which still counts it (smp DiceLoss/JaccardLoss/TverskyLoss "      \
            "mask = y_true.sum(dims) > 0; per image, or over the batch with per_image false)"      \
    }
static const char *const region_reduction_choices[] = {"mean", "sum", "none", NULL};
/* MONAI DiceLoss/TverskyLoss/GeneralizedDiceLoss reduction: mean/sum over images and classes;
 * none: MONAI's unreduced [N, C] values as per_class and per_image_class */
#define REGION_REDUCTION_PARAM                                                                     \
    {                                                                                              \
        "reduction", SL_PT_ENUM, CHOICE(SL_RED_MEAN), 0, 0, false, region_reduction_choices,       \
            "mean: over images and counted classes; sum: their sum (MONAI reduction=\"sum\"); "    \
            "none: the value is the mean and the answer adds per_class (C) and per_image_class "   \
            "(N lists of C), MONAI reduction=\"none\""                                             \
    }

static const struct sl_param_def dice_params[] = {
    [SL_P_DICE_SMOOTH] = SMOOTH_PARAM,
    [SL_P_DICE_SQUARED] = {"squared", SL_PT_BOOL, BOOLV(false), 0, 0, false, NULL,
                           "V-Net denominator sum(p^2) + sum(y^2)"},
    [SL_P_DICE_LOG] = LOG_PARAM,
    [SL_P_DICE_PER_IMAGE] =
        PER_IMAGE_PARAM("true: mean of per-image losses; false: sums pooled over the batch first"),
    [SL_P_DICE_CLASS_WEIGHTS] = CLASS_WEIGHTS_PARAM(REGION_CW_DOC),
    [SL_P_DICE_INCLUDE_BG] = INCLUDE_BG_PARAM(INCLUDE_BG_CLASSES),
    [SL_P_DICE_SMOOTH_NR] = SMOOTH_NR_PARAM(SMOOTH_NR_DOC),
    [SL_P_DICE_SMOOTH_DR] = SMOOTH_DR_PARAM(SMOOTH_DR_DOC),
    [SL_P_DICE_ABSENT] = ABSENT_PARAM,
    [SL_P_DICE_REDUCTION] = REGION_REDUCTION_PARAM,
};
_Static_assert(COUNT(dice_params) == SL_P_DICE_N, "dice_params: one row per index");
static const struct sl_param_def jaccard_params[] = {
    [SL_P_JAC_SMOOTH] = SMOOTH_PARAM,
    [SL_P_JAC_LOG] = LOG_PARAM,
    [SL_P_JAC_PER_IMAGE] =
        PER_IMAGE_PARAM("true: mean of per-image losses; false: sums pooled over the batch first"),
    [SL_P_JAC_CLASS_WEIGHTS] = CLASS_WEIGHTS_PARAM(REGION_CW_DOC),
    [SL_P_JAC_INCLUDE_BG] = INCLUDE_BG_PARAM(INCLUDE_BG_CLASSES),
    [SL_P_JAC_SMOOTH_NR] = SMOOTH_NR_PARAM(
        "added to the numerator tp only (default: smooth); not with smooth. MONAI DiceLoss("
        "jaccard=True) doubles both sides: its smooth_nr a, smooth_dr b are smooth_nr a/2, "
        "smooth_dr b/2 here"),
    [SL_P_JAC_SMOOTH_DR] =
        SMOOTH_DR_PARAM("added to the denominator tp + fp + fn only (default: smooth); not with "
                        "smooth"),
    [SL_P_JAC_ABSENT] = ABSENT_PARAM,
    [SL_P_JAC_REDUCTION] = REGION_REDUCTION_PARAM,
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
    [SL_P_TV_SMOOTH_NR] = SMOOTH_NR_PARAM(SMOOTH_NR_DOC),
    [SL_P_TV_SMOOTH_DR] = SMOOTH_DR_PARAM(SMOOTH_DR_DOC),
    [SL_P_TV_ABSENT] = ABSENT_PARAM,
    [SL_P_TV_REDUCTION] = REGION_REDUCTION_PARAM,
};
_Static_assert(COUNT(tversky_params) == SL_P_TV_N, "tversky_params: one row per index");
static const char *const w_type_choices[] = {"square", "simple", "uniform", NULL};
static const struct sl_param_def gdice_params[] = {
    [SL_P_GD_W_TYPE] =
        {"w_type", SL_PT_ENUM, CHOICE(SL_GD_SQUARE), 0, 0, false, w_type_choices,
         "class weight from the target volume g: square 1/g^2, simple 1/g, uniform 1; "
         "a class with g = 0 takes the largest finite weight (MONAI)"},
    [SL_P_GD_SMOOTH] = {"smooth", SL_PT_NUMBER, NUM(1e-5), 0, INFINITY, false, NULL,
                        "added to numerator and denominator (MONAI's default 1e-5 for both)"},
    [SL_P_GD_SMOOTH_NR] = SMOOTH_NR_PARAM(SMOOTH_NR_DOC),
    [SL_P_GD_SMOOTH_DR] = SMOOTH_DR_PARAM(SMOOTH_DR_DOC),
    [SL_P_GD_PER_IMAGE] = PER_IMAGE_PARAM(
        "true: mean of per-image losses; false: sums and weights pooled over the batch first "
        "(MONAI batch=True)"),
    [SL_P_GD_REDUCTION] =
        {"reduction", SL_PT_ENUM, CHOICE(SL_RED_MEAN), 0, 0, false, region_reduction_choices,
         "mean or sum over images (MONAI reduction); none: the value is the mean and per_image "
         "is always written (MONAI's unreduced [N, 1])"},
    [SL_P_GD_INCLUDE_BG] = INCLUDE_BG_PARAM(INCLUDE_BG_CLASSES),
};
_Static_assert(COUNT(gdice_params) == SL_P_GD_N, "gdice_params: one row per index");
static const struct sl_param_def mcc_params[] = {
    [SL_P_MCC_EPS] = {"eps", SL_PT_NUMBER, NUM(1e-5), 0, INFINITY, true, NULL,
                      "added to each of the soft tp, tn, fp, fn (smp MCCLoss eps)"},
    [SL_P_MCC_PER_IMAGE] =
        {"per_image", SL_PT_BOOL, BOOLV(false), 0, 0, false, NULL,
         "false (smp): one loss from the sums pooled over the batch; true: mean of per-image "
         "losses"},
    [SL_P_MCC_INCLUDE_BG] = INCLUDE_BG_PARAM(INCLUDE_BG_CLASSES),
};
_Static_assert(COUNT(mcc_params) == SL_P_MCC_N, "mcc_params: one row per index");
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
        .finish = (finish_fn), .combine = combine_per_image, .check = sl__check_region             \
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
    {.name = "generalized_dice",
     .params = gdice_params,
     .nparams = COUNT(gdice_params),
     .summary = "1 - (2 sum_c w_c tp_c + smooth_nr) / (sum_c w_c (sum p_c + sum y_c) + smooth_dr) "
                "per image, w_c = 1/g_c^2 (square), 1/g_c or 1 with g_c = sum y_c",
     .convention = "Sudre et al. 2017; MONAI monai/losses/dice.py GeneralizedDiceLoss (w_type, "
                   "infinite weights -> the largest finite one, batch = per_image false); soft "
                   "targets as given",
     .modes = SL_MODES_ALL,
     .kernel = &(const struct sl__kernel){.plan = sl__plan_soft,
                                          .value = sl__value_gdice,
                                          .combine = combine_per_image,
                                          .check = sl__check_region}},
    {.name = "mcc",
     .params = mcc_params,
     .nparams = COUNT(mcc_params),
     .summary = "1 - (tp tn - fp fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn)) of the soft counts "
                "(each + eps) per class, mean over classes",
     .convention = "smp segmentation_models_pytorch/losses/mcc.py MCCLoss (binary; per class "
                   "one-vs-rest in multiclass and multilabel); soft targets as given",
     .modes = SL_MODES_ALL,
     .kernel = &(const struct sl__kernel){.plan = sl__plan_soft,
                                          .value = sl__value_region,
                                          .score = sl__score_mcc,
                                          .combine = combine_per_image}},
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

/* MONAI's MetricReduction names, in the order of enum sl_metric_reduction. */
static const char *const metric_reduction_choices[] = {
    "mean", "sum", "mean_batch", "sum_batch", "mean_channel", "sum_channel", "none", NULL};
#define METRIC_REDUCTION_PARAM                                                                     \
    {                                                                                              \
        "reduction", SL_PT_ENUM, ABSENT, 0, 0, false, metric_reduction_choices,                    \
            "adds `reduced`: MONAI do_metric_reduction (monai/metrics/utils.py) of the per-image " \
            "values of the counted classes, NaN left out, 0 when none is defined; its mean is "    \
            "over each image's classes first, then over images (not segloss's `mean`); a +inf "    \
            "value (a surface distance under the monai or deepmind empty_rule) makes what it "     \
            "enters +inf, reported null, as MONAI's inf"                                           \
    }
static const char *const zero_division_choices[] = {"nan", NULL};
#define ZERO_DIVISION_PARAM                                                                        \
    {                                                                                              \
        "zero_division", SL_PT_NUMBER_ENUM, ABSENT, 0, 1, false, zero_division_choices,            \
            "the value of any ratio whose denominator is 0 (scikit-learn's zero_division); "       \
            "\"nan\" reports null as MONAI ConfusionMatrixMetric does; default: the request's "    \
            "`empty` when prediction and target agree, else 0"                                     \
    }
static const struct sl_param_def fbeta_params[] = {
    [SL_P_FBETA_BETA] = {"beta", SL_PT_NUMBER, NUM(1), 0, INFINITY, true, NULL,
                         "recall is beta times as important"},
    [SL_P_FBETA_ZERO_DIVISION] = ZERO_DIVISION_PARAM,
    [SL_P_FBETA_REDUCTION] = METRIC_REDUCTION_PARAM,
};
_Static_assert(COUNT(fbeta_params) == SL_P_FBETA_N, "fbeta_params: one row per index");
static const struct sl_param_def overlap_params[] = {
    [SL_P_OVERLAP_IGNORE_EMPTY] =
        {"ignore_empty", SL_PT_BOOL, BOOLV(false), 0, 0, false, NULL,
         "true: the value is null (undefined) whenever the class is absent from the target, even "
         "with a non-empty prediction (MONAI DiceMetric/MeanIoU ignore_empty, whose default is "
         "true); false: the request's `empty` rule"},
    [SL_P_OVERLAP_ZERO_DIVISION] = ZERO_DIVISION_PARAM,
    [SL_P_OVERLAP_REDUCTION] = METRIC_REDUCTION_PARAM,
};
_Static_assert(COUNT(overlap_params) == SL_P_OVERLAP_N, "overlap_params: one row per index");
static const struct sl_param_def ratio_params[] = {
    [SL_P_RATIO_ZERO_DIVISION] = ZERO_DIVISION_PARAM,
    [SL_P_RATIO_REDUCTION] = METRIC_REDUCTION_PARAM,
};
_Static_assert(COUNT(ratio_params) == SL_P_RATIO_N, "ratio_params: one row per index");
static const struct sl_param_def cm_params[] = {[SL_P_CM_REDUCTION] = METRIC_REDUCTION_PARAM};
_Static_assert(COUNT(cm_params) == SL_P_CM_N, "cm_params: one row per index");

static const char *const pooling_choices[] = {"max", "pooled", NULL};
static const char *const nan_choice[] = {"nan", NULL};
#define EMPTY_DISTANCE_PARAM                                                                       \
    {                                                                                              \
        "empty_distance", SL_PT_NUMBER_ENUM, ABSENT, 0, INFINITY, false, nan_choice,               \
            "value when exactly one mask is empty (default: the image diagonal in spacing units; " \
            "\"nan\" reports null)"                                                                \
    }
static const char *const direction_choices[] = {"symmetric", "pred_to_target", "target_to_pred",
                                                NULL};
static const char *const distance_metric_choices[] = {"euclidean", "chessboard", "taxicab", NULL};
static const char *const empty_rule_choices[] = {"segloss", "monai", "deepmind", NULL};
static const char *const surfaces_choices[] = {"voxels", "surfels", NULL};
#define DIRECTION_PARAM(doc)                                                                       \
    {                                                                                              \
        "direction", SL_PT_ENUM, CHOICE(SL_DIR_SYMMETRIC), 0, 0, false, direction_choices, doc     \
    }
#define DISTANCE_METRIC_PARAM                                                                      \
    {                                                                                              \
        "distance_metric", SL_PT_ENUM, CHOICE(SL_DIST_EUCLIDEAN), 0, 0, false,                     \
            distance_metric_choices,                                                               \
            "euclidean: exact EDT in spacing units; chessboard, taxicab: chamfer distance in "     \
            "pixels, the spacing ignored (MONAI distance_metric, monai/metrics/utils.py "          \
            "get_surface_distance, scipy distance_transform_cdt)"                                  \
    }
#define EMPTY_RULE_PARAM(doc)                                                                      \
    {                                                                                              \
        "empty_rule", SL_PT_ENUM, CHOICE(SL_EMPTY_RULE_SEGLOSS), 0, 0, false, empty_rule_choices,  \
            doc                                                                                    \
    }
#define SURFACES_PARAM(doc)                                                                        \
    {                                                                                              \
        "surfaces", SL_PT_ENUM, CHOICE(SL_SURF_VOXELS), 0, 0, false, surfaces_choices, doc         \
    }
#define TOLERANCE_PARAM(doc)                                                                       \
    {                                                                                              \
        "tolerance", SL_PT_NUMBER_LIST, NUM(1), 0, INFINITY, false, NULL, doc                      \
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
    [SL_P_HD_DIRECTION] = DIRECTION_PARAM(
        "symmetric: both directions (pooling applies); pred_to_target: the distances from the "
        "prediction's surface to the target's only; target_to_pred: back (MONAI directed=True is "
        "pred_to_target, monai/metrics/hausdorff_distance.py)"),
    [SL_P_HD_DISTANCE] = DISTANCE_METRIC_PARAM,
    [SL_P_HD_EMPTY_RULE] = EMPTY_RULE_PARAM(
        "segloss: 0 when both masks are empty (null when the request's empty is \"nan\"), "
        "empty_distance when one is; monai: null (NaN) when both are, +inf when one is "
        "(monai/metrics/hausdorff_distance.py); deepmind: +inf when either is "
        "(surface_distance/metrics.py compute_robust_hausdorff); +inf travels as null, counted "
        "in infinite"),
    [SL_P_HD_SURFACES] = SURFACES_PARAM(
        "voxels: boundary voxels, each counting 1 (MONAI); surfels: DeepMind's surface elements "
        "on the corner grid, a percentile weighed by their areas (compute_robust_hausdorff)"),
    [SL_P_HD_REDUCTION] = METRIC_REDUCTION_PARAM,
};
_Static_assert(COUNT(hausdorff_params) == SL_P_HD_N, "hausdorff_params: one row per index");
static const struct sl_param_def assd_params[] = {
    [SL_P_ASSD_EMPTY] = EMPTY_DISTANCE_PARAM,
    [SL_P_ASSD_DIRECTION] = DIRECTION_PARAM(
        "symmetric: the mean over both surfaces; pred_to_target: the mean distance from the "
        "prediction's surface to the target's (MONAI symmetric=False, "
        "monai/metrics/surface_distance.py; DeepMind compute_average_surface_distance's second "
        "value); target_to_pred: back (DeepMind's first value)"),
    [SL_P_ASSD_DISTANCE] = DISTANCE_METRIC_PARAM,
    [SL_P_ASSD_EMPTY_RULE] = EMPTY_RULE_PARAM(
        "segloss: 0 when both masks are empty (null when the request's empty is \"nan\"), "
        "empty_distance when one is; monai: null (NaN) when both are, +inf when one is "
        "(monai/metrics/surface_distance.py); deepmind: null when both are; when one is, +inf "
        "toward the empty surface and null (0 / 0) from it (surface_distance/metrics.py "
        "compute_average_surface_distance); +inf travels as null, counted in infinite"),
    [SL_P_ASSD_SURFACES] = SURFACES_PARAM(
        "voxels: boundary voxels, each counting 1 (MONAI); surfels: DeepMind's surface elements, "
        "a mean weighed by their areas (compute_average_surface_distance)"),
    [SL_P_ASSD_REDUCTION] = METRIC_REDUCTION_PARAM,
};
_Static_assert(COUNT(assd_params) == SL_P_ASSD_N, "assd_params: one row per index");
#define SCORE_EMPTY_RULE_DOC                                                                       \
    "segloss: 1 when both masks are empty (null when the request's empty is \"nan\"); monai and "  \
    "deepmind: null (NaN) when both are (monai/metrics/surface_dice.py, "                          \
    "surface_distance/metrics.py); 0 when one is, in all three"
static const struct sl_param_def nsd_params[] = {
    [SL_P_NSD_TOLERANCE] = TOLERANCE_PARAM(
        "surface pixels closer than this (spacing units) to the other surface count as correct; "
        "a list gives one per class (MONAI class_thresholds)"),
    [SL_P_NSD_DISTANCE] = DISTANCE_METRIC_PARAM,
    [SL_P_NSD_EMPTY_RULE] = EMPTY_RULE_PARAM(SCORE_EMPTY_RULE_DOC),
    [SL_P_NSD_REDUCTION] = METRIC_REDUCTION_PARAM,
};
_Static_assert(COUNT(nsd_params) == SL_P_NSD_N, "nsd_params: one row per index");
static const struct sl_param_def surface_dice_params[] = {
    [SL_P_SDICE_TOLERANCE] = TOLERANCE_PARAM(
        "surfels at most this far (spacing units) from the other surface count as overlapping "
        "(DeepMind tolerance_mm); a list gives one per class (MONAI class_thresholds)"),
    [SL_P_SDICE_DISTANCE] = DISTANCE_METRIC_PARAM,
    [SL_P_SDICE_EMPTY_RULE] = EMPTY_RULE_PARAM(SCORE_EMPTY_RULE_DOC),
    [SL_P_SDICE_REDUCTION] = METRIC_REDUCTION_PARAM,
};
_Static_assert(COUNT(surface_dice_params) == SL_P_SDICE_N,
               "surface_dice_params: one row per index");
static const struct sl_param_def surface_overlap_params[] = {
    [SL_P_SOVL_TOLERANCE] = TOLERANCE_PARAM(
        "surfels at most this far (spacing units) from the other surface overlap it (DeepMind "
        "tolerance_mm); a list gives one per class"),
    [SL_P_SOVL_DIRECTION] = DIRECTION_PARAM(
        "target_to_pred: the share of the target's surface within tolerance of the prediction's "
        "(DeepMind's first value, rel_overlap_gt); pred_to_target: the share of the "
        "prediction's surface (its second, rel_overlap_pred); symmetric: of both together, "
        "which is surface_dice"),
    [SL_P_SOVL_DISTANCE] = DISTANCE_METRIC_PARAM,
    [SL_P_SOVL_EMPTY_RULE] = EMPTY_RULE_PARAM(
        "segloss: 1 when both masks are empty (null when the request's empty is \"nan\"), 0 "
        "when one is; monai and deepmind: null (NaN) when both are; when one is, 0 from the "
        "non-empty surface and null (0 / 0) from the empty one (surface_distance/metrics.py; "
        "MONAI has no overlap and follows DeepMind here)"),
    [SL_P_SOVL_REDUCTION] = METRIC_REDUCTION_PARAM,
};
_Static_assert(COUNT(surface_overlap_params) == SL_P_SOVL_N,
               "surface_overlap_params: one row per index");

/* A confusion-matrix metric: its formula is its kernel. */
#define COUNTS_KERNEL(fn)                                                                          \
    &(const struct sl__kernel)                                                                     \
    {                                                                                              \
        .from_counts = (fn)                                                                        \
    }
/* A surface-distance metric: its value from the distances (empty surfaces included). */
#define SURFACE_KERNEL(fn)                                                                         \
    &(const struct sl__kernel)                                                                     \
    {                                                                                              \
        .surface = (fn)                                                                            \
    }
/* A metric row's name, summary and convention; its kernel, parameters and flags follow. */
#define METRIC(nm, sum, conv)                                                                      \
    .name = (nm), .summary = (sum), .convention = (conv), .modes = SL_MODES_ALL
/* A confusion-matrix metric row: its name, formula, summary and convention. */
#define COUNTS(nm, fn, sum, conv) METRIC(nm, sum, conv), .kernel = COUNTS_KERNEL(fn)

/* A segloss ratio row: zero_division and reduction. */
#define RATIO_PARAMS .params = ratio_params, .nparams = COUNT(ratio_params)
/* A row following MONAI ConfusionMatrixMetric: reduction. */
#define CM_PARAMS .params = cm_params, .nparams = COUNT(cm_params)
/* MONAI's names of a row (check_confusion_matrix_metric_name), NULL-terminated. */
#define ALIASES(...)                                                                               \
    .aliases = (const char *const[])                                                               \
    {                                                                                              \
        __VA_ARGS__, NULL                                                                          \
    }
/* The convention of the rows that follow MONAI's ConfusionMatrixMetric formula and its NaN. */
#define MONAI_CM(metric)                                                                           \
    "MONAI ConfusionMatrixMetric \"" metric "\" (monai/metrics/confusion_matrix.py "               \
    "compute_confusion_matrix_metric): a zero denominator is null, whatever `empty` says"

static const struct sl_def metric_table[] = {
    {COUNTS("dice", sl__m_dice, "2TP / (2TP + FP + FN)",
            "MONAI DiceMetric (monai/metrics/meandice.py) with ignore_empty as given (false by "
            "default)"),
     .params = overlap_params, .nparams = COUNT(overlap_params)},
    {COUNTS("iou", sl__m_iou, "TP / (TP + FP + FN)",
            "MONAI MeanIoU (monai/metrics/meaniou.py) with ignore_empty as given (false by "
            "default)"),
     .params = overlap_params, .nparams = COUNT(overlap_params)},
    {COUNTS("precision", sl__m_precision, "TP / (TP + FP)", NULL), RATIO_PARAMS,
     ALIASES("positive_predictive_value", "ppv")},
    {COUNTS("recall", sl__m_recall, "TP / (TP + FN)", NULL), RATIO_PARAMS,
     ALIASES("sensitivity", "hit_rate", "true_positive_rate", "tpr")},
    {COUNTS("specificity", sl__m_specificity, "TN / (TN + FP)", NULL), RATIO_PARAMS,
     ALIASES("selectivity", "true_negative_rate", "tnr")},
    {COUNTS("accuracy", sl__m_accuracy, "(TP + TN) / (TP + FP + FN + TN)", NULL), RATIO_PARAMS,
     ALIASES("acc")},
    {COUNTS("balanced_accuracy", sl__m_balanced_accuracy, "(recall + specificity) / 2", NULL),
     RATIO_PARAMS, ALIASES("ba")},
    {COUNTS("npv", sl__m_npv, "TN / (TN + FN)",
            "negative predictive value, MONAI ConfusionMatrixMetric \"npv\""),
     RATIO_PARAMS, ALIASES("negative_predictive_value")},
    {COUNTS("mcc", sl__m_mcc, "(TP TN - FP FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN))",
            "Matthews 1975"),
     RATIO_PARAMS, ALIASES("matthews_correlation_coefficient")},
    {COUNTS("fbeta", sl__m_fbeta, "(1+b^2) TP / ((1+b^2) TP + b^2 FN + FP)", NULL),
     .params = fbeta_params, .nparams = COUNT(fbeta_params)},
    {COUNTS("miss_rate", sl__m_miss_rate, "FN / (TP + FN)", MONAI_CM("fnr")), CM_PARAMS,
     .flags = SL_DEF_LOWER, ALIASES("false_negative_rate", "fnr")},
    {COUNTS("fall_out", sl__m_fall_out, "FP / (FP + TN)", MONAI_CM("fpr")), CM_PARAMS,
     .flags = SL_DEF_LOWER, ALIASES("false_positive_rate", "fpr")},
    {COUNTS("false_discovery_rate", sl__m_fdr, "FP / (FP + TP)", MONAI_CM("fdr")), CM_PARAMS,
     .flags = SL_DEF_LOWER, ALIASES("fdr")},
    {COUNTS("false_omission_rate", sl__m_for, "FN / (FN + TN)", MONAI_CM("for")), CM_PARAMS,
     .flags = SL_DEF_LOWER, ALIASES("for")},
    {COUNTS("prevalence_threshold", sl__m_pt,
            "(sqrt(TPR (1 - TNR)) + TNR - 1) / (TPR + TNR - 1), TPR = TP / (TP + FN), "
            "TNR = TN / (TN + FP)",
            MONAI_CM("pt")),
     CM_PARAMS, ALIASES("pt")},
    {COUNTS("threat_score", sl__m_ts, "TP / (TP + FN + FP) (iou with MONAI's null)",
            MONAI_CM("ts")),
     CM_PARAMS, ALIASES("critical_success_index", "ts", "csi")},
    {COUNTS("f1_score", sl__m_f1, "2TP / (2TP + FN + FP) (dice with MONAI's null)", MONAI_CM("f1")),
     CM_PARAMS, ALIASES("f1")},
    {COUNTS("fowlkes_mallows_index", sl__m_fm, "sqrt(PPV TPR), PPV = TP / (TP + FP)",
            MONAI_CM("fm")),
     CM_PARAMS, ALIASES("fm")},
    {COUNTS("informedness", sl__m_bm, "TPR + TNR - 1", MONAI_CM("bm")), CM_PARAMS,
     ALIASES("bookmaker_informedness", "bm", "youden_index", "youden")},
    {COUNTS("markedness", sl__m_mk, "PPV + NPV - 1, NPV = TN / (TN + FN)", MONAI_CM("mk")),
     CM_PARAMS, ALIASES("deltap", "mk")},
    {METRIC("confusion", "TP, FP, FN, TN counts", NULL), .flags = SL_DEF_COUNTS},
    {METRIC("hausdorff",
            "symmetric Hausdorff distance between the surfaces (or a percentile of it)",
            "MONAI compute_hausdorff_distance (monai/metrics/hausdorff_distance.py); pooled "
            "percentile as MedPy hd95; with surfaces surfels DeepMind compute_robust_hausdorff "
            "(surface_distance/metrics.py)"),
     .params = hausdorff_params, .nparams = COUNT(hausdorff_params),
     .flags = SL_DEF_DISTANCES | SL_DEF_LOWER, .kernel = SURFACE_KERNEL(sl__surf_hausdorff)},
    {METRIC("assd", "mean of the surface distances of both directions together",
            "MONAI compute_average_surface_distance(symmetric=True) "
            "(monai/metrics/surface_distance.py), MedPy assd; with surfaces surfels DeepMind "
            "compute_average_surface_distance (surface_distance/metrics.py)"),
     .params = assd_params, .nparams = COUNT(assd_params), .flags = SL_DEF_DISTANCES | SL_DEF_LOWER,
     .kernel = SURFACE_KERNEL(sl__surf_assd)},
    {METRIC("nsd", "normalized surface Dice: share of both surfaces within tolerance of the other",
            "Nikolov et al. 2021; MONAI compute_surface_dice with use_subvoxels=False "
            "(monai/metrics/surface_dice.py); DeepMind's surfel form is surface_dice"),
     .params = nsd_params, .nparams = COUNT(nsd_params), .flags = SL_DEF_DISTANCES,
     .kernel = SURFACE_KERNEL(sl__surf_nsd)},
    {METRIC("surface_dice",
            "surface Dice at a tolerance on surfels (marching squares/cubes surface elements on "
            "the corner grid, weighed by their lengths or areas)",
            "DeepMind surface-distance surface_distance/metrics.py "
            "compute_surface_dice_at_tolerance (Nikolov et al. 2018); MONAI compute_surface_dice "
            "with use_subvoxels=True"),
     .params = surface_dice_params, .nparams = COUNT(surface_dice_params),
     .flags = SL_DEF_DISTANCES, .kernel = SURFACE_KERNEL(sl__surf_dice)},
    {METRIC("surface_overlap",
            "share of one surface (by surfel area) within tolerance of the other, in one direction",
            "DeepMind surface-distance surface_distance/metrics.py "
            "compute_surface_overlap_at_tolerance"),
     .params = surface_overlap_params, .nparams = COUNT(surface_overlap_params),
     .flags = SL_DEF_DISTANCES, .kernel = SURFACE_KERNEL(sl__surf_overlap)},
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

/* True when name is a (a row name or alias) written MONAI's way: any case, spaces for
 * underscores. */
static bool alias_matches(const char *a, const char *name)
{
    for (; *a && *name; a++, name++) {
        char c = *name == ' ' ? '_' : *name;
        if (c >= 'A' && c <= 'Z') {
            c = (char)(c - 'A' + 'a');
        }
        if (c != *a) {
            return false;
        }
    }
    return *a == *name;
}

const struct sl_def *sl_find_metric(const char *name)
{
    const struct sl_def *d = find(metric_table, COUNT(metric_table), name);
    for (int i = 0; !d && i < COUNT(metric_table); i++) {
        if (metric_table[i].aliases && alias_matches(metric_table[i].name, name)) {
            d = &metric_table[i];
        }
        for (int k = 0; !d && metric_table[i].aliases && metric_table[i].aliases[k]; k++) {
            if (alias_matches(metric_table[i].aliases[k], name)) {
                d = &metric_table[i];
                break;
            }
        }
    }
    return d;
}

int sl_metric_reduction_of(const struct sl_spec *spec)
{
    int k = sl_param_index(spec->def, "reduction");
    if (k < 0 || spec->def->params[k].choices != metric_reduction_choices ||
        spec->values[k].kind != SL_V_ENUM) {
        return -1;
    }
    return spec->values[k].choice;
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
    /* region reduction "sum": the batch value is the sum of the per-image values */
    int r = sl_param_index(s->def, "reduction");
    if (r >= 0 && s->values[r].kind == SL_V_ENUM && s->values[r].choice == SL_RED_SUM) {
        return SL_COMBINE_SUM;
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
        if (p->type != SL_PT_LIST && p->type != SL_PT_NUMBER_NULL_LIST &&
            p->type != SL_PT_NUMBER_LIST) {
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
    case SL_PT_NUMBER_LIST:
        if (v->kind != SL_V_NUMBER) {
            snprintf(msg, msglen, "%s: must be a number %s%s", path, range,
                     p->type == SL_PT_NUMBER_LIST ? ", or a list of one per class" : "");
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
