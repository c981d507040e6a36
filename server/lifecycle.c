/* lifecycle.c - seglossd's HTTP server from start to stop (the daemon, the worker pool, the
 * drain), and a request's references and place in the list of suspended requests.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "bufpool.h"
#include "segloss.h"
#include "srv_internal.h"

/* ---- requests ------------------------------------------------------------------------------ */

/* Called with srv->mu held (srv_req_unref_locked). */
static void req_free(struct srv_req *req)
{
    srv_body_release_locked(req);
    /* the post processor frees only what it owns: safe after the connection is gone */
    MHD_destroy_post_processor(req->in.pp);
    srv_parts_free(req);
    slp_dynbuf_free(&req->in.body);
    slp_response_free(&req->job.resp);
    free(req);
}

/* Drops one reference (srv->mu held); the last one frees req and all it owns. */
void srv_req_unref_locked(struct srv_req *req)
{
    if (--req->job.refs == 0) {
        req_free(req);
    }
}

/* Puts req on the list of suspended requests (srv->mu held). */
void srv_suspended_link(struct srv_server *srv, struct srv_req *req)
{
    req->job.prev = NULL;
    req->job.next = srv->suspended;
    if (srv->suspended) {
        srv->suspended->job.prev = req;
    }
    srv->suspended = req;
    req->job.suspended = true;
}

/* Takes req off the list of suspended requests (srv->mu held). */
void srv_suspended_unlink(struct srv_server *srv, struct srv_req *req)
{
    if (req->job.prev) {
        req->job.prev->job.next = req->job.next;
    } else {
        srv->suspended = req->job.next;
    }
    if (req->job.next) {
        req->job.next->job.prev = req->job.prev;
    }
    req->job.prev = req->job.next = NULL;
    req->job.suspended = false;
}

/* Whether srv_server_drain was called (takes srv->mu). */
bool srv_is_draining(struct srv_server *srv)
{
    pthread_mutex_lock(&srv->mu);
    bool draining = srv->draining;
    pthread_mutex_unlock(&srv->mu);
    return draining;
}

/* ---- the server ----------------------------------------------------------------------------- */

/* The limits proto/ applies to one request, from the flags. */
static void limits_from_config(struct slp_limits *lim, const struct srv_config *cfg)
{
    slp_limits_default(lim);
    lim->max_elements = cfg->max_pixels;
    lim->max_images = cfg->max_images;
    lim->max_classes = cfg->max_classes;
    lim->max_depth = cfg->max_spec_depth;
    lim->max_json_values = cfg->max_json_values;
    lim->max_specs = cfg->max_specs;
    lim->max_array_bytes = (size_t)cfg->max_pixels * 8;
}

/* The address to listen on (cfg->bind, cfg->port) into ss, and MHD's flag for it into *flags.
 * Returns 0, or SL_EINVAL with a message. */
static int listen_address(const struct srv_config *cfg, struct sockaddr_storage *ss,
                          unsigned *flags, char *err, size_t errlen)
{
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, cfg->bind, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)cfg->port);
        return 0;
    }
    if (inet_pton(AF_INET6, cfg->bind, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)cfg->port);
        *flags |= MHD_USE_IPv6;
        return 0;
    }
    snprintf(err, errlen, "'%s' is not an IP address literal", cfg->bind);
    return SL_EINVAL;
}

/* Starts MHD's daemon for srv. Returns 0, or SL_EBUSY (most often: the port is taken) with a
 * message. */
static int daemon_start(struct srv_server *srv, char *err, size_t errlen)
{
    const struct srv_config *cfg = &srv->cfg;
    struct sockaddr_storage ss;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    int rc = listen_address(cfg, &ss, &flags, err, errlen);
    if (rc != 0) {
        return rc;
    }
    errno = 0;
    srv->daemon = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, srv_on_request, srv, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)SRV_IO_THREADS,
        MHD_OPTION_NOTIFY_COMPLETED, srv_on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION,
        srv_on_connection, srv, MHD_OPTION_CONNECTION_TIMEOUT, cfg->idle_timeout,
        /* hard limits at twice the flags: up to them limits.c answers problem+json */
        MHD_OPTION_CONNECTION_LIMIT, 2 * cfg->max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        2 * cfg->max_per_ip, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)cfg->max_header_kb * 2048,
        MHD_OPTION_END);
    if (!srv->daemon) {
        snprintf(err, errlen, "cannot listen on %s port %u%s%s", cfg->bind, cfg->port,
                 errno ? ": " : "", errno ? strerror(errno) : "");
        return SL_EBUSY;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info && info->port ? info->port : cfg->port;
    return 0;
}

/* Starts the pool and the daemon; 0 and the new server in *out, or SL_E* with err
 * (see server.h). */
int srv_server_new(const struct srv_config *cfg, struct srv_server **out, char *err, size_t errlen)
{
    int rc = SL_ENOMEM;
    *out = NULL;
    struct srv_server *srv = calloc(1, sizeof(*srv));
    if (!srv) {
        snprintf(err, errlen, "out of memory");
        return SL_ENOMEM;
    }
    srv->cfg = *cfg;
    srv->max_body = (size_t)cfg->max_body_mb * SRV_MIB;
    srv->max_inflight = (size_t)cfg->max_inflight_mb * SRV_MIB;
    limits_from_config(&srv->limits, cfg);
    if (pthread_mutex_init(&srv->mu, NULL) != 0) {
        snprintf(err, errlen, "cannot create a mutex");
        goto free_srv;
    }
    if (pthread_cond_init(&srv->unpinned, NULL) != 0) {
        snprintf(err, errlen, "cannot create a condition variable");
        pthread_mutex_destroy(&srv->mu);
        goto free_srv;
    }
    /* blocks from 256 KiB (glibc may map such blocks afresh) up to --max-body-mb each, at most
     * --max-inflight-mb in all */
    srv->bufs = slp_bufpool_new(SRV_POOL_MIN_BLOCK, srv->max_body, srv->max_inflight);
    if (!srv->bufs) {
        snprintf(err, errlen, "out of memory");
        goto destroy_locks;
    }
    srv->limits.bufs = srv->bufs;
    srv->pool = sl_pool_new(cfg->threads, cfg->queue);
    if (!srv->pool) {
        snprintf(err, errlen, "cannot start %d compute workers", cfg->threads);
        goto free_bufs;
    }
    if (chal_server_open(srv, err, errlen) != 0) {
        rc = SL_EINVAL;
        goto free_pool;
    }
    rc = daemon_start(srv, err, errlen);
    if (rc != 0) {
        goto close_chal;
    }
    *out = srv;
    return 0;

close_chal:
    chal_server_close(srv);
free_pool:
    sl_pool_free(srv->pool);
free_bufs:
    slp_bufpool_free(srv->bufs);
destroy_locks:
    pthread_cond_destroy(&srv->unpinned);
    pthread_mutex_destroy(&srv->mu);
free_srv:
    free(srv);
    return rc;
}

/* The port actually bound. */
unsigned srv_server_port(const struct srv_server *srv)
{
    return srv->port;
}

/* The listen socket stays open until the daemon stops: MHD_quiesce_daemon on an epoll daemon
 * with its own threads races with the I/O threads over the listen socket's epoll registration
 * and can abort the process (libmicrohttpd 0.9.75, seen here about once in seven test runs), so
 * new bodies are refused with 503 + Retry-After and Connection: close instead (intake.c). */
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

/* Resumes every suspended connection as abandoned (answered 503 by its I/O thread)
 * and forbids new suspensions. Returns how many were resumed. */
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
        srv_suspended_unlink(srv, req);
        req->job.abandoned = true;
        MHD_resume_connection(req->conn);
        n++;
    }
    pthread_mutex_unlock(&srv->mu);
    return n;
}

/* Stops the daemon, finishes the pool, frees srv. NULL is fine. */
void srv_server_free(struct srv_server *srv)
{
    if (!srv) {
        return;
    }
    /* MHD_stop_daemon must not meet a suspended connection, and no job may call into MHD
     * once it is stopped: both hold after this. */
    srv_server_abandon(srv);
    MHD_stop_daemon(srv->daemon);
    /* the re-score thread watches the pool: it stops first; the store closes after the jobs */
    if (srv->chal) {
        chal_rescore_stop(srv->chal);
    }
    /* Jobs still queued see `stopping` and skip their work; a running one finishes. */
    sl_pool_free(srv->pool);
    chal_server_close(srv);
    slp_bufpool_free(srv->bufs); /* every request and reference is gone */
    pthread_cond_destroy(&srv->unpinned);
    pthread_mutex_destroy(&srv->mu);
    free(srv);
}
