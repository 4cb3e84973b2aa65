# Positioned reads of an open file into caller buffers, without the GIL: one
# scattered read (preadv, or pread buffer by buffer where preadv is missing) retried
# when interrupted, and read_fully, which goes on after short reads until every
# buffer is full. Statuses from _status.pxd; Windows has no positioned reads here
# (SCATTER_READS is false and a read fails with ENOSYS).

from libc.errno cimport errno

from _status cimport OK, TRUNCATED, BAD_VALUE


cdef extern from *:
    """
    #include <errno.h>
    #include <stddef.h>
    #include <stdlib.h>
    #if defined(_WIN32)
    #define ECG_SCATTER_READS 0
    struct ecg_iovec { void *iov_base; size_t iov_len; };
    static long long ecg_preadv(int fd, struct ecg_iovec *iov, int n, long long offset) {
        (void)fd; (void)iov; (void)n; (void)offset;
        errno = ENOSYS;
        return -1;
    }
    #else
    #include <sys/types.h>
    #include <sys/uio.h>
    #include <unistd.h>
    #define ECG_SCATTER_READS 1
    #define ecg_iovec iovec
    /* One scattered read from ``offset``, retried when interrupted; where preadv is
       missing, the buffers one pread at a time. */
    static long long ecg_preadv(int fd, struct iovec *iov, int n, long long offset) {
    #if defined(__linux__) || defined(__FreeBSD__)
        ssize_t got;
        do { got = preadv(fd, iov, n, (off_t)offset); } while (got < 0 && errno == EINTR);
        return got;
    #else
        long long total = 0;
        for (int i = 0; i < n; i++) {
            ssize_t got;
            do { got = pread(fd, iov[i].iov_base, iov[i].iov_len, (off_t)(offset + total)); }
            while (got < 0 && errno == EINTR);
            if (got < 0) return total ? total : -1;
            total += got;
            if ((size_t)got < iov[i].iov_len) break;
        }
        return total;
    #endif
    }
    #endif
    """
    bint SCATTER_READS "ECG_SCATTER_READS"
    struct ecg_iovec:
        void* iov_base
        size_t iov_len
    long long ecg_preadv(int fd, ecg_iovec* iov, int n, long long offset) noexcept nogil


cdef inline int read_fully(int fd, ecg_iovec* iov, int n, long long offset,
                           long long size, int* err) noexcept nogil:
    """All ``size`` bytes of one scattered read into the ``n`` buffers of ``iov`` (which
    it advances), going on after short reads: ``TRUNCATED`` when the file ends first;
    ``BAD_VALUE`` with ``err`` set to the ``errno`` of a failed read."""
    cdef long long got
    while size > 0:
        got = ecg_preadv(fd, iov, n, offset)
        if got < 0:
            err[0] = errno
            return BAD_VALUE
        if got == 0:
            return TRUNCATED
        offset += got
        size -= got
        while n > 0 and got >= <long long>iov[0].iov_len:  # drop the buffers filled
            got -= iov[0].iov_len
            iov += 1
            n -= 1
        if n > 0:
            iov[0].iov_base = <char*>iov[0].iov_base + got
            iov[0].iov_len -= got
    return OK
