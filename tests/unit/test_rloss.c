/* test_rloss.c - the region losses of issue 17: generalized_dice, the mcc loss, smooth_nr /
 * smooth_dr, absent_classes and the region reductions sum / none.
 *
 * Expected values come from outside this library: the literal inputs and expected values of the
 * peers' own test suites (Project-MONAI/MONAI tests/losses/test_generalized_dice_loss.py,
 * test_dice_loss.py, test_tversky_loss.py; qubvel-org/segmentation_models.pytorch
 * tests/test_losses.py test_binary_mcc_loss), and hand calculations written out below with the
 * peer formula they follow (MONAI monai/losses/dice.py GeneralizedDiceLoss.forward and
 * DiceLoss.forward, monai/losses/tversky.py; smp losses/dice.py, jaccard.py, mcc.py). */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "../spec_util.h"
#include "proto.h"
#include "segloss.h"

static struct sl_tensor f64(const double *d, int ndim, int64_t a, int64_t b, int64_t c, int64_t e)
{
    struct sl_tensor t = {.data = d, .dtype = SL_DT_F64, .ndim = ndim, .shape = {a, b, c, e}};
    return t;
}

static struct sl_tensor u8(const uint8_t *d, int ndim, int64_t a, int64_t b, int64_t c, int64_t e)
{
    struct sl_tensor t = {.data = d, .dtype = SL_DT_U8, .ndim = ndim, .shape = {a, b, c, e}};
    return t;
}

/* Scores the one loss s; returns the result (free with sl_result_free) or NULL, printing the
 * message. */
static struct sl_result *run(struct sl_request *req, const struct sl_spec *s)
{
    struct sl_result *res = NULL;
    char msg[512];
    req->losses = s;
    req->nlosses = 1;
    req->nmetrics = 0;
    if (sl_score(req, NULL, &res, msg, sizeof msg) != 0) {
        fprintf(stderr, "sl_score: %s\n", msg);
        return NULL;
    }
    return res;
}

/* The batch value of loss s (NaN on error). */
static double value(struct sl_request *req, const struct sl_spec *s)
{
    struct sl_result *res = run(req, s);
    double v = res ? res->losses[0].value : NAN;
    sl_result_free(res);
    return v;
}

static double sigmoid(double x)
{
    return 1 / (1 + exp(-x));
}

/* MONAI's shared case (2, 2, 3) of test_generalized_dice_loss.py, test_dice_loss.py,
 * test_tversky_loss.py: image 0 channels [-1, 0, 1] and [1, 0, -1], image 1 zeros; target
 * labels [1, 0, 0] and [1, 1, 0] (to_onehot_y: multiclass labels, or one-hot channels for the
 * sigmoid cases, channel 0 = label 0). */
static const double m_x[12] = {-1, 0, 1, 1, 0, -1, 0, 0, 0, 0, 0, 0};
static const uint8_t m_labels[6] = {1, 0, 0, 1, 1, 0};
static const uint8_t m_onehot[12] = {0, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0};

/* MONAI's case (2, 2, 3) of one-hot probabilities with include_background False. */
static const double m_p01[12] = {1, 1, 0, 0, 0, 1, 1, 0, 1, 0, 1, 0};
static const uint8_t m_labels01[6] = {0, 0, 1, 0, 1, 0};

static void mc_request(struct sl_request *req, const double *x, const uint8_t *labels)
{
    sl_request_init(req);
    req->prediction = f64(x, 4, 2, 2, 1, 3);
    req->target = u8(labels, 3, 2, 1, 3, 0);
    req->mode = SL_MODE_MULTICLASS;
}

static void ml_request(struct sl_request *req)
{
    sl_request_init(req);
    req->prediction = f64(m_x, 4, 2, 2, 1, 3);
    req->target = u8(m_onehot, 4, 2, 2, 1, 3);
    req->mode = SL_MODE_MULTILABEL;
}

/* MONAI's binary case (1, 1, 2, 2): logits [[1, -1], [-1, 1]], target [[1, 0], [1, 1]]; and the
 * two-image one: targets all ones and [[1, 0], [1, 0]]. */
static const double b_x[8] = {1, -1, -1, 1, 1, -1, -1, 1};
static const uint8_t b_t1[4] = {1, 0, 1, 1};
static const uint8_t b_t2[8] = {1, 1, 1, 1, 1, 0, 1, 0};

static void test_gdice_monai_binary(void)
{
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = f64(b_x, 3, 1, 2, 2, 0);
    req.target = u8(b_t1, 3, 1, 2, 2, 0);
    struct sl_spec s = loss("generalized_dice");
    set_num(&s, "smooth_nr", 1e-6);
    set_num(&s, "smooth_dr", 1e-6);
    /* MONAI test_generalized_dice_loss.py case 0 */
    CHECK_CLOSE(value(&req, &s), 0.307576, 1e-5, 1e-6);
    /* by hand: p = sigmoid(+-1); tp = 2 s(1) + s(-1), sum p = 2, g = 3, w = 1/9 */
    const double tp = 2 * sigmoid(1) + sigmoid(-1);
    CHECK_CLOSE(value(&req, &s), 1 - (2 * tp / 9 + 1e-6) / (5.0 / 9 + 1e-6), 1e-12, 1e-12);

    req.prediction = f64(b_x, 3, 2, 2, 2, 0);
    req.target = u8(b_t2, 3, 2, 2, 2, 0);
    s = loss("generalized_dice");
    set_num(&s, "smooth", 1e-4);
    /* MONAI case 1 */
    CHECK_CLOSE(value(&req, &s), 0.416597, 1e-5, 1e-6);
    /* per_image false = MONAI batch=True, by hand: pooled tp = 2 + (s(1) + s(-1)) = 3,
     * sum p = 4, g = 6, w = 1/36 */
    set_bool(&s, "per_image", false);
    CHECK_CLOSE(value(&req, &s), 1 - (2 * 3.0 / 36 + 1e-4) / (10.0 / 36 + 1e-4), 1e-12, 1e-12);
}

static void test_gdice_monai_multiclass(void)
{
    struct sl_request req;
    /* MONAI case 4: include_background False, one-hot probabilities, smooth 0 */
    mc_request(&req, m_p01, m_labels01);
    req.pred_type = SL_PRED_PROBABILITIES;
    struct sl_spec s = loss("generalized_dice");
    set_num(&s, "smooth", 0);
    set_bool(&s, "include_background", false);
    CHECK_CLOSE(value(&req, &s), 0.0, 0, 1e-6);

    /* MONAI case 6: softmax, smooth 1e-4 */
    mc_request(&req, m_x, m_labels);
    s = loss("generalized_dice");
    set_num(&s, "smooth", 1e-4);
    CHECK_CLOSE(value(&req, &s), 0.414507, 1e-5, 1e-6);
    /* case 7: reduction sum */
    set_choice(&s, "reduction", 1);
    CHECK_CLOSE(value(&req, &s), 0.829015, 1e-5, 1e-6);
    /* case 8: reduction none, [[0.273476], [0.555539]]: per_image of the value's mean */
    set_choice(&s, "reduction", 2);
    struct sl_result *res = run(&req, &s);
    CHECK(res != NULL);
    if (res) {
        CHECK_CLOSE(res->losses[0].value, (0.273476 + 0.555539) / 2, 1e-5, 1e-6);
        CHECK(res->losses[0].has_per_image);
        CHECK_CLOSE(res->losses[0].per_image[0], 0.273476, 1e-5, 1e-6);
        CHECK_CLOSE(res->losses[0].per_image[1], 0.555539, 1e-5, 1e-6);
        CHECK(res->losses[0].per_class == NULL); /* one ratio per image: no per-class form */
    }
    sl_result_free(res);

    /* MONAI case 11: w_type simple, softmax, smooth 0, input (1, 2, 4) */
    static const double x11[8] = {0, 10, 10, 10, 10, 0, 0, 0};
    static const uint8_t t11[4] = {1, 1, 0, 0};
    sl_request_init(&req);
    req.prediction = f64(x11, 4, 1, 2, 1, 4);
    req.target = u8(t11, 3, 1, 1, 4, 0);
    req.mode = SL_MODE_MULTICLASS;
    s = loss("generalized_dice");
    set_num(&s, "smooth", 0);
    set_choice(&s, "w_type", 1);
    CHECK_CLOSE(value(&req, &s), 0.250023, 1e-5, 1e-6);
}

static void test_gdice_monai_multilabel(void)
{
    struct sl_request req;
    /* MONAI case 5: sigmoid on the one-hot channels */
    ml_request(&req);
    struct sl_spec s = loss("generalized_dice");
    set_num(&s, "smooth", 1e-4);
    CHECK_CLOSE(value(&req, &s), 0.469964, 1e-5, 1e-6);

    /* MONAI case 9: include_background False, an all-zero target: every weight is infinite, the
     * largest finite one is 0, so 1 - smooth_nr / smooth_dr = 0 */
    static const uint8_t zeros[6] = {0, 0, 0, 0, 0, 0};
    mc_request(&req, m_p01, zeros);
    req.pred_type = SL_PRED_PROBABILITIES;
    s = loss("generalized_dice");
    set_num(&s, "smooth", 1e-8);
    set_bool(&s, "include_background", false);
    CHECK_CLOSE(value(&req, &s), 0.0, 0, 1e-6);
}

/* MONAI GeneralizedDiceLoss.forward: w[infs] = 0; w += infs * max(w): a class absent from the
 * target takes the largest finite weight of its image. By hand: channel 0 p = [0.5, 0.5],
 * y = [1, 0] (g = 1, w = 1); channel 1 p = [0.25, 0.25], y = [0, 0] (w = inf -> 1);
 * 1 - 2 (0.5) / ((1 + 1) + (0.5 + 0)) = 0.6. w_type uniform gives the same; simple too. */
static void test_gdice_infinite_weight(void)
{
    static const double p[4] = {0.5, 0.5, 0.25, 0.25};
    static const uint8_t t[4] = {1, 0, 0, 0};
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = f64(p, 4, 1, 2, 1, 2);
    req.target = u8(t, 4, 1, 2, 1, 2);
    req.mode = SL_MODE_MULTILABEL;
    req.pred_type = SL_PRED_PROBABILITIES;
    struct sl_spec s = loss("generalized_dice");
    set_num(&s, "smooth", 0);
    CHECK_CLOSE(value(&req, &s), 0.6, 1e-12, 1e-12);
    /* channel 0 with g = 2 (y = [1, 1]): square w0 = 1/4, w1 -> 1/4: the same ratio
     * 1 - 2 (1/4)(1) / ((1/4)(1 + 2) + (1/4)(0.5)) = 1 - 0.5 / 0.875 */
    static const uint8_t t2[4] = {1, 1, 0, 0};
    req.target = u8(t2, 4, 1, 2, 1, 2);
    CHECK_CLOSE(value(&req, &s), 1 - 0.5 / 0.875, 1e-12, 1e-12);
    /* include_background false leaves only channel 1, all inf: 1 - 0/0 -> 0 (a 0 denominator
     * scores 1, as the other region losses) */
    set_bool(&s, "include_background", false);
    CHECK_CLOSE(value(&req, &s), 0.0, 0, 1e-12);
}

/* smp tests/test_losses.py test_binary_mcc_loss: (1, 2, 4) probabilities, eps 1e-5, pooled. */
static void test_mcc_smp(void)
{
    static const double ideal[8] = {1, 1, 0, 0, 0, 0, 1, 1};
    static const uint8_t ideal_t[8] = {1, 1, 0, 0, 0, 0, 1, 1};
    static const uint8_t worst_t[8] = {0, 0, 1, 1, 1, 1, 0, 0};
    static const double third[8] = {0, 1, 1, 0, 0, 1, 1, 0};
    static const uint8_t third_t[8] = {1, 1, 0, 0, 1, 1, 0, 0};
    static const double zeros[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t ones_t[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    static const double ones[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    struct {
        const double *p;
        const uint8_t *t;
        double want;
    } cases[] = {
        {ideal, ideal_t, 0.0}, {ideal, worst_t, 2.0}, {third, third_t, 1.0},
        {zeros, third_t, 1.0}, {zeros, ones_t, 1.5},  {ones, ones_t, 0.5},
    };
    struct sl_spec s = loss("mcc");
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct sl_request req;
        sl_request_init(&req);
        req.prediction = f64(cases[k].p, 3, 1, 2, 4, 0);
        req.target = u8(cases[k].t, 3, 1, 2, 4, 0);
        req.pred_type = SL_PRED_PROBABILITIES;
        CHECK_CLOSE(value(&req, &s), cases[k].want, 0, 1e-5);
    }
}

/* smp MCCLoss by hand on two images of 2 pixels: p0 = [0.8, 0.3], y0 = [1, 0];
 * p1 = [0.6, 0.6], y1 = [0, 1]. Pooled (the default, smp): tp = 0.8 + 0.6 = 1.4,
 * fp = 0.3 + 0.6 = 0.9, fn = 0.2 + 0.4 = 0.6, tn = 0.7 + 0.4 = 1.1, each + eps. */
static double mcc_by_hand(double tp, double fp, double fn, double tn, double eps)
{
    tp += eps;
    fp += eps;
    fn += eps;
    tn += eps;
    return 1 - (tp * tn - fp * fn) / sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn));
}

static void test_mcc_by_hand(void)
{
    static const double p[4] = {0.8, 0.3, 0.6, 0.6};
    static const uint8_t t[4] = {1, 0, 0, 1};
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = f64(p, 3, 2, 1, 2, 0);
    req.target = u8(t, 3, 2, 1, 2, 0);
    req.pred_type = SL_PRED_PROBABILITIES;
    struct sl_spec s = loss("mcc");
    struct sl_result *res = run(&req, &s);
    CHECK(res && !res->losses[0].has_per_image);
    sl_result_free(res);
    CHECK_CLOSE(value(&req, &s), mcc_by_hand(1.4, 0.9, 0.6, 1.1, 1e-5), 1e-9, 1e-12);
    /* per_image true: image 0 tp 0.8, fp 0.3, fn 0.2, tn 0.7; image 1 tp 0.6, fp 0.6, fn 0.4,
     * tn 0.4 */
    set_bool(&s, "per_image", true);
    set_num(&s, "eps", 1e-3);
    double want =
        (mcc_by_hand(0.8, 0.3, 0.2, 0.7, 1e-3) + mcc_by_hand(0.6, 0.6, 0.4, 0.4, 1e-3)) / 2;
    CHECK_CLOSE(value(&req, &s), want, 1e-9, 1e-12);
    /* multilabel: two channels of one image, the mean of the channels' losses */
    req.prediction = f64(p, 4, 1, 2, 1, 2);
    req.target = u8(t, 4, 1, 2, 1, 2);
    req.mode = SL_MODE_MULTILABEL;
    CHECK_CLOSE(value(&req, &s), want, 1e-9, 1e-12);
    set_bool(&s, "include_background", false);
    CHECK_CLOSE(value(&req, &s), mcc_by_hand(0.6, 0.6, 0.4, 0.4, 1e-3), 1e-9, 1e-12);
}

/* MONAI smooth_nr != smooth_dr. test_tversky_loss.py: include_background False, one-hot
 * probabilities, smooth_nr 0, smooth_dr 1e-3 -> 0.000999 (1 - 1 / (1 + 1e-3) on each image);
 * test_dice_loss.py has the same inputs with smooth 0 -> 0. */
static void test_smooth_nr_dr(void)
{
    struct sl_request req;
    mc_request(&req, m_p01, m_labels01);
    req.pred_type = SL_PRED_PROBABILITIES;
    struct sl_spec s = loss("tversky");
    set_num(&s, "smooth_nr", 0);
    set_num(&s, "smooth_dr", 1e-3);
    set_bool(&s, "include_background", false);
    CHECK_CLOSE(value(&req, &s), 0.000999, 1e-3, 1e-7);
    CHECK_CLOSE(value(&req, &s), 1 - 1 / (1 + 1e-3), 1e-12, 1e-15);

    /* by hand, binary dice (MONAI DiceLoss): p = [0.5, 0.5], y = [1, 0], smooth_nr 1,
     * smooth_dr 2: 1 - (2 (0.5) + 1) / (1 + 1 + 2) = 0.5; smooth_dr alone (smooth_nr is smooth's
     * default 0): 1 - 1 / 4 */
    static const double p[2] = {0.5, 0.5};
    static const uint8_t t[2] = {1, 0};
    sl_request_init(&req);
    req.prediction = f64(p, 3, 1, 1, 2, 0);
    req.target = u8(t, 3, 1, 1, 2, 0);
    req.pred_type = SL_PRED_PROBABILITIES;
    s = loss("dice");
    set_num(&s, "smooth_nr", 1);
    set_num(&s, "smooth_dr", 2);
    CHECK_CLOSE(value(&req, &s), 0.5, 1e-12, 1e-15);
    s = loss("dice");
    set_num(&s, "smooth_dr", 2);
    CHECK_CLOSE(value(&req, &s), 0.75, 1e-12, 1e-15);
    /* jaccard (smp form): (tp + nr) / (tp + fp + fn + dr) = (0.5 + 1) / (1.5 + 2) */
    s = loss("jaccard");
    set_num(&s, "smooth_nr", 1);
    set_num(&s, "smooth_dr", 2);
    CHECK_CLOSE(value(&req, &s), 1 - 1.5 / 3.5, 1e-12, 1e-15);
    /* generalized_dice: w = 1, 1 - (2 (0.5) + 1) / (2 + 2) */
    s = loss("generalized_dice");
    set_num(&s, "smooth_nr", 1);
    set_num(&s, "smooth_dr", 2);
    CHECK_CLOSE(value(&req, &s), 0.5, 1e-12, 1e-15);
    /* smooth_nr > smooth_dr on an empty pair: MONAI's 1 - 1/0.5 = -1, left as it is */
    static const double z[2] = {0, 0};
    static const uint8_t zt[2] = {0, 0};
    req.prediction = f64(z, 3, 1, 1, 2, 0);
    req.target = u8(zt, 3, 1, 1, 2, 0);
    s = loss("tversky");
    set_num(&s, "smooth_nr", 1);
    set_num(&s, "smooth_dr", 0.5);
    CHECK_CLOSE(value(&req, &s), -1.0, 1e-12, 1e-15);
}

/* MONAI reduction "sum" and "none" (test_dice_loss.py, test_tversky_loss.py). */
static void test_reduction_monai(void)
{
    struct sl_request req;
    ml_request(&req);
    struct sl_spec s = loss("dice");
    set_num(&s, "smooth", 1e-4);
    set_choice(&s, "reduction", 2);
    /* DiceLoss sigmoid, reduction none: [[0.296529, 0.415136], [0.599976, 0.428559]] */
    const double want[4] = {0.296529, 0.415136, 0.599976, 0.428559};
    struct sl_result *res = run(&req, &s);
    CHECK(res && res->losses[0].per_image_class && res->losses[0].per_class);
    if (res && res->losses[0].per_image_class && res->losses[0].per_class) {
        for (int k = 0; k < 4; k++) {
            CHECK_CLOSE(res->losses[0].per_image_class[k], want[k], 1e-5, 1e-6);
        }
        CHECK_CLOSE(res->losses[0].per_class[0], (want[0] + want[2]) / 2, 1e-5, 1e-6);
        CHECK_CLOSE(res->losses[0].per_class[1], (want[1] + want[3]) / 2, 1e-5, 1e-6);
        /* MONAI DiceLoss sigmoid reduction mean: 0.435050 */
        CHECK_CLOSE(res->losses[0].value, 0.435050, 1e-5, 1e-6);
    }
    sl_result_free(res);
    /* TverskyLoss sigmoid, reduction sum: 1.74013 */
    s = loss("tversky");
    set_num(&s, "smooth", 1e-4);
    set_choice(&s, "reduction", 1);
    CHECK_CLOSE(value(&req, &s), 1.74013, 1e-5, 1e-6);
    /* TverskyLoss sigmoid batch=True, MONAI's default smooth 1e-5: 0.422979 */
    s = loss("tversky");
    set_num(&s, "smooth", 1e-5);
    set_bool(&s, "per_image", false);
    CHECK_CLOSE(value(&req, &s), 0.422979, 1e-5, 1e-6);

    mc_request(&req, m_x, m_labels);
    /* DiceLoss softmax reduction sum: 1.534853 */
    s = loss("dice");
    set_num(&s, "smooth", 1e-4);
    set_choice(&s, "reduction", 1);
    CHECK_CLOSE(value(&req, &s), 1.534853, 1e-5, 1e-6);
    /* TverskyLoss softmax reduction none: [[0.210961, 0.295339], [0.599952, 0.428547]] */
    s = loss("tversky");
    set_num(&s, "smooth", 1e-4);
    set_choice(&s, "reduction", 2);
    const double tw[4] = {0.210961, 0.295339, 0.599952, 0.428547};
    res = run(&req, &s);
    CHECK(res && res->losses[0].per_image_class);
    if (res && res->losses[0].per_image_class) {
        for (int k = 0; k < 4; k++) {
            CHECK_CLOSE(res->losses[0].per_image_class[k], tw[k], 1e-5, 1e-6);
        }
        /* MONAI TverskyLoss softmax mean: 0.383713, which its file checks at rtol 1e-4 (the mean
         * of its own reduction-none values above is 0.3836998) */
        CHECK_CLOSE(res->losses[0].value, 0.383713, 1e-4, 0);
        CHECK_CLOSE(res->losses[0].value, (tw[0] + tw[1] + tw[2] + tw[3]) / 4, 1e-5, 1e-6);
    }
    sl_result_free(res);
}

/* Reductions by hand: class weights, include_background and pooling. Multilabel, one image of
 * two pixels per channel: channel 0 p = [1, 0], y = [1, 0] (dice 1, loss 0); channel 1
 * p = [0.5, 0.5], y = [1, 0] (dice 2 (0.5) / (1 + 1) = 0.5, loss 0.5). */
static void test_reduction_by_hand(void)
{
    static const double p[4] = {1, 0, 0.5, 0.5};
    static const uint8_t t[4] = {1, 0, 1, 0};
    static const double cw[2] = {2, 3};
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = f64(p, 4, 1, 2, 1, 2);
    req.target = u8(t, 4, 1, 2, 1, 2);
    req.mode = SL_MODE_MULTILABEL;
    req.pred_type = SL_PRED_PROBABILITIES;
    struct sl_spec s = loss("dice");
    set_choice(&s, "reduction", 1);
    CHECK_CLOSE(value(&req, &s), 0.5, 1e-12, 1e-15);
    /* MONAI weight= multiplies each class's loss first: 2 (0) + 3 (0.5) */
    set_list(&s, "class_weights", cw, 2);
    CHECK_CLOSE(value(&req, &s), 1.5, 1e-12, 1e-15);
    set_choice(&s, "reduction", 2);
    struct sl_result *res = run(&req, &s);
    CHECK(res && res->losses[0].per_class);
    if (res && res->losses[0].per_class) {
        CHECK_CLOSE(res->losses[0].per_class[0], 0.0, 0, 1e-15);
        CHECK_CLOSE(res->losses[0].per_class[1], 1.5, 1e-12, 1e-15);
        CHECK_CLOSE(res->losses[0].value, 0.75, 1e-12, 1e-15); /* the mean, as MONAI's mean */
    }
    sl_result_free(res);
    /* without background: channel 0 is null (NaN) in the per-class values */
    set_bool(&s, "include_background", false);
    res = run(&req, &s);
    CHECK(res && res->losses[0].per_class && isnan(res->losses[0].per_class[0]));
    if (res && res->losses[0].per_class) {
        CHECK(isnan(res->losses[0].per_image_class[0]));
        CHECK_CLOSE(res->losses[0].per_image_class[1], 1.5, 1e-12, 1e-15);
    }
    sl_result_free(res);
    /* pooled (per_image false) with none: per_class only */
    s = loss("dice");
    set_choice(&s, "reduction", 2);
    set_bool(&s, "per_image", false);
    res = run(&req, &s);
    CHECK(res && res->losses[0].per_class && !res->losses[0].per_image_class);
    if (res && res->losses[0].per_class) {
        CHECK_CLOSE(res->losses[0].per_class[1], 0.5, 1e-12, 1e-15);
    }
    sl_result_free(res);
    /* default reduction: no per-class arrays (today's answer) */
    s = loss("dice");
    res = run(&req, &s);
    CHECK(res && !res->losses[0].per_class && !res->losses[0].per_image_class);
    sl_result_free(res);
}

/* smp's absent-class rule: loss *= (y_true.sum(dims) > 0), then the mean over all classes. */
static void test_absent_classes(void)
{
    /* smp test_dice_loss_binary / test_tversky_loss_binary / test_binary_jaccard_loss "worst
     * case": y_pred [1, 1, 1], y_true [0, 0, 0] -> 0 */
    static const double ones[3] = {1, 1, 1};
    static const uint8_t zeros[3] = {0, 0, 0};
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = f64(ones, 3, 1, 1, 3, 0);
    req.target = u8(zeros, 3, 1, 1, 3, 0);
    req.pred_type = SL_PRED_PROBABILITIES;
    const char *names[3] = {"dice", "jaccard", "tversky"};
    for (int k = 0; k < 3; k++) {
        struct sl_spec s = loss(names[k]);
        CHECK_CLOSE(value(&req, &s), 1.0, 0, 1e-12); /* count: 1 - 0 / 3 */
        set_choice(&s, "absent_classes", 1);
        CHECK_CLOSE(value(&req, &s), 0.0, 0, 1e-12);
    }
    /* multiclass, by hand: 3 classes, probabilities per pixel (0.6, 0.3, 0.1) and (0.2, 0.7,
     * 0.1), labels [0, 1]: class 2 is absent (sum p = 0.2, loss 1 under count).
     * class 0 dice 2 (0.6) / (0.8 + 1) = 2/3; class 1 2 (0.7) / (1.0 + 1) = 0.7.
     * zero: (1/3 + 0.3 + 0) / 3 (smp's mean still counts class 2); count: (1/3 + 0.3 + 1) / 3 */
    static const double p[6] = {0.6, 0.2, 0.3, 0.7, 0.1, 0.1};
    static const uint8_t lab[2] = {0, 1};
    sl_request_init(&req);
    req.prediction = f64(p, 4, 1, 3, 1, 2);
    req.target = u8(lab, 3, 1, 1, 2, 0);
    req.mode = SL_MODE_MULTICLASS;
    req.pred_type = SL_PRED_PROBABILITIES;
    struct sl_spec s = loss("dice");
    CHECK_CLOSE(value(&req, &s), (1.0 / 3 + 0.3 + 1) / 3, 1e-12, 1e-15);
    set_choice(&s, "absent_classes", 1);
    CHECK_CLOSE(value(&req, &s), (1.0 / 3 + 0.3) / 3, 1e-12, 1e-15);
    /* smp JaccardLoss test_multiclass_jaccard_loss "1 - 1/3 case" (pooled, smp's dims (0, 2)):
     * y_pred (1, 2, 4) [[1, 0, 1, 0], [0, 1, 0, 1]], y_true [1, 1, 0, 0] */
    static const double jp[8] = {1, 0, 1, 0, 0, 1, 0, 1};
    static const uint8_t jt[4] = {1, 1, 0, 0};
    sl_request_init(&req);
    req.prediction = f64(jp, 4, 1, 2, 1, 4);
    req.target = u8(jt, 3, 1, 1, 4, 0);
    req.mode = SL_MODE_MULTICLASS;
    req.pred_type = SL_PRED_PROBABILITIES;
    s = loss("jaccard");
    set_choice(&s, "absent_classes", 1);
    set_bool(&s, "per_image", false);
    CHECK_CLOSE(value(&req, &s), 1.0 - 1.0 / 3.0, 0, 1e-5);
    /* pooled: a class present in one image only is present in the batch */
    static const double bp[4] = {0.5, 0.5, 0.5, 0.5};
    static const uint8_t bt[4] = {1, 0, 0, 0};
    sl_request_init(&req);
    req.prediction = f64(bp, 3, 2, 1, 2, 0);
    req.target = u8(bt, 3, 2, 1, 2, 0);
    req.pred_type = SL_PRED_PROBABILITIES;
    s = loss("dice");
    set_choice(&s, "absent_classes", 1);
    /* per image: image 0 1 - 1/(1 + 1) = 0.5, image 1 absent -> 0; mean 0.25 */
    CHECK_CLOSE(value(&req, &s), 0.25, 1e-12, 1e-15);
    /* pooled: tp 0.5, sum p 2, sum y 1: 1 - 1/3 */
    set_bool(&s, "per_image", false);
    CHECK_CLOSE(value(&req, &s), 1 - 1.0 / 3, 1e-12, 1e-15);
}

/* Refusals: reduction sum/none with focal Tversky's gamma; mcc eps 0. */
static void test_refusals(void)
{
    static const double p[2] = {0.5, 0.5};
    static const uint8_t t[2] = {1, 0};
    struct sl_request req;
    sl_request_init(&req);
    req.prediction = f64(p, 3, 1, 1, 2, 0);
    req.target = u8(t, 3, 1, 1, 2, 0);
    req.pred_type = SL_PRED_PROBABILITIES;
    struct sl_spec s = loss("tversky");
    set_num(&s, "gamma", 2);
    set_choice(&s, "reduction", 1);
    struct sl_result *res = NULL;
    char msg[512] = "";
    req.losses = &s;
    req.nlosses = 1;
    CHECK_INT(sl_score(&req, NULL, &res, msg, sizeof msg), SL_EINVAL);
    CHECK_HAS(msg, "reduction");
    CHECK_HAS(msg, "gamma 1");
    CHECK(res == NULL);
    const struct sl_def *mcc = sl_find_loss("mcc");
    int k = sl_param_index(mcc, "eps");
    struct sl_value zero = {.kind = SL_V_NUMBER, .num = 0};
    CHECK(sl_param_check(&mcc->params[k], &zero, "losses[0].eps", msg, sizeof msg) != 0);
    CHECK_HAS(msg, "losses[0].eps");
}

/* ---- over the wire (slp_score_request, slp_catalog_json) ---- */

/* Runs a /v1/score body; returns the status and the parsed answer in *out (caller decrefs). */
static int post(const char *body, json_t **out)
{
    struct slp_limits lim;
    struct slp_response r;
    slp_limits_default(&lim);
    slp_score_request(body, strlen(body), &lim, NULL, &r);
    *out = json_loadb(r.body, r.len, 0, NULL);
    int status = r.status;
    slp_response_free(&r);
    return status;
}

/* A 422 whose detail contains part. */
static void expect_422(const char *body, const char *part)
{
    json_t *j = NULL;
    CHECK_INT(post(body, &j), 422);
    CHECK_HAS(json_string_value(json_object_get(j, "detail")), part);
    json_decref(j);
}

/* Multilabel, one image of two pixels per channel (test_reduction_by_hand's data). */
#define ML_BODY(losses, extra)                                                                     \
    "{\"prediction\": {\"format\": \"list\", \"dtype\": \"float32\", \"shape\": [1, 2, 1, 2], "    \
    "\"data\": [1, 0, 0.5, 0.5]}, \"target\": {\"format\": \"list\", \"dtype\": \"uint8\", "       \
    "\"shape\": [1, 2, 1, 2], \"data\": [1, 0, 1, 0]}, \"mode\": \"multilabel\", "                 \
    "\"prediction_type\": \"probabilities\", \"metrics\": [], \"losses\": " losses extra "}"

static void test_wire(void)
{
    /* smooth with smooth_nr or smooth_dr: 422 naming the key */
    expect_422(ML_BODY("[{\"name\": \"dice\", \"smooth\": 1, \"smooth_nr\": 0}]", ""),
               "losses[0].smooth_nr");
    expect_422(ML_BODY("[{\"name\": \"generalized_dice\", \"smooth_dr\": 2, \"smooth\": 1}]", ""),
               "losses[0].smooth_dr");
    expect_422(ML_BODY("[{\"name\": \"tversky\", \"gamma\": 2, \"reduction\": \"none\"}]", ""),
               "losses[0].reduction");
    expect_422(ML_BODY("[{\"name\": \"dice\", \"absent_classes\": \"drop\"}]", ""),
               "losses[0].absent_classes");
    expect_422(ML_BODY("[{\"name\": \"mcc\", \"eps\": 0}]", ""), "losses[0].eps");
    expect_422(ML_BODY("[{\"name\": \"mcc\", \"smooth\": 1}]", ""), "losses[0].smooth");

    /* reduction none: per_class and per_image_class (null for a class left out), and per_image
     * even when the request's per_image is false; dice of channel 1 is 0.5 by hand */
    json_t *j = NULL;
    CHECK_INT(post(ML_BODY("[{\"name\": \"dice\", \"reduction\": \"none\", "
                           "\"include_background\": false}]",
                           ", \"per_image\": false"),
                   &j),
              200);
    json_t *l = json_object_get(json_object_get(j, "losses"), "dice");
    json_t *pc = json_object_get(l, "per_class"), *pic = json_object_get(l, "per_image_class");
    CHECK(json_array_size(pc) == 2 && json_is_null(json_array_get(pc, 0)));
    CHECK_CLOSE(json_number_value(json_array_get(pc, 1)), 0.5, 1e-12, 1e-15);
    CHECK(json_array_size(pic) == 1 && json_array_size(json_array_get(pic, 0)) == 2);
    CHECK(json_is_null(json_array_get(json_array_get(pic, 0), 0)));
    CHECK_CLOSE(json_number_value(json_array_get(json_array_get(pic, 0), 1)), 0.5, 1e-12, 1e-15);
    CHECK(json_array_size(json_object_get(l, "per_image")) == 1);
    CHECK_CLOSE(json_number_value(json_object_get(l, "value")), 0.5, 1e-12, 1e-15);
    json_decref(j);
    /* today's answer is unchanged: no per_class keys, no per_image with per_image false */
    CHECK_INT(post(ML_BODY("[\"dice\", \"jaccard\", \"tversky\"]", ", \"per_image\": false"), &j),
              200);
    const char *names[3] = {"dice", "jaccard", "tversky"};
    for (int k = 0; k < 3; k++) {
        l = json_object_get(json_object_get(j, "losses"), names[k]);
        CHECK(json_object_size(l) == 1 && json_is_number(json_object_get(l, "value")));
    }
    json_decref(j);
    /* the new losses by their bare names */
    CHECK_INT(post(ML_BODY("[\"mcc\", \"generalized_dice\"]", ""), &j), 200);
    CHECK(json_is_number(
        json_object_get(json_object_get(json_object_get(j, "losses"), "mcc"), "value")));
    json_decref(j);
}

/* /v1/catalog lists both new losses with their peers and the new parameters. */
static void test_catalog(void)
{
    size_t len = 0;
    char *doc = slp_catalog_json(&len);
    json_t *j = json_loadb(doc, len, 0, NULL);
    free(doc);
    json_t *losses = json_object_get(j, "losses");
    bool gd = false, mcc = false, nr = false;
    size_t i;
    json_t *e;
    json_array_foreach(losses, i, e)
    {
        const char *name = json_string_value(json_object_get(e, "name"));
        const char *conv = json_string_value(json_object_get(e, "convention"));
        if (strcmp(name, "generalized_dice") == 0) {
            gd = conv && strstr(conv, "MONAI") && strstr(conv, "GeneralizedDiceLoss");
        }
        if (strcmp(name, "mcc") == 0) {
            mcc = conv && strstr(conv, "smp") && strstr(conv, "MCCLoss");
        }
        if (strcmp(name, "tversky") == 0) {
            size_t k;
            json_t *p;
            json_array_foreach(json_object_get(e, "params"), k, p)
            {
                nr = nr || strcmp(json_string_value(json_object_get(p, "name")), "smooth_nr") == 0;
            }
        }
    }
    CHECK(gd);
    CHECK(mcc);
    CHECK(nr);
    json_decref(j);
}

int main(int argc, char **argv)
{
    static const struct check_test tests[] = {
        CHECK_TEST(test_gdice_monai_binary),
        CHECK_TEST(test_gdice_monai_multiclass),
        CHECK_TEST(test_gdice_monai_multilabel),
        CHECK_TEST(test_gdice_infinite_weight),
        CHECK_TEST(test_mcc_smp),
        CHECK_TEST(test_mcc_by_hand),
        CHECK_TEST(test_smooth_nr_dr),
        CHECK_TEST(test_reduction_monai),
        CHECK_TEST(test_reduction_by_hand),
        CHECK_TEST(test_absent_classes),
        CHECK_TEST(test_refusals),
        CHECK_TEST(test_wire),
        CHECK_TEST(test_catalog),
    };
    return CHECK_RUN("test_rloss", tests);
}
