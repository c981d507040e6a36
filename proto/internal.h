/* internal.h - declarations shared between proto/ files. */
#ifndef SLP_INTERNAL_H
#define SLP_INTERNAL_H

#include <jansson.h>

#include "dynbuf.h"
#include "jsonw.h"
#include "proto.h"
#include "report.h"

struct slp__jdoc;

/* per-class parameter lists a request may hold (their length is bounded by max_classes) */
#define SLP_MAX_LISTS 64

/* A parsed /v1/score request: the lib request plus everything it borrows. */
struct slp_score_req {
    struct sl_request req;
    struct slp_limits lim; /* a copy of the limits the request was parsed under */
    struct slp_array prediction, target, weight, instances;
    struct sl_spec losses[SLP_MAX_SPECS];
    struct sl_spec terms[SLP_MAX_SPECS][SL_MAX_TERMS];
    struct sl_spec metrics[SLP_MAX_SPECS];
    double *lists[SLP_MAX_LISTS]; /* owned storage of SL_V_LIST values */
    int nlists;
    bool per_image;
    int report_worst; /* images the HTML report draws (report_worst, 0..SLP_REPORT_WORST_MAX) */
};

/* Parses and validates a spec object (borrowed) under lim (not NULL) into a new request in *out
 * (free with slp__score_req_free). parts (borrowed, NULL for a JSON body) are the multipart
 * parts arrays may name with "part"; with NULL, "part" is refused (SL_EUNSUPPORTED, 422).
 * doc (borrowed, may be NULL) holds the strings the JSON text's skeleton left out of root.
 * Returns 0 or a negative SL_E* code with a message. */
int slp__parse_score(const json_t *root, const struct slp_limits *lim,
                     const struct slp_parts *parts, struct slp__jdoc *doc,
                     struct slp_score_req **out, char *msg, size_t msglen);
/* Parses and validates the keys of spec object root (borrowed) other than the arrays into a new
 * request in *out without arrays (free with slp__score_req_free). with_arrays false: a spec
 * without arrays (a challenge's), where prediction, target, weight, instances and per_image
 * are refused. Returns 0 or a negative SL_E* code with a message. */
int slp__parse_spec(const json_t *root, const struct slp_limits *lim, bool with_arrays,
                    struct slp_score_req **out, char *msg, size_t msglen);
/* Frees r and the arrays and lists it owns. NULL is fine. */
void slp__score_req_free(struct slp_score_req *r);

/* The most bytes one JSON answer (/v1/score, /v1/weight-map as JSON, /v1/catalog) may take: the
 * cap of the proto/dynbuf.h buffer it is written into. 1 GiB holds a JSON weight map of the
 * default 64 Mi elements at 15 bytes each; an answer over it is SL_ETOOLARGE (413). */
#define SLP_ANSWER_MAX ((size_t)1 << 30)

/* JSON writers: they append to b (started with slp_dynbuf_init(b, SLP_ANSWER_MAX)) and return
 * 0 or b's sticky error (SL_ENOMEM, SL_ETOOLARGE), so a writer appends many pieces and checks
 * b->err once at the end. */

/* JSON string literals: slp_json_add_str(b, s, 0) of jsonw.h. */
/* Appends a JSON number in the shortest form that reads back to the same double;
 * NaN and infinities become null. */
int slp__write_num(struct slp_dynbuf *b, double v);
/* Appends v in decimal. */
int slp__write_int(struct slp_dynbuf *b, long long v);

/* Fills *out with the 200 application/json answer b holds (taking b's data; b is left empty),
 * or, when writing b failed, frees b's data and fills *out with the problem+json error: 503 out
 * of memory, 413 over SLP_ANSWER_MAX. */
void slp__answer_json(struct slp_dynbuf *b, struct slp_response *out);
/* Fills *out with the problem+json answer of error code rc (msg, or the code's text). */
void slp__answer_error(int rc, const char *msg, struct slp_response *out);

/* Serializes a score result (r and res borrowed) as the API's 200 body into b; b->err says
 * whether it all fit. */
void slp__write_result(struct slp_dynbuf *b, const struct slp_score_req *r,
                       const struct sl_result *res, double elapsed_ms);

#endif /* SLP_INTERNAL_H */
