/* segloss.h - libsegloss, the math of the segloss scoring service.
 *
 * Tensors in, numbers out: segmentation losses and metrics over a batch of images,
 * computed in one fused pass per image, optionally spread over a worker pool.
 *
 * Ownership, once for the whole library: the caller allocates inputs and keeps them alive
 * for the duration of a call; the library never keeps a caller's pointer after returning.
 * Every sl_*_new() has an sl_*_free() that accepts NULL (so does sl_result_free()).
 *
 * Errors, once for the whole library: a function that can fail returns int, 0 for success or
 * a negative SL_E* code (SL_ERRNO_MAP below; sl_strerror() names it), and never aborts, not
 * even on out-of-memory (SL_ENOMEM). One that makes an object returns NULL on failure. Detail
 * for the user (which key, which index, which limit) goes into the caller's msg buffer of
 * msglen bytes, always terminated, never into a global; on failure an out-pointer is set to
 * NULL. Lookups return NULL or -1 for "not found", which is not an error.
 *
 * The loss and metric tables (sl_loss_table(), sl_metric_table()) are the extension point:
 * a loss or metric is one row of lib/table.c plus its kernel (README "Adding a loss or a
 * metric").
 */
#ifndef SEGLOSS_H
#define SEGLOSS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SL_VERSION "0.1.0"
#define SL_MAX_DIMS 8
#define SL_MAX_PARAMS 16
#define SL_MAX_TERMS 8
#define SL_KEY_MAX 64
/* Classes C a request may have, whatever its max_classes says: per-class state has this size. */
#define SL_MAX_CLASSES 1024

/* ---- errors ----------------------------------------------------------------------------- */

/* X(name, value, text): one table gives the enum, sl_strerror() and sl_errname(). */
#define SL_ERRNO_MAP(X)                                                                            \
    X(OK, 0, "ok")                                                                                 \
    X(ENOMEM, -1, "out of memory")                                                                 \
    X(EINVAL, -2, "invalid request")                                                               \
    X(ESHAPE, -3, "shape mismatch")                                                                \
    X(ERANGE, -4, "value out of range")                                                            \
    X(EUNSUPPORTED, -5, "not supported")                                                           \
    X(EMALFORMED, -6, "malformed input")                                                           \
    X(ESIZE, -7, "wrong byte count")                                                               \
    X(ETOOLARGE, -8, "over a configured limit")                                                    \
    X(EBUSY, -9, "busy")                                                                           \
    X(EINTERNAL, -10, "internal error")

enum sl_errno {
#define SL__ERR_ENUM(name, value, text) SL_##name = (value),
    SL_ERRNO_MAP(SL__ERR_ENUM)
#undef SL__ERR_ENUM
};

/* Returns a static description of code (never NULL). */
const char *sl_strerror(int code);
/* Returns the static name of code without prefix, e.g. "ESHAPE" (never NULL). */
const char *sl_errname(int code);

/* ---- tensors ---------------------------------------------------------------------------- */

#define SL_DTYPE_MAP(X)                                                                            \
    X(BOOL, "bool", 1)                                                                             \
    X(U8, "uint8", 1)                                                                              \
    X(I8, "int8", 1)                                                                               \
    X(U16, "uint16", 2)                                                                            \
    X(I16, "int16", 2)                                                                             \
    X(U32, "uint32", 4)                                                                            \
    X(I32, "int32", 4)                                                                             \
    X(I64, "int64", 8)                                                                             \
    X(F16, "float16", 2)                                                                           \
    X(F32, "float32", 4)                                                                           \
    X(F64, "float64", 8)                                                                           \
    X(BF16, "bfloat16", 2)

enum sl_dtype {
#define SL__DT_ENUM(name, str, size) SL_DT_##name,
    SL_DTYPE_MAP(SL__DT_ENUM)
#undef SL__DT_ENUM
        SL_DT_COUNT
};

/* A borrowed, dense, C-order, little-endian (host order) view of an array. */
struct sl_tensor {
    const void *data;
    enum sl_dtype dtype;
    int ndim;
    int64_t shape[SL_MAX_DIMS];
};

/* Bytes per element of dtype (0 for an invalid dtype). */
size_t sl_dtype_size(enum sl_dtype dtype);
/* Wire name of dtype ("float32"), or NULL for an invalid dtype. */
const char *sl_dtype_name(enum sl_dtype dtype);
/* Looks up a wire name; returns 0 and sets *out, or SL_EINVAL. */
int sl_dtype_from_name(const char *name, enum sl_dtype *out);
/* Number of elements of t (product of its shape; 1 for ndim 0). */
int64_t sl_tensor_numel(const struct sl_tensor *t);
/* Element i of t as a double (float16 and bfloat16 are widened exactly). */
double sl_tensor_get(const struct sl_tensor *t, int64_t i);
/* Converts IEEE half bits to float. */
float sl_half_to_float(uint16_t h);
/* Index of the first NaN or infinite element of t, or -1 (always -1 for integer dtypes). */
int64_t sl_tensor_find_nonfinite(const struct sl_tensor *t);
/* Writes "[a, b, c]" for shape into buf (always terminated). */
void sl_format_shape(const int64_t *shape, int ndim, char *buf, size_t len);

/* ---- parameters and the loss/metric table ------------------------------------------------- */

enum sl_param_type {
    SL_PT_NUMBER,           /* finite number in [min, max] */
    SL_PT_INTEGER,          /* integral number in [min, max] */
    SL_PT_BOOL,             /* true/false */
    SL_PT_ENUM,             /* one of choices */
    SL_PT_NUMBER_NULL,      /* number in [min, max], or null */
    SL_PT_NUMBER_ENUM,      /* number in [min, max], or one of choices */
    SL_PT_TERMS,            /* list of loss specs (combo) */
    SL_PT_LIST,             /* list of numbers in [min, max], one per class, or null */
    SL_PT_NUMBER_NULL_LIST, /* number in [min, max], null, or a list of one per class */
    SL_PT_NUMBER_LIST,      /* number in [min, max], or a list of one per class */
};

/* How a parameter value is held once parsed. */
enum sl_value_kind { SL_V_NUMBER, SL_V_BOOL, SL_V_ENUM, SL_V_NULL, SL_V_ABSENT, SL_V_LIST };

struct sl_value {
    enum sl_value_kind kind;
    double num;         /* SL_V_NUMBER */
    bool b;             /* SL_V_BOOL */
    int choice;         /* SL_V_ENUM: index into the definition's choices */
    const double *list; /* SL_V_LIST: nlist numbers, one per class (borrowed) */
    int nlist;
};

struct sl_param_def {
    const char *name;
    enum sl_param_type type;
    struct sl_value def;        /* default; SL_V_ABSENT = "not given" is meaningful */
    double min, max;            /* inclusive bounds for numbers */
    bool min_open;              /* true: min itself is excluded */
    const char *const *choices; /* NULL-terminated, for ENUM and NUMBER_ENUM */
    const char *doc;
    const char *requires; /* another parameter that must be given with this one, or NULL */
    const char *excludes; /* another parameter that must not be given with this one, or NULL */
};

/* Modes a loss accepts, as bits (1 << enum sl_mode) in sl_def.modes. */
#define SL_MODE_BIT(m) (1u << (m))
#define SL_MODES_ALL                                                                               \
    (SL_MODE_BIT(SL_MODE_BINARY) | SL_MODE_BIT(SL_MODE_MULTICLASS) |                               \
     SL_MODE_BIT(SL_MODE_MULTILABEL))

/* sl_def.flags: what a row is, for the code outside lib/ that must ask. */
enum {
    SL_DEF_DISTANCES = 1, /* needs distance transforms: a surface metric has no batch-summed
                             `global` (distance-weighted CE is a loss with this flag too) */
    SL_DEF_COUNTS = 2,    /* the metric is the confusion counts themselves (and matrix) */
    SL_DEF_TERMS = 4,     /* the loss is a sum of loss terms (combo): no bare name, no nesting */
    SL_DEF_LOWER = 8,     /* a metric whose lower values are better (distances, error rates) */
};

/* How a loss value split over several batches of one data set recombines into the value of
 * one request with every image (proto/agg.c). sl_loss_combine() answers it per spec. */
enum sl_combine {
    SL_COMBINE_PIXEL_MEAN,    /* mean over counted pixels: sum value x pixels / sum pixels */
    SL_COMBINE_WEIGHTED_MEAN, /* multiclass: divided by the class-weighted target pixels
                                 (class_weights, PyTorch cross_entropy); else PIXEL_MEAN */
    SL_COMBINE_SUM,           /* reduction "sum": the batch values add */
    SL_COMBINE_IMAGE_MEAN,    /* the mean of per-image values */
    SL_COMBINE_POOLED,        /* pools the whole batch: cannot be recombined */
    SL_COMBINE_TERMS,         /* the weighted sum of its terms, each recombined */
};

/* A row's entry points inside lib/ (plan, values, mode checks, formula; lib/internal.h). */
struct sl__kernel;

/* One row of the loss or metric table: the parser, /v1/catalog, the docs and the kernels read
 * it. Adding a loss or metric is one row (lib/table.c) plus its kernel functions. */
struct sl_def {
    const char *name;
    const struct sl_param_def *params;
    int nparams;
    const char *summary;    /* one line: what it computes */
    const char *convention; /* the peer convention it follows, with its source */
    unsigned modes;         /* SL_MODE_BIT()s it accepts (metrics: SL_MODES_ALL) */
    const char *mode_hint;  /* what to use instead in the other modes, or NULL */
    unsigned flags;         /* SL_DEF_* */
    const struct sl__kernel *kernel;
    /* other names of the row (NULL-terminated, or NULL): the peer's names for the same value
     * (MONAI ConfusionMatrixMetric's aliases); a spec naming one answers under that name */
    const char *const *aliases;
};

/* The loss table: its rows, *count of them (static, never freed). */
const struct sl_def *sl_loss_table(int *count);
/* The metric table: its rows, *count of them (static, never freed). */
const struct sl_def *sl_metric_table(int *count);
/* The loss row called name, or NULL when there is none. */
const struct sl_def *sl_find_loss(const char *name);
/* The metric row called name or having it as an alias, or NULL when there is none. A row with
 * aliases and its aliases also match with capitals and spaces for underscores ("Hit Rate",
 * "miss rate"), as MONAI's check_confusion_matrix_metric_name accepts; other rows match
 * exactly only. */
const struct sl_def *sl_find_metric(const char *name);
/* Index of the parameter called name in def, or -1. */
int sl_param_index(const struct sl_def *def, const char *name);

/* A parsed loss or metric request: values[i] belongs to def->params[i]. */
struct sl_term;
struct sl_spec {
    const struct sl_def *def;
    char key[SL_KEY_MAX];  /* response key ("as", default the name) */
    char path[SL_KEY_MAX]; /* where the spec stands in the request, for messages */
    struct sl_value values[SL_MAX_PARAMS];
    /* combo only: the terms, each a loss spec with its weight */
    int nterms;
    struct sl_spec *terms; /* array of nterms, owned by whoever built the spec */
    double weight;         /* weight of this spec as a combo term (1 by default) */
};

/* Fills spec with def's defaults (key = name, weight 1, no terms). */
void sl_spec_init(struct sl_spec *spec, const struct sl_def *def);
/* Checks v against p; returns 0, or SL_ERANGE/SL_EINVAL with a message naming path. */
int sl_param_check(const struct sl_param_def *p, const struct sl_value *v, const char *path,
                   char *msg, size_t msglen);
/* How loss spec s recombines over batches (its row's rule applied to its values); for
 * SL_COMBINE_POOLED, *why (when why is not NULL) receives a static reason for the user. */
enum sl_combine sl_loss_combine(const struct sl_spec *s, const char **why);

/* ---- a scoring request ---------------------------------------------------------------------- */

enum sl_mode { SL_MODE_AUTO, SL_MODE_BINARY, SL_MODE_MULTICLASS, SL_MODE_MULTILABEL };
enum sl_pred_type { SL_PRED_LOGITS, SL_PRED_PROBABILITIES, SL_PRED_LABELS };
enum sl_empty { SL_EMPTY_ONE, SL_EMPTY_ZERO, SL_EMPTY_NAN };

/* The wire name of mode m ("binary"), static; "?" for a value outside the enum. */
const char *sl_mode_name(enum sl_mode m);
/* The wire name of prediction type t ("logits"), static; "?" outside the enum. */
const char *sl_pred_type_name(enum sl_pred_type t);
/* The wire name of empty convention e ("one"), static; "?" outside the enum. */
const char *sl_empty_name(enum sl_empty e);

struct sl_request {
    struct sl_tensor prediction;
    struct sl_tensor target;
    struct sl_tensor weight;    /* data == NULL: no weight map */
    struct sl_tensor instances; /* data == NULL: instances are connected components */
    enum sl_mode mode;
    enum sl_pred_type pred_type;
    bool has_ignore;
    int64_t ignore_index;
    double threshold;
    const struct sl_spec *losses;
    int nlosses;
    const struct sl_spec *metrics;
    int nmetrics;
    enum sl_empty empty;
    int nspacing; /* 0: all 1 */
    double spacing[3];
    bool include_background;
    /* Shape limits, 0 = none; over one is SL_ETOOLARGE with a message naming the array and the
     * seglossd flag that sets the limit, since the message is meant for the HTTP client. */
    int64_t max_images;  /* N, dim 0 of prediction (--max-images) */
    int64_t max_classes; /* C of [N, C, *S]; SL_MAX_CLASSES caps it anyway (--max-classes) */
};

/* Fills req with the API defaults (no arrays, no losses, no metrics, no limits). */
void sl_request_init(struct sl_request *req);

/* ---- results -------------------------------------------------------------------------------- */

struct sl_confusion {
    int64_t tp, fp, fn, tn;
};

struct sl_loss_result {
    const struct sl_spec *spec; /* borrowed from the request */
    double value;
    bool has_per_image; /* false when the loss pools the batch (per_image: false) */
    double *per_image;  /* N values */
    /* region losses with reduction "none" (MONAI's unreduced [N, C]), else NULL: each class's
     * loss times its class weight, NaN for a class left out (include_background false) */
    double *per_class;       /* C: the mean over images, or the pooled value */
    double *per_image_class; /* N x C, image-major; NULL when the loss pools the batch */
};

/* Per-class arrays have C entries (1 in binary mode); per-image arrays N x C, image-major.
 * NaN = undefined, reported as null. */
struct sl_metric_result {
    const struct sl_spec *spec;
    double *per_image;           /* N x C values */
    double *per_class;           /* C: mean over images of the defined values */
    double mean;                 /* binary: mean over images; else mean over the counted
                                    classes of per_class; NaN if none is defined */
    double *global;              /* C: from the counts summed over the batch */
    int undefined;               /* how many per-image values are NaN or infinite */
    int infinite;                /* how many of those are +inf (sl_metric_can_be_infinite) */
    struct sl_confusion *counts; /* confusion only: N x C per-image counts */
    struct sl_confusion *total;  /* confusion only: C summed counts */
    int64_t *matrix;             /* confusion, multiclass only: C x C summed counts,
                                    row = target class, column = predicted class */
};

struct sl_result {
    enum sl_mode mode;
    int64_t images;
    int64_t classes;
    int nspatial;
    int64_t spatial[3];
    int nlosses;
    struct sl_loss_result *losses;
    int nmetrics;
    struct sl_metric_result *metrics;
};

/* Frees a result of sl_score() and every array it holds. NULL is fine. */
void sl_result_free(struct sl_result *res);

/* Value of a confusion-matrix metric (dice, iou, precision, recall, specificity, accuracy,
 * balanced_accuracy, mcc, fbeta) from counts c, with e for a zero denominator when prediction
 * and target agree (NaN whenever the target is empty when the spec's ignore_empty is true);
 * the rows following MONAI's ConfusionMatrixMetric (miss_rate ... markedness) are NaN for a
 * zero denominator whatever e says; NaN (undefined) for other metrics. Used by reduce.c per image
 * and for the batch's `global`, and by clients that sum counts over several requests. */
double sl_metric_from_counts(const struct sl_spec *spec, const struct sl_confusion *c,
                             enum sl_empty e);

/* MONAI's MetricReduction (monai/metrics/utils.py do_metric_reduction), the metric parameter
 * `reduction`; the order is the order of its choices in lib/table.c. */
enum sl_metric_reduction {
    SL_MR_MEAN,
    SL_MR_SUM,
    SL_MR_MEAN_BATCH,
    SL_MR_SUM_BATCH,
    SL_MR_MEAN_CHANNEL,
    SL_MR_SUM_CHANNEL,
    SL_MR_NONE,
};

/* The `reduction` metric spec asks for (a value of enum sl_metric_reduction), or -1 when it
 * gives none (or its row has no such parameter). */
int sl_metric_reduction_of(const struct sl_spec *spec);

/* MONAI do_metric_reduction of the n x c values v (image-major, NaN = not defined) into out
 * (caller allocates n * c doubles); returns how many values it wrote: 1 (mean, sum), c
 * (*_batch), n (*_channel) or n * c (none, a copy with its NaNs). NaNs are left out of every
 * sum and count; a mean over no defined value is 0, as MONAI's. `mean` averages each image's
 * defined values first, then the images that have one. */
int64_t sl_metric_reduce(enum sl_metric_reduction r, const double *v, int64_t n, int64_t c,
                         double *out);

/* Whether metric spec can give +inf per-image values (a surface distance under the MONAI or
 * DeepMind empty rule): its response entry then carries `infinite`. */
bool sl_metric_can_be_infinite(const struct sl_spec *spec);

/* ---- the worker pool ---------------------------------------------------------------------- */

struct sl_pool;

/* Starts nthreads workers (0: one per online core) serving a queue of at most queue_cap jobs.
 * Returns NULL on failure. */
struct sl_pool *sl_pool_new(int nthreads, int queue_cap);
/* Stops accepting, lets the workers finish every queued job, joins them, frees. NULL is fine. */
void sl_pool_free(struct sl_pool *pool);
/* Number of worker threads. */
int sl_pool_threads(const struct sl_pool *pool);
/* Queues fn(arg) on a worker; returns 0, or SL_EBUSY when the queue is full (fn not called). */
int sl_pool_submit(struct sl_pool *pool, void (*fn)(void *), void *arg);
/* Jobs queued but not started, and jobs running. */
void sl_pool_load(struct sl_pool *pool, int *queued, int *running);
/* Runs fn(arg, i) for i in [0, n) on the caller and on idle workers; returns when all are done.
 * pool may be NULL (runs serially on the caller). */
void sl_pool_parallel_for(struct sl_pool *pool, int64_t n, void (*fn)(void *, int64_t), void *arg);

/* ---- U-Net weight maps ------------------------------------------------------------------- */

/* Parameters of the U-Net border weight map (Ronneberger et al. 2015), POST /v1/weight-map. */
struct sl_weight_map_params {
    double w0;               /* border weight (10) */
    double sigma;            /* border width (5), in spacing units */
    double class_weights[2]; /* w_c for background and foreground ([1, 1]) */
    int neighbors;           /* 2: d1 + d2 (U-Net); 1: d1 only */
    int connectivity;        /* 4 or 8 in 2-D, 6 or 26 in 3-D; 0: 8 / 26 */
    int nspacing;            /* 0: all 1 */
    double spacing[3];
    int64_t max_images; /* N of target; 0 = no limit; over it is SL_ETOOLARGE (--max-images) */
};

/* Fills p with the defaults of POST /v1/weight-map (no image limit). */
void sl_weight_map_params_init(struct sl_weight_map_params *p);

/* The weight map w of a binary target batch [N, *S] or [N, 1, *S] (2 or 3 spatial dims):
 * w = w_c + w0 exp(-(d1 + d2)^2 / (2 sigma^2)) on background pixels, w_c on foreground, with
 * d1, d2 the distances to the nearest and second-nearest instance. Instances are the connected
 * components of the foreground, or the positive labels of `instances` (same shape as target,
 * 0 = background; data NULL: none given). out receives N x S floats (caller allocates).
 * pool may be NULL. Returns 0 or a negative code with a message. */
int sl_weight_map(const struct sl_tensor *target, const struct sl_tensor *instances,
                  const struct sl_weight_map_params *p, struct sl_pool *pool, float *out, char *msg,
                  size_t msglen);

/* ---- scoring ------------------------------------------------------------------------------- */

/* Validates req (shapes, labels, ranges), computes every loss and metric, and returns a new
 * result in *out (free with sl_result_free). pool may be NULL. On error returns a negative code,
 * writes a message naming the key or index into msg, and sets *out = NULL. */
int sl_score(const struct sl_request *req, struct sl_pool *pool, struct sl_result **out, char *msg,
             size_t msglen);

#ifdef __cplusplus
}
#endif

#endif /* SEGLOSS_H */
