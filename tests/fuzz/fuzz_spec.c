/* fuzz_spec.c - libFuzzer target: the whole POST /v1/score JSON path (parse, validate, decode
 * every array, score, serialize) on the fuzz bytes as the body, with small limits so that no
 * input can ask for a huge array. Every response must be a well-formed answer. */
#include <stdint.h>
#include <stdlib.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct slp_limits lim = {.max_elements = 1 << 16,
                             .max_array_bytes = 1 << 20,
                             /* small shape limits, so that inputs reach both sides of each */
                             .max_images = 64,
                             .max_classes = 16,
                             .max_depth = 16,
                             .max_json_values = 1 << 12,
                             .max_specs = 8};
    struct slp_response resp;
    slp_score_request((const char *)data, size, &lim, NULL, &resp);
    if (resp.status < 200 || resp.status > 599 || !resp.content_type) {
        abort();
    }
    slp_response_free(&resp);
    return 0;
}
