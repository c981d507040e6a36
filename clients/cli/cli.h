/* cli.h - the segloss command-line client: what its files share.
 *
 * input.c reads the prediction/target sources (.npy files, directories, Kaggle CSV) and cuts
 * them into batches; body.c streams one batch as multipart/form-data; net.c posts it with
 * retries; proto/agg.h combines the answers of all batches into what one request would
 * answer (seglossd uses it too); report.c evaluates gates and writes the table, JSON and JUnit
 * output.
 *
 * Errors, the one convention: a function that can fail takes the caller's message buffer
 * (char *msg, size_t msglen; CLI_MSG bytes is enough) and returns 0 (or a count, a status, a new
 * object), or -1 (NULL) with the reason written there; nothing keeps an error for later. Every
 * _free accepts NULL. Ownership is said at each function: borrowed, or new (the caller frees). */
#ifndef SEGLOSS_CLI_H
#define SEGLOSS_CLI_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "agg.h"
#include "report.h"
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

/* Opens pred and target (same kind: .npy batch files, directories, or Kaggle CSV with the shape
 * h x w), pairs their images and cuts batches of at most batch_size images (0: as many as fit in
 * 32 MiB, at most 1024). Returns 0 with *d filled (free with cli_data_free), or -1 with msg. */
int cli_data_open(struct cli_data *d, const char *pred, const char *target, int64_t h, int64_t w,
                  int64_t batch_size, char *msg, size_t msglen);
/* Frees what d holds and zeroes it; d may be NULL or zeroed. */
void cli_data_free(struct cli_data *d);
/* Opens one source of a challenge's images into d's pred side (d->pred for a stacked file,
 * images[i].pred for a directory, images[i].pred_rle for a CSV file with the shape h x w): a
 * stacked .npy [N, ...] (ids "0".."N-1", or one a line from ids_file), a directory of .npy
 * files (ids: the names without .npy), or a Kaggle CSV file. Ids are checked against
 * [A-Za-z0-9._-]{1,128}. One batch of every image. Returns 0 with *d filled (cli_data_free),
 * or -1 with msg. */
int cli_source_open(struct cli_data *d, const char *path, const char *ids_file, int64_t h,
                    int64_t w, char *msg, size_t msglen);
/* Bytes of one image of n's elements, or (whole_file) of the whole array n describes. */
int64_t cli_npy_image_bytes(const struct cli_npy *n, bool whole_file);

/* ---- one image's arrays, read back to draw it (image.c) ------------------------------------ */

/* Image i's prediction and target as read from the files: owned buffers in C order and host
 * byte order, and views of them shaped as the server saw the image (axis 0 of a batch file cut
 * off; a CSV image a uint8 0/1 mask [H, W] per side). */
struct cli_pixels {
    void *pred_buf, *target_buf;
    struct sl_tensor pred, target;
};

/* Reads image i (0 <= i < d->nimages) of d (borrowed) into *px: from a batch file (C order: its
 * bytes at axis 0 index i; Fortran order, sent whole as one batch: every N-th element,
 * gathered into C order), from its own files (directories), or decoded from its Kaggle RLE
 * runs (CSV: 1-based starts, column-major, as the server decodes format "rle"). Returns 0 with
 * *px filled (free with cli_pixels_free), or -1 with msg (a file that cannot be read). */
int cli_pixels_read(const struct cli_data *d, int64_t i, struct cli_pixels *px, char *msg,
                    size_t msglen);
/* Frees px's buffers and zeroes it; NULL is fine. */
void cli_pixels_free(struct cli_pixels *px);

/* ---- one batch as a streamed multipart/form-data body --------------------------------------- */

enum cli_compress { CLI_COMPRESS_AUTO, CLI_COMPRESS_GZIP, CLI_COMPRESS_NONE, CLI_COMPRESS_ZSTD };

/* The options score, submit and challenge reference share (input.c): --shape "H,W" (positive
 * integers up to 2^31) and --compress auto|gzip|zstd|none. Each returns 0 with its value, or
 * -1. */
int cli_parse_shape(const char *a, int64_t *h, int64_t *w);
int cli_parse_compress(const char *a, enum cli_compress *c);

struct cli_body;

/* A body reading d (borrowed, must outlive it) with the given compression: gzip, zstd or none
 * for every array, or auto: integer arrays compressed with auto_codec (CLI_COMPRESS_GZIP or
 * CLI_COMPRESS_ZSTD: cli_auto_codec), floats sent as they are. New (free with cli_body_free),
 * or NULL on out of memory. */
struct cli_body *cli_body_new(const struct cli_data *d, enum cli_compress comp,
                              enum cli_compress auto_codec);
/* Sets the batch: images [first, last) with the spec object spec (borrowed; its "prediction"
 * and "target" members are set here). Returns 0, or -1 with msg. */
int cli_body_batch(struct cli_body *b, int64_t first, int64_t last, json_t *spec, char *msg,
                   size_t msglen);
/* Sets the body to the images of a source opened with cli_source_open (its pred side): one
 * .npy part per image named by its id (gzip'd as comp says), or for a CSV source a "spec" part
 * {"shape": [H, W]} and a "csv" part; then a text part "note" when note is not NULL. Returns 0,
 * or -1 with msg. */
int cli_body_images(struct cli_body *b, const char *note, char *msg, size_t msglen);
/* Frees b (NULL is fine) and closes its files. */
void cli_body_free(struct cli_body *b);
/* Back to the first byte (before a retry). */
void cli_body_rewind(struct cli_body *b);
/* Up to n bytes of the body into buf; returns the count (0 at the end), or -1 with msg (a file
 * that cannot be read, deflate out of memory). */
long cli_body_read(struct cli_body *b, char *buf, size_t n, char *msg, size_t msglen);
/* The multipart Content-Type with its boundary (borrowed from b). */
const char *cli_body_content_type(const struct cli_body *b);

/* ---- HTTP ------------------------------------------------------------------------------------ */

struct cli_net {
    const char *url; /* base URL */
    int retries;
    long timeout_s;
    double backoff_s; /* first retry delay */
    bool quiet;       /* no retry notes on stderr */
    void *curl;       /* CURL *, reused for keep-alive */
    /* borrowed; when not NULL and nonzero, a transfer or retry wait in progress stops at once
     * (the other batches of --parallel after one has failed) */
    const atomic_int *cancel;
};

/* POSTs body to url/v1/score with retries on 503/429 and connection errors. On 200 sets *answer
 * (new reference) and returns 0; otherwise -1 with the reason in msg (the problem+json detail
 * for an HTTP error). what names the batch in notes ("batch 2/3"). Uses net's own curl handle
 * (one connection): threads each give their own net. */
int cli_post_score(struct cli_net *net, struct cli_body *body, const char *what, json_t **answer,
                   char *msg, size_t msglen);
/* The codec of --compress auto: CLI_COMPRESS_ZSTD when the server's GET /v1/catalog lists
 * "zstd" among its "compression" values, else CLI_COMPRESS_GZIP (an older server, or no answer:
 * the scoring request then says what is wrong). */
enum cli_compress cli_auto_codec(struct cli_net *net);

/* GET url/path; returns the HTTP status, or -1 with msg on a network error. */
long cli_get_status(struct cli_net *net, const char *path, char *msg, size_t msglen);

/* An answer of cli_request: its body (new, NUL-terminated, or NULL when empty) and Retry-After
 * in seconds (-1 when absent). */
struct cli_reply {
    char *body;
    size_t len;
    double retry_after;
};

/* One request: method to url/path with "Authorization: Bearer token" (token NULL: none) and a
 * body: the streamed body, or text of type ctype (NULL: application/json), or none. A 503 is
 * retried (with backoff, or Retry-After), and so is a connection failure when the request is
 * idempotent or never connected (a POST that may have arrived is not sent twice). Returns the
 * HTTP status of the answer with *out filled (free with cli_reply_clear), whatever the status,
 * or -1 with msg on a network error (out empty). The token is never written anywhere else. */
long cli_request(struct cli_net *net, const char *method, const char *path, const char *token,
                 struct cli_body *body, const char *text, const char *ctype, struct cli_reply *out,
                 char *msg, size_t msglen);
/* Frees what r holds and zeroes it; NULL is fine. */
void cli_reply_clear(struct cli_reply *r);
/* "TITLE: DETAIL" of an error answer (problem+json), else its first bytes, into out. */
void cli_reply_problem(const struct cli_reply *r, char *out, size_t outlen);

/* ---- challenges (chal.c) -------------------------------------------------------------------- */

/* --parallel N: connections at once, 1..CLI_PARALLEL_MAX (score's batches; submit and challenge
 * reference are one request each by the challenges contract). */
#define CLI_PARALLEL_MAX 64

/* `segloss challenge VERB ...`, `segloss submit ...` or `segloss leaderboard ...` (argv[1] says
 * which); usage is what --help prints. Returns the exit status: 0, 1 a submission refused by
 * its quota or window, 2 any other error. */
int cli_chal_main(int argc, char **argv, const char *usage);

/* ---- gates and output ------------------------------------------------------------------------ */

struct cli_gate {
    char *text;   /* as given */
    char *label;  /* resolved path: "metrics.dice.mean" */
    double value; /* NaN: undefined (null) */
    bool passed;
};

/* Evaluates the n gate texts (borrowed) against result; fills gates[0..n) (their text and label
 * are new: the caller frees them). Returns 0 (also when a gate fails: see .passed), or -1 with
 * msg on a gate that does not parse or names nothing in result. */
int cli_gates_eval(json_t *result, char **texts, int n, struct cli_gate *gates, char *msg,
                   size_t msglen);
/* Whether v op t holds (op one of >= <= == != > <); false for v NaN (an undefined value fails
 * every gate). */
bool cli_gate_holds(double v, const char *op, double t);
/* Writes result (borrowed) as the human table to out, then the gates' verdicts. */
void cli_print_table(FILE *out, json_t *result, const struct cli_gate *gates, int ngates);
/* Writes the JUnit XML report to path; error is the failure text of an exit-2 run, or NULL.
 * Returns 0, or -1 with msg when the file cannot be written. */
int cli_write_junit(const char *path, json_t *result, const struct cli_gate *gates, int ngates,
                    const char *error, double seconds, char *msg, size_t msglen);
/* A table printer (cli_print_table, cli_compare_print): doc and the gates' verdicts to out. */
typedef void (*cli_table_fn)(FILE *out, json_t *doc, const struct cli_gate *gates, int ngates);
/* The same report with a first test case named name whose output is table(doc) (doc NULL: none)
 * and one test case per gate. */
int cli_write_junit_case(const char *path, const char *name, cli_table_fn table, json_t *doc,
                         const struct cli_gate *gates, int ngates, const char *error,
                         double seconds, char *msg, size_t msglen);

/* ---- comparing two scorings (compare.c) ------------------------------------------------------ */

/* What `segloss score --json` writes as its "format" and "format_version", which compare checks. */
#define CLI_SCORE_FORMAT "segloss-score"
#define CLI_SCORE_FORMAT_VERSION 1

struct cli_cmp_opts {
    int64_t resamples; /* bootstrap resamples */
    uint64_t seed;     /* the generator's seed (compare.c says how it is used) */
    int worst;         /* images listed with the largest drop */
};
#define CLI_CMP_DEFAULTS                                                                           \
    {                                                                                              \
        10000, 1, 5                                                                                \
    }

/* Sets option name ("resamples", "seed" or "worst") of o from its text a; 0, or -1 with msg. */
int cli_cmp_option(struct cli_cmp_opts *o, const char *name, const char *a, char *msg,
                   size_t msglen);
/* Which way each loss and metric of result (borrowed) is better, as {"metrics": {KEY: "higher"
 * or "lower"}, "losses": {KEY: "lower"}} (new); spec (borrowed) names the metrics behind "as"
 * keys. score --json writes it as "better". */
json_t *cli_better(json_t *result, const json_t *spec);
/* The comparison of two score --json documents (borrowed; bname and cname their names for
 * messages) matched by image id, as compare.c's top says (new), or NULL with msg: not a score
 * output, an id in one only, different modes, out of memory. */
json_t *cli_compare(json_t *base, json_t *cand, const char *bname, const char *cname,
                    const struct cli_cmp_opts *o, char *msg, size_t msglen);
/* Reads path as a score --json document with per-image values and ids (new), or NULL with
 * msg naming the file. */
json_t *cli_load_score(const char *path, char *msg, size_t msglen);
/* Whether gate text is a comparison gate (KEY.delta.FIELD, KEY.worse, ...). */
bool cli_is_compare_gate(const char *text);
/* Evaluates comparison gate text against cmp (borrowed) into *g (text and label new). 0 (also
 * when it fails: g->passed), or -1 with msg for a gate that does not parse or names nothing. */
int cli_compare_gate(json_t *cmp, const char *text, struct cli_gate *g, char *msg, size_t msglen);
/* Writes the comparison's table to out, then the gates' verdicts. */
void cli_compare_print(FILE *out, json_t *cmp, const struct cli_gate *gates, int ngates);
/* Reports failed gates on stderr and prints cmp (borrowed) as a table or (json) JSON with the
 * gates to out; returns the exit status (0, or 1 when a gate failed). */
int cli_compare_finish(json_t *cmp, const struct cli_gate *gates, int ngates, bool json, FILE *out);
/* Appends the --html report's section "Compared with the baseline" of cmp (borrowed): the table
 * of every value's (and class's) statistics and the largest drops' ids and values. Returns 0 or
 * the buffer's error. */
int cli_compare_html(struct slp_dynbuf *b, json_t *cmp);
/* The value whose largest drops the report draws: the first metric of cmp, else its first loss
 * (*key borrowed, *sec "metrics" or "losses"); returns how many drops it lists (0: none). */
int cli_compare_drops(json_t *cmp, const char **key, const char **sec);
/* `segloss compare BASELINE.json CANDIDATE.json [OPTION]...`; usage is what --help prints.
 * Returns the exit status: 0 every gate holds, 1 a gate failed, 2 an error. */
int cli_compare_main(int argc, char **argv, const char *usage);

/* The --html report on its way to path: a temporary file beside it, created before the data set
 * is scored (so that a path that cannot be written fails first) and renamed over path once the
 * report is in it, so that path never holds half a page. */
struct cli_html {
    const char *path; /* borrowed */
    char *tmp;        /* owned */
    int fd;           /* -1: nothing open */
    json_t *cmp;      /* score --baseline: the comparison (borrowed), drawn too; or NULL */
};

/* Creates h's temporary file for path (borrowed). Returns 0, or -1 with msg (path is a
 * directory, or its directory cannot be written); h is then closed. */
int cli_html_open(struct cli_html *h, const char *path, char *msg, size_t msglen);
/* Renders the report of answer (borrowed; the combined result with per-image values) for the
 * spec (borrowed, the user's, for the report's names and directions) with the k worst images of
 * d read back from their files (image.c), and with h->cmp its comparison and the images of its
 * largest drops, writes it and renames it over h->path. Returns 0, or
 * -1 with msg; h is closed either way (the temporary file gone). */
int cli_html_write(struct cli_html *h, json_t *answer, const json_t *spec, const struct cli_data *d,
                   int k, char *msg, size_t msglen);
/* Closes h and removes its temporary file (no report); a closed h is fine. */
void cli_html_discard(struct cli_html *h);

#endif /* SEGLOSS_CLI_H */
