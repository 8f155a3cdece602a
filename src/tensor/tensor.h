/* Internal view of tensors and of the tape's memory: the struct behind the opaque tg_tensor,
 * shape helpers, error reporting, and allocation of tensors in either lifetime. Everything under
 * src/ includes this; users see only include/tapegrad.h. */
#ifndef TG_TENSOR_INTERNAL_H
#define TG_TENSOR_INTERNAL_H

#include "tapegrad.h"
#include "tensor/arena.h"
#include "tensor/shape.h"

struct tg_node;

struct tg_tensor {
    tg_dtype dtype;
    int ndim;
    bool requires_grad;
    int64_t numel;
    int64_t shape[TG_MAX_DIMS];
    void *data;
    uint32_t *version;     /* shared by a tensor and its views; points at own_version of the base */
    uint32_t own_version;
    uint32_t epoch;        /* the tape's epoch at creation (tape tensors only) */
    struct tg_tape *tape;  /* owning tape; NULL for persistent tensors */
    struct tg_node *node;  /* the op that computed it; NULL for leaves */
    tg_tensor *grad;       /* accumulated gradient of a leaf */
};

/* The parts of the tape the tensor layer allocates from; the tape layer owns the rest. */
struct tg_tape {
    tg_arena arena;
    uint32_t epoch;        /* incremented by every reset, to catch tensors from an older step */
    bool grad_enabled;
    bool has_error;
    char error[512];
    struct tg_node *last_node;
    int64_t n_nodes;
};

/* ---- errors ---------------------------------------------------------------------------- */

/* Records the first error of the tape (later ones are dropped); with tp == NULL, sets the
 * thread's last error. printf-style. */
void tg_fail(tg_tape *tp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tg_set_last_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tg_clear_last_error(void);

/* "[2, 3]" into buf; returns buf. */
char *tg_shape_str(char *buf, size_t size, int ndim, const int64_t *shape);
#define TG_SHAPE_STR(t) tg_shape_str((char[96]){0}, 96, (t)->ndim, (t)->shape)

/* ---- allocation ------------------------------------------------------------------------ */

/* An uninitialised tensor of the given shape on tp (arena) or persistent (tp == NULL). The
 * shape must already be valid. NULL when out of memory (error recorded). */
tg_tensor *tg_tensor_alloc(tg_tape *tp, tg_dtype dtype, int ndim, const int64_t *shape);
/* A tensor on tp sharing x's storage and version counter with a new shape of equal numel. */
tg_tensor *tg_tensor_view(tg_tape *tp, tg_tensor *x, int ndim, const int64_t *shape);
/* Zeros with x's dtype and shape on tp. */
tg_tensor *tg_zeros_like(tg_tape *tp, const tg_tensor *x);

static inline bool tg_is_float(tg_dtype dt) { return dt == TG_F32 || dt == TG_F64; }

/* Bumps the modification counter of t and of every view of its storage. */
static inline void tg_tensor_bump_version(tg_tensor *t) { (*t->version)++; }

#endif
