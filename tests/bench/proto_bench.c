/* proto_bench.c - `make proto-bench`: where proto/'s time goes on a large /v1/score body, stage
 * by stage, on one core (no pool): the skeleton scan, jansson on the skeleton (and, to compare,
 * on the whole body), base64, inflate (libdeflate, and zlib to compare), the rest of each
 * array's decoding (npy header, checks, allocation), the answer's JSON, and slp_score_request
 * end to end minus the lib's sl_score. Each figure is the best of --reps runs (the machine is
 * shared: the best run is the one least disturbed).
 *
 * The body is the reference payload unless a file is named: an 8x512x512 float32 logits
 * prediction and a uint8 mask, each as {"format": "npy", "compression": "gzip", "data": base64},
 * built here as tests/bench/compare/payload.py builds its large.json (mask ~30% foreground,
 * logits normal(0, 3) nudged towards it, gzip level 1), losses cross_entropy, dice and focal,
 * metrics dice and iou.
 *
 *   proto_bench [--reps N] [BODY.json]
 *
 * The gzip'd prediction is also inflated, compressed again with zstd at levels 1 and 3 and
 * decoded as proto/inflate.c does (one ZSTD_decompressDCtx call when the frame declares its
 * size, which is how clients send it; ZSTD_decompressStream otherwise), so that zstd's and
 * libdeflate's MB/s stand on the same random float32 logits. A body whose arrays are zstd
 * (tests/bench/compare/payload.py's large_zstd.json) gets its own rows.
 *
 * A benchmark, not a test: it asserts nothing beyond the request being answered 200.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>
#include <zstd.h>

#include "../../proto/internal.h" /* not lib/internal.h, which -Ilib finds first */
#include "array_internal.h"
#include "inflate.h"
#include "segloss.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Best-of-reps milliseconds of STMT (a statement; SETUP runs untimed before each). */
#define BEST(out, reps, SETUP, STMT)                                                               \
    do {                                                                                           \
        (out) = 1e30;                                                                              \
        for (int r_ = 0; r_ < (reps); r_++) {                                                      \
            SETUP;                                                                                 \
            double t0_ = now_ms();                                                                 \
            STMT;                                                                                  \
            double dt_ = now_ms() - t0_;                                                           \
            (out) = dt_ < (out) ? dt_ : (out);                                                     \
        }                                                                                          \
    } while (0)

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "proto_bench: %s: %s\n", what, msg);
    exit(1);
}

/* ---- the reference payload ---- */

/* xorshift64*: reproducible inputs without libc's rand state */
static uint64_t next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static double uniform(uint64_t *s)
{
    return ((double)(next(s) >> 11) + 0.5) / 9007199254740992.0;
}

/* .npy v1.0 bytes (header padded to 64 as numpy writes it) of C-order data. */
static unsigned char *npy_file(const char *descr, const int64_t *shape, int ndim, const void *data,
                               size_t dlen, size_t *len)
{
    char dict[200];
    int n =
        snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int k = 0; k < ndim; k++) {
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%s%lld", k ? ", " : "",
                      (long long)shape[k]);
    }
    n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
    size_t total = (10 + (size_t)n + 1 + 63) / 64 * 64, hlen = total - 10;
    unsigned char *b = malloc(total + dlen);
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (unsigned char)(hlen & 0xff);
    b[9] = (unsigned char)(hlen >> 8);
    memcpy(b + 10, dict, (size_t)n);
    memset(b + 10 + n, ' ', hlen - (size_t)n - 1);
    b[total - 1] = '\n';
    memcpy(b + total, data, dlen);
    *len = total + dlen;
    return b;
}

/* gzip level 1 (what payload.py's gzip.compress(..., 1) writes, through the same zlib) */
static unsigned char *gzip1(const unsigned char *in, size_t len, size_t *outlen)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, 1, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        die("gzip", "deflateInit2");
    }
    size_t cap = deflateBound(&zs, (uLong)len) + 64;
    unsigned char *o = malloc(cap);
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)len;
    zs.next_out = o;
    zs.avail_out = (uInt)cap;
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END) {
        die("gzip", "deflate");
    }
    *outlen = cap - zs.avail_out;
    deflateEnd(&zs);
    return o;
}

static void b64_put(char *o, const unsigned char *p, size_t n)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t k = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        v |= i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0;
        v |= i + 2 < n ? p[i + 2] : 0;
        o[k++] = al[v >> 18 & 63];
        o[k++] = al[v >> 12 & 63];
        o[k++] = i + 1 < n ? al[v >> 6 & 63] : '=';
        o[k++] = i + 2 < n ? al[v & 63] : '=';
    }
    o[k] = '\0';
}

/* The reference payload; plain: the arrays as uncompressed .npy instead (the body a client
 * would gzip whole, Content-Encoding: gzip). */
static char *reference_body(size_t *len, int plain)
{
    enum { N = 8, H = 512, W = 512 };
    const size_t px = (size_t)N * H * W;
    const int64_t shape[3] = {N, H, W};
    float *logits = malloc(px * sizeof *logits);
    uint8_t *mask = malloc(px);
    uint64_t seed = 20240611;
    for (size_t i = 0; i < px; i++) {
        mask[i] = uniform(&seed) < 0.3;
        /* Box-Muller: normal(0, 3) plus 2 towards the mask */
        double g = sqrt(-2.0 * log(uniform(&seed))) * cos(6.283185307179586 * uniform(&seed));
        logits[i] = (float)(3.0 * g + 2.0 * (2.0 * mask[i] - 1.0));
    }
    size_t nl, nm, gl, gm;
    unsigned char *fl = npy_file("<f4", shape, 3, logits, px * sizeof *logits, &nl);
    unsigned char *fm = npy_file("|u1", shape, 3, mask, px, &nm);
    unsigned char *zl = plain ? NULL : gzip1(fl, nl, &gl), *zm = plain ? NULL : gzip1(fm, nm, &gm);
    if (plain) {
        zl = malloc(nl);
        zm = malloc(nm);
        memcpy(zl, fl, nl);
        memcpy(zm, fm, nm);
        gl = nl;
        gm = nm;
    }
    const char *head = plain ? "{\"prediction\":{\"format\":\"npy\",\"data\":\""
                             : "{\"prediction\":{\"format\":\"npy\",\"compression\":\"gzip\","
                               "\"data\":\"";
    const char *mid = plain ? "\"},\"target\":{\"format\":\"npy\",\"data\":\""
                            : "\"},\"target\":{\"format\":\"npy\",\"compression\":\"gzip\","
                              "\"data\":\"";
    static const char tail[] =
        "\"},\"prediction_type\":\"logits\",\"threshold\":0.5,\"losses\":[{\"name\":"
        "\"cross_entropy\"},{\"name\":\"dice\",\"smooth\":0},{\"name\":\"focal\",\"alpha\":0.25,"
        "\"gamma\":2}],\"metrics\":[\"dice\",\"iou\"]}";
    size_t cap = strlen(head) + strlen(mid) + sizeof tail + (gl + 2) / 3 * 4 + (gm + 2) / 3 * 4 + 8;
    char *b = malloc(cap);
    size_t at = 0;
    at += (size_t)sprintf(b + at, "%s", head);
    b64_put(b + at, zl, gl);
    at += strlen(b + at);
    at += (size_t)sprintf(b + at, "%s", mid);
    b64_put(b + at, zm, gm);
    at += strlen(b + at);
    at += (size_t)sprintf(b + at, "%s", tail);
    free(logits);
    free(mask);
    free(fl);
    free(fm);
    free(zl);
    free(zm);
    *len = at;
    return b;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        die(path, "cannot open");
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc(n > 0 ? (size_t)n : 1);
    if (n < 0 || fread(b, 1, (size_t)n, f) != (size_t)n) {
        die(path, "cannot read");
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void row(const char *stage, double ms, double bytes)
{
    if (bytes > 0) {
        printf("  %-40s %9.3f ms %9.0f MB/s\n", stage, ms, bytes / ms / 1e3);
    } else {
        printf("  %-40s %9.3f ms\n", stage, ms);
    }
}

/* zstd against libdeflate on the same plain bytes (a whole .npy file of isz bytes, whose gzip
 * -1 stream took gzip_ms to inflate): compress at levels 1 and 3 (the client's cost), decode in
 * one call and streaming (the server's). */
static void bench_zstd(const char *name, const unsigned char *plain, size_t isz, double gzip_ms,
                       int reps)
{
    char msg[512], label[80];
    size_t cap = ZSTD_compressBound(isz);
    unsigned char *z = malloc(cap), *o = malloc(isz ? isz : 1);
    for (int level = 1; level <= 3; level += 2) {
        size_t zl = 0;
        double t;
        BEST(t, reps < 5 ? reps : 5, (void)0, zl = ZSTD_compress(z, cap, plain, isz, level));
        if (ZSTD_isError(zl)) {
            die(name, ZSTD_getErrorName(zl));
        }
        snprintf(label, sizeof label, "%s: zstd -%d compress (%zu -> %zu, %.3fx)", name, level, isz,
                 zl, (double)isz / (double)zl);
        row(label, t, (double)isz);
        int ok = 0;
        BEST(t, reps, (void)0, ok = slp__inflate_whole(z, zl, SLP_COMP_ZSTD, o, isz));
        if (!ok || memcmp(o, plain, isz) != 0) {
            die(name, "zstd's one call did not give the bytes back");
        }
        snprintf(label, sizeof label, "%s: zstd -%d decode, one call", name, level);
        row(label, t, (double)isz);
        if (level == 1) {
            printf("  %-40s %9.2fx\n", "  libdeflate time / zstd -1 time", gzip_ms / t);
        }
        BEST(t, reps < 5 ? reps : 5, (void)0, {
            struct slp__inflater zi;
            size_t got = 0;
            slp__inflater_init(&zi, z, zl, SLP_COMP_ZSTD, name, name, msg, sizeof msg);
            slp__inflater_read(&zi, o, isz, &got, msg, sizeof msg);
            slp__inflater_end(&zi);
        });
        snprintf(label, sizeof label, "%s: zstd -%d decode, streaming", name, level);
        row(label, t, (double)isz);
    }
    free(z);
    free(o);
}

/* The stages of one array of the spec: base64, inflate, the rest. Returns its decode total. */
static double bench_array(json_t *root, struct slp__jdoc *doc, const char *name,
                          const struct slp_limits *lim, int reps)
{
    char msg[512], label[64];
    const json_t *a = json_object_get(root, name);
    const json_t *d = json_object_get(a, "data");
    const char *comp = json_string_value(json_object_get(a, "compression"));
    const char *s = NULL;
    size_t slen = 0;
    double t, t_b64 = 0, t_inf = 0;
    if (!json_is_string(d) || slp__jdoc_string(doc, d, &s, &slen) != 0) {
        return 0;
    }
    unsigned char *cb = NULL;
    size_t cl = 0;
    BEST(t, reps, (free(cb), cb = NULL),
         slp_base64_decode(s, slen, SIZE_MAX, &cb, &cl, name, msg, sizeof msg));
    if (!cb) {
        die(name, msg);
    }
    snprintf(label, sizeof label, "%s: base64 (%zu chars)", name, slen);
    row(label, t, (double)slen);
    t_b64 = t;
    int kind = comp ? slp__compression_kind(SLP_COMP_AUTO, cb, cl) : -1;
    if (kind == SLP_COMP_GZIP && cl >= 18) {
        /* the whole .npy file's size: the gzip trailer's ISIZE */
        size_t isz = (size_t)cb[cl - 4] | (size_t)cb[cl - 3] << 8 | (size_t)cb[cl - 2] << 16 |
                     (size_t)cb[cl - 1] << 24;
        unsigned char *o = malloc(isz ? isz : 1);
        int ok = 0;
        BEST(t, reps, (void)0, ok = slp__inflate_whole(cb, cl, kind, o, isz));
        snprintf(label, sizeof label, "%s: inflate, libdeflate (%zu -> %zu)", name, cl, isz);
        row(label, t, (double)isz);
        t_inf = t;
        if (!ok) {
            printf("  (libdeflate refused the stream; zlib decodes it)\n");
        }
        BEST(t, reps < 5 ? reps : 5, (void)0, {
            struct slp__inflater z;
            size_t got = 0;
            slp__inflater_init(&z, cb, cl, SLP_COMP_GZIP, name, name, msg, sizeof msg);
            slp__inflater_read(&z, o, isz, &got, msg, sizeof msg);
            slp__inflater_end(&z);
        });
        snprintf(label, sizeof label, "%s: inflate, zlib (for comparison)", name);
        row(label, t, (double)isz);
        if (ok) {
            bench_zstd(name, o, isz, t_inf, reps);
        }
        free(o);
    } else if (comp && strcmp(comp, "zstd") == 0) {
        unsigned long long fcs = ZSTD_getFrameContentSize(cb, cl);
        size_t isz = fcs < ((unsigned long long)1 << 40) ? (size_t)fcs : 0;
        unsigned char *o = malloc(isz ? isz : 1);
        int ok = 0;
        BEST(t, reps, (void)0, ok = isz && slp__inflate_whole(cb, cl, SLP_COMP_ZSTD, o, isz));
        snprintf(label, sizeof label, "%s: zstd, one call (%zu -> %zu)", name, cl, isz);
        row(label, t, (double)isz);
        t_inf = t;
        if (!ok) {
            printf("  (no declared size, or refused: the streaming decoder decides)\n");
        }
        free(o);
    }
    free(cb);
    struct slp_array arr;
    memset(&arr, 0, sizeof arr);
    int rc = 0;
    BEST(t, reps, slp_array_free(&arr),
         rc = slp__array_from_json_doc(a, name, lim, NULL, doc, &arr, msg, sizeof msg));
    if (rc) {
        die(name, msg);
    }
    slp_array_free(&arr);
    snprintf(label, sizeof label, "%s: npy header, checks, allocation", name);
    row(label, t - t_b64 - t_inf > 0 ? t - t_b64 - t_inf : 0, 0);
    snprintf(label, sizeof label, "%s: decoded in all", name);
    row(label, t, 0);
    return t;
}

/* A request body sent with Content-Encoding: gzip (level 1): the reference payload's arrays as
 * plain .npy, the whole body gzipped. slp_inflate_all as the server runs it (libdeflate when
 * the ISIZE hint is right), and zlib's streaming inflater alone to compare. */
static void bench_gzip_body(int reps)
{
    size_t len = 0, zlen = 0;
    char *plain = reference_body(&len, 1);
    unsigned char *z = gzip1((const unsigned char *)plain, len, &zlen);
    char msg[256], label[96];
    double t;
    struct slp_dynbuf out;
    slp_dynbuf_init(&out, len);
    int rc = 0;
    BEST(t, reps, slp_dynbuf_free(&out),
         rc = slp_inflate_all(z, zlen, SLP_COMP_GZIP, &out, "body", msg, sizeof msg));
    if (rc || out.len != len || memcmp(out.data, plain, len) != 0) {
        die("gzip body", rc ? msg : "inflated bytes differ");
    }
    slp_dynbuf_free(&out);
    snprintf(label, sizeof label, "gzip body: slp_inflate_all (%zu -> %zu)", zlen, len);
    row(label, t, (double)len);
    char *o = malloc(len + 1);
    BEST(t, reps < 5 ? reps : 5, (void)0, {
        struct slp__inflater zi;
        size_t got = 0;
        slp__inflater_init(&zi, z, zlen, SLP_COMP_GZIP, "body", "body", msg, sizeof msg);
        slp__inflater_read(&zi, o, len, &got, msg, sizeof msg);
        slp__inflater_end(&zi);
    });
    row("gzip body: zlib streaming (for comparison)", t, (double)len);
    free(o);
    free(z);
    free(plain);
}

int main(int argc, char **argv)
{
    int reps = 20;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else {
            path = argv[i];
        }
    }
    if (reps < 1) {
        reps = 1;
    }
    size_t len = 0;
    char *body = path ? read_file(path, &len) : reference_body(&len, 0);
    struct slp_limits lim;
    slp_limits_default(&lim);
    char msg[512];
    double t;
    printf("proto_bench: %s, %zu bytes, best of %d\n", path ? path : "the reference payload", len,
           reps);

    struct slp__jdoc doc;
    memset(&doc, 0, sizeof doc);
    int rc = 0;
    BEST(t, reps, slp__jdoc_free(&doc),
         rc = slp__json_skeleton(body, len, &lim, NULL, &doc, msg, sizeof msg));
    if (rc) {
        die("scan", msg);
    }
    char label[96];
    snprintf(label, sizeof label, "skeleton scan (%zu strings left out)", doc.n);
    row(label, t, (double)len);
    double t_total_parse = t;

    json_t *root = NULL;
    json_error_t e;
    const char *skel = doc.skel ? doc.skel : body;
    size_t skel_len = doc.skel ? doc.skel_len : len;
    BEST(t, reps, (json_decref(root), root = NULL),
         root = json_loadb(skel, skel_len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &e));
    if (!root) {
        die("jansson", e.text);
    }
    snprintf(label, sizeof label, "jansson on the skeleton (%zu bytes)", skel_len);
    row(label, t, 0);
    t_total_parse += t;
    json_t *whole = NULL;
    BEST(t, reps < 5 ? reps : 5, (json_decref(whole), whole = NULL),
         whole = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e));
    row("jansson on the whole body (for comparison)", t, (double)len);
    json_decref(whole);
    row("parse in all (scan + jansson)", t_total_parse, 0);

    double t_arrays = 0;
    t_arrays += bench_array(root, &doc, "prediction", &lim, reps);
    t_arrays += bench_array(root, &doc, "target", &lim, reps);
    row("arrays decoded in all", t_arrays, 0);

    struct slp_score_req *r = NULL;
    BEST(t, reps, (slp__score_req_free(r), r = NULL),
         rc = slp__parse_score(root, &lim, NULL, &doc, &r, msg, sizeof msg));
    if (rc) {
        die("spec", msg);
    }
    row("slp__parse_score (spec + arrays)", t, 0);
    struct sl_result *res = NULL;
    double t_lib;
    BEST(t_lib, reps < 5 ? reps : 5, (sl_result_free(res), res = NULL),
         rc = sl_score(&r->req, NULL, &res, msg, sizeof msg));
    if (rc) {
        die("sl_score", msg);
    }
    struct slp_dynbuf b;
    slp_dynbuf_init(&b, SLP_ANSWER_MAX);
    BEST(t, reps, slp_dynbuf_free(&b), slp__write_result(&b, r, res, 1.0));
    row("answer JSON", t, 0);
    slp_dynbuf_free(&b);
    sl_result_free(res);
    slp__score_req_free(r);
    json_decref(root);
    slp__jdoc_free(&doc);

    struct slp_response out;
    memset(&out, 0, sizeof out);
    double t_req;
    BEST(t_req, reps < 5 ? reps : 5, slp_response_free(&out),
         slp_score_request(body, len, &lim, NULL, &out));
    if (out.status != 200) {
        die("slp_score_request", out.body ? out.body : "no body");
    }
    slp_response_free(&out);
    row("slp_score_request, end to end", t_req, 0);
    row("  of which sl_score (lib/, one core)", t_lib, 0);
    row("  the rest: proto/'s share", t_req - t_lib, 0);
    free(body);
    if (!path) {
        bench_gzip_body(reps);
    }
    return 0;
}
