/* jsonw.h - JSON text pieces written into a struct slp_dynbuf, for writers outside the answer
 * serializers (seglossd's access log).
 *
 * Errors: the dynbuf's own (0, or its sticky SL_ENOMEM / SL_ETOOLARGE), so a writer appends
 * many pieces and checks once.
 */
#ifndef SLP_JSONW_H
#define SLP_JSONW_H

#include <stddef.h>

#include "dynbuf.h"

/* slp_json_add_str flags: escape every byte >= 0x7f as \u00XX, so that text that may not be
 * UTF-8 (a request path, a client's header) still makes valid, ASCII-only JSON. */
#define SLP_JSON_ASCII 1u

/* Appends the NUL-terminated s (NULL: "") to b as a quoted JSON string literal (RFC 8259: quote,
 * backslash and control characters escaped). Returns 0 or b's error. */
int slp_json_add_str(struct slp_dynbuf *b, const char *s, unsigned flags);

#endif /* SLP_JSONW_H */
