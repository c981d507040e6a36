/* html.c - escaping, numbers and the common page frame of proto/html.h. */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "html.h"
#include "segloss.h"

/* The style every page shares: readable on a phone (fluid width, tables scroll sideways),
 * system fonts, tabular figures for scores. */
static const char common_css[] =
    "*{box-sizing:border-box}"
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;"
    "margin:0 auto;padding:1rem;max-width:72rem;color:#1a1a1a;background:#fff;line-height:1.4}"
    "h1{font-size:1.5rem;margin:.2rem 0 .6rem}h2{font-size:1.15rem;margin:1.4rem 0 .5rem}"
    "p{margin:.4rem 0}a{color:#004488}"
    ".scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}"
    "table{border-collapse:collapse;font-variant-numeric:tabular-nums;min-width:100%}"
    "th,td{padding:.3rem .55rem;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}"
    "th{background:#f4f4f4;font-weight:600;white-space:nowrap}"
    "td.num,th.num{text-align:right}"
    ".muted{color:#666;font-size:.9rem}"
    "footer{margin-top:2rem;color:#777;font-size:.8rem}"
    "svg{max-width:100%;height:auto}";

int slp_html_textn(struct slp_dynbuf *b, const char *s, size_t n)
{
    size_t run = 0; /* bytes at s[run_start..] copied as they are */
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep = NULL;
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        default:
            if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f) {
                rep = "\xEF\xBF\xBD";
            }
        }
        if (!rep) {
            run++;
            continue;
        }
        slp_dynbuf_add(b, s + start, run);
        slp_dynbuf_adds(b, rep);
        start = i + 1;
        run = 0;
    }
    return slp_dynbuf_add(b, s + start, run);
}

int slp_html_text(struct slp_dynbuf *b, const char *s)
{
    return s ? slp_html_textn(b, s, strlen(s)) : b->err;
}

int slp_html_attr(struct slp_dynbuf *b, const char *s)
{
    return slp_html_text(b, s);
}

int slp_html_num(struct slp_dynbuf *b, double v, int sig)
{
    if (!isfinite(v)) {
        return slp_dynbuf_adds(b, "\xE2\x80\x93"); /* en dash */
    }
    if (sig < 1) {
        sig = 1;
    }
    if (v == 0) {
        return slp_dynbuf_adds(b, "0");
    }
    return slp_dynbuf_addf(b, "%.*g", sig, v);
}

int slp_html_exact(struct slp_dynbuf *b, double v)
{
    if (!isfinite(v)) {
        return slp_dynbuf_adds(b, "null");
    }
    char s[40];
    /* the shortest %.*g that reads back to v. A decimal of k <= 15 significant digits that reads
     * back to a normal double is what %.15g prints, trailing zeros aside (DBL_DIG is 15), so k
     * is read off %.15g's digits; only 16 and 17 are left to try after it (subnormals, with
     * fewer bits, are searched from 1) */
    int from = 1;
    if (fabs(v) >= DBL_MIN) {
        snprintf(s, sizeof s, "%.15g", v);
        if (strtod(s, NULL) == v) {
            int k = 0, zeros = 0;
            bool lead = true;
            for (const char *c = s; *c && *c != 'e'; c++) {
                if (*c < '0' || *c > '9' || (lead && *c == '0')) {
                    continue;
                }
                lead = false;
                zeros = *c == '0' ? zeros + 1 : 0;
                k++;
            }
            from = k - zeros > 0 ? k - zeros : 1;
        } else {
            from = 16;
        }
    }
    for (int p = from; p <= 17; p++) {
        snprintf(s, sizeof s, "%.*g", p, v);
        if (strtod(s, NULL) == v) {
            break;
        }
    }
    return slp_dynbuf_adds(b, s);
}

int slp_html_base64(struct slp_dynbuf *b, const void *p, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *in = p;
    if (n > (SIZE_MAX - 3) / 4 * 3) {
        b->err = b->err ? b->err : SL_ETOOLARGE;
        return b->err;
    }
    size_t len = (n + 2) / 3 * 4;
    char *o = slp_dynbuf_room(b, len);
    if (!o) {
        return b->err;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        v |= i + 1 < n ? (unsigned)in[i + 1] << 8 : 0;
        v |= i + 2 < n ? (unsigned)in[i + 2] : 0;
        o[k++] = abc[(v >> 18) & 63];
        o[k++] = abc[(v >> 12) & 63];
        o[k++] = i + 1 < n ? abc[(v >> 6) & 63] : '=';
        o[k++] = i + 2 < n ? abc[v & 63] : '=';
    }
    slp_dynbuf_commit(b, k);
    return b->err;
}

int slp_html_begin(struct slp_dynbuf *b, const char *title, const char *extra_css)
{
    slp_dynbuf_adds(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                       "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
                       /* an empty icon: a browser asks for /favicon.ico otherwise, and logs
                        * the 404 as a console error */
                       "<link rel=\"icon\" href=\"data:,\">"
                       "<title>");
    slp_html_text(b, title);
    slp_dynbuf_adds(b, "</title><style>");
    slp_dynbuf_adds(b, common_css);
    if (extra_css) {
        slp_dynbuf_adds(b, extra_css);
    }
    return slp_dynbuf_adds(b, "</style></head>\n<body>\n");
}

int slp_html_end(struct slp_dynbuf *b)
{
    return slp_dynbuf_adds(b, "<footer>segloss</footer>\n</body></html>\n");
}
