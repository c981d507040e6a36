/* main.c - `segloss`, the command-line client of seglossd: scores a data set in batches (over
 * --parallel N connections at once, combined in data-set order) and gates a CI build on the
 * result. Exit status: 0 all gates hold, 1 a gate failed, 2 a usage,
 * input, network or server error. The challenge verbs live in chal.c. */
#include <curl/curl.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define EXIT_GATE 1
#define EXIT_ERROR 2

/* --help, in two literals (a C99 compiler need not take a string over 4095 bytes) */
static const char usage_score[] =
    "Usage: segloss score [--url URL] --pred PRED --target TARGET [OPTION]...\n"
    "       segloss health [--url URL] [--ready] [--wait S] [--timeout S]\n"
    "       segloss challenge VERB NAME ... [--url URL] [--token TOKEN] [OPTION]...\n"
    "       segloss submit NAME SOURCE [--note TEXT] [--token TOKEN] [OPTION]...\n"
    "       segloss leaderboard NAME [--private] [--csv | --json] [OPTION]...\n"
    "       segloss -h | --help | --version\n"
    "\n"
    "Scores segmentation predictions against targets with seglossd (POST /v1/score), in\n"
    "batches, and combines the batches into the result one request would give.\n"
    "\n"
    "PRED and TARGET: two .npy/.npy.gz files [N, ...]; two directories of .npy/.npy.gz files,\n"
    "one image each, paired by name; or two Kaggle CSV files (ImageId,EncodedPixels) with\n"
    "--shape H,W.\n"
    "\n"
    "  --url URL            server (SEGLOSS_URL, else http://127.0.0.1:8080)\n"
    "  --loss NAME[:k=v,..] a loss and its parameters (repeatable): --loss focal:gamma=2\n"
    "  --metric NAME[:k=v]  a metric (repeatable; default dice and iou):\n"
    "                       --metric hausdorff:percentile=95,as=hd95\n"
    "  --spec FILE          a JSON object of spec keys (losses, metrics, mode, ignore_index...)\n"
    "  --set KEY=VALUE      one spec key, VALUE as JSON or else a string: --set mode=multiclass\n"
    "  --shape H,W          image size of CSV inputs\n"
    "  --batch-size N       images per request (default: up to 32 MiB, at most 1024)\n"
    "  --compress MODE      auto (integer masks compressed: zstd when the server's catalog\n"
    "                       lists it, else gzip; floats sent as they are), gzip, zstd, none\n"
    "  --gate EXPR          [metrics.|losses.]KEY[.FIELD] OP NUMBER, repeatable:\n"
    "                       'dice.mean>=0.85' 'hausdorff.mean<=12' 'dice.per_class[1]>0.7'\n"
    "  --json               print the combined result as JSON instead of a table\n"
    "  --junit FILE         write a JUnit XML report (a test case per gate)\n"
    "  --html FILE          write the visual report of the whole data set: the combined\n"
    "                       values, each value's per-image distribution and the worst\n"
    "                       images drawn as overlays, named by id; written also when a gate\n"
    "                       fails (exit 1), and on exit 2 only if every batch was scored\n"
    "  --report-worst K     images the report draws, 0..64 (default: the spec's report_worst,\n"
    "                       else 8), worst first by the first metric (else the first loss);\n"
    "                       the report always has per-image values, whatever per_image or\n"
    "                       --no-per-image say (they shorten --json only)\n"
    "  --no-per-image       leave per-image values and image ids out of --json\n"
    "  --no-progress        no progress bar (it is shown only when stderr is a terminal)\n"
    "  --parallel N         batches sent at once over N connections, 1..64 (default 1), so that\n"
    "                       the replicas behind a load balancer share a data set; answers are\n"
    "                       combined in data-set order: the same output as --parallel 1\n"
    "  --retries N          retries on 503, 429 and connection errors (default 3), per batch\n"
    "  --timeout S          seconds per request (default 300)\n"
    "  --quiet              no notes on stderr (retries)\n"
    "\n"
    "health: GET /healthz (--ready: /readyz); exit 0 on 200, else 1. --wait S polls until\n"
    "200 for at most S seconds (a CI step that waits for a server it has just started).\n"
    "\n"
    "Exit status: 0 every gate holds, 1 a gate failed, 2 usage, input, network or server "
    "error.\n"
    "\n";

static const char usage_chal[] =
    "Challenges (seglossd --data-dir): the ground truth stays on the server; participants send\n"
    "predictions and see leaderboards. The token is --token TOKEN, --token-file FILE or\n"
    "SEGLOSS_TOKEN: the organiser's admin token for the challenge verbs, a participant's for\n"
    "submit. SOURCE: a stacked .npy/.npy.gz [N, ...] (ids 0..N-1, or one a line from --ids\n"
    "FILE), a directory of .npy/.npy.gz files (one image each, the id its name without .npy),\n"
    "or a Kaggle CSV file (ImageId,EncodedPixels) with --shape H,W; sent as it is read.\n"
    "\n"
    "  challenge configure NAME CONFIG.json   create or replace the configuration\n"
    "  challenge reference NAME SOURCE        upload the ground truth\n"
    "  challenge add NAME PARTICIPANT         prints the participant's token, this once\n"
    "  challenge revoke NAME PARTICIPANT      the token stops working\n"
    "  challenge participants NAME            names, submission counts, revoked\n"
    "  challenge rescore NAME [--wait]        score every submission again (--wait: until done)\n"
    "  challenge export NAME [-o FILE]        every submission with all scores, as CSV\n"
    "  submit NAME SOURCE [--note TEXT]       prints the public scores, rank and quota\n"
    "  leaderboard NAME [--private] [--csv]   the ranking (--csv [-o FILE]: as CSV)\n"
    "\n"
    "  --json               print the server's JSON answer\n"
    "  --compress MODE      auto (integer images compressed: zstd when the server lists it,\n"
    "                       else gzip), gzip, zstd, none\n"
    "  --retries N, --timeout S, --quiet, --url URL   as for score (a POST is retried only\n"
    "                       on 503 or when it never connected)\n"
    "  --parallel N         accepted as for score (1..64); a submission and a reference are\n"
    "                       one upload each by the challenge contract, so nothing is split\n"
    "\n"
    "submit exits 0 when scored, 1 when refused by the quota (429) or the challenge's window\n"
    "(403), with the server's reason and Retry-After; the challenge verbs and leaderboard exit\n"
    "0 or 2.\n";

enum {
    O_URL = 256,
    O_PRED,
    O_TARGET,
    O_LOSS,
    O_METRIC,
    O_SPEC,
    O_SET,
    O_SHAPE,
    O_BATCH,
    O_COMPRESS,
    O_GATE,
    O_JSON,
    O_JUNIT,
    O_HTML,
    O_REPORT_WORST,
    O_NO_PER_IMAGE,
    O_NO_PROGRESS,
    O_RETRIES,
    O_TIMEOUT,
    O_QUIET,
    O_PARALLEL,
    O_READY,
    O_WAIT,
    O_HELP,
    O_VERSION,
};

static const struct option long_opts[] = {
    {"url", required_argument, NULL, O_URL},
    {"pred", required_argument, NULL, O_PRED},
    {"target", required_argument, NULL, O_TARGET},
    {"loss", required_argument, NULL, O_LOSS},
    {"metric", required_argument, NULL, O_METRIC},
    {"spec", required_argument, NULL, O_SPEC},
    {"set", required_argument, NULL, O_SET},
    {"shape", required_argument, NULL, O_SHAPE},
    {"batch-size", required_argument, NULL, O_BATCH},
    {"compress", required_argument, NULL, O_COMPRESS},
    {"gate", required_argument, NULL, O_GATE},
    {"json", no_argument, NULL, O_JSON},
    {"junit", required_argument, NULL, O_JUNIT},
    {"html", required_argument, NULL, O_HTML},
    {"report-worst", required_argument, NULL, O_REPORT_WORST},
    {"no-per-image", no_argument, NULL, O_NO_PER_IMAGE},
    {"no-progress", no_argument, NULL, O_NO_PROGRESS},
    {"retries", required_argument, NULL, O_RETRIES},
    {"timeout", required_argument, NULL, O_TIMEOUT},
    {"quiet", no_argument, NULL, O_QUIET},
    {"parallel", required_argument, NULL, O_PARALLEL},
    {"ready", no_argument, NULL, O_READY},
    {"wait", required_argument, NULL, O_WAIT},
    {"help", no_argument, NULL, O_HELP},
    {"version", no_argument, NULL, O_VERSION},
    {NULL, 0, NULL, 0},
};

struct opts {
    const char *url, *pred, *target, *spec_file, *junit, *html;
    char *url_buf; /* url without trailing slashes (owned) */
    int64_t h, w, batch_size;
    enum cli_compress comp;
    bool json, per_image, progress, quiet, ready;
    int64_t wait_s;
    int64_t report_worst; /* -1: not given */
    int retries;
    int parallel; /* --parallel: connections at once */
    long timeout;
    char **gates;
    int ngates;
    json_t *spec;
};

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "segloss: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(segloss --help for the options)\n");
    return EXIT_ERROR;
}

/* Whether s is a whole decimal integer in [min, max]; sets *out when it is. */
static bool parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || v < min || v > max) {
        return false;
    }
    *out = v;
    return true;
}

/* VALUE as JSON when it parses, else as a string (new reference). */
static json_t *value_of(const char *text)
{
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    return v ? v : json_string(text);
}

/* Whether k is a spec key holding an array, which the CLI sends itself. */
static bool array_key(const char *k)
{
    return !strcmp(k, "prediction") || !strcmp(k, "target") || !strcmp(k, "weight") ||
           !strcmp(k, "instances");
}

/* NAME[:k=v,...] as a spec object; commas inside [...] or "..." do not split. */
static json_t *entry_of(const char *text, char *msg, size_t msglen)
{
    const char *colon = strchr(text, ':');
    size_t nlen = colon ? (size_t)(colon - text) : strlen(text);
    if (nlen == 0) {
        snprintf(msg, msglen, "'%s': no name before ':'", text);
        return NULL;
    }
    json_t *o = json_object();
    json_object_set_new(o, "name", json_stringn(text, nlen));
    if (!colon) {
        return o;
    }
    const char *p = colon + 1;
    while (*p) {
        const char *start = p;
        int depth = 0;
        bool quoted = false;
        for (; *p && (depth > 0 || quoted || *p != ','); p++) {
            if (*p == '"') {
                quoted = !quoted;
            } else if (!quoted && (*p == '[' || *p == '{')) {
                depth++;
            } else if (!quoted && (*p == ']' || *p == '}')) {
                depth--;
            }
        }
        char *item = strndup(start, (size_t)(p - start));
        char *eq = item ? strchr(item, '=') : NULL;
        if (!eq || eq == item) {
            snprintf(msg, msglen, "'%s': parameters are k=v, separated by commas", text);
            free(item);
            json_decref(o);
            return NULL;
        }
        *eq = '\0';
        json_object_set_new(o, item, value_of(eq + 1));
        free(item);
        if (*p == ',') {
            p++;
        }
    }
    return o;
}

/* Appends entry text (NAME[:k=v,...]) to spec's list ("losses" or "metrics"). Returns 0, or
 * EXIT_ERROR after a usage message. */
static int append_entry(json_t *spec, const char *list, const char *text)
{
    char msg[CLI_MSG];
    json_t *e = entry_of(text, msg, sizeof msg);
    if (!e) {
        return usage_error("%s", msg);
    }
    json_t *arr = json_object_get(spec, list);
    if (!arr) {
        arr = json_array();
        json_object_set_new(spec, list, arr);
    }
    if (!json_is_array(arr)) {
        json_decref(e);
        return usage_error("the spec's %s is not a list", list);
    }
    json_array_append_new(arr, e);
    return 0;
}

/* Reads --spec FILE and merges the command line's spec into it (its losses and metrics after
 * the file's, its other keys over the file's) as o->spec. Returns 0, or EXIT_ERROR after a
 * message. */
static int load_spec(struct opts *o)
{
    json_error_t je;
    json_t *s = json_load_file(o->spec_file, 0, &je);
    if (!s) {
        fprintf(stderr, "segloss: %s:%d: %s\n", o->spec_file, je.line, je.text);
        return EXIT_ERROR;
    }
    if (!json_is_object(s)) {
        json_decref(s);
        return usage_error("%s: the spec is a JSON object", o->spec_file);
    }
    const char *k;
    json_t *v;
    json_object_foreach(s, k, v)
    {
        if (array_key(k)) {
            fprintf(stderr,
                    "segloss: %s: key '%s': the CLI sends prediction and target from --pred and "
                    "--target, and does not send weight or instances maps\n",
                    o->spec_file, k);
            json_decref(s);
            return EXIT_ERROR;
        }
    }
    /* the file's losses and metrics come before those of --loss and --metric */
    json_t *old = o->spec;
    json_object_foreach(old, k, v)
    {
        json_t *mine = json_object_get(s, k);
        if (json_is_array(mine) && json_is_array(v) &&
            (!strcmp(k, "losses") || !strcmp(k, "metrics"))) {
            json_array_extend(mine, v);
        } else {
            json_object_set(s, k, v);
        }
    }
    json_decref(old);
    o->spec = s;
    return 0;
}

/* Takes the spec's report_worst out of o->spec (it is the server's key for its HTML answer and
 * means nothing to a JSON one): it sets the images the --html report draws unless
 * --report-worst did. Returns 0, or EXIT_ERROR after a usage message. */
static int take_report_worst(struct opts *o)
{
    json_t *v = json_object_get(o->spec, "report_worst");
    if (!v) {
        return 0;
    }
    json_int_t k = json_is_integer(v) ? json_integer_value(v) : -1;
    if (k < 0 || k > SLP_REPORT_WORST_MAX) {
        return usage_error("spec key report_worst: an integer 0..%d (the images the --html "
                           "report draws)",
                           SLP_REPORT_WORST_MAX);
    }
    if (o->html && o->report_worst < 0) {
        o->report_worst = k;
    }
    json_object_del(o->spec, "report_worst");
    return 0;
}

/* The options that take a whole number: its range, and what to say when it is not in it. */
static const struct {
    int opt;
    const char *name;
    int64_t min, max;
    const char *want;
} int_opts[] = {
    {O_BATCH, "--batch-size", 1, 1 << 20, "a positive integer"},
    {O_RETRIES, "--retries", 0, 100, "0..100"},
    {O_TIMEOUT, "--timeout", 1, 86400, "seconds, 1..86400"},
    {O_WAIT, "--wait", 0, 86400, "seconds, 0..86400"},
    {O_REPORT_WORST, "--report-worst", 0, SLP_REPORT_WORST_MAX, "0..64 images"},
    {O_PARALLEL, "--parallel", 1, CLI_PARALLEL_MAX, "connections at once, 1..64"},
};

/* Applies option c with argument a (NULL for a flag) to o; given is the option as written, for
 * messages. Returns 0, or EXIT_ERROR after a usage message. --help prints and exits. */
static int apply_option(struct opts *o, int c, char *a, const char *given)
{
    int rc;
    int64_t v = 0;
    for (size_t k = 0; k < sizeof int_opts / sizeof int_opts[0]; k++) {
        if (int_opts[k].opt == c && !parse_int(a, int_opts[k].min, int_opts[k].max, &v)) {
            return usage_error("%s '%s': %s", int_opts[k].name, a, int_opts[k].want);
        }
    }
    switch (c) {
    case O_URL:
        o->url = a;
        break;
    case O_PRED:
        o->pred = a;
        break;
    case O_TARGET:
        o->target = a;
        break;
    case O_LOSS:
    case O_METRIC:
        if ((rc = append_entry(o->spec, c == O_LOSS ? "losses" : "metrics", a))) {
            return rc;
        }
        break;
    case O_SPEC:
        o->spec_file = a;
        break;
    case O_SET: {
        const char *eq = strchr(a, '=');
        if (!eq || eq == a) {
            return usage_error("--set '%s': KEY=VALUE", a);
        }
        char *k = strndup(a, (size_t)(eq - a));
        if (array_key(k)) {
            free(k);
            return usage_error("--set '%s': the CLI sends the arrays itself", a);
        }
        json_object_set_new(o->spec, k, value_of(eq + 1));
        free(k);
        break;
    }
    case O_SHAPE:
        if (cli_parse_shape(a, &o->h, &o->w) != 0) {
            return usage_error("--shape '%s': H,W with positive integers", a);
        }
        break;
    case O_BATCH:
        o->batch_size = v;
        break;
    case O_COMPRESS:
        if (cli_parse_compress(a, &o->comp) != 0) {
            return usage_error("--compress '%s': auto, gzip, zstd or none", a);
        }
        break;
    case O_GATE:
        o->gates[o->ngates++] = a;
        break;
    case O_JSON:
        o->json = true;
        break;
    case O_JUNIT:
        o->junit = a;
        break;
    case O_HTML:
        o->html = a;
        break;
    case O_REPORT_WORST:
        o->report_worst = v;
        break;
    case O_NO_PER_IMAGE:
        o->per_image = false;
        break;
    case O_NO_PROGRESS:
        o->progress = false;
        break;
    case O_RETRIES:
        o->retries = (int)v;
        break;
    case O_TIMEOUT:
        o->timeout = (long)v;
        break;
    case O_QUIET:
        o->quiet = true;
        break;
    case O_PARALLEL:
        o->parallel = (int)v;
        break;
    case O_READY:
        o->ready = true;
        break;
    case O_WAIT:
        o->wait_s = v;
        break;
    case O_HELP:
    case 'h':
        fputs(usage_score, stdout);
        fputs(usage_chal, stdout);
        exit(0);
    default:
        return usage_error("unknown or incomplete option '%s'", given);
    }
    return 0;
}

/* Parses the options of `segloss score` (health: of `segloss health`) into o (defaults first;
 * o->spec new, o->gates borrow argv). Returns 0, or EXIT_ERROR after a usage message. */
static int parse_args(int argc, char **argv, struct opts *o, bool health)
{
    const char *env = getenv("SEGLOSS_URL");
    o->url = env && *env ? env : "http://127.0.0.1:8080";
    o->comp = CLI_COMPRESS_AUTO;
    o->per_image = true;
    o->progress = true;
    o->retries = 3;
    o->parallel = 1;
    o->timeout = health ? 10 : 300;
    o->report_worst = -1;
    o->spec = json_object();
    o->gates = calloc((size_t)argc, sizeof *o->gates);
    int c, rc;
    optind = 2;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) { /* -h is --help */
        if ((rc = apply_option(o, c, optarg, argv[optind - 1]))) {
            return rc;
        }
    }
    if (optind < argc) {
        return usage_error("unexpected argument '%s'", argv[optind]);
    }
    size_t ul = strlen(o->url);
    while (ul > 0 && o->url[ul - 1] == '/') {
        ul--;
    }
    o->url_buf = strndup(o->url, ul);
    o->url = o->url_buf ? o->url_buf : o->url;
    if (o->spec_file && (rc = load_spec(o))) {
        return rc;
    }
    if (!health && (!o->pred || !o->target)) {
        return usage_error("%s", "score needs --pred and --target");
    }
    if (o->report_worst >= 0 && !o->html) {
        return usage_error("%s", "--report-worst is for the report of --html FILE");
    }
    return take_report_worst(o);
}

/* Seconds of the monotonic clock. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Redraws the progress bar on stderr: done of total batches, images of all. */
static void progress(int done, int total, int64_t images, int64_t all)
{
    const int width = 30;
    int fill = total ? done * width / total : width;
    fprintf(stderr, "\r[");
    for (int i = 0; i < width; i++) {
        fputc(i < fill ? '#' : '.', stderr);
    }
    fprintf(stderr, "] %d/%d batches, %lld/%lld images", done, total, (long long)images,
            (long long)all);
    fflush(stderr);
}

/* `segloss health`: GET /healthz (--ready: /readyz), again every 0.2 s for up to --wait
 * seconds until it answers 200. Returns the exit status: 0 on 200, else 1 (EXIT_ERROR on usage). */
static int cmd_health(int argc, char **argv)
{
    struct opts o = {0};
    int rc = parse_args(argc, argv, &o, true);
    if (rc == 0) {
        struct cli_net net = {o.url, 0, o.timeout, 0, true, NULL, NULL};
        char msg[CLI_MSG];
        const char *path = o.ready ? "/readyz" : "/healthz";
        double deadline = now_s() + (double)o.wait_s;
        long status = cli_get_status(&net, path, msg, sizeof msg);
        while (status != 200 && now_s() < deadline) {
            struct timespec ts = {0, 200 * 1000 * 1000};
            nanosleep(&ts, NULL);
            status = cli_get_status(&net, path, msg, sizeof msg);
        }
        if (status == 200) {
            printf("%s%s: 200\n", o.url, path);
        } else if (status < 0) {
            fprintf(stderr, "segloss: %s\n", msg);
            rc = 1;
        } else {
            fprintf(stderr, "segloss: %s%s: %ld\n", o.url, path, status);
            rc = 1;
        }
        if (net.curl) {
            curl_easy_cleanup(net.curl);
        }
    }
    json_decref(o.spec);
    free(o.gates);
    free(o.url_buf);
    return rc;
}

/* When the server's message names an image by its index in the batch ("target[3, 0, 1]",
 * "prediction.data[3]"), the id of that image, for the user; else NULL. */
static const char *image_named(const char *detail, const struct cli_data *d, int64_t first,
                               int64_t last)
{
    static const char *const pats[] = {"prediction[", "target[", "prediction.data[",
                                       "target.data["};
    for (size_t k = 0; k < sizeof pats / sizeof pats[0]; k++) {
        const char *p = strstr(detail, pats[k]);
        if (p) {
            char *end;
            long long i = strtoll(p + strlen(pats[k]), &end, 10);
            if (end != p + strlen(pats[k]) && (*end == ',' || *end == ']') && i >= 0 &&
                i < last - first) {
                return d->images[first + i].id;
            }
        }
    }
    return NULL;
}

/* The spec's top-level per_image (false leaves per-image values out of the output). */
static bool spec_per_image(json_t *spec)
{
    return !json_is_false(json_object_get(spec, "per_image"));
}

/* One batch's outcome under --parallel, kept until the batches before it are combined. */
struct batch_out {
    int state; /* 0 not answered yet, 1 answered (answer), 2 failed (msg) */
    json_t *answer;
    char msg[CLI_MSG];
};

/* What the batch senders share: the next batch to take, the window of batches that may be in
 * flight ([added, added + window)) and their outcomes. Fields below mu are guarded by it. */
struct sender_pool {
    const struct opts *o;
    const struct cli_data *d;
    const struct cli_net *net_proto; /* url, retries, timeout, backoff, quiet; no handle */
    enum cli_compress comp, codec;
    atomic_int cancel; /* set when the answers are no longer wanted: in-flight requests stop */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int next;    /* the next batch a sender takes */
    int added;   /* batches combined so far (in data-set order) */
    int window;  /* --parallel: batches taken and not yet combined, at most */
    int stop_at; /* no batch after this one is taken (the first failure); nbatches: none */
    struct batch_out *out; /* nbatches */
};

/* One sender thread's own things, made by the main thread (cli_body_new draws its boundary
 * with rand()) and freed by it after the join. */
struct sender {
    pthread_t th;
    struct sender_pool *pool;
    struct cli_body *body; /* owned */
    json_t *spec;          /* owned copy: cli_body_batch writes each batch's arrays into it */
};

/* The name of batch k in notes and errors: "batch 2/3 (images a..b)". */
static void batch_what(const struct cli_data *d, int k, char *what, size_t len)
{
    int64_t first = d->batch_start[k], last = d->batch_start[k + 1];
    snprintf(what, len, "batch %d/%d (images %s..%s)", k + 1, d->nbatches, d->images[first].id,
             d->images[last - 1].id);
}

/* A sender thread: with its own body, spec copy and curl handle (one connection), takes the
 * next batch while the window allows, posts it (retries per request, as sequentially) and
 * leaves the outcome in the pool. Returns NULL. */
static void *sender(void *arg)
{
    struct sender *me = arg;
    struct sender_pool *p = me->pool;
    const struct cli_data *d = p->d;
    struct cli_net net = *p->net_proto;
    net.curl = NULL;
    net.cancel = &p->cancel;
    json_t *spec = me->spec;
    struct cli_body *body = me->body;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (p->next < d->nbatches && p->next <= p->stop_at && p->next >= p->added + p->window &&
               !atomic_load(&p->cancel)) {
            /* waiting for an earlier batch: no idle connection is held meanwhile, which a
             * server's per-client connection limit (seglossd --max-per-ip, nginx limit_conn)
             * would count against the sender that carries that batch */
            if (net.curl) {
                pthread_mutex_unlock(&p->mu);
                curl_easy_cleanup(net.curl);
                net.curl = NULL;
                pthread_mutex_lock(&p->mu);
                continue;
            }
            pthread_cond_wait(&p->cv, &p->mu);
        }
        if (p->next >= d->nbatches || p->next > p->stop_at || atomic_load(&p->cancel)) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        int k = p->next++;
        pthread_mutex_unlock(&p->mu);

        char what[600], msg[CLI_MSG] = "";
        batch_what(d, k, what, sizeof what);
        json_t *answer = NULL;
        int rc =
            cli_body_batch(body, d->batch_start[k], d->batch_start[k + 1], spec, msg, sizeof msg);
        if (rc == 0) {
            rc = cli_post_score(&net, body, what, &answer, msg, sizeof msg);
        }
        pthread_mutex_lock(&p->mu);
        struct batch_out *bo = &p->out[k];
        if (rc == 0) {
            bo->answer = answer;
            bo->state = 1;
        } else {
            snprintf(bo->msg, sizeof bo->msg, "%s", msg);
            bo->state = 2;
            if (k < p->stop_at) {
                p->stop_at = k;
            }
        }
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    if (net.curl) {
        curl_easy_cleanup(net.curl);
    }
    return NULL;
}

/* Posts every batch of d over min(--parallel, batches) connections at once (sender threads,
 * at most --parallel batches taken and not yet combined) and adds each answer to agg (borrowed)
 * in data-set order, with a progress bar on a terminal: the combined result is the one of
 * sending them one by one. Returns 0, or -1 with err naming the first failing batch in data-set
 * order (and the image, when the server's message names its index), as sequentially. */
static int send_batches(const struct opts *o, const struct cli_data *d, enum cli_compress codec,
                        struct slp_agg *agg, const struct cli_net *net, char *err, size_t errlen)
{
    bool bar = o->progress && isatty(STDERR_FILENO);
    struct sender_pool p = {.o = o,
                            .d = d,
                            .net_proto = net,
                            .comp = o->comp,
                            .codec = codec,
                            .window = o->parallel,
                            .stop_at = d->nbatches};
    atomic_init(&p.cancel, 0);
    int nthreads = o->parallel < d->nbatches ? o->parallel : d->nbatches;
    nthreads = nthreads > 0 ? nthreads : 1;
    p.out = calloc((size_t)d->nbatches + 1, sizeof *p.out);
    struct sender *th = calloc((size_t)nthreads, sizeof *th);
    bool made = p.out && th;
    for (int i = 0; made && i < nthreads; i++) {
        th[i].pool = &p;
        th[i].body = cli_body_new(d, p.comp, p.codec);
        th[i].spec = json_deep_copy(o->spec);
        made = th[i].body && th[i].spec;
    }
    if (!made) {
        for (int i = 0; th && i < nthreads; i++) {
            cli_body_free(th[i].body);
            json_decref(th[i].spec);
        }
        free(p.out);
        free(th);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    int started = 0, rc = -1;
    for (; started < nthreads; started++) {
        if (pthread_create(&th[started].th, NULL, sender, &th[started]) != 0) {
            break;
        }
    }
    if (started == 0) {
        snprintf(err, errlen, "cannot start a thread to send the batches");
        goto out;
    }
    if (bar) {
        progress(0, d->nbatches, 0, d->nimages);
    }
    pthread_mutex_lock(&p.mu);
    for (int k = 0; k < d->nbatches; k++) {
        while (p.out[k].state == 0) {
            pthread_cond_wait(&p.cv, &p.mu);
        }
        int64_t first = d->batch_start[k], last = d->batch_start[k + 1];
        char what[600], msg[CLI_MSG] = "";
        json_t *answer = p.out[k].answer;
        p.out[k].answer = NULL;
        bool failed = p.out[k].state == 2;
        if (failed) {
            snprintf(msg, sizeof msg, "%s", p.out[k].msg);
        }
        pthread_mutex_unlock(&p.mu);
        if (!failed && slp_agg_add(agg, answer, first, last, msg, sizeof msg)) {
            failed = true;
        }
        json_decref(answer);
        if (failed) {
            if (bar) {
                fputc('\n', stderr);
            }
            batch_what(d, k, what, sizeof what);
            const char *id = image_named(msg, d, first, last);
            if (id) {
                snprintf(err, errlen, "%s: %s (that image of the batch is %s)", what, msg, id);
            } else {
                snprintf(err, errlen, "%s: %s", what, msg);
            }
            goto out;
        }
        if (bar) {
            progress(k + 1, d->nbatches, last, d->nimages);
        }
        pthread_mutex_lock(&p.mu);
        p.added = k + 1;
        pthread_cond_broadcast(&p.cv);
    }
    pthread_mutex_unlock(&p.mu);
    if (bar) {
        fputc('\n', stderr);
    }
    rc = 0;
out:
    /* the later batches' answers are not wanted after a failure: their requests stop */
    atomic_store(&p.cancel, 1);
    pthread_mutex_lock(&p.mu);
    pthread_cond_broadcast(&p.cv);
    pthread_mutex_unlock(&p.mu);
    for (int i = 0; i < started; i++) {
        pthread_join(th[i].th, NULL);
    }
    for (int i = 0; i < nthreads; i++) {
        cli_body_free(th[i].body);
        json_decref(th[i].spec);
    }
    for (int k = 0; k < d->nbatches; k++) {
        json_decref(p.out[k].answer);
    }
    pthread_cond_destroy(&p.cv);
    pthread_mutex_destroy(&p.mu);
    free(p.out);
    free(th);
    return rc;
}

/* Writes result (borrowed) to stdout as --json asks: per-image values only when per_image, with
 * the URL, each gate's verdict and whether all passed. */
static void print_json(json_t *result, const struct opts *o, const struct cli_gate *gates,
                       bool per_image, bool passed)
{
    json_t *out = json_deep_copy(result);
    if (!per_image) {
        json_t *sec[2] = {json_object_get(out, "losses"), json_object_get(out, "metrics")};
        for (int s = 0; s < 2; s++) {
            const char *k;
            json_t *v;
            json_object_foreach(sec[s], k, v)
            {
                json_object_del(v, "per_image");
            }
        }
        json_object_del(out, "image_ids");
    }
    json_object_set_new(out, "url", json_string(o->url));
    json_t *gj = json_array();
    for (int i = 0; i < o->ngates; i++) {
        json_array_append_new(
            gj, json_pack("{s:s, s:o, s:b}", "gate", gates[i].text, "value",
                          isnan(gates[i].value) ? json_null() : json_real(gates[i].value), "passed",
                          gates[i].passed));
    }
    json_object_set_new(out, "gates", gj);
    json_object_set_new(out, "passed", json_boolean(passed));
    json_dumpf(out, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
    fputc('\n', stdout);
    json_decref(out);
}

/* `segloss score`: reads the data set, posts it batch by batch, combines the answers, checks the
 * gates and prints the result. Returns the exit status (0, EXIT_GATE, EXIT_ERROR). */
static int cmd_score(int argc, char **argv)
{
    struct opts o = {0};
    struct cli_data d;
    memset(&d, 0, sizeof d);
    struct slp_agg *agg = NULL;
    struct cli_gate *gates = NULL;
    json_t *result = NULL, *user_spec = NULL;
    bool gates_ok = false;
    struct cli_net net = {0};
    struct cli_html html = {.fd = -1};
    char msg[CLI_MSG] = "";
    char err[4096] = "";
    double t0 = now_s();
    int rc = parse_args(argc, argv, &o, false);
    if (rc) {
        goto out;
    }
    rc = EXIT_ERROR;
    bool per_image = o.per_image && spec_per_image(o.spec);
    /* the report's file first: a path that cannot be written fails before the scoring */
    if (o.html && cli_html_open(&html, o.html, msg, sizeof msg)) {
        snprintf(err, sizeof err, "%s", msg);
        goto out;
    }
    if (cli_data_open(&d, o.pred, o.target, o.h, o.w, o.batch_size, msg, sizeof msg)) {
        snprintf(err, sizeof err, "%s", msg);
        goto out;
    }
    if (d.kind == CLI_SRC_CSV && !json_object_get(o.spec, "prediction_type")) {
        json_object_set_new(o.spec, "prediction_type", json_string("labels"));
    }
    /* the spec as the user wrote it, for the report (slp_agg_new and the batches add to it) */
    user_spec = json_deep_copy(o.spec);
    agg = slp_agg_new(o.spec, d.nbatches, msg, sizeof msg);
    net = (struct cli_net){o.url, o.retries, o.timeout, 0.25, o.quiet, NULL, NULL};
    enum cli_compress codec = o.comp == CLI_COMPRESS_AUTO ? cli_auto_codec(&net) : o.comp;
    /* the senders have their own connections: this one would only sit idle meanwhile */
    if (net.curl) {
        curl_easy_cleanup(net.curl);
        net.curl = NULL;
    }
    gates = calloc((size_t)o.ngates + 1, sizeof *gates);
    if (!agg || !gates || !user_spec) {
        snprintf(err, sizeof err, "%s", agg ? "out of memory" : msg);
        goto out;
    }
    if (send_batches(&o, &d, codec, agg, &net, err, sizeof err)) {
        goto out;
    }
    /* the images' ids in batch order, the order the answers were added */
    const char **ids = malloc(sizeof *ids * (size_t)(d.nimages + 1));
    if (!ids) {
        snprintf(err, sizeof err, "out of memory");
        goto out;
    }
    for (int64_t i = 0; i < d.nimages; i++) {
        ids[i] = d.images[i].id;
    }
    result = slp_agg_result(agg, ids, (size_t)d.nimages, true);
    free(ids);
    if (!result) {
        snprintf(err, sizeof err, "out of memory");
        goto out;
    }
    if (cli_gates_eval(result, o.gates, o.ngates, gates, msg, sizeof msg)) {
        snprintf(err, sizeof err, "%s", msg);
        goto out;
    }
    gates_ok = true;
    rc = 0;
    for (int i = 0; i < o.ngates; i++) {
        if (!gates[i].passed) {
            rc = EXIT_GATE;
            if (isnan(gates[i].value)) {
                fprintf(stderr, "segloss: gate failed: %s (%s is undefined: null)\n", gates[i].text,
                        gates[i].label);
            } else {
                fprintf(stderr, "segloss: gate failed: %s (%s = %.6f)\n", gates[i].text,
                        gates[i].label, gates[i].value);
            }
        }
    }
    if (o.json) {
        print_json(result, &o, gates, per_image, rc == 0);
    } else {
        cli_print_table(stdout, result, gates, o.ngates);
    }
out:
    if (err[0]) {
        fprintf(stderr, "segloss: %s\n", err);
    }
    if (o.junit) {
        char jmsg[CLI_MSG];
        if (cli_write_junit(o.junit, gates_ok ? result : NULL, gates, gates_ok ? o.ngates : 0,
                            err[0] ? err : NULL, now_s() - t0, jmsg, sizeof jmsg)) {
            fprintf(stderr, "segloss: %s\n", jmsg);
            rc = EXIT_ERROR;
        }
    }
    /* the report of every scored data set, gates failed or not (exit 1 is when CI needs it);
     * without a combined answer (an input, network or server error) there is none */
    if (html.fd >= 0 && result) {
        int k = o.report_worst >= 0 ? (int)o.report_worst : SLP_REPORT_WORST_DEFAULT;
        char hmsg[CLI_MSG];
        if (cli_html_write(&html, result, user_spec, &d, k, hmsg, sizeof hmsg)) {
            fprintf(stderr, "segloss: %s\n", hmsg);
            rc = EXIT_ERROR;
        } else if (!o.quiet) {
            fprintf(stderr, "segloss: report written to %s\n", o.html);
        }
    }
    cli_html_discard(&html);
    for (int i = 0; gates && i < o.ngates; i++) {
        free(gates[i].text);
        free(gates[i].label);
    }
    free(gates);
    json_decref(result);
    json_decref(user_spec);
    slp_agg_free(agg);
    cli_data_free(&d);
    if (net.curl) {
        curl_easy_cleanup(net.curl);
    }
    json_decref(o.spec);
    free(o.gates);
    free(o.url_buf);
    return rc;
}

/* segloss COMMAND [options]: dispatches to score, health or the challenge verbs (chal.c);
 * returns the exit status. */
int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_score, stderr);
        fputs(usage_chal, stderr);
        return EXIT_ERROR;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage_score, stdout);
        fputs(usage_chal, stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("segloss %s\n", SL_VERSION);
        return 0;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    int rc;
    if (!strcmp(argv[1], "score")) {
        rc = cmd_score(argc, argv);
    } else if (!strcmp(argv[1], "health")) {
        rc = cmd_health(argc, argv);
    } else if (!strcmp(argv[1], "challenge") || !strcmp(argv[1], "submit") ||
               !strcmp(argv[1], "leaderboard")) {
        /* chal.c prints the whole --help as one string */
        size_t ls = strlen(usage_score), lc = strlen(usage_chal);
        char *usage = malloc(ls + lc + 1);
        if (usage) {
            memcpy(usage, usage_score, ls);
            memcpy(usage + ls, usage_chal, lc + 1);
            rc = cli_chal_main(argc, argv, usage);
            free(usage);
        } else {
            fprintf(stderr, "segloss: out of memory\n");
            rc = EXIT_ERROR;
        }
    } else {
        rc = usage_error("unknown command '%s': score, health, challenge, submit or leaderboard",
                         argv[1]);
    }
    curl_global_cleanup();
    return rc;
}
