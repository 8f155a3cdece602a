/* The one thread-count setting: BLIS's GEMM threads and the OpenMP kernels follow it. */
#include <blis.h>
#include <omp.h>
#include <stdlib.h>
#include <unistd.h>

#include "tapegrad.h"

static int num_threads; /* 0 until first asked for or set */

void tg_set_num_threads(int n) {
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
