/* result.c - the JSON writer for /v1/score answers (openapi.json ScoreResponse). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int slp__write_num(struct slp_dynbuf *b, double v)
{
    char s[40];
    if (!isfinite(v)) {
        return slp_dynbuf_adds(b, "null");
    }
    /* shortest of %.15g..%.17g that reads back exactly */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(s, sizeof s, "%.*g", prec, v);
        if (strtod(s, NULL) == v) {
            break;
        }
    }
    return slp_dynbuf_adds(b, s);
}

int slp__write_int(struct slp_dynbuf *b, long long v)
{
    char s[32];
    int n = snprintf(s, sizeof s, "%lld", v);
    return slp_dynbuf_add(b, s, (size_t)n);
}

static void write_nums(struct slp_dynbuf *b, const double *v, int64_t n)
{
    slp_dynbuf_add(b, "[", 1);
    for (int64_t i = 0; i < n; i++) {
        if (i) {
            slp_dynbuf_add(b, ",", 1);
        }
        slp__write_num(b, v[i]);
    }
    slp_dynbuf_add(b, "]", 1);
}

static void write_counts(struct slp_dynbuf *b, const struct sl_confusion *c)
{
    slp_dynbuf_adds(b, "{\"tp\":");
    slp__write_int(b, c->tp);
    slp_dynbuf_adds(b, ",\"fp\":");
    slp__write_int(b, c->fp);
    slp_dynbuf_adds(b, ",\"fn\":");
    slp__write_int(b, c->fn);
    slp_dynbuf_adds(b, ",\"tn\":");
    slp__write_int(b, c->tn);
    slp_dynbuf_adds(b, "}");
}

/* Writes n entries of v (stride 1) as a JSON list. */
static void write_list(struct slp_dynbuf *b, const double *v, int64_t n)
{
    write_nums(b, v, n);
}

/* Writes N lists of C values (image-major v) as a list of lists. */
static void write_rows(struct slp_dynbuf *b, const double *v, int64_t n, int64_t c)
{
    slp_dynbuf_add(b, "[", 1);
    for (int64_t i = 0; i < n; i++) {
        if (i) {
            slp_dynbuf_add(b, ",", 1);
        }
        write_list(b, v + i * c, c);
    }
    slp_dynbuf_add(b, "]", 1);
}

static void write_count_list(struct slp_dynbuf *b, const struct sl_confusion *c, int64_t n)
{
    slp_dynbuf_add(b, "[", 1);
    for (int64_t i = 0; i < n; i++) {
        if (i) {
            slp_dynbuf_add(b, ",", 1);
        }
        write_counts(b, &c[i]);
    }
    slp_dynbuf_add(b, "]", 1);
}

/* The metric's `reduced` when its spec asks for a MONAI reduction: do_metric_reduction of the
 * per-image values of the counted classes (class 0 left out when include_background is false,
 * as MONAI's ignore_background): a number (mean, sum), a list over classes (*_batch), over
 * images (*_channel), or N lists (none). Nothing is written on out of memory (b->err). */
static void write_reduced(struct slp_dynbuf *b, const struct sl_metric_result *m,
                          const struct sl_result *res, bool include_background)
{
    int r = sl_metric_reduction_of(m->spec);
    if (r < 0) {
        return;
    }
    const int64_t n = res->images, c = res->classes, c0 = c > 1 && !include_background;
    const int64_t cc = c - c0;
    double *v = malloc(sizeof(double) * (size_t)(n * cc + 1));
    double *out = malloc(sizeof(double) * (size_t)(n * cc + 1));
    if (!v || !out) {
        b->err = SL_ENOMEM;
        goto out;
    }
    for (int64_t i = 0; i < n; i++) {
        memcpy(v + i * cc, m->per_image + i * c + c0, sizeof(double) * (size_t)cc);
    }
    int64_t k = sl_metric_reduce((enum sl_metric_reduction)r, v, n, cc, out);
    slp_dynbuf_adds(b, ",\"reduced\":");
    if (r == SL_MR_NONE) {
        write_rows(b, out, n, cc);
    } else if (r == SL_MR_MEAN || r == SL_MR_SUM) {
        slp__write_num(b, out[0]);
    } else {
        write_list(b, out, k);
    }
out:
    free(v);
    free(out);
}

/* Binary: per_image is a list of N and global a number. Multiclass/multilabel: per_image is
 * N lists of C, per_class and global are lists of C, mean is over the counted classes. */
static void write_metric(struct slp_dynbuf *b, const struct sl_metric_result *m,
                         const struct sl_result *res, bool per_image, bool include_background)
{
    const int64_t n = res->images, c = res->classes;
    const bool binary = res->mode == SL_MODE_BINARY;
    if (m->spec->def->flags & SL_DEF_COUNTS) {
        slp_dynbuf_adds(b, "{\"global\":");
        if (binary) {
            write_counts(b, &m->total[0]);
        } else {
            write_count_list(b, m->total, c);
        }
        if (m->matrix) {
            slp_dynbuf_adds(b, ",\"matrix\":[");
            for (int64_t r = 0; r < c; r++) {
                slp_dynbuf_adds(b, r ? ",[" : "[");
                for (int64_t k = 0; k < c; k++) {
                    if (k) {
                        slp_dynbuf_add(b, ",", 1);
                    }
                    slp__write_int(b, m->matrix[r * c + k]);
                }
                slp_dynbuf_adds(b, "]");
            }
            slp_dynbuf_adds(b, "]");
        }
        if (per_image) {
            slp_dynbuf_adds(b, ",\"per_image\":");
            if (binary) {
                write_count_list(b, m->counts, n);
            } else {
                slp_dynbuf_add(b, "[", 1);
                for (int64_t i = 0; i < n; i++) {
                    if (i) {
                        slp_dynbuf_add(b, ",", 1);
                    }
                    write_count_list(b, m->counts + i * c, c);
                }
                slp_dynbuf_add(b, "]", 1);
            }
        }
        slp_dynbuf_adds(b, "}");
        return;
    }
    const bool distance = m->spec->def->flags & SL_DEF_DISTANCES;
    slp_dynbuf_adds(b, "{\"mean\":");
    slp__write_num(b, m->mean);
    if (!distance) {
        /* surface distances have no batch-summed form */
        slp_dynbuf_adds(b, ",\"global\":");
        if (binary) {
            slp__write_num(b, m->global[0]);
        } else {
            write_list(b, m->global, c);
        }
    }
    if (!binary) {
        slp_dynbuf_adds(b, ",\"per_class\":");
        write_list(b, m->per_class, c);
    }
    if (per_image) {
        slp_dynbuf_adds(b, ",\"per_image\":");
        if (binary) {
            write_list(b, m->per_image, n);
        } else {
            write_rows(b, m->per_image, n, c);
        }
    }
    slp_dynbuf_adds(b, ",\"undefined\":");
    slp__write_int(b, m->undefined);
    if (sl_metric_can_be_infinite(m->spec)) {
        /* how many of the undefined (null) values stand for +inf */
        slp_dynbuf_adds(b, ",\"infinite\":");
        slp__write_int(b, m->infinite);
    }
    write_reduced(b, m, res, include_background);
    slp_dynbuf_adds(b, "}");
}

/* Whether loss spec s asks for reduction "none" (region losses: MONAI's unreduced values). */
static bool reduction_none(const struct sl_spec *s)
{
    const int k = sl_param_index(s->def, "reduction");
    return k >= 0 && s->values[k].kind == SL_V_ENUM && s->def->params[k].choices &&
           strcmp(s->def->params[k].choices[s->values[k].choice], "none") == 0;
}

void slp__write_result(struct slp_dynbuf *b, const struct slp_score_req *r,
                       const struct sl_result *res, double elapsed_ms)
{
    const struct sl_request *req = &r->req;
    slp_dynbuf_adds(b, "{\"mode\":");
    slp_json_add_str(b, sl_mode_name(res->mode), 0);
    slp_dynbuf_adds(b, ",\"images\":");
    slp__write_int(b, res->images);
    slp_dynbuf_adds(b, ",\"classes\":");
    slp__write_int(b, res->classes);
    slp_dynbuf_adds(b, ",\"shape\":[");
    for (int i = 0; i < res->nspatial; i++) {
        if (i) {
            slp_dynbuf_add(b, ",", 1);
        }
        slp__write_int(b, res->spatial[i]);
    }
    slp_dynbuf_adds(b, "],\"losses\":{");
    for (int i = 0; i < res->nlosses; i++) {
        const struct sl_loss_result *l = &res->losses[i];
        if (i) {
            slp_dynbuf_add(b, ",", 1);
        }
        slp_json_add_str(b, l->spec->key, 0);
        slp_dynbuf_adds(b, ":{\"value\":");
        slp__write_num(b, l->value);
        /* reduction "none" asks for the unreduced values whatever the request's per_image */
        const bool none = reduction_none(l->spec);
        if ((r->per_image || none) && l->has_per_image) {
            slp_dynbuf_adds(b, ",\"per_image\":");
            write_nums(b, l->per_image, res->images);
        }
        if (l->per_class) {
            slp_dynbuf_adds(b, ",\"per_class\":");
            write_list(b, l->per_class, res->classes);
        }
        if (l->per_image_class) {
            slp_dynbuf_adds(b, ",\"per_image_class\":");
            write_rows(b, l->per_image_class, res->images, res->classes);
        }
        slp_dynbuf_adds(b, "}");
    }
    slp_dynbuf_adds(b, "},\"metrics\":{");
    for (int i = 0; i < res->nmetrics; i++) {
        if (i) {
            slp_dynbuf_add(b, ",", 1);
        }
        slp_json_add_str(b, res->metrics[i].spec->key, 0);
        slp_dynbuf_add(b, ":", 1);
        write_metric(b, &res->metrics[i], res, r->per_image, req->include_background);
    }
    slp_dynbuf_adds(b, "},\"conventions\":{\"prediction_type\":");
    slp_json_add_str(b, sl_pred_type_name(req->pred_type), 0);
    slp_dynbuf_adds(b, ",\"threshold\":");
    slp__write_num(b, req->threshold);
    slp_dynbuf_adds(b, ",\"empty\":");
    slp_json_add_str(b, sl_empty_name(req->empty), 0);
    slp_dynbuf_adds(b, ",\"spacing\":[");
    for (int i = 0; i < res->nspatial; i++) {
        if (i) {
            slp_dynbuf_add(b, ",", 1);
        }
        slp__write_num(b, req->nspacing ? req->spacing[i] : 1.0);
    }
    slp_dynbuf_adds(b, "]");
    if (req->has_ignore) {
        slp_dynbuf_adds(b, ",\"ignore_index\":");
        slp__write_int(b, req->ignore_index);
    }
    slp_dynbuf_adds(b, ",\"include_background\":");
    slp_dynbuf_adds(b, req->include_background ? "true" : "false");
    slp_dynbuf_adds(b, "},\"elapsed_ms\":");
    slp__write_num(b, round(elapsed_ms * 1000) / 1000);
    slp_dynbuf_adds(b, "}");
}
