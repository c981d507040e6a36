/* page_bench.c - the leaderboard page's target ("a page of 1,000 participants renders server-side
 * in under 50 ms"), measured without HTTP: a public leaderboard of P participants
 * (default 1,000) with S submissions each (default 5) in the documents GET /challenges/{c} reads
 * (the leaderboard JSON text as the cache holds it, the description, the rankable submissions),
 * then per repetition what the handler does after its store reads: the leaderboard text parsed,
 * the chart's history built from the P x S submissions, the page rendered. Prints the median and
 * the p95 of N repetitions (default 51) and the page's size; a figure, not a pass/fail test.
 *
 * make bench-pages [PAGE_BENCH_ARGS="--participants 1000 --subs 5 --reps 51"] */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chal_internal.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* A deterministic pseudo-random number in [0, 1) (xorshift64*). */
static double rnd(unsigned long long *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (double)((*s * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static const char cfg_text[] =
    "{\"title\":\"Bench <pages>\",\"description\":\"1,000 participants\\nfive submissions "
    "each\",\"spec\":{\"mode\":\"binary\",\"prediction_type\":\"labels\",\"metrics\":[\"dice\","
    "{\"name\":\"hausdorff\",\"percentile\":95,\"as\":\"hd95\"}]},"
    "\"ranking\":[{\"key\":\"metrics.dice.mean\",\"order\":\"desc\"},"
    "{\"key\":\"metrics.hd95.mean\",\"order\":\"asc\"}],"
    "\"columns\":[\"metrics.dice.mean\",\"metrics.hd95.mean\",\"metrics.dice.global\"]}";

int main(int argc, char **argv)
{
    int nparts = 1000, per = 5, reps = 51;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--participants") == 0) {
            nparts = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--subs") == 0) {
            per = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--reps") == 0) {
            reps = atoi(argv[i + 1]);
        }
    }
    if (nparts < 1 || per < 1 || reps < 1) {
        fprintf(stderr, "usage: page_bench [--participants P] [--subs S] [--reps N]\n");
        return 2;
    }
    struct slp_limits lim;
    slp_limits_default(&lim);
    struct slc_config *cfg = NULL;
    char msg[512];
    if (slc_config_parse(cfg_text, strlen(cfg_text), &lim, &cfg, msg, sizeof msg) != 0) {
        fprintf(stderr, "page_bench: config: %s\n", msg);
        return 1;
    }
    /* the submissions, oldest first, and each participant's best (its board row) */
    size_t n = (size_t)nparts * (size_t)per;
    struct store_sub *subs = calloc(n, sizeof *subs);
    double *best = calloc((size_t)nparts, sizeof *best);
    long long *best_t = calloc((size_t)nparts, sizeof *best_t);
    if (!subs || !best || !best_t) {
        return 1;
    }
    unsigned long long seed = 88172645463325252ULL;
    const long long t0 = 1798761600LL * 1000000; /* 2027-01-01T00:00:00Z */
    for (size_t i = 0; i < n; i++) {
        int p = (int)(i % (size_t)nparts);
        double d = rnd(&seed), hd = 10 * rnd(&seed), g = rnd(&seed);
        snprintf(subs[i].participant_name, sizeof subs[i].participant_name, "team-%04d", p);
        subs[i].received_at = t0 + (long long)i * 60 * 1000000; /* a minute apart */
        char v[200];
        snprintf(v, sizeof v,
                 "{\"metrics.dice.global\":%.17g,\"metrics.dice.mean\":%.17g,"
                 "\"metrics.hd95.mean\":%.17g}",
                 g, d, hd);
        subs[i].pub_values = strdup(v);
        if (d > best[p] || i < (size_t)nparts) {
            best[p] = d;
            best_t[p] = subs[i].received_at;
        }
    }
    /* the board document (the JSON text the cache holds), ranked by dice */
    int *order = malloc((size_t)nparts * sizeof *order);
    for (int p = 0; p < nparts; p++) {
        order[p] = p;
    }
    for (int a = 1; a < nparts; a++) { /* insertion sort by best, descending */
        int x = order[a], b = a;
        for (; b > 0 && best[order[b - 1]] < best[x]; b--) {
            order[b] = order[b - 1];
        }
        order[b] = x;
    }
    json_t *rows = json_array();
    for (int r = 0; r < nparts; r++) {
        int p = order[r];
        char name[32], at[40], note[80];
        snprintf(name, sizeof name, "team-%04d", p);
        chal_time_format(best_t[p], at, sizeof at);
        snprintf(note, sizeof note, "run %d <b>unet</b> & \"tta\"", p);
        json_array_append_new(
            rows, json_pack("{s:I, s:s, s:s, s:s, s:{s:f, s:f, s:f}, s:I, s:s, s:b}", "rank",
                            (json_int_t)(r + 1), "participant", name, "submission",
                            "0123456789abcdef", "submitted_at", at, "scores", "metrics.dice.mean",
                            best[p], "metrics.hd95.mean", 10 * rnd(&seed), "metrics.dice.global",
                            rnd(&seed), "entries", (json_int_t)per, "note", note, "stale", 0));
    }
    json_t *doc = json_pack("{s:s, s:s, s:I, s:o, s:o}", "challenge", "bench", "split", "public",
                            "version", (json_int_t)1, "columns",
                            chal_keys_json(cfg->columns, cfg->ncolumns, cfg), "rows", rows);
    char *text = json_dumps(doc, JSON_COMPACT);
    size_t text_len = strlen(text);
    json_decref(doc);
    struct store_challenge c;
    memset(&c, 0, sizeof c);
    snprintf(c.name, sizeof c.name, "bench");
    c.version = 1;
    c.participants = nparts;
    c.submissions = (int64_t)n;
    json_t *desc = chal_describe(&c, cfg, false);

    double *t_all = calloc((size_t)reps, sizeof *t_all);
    double *t_render = calloc((size_t)reps, sizeof *t_render);
    size_t page_len = 0;
    for (int r = 0; r < reps; r++) {
        double a = now_s();
        json_t *pub = json_loadb(text, text_len, 0, NULL);
        struct chal_history h;
        const char *top[CHAL_CHART_TOP];
        int ntop = 0;
        const json_t *rows_of = json_object_get(pub, "rows");
        for (size_t i = 0; i < json_array_size(rows_of) && ntop < CHAL_CHART_TOP; i++) {
            top[ntop++] =
                json_string_value(json_object_get(json_array_get(rows_of, i), "participant"));
        }
        if (!pub || chal_history_build(subs, n, top, ntop, cfg, &h) != 0) {
            fprintf(stderr, "page_bench: out of memory\n");
            return 1;
        }
        struct slp_dynbuf b;
        slp_dynbuf_init(&b, (size_t)1 << 30);
        double m = now_s();
        chal_page_render(&b, desc, pub, NULL, &h, t0);
        double e = now_s();
        if (b.err) {
            fprintf(stderr, "page_bench: render failed (%d)\n", b.err);
            return 1;
        }
        page_len = b.len;
        slp_dynbuf_free(&b);
        chal_history_clear(&h);
        json_decref(pub);
        t_all[r] = e - a;
        t_render[r] = e - m;
    }
    qsort(t_all, (size_t)reps, sizeof *t_all, cmp_double);
    qsort(t_render, (size_t)reps, sizeof *t_render, cmp_double);
    int p95 = (int)(0.95 * (reps - 1) + 0.5);
    printf("page of %d participants x %d submissions (%zu KiB of HTML, %zu KiB of leaderboard "
           "JSON), %d reps:\n",
           nparts, per, page_len >> 10, text_len >> 10, reps);
    printf("  parse + history + render: median %.2f ms, p95 %.2f ms (target < 50 ms)\n",
           t_all[reps / 2] * 1e3, t_all[p95] * 1e3);
    printf("  render alone (chal_page_render): median %.2f ms, p95 %.2f ms\n",
           t_render[reps / 2] * 1e3, t_render[p95] * 1e3);
    json_decref(desc);
    free(text);
    free(order);
    for (size_t i = 0; i < n; i++) {
        free(subs[i].pub_values);
    }
    free(subs);
    free(best);
    free(best_t);
    free(t_all);
    free(t_render);
    slc_config_free(cfg);
    return 0;
}
