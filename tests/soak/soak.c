/* soak.c - a bounded load/soak run of seglossd over loopback with libcurl.
 *
 * Usage: soak --seglossd PATH [--seconds N] [--conns N] [--no-rss]
 *
 * Phase 1 (mix): N seconds (default 20) with --conns (default 24) connections kept busy by a
 *   round-robin mix of valid requests (small lists, 8x256x256 npy+gzip base64 JSON, a
 *   gzip-compressed body, multipart) and invalid ones (bad JSON, bad parameters, NaN, shape
 *   mismatch, bad base64, a gzip bomb, unknown path); every answer must have its expected status.
 * Phase 2 (overload): a --threads 1 --queue 2 server flooded by 32 concurrent 8x256x256 requests
 *   for a few rounds: answers must be 200 or 503 with Retry-After, at least one of each, every
 *   request answered.
 * Phase 3 (peak RSS): 64 concurrent 8x512x512 float32 requests (npy+gzip base64 JSON, cross
 *   entropy + dice + focal, dice/iou metrics) against default servers with --queue 64 and --queue
 *   8, and with --max-inflight-mb 128; prints VmHWM of the server.
 * Any 5xx other than 503, a wrong status for a valid request, or a dead server is a failure.
 * Ends with "soak: N passed, M failed" (one check per phase property); exits 1 on failure.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <zlib.h>

#include "../http_util.h"

#define MAX_CONNS 128

/* ---- request bodies ------------------------------------------------------------------------ */

struct req {
    const char *name;
    const char *path;
    const char *ctype;    /* Content-Type header line, NULL: none (multipart sets its own) */
    const char *encoding; /* Content-Encoding header line or NULL */
    char *body;
    size_t len;
    /* multipart: spec + pred + mask parts when mp_spec is set */
    char *mp_spec, *mp_pred, *mp_mask;
    size_t mp_spec_len, mp_pred_len, mp_mask_len;
    long want;  /* expected status */
    bool valid; /* a valid request: a wrong status is a failure even if it is a 4xx */
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

/* A .npy v1.0 file of shape (n, h, w) with descr; data copied after the header. */
static char *make_npy(const char *descr, int n, int h, int w, const void *data, size_t bytes,
                      size_t *out_len)
{
    char hdr[256];
    int hl = snprintf(hdr, sizeof hdr,
                      "{'descr': '%s', 'fortran_order': False, 'shape': (%d, %d, %d), }", descr, n,
                      h, w);
    size_t total = 10 + (size_t)hl + 1;
    size_t pad = (64 - total % 64) % 64;
    size_t hlen = (size_t)hl + pad + 1;
    char *out = malloc(10 + hlen + bytes);
    if (!out) {
        return NULL;
    }
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    out[8] = (char)(hlen & 0xff);
    out[9] = (char)(hlen >> 8);
    memcpy(out + 10, hdr, (size_t)hl);
    memset(out + 10 + hl, ' ', pad);
    out[10 + hlen - 1] = '\n';
    memcpy(out + 10 + hlen, data, bytes);
    *out_len = 10 + hlen + bytes;
    return out;
}

static char *gzip_bytes(const void *in, size_t len, int level, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        return NULL;
    }
    size_t cap = deflateBound(&z, (uLong)len);
    char *out = malloc(cap);
    if (!out) {
        deflateEnd(&z);
        return NULL;
    }
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    *out_len = z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

static char *base64(const void *in, size_t len)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = in;
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (!out) {
        return NULL;
    }
    size_t o = 0, i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = tbl[v >> 18];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = tbl[(v >> 6) & 63];
        out[o++] = tbl[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0);
        out[o++] = tbl[v >> 18];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}

/* Prediction logits and a 0/1 target of shape (n, h, w) as .npy (gzip level 1 when gz) files. */
static void make_arrays(int n, int h, int w, bool gz, char **pred, size_t *pred_len, char **mask,
                        size_t *mask_len)
{
    size_t px = (size_t)n * h * w;
    float *x = malloc(px * sizeof *x);
    unsigned char *y = malloc(px);
    for (size_t i = 0; i < px; i++) {
        /* blobs: a coarse checkerboard of 32-pixel cells, plus noise in the logits */
        size_t c = i % (size_t)w, r = (i / (size_t)w) % (size_t)h;
        y[i] = (unsigned char)(((c / 32) + (r / 32)) & 1);
        x[i] = (y[i] ? 1.5f : -1.5f) + ((float)(rnd() % 2001) - 1000.0f) / 400.0f;
    }
    size_t pl, ml;
    char *p = make_npy("<f4", n, h, w, x, px * sizeof *x, &pl);
    char *m = make_npy("|u1", n, h, w, y, px, &ml);
    free(x);
    free(y);
    if (gz) {
        *pred = gzip_bytes(p, pl, 1, pred_len);
        *mask = gzip_bytes(m, ml, 1, mask_len);
        free(p);
        free(m);
    } else {
        *pred = p;
        *pred_len = pl;
        *mask = m;
        *mask_len = ml;
    }
}

static const char *const big_losses =
    "\"losses\": [{\"name\": \"cross_entropy\"}, {\"name\": \"dice\"}, {\"name\": \"focal\"}], "
    "\"metrics\": [\"dice\", \"iou\"]";

/* A JSON score body with npy+gzip base64 arrays of shape (n, h, w). */
static char *big_json(int n, int h, int w, size_t *len)
{
    char *pred, *mask;
    size_t pl, ml;
    make_arrays(n, h, w, true, &pred, &pl, &mask, &ml);
    char *pb = base64(pred, pl), *mb = base64(mask, ml);
    free(pred);
    free(mask);
    size_t cap = strlen(pb) + strlen(mb) + 512;
    char *body = malloc(cap);
    int k = snprintf(body, cap,
                     "{\"prediction\": {\"format\": \"npy\", \"compression\": \"gzip\", \"data\": "
                     "\"%s\"}, \"target\": {\"format\": \"npy\", \"compression\": \"gzip\", "
                     "\"data\": \"%s\"}, %s}",
                     pb, mb, big_losses);
    free(pb);
    free(mb);
    *len = (size_t)k;
    return body;
}

static void set_body(struct req *r, const char *s)
{
    r->body = strdup(s);
    r->len = strlen(s);
}

#define SMALL_SPEC                                                                                 \
    "{\"prediction\": {\"format\": \"list\", \"dtype\": \"float32\", \"shape\": [1, 2, 2], "       \
    "\"data\": [0.5, 0.6, 0.2, 0.1]}, \"prediction_type\": \"probabilities\", "                    \
    "\"target\": [[[1, 1], [0, 0]]], \"losses\": [{\"name\": \"combo\", \"terms\": [{\"name\": "   \
    "\"cross_entropy\"}, {\"name\": \"dice\"}]}, {\"name\": \"focal\", \"gamma\": 2}], "           \
    "\"metrics\": [\"dice\", \"iou\", {\"name\": \"fbeta\", \"beta\": 2}]}"

/* Builds the phase 1 mix; returns the count. */
static int build_mix(struct req *q)
{
    int n = 0;
    const char *json = "Content-Type: application/json";
    struct req *r;

    r = &q[n++];
    *r = (struct req){"small", "/v1/score", json, NULL, NULL, 0,   NULL,
                      NULL,    NULL,        0,    0,    0,    200, true};
    set_body(r, SMALL_SPEC);

    r = &q[n++];
    *r = (struct req){"multiclass", "/v1/score", json, NULL, NULL, 0,   NULL,
                      NULL,         NULL,        0,    0,    0,    200, true};
    set_body(r, "{\"prediction\": [[[[2.0, 0.5]], [[0.1, 1.5]], [[-1.0, 0.0]]]], \"target\": "
                "[[[0, 1]]], \"losses\": [{\"name\": \"cross_entropy\", \"class_weights\": [1, 2, "
                "2]}, {\"name\": \"lovasz_softmax\"}], \"metrics\": [\"dice\", \"confusion\", "
                "\"hausdorff\"], \"include_background\": false}");

    r = &q[n++];
    *r = (struct req){"8x256x256 npy+gzip",
                      "/v1/score",
                      json,
                      NULL,
                      NULL,
                      0,
                      NULL,
                      NULL,
                      NULL,
                      0,
                      0,
                      0,
                      200,
                      true};
    r->body = big_json(8, 256, 256, &r->len);

    r = &q[n++];
    *r = (struct req){
        "gzip body", "/v1/score", json, "Content-Encoding: gzip", NULL, 0, NULL, NULL, NULL, 0, 0,
        0,           200,         true};
    {
        size_t l;
        char *raw = big_json(2, 64, 64, &l);
        r->body = gzip_bytes(raw, l, 6, &r->len);
        free(raw);
    }

    r = &q[n++];
    *r = (struct req){"multipart", "/v1/score", NULL, NULL, NULL, 0,   NULL,
                      NULL,        NULL,        0,    0,    0,    200, true};
    {
        char spec[512];
        snprintf(spec, sizeof spec,
                 "{\"prediction\": {\"format\": \"npy\", \"part\": \"pred\", \"compression\": "
                 "\"gzip\"}, \"target\": {\"format\": \"npy\", \"part\": \"mask\", "
                 "\"compression\": \"gzip\"}, %s}",
                 big_losses);
        r->mp_spec = strdup(spec);
        r->mp_spec_len = strlen(spec);
        make_arrays(2, 128, 128, true, &r->mp_pred, &r->mp_pred_len, &r->mp_mask, &r->mp_mask_len);
    }

    r = &q[n++];
    *r = (struct req){
        "weight-map", "/v1/weight-map", json, NULL, NULL, 0, NULL, NULL, NULL, 0, 0, 0, 200, true};
    set_body(r, "{\"target\": [[[1, 0, 0, 0, 0, 0, 1]]], \"w0\": 10, \"sigma\": 5}");

    r = &q[n++];
    *r = (struct req){"bad json", "/v1/score", json, NULL, NULL, 0,   NULL,
                      NULL,       NULL,        0,    0,    0,    400, false};
    set_body(r, "{\"prediction\": [0.5, ");

    r = &q[n++];
    *r = (struct req){"bad param", "/v1/score", json, NULL, NULL, 0,   NULL,
                      NULL,        NULL,        0,    0,    0,    422, false};
    set_body(r, "{\"prediction\": [[[0.5]]], \"target\": [[[1]]], \"losses\": [{\"name\": "
                "\"focal\", \"gamma\": -1}]}");

    r = &q[n++];
    *r = (struct req){"NaN", "/v1/score", json, NULL, NULL, 0,   NULL,
                      NULL,  NULL,        0,    0,    0,    422, false};
    {
        float v[4] = {0.5f, NAN, 0.2f, 0.1f};
        unsigned char y[4] = {1, 1, 0, 0};
        size_t pl, ml;
        char *p = make_npy("<f4", 1, 2, 2, v, sizeof v, &pl);
        char *m = make_npy("|u1", 1, 2, 2, y, sizeof y, &ml);
        char *pb = base64(p, pl), *mb = base64(m, ml);
        char buf[2048];
        snprintf(buf, sizeof buf,
                 "{\"prediction\": {\"format\": \"npy\", \"data\": \"%s\"}, \"target\": "
                 "{\"format\": \"npy\", \"data\": \"%s\"}, \"losses\": [{\"name\": \"dice\"}]}",
                 pb, mb);
        set_body(r, buf);
        free(p);
        free(m);
        free(pb);
        free(mb);
    }

    r = &q[n++];
    *r = (struct req){
        "shape mismatch", "/v1/score", json, NULL, NULL, 0, NULL, NULL, NULL, 0, 0, 0, 422, false};
    set_body(r, "{\"prediction\": [[[0.5, 0.6], [0.2, 0.1]]], \"target\": [[[1, 1, 0]]], "
                "\"losses\": [{\"name\": \"dice\"}]}");

    r = &q[n++];
    *r = (struct req){"bad base64", "/v1/score", json, NULL, NULL, 0,   NULL,
                      NULL,         NULL,        0,    0,    0,    400, false};
    set_body(r, "{\"prediction\": {\"format\": \"npy\", \"data\": \"k05VTVBZ!!!*\"}, \"target\": "
                "[[[1]]], \"losses\": [{\"name\": \"dice\"}]}");

    r = &q[n++];
    *r = (struct req){"array bomb", "/v1/score", json, NULL, NULL, 0,   NULL,
                      NULL,         NULL,        0,    0,    0,    400, false};
    {
        /* a 2x2 uint8 raw array whose gzip stream inflates to 256 MiB of zeros */
        size_t zl = (size_t)256 << 20, gl;
        char *zeros = calloc(1, zl);
        char *gz = gzip_bytes(zeros, zl, 9, &gl);
        free(zeros);
        char *b = base64(gz, gl);
        free(gz);
        size_t cap = strlen(b) + 512;
        char *buf = malloc(cap);
        snprintf(buf, cap,
                 "{\"prediction\": {\"format\": \"raw\", \"dtype\": \"uint8\", \"shape\": [1, 2, "
                 "2], \"compression\": \"gzip\", \"data\": \"%s\"}, \"prediction_type\": "
                 "\"labels\", \"target\": [[[1, 1], [0, 0]]], \"losses\": [{\"name\": \"dice\"}]}",
                 b);
        free(b);
        r->body = buf;
        r->len = strlen(buf);
    }

    r = &q[n++];
    *r = (struct req){
        "body bomb", "/v1/score", json, "Content-Encoding: gzip", NULL, 0, NULL, NULL, NULL, 0, 0,
        0,           413,         false};
    {
        /* a 1 GiB body of spaces in a ~1 MiB gzip stream */
        size_t zl = (size_t)1 << 30;
        char *sp = malloc(zl);
        memset(sp, ' ', zl);
        r->body = gzip_bytes(sp, zl, 9, &r->len);
        free(sp);
    }

    r = &q[n++];
    *r = (struct req){"unknown path", "/v1/nope", json, NULL, NULL, 0,   NULL,
                      NULL,           NULL,       0,    0,    0,    404, false};
    set_body(r, "{}");
    return n;
}

static void free_req(struct req *r)
{
    free(r->body);
    free(r->mp_spec);
    free(r->mp_pred);
    free(r->mp_mask);
}

/* ---- the driver ---------------------------------------------------------------------------- */

struct counts {
    long by_status[600];
    long curl_errors, wrong, bad5xx, total, retry_after_missing;
};

struct slot {
    struct hu_xfer x;
    int req;
    bool busy;
};

static int setup_xfer(struct hu_xfer *x, const struct hu_server *s, const struct req *r)
{
    char url[128];
    hu_url(s, r->path, url, sizeof url);
    const char *hdrs[3] = {r->ctype, r->ctype ? r->encoding : NULL, NULL};
    if (hu_xfer_setup(x, "POST", url, hdrs, r->mp_spec ? NULL : r->body, r->mp_spec ? 0 : r->len,
                      120L) != 0) {
        return -1;
    }
    if (r->mp_spec) {
        x->mime = curl_mime_init(x->easy);
        const char *names[3] = {"spec", "pred", "mask"};
        const char *data[3] = {r->mp_spec, r->mp_pred, r->mp_mask};
        size_t lens[3] = {r->mp_spec_len, r->mp_pred_len, r->mp_mask_len};
        for (int i = 0; i < 3; i++) {
            curl_mimepart *p = curl_mime_addpart(x->mime);
            curl_mime_name(p, names[i]);
            curl_mime_data(p, data[i], lens[i]);
            if (i) {
                curl_mime_filename(p, names[i]);
            }
        }
        curl_easy_setopt(x->easy, CURLOPT_MIMEPOST, x->mime);
    }
    return 0;
}

/* Runs requests from q (picked by pick(i) for the i-th request) over conns concurrent transfers
 * until `total` requests were started (total < 0: unbounded) and `seconds` passed; every answer
 * is checked against want (or 200/503 in overload mode). Returns requests completed. */
static long drive(const struct hu_server *s, const struct req *q, int nq, int conns, double seconds,
                  long total, bool overload, struct counts *c, bool verbose)
{
    CURLM *m = curl_multi_init();
    struct slot *slots = calloc((size_t)conns, sizeof *slots);
    double end = hu_now() + seconds;
    long started = 0, done = 0;
    int running = 0;
    for (;;) {
        bool more = (total < 0 || started < total) && (total >= 0 || hu_now() < end);
        for (int i = 0; more && i < conns; i++) {
            if (slots[i].busy) {
                continue;
            }
            int k = (int)(started % nq);
            if (setup_xfer(&slots[i].x, s, &q[k]) != 0) {
                c->curl_errors++;
                hu_xfer_cleanup(&slots[i].x);
                continue;
            }
            slots[i].req = k;
            slots[i].busy = true;
            curl_multi_add_handle(m, slots[i].x.easy);
            started++;
            more = (total < 0 || started < total);
        }
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE) {
                continue;
            }
            struct slot *sl = NULL;
            for (int i = 0; i < conns; i++) {
                if (slots[i].busy && slots[i].x.easy == msg->easy_handle) {
                    sl = &slots[i];
                }
            }
            if (!sl) {
                continue;
            }
            hu_xfer_finish(&sl->x, msg->data.result);
            curl_multi_remove_handle(m, sl->x.easy);
            const struct req *r = &q[sl->req];
            long st = sl->x.status;
            c->total++;
            done++;
            if (sl->x.rc != CURLE_OK) {
                c->curl_errors++;
                if (verbose || c->curl_errors <= 5) {
                    printf("  %s: no answer: %s\n", r->name, sl->x.errbuf);
                }
            } else {
                c->by_status[st >= 0 && st < 600 ? st : 0]++;
                if (st >= 500 && st != 503) {
                    c->bad5xx++;
                    printf("  %s: %ld: %.200s\n", r->name, st, sl->x.body.data);
                }
                bool ok = overload ? (st == 200 || st == 503) : st == r->want;
                if (st == 503 && !hu_xfer_header(&sl->x, "Retry-After", NULL, 0)) {
                    c->retry_after_missing++;
                    ok = false;
                }
                if (!ok && (st < 500 || st == 503)) {
                    c->wrong++;
                    if (c->wrong <= 10) {
                        printf("  %s: status %ld, want %ld: %.200s\n", r->name, st,
                               overload ? 200L : r->want, sl->x.body.data);
                    }
                }
            }
            hu_xfer_cleanup(&sl->x);
            sl->busy = false;
        }
        bool any_busy = false;
        for (int i = 0; i < conns; i++) {
            any_busy |= slots[i].busy;
        }
        bool want_more = total >= 0 ? started < total : hu_now() < end;
        if (!any_busy && !want_more) {
            break;
        }
        curl_multi_poll(m, NULL, 0, 20, NULL);
    }
    free(slots);
    curl_multi_cleanup(m);
    return done;
}

static long vm_hwm_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmHWM:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
        }
    }
    if (f) {
        fclose(f);
    }
    return kb;
}

static void print_counts(const char *phase, const struct counts *c, double secs)
{
    printf("%s: %ld requests in %.1f s (%.1f req/s); statuses:", phase, c->total, secs,
           secs > 0 ? (double)c->total / secs : 0.0);
    for (int st = 0; st < 600; st++) {
        if (c->by_status[st]) {
            printf(" %d x %ld", st, c->by_status[st]);
        }
    }
    printf("; %ld without an answer\n", c->curl_errors);
}

static int passed, failed;
static void check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(bool ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s ", ok ? "ok  " : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    if (ok) {
        passed++;
    } else {
        failed++;
    }
}

static bool start(struct hu_server *s, const char *path, const char *const *args)
{
    char err[512];
    if (hu_server_start(s, path, args, err, sizeof err) != 0) {
        check(false, "start seglossd: %s", err);
        return false;
    }
    return true;
}

static void stop(struct hu_server *s, const char *phase)
{
    char err[256];
    bool alive = hu_server_alive(s);
    check(alive, "%s: seglossd still running at the end", phase);
    if (hu_server_stop(s, 60.0, err, sizeof err) != 0) {
        check(false, "%s: stop: %s", phase, err);
        return;
    }
    check(alive && WIFEXITED(s->status) && WEXITSTATUS(s->status) == 0,
          "%s: seglossd exits 0 after SIGTERM", phase);
}

/* Phase 3 for one set of server flags; returns VmHWM in KiB. */
static long rss_run(const char *path, const char *const *args, const struct req *big,
                    const char *label, bool overload)
{
    struct hu_server s;
    if (!start(&s, path, args)) {
        return -1;
    }
    long base = vm_hwm_kb(s.pid);
    struct counts c = {0};
    double t0 = hu_now();
    drive(&s, big, 1, 64, 600, 64, overload, &c, true);
    double dt = hu_now() - t0;
    long hwm = vm_hwm_kb(s.pid);
    char phase[128];
    snprintf(phase, sizeof phase, "rss %s", label);
    print_counts(phase, &c, dt);
    if (overload) {
        check(c.curl_errors == 0 && c.wrong == 0 && c.bad5xx == 0 && c.by_status[200] > 0,
              "%s: 64 concurrent 8x512x512 requests answered 200 or 503", phase);
    } else {
        check(c.by_status[200] == 64, "%s: 64 concurrent 8x512x512 requests all answered 200",
              phase);
    }
    printf("%s: seglossd peak RSS (VmHWM) %.1f MiB (%.1f MiB at start), %.0f Mpix/s\n", phase,
           hwm / 1024.0, base / 1024.0, 64.0 * 8 * 512 * 512 / 1e6 / dt);
    stop(&s, phase);
    return hwm;
}

int main(int argc, char **argv)
{
    const char *seglossd = NULL;
    double seconds = 20;
    int conns = 24;
    bool rss = true;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--seglossd") == 0) {
            seglossd = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--seconds") == 0) {
            seconds = atof(argv[++i]);
        } else if (i + 1 < argc && strcmp(argv[i], "--conns") == 0) {
            conns = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--no-rss") == 0) {
            rss = false;
        } else {
            seglossd = NULL;
            break;
        }
    }
    if (!seglossd || seconds <= 0 || seconds > 3600 || conns < 1 || conns > MAX_CONNS) {
        fprintf(stderr,
                "usage: soak --seglossd PATH [--seconds 1..3600] [--conns 1..%d] "
                "[--no-rss]\n",
                MAX_CONNS);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    setenv("SEGLOSS_ACCESS_LOG", "0", 1); /* keep the output readable */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return 1;
    }

    /* phase 1: the mix */
    struct req q[32];
    int nq = build_mix(q);
    struct hu_server s;
    if (start(&s, seglossd, NULL)) {
        struct counts c = {0};
        double t0 = hu_now();
        drive(&s, q, nq, conns, seconds, -1, false, &c, false);
        double dt = hu_now() - t0;
        print_counts("mix", &c, dt);
        printf("mix: seglossd peak RSS (VmHWM) %.1f MiB\n", vm_hwm_kb(s.pid) / 1024.0);
        check(c.total > 0 && c.curl_errors == 0, "mix: every request answered (%ld)", c.total);
        check(c.bad5xx == 0, "mix: no 5xx other than 503 (%ld)", c.bad5xx);
        check(c.wrong == 0, "mix: every answer has its expected status (%ld wrong)", c.wrong);
        stop(&s, "mix");
    }

    /* phase 2: overload */
    const char *const ov_args[] = {"--threads", "1", "--queue", "2", NULL};
    int big = 2; /* the 8x256x256 request */
    if (start(&s, seglossd, ov_args)) {
        struct counts c = {0};
        double t0 = hu_now();
        drive(&s, &q[big], 1, 32, 600, 192, true, &c, false);
        double dt = hu_now() - t0;
        print_counts("overload", &c, dt);
        check(c.curl_errors == 0, "overload: every request answered (%ld)", c.total);
        check(c.by_status[200] > 0 && c.by_status[503] > 0 && c.wrong == 0 && c.bad5xx == 0,
              "overload: only 200 and 503 with Retry-After, some of each");
        stop(&s, "overload");
    }
    for (int i = 0; i < nq; i++) {
        free_req(&q[i]);
    }

    /* phase 3: peak RSS under 64 concurrent 8x512x512 requests */
    if (rss) {
        struct req bigreq = {"8x512x512 npy+gzip",
                             "/v1/score",
                             "Content-Type: application/json",
                             NULL,
                             NULL,
                             0,
                             NULL,
                             NULL,
                             NULL,
                             0,
                             0,
                             0,
                             200,
                             true};
        bigreq.body = big_json(8, 512, 512, &bigreq.len);
        printf("rss: request body %.1f MiB\n", bigreq.len / 1048576.0);
        /* 64 connections from one address sit exactly at the default per-IP cap, which refuses
         * some of them while 503'd connections are still closing: measure memory, not that */
        setenv("SEGLOSS_MAX_PER_IP", "0", 1);
        const char *const a64[] = {"--queue", "64", NULL};
        const char *const a8[] = {"--queue", "8", NULL};
        const char *const a8t1[] = {"--queue", "8", "--threads", "1", NULL};
        rss_run(seglossd, a64, &bigreq, "--queue 64", false);
        rss_run(seglossd, a8, &bigreq, "--queue 8", true);
        rss_run(seglossd, a8t1, &bigreq, "--queue 8 --threads 1", true);
        const char *const m128[] = {"--max-inflight-mb", "128", "--max-body-mb", "64", NULL};
        rss_run(seglossd, m128, &bigreq, "--max-inflight-mb 128", true);
        free_req(&bigreq);
    }
    curl_global_cleanup();
    printf("soak: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
