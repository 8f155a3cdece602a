/* Matrix products through BLIS's typed API. Row-major operands are described to BLIS by their
 * row and column strides, so a transpose is a swap of strides, never a copy. */
#include <blis.h>
#include <string.h>

#include "kernels/kernels.h"

/* BLIS rejects ambiguous strides on degenerate (single row or column) matrices; give the
 * unused stride a value consistent with a general-stride layout. */
static void tidy_strides(int64_t rows, int64_t cols, inc_t *rs, inc_t *cs) {
    if (rows == 1 && cols == 1) {
        *rs = *cs = 1;
    } else if (rows == 1) {
        *rs = cols * *cs;
    } else if (cols == 1) {
        *cs = rows * *rs;
    }
}

/* With both operands contiguous along k, BLIS runs products whose first operand has the
 * longer side faster: measured 1.1-1.7x with the skx kernels (16x144 with k = 16384: 4.1 ms,
 * swapped 2.5 ms) and 1.05-1.2x with zen3's (threads.c), so those are computed swapped. m*n
 * copies for the transpose against m*n*k multiply-adds. */
bool tg_k_gemm_swaps(bool trans_a, bool trans_b, int64_t m, int64_t n, double beta) {
    return !trans_a && trans_b && m < n && beta == 0.0;
}

void tg_k_gemm(tg_dtype dt, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
               double alpha, const void *a, const void *b, double beta, void *c, void *scratch) {
    if (m == 0 || n == 0) return;
    if (scratch && k > 0 && tg_k_gemm_swaps(trans_a, trans_b, m, n, beta)) {
        /* scratch [n, m] = B A^T, then C [m, n] = scratch^T */
        tg_k_gemm(dt, false, true, n, m, k, alpha, b, a, 0.0, scratch, NULL);
        tg_k_strided_copy(tg_dtype_size(dt), 2, (int64_t[]){m, n}, (int64_t[]){1, m}, scratch,
                          (int64_t[]){n, 1}, c);
        return;
    }
    if (k == 0) { /* an empty sum: C = beta * C */
        if (beta == 0.0) {
            memset(c, 0, (size_t)(m * n) * tg_dtype_size(dt));
        } else {
            tg_k_unary(TG_U_MUL_S, dt, m * n, c, c, beta, 0.0);
        }
        return;
    }
    /* A is stored [m, k] (row stride k) or, transposed, [k, m] (column stride m). */
    inc_t rsa = trans_a ? 1 : k, csa = trans_a ? m : 1;
    inc_t rsb = trans_b ? 1 : n, csb = trans_b ? k : 1;
    inc_t rsc = n, csc = 1;
    tidy_strides(m, k, &rsa, &csa);
    tidy_strides(k, n, &rsb, &csb);
    tidy_strides(m, n, &rsc, &csc);
    /* Below TG_GEMM_PARALLEL_MIN multiply-adds a thread team costs more than it saves (a 32^3
     * product takes ~3 us on one thread, ~16 us on two, far more on a busy machine), so small
     * products run on one. */
    rntm_t rntm = BLIS_RNTM_INITIALIZER;
    bli_rntm_set_num_threads(m * n * k < TG_GEMM_PARALLEL_MIN ? 1 : tg_get_num_threads(), &rntm);
    if (dt == TG_F32) {
        float al = (float)alpha, be = (float)beta;
        bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, m, n, k, &al, (float *)a, rsa, csa,
                     (float *)b, rsb, csb, &be, c, rsc, csc, NULL, &rntm);
    } else {
        bli_dgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, m, n, k, &alpha, (double *)a, rsa,
                     csa, (double *)b, rsb, csb, &beta, c, rsc, csc, NULL, &rntm);
    }
}
