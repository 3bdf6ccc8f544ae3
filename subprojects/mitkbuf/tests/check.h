/* A tiny test harness: CHECK records a pass or a failure; finish() prints "N passed, M failed". */
#ifndef MITKBUF_CHECK_H
#define MITKBUF_CHECK_H

#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <time.h>

static int checks_passed = 0;
static int checks_failed = 0;

#define CHECK(cond, what)                                                                  \
    do {                                                                                   \
        if (cond) {                                                                        \
            checks_passed++;                                                               \
        } else {                                                                           \
            checks_failed++;                                                               \
            printf("FAIL %s:%d: %s (%s)\n", __FILE__, __LINE__, what, #cond);              \
        }                                                                                  \
    } while (0)

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
    nanosleep(&ts, NULL);
}

static inline int finish(void)
{
    printf("%d passed, %d failed\n", checks_passed, checks_failed);
    return checks_failed == 0 ? 0 : 1;
}

#endif
