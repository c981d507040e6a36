/* test_tensor.c - dtypes, half floats and bfloat16 (every bit pattern, both widening paths),
 * error table, index formatting. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "internal.h"

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

/* The value of a binary16 (mbits 10, bias 15) or bfloat16 (mbits 7, bias 127) bit pattern, by
 * IEEE 754's definition: (-1)^s 2^(e - bias) (1 + m / 2^mbits), subnormal 2^(1 - bias) m /
 * 2^mbits, an all-ones e inf (m = 0) or NaN. */
static double ref_value(uint16_t b, int mbits, int bias)
{
    const int ebits = 15 - mbits, emax = (1 << ebits) - 1;
    const int e = (b >> mbits) & emax, m = b & ((1 << mbits) - 1);
    const double sign = b & 0x8000 ? -1.0 : 1.0;
    if (e == emax) {
        return m ? NAN : sign * INFINITY;
    }
    if (e == 0) {
        return sign * ldexp(m, 1 - bias - mbits);
    }
    return sign * ldexp((1 << mbits) + m, e - bias - mbits);
}

/* Every one of the 65536 patterns of dt widened by sl__to_f32 (isa: -1 F16C/SSE2, 0 scalar),
 * from an odd start so the vector loops meet unaligned data and a tail: each non-NaN value the
 * same float bits as the definition's value (float holds both formats exactly, -0 included);
 * each NaN a NaN of the same sign (bfloat16: its very bits in the high half). */
static void check_all_patterns(enum sl_dtype dt, int isa)
{
    const int mbits = dt == SL_DT_F16 ? 10 : 7, bias = dt == SL_DT_F16 ? 15 : 127;
    uint16_t *src = malloc(sizeof *src * 65537);
    float *dst = malloc(sizeof *dst * 65536);
    for (uint32_t k = 0; k < 65536; k++) {
        src[k + 1] = (uint16_t)k;
    }
    sl__to_f32(isa, dt, src + 1, 65536, dst);
    int bad = 0;
    for (uint32_t k = 0; k < 65536; k++) {
        const double want = ref_value((uint16_t)k, mbits, bias);
        const float wf = (float)want; /* exact: the format is a subset of float */
        uint32_t got_bits, want_bits;
        memcpy(&got_bits, &dst[k], 4);
        memcpy(&want_bits, &wf, 4);
        bool ok;
        if (isnan(want)) {
            ok = isnan(dst[k]) && (got_bits >> 31) == (k >> 15) &&
                 (dt != SL_DT_BF16 || got_bits == k << 16);
        } else {
            ok = got_bits == want_bits && (double)dst[k] == want;
        }
        if (!ok && bad++ < 5) {
            fprintf(stderr, "%s 0x%04x (isa %d): 0x%08x, want %.17g\n", sl_dtype_name(dt), k, isa,
                    got_bits, want);
        }
        /* element access widens the same way */
        struct sl_tensor t = {src + 1, dt, 1, {65536}};
        const double g = sl_tensor_get(&t, k);
        ok = isnan(want) ? isnan(g) : g == want && signbit(g) == signbit(want);
        if (!ok && bad++ < 5) {
            fprintf(stderr, "sl_tensor_get %s 0x%04x: %.17g, want %.17g\n", sl_dtype_name(dt), k, g,
                    want);
        }
    }
    CHECK_INT(bad, 0);
    free(src);
    free(dst);
}

static void test_half_patterns(void)
{
    check_all_patterns(SL_DT_F16, -1);
    check_all_patterns(SL_DT_F16, 0);
}

static void test_bfloat16_patterns(void)
{
    check_all_patterns(SL_DT_BF16, -1);
    check_all_patterns(SL_DT_BF16, 0);
    enum sl_dtype dt;
    CHECK_INT(sl_dtype_from_name("bfloat16", &dt), 0);
    CHECK_INT(dt, SL_DT_BF16);
    CHECK_INT(sl_dtype_size(SL_DT_BF16), 2);
    /* by hand: 0x3f80 = 1, 0xc040 = -3, 0x7f7f = (2 - 2^-7) 2^127 (the largest), 0x0001 =
     * 2^-133 (the smallest subnormal), 0x3e80 = 0.25 */
    uint16_t b[5] = {0x3f80, 0xc040, 0x7f7f, 0x0001, 0x3e80};
    const double want[5] = {1.0, -3.0, ldexp(255.0, 120), ldexp(1.0, -133), 0.25};
    struct sl_tensor t = {b, SL_DT_BF16, 1, {5}};
    for (int i = 0; i < 5; i++) {
        CHECK(sl_tensor_get(&t, i) == want[i]);
    }
}

/* The first NaN or infinity of a float16 / bfloat16 tensor, in the whole-block loop and in the
 * tail, and none in a finite one (the largest finite values included). */
static void test_half_nonfinite(void)
{
    const enum sl_dtype dts[2] = {SL_DT_F16, SL_DT_BF16};
    const uint16_t inf[2] = {0x7c00, 0x7f80}, nan[2] = {0xfe00, 0x7fc1}, big[2] = {0xfbff, 0x7f7f};
    uint16_t *u = malloc(sizeof *u * 3000);
    for (int d = 0; d < 2; d++) {
        for (int i = 0; i < 3000; i++) {
            u[i] = i % 7 == 0 ? big[d] : (uint16_t)(i & 0x3fff);
        }
        struct sl_tensor t = {u, dts[d], 2, {3, 1000}};
        CHECK_INT(sl_tensor_find_nonfinite(&t), -1);
        u[2500] = nan[d];
        CHECK_INT(sl_tensor_find_nonfinite(&t), 2500);
        u[1500] = inf[d];
        CHECK_INT(sl_tensor_find_nonfinite(&t), 1500);
        u[3] = (uint16_t)(inf[d] | 0x8000);
        CHECK_INT(sl_tensor_find_nonfinite(&t), 3);
    }
    free(u);
}

static const struct check_test tests[] = {
    CHECK_TEST(test_dtypes),
    CHECK_TEST(test_half_patterns),
    CHECK_TEST(test_bfloat16_patterns),
    CHECK_TEST(test_half_nonfinite),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_tensor", tests);
}
