/* intake.c - the bodies of POST routes: checked at the headers, kept (or split as multipart)
 * as they arrive within --max-body-mb and --max-inflight-mb, handed to a compute worker that
 * undoes the Content-Encoding and runs the route's step, and answered when the job resumes
 * the connection.
 *
 * A body that cannot be kept (over a limit, out of memory) is noted in req->in.fail and its
 * bytes are read and dropped; the answer goes out at the completing call. Answering at the
 * headers would be sooner, but the connection would then close while the client is still
 * sending, and a client that meets the closed socket (curl: "Send failure: Broken pipe") never
 * reads the answer: every request must get one.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "inflate.h"
#include "segloss.h"
#include "srv_internal.h"

/* Notes why the body cannot be used (code, status, detail) and frees what was kept. */
void srv_body_fail(struct srv_req *req, int code, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(req->in.fail_msg, sizeof(req->in.fail_msg), fmt, ap);
    va_end(ap);
    req->in.fail = code;
    req->in.fail_status = status;
    slp_dynbuf_free(&req->in.body);
    srv_parts_free(req);
}

/* srv_body_fail with the --max-body-mb 413. */
void srv_body_fail_limit(struct srv_req *req)
{
    srv_body_fail(req, SL_ETOOLARGE, MHD_HTTP_CONTENT_TOO_LARGE,
                  "request body is over the limit of %zu bytes (--max-body-mb %llu)",
                  req->srv->max_body, (unsigned long long)req->srv->cfg.max_body_mb);
}

/* Refuses the body with status once it has been read and dropped; MHD_YES. */
enum MHD_Result srv_body_refuse(struct srv_req *req, enum srv_reject why, int status,
                                const char *detail)
{
    srv_body_fail(req, SL_EBUSY, status, "%s", detail);
    req->obs.reject = why;
    req->phase = PH_BODY;
    return MHD_YES;
}

/* The detail of a 503 for --max-inflight-mb. */
static void inflight_detail(const struct srv_server *srv, char *detail, size_t len)
{
    snprintf(detail, len,
             "the server holds as many request bodies as it may (--max-inflight-mb %llu); "
             "retry later",
             (unsigned long long)srv->cfg.max_inflight_mb);
}

/* A body without Content-Length (chunked) reserves memory as it arrives: `got` bytes so far,
 * reserved in doubling steps so that the server lock is taken a logarithmic number of times. */
static void body_reserve_more(struct srv_req *req, size_t got)
{
    if (req->in.fail || got <= req->in.reserved) {
        return;
    }
    size_t want = req->in.reserved < SRV_BODY_FIRST_CHUNK ? SRV_BODY_FIRST_CHUNK : req->in.reserved;
    while (want < got) {
        want = want > SIZE_MAX / 2 ? SIZE_MAX : want * 2;
    }
    if (want > req->srv->max_body) {
        want = got > req->srv->max_body ? got : req->srv->max_body;
    }
    if (srv_body_reserve(req, want) != 0 && srv_body_reserve(req, got) != 0) {
        char detail[200];
        inflight_detail(req->srv, detail, sizeof(detail));
        srv_body_fail(req, SL_EBUSY, MHD_HTTP_SERVICE_UNAVAILABLE, "%s", detail);
        req->obs.reject = REJ_BODY_MEMORY;
    }
}

/* Checks Content-Type against the bodies the route takes. Returns 0, or SL_EUNSUPPORTED with a
 * 415 detail. */
static int check_media_type(struct srv_req *req, const char *ct, char *detail, size_t len)
{
    const struct srv_route *route = req->route;
    req->hdr.multipart = srv_media_type_is(ct, "multipart/form-data");
    if (srv_media_type_is(ct, "application/json") || (req->hdr.multipart && route->compute_parts)) {
        return 0;
    }
    const char *want =
        route->compute_parts ? "application/json or multipart/form-data" : "application/json";
    if (req->hdr.multipart) {
        char where[128];
        srv_routes_multipart(where, sizeof(where));
        snprintf(detail, len, "multipart/form-data is not accepted on %s (only on %s); send %s",
                 route->path, where, want);
    } else if (!ct) {
        snprintf(detail, len, "Content-Type is missing; send %s", want);
    } else {
        snprintf(detail, len, "Content-Type '%.100s' is not supported; send %s", ct, want);
    }
    return SL_EUNSUPPORTED;
}

/* A draining server, a full compute queue or a body that would pass --max-inflight-mb refuse
 * the body without keeping it, so that memory under overload stays bounded by the queue and the
 * cap rather than by the connections (the queue can still fill up while an accepted body
 * arrives: then the answer is the same 503 at the end). Returns true when req is refused. */
static bool refuse_overload(struct srv_req *req, enum MHD_Result *ret)
{
    struct srv_server *srv = req->srv;
    int queued = 0;
    if (srv_is_draining(srv)) {
        *ret = srv_body_refuse(req, REJ_SHUTTING_DOWN, MHD_HTTP_SERVICE_UNAVAILABLE,
                               "the server is shutting down");
        return true;
    }
    sl_pool_load(srv->pool, &queued, NULL);
    if (queued >= srv->cfg.queue) {
        *ret = srv_body_refuse(req, REJ_QUEUE_FULL, MHD_HTTP_SERVICE_UNAVAILABLE,
                               "the compute queue is full; retry later");
        return true;
    }
    if (req->hdr.declared > 0 && srv_body_reserve(req, (size_t)req->hdr.declared) != 0) {
        char detail[200];
        inflight_detail(srv, detail, sizeof(detail));
        *ret = srv_body_refuse(req, REJ_BODY_MEMORY, MHD_HTTP_SERVICE_UNAVAILABLE, detail);
        return true;
    }
    return false;
}

/* First call: headers only. Refuses what can be refused before reading any body, and notes
 * what the answer may be (Accept, Accept-Encoding) while the headers are at hand. */
static enum MHD_Result body_begin(struct srv_req *req)
{
    struct srv_server *srv = req->srv;
    char detail[256];
    if (req->route->admit) {
        /* who may send this body (challenges: the token), before anything else is said */
        int status = req->route->admit(req);
        if (status) {
            req->in.fail = SL_EINVAL;
            req->in.fail_status = status;
            req->phase = PH_BODY;
            return MHD_YES;
        }
    }
    const char *ct = srv_header(req->conn, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (check_media_type(req, ct, detail, sizeof(detail)) != 0) {
        return srv_reply_problem(req, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, detail, NULL, NULL);
    }
    const char *ce = srv_header(req->conn, MHD_HTTP_HEADER_CONTENT_ENCODING);
    if (srv_parse_encoding(ce, &req->hdr.enc) != 0) {
        snprintf(detail, sizeof(detail),
                 "Content-Encoding '%.100s' is not supported; use gzip, deflate, zstd or identity",
                 ce);
        return srv_reply_problem(req, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, detail,
                                 MHD_HTTP_HEADER_ACCEPT_ENCODING, "gzip, deflate, zstd");
    }
    /* MHD has already refused a malformed Content-Length; check it against the cap before a
     * single body byte is read. */
    const char *cl = srv_header(req->conn, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (srv_content_length(cl, &req->hdr.declared) != 0 || req->hdr.declared > srv->max_body) {
        snprintf(detail, sizeof(detail),
                 "request body of %.30s bytes is over the limit of %zu bytes (--max-body-mb "
                 "%llu)",
                 cl, srv->max_body, (unsigned long long)srv->cfg.max_body_mb);
        return srv_reply_problem(req, MHD_HTTP_CONTENT_TOO_LARGE, detail, NULL, NULL);
    }
    enum MHD_Result ret;
    if (refuse_overload(req, &ret)) {
        return ret;
    }
    if (req->hdr.multipart && srv_parts_begin(req, ct, detail, sizeof(detail)) != 0) {
        return srv_reply_problem(req, MHD_HTTP_BAD_REQUEST, detail, NULL, NULL);
    }
    req->hdr.want_json = srv_accept_prefers_json(srv_header(req->conn, MHD_HTTP_HEADER_ACCEPT));
    req->hdr.want_html = srv_accept_prefers_html(srv_header(req->conn, MHD_HTTP_HEADER_ACCEPT));
    req->hdr.answer_enc =
        srv_accept_encoding_pick(srv_header(req->conn, MHD_HTTP_HEADER_ACCEPT_ENCODING));
    slp_dynbuf_init(&req->in.body, srv->max_body);
    req->in.body.pool = srv->bufs; /* a large body reuses a kept block */
    req->phase = PH_BODY;
    return MHD_YES;
}

/* Appends body bytes, or notes why they cannot be kept (the rest is then dropped). */
static void body_append(struct srv_req *req, const char *data, size_t n)
{
    struct slp_dynbuf *b = &req->in.body;
    if (req->in.fail) {
        return;
    }
    if (b->len == 0 && req->hdr.declared > n) {
        /* one allocation for an announced body, not a doubling series */
        slp_dynbuf_room(b, (size_t)req->hdr.declared);
    }
    if (slp_dynbuf_add(b, data, n) != 0) {
        req->in.fail = b->err;
        slp_dynbuf_free(b);
    }
}

/* Whether the body is split as it arrives (multipart with the identity coding): nothing kept. */
static bool split_on_arrival(const struct srv_req *req)
{
    return req->hdr.multipart && req->hdr.enc == SRV_ENC_IDENTITY;
}

/* On a worker: undoes the Content-Encoding of req's body in place (the compressed bytes are
 * freed before scoring). Returns 0, or an SL_E* code with the answer in resp. */
static int body_inflate(struct srv_req *req, struct slp_response *resp)
{
    struct srv_server *srv = req->srv;
    const unsigned char *in = (const unsigned char *)req->in.body.data;
    size_t len = req->in.body.len;
    enum slp_compression comp = req->hdr.enc == SRV_ENC_GZIP   ? SLP_COMP_GZIP
                                : req->hdr.enc == SRV_ENC_ZSTD ? SLP_COMP_ZSTD
                                                               : slp_http_deflate_kind(in, len);
    /* zstd's messages name the coding (gzip's and deflate's stay as they were) */
    const char *name =
        comp == SLP_COMP_ZSTD ? "request body (Content-Encoding: zstd)" : "request body";
    struct slp_dynbuf plain;
    char msg[256];
    slp_dynbuf_init(&plain, srv->max_body);
    plain.pool = srv->bufs;
    int rc = slp_inflate_all(in, len, comp, &plain, name, msg, sizeof(msg));
    if (rc == SL_ETOOLARGE && strstr(msg, " inflates to more than ")) {
        /* the cap is --max-body-mb's (a zstd window over its limit says so itself) */
        size_t at = strlen(msg);
        snprintf(msg + at, sizeof(msg) - at, " (the --max-body-mb limit)");
    }
    if (rc != 0) {
        slp_dynbuf_free(&plain);
        slp_problem(slp_http_status(rc), msg, resp);
        return rc;
    }
    slp_dynbuf_free(&req->in.body);
    req->in.body = plain;
    return 0;
}

/* On a worker: inflate if needed (a multipart body is split after that), then the route's
 * wire-to-wire step. */
static void body_compute(struct srv_req *req, struct slp_response *resp)
{
    if (split_on_arrival(req)) {
        srv_parts_compute(req, resp);
        return;
    }
    if (req->hdr.enc != SRV_ENC_IDENTITY && body_inflate(req, resp) != 0) {
        return;
    }
    const char *body = req->in.body.data;
    size_t len = req->in.body.len;
    if (len == 0) {
        slp_problem(MHD_HTTP_BAD_REQUEST, "request body is empty after decompression", resp);
    } else if (req->hdr.multipart) {
        /* taken out of req: a failing split frees req's body (srv_body_fail) while reading it */
        struct slp_dynbuf whole = req->in.body;
        slp_dynbuf_init(&req->in.body, 0);
        int rc = srv_parts_split(req, body, len, resp);
        slp_dynbuf_free(&whole); /* the parts hold their own copies */
        if (rc == 0) {
            srv_parts_compute(req, resp);
        }
    } else {
        req->route->compute(req, body, len, resp);
    }
}

/* The compute job of a body: computes (unless the server gave up on it), frees the body, and
 * hands the answer back to the I/O thread by resuming the connection. */
static void body_job(void *arg)
{
    struct srv_req *req = arg;
    struct srv_server *srv = req->srv;
    struct slp_response resp = {0};

    pthread_mutex_lock(&srv->mu);
    bool skip = req->job.abandoned || srv->stopping;
    pthread_mutex_unlock(&srv->mu);
    if (skip) {
        slp_problem(MHD_HTTP_SERVICE_UNAVAILABLE, "the server is shutting down", &resp);
    } else {
        body_compute(req, &resp);
        srv_maybe_gzip(req, &resp);
    }
    slp_dynbuf_free(&req->in.body);
    srv_parts_free(req);

    pthread_mutex_lock(&srv->mu);
    srv_body_release_locked(req); /* the body is gone; the answer is bounded by the work done */
    req->job.resp = resp;
    req->job.done = true;
    if (req->job.suspended) {
        srv_suspended_unlink(srv, req);
        MHD_resume_connection(req->conn);
    }
    srv_req_unref_locked(req);
    pthread_mutex_unlock(&srv->mu);
}

/* The answer to a body that was not kept or is empty, or MHD_YES with *answered false when
 * the body is good to submit. */
static enum MHD_Result answer_bad_body(struct srv_req *req, size_t got, bool *answered)
{
    struct srv_server *srv = req->srv;
    *answered = true;
    if (req->in.fail && req->in.fail_status) {
        if (req->in.fail == SL_ENOMEM) {
            req->obs.reject = REJ_OUT_OF_MEMORY;
        }
        return srv_reply_problem(req, req->in.fail_status, req->in.fail_msg, req->in.fail_hdr[0],
                                 req->in.fail_hdr[1]);
    }
    if (req->in.fail == SL_ETOOLARGE) {
        char detail[160];
        snprintf(detail, sizeof(detail),
                 "request body is over the limit of %zu bytes (--max-body-mb %llu)", srv->max_body,
                 (unsigned long long)srv->cfg.max_body_mb);
        return srv_reply_problem(req, MHD_HTTP_CONTENT_TOO_LARGE, detail, NULL, NULL);
    }
    if (req->in.fail) {
        req->obs.reject = REJ_OUT_OF_MEMORY;
        return srv_reply_problem(req, MHD_HTTP_SERVICE_UNAVAILABLE,
                                 "out of memory receiving the request body", NULL, NULL);
    }
    if (got == 0) {
        /* no length and no chunked coding: the client never said a body comes */
        if (!srv_header(req->conn, MHD_HTTP_HEADER_CONTENT_LENGTH) &&
            !srv_header(req->conn, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
            return srv_reply_problem(req, MHD_HTTP_LENGTH_REQUIRED,
                                     "a POST body needs Content-Length or chunked "
                                     "Transfer-Encoding",
                                     NULL, NULL);
        }
        return srv_reply_problem(req, MHD_HTTP_BAD_REQUEST, "request body is empty", NULL, NULL);
    }
    *answered = false;
    return MHD_YES;
}

/* Final call: the body is complete. Hands it to the pool and suspends the connection. */
static enum MHD_Result body_submit(struct srv_req *req)
{
    struct srv_server *srv = req->srv;
    size_t got = split_on_arrival(req) ? req->in.raw : req->in.body.len;
    if (split_on_arrival(req) && !req->in.fail && got > 0) {
        srv_parts_end(req);
    }
    bool answered;
    enum MHD_Result ret = answer_bad_body(req, got, &answered);
    if (answered) {
        return ret;
    }

    pthread_mutex_lock(&srv->mu);
    if (srv->stopping) {
        pthread_mutex_unlock(&srv->mu);
        return srv_reply_problem(req, MHD_HTTP_SERVICE_UNAVAILABLE, "the server is shutting down",
                                 NULL, NULL);
    }
    req->job.refs++; /* the job's */
    pthread_mutex_unlock(&srv->mu);

    req->phase = PH_QUEUED;
    if (sl_pool_submit(srv->pool, body_job, req) != 0) {
        pthread_mutex_lock(&srv->mu);
        req->job.refs--; /* MHD's reference remains */
        pthread_mutex_unlock(&srv->mu);
        req->obs.reject = REJ_QUEUE_FULL;
        return srv_reply_problem(req, MHD_HTTP_SERVICE_UNAVAILABLE,
                                 "the compute queue is full; retry later", NULL, NULL);
    }

    pthread_mutex_lock(&srv->mu);
    if (req->job.done) {
        /* The job already finished: nothing to suspend for. */
        pthread_mutex_unlock(&srv->mu);
        return srv_reply_job(req);
    }
    if (srv->stopping) {
        /* The drain gave up between submit and here: do not suspend (MHD must be stoppable).
         * A job that is splitting the body borrows connection memory: answer after it. */
        req->job.abandoned = true;
        while (req->job.pinned) {
            pthread_cond_wait(&srv->unpinned, &srv->mu);
        }
        pthread_mutex_unlock(&srv->mu);
        return srv_reply_problem(req, MHD_HTTP_SERVICE_UNAVAILABLE, "the server is shutting down",
                                 NULL, NULL);
    }
    MHD_suspend_connection(req->conn);
    srv_suspended_link(srv, req);
    pthread_mutex_unlock(&srv->mu);
    return MHD_YES;
}

/* Called again after the job (or srv_server_abandon) resumed the connection. */
static enum MHD_Result body_finish(struct srv_req *req)
{
    struct srv_server *srv = req->srv;
    pthread_mutex_lock(&srv->mu);
    bool done = req->job.done;
    bool abandoned = req->job.abandoned;
    pthread_mutex_unlock(&srv->mu);
    if (done) {
        /* resp is the job's no more: it set done under the lock and let go of req->job.resp. */
        return srv_reply_job(req);
    }
    if (abandoned) {
        return srv_reply_problem(req, MHD_HTTP_SERVICE_UNAVAILABLE, "the server is shutting down",
                                 NULL, NULL);
    }
    fprintf(stderr, "seglossd: internal: %s request resumed before its result\n", req->route->path);
    return MHD_NO;
}

/* Every MHD call of a route that takes a body: headers, bytes, completion, resume. */
enum MHD_Result srv_body_handle(struct srv_req *req, const char *data, size_t *size)
{
    switch (req->phase) {
    case PH_NEW:
        return body_begin(req);
    case PH_BODY:
        if (*size > 0) {
            size_t got = split_on_arrival(req) ? req->in.raw : req->in.body.len;
            body_reserve_more(req, got + *size);
            if (split_on_arrival(req)) {
                srv_parts_feed(req, data, *size);
            } else {
                body_append(req, data, *size);
            }
            *size = 0;
            return MHD_YES;
        }
        return body_submit(req);
    case PH_QUEUED:
        return body_finish(req);
    }
    return MHD_NO;
}
