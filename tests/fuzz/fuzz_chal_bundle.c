/* fuzz_chal_bundle.c - libFuzzer target: slc_bundle_read on the fuzz bytes. A bundle it accepts
 * is in strict id order, and writing it again gives a bundle that reads back to the same images
 * and writes to the same bytes (the writer's form is canonical). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "challenge.h"
#include "dynbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct slp_limits lim = {.max_elements = 1 << 16, .max_array_bytes = 1 << 20, .max_images = 64};
    struct slc_images *im = NULL, *back = NULL;
    char msg[512];
    if (slc_bundle_read(data, size, &lim, &im, msg, sizeof msg) != 0) {
        if (im) {
            abort();
        }
        return 0;
    }
    for (size_t i = 1; i < im->n; i++) {
        if (strcmp(im->items[i - 1].id, im->items[i].id) >= 0) {
            abort();
        }
    }
    struct slp_dynbuf b, b2;
    slp_dynbuf_init(&b, (size_t)1 << 26);
    slp_dynbuf_init(&b2, (size_t)1 << 26);
    if (slc_bundle_write(im, &b) == 0) {
        if (slc_bundle_read(b.data, b.len, &lim, &back, msg, sizeof msg) != 0 || back->n != im->n) {
            abort();
        }
        if (slc_bundle_write(back, &b2) == 0 &&
            (b2.len != b.len || memcmp(b.data, b2.data, b.len) != 0)) {
            abort();
        }
    }
    slc_images_free(back);
    slp_dynbuf_free(&b);
    slp_dynbuf_free(&b2);
    slc_images_free(im);
    return 0;
}
