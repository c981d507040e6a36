/* fuzz_inflate.c - libFuzzer target: slp_inflate_exact. Byte 0 picks the compression kind (mod
 * 6: none, gzip, zlib, deflate, auto, zstd), bytes 1-2 the expected size (little-endian, so at
 * most 64 KiB); the rest is the stream.
 * libdeflate inflates first and zlib decides whenever it does not succeed, so the answer is
 * checked against zlib's streaming inflater alone: whenever zlib accepts the stream the answer
 * must be a success with the same bytes. (libdeflate may accept a few streams zlib refuses -
 * reserved length/distance symbols; that direction is not checked.) zstd is checked both ways:
 * its one-call decoder (a frame that declares its size) and its streaming decoder must agree on
 * success and on the bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "array_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The streaming inflater's verdict alone (zlib's, or ZSTD_decompressStream's): 0 and the bytes
 * in out, or an error. */
static int zlib_only(const unsigned char *in, size_t len, enum slp_compression comp,
                     unsigned char *out, size_t expected)
{
    char msg[256];
    struct slp__inflater z;
    size_t got = 0;
    int more = 0;
    int rc = slp__inflater_init(&z, in, len, comp, "d", "d", msg, sizeof msg);
    if (!rc) {
        rc = slp__inflater_read(&z, out, expected, &got, msg, sizeof msg);
    }
    if (!rc && got < expected) {
        rc = SL_ESIZE;
    }
    if (!rc) {
        rc = slp__inflater_at_end(&z, &more, msg, sizeof msg);
    }
    if (!rc && more) {
        rc = SL_ESIZE;
    }
    slp__inflater_end(&z);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum slp_compression kinds[] = {SLP_COMP_NONE,    SLP_COMP_GZIP, SLP_COMP_ZLIB,
                                                 SLP_COMP_DEFLATE, SLP_COMP_AUTO, SLP_COMP_ZSTD};
    if (size < 3) {
        return 0;
    }
    enum slp_compression comp = kinds[data[0] % 6];
    size_t expected = (size_t)data[1] | (size_t)data[2] << 8;
    unsigned char *out = malloc(expected ? expected : 1);
    unsigned char *ref = malloc(expected ? expected : 1);
    char msg[256];
    if (!out || !ref) {
        free(out);
        free(ref);
        return 0;
    }
    int rc = slp_inflate_exact(data + 3, size - 3, comp, out, expected, "data", msg, sizeof msg);
    int ref_rc = comp != SLP_COMP_NONE ? zlib_only(data + 3, size - 3, comp, ref, expected) : 1;
    if (ref_rc == 0 && (rc != 0 || memcmp(out, ref, expected) != 0)) {
        abort();
    }
    if (comp == SLP_COMP_ZSTD && rc == 0 && ref_rc != 0) {
        abort(); /* the one-call decoder took a frame the streaming one refuses */
    }
    free(out);
    free(ref);
    return 0;
}
