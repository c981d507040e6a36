/* fmt_npy.c - wire format "npy" (README "Shapes and layouts", openapi ArrayObject): a whole .npy
 * file (v1/v2/v3, C or Fortran order, either byte order) as base64 in "data" or the bytes of a
 * multipart "part", possibly compressed. The header (npy.c parses it) gives dtype and shape; the
 * spec's optional "dtype" and "shape" must agree with it. Elements end up host-order, C-order and
 * aligned. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "array_internal.h"

/* The spec's optional dtype and shape must agree with the header. */
static int npy_agree(struct slp__areq *r, const struct slp__npy_info *info)
{
    if (r->has_dtype && r->dt == SL_DT_BF16) {
        slp__errf(r->msg, r->msglen,
                  "%s.dtype: .npy has no bfloat16 (NumPy lacks the dtype): send the array's "
                  "bytes as format 'raw' with \"dtype\": \"bfloat16\" and its \"shape\"",
                  r->name);
        return SL_EINVAL;
    }
    if (r->has_dtype && r->dt != info->dtype) {
        slp__errf(r->msg, r->msglen, "%s.dtype: '%s' does not match the npy header's '%s' (%s)",
                  r->name, sl_dtype_name(r->dt), info->descr, sl_dtype_name(info->dtype));
        return SL_EINVAL;
    }
    if (r->has_shape && (r->ndim != info->ndim ||
                         memcmp(r->shp, info->shape, sizeof(int64_t) * (size_t)info->ndim) != 0)) {
        char s1[160], s2[160];
        sl_format_shape(r->shp, r->ndim, s1, sizeof s1);
        sl_format_shape(info->shape, info->ndim, s2, sizeof s2);
        slp__errf(r->msg, r->msglen, "%s.shape: %s does not match the npy header's shape %s",
                  r->name, s1, s2);
        return SL_EINVAL;
    }
    return 0;
}

/* After a .npy header of off bytes in a file of `have`: the header agrees with the spec's dtype
 * and shape, fits the limits, and exactly the data bytes follow (sets *nbytes, *numel); then
 * *buf is a new array buffer of *nbytes for the caller to fill (and own). */
static int npy_body_buffer(struct slp__areq *r, const struct slp__npy_info *info, size_t off,
                           size_t have, size_t *nbytes, int64_t *numel, unsigned char **buf)
{
    int rc = npy_agree(r, info);
    if (!rc) {
        rc = slp__check_size(r, info->shape, info->ndim, info->dtype, numel, nbytes);
    }
    if (rc) {
        return rc;
    }
    if (have - off != *nbytes) {
        slp__errf(r->msg, r->msglen, "%s: expected %zu data bytes after the npy header, got %zu",
                  r->name, *nbytes, have - off);
        return SL_ESIZE;
    }
    *buf = slp__alloc_array(r, *nbytes);
    return *buf ? 0 : SL_ENOMEM;
}

/* SL_EMALFORMED: the file ends after have of the header's off bytes. */
static int npy_truncated(struct slp__areq *r, size_t have, size_t off)
{
    slp__errf(r->msg, r->msglen, "%s: npy header is truncated (%zu of %zu bytes)", r->dpath, have,
              off);
    return SL_EMALFORMED;
}

/* Parses the complete header in hdr[0..len), naming the array's data in messages. */
static int npy_header_from(struct slp__areq *r, const unsigned char *hdr, size_t len,
                           struct slp__npy_info *info)
{
    return slp__npy_parse(hdr, len, info, r->dpath, r->msg, r->msglen);
}

static int decode_npy_plain(struct slp__areq *r, struct slp__npy_info *info, unsigned char **bufp,
                            size_t *nbytes, int64_t *numel)
{
    const char *s = NULL;
    size_t slen = 0;
    size_t have = 0;
    unsigned char pre[SLP_NPY_PREAMBLE];
    size_t off = 0;
    int rc = slp__data_string(r, &s, &slen);
    if (!rc) {
        rc = slp__base64_measure(s, slen, &have, r->dpath, r->msg, r->msglen);
    }
    if (rc) {
        return rc;
    }
    size_t npre = have < sizeof pre ? have : sizeof pre;
    rc = slp__base64_decode_range(s, slen, 0, npre, pre, r->dpath, r->msg, r->msglen);
    if (!rc) {
        rc = slp_npy_preamble(pre, npre, &off, r->dpath, r->msg, r->msglen);
    }
    if (rc) {
        return rc;
    }
    if (off > have) {
        return npy_truncated(r, have, off);
    }
    if (off <= npre) {
        rc = npy_header_from(r, pre, off, info);
    } else {
        unsigned char *hdr = slp__alloc_array(r, off);
        if (!hdr) {
            return SL_ENOMEM;
        }
        rc = slp__base64_decode_range(s, slen, 0, off, hdr, r->dpath, r->msg, r->msglen);
        if (!rc) {
            rc = npy_header_from(r, hdr, off, info);
        }
        slp__free_array(r, hdr);
    }
    unsigned char *buf = NULL;
    if (!rc) {
        rc = npy_body_buffer(r, info, off, have, nbytes, numel, &buf);
    }
    if (rc) {
        return rc;
    }
    rc = slp__base64_decode_range(s, slen, off, *nbytes, buf, r->dpath, r->msg, r->msglen);
    if (rc) {
        slp__free_array(r, buf);
        return rc;
    }
    *bufp = buf;
    return 0;
}

/* The uncompressed .npy file in part r->pt: parse its header, copy exactly the data. */
static int decode_npy_part(struct slp__areq *r, struct slp__npy_info *info, unsigned char **bufp,
                           size_t *nbytes, int64_t *numel)
{
    const unsigned char *p = r->pt->data;
    size_t have = r->pt->len;
    size_t off = 0;
    int rc = 0;
    if (have == 0) {
        slp__errf(r->msg, r->msglen, "%s: the part is empty (expected a .npy file)", r->dpath);
        return SL_EMALFORMED;
    }
    if (*slp__gzip_hint(r)) {
        slp__errf(r->msg, r->msglen, "%s: not a .npy file (no \\x93NUMPY magic)%s", r->dpath,
                  slp__gzip_hint(r));
        return SL_EMALFORMED;
    }
    rc = slp_npy_preamble(p, have, &off, r->dpath, r->msg, r->msglen);
    if (!rc && off > have) {
        rc = npy_truncated(r, have, off);
    }
    if (!rc) {
        rc = npy_header_from(r, p, off, info);
    }
    unsigned char *buf = NULL;
    if (!rc) {
        rc = npy_body_buffer(r, info, off, have, nbytes, numel, &buf);
    }
    if (rc) {
        return rc;
    }
    memcpy(buf, p + off, *nbytes);
    *bufp = buf;
    return 0;
}

/* The compressed stream holds the whole .npy file: its header is inflated with zlib (it says how
 * many bytes follow), then the whole file goes into one buffer of exactly header + data bytes -
 * with libdeflate in one call when it can, else by going on with zlib, whose messages then say
 * what is wrong - so that the elements stay where they were inflated: *bufp holds the file, the
 * data starts at *data_off. */
static int inflate_npy(struct slp__areq *r, struct slp__inflater *z, struct slp__npy_info *info,
                       unsigned char **bufp, size_t *data_off, size_t *nbytes, int64_t *numel)
{
    unsigned char pre[SLP_NPY_PREAMBLE];
    size_t got = 0, off = 0;
    int rc = slp__inflater_read(z, pre, sizeof pre, &got, r->msg, r->msglen);
    if (!rc) {
        rc = slp_npy_preamble(pre, got, &off, r->dpath, r->msg, r->msglen);
    }
    if (rc) {
        return rc;
    }
    if (off <= got) {
        /* too short to hold a valid dict; the parser says what is wrong */
        rc = npy_header_from(r, pre, off, info);
        if (!rc) {
            slp__errf(r->msg, r->msglen, "%s: npy header is too short", r->dpath);
            rc = SL_EMALFORMED;
        }
        return rc;
    }
    unsigned char *hdr = malloc(off);
    if (!hdr) {
        slp__errf(r->msg, r->msglen, "%s: out of memory", r->name);
        return SL_ENOMEM;
    }
    memcpy(hdr, pre, got);
    size_t got2 = 0;
    rc = slp__inflater_read(z, hdr + got, off - got, &got2, r->msg, r->msglen);
    if (!rc && got + got2 < off) {
        rc = npy_truncated(r, got + got2, off);
    }
    if (!rc) {
        rc = npy_header_from(r, hdr, off, info);
    }
    free(hdr);
    if (!rc) {
        rc = npy_agree(r, info);
    }
    if (!rc) {
        rc = slp__check_size(r, info->shape, info->ndim, info->dtype, numel, nbytes);
    }
    if (rc) {
        return rc;
    }
    if (*nbytes > SIZE_MAX - off) {
        slp__errf(r->msg, r->msglen, "%s: out of memory for %zu bytes", r->name, *nbytes);
        return SL_ENOMEM;
    }
    if (z->declared >= 0 && (unsigned long long)z->declared != off + *nbytes) {
        /* a zstd frame header's content size: refused before the data is decoded */
        slp__errf(r->msg, r->msglen,
                  "%s: expected %zu data bytes after the npy header, the zstd frame declares %lld "
                  "bytes for the whole file (%zu of header)",
                  r->name, *nbytes, z->declared, off);
        return SL_ESIZE;
    }
    unsigned char *buf = slp__alloc_array(r, off + *nbytes);
    if (!buf) {
        return SL_ENOMEM;
    }
    *data_off = off;
    if (slp__inflate_whole(z->in, z->len, z->kind, buf, off + *nbytes) == 1) {
        *bufp = buf;
        return 0;
    }
    /* zlib from the end of the header on decides: exactly the data, then the stream's end */
    int more = 0;
    rc = slp__inflater_read(z, buf + off, *nbytes, &got, r->msg, r->msglen);
    if (!rc && got < *nbytes) {
        slp__errf(r->msg, r->msglen,
                  "%s: expected %zu data bytes after the npy header, got %zu after inflating",
                  r->name, *nbytes, got);
        rc = SL_ESIZE;
    }
    if (!rc) {
        rc = slp__inflater_at_end(z, &more, r->msg, r->msglen);
    }
    if (!rc && more) {
        slp__errf(r->msg, r->msglen,
                  "%s: expected %zu data bytes after the npy header, got at least %zu after "
                  "inflating (stopped there)",
                  r->name, *nbytes, *nbytes + 1);
        rc = SL_ESIZE;
    }
    if (rc) {
        slp__free_array(r, buf);
        return rc;
    }
    *bufp = buf;
    return 0;
}

/* Format npy: a .npy file as base64 in "data" or a part, maybe compressed. */
int slp__fmt_npy(struct slp__areq *r, struct slp_array *out)
{
    int rc = r->pt ? 0 : slp__need_string_data(r);
    if (rc) {
        return rc;
    }
    struct slp__npy_info info;
    unsigned char *buf = NULL;
    size_t off = 0; /* the data's offset in buf */
    size_t nbytes = 0;
    int64_t numel = 0;
    memset(&info, 0, sizeof info);
    if (r->comp == SLP_COMP_NONE) {
        rc = r->pt ? decode_npy_part(r, &info, &buf, &nbytes, &numel)
                   : decode_npy_plain(r, &info, &buf, &nbytes, &numel);
    } else {
        unsigned char *cbuf = NULL;
        const unsigned char *cin = NULL;
        size_t clen = 0;
        size_t lim = r->lim->max_array_bytes;
        size_t cap = slp__compressed_cap(
            lim > SIZE_MAX - 2 * SLP__NPY_MAX_HEADER ? SIZE_MAX : lim + 2 * SLP__NPY_MAX_HEADER);
        if (r->pt) {
            /* a part's bytes are the compressed stream as they are (no base64) */
            cin = r->pt->data;
            clen = r->pt->len;
        } else {
            rc = slp__decode_compressed(r, cap, &cbuf, &clen);
            cin = cbuf;
        }
        if (!rc) {
            struct slp__inflater z;
            rc = slp__inflater_init(&z, cin, clen, r->comp, r->name, r->dpath, r->msg, r->msglen);
            if (!rc) {
                rc = inflate_npy(r, &z, &info, &buf, &off, &nbytes, &numel);
            }
            slp__inflater_end(&z);
            slp__free_array(r, cbuf);
        }
    }
    if (rc) {
        return rc;
    }
    unsigned char *data = buf + off;
    size_t isz = sl_dtype_size(info.dtype);
    if (info.wire_big != slp__host_is_big() && isz > 1) {
        slp__byteswap(data, (size_t)numel, isz);
    }
    int spread = 0; /* dimensions longer than 1: with fewer than two, both orders agree */
    for (int k = 0; k < info.ndim; k++) {
        spread += info.shape[k] > 1;
    }
    if (info.fortran && spread > 1) {
        unsigned char *c = slp__alloc_array(r, nbytes);
        if (!c) {
            slp__free_array(r, buf);
            return SL_ENOMEM;
        }
        slp__fortran_to_c(data, c, isz, info.ndim, info.shape);
        slp__free_array(r, buf);
        buf = c;
        data = c;
    } else if ((uintptr_t)data % isz != 0) {
        /* a header whose length is no multiple of the item size: align the elements (malloc's
         * alignment suits every dtype) */
        memmove(buf, data, nbytes);
        data = buf;
    }
    slp__array_set(out, buf, data, info.dtype, info.ndim, info.shape);
    return 0;
}
