/* jsonw.c - JSON string literals into a dynbuf (jsonw.h). */
#include "jsonw.h"

#include <stdio.h>

/* Appends s as a quoted JSON string literal (see jsonw.h). */
int slp_json_add_str(struct slp_dynbuf *b, const char *s, unsigned flags)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    slp_dynbuf_add(b, "\"", 1);
    for (size_t i = 0; p[i]; i++) {
        if (p[i] == '"' || p[i] == '\\') {
            char esc[2] = {'\\', (char)p[i]};
            slp_dynbuf_add(b, esc, 2);
        } else if (p[i] < 0x20 || ((flags & SLP_JSON_ASCII) && p[i] >= 0x7f)) {
            slp_dynbuf_addf(b, "\\u%04x", p[i]);
        } else {
            slp_dynbuf_add(b, p + i, 1);
        }
    }
    return slp_dynbuf_add(b, "\"", 1);
}
