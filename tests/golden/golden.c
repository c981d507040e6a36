/* golden.c - runs the golden cases (every *.json in tests/golden/cases) twice each: in-process
 * through slp_score_request() and over HTTP against a seglossd this program starts itself, or
 * one already running at --url (a container: make test-image).
 *
 * Usage: golden --golden DIR (--seglossd PATH | --url http://127.0.0.1:PORT | --no-http)
 *               [--only ID_SUBSTRING]
 * SEGLOSS_TEST (tests/filter.h) selects cases by their full name "golden/ID", as --only does by a
 * substring of the ID; unselected cases are not counted.
 * --no-http runs the in-process half only (no server; used by make valgrind). With --url the
 * server is not this program's: it is neither restarted after a failure nor stopped at the end.
 * Prints "ok   ID [mode]" or "FAIL ID [mode]: path = got, want want (tol t)" per case and mode,
 * then "golden: N passed, M failed, K skipped"; exits 1 when anything failed.
 */
#include <dirent.h>
#include <math.h>
#include <stdarg.h>

#include "../filter.h"
#include "../http_util.h"
#include "proto.h"
#include "segloss.h"

/* The case-id prefixes this version answers; a case file with any other prefix is reported as
 * skipped, so that new kinds of cases show up without failing until their feature lands. */
static const char *const supported_prefixes[] = {
    /* binary losses */
    "ce_",
    "wce_",
    "balanced_ce_",
    "focal_",
    "dice_",
    "jaccard_",
    "tversky_",
    "focal_tversky_",
    "gdice_",
    "mcc_",
    "lovasz_hinge_",
    "combo_",
    "seed_example_",
    /* binary confusion-matrix metrics */
    "metrics_",
    /* multiclass and multilabel modes */
    "mc_",
    "ml_",
    /* the distance family */
    "dwce_",
    "weight_map_",
    "surface_",
    /* wire encodings */
    "enc_",
    /* bad input */
    "err_",
};

#define MAX_SHOWN 5       /* mismatches printed per case and mode */
#define HTTP_TIMEOUT 30L  /* seconds per request */
#define STOP_TIMEOUT 30.0 /* seconds for the server to drain and exit after SIGTERM */

/* Returns NULL when the case id is supported, else the reason it is skipped. */
static const char *unsupported_reason(const char *id)
{
    for (size_t i = 0; i < sizeof supported_prefixes / sizeof supported_prefixes[0]; i++) {
        if (strncmp(id, supported_prefixes[i], strlen(supported_prefixes[i])) == 0) {
            return NULL;
        }
    }
    return "prefix not supported yet";
}

/* ---- comparing an answer with a case's expect ---------------------------------------------- */

struct mismatches {
    int count;
    char shown[MAX_SHOWN][512];
};

static void mismatch(struct mismatches *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Records one mismatch; only the first MAX_SHOWN are kept for printing. */
static void mismatch(struct mismatches *m, const char *fmt, ...)
{
    if (m->count < MAX_SHOWN) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(m->shown[m->count], sizeof m->shown[0], fmt, ap);
        va_end(ap);
    }
    m->count++;
}

/* Writes a short rendering of j into buf (JSON text, cut at len). */
static void render(const json_t *j, char *buf, size_t len)
{
    if (!j) {
        snprintf(buf, len, "(missing)");
        return;
    }
    if (json_is_real(j)) {
        snprintf(buf, len, "%.10g", json_real_value(j));
        return;
    }
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s) {
        snprintf(buf, len, "(unprintable)");
        return;
    }
    if (strlen(s) > 60) {
        snprintf(buf, len, "%.57s...", s);
    } else {
        snprintf(buf, len, "%s", s);
    }
    free(s);
}

static const char *json_type_name(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "?";
}

/* Compares got against want at path (the golden rules: objects compare the keys of want only,
 * arrays have equal length and compare elementwise, numbers within atol + rtol*|want|, null
 * must be null, strings and booleans equal). path is a buffer of cap bytes, restored on return. */
static void compare(const json_t *want, const json_t *got, char *path, size_t cap, double rtol,
                    double atol, struct mismatches *m)
{
    char g[80], w[80];
    size_t plen = strlen(path);
    if (!got) {
        mismatch(m, "%s: missing", path);
        return;
    }
    if (json_is_object(want)) {
        if (!json_is_object(got)) {
            render(got, g, sizeof g);
            mismatch(m, "%s = %s, want an object", path, g);
            return;
        }
        const char *key;
        const json_t *wv;
        json_object_foreach((json_t *)want, key, wv)
        {
            snprintf(path + plen, cap - plen, "%s%s", plen ? "." : "", key);
            compare(wv, json_object_get(got, key), path, cap, rtol, atol, m);
            path[plen] = '\0';
        }
    } else if (json_is_array(want)) {
        if (!json_is_array(got)) {
            render(got, g, sizeof g);
            mismatch(m, "%s = %s, want an array of %zu", path, g, json_array_size(want));
            return;
        }
        if (json_array_size(got) != json_array_size(want)) {
            mismatch(m, "%s has %zu elements, want %zu", path, json_array_size(got),
                     json_array_size(want));
            return;
        }
        for (size_t i = 0; i < json_array_size(want); i++) {
            snprintf(path + plen, cap - plen, "[%zu]", i);
            compare(json_array_get(want, i), json_array_get(got, i), path, cap, rtol, atol, m);
            path[plen] = '\0';
        }
    } else if (json_is_number(want)) {
        double wn = json_number_value(want);
        double tol = atol + rtol * fabs(wn);
        if (!json_is_number(got)) {
            render(got, g, sizeof g);
            mismatch(m, "%s = %s, want %.10g", path, g, wn);
            return;
        }
        double gn = json_number_value(got);
        if (!(fabs(gn - wn) <= tol)) {
            mismatch(m, "%s = %.10g, want %.10g (tol %.3g)", path, gn, wn, tol);
        }
    } else if (json_is_null(want)) {
        if (!json_is_null(got)) {
            render(got, g, sizeof g);
            mismatch(m, "%s = %s, want null", path, g);
        }
    } else if (json_is_string(want) || json_is_boolean(want)) {
        if (!json_equal((json_t *)want, (json_t *)got)) {
            render(got, g, sizeof g);
            render(want, w, sizeof w);
            mismatch(m, "%s = %s, want %s", path, g, w);
        }
    } else {
        mismatch(m, "%s: expect holds %s, which this program cannot compare", path,
                 json_type_name(want));
    }
}

/* Checks one answer (status, content type, body) against the case's expect object. */
static void check_answer(const json_t *expect, double rtol, double atol, long status,
                         const char *ctype, const char *body, size_t len, struct mismatches *m)
{
    long want_status = (long)json_integer_value(json_object_get(expect, "status"));
    json_t *doc = body ? json_loadb(body, len, 0, NULL) : NULL;
    if (status != want_status) {
        const char *detail = json_string_value(json_object_get(doc, "detail"));
        mismatch(m, "status %ld, want %ld%s%.300s%s", status, want_status,
                 detail ? " (detail: " : "", detail ? detail : "", detail ? ")" : "");
        json_decref(doc);
        return;
    }
    if (status == 200) {
        if (!hu_ctype_is(ctype, "application/json")) {
            mismatch(m, "Content-Type \"%s\", want application/json", ctype ? ctype : "(none)");
        }
        if (!json_is_object(doc)) {
            mismatch(m, "the 200 body is not a JSON object");
            json_decref(doc);
            return;
        }
        char path[512];
        const char *key;
        const json_t *wv;
        json_object_foreach((json_t *)expect, key, wv)
        {
            if (strcmp(key, "status") == 0) {
                continue;
            }
            if (strcmp(key, "weight_map") == 0) {
                /* /v1/weight-map with Accept: application/json answers {shape, data} itself */
                path[0] = '\0';
                compare(wv, doc, path, sizeof path, rtol, atol, m);
                continue;
            }
            snprintf(path, sizeof path, "%s", key);
            compare(wv, json_object_get(doc, key), path, sizeof path, rtol, atol, m);
        }
    } else {
        char why[256];
        if (!hu_problem_ok((int)status, ctype, body, len, why, sizeof why)) {
            mismatch(m, "%s", why);
        }
    }
    json_decref(doc);
}

/* ---- the run -------------------------------------------------------------------------------- */

struct run {
    int passed, failed, skipped;
    const char *seglossd;
    const char *url; /* --url: a server someone else runs */
    struct hu_server srv;
    bool srv_up;
    int srv_incidents; /* times the server died or hung and was restarted */
    char srv_error[512];
    struct sl_pool *pool;
    struct slp_limits limits;
};

static void report(struct run *r, const char *id, const char *mode, const struct mismatches *m)
{
    if (m->count == 0) {
        printf("ok   %s [%s]\n", id, mode);
        r->passed++;
        return;
    }
    printf("FAIL %s [%s]: %s\n", id, mode, m->shown[0]);
    for (int i = 1; i < m->count && i < MAX_SHOWN; i++) {
        printf("       %s\n", m->shown[i]);
    }
    if (m->count > MAX_SHOWN) {
        printf("       ... and %d more mismatches\n", m->count - MAX_SHOWN);
    }
    r->failed++;
}

static const char *const server_args[] = {"--threads", "2", "--access-log", "0", NULL};

/* Starts (or restarts) the server; on failure remembers why in r->srv_error. */
static void server_up(struct run *r)
{
    char err[480]; /* the longest hu_server_attach message fits (gcc -O1 checks) */
    int rc = r->url ? hu_server_attach(&r->srv, r->url, HU_START_TIMEOUT, err, sizeof err)
                    : hu_server_start(&r->srv, r->seglossd, server_args, err, sizeof err);
    if (rc == 0) {
        r->srv_up = true;
    } else {
        r->srv_up = false;
        /* reported by every [http] run that follows and by the exit check */
        snprintf(r->srv_error, sizeof r->srv_error, "cannot %s seglossd: %s",
                 r->url ? "reach" : "start", err);
    }
}

static void run_in_process(struct run *r, const char *id, const json_t *c, const char *body,
                           size_t len)
{
    const json_t *expect = json_object_get(c, "expect");
    struct mismatches m = {0};
    struct slp_response resp = {0};
    if (json_object_get(expect, "weight_map")) {
        /* as the HTTP run asks with Accept: application/json */
        slp_weight_map_request(body, len, &r->limits, r->pool, true, &resp);
    } else {
        slp_score_request(body, len, &r->limits, r->pool, &resp);
    }
    check_answer(expect, json_number_value(json_object_get(c, "rtol")),
                 json_number_value(json_object_get(c, "atol")), resp.status, resp.content_type,
                 resp.body, resp.len, &m);
    slp_response_free(&resp);
    report(r, id, "in-process", &m);
}

static void run_http(struct run *r, const char *id, const json_t *c, const char *body, size_t len)
{
    const json_t *expect = json_object_get(c, "expect");
    bool weight_map = json_object_get(expect, "weight_map") != NULL;
    struct mismatches m = {0};
    if (!r->srv_up) {
        mismatch(&m, "%s", r->srv_error);
        report(r, id, "http", &m);
        return;
    }
    char url[128];
    hu_url(&r->srv, weight_map ? "/v1/weight-map" : "/v1/score", url, sizeof url);
    const char *const hdrs[] = {"Content-Type: application/json",
                                weight_map ? "Accept: application/json" : NULL, NULL};
    struct hu_xfer x;
    hu_http(&x, "POST", url, hdrs, body, len, HTTP_TIMEOUT);
    if (x.rc == CURLE_OK) {
        check_answer(expect, json_number_value(json_object_get(c, "rtol")),
                     json_number_value(json_object_get(c, "atol")), x.status, x.ctype, x.body.data,
                     x.body.len, &m);
    } else {
        /* a crash or a hang is a failure of this case; restart so later cases still run */
        mismatch(&m, "no answer: %s", x.errbuf);
        char d[128];
        if (r->url) {
            r->srv_incidents++; /* not ours to restart */
        } else if (x.rc == CURLE_OPERATION_TIMEDOUT && hu_server_alive(&r->srv)) {
            mismatch(&m, "server hung for %ld s; killed and restarted", HTTP_TIMEOUT);
            hu_server_kill(&r->srv);
            r->srv_incidents++;
            server_up(r);
        } else if (!hu_server_alive(&r->srv) || hu_server_wait(&r->srv, 1.0)) {
            hu_describe_status(r->srv.status, d, sizeof d);
            mismatch(&m, "server died (%s); restarted", d);
            hu_server_release(&r->srv);
            r->srv_incidents++;
            server_up(r);
        }
    }
    hu_xfer_cleanup(&x);
    report(r, id, "http", &m);
}

/* Reads one case file; returns its JSON (new reference) or NULL after reporting a failure. */
static json_t *load_case(struct run *r, const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    json_error_t jerr;
    json_t *c = json_load_file(path, 0, &jerr);
    if (!json_is_object(c) || !json_is_object(json_object_get(c, "request")) ||
        !json_is_integer(json_object_get(json_object_get(c, "expect"), "status"))) {
        printf("FAIL %s: not a golden case (%s)\n", name,
               c ? "missing request/expect.status" : jerr.text);
        r->failed++;
        json_decref(c);
        return NULL;
    }
    return c;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The sorted *.json names in dir (malloc'd array of malloc'd strings); *n their count. */
static char **list_cases(const char *dir, size_t *n)
{
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) {
        return NULL;
    }
    char **names = NULL;
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l <= 5 || strcmp(e->d_name + l - 5, ".json") != 0) {
            continue;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn) {
                break;
            }
            names = nn;
        }
        names[*n] = strdup(e->d_name);
        if (names[*n]) {
            (*n)++;
        }
    }
    closedir(d);
    if (*n) {
        qsort(names, *n, sizeof *names, cmp_names);
    }
    return names;
}

static int usage(void)
{
    fprintf(stderr, "usage: golden --golden DIR (--seglossd PATH | --url http://127.0.0.1:PORT | "
                    "--no-http) [--only ID_SUBSTRING]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *only = NULL;
    bool http = true;
    struct run r = {0};
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--golden") == 0) {
            dir = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--seglossd") == 0) {
            r.seglossd = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--url") == 0) {
            r.url = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--only") == 0) {
            only = argv[++i];
        } else if (strcmp(argv[i], "--no-http") == 0) {
            http = false;
        } else {
            return usage();
        }
    }
    if (!dir || (http && (r.seglossd != NULL) == (r.url != NULL))) {
        return usage();
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "golden: curl_global_init failed\n");
        return 1;
    }
    slp_limits_default(&r.limits);
    r.pool = sl_pool_new(2, 16);
    if (!r.pool) {
        printf("FAIL sl_pool_new(2, 16) returned NULL; running in-process without a pool\n");
        r.failed++;
    }

    size_t n;
    char **names = list_cases(dir, &n);
    if (n == 0) {
        printf("FAIL no *.json cases in %s\n", dir);
        r.failed++;
    }
    bool started = false;
    for (size_t i = 0; i < n; i++) {
        json_t *c = load_case(&r, dir, names[i]);
        if (!c) {
            continue;
        }
        const char *id = json_string_value(json_object_get(c, "id"));
        char stem[256];
        if (!id) {
            snprintf(stem, sizeof stem, "%.*s", (int)(strlen(names[i]) - 5), names[i]);
            id = stem;
        }
        char full[300];
        snprintf(full, sizeof full, "golden/%s", id);
        if ((only && !strstr(id, only)) || !filter_match(filter_pattern(), full)) {
            json_decref(c);
            continue;
        }
        const char *why = unsupported_reason(id);
        if (why) {
            printf("skip %s (%s)\n", id, why);
            r.skipped++;
            json_decref(c);
            continue;
        }
        char *body = json_dumps(json_object_get(c, "request"), JSON_COMPACT);
        if (!body) {
            printf("FAIL %s: cannot serialize the request\n", id);
            r.failed++;
            json_decref(c);
            continue;
        }
        size_t len = strlen(body);
        run_in_process(&r, id, c, body, len);
        if (http && !started) {
            started = true;
            server_up(&r);
        }
        if (http) {
            run_http(&r, id, c, body, len);
        }
        free(body);
        json_decref(c);
    }
    for (size_t i = 0; i < n; i++) {
        free(names[i]);
    }
    free(names);

    /* the exit check: SIGTERM must drain and exit 0, and the server must not have died or
     * hung during the run (a --url server: it must have answered every request) */
    if (started && r.url) {
        if (!r.srv_up) {
            printf("FAIL seglossd at %s: %s\n", r.url, r.srv_error);
            r.failed++;
        } else if (r.srv_incidents) {
            printf("FAIL seglossd at %s left %d request(s) without an answer\n", r.url,
                   r.srv_incidents);
            r.failed++;
        } else {
            printf("ok   seglossd at %s answered every request\n", r.url);
            r.passed++;
        }
    } else if (started) {
        char err[256], d[128];
        if (!r.srv_up) {
            printf("FAIL seglossd exit: %s\n", r.srv_error);
            r.failed++;
        } else if (hu_server_stop(&r.srv, STOP_TIMEOUT, err, sizeof err) != 0) {
            printf("FAIL seglossd exit: %s\n", err);
            r.failed++;
        } else {
            hu_describe_status(r.srv.status, d, sizeof d);
            bool clean = WIFEXITED(r.srv.status) && WEXITSTATUS(r.srv.status) == 0;
            if (clean && r.srv_incidents == 0) {
                printf("ok   seglossd exit after SIGTERM (%s)\n", d);
                r.passed++;
            } else if (!clean) {
                printf("FAIL seglossd exit after SIGTERM: %s, want exit status 0\n", d);
                r.failed++;
            } else {
                printf("FAIL seglossd exit: it died or hung %d time(s) during the run "
                       "(last instance %s)\n",
                       r.srv_incidents, d);
                r.failed++;
            }
        }
    }
    sl_pool_free(r.pool);
    curl_global_cleanup();
    printf("golden: %d passed, %d failed, %d skipped\n", r.passed, r.failed, r.skipped);
    return r.failed ? 1 : 0;
}
