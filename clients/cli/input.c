/* input.c - the CLI's data sets: two .npy batch files, two directories of per-image .npy files
 * paired by name, or two Kaggle CSV files of RLE rows; paired into images and cut into batches.
 *
 * Only headers (and CSV text) are read here; body.c streams the elements. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "array.h"
#include "cli.h"

#define BATCH_BYTES (32 * 1024 * 1024) /* auto batch size: uncompressed bytes per request */
#define BATCH_MAX 1024                 /* auto batch size: images per request */

/* printf into the caller's message buffer. */
static void errf(char *msg, size_t msglen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
}

/* Whether s ends with suffix. */
static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Reads path's .npy header (the file may be gzip-compressed) into *n. */
static int npy_open(struct cli_npy *n, const char *path, char *msg, size_t msglen)
{
    memset(n, 0, sizeof *n);
    gzFile f = gzopen(path, "rb");
    if (!f) {
        errf(msg, msglen, "%s: %s", path, strerror(errno ? errno : ENOENT));
        return -1;
    }
    unsigned char pre[SLP_NPY_PREAMBLE];
    int got = gzread(f, pre, sizeof pre);
    int rc = -1;
    unsigned char *hdr = NULL;
    size_t hlen;
    if (slp_npy_preamble(pre, got > 0 ? (size_t)got : 0, &hlen, path, msg, msglen) != 0) {
        goto out;
    }
    hdr = malloc(hlen);
    if (!hdr) {
        errf(msg, msglen, "%s: out of memory", path);
        goto out;
    }
    size_t have = (size_t)got < hlen ? (size_t)got : hlen;
    memcpy(hdr, pre, have);
    if (have < hlen && gzread(f, hdr + have, (unsigned)(hlen - have)) != (int)(hlen - have)) {
        errf(msg, msglen, "%s: .npy header cut short", path);
        goto out;
    }
    char detail[512];
    if (slp_npy_header(hdr, hlen, &n->dtype, &n->ndim, n->shape, &n->fortran, &n->data_offset, path,
                       detail, sizeof detail) != 0) {
        errf(msg, msglen, "%s", detail);
        goto out;
    }
    n->gz = gzdirect(f) == 0;
    n->path = strdup(path);
    if (!n->path) {
        errf(msg, msglen, "out of memory");
        goto out;
    }
    rc = 0;
    /* a plain file must hold exactly its elements (a .gz is checked while it streams) */
    struct stat st;
    if (!n->gz && stat(path, &st) == 0) {
        int64_t want = (int64_t)n->data_offset + cli_npy_image_bytes(n, true);
        if (st.st_size != want) {
            errf(msg, msglen, "%s: %lld bytes, the header's shape and dtype need %lld", path,
                 (long long)st.st_size, (long long)want);
            rc = -1;
        }
    }
out:
    free(hdr);
    gzclose(f);
    return rc;
}

/* Bytes of one image of n's array (axes 1..), or of all of it (whole_file). */
int64_t cli_npy_image_bytes(const struct cli_npy *n, bool whole_file)
{
    int64_t e = (int64_t)sl_dtype_size(n->dtype);
    for (int k = whole_file ? 0 : 1; k < n->ndim; k++) {
        e *= n->shape[k];
    }
    return e;
}

/* Whether a and b have the same dtype and shape. */
static bool same_layout(const struct cli_npy *a, const struct cli_npy *b)
{
    return a->dtype == b->dtype && a->ndim == b->ndim &&
           memcmp(a->shape, b->shape, sizeof(int64_t) * (size_t)a->ndim) == 0;
}

/* Frees what n owns (its path); NULL is fine. */
static void npy_free(struct cli_npy *n)
{
    if (!n) {
        return;
    }
    free(n->path);
    n->path = NULL;
}

/* ---- directories ------------------------------------------------------------------------------
 */

struct entry {
    char *id;
    char *path;
};

/* qsort order of directory entries: by id. */
static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->id, ((const struct entry *)b)->id);
}

/* Frees n directory entries and the array; NULL (n 0) is fine. */
static void entries_free(struct entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(e[i].id);
        free(e[i].path);
    }
    free(e);
}

/* The .npy and .npy.gz files of dir, sorted by id (the name without that suffix). */
static int list_dir(const char *dir, struct entry **out, size_t *count, char *msg, size_t msglen)
{
    DIR *d = opendir(dir);
    if (!d) {
        errf(msg, msglen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    struct entry *e = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        size_t cut = ends_with(name, ".npy") ? 4 : ends_with(name, ".npy.gz") ? 7 : 0;
        if (!cut || strlen(name) == cut) {
            continue;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            struct entry *ne = realloc(e, cap * sizeof *e);
            if (!ne) {
                rc = -1;
                break;
            }
            e = ne;
        }
        size_t len = strlen(dir) + strlen(name) + 2;
        e[n].id = strndup(name, strlen(name) - cut);
        e[n].path = malloc(len);
        if (!e[n].id || !e[n].path) {
            free(e[n].id);
            free(e[n].path);
            rc = -1;
            break;
        }
        snprintf(e[n].path, len, "%s/%s", dir, name);
        n++;
    }
    closedir(d);
    if (rc) {
        errf(msg, msglen, "out of memory listing %s", dir);
        entries_free(e, n);
        return -1;
    }
    if (n == 0) {
        errf(msg, msglen, "%s: no .npy or .npy.gz files", dir);
        free(e);
        return -1;
    }
    qsort(e, n, sizeof *e, cmp_entry);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(e[i - 1].id, e[i].id) == 0) {
            errf(msg, msglen, "%s: both %s.npy and %s.npy.gz: which one is image %s?", dir, e[i].id,
                 e[i].id, e[i].id);
            entries_free(e, n);
            return -1;
        }
    }
    *out = e;
    *count = n;
    return 0;
}

/* Pairs the .npy files of two directories by id into d's images; 0, or -1 with msg (an unpaired
 * id, a file of the wrong rank). */
static int open_dirs(struct cli_data *d, const char *pdir, const char *tdir, char *msg,
                     size_t msglen)
{
    struct entry *pe = NULL, *te = NULL;
    size_t np = 0, nt = 0;
    int rc = -1;
    if (list_dir(pdir, &pe, &np, msg, msglen) || list_dir(tdir, &te, &nt, msg, msglen)) {
        goto out;
    }
    /* both lists are sorted: walk them together */
    for (size_t i = 0, j = 0; i < np || j < nt;) {
        int c = i == np ? 1 : j == nt ? -1 : strcmp(pe[i].id, te[j].id);
        if (c != 0) {
            const char *id = c < 0 ? pe[i].id : te[j].id;
            errf(msg, msglen, "image %s is in %s but not in %s", id, c < 0 ? pdir : tdir,
                 c < 0 ? tdir : pdir);
            goto out;
        }
        i++;
        j++;
    }
    d->images = calloc(np, sizeof *d->images);
    if (!d->images) {
        errf(msg, msglen, "out of memory");
        goto out;
    }
    d->nimages = (int64_t)np;
    for (size_t i = 0; i < np; i++) {
        struct cli_image *im = &d->images[i];
        im->index = (int64_t)i;
        im->id = pe[i].id;
        pe[i].id = NULL;
        if (npy_open(&im->pred, pe[i].path, msg, msglen) ||
            npy_open(&im->target, te[i].path, msg, msglen)) {
            goto out;
        }
        if (im->pred.ndim >= SL_MAX_DIMS || im->target.ndim >= SL_MAX_DIMS) {
            errf(msg, msglen, "%s: %d axes; a batch of such files would pass the %d of the API",
                 im->pred.ndim >= SL_MAX_DIMS ? im->pred.path : im->target.path,
                 im->pred.ndim >= SL_MAX_DIMS ? im->pred.ndim : im->target.ndim, SL_MAX_DIMS);
            goto out;
        }
        if ((im->pred.fortran && im->pred.ndim > 1) ||
            (im->target.fortran && im->target.ndim > 1)) {
            errf(msg, msglen,
                 "%s: Fortran-order files in a directory are not supported (one image per file "
                 "is stacked in C order); save it with np.save(path, np.ascontiguousarray(a))",
                 im->pred.fortran ? im->pred.path : im->target.path);
            goto out;
        }
    }
    rc = 0;
out:
    entries_free(pe, np);
    entries_free(te, nt);
    return rc;
}

/* ---- Kaggle CSV --------------------------------------------------------------------------------
 */

struct run {
    int64_t start, len;
};

struct csv_image {
    char *id;
    struct run *runs;
    size_t nruns, cap;
    size_t order; /* first appearance */
};

struct csv {
    struct csv_image *im;
    size_t n, cap;
};

/* By id, then by order: the rows of one id together, its first row first. */
static int cmp_csv_id(const void *a, const void *b)
{
    const struct csv_image *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c ? c : x->order < y->order ? -1 : x->order > y->order;
}

/* qsort order of RLE runs: by start. */
static int cmp_run(const void *a, const void *b)
{
    const struct run *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* qsort order of CSV images: as they first appear in the file. */
static int cmp_order(const void *a, const void *b)
{
    const struct csv_image *x = a, *y = b;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Frees a parsed CSV file and zeroes it; NULL is fine. */
static void csv_free(struct csv *c)
{
    if (!c) {
        return;
    }
    for (size_t i = 0; i < c->n; i++) {
        free(c->im[i].id);
        free(c->im[i].runs);
    }
    free(c->im);
    memset(c, 0, sizeof *c);
}

/* One CSV field starting at *p (optionally "quoted"); advances *p past it and a comma. */
static char *csv_field(char **p)
{
    char *s = *p;
    if (*s == '"') {
        char *e = strchr(s + 1, '"');
        if (!e) {
            return NULL;
        }
        *e = '\0';
        *p = e[1] == ',' ? e + 2 : e + 1;
        return s + 1;
    }
    char *e = strchr(s, ',');
    if (e) {
        *e = '\0';
        *p = e + 1;
    } else {
        *p = s + strlen(s);
    }
    return s;
}

/* Parses one row's runs into im (validated: positive, inside H*W pixels, sorted and not
 * overlapping within the row, as the server asks of an RLE string). */
static int parse_runs(struct csv_image *im, const char *text, int64_t npix, const char *where,
                      char *msg, size_t msglen)
{
    const char *s = text;
    while (isspace((unsigned char)*s)) {
        s++;
    }
    if (*s == '\0' || strcmp(s, "-") == 0) {
        return 0;
    }
    int64_t prev_end = 0;
    size_t first = im->nruns;
    while (*s) {
        char *e1, *e2;
        errno = 0;
        long long a = strtoll(s, &e1, 10);
        long long b = e1 != s ? strtoll(e1, &e2, 10) : 0;
        if (e1 == s || e2 == e1 || errno || a < 1 || b < 1 ||
            (*e2 && !isspace((unsigned char)*e2))) {
            errf(msg, msglen, "%s: EncodedPixels must be pairs of positive integers 'start length'",
                 where);
            return -1;
        }
        if (a - 1 + b > npix) {
            errf(msg, msglen, "%s: run %lld %lld passes the end of a %lld-pixel image", where, a, b,
                 (long long)npix);
            return -1;
        }
        if (im->nruns > first && a <= prev_end) {
            errf(msg, msglen, "%s: runs must be sorted and not overlap (start %lld)", where, a);
            return -1;
        }
        prev_end = a - 1 + b;
        if (im->nruns == im->cap) {
            im->cap = im->cap ? 2 * im->cap : 16;
            struct run *nr = realloc(im->runs, im->cap * sizeof *nr);
            if (!nr) {
                errf(msg, msglen, "out of memory");
                return -1;
            }
            im->runs = nr;
        }
        im->runs[im->nruns++] = (struct run){a, b};
        s = e2;
        while (isspace((unsigned char)*s)) {
            s++;
        }
    }
    return 0;
}

/* One entry per row first, then the rows of one id merged into the first (sorted by id). */
static int merge_rows(struct csv *c, char *msg, size_t msglen)
{
    qsort(c->im, c->n, sizeof *c->im, cmp_csv_id);
    size_t out = 0, i;
    for (i = 0; i < c->n; i++) {
        struct csv_image *row = &c->im[i];
        if (out == 0 || strcmp(c->im[out - 1].id, row->id) != 0) {
            c->im[out++] = *row;
            continue;
        }
        struct csv_image *dst = &c->im[out - 1];
        struct run *nr = realloc(dst->runs, (dst->nruns + row->nruns + 1) * sizeof *nr);
        if (!nr) {
            break;
        }
        dst->runs = nr;
        dst->cap = dst->nruns + row->nruns + 1;
        memcpy(dst->runs + dst->nruns, row->runs, row->nruns * sizeof *row->runs);
        dst->nruns += row->nruns;
        free(row->id);
        free(row->runs);
    }
    for (size_t k = i; k < c->n; k++) { /* out of memory: the rows not merged */
        free(c->im[k].id);
        free(c->im[k].runs);
    }
    bool oom = i < c->n;
    c->n = out;
    if (oom) {
        errf(msg, msglen, "out of memory");
        return -1;
    }
    return 0;
}

/* Reads a Kaggle CSV into c: one entry per ImageId, sorted by id, each with the runs of all its
 * rows and the position of its first row. */
static int read_csv(struct csv *c, const char *path, int64_t npix, char *msg, size_t msglen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        errf(msg, msglen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int rc = -1;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
            line[--len] = '\0';
        }
        char where[600];
        snprintf(where, sizeof where, "%s:%ld", path, lineno);
        if (lineno == 1) {
            if (strncmp(line, "ImageId,", 8) != 0 && strncmp(line, "\"ImageId\",", 10) != 0) {
                errf(msg, msglen, "%s: the first line must be the header ImageId,EncodedPixels",
                     where);
                goto out;
            }
            continue;
        }
        if (len == 0) {
            continue;
        }
        char *p = line;
        char *id = csv_field(&p);
        char *rle = id ? csv_field(&p) : NULL;
        if (!id || !rle || *id == '\0' || *p != '\0') {
            errf(msg, msglen, "%s: a row is ImageId,EncodedPixels", where);
            goto out;
        }
        if (c->n == c->cap) {
            c->cap = c->cap ? 2 * c->cap : 256;
            struct csv_image *ni = realloc(c->im, c->cap * sizeof *ni);
            if (!ni) {
                errf(msg, msglen, "out of memory");
                goto out;
            }
            c->im = ni;
        }
        struct csv_image *row = &c->im[c->n];
        memset(row, 0, sizeof *row);
        row->order = c->n;
        row->id = strdup(id);
        if (!row->id) {
            errf(msg, msglen, "out of memory");
            goto out;
        }
        c->n++;
        if (parse_runs(row, rle, npix, where, msg, msglen)) {
            goto out;
        }
    }
    if (ferror(f)) {
        errf(msg, msglen, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (c->n == 0) {
        errf(msg, msglen, "%s: no rows", path);
        goto out;
    }
    rc = merge_rows(c, msg, msglen);
out:
    free(line);
    fclose(f);
    return rc;
}

/* The union of im's runs (rows of one image) as an RLE string, runs merged where they touch. */
static char *runs_text(struct csv_image *im)
{
    if (im->nruns > 1) {
        qsort(im->runs, im->nruns, sizeof *im->runs, cmp_run);
    }
    size_t cap = 24 * im->nruns + 2, len = 0;
    char *s = malloc(cap);
    if (!s) {
        return NULL;
    }
    s[0] = '\0';
    for (size_t i = 0; i < im->nruns;) {
        int64_t a = im->runs[i].start, end = a + im->runs[i].len;
        for (i++; i < im->nruns && im->runs[i].start <= end; i++) {
            int64_t e = im->runs[i].start + im->runs[i].len;
            end = e > end ? e : end;
        }
        len += (size_t)snprintf(s + len, cap - len, "%s%lld %lld", len ? " " : "", (long long)a,
                                (long long)(end - a));
    }
    return s;
}

/* Reads two Kaggle RLE CSV files and pairs their images into d (--shape gives H and W); 0, or -1
 * with msg. */
static int open_csv(struct cli_data *d, const char *ppath, const char *tpath, char *msg,
                    size_t msglen)
{
    struct csv p = {0}, t = {0};
    int rc = -1;
    if (d->h <= 0 || d->w <= 0) {
        errf(msg, msglen, "CSV inputs need --shape H,W (the images' height and width)");
        return -1;
    }
    if (read_csv(&p, ppath, d->h * d->w, msg, msglen) ||
        read_csv(&t, tpath, d->h * d->w, msg, msglen)) {
        goto out;
    }
    /* both are sorted by id: walk them together */
    for (size_t i = 0, j = 0; i < p.n || j < t.n;) {
        int c = i == p.n ? 1 : j == t.n ? -1 : strcmp(p.im[i].id, t.im[j].id);
        if (c != 0) {
            errf(msg, msglen, "ImageId %s is in %s but not in %s", c < 0 ? p.im[i].id : t.im[j].id,
                 c < 0 ? ppath : tpath, c < 0 ? tpath : ppath);
            goto out;
        }
        p.im[i].order = t.im[j].order; /* the target file's order */
        i++;
        j++;
    }
    qsort(p.im, p.n, sizeof *p.im, cmp_order);
    qsort(t.im, t.n, sizeof *t.im, cmp_order);
    d->images = calloc(t.n, sizeof *d->images);
    if (!d->images) {
        errf(msg, msglen, "out of memory");
        goto out;
    }
    d->nimages = (int64_t)t.n;
    for (size_t i = 0; i < t.n; i++) {
        struct cli_image *im = &d->images[i];
        im->index = (int64_t)i;
        im->id = t.im[i].id;
        t.im[i].id = NULL;
        im->pred_rle = runs_text(&p.im[i]);
        im->target_rle = runs_text(&t.im[i]);
        if (!im->pred_rle || !im->target_rle) {
            errf(msg, msglen, "out of memory");
            goto out;
        }
    }
    rc = 0;
out:
    csv_free(&p);
    csv_free(&t);
    return rc;
}

/* ---- the data set ------------------------------------------------------------------------------
 */

/* Opens two .npy batch files as d's images (one per index of axis 0); 0, or -1 with msg. */
static int open_files(struct cli_data *d, const char *ppath, const char *tpath, char *msg,
                      size_t msglen)
{
    if (npy_open(&d->pred, ppath, msg, msglen) || npy_open(&d->target, tpath, msg, msglen)) {
        return -1;
    }
    if (d->pred.ndim < 2 || d->target.ndim < 2) {
        errf(msg, msglen, "%s: a batch file is [N, ...] with at least 2 axes",
             d->pred.ndim < 2 ? ppath : tpath);
        return -1;
    }
    if (d->pred.shape[0] != d->target.shape[0]) {
        errf(msg, msglen, "%s holds %lld images, %s %lld", ppath, (long long)d->pred.shape[0],
             tpath, (long long)d->target.shape[0]);
        return -1;
    }
    d->nimages = d->pred.shape[0];
    if (d->nimages == 0) {
        errf(msg, msglen, "%s: no images (N = 0)", ppath);
        return -1;
    }
    d->images = calloc((size_t)d->nimages, sizeof *d->images);
    if (!d->images) {
        errf(msg, msglen, "out of memory");
        return -1;
    }
    for (int64_t i = 0; i < d->nimages; i++) {
        char id[24];
        snprintf(id, sizeof id, "%lld", (long long)i);
        d->images[i].index = i;
        d->images[i].id = strdup(id);
        if (!d->images[i].id) {
            errf(msg, msglen, "out of memory");
            return -1;
        }
    }
    return 0;
}

/* Kind of a path: a directory, a .csv file, or a .npy(.gz) file. */
static enum cli_src_kind kind_of(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        return CLI_SRC_DIR;
    }
    return ends_with(path, ".csv") || ends_with(path, ".CSV") ? CLI_SRC_CSV : CLI_SRC_NPY;
}

/* Bytes image i of d sends (prediction and target), to size batches. */
static int64_t image_bytes(const struct cli_data *d, int64_t i)
{
    switch (d->kind) {
    case CLI_SRC_NPY:
        return cli_npy_image_bytes(&d->pred, false) + cli_npy_image_bytes(&d->target, false);
    case CLI_SRC_DIR:
        return cli_npy_image_bytes(&d->images[i].pred, true) +
               cli_npy_image_bytes(&d->images[i].target, true);
    case CLI_SRC_CSV:
        break;
    }
    return 2 * d->h * d->w;
}

/* Opens the data set by the kind of its paths and cuts it into batches (cli.h); 0, or -1 with msg.
 */
int cli_data_open(struct cli_data *d, const char *pred, const char *target, int64_t h, int64_t w,
                  int64_t batch_size, char *msg, size_t msglen)
{
    memset(d, 0, sizeof *d);
    d->h = h;
    d->w = w;
    d->kind = kind_of(pred);
    if (kind_of(target) != d->kind) {
        errf(msg, msglen,
             "--pred and --target must be the same kind: two .npy files, two directories or "
             "two .csv files");
        return -1;
    }
    if ((h > 0) != (d->kind == CLI_SRC_CSV)) {
        errf(msg, msglen, "--shape H,W is for CSV inputs only");
        return -1;
    }
    int rc = d->kind == CLI_SRC_DIR   ? open_dirs(d, pred, target, msg, msglen)
             : d->kind == CLI_SRC_CSV ? open_csv(d, pred, target, msg, msglen)
                                      : open_files(d, pred, target, msg, msglen);
    if (rc) {
        return -1;
    }
    d->batch_start = malloc(sizeof(int64_t) * (size_t)(d->nimages + 1));
    if (!d->batch_start) {
        errf(msg, msglen, "out of memory");
        return -1;
    }
    int64_t bsize = batch_size;
    if (bsize <= 0) {
        int64_t per = image_bytes(d, 0);
        bsize = per > 0 ? BATCH_BYTES / per : BATCH_MAX;
        bsize = bsize < 1 ? 1 : bsize > BATCH_MAX ? BATCH_MAX : bsize;
    }
    int nb = 0;
    for (int64_t i = 0; i < d->nimages;) {
        d->batch_start[nb++] = i;
        int64_t j = i + 1;
        while (
            j < d->nimages && j - i < bsize &&
            (d->kind != CLI_SRC_DIR || (same_layout(&d->images[j].pred, &d->images[i].pred) &&
                                        same_layout(&d->images[j].target, &d->images[i].target)))) {
            j++;
        }
        i = j;
    }
    d->batch_start[nb] = d->nimages;
    d->nbatches = nb;
    if (d->kind == CLI_SRC_NPY && nb > 1 && (d->pred.fortran || d->target.fortran)) {
        errf(msg, msglen,
             "%s is Fortran-ordered and cannot be cut into batches along axis 0; raise "
             "--batch-size to %lld or save it with np.ascontiguousarray",
             d->pred.fortran ? d->pred.path : d->target.path, (long long)d->nimages);
        return -1;
    }
    return 0;
}

/* Frees what d holds and zeroes it; NULL is fine. */
void cli_data_free(struct cli_data *d)
{
    if (!d) {
        return;
    }
    for (int64_t i = 0; d->images && i < d->nimages; i++) {
        free(d->images[i].id);
        npy_free(&d->images[i].pred);
        npy_free(&d->images[i].target);
        free(d->images[i].pred_rle);
        free(d->images[i].target_rle);
    }
    free(d->images);
    free(d->batch_start);
    npy_free(&d->pred);
    npy_free(&d->target);
    memset(d, 0, sizeof *d);
}

/* ---- one source: the images of a challenge's reference or submission ------------------------ */

/* Whether id is an image id the challenge routes take: [A-Za-z0-9._-]{1,128}. */
static bool id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n < 1 || n > 128) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        if (!isalnum(c) && c != '.' && c != '_' && c != '-') {
            return false;
        }
    }
    return true;
}

/* Reads the ids file (one id a line, blank lines skipped) as the ids of d's n images, which
 * open_files numbered "0".."n-1"; 0, or -1 with msg (a count that is not n). */
static int read_ids(struct cli_data *d, const char *path, char *msg, size_t msglen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        errf(msg, msglen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int64_t k = 0;
    int rc = 0;
    while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
        while (len > 0 && isspace((unsigned char)line[len - 1])) {
            line[--len] = '\0';
        }
        if (len == 0) {
            continue;
        }
        if (k == d->nimages) {
            errf(msg, msglen, "%s: more ids than the %lld images of %s", path,
                 (long long)d->nimages, d->pred.path);
            rc = -1;
            break;
        }
        char *id = strdup(line);
        if (!id) {
            errf(msg, msglen, "out of memory");
            rc = -1;
            break;
        }
        free(d->images[k].id);
        d->images[k++].id = id;
    }
    free(line);
    fclose(f);
    if (rc == 0 && k != d->nimages) {
        errf(msg, msglen, "%s: %lld ids for the %lld images of %s", path, (long long)k,
             (long long)d->nimages, d->pred.path);
        rc = -1;
    }
    return rc;
}

/* A directory's .npy files as d's images, each file's header in its image's pred; 0, or -1. */
static int open_dir1(struct cli_data *d, const char *dir, char *msg, size_t msglen)
{
    struct entry *e = NULL;
    size_t n = 0;
    if (list_dir(dir, &e, &n, msg, msglen)) {
        return -1;
    }
    int rc = -1;
    d->images = calloc(n, sizeof *d->images);
    if (!d->images) {
        errf(msg, msglen, "out of memory");
        goto out;
    }
    d->nimages = (int64_t)n;
    for (size_t i = 0; i < n; i++) {
        struct cli_image *im = &d->images[i];
        im->index = (int64_t)i;
        im->id = e[i].id;
        e[i].id = NULL;
        if (npy_open(&im->pred, e[i].path, msg, msglen)) {
            goto out;
        }
        if (im->pred.fortran && im->pred.ndim > 1) {
            errf(msg, msglen,
                 "%s: Fortran-order files are not supported; save it with "
                 "np.save(path, np.ascontiguousarray(a))",
                 im->pred.path);
            goto out;
        }
    }
    rc = 0;
out:
    entries_free(e, n);
    return rc;
}

/* One Kaggle CSV file as d's images (in the order their ids first appear), each with its runs
 * merged in pred_rle; 0, or -1 with msg. */
static int open_csv1(struct cli_data *d, const char *path, char *msg, size_t msglen)
{
    struct csv c = {0};
    int rc = -1;
    if (d->h <= 0 || d->w <= 0) {
        errf(msg, msglen, "a CSV file needs --shape H,W (the images' height and width)");
        return -1;
    }
    if (read_csv(&c, path, d->h * d->w, msg, msglen)) {
        goto out;
    }
    qsort(c.im, c.n, sizeof *c.im, cmp_order);
    d->images = calloc(c.n, sizeof *d->images);
    if (!d->images) {
        errf(msg, msglen, "out of memory");
        goto out;
    }
    d->nimages = (int64_t)c.n;
    for (size_t i = 0; i < c.n; i++) {
        struct cli_image *im = &d->images[i];
        im->index = (int64_t)i;
        im->id = c.im[i].id;
        c.im[i].id = NULL;
        im->pred_rle = runs_text(&c.im[i]);
        if (!im->pred_rle) {
            errf(msg, msglen, "out of memory");
            goto out;
        }
    }
    rc = 0;
out:
    csv_free(&c);
    return rc;
}

/* Opens one source (cli.h) into d's pred side as a single batch; 0, or -1 with msg. */
int cli_source_open(struct cli_data *d, const char *path, const char *ids_file, int64_t h,
                    int64_t w, char *msg, size_t msglen)
{
    memset(d, 0, sizeof *d);
    d->h = h;
    d->w = w;
    d->kind = kind_of(path);
    if ((h > 0) != (d->kind == CLI_SRC_CSV)) {
        errf(msg, msglen, "--shape H,W is for a CSV file only");
        return -1;
    }
    if (ids_file && d->kind != CLI_SRC_NPY) {
        errf(msg, msglen,
             "--ids is for a stacked .npy file only (a directory's ids are its "
             "file names, a CSV file's its ImageId column)");
        return -1;
    }
    int rc;
    if (d->kind == CLI_SRC_DIR) {
        rc = open_dir1(d, path, msg, msglen);
    } else if (d->kind == CLI_SRC_CSV) {
        rc = open_csv1(d, path, msg, msglen);
    } else {
        /* a stacked [N, ...] file: image i is index i of axis 0 (the target side unused) */
        rc = npy_open(&d->pred, path, msg, msglen);
        if (rc == 0 && d->pred.ndim < 2) {
            errf(msg, msglen, "%s: a stacked file is [N, ...] with at least 2 axes", path);
            rc = -1;
        }
        if (rc == 0 && d->pred.fortran) {
            errf(msg, msglen,
                 "%s is Fortran-ordered and cannot be cut into images along axis 0; save it "
                 "with np.save(path, np.ascontiguousarray(a))",
                 path);
            rc = -1;
        }
        d->nimages = rc == 0 ? d->pred.shape[0] : 0;
        if (rc == 0 && d->nimages == 0) {
            errf(msg, msglen, "%s: no images (N = 0)", path);
            rc = -1;
        }
        if (rc == 0) {
            d->images = calloc((size_t)d->nimages, sizeof *d->images);
            rc = d->images ? 0 : -1;
            if (rc) {
                errf(msg, msglen, "out of memory");
            }
        }
        for (int64_t i = 0; rc == 0 && i < d->nimages; i++) {
            char id[24];
            snprintf(id, sizeof id, "%lld", (long long)i);
            d->images[i].index = i;
            d->images[i].id = strdup(id);
            if (!d->images[i].id) {
                errf(msg, msglen, "out of memory");
                rc = -1;
            }
        }
        if (rc == 0 && ids_file) {
            rc = read_ids(d, ids_file, msg, msglen);
        }
    }
    if (rc) {
        return -1;
    }
    for (int64_t i = 0; i < d->nimages; i++) {
        if (!id_ok(d->images[i].id)) {
            errf(msg, msglen,
                 "image id '%.140s' (of %s): ids are 1 to 128 letters, digits, '.', '_' or '-'",
                 d->images[i].id, path);
            return -1;
        }
    }
    d->batch_start = malloc(2 * sizeof *d->batch_start);
    if (!d->batch_start) {
        errf(msg, msglen, "out of memory");
        return -1;
    }
    d->batch_start[0] = 0;
    d->batch_start[1] = d->nimages;
    d->nbatches = 1;
    return 0;
}

/* Parses --shape's "H,W": positive integers of at most 2^31, nothing after. Returns 0 with *h and
 * *w, or -1. */
int cli_parse_shape(const char *a, int64_t *h, int64_t *w)
{
    long long hh, ww;
    char extra;
    if (sscanf(a, "%lld,%lld%c", &hh, &ww, &extra) != 2 || hh < 1 || ww < 1 || hh > (1LL << 31) ||
        ww > (1LL << 31)) {
        return -1;
    }
    *h = hh;
    *w = ww;
    return 0;
}

/* Parses --compress's auto, gzip, zstd or none. Returns 0 with *c, or -1. */
int cli_parse_compress(const char *a, enum cli_compress *c)
{
    static const char *const names[] = {"auto", "gzip", "none", "zstd"};
    static const enum cli_compress values[] = {CLI_COMPRESS_AUTO, CLI_COMPRESS_GZIP,
                                               CLI_COMPRESS_NONE, CLI_COMPRESS_ZSTD};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(a, names[i]) == 0) {
            *c = values[i];
            return 0;
        }
    }
    return -1;
}
