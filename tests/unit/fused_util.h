/* fused_util.h - what the fused-kernel tests (test_fused.c, test_fused_mc.c) share: a
 * reproducible generator and exact float16 bits of a float that is a half already. Header-only,
 * static: each test program includes it once. */
#ifndef SEGLOSS_TESTS_FUSED_UTIL_H
#define SEGLOSS_TESTS_FUSED_UTIL_H

#include <stdint.h>
#include <string.h>

/* xorshift64*: reproducible inputs; advances *s. */
static uint64_t next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

/* A double uniform in [0, 1) from the generator. */
static double unit(uint64_t *s)
{
    return (double)(next(s) >> 11) / 9007199254740992.0;
}

/* IEEE half of a float in [-65504, 65504] that is a half already (round trip exact, normal
 * range). */
static uint16_t to_half(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    const uint32_t sign = (b >> 16) & 0x8000u;
    const int e = (int)((b >> 23) & 0xff) - 127 + 15;
    if ((b & 0x7fffffffu) == 0) {
        return (uint16_t)sign;
    }
    return (uint16_t)(sign | (uint32_t)e << 10 | ((b >> 13) & 0x3ffu));
}

#endif
