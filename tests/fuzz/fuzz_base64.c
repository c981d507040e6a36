/* fuzz_base64.c - libFuzzer target: slp_base64_decode on the fuzz bytes, with a cap taken from
 * the first byte, checking that an accepted text decodes to at most the cap and to the length
 * base64 gives (3 bytes per 4 characters, padding aside). */
#include <stdint.h>
#include <stdlib.h>

#include "array.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    size_t cap = data[0] == 0xff ? (size_t)-1 : (size_t)data[0] * 16;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    unsigned char *out = NULL;
    size_t out_len = 0;
    char msg[256];
    int rc = slp_base64_decode(in, len, cap, &out, &out_len, "data", msg, sizeof msg);
    if (rc == 0) {
        size_t pad = 0;
        while (pad < len && pad < 2 && in[len - 1 - pad] == '=') {
            pad++;
        }
        size_t chars = len - pad;
        if (out_len > cap || out_len != chars / 4 * 3 + (chars % 4 ? chars % 4 - 1 : 0)) {
            abort();
        }
    }
    free(out);
    return 0;
}
