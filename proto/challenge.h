/* challenge.h - the wire side of challenges (CHALLENGES.md): the configuration, the three forms
 * of a reference or submission body, Kaggle CSV, id lists and the image bundle the store keeps.
 * No HTTP, no SQL: bytes and JSON in, validated structs out (proto.h's error and ownership
 * rules: 0 or a negative SL_E* code with the detail in msg; what a call makes is the caller's).
 */
#ifndef SLP_CHALLENGE_H
#define SLP_CHALLENGE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "array.h"
#include "segloss.h"

/* At most this many ranking keys and columns (server/chal_rules.h CHAL_MAX_KEYS agrees). */
#define SLC_MAX_KEYS 16
/* A value key: "metrics.K.mean", "metrics.K.global" or "losses.K.value", K at most SL_KEY_MAX. */
#define SLC_VALUE_KEY_MAX (SL_KEY_MAX + 16)
/* Image ids: [A-Za-z0-9._-]{1,128}. */
#define SLC_ID_MAX 128
/* A submission's note: at most this many characters (Unicode code points). */
#define SLC_NOTE_MAX 200

struct slc_key {
    char key[SLC_VALUE_KEY_MAX];
    bool desc; /* order "desc": higher is better */
};

/* A validated challenge configuration (PUT /v1/challenges/{c}). Times are microseconds since
 * the epoch (INT64_MIN / INT64_MAX: none). */
struct slc_config {
    char *title;
    char *description; /* "" when absent */
    json_t *spec;      /* the spec object (new reference), validated by the /v1/score parser */
    enum sl_mode mode; /* the spec's mode (SL_MODE_AUTO when it gives none) */
    enum sl_pred_type pred_type;
    struct slc_key ranking[SLC_MAX_KEYS];
    int nranking;
    struct slc_key columns[SLC_MAX_KEYS]; /* default: the ranking keys; desc from the ranking
                                             key of the same name, else true */
    int ncolumns;
    /* split: public_ids (NULL: by fraction and seed) */
    double public_fraction; /* default 1 */
    int64_t seed;           /* default 0 */
    char **public_ids;
    size_t npublic_ids;
    int64_t per_day, total, concurrent; /* -1: none; defaults 5, -1, 1 */
    int64_t opens_at, closes_at;
    int64_t final_selections; /* default 2 */
    bool keep_latest;         /* keep "latest" (default "best") */
    bool private_visible;     /* default false */
    /* the value keys the spec produces, in the spec's order (metrics, then losses), for
     * slc_config_has_key */
    char produced[3 * SLP_MAX_SPECS][SLC_VALUE_KEY_MAX];
    int nproduced;
};

/* Parses and validates a configuration body (JSON, len bytes) under lim. Errors name the key
 * ("ranking[1].key: ...", "spec.losses[0].name: ...", "split.public_fraction: ..."); unknown
 * keys are refused. A ranking or column key the spec does not produce is SL_EINVAL naming it
 * (metrics.K.global only where the value is a number: binary mode, given as such; a metric
 * that is confusion counts has no value key). Returns 0 with a new *out (slc_config_free). */
int slc_config_parse(const char *body, size_t len, const struct slp_limits *lim,
                     struct slc_config **out, char *msg, size_t msglen);
/* Frees c (NULL is fine). */
void slc_config_free(struct slc_config *c);
/* The configuration as a new JSON object with every default filled in (what is stored and
 * shown; slc_config_parse reads it back to an equal configuration). NULL: out of memory. */
json_t *slc_config_json(const struct slc_config *c);
/* Whether key is one of the value keys the spec of c produces. */
bool slc_config_has_key(const struct slc_config *c, const char *key);

/* ---- images of a reference or a submission -------------------------------------------------- */

/* One image: its id and its array [*S] or [C, *S] (no batch axis). */
struct slc_image {
    char id[SLC_ID_MAX + 1];
    struct slp_array a; /* owned */
};

/* Images in the order they came, ids distinct. */
struct slc_images {
    struct slc_image *items;
    size_t n;
    char *note; /* a submission's note ("" when none); NULL for a reference */
};

/* Frees what imgs holds and imgs itself. NULL is fine. */
void slc_images_free(struct slc_images *imgs);

/* The form of a body: which array key it carries. */
enum slc_role {
    SLC_REFERENCE,  /* "target" */
    SLC_SUBMISSION, /* "prediction", and "note" */
};

/* A JSON body {"target"|"prediction": ARRAY, "ids": [...], "note": "..."} with a stacked
 * [N, *S] array in any API.md form (ids default to "0".."N-1"; their count must be N), split
 * into N images. A spec key in the body (mode, losses, ...) is SL_EINVAL saying that the
 * challenge's spec applies; any other unknown key too. */
int slc_images_from_json(const char *body, size_t len, enum slc_role role,
                         const struct slp_limits *lim, struct slc_images **out, char *msg,
                         size_t msglen);

/* A multipart body already split into parts: either one .npy part (or gzip'd .npy, by its
 * magic) per image, the part's name being the image id (so images may differ in size), plus
 * for a submission an optional text part "note"; or a part "csv" of Kaggle rows
 * ImageId,EncodedPixels (header line required; rows of one id are merged; an empty
 * EncodedPixels is an empty mask) and a part "spec" {"shape": [H, W]}, giving uint8 0/1 masks.
 * So "csv", "spec" and "note" are never image ids of a multipart body. A reference's note is
 * NULL, a submission's "" when it sends none. Errors name the part. */
int slc_images_from_parts(const struct slp_parts *parts, enum slc_role role,
                          const struct slp_limits *lim, struct slc_images **out, char *msg,
                          size_t msglen);

/* Reads Kaggle CSV text (ImageId,EncodedPixels; run-length pairs "start length", 1-based,
 * column-major as Kaggle's masks are) of images h x w into uint8 0/1 masks [h, w], in the order
 * the ids first appear. The header is ImageId,EncodedPixels in any case (a UTF-8 BOM before it
 * and CRLF line ends are fine); fields are unquoted; within a row the rules of the API's "rle"
 * format hold (runs sorted and apart, "-" an empty mask), rows of one id may overlap. The images
 * come back with note "" (slc_images_from_parts sets it). Errors name the line. */
int slc_images_from_csv(const char *text, size_t len, int64_t h, int64_t w,
                        const struct slp_limits *lim, struct slc_images **out, char *msg,
                        size_t msglen);

/* Parses an id list (a JSON array of distinct id strings) called name ("ids", "split.public_ids")
 * into a new array of *n strings (*out, free with slc_ids_free). Errors name name[i]. */
int slc_ids_parse(const json_t *j, const char *name, char ***out, size_t *n, char *msg,
                  size_t msglen);
void slc_ids_free(char **ids, size_t n);

/* ---- the bundle: images in one blob ------------------------------------------------------- */

/* The first bytes of a bundle. */
#define SLC_BUNDLE_MAGIC "SLCBNDL1"

/* Appends imgs as a bundle to b (proto/dynbuf.h): the 8 bytes SLC_BUNDLE_MAGIC, the image count
 * (u32 LE), then the images sorted by id (bytewise), each as "id length (u32 LE), id, .npy v1.0
 * file length (u64 LE), the .npy file" (the count makes a bundle cut at an image's end
 * detectable). The SHA-256 of a reference's bundle is its version (ids, shapes, dtypes and bytes
 * in id order). Returns 0 or b's sticky error. */
struct slp_dynbuf;
int slc_bundle_write(const struct slc_images *imgs, struct slp_dynbuf *b);
/* Reads a bundle (as slc_bundle_write made it) into new images (owning copies of the arrays),
 * in id order. A bad magic, a count that disagrees with the images, truncation, trailing bytes,
 * a bad length, ids out of order or repeated and a bad .npy file are SL_EMALFORMED naming the
 * byte offset or the image; more images than lim->max_images SL_ETOOLARGE. */
int slc_bundle_read(const void *data, size_t len, const struct slp_limits *lim,
                    struct slc_images **out, char *msg, size_t msglen);

#endif /* SLP_CHALLENGE_H */
