# Taking the GIL back after a native region without falling asleep on it.
#
# A read that holds the GIL for about half its time, in two threads, finds the GIL
# taken at nearly every end of its native region: the thread then sleeps in the
# interpreter's lock and is woken when the other thread releases it. On a virtual
# machine the sleeping core halts, and the wake-up (an interrupt to a halted core)
# plus the cold core it lands on cost a MUSE read as much as its whole native scan.
# Instead, a reader that ends its region while another reader of this module is in
# its GIL-held stretch waits for that stretch's end on its own core (a bounded spin
# that yields the CPU at each turn, so a busy CPU still runs the holder)
# and then takes a GIL that is free.
#
# A reader's held stretch is known by its own marks: it begins when its region ends
# (held_begin) and ends when its next region begins (held_end). A stretch older than
# ECG_HELD_SPAN is taken as finished (the thread left the reads, or runs other code);
# the spin lasts at most ECG_SPIN_MAX and only while fewer threads spin than there are
# other CPUs. Nothing here guards anything: a wrong guess only costs a spin or a sleep.
cdef extern from *:
    """
    #if defined(__GNUC__) && defined(__linux__) && !defined(Py_GIL_DISABLED)
    #include <sched.h>
    #include <time.h>
    #include <unistd.h>
    #if defined(__x86_64__) || defined(__i386__)
    #define ECG_PAUSE() __builtin_ia32_pause()
    #elif defined(__aarch64__)
    #define ECG_PAUSE() __asm__ __volatile__("yield")
    #else
    #define ECG_PAUSE() ((void)0)
    #endif
    #define ECG_HELD_SLOTS 16
    #define ECG_HELD_SPAN 1000000LL  /* ns: a held stretch older than this is over */
    #define ECG_SPIN_MAX 500000LL    /* ns: the longest spin */
    static long long ecg_held_since[ECG_HELD_SLOTS];  /* 0: a free slot */
    static int ecg_spinning, ecg_spinners_max = -1;
    static __thread int ecg_held_slot = -1;

    static long long ecg_now_ns(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
    }

    /* Whether another reader is in a held stretch that began less than a span ago. */
    static int ecg_other_held(long long now) {
        int i;
        for (i = 0; i < ECG_HELD_SLOTS; i++) {
            long long since = __atomic_load_n(&ecg_held_since[i], __ATOMIC_ACQUIRE);
            if (since != 0 && i != ecg_held_slot && now - since < ECG_HELD_SPAN) return 1;
        }
        return 0;
    }

    /* In the native region, right after the GIL was released: this reader's held
       stretch is over. */
    static void ecg_held_end(void) {
        int slot = ecg_held_slot;
        if (slot >= 0) {
            __atomic_store_n(&ecg_held_since[slot], 0LL, __ATOMIC_RELEASE);
            ecg_held_slot = -1;
        }
    }

    /* At the end of the native region, before the GIL is taken back: wait while
       another reader holds it for its stretch, then mark this reader's stretch. */
    static void ecg_held_begin(void) {
        long long now = ecg_now_ns(), start = now, since;
        int i, spinners;
        if (ecg_spinners_max < 0) {  /* the CPUs this process may run on */
            long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    #ifdef CPU_COUNT
            cpu_set_t allowed;
            if (sched_getaffinity(0, sizeof allowed, &allowed) == 0) cpus = CPU_COUNT(&allowed);
    #endif
            ecg_spinners_max = cpus > 1 ? (int)(cpus - 1) : 0;
        }
        if (ecg_other_held(now)) {
            spinners = __atomic_add_fetch(&ecg_spinning, 1, __ATOMIC_ACQ_REL);
            if (spinners <= ecg_spinners_max) {
                while (now - start < ECG_SPIN_MAX && ecg_other_held(now)) {
                    for (i = 0; i < 32; i++) ECG_PAUSE();
                    sched_yield();  /* a busy CPU runs its other threads (the holder's) */
                    now = ecg_now_ns();
                }
            }
            __atomic_sub_fetch(&ecg_spinning, 1, __ATOMIC_ACQ_REL);
        }
        /* a free slot, or one whose stretch is over (its thread left the reads) */
        for (i = 0; i < ECG_HELD_SLOTS; i++) {
            since = __atomic_load_n(&ecg_held_since[i], __ATOMIC_ACQUIRE);
            if ((since == 0 || now - since >= ECG_HELD_SPAN) &&
                    __atomic_compare_exchange_n(&ecg_held_since[i], &since, now, 0,
                                                __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
                ecg_held_slot = i;
                return;
            }
        }
    }
    #else
    static void ecg_held_end(void) {}
    static void ecg_held_begin(void) {}
    #endif
    """
    void held_end "ecg_held_end"() noexcept nogil
    void held_begin "ecg_held_begin"() noexcept nogil
