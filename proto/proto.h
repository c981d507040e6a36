/* proto.h - the segloss wire contract in C: request bodies in, JSON responses out.
 *
 * Everything here turns bytes into lib/ requests and lib/ results into bytes; nothing here
 * knows about sockets. Responses are always produced: an error becomes problem+json
 * (RFC 9457) with `type`, `title`, `status`, `detail` and `error`.
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

/* Handles one POST /v1/score multipart/form-data body already split into parts: the part named
 * "spec" holds the JSON spec, whose arrays may name other parts with "part". Never fails. */
void slp_score_multipart(const struct slp_parts *parts, const struct slp_limits *lim,
                         struct sl_pool *pool, struct slp_response *out);

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
