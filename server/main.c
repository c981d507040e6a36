/* main.c - seglossd: configuration, signals, the listening line, and the drain on shutdown.
 *
 * SIGTERM and SIGINT are blocked in every thread (they inherit the mask from here) and taken
 * with sigwait by the main thread, so no signal handler and no global state is needed. On the
 * first one the server stops accepting, /readyz turns 503, and requests in flight get up to
 * --drain-seconds to finish; a second signal or the deadline cuts the drain short.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "segloss.h"
#include "server.h"

/* Seconds on the monotonic clock. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* After giving up on a drain: how long the I/O threads get to send the 503s. */
#define ABANDON_GRACE_S 1.0

/* Waits for the requests in flight, at most `seconds` or until another signal. Returns how
 * many are still in flight. */
static int drain(struct srv_server *srv, const sigset_t *sigs, double seconds)
{
    double deadline = now_s() + seconds;
    for (;;) {
        int n = srv_server_inflight(srv);
        if (n == 0 || now_s() >= deadline) {
            return n;
        }
        /* Poll the count every 20 ms, listening for a second signal meanwhile. */
        struct timespec step = {.tv_sec = 0, .tv_nsec = 20 * 1000 * 1000};
        int sig = sigtimedwait(sigs, NULL, &step);
        if (sig > 0) {
            fprintf(stderr, "seglossd: second signal (%s), stopping now with %d in flight\n",
                    strsignal(sig), n);
            return n;
        }
    }
}

/* seglossd: load the configuration, serve until a signal, drain, stop. Exit status 0, 1 (cannot
 * start) or 2 (bad flag or value). */
int main(int argc, char **argv)
{
    struct srv_config cfg;
    bool done = false;
    if (srv_config_load(&cfg, argc, argv, &done) != 0) {
        return 2;
    }
    if (done) {
        return 0;
    }

    /* Before any thread exists: every thread inherits this mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    if (pthread_sigmask(SIG_BLOCK, &sigs, NULL) != 0) {
        fprintf(stderr, "seglossd: cannot block signals\n");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);

    char err[256];
    struct srv_server *srv = NULL;
    if (srv_server_new(&cfg, &srv, err, sizeof(err)) != 0) {
        fprintf(stderr, "seglossd: %s\n", err);
        return 1;
    }
    bool v6 = strchr(cfg.bind, ':') != NULL;
    printf("seglossd listening on http://%s%s%s:%u\n", v6 ? "[" : "", cfg.bind, v6 ? "]" : "",
           srv_server_port(srv));
    fflush(stdout);
    fprintf(stderr,
            "seglossd %s: %ld compute workers, queue %d, max body %llu MiB (%llu MiB in all), "
            "max pixels %lld, %d I/O threads, max connections %u (%u per IP), idle timeout %u s, "
            "max header %u KiB, access log %s\n",
            SL_VERSION, cfg.threads ? (long)cfg.threads : sysconf(_SC_NPROCESSORS_ONLN), cfg.queue,
            (unsigned long long)cfg.max_body_mb, (unsigned long long)cfg.max_inflight_mb,
            (long long)cfg.max_pixels, SRV_IO_THREADS, cfg.max_connections, cfg.max_per_ip,
            cfg.idle_timeout, cfg.max_header_kb, cfg.access_log ? "on" : "off");

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0) {
    }
    fprintf(stderr, "seglossd: %s, draining (up to %u s)\n", strsignal(sig), cfg.drain_seconds);
    srv_server_drain(srv);
    int left = drain(srv, &sigs, cfg.drain_seconds);
    if (left == 0) {
        fprintf(stderr, "seglossd: drained\n");
    } else {
        int cut = srv_server_abandon(srv);
        fprintf(stderr, "seglossd: drain ended with %d requests in flight, %d answered 503\n", left,
                cut);
        /* Let the I/O threads write those 503s before the daemon closes every socket. */
        drain(srv, &sigs, ABANDON_GRACE_S);
    }
    srv_server_free(srv);
    fprintf(stderr, "seglossd: stopped\n");
    return 0;
}
