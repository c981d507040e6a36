/* test_agg.c - combining /v1/score answers (proto/agg.h) as seglossd does for a submission whose
 * images differ in size: one answer per shape, ids given or not. The answers are written by
 * hand (a 2x2 image, then two 3x3 images) and every combined value is worked out in the
 * comments from the rules of proto/agg.c's file comment. The CLI's own tests (make test T=cli)
 * check the same code against single requests over a real server. */
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "../check.h"
#include "agg.h"
#include "segloss.h"

/* The spec both tests start from: binary, a pixel loss, a per-image loss, the dice metric. */
static json_t *test_spec(void)
{
    return json_loads("{\"mode\": \"binary\", \"losses\": [\"cross_entropy\", \"dice\"], "
                      "\"metrics\": [\"dice\"]}",
                      0, NULL);
}

/* Answer 1: one 2x2 image with counts tp 1, fp 1, fn 1, tn 1 (dice 2/4 = 0.5). */
static const char answer1[] =
    "{\"images\": 1, \"mode\": \"binary\", \"classes\": 1, \"shape\": [2, 2], \"elapsed_ms\": 1.5,"
    " \"conventions\": {\"include_background\": true, \"empty\": \"nan\"},"
    " \"losses\": {\"cross_entropy\": {\"value\": 0.2, \"per_image\": [0.2]},"
    "              \"dice\": {\"value\": 0.3, \"per_image\": [0.3]}},"
    " \"metrics\": {\"dice\": {\"mean\": 0.5, \"per_image\": [0.5]},"
    "  \"__segloss_cli_confusion\": {\"per_image\": [{\"tp\": 1, \"fp\": 1, \"fn\": 1, \"tn\": "
    "1}]}}}";

/* Answer 2: two 3x3 images, counts tp 4, tn 5 (dice 1) and all background (dice undefined). */
static const char answer2[] =
    "{\"images\": 2, \"mode\": \"binary\", \"classes\": 1, \"shape\": [3, 3], \"elapsed_ms\": 2.5,"
    " \"conventions\": {\"include_background\": true, \"empty\": \"nan\"},"
    " \"losses\": {\"cross_entropy\": {\"value\": 0.25, \"per_image\": [0.1, 0.4]},"
    "              \"dice\": {\"value\": 0.3, \"per_image\": [0.1, 0.5]}},"
    " \"metrics\": {\"dice\": {\"mean\": 1.0, \"per_image\": [1.0, null]},"
    "  \"__segloss_cli_confusion\": {\"per_image\": [{\"tp\": 4, \"fp\": 0, \"fn\": 0, \"tn\": 5},"
    "                                               {\"tp\": 0, \"fp\": 0, \"fn\": 0, \"tn\": "
    "9}]}}}";

/* The number j[a][b][c] (losses, dice, value); NaN when absent or not a number. */
static double num_at(json_t *j, const char *a, const char *b, const char *c)
{
    json_t *v = json_object_get(json_object_get(json_object_get(j, a), b), c);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static void test_two_shapes(void)
{
    char msg[256] = "";
    json_t *spec = test_spec();
    struct slp_agg *a = slp_agg_new(spec, 2, msg, sizeof msg);
    CHECK(a != NULL);
    if (!a) {
        json_decref(spec);
        return;
    }
    /* the spec now asks for per-image values and the hidden counts metric */
    CHECK(json_is_true(json_object_get(spec, "per_image")));
    json_t *hidden = json_array_get(json_object_get(spec, "metrics"), 1);
    const char *as = json_string_value(json_object_get(hidden, "as"));
    CHECK(as && strcmp(as, "__segloss_cli_confusion") == 0);

    json_t *r1 = json_loads(answer1, 0, NULL), *r2 = json_loads(answer2, 0, NULL);
    CHECK(r1 && r2);
    CHECK_INT(slp_agg_add(a, r1, 0, 1, msg, sizeof msg), 0);
    CHECK_INT(slp_agg_add(a, r2, 1, 3, msg, sizeof msg), 0);
    const char *ids[3] = {"a", "b", "c"};
    json_t *r = slp_agg_result(a, ids, 3, true);
    CHECK(r != NULL);
    CHECK_INT(json_integer_value(json_object_get(r, "images")), 3);
    CHECK_INT(json_integer_value(json_object_get(r, "batches")), 2);
    /* two shapes: "shapes" [[2, 2], [3, 3]] and no "shape" */
    json_t *shapes = json_object_get(r, "shapes");
    CHECK_INT(json_array_size(shapes), 2);
    CHECK_INT(json_integer_value(json_array_get(json_array_get(shapes, 1), 0)), 3);
    CHECK(json_object_get(r, "shape") == NULL);
    /* cross entropy, a pixel mean: (0.2 x 4 + 0.1 x 9 + 0.4 x 9) / (4 + 9 + 9) = 5.3 / 22 */
    CHECK_CLOSE(num_at(r, "losses", "cross_entropy", "value"), 5.3 / 22, 1e-12, 0);
    /* the dice loss, a mean of per-image values: (0.3 + 0.1 + 0.5) / 3 = 0.3 */
    CHECK_CLOSE(num_at(r, "losses", "dice", "value"), 0.3, 1e-12, 0);
    /* the dice metric: mean of the defined per-image values (0.5 + 1) / 2 = 0.75; global from
     * the summed counts tp 5, fp 1, fn 1: 2*5 / (2*5 + 1 + 1) = 10/12; one undefined */
    CHECK_CLOSE(num_at(r, "metrics", "dice", "mean"), 0.75, 1e-12, 0);
    CHECK_CLOSE(num_at(r, "metrics", "dice", "global"), 10.0 / 12, 1e-12, 0);
    CHECK_INT(json_integer_value(json_object_get(
                  json_object_get(json_object_get(r, "metrics"), "dice"), "undefined")),
              1);
    json_t *pi =
        json_object_get(json_object_get(json_object_get(r, "metrics"), "dice"), "per_image");
    CHECK_INT(json_array_size(pi), 3);
    CHECK(json_is_null(json_array_get(pi, 2)));
    /* hidden entries stay out; the ids come in the order given */
    CHECK(json_object_get(json_object_get(r, "metrics"), "__segloss_cli_confusion") == NULL);
    CHECK_INT(json_object_size(json_object_get(r, "metrics")), 1);
    json_t *rid = json_object_get(r, "image_ids");
    CHECK_INT(json_array_size(rid), 3);
    CHECK(strcmp(json_string_value(json_array_get(rid, 2)), "c") == 0);
    /* elapsed: 1.5 + 2.5 */
    CHECK_CLOSE(json_number_value(json_object_get(r, "elapsed_ms")), 4.0, 0, 1e-12);
    json_decref(r);
    /* without ids: no image_ids; without per_image: no lists */
    r = slp_agg_result(a, NULL, 0, true);
    CHECK(r && json_object_get(r, "image_ids") == NULL);
    json_decref(r);
    r = slp_agg_result(a, ids, 3, false);
    CHECK(r && json_object_get(r, "image_ids") == NULL);
    CHECK(json_object_get(json_object_get(json_object_get(r, "metrics"), "dice"), "per_image") ==
          NULL);
    CHECK_CLOSE(num_at(r, "metrics", "dice", "mean"), 0.75, 1e-12, 0);
    json_decref(r);
    json_decref(r1);
    json_decref(r2);
    slp_agg_free(a);
    json_decref(spec);
}

static void test_one_answer(void)
{
    /* one request: its answer is the result, with the ids added */
    char msg[256] = "";
    json_t *spec = test_spec();
    struct slp_agg *a = slp_agg_new(spec, 1, msg, sizeof msg);
    CHECK(a != NULL);
    /* nothing hidden is added for one request */
    CHECK_INT(json_array_size(json_object_get(spec, "metrics")), 1);
    json_t *r2 = json_loads(answer2, 0, NULL);
    CHECK_INT(slp_agg_add(a, r2, 0, 2, msg, sizeof msg), 0);
    const char *ids[2] = {"x", "y"};
    json_t *r = slp_agg_result(a, ids, 2, true);
    CHECK_CLOSE(num_at(r, "losses", "cross_entropy", "value"), 0.25, 0, 0);
    CHECK_CLOSE(num_at(r, "metrics", "dice", "mean"), 1.0, 0, 0);
    CHECK_INT(json_array_size(json_object_get(r, "shape")), 2);
    CHECK_INT(json_array_size(json_object_get(r, "image_ids")), 2);
    json_decref(r);
    json_decref(r2);
    slp_agg_free(a);
    json_decref(spec);
}

static void test_refusals(void)
{
    char msg[256] = "";
    /* a user key with the hidden prefix */
    json_t *spec =
        json_loads("{\"metrics\": [{\"name\": \"dice\", \"as\": \"__segloss_cli_d\"}]}", 0, NULL);
    CHECK(slp_agg_new(spec, 2, msg, sizeof msg) == NULL);
    CHECK_HAS(msg, "metrics[0]");
    json_decref(spec);
    /* balanced cross entropy's default beta "auto" pools the batch: refused over 2, fine in 1 */
    spec = json_loads("{\"losses\": [\"balanced_cross_entropy\"]}", 0, NULL);
    CHECK(slp_agg_new(spec, 2, msg, sizeof msg) == NULL);
    CHECK_HAS(msg, "cannot be combined from 2 batches");
    struct slp_agg *a = slp_agg_new(spec, 1, msg, sizeof msg);
    CHECK(a != NULL);
    slp_agg_free(a);
    json_decref(spec);
    slp_agg_free(NULL);

    /* answers that do not fit */
    spec = test_spec();
    a = slp_agg_new(spec, 2, msg, sizeof msg);
    json_t *r1 = json_loads(answer1, 0, NULL), *r2 = json_loads(answer2, 0, NULL);
    CHECK_INT(slp_agg_add(a, r2, 0, 3, msg, sizeof msg), SL_EINVAL); /* 2 images, not 3 */
    CHECK_INT(slp_agg_add(a, r1, 0, 1, msg, sizeof msg), 0);
    json_object_set_new(r2, "mode", json_string("multilabel"));
    CHECK_INT(slp_agg_add(a, r2, 1, 3, msg, sizeof msg), SL_EINVAL);
    CHECK_HAS(msg, "one mode");
    json_object_set_new(r2, "mode", json_string("binary"));
    json_object_del(json_object_get(r2, "metrics"), "__segloss_cli_confusion");
    CHECK_INT(slp_agg_add(a, r2, 1, 3, msg, sizeof msg), SL_EINVAL);
    CHECK_HAS(msg, "confusion counts");
    json_decref(r1);
    json_decref(r2);
    slp_agg_free(a);
    json_decref(spec);
}

static const struct check_test tests[] = {
    CHECK_TEST(test_two_shapes),
    CHECK_TEST(test_one_answer),
    CHECK_TEST(test_refusals),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_agg", tests);
}
