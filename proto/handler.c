/* handler.c - one /v1/score body end to end, problem+json errors, the status table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "array_internal.h"
#include "internal.h"

int slp_http_status(int code)
{
    switch (code) {
    case SL_EMALFORMED:
    case SL_ESIZE:
        return 400;
    case SL_ETOOLARGE:
        return 413;
    case SL_EINVAL:
    case SL_ESHAPE:
    case SL_ERANGE:
    case SL_EUNSUPPORTED:
        return 422;
    case SL_EBUSY:
    case SL_ENOMEM:
        return 503;
    default:
        return 500;
    }
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    default:
        return "Internal Server Error";
    }
}

void slp_response_free(struct slp_response *r)
{
    if (!r) {
        return;
    }
    free(r->body);
    memset(r, 0, sizeof *r);
}

void slp_problem(int status, const char *detail, struct slp_response *out)
{
    /* RFC 9457; "error" repeats detail for Open Inference Protocol clients */
    json_t *j =
        json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", "about:blank", "title",
                  reason_phrase(status), "status", status, "detail", detail, "error", detail);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    out->status = status;
    out->content_type = "application/problem+json";
    if (!s) {
        /* detail was not valid UTF-8 or memory ran out: a fixed body still says what */
        static const char fallback[] =
            "{\"type\":\"about:blank\",\"title\":\"Internal Server Error\",\"status\":500,"
            "\"detail\":\"the error message could not be encoded\","
            "\"error\":\"the error message could not be encoded\"}";
        s = strdup(fallback);
        out->status = 500;
    }
    out->body = s;
    out->len = s ? strlen(s) : 0;
}

void slp__answer_json(struct slp_dynbuf *b, struct slp_response *out)
{
    char msg[160];
    if (b->err == SL_ETOOLARGE) {
        snprintf(msg, sizeof msg,
                 "the answer is over the limit of %zu bytes (ask for fewer values: per_image, "
                 "fewer metrics, or a smaller batch)",
                 b->max);
        slp_dynbuf_free(b);
        slp__answer_error(SL_ETOOLARGE, msg, out);
        return;
    }
    char *body = b->err ? NULL : slp_dynbuf_take(b, &out->len);
    if (!body) {
        slp_dynbuf_free(b);
        slp_problem(503, "out of memory while writing the answer", out);
        return;
    }
    out->status = 200;
    out->content_type = "application/json";
    out->body = body;
}

void slp__answer_error(int rc, const char *msg, struct slp_response *out)
{
    slp_problem(slp_http_status(rc), msg && msg[0] ? msg : sl_strerror(rc), out);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The array keys of the spec that may name a part. */
static const char *const array_keys[] = {"prediction", "target", "weight", "instances"};

/* Whether an array of the spec root (borrowed) names part `name` with "part". */
static bool part_is_named(const json_t *root, const char *name)
{
    for (size_t k = 0; k < sizeof array_keys / sizeof array_keys[0]; k++) {
        const json_t *a = json_object_get(root, array_keys[k]);
        const char *p = json_is_object(a) ? json_string_value(json_object_get(a, "part")) : NULL;
        if (p && strcmp(p, name) == 0) {
            return true;
        }
    }
    return false;
}

/* The view of image i of the batch tensor t ([N, ...]): its dims after the first. */
static struct sl_tensor image_view(const struct sl_tensor *t, int64_t i)
{
    struct sl_tensor v = *t;
    const int64_t n = t->ndim > 0 && t->shape[0] > 0 ? t->shape[0] : 1;
    const int64_t each = sl_tensor_numel(t) / n;
    v.data = (const char *)t->data + (size_t)(i * each) * sl_dtype_size(t->dtype);
    v.ndim = t->ndim > 0 ? t->ndim - 1 : 0;
    for (int k = 0; k < v.ndim; k++) {
        v.shape[k] = t->shape[k + 1];
    }
    return v;
}

/* Fills *out with the HTML report (proto/report.h) of the JSON answer b holds (b is freed):
 * r (borrowed) brings the arrays of the worst images, root the spec. */
static void answer_html(struct slp_dynbuf *b, const struct slp_score_req *r, const json_t *root,
                        struct slp_response *out)
{
    char msg[512] = "";
    int64_t idx[SLP_REPORT_WORST_MAX];
    struct slp_report_image imgs[SLP_REPORT_WORST_MAX];
    struct slp_dynbuf page;
    slp_dynbuf_init(&page, SLP_ANSWER_MAX);
    if (b->err) {
        slp__answer_json(b, out); /* the error of the JSON answer: 413 or 503 */
        return;
    }
    json_t *answer = json_loadb(b->data, b->len, 0, NULL);
    slp_dynbuf_free(b);
    if (!answer) {
        slp_problem(503, "out of memory while reading the answer back for its report", out);
        return;
    }
    int n = slp_report_worst(answer, root, r->report_worst, idx);
    for (int j = 0; j < n; j++) {
        imgs[j].index = idx[j];
        imgs[j].id = NULL;
        imgs[j].pred = image_view(&r->req.prediction, idx[j]);
        imgs[j].target = image_view(&r->req.target, idx[j]);
    }
    int rc = slp_report_html(&page, answer, root, NULL, imgs, n, NULL, msg, sizeof msg);
    json_decref(answer);
    char *body = rc ? NULL : slp_dynbuf_take(&page, &out->len);
    if (rc || !body) {
        slp_dynbuf_free(&page);
        slp__answer_error(rc ? rc : SL_ENOMEM, msg, out);
        return;
    }
    out->status = 200;
    out->content_type = SLP_HTML_TYPE;
    out->body = body;
}

/* Parses the spec root (borrowed; doc holds the strings its skeleton left out), checks that
 * every part but "spec" is used (a typo in a part name must not go unnoticed), scores and fills
 * *out with the JSON answer or (form SLP_ANSWER_HTML) its report. t0: when the request began
 * (ms). */
static void score_spec(const json_t *root, struct slp__jdoc *doc, const struct slp_parts *parts,
                       const struct slp_limits *lim, struct sl_pool *pool, double t0,
                       enum slp_answer_form form, struct slp_response *out)
{
    char msg[512] = "";
    struct slp_score_req *r = NULL;
    struct sl_result *res = NULL;
    struct slp_dynbuf b;
    slp_dynbuf_init(&b, SLP_ANSWER_MAX);
    int rc = slp__parse_score(root, lim, parts, doc, &r, msg, sizeof msg);
    if (rc) {
        goto fail;
    }
    for (int i = 0; parts && i < parts->n; i++) {
        const char *name = parts->items[i].name;
        if (strcmp(name, "spec") != 0 && !part_is_named(root, name)) {
            snprintf(msg, sizeof msg,
                     "multipart part '%.64s' is not used: no array of the spec names it with "
                     "\"part\" (a typo in a part name?)",
                     name);
            rc = SL_EINVAL;
            goto fail;
        }
    }
    if (form == SLP_ANSWER_HTML) {
        r->per_image = true; /* the report plots and ranks the per-image values */
    }
    rc = sl_score(&r->req, pool, &res, msg, sizeof msg);
    if (rc) {
        goto fail;
    }
    slp__write_result(&b, r, res, now_ms() - t0);
    sl_result_free(res);
    if (form == SLP_ANSWER_HTML) {
        answer_html(&b, r, root, out);
        slp__score_req_free(r);
        return;
    }
    slp__score_req_free(r);
    slp__answer_json(&b, out);
    return;
fail:
    slp__score_req_free(r);
    slp__answer_error(rc, msg, out);
}

void slp_score_request_as(const char *body, size_t len, const struct slp_limits *lim,
                          struct sl_pool *pool, enum slp_answer_form form, struct slp_response *out)
{
    char msg[512];
    double t0 = now_ms();
    struct slp_limits deflim;
    struct slp__jdoc doc;
    json_t *root = NULL;
    memset(out, 0, sizeof *out);
    lim = slp__limits_or_default(lim, &deflim);
    int rc = slp__json_load(body, len, lim, NULL, &doc, &root, msg, sizeof msg);
    if (rc) {
        slp__answer_error(rc, msg, out);
        return;
    }
    score_spec(root, &doc, NULL, lim, pool, t0, form, out);
    json_decref(root);
    slp__jdoc_free(&doc);
}

void slp_score_request(const char *body, size_t len, const struct slp_limits *lim,
                       struct sl_pool *pool, struct slp_response *out)
{
    slp_score_request_as(body, len, lim, pool, SLP_ANSWER_JSON, out);
}

void slp_score_multipart_as(const struct slp_parts *parts, const struct slp_limits *lim,
                            struct sl_pool *pool, enum slp_answer_form form,
                            struct slp_response *out)
{
    char msg[512];
    double t0 = now_ms();
    struct slp_limits deflim;
    const struct slp_part *spec = NULL;
    memset(out, 0, sizeof *out);
    lim = slp__limits_or_default(lim, &deflim);
    for (int i = 0; i < parts->n; i++) {
        const struct slp_part *p = &parts->items[i];
        if (!p->name) {
            slp_problem(400, "a multipart part has no name", out);
            return;
        }
        for (int k = 0; k < i; k++) {
            if (strcmp(parts->items[k].name, p->name) == 0) {
                snprintf(msg, sizeof msg, "multipart body has two parts named '%.64s'", p->name);
                slp_problem(422, msg, out);
                return;
            }
        }
        if (strcmp(p->name, "spec") == 0) {
            spec = p;
        }
    }
    if (!spec) {
        slp_problem(400,
                    "multipart body has no part named 'spec' (the JSON spec, e.g. curl -F "
                    "spec=@spec.json)",
                    out);
        return;
    }
    if (spec->len == 0) {
        slp_problem(400, "multipart part 'spec' is empty (it must hold the JSON spec)", out);
        return;
    }
    struct slp__jdoc doc;
    json_t *root = NULL;
    int rc = slp__json_load((const char *)spec->data, spec->len, lim, "spec", &doc, &root, msg,
                            sizeof msg);
    if (rc) {
        slp__answer_error(rc, msg, out);
        return;
    }
    score_spec(root, &doc, parts, lim, pool, t0, form, out);
    json_decref(root);
    slp__jdoc_free(&doc);
}

void slp_score_multipart(const struct slp_parts *parts, const struct slp_limits *lim,
                         struct sl_pool *pool, struct slp_response *out)
{
    slp_score_multipart_as(parts, lim, pool, SLP_ANSWER_JSON, out);
}

extern const char slp__openapi_start[];
extern const char slp__openapi_end[];

const char *slp_openapi_json(size_t *len)
{
    *len = (size_t)(slp__openapi_end - slp__openapi_start);
    return slp__openapi_start;
}
