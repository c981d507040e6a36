/* test_confusion.c - the confusion-matrix family of MONAI's ConfusionMatrixMetric, its aliases,
 * MONAI's ignore_empty (DiceMetric, MeanIoU), scikit-learn's zero_division and MONAI's metric
 * reductions (`reduction`, answered as `reduced`).
 *
 * Expected values come from outside the code: hand calculations written here with the formula
 * of MONAI monai/metrics/confusion_matrix.py compute_confusion_matrix_metric, and the literal
 * inputs and expected values of MONAI's own tests (tests/metrics/test_compute_confusion_matrix.py,
 * tests/metrics/test_compute_meaniou.py), which it checks with atol = rtol = 1e-4.
 *
 * MONAI do_metric_reduction (monai/metrics/utils.py), the rule `reduced` follows, on the
 * per-image values f [N, C] with NaN where undefined: not_nans = !isnan(f); f[nan] = 0;
 *   mean:         m_i = sum_c f[i,c] / not_nans_i (0 if none), then sum_i m_i / #{i: not_nans_i >
 * 0} (0 if no image has one): over channels first, then over the batch; sum:          sum of all f;
 *   mean_batch:   per class c, sum_i f[i,c] / not_nans_c (0 if none); sum_batch: sum_i f[i,c];
 *   mean_channel: per image i, sum_c f[i,c] / not_nans_i (0 if none); sum_channel: sum_c f[i,c];
 *   none:         f itself, NaN kept (null in JSON).
 * segloss's own `mean` is the mean over the counted classes of per_class, each the mean over
 * images of the defined values: the two differ when values are undefined (test_worked_mean). */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "../spec_util.h"
#include "proto.h"
#include "segloss.h"

#define TOL 1e-4 /* MONAI's tests: atol = rtol = 1e-4 on 4-decimal expectations */

/* The value of metric name (with the default parameters) on counts tp, fp, fn, tn. */
static double value(const char *name, int64_t tp, int64_t fp, int64_t fn, int64_t tn,
                    enum sl_empty e)
{
    struct sl_spec s = metric(name);
    struct sl_confusion c = {tp, fp, fn, tn};
    return sl_metric_from_counts(&s, &c, e);
}

/* TP 3, FP 1, FN 2, TN 4: TPR = 3/5, TNR = 4/5, PPV = 3/4, NPV = 4/6, and MONAI's formulas. */
static void test_formulas(void)
{
    const double tpr = 0.6, tnr = 0.8, ppv = 0.75, npv = 4.0 / 6;
    struct {
        const char *name;
        double want;
    } rows[] = {
        {"miss_rate", 2.0 / 5},            /* FN / P */
        {"fall_out", 1.0 / 5},             /* FP / N */
        {"false_discovery_rate", 1.0 / 4}, /* FP / (FP + TP) */
        {"false_omission_rate", 2.0 / 6},  /* FN / (FN + TN) */
        /* (sqrt(TPR (1 - TNR)) + TNR - 1) / (TPR + TNR - 1) = (sqrt(0.12) - 0.2) / 0.4 */
        {"prevalence_threshold", (sqrt(tpr * (1 - tnr)) + tnr - 1) / (tpr + tnr - 1)},
        {"threat_score", 3.0 / 6},             /* TP / (TP + FN + FP) */
        {"f1_score", 6.0 / 9},                 /* 2TP / (2TP + FN + FP) */
        {"fowlkes_mallows_index", sqrt(0.45)}, /* sqrt(PPV TPR) */
        {"informedness", tpr + tnr - 1},
        {"markedness", ppv + npv - 1},
        {"recall", tpr},
        {"specificity", tnr},
        {"precision", ppv},
        {"npv", npv},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        CHECK(sl_find_metric(rows[i].name) != NULL);
        if (sl_find_metric(rows[i].name)) {
            CHECK_CLOSE(value(rows[i].name, 3, 1, 2, 4, SL_EMPTY_ONE), rows[i].want, 1e-12, 1e-12);
        }
    }
    CHECK_CLOSE(value("prevalence_threshold", 3, 1, 2, 4, SL_EMPTY_ONE), 0.36602540378443865, 1e-12,
                0);
}

/* Both masks empty (TN 4 only): MONAI's formulas are NaN wherever a denominator is 0, whatever
 * `empty` says; FP / N and FN / (FN + TN) are 0 / 4. */
static void test_zero_denominator(void)
{
    const char *nan_rows[] = {
        "miss_rate", "false_discovery_rate",  "prevalence_threshold", "threat_score",
        "f1_score",  "fowlkes_mallows_index", "informedness",         "markedness"};
    for (size_t i = 0; i < sizeof nan_rows / sizeof nan_rows[0]; i++) {
        CHECK(isnan(value(nan_rows[i], 0, 0, 0, 4, SL_EMPTY_ONE)));
        CHECK(isnan(value(nan_rows[i], 0, 0, 0, 4, SL_EMPTY_ZERO)));
    }
    CHECK_CLOSE(value("fall_out", 0, 0, 0, 4, SL_EMPTY_ONE), 0, 0, 0);
    CHECK_CLOSE(value("false_omission_rate", 0, 0, 0, 4, SL_EMPTY_ONE), 0, 0, 0);
    /* target empty, prediction not (FP 2, TN 2): P = 0, so TPR-based values are NaN */
    CHECK(isnan(value("miss_rate", 0, 2, 0, 2, SL_EMPTY_ONE)));
    CHECK_CLOSE(value("fall_out", 0, 2, 0, 2, SL_EMPTY_ONE), 0.5, 0, 1e-15);
    CHECK_CLOSE(value("threat_score", 0, 2, 0, 2, SL_EMPTY_ONE), 0, 0, 0);
    /* segloss's own rows keep their `empty` rule: empty on empty is perfect, else 0 */
    CHECK_CLOSE(value("recall", 0, 0, 0, 4, SL_EMPTY_ONE), 1, 0, 0);
    CHECK_CLOSE(value("recall", 0, 2, 0, 2, SL_EMPTY_ONE), 0, 0, 0);
    CHECK(isnan(value("recall", 0, 0, 0, 4, SL_EMPTY_NAN)));
}

/* MONAI check_confusion_matrix_metric_name: each name and alias, and its spaces and capitals. */
static void test_aliases(void)
{
    struct {
        const char *alias, *row;
    } a[] = {
        {"sensitivity", "recall"},
        {"hit_rate", "recall"},
        {"true_positive_rate", "recall"},
        {"tpr", "recall"},
        {"Hit Rate", "recall"},
        {"selectivity", "specificity"},
        {"true_negative_rate", "specificity"},
        {"tnr", "specificity"},
        {"positive_predictive_value", "precision"},
        {"ppv", "precision"},
        {"negative_predictive_value", "npv"},
        {"miss rate", "miss_rate"},
        {"false_negative_rate", "miss_rate"},
        {"fnr", "miss_rate"},
        {"fall out", "fall_out"},
        {"false_positive_rate", "fall_out"},
        {"fpr", "fall_out"},
        {"fdr", "false_discovery_rate"},
        {"for", "false_omission_rate"},
        {"pt", "prevalence_threshold"},
        {"critical_success_index", "threat_score"},
        {"ts", "threat_score"},
        {"csi", "threat_score"},
        {"acc", "accuracy"},
        {"ba", "balanced_accuracy"},
        {"f1", "f1_score"},
        {"F1 Score", "f1_score"},
        {"matthews_correlation_coefficient", "mcc"},
        {"fm", "fowlkes_mallows_index"},
        {"bookmaker_informedness", "informedness"},
        {"bm", "informedness"},
        {"youden_index", "informedness"},
        {"youden", "informedness"},
        {"deltap", "markedness"},
        {"mk", "markedness"},
    };
    for (size_t i = 0; i < sizeof a / sizeof a[0]; i++) {
        const struct sl_def *d = sl_find_metric(a[i].alias);
        CHECK(d != NULL && strcmp(d->name, a[i].row) == 0);
        if (!d || strcmp(d->name, a[i].row) != 0) {
            fprintf(stderr, "  alias %s: want row %s\n", a[i].alias, a[i].row);
        }
    }
    /* row names match exactly only, as before */
    CHECK(sl_find_metric("Dice") == NULL);
    CHECK(sl_find_metric("hit_rat") == NULL);
    CHECK(sl_find_metric("hit_rates") == NULL);
    CHECK(sl_find_metric("") == NULL);
}

/* ignore_empty (MONAI compute_iou / DiceHelper): NaN whenever the target is empty, even with a
 * non-empty prediction; false: 1 when both are empty, 0 when only the prediction is not. */
static void test_ignore_empty(void)
{
    const char *rows[] = {"dice", "iou"};
    for (int r = 0; r < 2; r++) {
        struct sl_spec s = metric(rows[r]);
        struct sl_confusion both_empty = {0, 0, 0, 4}, pred_only = {0, 2, 0, 2};
        struct sl_confusion hit = {1, 0, 1, 2}; /* dice 2/3, iou 1/2 */
        const double want_hit = r == 0 ? 2.0 / 3 : 0.5;
        CHECK_CLOSE(sl_metric_from_counts(&s, &both_empty, SL_EMPTY_ONE), 1, 0, 0);
        CHECK_CLOSE(sl_metric_from_counts(&s, &pred_only, SL_EMPTY_ONE), 0, 0, 0);
        CHECK_CLOSE(sl_metric_from_counts(&s, &hit, SL_EMPTY_ONE), want_hit, 1e-12, 0);
        set_bool(&s, "ignore_empty", true);
        CHECK(isnan(sl_metric_from_counts(&s, &both_empty, SL_EMPTY_ONE)));
        CHECK(isnan(sl_metric_from_counts(&s, &pred_only, SL_EMPTY_ONE)));
        CHECK_CLOSE(sl_metric_from_counts(&s, &hit, SL_EMPTY_ONE), want_hit, 1e-12, 0);
    }
    /* only dice and iou have it (MONAI ConfusionMatrixMetric has no ignore_empty) */
    CHECK(sl_param_index(sl_find_metric("recall"), "ignore_empty") < 0);
    CHECK(sl_param_index(sl_find_metric("f1_score"), "ignore_empty") < 0);
}

/* zero_division (scikit-learn): one value for every zero denominator; "nan" is MONAI's. */
static void test_zero_division(void)
{
    struct sl_spec s = metric("recall");
    struct sl_confusion pred_only = {0, 2, 0, 2}, both_empty = {0, 0, 0, 4};
    int k = sl_param_index(s.def, "zero_division");
    CHECK(k >= 0);
    s.values[k] = (struct sl_value){.kind = SL_V_ENUM, .choice = 0}; /* "nan" */
    CHECK(isnan(sl_metric_from_counts(&s, &pred_only, SL_EMPTY_ONE)));
    CHECK(isnan(sl_metric_from_counts(&s, &both_empty, SL_EMPTY_ONE)));
    set_num(&s, "zero_division", 1);
    CHECK_CLOSE(sl_metric_from_counts(&s, &pred_only, SL_EMPTY_ZERO), 1, 0, 0);
    /* precision with an empty prediction and a non-empty target: TP + FP = 0 */
    struct sl_spec p = metric("precision");
    struct sl_confusion missed = {0, 0, 3, 1};
    CHECK_CLOSE(sl_metric_from_counts(&p, &missed, SL_EMPTY_ONE), 0, 0, 0);
    set_num(&p, "zero_division", 0.5);
    CHECK_CLOSE(sl_metric_from_counts(&p, &missed, SL_EMPTY_ONE), 0.5, 0, 0);
    /* balanced accuracy: TPR = 0 / 0 and TNR = 2 / 4 */
    struct sl_spec b = metric("balanced_accuracy");
    int kb = sl_param_index(b.def, "zero_division");
    b.values[kb] = (struct sl_value){.kind = SL_V_ENUM, .choice = 0};
    CHECK(isnan(sl_metric_from_counts(&b, &pred_only, SL_EMPTY_ONE)));
}

/* do_metric_reduction on a hand example (N 3, C 2):
 *   [[0.2, nan], [nan, nan], [1.0, 0.6]]
 * mean: image means 0.2, (none), 0.8 -> (0.2 + 0.8) / 2 = 0.5; sum 1.8;
 * mean_batch: [(0.2 + 1.0) / 2, 0.6 / 1] = [0.6, 0.6]; sum_batch [1.2, 0.6];
 * mean_channel: [0.2, 0 (none defined), 0.8]; sum_channel [0.2, 0, 1.6]. */
static void test_reduce(void)
{
    const double v[6] = {0.2, NAN, NAN, NAN, 1.0, 0.6};
    double out[6];
    CHECK_INT(sl_metric_reduce(SL_MR_MEAN, v, 3, 2, out), 1);
    CHECK_CLOSE(out[0], 0.5, 1e-12, 0);
    CHECK_INT(sl_metric_reduce(SL_MR_SUM, v, 3, 2, out), 1);
    CHECK_CLOSE(out[0], 1.8, 1e-12, 0);
    CHECK_INT(sl_metric_reduce(SL_MR_MEAN_BATCH, v, 3, 2, out), 2);
    CHECK_CLOSE(out[0], 0.6, 1e-12, 0);
    CHECK_CLOSE(out[1], 0.6, 1e-12, 0);
    CHECK_INT(sl_metric_reduce(SL_MR_SUM_BATCH, v, 3, 2, out), 2);
    CHECK_CLOSE(out[0], 1.2, 1e-12, 0);
    CHECK_CLOSE(out[1], 0.6, 1e-12, 0);
    CHECK_INT(sl_metric_reduce(SL_MR_MEAN_CHANNEL, v, 3, 2, out), 3);
    CHECK_CLOSE(out[0], 0.2, 1e-12, 0);
    CHECK_CLOSE(out[1], 0, 0, 0);
    CHECK_CLOSE(out[2], 0.8, 1e-12, 0);
    CHECK_INT(sl_metric_reduce(SL_MR_SUM_CHANNEL, v, 3, 2, out), 3);
    CHECK_CLOSE(out[0], 0.2, 1e-12, 0);
    CHECK_CLOSE(out[1], 0, 0, 0);
    CHECK_CLOSE(out[2], 1.6, 1e-12, 0);
    CHECK_INT(sl_metric_reduce(SL_MR_NONE, v, 3, 2, out), 6);
    CHECK(out[0] == 0.2 && isnan(out[1]) && isnan(out[3]) && out[5] == 0.6);
    /* nothing defined: MONAI's means and sums are 0 */
    const double all_nan[2] = {NAN, NAN};
    CHECK_INT(sl_metric_reduce(SL_MR_MEAN, all_nan, 1, 2, out), 1);
    CHECK_CLOSE(out[0], 0, 0, 0);
}

/* ---- through POST /v1/score's JSON ---- */

/* Runs body; returns the status and the parsed answer in *out (caller decrefs). */
static int run(const char *body, json_t **out)
{
    struct slp_limits lim;
    struct slp_response r;
    slp_limits_default(&lim);
    slp_score_request(body, strlen(body), &lim, NULL, &r);
    *out = json_loadb(r.body, r.len, 0, NULL);
    int status = r.status;
    if (status != 200) {
        fprintf(stderr, "  answer %d: %.*s\n", status, (int)r.len, r.body);
    }
    slp_response_free(&r);
    return status;
}

/* answer.metrics[key] */
static json_t *entry(json_t *answer, const char *key)
{
    return json_object_get(json_object_get(answer, "metrics"), key);
}

/* The n numbers of JSON list l are want[0..n) within MONAI's tolerance. */
static void check_list(json_t *l, const double *want, size_t n, const char *where)
{
    CHECK(json_array_size(l) == n);
    for (size_t i = 0; i < n && i < json_array_size(l); i++) {
        json_t *x = json_array_get(l, i);
        CHECK(json_is_number(x));
        double g = json_number_value(x);
        CHECK_CLOSE(g, want[i], TOL, TOL);
        if (!(fabs(g - want[i]) <= TOL + TOL * fabs(want[i]))) {
            fprintf(stderr, "  %s[%zu]\n", where, i);
        }
    }
}

/* MONAI test_compute_confusion_matrix.py `data` (y_pred, y: [2, 3, 2, 2] one-hot, multilabel
 * here with probabilities 0/1 and threshold 0.5), compute_sample=True, include_background=True. */
#define MONAI_DATA                                                                                 \
    "\"mode\": \"multilabel\", \"prediction_type\": \"probabilities\", \"prediction\": "           \
    "[[[[0, 1], [0, 0]], [[0, 0], [1, 1]], [[1, 0], [0, 0]]],"                                     \
    " [[[0, 0], [0, 1]], [[1, 0], [0, 0]], [[0, 1], [1, 0]]]], \"target\": "                       \
    "[[[[0, 0], [0, 1]], [[1, 0], [1, 0]], [[0, 1], [0, 0]]],"                                     \
    " [[[0, 0], [0, 1]], [[1, 1], [0, 0]], [[0, 0], [1, 0]]]]"

/* Every MONAI metric name of that test, by its MONAI short name, with its result_mean and
 * result_mean_batch: `reduced` of "mean" and "mean_batch". MONAI's own tpr, tnr, ... have no
 * zero denominator on this data, so segloss's rows (recall ...) answer the same. */
static void test_monai_confusion_suite(void)
{
    static const struct {
        const char *name;
        double mean, batch[3];
    } m[] = {
        {"tpr", 0.5000, {0.5000, 0.5000, 0.5000}}, {"fpr", 0.2500, {0.1667, 0.2500, 0.3333}},
        {"tnr", 0.7500, {0.8333, 0.7500, 0.6667}}, {"ppv", 0.5000, {0.5000, 0.7500, 0.2500}},
        {"npv", 0.7500, {0.8333, 0.5833, 0.8333}}, {"fnr", 0.5000, {0.5000, 0.5000, 0.5000}},
        {"fdr", 0.5000, {0.5000, 0.2500, 0.7500}}, {"for", 0.2500, {0.1667, 0.4167, 0.1667}},
        {"pt", 0.5610, {0.5000, 0.0000, 0.6830}},  {"ts", 0.3889, {0.5000, 0.4167, 0.2500}},
        {"acc", 0.6667, {0.7500, 0.6250, 0.6250}}, {"ba", 0.6250, {0.6667, 0.6250, 0.5833}},
        {"f1", 0.4722, {0.5000, 0.5833, 0.3333}},  {"mcc", 0.2480, {0.3333, 0.2887, 0.1220}},
        {"fm", 0.4857, {0.5000, 0.6036, 0.3536}},  {"bm", 0.2500, {0.3333, 0.2500, 0.1667}},
        {"mk", 0.2500, {0.3333, 0.3333, 0.0833}},
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        char body[2048];
        snprintf(body, sizeof body,
                 "{" MONAI_DATA ", \"metrics\": [{\"name\": \"%s\", \"reduction\": \"mean\"},"
                 " {\"name\": \"%s\", \"as\": \"b\", \"reduction\": \"mean_batch\"}]}",
                 m[i].name, m[i].name);
        json_t *j;
        CHECK_INT(run(body, &j), 200);
        json_t *mean = json_object_get(entry(j, m[i].name), "reduced");
        CHECK(json_is_number(mean));
        CHECK_CLOSE(json_number_value(mean), m[i].mean, TOL, TOL);
        check_list(json_object_get(entry(j, "b"), "reduced"), m[i].batch, 3, m[i].name);
        json_decref(j);
    }
}

/* MONAI test_compute_confusion_matrix.py `data_nan` (N 3): tpr and tnr with zero denominators,
 * compute_sample=True: sum 0.5 / 4.8333, sum_batch [0, 0.5, 0] / [1.6667, 2.5, 0.6667]. MONAI's
 * NaN for a zero denominator is zero_division "nan" on segloss's recall and specificity. */
static void test_monai_confusion_nan(void)
{
    const char *body =
        "{\"mode\": \"multilabel\", \"prediction_type\": \"probabilities\", \"prediction\": "
        "[[[[0, 1], [0, 0]], [[0, 0], [1, 1]], [[1, 0], [0, 0]]],"
        " [[[0, 0], [0, 0]], [[0, 0], [0, 0]], [[1, 1], [1, 1]]],"
        " [[[0, 0], [0, 0]], [[0, 0], [0, 0]], [[1, 1], [1, 1]]]], \"target\": "
        "[[[[0, 0], [0, 1]], [[1, 0], [1, 0]], [[0, 1], [0, 0]]],"
        " [[[1, 1], [1, 1]], [[0, 0], [0, 0]], [[0, 0], [0, 0]]],"
        " [[[0, 1], [1, 0]], [[1, 0], [0, 1]], [[0, 0], [0, 0]]]], \"metrics\": ["
        "{\"name\": \"tpr\", \"zero_division\": \"nan\", \"reduction\": \"sum\"},"
        "{\"name\": \"tpr\", \"as\": \"tpr_b\", \"zero_division\": \"nan\", \"reduction\": "
        "\"sum_batch\"},"
        "{\"name\": \"tnr\", \"zero_division\": \"nan\", \"reduction\": \"sum\"},"
        "{\"name\": \"tnr\", \"as\": \"tnr_b\", \"zero_division\": \"nan\", \"reduction\": "
        "\"sum_batch\"},"
        "{\"name\": \"sensitivity\", \"reduction\": \"sum\"}]}";
    json_t *j;
    CHECK_INT(run(body, &j), 200);
    CHECK_CLOSE(json_number_value(json_object_get(entry(j, "tpr"), "reduced")), 0.5, TOL, TOL);
    CHECK_CLOSE(json_number_value(json_object_get(entry(j, "tnr"), "reduced")), 4.8333, TOL, TOL);
    const double tpr_b[3] = {0, 0.5, 0}, tnr_b[3] = {1.6667, 2.5, 0.6667};
    check_list(json_object_get(entry(j, "tpr_b"), "reduced"), tpr_b, 3, "tpr_b");
    check_list(json_object_get(entry(j, "tnr_b"), "reduced"), tnr_b, 3, "tnr_b");
    /* MONAI's not_nans: 9 - 6 = 3 undefined TPR values, 9 - 8 = 1 TNR */
    CHECK_INT(json_integer_value(json_object_get(entry(j, "tpr"), "undefined")), 3);
    CHECK_INT(json_integer_value(json_object_get(entry(j, "tnr"), "undefined")), 1);
    /* without zero_division, recall keeps segloss's rule: image 1 class 1 has both masks
     * empty (`empty` "one": 1); image 1 class 2 and image 2 class 2 only a prediction (0):
     * 0.5 + 1 = 1.5, nothing undefined */
    CHECK_CLOSE(json_number_value(json_object_get(entry(j, "sensitivity"), "reduced")), 1.5, 0,
                1e-12);
    CHECK_INT(json_integer_value(json_object_get(entry(j, "sensitivity"), "undefined")), 0);
    json_decref(j);
}

/* MONAI test_compute_meaniou.py TEST_CASE_4 / 5 (MeanIoU, ignore_empty True by default,
 * include_background True): mean_batch [0.5416, 0.25, 0.5], mean 0.5555; TEST_CASE_3's NaN
 * pattern; TEST_CASE_7 mean 0.75; TEST_CASE_8 (include_background False) sum_batch [0, 0]. */
#define IOU_PRED                                                                                   \
    "[[[[1, 1], [1, 0]], [[0, 1], [0, 0]], [[0, 1], [1, 1]]],"                                     \
    " [[[1, 0], [1, 1]], [[0, 1], [1, 1]], [[0, 1], [1, 0]]]]"
static void test_monai_meaniou(void)
{
    const char *body4 =
        "{\"mode\": \"multilabel\", \"prediction_type\": \"probabilities\", "
        "\"prediction\": " IOU_PRED
        ", \"target\": [[[[1, 1], [1, 1]], [[0, 0], [0, 0]], [[0, 0], [0, 0]]],"
        " [[[0, 0], [0, 1]], [[1, 1], [0, 0]], [[0, 0], [1, 0]]]], \"metrics\": ["
        "{\"name\": \"iou\", \"ignore_empty\": true, \"reduction\": \"mean_batch\"},"
        "{\"name\": \"iou\", \"as\": \"m\", \"ignore_empty\": true, \"reduction\": \"mean\"},"
        "{\"name\": \"iou\", \"as\": \"plain\", \"reduction\": \"mean\"}]}";
    json_t *j;
    CHECK_INT(run(body4, &j), 200);
    const double want4[3] = {0.5416, 0.25, 0.5};
    check_list(json_object_get(entry(j, "iou"), "reduced"), want4, 3, "iou mean_batch");
    CHECK_CLOSE(json_number_value(json_object_get(entry(j, "m"), "reduced")), 0.5555, TOL, TOL);
    /* image 0 has an empty target in classes 1 and 2 */
    CHECK_INT(json_integer_value(json_object_get(entry(j, "m"), "undefined")), 2);
    CHECK(json_is_null(
        json_array_get(json_array_get(json_object_get(entry(j, "m"), "per_image"), 0), 1)));
    /* without ignore_empty those two are 0 (a prediction on an empty target): image 0
     * [0.75, 0, 0], image 1 [1/3, 1/4, 1/2] -> (0.25 + 13/36) / 2 */
    CHECK_CLOSE(json_number_value(json_object_get(entry(j, "plain"), "reduced")),
                (0.25 + 13.0 / 36) / 2, 1e-12, 0);
    CHECK_INT(json_integer_value(json_object_get(entry(j, "plain"), "undefined")), 0);
    json_decref(j);

    const char *body7 =
        "{\"mode\": \"multilabel\", \"prediction_type\": \"probabilities\", "
        "\"prediction\": " IOU_PRED
        ", \"target\": [[[[1, 1], [1, 1]], [[0, 0], [0, 0]], [[0, 0], [0, 0]]],"
        " [[[1, 1], [1, 1]], [[0, 0], [0, 0]], [[0, 0], [0, 0]]]], \"metrics\": ["
        "{\"name\": \"iou\", \"ignore_empty\": true, \"reduction\": \"mean\"},"
        "{\"name\": \"iou\", \"as\": \"nobg\", \"ignore_empty\": true, \"reduction\": "
        "\"sum_batch\"}]}";
    CHECK_INT(run(body7, &j), 200);
    CHECK_CLOSE(json_number_value(json_object_get(entry(j, "iou"), "reduced")), 0.75, TOL, TOL);
    json_decref(j);
    /* TEST_CASE_8: include_background false leaves channel 0 out: a list of 2 */
    char body8[2048];
    snprintf(body8, sizeof body8, "%.*s, \"include_background\": false}", (int)(strlen(body7) - 1),
             body7);
    CHECK_INT(run(body8, &j), 200);
    const double want8[2] = {0, 0};
    check_list(json_object_get(entry(j, "nobg"), "reduced"), want8, 2, "iou sum_batch nobg");
    json_decref(j);
}

/* segloss's `mean` and MONAI's `mean` reduction differ when values are undefined. Multiclass,
 * 3 images of 1 x 2 pixels, classes 0..2 (prediction one-hot of the labels shown), dice with
 * ignore_empty, include_background false (classes 1 and 2 count):
 *   image 0: target [1, 1], prediction [1, 2]: class 1 2*1/(2+1) = 2/3, class 2 target empty: null
 *   image 1: target [2, 2], prediction [2, 0]: class 1 null, class 2 2/3
 *   image 2: target [1, 2], prediction [1, 1]: class 1 2*1/(1+2) = 2/3, class 2 0
 * segloss: per_class = [-, (2/3 + 2/3) / 2, (2/3 + 0) / 2] = [-, 2/3, 1/3], mean = 1/2;
 * MONAI mean: image means 2/3, 2/3, 1/3 -> 5/9. */
static void test_worked_mean(void)
{
    const char *body =
        "{\"mode\": \"multiclass\", \"prediction_type\": \"probabilities\","
        " \"include_background\": false,"
        " \"prediction\": [[[[0, 0]], [[1, 0]], [[0, 1]]], [[[0, 1]], [[0, 0]], [[1, 0]]],"
        " [[[0, 0]], [[1, 1]], [[0, 0]]]],"
        " \"target\": [[[1, 1]], [[2, 2]], [[1, 2]]],"
        " \"metrics\": [{\"name\": \"dice\", \"ignore_empty\": true, \"reduction\": \"mean\"},"
        " {\"name\": \"dice\", \"as\": \"none\", \"ignore_empty\": true, \"reduction\": "
        "\"none\"}]}";
    json_t *j;
    CHECK_INT(run(body, &j), 200);
    CHECK_CLOSE(json_number_value(json_object_get(entry(j, "dice"), "mean")), 0.5, 1e-12, 0);
    CHECK_CLOSE(json_number_value(json_object_get(entry(j, "dice"), "reduced")), 5.0 / 9, 1e-12, 0);
    /* none: N lists of the 2 counted classes, null where undefined */
    json_t *none = json_object_get(entry(j, "none"), "reduced");
    CHECK(json_array_size(none) == 3 && json_array_size(json_array_get(none, 0)) == 2);
    CHECK(json_is_null(json_array_get(json_array_get(none, 0), 1)));
    CHECK(json_is_null(json_array_get(json_array_get(none, 1), 0)));
    CHECK_CLOSE(json_number_value(json_array_get(json_array_get(none, 1), 1)), 2.0 / 3, 1e-12, 0);
    CHECK_CLOSE(json_number_value(json_array_get(json_array_get(none, 2), 1)), 0, 0, 0);
    json_decref(j);
}

/* The response key is the name as written; an alias takes its row's parameters; errors name
 * the key. */
static void test_keys_and_errors(void)
{
    const char *body = "{\"mode\": \"binary\", \"prediction\": [[[5, -5], [-5, -5]]],"
                       " \"target\": [[[1, 0], [1, 0]]],"
                       " \"metrics\": [\"Hit Rate\", \"recall\", {\"name\": \"fnr\"}, "
                       "{\"name\": \"youden\", \"reduction\": \"sum_channel\"}]}";
    json_t *j;
    CHECK_INT(run(body, &j), 200);
    /* TP 1, FN 1, FP 0, TN 2: recall 1/2, miss rate 1/2, informedness 1/2 + 1 - 1 */
    CHECK_CLOSE(json_number_value(json_object_get(entry(j, "Hit Rate"), "mean")), 0.5, 0, 1e-15);
    CHECK_CLOSE(json_number_value(json_object_get(entry(j, "recall"), "mean")), 0.5, 0, 1e-15);
    CHECK_CLOSE(json_number_value(json_object_get(entry(j, "fnr"), "global")), 0.5, 0, 1e-15);
    CHECK(json_object_get(entry(j, "recall"), "reduced") == NULL);
    const double want[1] = {0.5};
    check_list(json_object_get(entry(j, "youden"), "reduced"), want, 1, "youden sum_channel");
    json_decref(j);

    struct {
        const char *metrics, *part;
    } bad[] = {
        {"[{\"name\": \"tpr\", \"reduction\": \"median\"}]", "metrics[0].reduction"},
        {"[{\"name\": \"tpr\", \"ignore_empty\": true}]", "metrics[0].ignore_empty"},
        {"[{\"name\": \"dice\", \"ignore_empty\": 1}]", "metrics[0].ignore_empty"},
        {"[{\"name\": \"precision\", \"zero_division\": 2}]", "metrics[0].zero_division"},
        {"[{\"name\": \"f1\", \"zero_division\": \"nan\"}]", "metrics[0].zero_division"},
        {"[\"Dice\"]", "unknown metric"},
        {"[\"sensitivity\", \"sensitivity\"]", "sensitivity"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char b[512];
        snprintf(b, sizeof b,
                 "{\"mode\": \"binary\", \"prediction\": [[[5, -5]]], \"target\": [[[1, 0]]], "
                 "\"metrics\": %s}",
                 bad[i].metrics);
        struct slp_limits lim;
        struct slp_response r;
        slp_limits_default(&lim);
        slp_score_request(b, strlen(b), &lim, NULL, &r);
        CHECK(r.status == 400 || r.status == 422);
        CHECK(r.content_type && strstr(r.content_type, "problem+json") != NULL);
        CHECK_HAS(r.body, bad[i].part);
        slp_response_free(&r);
    }
}

/* /v1/catalog lists each row's aliases. */
static void test_catalog(void)
{
    size_t len = 0;
    char *doc = slp_catalog_json(&len);
    json_t *j = json_loadb(doc, len, 0, NULL);
    free(doc);
    json_t *row;
    size_t i;
    int seen = 0;
    json_array_foreach(json_object_get(j, "metrics"), i, row)
    {
        const char *name = json_string_value(json_object_get(row, "name"));
        json_t *al = json_object_get(row, "aliases");
        if (strcmp(name, "recall") == 0) {
            seen++;
            CHECK(json_array_size(al) == 4);
            CHECK(strcmp(json_string_value(json_array_get(al, 0)), "sensitivity") == 0);
        } else if (strcmp(name, "threat_score") == 0) {
            seen++;
            CHECK(json_array_size(al) == 3);
            CHECK_HAS(json_string_value(json_object_get(row, "convention")),
                      "monai/metrics/confusion_matrix.py");
        } else if (strcmp(name, "dice") == 0) {
            seen++;
            CHECK(al == NULL);
        }
    }
    CHECK_INT(seen, 3);
    json_decref(j);
}

static const struct check_test tests[] = {
    CHECK_TEST(test_formulas),
    CHECK_TEST(test_zero_denominator),
    CHECK_TEST(test_aliases),
    CHECK_TEST(test_ignore_empty),
    CHECK_TEST(test_zero_division),
    CHECK_TEST(test_reduce),
    CHECK_TEST(test_monai_confusion_suite),
    CHECK_TEST(test_monai_confusion_nan),
    CHECK_TEST(test_monai_meaniou),
    CHECK_TEST(test_worked_mean),
    CHECK_TEST(test_keys_and_errors),
    CHECK_TEST(test_catalog),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_confusion", tests);
}
