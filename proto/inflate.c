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
 *
 * zstd (RFC 8878): exactly one zstd frame. Skippable frames, a second frame or any other byte
 * after the frame are SL_EMALFORMED (nothing may carry bytes past the caps unseen), as is a
 * frame that needs a dictionary. The frame header is read before anything is decoded: a
 * declared content size other than the expected one is SL_ESIZE, one over an HTTP body's cap
 * SL_ETOOLARGE, and a window over SLP__ZSTD_WINDOW_MAX (8 MiB) outside a single-segment frame
 * SL_ETOOLARGE - so a zstd bomb costs the header's bytes. A frame that declares its size is
 * decoded in one ZSTD_decompressDCtx call straight into the array; otherwise (or when that
 * fails) ZSTD_decompressStream goes on under the same expected + 1 cap as zlib, and its verdict
 * and messages decide.
 *
 * The kinds are rows of one table (after curl's content_encoding.c): a name and the decoder's
 * start, read and end; array.c's "compression" values and its messages come from it.
 */
#include <libdeflate.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <zstd_errors.h>

#include "array_internal.h"
#include "inflate.h"

/* A decoder's start (after z's fields are set; z->kind resolved), read (as
 * slp__inflater_read) and end (releases what start made; safe when it failed). */
typedef int decoder_start(struct slp__inflater *z, char *msg, size_t msglen);
typedef int decoder_read(struct slp__inflater *z, void *out, size_t want, size_t *got, char *msg,
                         size_t msglen);
typedef void decoder_end(struct slp__inflater *z);

static decoder_start zlib_start, zstd_start;
static decoder_read zlib_read, zstd_read;
static decoder_end zlib_end, zstd_end;
static int zstd_whole(const unsigned char *in, size_t len, void *out, size_t size);

/* One row per "compression" value, in the order openapi.json lists them; none and auto have no
 * decoder of their own (auto resolves to gzip or zlib by the header). */
static const struct decoder {
    const char *name;
    enum slp_compression kind;
    decoder_start *start;
    decoder_read *read;
    decoder_end *end;
} decoders[] = {
    {"none", SLP_COMP_NONE, NULL, NULL, NULL},
    {"gzip", SLP_COMP_GZIP, zlib_start, zlib_read, zlib_end},
    {"zlib", SLP_COMP_ZLIB, zlib_start, zlib_read, zlib_end},
    {"deflate", SLP_COMP_DEFLATE, zlib_start, zlib_read, zlib_end},
    {"auto", SLP_COMP_AUTO, NULL, NULL, NULL},
    {"zstd", SLP_COMP_ZSTD, zstd_start, zstd_read, zstd_end},
};
#define NDECODERS ((int)(sizeof decoders / sizeof decoders[0]))

/* The row of kind, or NULL. */
static const struct decoder *decoder_of(int kind)
{
    for (int i = 0; i < NDECODERS; i++) {
        if ((int)decoders[i].kind == kind) {
            return &decoders[i];
        }
    }
    return NULL;
}

const char *slp__compression_name(int kind)
{
    const struct decoder *d = decoder_of(kind);
    return d ? d->name : "?";
}

int slp__compression_from_name(const char *name, enum slp_compression *c)
{
    for (int i = 0; i < NDECODERS; i++) {
        if (strcmp(name, decoders[i].name) == 0) {
            *c = decoders[i].kind;
            return 0;
        }
    }
    return -1;
}

const char *slp__compression_row(int i)
{
    return i >= 0 && i < NDECODERS ? decoders[i].name : NULL;
}

void slp__compression_names(char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = '\0';
    for (int i = 0; i < NDECODERS && at < len; i++) {
        const char *sep = i == 0 ? "" : i == NDECODERS - 1 ? " or " : ", ";
        int n = snprintf(buf + at, len - at, "%s%s", sep, decoders[i].name);
        at += n > 0 ? (size_t)n : 0;
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
    if (kind == SLP_COMP_ZSTD) {
        return zstd_whole(in, len, out, size);
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
    z->declared = -1;
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
    const struct decoder *d = decoder_of(kind);
    if (!d || !d->start) {
        slp__errf(msg, msglen, "%s: compression '%s' is not a compressed stream", dname,
                  slp__compression_name(kind));
        return SL_EINVAL;
    }
    z->kind = kind;
    return d->start(z, msg, msglen);
}

/* zlib's inflater for gzip (with its header and trailer), zlib or raw deflate. */
static int zlib_start(struct slp__inflater *z, char *msg, size_t msglen)
{
    int wbits = z->kind == SLP_COMP_GZIP   ? 16 + MAX_WBITS
                : z->kind == SLP_COMP_ZLIB ? MAX_WBITS
                                           : -MAX_WBITS;
    int ret = inflateInit2(&z->zs, wbits);
    if (ret != Z_OK) {
        slp__errf(msg, msglen, "%s: cannot start inflating (%s)", z->dname,
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
    const struct decoder *d = decoder_of(z->kind);
    if (!d || !d->read || !z->live) {
        *got = 0;
        slp__errf(msg, msglen, "%s: the inflater was not started", z->dname);
        return SL_EINTERNAL;
    }
    return d->read(z, out, want, got, msg, msglen);
}

/* zlib's read: up to want bytes, a gzip member's end handled by member_end. */
static int zlib_read(struct slp__inflater *z, void *out, size_t want, size_t *got, char *msg,
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
    const struct decoder *d = decoder_of(z->kind);
    if (d && d->end) {
        d->end(z);
    }
    z->live = 0;
}

static void zlib_end(struct slp__inflater *z)
{
    if (z->live) {
        inflateEnd(&z->zs);
    }
}

/* ---- zstd (RFC 8878) ---- */

/* What a zstd frame header says (RFC 8878 section 3.1.1.1). */
struct zstd_frame {
    uint64_t window;    /* Window_Size in bytes */
    long long declared; /* Frame_Content_Size, -1 when absent */
    int single;         /* Single_Segment_flag: the window is the content size */
    uint32_t dict;      /* Dictionary_ID, 0 for none */
};

/* Results of zstd_header besides 0. */
enum { ZH_TRUNCATED = 1, ZH_NOT_ZSTD, ZH_SKIPPABLE, ZH_RESERVED, ZH_TOO_BIG };

/* Little-endian n-byte value at p. */
static uint64_t le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) {
        v = v << 8 | p[i];
    }
    return v;
}

/* Parses the frame header at in[0..len) into *f: 0, or a ZH_* reason. */
static int zstd_header(const unsigned char *in, size_t len, struct zstd_frame *f)
{
    static const unsigned char magic[4] = {0x28, 0xb5, 0x2f, 0xfd};
    static const int did_bytes[4] = {0, 1, 2, 4};
    memset(f, 0, sizeof *f);
    f->declared = -1;
    if (len == 0) {
        return ZH_TRUNCATED;
    }
    if (len >= 4 && (le(in, 4) & 0xfffffff0u) == 0x184d2a50u) {
        return ZH_SKIPPABLE; /* magic 0x184D2A5? (section 3.1.2) */
    }
    if (memcmp(in, magic, len < 4 ? len : 4) != 0) {
        return ZH_NOT_ZSTD;
    }
    if (len < 5) {
        return ZH_TRUNCATED;
    }
    unsigned fhd = in[4];
    int fcs_flag = (int)(fhd >> 6);
    f->single = (int)(fhd >> 5) & 1;
    if (fhd & 0x08) {
        return ZH_RESERVED;
    }
    int fcs_bytes = fcs_flag == 0 ? f->single : 1 << fcs_flag;
    int did = did_bytes[fhd & 3];
    size_t need = 5 + (size_t)!f->single + (size_t)did + (size_t)fcs_bytes;
    if (len < need) {
        return ZH_TRUNCATED;
    }
    size_t at = 5;
    if (!f->single) {
        unsigned wd = in[at++];
        uint64_t base = (uint64_t)1 << (10 + (wd >> 3));
        f->window = base + (base / 8) * (wd & 7);
    }
    f->dict = (uint32_t)le(in + at, did);
    at += (size_t)did;
    if (fcs_bytes) {
        uint64_t v = le(in + at, fcs_bytes) + (fcs_bytes == 2 ? 256 : 0);
        if (v > (uint64_t)LLONG_MAX) {
            return ZH_TOO_BIG;
        }
        f->declared = (long long)v;
        if (f->single) {
            f->window = v;
        }
    }
    return 0;
}

/* Checks the frame header of in[0..len) as the policies of this file say: 0 with *f, or an
 * SL_E* code with a message naming dname. */
static int zstd_check(const unsigned char *in, size_t len, struct zstd_frame *f, const char *dname,
                      char *msg, size_t msglen)
{
    switch (zstd_header(in, len, f)) {
    case 0:
        break;
    case ZH_TRUNCATED:
        slp__errf(msg, msglen, "%s: zstd frame is truncated (the input ends in its header)", dname);
        return SL_EMALFORMED;
    case ZH_NOT_ZSTD:
        slp__errf(msg, msglen, "%s: not a zstd frame (no 28 b5 2f fd magic)", dname);
        return SL_EMALFORMED;
    case ZH_SKIPPABLE:
        slp__errf(msg, msglen, "%s: skippable zstd frames are not accepted (one zstd frame only)",
                  dname);
        return SL_EMALFORMED;
    case ZH_RESERVED:
        slp__errf(msg, msglen, "%s: corrupt zstd frame header (reserved bit set)", dname);
        return SL_EMALFORMED;
    default:
        slp__errf(msg, msglen, "%s: zstd frame declares an impossible content size", dname);
        return SL_ETOOLARGE;
    }
    if (f->dict) {
        slp__errf(msg, msglen, "%s: zstd frame needs dictionary %u (not supported)", dname,
                  (unsigned)f->dict);
        return SL_EMALFORMED;
    }
    if (!f->single && f->window > SLP__ZSTD_WINDOW_MAX) {
        slp__errf(msg, msglen,
                  "%s: zstd frame asks for a window of %llu bytes, over the %llu accepted "
                  "(RFC 9659; compress with a level below 20 and without --long)",
                  dname, (unsigned long long)f->window, (unsigned long long)SLP__ZSTD_WINDOW_MAX);
        return SL_ETOOLARGE;
    }
    return 0;
}

static int zstd_start(struct slp__inflater *z, char *msg, size_t msglen)
{
    struct zstd_frame f;
    int rc = zstd_check(z->in, z->len, &f, z->dname, msg, msglen);
    if (rc) {
        return rc;
    }
    z->declared = f.declared;
    z->zd = ZSTD_createDCtx();
    if (!z->zd) {
        slp__errf(msg, msglen, "%s: out of memory for the zstd decoder", z->dname);
        return SL_ENOMEM;
    }
    /* the window was checked above; a single-segment frame's may pass zstd's default limit */
    ZSTD_DCtx_setParameter(z->zd, ZSTD_d_windowLogMax, sizeof(size_t) == 8 ? 31 : 30);
    z->live = 1;
    return 0;
}

/* ZSTD_decompressStream until want bytes, the frame's end (then nothing may follow) or an
 * error. Output space left after a call with all input taken means the input is used up. */
static int zstd_read(struct slp__inflater *z, void *out, size_t want, size_t *got, char *msg,
                     size_t msglen)
{
    ZSTD_outBuffer o = {out, want, 0};
    int rc = 0;
    while (o.pos < want && !z->ended) {
        ZSTD_inBuffer i = {z->in, z->len, z->fed};
        size_t out_before = o.pos, in_before = i.pos;
        size_t r = ZSTD_decompressStream(z->zd, &o, &i);
        z->fed = i.pos;
        z->produced += o.pos - out_before;
        if (ZSTD_isError(r)) {
            if (ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation) {
                slp__errf(msg, msglen, "%s: out of memory while inflating", z->dname);
                rc = SL_ENOMEM;
            } else {
                slp__errf(msg, msglen, "%s: corrupt zstd frame: %s", z->dname,
                          ZSTD_getErrorName(r));
                rc = SL_EMALFORMED;
            }
            break;
        }
        if (r == 0 && z->declared >= 0 && z->produced != (unsigned long long)z->declared) {
            /* libzstd 1.5.4 ends some frames short of their Frame_Content_Size unflagged */
            slp__errf(msg, msglen, "%s: corrupt zstd frame: it declares %lld bytes and holds %llu",
                      z->dname, z->declared, z->produced);
            rc = SL_EMALFORMED;
            break;
        }
        if (r == 0) {
            size_t left = z->len - z->fed;
            if (left) {
                slp__errf(msg, msglen,
                          "%s: %zu byte%s after the end of the zstd frame (one frame only, "
                          "nothing after it)",
                          z->dname, left, left == 1 ? "" : "s");
                rc = SL_EMALFORMED;
                break;
            }
            z->ended = 1;
            break;
        }
        if ((o.pos < want && i.pos == z->len) || (o.pos == out_before && i.pos == in_before)) {
            slp__errf(msg, msglen,
                      "%s: zstd frame is truncated (the input ends before the frame does)",
                      z->dname);
            rc = SL_EMALFORMED;
            break;
        }
    }
    *got = o.pos;
    return rc;
}

static void zstd_end(struct slp__inflater *z)
{
    ZSTD_freeDCtx(z->zd); /* NULL is fine */
    z->zd = NULL;
}

/* One ZSTD_decompressDCtx call: 1 when in is exactly one acceptable frame declaring size bytes
 * that decodes to them, else 0 (the streaming decoder then decides). */
static int zstd_whole(const unsigned char *in, size_t len, void *out, size_t size)
{
    struct zstd_frame f;
    char msg[8];
    if (zstd_check(in, len, &f, "", msg, sizeof msg) != 0 || f.declared < 0 ||
        (unsigned long long)f.declared != (unsigned long long)size ||
        ZSTD_findFrameCompressedSize(in, len) != len) {
        return 0;
    }
    ZSTD_DCtx *d = ZSTD_createDCtx();
    if (!d) {
        return 0;
    }
    size_t r = ZSTD_decompressDCtx(d, out, size, in, len);
    ZSTD_freeDCtx(d);
    return !ZSTD_isError(r) && r == size;
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
    if (!rc && z.declared >= 0 && (unsigned long long)z.declared != expected) {
        slp__errf(msg, msglen, "%s: expected %zu bytes, the zstd frame declares %lld", name,
                  expected, z.declared);
        rc = SL_ESIZE;
    }
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
    if (!rc && z.declared >= 0 && (unsigned long long)z.declared > out->max - out->len) {
        /* refused at the frame header: not a byte is decoded */
        slp__errf(msg, msglen, "%s inflates to more than %zu bytes (the zstd frame declares %lld)",
                  name, out->max, z.declared);
        rc = SL_ETOOLARGE;
    }
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
