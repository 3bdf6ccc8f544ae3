/* Reader/writer lock with writer preference, timeouts, owner tracking and any-thread unlock.
 *
 * State (guarded by `mutex`): `readers` read holds in total, `writer` 1 while written,
 * `writers_waiting` writers blocked in mitkbuf_rwlock_write, and a table of holders (owner id ->
 * read holds, write flag).  The table is what makes the self-deadlock rule and re-entrant reads
 * possible without per-thread pthread ownership, so a lock can be released from any thread on
 * behalf of its owner (Python's garbage collector may run an accessor's release anywhere).
 *
 * Waiting threads sleep on one condition variable on CLOCK_MONOTONIC; every state change that
 * could admit a waiter broadcasts.  Locks are short-lived and waiters few, so one condvar keeps
 * the invariants obvious at little cost.
 */
#define _POSIX_C_SOURCE 200809L
#include "mitkbuf_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <time.h>

typedef struct {
    uint64_t owner;
    long reads;
    int write;
    int queued; /* counted in writers_waiting between mitkbuf_rwlock_write_queued slices */
} holder;

struct mitkbuf_rwlock {
    pthread_mutex_t mutex;
    pthread_cond_t changed;
    long readers;
    int writer;
    long writers_waiting;
    holder *holders;
    int nholders;
    int capacity;
};

static atomic_ullong next_owner = 1;
static _Thread_local uint64_t this_owner = 0;

uint64_t mitkbuf_thread_owner(void)
{
    if (this_owner == 0)
        this_owner = atomic_fetch_add(&next_owner, 1);
    return this_owner;
}

int mitkbuf_rwlock_new(mitkbuf_rwlock **out)
{
    pthread_condattr_t attr;
    mitkbuf_rwlock *lock;
    if (out == NULL)
        return MITKBUF_EINVAL;
    lock = calloc(1, sizeof *lock);
    if (lock == NULL)
        return MITKBUF_ENOMEM;
    if (pthread_mutex_init(&lock->mutex, NULL) != 0) {
        free(lock);
        return MITKBUF_ESYS;
    }
    if (pthread_condattr_init(&attr) != 0 ||
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&lock->changed, &attr) != 0) {
        pthread_mutex_destroy(&lock->mutex);
        free(lock);
        return MITKBUF_ESYS;
    }
    pthread_condattr_destroy(&attr);
    *out = lock;
    return MITKBUF_OK;
}

void mitkbuf_rwlock_free(mitkbuf_rwlock *lock)
{
    if (lock == NULL)
        return;
    pthread_cond_destroy(&lock->changed);
    pthread_mutex_destroy(&lock->mutex);
    free(lock->holders);
    free(lock);
}

static holder *find_holder(mitkbuf_rwlock *lock, uint64_t owner)
{
    for (int i = 0; i < lock->nholders; i++)
        if (lock->holders[i].owner == owner)
            return &lock->holders[i];
    return NULL;
}

static holder *add_holder(mitkbuf_rwlock *lock, uint64_t owner)
{
    holder *h = find_holder(lock, owner);
    if (h != NULL)
        return h;
    if (lock->nholders == lock->capacity) {
        int capacity = lock->capacity ? lock->capacity * 2 : 4;
        holder *grown = realloc(lock->holders, (size_t)capacity * sizeof *grown);
        if (grown == NULL)
            return NULL;
        lock->holders = grown;
        lock->capacity = capacity;
    }
    h = &lock->holders[lock->nholders++];
    h->owner = owner;
    h->reads = 0;
    h->write = 0;
    h->queued = 0;
    return h;
}

static void remove_if_idle(mitkbuf_rwlock *lock, holder *h)
{
    if (h->reads == 0 && !h->write && !h->queued)
        *h = lock->holders[--lock->nholders];
}

static void deadline_after(double seconds, struct timespec *deadline)
{
    double whole = floor(seconds);
    clock_gettime(CLOCK_MONOTONIC, deadline);
    if (whole > 1e9) /* far enough to be "forever" without overflowing time_t arithmetic */
        whole = 1e9;
    deadline->tv_sec += (time_t)whole;
    deadline->tv_nsec += (long)((seconds - floor(seconds)) * 1e9);
    if (deadline->tv_nsec >= 1000000000L) {
        deadline->tv_sec += 1;
        deadline->tv_nsec -= 1000000000L;
    }
}

/* Wait for a change; returns 1 once the deadline has passed (timeout > 0 only). */
static int wait_for_change(mitkbuf_rwlock *lock, double timeout, const struct timespec *deadline)
{
    if (timeout < 0) {
        pthread_cond_wait(&lock->changed, &lock->mutex);
        return 0;
    }
    return pthread_cond_timedwait(&lock->changed, &lock->mutex, deadline) == ETIMEDOUT;
}

int mitkbuf_rwlock_read(mitkbuf_rwlock *lock, uint64_t owner, double timeout)
{
    struct timespec deadline;
    holder *h;
    int reentrant;
    if (lock == NULL || owner == 0 || isnan(timeout))
        return MITKBUF_EINVAL;
    if (timeout > 0)
        deadline_after(timeout, &deadline);
    pthread_mutex_lock(&lock->mutex);
    h = find_holder(lock, owner);
    if (h != NULL && h->write) {
        pthread_mutex_unlock(&lock->mutex);
        return MITKBUF_EDEADLK;
    }
    /* An owner that already reads must not queue behind a waiting writer: that writer waits for
     * this very owner, so queuing would deadlock.  Everyone else defers to waiting writers. */
    reentrant = h != NULL && h->reads > 0;
    while (lock->writer || (lock->writers_waiting > 0 && !reentrant)) {
        if (timeout == 0) {
            pthread_mutex_unlock(&lock->mutex);
            return MITKBUF_EBUSY;
        }
        if (wait_for_change(lock, timeout, &deadline) &&
            (lock->writer || (lock->writers_waiting > 0 && !reentrant))) {
            pthread_mutex_unlock(&lock->mutex);
            return MITKBUF_ETIMEDOUT;
        }
    }
    h = add_holder(lock, owner);
    if (h == NULL) {
        pthread_mutex_unlock(&lock->mutex);
        return MITKBUF_ENOMEM;
    }
    h->reads++;
    lock->readers++;
    pthread_mutex_unlock(&lock->mutex);
    return MITKBUF_OK;
}

static int write_lock(mitkbuf_rwlock *lock, uint64_t owner, double timeout, int stay_queued)
{
    struct timespec deadline;
    holder *h;
    int blocked;
    if (lock == NULL || owner == 0 || isnan(timeout))
        return MITKBUF_EINVAL;
    if (timeout > 0)
        deadline_after(timeout, &deadline);
    pthread_mutex_lock(&lock->mutex);
    h = find_holder(lock, owner);
    if (h != NULL && (h->reads > 0 || h->write)) { /* a hold of ours would block us forever */
        pthread_mutex_unlock(&lock->mutex);
        return MITKBUF_EDEADLK;
    }
    blocked = lock->writer || lock->readers > 0;
    if (blocked && timeout == 0 && !stay_queued) {
        pthread_mutex_unlock(&lock->mutex);
        return MITKBUF_EBUSY;
    }
    /* Register as a waiting writer (once; a queued owner already counts). */
    h = add_holder(lock, owner);
    if (h == NULL) {
        pthread_mutex_unlock(&lock->mutex);
        return MITKBUF_ENOMEM;
    }
    if (!h->queued) {
        h->queued = 1;
        lock->writers_waiting++;
    }
    while (lock->writer || lock->readers > 0) {
        if (timeout == 0 ||
            (wait_for_change(lock, timeout, &deadline) && (lock->writer || lock->readers > 0))) {
            if (!stay_queued) {
                h = find_holder(lock, owner); /* the table may have moved while waiting */
                h->queued = 0;
                lock->writers_waiting--;
                remove_if_idle(lock, h);
                /* Readers held back by this writer may go now. */
                pthread_cond_broadcast(&lock->changed);
            }
            pthread_mutex_unlock(&lock->mutex);
            return timeout == 0 ? MITKBUF_EBUSY : MITKBUF_ETIMEDOUT;
        }
    }
    h = find_holder(lock, owner);
    h->queued = 0;
    lock->writers_waiting--;
    h->write = 1;
    lock->writer = 1;
    pthread_mutex_unlock(&lock->mutex);
    return MITKBUF_OK;
}

int mitkbuf_rwlock_write(mitkbuf_rwlock *lock, uint64_t owner, double timeout)
{
    return write_lock(lock, owner, timeout, 0);
}

int mitkbuf_rwlock_write_queued(mitkbuf_rwlock *lock, uint64_t owner, double timeout)
{
    return write_lock(lock, owner, timeout, 1);
}

int mitkbuf_rwlock_write_cancel(mitkbuf_rwlock *lock, uint64_t owner)
{
    holder *h;
    if (lock == NULL)
        return MITKBUF_EINVAL;
    pthread_mutex_lock(&lock->mutex);
    h = find_holder(lock, owner);
    if (h == NULL || !h->queued) {
        pthread_mutex_unlock(&lock->mutex);
        return MITKBUF_EPERM;
    }
    h->queued = 0;
    lock->writers_waiting--;
    remove_if_idle(lock, h);
    pthread_cond_broadcast(&lock->changed);
    pthread_mutex_unlock(&lock->mutex);
    return MITKBUF_OK;
}

int mitkbuf_rwlock_unlock_read(mitkbuf_rwlock *lock, uint64_t owner)
{
    holder *h;
    if (lock == NULL)
        return MITKBUF_EINVAL;
    pthread_mutex_lock(&lock->mutex);
    h = find_holder(lock, owner);
    if (h == NULL || h->reads == 0) {
        pthread_mutex_unlock(&lock->mutex);
        return MITKBUF_EPERM;
    }
    h->reads--;
    lock->readers--;
    remove_if_idle(lock, h);
    if (lock->readers == 0)
        pthread_cond_broadcast(&lock->changed);
    pthread_mutex_unlock(&lock->mutex);
    return MITKBUF_OK;
}

int mitkbuf_rwlock_unlock_write(mitkbuf_rwlock *lock, uint64_t owner)
{
    holder *h;
    if (lock == NULL)
        return MITKBUF_EINVAL;
    pthread_mutex_lock(&lock->mutex);
    h = find_holder(lock, owner);
    if (h == NULL || !h->write) {
        pthread_mutex_unlock(&lock->mutex);
        return MITKBUF_EPERM;
    }
    h->write = 0;
    lock->writer = 0;
    remove_if_idle(lock, h);
    pthread_cond_broadcast(&lock->changed);
    pthread_mutex_unlock(&lock->mutex);
    return MITKBUF_OK;
}

int mitkbuf_rwlock_state(mitkbuf_rwlock *lock, long *readers, int *writer, long *writers_waiting)
{
    if (lock == NULL)
        return MITKBUF_EINVAL;
    pthread_mutex_lock(&lock->mutex);
    if (readers != NULL)
        *readers = lock->readers;
    if (writer != NULL)
        *writer = lock->writer;
    if (writers_waiting != NULL)
        *writers_waiting = lock->writers_waiting;
    pthread_mutex_unlock(&lock->mutex);
    return MITKBUF_OK;
}
