/* catalog.c - GET /v1/catalog, written from the lib's loss and metric tables, the same rows the
 * spec parser validates against: adding a loss to the table adds it here. */
#include <math.h>
#include <stdlib.h>

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
    }
    return "?";
}

/* Writes the default of p, or nothing when absent (not giving the parameter is meaningful). */
static void write_default(struct slp_buf *b, const struct sl_param_def *p)
{
    const struct sl_value *v = &p->def;
    switch (v->kind) {
    case SL_V_NUMBER:
        slp__buf_puts(b, ",\"default\":");
        slp__buf_num(b, v->num);
        return;
    case SL_V_BOOL:
        slp__buf_puts(b, v->b ? ",\"default\":true" : ",\"default\":false");
        return;
    case SL_V_ENUM:
        slp__buf_puts(b, ",\"default\":");
        slp__buf_str(b, p->choices[v->choice]);
        return;
    case SL_V_NULL:
        slp__buf_puts(b, ",\"default\":null");
        return;
    case SL_V_ABSENT:
    case SL_V_LIST:
        return;
    }
}

static void write_param(struct slp_buf *b, const struct sl_param_def *p)
{
    slp__buf_puts(b, "{\"name\":");
    slp__buf_str(b, p->name);
    slp__buf_puts(b, ",\"type\":");
    slp__buf_str(b, type_name(p->type));
    write_default(b, p);
    bool numeric = p->type != SL_PT_BOOL && p->type != SL_PT_ENUM && p->type != SL_PT_TERMS;
    if (numeric) {
        slp__buf_puts(b, ",\"minimum\":");
        slp__buf_num(b, p->min);
        if (isfinite(p->max)) {
            slp__buf_puts(b, ",\"maximum\":");
            slp__buf_num(b, p->max);
        }
        if (p->min_open) {
            slp__buf_puts(b, ",\"exclusive_minimum\":true");
        }
    }
    if (p->choices) {
        slp__buf_puts(b, ",\"choices\":[");
        for (int i = 0; p->choices[i]; i++) {
            if (i) {
                slp__buf_put(b, ",", 1);
            }
            slp__buf_str(b, p->choices[i]);
        }
        slp__buf_puts(b, "]");
    }
    slp__buf_puts(b, ",\"description\":");
    slp__buf_str(b, p->doc);
    slp__buf_puts(b, "}");
}

static void write_table(struct slp_buf *b, const struct sl_def *defs, int n)
{
    slp__buf_put(b, "[", 1);
    for (int i = 0; i < n; i++) {
        const struct sl_def *d = &defs[i];
        slp__buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
        slp__buf_str(b, d->name);
        slp__buf_puts(b, ",\"summary\":");
        slp__buf_str(b, d->summary);
        slp__buf_puts(b, ",\"convention\":");
        slp__buf_str(b, d->convention ? d->convention : "the usual confusion-matrix form");
        slp__buf_puts(b, ",\"params\":[");
        for (int k = 0; k < d->nparams; k++) {
            if (k) {
                slp__buf_put(b, ",", 1);
            }
            write_param(b, &d->params[k]);
        }
        slp__buf_puts(b, "]}");
    }
    slp__buf_put(b, "]", 1);
}

char *slp_catalog_json(size_t *len)
{
    struct slp_buf b = {0};
    int nl, nm;
    const struct sl_def *losses = sl_loss_table(&nl), *metrics = sl_metric_table(&nm);
    slp__buf_puts(&b, "{\"version\":");
    slp__buf_str(&b, SL_VERSION);
    slp__buf_puts(&b, ",\"losses\":");
    write_table(&b, losses, nl);
    slp__buf_puts(&b, ",\"metrics\":");
    write_table(&b, metrics, nm);
    slp__buf_puts(&b, "}");
    if (b.oom) {
        free(b.data);
        return NULL;
    }
    *len = b.len;
    return b.data;
}
