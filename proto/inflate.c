/* inflate.c - bounded inflate of gzip, zlib and raw deflate streams held in memory.
 *
 * The output is never larger than asked for: a caller inflates exactly the bytes it expects and
 * then asks for one more byte to prove the stream ends there, so a bomb costs expected + 1 bytes
 * of output and the time to produce them. Policies:
 *  - bytes after the end of the stream (after the last gzip member) are SL_EMALFORMED: the
 *    container is broken, whatever the array's size;
 *  - concatenated gzip members are accepted and inflated as one stream, as gunzip and Python's
 *    gzip.decompress do (a zlib or raw deflate stream has exactly one member);
 *  - a compressed stream whose input ends before its end (truncated, or a gzip member without
 *    its CRC trailer) is SL_EMALFORMED; a complete stream with too few or too many bytes is
 *    SL_ESIZE, decided by the caller.
 *
 * Speed: when the output size is known (an array's exact byte count; for .npy, the header says
 * it), libdeflate inflates the whole stream in one call, about twice as fast as zlib. It is
 * only trusted with a complete success - one stream (one gzip member) that ends exactly at the
 * end of the input and inflates to exactly the size; anything else is done again by zlib's
 * streaming inflater, bounded as above, whose messages and acceptance decide every error. A
 * bomb or a corrupt stream so costs at most two bounded passes. libdeflate accepts a few
 * malformed streams zlib refuses (the reserved length symbols 286/287 and distance symbols
 * 30/31, an incomplete precode of one codeword); their output, checked by the gzip CRC-32 or
 * zlib Adler-32 when there is one, is then taken as it is. Headers whose checks libdeflate
 * skips (a gzip header CRC, a zlib window under 32 KiB) always go to zlib.
 *
 * A stream whose inflated size is not known (an HTTP body's Content-Encoding, inflate.h) goes
 * through the same zlib inflater into a capped dynbuf: slp_inflate_all; a gzip body's ISIZE
 * trailer is taken as a hint first (one libdeflate call when it is right, as above).
 */
#include <libdeflate.h>
#include <limits.h>
#include <string.h>

#include "array_internal.h"
#include "inflate.h"

const char *slp__compression_name(int kind)
{
    switch (kind) {
    case SLP_COMP_NONE:
        return "none";
    case SLP_COMP_GZIP:
        return "gzip";
    case SLP_COMP_ZLIB:
        return "zlib";
    case SLP_COMP_DEFLATE:
        return "deflate";
    case SLP_COMP_AUTO:
        return "auto";
    default:
        return "?";
    }
}

/* A zlib header: deflate method, window <= 32K, check bits (RFC 1950 section 2.2). */
static int is_zlib_header(const unsigned char *p, size_t len)
{
    return len >= 2 && (p[0] & 0x0f) == 8 && (p[0] >> 4) <= 7 &&
           (((unsigned)p[0] << 8) | p[1]) % 31 == 0;
}

static int is_gzip_header(const unsigned char *p, size_t len)
{
    return len >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}

int slp__compression_kind(enum slp_compression comp, const unsigned char *in, size_t len)
{
    if (comp != SLP_COMP_AUTO) {
        return (int)comp;
    }
    if (is_gzip_header(in, len)) {
        return SLP_COMP_GZIP;
    }
    return is_zlib_header(in, len) ? SLP_COMP_ZLIB : -1;
}

/* RFC 1952 FLG bit: a CRC-16 of the header follows it (libdeflate skips it unchecked). */
#define GZIP_FHCRC 0x02

int slp__inflate_whole(const unsigned char *in, size_t len, int kind, void *out, size_t size)
{
    if (size == 0 || !in) {
        return 0;
    }
    if (kind == SLP_COMP_GZIP && (len < 18 || (in[3] & GZIP_FHCRC))) {
        return 0;
    }
    if (kind == SLP_COMP_ZLIB && (len < 6 || in[0] >> 4 != 7)) {
        return 0;
    }
    if (kind != SLP_COMP_GZIP && kind != SLP_COMP_ZLIB && kind != SLP_COMP_DEFLATE) {
        return 0;
    }
    struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
    if (!d) {
        return 0;
    }
    size_t used = 0;
    enum libdeflate_result res;
    /* a NULL actual_out_nbytes_ret asks for exactly size bytes (else SHORT_OUTPUT) */
    if (kind == SLP_COMP_GZIP) {
        res = libdeflate_gzip_decompress_ex(d, in, len, out, size, &used, NULL);
    } else if (kind == SLP_COMP_ZLIB) {
        res = libdeflate_zlib_decompress_ex(d, in, len, out, size, &used, NULL);
    } else {
        res = libdeflate_deflate_decompress_ex(d, in, len, out, size, &used, NULL);
    }
    libdeflate_free_decompressor(d);
    return res == LIBDEFLATE_SUCCESS && used == len;
}

int slp__inflater_init(struct slp__inflater *z, const unsigned char *in, size_t len,
                       enum slp_compression comp, const char *name, const char *dname, char *msg,
                       size_t msglen)
{
    memset(z, 0, sizeof *z);
    z->in = in;
    z->len = len;
    z->name = name;
    z->dname = dname;
    int kind = (int)comp;
    if (comp == SLP_COMP_AUTO) {
        if (is_gzip_header(in, len)) {
            kind = SLP_COMP_GZIP;
        } else if (is_zlib_header(in, len)) {
            kind = SLP_COMP_ZLIB;
        } else {
            slp__errf(msg, msglen, "%s: compression 'auto' found neither a gzip nor a zlib header",
                      dname);
            return SL_EMALFORMED;
        }
    }
    int wbits;
    switch (kind) {
    case SLP_COMP_GZIP:
        wbits = 16 + MAX_WBITS;
        break;
    case SLP_COMP_ZLIB:
        wbits = MAX_WBITS;
        break;
    case SLP_COMP_DEFLATE:
        wbits = -MAX_WBITS;
        break;
    default:
        slp__errf(msg, msglen, "%s: compression '%s' is not a compressed stream", dname,
                  slp__compression_name(kind));
        return SL_EINVAL;
    }
    z->kind = kind;
    int ret = inflateInit2(&z->zs, wbits);
    if (ret != Z_OK) {
        slp__errf(msg, msglen, "%s: cannot start inflating (%s)", dname,
                  z->zs.msg ? z->zs.msg : zError(ret));
        return ret == Z_MEM_ERROR ? SL_ENOMEM : SL_EINTERNAL;
    }
    z->live = 1;
    return 0;
}

/* Called at Z_STREAM_END: the end of input, another gzip member, or trailing garbage. */
static int member_end(struct slp__inflater *z, char *msg, size_t msglen)
{
    size_t left = z->zs.avail_in + (z->len - z->fed);
    if (left == 0) {
        z->ended = 1;
        return 0;
    }
    const unsigned char *p = z->in + (z->len - left);
    if (z->kind == SLP_COMP_GZIP && is_gzip_header(p, left)) {
        if (inflateReset(&z->zs) != Z_OK) {
            slp__errf(msg, msglen, "%s: cannot restart inflating", z->dname);
            return SL_EINTERNAL;
        }
        return 0;
    }
    slp__errf(msg, msglen, "%s: %zu byte%s of trailing data after the end of the %s stream",
              z->dname, left, left == 1 ? "" : "s", slp__compression_name(z->kind));
    return SL_EMALFORMED;
}

int slp__inflater_read(struct slp__inflater *z, void *out, size_t want, size_t *got, char *msg,
                       size_t msglen)
{
    unsigned char *o = out;
    size_t done = 0;
    int rc = 0;
    while (done < want && !z->ended) {
        if (z->zs.avail_in == 0 && z->fed < z->len) {
            size_t c = z->len - z->fed < UINT_MAX ? z->len - z->fed : UINT_MAX;
            z->zs.next_in = z->in + z->fed;
            z->zs.avail_in = (uInt)c;
            z->fed += c;
        }
        size_t co = want - done < UINT_MAX ? want - done : UINT_MAX;
        z->zs.next_out = o + done;
        z->zs.avail_out = (uInt)co;
        int ret = inflate(&z->zs, Z_NO_FLUSH);
        done += co - z->zs.avail_out;
        if (ret == Z_OK) {
            continue;
        }
        if (ret == Z_STREAM_END) {
            rc = member_end(z, msg, msglen);
            if (rc) {
                break;
            }
            continue;
        }
        const char *kind = slp__compression_name(z->kind);
        if (ret == Z_BUF_ERROR) {
            /* no progress was possible with output space left: the input is used up */
            slp__errf(msg, msglen,
                      "%s: %s stream is truncated (the input ends before the stream does)",
                      z->dname, kind);
            rc = SL_EMALFORMED;
        } else if (ret == Z_NEED_DICT) {
            slp__errf(msg, msglen, "%s: zlib stream needs a preset dictionary (not supported)",
                      z->dname);
            rc = SL_EMALFORMED;
        } else if (ret == Z_DATA_ERROR) {
            slp__errf(msg, msglen, "%s: corrupt %s stream: %s", z->dname, kind,
                      z->zs.msg ? z->zs.msg : "data error");
            rc = SL_EMALFORMED;
        } else if (ret == Z_MEM_ERROR) {
            slp__errf(msg, msglen, "%s: out of memory while inflating", z->dname);
            rc = SL_ENOMEM;
        } else {
            slp__errf(msg, msglen, "%s: inflate failed (%s)", z->dname, zError(ret));
            rc = SL_EINTERNAL;
        }
        break;
    }
    *got = done;
    return rc;
}

int slp__inflater_at_end(struct slp__inflater *z, int *more, char *msg, size_t msglen)
{
    unsigned char extra;
    size_t got = 0;
    int rc = slp__inflater_read(z, &extra, 1, &got, msg, msglen);
    *more = got != 0;
    return rc;
}

void slp__inflater_end(struct slp__inflater *z)
{
    if (z->live) {
        inflateEnd(&z->zs);
        z->live = 0;
    }
}

/* One-shot form: exactly expected bytes into out, then the end of the stream. */
int slp__inflate_exact(const unsigned char *in, size_t len, enum slp_compression comp, void *out,
                       size_t expected, const char *name, const char *dname, char *msg,
                       size_t msglen)
{
    if (comp == SLP_COMP_NONE) {
        if (len != expected) {
            slp__errf(msg, msglen, "%s: expected %zu bytes, got %zu", name, expected, len);
            return SL_ESIZE;
        }
        if (len) {
            memcpy(out, in, len);
        }
        return 0;
    }
    if (slp__inflate_whole(in, len, slp__compression_kind(comp, in, len), out, expected) == 1) {
        return 0;
    }
    struct slp__inflater z;
    size_t got = 0;
    int more = 0;
    int rc = slp__inflater_init(&z, in, len, comp, name, dname, msg, msglen);
    if (!rc) {
        rc = slp__inflater_read(&z, out, expected, &got, msg, msglen);
    }
    if (!rc && got < expected) {
        slp__errf(msg, msglen, "%s: expected %zu bytes, got %zu after inflating", name, expected,
                  got);
        rc = SL_ESIZE;
    }
    if (!rc) {
        rc = slp__inflater_at_end(&z, &more, msg, msglen);
    }
    if (!rc && more) {
        slp__errf(msg, msglen,
                  "%s: expected %zu bytes, got at least %zu after inflating (stopped there)", name,
                  expected, expected + 1);
        rc = SL_ESIZE;
    }
    slp__inflater_end(&z);
    return rc;
}

int slp_inflate_exact(const unsigned char *in, size_t len, enum slp_compression comp, void *out,
                      size_t expected, const char *name, char *msg, size_t msglen)
{
    return slp__inflate_exact(in, len, comp, out, expected, name, name, msg, msglen);
}

/* ZLIB when in starts with a zlib header (is_zlib_header), else raw DEFLATE. */
enum slp_compression slp_http_deflate_kind(const unsigned char *in, size_t len)
{
    return is_zlib_header(in, len) ? SLP_COMP_ZLIB : SLP_COMP_DEFLATE;
}

/* Output asked of zlib per call at first; then as much as is already held (doubling). */
#define INFLATE_ALL_FIRST ((size_t)256 * 1024)

/* A gzip stream's inflated size as its last member's ISIZE trailer says (RFC 1952: the size
 * mod 2^32, little-endian, in the last 4 bytes), or 0. Only a hint: slp__inflate_whole must
 * then produce exactly that many bytes from one member ending at the end of the input. */
static size_t gzip_size_hint(const unsigned char *in, size_t len)
{
    if (len < 18 || !is_gzip_header(in, len)) {
        return 0;
    }
    const unsigned char *t = in + len - 4;
    return (size_t)t[0] | (size_t)t[1] << 8 | (size_t)t[2] << 16 | (size_t)t[3] << 24;
}

/* Appends the whole inflated stream to out, at most out->max bytes (see inflate.h). A gzip
 * stream whose ISIZE fits under the cap is first inflated by libdeflate in one call into
 * exactly that room; any other outcome (a wrong hint, several members, a corrupt stream) goes
 * to zlib's streaming inflater from the start, whose result and messages decide. */
int slp_inflate_all(const unsigned char *in, size_t len, enum slp_compression comp,
                    struct slp_dynbuf *out, const char *name, char *msg, size_t msglen)
{
    const size_t hint = comp == SLP_COMP_GZIP && !out->err ? gzip_size_hint(in, len) : 0;
    if (hint > 0 && hint <= out->max - out->len) {
        char *at = slp_dynbuf_room(out, hint);
        if (at && slp__inflate_whole(in, len, SLP_COMP_GZIP, at, hint) == 1) {
            slp_dynbuf_commit(out, hint);
            return 0;
        }
    }
    struct slp__inflater z;
    int rc = slp__inflater_init(&z, in, len, comp, name, name, msg, msglen);
    size_t step = INFLATE_ALL_FIRST;
    while (!rc && !z.ended) {
        size_t left = out->err ? 0 : out->max - out->len;
        if (left == 0 && !out->err) {
            /* full: one more byte says whether the stream goes on past the cap */
            int more = 0;
            rc = slp__inflater_at_end(&z, &more, msg, msglen);
            if (!rc && more) {
                slp__errf(msg, msglen, "%s inflates to more than %zu bytes", name, out->max);
                rc = SL_ETOOLARGE;
            }
            break;
        }
        char *at = slp_dynbuf_room(out, step < left ? step : left);
        if (!at) {
            slp__errf(msg, msglen, "%s: out of memory while inflating", name);
            rc = out->err ? out->err : SL_ENOMEM;
            break;
        }
        size_t got = 0;
        rc = slp__inflater_read(&z, at, step < left ? step : left, &got, msg, msglen);
        slp_dynbuf_commit(out, got);
        step = out->len > step ? out->len : step;
    }
    slp__inflater_end(&z);
    return rc;
}
