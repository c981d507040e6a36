/* config.c - seglossd flags and SEGLOSS_* environment variables (a flag wins over its variable).
 *
 * Every number is checked in full (digits only, no sign, no trailing text, in range); a bad
 * value is a message on stderr and exit status 2, never a silent default.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "segloss.h"
#include "server.h"

enum opt_id {
    OPT_PORT = 'p',
    OPT_BIND = 'b',
    OPT_THREADS = 't',
    OPT_QUEUE = 'q',
    OPT_MAX_BODY = 'm',
    OPT_MAX_PIXELS = 'x',
    OPT_DRAIN = 'd',
    OPT_MAX_CONN = 'c',
    OPT_MAX_PER_IP = 'i',
    OPT_IDLE_TIMEOUT = 'I',
    OPT_MAX_HEADER_KB = 'H',
    OPT_ACCESS_LOG = 'l',
    OPT_MAX_INFLIGHT = 'f',
    OPT_MAX_IMAGES = 'n',
    OPT_MAX_CLASSES = 'C',
    OPT_MAX_SPEC_DEPTH = 'D',
    OPT_MAX_JSON_VALUES = 'J',
    OPT_MAX_SPECS = 'S',
    OPT_HELP = 'h',
    OPT_VERSION = 'V',
};

/* One row per setting: the flag, its variable and its bounds (numbers only). */
struct opt_def {
    int id;
    const char *flag;
    const char *env;
    uint64_t min, max;
};

static const struct opt_def opt_defs[] = {
    {OPT_PORT, "--port", "SEGLOSS_PORT", 0, 65535},
    {OPT_BIND, "--bind", "SEGLOSS_BIND", 0, 0},
    {OPT_THREADS, "--threads", "SEGLOSS_THREADS", 0, 1024},
    {OPT_QUEUE, "--queue", "SEGLOSS_QUEUE", 1, 1000000},
    {OPT_MAX_BODY, "--max-body-mb", "SEGLOSS_MAX_BODY_MB", 1, 1048576},
    {OPT_MAX_PIXELS, "--max-pixels", "SEGLOSS_MAX_PIXELS", 1, (uint64_t)INT64_MAX / 8},
    {OPT_DRAIN, "--drain-seconds", "SEGLOSS_DRAIN_SECONDS", 0, 86400},
    /* MHD splits the connection limit over its I/O threads: at least one each */
    {OPT_MAX_CONN, "--max-connections", "SEGLOSS_MAX_CONNECTIONS", SRV_IO_THREADS, 1000000},
    {OPT_MAX_PER_IP, "--max-per-ip", "SEGLOSS_MAX_PER_IP", 0, 1000000},
    {OPT_IDLE_TIMEOUT, "--idle-timeout", "SEGLOSS_IDLE_TIMEOUT", 1, 86400},
    {OPT_MAX_HEADER_KB, "--max-header-kb", "SEGLOSS_MAX_HEADER_KB", 8, 1048576},
    {OPT_ACCESS_LOG, "--access-log", "SEGLOSS_ACCESS_LOG", 0, 1},
    {OPT_MAX_INFLIGHT, "--max-inflight-mb", "SEGLOSS_MAX_INFLIGHT_MB", 1, 1048576},
    {OPT_MAX_IMAGES, "--max-images", "SEGLOSS_MAX_IMAGES", 1, (uint64_t)INT64_MAX},
    {OPT_MAX_CLASSES, "--max-classes", "SEGLOSS_MAX_CLASSES", 2, SL_MAX_CLASSES},
    {OPT_MAX_SPEC_DEPTH, "--max-spec-depth", "SEGLOSS_MAX_SPEC_DEPTH", 4, 1000},
    {OPT_MAX_JSON_VALUES, "--max-json-values", "SEGLOSS_MAX_JSON_VALUES", 16, (uint64_t)INT64_MAX},
    {OPT_MAX_SPECS, "--max-specs", "SEGLOSS_MAX_SPECS", 1, SLP_MAX_SPECS},
};

static const struct option long_opts[] = {
    {"port", required_argument, NULL, OPT_PORT},
    {"bind", required_argument, NULL, OPT_BIND},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"queue", required_argument, NULL, OPT_QUEUE},
    {"max-body-mb", required_argument, NULL, OPT_MAX_BODY},
    {"max-pixels", required_argument, NULL, OPT_MAX_PIXELS},
    {"drain-seconds", required_argument, NULL, OPT_DRAIN},
    {"max-connections", required_argument, NULL, OPT_MAX_CONN},
    {"max-per-ip", required_argument, NULL, OPT_MAX_PER_IP},
    {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
    {"max-header-kb", required_argument, NULL, OPT_MAX_HEADER_KB},
    {"access-log", required_argument, NULL, OPT_ACCESS_LOG},
    {"max-inflight-mb", required_argument, NULL, OPT_MAX_INFLIGHT},
    {"max-images", required_argument, NULL, OPT_MAX_IMAGES},
    {"max-classes", required_argument, NULL, OPT_MAX_CLASSES},
    {"max-spec-depth", required_argument, NULL, OPT_MAX_SPEC_DEPTH},
    {"max-json-values", required_argument, NULL, OPT_MAX_JSON_VALUES},
    {"max-specs", required_argument, NULL, OPT_MAX_SPECS},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

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
    "  -h, --help          print this and exit\n"
    "  --version           print the version and exit\n"
    "\n"
    "A flag wins over its environment variable; an empty variable counts as unset.\n";

/* Fills cfg with the defaults of the documented flags. */
void srv_config_defaults(struct srv_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->port = 8080;
    snprintf(cfg->bind, sizeof(cfg->bind), "%s", "127.0.0.1");
    cfg->threads = 0;
    cfg->queue = 64;
    cfg->max_body_mb = 256;
    cfg->max_pixels = 67108864;
    cfg->drain_seconds = 30;
    cfg->max_connections = 256;
    cfg->max_per_ip = 64;
    cfg->idle_timeout = 60;
    cfg->max_header_kb = 64;
    cfg->access_log = true;
    cfg->max_inflight_mb = 1024;
    cfg->max_images = 4096;
    cfg->max_classes = 1024;
    cfg->max_spec_depth = 32;
    cfg->max_json_values = 4194304;
    cfg->max_specs = 32;
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

static const struct opt_def *opt_find(int id)
{
    for (size_t i = 0; i < sizeof(opt_defs) / sizeof(opt_defs[0]); i++) {
        if (opt_defs[i].id == id) {
            return &opt_defs[i];
        }
    }
    return NULL;
}

/* Sets one option from text; origin names where it came from for the message. Returns 0 or
 * SL_EINVAL (message on stderr). */
static int opt_set(struct srv_config *cfg, const struct opt_def *d, const char *value,
                   const char *origin)
{
    if (d->id == OPT_BIND) {
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
    uint64_t v;
    if (!parse_u64(value, d->min, d->max, &v)) {
        fprintf(stderr, "seglossd: %s: '%s' is not an integer in [%llu, %llu]\n", origin, value,
                (unsigned long long)d->min, (unsigned long long)d->max);
        return SL_EINVAL;
    }
    switch (d->id) {
    case OPT_PORT:
        cfg->port = (unsigned)v;
        break;
    case OPT_THREADS:
        cfg->threads = (int)v;
        break;
    case OPT_QUEUE:
        cfg->queue = (int)v;
        break;
    case OPT_MAX_BODY:
        cfg->max_body_mb = v;
        break;
    case OPT_MAX_PIXELS:
        cfg->max_pixels = (int64_t)v;
        break;
    case OPT_DRAIN:
        cfg->drain_seconds = (unsigned)v;
        break;
    case OPT_MAX_CONN:
        cfg->max_connections = (unsigned)v;
        break;
    case OPT_MAX_PER_IP:
        cfg->max_per_ip = (unsigned)v;
        break;
    case OPT_IDLE_TIMEOUT:
        cfg->idle_timeout = (unsigned)v;
        break;
    case OPT_MAX_HEADER_KB:
        cfg->max_header_kb = (unsigned)v;
        break;
    case OPT_ACCESS_LOG:
        cfg->access_log = v != 0;
        break;
    case OPT_MAX_INFLIGHT:
        cfg->max_inflight_mb = v;
        break;
    case OPT_MAX_IMAGES:
        cfg->max_images = (int64_t)v;
        break;
    case OPT_MAX_CLASSES:
        cfg->max_classes = (int64_t)v;
        break;
    case OPT_MAX_SPEC_DEPTH:
        cfg->max_spec_depth = (int)v;
        break;
    case OPT_MAX_JSON_VALUES:
        cfg->max_json_values = (int64_t)v;
        break;
    case OPT_MAX_SPECS:
        cfg->max_specs = (int)v;
        break;
    default:
        break;
    }
    return 0;
}

/* Flags first; a setting without its flag comes from its variable (not looked at when its flag
 * is given). */
int srv_config_load(struct srv_config *cfg, int argc, char **argv, bool *done)
{
    enum { NDEFS = sizeof(opt_defs) / sizeof(opt_defs[0]) };
    const char *flag_value[NDEFS] = {0};

    *done = false;
    srv_config_defaults(cfg);
    optind = 1;
    opterr = 1; /* getopt names an unknown flag or a missing value itself */
    int c;
    /* "h": -h is --help, as newcomers type it */
    while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        if (c == OPT_HELP || c == 'h') {
            fputs(usage_text, stdout);
            *done = true;
            return 0;
        }
        if (c == OPT_VERSION) {
            printf("seglossd %s\n", SL_VERSION);
            *done = true;
            return 0;
        }
        const struct opt_def *d = opt_find(c);
        if (!d) {
            fputs("Try 'seglossd --help'.\n", stderr);
            return SL_EINVAL;
        }
        flag_value[d - opt_defs] = optarg; /* the last one given wins */
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
