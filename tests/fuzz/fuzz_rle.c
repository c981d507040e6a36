/* fuzz_rle.c - libFuzzer target: the mask decoders (Kaggle rle, coco_rle) through
 * slp_array_from_json. The bytes after the first are parsed as JSON through its skeleton (long
 * rle and counts strings are read from the text, as in a request); an object gets its
 * "format" set by byte 0 (rle, coco_rle, or left as sent), any other value is decoded as is. */
#include <stdint.h>
#include <stdlib.h>

#include "array_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const formats[] = {"rle", "coco_rle", NULL};
    struct slp_limits lim = {.max_elements = 1 << 16, .max_array_bytes = 1 << 20};
    struct slp_array a;
    struct slp__jdoc doc;
    json_t *j = NULL;
    char msg[512];
    if (size < 1) {
        return 0;
    }
    if (slp__json_load((const char *)data + 1, size - 1, &lim, NULL, &doc, &j, msg, sizeof msg)) {
        return 0;
    }
    const char *fmt = formats[data[0] % 3];
    if (fmt && json_is_object(j)) {
        json_object_set_new(j, "format", json_string(fmt)); /* steals the new string */
    }
    if (slp__array_from_json_doc(j, "target", &lim, NULL, &doc, &a, msg, sizeof msg) == 0) {
        slp_array_free(&a);
    }
    json_decref(j);
    slp__jdoc_free(&doc);
    return 0;
}
