/* spec.c - strict parsing of the /v1/score spec (openapi.json ScoreRequest) into a lib request.
 * Unknown keys and wrong types are 422 naming the key path (losses[1].gamma); defaults come
 * from the lib's loss and metric tables. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array_internal.h"
#include "internal.h"

/* Writes "a, b, c" of a NULL-terminated list into buf. */
static void join(const char *const *list, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; list[i] && used < len; i++) {
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", list[i]);
    }
}

/* Writes the names of a loss or metric table as "a, b, c" into buf. */
static void table_names(const struct sl_def *(*table)(int *), char *buf, size_t len)
{
    int n;
    const struct sl_def *defs = table(&n);
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && used < len; i++) {
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", defs[i].name);
    }
}

/* Index of s in a NULL-terminated list, or -1. */
static int choice_index(const char *const *list, const char *s)
{
    for (int i = 0; list && list[i]; i++) {
        if (strcmp(list[i], s) == 0) {
            return i;
        }
    }
    return -1;
}

/* Converts a JSON parameter value (borrowed) to an sl_value under definition p. */
static int json_to_value(struct slp_score_req *owner, const struct sl_param_def *p, const json_t *j,
                         const char *path, struct sl_value *v, char *msg, size_t msglen)
{
    memset(v, 0, sizeof *v);
    if (json_is_array(j)) {
        /* a list has one value per class: longer than max_classes, it cannot fit any request
         * allowed through, so it is refused as the class count is (lib/score.c), with 413 */
        size_t n = json_array_size(j);
        const int64_t cmax = owner->lim.max_classes > 0 && owner->lim.max_classes < SL_MAX_CLASSES
                                 ? owner->lim.max_classes
                                 : SL_MAX_CLASSES;
        if (n > (size_t)cmax) {
            snprintf(msg, msglen,
                     "%s has %zu values, over the limit of %lld classes (--max-classes)", path, n,
                     (long long)cmax);
            return SL_ETOOLARGE;
        }
        if (owner->nlists == SLP_MAX_LISTS) {
            snprintf(msg, msglen, "%s: a request holds at most %d per-class lists", path,
                     SLP_MAX_LISTS);
            return SL_ETOOLARGE;
        }
        double *list = malloc(sizeof(double) * (n ? n : 1));
        if (!list) {
            snprintf(msg, msglen, "out of memory");
            return SL_ENOMEM;
        }
        owner->lists[owner->nlists++] = list;
        for (size_t i = 0; i < n; i++) {
            json_t *e = json_array_get(j, i);
            if (!json_is_number(e)) {
                snprintf(msg, msglen, "%s[%zu]: must be a number", path, i);
                return SL_EINVAL;
            }
            list[i] = json_number_value(e);
        }
        v->kind = SL_V_LIST;
        v->list = list;
        v->nlist = (int)n;
    } else if (json_is_boolean(j)) {
        v->kind = SL_V_BOOL;
        v->b = json_is_true(j);
    } else if (json_is_number(j)) {
        v->kind = SL_V_NUMBER;
        v->num = json_number_value(j);
    } else if (json_is_null(j)) {
        v->kind = SL_V_NULL;
    } else if (json_is_string(j)) {
        int c = choice_index(p->choices, json_string_value(j));
        if (c < 0) {
            char names[160] = "";
            if (p->choices) {
                join(p->choices, names, sizeof names);
                snprintf(msg, msglen, "%s: \"%s\" is not one of %s", path, json_string_value(j),
                         names);
            } else {
                snprintf(msg, msglen, "%s: must be a %s, not a string", path,
                         p->type == SL_PT_BOOL ? "boolean" : "number");
            }
            return SL_EINVAL;
        }
        v->kind = SL_V_ENUM;
        v->choice = c;
    } else {
        snprintf(msg, msglen, "%s: has the wrong type", path);
        return SL_EINVAL;
    }
    return sl_param_check(p, v, path, msg, msglen);
}

/* Reads the parameter key of spec's definition from val (path sub names it in messages). */
static int parse_param(struct slp_score_req *owner, struct sl_spec *spec, const char *key,
                       const json_t *val, const char *sub, char *msg, size_t msglen)
{
    int pi = sl_param_index(spec->def, key);
    if (pi < 0) {
        snprintf(msg, msglen, "%s: unknown parameter of %s", sub, spec->def->name);
        return SL_EINVAL;
    }
    return json_to_value(owner, &spec->def->params[pi], val, sub, &spec->values[pi], msg, msglen);
}

/* Reads "as" into spec->key. */
static int parse_as(const json_t *j, const char *path, struct sl_spec *spec, char *msg,
                    size_t msglen)
{
    const char *s = json_string_value(j);
    size_t n = s ? strlen(s) : 0;
    if (!s || n == 0 || n >= SL_KEY_MAX) {
        snprintf(msg, msglen, "%s.as: must be a non-empty string of at most %d characters", path,
                 SL_KEY_MAX - 1);
        return SL_EINVAL;
    }
    memcpy(spec->key, s, n + 1);
    return 0;
}

static int parse_loss(struct slp_score_req *owner, const json_t *j, const char *path,
                      struct sl_spec *spec, struct sl_spec *terms, bool is_term, char *msg,
                      size_t msglen);

/* Parses a combo's "terms" list into terms[] (SL_MAX_TERMS slots). */
static int parse_terms(struct slp_score_req *owner, const json_t *j, const char *path,
                       struct sl_spec *spec, struct sl_spec *terms, char *msg, size_t msglen)
{
    char sub[256];
    if (!json_is_array(j) || json_array_size(j) == 0 || json_array_size(j) > SL_MAX_TERMS) {
        snprintf(msg, msglen, "%s.terms: must be a list of 1 to %d loss specs", path, SL_MAX_TERMS);
        return SL_EINVAL;
    }
    spec->nterms = (int)json_array_size(j);
    spec->terms = terms;
    for (int i = 0; i < spec->nterms; i++) {
        snprintf(sub, sizeof sub, "%s.terms[%d]", path, i);
        int rc = parse_loss(owner, json_array_get(j, (size_t)i), sub, &terms[i], NULL, true, msg,
                            msglen);
        if (rc) {
            return rc;
        }
    }
    return 0;
}

/* The pairing rules of def's parameters (struct sl_param_def requires/excludes, e.g. tversky's
 * fp_weight/fn_weight pair, which excludes beta), on the keys object j gives: all pairs first,
 * then the exclusions. */
static int check_pairs(const struct sl_def *def, const json_t *j, const char *path, char *msg,
                       size_t msglen)
{
    for (int i = 0; i < def->nparams; i++) {
        const struct sl_param_def *p = &def->params[i];
        if (p->requires && json_object_get(j, p->name) && !json_object_get(j, p->requires)) {
            /* the pair named in row order */
            const bool first = i < sl_param_index(def, p->requires);
            snprintf(msg, msglen, "%s.%s: %s and %s go together", path, p->requires,
                     first ? p->name : p->requires, first ? p->requires : p->name);
            return SL_EINVAL;
        }
    }
    for (int i = 0; i < def->nparams; i++) {
        const struct sl_param_def *p = &def->params[i];
        if (p->excludes && json_object_get(j, p->name) && json_object_get(j, p->excludes)) {
            /* the excluded parameter with its pair: "fp_weight/fn_weight" */
            int x = sl_param_index(def, p->excludes);
            const char *pair = x >= 0 ? def->params[x].requires : NULL;
            snprintf(msg, msglen, "%s.%s: give either %s or %s%s%s, not both", path, p->name,
                     p->name, p->excludes, pair ? "/" : "", pair ? pair : "");
            return SL_EINVAL;
        }
    }
    /* MONAI's smooth_nr / smooth_dr each replace smooth on one side of a region loss's ratio */
    static const char *const split[] = {"smooth_nr", "smooth_dr"};
    for (int k = 0; k < 2; k++) {
        if (sl_param_index(def, split[k]) >= 0 && json_object_get(j, split[k]) &&
            json_object_get(j, "smooth")) {
            snprintf(msg, msglen,
                     "%s.%s: give either smooth (both sides) or smooth_nr/smooth_dr, not both",
                     path, split[k]);
            return SL_EINVAL;
        }
    }
    return 0;
}

/* Parses one loss spec: a name (that loss with its defaults, as metrics take them), or an
 * object with "name" and parameters. terms is the storage for a combo's terms (NULL inside a
 * combo: combos do not nest). */
static int parse_loss(struct slp_score_req *owner, const json_t *j, const char *path,
                      struct sl_spec *spec, struct sl_spec *terms, bool is_term, char *msg,
                      size_t msglen)
{
    char sub[256];
    const char *key;
    json_t *val;
    const bool bare = json_is_string(j);
    if (!bare && !json_is_object(j)) {
        snprintf(msg, msglen,
                 "%s: must be a loss name like \"dice\" or an object like {\"name\": \"dice\"}",
                 path);
        return SL_EINVAL;
    }
    const char *name = bare ? json_string_value(j) : json_string_value(json_object_get(j, "name"));
    if (!name) {
        snprintf(msg, msglen, "%s.name: required (a string)", path);
        return SL_EINVAL;
    }
    /* a bare name's message names the entry itself: there is no .name key */
    const char *dot = bare ? "" : ".name";
    const struct sl_def *def = sl_find_loss(name);
    if (!def) {
        char names[512];
        table_names(sl_loss_table, names, sizeof names);
        snprintf(msg, msglen, "%s%s: unknown loss \"%s\"; the losses are %s", path, dot, name,
                 names);
        return SL_EINVAL;
    }
    const bool terms_row = def->flags & SL_DEF_TERMS;
    if (is_term && terms_row) {
        snprintf(msg, msglen, "%s%s: a %s cannot be a term of a %s", path, dot, def->name,
                 def->name);
        return SL_EINVAL;
    }
    sl_spec_init(spec, def);
    snprintf(spec->path, sizeof spec->path, "%s", path);
    if (bare && terms_row) {
        snprintf(msg, msglen,
                 "%s: a %s needs its terms: {\"name\": \"%s\", \"terms\": [\"cross_entropy\", "
                 "\"dice\"]}",
                 path, def->name, def->name);
        return SL_EINVAL;
    }
    if (bare) {
        return 0;
    }
    json_object_foreach((json_t *)j, key, val)
    {
        snprintf(sub, sizeof sub, "%s.%s", path, key);
        int rc = 0;
        if (strcmp(key, "name") == 0) {
            continue;
        } else if (strcmp(key, "as") == 0 && !is_term) {
            rc = parse_as(val, path, spec, msg, msglen);
        } else if (strcmp(key, "weight") == 0 && is_term) {
            if (!json_is_number(val) || !(json_number_value(val) >= 0) ||
                !isfinite(json_number_value(val))) {
                snprintf(msg, msglen, "%s: must be a number >= 0", sub);
                rc = SL_EINVAL;
            }
            spec->weight = json_number_value(val);
        } else if (terms_row && strcmp(key, "terms") == 0) {
            rc = parse_terms(owner, val, path, spec, terms, msg, msglen);
        } else {
            rc = parse_param(owner, spec, key, val, sub, msg, msglen);
        }
        if (rc) {
            return rc;
        }
    }
    if (terms_row && spec->nterms == 0) {
        snprintf(msg, msglen, "%s.terms: required for %s", path, def->name);
        return SL_EINVAL;
    }
    return check_pairs(def, j, path, msg, msglen);
}

/* Parses one metric: a name, or an object with "name", "as" and parameters. */
static int parse_metric(struct slp_score_req *owner, const json_t *j, const char *path,
                        struct sl_spec *spec, char *msg, size_t msglen)
{
    char sub[256];
    const char *key;
    json_t *val;
    const char *name =
        json_is_string(j) ? json_string_value(j) : json_string_value(json_object_get(j, "name"));
    if (!name) {
        snprintf(msg, msglen, "%s: must be a metric name or an object with \"name\"", path);
        return SL_EINVAL;
    }
    const struct sl_def *def = sl_find_metric(name);
    if (!def) {
        char names[512];
        table_names(sl_metric_table, names, sizeof names);
        snprintf(msg, msglen, "%s: unknown metric \"%s\"; the metrics are %s", path, name, names);
        return SL_EINVAL;
    }
    sl_spec_init(spec, def);
    /* an alias answers under the name the user wrote (which, matching, is short) */
    snprintf(spec->key, sizeof spec->key, "%s", name);
    snprintf(spec->path, sizeof spec->path, "%s", path);
    if (json_is_string(j)) {
        return 0;
    }
    json_object_foreach((json_t *)j, key, val)
    {
        snprintf(sub, sizeof sub, "%s.%s", path, key);
        int rc = 0;
        if (strcmp(key, "name") == 0) {
            continue;
        } else if (strcmp(key, "as") == 0) {
            rc = parse_as(val, path, spec, msg, msglen);
        } else {
            rc = parse_param(owner, spec, key, val, sub, msg, msglen);
        }
        if (rc) {
            return rc;
        }
    }
    return 0;
}

/* Rejects a second entry with the same response key in specs[0..n). */
static int check_keys(const struct sl_spec *specs, int n, const char *list, char *msg,
                      size_t msglen)
{
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < i; k++) {
            if (strcmp(specs[i].key, specs[k].key) == 0) {
                snprintf(msg, msglen,
                         "%s[%d]: response key \"%s\" is already used by %s[%d]; name one of "
                         "them with \"as\"",
                         list, i, specs[i].key, list, k);
                return SL_EINVAL;
            }
        }
    }
    return 0;
}

/* Reads a string key as one of names (NULL-terminated); sets *out to its index. */
static int parse_enum(const json_t *j, const char *key, const char *const *names, int *out,
                      char *msg, size_t msglen)
{
    char list[160];
    const char *s = json_string_value(j);
    int c = s ? choice_index(names, s) : -1;
    if (c < 0) {
        join(names, list, sizeof list);
        snprintf(msg, msglen, "%s: must be one of %s", key, list);
        return SL_EINVAL;
    }
    *out = c;
    return 0;
}

static int parse_bool(const json_t *j, const char *key, bool *out, char *msg, size_t msglen)
{
    if (!json_is_boolean(j)) {
        snprintf(msg, msglen, "%s: must be true or false", key);
        return SL_EINVAL;
    }
    *out = json_is_true(j);
    return 0;
}

/* Reads report_worst: an integer 0..SLP_REPORT_WORST_MAX. */
static int parse_report_worst(const json_t *j, int *out, char *msg, size_t msglen)
{
    double d = json_number_value(j);
    if (!json_is_number(j) || d != floor(d) || d < 0 || d > SLP_REPORT_WORST_MAX) {
        snprintf(msg, msglen,
                 "report_worst: must be an integer from 0 to %d (the images the HTML report "
                 "draws)",
                 SLP_REPORT_WORST_MAX);
        return SL_EINVAL;
    }
    *out = (int)d;
    return 0;
}

static int parse_spacing(const json_t *j, struct sl_request *req, char *msg, size_t msglen)
{
    size_t n = json_array_size(j);
    if (!json_is_array(j) || n < 1 || n > 3) {
        snprintf(msg, msglen, "spacing: must be a list of 2 or 3 positive numbers");
        return SL_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(j, i);
        double d = json_number_value(v);
        if (!json_is_number(v) || !(d > 0) || !isfinite(d)) {
            snprintf(msg, msglen, "spacing[%zu]: must be a positive number", i);
            return SL_EINVAL;
        }
        req->spacing[i] = d;
    }
    req->nspacing = (int)n;
    return 0;
}

static int parse_ignore(const json_t *j, struct sl_request *req, char *msg, size_t msglen)
{
    double d = json_number_value(j);
    if (json_is_null(j)) {
        req->has_ignore = false;
        return 0;
    }
    if (!json_is_number(j) || d != floor(d) || fabs(d) > 9007199254740992.0) {
        snprintf(msg, msglen, "ignore_index: must be an integer (or null)");
        return SL_EINVAL;
    }
    req->has_ignore = true;
    req->ignore_index = (int64_t)d;
    return 0;
}

static int parse_list(struct slp_score_req *owner, const json_t *j, const char *key,
                      struct sl_spec *specs, int *count, struct sl_spec (*terms)[SL_MAX_TERMS],
                      char *msg, size_t msglen)
{
    char path[64];
    const int max = owner->lim.max_specs > 0 && owner->lim.max_specs < SLP_MAX_SPECS
                        ? owner->lim.max_specs
                        : SLP_MAX_SPECS;
    if (!json_is_array(j)) {
        snprintf(msg, msglen, "%s: must be a list", key);
        return SL_EINVAL;
    }
    if (json_array_size(j) > (size_t)max) {
        snprintf(msg, msglen, "%s has %zu entries, over the limit of %d (--max-specs)", key,
                 json_array_size(j), max);
        return SL_ETOOLARGE;
    }
    *count = (int)json_array_size(j);
    for (int i = 0; i < *count; i++) {
        snprintf(path, sizeof path, "%s[%d]", key, i);
        const json_t *e = json_array_get(j, (size_t)i);
        int rc = terms ? parse_loss(owner, e, path, &specs[i], terms[i], false, msg, msglen)
                       : parse_metric(owner, e, path, &specs[i], msg, msglen);
        if (rc) {
            return rc;
        }
    }
    return check_keys(specs, *count, key, msg, msglen);
}

void slp__score_req_free(struct slp_score_req *r)
{
    if (!r) {
        return;
    }
    slp_array_free(&r->prediction);
    slp_array_free(&r->target);
    slp_array_free(&r->weight);
    slp_array_free(&r->instances);
    for (int i = 0; i < r->nlists; i++) {
        free(r->lists[i]);
    }
    free(r);
}

static const char *const mode_names[] = {"auto", "binary", "multiclass", "multilabel", NULL};
static const char *const pred_type_names[] = {"logits", "probabilities", "labels", NULL};
static const char *const empty_names[] = {"one", "zero", "nan", NULL};

int slp__parse_spec(const json_t *root, const struct slp_limits *lim, bool with_arrays,
                    struct slp_score_req **out, char *msg, size_t msglen)
{
    const char *key;
    json_t *val;
    int rc = 0;
    *out = NULL;
    if (!json_is_object(root)) {
        snprintf(msg, msglen, "the body must be a JSON object (the spec)");
        return SL_EINVAL;
    }
    struct slp_score_req *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(msg, msglen, "out of memory");
        return SL_ENOMEM;
    }
    sl_request_init(&r->req);
    r->lim = *lim;
    r->req.max_images = lim->max_images;
    r->req.max_classes = lim->max_classes;
    r->per_image = true;
    r->report_worst = SLP_REPORT_WORST_DEFAULT;
    /* default metrics: ["dice", "iou"] */
    sl_spec_init(&r->metrics[0], sl_find_metric("dice"));
    sl_spec_init(&r->metrics[1], sl_find_metric("iou"));
    r->req.nmetrics = 2;
    /* arrays last, so that a bad parameter is reported before a large array is decoded */
    json_object_foreach((json_t *)root, key, val)
    {
        int e;
        if (strcmp(key, "prediction") == 0 || strcmp(key, "target") == 0 ||
            strcmp(key, "weight") == 0 || strcmp(key, "instances") == 0) {
            if (with_arrays) {
                continue;
            }
            snprintf(msg, msglen,
                     "%s: a challenge's spec holds no arrays (the reference and the submissions "
                     "bring them)",
                     key);
            rc = SL_EINVAL;
        } else if (!with_arrays && strcmp(key, "per_image") == 0) {
            snprintf(msg, msglen,
                     "per_image: not a key of a challenge's spec (a challenge keeps every "
                     "per-image value and shows them only to the admin)");
            rc = SL_EINVAL;
        } else if (!with_arrays && strcmp(key, "report_worst") == 0) {
            snprintf(msg, msglen,
                     "report_worst: not a key of a challenge's spec (it sizes the HTML report "
                     "of a /v1/score answer)");
            rc = SL_EINVAL;
        } else if (strcmp(key, "report_worst") == 0) {
            rc = parse_report_worst(val, &r->report_worst, msg, msglen);
        } else if (strcmp(key, "mode") == 0) {
            rc = parse_enum(val, key, mode_names + 1, &e, msg, msglen);
            r->req.mode = (enum sl_mode)(e + 1);
        } else if (strcmp(key, "prediction_type") == 0) {
            rc = parse_enum(val, key, pred_type_names, &e, msg, msglen);
            r->req.pred_type = (enum sl_pred_type)e;
        } else if (strcmp(key, "empty") == 0) {
            rc = parse_enum(val, key, empty_names, &e, msg, msglen);
            r->req.empty = (enum sl_empty)e;
        } else if (strcmp(key, "ignore_index") == 0) {
            rc = parse_ignore(val, &r->req, msg, msglen);
        } else if (strcmp(key, "threshold") == 0) {
            double t = json_number_value(val);
            if (!json_is_number(val) || !(t >= 0 && t <= 1)) {
                snprintf(msg, msglen, "threshold: must be a number in [0, 1]");
                rc = SL_EINVAL;
            }
            r->req.threshold = t;
        } else if (strcmp(key, "losses") == 0) {
            rc = parse_list(r, val, key, r->losses, &r->req.nlosses, r->terms, msg, msglen);
        } else if (strcmp(key, "metrics") == 0) {
            rc = parse_list(r, val, key, r->metrics, &r->req.nmetrics, NULL, msg, msglen);
        } else if (strcmp(key, "spacing") == 0) {
            rc = parse_spacing(val, &r->req, msg, msglen);
        } else if (strcmp(key, "include_background") == 0) {
            rc = parse_bool(val, key, &r->req.include_background, msg, msglen);
        } else if (strcmp(key, "per_image") == 0) {
            rc = parse_bool(val, key, &r->per_image, msg, msglen);
        } else {
            /* name what a user has: the keys themselves, /openapi.json and the catalog */
            snprintf(
                msg, msglen,
                "%.64s: unknown key; the spec's keys are prediction, target, weight, "
                "instances, mode, prediction_type, losses, metrics, ignore_index, threshold, "
                "empty, spacing, include_background, per_image and report_worst (GET /openapi.json "
                "describes them, GET /v1/catalog lists the losses and metrics)",
                key);
            rc = SL_EINVAL;
        }
        if (rc) {
            goto fail;
        }
    }
    r->req.losses = r->losses;
    r->req.metrics = r->metrics;
    *out = r;
    return 0;
fail:
    slp__score_req_free(r);
    return rc;
}

int slp__parse_score(const json_t *root, const struct slp_limits *lim,
                     const struct slp_parts *parts, struct slp__jdoc *doc,
                     struct slp_score_req **out, char *msg, size_t msglen)
{
    struct slp_score_req *r = NULL;
    int rc = slp__parse_spec(root, lim, true, &r, msg, msglen);
    *out = NULL;
    if (rc) {
        return rc;
    }
    if (!json_object_get(root, "prediction") || !json_object_get(root, "target")) {
        snprintf(msg, msglen, "%s: required",
                 json_object_get(root, "prediction") ? "target" : "prediction");
        rc = SL_EINVAL;
        goto fail;
    }
    /* parts NULL (a JSON body): an array with "part" is refused (SL_EUNSUPPORTED, 422) */
    rc = slp__array_from_json_doc(json_object_get(root, "prediction"), "prediction", lim, parts,
                                  doc, &r->prediction, msg, msglen);
    if (rc) {
        goto fail;
    }
    rc = slp__array_from_json_doc(json_object_get(root, "target"), "target", lim, parts, doc,
                                  &r->target, msg, msglen);
    if (rc) {
        goto fail;
    }
    if (json_object_get(root, "weight") && !json_is_null(json_object_get(root, "weight"))) {
        rc = slp__array_from_json_doc(json_object_get(root, "weight"), "weight", lim, parts, doc,
                                      &r->weight, msg, msglen);
        if (rc) {
            goto fail;
        }
        r->req.weight = r->weight.t;
    }
    if (json_object_get(root, "instances") && !json_is_null(json_object_get(root, "instances"))) {
        rc = slp__array_from_json_doc(json_object_get(root, "instances"), "instances", lim, parts,
                                      doc, &r->instances, msg, msglen);
        if (rc) {
            goto fail;
        }
        r->req.instances = r->instances.t;
    }
    r->req.prediction = r->prediction.t;
    r->req.target = r->target.t;
    *out = r;
    return 0;
fail:
    slp__score_req_free(r);
    return rc;
}
