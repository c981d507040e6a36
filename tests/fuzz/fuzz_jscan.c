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

#include "array_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same_tree(struct slp__jdoc *doc, const json_t *a, const json_t *b)
{
    if (json_typeof(a) != json_typeof(b)) {
        return 0;
    }
    if (json_is_string(a)) {
        const char *s = NULL;
        size_t n = 0;
        if (slp__jdoc_string(doc, a, &s, &n) != 0) {
            return 1; /* out of memory is no mismatch */
        }
        return n == json_string_length(b) && memcmp(s, json_string_value(b), n) == 0;
    }
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b)) {
            return 0;
        }
        for (size_t i = 0; i < json_array_size(a); i++) {
            if (!same_tree(doc, json_array_get(a, i), json_array_get(b, i))) {
                return 0;
            }
        }
        return 1;
    }
    if (json_is_object(a)) {
        void *ia = json_object_iter((json_t *)a), *ib = json_object_iter((json_t *)b);
        for (; ia && ib; ia = json_object_iter_next((json_t *)a, ia),
                         ib = json_object_iter_next((json_t *)b, ib)) {
            if (strcmp(json_object_iter_key(ia), json_object_iter_key(ib)) != 0 ||
                !same_tree(doc, json_object_iter_value(ia), json_object_iter_value(ib))) {
                return 0;
            }
        }
        return !ia && !ib;
    }
    return json_equal((json_t *)a, (json_t *)b);
}

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
    if ((rc == 0) != (r2 != NULL) || strcmp(m1, m2) != 0 || (r1 && !same_tree(&doc, r1, r2))) {
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
