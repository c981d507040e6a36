/* catalog.c - GET /v1/catalog, written from the lib's loss and metric tables, the same rows the
 * spec parser validates against: adding a loss to the table adds it here. */
#include <math.h>
#include <stdlib.h>

#include "array_internal.h"
#include "internal.h"

static const char *type_name(enum sl_param_type t)
{
    switch (t) {
    case SL_PT_NUMBER:
        return "number";
    case SL_PT_INTEGER:
        return "integer";
    case SL_PT_BOOL:
        return "boolean";
    case SL_PT_ENUM:
        return "enum";
    case SL_PT_NUMBER_NULL:
        return "number_or_null";
    case SL_PT_NUMBER_ENUM:
        return "number_or_enum";
    case SL_PT_TERMS:
        return "terms";
    case SL_PT_LIST:
        return "number_list";
    case SL_PT_NUMBER_NULL_LIST:
        return "number_or_null_or_list";
    case SL_PT_NUMBER_LIST:
        return "number_or_list";
    }
    return "?";
}

/* Writes the default of p, or nothing when absent (not giving the parameter is meaningful). */
static void write_default(struct slp_dynbuf *b, const struct sl_param_def *p)
{
    const struct sl_value *v = &p->def;
    switch (v->kind) {
    case SL_V_NUMBER:
        slp_dynbuf_adds(b, ",\"default\":");
        slp__write_num(b, v->num);
        return;
    case SL_V_BOOL:
        slp_dynbuf_adds(b, v->b ? ",\"default\":true" : ",\"default\":false");
        return;
    case SL_V_ENUM:
        slp_dynbuf_adds(b, ",\"default\":");
        slp_json_add_str(b, p->choices[v->choice], 0);
        return;
    case SL_V_NULL:
        slp_dynbuf_adds(b, ",\"default\":null");
        return;
    case SL_V_ABSENT:
    case SL_V_LIST:
        return;
    }
}

static void write_param(struct slp_dynbuf *b, const struct sl_param_def *p)
{
    slp_dynbuf_adds(b, "{\"name\":");
    slp_json_add_str(b, p->name, 0);
    slp_dynbuf_adds(b, ",\"type\":");
    slp_json_add_str(b, type_name(p->type), 0);
    write_default(b, p);
    bool numeric = p->type != SL_PT_BOOL && p->type != SL_PT_ENUM && p->type != SL_PT_TERMS;
    if (numeric) {
        slp_dynbuf_adds(b, ",\"minimum\":");
        slp__write_num(b, p->min);
        if (isfinite(p->max)) {
            slp_dynbuf_adds(b, ",\"maximum\":");
            slp__write_num(b, p->max);
        }
        if (p->min_open) {
            slp_dynbuf_adds(b, ",\"exclusive_minimum\":true");
        }
    }
    if (p->choices) {
        slp_dynbuf_adds(b, ",\"choices\":[");
        for (int i = 0; p->choices[i]; i++) {
            if (i) {
                slp_dynbuf_add(b, ",", 1);
            }
            slp_json_add_str(b, p->choices[i], 0);
        }
        slp_dynbuf_adds(b, "]");
    }
    slp_dynbuf_adds(b, ",\"description\":");
    slp_json_add_str(b, p->doc, 0);
    slp_dynbuf_adds(b, "}");
}

static void write_table(struct slp_dynbuf *b, const struct sl_def *defs, int n)
{
    slp_dynbuf_add(b, "[", 1);
    for (int i = 0; i < n; i++) {
        const struct sl_def *d = &defs[i];
        slp_dynbuf_adds(b, i ? ",{\"name\":" : "{\"name\":");
        slp_json_add_str(b, d->name, 0);
        slp_dynbuf_adds(b, ",\"summary\":");
        slp_json_add_str(b, d->summary, 0);
        slp_dynbuf_adds(b, ",\"convention\":");
        slp_json_add_str(b, d->convention ? d->convention : "the usual confusion-matrix form", 0);
        if (d->aliases) {
            /* the peer's other names for the row (MONAI ConfusionMatrixMetric) */
            slp_dynbuf_adds(b, ",\"aliases\":[");
            for (int k = 0; d->aliases[k]; k++) {
                if (k) {
                    slp_dynbuf_add(b, ",", 1);
                }
                slp_json_add_str(b, d->aliases[k], 0);
            }
            slp_dynbuf_adds(b, "]");
        }
        slp_dynbuf_adds(b, ",\"params\":[");
        for (int k = 0; k < d->nparams; k++) {
            if (k) {
                slp_dynbuf_add(b, ",", 1);
            }
            write_param(b, &d->params[k]);
        }
        slp_dynbuf_adds(b, "]}");
    }
    slp_dynbuf_add(b, "]", 1);
}

char *slp_catalog_json(size_t *len)
{
    struct slp_dynbuf b;
    slp_dynbuf_init(&b, SLP_ANSWER_MAX);
    int nl, nm;
    const struct sl_def *losses = sl_loss_table(&nl), *metrics = sl_metric_table(&nm);
    slp_dynbuf_adds(&b, "{\"version\":");
    slp_json_add_str(&b, SL_VERSION, 0);
    slp_dynbuf_adds(&b, ",\"losses\":");
    write_table(&b, losses, nl);
    slp_dynbuf_adds(&b, ",\"metrics\":");
    write_table(&b, metrics, nm);
    /* what the wire takes, so that a client can choose (the CLI's --compress auto picks zstd
     * when it is listed): the arrays' "compression" values, from inflate.c's decoder table, and
     * the request codings of server/headers.c */
    slp_dynbuf_adds(&b, ",\"compression\":[");
    for (int k = 0; slp__compression_row(k); k++) {
        slp_dynbuf_adds(&b, k ? "," : "");
        slp_json_add_str(&b, slp__compression_row(k), 0);
    }
    slp_dynbuf_adds(&b, "],\"content_encoding\":[\"identity\",\"gzip\",\"deflate\",\"zstd\"]");
    slp_dynbuf_adds(&b, "}");
    if (b.err) {
        slp_dynbuf_free(&b);
        return NULL;
    }
    return slp_dynbuf_take(&b, len);
}
