/* route.c - the route table and MHD's request callbacks: every request is routed here, checked
 * against the connection and header limits (limits.c), and either answered by its route's
 * handler at completion or, for a route that takes a body, passed to intake.c at every call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "segloss.h"
#include "srv_internal.h"

static enum MHD_Result handle_healthz(struct srv_req *req);
static enum MHD_Result handle_readyz(struct srv_req *req);
static enum MHD_Result handle_openapi(struct srv_req *req);
static enum MHD_Result handle_catalog(struct srv_req *req);
static void compute_score(struct srv_req *req, const char *body, size_t len,
                          struct slp_response *resp);
static void compute_score_parts(struct srv_req *req, const struct slp_parts *parts,
                                struct slp_response *resp);
static void compute_weight_map(struct srv_req *req, const char *body, size_t len,
                               struct slp_response *resp);

#define GH (SRV_GET | SRV_HEAD)

/* Every path the API names, implemented or not: a new route is one row here. The challenge
 * routes (CHALLENGES.md) are chal_http.c's; their bodies may have a part per image. */
const struct srv_route srv_routes[SRV_NROUTES] = {
    {"/v1/score", SRV_POST, NULL, compute_score, compute_score_parts, "Accept, Accept-Encoding", 0,
     NULL, 0},
    {"/v1/weight-map", SRV_POST, NULL, compute_weight_map, NULL, "Accept, Accept-Encoding", 0, NULL,
     0},
    {"/v1/catalog", GH, handle_catalog, NULL, NULL, NULL, 0, NULL, 0},
    {"/healthz", GH, handle_healthz, NULL, NULL, NULL, 0, NULL, 0},
    {"/readyz", GH, handle_readyz, NULL, NULL, NULL, 0, NULL, 0},
    {"/metrics", GH, srv_handle_metrics, NULL, NULL, NULL, 0, NULL, 0},
    {"/openapi.json", GH, handle_openapi, NULL, NULL, NULL, 0, NULL, 0},
    {"/v1/challenges", GH, chal_h_list, NULL, NULL, NULL, 0, NULL, 0},
    {"/v1/challenges/{c}", GH | SRV_PUT, chal_h_get, chal_c_config, NULL, NULL, SRV_PUT,
     chal_admit_admin, 0},
    {"/v1/challenges/{c}/reference", SRV_PUT, NULL, chal_c_reference, chal_p_reference, NULL,
     SRV_PUT, chal_admit_admin, -1},
    {"/v1/challenges/{c}/participants", GH | SRV_POST, chal_h_participants, chal_c_participant,
     NULL, NULL, SRV_POST, chal_admit_admin, 0},
    {"/v1/challenges/{c}/participants/{name}", SRV_DELETE, chal_h_revoke, NULL, NULL, NULL, 0, NULL,
     0},
    {"/v1/challenges/{c}/submissions", GH | SRV_POST, chal_h_submissions, chal_c_submit,
     chal_p_submit, NULL, SRV_POST, chal_admit_participant, -1},
    {"/v1/challenges/{c}/submissions/{id}", GH | SRV_PATCH, chal_h_submission, chal_c_patch, NULL,
     NULL, SRV_PATCH, chal_admit_admin, 0},
    {"/v1/challenges/{c}/submissions/{id}/final", SRV_PUT | SRV_DELETE, chal_h_final, NULL, NULL,
     NULL, 0, NULL, 0},
    {"/v1/challenges/{c}/leaderboard", GH, chal_h_leaderboard, NULL, NULL, NULL, 0, NULL, 0},
    {"/v1/challenges/{c}/rescore", GH | SRV_POST, chal_h_rescore, NULL, NULL, NULL, 0, NULL, 0},
    {"/challenges", GH, chal_h_page_list, NULL, NULL, NULL, 0, NULL, 0},
    {"/challenges/{c}", GH, chal_h_page, NULL, NULL, NULL, 0, NULL, 0},
};

/* Whether c may stand in a path parameter: [A-Za-z0-9._-]. */
static bool param_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

/* Whether url matches pattern, its "{...}" segments captured into req->params (req NULL: only
 * match). */
static bool route_match(const char *pattern, const char *url, struct srv_req *req)
{
    int np = 0;
    while (*pattern && *url) {
        if (*pattern == '{') {
            size_t n = 0;
            while (url[n] && url[n] != '/' && param_char(url[n])) {
                n++;
            }
            if (n == 0 || n > SRV_PARAM_MAX || (url[n] && url[n] != '/') || np == SRV_MAX_PARAMS) {
                return false;
            }
            if (req) {
                memcpy(req->params[np], url, n);
                req->params[np][n] = '\0';
            }
            np++;
            url += n;
            pattern = strchr(pattern, '}') + 1;
        } else if (*pattern++ != *url++) {
            return false;
        }
    }
    if (*pattern || *url) {
        return false;
    }
    if (req) {
        req->nparams = np;
    }
    return true;
}

static const struct srv_route *route_find(const char *url, struct srv_req *req)
{
    for (size_t i = 0; i < SRV_NROUTES; i++) {
        if (route_match(srv_routes[i].path, url, NULL)) {
            route_match(srv_routes[i].path, url, req);
            return &srv_routes[i];
        }
    }
    return NULL;
}

/* The SRV_* bit of method; 0 for methods no route takes. */
unsigned srv_method_bit(const char *method)
{
    if (strcmp(method, MHD_HTTP_METHOD_GET) == 0) {
        return SRV_GET;
    }
    if (strcmp(method, MHD_HTTP_METHOD_HEAD) == 0) {
        return SRV_HEAD;
    }
    if (strcmp(method, MHD_HTTP_METHOD_POST) == 0) {
        return SRV_POST;
    }
    if (strcmp(method, MHD_HTTP_METHOD_PUT) == 0) {
        return SRV_PUT;
    }
    if (strcmp(method, MHD_HTTP_METHOD_DELETE) == 0) {
        return SRV_DELETE;
    }
    if (strcmp(method, "PATCH") == 0) {
        return SRV_PATCH;
    }
    return 0;
}

/* The Allow header value of route's methods, into buf. */
const char *srv_route_allow(const struct srv_route *route, char *buf, size_t n)
{
    static const char *const names[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"};
    size_t len = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (route->methods & (1u << i)) {
            int k = snprintf(buf + len, n - len, "%s%s", len ? ", " : "", names[i]);
            len += k > 0 && (size_t)k < n - len ? (size_t)k : 0;
        }
    }
    return buf;
}

/* Whether method on route (may be NULL) brings a body to compute. */
bool srv_route_takes_body(const struct srv_route *route, const char *method)
{
    if (!route || !route->compute) {
        return false;
    }
    unsigned body = route->body_methods ? route->body_methods : SRV_POST;
    return (body & srv_method_bit(method)) != 0;
}

/* The paths that take multipart/form-data, comma-separated, into buf (n bytes). */
void srv_routes_multipart(char *buf, size_t n)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < SRV_NROUTES && len < n; i++) {
        if (srv_routes[i].compute_parts) {
            int k = snprintf(buf + len, n - len, "%s%s", len ? ", " : "", srv_routes[i].path);
            len += k > 0 ? (size_t)k : 0;
        }
    }
}

/* ---- routes without a body ------------------------------------------------------------------ */

static const char json_ok[] = "{\"status\":\"ok\"}";
static const char json_ready[] = "{\"status\":\"ready\"}";

static enum MHD_Result handle_healthz(struct srv_req *req)
{
    return srv_reply_static(req, MHD_HTTP_OK, json_ok, sizeof(json_ok) - 1);
}

/* The reason /readyz is 503, or NULL when the server takes work. */
static const char *not_ready(struct srv_server *srv)
{
    if (srv_is_draining(srv)) {
        return "the server is shutting down";
    }
    int queued;
    sl_pool_load(srv->pool, &queued, NULL);
    if (queued >= srv->cfg.queue) {
        return "the compute queue is full";
    }
    pthread_mutex_lock(&srv->mu);
    /* a body of SRV_BODY_FIRST_CHUNK bytes would not fit */
    bool full = srv->max_inflight - srv->body_bytes < SRV_BODY_FIRST_CHUNK;
    pthread_mutex_unlock(&srv->mu);
    return full ? "the server holds as many request bodies as it may" : NULL;
}

static enum MHD_Result handle_readyz(struct srv_req *req)
{
    const char *why = not_ready(req->srv);
    if (!why) {
        return srv_reply_static(req, MHD_HTTP_OK, json_ready, sizeof(json_ready) - 1);
    }
    enum MHD_Result ret = srv_reply_problem(req, MHD_HTTP_SERVICE_UNAVAILABLE, why, NULL, NULL);
    req->obs.reject = REJ_NONE; /* a readiness answer, not a refused request */
    return ret;
}

static enum MHD_Result handle_catalog(struct srv_req *req)
{
    size_t len = 0;
    char *doc = slp_catalog_json(&len);
    if (!doc) {
        return srv_reply_problem(req, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory", NULL, NULL);
    }
    return srv_reply_hdrs(req, MHD_HTTP_OK, "application/json", doc, len, true, NULL);
}

static enum MHD_Result handle_openapi(struct srv_req *req)
{
    size_t len;
    const char *doc = slp_openapi_json(&len);
    return srv_reply_static(req, MHD_HTTP_OK, doc, len);
}

/* ---- the worker steps of routes with a body ---------------------------------------------------
 */

/* The form of req's /v1/score answer: the HTML report when Accept prefers text/html. */
static enum slp_answer_form score_form(const struct srv_req *req)
{
    return req->hdr.want_html ? SLP_ANSWER_HTML : SLP_ANSWER_JSON;
}

/* /v1/score, application/json: JSON, or its HTML report (rendered here, on the worker). */
static void compute_score(struct srv_req *req, const char *body, size_t len,
                          struct slp_response *resp)
{
    slp_score_request_as(body, len, &req->srv->limits, req->srv->pool, score_form(req), resp);
}

/* /v1/score, multipart/form-data: as compute_score. */
static void compute_score_parts(struct srv_req *req, const struct slp_parts *parts,
                                struct slp_response *resp)
{
    slp_score_multipart_as(parts, &req->srv->limits, req->srv->pool, score_form(req), resp);
}

/* /v1/weight-map: .npy, or JSON when Accept prefers it. */
static void compute_weight_map(struct srv_req *req, const char *body, size_t len,
                               struct slp_response *resp)
{
    slp_weight_map_request(body, len, &req->srv->limits, req->srv->pool, req->hdr.want_json, resp);
}

/* ---- MHD callbacks -------------------------------------------------------------------------- */

/* Answers a request whose route does not read a body: 404, 405 or the route's handler. */
static enum MHD_Result respond(struct srv_req *req, const char *url, const char *method)
{
    const struct srv_route *route = req->route;
    char detail[320];
    if (!route) {
        snprintf(detail, sizeof(detail), "no such path: %.200s", url);
        return srv_reply_problem(req, MHD_HTTP_NOT_FOUND, detail, NULL, NULL);
    }
    if (!route->handle && !route->compute) {
        snprintf(detail, sizeof(detail), "%s is not implemented in this version", route->path);
        return srv_reply_problem(req, MHD_HTTP_NOT_FOUND, detail, NULL, NULL);
    }
    if (!(route->methods & srv_method_bit(method)) || !route->handle) {
        char allow[64];
        srv_route_allow(route, allow, sizeof allow);
        snprintf(detail, sizeof(detail), "method %.40s is not allowed on %s; allowed: %s", method,
                 route->path, allow);
        return srv_reply_problem(req, MHD_HTTP_METHOD_NOT_ALLOWED, detail, MHD_HTTP_HEADER_ALLOW,
                                 allow);
    }
    return route->handle(req);
}

/* A new request at its first callback: counted, noted for the log, routed. */
static struct srv_req *req_new(struct srv_server *srv, struct MHD_Connection *conn, const char *url,
                               const char *method)
{
    struct srv_req *req = calloc(1, sizeof(*req));
    if (!req) {
        return NULL;
    }
    req->srv = srv;
    req->conn = conn;
    req->job.refs = 1; /* MHD's, dropped in srv_on_completed */
    srv_obs_begin(req, url, method);
    pthread_mutex_lock(&srv->mu);
    srv->inflight++;
    pthread_mutex_unlock(&srv->mu);
    req->route = route_find(url, req);
    req->method_bit = srv_method_bit(method);
    return req;
}

/* MHD calls this first with the headers, then per body chunk, then once the request is
 * complete (and once more after a resume). An answer queued at the first call makes MHD skip
 * the body and close the connection, so that is done only to refuse a body; everything else
 * is answered at the completing call and keeps the connection alive. */
enum MHD_Result srv_on_request(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *data,
                               size_t *size, void **con_cls)
{
    struct srv_req *req = *con_cls;
    (void)version;
    if (req) {
        req->obs.bytes_in += *size;
        if (req->phase != PH_NEW) {
            return srv_body_handle(req, data, size);
        }
        if (*size > 0) {
            *size = 0; /* a body nobody asked for (only when MHD did not say one comes) */
            return MHD_YES;
        }
        return respond(req, url, method);
    }
    req = req_new(cls, conn, url, method);
    if (!req) {
        return MHD_NO;
    }
    *con_cls = req;
    enum MHD_Result ret;
    if (srv_refuse_over_limit(req, url, method, &ret)) {
        return ret;
    }
    if (srv_route_takes_body(req->route, method)) {
        return srv_body_handle(req, data, size);
    }
    if (srv_has_body(conn)) {
        return respond(req, url, method);
    }
    return MHD_YES;
}

/* MHD_OPTION_NOTIFY_COMPLETED: the request is over (answered, timed out or cut off). */
void srv_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    struct srv_server *srv = cls;
    struct srv_req *req = *con_cls;
    (void)conn;
    if (!req) {
        return;
    }
    *con_cls = NULL;
    double secs = srv_mono_s() - req->obs.t0;
    if (toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED && req->obs.reject == REJ_NONE) {
        req->obs.reject = REJ_IDLE_TIMEOUT;
    }
    srv_obs_end(req, secs);
    pthread_mutex_lock(&srv->mu);
    if (req->job.suspended) {
        /* MHD 0.9.75 never closes a suspended connection, but should one go, the job must
         * not resume it. */
        srv_suspended_unlink(srv, req);
        req->job.abandoned = true;
    }
    req->conn = NULL;
    srv->inflight--;
    srv_req_unref_locked(req);
    pthread_mutex_unlock(&srv->mu);
}
