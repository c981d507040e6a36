/* sha256.c - SHA-256 of sha256.h, written from FIPS 180-4 (Secure Hash Standard, 2015):
 * section 4.1.2 (the functions), 4.2.2 (the constants), 5.1.1 (padding), 5.3.3 (the initial
 * hash value) and 6.2.2 (the computation). Big-endian words throughout, as the standard says. */
#include "sha256.h"

#include <string.h>

/* FIPS 180-4 4.2.2: the first 32 bits of the fractional parts of the cube roots of the first 64
 * primes. */
static const uint32_t sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

/* Rotates x right by n (0 < n < 32). */
static uint32_t rotr(uint32_t x, unsigned n)
{
    return (x >> n) | (x << (32 - n));
}

/* Reads the big-endian 32-bit word at p. */
static uint32_t load_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Writes x big-endian into p[0..4). */
static void store_be32(unsigned char *p, uint32_t x)
{
    p[0] = (unsigned char)(x >> 24);
    p[1] = (unsigned char)(x >> 16);
    p[2] = (unsigned char)(x >> 8);
    p[3] = (unsigned char)x;
}

/* Folds one 64-byte block into s->h (FIPS 180-4 6.2.2, steps 1 to 4). */
static void sha256_block(struct slp_sha256 *s, const unsigned char *block)
{
    uint32_t w[64];
    for (int t = 0; t < 16; t++) {
        w[t] = load_be32(block + 4 * t);
    }
    for (int t = 16; t < 64; t++) {
        /* sigma0 and sigma1 of 4.1.2 (4.6, 4.7) */
        uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
        uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = s1 + w[t - 7] + s0 + w[t - 16];
    }
    uint32_t a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3];
    uint32_t e = s->h[4], f = s->h[5], g = s->h[6], h = s->h[7];
    for (int t = 0; t < 64; t++) {
        /* Sigma1, Ch, Sigma0 and Maj of 4.1.2 (4.2 to 4.5) */
        uint32_t big_s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
        uint32_t ch = (e & f) ^ (~e & g);
        uint32_t t1 = h + big_s1 + ch + sha256_k[t] + w[t];
        uint32_t big_s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
        uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
        uint32_t t2 = big_s0 + maj;
        h = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    s->h[0] += a;
    s->h[1] += b;
    s->h[2] += c;
    s->h[3] += d;
    s->h[4] += e;
    s->h[5] += f;
    s->h[6] += g;
    s->h[7] += h;
}

/* Sets s to the initial hash value H(0) of FIPS 180-4 5.3.3 and an empty message. */
void slp_sha256_init(struct slp_sha256 *s)
{
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, h0, sizeof h0);
    s->bytes = 0;
    s->nbuf = 0;
}

/* Adds data[0..len) to the message: whole blocks straight from data, the rest into s->buf. */
void slp_sha256_update(struct slp_sha256 *s, const void *data, size_t len)
{
    const unsigned char *p = data;
    if (len == 0) {
        return; /* data may be NULL, which memcpy must not see */
    }
    s->bytes += len;
    if (s->nbuf > 0) {
        size_t take = 64 - s->nbuf < len ? 64 - s->nbuf : len;
        memcpy(s->buf + s->nbuf, p, take);
        s->nbuf += take;
        p += take;
        len -= take;
        if (s->nbuf < 64) {
            return;
        }
        sha256_block(s, s->buf);
        s->nbuf = 0;
    }
    while (len >= 64) {
        sha256_block(s, p);
        p += 64;
        len -= 64;
    }
    if (len > 0) {
        memcpy(s->buf, p, len);
        s->nbuf = len;
    }
}

/* Pads the message (FIPS 180-4 5.1.1: a 1 bit, zeros to 56 mod 64 bytes, the bit length as a
 * 64-bit big-endian number), folds the last block(s) and writes H(N) big-endian into out. */
void slp_sha256_final(struct slp_sha256 *s, unsigned char out[SLP_SHA256_LEN])
{
    uint64_t bits = s->bytes * 8;
    s->buf[s->nbuf++] = 0x80;
    if (s->nbuf > 56) {
        memset(s->buf + s->nbuf, 0, 64 - s->nbuf);
        sha256_block(s, s->buf);
        s->nbuf = 0;
    }
    memset(s->buf + s->nbuf, 0, 56 - s->nbuf);
    store_be32(s->buf + 56, (uint32_t)(bits >> 32));
    store_be32(s->buf + 60, (uint32_t)bits);
    sha256_block(s, s->buf);
    for (int i = 0; i < 8; i++) {
        store_be32(out + 4 * i, s->h[i]);
    }
    s->nbuf = 0;
}

/* One-shot digest of data[0..len) as lowercase hex into hex (65 bytes). */
void slp_sha256_hex(const void *data, size_t len, char hex[SLP_SHA256_HEX])
{
    struct slp_sha256 s;
    unsigned char d[SLP_SHA256_LEN];
    slp_sha256_init(&s);
    slp_sha256_update(&s, data, len);
    slp_sha256_final(&s, d);
    slp_hex(d, sizeof d, hex);
}

/* Writes d[0..n) as 2n lowercase hex digits and a NUL into hex (2n + 1 bytes). */
void slp_hex(const unsigned char *d, size_t n, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        hex[2 * i] = digits[d[i] >> 4];
        hex[2 * i + 1] = digits[d[i] & 15];
    }
    hex[2 * n] = '\0';
}
