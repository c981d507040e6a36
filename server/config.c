/* config.c - seglossd flags and SEGLOSS_* environment variables (a flag wins over its variable).
 *
 * Every number is checked in full (digits only, no sign, no trailing text, in range); a bad
 * value is a message on stderr and exit status 2, never a silent default.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "segloss.h"
#include "server.h"
#include "store.h"

/* How a setting is stored in struct srv_config. */
enum opt_type { T_BIND, T_UNSIGNED, T_INT, T_U64, T_I64, T_BOOL, T_TEXT };

/* One row per setting: the flag, its variable, where and how it is stored, its bounds and its
 * default (numbers only; --bind is text). */
struct opt_def {
    const char *flag;
    const char *env;
    size_t off;
    enum opt_type type;
    uint64_t min, max, def;
};

#define CFG(field) offsetof(struct srv_config, field)

static const struct opt_def opt_defs[] = {
    {"--port", "SEGLOSS_PORT", CFG(port), T_UNSIGNED, 0, 65535, 8080},
    {"--bind", "SEGLOSS_BIND", CFG(bind), T_BIND, 0, 0, 0},
    {"--threads", "SEGLOSS_THREADS", CFG(threads), T_INT, 0, 1024, 0},
    {"--queue", "SEGLOSS_QUEUE", CFG(queue), T_INT, 1, 1000000, 64},
    {"--max-body-mb", "SEGLOSS_MAX_BODY_MB", CFG(max_body_mb), T_U64, 1, 1048576, 256},
    {"--max-pixels", "SEGLOSS_MAX_PIXELS", CFG(max_pixels), T_I64, 1, (uint64_t)INT64_MAX / 8,
     67108864},
    {"--drain-seconds", "SEGLOSS_DRAIN_SECONDS", CFG(drain_seconds), T_UNSIGNED, 0, 86400, 30},
    /* MHD splits the connection limit over its I/O threads: at least one each */
    {"--max-connections", "SEGLOSS_MAX_CONNECTIONS", CFG(max_connections), T_UNSIGNED,
     SRV_IO_THREADS, 1000000, 256},
    {"--max-per-ip", "SEGLOSS_MAX_PER_IP", CFG(max_per_ip), T_UNSIGNED, 0, 1000000, 64},
    {"--idle-timeout", "SEGLOSS_IDLE_TIMEOUT", CFG(idle_timeout), T_UNSIGNED, 1, 86400, 60},
    {"--max-header-kb", "SEGLOSS_MAX_HEADER_KB", CFG(max_header_kb), T_UNSIGNED, 8, 1048576, 64},
    {"--access-log", "SEGLOSS_ACCESS_LOG", CFG(access_log), T_BOOL, 0, 1, 1},
    {"--max-inflight-mb", "SEGLOSS_MAX_INFLIGHT_MB", CFG(max_inflight_mb), T_U64, 1, 1048576, 1024},
    {"--max-images", "SEGLOSS_MAX_IMAGES", CFG(max_images), T_I64, 1, (uint64_t)INT64_MAX, 4096},
    {"--max-classes", "SEGLOSS_MAX_CLASSES", CFG(max_classes), T_I64, 2, SL_MAX_CLASSES, 1024},
    {"--max-spec-depth", "SEGLOSS_MAX_SPEC_DEPTH", CFG(max_spec_depth), T_INT, 4, 1000, 32},
    {"--max-json-values", "SEGLOSS_MAX_JSON_VALUES", CFG(max_json_values), T_I64, 16,
     (uint64_t)INT64_MAX, 4194304},
    {"--max-specs", "SEGLOSS_MAX_SPECS", CFG(max_specs), T_INT, 1, SLP_MAX_SPECS, 32},
    /* T_TEXT: max is the field's size */
    {"--data-dir", "SEGLOSS_DATA_DIR", CFG(data_dir), T_TEXT, 0,
     sizeof(((struct srv_config *)0)->data_dir), 0},
    {"--admin-token-file", "SEGLOSS_ADMIN_TOKEN_FILE", CFG(admin_token_file), T_TEXT, 0,
     sizeof(((struct srv_config *)0)->admin_token_file), 0},
    /* PostgreSQL for replicas (store_pg.c); the URI's value is never echoed */
    {"--db", "SEGLOSS_DB", CFG(db), T_TEXT, 0, sizeof(((struct srv_config *)0)->db), 0},
    {"--db-password-file", "SEGLOSS_DB_PASSWORD_FILE", CFG(db_password_file), T_TEXT, 0,
     sizeof(((struct srv_config *)0)->db_password_file), 0},
    {"--blob-dir", "SEGLOSS_BLOB_DIR", CFG(blob_dir), T_TEXT, 0,
     sizeof(((struct srv_config *)0)->blob_dir), 0},
    {"--lease-seconds", "SEGLOSS_LEASE_SECONDS", CFG(lease_seconds), T_INT, STORE_LEASE_MIN_S,
     STORE_LEASE_MAX_S, STORE_LEASE_DEFAULT_S},
};
#define NDEFS (sizeof(opt_defs) / sizeof(opt_defs[0]))

/* getopt_long values: a setting is its row index + OPT_ROW; 'h' is -h and --help. */
enum { OPT_HELP = 'h', OPT_VERSION = 'V', OPT_ROW = 256 };

static const char usage_text[] =
    "Usage: seglossd [OPTION]...\n"
    "Scores image segmentation (losses and metrics) over HTTP: POST /v1/score.\n"
    "\n"
    "  --port N            TCP port, 0 for an ephemeral one       (SEGLOSS_PORT, 8080)\n"
    "  --bind ADDR         IPv4 or IPv6 literal to listen on      (SEGLOSS_BIND, 127.0.0.1)\n"
    "                      (0.0.0.0 in a container)\n"
    "  --threads N         compute workers, 0 for one per core    (SEGLOSS_THREADS, 0)\n"
    "  --queue N           requests waiting for a worker, >= 1    (SEGLOSS_QUEUE, 64)\n"
    "  --max-body-mb N     request body cap in MiB                (SEGLOSS_MAX_BODY_MB, 256)\n"
    "  --max-inflight-mb N memory of all request bodies held, MiB (SEGLOSS_MAX_INFLIGHT_MB, 1024)\n"
    "                      (>= --max-body-mb)\n"
    "  --max-pixels N      elements per array                     (SEGLOSS_MAX_PIXELS, 67108864)\n"
    "  --max-images N      images per request                     (SEGLOSS_MAX_IMAGES, 4096)\n"
    "  --max-classes N     classes or channels per request,       (SEGLOSS_MAX_CLASSES, 1024)\n"
    "                      2..1024\n"
    "  --max-spec-depth N  JSON nesting depth, 4..1000            (SEGLOSS_MAX_SPEC_DEPTH, 32)\n"
    "  --max-json-values N JSON values per body (list arrays)     (SEGLOSS_MAX_JSON_VALUES,\n"
    "                                                              4194304)\n"
    "  --max-specs N       entries of losses, and of metrics,     (SEGLOSS_MAX_SPECS, 32)\n"
    "                      1..32\n"
    "  --drain-seconds N   wait for requests in flight on SIGTERM (SEGLOSS_DRAIN_SECONDS, 30)\n"
    "  --max-connections N open connections, >= 2                 (SEGLOSS_MAX_CONNECTIONS, 256)\n"
    "  --max-per-ip N      open connections per client address,  (SEGLOSS_MAX_PER_IP, 64)\n"
    "                      0 for no limit\n"
    "  --idle-timeout N    seconds a connection may stay silent   (SEGLOSS_IDLE_TIMEOUT, 60)\n"
    "                      (also a client trickling its request)\n"
    "  --max-header-kb N   per-connection memory for request line (SEGLOSS_MAX_HEADER_KB, 64)\n"
    "                      and headers, KiB, >= 8\n"
    "  --access-log 0|1    one JSON line per request on stderr    (SEGLOSS_ACCESS_LOG, 1)\n"
    "  --data-dir DIR      turns challenges on: their database    (SEGLOSS_DATA_DIR, none)\n"
    "                      and blobs live in DIR\n"
    "  --admin-token-file F  the challenges' admin token          (SEGLOSS_ADMIN_TOKEN_FILE,\n"
    "                      (default DIR/admin.token, made at the   DIR/admin.token)\n"
    "                      first start, mode 0600)\n"
    "  --db URI            challenges in PostgreSQL, shared by    (SEGLOSS_DB, none)\n"
    "                      replicas: postgresql://USER@HOST/DB\n"
    "                      (no password in it: refused)\n"
    "  --db-password-file F  the database password (else libpq's  (SEGLOSS_DB_PASSWORD_FILE,\n"
    "                      PGPASSWORD, PGPASSFILE, PGSERVICE...)   none)\n"
    "  --blob-dir DIR      references and submission bodies;      (SEGLOSS_BLOB_DIR,\n"
    "                      with --db a directory every replica     DIR/blobs)\n"
    "                      mounts\n"
    "  --lease-seconds N   with --db: a dead replica's            (SEGLOSS_LEASE_SECONDS, 20)\n"
    "                      submissions fail and its re-score\n"
    "                      moves after N s, 2..3600\n"
    "  -h, --help          print this and exit\n"
    "  --version           print the version and exit\n"
    "\n"
    "A flag wins over its environment variable; an empty variable counts as unset.\n";

/* Stores the number v (within d's bounds) in d's field of cfg. */
static void opt_store(struct srv_config *cfg, const struct opt_def *d, uint64_t v)
{
    char *field = (char *)cfg + d->off;
    switch (d->type) {
    case T_UNSIGNED:
        *(unsigned *)(void *)field = (unsigned)v;
        break;
    case T_INT:
        *(int *)(void *)field = (int)v;
        break;
    case T_U64:
        *(uint64_t *)(void *)field = v;
        break;
    case T_I64:
        *(int64_t *)(void *)field = (int64_t)v;
        break;
    case T_BOOL:
        *(bool *)(void *)field = v != 0;
        break;
    case T_BIND:
    case T_TEXT:
        break;
    }
}

/* Fills cfg with the defaults of the documented flags. */
void srv_config_defaults(struct srv_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->bind, sizeof(cfg->bind), "%s", "127.0.0.1");
    for (size_t i = 0; i < NDEFS; i++) {
        opt_store(cfg, &opt_defs[i], opt_defs[i].def);
    }
}

/* Parses all of s as a decimal in [min, max]; no sign, no spaces, no trailing text. */
static bool parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (s[0] < '0' || s[0] > '9') {
        return false;
    }
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) {
        return false;
    }
    *out = v;
    return true;
}

/* Sets one option from text; origin names where it came from for the message. Returns 0 or
 * SL_EINVAL (message on stderr). */
static int opt_set(struct srv_config *cfg, const struct opt_def *d, const char *value,
                   const char *origin)
{
    if (d->type == T_BIND) {
        unsigned char addr[16];
        if (strlen(value) >= sizeof(cfg->bind) ||
            (inet_pton(AF_INET, value, addr) != 1 && inet_pton(AF_INET6, value, addr) != 1)) {
            fprintf(stderr, "seglossd: %s: '%s' is not an IPv4 or IPv6 address literal\n", origin,
                    value);
            return SL_EINVAL;
        }
        snprintf(cfg->bind, sizeof(cfg->bind), "%s", value);
        return 0;
    }
    if (d->type == T_TEXT) {
        if (value[0] == '\0' || strlen(value) >= d->max) {
            fprintf(stderr, "seglossd: %s: must be a path of 1 to %llu bytes\n", origin,
                    (unsigned long long)(d->max - 1));
            return SL_EINVAL;
        }
        memcpy((char *)cfg + d->off, value, strlen(value) + 1);
        return 0;
    }
    uint64_t v;
    if (!parse_u64(value, d->min, d->max, &v)) {
        fprintf(stderr, "seglossd: %s: '%s' is not an integer in [%llu, %llu]\n", origin, value,
                (unsigned long long)d->min, (unsigned long long)d->max);
        return SL_EINVAL;
    }
    opt_store(cfg, d, v);
    return 0;
}

/* The getopt_long table of opt_defs into lo (NDEFS + 3 entries). */
static void long_opts_fill(struct option *lo)
{
    for (size_t i = 0; i < NDEFS; i++) {
        lo[i] = (struct option){opt_defs[i].flag + 2, required_argument, NULL, (int)i + OPT_ROW};
    }
    lo[NDEFS] = (struct option){"help", no_argument, NULL, OPT_HELP};
    lo[NDEFS + 1] = (struct option){"version", no_argument, NULL, OPT_VERSION};
    lo[NDEFS + 2] = (struct option){NULL, 0, NULL, 0};
}

/* Flags first; a setting without its flag comes from its variable (not looked at when its flag
 * is given). */
int srv_config_load(struct srv_config *cfg, int argc, char **argv, bool *done)
{
    const char *flag_value[NDEFS] = {0};
    struct option long_opts[NDEFS + 3];
    long_opts_fill(long_opts);

    *done = false;
    srv_config_defaults(cfg);
    optind = 1;
    opterr = 1; /* getopt names an unknown flag or a missing value itself */
    int c;
    /* "h": -h is --help, as newcomers type it */
    while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        if (c == OPT_HELP) {
            fputs(usage_text, stdout);
            *done = true;
            return 0;
        }
        if (c == OPT_VERSION) {
            printf("seglossd %s\n", SL_VERSION);
            *done = true;
            return 0;
        }
        if (c < OPT_ROW || c >= OPT_ROW + (int)NDEFS) {
            fputs("Try 'seglossd --help'.\n", stderr);
            return SL_EINVAL;
        }
        flag_value[c - OPT_ROW] = optarg; /* the last one given wins */
    }
    if (optind < argc) {
        fprintf(stderr, "seglossd: unexpected argument '%s'\nTry 'seglossd --help'.\n",
                argv[optind]);
        return SL_EINVAL;
    }

    for (size_t i = 0; i < NDEFS; i++) {
        const struct opt_def *d = &opt_defs[i];
        const char *v = flag_value[i];
        const char *origin = d->flag;
        if (!v) {
            v = getenv(d->env);
            origin = d->env;
            if (!v || v[0] == '\0') {
                continue;
            }
        }
        int rc = opt_set(cfg, d, v, origin);
        if (rc != 0) {
            return rc;
        }
    }
    if (cfg->max_inflight_mb < cfg->max_body_mb) {
        /* a body the server could never hold would get 503 forever instead of a 413 */
        fprintf(stderr,
                "seglossd: --max-inflight-mb %llu is smaller than --max-body-mb %llu; give it at "
                "least that\n",
                (unsigned long long)cfg->max_inflight_mb, (unsigned long long)cfg->max_body_mb);
        return SL_EINVAL;
    }
    return 0;
}
