/* fuzz_chal_ids.c - libFuzzer target: slc_ids_parse on the fuzz bytes parsed as JSON (jansson,
 * duplicates refused). An accepted list holds distinct ids of [A-Za-z0-9._-]{1,128}. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "challenge.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char msg[512];
    char **ids = NULL;
    size_t n = 0;
    json_t *j =
        json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);
    if (!j) {
        return 0;
    }
    if (slc_ids_parse(j, "ids", &ids, &n, msg, sizeof msg) == 0) {
        if (n != json_array_size(j)) {
            abort();
        }
        for (size_t i = 0; i < n; i++) {
            size_t len = strlen(ids[i]);
            if (len < 1 || len > SLC_ID_MAX ||
                strspn(ids[i], "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklm"
                               "nopqrstuvwxyz0123456789._-") != len) {
                abort();
            }
            for (size_t k = 0; k < i; k++) {
                if (strcmp(ids[k], ids[i]) == 0) {
                    abort();
                }
            }
        }
        slc_ids_free(ids, n);
    } else if (ids || n) {
        abort();
    }
    json_decref(j);
    return 0;
}
