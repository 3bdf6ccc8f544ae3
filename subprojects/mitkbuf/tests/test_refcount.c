/* The atomic reference count under threads: concurrent retain/release keeps the count exact, and
 * the last release (in whichever thread) frees the memory or calls the adopter's callback exactly
 * once, after every other thread's writes to the pixels (ThreadSanitizer checks that ordering). */
#include "check.h"
#include "mitkbuf.h"

#include <sched.h>
#include <stdint.h>
#include <string.h>

#define WORKERS 6

/* ---- concurrent retain/release on one buffer -------------------------------------------------- */

typedef struct {
    mitkbuf_buffer *buf;
    int slot;
    atomic_int *go;
    long rounds;
    int bad;
} churn_job;

static void *churn(void *arg)
{
    churn_job *job = arg;
    double until = now_seconds() + 0.3;
    unsigned char *pixels = mitkbuf_buffer_data(job->buf);
    while (!atomic_load(job->go) && now_seconds() < until + 5.0)
        sched_yield();
    /* Bounded in time and count, so a slow (sanitized) build still finishes quickly. */
    while (job->rounds < 200000 && now_seconds() < until) {
        for (int i = 0; i < 64; i++) {
            if (mitkbuf_buffer_retain(job->buf) != MITKBUF_OK)
                job->bad++;
            if (mitkbuf_buffer_refcount(job->buf) < 2)
                job->bad++; /* our own reference plus the one just taken */
            if (mitkbuf_buffer_release(job->buf) != MITKBUF_OK)
                job->bad++;
            job->rounds++;
        }
    }
    /* A plain write to this thread's slot, published by the release below. */
    pixels[job->slot] = (unsigned char)(job->slot + 1);
    mitkbuf_buffer_release(job->buf); /* the reference this thread was given */
    return NULL;
}

static atomic_int callbacks = 0;
static pthread_t callback_thread;
static int callback_sum = -1;

static void on_release(void *context, void *data)
{
    const unsigned char *pixels = data;
    int sum = 0;
    (void)context;
    for (int i = 0; i < WORKERS; i++)
        sum += pixels[i];
    callback_sum = sum;
    callback_thread = pthread_self();
    atomic_fetch_add(&callbacks, 1);
}

static void test_churn_owned(void)
{
    mitkbuf_buffer *buf = NULL;
    atomic_int go = 0;
    churn_job jobs[WORKERS];
    task tasks[WORKERS];
    int bad = 0;
    long rounds = 0;

    CHECK(mitkbuf_buffer_new(4096, 1, &buf) == MITKBUF_OK, "own buffer for the churn test");
    for (int i = 0; i < WORKERS; i++) {
        mitkbuf_buffer_retain(buf);
        jobs[i] = (churn_job){buf, i, &go, 0, 0};
        task_start(&tasks[i], churn, &jobs[i]);
    }
    CHECK(mitkbuf_buffer_refcount(buf) == 1 + WORKERS, "one reference per thread plus ours");
    atomic_store(&go, 1);
    for (int i = 0; i < WORKERS; i++) {
        task_join(&tasks[i], 10.0, "churn thread");
        bad += jobs[i].bad;
        rounds += jobs[i].rounds;
    }
    CHECK(bad == 0, "concurrent retain/release: every call OK, count never below the holders");
    CHECK(rounds > 0, "the threads did retain and release");
    CHECK(mitkbuf_buffer_refcount(buf) == 1, "after all threads: exactly our reference is left");
    {
        const unsigned char *pixels = mitkbuf_buffer_data(buf);
        int sum = 0;
        for (int i = 0; i < WORKERS; i++)
            sum += pixels[i];
        CHECK(sum == WORKERS * (WORKERS + 1) / 2, "every thread's write is visible to the owner");
    }
    mitkbuf_buffer_release(buf);
}

/* The last release happens in a worker thread: the main thread drops its reference first. */
static void test_last_release_in_other_thread(void)
{
    unsigned char *memory = calloc(1, WORKERS);
    mitkbuf_buffer *buf = NULL;
    atomic_int go = 0;
    churn_job jobs[WORKERS];
    task tasks[WORKERS];
    int from_worker = 0;

    atomic_store(&callbacks, 0);
    CHECK(memory != NULL && mitkbuf_buffer_adopt(memory, WORKERS, on_release, NULL, &buf) ==
                                MITKBUF_OK,
          "adopt foreign memory");
    for (int i = 0; i < WORKERS; i++) {
        mitkbuf_buffer_retain(buf);
        jobs[i] = (churn_job){buf, i, &go, 0, 0};
        task_start(&tasks[i], churn, &jobs[i]);
    }
    mitkbuf_buffer_release(buf); /* ours goes first, so a worker holds the last reference */
    CHECK(atomic_load(&callbacks) == 0, "no callback while workers hold references");
    atomic_store(&go, 1);
    for (int i = 0; i < WORKERS; i++)
        task_join(&tasks[i], 10.0, "releasing thread");
    CHECK(atomic_load(&callbacks) == 1, "callback called exactly once");
    for (int i = 0; i < WORKERS; i++)
        from_worker |= pthread_equal(callback_thread, tasks[i].thread);
    CHECK(from_worker && !pthread_equal(callback_thread, pthread_self()),
          "by the worker thread that dropped the last reference");
    CHECK(callback_sum == WORKERS * (WORKERS + 1) / 2,
          "the callback sees every thread's writes made before its release");
    free(memory);
}

/* ---- many rounds of simultaneous final releases ---------------------------------------------- */

static atomic_int round_no = 0;
static atomic_int released = 0;
static atomic_int quit = 0;
static mitkbuf_buffer *round_buf = NULL;

static void *round_worker(void *arg)
{
    int seen = 0;
    double until = now_seconds() + 10.0;
    (void)arg;
    while (!atomic_load(&quit) && now_seconds() < until) {
        int r = atomic_load(&round_no);
        if (r == seen) {
            sched_yield();
            continue;
        }
        seen = r;
        mitkbuf_buffer_release(round_buf);
        atomic_fetch_add(&released, 1);
    }
    return NULL;
}

static void count_release(void *context, void *data)
{
    (void)data;
    atomic_fetch_add((atomic_int *)context, 1);
}

static void test_racing_final_releases(void)
{
    static unsigned char memory[8];
    atomic_int count = 0;
    task tasks[WORKERS];
    double until = now_seconds() + 0.5;
    int rounds = 0, stuck = 0;

    for (int i = 0; i < WORKERS; i++)
        task_start(&tasks[i], round_worker, NULL);
    while (rounds < 2000 && now_seconds() < until && !stuck) {
        double wait_until = now_seconds() + 5.0;
        mitkbuf_buffer *buf = NULL;
        if (mitkbuf_buffer_adopt(memory, sizeof memory, count_release, &count, &buf) != MITKBUF_OK)
            break;
        for (int i = 1; i < WORKERS; i++)
            mitkbuf_buffer_retain(buf); /* WORKERS references, one per worker; none for us */
        round_buf = buf;
        atomic_store(&released, 0);
        atomic_fetch_add(&round_no, 1); /* publishes round_buf */
        while (atomic_load(&released) < WORKERS && !(stuck = now_seconds() > wait_until))
            sched_yield();
        rounds++;
    }
    atomic_store(&quit, 1);
    for (int i = 0; i < WORKERS; i++)
        task_join(&tasks[i], 15.0, "round worker");
    CHECK(!stuck && rounds > 0, "rounds of simultaneous releases completed");
    CHECK(atomic_load(&count) == rounds, "exactly one callback per buffer, whoever releases last");
}

int main(void)
{
    test_churn_owned();
    test_last_release_in_other_thread();
    test_racing_final_releases();
    return finish();
}
