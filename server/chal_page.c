/* chal_page.c - the leaderboard pages (their structure: docs/html.md): GET /challenges
 * lists the challenges, GET /challenges/{c} shows one: its rules, the public leaderboard, the
 * private one once revealed, the re-score's progress and a chart of the top participants' best
 * public score over time.
 *
 * The pages are public (no token is read: every reader sees what an anonymous reader of the JSON
 * routes sees) and are made from the same documents the JSON routes answer: the description
 * (chal_describe), the leaderboards (chal_board_doc, the same cache as GET .../leaderboard), so a
 * page's rows are the JSON rows by construction. Rendering takes those documents and appends
 * HTML (proto/html.h: every organiser's or participant's string escaped) to a buffer, apart from
 * HTTP, so that it can be tested and timed on its own.
 *
 * A page is self-contained: inline CSS and SVG, and a few lines of JavaScript that sort a table
 * when its header is clicked (without it the server's order stands). Errors: an unknown
 * challenge, or challenges off, is a 404 page in HTML, or problem+json when the client's Accept
 * asks for JSON and not for HTML.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chal_internal.h"
#include "html.h"

static const char off_detail[] =
    "challenges are off on this server; start seglossd with --data-dir DIR (env "
    "SEGLOSS_DATA_DIR) to turn them on";

/* What the pages add to proto/html.c's common style. */
static const char page_css[] =
    "p.description{white-space:pre-line}"
    "dl#rules{display:grid;grid-template-columns:max-content 1fr;gap:.25rem .9rem;margin:.8rem 0}"
    "dl#rules dt{font-weight:600}dl#rules dd{margin:0}"
    "@media (max-width:30rem){dl#rules{grid-template-columns:1fr}dl#rules dd{margin-bottom:.4rem}}"
    "th[data-key]{cursor:pointer}th .dir{display:block;font-weight:400;font-size:.8rem;color:#555}"
    "tr.stale td{color:#777}tr.stale td.participant::after{content:' (stale)';font-size:.8rem}"
    "td.note{min-width:8rem;max-width:18rem;overflow-wrap:anywhere}"
    "td.participant{overflow-wrap:anywhere}"
    "th[aria-sort=ascending]::after{content:' \\25B2'}th[aria-sort=descending]::after{content:' "
    "\\25BC'}"
    "progress{width:12rem;max-width:100%;vertical-align:middle}"
    "svg#history text{font-size:11px;fill:#333}"
    "svg#history .grid{stroke:#e4e4e4}svg#history .axis{stroke:#666}"
    "svg#history path.series{fill:none;stroke-width:2}";

/* Sorts a table by a clicked (or Enter-pressed) header: numbers by data-value or their text
 * (null last), times by datetime, other cells by text; a score column first in its better
 * direction. Plain ES5 and DOM calls every current browser has. */
static const char sort_js[] =
    "(function(){"
    "function val(td){var v=td.getAttribute('data-value');"
    "if(v!==null){return v==='null'?null:parseFloat(v);}"
    "var tm=td.querySelector('time');if(tm){return tm.getAttribute('datetime');}"
    "if(td.className.indexOf('num')>=0||td.className.indexOf('rank')>=0){"
    "var n=parseFloat(td.textContent);return isNaN(n)?null:n;}"
    "return td.textContent.toLowerCase();}"
    "var tables=document.querySelectorAll('table.board');"
    "for(var t=0;t<tables.length;t++){(function(tb){"
    "var ths=tb.tHead.rows[0].cells;"
    "for(var i=0;i<ths.length;i++){(function(th,i){"
    "th.tabIndex=0;"
    "function go(){var body=tb.tBodies[0];var rows=[];"
    "for(var r=0;r<body.rows.length;r++){rows.push(body.rows[r]);}"
    "var s=th.getAttribute('aria-sort');"
    "var up=s==='ascending'?false:s==='descending'?true:th.getAttribute('data-order')!=='desc';"
    "rows.sort(function(a,b){var x=val(a.cells[i]),y=val(b.cells[i]);"
    "if(x===y){return 0;}if(x===null){return 1;}if(y===null){return -1;}"
    "return (x<y?-1:1)*(up?1:-1);});"
    "for(var k=0;k<ths.length;k++){ths[k].removeAttribute('aria-sort');}"
    "th.setAttribute('aria-sort',up?'ascending':'descending');"
    "for(var q=0;q<rows.length;q++){body.appendChild(rows[q]);}}"
    "th.addEventListener('click',go);"
    "th.addEventListener('keydown',function(e){if(e.key==='Enter'){go();}});"
    "})(ths[i],i);}"
    "})(tables[t]);}"
    "})();";

/* The series' colours: Paul Tol's muted scheme, then its dark grey (the tenth is dashed too). */
static const char *const series_colour[CHAL_CHART_TOP] = {
    "#332288", "#88CCEE", "#44AA99", "#117733", "#999933",
    "#DDCC77", "#CC6677", "#882255", "#AA4499", "#555555"};

/* ---- the chart's data ------------------------------------------------------------------------ */

size_t chal_best_so_far(const struct chal_point *in, size_t n, bool desc, struct chal_point *out)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        double v = in[i].v;
        if (isnan(v)) {
            continue;
        }
        if (m == 0 || (desc ? v > out[m - 1].v : v < out[m - 1].v)) {
            out[m++] = in[i];
        }
    }
    return m;
}

void chal_history_clear(struct chal_history *h)
{
    for (int i = 0; i < h->n; i++) {
        free(h->series[i].pts);
    }
    memset(h, 0, sizeof *h);
}

int chal_history_build(const struct store_sub *subs, size_t n, const char *const *top, int ntop,
                       const struct slc_config *cfg, struct chal_history *h)
{
    memset(h, 0, sizeof *h);
    if (cfg->nranking < 1) {
        return 0;
    }
    snprintf(h->key, sizeof h->key, "%s", cfg->ranking[0].key);
    h->desc = cfg->ranking[0].desc;
    size_t cap[CHAL_CHART_TOP] = {0};
    for (int r = 0; r < ntop && h->n < CHAL_CHART_TOP; r++) {
        snprintf(h->series[h->n].participant, STORE_NAME_MAX, "%s", top[r]);
        h->n++;
    }
    /* each top participant's submissions in time order, then their running best in place */
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k < h->n; k++) {
            if (strcmp(subs[i].participant_name, h->series[k].participant) != 0) {
                continue;
            }
            if (h->series[k].npts == cap[k]) {
                size_t c = cap[k] ? 2 * cap[k] : 8;
                struct chal_point *p = realloc(h->series[k].pts, c * sizeof *p);
                if (!p) {
                    chal_history_clear(h);
                    return SL_ENOMEM;
                }
                h->series[k].pts = p;
                cap[k] = c;
            }
            struct chal_point pt = {subs[i].received_at,
                                    chal_value_of(subs[i].pub_values, &cfg->ranking[0])};
            h->series[k].pts[h->series[k].npts++] = pt;
            break;
        }
    }
    for (int k = 0; k < h->n; k++) {
        /* out may be in: chal_best_so_far writes at most as far as it has read */
        h->series[k].npts =
            chal_best_so_far(h->series[k].pts, h->series[k].npts, h->desc, h->series[k].pts);
    }
    return 0;
}

/* ---- pieces of a page ------------------------------------------------------------------------ */

/* A JSON string member of o, or "" (borrowed). */
static const char *str_of(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* An integer member of o, or dflt when it is not one. */
static long long int_of(const json_t *o, const char *key, long long dflt)
{
    const json_t *x = json_object_get(o, key);
    return json_is_integer(x) ? (long long)json_integer_value(x) : dflt;
}

/* Appends t (RFC 3339 text) as <time datetime="t">YYYY-MM-DD HH:MM UTC</time>; text that is not
 * a time is shown escaped as it is. */
static void put_time_text(struct slp_dynbuf *b, const char *t)
{
    chal_time v;
    if (chal_time_parse(t, &v) != 0) {
        slp_html_text(b, t);
        return;
    }
    char iso[40];
    chal_time_format(v, iso, sizeof iso);
    slp_dynbuf_adds(b, "<time datetime=\"");
    slp_html_attr(b, iso);
    slp_dynbuf_addf(b, "\">%.10s %.5s UTC</time>", iso, iso + 11);
}

/* put_time_text of time t. */
static void put_time(struct slp_dynbuf *b, chal_time t)
{
    char iso[40];
    chal_time_format(t, iso, sizeof iso);
    put_time_text(b, iso);
}

/* The time of a description's member key (RFC 3339 or null) into *t; false when null/absent. */
static bool time_of(const json_t *o, const char *key, chal_time *t)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s && chal_time_parse(s, t) == 0;
}

/* Appends the rules: window, quota, the daily reset, keep, final selections, counts. */
static void put_rules(struct slp_dynbuf *b, const json_t *desc, chal_time now)
{
    chal_time opens = 0, closes = 0;
    bool has_open = time_of(desc, "opens_at", &opens);
    bool has_close = time_of(desc, "closes_at", &closes);
    slp_dynbuf_adds(b, "<dl id=\"rules\"><dt>Opens</dt><dd>");
    if (has_open) {
        put_time(b, opens);
    } else {
        slp_dynbuf_adds(b, "no opening time (open from the start)");
    }
    slp_dynbuf_adds(b, "</dd><dt>Closes</dt><dd>");
    if (has_close) {
        put_time(b, closes);
    } else {
        slp_dynbuf_adds(b, "no closing time");
    }
    const char *state = has_open && now < opens     ? "not open yet"
                        : has_close && now > closes ? "closed"
                                                    : "open for submissions";
    slp_dynbuf_addf(b, "</dd><dt>Now</dt><dd class=\"state\">%s</dd>", state);

    const json_t *q = json_object_get(desc, "quota");
    long long per_day = int_of(q, "per_day", -1), total = int_of(q, "total", -1);
    long long conc = int_of(q, "concurrent", -1);
    slp_dynbuf_adds(b, "<dt>Quota</dt><dd class=\"quota\">");
    if (per_day >= 0) {
        slp_dynbuf_addf(b, "%lld scored submission%s per participant per UTC day", per_day,
                        per_day == 1 ? "" : "s");
    } else {
        slp_dynbuf_adds(b, "no daily limit");
    }
    if (total >= 0) {
        slp_dynbuf_addf(b, "; %lld in all", total);
    } else {
        slp_dynbuf_adds(b, "; no limit in all");
    }
    if (conc >= 0) {
        slp_dynbuf_addf(b, "; at most %lld being scored at once", conc);
    }
    slp_dynbuf_adds(b, ". Only scored submissions count.</dd>"
                       "<dt>Daily count resets</dt><dd class=\"reset\">");
    put_time(b, chal_next_utc_day(now));
    slp_dynbuf_adds(b, per_day >= 0 ? " (every midnight UTC)"
                                    : " (every midnight UTC; this challenge has no daily limit)");
    const char *keep = str_of(desc, "keep");
    slp_dynbuf_adds(b, "</dd><dt>Keep</dt><dd class=\"keep\">");
    slp_html_text(b, keep);
    slp_dynbuf_adds(b, strcmp(keep, "latest") == 0
                           ? ": each participant's latest submission stands on the public board"
                           : ": each participant's best submission stands on the public board");
    long long fs = int_of(desc, "final_selections", 0);
    slp_dynbuf_addf(b,
                    "</dd><dt>Final selections</dt><dd class=\"finals\">%lld: the private board "
                    "takes the best of a participant's selected finals (or, when it selected "
                    "none, of its %lld best public submissions)</dd>",
                    fs, fs);
    slp_dynbuf_addf(b, "<dt>Participants</dt><dd>%lld</dd><dt>Submissions</dt><dd>%lld</dd></dl>\n",
                    int_of(desc, "participants", 0), int_of(desc, "submissions", 0));
}

/* Appends the re-score's progress while one runs (done + failed < total). */
static void put_rescore(struct slp_dynbuf *b, const json_t *desc)
{
    const json_t *r = json_object_get(desc, "rescore");
    long long done = int_of(r, "done", 0), failed = int_of(r, "failed", 0);
    long long total = int_of(r, "total", 0);
    if (total <= 0 || done + failed >= total) {
        return;
    }
    long long d = done + failed;
    slp_dynbuf_addf(b,
                    "<p class=\"rescore\"><progress id=\"rescore\" value=\"%lld\" max=\"%lld\">"
                    "re-scoring %lld of %lld</progress> re-scoring %lld of %lld",
                    d, total, d, total, d, total);
    if (failed > 0) {
        slp_dynbuf_addf(b, " (%lld failed)", failed);
    }
    slp_dynbuf_adds(b, ": rows marked stale still show their previous scores.</p>\n");
}

/* Appends one leaderboard table (id "public" or "private") of document doc. */
static void put_board(struct slp_dynbuf *b, const char *id, const json_t *doc)
{
    const json_t *cols = json_object_get(doc, "columns");
    const json_t *rows = json_object_get(doc, "rows");
    size_t ncols = json_array_size(cols), nrows = json_array_size(rows);
    slp_dynbuf_addf(b,
                    "<div class=\"scroll\"><table id=\"%s\" class=\"board\"><thead><tr>"
                    "<th class=\"num\">Rank</th><th>Participant</th><th>Note</th>",
                    id);
    for (size_t k = 0; k < ncols; k++) {
        const json_t *c = json_array_get(cols, k);
        const char *key = str_of(c, "key");
        bool desc = strcmp(str_of(c, "order"), "desc") == 0;
        slp_dynbuf_adds(b, "<th class=\"num\" data-key=\"");
        slp_html_attr(b, key);
        slp_dynbuf_addf(b, "\" data-order=\"%s\">", desc ? "desc" : "asc");
        slp_html_text(b, key);
        slp_dynbuf_addf(b, "<span class=\"dir\">%s is better%s</span></th>",
                        desc ? "higher" : "lower",
                        json_is_true(json_object_get(c, "ranking")) ? " (ranks)" : "");
    }
    slp_dynbuf_adds(b, "<th class=\"num\">Entries</th><th>Submitted</th></tr></thead>\n<tbody>");
    for (size_t r = 0; r < nrows; r++) {
        const json_t *row = json_array_get(rows, r);
        const char *who = str_of(row, "participant");
        long long rank = int_of(row, "rank", 0);
        bool stale = json_is_true(json_object_get(row, "stale"));
        slp_dynbuf_adds(b, stale ? "<tr class=\"stale\" data-participant=\""
                                 : "<tr data-participant=\"");
        slp_html_attr(b, who);
        slp_dynbuf_addf(b,
                        "\" data-rank=\"%lld\"><td class=\"rank\">%lld</td>"
                        "<td class=\"participant\">",
                        rank, rank);
        slp_html_text(b, who);
        slp_dynbuf_adds(b, "</td><td class=\"note\">");
        slp_html_text(b, str_of(row, "note"));
        slp_dynbuf_adds(b, "</td>");
        const json_t *scores = json_object_get(row, "scores");
        for (size_t k = 0; k < ncols; k++) {
            const char *key = str_of(json_array_get(cols, k), "key");
            const json_t *x = json_object_get(scores, key);
            double v = json_is_number(x) ? json_number_value(x) : NAN;
            slp_dynbuf_adds(b, "<td class=\"num score\" data-key=\"");
            slp_html_attr(b, key);
            slp_dynbuf_adds(b, "\" data-value=\"");
            slp_html_exact(b, v);
            slp_dynbuf_adds(b, "\">");
            slp_html_num(b, v, 4);
            slp_dynbuf_adds(b, "</td>");
        }
        slp_dynbuf_addf(b, "<td class=\"num entries\">%lld</td><td class=\"submitted\">",
                        int_of(row, "entries", 0));
        put_time_text(b, str_of(row, "submitted_at"));
        slp_dynbuf_adds(b, "</td></tr>\n");
    }
    slp_dynbuf_adds(b, "</tbody></table></div>\n");
    if (nrows == 0) {
        slp_dynbuf_adds(b, "<p class=\"muted empty\">No scored submission yet.</p>\n");
    }
}

/* Chart geometry (SVG user units; the SVG scales to the page's width). */
#define CH_W 720.0
#define CH_LEFT 64.0
#define CH_RIGHT 16.0
#define CH_TOP 12.0
#define CH_PLOT_H 220.0
#define CH_AXIS_H 40.0
#define CH_LEGEND_ROW 18.0
#define CH_TICKS 5

/* Appends the SVG chart of h (nothing when no participant has a value). */
static void put_chart(struct slp_dynbuf *b, const struct chal_history *h)
{
    chal_time t0 = INT64_MAX, t1 = INT64_MIN;
    double lo = INFINITY, hi = -INFINITY;
    for (int k = 0; k < h->n; k++) {
        for (size_t i = 0; i < h->series[k].npts; i++) {
            const struct chal_point *p = &h->series[k].pts[i];
            t0 = p->t < t0 ? p->t : t0;
            t1 = p->t > t1 ? p->t : t1;
            lo = fmin(lo, p->v);
            hi = fmax(hi, p->v);
        }
    }
    slp_dynbuf_adds(b, "<h2>Best public score over time</h2>\n");
    if (t0 > t1) {
        slp_dynbuf_adds(b, "<p class=\"muted\">No public score yet.</p>\n");
        return;
    }
    if (t1 == t0) {
        /* a single moment: half an hour either side */
        t0 -= (chal_time)1800 * 1000000;
        t1 += (chal_time)1800 * 1000000;
    } else {
        /* the submissions' own span, and a twentieth of it either side */
        chal_time pad = (t1 - t0) / 20;
        t0 -= pad;
        t1 += pad;
    }
    if (!(hi > lo)) {
        double pad = lo == 0 ? 1 : fabs(lo) * 0.05;
        lo -= pad;
        hi += pad;
    }
    const double pw = CH_W - CH_LEFT - CH_RIGHT;
    const double height = CH_TOP + CH_PLOT_H + CH_AXIS_H + CH_LEGEND_ROW * h->n + 8;
    const double span_t = (double)(t1 - t0), span_v = hi - lo;
    slp_dynbuf_addf(b,
                    "<svg id=\"history\" viewBox=\"0 0 %.0f "
                    "%.0f\" width=\"%.0f\" height=\"%.0f\" role=\"img\" data-key=\"",
                    CH_W, height, CH_W, height);
    slp_html_attr(b, h->key);
    slp_dynbuf_addf(b, "\" data-order=\"%s\"><title>Best public ", h->desc ? "desc" : "asc");
    slp_html_text(b, h->key);
    slp_dynbuf_adds(b, " so far, top participants</title>");
    /* the value axis: CH_TICKS + 1 grid lines, labelled */
    slp_dynbuf_adds(b, "<g class=\"yaxis\">");
    for (int i = 0; i <= CH_TICKS; i++) {
        double v = lo + span_v * i / CH_TICKS;
        double y = CH_TOP + CH_PLOT_H - CH_PLOT_H * i / CH_TICKS;
        slp_dynbuf_addf(b,
                        "<line class=\"grid\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>"
                        "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" data-value=\"",
                        CH_LEFT, CH_W - CH_RIGHT, y, y, CH_LEFT - 6, y + 4);
        slp_html_exact(b, v);
        slp_dynbuf_adds(b, "\">");
        slp_html_num(b, v, 4);
        slp_dynbuf_adds(b, "</text>");
    }
    slp_dynbuf_adds(b, "</g><g class=\"xaxis\">");
    /* labels: seconds within an hour, minutes within two days, else dates */
    bool hour_span = t1 - t0 < (chal_time)3600 * 1000000;
    bool short_span = t1 - t0 < (chal_time)2 * 86400 * 1000000;
    for (int i = 0; i <= CH_TICKS; i++) {
        chal_time t = t0 + (chal_time)((double)(t1 - t0) * i / CH_TICKS);
        double x = CH_LEFT + pw * i / CH_TICKS;
        char iso[40];
        chal_time_format(t, iso, sizeof iso);
        slp_dynbuf_addf(b,
                        "<line class=\"grid\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>"
                        "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" data-time=\"%s\">",
                        x, x, CH_TOP, CH_TOP + CH_PLOT_H, x, CH_TOP + CH_PLOT_H + 16,
                        i == 0          ? "start"
                        : i == CH_TICKS ? "end"
                                        : "middle",
                        iso);
        if (hour_span) {
            slp_dynbuf_addf(b, "%.8s", iso + 11);
        } else if (short_span) {
            slp_dynbuf_addf(b, "%.5s %.5s", iso + 5, iso + 11);
        } else {
            slp_dynbuf_addf(b, "%.10s", iso);
        }
        slp_dynbuf_adds(b, "</text>");
    }
    slp_dynbuf_addf(b,
                    "<line class=\"axis\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>"
                    "<line class=\"axis\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>"
                    "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">time (UTC)</text></g>",
                    CH_LEFT, CH_W - CH_RIGHT, CH_TOP + CH_PLOT_H, CH_TOP + CH_PLOT_H, CH_LEFT,
                    CH_LEFT, CH_TOP, CH_TOP + CH_PLOT_H, CH_LEFT + pw / 2, CH_TOP + CH_PLOT_H + 32);
    /* one step line per participant: flat until its next improvement, on to the right edge */
    for (int k = 0; k < h->n; k++) {
        const struct chal_point *p = h->series[k].pts;
        size_t np = h->series[k].npts;
        if (np == 0) {
            continue;
        }
        slp_dynbuf_adds(b, "<path class=\"series\" data-participant=\"");
        slp_html_attr(b, h->series[k].participant);
        slp_dynbuf_addf(b, "\" stroke=\"%s\"%s d=\"", series_colour[k],
                        k == CHAL_CHART_TOP - 1 ? " stroke-dasharray=\"6 3\"" : "");
        for (size_t i = 0; i < np; i++) {
            double x = CH_LEFT + pw * (double)(p[i].t - t0) / span_t;
            double y = CH_TOP + CH_PLOT_H - CH_PLOT_H * (p[i].v - lo) / span_v;
            if (i == 0) {
                slp_dynbuf_addf(b, "M%.1f %.1f", x, y);
            } else {
                slp_dynbuf_addf(b, "H%.1fV%.1f", x, y);
            }
        }
        slp_dynbuf_addf(b, "H%.1f\"><title>", CH_W - CH_RIGHT);
        slp_html_text(b, h->series[k].participant);
        slp_dynbuf_adds(b, ": best ");
        slp_html_num(b, p[np - 1].v, 4);
        slp_dynbuf_adds(b, "</title></path>");
    }
    /* the legend: one row per participant, in rank order */
    slp_dynbuf_adds(b, "<g class=\"legend\">");
    for (int k = 0; k < h->n; k++) {
        double y = CH_TOP + CH_PLOT_H + CH_AXIS_H + CH_LEGEND_ROW * k + 10;
        slp_dynbuf_addf(b,
                        "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                        "stroke-width=\"3\"%s/><text x=\"%.1f\" y=\"%.1f\">",
                        CH_LEFT, CH_LEFT + 24, y - 4, y - 4, series_colour[k],
                        k == CHAL_CHART_TOP - 1 ? " stroke-dasharray=\"6 3\"" : "", CH_LEFT + 30,
                        y);
        slp_html_text(b, h->series[k].participant);
        if (h->series[k].npts) {
            slp_dynbuf_adds(b, " (best ");
            slp_html_num(b, h->series[k].pts[h->series[k].npts - 1].v, 4);
            slp_dynbuf_adds(b, ")");
        }
        slp_dynbuf_adds(b, "</text>");
    }
    slp_dynbuf_adds(b, "</g></svg>\n");
}

/* ---- the pages ------------------------------------------------------------------------------- */

int chal_page_render(struct slp_dynbuf *b, const json_t *desc, const json_t *pub,
                     const json_t *priv, const struct chal_history *h, chal_time now)
{
    const char *title = str_of(desc, "title");
    slp_html_begin(b, title, page_css);
    slp_dynbuf_adds(b, "<p class=\"muted\"><a href=\"/challenges\">All challenges</a> &middot; "
                       "challenge <code>");
    slp_html_text(b, str_of(desc, "name"));
    slp_dynbuf_addf(b, "</code>, version %lld</p>\n<h1>", int_of(desc, "version", 0));
    slp_html_text(b, title);
    slp_dynbuf_adds(b, "</h1>\n<p class=\"description\">");
    slp_html_text(b, str_of(desc, "description"));
    slp_dynbuf_adds(b, "</p>\n");
    put_rules(b, desc, now);
    put_rescore(b, desc);
    slp_dynbuf_adds(b, "<h2>Public leaderboard</h2>\n");
    put_board(b, "public", pub);
    slp_dynbuf_adds(b, "<h2>Private leaderboard</h2>\n");
    if (priv) {
        put_board(b, "private", priv);
    } else {
        slp_dynbuf_adds(b, "<p class=\"muted\" id=\"private-hidden\">The private leaderboard is "
                           "shown here once the organiser reveals it.</p>\n");
    }
    if (h) {
        put_chart(b, h);
    }
    slp_dynbuf_adds(b, "<p class=\"muted\">The same data as JSON: <a href=\"/v1/challenges/");
    slp_html_attr(b, str_of(desc, "name"));
    slp_dynbuf_adds(b, "/leaderboard\">the public leaderboard</a>, <a href=\"/v1/challenges/");
    slp_html_attr(b, str_of(desc, "name"));
    slp_dynbuf_adds(b, "\">the description</a>.</p>\n<script>");
    slp_dynbuf_adds(b, sort_js);
    slp_dynbuf_adds(b, "</script>\n");
    return slp_html_end(b);
}

int chal_list_render(struct slp_dynbuf *b, const json_t *list, chal_time now)
{
    const json_t *arr = json_object_get(list, "challenges");
    size_t n = json_array_size(arr);
    slp_html_begin(b, "segloss challenges", page_css);
    slp_dynbuf_adds(b, "<h1>Challenges</h1>\n<div class=\"scroll\"><table id=\"challenges\" "
                       "class=\"board\"><thead><tr><th>Challenge</th><th>Title</th><th>Opens</th>"
                       "<th>Closes</th><th>Now</th><th class=\"num\">Participants</th>"
                       "<th class=\"num\">Submissions</th></tr></thead>\n<tbody>");
    for (size_t i = 0; i < n; i++) {
        const json_t *d = json_array_get(arr, i);
        const char *name = str_of(d, "name");
        chal_time opens = 0, closes = 0;
        bool has_open = time_of(d, "opens_at", &opens);
        bool has_close = time_of(d, "closes_at", &closes);
        slp_dynbuf_adds(b, "<tr data-challenge=\"");
        slp_html_attr(b, name);
        slp_dynbuf_adds(b, "\"><td><a href=\"/challenges/");
        slp_html_attr(b, name);
        slp_dynbuf_adds(b, "\">");
        slp_html_text(b, name);
        slp_dynbuf_adds(b, "</a></td><td class=\"title\">");
        slp_html_text(b, str_of(d, "title"));
        slp_dynbuf_adds(b, "</td><td>");
        if (has_open) {
            put_time(b, opens);
        } else {
            slp_dynbuf_adds(b, "&ndash;");
        }
        slp_dynbuf_adds(b, "</td><td>");
        if (has_close) {
            put_time(b, closes);
        } else {
            slp_dynbuf_adds(b, "&ndash;");
        }
        slp_dynbuf_addf(b,
                        "</td><td>%s</td><td class=\"num participants\">%lld</td>"
                        "<td class=\"num submissions\">%lld</td></tr>\n",
                        has_open && now < opens     ? "not open yet"
                        : has_close && now > closes ? "closed"
                                                    : "open",
                        int_of(d, "participants", 0), int_of(d, "submissions", 0));
    }
    slp_dynbuf_adds(b, "</tbody></table></div>\n");
    if (n == 0) {
        slp_dynbuf_adds(b, "<p class=\"muted empty\">No challenge yet.</p>\n");
    }
    slp_dynbuf_adds(b, "<script>");
    slp_dynbuf_adds(b, sort_js);
    slp_dynbuf_adds(b, "</script>\n");
    return slp_html_end(b);
}

/* ---- HTTP ------------------------------------------------------------------------------------ */

/* The most bytes a page may take (a board of 100,000 rows is about 40 MB). */
#define PAGE_MAX ((size_t)256 << 20)

static const char html_type[] = "text/html; charset=utf-8";
static const char *const page_hdrs[] = {"Cache-Control", "no-cache", NULL};

/* Whether the client asks for JSON rather than HTML: its Accept names application/json or
 * application/problem+json and not text/html. */
static bool wants_json(struct srv_req *req)
{
    const char *a = srv_header(req->conn, MHD_HTTP_HEADER_ACCEPT);
    return a && strstr(a, "json") && !strstr(a, "text/html");
}

/* Answers an error of status with detail: problem+json when the client asks for JSON, else a
 * small HTML page saying the same. */
static enum MHD_Result page_error(struct srv_req *req, int status, const char *detail)
{
    if (wants_json(req)) {
        return chal_reply_problem(req, status, "%s", detail);
    }
    struct slp_dynbuf b;
    slp_dynbuf_init(&b, (size_t)1 << 20);
    slp_html_begin(&b, status == 404 ? "Not found" : "Unavailable", page_css);
    slp_dynbuf_addf(&b, "<h1>%s</h1>\n<p class=\"problem\">",
                    status == 404 ? "Not found" : "Not available now");
    slp_html_text(&b, detail);
    slp_dynbuf_adds(&b, "</p>\n<p><a href=\"/challenges\">All challenges</a></p>\n");
    slp_html_end(&b);
    size_t len = 0;
    char *text = b.err ? NULL : slp_dynbuf_take(&b, &len);
    slp_dynbuf_free(&b);
    if (!text) {
        return chal_reply_problem(req, status, "%s", detail);
    }
    return srv_reply_hdrs(req, status, html_type, text, len, true, page_hdrs);
}

/* Queues the page in b (taken) as a 200, or a 503 when it could not be written. */
static enum MHD_Result page_reply(struct srv_req *req, struct slp_dynbuf *b)
{
    size_t len = 0;
    char *text = b->err ? NULL : slp_dynbuf_take(b, &len);
    slp_dynbuf_free(b);
    if (!text) {
        return page_error(req, 503, "the page could not be written (out of memory)");
    }
    return srv_reply_hdrs(req, 200, html_type, text, len, true, page_hdrs);
}

enum MHD_Result chal_h_page_list(struct srv_req *req)
{
    struct chal_server *cs = req->srv->chal;
    if (!cs) {
        return page_error(req, 404, off_detail);
    }
    json_t *list = chal_list_json(cs, &req->srv->limits, false);
    if (!list) {
        return page_error(req, 503, "the challenge store is unavailable");
    }
    struct slp_dynbuf b;
    slp_dynbuf_init(&b, PAGE_MAX);
    chal_list_render(&b, list, chal_now());
    json_decref(list);
    return page_reply(req, &b);
}

/* What a challenge's page shows besides the store's standings (store_generation): its counts,
 * version and re-score progress, the day (the quota's reset) and whether it is open, as one
 * number (FNV-1a over them) that keys the cached page. */
static uint64_t page_tag(const struct store_challenge *c, const struct slc_config *cfg,
                         chal_time now)
{
    int64_t state = now < cfg->opens_at ? 0 : now > cfg->closes_at ? 2 : 1;
    const int64_t parts[] = {c->version,         c->participants,        c->submissions,
                             c->rescore_done,    c->rescore_failed,      c->rescore_total,
                             c->rescore_running, chal_next_utc_day(now), state};
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        uint64_t v = (uint64_t)parts[i];
        for (int k = 0; k < 8; k++) {
            h = (h ^ ((v >> (8 * k)) & 0xff)) * 1099511628211ULL;
        }
    }
    return h;
}

/* The page of challenge c (loaded, borrowed) into b: the documents read, the history built,
 * rendered. Returns 0, or -1 when the store or memory failed (logged; b then unusable). */
static int page_make(struct chal_server *cs, const struct store_challenge *c,
                     const struct slc_config *cfg, chal_time now, struct slp_dynbuf *b)
{
    /* what an anonymous reader of the JSON routes sees: the private board once revealed */
    json_t *desc = chal_describe(c, cfg, false);
    json_t *pub = chal_board_doc(cs, c, cfg, 0);
    json_t *priv = cfg->private_visible ? chal_board_doc(cs, c, cfg, 1) : NULL;
    struct chal_history h;
    memset(&h, 0, sizeof h);
    bool ok = desc && pub && (priv || !cfg->private_visible);
    ok = ok && chal_board_history(cs, c, cfg, &h) == 0;
    if (ok) {
        ok = chal_page_render(b, desc, pub, priv, &h, now) == 0;
    }
    chal_history_clear(&h);
    json_decref(desc);
    json_decref(pub);
    json_decref(priv);
    return ok ? 0 : -1;
}

enum MHD_Result chal_h_page(struct srv_req *req)
{
    struct chal_server *cs = req->srv->chal;
    const char *name = req->params[0];
    char buf[400];
    if (!cs) {
        return page_error(req, 404, off_detail);
    }
    if (!chal_name_ok(name)) {
        snprintf(buf, sizeof buf, "no challenge '%.128s'", name);
        return page_error(req, 404, buf);
    }
    /* the generation first: a write while the page is made leaves it under the older one */
    uint64_t gen = store_generation(cs->store);
    struct store_challenge c;
    struct slc_config *cfg;
    int st = chal_load(cs, name, &req->srv->limits, &c, &cfg, buf, sizeof buf);
    if (st) {
        return page_error(req, st, buf);
    }
    chal_time now = chal_now();
    uint64_t tag = page_tag(&c, cfg, now);
    size_t len = 0;
    char *text = chal_page_cached(cs, c.name, gen, tag, &len);
    if (!text) {
        struct slp_dynbuf b;
        slp_dynbuf_init(&b, PAGE_MAX);
        if (page_make(cs, &c, cfg, now, &b) == 0 && !b.err) {
            text = slp_dynbuf_take(&b, &len);
        }
        slp_dynbuf_free(&b);
        if (text) {
            chal_page_cache_put(cs, c.name, gen, tag, text, len);
        }
    }
    slc_config_free(cfg);
    store_challenge_clear(&c);
    if (!text) {
        return page_error(req, 503, "the leaderboard could not be made (store or memory)");
    }
    return srv_reply_hdrs(req, 200, html_type, text, len, true, page_hdrs);
}
