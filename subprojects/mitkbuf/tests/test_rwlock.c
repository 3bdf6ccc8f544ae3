/* The reader/writer lock under native threads.
 *
 * Every wait in here is bounded: lock requests carry timeouts, loops stop at a deadline, and
 * threads are joined with task_join, which fails the test instead of hanging.  Owner ids other
 * than mitkbuf_thread_owner() are used where one thread plays several owners: the lock tracks
 * owners, not threads.
 */
#include "check.h"
#include "mitkbuf.h"
/* White box: the fork test holds the internal mutex across fork(), and the fast-path test looks
 * at the lock's slot words to see which path a request took. */
#include "../src/mitkbuf_internal.h"

#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static mitkbuf_rwlock *lock;

/* Owner ids no thread will ever get (thread ids count up from 1).  The suite runs twice: with ids
 * the lock's fast path can hold (below 2^39) and with ids it cannot (2^62 on), which always take
 * the mutex, so that both paths, and every handover between them, meet every rule. */
#define FAST_BASE ((uint64_t)1 << 38)
#define SLOW_BASE ((uint64_t)1 << 62)
static uint64_t owner_base = FAST_BASE;
#define OWNER(n) (owner_base + (uint64_t)(n))

static void expect_free(const char *what)
{
    long readers = -1, waiting = -1;
    int writer = -1;
    mitkbuf_rwlock_state(lock, &readers, &writer, &waiting);
    CHECK(readers == 0 && writer == 0 && waiting == 0, what);
}

static long waiting_writers(void)
{
    long waiting = 0;
    mitkbuf_rwlock_state(lock, NULL, NULL, &waiting);
    return waiting;
}

/* Wait (at most 5 s) until `n` writers are queued. */
static int await_waiting_writers(long n)
{
    double until = now_seconds() + 5.0;
    while (waiting_writers() != n && now_seconds() < until)
        sleep_seconds(0.001);
    return waiting_writers() == n;
}

/* ---- one lock request run in its own thread ------------------------------------------------- */

enum { READ, WRITE };

typedef struct {
    int mode;
    uint64_t owner;      /* 0: the thread's own id */
    double timeout;
    atomic_int *release; /* after success, hold until *release != 0 (at most 10 s); NULL: don't */
    int status;
    double elapsed;
    atomic_int acquired;
} request;

static request make_request(int mode, uint64_t owner, double timeout, atomic_int *release)
{
    request r;
    r.mode = mode;
    r.owner = owner;
    r.timeout = timeout;
    r.release = release;
    r.status = -1;
    r.elapsed = -1;
    atomic_init(&r.acquired, 0);
    return r;
}

static void *run_request(void *arg)
{
    request *r = arg;
    uint64_t owner = r->owner != 0 ? r->owner : mitkbuf_thread_owner();
    double t0 = now_seconds();
    r->status = r->mode == WRITE ? mitkbuf_rwlock_write(lock, owner, r->timeout)
                                 : mitkbuf_rwlock_read(lock, owner, r->timeout);
    r->elapsed = now_seconds() - t0;
    if (r->status != MITKBUF_OK)
        return NULL;
    atomic_store(&r->acquired, 1);
    if (r->release != NULL) {
        double until = now_seconds() + 10.0;
        while (!atomic_load(r->release) && now_seconds() < until)
            sleep_seconds(0.001);
    }
    if (r->mode == WRITE)
        mitkbuf_rwlock_unlock_write(lock, owner);
    else
        mitkbuf_rwlock_unlock_read(lock, owner);
    return NULL;
}

/* Run one request in a thread and wait for its answer (it must come within `limit` seconds). */
static request ask(int mode, uint64_t owner, double timeout, double limit, const char *what)
{
    request r = make_request(mode, owner, timeout, NULL);
    task t;
    task_start(&t, run_request, &r);
    task_join(&t, limit, what);
    return r;
}

/* ---- owner ids ------------------------------------------------------------------------------ */

static void *record_owner(void *arg)
{
    uint64_t *out = arg;
    out[0] = mitkbuf_thread_owner();
    out[1] = mitkbuf_thread_owner();
    return NULL;
}

static void test_owner_ids(void)
{
    uint64_t me = mitkbuf_thread_owner();
    uint64_t ids[4][2];
    task t;
    int distinct = 1, stable = 1;
    for (int i = 0; i < 4; i++) {
        /* One after another: a thread that ended must not hand its id to the next one. */
        task_start(&t, record_owner, ids[i]);
        task_join(&t, 5.0, "owner id thread");
    }
    for (int i = 0; i < 4; i++) {
        stable &= ids[i][0] == ids[i][1] && ids[i][0] != 0;
        distinct &= ids[i][0] != me;
        for (int j = 0; j < i; j++)
            distinct &= ids[i][0] != ids[j][0];
    }
    CHECK(me != 0 && me == mitkbuf_thread_owner(), "owner id: non-zero and stable in a thread");
    CHECK(stable, "owner id: stable within each thread");
    CHECK(distinct, "owner id: distinct per thread, never reused after a thread ends");
}

/* ---- many readers hold the lock at once ------------------------------------------------------ */

#define READERS 6
static atomic_int inside = 0;

static void *overlapping_reader(void *arg)
{
    atomic_int *release = arg;
    uint64_t me = mitkbuf_thread_owner();
    double until = now_seconds() + 5.0;
    if (mitkbuf_rwlock_read(lock, me, 5.0) != MITKBUF_OK)
        return (void *)1;
    atomic_fetch_add(&inside, 1);
    while (!atomic_load(release) && now_seconds() < until)
        sleep_seconds(0.001);
    atomic_fetch_sub(&inside, 1);
    return mitkbuf_rwlock_unlock_read(lock, me) == MITKBUF_OK ? NULL : (void *)1;
}

static void test_readers_share(void)
{
    task t[READERS];
    atomic_int release = 0;
    long readers = 0;
    int writer = 1, failed = 0;
    double until = now_seconds() + 5.0;

    for (int i = 0; i < READERS; i++)
        task_start(&t[i], overlapping_reader, &release);
    while (atomic_load(&inside) < READERS && now_seconds() < until)
        sleep_seconds(0.001);
    mitkbuf_rwlock_state(lock, &readers, &writer, NULL);
    CHECK(atomic_load(&inside) == READERS, "readers: all threads hold the read lock at the same time");
    CHECK(readers == READERS && writer == 0, "readers: the state counts one hold per reader");
    CHECK(mitkbuf_rwlock_write(lock, OWNER(1), 0.0) == MITKBUF_EBUSY, "readers: a try-write is EBUSY");
    CHECK(mitkbuf_rwlock_read(lock, OWNER(1), 0.0) == MITKBUF_OK, "readers: one more reader joins at once");
    mitkbuf_rwlock_unlock_read(lock, OWNER(1));
    atomic_store(&release, 1);
    for (int i = 0; i < READERS; i++)
        failed += task_join(&t[i], 10.0, "reader") != NULL;
    CHECK(failed == 0, "readers: every acquire and unlock returned OK");
    expect_free("readers: free afterwards");
}

/* ---- a writer excludes readers and other writers --------------------------------------------- */

static atomic_int active_readers = 0;
static atomic_int active_writers = 0;
static atomic_int violations = 0;
static atomic_int failures = 0;
static long counter_a = 0, counter_b = 0; /* plain data, guarded by the lock only */

typedef struct {
    double until;
    long writes;
    double pause; /* a writer's rest between writes, in seconds */
} worker;

static void *exclusive_writer(void *arg)
{
    worker *w = arg;
    uint64_t me = mitkbuf_thread_owner();
    while (now_seconds() < w->until) {
        if (mitkbuf_rwlock_write(lock, me, 5.0) != MITKBUF_OK) {
            atomic_fetch_add(&failures, 1);
            return NULL;
        }
        if (atomic_fetch_add(&active_writers, 1) != 0 || atomic_load(&active_readers) != 0)
            atomic_fetch_add(&violations, 1);
        long a = counter_a;
        sched_yield(); /* widen the window in which a missing exclusion would lose an update */
        counter_a = a + 1;
        counter_b++;
        w->writes++;
        atomic_fetch_sub(&active_writers, 1);
        mitkbuf_rwlock_unlock_write(lock, me);
        if (w->pause > 0)
            sleep_seconds(w->pause);
    }
    return NULL;
}

static void *checking_reader(void *arg)
{
    worker *w = arg;
    uint64_t me = mitkbuf_thread_owner();
    while (now_seconds() < w->until) {
        if (mitkbuf_rwlock_read(lock, me, 5.0) != MITKBUF_OK) {
            atomic_fetch_add(&failures, 1);
            return NULL;
        }
        atomic_fetch_add(&active_readers, 1);
        if (atomic_load(&active_writers) != 0 || counter_a != counter_b)
            atomic_fetch_add(&violations, 1);
        atomic_fetch_sub(&active_readers, 1);
        mitkbuf_rwlock_unlock_read(lock, me);
    }
    return NULL;
}

/* nwrite writers among 4 readers.  Three writers that never rest keep the lock in the table's
 * charge most of the time; one that rests between writes lets the readers run on the fast path
 * (in whichever slots their thread ids give them), so that every write moves reads out of the
 * slots while they are being taken and released.  test_ordering below does the same with fixed
 * homes and without the atomics this test checks with. */
static void test_exclusion(int nwrite, double pause)
{
    enum { NREAD = 4, MOST = NREAD + 3 };
    task t[MOST];
    worker w[MOST];
    double until = now_seconds() + 0.5;
    long writes = 0;
    counter_a = counter_b = 0; /* the suite runs twice */
    for (int i = 0; i < NREAD + nwrite; i++) {
        w[i] = (worker){until, 0, pause};
        task_start(&t[i], i < NREAD ? checking_reader : exclusive_writer, &w[i]);
    }
    for (int i = 0; i < NREAD + nwrite; i++) {
        task_join(&t[i], 15.0, "exclusion worker");
        writes += w[i].writes;
    }
    CHECK(atomic_load(&failures) == 0, "exclusion: no acquire failed or timed out");
    CHECK(atomic_load(&violations) == 0,
          "exclusion: never a writer beside a reader or another writer, no torn state seen");
    CHECK(writes > 0 && counter_a == writes && counter_b == writes,
          "exclusion: no write was lost (shared counter == number of write sections)");
    expect_free("exclusion: free afterwards");
}

/* ---- the lock orders plain memory (run it under ThreadSanitizer) ----------------------------- */

/* Readers in four different slots (or all in the table, in the pass with ids the fast path cannot
 * hold) and a writer that rests between writes, sharing plain data and nothing else: no atomic
 * inside a hold, and a stop flag read with relaxed order, so that only the lock can order the
 * writer's stores against the readers' loads.  A missing acquire or release in the lock (in the
 * fast path, go_slow or settle) is a data race that ThreadSanitizer reports; without it the test
 * still catches torn state it happens to see. */
static long plain_a = 0, plain_b = 0;
static atomic_int plain_stop = 0;

static void *plain_reader(void *arg)
{
    uint64_t me = *(const uint64_t *)arg;
    long bad = 0;
    while (!atomic_load_explicit(&plain_stop, memory_order_relaxed)) {
        if (mitkbuf_rwlock_read(lock, me, 5.0) != MITKBUF_OK)
            return (void *)1;
        bad += plain_a != plain_b;
        if (mitkbuf_rwlock_unlock_read(lock, me) != MITKBUF_OK)
            return (void *)1;
    }
    return (void *)(intptr_t)(bad != 0);
}

static void *plain_writer(void *arg)
{
    long *writes = arg;
    while (!atomic_load_explicit(&plain_stop, memory_order_relaxed)) {
        if (mitkbuf_rwlock_write(lock, OWNER(100), 5.0) != MITKBUF_OK)
            return (void *)1;
        plain_a++;
        plain_b++;
        ++*writes;
        if (mitkbuf_rwlock_unlock_write(lock, OWNER(100)) != MITKBUF_OK)
            return (void *)1;
        sleep_seconds(0.00005);
    }
    return NULL;
}

static void test_ordering(void)
{
    enum { NREAD = MITKBUF__RWLOCK_SLOTS };
    uint64_t owners[NREAD];
    task t[NREAD + 1];
    long writes = 0;
    int bad = 0;
    plain_a = plain_b = 0;
    atomic_store(&plain_stop, 0);
    for (int i = 0; i < NREAD; i++) {
        owners[i] = OWNER(i); /* OWNER(0) .. OWNER(3): one per slot */
        task_start(&t[i], plain_reader, &owners[i]);
    }
    task_start(&t[NREAD], plain_writer, &writes);
    sleep_seconds(0.3);
    atomic_store_explicit(&plain_stop, 1, memory_order_relaxed);
    for (int i = 0; i <= NREAD; i++)
        bad += task_join(&t[i], 15.0, "ordering worker") != NULL;
    CHECK(bad == 0 && writes > 0 && plain_a == writes && plain_b == writes,
          "ordering: readers in every slot and a resting writer, plain data only: no failure, "
          "no torn state, no lost write");
    expect_free("ordering: free afterwards");
}

/* ---- try and timeouts ---------------------------------------------------------------------- */

static void test_try_and_timeouts(void)
{
    uint64_t me = mitkbuf_thread_owner();
    request r;
    atomic_int release = 0;
    task holder_task;

    /* Write held by this thread; other owners try and wait. */
    CHECK(mitkbuf_rwlock_write(lock, me, -1.0) == MITKBUF_OK, "try: take the write lock");
    r = ask(READ, 0, 0.0, 5.0, "try read");
    CHECK(r.status == MITKBUF_EBUSY && r.elapsed < 0.1, "try: read of a written lock is EBUSY at once");
    r = ask(WRITE, 0, 0.0, 5.0, "try write");
    CHECK(r.status == MITKBUF_EBUSY && r.elapsed < 0.1, "try: write of a written lock is EBUSY at once");
    r = ask(READ, 0, -0.0, 5.0, "try read, -0.0");
    CHECK(r.status == MITKBUF_EBUSY, "try: a timeout of -0.0 is a try too");

    r = ask(READ, 0, 0.2, 5.0, "timed read");
    CHECK(r.status == MITKBUF_ETIMEDOUT, "timeout: read of a written lock gives ETIMEDOUT");
    CHECK(r.elapsed >= 0.19 && r.elapsed < 1.0, "timeout: 0.2 s read wait lasted 0.19..1.0 s");
    r = ask(WRITE, 0, 0.2, 5.0, "timed write");
    CHECK(r.status == MITKBUF_ETIMEDOUT, "timeout: write of a written lock gives ETIMEDOUT");
    CHECK(r.elapsed >= 0.19 && r.elapsed < 1.0, "timeout: 0.2 s write wait lasted 0.19..1.0 s");
    CHECK(waiting_writers() == 0, "timeout: a writer that gave up is no longer queued");
    CHECK(mitkbuf_rwlock_unlock_write(lock, me) == MITKBUF_OK, "timeout: unlock");

    /* Read held by another thread: writers wait, readers do not. */
    r = make_request(READ, 0, 5.0, &release);
    task_start(&holder_task, run_request, &r);
    {
        double until = now_seconds() + 5.0;
        while (!atomic_load(&r.acquired) && now_seconds() < until)
            sleep_seconds(0.001);
    }
    CHECK(atomic_load(&r.acquired), "timeout: another thread holds a read");
    CHECK(mitkbuf_rwlock_write(lock, me, 0.0) == MITKBUF_EBUSY, "try: write of a read lock is EBUSY");
    {
        double t0 = now_seconds();
        int status = mitkbuf_rwlock_write(lock, me, 0.2);
        double elapsed = now_seconds() - t0;
        CHECK(status == MITKBUF_ETIMEDOUT && elapsed >= 0.19 && elapsed < 1.0,
              "timeout: write of a read lock gives ETIMEDOUT after 0.19..1.0 s");
    }
    CHECK(mitkbuf_rwlock_read(lock, me, 0.0) == MITKBUF_OK, "try: read of a read lock succeeds");
    mitkbuf_rwlock_unlock_read(lock, me);

    /* A timed wait that succeeds: the reader lets go after 0.1 s and the waiting writer, woken by
     * that unlock, gets in long before its own deadline. */
    {
        request w = make_request(WRITE, 0, 3.0, NULL);
        task waiter;
        task_start(&waiter, run_request, &w);
        CHECK(await_waiting_writers(1), "timeout: a writer waits for the reader");
        sleep_seconds(0.1);
        atomic_store(&release, 1);
        task_join(&holder_task, 15.0, "read holder");
        task_join(&waiter, 15.0, "waiting writer");
        CHECK(w.status == MITKBUF_OK && w.elapsed < 1.0,
              "timeout: a timed writer is woken by the last read unlock, well before its deadline");
    }
    expect_free("timeouts: free afterwards");
}

/* ---- self-deadlock is an error, at once ------------------------------------------------------ */

/* Ask in a thread on behalf of `owner`, so a hang is caught instead of blocking the test. */
static void expect_deadlock(int mode, uint64_t owner, double timeout, const char *what)
{
    request r = ask(mode, owner, timeout, 5.0, what);
    CHECK(r.status == MITKBUF_EDEADLK && r.elapsed < 0.1, what);
}

static void test_self_deadlock(void)
{
    long readers = 0;
    int writer = 0;

    CHECK(mitkbuf_rwlock_read(lock, OWNER(10), -1.0) == MITKBUF_OK, "deadlock: owner takes a read");
    expect_deadlock(WRITE, OWNER(10), 10.0, "deadlock: write while holding a read is EDEADLK at once (10 s asked)");
    expect_deadlock(WRITE, OWNER(10), -1.0, "deadlock: write while holding a read is EDEADLK at once (no timeout)");
    expect_deadlock(WRITE, OWNER(10), 0.0, "deadlock: try-write while holding a read is EDEADLK, not EBUSY");
    CHECK(mitkbuf_rwlock_write_queued(lock, OWNER(10), 10.0) == MITKBUF_EDEADLK && waiting_writers() == 0,
          "deadlock: queued write while holding a read is EDEADLK and leaves no queue entry");
    mitkbuf_rwlock_state(lock, &readers, &writer, NULL);
    CHECK(readers == 1 && writer == 0, "deadlock: the refused requests changed nothing");
    CHECK(mitkbuf_rwlock_unlock_read(lock, OWNER(10)) == MITKBUF_OK, "deadlock: unlock the read");

    CHECK(mitkbuf_rwlock_write(lock, OWNER(11), -1.0) == MITKBUF_OK, "deadlock: owner takes the write lock");
    expect_deadlock(READ, OWNER(11), 10.0, "deadlock: read while holding the write is EDEADLK at once (10 s asked)");
    expect_deadlock(READ, OWNER(11), -1.0, "deadlock: read while holding the write is EDEADLK at once (no timeout)");
    expect_deadlock(WRITE, OWNER(11), 10.0, "deadlock: write while holding the write is EDEADLK at once (10 s asked)");
    expect_deadlock(WRITE, OWNER(11), -1.0, "deadlock: write while holding the write is EDEADLK at once (no timeout)");
    mitkbuf_rwlock_state(lock, &readers, &writer, NULL);
    CHECK(readers == 0 && writer == 1, "deadlock: the write lock is still held as before");
    CHECK(mitkbuf_rwlock_unlock_write(lock, OWNER(11)) == MITKBUF_OK, "deadlock: unlock the write");
    expect_free("deadlock: free afterwards");
}

/* ---- unlock from another thread, and EPERM ----------------------------------------------------- */

typedef struct {
    int write;
    uint64_t owner;
    int status;
} unlock_job;

static void *unlock_for(void *arg)
{
    unlock_job *job = arg;
    job->status = job->write ? mitkbuf_rwlock_unlock_write(lock, job->owner)
                             : mitkbuf_rwlock_unlock_read(lock, job->owner);
    return NULL;
}

static void test_foreign_unlock(void)
{
    uint64_t me = mitkbuf_thread_owner();
    unlock_job job;
    task t, waiter;
    request r;

    /* A reader of another thread waits for our write lock; a third thread releases it for us. */
    CHECK(mitkbuf_rwlock_write(lock, me, -1.0) == MITKBUF_OK, "foreign unlock: take the write lock");
    r = make_request(READ, 0, 5.0, NULL);
    task_start(&waiter, run_request, &r);
    sleep_seconds(0.05);
    CHECK(!task_done(&waiter), "foreign unlock: a reader waits");
    job = (unlock_job){1, me, -1};
    task_start(&t, unlock_for, &job);
    task_join(&t, 5.0, "unlocking thread");
    CHECK(job.status == MITKBUF_OK, "foreign unlock: another thread releases our write lock");
    task_join(&waiter, 5.0, "woken reader");
    CHECK(r.status == MITKBUF_OK && r.elapsed < 1.0, "foreign unlock: it wakes the waiting reader");
    CHECK(mitkbuf_rwlock_unlock_write(lock, me) == MITKBUF_EPERM, "foreign unlock: ours is gone (EPERM)");

    /* The same for a read hold and a waiting writer. */
    CHECK(mitkbuf_rwlock_read(lock, me, -1.0) == MITKBUF_OK, "foreign unlock: take a read");
    r = make_request(WRITE, 0, 5.0, NULL);
    task_start(&waiter, run_request, &r);
    CHECK(await_waiting_writers(1), "foreign unlock: a writer waits");
    job = (unlock_job){0, me, -1};
    task_start(&t, unlock_for, &job);
    task_join(&t, 5.0, "unlocking thread");
    CHECK(job.status == MITKBUF_OK, "foreign unlock: another thread releases our read");
    task_join(&waiter, 5.0, "woken writer");
    CHECK(r.status == MITKBUF_OK && r.elapsed < 1.0, "foreign unlock: it wakes the waiting writer");
    expect_free("foreign unlock: free afterwards");
}

static void test_eperm(void)
{
    long readers = 0;
    int writer = 0;
    CHECK(mitkbuf_rwlock_unlock_read(lock, OWNER(20)) == MITKBUF_EPERM, "EPERM: unlock a read never taken");
    CHECK(mitkbuf_rwlock_unlock_write(lock, OWNER(20)) == MITKBUF_EPERM, "EPERM: unlock a write never taken");
    CHECK(mitkbuf_rwlock_unlock_read(lock, 0) == MITKBUF_EPERM, "EPERM: owner 0 holds nothing");

    mitkbuf_rwlock_read(lock, OWNER(20), -1.0);
    CHECK(mitkbuf_rwlock_unlock_write(lock, OWNER(20)) == MITKBUF_EPERM, "EPERM: unlock write while holding a read");
    CHECK(mitkbuf_rwlock_unlock_read(lock, OWNER(21)) == MITKBUF_EPERM, "EPERM: another owner cannot release it");
    mitkbuf_rwlock_state(lock, &readers, &writer, NULL);
    CHECK(readers == 1 && writer == 0, "EPERM: the read is still held");
    CHECK(mitkbuf_rwlock_unlock_read(lock, OWNER(20)) == MITKBUF_OK, "EPERM: the owner releases it");
    CHECK(mitkbuf_rwlock_unlock_read(lock, OWNER(20)) == MITKBUF_EPERM, "EPERM: a second unlock of one read");

    mitkbuf_rwlock_write(lock, OWNER(20), -1.0);
    CHECK(mitkbuf_rwlock_unlock_read(lock, OWNER(20)) == MITKBUF_EPERM, "EPERM: unlock read while holding the write");
    CHECK(mitkbuf_rwlock_unlock_write(lock, OWNER(21)) == MITKBUF_EPERM, "EPERM: another owner cannot release the write");
    mitkbuf_rwlock_state(lock, &readers, &writer, NULL);
    CHECK(readers == 0 && writer == 1, "EPERM: the write is still held");
    CHECK(mitkbuf_rwlock_unlock_write(lock, OWNER(20)) == MITKBUF_OK, "EPERM: the owner releases the write");
    CHECK(mitkbuf_rwlock_unlock_write(lock, OWNER(20)) == MITKBUF_EPERM, "EPERM: a second unlock of the write");
    CHECK(mitkbuf_rwlock_write_cancel(lock, OWNER(20)) == MITKBUF_EPERM, "EPERM: cancel without a queued write");
    expect_free("EPERM: free afterwards");
}

/* ---- writer preference ------------------------------------------------------------------------ */

static void test_writer_preference(void)
{
    uint64_t me = mitkbuf_thread_owner();
    request w, r;
    task writer_task;
    atomic_int release = 0;

    CHECK(mitkbuf_rwlock_read(lock, me, -1.0) == MITKBUF_OK, "preference: we hold a read");
    w = make_request(WRITE, 0, 5.0, &release);
    task_start(&writer_task, run_request, &w);
    CHECK(await_waiting_writers(1), "preference: a writer queues behind our read");

    r = ask(READ, 0, 0.0, 5.0, "new reader, try");
    CHECK(r.status == MITKBUF_EBUSY, "preference: a new reader's try is EBUSY while a writer waits");
    r = ask(READ, 0, 0.2, 5.0, "new reader, timed");
    CHECK(r.status == MITKBUF_ETIMEDOUT && r.elapsed >= 0.19,
          "preference: a new reader of another owner waits behind the waiting writer");
    {
        double t0 = now_seconds();
        CHECK(mitkbuf_rwlock_read(lock, me, 0.0) == MITKBUF_OK,
              "preference: the owner already reading re-enters at once (try)");
        CHECK(mitkbuf_rwlock_read(lock, me, -1.0) == MITKBUF_OK && now_seconds() - t0 < 0.1,
              "preference: and again without a timeout, without waiting");
    }
    CHECK(!task_done(&writer_task), "preference: the writer still waits for our reads");
    for (int i = 0; i < 3; i++)
        mitkbuf_rwlock_unlock_read(lock, me);
    {
        double until = now_seconds() + 5.0;
        while (!atomic_load(&w.acquired) && now_seconds() < until)
            sleep_seconds(0.001);
    }
    CHECK(atomic_load(&w.acquired) && w.status == MITKBUF_OK, "preference: the writer gets in after our last read");
    r = ask(READ, 0, 0.1, 5.0, "reader during the write");
    CHECK(r.status == MITKBUF_ETIMEDOUT, "preference: readers wait while it writes");
    atomic_store(&release, 1);
    task_join(&writer_task, 15.0, "preferred writer");
    r = ask(READ, 0, 1.0, 5.0, "reader after the write");
    CHECK(r.status == MITKBUF_OK && r.elapsed < 0.5, "preference: readers go once it is done");
    expect_free("preference: free afterwards");

    /* A waiting writer that gives up must wake the readers it held back. */
    {
        request quitter, blocked;
        task quitter_task, blocked_task;
        CHECK(mitkbuf_rwlock_read(lock, me, -1.0) == MITKBUF_OK, "preference: we hold a read again");
        quitter = make_request(WRITE, 0, 0.3, NULL);
        task_start(&quitter_task, run_request, &quitter);
        CHECK(await_waiting_writers(1), "preference: a writer with a 0.3 s timeout waits");
        blocked = make_request(READ, 0, 3.0, NULL);
        task_start(&blocked_task, run_request, &blocked);
        task_join(&quitter_task, 5.0, "writer that gives up");
        task_join(&blocked_task, 5.0, "reader behind it");
        CHECK(quitter.status == MITKBUF_ETIMEDOUT, "preference: that writer times out");
        CHECK(blocked.status == MITKBUF_OK && blocked.elapsed < 1.0,
              "preference: the reader it held back goes as soon as it gives up");
        mitkbuf_rwlock_unlock_read(lock, me);
        expect_free("preference: free at the end");
    }
}

/* ---- no writer starvation under a constant stream of readers ----------------------------------- */

static atomic_int stream_stop = 0;
static atomic_long stream_reads = 0;

static void *stream_reader(void *arg)
{
    uint64_t me = mitkbuf_thread_owner();
    double until = now_seconds() + 10.0;
    (void)arg;
    while (!atomic_load(&stream_stop) && now_seconds() < until) {
        if (mitkbuf_rwlock_read(lock, me, 5.0) == MITKBUF_OK) {
            atomic_fetch_add(&stream_reads, 1);
            sleep_seconds(0.002); /* holds overlap: without preference the lock is never free */
            mitkbuf_rwlock_unlock_read(lock, me);
        }
    }
    return NULL;
}

static void test_no_starvation(void)
{
    enum { STREAM = 4 };
    task t[STREAM];
    request w;
    long before, after;
    long readers = 0;
    double until;

    atomic_store(&stream_stop, 0); /* the suite runs twice */
    atomic_store(&stream_reads, 0);
    for (int i = 0; i < STREAM; i++)
        task_start(&t[i], stream_reader, NULL);
    until = now_seconds() + 5.0;
    while (atomic_load(&stream_reads) < 20 && now_seconds() < until)
        sleep_seconds(0.001);
    mitkbuf_rwlock_state(lock, &readers, NULL, NULL);
    before = atomic_load(&stream_reads);
    CHECK(before >= 20, "starvation: the readers stream is running");
    w = ask(WRITE, 0, 5.0, 10.0, "writer in a stream of readers");
    after = atomic_load(&stream_reads);
    CHECK(w.status == MITKBUF_OK && w.elapsed < 1.0, "starvation: the writer gets in within 1 s");
    sleep_seconds(0.05);
    CHECK(atomic_load(&stream_reads) > after, "starvation: the readers go on after the writer");
    atomic_store(&stream_stop, 1);
    for (int i = 0; i < STREAM; i++)
        task_join(&t[i], 15.0, "stream reader");
    expect_free("starvation: free afterwards");
}

/* ---- write_queued / write_cancel ------------------------------------------------------------- */

static void test_queued_writer(void)
{
    const uint64_t q = OWNER(30);
    request r;

    CHECK(mitkbuf_rwlock_read(lock, OWNER(31), -1.0) == MITKBUF_OK, "queued: a reader holds the lock");
    CHECK(mitkbuf_rwlock_write_queued(lock, q, 0.05) == MITKBUF_ETIMEDOUT, "queued: a slice times out");
    CHECK(waiting_writers() == 1, "queued: still queued after the slice");
    CHECK(mitkbuf_rwlock_write_queued(lock, q, 0.0) == MITKBUF_EBUSY, "queued: a try slice is EBUSY");
    CHECK(waiting_writers() == 1, "queued: not queued twice");
    r = ask(READ, 0, 0.1, 5.0, "reader behind a queued writer");
    CHECK(r.status == MITKBUF_ETIMEDOUT, "queued: new readers defer to it between slices");
    CHECK(mitkbuf_rwlock_read(lock, OWNER(31), 0.0) == MITKBUF_OK, "queued: the reader still re-enters");
    mitkbuf_rwlock_unlock_read(lock, OWNER(31));
    CHECK(mitkbuf_rwlock_read(lock, q, 0.0) == MITKBUF_OK, "queued: the queued owner's own read is not blocked by itself");
    CHECK(mitkbuf_rwlock_write_queued(lock, q, 0.0) == MITKBUF_EDEADLK && waiting_writers() == 0,
          "queued: EDEADLK (it now holds a read) takes it out of the queue");
    mitkbuf_rwlock_unlock_read(lock, q);

    CHECK(mitkbuf_rwlock_write_queued(lock, q, 0.0) == MITKBUF_EBUSY && waiting_writers() == 1, "queued: queue again");
    CHECK(mitkbuf_rwlock_write_cancel(lock, q) == MITKBUF_OK && waiting_writers() == 0, "queued: cancel");
    CHECK(mitkbuf_rwlock_write_cancel(lock, q) == MITKBUF_EPERM, "queued: a second cancel is EPERM");
    r = ask(READ, 0, 1.0, 5.0, "reader after the cancel");
    CHECK(r.status == MITKBUF_OK && r.elapsed < 0.5, "queued: readers go again after the cancel");

    CHECK(mitkbuf_rwlock_write_queued(lock, q, 0.0) == MITKBUF_EBUSY, "queued: queue behind the reader");
    CHECK(mitkbuf_rwlock_write(lock, q, 0.0) == MITKBUF_EBUSY && waiting_writers() == 0,
          "queued: a plain write that gives up leaves the queue");
    CHECK(mitkbuf_rwlock_write_queued(lock, q, 0.0) == MITKBUF_EBUSY, "queued: queue once more");
    mitkbuf_rwlock_unlock_read(lock, OWNER(31));
    CHECK(mitkbuf_rwlock_write_queued(lock, q, 1.0) == MITKBUF_OK && waiting_writers() == 0,
          "queued: the next slice takes the free lock and leaves the queue");
    CHECK(mitkbuf_rwlock_unlock_write(lock, q) == MITKBUF_OK, "queued: unlock");
    expect_free("queued: free afterwards");

    /* Another thread cancels the queue entry of a writer that is still waiting: the readers it
     * held back go, and the writer, no longer counted as waiting, must still be woken when the
     * lock frees (not sleep out its timeout, or forever). */
    {
        request w = make_request(WRITE, q, 3.0, NULL);
        task waiter;
        double t0;
        CHECK(mitkbuf_rwlock_read(lock, OWNER(31), -1.0) == MITKBUF_OK, "queued: a reader holds it again");
        task_start(&waiter, run_request, &w);
        CHECK(await_waiting_writers(1), "queued: a writer waits (3 s timeout)");
        CHECK(mitkbuf_rwlock_write_cancel(lock, q) == MITKBUF_OK && waiting_writers() == 0,
              "queued: another thread cancels its queue entry while it waits");
        r = ask(READ, 0, 1.0, 5.0, "reader after cancelling a waiting writer");
        CHECK(r.status == MITKBUF_OK && r.elapsed < 0.5, "queued: new readers go at once");
        t0 = now_seconds();
        mitkbuf_rwlock_unlock_read(lock, OWNER(31));
        task_join(&waiter, 10.0, "writer whose queue entry was cancelled");
        CHECK(w.status == MITKBUF_OK && now_seconds() - t0 < 1.0,
              "queued: the writer is woken by the last unlock and gets the lock");
        expect_free("queued: free after the cancelled writer");
    }
}

/* ---- arguments and special timeouts ----------------------------------------------------------- */

static void test_arguments(void)
{
    uint64_t me = mitkbuf_thread_owner();
    long readers = 0;
    request r;
    task waiter;

    CHECK(mitkbuf_rwlock_new(NULL) == MITKBUF_EINVAL, "args: new(NULL) is EINVAL");
    mitkbuf_rwlock_free(NULL);
    CHECK(mitkbuf_rwlock_read(NULL, me, 0) == MITKBUF_EINVAL && mitkbuf_rwlock_write(NULL, me, 0) == MITKBUF_EINVAL &&
              mitkbuf_rwlock_write_queued(NULL, me, 0) == MITKBUF_EINVAL &&
              mitkbuf_rwlock_write_cancel(NULL, me) == MITKBUF_EINVAL &&
              mitkbuf_rwlock_unlock_read(NULL, me) == MITKBUF_EINVAL &&
              mitkbuf_rwlock_unlock_write(NULL, me) == MITKBUF_EINVAL &&
              mitkbuf_rwlock_state(NULL, NULL, NULL, NULL) == MITKBUF_EINVAL,
          "args: a NULL lock is EINVAL everywhere");
    CHECK(mitkbuf_rwlock_read(lock, 0, 1.0) == MITKBUF_EINVAL && mitkbuf_rwlock_write(lock, 0, 1.0) == MITKBUF_EINVAL &&
              mitkbuf_rwlock_write_queued(lock, 0, 1.0) == MITKBUF_EINVAL,
          "args: owner 0 is EINVAL");
    CHECK(mitkbuf_rwlock_read(lock, me, NAN) == MITKBUF_EINVAL && mitkbuf_rwlock_write(lock, me, NAN) == MITKBUF_EINVAL &&
              mitkbuf_rwlock_write_queued(lock, me, -NAN) == MITKBUF_EINVAL,
          "args: a NaN timeout is EINVAL");
    CHECK(mitkbuf_rwlock_state(lock, NULL, NULL, NULL) == MITKBUF_OK, "args: state with NULL outputs");
    expect_free("args: refused requests changed nothing");

    CHECK(mitkbuf_rwlock_read(lock, me, INFINITY) == MITKBUF_OK, "args: +inf timeout on a free lock");
    CHECK(mitkbuf_rwlock_read(lock, me, 1e300) == MITKBUF_OK, "args: a huge timeout on a free lock");
    CHECK(mitkbuf_rwlock_read(lock, me, -INFINITY) == MITKBUF_OK, "args: -inf timeout on a free lock");
    mitkbuf_rwlock_state(lock, &readers, NULL, NULL);
    CHECK(readers == 3, "args: three re-entrant reads counted");
    r = make_request(WRITE, 0, INFINITY, NULL);
    task_start(&waiter, run_request, &r);
    CHECK(await_waiting_writers(1), "args: a writer waits with +inf");
    for (int i = 0; i < 3; i++)
        mitkbuf_rwlock_unlock_read(lock, me);
    task_join(&waiter, 5.0, "writer with +inf timeout");
    CHECK(r.status == MITKBUF_OK, "args: +inf waits until the lock is free");
    r = make_request(WRITE, 0, 1e300, NULL);
    CHECK(mitkbuf_rwlock_read(lock, me, -1.0) == MITKBUF_OK, "args: read again");
    task_start(&waiter, run_request, &r);
    CHECK(await_waiting_writers(1), "args: a writer waits with 1e300 s");
    mitkbuf_rwlock_unlock_read(lock, me);
    task_join(&waiter, 5.0, "writer with a huge timeout");
    CHECK(r.status == MITKBUF_OK, "args: 1e300 s waits until the lock is free");
    expect_free("args: free afterwards");
}

/* ---- the holder table grows and shrinks ------------------------------------------------------- */

static void test_many_owners(void)
{
    enum { N = 1000 };
    long readers = 0;
    int ok = 1;
    for (int i = 0; i < N; i++)
        ok &= mitkbuf_rwlock_read(lock, OWNER(1000 + i), 0.0) == MITKBUF_OK;
    mitkbuf_rwlock_state(lock, &readers, NULL, NULL);
    CHECK(ok && readers == N, "table: 1000 owners read at once");
    ok = 1;
    for (int i = 0; i < N; i += 2) /* every other owner first: rows move around */
        ok &= mitkbuf_rwlock_unlock_read(lock, OWNER(1000 + i)) == MITKBUF_OK;
    for (int i = N - 1; i > 0; i -= 2)
        ok &= mitkbuf_rwlock_read(lock, OWNER(1000 + i), 0.0) == MITKBUF_OK; /* re-entrant */
    for (int i = 1; i < N; i += 2)
        ok &= mitkbuf_rwlock_unlock_read(lock, OWNER(1000 + i)) == MITKBUF_OK &&
              mitkbuf_rwlock_unlock_read(lock, OWNER(1000 + i)) == MITKBUF_OK;
    CHECK(ok, "table: every owner's holds are tracked and released");
    CHECK(mitkbuf_rwlock_write(lock, OWNER(5000), 0.0) == MITKBUF_OK &&
              mitkbuf_rwlock_unlock_write(lock, OWNER(5000)) == MITKBUF_OK,
          "table: a writer gets the lock after all of them");
    expect_free("table: free afterwards");
}

/* ---- a random mix of requests: no lost wake-up, consistent accounting ----------------------- */

static atomic_int stress_bad = 0;

static void *stress_worker(void *arg)
{
    uint64_t me = mitkbuf_thread_owner();
    unsigned seed = (unsigned)(uintptr_t)arg * 2654435761u + 1u;
    double until = now_seconds() + 0.5;
    static const double timeouts[] = {0.0, 0.0005, 0.003, 0.02, -1.0};
    while (now_seconds() < until) {
        seed = seed * 1103515245u + 12345u;
        int kind = (int)((seed >> 16) % 3);
        double timeout = timeouts[(seed >> 8) % 5];
        int status;
        if (kind == 0) {
            status = mitkbuf_rwlock_read(lock, me, timeout);
            if (status == MITKBUF_OK) {
                if ((seed >> 4) % 4 == 0 && mitkbuf_rwlock_read(lock, me, -1.0) == MITKBUF_OK)
                    mitkbuf_rwlock_unlock_read(lock, me); /* a nested read never waits */
                sched_yield();
                if (mitkbuf_rwlock_unlock_read(lock, me) != MITKBUF_OK)
                    atomic_fetch_add(&stress_bad, 1);
            }
        } else if (kind == 1) {
            status = mitkbuf_rwlock_write(lock, me, timeout);
            if (status == MITKBUF_OK) {
                sched_yield();
                if (mitkbuf_rwlock_unlock_write(lock, me) != MITKBUF_OK)
                    atomic_fetch_add(&stress_bad, 1);
            }
        } else {
            /* Sliced waiting, the way the Cython accessor waits. */
            int slices = 0;
            do
                status = mitkbuf_rwlock_write_queued(lock, me, 0.001);
            while ((status == MITKBUF_ETIMEDOUT || status == MITKBUF_EBUSY) && ++slices < 5);
            if (status == MITKBUF_OK) {
                if (mitkbuf_rwlock_unlock_write(lock, me) != MITKBUF_OK)
                    atomic_fetch_add(&stress_bad, 1);
            } else if (mitkbuf_rwlock_write_cancel(lock, me) != MITKBUF_OK) {
                atomic_fetch_add(&stress_bad, 1);
            }
        }
        if (status != MITKBUF_OK && status != MITKBUF_EBUSY && status != MITKBUF_ETIMEDOUT)
            atomic_fetch_add(&stress_bad, 1);
        if (timeout < 0 && kind != 2 && status != MITKBUF_OK)
            atomic_fetch_add(&stress_bad, 1); /* an unbounded wait can only end in success */
    }
    return NULL;
}

static void test_stress(void)
{
    enum { N = 6 };
    task t[N];
    for (int i = 0; i < N; i++)
        task_start(&t[i], stress_worker, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < N; i++)
        task_join(&t[i], 20.0, "stress worker (an unbounded wait that never ends is a lost wake-up)");
    CHECK(atomic_load(&stress_bad) == 0, "stress: only OK/EBUSY/ETIMEDOUT, every unlock and cancel OK");
    expect_free("stress: no hold or queue entry left behind");
}

/* ---- the fast path and its handover to the table (white box) ---------------------------------- */

/* The state word while owner holds n reads on the fast path (rwlock.c: owner above 24 bits). */
static uint64_t fast_word(uint64_t owner, uint64_t n) { return owner << 24 | n; }

/* A slot word while the table is in charge (rwlock.c: RWLOCK_SLOW). */
#define SLOW_WORD ((uint64_t)1 << 63)

/* The fast-path word of owner's home slot. */
static uint64_t slot(uint64_t owner)
{
    return atomic_load(&lock->slots[owner % MITKBUF__RWLOCK_SLOTS].word);
}

/* What every slot holds if they all hold the same, else 1 (never a slot's value: a hold count of
 * 1 with owner 0). */
static uint64_t all_slots(void)
{
    uint64_t first = atomic_load(&lock->slots[0].word);
    for (int i = 1; i < MITKBUF__RWLOCK_SLOTS; i++)
        if (atomic_load(&lock->slots[i].word) != first)
            return 1;
    return first;
}

static long readers_now(void)
{
    long readers = -1;
    mitkbuf_rwlock_state(lock, &readers, NULL, NULL);
    return readers;
}

static void test_fast_path(void)
{
    /* a, b and w have different home slots; a2 shares a's. */
    const uint64_t a = FAST_BASE + 1, b = FAST_BASE + 2, w = FAST_BASE + 3;
    const uint64_t a2 = a + MITKBUF__RWLOCK_SLOTS;
    const uint64_t last_fast = ((uint64_t)1 << 39) - 1, too_big = (uint64_t)1 << 39;
    int ok = 1;

    CHECK(all_slots() == 0, "fast: a new lock is free");
    CHECK(mitkbuf_rwlock_read(lock, a, -1.0) == MITKBUF_OK && slot(a) == fast_word(a, 1),
          "fast: a read of a free lock takes the fast path");
    CHECK(mitkbuf_rwlock_read(lock, a, 0.0) == MITKBUF_OK && slot(a) == fast_word(a, 2),
          "fast: the same owner re-enters on the fast path");
    CHECK(readers_now() == 2, "fast: the state counts fast-path holds");

    /* A second owner with another home reads on its own slot, beside the first. */
    CHECK(mitkbuf_rwlock_read(lock, b, 0.0) == MITKBUF_OK && slot(b) == fast_word(b, 1) &&
              slot(a) == fast_word(a, 2) && readers_now() == 3,
          "fast: a second reader with another home slot reads on the fast path too");
    CHECK(mitkbuf_rwlock_unlock_read(lock, b) == MITKBUF_OK && slot(b) == 0 &&
              slot(a) == fast_word(a, 2),
          "fast: and unlocks there, leaving the first one's slot alone");
    mitkbuf_rwlock_read(lock, b, -1.0);

    /* An owner whose home another owner occupies takes the mutex: every hold moves to the table. */
    CHECK(mitkbuf_rwlock_read(lock, a2, 0.0) == MITKBUF_OK && all_slots() == SLOW_WORD &&
              readers_now() == 4,
          "fast: an owner whose home slot is taken moves every slot's holds into the table");
    CHECK(mitkbuf_rwlock_read(lock, b, 0.0) == MITKBUF_OK && readers_now() == 5,
          "fast: and every owner counts on there");
    CHECK(mitkbuf_rwlock_write(lock, w, 0.0) == MITKBUF_EBUSY, "fast: a try-write is EBUSY");
    CHECK(mitkbuf_rwlock_write(lock, a, 0.0) == MITKBUF_EDEADLK &&
              mitkbuf_rwlock_write(lock, b, 0.0) == MITKBUF_EDEADLK,
          "fast: a write by the owner of moved fast-path holds is EDEADLK, in every slot");
    CHECK(mitkbuf_rwlock_unlock_read(lock, b) == MITKBUF_OK &&
              mitkbuf_rwlock_unlock_read(lock, b) == MITKBUF_OK &&
              mitkbuf_rwlock_unlock_read(lock, a2) == MITKBUF_OK &&
              mitkbuf_rwlock_unlock_read(lock, a) == MITKBUF_OK &&
              mitkbuf_rwlock_unlock_read(lock, a) == MITKBUF_OK,
          "fast: moved holds unlock from the table");
    CHECK(mitkbuf_rwlock_unlock_read(lock, a) == MITKBUF_EPERM &&
              mitkbuf_rwlock_unlock_read(lock, b) == MITKBUF_EPERM,
          "fast: one unlock too many is EPERM");
    CHECK(all_slots() == 0, "fast: an empty table hands the lock back to the fast path");

    /* A writer waits for a fast-path reader in any slot, not only in the first. */
    mitkbuf_rwlock_read(lock, a, -1.0);
    mitkbuf_rwlock_read(lock, b, -1.0);
    CHECK(mitkbuf_rwlock_unlock_read(lock, a) == MITKBUF_OK && slot(a) == 0 &&
              slot(b) == fast_word(b, 1),
          "fast: of two fast-path readers one leaves; the other stays in its slot");
    CHECK(mitkbuf_rwlock_write(lock, w, 0.0) == MITKBUF_EBUSY && all_slots() == SLOW_WORD &&
              readers_now() == 1,
          "fast: a try-write beside it is EBUSY and moves its hold into the table");
    CHECK(mitkbuf_rwlock_unlock_read(lock, b) == MITKBUF_OK && all_slots() == 0,
          "fast: the last reader's unlock frees every slot");

    /* A wrong unlock while a fast-path hold exists changes nothing. */
    mitkbuf_rwlock_read(lock, a, -1.0);
    CHECK(mitkbuf_rwlock_unlock_read(lock, b) == MITKBUF_EPERM && readers_now() == 1,
          "fast: another owner's unlock is EPERM and the fast-path hold survives");
    CHECK(mitkbuf_rwlock_unlock_write(lock, a) == MITKBUF_EPERM && readers_now() == 1,
          "fast: a write unlock of a fast-path read is EPERM");
    CHECK(mitkbuf_rwlock_unlock_read(lock, a) == MITKBUF_OK && all_slots() == 0,
          "fast: the owner's unlock frees it");

    /* A writer shuts the fast path until it leaves. */
    CHECK(mitkbuf_rwlock_write(lock, w, 0.0) == MITKBUF_OK, "fast: a writer takes a free lock");
    CHECK(mitkbuf_rwlock_read(lock, a, 0.0) == MITKBUF_EBUSY, "fast: no fast read beside a writer");
    CHECK(mitkbuf_rwlock_read(lock, w, 0.0) == MITKBUF_EDEADLK, "fast: the writer's own read is EDEADLK");
    CHECK(mitkbuf_rwlock_unlock_write(lock, w) == MITKBUF_OK && all_slots() == 0,
          "fast: the writer's unlock reopens the fast path");

    /* A queued writer: the fast-path reader may re-enter, others defer. */
    mitkbuf_rwlock_read(lock, a, -1.0);
    CHECK(mitkbuf_rwlock_write_queued(lock, w, 0.0) == MITKBUF_EBUSY && waiting_writers() == 1,
          "fast: a writer queues behind a fast-path reader");
    CHECK(mitkbuf_rwlock_read(lock, a, 0.0) == MITKBUF_OK, "fast: the reader still re-enters");
    CHECK(mitkbuf_rwlock_read(lock, b, 0.0) == MITKBUF_EBUSY, "fast: a new reader defers to the writer");
    mitkbuf_rwlock_unlock_read(lock, a);
    mitkbuf_rwlock_unlock_read(lock, a);
    CHECK(mitkbuf_rwlock_write_queued(lock, w, 0.0) == MITKBUF_OK, "fast: then the writer gets in");
    mitkbuf_rwlock_unlock_write(lock, w);
    expect_free("fast: free after the queued writer");
    CHECK(all_slots() == 0, "fast: and back on the fast path");

    /* The word's limits: the largest owner id it holds, and one above, which takes the mutex. */
    CHECK(mitkbuf_rwlock_read(lock, last_fast, 0.0) == MITKBUF_OK &&
              slot(last_fast) == fast_word(last_fast, 1) &&
              mitkbuf_rwlock_unlock_read(lock, last_fast) == 0,
          "fast: the largest owner id the word holds takes the fast path");
    CHECK(mitkbuf_rwlock_read(lock, too_big, 0.0) == MITKBUF_OK && readers_now() == 1 &&
              slot(too_big) != fast_word(too_big, 1) &&
              mitkbuf_rwlock_read(lock, a, 0.0) == MITKBUF_OK &&
              readers_now() == 2,
          "fast: a larger owner id is tracked in the table, beside another reader");
    CHECK(mitkbuf_rwlock_unlock_read(lock, too_big) == MITKBUF_OK &&
              mitkbuf_rwlock_unlock_read(lock, a) == MITKBUF_OK && all_slots() == 0,
          "fast: both unlock");

    /* The hold count: a full word moves to the table, which counts on. */
    {
        const long full = (1L << 24) - 1;
        for (long i = 0; i < full && ok; i++)
            ok = mitkbuf_rwlock_read(lock, a, 0.0) == MITKBUF_OK;
        CHECK(ok && slot(a) == fast_word(a, (uint64_t)full), "fast: 2^24 - 1 holds fill the word");
        CHECK(mitkbuf_rwlock_read(lock, a, 0.0) == MITKBUF_OK && readers_now() == full + 1,
              "fast: one more hold moves to the table and is counted");
        for (long i = 0; i <= full && ok; i++)
            ok = mitkbuf_rwlock_unlock_read(lock, a) == MITKBUF_OK;
        CHECK(ok && mitkbuf_rwlock_unlock_read(lock, a) == MITKBUF_EPERM && all_slots() == 0,
              "fast: every hold unlocks, not one more");
    }
    expect_free("fast: free afterwards");
}

/* ---- fork ------------------------------------------------------------------------------------ */

/* Run fn in a child process; its exit status must be 0 within 10 s (a child still running then
 * is a hang: it is killed and the check fails). */
static int in_child(int (*fn)(void))
{
    int status = 0;
    double until = now_seconds() + 10.0;
    pid_t pid;
    fflush(stdout);
    pid = fork();
    if (pid == 0)
        _exit(fn());
    if (pid < 0)
        return 0;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (now_seconds() > until) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return 0;
        }
        sleep_seconds(0.005);
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Whether a try and a 0.2 s request of this mode give up (EBUSY, ETIMEDOUT) within 2 s. */
static int requests_give_up(int mode)
{
    uint64_t me = mitkbuf_thread_owner();
    double t0 = now_seconds();
    int (*request)(mitkbuf_rwlock *, uint64_t, double) =
        mode == WRITE ? mitkbuf_rwlock_write : mitkbuf_rwlock_read;
    int busy = request(lock, me, 0.0);
    int timed = request(lock, me, 0.2);
    return busy == MITKBUF_EBUSY && timed == MITKBUF_ETIMEDOUT && now_seconds() - t0 < 2.0;
}

static int child_times_out(void) { return requests_give_up(READ) ? 0 : 1; }

/* The child's whole lock is usable: a forever write gets it, and every unlock works. */
static int child_lock_works(void)
{
    uint64_t me = mitkbuf_thread_owner();
    long readers = -1, waiting = -1;
    int writer = -1;
    if (mitkbuf_rwlock_write(lock, me, -1.0) != MITKBUF_OK ||
        mitkbuf_rwlock_unlock_write(lock, me) != MITKBUF_OK ||
        mitkbuf_rwlock_read(lock, me, -1.0) != MITKBUF_OK ||
        mitkbuf_rwlock_read(lock, OWNER(49), -1.0) != MITKBUF_OK ||
        mitkbuf_rwlock_unlock_read(lock, OWNER(49)) != MITKBUF_OK ||
        mitkbuf_rwlock_unlock_read(lock, me) != MITKBUF_OK)
        return 0;
    mitkbuf_rwlock_state(lock, &readers, &writer, &waiting);
    return readers == 0 && writer == 0 && waiting == 0;
}

static atomic_int mutex_held = 0;
static atomic_int holder_may_end = 0;

/* Holds the lock's internal mutex for 0.3 s: the instant a real holder keeps it, stretched so that
 * the fork below surely happens inside it.  The thread then lives on until told (a thread that
 * ended unjoined before a fork is a leak to ThreadSanitizer in the child). */
static void *hold_internal_mutex(void *arg)
{
    double until;
    (void)arg;
    pthread_mutex_lock(&lock->mutex);
    atomic_store(&mutex_held, 1);
    sleep_seconds(0.3);
    pthread_mutex_unlock(&lock->mutex);
    until = now_seconds() + 10.0;
    while (!atomic_load(&holder_may_end) && now_seconds() < until)
        sleep_seconds(0.001);
    return NULL;
}

/* Issue 22: with another thread inside the internal mutex at fork time, the child's release,
 * write-cancel and state query of holds made before the fork must not block, and the lock must
 * then work normally (also for forever requests).  The parent set up: reads by OWNER(41) and
 * OWNER(42) (two owners: the mutex-protected table, not the fast path) and OWNER(43) queued. */
static int child_after_mutex_held(void)
{
    long readers = -1, waiting = -1;
    int writer = -1;
    int state = mitkbuf_rwlock_state(lock, &readers, &writer, &waiting);
    int unlock41 = mitkbuf_rwlock_unlock_read(lock, OWNER(41));
    int cancel = mitkbuf_rwlock_write_cancel(lock, OWNER(43));
    int unlock42 = mitkbuf_rwlock_unlock_read(lock, OWNER(42));
    /* OWNER(43)'s queue entry may already be gone: no thread waits in a child (see rwlock.c). */
    return state == MITKBUF_OK && readers == 2 && writer == 0 && unlock41 == MITKBUF_OK &&
                   (cancel == MITKBUF_OK || cancel == MITKBUF_EPERM) && unlock42 == MITKBUF_OK &&
                   child_lock_works()
               ? 0
               : 1;
}

/* A writer of the parent was asleep in the lock at fork time; it does not exist in the child.
 * The read it waited for (OWNER(45)) is released there, which must not block, and the missing
 * writer must hold back neither readers nor writers. */
static int child_after_writer_waited(void)
{
    long waiting = -1;
    int unlock = mitkbuf_rwlock_unlock_read(lock, OWNER(45));
    mitkbuf_rwlock_state(lock, NULL, NULL, &waiting);
    return unlock == MITKBUF_OK && waiting == 0 && child_lock_works() ? 0 : 1;
}

/* Churn: threads take and drop write and read locks (many short waits, so the internal mutex and
 * the condition variables are busy) while the main thread forks again and again. */
static atomic_int churn_stop = 0;

static void *churn_worker(void *arg)
{
    uint64_t me = mitkbuf_thread_owner();
    int write = arg != NULL;
    while (!atomic_load(&churn_stop)) {
        int status = write ? mitkbuf_rwlock_write(lock, me, 0.05) : mitkbuf_rwlock_read(lock, me, 0.05);
        if (status != MITKBUF_OK)
            continue;
        sched_yield();
        if (write)
            mitkbuf_rwlock_unlock_write(lock, me);
        else
            mitkbuf_rwlock_unlock_read(lock, me);
    }
    return NULL;
}

/* In a child of the churn: whatever the workers held or waited for at fork time, every call
 * returns in bounded time.  Holds of missing threads stay, so requests may time out. */
static int child_of_churn(void)
{
    uint64_t me = mitkbuf_thread_owner();
    double t0 = now_seconds();
    int status;
    mitkbuf_rwlock_state(lock, NULL, NULL, NULL);
    status = mitkbuf_rwlock_read(lock, me, 0.05);
    if (status == MITKBUF_OK)
        mitkbuf_rwlock_unlock_read(lock, me);
    else if (status != MITKBUF_ETIMEDOUT)
        return 1;
    status = mitkbuf_rwlock_write(lock, me, 0.05);
    if (status == MITKBUF_OK)
        mitkbuf_rwlock_unlock_write(lock, me);
    else if (status != MITKBUF_ETIMEDOUT)
        return 1;
    mitkbuf_rwlock_write_cancel(lock, me);
    return now_seconds() - t0 < 2.0 ? 0 : 1;
}

static void test_fork(void)
{
    task t;
    double until;

    /* Write lock held at fork time: the child's finite requests time out. */
    mitkbuf_rwlock_write(lock, OWNER(40), -1.0);
    CHECK(in_child(child_times_out), "fork: a lock written at fork time gives EBUSY / ETIMEDOUT in the child");
    mitkbuf_rwlock_unlock_write(lock, OWNER(40));

    /* Another thread inside the internal mutex at fork time. */
    mitkbuf_rwlock_read(lock, OWNER(41), -1.0);
    mitkbuf_rwlock_read(lock, OWNER(42), -1.0);
    mitkbuf_rwlock_write_queued(lock, OWNER(43), 0.0);
    atomic_store(&mutex_held, 0);
    atomic_store(&holder_may_end, 0);
    task_start(&t, hold_internal_mutex, NULL);
    until = now_seconds() + 5.0;
    while (!atomic_load(&mutex_held) && now_seconds() < until)
        sleep_seconds(0.001);
    CHECK(in_child(child_after_mutex_held),
          "fork: with another thread inside the lock's mutex at fork time, the child releases, "
          "cancels and queries without blocking, and the lock works there");
    atomic_store(&holder_may_end, 1);
    task_join(&t, 5.0, "mutex holder");
    mitkbuf_rwlock_write_cancel(lock, OWNER(43));
    mitkbuf_rwlock_unlock_read(lock, OWNER(42));
    mitkbuf_rwlock_unlock_read(lock, OWNER(41));
    expect_free("fork: the parent's lock is free afterwards");

    /* A writer asleep on the condition variable at fork time. */
    {
        request w = make_request(WRITE, OWNER(44), 10.0, NULL);
        task waiter;
        mitkbuf_rwlock_read(lock, OWNER(45), -1.0);
        task_start(&waiter, run_request, &w);
        CHECK(await_waiting_writers(1), "fork: a writer waits for a reader");
        sleep_seconds(0.02); /* let it fall asleep on the condition variable */
        CHECK(in_child(child_after_writer_waited),
              "fork: a writer that slept in the lock at fork time neither blocks the child's "
              "release nor holds back the child's requests");
        mitkbuf_rwlock_unlock_read(lock, OWNER(45));
        task_join(&waiter, 15.0, "waiting writer");
        CHECK(w.status == MITKBUF_OK, "fork: the parent's waiting writer gets the lock afterwards");
    }
    expect_free("fork: free after the waiting-writer case");

    /* Many forks while other threads churn the lock. */
    {
        enum { WORKERS = 3, FORKS = 60 };
        task workers[WORKERS];
        int bad = 0;
        atomic_store(&churn_stop, 0);
        for (int i = 0; i < WORKERS; i++)
            task_start(&workers[i], churn_worker, i == 0 ? NULL : (void *)1);
        for (int i = 0; i < FORKS; i++)
            bad += !in_child(child_of_churn);
        atomic_store(&churn_stop, 1);
        for (int i = 0; i < WORKERS; i++)
            task_join(&workers[i], 15.0, "churn worker");
        CHECK(bad == 0, "fork: 60 children forked while threads churn the lock all finish in bounded time");
    }
    expect_free("fork: free after the churn");
}

int main(void)
{
    CHECK(mitkbuf_rwlock_new(&lock) == MITKBUF_OK && lock != NULL, "create a lock");
    test_owner_ids();
    test_fast_path();
    for (int pass = 0; pass < 2; pass++) {
        owner_base = pass == 0 ? FAST_BASE : SLOW_BASE;
        printf("# owner ids from 2^%d\n", pass == 0 ? 38 : 62);
        test_readers_share();
        test_exclusion(3, 0.0);
        test_exclusion(1, 0.0001);
        test_ordering();
        test_try_and_timeouts();
        test_self_deadlock();
        test_foreign_unlock();
        test_eperm();
        test_writer_preference();
        test_no_starvation();
        test_queued_writer();
        test_arguments();
        test_many_owners();
        test_stress();
        test_fork();
    }
    mitkbuf_rwlock_free(lock);
    return finish();
}
