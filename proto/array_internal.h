/* array_internal.h - internals shared by proto/array.c, base64.c, inflate.c, npy.c and fmt_*.c.
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
#include <zstd.h>

#include "array.h"
#include "dynbuf.h"
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
    struct slp__jstr *strs; /* strs[k] is the string of placeholder k: the records of table */
    size_t n;
    struct slp_dynbuf table; /* owns strs; capped at the most strings the text can hold, one
                                per SLP__JSON_LONG bytes */
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

/* A streaming inflater over one in-memory compressed buffer (borrowed): zlib's for gzip, zlib
 * and deflate, libzstd's for one zstd frame (inflate.c's decoder table: one row per kind). */
struct slp__inflater {
    z_stream zs;
    ZSTD_DCtx *zd;      /* zstd: the decoder (NULL for the zlib kinds) */
    long long declared; /* zstd: the content size the frame header declares, -1 when absent */
    unsigned long long produced; /* zstd: bytes decoded so far */
    const unsigned char *in;
    size_t len;
    size_t fed; /* bytes of in handed to the decoder so far */
    int kind;   /* resolved: SLP_COMP_GZIP, SLP_COMP_ZLIB, SLP_COMP_DEFLATE or SLP_COMP_ZSTD */
    int live;   /* the decoder started; its end is due */
    int ended;  /* the stream (the last gzip member) ended exactly at the end of in */
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

/* Inflates the whole stream in[0..len) of kind (resolved: GZIP, ZLIB or DEFLATE) with libdeflate,
 * or ZSTD in one ZSTD_decompressDCtx call when its one frame declares exactly size bytes, into
 * out[0..size), size > 0. Returns 1 when it is one complete stream (one gzip member) that
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

/* The compression called name ("none", "gzip", ..., "zstd": the decoder table's rows) into *c;
 * 0, or -1 when there is no such row. */
int slp__compression_from_name(const char *name, enum slp_compression *c);

/* The name of the decoder table's row i (0, 1, ...), or NULL past its end. */
const char *slp__compression_row(int i);

/* The names of the decoder table's rows as prose into buf (always terminated): "none, gzip,
 * zlib, deflate, auto or zstd". */
void slp__compression_names(char *buf, size_t len);

/* Window sizes of zstd frames always accepted (RFC 8878 section 3.1.1.1.2 asks decoders to
 * support 8 MB; RFC 9659 caps the HTTP "zstd" coding's window there). A larger window is only
 * accepted in a single-segment frame, whose window is its declared size, itself checked
 * against the caller's size or limit. */
#define SLP__ZSTD_WINDOW_MAX ((uint64_t)8 << 20)

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

/* ---- wire formats: the table (array.c) and one decoder file per format (fmt_*.c) ---- */

/* One array object being decoded: its keys as array.c has read them (type-checked: JSON strings
 * for format, part, compression and dtype, a list for shape), then parsed as its format's row
 * says. Every pointer is borrowed. */
struct slp__areq {
    struct slp__jdoc *doc; /* the strings the JSON text's skeleton left out, or NULL */
    const char *name;      /* "prediction" */
    const struct slp_limits *lim;
    char *msg; /* the caller's message buffer (msglen bytes) */
    size_t msglen;
    char dpath[96]; /* "name.data", "name" for the bare-list shorthand, "name (part 'P')" */
    const json_t *format, *data, *part, *compression, *dtype, *shape; /* NULL when absent */
    const struct slp_parts *parts; /* NULL: not a multipart body */
    const struct slp_part *pt;     /* the part named by "part": its bytes replace "data" */
    enum slp_compression comp;     /* parsed "compression" (SLP__FMT_TYPED formats) */
    int has_dtype;                 /* parsed "dtype" (SLP__FMT_TYPED formats) */
    enum sl_dtype dt;
    int has_shape; /* parsed "shape" (every format) */
    int ndim;
    int64_t shp[SL_MAX_DIMS];
};

/* What a format accepts besides "data" (the bits of struct slp__format.accepts):
 *  - SLP__FMT_PART: "part", a multipart part's bytes standing for "data";
 *  - SLP__FMT_COMPRESSION: "compression" other than none;
 *  - SLP__FMT_TYPED: "dtype" any of the API's and "compression" any known name, both parsed by
 *    array.c; without it the decoder checks both itself (the mask formats: uint8 or bool, and no
 *    compression, with their own messages). */
#define SLP__FMT_PART 1u
#define SLP__FMT_COMPRESSION 2u
#define SLP__FMT_TYPED 4u

/* A decoder: the array r describes into *out (owned by the caller after 0). Returns 0 or a
 * negative SL_E* code with a message in r->msg; on error *out is left for the caller to free. */
typedef int slp__format_decode(struct slp__areq *r, struct slp_array *out);

/* One row of the wire-format table (after curl's content_encoding.c writers). */
struct slp__format {
    const char *name;           /* the "format" value */
    slp__format_decode *decode; /* see the fmt_*.c files */
    unsigned accepts;           /* SLP__FMT_* bits */
    const char *data_is;        /* what "data" holds, for messages: "values", "text", "bytes" */
};

/* The table, in the order openapi.json lists the formats; *n its row count. */
const struct slp__format *slp__format_table(int *n);

/* Writes the names of the table's formats whose accepts has every bit of need into buf (always
 * terminated) as prose: "npy, raw, list, rle or coco_rle" with last_sep " or ", "npy and raw"
 * with " and ". Messages list formats only through this, so the table is the one list. */
void slp__format_names(unsigned need, const char *last_sep, char *buf, size_t len);

/* Writes the names of lib's dtypes, in its table's order, into buf (always terminated) as
 * prose: "bool, uint8, ... or float64" with last_sep " or ". */
void slp__dtype_names(const char *last_sep, char *buf, size_t len);

/* The decoders of the table's rows. */
slp__format_decode slp__fmt_npy;  /* fmt_npy.c: .npy files, base64 or a part, maybe compressed */
slp__format_decode slp__fmt_raw;  /* fmt_raw.c: C-order bytes of dtype and shape */
slp__format_decode slp__fmt_list; /* fmt_list.c: JSON numbers, flat with shape or nested */
slp__format_decode slp__fmt_rle;  /* fmt_rle.c: Kaggle EncodedPixels into a 0/1 mask */
slp__format_decode slp__fmt_coco_rle; /* fmt_rle.c: COCO RLE into a 0/1 mask */

/* ---- helpers the format decoders share (array.c) ---- */

/* A JSON value as a user would recognize it in a message: 3, 1.5, true, a string, a list. */
void slp__describe(const json_t *v, char *buf, size_t len);

/* Checks shape against r's limits (overflow-safe): SL_ETOOLARGE with a message naming r, else
 * 0 with the element count in *numel and the byte count of dtype dt in *nbytes. */
int slp__check_size(struct slp__areq *r, const int64_t *shape, int ndim, enum sl_dtype dt,
                    int64_t *numel, size_t *nbytes);

/* Makes buf (malloc'd; *out owns it from now on) the array's storage with its elements from data
 * (inside buf) on, of dtype dt and shape. */
void slp__array_set(struct slp_array *out, void *buf, const void *data, enum sl_dtype dt, int ndim,
                    const int64_t *shape);

/* A new buffer of nbytes (at least 1) for an array's elements, from the limits' pool (bufs),
 * or NULL with a message. Given back with slp__free_array (or slp_array_free once set). */
void *slp__alloc_array(struct slp__areq *r, size_t nbytes);
/* Gives a buffer of slp__alloc_array or slp__decode_compressed back (NULL is fine). */
void slp__free_array(struct slp__areq *r, void *buf);

/* Bytes a compressed payload may take: the limit lim plus deflate/gzip overhead slack. */
size_t slp__compressed_cap(size_t lim);

/* 0 when r->data is a JSON string, else SL_EINVAL "expected a base64 string". */
int slp__need_string_data(struct slp__areq *r);

/* The bytes of the string r->data (not NUL-terminated: they may be the original text of a long
 * JSON string the skeleton left out of jansson's tree). Returns 0 or SL_ENOMEM. */
int slp__data_string(struct slp__areq *r, const char **s, size_t *len);

/* Base64-decodes r->data, a compressed payload, into a new buffer *cbuf (from the limits'
 * pool: the caller gives it back with slp__free_array) of at most cap bytes. Returns 0 or the
 * error of slp_base64_decode. */
int slp__decode_compressed(struct slp__areq *r, size_t cap, unsigned char **cbuf, size_t *clen);

/* A hint to append to a message when r's part starts with the gzip (or zstd) magic while
 * "compression" is none; "" otherwise (static strings). */
const char *slp__gzip_hint(const struct slp__areq *r);

#endif /* SLP_ARRAY_INTERNAL_H */
