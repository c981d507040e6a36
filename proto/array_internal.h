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

/* Writes a printf-style message into msg (msglen bytes, always terminated; NULL/0 is fine). */
void slp__errf(char *msg, size_t msglen, const char *fmt, ...) SLP__PRINTF(3, 4);

/* Returns lim, or def filled with the defaults when lim is NULL (the API's "NULL: defaults"). */
const struct slp_limits *slp__limits_or_default(const struct slp_limits *lim,
                                                struct slp_limits *def);

/* 1 when the host stores integers big-endian. */
int slp__host_is_big(void);
/* Reverses the bytes of each of the n items of itemsize bytes at buf, in place. */
void slp__byteswap(void *buf, size_t n, size_t itemsize);

/* ---- JSON texts parsed through their skeleton (jscan.c) ---- */

/* A string value of a "data" or "counts" key (or in a list under one) this long or longer, in
 * bytes between its quotes, is left out of jansson's parse. Measured on 8 MB of such strings:
 * jansson spends 7.5-13 ns a byte, a left-out string ~290 ns in all (its placeholder, table entry
 * and lookup), so they break even at ~35 bytes; at 64 the skeleton is 2x faster, at 256 7x, at
 * 4 KiB 65x. */
#define SLP__JSON_LONG 64

/* A string value left out of the parse: its contents, still escaped, are text[off, off + len). */
struct slp__jstr {
    size_t off, len;
    int escaped;      /* has backslash escapes (all valid; no \u0000, no surrogates) */
    char *unesc;      /* the unescaped bytes, made on first use (owned), or NULL */
    size_t unesc_len; /* their length */
};

/* A JSON text and the side table of the strings its skeleton leaves out. */
struct slp__jdoc {
    const char *text; /* the JSON text (borrowed: it must outlive the doc and every string
                         slp__jdoc_string returns) */
    size_t len;
    struct slp__jstr *strs; /* strs[k] is the string of placeholder k (owned) */
    size_t n, cap;
    char *skel; /* the skeleton until slp__json_parse has parsed it (owned), or NULL when no
                   string was left out */
    size_t skel_len;
};

/* Pre-scans the JSON text s[0..len) (borrowed by *doc) in one linear pass: its nesting depth
 * against lim->max_depth and its number of values against lim->max_json_values (0: no limit),
 * and the long string values it leaves out of jansson's parse (jscan.c says which) into *doc
 * with the skeleton to parse instead. A value is counted at each '[', '{' and ',' outside
 * strings, plus 1 for the top-level value: exact for non-empty containers, one too many for
 * each empty one. Malformed JSON passes, for jansson's parse to report. part names the multipart
 * part the text came from in messages (NULL: the body); byte offsets count from 0. Returns 0,
 * or SL_ETOOLARGE / SL_ENOMEM with a message (and *doc freed). */
int slp__json_skeleton(const char *s, size_t len, const struct slp_limits *lim, const char *part,
                       struct slp__jdoc *doc, char *msg, size_t msglen);

/* Parses doc's skeleton (or its text, when nothing was left out) with jansson
 * (JSON_REJECT_DUPLICATES) into a new *root. When the skeleton does not parse, the text is
 * parsed as it is, so that the message is jansson's about the user's own text: "malformed JSON
 * [in part 'NAME'] at line L, column C: ...". Returns 0 or SL_EMALFORMED (400). */
int slp__json_parse(struct slp__jdoc *doc, const char *part, json_t **root, char *msg,
                    size_t msglen);

/* slp__json_skeleton then slp__json_parse; on error *doc is freed and *root is NULL. On success
 * free both: json_decref(*root), slp__jdoc_free(doc). */
int slp__json_load(const char *s, size_t len, const struct slp_limits *lim, const char *part,
                   struct slp__jdoc *doc, json_t **root, char *msg, size_t msglen);

/* The bytes of the JSON string j (borrowed): for a placeholder of doc, the original string's
 * (unescaped once on first use, kept by doc), else jansson's. *s is NOT NUL-terminated for a
 * placeholder; it lives as long as doc's text (or j). doc may be NULL. Returns 0 or SL_ENOMEM. */
int slp__jdoc_string(struct slp__jdoc *doc, const json_t *j, const char **s, size_t *len);

/* Unescapes the contents s[0..len) of a JSON string literal that the scan accepted (only the
 * escapes \" \\ \/ \b \f \n \r \t and \uXXXX outside 0000 and D800..DFFF) into a new
 * buffer *out (malloc'd, not terminated) of *outlen bytes: UTF-8, as jansson decodes it.
 * Returns 0, SL_ENOMEM, or SL_EINTERNAL for an escape outside that set. */
int slp__json_unescape(const char *s, size_t len, char **out, size_t *outlen);

/* Frees what doc owns and zeroes it. NULL and a zeroed doc are fine. */
void slp__jdoc_free(struct slp__jdoc *doc);

/* slp_array_from_json_parts, where the strings of j may be placeholders of doc (NULL: none). */
int slp__array_from_json_doc(const json_t *j, const char *name, const struct slp_limits *lim,
                             const struct slp_parts *parts, struct slp__jdoc *doc,
                             struct slp_array *out, char *msg, size_t msglen);

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

/* Inflates the whole stream in[0..len) of kind (resolved: GZIP, ZLIB or DEFLATE) with libdeflate
 * into out[0..size), size > 0. Returns 1 when it is one complete stream (one gzip member) that
 * inflates to exactly size bytes and ends exactly at the end of in. Returns 0 for anything else -
 * a corrupt, short or long stream, trailing data or another gzip member, a gzip header with a
 * header CRC or a zlib header with a window under 32 KiB (which libdeflate checks less strictly
 * than zlib), out of memory - and the caller inflates with zlib, whose messages and acceptance
 * then decide (out's contents are undefined). */
int slp__inflate_whole(const unsigned char *in, size_t len, int kind, void *out, size_t size);

/* The kind of compression comp is for the stream in[0..len): comp itself, or for AUTO, GZIP or
 * ZLIB by the header; -1 when AUTO finds neither. */
int slp__compression_kind(enum slp_compression comp, const unsigned char *in, size_t len);

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
    struct slp__jdoc *doc; /* where the strings of data live (NULL: all in jansson's tree) */
    const char *name;      /* "target" */
    const char *dpath;     /* "target.data", for messages */
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
