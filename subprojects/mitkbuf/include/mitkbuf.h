/*
 * mitkbuf: aligned pixel memory with an atomic reference count, and a reader/writer lock.
 *
 * Plain C11 and POSIX threads; no Python.  Every function that can fail returns an int status
 * (MITKBUF_OK or one of the error codes below) and delivers results through pointer arguments.
 * Nothing aborts, nothing prints.  All functions may be called without the Python GIL.
 *
 * Threads: buffer functions are safe to call concurrently on the same object (the reference
 * count is atomic; data/nbytes are immutable after creation).  Lock functions are safe to call
 * concurrently from any number of threads.
 */
#ifndef MITKBUF_H
#define MITKBUF_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status codes ------------------------------------------------------------------------ */
enum {
    MITKBUF_OK = 0,
    MITKBUF_ENOMEM = 1,    /* allocation failed */
    MITKBUF_EOVERFLOW = 2, /* a size product does not fit in size_t / ptrdiff_t */
    MITKBUF_EINVAL = 3,    /* invalid argument (NULL where an object is required, bad value) */
    MITKBUF_EBUSY = 4,     /* try-acquire: the lock is held in a conflicting mode */
    MITKBUF_ETIMEDOUT = 5, /* timed acquire: the deadline passed */
    MITKBUF_EDEADLK = 6,   /* the calling thread itself holds a lock that blocks the request */
    MITKBUF_EPERM = 7,     /* unlock of a mode the given owner does not hold */
    MITKBUF_ESYS = 8       /* a pthread call failed unexpectedly */
};

/* Static, NUL-terminated English message for a status code; never NULL (unknown codes map to
 * "unknown mitkbuf error").  Thread-safe. */
const char *mitkbuf_strerror(int status);

/* ---- overflow-checked sizes ---------------------------------------------------------------- */

/* *out = a * b.  Returns MITKBUF_EOVERFLOW (and leaves *out unchanged) if the product does not
 * fit in size_t; MITKBUF_EINVAL if out is NULL. */
int mitkbuf_size_mul(size_t a, size_t b, size_t *out);

/* *out = sizes[0] * ... * sizes[n-1] * itemsize, checked so that the result also fits in
 * PTRDIFF_MAX (byte offsets are signed in the buffer protocol).  n may be 0 (the result is
 * itemsize).  A zero size gives 0 (overflow is still checked on the other factors).
 * Returns MITKBUF_EOVERFLOW on overflow, MITKBUF_EINVAL if sizes is NULL with n > 0, n < 0 or out
 * is NULL. */
int mitkbuf_size_product(const size_t *sizes, int n, size_t itemsize, size_t *out);

/* ---- buffers ---------------------------------------------------------------------------------- */

/* Opaque: pixel memory + atomic reference count. */
typedef struct mitkbuf_buffer mitkbuf_buffer;

/* Called exactly once, by whichever thread drops the last reference of an adopted buffer.  It
 * must not call back into the buffer.  It may be called without the GIL: a Python adopter's
 * callback must take the GIL itself. */
typedef void (*mitkbuf_release_fn)(void *context, void *data);

/* Alignment of every buffer mitkbuf allocates itself. */
#define MITKBUF_ALIGNMENT 64

/* Allocate nbytes (0 allowed: a valid, non-NULL, 64-byte aligned pointer to no usable bytes),
 * 64-byte aligned, zero-filled if zeroed != 0.  On success *out holds one reference owned by the
 * caller; on failure *out is left unchanged.  Returns MITKBUF_ENOMEM (also for more than
 * PTRDIFF_MAX bytes, which no allocator grants), MITKBUF_EOVERFLOW (nbytes too large to round
 * up) or MITKBUF_EINVAL (out NULL).  Thread-safe. */
int mitkbuf_buffer_new(size_t nbytes, int zeroed, mitkbuf_buffer **out);

/* Wrap foreign memory without copying.  data must stay valid until release(context, data) is
 * called, which happens exactly once when the last reference is dropped (release may be NULL: the
 * memory is then simply forgotten).  data may be NULL only if nbytes is 0, in which case a static
 * non-NULL address is reported by mitkbuf_buffer_data.  On success *out holds one reference.
 * Returns MITKBUF_ENOMEM or MITKBUF_EINVAL. */
int mitkbuf_buffer_adopt(void *data, size_t nbytes, mitkbuf_release_fn release, void *context,
                         mitkbuf_buffer **out);

/* Data pointer (never NULL for a valid buffer) and size in bytes.  NULL / 0 for a NULL buffer. */
void *mitkbuf_buffer_data(const mitkbuf_buffer *buf);
size_t mitkbuf_buffer_nbytes(const mitkbuf_buffer *buf);

/* Add a reference.  Returns MITKBUF_EINVAL for NULL. */
int mitkbuf_buffer_retain(mitkbuf_buffer *buf);

/* Drop a reference; the last one frees the memory (or calls the adopter's release callback) and
 * the buffer object, exactly once, in the calling thread.  Every write made through any reference
 * before its release happens before that free or callback.  The caller must not use buf after
 * releasing its reference.  Returns MITKBUF_EINVAL for NULL. */
int mitkbuf_buffer_release(mitkbuf_buffer *buf);

/* Current reference count (a snapshot; for tests and diagnostics).  0 for NULL. */
long mitkbuf_buffer_refcount(const mitkbuf_buffer *buf);

/* Recycling of large blocks.  Own blocks of 1 MiB or more are kept, when freed, in a small cache
 * (at most 8 blocks and `limit` bytes) and reused for a request of nearly the same size, because
 * fresh pages cost a kernel zero-fill and a fault each.  mitkbuf_cache_limit returns the limit in
 * force and, if set != 0, replaces it with new_limit (0 disables the cache and frees what it
 * holds).  The default limit is 256 MiB.  Thread-safe; safe across fork(). */
size_t mitkbuf_cache_limit(size_t new_limit, int set);
/* Bytes held by the cache now (a snapshot). */
size_t mitkbuf_cache_bytes(void);

/* ---- reader/writer lock ------------------------------------------------------------------------ */

/* Opaque reader/writer lock.
 *
 * Rules:
 *  - many readers or one writer;
 *  - writer preference: while a writer waits, new readers wait too, except a thread (owner) that
 *    already holds a read lock, which may take another read lock at once (re-entrant reads, so a
 *    reader cannot deadlock against a waiting writer);
 *  - self-deadlock is an error, never a hang: a write request by an owner that holds any lock on
 *    this rwlock, or a read request by an owner that holds the write lock, returns MITKBUF_EDEADLK
 *    immediately;
 *  - ownership is tracked per owner id, not per thread handle, and an unlock may be performed by
 *    any thread on behalf of an owner (a Python object collected by another thread's garbage
 *    collector releases its lock there).  That is why pthread_rwlock is not used.
 *
 * Cost: while nobody writes or waits to write, a read and its unlock are one compare-and-swap
 * each, without a mutex, on one of a few per-lock words that the owner id selects (owners with
 * different words read at once without touching a shared cache line).  Every other request takes
 * an internal mutex: writes, reads while a writer holds or waits, and a read whose word another
 * owner holds; after such a request every read takes the mutex until the lock is free again.
 *
 * Owners: mitkbuf_thread_owner() gives the calling thread's id (unique for the life of the
 * process, never reused).  Acquire functions take the owner explicitly so that wrappers can record
 * it and pass the same value to the unlock.
 *
 * fork(): a lock held at fork time stays held in the child (its holders do not exist there, but
 * the child may release their holds on their behalf); finite requests return MITKBUF_ETIMEDOUT /
 * MITKBUF_EBUSY there.  fork() waits until no thread is inside a lock call's critical section
 * (pthread_atfork handlers, installed with the first lock), so in the child every call (release,
 * write-cancel and state queries included) works without blocking on the parent's threads, and
 * writers that were waiting in the parent no longer hold back the child's readers. */
typedef struct mitkbuf_rwlock mitkbuf_rwlock;

/* Id of the calling thread, > 0, unique for the process lifetime.  Thread-safe, lock-free.
 * The numbering belongs to one copy of the library: a program that links mitkbuf statically into
 * several modules must take every owner id from one of them, or two threads could get the same id
 * from two copies (and one thread two ids). */
uint64_t mitkbuf_thread_owner(void);

/* Create / destroy.  destroy of a lock that is held or waited on is undefined: callers destroy
 * only after every holder has unlocked.  Returns MITKBUF_ENOMEM (also when the fork handlers
 * cannot be installed), MITKBUF_ESYS or MITKBUF_EINVAL.  Both take a process-wide mutex for an
 * instant (the list of live locks that fork() walks). */
int mitkbuf_rwlock_new(mitkbuf_rwlock **out);
void mitkbuf_rwlock_free(mitkbuf_rwlock *lock);

/* Acquire for reading / writing on behalf of owner.
 *   timeout < 0   : wait forever (so do +inf and timeouts of 1e8 s or more);
 *   timeout == 0  : try once (MITKBUF_EBUSY if not available at once; -0.0 too).  A try never
 *                   waits for a holder, only, briefly, for other threads' lock calls;
 *   timeout > 0   : wait at most that many seconds (MITKBUF_ETIMEDOUT), measured on a monotonic
 *                   clock.  A request whose deadline passes just as the lock becomes free takes
 *                   the lock rather than report a timeout.
 * A self-deadlock (see the rules above) is reported before any waiting, whatever the timeout.
 * An owner queued by mitkbuf_rwlock_write_queued does not defer to its own queue entry when it
 * asks for a read.
 * Returns MITKBUF_OK, MITKBUF_EBUSY, MITKBUF_ETIMEDOUT, MITKBUF_EDEADLK, MITKBUF_ENOMEM (holder
 * table could not grow), MITKBUF_EINVAL (NULL lock, owner 0, NaN timeout), MITKBUF_ESYS. */
int mitkbuf_rwlock_read(mitkbuf_rwlock *lock, uint64_t owner, double timeout);
int mitkbuf_rwlock_write(mitkbuf_rwlock *lock, uint64_t owner, double timeout);

/* Like mitkbuf_rwlock_write, except that when it returns MITKBUF_ETIMEDOUT or MITKBUF_EBUSY the
 * owner stays queued as a waiting writer (new readers keep deferring to it) until it calls
 * mitkbuf_rwlock_write_queued again (which then does not queue twice) or
 * mitkbuf_rwlock_write_cancel.  This lets a caller wait in short slices, checking for interrupts
 * in between, without losing writer preference between the slices.  Every other status
 * (MITKBUF_OK, MITKBUF_EDEADLK, MITKBUF_ENOMEM, ...) leaves the owner not queued, and so does a
 * plain mitkbuf_rwlock_write that fails. */
int mitkbuf_rwlock_write_queued(mitkbuf_rwlock *lock, uint64_t owner, double timeout);
/* Leave the writers' queue after mitkbuf_rwlock_write_queued gave up; readers held back only by
 * this writer go at once.  May be called from any thread.  MITKBUF_EPERM if the owner is not
 * queued, MITKBUF_EINVAL for NULL. */
int mitkbuf_rwlock_write_cancel(mitkbuf_rwlock *lock, uint64_t owner);

/* Release one read hold / the write hold of owner.  May be called from any thread; waiters that
 * the release admits are woken.  Returns MITKBUF_EPERM if owner holds no such lock (nothing
 * changes; e.g. unlock_read of an owner that holds the write lock), MITKBUF_EINVAL for NULL. */
int mitkbuf_rwlock_unlock_read(mitkbuf_rwlock *lock, uint64_t owner);
int mitkbuf_rwlock_unlock_write(mitkbuf_rwlock *lock, uint64_t owner);

/* Snapshot of the state, for diagnostics and tests (any pointer may be NULL):
 * active readers (sum of read holds), whether a writer holds it, waiting writers. */
int mitkbuf_rwlock_state(mitkbuf_rwlock *lock, long *readers, int *writer, long *writers_waiting);

#ifdef __cplusplus
}
#endif
#endif /* MITKBUF_H */
