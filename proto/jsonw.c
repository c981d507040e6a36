/* jsonw.c - JSON string literals into a dynbuf (jsonw.h). */
#include "jsonw.h"

#include <stdio.h>

/* Appends s as a quoted JSON string literal (see jsonw.h): runs of plain bytes in one piece,
 * each byte that needs it escaped. */
int slp_json_add_str(struct slp_dynbuf *b, const char *s, unsigned flags)
{
    const unsigned char *run = (const unsigned char *)(s ? s : ""), *p = run;
    const unsigned hi = (flags & SLP_JSON_ASCII) ? 0x7f : 0x100;
    slp_dynbuf_add(b, "\"", 1);
    for (; *p; p++) {
        if (*p != '"' && *p != '\\' && *p >= 0x20 && *p < hi) {
            continue;
        }
        slp_dynbuf_add(b, run, (size_t)(p - run));
        if (*p == '"' || *p == '\\') {
            const char esc[2] = {'\\', (char)*p};
            slp_dynbuf_add(b, esc, 2);
        } else {
            slp_dynbuf_addf(b, "\\u%04x", *p);
        }
        run = p + 1;
    }
    slp_dynbuf_add(b, run, (size_t)(p - run));
    return slp_dynbuf_add(b, "\"", 1);
}
