/* fuzz_weightmap.c - libFuzzer target: the whole POST /v1/weight-map path on the fuzz bytes as
 * the body, in both answer forms (the last byte picks .npy or JSON), with small limits. */
#include <stdint.h>
#include <stdlib.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct slp_limits lim = {.max_elements = 1 << 14,
                             .max_array_bytes = 1 << 18,
                             /* small shape limits, so that inputs reach both sides of each */
                             .max_images = 64,
                             .max_classes = 16,
                             .max_depth = 16,
                             .max_json_values = 1 << 12,
                             .max_specs = 8};
    struct slp_response resp;
    bool want_json = size > 0 && (data[size - 1] & 1);
    slp_weight_map_request((const char *)data, size, &lim, NULL, want_json, &resp);
    if (resp.status < 200 || resp.status > 599 || !resp.content_type) {
        abort();
    }
    slp_response_free(&resp);
    return 0;
}
