/* test_table.c - the loss/metric table and parameter checks the parser relies on. */
#include <math.h>
#include <string.h>

#include "../check.h"
#include "internal.h"

static int check(const char *loss, const char *param, struct sl_value v)
{
    const struct sl_def *d = sl_find_loss(loss);
    char msg[128];
    return sl_param_check(&d->params[sl_param_index(d, param)], &v, "p", msg, sizeof msg);
}

static struct sl_value num(double x)
{
    struct sl_value v = {.kind = SL_V_NUMBER, .num = x};
    return v;
}

/* Every row of a table is found by its name (names are unique), has a summary, parameters with
 * names at their own index (lib/table.c places them by index), and a kernel: a loss its plan and
 * value, a metric its formula, its surface value, or the counts themselves. */
static void check_rows(const struct sl_def *t, int n, bool losses)
{
    CHECK(n > 0);
    for (int i = 0; i < n; i++) {
        const struct sl_def *d = &t[i];
        CHECK(d->name && d->summary);
        CHECK((losses ? sl_find_loss(d->name) : sl_find_metric(d->name)) == d);
        CHECK(d->nparams >= 0 && d->nparams <= SL_MAX_PARAMS);
        for (int k = 0; k < d->nparams; k++) {
            CHECK(d->params[k].name && d->params[k].doc);
            CHECK_INT(sl_param_index(d, d->params[k].name), k);
            if (d->params[k].requires) {
                CHECK(sl_param_index(d, d->params[k].requires) >= 0);
            }
            if (d->params[k].excludes) {
                CHECK(sl_param_index(d, d->params[k].excludes) >= 0);
            }
        }
        const struct sl__kernel *k = d->kernel;
        if (losses) {
            CHECK(k && k->plan && k->value && k->combine);
        } else {
            /* exactly one of: a formula of the counts, a surface value, the counts themselves */
            CHECK((k && k->from_counts) + (k && k->surface) + !!(d->flags & SL_DEF_COUNTS) == 1);
            CHECK(!(k && k->surface) || (d->flags & SL_DEF_DISTANCES));
        }
        CHECK(d->modes != 0 && (d->modes & ~SL_MODES_ALL) == 0);
        CHECK(losses || d->modes == SL_MODES_ALL);
        CHECK(d->modes == SL_MODES_ALL || d->mode_hint || d->modes == SL_MODE_BIT(SL_MODE_BINARY));
    }
}

/* The tables against themselves: rows, and the combination rule of every loss's defaults. */
static void test_rows(void)
{
    int nl, nm;
    const struct sl_def *l = sl_loss_table(&nl), *m = sl_metric_table(&nm);
    check_rows(l, nl, true);
    check_rows(m, nm, false);
    struct sl_spec s;
    sl_spec_init(&s, sl_find_loss("dice"));
    CHECK_INT(sl_loss_combine(&s, NULL), SL_COMBINE_IMAGE_MEAN);
    s.values[sl_param_index(s.def, "per_image")].b = false;
    const char *why = NULL;
    CHECK_INT(sl_loss_combine(&s, &why), SL_COMBINE_POOLED);
    CHECK(why != NULL);
    sl_spec_init(&s, sl_find_loss("balanced_cross_entropy")); /* beta "auto" */
    CHECK_INT(sl_loss_combine(&s, NULL), SL_COMBINE_POOLED);
    sl_spec_init(&s, sl_find_loss("cross_entropy"));
    CHECK_INT(sl_loss_combine(&s, NULL), SL_COMBINE_PIXEL_MEAN);
    s.values[sl_param_index(s.def, "reduction")].choice = 1; /* "sum" */
    CHECK_INT(sl_loss_combine(&s, NULL), SL_COMBINE_SUM);
    sl_spec_init(&s, sl_find_loss("combo"));
    CHECK_INT(sl_loss_combine(&s, NULL), SL_COMBINE_TERMS);
    CHECK(sl_find_loss("combo")->flags & SL_DEF_TERMS);
    /* the surface metrics need distances and have no batch-summed form */
    CHECK(sl_find_metric("hausdorff")->flags & SL_DEF_DISTANCES);
    CHECK(sl_find_metric("nsd")->flags & SL_DEF_DISTANCES);
    CHECK(!(sl_find_metric("dice")->flags & SL_DEF_DISTANCES));
    CHECK(sl_find_metric("confusion")->flags & SL_DEF_COUNTS);
}

static void test_defaults_and_ranges(void)
{
    int n;
    const struct sl_def *t = sl_loss_table(&n);
    /* the API's binary losses are all in the table, each with a summary and a convention */
    const char *api[] = {"cross_entropy",
                         "weighted_cross_entropy",
                         "balanced_cross_entropy",
                         "focal",
                         "dice",
                         "jaccard",
                         "tversky",
                         "lovasz_hinge",
                         "combo"};
    for (size_t i = 0; i < sizeof api / sizeof api[0]; i++) {
        const struct sl_def *d = sl_find_loss(api[i]);
        CHECK(d != NULL);
        CHECK(d && d->summary && d->convention);
    }
    CHECK(n >= (int)(sizeof api / sizeof api[0]) && t[0].name != NULL);
    CHECK(sl_find_loss("nope") == NULL);
    CHECK(sl_find_metric("mcc") != NULL);
    /* defaults of openapi.json and the README */
    struct sl_spec s;
    sl_spec_init(&s, sl_find_loss("focal"));
    CHECK_CLOSE(s.values[sl_param_index(s.def, "alpha")].num, 0.25, 0, 0);
    CHECK_CLOSE(s.values[sl_param_index(s.def, "gamma")].num, 2, 0, 0);
    CHECK(strcmp(s.key, "focal") == 0 && s.weight == 1);
    sl_spec_init(&s, sl_find_loss("dice"));
    CHECK(s.values[sl_param_index(s.def, "per_image")].b == true);
    CHECK_CLOSE(s.values[sl_param_index(s.def, "smooth")].num, 0, 0, 0);
    sl_spec_init(&s, sl_find_metric("fbeta"));
    CHECK_CLOSE(s.values[0].num, 1, 0, 0);
    /* ranges */
    CHECK_INT(check("focal", "gamma", num(0)), 0);
    CHECK_INT(check("focal", "gamma", num(-1)), SL_ERANGE);
    CHECK_INT(check("focal", "gamma", num(INFINITY)), SL_ERANGE);
    CHECK_INT(check("focal", "alpha", num(1.5)), SL_ERANGE);
    struct sl_value null = {.kind = SL_V_NULL};
    CHECK_INT(check("focal", "alpha", null), 0);
    CHECK_INT(check("dice", "smooth", null), SL_EINVAL);
    CHECK_INT(check("tversky", "gamma", num(0)), SL_ERANGE); /* (0, inf): 0 excluded */
    CHECK_INT(check("balanced_cross_entropy", "beta", num(1)), 0);
    CHECK_INT(check("balanced_cross_entropy", "beta", num(1.01)), SL_ERANGE);
    struct sl_value b = {.kind = SL_V_BOOL, .b = true};
    CHECK_INT(check("dice", "log", b), 0);
    CHECK_INT(check("dice", "log", num(1)), SL_EINVAL);
}

static const struct check_test tests[] = {
    CHECK_TEST(test_rows),
    CHECK_TEST(test_defaults_and_ranges),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_table", tests);
}
