/* Internal side of layer objects. A layer type is a small table (name, forward, the text of its
 * repr, optional destructor); a concrete layer is a struct that begins with tg_layer and is
 * allocated and registered by tg_layer_create. Parameters are registered through the layer so
 * they get the "<layer name>.<local name>" keys PyTorch's state_dict uses. */
#ifndef TG_NN_LAYER_H
#define TG_NN_LAYER_H

#include "tapegrad.h"

typedef struct tg_layer_type {
    const char *name;  /* PyTorch's class name: "Conv2d" */
    /* x -> y on tp; NULL for layers stepped by their own functions (recurrent cells). */
    tg_tensor *(*forward)(tg_tape *tp, tg_layer *self, tg_tensor *x);
    /* Writes the text between the parentheses of the repr ("1, 16, kernel_size=(3, 3)"). */
    void (*describe)(const tg_layer *self, char *buf, size_t size);
    /* Frees what the concrete layer allocated itself (not its registered tensors); or NULL. */
    void (*destroy)(tg_layer *self);
} tg_layer_type;

struct tg_layer {
    const tg_layer_type *type;
    tg_model *model;
    char *name;
};

/* Allocates a zeroed layer struct of `size` bytes (>= sizeof(tg_layer)) and registers it under
 * name. NULL with tg_last_error for a NULL model, an empty or duplicate name, or no memory. */
tg_layer *tg_layer_create(tg_model *m, const char *name, const tg_layer_type *type, size_t size);
/* Registers t as "<layer name>.<local>" (parameter or buffer); NULL on failure (t freed). */
tg_tensor *tg_layer_add_param(tg_layer *l, const char *local, tg_tensor *t);
tg_tensor *tg_layer_add_buffer(tg_layer *l, const char *local, tg_tensor *t);

/* "(3, 3)" when h != w, "3" when equal: how PyTorch prints an int or a pair it was given. */
void tg_format_pair(char *buf, size_t size, int64_t h, int64_t w, bool as_tuple);

/* A double as Python's repr prints it in module reprs: "0.1", "1e-05", "1.0". */
void tg_format_float(char *buf, size_t size, double v);

#endif
