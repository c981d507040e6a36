/* base64.c - standard base64 (RFC 4648 section 4) decoding: table-driven, strict.
 *
 * '=' padding is optional, but when present it must be exactly what the length calls for.
 * Whitespace, URL-safe characters and '=' inside the text are errors naming their offset.
 * Non-zero bits in the last character of a padded group are ignored (as Python's base64 and
 * most decoders do): they cannot change the decoded length.
 */
#include <stdlib.h>
#include <string.h>

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
    for (size_t i = 0; i < full; i++, p += 4, out += 3) {
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
