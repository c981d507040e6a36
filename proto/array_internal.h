/* array_internal.h - internals shared by proto/array.c, base64.c, inflate.c, npy.c and rle.c.
 * Nothing here is part of the proto/ API; see array.h for that.
 */
#ifndef SLP_ARRAY_INTERNAL_H
#define SLP_ARRAY_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* const next_in: the inflater reads a borrowed const buffer */
#ifndef ZLIB_CONST
#define ZLIB_CONST
#endif
#include <zlib.h>

#include "array.h"
#include "segloss.h"

#if defined(__GNUC__) || defined(__clang__)
#define SLP__PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define SLP__PRINTF(fmt, args)
#endif

/* Longest .npy header (the dict plus its padding) accepted, in bytes; v1 cannot say more. */
#define SLP__NPY_MAX_HEADER 65535u
/* Bytes that always hold the complete .npy preamble (magic, version, header length). */
#define SLP__NPY_PREAMBLE 12u

/* Writes a printf-style message into msg (msglen bytes, always terminated; NULL/0 is fine). */
void slp__errf(char *msg, size_t msglen, const char *fmt, ...) SLP__PRINTF(3, 4);

/* Returns lim, or def filled with the defaults when lim is NULL (the API's "NULL: defaults"). */
const struct slp_limits *slp__limits_or_default(const struct slp_limits *lim,
                                                struct slp_limits *def);

/* 1 when the host stores integers big-endian. */
int slp__host_is_big(void);
/* Reverses the bytes of each of the n items of itemsize bytes at buf, in place. */
void slp__byteswap(void *buf, size_t n, size_t itemsize);

/* ---- base64 ---- */

/* Checks the length and '=' padding of base64 text in[0..len) (characters are checked while
 * decoding) and sets *out_len to its decoded byte count. Returns 0 or SL_EMALFORMED. */
int slp__base64_measure(const char *in, size_t len, size_t *out_len, const char *name, char *msg,
                        size_t msglen);

/* Decodes decoded bytes [start, start + nbytes) of in (already measured; the range must lie
 * within its decoded length) into out. Returns 0 or SL_EMALFORMED naming the first bad
 * character's offset in in. */
int slp__base64_decode_range(const char *in, size_t len, size_t start, size_t nbytes,
                             unsigned char *out, const char *name, char *msg, size_t msglen);

/* ---- bounded inflate ---- */

/* A streaming inflater over one in-memory compressed buffer (borrowed). */
struct slp__inflater {
    z_stream zs;
    const unsigned char *in;
    size_t len;
    size_t fed;        /* bytes of in handed to zlib so far */
    int kind;          /* resolved: SLP_COMP_GZIP, SLP_COMP_ZLIB or SLP_COMP_DEFLATE */
    int live;          /* inflateInit2 succeeded; inflateEnd is due */
    int ended;         /* the stream (the last gzip member) ended exactly at the end of in */
    const char *name;  /* array name for size messages ("prediction") */
    const char *dname; /* path of the bytes for stream messages ("prediction.data") */
};

/* Starts inflating in[0..len) as comp (AUTO is resolved here by the header). Returns 0, or
 * SL_EMALFORMED / SL_EINVAL / SL_ENOMEM; either way call slp__inflater_end. */
int slp__inflater_init(struct slp__inflater *z, const unsigned char *in, size_t len,
                       enum slp_compression comp, const char *name, const char *dname, char *msg,
                       size_t msglen);

/* Inflates up to want bytes into out and sets *got; *got < want means the stream ended cleanly
 * (no trailing input). Returns 0, or SL_EMALFORMED (corrupt or truncated stream, trailing
 * garbage) / SL_ENOMEM with a message. */
int slp__inflater_read(struct slp__inflater *z, void *out, size_t want, size_t *got, char *msg,
                       size_t msglen);

/* Checks that the stream ends here: sets *more = 1 if it would yield at least one more byte
 * (that byte is inflated and dropped), else 0. Returns 0 or an error as slp__inflater_read. */
int slp__inflater_at_end(struct slp__inflater *z, int *more, char *msg, size_t msglen);

/* Releases zlib state. Safe on a zeroed or failed inflater. */
void slp__inflater_end(struct slp__inflater *z);

/* slp_inflate_exact with two names: name for size messages, dname for stream messages. */
int slp__inflate_exact(const unsigned char *in, size_t len, enum slp_compression comp, void *out,
                       size_t expected, const char *name, const char *dname, char *msg,
                       size_t msglen);

/* Lower-case name of a resolved compression kind ("gzip"). */
const char *slp__compression_name(int kind);

/* ---- npy ---- */

struct slp__npy_info {
    enum sl_dtype dtype;
    int ndim;
    int64_t shape[SL_MAX_DIMS];
    int fortran;        /* fortran_order: True */
    int wire_big;       /* elements are stored big-endian ('>' with itemsize > 1) */
    size_t data_offset; /* bytes before the first element */
    char descr[24];     /* the descr string as written (truncated), for messages */
};

/* Reads the preamble in buf[0..len) (len >= SLP__NPY_PREAMBLE, or the whole file if shorter):
 * magic, version, header length. Sets *data_offset. Returns 0, SL_EMALFORMED, SL_EUNSUPPORTED. */
int slp__npy_preamble(const unsigned char *buf, size_t len, size_t *data_offset, const char *name,
                      char *msg, size_t msglen);

/* Parses the whole header in buf[0..len) (len >= its data_offset). Accepts any byte order and
 * reports it in info->wire_big. Returns 0, SL_EMALFORMED, SL_EUNSUPPORTED or SL_EINVAL. */
int slp__npy_parse(const unsigned char *buf, size_t len, struct slp__npy_info *info,
                   const char *name, char *msg, size_t msglen);

/* Copies the Fortran-order array src of the given shape into C order at dst (no overlap). */
void slp__fortran_to_c(const void *src, void *dst, size_t itemsize, int ndim, const int64_t *shape);

/* Writes "[a, b, c]" into buf (always terminated). */
void slp__format_shape(const int64_t *shape, int ndim, char *buf, size_t len);

/* ---- mask formats: rle and coco_rle (rle.c) ---- */

/* One array object of format rle or coco_rle as array.c has read it: keys type-checked (JSON
 * strings for part, compression and dtype), shape parsed. Every pointer is borrowed. */
struct slp__mask_req {
    const char *name;  /* "target" */
    const char *dpath; /* "target.data", for messages */
    const struct slp_limits *lim;
    const json_t *data, *part, *compression, *dtype; /* NULL when absent */
    int has_shape;
    int ndim;
    int64_t shape[SL_MAX_DIMS];
};

/* Decodes Kaggle EncodedPixels (one string, or a list of one per image) into a new 0/1 mask
 * [N, H, W] (uint8, or bool when dtype says so) in out, which the caller frees. Returns 0, or
 * SL_EINVAL (keys, bad token), SL_ESHAPE (string count), SL_ERANGE (zero, odd count, unsorted,
 * overlapping or out-of-image pairs), SL_ETOOLARGE or SL_ENOMEM, with a message. */
int slp__decode_rle(const struct slp__mask_req *m, struct slp_array *out, char *msg, size_t msglen);

/* Decodes COCO RLE (one {"size", "counts"} object or a list, counts as a list or maskApi.c's
 * compressed string) into a new 0/1 mask [N, h, w] in out, which the caller frees. Returns 0, or
 * SL_EINVAL, SL_ESHAPE (sizes differ, shape disagrees), SL_EMALFORMED (bad compressed string),
 * SL_ERANGE (negative counts, sum other than h*w), SL_ETOOLARGE or SL_ENOMEM. */
int slp__decode_coco_rle(const struct slp__mask_req *m, struct slp_array *out, char *msg,
                         size_t msglen);

#endif /* SLP_ARRAY_INTERNAL_H */
