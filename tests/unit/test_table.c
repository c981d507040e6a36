/* test_table.c - the loss/metric table and parameter checks the parser relies on. */
#include <math.h>
#include <string.h>

#include "../check.h"
#include "segloss.h"

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
    CHECK(n == 11 && t[0].name != NULL);
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
    CHECK_TEST(test_defaults_and_ranges),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_table", tests);
}
