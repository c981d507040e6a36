/* observe.c - what seglossd tells about itself: the Prometheus counters of /metrics, request
 * ids, and the access log (one JSON line per completed request on stderr).
 */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "jsonw.h"
#include "segloss.h"
#include "srv_internal.h"

/* Metrics label of requests to no route of the table (the path itself would be unbounded). */
#define ROUTE_OTHER "other"

/* Upper bounds (seconds) of the latency histogram buckets; +Inf is the count. */
static const double lat_bounds[SRV_NBUCKETS] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10};

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

/* Room for every series: SRV_MAX_STATUS_SERIES request counters, (SRV_NROUTES + 1) histograms
 * of SRV_NBUCKETS + 3 lines, REJ_COUNT rejection counters and the gauges, each well under 160
 * bytes. */
#define METRICS_CAP                                                                                \
    (4096 + 160 * (SRV_MAX_STATUS_SERIES + (SRV_NROUTES + 1) * (SRV_NBUCKETS + 3) + REJ_COUNT))

/* An access-log line: the fields are bounded (id 128, path 200, method 15 bytes, each at most
 * 6 bytes escaped), so a line never comes near this. */
#define LOG_LINE_MAX 4096

/* Seconds on the monotonic clock. */
double srv_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *route_label(unsigned r)
{
    return r < SRV_NROUTES ? srv_routes[r].path : ROUTE_OTHER;
}

/* The latency histograms of /metrics, one per route that has seen a request. */
static void render_latency(const struct srv_metrics *m, struct slp_dynbuf *b)
{
    slp_dynbuf_adds(b, "# HELP segloss_request_duration_seconds Time from the first header "
                       "callback to completion.\n"
                       "# TYPE segloss_request_duration_seconds histogram\n");
    for (unsigned r = 0; r <= SRV_NROUTES; r++) {
        if (m->lat_count[r] == 0) {
            continue;
        }
        uint64_t cum = 0;
        for (size_t i = 0; i < SRV_NBUCKETS; i++) {
            cum += m->lat_bucket[r][i];
            slp_dynbuf_addf(b,
                            "segloss_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} "
                            "%llu\n",
                            route_label(r), lat_bounds[i], (unsigned long long)cum);
        }
        slp_dynbuf_addf(b,
                        "segloss_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n"
                        "segloss_request_duration_seconds_sum{route=\"%s\"} %.9g\n"
                        "segloss_request_duration_seconds_count{route=\"%s\"} %llu\n",
                        route_label(r), (unsigned long long)m->lat_count[r], route_label(r),
                        m->lat_sum[r], route_label(r), (unsigned long long)m->lat_count[r]);
    }
}

/* Writes every series of /metrics into b (Prometheus text exposition format 0.0.4). */
static void metrics_render(struct srv_server *srv, struct slp_dynbuf *b)
{
    int queued = 0, running = 0;
    sl_pool_load(srv->pool, &queued, &running);

    pthread_mutex_lock(&srv->mu);
    const struct srv_metrics *m = &srv->m;
    slp_dynbuf_adds(b, "# HELP segloss_requests_total Completed HTTP requests by route and "
                       "status.\n"
                       "# TYPE segloss_requests_total counter\n");
    for (int i = 0; i < m->nrequests; i++) {
        slp_dynbuf_addf(b, "segloss_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                        route_label(m->requests[i].route), m->requests[i].status,
                        (unsigned long long)m->requests[i].n);
    }
    render_latency(m, b);
    slp_dynbuf_adds(b, "# HELP segloss_rejections_total Requests refused or cut short, by "
                       "reason.\n"
                       "# TYPE segloss_rejections_total counter\n");
    for (int k = 1; k < REJ_COUNT; k++) {
        slp_dynbuf_addf(b, "segloss_rejections_total{reason=\"%s\"} %llu\n", reject_names[k],
                        (unsigned long long)m->rejections[k]);
    }
    slp_dynbuf_addf(b,
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
                    (unsigned long long)m->bytes_in, (unsigned long long)m->bytes_out,
                    srv->inflight, srv->nconns, srv->body_bytes);
    pthread_mutex_unlock(&srv->mu);
    slp_dynbuf_addf(b,
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

/* GET /metrics: every series, rendered into a capped dynbuf. */
enum MHD_Result srv_handle_metrics(struct srv_req *req)
{
    struct slp_dynbuf b;
    slp_dynbuf_init(&b, METRICS_CAP + (req->srv->chal ? (size_t)16 << 20 : 0));
    metrics_render(req->srv, &b);
    if (req->srv->chal && !b.err) {
        /* challenges: as many series as challenges, so in a buffer of their own */
        struct slp_dynbuf c;
        slp_dynbuf_init(&c, (size_t)16 << 20);
        chal_metrics(req->srv, &c);
        if (c.err) {
            b.err = c.err;
        } else if (c.len) {
            slp_dynbuf_add(&b, c.data, c.len);
        }
        slp_dynbuf_free(&c);
    }
    if (b.err == SL_ETOOLARGE) {
        /* METRICS_CAP bounds every series; reaching it is a bug, not bad input */
        fprintf(stderr, "seglossd: internal: /metrics output over %d bytes\n", METRICS_CAP);
    } else if (b.err) {
        slp_dynbuf_free(&b);
        req->obs.reject = REJ_OUT_OF_MEMORY;
        return srv_reply_problem(req, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory", NULL, NULL);
    }
    size_t len = 0;
    char *text = slp_dynbuf_take(&b, &len);
    if (!text) {
        req->obs.reject = REJ_OUT_OF_MEMORY;
        return srv_reply_problem(req, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory", NULL, NULL);
    }
    return srv_reply_hdrs(req, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text, len,
                          true, NULL);
}

/* Adds a completed request to the counters. Call with srv->mu held. */
static void metrics_record_locked(struct srv_server *srv, const struct srv_req *req, double secs)
{
    struct srv_metrics *m = &srv->m;
    unsigned r = req->route ? (unsigned)(req->route - srv_routes) : SRV_NROUTES;
    if (req->out.status > 0) {
        int i = 0;
        while (i < m->nrequests &&
               !(m->requests[i].route == r && m->requests[i].status == req->out.status)) {
            i++;
        }
        if (i == m->nrequests && i < SRV_MAX_STATUS_SERIES) {
            m->requests[i].route = r;
            m->requests[i].status = req->out.status;
            m->requests[i].n = 0;
            m->nrequests++;
        }
        if (i < m->nrequests) {
            m->requests[i].n++;
        }
    }
    size_t b = 0;
    while (b < SRV_NBUCKETS && secs > lat_bounds[b]) {
        b++;
    }
    if (b < SRV_NBUCKETS) {
        m->lat_bucket[r][b]++;
    }
    m->lat_count[r]++;
    m->lat_sum[r] += secs;
    m->bytes_in += req->obs.bytes_in;
    m->bytes_out += req->obs.bytes_out;
    if (req->obs.reject != REJ_NONE) {
        m->rejections[req->obs.reject]++;
    }
}

/* splitmix64's finalizer (Steele, Lea and Flood 2014): spreads a counter over 64 bits. */
static uint64_t mix64(uint64_t x)
{
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Sets req->obs.id from the X-Request-ID header (srv_request_id); when none is given (or
 * nothing is left), 16 hex digits from the server's request counter mixed with the wall-clock
 * time. */
static void request_id_init(struct srv_req *req, const char *given)
{
    char *id = req->obs.id;
    if (srv_request_id(given, id, sizeof(req->obs.id)) > 0) {
        return;
    }
    struct srv_server *srv = req->srv;
    pthread_mutex_lock(&srv->mu);
    uint64_t seq = ++srv->m.next_id;
    pthread_mutex_unlock(&srv->mu);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t t = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
    snprintf(id, sizeof(req->obs.id), "%016llx", (unsigned long long)mix64(seq ^ mix64(t)));
}

/* Writes the access-log line of a completed request to stderr in one write(2), so lines from
 * different I/O threads never interleave. */
static void access_log_write(const struct srv_req *req, double secs)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);

    struct slp_dynbuf b;
    slp_dynbuf_init(&b, LOG_LINE_MAX);
    slp_dynbuf_addf(&b, "{\"ts\":\"%s.%03ldZ\",\"id\":", when, ts.tv_nsec / 1000000);
    slp_json_add_str(&b, req->obs.id, SLP_JSON_ASCII);
    slp_dynbuf_adds(&b, ",\"method\":");
    slp_json_add_str(&b, req->obs.method, SLP_JSON_ASCII);
    slp_dynbuf_adds(&b, ",\"path\":");
    slp_json_add_str(&b, req->obs.path, SLP_JSON_ASCII);
    slp_dynbuf_addf(&b,
                    ",\"status\":%d,\"ms\":%.3f,\"bytes_in\":%llu,\"bytes_out\":%llu,"
                    "\"remote\":\"%s\"}\n",
                    req->out.status, secs * 1000.0, (unsigned long long)req->obs.bytes_in,
                    (unsigned long long)req->obs.bytes_out, req->obs.remote);
    if (!b.err) {
        ssize_t w = write(STDERR_FILENO, b.data, b.len);
        (void)w; /* nowhere to report a failed log write */
    }
    slp_dynbuf_free(&b);
}

/* Notes a new request for the log and the metrics (start, method, path, id, client). */
void srv_obs_begin(struct srv_req *req, const char *url, const char *method)
{
    req->obs.t0 = srv_mono_s();
    snprintf(req->obs.method, sizeof(req->obs.method), "%s", method ? method : "");
    snprintf(req->obs.path, sizeof(req->obs.path), "%s", url ? url : "");
    request_id_init(req, srv_header(req->conn, "X-Request-ID"));
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    if (sa && sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
                  req->obs.remote, sizeof(req->obs.remote));
    } else if (sa && sa->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                  req->obs.remote, sizeof(req->obs.remote));
    }
}

/* Counts a completed request and writes its access-log line when the log is on. */
void srv_obs_end(struct srv_req *req, double secs)
{
    struct srv_server *srv = req->srv;
    if (srv->cfg.access_log) {
        access_log_write(req, secs);
    }
    pthread_mutex_lock(&srv->mu);
    metrics_record_locked(srv, req, secs);
    pthread_mutex_unlock(&srv->mu);
}
