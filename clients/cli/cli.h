/* cli.h - the segloss command-line client: what its files share.
 *
 * input.c reads the prediction/target sources (.npy files, directories, Kaggle CSV) and cuts
 * them into batches; body.c streams one batch as multipart/form-data; net.c posts it with
 * retries; agg.c combines the answers of all batches into what one request would answer;
 * report.c evaluates gates and writes the table, JSON and JUnit output. Errors are reported
 * into a caller's message buffer; a function returns 0 or -1. */
#ifndef SEGLOSS_CLI_H
#define SEGLOSS_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segloss.h"

#define CLI_MSG 1024

/* ---- inputs ---------------------------------------------------------------------------------- */

/* A .npy file (plain or gzip): its header and where its elements start. */
struct cli_npy {
    char *path;
    bool gz;
    enum sl_dtype dtype;
    int ndim;
    int64_t shape[SL_MAX_DIMS];
    int fortran;
    size_t data_offset;
};

enum cli_src_kind { CLI_SRC_NPY, CLI_SRC_DIR, CLI_SRC_CSV };

/* One image: its id and where its prediction and target come from. */
struct cli_image {
    char *id;
    /* CLI_SRC_NPY: index along axis 0 of the batch files; CLI_SRC_DIR: one file each */
    int64_t index;
    struct cli_npy pred, target;
    /* CLI_SRC_CSV: the image's Kaggle RLE text (runs of every row, sorted and merged) */
    char *pred_rle, *target_rle;
};

/* The whole data set, and its cut into batches of consecutive images. */
struct cli_data {
    enum cli_src_kind kind;
    struct cli_npy pred, target; /* CLI_SRC_NPY: the two batch files */
    int64_t h, w;                /* CLI_SRC_CSV: --shape */
    int64_t nimages;
    struct cli_image *images;
    int nbatches;
    int64_t *batch_start; /* nbatches + 1 image indices */
};

/* Opens PRED and TARGET (same kind), pairs their images and cuts batches of at most
 * batch_size images (0: as many as fit in 32 MiB, at most 1024). */
int cli_data_open(struct cli_data *d, const char *pred, const char *target, int64_t h, int64_t w,
                  int64_t batch_size, char *msg, size_t msglen);
void cli_data_free(struct cli_data *d);
/* Bytes of one element of t's arrays per image (prediction, target). */
int64_t cli_npy_image_bytes(const struct cli_npy *n, bool whole_file);

/* ---- one batch as a streamed multipart/form-data body --------------------------------------- */

enum cli_compress { CLI_COMPRESS_AUTO, CLI_COMPRESS_GZIP, CLI_COMPRESS_NONE };

struct cli_body;

/* A body reading d (borrowed) with the given compression; NULL on out of memory. */
struct cli_body *cli_body_new(const struct cli_data *d, enum cli_compress comp);
/* Sets the batch: images [first, last) with the spec object spec (borrowed; its "prediction"
 * and "target" members are set here). Returns 0, or -1 with msg. */
int cli_body_batch(struct cli_body *b, int64_t first, int64_t last, json_t *spec, char *msg,
                   size_t msglen);
void cli_body_free(struct cli_body *b);
/* Back to the first byte (before a retry). */
void cli_body_rewind(struct cli_body *b);
/* Up to n bytes of the body into buf; returns the count (0 at the end), or -1 with the error
 * in cli_body_error(). */
long cli_body_read(struct cli_body *b, char *buf, size_t n);
const char *cli_body_error(const struct cli_body *b);
const char *cli_body_content_type(const struct cli_body *b);

/* ---- HTTP ------------------------------------------------------------------------------------ */

struct cli_net {
    const char *url; /* base URL */
    int retries;
    long timeout_s;
    double backoff_s; /* first retry delay */
    bool quiet;       /* no retry notes on stderr */
    void *curl;       /* CURL *, reused for keep-alive */
};

/* POSTs body to url/v1/score with retries on 503/429 and connection errors. On 200 sets *answer
 * (new reference) and returns 0; otherwise -1 with the reason in msg (the problem+json detail
 * for an HTTP error). what names the batch in notes ("batch 2/3"). */
int cli_post_score(struct cli_net *net, struct cli_body *body, const char *what, json_t **answer,
                   char *msg, size_t msglen);
/* GET url/path; returns the HTTP status, or -1 on a network error (msg). */
long cli_get_status(struct cli_net *net, const char *path, char *msg, size_t msglen);

/* ---- aggregation ------------------------------------------------------------------------------
 */

struct cli_agg;

/* Prepares aggregation of the spec's losses and metrics over nbatches requests: rewrites
 * spec (adds the hidden entries the combination needs; see agg.c). Returns NULL and msg when
 * a loss cannot be combined over several batches. */
struct cli_agg *cli_agg_new(json_t *spec, int nbatches, char *msg, size_t msglen);
void cli_agg_free(struct cli_agg *a);
/* Adds one batch's answer (borrowed) for images [first, last) of ids. */
int cli_agg_add(struct cli_agg *a, json_t *answer, int64_t first, int64_t last, char *msg,
                size_t msglen);
/* The combined result, shaped like a /v1/score answer (new reference); ids (borrowed) are
 * the images' ids. */
json_t *cli_agg_result(struct cli_agg *a, const struct cli_data *d, bool per_image);

/* ---- gates and output ------------------------------------------------------------------------ */

struct cli_gate {
    char *text;   /* as given */
    char *label;  /* resolved path: "metrics.dice.mean" */
    double value; /* NaN: undefined (null) */
    bool passed;
};

/* Evaluates gate texts against result; fills gates[ngates]. Returns -1 with msg on a gate
 * that does not parse or names nothing in result. */
int cli_gates_eval(json_t *result, char **texts, int n, struct cli_gate *gates, char *msg,
                   size_t msglen);
void cli_print_table(FILE *out, json_t *result, const struct cli_gate *gates, int ngates);
/* Writes the JUnit XML report; error is the failure text of an exit-2 run, or NULL. */
int cli_write_junit(const char *path, json_t *result, const struct cli_gate *gates, int ngates,
                    const char *error, double seconds);

#endif /* SEGLOSS_CLI_H */
