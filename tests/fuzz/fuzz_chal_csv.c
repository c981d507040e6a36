/* fuzz_chal_csv.c - libFuzzer target: slc_images_from_csv (Kaggle ImageId,EncodedPixels rows).
 * Byte 0 gives the image height (1 + byte % 16), byte 1 the width (1 + byte % 16), the rest is
 * the CSV text. Masks it accepts are h x w of 0s and 1s with distinct valid ids. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "challenge.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct slp_limits lim = {.max_elements = 1 << 16, .max_array_bytes = 1 << 20, .max_images = 64};
    struct slc_images *im = NULL;
    char msg[512];
    if (size < 2) {
        return 0;
    }
    int64_t h = 1 + data[0] % 16, w = 1 + data[1] % 16;
    if (slc_images_from_csv((const char *)data + 2, size - 2, h, w, &lim, &im, msg, sizeof msg) !=
        0) {
        return 0;
    }
    if (im->n == 0 || im->n > 64) {
        abort();
    }
    for (size_t i = 0; i < im->n; i++) {
        const struct slc_image *x = &im->items[i];
        if (x->a.t.dtype != SL_DT_U8 || x->a.t.ndim != 2 || x->a.t.shape[0] != h ||
            x->a.t.shape[1] != w || x->id[0] == '\0') {
            abort();
        }
        for (int64_t k = 0; k < h * w; k++) {
            if (((const uint8_t *)x->a.t.data)[k] > 1) {
                abort();
            }
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(im->items[j].id, x->id) == 0) {
                abort();
            }
        }
    }
    slc_images_free(im);
    return 0;
}
