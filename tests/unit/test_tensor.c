/* test_tensor.c - dtypes, half floats, error table, index formatting. */
#include <math.h>
#include <string.h>

#include "../check.h"
#include "segloss.h"

static void test_dtypes(void)
{
    enum sl_dtype dt;
    CHECK_INT(sl_dtype_from_name("float32", &dt), 0);
    CHECK_INT(dt, SL_DT_F32);
    CHECK_INT(sl_dtype_size(SL_DT_F32), 4);
    CHECK_INT(sl_dtype_size(SL_DT_I64), 8);
    CHECK_INT(sl_dtype_size(SL_DT_F16), 2);
    CHECK_INT(sl_dtype_from_name("float128", &dt), SL_EINVAL);
    CHECK(strcmp(sl_dtype_name(SL_DT_BOOL), "bool") == 0);
    /* IEEE binary16: 0x3c00 = 1, 0xc000 = -2, 0x0001 = 2^-24, 0x7bff = 65504, 0x7c00 = inf */
    CHECK_CLOSE(sl_half_to_float(0x3c00), 1.0, 0, 0);
    CHECK_CLOSE(sl_half_to_float(0xc000), -2.0, 0, 0);
    CHECK_CLOSE(sl_half_to_float(0x0001), ldexp(1.0, -24), 0, 0);
    CHECK_CLOSE(sl_half_to_float(0x7bff), 65504.0, 0, 0);
    CHECK(isinf(sl_half_to_float(0x7c00)));
    CHECK(isnan(sl_half_to_float(0x7e00)));
    uint16_t h[3] = {0x3c00, 0x7e00, 0};
    struct sl_tensor t = {h, SL_DT_F16, 2, {1, 3}};
    CHECK_INT(sl_tensor_find_nonfinite(&t), 1);
    CHECK_INT(sl_tensor_numel(&t), 3);
    int64_t shape[3] = {2, 16, 20};
    char buf[64];
    sl_format_shape(shape, 3, buf, sizeof buf);
    CHECK(strcmp(buf, "[2, 16, 20]") == 0);
    CHECK(strcmp(sl_strerror(SL_ESHAPE), "shape mismatch") == 0);
    CHECK(strcmp(sl_errname(SL_ERANGE), "ERANGE") == 0);
    CHECK(strcmp(sl_errname(12345), "EUNKNOWN") == 0);
}

static const struct check_test tests[] = {
    CHECK_TEST(test_dtypes),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_tensor", tests);
}
