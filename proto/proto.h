/* proto.h - the segloss wire contract in C: request bodies in, JSON responses out.
 *
 * Everything here turns bytes into lib/ requests and lib/ results into bytes; nothing here
 * knows about sockets.
 *
 * Errors, for all of proto/: a request handler (slp_score_request, slp_score_multipart,
 * slp_weight_map_request) never fails - it always fills a struct slp_response, an error being
 * problem+json (RFC 9457) with `type`, `title`, `status`, `detail` and `error`. A function
 * that makes a document returns it, NULL meaning out of memory. Every other function returns 0
 * or a negative SL_E* code of lib/segloss.h's table (never aborts, not even when out of memory:
 * SL_ENOMEM), with the detail a user needs (which array, key or index) in a
 * caller's msg buffer of msglen bytes, always terminated, never in a global. slp_http_status
 * maps a code to its HTTP status, in one table.
 *
 * Ownership: inputs (bodies, jansson values, parts, limits) are borrowed and never kept after a
 * call returns; what a call makes (a response body, an array's buffer, a string) is the
 * caller's, freed with the matching _free, which accepts NULL.
 */
#ifndef SLP_PROTO_H
#define SLP_PROTO_H

#include <stddef.h>

#include "array.h"
#include "segloss.h"

/* A finished HTTP answer: body is malloc'd and owned by the response. */
struct slp_response {
    int status;
    const char *content_type; /* static string */
    char *body;
    size_t len;
};

/* Frees r->body and zeroes *r. NULL is fine. */
void slp_response_free(struct slp_response *r);

/* HTTP status for a negative SL_E* code (one table: 400, 413, 422, 503, 500). */
int slp_http_status(int code);

/* Fills *out with an application/problem+json answer of the given status and detail. */
void slp_problem(int status, const char *detail, struct slp_response *out);

/* Handles one POST /v1/score JSON body end to end (parse, validate, score, serialize) and fills
 * *out with the 200 answer or the problem+json error. pool may be NULL. Never fails. */
void slp_score_request(const char *body, size_t len, const struct slp_limits *lim,
                       struct sl_pool *pool, struct slp_response *out);

/* What a /v1/score answer is: the JSON document, or the self-contained HTML report of it
 * (proto/report.h; per-image values are computed whatever per_image says, the spec's
 * report_worst images are drawn) as SLP_HTML_TYPE. Errors are problem+json either way. */
enum slp_answer_form { SLP_ANSWER_JSON, SLP_ANSWER_HTML };
#define SLP_HTML_TYPE "text/html; charset=utf-8"

/* slp_score_request answering in form. */
void slp_score_request_as(const char *body, size_t len, const struct slp_limits *lim,
                          struct sl_pool *pool, enum slp_answer_form form,
                          struct slp_response *out);

/* Handles one POST /v1/score multipart/form-data body already split into parts: the part named
 * "spec" holds the JSON spec, whose arrays may name other parts with "part". Never fails. */
void slp_score_multipart(const struct slp_parts *parts, const struct slp_limits *lim,
                         struct sl_pool *pool, struct slp_response *out);
/* slp_score_multipart answering in form. */
void slp_score_multipart_as(const struct slp_parts *parts, const struct slp_limits *lim,
                            struct sl_pool *pool, enum slp_answer_form form,
                            struct slp_response *out);

/* The GET /v1/catalog document: every loss and metric of the lib's tables with parameters,
 * types, defaults, ranges and conventions. Returns a new string (caller frees; NULL when out of
 * memory) and its length in *len. */
char *slp_catalog_json(size_t *len);

/* Handles one POST /v1/weight-map JSON body end to end (parse, validate, compute the U-Net
 * weight map, serialize) and fills *out with the 200 answer - the float32 map [N, *S] as .npy
 * v1.0 bytes (application/x-npy), or {"shape": [...], "data": [...]} (application/json) when
 * want_json - or the problem+json error. pool may be NULL. Never fails. */
void slp_weight_map_request(const char *body, size_t len, const struct slp_limits *lim,
                            struct sl_pool *pool, bool want_json, struct slp_response *out);

/* The OpenAPI document served at /openapi.json (proto/openapi.json, linked in). */
const char *slp_openapi_json(size_t *len);

#endif /* SLP_PROTO_H */
