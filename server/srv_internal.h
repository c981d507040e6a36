/* srv_internal.h - what the files of seglossd's HTTP front end share; not part of server.h.
 *
 * One request's way: route.c (MHD callbacks, the route table) -> limits.c (connection limits,
 * header size) -> intake.c (the body, queued to a worker; multipart.c splits multipart bodies)
 * -> reply.c (answers, gzip) -> observe.c (metrics, access log) at completion. lifecycle.c starts,
 * drains and stops the server and owns a request's references; headers.c parses header values.
 *
 * Threads and locks: MHD's I/O threads (SRV_IO_THREADS, epoll) only route, check headers and
 * copy body bytes; a compute worker inflates, parses, computes and serializes (and gzips an
 * answer the client accepts gzipped). The connection is suspended while its job is queued or
 * running and the job resumes it. One server mutex (srv->mu) guards the fields marked `mu`: each
 * request's `job` group, the list of suspended requests and the server's counters. A request
 * has two references: MHD's (dropped by the completed callback) and the job's (dropped when the
 * job ends); whoever drops the last one frees it, so a client that disconnects, or a drain that
 * gives up, never frees memory a running job still uses. The job calls MHD_resume_connection
 * only under srv->mu and only while `suspended` is set; the I/O thread sets `suspended` under the
 * same lock only if the job is not already done, so a fast job and the suspension cannot cross.
 * Lock order: srv->mu, then MHD's own mutexes (MHD never calls back into us while holding one
 * in this configuration). A pinned request is not answered by anyone but its job until the job
 * unpins it (see srv_parts_split): srv_server_abandon and a stopping submit wait on
 * srv->unpinned, which takes at most one split of one body.
 *
 * Errors: functions that can fail return 0 or a negative SL_E* code (server.h); the MHD-facing
 * ones return enum MHD_Result, where MHD_NO makes MHD close the connection.
 */
#ifndef SRV_INTERNAL_H
#define SRV_INTERNAL_H

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dynbuf.h"
#include "proto.h"
#include "server.h"

#define SRV_MIB ((size_t)1024 * 1024)
/* Smallest block the buffer pool keeps (lifecycle.c): below, malloc reuses memory itself. */
#define SRV_POOL_MIN_BLOCK ((size_t)256 * 1024)

#if defined(__GNUC__) || defined(__clang__)
#define SRV_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define SRV_PRINTF(fmt, args)
#endif

/* First body reservation when the length is not announced; doubled as the body grows. */
#define SRV_BODY_FIRST_CHUNK (64 * 1024)

/* multipart/form-data: at most this many parts (a route's max_parts may allow more: one per
 * image of a challenge body), each named by at most SRV_PART_NAME_MAX bytes (an image id). */
#define SRV_MAX_PARTS 16
#define SRV_PART_NAME_MAX 128

/* Path parameters of a route pattern ("{c}", "{id}"): at most this many, each this long. */
#define SRV_MAX_PARAMS 2
#define SRV_PARAM_MAX 128

struct srv_req;
struct chal_server;

/* ---- routes (route.c) -------------------------------------------------------------------- */

/* The answer of a route without a body, at the request's completing call. */
typedef enum MHD_Result (*srv_handler)(struct srv_req *req);
/* The worker step of a route for an application/json body (inflated): the body in, the answer
 * out. */
typedef void (*srv_compute)(struct srv_req *req, const char *body, size_t len,
                            struct slp_response *resp);
/* The worker step of a route for a multipart/form-data body, split into parts (borrowed). */
typedef void (*srv_compute_parts)(struct srv_req *req, const struct slp_parts *parts,
                                  struct slp_response *resp);

enum srv_method {
    SRV_GET = 1,
    SRV_HEAD = 2,
    SRV_POST = 4,
    SRV_PUT = 8,
    SRV_DELETE = 16,
    SRV_PATCH = 32
};

/* At the headers of a request whose body a route takes (I/O thread): 0 to read the body, or
 * an HTTP status whose answer (detail in req->in.fail_msg, one header in req->in.fail_hdr)
 * goes out once the body has been read and dropped. */
typedef int (*srv_admit)(struct srv_req *req);

/* One row per path of openapi.json: the path (segments "{name}" match one segment of
 * [A-Za-z0-9._-], captured into req->params in order), its methods, and a handler for the
 * methods without a body and/or the bodies it takes on body_methods (SRV_POST when 0):
 * compute for application/json, compute_parts for multipart/form-data (NULL: refused with
 * 415), admit checked first. A row with neither is in the API but not in this version (404
 * saying so). vary: the Vary header of a 200 answer with a body (what it depends on).
 * max_parts: parts a multipart body may have (0: SRV_MAX_PARTS; -1: the image limit + 3). */
struct srv_route {
    const char *path;
    unsigned methods;
    srv_handler handle;
    srv_compute compute;
    srv_compute_parts compute_parts;
    const char *vary;
    unsigned body_methods;
    srv_admit admit;
    int max_parts;
};

/* Rows of the route table (route.c checks it). */
#define SRV_NROUTES 19

/* The route table (route.c). */
extern const struct srv_route srv_routes[SRV_NROUTES];

/* The Allow header of a route's methods ("GET, HEAD, PUT") into buf (n bytes); returns buf. */
const char *srv_route_allow(const struct srv_route *route, char *buf, size_t n);

/* The SRV_* bit of an HTTP method, 0 for any other. */
unsigned srv_method_bit(const char *method);

/* The paths of the routes that take multipart/form-data, ", "-separated, into buf (n bytes,
 * truncated). */
void srv_routes_multipart(char *buf, size_t n);

/* Whether route takes a body with method (a body method of a compute route). */
bool srv_route_takes_body(const struct srv_route *route, const char *method);

/* MHD's access handler: called with the headers, per body chunk, at completion and after a
 * resume (cls: the server; *con_cls: the request). */
enum MHD_Result srv_on_request(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *data,
                               size_t *size, void **con_cls);
/* MHD_OPTION_NOTIFY_COMPLETED: counts and logs the request and drops MHD's reference. */
void srv_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe);

/* ---- the server and a request ------------------------------------------------------------ */

/* Why a request was refused or cut short: segloss_rejections_total{reason} (observe.c names). */
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

/* Upper bounds of the latency histogram buckets (observe.c), +Inf aside. */
#define SRV_NBUCKETS 9
/* Distinct (route, status) pairs counted; statuses come from a short fixed list in practice. */
#define SRV_MAX_STATUS_SERIES 64

/* The counters of /metrics, all guarded by srv->mu. Route index SRV_NROUTES is "other". */
struct srv_metrics {
    struct {
        unsigned route;
        int status;
        uint64_t n;
    } requests[SRV_MAX_STATUS_SERIES];
    int nrequests;
    uint64_t lat_bucket[SRV_NROUTES + 1][SRV_NBUCKETS]; /* non-cumulative; cumulated when shown */
    uint64_t lat_count[SRV_NROUTES + 1];
    double lat_sum[SRV_NROUTES + 1];
    uint64_t bytes_in, bytes_out;
    uint64_t rejections[REJ_COUNT];
    uint64_t next_id; /* request ids generated so far */
};

/* Client addresses with open connections, for --max-per-ip: a chained hash table (srv->mu). */
#define SRV_IP_BUCKETS 256
struct srv_ip {
    unsigned char addr[16]; /* IPv4 (4 bytes) or IPv6 (16 bytes) */
    size_t len;
    unsigned n; /* its open connections */
    struct srv_ip *next;
};

struct srv_server {
    struct srv_config cfg;
    struct slp_limits limits;
    size_t max_body;
    size_t max_inflight; /* --max-inflight-mb in bytes */
    struct sl_pool *pool;
    /* large request buffers kept between requests (bodies, inflated bodies, decoded arrays):
     * owned, freed last (limits.bufs borrows it) */
    struct slp_bufpool *bufs;
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
    struct srv_ip *ips[SRV_IP_BUCKETS]; /* mu */

    struct chal_server *chal; /* challenges (chal_http.c), NULL without --data-dir */
};

enum srv_phase {
    PH_NEW,    /* first call: headers only */
    PH_BODY,   /* receiving the body */
    PH_QUEUED, /* handed to the pool; the next call queues the answer */
};

/* One part of a multipart/form-data body. */
struct srv_part {
    char name[SRV_PART_NAME_MAX + 1];
    struct slp_dynbuf data; /* capped at the body cap */
};

/* One request, its fields grouped by the phase that writes them. */
struct srv_req {
    struct srv_server *srv;
    struct MHD_Connection *conn; /* NULL once MHD completed the request (mu) */
    const struct srv_route *route;
    enum srv_phase phase;
    char params[SRV_MAX_PARAMS][SRV_PARAM_MAX + 1]; /* the route pattern's "{...}" segments */
    int nparams;
    unsigned method_bit; /* SRV_* of the request's method */

    /* what the headers said (first call, I/O thread; read-only afterwards) */
    struct {
        enum srv_encoding enc; /* Content-Encoding */
        uint64_t declared;     /* Content-Length, 0 when absent */
        bool multipart;        /* Content-Type multipart/form-data */
        bool want_json;        /* Accept prefers application/json (weight map) */
        bool want_html;        /* Accept prefers text/html (the /v1/score report) */
        enum srv_encoding
            answer_enc; /* the coding a large answer gets (srv_accept_encoding_pick) */
    } hdr;

    /* the body: the I/O thread's until the job is submitted, then the job's */
    struct {
        struct slp_dynbuf body; /* kept bodies (not a multipart body split as it arrives) */
        size_t reserved;        /* mu: this request's share of srv->body_bytes */
        /* multipart: with the identity coding split as it arrives on the I/O thread (body
         * stays empty), otherwise kept in body and split on the worker after inflating */
        struct MHD_PostProcessor *pp; /* borrows the connection's Content-Type header */
        size_t raw;                   /* body bytes received and split on the I/O thread */
        struct srv_part *parts; /* nparts of them, room for cap (malloc'd, grown by doubling) */
        int nparts, cap;
        size_t parts_len; /* bytes of all parts */
        int fail;         /* 0, or the SL_E* code of a body that could not be kept (413, 503) */
        int fail_status;  /* with fail: the HTTP status of the answer, detail fail_msg (0: by
                           * fail) */
        char fail_msg[224];
        const char *fail_hdr[2]; /* with fail: one extra header name and value (static), or NULL */
    } in;

    /* who sent the request (chal_http.c: set at the headers, read by the job) */
    struct {
        int who;           /* enum chal_who: 0 anonymous, 1 participant, 2 admin */
        int64_t pid;       /* a participant's store id */
        char name[64 + 1]; /* a participant's name */
    } auth;

    /* the hand-off to the job (mu) */
    struct {
        int refs;
        bool pinned; /* its job is splitting the body: see srv_parts_split */
        bool suspended;
        bool done;      /* the job has filled resp */
        bool abandoned; /* answered without the job's result; the job need not compute */
        struct slp_response resp;
        bool resp_gzip;                 /* the job gzipped resp's body (written before `done`) */
        bool resp_zstd;                 /* the job zstd-compressed it instead */
        char hdr_name[32], hdr_val[96]; /* one extra header of the answer ("" when none) */
        struct srv_req *prev;
        struct srv_req *next;
    } job;

    /* the answer queued */
    struct {
        bool close; /* Connection: close (a connection over a limit) */
        int status; /* of the queued answer, 0 before one */
    } out;

    /* access log and metrics: set on the I/O thread, read at completion */
    struct {
        char id[129]; /* X-Request-ID, sanitized, or generated */
        char method[16];
        char path[201];
        char remote[INET6_ADDRSTRLEN];
        double t0; /* monotonic seconds at the first callback */
        uint64_t bytes_in, bytes_out;
        enum srv_reject reject;
    } obs;
};

/* ---- lifecycle.c: a request's references and the suspended list ------------------------- */

/* Drops one reference; frees req (its body, parts, post processor, answer, reservation) when
 * it was the last. Call with srv->mu held. */
void srv_req_unref_locked(struct srv_req *req);
/* Links req into srv->suspended and marks it suspended. Call with srv->mu held. */
void srv_suspended_link(struct srv_server *srv, struct srv_req *req);
/* Unlinks req from srv->suspended and clears its mark. Call with srv->mu held. */
void srv_suspended_unlink(struct srv_server *srv, struct srv_req *req);
/* Whether the server is draining (srv->mu taken and released). */
bool srv_is_draining(struct srv_server *srv);

/* ---- headers.c: header values --------------------------------------------------------- */

/* The value of request header name, or NULL (borrowed from MHD until the request completes). */
const char *srv_header(struct MHD_Connection *conn, const char *name);
/* Whether the request announces a body: chunked, or a Content-Length over 0. */
bool srv_has_body(struct MHD_Connection *conn);
/* Bytes of the request line and headers (approximate: as sent, with CRLFs). */
size_t srv_header_bytes(struct MHD_Connection *conn, const char *method, const char *url);
/* Copies the visible ASCII characters (0x21-0x7e) of an X-Request-ID value (NULL: absent) into
 * out, at most n - 1 of them, NUL-terminated. Returns how many were copied. */
size_t srv_request_id(const char *value, char *out, size_t n);
/* Reads Content-Length (NULL: absent, *n = 0). Returns 0, or SL_ERANGE (*n = UINT64_MAX) when
 * it does not fit in 64 bits (MHD has already refused one that is not a number). */
int srv_content_length(const char *value, uint64_t *n);

/* ---- reply.c: answers ---------------------------------------------------------------------- */

/* Queues an answer. owned: body is malloc'd and MHD frees it (also on failure); otherwise it
 * is static. hdrs: extra headers as name, value, ..., NULL (or NULL). Every 503 and 429 carries
 * Retry-After; a draining server or a connection over a limit adds Connection: close. */
enum MHD_Result srv_reply_hdrs(struct srv_req *req, int status, const char *ctype, void *body,
                               size_t len, bool owned, const char *const *hdrs);
/* srv_reply_hdrs of a static application/json body. */
enum MHD_Result srv_reply_static(struct srv_req *req, int status, const char *json, size_t len);
/* Queues r (its body moves to MHD) with extra headers hdrs (as srv_reply_hdrs; NULL: none). */
enum MHD_Result srv_reply_response(struct srv_req *req, struct slp_response *r,
                                   const char *const *hdrs);
/* Queues an application/problem+json answer; hname: hval is one extra header (hname NULL:
 * none). */
enum MHD_Result srv_reply_problem(struct srv_req *req, int status, const char *detail,
                                  const char *hname, const char *hval);
/* On a worker: compresses a 200 answer of at least 1 KiB with the coding Accept-Encoding picked
 * (zstd or gzip) when it shrinks (sets req->job.resp_zstd or resp_gzip). */
void srv_maybe_gzip(struct srv_req *req, struct slp_response *resp);
/* Takes the job's answer out of req and queues it, with Vary and its Content-Encoding. */
enum MHD_Result srv_reply_job(struct srv_req *req);

/* ---- intake.c and multipart.c: bodies ------------------------------------------------- */

/* The request callback of a route that takes a body, at every call (headers, body bytes,
 * completion, resumption). */
enum MHD_Result srv_body_handle(struct srv_req *req, const char *data, size_t *size);
/* Refuses a body with status (503 or 429) without keeping it: its bytes are read and dropped and
 * the answer goes out once it is complete (see intake.c). Always MHD_YES. */
enum MHD_Result srv_body_refuse(struct srv_req *req, enum srv_reject why, int status,
                                const char *detail);
/* Notes why the body cannot be used and how to answer: an SL_E* code, an HTTP status and a
 * printf-style detail. What was kept is freed and the rest is dropped as it arrives. */
void srv_body_fail(struct srv_req *req, int code, int status, const char *fmt, ...)
    SRV_PRINTF(4, 5);
/* srv_body_fail with the body cap as a 413 detail. */
void srv_body_fail_limit(struct srv_req *req);

/* Starts splitting a multipart/form-data body (first call; ct is its Content-Type). Returns
 * 0, or SL_EMALFORMED with a 400 detail in msg (no boundary, or one MHD cannot use). */
int srv_parts_begin(struct srv_req *req, const char *ct, char *msg, size_t msglen);
/* On the I/O thread: splits body bytes of a multipart body with the identity coding. */
void srv_parts_feed(struct srv_req *req, const char *data, size_t n);
/* The whole body was split: checks it ended with its closing boundary and held a part. */
void srv_parts_end(struct srv_req *req);
/* On a worker: splits the inflated multipart body [body, body + len) into req's parts, pinning
 * req meanwhile. Returns 0, or SL_EMALFORMED/SL_ETOOLARGE/SL_EBUSY with the answer in resp. */
int srv_parts_split(struct srv_req *req, const char *body, size_t len, struct slp_response *resp);
/* On a worker: the route's step for a body split into req's parts. */
void srv_parts_compute(struct srv_req *req, struct slp_response *resp);
/* Frees the parts and their bytes (not the post processor). */
void srv_parts_free(struct srv_req *req);
/* The most parts a multipart body of route may have (its max_parts; see struct srv_route). */
int srv_route_max_parts(const struct srv_server *srv, const struct srv_route *route);

/* ---- limits.c: connections ----------------------------------------------------------------- */

/* MHD_OPTION_NOTIFY_CONNECTION: counts open connections, in all and per client address, and
 * marks a connection accepted over --max-connections or --max-per-ip. */
void srv_on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                       enum MHD_ConnectionNotificationCode toe);
/* At a request's first callback: answers (or refuses the body of) a request on a connection
 * over a limit, or whose request line and headers pass --max-header-kb. Returns true when req
 * is answered or being refused, with MHD's result in *ret. */
bool srv_refuse_over_limit(struct srv_req *req, const char *url, const char *method,
                           enum MHD_Result *ret);
/* Grows req's reservation of body memory to bytes. Returns 0, or SL_EBUSY, changing nothing,
 * when the bodies the server holds would then pass --max-inflight-mb. */
int srv_body_reserve(struct srv_req *req, size_t bytes);
/* Gives back req's reservation of body memory. Call with srv->mu held. */
void srv_body_release_locked(struct srv_req *req);

/* ---- observe.c: metrics and the access log --------------------------------------------- */

/* Seconds on the monotonic clock. */
double srv_mono_s(void);
/* Fills req->obs from its first callback: start time, method, path, request id, client. */
void srv_obs_begin(struct srv_req *req, const char *url, const char *method);
/* At completion: adds req to the counters and writes its access-log line (when on). */
void srv_obs_end(struct srv_req *req, double secs);
/* GET /metrics. */
enum MHD_Result srv_handle_metrics(struct srv_req *req);

/* ---- chal_http.c: the challenge routes (CHALLENGES.md) -------------------------------------- */

/* Opens the challenges' store when --data-dir is set (srv->chal; NULL otherwise) and starts the
 * re-score thread. Returns 0, or -1 with a message in err. */
int chal_server_open(struct srv_server *srv, char *err, size_t errlen);
/* Stops the re-score thread (before the pool stops: it watches the pool's load). */
void chal_rescore_stop(struct chal_server *cs);
/* Closes the store and frees srv->chal (after the pool: jobs use the store). NULL chal fine. */
void chal_server_close(struct srv_server *srv);

/* Admit steps of the body routes: the admin's, and a participant's of the route's challenge. */
int chal_admit_admin(struct srv_req *req);
int chal_admit_participant(struct srv_req *req);
/* Handlers of the routes without a body (I/O thread). */
enum MHD_Result chal_h_list(struct srv_req *req);
enum MHD_Result chal_h_get(struct srv_req *req);
enum MHD_Result chal_h_participants(struct srv_req *req);
enum MHD_Result chal_h_revoke(struct srv_req *req);
enum MHD_Result chal_h_submissions(struct srv_req *req);
enum MHD_Result chal_h_submission(struct srv_req *req);
enum MHD_Result chal_h_final(struct srv_req *req);
enum MHD_Result chal_h_leaderboard(struct srv_req *req);
enum MHD_Result chal_h_rescore(struct srv_req *req);
/* The leaderboard pages (chal_page.c): GET /challenges and GET /challenges/{c}. */
enum MHD_Result chal_h_page_list(struct srv_req *req);
enum MHD_Result chal_h_page(struct srv_req *req);
/* The challenges' /metrics series (submissions by challenge and status) appended to b. */
void chal_metrics(struct srv_server *srv, struct slp_dynbuf *b);
/* Worker steps of the body routes. */
void chal_c_config(struct srv_req *req, const char *body, size_t len, struct slp_response *resp);
void chal_c_reference(struct srv_req *req, const char *body, size_t len, struct slp_response *resp);
void chal_p_reference(struct srv_req *req, const struct slp_parts *parts,
                      struct slp_response *resp);
void chal_c_participant(struct srv_req *req, const char *body, size_t len,
                        struct slp_response *resp);
void chal_c_submit(struct srv_req *req, const char *body, size_t len, struct slp_response *resp);
void chal_p_submit(struct srv_req *req, const struct slp_parts *parts, struct slp_response *resp);
void chal_c_patch(struct srv_req *req, const char *body, size_t len, struct slp_response *resp);

#endif /* SRV_INTERNAL_H */
