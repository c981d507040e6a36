/* jscan.c - the pre-scan of a JSON text before jansson parses it: nesting depth and number of
 * values against the limits, so that a body over them costs one linear pass and no memory.
 * jansson spends 40+ bytes on each value, so a 64 MiB body of "0,0,0,..." would take over a
 * GiB, and it recurses once per nesting level.
 *
 * The scan counts; it does not validate. It skips string literals and looks at the structural
 * bytes '[', '{', ']', '}' and ',' in between; malformed JSON goes on to jansson, whose 400
 * names the line and column. It never reads outside the text, whatever the bytes are.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* Returns the offset just past the closing quote of the string literal whose contents begin at
 * s[i], or len when the literal is unterminated. A backslash escapes the byte after it (\" and
 * \\ alike; \uXXXX needs nothing more, its hex digits are no quotes). The closing quote found
 * by memchr is kept until an escape covers it, so each byte is searched at most twice. */
static size_t string_end(const char *s, size_t len, size_t i)
{
    const char *q = memchr(s + i, '"', len - i);
    while (q) {
        size_t qi = (size_t)(q - s);
        const char *b = memchr(s + i, '\\', qi - i);
        if (!b) {
            return qi + 1;
        }
        i = (size_t)(b - s) + 2;
        if (i > qi) {
            /* the backslash escaped q itself: look for the next quote */
            q = i < len ? memchr(s + i, '"', len - i) : NULL;
        }
    }
    return len;
}

/* Where the text came from, for messages: "body", or "part 'NAME'" of a multipart body. */
static const char *origin(const char *part, char *buf, size_t len)
{
    if (!part) {
        return "body";
    }
    snprintf(buf, len, "part '%.64s'", part);
    return buf;
}

int slp__json_scan(const char *s, size_t len, const struct slp_limits *lim, const char *part,
                   char *msg, size_t msglen)
{
    const int max_depth = lim->max_depth;
    const int64_t max_values = lim->max_json_values;
    int depth = 0;
    int64_t values = 1; /* the top-level value */
    char where[80];
    if (max_depth <= 0 && max_values <= 0) {
        return 0;
    }
    size_t i = 0;
    while (i < len) {
        const char c = s[i++];
        if (c == '"') {
            i = string_end(s, len, i);
        } else if (c == ']' || c == '}') {
            /* a stray closer is jansson's to report; the count must not go negative */
            if (depth > 0) {
                depth--;
            }
        } else if (c == '[' || c == '{' || c == ',') {
            if (c != ',' && max_depth > 0 && ++depth > max_depth) {
                snprintf(msg, msglen,
                         "JSON nesting deeper than %d levels at byte %zu%s%s (--max-spec-depth)",
                         max_depth, i - 1, part ? " of " : "",
                         part ? origin(part, where, sizeof where) : "");
                return SL_ETOOLARGE;
            }
            if (++values > max_values && max_values > 0) {
                snprintf(msg, msglen,
                         "JSON %s has more than %lld values (--max-json-values); send large "
                         "arrays as base64 raw/npy",
                         origin(part, where, sizeof where), (long long)max_values);
                return SL_ETOOLARGE;
            }
        }
    }
    return 0;
}
