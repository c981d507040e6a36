/* table.c - the loss and metric tables: names, parameters (type, default, range), summaries.
 * The wire parser validates against these rows and /v1/catalog lists them; adding a loss is one
 * row here plus its kernel. */
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
    REDUCTION_PARAM,
    CLASS_WEIGHTS_PARAM("multiclass: weight of each class, PyTorch cross_entropy weight= (the mean "
                        "divides by the summed weights); multilabel: weight of each channel"),
    INCLUDE_BG_PARAM("false: multilabel leaves channel 0 out (mean over channels 1..C-1); false "
                     "is a 422 in multiclass, whose softmax CE keeps every class (MONAI "
                     "DiceCELoss); default: the request's include_background, which multiclass "
                     "CE does not follow"),
};
static const struct sl_param_def wce_params[] = {
    {"beta", SL_PT_NUMBER, NUM(1), 0, INFINITY, false, NULL,
     "weight of the positive term (pos_weight)"},
    REDUCTION_PARAM,
    INCLUDE_BG_PARAM(INCLUDE_BG_CHANNELS),
};
static const struct sl_param_def bce_params[] = {
    {"beta", SL_PT_NUMBER_ENUM, CHOICE(SL_BETA_AUTO), 0, 1, false, auto_choices,
     "weight of the positive term, 1-beta of the negative; auto = mean(1-y) over the batch, "
     "auto_per_image = over each image"},
    REDUCTION_PARAM,
    INCLUDE_BG_PARAM(INCLUDE_BG_CHANNELS),
};
static const struct sl_param_def focal_params[] = {
    {"alpha", SL_PT_NUMBER_NULL_LIST, NUM(0.25), 0, 1, false, NULL,
     "binary: weight of the positive term, 1-alpha of the negative; multiclass: weight of every "
     "class, or a list of one per class; null = no weighting"},
    {"gamma", SL_PT_NUMBER, NUM(2), 0, INFINITY, false, NULL, "focusing exponent"},
    REDUCTION_PARAM,
    INCLUDE_BG_PARAM("false: multilabel leaves channel 0 out (mean over channels 1..C-1); "
                     "multiclass takes the softmax over classes 1..C-1, class-0 pixels adding 0 "
                     "(MONAI FocalLoss); default: the request's include_background"),
};
#define REGION_CW_DOC                                                                              \
    "multiclass/multilabel: each class's loss is multiplied by its weight before the mean over "   \
    "classes (MONAI weight=)"

static const struct sl_param_def dice_params[] = {
    SMOOTH_PARAM,
    {"squared", SL_PT_BOOL, BOOLV(false), 0, 0, false, NULL,
     "V-Net denominator sum(p^2) + sum(y^2)"},
    LOG_PARAM,
    PER_IMAGE_PARAM("true: mean of per-image losses; false: sums pooled over the batch first"),
    CLASS_WEIGHTS_PARAM(REGION_CW_DOC),
    INCLUDE_BG_PARAM(INCLUDE_BG_CLASSES),
};
static const struct sl_param_def jaccard_params[] = {
    SMOOTH_PARAM,
    LOG_PARAM,
    PER_IMAGE_PARAM("true: mean of per-image losses; false: sums pooled over the batch first"),
    CLASS_WEIGHTS_PARAM(REGION_CW_DOC),
    INCLUDE_BG_PARAM(INCLUDE_BG_CLASSES),
};
static const struct sl_param_def tversky_params[] = {
    {"beta", SL_PT_NUMBER, ABSENT, 0, 1, false, NULL,
     "one number for both: fp weight beta, fn weight 1-beta (0.5 when no weights are given)"},
    {"fp_weight", SL_PT_NUMBER, ABSENT, 0, INFINITY, false, NULL,
     "weight of false positives (MONAI alpha); give with fn_weight"},
    {"fn_weight", SL_PT_NUMBER, ABSENT, 0, INFINITY, false, NULL,
     "weight of false negatives (MONAI beta); give with fp_weight"},
    {"gamma", SL_PT_NUMBER, NUM(1), 0, INFINITY, true, NULL, "focal Tversky exponent: loss^gamma"},
    SMOOTH_PARAM,
    LOG_PARAM,
    PER_IMAGE_PARAM("true: mean of per-image losses; false: sums pooled over the batch first"),
    CLASS_WEIGHTS_PARAM(REGION_CW_DOC),
    INCLUDE_BG_PARAM(INCLUDE_BG_CLASSES),
};
static const struct sl_param_def lovasz_hinge_params[] = {
    PER_IMAGE_PARAM("true: mean of per-image losses; false: one loss over the flattened batch"),
    INCLUDE_BG_PARAM(INCLUDE_BG_CHANNELS),
};
static const char *const lsm_classes_choices[] = {"present", "all", NULL};
static const struct sl_param_def lovasz_softmax_params[] = {
    {"classes", SL_PT_ENUM, CHOICE(SL_LSM_PRESENT), 0, 0, false, lsm_classes_choices,
     "present: average over the classes present in the target; all: over every class"},
    {"per_image", SL_PT_BOOL, BOOLV(false), 0, 0, false, NULL,
     "true: mean of per-image losses; false: one loss over the flattened batch"},
    INCLUDE_BG_PARAM(INCLUDE_BG_CLASSES),
};
static const struct sl_param_def dwce_params[] = {
    {"w0", SL_PT_NUMBER, NUM(10), 0, INFINITY, false, NULL, "border weight"},
    {"sigma", SL_PT_NUMBER, NUM(5), 0, INFINITY, true, NULL, "border width, in spacing units"},
    {"class_weights", SL_PT_LIST, NULLV, 0, INFINITY, false, NULL,
     "[background, foreground] class weights w_c (default [1, 1])"},
    {"neighbors", SL_PT_INTEGER, NUM(2), 1, 2, false, NULL,
     "2: d1 + d2 as U-Net; 1: d1 only (the one-object variant)"},
    {"connectivity", SL_PT_INTEGER, NUM(0), 0, 26, false, NULL,
     "instances as connected components with 4 or 8 (2-D), 6 or 26 (3-D) neighbours; 0: 8/26"},
    REDUCTION_PARAM,
};
static const struct sl_param_def combo_params[] = {
    {"terms", SL_PT_TERMS, ABSENT, 1, SL_MAX_TERMS, false, NULL,
     "loss specs, each with an optional weight (default 1); the value is the weighted sum"},
    INCLUDE_BG_PARAM("the include_background of every term that does not give its own (MONAI "
                     "DiceCELoss and DiceFocalLoss pass theirs to both terms; multiclass "
                     "cross_entropy keeps every class); default: the request's"),
};

static const struct sl_def loss_table[] = {
    {"cross_entropy", SL_LOSS_CROSS_ENTROPY, ce_params, COUNT(ce_params),
     "-(y log p + (1-y) log(1-p)) per pixel",
     "PyTorch binary_cross_entropy_with_logits (stable form); from probabilities Keras "
     "BinaryCrossentropy, p clipped to [1e-7, 1-1e-7]"},
    {"weighted_cross_entropy", SL_LOSS_WEIGHTED_CE, wce_params, COUNT(wce_params),
     "-(beta y log p + (1-y) log(1-p)) per pixel",
     "TensorFlow weighted_cross_entropy_with_logits, pos_weight = beta"},
    {"balanced_cross_entropy", SL_LOSS_BALANCED_CE, bce_params, COUNT(bce_params),
     "-(beta y log p + (1-beta)(1-y) log(1-p)) per pixel",
     "HED (Xie & Tu 2015) class-balanced cross entropy"},
    {"focal", SL_LOSS_FOCAL, focal_params, COUNT(focal_params),
     "-(alpha (1-p)^gamma y log p + (1-alpha) p^gamma (1-y) log(1-p)) per pixel",
     "Lin et al. 2017; MONAI FocalLoss and smp focal_loss_with_logits"},
    {"dice", SL_LOSS_DICE, dice_params, COUNT(dice_params),
     "1 - (2 tp + smooth) / (sum p + sum y + smooth) per image",
     "MONAI DiceLoss (smooth_nr = smooth_dr = smooth); smp DiceLoss with per_image false"},
    {"jaccard", SL_LOSS_JACCARD, jaccard_params, COUNT(jaccard_params),
     "1 - (tp + smooth) / (tp + fp + fn + smooth) per image", "smp JaccardLoss"},
    {"tversky", SL_LOSS_TVERSKY, tversky_params, COUNT(tversky_params),
     "(1 - (tp + smooth) / (tp + fp_weight fp + fn_weight fn + smooth))^gamma per image",
     "Salehi et al. 2017; MONAI TverskyLoss (alpha = fp weight); focal Tversky as smp"},
    {"lovasz_hinge", SL_LOSS_LOVASZ_HINGE, lovasz_hinge_params, COUNT(lovasz_hinge_params),
     "Lovász extension of the Jaccard loss on hinge errors of the logits",
     "Berman, Triki & Blaschko 2018, reference lovasz_hinge"},
    {"lovasz_softmax", SL_LOSS_LOVASZ_SOFTMAX, lovasz_softmax_params, COUNT(lovasz_softmax_params),
     "Lovász extension of the Jaccard loss per class on softmax probabilities (multiclass)",
     "Berman, Triki & Blaschko 2018, reference lovasz_softmax"},
    {"distance_weighted_cross_entropy", SL_LOSS_DWCE, dwce_params, COUNT(dwce_params),
     "w(x) CE(x) per pixel, w = w_c + w0 exp(-(d1 + d2)^2 / (2 sigma^2)) on background",
     "Ronneberger et al. 2015 (U-Net) border weight map; the map is POST /v1/weight-map"},
    {"combo", SL_LOSS_COMBO, combo_params, COUNT(combo_params),
     "sum of weight * term over its terms, per image and per batch",
     "MONAI DiceCELoss is combo of cross_entropy and dice"},
};

static const struct sl_param_def fbeta_params[] = {
    {"beta", SL_PT_NUMBER, NUM(1), 0, INFINITY, true, NULL, "recall is beta times as important"},
};

static const char *const pooling_choices[] = {"max", "pooled", NULL};
static const char *const nan_choice[] = {"nan", NULL};
#define EMPTY_DISTANCE_PARAM                                                                       \
    {                                                                                              \
        "empty_distance", SL_PT_NUMBER_ENUM, ABSENT, 0, INFINITY, false, nan_choice,               \
            "value when exactly one mask is empty (default: the image diagonal in spacing units; " \
            "\"nan\" reports null)"                                                                \
    }
static const struct sl_param_def hausdorff_params[] = {
    {"percentile", SL_PT_NUMBER, ABSENT, 0, 100, false, NULL,
     "a percentile of the surface distances (95 for HD95; default: the maximum)"},
    {"pooling", SL_PT_ENUM, CHOICE(SL_POOL_MAX), 0, 0, false, pooling_choices,
     "max: the larger of the two directed percentiles (MONAI, Metrics Reloaded); pooled: the "
     "percentile of both directions together (MedPy)"},
    EMPTY_DISTANCE_PARAM,
};
static const struct sl_param_def assd_params[] = {EMPTY_DISTANCE_PARAM};
static const struct sl_param_def nsd_params[] = {
    {"tolerance", SL_PT_NUMBER, NUM(1), 0, INFINITY, false, NULL,
     "surface pixels closer than this (spacing units) to the other surface count as correct"},
};

static const struct sl_def metric_table[] = {
    {"dice", SL_METRIC_DICE, NULL, 0, "2TP / (2TP + FP + FN)", "MONAI DiceMetric"},
    {"iou", SL_METRIC_IOU, NULL, 0, "TP / (TP + FP + FN)", "MONAI MeanIoU"},
    {"precision", SL_METRIC_PRECISION, NULL, 0, "TP / (TP + FP)", NULL},
    {"recall", SL_METRIC_RECALL, NULL, 0, "TP / (TP + FN)", NULL},
    {"specificity", SL_METRIC_SPECIFICITY, NULL, 0, "TN / (TN + FP)", NULL},
    {"accuracy", SL_METRIC_ACCURACY, NULL, 0, "(TP + TN) / (TP + FP + FN + TN)", NULL},
    {"balanced_accuracy", SL_METRIC_BALANCED_ACCURACY, NULL, 0, "(recall + specificity) / 2", NULL},
    {"mcc", SL_METRIC_MCC, NULL, 0, "(TP TN - FP FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN))",
     "Matthews 1975"},
    {"fbeta", SL_METRIC_FBETA, fbeta_params, COUNT(fbeta_params),
     "(1+b^2) TP / ((1+b^2) TP + b^2 FN + FP)", NULL},
    {"confusion", SL_METRIC_CONFUSION, NULL, 0, "TP, FP, FN, TN counts", NULL},
    {"hausdorff", SL_METRIC_HAUSDORFF, hausdorff_params, COUNT(hausdorff_params),
     "symmetric Hausdorff distance between the surfaces (or a percentile of it)",
     "MONAI compute_hausdorff_distance; pooled percentile as MedPy hd95"},
    {"assd", SL_METRIC_ASSD, assd_params, COUNT(assd_params),
     "mean of the surface distances of both directions together",
     "MONAI compute_average_surface_distance(symmetric=True), MedPy assd"},
    {"nsd", SL_METRIC_NSD, nsd_params, COUNT(nsd_params),
     "normalized surface Dice: share of both surfaces within tolerance of the other",
     "Nikolov et al. 2021; MONAI compute_surface_dice"},
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
