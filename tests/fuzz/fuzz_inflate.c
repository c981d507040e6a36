/* fuzz_inflate.c - libFuzzer target: slp_inflate_exact. Byte 0 picks the compression kind,
 * bytes 1-2 the expected size (little-endian, so at most 64 KiB); the rest is the stream. */
#include <stdint.h>
#include <stdlib.h>

#include "array.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum slp_compression kinds[] = {SLP_COMP_NONE, SLP_COMP_GZIP, SLP_COMP_ZLIB,
                                                 SLP_COMP_DEFLATE, SLP_COMP_AUTO};
    if (size < 3) {
        return 0;
    }
    enum slp_compression comp = kinds[data[0] % 5];
    size_t expected = (size_t)data[1] | (size_t)data[2] << 8;
    unsigned char *out = malloc(expected ? expected : 1);
    char msg[256];
    if (!out) {
        return 0;
    }
    (void)slp_inflate_exact(data + 3, size - 3, comp, out, expected, "data", msg, sizeof msg);
    free(out);
    return 0;
}
