/* inflate.h - bounded inflate of a whole compressed stream of unknown inflated size (an HTTP
 * body with a Content-Encoding) into a capped growable buffer.
 *
 * The same inflater and the same rules as slp_inflate_exact (array.h, inflate.c): one zlib
 * header check, concatenated gzip members accepted, trailing bytes after the end of the stream
 * and a truncated stream refused. Errors: 0, or a negative SL_E* code with a message naming the
 * bytes (the caller's `name`) in msg.
 */
#ifndef SLP_INFLATE_H
#define SLP_INFLATE_H

#include <stddef.h>

#include "array.h"
#include "dynbuf.h"

/* The kind of HTTP's "deflate" coding of in[0..len) (RFC 9110 8.4.1.2 says zlib-wrapped, yet
 * some clients send raw deflate): SLP_COMP_ZLIB when it starts with a zlib header (the check
 * slp_inflate_exact's "auto" makes), else SLP_COMP_DEFLATE. */
enum slp_compression slp_http_deflate_kind(const unsigned char *in, size_t len);

/* Inflates the whole stream in[0..len) of comp (gzip, zlib, deflate, or auto: gzip or zlib by
 * the header) and appends it to out, never past out->max: more is SL_ETOOLARGE after max + 1
 * bytes were inflated (a bomb costs no more). Returns 0, or SL_EMALFORMED (corrupt or truncated
 * stream, trailing data), SL_EINVAL (comp is none), SL_ETOOLARGE or SL_ENOMEM, with a message
 * naming name in msg. out keeps what was inflated either way (the caller frees it). A gzip
 * stream's ISIZE trailer, when under the cap, is tried first as the size (libdeflate, one call);
 * zlib decides whenever that does not succeed exactly. */
int slp_inflate_all(const unsigned char *in, size_t len, enum slp_compression comp,
                    struct slp_dynbuf *out, const char *name, char *msg, size_t msglen);

#endif /* SLP_INFLATE_H */
