/* net.c - the CLI's HTTP: POST a streamed batch to /v1/score with retries (503, 429 and
 * connection errors, exponential backoff, the server's Retry-After), GET a status. One curl
 * handle is reused so batches share a kept-alive connection. */
#include <curl/curl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "dynbuf.h"

#define ANSWER_MAX (1024L * 1024 * 1024) /* bytes of one answer kept, at most */
#define BACKOFF_CAP 8.0                  /* seconds between retries, unless Retry-After says more */
#define RETRY_AFTER_CAP 60.0             /* seconds: a longer Retry-After is cut to this */

/* One attempt's answer: the body (capped at ANSWER_MAX; its err says SL_ETOOLARGE or SL_ENOMEM
 * when it stopped) and the Retry-After header. */
struct answer {
    struct slp_dynbuf body;
    double retry_after; /* seconds, -1 when absent */
};

/* Starts an empty answer. */
static void answer_init(struct answer *a)
{
    slp_dynbuf_init(&a->body, (size_t)ANSWER_MAX);
    a->retry_after = -1;
}

/* curl's write callback: appends to the answer; 0 (curl stops) over the cap or out of memory. */
static size_t on_write(char *data, size_t size, size_t n, void *ud)
{
    struct answer *a = ud;
    size_t k = size * n;
    return slp_dynbuf_add(&a->body, data, k) == 0 ? k : 0;
}

/* curl's header callback: keeps Retry-After (seconds). */
static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
    struct answer *a = ud;
    size_t k = size * n;
    if (k > 12 && strncasecmp(data, "Retry-After:", 12) == 0) {
        char tmp[32];
        size_t m = k - 12 < sizeof tmp - 1 ? k - 12 : sizeof tmp - 1;
        memcpy(tmp, data + 12, m);
        tmp[m] = '\0';
        char *end;
        double v = strtod(tmp, &end);
        if (end != tmp && v >= 0 && isfinite(v)) {
            a->retry_after = v;
        }
    }
    return k;
}

/* curl's read callback: the body, and where a failing read leaves its reason. */
struct reader {
    struct cli_body *body;
    char msg[512];
};

/* Reads the body for curl; a failing read aborts the transfer with its reason in r->msg. */
static size_t on_read(char *buf, size_t size, size_t n, void *ud)
{
    struct reader *r = ud;
    long got = cli_body_read(r->body, buf, size * n, r->msg, sizeof r->msg);
    return got < 0 ? CURL_READFUNC_ABORT : (size_t)got;
}

/* Whether net's cancel flag (if any) is set. */
static bool cancelled(const struct cli_net *net)
{
    return net->cancel && atomic_load(net->cancel);
}

/* Sleeps s seconds, in steps of at most 50 ms so that a cancel (net->cancel) ends it early. */
static void sleep_s(const struct cli_net *net, double s)
{
    while (s > 0 && !cancelled(net)) {
        double step = s < 0.05 ? s : 0.05;
        struct timespec ts = {(time_t)step, (long)((step - floor(step)) * 1e9)};
        nanosleep(&ts, NULL);
        s -= step;
    }
}

/* curl's progress callback: nonzero (curl aborts the transfer) once net's cancel flag is set. */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return cancelled(ud) ? 1 : 0;
}

/* Whether a curl error is worth a retry: no connection, a failed send or receive, no answer or
 * part of one. */
static bool retryable_curl(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        return true;
    default:
        return false;
    }
}

/* "TITLE: DETAIL" of a problem+json error answer (RFC 9457), else its first bytes. */
static void problem_text(const struct answer *a, char *out, size_t outlen)
{
    const struct slp_dynbuf *b = &a->body;
    json_t *j = b->data ? json_loadb(b->data, b->len, 0, NULL) : NULL;
    const char *title = j ? json_string_value(json_object_get(j, "title")) : NULL;
    const char *detail = j ? json_string_value(json_object_get(j, "detail")) : NULL;
    if (detail) {
        snprintf(out, outlen, "%s%s%s", title ? title : "", title ? ": " : "", detail);
    } else {
        snprintf(out, outlen, "%.200s", b->data ? b->data : "(no body)");
    }
    json_decref(j);
}

/* net's curl handle, made on first use (reused for keep-alive); NULL on out of memory. */
/* After a failed attempt: the wait before the next one in *wait (the answer's Retry-After when
 * longer than delay, capped) and whether to stop - not retryable, or out of retries - with why in
 * msg. Frees a's body. */
static bool attempt_over(const struct cli_net *net, struct answer *a, double delay, bool retry,
                         int attempt, const char *why, double *wait, char *msg, size_t msglen)
{
    *wait = delay;
    if (a->retry_after > *wait) {
        *wait = a->retry_after < RETRY_AFTER_CAP ? a->retry_after : RETRY_AFTER_CAP;
    }
    slp_dynbuf_free(&a->body);
    if (!retry || attempt >= net->retries) {
        if (retry && attempt > 0) {
            snprintf(msg, msglen, "%s (after %d retries)", why, attempt);
        } else {
            snprintf(msg, msglen, "%s", why);
        }
        return true;
    }
    return false;
}

static CURL *handle(struct cli_net *net)
{
    if (!net->curl) {
        net->curl = curl_easy_init();
    }
    return net->curl;
}

/* POSTs the body with retries and backoff (cli.h). Returns 0 with *answer (new), or -1 with msg. */
int cli_post_score(struct cli_net *net, struct cli_body *body, const char *what, json_t **answer,
                   char *msg, size_t msglen)
{
    CURL *c = handle(net);
    if (!c) {
        snprintf(msg, msglen, "out of memory (curl)");
        return -1;
    }
    char url[2048];
    snprintf(url, sizeof url, "%s/v1/score", net->url);
    char ctype[160];
    snprintf(ctype, sizeof ctype, "Content-Type: %s", cli_body_content_type(body));
    struct curl_slist *hdrs = curl_slist_append(NULL, ctype);
    hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
    hdrs = curl_slist_append(hdrs, "Expect:");
    int rc = -1;
    double delay = net->backoff_s;
    for (int attempt = 0;; attempt++) {
        struct answer a;
        answer_init(&a);
        struct reader rd = {body, ""};
        cli_body_rewind(body);
        curl_easy_reset(c);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(c, CURLOPT_READDATA, &rd);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &a);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, &a);
        curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
        curl_easy_setopt(c, CURLOPT_TIMEOUT, net->timeout_s);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, net->timeout_s < 10 ? net->timeout_s : 10L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_USERAGENT,
                         "segloss-cli/"
                         "0.1.0");
        if (net->cancel) {
            curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
            curl_easy_setopt(c, CURLOPT_XFERINFODATA, net);
            curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        }
        CURLcode cr = curl_easy_perform(c);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        bool retry = false;
        char why[1200];
        if (cancelled(net)) {
            snprintf(msg, msglen, "cancelled");
            slp_dynbuf_free(&a.body);
            break;
        } else if (cr == CURLE_ABORTED_BY_CALLBACK || (cr != CURLE_OK && rd.msg[0])) {
            snprintf(msg, msglen, "%s", rd.msg);
            slp_dynbuf_free(&a.body);
            break;
        } else if (cr != CURLE_OK && !(cr == CURLE_WRITE_ERROR && status)) {
            snprintf(why, sizeof why, "%s: %s", net->url, curl_easy_strerror(cr));
            retry = retryable_curl(cr);
        } else if (a.body.err == SL_ETOOLARGE) {
            snprintf(why, sizeof why, "the answer is over %ld bytes", ANSWER_MAX);
        } else if (status == 200) {
            json_error_t je;
            *answer = json_loadb(a.body.data ? a.body.data : "", a.body.len, 0, &je);
            slp_dynbuf_free(&a.body);
            if (!*answer) {
                snprintf(msg, msglen, "the server's answer is not JSON: %s", je.text);
                break;
            }
            rc = 0;
            break;
        } else {
            char detail[1024];
            problem_text(&a, detail, sizeof detail);
            snprintf(why, sizeof why, "%ld %s", status, detail);
            retry = status == 503 || status == 429;
        }
        double wait;
        if (attempt_over(net, &a, delay, retry, attempt, why, &wait, msg, msglen)) {
            break;
        }
        if (!net->quiet) {
            fprintf(stderr, "segloss: %s: %s; retry %d/%d in %.2g s\n", what, why, attempt + 1,
                    net->retries, wait);
        }
        sleep_s(net, wait);
        delay = delay * 2 < BACKOFF_CAP ? delay * 2 : BACKOFF_CAP;
    }
    curl_slist_free_all(hdrs);
    return rc;
}

/* --compress auto's codec by the server's catalog (cli.h). */
enum cli_compress cli_auto_codec(struct cli_net *net)
{
    struct cli_reply r = {0};
    char msg[CLI_MSG];
    long st = cli_request(net, "GET", "/v1/catalog", NULL, NULL, NULL, NULL, &r, msg, sizeof msg);
    json_t *j = st == 200 && r.body ? json_loadb(r.body, r.len, 0, NULL) : NULL;
    enum cli_compress c = CLI_COMPRESS_GZIP;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(j, "compression"), i, e)
    {
        if (json_is_string(e) && strcmp(json_string_value(e), "zstd") == 0) {
            c = CLI_COMPRESS_ZSTD;
        }
    }
    json_decref(j);
    cli_reply_clear(&r);
    return c;
}

/* curl's write callback that drops the body. */
static size_t on_discard(char *data, size_t size, size_t n, void *ud)
{
    (void)data;
    (void)ud;
    return size * n;
}

/* GET url/path; returns the HTTP status, or -1 with msg. */
long cli_get_status(struct cli_net *net, const char *path, char *msg, size_t msglen)
{
    CURL *c = handle(net);
    if (!c) {
        snprintf(msg, msglen, "out of memory (curl)");
        return -1;
    }
    char url[2048];
    snprintf(url, sizeof url, "%s%s", net->url, path);
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_discard);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, net->timeout_s);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode cr = curl_easy_perform(c);
    if (cr != CURLE_OK) {
        snprintf(msg, msglen, "%s: %s", url, curl_easy_strerror(cr));
        return -1;
    }
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

/* Frees what r holds and zeroes it (NULL is fine). */
void cli_reply_clear(struct cli_reply *r)
{
    if (r) {
        free(r->body);
        memset(r, 0, sizeof *r);
    }
}

/* "TITLE: DETAIL" of an error answer r (problem+json), else its first bytes, into out. */
void cli_reply_problem(const struct cli_reply *r, char *out, size_t outlen)
{
    struct answer a;
    memset(&a, 0, sizeof a);
    a.body.data = r->body;
    a.body.len = r->len;
    problem_text(&a, out, outlen);
}

/* Whether method is idempotent (RFC 9110 9.2.2): a repeat after a lost answer changes nothing. */
static bool idempotent(const char *method)
{
    return strcmp(method, "POST") != 0;
}

/* One request with retries (cli.h): the status with *out, or -1 with msg. */
long cli_request(struct cli_net *net, const char *method, const char *path, const char *token,
                 struct cli_body *body, const char *text, const char *ctype, struct cli_reply *out,
                 char *msg, size_t msglen)
{
    memset(out, 0, sizeof *out);
    out->retry_after = -1;
    CURL *c = handle(net);
    if (!c) {
        snprintf(msg, msglen, "out of memory (curl)");
        return -1;
    }
    char url[2048];
    snprintf(url, sizeof url, "%s%s", net->url, path);
    struct curl_slist *hdrs = NULL;
    char line[256];
    if (body || text) {
        snprintf(line, sizeof line, "Content-Type: %s",
                 body    ? cli_body_content_type(body)
                 : ctype ? ctype
                         : "application/json");
        hdrs = curl_slist_append(hdrs, line);
    }
    if (body) {
        hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
    }
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (token) {
        /* the token lives in this buffer and curl's copy only; wiped below */
        snprintf(line, sizeof line, "Authorization: Bearer %s", token);
        hdrs = curl_slist_append(hdrs, line);
        explicit_bzero(line, sizeof line);
    }
    long result = -1;
    double delay = net->backoff_s;
    for (int attempt = 0;; attempt++) {
        struct answer a;
        answer_init(&a);
        struct reader rd = {body, ""};
        curl_easy_reset(c);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
        if (body) {
            cli_body_rewind(body);
            curl_easy_setopt(c, CURLOPT_POST, 1L);
            curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
            curl_easy_setopt(c, CURLOPT_READDATA, &rd);
        } else if (text || strcmp(method, "POST") == 0) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, text ? text : "");
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(text ? strlen(text) : 0));
        }
        if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0) {
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        }
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &a);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, &a);
        curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
        curl_easy_setopt(c, CURLOPT_TIMEOUT, net->timeout_s);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, net->timeout_s < 10 ? net->timeout_s : 10L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "segloss-cli/" SL_VERSION);
        CURLcode cr = curl_easy_perform(c);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        bool retry = false;
        char why[1200];
        if (cr == CURLE_ABORTED_BY_CALLBACK || (cr != CURLE_OK && rd.msg[0])) {
            snprintf(msg, msglen, "%s", rd.msg);
            slp_dynbuf_free(&a.body);
            break;
        } else if (cr != CURLE_OK && !(cr == CURLE_WRITE_ERROR && status)) {
            snprintf(why, sizeof why, "%s: %s", net->url, curl_easy_strerror(cr));
            /* a POST that may have reached the server is not sent twice (a submission would
             * count twice); one that never connected is */
            retry = retryable_curl(cr) && (idempotent(method) || cr == CURLE_COULDNT_CONNECT ||
                                           cr == CURLE_COULDNT_RESOLVE_HOST);
        } else if (a.body.err == SL_ETOOLARGE) {
            snprintf(why, sizeof why, "the answer is over %ld bytes", ANSWER_MAX);
        } else if (a.body.err) {
            snprintf(why, sizeof why, "out of memory reading the answer");
        } else {
            /* an answer: the caller judges it (503 is retried first: the server is busy) */
            if (status == 503 && attempt < net->retries) {
                retry = true;
                snprintf(why, sizeof why, "503");
            } else {
                out->body = a.body.data; /* steals the buffer */
                out->len = a.body.len;
                out->retry_after = a.retry_after;
                result = status;
                break;
            }
        }
        double wait;
        if (attempt_over(net, &a, delay, retry, attempt, why, &wait, msg, msglen)) {
            break;
        }
        if (!net->quiet) {
            fprintf(stderr, "segloss: %s %s: %s; retry %d/%d in %.2g s\n", method, path, why,
                    attempt + 1, net->retries, wait);
        }
        sleep_s(net, wait);
        delay = delay * 2 < BACKOFF_CAP ? delay * 2 : BACKOFF_CAP;
    }
    curl_slist_free_all(hdrs);
    return result;
}
