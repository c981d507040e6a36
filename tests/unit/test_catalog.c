/* test_catalog.c - GET /v1/catalog's document: valid JSON, every table row, and the defaults
 * and ranges openapi.json gives. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "proto.h"

/* The entry called name in list, or NULL. */
static json_t *entry(json_t *list, const char *name)
{
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "name")), name) == 0) {
            return e;
        }
    }
    return NULL;
}

static json_t *param(json_t *e, const char *name)
{
    return entry(json_object_get(e, "params"), name);
}

static double num(json_t *p, const char *key)
{
    return json_number_value(json_object_get(p, key));
}

static void test_catalog_doc(void)
{
    size_t len = 0;
    char *doc = slp_catalog_json(&len);
    CHECK(doc != NULL && len == strlen(doc));
    json_error_t err;
    json_t *j = json_loadb(doc, len, JSON_REJECT_DUPLICATES, &err);
    CHECK(j != NULL);
    if (!j) {
        fprintf(stderr, "catalog is not JSON: %s\n", err.text);
        free(doc);
        return;
    }
    json_t *losses = json_object_get(j, "losses"), *metrics = json_object_get(j, "metrics");
    /* every loss and metric of openapi.json */
    const char *api_losses[] = {"cross_entropy",
                                "weighted_cross_entropy",
                                "balanced_cross_entropy",
                                "focal",
                                "distance_weighted_cross_entropy",
                                "dice",
                                "jaccard",
                                "tversky",
                                "lovasz_hinge",
                                "lovasz_softmax",
                                "combo"};
    const char *api_metrics[] = {
        "dice", "iou",   "precision", "recall",    "specificity", "accuracy", "balanced_accuracy",
        "mcc",  "fbeta", "confusion", "hausdorff", "assd",        "nsd",      "npv"};
    for (size_t i = 0; i < sizeof api_losses / sizeof api_losses[0]; i++) {
        json_t *e = entry(losses, api_losses[i]);
        CHECK(e != NULL);
        CHECK(e && json_string_length(json_object_get(e, "summary")) > 0);
        CHECK(e && json_string_length(json_object_get(e, "convention")) > 0);
    }
    for (size_t i = 0; i < sizeof api_metrics / sizeof api_metrics[0]; i++) {
        CHECK(entry(metrics, api_metrics[i]) != NULL);
    }
    /* and every row of the tables, in their order: the catalog is written from them */
    int nl, nm;
    const struct sl_def *tl = sl_loss_table(&nl), *tm = sl_metric_table(&nm);
    CHECK_INT(json_array_size(losses), nl);
    CHECK_INT(json_array_size(metrics), nm);
    for (int i = 0; i < nl; i++) {
        CHECK(entry(losses, tl[i].name) == json_array_get(losses, (size_t)i));
    }
    for (int i = 0; i < nm; i++) {
        CHECK(entry(metrics, tm[i].name) == json_array_get(metrics, (size_t)i));
    }
    /* defaults and ranges of openapi.json */
    json_t *focal = entry(losses, "focal");
    CHECK_CLOSE(num(param(focal, "alpha"), "default"), 0.25, 0, 0);
    CHECK_CLOSE(num(param(focal, "gamma"), "default"), 2, 0, 0);
    CHECK_CLOSE(num(param(focal, "gamma"), "minimum"), 0, 0, 0);
    CHECK(strcmp(json_string_value(json_object_get(param(focal, "reduction"), "default")),
                 "mean") == 0);
    json_t *dw = entry(losses, "distance_weighted_cross_entropy");
    CHECK_CLOSE(num(param(dw, "w0"), "default"), 10, 0, 0);
    CHECK_CLOSE(num(param(dw, "sigma"), "default"), 5, 0, 0);
    CHECK_CLOSE(num(param(dw, "neighbors"), "default"), 2, 0, 0);
    CHECK(json_is_true(json_object_get(param(dw, "sigma"), "exclusive_minimum")));
    json_t *dice = entry(losses, "dice");
    CHECK_CLOSE(num(param(dice, "smooth"), "default"), 0, 0, 0);
    CHECK(json_is_false(json_object_get(param(dice, "squared"), "default")));
    CHECK(json_is_true(json_object_get(param(dice, "per_image"), "default")));
    json_t *bce = param(entry(losses, "balanced_cross_entropy"), "beta");
    CHECK(strcmp(json_string_value(json_object_get(bce, "default")), "auto") == 0);
    CHECK_INT(json_array_size(json_object_get(bce, "choices")), 2);
    CHECK_CLOSE(num(bce, "maximum"), 1, 0, 0);
    json_t *lsm = entry(losses, "lovasz_softmax");
    CHECK(strcmp(json_string_value(json_object_get(param(lsm, "classes"), "default")), "present") ==
          0);
    CHECK(json_is_false(json_object_get(param(lsm, "per_image"), "default")));
    CHECK_CLOSE(num(param(entry(metrics, "nsd"), "tolerance"), "default"), 1, 0, 0);
    CHECK_CLOSE(num(param(entry(metrics, "fbeta"), "beta"), "default"), 1, 0, 0);
    json_t *hd = entry(metrics, "hausdorff");
    CHECK(json_object_get(param(hd, "percentile"), "default") == NULL); /* absent = maximum */
    CHECK_CLOSE(num(param(hd, "percentile"), "maximum"), 100, 0, 0);
    json_decref(j);
    free(doc);
}

static const struct check_test tests[] = {
    CHECK_TEST(test_catalog_doc),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_catalog", tests);
}
