/* fuzz_chal_config.c - libFuzzer target: slc_config_parse on the fuzz bytes as a PUT
 * /v1/challenges/{c} body. A configuration it accepts must write back (slc_config_json) to a
 * text that parses again to the same JSON: the round trip the store relies on. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "challenge.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct slp_limits lim = {.max_elements = 1 << 16,
                             .max_array_bytes = 1 << 20,
                             .max_images = 64,
                             .max_classes = 16,
                             .max_depth = 16,
                             .max_json_values = 1 << 12,
                             .max_specs = 8};
    struct slc_config *c = NULL, *c2 = NULL;
    char msg[512];
    if (slc_config_parse((const char *)data, size, &lim, &c, msg, sizeof msg) != 0) {
        if (c) {
            abort();
        }
        return 0;
    }
    json_t *j = slc_config_json(c);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (s) {
        if (slc_config_parse(s, strlen(s), &lim, &c2, msg, sizeof msg) != 0) {
            abort(); /* what was written back must read back */
        }
        json_t *j2 = slc_config_json(c2);
        if (j2 && !json_equal(j, j2)) {
            abort();
        }
        json_decref(j2);
    }
    free(s);
    json_decref(j);
    slc_config_free(c);
    slc_config_free(c2);
    return 0;
}
