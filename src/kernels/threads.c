/* Runtime setup of the compute back ends: the one thread-count setting that BLIS's GEMM threads
 * and the OpenMP kernels follow, and the choice of BLIS kernels.
 *
 * BLIS 0.9 (Debian 12) picks its kernels from a table of known CPUs and falls back to slow
 * generic C kernels for newer ones: an AVX-512 AMD Zen 4 gets ~38 GFLOP/s per core instead of
 * ~200 with the AVX-512 (skx) kernels. Unless the user set BLIS_ARCH_TYPE, a CPU with the full
 * AVX-512 set BLIS's skx kernels need gets them; other CPUs keep BLIS's own choice. This must
 * happen before BLIS initializes, so every entry point that can reach BLIS calls setup() first. */
#include <blis.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tapegrad.h"

static int num_threads; /* 0 until first asked for or set */
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void choose_blis_kernels(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (getenv("BLIS_ARCH_TYPE") == NULL && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512cd") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")) {
        char id[8];
        snprintf(id, sizeof id, "%d", (int)BLIS_ARCH_SKX);
        setenv("BLIS_ARCH_TYPE", id, 0);
    }
#endif
}

static void setup(void) {
    pthread_once(&once, choose_blis_kernels);
}

void tg_set_num_threads(int n) {
    setup();
    if (n < 1) n = 1;
    num_threads = n;
    omp_set_num_threads(n);
    bli_thread_set_num_threads(n);
}

int tg_get_num_threads(void) {
    if (num_threads == 0) {
        const char *env = getenv("OMP_NUM_THREADS");
        int n = env ? atoi(env) : 0;
        if (n < 1) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
        tg_set_num_threads(n);
    }
    return num_threads;
}
