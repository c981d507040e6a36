/* test_chal_config.c - a challenge's configuration (proto/challenge.h, CHALLENGES.md
 * "Configuration"): every rule and error path of slc_config_parse, the defaults, the value keys
 * the spec produces, RFC 3339 times, and the round trip through slc_config_json. Expected values
 * are the contract's rules and hand calculations written beside them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "challenge.h"

static char msg[512];

/* Parses text; returns the code, *c set on success. */
static int parse(const char *text, struct slc_config **c)
{
    msg[0] = '\0';
    return slc_config_parse(text, strlen(text), NULL, c, msg, sizeof msg);
}

/* Expects text to be refused with code and a message starting with prefix. */
static void refused(const char *text, int code, const char *prefix)
{
    struct slc_config *c = (struct slc_config *)1;
    int rc = parse(text, &c);
    CHECK_INT(rc, code);
    CHECK(c == NULL);
    CHECK_PREFIX(msg, prefix);
    if (rc == 0) {
        fprintf(stderr, "  accepted: %s\n", text);
        slc_config_free(c);
    }
}

#define MIN_SPEC "\"spec\": {\"mode\": \"binary\"}"
#define RANK "\"ranking\": [{\"key\": \"metrics.dice.mean\", \"order\": \"desc\"}]"

static void test_minimal_defaults(void)
{
    struct slc_config *c = NULL;
    CHECK_INT(parse("{\"title\": \"T\", " MIN_SPEC ", " RANK "}", &c), 0);
    if (!c) {
        return;
    }
    CHECK(strcmp(c->title, "T") == 0);
    CHECK(strcmp(c->description, "") == 0);
    CHECK(c->mode == SL_MODE_BINARY);
    CHECK(c->pred_type == SL_PRED_LOGITS); /* README: prediction_type defaults to logits */
    CHECK_INT(c->nranking, 1);
    CHECK(strcmp(c->ranking[0].key, "metrics.dice.mean") == 0 && c->ranking[0].desc);
    /* columns default to the ranking keys */
    CHECK_INT(c->ncolumns, 1);
    CHECK(strcmp(c->columns[0].key, "metrics.dice.mean") == 0 && c->columns[0].desc);
    /* CHALLENGES.md defaults: all public, seed 0, per_day 5, total none, concurrent 1, no
     * window, 2 final selections, keep best, private hidden */
    CHECK(c->public_fraction == 1.0);
    CHECK_INT(c->seed, 0);
    CHECK(c->public_ids == NULL);
    CHECK_INT(c->per_day, 5);
    CHECK_INT(c->total, -1);
    CHECK_INT(c->concurrent, 1);
    CHECK(c->opens_at == INT64_MIN && c->closes_at == INT64_MAX);
    CHECK_INT(c->final_selections, 2);
    CHECK(!c->keep_latest && !c->private_visible);
    /* default metrics dice and iou: mean and (binary) global each */
    CHECK(slc_config_has_key(c, "metrics.dice.mean"));
    CHECK(slc_config_has_key(c, "metrics.dice.global"));
    CHECK(slc_config_has_key(c, "metrics.iou.mean"));
    CHECK(slc_config_has_key(c, "metrics.iou.global"));
    CHECK(!slc_config_has_key(c, "metrics.iou.value"));
    CHECK(!slc_config_has_key(c, "losses.dice.value"));
    CHECK_INT(c->nproduced, 4);
    slc_config_free(c);
}

static void test_full_example(void)
{
    /* the example of CHALLENGES.md "Configuration" */
    const char *text =
        "{\"title\": \"Lesions 2027\", \"description\": \"plain text\",\n"
        " \"spec\": {\"mode\": \"binary\", \"prediction_type\": \"labels\",\n"
        "          \"metrics\": [\"dice\", {\"name\": \"hausdorff\", \"percentile\": 95, \"as\": "
        "\"hd95\"}]},\n"
        " \"ranking\": [{\"key\": \"metrics.dice.mean\", \"order\": \"desc\"}, {\"key\": "
        "\"metrics.hd95.mean\", \"order\": \"asc\"}],\n"
        " \"columns\": [\"metrics.dice.mean\", \"metrics.hd95.mean\", \"metrics.dice.global\"],\n"
        " \"split\": {\"public_fraction\": 0.3, \"seed\": 1},\n"
        " \"quota\": {\"per_day\": 5, \"total\": null, \"concurrent\": 1},\n"
        " \"opens_at\": null, \"closes_at\": \"2027-06-30T23:59:59Z\",\n"
        " \"final_selections\": 2, \"keep\": \"best\", \"private_visible\": false}";
    struct slc_config *c = NULL;
    CHECK_INT(parse(text, &c), 0);
    if (!c) {
        fprintf(stderr, "  %s\n", msg);
        return;
    }
    CHECK(c->pred_type == SL_PRED_LABELS);
    CHECK_INT(c->nranking, 2);
    CHECK(!c->ranking[1].desc);
    CHECK_INT(c->ncolumns, 3);
    /* column orders: from the ranking key of the same name, else desc */
    CHECK(c->columns[0].desc && !c->columns[1].desc && c->columns[2].desc);
    CHECK(c->public_fraction == 0.3);
    CHECK_INT(c->seed, 1);
    /* 2027-06-30T23:59:59Z: days from 1970-01-01 to 2027-01-01 = 57 * 365 + 14 leap days
     * (1972..2024) = 20819; + Jan..May 2027 (31+28+31+30+31 = 151) + 29 = 20999 days;
     * 20999 * 86400 + 86399 = 1814399999 s (python3 -c "import calendar;
     * print(calendar.timegm((2027,6,30,23,59,59)))" prints 1814399999) */
    CHECK(c->closes_at == (int64_t)1814399999 * 1000000);
    CHECK(c->opens_at == INT64_MIN);
    /* dice (binary): mean and global; hausdorff as hd95 (surface): mean only */
    CHECK(slc_config_has_key(c, "metrics.hd95.mean"));
    CHECK(!slc_config_has_key(c, "metrics.hd95.global"));
    CHECK_INT(c->nproduced, 3);
    slc_config_free(c);
}

/* Parses text, writes it back, parses that: both configurations must agree in every field. */
static void round_trip(const char *text)
{
    struct slc_config *a = NULL, *b = NULL;
    CHECK_INT(parse(text, &a), 0);
    if (!a) {
        fprintf(stderr, "  %s\n", msg);
        return;
    }
    json_t *j = slc_config_json(a);
    CHECK(j != NULL);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    CHECK(s != NULL);
    if (s) {
        CHECK_INT(parse(s, &b), 0);
    }
    if (b) {
        CHECK(strcmp(a->title, b->title) == 0 && strcmp(a->description, b->description) == 0);
        CHECK(json_equal(a->spec, b->spec));
        CHECK(a->mode == b->mode && a->pred_type == b->pred_type);
        CHECK_INT(b->nranking, a->nranking);
        CHECK(memcmp(a->ranking, b->ranking, sizeof a->ranking) == 0);
        CHECK_INT(b->ncolumns, a->ncolumns);
        CHECK(memcmp(a->columns, b->columns, sizeof a->columns) == 0);
        CHECK(a->public_fraction == b->public_fraction && a->seed == b->seed);
        CHECK_INT(b->npublic_ids, a->npublic_ids);
        for (size_t i = 0; i < a->npublic_ids && i < b->npublic_ids; i++) {
            CHECK(strcmp(a->public_ids[i], b->public_ids[i]) == 0);
        }
        CHECK(a->per_day == b->per_day && a->total == b->total && a->concurrent == b->concurrent);
        CHECK(a->opens_at == b->opens_at && a->closes_at == b->closes_at);
        CHECK(a->final_selections == b->final_selections);
        CHECK(a->keep_latest == b->keep_latest && a->private_visible == b->private_visible);
        json_t *j2 = slc_config_json(b);
        CHECK(j2 && json_equal(j, j2));
        json_decref(j2);
    }
    free(s);
    json_decref(j);
    slc_config_free(a);
    slc_config_free(b);
}

static void test_round_trip(void)
{
    round_trip("{\"title\": \"T\", " MIN_SPEC ", " RANK "}");
    round_trip("{\"title\": \"\xc3\xa9t\xc3\xa9\", \"description\": \"d\", \"spec\": {\"mode\": "
               "\"multiclass\", \"losses\": [\"dice\", {\"name\": \"focal\", \"as\": \"f\"}]}, "
               "\"ranking\": [{\"key\": \"losses.f.value\", \"order\": \"asc\"}, {\"key\": "
               "\"metrics.iou.mean\", \"order\": \"desc\"}], \"columns\": [\"losses.dice.value\"], "
               "\"split\": {\"public_ids\": [\"b\", \"a\"]}, \"quota\": {\"per_day\": null, "
               "\"total\": 9}, \"opens_at\": \"2027-01-01T00:00:00.5+01:00\", \"closes_at\": "
               "\"2027-01-01T00:00:00.000001Z\", \"final_selections\": 0, \"keep\": \"latest\", "
               "\"private_visible\": true}");
}

static void test_times(void)
{
    struct slc_config *c = NULL;
    /* 2027-01-01T00:00:00.5+01:00 is 2026-12-31T23:00:00.5Z; 2027-01-01T00:00:00Z is 20819 days
     * after the epoch (57 years, 14 leap days): 20819 * 86400 = 1798761600 s (python3 -c "import
     * calendar; print(calendar.timegm((2027,1,1,0,0,0)))" prints 1798761600) */
    CHECK_INT(parse("{\"title\": \"T\", " MIN_SPEC ", " RANK
                    ", \"opens_at\": \"2027-01-01t00:00:00.5+01:00\", \"closes_at\": "
                    "\"2027-01-01T00:00:00.0000019z\"}",
                    &c),
              0);
    if (c) {
        CHECK(c->opens_at == (int64_t)(1798761600 - 3600) * 1000000 + 500000);
        /* digits past the sixth are dropped */
        CHECK(c->closes_at == (int64_t)1798761600 * 1000000 + 1);
        json_t *j = slc_config_json(c);
        CHECK(j && strcmp(json_string_value(json_object_get(j, "opens_at")),
                          "2026-12-31T23:00:00.500000Z") == 0);
        CHECK(j && strcmp(json_string_value(json_object_get(j, "closes_at")),
                          "2027-01-01T00:00:00.000001Z") == 0);
        json_decref(j);
        slc_config_free(c);
    }
    /* 1969-12-31T23:59:59Z is -1 s: before the epoch works too */
    CHECK_INT(parse("{\"title\": \"T\", " MIN_SPEC ", " RANK
                    ", \"opens_at\": \"1969-12-31T23:59:59Z\"}",
                    &c),
              0);
    if (c) {
        CHECK(c->opens_at == -1000000);
        json_t *j = slc_config_json(c);
        CHECK(j && strcmp(json_string_value(json_object_get(j, "opens_at")),
                          "1969-12-31T23:59:59Z") == 0);
        json_decref(j);
        slc_config_free(c);
    }
    /* 2024-02-29 exists (2024 is a leap year); 2027-02-29 and 2100-02-29 do not */
    CHECK_INT(parse("{\"title\": \"T\", " MIN_SPEC ", " RANK
                    ", \"opens_at\": \"2024-02-29T12:00:00Z\"}",
                    &c),
              0);
    slc_config_free(c);
    refused("{\"title\": \"T\", " MIN_SPEC ", " RANK ", \"opens_at\": \"2027-02-29T00:00:00Z\"}",
            SL_EINVAL, "opens_at: no such date");
    refused("{\"title\": \"T\", " MIN_SPEC ", " RANK ", \"opens_at\": \"2100-02-29T00:00:00Z\"}",
            SL_EINVAL, "opens_at: no such date");
    refused("{\"title\": \"T\", " MIN_SPEC ", " RANK ", \"opens_at\": \"2027-01-01T24:00:00Z\"}",
            SL_EINVAL, "opens_at: no such time");
    refused("{\"title\": \"T\", " MIN_SPEC ", " RANK ", \"opens_at\": \"2027-01-01T00:00:60Z\"}",
            SL_EINVAL, "opens_at: no such time");
    refused("{\"title\": \"T\", " MIN_SPEC ", " RANK ", \"opens_at\": \"2027-01-01T00:00:00\"}",
            SL_EINVAL, "opens_at: expected the offset");
    refused("{\"title\": \"T\", " MIN_SPEC ", " RANK
            ", \"opens_at\": \"2027-01-01T00:00:00+0100\"}",
            SL_EINVAL, "opens_at: expected the offset");
    refused("{\"title\": \"T\", " MIN_SPEC ", " RANK ", \"opens_at\": \"2027-01-01T00:00:00.Z\"}",
            SL_EINVAL, "opens_at: expected digits");
    refused("{\"title\": \"T\", " MIN_SPEC ", " RANK ", \"opens_at\": \"2027-01-01\"}", SL_EINVAL,
            "opens_at: expected an RFC 3339");
    refused("{\"title\": \"T\", " MIN_SPEC ", " RANK ", \"closes_at\": 1798761600}", SL_EINVAL,
            "closes_at: expected an RFC 3339");
    /* 0000-01-01T00:30:00+01:00 is the last day of year -1 */
    refused("{\"title\": \"T\", " MIN_SPEC ", " RANK
            ", \"opens_at\": \"0000-01-01T00:30:00+01:00\"}",
            SL_EINVAL, "opens_at: outside the years");
    refused("{\"title\": \"T\", " MIN_SPEC ", " RANK
            ", \"opens_at\": \"2027-01-02T00:00:00Z\", \"closes_at\": \"2027-01-02T00:00:00Z\"}",
            SL_EINVAL, "closes_at: must be after opens_at");
}

static void test_required_and_unknown(void)
{
    refused("[]", SL_EINVAL, "the body must be a JSON object");
    refused("{\"title\": ", SL_EMALFORMED, "malformed JSON");
    refused("{\"title\": \"a\", \"title\": \"b\", " MIN_SPEC ", " RANK "}", SL_EMALFORMED,
            "malformed JSON");
    refused("{" MIN_SPEC ", " RANK "}", SL_EINVAL, "title: required");
    refused("{\"title\": \"\", " MIN_SPEC ", " RANK "}", SL_EINVAL, "title: expected a non-empty");
    refused("{\"title\": 3, " MIN_SPEC ", " RANK "}", SL_EINVAL, "title: expected");
    refused("{\"title\": \"T\", " RANK "}", SL_EINVAL, "spec: required");
    refused("{\"title\": \"T\", \"spec\": [], " RANK "}", SL_EINVAL, "spec: expected an object");
    refused("{\"title\": \"T\", " MIN_SPEC "}", SL_EINVAL, "ranking: required");
    /* a NUL inside a string: jansson refuses it (no JSON_ALLOW_NUL), so nothing is cut */
    refused("{\"title\": \"T\\u0000x\", " MIN_SPEC ", " RANK "}", SL_EMALFORMED, "malformed JSON");
    refused("{\"title\": \"T\", " MIN_SPEC ", " RANK ", \"colour\": 1}", SL_EINVAL,
            "colour: unknown key");
    refused("{\"title\": \"T\", \"description\": 1, " MIN_SPEC ", " RANK "}", SL_EINVAL,
            "description: expected a string");
    /* 201 characters (the limit is 200, counted in code points: 'é' is one) */
    char t[600];
    strcpy(t, "{\"title\": \"");
    for (int i = 0; i < 201; i++) {
        strcat(t, "\xc3\xa9");
    }
    strcat(t, "\", " MIN_SPEC ", " RANK "}");
    refused(t, SL_EINVAL, "title: expected a non-empty string of at most 200");
    /* 200 two-byte characters are 400 bytes but 200 characters: fine */
    strcpy(t, "{\"title\": \"");
    for (int i = 0; i < 200; i++) {
        strcat(t, "\xc3\xa9");
    }
    strcat(t, "\", " MIN_SPEC ", " RANK "}");
    struct slc_config *c = NULL;
    CHECK_INT(parse(t, &c), 0);
    slc_config_free(c);
}

static void test_spec_errors(void)
{
    /* the /v1/score parser's messages, prefixed with "spec." */
    refused("{\"title\": \"T\", \"spec\": {\"mode\": \"sideways\"}, " RANK "}", SL_EINVAL,
            "spec.mode: must be one of");
    refused("{\"title\": \"T\", \"spec\": {\"per_image\": true}, " RANK "}", SL_EINVAL,
            "spec.per_image: not a key");
    refused("{\"title\": \"T\", \"spec\": {\"target\": [1]}, " RANK "}", SL_EINVAL,
            "spec.target: a challenge's spec holds no arrays");
    refused("{\"title\": \"T\", \"spec\": {\"losses\": [\"nope\"]}, " RANK "}", SL_EINVAL,
            "spec.losses[0]");
}

static void test_ranking_and_columns(void)
{
    refused("{\"title\": \"T\", " MIN_SPEC ", \"ranking\": []}", SL_EINVAL,
            "ranking: expected a list of 1 to 16");
    refused("{\"title\": \"T\", " MIN_SPEC ", \"ranking\": [\"metrics.dice.mean\"]}", SL_EINVAL,
            "ranking[0]: expected an object");
    refused("{\"title\": \"T\", " MIN_SPEC
            ", \"ranking\": [{\"key\": \"metrics.dice.mean\", \"order\": \"desc\"}, {\"key\": "
            "\"metrics.dice.mean\", \"order\": \"asc\"}]}",
            SL_EINVAL, "ranking[1].key: 'metrics.dice.mean' is already ranking[0].key");
    refused("{\"title\": \"T\", " MIN_SPEC
            ", \"ranking\": [{\"key\": \"metrics.dice.mean\", \"order\": \"up\"}]}",
            SL_EINVAL, "ranking[0].order: required");
    refused("{\"title\": \"T\", " MIN_SPEC ", \"ranking\": [{\"key\": \"metrics.dice.mean\"}]}",
            SL_EINVAL, "ranking[0].order: required");
    refused("{\"title\": \"T\", " MIN_SPEC ", \"ranking\": [{\"order\": \"asc\"}]}", SL_EINVAL,
            "ranking[0].key: required");
    refused("{\"title\": \"T\", " MIN_SPEC
            ", \"ranking\": [{\"key\": \"metrics.dice.mean\", \"order\": \"asc\", \"w\": 1}]}",
            SL_EINVAL, "ranking[0].w: unknown key");
    refused("{\"title\": \"T\", " MIN_SPEC
            ", \"ranking\": [{\"key\": \"metrics.dice.median\", \"order\": \"asc\"}]}",
            SL_EINVAL, "ranking[0].key: 'metrics.dice.median' is not a value key");
    refused("{\"title\": \"T\", " MIN_SPEC
            ", \"ranking\": [{\"key\": \"dice\", \"order\": \"asc\"}]}",
            SL_EINVAL, "ranking[0].key: 'dice' is not a value key");
    refused("{\"title\": \"T\", " MIN_SPEC
            ", \"ranking\": [{\"key\": \"metrics.hd95.mean\", \"order\": \"asc\"}]}",
            SL_EINVAL, "ranking[0].key: 'metrics.hd95.mean': the spec has no metric called 'hd95'");
    refused("{\"title\": \"T\", " MIN_SPEC
            ", \"ranking\": [{\"key\": \"losses.dice.value\", \"order\": \"asc\"}]}",
            SL_EINVAL, "ranking[0].key: 'losses.dice.value': the spec has no loss");
    /* global outside binary mode: a per-class list */
    refused("{\"title\": \"T\", \"spec\": {\"mode\": \"multiclass\"}"
            ", \"ranking\": [{\"key\": \"metrics.dice.global\", \"order\": \"desc\"}]}",
            SL_EINVAL, "ranking[0].key: 'metrics.dice.global': in mode multiclass");
    /* with no mode given (auto) too */
    refused("{\"title\": \"T\", \"spec\": {}"
            ", \"ranking\": [{\"key\": \"metrics.dice.global\", \"order\": \"desc\"}]}",
            SL_EINVAL, "ranking[0].key: 'metrics.dice.global': in mode auto");
    /* confusion counts have no value key; a surface metric no global */
    refused("{\"title\": \"T\", \"spec\": {\"mode\": \"binary\", \"metrics\": [\"confusion\"]}"
            ", \"ranking\": [{\"key\": \"metrics.confusion.mean\", \"order\": \"desc\"}]}",
            SL_EINVAL, "ranking[0].key: 'metrics.confusion.mean': metric confusion is confusion");
    refused("{\"title\": \"T\", \"spec\": {\"mode\": \"binary\", \"metrics\": [\"hausdorff\"]}"
            ", \"ranking\": [{\"key\": \"metrics.hausdorff.global\", \"order\": \"asc\"}]}",
            SL_EINVAL, "ranking[0].key: 'metrics.hausdorff.global': hausdorff is a surface");
    /* 17 ranking keys: over SLC_MAX_KEYS (16) */
    char t[4096];
    strcpy(t, "{\"title\": \"T\", \"spec\": {\"mode\": \"binary\", \"losses\": [");
    for (int i = 0; i < 17; i++) {
        sprintf(t + strlen(t), "%s{\"name\": \"dice\", \"as\": \"d%d\"}", i ? ", " : "", i);
    }
    strcat(t, "]}, \"ranking\": [");
    for (int i = 0; i < 17; i++) {
        sprintf(t + strlen(t), "%s{\"key\": \"losses.d%d.value\", \"order\": \"asc\"}",
                i ? ", " : "", i);
    }
    strcat(t, "]}");
    refused(t, SL_EINVAL, "ranking: expected a list of 1 to 16");
    refused("{\"title\": \"T\", " MIN_SPEC ", " RANK ", \"columns\": []}", SL_EINVAL,
            "columns: expected a list of 1 to 16");
    refused("{\"title\": \"T\", " MIN_SPEC ", " RANK ", \"columns\": [3]}", SL_EINVAL,
            "columns[0]: expected a value key");
    refused("{\"title\": \"T\", " MIN_SPEC ", " RANK
            ", \"columns\": [\"metrics.iou.mean\", \"metrics.iou.mean\"]}",
            SL_EINVAL, "columns[1]: 'metrics.iou.mean' is already columns[0]");
    refused("{\"title\": \"T\", " MIN_SPEC ", " RANK ", \"columns\": [\"metrics.x.mean\"]}",
            SL_EINVAL, "columns[0]: 'metrics.x.mean': the spec has no metric");
}

static void test_split_quota_misc(void)
{
    refused("{\"title\": \"T\", " MIN_SPEC ", " RANK ", \"split\": 0.5}", SL_EINVAL,
            "split: expected");
    refused("{\"title\": \"T\", " MIN_SPEC ", " RANK ", \"split\": {\"public_fraction\": 0}}",
            SL_EINVAL, "split.public_fraction: expected a number in (0, 1]");
    refused("{\"title\": \"T\", " MIN_SPEC ", " RANK ", \"split\": {\"public_fraction\": 1.5}}",
            SL_EINVAL, "split.public_fraction: expected a number in (0, 1]");
    refused("{\"title\": \"T\", " MIN_SPEC ", " RANK ", \"split\": {\"public_fraction\": \"1\"}}",
            SL_EINVAL, "split.public_fraction: expected a number");
    refused("{\"title\": \"T\", " MIN_SPEC ", " RANK ", \"split\": {\"seed\": -1}}", SL_EINVAL,
            "split.seed: expected an integer >= 0");
    refused("{\"title\": \"T\", " MIN_SPEC ", " RANK ", \"split\": {\"seed\": 1.0}}", SL_EINVAL,
            "split.seed: expected an integer >= 0");
    refused("{\"title\": \"T\", " MIN_SPEC ", " RANK
            ", \"split\": {\"public_ids\": [\"a\"], \"seed\": 1}}",
            SL_EINVAL, "split: give either public_ids");
    refused("{\"title\": \"T\", " MIN_SPEC ", " RANK
            ", \"split\": {\"public_ids\": [\"a\", \"a\"]}}",
            SL_EINVAL, "split.public_ids[1]: 'a' repeats split.public_ids[0]");
    refused("{\"title\": \"T\", " MIN_SPEC ", " RANK ", \"split\": {\"public_ids\": [\"a b\"]}}",
            SL_EINVAL, "split.public_ids[0]: 'a b' is not an image id");
    refused("{\"title\": \"T\", " MIN_SPEC ", " RANK ", \"split\": {\"fraction\": 1}}", SL_EINVAL,
            "split.fraction: unknown key");
    refused("{\"title\": \"T\", " MIN_SPEC ", " RANK ", \"quota\": {\"per_day\": 2.5}}", SL_EINVAL,
            "quota.per_day: expected an integer >= 1 or null");
    refused("{\"title\": \"T\", " MIN_SPEC ", " RANK ", \"quota\": {\"per_day\": \"5\"}}",
            SL_EINVAL, "quota.per_day: expected an integer >= 1 or null");
    refused("{\"title\": \"T\", " MIN_SPEC ", " RANK ", \"quota\": {\"per_day\": 0}}", SL_EINVAL,
            "quota.per_day: expected an integer >= 1 or null");
    refused("{\"title\": \"T\", " MIN_SPEC ", " RANK ", \"quota\": {\"total\": 0}}", SL_EINVAL,
            "quota.total: expected an integer >= 1 or null");
    refused("{\"title\": \"T\", " MIN_SPEC ", " RANK ", \"quota\": {\"concurrent\": null}}",
            SL_EINVAL, "quota.concurrent: expected an integer >= 1");
    refused("{\"title\": \"T\", " MIN_SPEC ", " RANK ", \"quota\": {\"hourly\": 1}}", SL_EINVAL,
            "quota.hourly: unknown key");
    refused("{\"title\": \"T\", " MIN_SPEC ", " RANK ", \"quota\": []}", SL_EINVAL,
            "quota: expected");
    refused("{\"title\": \"T\", " MIN_SPEC ", " RANK ", \"final_selections\": -1}", SL_EINVAL,
            "final_selections: expected an integer >= 0");
    refused("{\"title\": \"T\", " MIN_SPEC ", " RANK ", \"keep\": \"first\"}", SL_EINVAL,
            "keep: expected \"best\" or \"latest\"");
    refused("{\"title\": \"T\", " MIN_SPEC ", " RANK ", \"private_visible\": 1}", SL_EINVAL,
            "private_visible: expected true or false");
    /* quota keys missing take their defaults; null per_day means none */
    struct slc_config *c = NULL;
    CHECK_INT(parse("{\"title\": \"T\", " MIN_SPEC ", " RANK
                    ", \"quota\": {\"per_day\": null, \"concurrent\": 3}, \"split\": "
                    "{\"seed\": 7}}",
                    &c),
              0);
    if (c) {
        CHECK_INT(c->per_day, -1);
        CHECK_INT(c->total, -1);
        CHECK_INT(c->concurrent, 3);
        CHECK(c->public_fraction == 1.0);
        CHECK_INT(c->seed, 7);
        slc_config_free(c);
    }
    slc_config_free(NULL);
}

static const struct check_test tests[] = {
    CHECK_TEST(test_minimal_defaults),     CHECK_TEST(test_full_example),
    CHECK_TEST(test_round_trip),           CHECK_TEST(test_times),
    CHECK_TEST(test_required_and_unknown), CHECK_TEST(test_spec_errors),
    CHECK_TEST(test_ranking_and_columns),  CHECK_TEST(test_split_quota_misc),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_chal_config", tests);
}
