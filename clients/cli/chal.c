/* chal.c - the CLI's challenge verbs (the HTTP contract: the README's challenges section and
 * /openapi.json): `segloss challenge ...` for the organiser (configure, reference, add, revoke,
 * participants, rescore, export), `segloss submit` and `segloss leaderboard` for participants.
 *
 * The token comes from --token, --token-file or SEGLOSS_TOKEN and goes only into the
 * Authorization header; nothing here prints one except `challenge add`, which prints the new
 * participant's token once on stdout. Exit status: 0 done, 1 a submission refused by its quota
 * (429) or the challenge's window (403), 2 anything else (usage, input, network, server). */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

#define EXIT_REFUSED 1
#define EXIT_ERROR 2

enum {
    C_URL = 256,
    C_TOKEN,
    C_TOKEN_FILE,
    C_SHAPE,
    C_IDS,
    C_NOTE,
    C_COMPRESS,
    C_JSON,
    C_PRIVATE,
    C_CSV,
    C_WAIT,
    C_OUTPUT,
    C_RETRIES,
    C_TIMEOUT,
    C_QUIET,
    C_PARALLEL,
    C_HELP,
};

static const struct option chal_opts[] = {
    {"url", required_argument, NULL, C_URL},
    {"token", required_argument, NULL, C_TOKEN},
    {"token-file", required_argument, NULL, C_TOKEN_FILE},
    {"shape", required_argument, NULL, C_SHAPE},
    {"ids", required_argument, NULL, C_IDS},
    {"note", required_argument, NULL, C_NOTE},
    {"compress", required_argument, NULL, C_COMPRESS},
    {"json", no_argument, NULL, C_JSON},
    {"private", no_argument, NULL, C_PRIVATE},
    {"csv", no_argument, NULL, C_CSV},
    {"wait", no_argument, NULL, C_WAIT},
    {"output", required_argument, NULL, C_OUTPUT},
    {"retries", required_argument, NULL, C_RETRIES},
    {"timeout", required_argument, NULL, C_TIMEOUT},
    {"quiet", no_argument, NULL, C_QUIET},
    {"parallel", required_argument, NULL, C_PARALLEL},
    {"help", no_argument, NULL, C_HELP},
    {NULL, 0, NULL, 0},
};

/* What a challenge verb was given. Strings borrow argv or the environment, except the owned
 * ones said so. */
struct chal_opts {
    const char *url, *token_file, *ids, *note, *output;
    char *url_buf; /* url without trailing slashes (owned) */
    char *token;   /* owned: wiped and freed by opts_free */
    int64_t h, w;
    enum cli_compress comp;
    bool json, private_split, csv, wait, quiet;
    int retries;
    /* --parallel: accepted as score takes it; a submission and a reference are one upload
     * each (CHALLENGES.md has no chunked upload), so it sends nothing more at once */
    int parallel;
    long timeout;
    char **args; /* positional arguments (borrow argv) */
    int nargs;
};

/* What a verb needs while it runs: the options and the connection. */
struct ctx {
    struct chal_opts o;
    struct cli_net net;
    char msg[CLI_MSG];
};

/* Prints a usage error and returns EXIT_ERROR. */
__attribute__((format(printf, 1, 2))) static int chal_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "segloss: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(segloss --help for the options)\n");
    return EXIT_ERROR;
}

/* Prints an error (not a usage one) and returns EXIT_ERROR. */
__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "segloss: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EXIT_ERROR;
}

/* Whether s is a whole decimal integer in [min, max]; sets *out when it is. */
static bool whole(const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno || v < min || v > max) {
        return false;
    }
    *out = v;
    return true;
}

/* Wipes and frees the token, frees the url copy. */
static void opts_free(struct chal_opts *o)
{
    if (o->token) {
        explicit_bzero(o->token, strlen(o->token));
        free(o->token);
    }
    free(o->url_buf);
    memset(o, 0, sizeof *o);
}

/* The first line of path, without its line end (new), for --token-file; NULL with msg. */
static char *read_token_file(const char *path, char *msg, size_t msglen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(msg, msglen, "--token-file %s: %s", path, strerror(errno));
        return NULL;
    }
    char buf[512];
    char *t = NULL;
    if (fgets(buf, sizeof buf, f)) {
        size_t n = strlen(buf);
        while (n > 0 && isspace((unsigned char)buf[n - 1])) {
            buf[--n] = '\0';
        }
        t = n ? strdup(buf) : NULL;
    }
    explicit_bzero(buf, sizeof buf);
    fclose(f);
    if (!t) {
        snprintf(msg, msglen, "--token-file %s: no token on its first line", path);
    }
    return t;
}

/* Applies option c (argument a) to o. Returns 0, or EXIT_ERROR after a usage message; --help
 * prints the usage and exits. */
static int chal_apply(struct chal_opts *o, int c, const char *a, const char *given,
                      const char *usage)
{
    int64_t v;
    switch (c) {
    case C_URL:
        o->url = a;
        break;
    case C_TOKEN:
        free(o->token);
        o->token = strdup(a);
        break;
    case C_TOKEN_FILE:
        o->token_file = a;
        break;
    case C_SHAPE:
        if (cli_parse_shape(a, &o->h, &o->w) != 0) {
            return chal_usage("--shape '%s': H,W with positive integers", a);
        }
        break;
    case C_IDS:
        o->ids = a;
        break;
    case C_NOTE:
        o->note = a;
        break;
    case C_COMPRESS:
        if (cli_parse_compress(a, &o->comp) != 0) {
            return chal_usage("--compress '%s': auto, gzip, zstd or none", a);
        }
        break;
    case C_JSON:
        o->json = true;
        break;
    case C_PRIVATE:
        o->private_split = true;
        break;
    case C_CSV:
        o->csv = true;
        break;
    case C_WAIT:
        o->wait = true;
        break;
    case 'o':
    case C_OUTPUT:
        o->output = a;
        break;
    case C_RETRIES:
        if (!whole(a, 0, 100, &v)) {
            return chal_usage("--retries '%s': 0..100", a);
        }
        o->retries = (int)v;
        break;
    case C_TIMEOUT:
        if (!whole(a, 1, 86400, &v)) {
            return chal_usage("--timeout '%s': seconds, 1..86400", a);
        }
        o->timeout = (long)v;
        break;
    case C_QUIET:
        o->quiet = true;
        break;
    case C_PARALLEL:
        if (!whole(a, 1, CLI_PARALLEL_MAX, &v)) {
            return chal_usage("--parallel '%s': connections at once, 1..%d", a, CLI_PARALLEL_MAX);
        }
        o->parallel = (int)v;
        break;
    case 'h':
    case C_HELP:
        fputs(usage, stdout);
        exit(0);
    default:
        return chal_usage("unknown or incomplete option '%s'", given);
    }
    return 0;
}

/* Parses argv from index first (options anywhere, the rest positional) into x->o with the
 * defaults, and takes the token from --token, --token-file or SEGLOSS_TOKEN. Returns 0, or
 * EXIT_ERROR after a usage message. */
static int chal_parse(struct ctx *x, int argc, char **argv, int first, const char *usage)
{
    struct chal_opts *o = &x->o;
    const char *env = getenv("SEGLOSS_URL");
    o->url = env && *env ? env : "http://127.0.0.1:8080";
    o->comp = CLI_COMPRESS_AUTO;
    o->retries = 3;
    o->parallel = 1;
    o->timeout = 300;
    int c, rc;
    optind = first;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "ho:", chal_opts, NULL)) != -1) {
        if ((rc = chal_apply(o, c, optarg, argv[optind - 1], usage))) {
            return rc;
        }
    }
    o->args = argv + optind;
    o->nargs = argc - optind;
    if (!o->token && o->token_file) {
        o->token = read_token_file(o->token_file, x->msg, sizeof x->msg);
        if (!o->token) {
            return fail("%s", x->msg);
        }
    }
    const char *et = getenv("SEGLOSS_TOKEN");
    if (!o->token && et && *et) {
        o->token = strdup(et);
    }
    size_t ul = strlen(o->url);
    while (ul > 0 && o->url[ul - 1] == '/') {
        ul--;
    }
    o->url_buf = strndup(o->url, ul);
    o->url = o->url_buf ? o->url_buf : o->url;
    x->net = (struct cli_net){o->url, o->retries, o->timeout, 0.25, o->quiet, NULL, NULL};
    return 0;
}

/* Whether name may stand in a URL path as it is (challenge, participant and image names are
 * letters, digits, '.', '_' and '-'; the server checks the exact rules). */
static bool path_safe(const char *name)
{
    if (!*name || strlen(name) > 128 || !strcmp(name, ".") || !strcmp(name, "..")) {
        return false;
    }
    for (const char *p = name; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-') {
            return false;
        }
    }
    return true;
}

/* Checks that the verb got exactly n positionals (names: what they are, for the message) and
 * that the first, the challenge's name, is path-safe. Returns 0 or EXIT_ERROR. */
static int want_args(const struct ctx *x, int n, const char *verb, const char *names)
{
    if (x->o.nargs != n) {
        return chal_usage("%s takes %s", verb, names);
    }
    if (!path_safe(x->o.args[0])) {
        return chal_usage("'%s' is not a challenge name (lower-case letters, digits and '-')",
                          x->o.args[0]);
    }
    return 0;
}

/* Sends one request (cli_request) with the verb's token. Returns the HTTP status with *r
 * filled (cli_reply_clear), or -1 after printing the network error. */
static long call(struct ctx *x, const char *method, const char *path, struct cli_body *body,
                 const char *text, const char *ctype, struct cli_reply *r)
{
    long st =
        cli_request(&x->net, method, path, x->o.token, body, text, ctype, r, x->msg, sizeof x->msg);
    if (st < 0) {
        fprintf(stderr, "segloss: %s %s: %s\n", method, path, x->msg);
    }
    return st;
}

/* Prints an error answer ("STATUS TITLE: DETAIL", and a hint on 401/403 about the token) and
 * returns EXIT_ERROR. */
static int http_error(struct ctx *x, const char *what, long st, const struct cli_reply *r)
{
    char detail[CLI_MSG];
    cli_reply_problem(r, detail, sizeof detail);
    fprintf(stderr, "segloss: %s: %ld %s\n", what, st, detail);
    if (st == 401 && !x->o.token) {
        fprintf(stderr, "segloss: no token: give --token, --token-file or SEGLOSS_TOKEN\n");
    }
    return EXIT_ERROR;
}

/* The JSON of a 2xx answer (new), or NULL after printing why it is not JSON. */
static json_t *answer_json(const char *what, const struct cli_reply *r)
{
    json_error_t je;
    json_t *j = r->body ? json_loadb(r->body, r->len, 0, &je) : NULL;
    if (!j) {
        fprintf(stderr, "segloss: %s: the answer is not JSON%s%s\n", what, r->body ? ": " : "",
                r->body ? je.text : "");
    }
    return j;
}

/* Writes j (borrowed) to stdout, indented. */
static void print_json(const json_t *j)
{
    json_dumpf(j, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
    fputc('\n', stdout);
}

/* Writes a JSON value for a table cell to out: numbers %.6g, null "null", strings as they
 * are, anything else compact JSON. */
static void print_value(FILE *out, const json_t *v)
{
    if (json_is_real(v) || json_is_integer(v)) {
        fprintf(out, "%.6g", json_number_value(v));
    } else if (json_is_string(v)) {
        fputs(json_string_value(v), out);
    } else if (!v || json_is_null(v)) {
        fputs("null", out);
    } else {
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        fputs(s ? s : "?", out);
        free(s);
    }
}

/* Reads a whole file (new, NUL-terminated); NULL with msg. */
static char *slurp(const char *path, char *msg, size_t msglen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(msg, msglen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *s = malloc(cap);
    while (s) {
        size_t got = fread(s + len, 1, cap - len - 1, f);
        len += got;
        if (len < cap - 1) {
            break;
        }
        char *ns = cap > ((size_t)1 << 30) ? NULL : realloc(s, cap * 2);
        if (!ns) {
            free(s);
            s = NULL;
            break;
        }
        s = ns;
        cap *= 2;
    }
    if (!s || ferror(f)) {
        snprintf(msg, msglen, "%s: %s", path, s ? strerror(errno) : "out of memory or over 1 GiB");
        free(s);
        s = NULL;
    } else {
        s[len] = '\0';
    }
    fclose(f);
    return s;
}

/* ---- the organiser's verbs ---------------------------------------------------------------- */

/* challenge configure NAME CONFIG.json: PUT /v1/challenges/NAME. */
static int do_configure(struct ctx *x)
{
    int rc = want_args(x, 2, "challenge configure", "NAME CONFIG.json");
    if (rc) {
        return rc;
    }
    const char *name = x->o.args[0];
    char *text = slurp(x->o.args[1], x->msg, sizeof x->msg);
    if (!text) {
        return fail("%s", x->msg);
    }
    json_error_t je;
    json_t *cfg = json_loads(text, 0, &je);
    if (!cfg) {
        free(text);
        return fail("%s: not JSON: line %d: %s", x->o.args[1], je.line, je.text);
    }
    json_decref(cfg);
    char path[256];
    snprintf(path, sizeof path, "/v1/challenges/%s", name);
    struct cli_reply r;
    long st = call(x, "PUT", path, NULL, text, "application/json", &r);
    free(text);
    rc = EXIT_ERROR;
    if (st == 200 || st == 201) {
        json_t *j = answer_json("configure", &r);
        if (j) {
            if (x->o.json) {
                print_json(j);
            } else {
                printf("challenge %s: configuration %s\n", name,
                       st == 201 ? "created" : "replaced");
            }
            json_decref(j);
            rc = 0;
        }
    } else if (st > 0) {
        rc = http_error(x, "configure", st, &r);
    }
    cli_reply_clear(&r);
    return rc;
}

/* The images of the source args[1] (with --shape, --ids) as a streamed body with an optional
 * note; sets *d and *body (free both). Returns 0, or EXIT_ERROR after a message. */
static int source_body(struct ctx *x, const char *note, struct cli_data *d, struct cli_body **body)
{
    if (cli_source_open(d, x->o.args[1], x->o.ids, x->o.h, x->o.w, x->msg, sizeof x->msg)) {
        return fail("%s", x->msg);
    }
    *body = cli_body_new(d, x->o.comp,
                         x->o.comp == CLI_COMPRESS_AUTO ? cli_auto_codec(&x->net) : x->o.comp);
    if (!*body || cli_body_images(*body, note, x->msg, sizeof x->msg)) {
        return fail("%s", *body ? x->msg : "out of memory");
    }
    return 0;
}

/* challenge reference NAME SOURCE: PUT /v1/challenges/NAME/reference, streamed. */
static int do_reference(struct ctx *x)
{
    int rc = want_args(x, 2, "challenge reference", "NAME (FILE.npy | DIR | FILE.csv --shape H,W)");
    if (rc) {
        return rc;
    }
    struct cli_data d;
    struct cli_body *body = NULL;
    struct cli_reply r = {0};
    if ((rc = source_body(x, NULL, &d, &body))) {
        goto out;
    }
    char path[256];
    snprintf(path, sizeof path, "/v1/challenges/%s/reference", x->o.args[0]);
    long st = call(x, "PUT", path, body, NULL, NULL, &r);
    rc = EXIT_ERROR;
    if (st == 200 || st == 201) {
        json_t *j = answer_json("reference", &r);
        if (j) {
            if (x->o.json) {
                print_json(j);
            } else {
                printf("challenge %s: reference of %lld images (%lld public, %lld private), "
                       "%lld bytes, sha256 %s\n",
                       x->o.args[0], (long long)json_integer_value(json_object_get(j, "images")),
                       (long long)json_integer_value(json_object_get(j, "public")),
                       (long long)json_integer_value(json_object_get(j, "private")),
                       (long long)json_integer_value(json_object_get(j, "bytes")),
                       json_string_value(json_object_get(j, "sha256"))
                           ? json_string_value(json_object_get(j, "sha256"))
                           : "?");
            }
            json_decref(j);
            rc = 0;
        }
    } else if (st > 0) {
        rc = http_error(x, "reference", st, &r);
    }
out:
    cli_reply_clear(&r);
    cli_body_free(body);
    cli_data_free(&d);
    return rc;
}

/* challenge add NAME PARTICIPANT: POST .../participants; prints the new token once. */
static int do_add(struct ctx *x)
{
    int rc = want_args(x, 2, "challenge add", "NAME PARTICIPANT");
    if (rc) {
        return rc;
    }
    json_t *req = json_pack("{s:s}", "name", x->o.args[1]);
    char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!text) {
        return fail("out of memory");
    }
    char path[256];
    snprintf(path, sizeof path, "/v1/challenges/%s/participants", x->o.args[0]);
    struct cli_reply r;
    long st = call(x, "POST", path, NULL, text, "application/json", &r);
    free(text);
    rc = EXIT_ERROR;
    if (st == 201) {
        json_t *j = answer_json("add", &r);
        const char *token = json_string_value(json_object_get(j, "token"));
        if (token) {
            fprintf(stderr,
                    "segloss: participant %s of challenge %s added; its token follows, shown "
                    "this once (give it to the participant only)\n",
                    x->o.args[1], x->o.args[0]);
            printf("%s\n", token);
            rc = 0;
        } else if (j) {
            fprintf(stderr, "segloss: add: the answer holds no token\n");
        }
        json_decref(j);
    } else if (st > 0) {
        rc = http_error(x, "add", st, &r);
    }
    if (r.body) {
        explicit_bzero(r.body, r.len);
    }
    cli_reply_clear(&r);
    return rc;
}

/* challenge revoke NAME PARTICIPANT: DELETE .../participants/PARTICIPANT. */
static int do_revoke(struct ctx *x)
{
    int rc = want_args(x, 2, "challenge revoke", "NAME PARTICIPANT");
    if (rc) {
        return rc;
    }
    if (!path_safe(x->o.args[1])) {
        return chal_usage("'%s' is not a participant name (letters, digits, '.', '_', '-')",
                          x->o.args[1]);
    }
    char path[320];
    snprintf(path, sizeof path, "/v1/challenges/%s/participants/%s", x->o.args[0], x->o.args[1]);
    struct cli_reply r;
    long st = call(x, "DELETE", path, NULL, NULL, NULL, &r);
    rc = EXIT_ERROR;
    if (st == 204 || st == 200) {
        printf("challenge %s: participant %s revoked\n", x->o.args[0], x->o.args[1]);
        rc = 0;
    } else if (st > 0) {
        rc = http_error(x, "revoke", st, &r);
    }
    cli_reply_clear(&r);
    return rc;
}

/* A GET whose 200 answer is JSON: *out (new). Returns 0, or EXIT_ERROR after a message. */
static int get_json(struct ctx *x, const char *what, const char *path, json_t **out)
{
    struct cli_reply r;
    long st = call(x, "GET", path, NULL, NULL, NULL, &r);
    int rc = EXIT_ERROR;
    *out = NULL;
    if (st == 200) {
        *out = answer_json(what, &r);
        rc = *out ? 0 : EXIT_ERROR;
    } else if (st > 0) {
        rc = http_error(x, what, st, &r);
    }
    cli_reply_clear(&r);
    return rc;
}

/* challenge participants NAME: GET .../participants as a table (or --json). */
static int do_participants(struct ctx *x)
{
    int rc = want_args(x, 1, "challenge participants", "NAME");
    if (rc) {
        return rc;
    }
    char path[256];
    snprintf(path, sizeof path, "/v1/challenges/%s/participants", x->o.args[0]);
    json_t *j;
    if ((rc = get_json(x, "participants", path, &j))) {
        return rc;
    }
    if (x->o.json) {
        print_json(j);
    } else {
        printf("%-24s %-22s %11s %6s %s\n", "participant", "created_at", "submissions", "scored",
               "revoked");
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(j, "participants"), i, p)
        {
            const char *n = json_string_value(json_object_get(p, "name"));
            const char *at = json_string_value(json_object_get(p, "created_at"));
            printf("%-24s %-22s %11lld %6lld %s\n", n ? n : "?", at ? at : "",
                   (long long)json_integer_value(json_object_get(p, "submissions")),
                   (long long)json_integer_value(json_object_get(p, "scored")),
                   json_is_true(json_object_get(p, "revoked")) ? "yes" : "no");
        }
    }
    json_decref(j);
    return 0;
}

/* Prints a re-score's progress {done, failed, total, running} (borrowed). */
static void print_rescore(const char *name, const json_t *j)
{
    printf("challenge %s: re-score %s: %lld of %lld done, %lld failed\n", name,
           json_is_true(json_object_get(j, "running")) ? "running" : "finished",
           (long long)json_integer_value(json_object_get(j, "done")),
           (long long)json_integer_value(json_object_get(j, "total")),
           (long long)json_integer_value(json_object_get(j, "failed")));
}

/* Seconds of the monotonic clock. */
static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* challenge rescore NAME [--wait]: POST .../rescore; with --wait, GET it every 0.25 s until it
 * is no longer running (at most --timeout seconds). */
static int do_rescore(struct ctx *x)
{
    int rc = want_args(x, 1, "challenge rescore", "NAME");
    if (rc) {
        return rc;
    }
    char path[256];
    snprintf(path, sizeof path, "/v1/challenges/%s/rescore", x->o.args[0]);
    struct cli_reply r;
    long st = call(x, "POST", path, NULL, NULL, NULL, &r);
    json_t *j = NULL;
    if (st == 200 || st == 202) {
        j = answer_json("rescore", &r);
    } else if (st > 0) {
        http_error(x, "rescore", st, &r);
    }
    cli_reply_clear(&r);
    if (!j) {
        return EXIT_ERROR;
    }
    double deadline = mono_s() + (double)x->o.timeout;
    while (x->o.wait && json_is_true(json_object_get(j, "running"))) {
        if (mono_s() > deadline) {
            print_rescore(x->o.args[0], j);
            json_decref(j);
            return fail("rescore: still running after %ld s (--timeout)", x->o.timeout);
        }
        struct timespec ts = {0, 250 * 1000 * 1000};
        nanosleep(&ts, NULL);
        json_decref(j);
        if ((rc = get_json(x, "rescore", path, &j))) {
            return rc;
        }
    }
    if (x->o.json) {
        print_json(j);
    } else {
        print_rescore(x->o.args[0], j);
    }
    json_decref(j);
    return 0;
}

/* Writes n bytes of text to --output (or stdout). Returns 0, or EXIT_ERROR after a message. */
static int write_out(const struct ctx *x, const char *text, size_t n)
{
    FILE *f = x->o.output ? fopen(x->o.output, "wb") : stdout;
    if (!f) {
        return fail("%s: %s", x->o.output, strerror(errno));
    }
    bool ok = fwrite(text, 1, n, f) == n;
    if (x->o.output) {
        ok = fclose(f) == 0 && ok;
    } else {
        ok = fflush(f) == 0 && ok;
    }
    if (!ok) {
        return fail("%s: %s", x->o.output ? x->o.output : "stdout", strerror(errno));
    }
    return 0;
}

/* challenge export NAME [-o FILE]: GET .../submissions?format=csv (every submission with its
 * status, error, hashes and the scores of both splits). */
static int do_export(struct ctx *x)
{
    int rc = want_args(x, 1, "challenge export", "NAME");
    if (rc) {
        return rc;
    }
    char path[256];
    snprintf(path, sizeof path, "/v1/challenges/%s/submissions?format=csv", x->o.args[0]);
    struct cli_reply r;
    long st = call(x, "GET", path, NULL, NULL, NULL, &r);
    rc = EXIT_ERROR;
    if (st == 200) {
        rc = write_out(x, r.body ? r.body : "", r.len);
    } else if (st > 0) {
        rc = http_error(x, "export", st, &r);
    }
    cli_reply_clear(&r);
    return rc;
}

/* ---- the participants' verbs ------------------------------------------------------------- */

/* Prints a 201 submission answer (borrowed): id, public scores, rank and quota. */
static void print_submission(const json_t *j)
{
    const char *id = json_string_value(json_object_get(j, "id"));
    printf("submission %s scored\n", id ? id : "?");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)json_object_get(j, "public"), k, v)
    {
        printf("  %-32s ", k);
        print_value(stdout, v);
        fputc('\n', stdout);
    }
    json_t *rank = json_object_get(j, "public_rank");
    if (json_is_integer(rank)) {
        printf("public rank %lld\n", (long long)json_integer_value(rank));
    }
    json_t *q = json_object_get(j, "quota");
    if (q) {
        /* a null per_day or total is no limit: said so, not printed as "null" */
        printf("quota: ");
        print_value(stdout, json_object_get(q, "used_today"));
        if (json_is_null(json_object_get(q, "per_day"))) {
            printf(" today (no daily limit), ");
        } else {
            printf(" of ");
            print_value(stdout, json_object_get(q, "per_day"));
            printf(" today (");
            print_value(stdout, json_object_get(q, "remaining_today"));
            printf(" left, resets at ");
            print_value(stdout, json_object_get(q, "resets_at"));
            printf("), ");
        }
        print_value(stdout, json_object_get(q, "used_total"));
        if (json_is_null(json_object_get(q, "total"))) {
            printf(" in all (no total limit)\n");
        } else {
            printf(" of ");
            print_value(stdout, json_object_get(q, "total"));
            printf(" in all\n");
        }
    }
}

/* Whether a 403 answer to a submission is the challenge's window ("the challenge opens at
 * ...", "... closed at ...") rather than a token that may not submit (the admin's), which the
 * server also answers 403. */
static bool window_refusal(const struct cli_reply *r)
{
    char detail[CLI_MSG];
    cli_reply_problem(r, detail, sizeof detail);
    return strstr(detail, " opens at ") || strstr(detail, " closed at ");
}

/* submit NAME SOURCE [--note TEXT]: POST /v1/challenges/NAME/submissions, streamed. Exit 0 on
 * 201, 1 on a quota (429) or window (403 naming the time) refusal, 2 on anything else. */
static int do_submit(struct ctx *x)
{
    int rc = want_args(x, 2, "submit", "NAME (FILE.npy | DIR | FILE.csv --shape H,W)");
    if (rc) {
        return rc;
    }
    if (!x->o.token) {
        return chal_usage("submit needs a token: --token, --token-file or SEGLOSS_TOKEN");
    }
    struct cli_data d;
    struct cli_body *body = NULL;
    struct cli_reply r = {0};
    if ((rc = source_body(x, x->o.note, &d, &body))) {
        goto out;
    }
    char path[256];
    snprintf(path, sizeof path, "/v1/challenges/%s/submissions", x->o.args[0]);
    long st = call(x, "POST", path, body, NULL, NULL, &r);
    rc = EXIT_ERROR;
    if (st == 201) {
        json_t *j = answer_json("submit", &r);
        if (j) {
            if (x->o.json) {
                print_json(j);
            } else {
                print_submission(j);
            }
            json_decref(j);
            rc = 0;
        }
    } else if (st == 429 || (st == 403 && window_refusal(&r))) {
        char detail[CLI_MSG];
        cli_reply_problem(&r, detail, sizeof detail);
        fprintf(stderr, "segloss: submission refused: %ld %s\n", st, detail);
        if (r.retry_after >= 0) {
            fprintf(stderr, "segloss: Retry-After: %.0f s\n", r.retry_after);
        }
        rc = EXIT_REFUSED;
    } else if (st > 0) {
        rc = http_error(x, "submit", st, &r);
    }
out:
    cli_reply_clear(&r);
    cli_body_free(body);
    cli_data_free(&d);
    return rc;
}

/* Prints a leaderboard answer (borrowed) as a table: rank, participant, the columns, entries,
 * submitted_at. */
static void print_board(const json_t *j)
{
    json_t *cols = json_object_get(j, "columns");
    printf("%s leaderboard of %s\n", json_string_value(json_object_get(j, "split")),
           json_string_value(json_object_get(j, "challenge")));
    printf("%-5s %-24s", "rank", "participant");
    size_t i;
    json_t *c;
    json_array_foreach(cols, i, c)
    {
        const char *k = json_string_value(json_object_get(c, "key"));
        printf(" %-20s", k ? k : "?");
    }
    printf(" %7s %s\n", "entries", "submitted_at");
    json_t *row;
    json_array_foreach(json_object_get(j, "rows"), i, row)
    {
        const char *p = json_string_value(json_object_get(row, "participant"));
        const char *at = json_string_value(json_object_get(row, "submitted_at"));
        printf("%-5lld %-24s", (long long)json_integer_value(json_object_get(row, "rank")),
               p ? p : "?");
        size_t k;
        json_array_foreach(cols, k, c)
        {
            const char *key = json_string_value(json_object_get(c, "key"));
            json_t *v = key ? json_object_get(json_object_get(row, "scores"), key) : NULL;
            char cell[64];
            if (json_is_number(v)) {
                snprintf(cell, sizeof cell, "%.6g%s", json_number_value(v),
                         json_is_true(json_object_get(row, "stale")) ? "*" : "");
            } else {
                snprintf(cell, sizeof cell, "null");
            }
            printf(" %-20s", cell);
        }
        printf(" %7lld %s\n", (long long)json_integer_value(json_object_get(row, "entries")),
               at ? at : "");
    }
}

/* leaderboard NAME [--private] [--csv | --json]: GET /v1/challenges/NAME/leaderboard. */
static int do_leaderboard(struct ctx *x)
{
    int rc = want_args(x, 1, "leaderboard", "NAME");
    if (rc) {
        return rc;
    }
    if (x->o.csv && x->o.json) {
        return chal_usage("--csv or --json, not both");
    }
    char path[256];
    snprintf(path, sizeof path, "/v1/challenges/%s/leaderboard?split=%s%s", x->o.args[0],
             x->o.private_split ? "private" : "public", x->o.csv ? "&format=csv" : "");
    struct cli_reply r;
    long st = call(x, "GET", path, NULL, NULL, NULL, &r);
    rc = EXIT_ERROR;
    if (st == 200 && x->o.csv) {
        rc = write_out(x, r.body ? r.body : "", r.len);
    } else if (st == 200) {
        json_t *j = answer_json("leaderboard", &r);
        if (j) {
            if (x->o.json) {
                print_json(j);
            } else {
                print_board(j);
            }
            rc = 0;
        }
        json_decref(j);
    } else if (st > 0) {
        rc = http_error(x, "leaderboard", st, &r);
    }
    cli_reply_clear(&r);
    return rc;
}

/* ---- dispatch ------------------------------------------------------------------------------ */

/* The challenge verbs: `segloss challenge VERB ...`, `segloss submit ...`, `segloss leaderboard
 * ...` (argv[1] says which). usage is the text --help prints. Returns the exit status. */
int cli_chal_main(int argc, char **argv, const char *usage)
{
    static const struct {
        const char *name;
        int (*fn)(struct ctx *);
    } verbs[] = {
        {"configure", do_configure}, {"reference", do_reference},       {"add", do_add},
        {"revoke", do_revoke},       {"participants", do_participants}, {"rescore", do_rescore},
        {"export", do_export},
    };
    int (*fn)(struct ctx *) = NULL;
    int first = 2;
    if (!strcmp(argv[1], "submit")) {
        fn = do_submit;
    } else if (!strcmp(argv[1], "leaderboard")) {
        fn = do_leaderboard;
    } else {
        if (argc < 3 || !strcmp(argv[2], "--help") || !strcmp(argv[2], "-h")) {
            if (argc >= 3) {
                fputs(usage, stdout);
                return 0;
            }
            return chal_usage("challenge needs a verb: configure, reference, add, revoke, "
                              "participants, rescore or export");
        }
        for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
            if (!strcmp(argv[2], verbs[i].name)) {
                fn = verbs[i].fn;
            }
        }
        if (!fn) {
            return chal_usage("unknown challenge verb '%s': configure, reference, add, revoke, "
                              "participants, rescore or export",
                              argv[2]);
        }
        first = 3;
    }
    struct ctx x;
    memset(&x, 0, sizeof x);
    int rc = chal_parse(&x, argc, argv, first, usage);
    if (rc == 0) {
        rc = fn(&x);
    }
    if (x.net.curl) {
        curl_easy_cleanup(x.net.curl);
    }
    opts_free(&x.o);
    return rc;
}
