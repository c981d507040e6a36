/* chal_auth.c - who is asking (CHALLENGES.md "Authentication"), the challenges' /metrics series,
 * and opening and closing the challenges' part of the server (store, admin token, re-score).
 *
 * Authentication: "Authorization: Bearer TOKEN". The admin token's SHA-256 is compared in
 * constant time; a participant token is found by its SHA-256 in the store. A presented token
 * must be valid wherever it is sent (401 otherwise, with WWW-Authenticate: Bearer), a
 * participant's token works in its own challenge only, and a participant on an admin route is
 * 403. No token, hash or Authorization value is ever written to a log or an answer.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../proto/internal.h" /* proto/internal.h: slp__parse_spec, the JSON writers */
#include "chal_internal.h"
#include "sha256.h"

static const char off_detail[] =
    "challenges are off on this server; start seglossd with --data-dir DIR (env "
    "SEGLOSS_DATA_DIR), or --db postgresql://... with --blob-dir for replicas, to turn them on";

/* ---- authentication ------------------------------------------------------------------------ */

/* Whether a and b (32 bytes) are equal, in time independent of where they differ. */
static bool same_hash(const unsigned char *a, const unsigned char *b)
{
    unsigned char d = 0;
    for (int i = 0; i < 32; i++) {
        d |= (unsigned char)(a[i] ^ b[i]);
    }
    return d == 0;
}

/* Reads the request's token into req->auth. challenge: the route's challenge (NULL: none).
 * Returns 0, or 401 with the detail in buf. */
static int auth_read(struct srv_req *req, const char *challenge, char *buf, size_t n)
{
    struct chal_server *cs = req->srv->chal;
    memset(&req->auth, 0, sizeof req->auth);
    const char *h = srv_header(req->conn, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h) {
        return 0;
    }
    if (strncasecmp(h, "Bearer ", 7) != 0) {
        snprintf(buf, n, "Authorization must be 'Bearer TOKEN'");
        return 401;
    }
    const char *tok = h + 7;
    while (*tok == ' ') {
        tok++;
    }
    size_t len = strlen(tok);
    while (len > 0 && tok[len - 1] == ' ') {
        len--;
    }
    if (len == 0 || len > 512) {
        snprintf(buf, n, "Authorization: the bearer token is empty or too long");
        return 401;
    }
    unsigned char hash[32];
    struct slp_sha256 s;
    slp_sha256_init(&s);
    slp_sha256_update(&s, tok, len);
    slp_sha256_final(&s, hash);
    if (same_hash(hash, cs->admin_hash)) {
        req->auth.who = WHO_ADMIN;
        return 0;
    }
    struct store_participant p;
    char msg[256];
    int rc = store_token_lookup(cs->store, hash, &p, msg, sizeof msg);
    if (rc == STORE_ENOTFOUND) {
        snprintf(buf, n, "unknown token");
        return 401;
    }
    if (rc) {
        chal_log_store("token lookup", msg);
        snprintf(buf, n, "the token could not be checked (store unavailable)");
        return 503;
    }
    if (p.revoked) {
        snprintf(buf, n, "this token was revoked");
        return 401;
    }
    if (challenge && strcmp(p.challenge, challenge) != 0) {
        snprintf(buf, n, "this token belongs to another challenge");
        return 401;
    }
    req->auth.who = WHO_PARTICIPANT;
    req->auth.pid = p.id;
    snprintf(req->auth.name, sizeof req->auth.name, "%s", p.name);
    return 0;
}

/* Checks that challenges are on, who is asking, and the challenge name (a bad one is 422 on a
 * PUT, which may create it, 404 elsewhere). Returns 0 or the status, detail in buf. */
static int gate(struct srv_req *req, bool has_challenge, enum need need, char *buf, size_t n)
{
    if (!req->srv->chal) {
        snprintf(buf, n, "%s", off_detail);
        return 404;
    }
    const char *c = has_challenge ? req->params[0] : NULL;
    int st = auth_read(req, c, buf, n);
    if (st) {
        return st;
    }
    int who = req->auth.who;
    if (need == NEED_ADMIN && who != WHO_ADMIN) {
        snprintf(buf, n,
                 who == WHO_ANON ? "this route needs the admin token"
                                 : "this route is the organiser's: a participant's "
                                   "token may not use it");
        return who == WHO_ANON ? 401 : 403;
    }
    if (need == NEED_PARTICIPANT && who != WHO_PARTICIPANT) {
        snprintf(buf, n,
                 who == WHO_ANON ? "this route needs a participant's token"
                                 : "submissions belong to participants: use a "
                                   "participant's token (POST "
                                   "/v1/challenges/{c}/participants makes one)");
        return who == WHO_ANON ? 401 : 403;
    }
    if (need == NEED_PARTICIPANT_OR_ADMIN && who == WHO_ANON) {
        snprintf(buf, n, "this route needs a participant's or the admin token");
        return 401;
    }
    if (c && !chal_name_ok(c)) {
        snprintf(buf, n,
                 "'%.128s' is not a challenge name: [a-z0-9][a-z0-9-]{0,62} (lowercase letters, "
                 "digits and '-')",
                 c);
        return req->method_bit == SRV_PUT ? 422 : 404;
    }
    return 0;
}

/* An admit step: gate() with its answer noted for after the body. */
static int admit_with(struct srv_req *req, enum need need)
{
    int st = gate(req, true, need, req->in.fail_msg, sizeof req->in.fail_msg);
    if (st == 401) {
        req->in.fail_hdr[0] = WWW_AUTH;
        req->in.fail_hdr[1] = WWW_AUTH_VALUE;
    }
    return st;
}

int chal_admit_admin(struct srv_req *req)
{
    return admit_with(req, NEED_ADMIN);
}

int chal_admit_participant(struct srv_req *req)
{
    return admit_with(req, NEED_PARTICIPANT);
}

/* gate() for a route without a body; answers and returns true when refused. */
bool chal_gate_reply(struct srv_req *req, bool has_challenge, enum need need, enum MHD_Result *ret)
{
    char buf[300];
    int st = gate(req, has_challenge, need, buf, sizeof buf);
    if (st) {
        *ret = chal_reply_problem(req, st, "%s", buf);
        return true;
    }
    return false;
}

bool chal_begin(struct srv_req *req, enum need need, struct store_challenge *c,
                struct slc_config **cfg, enum MHD_Result *ret)
{
    char buf[400];
    if (chal_gate_reply(req, true, need, ret)) {
        return true;
    }
    int st = chal_load(req->srv->chal, req->params[0], &req->srv->limits, c, cfg, buf, sizeof buf);
    if (st) {
        *ret = chal_reply_problem(req, st, "%s", buf);
        return true;
    }
    return false;
}

/* ---- /metrics --------------------------------------------------------------------------- */

void chal_metrics(struct srv_server *srv, struct slp_dynbuf *b)
{
    struct store_count *counts = NULL;
    size_t n = 0;
    char msg[256];
    if (store_sub_counts(srv->chal->store, &counts, &n, msg, sizeof msg) != 0) {
        chal_log_store("metrics", msg);
        return;
    }
    slp_dynbuf_adds(b, "# HELP segloss_challenge_submissions Submissions stored, by challenge and "
                       "status.\n# TYPE segloss_challenge_submissions gauge\n");
    for (size_t i = 0; i < n; i++) {
        /* challenge names are [a-z0-9-]: nothing to escape in a label */
        slp_dynbuf_addf(b, "segloss_challenge_submissions{challenge=\"%s\",status=\"%s\"} %lld\n",
                        counts[i].challenge, chal_status_names[counts[i].status],
                        (long long)counts[i].n);
    }
    free(counts);
    pthread_mutex_lock(&srv->chal->mu);
    uint64_t ok = srv->chal->answered[STORE_SCORED], bad = srv->chal->answered[STORE_FAILED];
    pthread_mutex_unlock(&srv->chal->mu);
    slp_dynbuf_addf(b,
                    "# HELP segloss_challenge_answers_total Submissions answered since start, by "
                    "outcome.\n# TYPE segloss_challenge_answers_total counter\n"
                    "segloss_challenge_answers_total{status=\"scored\"} %llu\n"
                    "segloss_challenge_answers_total{status=\"failed\"} %llu\n",
                    (unsigned long long)ok, (unsigned long long)bad);
}

/* ---- opening and closing ------------------------------------------------------------------- */

/* Reads the admin token from path (trailing whitespace dropped) and keeps its SHA-256. */
static int admin_token_read(struct chal_server *cs, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read the admin token file %s: %s", path, strerror(errno));
        return -1;
    }
    char tok[600];
    size_t n = fread(tok, 1, sizeof tok - 1, f);
    fclose(f);
    while (n > 0 &&
           (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' ' || tok[n - 1] == '\t')) {
        n--;
    }
    if (n < 16 || n > 512) {
        snprintf(err, errlen, "the admin token in %s must be 16 to 512 characters", path);
        explicit_bzero(tok, sizeof tok);
        return -1;
    }
    struct slp_sha256 s;
    slp_sha256_init(&s);
    slp_sha256_update(&s, tok, n);
    slp_sha256_final(&s, cs->admin_hash);
    explicit_bzero(tok, sizeof tok);
    return 0;
}

/* Creates DIR/admin.token (mode 0600) with a new random token when it does not exist. */
static int admin_token_make(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        if (errno == EEXIST) {
            return 0;
        }
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    unsigned char raw[32];
    char tok[66];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        close(fd);
        unlink(path);
        snprintf(err, errlen, "no random bytes for the admin token");
        return -1;
    }
    slp_hex(raw, sizeof raw, tok);
    tok[64] = '\n';
    bool ok = write(fd, tok, 65) == 65 && fsync(fd) == 0;
    explicit_bzero(tok, sizeof tok);
    explicit_bzero(raw, sizeof raw);
    if (close(fd) != 0 || !ok) {
        unlink(path);
        snprintf(err, errlen, "cannot write %s", path);
        return -1;
    }
    fprintf(stderr, "seglossd: challenges: the admin token is in %s (mode 0600)\n", path);
    return 0;
}

int chal_server_open(struct srv_server *srv, char *err, size_t errlen)
{
    const struct srv_config *cfg = &srv->cfg;
    srv->chal = NULL;
    if (!cfg->data_dir[0] && !cfg->db[0]) {
        return 0;
    }
    if (cfg->db[0] && !cfg->blob_dir[0]) {
        snprintf(err, errlen,
                 "--db needs --blob-dir DIR (env SEGLOSS_BLOB_DIR): the blobs' "
                 "directory, the same one on every replica");
        return -1;
    }
    if (cfg->db[0] && !cfg->data_dir[0] && !cfg->admin_token_file[0]) {
        snprintf(err, errlen,
                 "--db needs --admin-token-file FILE (env SEGLOSS_ADMIN_TOKEN_FILE): "
                 "every replica must know the same admin token");
        return -1;
    }
    struct chal_server *cs = calloc(1, sizeof *cs);
    if (!cs) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    pthread_mutex_init(&cs->mu, NULL);
    pthread_cond_init(&cs->wake, NULL);
    if (cfg->data_dir[0] && mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create the data directory %s: %s", cfg->data_dir,
                 strerror(errno));
        goto fail;
    }
    char path[1100];
    if (cfg->admin_token_file[0]) {
        snprintf(path, sizeof path, "%s", cfg->admin_token_file);
    } else {
        snprintf(path, sizeof path, "%s/admin.token", cfg->data_dir);
        if (admin_token_make(path, err, errlen) != 0) {
            goto fail;
        }
    }
    if (admin_token_read(cs, path, err, errlen) != 0) {
        goto fail;
    }
    struct store_options so = {cfg->data_dir, cfg->db, cfg->db_password_file, cfg->blob_dir,
                               cfg->lease_seconds};
    if (store_open(&so, &cs->store, err, errlen) != 0) {
        goto fail;
    }
    srv->chal = cs;
    if (chal_rescore_start(srv) != 0) {
        snprintf(err, errlen, "cannot start the re-score thread");
        srv->chal = NULL;
        store_close(cs->store);
        goto fail;
    }
    return 0;
fail:
    pthread_mutex_destroy(&cs->mu);
    pthread_cond_destroy(&cs->wake);
    free(cs);
    return -1;
}

void chal_server_close(struct srv_server *srv)
{
    struct chal_server *cs = srv->chal;
    if (!cs) {
        return;
    }
    chal_rescore_stop(cs);
    store_close(cs->store);
    chal_ref_cache_free(cs);
    for (int i = 0; i < CHAL_BOARD_CACHE; i++) {
        free(cs->boards[i].text);
    }
    pthread_mutex_destroy(&cs->mu);
    pthread_cond_destroy(&cs->wake);
    explicit_bzero(cs->admin_hash, sizeof cs->admin_hash);
    free(cs);
    srv->chal = NULL;
}
