/* How long one cache line takes to go from one CPU to another and back.
 *
 * Two threads that take turns with the GIL pass every object they both touch
 * (type objects, None, small ints, the allocator's pools) from one core's cache
 * to the other's at each hand-over. On a virtual machine that cost is not
 * constant: the host may run the two virtual CPUs on cores that share a cache
 * or on cores far apart, and moves them. The benchmarks print this round trip
 * beside every two-thread row so that a row says which machine it ran on.
 *
 * Built by _threads.py with the system C compiler and called through ctypes
 * (which releases the GIL around the call).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

static _Alignas(64) atomic_int turn;  /* 1: pong's turn, 0: ping's, -1: stop */
static _Alignas(64) atomic_int pong_ready;
static int trips;
static int pong_cpu;

static int pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void *pong(void *unused) {
    (void)unused;
    if (pin(pong_cpu) != 0) {
        atomic_store(&turn, -1);
        return NULL;
    }
    atomic_store(&pong_ready, 1);
    for (int i = 0; i < trips; i++) {
        int seen;
        while ((seen = atomic_load_explicit(&turn, memory_order_acquire)) == 0) {
        }
        if (seen < 0) return NULL;
        atomic_store_explicit(&turn, 0, memory_order_release);
    }
    return NULL;
}

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

/* Nanoseconds per round trip between cpu_a and cpu_b over `count` trips, or a
 * negative value where a thread could not be pinned. The calling thread keeps
 * its own CPU set. */
double round_trip_ns(int cpu_a, int cpu_b, int count) {
    cpu_set_t saved;
    pthread_t other;
    double start, elapsed = -1.0;
    if (pthread_getaffinity_np(pthread_self(), sizeof saved, &saved) != 0) return -1.0;
    if (pin(cpu_a) != 0) return -1.0;
    trips = count;
    pong_cpu = cpu_b;
    atomic_store(&turn, 0);
    atomic_store(&pong_ready, 0);
    if (pthread_create(&other, NULL, pong, NULL) != 0) goto restore;
    /* time only trips between the two pinned threads, not the other's start */
    while (!atomic_load(&pong_ready) && atomic_load(&turn) == 0) {
    }
    start = now_ns();
    for (int i = 0; i < count; i++) {
        int seen = 0;
        if (!atomic_compare_exchange_strong(&turn, &seen, 1)) break;  /* pong failed */
        while ((seen = atomic_load_explicit(&turn, memory_order_acquire)) == 1) {
        }
        if (seen < 0) break;
    }
    elapsed = atomic_load(&turn) < 0 ? -1.0 : (now_ns() - start) / count;
    atomic_store(&turn, -1);
    pthread_join(other, NULL);
restore:
    pthread_setaffinity_np(pthread_self(), sizeof saved, &saved);
    return elapsed;
}
