/* Matrix product over the last two dims with broadcasting batch dims, through BLIS. Transpose
 * flags are strides, not copies, which keeps the VJP cheap: it is two more matmuls with flipped
 * flags, each summed back over broadcast batch dims. */
#include "ops/op.h"

typedef struct matmul_params {
    bool trans_a, trans_b;
} matmul_params;

/* C = op(A) op(B):  dA = g op(B)^T  (or op(B) g^T when A was transposed),
 *                   dB = op(A)^T g  (or g^T op(A) when B was transposed). */
static void matmul_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    const matmul_params *p = TG_PARAMS(n, matmul_params);
    tg_tensor *a = TG_IN(n, 0), *b = TG_IN(n, 1);
    if (need[0]) {
        tg_tensor *da = p->trans_a ? tg_matmul_trans(tp, b, p->trans_b, g, true)
                                   : tg_matmul_trans(tp, g, false, b, !p->trans_b);
        gin[0] = tg_sum_to(tp, da, a->ndim, a->shape);
    }
    if (need[1]) {
        tg_tensor *db = p->trans_b ? tg_matmul_trans(tp, g, true, a, p->trans_a)
                                   : tg_matmul_trans(tp, a, !p->trans_a, g, false);
        gin[1] = tg_sum_to(tp, db, b->ndim, b->shape);
    }
}
static const tg_op matmul_op = {"matmul", matmul_vjp};

tg_tensor *tg_matmul_trans(tg_tape *tp, tg_tensor *a, bool trans_a, tg_tensor *b, bool trans_b) {
    tg_tensor *in[2] = {a, b};
    if (!tg_op_begin(tp, "matmul", 2, in) || !tg_op_same_float(tp, "matmul", 2, in)) return NULL;
    if (a->ndim < 2 || b->ndim < 2) {
        tg_fail(tp, "matmul: operands need at least 2 dims, got %s and %s (reshape vectors)",
                TG_SHAPE_STR(a), TG_SHAPE_STR(b));
        return NULL;
    }
    const int na = a->ndim, nb = b->ndim;
    const int64_t m = a->shape[na - (trans_a ? 1 : 2)], k = a->shape[na - (trans_a ? 2 : 1)];
    const int64_t kb = b->shape[nb - (trans_b ? 1 : 2)], n = b->shape[nb - (trans_b ? 2 : 1)];
    int nbatch;
    int64_t batch[TG_MAX_DIMS];
    if (k != kb || !tg_broadcast_shapes(na - 2, a->shape, nb - 2, b->shape, &nbatch, batch)) {
        tg_fail(tp, "matmul: %s%s and %s%s do not multiply (inner sizes %lld and %lld, batch "
                    "dims must broadcast)", TG_SHAPE_STR(a), trans_a ? "^T" : "",
                TG_SHAPE_STR(b), trans_b ? "^T" : "", (long long)k, (long long)kb);
        return NULL;
    }
    int64_t shape[TG_MAX_DIMS];
    for (int d = 0; d < nbatch; d++) shape[d] = batch[d];
    shape[nbatch] = m;
    shape[nbatch + 1] = n;
    tg_tensor *out = tg_tensor_alloc(tp, a->dtype, nbatch + 2, shape);
    if (!out) return NULL;

    /* Batch strides in elements; a batch dim a does not have reads the same matrix. */
    int64_t sa[TG_MAX_DIMS], sb[TG_MAX_DIMS];
    tg_broadcast_strides(na - 2, a->shape, nbatch, batch, sa);
    tg_broadcast_strides(nb - 2, b->shape, nbatch, batch, sb);
    bool b_shared = true;
    for (int d = 0; d < nbatch; d++) {
        sa[d] *= m * k;
        sb[d] *= k * n;
        b_shared &= sb[d] == 0;
    }
    const size_t es = tg_dtype_size(a->dtype);
    int64_t total = tg_shape_numel(nbatch, batch);
    const bool stack =
        b_shared && !trans_a && total > 1 && tg_shape_numel(na - 2, a->shape) == total;
    const int64_t rows = stack ? total * m : m; /* of one GEMM */
    void *scratch = NULL;
    if (tg_k_gemm_swaps(trans_a, trans_b, rows, n, 0.0)) {
        tg_tensor *s = tg_tensor_alloc(tp, a->dtype, 2, (int64_t[]){n, rows});
        if (!s) return NULL;
        scratch = s->data;
    }
    if (stack) {
        /* [B, M, K] x [K, N]: the batches of A stack into one [B*M, K] matrix */
        tg_k_gemm(a->dtype, false, trans_b, total * m, n, k, 1.0, a->data, b->data, 0.0,
                  out->data, scratch);
    } else {
        for (int64_t i = 0; i < total; i++) {
            int64_t rem = i, oa = 0, ob = 0;
            for (int d = nbatch - 1; d >= 0; d--) {
                int64_t c = rem % batch[d];
                rem /= batch[d];
                oa += c * sa[d];
                ob += c * sb[d];
            }
            tg_k_gemm(a->dtype, trans_a, trans_b, m, n, k, 1.0, (const char *)a->data + oa * es,
                      (const char *)b->data + ob * es, 0.0, (char *)out->data + i * m * n * es,
                      scratch);
        }
    }
    matmul_params p = {trans_a, trans_b};
    return tg_record(tp, &matmul_op, out, 2, in, &p, sizeof p) ? out : NULL;
}

tg_tensor *tg_matmul(tg_tape *tp, tg_tensor *a, tg_tensor *b) {
    return tg_matmul_trans(tp, a, false, b, false);
}
