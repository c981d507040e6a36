/* fuzz_multipart.c - libFuzzer target: slp_score_multipart. The input is split into at most 8
 * parts at each "\n--\n"; in each part the bytes up to the first '\n' are its name and the rest
 * its data (no '\n': all name, no data). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

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
    struct slp_part parts[MAX_PARTS];
    char *names[MAX_PARTS];
    struct slp_parts ps = {parts, 0};
    struct slp_response resp;
    const uint8_t *p = data, *end = data + size;
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
    slp_score_multipart(&ps, &lim, NULL, &resp);
    if (resp.status < 200 || resp.status > 599 || !resp.content_type) {
        abort();
    }
    slp_response_free(&resp);
    for (int i = 0; i < ps.n; i++) {
        free(names[i]);
    }
    return 0;
}
