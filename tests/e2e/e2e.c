/* e2e.c - end-to-end tests of seglossd over HTTP: starts its own servers on ephemeral ports of
 * 127.0.0.1 and drives them with libcurl. Every expected value comes from the API contract
 * (proto/openapi.json, the README) or from a hand calculation written here.
 *
 * Usage: e2e --golden DIR (--seglossd PATH | --url http://127.0.0.1:PORT)
 * (DIR is accepted for symmetry with golden.) With --url only the functional checks run, against
 * a seglossd someone else started with --threads 2 --queue 64 or more (a container: make
 * test-image); the checks of flags, limits, logs, counters and draining need a server of their
 * own.
 * SEGLOSS_TEST selects groups by name (e2e --list names them; tests/filter.h). Ends with
 * "e2e: N passed, M failed"; exits 1 when anything failed.
 */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <zlib.h>
#include <zstd.h>

#include "../check.h"
#include "../http_util.h"
#include "segloss.h"

#define STOP_TIMEOUT 60.0  /* seconds for a server to drain and exit after SIGTERM */
#define HEAVY_TIMEOUT 300L /* seconds per heavy request (sanitizer builds are slow) */
#define HEAVY_IMAGES 4     /* heavy request: [4, 1024, 1024] float32 logits */
#define HEAVY_SIDE 1024

static const char *seglossd_path;
static const char *server_url; /* --url */

/* The seed's worked example: probabilities [0.5, 0.6, 0.2, 0.1] of shape [1, 2, 2], target
 * [1, 1, 0, 0], loss = cross_entropy + dice. */
static const char seed_body[] =
    "{\"prediction\": {\"format\": \"list\", \"dtype\": \"float32\", \"shape\": [1, 2, 2], "
    "\"data\": [0.5, 0.6, 0.2, 0.1]}, "
    "\"prediction_type\": \"probabilities\", "
    "\"target\": {\"format\": \"list\", \"dtype\": \"uint8\", \"shape\": [1, 2, 2], "
    "\"data\": [1, 1, 0, 0]}, "
    "\"losses\": [{\"name\": \"combo\", \"terms\": [{\"name\": \"cross_entropy\"}, "
    "{\"name\": \"dice\"}]}], "
    "\"metrics\": []}";

/* The seed example by hand, in float64 from the formulas (the float32 rounding of 0.6, 0.2 and
 * 0.1 moves the answer by about 1e-8, far inside the 1e-6 tolerance):
 *   CE   = -(ln 0.5 + ln 0.6 + ln(1 - 0.2) + ln(1 - 0.1)) / 4             = 0.383119...
 *   Dice = 1 - 2*(0.5*1 + 0.6*1) / ((0.5 + 0.6 + 0.2 + 0.1) + (1 + 1))    = 1 - 2.2/3.4
 *        = 0.352941...
 *   CE + Dice                                                               = 0.736060... */
static double seed_expected(void)
{
    double ce = -(log(0.5) + log(0.6) + log(0.8) + log(0.9)) / 4.0;
    double dice = 1.0 - 2.0 * (0.5 + 0.6) / (1.4 + 2.0);
    return ce + dice;
}

/* ---- helpers ------------------------------------------------------------------------------ */

static const char *const json_ct[] = {"Content-Type: application/json", NULL};

/* Prints what an unexpected answer looked like (to stderr, next to the CHECK message). */
static void show(const char *what, const struct hu_xfer *x)
{
    fprintf(stderr, "    %s: curl %d (%s), HTTP %ld, Content-Type \"%s\", body: %.400s\n", what,
            (int)x->rc, x->rc ? x->errbuf : "ok", x->status, x->ctype,
            x->body.data ? x->body.data : "");
}

#define CHECK_STATUS(x, want)                                                                      \
    do {                                                                                           \
        CHECK_INT((x)->status, (want));                                                            \
        if ((x)->status != (want)) {                                                               \
            show(#x, (x));                                                                         \
        }                                                                                          \
    } while (0)

/* Checks that x is a problem+json answer with HTTP status want. */
static void check_problem(const char *what, const struct hu_xfer *x, long want)
{
    char why[256] = "";
    CHECK_INT(x->status, want);
    bool ok = hu_problem_ok((int)x->status, x->ctype, x->body.data, x->body.len, why, sizeof why);
    CHECK(ok);
    if (x->status != want || !ok) {
        fprintf(stderr, "    %s: %s\n", what, why);
        show(what, x);
    }
}

/* Checks a 200 application/json answer and returns its parsed body (new reference, or NULL). */
static json_t *check_json_200(const char *what, const struct hu_xfer *x)
{
    CHECK_INT(x->status, 200);
    CHECK(hu_ctype_is(x->ctype, "application/json"));
    json_t *doc = hu_xfer_json(x);
    CHECK(json_is_object(doc));
    if (x->status != 200 || !json_is_object(doc)) {
        show(what, x);
    }
    return doc;
}

/* The value at a path like "losses.combo.per_image[0]" (borrowed), or NULL. */
static const json_t *jget(const json_t *doc, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const json_t *cur = doc;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ".", &save); tok && cur; tok = strtok_r(NULL, ".", &save)) {
        char *br = strchr(tok, '[');
        if (br) {
            *br = '\0';
        }
        if (*tok) {
            cur = json_object_get(cur, tok);
        }
        while (br && cur) {
            char *end;
            size_t i = strtoul(br + 1, &end, 10);
            cur = json_array_get(cur, i);
            br = strchr(end, '[');
        }
    }
    return cur;
}

/* The number at path, or NaN when it is absent or not a number. */
static double jnum(const json_t *doc, const char *path)
{
    const json_t *v = jget(doc, path);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* CHECKs |number at path - want| <= tol and names the path when it fails. */
static void check_num(const char *what, const json_t *doc, const char *path, double want,
                      double tol)
{
    double got = jnum(doc, path);
    CHECK_CLOSE(got, want, 0.0, tol);
    if (!(fabs(got - want) <= tol)) {
        fprintf(stderr, "    (%s: %s)\n", what, path);
    }
}

/* CHECKs that the string at path contains needle. */
static void check_str_has(const char *what, const json_t *doc, const char *path, const char *needle)
{
    const char *s = json_string_value(jget(doc, path));
    bool ok = s && strstr(s, needle);
    CHECK(ok);
    if (!ok) {
        fprintf(stderr, "    %s: %s = \"%s\", want it to contain \"%s\"\n", what, path,
                s ? s : "(missing)", needle);
    }
}

static void url_of(const struct hu_server *s, const char *path, char *buf, size_t len)
{
    hu_url(s, path, buf, len);
}

/* One blocking request to srv; x must be cleaned up by the caller. */
static void request(struct hu_xfer *x, const struct hu_server *srv, const char *method,
                    const char *path, const char *const *headers, const void *body, size_t len,
                    long timeout)
{
    char url[128];
    url_of(srv, path, url, sizeof url);
    hu_http(x, method, url, headers, body, len, timeout);
}

/* Starts seglossd with args (NULL-terminated) and CHECKs that it came up. Returns 0 or -1. */
static int start_server(struct hu_server *s, const char *const *args, const char *what)
{
    char err[512];
    int rc = hu_server_start(s, seglossd_path, args, err, sizeof err);
    CHECK(rc == 0);
    if (rc != 0) {
        fprintf(stderr, "    %s: cannot start seglossd: %s\n", what, err);
    }
    return rc;
}

/* SIGTERMs the server and CHECKs that it drains and exits with status 0. */
static void stop_server(struct hu_server *s, const char *what)
{
    char err[256], d[128];
    int rc = hu_server_stop(s, STOP_TIMEOUT, err, sizeof err);
    CHECK(rc == 0);
    if (rc != 0) {
        fprintf(stderr, "    %s: %s\n", what, err);
        return;
    }
    bool clean = WIFEXITED(s->status) && WEXITSTATUS(s->status) == 0;
    CHECK(clean);
    if (!clean) {
        hu_describe_status(s->status, d, sizeof d);
        fprintf(stderr, "    %s: seglossd %s after SIGTERM, want exit status 0\n", what, d);
    }
}

/* Compresses in with zlib's deflate; window_bits 31 = gzip, 15 = zlib. Returns a malloc'd
 * buffer (its size in *outlen) or NULL. */
static unsigned char *zcompress(const void *in, size_t len, int window_bits, size_t *outlen)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        return NULL;
    }
    uLong cap = deflateBound(&z, (uLong)len) + 64;
    unsigned char *out = malloc(cap);
    if (!out) {
        deflateEnd(&z);
        return NULL;
    }
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    *outlen = (size_t)z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

/* Standard base64 with '=' padding; returns a malloc'd NUL-terminated string or NULL. */
static char *base64(const unsigned char *in, size_t len)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (!out) {
        return NULL;
    }
    size_t o = 0, i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tbl[v >> 18 & 63];
        out[o++] = tbl[v >> 12 & 63];
        out[o++] = tbl[v >> 6 & 63];
        out[o++] = tbl[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = tbl[v >> 18 & 63];
        out[o++] = tbl[v >> 12 & 63];
        out[o++] = i + 1 < len ? tbl[v >> 6 & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}

static uint32_t xorshift32(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

/* A heavy request: [4, 1024, 1024] float32 logits (raw, base64) against a disc-shaped uint8
 * target (raw, base64), lovasz_hinge, every confusion-matrix metric and the surface-distance
 * metrics (distance transforms of every image: the slowest work there is, for a request that
 * must still be computing a while after its body has arrived). Returns a malloc'd body (length
 * in *len) or NULL. */
static char *heavy_body(size_t *len)
{
    const size_t n = (size_t)HEAVY_IMAGES * HEAVY_SIDE * HEAVY_SIDE;
    unsigned char *pred = malloc(n * 4);
    unsigned char *tgt = malloc(n);
    char *body = NULL, *p64 = NULL, *t64 = NULL;
    if (!pred || !tgt) {
        goto out;
    }
    uint32_t rng = 0x2545F491u;
    for (size_t i = 0; i < n; i++) {
        size_t img = i / ((size_t)HEAVY_SIDE * HEAVY_SIDE);
        long y = (long)(i / HEAVY_SIDE % HEAVY_SIDE) - HEAVY_SIDE / 2;
        long x = (long)(i % HEAVY_SIDE) - HEAVY_SIDE / 2;
        long r = 100 + 60 * (long)img;
        unsigned char t = x * x + y * y <= r * r;
        float noise = (float)(xorshift32(&rng) % 6001) / 1000.0f - 3.0f; /* [-3, 3] */
        float logit = (t ? 1.0f : -1.0f) + noise;
        uint32_t bits;
        memcpy(&bits, &logit, 4);
        for (int b = 0; b < 4; b++) { /* little-endian on the wire whatever the host */
            pred[i * 4 + (size_t)b] = (unsigned char)(bits >> (8 * b));
        }
        tgt[i] = t;
    }
    p64 = base64(pred, n * 4);
    t64 = base64(tgt, n);
    if (!p64 || !t64) {
        goto out;
    }
    size_t cap = strlen(p64) + strlen(t64) + 4096;
    body = malloc(cap);
    if (!body) {
        goto out;
    }
    int w = snprintf(body, cap,
                     "{\"prediction\": {\"format\": \"raw\", \"dtype\": \"float32\", "
                     "\"shape\": [%d, %d, %d], \"data\": \"%s\"}, "
                     "\"target\": {\"format\": \"raw\", \"dtype\": \"uint8\", "
                     "\"shape\": [%d, %d, %d], \"data\": \"%s\"}, "
                     "\"losses\": [{\"name\": \"lovasz_hinge\"}], "
                     "\"metrics\": [\"dice\", \"iou\", \"precision\", \"recall\", "
                     "\"specificity\", \"accuracy\", \"balanced_accuracy\", \"mcc\", "
                     "{\"name\": \"fbeta\", \"beta\": 2}, \"confusion\", \"hausdorff\", "
                     "{\"name\": \"hausdorff\", \"percentile\": 95, \"as\": \"hd95\"}, "
                     "\"assd\", \"nsd\"]}",
                     HEAVY_IMAGES, HEAVY_SIDE, HEAVY_SIDE, p64, HEAVY_IMAGES, HEAVY_SIDE,
                     HEAVY_SIDE, t64);
    *len = w > 0 ? (size_t)w : 0;
out:
    free(pred);
    free(tgt);
    free(p64);
    free(t64);
    return body;
}

/* ---- 1. health, readiness, OpenAPI ------------------------------------------------------- */

static void test_basics(const struct hu_server *srv)
{
    struct hu_xfer x;
    char want_line[128];

    /* the one stdout line of the contract (not seen of a server someone else started) */
    if (srv->pid > 0) {
        snprintf(want_line, sizeof want_line, "seglossd listening on http://127.0.0.1:%d",
                 srv->port);
        CHECK(strcmp(srv->line, want_line) == 0);
    }

    request(&x, srv, "GET", "/healthz", NULL, NULL, 0, HU_REQUEST_TIMEOUT);
    json_t *doc = check_json_200("GET /healthz", &x);
    const char *st = json_string_value(jget(doc, "status"));
    CHECK(st && strcmp(st, "ok") == 0);
    json_decref(doc);
    hu_xfer_cleanup(&x);

    request(&x, srv, "GET", "/readyz", NULL, NULL, 0, HU_REQUEST_TIMEOUT);
    CHECK_STATUS(&x, 200);
    hu_xfer_cleanup(&x);

    request(&x, srv, "GET", "/openapi.json", NULL, NULL, 0, HU_REQUEST_TIMEOUT);
    CHECK_STATUS(&x, 200);
    doc = hu_xfer_json(&x);
    CHECK(json_is_object(doc));
    const char *ver = json_string_value(jget(doc, "openapi"));
    CHECK(ver && strncmp(ver, "3.1", 3) == 0);
    json_decref(doc);
    hu_xfer_cleanup(&x);

    /* the catalog lists every loss with the defaults of openapi.json: focal gamma 2, alpha 0.25 */
    request(&x, srv, "GET", "/v1/catalog", NULL, NULL, 0, HU_REQUEST_TIMEOUT);
    doc = check_json_200("GET /v1/catalog", &x);
    bool found = false;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(doc, "losses"), i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "name")), "focal") != 0) {
            continue;
        }
        found = true;
        size_t k;
        json_t *p;
        json_array_foreach(json_object_get(e, "params"), k, p)
        {
            const char *pn = json_string_value(json_object_get(p, "name"));
            if (strcmp(pn, "gamma") == 0) {
                CHECK_CLOSE(json_number_value(json_object_get(p, "default")), 2, 0, 0);
            } else if (strcmp(pn, "alpha") == 0) {
                CHECK_CLOSE(json_number_value(json_object_get(p, "default")), 0.25, 0, 0);
            }
        }
    }
    CHECK(found);
    int nmetrics, nlosses;
    sl_metric_table(&nmetrics);
    sl_loss_table(&nlosses);
    CHECK_INT(json_array_size(json_object_get(doc, "metrics")), nmetrics);
    CHECK_INT(json_array_size(json_object_get(doc, "losses")), nlosses);
    json_decref(doc);
    hu_xfer_cleanup(&x);
}

/* ---- 2. routing and content negotiation errors ----------------------------------------- */

/* Sends a raw HTTP request to 127.0.0.1:port and returns the status of the answer (-1 on
 * failure): for what libcurl will not send, such as a POST without any length. */
static int raw_status(int port, const char *request_text)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), status = -1;
    if (fd < 0) {
        return -1;
    }
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[256];
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        write(fd, request_text, strlen(request_text)) == (ssize_t)strlen(request_text)) {
        ssize_t n = read(fd, buf, sizeof buf - 1);
        if (n > 12) {
            buf[n] = '\0';
            sscanf(buf, "HTTP/1.%*d %d", &status);
        }
    }
    close(fd);
    return status;
}

static void test_routing(const struct hu_server *srv)
{
    struct hu_xfer x;
    char h[256];

    /* a POST that says nothing of its length (neither Content-Length nor chunked): 411 */
    CHECK_INT(raw_status(srv->port, "POST /v1/score HTTP/1.1\r\nHost: t\r\nContent-Type: "
                                    "application/json\r\nConnection: close\r\n\r\n"),
              411);

    request(&x, srv, "GET", "/nope", NULL, NULL, 0, HU_REQUEST_TIMEOUT);
    check_problem("GET /nope", &x, 404);
    hu_xfer_cleanup(&x);

    request(&x, srv, "GET", "/v1/score", NULL, NULL, 0, HU_REQUEST_TIMEOUT);
    check_problem("GET /v1/score", &x, 405);
    CHECK(hu_xfer_header(&x, "Allow", h, sizeof h) && strstr(h, "POST"));
    hu_xfer_cleanup(&x);

    const char *const text_plain[] = {"Content-Type: text/plain", NULL};
    request(&x, srv, "POST", "/v1/score", text_plain, seed_body, strlen(seed_body),
            HU_REQUEST_TIMEOUT);
    check_problem("POST text/plain", &x, 415);
    hu_xfer_cleanup(&x);

    const char *const brotli[] = {"Content-Type: application/json", "Content-Encoding: br", NULL};
    request(&x, srv, "POST", "/v1/score", brotli, seed_body, strlen(seed_body), HU_REQUEST_TIMEOUT);
    check_problem("POST Content-Encoding: br", &x, 415);
    bool has = hu_xfer_header(&x, "Accept-Encoding", h, sizeof h);
    CHECK(has && strstr(h, "gzip"));
    CHECK(has && strstr(h, "deflate"));
    hu_xfer_cleanup(&x);
}

/* ---- 3. bad bodies ------------------------------------------------------------------------ */

static void test_bad_bodies(const struct hu_server *srv)
{
    struct hu_xfer x;

    static const char malformed[] = "{\"prediction\": [0.5, 0.6,";
    request(&x, srv, "POST", "/v1/score", json_ct, malformed, strlen(malformed),
            HU_REQUEST_TIMEOUT);
    check_problem("malformed JSON", &x, 400);
    hu_xfer_cleanup(&x);

    /* focal's gamma must be >= 0: the detail names the exact key path */
    static const char bad_gamma[] =
        "{\"prediction\": {\"format\": \"list\", \"dtype\": \"float32\", \"shape\": [1, 2, 2], "
        "\"data\": [0.5, 0.6, 0.2, 0.1]}, \"prediction_type\": \"probabilities\", "
        "\"target\": {\"format\": \"list\", \"dtype\": \"uint8\", \"shape\": [1, 2, 2], "
        "\"data\": [1, 1, 0, 0]}, "
        "\"losses\": [{\"name\": \"dice\"}, {\"name\": \"focal\", \"gamma\": -1}]}";
    request(&x, srv, "POST", "/v1/score", json_ct, bad_gamma, strlen(bad_gamma),
            HU_REQUEST_TIMEOUT);
    check_problem("gamma -1", &x, 422);
    json_t *doc = hu_xfer_json(&x);
    check_str_has("gamma -1", doc, "detail", "losses[1].gamma");
    json_decref(doc);
    hu_xfer_cleanup(&x);

    /* an unknown top-level key is named in the detail */
    char with_foo[sizeof seed_body + 32];
    snprintf(with_foo, sizeof with_foo, "{\"foo\": 1, %s", seed_body + 1);
    request(&x, srv, "POST", "/v1/score", json_ct, with_foo, strlen(with_foo), HU_REQUEST_TIMEOUT);
    check_problem("unknown key foo", &x, 422);
    doc = hu_xfer_json(&x);
    check_str_has("unknown key foo", doc, "detail", "foo");
    json_decref(doc);
    hu_xfer_cleanup(&x);
}

/* ---- 4. values by hand -------------------------------------------------------------------- */

static void test_hand_values(const struct hu_server *srv)
{
    struct hu_xfer x;
    const double want = seed_expected();

    request(&x, srv, "POST", "/v1/score", json_ct, seed_body, strlen(seed_body),
            HU_REQUEST_TIMEOUT);
    json_t *doc = check_json_200("seed", &x);
    check_num("seed", doc, "losses.combo.value", want, 1e-6);
    /* one image: its per-image value is the batch value */
    check_num("seed", doc, "losses.combo.per_image[0]", want, 1e-6);
    /* the response header of the contract: binary, 1 image, 1 class, spatial shape [2, 2] */
    const char *mode = json_string_value(jget(doc, "mode"));
    CHECK(mode && strcmp(mode, "binary") == 0);
    check_num("seed", doc, "images", 1, 0);
    check_num("seed", doc, "classes", 1, 0);
    check_num("seed", doc, "shape[0]", 2, 0);
    check_num("seed", doc, "shape[1]", 2, 0);
    json_decref(doc);
    hu_xfer_cleanup(&x);

    /* the same combo with its terms as bare names, next to bare-name losses: each is that loss
     * with its defaults, so the combo and the sum of the two are the seed's CE + Dice */
    static const char bare_body[] =
        "{\"prediction\": [[[0.5, 0.6], [0.2, 0.1]]], \"prediction_type\": \"probabilities\", "
        "\"target\": [[[1, 1], [0, 0]]], \"losses\": [\"cross_entropy\", {\"name\": \"combo\", "
        "\"terms\": [\"cross_entropy\", \"dice\"]}, \"dice\"], \"metrics\": []}";
    request(&x, srv, "POST", "/v1/score", json_ct, bare_body, strlen(bare_body),
            HU_REQUEST_TIMEOUT);
    doc = check_json_200("bare loss names", &x);
    check_num("bare loss names", doc, "losses.combo.value", want, 1e-12);
    check_num("bare loss names", doc, "losses.cross_entropy.value",
              -(log(0.5) + log(0.6) + log(0.8) + log(0.9)) / 4.0, 1e-12);
    check_num("bare loss names", doc, "losses.dice.value", 1.0 - 2.2 / 3.4, 1e-12);
    json_decref(doc);
    hu_xfer_cleanup(&x);
    /* a bad entry is still a 422 naming its index */
    static const char bare_bad[] = "{\"prediction\": [[[0.5]]], \"prediction_type\": "
                                   "\"probabilities\", \"target\": [[[1]]], "
                                   "\"losses\": [\"dice\", 2]}";
    request(&x, srv, "POST", "/v1/score", json_ct, bare_bad, strlen(bare_bad), HU_REQUEST_TIMEOUT);
    check_problem("losses [\"dice\", 2]", &x, 422);
    doc = hu_xfer_json(&x);
    check_str_has("losses [\"dice\", 2]", doc, "detail", "losses[1]: must be a loss name");
    json_decref(doc);
    hu_xfer_cleanup(&x);

    /* Metrics by hand. Logits [2, -1, 3, -2], threshold 0.5 <=> x >= 0, so the hard prediction
     * is [1, 0, 1, 0] against target [1, 1, 0, 0]:
     *   pixel 0: 1 vs 1 TP; pixel 1: 0 vs 1 FN; pixel 2: 1 vs 0 FP; pixel 3: 0 vs 0 TN
     *   TP = FP = FN = TN = 1
     *   dice      = 2TP/(2TP+FP+FN)            = 2/4 = 0.5
     *   iou       = TP/(TP+FP+FN)              = 1/3
     *   precision = TP/(TP+FP) = recall = TP/(TP+FN) = specificity = TN/(TN+FP) = 0.5
     *   accuracy  = (TP+TN)/4 = balanced_accuracy = (recall+specificity)/2 = 0.5
     *   fbeta(1)  = 2TP/(2TP+FN+FP)            = 0.5
     *   mcc       = (TP*TN - FP*FN)/sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = 0/4 = 0
     * With one image, per_image[0], mean and global are all the same value. */
    static const char metrics_body[] =
        "{\"prediction\": {\"format\": \"list\", \"dtype\": \"float32\", \"shape\": [1, 2, 2], "
        "\"data\": [2, -1, 3, -2]}, "
        "\"target\": {\"format\": \"list\", \"dtype\": \"uint8\", \"shape\": [1, 2, 2], "
        "\"data\": [1, 1, 0, 0]}, "
        "\"metrics\": [\"dice\", \"iou\", \"precision\", \"recall\", \"specificity\", "
        "\"accuracy\", \"balanced_accuracy\", \"fbeta\", \"mcc\", \"confusion\"]}";
    static const struct {
        const char *name;
        double value;
    } by_hand[] = {
        {"dice", 0.5},        {"iou", 1.0 / 3.0}, {"precision", 0.5},         {"recall", 0.5},
        {"specificity", 0.5}, {"accuracy", 0.5},  {"balanced_accuracy", 0.5}, {"fbeta", 0.5},
        {"mcc", 0.0},
    };
    request(&x, srv, "POST", "/v1/score", json_ct, metrics_body, strlen(metrics_body),
            HU_REQUEST_TIMEOUT);
    doc = check_json_200("metrics", &x);
    char path[128];
    for (size_t i = 0; i < sizeof by_hand / sizeof by_hand[0]; i++) {
        static const char *const fields[] = {"per_image[0]", "mean", "global"};
        for (size_t f = 0; f < 3; f++) {
            snprintf(path, sizeof path, "metrics.%s.%s", by_hand[i].name, fields[f]);
            check_num("metrics", doc, path, by_hand[i].value, 1e-12);
        }
        snprintf(path, sizeof path, "metrics.%s.undefined", by_hand[i].name);
        check_num("metrics", doc, path, 0, 0);
    }
    static const char *const counts[] = {"tp", "fp", "fn", "tn"};
    for (size_t c = 0; c < 4; c++) {
        snprintf(path, sizeof path, "metrics.confusion.per_image[0].%s", counts[c]);
        check_num("confusion", doc, path, 1, 0);
        snprintf(path, sizeof path, "metrics.confusion.global.%s", counts[c]);
        check_num("confusion", doc, path, 1, 0);
    }
    json_decref(doc);
    hu_xfer_cleanup(&x);
}

/* ---- 4b. include_background: false over HTTP -------------------------------------------- */

/* MONAI's own focal case (tests/losses/test_focal_loss.py): input (1, 3, 2, 2), every channel
 * [[1, 1], [0.5, 0]], target labels [[0, 1], [2, 0]]. */
#define MONAI_PRED                                                                                 \
    "\"prediction\": {\"format\": \"list\", \"dtype\": \"float32\", \"shape\": [1, 3, 2, 2], "     \
    "\"data\": [1, 1, 0.5, 0, 1, 1, 0.5, 0, 1, 1, 0.5, 0]}, "

static void test_include_background(const struct hu_server *srv)
{
    struct hu_xfer x;
    /* Multilabel: the one-hot target. MONAI FocalLoss(to_onehot_y=True, include_background=
     * False) = 0.36498 (MONAI's expected value, to its 1e-4). cross_entropy without channel 0:
     * BCE = softplus(x) - x t over the 8 elements of channels 1 (targets 0 1 0 0) and 2
     * (0 0 1 0): (4 softplus(1) + 2 softplus(0.5) + 2 log 2 - 1 - 0.5) / 8. */
    static const char ml_body[] =
        "{" MONAI_PRED "\"target\": {\"format\": \"list\", \"dtype\": \"uint8\", "
        "\"shape\": [1, 3, 2, 2], \"data\": [1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0]}, "
        "\"mode\": \"multilabel\", \"include_background\": false, "
        "\"losses\": [{\"name\": \"focal\", \"alpha\": null}, {\"name\": \"cross_entropy\"}], "
        "\"metrics\": []}";
    const double sp1 = log1p(exp(1.0)), sp05 = log1p(exp(0.5));
    request(&x, srv, "POST", "/v1/score", json_ct, ml_body, strlen(ml_body), HU_REQUEST_TIMEOUT);
    json_t *doc = check_json_200("multilabel include_background", &x);
    check_num("multilabel include_background", doc, "losses.focal.value", 0.36498, 1e-4);
    check_num("multilabel include_background", doc, "losses.cross_entropy.value",
              (4 * sp1 + 2 * sp05 + 2 * log(2.0) - 1.5) / 8, 1e-6);
    CHECK(json_is_false(jget(doc, "conventions.include_background")));
    json_decref(doc);
    hu_xfer_cleanup(&x);

    /* Multiclass: the labels. focal drops class 0 before the softmax (MONAI): softmax over
     * classes 1, 2 is 1/2 everywhere, pixels 1 and 2 add (1/2)^2 log 2 each, the class-0 pixels
     * 0 and count: log(2) / 8 per pixel. cross_entropy keeps every class (MONAI DiceCELoss):
     * log 3. The combo is MONAI DiceCELoss(softmax=True, include_background=False): log 3 plus
     * Dice over classes 1, 2, each sum p = 4/3, sum y = 1, sum p y = 1/3. */
    static const char mc_body[] =
        "{" MONAI_PRED "\"target\": {\"format\": \"list\", \"dtype\": \"uint8\", "
        "\"shape\": [1, 2, 2], \"data\": [0, 1, 2, 0]}, "
        "\"mode\": \"multiclass\", \"include_background\": false, "
        "\"losses\": [{\"name\": \"focal\", \"alpha\": null}, {\"name\": \"cross_entropy\"}, "
        "{\"name\": \"combo\", \"as\": \"dice_ce\", \"terms\": [{\"name\": \"cross_entropy\"}, "
        "{\"name\": \"dice\", \"smooth\": 1e-5}]}], \"metrics\": []}";
    request(&x, srv, "POST", "/v1/score", json_ct, mc_body, strlen(mc_body), HU_REQUEST_TIMEOUT);
    doc = check_json_200("multiclass include_background", &x);
    check_num("multiclass include_background", doc, "losses.focal.value", log(2.0) / 8, 1e-6);
    check_num("multiclass include_background", doc, "losses.focal.per_image[0]", log(2.0) / 8,
              1e-6);
    check_num("multiclass include_background", doc, "losses.cross_entropy.value", log(3.0), 1e-6);
    check_num("multiclass include_background", doc, "losses.dice_ce.value",
              log(3.0) + 1 - (2.0 / 3 + 1e-5) / (4.0 / 3 + 1 + 1e-5), 1e-6);
    json_decref(doc);
    hu_xfer_cleanup(&x);

    /* A loss's own include_background overrides the request's: the request keeps class 0, the
     * multilabel focal leaves it out (MONAI's 0.36498 again). */
    static const char own_body[] =
        "{" MONAI_PRED "\"target\": {\"format\": \"list\", \"dtype\": \"uint8\", "
        "\"shape\": [1, 3, 2, 2], \"data\": [1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0]}, "
        "\"losses\": [{\"name\": \"focal\", \"alpha\": null, \"include_background\": false}], "
        "\"metrics\": []}";
    request(&x, srv, "POST", "/v1/score", json_ct, own_body, strlen(own_body), HU_REQUEST_TIMEOUT);
    doc = check_json_200("per-loss include_background", &x);
    check_num("per-loss include_background", doc, "losses.focal.value", 0.36498, 1e-4);
    json_decref(doc);
    hu_xfer_cleanup(&x);

    /* Its own false on multiclass cross_entropy cannot apply (softmax CE keeps every class): a
     * 422 naming the key, not a silent ignore. */
    static const char ce_body[] =
        "{" MONAI_PRED "\"target\": {\"format\": \"list\", \"dtype\": \"uint8\", "
        "\"shape\": [1, 2, 2], \"data\": [0, 1, 2, 0]}, "
        "\"losses\": [{\"name\": \"cross_entropy\", \"include_background\": false}], "
        "\"metrics\": []}";
    request(&x, srv, "POST", "/v1/score", json_ct, ce_body, strlen(ce_body), HU_REQUEST_TIMEOUT);
    check_problem("multiclass cross_entropy include_background", &x, 422);
    doc = hu_xfer_json(&x);
    check_str_has("multiclass cross_entropy include_background", doc, "detail",
                  "losses[0].include_background");
    json_decref(doc);
    hu_xfer_cleanup(&x);

    /* the catalog lists it for focal (a boolean with no default: absent = the request's) and
     * not for the binary-only distance-weighted CE */
    request(&x, srv, "GET", "/v1/catalog", NULL, NULL, 0, HU_REQUEST_TIMEOUT);
    doc = check_json_200("GET /v1/catalog", &x);
    int listed_focal = 0, listed_dwce = 0;
    size_t i, k;
    json_t *e, *p;
    json_array_foreach(json_object_get(doc, "losses"), i, e)
    {
        const char *name = json_string_value(json_object_get(e, "name"));
        json_array_foreach(json_object_get(e, "params"), k, p)
        {
            const char *pn = json_string_value(json_object_get(p, "name"));
            if (strcmp(pn, "include_background") != 0) {
                continue;
            }
            if (strcmp(name, "focal") == 0) {
                const char *type = json_string_value(json_object_get(p, "type"));
                listed_focal =
                    type && strcmp(type, "boolean") == 0 && !json_object_get(p, "default");
            }
            listed_dwce += strcmp(name, "distance_weighted_cross_entropy") == 0;
        }
    }
    CHECK(listed_focal);
    CHECK(listed_dwce == 0);
    json_decref(doc);
    hu_xfer_cleanup(&x);
}

/* ---- 4c. the confusion family, ignore_empty and MONAI's reductions over HTTP ------------ */

/* CHECKs that the value at path is JSON null (present, not missing) and names it otherwise. */
static void check_null(const char *what, const json_t *doc, const char *path)
{
    bool ok = json_is_null(jget(doc, path));
    CHECK(ok);
    if (!ok) {
        fprintf(stderr, "    %s: %s is not null\n", what, path);
    }
}

/* Issue 17: MONAI ConfusionMatrixMetric's names and aliases (monai/metrics/confusion_matrix.py
 * check_confusion_matrix_metric_name), DiceMetric/MeanIoU's ignore_empty and MetricReduction
 * (monai/metrics/utils.py do_metric_reduction), every value by hand. */
static void test_confusion_family(const struct hu_server *srv)
{
    struct hu_xfer x;
    char path[160];

    /* Binary, one 2 x 4 image: logits 2 (predicted 1) on pixels 0..3, -2 on 4..7, against the
     * target [1 1 1 0 1 1 0 0]: TP = 3 (0..2), FP = 1 (3), FN = 2 (4, 5), TN = 2 (6, 7).
     *   TPR = 3/5, TNR = TN/(TN+FP) = 2/3, PPV = 3/4, NPV = TN/(TN+FN) = 1/2
     *   FNR = 2/5, FPR = 1/3, FDR = 1/4, FOR = 2/4, TS = 3/6, F1 = 6/9, ACC = 5/8,
     *   BA = (3/5 + 2/3)/2 = 19/30, MCC = (3*2 - 1*2)/sqrt(4*5*3*4) = 4/sqrt(240),
     *   FM = sqrt(PPV TPR) = sqrt(0.45), BM = TPR + TNR - 1 = 4/15, MK = PPV + NPV - 1 = 1/4,
     *   PT = (sqrt(TPR (1 - TNR)) + TNR - 1)/(TPR + TNR - 1) = (sqrt(1/5) - 1/3)/(4/15).
     * Each MONAI name answers under the name written, any case, spaces for underscores. */
    static const char bin_body[] =
        "{\"prediction\": {\"format\": \"list\", \"dtype\": \"float32\", \"shape\": [1, 2, 4], "
        "\"data\": [2, 2, 2, 2, -2, -2, -2, -2]}, "
        "\"target\": {\"format\": \"list\", \"dtype\": \"uint8\", \"shape\": [1, 2, 4], "
        "\"data\": [1, 1, 1, 0, 1, 1, 0, 0]}, "
        "\"metrics\": [\"sensitivity\", \"Hit Rate\", \"tpr\", \"tnr\", \"ppv\", "
        "\"negative_predictive_value\", \"miss rate\", \"fpr\", \"fdr\", \"for\", \"pt\", "
        "\"csi\", \"threat_score\", \"f1\", \"acc\", \"ba\", "
        "\"matthews_correlation_coefficient\", \"fm\", \"youden\", \"deltap\", "
        "{\"name\": \"fowlkes_mallows_index\", \"as\": \"FMI\"}]}";
    const double pt = (sqrt(0.2) - 1.0 / 3) / (4.0 / 15), mcc = 4 / sqrt(240.0), fm = sqrt(0.45);
    const struct {
        const char *key;
        double value;
    } bin[] = {
        {"sensitivity", 0.6},
        {"Hit Rate", 0.6},
        {"tpr", 0.6},
        {"tnr", 2.0 / 3},
        {"ppv", 0.75},
        {"negative_predictive_value", 0.5},
        {"miss rate", 0.4},
        {"fpr", 1.0 / 3},
        {"fdr", 0.25},
        {"for", 0.5},
        {"pt", pt},
        {"csi", 0.5},
        {"threat_score", 0.5},
        {"f1", 2.0 / 3},
        {"acc", 5.0 / 8},
        {"ba", 19.0 / 30},
        {"matthews_correlation_coefficient", mcc},
        {"fm", fm},
        {"youden", 4.0 / 15},
        {"deltap", 0.25},
        {"FMI", fm},
    };
    request(&x, srv, "POST", "/v1/score", json_ct, bin_body, strlen(bin_body), HU_REQUEST_TIMEOUT);
    json_t *doc = check_json_200("confusion family names", &x);
    for (size_t i = 0; i < sizeof bin / sizeof bin[0]; i++) {
        const double want = bin[i].value;
        snprintf(path, sizeof path, "metrics.%s.per_image[0]", bin[i].key);
        check_num("confusion family names", doc, path, want, 1e-12);
        snprintf(path, sizeof path, "metrics.%s.global", bin[i].key);
        check_num("confusion family names", doc, path, want, 1e-12);
        snprintf(path, sizeof path, "metrics.%s.undefined", bin[i].key);
        check_num("confusion family names", doc, path, 0, 0);
        snprintf(path, sizeof path, "metrics.%s.reduced", bin[i].key);
        CHECK(jget(doc, path) == NULL); /* no reduction asked, no `reduced` */
    }
    CHECK_INT(json_object_size(json_object_get(doc, "metrics")), sizeof bin / sizeof bin[0]);
    json_decref(doc);
    hu_xfer_cleanup(&x);

    /* Both masks empty (one image, two pixels, logits -1, target 0): TP = FP = FN = 0, TN = 2.
     * recall keeps segloss's rule (the request's `empty`, "one" by default: 1); zero_division
     * 0 gives 0 and "nan" null as MONAI's sensitivity; MONAI's fnr is null (0/0); dice with
     * ignore_empty is null (empty target). Each null is counted in `undefined`. */
    static const char empty_body[] =
        "{\"prediction\": [[[-1, -1]]], \"target\": [[[0, 0]]], \"metrics\": [\"recall\", "
        "{\"name\": \"recall\", \"zero_division\": 0, \"as\": \"r0\"}, "
        "{\"name\": \"sensitivity\", \"zero_division\": \"nan\"}, \"fnr\", \"specificity\", "
        "{\"name\": \"dice\", \"ignore_empty\": true}, {\"name\": \"iou\", \"as\": \"iou1\"}]}";
    request(&x, srv, "POST", "/v1/score", json_ct, empty_body, strlen(empty_body),
            HU_REQUEST_TIMEOUT);
    doc = check_json_200("empty masks", &x);
    check_num("empty masks", doc, "metrics.recall.per_image[0]", 1, 0);
    check_num("empty masks", doc, "metrics.r0.per_image[0]", 0, 0);
    check_null("empty masks", doc, "metrics.sensitivity.per_image[0]");
    check_num("empty masks", doc, "metrics.sensitivity.undefined", 1, 0);
    check_null("empty masks", doc, "metrics.fnr.per_image[0]");
    check_num("empty masks", doc, "metrics.fnr.undefined", 1, 0);
    check_num("empty masks", doc, "metrics.specificity.per_image[0]", 1, 0); /* 2/2 */
    check_null("empty masks", doc, "metrics.dice.per_image[0]");
    check_num("empty masks", doc, "metrics.dice.undefined", 1, 0);
    check_num("empty masks", doc, "metrics.iou1.per_image[0]", 1, 0); /* default: `empty` */
    json_decref(doc);
    hu_xfer_cleanup(&x);

    /* Multiclass, two 1 x 5 images, include_background false (classes 1, 2 counted):
     *   image 0: target [0 1 1 0 0], prediction [0 1 2 0 0]
     *     class 1: TP 1, FN 1 -> dice 2/3, iou 1/2, fnr 1/2
     *     class 2: absent from the target, FP 1 -> dice 0, with ignore_empty null; fnr 0/0 null
     *   image 1: target [1 2 2 2 0], prediction [1 2 0 0 0]
     *     class 1: TP 1 -> dice 1, iou 1, fnr 0
     *     class 2: TP 1, FN 2 -> dice 2/4, iou 1/3, fnr 2/3
     * dice with ignore_empty, values [[2/3, null], [1, 1/2]]:
     *   mean (MONAI: per image first) = (2/3 + 3/4)/2 = 17/24, while segloss's `mean` (per class
     *   first) = (5/6 + 1/2)/2 = 2/3; sum = 13/6; mean_batch [5/6, 1/2]; sum_batch [5/3, 1/2];
     *   mean_channel [2/3, 3/4]; sum_channel [2/3, 3/2]; none the values with their null.
     * dice without ignore_empty, [[2/3, 0], [1, 1/2]]: mean (1/3 + 3/4)/2 = 13/24.
     * iou with ignore_empty [[1/2, null], [1, 1/3]]: mean_batch [3/4, 1/3].
     * The prediction is logits 4 on the predicted class and 0 elsewhere. */
    static const char mc_body[] =
        "{\"prediction\": {\"format\": \"list\", \"dtype\": \"float32\", \"shape\": [2, 3, 1, 5], "
        "\"data\": [4, 0, 0, 4, 4, 0, 4, 0, 0, 0, 0, 0, 4, 0, 0, "
        "0, 0, 4, 4, 4, 4, 0, 0, 0, 0, 0, 4, 0, 0, 0]}, "
        "\"target\": {\"format\": \"list\", \"dtype\": \"uint8\", \"shape\": [2, 1, 5], "
        "\"data\": [0, 1, 1, 0, 0, 1, 2, 2, 2, 0]}, \"include_background\": false, "
        "\"metrics\": [{\"name\": \"dice\", \"ignore_empty\": true, \"reduction\": \"mean\"}, "
        "{\"name\": \"dice\", \"ignore_empty\": true, \"reduction\": \"sum\", \"as\": \"d_sum\"}, "
        "{\"name\": \"dice\", \"ignore_empty\": true, \"reduction\": \"mean_batch\", "
        "\"as\": \"d_mb\"}, "
        "{\"name\": \"dice\", \"ignore_empty\": true, \"reduction\": \"sum_batch\", "
        "\"as\": \"d_sb\"}, "
        "{\"name\": \"dice\", \"ignore_empty\": true, \"reduction\": \"mean_channel\", "
        "\"as\": \"d_mc\"}, "
        "{\"name\": \"dice\", \"ignore_empty\": true, \"reduction\": \"sum_channel\", "
        "\"as\": \"d_sc\"}, "
        "{\"name\": \"dice\", \"ignore_empty\": true, \"reduction\": \"none\", \"as\": "
        "\"d_none\"}, "
        "{\"name\": \"dice\", \"reduction\": \"mean\", \"as\": \"d_plain\"}, "
        "{\"name\": \"iou\", \"ignore_empty\": true, \"reduction\": \"mean_batch\"}, "
        "{\"name\": \"fnr\", \"reduction\": \"none\"}]}";
    request(&x, srv, "POST", "/v1/score", json_ct, mc_body, strlen(mc_body), HU_REQUEST_TIMEOUT);
    doc = check_json_200("MONAI reductions", &x);
    const char *w = "MONAI reductions";
    check_num(w, doc, "metrics.dice.reduced", 17.0 / 24, 1e-12);
    check_num(w, doc, "metrics.dice.mean", 2.0 / 3, 1e-12);
    check_num(w, doc, "metrics.dice.undefined", 1, 0);
    check_null(w, doc, "metrics.dice.per_image[0][2]");
    check_num(w, doc, "metrics.d_sum.reduced", 13.0 / 6, 1e-12);
    check_num(w, doc, "metrics.d_mb.reduced[0]", 5.0 / 6, 1e-12);
    check_num(w, doc, "metrics.d_mb.reduced[1]", 0.5, 1e-12);
    CHECK_INT(json_array_size(jget(doc, "metrics.d_mb.reduced")), 2);
    check_num(w, doc, "metrics.d_sb.reduced[0]", 5.0 / 3, 1e-12);
    check_num(w, doc, "metrics.d_sb.reduced[1]", 0.5, 1e-12);
    check_num(w, doc, "metrics.d_mc.reduced[0]", 2.0 / 3, 1e-12);
    check_num(w, doc, "metrics.d_mc.reduced[1]", 0.75, 1e-12);
    CHECK_INT(json_array_size(jget(doc, "metrics.d_mc.reduced")), 2);
    check_num(w, doc, "metrics.d_sc.reduced[0]", 2.0 / 3, 1e-12);
    check_num(w, doc, "metrics.d_sc.reduced[1]", 1.5, 1e-12);
    check_num(w, doc, "metrics.d_none.reduced[0][0]", 2.0 / 3, 1e-12);
    check_null(w, doc, "metrics.d_none.reduced[0][1]");
    check_num(w, doc, "metrics.d_none.reduced[1][0]", 1, 1e-12);
    check_num(w, doc, "metrics.d_none.reduced[1][1]", 0.5, 1e-12);
    CHECK_INT(json_array_size(jget(doc, "metrics.d_none.reduced[0]")), 2);
    check_num(w, doc, "metrics.d_plain.reduced", 13.0 / 24, 1e-12);
    check_num(w, doc, "metrics.d_plain.per_image[0][2]", 0, 0);
    check_num(w, doc, "metrics.d_plain.undefined", 0, 0);
    check_num(w, doc, "metrics.iou.reduced[0]", 0.75, 1e-12);
    check_num(w, doc, "metrics.iou.reduced[1]", 1.0 / 3, 1e-12);
    check_num(w, doc, "metrics.fnr.reduced[0][0]", 0.5, 1e-12);
    check_null(w, doc, "metrics.fnr.reduced[0][1]");
    check_num(w, doc, "metrics.fnr.reduced[1][0]", 0, 1e-12);
    check_num(w, doc, "metrics.fnr.reduced[1][1]", 2.0 / 3, 1e-12);
    check_num(w, doc, "metrics.fnr.undefined", 1, 0);
    json_decref(doc);
    hu_xfer_cleanup(&x);

    /* bad values are 422s naming the key */
    static const struct {
        const char *body, *needle;
    } bad[] = {
        {"{\"prediction\": [[[1]]], \"target\": [[[1]]], \"metrics\": [{\"name\": \"dice\", "
         "\"reduction\": \"average\"}]}",
         "metrics[0].reduction"},
        {"{\"prediction\": [[[1]]], \"target\": [[[1]]], \"metrics\": [{\"name\": \"ppv\", "
         "\"ignore_empty\": true}]}",
         "metrics[0].ignore_empty"},
        {"{\"prediction\": [[[1]]], \"target\": [[[1]]], \"metrics\": [\"dice\", {\"name\": "
         "\"iou\", \"ignore_empty\": 1}]}",
         "metrics[1].ignore_empty"},
        {"{\"prediction\": [[[1]]], \"target\": [[[1]]], \"metrics\": [{\"name\": \"recall\", "
         "\"zero_division\": 2}]}",
         "metrics[0].zero_division"},
        {"{\"prediction\": [[[1]]], \"target\": [[[1]]], \"metrics\": [\"recall\", "
         "{\"name\": \"tpr\", \"as\": \"recall\"}]}",
         "metrics[1]"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        request(&x, srv, "POST", "/v1/score", json_ct, bad[i].body, strlen(bad[i].body),
                HU_REQUEST_TIMEOUT);
        check_problem(bad[i].needle, &x, 422);
        doc = hu_xfer_json(&x);
        check_str_has(bad[i].needle, doc, "detail", bad[i].needle);
        json_decref(doc);
        hu_xfer_cleanup(&x);
    }

    /* the catalog lists MONAI's aliases with their row, and the new parameters */
    request(&x, srv, "GET", "/v1/catalog", NULL, NULL, 0, HU_REQUEST_TIMEOUT);
    doc = check_json_200("GET /v1/catalog", &x);
    bool recall_aliases = false, dice_params = false, informedness = false;
    size_t i, k;
    json_t *e, *p;
    json_array_foreach(json_object_get(doc, "metrics"), i, e)
    {
        const char *name = json_string_value(json_object_get(e, "name"));
        json_t *al = json_object_get(e, "aliases");
        if (strcmp(name, "recall") == 0) {
            json_t *want =
                json_pack("[ssss]", "sensitivity", "hit_rate", "true_positive_rate", "tpr");
            recall_aliases = json_equal(al, want);
            json_decref(want);
        } else if (strcmp(name, "informedness") == 0) {
            json_t *want =
                json_pack("[ssss]", "bookmaker_informedness", "bm", "youden_index", "youden");
            informedness =
                json_equal(al, want) && strstr(json_string_value(json_object_get(e, "convention")),
                                               "monai/metrics/confusion_matrix.py");
            json_decref(want);
        } else if (strcmp(name, "dice") == 0) {
            int seen = 0;
            json_array_foreach(json_object_get(e, "params"), k, p)
            {
                const char *pn = json_string_value(json_object_get(p, "name"));
                if (strcmp(pn, "ignore_empty") == 0) {
                    seen += json_is_false(json_object_get(p, "default"));
                } else if (strcmp(pn, "reduction") == 0) {
                    json_t *want = json_pack("[sssssss]", "mean", "sum", "mean_batch", "sum_batch",
                                             "mean_channel", "sum_channel", "none");
                    seen += json_equal(json_object_get(p, "choices"), want);
                    json_decref(want);
                }
            }
            dice_params = seen == 2;
        }
    }
    CHECK(recall_aliases);
    CHECK(informedness);
    CHECK(dice_params);
    json_decref(doc);
    hu_xfer_cleanup(&x);

    /* openapi.json as served names the aliases */
    request(&x, srv, "GET", "/openapi.json", NULL, NULL, 0, HU_REQUEST_TIMEOUT);
    CHECK_STATUS(&x, 200);
    doc = hu_xfer_json(&x);
    json_t *aliases = (json_t *)jget(doc, "components.schemas.MetricAlias.enum");
    bool has = false;
    json_array_foreach(aliases, i, e)
    {
        has |= strcmp(json_string_value(e), "hit_rate") == 0;
    }
    CHECK(has);
    json_decref(doc);
    hu_xfer_cleanup(&x);
}

/* MONAI's reductions on the surface metrics (HausdorffDistanceMetric, SurfaceDistanceMetric,
 * SurfaceDiceMetric take `reduction` too), with MONAI's empty rule: a +inf enters its reductions
 * as MONAI's do_metric_reduction keeps it (only NaN is left out) and is written null. */
static void test_surface_reduction(const struct hu_server *srv)
{
    struct hu_xfer x;
    /* Multiclass, three 1 x 5 images, include_background false (classes 1, 2 counted); logits 4
     * on the predicted class. In a one-row image every foreground pixel is a surface pixel (the
     * outside is background, so the cross erosion leaves nothing), and distances run along the
     * row.
     *   image 0: target [0 1 1 0 0], prediction [0 1 0 0 2]
     *     class 1: target {1, 2}, prediction {1}: HD = max(0, |2 - 1|) = 1;
     *              nsd at tolerance 0.5: (1 + 1) / (1 + 2) = 2/3 (pixel 2 is 1 away)
     *     class 2: target empty, prediction {4}: MONAI HD +inf, nsd 0
     *   image 1: target [1 2 2 0 0], prediction [1 0 2 2 0]
     *     class 1: {0} and {0}: HD 0, nsd 1
     *     class 2: target {1, 2}, prediction {2, 3}: HD 1; nsd (1 + 1) / 4 = 1/2
     *   image 2: target [1 1 0 0 0], prediction [1 1 0 0 0]
     *     class 1: HD 0, nsd 1; class 2: both empty: NaN for both (MONAI)
     * HD values [[1, inf], [0, 1], [0, NaN]]:
     *   mean: image 0's mean is inf, so inf -> null; sum null; mean_batch [(1+0+0)/3, null];
     *   sum_batch [1, null]; mean_channel [null, 1/2, 0]; sum_channel [null, 1, 0];
     *   none [[1, null], [0, 1], [0, null]]; undefined 2, infinite 1; segloss's mean leaves the
     *   nulls out: per_class [1/3, 1], mean 2/3.
     * nsd values [[2/3, 0], [1, 1/2], [1, NaN]]: MONAI mean (per image first) =
     *   (1/3 + 3/4 + 1) / 3 = 25/36; segloss's mean = ((2/3 + 1 + 1)/3 + (0 + 1/2)/2) / 2 = 41/72;
     *   mean_batch [8/9, 1/4]. */
    static const char body[] =
        "{\"prediction\": {\"format\": \"list\", \"dtype\": \"float32\", \"shape\": [3, 3, 1, 5], "
        "\"data\": [4, 0, 4, 4, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 4, "
        "0, 4, 0, 0, 4, 4, 0, 0, 0, 0, 0, 0, 4, 4, 0, "
        "0, 0, 4, 4, 4, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0]}, "
        "\"target\": {\"format\": \"list\", \"dtype\": \"uint8\", \"shape\": [3, 1, 5], "
        "\"data\": [0, 1, 1, 0, 0, 1, 2, 2, 0, 0, 1, 1, 0, 0, 0]}, \"include_background\": false, "
        "\"metrics\": ["
        "{\"name\": \"hausdorff\", \"empty_rule\": \"monai\", \"reduction\": \"mean\"}, "
        "{\"name\": \"hausdorff\", \"empty_rule\": \"monai\", \"reduction\": \"sum\", "
        "\"as\": \"hd_sum\"}, "
        "{\"name\": \"hausdorff\", \"empty_rule\": \"monai\", \"reduction\": \"mean_batch\", "
        "\"as\": \"hd_mb\"}, "
        "{\"name\": \"hausdorff\", \"empty_rule\": \"monai\", \"reduction\": \"sum_batch\", "
        "\"as\": \"hd_sb\"}, "
        "{\"name\": \"hausdorff\", \"empty_rule\": \"monai\", \"reduction\": \"mean_channel\", "
        "\"as\": \"hd_mc\"}, "
        "{\"name\": \"hausdorff\", \"empty_rule\": \"monai\", \"reduction\": \"sum_channel\", "
        "\"as\": \"hd_sc\"}, "
        "{\"name\": \"hausdorff\", \"empty_rule\": \"monai\", \"reduction\": \"none\", "
        "\"as\": \"hd_none\"}, "
        "{\"name\": \"nsd\", \"tolerance\": 0.5, \"empty_rule\": \"monai\", "
        "\"reduction\": \"mean\"}, "
        "{\"name\": \"nsd\", \"tolerance\": 0.5, \"empty_rule\": \"monai\", "
        "\"reduction\": \"mean_batch\", \"as\": \"nsd_mb\"}]}";
    request(&x, srv, "POST", "/v1/score", json_ct, body, strlen(body), HU_REQUEST_TIMEOUT);
    json_t *doc = check_json_200("surface reductions", &x);
    const char *w = "surface reductions";
    check_null(w, doc, "metrics.hausdorff.reduced");
    check_num(w, doc, "metrics.hausdorff.undefined", 2, 0);
    check_num(w, doc, "metrics.hausdorff.infinite", 1, 0);
    check_num(w, doc, "metrics.hausdorff.per_class[1]", 1.0 / 3, 1e-12);
    check_num(w, doc, "metrics.hausdorff.per_class[2]", 1, 1e-12);
    check_num(w, doc, "metrics.hausdorff.mean", 2.0 / 3, 1e-12);
    check_null(w, doc, "metrics.hd_sum.reduced");
    check_num(w, doc, "metrics.hd_mb.reduced[0]", 1.0 / 3, 1e-12);
    check_null(w, doc, "metrics.hd_mb.reduced[1]");
    CHECK_INT(json_array_size(jget(doc, "metrics.hd_mb.reduced")), 2);
    check_num(w, doc, "metrics.hd_sb.reduced[0]", 1, 1e-12);
    check_null(w, doc, "metrics.hd_sb.reduced[1]");
    check_null(w, doc, "metrics.hd_mc.reduced[0]");
    check_num(w, doc, "metrics.hd_mc.reduced[1]", 0.5, 1e-12);
    check_num(w, doc, "metrics.hd_mc.reduced[2]", 0, 0);
    CHECK_INT(json_array_size(jget(doc, "metrics.hd_mc.reduced")), 3);
    check_null(w, doc, "metrics.hd_sc.reduced[0]");
    check_num(w, doc, "metrics.hd_sc.reduced[1]", 1, 1e-12);
    check_num(w, doc, "metrics.hd_sc.reduced[2]", 0, 0);
    check_num(w, doc, "metrics.hd_none.reduced[0][0]", 1, 1e-12);
    check_null(w, doc, "metrics.hd_none.reduced[0][1]");
    check_num(w, doc, "metrics.hd_none.reduced[1][0]", 0, 0);
    check_num(w, doc, "metrics.hd_none.reduced[1][1]", 1, 1e-12);
    check_num(w, doc, "metrics.hd_none.reduced[2][0]", 0, 0);
    check_null(w, doc, "metrics.hd_none.reduced[2][1]");
    check_num(w, doc, "metrics.nsd.reduced", 25.0 / 36, 1e-12);
    check_num(w, doc, "metrics.nsd.mean", 41.0 / 72, 1e-12);
    check_num(w, doc, "metrics.nsd.undefined", 1, 0);
    check_num(w, doc, "metrics.nsd_mb.reduced[0]", 8.0 / 9, 1e-12);
    check_num(w, doc, "metrics.nsd_mb.reduced[1]", 0.25, 1e-12);
    json_decref(doc);
    hu_xfer_cleanup(&x);

    /* a surface metric's reduction is checked like the others' */
    static const char bad[] = "{\"prediction\": [[[1]]], \"target\": [[[1]]], \"metrics\": "
                              "[\"dice\", {\"name\": \"surface_dice\", \"reduction\": \"max\"}]}";
    request(&x, srv, "POST", "/v1/score", json_ct, bad, strlen(bad), HU_REQUEST_TIMEOUT);
    check_problem("metrics[1].reduction", &x, 422);
    doc = hu_xfer_json(&x);
    check_str_has("metrics[1].reduction", doc, "detail", "metrics[1].reduction");
    json_decref(doc);
    hu_xfer_cleanup(&x);
}

/* ---- 5. compressed request bodies ------------------------------------------------------- */

static void test_compressed(const struct hu_server *srv)
{
    static const struct {
        const char *encoding;
        int window_bits; /* zlib: 31 = gzip wrapper, 15 = zlib wrapper ("deflate" in HTTP) */
    } encs[] = {{"gzip", 31}, {"deflate", 15}};
    for (size_t i = 0; i < 2; i++) {
        size_t zlen = 0;
        unsigned char *z = zcompress(seed_body, strlen(seed_body), encs[i].window_bits, &zlen);
        CHECK(z != NULL);
        if (!z) {
            continue;
        }
        char ce[64];
        snprintf(ce, sizeof ce, "Content-Encoding: %s", encs[i].encoding);
        const char *const hdrs[] = {"Content-Type: application/json", ce, NULL};
        struct hu_xfer x;
        request(&x, srv, "POST", "/v1/score", hdrs, z, zlen, HU_REQUEST_TIMEOUT);
        json_t *doc = check_json_200(encs[i].encoding, &x);
        check_num(encs[i].encoding, doc, "losses.combo.value", seed_expected(), 1e-6);
        json_decref(doc);
        hu_xfer_cleanup(&x);
        free(z);
    }
}

/* ---- 11. multipart/form-data bodies ------------------------------------------------------- */

/* The seed's arrays as the files of `curl -F spec=@spec.json -F pred=@pred.npy.gz -F
 * mask=@mask.npy`: the prediction a gzipped .npy, the mask a plain .npy, the spec naming them. */
struct mp_files {
    unsigned char pred_npy[64 + 16]; /* '<f4' (1, 2, 2): a v1.0 header of exactly 64 bytes */
    unsigned char *pred_gz;          /* pred_npy gzipped (malloc'd) */
    size_t pred_gz_len;
    unsigned char mask_npy[128 + 4]; /* '|u1' (1, 2, 2), laid out as numpy writes it */
};

static const char mp_spec[] =
    "{\"prediction\": {\"format\": \"npy\", \"part\": \"pred\", \"compression\": \"gzip\"}, "
    "\"prediction_type\": \"probabilities\", "
    "\"target\": {\"format\": \"npy\", \"part\": \"mask\"}, "
    "\"losses\": [{\"name\": \"combo\", \"terms\": [{\"name\": \"cross_entropy\"}, "
    "{\"name\": \"dice\"}]}], "
    "\"metrics\": []}";

/* Writes a .npy v1.0 header of `total` bytes into out: magic, version 1.0, the header length
 * (little-endian), the dict, space padding and '\n' (numpy's layout). */
static void npy_header(unsigned char *out, size_t total, const char *dict)
{
    size_t dl = strlen(dict);
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    out[8] = (unsigned char)((total - 10) & 0xff);
    out[9] = (unsigned char)((total - 10) >> 8);
    memcpy(out + 10, dict, dl);
    memset(out + 10 + dl, ' ', total - 10 - dl - 1);
    out[total - 1] = '\n';
}

static int mp_files_init(struct mp_files *f)
{
    memset(f, 0, sizeof *f);
    /* 10 bytes of preamble + this 53-byte dict + '\n' = 64 */
    static const char pred_dict[] = "{'descr':'<f4','fortran_order':False,'shape':(1,2,2)}";
    CHECK_INT(strlen(pred_dict), 53);
    npy_header(f->pred_npy, 64, pred_dict);
    static const float p[4] = {0.5f, 0.6f, 0.2f, 0.1f};
    for (int i = 0; i < 4; i++) {
        uint32_t u;
        memcpy(&u, &p[i], 4);
        for (int b = 0; b < 4; b++) {
            f->pred_npy[64 + 4 * i + b] = (unsigned char)(u >> (8 * b)); /* little-endian */
        }
    }
    npy_header(f->mask_npy, 128, "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 2, 2), }");
    static const unsigned char y[4] = {1, 1, 0, 0};
    memcpy(f->mask_npy + 128, y, 4);
    f->pred_gz = zcompress(f->pred_npy, sizeof f->pred_npy, 31, &f->pred_gz_len);
    CHECK(f->pred_gz != NULL);
    return f->pred_gz ? 0 : -1;
}

/* POSTs the form parts to srv's /v1/score; x must be cleaned up by the caller. */
static void post_form(struct hu_xfer *x, const struct hu_server *srv, const char *const *headers,
                      const struct hu_form_part *parts, int n)
{
    char url[128];
    url_of(srv, "/v1/score", url, sizeof url);
    hu_http_form(x, url, headers, parts, n, HU_REQUEST_TIMEOUT);
}

/* Checks a problem answer of status want whose detail contains needle. */
static void check_problem_has(const char *what, const struct hu_xfer *x, long want,
                              const char *needle)
{
    check_problem(what, x, want);
    json_t *doc = hu_xfer_json(x);
    check_str_has(what, doc, "detail", needle);
    json_decref(doc);
}

/* A multipart/form-data body with boundary b, written by hand as RFC 7578 says; returns a
 * malloc'd buffer (its size in *len) or NULL. */
static char *mp_body(const char *b, const struct hu_form_part *parts, int n, size_t *len)
{
    size_t cap = 64 + strlen(b);
    for (int i = 0; i < n; i++) {
        cap += parts[i].len + strlen(parts[i].name) + 160 + strlen(b);
    }
    char *out = malloc(cap);
    if (!out) {
        return NULL;
    }
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        at += (size_t)snprintf(out + at, cap - at,
                               "--%s\r\nContent-Disposition: form-data; name=\"%s\"; "
                               "filename=\"%s\"\r\nContent-Type: application/octet-stream\r\n\r\n",
                               b, parts[i].name, parts[i].filename ? parts[i].filename : "f");
        memcpy(out + at, parts[i].data, parts[i].len);
        at += parts[i].len;
        memcpy(out + at, "\r\n", 2);
        at += 2;
    }
    at += (size_t)snprintf(out + at, cap - at, "--%s--\r\n", b);
    *len = at;
    return out;
}

static void test_multipart(const struct hu_server *srv)
{
    struct mp_files f;
    struct hu_xfer x;
    if (mp_files_init(&f) != 0) {
        return;
    }
    const struct hu_form_part spec = {"spec", mp_spec, strlen(mp_spec), "spec.json"};
    const struct hu_form_part pred = {"pred", f.pred_gz, f.pred_gz_len, "pred.npy.gz"};
    const struct hu_form_part mask = {"mask", f.mask_npy, sizeof f.mask_npy, "mask.npy"};
    const struct hu_form_part seed[] = {spec, pred, mask};

    /* curl -F spec=@spec.json -F pred=@pred.npy.gz -F mask=@mask.npy: the seed's CE + Dice */
    post_form(&x, srv, NULL, seed, 3);
    json_t *doc = check_json_200("multipart seed", &x);
    check_num("multipart seed", doc, "losses.combo.value", seed_expected(), 1e-6);
    check_num("multipart seed", doc, "losses.combo.per_image[0]", seed_expected(), 1e-6);
    json_decref(doc);
    hu_xfer_cleanup(&x);

    /* the same body sent chunked (no Content-Length): split as it arrives all the same */
    const char *const chunked[] = {"Transfer-Encoding: chunked", NULL};
    post_form(&x, srv, chunked, seed, 3);
    doc = check_json_200("multipart chunked", &x);
    check_num("multipart chunked", doc, "losses.combo.value", seed_expected(), 1e-6);
    json_decref(doc);
    hu_xfer_cleanup(&x);

    /* the parts that must be there, and only those */
    const struct hu_form_part no_spec[] = {pred, mask};
    post_form(&x, srv, NULL, no_spec, 2);
    check_problem_has("no spec part", &x, 400, "no part named 'spec'");
    hu_xfer_cleanup(&x);

    const struct hu_form_part typo[] = {
        spec, {"prd", f.pred_gz, f.pred_gz_len, "pred.npy.gz"}, mask};
    post_form(&x, srv, NULL, typo, 3);
    check_problem_has("missing part", &x, 422, "prediction.part: no multipart part named 'pred'");
    hu_xfer_cleanup(&x);

    const struct hu_form_part extra[] = {spec, pred, mask, {"extra", "1", 1, "extra.txt"}};
    post_form(&x, srv, NULL, extra, 4);
    check_problem_has("unused part", &x, 422, "multipart part 'extra' is not used");
    hu_xfer_cleanup(&x);

    /* gzip bytes declared uncompressed: the detail says what to set */
    static const char spec_none[] = "{\"prediction\": {\"format\": \"npy\", \"part\": \"pred\"}, "
                                    "\"prediction_type\": \"probabilities\", "
                                    "\"target\": {\"format\": \"npy\", \"part\": \"mask\"}}";
    const struct hu_form_part gz_as_none[] = {
        {"spec", spec_none, strlen(spec_none), "spec.json"}, pred, mask};
    post_form(&x, srv, NULL, gz_as_none, 3);
    check_problem_has("gzip part, compression none", &x, 400,
                      "it looks gzip-compressed: set \"compression\": \"gzip\"");
    hu_xfer_cleanup(&x);

    /* more than 16 parts */
    struct hu_form_part many[17];
    char names[17][16];
    for (int i = 0; i < 17; i++) {
        snprintf(names[i], sizeof names[i], "p%d", i);
        many[i] = (struct hu_form_part){names[i], "x", 1, NULL};
    }
    post_form(&x, srv, NULL, many, 17);
    check_problem_has("17 parts", &x, 413, "more than 16 parts");
    hu_xfer_cleanup(&x);

    /* "part" in a JSON body: there are no parts to name */
    request(&x, srv, "POST", "/v1/score", json_ct, mp_spec, strlen(mp_spec), HU_REQUEST_TIMEOUT);
    check_problem_has("part in a JSON body", &x, 422,
                      "prediction.part: multipart parts are not supported here: \"part\" is only "
                      "in a multipart/form-data body");
    hu_xfer_cleanup(&x);

    /* the whole multipart body gzipped (Content-Encoding): inflated, then split on a worker */
    size_t blen = 0, zlen = 0;
    char *body = mp_body("segloss-e2e-7f3a", seed, 3, &blen);
    unsigned char *z = body ? zcompress(body, blen, 31, &zlen) : NULL;
    CHECK(z != NULL);
    if (z) {
        const char *const gz[] = {"Content-Type: multipart/form-data; boundary=segloss-e2e-7f3a",
                                  "Content-Encoding: gzip", NULL};
        request(&x, srv, "POST", "/v1/score", gz, z, zlen, HU_REQUEST_TIMEOUT);
        doc = check_json_200("multipart, Content-Encoding: gzip", &x);
        check_num("multipart, Content-Encoding: gzip", doc, "losses.combo.value", seed_expected(),
                  1e-6);
        json_decref(doc);
        hu_xfer_cleanup(&x);

        /* the same body cut short before its closing boundary, plain and gzipped */
        size_t zcut = 0;
        unsigned char *cut = zcompress(body, blen - 20, 31, &zcut);
        request(&x, srv, "POST", "/v1/score", gz, cut, cut ? zcut : 0, HU_REQUEST_TIMEOUT);
        check_problem_has("truncated multipart, gzip", &x, 400, "closing line");
        hu_xfer_cleanup(&x);
        free(cut);
        const char *const plain[] = {"Content-Type: multipart/form-data; boundary=segloss-e2e-7f3a",
                                     NULL};
        request(&x, srv, "POST", "/v1/score", plain, body, blen - 20, HU_REQUEST_TIMEOUT);
        check_problem_has("truncated multipart", &x, 400, "closing line");
        hu_xfer_cleanup(&x);
        /* no boundary parameter; a boundary the body does not use */
        const char *const no_boundary[] = {"Content-Type: multipart/form-data", NULL};
        request(&x, srv, "POST", "/v1/score", no_boundary, body, blen, HU_REQUEST_TIMEOUT);
        check_problem_has("no boundary", &x, 400, "boundary");
        hu_xfer_cleanup(&x);
        const char *const other[] = {"Content-Type: multipart/form-data; boundary=other", NULL};
        request(&x, srv, "POST", "/v1/score", other, body, blen, HU_REQUEST_TIMEOUT);
        check_problem_has("wrong boundary", &x, 400, "multipart/form-data body has no parts");
        hu_xfer_cleanup(&x);
        /* multipart is for /v1/score only */
        request(&x, srv, "POST", "/v1/weight-map", plain, body, blen, HU_REQUEST_TIMEOUT);
        check_problem_has("multipart weight map", &x, 415, "only on /v1/score");
        hu_xfer_cleanup(&x);
    }
    free(z);
    free(body);
    free(f.pred_gz);

    /* the server is still fine */
    request(&x, srv, "GET", "/healthz", NULL, NULL, 0, HU_REQUEST_TIMEOUT);
    CHECK_STATUS(&x, 200);
    hu_xfer_cleanup(&x);
}

/* Parts larger than the 256 KiB at which a part takes room for the rest of an announced body at
 * once (server/multipart.c), in either order, announced or chunked: a 1 x 600 x 600 float32
 * probability map of 0.25 (1.4 MB) and a uint8 mask (360 KB) whose left half is 1. By hand, soft
 * Dice with smooth 0: sum p y = 0.25 x 180000 = 45000, sum p = 90000, sum y = 180000, Dice =
 * 2 x 45000 / 270000 = 1/3, loss 2/3; the hard prediction (p >= 0.5) is empty, so the Dice
 * metric is 0 and the mask's 180000 pixels are all false negatives. */
static void test_multipart_large(const struct hu_server *srv)
{
    enum { W = 600, NPIX = W * W, HDR = 128 };
    unsigned char *pred = malloc(HDR + 4 * (size_t)NPIX), *mask = malloc(HDR + (size_t)NPIX);
    if (!pred || !mask) {
        CHECK(0);
        free(pred);
        free(mask);
        return;
    }
    npy_header(pred, HDR, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 600, 600), }");
    npy_header(mask, HDR, "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 600, 600), }");
    const float q = 0.25f;
    for (int k = 0; k < NPIX; k++) {
        memcpy(pred + HDR + 4 * (size_t)k, &q, 4); /* x86-64 and arm64: little-endian */
        mask[HDR + k] = (unsigned char)(k % W < W / 2);
    }
    static const char spec[] = "{\"prediction\": {\"format\": \"npy\", \"part\": \"pred\"}, "
                               "\"prediction_type\": \"probabilities\", "
                               "\"target\": {\"format\": \"npy\", \"part\": \"mask\"}, "
                               "\"losses\": [{\"name\": \"dice\", \"smooth\": 0}], \"metrics\": "
                               "[\"dice\", \"confusion\"]}";
    const struct hu_form_part s = {"spec", spec, strlen(spec), "spec.json"};
    const struct hu_form_part pp = {"pred", (const char *)pred, HDR + 4 * (size_t)NPIX, "p.npy"};
    const struct hu_form_part mp = {"mask", (const char *)mask, HDR + (size_t)NPIX, "m.npy"};
    const struct hu_form_part orders[3][3] = {{s, pp, mp}, {mp, pp, s}, {pp, s, mp}};
    const char *const chunked[] = {"Transfer-Encoding: chunked", NULL};
    for (int o = 0; o < 3; o++) {
        for (int c = 0; c < 2; c++) {
            char what[64];
            snprintf(what, sizeof what, "large parts, order %d%s", o, c ? ", chunked" : "");
            struct hu_xfer x;
            post_form(&x, srv, c ? chunked : NULL, orders[o], 3);
            json_t *doc = check_json_200(what, &x);
            check_num(what, doc, "losses.dice.value", 2.0 / 3.0, 1e-12);
            check_num(what, doc, "metrics.dice.global", 0.0, 0.0);
            check_num(what, doc, "metrics.confusion.global.fn", 180000.0, 0.0);
            json_decref(doc);
            hu_xfer_cleanup(&x);
        }
    }
    free(pred);
    free(mask);
}

/* On a server with --max-body-mb 1: a 2 MiB part is over the limit, whether the body announces
 * its length (refused before it is read) or comes chunked (refused once 1 MiB has arrived). */
static void test_multipart_limit(const struct hu_server *srv)
{
    const size_t big = (size_t)2 << 20;
    unsigned char *blob = calloc(1, big);
    CHECK(blob != NULL);
    if (!blob) {
        return;
    }
    static const char spec[] = "{\"prediction\": {\"format\": \"raw\", \"part\": \"pred\", "
                               "\"dtype\": \"uint8\", \"shape\": [2097152]}, "
                               "\"target\": {\"format\": \"raw\", \"part\": \"pred\", "
                               "\"dtype\": \"uint8\", \"shape\": [2097152]}}";
    const struct hu_form_part parts[] = {{"spec", spec, strlen(spec), "spec.json"},
                                         {"pred", blob, big, "pred.bin"}};
    struct hu_xfer x;
    const char *const expect[] = {"Expect: 100-continue", NULL};
    post_form(&x, srv, expect, parts, 2);
    check_problem_has("2 MiB part, Content-Length", &x, 413, "over the limit");
    hu_xfer_cleanup(&x);
    const char *const chunked[] = {"Transfer-Encoding: chunked", NULL};
    post_form(&x, srv, chunked, parts, 2);
    check_problem_has("2 MiB part, chunked", &x, 413, "over the limit");
    hu_xfer_cleanup(&x);
    free(blob);
}

/* ---- 10. /v1/weight-map ------------------------------------------------------------------- */

/* A 1 x 7 row with one-pixel objects at columns 0 and 6 (4-connectivity). By hand: every
 * background column c has d1 = min(c, 6 - c), d2 = max(c, 6 - c), so d1 + d2 = 6 and, with the
 * defaults w0 = 10, sigma = 5, class_weights = [1, 1]:
 *   w = 1 + 10 exp(-6^2 / (2 * 5^2)) = 1 + 10 exp(-0.72) = 5.8675225...
 * and w = 1 on the two objects. */
static const char wm_row_body[] =
    "{\"target\": {\"format\": \"list\", \"dtype\": \"uint8\", \"shape\": [1, 1, 7], "
    "\"data\": [1, 0, 0, 0, 0, 0, 1]}, \"connectivity\": 4}";

static double wm_row_expected(void)
{
    return 1 + 10 * exp(-36.0 / 50.0);
}

/* Parses a .npy v1.0 '<f4' answer: CHECKs magic, version, 64-byte padded header, shape and
 * the byte count; returns a pointer to the first float's bytes (NULL on failure). */
static const unsigned char *check_npy(const char *what, const unsigned char *b, size_t len,
                                      const char *shape_text, size_t count)
{
    bool magic = len >= 10 && memcmp(b, "\x93NUMPY\x01\x00", 8) == 0;
    CHECK(magic);
    if (!magic) {
        fprintf(stderr, "    %s: not a .npy v1.0 answer (%zu bytes)\n", what, len);
        return NULL;
    }
    size_t hlen = (size_t)b[8] | (size_t)b[9] << 8;
    CHECK_INT((10 + hlen) % 64, 0);
    CHECK_INT(len, 10 + hlen + 4 * count);
    if (len != 10 + hlen + 4 * count || hlen < 2) {
        return NULL;
    }
    char hdr[512];
    size_t n = hlen < sizeof hdr - 1 ? hlen : sizeof hdr - 1;
    memcpy(hdr, b + 10, n);
    hdr[n] = '\0';
    CHECK(hdr[hlen - 1] == '\n');
    CHECK(strstr(hdr, "'descr': '<f4'") != NULL);
    CHECK(strstr(hdr, "'fortran_order': False") != NULL);
    bool shape_ok = strstr(hdr, shape_text) != NULL;
    CHECK(shape_ok);
    if (!shape_ok) {
        fprintf(stderr, "    %s: header %s, want %s\n", what, hdr, shape_text);
    }
    return b + 10 + hlen;
}

/* Little-endian float i of data. */
static float npy_f32(const unsigned char *data, size_t i)
{
    const unsigned char *e = data + 4 * i;
    uint32_t bits =
        (uint32_t)e[0] | (uint32_t)e[1] << 8 | (uint32_t)e[2] << 16 | (uint32_t)e[3] << 24;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Inflates a gzip stream into a new buffer of at most cap bytes; NULL on failure. */
static unsigned char *gunzip(const void *in, size_t len, size_t cap, size_t *outlen)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 31) != Z_OK) {
        return NULL;
    }
    unsigned char *out = malloc(cap ? cap : 1);
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int rc = out ? inflate(&z, Z_FINISH) : Z_MEM_ERROR;
    *outlen = (size_t)z.total_out;
    bool whole = rc == Z_STREAM_END && z.avail_in == 0;
    inflateEnd(&z);
    if (!whole) {
        free(out);
        return NULL;
    }
    return out;
}

/* A [2, 32, 32] batch of a few squares each: a map worth compressing. */
static char *wm_batch_body(void)
{
    char *body = malloc(16384);
    if (!body) {
        return NULL;
    }
    size_t n = (size_t)snprintf(body, 16384,
                                "{\"target\": {\"format\": \"list\", \"dtype\": \"uint8\", "
                                "\"shape\": [2, 32, 32], \"data\": [");
    for (int i = 0; i < 2 * 32 * 32; i++) {
        int img = i / 1024, y = i / 32 % 32, x = i % 32;
        bool on = (y % 10 < 3 && x % 12 < 4) || (img == 1 && y > 28);
        n += (size_t)snprintf(body + n, 16384 - n, "%s%d", i ? "," : "", on);
    }
    snprintf(body + n, 16384 - n, "]}, \"sigma\": 3}");
    return body;
}

static void test_weight_map(const struct hu_server *srv)
{
    struct hu_xfer x;
    char h[256];

    /* .npy: parses, and the row's pixel 3 is the hand value */
    request(&x, srv, "POST", "/v1/weight-map", json_ct, wm_row_body, strlen(wm_row_body),
            HU_REQUEST_TIMEOUT);
    CHECK_STATUS(&x, 200);
    CHECK(hu_ctype_is(x.ctype, "application/x-npy"));
    CHECK(!hu_xfer_header(&x, "Content-Encoding", h, sizeof h));
    CHECK(hu_xfer_header(&x, "Vary", h, sizeof h) && strstr(h, "Accept-Encoding"));
    const unsigned char *data = check_npy("weight map .npy", (const unsigned char *)x.body.data,
                                          x.body.len, "'shape': (1, 1, 7)", 7);
    if (data) {
        CHECK_CLOSE(npy_f32(data, 3), wm_row_expected(), 1e-6, 0);
        CHECK_CLOSE(npy_f32(data, 1), wm_row_expected(), 1e-6, 0);
        CHECK_CLOSE(npy_f32(data, 0), 1.0, 0, 0);
        CHECK_CLOSE(npy_f32(data, 6), 1.0, 0, 0);
    }
    hu_xfer_cleanup(&x);

    /* JSON with Accept: application/json */
    const char *const accept_json[] = {"Content-Type: application/json", "Accept: application/json",
                                       "Accept-Encoding: gzip", NULL};
    request(&x, srv, "POST", "/v1/weight-map", accept_json, wm_row_body, strlen(wm_row_body),
            HU_REQUEST_TIMEOUT);
    json_t *doc = check_json_200("weight map JSON", &x);
    CHECK(!hu_xfer_header(&x, "Content-Encoding", h, sizeof h)); /* only .npy is gzipped */
    check_num("weight map JSON", doc, "shape[0]", 1, 0);
    check_num("weight map JSON", doc, "shape[2]", 7, 0);
    CHECK_INT(json_array_size(jget(doc, "data")), 7);
    check_num("weight map JSON", doc, "data[3]", wm_row_expected(), 1e-6);
    check_num("weight map JSON", doc, "data[6]", 1, 0);
    json_decref(doc);
    hu_xfer_cleanup(&x);

    /* gzip with Accept-Encoding: gzip; the inflated bytes are the plain answer */
    char *batch = wm_batch_body();
    CHECK(batch != NULL);
    if (batch) {
        struct hu_xfer plain;
        request(&plain, srv, "POST", "/v1/weight-map", json_ct, batch, strlen(batch),
                HU_REQUEST_TIMEOUT);
        CHECK_STATUS(&plain, 200);
        check_npy("batch .npy", (const unsigned char *)plain.body.data, plain.body.len,
                  "'shape': (2, 32, 32)", 2 * 32 * 32);
        const char *const gz[] = {"Content-Type: application/json",
                                  "Accept-Encoding: deflate, gzip;q=0.8", NULL};
        request(&x, srv, "POST", "/v1/weight-map", gz, batch, strlen(batch), HU_REQUEST_TIMEOUT);
        CHECK_STATUS(&x, 200);
        CHECK(hu_ctype_is(x.ctype, "application/x-npy"));
        CHECK(hu_xfer_header(&x, "Content-Encoding", h, sizeof h) && strcmp(h, "gzip") == 0);
        CHECK(x.body.len < plain.body.len);
        size_t ulen = 0;
        unsigned char *u = gunzip(x.body.data, x.body.len, plain.body.len + 1, &ulen);
        CHECK(u != NULL);
        CHECK(u && ulen == plain.body.len && memcmp(u, plain.body.data, ulen) == 0);
        free(u);
        hu_xfer_cleanup(&x);

        /* gzip refused (q=0): plain */
        const char *const nogz[] = {"Content-Type: application/json",
                                    "Accept-Encoding: gzip;q=0, identity", NULL};
        request(&x, srv, "POST", "/v1/weight-map", nogz, batch, strlen(batch), HU_REQUEST_TIMEOUT);
        CHECK_STATUS(&x, 200);
        CHECK(!hu_xfer_header(&x, "Content-Encoding", h, sizeof h));
        CHECK(x.body.len == plain.body.len);
        hu_xfer_cleanup(&x);

        /* a gzip request body takes the same way in */
        size_t zlen = 0;
        unsigned char *z = zcompress(batch, strlen(batch), 31, &zlen);
        CHECK(z != NULL);
        if (z) {
            const char *const zin[] = {"Content-Type: application/json", "Content-Encoding: gzip",
                                       NULL};
            request(&x, srv, "POST", "/v1/weight-map", zin, z, zlen, HU_REQUEST_TIMEOUT);
            CHECK_STATUS(&x, 200);
            CHECK(x.body.len == plain.body.len &&
                  memcmp(x.body.data, plain.body.data, x.body.len) == 0);
            hu_xfer_cleanup(&x);
            free(z);
        }
        hu_xfer_cleanup(&plain);
        free(batch);
    }

    /* 422 naming the bad parameter */
    static const char bad_sigma[] =
        "{\"target\": {\"format\": \"list\", \"dtype\": \"uint8\", \"shape\": [1, 1, 3], "
        "\"data\": [1, 0, 1]}, \"sigma\": -1}";
    request(&x, srv, "POST", "/v1/weight-map", json_ct, bad_sigma, strlen(bad_sigma),
            HU_REQUEST_TIMEOUT);
    check_problem("weight map sigma -1", &x, 422);
    doc = hu_xfer_json(&x);
    check_str_has("weight map sigma -1", doc, "detail", "sigma");
    json_decref(doc);
    hu_xfer_cleanup(&x);

    static const char bad_conn[] =
        "{\"target\": [[[1, 0, 1]]], \"connectivity\": 6, \"neighbours\": 2}";
    request(&x, srv, "POST", "/v1/weight-map", json_ct, bad_conn, strlen(bad_conn),
            HU_REQUEST_TIMEOUT);
    check_problem("weight map unknown key", &x, 422);
    doc = hu_xfer_json(&x);
    check_str_has("weight map unknown key", doc, "detail", "neighbours");
    json_decref(doc);
    hu_xfer_cleanup(&x);

    request(&x, srv, "GET", "/v1/weight-map", NULL, NULL, 0, HU_REQUEST_TIMEOUT);
    check_problem("GET /v1/weight-map", &x, 405);
    hu_xfer_cleanup(&x);
}

/* POSTs body to path and checks a 200 JSON answer; returns the parsed body (new, or NULL). */
static json_t *post_200(const struct hu_server *srv, const char *what, const char *path,
                        const char *body)
{
    struct hu_xfer x;
    const char *const accept_json[] = {"Content-Type: application/json", "Accept: application/json",
                                       NULL};
    request(&x, srv, "POST", path, accept_json, body, strlen(body), HU_REQUEST_TIMEOUT);
    json_t *doc = check_json_200(what, &x);
    hu_xfer_cleanup(&x);
    return doc;
}

/* POSTs body to path and checks a 422 problem whose detail contains needle. */
static void post_422(const struct hu_server *srv, const char *what, const char *path,
                     const char *body, const char *needle)
{
    struct hu_xfer x;
    request(&x, srv, "POST", path, json_ct, body, strlen(body), HU_REQUEST_TIMEOUT);
    check_problem_has(what, &x, 422, needle);
    hu_xfer_cleanup(&x);
}

#define F32(shape) "{\"format\": \"list\", \"dtype\": \"float32\", \"shape\": " shape ", \"data\": "
#define U8(shape) "{\"format\": \"list\", \"dtype\": \"uint8\", \"shape\": " shape ", \"data\": "

/* Shapes and layouts (README "Shapes and layouts"): spacing fixes the spatial axes, a
 * one-slice volume stays 3-D where the layout or the spacing says so, and a shape that
 * contradicts the spacing or the mode is a 422 naming the key. */
static void test_layouts(const struct hu_server *srv)
{
    /* [N, D, H, W] = [1, 2, 1, 2] with three spacings is a binary 3-D batch (without spacing
     * the same arrays would be multilabel C = 2). Target voxel (d, h, w) = (0, 0, 0), predicted
     * voxel (1, 0, 0): both surfaces are one voxel, 1 slice apart at spacing 2 along D, so
     * hausdorff = 2. */
    json_t *doc = post_200(
        srv, "4-D with 3 spacings", "/v1/score",
        "{\"prediction\": " F32("[1, 2, 1, 2]") "[-5, -5, 5, -5]}, \"target\": " U8(
            "[1, 2, 1, 2]") "[1, 0, 0, 0]}, \"spacing\": [2, 1, 1], \"metrics\": [\"hausdorff\"]}");
    const char *mode = json_string_value(jget(doc, "mode"));
    CHECK(mode && strcmp(mode, "binary") == 0);
    check_num("4-D with 3 spacings", doc, "classes", 1, 0);
    check_num("4-D with 3 spacings", doc, "shape[0]", 2, 0);
    check_num("4-D with 3 spacings", doc, "shape[2]", 2, 0);
    check_num("4-D with 3 spacings", doc, "metrics.hausdorff.per_image[0]", 2, 1e-12);
    json_decref(doc);

    /* [N, 1, H, W] = [1, 1, 2, 2] with three spacings: a one-slice volume [D, H, W] = [1, 2, 2];
     * target (0, 0, 0), prediction (0, 1, 1): sqrt((1 * 1)^2 + (1 * 2)^2) = sqrt(5) */
    doc = post_200(srv, "one slice by spacing", "/v1/score",
                   "{\"prediction\": " F32("[1, 1, 2, 2]") "[-5, -5, -5, 5]}, \"target\": " U8(
                       "[1, 1, 2, 2]") "[1, 0, 0, 0]}, \"spacing\": [5, 1, 2], \"metrics\": "
                                       "[\"hausdorff\"]}");
    check_num("one slice by spacing", doc, "shape[0]", 1, 0);
    check_num("one slice by spacing", doc, "shape[1]", 2, 0);
    check_num("one slice by spacing", doc, "metrics.hausdorff.per_image[0]", sqrt(5.0), 1e-12);
    json_decref(doc);

    /* 5-D [N, 1, 1, H, W]: 3-D by its layout. Target fg at (0, 0, 0) and (0, 1, 1), logits 0.
     * connectivity 26: the diagonal pair is one instance, so (neighbors 2) no border term, w = 1
     * everywhere and the loss is the mean BCE at p = 1/2: ln 2. connectivity 6: two instances;
     * each background pixel is 1 from both: w = 1 + 10 exp(-(1 + 1)^2 / (2 * 5^2)). */
    const double wb = 1 + 10 * exp(-4.0 / 50.0);
    static const char *const conns[] = {"26", "6"};
    for (int k = 0; k < 2; k++) {
        char body[1024];
        snprintf(body, sizeof body,
                 "{\"prediction\": " F32("[1, 1, 1, 2, 2]") "[0, 0, 0, 0]}, \"target\": " U8(
                     "[1, 1, 1, 2, 2]") "[1, 0, 0, 1]}, \"losses\": [{\"name\": "
                                        "\"distance_weighted_cross_entropy\", \"connectivity\": "
                                        "%s}], \"metrics\": []}",
                 conns[k]);
        doc = post_200(srv, "5-D dwce", "/v1/score", body);
        check_num("5-D dwce", doc, "losses.distance_weighted_cross_entropy.value",
                  k == 0 ? log(2.0) : log(2.0) * (2 + 2 * wb) / 4, 1e-6); /* w is float32 */
        json_decref(doc);
        snprintf(body, sizeof body,
                 "{\"target\": " U8("[1, 1, 1, 2, 2]") "[1, 0, 0, 1]}, \"connectivity\": %s}",
                 conns[k]);
        doc = post_200(srv, "5-D weight map", "/v1/weight-map", body);
        CHECK_INT(json_array_size(jget(doc, "shape")), 4); /* [N, D, H, W] */
        check_num("5-D weight map", doc, "shape[1]", 1, 0);
        check_num("5-D weight map", doc, "data[0]", 1, 0);
        check_num("5-D weight map", doc, "data[1]", k == 0 ? 1 : wb, 1e-6);
        json_decref(doc);
    }
    /* the weight map reads a 4-D [N, D, H, W] with three spacings as /v1/score does */
    doc = post_200(srv, "4-D weight map", "/v1/weight-map",
                   "{\"target\": " U8("[1, 2, 1, 2]") "[1, 0, 0, 0]}, \"spacing\": [2, 1, 1]}");
    CHECK_INT(json_array_size(jget(doc, "shape")), 4);
    check_num("4-D weight map", doc, "shape[1]", 2, 0);
    json_decref(doc);

    /* contradictions: 422 naming the key */
    post_422(srv, "3-D with 3 spacings", "/v1/score",
             "{\"prediction\": " F32("[1, 2, 2]") "[0, 0, 0, 0]}, \"target\": " U8(
                 "[1, 2, 2]") "[0, 0, 0, 0]}, \"spacing\": [1, 1, 1]}",
             "spacing");
    post_422(srv, "multiclass with spacing of its channel", "/v1/score",
             "{\"prediction\": " F32("[1, 2, 1, 2]") "[0, 0, 0, 0]}, \"target\": " U8(
                 "[1, 1, 2]") "[0, 1]}, \"mode\": \"multiclass\", \"spacing\": [1, 1, 1]}",
             "spacing");
    post_422(srv, "binary C = 2 with 2 spacings", "/v1/score",
             "{\"prediction\": " F32("[1, 2, 1, 2]") "[0, 0, 0, 0]}, \"target\": " U8(
                 "[1, 2, 1, 2]") "[0, 0, 0, 0]}, \"mode\": \"binary\", \"spacing\": [1, 1]}",
             "spacing");
    post_422(srv, "5-D with 2 spacings", "/v1/score",
             "{\"prediction\": " F32("[1, 1, 1, 1, 2]") "[0, 0]}, \"target\": " U8(
                 "[1, 1, 1, 1, 2]") "[0, 0]}, \"spacing\": [1, 1]}",
             "spacing");
    post_422(srv, "2-D [N, 1, H, W] with connectivity 26", "/v1/score",
             "{\"prediction\": " F32("[1, 1, 1, 2]") "[0, 0]}, \"target\": " U8(
                 "[1, 1, 1, 2]") "[0, 1]}, \"losses\": [{\"name\": "
                                 "\"distance_weighted_cross_entropy\", \"connectivity\": 26}]}",
             "losses[0].connectivity");
}

/* float32 logits at the ends of the range answer what float64 answers (README "Numerics"):
 * Dice with smooth 0 on an empty target at x = -90 is 1 - 0 / sum p = 1 (p = 8.2e-40 > 0), and
 * the cross entropy of x = 3e38 with y = 0 is x itself, finite. */
static void test_float32_extremes(const struct hu_server *srv)
{
    json_t *doc = post_200(srv, "dice at -90", "/v1/score",
                           "{\"prediction\": " F32("[1, 1, 3]") "[-90, -90, -90]}, \"target\": " U8(
                               "[1, 1, 3]") "[0, 0, 0]}, \"losses\": [{\"name\": \"dice\"}], "
                                            "\"metrics\": []}");
    check_num("dice at -90", doc, "losses.dice.value", 1, 0);
    json_decref(doc);
    doc = post_200(
        srv, "ce at 3e38", "/v1/score",
        "{\"prediction\": " F32("[1, 1, 9]") "[3e38, 3e38, 3e38, 3e38, 3e38, 3e38, 3e38, "
                                             "3e38, 3e38]}, \"target\": " U8(
                                                 "[1, 1, 9]") "[0, 0, 0, 0, 0, 0, 0, 0, 0]}, "
                                                              "\"losses\": [{\"name\": "
                                                              "\"cross_entropy\"}], "
                                                              "\"metrics\": []}");
    CHECK_CLOSE(jnum(doc, "losses.cross_entropy.value"), (double)3e38f, 1e-6, 0);
    json_decref(doc);
}

/* A large answer comes back gzipped when the client allows it, and plain otherwise. */
static void test_gzip_answer(const struct hu_server *srv)
{
    /* 300 one-pixel images, logit 1 on target 1: every per-image Dice is 1 */
    const int n = 300;
    struct hu_buf b = {0};
    char tmp[64];
    hu_buf_append(
        &b, "{\"prediction\": {\"format\": \"list\", \"shape\": [300, 1, 1], \"data\": [",
        strlen("{\"prediction\": {\"format\": \"list\", \"shape\": [300, 1, 1], \"data\": ["));
    for (int i = 0; i < n; i++) {
        snprintf(tmp, sizeof tmp, "%s1", i ? "," : "");
        hu_buf_append(&b, tmp, strlen(tmp));
    }
    const char *mid = "]}, \"target\": {\"format\": \"list\", \"shape\": [300, 1, 1], \"data\": [";
    hu_buf_append(&b, mid, strlen(mid));
    for (int i = 0; i < n; i++) {
        snprintf(tmp, sizeof tmp, "%s1", i ? "," : "");
        hu_buf_append(&b, tmp, strlen(tmp));
    }
    hu_buf_append(&b, "]}}", 3);
    const char *const gz[] = {"Content-Type: application/json", "Accept-Encoding: gzip", NULL};
    struct hu_xfer x;
    char h[128];
    request(&x, srv, "POST", "/v1/score", gz, b.data, b.len, HU_REQUEST_TIMEOUT);
    CHECK_STATUS(&x, 200);
    CHECK(hu_xfer_header(&x, "Content-Encoding", h, sizeof h) && strstr(h, "gzip"));
    size_t plain_len = 0;
    unsigned char *plain = gunzip(x.body.data, x.body.len, (size_t)1 << 20, &plain_len);
    CHECK(plain != NULL && plain_len > x.body.len);
    json_t *doc = plain ? json_loadb((const char *)plain, plain_len, 0, NULL) : NULL;
    CHECK(doc != NULL);
    CHECK_INT(json_integer_value(jget(doc, "images")), n);
    check_num("gzipped answer", doc, "metrics.dice.mean", 1.0, 0);
    json_decref(doc);
    free(plain);
    hu_xfer_cleanup(&x);
    /* without Accept-Encoding the same answer is plain JSON */
    request(&x, srv, "POST", "/v1/score", json_ct, b.data, b.len, HU_REQUEST_TIMEOUT);
    CHECK_STATUS(&x, 200);
    CHECK(!hu_xfer_header(&x, "Content-Encoding", h, sizeof h));
    doc = hu_xfer_json(&x);
    CHECK_INT(json_integer_value(jget(doc, "images")), n);
    json_decref(doc);
    hu_xfer_cleanup(&x);
    free(b.data);
}

/* ---- zstd on the wire (RFC 8878) ----------------------------------------------------------- */

/* One zstd frame of in[0..len) by libzstd's encoder at level 3, with its content size in the
 * header (sized) or without it (the streaming encoder never told the size). Returns a malloc'd
 * buffer (its size in *outlen) or NULL. */
static unsigned char *zstd_pack(const void *in, size_t len, bool sized, size_t *outlen)
{
    size_t cap = ZSTD_compressBound(len) + 64;
    unsigned char *out = malloc(cap);
    ZSTD_CCtx *c = ZSTD_createCCtx();
    ZSTD_outBuffer o = {out, cap, 0};
    ZSTD_inBuffer i = {in, len, 0};
    size_t r = 1;
    if (out && c) {
        ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, 3);
        ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, sized ? 1 : 0);
        if (sized) {
            ZSTD_CCtx_setPledgedSrcSize(c, len);
        }
        r = ZSTD_compressStream2(c, &o, &i, ZSTD_e_end);
    }
    ZSTD_freeCCtx(c);
    if (r != 0) {
        free(out);
        return NULL;
    }
    *outlen = o.pos;
    return out;
}

/* Seconds on the monotonic clock. */
static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* POSTs {"prediction": {raw float32 [1, 2, 2] as z (zstd, base64)}, ...the seed} and checks
 * the problem it gets: status want, detail containing needle. */
static void zstd_raw_problem(const struct hu_server *srv, const char *what, const char *shape,
                             const unsigned char *z, size_t zl, long want, const char *needle)
{
    char *b = base64(z, zl);
    size_t cap = (b ? strlen(b) : 0) + 1024;
    char *body = malloc(cap);
    if (!b || !body) {
        CHECK(0);
        free(b);
        free(body);
        return;
    }
    snprintf(body, cap,
             "{\"prediction\": {\"format\": \"raw\", \"dtype\": \"float32\", \"shape\": %s, "
             "\"compression\": \"zstd\", \"data\": \"%s\"}, \"prediction_type\": "
             "\"probabilities\", \"target\": [[[1, 1], [0, 0]]], \"losses\": [\"dice\"]}",
             shape, b);
    struct hu_xfer x;
    double t0 = mono_s();
    request(&x, srv, "POST", "/v1/score", json_ct, body, strlen(body), HU_REQUEST_TIMEOUT);
    double dt = mono_s() - t0;
    check_problem_has(what, &x, want, needle);
    fprintf(stderr, "    note: %s: %ld in %.1f ms\n", what, x.status, dt * 1e3);
    hu_xfer_cleanup(&x);
    free(b);
    free(body);
}

static void test_zstd(const struct hu_server *srv)
{
    struct mp_files f;
    struct hu_xfer x;
    char h[256];
    if (mp_files_init(&f) != 0) {
        return;
    }
    size_t zl = 0, sl = 0;
    unsigned char *z = zstd_pack(f.pred_npy, sizeof f.pred_npy, true, &zl);
    unsigned char *s = zstd_pack(f.pred_npy, sizeof f.pred_npy, false, &sl);
    char *b = z ? base64(z, zl) : NULL;
    CHECK(z && s && b);
    if (!z || !s || !b) {
        goto out;
    }
    /* a zstd .npy array in a JSON body: the seed's CE + Dice */
    char body[2048];
    snprintf(body, sizeof body,
             "{\"prediction\": {\"format\": \"npy\", \"compression\": \"zstd\", \"data\": \"%s\"}, "
             "\"prediction_type\": \"probabilities\", \"target\": {\"format\": \"npy\", \"data\": "
             "\"\"}, \"losses\": [{\"name\": \"combo\", \"terms\": [{\"name\": \"cross_entropy\"}, "
             "{\"name\": \"dice\"}]}], \"metrics\": []}",
             b);
    /* the mask as base64 of its .npy */
    char *m64 = base64(f.mask_npy, sizeof f.mask_npy);
    char *at = strstr(body, "\"data\": \"\"}");
    CHECK(m64 && at);
    if (m64 && at) {
        char tail[1024];
        snprintf(tail, sizeof tail, "%s", at + strlen("\"data\": \"\"}"));
        snprintf(at, sizeof body - (size_t)(at - body), "\"data\": \"%s\"}%s", m64, tail);
        request(&x, srv, "POST", "/v1/score", json_ct, body, strlen(body), HU_REQUEST_TIMEOUT);
        json_t *doc = check_json_200("zstd npy array", &x);
        check_num("zstd npy array", doc, "losses.combo.value", seed_expected(), 1e-6);
        json_decref(doc);
        hu_xfer_cleanup(&x);
    }
    free(m64);

    /* a zstd part (without a declared size), the spec saying so */
    static const char spec_zstd[] =
        "{\"prediction\": {\"format\": \"npy\", \"part\": \"pred\", \"compression\": \"zstd\"}, "
        "\"prediction_type\": \"probabilities\", "
        "\"target\": {\"format\": \"npy\", \"part\": \"mask\"}, "
        "\"losses\": [{\"name\": \"combo\", \"terms\": [{\"name\": \"cross_entropy\"}, "
        "{\"name\": \"dice\"}]}], \"metrics\": []}";
    const struct hu_form_part mp[] = {{"spec", spec_zstd, strlen(spec_zstd), "spec.json"},
                                      {"pred", s, sl, "pred.npy.zst"},
                                      {"mask", f.mask_npy, sizeof f.mask_npy, "mask.npy"}};
    post_form(&x, srv, NULL, mp, 3);
    json_t *doc = check_json_200("zstd part", &x);
    check_num("zstd part", doc, "losses.combo.value", seed_expected(), 1e-6);
    json_decref(doc);
    hu_xfer_cleanup(&x);
    /* the same part declared uncompressed: the detail says what to set */
    static const char spec_none[] = "{\"prediction\": {\"format\": \"npy\", \"part\": \"pred\"}, "
                                    "\"prediction_type\": \"probabilities\", "
                                    "\"target\": {\"format\": \"npy\", \"part\": \"mask\"}}";
    const struct hu_form_part mp_none[] = {
        {"spec", spec_none, strlen(spec_none), "spec.json"}, mp[1], mp[2]};
    post_form(&x, srv, NULL, mp_none, 3);
    check_problem_has("zstd part, compression none", &x, 400,
                      "it looks zstd-compressed: set \"compression\": \"zstd\"");
    hu_xfer_cleanup(&x);

    /* Content-Encoding: zstd bodies, JSON and multipart */
    size_t bl = 0;
    unsigned char *zb = zstd_pack(seed_body, strlen(seed_body), true, &bl);
    const char *const zj[] = {"Content-Type: application/json", "Content-Encoding: zstd", NULL};
    request(&x, srv, "POST", "/v1/score", zj, zb, zb ? bl : 0, HU_REQUEST_TIMEOUT);
    doc = check_json_200("Content-Encoding: zstd", &x);
    check_num("Content-Encoding: zstd", doc, "losses.combo.value", seed_expected(), 1e-6);
    json_decref(doc);
    hu_xfer_cleanup(&x);
    /* cut short by 3 bytes, and with a byte after the frame */
    request(&x, srv, "POST", "/v1/score", zj, zb, zb ? bl - 3 : 0, HU_REQUEST_TIMEOUT);
    check_problem_has("zstd body truncated", &x, 400,
                      "request body (Content-Encoding: zstd): zstd frame is truncated");
    hu_xfer_cleanup(&x);
    unsigned char *zb1 = zb ? malloc(bl + 1) : NULL;
    if (zb1) {
        memcpy(zb1, zb, bl);
        zb1[bl] = '\n';
        request(&x, srv, "POST", "/v1/score", zj, zb1, bl + 1, HU_REQUEST_TIMEOUT);
        check_problem_has("zstd body, a byte after the frame", &x, 400,
                          "request body (Content-Encoding: zstd): 1 byte after the end of the "
                          "zstd frame");
        hu_xfer_cleanup(&x);
        free(zb1);
    }
    free(zb);
    size_t mpl = 0, mpz = 0;
    char *mpb = mp_body("segloss-e2e-zs", mp, 3, &mpl);
    unsigned char *mpzb = mpb ? zstd_pack(mpb, mpl, false, &mpz) : NULL;
    CHECK(mpzb != NULL);
    if (mpzb) {
        const char *const zm[] = {"Content-Type: multipart/form-data; boundary=segloss-e2e-zs",
                                  "Content-Encoding: zstd", NULL};
        request(&x, srv, "POST", "/v1/score", zm, mpzb, mpz, HU_REQUEST_TIMEOUT);
        doc = check_json_200("multipart, Content-Encoding: zstd", &x);
        check_num("multipart, Content-Encoding: zstd", doc, "losses.combo.value", seed_expected(),
                  1e-6);
        json_decref(doc);
        hu_xfer_cleanup(&x);
    }
    free(mpb);
    free(mpzb);

    /* the array errors name the array: a wrong declared size, a truncated frame */
    static const float four[4] = {0.5f, 0.6f, 0.2f, 0.1f};
    size_t fl = 0;
    unsigned char *fz = zstd_pack(four, sizeof four, true, &fl);
    if (fz) {
        zstd_raw_problem(srv, "zstd raw, shape of 6 floats", "[1, 2, 3]", fz, fl, 400,
                         "prediction: expected 24 bytes, the zstd frame declares 16");
        zstd_raw_problem(srv, "zstd raw, truncated", "[1, 2, 2]", fz, fl - 1, 400,
                         "prediction.data: zstd frame is truncated");
        free(fz);
    }
    /* bombs: 64 MiB of zeros, a frame of a few KiB, for 16 bytes of array */
    size_t big = (size_t)64 << 20, kl = 0, ul = 0;
    unsigned char *zeros = calloc(1, big);
    unsigned char *bk = zeros ? zstd_pack(zeros, big, true, &kl) : NULL;
    unsigned char *bu = zeros ? zstd_pack(zeros, big, false, &ul) : NULL;
    free(zeros);
    CHECK(bk && bu && kl < 16384 && ul < 16384);
    if (bk && bu) {
        zstd_raw_problem(srv, "zstd bomb, size declared", "[1, 2, 2]", bk, kl, 400,
                         "prediction: expected 16 bytes, the zstd frame declares 67108864");
        zstd_raw_problem(srv, "zstd bomb, no size", "[1, 2, 2]", bu, ul, 400,
                         "prediction: expected 16 bytes, got at least 17 after inflating "
                         "(stopped there)");
    }
    free(bk);
    free(bu);

    /* the catalog lists zstd; an unknown coding's 415 names it */
    request(&x, srv, "GET", "/v1/catalog", NULL, NULL, 0, HU_REQUEST_TIMEOUT);
    doc = check_json_200("catalog", &x);
    json_t *comp = json_object_get(doc, "compression");
    size_t i;
    json_t *e;
    bool listed = false;
    json_array_foreach(comp, i, e)
    {
        listed |= strcmp(json_string_value(e), "zstd") == 0;
    }
    CHECK(listed);
    json_decref(doc);
    hu_xfer_cleanup(&x);
    const char *const br[] = {"Content-Type: application/json", "Content-Encoding: br", NULL};
    request(&x, srv, "POST", "/v1/score", br, seed_body, strlen(seed_body), HU_REQUEST_TIMEOUT);
    check_problem_has("Content-Encoding: br", &x, 415, "use gzip, deflate, zstd or identity");
    CHECK(hu_xfer_header(&x, "Accept-Encoding", h, sizeof h) && strstr(h, "zstd"));
    hu_xfer_cleanup(&x);
out:
    free(f.pred_gz);
    free(z);
    free(s);
    free(b);
}

/* A large answer comes back as zstd when Accept-Encoding names it with a q at least gzip's. */
static void test_zstd_answer(const struct hu_server *srv)
{
    /* 300 one-pixel images, logit 1 on target 1: every per-image Dice is 1 */
    const int n = 300;
    struct hu_buf b = {0};
    static const char head[] =
        "{\"prediction\": {\"format\": \"list\", \"shape\": [300, 1, 1], \"data\": [";
    static const char mid[] =
        "]}, \"target\": {\"format\": \"list\", \"shape\": [300, 1, 1], \"data\": [";
    hu_buf_append(&b, head, strlen(head));
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < n; i++) {
            hu_buf_append(&b, i ? ",1" : "1", i ? 2 : 1);
        }
        hu_buf_append(&b, k ? "]}}" : mid, k ? 3 : strlen(mid));
    }
    static const struct {
        const char *ae, *want; /* Accept-Encoding, the Content-Encoding of the answer */
    } cases[] = {
        {"Accept-Encoding: gzip, deflate, br, zstd", "zstd"}, /* curl --compressed: a tie */
        {"Accept-Encoding: zstd", "zstd"},
        {"Accept-Encoding: gzip;q=1, zstd;q=0.5", "gzip"},
        {"Accept-Encoding: zstd;q=0, gzip", "gzip"},
        {"Accept-Encoding: *", "gzip"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const char *const hdrs[] = {"Content-Type: application/json", cases[c].ae, NULL};
        struct hu_xfer x;
        char h[128];
        request(&x, srv, "POST", "/v1/score", hdrs, b.data, b.len, HU_REQUEST_TIMEOUT);
        CHECK_STATUS(&x, 200);
        bool ok =
            hu_xfer_header(&x, "Content-Encoding", h, sizeof h) && strcmp(h, cases[c].want) == 0;
        CHECK(ok);
        if (!ok) {
            fprintf(stderr, "    %s: Content-Encoding '%s', want %s\n", cases[c].ae, h,
                    cases[c].want);
        }
        CHECK(hu_xfer_header(&x, "Vary", h, sizeof h) && strstr(h, "Accept-Encoding"));
        if (strcmp(cases[c].want, "zstd") == 0 && x.body.data) {
            /* libzstd's own decoder: the answer is the JSON of 300 images */
            unsigned long long size = ZSTD_getFrameContentSize(x.body.data, x.body.len);
            CHECK(size != ZSTD_CONTENTSIZE_UNKNOWN && size != ZSTD_CONTENTSIZE_ERROR &&
                  size > x.body.len && size < (1u << 20));
            char *plain = size < (1u << 20) ? malloc((size_t)size) : NULL;
            size_t got = plain ? ZSTD_decompress(plain, (size_t)size, x.body.data, x.body.len) : 0;
            json_t *doc = plain && !ZSTD_isError(got) ? json_loadb(plain, got, 0, NULL) : NULL;
            CHECK(doc != NULL);
            CHECK_INT(json_integer_value(jget(doc, "images")), n);
            check_num("zstd answer", doc, "metrics.dice.mean", 1.0, 0);
            json_decref(doc);
            free(plain);
        }
        hu_xfer_cleanup(&x);
    }
    free(b.data);
}

/* ---- the HTML report ------------------------------------------------------------------------ */

/* Four 2 x 2 binary images, labels; by hand (2TP / (2TP + FP + FN) per image):
 *   0: pred 1100 target 1000 -> TP 1 FP 1 FN 0: 2/3     1: pred 0000 target 1000 -> FN 1: 0
 *   2: pred 1111 target 1111 -> TP 4: 1                 3: pred 1000 target 1100 -> TP 1 FN 1: 2/3
 * dice mean (2/3 + 0 + 1 + 2/3) / 4 = 7/12; global TP 6, FP 1, FN 2: 12 / 15 = 0.8 exactly as
 * a double's shortest form; iou global 6 / 9 = 2/3. The worst by dice: 1, then 0 and 3. */
static const char report_body[] =
    "{\"prediction\": {\"format\": \"list\", \"shape\": [4, 2, 2], \"data\": [1,1,0,0, 0,0,0,0, "
    "1,1,1,1, 1,0,0,0]}, \"target\": {\"format\": \"list\", \"shape\": [4, 2, 2], \"data\": "
    "[1,0,0,0, 1,0,0,0, 1,1,1,1, 1,1,0,0]}, \"prediction_type\": \"labels\", "
    "\"losses\": [\"dice\"], \"metrics\": [\"dice\", \"iou\", \"confusion\"], \"report_worst\": 2}";

/* The rows of <table id="aggregate"> in page: CHECKs that each data-value is the number (or
 * null) at its data-key in the JSON answer doc. Returns how many rows it read. */
static int check_aggregate(const char *page, const json_t *doc)
{
    const char *t = strstr(page, "<table id=\"aggregate\">");
    const char *end = t ? strstr(t, "</table>") : NULL;
    int rows = 0;
    for (const char *r = t; r && end && (r = strstr(r, "<tr data-key=\"")) && r < end; r++) {
        char key[256], val[64];
        const char *k = r + strlen("<tr data-key=\"");
        size_t kn = strcspn(k, "\"");
        const char *v = strstr(r, "data-value=\"");
        if (kn >= sizeof key || !v) {
            CHECK(false);
            break;
        }
        v += strlen("data-value=\"");
        size_t vn = strcspn(v, "\"");
        snprintf(key, sizeof key, "%.*s", (int)kn, k);
        snprintf(val, sizeof val, "%.*s", (int)(vn < sizeof val ? vn : sizeof val - 1), v);
        const json_t *j = jget(doc, key);
        bool same = strcmp(val, "null") == 0
                        ? json_is_null(j)
                        : json_is_number(j) && strtod(val, NULL) == json_number_value(j);
        CHECK(same);
        if (!same) {
            fprintf(stderr, "    aggregate row %s: data-value %s, JSON answer %s\n", key, val,
                    j ? (json_is_number(j) ? "a different number" : "not a number") : "absent");
        }
        rows++;
    }
    return rows;
}

/* The value of attribute name in the first tag of page at or after from (into out). */
static bool html_attr(const char *from, const char *name, char *out, size_t len)
{
    char pat[64];
    snprintf(pat, sizeof pat, " %s=\"", name);
    const char *a = from ? strstr(from, pat) : NULL;
    if (!a || a > strchr(from, '>')) {
        return false;
    }
    a += strlen(pat);
    snprintf(out, len, "%.*s", (int)strcspn(a, "\""), a);
    return true;
}

static void test_html_report(const struct hu_server *srv)
{
    static const char browser[] =
        "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    const char *const html_hdrs[] = {"Content-Type: application/json", browser, NULL};
    struct hu_xfer x, j;
    char h[256];
    request(&x, srv, "POST", "/v1/score", html_hdrs, report_body, strlen(report_body),
            HU_REQUEST_TIMEOUT);
    CHECK_STATUS(&x, 200);
    CHECK(strcmp(x.ctype, "text/html; charset=utf-8") == 0);
    CHECK(hu_xfer_header(&x, "Vary", h, sizeof h) && strstr(h, "Accept,") && strstr(h, "Encoding"));
    const char *page = x.body.data ? x.body.data : "";
    CHECK_PREFIX(page, "<!DOCTYPE html>");
    CHECK(strstr(page, "http://") == NULL && strstr(page, "https://") == NULL);
    /* the same request as JSON: every aggregate row's value is the answer's */
    request(&j, srv, "POST", "/v1/score", json_ct, report_body, strlen(report_body),
            HU_REQUEST_TIMEOUT);
    json_t *doc = check_json_200("report as JSON", &j);
    /* losses.dice.value, dice mean/global/undefined, iou mean/global/undefined, 4 counts */
    CHECK_INT(check_aggregate(page, doc), 11);
    json_decref(doc);
    hu_xfer_cleanup(&j);
    /* the hand values, as the page writes them */
    CHECK_HAS(page, "<tr data-key=\"metrics.dice.global\"><th>metrics.dice.global</th><td "
                    "class=\"num value\" data-value=\"0.8\">0.8</td></tr>");
    CHECK_HAS(page, "<tr data-key=\"metrics.confusion.global.fn\"><th>metrics.confusion.global.fn"
                    "</th><td class=\"num value\" data-value=\"2\">2</td></tr>");
    const char *mean = strstr(page, "<tr data-key=\"metrics.dice.mean\">");
    char v[64];
    CHECK(mean && html_attr(strstr(mean, "<td"), "data-value", v, sizeof v) &&
          fabs(strtod(v, NULL) - 7.0 / 12.0) < 1e-15);
    CHECK_HAS(page, "<svg class=\"dist\" data-key=\"metrics.dice\"");
    CHECK_HAS(page, "<circle data-index=\"1\" data-value=\"0\"");
    /* report_worst 2: images 1 and 0, in that order */
    const char *f1 = strstr(page, "<figure class=\"thumb\"");
    const char *f2 = f1 ? strstr(f1 + 1, "<figure class=\"thumb\"") : NULL;
    CHECK(f1 && html_attr(f1, "data-index", v, sizeof v) && strcmp(v, "1") == 0);
    CHECK(f2 && html_attr(f2, "data-index", v, sizeof v) && strcmp(v, "0") == 0);
    CHECK(f2 && !strstr(f2 + 1, "<figure class=\"thumb\""));
    CHECK_HAS(page, "src=\"data:image/png;base64,iVBORw0KGgo"); /* the PNG signature */
    size_t plain_len = x.body.len;
    hu_xfer_cleanup(&x);

    /* gzipped as a JSON answer is when Accept-Encoding allows it */
    const char *const gz[] = {"Content-Type: application/json", browser, "Accept-Encoding: gzip",
                              NULL};
    request(&x, srv, "POST", "/v1/score", gz, report_body, strlen(report_body), HU_REQUEST_TIMEOUT);
    CHECK_STATUS(&x, 200);
    CHECK(hu_xfer_header(&x, "Content-Encoding", h, sizeof h) && strstr(h, "gzip"));
    size_t n = 0;
    unsigned char *unz = gunzip(x.body.data, x.body.len, (size_t)1 << 22, &n);
    CHECK(unz && n > x.body.len && n + 64 > plain_len && memcmp(unz, "<!DOCTYPE html>", 15) == 0);
    free(unz);
    hu_xfer_cleanup(&x);

    /* JSON wins a tie, and when asked for; no Accept is JSON */
    static const char *const json_accepts[] = {"Accept: application/json",
                                               "Accept: text/html;q=0.5, application/json",
                                               "Accept: application/json, text/html", NULL};
    for (int i = 0; i < 4; i++) {
        /* i = 3: json_accepts[3] is NULL, a request without Accept */
        const char *const hd[] = {"Content-Type: application/json", json_accepts[i], NULL};
        request(&x, srv, "POST", "/v1/score", hd, report_body, strlen(report_body),
                HU_REQUEST_TIMEOUT);
        CHECK_STATUS(&x, 200);
        CHECK(hu_ctype_is(x.ctype, "application/json"));
        hu_xfer_cleanup(&x);
    }

    /* a bad report_worst is a 422 naming it, as problem+json also for a browser */
    static const char bad[] = "{\"prediction\": [[1]], \"target\": [[1]], \"report_worst\": 65}";
    request(&x, srv, "POST", "/v1/score", html_hdrs, bad, strlen(bad), HU_REQUEST_TIMEOUT);
    check_problem("report_worst 65", &x, 422);
    CHECK(x.body.data && strstr(x.body.data, "report_worst"));
    hu_xfer_cleanup(&x);
    request(&x, srv, "POST", "/v1/score", json_ct, bad, strlen(bad), HU_REQUEST_TIMEOUT);
    check_problem("report_worst 65 (JSON)", &x, 422);
    hu_xfer_cleanup(&x);
}

/* ---- 9. concurrency sanity ---------------------------------------------------------------- */

static void test_concurrent_small(const struct hu_server *srv)
{
    enum { N = 32 };
    struct hu_xfer xs[N];
    struct hu_xfer *ptrs[N];
    char url[128];
    url_of(srv, "/v1/score", url, sizeof url);
    int ready = 0;
    for (int i = 0; i < N; i++) {
        if (hu_xfer_setup(&xs[i], "POST", url, json_ct, seed_body, strlen(seed_body),
                          HU_REQUEST_TIMEOUT) == 0) {
            ptrs[ready++] = &xs[i];
        } else {
            hu_xfer_cleanup(&xs[i]);
        }
    }
    CHECK_INT(ready, N);
    CHECK(hu_multi_run(ptrs, ready, NULL, NULL) == 0);
    int good = 0;
    for (int i = 0; i < ready; i++) {
        json_t *doc = hu_xfer_json(ptrs[i]);
        double v = jnum(doc, "losses.combo.value");
        if (ptrs[i]->status == 200 && fabs(v - seed_expected()) <= 1e-6) {
            good++;
        } else {
            show("concurrent seed", ptrs[i]);
        }
        json_decref(doc);
        hu_xfer_cleanup(ptrs[i]);
    }
    CHECK_INT(good, N);
}

/* ---- 6. body limit -------------------------------------------------------------------------- */

static void test_body_limit(void)
{
    static const char *const args[] = {"--max-body-mb", "1", NULL};
    struct hu_server srv;
    if (start_server(&srv, args, "body limit") != 0) {
        return;
    }
    /* 2 MiB of syntactically plausible JSON: sent with a Content-Length over the 1 MiB cap */
    const size_t big = (size_t)2 << 20;
    char *body = malloc(big + 1);
    CHECK(body != NULL);
    if (body) {
        static const char head[] = "{\"prediction\": [0";
        static const char tail[] = "], \"target\": [0]}";
        memcpy(body, head, sizeof head - 1);
        size_t i = sizeof head - 1;
        while (i + sizeof tail - 1 + 2 <= big) {
            body[i++] = ',';
            body[i++] = '0';
        }
        while (i + sizeof tail - 1 < big) {
            body[i++] = ' ';
        }
        memcpy(body + i, tail, sizeof tail);

        /* as curl sends big bodies: Expect: 100-continue, so the server can refuse early */
        const char *const expect[] = {"Content-Type: application/json", "Expect: 100-continue",
                                      NULL};
        struct hu_xfer x;
        request(&x, &srv, "POST", "/v1/score", expect, body, big, HU_REQUEST_TIMEOUT);
        check_problem("2 MiB body, Expect: 100-continue", &x, 413);
        hu_xfer_cleanup(&x);

        /* without Expect the whole body is on its way; an answer, if the client could read one
         * before the server closed, must still be the 413 */
        request(&x, &srv, "POST", "/v1/score", json_ct, body, big, HU_REQUEST_TIMEOUT);
        if (x.rc == CURLE_OK) {
            check_problem("2 MiB body, no Expect", &x, 413);
        } else {
            CHECK(x.rc == CURLE_SEND_ERROR || x.rc == CURLE_RECV_ERROR);
            fprintf(stderr, "    note: 2 MiB body without Expect: %s (connection closed early)\n",
                    x.errbuf);
        }
        hu_xfer_cleanup(&x);

        /* a gzip body of a few KiB that inflates past the cap is over the limit as well */
        size_t zlen = 0;
        unsigned char *z = zcompress(body, big, 31, &zlen);
        CHECK(z != NULL);
        if (z) {
            const char *const gz[] = {"Content-Type: application/json", "Content-Encoding: gzip",
                                      NULL};
            request(&x, &srv, "POST", "/v1/score", gz, z, zlen, HU_REQUEST_TIMEOUT);
            check_problem("gzip body inflating to 2 MiB", &x, 413);
            hu_xfer_cleanup(&x);
            free(z);
        }
        /* zstd bodies inflating to 2 MiB: refused at the frame header when it declares the
         * size, else after 1 MiB + 1 byte; and a header declaring 1 TiB (RFC 8878 3.1.1.1: FHD
         * 0xe0 = single segment, 8-byte Frame_Content_Size 2^40) */
        const char *const zs[] = {"Content-Type: application/json", "Content-Encoding: zstd", NULL};
        for (int sized = 0; sized < 2; sized++) {
            z = zstd_pack(body, big, sized, &zlen);
            CHECK(z != NULL);
            request(&x, &srv, "POST", "/v1/score", zs, z, z ? zlen : 0, HU_REQUEST_TIMEOUT);
            check_problem_has(sized ? "zstd body declaring 2 MiB" : "zstd body inflating to 2 MiB",
                              &x, 413,
                              sized ? "(the zstd frame declares 2097152)"
                                    : "request body (Content-Encoding: zstd) inflates to more "
                                      "than 1048576 bytes");
            hu_xfer_cleanup(&x);
            free(z);
        }
        static const unsigned char tib[] = {0x28, 0xb5, 0x2f, 0xfd, 0xe0, 0, 0, 0, 0, 0, 1, 0, 0};
        request(&x, &srv, "POST", "/v1/score", zs, tib, sizeof tib, HU_REQUEST_TIMEOUT);
        check_problem_has("zstd header declaring 1 TiB", &x, 413,
                          "the zstd frame declares 1099511627776");
        hu_xfer_cleanup(&x);
        free(body);
    }
    test_multipart_limit(&srv);
    struct hu_xfer x;
    request(&x, &srv, "GET", "/healthz", NULL, NULL, 0, HU_REQUEST_TIMEOUT);
    CHECK_STATUS(&x, 200);
    hu_xfer_cleanup(&x);
    stop_server(&srv, "body limit");
}

/* ---- 7. overload ------------------------------------------------------------------------- */

/* While the burst runs: GET /readyz every 50 ms until it has said 503 (the queue is full). */
struct readyz_state {
    const struct hu_server *srv;
    double last;
    int polls, not_ready;
};

static void readyz_tick(void *arg)
{
    struct readyz_state *r = arg;
    if (r->not_ready > 0 || hu_now() - r->last < 0.05) {
        return;
    }
    r->last = hu_now();
    struct hu_xfer x;
    request(&x, r->srv, "GET", "/readyz", NULL, NULL, 0, HU_REQUEST_TIMEOUT);
    r->polls++;
    if (x.status == 503) {
        r->not_ready++;
        check_problem("readyz while saturated", &x, 503);
        CHECK_HAS(x.body.data, "queue is full");
    }
    hu_xfer_cleanup(&x);
}

/* A small body with long work: surface metrics of 4 masks of 2048x2048 given as Kaggle RLE
 * (about 0.3 s on one worker here, far longer under valgrind). */
static const char slow_body[] =
    "{\"prediction\": {\"format\": \"rle\", \"shape\": [4, 2048, 2048], \"data\": [\"1 1000 "
    "2000000 3000\", \"5 100 3000000 7000\", \"9 9\", \"70000 5000\"]}, \"prediction_type\": "
    "\"labels\", \"target\": {\"format\": \"rle\", \"shape\": [4, 2048, 2048], \"data\": [\"1 "
    "1000 2000000 3000 4000000 500\", \"50 1000\", \"9 20\", \"60000 9000\"]}, \"metrics\": "
    "[\"hausdorff\", {\"name\": \"hausdorff\", \"percentile\": 95, \"as\": \"hd95\"}, "
    "\"assd\", \"nsd\"]}";

static double metric(const char *text, const char *series);

/* Runs the second request of the saturation check (polling /readyz meanwhile) from the first
 * one's loop, once the first one's job is running: the second then waits in the queue. */
struct pair_state {
    struct hu_xfer *first, *second;
    struct readyz_state rz;
    bool started;
};

static void pair_tick(void *arg)
{
    struct pair_state *p = arg;
    if (p->started || p->first->ul_total == 0 || p->first->ul_now < p->first->ul_total) {
        return;
    }
    struct hu_xfer x;
    request(&x, p->rz.srv, "GET", "/metrics", NULL, NULL, 0, HU_REQUEST_TIMEOUT);
    bool running =
        x.status == 200 && x.body.data && metric(x.body.data, "segloss_workers_busy") == 1;
    hu_xfer_cleanup(&x);
    if (!running) {
        return;
    }
    p->started = true;
    struct hu_xfer *second[1] = {p->second};
    CHECK(hu_multi_run(second, 1, readyz_tick, &p->rz) == 0);
}

static void test_overload(const char *heavy, size_t heavy_len)
{
    enum { N = 12 };
    static const char *const args[] = {"--threads",     "1",  "--queue", "1",
                                       "--max-body-mb", "64", NULL};
    struct hu_server srv;
    if (start_server(&srv, args, "overload") != 0) {
        return;
    }
    struct hu_xfer xs[N];
    struct hu_xfer *ptrs[N];
    char url[128];
    url_of(&srv, "/v1/score", url, sizeof url);
    int ready = 0;
    for (int i = 0; i < N; i++) {
        if (hu_xfer_setup(&xs[i], "POST", url, json_ct, heavy, heavy_len, HEAVY_TIMEOUT) == 0) {
            ptrs[ready++] = &xs[i];
        } else {
            hu_xfer_cleanup(&xs[i]);
        }
    }
    CHECK_INT(ready, N);

    /* Saturated: a first slow request, and once it is computing a second one while /readyz is
     * polled: the second waits in the queue (which holds one) until the first is done. */
    struct hu_xfer pair[2];
    bool pair_ok = true;
    for (int i = 0; i < 2; i++) {
        pair_ok = hu_xfer_setup(&pair[i], "POST", url, json_ct, slow_body, sizeof slow_body - 1,
                                HEAVY_TIMEOUT) == 0 &&
                  pair_ok;
    }
    CHECK(pair_ok);
    struct pair_state ps = {.first = &pair[0], .second = &pair[1], .rz = {.srv = &srv}};
    struct hu_xfer *one[1] = {&pair[0]};
    if (pair_ok) {
        CHECK(hu_multi_run(one, 1, pair_tick, &ps) == 0);
        fprintf(stderr, "    overload: /readyz said 503 after %d polls\n", ps.rz.polls);
        CHECK(ps.started);
        CHECK_INT(ps.rz.not_ready, 1);
        CHECK_STATUS(&pair[0], 200); /* accepted work completes */
        CHECK_STATUS(&pair[1], 200);
    }
    hu_xfer_cleanup(&pair[0]);
    hu_xfer_cleanup(&pair[1]);

    double t0 = hu_now();
    CHECK(hu_multi_run(ptrs, ready, NULL, NULL) == 0);
    int n200 = 0, n503 = 0, n503_retry = 0, other = 0;
    double first = NAN;
    bool same = true;
    for (int i = 0; i < ready; i++) {
        struct hu_xfer *x = ptrs[i];
        char ra[64];
        if (x->status == 200) {
            n200++;
            json_t *doc = hu_xfer_json(x);
            double v = jnum(doc, "losses.lovasz_hinge.value");
            if (isnan(first)) {
                first = v;
            }
            /* the same input gives the same answer, under load or not */
            if (!(isfinite(v) && fabs(v - first) <= 1e-9 * fabs(first))) {
                same = false;
                show("overload 200", x);
            }
            json_decref(doc);
        } else if (x->status == 503) {
            n503++;
            check_problem("overload 503", x, 503);
            if (hu_xfer_header(x, "Retry-After", ra, sizeof ra) && ra[0]) {
                n503_retry++;
            }
        } else {
            other++;
            show("overload: neither 200 nor 503", x);
        }
        hu_xfer_cleanup(x);
    }
    fprintf(stderr, "    overload: %d x 200, %d x 503 (%d with Retry-After), %d other, %.2f s\n",
            n200, n503, n503_retry, other, hu_now() - t0);
    CHECK_INT(other, 0);
    CHECK(n200 >= 1);
    CHECK(n503_retry >= 1);
    CHECK(same);

    /* once the burst is over the queue is empty again: ready */
    struct hu_xfer x;
    request(&x, &srv, "GET", "/readyz", NULL, NULL, 0, HU_REQUEST_TIMEOUT);
    CHECK_STATUS(&x, 200);
    hu_xfer_cleanup(&x);
    stop_server(&srv, "overload");
}

/* ---- 8. graceful drain ------------------------------------------------------------------ */

struct drain_state {
    struct hu_xfer *x;
    struct hu_server *srv;
    double uploaded_at; /* when the whole body had been sent, 0 before */
    bool term_sent;
    bool in_flight_at_term; /* the answer had not arrived when SIGTERM went out */
};

/* Called by the multi loop: SIGTERM ~100 ms after the body has been fully sent. */
static void drain_tick(void *arg)
{
    struct drain_state *d = arg;
    if (d->term_sent) {
        return;
    }
    if (d->uploaded_at == 0 && d->x->ul_total > 0 && d->x->ul_now >= d->x->ul_total) {
        d->uploaded_at = hu_now();
    }
    if (d->uploaded_at > 0 && hu_now() - d->uploaded_at >= 0.1) {
        d->in_flight_at_term = !d->x->done;
        kill(d->srv->pid, SIGTERM);
        d->term_sent = true;
    }
}

/* True when a TCP connect to 127.0.0.1:port is refused. */
static bool port_refuses(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return false;
    }
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = connect(fd, (struct sockaddr *)&a, sizeof a);
    int err = errno;
    close(fd);
    return rc != 0 && err == ECONNREFUSED;
}

static void test_drain(const char *heavy, size_t heavy_len)
{
    static const char *const args[] = {"--threads", "1", "--max-body-mb", "64", "--drain-seconds",
                                       "300",       NULL};
    struct hu_server srv;
    if (start_server(&srv, args, "drain") != 0) {
        return;
    }
    struct hu_xfer x;
    char url[128];
    url_of(&srv, "/v1/score", url, sizeof url);
    if (hu_xfer_setup(&x, "POST", url, json_ct, heavy, heavy_len, HEAVY_TIMEOUT) != 0) {
        CHECK(!"curl setup");
        hu_xfer_cleanup(&x);
        hu_server_kill(&srv);
        return;
    }
    struct drain_state d = {&x, &srv, 0, false, false};
    struct hu_xfer *one[1] = {&x};
    double t0 = hu_now();
    CHECK(hu_multi_run(one, 1, drain_tick, &d) == 0);
    fprintf(stderr, "    drain: body sent after %.2f s, answer after %.2f s\n",
            d.uploaded_at > 0 ? d.uploaded_at - t0 : -1.0, hu_now() - t0);
    CHECK(d.term_sent);
    /* the point of the test: SIGTERM arrived while the request was still being computed */
    CHECK(d.in_flight_at_term);
    json_t *doc = check_json_200("drained request", &x);
    CHECK(isfinite(jnum(doc, "losses.lovasz_hinge.value")));
    json_decref(doc);
    hu_xfer_cleanup(&x);
    if (!d.term_sent) {
        kill(srv.pid, SIGTERM);
    }
    bool exited = hu_server_wait(&srv, STOP_TIMEOUT);
    CHECK(exited);
    if (exited) {
        bool clean = WIFEXITED(srv.status) && WEXITSTATUS(srv.status) == 0;
        CHECK(clean);
        if (!clean) {
            char desc[128];
            hu_describe_status(srv.status, desc, sizeof desc);
            fprintf(stderr, "    drain: seglossd %s, want exit status 0\n", desc);
        }
        CHECK(port_refuses(srv.port));
    } else {
        fprintf(stderr, "    drain: seglossd still running %.0f s after SIGTERM\n", STOP_TIMEOUT);
    }
    hu_server_kill(&srv);
}

/* ---- 9. operations: /metrics, request ids, access log, connection limits ---------------- */

/* Whether every line of a /metrics answer is empty, a comment, or `name{labels} value` /
 * `name value` (Prometheus text format 0.0.4). Names the first bad line in why. */
static bool metrics_parse_ok(const char *text, char *why, size_t whylen)
{
    const char *line = text;
    while (line && *line) {
        size_t len = strcspn(line, "\n");
        char buf[512];
        snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf - 1 ? len : sizeof buf - 1), line);
        line += len + (line[len] == '\n');
        if (buf[0] == '\0' || buf[0] == '#') {
            continue;
        }
        const char *p = buf;
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' || *p == ':';
        while (ok && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
                      *p == ':' || (*p >= '0' && *p <= '9'))) {
            p++;
        }
        if (ok && *p == '{') {
            p++;
            /* label="value" pairs, comma-separated; values here never hold quotes */
            while (ok && *p != '}') {
                size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_");
                ok = n > 0 && p[n] == '=' && p[n + 1] == '"';
                if (ok) {
                    const char *q = strchr(p + n + 2, '"');
                    ok = q != NULL;
                    p = ok ? q + 1 : p;
                    if (ok && *p == ',') {
                        p++;
                    }
                }
            }
            p += ok;
        }
        char *end = NULL;
        ok = ok && *p == ' ';
        if (ok) {
            strtod(p + 1, &end);
            ok = end != p + 1 && *end == '\0';
        }
        if (!ok) {
            snprintf(why, whylen, "bad line \"%s\"", buf);
            return false;
        }
    }
    return true;
}

/* The value of the series `series` (name with its labels, exactly as printed), or NaN. */
static double metric(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ') {
            return strtod(p + n + 1, NULL);
        }
    }
    return NAN;
}

/* GET /metrics, CHECKed to be 200 text/plain; version=0.0.4 and to parse. Returns the body
 * (malloc'd, caller frees) or NULL. */
static char *metrics_get(const struct hu_server *srv, const char *what)
{
    struct hu_xfer x;
    request(&x, srv, "GET", "/metrics", NULL, NULL, 0, HU_REQUEST_TIMEOUT);
    CHECK_STATUS(&x, 200);
    CHECK(hu_ctype_is(x.ctype, "text/plain"));
    CHECK(strstr(x.ctype, "version=0.0.4") != NULL);
    char *text = x.status == 200 && x.body.data ? strdup(x.body.data) : NULL;
    hu_xfer_cleanup(&x);
    CHECK(text != NULL);
    if (text) {
        char why[600] = "";
        bool ok = metrics_parse_ok(text, why, sizeof why);
        CHECK(ok);
        if (!ok) {
            fprintf(stderr, "    %s: /metrics: %s\n", what, why);
        }
    }
    return text;
}

/* Reads /metrics until series equals want (the server notices closed connections and finished
 * requests a moment after the client, much later under valgrind), for at most 15 s; a refused
 * /metrics request (over a connection limit) is retried. Returns the last value seen. */
static double wait_metric(const struct hu_server *srv, const char *series, double want)
{
    double v = NAN;
    for (int tries = 0; tries < 75; tries++) {
        struct hu_xfer x;
        request(&x, srv, "GET", "/metrics", NULL, NULL, 0, HU_REQUEST_TIMEOUT);
        if (x.status == 200 && x.body.data) {
            v = metric(x.body.data, series);
        }
        hu_xfer_cleanup(&x);
        if (v == want) {
            break;
        }
        hu_sleep_ms(200);
    }
    return v;
}

#define SCORE_200 "segloss_requests_total{route=\"/v1/score\",status=\"200\"}"
#define SCORE_COUNT "segloss_request_duration_seconds_count{route=\"/v1/score\"}"

static void test_metrics(const struct hu_server *srv)
{
    char *m0 = metrics_get(srv, "metrics before");
    if (!m0) {
        return;
    }
    size_t m0_len = strlen(m0);
    size_t sent = 0;
    for (int i = 0; i < 3; i++) {
        struct hu_xfer x;
        request(&x, srv, "POST", "/v1/score", json_ct, seed_body, sizeof seed_body - 1,
                HU_REQUEST_TIMEOUT);
        CHECK_STATUS(&x, 200);
        sent += x.body.len;
        hu_xfer_cleanup(&x);
    }
    /* A request is counted when the server has finished with its connection, and a worker is
     * idle again when its job has returned, both a moment after the client has the whole answer
     * (much longer under valgrind): read /metrics again until the three requests show and no
     * worker is busy, for at most 30 s. */
    double before200 = metric(m0, SCORE_200), before_count = metric(m0, SCORE_COUNT);
    before200 = isnan(before200) ? 0 : before200;
    before_count = isnan(before_count) ? 0 : before_count;
    size_t extra = m0_len; /* bytes of the /metrics answers read before m1 */
    char *m1 = NULL;
    for (int tries = 0; tries < 600; tries++) {
        m1 = metrics_get(srv, "metrics after");
        if (!m1 || (metric(m1, SCORE_200) - before200 >= 3 &&
                    metric(m1, SCORE_COUNT) - before_count >= 3 &&
                    metric(m1, "segloss_workers_busy") == 0)) {
            break;
        }
        extra += strlen(m1);
        free(m1);
        m1 = NULL;
        usleep(50000);
    }
    if (m1) {
        CHECK_CLOSE(metric(m1, SCORE_200) - before200, 3, 0, 0);
        CHECK_CLOSE(metric(m1, SCORE_COUNT) - before_count, 3, 0, 0);
        /* three seed bodies in; out: three answers and some of the answers before m1 */
        CHECK_CLOSE(metric(m1, "segloss_bytes_received_total") -
                        metric(m0, "segloss_bytes_received_total"),
                    3.0 * (double)(sizeof seed_body - 1), 0, 0);
        double out =
            metric(m1, "segloss_bytes_sent_total") - metric(m0, "segloss_bytes_sent_total");
        /* the server start's /healthz answer ({"status":"ok"}, 15 bytes) may be counted late */
        CHECK(out >= (double)sent && out <= (double)(sent + extra + 15));
        /* the /metrics request itself is in flight; nothing queued or running */
        CHECK(metric(m1, "segloss_inflight_requests") >= 1);
        CHECK_CLOSE(metric(m1, "segloss_queue_depth"), 0, 0, 0);
        CHECK_CLOSE(metric(m1, "segloss_workers_busy"), 0, 0, 0);
        CHECK(!isnan(metric(m1, "segloss_rejections_total{reason=\"queue_full\"}")));
        CHECK(!isnan(metric(
            m1, "segloss_request_duration_seconds_bucket{route=\"/v1/score\",le=\"+Inf\"}")));
    }
    free(m0);
    free(m1);
}

/* The counters on a server of their own, so that no earlier test's request is counted late. */
static void test_metrics_fresh(void)
{
    static const char *const args[] = {NULL};
    struct hu_server srv;
    if (start_server(&srv, args, "metrics") != 0) {
        return;
    }
    test_metrics(&srv);
    stop_server(&srv, "metrics");
}

static bool is_hex16(const char *s)
{
    return strlen(s) == 16 && strspn(s, "0123456789abcdef") == 16;
}

static void test_request_id(const struct hu_server *srv)
{
    struct hu_xfer x;
    char id[256], id2[256];
    const char *const given[] = {"X-Request-ID: e2e-given-42", NULL};
    request(&x, srv, "GET", "/healthz", given, NULL, 0, HU_REQUEST_TIMEOUT);
    CHECK(hu_xfer_header(&x, "X-Request-ID", id, sizeof id));
    CHECK(strcmp(id, "e2e-given-42") == 0);
    hu_xfer_cleanup(&x);

    /* generated: 16 hex digits, different per request, also on errors */
    request(&x, srv, "GET", "/healthz", NULL, NULL, 0, HU_REQUEST_TIMEOUT);
    CHECK(hu_xfer_header(&x, "X-Request-ID", id, sizeof id));
    CHECK(is_hex16(id));
    hu_xfer_cleanup(&x);
    request(&x, srv, "GET", "/no/such/path", NULL, NULL, 0, HU_REQUEST_TIMEOUT);
    CHECK_STATUS(&x, 404);
    CHECK(hu_xfer_header(&x, "X-Request-ID", id2, sizeof id2));
    CHECK(is_hex16(id2));
    CHECK(strcmp(id, id2) != 0);
    hu_xfer_cleanup(&x);

    /* sanitized: spaces dropped, at most 128 characters */
    const char *const spaced[] = {"X-Request-ID: a b\tc", NULL};
    request(&x, srv, "POST", "/v1/score", spaced, "{", 1, HU_REQUEST_TIMEOUT);
    CHECK(hu_xfer_header(&x, "X-Request-ID", id, sizeof id));
    CHECK(strcmp(id, "abc") == 0);
    hu_xfer_cleanup(&x);
    char longhdr[300];
    int n = snprintf(longhdr, sizeof longhdr, "X-Request-ID: ");
    memset(longhdr + n, 'z', 200);
    longhdr[n + 200] = '\0';
    const char *const longh[] = {longhdr, NULL};
    request(&x, srv, "GET", "/healthz", longh, NULL, 0, HU_REQUEST_TIMEOUT);
    CHECK(hu_xfer_header(&x, "X-Request-ID", id, sizeof id));
    CHECK_INT(strlen(id), 128);
    CHECK(strspn(id, "z") == 128);
    hu_xfer_cleanup(&x);
}

/* A connected TCP socket to 127.0.0.1:port with a receive timeout, or -1. */
static int raw_connect(int port, int timeout_s)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return -1;
    }
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {timeout_s, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends text on a new connection and waits up to wait_s seconds for the server to close it.
 * Returns the seconds it took, or -1 when it stayed open (or on error). */
static double closed_after(int port, const char *text, int wait_s)
{
    int fd = raw_connect(port, wait_s);
    if (fd < 0) {
        return -1;
    }
    double t0 = hu_now(), took = -1;
    if (write(fd, text, strlen(text)) == (ssize_t)strlen(text)) {
        char buf[512];
        for (;;) {
            ssize_t r = read(fd, buf, sizeof buf);
            if (r > 0) {
                continue; /* an answer (such as a 408) before the close is fine */
            }
            if (r == 0 || (r < 0 && errno == ECONNRESET)) {
                took = hu_now() - t0;
            }
            break; /* r < 0 with EAGAIN: the receive timeout, still open */
        }
    }
    close(fd);
    return took;
}

/* A new temporary file name for a server's stderr (the file is created empty). */
static void temp_log(char *path, size_t len)
{
    snprintf(path, len, "/tmp/segloss-e2e-log-XXXXXX");
    int fd = mkstemp(path);
    if (fd >= 0) {
        close(fd);
    }
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    struct hu_buf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        hu_buf_append(&b, chunk, n);
    }
    fclose(f);
    if (!b.data) {
        hu_buf_append(&b, "", 0);
    }
    return b.data;
}

/* The access-log line (parsed, new reference) whose id is `id`, or NULL. CHECKs that every
 * JSON line of log has the nine documented fields with their types. */
static json_t *log_find(const char *log, const char *id, int *nlines)
{
    static const char *const str_keys[] = {"ts", "id", "method", "path", "remote"};
    static const char *const int_keys[] = {"status", "bytes_in", "bytes_out"};
    json_t *found = NULL;
    *nlines = 0;
    for (const char *p = log; p && *p;) {
        size_t len = strcspn(p, "\n");
        if (*p == '{') {
            json_error_t e;
            json_t *j = json_loadb(p, len, 0, &e);
            bool ok = json_is_object(j) && json_object_size(j) == 9 &&
                      json_is_number(json_object_get(j, "ms"));
            for (size_t k = 0; ok && k < 5; k++) {
                ok = json_is_string(json_object_get(j, str_keys[k]));
            }
            for (size_t k = 0; ok && k < 3; k++) {
                ok = json_is_integer(json_object_get(j, int_keys[k]));
            }
            CHECK(ok);
            if (!ok) {
                fprintf(stderr, "    access log: bad line %.*s\n", (int)len, p);
            }
            (*nlines)++;
            const char *jid = json_string_value(json_object_get(j, "id"));
            if (ok && !found && jid && strcmp(jid, id) == 0) {
                found = j;
            } else {
                json_decref(j);
            }
        }
        p += len + (p[len] == '\n');
    }
    return found;
}

static void test_ops_limits(void)
{
    static const char *const args[] = {"--max-body-mb", "1", "--idle-timeout", "1", NULL};
    char logpath[64], err[512];
    temp_log(logpath, sizeof logpath);
    struct hu_server srv;
    int rc = hu_server_start_log(&srv, seglossd_path, args, logpath, err, sizeof err);
    CHECK(rc == 0);
    if (rc != 0) {
        fprintf(stderr, "    ops: cannot start seglossd: %s\n", err);
        unlink(logpath);
        return;
    }

    struct hu_xfer x;
    const char *const hdrs[] = {"Content-Type: application/json", "X-Request-ID: e2e-log-1", NULL};
    request(&x, &srv, "POST", "/v1/score", hdrs, seed_body, sizeof seed_body - 1,
            HU_REQUEST_TIMEOUT);
    CHECK_STATUS(&x, 200);
    size_t answer_len = x.body.len;
    hu_xfer_cleanup(&x);

    /* a 413 shows up as a rejection */
    const size_t big = (size_t)2 << 20;
    char *body = malloc(big);
    CHECK(body != NULL);
    if (body) {
        memset(body, ' ', big);
        const char *const expect[] = {"Content-Type: application/json", "Expect: 100-continue",
                                      NULL};
        request(&x, &srv, "POST", "/v1/score", expect, body, big, HU_REQUEST_TIMEOUT);
        check_problem("ops: 2 MiB body", &x, 413);
        hu_xfer_cleanup(&x);
        free(body);
    }

    /* slowloris: half a request line, then silence; and a body that stops half way */
    /* closed after about the 1 s timeout; the 15 s ceiling only says "closed at all", with room
     * for slow runs such as valgrind's */
    double t = closed_after(srv.port, "GET /hea", 15);
    fprintf(stderr, "    idle timeout 1 s: half a request line closed after %.2f s\n", t);
    CHECK(t >= 0.5 && t <= 15.0);
    t = closed_after(srv.port,
                     "POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Content-Length: 100\r\n\r\n{\"pred",
                     15);
    fprintf(stderr, "    idle timeout 1 s: half a body closed after %.2f s\n", t);
    CHECK(t >= 0.5 && t <= 15.0);

    char *m = metrics_get(&srv, "ops");
    if (m) {
        CHECK_CLOSE(metric(m, "segloss_rejections_total{reason=\"body_too_large\"}"), 1, 0, 0);
        CHECK_CLOSE(metric(m, "segloss_requests_total{route=\"/v1/score\",status=\"413\"}"), 1, 0,
                    0);
        CHECK_CLOSE(metric(m, "segloss_rejections_total{reason=\"idle_timeout\"}"), 1, 0, 0);
        CHECK_CLOSE(metric(m, SCORE_200), 1, 0, 0);
        free(m);
    }
    /* the server is still fine after the slow clients */
    request(&x, &srv, "GET", "/healthz", NULL, NULL, 0, HU_REQUEST_TIMEOUT);
    CHECK_STATUS(&x, 200);
    hu_xfer_cleanup(&x);
    stop_server(&srv, "ops");

    char *log = slurp(logpath);
    CHECK(log != NULL);
    if (log) {
        int nlines = 0;
        json_t *j = log_find(log, "e2e-log-1", &nlines);
        CHECK(j != NULL);
        if (j) {
            const char *ts = json_string_value(json_object_get(j, "ts"));
            /* 2026-01-02T03:04:05.678Z */
            CHECK(ts && strlen(ts) == 24 && ts[4] == '-' && ts[10] == 'T' && ts[23] == 'Z');
            CHECK(strcmp(json_string_value(json_object_get(j, "method")), "POST") == 0);
            CHECK(strcmp(json_string_value(json_object_get(j, "path")), "/v1/score") == 0);
            CHECK(strcmp(json_string_value(json_object_get(j, "remote")), "127.0.0.1") == 0);
            CHECK_INT(json_integer_value(json_object_get(j, "status")), 200);
            CHECK_INT(json_integer_value(json_object_get(j, "bytes_in")), sizeof seed_body - 1);
            CHECK_INT(json_integer_value(json_object_get(j, "bytes_out")), answer_len);
            CHECK(json_number_value(json_object_get(j, "ms")) >= 0);
            json_decref(j);
        } else {
            fprintf(stderr, "    access log: no line with id e2e-log-1 in:\n%.2000s\n", log);
        }
        /* healthz polls at start, score, 413, timed-out body, metrics, healthz */
        CHECK(nlines >= 6);
        free(log);
    }
    unlink(logpath);
}

static void test_access_log_off(void)
{
    static const char *const args[] = {"--access-log", "0", NULL};
    char logpath[64], err[512];
    temp_log(logpath, sizeof logpath);
    struct hu_server srv;
    int rc = hu_server_start_log(&srv, seglossd_path, args, logpath, err, sizeof err);
    CHECK(rc == 0);
    if (rc != 0) {
        fprintf(stderr, "    access log off: cannot start seglossd: %s\n", err);
        unlink(logpath);
        return;
    }
    struct hu_xfer x;
    request(&x, &srv, "GET", "/healthz", NULL, NULL, 0, HU_REQUEST_TIMEOUT);
    CHECK_STATUS(&x, 200);
    CHECK(hu_xfer_header(&x, "X-Request-ID", NULL, 0)); /* the id is echoed all the same */
    hu_xfer_cleanup(&x);
    stop_server(&srv, "access log off");
    char *log = slurp(logpath);
    CHECK(log != NULL && strstr(log, "\"id\":") == NULL);
    free(log);
    unlink(logpath);
}

/* Sends a GET /healthz on fd and returns the status of the answer, or -1 (closed, reset,
 * timed out). */
static int raw_get(int fd)
{
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    char buf[512];
    int status = -1;
    if (write(fd, req, sizeof req - 1) == (ssize_t)(sizeof req - 1)) {
        ssize_t n = read(fd, buf, sizeof buf - 1);
        if (n > 12) {
            buf[n] = '\0';
            sscanf(buf, "HTTP/1.%*d %d", &status);
        }
    }
    return status;
}

/* Sends text on fd and reads the answer until the server closes the connection or 5 s pass.
 * Returns the status (-1: no answer) with the answer text in buf; *closed when the server
 * closed the connection. */
static int raw_until_close(int fd, const char *text, char *buf, size_t cap, bool *closed)
{
    size_t got = 0;
    int status = -1;
    *closed = false;
    buf[0] = '\0';
    if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
        return -1;
    }
    double t0 = hu_now();
    while (got + 1 < cap && hu_now() - t0 < 5) {
        ssize_t n = read(fd, buf + got, cap - 1 - got);
        if (n == 0) {
            *closed = true;
            break;
        }
        if (n < 0) {
            if (errno == ECONNRESET) {
                *closed = true;
            }
            break;
        }
        got += (size_t)n;
    }
    buf[got] = '\0';
    if (got > 12) {
        sscanf(buf, "HTTP/1.%*d %d", &status);
    }
    return status;
}

/* Checks a raw answer: its status, problem+json, Retry-After when wanted, the connection
 * closed by the server, and `has` in it. */
static void check_raw_refusal(const char *what, int status, const char *buf, bool closed, int want,
                              bool retry_after, const char *has)
{
    CHECK_INT(status, want);
    CHECK_HAS(buf, "Content-Type: application/problem+json");
    CHECK_HAS(buf, has);
    if (retry_after) {
        CHECK_HAS(buf, "Retry-After: 1");
    }
    CHECK(closed);
    if (status != want || !closed) {
        fprintf(stderr, "    %s: status %d, closed %d, answer:\n%.600s\n", what, status, closed,
                buf);
    }
}

static const char healthz_req[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

/* Opens two kept-alive connections (each served) into *a and *b, then a third whose first
 * request must be refused with status `want` (problem+json naming `has`, Retry-After) and which
 * the server must close. The server counts a connection the client closed until it has seen
 * the close (a moment later, much later under valgrind), so the first two are retried until
 * both are served. */
static void third_connection_refused(const struct hu_server *srv, const char *what, int want,
                                     const char *has, int *a, int *b)
{
    char buf[4096] = "";
    bool closed = false;
    int sa = -1, sb = -1;
    for (int tries = 0; tries < 75; tries++) {
        *a = raw_connect(srv->port, 5);
        sa = *a >= 0 ? raw_get(*a) : -1;
        *b = raw_connect(srv->port, 5);
        sb = *b >= 0 ? raw_get(*b) : -1;
        if (sa == 200 && sb == 200) {
            break;
        }
        if (*a >= 0) {
            close(*a);
        }
        if (*b >= 0) {
            close(*b);
        }
        *a = *b = -1;
        hu_sleep_ms(200);
    }
    CHECK_INT(sa, 200);
    CHECK_INT(sb, 200);
    int c = raw_connect(srv->port, 5);
    int st = c >= 0 ? raw_until_close(c, healthz_req, buf, sizeof buf, &closed) : -1;
    fprintf(stderr, "    %s: third connection got %d\n", what, st);
    check_raw_refusal(what, st, buf, closed, want, true, has);
    if (c >= 0) {
        close(c);
    }
}

/* --max-per-ip and --max-header-kb: problem+json answers up to MHD's hard limits (twice the
 * flags), MHD's own refusal beyond. */
static void test_per_ip(void)
{
    static const char *const args[] = {"--max-per-ip", "2", "--max-header-kb", "8", NULL};
    struct hu_server srv;
    if (start_server(&srv, args, "per-ip") != 0) {
        return;
    }
    char buf[4096] = "";
    bool closed = false;
    /* two kept-alive connections hold both slots; a third gets 429 and is closed */
    int a, b;
    third_connection_refused(&srv, "--max-per-ip 2", 429, "--max-per-ip 2", &a, &b);
    hu_sleep_ms(200);
    /* two more are accepted silently (MHD's hard limit is 4); the fifth is closed by MHD */
    int d = raw_connect(srv.port, 5), e = raw_connect(srv.port, 5);
    CHECK(d >= 0 && e >= 0);
    hu_sleep_ms(200);
    int f = raw_connect(srv.port, 5);
    int fifth = f >= 0 ? raw_get(f) : -1;
    fprintf(stderr, "    --max-per-ip 2: fifth connection got %d (-1: closed by MHD)\n", fifth);
    CHECK_INT(fifth, -1);
    int st = d >= 0 ? raw_until_close(d, healthz_req, buf, sizeof buf, &closed) : -1;
    check_raw_refusal("per-ip fourth", st, buf, closed, 429, true, "too many open connections");
    close(a);
    close(b);
    if (d >= 0) {
        close(d);
    }
    if (e >= 0) {
        close(e);
    }
    if (f >= 0) {
        close(f);
    }
    /* once the server has seen them go, a new one is served */
    int got = -1;
    for (int tries = 0; tries < 75 && got != 200; tries++) {
        hu_sleep_ms(200);
        int g = raw_connect(srv.port, 5);
        got = g >= 0 ? raw_get(g) : -1;
        if (g >= 0) {
            close(g);
        }
    }
    CHECK_INT(got, 200);

    /* headers: 10 KiB of them is over --max-header-kb 8 (431 problem+json); 20 KiB is over
     * MHD's 16 KiB connection memory, which refuses the request itself */
    for (int k = 0; k < 2; k++) {
        size_t pad = k == 0 ? 10 * 1024 : 20 * 1024;
        char *req = malloc(pad + 128);
        CHECK(req != NULL);
        if (!req) {
            break;
        }
        int n = snprintf(req, 128, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ");
        memset(req + n, 'p', pad);
        memcpy(req + n + pad, "\r\n\r\n", 5);
        int h = raw_connect(srv.port, 5);
        st = h >= 0 ? raw_until_close(h, req, buf, sizeof buf, &closed) : -1;
        fprintf(stderr, "    --max-header-kb 8: %zu KiB header got %d\n", pad / 1024, st);
        if (k == 0) {
            check_raw_refusal("header 10 KiB", st, buf, closed, 431, false, "--max-header-kb");
        } else {
            CHECK_INT(st, 431);
            CHECK(closed);
        }
        if (h >= 0) {
            close(h);
        }
        free(req);
    }
    hu_sleep_ms(200);
    char *m = metrics_get(&srv, "per-ip");
    if (m) {
        /* the third and the fourth (and any retry above made before the server saw a close) */
        CHECK(metric(m, "segloss_rejections_total{reason=\"per_ip_limit\"}") >= 2);
        CHECK_CLOSE(metric(m, "segloss_rejections_total{reason=\"header_too_large\"}"), 1, 0, 0);
        free(m);
    }
    stop_server(&srv, "per-ip");
}

/* --max-connections: a connection over it gets 503 + Retry-After and is closed. */
static void test_max_connections(void)
{
    static const char *const args[] = {"--max-connections", "2", "--max-per-ip", "0", NULL};
    struct hu_server srv;
    if (start_server(&srv, args, "max-connections") != 0) {
        return;
    }
    int a, b;
    third_connection_refused(&srv, "--max-connections 2", 503, "--max-connections 2", &a, &b);
    /* a kept-alive connection under the limit goes on being served */
    CHECK_INT(a >= 0 ? raw_get(a) : -1, 200);
    if (a >= 0) {
        close(a);
    }
    if (b >= 0) {
        close(b);
    }
    /* the /metrics request's own connection is the one left open */
    CHECK_CLOSE(wait_metric(&srv, "segloss_open_connections", 1), 1, 0, 0);
    char *m = metrics_get(&srv, "max-connections");
    if (m) {
        CHECK(metric(m, "segloss_rejections_total{reason=\"connection_limit\"}") >= 1);
        free(m);
    }
    stop_server(&srv, "max-connections");
}

/* --max-inflight-mb: the request bodies held at once are capped; a body that would pass the
 * cap gets 503 + Retry-After without being kept (announced: decided at its headers; chunked:
 * once it passes), a small one still goes through, and /readyz says not-ready only when no
 * body would fit. */
static void test_inflight_memory(void)
{
    static const char *const args[] = {"--max-body-mb", "3", "--max-inflight-mb", "4", NULL};
    struct hu_server srv;
    if (start_server(&srv, args, "inflight") != 0) {
        return;
    }
    /* A holds 3 MiB: it announces them and sends 10 bytes */
    int a = raw_connect(srv.port, 5);
    CHECK(a >= 0);
    char head[256];
    snprintf(head, sizeof head,
             "POST /v1/score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
             "Content-Length: %d\r\n\r\n{\"predicti",
             3 << 20);
    CHECK(a >= 0 && write(a, head, strlen(head)) == (ssize_t)strlen(head));
    hu_sleep_ms(200);

    struct hu_xfer x;
    request(&x, &srv, "POST", "/v1/score", json_ct, seed_body, sizeof seed_body - 1,
            HU_REQUEST_TIMEOUT);
    CHECK_STATUS(&x, 200);
    hu_xfer_cleanup(&x);

    const size_t two = (size_t)2 << 20;
    char *junk = malloc(two);
    CHECK(junk != NULL);
    if (junk) {
        memset(junk, ' ', two);
        request(&x, &srv, "POST", "/v1/score", json_ct, junk, two, HU_REQUEST_TIMEOUT);
        check_problem_has("2 MiB body while 3 MiB are held", &x, 503, "--max-inflight-mb 4");
        CHECK(hu_xfer_header(&x, "Retry-After", NULL, 0));
        hu_xfer_cleanup(&x);
        const char *const chunked[] = {"Content-Type: application/json",
                                       "Transfer-Encoding: chunked", NULL};
        request(&x, &srv, "POST", "/v1/score", chunked, junk, two, HU_REQUEST_TIMEOUT);
        check_problem_has("2 MiB chunked body while 3 MiB are held", &x, 503,
                          "--max-inflight-mb 4");
        hu_xfer_cleanup(&x);
    }
    /* A's 3 MiB; the chunked body's reservation goes once it has been answered */
    CHECK_CLOSE(wait_metric(&srv, "segloss_body_bytes", 3 << 20), 3 << 20, 0, 0);
    request(&x, &srv, "GET", "/readyz", NULL, NULL, 0, HU_REQUEST_TIMEOUT);
    CHECK_STATUS(&x, 200); /* 1 MiB is still free */
    hu_xfer_cleanup(&x);
    char *m = metrics_get(&srv, "inflight");
    if (m) {
        CHECK_CLOSE(metric(m, "segloss_rejections_total{reason=\"body_memory\"}"), 2, 0, 0);
        free(m);
    }
    /* once A is gone its memory is free again: the same 2 MiB body is read (and is no JSON) */
    if (a >= 0) {
        close(a);
    }
    CHECK_CLOSE(wait_metric(&srv, "segloss_body_bytes", 0), 0, 0, 0);
    if (junk) {
        request(&x, &srv, "POST", "/v1/score", json_ct, junk, two, HU_REQUEST_TIMEOUT);
        check_problem_has("2 MiB body once A is gone", &x, 400, "malformed JSON");
        hu_xfer_cleanup(&x);
    }
    free(junk);
    /* and the memory of that body is given back once it has been answered */
    CHECK_CLOSE(wait_metric(&srv, "segloss_body_bytes", 0), 0, 0, 0);
    stop_server(&srv, "inflight");
}

/* The request-shape limits, each a 413 naming the array or key and the flag. */
static void test_shape_limits(void)
{
    static const char *const args[] = {"--max-images",
                                       "2",
                                       "--max-classes",
                                       "3",
                                       "--max-spec-depth",
                                       "8",
                                       "--max-json-values",
                                       "100",
                                       "--max-specs",
                                       "2",
                                       NULL};
    struct hu_server srv;
    if (start_server(&srv, args, "shape limits") != 0) {
        return;
    }
    static const struct {
        const char *what, *body, *has;
    } cases[] = {
        {"3 images",
         "{\"prediction\": {\"format\": \"list\", \"shape\": [3, 1, 2], \"data\": [0.1, 0.2, 0.3, "
         "0.4, 0.5, 0.6]}, \"prediction_type\": \"probabilities\", \"target\": {\"format\": "
         "\"list\", \"shape\": [3, 1, 2], \"data\": [0, 1, 0, 1, 0, 1]}, \"losses\": [{\"name\": "
         "\"dice\"}]}",
         "prediction has 3 images, over the limit of 2 (--max-images)"},
        {"4 classes",
         "{\"mode\": \"multiclass\", \"prediction\": {\"format\": \"list\", \"shape\": [1, 4, 1, "
         "2], "
         "\"data\": [1, 2, 3, 4, 5, 6, 7, 8]}, \"target\": {\"format\": \"list\", \"dtype\": "
         "\"uint8\", \"shape\": [1, 1, 2], \"data\": [0, 3]}, \"losses\": [{\"name\": "
         "\"cross_entropy\"}]}",
         "prediction has 4 classes, over the limit of 3 (--max-classes)"},
        {"depth 9", "{\"a\": [[[[[[[[1]]]]]]]]}", "JSON nesting deeper than 8 levels at byte"},
        {"101 values",
         "[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,"
         "0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,"
         "0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]",
         "more than 100 values (--max-json-values)"},
        {"3 losses",
         "{\"prediction\": {\"format\": \"list\", \"shape\": [1, 1, 2], \"data\": [0.1, 0.9]}, "
         "\"prediction_type\": \"probabilities\", \"target\": {\"format\": \"list\", \"shape\": "
         "[1, 1, 2], \"data\": [0, 1]}, \"losses\": [{\"name\": \"dice\"}, {\"name\": "
         "\"jaccard\"}, {\"name\": \"tversky\"}]}",
         "losses has 3 entries, over the limit of 2 (--max-specs)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct hu_xfer x;
        request(&x, &srv, "POST", "/v1/score", json_ct, cases[i].body, strlen(cases[i].body),
                HU_REQUEST_TIMEOUT);
        check_problem_has(cases[i].what, &x, 413, cases[i].has);
        hu_xfer_cleanup(&x);
    }
    /* at the limits: 2 images, 3 classes, 2 losses are fine */
    static const char ok_body[] =
        "{\"mode\": \"multiclass\", \"prediction\": {\"format\": \"list\", \"shape\": [2, 3, 1, "
        "1], "
        "\"data\": [1, 2, 3, 4, 5, 6]}, \"target\": {\"format\": \"list\", \"dtype\": \"uint8\", "
        "\"shape\": [2, 1, 1], \"data\": [2, 0]}, \"losses\": [{\"name\": \"cross_entropy\"}, "
        "{\"name\": \"dice\"}]}";
    struct hu_xfer x;
    request(&x, &srv, "POST", "/v1/score", json_ct, ok_body, sizeof ok_body - 1,
            HU_REQUEST_TIMEOUT);
    json_t *doc = check_json_200("at the shape limits", &x);
    /* cross entropy by hand: image 0 logits (1,2,3), class 2: ln(e+e^2+e^3) - 3 = 0.407606;
     * image 1 logits (4,5,6), class 0: ln(e^4+e^5+e^6) - 4 = 2.407606; mean 1.407606 */
    check_num("at the shape limits", doc, "losses.cross_entropy.value", 1.4076059644, 1e-6);
    json_decref(doc);
    hu_xfer_cleanup(&x);
    stop_server(&srv, "shape limits");
}

/* Runs seglossd with args (and envp) and returns its exit status, stdout into out. */
static int run_cli(const char *const *args, char *const *envp, char *out, size_t outlen)
{
    const char *argv[16];
    int n = 0;
    argv[n++] = seglossd_path;
    for (const char *const *a = args; *a && n < 15; a++) {
        argv[n++] = *a;
    }
    argv[n] = NULL;
    int pfd[2];
    if (pipe(pfd) != 0) {
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int dn = open("/dev/null", O_WRONLY);
        dup2(pfd[1], STDOUT_FILENO);
        if (dn >= 0) {
            dup2(dn, STDERR_FILENO);
        }
        close(pfd[0]);
        execve(seglossd_path, (char *const *)argv, envp);
        _exit(127);
    }
    close(pfd[1]);
    size_t got = 0;
    ssize_t r;
    while (pid > 0 && (r = read(pfd[0], out + got, outlen - 1 - got)) > 0) {
        got += (size_t)r;
    }
    out[got] = '\0';
    close(pfd[0]);
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid) {
        return -1;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_limit_flags(void)
{
    static char *const noenv[] = {NULL};
    char out[8192];
    static const char *const help[] = {"--help", NULL};
    CHECK_INT(run_cli(help, noenv, out, sizeof out), 0);
    /* -h is --help: exit 0 and the same text */
    char out_h[8192];
    static const char *const help_h[] = {"-h", NULL};
    CHECK_INT(run_cli(help_h, noenv, out_h, sizeof out_h), 0);
    CHECK(strncmp(out, "Usage: seglossd", 15) == 0 && strcmp(out, out_h) == 0);
    static const char *const flags[] = {"--max-connections", "--max-per-ip",  "--idle-timeout",
                                        "--max-header-kb",   "--access-log",  "--max-inflight-mb",
                                        "--max-images",      "--max-classes", "--max-spec-depth",
                                        "--max-json-values", "--max-specs"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        CHECK(strstr(out, flags[i]) != NULL);
    }
    static const char *const bad[][3] = {
        {"--max-connections", "0", NULL},
        {"--max-per-ip", "-1", NULL},
        {"--idle-timeout", "0", NULL},
        {"--idle-timeout", "1s", NULL},
        {"--max-header-kb", "4", NULL},
        {"--access-log", "2", NULL},
        /* smaller than the default --max-body-mb 256: such a body could never be held */
        {"--max-inflight-mb", "4", NULL},
        {"--max-images", "0", NULL},
        {"--max-classes", "1", NULL},
        {"--max-spec-depth", "3", NULL},
        {"--max-json-values", "x", NULL},
        {"--max-specs", "33", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int st = run_cli(bad[i], noenv, out, sizeof out);
        CHECK_INT(st, 2);
        if (st != 2) {
            fprintf(stderr, "    %s %s: exit %d, want 2\n", bad[i][0], bad[i][1], st);
        }
    }
    static char *const badenv[] = {"SEGLOSS_MAX_PER_IP=x", NULL};
    static const char *const none[] = {NULL};
    CHECK_INT(run_cli(none, badenv, out, sizeof out), 2);
}

/* One body for overload and drain, made on first use and freed by main: its surface metrics keep
 * a worker busy long enough (several times the 50 ms /readyz polls, and SIGTERM's 0.1 s)
 * whatever the build or valgrind. */
static char *heavy_;
static size_t heavy_len_;
static bool heavy_made_;

static const char *heavy(size_t *len)
{
    if (!heavy_made_) {
        heavy_made_ = true;
        heavy_ = heavy_body(&heavy_len_);
        CHECK(heavy_ != NULL);
    }
    *len = heavy_len_;
    return heavy_;
}

static void test_overload_heavy(void)
{
    size_t len;
    const char *body = heavy(&len);
    if (body) {
        test_overload(body, len);
    }
}

static void test_drain_heavy(void)
{
    size_t len;
    const char *body = heavy(&len);
    if (body) {
        test_drain(body, len);
    }
}

/* ---- soft targets and label smoothing over HTTP (issue 17, item 5) ------------------------ */

/* POSTs body to /v1/score; x must be cleaned up by the caller. */
static void post_score(struct hu_xfer *x, const struct hu_server *srv, const char *body)
{
    request(x, srv, "POST", "/v1/score", json_ct, body, strlen(body), HU_REQUEST_TIMEOUT);
}

static void test_soft_targets(const struct hu_server *srv)
{
    struct hu_xfer x;
    /* p = [0.5, 0.6, 0.2, 0.1], soft y = [0.25, 1, 0.5, 0] (float32 list):
     *   CE (PyTorch binary_cross_entropy, soft y) = -(sum y ln p + (1-y) ln(1-p)) / 4
     *     = -(0.25 ln .5 + .75 ln .5 + ln .6 + .5 ln .2 + .5 ln .8 + ln .9) / 4
     *   dice (smp soft_dice_score, MONAI DiceLoss): sum p = 1.4, sum y = 1.75,
     *     sum p y = .125 + .6 + .1 = .825: 1 - 1.65 / 3.15
     *   metric dice: target hardened at 0.5 -> [0, 1, 1, 0], prediction p >= 0.5 -> [1, 1, 0, 0]:
     *     TP 1, FP 1, FN 1: 2 / 4 */
    static const char soft[] =
        "{\"prediction\": [[[0.5, 0.6], [0.2, 0.1]]], \"prediction_type\": \"probabilities\", "
        "\"target\": {\"format\": \"list\", \"dtype\": \"float32\", \"shape\": [1, 2, 2], "
        "\"data\": [0.25, 1, 0.5, 0]}, \"losses\": [\"cross_entropy\", \"dice\"], "
        "\"metrics\": [\"dice\"]}";
    post_score(&x, srv, soft);
    json_t *doc = check_json_200("soft target", &x);
    check_num("soft target", doc, "losses.cross_entropy.value",
              -(log(0.5) + log(0.6) + 0.5 * log(0.2) + 0.5 * log(0.8) + log(0.9)) / 4, 1e-12);
    check_num("soft target", doc, "losses.dice.value", 1 - 1.65 / 3.15, 1e-12);
    check_num("soft target", doc, "metrics.dice.mean", 0.5, 1e-15);
    json_decref(doc);
    hu_xfer_cleanup(&x);

    /* label_smoothing 0.2 on y = [1, 1, 0, 0] (Keras BinaryCrossentropy): y_s = y 0.8 + 0.1 =
     * [.9, .9, .1, .1]; smooth_factor 0.1 (smp SoftBCEWithLogitsLoss) gives the same y_s */
    static const char ls[] =
        "{\"prediction\": [[[0.5, 0.6], [0.2, 0.1]]], \"prediction_type\": \"probabilities\", "
        "\"target\": [[[1, 1], [0, 0]]], \"losses\": [{\"name\": \"cross_entropy\", "
        "\"label_smoothing\": 0.2}, {\"name\": \"cross_entropy\", \"smooth_factor\": 0.1, "
        "\"as\": \"sf\"}]}";
    const double p[4] = {0.5, 0.6, 0.2, 0.1}, ys[4] = {0.9, 0.9, 0.1, 0.1};
    double want = 0;
    for (int k = 0; k < 4; k++) {
        want -= (ys[k] * log(p[k]) + (1 - ys[k]) * log(1 - p[k])) / 4;
    }
    post_score(&x, srv, ls);
    doc = check_json_200("label_smoothing", &x);
    check_num("label_smoothing", doc, "losses.cross_entropy.value", want, 1e-12);
    check_num("label_smoothing", doc, "losses.sf.value", want, 1e-12);
    json_decref(doc);
    hu_xfer_cleanup(&x);

    /* refusals: a loss that needs 0/1 targets, a target outside [0, 1], a smoothing out of range,
     * both smoothing names at once */
    static const struct {
        const char *body, *needle;
    } bad[] = {
        {"{\"prediction\": [[[0.5, 0.6], [0.2, 0.1]]], \"prediction_type\": \"probabilities\", "
         "\"target\": [[[0.25, 1], [0.5, 0]]], \"losses\": [\"lovasz_hinge\"]}",
         "target[0, 0, 0] (flat index 0) is 0.25, a soft target, but losses[0] (lovasz_hinge)"},
        {"{\"prediction\": [[[0.5, 0.6], [0.2, 0.1]]], \"prediction_type\": \"probabilities\", "
         "\"target\": [[[0.25, 1], [1.5, 0]]], \"losses\": [\"cross_entropy\"]}",
         "target[0, 1, 0] (flat index 2) is 1.5"},
        {"{\"prediction\": [[[0.5, 0.6], [0.2, 0.1]]], \"prediction_type\": \"probabilities\", "
         "\"target\": [[[1, 1], [0, 0]]], \"losses\": [{\"name\": \"cross_entropy\", "
         "\"label_smoothing\": 1.5}]}",
         "losses[0].label_smoothing"},
        {"{\"prediction\": [[[0.5, 0.6], [0.2, 0.1]]], \"prediction_type\": \"probabilities\", "
         "\"target\": [[[1, 1], [0, 0]]], \"losses\": [{\"name\": \"cross_entropy\", "
         "\"label_smoothing\": 0.1, \"smooth_factor\": 0.1}]}",
         "label_smoothing or smooth_factor, not both"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        post_score(&x, srv, bad[i].body);
        check_problem_has("soft targets: refused", &x, 422, bad[i].needle);
        hu_xfer_cleanup(&x);
    }
}

/* Whether two answers hold the same numbers (within 1e-12 relative; timings left out),
 * naming the first difference. */
static bool same_answer(const json_t *a, const json_t *b, const char *path)
{
    if (json_is_number(a) && json_is_number(b)) {
        double x = json_number_value(a), y = json_number_value(b);
        if (fabs(x - y) <= 1e-12 * fabs(y)) {
            return true;
        }
        fprintf(stderr, "    %s: %.17g against %.17g\n", path, x, y);
        return false;
    }
    if (json_typeof(a) != json_typeof(b)) {
        fprintf(stderr, "    %s: types differ\n", path);
        return false;
    }
    char sub[256];
    if (json_is_object(a)) {
        const char *k;
        const json_t *v;
        if (json_object_size(a) != json_object_size(b)) {
            fprintf(stderr, "    %s: key counts differ\n", path);
            return false;
        }
        json_object_foreach((json_t *)a, k, v)
        {
            if (strcmp(k, "elapsed_ms") == 0) {
                continue;
            }
            snprintf(sub, sizeof sub, "%s.%s", path, k);
            if (!same_answer(v, json_object_get(b, k), sub)) {
                return false;
            }
        }
        return true;
    }
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b)) {
            fprintf(stderr, "    %s: lengths differ\n", path);
            return false;
        }
        for (size_t i = 0; i < json_array_size(a); i++) {
            snprintf(sub, sizeof sub, "%s[%zu]", path, i);
            if (!same_answer(json_array_get(a, i), json_array_get(b, i), sub)) {
                return false;
            }
        }
        return true;
    }
    return json_equal((json_t *)a, (json_t *)b);
}

/* float16 and bfloat16 predictions (and weights) answer what float32 answers for the same
 * values: logits of at most 8 significant bits, exact in all three, as raw bfloat16, .npy '<f2'
 * and raw float32, binary (the fused pass) and multiclass (softmax); a bfloat16 NaN is a 422
 * naming its index, and an npy declared bfloat16 a 422 pointing to raw. */
static void test_narrow_floats(const struct hu_server *srv)
{
    static const int64_t shapes[2][4] = {{2, 16, 16, 0}, {2, 3, 8, 8}};
    uint32_t seed = 1812;
    for (int mc = 0; mc < 2; mc++) {
        const int64_t *sh = shapes[mc];
        const size_t n = (size_t)(sh[0] * sh[1] * sh[2] * (mc ? sh[3] : 1));
        const size_t nt = mc ? (size_t)(sh[0] * sh[2] * sh[3]) : n;
        float *xf = malloc(4 * n), *wf = malloc(4 * nt);
        uint16_t *xb = malloc(2 * n), *xh = malloc(2 * n), *wh = malloc(2 * nt);
        unsigned char *t = malloc(nt);
        for (size_t i = 0; i < n; i++) {
            /* k / 2^4 for k in [-127, 127]: 8 significant bits at most, |x| < 8 */
            int k = (int)(xorshift32(&seed) % 255) - 127;
            xf[i] = (float)k / 16;
            uint32_t bits;
            memcpy(&bits, &xf[i], 4);
            xb[i] = (uint16_t)(bits >> 16);
            /* binary16 of k / 16: sign, exponent e + 15, the top 10 mantissa bits */
            xh[i] = k == 0 ? 0
                           : (uint16_t)((bits >> 16 & 0x8000) |
                                        (((bits >> 23 & 0xff) - 127 + 15) << 10) |
                                        (bits >> 13 & 0x3ff));
        }
        for (size_t i = 0; i < nt; i++) {
            t[i] = (unsigned char)(xorshift32(&seed) % (mc ? 3 : 2));
            wf[i] = (float)(1 + xorshift32(&seed) % 4) / 2; /* 0.5 .. 2 */
            wh[i] = (uint16_t)(0x3800 + ((wf[i] >= 1) + (wf[i] >= 2)) * 0x400 +
                               (wf[i] == 1.5f ? 0x200 : 0));
        }
        char shape[64], tshape[64], dict[160];
        if (mc) {
            snprintf(shape, sizeof shape, "[%lld, %lld, %lld, %lld]", (long long)sh[0],
                     (long long)sh[1], (long long)sh[2], (long long)sh[3]);
            snprintf(tshape, sizeof tshape, "[%lld, %lld, %lld]", (long long)sh[0],
                     (long long)sh[2], (long long)sh[3]);
        } else {
            snprintf(shape, sizeof shape, "[%lld, %lld, %lld]", (long long)sh[0], (long long)sh[1],
                     (long long)sh[2]);
            snprintf(tshape, sizeof tshape, "%s", shape);
        }
        char tup[64];
        snprintf(tup, sizeof tup, "%s", shape + 1);
        tup[strlen(tup) - 1] = '\0'; /* "2, 16, 16" */
        snprintf(dict, sizeof dict, "{'descr': '<f2', 'fortran_order': False, 'shape': (%s), }",
                 tup);
        unsigned char *npy = malloc(128 + 2 * n);
        npy_header(npy, 128, dict);
        memcpy(npy + 128, xh, 2 * n);
        char *b32 = base64((const unsigned char *)xf, 4 * n);
        char *b16 = base64((const unsigned char *)xb, 2 * n);
        char *bnpy = base64(npy, 128 + 2 * n);
        char *bt = base64(t, nt);
        char *bw32 = base64((const unsigned char *)wf, 4 * nt);
        char *bw16 = base64((const unsigned char *)wh, 2 * nt);
        const size_t cap = 4096 + strlen(b32) + strlen(bnpy) + strlen(bt) + strlen(bw32);
        char *body = malloc(cap);
        json_t *ref = NULL;
        const char *spec = mc ? "\"mode\": \"multiclass\", \"losses\": [\"cross_entropy\", "
                                "\"dice\", \"focal\"], \"metrics\": [\"dice\", \"iou\"]"
                              : "\"losses\": [\"cross_entropy\", \"dice\", \"focal\", "
                                "\"tversky\"], \"metrics\": [\"dice\", \"iou\", \"accuracy\"]";
        for (int v = 0; v < 5; v++) {
            char pred[96], weight[160] = "";
            const char *data = v == 0 || v == 3 ? b32 : v == 1 || v == 4 ? b16 : bnpy;
            snprintf(pred, sizeof pred, "\"format\": \"%s\"%s", v == 2 ? "npy" : "raw",
                     v == 0 || v == 3   ? ", \"dtype\": \"float32\""
                     : v == 1 || v == 4 ? ", \"dtype\": \"bfloat16\""
                                        : "");
            if (v >= 3) {
                /* a weight map: float32 with the float32 logits, float16 with bfloat16 ones */
                snprintf(weight, sizeof weight,
                         ", \"weight\": {\"format\": \"raw\", \"dtype\": \"%s\", \"shape\": %s, "
                         "\"data\": \"",
                         v == 3 ? "float32" : "float16", tshape);
            }
            int len =
                snprintf(body, cap,
                         "{\"prediction\": {%s%s%s, \"data\": \"%s\"}, \"target\": "
                         "{\"format\": \"raw\", \"dtype\": \"uint8\", \"shape\": %s, "
                         "\"data\": \"%s\"}%s%s%s, %s}",
                         pred, v == 2 ? "" : ", \"shape\": ", v == 2 ? "" : shape, data, tshape, bt,
                         weight, v >= 3 ? (v == 3 ? bw32 : bw16) : "", v >= 3 ? "\"}" : "", spec);
            CHECK(len > 0 && (size_t)len < cap);
            char what[64];
            snprintf(what, sizeof what, "%s %s", mc ? "multiclass" : "binary",
                     (const char *[]){"float32", "bfloat16 raw", "float16 npy", "float32 + weight",
                                      "bfloat16 + float16 weight"}[v]);
            json_t *doc = post_200(srv, what, "/v1/score", body);
            if (v == 0 || v == 3) {
                json_decref(ref);
                ref = doc;
                continue;
            }
            bool same = doc && ref && same_answer(doc, ref, what);
            if (!same) {
                fprintf(stderr, "    %s: not the float32 answer\n", what);
            }
            CHECK(same);
            json_decref(doc);
        }
        json_decref(ref);
        /* a NaN among the bfloat16 logits: a 422 naming its flat index */
        xb[5] = 0x7fc0;
        free(b16);
        b16 = base64((const unsigned char *)xb, 2 * n);
        snprintf(body, cap,
                 "{\"prediction\": {\"format\": \"raw\", \"dtype\": \"bfloat16\", \"shape\": %s, "
                 "\"data\": \"%s\"}, \"target\": {\"format\": \"raw\", \"dtype\": \"uint8\", "
                 "\"shape\": %s, \"data\": \"%s\"}, %s}",
                 shape, b16, tshape, bt, spec);
        post_422(srv, "bfloat16 NaN", "/v1/score", body, "(flat index 5) is nan");
        free(xf);
        free(wf);
        free(xb);
        free(xh);
        free(wh);
        free(t);
        free(npy);
        free(b32);
        free(b16);
        free(bnpy);
        free(bt);
        free(bw32);
        free(bw16);
        free(body);
    }
    post_422(srv, "npy declared bfloat16", "/v1/score",
             "{\"prediction\": {\"format\": \"npy\", \"dtype\": \"bfloat16\", \"data\": "
             "\"k05VTVBZAQB2AHsnZGVzY3InOiAnPGYyJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzog"
             "KDIsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIC"
             "AgICAgIAoAPAA8\"}, \"target\": [0, 1]}",
             "send the array's bytes as format 'raw' with \"dtype\": \"bfloat16\"");
}

/* The groups, each named "e2e/NAME" for the filter (tests/filter.h). The functional groups need
 * nothing of the server but the API and --threads 2 --queue 64 (or deeper): they run in this
 * order against one server, or one someone else started (--url). The others each start a server
 * of their own. */
struct group {
    const char *name;
    void (*functional)(const struct hu_server *srv);
    void (*alone)(void);
};
static const struct group groups[] = {
    {"basics", test_basics, NULL},
    {"routing", test_routing, NULL},
    {"bad_bodies", test_bad_bodies, NULL},
    {"hand_values", test_hand_values, NULL},
    {"include_background", test_include_background, NULL},
    {"confusion_family", test_confusion_family, NULL},
    {"surface_reduction", test_surface_reduction, NULL},
    {"compressed", test_compressed, NULL},
    {"multipart", test_multipart, NULL},
    {"multipart_large", test_multipart_large, NULL},
    {"weight_map", test_weight_map, NULL},
    {"layouts", test_layouts, NULL},
    {"float32_extremes", test_float32_extremes, NULL},
    {"gzip_answer", test_gzip_answer, NULL},
    {"zstd", test_zstd, NULL},
    {"zstd_answer", test_zstd_answer, NULL},
    {"html_report", test_html_report, NULL},
    {"concurrent_small", test_concurrent_small, NULL},
    {"request_id", test_request_id, NULL},
    {"soft_targets", test_soft_targets, NULL},
    {"narrow_floats", test_narrow_floats, NULL},
    {"metrics", NULL, test_metrics_fresh},
    {"body_limit", NULL, test_body_limit},
    {"ops_limits", NULL, test_ops_limits},
    {"access_log_off", NULL, test_access_log_off},
    {"per_ip", NULL, test_per_ip},
    {"max_connections", NULL, test_max_connections},
    {"inflight_memory", NULL, test_inflight_memory},
    {"shape_limits", NULL, test_shape_limits},
    {"limit_flags", NULL, test_limit_flags},
    {"overload", NULL, test_overload_heavy},
    {"drain", NULL, test_drain_heavy},
};
#define N_GROUPS (sizeof groups / sizeof groups[0])

static bool selected(const struct group *g)
{
    char full[128];
    snprintf(full, sizeof full, "e2e/%s", g->name);
    return filter_match(filter_pattern(), full);
}

/* The selected functional groups against srv. */
static void run_functional(const struct hu_server *srv)
{
    for (size_t i = 0; i < N_GROUPS; i++) {
        if (groups[i].functional && selected(&groups[i])) {
            groups[i].functional(srv);
        }
    }
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--golden") == 0) {
            i++; /* not needed: every value here is from the contract or by hand */
        } else if (i + 1 < argc && strcmp(argv[i], "--seglossd") == 0) {
            seglossd_path = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--url") == 0) {
            server_url = argv[++i];
        } else if (strcmp(argv[i], "--list") == 0) {
            for (size_t g = 0; g < N_GROUPS; g++) {
                printf("e2e/%s\n", groups[g].name);
            }
            return 0;
        } else {
            seglossd_path = server_url = NULL;
            break;
        }
    }
    if ((seglossd_path != NULL) == (server_url != NULL)) {
        fprintf(stderr, "usage: e2e --golden DIR (--seglossd PATH | --url http://127.0.0.1:PORT) "
                        "| e2e --list\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "e2e: curl_global_init failed\n");
        return 1;
    }
    bool any_functional = false;
    for (size_t i = 0; i < N_GROUPS; i++) {
        any_functional |= groups[i].functional && selected(&groups[i]);
    }

    /* one server for the functional groups; a queue deep enough for 32 tiny requests */
    static const char *const main_args[] = {"--threads", "2", "--queue", "64", NULL};
    struct hu_server srv;
    if (server_url) {
        char err[512];
        int rc = any_functional
                     ? hu_server_attach(&srv, server_url, HU_START_TIMEOUT, err, sizeof err)
                     : 0;
        if (any_functional) {
            CHECK(rc == 0);
        }
        if (rc != 0) {
            fprintf(stderr, "    main: %s\n", err);
        } else if (any_functional) {
            run_functional(&srv);
        }
        curl_global_cleanup();
        return check_summary("e2e");
    }
    if (any_functional && start_server(&srv, main_args, "main") == 0) {
        run_functional(&srv);
        stop_server(&srv, "main");
    }
    for (size_t i = 0; i < N_GROUPS; i++) {
        if (groups[i].alone && selected(&groups[i])) {
            groups[i].alone();
        }
    }
    free(heavy_);

    curl_global_cleanup();
    return check_summary("e2e");
}
