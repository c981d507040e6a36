/* agg.c - combines the answers of several /v1/score requests (batches of one data set: the
 * CLI's batches, or seglossd's one request per image shape of a challenge submission) into
 * the answer one request with every image would give (the README's reductions). Which rule a
 * loss follows is its table row's (sl_loss_combine: pixel mean, class-weighted mean, sum, mean
 * of per-image values, pooled, sum of terms); which metrics have a batch-summed `global` and
 * which are the counts, the rows' flags; a metric's value from summed counts, its row's formula
 * (sl_metric_from_counts). This file keeps no list of losses or metrics:
 *
 * - metrics: per-image values are concatenated; `per_class` is the mean over images of the
 *   defined values, `mean` the mean over images (binary) or over the counted classes;
 *   `reduced` (a metric's MONAI `reduction`) is recomputed from the concatenated values;
 *   `infinite` (surface metrics under the MONAI/DeepMind empty rules) is the sum of the
 *   batches' counts;
 *   confusion-family `global` values come from confusion counts summed over all batches (a
 *   hidden `confusion` metric is added to every request for them), never from batch means;
 * - pixel losses (mean over counted pixels): sum of per-image value x per-image denominator
 *   over the sum of denominators; the denominators are counted pixels (binary, multiclass),
 *   pixels x channels (multilabel; channel 0 left out when the loss's include_background is
 *   false) or the class-weighted target pixels (multiclass cross entropy with class_weights,
 *   as PyTorch) - all read off the per-image confusion counts;
 *   reduction "sum" adds the batch values;
 * - losses with per-image values (region and Lovasz losses with per_image true): mean of them,
 *   or their sum for a region loss with reduction "sum"; reduction "none" (dice, jaccard,
 *   tversky) also concatenates per_image_class and takes per_class as its column means;
 * - combo: each term is sent again as a hidden loss, combined as above, weighted and summed
 *   (inside a one-term combo carrying the combo's include_background when it has its own, so
 *   that the term inherits it as it does in the combo);
 * - a loss that pools the whole batch (per_image false, balanced CE's beta "auto") has no such
 *   form: with more than one batch slp_agg_new refuses it.
 * A data set that fits in one batch is one request: its answer is the result, and nothing is
 * added to its spec. Otherwise the hidden entries take keys starting with __segloss_cli_, which
 * a user's `as` may not.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agg.h"

#define HIDDEN "__segloss_cli_"
#define HIDDEN_CONFUSION HIDDEN "confusion"

enum lkind { L_PIXEL, L_IMAGE, L_POOLED, L_COMBO };

struct aloss {
    char *key;
    bool hidden;
    enum lkind kind;
    bool sum;         /* reduction "sum" */
    json_t *class_wt; /* cross_entropy class_weights (borrowed from the spec), or NULL */
    int bg;           /* include_background of the loss: 0, 1, or -1 for the request's */
    double num, den;  /* L_PIXEL mean: sum of value x denominator, sum of denominators */
    double total;     /* L_PIXEL sum: of batch values; L_IMAGE: of per-image values */
    int64_t nimg;
    double pooled; /* L_POOLED: the one batch's value */
    json_t *per_image;
    bool has_per_image;
    int first_term, nterms;  /* L_COMBO: its terms are the entries after it */
    double weight;           /* as a combo term */
    const char *why;         /* L_POOLED: why (static, from the table) */
    bool none;               /* reduction "none": per-image lists always, per-class values */
    json_t *per_image_class; /* reduction "none": N lists of C, concatenated */
};

struct ametric {
    char *key;
    bool hidden;
    bool confusion, surface;
    struct sl_spec spec; /* confusion-family metrics: for sl_metric_from_counts */
    json_t *per_image;
    bool has_infinite; /* the answers carry `infinite` (a surface metric's empty_rule) */
    int64_t infinite;  /* their sum: how many of the null per-image values are +inf */
    json_t *reduced;   /* the batches' own `reduced` values, in order (they mark the +inf) */
};

struct slp_agg {
    json_t *single; /* one batch: its answer is the result as it is */
    char *conf_key; /* the confusion metric whose counts are summed (the user's, or hidden) */
    struct aloss *l;
    int nl;
    struct ametric *m;
    int nm;
    int batches;
    int64_t images;
    char mode[16];
    int64_t classes;
    json_t *shapes;
    json_t *conventions;
    double elapsed_ms;
    struct sl_confusion *total; /* classes */
    int64_t *matrix;            /* classes x classes, multiclass */
    bool include_background;
    enum sl_empty empty;
};

/* A new copy of s ("" for NULL); NULL on out of memory. */
static char *dupstr(const char *s)
{
    return strdup(s ? s : "");
}

/* A loss parameter: the spec's value when given, else NULL (the table's default applies). */
static json_t *param(json_t *obj, const char *name)
{
    return json_is_object(obj) ? json_object_get(obj, name) : NULL;
}

/* The loss or metric name of a spec entry (a bare name or an object's "name"; "" if none). */
static const char *entry_name(json_t *e)
{
    if (json_is_string(e)) {
        return json_string_value(e);
    }
    const char *n = json_string_value(json_object_get(e, "name"));
    return n ? n : "";
}

/* The key an entry answers under: its "as", else its name. */
static const char *entry_key(json_t *e)
{
    const char *k = json_string_value(json_object_get(e, "as"));
    return k ? k : entry_name(e);
}

/* Fills spec with def's defaults and the parameter values entry e gives (lists by their length
 * only: the recombination rules ask whether a list is given, not what it holds). Values the
 * server would refuse are taken as they come: it answers 422 for them anyway. */
static void spec_of(json_t *e, const struct sl_def *def, struct sl_spec *spec)
{
    sl_spec_init(spec, def);
    for (int k = 0; k < def->nparams && k < SL_MAX_PARAMS; k++) {
        const struct sl_param_def *p = &def->params[k];
        json_t *v = param(e, p->name);
        struct sl_value *out = &spec->values[k];
        if (json_is_boolean(v)) {
            *out = (struct sl_value){.kind = SL_V_BOOL, .b = json_is_true(v)};
        } else if (json_is_number(v)) {
            *out = (struct sl_value){.kind = SL_V_NUMBER, .num = json_number_value(v)};
        } else if (json_is_null(v)) {
            *out = (struct sl_value){.kind = SL_V_NULL};
        } else if (json_is_array(v)) {
            *out = (struct sl_value){.kind = SL_V_LIST, .nlist = (int)json_array_size(v)};
        } else if (json_is_string(v)) {
            for (int c = 0; p->choices && p->choices[c]; c++) {
                if (strcmp(p->choices[c], json_string_value(v)) == 0) {
                    *out = (struct sl_value){.kind = SL_V_ENUM, .choice = c};
                }
            }
        }
    }
}

/* How loss entry e combines over batches: its row's rule (sl_loss_combine). */
static enum lkind loss_kind(json_t *e, bool *sum, json_t **class_wt, const char **why)
{
    const struct sl_def *def = sl_find_loss(entry_name(e));
    struct sl_spec spec;
    *sum = false;
    *class_wt = NULL;
    if (!def) {
        return L_IMAGE; /* the server answers 422 for it */
    }
    spec_of(e, def, &spec);
    switch (sl_loss_combine(&spec, why)) {
    case SL_COMBINE_SUM:
        *sum = true;
        return L_PIXEL;
    case SL_COMBINE_WEIGHTED_MEAN:
        *class_wt = param(e, "class_weights");
        return L_PIXEL;
    case SL_COMBINE_PIXEL_MEAN:
        return L_PIXEL;
    case SL_COMBINE_IMAGE_MEAN:
        return L_IMAGE;
    case SL_COMBINE_POOLED:
        return L_POOLED;
    case SL_COMBINE_TERMS:
        return L_COMBO;
    }
    return L_IMAGE;
}

/* The include_background that entry e gives itself (0 or 1), else inherited. */
static int own_bg(json_t *e, int inherited)
{
    json_t *v = param(e, "include_background");
    return json_is_boolean(v) ? json_is_true(v) : inherited;
}

/* Whether loss entry e asks for reduction "none" (region losses: MONAI's unreduced values, which
 * the answer gives as per_image_class and per_class). */
static bool reduction_none(json_t *e)
{
    const char *r = json_string_value(param(e, "reduction"));
    return r && strcmp(r, "none") == 0;
}

/* inherited_bg: the include_background e inherits (a combo's own), or -1 for the request's. */
static int add_loss(struct slp_agg *a, const char *key, bool hidden, json_t *e, int inherited_bg)
{
    struct aloss *nl = realloc(a->l, sizeof *nl * (size_t)(a->nl + 1));
    if (!nl) {
        return -1;
    }
    a->l = nl;
    struct aloss *l = &a->l[a->nl++];
    memset(l, 0, sizeof *l);
    l->key = dupstr(key);
    l->hidden = hidden;
    l->why = "it pools the whole batch";
    l->kind = loss_kind(e, &l->sum, &l->class_wt, &l->why);
    l->bg = own_bg(e, inherited_bg);
    l->none = reduction_none(e);
    l->per_image_class = json_array();
    l->per_image = json_array();
    l->has_per_image = true;
    l->weight = 1;
    return l->key && l->per_image && l->per_image_class ? 0 : -1;
}

/* The terms of combo entry e (losses[i]) as hidden losses after it, and their specs in extra
 * (appended to the request's losses afterwards). Returns 0, or -1 with a message. */
static int add_terms(struct slp_agg *a, json_t *e, size_t i, json_t *extra, int nbatches, char *msg,
                     size_t msglen)
{
    const int self = a->nl - 1, combo_bg = own_bg(e, -1);
    size_t t;
    json_t *term;
    a->l[self].first_term = a->nl;
    json_array_foreach(json_object_get(e, "terms"), t, term)
    {
        char key[SL_KEY_MAX];
        snprintf(key, sizeof key, HIDDEN "%zu_%zu", i, t);
        if (!json_is_string(term) && !json_is_object(term)) {
            continue; /* the server answers 422 */
        }
        /* a term is a loss name (that loss with its defaults) or an object */
        json_t *copy =
            json_is_string(term) ? json_pack("{s:O}", "name", term) : json_deep_copy(term);
        if (!copy) {
            goto oom;
        }
        double w = json_is_number(json_object_get(copy, "weight"))
                       ? json_number_value(json_object_get(copy, "weight"))
                       : 1.0;
        json_object_del(copy, "weight");
        if (add_loss(a, key, true, copy, combo_bg)) {
            json_decref(copy);
            goto oom;
        }
        if (combo_bg >= 0) {
            /* the term inherits the combo's flag as it does inside the combo (an explicit
             * one on the term itself would differ: multiclass cross_entropy refuses it) */
            copy = json_pack("{s:s, s:[o], s:b}", "name", entry_name(e), "terms", copy,
                             "include_background", combo_bg);
            if (!copy) {
                goto oom;
            }
        }
        json_object_set_new(copy, "as", json_string(key));
        json_array_append_new(extra, copy);
        a->l[a->nl - 1].weight = w;
        if (a->l[a->nl - 1].kind == L_POOLED && nbatches > 1) {
            snprintf(msg, msglen,
                     "losses[%zu].terms[%zu] (%s in combo %s): %s, so it cannot be combined "
                     "from %d batches; raise --batch-size to the number of images or set "
                     "per_image=true",
                     i, t, entry_name(term), entry_key(e), a->l[a->nl - 1].why, nbatches);
            return -1;
        }
    }
    a->l[self].nterms = a->nl - a->l[self].first_term;
    return 0;
oom:
    snprintf(msg, msglen, "out of memory");
    return -1;
}

/* The name of the metric that is the confusion counts themselves (its row's SL_DEF_COUNTS). */
static const char *counts_metric(void)
{
    int n;
    const struct sl_def *t = sl_metric_table(&n);
    for (int i = 0; i < n; i++) {
        if (t[i].flags & SL_DEF_COUNTS) {
            return t[i].name;
        }
    }
    return "confusion";
}

/* The metrics of spec (default: dice and iou), with a hidden counts metric added when the user
 * asked for none: their per-image values are concatenated, the counts summed. Returns 0 or -1
 * (out of memory). */
static int add_metrics(struct slp_agg *a, json_t *spec)
{
    size_t i;
    json_t *e;
    json_t *metrics = json_object_get(spec, "metrics");
    if (!metrics) {
        metrics = json_pack("[ss]", "dice", "iou");
        json_object_set_new(spec, "metrics", metrics);
    }
    /* the counts: the user's own counts metric when there is one */
    json_array_foreach(metrics, i, e)
    {
        const struct sl_def *def = sl_find_metric(entry_name(e));
        if (!a->conf_key && def && (def->flags & SL_DEF_COUNTS)) {
            a->conf_key = dupstr(entry_key(e));
        }
    }
    if (!a->conf_key && json_is_array(metrics)) {
        json_array_append_new(
            metrics, json_pack("{s:s, s:s}", "name", counts_metric(), "as", HIDDEN_CONFUSION));
        a->conf_key = dupstr(HIDDEN_CONFUSION);
    }
    a->m = calloc(json_array_size(metrics) + 1, sizeof *a->m);
    if (!a->m) {
        return -1;
    }
    json_array_foreach(metrics, i, e)
    {
        struct ametric *m = &a->m[a->nm++];
        m->key = dupstr(entry_key(e));
        m->hidden = strcmp(m->key, HIDDEN_CONFUSION) == 0;
        m->per_image = json_array();
        m->reduced = json_array();
        if (!m->key || !m->per_image || !m->reduced) {
            return -1;
        }
        const struct sl_def *def = sl_find_metric(entry_name(e));
        if (!def) {
            continue;
        }
        spec_of(e, def, &m->spec);
        m->confusion = def->flags & SL_DEF_COUNTS;
        m->surface = def->flags & SL_DEF_DISTANCES;
    }
    return 0;
}

/* Reads the spec's entries into rules and adds the hidden entries (agg.h). Long: one branch
 * per rule of the file comment (pixel, per-image, pooled, combo terms, confusion), kept in one
 * place so the rules read together. */
struct slp_agg *slp_agg_new(json_t *spec, int nbatches, char *msg, size_t msglen)
{
    struct slp_agg *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(msg, msglen, "out of memory");
        return NULL;
    }
    a->shapes = json_array();
    json_t *losses = json_object_get(spec, "losses");
    json_t *extra = json_array(); /* hidden combo terms, appended to losses afterwards */
    size_t i;
    json_t *e;
    json_t *lists[2] = {losses, json_object_get(spec, "metrics")};
    for (int k = 0; k < 2; k++) {
        json_array_foreach(lists[k], i, e)
        {
            if (!strncmp(entry_key(e), HIDDEN, strlen(HIDDEN))) {
                snprintf(msg, msglen,
                         "%s[%zu]: keys starting with %s are reserved for combining batches",
                         k ? "metrics" : "losses", i, HIDDEN);
                goto fail;
            }
        }
    }
    /* per-image values are what the combination is made of (and what min/max gates read) */
    json_object_set_new(spec, "per_image", json_true());
    if (nbatches == 1) {
        json_decref(extra);
        return a; /* one request: its answer is the result */
    }
    json_array_foreach(losses, i, e)
    {
        if (add_loss(a, entry_key(e), false, e, -1)) {
            goto oom;
        }
        const struct aloss *l = &a->l[a->nl - 1];
        if (l->kind == L_POOLED && nbatches > 1) {
            snprintf(msg, msglen,
                     "losses[%zu] (%s): %s, so it cannot be combined from %d batches; raise "
                     "--batch-size to the number of images or set per_image=true",
                     i, entry_key(e), l->why, nbatches);
            goto fail;
        }
        if (l->kind == L_COMBO && add_terms(a, e, i, extra, nbatches, msg, msglen)) {
            goto fail;
        }
    }
    if (json_array_size(extra)) {
        json_array_extend(losses, extra);
    }
    json_decref(extra);
    extra = NULL;
    if (add_metrics(a, spec)) {
        goto oom;
    }
    return a;
oom:
    snprintf(msg, msglen, "out of memory");
fail:
    json_decref(extra);
    slp_agg_free(a);
    return NULL;
}

/* Frees a and its keys and per-image lists; NULL is fine. */
void slp_agg_free(struct slp_agg *a)
{
    if (!a) {
        return;
    }
    for (int i = 0; i < a->nl; i++) {
        free(a->l[i].key);
        json_decref(a->l[i].per_image);
        json_decref(a->l[i].per_image_class);
    }
    for (int i = 0; i < a->nm; i++) {
        free(a->m[i].key);
        json_decref(a->m[i].per_image);
        json_decref(a->m[i].reduced);
    }
    free(a->l);
    free(a->m);
    free(a->conf_key);
    json_decref(a->single);
    json_decref(a->shapes);
    json_decref(a->conventions);
    free(a->total);
    free(a->matrix);
    free(a);
}

/* Reads {tp, fp, fn, tn} of o into *c; false when one is missing or not an integer. */
static bool counts_of(json_t *o, struct sl_confusion *c)
{
    json_t *tp = json_object_get(o, "tp"), *fp = json_object_get(o, "fp"),
           *fn = json_object_get(o, "fn"), *tn = json_object_get(o, "tn");
    if (!json_is_integer(tp) || !json_is_integer(fp) || !json_is_integer(fn) ||
        !json_is_integer(tn)) {
        return false;
    }
    *c = (struct sl_confusion){json_integer_value(tp), json_integer_value(fp),
                               json_integer_value(fn), json_integer_value(tn)};
    return true;
}

/* Image i's pixel-loss denominator from its per-class counts cm[C] (see the top comment). */
static double denominator(const struct slp_agg *a, const struct aloss *l,
                          const struct sl_confusion *cm)
{
    const int64_t C = a->classes;
    if (strcmp(a->mode, "multiclass") == 0) {
        if (!l->class_wt) {
            return (double)(cm[0].tp + cm[0].fp + cm[0].fn + cm[0].tn);
        }
        double d = 0;
        for (int64_t c = 0; c < C; c++) {
            d += json_number_value(json_array_get(l->class_wt, (size_t)c)) *
                 (double)(cm[c].tp + cm[c].fn);
        }
        return d;
    }
    /* multilabel without background: the mean runs over channels 1..C-1 (one channel keeps
     * its own, as MONAI ignores the flag there) */
    const bool bg = l->bg >= 0 ? l->bg : a->include_background;
    double d = 0;
    for (int64_t c = (C > 1 && !bg) ? 1 : 0; c < C; c++) {
        d += (double)(cm[c].tp + cm[c].fp + cm[c].fn + cm[c].tn);
    }
    return d;
}

/* Adds the losses of one batch's answer (n images, per-image per-class counts cm) to their
 * sums. Returns 0, or SL_EINVAL with a message. */
static int add_loss_values(struct slp_agg *a, json_t *losses, int64_t n,
                           const struct sl_confusion *cm, char *msg, size_t msglen)
{
    const int64_t C = a->classes;
    for (int k = 0; k < a->nl; k++) {
        struct aloss *l = &a->l[k];
        json_t *jl = json_object_get(losses, l->key);
        json_t *pi = json_object_get(jl, "per_image");
        double v = json_number_value(json_object_get(jl, "value"));
        if (!jl) {
            snprintf(msg, msglen, "the answer has no loss %s", l->key);
            return SL_EINVAL;
        }
        if (json_array_size(pi) == (size_t)n) {
            json_array_extend(l->per_image, pi);
        } else {
            l->has_per_image = false;
        }
        json_t *pic = json_object_get(jl, "per_image_class");
        if (json_array_size(pic) == (size_t)n) {
            json_array_extend(l->per_image_class, pic);
        }
        switch (l->kind) {
        case L_PIXEL:
            if (l->sum) {
                l->total += v;
                break;
            }
            for (int64_t j = 0; j < n; j++) {
                double d = denominator(a, l, cm + j * C);
                l->num += json_number_value(json_array_get(pi, (size_t)j)) * d;
                l->den += d;
            }
            break;
        case L_IMAGE:
            for (int64_t j = 0; j < n; j++) {
                l->total += json_number_value(json_array_get(pi, (size_t)j));
            }
            l->nimg += n;
            break;
        case L_POOLED:
            l->pooled = v;
            break;
        case L_COMBO:
            break;
        }
    }
    return 0;
}

/* Checks the answer against the first one, then adds its values to the sums (agg.h). */
int slp_agg_add(struct slp_agg *a, json_t *answer, int64_t first, int64_t last, char *msg,
                size_t msglen)
{
    const char *mode = json_string_value(json_object_get(answer, "mode"));
    json_t *jc = json_object_get(answer, "classes");
    int64_t n = json_integer_value(json_object_get(answer, "images"));
    if (!mode || !json_is_integer(jc) || n != last - first) {
        snprintf(msg, msglen, "the answer lacks mode, classes or the right images count");
        return SL_EINVAL;
    }
    if (a->batches == 0) {
        snprintf(a->mode, sizeof a->mode, "%s", mode);
        a->classes = json_integer_value(jc);
        a->conventions = json_incref(json_object_get(answer, "conventions"));
        a->include_background =
            !json_is_false(json_object_get(a->conventions, "include_background"));
        const char *em = json_string_value(json_object_get(a->conventions, "empty"));
        a->empty = !em || strcmp(em, "one") == 0 ? SL_EMPTY_ONE
                   : strcmp(em, "zero") == 0     ? SL_EMPTY_ZERO
                                                 : SL_EMPTY_NAN;
        a->total = calloc((size_t)a->classes, sizeof *a->total);
        a->matrix = calloc((size_t)(a->classes * a->classes), sizeof *a->matrix);
        if (!a->total || !a->matrix) {
            snprintf(msg, msglen, "out of memory");
            return SL_ENOMEM;
        }
    } else if (strcmp(a->mode, mode) != 0 || a->classes != json_integer_value(jc)) {
        snprintf(msg, msglen,
                 "this batch is %s with %lld classes, the first was %s with %lld: one data set "
                 "must have one mode and one class count",
                 mode, (long long)json_integer_value(jc), a->mode, (long long)a->classes);
        return SL_EINVAL;
    }
    json_t *shape = json_object_get(answer, "shape");
    bool seen = false;
    size_t i;
    json_t *s;
    json_array_foreach(a->shapes, i, s)
    {
        seen = seen || json_equal(s, shape);
    }
    if (!seen) {
        json_array_append(a->shapes, shape);
    }
    a->elapsed_ms += json_number_value(json_object_get(answer, "elapsed_ms"));
    a->batches++;
    a->images += n;
    if (!a->conf_key) {
        a->single = json_incref(answer); /* the one batch */
        return 0;
    }

    /* the hidden confusion counts: per image and class */
    const int64_t C = a->classes;
    json_t *metrics = json_object_get(answer, "metrics");
    json_t *hc = json_object_get(json_object_get(metrics, a->conf_key), "per_image");
    struct sl_confusion *cm = calloc((size_t)(n * C), sizeof *cm);
    if (!cm) {
        snprintf(msg, msglen, "out of memory");
        return SL_ENOMEM;
    }
    bool ok = json_array_size(hc) == (size_t)n;
    for (int64_t k = 0; ok && k < n; k++) {
        json_t *row = json_array_get(hc, (size_t)k);
        for (int64_t c = 0; ok && c < C; c++) {
            ok = counts_of(C == 1 && json_is_object(row) ? row : json_array_get(row, (size_t)c),
                           &cm[k * C + c]);
            a->total[c].tp += cm[k * C + c].tp;
            a->total[c].fp += cm[k * C + c].fp;
            a->total[c].fn += cm[k * C + c].fn;
            a->total[c].tn += cm[k * C + c].tn;
        }
    }
    json_t *mx = json_object_get(json_object_get(metrics, a->conf_key), "matrix");
    for (int64_t r = 0; ok && mx && r < C; r++) {
        for (int64_t c = 0; c < C; c++) {
            a->matrix[r * C + c] +=
                json_integer_value(json_array_get(json_array_get(mx, (size_t)r), (size_t)c));
        }
    }
    if (!ok) {
        free(cm);
        snprintf(msg, msglen, "the answer lacks the confusion counts that were asked for");
        return SL_EINVAL;
    }

    int rc = add_loss_values(a, json_object_get(answer, "losses"), n, cm, msg, msglen);
    free(cm);
    if (rc) {
        return rc;
    }
    for (int k = 0; k < a->nm; k++) {
        json_t *pi = json_object_get(json_object_get(metrics, a->m[k].key), "per_image");
        if (json_array_size(pi) != (size_t)n) {
            snprintf(msg, msglen, "the answer has no per-image values of metric %s", a->m[k].key);
            return SL_EINVAL;
        }
        json_array_extend(a->m[k].per_image, pi);
        /* +inf travels as null: the batches' counts of them add */
        json_t *inf = json_object_get(json_object_get(metrics, a->m[k].key), "infinite");
        if (json_is_integer(inf)) {
            a->m[k].has_infinite = true;
            a->m[k].infinite += json_integer_value(inf);
        }
        json_t *red = json_object_get(json_object_get(metrics, a->m[k].key), "reduced");
        if (red && json_array_append(a->m[k].reduced, red)) {
            snprintf(msg, msglen, "out of memory");
            return SL_ENOMEM;
        }
    }
    return 0;
}

/* Loss l's combined value over all batches, by its rule. */
static double loss_value(const struct slp_agg *a, const struct aloss *l)
{
    switch (l->kind) {
    case L_PIXEL:
        return l->sum ? l->total : (l->den > 0 ? l->num / l->den : 0.0);
    case L_IMAGE:
        return l->nimg ? l->total / (double)l->nimg : 0.0;
    case L_POOLED:
        return l->pooled;
    case L_COMBO: {
        double v = 0;
        for (int t = 0; t < l->nterms; t++) {
            const struct aloss *term = &a->l[l->first_term + t];
            v += term->weight * loss_value(a, term);
        }
        return v;
    }
    }
    return NAN;
}

/* A number, or null for NaN/inf (undefined). */
static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/* Confusion counts as a new {tp, fp, fn, tn} object. */
static json_t *counts_json(const struct sl_confusion *c)
{
    return json_pack("{s:I, s:I, s:I, s:I}", "tp", (json_int_t)c->tp, "fp", (json_int_t)c->fp, "fn",
                     (json_int_t)c->fn, "tn", (json_int_t)c->tn);
}

/* A per-image +inf (a surface distance under MONAI's empty rule) reaches the CLI as a null it
 * cannot tell from a NaN, but it leaves its mark in its batch's `reduced`: a value there is null
 * only when a +inf entered it (NaNs are left out, a mean of nothing is 0). So out (the k values
 * of reduction r recomputed with every null left out) becomes +inf wherever a batch's value
 * covering the same images or classes is null: any batch for mean and sum, the same class of
 * any batch for the *_batch forms, the same image for the *_channel forms. `none` needs
 * nothing: its nulls are the per-image nulls. */
static void mark_infinite(const struct ametric *m, enum sl_metric_reduction r, double *out,
                          int64_t k)
{
    size_t b, i;
    json_t *part, *x;
    int64_t image = 0;
    json_array_foreach(m->reduced, b, part)
    {
        if (r == SL_MR_MEAN || r == SL_MR_SUM) {
            if (json_is_null(part)) {
                out[0] = INFINITY;
            }
        } else if (r == SL_MR_MEAN_BATCH || r == SL_MR_SUM_BATCH) {
            json_array_foreach(part, i, x)
            {
                if (json_is_null(x) && (int64_t)i < k) {
                    out[i] = INFINITY;
                }
            }
        } else if (r == SL_MR_MEAN_CHANNEL || r == SL_MR_SUM_CHANNEL) {
            json_array_foreach(part, i, x)
            {
                if (json_is_null(x) && image + (int64_t)i < k) {
                    out[image + (int64_t)i] = INFINITY;
                }
            }
            image += (int64_t)json_array_size(part);
        }
    }
}

/* Metric m's `reduced` (new) from the per-image values of all batches: MONAI
 * do_metric_reduction r of the counted classes (sl_metric_reduce), as one request answers it;
 * NULL on out of memory. */
static json_t *reduced_json(const struct slp_agg *a, const struct ametric *m,
                            enum sl_metric_reduction r)
{
    const bool binary = strcmp(a->mode, "binary") == 0;
    const int64_t n = (int64_t)json_array_size(m->per_image), C = a->classes;
    const int64_t c0 = C > 1 && !a->include_background, cc = C - c0;
    json_t *o = NULL;
    double *v = malloc(sizeof(double) * (size_t)(n * cc + 1));
    double *out = malloc(sizeof(double) * (size_t)(n * cc + 1));
    if (!v || !out) {
        goto out;
    }
    for (int64_t i = 0; i < n; i++) {
        json_t *row = json_array_get(m->per_image, (size_t)i);
        for (int64_t c = 0; c < cc; c++) {
            json_t *x = binary ? row : json_array_get(row, (size_t)(c + c0));
            v[i * cc + c] = json_is_number(x) ? json_number_value(x) : NAN;
        }
    }
    int64_t k = sl_metric_reduce(r, v, n, cc, out);
    mark_infinite(m, r, out, k);
    if (r == SL_MR_MEAN || r == SL_MR_SUM) {
        o = num(out[0]);
    } else if (r == SL_MR_NONE) {
        o = json_array();
        for (int64_t i = 0; o && i < n; i++) {
            json_t *row = json_array();
            for (int64_t c = 0; c < cc; c++) {
                json_array_append_new(row, num(out[i * cc + c]));
            }
            json_array_append_new(o, row);
        }
    } else {
        o = json_array();
        for (int64_t i = 0; o && i < k; i++) {
            json_array_append_new(o, num(out[i]));
        }
    }
out:
    free(v);
    free(out);
    return o;
}

/* Metric m's combined entry (new): per-image lists, per-class means, and the global values
 * from the summed counts. */
static json_t *metric_json(const struct slp_agg *a, const struct ametric *m, bool per_image)
{
    const int64_t C = a->classes;
    const bool binary = strcmp(a->mode, "binary") == 0;
    json_t *o = json_object();
    if (m->confusion) {
        if (binary) {
            json_object_set_new(o, "global", counts_json(&a->total[0]));
        } else {
            json_t *g = json_array();
            for (int64_t c = 0; c < C; c++) {
                json_array_append_new(g, counts_json(&a->total[c]));
            }
            json_object_set_new(o, "global", g);
        }
        if (strcmp(a->mode, "multiclass") == 0) {
            json_t *mx = json_array();
            for (int64_t r = 0; r < C; r++) {
                json_t *row = json_array();
                for (int64_t c = 0; c < C; c++) {
                    json_array_append_new(row, json_integer(a->matrix[r * C + c]));
                }
                json_array_append_new(mx, row);
            }
            json_object_set_new(o, "matrix", mx);
        }
        if (per_image) {
            json_object_set(o, "per_image", m->per_image);
        }
        return o;
    }
    /* per class: the mean over images of the defined values, as the server does */
    json_t *per_class = json_array(), *global = json_array();
    int64_t undefined = 0;
    double msum = 0;
    int mk = 0;
    for (int64_t c = 0; c < C; c++) {
        double sum = 0;
        int64_t defined = 0;
        size_t i;
        json_t *row;
        json_array_foreach(m->per_image, i, row)
        {
            json_t *v = binary ? row : json_array_get(row, (size_t)c);
            if (json_is_number(v)) {
                sum += json_number_value(v);
                defined++;
            } else {
                undefined++;
            }
        }
        double pc = defined ? sum / (double)defined : NAN;
        json_array_append_new(per_class, num(pc));
        json_array_append_new(global, num(sl_metric_from_counts(&m->spec, &a->total[c], a->empty)));
        if ((C == 1 || a->include_background || c > 0) && !isnan(pc)) {
            msum += pc;
            mk++;
        }
    }
    json_object_set_new(o, "mean", num(mk ? msum / mk : NAN));
    if (!m->surface) {
        json_object_set(o, "global", binary ? json_array_get(global, 0) : global);
    }
    if (!binary) {
        json_object_set(o, "per_class", per_class);
    }
    if (per_image) {
        json_object_set(o, "per_image", m->per_image);
    }
    json_object_set_new(o, "undefined", json_integer(undefined));
    if (m->has_infinite) {
        json_object_set_new(o, "infinite", json_integer(m->infinite));
    }
    int r = sl_metric_reduction_of(&m->spec);
    if (r >= 0) {
        json_object_set_new(o, "reduced", reduced_json(a, m, (enum sl_metric_reduction)r));
    }
    json_decref(per_class);
    json_decref(global);
    return o;
}

/* A region loss's per_class (new list of C) from its per_image_class rows: the mean over images
 * of each class's values, as the server's reduction "none" gives it; null for a class left out
 * (its values are null). */
static json_t *class_means(const struct slp_agg *a, json_t *rows)
{
    json_t *out = json_array();
    for (int64_t c = 0; c < a->classes; c++) {
        double sum = 0;
        int64_t k = 0;
        size_t i;
        json_t *row;
        json_array_foreach(rows, i, row)
        {
            json_t *v = json_array_get(row, (size_t)c);
            if (json_is_number(v)) {
                sum += json_number_value(v);
                k++;
            }
        }
        json_array_append_new(out, num(k ? sum / (double)k : NAN));
    }
    return out;
}

/* The combined answer (new), or the single batch's own answer with ids (agg.h). */
json_t *slp_agg_result(struct slp_agg *a, const char *const *ids, size_t nids, bool per_image)
{
    json_t *r = json_object();
    if (!r) {
        return NULL;
    }
    json_object_set_new(r, "images", json_integer(a->images));
    json_object_set_new(r, "batches", json_integer(a->batches));
    json_object_set_new(r, "mode", json_string(a->mode));
    json_object_set_new(r, "classes", json_integer(a->classes));
    if (json_array_size(a->shapes) == 1) {
        json_object_set(r, "shape", json_array_get(a->shapes, 0));
    } else {
        json_object_set(r, "shapes", a->shapes);
    }
    if (per_image && ids) {
        json_t *jids = json_array();
        for (size_t i = 0; i < nids; i++) {
            json_array_append_new(jids, json_string(ids[i]));
        }
        json_object_set_new(r, "image_ids", jids);
    }
    if (a->single) {
        json_object_set(r, "losses", json_object_get(a->single, "losses"));
        json_object_set(r, "metrics", json_object_get(a->single, "metrics"));
        if (a->conventions) {
            json_object_set(r, "conventions", a->conventions);
        }
        json_object_set_new(r, "elapsed_ms", json_real(a->elapsed_ms));
        return r;
    }
    json_t *losses = json_object();
    for (int k = 0; k < a->nl; k++) {
        const struct aloss *l = &a->l[k];
        if (l->hidden) {
            continue;
        }
        json_t *o = json_pack("{s:o}", "value", num(loss_value(a, l)));
        if ((per_image || l->none) && l->has_per_image) {
            json_object_set(o, "per_image", l->per_image);
        }
        if (json_array_size(l->per_image_class)) {
            json_object_set_new(o, "per_class", class_means(a, l->per_image_class));
            json_object_set(o, "per_image_class", l->per_image_class);
        }
        json_object_set_new(losses, l->key, o);
    }
    json_object_set_new(r, "losses", losses);
    json_t *metrics = json_object();
    for (int k = 0; k < a->nm; k++) {
        if (!a->m[k].hidden) {
            json_object_set_new(metrics, a->m[k].key, metric_json(a, &a->m[k], per_image));
        }
    }
    json_object_set_new(r, "metrics", metrics);
    if (a->conventions) {
        json_object_set(r, "conventions", a->conventions);
    }
    json_object_set_new(r, "elapsed_ms", json_real(a->elapsed_ms));
    return r;
}
