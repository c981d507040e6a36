/* chal_rescore.c - the background re-score (CHALLENGES.md "Configuration"): after a change of
 * spec, ranking, split or reference every scored submission is stale until it is scored again
 * against the challenge's current configuration and reference.
 *
 * One thread, one submission at a time, serially (never on the worker pool), at the lowest
 * scheduling priority (SCHED_IDLE: the kernel gives it what the workers leave), after waiting
 * up to a second for the compute pool to have nothing queued or running, and while the pool
 * stays busy at a duty cycle of one in BUSY_DUTY: scoring traffic goes first, and a re-score
 * still advances under traffic that never pauses. A stale row keeps its old
 * scores ("stale": true) until its turn; the store keeps the progress, so a re-score cut short by a
 * restart carries on at the next start.
 */
/* SCHED_IDLE (Linux) */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "chal_internal.h"

/* How long the thread waits while the pool is busy, and between idle looks. */
#define SAMPLES 20
#define SAMPLE_MS 5
#define QUIET_LOOKS 4
/* A pool working in this share of a sample counts as busy. */
#define BUSY_SHARE 0.05
#define IDLE_WAIT_S 5
/* The longest a re-score waits for an idle pool before it goes on anyway. */
#define MAX_WAIT_MS 1000
/* Under traffic a re-score sleeps BUSY_DUTY - 1 times what each submission took. */
#define BUSY_DUTY 10

int chal_score_stored(struct srv_server *srv, const struct store_challenge *c,
                      const struct slc_config *cfg, const struct store_sub *sub,
                      struct sl_pool *pool, struct chal_scored *out, char *msg, size_t msglen)
{
    struct chal_server *cs = srv->chal;
    void *data = NULL;
    size_t len = 0;
    struct slc_images *imgs = NULL;
    struct chal_ref *ref = NULL;
    memset(out, 0, sizeof *out);
    int rc = store_blob_get(cs->store, sub->body_sha, &data, &len, msg, msglen);
    if (rc == 0) {
        rc = slc_bundle_read(data, len, &srv->limits, &imgs, msg, msglen);
    }
    free(data);
    if (rc == 0) {
        rc = chal_ref_get(cs, c, &srv->limits, &ref, msg, msglen);
    }
    if (rc == 0) {
        rc = chal_score(cfg, ref, imgs, &srv->limits, pool, out, msg, msglen);
    }
    chal_ref_put(cs, ref);
    slc_images_free(imgs);
    return rc;
}

/* Sleeps ms milliseconds. */
static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Whether the thread should stop (cs->mu taken and released). */
static bool stopping(struct chal_server *cs)
{
    pthread_mutex_lock(&cs->mu);
    bool stop = cs->stop;
    pthread_mutex_unlock(&cs->mu);
    return stop;
}

/* Whether the compute pool is working now (queued or running jobs). */
static bool pool_working(struct srv_server *srv)
{
    int queued = 0, running = 0;
    sl_pool_load(srv->pool, &queued, &running);
    return queued > 0 || running > 0;
}

/* Waits until the compute pool is quiet, a stop, or MAX_WAIT_MS; returns whether the pool was
 * still busy. A pool serving small requests is idle between most of them, so one look says
 * little: quiet is QUIET_LOOKS idle looks in a row, SAMPLE_MS apart, or under BUSY_SHARE of the
 * looks of a window of SAMPLES finding it working. Under traffic that never pauses the re-score
 * still advances, at the lowest priority and a duty cycle (see rescore_main). */
static bool wait_for_idle_pool(struct srv_server *srv)
{
    int streak = 0, looks = 0, working = 0;
    for (long waited = 0; waited < MAX_WAIT_MS; waited += SAMPLE_MS) {
        if (stopping(srv->chal)) {
            return false;
        }
        bool w = pool_working(srv);
        streak = w ? 0 : streak + 1;
        working += w;
        if (streak >= QUIET_LOOKS && looks < QUIET_LOOKS) {
            return false;
        }
        if (++looks == SAMPLES) {
            if ((double)working / SAMPLES < BUSY_SHARE) {
                return false;
            }
            looks = working = 0;
        }
        sleep_ms(SAMPLE_MS);
    }
    return true;
}

/* Seconds on the monotonic clock. */
static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Re-scores one stale submission; its challenge's name into done (STORE_NAME_MAX bytes).
 * Returns false when none is left (or the store fails). */
static bool rescore_one(struct srv_server *srv, char *done)
{
    struct chal_server *cs = srv->chal;
    struct store_sub sub;
    char msg[512];
    int rc = store_rescore_next(cs->store, &sub, msg, sizeof msg);
    if (rc) {
        if (rc != STORE_ENOTFOUND) {
            fprintf(stderr, "seglossd: challenges: re-score: %s\n", msg);
        }
        return false;
    }
    struct store_challenge c;
    struct slc_config *cfg = NULL;
    struct chal_scored sc = {0};
    snprintf(done, STORE_NAME_MAX, "%s", sub.challenge);
    rc = store_challenge_get(cs->store, sub.challenge, &c, msg, sizeof msg);
    if (rc == 0) {
        rc = slc_config_parse(c.config, strlen(c.config), &srv->limits, &cfg, msg, sizeof msg);
        if (rc == 0) {
            rc = chal_score_stored(srv, &c, cfg, &sub, NULL, &sc, msg, sizeof msg);
        }
        struct store_scores s = {sub.body_sha, sub.bytes, sc.values[0], sc.values[1], sc.full[0],
                                 sc.full[1],   c.version, c.ref_sha,    SL_VERSION,   NULL};
        char smsg[256];
        if (store_rescore_finish(cs->store, sub.id, rc == 0, rc ? msg : NULL, &s, smsg,
                                 sizeof smsg) != 0) {
            fprintf(stderr, "seglossd: challenges: re-score %s: %s\n", sub.id, smsg);
            rc = -1;
        }
        store_challenge_clear(&c);
    } else {
        fprintf(stderr, "seglossd: challenges: re-score %s: %s\n", sub.id, msg);
    }
    chal_scored_clear(&sc);
    slc_config_free(cfg);
    store_sub_clear(&sub);
    /* a store failure stops this round (the next kick or idle look tries again) */
    return rc != -1;
}

/* Ranks and renders every challenge's public leaderboard once after a start, so that the first
 * reader of a leaderboard or its page does not pay for reading and ranking the submissions. */
static void warm_boards(struct srv_server *srv)
{
    struct chal_server *cs = srv->chal;
    struct store_challenge *list = NULL;
    size_t n = 0;
    char msg[256];
    if (store_challenge_list(cs->store, &list, &n, msg, sizeof msg) != 0) {
        chal_log_store("warming the leaderboards", msg);
        return;
    }
    for (size_t i = 0; i < n && !stopping(cs); i++) {
        chal_board_refresh_name(cs, list[i].name, &srv->limits);
    }
    store_challenge_free(list, n);
}

/* The thread: warms the leaderboards, then waits for a kick (or IDLE_WAIT_S) and re-scores
 * until nothing is stale. */
static void *rescore_main(void *arg)
{
    struct srv_server *srv = arg;
    struct chal_server *cs = srv->chal;
    /* the lowest priority: a re-score takes only what the workers leave (SCHED_IDLE; nice 19
     * where that is refused) */
    struct sched_param idle = {0};
    if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &idle) != 0) {
        setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
    }
    warm_boards(srv);
    for (;;) {
        pthread_mutex_lock(&cs->mu);
        if (!cs->kick && !cs->stop) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += IDLE_WAIT_S;
            pthread_cond_timedwait(&cs->wake, &cs->mu, &until);
        }
        bool stop = cs->stop;
        cs->kick = false;
        pthread_mutex_unlock(&cs->mu);
        if (stop) {
            return NULL;
        }
        char done[STORE_NAME_MAX] = "";
        for (;;) {
            bool busy = wait_for_idle_pool(srv);
            double t0 = mono_s();
            if (stopping(cs) || !rescore_one(srv, done)) {
                break;
            }
            if (busy) {
                /* under traffic, a duty cycle of 1 in BUSY_DUTY: the re-score takes at most
                 * that share of one core from the workers */
                double spent = mono_s() - t0;
                sleep_ms((long)(spent * 1000 * (BUSY_DUTY - 1)) + 1);
            }
        }
        if (done[0] && !stopping(cs)) {
            /* the round is over: the leaderboard is rendered once, not per submission */
            chal_board_refresh_name(cs, done, &srv->limits);
        }
    }
}

int chal_rescore_start(struct srv_server *srv)
{
    struct chal_server *cs = srv->chal;
    cs->kick = true; /* stale rows left by an earlier run */
    if (pthread_create(&cs->rescorer, NULL, rescore_main, srv) != 0) {
        return -1;
    }
    cs->rescorer_started = true;
    return 0;
}

void chal_rescore_kick(struct chal_server *cs)
{
    pthread_mutex_lock(&cs->mu);
    cs->kick = true;
    pthread_cond_signal(&cs->wake);
    pthread_mutex_unlock(&cs->mu);
}

void chal_rescore_stop(struct chal_server *cs)
{
    if (!cs->rescorer_started) {
        return;
    }
    pthread_mutex_lock(&cs->mu);
    cs->stop = true;
    pthread_cond_signal(&cs->wake);
    pthread_mutex_unlock(&cs->mu);
    pthread_join(cs->rescorer, NULL);
    cs->rescorer_started = false;
}
