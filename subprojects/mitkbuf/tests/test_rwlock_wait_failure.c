/* A condition wait that ends after the lock went back to the fast path, normally or by failing,
 * must count or leave alone the holds that other owners took meanwhile.
 *
 * rwlock.c is compiled into this test again with pthread_cond_timedwait renamed to
 * failing_cond_timedwait (meson.build), so the test decides how a wait ends.  The case: a reader
 * waits for a writer; the writer leaves, which hands the lock back to the fast path; another
 * owner takes a fast-path read; then the waiting reader's wait ends.
 * - Woken normally, the reader must move that fast-path hold into the table before it adds its
 *   own (go_slow after every wait): both holds are counted, a writer is refused, both unlock.
 * - Failing (MITKBUF_ESYS), the request must leave the fast-path hold alone: a writer must still
 *   be refused, and the hold must unlock normally.
 */
/* The rename is for rwlock.c only: this file calls the real function. */
#undef pthread_cond_timedwait

#include "check.h"
#include "mitkbuf.h"
#include "../src/mitkbuf_internal.h"

#include <stdint.h>

static atomic_int waiting = 0;    /* a request is inside the wait */
static atomic_int armed = 0;      /* the next wake-up waits for fast_taken, then ends */
static atomic_int fails = 0;      /* ... by failing (else as a normal wake-up) */
static atomic_int fast_taken = 0; /* the other owner holds its read: end the wait now */

int failing_cond_timedwait(pthread_cond_t *restrict cond, pthread_mutex_t *restrict mutex,
                           const struct timespec *restrict until)
{
    int rc;
    atomic_store(&waiting, 1);
    rc = pthread_cond_timedwait(cond, mutex, until);
    if (atomic_load(&armed)) {
        /* The mutex is held here; the other owner's fast path does not need it. */
        double give_up = now_seconds() + 5.0;
        while (!atomic_load(&fast_taken) && now_seconds() < give_up)
            sleep_seconds(0.001);
        atomic_store(&armed, 0);
        return atomic_load(&fails) ? EINVAL : 0; /* EINVAL: any failure other than ETIMEDOUT */
    }
    return rc;
}

static mitkbuf_rwlock *lock;

#define WRITER ((uint64_t)101)
#define READER ((uint64_t)102)
#define FAST ((uint64_t)103)
#define OTHER ((uint64_t)104)

/* The fast-path word of owner's home slot (rwlock.c). */
static uint64_t home_word(uint64_t owner)
{
    return atomic_load(&lock->slots[owner % MITKBUF__RWLOCK_SLOTS].word);
}

static int all_slots_free(void)
{
    for (int i = 0; i < MITKBUF__RWLOCK_SLOTS; i++)
        if (atomic_load(&lock->slots[i].word) != 0)
            return 0;
    return 1;
}

static void *waiting_reader(void *arg)
{
    int *status = arg;
    *status = mitkbuf_rwlock_read(lock, READER, 5.0);
    return NULL;
}

/* One run of the case; fail: whether the reader's wait fails. */
static void run_case(int fail)
{
    task t;
    int status = -1;
    long readers = -1, queued = -1;
    int writer = -1;
    double until;

    atomic_store(&waiting, 0);
    atomic_store(&fast_taken, 0);
    atomic_store(&fails, fail);
    printf("# the reader's wait %s\n", fail ? "fails" : "ends with a wake-up");
    CHECK(mitkbuf_rwlock_new(&lock) == MITKBUF_OK, "create a lock");
    CHECK(mitkbuf_rwlock_write(lock, WRITER, -1.0) == MITKBUF_OK, "a writer holds the lock");
    task_start(&t, waiting_reader, &status);
    until = now_seconds() + 5.0;
    while (!atomic_load(&waiting) && now_seconds() < until)
        sleep_seconds(0.001);
    CHECK(atomic_load(&waiting), "a reader waits for the writer");
    atomic_store(&armed, 1);

    CHECK(mitkbuf_rwlock_unlock_write(lock, WRITER) == MITKBUF_OK && all_slots_free(),
          "the writer leaves: the lock is back on the fast path");
    CHECK(mitkbuf_rwlock_read(lock, FAST, 0.0) == MITKBUF_OK &&
              home_word(FAST) == (FAST << 24 | 1),
          "another owner takes a fast-path read");
    atomic_store(&fast_taken, 1);
    task_join(&t, 10.0, "the reader whose wait ends");
    mitkbuf_rwlock_state(lock, &readers, &writer, &queued);
    if (fail) {
        CHECK(status == MITKBUF_ESYS, "the failed wait is reported as MITKBUF_ESYS");
        CHECK(readers == 1 && writer == 0 && queued == 0, "the fast-path hold is still counted");
    } else {
        CHECK(status == MITKBUF_OK, "the woken reader gets its read");
        CHECK(readers == 2 && writer == 0 && queued == 0,
              "both holds are counted: the fast-path one was moved into the table");
    }
    CHECK(mitkbuf_rwlock_write(lock, OTHER, 0.0) == MITKBUF_EBUSY,
          "a writer is still refused beside that reader");
    CHECK(mitkbuf_rwlock_unlock_read(lock, FAST) == MITKBUF_OK, "the hold unlocks normally");
    if (!fail)
        CHECK(mitkbuf_rwlock_unlock_read(lock, READER) == MITKBUF_OK, "so does the woken reader's");
    CHECK(mitkbuf_rwlock_write(lock, OTHER, 0.0) == MITKBUF_OK &&
              mitkbuf_rwlock_unlock_write(lock, OTHER) == MITKBUF_OK && all_slots_free(),
          "then a writer gets in, and the lock is free again");
    mitkbuf_rwlock_free(lock);
}

int main(void)
{
    run_case(0);
    run_case(1);
    return finish();
}
