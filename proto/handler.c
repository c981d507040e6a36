/* handler.c - one /v1/score body end to end, problem+json errors, the status table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
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

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void slp_score_request(const char *body, size_t len, const struct slp_limits *lim,
                       struct sl_pool *pool, struct slp_response *out)
{
    char msg[512] = "";
    double t0 = now_ms();
    json_error_t jerr;
    struct slp_score_req *r = NULL;
    struct sl_result *res = NULL;
    struct slp_buf b = {0};
    memset(out, 0, sizeof *out);
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(msg, sizeof msg, "malformed JSON at line %d, column %d: %s", jerr.line,
                 jerr.column, jerr.text);
        slp_problem(400, msg, out);
        return;
    }
    int rc = slp__parse_score(root, lim, &r, msg, sizeof msg);
    json_decref(root);
    if (rc) {
        goto fail;
    }
    rc = sl_score(&r->req, pool, &res, msg, sizeof msg);
    if (rc) {
        goto fail;
    }
    slp__write_result(&b, r, res, now_ms() - t0);
    sl_result_free(res);
    slp__score_req_free(r);
    if (b.oom) {
        free(b.data);
        slp_problem(503, "out of memory while writing the answer", out);
        return;
    }
    out->status = 200;
    out->content_type = "application/json";
    out->body = b.data;
    out->len = b.len;
    return;
fail:
    slp__score_req_free(r);
    if (!msg[0]) {
        snprintf(msg, sizeof msg, "%s", sl_strerror(rc));
    }
    slp_problem(slp_http_status(rc), msg, out);
}

extern const char slp__openapi_start[];
extern const char slp__openapi_end[];

const char *slp_openapi_json(size_t *len)
{
    *len = (size_t)(slp__openapi_end - slp__openapi_start);
    return slp__openapi_start;
}
