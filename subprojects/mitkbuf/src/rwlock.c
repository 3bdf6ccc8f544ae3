/* Reader/writer lock with writer preference, timeouts, owner tracking and any-thread unlock.
 *
 * State, guarded by `mutex`: `readers` read holds in total, `writer` while written,
 * `writers_waiting` queued writers, and a holder table (owner id -> read holds, write flag,
 * queued flag).  The table is what makes re-entrant reads and the self-deadlock rule possible
 * without per-thread ownership, so any thread may unlock on behalf of an owner (Python's garbage
 * collector may run an accessor's release anywhere).  pthread_rwlock can do neither.
 *
 * Waiting: readers sleep on `readable`, writers on `writable`, both on CLOCK_MONOTONIC so that a
 * wall-clock jump neither stretches nor cuts a timeout.  Every change that can admit a waiter
 * broadcasts to the condition it may admit, and every waiter re-checks its whole predicate after
 * each wake-up, so spurious wake-ups are harmless and no wake-up is lost.  A wait whose deadline
 * passed still takes the lock if it became free meanwhile: a timeout racing with an unlock never
 * reports ETIMEDOUT for a free lock.  Waits use one absolute deadline, so the remaining time is
 * recomputed implicitly on every round.
 *
 * Fast path: most locks are only read, by one owner or a few at a time (threads working on an
 * image, re-entrantly at most), and for that case the mutex and the table are bypassed.  The lock
 * has MITKBUF__RWLOCK_SLOTS atomic words, each on a line of its own; an owner only ever uses the
 * slot `owner % MITKBUF__RWLOCK_SLOTS` (its home).  A word is 0 while its slot is free,
 * (owner, n) while that owner holds n reads through it, and RWLOCK_SLOW while the table is in
 * charge.  A read by the slot's owner, or by anyone whose home slot is free, is one
 * compare-and-swap on that slot alone; so is its unlock.  Two threads reading one image at once
 * write no shared line, unless their ids fall on one home (threads that take their first lock
 * one after the other get consecutive ids, so a small pool rarely collides).  Everything else takes
 * the mutex and first moves every fast-path hold into the table, exchanging each slot for
 * RWLOCK_SLOW (go_slow); from then on every fast attempt fails over to the mutex, until the last
 * operation that leaves the table empty resets the slots to 0 (settle).  Both go over all slots
 * with the mutex held, so whoever holds it sees either every slot RWLOCK_SLOW or none.
 * Invariant: while the slots are not RWLOCK_SLOW the table is empty, so owner tracking
 * (re-entrancy, EDEADLK, EPERM) sees every hold, and each owner's fast holds lie in one slot.
 * A writer is admitted only after go_slow, so a fast read either lands before its slot's exchange
 * (and is moved into the table, where the writer sees it) or fails.  Owner ids too large for a
 * word (2^39 and up: no thread ever gets one), hold counts that would overflow it, and an owner
 * whose home another owner occupies simply take the mutex.
 *
 * Fork (issue 22): the internal mutex is held only for a few instructions, but a fork() at that
 * moment would leave the child with a mutex nobody will unlock, and every call that needs it
 * (release, write-cancel and state queries as much as requests) would hang there.  Condition
 * variables are no better: a child inherits the bookkeeping of waiters that do not exist in it,
 * and glibc's broadcast can wait for them forever.  So every live lock is on a list, and
 * pthread_atfork handlers make fork() wait until no thread is inside any lock's mutex (each
 * handler takes them all, in list order; no other code takes two of them, so this cannot
 * deadlock).  In the child the mutex is free again, the condition variables are new, and the
 * queue entries of writers (which were threads of the parent, since the forking thread is inside
 * no lock call) are dropped: holds made before the fork stay held, as documented, but nobody
 * defers to a waiter that is not there.  Besides that, finite requests bound their wait for the
 * mutex (pthread_mutex_timedlock), so even a child made without fork handlers (a raw clone) gets
 * ETIMEDOUT / EBUSY from them rather than a hang.  The fast path needs no mutex at all.
 */
#include "mitkbuf_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <time.h>

/* Timeouts of this many seconds (about three years) or more, and +inf, wait forever: this keeps
 * deadline arithmetic far from the range of time_t, and nobody can tell the difference. */
#define FOREVER_SECONDS 1e8
/* How long a try (timeout 0) may wait for the internal mutex.  A live holder keeps it for
 * microseconds; only a holder lost in fork() keeps it longer. */
#define MUTEX_GRACE_SECONDS 0.1

typedef mitkbuf__holder holder;

/* Layout of the fast-path word: the owner above FAST_COUNT_BITS, its read holds below. */
#define RWLOCK_SLOW ((uint64_t)1 << 63)
#define FAST_COUNT_BITS 24
#define FAST_COUNT_MAX (((uint64_t)1 << FAST_COUNT_BITS) - 1)
#define FAST_OWNER_MAX (((uint64_t)1 << (63 - FAST_COUNT_BITS)) - 1)
/* The table starts with room for a row per slot and never shrinks, so moving the fast-path
 * holders into it (go_slow) never allocates and cannot fail. */
#define SLOTS MITKBUF__RWLOCK_SLOTS
#define INITIAL_ROWS SLOTS

/* ---- owner ids ------------------------------------------------------------------------------------ */

/* 64 bits do not wrap in the life of any process, so ids are never reused: a stale id recorded by
 * an accessor can never match a thread that starts later. */
static atomic_uint_least64_t next_owner = 1;
static _Thread_local uint64_t this_owner = 0;

uint64_t mitkbuf_thread_owner(void)
{
    if (this_owner == 0)
        this_owner = atomic_fetch_add_explicit(&next_owner, 1, memory_order_relaxed);
    return this_owner;
}

/* ---- fork safety: the list of live locks ----------------------------------------------------- */

static pthread_mutex_t registry_mutex = PTHREAD_MUTEX_INITIALIZER;
static mitkbuf_rwlock *registry = NULL; /* every live lock, newest first */
static int handlers_installed = 0;      /* guarded by registry_mutex */

/* prepare: no thread can be inside a lock's mutex at the fork, so the child gets consistent state.
 * Each mutex is held for instants by its users (never across a wait), so this returns soon. */
static void before_fork(void)
{
    pthread_mutex_lock(&registry_mutex);
    for (mitkbuf_rwlock *lock = registry; lock != NULL; lock = lock->next)
        pthread_mutex_lock(&lock->mutex);
}

static void after_fork_parent(void)
{
    for (mitkbuf_rwlock *lock = registry; lock != NULL; lock = lock->next)
        pthread_mutex_unlock(&lock->mutex);
    pthread_mutex_unlock(&registry_mutex);
}

static void forget_waiters(mitkbuf_rwlock *lock);

/* The child's one thread holds every mutex (taken in before_fork): the table is consistent.
 * Waiters of the parent are gone: their queue entries are dropped and the condition variables
 * they were counted in are replaced (pthread_cond_init cannot fail on the platforms we build for,
 * and nobody could wait on them yet). */
static void after_fork_child(void)
{
    pthread_condattr_t attr;
    int have_attr = pthread_condattr_init(&attr) == 0 &&
                    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0;
    for (mitkbuf_rwlock *lock = registry; lock != NULL; lock = lock->next) {
        forget_waiters(lock);
        pthread_cond_init(&lock->readable, have_attr ? &attr : NULL);
        pthread_cond_init(&lock->writable, have_attr ? &attr : NULL);
        pthread_mutex_unlock(&lock->mutex);
    }
    if (have_attr)
        pthread_condattr_destroy(&attr);
    pthread_mutex_unlock(&registry_mutex);
}

/* Put a new lock on the list, installing the fork handlers with the first one.  Without them a
 * child could hang, so a failure to install them fails the creation (and a later one retries). */
static int enlist(mitkbuf_rwlock *lock)
{
    int status = MITKBUF_OK;
    pthread_mutex_lock(&registry_mutex);
    if (!handlers_installed) {
        if (pthread_atfork(before_fork, after_fork_parent, after_fork_child) == 0)
            handlers_installed = 1;
        else
            status = MITKBUF_ENOMEM; /* pthread_atfork fails only for lack of memory */
    }
    if (status == MITKBUF_OK) {
        lock->prev = NULL;
        lock->next = registry;
        if (registry != NULL)
            registry->prev = lock;
        registry = lock;
    }
    pthread_mutex_unlock(&registry_mutex);
    return status;
}

static void delist(mitkbuf_rwlock *lock)
{
    pthread_mutex_lock(&registry_mutex);
    if (lock->prev != NULL)
        lock->prev->next = lock->next;
    else
        registry = lock->next;
    if (lock->next != NULL)
        lock->next->prev = lock->prev;
    pthread_mutex_unlock(&registry_mutex);
}

/* ---- creation ------------------------------------------------------------------------------------- */

int mitkbuf_rwlock_new(mitkbuf_rwlock **out)
{
    pthread_condattr_t attr;
    mitkbuf_rwlock *lock;
    int status = MITKBUF_ESYS;
    if (out == NULL)
        return MITKBUF_EINVAL;
    lock = calloc(1, sizeof *lock);
    if (lock == NULL)
        return MITKBUF_ENOMEM;
    for (int i = 0; i < SLOTS; i++)
        atomic_init(&lock->slots[i].word, 0);
    lock->holders = malloc(INITIAL_ROWS * sizeof *lock->holders);
    if (lock->holders == NULL) {
        free(lock);
        return MITKBUF_ENOMEM;
    }
    lock->capacity = INITIAL_ROWS;
    if (pthread_mutex_init(&lock->mutex, NULL) != 0)
        goto free_lock;
    if (pthread_condattr_init(&attr) != 0)
        goto destroy_mutex;
    if (pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&lock->readable, &attr) != 0)
        goto destroy_attr;
    if (pthread_cond_init(&lock->writable, &attr) != 0) {
        pthread_cond_destroy(&lock->readable);
        goto destroy_attr;
    }
    pthread_condattr_destroy(&attr);
    if ((status = enlist(lock)) != MITKBUF_OK) {
        pthread_cond_destroy(&lock->writable);
        pthread_cond_destroy(&lock->readable);
        goto destroy_mutex;
    }
    *out = lock;
    return MITKBUF_OK;

destroy_attr:
    pthread_condattr_destroy(&attr);
destroy_mutex:
    pthread_mutex_destroy(&lock->mutex);
free_lock:
    free(lock->holders);
    free(lock);
    return status;
}

void mitkbuf_rwlock_free(mitkbuf_rwlock *lock)
{
    if (lock == NULL)
        return;
    delist(lock);
    pthread_cond_destroy(&lock->writable);
    pthread_cond_destroy(&lock->readable);
    pthread_mutex_destroy(&lock->mutex);
    free(lock->holders);
    free(lock);
}

/* ---- waiting ------------------------------------------------------------------------------------- */

typedef struct {
    int forever;           /* timeout < 0 or >= FOREVER_SECONDS */
    int try_only;          /* timeout == 0 */
    double seconds;        /* the finite timeout, else 0 */
    struct timespec until; /* CLOCK_MONOTONIC deadline (finite timeouts > 0 only) */
} wait_plan;

/* seconds is in [0, FOREVER_SECONDS), so the sum stays far inside time_t. */
static void add_seconds(struct timespec *ts, double seconds)
{
    time_t whole = (time_t)seconds;
    ts->tv_sec += whole;
    ts->tv_nsec += (long)((seconds - (double)whole) * 1e9);
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec += 1;
        ts->tv_nsec -= 1000000000L;
    }
}

/* timeout is not NaN (checked by the callers). */
static int plan_wait(double timeout, wait_plan *plan)
{
    plan->forever = timeout < 0 || timeout >= FOREVER_SECONDS;
    plan->try_only = timeout == 0;
    plan->seconds = plan->forever ? 0 : timeout;
    if (!plan->forever && !plan->try_only) {
        if (clock_gettime(CLOCK_MONOTONIC, &plan->until) != 0)
            return MITKBUF_ESYS;
        add_seconds(&plan->until, timeout);
    }
    return MITKBUF_OK;
}

/* Take the internal mutex.  Finite requests bound the wait (see the fork note at the top). */
static int enter(mitkbuf_rwlock *lock, const wait_plan *plan)
{
    struct timespec abs_realtime;
    int rc;
    if (plan->forever)
        return pthread_mutex_lock(&lock->mutex) == 0 ? MITKBUF_OK : MITKBUF_ESYS;
    rc = pthread_mutex_trylock(&lock->mutex);
    if (rc == 0)
        return MITKBUF_OK;
    if (rc != EBUSY)
        return MITKBUF_ESYS;
    /* pthread_mutex_timedlock only knows CLOCK_REALTIME; a clock jump can only change how long a
     * lost mutex is waited for, never the lock's own timeout (that one is monotonic). */
    if (clock_gettime(CLOCK_REALTIME, &abs_realtime) != 0)
        return MITKBUF_ESYS;
    add_seconds(&abs_realtime,
                plan->seconds > MUTEX_GRACE_SECONDS ? plan->seconds : MUTEX_GRACE_SECONDS);
    rc = pthread_mutex_timedlock(&lock->mutex, &abs_realtime);
    if (rc == 0)
        return MITKBUF_OK;
    if (rc == ETIMEDOUT)
        return plan->try_only ? MITKBUF_EBUSY : MITKBUF_ETIMEDOUT;
    return MITKBUF_ESYS;
}

/* Sleep on cond until woken (0), past the deadline (1), or on failure (-1).  The mutex is held
 * again on return in every case. */
static int wait_on(mitkbuf_rwlock *lock, pthread_cond_t *cond, const wait_plan *plan)
{
    int rc = plan->forever ? pthread_cond_wait(cond, &lock->mutex)
                           : pthread_cond_timedwait(cond, &lock->mutex, &plan->until);
    if (rc == 0)
        return 0;
    return rc == ETIMEDOUT ? 1 : -1;
}

/* ---- the fast path (no mutex) -------------------------------------------------------------------- */

static _Atomic uint64_t *home_slot(mitkbuf_rwlock *lock, uint64_t owner)
{
    return &lock->slots[owner % SLOTS].word;
}

/* One more read hold for owner, if its home slot is free or already its own (and the lock is not
 * in the table's charge: then the slot is RWLOCK_SLOW).  1 if taken. */
static int fast_read(mitkbuf_rwlock *lock, uint64_t owner)
{
    _Atomic uint64_t *word = home_slot(lock, owner);
    uint64_t s = atomic_load_explicit(word, memory_order_relaxed), want;
    if (owner > FAST_OWNER_MAX)
        return 0;
    if (s == 0)
        want = owner << FAST_COUNT_BITS | 1;
    else if (s >> FAST_COUNT_BITS == owner && (s & FAST_COUNT_MAX) < FAST_COUNT_MAX)
        want = s + 1; /* RWLOCK_SLOW never matches: its owner field exceeds FAST_OWNER_MAX */
    else
        return 0;
    /* Acquire: what the previous writer wrote is visible to this reader (its unlock ends with
     * settle's release of this very slot). */
    return atomic_compare_exchange_strong_explicit(word, &s, want, memory_order_acquire,
                                                   memory_order_relaxed);
}

/* Release one fast-path read hold of owner.  1 if done; 0: the hold, if any, is in the table. */
static int fast_unlock_read(mitkbuf_rwlock *lock, uint64_t owner)
{
    _Atomic uint64_t *word = home_slot(lock, owner);
    uint64_t s = atomic_load_explicit(word, memory_order_relaxed);
    if (owner > FAST_OWNER_MAX || s == 0 || s >> FAST_COUNT_BITS != owner)
        return 0;
    /* Release: this reader's loads happen before the next writer's stores (go_slow's exchange of
     * this slot acquires). */
    return atomic_compare_exchange_strong_explicit(word, &s,
                                                   (s & FAST_COUNT_MAX) == 1 ? 0 : s - 1,
                                                   memory_order_release, memory_order_relaxed);
}

/* ---- the holder table (mutex held) -------------------------------------------------------------- */

static holder *find_holder(mitkbuf_rwlock *lock, uint64_t owner)
{
    for (size_t i = 0; i < lock->nholders; i++)
        if (lock->holders[i].owner == owner)
            return &lock->holders[i];
    return NULL;
}

/* The owner's row, added if missing; NULL (and nothing changed) if the table cannot grow.
 * Adding may move the table: pointers to rows are valid only until the next add. */
static holder *find_or_add_holder(mitkbuf_rwlock *lock, uint64_t owner)
{
    holder *h = find_holder(lock, owner);
    if (h != NULL)
        return h;
    if (lock->nholders == lock->capacity) {
        size_t capacity = lock->capacity != 0 ? lock->capacity * 2 : 4;
        holder *grown;
        if (capacity > SIZE_MAX / sizeof *grown)
            return NULL;
        grown = realloc(lock->holders, capacity * sizeof *grown);
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

/* Rows of owners that hold and wait for nothing are removed (swap with the last row), so the
 * table stays as small as the number of current holders and waiting writers. */
static void drop_if_idle(mitkbuf_rwlock *lock, holder *h)
{
    if (h->reads == 0 && !h->write && !h->queued)
        *h = lock->holders[--lock->nholders];
}

/* Whether the table is in charge (mutex held: then every slot agrees with slot 0). */
static int is_slow(mitkbuf_rwlock *lock)
{
    return atomic_load_explicit(&lock->slots[0].word, memory_order_acquire) == RWLOCK_SLOW;
}

/* Make the table authoritative: exchange every slot for RWLOCK_SLOW, moving its fast-path holds
 * into the table (which is empty until then, and has a row of room per slot; the slots hold
 * different owners, since each owner has one home).  Called with the mutex held, at the start of
 * every operation and again after every wait (settle may have reset the slots meanwhile).  A
 * fast read racing with this either lands before its slot's exchange, and is moved, or fails and
 * comes to the mutex. */
static void go_slow(mitkbuf_rwlock *lock)
{
    if (is_slow(lock))
        return;
    for (int i = 0; i < SLOTS; i++) {
        uint64_t s = atomic_exchange_explicit(&lock->slots[i].word, RWLOCK_SLOW,
                                              memory_order_acq_rel);
        if (s != 0) {
            holder *h = &lock->holders[lock->nholders++];
            h->owner = s >> FAST_COUNT_BITS;
            h->reads = (long)(s & FAST_COUNT_MAX);
            h->write = 0;
            h->queued = 0;
            lock->readers += h->reads;
        }
    }
}

/* End of an operation (mutex held): an empty table hands the lock back to the fast path.
 * Release: the table's last writer's stores are visible to the next fast reader of each slot.
 * Only RWLOCK_SLOW is reset: a request whose wait failed ends without another go_slow, and by
 * then the slots may be back on the fast path, holding other owners' reads.  Plain stores do:
 * with the mutex held, slots that are RWLOCK_SLOW are all of them, and nobody else changes them
 * (the fast path leaves a RWLOCK_SLOW slot alone). */
static void settle(mitkbuf_rwlock *lock)
{
    if (lock->nholders != 0 || !is_slow(lock))
        return;
    for (int i = 0; i < SLOTS; i++)
        atomic_store_explicit(&lock->slots[i].word, 0, memory_order_release);
}

/* After fork, in the child (mutex held): no thread waits, so no owner stays queued.  Rows left
 * idle go, and an empty table hands the lock back to the fast path. */
static void forget_waiters(mitkbuf_rwlock *lock)
{
    size_t i = 0;
    if (!is_slow(lock))
        return; /* the table is empty: nobody queued */
    lock->writers_waiting = 0;
    while (i < lock->nholders) {
        holder *h = &lock->holders[i];
        h->queued = 0;
        if (h->reads == 0 && !h->write)
            *h = lock->holders[--lock->nholders]; /* row i is now another one: look again */
        else
            i++;
    }
    settle(lock);
}

/* A writer leaves the queue without taking the lock: readers it held back may go now. */
static void leave_queue(mitkbuf_rwlock *lock, uint64_t owner)
{
    holder *h = find_holder(lock, owner);
    if (h == NULL || !h->queued)
        return;
    h->queued = 0;
    lock->writers_waiting--;
    drop_if_idle(lock, h);
    pthread_cond_broadcast(&lock->readable);
}

/* Whether a read request of the owner with row h (maybe NULL) must wait. */
static int read_blocked(const mitkbuf_rwlock *lock, const holder *h)
{
    long others_queued;
    if (lock->writer)
        return 1;
    /* Re-entrant read: a waiting writer waits for this very owner, so deferring to it would
     * deadlock (test_rwlock.c: writer preference). */
    if (h != NULL && h->reads > 0)
        return 0;
    /* An owner queued by mitkbuf_rwlock_write_queued does not defer to itself. */
    others_queued = lock->writers_waiting - (h != NULL && h->queued ? 1 : 0);
    return others_queued > 0;
}

/* ---- acquire ------------------------------------------------------------------------------------- */

int mitkbuf_rwlock_read(mitkbuf_rwlock *lock, uint64_t owner, double timeout)
{
    wait_plan plan;
    int status, expired = 0;
    if (lock == NULL || owner == 0 || isnan(timeout))
        return MITKBUF_EINVAL;
    if (fast_read(lock, owner))
        return MITKBUF_OK;
    if ((status = plan_wait(timeout, &plan)) != MITKBUF_OK)
        return status;
    if ((status = enter(lock, &plan)) != MITKBUF_OK)
        return status;
    for (;;) {
        holder *h;
        go_slow(lock);
        h = find_holder(lock, owner);
        if (h != NULL && h->write) {
            status = MITKBUF_EDEADLK;
            break;
        }
        if (!read_blocked(lock, h)) {
            h = find_or_add_holder(lock, owner);
            if (h == NULL) {
                status = MITKBUF_ENOMEM;
                break;
            }
            h->reads++;
            lock->readers++;
            status = MITKBUF_OK;
            break;
        }
        if (plan.try_only) {
            status = MITKBUF_EBUSY;
            break;
        }
        if (expired) {
            status = MITKBUF_ETIMEDOUT;
            break;
        }
        expired = wait_on(lock, &lock->readable, &plan);
        if (expired < 0) {
            status = MITKBUF_ESYS;
            break;
        }
    }
    settle(lock);
    pthread_mutex_unlock(&lock->mutex);
    return status;
}

/* stay_queued: on EBUSY / ETIMEDOUT the owner remains counted as a waiting writer. */
static int write_lock(mitkbuf_rwlock *lock, uint64_t owner, double timeout, int stay_queued)
{
    wait_plan plan;
    int status, expired = 0;
    if (lock == NULL || owner == 0 || isnan(timeout))
        return MITKBUF_EINVAL;
    if ((status = plan_wait(timeout, &plan)) != MITKBUF_OK)
        return status;
    if ((status = enter(lock, &plan)) != MITKBUF_OK)
        return status;
    for (;;) {
        holder *h;
        go_slow(lock);
        h = find_holder(lock, owner);
        if (h != NULL && (h->reads > 0 || h->write)) { /* our own hold would block us forever */
            status = MITKBUF_EDEADLK;
            break;
        }
        if (!lock->writer && lock->readers == 0) {
            h = find_or_add_holder(lock, owner);
            if (h == NULL) {
                status = MITKBUF_ENOMEM;
                break;
            }
            if (h->queued) {
                h->queued = 0;
                lock->writers_waiting--;
            }
            h->write = 1;
            lock->writer = 1;
            status = MITKBUF_OK;
            break;
        }
        if (plan.try_only && !stay_queued) {
            status = MITKBUF_EBUSY;
            break;
        }
        /* Queue (once): from now on new readers defer to this writer. */
        if (h == NULL || !h->queued) {
            h = find_or_add_holder(lock, owner);
            if (h == NULL) {
                status = MITKBUF_ENOMEM;
                break;
            }
            h->queued = 1;
            lock->writers_waiting++;
        }
        if (plan.try_only) {
            status = MITKBUF_EBUSY;
            break;
        }
        if (expired) {
            status = MITKBUF_ETIMEDOUT;
            break;
        }
        expired = wait_on(lock, &lock->writable, &plan);
        if (expired < 0) {
            status = MITKBUF_ESYS;
            break;
        }
    }
    if (status != MITKBUF_OK &&
        !(stay_queued && (status == MITKBUF_EBUSY || status == MITKBUF_ETIMEDOUT)))
        leave_queue(lock, owner);
    settle(lock);
    pthread_mutex_unlock(&lock->mutex);
    return status;
}

int mitkbuf_rwlock_write(mitkbuf_rwlock *lock, uint64_t owner, double timeout)
{
    return write_lock(lock, owner, timeout, 0);
}

int mitkbuf_rwlock_write_queued(mitkbuf_rwlock *lock, uint64_t owner, double timeout)
{
    return write_lock(lock, owner, timeout, 1);
}

/* ---- release ------------------------------------------------------------------------------------- */

int mitkbuf_rwlock_write_cancel(mitkbuf_rwlock *lock, uint64_t owner)
{
    holder *h;
    int status = MITKBUF_OK;
    if (lock == NULL)
        return MITKBUF_EINVAL;
    if (pthread_mutex_lock(&lock->mutex) != 0)
        return MITKBUF_ESYS;
    go_slow(lock);
    h = find_holder(lock, owner);
    if (h == NULL || !h->queued)
        status = MITKBUF_EPERM;
    else
        leave_queue(lock, owner);
    settle(lock);
    pthread_mutex_unlock(&lock->mutex);
    return status;
}

int mitkbuf_rwlock_unlock_read(mitkbuf_rwlock *lock, uint64_t owner)
{
    holder *h;
    int status = MITKBUF_OK;
    if (lock == NULL)
        return MITKBUF_EINVAL;
    if (fast_unlock_read(lock, owner))
        return MITKBUF_OK;
    if (pthread_mutex_lock(&lock->mutex) != 0)
        return MITKBUF_ESYS;
    go_slow(lock);
    h = find_holder(lock, owner);
    if (h == NULL || h->reads == 0) {
        status = MITKBUF_EPERM;
    } else {
        h->reads--;
        lock->readers--;
        drop_if_idle(lock, h);
        /* Readers never wait for readers; only writers can be admitted, by the last release.
         * Not only when writers_waiting > 0: a waiting writer whose queue entry another thread
         * cancelled is not counted there, and must still be woken (a broadcast that finds no
         * waiter costs a few instructions). */
        if (lock->readers == 0)
            pthread_cond_broadcast(&lock->writable);
    }
    settle(lock);
    pthread_mutex_unlock(&lock->mutex);
    return status;
}

int mitkbuf_rwlock_unlock_write(mitkbuf_rwlock *lock, uint64_t owner)
{
    holder *h;
    int status = MITKBUF_OK;
    if (lock == NULL)
        return MITKBUF_EINVAL;
    if (pthread_mutex_lock(&lock->mutex) != 0)
        return MITKBUF_ESYS;
    go_slow(lock);
    h = find_holder(lock, owner);
    if (h == NULL || !h->write) {
        status = MITKBUF_EPERM;
    } else {
        h->write = 0;
        lock->writer = 0;
        drop_if_idle(lock, h);
        pthread_cond_broadcast(&lock->writable); /* every waiting writer, counted or not */
        /* Readers that still defer to a queued writer re-check and sleep again; the others (and a
         * queued owner's own read) go now. */
        pthread_cond_broadcast(&lock->readable);
    }
    settle(lock);
    pthread_mutex_unlock(&lock->mutex);
    return status;
}

int mitkbuf_rwlock_state(mitkbuf_rwlock *lock, long *readers, int *writer, long *writers_waiting)
{
    int slow;
    long fast_reads = 0;
    if (lock == NULL)
        return MITKBUF_EINVAL;
    if (pthread_mutex_lock(&lock->mutex) != 0)
        return MITKBUF_ESYS;
    /* While the slots are RWLOCK_SLOW only the mutex holder changes anything; otherwise the table
     * is empty, nobody writes or queues, and the read holds are the slots' counts (each slot read
     * once; fast readers may come and go meanwhile, as they may right after any answer). */
    slow = is_slow(lock);
    for (int i = 0; i < SLOTS && !slow; i++) {
        uint64_t s = atomic_load_explicit(&lock->slots[i].word, memory_order_acquire);
        fast_reads += (long)(s & FAST_COUNT_MAX);
    }
    if (readers != NULL)
        *readers = slow ? lock->readers : fast_reads;
    if (writer != NULL)
        *writer = slow ? lock->writer : 0;
    if (writers_waiting != NULL)
        *writers_waiting = slow ? lock->writers_waiting : 0;
    pthread_mutex_unlock(&lock->mutex);
    return MITKBUF_OK;
}
