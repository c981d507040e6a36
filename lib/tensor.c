/* tensor.c - error and dtype tables, tensor element access, float16/bfloat16 widening. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#define SL_HAVE_X86 1
#endif

const char *sl_strerror(int code)
{
    switch (code) {
#define SL__ERR_TEXT(name, value, text)                                                            \
    case (value):                                                                                  \
        return text;
        SL_ERRNO_MAP(SL__ERR_TEXT)
#undef SL__ERR_TEXT
    }
    return "unknown error";
}

const char *sl_errname(int code)
{
    switch (code) {
#define SL__ERR_NAME(name, value, text)                                                            \
    case (value):                                                                                  \
        return #name;
        SL_ERRNO_MAP(SL__ERR_NAME)
#undef SL__ERR_NAME
    }
    return "EUNKNOWN";
}

static const struct {
    const char *name;
    size_t size;
} dtype_table[SL_DT_COUNT] = {
#define SL__DT_ROW(name, str, size) {str, size},
    SL_DTYPE_MAP(SL__DT_ROW)
#undef SL__DT_ROW
};

size_t sl_dtype_size(enum sl_dtype dtype)
{
    return (unsigned)dtype < SL_DT_COUNT ? dtype_table[dtype].size : 0;
}

const char *sl_dtype_name(enum sl_dtype dtype)
{
    return (unsigned)dtype < SL_DT_COUNT ? dtype_table[dtype].name : NULL;
}

int sl_dtype_from_name(const char *name, enum sl_dtype *out)
{
    for (int i = 0; i < SL_DT_COUNT; i++) {
        if (strcmp(name, dtype_table[i].name) == 0) {
            *out = (enum sl_dtype)i;
            return 0;
        }
    }
    return SL_EINVAL;
}

bool sl__dtype_is_float(enum sl_dtype dtype)
{
    return dtype == SL_DT_F16 || dtype == SL_DT_BF16 || dtype == SL_DT_F32 || dtype == SL_DT_F64;
}

int64_t sl_tensor_numel(const struct sl_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) {
        n *= t->shape[i];
    }
    return n;
}

/* IEEE 754 binary16 to binary32, exact for every value including subnormals and NaN. */
float sl_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {
            /* subnormal: renormalize */
            exp = 127 - 15 + 1;
            while (!(mant & 0x400u)) {
                mant <<= 1;
                exp--;
            }
            mant &= 0x3ffu;
            bits = sign | (exp << 23) | (mant << 13);
        }
    } else if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp - 15 + 127) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* bfloat16 to binary32: the high half of the float's bits, exact for every value. */
static float bf16_to_float(uint16_t b)
{
    const uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

#ifdef SL_HAVE_X86
/* F16C: 8 halves per instruction (VCVTPH2PS is exact; it only quiets a signaling NaN). */
__attribute__((target("avx,f16c"))) static void half_f16c(const uint16_t *s, int64_t n, float *d)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        const __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(s + i + 8));
        _mm256_storeu_ps(d + i, _mm256_cvtph_ps(a));
        _mm256_storeu_ps(d + i + 8, _mm256_cvtph_ps(b));
    }
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(d + i,
                         _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(s + i))));
    }
    for (; i < n; i++) {
        d[i] = sl_half_to_float(s[i]);
    }
}

/* Whether the CPU converts halves in hardware: F16C (CPUID leaf 1, ECX bit 29, read directly:
 * clang's __builtin_cpu_supports does not know "f16c") with AVX enabled by the OS. */
static bool has_f16c(void)
{
    unsigned a, b, c, d;
    return __builtin_cpu_supports("avx") && __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}

/* SSE2 (every x86-64): a bfloat16 is the high half of a float, interleaved with zeros. */
static void bf16_sse2(const uint16_t *s, int64_t n, float *d)
{
    const __m128i z = _mm_setzero_si128();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        _mm_storeu_si128((__m128i *)(void *)(d + i), _mm_unpacklo_epi16(z, h));
        _mm_storeu_si128((__m128i *)(void *)(d + i + 4), _mm_unpackhi_epi16(z, h));
    }
    for (; i < n; i++) {
        d[i] = bf16_to_float(s[i]);
    }
}
#endif

void sl__to_f32(int isa, enum sl_dtype dt, const void *src, int64_t n, float *dst)
{
    const uint16_t *s = src;
    if (dt == SL_DT_F16) {
#ifdef SL_HAVE_X86
        if (isa != 0 && has_f16c()) {
            half_f16c(s, n, dst);
            return;
        }
#endif
        for (int64_t i = 0; i < n; i++) {
            dst[i] = sl_half_to_float(s[i]);
        }
    } else if (dt == SL_DT_BF16) {
#ifdef SL_HAVE_X86
        if (isa != 0) {
            bf16_sse2(s, n, dst);
            return;
        }
#endif
        for (int64_t i = 0; i < n; i++) {
            dst[i] = bf16_to_float(s[i]);
        }
    }
}

double sl_tensor_get(const struct sl_tensor *t, int64_t i)
{
    const void *d = t->data;
    switch (t->dtype) {
    case SL_DT_BOOL:
    case SL_DT_U8:
        return ((const uint8_t *)d)[i];
    case SL_DT_I8:
        return ((const int8_t *)d)[i];
    case SL_DT_U16:
        return ((const uint16_t *)d)[i];
    case SL_DT_I16:
        return ((const int16_t *)d)[i];
    case SL_DT_U32:
        return ((const uint32_t *)d)[i];
    case SL_DT_I32:
        return ((const int32_t *)d)[i];
    case SL_DT_I64:
        return (double)((const int64_t *)d)[i];
    case SL_DT_F16:
        return sl_half_to_float(((const uint16_t *)d)[i]);
    case SL_DT_BF16:
        return bf16_to_float(((const uint16_t *)d)[i]);
    case SL_DT_F32:
        return ((const float *)d)[i];
    case SL_DT_F64:
        return ((const double *)d)[i];
    case SL_DT_COUNT:
        break;
    }
    return NAN;
}

int64_t sl_tensor_find_nonfinite(const struct sl_tensor *t)
{
    if (!sl__dtype_is_float(t->dtype)) {
        return -1;
    }
    int64_t n = sl_tensor_numel(t);
    if (t->dtype == SL_DT_F32) {
        /* whole blocks first, by their exponent bits (a loop without an exit vectorizes) */
        const uint32_t *u = t->data;
        int64_t i = 0;
        for (; i + 1024 <= n; i += 1024) {
            uint32_t bad = 0;
            for (int k = 0; k < 1024; k++) {
                bad |= (u[i + k] & 0x7f800000u) == 0x7f800000u;
            }
            if (bad) {
                break;
            }
        }
        const float *f = t->data;
        for (; i < n; i++) {
            if (!isfinite(f[i])) {
                return i;
            }
        }
        return -1;
    }
    if (t->dtype == SL_DT_F16 || t->dtype == SL_DT_BF16) {
        /* an all-ones exponent field is inf or NaN; whole blocks first, as for float32 */
        const uint16_t e = t->dtype == SL_DT_F16 ? 0x7c00u : 0x7f80u;
        const uint16_t *u = t->data;
        int64_t i = 0;
        for (; i + 1024 <= n; i += 1024) {
            unsigned bad = 0;
            for (int k = 0; k < 1024; k++) {
                bad |= (u[i + k] & e) == e;
            }
            if (bad) {
                break;
            }
        }
        for (; i < n; i++) {
            if ((u[i] & e) == e) {
                return i;
            }
        }
        return -1;
    }
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(sl_tensor_get(t, i))) {
            return i;
        }
    }
    return -1;
}

void sl_format_shape(const int64_t *shape, int ndim, char *buf, size_t len)
{
    size_t used = 0;
    if (len == 0) {
        return;
    }
    buf[0] = '\0';
    used += (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < ndim && used < len; i++) {
        used +=
            (size_t)snprintf(buf + used, len - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
    }
    if (used < len) {
        snprintf(buf + used, len - used, "]");
    }
}

/* Writes the multi-index of flat index i in shape as "[a, b, c]". */
void sl__format_index(const int64_t *shape, int ndim, int64_t i, char *buf, size_t len)
{
    int64_t idx[SL_MAX_DIMS];
    for (int d = ndim - 1; d >= 0; d--) {
        idx[d] = shape[d] ? i % shape[d] : 0;
        i = shape[d] ? i / shape[d] : 0;
    }
    sl_format_shape(idx, ndim, buf, len);
}
