/* headers.c - every header value seglossd reads, parsed in one place: Content-Type,
 * Content-Encoding, Content-Length, Accept, Accept-Encoding, and the size of the request head.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "segloss.h"
#include "srv_internal.h"

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Whether value equals word, ignoring case, with only blanks around it. */
static bool token_is(const char *value, const char *word)
{
    while (is_space(*value)) {
        value++;
    }
    size_t n = strlen(word);
    if (strncasecmp(value, word, n) != 0) {
        return false;
    }
    value += n;
    while (is_space(*value)) {
        value++;
    }
    return *value == '\0';
}

/* Content-Encoding: identity (or absent), gzip/x-gzip, deflate or zstd into *enc; 0 or
 * SL_EUNSUPPORTED. */
int srv_parse_encoding(const char *value, enum srv_encoding *enc)
{
    if (!value || token_is(value, "") || token_is(value, "identity")) {
        *enc = SRV_ENC_IDENTITY;
    } else if (token_is(value, "gzip") || token_is(value, "x-gzip")) {
        *enc = SRV_ENC_GZIP;
    } else if (token_is(value, "deflate")) {
        *enc = SRV_ENC_DEFLATE;
    } else if (token_is(value, "zstd")) {
        *enc = SRV_ENC_ZSTD;
    } else {
        return SL_EUNSUPPORTED;
    }
    return 0;
}

/* "Application/JSON ; charset=utf-8" names application/json. */
bool srv_media_type_is(const char *value, const char *type)
{
    if (!value) {
        return false;
    }
    while (is_space(*value)) {
        value++;
    }
    size_t n = strlen(type);
    if (strncasecmp(value, type, n) != 0) {
        return false;
    }
    value += n;
    while (is_space(*value)) {
        value++;
    }
    return *value == '\0' || *value == ';';
}

/* One element of a comma-separated header list: its token [tok, tok + toklen) and q. Returns
 * the position after the element, or NULL at the end of the list. */
static const char *list_next(const char *p, const char **tok, size_t *toklen, double *q)
{
    while (*p == ' ' || *p == '\t' || *p == ',') {
        p++;
    }
    if (!*p) {
        return NULL;
    }
    const char *end = p + strcspn(p, ",");
    size_t n = strcspn(p, ",;");
    *tok = p;
    *q = 1;
    /* parameters ";name=value" up to the next comma: only q matters here */
    for (const char *a = p + n; a < end; a += 1 + strcspn(a + 1, ",;")) {
        const char *v = a + 1;
        while (is_space(*v)) {
            v++;
        }
        if ((v[0] == 'q' || v[0] == 'Q') && v[1] == '=') {
            char *stop;
            double d = strtod(v + 2, &stop);
            *q = stop != v + 2 && d >= 0 && d <= 1 ? d : 1;
        }
    }
    while (n > 0 && is_space(p[n - 1])) {
        n--;
    }
    *toklen = n;
    return end;
}

static bool tok_is(const char *tok, size_t n, const char *word)
{
    return n == strlen(word) && strncasecmp(tok, word, n) == 0;
}

/* Whether Accept lists application/json with q > 0 above application/x-npy. */
bool srv_accept_prefers_json(const char *value)
{
    double q_json = -1, q_npy = -1, q;
    const char *tok;
    size_t n;
    for (const char *p = value; p && (p = list_next(p, &tok, &n, &q));) {
        if (tok_is(tok, n, "application/json")) {
            q_json = q > q_json ? q : q_json;
        } else if (tok_is(tok, n, "application/x-npy")) {
            q_npy = q > q_npy ? q : q_npy;
        }
    }
    return q_json > 0 && q_json > q_npy;
}

/* Whether Accept lists text/html with q > 0 above application/json (the q of the any-type and
 * application wildcards stands for JSON when it is not listed itself): a browser's Accept
 * prefers the HTML report; a tie, or no Accept, keeps JSON. */
bool srv_accept_prefers_html(const char *value)
{
    double q_html = -1, q_json = -1, q_wild = -1, q;
    const char *tok;
    size_t n;
    for (const char *p = value; p && (p = list_next(p, &tok, &n, &q));) {
        if (tok_is(tok, n, "text/html")) {
            q_html = q > q_html ? q : q_html;
        } else if (tok_is(tok, n, "application/json")) {
            q_json = q > q_json ? q : q_json;
        } else if (tok_is(tok, n, "*/*") || tok_is(tok, n, "application/*")) {
            q_wild = q > q_wild ? q : q_wild;
        }
    }
    if (q_json < 0) {
        q_json = q_wild;
    }
    return q_html > 0 && q_html > q_json;
}

/* Whether Accept-Encoding allows gzip (or "*" when gzip is not listed). */
bool srv_accept_encoding_allows_gzip(const char *value)
{
    double q_gzip = -1, q_any = -1, q;
    const char *tok;
    size_t n;
    for (const char *p = value; p && (p = list_next(p, &tok, &n, &q));) {
        if (tok_is(tok, n, "gzip") || tok_is(tok, n, "x-gzip")) {
            q_gzip = q > q_gzip ? q : q_gzip;
        } else if (tok_is(tok, n, "*")) {
            q_any = q > q_any ? q : q_any;
        }
    }
    return q_gzip >= 0 ? q_gzip > 0 : q_any > 0;
}

/* The answer's coding by Accept-Encoding's q-values (server.h says the rule). */
enum srv_encoding srv_accept_encoding_pick(const char *value)
{
    double q_zstd = -1, q_gzip = -1, q_any = -1, q;
    const char *tok;
    size_t n;
    for (const char *p = value; p && (p = list_next(p, &tok, &n, &q));) {
        if (tok_is(tok, n, "zstd")) {
            q_zstd = q > q_zstd ? q : q_zstd;
        } else if (tok_is(tok, n, "gzip") || tok_is(tok, n, "x-gzip")) {
            q_gzip = q > q_gzip ? q : q_gzip;
        } else if (tok_is(tok, n, "*")) {
            q_any = q > q_any ? q : q_any;
        }
    }
    double g = q_gzip >= 0 ? q_gzip : q_any; /* gzip's q, "*" standing for it when unlisted */
    if (q_zstd > 0 && q_zstd >= g) {
        return SRV_ENC_ZSTD;
    }
    return g > 0 ? SRV_ENC_GZIP : SRV_ENC_IDENTITY;
}

/* A request header's value, borrowed from MHD; NULL when absent. */
const char *srv_header(struct MHD_Connection *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
}

/* Content-Length into *n (0 when absent); 0, or SL_ERANGE past 64 bits. */
int srv_content_length(const char *value, uint64_t *n)
{
    *n = 0;
    if (!value) {
        return 0;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(value, &end, 10);
    if (errno == ERANGE) {
        *n = UINT64_MAX;
        return SL_ERANGE;
    }
    if (end != value) {
        *n = v;
    }
    return 0;
}

/* Whether the request announces a body (chunked, or a Content-Length over 0). */
bool srv_has_body(struct MHD_Connection *conn)
{
    uint64_t n = 0;
    srv_content_length(srv_header(conn, MHD_HTTP_HEADER_CONTENT_LENGTH), &n);
    return srv_header(conn, MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL || n > 0;
}

/* Adds the bytes of one header (or query argument) line to *(size_t *)cls. */
static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    (void)kind;
    *(size_t *)cls += (key ? strlen(key) : 0) + (value ? strlen(value) : 0) + 4; /* ": ", CRLF */
    return MHD_YES;
}

/* About how many bytes the request line and headers took on the wire. */
size_t srv_header_bytes(struct MHD_Connection *conn, const char *method, const char *url)
{
    size_t bytes = strlen(method) + 1 + strlen(url) + 11; /* " HTTP/1.1\r\n" */
    MHD_get_connection_values(conn, MHD_HEADER_KIND, count_header, &bytes);
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, count_header, &bytes);
    return bytes;
}

/* X-Request-ID's visible ASCII characters (0x21-0x7e) into out, at most n - 1 of them. */
size_t srv_request_id(const char *value, char *out, size_t n)
{
    size_t len = 0;
    for (const char *p = value; p && *p && len < n - 1; p++) {
        if (*p >= 0x21 && *p <= 0x7e) {
            out[len++] = *p;
        }
    }
    out[len] = '\0';
    return len;
}
