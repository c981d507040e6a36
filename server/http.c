/* http.c - the HTTP front end of seglossd: libmicrohttpd daemon, route table, request bodies,
 * and the hand-off of /v1/score and /v1/weight-map to the worker pool.
 *
 * Threads: MHD's I/O threads (SRV_IO_THREADS, epoll) only route, check headers and copy body
 * bytes; a compute worker inflates, parses, computes and serializes (and gzips a weight map
 * the client accepts gzipped). The connection is suspended while its job is queued or running
 * and the job resumes it. Both POST routes share that path; each names its worker step in the
 * route table (and /v1/score a second one for multipart/form-data bodies).
 *
 * multipart/form-data: MHD's post processor splits the body as it arrives, on the I/O thread,
 * and each part's bytes go straight into that part's own growable buffer (the body itself is
 * not kept). A body with a Content-Encoding is kept whole instead, inflated on the worker and
 * split there by the same post processor. The post processor borrows the boundary from the
 * connection's headers, so a job splitting on the worker `pins` the request (see parts_split).
 *
 * Sharing between an I/O thread and a job: one server mutex (srv->mu) guards each request's
 * refs / suspended / done / abandoned / resp, the list of suspended requests and the server
 * counters. A request has two references: MHD's (dropped by the completed callback) and the
 * job's (dropped when the job ends); whoever drops the last one frees it, so a client that
 * disconnects, or a drain that gives up, never frees memory a running job still uses. The job
 * calls MHD_resume_connection only under srv->mu and only while `suspended` is set; the I/O
 * thread sets `suspended` under the same lock only if the job is not already done, so a fast
 * job and the suspension cannot cross. Lock order: srv->mu, then MHD's own mutexes (MHD never
 * calls back into us while holding one in this configuration). A pinned request (srv->mu) is
 * not answered by anyone but its job until the job unpins it: srv_server_abandon and a
 * stopping body_submit wait on srv->unpinned, which takes at most one split of one body.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* const next_in: deflate reads the borrowed answer */
#define ZLIB_CONST
#include <zlib.h>

#include "proto.h"
#include "segloss.h"
#include "server.h"

#define MIB ((size_t)1024 * 1024)

/* First body allocation when the length is not announced; doubled up to the cap. */
#define BODY_FIRST_CHUNK (64 * 1024)

/* multipart/form-data: at most this many parts, each named by at most SRV_PART_NAME_MAX bytes. */
#define SRV_MAX_PARTS 16
#define SRV_PART_NAME_MAX 64
/* Bytes the MHD post processor buffers: the boundary search and one part header line must fit;
 * libmicrohttpd's manual recommends 32 or 64 KiB for performance. */
#define PP_BUFFER (64 * 1024)
/* First allocation of a part's buffer; doubled as it grows, up to the body cap. */
#define PART_FIRST_CHUNK (16 * 1024)

#if defined(__GNUC__) || defined(__clang__)
#define SRV_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define SRV_PRINTF(fmt, args)
#endif

/* Answers shorter than this are sent as they are: gzip would gain too little. */
#define SRV_GZIP_MIN 1024

/* zlib level of gzipped answers. Measured on the .npy of an 8x512x512 map with 200 cells per
 * image: level 1 shrinks it 4.6x at 170 MB/s, level 6 5.1x at 64 MB/s, level 9 5.2x at 9 MB/s. */
#define GZIP_LEVEL 1
/* Bytes handed to zlib per call (its counters are 32-bit). */
#define ZLIB_CHUNK ((size_t)1 << 30)

struct srv_req;
typedef enum MHD_Result (*srv_handler)(struct srv_req *req, const char *data, size_t *size);
/* The worker step of a POST route: the (inflated) body in, the answer out. */
typedef void (*srv_compute)(struct srv_req *req, const char *body, size_t len,
                            struct slp_response *resp);
/* The worker step of a POST route for a multipart/form-data body, split into parts. */
typedef void (*srv_compute_parts)(struct srv_req *req, const struct slp_parts *parts,
                                  struct slp_response *resp);

enum srv_method { M_GET = 1, M_HEAD = 2, M_POST = 4 };

/* One row per path of openapi.json. handle NULL: in the API, not in this version (404 saying so).
 * reads_body: the handler runs from the first (headers) call and takes the body itself;
 * otherwise it runs once the request is complete. compute: what a worker does with the body
 * (routes handled by handle_body); compute_parts: with a multipart/form-data body (NULL: such
 * a body is refused with 415). */
struct srv_route {
    const char *path;
    unsigned methods;
    const char *allow; /* the Allow header for a 405 */
    bool reads_body;
    srv_handler handle;
    srv_compute compute;
    srv_compute_parts compute_parts;
};

/* Rows of the route table below (checked there). */
#define NROUTES 7
/* Metrics label of requests to no route of the table (the path itself would be unbounded). */
#define ROUTE_OTHER "other"

/* Upper bounds (seconds) of the latency histogram buckets; +Inf is the count. */
static const double lat_bounds[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10};
#define NBUCKETS (sizeof(lat_bounds) / sizeof(lat_bounds[0]))

/* Why a request was refused or cut short: segloss_rejections_total{reason}. */
enum srv_reject {
    REJ_NONE,
    REJ_QUEUE_FULL,
    REJ_BODY_TOO_LARGE,
    REJ_SHUTTING_DOWN,
    REJ_OUT_OF_MEMORY,
    REJ_UNAVAILABLE,
    REJ_IDLE_TIMEOUT,
    REJ_BODY_MEMORY,
    REJ_CONNECTIONS,
    REJ_PER_IP,
    REJ_HEADERS,
    REJ_COUNT
};
static const char *const reject_names[REJ_COUNT] = {"",
                                                    "queue_full",
                                                    "body_too_large",
                                                    "shutting_down",
                                                    "out_of_memory",
                                                    "unavailable",
                                                    "idle_timeout",
                                                    "body_memory",
                                                    "connection_limit",
                                                    "per_ip_limit",
                                                    "header_too_large"};

/* Distinct (route, status) pairs counted; statuses come from a short fixed list in practice. */
#define MAX_STATUS_SERIES 64

/* The counters of /metrics, all guarded by srv->mu. Route index NROUTES is ROUTE_OTHER. */
struct srv_metrics {
    struct {
        unsigned route;
        int status;
        uint64_t n;
    } requests[MAX_STATUS_SERIES];
    int nrequests;
    uint64_t lat_bucket[NROUTES + 1][NBUCKETS]; /* non-cumulative; cumulated when printed */
    uint64_t lat_count[NROUTES + 1];
    double lat_sum[NROUTES + 1];
    uint64_t bytes_in, bytes_out;
    uint64_t rejections[REJ_COUNT];
    uint64_t next_id; /* request ids generated so far */
};

/* Client addresses with open connections, for --max-per-ip: a chained hash table (srv->mu). */
#define IP_BUCKETS 256
struct srv_ip {
    unsigned char addr[16]; /* IPv4 (4 bytes) or IPv6 (16 bytes) */
    size_t len;
    unsigned n; /* its open connections */
    struct srv_ip *next;
};

/* One accepted connection (MHD's socket context): its address entry, and the limit it passed
 * when it was accepted (REJ_NONE: none). Such a connection gets a problem+json answer to its
 * first request and is closed. */
struct srv_conn {
    struct srv_ip *ip; /* NULL when the address is unknown or could not be counted */
    enum srv_reject over;
};

struct srv_server {
    struct srv_config cfg;
    struct slp_limits limits;
    size_t max_body;
    size_t max_inflight; /* --max-inflight-mb in bytes */
    struct sl_pool *pool;
    struct MHD_Daemon *daemon;
    unsigned port;

    pthread_mutex_t mu;
    pthread_cond_t unpinned;   /* signalled (under mu) when a request is unpinned */
    int pinned;                /* mu: requests whose job splits a body with MHD's post processor */
    int inflight;              /* mu */
    bool draining;             /* mu: /readyz 503, responses close their connection */
    bool stopping;             /* mu: drain gave up; nothing may be suspended any more */
    struct srv_req *suspended; /* mu: requests whose connection is suspended */
    struct srv_metrics m;      /* mu */
    size_t body_bytes;         /* mu: body memory reserved by requests (<= max_inflight) */
    unsigned nconns;           /* mu: open connections */
    struct srv_ip *ips[IP_BUCKETS]; /* mu */
};

enum srv_phase {
    PH_NEW,    /* first call: headers only */
    PH_BODY,   /* receiving the body */
    PH_QUEUED, /* handed to the pool; the next call queues the answer */
};

/* One part of a multipart/form-data body. */
struct srv_part {
    char name[SRV_PART_NAME_MAX + 1];
    unsigned char *data; /* malloc'd, NULL while empty */
    size_t len, cap;
};

struct srv_req {
    struct srv_server *srv;
    struct MHD_Connection *conn;
    const struct srv_route *route;

    /* The I/O thread's until the job is submitted, then the job's. */
    enum srv_phase phase;
    enum srv_encoding enc;
    bool want_json;   /* Accept prefers application/json (weight map) */
    bool accept_gzip; /* Accept-Encoding allows gzip */
    bool resp_gzip;   /* the job gzipped resp's body (written before `done`) */
    int fail;         /* 0, or the SL_E* code of a body that could not be kept (413, 503) */
    int fail_status;  /* with fail: the HTTP status of the answer, detail fail_msg (0: by fail) */
    char fail_msg[224];
    char *body; /* NUL-terminated */
    size_t len;
    size_t cap;
    uint64_t declared; /* Content-Length, 0 when absent */
    size_t reserved;   /* srv->mu: this request's share of srv->body_bytes */
    bool close;        /* answer with Connection: close (a connection over a limit) */

    /* multipart/form-data: with the identity coding split as it arrives (body stays NULL),
     * otherwise kept in body and split on the worker after inflating */
    bool multipart;
    struct MHD_PostProcessor *pp; /* borrows the connection's Content-Type header */
    size_t raw;                   /* body bytes received and split on the I/O thread */
    struct srv_part parts[SRV_MAX_PARTS];
    int nparts;
    size_t parts_len; /* bytes of all parts */

    /* access log and metrics: set on the I/O thread, read at completion */
    char id[129]; /* X-Request-ID, sanitized, or generated */
    char method[16];
    char path[201];
    char remote[INET6_ADDRSTRLEN];
    double t0; /* monotonic seconds at the first callback */
    uint64_t bytes_in, bytes_out;
    int status; /* of the queued answer, 0 before one */
    enum srv_reject reject;

    /* srv->mu */
    int refs;
    bool pinned; /* its job is splitting the body: see parts_split */
    bool suspended;
    bool done;      /* the job has filled resp */
    bool abandoned; /* answered without the job's result; the job need not compute */
    struct slp_response resp;
    struct srv_req *prev;
    struct srv_req *next;
};

static enum MHD_Result handle_body(struct srv_req *req, const char *data, size_t *size);
static void compute_score(struct srv_req *req, const char *body, size_t len,
                          struct slp_response *resp);
static void compute_weight_map(struct srv_req *req, const char *body, size_t len,
                               struct slp_response *resp);
static void compute_score_parts(struct srv_req *req, const struct slp_parts *parts,
                                struct slp_response *resp);
static enum MHD_Result handle_healthz(struct srv_req *req, const char *data, size_t *size);
static enum MHD_Result handle_readyz(struct srv_req *req, const char *data, size_t *size);
static enum MHD_Result handle_openapi(struct srv_req *req, const char *data, size_t *size);
static enum MHD_Result handle_catalog(struct srv_req *req, const char *data, size_t *size);
static enum MHD_Result handle_metrics(struct srv_req *req, const char *data, size_t *size);

/* Every path the API names, implemented or not: later work adds handlers here. */
static const struct srv_route routes[] = {
    {"/v1/score", M_POST, "POST", true, handle_body, compute_score, compute_score_parts},
    {"/v1/weight-map", M_POST, "POST", true, handle_body, compute_weight_map, NULL},
    {"/v1/catalog", M_GET | M_HEAD, "GET, HEAD", false, handle_catalog, NULL, NULL},
    {"/healthz", M_GET | M_HEAD, "GET, HEAD", false, handle_healthz, NULL, NULL},
    {"/readyz", M_GET | M_HEAD, "GET, HEAD", false, handle_readyz, NULL, NULL},
    {"/metrics", M_GET | M_HEAD, "GET, HEAD", false, handle_metrics, NULL, NULL},
    {"/openapi.json", M_GET | M_HEAD, "GET, HEAD", false, handle_openapi, NULL, NULL},
};
_Static_assert(sizeof(routes) / sizeof(routes[0]) == NROUTES, "NROUTES is the route count");

static const struct srv_route *route_find(const char *url)
{
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (strcmp(routes[i].path, url) == 0) {
            return &routes[i];
        }
    }
    return NULL;
}

static unsigned method_bit(const char *method)
{
    if (strcmp(method, MHD_HTTP_METHOD_GET) == 0) {
        return M_GET;
    }
    if (strcmp(method, MHD_HTTP_METHOD_HEAD) == 0) {
        return M_HEAD;
    }
    if (strcmp(method, MHD_HTTP_METHOD_POST) == 0) {
        return M_POST;
    }
    return 0;
}

/* ---- requests ------------------------------------------------------------------------------ */

static void parts_free(struct srv_req *req)
{
    for (int i = 0; i < req->nparts; i++) {
        free(req->parts[i].data);
    }
    req->nparts = 0;
    req->parts_len = 0;
}

/* Gives back req's reservation of body memory. Call with srv->mu held. */
static void body_release_locked(struct srv_req *req)
{
    req->srv->body_bytes -= req->reserved;
    req->reserved = 0;
}

/* Grows req's reservation of body memory to `bytes`. Returns false, changing nothing, when the
 * bodies the server holds would then pass --max-inflight-mb: the request gets a 503 rather
 * than the process an unbounded amount of memory (connections x --max-body-mb). */
static bool body_reserve(struct srv_req *req, size_t bytes)
{
    struct srv_server *srv = req->srv;
    bool ok = true;
    pthread_mutex_lock(&srv->mu);
    if (bytes > req->reserved) {
        if (bytes - req->reserved > srv->max_inflight - srv->body_bytes) {
            ok = false;
        } else {
            srv->body_bytes += bytes - req->reserved;
            req->reserved = bytes;
        }
    }
    pthread_mutex_unlock(&srv->mu);
    return ok;
}

/* Called with srv->mu held (req_unref_locked). */
static void req_free(struct srv_req *req)
{
    body_release_locked(req);
    /* the post processor frees only what it owns: safe after the connection is gone */
    MHD_destroy_post_processor(req->pp);
    parts_free(req);
    free(req->body);
    slp_response_free(&req->resp);
    free(req);
}

/* Drops one reference; frees req when it was the last. Call with srv->mu held. */
static void req_unref_locked(struct srv_req *req)
{
    if (--req->refs == 0) {
        req_free(req);
    }
}

static void suspended_link(struct srv_server *srv, struct srv_req *req)
{
    req->prev = NULL;
    req->next = srv->suspended;
    if (srv->suspended) {
        srv->suspended->prev = req;
    }
    srv->suspended = req;
    req->suspended = true;
}

static void suspended_unlink(struct srv_server *srv, struct srv_req *req)
{
    if (req->prev) {
        req->prev->next = req->next;
    } else {
        srv->suspended = req->next;
    }
    if (req->next) {
        req->next->prev = req->prev;
    }
    req->prev = req->next = NULL;
    req->suspended = false;
}

/* ---- answers -------------------------------------------------------------------------------- */

/* Queues an answer. owned: body is malloc'd and MHD frees it (also on failure); otherwise it
 * is static. hdrs: extra headers as name, value, ..., NULL (or NULL). Every 503 carries
 * Retry-After, and so does every 429. */
static enum MHD_Result send_reply_hdrs(struct srv_req *req, int status, const char *ctype,
                                       void *body, size_t len, bool owned, const char *const *hdrs)
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
    for (const char *const *h = hdrs; ok && h && h[0]; h += 2) {
        ok = MHD_add_response_header(r, h[0], h[1]) == MHD_YES;
    }
    if (ok && (status == MHD_HTTP_SERVICE_UNAVAILABLE || status == MHD_HTTP_TOO_MANY_REQUESTS)) {
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1") == MHD_YES;
    }
    if (ok && req->id[0]) {
        ok = MHD_add_response_header(r, "X-Request-ID", req->id) == MHD_YES;
    }
    if (ok && (draining || req->close)) {
        /* Clients should take their next request to another replica (or connection). */
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close") == MHD_YES;
    }
    enum MHD_Result ret = ok ? MHD_queue_response(req->conn, (unsigned)status, r) : MHD_NO;
    MHD_destroy_response(r);
    if (ret == MHD_YES) {
        req->status = status;
        req->bytes_out = len;
        if (status == MHD_HTTP_CONTENT_TOO_LARGE) {
            req->reject = REJ_BODY_TOO_LARGE;
        } else if (status == MHD_HTTP_SERVICE_UNAVAILABLE && req->reject == REJ_NONE &&
                   req->route && req->route->handle != handle_readyz) {
            /* the callers that know better (queue full, out of memory) say so first */
            req->reject = shutting_down ? REJ_SHUTTING_DOWN : REJ_UNAVAILABLE;
        }
    }
    return ret;
}

/* send_reply_hdrs with one extra header hname: hval (hname NULL: none). */
static enum MHD_Result send_reply(struct srv_req *req, int status, const char *ctype, void *body,
                                  size_t len, bool owned, const char *hname, const char *hval)
{
    const char *const hdrs[] = {hname, hval, NULL};
    return send_reply_hdrs(req, status, ctype, body, len, owned, hname ? hdrs : NULL);
}

/* Queues r (its body moves to MHD) with the extra headers hdrs (as send_reply_hdrs). */
static enum MHD_Result send_response_hdrs(struct srv_req *req, struct slp_response *r,
                                          const char *const *hdrs)
{
    char *body = r->body;
    size_t len = r->len;
    r->body = NULL;
    r->len = 0;
    return send_reply_hdrs(req, r->status, r->content_type, body, len, true, hdrs);
}

/* Queues r (its body moves to MHD) with one extra header hname: hval (hname NULL: none). */
static enum MHD_Result send_response(struct srv_req *req, struct slp_response *r, const char *hname,
                                     const char *hval)
{
    const char *const hdrs[] = {hname, hval, NULL};
    return send_response_hdrs(req, r, hname ? hdrs : NULL);
}

/* Queues an application/problem+json answer. */
static enum MHD_Result send_problem(struct srv_req *req, int status, const char *detail,
                                    const char *hname, const char *hval)
{
    struct slp_response r = {0};
    slp_problem(status, detail, &r);
    return send_response(req, &r, hname, hval);
}

static const char json_ok[] = "{\"status\":\"ok\"}";
static const char json_ready[] = "{\"status\":\"ready\"}";

/* ---- simple routes -------------------------------------------------------------------------- */

static enum MHD_Result handle_healthz(struct srv_req *req, const char *data, size_t *size)
{
    (void)data;
    (void)size;
    return send_reply(req, MHD_HTTP_OK, "application/json", (void *)json_ok, sizeof(json_ok) - 1,
                      false, NULL, NULL);
}

static enum MHD_Result handle_readyz(struct srv_req *req, const char *data, size_t *size)
{
    struct srv_server *srv = req->srv;
    (void)data;
    (void)size;
    pthread_mutex_lock(&srv->mu);
    bool draining = srv->draining;
    pthread_mutex_unlock(&srv->mu);
    if (draining) {
        return send_problem(req, MHD_HTTP_SERVICE_UNAVAILABLE, "the server is shutting down", NULL,
                            NULL);
    }
    int queued;
    sl_pool_load(srv->pool, &queued, NULL);
    if (queued >= srv->cfg.queue) {
        return send_problem(req, MHD_HTTP_SERVICE_UNAVAILABLE, "the compute queue is full", NULL,
                            NULL);
    }
    pthread_mutex_lock(&srv->mu);
    /* a body of BODY_FIRST_CHUNK bytes would not fit */
    bool full = srv->max_inflight - srv->body_bytes < BODY_FIRST_CHUNK;
    pthread_mutex_unlock(&srv->mu);
    if (full) {
        return send_problem(req, MHD_HTTP_SERVICE_UNAVAILABLE,
                            "the server holds as many request bodies as it may", NULL, NULL);
    }
    return send_reply(req, MHD_HTTP_OK, "application/json", (void *)json_ready,
                      sizeof(json_ready) - 1, false, NULL, NULL);
}

static enum MHD_Result handle_catalog(struct srv_req *req, const char *data, size_t *size)
{
    (void)data;
    (void)size;
    size_t len = 0;
    char *doc = slp_catalog_json(&len);
    if (!doc) {
        return send_problem(req, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory", NULL, NULL);
    }
    return send_reply(req, MHD_HTTP_OK, "application/json", doc, len, true, NULL, NULL);
}

static enum MHD_Result handle_openapi(struct srv_req *req, const char *data, size_t *size)
{
    (void)data;
    (void)size;
    size_t len;
    const char *doc = slp_openapi_json(&len);
    return send_reply(req, MHD_HTTP_OK, "application/json", (void *)doc, len, false, NULL, NULL);
}

/* ---- metrics --------------------------------------------------------------------------------- */

/* A bounded text buffer: appends that do not fit set `full` and are dropped. */
struct textbuf {
    char *p;
    size_t len, cap;
    bool full;
};

static void tb_printf(struct textbuf *tb, const char *fmt, ...) SRV_PRINTF(2, 3);
static void tb_printf(struct textbuf *tb, const char *fmt, ...)
{
    if (tb->full) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tb->p + tb->len, tb->cap - tb->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= tb->cap - tb->len) {
        tb->full = true;
        tb->p[tb->len] = '\0';
        return;
    }
    tb->len += (size_t)n;
}

static const char *route_label(unsigned r)
{
    return r < NROUTES ? routes[r].path : ROUTE_OTHER;
}

/* Room for every series: MAX_STATUS_SERIES request counters, (NROUTES + 1) histograms of
 * NBUCKETS + 3 lines, REJ_COUNT rejection counters and the gauges, each well under 160 bytes. */
#define METRICS_CAP (4096 + 160 * (MAX_STATUS_SERIES + (NROUTES + 1) * (NBUCKETS + 3) + REJ_COUNT))

/* Writes every series of /metrics into tb (Prometheus text exposition format 0.0.4). */
static void metrics_render(struct srv_server *srv, struct textbuf *tb)
{
    int queued = 0, running = 0;
    sl_pool_load(srv->pool, &queued, &running);

    pthread_mutex_lock(&srv->mu);
    const struct srv_metrics *m = &srv->m;
    tb_printf(tb, "# HELP segloss_requests_total Completed HTTP requests by route and status.\n"
                  "# TYPE segloss_requests_total counter\n");
    for (int i = 0; i < m->nrequests; i++) {
        tb_printf(tb, "segloss_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                  route_label(m->requests[i].route), m->requests[i].status,
                  (unsigned long long)m->requests[i].n);
    }
    tb_printf(tb, "# HELP segloss_request_duration_seconds Time from the first header callback "
                  "to completion.\n"
                  "# TYPE segloss_request_duration_seconds histogram\n");
    for (unsigned r = 0; r <= NROUTES; r++) {
        if (m->lat_count[r] == 0) {
            continue;
        }
        uint64_t cum = 0;
        for (size_t b = 0; b < NBUCKETS; b++) {
            cum += m->lat_bucket[r][b];
            tb_printf(tb, "segloss_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                      route_label(r), lat_bounds[b], (unsigned long long)cum);
        }
        tb_printf(tb,
                  "segloss_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n"
                  "segloss_request_duration_seconds_sum{route=\"%s\"} %.9g\n"
                  "segloss_request_duration_seconds_count{route=\"%s\"} %llu\n",
                  route_label(r), (unsigned long long)m->lat_count[r], route_label(r),
                  m->lat_sum[r], route_label(r), (unsigned long long)m->lat_count[r]);
    }
    tb_printf(tb, "# HELP segloss_rejections_total Requests refused or cut short, by reason.\n"
                  "# TYPE segloss_rejections_total counter\n");
    for (int k = 1; k < REJ_COUNT; k++) {
        tb_printf(tb, "segloss_rejections_total{reason=\"%s\"} %llu\n", reject_names[k],
                  (unsigned long long)m->rejections[k]);
    }
    tb_printf(tb,
              "# HELP segloss_bytes_received_total Request body bytes received.\n"
              "# TYPE segloss_bytes_received_total counter\n"
              "segloss_bytes_received_total %llu\n"
              "# HELP segloss_bytes_sent_total Response body bytes queued.\n"
              "# TYPE segloss_bytes_sent_total counter\n"
              "segloss_bytes_sent_total %llu\n"
              "# HELP segloss_inflight_requests Requests between their first callback and "
              "completion.\n"
              "# TYPE segloss_inflight_requests gauge\n"
              "segloss_inflight_requests %d\n"
              "# HELP segloss_open_connections Open client connections.\n"
              "# TYPE segloss_open_connections gauge\n"
              "segloss_open_connections %u\n"
              "# HELP segloss_body_bytes Request body memory reserved (at most "
              "--max-inflight-mb).\n"
              "# TYPE segloss_body_bytes gauge\n"
              "segloss_body_bytes %zu\n",
              (unsigned long long)m->bytes_in, (unsigned long long)m->bytes_out, srv->inflight,
              srv->nconns, srv->body_bytes);
    pthread_mutex_unlock(&srv->mu);
    tb_printf(tb,
              "# HELP segloss_queue_depth Compute jobs waiting for a worker.\n"
              "# TYPE segloss_queue_depth gauge\n"
              "segloss_queue_depth %d\n"
              "# HELP segloss_queue_capacity Compute queue capacity (--queue).\n"
              "# TYPE segloss_queue_capacity gauge\n"
              "segloss_queue_capacity %d\n"
              "# HELP segloss_workers_busy Compute workers running a job.\n"
              "# TYPE segloss_workers_busy gauge\n"
              "segloss_workers_busy %d\n",
              queued, srv->cfg.queue, running);
}

static enum MHD_Result handle_metrics(struct srv_req *req, const char *data, size_t *size)
{
    (void)data;
    (void)size;
    struct textbuf tb = {malloc(METRICS_CAP), 0, METRICS_CAP, false};
    if (!tb.p) {
        req->reject = REJ_OUT_OF_MEMORY;
        return send_problem(req, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory", NULL, NULL);
    }
    tb.p[0] = '\0';
    metrics_render(req->srv, &tb);
    if (tb.full) {
        /* METRICS_CAP bounds every series; reaching it is a bug, not bad input */
        fprintf(stderr, "seglossd: internal: /metrics output over %zu bytes\n", tb.cap);
    }
    return send_reply(req, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", tb.p, tb.len,
                      true, NULL, NULL);
}

/* Adds a completed request to the counters. Call with srv->mu held. */
static void metrics_record_locked(struct srv_server *srv, const struct srv_req *req, double secs)
{
    struct srv_metrics *m = &srv->m;
    unsigned r = req->route ? (unsigned)(req->route - routes) : NROUTES;
    if (req->status > 0) {
        int i = 0;
        while (i < m->nrequests &&
               !(m->requests[i].route == r && m->requests[i].status == req->status)) {
            i++;
        }
        if (i == m->nrequests && i < MAX_STATUS_SERIES) {
            m->requests[i].route = r;
            m->requests[i].status = req->status;
            m->requests[i].n = 0;
            m->nrequests++;
        }
        if (i < m->nrequests) {
            m->requests[i].n++;
        }
    }
    size_t b = 0;
    while (b < NBUCKETS && secs > lat_bounds[b]) {
        b++;
    }
    if (b < NBUCKETS) {
        m->lat_bucket[r][b]++;
    }
    m->lat_count[r]++;
    m->lat_sum[r] += secs;
    m->bytes_in += req->bytes_in;
    m->bytes_out += req->bytes_out;
    if (req->reject != REJ_NONE) {
        m->rejections[req->reject]++;
    }
}

/* ---- access log ------------------------------------------------------------------------------ */

/* Seconds on the monotonic clock. */
static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* splitmix64's finalizer (Steele, Lea and Flood 2014): spreads a counter over 64 bits. */
static uint64_t mix64(uint64_t x)
{
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Sets req->id from the X-Request-ID header: its visible ASCII characters (0x21-0x7e), at most
 * 128 of them; when none is given (or nothing is left), 16 hex digits from the server's
 * request counter mixed with the wall-clock time. */
static void request_id_init(struct srv_req *req, const char *given)
{
    size_t n = 0;
    for (const char *p = given; p && *p && n < sizeof(req->id) - 1; p++) {
        if (*p >= 0x21 && *p <= 0x7e) {
            req->id[n++] = *p;
        }
    }
    req->id[n] = '\0';
    if (n > 0) {
        return;
    }
    struct srv_server *srv = req->srv;
    pthread_mutex_lock(&srv->mu);
    uint64_t seq = ++srv->m.next_id;
    pthread_mutex_unlock(&srv->mu);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t t = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
    snprintf(req->id, sizeof(req->id), "%016llx", (unsigned long long)mix64(seq ^ mix64(t)));
}

/* Copies src into dst (dst_len bytes, NUL-terminated, truncated) as the inside of a JSON
 * string: quote, backslash and control bytes escaped, bytes >= 0x80 as \u00XX. */
static void json_escape(char *dst, size_t dst_len, const char *src)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)src; p && *p; p++) {
        char tmp[8];
        size_t k;
        if (*p == '"' || *p == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)*p;
            k = 2;
        } else if (*p < 0x20 || *p >= 0x7f) {
            snprintf(tmp, sizeof(tmp), "\\u%04x", *p);
            k = 6;
        } else {
            tmp[0] = (char)*p;
            k = 1;
        }
        if (o + k >= dst_len) {
            break;
        }
        memcpy(dst + o, tmp, k);
        o += k;
    }
    dst[o] = '\0';
}

/* Writes the access-log line of a completed request to stderr in one write(2), so lines from
 * different I/O threads never interleave. */
static void access_log_write(const struct srv_req *req, double secs)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40], id[sizeof(req->id) * 2], path[sizeof(req->path) * 6], method[64];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    json_escape(id, sizeof(id), req->id);
    json_escape(path, sizeof(path), req->path);
    json_escape(method, sizeof(method), req->method);
    char line[2048];
    int n = snprintf(line, sizeof(line),
                     "{\"ts\":\"%s.%03ldZ\",\"id\":\"%s\",\"method\":\"%s\",\"path\":\"%s\","
                     "\"status\":%d,\"ms\":%.3f,\"bytes_in\":%llu,\"bytes_out\":%llu,"
                     "\"remote\":\"%s\"}\n",
                     when, ts.tv_nsec / 1000000, id, method, path, req->status, secs * 1000.0,
                     (unsigned long long)req->bytes_in, (unsigned long long)req->bytes_out,
                     req->remote);
    if (n > 0 && (size_t)n < sizeof(line)) {
        ssize_t w = write(STDERR_FILENO, line, (size_t)n);
        (void)w; /* nowhere to report a failed log write */
    }
}

/* Fills the access-log fields of a new request from its first callback. */
static void request_note(struct srv_req *req, const char *url, const char *method)
{
    req->t0 = mono_s();
    snprintf(req->method, sizeof(req->method), "%s", method ? method : "");
    snprintf(req->path, sizeof(req->path), "%s", url ? url : "");
    request_id_init(req, MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "X-Request-ID"));
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    if (sa && sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, req->remote,
                  sizeof(req->remote));
    } else if (sa && sa->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                  req->remote, sizeof(req->remote));
    }
}

/* ---- content negotiation ------------------------------------------------------------------- */

/* One element of a comma-separated header list: its token [tok, tok + toklen) and q. Returns
 * the position after the element, or NULL at the end of the list. */
static const char *list_next(const char *p, const char **tok, size_t *toklen, double *q)
{
    while (*p == ' ' || *p == '\t' || *p == ',') {
        p++;
    }
    if (!*p) {
        return NULL;
    }
    const char *end = p + strcspn(p, ",");
    size_t n = strcspn(p, ",;");
    *tok = p;
    *q = 1;
    /* parameters ";name=value" up to the next comma: only q matters here */
    for (const char *a = p + n; a < end; a += 1 + strcspn(a + 1, ",;")) {
        const char *v = a + 1;
        while (*v == ' ' || *v == '\t') {
            v++;
        }
        if ((v[0] == 'q' || v[0] == 'Q') && v[1] == '=') {
            char *stop;
            double d = strtod(v + 2, &stop);
            *q = stop != v + 2 && d >= 0 && d <= 1 ? d : 1;
        }
    }
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t')) {
        n--;
    }
    *toklen = n;
    return end;
}

static bool tok_is(const char *tok, size_t n, const char *word)
{
    return n == strlen(word) && strncasecmp(tok, word, n) == 0;
}

bool srv_accept_prefers_json(const char *value)
{
    double q_json = -1, q_npy = -1, q;
    const char *tok;
    size_t n;
    for (const char *p = value; p && (p = list_next(p, &tok, &n, &q));) {
        if (tok_is(tok, n, "application/json")) {
            q_json = q > q_json ? q : q_json;
        } else if (tok_is(tok, n, "application/x-npy")) {
            q_npy = q > q_npy ? q : q_npy;
        }
    }
    return q_json > 0 && q_json > q_npy;
}

bool srv_accept_encoding_allows_gzip(const char *value)
{
    double q_gzip = -1, q_any = -1, q;
    const char *tok;
    size_t n;
    for (const char *p = value; p && (p = list_next(p, &tok, &n, &q));) {
        if (tok_is(tok, n, "gzip") || tok_is(tok, n, "x-gzip")) {
            q_gzip = q > q_gzip ? q : q_gzip;
        } else if (tok_is(tok, n, "*")) {
            q_any = q > q_any ? q : q_any;
        }
    }
    return q_gzip >= 0 ? q_gzip > 0 : q_any > 0;
}

/* ---- POST bodies: /v1/score and /v1/weight-map ----------------------------------------------- */

static const char *header(struct srv_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

/* Notes why the body cannot be used and how to answer: HTTP status and a printf-style detail.
 * What was kept of the body is freed and the rest is discarded as it arrives. */
static void body_fail(struct srv_req *req, int code, int status, const char *fmt, ...)
    SRV_PRINTF(4, 5);
static void body_fail(struct srv_req *req, int code, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(req->fail_msg, sizeof(req->fail_msg), fmt, ap);
    va_end(ap);
    req->fail = code;
    req->fail_status = status;
    free(req->body);
    req->body = NULL;
    req->len = req->cap = 0;
    parts_free(req);
}

/* The body cap as a 413 detail. */
static void fail_body_limit(struct srv_req *req)
{
    body_fail(req, SL_ETOOLARGE, MHD_HTTP_CONTENT_TOO_LARGE,
              "request body is over the limit of %zu bytes (--max-body-mb %llu)",
              req->srv->max_body, (unsigned long long)req->srv->cfg.max_body_mb);
}

/* A transfer encoding of a part that leaves its bytes as they are (RFC 7578 section 4.7). */
static bool identity_transfer(const char *te)
{
    return !te || strncasecmp(te, "binary", 6) == 0 || strncasecmp(te, "8bit", 4) == 0 ||
           strncasecmp(te, "7bit", 4) == 0;
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
    if (req->fail) {
        return MHD_NO;
    }
    if (!key || !key[0]) {
        body_fail(req, SL_EMALFORMED, MHD_HTTP_BAD_REQUEST,
                  "a multipart part has no name (Content-Disposition: form-data; name=\"...\")");
        return MHD_NO;
    }
    struct srv_part *p = req->nparts ? &req->parts[req->nparts - 1] : NULL;
    if (!p || strcmp(p->name, key) != 0 || (off == 0 && p->len > 0)) {
        if (!identity_transfer(transfer_encoding)) {
            body_fail(req, SL_EUNSUPPORTED, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                      "multipart part '%.64s': Content-Transfer-Encoding '%.40s' is not "
                      "supported; send the bytes as they are",
                      key, transfer_encoding);
            return MHD_NO;
        }
        if (strlen(key) > SRV_PART_NAME_MAX) {
            body_fail(req, SL_EMALFORMED, MHD_HTTP_BAD_REQUEST,
                      "multipart part name '%.64s...' is longer than %d bytes", key,
                      SRV_PART_NAME_MAX);
            return MHD_NO;
        }
        if (req->nparts == SRV_MAX_PARTS) {
            body_fail(req, SL_ETOOLARGE, MHD_HTTP_CONTENT_TOO_LARGE,
                      "multipart body has more than %d parts (part '%.64s')", SRV_MAX_PARTS, key);
            return MHD_NO;
        }
        p = &req->parts[req->nparts++];
        memset(p, 0, sizeof(*p));
        memcpy(p->name, key, strlen(key) + 1);
    }
    if (size == 0) {
        return MHD_YES;
    }
    if (size > max - req->parts_len) {
        body_fail(req, SL_ETOOLARGE, MHD_HTTP_CONTENT_TOO_LARGE,
                  "the parts of the multipart body are over the limit of %zu bytes (--max-body-mb "
                  "%llu), at part '%.64s'",
                  max, (unsigned long long)req->srv->cfg.max_body_mb, key);
        return MHD_NO;
    }
    if (p->len + size > p->cap) {
        size_t cap = p->cap ? p->cap : PART_FIRST_CHUNK;
        while (cap < p->len + size) {
            cap = cap > max / 2 ? max : cap * 2;
        }
        unsigned char *d = realloc(p->data, cap);
        if (!d) {
            body_fail(req, SL_ENOMEM, MHD_HTTP_SERVICE_UNAVAILABLE,
                      "out of memory receiving multipart part '%.64s'", key);
            return MHD_NO;
        }
        p->data = d;
        p->cap = cap;
    }
    memcpy(p->data + p->len, data, size);
    p->len += size;
    req->parts_len += size;
    return MHD_YES;
}

/* On the I/O thread: splits body bytes of a multipart body with the identity coding. */
static void parts_feed(struct srv_req *req, const char *data, size_t n)
{
    if (req->fail) {
        return;
    }
    if (n > req->srv->max_body - req->raw) {
        fail_body_limit(req);
        return;
    }
    req->raw += n;
    if (MHD_post_process(req->pp, data, n) != MHD_YES && !req->fail) {
        body_fail(req, SL_EMALFORMED, MHD_HTTP_BAD_REQUEST,
                  "malformed multipart/form-data body (expected '--' boundary lines, each "
                  "followed by part headers and an empty line)");
    }
}

/* The whole body has been split: it must have ended with its closing boundary and held at
 * least one part. Frees the post processor; on failure fails req. */
static void parts_end(struct srv_req *req)
{
    enum MHD_Result complete = MHD_destroy_post_processor(req->pp);
    req->pp = NULL;
    if (req->fail) {
        return;
    }
    if (complete != MHD_YES) {
        body_fail(req, SL_EMALFORMED, MHD_HTTP_BAD_REQUEST,
                  "multipart/form-data body ends before its closing line '--BOUNDARY--'");
    } else if (req->nparts == 0) {
        body_fail(req, SL_EMALFORMED, MHD_HTTP_BAD_REQUEST,
                  "multipart/form-data body has no parts: no line '--BOUNDARY' with the "
                  "boundary of its Content-Type");
    }
}

/* Refuses a body with status (503 or 429, both with Retry-After) without keeping it: its bytes
 * are read and dropped (body_append and parts_feed ignore a failed request) and the answer goes
 * out once the body is complete. Answering at the headers would be sooner, but the connection
 * would then close while the client is still sending, and a client that meets the closed
 * socket (curl: "Send failure: Broken pipe") never reads the answer: every request must get
 * one. */
static enum MHD_Result refuse_body_status(struct srv_req *req, enum srv_reject why, int status,
                                          const char *detail)
{
    body_fail(req, SL_EBUSY, status, "%s", detail);
    req->reject = why;
    req->phase = PH_BODY;
    return MHD_YES;
}

static enum MHD_Result refuse_body(struct srv_req *req, enum srv_reject why, const char *detail)
{
    return refuse_body_status(req, why, MHD_HTTP_SERVICE_UNAVAILABLE, detail);
}

/* A body without Content-Length (chunked) reserves memory as it arrives: `got` bytes so far,
 * reserved in doubling steps so that the server lock is taken a logarithmic number of times. */
static void body_reserve_more(struct srv_req *req, size_t got)
{
    if (req->fail || got <= req->reserved) {
        return;
    }
    size_t want = req->reserved < BODY_FIRST_CHUNK ? BODY_FIRST_CHUNK : req->reserved;
    while (want < got) {
        want = want > SIZE_MAX / 2 ? SIZE_MAX : want * 2;
    }
    if (want > req->srv->max_body) {
        want = got > req->srv->max_body ? got : req->srv->max_body;
    }
    if (!body_reserve(req, want) && !body_reserve(req, got)) {
        body_fail(req, SL_EBUSY, MHD_HTTP_SERVICE_UNAVAILABLE,
                  "the server holds as many request bodies as it may (--max-inflight-mb %llu); "
                  "retry later",
                  (unsigned long long)req->srv->cfg.max_inflight_mb);
        req->reject = REJ_BODY_MEMORY;
    }
}

/* First call: headers only. Refuses what can be refused before reading any body, and notes
 * what the answer may be (Accept, Accept-Encoding) while the headers are at hand. */
static enum MHD_Result body_begin(struct srv_req *req)
{
    struct srv_server *srv = req->srv;
    char detail[256];

    const char *ct = header(req, MHD_HTTP_HEADER_CONTENT_TYPE);
    bool multipart = srv_media_type_is(ct, "multipart/form-data");
    if (!srv_media_type_is(ct, "application/json") && !(multipart && req->route->compute_parts)) {
        const char *want = req->route->compute_parts ? "application/json or multipart/form-data"
                                                     : "application/json";
        if (multipart) {
            snprintf(detail, sizeof(detail),
                     "multipart/form-data is not accepted on %s (only on /v1/score); send %s",
                     req->route->path, want);
        } else if (!ct) {
            snprintf(detail, sizeof(detail), "Content-Type is missing; send %s", want);
        } else {
            snprintf(detail, sizeof(detail), "Content-Type '%.100s' is not supported; send %s", ct,
                     want);
        }
        return send_problem(req, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, detail, NULL, NULL);
    }

    const char *ce = header(req, MHD_HTTP_HEADER_CONTENT_ENCODING);
    if (srv_parse_encoding(ce, &req->enc) != 0) {
        snprintf(detail, sizeof(detail),
                 "Content-Encoding '%.100s' is not supported; use gzip, deflate or identity", ce);
        return send_problem(req, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, detail,
                            MHD_HTTP_HEADER_ACCEPT_ENCODING, "gzip, deflate");
    }

    /* MHD has already rejected a malformed Content-Length; check it against the cap before a
     * single body byte is read. */
    const char *cl = header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno == 0 && end != cl) {
            req->declared = n;
        }
        if (errno == ERANGE || req->declared > srv->max_body) {
            snprintf(detail, sizeof(detail),
                     "request body of %.30s bytes is over the limit of %zu bytes (--max-body-mb "
                     "%llu)",
                     cl, srv->max_body, (unsigned long long)srv->cfg.max_body_mb);
            return send_problem(req, MHD_HTTP_CONTENT_TOO_LARGE, detail, NULL, NULL);
        }
    }

    /* A draining server, a full compute queue or a body that would pass --max-inflight-mb
     * refuse the body without keeping it, so that memory under overload stays bounded by the
     * queue and the cap rather than by the connections (the queue can still fill up while an
     * accepted body arrives: then the answer is the same 503 at the end). */
    pthread_mutex_lock(&srv->mu);
    bool draining = srv->draining;
    pthread_mutex_unlock(&srv->mu);
    if (draining) {
        return refuse_body(req, REJ_SHUTTING_DOWN, "the server is shutting down");
    }
    int queued = 0;
    sl_pool_load(srv->pool, &queued, NULL);
    if (queued >= srv->cfg.queue) {
        return refuse_body(req, REJ_QUEUE_FULL, "the compute queue is full; retry later");
    }
    if (req->declared > 0 && !body_reserve(req, (size_t)req->declared)) {
        snprintf(detail, sizeof(detail),
                 "the server holds as many request bodies as it may (--max-inflight-mb %llu); "
                 "retry later",
                 (unsigned long long)srv->cfg.max_inflight_mb);
        return refuse_body(req, REJ_BODY_MEMORY, detail);
    }
    if (multipart) {
        /* MHD finds the boundary with a case-sensitive "boundary=" too */
        if (!strstr(ct, "boundary=")) {
            return send_problem(req, MHD_HTTP_BAD_REQUEST,
                                "multipart/form-data needs a boundary parameter (Content-Type: "
                                "multipart/form-data; boundary=...)",
                                NULL, NULL);
        }
        req->pp = MHD_create_post_processor(req->conn, PP_BUFFER, on_part, req);
        if (!req->pp) {
            snprintf(detail, sizeof(detail),
                     "cannot split multipart/form-data with the Content-Type '%.100s' (bad "
                     "boundary)",
                     ct);
            return send_problem(req, MHD_HTTP_BAD_REQUEST, detail, NULL, NULL);
        }
        req->multipart = true;
    }
    req->want_json = srv_accept_prefers_json(header(req, MHD_HTTP_HEADER_ACCEPT));
    req->accept_gzip =
        srv_accept_encoding_allows_gzip(header(req, MHD_HTTP_HEADER_ACCEPT_ENCODING));
    req->phase = PH_BODY;
    return MHD_YES;
}

/* Appends body bytes, or notes why they cannot be kept (the rest is then discarded). */
static void body_append(struct srv_req *req, const char *data, size_t n)
{
    size_t max = req->srv->max_body;
    if (req->fail) {
        return;
    }
    if (n > max - req->len) {
        req->fail = SL_ETOOLARGE;
        goto drop_body;
    }
    if (req->len + n > req->cap) {
        size_t cap = req->cap;
        if (cap == 0) {
            cap = req->declared > 0 ? (size_t)req->declared : BODY_FIRST_CHUNK;
        }
        while (cap < req->len + n) {
            cap = cap > max / 2 ? max : cap * 2;
        }
        char *body = realloc(req->body, cap + 1);
        if (!body) {
            req->fail = SL_ENOMEM;
            goto drop_body;
        }
        req->body = body;
        req->cap = cap;
    }
    memcpy(req->body + req->len, data, n);
    req->len += n;
    req->body[req->len] = '\0';
    return;

drop_body:
    free(req->body);
    req->body = NULL;
    req->len = req->cap = 0;
}

/* On a worker: splits the inflated multipart body [body, body + len) into req->parts. The post
 * processor borrows the boundary from the connection's headers, which MHD frees or reuses once
 * the request is answered; so the request is pinned meanwhile and nobody else answers it (see
 * srv_server_abandon, body_submit). Returns 0, or -1 with the answer in resp. */
static int parts_split(struct srv_req *req, const char *body, size_t len, struct slp_response *resp)
{
    struct srv_server *srv = req->srv;
    pthread_mutex_lock(&srv->mu);
    bool ok = !req->abandoned && !srv->stopping && req->conn;
    if (ok) {
        req->pinned = true;
        srv->pinned++;
    }
    pthread_mutex_unlock(&srv->mu);
    if (!ok) {
        slp_problem(MHD_HTTP_SERVICE_UNAVAILABLE, "the server is shutting down", resp);
        return -1;
    }
    if (len > srv->max_body) {
        fail_body_limit(req);
    } else if (MHD_post_process(req->pp, body, len) != MHD_YES && !req->fail) {
        body_fail(req, SL_EMALFORMED, MHD_HTTP_BAD_REQUEST,
                  "malformed multipart/form-data body after decompression (expected '--' "
                  "boundary lines, each followed by part headers and an empty line)");
    }
    parts_end(req);
    pthread_mutex_lock(&srv->mu);
    req->pinned = false;
    srv->pinned--;
    pthread_cond_broadcast(&srv->unpinned);
    pthread_mutex_unlock(&srv->mu);
    if (req->fail) {
        slp_problem(req->fail_status, req->fail_msg, resp);
        return -1;
    }
    return 0;
}

/* On a worker: the route's step for a body split into req->parts (borrowed by the step). */
static void parts_compute(struct srv_req *req, struct slp_response *resp)
{
    struct slp_part items[SRV_MAX_PARTS];
    for (int i = 0; i < req->nparts; i++) {
        items[i].name = req->parts[i].name;
        items[i].data = req->parts[i].data;
        items[i].len = req->parts[i].len;
    }
    const struct slp_parts parts = {items, req->nparts};
    req->route->compute_parts(req, &parts, resp);
}

/* On a worker: inflate if needed (a multipart body is split after that), then the route's
 * wire-to-wire step. */
static void body_compute(struct srv_req *req, struct slp_response *resp)
{
    struct srv_server *srv = req->srv;
    const char *body = req->body;
    size_t len = req->len;
    char *plain = NULL;

    if (req->multipart && req->enc == SRV_ENC_IDENTITY) {
        parts_compute(req, resp); /* split on the I/O thread as it arrived */
        return;
    }
    if (req->enc != SRV_ENC_IDENTITY) {
        char msg[256];
        int rc = srv_inflate(req->body, req->len, req->enc, srv->max_body, &plain, &len, msg,
                             sizeof(msg));
        if (rc != 0) {
            slp_problem(slp_http_status(rc), msg, resp);
            return;
        }
        /* The compressed bytes are no longer needed: give the memory back before scoring. */
        free(req->body);
        req->body = NULL;
        body = plain;
    }
    if (len == 0) {
        slp_problem(MHD_HTTP_BAD_REQUEST, "request body is empty after decompression", resp);
    } else if (req->multipart) {
        int rc = parts_split(req, body, len, resp);
        free(plain); /* the parts hold their own copies */
        plain = NULL;
        if (rc == 0) {
            parts_compute(req, resp);
        }
    } else {
        req->route->compute(req, body, len, resp);
    }
    free(plain);
}

/* /v1/score with a multipart/form-data body, on a worker. */
static void compute_score_parts(struct srv_req *req, const struct slp_parts *parts,
                                struct slp_response *resp)
{
    slp_score_multipart(parts, &req->srv->limits, req->srv->pool, resp);
}

/* /v1/score on a worker. */
static void compute_score(struct srv_req *req, const char *body, size_t len,
                          struct slp_response *resp)
{
    slp_score_request(body, len, &req->srv->limits, req->srv->pool, resp);
}

/* gzips in[0..len) (zlib deflate, windowBits 31) into a new buffer of fewer than len bytes.
 * Returns it (its size in *outlen, caller frees), or NULL when gzip would not be smaller or
 * memory or zlib failed. */
static char *gzip_smaller(const char *in, size_t len, size_t *outlen)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (len < 2 || deflateInit2(&z, GZIP_LEVEL, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        return NULL;
    }
    /* room for len - 1 bytes: an answer that does not fit is not worth sending gzipped */
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

/* /v1/weight-map on a worker. */
static void compute_weight_map(struct srv_req *req, const char *body, size_t len,
                               struct slp_response *resp)
{
    slp_weight_map_request(body, len, &req->srv->limits, req->srv->pool, req->want_json, resp);
}

/* On a worker: a 200 answer of at least SRV_GZIP_MIN bytes is gzipped when the client allows it
 * and it shrinks. */
static void maybe_gzip(struct srv_req *req, struct slp_response *resp)
{
    if (resp->status != MHD_HTTP_OK || !req->accept_gzip || resp->len < SRV_GZIP_MIN) {
        return;
    }
    size_t zlen = 0;
    char *z = gzip_smaller(resp->body, resp->len, &zlen);
    if (z) {
        free(resp->body);
        resp->body = z;
        resp->len = zlen;
        req->resp_gzip = true;
    }
}

static void body_job(void *arg)
{
    struct srv_req *req = arg;
    struct srv_server *srv = req->srv;
    struct slp_response resp = {0};

    pthread_mutex_lock(&srv->mu);
    bool skip = req->abandoned || srv->stopping;
    pthread_mutex_unlock(&srv->mu);
    if (skip) {
        slp_problem(MHD_HTTP_SERVICE_UNAVAILABLE, "the server is shutting down", &resp);
    } else {
        body_compute(req, &resp);
        maybe_gzip(req, &resp);
    }
    free(req->body);
    req->body = NULL;
    req->len = req->cap = 0;
    parts_free(req);

    pthread_mutex_lock(&srv->mu);
    body_release_locked(req); /* the body is gone; the answer is bounded by the work done */
    req->resp = resp;
    req->done = true;
    if (req->suspended) {
        suspended_unlink(srv, req);
        MHD_resume_connection(req->conn);
    }
    req_unref_locked(req);
    pthread_mutex_unlock(&srv->mu);
}

/* Takes the job's answer out of req and queues it. A 200 answer depends on Accept-Encoding (and
 * a weight map's on Accept too): it says so in Vary, and names its gzip coding. */
static enum MHD_Result body_send_result(struct srv_req *req)
{
    struct slp_response r = req->resp;
    memset(&req->resp, 0, sizeof(req->resp));
    if (r.status != MHD_HTTP_OK) {
        return send_response(req, &r, NULL, NULL);
    }
    const char *const hdrs[] = {
        MHD_HTTP_HEADER_VARY,
        req->route->compute == compute_weight_map ? "Accept, Accept-Encoding" : "Accept-Encoding",
        req->resp_gzip ? MHD_HTTP_HEADER_CONTENT_ENCODING : NULL, "gzip", NULL};
    return send_response_hdrs(req, &r, hdrs);
}

/* Final call: the body is complete. Hands it to the pool and suspends the connection. */
static enum MHD_Result body_submit(struct srv_req *req)
{
    struct srv_server *srv = req->srv;
    char detail[160];
    /* a multipart body with the identity coding was split as it arrived: nothing was kept */
    bool split = req->multipart && req->enc == SRV_ENC_IDENTITY;
    size_t got = split ? req->raw : req->len;

    if (split && !req->fail && got > 0) {
        parts_end(req);
    }
    if (req->fail && req->fail_status) {
        if (req->fail == SL_ENOMEM) {
            req->reject = REJ_OUT_OF_MEMORY;
        }
        return send_problem(req, req->fail_status, req->fail_msg, NULL, NULL);
    }
    if (req->fail == SL_ETOOLARGE) {
        snprintf(detail, sizeof(detail),
                 "request body is over the limit of %zu bytes (--max-body-mb %llu)", srv->max_body,
                 (unsigned long long)srv->cfg.max_body_mb);
        return send_problem(req, MHD_HTTP_CONTENT_TOO_LARGE, detail, NULL, NULL);
    }
    if (req->fail) {
        req->reject = REJ_OUT_OF_MEMORY;
        return send_problem(req, MHD_HTTP_SERVICE_UNAVAILABLE,
                            "out of memory receiving the request body", NULL, NULL);
    }
    if (got == 0) {
        /* no length and no chunked coding: the client never said a body comes */
        if (!header(req, MHD_HTTP_HEADER_CONTENT_LENGTH) &&
            !header(req, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
            return send_problem(req, MHD_HTTP_LENGTH_REQUIRED,
                                "a POST body needs Content-Length or chunked Transfer-Encoding",
                                NULL, NULL);
        }
        return send_problem(req, MHD_HTTP_BAD_REQUEST, "request body is empty", NULL, NULL);
    }

    pthread_mutex_lock(&srv->mu);
    if (srv->stopping) {
        pthread_mutex_unlock(&srv->mu);
        return send_problem(req, MHD_HTTP_SERVICE_UNAVAILABLE, "the server is shutting down", NULL,
                            NULL);
    }
    req->refs++; /* the job's */
    pthread_mutex_unlock(&srv->mu);

    req->phase = PH_QUEUED;
    if (sl_pool_submit(srv->pool, body_job, req) != 0) {
        pthread_mutex_lock(&srv->mu);
        req->refs--; /* MHD's reference remains */
        pthread_mutex_unlock(&srv->mu);
        req->reject = REJ_QUEUE_FULL;
        return send_problem(req, MHD_HTTP_SERVICE_UNAVAILABLE,
                            "the compute queue is full; retry later", NULL, NULL);
    }

    pthread_mutex_lock(&srv->mu);
    if (req->done) {
        /* The job already finished: nothing to suspend for. */
        pthread_mutex_unlock(&srv->mu);
        return body_send_result(req);
    }
    if (srv->stopping) {
        /* The drain gave up between submit and here: do not suspend (MHD must be stoppable).
         * A job that is splitting the body borrows connection memory: answer after it. */
        req->abandoned = true;
        while (req->pinned) {
            pthread_cond_wait(&srv->unpinned, &srv->mu);
        }
        pthread_mutex_unlock(&srv->mu);
        return send_problem(req, MHD_HTTP_SERVICE_UNAVAILABLE, "the server is shutting down", NULL,
                            NULL);
    }
    MHD_suspend_connection(req->conn);
    suspended_link(srv, req);
    pthread_mutex_unlock(&srv->mu);
    return MHD_YES;
}

/* Called again after the job (or srv_server_abandon) resumed the connection. */
static enum MHD_Result body_finish(struct srv_req *req)
{
    struct srv_server *srv = req->srv;

    pthread_mutex_lock(&srv->mu);
    bool done = req->done;
    bool abandoned = req->abandoned;
    pthread_mutex_unlock(&srv->mu);
    if (done) {
        /* resp is the job's no more: it set done under the lock and let go of req->resp. */
        return body_send_result(req);
    }
    if (abandoned) {
        return send_problem(req, MHD_HTTP_SERVICE_UNAVAILABLE, "the server is shutting down", NULL,
                            NULL);
    }
    fprintf(stderr, "seglossd: internal: %s request resumed before its result\n", req->route->path);
    return MHD_NO;
}

/* The handler of the POST routes; the route's compute step runs on a worker. */
static enum MHD_Result handle_body(struct srv_req *req, const char *data, size_t *size)
{
    switch (req->phase) {
    case PH_NEW:
        return body_begin(req);
    case PH_BODY:
        if (*size > 0) {
            size_t got = req->multipart && req->enc == SRV_ENC_IDENTITY ? req->raw : req->len;
            body_reserve_more(req, got + *size);
            if (req->multipart && req->enc == SRV_ENC_IDENTITY) {
                parts_feed(req, data, *size);
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

/* ---- MHD callbacks -------------------------------------------------------------------------- */

/* Whether the request announces a body (MHD has already validated these headers). */
static bool has_body(struct MHD_Connection *conn)
{
    const char *cl =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    return te != NULL || (cl != NULL && strtoull(cl, NULL, 10) > 0);
}

/* Answers a request whose route does not read a body: 404, 405 or the route's handler. */
static enum MHD_Result respond(struct srv_req *req, const char *url, const char *method,
                               const char *data, size_t *size)
{
    const struct srv_route *route = req->route;
    char detail[320];
    if (!route) {
        snprintf(detail, sizeof(detail), "no such path: %.200s", url);
        return send_problem(req, MHD_HTTP_NOT_FOUND, detail, NULL, NULL);
    }
    if (!route->handle) {
        snprintf(detail, sizeof(detail), "%s is not implemented in this version", route->path);
        return send_problem(req, MHD_HTTP_NOT_FOUND, detail, NULL, NULL);
    }
    if (!(route->methods & method_bit(method))) {
        snprintf(detail, sizeof(detail), "method %.40s is not allowed on %s; allowed: %s", method,
                 route->path, route->allow);
        return send_problem(req, MHD_HTTP_METHOD_NOT_ALLOWED, detail, MHD_HTTP_HEADER_ALLOW,
                            route->allow);
    }
    return route->handle(req, data, size);
}

/* Adds the bytes of one header (or query argument) line to *(size_t *)cls. */
static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    (void)kind;
    *(size_t *)cls += (key ? strlen(key) : 0) + (value ? strlen(value) : 0) + 4; /* ": ", CRLF */
    return MHD_YES;
}

/* Refuses, at its first callback, a request on a connection accepted over --max-connections
 * or --max-per-ip, or whose request line and headers pass --max-header-kb. MHD itself holds
 * the hard limits at twice these (see srv_server_new); between the two the client gets a
 * problem+json answer instead of a closed socket. A body that comes with a connection-limit
 * refusal is read and dropped first (refuse_body_status), so that the client reads the answer.
 * Returns true when req was answered or is being refused. */
static bool refuse_over_limit(struct srv_req *req, const char *url, const char *method,
                              enum MHD_Result *ret)
{
    struct srv_server *srv = req->srv;
    char detail[200];
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    const struct srv_conn *c = ci ? ci->socket_context : NULL;
    if (c && (c->over == REJ_CONNECTIONS || c->over == REJ_PER_IP)) {
        int status;
        if (c->over == REJ_CONNECTIONS) {
            snprintf(detail, sizeof(detail),
                     "the server has as many open connections as it may (--max-connections %u); "
                     "retry later",
                     srv->cfg.max_connections);
            status = MHD_HTTP_SERVICE_UNAVAILABLE;
        } else {
            snprintf(detail, sizeof(detail),
                     "too many open connections from %.46s (--max-per-ip %u); reuse a "
                     "connection or retry later",
                     req->remote, srv->cfg.max_per_ip);
            status = MHD_HTTP_TOO_MANY_REQUESTS;
        }
        req->reject = c->over;
        req->close = true;
        if (req->route && req->route->reads_body && req->route->handle &&
            (req->route->methods & method_bit(method)) && has_body(req->conn)) {
            *ret = refuse_body_status(req, c->over, status, detail);
        } else {
            *ret = send_problem(req, status, detail, NULL, NULL);
        }
        return true;
    }
    size_t bytes = strlen(method) + 1 + strlen(url) + 11; /* " HTTP/1.1\r\n" */
    MHD_get_connection_values(req->conn, MHD_HEADER_KIND, count_header, &bytes);
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, count_header, &bytes);
    if (bytes > (size_t)srv->cfg.max_header_kb * 1024) {
        snprintf(detail, sizeof(detail),
                 "request line and headers take about %zu bytes, over the limit of %u KiB "
                 "(--max-header-kb)",
                 bytes, srv->cfg.max_header_kb);
        req->reject = REJ_HEADERS;
        req->close = true;
        *ret = send_problem(req, MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE, detail, NULL, NULL);
        return true;
    }
    return false;
}

/* MHD calls this first with the headers, then per body chunk, then once the request is
 * complete (and once more after a resume). An answer queued at the first call makes MHD skip
 * the body and close the connection, so that is done only to refuse a body; everything else
 * is answered at the completing call and keeps the connection alive. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **con_cls)
{
    struct srv_server *srv = cls;
    struct srv_req *req = *con_cls;
    (void)version;

    if (req) {
        req->bytes_in += *size;
        if (req->phase != PH_NEW) {
            return req->route->handle(req, data, size);
        }
        if (*size > 0) {
            *size = 0; /* a body nobody asked for (only when MHD did not say one comes) */
            return MHD_YES;
        }
        return respond(req, url, method, data, size);
    }

    req = calloc(1, sizeof(*req));
    if (!req) {
        return MHD_NO;
    }
    req->srv = srv;
    req->conn = conn;
    req->refs = 1; /* MHD's, dropped in on_completed */
    *con_cls = req;
    request_note(req, url, method);
    pthread_mutex_lock(&srv->mu);
    srv->inflight++;
    pthread_mutex_unlock(&srv->mu);

    req->route = route_find(url);
    enum MHD_Result ret;
    if (refuse_over_limit(req, url, method, &ret)) {
        return ret;
    }
    if (req->route && req->route->reads_body && req->route->handle &&
        (req->route->methods & method_bit(method))) {
        return req->route->handle(req, data, size);
    }
    if (has_body(conn)) {
        return respond(req, url, method, data, size);
    }
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct srv_server *srv = cls;
    struct srv_req *req = *con_cls;
    (void)conn;
    if (!req) {
        return;
    }
    *con_cls = NULL;
    double secs = mono_s() - req->t0;
    if (toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED && req->reject == REJ_NONE) {
        req->reject = REJ_IDLE_TIMEOUT;
    }
    if (srv->cfg.access_log) {
        access_log_write(req, secs);
    }
    pthread_mutex_lock(&srv->mu);
    metrics_record_locked(srv, req, secs);
    if (req->suspended) {
        /* MHD 0.9.75 never closes a suspended connection, but should one go, the job must
         * not resume it. */
        suspended_unlink(srv, req);
        req->abandoned = true;
    }
    req->conn = NULL;
    srv->inflight--;
    req_unref_locked(req);
    pthread_mutex_unlock(&srv->mu);
}

/* ---- connections ------------------------------------------------------------------------- */

/* The address bytes of a client (IPv4 or IPv6) into key; returns their length, 0 if unknown. */
static size_t addr_key(const struct sockaddr *sa, unsigned char key[16])
{
    if (sa && sa->sa_family == AF_INET) {
        memcpy(key, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        return 4;
    }
    if (sa && sa->sa_family == AF_INET6) {
        memcpy(key, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
        return 16;
    }
    return 0;
}

static unsigned addr_hash(const unsigned char *key, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h = (h ^ key[i]) * 16777619u;
    }
    return h % IP_BUCKETS;
}

/* Counts one more connection of address key; returns its entry, NULL when out of memory. */
static struct srv_ip *ip_ref_locked(struct srv_server *srv, const unsigned char *key, size_t len)
{
    struct srv_ip **head = &srv->ips[addr_hash(key, len)];
    for (struct srv_ip *e = *head; e; e = e->next) {
        if (e->len == len && memcmp(e->addr, key, len) == 0) {
            e->n++;
            return e;
        }
    }
    struct srv_ip *e = calloc(1, sizeof(*e));
    if (e) {
        memcpy(e->addr, key, len);
        e->len = len;
        e->n = 1;
        e->next = *head;
        *head = e;
    }
    return e;
}

static void ip_unref_locked(struct srv_server *srv, struct srv_ip *ip)
{
    if (!ip || --ip->n > 0) {
        return;
    }
    struct srv_ip **p = &srv->ips[addr_hash(ip->addr, ip->len)];
    while (*p != ip) {
        p = &(*p)->next;
    }
    *p = ip->next;
    free(ip);
}

/* MHD_OPTION_NOTIFY_CONNECTION: counts open connections, in all and per client address, and
 * marks a connection accepted over --max-connections or --max-per-ip (refuse_over_limit). */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct srv_server *srv = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        struct srv_conn *c = calloc(1, sizeof(*c));
        *socket_context = c;
        if (!c) {
            return; /* not counted; MHD's own limits still hold */
        }
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        unsigned char key[16];
        size_t len = addr_key(ci ? ci->client_addr : NULL, key);
        pthread_mutex_lock(&srv->mu);
        srv->nconns++;
        c->ip = len ? ip_ref_locked(srv, key, len) : NULL;
        if (srv->nconns > srv->cfg.max_connections) {
            c->over = REJ_CONNECTIONS;
        } else if (srv->cfg.max_per_ip && c->ip && c->ip->n > srv->cfg.max_per_ip) {
            c->over = REJ_PER_IP;
        }
        pthread_mutex_unlock(&srv->mu);
        return;
    }
    struct srv_conn *c = *socket_context;
    if (c) {
        pthread_mutex_lock(&srv->mu);
        srv->nconns--;
        ip_unref_locked(srv, c->ip);
        pthread_mutex_unlock(&srv->mu);
        free(c);
        *socket_context = NULL;
    }
}

/* ---- the server ----------------------------------------------------------------------------- */

/* Starts the pool and the daemon (see server.h). */
struct srv_server *srv_server_new(const struct srv_config *cfg, char *err, size_t errlen)
{
    struct srv_server *srv = calloc(1, sizeof(*srv));
    if (!srv) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    srv->cfg = *cfg;
    srv->max_body = (size_t)cfg->max_body_mb * MIB;
    srv->max_inflight = (size_t)cfg->max_inflight_mb * MIB;
    slp_limits_default(&srv->limits);
    srv->limits.max_elements = cfg->max_pixels;
    srv->limits.max_images = cfg->max_images;
    srv->limits.max_classes = cfg->max_classes;
    srv->limits.max_depth = cfg->max_spec_depth;
    srv->limits.max_json_values = cfg->max_json_values;
    srv->limits.max_specs = cfg->max_specs;
    srv->limits.max_array_bytes = (size_t)cfg->max_pixels * 8;
    if (pthread_mutex_init(&srv->mu, NULL) != 0) {
        snprintf(err, errlen, "cannot create a mutex");
        goto free_srv;
    }
    if (pthread_cond_init(&srv->unpinned, NULL) != 0) {
        snprintf(err, errlen, "cannot create a condition variable");
        pthread_mutex_destroy(&srv->mu);
        goto free_srv;
    }

    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, cfg->bind, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)cfg->port);
    } else if (inet_pton(AF_INET6, cfg->bind, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)cfg->port);
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(err, errlen, "'%s' is not an IP address literal", cfg->bind);
        goto destroy_locks;
    }

    srv->pool = sl_pool_new(cfg->threads, cfg->queue);
    if (!srv->pool) {
        snprintf(err, errlen, "cannot start %d compute workers", cfg->threads);
        goto destroy_locks;
    }

    errno = 0;
    srv->daemon = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)SRV_IO_THREADS,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        srv, MHD_OPTION_CONNECTION_TIMEOUT, cfg->idle_timeout,
        /* hard limits at twice the flags: up to them refuse_over_limit answers problem+json */
        MHD_OPTION_CONNECTION_LIMIT, 2 * cfg->max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        2 * cfg->max_per_ip, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)cfg->max_header_kb * 2048,
        MHD_OPTION_END);
    if (!srv->daemon) {
        snprintf(err, errlen, "cannot listen on %s port %u%s%s", cfg->bind, cfg->port,
                 errno ? ": " : "", errno ? strerror(errno) : "");
        goto free_pool;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info && info->port ? info->port : cfg->port;
    return srv;

free_pool:
    sl_pool_free(srv->pool);
destroy_locks:
    pthread_cond_destroy(&srv->unpinned);
    pthread_mutex_destroy(&srv->mu);
free_srv:
    free(srv);
    return NULL;
}

/* The port actually bound. */
unsigned srv_server_port(const struct srv_server *srv)
{
    return srv->port;
}

/* Stops taking work and turns /readyz to 503. The listen socket stays open until the daemon
 * stops: MHD_quiesce_daemon on an epoll daemon with its own threads races with the I/O threads
 * over the listen socket's epoll registration and can abort the process (libmicrohttpd
 * 0.9.75, seen here about once in seven test runs), so new bodies are refused with 503 +
 * Retry-After and Connection: close instead (body_begin). */
void srv_server_drain(struct srv_server *srv)
{
    pthread_mutex_lock(&srv->mu);
    srv->draining = true;
    pthread_mutex_unlock(&srv->mu);
}

/* Requests between their first callback and their completion. */
int srv_server_inflight(struct srv_server *srv)
{
    pthread_mutex_lock(&srv->mu);
    int n = srv->inflight;
    pthread_mutex_unlock(&srv->mu);
    return n;
}

/* Resumes every suspended connection as abandoned (answered 503 by its I/O thread) and
 * forbids new suspensions. Returns how many were resumed. */
int srv_server_abandon(struct srv_server *srv)
{
    int n = 0;
    pthread_mutex_lock(&srv->mu);
    srv->stopping = true;
    /* A job splitting a body borrows connection memory that answering would free; no job pins
     * once `stopping` is set, and a split takes one pass over one body. */
    while (srv->pinned > 0) {
        pthread_cond_wait(&srv->unpinned, &srv->mu);
    }
    while (srv->suspended) {
        struct srv_req *req = srv->suspended;
        suspended_unlink(srv, req);
        req->abandoned = true;
        MHD_resume_connection(req->conn);
        n++;
    }
    pthread_mutex_unlock(&srv->mu);
    return n;
}

/* Stops the daemon, finishes the pool, frees. */
void srv_server_free(struct srv_server *srv)
{
    if (!srv) {
        return;
    }
    /* MHD_stop_daemon must not meet a suspended connection, and no job may call into MHD
     * once it is stopped: both hold after this. */
    srv_server_abandon(srv);
    MHD_stop_daemon(srv->daemon);
    /* Jobs still queued see `stopping` and skip their work; a running one finishes. */
    sl_pool_free(srv->pool);
    pthread_cond_destroy(&srv->unpinned);
    pthread_mutex_destroy(&srv->mu);
    free(srv);
}
