/* fmt_raw.c - wire format "raw" (README "Shapes and layouts", openapi ArrayObject): the
 * little-endian C-order bytes of an array whose "dtype" and "shape" are given, as base64 in "data"
 * or the bytes of a multipart "part", possibly compressed. The byte count must be exactly what
 * dtype and shape say. */
#include <stdlib.h>

#include "array_internal.h"

/* The raw bytes of part r->pt (inflated if compressed) into a new buffer of exactly nbytes. */
static int raw_from_part(struct slp__areq *r, size_t nbytes, unsigned char **bufp)
{
    const struct slp_part *p = r->pt;
    if (r->comp == SLP_COMP_NONE && p->len != nbytes) {
        slp__errf(r->msg, r->msglen, "%s: expected %zu bytes, got %zu in part '%.64s'%s", r->name,
                  nbytes, p->len, p->name, slp__gzip_hint(r));
        return SL_ESIZE;
    }
    unsigned char *buf = slp__alloc_array(r, nbytes);
    if (!buf) {
        return SL_ENOMEM;
    }
    int rc = slp__inflate_exact(p->data, p->len, r->comp, buf, nbytes, r->name, r->dpath, r->msg,
                                r->msglen);
    if (rc) {
        slp__free_array(r, buf);
        return rc;
    }
    *bufp = buf;
    return 0;
}

/* Format raw: little-endian C-order bytes of the required dtype and shape, base64 in "data" or
 * a part, maybe compressed. */
int slp__fmt_raw(struct slp__areq *r, struct slp_array *out)
{
    if (!r->has_dtype) {
        slp__errf(r->msg, r->msglen, "%s.dtype: required for format 'raw'", r->name);
        return SL_EINVAL;
    }
    if (!r->has_shape) {
        slp__errf(r->msg, r->msglen, "%s.shape: required for format 'raw'", r->name);
        return SL_EINVAL;
    }
    int rc = r->pt ? 0 : slp__need_string_data(r);
    int64_t numel = 0;
    size_t nbytes = 0;
    if (!rc) {
        rc = slp__check_size(r, r->shp, r->ndim, r->dt, &numel, &nbytes);
    }
    if (rc) {
        return rc;
    }
    const char *s = NULL;
    size_t slen = 0;
    unsigned char *buf = NULL;
    if (r->pt) {
        rc = raw_from_part(r, nbytes, &buf);
    } else if (r->comp == SLP_COMP_NONE) {
        size_t have = 0;
        rc = slp__data_string(r, &s, &slen);
        if (!rc) {
            rc = slp__base64_measure(s, slen, &have, r->dpath, r->msg, r->msglen);
        }
        if (rc) {
            return rc;
        }
        if (have != nbytes) {
            slp__errf(r->msg, r->msglen, "%s: expected %zu bytes, got %zu", r->name, nbytes, have);
            return SL_ESIZE;
        }
        buf = slp__alloc_array(r, nbytes);
        if (!buf) {
            return SL_ENOMEM;
        }
        rc = slp__base64_decode_range(s, slen, 0, nbytes, buf, r->dpath, r->msg, r->msglen);
    } else {
        unsigned char *cbuf = NULL;
        size_t clen = 0;
        rc = slp__decode_compressed(r, slp__compressed_cap(r->lim->max_array_bytes), &cbuf, &clen);
        if (rc) {
            return rc;
        }
        buf = slp__alloc_array(r, nbytes);
        rc = buf ? slp__inflate_exact(cbuf, clen, r->comp, buf, nbytes, r->name, r->dpath, r->msg,
                                      r->msglen)
                 : SL_ENOMEM;
        slp__free_array(r, cbuf);
    }
    if (rc) {
        slp__free_array(r, buf);
        return rc;
    }
    if (slp__host_is_big()) {
        slp__byteswap(buf, (size_t)numel, sl_dtype_size(r->dt));
    }
    slp__array_set(out, buf, buf, r->dt, r->ndim, r->shp);
    return 0;
}
