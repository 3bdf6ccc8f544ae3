/* The system calls of mitk._core._positioned (positioned reads, and the open that checks a
   file is the one described), in C so that a whole region is read in one call with the GIL
   released.  Included by _positioned.pyx alone, after Python.h, which sets the POSIX feature
   macros that pread and st_mtim need; every function is static. */
#ifndef MITK_POSITIONED_H
#define MITK_POSITIONED_H

#include <stddef.h>

#if defined(_WIN32)
#include <errno.h>
#define MITK_HAVE_PREAD 0
static long long mitk_pread(int fd, void *buf, size_t n, long long offset)
{
    (void)fd; (void)buf; (void)n; (void)offset;
    errno = ENOSYS;
    return -1;
}
#else
#include <unistd.h>
#define MITK_HAVE_PREAD 1
/* At most 1 GiB a call: macOS refuses a read of more than INT_MAX bytes (EINVAL); the
   callers loop until a run is read whole. */
#define MITK_PREAD_MAX ((size_t)1 << 30)
static long long mitk_pread(int fd, void *buf, size_t n, long long offset)
{
    return (long long)pread(fd, buf, n < MITK_PREAD_MAX ? n : MITK_PREAD_MAX, (off_t)offset);
}
#endif

#include <errno.h>
#include <stdint.h>
#include <string.h>

#if MITK_HAVE_PREAD
#include <fcntl.h>
#include <sys/stat.h>
#if defined(__APPLE__)
#define MITK_MTIME(st) ((st).st_mtimespec)
#else
#define MITK_MTIME(st) ((st).st_mtim)
#endif
#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif
#ifndef O_NOCTTY
#define O_NOCTTY 0
#endif

/* Open `path` for reading, never waiting (a FIFO put in its place would block a plain
   open), and check it is the file described: its size, mtime in ns, inode and device.
   Returns 0 (the descriptor in *fd), 1 when it is another file or was modified, 2 on EINTR,
   or -errno. */
static int mitk_open_same(const char *path, long long size, long long mtime_ns,
                          unsigned long long ino, unsigned long long dev, int *fd)
{
    struct stat st;
    /* st_mtime_ns as seconds and nanoseconds, floored as Python floors: the file's
       seconds times 10^9 could overflow (a date past 2262), these cannot. */
    long long sec = mtime_ns / 1000000000LL, nsec = mtime_ns % 1000000000LL;
    int f;
    if (nsec < 0) {
        sec -= 1;
        nsec += 1000000000LL;
    }
    f = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (f < 0) {
        /* ENXIO: a socket (or a device with nothing behind it) is in the place of the
           regular file described, so it is another file. */
        if (errno == ENXIO)
            return 1;
        return errno == EINTR ? 2 : -errno;
    }
    if (fstat(f, &st) != 0) {
        int e = errno;
        close(f);
        return -e;
    }
    if ((long long)st.st_size != size || (long long)MITK_MTIME(st).tv_sec != sec
            || (long long)MITK_MTIME(st).tv_nsec != nsec
            || (unsigned long long)st.st_ino != ino || (unsigned long long)st.st_dev != dev) {
        close(f);
        return 1;
    }
    *fd = f;
    return 0;
}
static void mitk_close(int fd) { close(fd); }
#else
static int mitk_open_same(const char *path, long long size, long long mtime_ns,
                          unsigned long long ino, unsigned long long dev, int *fd)
{
    (void)path; (void)size; (void)mtime_ns; (void)ino; (void)dev; (void)fd;
    return -ENOSYS;
}
static void mitk_close(int fd) { (void)fd; }
#endif

/* Where mitk_read_rows stands: plane, row in it, bytes of that row already read. */
typedef struct { long long plane, row, done; } mitk_rows_at;

/* Read `n` bytes from `offset` into `buf`, going on from the `*done` already read.  Returns 0
   when done, 1 when the file ended first, 2 on EINTR (call again: *done says where it
   stands), or -errno. */
static int mitk_pread_full(int fd, unsigned char *buf, long long n, long long offset,
                           long long *done)
{
    while (*done < n) {
        long long got = mitk_pread(fd, buf + *done, (size_t)(n - *done), offset + *done);
        if (got > 0)
            *done += got;
        else if (got == 0)
            return 1;
        else
            return errno == EINTR ? 2 : -errno;
    }
    return 0;
}

/* Read k rows of `length` bytes, `step` apart, from each plane start (`base` + planes[p])
   into `out`, back to back, going on from `at`.  With `span` scratch bytes
   ((k - 1) * step + length), each plane is one read into it, then its rows are copied out
   (a copy of bytes just read is cheaper than a read per row); without, one read per row.
   Returns 0 when done, 1 when the file ended (`at` names the row and what it got), 2 on
   EINTR (go on from `at`), or -errno. */
static int mitk_read_rows(int fd, const int64_t *planes, long long base, long long n,
                          long long k, long long step, long long length,
                          unsigned char *out, unsigned char *span, mitk_rows_at *at)
{
    int rc;
    for (; at->plane < n; at->plane++, at->row = 0) {
        long long start = base + planes[at->plane];
        unsigned char *dst = out + at->plane * k * length;
        if (span != NULL && at->row == 0) {
            long long got = 0, whole, r;
            rc = mitk_pread_full(fd, span, (k - 1) * step + length, start, &got);
            if (rc == 2 || rc < 0)
                return rc;
            /* All of it, or (the file ended) the rows it holds whole; then the row it
               holds part of is read on its own below, to report where the file ends. */
            whole = got >= length ? (got - length) / step + 1 : 0;
            for (r = 0; r < whole; r++)
                memcpy(dst + r * length, span + r * step, (size_t)length);
            if (whole == k)
                continue;
            at->row = whole;
            at->done = 0;  /* what an interrupted pass had of that row is read again */
        }
        for (; at->row < k; at->row++, at->done = 0) {
            rc = mitk_pread_full(fd, dst + at->row * length, length,
                                 start + at->row * step, &at->done);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

/* mitk_read_rows on `path`: opened (while *fd < 0; a descriptor it opens is the caller's
   to close) and checked to be the file described first.  Returns what mitk_read_rows
   returns, or 3 when the file is another or was modified; 2 (EINTR) from the open or a
   read alike: call again, *fd and `at` say where it stands. */
static int mitk_read_file_rows(const char *path, long long size, long long mtime_ns,
                               unsigned long long ino, unsigned long long dev, int *fd,
                               const int64_t *planes, long long base, long long n,
                               long long k, long long step, long long length,
                               unsigned char *out, unsigned char *span, mitk_rows_at *at)
{
    if (*fd < 0) {
        int rc;
        if (path == NULL)  /* read_rows on a bad descriptor: as pread would say */
            return -EBADF;
        rc = mitk_open_same(path, size, mtime_ns, ino, dev, fd);
        if (rc != 0)
            return rc == 1 ? 3 : rc;
    }
    return mitk_read_rows(*fd, planes, base, n, k, step, length, out, span, at);
}

#endif
