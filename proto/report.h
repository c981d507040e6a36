/* report.h - the visual report of one scoring: a self-contained HTML page (inline CSS and SVG,
 * PNG thumbnails as data URIs) showing the aggregate table, each value's per-image
 * distribution and the k worst images drawn as overlays. seglossd answers it to a /v1/score
 * request with Accept: text/html; the CLI writes it for a whole data set (segloss score --html).
 *
 * The report is drawn from the /v1/score answer (a JSON object with per-image values, the one
 * the API documents, or the CLI's combination of several) plus the arrays of the images it
 * draws, so the server and the CLI render exactly the same page. Ownership: everything passed
 * in is borrowed; the page is appended to the caller's buffer. */
#ifndef SEGLOSS_REPORT_H
#define SEGLOSS_REPORT_H

#include <jansson.h>
#include <stdint.h>

#include "dynbuf.h"
#include "segloss.h"

#define SLP_REPORT_WORST_DEFAULT 8 /* report_worst when the spec does not say */
#define SLP_REPORT_WORST_MAX 64

/* One image the report draws (borrowed views): pred is the image's prediction, [*S] or
 * [C, *S] as in the request (logits, probabilities or labels per the answer's conventions);
 * target its labels, [*S] (or [C, *S] of 0/1 for multilabel). */
struct slp_report_image {
    int64_t index;  /* its index in the answer's per_image lists */
    const char *id; /* its id (the CLI's file names), or NULL: the index is shown */
    struct sl_tensor pred, target;
};

/* The images the report draws: the up to k (<= SLP_REPORT_WORST_MAX) worst by the first
 * metric of answer (by the first loss when the answer has no metric), worst first, into idx;
 * an image whose value is null comes after every defined one. spec (the request's spec object,
 * for the metric names behind "as" keys) says which way is worse: lower for dice, iou and the
 * other ratios, higher for distances and every loss. Returns how many were written (0 when
 * the answer has no per-image values). */
int slp_report_worst(const json_t *answer, const json_t *spec, int k, int64_t *idx);

/* Appends the whole HTML report of answer (see above) to out: title (escaped), the aggregate
 * table, a per-image distribution plot of every loss and metric, and imgs[0..nimgs) (from
 * slp_report_worst, in that order) as overlay thumbnails captioned with their id or index and
 * values. ids: the answer's images' ids (answer "images" of them), or NULL. Returns 0, or an
 * SL_E* code with msg (an image whose arrays do not fit the answer's mode and shape: SL_ESHAPE;
 * out's own errors: SL_ENOMEM, SL_ETOOLARGE). */
int slp_report_html(struct slp_dynbuf *out, const json_t *answer, const json_t *spec,
                    const char *const *ids, const struct slp_report_image *imgs, int nimgs,
                    const char *title, char *msg, size_t msglen);

/* Appends one section of thumbnails of imgs[0..nimgs) (checked as slp_report_html checks them)
 * to out, drawn as the worst images are: <section id="sec_id"> with the heading, the line lead
 * (plain text, escaped here), the legend and the thumbnails captioned with answer's values. The
 * CLI's report of segloss score --baseline shows the images with the largest drop this way.
 * Returns 0 or an SL_E* code with msg, as slp_report_html. */
int slp_report_thumbs(struct slp_dynbuf *out, const json_t *answer, const char *const *ids,
                      const struct slp_report_image *imgs, int nimgs, const char *sec_id,
                      const char *heading, const char *lead, char *msg, size_t msglen);

#endif
