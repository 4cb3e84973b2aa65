# cython: language_level=3
"""Memory-mapped files that survive being truncated while they are read.

Reading a page of a file mapping past the file's current end raises ``SIGBUS``,
which kills the process: another process that truncates a file during its
decode would take the whole service down. A mapping registered here is
guarded instead: the ``SIGBUS`` handler replaces the vanished part of a
guarded mapping (from the faulting page to its end) with zero-filled memory,
notes that it did, and returns, so the interrupted read goes on over zeros.
The reader that registered the mapping asks, once the decode is over, whether
that happened, and turns the decode's result into an error.

The handler does only async-signal-safe work (an ``mmap`` call and atomic
stores) and leaves every other ``SIGBUS`` to the handler that was installed
before it: faults outside a guarded mapping, and signals sent rather than
raised by a fault. Where ``SIGBUS`` does not exist (Windows, where a mapped
file cannot be truncated) nothing is guarded and :data:`GUARDED` is False.
"""

cdef extern from *:
    """
    #if defined(__unix__) || defined(__APPLE__)
    #include <signal.h>
    #include <stdint.h>
    #include <string.h>
    #include <sys/mman.h>
    #include <unistd.h>
    #define ECG_GUARD 1
    #define ECG_GUARD_SLOTS 256

    typedef struct { uintptr_t start, end; int hit; } ecg_guard_slot;
    static ecg_guard_slot ecg_guards[ECG_GUARD_SLOTS];  /* start == 0: a free slot */
    static struct sigaction ecg_previous;
    static uintptr_t ecg_page = 4096;

    static void ecg_on_sigbus(int sig, siginfo_t *info, void *context) {
        if (info != NULL && info->si_code > 0) {  /* raised by a fault, not sent */
            uintptr_t addr = (uintptr_t)info->si_addr;
            int i;
            for (i = 0; i < ECG_GUARD_SLOTS; i++) {
                uintptr_t start = __atomic_load_n(&ecg_guards[i].start, __ATOMIC_ACQUIRE);
                uintptr_t end = __atomic_load_n(&ecg_guards[i].end, __ATOMIC_ACQUIRE);
                if (start != 0 && start <= addr && addr < end) {
                    uintptr_t from = addr & ~(ecg_page - 1);
                    void *zeros = mmap((void *)from, end - from, PROT_READ,
                                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
                    if (zeros != MAP_FAILED) {
                        __atomic_store_n(&ecg_guards[i].hit, 1, __ATOMIC_RELEASE);
                        return;  /* the read runs again, over zeros */
                    }
                    break;
                }
            }
        }
        /* not a guarded mapping: what would have happened without this handler */
        if (ecg_previous.sa_flags & SA_SIGINFO) {
            if (ecg_previous.sa_sigaction != NULL) {
                ecg_previous.sa_sigaction(sig, info, context);
                return;
            }
        } else if (ecg_previous.sa_handler != SIG_DFL && ecg_previous.sa_handler != SIG_IGN) {
            ecg_previous.sa_handler(sig);
            return;
        }
        signal(sig, SIG_DFL);  /* a fault raises it again on return, a sent signal: */
        if (info == NULL || info->si_code <= 0) raise(sig);  /* delivered on return */
    }

    /* Make ecg_on_sigbus the SIGBUS handler, chaining to the one it replaces; kept
       first when another handler was installed over it since. 0 or -1. */
    static int ecg_guard_install(void) {
        struct sigaction current, mine;
        if (sigaction(SIGBUS, NULL, &current) != 0) return -1;
        if ((current.sa_flags & SA_SIGINFO) && current.sa_sigaction == ecg_on_sigbus) return 0;
        ecg_page = (uintptr_t)sysconf(_SC_PAGESIZE);
        memset(&mine, 0, sizeof mine);
        mine.sa_sigaction = ecg_on_sigbus;
        mine.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&mine.sa_mask);
        ecg_previous = current;
        return sigaction(SIGBUS, &mine, NULL);
    }

    /* A slot guarding [start, start + length), or -1 when every slot is taken. */
    static int ecg_guard_add(uintptr_t start, size_t length) {
        int i;
        for (i = 0; i < ECG_GUARD_SLOTS; i++) {
            uintptr_t expected = 0;
            /* claim the slot with a start of 1 (matches no address), then publish */
            if (__atomic_compare_exchange_n(&ecg_guards[i].start, &expected, (uintptr_t)1, 0,
                                            __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
                __atomic_store_n(&ecg_guards[i].hit, 0, __ATOMIC_RELAXED);
                __atomic_store_n(&ecg_guards[i].end, start + length, __ATOMIC_RELEASE);
                __atomic_store_n(&ecg_guards[i].start, start, __ATOMIC_RELEASE);
                return i;
            }
        }
        return -1;
    }

    /* Map the pages of [start, start + length) in now, as MAP_POPULATE would at mmap
       time (called without the GIL, where MAP_POPULATE would hold it for the whole
       mapping): one call where the kernel has MADV_POPULATE_READ (Linux 5.14), else a
       read of one byte a page. A vanished page leaves the call early or reads zeros
       (the mapping is guarded by then). */
    static void ecg_populate(uintptr_t start, size_t length) {
        volatile const unsigned char *p = (volatile const unsigned char *)start;
        size_t i;
    #ifdef MADV_POPULATE_READ
        uintptr_t first = start & ~(ecg_page - 1);
        if (madvise((void *)first, start + length - first, MADV_POPULATE_READ) == 0) return;
    #endif
        for (i = 0; i < length; i += ecg_page) (void)p[i];
    }

    /* Stop guarding a slot: 1 when a read hit a vanished page of it. */
    static int ecg_guard_remove(int i) {
        int hit;
        __atomic_store_n(&ecg_guards[i].start, (uintptr_t)1, __ATOMIC_RELEASE);
        __atomic_store_n(&ecg_guards[i].end, (uintptr_t)0, __ATOMIC_RELEASE);
        hit = __atomic_load_n(&ecg_guards[i].hit, __ATOMIC_ACQUIRE);
        __atomic_store_n(&ecg_guards[i].start, (uintptr_t)0, __ATOMIC_RELEASE);
        return hit;
    }
    #else
    #define ECG_GUARD 0
    #define ECG_GUARD_SLOTS 0
    static int ecg_guard_install(void) { return -1; }
    static int ecg_guard_add(uintptr_t start, size_t length) { (void)start; (void)length; return -1; }
    static int ecg_guard_remove(int i) { (void)i; return 0; }
    static void ecg_populate(uintptr_t start, size_t length) { (void)start; (void)length; }
    #endif
    """
    int ECG_GUARD
    int ECG_GUARD_SLOTS
    int ecg_guard_install() nogil
    int ecg_guard_add(size_t start, size_t length) nogil
    int ecg_guard_remove(int slot) nogil
    void ecg_populate(size_t start, size_t length) nogil

from libc.stdint cimport uint8_t

GUARDED = bool(ECG_GUARD)
"""True where guarded mappings exist (every POSIX system)."""


def guard(const uint8_t[::1] mapped, bint populate=False):
    """Guard a read-only file mapping (the whole buffer); the slot to pass to
    :func:`unguard`, or -1 when it cannot be guarded (read the file instead).

    ``populate``: also map all its pages in, without the GIL (Python's ``mmap``
    holds it through an ``mmap`` call with ``MAP_POPULATE``, stalling every other
    thread for as long as the kernel takes over a large file)."""
    cdef int slot
    cdef size_t start, length
    if not ECG_GUARD or mapped.shape[0] == 0 or ecg_guard_install() != 0:
        return -1
    start, length = <size_t>&mapped[0], <size_t>mapped.shape[0]
    slot = ecg_guard_add(start, length)
    if slot >= 0 and populate:
        with nogil:
            ecg_populate(start, length)
    return slot


def unguard(int slot):
    """Stop guarding ``slot`` (from :func:`guard`), before the mapping is closed; True
    when a read reached a part of the file that was gone and read zeros instead."""
    if slot < 0 or slot >= ECG_GUARD_SLOTS:
        raise ValueError("not a slot of a guarded mapping")
    return bool(ecg_guard_remove(slot))
