/* A tiny test harness shared by the C tests.
 *
 * CHECK(cond, what) prints one line per check ("ok", or "FAIL" with the place and the
 * condition); finish() prints "N passed, M failed" and gives the exit status.  Threads are run as
 * tasks whose join is bounded in time: a thread stuck in a lock is reported as a failure and the
 * test exits at once, so no test can hang CI.
 */
#ifndef MITKBUF_TEST_CHECK_H
#define MITKBUF_TEST_CHECK_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int checks_passed = 0;
static int checks_failed = 0;

#define CHECK(cond, what)                                                                  \
    do {                                                                                   \
        if (cond) {                                                                        \
            checks_passed++;                                                               \
            printf("ok   %s\n", what);                                                     \
        } else {                                                                           \
            checks_failed++;                                                               \
            printf("FAIL %s (%s:%d: %s)\n", what, __FILE__, __LINE__, #cond);              \
        }                                                                                  \
        fflush(stdout);                                                                    \
    } while (0)

static inline int finish(void)
{
    printf("%d passed, %d failed\n", checks_passed, checks_failed);
    return checks_failed == 0 ? 0 : 1;
}

static inline double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline void sleep_seconds(double s)
{
    struct timespec ts;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* A thread whose end is awaited with a deadline. */
typedef struct {
    pthread_t thread;
    void *(*fn)(void *);
    void *arg;
    void *result;
    atomic_int done;
} task;

static inline void *task_main(void *p)
{
    task *t = p;
    t->result = t->fn(t->arg);
    atomic_store(&t->done, 1);
    return NULL;
}

static inline void task_start(task *t, void *(*fn)(void *), void *arg)
{
    t->fn = fn;
    t->arg = arg;
    t->result = NULL;
    atomic_init(&t->done, 0);
    if (pthread_create(&t->thread, NULL, task_main, t) != 0) {
        checks_failed++;
        printf("FAIL could not start a thread\n");
        exit(finish());
    }
}

/* Join within `limit` seconds.  A task still running after that is a hang: fail and exit. */
static inline void *task_join(task *t, double limit, const char *what)
{
    double until = now_seconds() + limit;
    while (!atomic_load(&t->done) && now_seconds() < until)
        sleep_seconds(0.001);
    if (!atomic_load(&t->done)) {
        checks_failed++;
        printf("FAIL %s: thread still running after %.1f s (hang)\n", what, limit);
        exit(finish());
    }
    pthread_join(t->thread, NULL);
    return t->result;
}

/* Whether t has finished (without joining it). */
static inline int task_done(task *t) { return atomic_load(&t->done); }

#endif
