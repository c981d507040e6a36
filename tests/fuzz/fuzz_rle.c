/* fuzz_rle.c - libFuzzer target: the mask decoders (Kaggle rle, coco_rle) through
 * slp_array_from_json. The bytes after the first are parsed as JSON; an object gets its
 * "format" set by byte 0 (rle, coco_rle, or left as sent), any other value is decoded as is. */
#include <stdint.h>
#include <stdlib.h>

#include "array.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const formats[] = {"rle", "coco_rle", NULL};
    struct slp_limits lim = {.max_elements = 1 << 16, .max_array_bytes = 1 << 20};
    struct slp_array a;
    json_error_t jerr;
    char msg[512];
    if (size < 1) {
        return 0;
    }
    json_t *j = json_loadb((const char *)data + 1, size - 1, JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        return 0;
    }
    const char *fmt = formats[data[0] % 3];
    if (fmt && json_is_object(j)) {
        json_object_set_new(j, "format", json_string(fmt)); /* steals the new string */
    }
    if (slp_array_from_json(j, "target", &lim, &a, msg, sizeof msg) == 0) {
        slp_array_free(&a);
    }
    json_decref(j);
    return 0;
}
