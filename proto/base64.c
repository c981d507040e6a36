/* base64.c - standard base64 (RFC 4648 section 4) decoding: table-driven, strict.
 *
 * '=' padding is optional, but when present it must be exactly what the length calls for.
 * Whitespace, URL-safe characters and '=' inside the text are errors naming their offset.
 * Non-zero bits in the last character of a padded group are ignored (as Python's base64 and
 * most decoders do): they cannot change the decoded length.
 *
 * Speed: on x86-64 CPUs with AVX2 (checked at run time) the bulk of the text goes 32 characters
 * per step (W. Mula and D. Lemire, "Faster Base64 Encoding and Decoding Using AVX2
 * Instructions", 2018: nibble lookups validate, a shuffle and two multiply-adds pack). A step
 * that meets a character outside the alphabet stops there and the table-driven loop, which
 * accepts exactly the same characters, finds its offset for the message.
 */
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define B64_AVX2 1
#endif

#include "array_internal.h"

/* Sextet of each byte, 0xff for bytes outside the alphabet (including '='). */
static const unsigned char b64_value[256] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3e, 0xff, 0xff, 0xff, 0x3f,
    0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e,
    0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28,
    0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
};

#ifdef B64_AVX2
/* Decodes whole groups of 4 characters at p (count of them) into out, 8 groups per step while
 * at least 11 remain (a step stores 32 bytes, 24 of them output); stops before the first step
 * holding a character outside the standard alphabet. Returns the groups decoded. */
__attribute__((target("avx2"))) static size_t decode_avx2(const unsigned char *p, size_t count,
                                                          unsigned char *out)
{
    /* per nibble: bit k of lut_hi[hi] & lut_lo[lo] set <=> the character is not in the
     * alphabet; lut_roll[hi + ('/' ? -1 : 0)] turns the character into its sextet */
    const __m256i lut_lo =
        _mm256_setr_epi8(0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x13, 0x1a,
                         0x1b, 0x1b, 0x1b, 0x1a, 0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
                         0x11, 0x11, 0x13, 0x1a, 0x1b, 0x1b, 0x1b, 0x1a);
    const __m256i lut_hi =
        _mm256_setr_epi8(0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08, 0x10, 0x10, 0x10, 0x10,
                         0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08,
                         0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10);
    const __m256i lut_roll =
        _mm256_setr_epi8(0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 19, 4,
                         -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m256i nib = _mm256_set1_epi8(0x0f);
    const __m256i slash = _mm256_set1_epi8('/');
    /* sextets a b c d of a group -> 24 bits a:b:c:d, big-endian within the group's 4 bytes */
    const __m256i merge_ab_bc = _mm256_set1_epi32(0x01400140);
    const __m256i merge_abcd = _mm256_set1_epi32(0x00011000);
    const __m256i pack = _mm256_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1, 2,
                                          1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1);
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 7, 7);
    size_t g = 0;
    while (count - g >= 11) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(p + 4 * g));
        const __m256i hi_nib = _mm256_and_si256(_mm256_srli_epi32(v, 4), nib);
        const __m256i lo_nib = _mm256_and_si256(v, nib);
        /* bytes >= 0x80 have hi_nib >= 8, whose lut_hi entry 0x10 every lut_lo entry has */
        const __m256i hi = _mm256_shuffle_epi8(lut_hi, hi_nib);
        const __m256i lo = _mm256_shuffle_epi8(lut_lo, lo_nib);
        if (!_mm256_testz_si256(lo, hi)) {
            break;
        }
        const __m256i is_slash = _mm256_cmpeq_epi8(v, slash);
        const __m256i roll = _mm256_shuffle_epi8(lut_roll, _mm256_add_epi8(is_slash, hi_nib));
        v = _mm256_add_epi8(v, roll);
        v = _mm256_maddubs_epi16(v, merge_ab_bc);
        v = _mm256_madd_epi16(v, merge_abcd);
        v = _mm256_shuffle_epi8(v, pack);
        v = _mm256_permutevar8x32_epi32(v, lanes);
        _mm256_storeu_si256((__m256i *)(void *)(out + 3 * g), v);
        g += 8;
    }
    return g;
}

/* Groups decoded by the fastest bulk decoder this CPU has (0: none; the table loop does all). */
static size_t decode_bulk(const unsigned char *p, size_t count, unsigned char *out)
{
    if (count >= 11 && __builtin_cpu_supports("avx2")) {
        return decode_avx2(p, count, out);
    }
    return 0;
}
#else
static size_t decode_bulk(const unsigned char *p, size_t count, unsigned char *out)
{
    (void)p;
    (void)count;
    (void)out;
    return 0;
}
#endif

static int bad_char_at(size_t off, const char *name, char *msg, size_t msglen)
{
    slp__errf(msg, msglen, "%s: invalid base64 at offset %zu", name, off);
    return SL_EMALFORMED;
}

int slp__base64_measure(const char *in, size_t len, size_t *out_len, const char *name, char *msg,
                        size_t msglen)
{
    size_t pad = 0;
    /* count up to 3 so that excess padding is seen */
    while (pad < len && pad < 3 && in[len - 1 - pad] == '=') {
        pad++;
    }
    size_t n = len - pad;
    size_t rem = n % 4;
    size_t need = rem ? 4 - rem : 0;
    *out_len = 0;
    if (rem == 1 || pad > need || (pad != 0 && pad < need)) {
        /* a character outside the alphabet explains more than the length does */
        for (size_t i = 0; i < n; i++) {
            if (b64_value[(unsigned char)in[i]] & 0x80) {
                return bad_char_at(i, name, msg, msglen);
            }
        }
    }
    if (rem == 1) {
        slp__errf(msg, msglen,
                  "%s: invalid base64 at offset %zu: truncated (1 character in the last group)",
                  name, n - 1);
        return SL_EMALFORMED;
    }
    if (pad > need) {
        slp__errf(msg, msglen, "%s: invalid base64 at offset %zu: unexpected '=' padding", name,
                  n + need);
        return SL_EMALFORMED;
    }
    if (pad != 0 && pad < need) {
        slp__errf(msg, msglen,
                  "%s: invalid base64 at offset %zu: incomplete '=' padding (%zu of %zu)", name,
                  len, pad, need);
        return SL_EMALFORMED;
    }
    *out_len = n / 4 * 3 + (rem ? rem - 1 : 0);
    return 0;
}

/* Decodes group q (characters 4q .. min(4q + 4, n)) into t; returns the bytes it holds (1..3),
 * or -1 with *bad set to the offset of the first character outside the alphabet. */
static int decode_group(const unsigned char *s, size_t n, size_t q, unsigned char t[3], size_t *bad)
{
    size_t off = q * 4;
    size_t k = n - off < 4 ? n - off : 4;
    uint32_t v = 0;
    for (size_t i = 0; i < k; i++) {
        unsigned c = b64_value[s[off + i]];
        if (c & 0x80) {
            *bad = off + i;
            return -1;
        }
        v |= (uint32_t)c << (18 - 6 * i);
    }
    t[0] = (unsigned char)(v >> 16);
    t[1] = (unsigned char)(v >> 8);
    t[2] = (unsigned char)v;
    return (int)k - 1;
}

int slp__base64_decode_range(const char *in, size_t len, size_t start, size_t nbytes,
                             unsigned char *out, const char *name, char *msg, size_t msglen)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t n = len;
    while (n > 0 && len - n < 2 && s[n - 1] == '=') {
        n--;
    }
    size_t q = start / 3;
    size_t skip = start % 3;
    size_t left = nbytes;
    unsigned char t[3];
    size_t bad = 0;
    if (left == 0) {
        return 0;
    }
    if (skip) {
        if (q * 4 >= n) {
            goto range;
        }
        int r = decode_group(s, n, q, t, &bad);
        if (r < 0) {
            return bad_char_at(bad, name, msg, msglen);
        }
        if ((size_t)r <= skip) {
            goto range;
        }
        size_t take = (size_t)r - skip < left ? (size_t)r - skip : left;
        memcpy(out, t + skip, take);
        out += take;
        left -= take;
        q++;
    }
    size_t full = left / 3;
    if (full && (full > n / 4 || q > n / 4 - full)) {
        goto range;
    }
    const unsigned char *p = s + q * 4;
    const size_t bulk = decode_bulk(p, full, out);
    p += 4 * bulk;
    out += 3 * bulk;
    for (size_t i = bulk; i < full; i++, p += 4, out += 3) {
        unsigned a = b64_value[p[0]], b = b64_value[p[1]], c = b64_value[p[2]], d = b64_value[p[3]];
        if ((a | b | c | d) & 0x80) {
            size_t off = (size_t)(p - s);
            off += (a & 0x80) ? 0 : (b & 0x80) ? 1 : (c & 0x80) ? 2 : 3;
            return bad_char_at(off, name, msg, msglen);
        }
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
        out[0] = (unsigned char)(v >> 16);
        out[1] = (unsigned char)(v >> 8);
        out[2] = (unsigned char)v;
    }
    q += full;
    left -= full * 3;
    if (left) {
        if (q * 4 >= n) {
            goto range;
        }
        int r = decode_group(s, n, q, t, &bad);
        if (r < 0) {
            return bad_char_at(bad, name, msg, msglen);
        }
        if ((size_t)r < left) {
            goto range;
        }
        memcpy(out, t, left);
    }
    return 0;
range:
    /* the caller asked for bytes past the decoded length: a bug, not bad input */
    slp__errf(msg, msglen, "%s: base64 range %zu+%zu is past the decoded data", name, start,
              nbytes);
    return SL_EINTERNAL;
}

/* Public wrapper: measure, check against max_out, allocate exactly, decode. */
int slp_base64_decode(const char *in, size_t len, size_t max_out, unsigned char **out,
                      size_t *out_len, const char *name, char *msg, size_t msglen)
{
    size_t n = 0;
    *out = NULL;
    *out_len = 0;
    int rc = slp__base64_measure(in, len, &n, name, msg, msglen);
    if (rc) {
        return rc;
    }
    if (n > max_out) {
        slp__errf(msg, msglen, "%s: %zu decoded bytes are over the limit of %zu bytes", name, n,
                  max_out);
        return SL_ETOOLARGE;
    }
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf) {
        slp__errf(msg, msglen, "%s: out of memory for %zu bytes", name, n);
        return SL_ENOMEM;
    }
    rc = slp__base64_decode_range(in, len, 0, n, buf, name, msg, msglen);
    if (rc) {
        free(buf);
        return rc;
    }
    *out = buf;
    *out_len = n;
    return 0;
}
