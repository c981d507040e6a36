/* fuzz_jscan.c - libFuzzer target: the JSON skeleton (proto/jscan.c) against jansson alone. The
 * fuzz bytes are a JSON text; slp__json_load (the scan, the skeleton with long "data"/"counts"
 * strings left out, jansson on it) must succeed exactly when jansson on the whole text does,
 * with the same message when both fail, and the same tree when both succeed: same structure,
 * keys and numbers, and every string - a placeholder read back through the doc, unescaped -
 * with the bytes jansson decoded. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../jdoc_same.h"
#include "array_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* no limits of ours: every text reaches jansson (its own depth limit applies to both) */
    struct slp_limits lim = {.max_elements = 1 << 16, .max_array_bytes = 1 << 20};
    const char *text = (const char *)data;
    char m1[512] = "", m2[512] = "";
    struct slp__jdoc doc;
    json_t *r1 = NULL;
    json_error_t e;
    int rc = slp__json_load(text, size, &lim, NULL, &doc, &r1, m1, sizeof m1);
    if (rc == SL_ENOMEM) {
        return 0;
    }
    json_t *r2 = json_loadb(text, size, JSON_REJECT_DUPLICATES, &e);
    if (!r2) {
        snprintf(m2, sizeof m2, "malformed JSON at line %d, column %d: %s", e.line, e.column,
                 e.text);
    }
    if ((rc == 0) != (r2 != NULL) || strcmp(m1, m2) != 0 ||
        (r1 && !jdoc_same_tree(&doc, r1, r2, 1))) {
        fprintf(stderr, "skeleton: rc %d '%s'; jansson: %s '%s'\n", rc, m1, r2 ? "ok" : "error",
                m2);
        abort();
    }
    json_decref(r1);
    json_decref(r2);
    if (rc == 0) {
        slp__jdoc_free(&doc);
    }
    return 0;
}
