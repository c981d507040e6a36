/* fuzz_chal_parts.c - libFuzzer target: slc_images_from_parts, the multipart forms of a
 * reference (byte 0 even) or a submission (byte 0 odd). The bytes after the first are split into
 * at most 8 parts at each "\n--\n"; in each part the bytes up to the first '\n' are its name and
 * the rest its data (as fuzz_multipart.c). Images it accepts must survive a bundle round trip. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "challenge.h"
#include "dynbuf.h"

#define MAX_PARTS 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *find_sep(const uint8_t *p, const uint8_t *end)
{
    for (; end - p >= 4; p++) {
        if (memcmp(p, "\n--\n", 4) == 0) {
            return p;
        }
    }
    return NULL;
}

/* Aborts unless b (a bundle's read-back, in id order) holds the images of a. */
static void same_images(const struct slc_images *a, const struct slc_images *b)
{
    if (a->n != b->n) {
        abort();
    }
    for (size_t i = 0; i < b->n; i++) {
        const struct slc_image *y = &b->items[i], *x = NULL;
        for (size_t k = 0; k < a->n; k++) {
            if (strcmp(a->items[k].id, y->id) == 0) {
                x = &a->items[k];
            }
        }
        if (!x || x->a.t.dtype != y->a.t.dtype || x->a.t.ndim != y->a.t.ndim ||
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
    struct slp_part parts[MAX_PARTS];
    char *names[MAX_PARTS];
    struct slp_parts ps = {parts, 0};
    struct slc_images *im = NULL, *back = NULL;
    char msg[512];
    if (size < 1) {
        return 0;
    }
    enum slc_role role = data[0] & 1 ? SLC_SUBMISSION : SLC_REFERENCE;
    const uint8_t *p = data + 1, *end = data + size;
    while (ps.n < MAX_PARTS) {
        const uint8_t *sep = find_sep(p, end);
        const uint8_t *stop = sep && ps.n < MAX_PARTS - 1 ? sep : end;
        const uint8_t *nl = memchr(p, '\n', (size_t)(stop - p));
        const uint8_t *name_end = nl ? nl : stop;
        char *name = malloc((size_t)(name_end - p) + 1);
        if (!name) {
            break;
        }
        memcpy(name, p, (size_t)(name_end - p));
        name[name_end - p] = '\0';
        names[ps.n] = name;
        parts[ps.n].name = name;
        parts[ps.n].data = nl ? nl + 1 : stop;
        parts[ps.n].len = (size_t)(stop - parts[ps.n].data);
        ps.n++;
        if (stop == end) {
            break;
        }
        p = stop + 4;
    }
    if (slc_images_from_parts(&ps, role, &lim, &im, msg, sizeof msg) == 0) {
        struct slp_dynbuf b;
        slp_dynbuf_init(&b, (size_t)1 << 26);
        if (im->n == 0 || (role == SLC_SUBMISSION) != (im->note != NULL)) {
            abort();
        }
        if (slc_bundle_write(im, &b) == 0) {
            if (slc_bundle_read(b.data, b.len, &lim, &back, msg, sizeof msg) != 0) {
                abort();
            }
            same_images(im, back);
        }
        slc_images_free(back);
        slp_dynbuf_free(&b);
        slc_images_free(im);
    }
    for (int i = 0; i < ps.n; i++) {
        free(names[i]);
    }
    return 0;
}
