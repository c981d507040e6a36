/* test_spec.c - the spec parser and the answer writer, through slp_score_request: statuses,
 * key paths in messages, defaults from the table, and the shape of the 200 answer. */
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "../check.h"
#include "proto.h"

/* Runs body; returns the status and keeps the parsed answer in *out (caller decrefs). */
static int run(const char *body, json_t **out)
{
    struct slp_limits lim;
    struct slp_response r;
    slp_limits_default(&lim);
    slp_score_request(body, strlen(body), &lim, NULL, &r);
    *out = json_loadb(r.body, r.len, 0, NULL);
    int status = r.status;
    if (status != 200 && (!*out || !strstr(r.content_type, "problem+json"))) {
        status = -1; /* an error must be problem+json */
    }
    slp_response_free(&r);
    return status;
}

/* The answer's status is want and its detail contains part. */
static void expect_error(const char *body, int want, const char *part)
{
    json_t *j;
    int status = run(body, &j);
    CHECK_INT(status, want);
    const char *detail = json_string_value(json_object_get(j, "detail"));
    const char *error = json_string_value(json_object_get(j, "error"));
    CHECK(detail && strstr(detail, part) != NULL);
    CHECK(error && detail && strcmp(error, detail) == 0);
    CHECK_INT(json_integer_value(json_object_get(j, "status")), want);
    if (!detail || !strstr(detail, part)) {
        fprintf(stderr, "  detail: %s\n  wanted: %s\n", detail ? detail : "(none)", part);
    }
    json_decref(j);
}

#define ARRAYS "\"prediction\": [[[0, 0], [0, 0]]], \"target\": [[[1, 0], [0, 0]]]"

/* j[a][b][c] as a number. */
static double num_at(json_t *j, const char *a, const char *b, const char *c)
{
    return json_number_value(json_object_get(json_object_get(json_object_get(j, a), b), c));
}

/* The unknown-key message points at what a user has (/openapi.json, /v1/catalog), and the keys
 * it lists are exactly the properties of openapi.json's ScoreRequest. */
static void check_unknown_key_lists_openapi(void)
{
    json_t *j;
    size_t len;
    const char *api = slp_openapi_json(&len);
    json_t *doc = json_loadb(api, len, 0, NULL);
    json_t *props = json_object_get(
        json_object_get(json_object_get(json_object_get(doc, "components"), "schemas"),
                        "ScoreRequest"),
        "properties");
    CHECK(json_object_size(props) == 15);
    CHECK_INT(run("{" ARRAYS ", \"lossses\": []}", &j), 422);
    const char *detail = json_string_value(json_object_get(j, "detail"));
    CHECK_HAS(detail, "lossses: unknown key; the spec's keys are ");
    CHECK_HAS(detail, "GET /openapi.json");
    CHECK_HAS(detail, "GET /v1/catalog");
    CHECK(detail && !strstr(detail, "API.md"));
    const char *key;
    json_t *v;
    json_object_foreach(props, key, v)
    {
        char word[64];
        snprintf(word, sizeof word, " %s%s", key, strcmp(key, "report_worst") ? "," : " (");
        if (strcmp(key, "per_image") == 0) {
            snprintf(word, sizeof word, " %s and", key);
        }
        CHECK_HAS(detail, word);
    }
    json_decref(j);
    json_decref(doc);
}

static void test_requests(void)
{
    json_t *j;
    /* malformed JSON and duplicate object keys are 400 */
    expect_error("{\"prediction\": ", 400, "malformed JSON");
    expect_error("{\"a\": 1, \"a\": 2}", 400, "duplicate");
    /* strictness: unknown keys, wrong types, ranges, names */
    expect_error("{" ARRAYS ", \"foo\": 1}", 422, "foo: unknown key");
    check_unknown_key_lists_openapi();
    expect_error("{" ARRAYS ", \"losses\": [{\"name\": \"dice\"}, {\"name\": \"focal\", "
                 "\"gamma\": -1}]}",
                 422, "losses[1].gamma");
    expect_error("{" ARRAYS ", \"losses\": [{\"name\": \"dice\", \"smoth\": 1}]}", 422,
                 "losses[0].smoth: unknown parameter of dice");
    expect_error("{" ARRAYS ", \"losses\": [{\"name\": \"dice\", \"squared\": 1}]}", 422,
                 "losses[0].squared: must be true or false");
    expect_error("{" ARRAYS ", \"losses\": [{\"name\": \"nope\"}]}", 422,
                 "unknown loss \"nope\"; the losses are cross_entropy");
    expect_error("{" ARRAYS ", \"losses\": [{\"name\": \"combo\", \"terms\": [{\"name\": "
                 "\"dice\"}, {\"name\": \"focal\", \"alpha\": 2}]}]}",
                 422, "losses[0].terms[1].alpha");
    expect_error("{" ARRAYS ", \"losses\": [{\"name\": \"combo\", \"terms\": []}]}", 422,
                 "losses[0].terms");
    expect_error("{" ARRAYS ", \"losses\": [{\"name\": \"combo\", \"terms\": [{\"name\": "
                 "\"combo\", \"terms\": [{\"name\": \"dice\"}]}]}]}",
                 422, "cannot be a term");
    expect_error("{" ARRAYS ", \"losses\": [{\"name\": \"tversky\", \"fp_weight\": 0.3}]}", 422,
                 "fn_weight");
    expect_error("{" ARRAYS ", \"losses\": [{\"name\": \"dice\"}, {\"name\": \"dice\"}]}", 422,
                 "losses[1]: response key \"dice\"");
    expect_error("{" ARRAYS ", \"metrics\": [\"dice\", {\"name\": \"fbeta\", \"beta\": 0}]}", 422,
                 "metrics[1].beta");
    expect_error("{" ARRAYS ", \"metrics\": [{\"name\": \"hausdorff\", \"percentile\": 101}]}", 422,
                 "metrics[0].percentile");
    expect_error("{" ARRAYS ", \"metrics\": [{\"name\": \"nsd\", \"empty_distance\": 1}]}", 422,
                 "metrics[0].empty_distance: unknown parameter of nsd");
    expect_error("{" ARRAYS ", \"losses\": [{\"name\": \"distance_weighted_cross_entropy\", "
                 "\"connectivity\": 6}]}",
                 422, "losses[0].connectivity: 6 is not one of 4, 8");
    expect_error("{" ARRAYS ", \"instances\": [[[1, 2, 3]]]}", 422, "instances: shape");
    expect_error("{" ARRAYS ", \"empty\": \"none\"}", 422, "empty: must be one of one, zero, nan");
    expect_error("{" ARRAYS ", \"threshold\": 1.5}", 422, "threshold");
    expect_error("{" ARRAYS ", \"spacing\": [1, -1]}", 422, "spacing[1]");
    expect_error("{\"prediction\": [[[0]]]}", 422, "target: required");
    /* a shape mismatch names both shapes */
    expect_error("{\"prediction\": [[[0, 0]]], \"target\": [[[1]]]}", 422, "[1, 1, 1]");

    /* defaults: metrics dice and iou; per-image lists; the conventions echoed */
    CHECK_INT(run("{" ARRAYS "}", &j), 200);
    CHECK(json_object_get(json_object_get(j, "metrics"), "dice") != NULL);
    CHECK(json_object_get(json_object_get(j, "metrics"), "iou") != NULL);
    CHECK(json_object_size(json_object_get(j, "losses")) == 0);
    CHECK(strcmp(json_string_value(json_object_get(j, "mode")), "binary") == 0);
    CHECK_INT(json_integer_value(json_object_get(j, "images")), 1);
    CHECK_INT(json_array_size(json_object_get(j, "shape")), 2);
    /* all logits 0 -> hard prediction everywhere (x >= 0): TP 1, FP 3 -> dice 2/5 */
    CHECK_CLOSE(num_at(j, "metrics", "dice", "mean"), 0.4, 1e-12, 0);
    json_t *conv = json_object_get(j, "conventions");
    CHECK_CLOSE(json_number_value(json_object_get(conv, "threshold")), 0.5, 0, 0);
    CHECK(strcmp(json_string_value(json_object_get(conv, "empty")), "one") == 0);
    CHECK(strcmp(json_string_value(json_object_get(conv, "prediction_type")), "logits") == 0);
    json_decref(j);

    /* "as" names the entry; per_image false drops the lists; CE at x = 0 is ln 2 */
    CHECK_INT(run("{" ARRAYS ", \"per_image\": false, \"losses\": [{\"name\": \"cross_entropy\", "
                  "\"as\": \"bce\"}], \"metrics\": []}",
                  &j),
              200);
    json_t *bce = json_object_get(json_object_get(j, "losses"), "bce");
    CHECK(bce != NULL);
    CHECK_CLOSE(json_number_value(json_object_get(bce, "value")), log(2.0), 1e-12, 0);
    CHECK(json_object_get(bce, "per_image") == NULL);
    json_decref(j);

    /* a bare loss name is that loss with its defaults, as in metrics; names and objects mix.
     * By hand, logits 0 (p = 0.5) against one foreground pixel of four: CE = ln 2; Dice
     * (smooth 0) = 1 - 2*0.5 / (4*0.5 + 1) = 2/3; focal (alpha 0.25, gamma 2) =
     * (0.25*0.5^2 + 3*0.75*0.5^2) ln 2 / 4 = 0.15625 ln 2. */
    CHECK_INT(run("{" ARRAYS ", \"losses\": [\"dice\", \"cross_entropy\", {\"name\": \"focal\", "
                  "\"as\": \"f\"}, {\"name\": \"combo\", \"terms\": [\"cross_entropy\", "
                  "{\"name\": \"dice\", \"weight\": 2}]}]}",
                  &j),
              200);
    CHECK_CLOSE(num_at(j, "losses", "dice", "value"), 2.0 / 3.0, 1e-12, 0);
    CHECK_CLOSE(num_at(j, "losses", "cross_entropy", "value"), log(2.0), 1e-12, 0);
    CHECK_CLOSE(num_at(j, "losses", "f", "value"), 0.15625 * log(2.0), 1e-12, 0);
    CHECK_CLOSE(num_at(j, "losses", "combo", "value"), log(2.0) + 2 * 2.0 / 3.0, 1e-12, 0);
    json_decref(j);
    /* bad entries still name their index */
    expect_error("{" ARRAYS ", \"losses\": [\"dice\", 1]}", 422,
                 "losses[1]: must be a loss name like \"dice\" or an object");
    expect_error("{" ARRAYS ", \"losses\": [null]}", 422, "losses[0]: must be a loss name");
    expect_error("{" ARRAYS ", \"losses\": [\"dice\", \"\"]}", 422,
                 "losses[1]: unknown loss \"\"; the losses are cross_entropy");
    expect_error("{" ARRAYS ", \"losses\": [\"nope\"]}", 422,
                 "losses[0]: unknown loss \"nope\"; the losses are");
    expect_error("{" ARRAYS ", \"losses\": [\"dice\", \"Dice\"]}", 422,
                 "losses[1]: unknown loss \"Dice\"");
    expect_error("{" ARRAYS ", \"losses\": [\"combo\"]}", 422,
                 "losses[0]: a combo needs its terms");
    expect_error("{" ARRAYS ", \"losses\": [{\"name\": \"combo\", \"terms\": [\"dice\", "
                 "\"combo\"]}]}",
                 422, "losses[0].terms[1]: a combo cannot be a term of a combo");
    expect_error("{" ARRAYS ", \"losses\": [{\"name\": \"combo\", \"terms\": [\"dice\", 7]}]}", 422,
                 "losses[0].terms[1]: must be a loss name");
    expect_error("{" ARRAYS ", \"losses\": [\"dice\", {\"name\": \"dice\"}]}", 422,
                 "losses[1]: response key \"dice\" is already used by losses[0]");

    /* empty "nan": an undefined value is JSON null, never a NaN token */
    CHECK_INT(run("{\"prediction\": [[[-5, -5]]], \"target\": [[[0, 0]]], \"empty\": \"nan\"}", &j),
              200);
    json_t *dice = json_object_get(json_object_get(j, "metrics"), "dice");
    CHECK(json_is_null(json_object_get(dice, "mean")));
    CHECK(json_is_null(json_array_get(json_object_get(dice, "per_image"), 0)));
    CHECK_INT(json_integer_value(json_object_get(dice, "undefined")), 1);
    json_decref(j);
}

static const struct check_test tests[] = {
    CHECK_TEST(test_requests),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_spec", tests);
}
