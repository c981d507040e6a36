/* http_util.h - helpers shared by tests/golden and tests/e2e: start and stop a seglossd child on
 * an ephemeral port of 127.0.0.1 (or attach to a seglossd run by someone else, such as a
 * container published on a loopback port), and make HTTP requests with libcurl (easy or multi).
 *
 * Header-only (static functions) because the Makefile links one object per test program.
 * Ownership: every hu_*_setup/start has a matching cleanup/stop; buffers in the structs are
 * malloc'd and freed there. Call curl_global_init() once before any request.
 */
#ifndef SEGLOSS_TESTS_HTTP_UTIL_H
#define SEGLOSS_TESTS_HTTP_UTIL_H

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HU_MAX_ARGS 32
#define HU_START_TIMEOUT 30.0  /* seconds to wait for the "listening" line and /healthz */
#define HU_REQUEST_TIMEOUT 30L /* default seconds per request */
#define HU_MAX_RESPONSE ((size_t)256 << 20)

/* ---- small utilities ---------------------------------------------------------------------- */

/* Monotonic time in seconds. */
static inline double hu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Sleeps ms milliseconds (restarting after signals). */
static inline void hu_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* A growable, always NUL-terminated byte buffer. */
struct hu_buf {
    char *data;
    size_t len, cap;
    bool overflow; /* an append failed (out of memory or over HU_MAX_RESPONSE) */
};

/* Appends n bytes; returns 0, or -1 (and sets overflow) when out of memory or over the cap. */
static inline int hu_buf_append(struct hu_buf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > HU_MAX_RESPONSE) {
        b->overflow = true;
        return -1;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1) {
            cap *= 2;
        }
        char *d = realloc(b->data, cap);
        if (!d) {
            b->overflow = true;
            return -1;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

static inline void hu_buf_free(struct hu_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* Describes a waitpid() status ("exited with status 0", "killed by signal 11 (...)"). */
static inline void hu_describe_status(int status, char *buf, size_t len)
{
    if (WIFEXITED(status)) {
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
        snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    } else {
        snprintf(buf, len, "wait status 0x%x", (unsigned)status);
    }
}

/* True when the media type of a Content-Type value (before any ';') is want. */
static inline bool hu_ctype_is(const char *ctype, const char *want)
{
    if (!ctype) {
        return false;
    }
    while (*ctype == ' ') {
        ctype++;
    }
    size_t n = strcspn(ctype, ";");
    while (n > 0 && (ctype[n - 1] == ' ' || ctype[n - 1] == '\t')) {
        n--;
    }
    return n == strlen(want) && strncasecmp(ctype, want, n) == 0;
}

/* ---- HTTP transfers ----------------------------------------------------------------------- */

/* One HTTP exchange. After hu_xfer_finish(): rc is the curl result, status the HTTP status
 * (0 when no answer arrived), body and headers the final response's bytes. */
struct hu_xfer {
    CURL *easy;
    struct curl_slist *hdrs;
    struct hu_buf body;
    struct hu_buf headers; /* header lines of the final response, "\r\n"-separated */
    long status;
    CURLcode rc;
    bool done;
    char errbuf[CURL_ERROR_SIZE];
    char ctype[256]; /* Content-Type of the answer, "" if none */
    /* upload progress, updated by curl while the transfer runs */
    curl_off_t ul_now, ul_total;
    curl_mime *mime; /* a multipart/form-data body (hu_http_form), freed with x */
    void *user;      /* free for the caller */
};

static inline size_t hu_write_cb(char *p, size_t size, size_t n, void *arg)
{
    struct hu_xfer *x = arg;
    return hu_buf_append(&x->body, p, size * n) == 0 ? size * n : 0;
}

static inline size_t hu_header_cb(char *p, size_t size, size_t n, void *arg)
{
    struct hu_xfer *x = arg;
    size_t len = size * n;
    /* A new status line starts a new response (after 100 Continue): keep only the last one. */
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        x->headers.len = 0;
        if (x->headers.data) {
            x->headers.data[0] = '\0';
        }
    }
    return hu_buf_append(&x->headers, p, len) == 0 ? len : 0;
}

static inline int hu_xferinfo_cb(void *arg, curl_off_t dltotal, curl_off_t dlnow,
                                 curl_off_t ultotal, curl_off_t ulnow)
{
    struct hu_xfer *x = arg;
    (void)dltotal;
    (void)dlnow;
    x->ul_total = ultotal;
    x->ul_now = ulnow;
    return 0;
}

/* Copies the value of the last response header called name (case-insensitive) into out.
 * Returns true when found. */
static inline bool hu_xfer_header(const struct hu_xfer *x, const char *name, char *out,
                                  size_t outlen)
{
    bool found = false;
    size_t nlen = strlen(name);
    const char *line = x->headers.data;
    if (outlen) {
        out[0] = '\0';
    }
    while (line && *line) {
        size_t llen = strcspn(line, "\r\n");
        if (llen > nlen && strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            size_t vlen = llen - nlen - 1;
            while (vlen && (*v == ' ' || *v == '\t')) {
                v++;
                vlen--;
            }
            while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t')) {
                vlen--;
            }
            if (outlen) {
                size_t c = vlen < outlen - 1 ? vlen : outlen - 1;
                memcpy(out, v, c);
                out[c] = '\0';
            }
            found = true;
        }
        line += llen;
        line += strspn(line, "\r\n");
    }
    return found;
}

/* Prepares x for method ("GET", "POST", ...) on url with the NULL-terminated extra header lines
 * (may be NULL) and the request body (borrowed: must outlive the transfer; NULL for none).
 * "Expect:" is sent empty unless a header line starting with "Expect" is given.
 * Returns 0, or -1 when curl cannot be set up. */
static inline int hu_xfer_setup(struct hu_xfer *x, const char *method, const char *url,
                                const char *const *headers, const void *body, size_t len,
                                long timeout_s)
{
    memset(x, 0, sizeof *x);
    x->easy = curl_easy_init();
    if (!x->easy) {
        return -1;
    }
    bool has_expect = false;
    for (const char *const *h = headers; h && *h; h++) {
        struct curl_slist *n = curl_slist_append(x->hdrs, *h);
        if (!n) {
            return -1;
        }
        x->hdrs = n;
        if (strncasecmp(*h, "Expect", 6) == 0) {
            has_expect = true;
        }
    }
    if (!has_expect) {
        struct curl_slist *n = curl_slist_append(x->hdrs, "Expect:");
        if (!n) {
            return -1;
        }
        x->hdrs = n;
    }
    CURL *e = x->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROXY, ""); /* never through a proxy from the environment */
    curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, hu_write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, hu_header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, hu_xferinfo_cb);
    curl_easy_setopt(e, CURLOPT_XFERINFODATA, x);
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)x);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body ? (const char *)body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? len : 0));
        if (strcmp(method, "POST") != 0) {
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        }
    }
    return 0;
}

/* Records the outcome of a finished transfer (rc from curl_easy_perform or the multi message). */
static inline void hu_xfer_finish(struct hu_xfer *x, CURLcode rc)
{
    x->rc = rc;
    x->done = true;
    x->status = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
    if (!hu_xfer_header(x, "Content-Type", x->ctype, sizeof x->ctype)) {
        x->ctype[0] = '\0';
    }
    if (rc != CURLE_OK && !x->errbuf[0]) {
        snprintf(x->errbuf, sizeof x->errbuf, "%s", curl_easy_strerror(rc));
    }
}

/* Frees everything x holds. */
static inline void hu_xfer_cleanup(struct hu_xfer *x)
{
    if (x->easy) {
        curl_easy_cleanup(x->easy);
    }
    curl_mime_free(x->mime);
    curl_slist_free_all(x->hdrs);
    hu_buf_free(&x->body);
    hu_buf_free(&x->headers);
    x->easy = NULL;
    x->hdrs = NULL;
    x->mime = NULL;
}

/* One blocking request: setup + perform + finish. Returns x->rc (x must be cleaned up after,
 * whatever the result). */
static inline CURLcode hu_http(struct hu_xfer *x, const char *method, const char *url,
                               const char *const *headers, const void *body, size_t len,
                               long timeout_s)
{
    if (hu_xfer_setup(x, method, url, headers, body, len, timeout_s) != 0) {
        snprintf(x->errbuf, sizeof x->errbuf, "curl setup failed");
        x->rc = CURLE_FAILED_INIT;
        x->done = true;
        return x->rc;
    }
    hu_xfer_finish(x, curl_easy_perform(x->easy));
    return x->rc;
}

/* One part of a multipart/form-data body: name, bytes (copied by curl) and, as curl -F
 * name=@file sends it, a filename (then curl types it, application/octet-stream here). */
struct hu_form_part {
    const char *name;
    const void *data;
    size_t len;
    const char *filename; /* NULL: none (a plain field) */
};

/* One blocking multipart/form-data POST of the n parts to url with libcurl's mime API, as
 * curl -F does; headers as hu_xfer_setup. Returns x->rc (clean x up after, whatever the
 * result). */
static inline CURLcode hu_http_form(struct hu_xfer *x, const char *url, const char *const *headers,
                                    const struct hu_form_part *parts, int n, long timeout_s)
{
    bool ok = hu_xfer_setup(x, "POST", url, headers, NULL, 0, timeout_s) == 0;
    if (ok) {
        x->mime = curl_mime_init(x->easy);
        ok = x->mime != NULL;
    }
    for (int i = 0; ok && i < n; i++) {
        curl_mimepart *p = curl_mime_addpart(x->mime);
        ok = p && curl_mime_name(p, parts[i].name) == CURLE_OK &&
             curl_mime_data(p, parts[i].data, parts[i].len) == CURLE_OK &&
             (!parts[i].filename || curl_mime_filename(p, parts[i].filename) == CURLE_OK);
    }
    if (!ok || curl_easy_setopt(x->easy, CURLOPT_MIMEPOST, x->mime) != CURLE_OK) {
        snprintf(x->errbuf, sizeof x->errbuf, "curl mime setup failed");
        x->rc = CURLE_FAILED_INIT;
        x->done = true;
        return x->rc;
    }
    hu_xfer_finish(x, curl_easy_perform(x->easy));
    return x->rc;
}

/* Runs the n prepared transfers concurrently until all are done; tick(arg) (may be NULL) is
 * called about every 10 ms while they run. Returns 0, or -1 when the multi interface fails. */
static inline int hu_multi_run(struct hu_xfer **xs, int n, void (*tick)(void *), void *arg)
{
    CURLM *m = curl_multi_init();
    if (!m) {
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        if (curl_multi_add_handle(m, xs[i]->easy) != CURLM_OK) {
            rc = -1;
        }
    }
    int running = 1;
    while (rc == 0 && running) {
        if (curl_multi_perform(m, &running) != CURLM_OK) {
            rc = -1;
            break;
        }
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg == CURLMSG_DONE) {
                void *priv = NULL;
                curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
                hu_xfer_finish(priv, msg->data.result);
            }
        }
        if (tick) {
            tick(arg);
        }
        if (running && curl_multi_poll(m, NULL, 0, 10, NULL) != CURLM_OK) {
            rc = -1;
        }
    }
    for (int i = 0; i < n; i++) {
        curl_multi_remove_handle(m, xs[i]->easy);
        if (!xs[i]->done) {
            hu_xfer_finish(xs[i], CURLE_ABORTED_BY_CALLBACK);
        }
    }
    curl_multi_cleanup(m);
    return rc;
}

/* Parses the answer body of x as JSON; returns a new reference or NULL. */
static inline json_t *hu_xfer_json(const struct hu_xfer *x)
{
    if (!x->body.data) {
        return NULL;
    }
    return json_loadb(x->body.data, x->body.len, 0, NULL);
}

/* Checks an RFC 9457 answer of the given status: Content-Type application/problem+json, a JSON
 * object body with non-empty string detail and error and integer status == http_status.
 * Returns true when it holds; otherwise writes why into why. */
static inline bool hu_problem_ok(int http_status, const char *ctype, const char *body, size_t len,
                                 char *why, size_t whylen)
{
    if (!hu_ctype_is(ctype, "application/problem+json")) {
        snprintf(why, whylen, "Content-Type \"%.100s\", want application/problem+json",
                 ctype ? ctype : "(none)");
        return false;
    }
    json_t *j = body ? json_loadb(body, len, 0, NULL) : NULL;
    bool ok = false;
    if (!json_is_object(j)) {
        snprintf(why, whylen, "problem body is not a JSON object");
    } else if (!json_is_string(json_object_get(j, "detail")) ||
               !json_string_length(json_object_get(j, "detail"))) {
        snprintf(why, whylen, "problem body has no non-empty string \"detail\"");
    } else if (!json_is_string(json_object_get(j, "error")) ||
               !json_string_length(json_object_get(j, "error"))) {
        snprintf(why, whylen, "problem body has no non-empty string \"error\"");
    } else if (!json_is_integer(json_object_get(j, "status"))) {
        snprintf(why, whylen, "problem body has no integer \"status\"");
    } else if (json_integer_value(json_object_get(j, "status")) != http_status) {
        snprintf(why, whylen, "problem \"status\" %lld, HTTP status %d",
                 (long long)json_integer_value(json_object_get(j, "status")), http_status);
    } else {
        ok = true;
    }
    json_decref(j);
    return ok;
}

/* ---- the seglossd child ------------------------------------------------------------------- */

struct hu_server {
    pid_t pid; /* 0: never started */
    int port;
    char line[256]; /* the first stdout line */
    bool reaped;    /* waitpid() has collected it; status holds the wait status */
    int status;
    int out_fd; /* read end of the child's stdout, forwarded to stderr by a thread */
    pthread_t fwd;
    bool has_fwd;
};

/* Forwards the child's stdout after the first line to our stderr until EOF (so the child never
 * blocks on a full pipe and never gets SIGPIPE). */
static inline void *hu_forward_thread(void *arg)
{
    struct hu_server *s = arg;
    char buf[4096];
    for (;;) {
        ssize_t n = read(s->out_fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        ssize_t off = 0;
        while (off < n) {
            ssize_t w = write(STDERR_FILENO, buf + off, (size_t)(n - off));
            if (w <= 0) {
                break;
            }
            off += w;
        }
    }
    return NULL;
}

/* Reaps the child without blocking if it has exited; returns true while it is running. */
static inline bool hu_server_alive(struct hu_server *s)
{
    if (s->pid <= 0 || s->reaped) {
        return false;
    }
    int st;
    pid_t r = waitpid(s->pid, &st, WNOHANG);
    if (r == s->pid) {
        s->reaped = true;
        s->status = st;
        return false;
    }
    return true;
}

/* Waits up to timeout seconds for the child to exit; returns true when it has been reaped. */
static inline bool hu_server_wait(struct hu_server *s, double timeout)
{
    double end = hu_now() + timeout;
    while (hu_server_alive(s)) {
        if (hu_now() > end) {
            return false;
        }
        hu_sleep_ms(10);
    }
    return s->reaped;
}

/* Closes the stdout pipe and joins the forwarding thread (after the child is gone). */
static inline void hu_server_release(struct hu_server *s)
{
    if (s->has_fwd) {
        pthread_join(s->fwd, NULL);
        s->has_fwd = false;
    }
    if (s->out_fd >= 0) {
        close(s->out_fd);
        s->out_fd = -1;
    }
}

/* Kills the child with SIGKILL (if running), reaps it and releases it. */
static inline void hu_server_kill(struct hu_server *s)
{
    if (hu_server_alive(s)) {
        kill(s->pid, SIGKILL);
        int st;
        if (waitpid(s->pid, &st, 0) == s->pid) {
            s->reaped = true;
            s->status = st;
        }
    }
    hu_server_release(s);
}

/* Sends SIGTERM and waits up to timeout seconds for a clean exit; a child still running then
 * is SIGKILLed. Returns 0 when the child exited by itself (its wait status in s->status),
 * -1 when it had to be killed (message in err). */
static inline int hu_server_stop(struct hu_server *s, double timeout, char *err, size_t errlen)
{
    if (s->pid <= 0) {
        snprintf(err, errlen, "not started");
        return -1;
    }
    if (hu_server_alive(s)) {
        kill(s->pid, SIGTERM);
    }
    if (!hu_server_wait(s, timeout)) {
        snprintf(err, errlen, "still running %.0f s after SIGTERM; killed", timeout);
        hu_server_kill(s);
        return -1;
    }
    hu_server_release(s);
    err[0] = '\0';
    return 0;
}

/* "http://127.0.0.1:PORT" + path into buf. */
static inline void hu_url(const struct hu_server *s, const char *path, char *buf, size_t len)
{
    snprintf(buf, len, "http://127.0.0.1:%d%s", s->port, path);
}

/* Polls GET /healthz until it answers 200 (true) or timeout seconds pass / the child dies. */
static inline bool hu_server_wait_healthy(struct hu_server *s, double timeout)
{
    char url[128];
    hu_url(s, "/healthz", url, sizeof url);
    double end = hu_now() + timeout;
    while (hu_server_alive(s) && hu_now() < end) {
        struct hu_xfer x;
        hu_http(&x, "GET", url, NULL, NULL, 0, 2L);
        long st = x.status;
        hu_xfer_cleanup(&x);
        if (st == 200) {
            return true;
        }
        hu_sleep_ms(50);
    }
    return false;
}

/* Starts `path --port 0 ARGS...` (args NULL-terminated, may be NULL) with stdout on a pipe,
 * reads its "seglossd listening on http://127.0.0.1:PORT" line and waits for /healthz.
 * stderr_path: a file that receives the child's stderr (created or truncated), or NULL to
 * pass it through. The child gets SIGKILL if this process dies first. Returns 0, or -1 with a
 * message in err (the child, if any, is killed and reaped). Stop it with hu_server_stop(). */
static inline int hu_server_start_log(struct hu_server *s, const char *path,
                                      const char *const *args, const char *stderr_path, char *err,
                                      size_t errlen)
{
    memset(s, 0, sizeof *s);
    s->out_fd = -1;
    const char *argv[HU_MAX_ARGS + 4];
    int argc = 0;
    argv[argc++] = path;
    argv[argc++] = "--port";
    argv[argc++] = "0";
    for (const char *const *a = args; a && *a && argc < HU_MAX_ARGS; a++) {
        argv[argc++] = *a;
    }
    argv[argc] = NULL;

    int pfd[2];
    if (pipe(pfd) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return -1;
    }
    fcntl(pfd[0], F_SETFD, FD_CLOEXEC);
    fcntl(pfd[1], F_SETFD, FD_CLOEXEC);
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    if (pid == 0) {
        /* child: only async-signal-safe calls until exec */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(127);
        }
        if (dup2(pfd[1], STDOUT_FILENO) < 0) {
            _exit(127);
        }
        int dn = open("/dev/null", O_RDONLY);
        if (dn >= 0) {
            dup2(dn, STDIN_FILENO);
        }
        if (stderr_path) {
            int lf = open(stderr_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
            if (lf < 0 || dup2(lf, STDERR_FILENO) < 0) {
                _exit(127);
            }
        }
        execv(path, (char *const *)argv);
        _exit(127);
    }
    close(pfd[1]);
    s->pid = pid;
    s->out_fd = pfd[0];

    /* the first line, byte by byte so nothing after it is consumed */
    size_t n = 0;
    double end = hu_now() + HU_START_TIMEOUT;
    bool got_line = false;
    while (!got_line && n + 1 < sizeof s->line) {
        int left_ms = (int)((end - hu_now()) * 1000);
        if (left_ms <= 0) {
            break;
        }
        struct pollfd p = {s->out_fd, POLLIN, 0};
        int pr = poll(&p, 1, left_ms);
        if (pr < 0 && errno == EINTR) {
            continue;
        }
        if (pr <= 0) {
            break;
        }
        char c;
        ssize_t r = read(s->out_fd, &c, 1);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break;
        }
        if (c == '\n') {
            got_line = true;
        } else {
            s->line[n++] = c;
        }
    }
    s->line[n] = '\0';
    if (!got_line) {
        if (hu_server_wait(s, 0.5)) {
            char d[96];
            hu_describe_status(s->status, d, sizeof d);
            snprintf(err, errlen, "%s %s before printing its listening line (got \"%s\")", path, d,
                     s->line);
        } else {
            snprintf(err, errlen, "%s printed no listening line in %.0f s (got \"%s\")", path,
                     HU_START_TIMEOUT, s->line);
        }
        hu_server_kill(s);
        return -1;
    }
    if (n && s->line[n - 1] == '\r') {
        s->line[--n] = '\0';
    }
    const char *colon = strrchr(s->line, ':');
    char *endp = NULL;
    long port = colon ? strtol(colon + 1, &endp, 10) : 0;
    if (!strstr(s->line, "http://127.0.0.1:") || port <= 0 || port > 65535 || !endp ||
        *endp != '\0') {
        snprintf(err, errlen, "unexpected listening line \"%s\"", s->line);
        hu_server_kill(s);
        return -1;
    }
    s->port = (int)port;
    if (pthread_create(&s->fwd, NULL, hu_forward_thread, s) == 0) {
        s->has_fwd = true;
    }
    if (!hu_server_wait_healthy(s, HU_START_TIMEOUT)) {
        snprintf(err, errlen, "GET /healthz on port %d did not answer 200 within %.0f s", s->port,
                 HU_START_TIMEOUT);
        hu_server_kill(s);
        return -1;
    }
    return 0;
}

/* Attaches s to a seglossd that this process did not start (a container, say): url is
 * "http://127.0.0.1:PORT", optionally with a trailing '/'. Waits up to timeout seconds for
 * GET /healthz to answer 200. s->pid stays 0, so hu_server_alive() is false and the stop/kill
 * functions leave that server alone. Returns 0, or -1 with a message in err. */
static inline int hu_server_attach(struct hu_server *s, const char *url, double timeout, char *err,
                                   size_t errlen)
{
    memset(s, 0, sizeof *s);
    s->out_fd = -1;
    static const char prefix[] = "http://127.0.0.1:";
    char *endp = NULL;
    long port = 0;
    if (strncmp(url, prefix, sizeof prefix - 1) == 0) {
        port = strtol(url + sizeof prefix - 1, &endp, 10);
    }
    if (port <= 0 || port > 65535 || !endp || (*endp != '\0' && strcmp(endp, "/") != 0)) {
        snprintf(err, errlen, "--url must be http://127.0.0.1:PORT, not \"%s\"", url);
        return -1;
    }
    s->port = (int)port;
    char hz[128];
    hu_url(s, "/healthz", hz, sizeof hz);
    double end = hu_now() + timeout;
    long st = 0;
    char last[CURL_ERROR_SIZE + 1] = "";
    do {
        struct hu_xfer x;
        hu_http(&x, "GET", hz, NULL, NULL, 0, 2L);
        st = x.status;
        snprintf(last, sizeof last, "%s", x.rc == CURLE_OK ? "" : x.errbuf);
        hu_xfer_cleanup(&x);
        if (st == 200) {
            return 0;
        }
        hu_sleep_ms(100);
    } while (hu_now() < end);
    /* curl's message cut to 120 bytes, so the whole line fits a caller's usual 400 */
    snprintf(err, errlen, "GET %s did not answer 200 within %.0f s (last: HTTP %ld %.120s)", hz,
             timeout, st, last);
    return -1;
}

/* hu_server_start_log with the child's stderr passed through. */
static inline int hu_server_start(struct hu_server *s, const char *path, const char *const *args,
                                  char *err, size_t errlen)
{
    return hu_server_start_log(s, path, args, NULL, err, errlen);
}

#endif /* SEGLOSS_TESTS_HTTP_UTIL_H */
