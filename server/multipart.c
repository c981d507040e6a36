/* multipart.c - multipart/form-data bodies split into named parts by MHD's post processor.
 *
 * With the identity coding the body is split as it arrives, on the I/O thread, and each part's
 * bytes go straight into that part's own buffer (the body itself is not kept). A body with a
 * Content-Encoding is kept whole instead, inflated on the worker and split there by the same
 * post processor. The post processor borrows the boundary from the connection's headers, so a
 * job splitting on the worker pins the request (see srv_parts_split).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "segloss.h"
#include "srv_internal.h"

/* Bytes the MHD post processor buffers: the boundary search and one part header line must fit;
 * libmicrohttpd's manual recommends 32 or 64 KiB for performance. */
#define PP_BUFFER (64 * 1024)
/* A part that grows past this many bytes takes room for the rest of an announced body at once. */
#define PART_SMALL (256 * 1024)

/* A transfer encoding of a part that leaves its bytes as they are (RFC 7578 section 4.7). */
static bool identity_transfer(const char *te)
{
    return !te || strncasecmp(te, "binary", 6) == 0 || strncasecmp(te, "8bit", 4) == 0 ||
           strncasecmp(te, "7bit", 4) == 0;
}

/* Starts the next part, called key. Returns it, or NULL with req failed. */
static struct srv_part *part_start(struct srv_req *req, const char *key,
                                   const char *transfer_encoding)
{
    if (!identity_transfer(transfer_encoding)) {
        srv_body_fail(req, SL_EUNSUPPORTED, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                      "multipart part '%.64s': Content-Transfer-Encoding '%.40s' is not "
                      "supported; send the bytes as they are",
                      key, transfer_encoding);
        return NULL;
    }
    if (strlen(key) > SRV_PART_NAME_MAX) {
        srv_body_fail(req, SL_EMALFORMED, MHD_HTTP_BAD_REQUEST,
                      "multipart part name '%.64s...' is longer than %d bytes", key,
                      SRV_PART_NAME_MAX);
        return NULL;
    }
    int max = srv_route_max_parts(req->srv, req->route);
    if (req->in.nparts == max) {
        srv_body_fail(req, SL_ETOOLARGE, MHD_HTTP_CONTENT_TOO_LARGE,
                      "multipart body has more than %d parts on %s (part '%.64s')", max,
                      req->route->path, key);
        return NULL;
    }
    if (req->in.nparts == req->in.cap) {
        int cap = req->in.cap ? req->in.cap * 2 : 4;
        struct srv_part *more = realloc(req->in.parts, (size_t)cap * sizeof *more);
        if (!more) {
            srv_body_fail(req, SL_ENOMEM, MHD_HTTP_SERVICE_UNAVAILABLE,
                          "out of memory receiving multipart part '%.64s'", key);
            return NULL;
        }
        req->in.parts = more;
        req->in.cap = cap;
    }
    struct srv_part *p = &req->in.parts[req->in.nparts++];
    memcpy(p->name, key, strlen(key) + 1);
    slp_dynbuf_init(&p->data, req->srv->max_body);
    p->data.pool = req->srv->bufs; /* a large part reuses a kept block */
    return p;
}

/* MHD's post processor iterator: bytes [off, off + size) of the part called key. A part's first
 * call has off 0 (and may have size 0); its later calls continue at off = its length so far. */
static enum MHD_Result on_part(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *filename, const char *content_type,
                               const char *transfer_encoding, const char *data, uint64_t off,
                               size_t size)
{
    struct srv_req *req = cls;
    size_t max = req->srv->max_body;
    (void)kind;
    (void)filename;
    (void)content_type;
    if (req->in.fail) {
        return MHD_NO;
    }
    if (!key || !key[0]) {
        srv_body_fail(req, SL_EMALFORMED, MHD_HTTP_BAD_REQUEST,
                      "a multipart part has no name (Content-Disposition: form-data; "
                      "name=\"...\")");
        return MHD_NO;
    }
    struct srv_part *p = req->in.nparts ? &req->in.parts[req->in.nparts - 1] : NULL;
    if (!p || strcmp(p->name, key) != 0 || (off == 0 && p->data.len > 0)) {
        p = part_start(req, key, transfer_encoding);
        if (!p) {
            return MHD_NO;
        }
    }
    if (size == 0) {
        return MHD_YES;
    }
    if (size > max - req->in.parts_len) {
        srv_body_fail(req, SL_ETOOLARGE, MHD_HTTP_CONTENT_TOO_LARGE,
                      "the parts of the multipart body are over the limit of %zu bytes "
                      "(--max-body-mb %llu), at part '%.64s'",
                      max, (unsigned long long)req->srv->cfg.max_body_mb, key);
        return MHD_NO;
    }
    if (p->data.len + size >= PART_SMALL && p->data.len < PART_SMALL && req->hdr.declared > 0 &&
        (uint64_t)req->in.parts_len < req->hdr.declared) {
        /* a large part of an announced body: room at once for the rest of the body (which
         * holds the rest of the part), one block rather than a doubling series of copies; a
         * hint only: when it cannot be had, the part grows as it arrives */
        size_t want = (size_t)(req->hdr.declared - req->in.parts_len);
        if (want > p->data.max - p->data.len) {
            want = p->data.max - p->data.len;
        }
        if (!slp_dynbuf_room(&p->data, want)) {
            p->data.err = 0;
        }
    }
    if (slp_dynbuf_add(&p->data, data, size) != 0) {
        srv_body_fail(req, SL_ENOMEM, MHD_HTTP_SERVICE_UNAVAILABLE,
                      "out of memory receiving multipart part '%.64s'", key);
        return MHD_NO;
    }
    req->in.parts_len += size;
    return MHD_YES;
}

/* Creates the post processor for a multipart body; 0 or SL_EMALFORMED with msg. */
int srv_parts_begin(struct srv_req *req, const char *ct, char *msg, size_t msglen)
{
    /* MHD finds the boundary with a case-sensitive "boundary=" too */
    if (!strstr(ct, "boundary=")) {
        snprintf(msg, msglen,
                 "multipart/form-data needs a boundary parameter (Content-Type: "
                 "multipart/form-data; boundary=...)");
        return SL_EMALFORMED;
    }
    req->in.pp = MHD_create_post_processor(req->conn, PP_BUFFER, on_part, req);
    if (!req->in.pp) {
        snprintf(msg, msglen,
                 "cannot split multipart/form-data with the Content-Type '%.100s' (bad "
                 "boundary)",
                 ct);
        return SL_EMALFORMED;
    }
    return 0;
}

/* On the I/O thread: splits more bytes of a multipart body (identity coding). */
void srv_parts_feed(struct srv_req *req, const char *data, size_t n)
{
    if (req->in.fail) {
        return;
    }
    if (n > req->srv->max_body - req->in.raw) {
        srv_body_fail_limit(req);
        return;
    }
    req->in.raw += n;
    if (MHD_post_process(req->in.pp, data, n) != MHD_YES && !req->in.fail) {
        srv_body_fail(req, SL_EMALFORMED, MHD_HTTP_BAD_REQUEST,
                      "malformed multipart/form-data body (expected '--' boundary lines, each "
                      "followed by part headers and an empty line)");
    }
}

/* Frees the post processor; on failure fails req. */
void srv_parts_end(struct srv_req *req)
{
    enum MHD_Result complete = MHD_destroy_post_processor(req->in.pp);
    req->in.pp = NULL;
    if (req->in.fail) {
        return;
    }
    if (complete != MHD_YES) {
        srv_body_fail(req, SL_EMALFORMED, MHD_HTTP_BAD_REQUEST,
                      "multipart/form-data body ends before its closing line '--BOUNDARY--'");
    } else if (req->in.nparts == 0) {
        srv_body_fail(req, SL_EMALFORMED, MHD_HTTP_BAD_REQUEST,
                      "multipart/form-data body has no parts: no line '--BOUNDARY' with the "
                      "boundary of its Content-Type");
    }
}

/* The boundary MHD borrows from the connection's headers is freed or reused once the request
 * is answered; so the request is pinned meanwhile and nobody else answers it (see
 * srv_server_abandon and intake.c's submit). */
int srv_parts_split(struct srv_req *req, const char *body, size_t len, struct slp_response *resp)
{
    struct srv_server *srv = req->srv;
    pthread_mutex_lock(&srv->mu);
    bool ok = !req->job.abandoned && !srv->stopping && req->conn;
    if (ok) {
        req->job.pinned = true;
        srv->pinned++;
    }
    pthread_mutex_unlock(&srv->mu);
    if (!ok) {
        slp_problem(MHD_HTTP_SERVICE_UNAVAILABLE, "the server is shutting down", resp);
        return SL_EBUSY;
    }
    if (len > srv->max_body) {
        srv_body_fail_limit(req);
    } else if (MHD_post_process(req->in.pp, body, len) != MHD_YES && !req->in.fail) {
        srv_body_fail(req, SL_EMALFORMED, MHD_HTTP_BAD_REQUEST,
                      "malformed multipart/form-data body after decompression (expected '--' "
                      "boundary lines, each followed by part headers and an empty line)");
    }
    srv_parts_end(req);
    pthread_mutex_lock(&srv->mu);
    req->job.pinned = false;
    srv->pinned--;
    pthread_cond_broadcast(&srv->unpinned);
    pthread_mutex_unlock(&srv->mu);
    if (req->in.fail) {
        slp_problem(req->in.fail_status, req->in.fail_msg, resp);
        return req->in.fail;
    }
    return 0;
}

/* On a worker: hands req's parts (borrowed) to the route's multipart step. */
void srv_parts_compute(struct srv_req *req, struct slp_response *resp)
{
    struct slp_part *items = calloc((size_t)req->in.nparts + 1, sizeof *items);
    if (!items) {
        slp_problem(MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory", resp);
        return;
    }
    for (int i = 0; i < req->in.nparts; i++) {
        items[i].name = req->in.parts[i].name;
        items[i].data = (const unsigned char *)req->in.parts[i].data.data;
        items[i].len = req->in.parts[i].data.len;
    }
    const struct slp_parts parts = {items, req->in.nparts};
    req->route->compute_parts(req, &parts, resp);
    free(items);
}

/* The most parts a multipart body of route may have. */
int srv_route_max_parts(const struct srv_server *srv, const struct srv_route *route)
{
    if (route->max_parts > 0) {
        return route->max_parts;
    }
    if (route->max_parts < 0) {
        /* one per image, and a few named parts (note, spec, csv) */
        int64_t n = srv->limits.max_images > 0 ? srv->limits.max_images : 4096;
        return (int)(n < 1 << 20 ? n : 1 << 20) + 3;
    }
    return SRV_MAX_PARTS;
}

/* Frees the parts' bytes; req may be NULL. */
void srv_parts_free(struct srv_req *req)
{
    if (!req) {
        return;
    }
    for (int i = 0; i < req->in.nparts; i++) {
        slp_dynbuf_free(&req->in.parts[i].data);
    }
    free(req->in.parts);
    req->in.parts = NULL;
    req->in.nparts = req->in.cap = 0;
    req->in.parts_len = 0;
}
