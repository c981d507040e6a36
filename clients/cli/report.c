/* report.c - the CLI's gates (`dice.mean>=0.85`) and its outputs: the human table, JUnit XML,
 * and the file of the HTML report (proto/report.h draws it; image.c reads the images back).
 *
 * A gate is [metrics.|losses.]KEY[.FIELD[[i]]] OP NUMBER with OP one of >= <= > < == !=.
 * Metric fields: mean (default), global, undefined, min, max, per_class[i], global[i]; loss
 * fields: value (default), min, max, per_class[i] (region losses with reduction "none"). min and
 * max are over the defined per-image values. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static const char *const ops[] = {">=", "<=", "==", "!=", ">", "<"};

/* Whether v op t holds (cli.h). */
bool cli_gate_holds(double v, const char *op, double t)
{
    if (isnan(v)) {
        return false;
    }
    switch (op[0]) {
    case '>':
        return op[1] == '=' ? v >= t : v > t;
    case '<':
        return op[1] == '=' ? v <= t : v < t;
    case '=':
        return v == t;
    default:
        return v != t;
    }
}

/* Whether f is a field of a metric entry that a gate may name. */
static bool is_metric_field(const char *f)
{
    return !strcmp(f, "mean") || !strcmp(f, "global") || !strcmp(f, "undefined") ||
           !strcmp(f, "per_class");
}

/* min or max over the defined numbers of a flat per-image list; NaN when none or not flat. */
static double extreme(json_t *list, bool want_max, bool *flat)
{
    double best = NAN;
    size_t i;
    json_t *v;
    *flat = true;
    json_array_foreach(list, i, v)
    {
        if (json_is_array(v)) {
            *flat = false;
            return NAN;
        }
        if (json_is_number(v)) {
            double x = json_number_value(v);
            if (isnan(best) || (want_max ? x > best : x < best)) {
                best = x;
            }
        }
    }
    return best;
}

/* Splits gate text into its left side (into buf, blanks removed), its comparison *op (borrowed
 * from ops) and *threshold. Returns 0, or -1 with msg. */
static int gate_split(const char *text, char *buf, size_t buflen, const char **op_out,
                      double *threshold, char *msg, size_t msglen)
{
    size_t n = 0;
    for (const char *p = text; *p && n + 1 < buflen; p++) {
        if (!isspace((unsigned char)*p)) {
            buf[n++] = *p;
        }
    }
    buf[n] = '\0';
    char *at = NULL;
    const char *op = NULL;
    for (char *p = buf; *p && !at; p++) {
        for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
            if (strncmp(p, ops[k], strlen(ops[k])) == 0) {
                at = p;
                op = ops[k];
                break;
            }
        }
    }
    if (!at) {
        snprintf(msg, msglen, "gate '%s': no comparison (>= <= > < == !=)", text);
        return -1;
    }
    char *end;
    *threshold = strtod(at + strlen(op), &end);
    if (end == at + strlen(op) || *end || !isfinite(*threshold)) {
        snprintf(msg, msglen, "gate '%s': '%s' is not a number", text, at + strlen(op));
        return -1;
    }
    *at = '\0';
    *op_out = op;
    return 0;
}

/* The number a gate compares: field of entry (a metric when want_metric, else a loss; key names
 * it in messages), element index of a per-class list (-1: none). Sets *v (NaN: null) and
 * returns 0, or -1 with msg when the field does not hold one number. */
static int gate_value(const char *text, json_t *entry, bool want_metric, const char *key,
                      const char *field, long index, double *v, char *msg, size_t msglen)
{
    json_t *j = NULL;
    if (!strcmp(field, "min") || !strcmp(field, "max")) {
        json_t *pi = json_object_get(entry, "per_image");
        bool flat;
        *v = extreme(pi, field[1] == 'a', &flat);
        if (!pi || !flat) {
            snprintf(msg, msglen,
                     "gate '%s': %s is over per-image numbers, which %s has only in binary mode",
                     text, field, key);
            return -1;
        }
        return 0;
    }
    if (!((want_metric && is_metric_field(field)) ||
          (!want_metric && (!strcmp(field, "value") || !strcmp(field, "per_class"))))) {
        snprintf(msg, msglen, "gate '%s': a %s has no field '%s' (%s)", text,
                 want_metric ? "metric" : "loss", field,
                 want_metric ? "mean, global, undefined, min, max, per_class[i], global[i]"
                             : "value, min, max, per_class[i] with reduction none");
        return -1;
    }
    j = json_object_get(entry, field);
    if (!j) {
        snprintf(msg, msglen, "gate '%s': %s %s has no %s%s", text, want_metric ? "metric" : "loss",
                 key, field, want_metric ? "" : " (a region loss has it with reduction \"none\")");
        return -1;
    }
    if (json_is_array(j)) {
        if (index < 0) {
            snprintf(msg, msglen,
                     "gate '%s': %s.%s is a list of %zu (one per class); name "
                     "one: %s.%s[1]",
                     text, key, field, json_array_size(j), key, field);
            return -1;
        }
        if ((size_t)index >= json_array_size(j)) {
            snprintf(msg, msglen, "gate '%s': %s.%s has %zu entries", text, key, field,
                     json_array_size(j));
            return -1;
        }
        j = json_array_get(j, (size_t)index);
    } else if (index >= 0) {
        snprintf(msg, msglen, "gate '%s': %s.%s is one number, not a list", text, key, field);
        return -1;
    }
    if (json_is_object(j)) {
        snprintf(msg, msglen, "gate '%s': %s.%s is confusion counts, not a number", text, key,
                 field);
        return -1;
    }
    *v = json_is_number(j) ? json_number_value(j) : NAN;
    return 0;
}

/* Evaluates one gate text against result into *g (text and label new). Returns 0, or -1 with
 * msg on a gate that does not parse or names nothing in result. */
static int gate_eval(json_t *result, const char *text, struct cli_gate *g, char *msg, size_t msglen)
{
    char buf[512];
    const char *op;
    double threshold;
    if (gate_split(text, buf, sizeof buf, &op, &threshold, msg, msglen)) {
        return -1;
    }
    /* [section.]key[.field][[i]] */
    char *section = NULL, *key = buf, *field = NULL;
    long index = -1;
    char *br = strchr(buf, '[');
    if (br) {
        char *e;
        index = strtol(br + 1, &e, 10);
        if (e == br + 1 || strcmp(e, "]") != 0 || index < 0) {
            snprintf(msg, msglen, "gate '%s': an index is [i] with i >= 0, at the end", text);
            return -1;
        }
        *br = '\0';
    }
    if (!strncmp(key, "metrics.", 8) || !strncmp(key, "losses.", 7)) {
        section = key;
        key = strchr(key, '.') + 1;
        key[-1] = '\0';
    }
    json_t *metrics = json_object_get(result, "metrics"),
           *losses = json_object_get(result, "losses");
    /* the last dotted part is the field when it names one ("as" keys may hold dots) */
    char *dot = strrchr(key, '.');
    if (dot && (is_metric_field(dot + 1) || !strcmp(dot + 1, "value") || !strcmp(dot + 1, "min") ||
                !strcmp(dot + 1, "max"))) {
        field = dot + 1;
        *dot = '\0';
    }
    json_t *m = json_object_get(metrics, key), *l = json_object_get(losses, key);
    bool want_metric;
    if (section) {
        want_metric = section[0] == 'm';
    } else if (field && (is_metric_field(field) || !strcmp(field, "value"))) {
        /* per_class names a loss's only when no metric has that key */
        want_metric = is_metric_field(field) && !(!strcmp(field, "per_class") && !m && l);
    } else if (m && l) {
        snprintf(msg, msglen,
                 "gate '%s': %s is both a loss and a metric; write metrics.%s.mean or "
                 "losses.%s.value",
                 text, key, key, key);
        return -1;
    } else {
        want_metric = m != NULL;
    }
    json_t *entry = want_metric ? m : l;
    if (!entry) {
        snprintf(msg, msglen, "gate '%s': the result has no %s '%s'", text,
                 want_metric ? "metric" : "loss", key);
        return -1;
    }
    if (!field) {
        field = want_metric ? "mean" : "value";
    }
    if (index >= 0 && strcmp(field, "per_class") && strcmp(field, "global")) {
        snprintf(msg, msglen, "gate '%s': only per_class[i] and global[i] take an index", text);
        return -1;
    }
    double v = NAN;
    if (gate_value(text, entry, want_metric, key, field, index, &v, msg, msglen)) {
        return -1;
    }
    char label[1100];
    if (index >= 0) {
        snprintf(label, sizeof label, "%s.%s[%ld]", key, field, index);
    } else {
        snprintf(label, sizeof label, "%s.%s", key, field);
    }
    g->text = strdup(text);
    g->label = strdup(label);
    g->value = v;
    g->passed = cli_gate_holds(v, op, threshold);
    if (!g->text || !g->label) {
        snprintf(msg, msglen, "out of memory");
        return -1;
    }
    return 0;
}

/* Evaluates each gate text into gates[i] (cli.h); 0, or -1 with msg at the first bad one. */
int cli_gates_eval(json_t *result, char **texts, int n, struct cli_gate *gates, char *msg,
                   size_t msglen)
{
    for (int i = 0; i < n; i++) {
        if (gate_eval(result, texts[i], &gates[i], msg, msglen)) {
            return -1;
        }
    }
    return 0;
}

/* One table cell: a number, null, or "-" for absent. */
static void put_num(FILE *out, json_t *v)
{
    if (json_is_number(v)) {
        fprintf(out, " %12.6f", json_number_value(v));
    } else if (json_is_null(v)) {
        fprintf(out, " %12s", "null");
    } else {
        fprintf(out, " %12s", "-");
    }
}

/* Entry v's per_class values, when it has them, as a "  per class" row of numbers. */
static void put_per_class(FILE *out, json_t *v)
{
    json_t *pc = json_object_get(v, "per_class");
    if (!pc) {
        return;
    }
    fprintf(out, "%-28s", "  per class");
    for (size_t c = 0; c < json_array_size(pc); c++) {
        put_num(out, json_array_get(pc, c));
    }
    fputc('\n', out);
}

/* Confusion counts as tp=.. fp=.. fn=.. tn=.. */
static void put_counts(FILE *out, json_t *c)
{
    fprintf(out, "tp=%lld fp=%lld fn=%lld tn=%lld",
            (long long)json_integer_value(json_object_get(c, "tp")),
            (long long)json_integer_value(json_object_get(c, "fp")),
            (long long)json_integer_value(json_object_get(c, "fn")),
            (long long)json_integer_value(json_object_get(c, "tn")));
}

/* Writes the human table of result r, then the gates (cli.h). */
void cli_print_table(FILE *out, json_t *r, const struct cli_gate *gates, int ngates)
{
    char shape[128] = "";
    json_t *sh = json_object_get(r, "shape");
    if (sh) {
        char *t = json_dumps(sh, JSON_COMPACT);
        snprintf(shape, sizeof shape, ", shape %s", t ? t : "?");
        free(t);
    } else {
        snprintf(shape, sizeof shape, ", %zu shapes",
                 json_array_size(json_object_get(r, "shapes")));
    }
    fprintf(out, "segloss: %lld images in %lld batch%s, %s, %lld class%s%s\n",
            (long long)json_integer_value(json_object_get(r, "images")),
            (long long)json_integer_value(json_object_get(r, "batches")),
            json_integer_value(json_object_get(r, "batches")) == 1 ? "" : "es",
            json_string_value(json_object_get(r, "mode")),
            (long long)json_integer_value(json_object_get(r, "classes")),
            json_integer_value(json_object_get(r, "classes")) == 1 ? "" : "es", shape);
    const char *key;
    json_t *v;
    json_t *losses = json_object_get(r, "losses");
    if (json_object_size(losses)) {
        fprintf(out, "\n%-28s %12s\n", "loss", "value");
        json_object_foreach(losses, key, v)
        {
            fprintf(out, "%-28s", key);
            put_num(out, json_object_get(v, "value"));
            fputc('\n', out);
            /* region losses with reduction "none": each class's loss */
            put_per_class(out, v);
        }
    }
    json_t *metrics = json_object_get(r, "metrics");
    if (json_object_size(metrics)) {
        fprintf(out, "\n%-28s %12s %12s %12s\n", "metric", "mean", "global", "undefined");
        json_object_foreach(metrics, key, v)
        {
            json_t *g = json_object_get(v, "global");
            fprintf(out, "%-28s", key);
            if (!json_object_get(v, "mean")) {
                /* confusion: counts */
                fputc(' ', out);
                if (json_is_object(g)) {
                    put_counts(out, g);
                } else {
                    for (size_t c = 0; c < json_array_size(g); c++) {
                        fprintf(out, "%s[%zu] ", c ? "  " : "", c);
                        put_counts(out, json_array_get(g, c));
                    }
                }
                fputc('\n', out);
                continue;
            }
            put_num(out, json_object_get(v, "mean"));
            put_num(out, json_is_array(g) ? NULL : g);
            fprintf(out, " %12lld\n",
                    (long long)json_integer_value(json_object_get(v, "undefined")));
            put_per_class(out, v);
        }
    }
    if (ngates) {
        fprintf(out, "\n%-28s %12s %s\n", "gate", "value", "result");
        for (int i = 0; i < ngates; i++) {
            fprintf(out, "%-28s", gates[i].text);
            if (isnan(gates[i].value)) {
                fprintf(out, " %12s", "null");
            } else {
                fprintf(out, " %12.6f", gates[i].value);
            }
            fprintf(out, " %s\n", gates[i].passed ? "pass" : "FAIL");
        }
    }
}

/* s with XML's five special characters escaped. */
static void xml_put(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '&':
            fputs("&amp;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&apos;", f);
            break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\n' || *s == '\t') {
                fputc(*s, f);
            }
        }
    }
}

/* Writes the JUnit XML report (cli.h); 0, or -1 with msg. */
int cli_write_junit(const char *path, json_t *result, const struct cli_gate *gates, int ngates,
                    const char *error, double seconds, char *msg, size_t msglen)
{
    return cli_write_junit_case(path, "score", cli_print_table, result, gates, ngates, error,
                                seconds, msg, msglen);
}

/* Writes a JUnit XML report with test case name (cli.h); 0, or -1 with msg. */
int cli_write_junit_case(const char *path, const char *name, cli_table_fn table, json_t *doc,
                         const struct cli_gate *gates, int ngates, const char *error,
                         double seconds, char *msg, size_t msglen)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        snprintf(msg, msglen, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    int failures = 0;
    for (int i = 0; i < ngates; i++) {
        failures += !gates[i].passed;
    }
    int tests = 1 + ngates;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(f,
            "<testsuites name=\"segloss\" tests=\"%d\" failures=\"%d\" errors=\"%d\" "
            "time=\"%.3f\">\n",
            tests, failures, error ? 1 : 0, seconds);
    fprintf(f,
            "  <testsuite name=\"segloss\" tests=\"%d\" failures=\"%d\" errors=\"%d\" "
            "skipped=\"0\" time=\"%.3f\">\n",
            tests, failures, error ? 1 : 0, seconds);
    fprintf(f, "    <testcase classname=\"segloss\" name=\"%s\" time=\"%.3f\">\n", name, seconds);
    if (error) {
        fprintf(f, "      <error message=\"");
        xml_put(f, error);
        fprintf(f, "\"/>\n");
    }
    if (doc) {
        fprintf(f, "      <system-out>");
        FILE *mem = tmpfile();
        if (mem) {
            table(mem, doc, gates, ngates);
            rewind(mem);
            char line[1024];
            while (fgets(line, sizeof line, mem)) {
                xml_put(f, line);
            }
            fclose(mem);
        }
        fprintf(f, "</system-out>\n");
    }
    fprintf(f, "    </testcase>\n");
    for (int i = 0; i < ngates; i++) {
        fprintf(f, "    <testcase classname=\"segloss.gates\" name=\"");
        xml_put(f, gates[i].text);
        fprintf(f, "\" time=\"0\">\n");
        if (!gates[i].passed) {
            char m[400];
            if (isnan(gates[i].value)) {
                snprintf(m, sizeof m, "%s is undefined (null)", gates[i].label);
            } else {
                snprintf(m, sizeof m, "%s = %.6f", gates[i].label, gates[i].value);
            }
            fprintf(f, "      <failure message=\"");
            xml_put(f, m);
            fprintf(f, "\" type=\"gate\">");
            xml_put(f, gates[i].text);
            fprintf(f, " does not hold: ");
            xml_put(f, m);
            fprintf(f, "</failure>\n");
        }
        fprintf(f, "    </testcase>\n");
    }
    fprintf(f, "  </testsuite>\n</testsuites>\n");
    bool werr = ferror(f) != 0;
    if (fclose(f) != 0 || werr) {
        snprintf(msg, msglen, "cannot write %s: %s", path, strerror(errno ? errno : EIO));
        return -1;
    }
    return 0;
}

/* ---- the HTML report -------------------------------------------------------------------------
 */

#define HTML_MAX ((size_t)1 << 30) /* bytes of a report page */

/* Creates h's temporary file beside path (cli.h); 0, or -1 with msg. */
int cli_html_open(struct cli_html *h, const char *path, char *msg, size_t msglen)
{
    memset(h, 0, sizeof *h);
    h->fd = -1;
    struct stat st;
    if (*path == '\0' || (stat(path, &st) == 0 && S_ISDIR(st.st_mode))) {
        snprintf(msg, msglen, "--html '%s': not a file name (a directory?)", path);
        return -1;
    }
    size_t len = strlen(path) + 40;
    h->tmp = malloc(len);
    if (!h->tmp) {
        snprintf(msg, msglen, "out of memory");
        return -1;
    }
    /* in path's directory, so that the rename is atomic; 0666 less the umask, as fopen */
    snprintf(h->tmp, len, "%s.tmp-%ld", path, (long)getpid());
    h->fd = open(h->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (h->fd < 0) {
        snprintf(msg, msglen, "--html %s: cannot create a file there: %s", path, strerror(errno));
        free(h->tmp);
        h->tmp = NULL;
        return -1;
    }
    h->path = path;
    return 0;
}

/* Closes h and removes its temporary file; a closed h is fine. */
void cli_html_discard(struct cli_html *h)
{
    if (h->fd >= 0) {
        close(h->fd);
        unlink(h->tmp);
    }
    free(h->tmp);
    h->tmp = NULL;
    h->fd = -1;
}

/* Writes the n bytes at p to fd; 0, or -1 with errno. */
static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Appends to page the comparison cmp (borrowed) of answer (the candidate, borrowed) and the
 * thumbnails of its largest drops, read back from d (ids: d's). Returns 0, or -1 with msg. */
static int compare_section(struct slp_dynbuf *page, json_t *cmp, json_t *answer,
                           const struct cli_data *d, const char *const *ids, char *msg,
                           size_t msglen)
{
    const char *key = NULL, *sec = NULL;
    int want = cli_compare_drops(cmp, &key, &sec), n = 0, rc = -1;
    if (want > SLP_REPORT_WORST_MAX) {
        want = SLP_REPORT_WORST_MAX;
    }
    struct cli_pixels *px = calloc((size_t)want + 1, sizeof *px);
    struct slp_report_image *imgs = calloc((size_t)want + 1, sizeof *imgs);
    if (!px || !imgs) {
        snprintf(msg, msglen, "out of memory");
        goto out;
    }
    json_t *worst = json_object_get(json_object_get(json_object_get(cmp, sec), key), "worst");
    for (n = 0; n < want; n++) {
        const char *id = json_string_value(json_object_get(json_array_get(worst, n), "id"));
        int64_t i = 0;
        while (i < d->nimages && (!id || strcmp(d->images[i].id, id) != 0)) {
            i++;
        }
        if (i == d->nimages) {
            snprintf(msg, msglen, "the comparison's image %s is not in the data set",
                     id ? id : "?");
            goto out;
        }
        char m[CLI_MSG / 2];
        if (cli_pixels_read(d, i, &px[n], m, sizeof m)) {
            snprintf(msg, msglen, "drawing image %.300s: %s", id, m);
            goto out;
        }
        imgs[n] = (struct slp_report_image){i, ids[i], px[n].pred, px[n].target};
    }
    char lead[700];
    snprintf(lead, sizeof lead,
             "The %d images whose %s.%s dropped most against the baseline, largest drop first "
             "(values: this run's).",
             n, sec ? sec : "", key ? key : "");
    int e = cli_compare_html(page, cmp);
    if (!e) {
        e = slp_report_thumbs(page, answer, ids, imgs, n, "drops",
                              "Largest drops against the baseline", lead, msg, msglen);
    } else {
        snprintf(msg, msglen, "%s", sl_strerror(e));
    }
    rc = e ? -1 : 0;
out:
    for (int j = 0; px && j < n; j++) {
        cli_pixels_free(&px[j]);
    }
    free(px);
    free(imgs);
    return rc;
}

/* Renders, writes and renames the report (cli.h); 0, or -1 with msg. h is closed after. */
int cli_html_write(struct cli_html *h, json_t *answer, const json_t *spec, const struct cli_data *d,
                   int k, char *msg, size_t msglen)
{
    int rc = -1, n = 0;
    int64_t *idx = malloc(sizeof *idx * (size_t)(k + 1));
    struct cli_pixels *px = calloc((size_t)k + 1, sizeof *px);
    struct slp_report_image *imgs = calloc((size_t)k + 1, sizeof *imgs);
    const char **ids = malloc(sizeof *ids * (size_t)(d->nimages + 1));
    struct slp_dynbuf page;
    slp_dynbuf_init(&page, HTML_MAX);
    if (!idx || !px || !imgs || !ids) {
        snprintf(msg, msglen, "out of memory");
        goto out;
    }
    /* the answer's per-image lists follow the data set's order, and so do its ids */
    for (int64_t i = 0; i < d->nimages; i++) {
        ids[i] = d->images[i].id;
    }
    int want = slp_report_worst(answer, spec, k, idx);
    for (n = 0; n < want; n++) {
        if (idx[n] < 0 || idx[n] >= d->nimages) {
            snprintf(msg, msglen, "the report's image %lld is not one of the %lld",
                     (long long)idx[n], (long long)d->nimages);
            goto out;
        }
        char m[CLI_MSG];
        if (cli_pixels_read(d, idx[n], &px[n], m, sizeof m)) {
            snprintf(msg, msglen, "drawing image %s: %s", ids[idx[n]], m);
            goto out;
        }
        imgs[n] = (struct slp_report_image){idx[n], ids[idx[n]], px[n].pred, px[n].target};
    }
    char m[CLI_MSG] = "";
    int e = slp_report_html(&page, answer, spec, ids, imgs, n, "segloss report", m, sizeof m);
    if (e) {
        snprintf(msg, msglen, "--html %s: %s", h->path, m[0] ? m : sl_strerror(e));
        goto out;
    }
    /* score --baseline: the comparison and its largest drops, appended after the page and
     * written before its footer */
    size_t whole = page.len, foot = page.len;
    if (h->cmp) {
        const char *f = strstr(page.data, "<footer>");
        foot = f ? (size_t)(f - page.data) : page.len;
        if (compare_section(&page, h->cmp, answer, d, ids, m, sizeof m)) {
            snprintf(msg, msglen, "--html %s: %s", h->path, m);
            goto out;
        }
    }
    if (write_all(h->fd, page.data, foot) ||
        write_all(h->fd, page.data + whole, page.len - whole) ||
        write_all(h->fd, page.data + foot, whole - foot) || fsync(h->fd) != 0) {
        snprintf(msg, msglen, "cannot write %s: %s", h->tmp, strerror(errno ? errno : EIO));
        goto out;
    }
    int fd = h->fd;
    h->fd = -1;
    if (close(fd) != 0) {
        snprintf(msg, msglen, "cannot write %s: %s", h->tmp, strerror(errno));
        unlink(h->tmp);
        goto out;
    }
    if (rename(h->tmp, h->path) != 0) {
        snprintf(msg, msglen, "cannot rename %s to %s: %s", h->tmp, h->path, strerror(errno));
        unlink(h->tmp);
        goto out;
    }
    rc = 0;
out:
    cli_html_discard(h);
    slp_dynbuf_free(&page);
    for (int j = 0; j < n; j++) {
        cli_pixels_free(&px[j]);
    }
    free(idx);
    free(px);
    free(imgs);
    free(ids);
    return rc;
}
