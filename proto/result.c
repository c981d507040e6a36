/* result.c - the JSON writer for /v1/score answers (openapi.json ScoreResponse). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void slp__buf_put(struct slp_buf *b, const char *s, size_t n)
{
    if (b->oom) {
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1) {
            cap *= 2;
        }
        char *d = realloc(b->data, cap);
        if (!d) {
            b->oom = true;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void slp__buf_puts(struct slp_buf *b, const char *s)
{
    slp__buf_put(b, s, strlen(s));
}

void slp__buf_str(struct slp_buf *b, const char *s)
{
    slp__buf_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            slp__buf_put(b, esc, 2);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            slp__buf_put(b, esc, 6);
        } else {
            slp__buf_put(b, (const char *)p, 1);
        }
    }
    slp__buf_put(b, "\"", 1);
}

void slp__buf_num(struct slp_buf *b, double v)
{
    char s[40];
    if (!isfinite(v)) {
        slp__buf_puts(b, "null");
        return;
    }
    /* shortest of %.15g..%.17g that reads back exactly */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(s, sizeof s, "%.*g", prec, v);
        if (strtod(s, NULL) == v) {
            break;
        }
    }
    slp__buf_puts(b, s);
}

void slp__buf_int(struct slp_buf *b, long long v)
{
    char s[32];
    snprintf(s, sizeof s, "%lld", v);
    slp__buf_puts(b, s);
}

static void write_nums(struct slp_buf *b, const double *v, int64_t n)
{
    slp__buf_put(b, "[", 1);
    for (int64_t i = 0; i < n; i++) {
        if (i) {
            slp__buf_put(b, ",", 1);
        }
        slp__buf_num(b, v[i]);
    }
    slp__buf_put(b, "]", 1);
}

static void write_counts(struct slp_buf *b, const struct sl_confusion *c)
{
    slp__buf_puts(b, "{\"tp\":");
    slp__buf_int(b, c->tp);
    slp__buf_puts(b, ",\"fp\":");
    slp__buf_int(b, c->fp);
    slp__buf_puts(b, ",\"fn\":");
    slp__buf_int(b, c->fn);
    slp__buf_puts(b, ",\"tn\":");
    slp__buf_int(b, c->tn);
    slp__buf_puts(b, "}");
}

/* Writes n entries of v (stride 1) as a JSON list. */
static void write_list(struct slp_buf *b, const double *v, int64_t n)
{
    write_nums(b, v, n);
}

/* Writes N lists of C values (image-major v) as a list of lists. */
static void write_rows(struct slp_buf *b, const double *v, int64_t n, int64_t c)
{
    slp__buf_put(b, "[", 1);
    for (int64_t i = 0; i < n; i++) {
        if (i) {
            slp__buf_put(b, ",", 1);
        }
        write_list(b, v + i * c, c);
    }
    slp__buf_put(b, "]", 1);
}

static void write_count_list(struct slp_buf *b, const struct sl_confusion *c, int64_t n)
{
    slp__buf_put(b, "[", 1);
    for (int64_t i = 0; i < n; i++) {
        if (i) {
            slp__buf_put(b, ",", 1);
        }
        write_counts(b, &c[i]);
    }
    slp__buf_put(b, "]", 1);
}

/* Binary: per_image is a list of N and global a number. Multiclass/multilabel: per_image is
 * N lists of C, per_class and global are lists of C, mean is over the counted classes. */
static void write_metric(struct slp_buf *b, const struct sl_metric_result *m,
                         const struct sl_result *res, bool per_image)
{
    const int64_t n = res->images, c = res->classes;
    const bool binary = res->mode == SL_MODE_BINARY;
    if (m->spec->def->flags & SL_DEF_COUNTS) {
        slp__buf_puts(b, "{\"global\":");
        if (binary) {
            write_counts(b, &m->total[0]);
        } else {
            write_count_list(b, m->total, c);
        }
        if (m->matrix) {
            slp__buf_puts(b, ",\"matrix\":[");
            for (int64_t r = 0; r < c; r++) {
                slp__buf_puts(b, r ? ",[" : "[");
                for (int64_t k = 0; k < c; k++) {
                    if (k) {
                        slp__buf_put(b, ",", 1);
                    }
                    slp__buf_int(b, m->matrix[r * c + k]);
                }
                slp__buf_puts(b, "]");
            }
            slp__buf_puts(b, "]");
        }
        if (per_image) {
            slp__buf_puts(b, ",\"per_image\":");
            if (binary) {
                write_count_list(b, m->counts, n);
            } else {
                slp__buf_put(b, "[", 1);
                for (int64_t i = 0; i < n; i++) {
                    if (i) {
                        slp__buf_put(b, ",", 1);
                    }
                    write_count_list(b, m->counts + i * c, c);
                }
                slp__buf_put(b, "]", 1);
            }
        }
        slp__buf_puts(b, "}");
        return;
    }
    const bool distance = m->spec->def->flags & SL_DEF_DISTANCES;
    slp__buf_puts(b, "{\"mean\":");
    slp__buf_num(b, m->mean);
    if (!distance) {
        /* surface distances have no batch-summed form */
        slp__buf_puts(b, ",\"global\":");
        if (binary) {
            slp__buf_num(b, m->global[0]);
        } else {
            write_list(b, m->global, c);
        }
    }
    if (!binary) {
        slp__buf_puts(b, ",\"per_class\":");
        write_list(b, m->per_class, c);
    }
    if (per_image) {
        slp__buf_puts(b, ",\"per_image\":");
        if (binary) {
            write_list(b, m->per_image, n);
        } else {
            write_rows(b, m->per_image, n, c);
        }
    }
    slp__buf_puts(b, ",\"undefined\":");
    slp__buf_int(b, m->undefined);
    slp__buf_puts(b, "}");
}

void slp__write_result(struct slp_buf *b, const struct slp_score_req *r,
                       const struct sl_result *res, double elapsed_ms)
{
    const struct sl_request *req = &r->req;
    slp__buf_puts(b, "{\"mode\":");
    slp__buf_str(b, sl_mode_name(res->mode));
    slp__buf_puts(b, ",\"images\":");
    slp__buf_int(b, res->images);
    slp__buf_puts(b, ",\"classes\":");
    slp__buf_int(b, res->classes);
    slp__buf_puts(b, ",\"shape\":[");
    for (int i = 0; i < res->nspatial; i++) {
        if (i) {
            slp__buf_put(b, ",", 1);
        }
        slp__buf_int(b, res->spatial[i]);
    }
    slp__buf_puts(b, "],\"losses\":{");
    for (int i = 0; i < res->nlosses; i++) {
        const struct sl_loss_result *l = &res->losses[i];
        if (i) {
            slp__buf_put(b, ",", 1);
        }
        slp__buf_str(b, l->spec->key);
        slp__buf_puts(b, ":{\"value\":");
        slp__buf_num(b, l->value);
        if (r->per_image && l->has_per_image) {
            slp__buf_puts(b, ",\"per_image\":");
            write_nums(b, l->per_image, res->images);
        }
        slp__buf_puts(b, "}");
    }
    slp__buf_puts(b, "},\"metrics\":{");
    for (int i = 0; i < res->nmetrics; i++) {
        if (i) {
            slp__buf_put(b, ",", 1);
        }
        slp__buf_str(b, res->metrics[i].spec->key);
        slp__buf_put(b, ":", 1);
        write_metric(b, &res->metrics[i], res, r->per_image);
    }
    slp__buf_puts(b, "},\"conventions\":{\"prediction_type\":");
    slp__buf_str(b, sl_pred_type_name(req->pred_type));
    slp__buf_puts(b, ",\"threshold\":");
    slp__buf_num(b, req->threshold);
    slp__buf_puts(b, ",\"empty\":");
    slp__buf_str(b, sl_empty_name(req->empty));
    slp__buf_puts(b, ",\"spacing\":[");
    for (int i = 0; i < res->nspatial; i++) {
        if (i) {
            slp__buf_put(b, ",", 1);
        }
        slp__buf_num(b, req->nspacing ? req->spacing[i] : 1.0);
    }
    slp__buf_puts(b, "]");
    if (req->has_ignore) {
        slp__buf_puts(b, ",\"ignore_index\":");
        slp__buf_int(b, req->ignore_index);
    }
    slp__buf_puts(b, ",\"include_background\":");
    slp__buf_puts(b, req->include_background ? "true" : "false");
    slp__buf_puts(b, "},\"elapsed_ms\":");
    slp__buf_num(b, round(elapsed_ms * 1000) / 1000);
    slp__buf_puts(b, "}");
}
