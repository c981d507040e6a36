/* inflate.c - Content-Encoding of request bodies: header parsing, and a capped inflater that
 * runs on a compute worker (never on an I/O thread).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "segloss.h"
#include "server.h"

/* First output allocation, grown by doubling up to the cap. */
#define INFLATE_FIRST_CHUNK (256 * 1024)

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Whether value[0..n) equals word, ignoring case, with only blanks around it. */
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

/* Parses a Content-Encoding value; returns 0 and sets *enc, or -1 for anything unsupported. */
int srv_parse_encoding(const char *value, enum srv_encoding *enc)
{
    if (!value || token_is(value, "") || token_is(value, "identity")) {
        *enc = SRV_ENC_IDENTITY;
    } else if (token_is(value, "gzip") || token_is(value, "x-gzip")) {
        *enc = SRV_ENC_GZIP;
    } else if (token_is(value, "deflate")) {
        *enc = SRV_ENC_DEFLATE;
    } else {
        return -1;
    }
    return 0;
}

/* Whether a Content-Type value names type: "Application/JSON ; charset=utf-8" names
 * application/json. */
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

/* RFC 1950: CM 8, CINFO <= 7, header checksum, no preset dictionary. */
static bool has_zlib_header(const unsigned char *p, size_t len)
{
    return len >= 2 && (p[0] & 0x0f) == 8 && (p[0] >> 4) <= 7 && (p[0] * 256 + p[1]) % 31 == 0 &&
           (p[1] & 0x20) == 0;
}

static const char *enc_name(enum srv_encoding enc)
{
    return enc == SRV_ENC_GZIP ? "gzip" : "deflate";
}

/* Inflates body into a new NUL-terminated buffer of at most max_out bytes (see server.h). */
int srv_inflate(const void *body, size_t len, enum srv_encoding enc, size_t max_out, char **out,
                size_t *out_len, char *msg, size_t msglen)
{
    const unsigned char *in = body;
    int rc = 0;
    *out = NULL;
    *out_len = 0;

    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    int wbits = enc == SRV_ENC_GZIP ? 15 + 16 : (has_zlib_header(in, len) ? 15 : -15);
    if (inflateInit2(&zs, wbits) != Z_OK) {
        snprintf(msg, msglen, "request body: cannot start the %s decoder", enc_name(enc));
        return SL_ENOMEM;
    }

    /* One byte over max_out is room enough to see that the body is too large. */
    size_t limit = max_out < SIZE_MAX - 1 ? max_out + 1 : max_out;
    size_t cap = len < INFLATE_FIRST_CHUNK / 4 ? INFLATE_FIRST_CHUNK : len * 4;
    if (cap > limit || cap / 4 < len) {
        cap = limit;
    }
    char *buf = malloc(cap + 1);
    if (!buf) {
        snprintf(msg, msglen, "request body: out of memory inflating %s", enc_name(enc));
        rc = SL_ENOMEM;
        goto end_stream;
    }
    size_t used = 0;
    size_t in_left = len; /* input not yet handed to zlib */

    for (;;) {
        if (zs.avail_in == 0 && in_left > 0) {
            uInt chunk = in_left > UINT_MAX ? UINT_MAX : (uInt)in_left;
            zs.next_in = (Bytef *)(in + (len - in_left));
            zs.avail_in = chunk;
            in_left -= chunk;
        }
        if (used == cap) {
            if (cap == limit) {
                snprintf(msg, msglen,
                         "request body inflates to more than %zu bytes (the --max-body-mb limit)",
                         max_out);
                rc = SL_ETOOLARGE;
                goto free_buf;
            }
            size_t ncap = cap > limit / 2 ? limit : cap * 2;
            char *nbuf = realloc(buf, ncap + 1);
            if (!nbuf) {
                snprintf(msg, msglen, "request body: out of memory inflating %s", enc_name(enc));
                rc = SL_ENOMEM;
                goto free_buf;
            }
            buf = nbuf;
            cap = ncap;
        }
        size_t room = cap - used > UINT_MAX ? UINT_MAX : cap - used;
        zs.next_out = (Bytef *)(buf + used);
        zs.avail_out = (uInt)room;
        int zr = inflate(&zs, Z_NO_FLUSH);
        used += room - zs.avail_out;

        if (zr == Z_STREAM_END) {
            size_t rest = zs.avail_in + in_left;
            if (rest == 0) {
                break;
            }
            /* gzip allows several members back to back (RFC 1952 2.2); anything else after
             * the end of the stream is not ours to ignore. */
            if (enc == SRV_ENC_GZIP && zs.avail_in >= 2 && zs.next_in[0] == 0x1f &&
                zs.next_in[1] == 0x8b) {
                inflateReset(&zs);
                continue;
            }
            snprintf(msg, msglen, "request body: %zu bytes of trailing data after the %s stream",
                     rest, enc_name(enc));
            rc = SL_EMALFORMED;
            goto free_buf;
        }
        if (zr == Z_MEM_ERROR) {
            snprintf(msg, msglen, "request body: out of memory inflating %s", enc_name(enc));
            rc = SL_ENOMEM;
            goto free_buf;
        }
        if (zr == Z_OK || zr == Z_BUF_ERROR) {
            /* Output full: grow and go on. Input used up without the stream's end: cut off. */
            if (zs.avail_out == 0) {
                continue;
            }
            if (zs.avail_in == 0 && in_left == 0) {
                snprintf(msg, msglen, "request body: the %s stream is truncated", enc_name(enc));
                rc = SL_EMALFORMED;
                goto free_buf;
            }
            continue;
        }
        snprintf(msg, msglen, "request body: corrupt %s stream (%s)", enc_name(enc),
                 zs.msg ? zs.msg : "invalid data");
        rc = SL_EMALFORMED;
        goto free_buf;
    }

    buf[used] = '\0';
    *out = buf;
    *out_len = used;
    goto end_stream;

free_buf:
    free(buf);
end_stream:
    inflateEnd(&zs);
    return rc;
}
