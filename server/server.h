/* server.h - seglossd: configuration, the HTTP server and the header values it parses.
 *
 * main.c owns the process (signals, the drain loop); config.c reads flags and environment;
 * the HTTP front end is split by responsibility (srv_internal.h lists its files).
 *
 * Errors, for every server/ function that can fail: it returns 0, or a negative SL_E* code of
 * lib/segloss.h with a message for the user in a caller-provided buffer (config.c, which talks
 * to the command line, prints its messages on stderr instead). Predicates return bool. The
 * MHD callbacks return MHD's enum MHD_Result. Ownership: what a _new makes, its _free frees;
 * every _free accepts NULL.
 */
#ifndef SRV_SERVER_H
#define SRV_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* libmicrohttpd I/O threads (MHD_OPTION_THREAD_POOL_SIZE). Measured with wrk on a 2-core
 * machine against a trivial compute stub, 1 vs 2: GET /healthz 147k vs 205k req/s; POST
 * /v1/score 1 KiB bodies 58k vs 78k req/s (32 connections); p99 of small scores while two
 * clients upload 64 MiB bodies 26.9 vs 12.4 ms. Two it is; -DSRV_IO_THREADS=N overrides. */
#ifndef SRV_IO_THREADS
#define SRV_IO_THREADS 2
#endif

/* ---- configuration ---------------------------------------------------------------------- */

struct srv_config {
    unsigned port;               /* 0: ephemeral */
    char bind[64];               /* IPv4 or IPv6 literal */
    int threads;                 /* compute workers; 0: one per online core */
    int queue;                   /* compute queue capacity (jobs waiting for a worker) */
    uint64_t max_body_mb;        /* request body cap, MiB, before and after Content-Encoding */
    int64_t max_pixels;          /* elements per array; arrays may hold 8 bytes per element */
    unsigned drain_seconds;      /* how long shutdown waits for in-flight requests */
    unsigned max_connections;    /* open connections; MHD holds a hard limit at twice this */
    unsigned max_per_ip;         /* open connections per client address (0: no limit); MHD's
                                  * hard limit is twice this */
    unsigned idle_timeout;       /* seconds of silence before MHD closes a connection; a
                                  * suspended connection (compute running) never times out */
    unsigned max_header_kb;      /* request line + headers; MHD's per-connection memory pool is
                                  * twice this */
    bool access_log;             /* one JSON line per completed request on stderr */
    uint64_t max_inflight_mb;    /* MiB of request bodies held at once (>= max_body_mb) */
    int64_t max_images;          /* images N per request */
    int64_t max_classes;         /* classes or channels C per request */
    int max_spec_depth;          /* JSON nesting depth */
    int64_t max_json_values;     /* JSON values per body (jansson's memory) */
    int max_specs;               /* entries of "losses", and of "metrics" */
    char data_dir[1024];         /* challenges' state (CHALLENGES.md); "" turns challenges off */
    char admin_token_file[1024]; /* the admin token; "" with a data dir: DIR/admin.token */
    char db[1024];               /* "postgresql://...": challenges in PostgreSQL ("": SQLite) */
    char db_password_file[1024]; /* the database password's file ("": libpq's environment) */
    char blob_dir[1024];         /* the blobs ("": DATA_DIR/blobs; required with db) */
    int lease_seconds;           /* with db: a replica's lease (store.h) */
};

/* Fills cfg with the defaults of the documented flags. */
void srv_config_defaults(struct srv_config *cfg);

/* Reads SEGLOSS_* environment variables, then argv (a flag wins over its variable) into cfg.
 * Returns 0, with *done set after --help or --version (printed on stdout: nothing to run), or
 * SL_EINVAL after an invalid value or flag (message on stderr). */
int srv_config_load(struct srv_config *cfg, int argc, char **argv, bool *done);

/* ---- the HTTP server -------------------------------------------------------------------- */

struct srv_server;

/* Starts the worker pool and the HTTP daemon for cfg. Returns 0 and a new server in *out (free
 * with srv_server_free), or SL_EINVAL (bad --bind), SL_EBUSY (cannot listen) or SL_ENOMEM with a
 * message in err. Signals must already be blocked. */
int srv_server_new(const struct srv_config *cfg, struct srv_server **out, char *err, size_t errlen);

/* The port actually bound (the ephemeral one when cfg->port was 0). */
unsigned srv_server_port(const struct srv_server *srv);

/* Stops taking new work (new bodies get 503) and turns /readyz to 503; requests in flight go
 * on. */
void srv_server_drain(struct srv_server *srv);

/* Requests in flight: from their first header callback until MHD reports them completed. */
int srv_server_inflight(struct srv_server *srv);

/* Gives up on in-flight compute: requests waiting for a worker are answered 503 and nothing
 * may be suspended from now on. Returns how many requests were cut short. */
int srv_server_abandon(struct srv_server *srv);

/* Stops the daemon (after srv_server_abandon), lets the pool finish, frees. NULL is fine. */
void srv_server_free(struct srv_server *srv);

/* ---- header values (headers.c) ----------------------------------------------------------- */

enum srv_encoding { SRV_ENC_IDENTITY, SRV_ENC_GZIP, SRV_ENC_DEFLATE, SRV_ENC_ZSTD };

/* Parses a Content-Encoding value (NULL: absent). Returns 0 and sets *enc, or SL_EUNSUPPORTED
 * when the coding is not one of identity, gzip (x-gzip), deflate or zstd. */
int srv_parse_encoding(const char *value, enum srv_encoding *enc);

/* Whether the Content-Type value names media type `type` (case-insensitive, parameters such
 * as "; charset=utf-8" allowed). */
bool srv_media_type_is(const char *value, const char *type);

/* Content negotiation of /v1/weight-map answers (RFC 9110, sections 12.5.1 and 12.5.3; tokens
 * are case-insensitive, q = 0 means "not acceptable", an unparsable q counts as 1). */

/* Whether an Accept value (NULL: absent) asks for JSON: application/json is listed with q > 0
 * and with a higher q than an explicit application/x-npy entry (the default answer). */
bool srv_accept_prefers_json(const char *value);
/* Whether an Accept header value prefers text/html to application/json (POST /v1/score's
 * HTML report; headers.c says how). */
bool srv_accept_prefers_html(const char *value);

/* Whether an Accept-Encoding value (NULL: absent, which gets the identity coding) allows
 * gzip: "gzip" or "x-gzip" with q > 0, or, when neither is listed, "*" with q > 0. */
bool srv_accept_encoding_allows_gzip(const char *value);

/* The coding of a compressed answer by an Accept-Encoding value (NULL: absent): SRV_ENC_ZSTD
 * when "zstd" is listed with q > 0 and a q at least gzip's (a tie takes zstd: it inflates
 * several times faster), else SRV_ENC_GZIP when srv_accept_encoding_allows_gzip, else
 * SRV_ENC_IDENTITY. "*" stands for gzip only, as before zstd: zstd must be named. */
enum srv_encoding srv_accept_encoding_pick(const char *value);

#endif /* SRV_SERVER_H */
