/* spec_util.h - building loss and metric specs in unit tests: a spec with the table's defaults,
 * then named parameters set one by one. */
#ifndef SEGLOSS_SPEC_UTIL_H
#define SEGLOSS_SPEC_UTIL_H

#include "segloss.h"

static inline struct sl_spec loss(const char *name)
{
    struct sl_spec s;
    sl_spec_init(&s, sl_find_loss(name));
    return s;
}

static inline struct sl_spec metric(const char *name)
{
    struct sl_spec s;
    sl_spec_init(&s, sl_find_metric(name));
    return s;
}

static inline void set_num(struct sl_spec *s, const char *param, double v)
{
    int i = sl_param_index(s->def, param);
    s->values[i].kind = SL_V_NUMBER;
    s->values[i].num = v;
}

static inline void set_bool(struct sl_spec *s, const char *param, bool v)
{
    int i = sl_param_index(s->def, param);
    s->values[i].kind = SL_V_BOOL;
    s->values[i].b = v;
}

static inline void set_choice(struct sl_spec *s, const char *param, int c)
{
    int i = sl_param_index(s->def, param);
    s->values[i].kind = SL_V_ENUM;
    s->values[i].choice = c;
}

/* Sets param to JSON null (e.g. focal's alpha: no weighting). */
static inline void set_null(struct sl_spec *s, const char *param)
{
    s->values[sl_param_index(s->def, param)].kind = SL_V_NULL;
}

/* Sets param to the list arr[0..n) (borrowed: arr must outlive the spec). */
static inline void set_list(struct sl_spec *s, const char *param, const double *arr, int n)
{
    int i = sl_param_index(s->def, param);
    s->values[i].kind = SL_V_LIST;
    s->values[i].list = arr;
    s->values[i].nlist = n;
}

#endif /* SEGLOSS_SPEC_UTIL_H */
