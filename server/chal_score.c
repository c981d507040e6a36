/* chal_score.c - a submission scored against a challenge's hidden reference (CHALLENGES.md
 * "Submissions"): the public and the private images as two /v1/score requests would score them.
 *
 * A reference is loaded from its bundle once per version and split, grouped per split by image
 * shape and stacked per group ([n, *S], one buffer), and shared read-only by every worker (the
 * cache holds it while a job uses it). A submission's images are stacked the same way; a split
 * whose images all have one shape is one lib request, and the answer is the /v1/score answer. A
 * split with several shapes is one request per shape, combined by proto/agg.c exactly as the
 * CLI combines batches (the README's reductions), so that it equals what one request with every
 * image would give where that is defined.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/internal.h" /* proto/internal.h: slp__parse_spec, the JSON writers */
#include "agg.h"
#include "chal_internal.h"
#include "sha256.h"

/* Cached references at most: one per challenge in use is the usual need. */
#define REF_CACHE_MAX 8

/* Images of one split with one target shape, stacked. */
struct chal_group {
    size_t *members; /* indices into the reference's images, in id order */
    size_t n;
    void *buf; /* the stacked targets */
    struct sl_tensor target;
};

struct chal_ref {
    struct chal_ref *next;
    char challenge[STORE_NAME_MAX];
    char sha[STORE_SHA_HEX];
    char split_sha[SLP_SHA256_HEX];
    int refs;
    bool dead;               /* out of the cache: freed by its last user */
    struct slc_images *imgs; /* by id */
    bool *is_public;
    struct chal_group *groups[2];
    size_t ngroups[2];
};

void chal_scored_clear(struct chal_scored *s)
{
    for (int i = 0; i < 2; i++) {
        free(s->full[i]);
        free(s->values[i]);
    }
    memset(s, 0, sizeof *s);
}

/* Frees ref and everything it owns. */
static void ref_free(struct chal_ref *ref)
{
    if (!ref) {
        return;
    }
    for (int s = 0; s < 2; s++) {
        for (size_t g = 0; g < ref->ngroups[s]; g++) {
            free(ref->groups[s][g].members);
            free(ref->groups[s][g].buf);
        }
        free(ref->groups[s]);
    }
    free(ref->is_public);
    slc_images_free(ref->imgs);
    free(ref);
}

/* Whether tensors a and b have one dtype and shape. */
static bool same_layout(const struct sl_tensor *a, const struct sl_tensor *b)
{
    if (a->dtype != b->dtype || a->ndim != b->ndim) {
        return false;
    }
    for (int d = 0; d < a->ndim; d++) {
        if (a->shape[d] != b->shape[d]) {
            return false;
        }
    }
    return true;
}

/* Bytes of tensor t. */
static size_t tensor_bytes(const struct sl_tensor *t)
{
    return (size_t)sl_tensor_numel(t) * sl_dtype_size(t->dtype);
}

/* Groups the images of split s (0 public) by target layout, in id order, and stacks each group.
 * Returns 0 or SL_ENOMEM. */
static int ref_group(struct chal_ref *ref, int s)
{
    const struct slc_images *im = ref->imgs;
    ref->groups[s] = calloc(im->n + 1, sizeof *ref->groups[s]);
    if (!ref->groups[s]) {
        return SL_ENOMEM;
    }
    size_t ng = 0;
    for (size_t i = 0; i < im->n; i++) {
        if (ref->is_public[i] != (s == 0)) {
            continue;
        }
        size_t g = 0;
        while (g < ng &&
               !same_layout(&im->items[ref->groups[s][g].members[0]].a.t, &im->items[i].a.t)) {
            g++;
        }
        struct chal_group *grp = &ref->groups[s][g];
        if (g == ng) {
            grp->members = malloc(im->n * sizeof *grp->members);
            if (!grp->members) {
                return SL_ENOMEM;
            }
            ng++;
        }
        grp->members[grp->n++] = i;
    }
    ref->ngroups[s] = ng;
    for (size_t g = 0; g < ng; g++) {
        struct chal_group *grp = &ref->groups[s][g];
        const struct sl_tensor *t0 = &im->items[grp->members[0]].a.t;
        size_t bytes = tensor_bytes(t0);
        grp->buf = malloc(bytes * grp->n + 1);
        if (!grp->buf) {
            return SL_ENOMEM;
        }
        for (size_t k = 0; k < grp->n; k++) {
            memcpy((char *)grp->buf + k * bytes, im->items[grp->members[k]].a.t.data, bytes);
        }
        grp->target.data = grp->buf;
        grp->target.dtype = t0->dtype;
        grp->target.ndim = t0->ndim + 1;
        grp->target.shape[0] = (int64_t)grp->n;
        memcpy(grp->target.shape + 1, t0->shape, (size_t)t0->ndim * sizeof(int64_t));
    }
    return 0;
}

/* Compares two id strings for bsearch/qsort. */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Loads the reference of c: its bundle, its split, its groups. */
static int ref_load(struct chal_server *cs, const struct store_challenge *c,
                    const struct slp_limits *lim, struct chal_ref **out, char *msg, size_t msglen)
{
    void *data = NULL;
    size_t len = 0;
    struct chal_ref *ref = calloc(1, sizeof *ref);
    if (!ref) {
        return SL_ENOMEM;
    }
    int rc = store_blob_get(cs->store, c->ref_sha, &data, &len, msg, msglen);
    if (rc == 0) {
        rc = slc_bundle_read(data, len, lim, &ref->imgs, msg, msglen);
    }
    free(data);
    json_t *pub = c->public_ids ? json_loads(c->public_ids, 0, NULL) : NULL;
    size_t npub = json_array_size(pub);
    const char **pubs = calloc(npub + 1, sizeof *pubs);
    ref->is_public = rc == 0 ? calloc(ref->imgs->n + 1, sizeof *ref->is_public) : NULL;
    if (rc == 0 && (!pubs || !ref->is_public)) {
        rc = SL_ENOMEM;
    }
    for (size_t i = 0; rc == 0 && i < npub; i++) {
        pubs[i] = json_string_value(json_array_get(pub, i));
        if (!pubs[i]) {
            snprintf(msg, msglen, "challenge %s: stored public ids are not strings", c->name);
            rc = SL_EINTERNAL;
        }
    }
    if (rc == 0) {
        qsort(pubs, npub, sizeof *pubs, cmp_str);
        for (size_t i = 0; i < ref->imgs->n; i++) {
            const char *id = ref->imgs->items[i].id;
            ref->is_public[i] = bsearch(&id, pubs, npub, sizeof *pubs, cmp_str) != NULL;
        }
        rc = ref_group(ref, 0);
    }
    if (rc == 0) {
        rc = ref_group(ref, 1);
    }
    free(pubs);
    json_decref(pub);
    if (rc) {
        if (rc == SL_ENOMEM) {
            snprintf(msg, msglen, "out of memory loading the reference of %s", c->name);
        }
        ref_free(ref);
        return rc;
    }
    snprintf(ref->challenge, sizeof ref->challenge, "%s", c->name);
    snprintf(ref->sha, sizeof ref->sha, "%s", c->ref_sha);
    slp_sha256_hex(c->public_ids ? c->public_ids : "", c->public_ids ? strlen(c->public_ids) : 0,
                   ref->split_sha);
    *out = ref;
    return 0;
}

int chal_ref_get(struct chal_server *cs, const struct store_challenge *c,
                 const struct slp_limits *lim, struct chal_ref **out, char *msg, size_t msglen)
{
    char split_sha[SLP_SHA256_HEX];
    *out = NULL;
    if (!c->ref_sha[0]) {
        snprintf(msg, msglen, "challenge %s has no reference yet", c->name);
        return STORE_ENOTFOUND;
    }
    slp_sha256_hex(c->public_ids ? c->public_ids : "", c->public_ids ? strlen(c->public_ids) : 0,
                   split_sha);
    pthread_mutex_lock(&cs->mu);
    for (struct chal_ref *r = cs->refs; r; r = r->next) {
        if (strcmp(r->challenge, c->name) == 0 && strcmp(r->sha, c->ref_sha) == 0 &&
            strcmp(r->split_sha, split_sha) == 0) {
            r->refs++;
            pthread_mutex_unlock(&cs->mu);
            *out = r;
            return 0;
        }
    }
    pthread_mutex_unlock(&cs->mu);
    /* loaded outside the lock: two jobs may load the same version; one copy stays cached */
    struct chal_ref *ref = NULL;
    int rc = ref_load(cs, c, lim, &ref, msg, msglen);
    if (rc) {
        return rc;
    }
    pthread_mutex_lock(&cs->mu);
    ref->refs = 2; /* the cache's and the caller's */
    /* older versions of the same challenge leave the cache; so does the oldest beyond the cap */
    struct chal_ref **pp = &cs->refs;
    int kept = 0;
    while (*pp) {
        struct chal_ref *r = *pp;
        if (strcmp(r->challenge, c->name) == 0 || ++kept >= REF_CACHE_MAX) {
            *pp = r->next;
            r->dead = true;
            if (--r->refs == 0) {
                ref_free(r);
            }
            continue;
        }
        pp = &r->next;
    }
    ref->next = cs->refs;
    cs->refs = ref;
    pthread_mutex_unlock(&cs->mu);
    *out = ref;
    return 0;
}

void chal_ref_put(struct chal_server *cs, struct chal_ref *ref)
{
    if (!ref) {
        return;
    }
    pthread_mutex_lock(&cs->mu);
    bool last = --ref->refs == 0;
    pthread_mutex_unlock(&cs->mu);
    if (last) {
        ref_free(ref);
    }
}

void chal_ref_cache_free(struct chal_server *cs)
{
    struct chal_ref *r = cs->refs;
    while (r) {
        struct chal_ref *next = r->next;
        ref_free(r);
        r = next;
    }
    cs->refs = NULL;
}

json_t *chal_public_ids(const struct slc_config *cfg, const char *const *ids, size_t n, int *rc,
                        char *msg, size_t msglen)
{
    *rc = 0;
    json_t *out = json_array();
    if (!out) {
        *rc = SL_ENOMEM;
        return NULL;
    }
    if (cfg->public_ids) {
        for (size_t k = 0; k < cfg->npublic_ids; k++) {
            const char *id = cfg->public_ids[k];
            if (!bsearch(&id, ids, n, sizeof *ids, cmp_str)) {
                snprintf(msg, msglen,
                         "split.public_ids[%zu]: '%.128s' is not an id of the reference", k, id);
                *rc = SL_EINVAL;
                json_decref(out);
                return NULL;
            }
        }
        /* listed in id order, as the reference is */
        for (size_t i = 0; i < n; i++) {
            for (size_t k = 0; k < cfg->npublic_ids; k++) {
                if (strcmp(ids[i], cfg->public_ids[k]) == 0) {
                    json_array_append_new(out, json_string(ids[i]));
                    break;
                }
            }
        }
        return out;
    }
    bool *pub = calloc(n + 1, sizeof *pub);
    if (!pub || chal_split_by_fraction(ids, n, cfg->public_fraction, cfg->seed, pub) != 0) {
        free(pub);
        json_decref(out);
        *rc = SL_ENOMEM;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (pub[i]) {
            json_array_append_new(out, json_string(ids[i]));
        }
    }
    free(pub);
    return out;
}

/* Whether tensor t holds only integers (integer dtypes: always). */
static bool value_ok(const struct slc_config *cfg, double v, bool has_ignore, int64_t ignore)
{
    if (v != floor(v) || !isfinite(v)) {
        return false;
    }
    if (has_ignore && v == (double)ignore) {
        return true;
    }
    if (cfg->mode == SL_MODE_MULTICLASS) {
        return v >= 0;
    }
    if (cfg->mode == SL_MODE_AUTO) {
        return v >= 0;
    }
    return v == 0 || v == 1;
}

int chal_check_reference(const struct slc_config *cfg, const struct slc_images *imgs, char *msg,
                         size_t msglen)
{
    bool has_ignore = false;
    int64_t ignore = 0;
    json_t *ig = json_object_get(cfg->spec, "ignore_index");
    if (json_is_integer(ig)) {
        has_ignore = true;
        ignore = json_integer_value(ig);
    }
    if (imgs->n == 0) {
        snprintf(msg, msglen, "the reference has no image");
        return SL_EINVAL;
    }
    for (size_t i = 0; i < imgs->n; i++) {
        const struct sl_tensor *t = &imgs->items[i].a.t;
        int64_t n = sl_tensor_numel(t);
        for (int64_t k = 0; k < n; k++) {
            double v = sl_tensor_get(t, k);
            if (!value_ok(cfg, v, has_ignore, ignore)) {
                snprintf(msg, msglen,
                         "image '%s': value %.17g at flat index %lld is not a %s label (the "
                         "challenge's mode is %s)",
                         imgs->items[i].id, v, (long long)k,
                         cfg->mode == SL_MODE_MULTICLASS || cfg->mode == SL_MODE_AUTO
                             ? "non-negative integer"
                             : "0/1",
                         sl_mode_name(cfg->mode));
                return SL_ERANGE;
            }
        }
    }
    return 0;
}

/* ---- scoring ----------------------------------------------------------------------------- */

/* One split being scored: the prediction images matched to the reference's. */
struct split_job {
    const struct slc_config *cfg;
    const struct chal_ref *ref;
    const struct slc_image **pred_of; /* per reference image */
    const struct slp_limits *lim;
    struct sl_pool *pool;
};

/* Whether prediction p fits reference image t: the same shape, or a channel axis before it. */
static bool pred_fits(const struct sl_tensor *p, const struct sl_tensor *t)
{
    int extra = p->ndim - t->ndim;
    if (extra != 0 && extra != 1) {
        return false;
    }
    for (int d = 0; d < t->ndim; d++) {
        if (p->shape[d + extra] != t->shape[d]) {
            return false;
        }
    }
    return true;
}

/* Replaces a lib message that would speak of the reference's values by a neutral one. */
static void sanitize(char *msg, size_t msglen, const char *id)
{
    if (strstr(msg, "target")) {
        snprintf(msg, msglen,
                 "image '%s': the prediction does not fit its reference image under the "
                 "challenge's spec",
                 id);
    }
}

/* Scores one stacked request: pred (borrowed) against target under spec; the answer as a new
 * JSON value in *answer. */
static int score_one(const json_t *spec, const struct sl_tensor *pred,
                     const struct sl_tensor *target, const struct slp_limits *lim,
                     struct sl_pool *pool, json_t **answer, char *msg, size_t msglen)
{
    struct slp_score_req *r = NULL;
    struct sl_result *res = NULL;
    *answer = NULL;
    /* with_arrays: the combination's rewritten spec may say per_image (the arrays are ours) */
    int rc = slp__parse_spec(spec, lim, true, &r, msg, msglen);
    if (rc) {
        return rc;
    }
    r->req.prediction = *pred;
    r->req.target = *target;
    r->per_image = true;
    rc = sl_score(&r->req, pool, &res, msg, msglen);
    if (rc == 0) {
        struct slp_dynbuf b;
        slp_dynbuf_init(&b, SLP_ANSWER_MAX);
        slp__write_result(&b, r, res, 0);
        if (b.err) {
            rc = b.err;
            snprintf(msg, msglen, "out of memory writing the scores");
        } else {
            *answer = json_loadb(b.data, b.len, 0, NULL);
            if (!*answer) {
                rc = SL_ENOMEM;
                snprintf(msg, msglen, "out of memory reading the scores");
            }
        }
        slp_dynbuf_free(&b);
    }
    sl_result_free(res);
    slp__score_req_free(r);
    return rc;
}

/* Stacks the predictions of group g's members into a new buffer (*buf) viewed by *t. */
static int stack_group(const struct split_job *j, const struct chal_group *g, void **buf,
                       struct sl_tensor *t, char *msg, size_t msglen)
{
    const struct slc_image *p0 = j->pred_of[g->members[0]];
    for (size_t k = 0; k < g->n; k++) {
        const struct slc_image *p = j->pred_of[g->members[k]];
        const struct sl_tensor *rt = &j->ref->imgs->items[g->members[k]].a.t;
        if (!pred_fits(&p->a.t, rt)) {
            char ps[96], ts[96];
            sl_format_shape(p->a.t.shape, p->a.t.ndim, ps, sizeof ps);
            sl_format_shape(rt->shape, rt->ndim, ts, sizeof ts);
            snprintf(msg, msglen,
                     "image '%s': the prediction's shape %s does not fit the reference image's "
                     "shape %s (the same, or with a channel axis first)",
                     p->id, ps, ts);
            return SL_ESHAPE;
        }
        if (!same_layout(&p->a.t, &p0->a.t)) {
            char ps[96], qs[96];
            sl_format_shape(p->a.t.shape, p->a.t.ndim, ps, sizeof ps);
            sl_format_shape(p0->a.t.shape, p0->a.t.ndim, qs, sizeof qs);
            snprintf(msg, msglen,
                     "image '%s': %s %s differs from image '%s' (%s %s), whose reference images "
                     "have the same shape; send one dtype and channel count for all",
                     p->id, sl_dtype_name(p->a.t.dtype), ps, p0->id, sl_dtype_name(p0->a.t.dtype),
                     qs);
            return SL_ESHAPE;
        }
    }
    size_t bytes = tensor_bytes(&p0->a.t);
    *buf = malloc(bytes * g->n + 1);
    if (!*buf) {
        snprintf(msg, msglen, "out of memory");
        return SL_ENOMEM;
    }
    for (size_t k = 0; k < g->n; k++) {
        memcpy((char *)*buf + k * bytes, j->pred_of[g->members[k]]->a.t.data, bytes);
    }
    *t = p0->a.t;
    t->data = *buf;
    t->ndim = p0->a.t.ndim + 1;
    t->shape[0] = (int64_t)g->n;
    memcpy(t->shape + 1, p0->a.t.shape, (size_t)p0->a.t.ndim * sizeof(int64_t));
    return 0;
}

/* After a group failed: finds its first image that fails alone, for a message naming it. */
static void blame_image(const struct split_job *j, const json_t *spec, const struct chal_group *g,
                        const struct sl_tensor *pred, char *msg, size_t msglen)
{
    size_t pbytes = tensor_bytes(pred) / g->n, tbytes = tensor_bytes(&g->target) / g->n;
    for (size_t k = 0; k < g->n; k++) {
        struct sl_tensor p1 = *pred, t1 = g->target;
        p1.shape[0] = t1.shape[0] = 1;
        p1.data = (const char *)pred->data + k * pbytes;
        t1.data = (const char *)g->target.data + k * tbytes;
        char m[400];
        json_t *a = NULL;
        int rc = score_one(spec, &p1, &t1, j->lim, NULL, &a, m, sizeof m);
        json_decref(a);
        if (rc) {
            const char *id = j->pred_of[g->members[k]]->id;
            snprintf(msg, msglen, "image '%s': %s", id, m);
            sanitize(msg, msglen, id);
            return;
        }
    }
    sanitize(msg, msglen, j->pred_of[g->members[0]]->id);
}

/* Adds "metrics.K.mean"/"metrics.K.global"/"losses.K.value" of answer to values (numbers or
 * null; hidden entries of the combination left out). */
static void add_values(json_t *values, const json_t *answer)
{
    const char *k;
    json_t *v;
    char key[SLC_VALUE_KEY_MAX + 16];
    json_object_foreach(json_object_get(answer, "metrics"), k, v)
    {
        if (strncmp(k, "__segloss", 9) == 0) {
            continue;
        }
        static const char *const fields[] = {"mean", "global"};
        for (int f = 0; f < 2; f++) {
            json_t *x = json_object_get(v, fields[f]);
            if (x && (json_is_number(x) || json_is_null(x))) {
                snprintf(key, sizeof key, "metrics.%s.%s", k, fields[f]);
                json_object_set(values, key, x);
            }
        }
    }
    json_object_foreach(json_object_get(answer, "losses"), k, v)
    {
        json_t *x = json_object_get(v, "value");
        if (strncmp(k, "__segloss", 9) != 0 && x && (json_is_number(x) || json_is_null(x))) {
            snprintf(key, sizeof key, "losses.%s.value", k);
            json_object_set(values, key, x);
        }
    }
}

/* Scores split s; fills out->full[s] and out->values[s] (left NULL for an empty split). */
static int score_split(const struct split_job *j, int s, struct chal_scored *out, char *msg,
                       size_t msglen)
{
    const struct chal_ref *ref = j->ref;
    size_t ng = ref->ngroups[s];
    if (ng == 0) {
        return 0;
    }
    json_t *spec = json_deep_copy(j->cfg->spec);
    json_t *ids = json_array();
    json_t *answer = NULL;
    struct slp_agg *agg = NULL;
    int rc = spec && ids ? 0 : SL_ENOMEM;
    if (rc == 0 && ng > 1) {
        agg = slp_agg_new(spec, (int)ng, msg, msglen);
        if (!agg) {
            char why[400];
            snprintf(why, sizeof why, "%s", msg);
            snprintf(msg, msglen,
                     "the %s images have %zu different shapes, scored as one request per shape "
                     "and combined, and %s",
                     s == 0 ? "public" : "private", ng, why);
            rc = SL_EUNSUPPORTED;
        }
    }
    int64_t first = 0;
    for (size_t g = 0; rc == 0 && g < ng; g++) {
        const struct chal_group *grp = &ref->groups[s][g];
        void *buf = NULL;
        struct sl_tensor pred;
        json_t *a = NULL;
        rc = stack_group(j, grp, &buf, &pred, msg, msglen);
        if (rc == 0) {
            rc = score_one(spec, &pred, &grp->target, j->lim, j->pool, &a, msg, msglen);
            if (rc && rc != SL_ENOMEM) {
                blame_image(j, spec, grp, &pred, msg, msglen);
            }
        }
        free(buf);
        for (size_t k = 0; rc == 0 && k < grp->n; k++) {
            json_array_append_new(ids, json_string(ref->imgs->items[grp->members[k]].id));
        }
        if (rc == 0 && agg) {
            rc = slp_agg_add(agg, a, first, first + (int64_t)grp->n, msg, msglen);
            json_decref(a);
        } else if (rc == 0) {
            answer = a;
        } else {
            json_decref(a);
        }
        first += (int64_t)grp->n;
    }
    if (rc == 0 && agg) {
        answer = slp_agg_result(agg, NULL, 0, true);
        if (!answer) {
            rc = SL_ENOMEM;
            snprintf(msg, msglen, "out of memory combining the scores");
        }
    }
    json_t *values = rc == 0 ? json_object() : NULL;
    if (rc == 0 && values) {
        json_object_del(answer, "elapsed_ms");
        json_object_set(answer, "ids", ids);
        add_values(values, answer);
        out->full[s] = json_dumps(answer, JSON_COMPACT);
        out->values[s] = json_dumps(values, JSON_COMPACT | JSON_SORT_KEYS);
        if (!out->full[s] || !out->values[s]) {
            rc = SL_ENOMEM;
        }
    } else if (rc == 0) {
        rc = SL_ENOMEM;
    }
    if (rc == SL_ENOMEM && !msg[0]) {
        snprintf(msg, msglen, "out of memory");
    }
    json_decref(values);
    json_decref(answer);
    json_decref(ids);
    json_decref(spec);
    slp_agg_free(agg);
    return rc;
}

/* Names up to three ids of list (n) into buf as "'a', 'b', 'c'". */
static void name_some(const char *const *list, size_t n, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && i < 3 && at < len; i++) {
        int k = snprintf(buf + at, len - at, "%s'%.40s'", i ? ", " : "", list[i]);
        at += k > 0 ? (size_t)k : 0;
    }
    if (n > 3 && at < len) {
        snprintf(buf + at, len - at, ", ...");
    }
}

/* Matches pred's ids to ref's (exactly the same set); fills pred_of. */
static int match_ids(const struct chal_ref *ref, const struct slc_images *pred,
                     const struct slc_image **pred_of, char *msg, size_t msglen)
{
    const size_t n = ref->imgs->n;
    const char **unknown = calloc(pred->n + 1, sizeof *unknown);
    const char **missing = calloc(n + 1, sizeof *missing);
    const char **ids = calloc(n + 1, sizeof *ids);
    size_t nu = 0, nm = 0;
    int rc = 0;
    if (!unknown || !missing || !ids) {
        rc = SL_ENOMEM;
        snprintf(msg, msglen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        ids[i] = ref->imgs->items[i].id; /* the bundle is in id order */
    }
    for (size_t k = 0; k < pred->n; k++) {
        const char *id = pred->items[k].id;
        const char **at = bsearch(&id, ids, n, sizeof *ids, cmp_str);
        if (!at) {
            unknown[nu++] = id;
        } else {
            pred_of[at - ids] = &pred->items[k];
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (!pred_of[i]) {
            missing[nm++] = ids[i];
        }
    }
    if (nu || nm) {
        char a[200], b[200];
        name_some(missing, nm, a, sizeof a);
        name_some(unknown, nu, b, sizeof b);
        snprintf(msg, msglen,
                 "ids: %zu missing%s%s%s, %zu unknown%s%s%s; a submission has exactly the "
                 "reference's %zu ids",
                 nm, nm ? " (" : "", a, nm ? ")" : "", nu, nu ? " (" : "", b, nu ? ")" : "", n);
        rc = SL_EINVAL;
    }
out:
    free(unknown);
    free(missing);
    free(ids);
    return rc;
}

int chal_score(const struct slc_config *cfg, const struct chal_ref *ref,
               const struct slc_images *pred, const struct slp_limits *lim, struct sl_pool *pool,
               struct chal_scored *out, char *msg, size_t msglen)
{
    memset(out, 0, sizeof *out);
    msg[0] = '\0';
    const struct slc_image **pred_of = calloc(ref->imgs->n + 1, sizeof *pred_of);
    if (!pred_of) {
        snprintf(msg, msglen, "out of memory");
        return SL_ENOMEM;
    }
    int rc = match_ids(ref, pred, pred_of, msg, msglen);
    struct split_job j = {cfg, ref, pred_of, lim, pool};
    for (int s = 0; rc == 0 && s < 2; s++) {
        rc = score_split(&j, s, out, msg, msglen);
    }
    free(pred_of);
    if (rc) {
        chal_scored_clear(out);
    }
    return rc;
}
