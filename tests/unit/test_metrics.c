/* test_metrics.c - confusion-matrix metrics against hand-counted confusion matrices. */
#include <math.h>
#include <string.h>

#include "../check.h"
#include "../spec_util.h"
#include "segloss.h"

static const char *const names[] = {"dice",        "iou",      "precision",         "recall",
                                    "specificity", "accuracy", "balanced_accuracy", "mcc",
                                    "fbeta",       "confusion"};
#define NM 10

/* Scores every metric; res must be freed by the caller. */
static struct sl_result *run(struct sl_request *req, struct sl_spec *specs)
{
    struct sl_result *res = NULL;
    char msg[256];
    for (int i = 0; i < NM; i++) {
        specs[i] = metric(names[i]);
    }
    req->metrics = specs;
    req->nmetrics = NM;
    if (sl_score(req, NULL, &res, msg, sizeof msg) != 0) {
        fprintf(stderr, "sl_score: %s\n", msg);
    }
    return res;
}

static void test_hand_counts(void)
{
    /* logits [2, -1, 3, -2] vs [1, 1, 0, 0]: hard [1, 0, 1, 0] -> TP 1, FN 1, FP 1, TN 1 */
    const float x[4] = {2, -1, 3, -2};
    const uint8_t y[4] = {1, 1, 0, 0};
    struct sl_request req;
    struct sl_spec specs[NM];
    sl_request_init(&req);
    req.prediction = (struct sl_tensor){x, SL_DT_F32, 3, {1, 2, 2}};
    req.target = (struct sl_tensor){y, SL_DT_U8, 3, {1, 2, 2}};
    struct sl_result *res = run(&req, specs);
    CHECK(res != NULL);
    if (!res) {
        return;
    }
    const double want[NM - 1] = {0.5, 1.0 / 3, 0.5, 0.5, 0.5,
                                 0.5, 0.5,     0.0, 0.5 /* fbeta 1 = dice */};
    for (int i = 0; i < NM - 1; i++) {
        CHECK_CLOSE(res->metrics[i].per_image[0], want[i], 1e-12, 1e-12);
        CHECK_CLOSE(res->metrics[i].global[0], want[i], 1e-12, 1e-12);
        CHECK_INT(res->metrics[i].undefined, 0);
    }
    struct sl_confusion c = res->metrics[NM - 1].counts[0];
    CHECK(c.tp == 1 && c.fp == 1 && c.fn == 1 && c.tn == 1);
    sl_result_free(res);
    /* F2 = 5 TP / (5 TP + 4 FN + FP) = 5 / 10 */
    struct sl_spec f = metric("fbeta");
    f.values[0].num = 2;
    req.metrics = &f;
    req.nmetrics = 1;
    char msg[128];
    CHECK_INT(sl_score(&req, NULL, &res, msg, sizeof msg), 0);
    CHECK_CLOSE(res->metrics[0].per_image[0], 0.5, 1e-12, 1e-12);
    sl_result_free(res);
}

static void test_threshold(void)
{
    /* threshold 0.8 on logits: logit(0.8) = ln 4 = 1.386; 1.3 is negative, 1.4 positive.
     * On probabilities: p >= t. */
    const float x[2] = {1.3f, 1.4f};
    const uint8_t y[2] = {1, 1};
    struct sl_request req;
    struct sl_spec s = metric("recall");
    struct sl_result *res;
    char msg[128];
    sl_request_init(&req);
    req.prediction = (struct sl_tensor){x, SL_DT_F32, 3, {1, 1, 2}};
    req.target = (struct sl_tensor){y, SL_DT_U8, 3, {1, 1, 2}};
    req.threshold = 0.8;
    req.metrics = &s;
    req.nmetrics = 1;
    CHECK_INT(sl_score(&req, NULL, &res, msg, sizeof msg), 0);
    CHECK_CLOSE(res->metrics[0].per_image[0], 0.5, 0, 1e-15);
    sl_result_free(res);
    const float p[2] = {0.8f, 0.79f};
    req.prediction.data = p;
    req.pred_type = SL_PRED_PROBABILITIES;
    CHECK_INT(sl_score(&req, NULL, &res, msg, sizeof msg), 0);
    CHECK_CLOSE(res->metrics[0].per_image[0], 0.5, 0, 1e-15);
    sl_result_free(res);
    /* uint8 probabilities are v/255: 204/255 = 0.8 exactly, 203/255 < 0.8 */
    const uint8_t u[2] = {204, 203};
    req.prediction = (struct sl_tensor){u, SL_DT_U8, 3, {1, 1, 2}};
    CHECK_INT(sl_score(&req, NULL, &res, msg, sizeof msg), 0);
    CHECK_CLOSE(res->metrics[0].per_image[0], 0.5, 0, 1e-15);
    sl_result_free(res);
}

static void test_empty_conventions(void)
{
    /* image 0: both empty (TN only); image 1: prediction empty, target not (FN 2, TN 2);
     * image 2: prediction fills a target-free image (FP 4). */
    const uint8_t p[12] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1};
    const uint8_t y[12] = {0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0};
    struct sl_request req;
    struct sl_spec specs[NM];
    sl_request_init(&req);
    req.prediction = (struct sl_tensor){p, SL_DT_U8, 3, {3, 2, 2}};
    req.target = (struct sl_tensor){y, SL_DT_U8, 3, {3, 2, 2}};
    req.pred_type = SL_PRED_LABELS;
    const enum sl_empty conv[3] = {SL_EMPTY_ONE, SL_EMPTY_ZERO, SL_EMPTY_NAN};
    for (int e = 0; e < 3; e++) {
        req.empty = conv[e];
        struct sl_result *res = run(&req, specs);
        CHECK(res != NULL);
        if (!res) {
            return;
        }
        const struct sl_metric_result *dice = &res->metrics[0], *prec = &res->metrics[2];
        const struct sl_metric_result *rec = &res->metrics[3], *spec = &res->metrics[4];
        const struct sl_metric_result *mcc = &res->metrics[7];
        double empty = e == 0 ? 1.0 : e == 1 ? 0.0 : NAN;
        /* image 0: dice/precision/recall/mcc undefined -> the `empty` value; specificity 1 */
        if (e == 2) {
            CHECK(isnan(dice->per_image[0]) && isnan(mcc->per_image[0]));
            CHECK_INT(dice->undefined, 1);
            CHECK_CLOSE(dice->mean, 0.0, 0, 1e-15); /* images 1 and 2 score 0 */
        } else {
            CHECK_CLOSE(dice->per_image[0], empty, 0, 1e-15);
            CHECK_CLOSE(mcc->per_image[0], empty, 0, 1e-15);
            CHECK_CLOSE(dice->mean, empty / 3, 1e-12, 1e-15);
        }
        CHECK_CLOSE(spec->per_image[0], 1.0, 0, 1e-15);
        /* image 1: nothing predicted, something missed: precision 0/0 is 0, not `empty` */
        CHECK_CLOSE(prec->per_image[1], 0.0, 0, 1e-15);
        CHECK_CLOSE(rec->per_image[1], 0.0, 0, 1e-15);
        CHECK_CLOSE(dice->per_image[1], 0.0, 0, 1e-15);
        CHECK_CLOSE(mcc->per_image[1], 0.0, 0, 1e-15);
        /* image 2: recall 0/0 with false positives is 0 */
        CHECK_CLOSE(rec->per_image[2], 0.0, 0, 1e-15);
        CHECK_CLOSE(spec->per_image[2], 0.0, 0, 1e-15);
        /* global from summed counts TP 0, FP 4, FN 2, TN 6: dice 0, specificity 6/10 */
        CHECK_CLOSE(dice->global[0], 0.0, 0, 1e-15);
        CHECK_CLOSE(spec->global[0], 0.6, 1e-12, 0);
        sl_result_free(res);
    }
}

static void test_ignore(void)
{
    /* pixel 1 ignored: hard [1, -, 0] vs [1, -, 0]: perfect */
    const float x[3] = {5, 5, -5};
    const uint8_t y[3] = {1, 9, 0};
    struct sl_request req;
    struct sl_spec specs[NM];
    sl_request_init(&req);
    req.prediction = (struct sl_tensor){x, SL_DT_F32, 3, {1, 1, 3}};
    req.target = (struct sl_tensor){y, SL_DT_U8, 3, {1, 1, 3}};
    req.has_ignore = true;
    req.ignore_index = 9;
    struct sl_result *res = run(&req, specs);
    CHECK(res != NULL);
    if (!res) {
        return;
    }
    CHECK_CLOSE(res->metrics[0].per_image[0], 1.0, 0, 1e-15);
    struct sl_confusion c = res->metrics[NM - 1].total[0];
    CHECK(c.tp == 1 && c.fp == 0 && c.fn == 0 && c.tn == 1);
    sl_result_free(res);
}

/* Negative predictive value TN / (TN + FN), by hand: from counts, and through sl_score. */
static void test_npv(void)
{
    struct sl_spec npv = metric("npv");
    CHECK(npv.def != NULL);
    if (!npv.def) {
        return;
    }
    /* TN 3, FN 1: 3 / 4 */
    struct sl_confusion c = {.tp = 2, .fp = 0, .fn = 1, .tn = 3};
    CHECK_CLOSE(sl_metric_from_counts(&npv, &c, SL_EMPTY_ONE), 0.75, 0, 1e-15);
    /* TN + FN = 0 with FP = FN = 0 (prediction and target agree, all foreground): `empty` */
    c = (struct sl_confusion){.tp = 5};
    CHECK_CLOSE(sl_metric_from_counts(&npv, &c, SL_EMPTY_ONE), 1, 0, 0);
    CHECK_CLOSE(sl_metric_from_counts(&npv, &c, SL_EMPTY_ZERO), 0, 0, 0);
    CHECK(isnan(sl_metric_from_counts(&npv, &c, SL_EMPTY_NAN)));
    /* TN + FN = 0 with FP 2: they disagree, the worst score 0 whatever `empty` says */
    c = (struct sl_confusion){.tp = 1, .fp = 2};
    CHECK_CLOSE(sl_metric_from_counts(&npv, &c, SL_EMPTY_NAN), 0, 0, 0);
    /* logits [2, -1, 3, -2, -4, -5] vs [1, 1, 0, 0, 0, 1]: hard [1, 0, 1, 0, 0, 0] ->
     * TN 2 (pixels 3, 4), FN 2 (pixels 1, 5): npv 2 / 4 */
    const float x[6] = {2, -1, 3, -2, -4, -5};
    const uint8_t y[6] = {1, 1, 0, 0, 0, 1};
    struct sl_request req;
    struct sl_result *res = NULL;
    char msg[128];
    sl_request_init(&req);
    req.prediction = (struct sl_tensor){x, SL_DT_F32, 3, {1, 2, 3}};
    req.target = (struct sl_tensor){y, SL_DT_U8, 3, {1, 2, 3}};
    req.metrics = &npv;
    req.nmetrics = 1;
    CHECK_INT(sl_score(&req, NULL, &res, msg, sizeof msg), 0);
    if (res) {
        CHECK_CLOSE(res->metrics[0].per_image[0], 0.5, 0, 1e-15);
        CHECK_CLOSE(res->metrics[0].global[0], 0.5, 0, 1e-15);
    }
    sl_result_free(res);
    sl_result_free(NULL); /* every _free of lib/ accepts NULL */
}

static const struct check_test tests[] = {
    CHECK_TEST(test_hand_counts), CHECK_TEST(test_threshold), CHECK_TEST(test_empty_conventions),
    CHECK_TEST(test_ignore),      CHECK_TEST(test_npv),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_metrics", tests);
}
