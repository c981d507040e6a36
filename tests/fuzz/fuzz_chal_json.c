/* fuzz_chal_json.c - libFuzzer target: slc_images_from_json, the JSON form of a reference
 * (byte 0 even) or a submission (byte 0 odd), on the bytes after the first as the body. Images
 * it accepts must have valid distinct ids and survive a bundle round trip unchanged. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "challenge.h"
#include "dynbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts unless a and b hold the same images, b in id order (a bundle's). */
static void same_images(const struct slc_images *a, const struct slc_images *b)
{
    if (a->n != b->n) {
        abort();
    }
    for (size_t i = 0; i < b->n; i++) {
        const struct slc_image *y = &b->items[i], *x = NULL;
        if (i > 0 && strcmp(b->items[i - 1].id, y->id) >= 0) {
            abort();
        }
        for (size_t k = 0; k < a->n; k++) {
            if (strcmp(a->items[k].id, y->id) == 0) {
                x = &a->items[k];
            }
        }
        if (!x || x->a.t.dtype != y->a.t.dtype || x->a.t.ndim != y->a.t.ndim ||
            memcmp(x->a.t.shape, y->a.t.shape, sizeof(int64_t) * (size_t)x->a.t.ndim) != 0 ||
            memcmp(x->a.t.data, y->a.t.data,
                   (size_t)sl_tensor_numel(&x->a.t) * sl_dtype_size(x->a.t.dtype)) != 0) {
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct slp_limits lim = {.max_elements = 1 << 16,
                             .max_array_bytes = 1 << 20,
                             .max_images = 64,
                             .max_classes = 16,
                             .max_depth = 16,
                             .max_json_values = 1 << 12,
                             .max_specs = 8};
    struct slc_images *im = NULL, *back = NULL;
    char msg[512];
    if (size < 1) {
        return 0;
    }
    enum slc_role role = data[0] & 1 ? SLC_SUBMISSION : SLC_REFERENCE;
    if (slc_images_from_json((const char *)data + 1, size - 1, role, &lim, &im, msg, sizeof msg) !=
        0) {
        return 0;
    }
    if (im->n == 0 || (role == SLC_SUBMISSION) != (im->note != NULL)) {
        abort();
    }
    struct slp_dynbuf b;
    slp_dynbuf_init(&b, (size_t)1 << 26);
    if (slc_bundle_write(im, &b) == 0) {
        if (slc_bundle_read(b.data, b.len, &lim, &back, msg, sizeof msg) != 0) {
            abort();
        }
        same_images(im, back);
    }
    slc_images_free(back);
    slp_dynbuf_free(&b);
    slc_images_free(im);
    return 0;
}
