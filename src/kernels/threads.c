/* Runtime setup of the compute back ends: the one thread-count setting that BLIS's GEMM threads
 * and the OpenMP kernels follow, and the choice of BLIS kernels.
 *
 * BLIS 0.9 (Debian 12) picks its kernels from a table of known CPUs and falls back to slow
 * generic C kernels for newer ones: an AMD Zen 4 gets ~38 GFLOP/s per core. Unless the user set
 * BLIS_ARCH_TYPE, tapegrad chooses:
 *   - on CPUs with AVX2 and FMA (AMD or Intel, with or without AVX-512), the zen3
 *     configuration: AVX2 kernels plus BLIS's kernels for skinny and small products ("sup"),
 *     which is what training runs. The AVX-512 skx kernels do large square products faster
 *     (~200 against ~115 GFLOP/s per core on a Zen 4 and on a Sapphire Rapids Xeon), but the
 *     seed nets train faster with zen3 on both (Zen 4: MNIST CNN 1.5x, LeNet-5 1.2x, ResNet
 *     1.1x; Xeon: 1.4x, 1.5x, 1.1x on one thread), because their products have a side below
 *     ~64 (output channels, batch) where skx runs at 10-60 GFLOP/s and zen3's sup kernels at
 *     ~100 (a weight gradient 6 x 25 x 50176: 1.3 ms, 0.16 ms);
 *   - elsewhere BLIS's own choice.
 * BLIS fixes its configuration once per process, so one choice serves every product.
 * This must happen before BLIS initializes, so every entry point that can reach BLIS calls
 * setup() first. */
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
    if (getenv("BLIS_ARCH_TYPE") != NULL) return;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        char id[8];
        snprintf(id, sizeof id, "%d", (int)BLIS_ARCH_ZEN3);
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
