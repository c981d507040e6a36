/* limits.c - the limits a request meets before its body: open connections in all
 * (--max-connections) and per client address (--max-per-ip), the size of the request head
 * (--max-header-kb), and the body memory the server holds at once (--max-inflight-mb).
 *
 * MHD holds the hard connection and header limits at twice the flags (see lifecycle.c); between
 * the two the client gets a problem+json answer instead of a closed socket.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "segloss.h"
#include "srv_internal.h"

/* One accepted connection (MHD's socket context): its address entry, and the limit it passed
 * when it was accepted (REJ_NONE: none). Such a connection gets a problem+json answer to its
 * first request and is closed. */
struct srv_conn {
    struct srv_ip *ip; /* NULL when the address is unknown or could not be counted */
    enum srv_reject over;
};

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
    return h % SRV_IP_BUCKETS;
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

/* MHD's connection notifications: counts connections, marks those over a limit. */
void srv_on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
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

/* Answers a request on a connection accepted over --max-connections (503) or --max-per-ip
 * (429). A body that comes with it is read and dropped first (srv_body_refuse), so that the
 * client reads the answer. */
static enum MHD_Result refuse_connection(struct srv_req *req, enum srv_reject over,
                                         const char *method)
{
    struct srv_server *srv = req->srv;
    char detail[200];
    int status;
    if (over == REJ_CONNECTIONS) {
        snprintf(detail, sizeof(detail),
                 "the server has as many open connections as it may (--max-connections %u); "
                 "retry later",
                 srv->cfg.max_connections);
        status = MHD_HTTP_SERVICE_UNAVAILABLE;
    } else {
        snprintf(detail, sizeof(detail),
                 "too many open connections from %.46s (--max-per-ip %u); reuse a "
                 "connection or retry later",
                 req->obs.remote, srv->cfg.max_per_ip);
        status = MHD_HTTP_TOO_MANY_REQUESTS;
    }
    req->obs.reject = over;
    req->out.close = true;
    if (srv_route_takes_body(req->route, method) && srv_has_body(req->conn)) {
        return srv_body_refuse(req, over, status, detail);
    }
    return srv_reply_problem(req, status, detail, NULL, NULL);
}

/* Answers a request over a connection or header limit; true when it did. */
bool srv_refuse_over_limit(struct srv_req *req, const char *url, const char *method,
                           enum MHD_Result *ret)
{
    struct srv_server *srv = req->srv;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    const struct srv_conn *c = ci ? ci->socket_context : NULL;
    if (c && (c->over == REJ_CONNECTIONS || c->over == REJ_PER_IP)) {
        *ret = refuse_connection(req, c->over, method);
        return true;
    }
    size_t bytes = srv_header_bytes(req->conn, method, url);
    if (bytes > (size_t)srv->cfg.max_header_kb * 1024) {
        char detail[200];
        snprintf(detail, sizeof(detail),
                 "request line and headers take about %zu bytes, over the limit of %u KiB "
                 "(--max-header-kb)",
                 bytes, srv->cfg.max_header_kb);
        req->obs.reject = REJ_HEADERS;
        req->out.close = true;
        *ret = srv_reply_problem(req, MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE, detail, NULL, NULL);
        return true;
    }
    return false;
}

/* The request gets a 503 rather than the process an unbounded amount of memory (connections x
 * --max-body-mb). */
int srv_body_reserve(struct srv_req *req, size_t bytes)
{
    struct srv_server *srv = req->srv;
    int rc = 0;
    pthread_mutex_lock(&srv->mu);
    if (bytes > req->in.reserved) {
        if (bytes - req->in.reserved > srv->max_inflight - srv->body_bytes) {
            rc = SL_EBUSY;
        } else {
            srv->body_bytes += bytes - req->in.reserved;
            req->in.reserved = bytes;
        }
    }
    pthread_mutex_unlock(&srv->mu);
    return rc;
}

/* Gives back req's reservation of body memory (srv->mu held). */
void srv_body_release_locked(struct srv_req *req)
{
    req->srv->body_bytes -= req->in.reserved;
    req->in.reserved = 0;
}
