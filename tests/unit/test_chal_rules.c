/* test_chal_rules.c - the rules of a challenge (server/chal_rules.h, CHALLENGES.md): names,
 * RFC 3339 times, the public/private split, ranking with ties, directions and nulls, best or
 * latest per participant, the private leaderboard's choice, quotas and the window. Every
 * expected value is worked out by hand in the comment beside it, or computed with Python
 * (/usr/bin/python3) by the command quoted with it. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../check.h"
#include "chal_rules.h"

#define S(x) ((chal_time)(x)*1000000) /* seconds to chal_time */

/* ---- names and ids --------------------------------------------------------------------------- */

static void test_names(void)
{
    char long_name[80];
    memset(long_name, 'a', sizeof long_name);
    long_name[63] = '\0'; /* 63 characters: the longest name */
    CHECK(chal_name_ok(long_name));
    long_name[63] = 'a';
    long_name[64] = '\0'; /* 64 */
    CHECK(!chal_name_ok(long_name));
    CHECK(chal_name_ok("a"));
    CHECK(chal_name_ok("lesions-2027"));
    CHECK(chal_name_ok("9-"));
    CHECK(!chal_name_ok(""));
    CHECK(!chal_name_ok("-a"));      /* must start with [a-z0-9] */
    CHECK(!chal_name_ok("Lesions")); /* no capitals */
    CHECK(!chal_name_ok("a_b"));
    CHECK(!chal_name_ok("a.b"));
    CHECK(!chal_name_ok(NULL));
}

static void test_image_ids(void)
{
    char id[140];
    memset(id, 'x', sizeof id);
    CHECK(chal_image_id_ok(id, 128));
    CHECK(!chal_image_id_ok(id, 129));
    CHECK(!chal_image_id_ok(id, 0));
    CHECK(chal_image_id_ok("img_003", 7));
    CHECK(chal_image_id_ok("A.b-C_9", 7));
    CHECK(chal_image_id_ok(".", 1));
    CHECK(!chal_image_id_ok("a/b", 3));
    CHECK(!chal_image_id_ok("a b", 3));
    CHECK(!chal_image_id_ok("a\0b", 3)); /* a NUL inside the length */
    CHECK(!chal_image_id_ok("caf\xc3\xa9", 5));
}

static void test_participants(void)
{
    char name[80];
    memset(name, 'T', sizeof name);
    name[64] = '\0'; /* 64: the longest */
    CHECK(chal_participant_ok(name));
    name[64] = 'T';
    name[65] = '\0';
    CHECK(!chal_participant_ok(name));
    CHECK(chal_participant_ok("team-a"));
    CHECK(chal_participant_ok("Team_A.2"));
    CHECK(!chal_participant_ok(""));
    CHECK(!chal_participant_ok("team a"));
    CHECK(!chal_participant_ok("team,a"));
    CHECK(!chal_participant_ok(NULL));
}

/* ---- times ----------------------------------------------------------------------------------- */

static void test_time_parse(void)
{
    /* seconds from
     * /usr/bin/python3 -c 'from datetime import datetime
     * f=lambda s: datetime.fromisoformat(s.replace("Z","+00:00")).timestamp()
     * for s in [...]: print(s, repr(f(s)))' */
    static const struct {
        const char *s;
        int64_t secs;
    } ok[] = {
        {"2027-01-08T00:00:00Z", 1799366400},
        {"2027-06-30T23:59:59Z", 1814399999},
        {"2027-06-30T23:59:59+02:00", 1814392799},
        {"2027-06-30T23:59:59-05:30", 1814419799},
        {"2024-02-29T12:00:00Z", 1709208000}, /* a leap day */
        {"2000-03-01T00:00:00Z", 951868800},  /* after the 400-year leap day */
        {"2100-03-01T00:00:00Z", 4107542400},
        {"1970-01-01T00:00:00Z", 0},
        {"9999-12-31T23:59:59Z", 253402300799},
        {"2027-01-08t00:00:00z", 1799366400}, /* RFC 3339 5.6: T and Z in either case */
        {"2027-01-08T00:00:00+00:00", 1799366400},
        {"2027-01-08T00:00:00-00:00", 1799366400},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        chal_time t = -1;
        int rc = chal_time_parse(ok[i].s, &t);
        CHECK_INT(rc, 0);
        CHECK_INT(t, S(ok[i].secs));
        if (rc != 0 || t != S(ok[i].secs)) {
            fprintf(stderr, "  at %s\n", ok[i].s);
        }
    }
    /* fractions: 1814399999.5 (python above); digits past the microsecond are dropped */
    chal_time t = 0;
    CHECK_INT(chal_time_parse("2027-06-30T23:59:59.5Z", &t), 0);
    CHECK_INT(t, S(1814399999) + 500000);
    CHECK_INT(chal_time_parse("2027-06-30T23:59:59.1234567Z", &t), 0);
    CHECK_INT(t, S(1814399999) + 123456);
    CHECK_INT(chal_time_parse("2027-06-30T23:59:59.000001+02:00", &t), 0);
    CHECK_INT(t, S(1814392799) + 1);

    static const char *const bad[] = {
        "",
        "2027-06-30T23:59Z",         /* no seconds */
        "2027-13-01T00:00:00Z",      /* month 13 */
        "2027-00-01T00:00:00Z",      /* month 0 */
        "2027-02-30T00:00:00Z",      /* Feb 30 */
        "2027-02-29T00:00:00Z",      /* 2027 is not a leap year */
        "2100-02-29T00:00:00Z",      /* nor is 2100 (divisible by 100, not 400) */
        "2027-04-31T00:00:00Z",      /* April has 30 days */
        "2027-01-00T00:00:00Z",      /* day 0 */
        "2027-06-30 23:59:59Z",      /* a space for T */
        "2027-06-30T23:59:59",       /* no offset */
        "2027-06-30T23:59:59+0200",  /* offset without the colon */
        "2027-06-30T23:59:59+02",    /* offset without minutes */
        "2027-06-30T24:00:00Z",      /* hour 24 */
        "2027-06-30T23:60:00Z",      /* minute 60 */
        "2027-06-30T23:59:60Z",      /* a leap second: the epoch count has none */
        "2027-06-30T23:59:59.Z",     /* a point without digits */
        "2027-06-30T23:59:59+24:00", /* offset hour 24 */
        "2027-06-30T23:59:59Zx",     /* trailing text */
        "2027-6-30T23:59:59Z",       /* one-digit month */
        "27-06-30T23:59:59Z",        /* two-digit year */
        "1969-12-31T23:59:59Z",      /* before 1970 */
        "1970-01-01T00:30:00+01:00", /* 1969-12-31T23:30:00Z */
        "9999-12-31T23:59:59-00:01", /* 10000-01-01T00:00:59Z */
        "2027-06-30",                /* a date only */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        t = 42;
        int rc = chal_time_parse(bad[i], &t);
        CHECK_INT(rc, -1);
        CHECK_INT(t, 42); /* untouched */
        if (rc != -1) {
            fprintf(stderr, "  accepted %s\n", bad[i]);
        }
    }
    CHECK_INT(chal_time_parse(NULL, &t), -1);
}

static void test_time_format(void)
{
    /* /usr/bin/python3 -c 'from datetime import datetime, timezone
     * print(datetime.fromtimestamp(1799366400-1, timezone.utc).isoformat())'
     * -> 2027-01-07T23:59:59+00:00; the other pairs are test_time_parse's */
    char buf[32];
    chal_time_format(S(1799366400), buf, sizeof buf);
    CHECK(strcmp(buf, "2027-01-08T00:00:00Z") == 0);
    chal_time_format(S(1799366400) - 1, buf, sizeof buf); /* a microsecond before: floored */
    CHECK(strcmp(buf, "2027-01-07T23:59:59Z") == 0);
    chal_time_format(0, buf, sizeof buf);
    CHECK(strcmp(buf, "1970-01-01T00:00:00Z") == 0);
    chal_time_format(S(1709208000), buf, sizeof buf);
    CHECK(strcmp(buf, "2024-02-29T12:00:00Z") == 0);
    chal_time_format(S(951868800), buf, sizeof buf);
    CHECK(strcmp(buf, "2000-03-01T00:00:00Z") == 0);
    chal_time_format(S(4107542400), buf, sizeof buf);
    CHECK(strcmp(buf, "2100-03-01T00:00:00Z") == 0);
    chal_time_format(S(253402300799) + 999999, buf, sizeof buf);
    CHECK(strcmp(buf, "9999-12-31T23:59:59Z") == 0);
    /* exactly 21 bytes are enough: 20 characters and the NUL */
    char small[21];
    chal_time_format(S(1814399999), small, sizeof small);
    CHECK(strcmp(small, "2027-06-30T23:59:59Z") == 0);
}

static void test_next_utc_day(void)
{
    /* 2027-01-07T12:00:00Z is 1799366400 - 43200 = 1799323200; its next midnight 1799366400 */
    CHECK_INT(chal_next_utc_day(S(1799323200)), S(1799366400));
    CHECK_INT(chal_next_utc_day(S(1799366400) - 1), S(1799366400));
    /* midnight itself belongs to the new day: the next one is 86400 s on */
    CHECK_INT(chal_next_utc_day(S(1799366400)), S(1799366400 + 86400));
    CHECK_INT(chal_next_utc_day(0), S(86400));
}

/* ---- the split ------------------------------------------------------------------------------- */

static void test_public_count(void)
{
    CHECK_INT(chal_public_count(0.3, 10), 3);  /* 0.3*10 = 3.0000000000000004 in doubles */
    CHECK_INT(chal_public_count(0.25, 10), 3); /* ceil 2.5 */
    CHECK_INT(chal_public_count(1.0, 7), 7);
    CHECK_INT(chal_public_count(1e-9, 5), 1); /* at least one */
    CHECK_INT(chal_public_count(0.5, 0), 0);
    CHECK_INT(chal_public_count(0.7, 10), 7);
    CHECK_INT(chal_public_count(0.1, 3), 1);  /* 0.30000000000000004 -> 1 */
    CHECK_INT(chal_public_count(0.34, 3), 2); /* 1.02 -> 2 */
    CHECK_INT(chal_public_count(0.66, 3), 2); /* 1.98 -> 2 */
    CHECK_INT(chal_public_count(0.67, 3), 3); /* 2.01 -> 3 */
    CHECK_INT(chal_public_count(0.5, 1), 1);
}

static void test_split(void)
{
    const char *ids[10] = {"img_000", "img_001", "img_002", "img_003", "img_004",
                           "img_005", "img_006", "img_007", "img_008", "img_009"};
    /* /usr/bin/python3 -c 'import hashlib
     * ids=["img_%03d"%i for i in range(10)]
     * s=sorted(ids,key=lambda i:(hashlib.sha256(("1:"+i).encode()).hexdigest(),i))
     * print(s[:3])
     * s=sorted(ids,key=lambda i:(hashlib.sha256(("-7:"+i).encode()).hexdigest(),i))
     * print(s[:5])'
     * -> ['img_001', 'img_004', 'img_000']
     * -> ['img_001', 'img_006', 'img_009', 'img_007', 'img_003'] */
    bool pub[10];
    memset(pub, 0, sizeof pub);
    CHECK_INT(chal_split_by_fraction(ids, 10, 0.3, 1, pub), 0);
    static const bool want1[10] = {true,  true,  false, false, true,
                                   false, false, false, false, false};
    CHECK(memcmp(pub, want1, sizeof pub) == 0);

    memset(pub, 0, sizeof pub);
    CHECK_INT(chal_split_by_fraction(ids, 10, 0.5, -7, pub), 0);
    static const bool want2[10] = {false, true, false, true, false, false, true, true, false, true};
    CHECK(memcmp(pub, want2, sizeof pub) == 0);

    /* everything public at f = 1 */
    memset(pub, 0, sizeof pub);
    CHECK_INT(chal_split_by_fraction(ids, 10, 1.0, 1, pub), 0);
    int n = 0;
    for (int i = 0; i < 10; i++) {
        n += pub[i];
    }
    CHECK_INT(n, 10);
    /* no ids: nothing to do */
    CHECK_INT(chal_split_by_fraction(NULL, 0, 0.3, 1, NULL), 0);
}

/* ---- ranking --------------------------------------------------------------------------------- */

/* The index (into seqs) of the row with seq s in rows[0..n), or -1. */
static long find_seq(const struct chal_row *rows, size_t n, int64_t s)
{
    for (size_t i = 0; i < n; i++) {
        if (rows[i].seq == s) {
            return (long)i;
        }
    }
    return -1;
}

static void test_rank_two_keys(void)
{
    /* key 0 "dice" desc, key 1 "hd95" asc */
    struct chal_order o = {2, {true, false}};
    const double a[2] = {0.9, 5}, b[2] = {0.9, 3}, c[2] = {0.8, 1}, d[2] = {0.9, 3},
                 e[2] = {NAN, 0}, f[2] = {0.95, NAN}, g[2] = {0.8, NAN};
    struct chal_row rows[7] = {
        {a, S(10), 1, 1, 0}, {b, S(20), 2, 2, 0}, {c, S(30), 3, 3, 0}, {d, S(5), 4, 4, 0},
        {e, S(40), 5, 5, 0}, {f, S(50), 6, 6, 0}, {g, S(60), 7, 7, 0},
    };
    chal_rank(rows, 7, &o);
    /* f: best dice (its null hd95 never matters); d and b tie on both keys, d earlier (5 < 20);
     * a: dice 0.9 but hd95 5 > 3; c: dice 0.8 with hd95 1; g: dice 0.8 with a null hd95, below
     * c; e: null dice, last. Ranks 1, 2, 2, 4, 5, 6, 7. */
    static const int64_t want_seq[7] = {6, 4, 2, 1, 3, 7, 5};
    static const int64_t want_rank[7] = {1, 2, 2, 4, 5, 6, 7};
    for (int i = 0; i < 7; i++) {
        CHECK_INT(rows[i].seq, want_seq[i]);
        CHECK_INT(rows[i].rank, want_rank[i]);
    }
    /* the comparison itself: 0 only for the same submission */
    CHECK_INT(chal_row_cmp(&rows[1], &rows[1], &o), 0);
    CHECK(chal_row_cmp(&rows[1], &rows[2], &o) < 0); /* d before b: earlier */
    CHECK(chal_row_cmp(&rows[2], &rows[1], &o) > 0);
    CHECK(chal_row_cmp(&rows[6], &rows[0], &o) > 0); /* null dice after the best */
}

static void test_rank_ties(void)
{
    /* one key desc: 0.5 (received 3), 0.4 (1), 0.5 (2): the two 0.5 share rank 1, the earlier
     * (received 2) first; 0.4 is third: 1, 1, 3 */
    struct chal_order o = {1, {true}};
    const double v5 = 0.5, v4 = 0.4;
    struct chal_row rows[3] = {{&v5, S(3), 10, 1, 0}, {&v4, S(1), 11, 2, 0}, {&v5, S(2), 12, 3, 0}};
    chal_rank(rows, 3, &o);
    CHECK_INT(rows[0].seq, 12);
    CHECK_INT(rows[1].seq, 10);
    CHECK_INT(rows[2].seq, 11);
    CHECK_INT(rows[0].rank, 1);
    CHECK_INT(rows[1].rank, 1);
    CHECK_INT(rows[2].rank, 3);
    /* same received: the lower seq first */
    struct chal_row same[2] = {{&v5, S(7), 9, 1, 0}, {&v5, S(7), 8, 2, 0}};
    chal_rank(same, 2, &o);
    CHECK_INT(same[0].seq, 8);
    CHECK_INT(same[1].seq, 9);
    CHECK_INT(same[1].rank, 1);
    /* nothing to rank */
    chal_rank(NULL, 0, &o);
    CHECK(1);
}

static void test_rank_nulls(void)
{
    /* values 2, null, 1, null (received 1..4); a null ranks below every number in both orders
     * and two nulls tie */
    const double v2 = 2, vn = NAN, v1 = 1;
    struct chal_order asc = {1, {false}}, desc = {1, {true}};
    struct chal_row r[4] = {
        {&v2, S(1), 1, 1, 0}, {&vn, S(2), 2, 2, 0}, {&v1, S(3), 3, 3, 0}, {&vn, S(4), 4, 4, 0}};
    struct chal_row r2[4];
    memcpy(r2, r, sizeof r);
    /* asc: 1, 2, null (earlier), null: ranks 1, 2, 3, 3 */
    chal_rank(r, 4, &asc);
    CHECK_INT(r[0].seq, 3);
    CHECK_INT(r[1].seq, 1);
    CHECK_INT(r[2].seq, 2);
    CHECK_INT(r[3].seq, 4);
    CHECK_INT(r[2].rank, 3);
    CHECK_INT(r[3].rank, 3);
    /* desc: 2, 1, null, null */
    chal_rank(r2, 4, &desc);
    CHECK_INT(r2[0].seq, 1);
    CHECK_INT(r2[1].seq, 3);
    CHECK_INT(r2[2].seq, 2);
    CHECK_INT(r2[3].seq, 4);
    CHECK_INT(r2[0].rank, 1);
    CHECK_INT(r2[1].rank, 2);
    CHECK_INT(r2[3].rank, 3);
}

static void test_rank_many(void)
{
    /* 200 rows, value i % 10 asc, received 200 - i: ten groups of 20 tied rows; group g (value
     * g) starts at rank 20 g + 1 and within it the rows stand latest i first (earliest
     * received). Checks the heap sort beyond a handful of rows. */
    double vals[200];
    struct chal_row rows[200];
    for (int i = 0; i < 200; i++) {
        vals[i] = i % 10;
        rows[i] = (struct chal_row){&vals[i], S(200 - i), i, i, 0};
    }
    struct chal_order asc = {1, {false}};
    chal_rank(rows, 200, &asc);
    int bad = 0;
    for (int k = 0; k < 200; k++) {
        int g = k / 20, j = k % 20;
        /* in group g the ids are g, g + 10, ..., g + 190; the earliest received is the largest */
        int64_t want = g + 10 * (19 - j);
        bad += rows[k].seq != want || rows[k].rank != 20 * g + 1;
    }
    CHECK_INT(bad, 0);
}

/* ---- best / latest and the private choice -------------------------------------------------- */

static void test_keep(void)
{
    /* participant 1: seq 1 (t 10, 0.7), seq 2 (t 20, 0.9), seq 3 (t 30, 0.8)
     * participant 2: seq 4 (t 15, 0.5)
     * participant 3: seq 5 (t 25, null), seq 6 (t 35, 0.1), seq 7 (t 35, null)
     * best (desc): 1 -> seq 2, 2 -> seq 4, 3 -> seq 6 (a number beats null)
     * latest: 1 -> seq 3, 2 -> seq 4, 3 -> seq 7 (same time as seq 6, higher seq) */
    const double v[7] = {0.7, 0.9, 0.8, 0.5, NAN, 0.1, NAN};
    const struct chal_row base[7] = {
        {&v[0], S(10), 1, 1, 0}, {&v[1], S(20), 2, 1, 0}, {&v[2], S(30), 3, 1, 0},
        {&v[3], S(15), 4, 2, 0}, {&v[4], S(25), 5, 3, 0}, {&v[5], S(35), 6, 3, 0},
        {&v[6], S(35), 7, 3, 0},
    };
    struct chal_order desc = {1, {true}};
    struct chal_row rows[7];
    memcpy(rows, base, sizeof rows);
    size_t m = chal_keep_per_participant(rows, 7, &desc, false);
    CHECK_INT(m, 3);
    CHECK(find_seq(rows, m, 2) >= 0);
    CHECK(find_seq(rows, m, 4) >= 0);
    CHECK(find_seq(rows, m, 6) >= 0);

    memcpy(rows, base, sizeof rows);
    m = chal_keep_per_participant(rows, 7, &desc, true);
    CHECK_INT(m, 3);
    CHECK(find_seq(rows, m, 3) >= 0);
    CHECK(find_seq(rows, m, 4) >= 0);
    CHECK(find_seq(rows, m, 7) >= 0);
    /* the array is a permutation: every seq is still there */
    int found = 0;
    for (int s = 1; s <= 7; s++) {
        found += find_seq(rows, 7, s) >= 0;
    }
    CHECK_INT(found, 7);

    /* best under asc for participant 1: seq 1 (0.7) */
    struct chal_order asc = {1, {false}};
    memcpy(rows, base, sizeof rows);
    m = chal_keep_per_participant(rows, 3, &asc, false);
    CHECK_INT(m, 1);
    CHECK_INT(rows[0].seq, 1);
    CHECK_INT(chal_keep_per_participant(rows, 0, &asc, false), 0);
}

static void test_private_choice(void)
{
    /* one participant, four submissions received 1..4.
     * public (desc): 0.9, 0.8, 0.7, 0.6 -> public order 0, 1, 2, 3
     * private (desc): 0.5, 0.6, 0.9, 0.4 */
    const double pv[4] = {0.9, 0.8, 0.7, 0.6}, qv[4] = {0.5, 0.6, 0.9, 0.4};
    struct chal_row pub[4], priv[4];
    for (int i = 0; i < 4; i++) {
        pub[i] = (struct chal_row){&pv[i], S(i + 1), i + 1, 1, 0};
        priv[i] = (struct chal_row){&qv[i], S(i + 1), i + 1, 1, 0};
    }
    struct chal_order desc = {1, {true}};
    bool none[4] = {false, false, false, false};
    /* no finals, 2 selections: candidates 0, 1 (best public); private 0.5 vs 0.6 -> 1 */
    CHECK_INT(chal_private_choice(pub, priv, none, 4, 2, &desc, &desc), 1);
    /* 3 selections: candidates 0, 1, 2 -> 2 (0.9) */
    CHECK_INT(chal_private_choice(pub, priv, none, 4, 3, &desc, &desc), 2);
    /* more selections than submissions: all are candidates -> 2 */
    CHECK_INT(chal_private_choice(pub, priv, none, 4, 10, &desc, &desc), 2);
    /* 1 selection: only 0 */
    CHECK_INT(chal_private_choice(pub, priv, none, 4, 1, &desc, &desc), 0);
    /* finals 0 and 3: private 0.5 vs 0.4 -> 0 (the best private, 2, is not selected) */
    bool f03[4] = {true, false, false, true};
    CHECK_INT(chal_private_choice(pub, priv, f03, 4, 2, &desc, &desc), 0);
    /* final 3 alone: chosen although it is the worst public */
    bool f3[4] = {false, false, false, true};
    CHECK_INT(chal_private_choice(pub, priv, f3, 4, 2, &desc, &desc), 3);
    /* selected finals count even when final_selections is 0 */
    CHECK_INT(chal_private_choice(pub, priv, f3, 4, 0, &desc, &desc), 3);
    /* nothing selected and 0 selections: none */
    CHECK_INT(chal_private_choice(pub, priv, none, 4, 0, &desc, &desc), -1);
    CHECK_INT(chal_private_choice(pub, priv, none, 0, 2, &desc, &desc), -1);
    /* private order asc: among candidates 0, 1 (2 selections) the lower 0.5 -> 0 */
    struct chal_order asc = {1, {false}};
    CHECK_INT(chal_private_choice(pub, priv, none, 4, 2, &desc, &asc), 0);

    /* a public tie at the cut: public 0.9, 0.8, 0.8 (received 1, 2, 3), 2 selections ->
     * candidates 0 and 1 (1 is the earlier of the tie); private 0.1, 0.2, 0.9 -> 1, not 2 */
    const double tp[3] = {0.9, 0.8, 0.8}, tq[3] = {0.1, 0.2, 0.9};
    for (int i = 0; i < 3; i++) {
        pub[i].vals = &tp[i];
        priv[i].vals = &tq[i];
    }
    CHECK_INT(chal_private_choice(pub, priv, none, 3, 2, &desc, &desc), 1);
}

/* ---- quotas and the window ------------------------------------------------------------------ */

/* 2027-01-07T12:00:00Z: 43200 s before the next UTC midnight 2027-01-08T00:00:00Z (1799366400) */
#define NOON S(1799323200)
#define NONE_OPEN INT64_MIN
#define NONE_CLOSE INT64_MAX

static void test_admit_day(void)
{
    struct chal_quota q = {5, -1, 1};
    int64_t retry = -1;
    /* 4 of 5 used: one slot left */
    struct chal_usage u = {4, 4, 0, 0};
    CHECK_INT(chal_admit(&q, &u, NOON, NONE_OPEN, NONE_CLOSE, &retry), CHAL_ADMIT);
    CHECK_INT(retry, 0);
    /* 5 of 5: over the day, Retry-After 43200 s to midnight */
    u = (struct chal_usage){5, 5, 0, 0};
    CHECK_INT(chal_admit(&q, &u, NOON, NONE_OPEN, NONE_CLOSE, &retry), CHAL_OVER_DAY);
    CHECK_INT(retry, 43200);
    /* 4 scored and 1 pending today: the pending one holds the last slot -> the day's 429, not
     * the concurrency one */
    u = (struct chal_usage){4, 4, 1, 1};
    CHECK_INT(chal_admit(&q, &u, NOON, NONE_OPEN, NONE_CLOSE, &retry), CHAL_OVER_DAY);
    CHECK_INT(retry, 43200);
    /* a pending one from yesterday holds no slot of today (concurrent 2 lets it through) */
    q.concurrent = 2;
    u = (struct chal_usage){4, 9, 1, 0};
    CHECK_INT(chal_admit(&q, &u, NOON, NONE_OPEN, NONE_CLOSE, &retry), CHAL_ADMIT);
    /* Retry-After is rounded up: half a second before midnight -> 1; 1.000001 s -> 2 */
    u = (struct chal_usage){5, 5, 0, 0};
    CHECK_INT(chal_admit(&q, &u, S(1799366400) - 500000, NONE_OPEN, NONE_CLOSE, &retry),
              CHAL_OVER_DAY);
    CHECK_INT(retry, 1);
    CHECK_INT(chal_admit(&q, &u, S(1799366400) - 1000001, NONE_OPEN, NONE_CLOSE, &retry),
              CHAL_OVER_DAY);
    CHECK_INT(retry, 2);
    /* at midnight the day is new: usage of the new day 0 -> admitted (the caller counts) */
    u = (struct chal_usage){0, 5, 0, 0};
    CHECK_INT(chal_admit(&q, &u, S(1799366400), NONE_OPEN, NONE_CLOSE, &retry), CHAL_ADMIT);
    /* no per-day quota */
    q.per_day = -1;
    u = (struct chal_usage){1000, 1000, 0, 0};
    CHECK_INT(chal_admit(&q, &u, NOON, NONE_OPEN, NONE_CLOSE, &retry), CHAL_ADMIT);
    /* per_day 0: nothing ever */
    q.per_day = 0;
    u = (struct chal_usage){0, 0, 0, 0};
    CHECK_INT(chal_admit(&q, &u, NOON, NONE_OPEN, NONE_CLOSE, &retry), CHAL_OVER_DAY);
}

static void test_admit_k_slots(void)
{
    /* 2 of 5 used today (k = 3 left), concurrency 10, 5 submissions arriving at once: each
     * admitted one is pending while the next arrives, so exactly 3 are admitted and the other
     * 2 get the day's 429 */
    struct chal_quota q = {5, -1, 10};
    struct chal_usage u = {2, 2, 0, 0};
    int admitted = 0, over_day = 0;
    for (int i = 0; i < 5; i++) {
        int64_t retry;
        enum chal_verdict v = chal_admit(&q, &u, NOON, NONE_OPEN, NONE_CLOSE, &retry);
        if (v == CHAL_ADMIT) {
            admitted++;
            u.pending++;
            u.pending_today++;
        } else {
            over_day += v == CHAL_OVER_DAY;
        }
    }
    CHECK_INT(admitted, 3);
    CHECK_INT(over_day, 2);
    /* the same with a total of 4 and 2 used (2 left): the total decides first -> 2 admitted */
    q.total = 4;
    u = (struct chal_usage){2, 2, 0, 0};
    admitted = 0;
    int over_total = 0;
    for (int i = 0; i < 5; i++) {
        int64_t retry;
        enum chal_verdict v = chal_admit(&q, &u, NOON, NONE_OPEN, NONE_CLOSE, &retry);
        if (v == CHAL_ADMIT) {
            admitted++;
            u.pending++;
            u.pending_today++;
        } else {
            over_total += v == CHAL_OVER_TOTAL;
        }
    }
    CHECK_INT(admitted, 2);
    CHECK_INT(over_total, 3);
}

static void test_admit_concurrent(void)
{
    struct chal_quota q = {5, -1, 1};
    int64_t retry = -1;
    /* 3 of 5 today and 1 pending: a day slot is left but one is already being scored */
    struct chal_usage u = {3, 3, 1, 1};
    CHECK_INT(chal_admit(&q, &u, NOON, NONE_OPEN, NONE_CLOSE, &retry), CHAL_OVER_CONCURRENT);
    CHECK_INT(retry, CHAL_CONCURRENT_RETRY_S);
    /* concurrency 2: admitted */
    q.concurrent = 2;
    CHECK_INT(chal_admit(&q, &u, NOON, NONE_OPEN, NONE_CLOSE, &retry), CHAL_ADMIT);
    CHECK_INT(retry, 0);
    /* 2 pending (one from yesterday) and concurrency 2 */
    u = (struct chal_usage){1, 1, 2, 1};
    CHECK_INT(chal_admit(&q, &u, NOON, NONE_OPEN, NONE_CLOSE, &retry), CHAL_OVER_CONCURRENT);
}

static void test_admit_total(void)
{
    struct chal_quota q = {5, 10, 1};
    int64_t retry = -1;
    /* 9 of 10: admitted */
    struct chal_usage u = {0, 9, 0, 0};
    CHECK_INT(chal_admit(&q, &u, NOON, NONE_OPEN, NONE_CLOSE, &retry), CHAL_ADMIT);
    /* 10 of 10, no close: a day */
    u = (struct chal_usage){0, 10, 0, 0};
    CHECK_INT(chal_admit(&q, &u, NOON, NONE_OPEN, NONE_CLOSE, &retry), CHAL_OVER_TOTAL);
    CHECK_INT(retry, 86400);
    /* 9 scored and 1 pending hold all 10 */
    u = (struct chal_usage){0, 9, 1, 1};
    CHECK_INT(chal_admit(&q, &u, NOON, NONE_OPEN, NONE_CLOSE, &retry), CHAL_OVER_TOTAL);
    /* closing in 100.5 s: Retry-After 101 */
    u = (struct chal_usage){0, 10, 0, 0};
    CHECK_INT(chal_admit(&q, &u, NOON, NONE_OPEN, NOON + S(100) + 500000, &retry), CHAL_OVER_TOTAL);
    CHECK_INT(retry, 101);
    /* the total comes before the day: 5 of 5 today and 10 of 10 in all -> total */
    u = (struct chal_usage){5, 10, 0, 0};
    CHECK_INT(chal_admit(&q, &u, NOON, NONE_OPEN, NONE_CLOSE, &retry), CHAL_OVER_TOTAL);
}

static void test_admit_window(void)
{
    struct chal_quota q = {5, -1, 1};
    struct chal_usage u = {0, 0, 0, 0};
    int64_t retry = -1;
    /* opens_at itself is open; a microsecond before is not (403: no Retry-After) */
    CHECK_INT(chal_admit(&q, &u, NOON, NOON, NONE_CLOSE, &retry), CHAL_ADMIT);
    CHECK_INT(chal_admit(&q, &u, NOON - 1, NOON, NONE_CLOSE, &retry), CHAL_NOT_OPEN);
    CHECK_INT(retry, 0);
    /* closes_at itself is still open; a microsecond later is closed */
    CHECK_INT(chal_admit(&q, &u, NOON, NONE_OPEN, NOON, &retry), CHAL_ADMIT);
    CHECK_INT(chal_admit(&q, &u, NOON + 1, NONE_OPEN, NOON, &retry), CHAL_CLOSED);
    CHECK_INT(retry, 0);
    /* the window comes before the quota */
    u = (struct chal_usage){5, 5, 1, 1};
    CHECK_INT(chal_admit(&q, &u, NOON + 1, NONE_OPEN, NOON, &retry), CHAL_CLOSED);
    CHECK_INT(chal_admit(&q, &u, NOON - 1, NOON, NONE_CLOSE, &retry), CHAL_NOT_OPEN);
}

static void test_quota_view(void)
{
    struct chal_quota q = {5, -1, 1};
    struct chal_quota_view v;
    /* 3 scored today (this one included) and 1 pending: 5 - 3 - 1 = 1 left */
    struct chal_usage u = {3, 7, 1, 1};
    chal_quota_view(&q, &u, NOON, &v);
    CHECK_INT(v.used_today, 3);
    CHECK_INT(v.per_day, 5);
    CHECK_INT(v.remaining_today, 1);
    CHECK_INT(v.resets_at, S(1799366400));
    CHECK_INT(v.used_total, 7);
    CHECK_INT(v.total, -1);
    /* 5 of 5: none left */
    u = (struct chal_usage){5, 5, 0, 0};
    chal_quota_view(&q, &u, NOON, &v);
    CHECK_INT(v.remaining_today, 0);
    /* more than the quota (it was lowered): still 0, not negative */
    u = (struct chal_usage){7, 7, 0, 0};
    chal_quota_view(&q, &u, NOON, &v);
    CHECK_INT(v.remaining_today, 0);
    /* no per-day quota, a total of 20 */
    q = (struct chal_quota){-1, 20, 1};
    u = (struct chal_usage){2, 3, 0, 0};
    chal_quota_view(&q, &u, NOON, &v);
    CHECK_INT(v.per_day, -1);
    CHECK_INT(v.remaining_today, -1);
    CHECK_INT(v.used_today, 2);
    CHECK_INT(v.used_total, 3);
    CHECK_INT(v.total, 20);
}

static void test_verdict_detail(void)
{
    struct chal_quota q = {5, 10, 1};
    char buf[200];
    struct chal_usage u = {5, 5, 0, 0};
    chal_verdict_detail(CHAL_OVER_DAY, &q, &u, NOON, NONE_OPEN, NONE_CLOSE, buf, sizeof buf);
    CHECK(strcmp(buf, "quota: 5 of 5 submissions today; the count resets at "
                      "2027-01-08T00:00:00Z") == 0);
    /* the day's last slot held by a pending one */
    u = (struct chal_usage){4, 4, 1, 1};
    chal_verdict_detail(CHAL_OVER_DAY, &q, &u, NOON, NONE_OPEN, NONE_CLOSE, buf, sizeof buf);
    CHECK(strcmp(buf, "quota: 4 of 5 submissions today and 1 being scored; the count resets at "
                      "2027-01-08T00:00:00Z") == 0);
    u = (struct chal_usage){1, 3, 2, 2};
    chal_verdict_detail(CHAL_OVER_CONCURRENT, &q, &u, NOON, NONE_OPEN, NONE_CLOSE, buf, sizeof buf);
    CHECK(strcmp(buf, "quota: 2 submissions are being scored and 1 may be at once; retry in 5 s") ==
          0);
    u.pending = 1;
    chal_verdict_detail(CHAL_OVER_CONCURRENT, &q, &u, NOON, NONE_OPEN, NONE_CLOSE, buf, sizeof buf);
    CHECK(strcmp(buf, "quota: 1 submission is being scored and 1 may be at once; retry in 5 s") ==
          0);
    u = (struct chal_usage){0, 10, 0, 0};
    chal_verdict_detail(CHAL_OVER_TOTAL, &q, &u, NOON, NONE_OPEN, NONE_CLOSE, buf, sizeof buf);
    CHECK(strcmp(buf, "quota: 10 of 10 submissions in total; no more are allowed") == 0);
    /* 2027-01-08T00:00:00Z = 1799366400, 2027-06-30T23:59:59Z = 1814399999 (test_time_parse) */
    chal_verdict_detail(CHAL_NOT_OPEN, &q, &u, NOON, S(1799366400), NONE_CLOSE, buf, sizeof buf);
    CHECK(strcmp(buf, "the challenge opens at 2027-01-08T00:00:00Z") == 0);
    chal_verdict_detail(CHAL_CLOSED, &q, &u, NOON, NONE_OPEN, S(1814399999), buf, sizeof buf);
    CHECK(strcmp(buf, "the challenge closed at 2027-06-30T23:59:59Z") == 0);
    chal_verdict_detail(CHAL_ADMIT, &q, &u, NOON, NONE_OPEN, NONE_CLOSE, buf, sizeof buf);
    CHECK(strcmp(buf, "") == 0);
    /* a small buffer is cut and terminated: 9 characters and the NUL */
    char small[10];
    chal_verdict_detail(CHAL_CLOSED, &q, &u, NOON, NONE_OPEN, S(1814399999), small, sizeof small);
    CHECK(strcmp(small, "the chall") == 0);
}

static const struct check_test tests[] = {
    CHECK_TEST(test_names),
    CHECK_TEST(test_image_ids),
    CHECK_TEST(test_participants),
    CHECK_TEST(test_time_parse),
    CHECK_TEST(test_time_format),
    CHECK_TEST(test_next_utc_day),
    CHECK_TEST(test_public_count),
    CHECK_TEST(test_split),
    CHECK_TEST(test_rank_two_keys),
    CHECK_TEST(test_rank_ties),
    CHECK_TEST(test_rank_nulls),
    CHECK_TEST(test_rank_many),
    CHECK_TEST(test_keep),
    CHECK_TEST(test_private_choice),
    CHECK_TEST(test_admit_day),
    CHECK_TEST(test_admit_k_slots),
    CHECK_TEST(test_admit_concurrent),
    CHECK_TEST(test_admit_total),
    CHECK_TEST(test_admit_window),
    CHECK_TEST(test_quota_view),
    CHECK_TEST(test_verdict_detail),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_chal_rules", tests);
}
