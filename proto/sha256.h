/* sha256.h - SHA-256 (FIPS 180-4), for content addresses, reference versions, the public/private
 * split and token hashes (CHALLENGES.md). Plain C, no allocation: the caller owns the context. */
#ifndef SLP_SHA256_H
#define SLP_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SLP_SHA256_LEN 32
#define SLP_SHA256_HEX (2 * SLP_SHA256_LEN + 1) /* 64 hex digits and the NUL */

struct slp_sha256 {
    uint32_t h[8];
    uint64_t bytes;        /* message bytes so far */
    unsigned char buf[64]; /* the block being filled */
    size_t nbuf;
};

/* Starts a digest. */
void slp_sha256_init(struct slp_sha256 *s);
/* Adds len bytes of data (len 0 with data NULL is fine). */
void slp_sha256_update(struct slp_sha256 *s, const void *data, size_t len);
/* Finishes the digest into out (32 bytes); s must be initialised again before reuse. */
void slp_sha256_final(struct slp_sha256 *s, unsigned char out[SLP_SHA256_LEN]);
/* The digest of data[0..len) as 64 lowercase hex digits and a NUL into hex. */
void slp_sha256_hex(const void *data, size_t len, char hex[SLP_SHA256_HEX]);
/* Writes the n bytes of d as 2n lowercase hex digits and a NUL into hex (2n + 1 bytes). */
void slp_hex(const unsigned char *d, size_t n, char *hex);

#endif /* SLP_SHA256_H */
