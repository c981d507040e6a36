/* agg.h - combining the answers of several /v1/score requests over one data set into the
 * answer one request with every image would give (agg.c's comment says by which rules). The
 * CLI sends a data set in batches; seglossd scores a challenge submission whose images differ
 * in size as one request per shape. Both combine here, so both answer alike.
 *
 * Use: slp_agg_new rewrites the spec before the requests are made (it adds per_image and, with
 * more than one request, hidden entries whose keys start with __segloss_cli_ and which the
 * result leaves out); each answer goes to slp_agg_add in the order of its images;
 * slp_agg_result makes the combined answer. Errors and ownership as proto.h says: the
 * aggregation is the caller's (slp_agg_free), answers and the spec are borrowed.
 */
#ifndef SLP_AGG_H
#define SLP_AGG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segloss.h"

struct slp_agg;

/* Prepares aggregation of the spec's losses and metrics over nbatches requests: rewrites
 * spec (borrowed; sets per_image true and, when nbatches > 1, adds the hidden entries the
 * combination needs). Returns a new aggregation (free with slp_agg_free), or NULL with msg:
 * out of memory, a user key with the hidden prefix, or (nbatches > 1) a loss that pools the
 * whole batch and so cannot be combined. */
struct slp_agg *slp_agg_new(json_t *spec, int nbatches, char *msg, size_t msglen);
/* Frees a (NULL is fine). */
void slp_agg_free(struct slp_agg *a);
/* Adds one request's answer (borrowed) for images [first, last) of the data set (only
 * last - first, the answer's image count, is checked). Returns 0, SL_EINVAL with msg when the
 * answer does not fit the others (mode, classes, a missing entry), or SL_ENOMEM. */
int slp_agg_add(struct slp_agg *a, json_t *answer, int64_t first, int64_t last, char *msg,
                size_t msglen);
/* The combined result, shaped like a /v1/score answer plus "batches" (and "shapes" when the
 * answers had more than one shape); a new reference, NULL out of memory. When per_image, the
 * per-image lists are kept (in the order the answers were added) and ids[0..nids) (borrowed,
 * the images' ids in that order; NULL: none) become "image_ids". */
json_t *slp_agg_result(struct slp_agg *a, const char *const *ids, size_t nids, bool per_image);

#endif /* SLP_AGG_H */
