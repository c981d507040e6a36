/* jdoc_same.h - tree comparison shared by test_jscan and fuzz_jscan: a tree parsed through the
 * JSON skeleton (proto/jscan.c) against jansson's parse of the original text. */
#ifndef SL_TEST_JDOC_SAME_H
#define SL_TEST_JDOC_SAME_H

#include <jansson.h>
#include <string.h>

#include "array_internal.h"

/* Whether tree a (parsed through doc's skeleton) is tree b (jansson on the original text):
 * same structure and key order, same numbers, and each string of a, resolved through doc,
 * has b's bytes. A string doc cannot resolve (out of memory) counts as `oom`. */
static inline int jdoc_same_tree(struct slp__jdoc *doc, const json_t *a, const json_t *b, int oom)
{
    if (json_typeof(a) != json_typeof(b)) {
        return 0;
    }
    if (json_is_string(a)) {
        const char *s = NULL;
        size_t n = 0;
        if (slp__jdoc_string(doc, a, &s, &n) != 0) {
            return oom;
        }
        return n == json_string_length(b) && memcmp(s, json_string_value(b), n) == 0;
    }
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b)) {
            return 0;
        }
        for (size_t i = 0; i < json_array_size(a); i++) {
            if (!jdoc_same_tree(doc, json_array_get(a, i), json_array_get(b, i), oom)) {
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
                !jdoc_same_tree(doc, json_object_iter_value(ia), json_object_iter_value(ib), oom)) {
                return 0;
            }
        }
        return !ia && !ib; /* neither has keys left: the same size */
    }
    return json_equal((json_t *)a, (json_t *)b);
}

#endif /* SL_TEST_JDOC_SAME_H */
