/* The reader/writer lock under native threads. Every loop is bounded in time. */
#include "check.h"
#include "mitkbuf.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>

static mitkbuf_rwlock *lock;

/* --- many readers at once ------------------------------------------------------------------- */
#define READERS 6
static atomic_int inside = 0;
static atomic_int max_inside = 0;

static void *overlapping_reader(void *arg)
{
    (void)arg;
    uint64_t me = mitkbuf_thread_owner();
    if (mitkbuf_rwlock_read(lock, me, 5.0) != MITKBUF_OK)
        return (void *)1;
    int n = atomic_fetch_add(&inside, 1) + 1;
    int m = atomic_load(&max_inside);
    while (n > m && !atomic_compare_exchange_weak(&max_inside, &m, n)) {}
    double until = now_seconds() + 1.0;
    while (atomic_load(&max_inside) < READERS && now_seconds() < until)
        sleep_seconds(0.001);
    atomic_fetch_sub(&inside, 1);
    mitkbuf_rwlock_unlock_read(lock, me);
    return NULL;
}

/* --- exclusion: writers write two halves, readers check they agree ------------------------ */
static long shared[2];
static atomic_int torn = 0;
static atomic_int stop = 0;

static void *checking_reader(void *arg)
{
    (void)arg;
    uint64_t me = mitkbuf_thread_owner();
    while (!atomic_load(&stop)) {
        if (mitkbuf_rwlock_read(lock, me, 5.0) != MITKBUF_OK)
            return (void *)1;
        if (shared[0] != shared[1])
            atomic_fetch_add(&torn, 1);
        mitkbuf_rwlock_unlock_read(lock, me);
    }
    return NULL;
}

static void *incrementing_writer(void *arg)
{
    (void)arg;
    uint64_t me = mitkbuf_thread_owner();
    while (!atomic_load(&stop)) {
        if (mitkbuf_rwlock_write(lock, me, 5.0) != MITKBUF_OK)
            return (void *)1;
        shared[0]++;
        sleep_seconds(0.00001);
        shared[1]++;
        mitkbuf_rwlock_unlock_write(lock, me);
    }
    return NULL;
}

/* --- helpers running one request in another thread ---------------------------------------- */
typedef struct {
    int write;
    double timeout;
    int status;
    double elapsed;
    int release_after;
} request;

static void *run_request(void *arg)
{
    request *r = arg;
    uint64_t me = mitkbuf_thread_owner();
    double t0 = now_seconds();
    r->status = r->write ? mitkbuf_rwlock_write(lock, me, r->timeout)
                         : mitkbuf_rwlock_read(lock, me, r->timeout);
    r->elapsed = now_seconds() - t0;
    if (r->status == MITKBUF_OK && r->release_after) {
        if (r->write)
            mitkbuf_rwlock_unlock_write(lock, me);
        else
            mitkbuf_rwlock_unlock_read(lock, me);
    }
    return NULL;
}

static void wait_for_waiting_writer(void)
{
    long waiting = 0;
    double until = now_seconds() + 5.0;
    while (waiting == 0 && now_seconds() < until) {
        mitkbuf_rwlock_state(lock, NULL, NULL, &waiting);
        sleep_seconds(0.001);
    }
}

/* --- starvation: readers keep coming, a writer must still get in ---------------------------- */
static void *stream_reader(void *arg)
{
    (void)arg;
    uint64_t me = mitkbuf_thread_owner();
    while (!atomic_load(&stop)) {
        if (mitkbuf_rwlock_read(lock, me, 5.0) == MITKBUF_OK) {
            sleep_seconds(0.0005);
            mitkbuf_rwlock_unlock_read(lock, me);
        }
    }
    return NULL;
}

typedef struct { uint64_t owner; int status; } unlock_job;

static void *unlock_write_for(void *arg)
{
    unlock_job *job = arg;
    job->status = mitkbuf_rwlock_unlock_write(lock, job->owner);
    return NULL;
}

int main(void)
{
    pthread_t t[READERS + 2];
    void *ret;
    uint64_t me = mitkbuf_thread_owner();
    long readers;
    int writer;

    CHECK(mitkbuf_rwlock_new(&lock) == MITKBUF_OK, "create");
    CHECK(me != 0 && me == mitkbuf_thread_owner(), "stable non-zero owner id");

    /* Readers share. */
    for (int i = 0; i < READERS; i++)
        pthread_create(&t[i], NULL, overlapping_reader, NULL);
    for (int i = 0; i < READERS; i++) {
        pthread_join(t[i], &ret);
        CHECK(ret == NULL, "reader acquired");
    }
    CHECK(atomic_load(&max_inside) == READERS, "all readers held the lock at once");

    /* A writer excludes readers and other writers. */
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, checking_reader, NULL);
    pthread_create(&t[4], NULL, incrementing_writer, NULL);
    pthread_create(&t[5], NULL, incrementing_writer, NULL);
    sleep_seconds(0.5);
    atomic_store(&stop, 1);
    for (int i = 0; i < 6; i++) {
        pthread_join(t[i], &ret);
        CHECK(ret == NULL, "worker never timed out");
    }
    CHECK(atomic_load(&torn) == 0, "no reader saw a half-done write");
    CHECK(shared[0] == shared[1] && shared[0] > 0, "writers made progress");
    atomic_store(&stop, 0);

    /* Try and timeouts. */
    CHECK(mitkbuf_rwlock_write(lock, me, -1.0) == MITKBUF_OK, "write");
    request r = {0, 0.0, -1, 0, 1};
    pthread_create(&t[0], NULL, run_request, &r);
    pthread_join(t[0], NULL);
    CHECK(r.status == MITKBUF_EBUSY && r.elapsed < 0.1, "try read while written: EBUSY at once");
    r = (request){0, 0.2, -1, 0, 1};
    pthread_create(&t[0], NULL, run_request, &r);
    pthread_join(t[0], NULL);
    CHECK(r.status == MITKBUF_ETIMEDOUT, "timed read: ETIMEDOUT");
    CHECK(r.elapsed >= 0.19 && r.elapsed < 1.0, "timeout within tolerance");
    r = (request){1, 0.15, -1, 0, 1};
    pthread_create(&t[0], NULL, run_request, &r);
    pthread_join(t[0], NULL);
    CHECK(r.status == MITKBUF_ETIMEDOUT && r.elapsed >= 0.14, "timed write: ETIMEDOUT");

    /* Self-deadlock: immediate, well before the timeout. */
    double t0 = now_seconds();
    CHECK(mitkbuf_rwlock_read(lock, me, 10.0) == MITKBUF_EDEADLK, "read while holding write");
    CHECK(mitkbuf_rwlock_write(lock, me, 10.0) == MITKBUF_EDEADLK, "write while holding write");
    CHECK(now_seconds() - t0 < 0.1, "EDEADLK is immediate");

    /* Unlock on behalf of the owner from another thread. */
    unlock_job job = {me, -1};
    pthread_create(&t[0], NULL, unlock_write_for, &job);
    pthread_join(t[0], NULL);
    CHECK(job.status == MITKBUF_OK, "unlock from another thread");
    mitkbuf_rwlock_state(lock, &readers, &writer, NULL);
    CHECK(readers == 0 && writer == 0, "free after a foreign unlock");
    CHECK(mitkbuf_rwlock_unlock_write(lock, me) == MITKBUF_EPERM, "double unlock: EPERM");
    CHECK(mitkbuf_rwlock_unlock_read(lock, me) == MITKBUF_EPERM, "unlock of a read not held");

    /* Re-entrant reads, and write while reading is a deadlock. */
    CHECK(mitkbuf_rwlock_read(lock, me, -1.0) == MITKBUF_OK, "read");
    CHECK(mitkbuf_rwlock_read(lock, me, 0.0) == MITKBUF_OK, "read again");
    t0 = now_seconds();
    CHECK(mitkbuf_rwlock_write(lock, me, 10.0) == MITKBUF_EDEADLK, "write while reading");
    CHECK(now_seconds() - t0 < 0.1, "immediate");

    /* Writer preference: a waiting writer blocks a new reader, not a re-entrant one. */
    request w = {1, 5.0, -1, 0, 1};
    pthread_create(&t[1], NULL, run_request, &w);
    wait_for_waiting_writer();
    r = (request){0, 0.2, -1, 0, 1};
    pthread_create(&t[0], NULL, run_request, &r);
    pthread_join(t[0], NULL);
    CHECK(r.status == MITKBUF_ETIMEDOUT, "new reader waits behind a waiting writer");
    CHECK(mitkbuf_rwlock_read(lock, me, 0.0) == MITKBUF_OK, "re-entrant read overtakes it");
    for (int i = 0; i < 3; i++)
        mitkbuf_rwlock_unlock_read(lock, me);
    pthread_join(t[1], NULL);
    CHECK(w.status == MITKBUF_OK, "writer got in once the reads ended");

    /* A queued writer keeps its place between timed slices until it cancels. */
    CHECK(mitkbuf_rwlock_read(lock, me, -1.0) == MITKBUF_OK, "hold a read");
    {
        uint64_t writer_owner = me + 1000000; /* an owner id no thread uses */
        long waiting = 0;
        CHECK(mitkbuf_rwlock_write_queued(lock, writer_owner, 0.05) == MITKBUF_ETIMEDOUT,
              "queued write times out while read");
        mitkbuf_rwlock_state(lock, NULL, NULL, &waiting);
        CHECK(waiting == 1, "still queued after the slice");
        CHECK(mitkbuf_rwlock_write_queued(lock, writer_owner, 0.0) == MITKBUF_EBUSY,
              "queued try: busy");
        mitkbuf_rwlock_state(lock, NULL, NULL, &waiting);
        CHECK(waiting == 1, "not queued twice");
        r = (request){0, 0.1, -1, 0, 1};
        pthread_create(&t[0], NULL, run_request, &r);
        pthread_join(t[0], NULL);
        CHECK(r.status == MITKBUF_ETIMEDOUT, "a new reader defers to the queued writer");
        CHECK(mitkbuf_rwlock_write_cancel(lock, writer_owner) == MITKBUF_OK, "cancel");
        CHECK(mitkbuf_rwlock_write_cancel(lock, writer_owner) == MITKBUF_EPERM, "cancel twice");
        mitkbuf_rwlock_state(lock, NULL, NULL, &waiting);
        CHECK(waiting == 0, "dequeued");
        r = (request){0, 0.1, -1, 0, 1};
        pthread_create(&t[0], NULL, run_request, &r);
        pthread_join(t[0], NULL);
        CHECK(r.status == MITKBUF_OK, "readers go again after the cancel");
        mitkbuf_rwlock_unlock_read(lock, me);
        CHECK(mitkbuf_rwlock_write_queued(lock, writer_owner, 1.0) == MITKBUF_OK,
              "queued write gets the free lock");
        CHECK(mitkbuf_rwlock_unlock_write(lock, writer_owner) == MITKBUF_OK, "and releases it");
    }

    /* No starvation: a writer gets in while readers keep arriving. */
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, stream_reader, NULL);
    sleep_seconds(0.05);
    w = (request){1, 5.0, -1, 0, 1};
    pthread_create(&t[4], NULL, run_request, &w);
    pthread_join(t[4], NULL);
    atomic_store(&stop, 1);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    CHECK(w.status == MITKBUF_OK && w.elapsed < 1.0, "writer not starved");

    /* Arguments. */
    CHECK(mitkbuf_rwlock_read(NULL, me, 0) == MITKBUF_EINVAL, "NULL lock");
    CHECK(mitkbuf_rwlock_read(lock, 0, 0) == MITKBUF_EINVAL, "owner 0");
    CHECK(mitkbuf_rwlock_write(lock, me, NAN) == MITKBUF_EINVAL, "NaN timeout");
    CHECK(mitkbuf_rwlock_read(lock, me, 1e300) == MITKBUF_OK, "huge timeout is fine");
    mitkbuf_rwlock_unlock_read(lock, me);
    mitkbuf_rwlock_state(lock, &readers, &writer, NULL);
    CHECK(readers == 0 && writer == 0, "free at the end");
    mitkbuf_rwlock_free(lock);
    return finish();
}
