/* chal_config.c - a challenge's configuration (CHALLENGES.md "Configuration"): parsed and
 * validated from the PUT body, written back with every default filled in. The spec is checked by
 * the /v1/score parser (slp__parse_spec), which also says which value keys it produces. Times
 * are RFC 3339 (Z or +hh:mm offsets, optional fraction) read into microseconds since the epoch
 * by a small parser of our own, written back as UTC with Z. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array_internal.h"
#include "challenge.h"
#include "internal.h"

#define TITLE_MAX 200

/* ---- RFC 3339 ---- */

/* Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar (the days_from_civil
 * algorithm of H. Hinnant, "chrono-Compatible Low-Level Date Algorithms"). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The inverse of days_from_civil (civil_from_days, same source). */
static void civil_from_days(int64_t z, int64_t *y, int64_t *m, int64_t *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yoe + era * 400 + (*m <= 2);
}

/* Reads n digits at s into *v; 0 when they are not all digits. */
static int digits(const char *s, int n, int64_t *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
        *v = *v * 10 + (s[i] - '0');
    }
    return 1;
}

/* The earliest and latest instants accepted: 0000-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999Z
 * (what four year digits can write back). */
#define RFC3339_MIN (days_from_civil(0, 1, 1) * 86400 * 1000000)
#define RFC3339_MAX ((days_from_civil(9999, 12, 31) + 1) * 86400 * 1000000 - 1)

/* Parses an RFC 3339 date-time (section 5.6: YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm|-hh:mm), 'T'
 * and 'Z' in either case; leap second 60 refused; digits of frac past the sixth dropped) into
 * microseconds since the epoch. Returns 1, or 0 with a reason in why. */
static int rfc3339_parse(const char *s, int64_t *out, const char **why)
{
    size_t n = strlen(s);
    int64_t y, mo, d, h, mi, sec, frac = 0;
    *why = "expected an RFC 3339 date-time such as 2027-06-30T23:59:59Z";
    if (n < 19 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &h) ||
        s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &sec)) {
        return 0;
    }
    size_t i = 19;
    if (s[i] == '.') {
        size_t b = ++i;
        int64_t scale = 100000;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            frac += (s[i] - '0') * scale;
            scale /= 10;
            i++;
        }
        if (i == b) {
            *why = "expected digits after the '.' of the seconds";
            return 0;
        }
    }
    int64_t off = 0;
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        int64_t oh, om;
        if (n - i != 6 || !digits(s + i + 1, 2, &oh) || s[i + 3] != ':' ||
            !digits(s + i + 4, 2, &om) || oh > 23 || om > 59) {
            *why = "expected the offset as Z, +hh:mm or -hh:mm";
            return 0;
        }
        off = (oh * 60 + om) * 60 * (s[i] == '-' ? -1 : 1);
        i += 6;
    } else {
        *why = "expected the offset as Z, +hh:mm or -hh:mm";
        return 0;
    }
    if (i != n) {
        return 0;
    }
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap)) {
        *why = "no such date";
        return 0;
    }
    if (h > 23 || mi > 59 || sec > 59) {
        *why = "no such time of day (hours 00-23, minutes and seconds 00-59)";
        return 0;
    }
    int64_t t =
        ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec) - off) * 1000000 + frac;
    if (t < RFC3339_MIN || t > RFC3339_MAX) {
        *why = "outside the years 0000 to 9999 in UTC";
        return 0;
    }
    *out = t;
    return 1;
}

/* Writes t (microseconds since the epoch, within the parser's range) as RFC 3339 UTC with Z,
 * with six fraction digits only when the fraction is not zero, into buf (at least 32 bytes). */
static void rfc3339_format(int64_t t, char *buf, size_t len)
{
    int64_t us = t % 1000000, secs = t / 1000000;
    if (us < 0) {
        us += 1000000;
        secs--;
    }
    int64_t days = secs / 86400, rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    int64_t y, m, d;
    civil_from_days(days, &y, &m, &d);
    char frac[16] = "";
    if (us) {
        snprintf(frac, sizeof frac, ".%06" PRId64, us);
    }
    snprintf(buf, len,
             "%04" PRId64 "-%02" PRId64 "-%02" PRId64 "T%02" PRId64 ":%02" PRId64 ":%02" PRId64
             "%sZ",
             y, m, d, rem / 3600, rem / 60 % 60, rem % 60, frac);
}

/* ---- value keys ---- */

/* Fills c->produced with the value keys of the spec r: metrics.K.mean for every metric that is
 * not confusion counts, metrics.K.global for those that are neither counts nor surface metrics
 * when the mode is binary (elsewhere global is a per-class list), losses.K.value for every
 * loss. */
static void fill_produced(struct slc_config *c, const struct slp_score_req *r)
{
    c->nproduced = 0;
    for (int i = 0; i < r->req.nmetrics; i++) {
        const struct sl_spec *s = &r->req.metrics[i];
        if (s->def->flags & SL_DEF_COUNTS) {
            continue;
        }
        snprintf(c->produced[c->nproduced++], SLC_VALUE_KEY_MAX, "metrics.%s.mean", s->key);
        if (r->req.mode == SL_MODE_BINARY && !(s->def->flags & SL_DEF_DISTANCES)) {
            snprintf(c->produced[c->nproduced++], SLC_VALUE_KEY_MAX, "metrics.%s.global", s->key);
        }
    }
    for (int i = 0; i < r->req.nlosses; i++) {
        snprintf(c->produced[c->nproduced++], SLC_VALUE_KEY_MAX, "losses.%s.value",
                 r->req.losses[i].key);
    }
}

bool slc_config_has_key(const struct slc_config *c, const char *key)
{
    for (int i = 0; i < c->nproduced; i++) {
        if (strcmp(c->produced[i], key) == 0) {
            return true;
        }
    }
    return false;
}

/* Checks that key (at path, e.g. "ranking[1].key") is a value key the spec r produces; else
 * SL_EINVAL with a message saying why not. */
static int check_key(const struct slc_config *c, const struct slp_score_req *r, const char *key,
                     const char *path, char *msg, size_t msglen)
{
    if (slc_config_has_key(c, key)) {
        return 0;
    }
    const char *dot = strrchr(key, '.');
    size_t klen = strlen(key);
    int is_metric = strncmp(key, "metrics.", 8) == 0, is_loss = strncmp(key, "losses.", 7) == 0;
    if (!dot || klen >= SLC_VALUE_KEY_MAX || (!is_metric && !is_loss) ||
        dot - key <= (is_metric ? 8 : 7) ||
        (is_metric && strcmp(dot, ".mean") != 0 && strcmp(dot, ".global") != 0) ||
        (is_loss && strcmp(dot, ".value") != 0)) {
        slp__errf(msg, msglen,
                  "%s: '%.80s' is not a value key (expected metrics.K.mean, metrics.K.global or "
                  "losses.K.value)",
                  path, key);
        return SL_EINVAL;
    }
    const char *name = key + (is_metric ? 8 : 7);
    size_t nlen = (size_t)(dot - name);
    const struct sl_spec *list = is_metric ? r->req.metrics : r->req.losses;
    int n = is_metric ? r->req.nmetrics : r->req.nlosses;
    for (int i = 0; i < n; i++) {
        if (strlen(list[i].key) == nlen && memcmp(list[i].key, name, nlen) == 0) {
            if (list[i].def->flags & SL_DEF_COUNTS) {
                slp__errf(msg, msglen,
                          "%s: '%.80s': metric %s is confusion counts, which have no value key",
                          path, key, list[i].key);
            } else if (list[i].def->flags & SL_DEF_DISTANCES) {
                slp__errf(msg, msglen,
                          "%s: '%.80s': %s is a surface metric, which has no global value (use "
                          "metrics.%s.mean)",
                          path, key, list[i].key, list[i].key);
            } else {
                slp__errf(msg, msglen,
                          "%s: '%.80s': in mode %s the global value is a per-class list, not a "
                          "number (use metrics.%s.mean, or set spec.mode to binary)",
                          path, key, sl_mode_name(r->req.mode), list[i].key);
            }
            return SL_EINVAL;
        }
    }
    slp__errf(msg, msglen, "%s: '%.80s': the spec has no %s called '%.*s'", path, key,
              is_metric ? "metric" : "loss", (int)(nlen > 64 ? 64 : nlen), name);
    return SL_EINVAL;
}

/* ---- the configuration ---- */

void slc_config_free(struct slc_config *c)
{
    if (!c) {
        return;
    }
    free(c->title);
    free(c->description);
    json_decref(c->spec);
    slc_ids_free(c->public_ids, c->npublic_ids);
    free(c);
}

/* The text of JSON string j, or NULL when j is no string or holds a NUL (\u0000), which C
 * strings cannot carry. */
static const char *text_of(const json_t *j)
{
    const char *s = json_string_value(j);
    return s && strlen(s) == json_string_length(j) ? s : NULL;
}

/* Unicode code points of the UTF-8 string s (jansson has checked it). */
static size_t code_points(const char *s)
{
    size_t n = 0;
    for (; *s; s++) {
        n += ((unsigned char)*s & 0xc0) != 0x80;
    }
    return n;
}

/* Reads the optional integer key name of object o (path names o, "" at the top) into *v when
 * present: an integer >= min, or null when nullable (then *v = -1). */
static int get_int(const json_t *o, const char *path, const char *name, int64_t min, bool nullable,
                   int64_t *v, char *msg, size_t msglen)
{
    const json_t *j = json_object_get(o, name);
    if (!j) {
        return 0;
    }
    if (nullable && json_is_null(j)) {
        *v = -1;
        return 0;
    }
    if (!json_is_integer(j) || json_integer_value(j) < min) {
        slp__errf(msg, msglen, "%s%s%s: expected an integer >= %" PRId64 "%s", path,
                  *path ? "." : "", name, min, nullable ? " or null" : "");
        return SL_EINVAL;
    }
    *v = (int64_t)json_integer_value(j);
    return 0;
}

/* Refuses a key of object o (at path) not in the NULL-terminated list allowed. */
static int only_keys(const json_t *o, const char *path, const char *const *allowed,
                     const char *list, char *msg, size_t msglen)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)o, key, v)
    {
        int ok = 0;
        for (int i = 0; allowed[i]; i++) {
            ok |= strcmp(key, allowed[i]) == 0;
        }
        if (!ok) {
            slp__errf(msg, msglen, "%s%s%.64s: unknown key (expected %s)", path, *path ? "." : "",
                      key, list);
            return SL_EINVAL;
        }
    }
    return 0;
}

static int parse_ranking(struct slc_config *c, const struct slp_score_req *r, const json_t *j,
                         char *msg, size_t msglen)
{
    static const char *const keys[] = {"key", "order", NULL};
    if (!json_is_array(j) || json_array_size(j) == 0 || json_array_size(j) > SLC_MAX_KEYS) {
        slp__errf(msg, msglen,
                  "ranking: expected a list of 1 to %d objects {\"key\": ..., \"order\": "
                  "\"desc\" or \"asc\"}",
                  SLC_MAX_KEYS);
        return SL_EINVAL;
    }
    for (size_t i = 0; i < json_array_size(j); i++) {
        const json_t *e = json_array_get(j, i);
        char path[48];
        snprintf(path, sizeof path, "ranking[%zu]", i);
        if (!json_is_object(e)) {
            slp__errf(msg, msglen, "%s: expected an object {\"key\": ..., \"order\": ...}", path);
            return SL_EINVAL;
        }
        int rc = only_keys(e, path, keys, "key and order", msg, msglen);
        if (rc) {
            return rc;
        }
        const char *key = text_of(json_object_get(e, "key"));
        const char *order = text_of(json_object_get(e, "order"));
        if (!key) {
            slp__errf(msg, msglen, "%s.key: required, a string", path);
            return SL_EINVAL;
        }
        if (!order || (strcmp(order, "desc") != 0 && strcmp(order, "asc") != 0)) {
            slp__errf(msg, msglen, "%s.order: required, \"desc\" (higher is better) or \"asc\"",
                      path);
            return SL_EINVAL;
        }
        snprintf(path, sizeof path, "ranking[%zu].key", i);
        rc = check_key(c, r, key, path, msg, msglen);
        if (rc) {
            return rc;
        }
        for (int k = 0; k < c->nranking; k++) {
            if (strcmp(c->ranking[k].key, key) == 0) {
                slp__errf(msg, msglen, "%s: '%s' is already ranking[%d].key", path, key, k);
                return SL_EINVAL;
            }
        }
        snprintf(c->ranking[c->nranking].key, SLC_VALUE_KEY_MAX, "%s", key);
        c->ranking[c->nranking++].desc = strcmp(order, "desc") == 0;
    }
    return 0;
}

/* The order of column key: the ranking key's of the same name, else desc. */
static bool column_desc(const struct slc_config *c, const char *key)
{
    for (int k = 0; k < c->nranking; k++) {
        if (strcmp(c->ranking[k].key, key) == 0) {
            return c->ranking[k].desc;
        }
    }
    return true;
}

static int parse_columns(struct slc_config *c, const struct slp_score_req *r, const json_t *j,
                         char *msg, size_t msglen)
{
    if (!j) {
        for (int k = 0; k < c->nranking; k++) {
            c->columns[k] = c->ranking[k];
        }
        c->ncolumns = c->nranking;
        return 0;
    }
    if (!json_is_array(j) || json_array_size(j) == 0 || json_array_size(j) > SLC_MAX_KEYS) {
        slp__errf(msg, msglen, "columns: expected a list of 1 to %d value keys", SLC_MAX_KEYS);
        return SL_EINVAL;
    }
    for (size_t i = 0; i < json_array_size(j); i++) {
        const char *key = text_of(json_array_get(j, i));
        char path[48];
        snprintf(path, sizeof path, "columns[%zu]", i);
        if (!key) {
            slp__errf(msg, msglen, "%s: expected a value key (a string)", path);
            return SL_EINVAL;
        }
        int rc = check_key(c, r, key, path, msg, msglen);
        if (rc) {
            return rc;
        }
        for (int k = 0; k < c->ncolumns; k++) {
            if (strcmp(c->columns[k].key, key) == 0) {
                slp__errf(msg, msglen, "%s: '%s' is already columns[%d]", path, key, k);
                return SL_EINVAL;
            }
        }
        snprintf(c->columns[c->ncolumns].key, SLC_VALUE_KEY_MAX, "%s", key);
        c->columns[c->ncolumns++].desc = column_desc(c, key);
    }
    return 0;
}

static int parse_split(struct slc_config *c, const json_t *j, char *msg, size_t msglen)
{
    static const char *const keys[] = {"public_fraction", "seed", "public_ids", NULL};
    if (!json_is_object(j)) {
        slp__errf(msg, msglen,
                  "split: expected {\"public_fraction\": f, \"seed\": s} or {\"public_ids\": "
                  "[...]}");
        return SL_EINVAL;
    }
    int rc = only_keys(j, "split", keys, "public_fraction and seed, or public_ids", msg, msglen);
    if (rc) {
        return rc;
    }
    const json_t *ids = json_object_get(j, "public_ids");
    const json_t *f = json_object_get(j, "public_fraction");
    if (ids && (f || json_object_get(j, "seed"))) {
        slp__errf(msg, msglen,
                  "split: give either public_ids or public_fraction and seed, not both");
        return SL_EINVAL;
    }
    if (ids) {
        return slc_ids_parse(ids, "split.public_ids", &c->public_ids, &c->npublic_ids, msg, msglen);
    }
    if (f) {
        double v = json_number_value(f);
        if (!json_is_number(f) || !(v > 0 && v <= 1)) {
            slp__errf(msg, msglen, "split.public_fraction: expected a number in (0, 1]");
            return SL_EINVAL;
        }
        c->public_fraction = v;
    }
    return get_int(j, "split", "seed", 0, false, &c->seed, msg, msglen);
}

static int parse_quota(struct slc_config *c, const json_t *j, char *msg, size_t msglen)
{
    static const char *const keys[] = {"per_day", "total", "concurrent", NULL};
    if (!json_is_object(j)) {
        slp__errf(msg, msglen,
                  "quota: expected {\"per_day\": n or null, \"total\": n or null, "
                  "\"concurrent\": n}");
        return SL_EINVAL;
    }
    int rc = only_keys(j, "quota", keys, "per_day, total and concurrent", msg, msglen);
    if (!rc) {
        rc = get_int(j, "quota", "per_day", 1, true, &c->per_day, msg, msglen);
    }
    if (!rc) {
        rc = get_int(j, "quota", "total", 1, true, &c->total, msg, msglen);
    }
    if (!rc) {
        rc = get_int(j, "quota", "concurrent", 1, false, &c->concurrent, msg, msglen);
    }
    return rc;
}

/* Reads the optional time key name (an RFC 3339 string or null) into *t. */
static int parse_time(const json_t *root, const char *name, int64_t *t, char *msg, size_t msglen)
{
    const json_t *j = json_object_get(root, name);
    if (!j || json_is_null(j)) {
        return 0;
    }
    const char *why = "expected an RFC 3339 date-time string such as 2027-06-30T23:59:59Z or null";
    if (!text_of(j) || !rfc3339_parse(json_string_value(j), t, &why)) {
        slp__errf(msg, msglen, "%s: %s", name, why);
        return SL_EINVAL;
    }
    return 0;
}

/* The top-level keys and spec: everything but ranking and columns, which need the spec's keys. */
static int parse_top(struct slc_config *c, const json_t *root, const struct slp_limits *lim,
                     struct slp_score_req **rp, char *msg, size_t msglen)
{
    static const char *const keys[] = {
        "title", "description",     "spec",     "ranking",   "columns",
        "split", "quota",           "opens_at", "closes_at", "final_selections",
        "keep",  "private_visible", NULL};
    int rc = only_keys(root, "", keys,
                       "title, description, spec, ranking, columns, split, quota, opens_at, "
                       "closes_at, final_selections, keep and private_visible",
                       msg, msglen);
    if (rc) {
        return rc;
    }
    const json_t *title = json_object_get(root, "title");
    const char *ts = text_of(title);
    if (!ts || !*ts || code_points(ts) > TITLE_MAX) {
        slp__errf(msg, msglen, "title: %s",
                  title ? "expected a non-empty string of at most 200 characters" : "required");
        return SL_EINVAL;
    }
    const json_t *desc = json_object_get(root, "description");
    if (desc && !text_of(desc)) {
        slp__errf(msg, msglen, "description: expected a string (without NUL characters)");
        return SL_EINVAL;
    }
    c->title = strdup(ts);
    c->description = strdup(desc ? json_string_value(desc) : "");
    if (!c->title || !c->description) {
        slp__errf(msg, msglen, "out of memory");
        return SL_ENOMEM;
    }
    const json_t *spec = json_object_get(root, "spec");
    if (!json_is_object(spec)) {
        slp__errf(msg, msglen, "spec: %s",
                  spec ? "expected an object (the keys of a /v1/score spec without arrays)"
                       : "required");
        return SL_EINVAL;
    }
    char m2[400];
    m2[0] = '\0';
    rc = slp__parse_spec(spec, lim, false, rp, m2, sizeof m2);
    if (rc) {
        slp__errf(msg, msglen, "spec.%s", m2);
        return rc;
    }
    c->spec = json_deep_copy(spec);
    if (!c->spec) {
        slp__errf(msg, msglen, "out of memory");
        return SL_ENOMEM;
    }
    c->mode = (*rp)->req.mode;
    c->pred_type = (*rp)->req.pred_type;
    fill_produced(c, *rp);
    if (json_object_get(root, "split")) {
        rc = parse_split(c, json_object_get(root, "split"), msg, msglen);
    }
    if (!rc && json_object_get(root, "quota")) {
        rc = parse_quota(c, json_object_get(root, "quota"), msg, msglen);
    }
    if (!rc) {
        rc = parse_time(root, "opens_at", &c->opens_at, msg, msglen);
    }
    if (!rc) {
        rc = parse_time(root, "closes_at", &c->closes_at, msg, msglen);
    }
    if (!rc && c->opens_at != INT64_MIN && c->closes_at != INT64_MAX &&
        c->closes_at <= c->opens_at) {
        slp__errf(msg, msglen, "closes_at: must be after opens_at");
        rc = SL_EINVAL;
    }
    if (!rc) {
        rc = get_int(root, "", "final_selections", 0, false, &c->final_selections, msg, msglen);
    }
    const json_t *keep = json_object_get(root, "keep");
    if (!rc && keep) {
        const char *k = text_of(keep);
        if (!k || (strcmp(k, "best") != 0 && strcmp(k, "latest") != 0)) {
            slp__errf(msg, msglen, "keep: expected \"best\" or \"latest\"");
            return SL_EINVAL;
        }
        c->keep_latest = strcmp(k, "latest") == 0;
    }
    const json_t *pv = json_object_get(root, "private_visible");
    if (!rc && pv) {
        if (!json_is_boolean(pv)) {
            slp__errf(msg, msglen, "private_visible: expected true or false");
            return SL_EINVAL;
        }
        c->private_visible = json_is_true(pv);
    }
    return rc;
}

int slc_config_parse(const char *body, size_t len, const struct slp_limits *lim,
                     struct slc_config **out, char *msg, size_t msglen)
{
    struct slp_limits deflim;
    json_error_t err;
    *out = NULL;
    if (msg && msglen) {
        msg[0] = '\0';
    }
    lim = slp__limits_or_default(lim, &deflim);
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
    if (!root) {
        slp__errf(msg, msglen, "malformed JSON at line %d, column %d: %s", err.line, err.column,
                  err.text);
        return SL_EMALFORMED;
    }
    struct slc_config *c = calloc(1, sizeof *c);
    if (!c) {
        json_decref(root);
        slp__errf(msg, msglen, "out of memory");
        return SL_ENOMEM;
    }
    c->public_fraction = 1;
    c->per_day = 5;
    c->total = -1;
    c->concurrent = 1;
    c->opens_at = INT64_MIN;
    c->closes_at = INT64_MAX;
    c->final_selections = 2;
    struct slp_score_req *r = NULL;
    int rc = 0;
    if (!json_is_object(root)) {
        slp__errf(msg, msglen, "the body must be a JSON object (the configuration)");
        rc = SL_EINVAL;
    }
    if (!rc) {
        rc = parse_top(c, root, lim, &r, msg, msglen);
    }
    if (!rc) {
        const json_t *rk = json_object_get(root, "ranking");
        if (!rk) {
            slp__errf(msg, msglen, "ranking: required");
            rc = SL_EINVAL;
        } else {
            rc = parse_ranking(c, r, rk, msg, msglen);
        }
    }
    if (!rc) {
        rc = parse_columns(c, r, json_object_get(root, "columns"), msg, msglen);
    }
    slp__score_req_free(r);
    json_decref(root);
    if (rc) {
        slc_config_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* Sets key of o to v (stolen); returns -1 when v is NULL or setting fails. */
static int put(json_t *o, const char *key, json_t *v)
{
    return v ? json_object_set_new(o, key, v) : -1;
}

/* A time as its RFC 3339 string, or null when none (INT64_MIN / INT64_MAX). New reference. */
static json_t *time_json(int64_t t)
{
    if (t == INT64_MIN || t == INT64_MAX) {
        return json_null();
    }
    char buf[40];
    rfc3339_format(t, buf, sizeof buf);
    return json_string(buf);
}

/* An integer, or null for -1. New reference. */
static json_t *int_or_null(int64_t v)
{
    return v < 0 ? json_null() : json_integer((json_int_t)v);
}

json_t *slc_config_json(const struct slc_config *c)
{
    json_t *o = json_object();
    json_t *rk = json_array(), *cols = json_array(), *split = json_object(), *quota = json_object();
    int bad = !o || !rk || !cols || !split || !quota;
    for (int i = 0; !bad && i < c->nranking; i++) {
        json_t *e = json_object();
        bad |= !e || json_array_append_new(rk, e) != 0;
        bad |= bad || put(e, "key", json_string(c->ranking[i].key)) != 0;
        bad |= bad || put(e, "order", json_string(c->ranking[i].desc ? "desc" : "asc")) != 0;
    }
    for (int i = 0; !bad && i < c->ncolumns; i++) {
        bad |= json_array_append_new(cols, json_string(c->columns[i].key)) != 0;
    }
    if (!bad && c->public_ids) {
        json_t *ids = json_array();
        bad |= put(split, "public_ids", ids) != 0;
        for (size_t i = 0; !bad && i < c->npublic_ids; i++) {
            bad |= json_array_append_new(ids, json_string(c->public_ids[i])) != 0;
        }
    } else if (!bad) {
        bad |= put(split, "public_fraction", json_real(c->public_fraction)) != 0;
        bad |= put(split, "seed", json_integer((json_int_t)c->seed)) != 0;
    }
    if (!bad) {
        bad |= put(quota, "per_day", int_or_null(c->per_day)) != 0;
        bad |= put(quota, "total", int_or_null(c->total)) != 0;
        bad |= put(quota, "concurrent", json_integer((json_int_t)c->concurrent)) != 0;
    }
    if (bad) {
        json_decref(o);
        json_decref(rk);
        json_decref(cols);
        json_decref(split);
        json_decref(quota);
        return NULL;
    }
    /* o steals rk, cols, split and quota from here on */
    bad |= put(o, "title", json_string(c->title)) != 0;
    bad |= put(o, "description", json_string(c->description)) != 0;
    bad |= put(o, "spec", json_deep_copy(c->spec)) != 0;
    bad |= put(o, "ranking", rk) != 0;
    bad |= put(o, "columns", cols) != 0;
    bad |= put(o, "split", split) != 0;
    bad |= put(o, "quota", quota) != 0;
    bad |= put(o, "opens_at", time_json(c->opens_at)) != 0;
    bad |= put(o, "closes_at", time_json(c->closes_at)) != 0;
    bad |= put(o, "final_selections", json_integer((json_int_t)c->final_selections)) != 0;
    bad |= put(o, "keep", json_string(c->keep_latest ? "latest" : "best")) != 0;
    bad |= put(o, "private_visible", json_boolean(c->private_visible)) != 0;
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}
