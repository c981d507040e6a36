/* test_chal_page.c - the leaderboard page's chart data (server/chal_page.c): the running best of
 * a participant's public values (chal_best_so_far) and the series of the top of a board
 * (chal_history_build), against values worked out by hand in the comments; and a page rendered
 * from hand-written documents keeping a hostile note as text. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "chal_internal.h"

#define US 1000000LL

/* Higher is better: 0.2, 0.1 (worse), 0.5 (better), NaN (skipped), 0.5 (equal: no new point),
 * 0.7 (better) -> (t1, 0.2), (t3, 0.5), (t6, 0.7). */
static void test_best_desc(void)
{
    struct chal_point in[] = {{1, 0.2}, {2, 0.1}, {3, 0.5}, {4, NAN}, {5, 0.5}, {6, 0.7}};
    struct chal_point out[6];
    size_t m = chal_best_so_far(in, 6, true, out);
    CHECK_INT(m, 3);
    CHECK_INT(out[0].t, 1);
    CHECK(out[0].v == 0.2);
    CHECK_INT(out[1].t, 3);
    CHECK(out[1].v == 0.5);
    CHECK_INT(out[2].t, 6);
    CHECK(out[2].v == 0.7);
}

/* Lower is better: NaN (skipped), 9, 4, 6 (worse), 4 (equal), 1 -> (t2, 9), (t3, 4), (t6, 1);
 * written in place (out == in), as chal_history_build does. */
static void test_best_asc_in_place(void)
{
    struct chal_point p[] = {{1, NAN}, {2, 9}, {3, 4}, {4, 6}, {5, 4}, {6, 1}};
    size_t m = chal_best_so_far(p, 6, false, p);
    CHECK_INT(m, 3);
    CHECK_INT(p[0].t, 2);
    CHECK(p[0].v == 9);
    CHECK_INT(p[1].t, 3);
    CHECK(p[1].v == 4);
    CHECK_INT(p[2].t, 6);
    CHECK(p[2].v == 1);
    struct chal_point none[] = {{1, NAN}, {2, NAN}};
    CHECK_INT(chal_best_so_far(none, 2, true, none), 0);
    CHECK_INT(chal_best_so_far(NULL, 0, true, NULL), 0);
}

/* The top of a board of three rows (b, a, c) and their submissions, oldest first; the chart
 * takes them in rank order. a: 0.3, 0.6, 0.4 -> (10, 0.3), (20, 0.6); b: 0.8 -> (15, 0.8); c: null
 * only -> no point. A submission of someone not on the board (z) is left out. */
static void test_history(void)
{
    char err[512];
    const char *cfg_text =
        "{\"title\":\"t\",\"spec\":{\"mode\":\"binary\",\"prediction_type\":\"labels\","
        "\"metrics\":[\"dice\"]},\"ranking\":[{\"key\":\"metrics.dice.mean\",\"order\":\"desc\"}]}";
    struct slp_limits lim;
    slp_limits_default(&lim);
    struct slc_config *cfg = NULL;
    CHECK_INT(slc_config_parse(cfg_text, strlen(cfg_text), &lim, &cfg, err, sizeof err), 0);
    if (!cfg) {
        fprintf(stderr, "config: %s\n", err);
        return;
    }
    struct {
        const char *who;
        long long t;
        const char *values;
    } rows[] = {
        {"a", 10, "{\"metrics.dice.mean\":0.3}"},  {"b", 15, "{\"metrics.dice.mean\":0.8}"},
        {"z", 16, "{\"metrics.dice.mean\":0.9}"},  {"a", 20, "{\"metrics.dice.mean\":0.6}"},
        {"c", 25, "{\"metrics.dice.mean\":null}"}, {"a", 30, "{\"metrics.dice.mean\":0.4}"},
    };
    struct store_sub subs[6];
    memset(subs, 0, sizeof subs);
    for (int i = 0; i < 6; i++) {
        snprintf(subs[i].participant_name, sizeof subs[i].participant_name, "%s", rows[i].who);
        subs[i].received_at = rows[i].t * US;
        subs[i].pub_values = (char *)rows[i].values;
    }
    const char *const top[] = {"b", "a", "c"};
    struct chal_history h;
    CHECK_INT(chal_history_build(subs, 6, top, 3, cfg, &h), 0);
    CHECK_INT(h.n, 3);
    CHECK(strcmp(h.key, "metrics.dice.mean") == 0);
    CHECK(h.desc);
    CHECK(strcmp(h.series[0].participant, "b") == 0);
    CHECK_INT(h.series[0].npts, 1);
    CHECK_INT(h.series[0].pts[0].t, 15 * US);
    CHECK(h.series[0].pts[0].v == 0.8);
    CHECK(strcmp(h.series[1].participant, "a") == 0);
    CHECK_INT(h.series[1].npts, 2);
    CHECK_INT(h.series[1].pts[0].t, 10 * US);
    CHECK(h.series[1].pts[0].v == 0.3);
    CHECK_INT(h.series[1].pts[1].t, 20 * US);
    CHECK(h.series[1].pts[1].v == 0.6);
    CHECK(strcmp(h.series[2].participant, "c") == 0);
    CHECK_INT(h.series[2].npts, 0);

    /* the page from hand-written documents: a hostile note stays text, values exact */
    json_t *desc = json_loads("{\"name\":\"x\",\"title\":\"<i>T</i>\",\"description\":\"d\","
                              "\"quota\":{\"per_day\":5,\"total\":null,\"concurrent\":1},"
                              "\"keep\":\"best\",\"final_selections\":2}",
                              0, NULL);
    json_t *pub = json_loads(
        "{\"columns\":[{\"key\":\"metrics.dice.mean\",\"order\":\"desc\",\"ranking\":true}],"
        "\"rows\":[{\"rank\":1,\"participant\":\"b\",\"note\":\"<script>alert(1)</script>\","
        "\"scores\":{\"metrics.dice.mean\":0.123456789},\"entries\":1,"
        "\"submitted_at\":\"2027-01-02T03:04:05Z\",\"stale\":false}]}",
        0, NULL);
    struct slp_dynbuf b;
    slp_dynbuf_init(&b, 1 << 20);
    CHECK_INT(chal_page_render(&b, desc, pub, NULL, &h, 20 * US), 0);
    CHECK(b.data && strstr(b.data, "<script>alert(1)") == NULL);
    CHECK_HAS(b.data, "<td class=\"note\">&lt;script&gt;alert(1)&lt;/script&gt;</td>");
    CHECK_HAS(b.data, "<h1>&lt;i&gt;T&lt;/i&gt;</h1>");
    CHECK_HAS(b.data, "data-value=\"0.123456789\">0.1235</td>");
    CHECK_HAS(b.data, "<time datetime=\"2027-01-02T03:04:05Z\">");
    CHECK_HAS(b.data, "<path class=\"series\" data-participant=\"a\"");
    CHECK(strstr(b.data, "id=\"private\"") == NULL);
    /* the reset: the midnight after 20 s past the epoch */
    CHECK_HAS(b.data, "<time datetime=\"1970-01-02T00:00:00Z\">");
    slp_dynbuf_free(&b);
    json_decref(desc);
    json_decref(pub);
    chal_history_clear(&h);
    CHECK_INT(h.n, 0);
    slc_config_free(cfg);
}

static const struct check_test tests[] = {
    CHECK_TEST(test_best_desc),
    CHECK_TEST(test_best_asc_in_place),
    CHECK_TEST(test_history),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_chal_page", tests);
}
