/* weightmap.c - POST /v1/weight-map (openapi.json): the strict body parser, the call
 * into sl_weight_map() and the two answer forms: .npy v1.0 ('<f4', C order, header padded to
 * 64 bytes as numpy writes it) or JSON {"shape": [...], "data": [...]}.
 *
 * Unknown keys and wrong types are 422 naming the key; ranges (sigma > 0, neighbors 1 or 2,
 * connectivity for the dimensionality, ...) are checked by the library, whose messages name
 * the same keys. Arrays are decoded last, so a bad parameter is reported before a large
 * array is decoded.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array_internal.h"
#include "internal.h"

struct wm_request {
    struct sl_weight_map_params p;
    struct slp_array target, instances;
};

static void wm_request_free(struct wm_request *r)
{
    if (!r) {
        return;
    }
    slp_array_free(&r->target);
    slp_array_free(&r->instances);
}

static int parse_number(const json_t *v, const char *key, double *out, char *msg, size_t msglen)
{
    if (!json_is_number(v)) {
        snprintf(msg, msglen, "%s: must be a number", key);
        return SL_EINVAL;
    }
    *out = json_number_value(v);
    return 0;
}

/* An integral JSON number that fits an int (1 and 1.0 alike). */
static int parse_int(const json_t *v, const char *key, int *out, char *msg, size_t msglen)
{
    double d = json_number_value(v);
    if (!json_is_number(v) || d != floor(d) || fabs(d) > 2147483647.0) {
        snprintf(msg, msglen, "%s: must be an integer", key);
        return SL_EINVAL;
    }
    *out = (int)d;
    return 0;
}

/* A list of min..max numbers into out; *count receives its length. */
static int parse_numbers(const json_t *v, const char *key, int min, int max, const char *what,
                         double *out, int *count, char *msg, size_t msglen)
{
    size_t n = json_array_size(v);
    if (!json_is_array(v) || n < (size_t)min || n > (size_t)max) {
        snprintf(msg, msglen, "%s: must be a list of %s", key, what);
        return SL_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(v, i);
        if (!json_is_number(e)) {
            snprintf(msg, msglen, "%s[%zu]: must be a number", key, i);
            return SL_EINVAL;
        }
        out[i] = json_number_value(e);
    }
    *count = (int)n;
    return 0;
}

/* Parses the body object (borrowed) into r under lim (not NULL): parameters first, then the
 * arrays. */
static int parse_body(const json_t *root, struct slp__jdoc *doc, const struct slp_limits *lim,
                      struct wm_request *r, char *msg, size_t msglen)
{
    const char *key;
    json_t *val;
    int rc = 0, count;
    if (!json_is_object(root)) {
        snprintf(msg, msglen, "the body must be a JSON object like {\"target\": ARRAY}");
        return SL_EINVAL;
    }
    sl_weight_map_params_init(&r->p);
    r->p.max_images = lim->max_images;
    json_object_foreach((json_t *)root, key, val)
    {
        if (strcmp(key, "target") == 0 || strcmp(key, "instances") == 0) {
            continue;
        } else if (strcmp(key, "w0") == 0) {
            rc = parse_number(val, key, &r->p.w0, msg, msglen);
        } else if (strcmp(key, "sigma") == 0) {
            rc = parse_number(val, key, &r->p.sigma, msg, msglen);
        } else if (strcmp(key, "class_weights") == 0) {
            rc = parse_numbers(val, key, 2, 2, "2 numbers [background, foreground]",
                               r->p.class_weights, &count, msg, msglen);
        } else if (strcmp(key, "neighbors") == 0) {
            rc = parse_int(val, key, &r->p.neighbors, msg, msglen);
        } else if (strcmp(key, "connectivity") == 0) {
            rc = parse_int(val, key, &r->p.connectivity, msg, msglen);
            if (rc == 0 && r->p.connectivity != 4 && r->p.connectivity != 8 &&
                r->p.connectivity != 6 && r->p.connectivity != 26) {
                snprintf(msg, msglen, "connectivity: must be 4 or 8 (2-D), 6 or 26 (3-D), not %d",
                         r->p.connectivity);
                rc = SL_EINVAL;
            }
        } else if (strcmp(key, "spacing") == 0) {
            rc = parse_numbers(val, key, 2, 3, "2 or 3 positive numbers, one per spatial axis",
                               r->p.spacing, &r->p.nspacing, msg, msglen);
        } else {
            snprintf(msg, msglen,
                     "%s: unknown key (the keys are target, instances, w0, sigma, "
                     "class_weights, neighbors, connectivity and spacing)",
                     key);
            rc = SL_EINVAL;
        }
        if (rc) {
            return rc;
        }
    }
    const json_t *target = json_object_get(root, "target");
    const json_t *instances = json_object_get(root, "instances");
    if (!target) {
        snprintf(msg, msglen, "target: required");
        return SL_EINVAL;
    }
    rc = slp__array_from_json_doc(target, "target", lim, NULL, doc, &r->target, msg, msglen);
    if (rc == 0 && instances && !json_is_null(instances)) {
        rc = slp__array_from_json_doc(instances, "instances", lim, NULL, doc, &r->instances, msg,
                                      msglen);
    }
    return rc;
}

/* The answer's shape [N, *S]: the target's without a channel axis of 1. Mirrors the rule of
 * lib/weightmap.c: a 4-D [N, 1, H, W] is 2-D unless spacing has 3 values or connectivity is 6
 * or 26. Only used once sl_weight_map() has accepted the target. */
static int answer_shape(const struct wm_request *r, int64_t *shape)
{
    const struct sl_tensor *t = &r->target.t;
    bool hint3 = r->p.nspacing == 3 || r->p.connectivity == 6 || r->p.connectivity == 26;
    bool channel = t->ndim == 5 || (t->ndim == 4 && t->shape[1] == 1 && !hint3);
    int n = 0;
    for (int a = 0; a < t->ndim; a++) {
        if (!(channel && a == 1)) {
            shape[n++] = t->shape[a];
        }
    }
    return n;
}

/* Appends the shortest decimal that reads back (strtof) to the same float. */
static void buf_float(struct slp_dynbuf *b, float v, char *last, float *last_v)
{
    char s[32];
    if (!isfinite(v)) {
        slp_dynbuf_adds(b, "null");
        return;
    }
    if (last[0] && v == *last_v) {
        slp_dynbuf_adds(b, last); /* weight maps repeat w_c on most pixels */
        return;
    }
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(s, sizeof s, "%.*g", prec, (double)v);
        if (strtof(s, NULL) == v) {
            break;
        }
    }
    slp_dynbuf_adds(b, s);
    snprintf(last, 32, "%s", s);
    *last_v = v;
}

static void write_json(struct slp_dynbuf *b, const int64_t *shape, int ndim, const float *w,
                       int64_t count)
{
    char last[32] = "";
    float last_v = 0;
    slp_dynbuf_adds(b, "{\"shape\":[");
    for (int a = 0; a < ndim; a++) {
        if (a) {
            slp_dynbuf_add(b, ",", 1);
        }
        slp__write_int(b, shape[a]);
    }
    slp_dynbuf_adds(b, "],\"data\":[");
    for (int64_t i = 0; i < count && !b->err; i++) {
        if (i) {
            slp_dynbuf_add(b, ",", 1);
        }
        buf_float(b, w[i], last, &last_v);
    }
    slp_dynbuf_adds(b, "]}");
}

void slp_weight_map_request(const char *body, size_t len, const struct slp_limits *lim,
                            struct sl_pool *pool, bool want_json, struct slp_response *out)
{
    char msg[512] = "";
    struct slp__jdoc doc;
    json_t *root = NULL;
    struct wm_request r;
    char *buf = NULL;
    float *w = NULL;
    int64_t shape[SL_MAX_DIMS];
    struct slp_limits deflim;
    memset(out, 0, sizeof *out);
    memset(&r, 0, sizeof r);
    lim = slp__limits_or_default(lim, &deflim);
    int rc = slp__json_load(body, len, lim, NULL, &doc, &root, msg, sizeof msg);
    if (rc) {
        slp__answer_error(rc, msg, out);
        return;
    }
    rc = parse_body(root, &doc, lim, &r, msg, sizeof msg);
    json_decref(root);
    slp__jdoc_free(&doc);
    if (rc) {
        goto fail;
    }
    const int64_t count = sl_tensor_numel(&r.target.t);
    const int ndim = answer_shape(&r, shape);
    char hdr[512];
    size_t hlen = want_json ? 0 : slp_npy_write_header(SL_DT_F32, shape, ndim, 0, hdr, sizeof hdr);
    /* the .npy answer is computed in place after its header (64-byte aligned) */
    buf = malloc(hlen + sizeof(float) * (size_t)(count > 0 ? count : 1));
    if (!buf) {
        rc = SL_ENOMEM;
        snprintf(msg, sizeof msg, "out of memory for a weight map of %lld pixels",
                 (long long)count);
        goto fail;
    }
    w = (float *)(void *)(buf + hlen);
    rc = sl_weight_map(&r.target.t, r.instances.t.data ? &r.instances.t : NULL, &r.p, pool, w, msg,
                       sizeof msg);
    wm_request_free(&r);
    if (rc) {
        goto fail;
    }
    if (want_json) {
        struct slp_dynbuf b;
        slp_dynbuf_init(&b, SLP_ANSWER_MAX);
        write_json(&b, shape, ndim, w, count);
        free(buf);
        slp__answer_json(&b, out);
        return;
    }
    memcpy(buf, hdr, hlen);
    if (slp__host_is_big()) {
        slp__byteswap(w, (size_t)count, sizeof(float));
    }
    out->status = 200;
    out->content_type = "application/x-npy";
    out->body = buf;
    out->len = hlen + sizeof(float) * (size_t)count;
    return;
fail:
    wm_request_free(&r);
    free(buf);
    slp__answer_error(rc, msg, out);
}
