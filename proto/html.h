/* html.h - writing HTML5 pages into a proto/dynbuf.h buffer: escaping, numbers, the common
 * page head and the inline style the leaderboard pages and the scoring report share.
 *
 * Every page segloss writes is self-contained: no external asset, inline CSS and SVG only, a
 * little inline JavaScript that the page does not need to work. Every string that did not come
 * from segloss itself (titles, notes, ids, participant names) goes through slp_html_text or
 * slp_html_attr, which escape & < > " ' so that text shows as text and runs nothing.
 *
 * Like the JSON writers, these append to b and return 0 or b's sticky error (SL_ENOMEM,
 * SL_ETOOLARGE): a writer appends many pieces and checks b->err once at the end. */
#ifndef SEGLOSS_HTML_H
#define SEGLOSS_HTML_H

#include <stddef.h>

#include "dynbuf.h"

/* Appends s (NUL-terminated, UTF-8; NULL appends nothing) as HTML text: & < > " ' become
 * character references, and a control character other than tab and newline becomes U+FFFD. */
int slp_html_text(struct slp_dynbuf *b, const char *s);
/* The same for the n bytes at s (which may hold a NUL: it becomes U+FFFD). */
int slp_html_textn(struct slp_dynbuf *b, const char *s, size_t n);
/* Appends s escaped for a double-quoted attribute value (the same escapes as slp_html_text). */
int slp_html_attr(struct slp_dynbuf *b, const char *s);
/* Appends v for people: sig significant digits (%.*g, at least 1; 0 as "0"),
 * and an en dash for NaN or an infinity (undefined; no NaN ever reaches a page). */
int slp_html_num(struct slp_dynbuf *b, double v, int sig);
/* Appends v exactly, for a data-value attribute a test or script reads back: the shortest
 * decimal that reads back to the same double ("%.17g" trimmed), "null" for NaN or infinity. */
int slp_html_exact(struct slp_dynbuf *b, double v);
/* Appends the n bytes at p as base64 (RFC 4648, with padding; no line breaks), for data URIs. */
int slp_html_base64(struct slp_dynbuf *b, const void *p, size_t n);
/* Appends "<!DOCTYPE html>", the head (charset, viewport for phones, the title escaped, the
 * common style plus extra_css when not NULL) and "<body>". */
int slp_html_begin(struct slp_dynbuf *b, const char *title, const char *extra_css);
/* Appends the footer line and closes body and html. */
int slp_html_end(struct slp_dynbuf *b);

/* Overlay colours of the report's thumbnails and the chart's series: Paul Tol's high-contrast
 * scheme (distinct for colour-blind readers and in greyscale), "#rrggbb". */
#define SLP_HTML_TP "#DDAA33" /* true positive: yellow */
#define SLP_HTML_FP "#BB5566" /* false positive: red */
#define SLP_HTML_FN "#004488" /* false negative: blue */

#endif
