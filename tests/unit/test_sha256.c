/* test_sha256.c - SHA-256 (proto/sha256.h) against the NIST example vectors of FIPS 180-2
 * (Appendix B: "abc", the 448-bit two-block message, one million 'a'), the empty message and
 * messages around the 64-byte block boundary (padding in one block or two) computed with
 * Python's hashlib; pieces of odd sizes must give the one-shot digest. */
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "sha256.h"

/* The digest of data[0..len) fed in pieces of the given sizes (cycled), as hex. */
static void hex_in_pieces(const unsigned char *data, size_t len, const size_t *sizes, size_t nsizes,
                          char hex[SLP_SHA256_HEX])
{
    struct slp_sha256 s;
    unsigned char d[SLP_SHA256_LEN];
    slp_sha256_init(&s);
    size_t off = 0;
    for (size_t i = 0; off < len; i++) {
        size_t n = sizes[i % nsizes];
        if (n > len - off) {
            n = len - off;
        }
        slp_sha256_update(&s, data + off, n);
        off += n;
    }
    slp_sha256_final(&s, d);
    slp_hex(d, sizeof d, hex);
}

static void test_nist_vectors(void)
{
    char hex[SLP_SHA256_HEX];
    /* FIPS 180-2 Appendix B.1: "abc" */
    slp_sha256_hex("abc", 3, hex);
    CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
    /* FIPS 180-2 Appendix B.2: the 448-bit message, padded into two blocks */
    const char *m2 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    slp_sha256_hex(m2, strlen(m2), hex);
    CHECK(strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1") == 0);
    /* FIPS 180-2 Appendix B.3: one million 'a' */
    size_t n = 1000000;
    char *a = malloc(n);
    CHECK(a != NULL);
    if (a) {
        memset(a, 'a', n);
        slp_sha256_hex(a, n, hex);
        CHECK(strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0);
        free(a);
    }
}

static void test_empty(void)
{
    char hex[SLP_SHA256_HEX];
    /* /usr/bin/python3 -c 'import hashlib; print(hashlib.sha256(b"").hexdigest())' */
    const char *want = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    slp_sha256_hex("", 0, hex);
    CHECK(strcmp(hex, want) == 0);
    /* NULL with length 0 is allowed */
    slp_sha256_hex(NULL, 0, hex);
    CHECK(strcmp(hex, want) == 0);
}

static void test_block_boundaries(void)
{
    /* messages of bytes 0, 1, ..., n-1:
     * /usr/bin/python3 -c 'import hashlib
     * for n in (55,56,63,64,65): print(n, hashlib.sha256(bytes(range(n))).hexdigest())'
     * 55 fits the padding in one block; 56..63 need a second; 64 and 65 start a new one. */
    static const struct {
        size_t n;
        const char *hex;
    } cases[] = {
        {55, "463eb28e72f82e0a96c0a4cc53690c571281131f672aa229e0d45ae59b598b59"},
        {56, "da2ae4d6b36748f2a318f23e7ab1dfdf45acdc9d049bd80e59de82a60895f562"},
        {63, "29af2686fd53374a36b0846694cc342177e428d1647515f078784d69cdb9e488"},
        {64, "fdeab9acf3710362bd2658cdc9a29e8f9c757fcf9811603a8c447cd1d9151108"},
        {65, "4bfd2c8b6f1eec7a2afeb48b934ee4b2694182027e6d0fc075074f2fabb31781"},
    };
    unsigned char msg[65];
    for (size_t i = 0; i < sizeof msg; i++) {
        msg[i] = (unsigned char)i;
    }
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char hex[SLP_SHA256_HEX];
        slp_sha256_hex(msg, cases[c].n, hex);
        CHECK(strcmp(hex, cases[c].hex) == 0);
        /* byte by byte */
        size_t one = 1;
        hex_in_pieces(msg, cases[c].n, &one, 1, hex);
        CHECK(strcmp(hex, cases[c].hex) == 0);
    }
}

static void test_pieces(void)
{
    /* one million 'a' (FIPS 180-2 B.3) in pieces of 1, 7, 63, 64, 65, 0 and 1000 bytes */
    size_t n = 1000000;
    unsigned char *a = malloc(n);
    CHECK(a != NULL);
    if (!a) {
        return;
    }
    memset(a, 'a', n);
    static const size_t sizes[] = {1, 7, 63, 64, 65, 0, 1000};
    char hex[SLP_SHA256_HEX];
    hex_in_pieces(a, n, sizes, sizeof sizes / sizeof sizes[0], hex);
    CHECK(strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0);
    /* the two-block message of B.2 in pieces of 3 and 5 */
    const char *m2 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    static const size_t odd[] = {3, 5};
    hex_in_pieces((const unsigned char *)m2, strlen(m2), odd, 2, hex);
    CHECK(strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1") == 0);
    free(a);
}

static void test_hex(void)
{
    /* hand-written: each byte as two lowercase digits */
    const unsigned char d[] = {0x00, 0x0f, 0xa5, 0xff};
    char hex[9];
    slp_hex(d, sizeof d, hex);
    CHECK(strcmp(hex, "000fa5ff") == 0);
}

static const struct check_test tests[] = {
    CHECK_TEST(test_nist_vectors), CHECK_TEST(test_empty), CHECK_TEST(test_block_boundaries),
    CHECK_TEST(test_pieces),       CHECK_TEST(test_hex),
};

int main(int argc, char **argv)
{
    return CHECK_RUN("test_sha256", tests);
}
