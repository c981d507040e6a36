/* array.h - wire arrays (README "Shapes and layouts", openapi ArrayObject) decoded into owned,
 * C-order, host-order buffers.
 *
 * Formats (one row each in array.c's table): list (flat with shape, or nested), raw, npy
 * (v1/v2/v3, C or Fortran order), each npy/raw base64 or a multipart part, possibly compressed
 * (none, gzip, zlib, deflate, auto, zstd), and the masks rle (Kaggle) and coco_rle. Every byte
 * count is checked exactly: a compressed stream is inflated into exactly the declared size and must
 * end there (the inflater stops at expected + 1 bytes, so a bomb costs nothing).
 *
 * Errors: functions return 0 or a negative SL_E* code of lib/segloss.h, with a message naming
 * the array and the key or index in msg (msglen bytes, always terminated; NULL/0 is fine); out
 * of memory is SL_ENOMEM, never an abort. Ownership: every input is borrowed; a decoded
 * struct slp_array owns its buffer until slp_array_free (NULL is fine), and on error holds
 * nothing.
 */
#ifndef SLP_ARRAY_H
#define SLP_ARRAY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "segloss.h"

struct slp_bufpool;

/* Entries that losses and metrics may each hold: the fixed storage of a parsed request. */
#define SLP_MAX_SPECS 32

/* Limits on one request; over one is SL_ETOOLARGE (HTTP 413) with a message naming the array or
 * key and the seglossd flag that sets the limit. In the fields after max_array_bytes 0 means no
 * limit, up to the storage caps SL_MAX_CLASSES and SLP_MAX_SPECS, which always hold. */
struct slp_limits {
    int64_t max_elements;    /* elements of one array (product of its shape) */
    size_t max_array_bytes;  /* decoded bytes of one array */
    int64_t max_images;      /* N: dim 0 of prediction, of a weight map's target (--max-images) */
    int64_t max_classes;     /* C of multiclass and multilabel, and so the length of a per-class
                                list such as class_weights (--max-classes) */
    int max_depth;           /* JSON nesting depth of a body or multipart spec (--max-spec-depth) */
    int64_t max_json_values; /* JSON values of a body or multipart spec, as counted by
                                slp__json_skeleton (--max-json-values): jansson spends 40+ bytes on
                                each, so this bounds its memory */
    int max_specs;           /* entries of losses, and of metrics (--max-specs) */
    struct slp_bufpool *bufs; /* not a limit: where large decode buffers come from and go back
                                 (bufpool.h; NULL: malloc). Borrowed; outlives the arrays */
};

/* Defaults: 64 Mi elements and 512 MiB per array, 4096 images, 1024 classes, JSON nesting
 * depth 32 and 4 Mi JSON values, 32 losses and 32 metrics; no buffer pool. */
void slp_limits_default(struct slp_limits *lim);

/* A decoded array: t.data points into buf (owned, malloc'd; slp_array_free gives it back to
 * pool, the limits' bufs it was decoded with, or frees it). */
struct slp_array {
    void *buf;
    struct sl_tensor t;
    struct slp_bufpool *pool;
};

enum slp_compression {
    SLP_COMP_NONE,
    SLP_COMP_GZIP,
    SLP_COMP_ZLIB,
    SLP_COMP_DEFLATE,
    SLP_COMP_AUTO,
    SLP_COMP_ZSTD /* one Zstandard frame (RFC 8878) */
};

/* The parts of a multipart/form-data body (borrowed): arrays name them with "part". */
struct slp_part {
    const char *name;
    const unsigned char *data;
    size_t len;
};

struct slp_parts {
    const struct slp_part *items;
    int n;
};

/* Frees a->buf and zeroes *a. NULL is fine. */
void slp_array_free(struct slp_array *a);

/* Decodes the wire array j (an object per openapi.json, or a bare JSON list as shorthand for
 * {"format": "list", "data": [...]}) called name ("prediction", "target", ...) into *out.
 * Returns 0, or a negative SL_E* code with a message naming name and the key or index:
 * SL_EMALFORMED (bad base64, npy header, compressed stream: 400), SL_ESIZE (byte count
 * differs from the declared one: 400), SL_EINVAL/SL_ERANGE (bad key, dtype, shape, list value:
 * 422), SL_ETOOLARGE (over lim: 413), SL_EUNSUPPORTED ("part" outside multipart: 422),
 * SL_ENOMEM. */
int slp_array_from_json(const json_t *j, const char *name, const struct slp_limits *lim,
                        struct slp_array *out, char *msg, size_t msglen);

/* As slp_array_from_json, where "part": "NAME" takes the npy/raw bytes (not base64) of that
 * multipart part; a missing part is SL_EINVAL naming it. parts may be NULL (no multipart). */
int slp_array_from_json_parts(const json_t *j, const char *name, const struct slp_limits *lim,
                              const struct slp_parts *parts, struct slp_array *out, char *msg,
                              size_t msglen);

/* Decodes standard base64 (RFC 4648, '=' padding optional, no whitespace) into a new buffer of
 * at most max_out bytes. Returns 0 and sets *out (malloc'd) and *out_len, or SL_EMALFORMED
 * naming the first bad character offset, or SL_ETOOLARGE. */
int slp_base64_decode(const char *in, size_t len, size_t max_out, unsigned char **out,
                      size_t *out_len, const char *name, char *msg, size_t msglen);

/* Inflates the whole stream in (gzip, zlib, raw deflate, auto = gzip/zlib by header, or one zstd
 * frame: inflate.c says which frames) into
 * out, which must receive exactly expected bytes: fewer, more, or trailing data after the
 * stream's end is SL_ESIZE/SL_EMALFORMED with a message naming name, expected and seen counts. */
int slp_inflate_exact(const unsigned char *in, size_t len, enum slp_compression comp, void *out,
                      size_t expected, const char *name, char *msg, size_t msglen);

/* Bytes that always hold a .npy preamble (magic, version, header length; 10 in v1.0). */
#define SLP_NPY_PREAMBLE 12u

/* Reads the .npy preamble in buf[0..len) (len >= SLP_NPY_PREAMBLE, or the whole file if
 * shorter): magic, version, header length. Sets *data_offset, the bytes of the whole header.
 * Returns 0, SL_EMALFORMED or SL_EUNSUPPORTED with a message naming name. */
int slp_npy_preamble(const unsigned char *buf, size_t len, size_t *data_offset, const char *name,
                     char *msg, size_t msglen);

/* Writes a .npy v1.0 header for host-order elements of dtype and shape (C order, or Fortran
 * order when fortran) into hdr (cap bytes; 512 always suffice): the dict padded with spaces
 * and a newline to a multiple of 64 bytes, as NumPy writes it. Returns its length, or 0 when
 * cap is too small. */
size_t slp_npy_write_header(enum sl_dtype dtype, const int64_t *shape, int ndim, int fortran,
                            char *hdr, size_t cap);

/* Parses a .npy header at the start of buf (len bytes). On success sets dtype, ndim, shape,
 * *fortran and *data_offset (bytes from buf to the first element). Only host-order (on the
 * usual hosts little-endian) or byte-order-free dtypes of the API are accepted ('<f4', '|u1',
 * '|b1', ...). Returns 0, or SL_EMALFORMED (not a .npy header), SL_EUNSUPPORTED (dtype, byte
 * order) or SL_EINVAL (0-d, too many dimensions, a zero dimension) with a message naming name. */
int slp_npy_header(const unsigned char *buf, size_t len, enum sl_dtype *dtype, int *ndim,
                   int64_t shape[SL_MAX_DIMS], int *fortran, size_t *data_offset, const char *name,
                   char *msg, size_t msglen);

#endif /* SLP_ARRAY_H */
