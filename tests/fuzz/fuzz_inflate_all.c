/* fuzz_inflate_all.c - libFuzzer target: slp_inflate_all (proto/inflate.h), the inflater of
 * seglossd's Content-Encoding (zstd included). Framing as fuzz_inflate: byte 0 picks the kind,
 * bytes 1-2 the cap (little-endian, at most 64 KiB); the rest is the stream. Checked: the
 * output never passes the cap, and whatever it accepts, slp_inflate_exact accepts with the
 * same bytes when asked for exactly that many (one inflater, one set of rules). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inflate.h"
#include "segloss.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum slp_compression kinds[] = {SLP_COMP_NONE,    SLP_COMP_GZIP, SLP_COMP_ZLIB,
                                                 SLP_COMP_DEFLATE, SLP_COMP_AUTO, SLP_COMP_ZSTD};
    if (size < 3) {
        return 0;
    }
    enum slp_compression comp = kinds[data[0] % 6];
    size_t max = (size_t)data[1] | (size_t)data[2] << 8;
    char msg[256];
    struct slp_dynbuf out;
    slp_dynbuf_init(&out, max);
    int rc = slp_inflate_all(data + 3, size - 3, comp, &out, "body", msg, sizeof msg);
    if (out.len > max || (rc == 0 && comp == SLP_COMP_NONE)) {
        abort();
    }
    if (rc == 0) {
        unsigned char *ref = malloc(out.len ? out.len : 1);
        if (ref) {
            int rc2 =
                slp_inflate_exact(data + 3, size - 3, comp, ref, out.len, "body", msg, sizeof msg);
            if (rc2 != 0 || (out.len && memcmp(ref, out.data, out.len) != 0)) {
                abort();
            }
            free(ref);
        }
    }
    slp_dynbuf_free(&out);
    return 0;
}
