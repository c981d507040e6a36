/* chal_board.c - leaderboards (CHALLENGES.md "Leaderboards"): the rankable submissions read
 * once, ranked by the rules of chal_rules.c (best or latest, finals for the private split), written
 * as JSON or CSV, and kept as rendered until the store's next write.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../proto/internal.h" /* proto/internal.h: slp__parse_spec, the JSON writers */
#include "chal_internal.h"
#include "sha256.h"

/* ---- leaderboards ------------------------------------------------------------------------- */

/* One leaderboard: the rows shown, ranked. */
struct chal_standings {
    struct store_sub *subs; /* the rankable submissions (owned) */
    size_t nsubs;
    double *vals;          /* nsubs x nranking, split's ranking values */
    struct chal_row *rows; /* shown rows, ranked; rows[i].seq indexes subs via sub_of */
    size_t nrows;
    size_t *sub_of;   /* rows[i] -> index into subs */
    int64_t *entries; /* per row: its participant's scored submissions */
};

/* The values of keys (n) in a values object text (NULL: all NaN) into out. The text is a flat
 * object {key: number or null} as chal_score.c writes it (json_dumps, compact): each key is
 * found as its JSON string followed by ':' (jansson writes keys as these needles escape them),
 * which takes no parse and no allocation - a leaderboard reads 20,000 of them. */
static void values_of(const char *text, char needles[][SLC_VALUE_KEY_MAX * 2 + 4], int n,
                      double *out)
{
    for (int k = 0; k < n; k++) {
        const char *at = text ? strstr(text, needles[k]) : NULL;
        out[k] = NAN;
        if (at) {
            char *end;
            double v = strtod(at + strlen(needles[k]), &end);
            if (end != at + strlen(needles[k])) {
                out[k] = v;
            }
        }
    }
}

/* The needle of values_of for each key: "\"key\":" (the key JSON-escaped). */
static void key_needles(const struct slc_key *keys, int n,
                        char needles[][SLC_VALUE_KEY_MAX * 2 + 4])
{
    for (int k = 0; k < n; k++) {
        json_t *j = json_string(keys[k].key);
        char *q = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
        snprintf(needles[k], sizeof needles[k], "%s:", q ? q : "\"\"");
        free(q);
        json_decref(j);
    }
}

static void board_free(struct chal_standings *b)
{
    store_sub_free(b->subs, b->nsubs);
    free(b->vals);
    free(b->rows);
    free(b->sub_of);
    free(b->entries);
    memset(b, 0, sizeof *b);
}

/* The order of cfg's ranking. */
static void order_of(const struct slc_config *cfg, struct chal_order *o)
{
    o->nkeys = cfg->nranking;
    for (int k = 0; k < cfg->nranking; k++) {
        o->desc[k] = cfg->ranking[k].desc;
    }
}

/* Fills a row for submission i of b under split s. */
static struct chal_row row_of(struct chal_standings *b, size_t i, int nkeys)
{
    struct chal_row r = {b->vals + i * (size_t)nkeys, b->subs[i].received_at, (int64_t)i,
                         b->subs[i].participant, 0};
    return r;
}

/* Orders submission indices by participant, then index (qsort's context-free comparison
 * reads the participant ids through a pointer pair). */
struct by_part {
    int64_t participant;
    size_t i;
};
static int cmp_by_part(const void *a, const void *b)
{
    const struct by_part *x = a, *y = b;
    if (x->participant != y->participant) {
        return x->participant < y->participant ? -1 : 1;
    }
    return x->i < y->i ? -1 : x->i > y->i;
}

/* Builds the leaderboard of split s (0 public, 1 private) of challenge c: O(n log n) in the
 * rankable submissions n. */
static int board_build(struct chal_server *cs, const char *c, const struct slc_config *cfg, int s,
                       struct chal_standings *b, char *msg, size_t msglen)
{
    memset(b, 0, sizeof *b);
    int rc = store_ranked_subs(cs->store, c, &b->subs, &b->nsubs, msg, msglen);
    if (rc) {
        return rc;
    }
    const int nk = cfg->nranking;
    size_t n = b->nsubs;
    char needles[SLC_MAX_KEYS][SLC_VALUE_KEY_MAX * 2 + 4];
    key_needles(cfg->ranking, nk, needles);
    b->vals = calloc(n * (size_t)nk * 2 + 1, sizeof *b->vals);
    b->rows = calloc(n + 1, sizeof *b->rows);
    b->sub_of = calloc(n + 1, sizeof *b->sub_of);
    b->entries = calloc(n + 1, sizeof *b->entries);
    struct by_part *order = calloc(n + 1, sizeof *order);
    struct chal_row *pub = calloc(n + 1, sizeof *pub), *priv = calloc(n + 1, sizeof *priv);
    bool *fin = calloc(n + 1, sizeof *fin);
    if (!b->vals || !b->rows || !b->sub_of || !b->entries || !order || !pub || !priv || !fin) {
        rc = SL_ENOMEM;
        snprintf(msg, msglen, "out of memory");
        goto out;
    }
    /* vals: the public values first (n x nk), then the private ones */
    for (size_t i = 0; i < n; i++) {
        values_of(b->subs[i].pub_values, needles, nk, b->vals + i * (size_t)nk);
        if (s == 1) {
            values_of(b->subs[i].priv_values, needles, nk, b->vals + (n + i) * (size_t)nk);
        }
        order[i] = (struct by_part){b->subs[i].participant, i};
    }
    qsort(order, n, sizeof *order, cmp_by_part);
    struct chal_order o;
    order_of(cfg, &o);
    /* one group of order per participant: [g, e) */
    for (size_t g = 0, e; g < n; g = e) {
        for (e = g; e < n && order[e].participant == order[g].participant; e++) {
        }
        size_t m = e - g;
        for (size_t k = 0; k < m; k++) {
            size_t i = order[g + k].i;
            pub[k] = row_of(b, i, nk);
            priv[k] = pub[k];
            priv[k].vals = b->vals + (n + i) * (size_t)nk;
            fin[k] = b->subs[i].final_;
        }
        long pick;
        if (s == 0) {
            pick = (long)chal_keep_per_participant(pub, m, &o, cfg->keep_latest) > 0 ? 0 : -1;
        } else {
            pick = chal_private_choice(pub, priv, fin, m, (int)cfg->final_selections, &o, &o);
        }
        if (pick >= 0) {
            b->rows[b->nrows++] = s == 0 ? pub[pick] : priv[pick];
        }
    }
    /* entries follow their row through the ranking: kept by participant id */
    chal_rank(b->rows, b->nrows, &o);
    for (size_t r = 0; r < b->nrows; r++) {
        b->sub_of[r] = (size_t)b->rows[r].seq;
    }
    {
        /* the participant's scored submissions: the size of its group in order */
        for (size_t r = 0; r < b->nrows; r++) {
            struct by_part key = {b->rows[r].participant, 0};
            struct by_part *lo = order, *hi = order + n;
            while (lo < hi) {
                struct by_part *mid = lo + (hi - lo) / 2;
                if (cmp_by_part(mid, &key) < 0) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            size_t e = (size_t)(lo - order);
            while (e < n && order[e].participant == key.participant) {
                e++;
            }
            b->entries[r] = (int64_t)(e - (size_t)(lo - order));
        }
    }
out:
    free(order);
    free(pub);
    free(priv);
    free(fin);
    if (rc) {
        board_free(b);
    }
    return rc;
}

/* Appends a CSV cell (quoted when needed) to d. */
void chal_csv_cell(struct slp_dynbuf *d, const char *s, bool first)
{
    if (!first) {
        slp_dynbuf_add(d, ",", 1);
    }
    if (!strpbrk(s, ",\"\r\n")) {
        slp_dynbuf_adds(d, s);
        return;
    }
    slp_dynbuf_add(d, "\"", 1);
    for (const char *p = s; *p; p++) {
        slp_dynbuf_add(d, p, 1);
        if (*p == '"') {
            slp_dynbuf_add(d, "\"", 1);
        }
    }
    slp_dynbuf_add(d, "\"", 1);
}

/* Appends a number cell ("" for null). */
void chal_csv_num(struct slp_dynbuf *d, const json_t *x)
{
    slp_dynbuf_add(d, ",", 1);
    if (json_is_number(x)) {
        slp__write_num(d, json_number_value(x));
    }
}

/* The scores object {column: value} of a values text. */
/* The scores object {column: value or null} of a values text, its columns' needles given. */
static json_t *scores_of(const char *values, char needles[][SLC_VALUE_KEY_MAX * 2 + 4],
                         const struct slc_config *cfg)
{
    double vals[SLC_MAX_KEYS];
    values_of(values, needles, cfg->ncolumns, vals);
    json_t *o = json_object();
    for (int k = 0; k < cfg->ncolumns; k++) {
        json_object_set_new(o, cfg->columns[k].key,
                            isnan(vals[k]) ? json_null() : json_real(vals[k]));
    }
    return o;
}

double chal_value_of(const char *values, const struct slc_key *key)
{
    char needles[1][SLC_VALUE_KEY_MAX * 2 + 4];
    double v;
    key_needles(key, 1, needles);
    values_of(values, needles, 1, &v);
    return v;
}

json_t *chal_scores_json(const char *values, const struct slc_config *cfg)
{
    char needles[SLC_MAX_KEYS][SLC_VALUE_KEY_MAX * 2 + 4];
    key_needles(cfg->columns, cfg->ncolumns, needles);
    return scores_of(values, needles, cfg);
}

/* Board b (built, borrowed) of split s of challenge c as CSV or JSON text (a new string in *out
 * of *len bytes). Returns 0 or SL_ENOMEM with msg. */
static int board_text(const struct chal_standings *bp, const struct store_challenge *c,
                      const struct slc_config *cfg, int s, bool csv, char **out, size_t *len,
                      char *msg, size_t msglen)
{
    const struct chal_standings b = *bp;
    *out = NULL;
    char needles[SLC_MAX_KEYS][SLC_VALUE_KEY_MAX * 2 + 4];
    key_needles(cfg->columns, cfg->ncolumns, needles);
    double vals[SLC_MAX_KEYS];
    if (csv) {
        struct slp_dynbuf d;
        slp_dynbuf_init(&d, SLP_ANSWER_MAX);
        slp_dynbuf_adds(&d, "rank,participant,submission,submitted_at");
        for (int k = 0; k < cfg->ncolumns; k++) {
            chal_csv_cell(&d, cfg->columns[k].key, false);
        }
        slp_dynbuf_adds(&d, "\r\n");
        for (size_t r = 0; r < b.nrows; r++) {
            const struct store_sub *sub = &b.subs[b.sub_of[r]];
            char at[40];
            chal_time_format(sub->received_at, at, sizeof at);
            slp__write_int(&d, b.rows[r].rank);
            chal_csv_cell(&d, sub->participant_name, false);
            chal_csv_cell(&d, sub->id, false);
            chal_csv_cell(&d, at, false);
            values_of(s == 0 ? sub->pub_values : sub->priv_values, needles, cfg->ncolumns, vals);
            for (int k = 0; k < cfg->ncolumns; k++) {
                slp_dynbuf_add(&d, ",", 1);
                if (!isnan(vals[k])) {
                    slp__write_num(&d, vals[k]);
                }
            }
            slp_dynbuf_adds(&d, "\r\n");
        }
        *out = d.err ? NULL : slp_dynbuf_take(&d, len);
        slp_dynbuf_free(&d);
    } else {
        json_t *rows = json_array();
        for (size_t r = 0; r < b.nrows; r++) {
            const struct store_sub *sub = &b.subs[b.sub_of[r]];
            char at[40];
            chal_time_format(sub->received_at, at, sizeof at);
            json_t *scores = scores_of(s == 0 ? sub->pub_values : sub->priv_values, needles, cfg);
            json_array_append_new(rows, json_pack("{s:I, s:s, s:s, s:s, s:o, s:I, s:s, s:b}",
                                                  "rank", (json_int_t)b.rows[r].rank, "participant",
                                                  sub->participant_name, "submission", sub->id,
                                                  "submitted_at", at, "scores", scores, "entries",
                                                  (json_int_t)b.entries[r], "note",
                                                  sub->note ? sub->note : "", "stale", sub->stale));
        }
        json_t *doc =
            json_pack("{s:s, s:s, s:I, s:o, s:o}", "challenge", c->name, "split",
                      s == 0 ? "public" : "private", "version", (json_int_t)c->version, "columns",
                      chal_keys_json(cfg->columns, cfg->ncolumns, cfg), "rows", rows);
        *out = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
        *len = *out ? strlen(*out) : 0;
        json_decref(doc);
    }
    if (!*out) {
        snprintf(msg, msglen, "out of memory");
        return SL_ENOMEM;
    }
    return 0;
}

/* A copy of the cached text (challenge, split s, form, tag) made under store generation gen, or
 * NULL when there is none. The copy is the caller's (*len bytes). */
static char *board_cached(struct chal_server *cs, const char *challenge, int s, enum chal_form form,
                          uint64_t gen, uint64_t tag, size_t *len)
{
    char *copy = NULL;
    pthread_mutex_lock(&cs->mu);
    for (int i = 0; i < CHAL_BOARD_CACHE; i++) {
        struct chal_board *e = &cs->boards[i];
        if (e->text && e->gen == gen && e->split == s && e->form == form && e->tag == tag &&
            strcmp(e->challenge, challenge) == 0) {
            copy = malloc(e->len + 1);
            if (copy) {
                memcpy(copy, e->text, e->len + 1);
                *len = e->len;
            }
            break;
        }
    }
    pthread_mutex_unlock(&cs->mu);
    return copy;
}

/* Keeps a copy of text (len bytes, made under generation gen), replacing the entry of the same
 * challenge, split and form, or the oldest. */
static void board_cache_put(struct chal_server *cs, const char *challenge, int s,
                            enum chal_form form, uint64_t gen, uint64_t tag, const char *text,
                            size_t len)
{
    char *copy = malloc(len + 1);
    if (!copy) {
        return;
    }
    memcpy(copy, text, len + 1);
    pthread_mutex_lock(&cs->mu);
    int at = cs->next_board;
    for (int i = 0; i < CHAL_BOARD_CACHE; i++) {
        struct chal_board *e = &cs->boards[i];
        if (e->text && e->split == s && e->form == form && strcmp(e->challenge, challenge) == 0) {
            at = i;
            break;
        }
    }
    if (at == cs->next_board) {
        cs->next_board = (cs->next_board + 1) % CHAL_BOARD_CACHE;
    }
    struct chal_board *e = &cs->boards[at];
    free(e->text);
    snprintf(e->challenge, sizeof e->challenge, "%s", challenge);
    e->split = s;
    e->form = form;
    e->gen = gen;
    e->tag = tag;
    e->text = copy;
    e->len = len;
    pthread_mutex_unlock(&cs->mu);
}

char *chal_page_cached(struct chal_server *cs, const char *challenge, uint64_t gen, uint64_t tag,
                       size_t *len)
{
    return board_cached(cs, challenge, 0, CHAL_FORM_PAGE, gen, tag, len);
}

void chal_page_cache_put(struct chal_server *cs, const char *challenge, uint64_t gen, uint64_t tag,
                         const char *text, size_t len)
{
    board_cache_put(cs, challenge, 0, CHAL_FORM_PAGE, gen, tag, text, len);
}

/* ---- the chart's history, kept with the public leaderboard -------------------------------- */

/* The history of public board b (built) under cfg into h. Returns chal_history_build's code. */
static int history_of(const struct chal_standings *b, const struct slc_config *cfg,
                      struct chal_history *h)
{
    const char *top[CHAL_CHART_TOP];
    int ntop = 0;
    for (size_t r = 0; r < b->nrows && ntop < CHAL_CHART_TOP; r++) {
        top[ntop++] = b->subs[b->sub_of[r]].participant_name;
    }
    return chal_history_build(b->subs, b->nsubs, top, ntop, cfg, h);
}

/* h as one block for the cache (a new buffer of *len bytes): the struct, its point arrays
 * after it. NULL when out of memory. */
static char *history_pack(const struct chal_history *h, size_t *len)
{
    size_t n = sizeof *h;
    for (int k = 0; k < h->n; k++) {
        n += h->series[k].npts * sizeof(struct chal_point);
    }
    char *blob = malloc(n + 1);
    if (!blob) {
        return NULL;
    }
    struct chal_history head = *h;
    char *at = blob + sizeof head;
    for (int k = 0; k < h->n; k++) {
        size_t m = h->series[k].npts * sizeof(struct chal_point);
        if (m) {
            memcpy(at, h->series[k].pts, m);
        }
        at += m;
        head.series[k].pts = NULL;
    }
    memcpy(blob, &head, sizeof head);
    blob[n] = '\0';
    *len = n;
    return blob;
}

/* h (chal_history_clear) from a block of history_pack (len bytes). Returns 0 or SL_ENOMEM. */
static int history_unpack(const char *blob, size_t len, struct chal_history *h)
{
    memcpy(h, blob, sizeof *h);
    const char *at = blob + sizeof *h;
    int n = h->n;
    h->n = 0;
    for (int k = 0; k < n; k++) {
        size_t m = h->series[k].npts * sizeof(struct chal_point);
        h->series[k].pts = NULL;
        if (at + m > blob + len || (m && !(h->series[k].pts = malloc(m)))) {
            h->series[k].npts = 0;
            chal_history_clear(h);
            return SL_ENOMEM;
        }
        if (m) {
            memcpy(h->series[k].pts, at, m);
        }
        at += m;
        h->n = k + 1;
    }
    return 0;
}

/* Keeps the history of public board b (made under generation gen) of challenge c. */
static void history_cache_put(struct chal_server *cs, const char *challenge,
                              const struct chal_standings *b, const struct slc_config *cfg,
                              uint64_t gen)
{
    struct chal_history h;
    size_t len = 0;
    if (history_of(b, cfg, &h) != 0) {
        return;
    }
    char *blob = history_pack(&h, &len);
    chal_history_clear(&h);
    if (blob) {
        board_cache_put(cs, challenge, 0, CHAL_FORM_HISTORY, gen, 0, blob, len);
        free(blob);
    }
}

int chal_board_history(struct chal_server *cs, const struct store_challenge *c,
                       const struct slc_config *cfg, struct chal_history *h)
{
    memset(h, 0, sizeof *h);
    uint64_t gen = store_generation(cs->store);
    size_t len = 0;
    char *blob = board_cached(cs, c->name, 0, CHAL_FORM_HISTORY, gen, 0, &len);
    if (blob) {
        int rc = history_unpack(blob, len, h);
        free(blob);
        return rc;
    }
    struct chal_standings b;
    char msg[256];
    int rc = board_build(cs, c->name, cfg, 0, &b, msg, sizeof msg);
    if (rc) {
        chal_log_store("leaderboard history", msg);
        return rc;
    }
    rc = history_of(&b, cfg, h);
    if (rc == 0) {
        char *packed = history_pack(h, &len);
        if (packed) {
            board_cache_put(cs, c->name, 0, CHAL_FORM_HISTORY, gen, 0, packed, len);
            free(packed);
        }
    }
    board_free(&b);
    return rc;
}

/* The text of the leaderboard (split s, csv or JSON) of challenge c: the cached one of the
 * store's current generation, else built, rendered and cached. A new string of *len bytes, or
 * NULL when the store or memory failed (logged). */
static char *board_get(struct chal_server *cs, const struct store_challenge *c,
                       const struct slc_config *cfg, int s, bool csv, size_t *len)
{
    char msg[256];
    uint64_t gen = store_generation(cs->store);
    char *text = board_cached(cs, c->name, s, csv ? CHAL_FORM_CSV : CHAL_FORM_JSON, gen, 0, len);
    if (text) {
        return text;
    }
    struct chal_standings b;
    int rc = board_build(cs, c->name, cfg, s, &b, msg, sizeof msg);
    if (rc == 0) {
        rc = board_text(&b, c, cfg, s, csv, &text, len, msg, sizeof msg);
        if (s == 0) {
            history_cache_put(cs, c->name, &b, cfg, gen);
        }
        board_free(&b);
    }
    if (rc == 0) {
        board_cache_put(cs, c->name, s, csv ? CHAL_FORM_CSV : CHAL_FORM_JSON, gen, 0, text, *len);
    } else if (rc != SL_ENOMEM) {
        chal_log_store("leaderboard", msg);
    }
    return rc == 0 ? text : NULL;
}

json_t *chal_board_doc(struct chal_server *cs, const struct store_challenge *c,
                       const struct slc_config *cfg, int s)
{
    size_t len = 0;
    char *text = board_get(cs, c, cfg, s, false, &len);
    json_t *doc = text ? json_loadb(text, len, 0, NULL) : NULL;
    free(text);
    return doc;
}

enum MHD_Result chal_h_leaderboard(struct srv_req *req)
{
    enum MHD_Result ret;
    if (chal_gate_reply(req, true, NEED_ANYONE, &ret)) {
        return ret;
    }
    struct chal_server *cs = req->srv->chal;
    const char *split = chal_query(req, "split");
    const char *format = chal_query(req, "format");
    int s = !split || strcmp(split, "public") == 0 ? 0 : strcmp(split, "private") == 0 ? 1 : -1;
    if (s < 0) {
        return chal_reply_problem(req, 422, "split: '%.40s' is not public or private", split);
    }
    if (format && strcmp(format, "csv") != 0 && strcmp(format, "json") != 0) {
        return chal_reply_problem(req, 422, "format: '%.40s' is not json or csv", format);
    }
    struct store_challenge c;
    struct slc_config *cfg;
    char buf[400];
    int st = chal_load(cs, req->params[0], &req->srv->limits, &c, &cfg, buf, sizeof buf);
    if (st) {
        return chal_reply_problem(req, st, "%s", buf);
    }
    if (s == 1 && !cfg->private_visible && req->auth.who != WHO_ADMIN) {
        slc_config_free(cfg);
        store_challenge_clear(&c);
        return chal_reply_problem(req, req->auth.who == WHO_ANON ? 401 : 403,
                                  "the private leaderboard is the organiser's until the reveal "
                                  "(private_visible)");
    }
    bool csv = format && strcmp(format, "csv") == 0;
    size_t len = 0;
    char *text = board_get(cs, &c, cfg, s, csv, &len);
    slc_config_free(cfg);
    store_challenge_clear(&c);
    if (!text) {
        return chal_reply_problem(req, 503, "the leaderboard could not be made (store or memory)");
    }
    return srv_reply_hdrs(req, 200, csv ? "text/csv; charset=utf-8" : "application/json", text, len,
                          true, NULL);
}

/* Compares the ranking values a and b under o: negative when a is better, 0 when equal
 * (nulls equal each other and rank below every number). */
static int keys_cmp(const double *a, const double *b, const struct chal_order *o)
{
    for (int k = 0; k < o->nkeys; k++) {
        bool na = isnan(a[k]), nb = isnan(b[k]);
        if (na || nb) {
            if (na != nb) {
                return na ? 1 : -1;
            }
            continue;
        }
        if (a[k] != b[k]) {
            bool a_better = o->desc[k] ? a[k] > b[k] : a[k] < b[k];
            return a_better ? -1 : 1;
        }
    }
    return 0;
}

/* The public rank a submission with values of participant pid holds on public board b: 1 + the
 * other participants' shown rows that are better on the ranking keys (equal ones share it). */
static int64_t public_rank(const struct chal_standings *b, const struct slc_config *cfg,
                           const char *values, int64_t pid)
{
    double mine[SLC_MAX_KEYS];
    char needles[SLC_MAX_KEYS][SLC_VALUE_KEY_MAX * 2 + 4];
    key_needles(cfg->ranking, cfg->nranking, needles);
    values_of(values, needles, cfg->nranking, mine);
    struct chal_order o;
    order_of(cfg, &o);
    int64_t rank = 1;
    for (size_t r = 0; r < b->nrows; r++) {
        if (b->rows[r].participant != pid && keys_cmp(b->rows[r].vals, mine, &o) < 0) {
            rank++;
        }
    }
    return rank;
}

int64_t chal_board_refresh(struct chal_server *cs, const struct store_challenge *c,
                           const struct slc_config *cfg, const char *values, int64_t pid)
{
    uint64_t gen = store_generation(cs->store);
    struct chal_standings b;
    char msg[256], *text = NULL;
    size_t len = 0;
    if (board_build(cs, c->name, cfg, 0, &b, msg, sizeof msg) != 0) {
        chal_log_store("leaderboard", msg);
        return -1;
    }
    int64_t rank = values ? public_rank(&b, cfg, values, pid) : -1;
    if (board_text(&b, c, cfg, 0, false, &text, &len, msg, sizeof msg) == 0) {
        board_cache_put(cs, c->name, 0, CHAL_FORM_JSON, gen, 0, text, len);
        free(text);
    }
    history_cache_put(cs, c->name, &b, cfg, gen);
    board_free(&b);
    return rank;
}

void chal_board_refresh_name(struct chal_server *cs, const char *name, const struct slp_limits *lim)
{
    struct store_challenge c;
    struct slc_config *cfg;
    char buf[400];
    if (chal_load(cs, name, lim, &c, &cfg, buf, sizeof buf) == 0) {
        chal_board_refresh(cs, &c, cfg, NULL, 0);
        slc_config_free(cfg);
        store_challenge_clear(&c);
    }
}
