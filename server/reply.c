/* reply.c - queuing answers: headers every answer carries, problem+json, the answer of a job,
 * and gzip or zstd of large answers the client accepts so (on the worker).
 */
#include <stdlib.h>
#include <string.h>

/* const next_in: deflate reads the borrowed answer */
#define ZLIB_CONST
#include <zlib.h>
#include <zstd.h>

#include "srv_internal.h"

/* Answers shorter than this are sent as they are: gzip would gain too little. */
#define SRV_GZIP_MIN 1024

/* zlib level of gzipped answers. Measured on the .npy of an 8x512x512 map with 200 cells per
 * image: level 1 shrinks it 4.6x at 170 MB/s, level 6 5.1x at 64 MB/s, level 9 5.2x at 9 MB/s. */
#define GZIP_LEVEL 1
/* zstd level of zstd answers (see tests/bench/proto_bench.c for the figures). */
#define ZSTD_ANSWER_LEVEL 1
/* Bytes handed to zlib per call (its counters are 32-bit). */
#define ZLIB_CHUNK ((size_t)1 << 30)

/* Notes what the answer says about the request for the metrics: its status, its size, and
 * whether it is a rejection (413; a 503 that no caller named a reason for first). */
static void note_answer(struct srv_req *req, int status, size_t len, bool shutting_down)
{
    req->out.status = status;
    req->obs.bytes_out = len;
    if (status == MHD_HTTP_CONTENT_TOO_LARGE) {
        req->obs.reject = REJ_BODY_TOO_LARGE;
    } else if (status == MHD_HTTP_SERVICE_UNAVAILABLE && req->obs.reject == REJ_NONE) {
        req->obs.reject = shutting_down ? REJ_SHUTTING_DOWN : REJ_UNAVAILABLE;
    }
}

/* Queues an answer with the headers every answer carries (see srv_internal.h). */
enum MHD_Result srv_reply_hdrs(struct srv_req *req, int status, const char *ctype, void *body,
                               size_t len, bool owned, const char *const *hdrs)
{
    struct srv_server *srv = req->srv;
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        if (owned) {
            free(body);
        }
        return MHD_NO;
    }
    pthread_mutex_lock(&srv->mu);
    bool draining = srv->draining;
    bool shutting_down = draining || srv->stopping;
    pthread_mutex_unlock(&srv->mu);

    bool ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                      ctype ? ctype : "application/json") == MHD_YES;
    bool retry_given = false;
    for (const char *const *h = hdrs; ok && h && h[0]; h += 2) {
        ok = MHD_add_response_header(r, h[0], h[1]) == MHD_YES;
        retry_given = retry_given || strcmp(h[0], MHD_HTTP_HEADER_RETRY_AFTER) == 0;
    }
    if (ok && !retry_given &&
        (status == MHD_HTTP_SERVICE_UNAVAILABLE || status == MHD_HTTP_TOO_MANY_REQUESTS)) {
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1") == MHD_YES;
    }
    if (ok && req->obs.id[0]) {
        ok = MHD_add_response_header(r, "X-Request-ID", req->obs.id) == MHD_YES;
    }
    if (ok && (draining || req->out.close)) {
        /* Clients should take their next request to another replica (or connection). */
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close") == MHD_YES;
    }
    enum MHD_Result ret = ok ? MHD_queue_response(req->conn, (unsigned)status, r) : MHD_NO;
    MHD_destroy_response(r);
    if (ret == MHD_YES) {
        note_answer(req, status, len, shutting_down);
    }
    return ret;
}

/* Queues a static application/json body. */
enum MHD_Result srv_reply_static(struct srv_req *req, int status, const char *json, size_t len)
{
    return srv_reply_hdrs(req, status, "application/json", (void *)json, len, false, NULL);
}

/* Queues r; its body moves to MHD. */
enum MHD_Result srv_reply_response(struct srv_req *req, struct slp_response *r,
                                   const char *const *hdrs)
{
    char *body = r->body;
    size_t len = r->len;
    r->body = NULL;
    r->len = 0;
    return srv_reply_hdrs(req, r->status, r->content_type, body, len, true, hdrs);
}

/* Queues a problem+json answer with an optional extra header. */
enum MHD_Result srv_reply_problem(struct srv_req *req, int status, const char *detail,
                                  const char *hname, const char *hval)
{
    struct slp_response r = {0};
    slp_problem(status, detail, &r);
    const char *const hdrs[] = {hname, hval, NULL};
    return srv_reply_response(req, &r, hname ? hdrs : NULL);
}

/* Queues the job's answer (taken out of req) with Vary and Content-Encoding. */
enum MHD_Result srv_reply_job(struct srv_req *req)
{
    struct slp_response r = req->job.resp;
    memset(&req->job.resp, 0, sizeof(req->job.resp));
    if (r.status != MHD_HTTP_OK) {
        const char *const extra[] = {req->job.hdr_name, req->job.hdr_val, NULL};
        return srv_reply_response(req, &r, req->job.hdr_name[0] ? extra : NULL);
    }
    const char *hdrs[5] = {NULL};
    int k = 0;
    if (req->route->vary) {
        hdrs[k++] = MHD_HTTP_HEADER_VARY;
        hdrs[k++] = req->route->vary;
    }
    if (req->job.resp_gzip || req->job.resp_zstd) {
        hdrs[k++] = MHD_HTTP_HEADER_CONTENT_ENCODING;
        hdrs[k++] = req->job.resp_zstd ? "zstd" : "gzip";
    }
    return srv_reply_response(req, &r, hdrs);
}

/* gzips in[0..len) (zlib deflate, windowBits 31) into a new buffer of fewer than len bytes.
 * Returns it (its size in *outlen, caller frees), or NULL when gzip would not be smaller or
 * memory or zlib failed. The buffer never grows: an answer that does not fit is sent plain. */
static char *gzip_smaller(const char *in, size_t len, size_t *outlen)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (len < 2 || deflateInit2(&z, GZIP_LEVEL, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        return NULL;
    }
    const size_t cap = len - 1;
    unsigned char *out = malloc(cap);
    size_t in_left = len, out_left = cap;
    int rc = Z_OK;
    z.next_in = (const Bytef *)in;
    z.next_out = out;
    while (out && rc == Z_OK) {
        if (z.avail_in == 0 && in_left > 0) {
            z.avail_in = (uInt)(in_left < ZLIB_CHUNK ? in_left : ZLIB_CHUNK);
            in_left -= z.avail_in;
        }
        if (z.avail_out == 0) {
            if (out_left == 0) {
                break; /* not smaller */
            }
            z.avail_out = (uInt)(out_left < ZLIB_CHUNK ? out_left : ZLIB_CHUNK);
            out_left -= z.avail_out;
        }
        rc = deflate(&z, in_left == 0 ? Z_FINISH : Z_NO_FLUSH);
    }
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    *outlen = (size_t)(cap - out_left - z.avail_out);
    return (char *)out;
}

/* zstd-compresses in[0..len) (one frame with its content size; RFC 9659's window limit holds at
 * this level) into a new buffer of fewer than len bytes. Returns it (its size in *outlen, caller
 * frees), or NULL when it would not be smaller or memory failed. */
static char *zstd_smaller(const char *in, size_t len, size_t *outlen)
{
    if (len < 2) {
        return NULL;
    }
    char *out = malloc(len - 1);
    size_t n = out ? ZSTD_compress(out, len - 1, in, len, ZSTD_ANSWER_LEVEL) : 0;
    if (!out || ZSTD_isError(n)) {
        free(out); /* dstSize_tooSmall: not smaller */
        return NULL;
    }
    *outlen = n;
    return out;
}

/* On a worker: compresses a large 200 answer with the coding the client prefers (zstd or gzip),
 * if it shrinks. */
void srv_maybe_gzip(struct srv_req *req, struct slp_response *resp)
{
    if (resp->status != MHD_HTTP_OK || req->hdr.answer_enc == SRV_ENC_IDENTITY ||
        resp->len < SRV_GZIP_MIN) {
        return;
    }
    bool zstd = req->hdr.answer_enc == SRV_ENC_ZSTD;
    size_t zlen = 0;
    char *z = zstd ? zstd_smaller(resp->body, resp->len, &zlen)
                   : gzip_smaller(resp->body, resp->len, &zlen);
    if (z) {
        free(resp->body);
        resp->body = z;
        resp->len = zlen;
        req->job.resp_gzip = !zstd;
        req->job.resp_zstd = zstd;
    }
}
