/* The CIFAR-10 networks of seed 003 as tapegrad models (see cifar_models.h). A net is a list of
 * stages applied in order: a layer object (often a Sequential), or a block whose forward is a
 * function below. Shapes for a 32x32 input are noted beside each net. */
#include "cifar_models.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_STAGES = 16, MAX_DENSE_LAYERS = 4 };

/* GoogLeNet's Inception module (seed 003's InceptionModule): four branches over the same input,
 * joined along channels. No ReLU after a branch, as in the notes. */
typedef struct inception {
    tg_layer *b1;              /* 1x1 */
    tg_layer *b2_reduce, *b2;  /* 1x1, ReLU, 3x3 pad 1 */
    tg_layer *b3_reduce, *b3;  /* 1x1, ReLU, 5x5 pad 2 */
    tg_layer *b4_pool, *b4;    /* max 3x3 stride 1 pad 1, 1x1 */
} inception;

/* ResNet's basic block: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)); the shortcut is
 * a 1x1 convolution and batch norm (a Sequential) where the stride or the width changes, else
 * the identity (NULL). */
typedef struct residual {
    tg_layer *conv1, *bn1, *conv2, *bn2, *shortcut;
} residual;

/* DenseNet's dense block: layer i maps the concatenation of the input and every earlier
 * layer's output through BN, ReLU, 1x1 conv to 4 * growth channels, BN, ReLU, 3x3 conv to
 * growth channels; the block returns the concatenation of all of them. */
typedef struct dense_block {
    int n;
    tg_layer *norm1[MAX_DENSE_LAYERS], *conv1[MAX_DENSE_LAYERS];
    tg_layer *norm2[MAX_DENSE_LAYERS], *conv2[MAX_DENSE_LAYERS];
} dense_block;

typedef enum stage_kind { STAGE_LAYER, STAGE_INCEPTION, STAGE_RESIDUAL, STAGE_DENSE } stage_kind;

typedef struct stage {
    stage_kind kind;
    union {
        tg_layer *layer;
        inception inc;
        residual res;
        dense_block dense;
    };
} stage;

struct cifar_net {
    tg_model *model;
    tg_rng *rng;
    stage stages[MAX_STAGES];
    int n;
    bool ok;   /* false once any constructor failed */
};

/* ---- block forwards ---------------------------------------------------------------------- */

/* [N, C, H, W] -> [N, c_1x1 + c_3x3 + c_5x5 + c_pool, H, W] */
static tg_tensor *inception_forward(tg_tape *tp, const inception *b, tg_tensor *x) {
    tg_tensor *branch[4];
    branch[0] = tg_layer_forward(tp, b->b1, x);
    branch[1] = tg_layer_forward(tp, b->b2, tg_relu(tp, tg_layer_forward(tp, b->b2_reduce, x)));
    branch[2] = tg_layer_forward(tp, b->b3, tg_relu(tp, tg_layer_forward(tp, b->b3_reduce, x)));
    branch[3] = tg_layer_forward(tp, b->b4, tg_layer_forward(tp, b->b4_pool, x));
    return tg_concat(tp, 4, branch, 1);
}

/* [N, C, H, W] -> [N, C', H / stride, W / stride] */
static tg_tensor *residual_forward(tg_tape *tp, const residual *b, tg_tensor *x) {
    tg_tensor *out = tg_layer_forward(tp, b->bn1, tg_layer_forward(tp, b->conv1, x));
    out = tg_layer_forward(tp, b->bn2, tg_layer_forward(tp, b->conv2, tg_relu(tp, out)));
    tg_tensor *shortcut = b->shortcut ? tg_layer_forward(tp, b->shortcut, x) : x;
    return tg_relu(tp, tg_add(tp, out, shortcut));
}

/* [N, C, H, W] -> [N, C + n * growth, H, W] */
static tg_tensor *dense_block_forward(tg_tape *tp, const dense_block *b, tg_tensor *x) {
    tg_tensor *features[MAX_DENSE_LAYERS + 1] = {x};
    tg_tensor *all = x;
    for (int i = 0; i < b->n; i++) {
        tg_tensor *h = tg_relu(tp, tg_layer_forward(tp, b->norm1[i], all));
        h = tg_relu(tp, tg_layer_forward(tp, b->norm2[i], tg_layer_forward(tp, b->conv1[i], h)));
        features[i + 1] = tg_layer_forward(tp, b->conv2[i], h);
        all = tg_concat(tp, i + 2, features, 1);
    }
    return all;
}

tg_tensor *cifar_net_forward(tg_tape *tp, const cifar_net *net, tg_tensor *x) {
    for (int i = 0; i < net->n; i++) {
        const stage *s = &net->stages[i];
        switch (s->kind) {
        case STAGE_LAYER: x = tg_layer_forward(tp, s->layer, x); break;
        case STAGE_INCEPTION: x = inception_forward(tp, &s->inc, x); break;
        case STAGE_RESIDUAL: x = residual_forward(tp, &s->res, x); break;
        case STAGE_DENSE: x = dense_block_forward(tp, &s->dense, x); break;
        }
    }
    return x;
}

/* ---- building ------------------------------------------------------------------------------ */

/* l, remembering a failed constructor. */
static tg_layer *need(cifar_net *net, tg_layer *l) {
    if (!l) net->ok = false;
    return l;
}

/* The next stage, or NULL (and a failure) when the table is full. */
static stage *add_stage(cifar_net *net, stage_kind kind) {
    if (net->n == MAX_STAGES) {
        net->ok = false;
        return NULL;
    }
    stage *s = &net->stages[net->n++];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    return s;
}

static void layer_stage(cifar_net *net, tg_layer *l) {
    stage *s = add_stage(net, STAGE_LAYER);
    if (s) s->layer = need(net, l);
}

/* "prefix.local" in buf. */
static const char *dotted(char *buf, size_t size, const char *prefix, const char *local) {
    snprintf(buf, size, "%s.%s", prefix, local);
    return buf;
}

/* A k x k convolution with a bias (the notes' layers). */
static tg_layer *conv(cifar_net *net, const char *name, int64_t in, int64_t out, int64_t k,
                      int64_t stride, int64_t pad) {
    tg_conv2d_opts o = tg_conv2d_defaults();
    o.stride_h = o.stride_w = stride;
    o.pad_h = o.pad_w = pad;
    return need(net, tg_conv2d_new(net->model, name, in, out, k, k, &o, true, net->rng));
}

/* The same without a bias, for a convolution that batch norm follows (as torchvision's). */
static tg_layer *conv_nb(cifar_net *net, const char *name, int64_t in, int64_t out, int64_t k,
                         int64_t stride, int64_t pad) {
    tg_conv2d_opts o = tg_conv2d_defaults();
    o.stride_h = o.stride_w = stride;
    o.pad_h = o.pad_w = pad;
    return need(net, tg_conv2d_new(net->model, name, in, out, k, k, &o, false, net->rng));
}

/* BatchNorm2d with PyTorch's defaults (eps 1e-5, momentum 0.1, affine, running statistics). */
static tg_layer *batch_norm(cifar_net *net, const char *name, int64_t channels) {
    return need(net, tg_batch_norm2d_new(net->model, name, channels, 1e-5, 0.1, true, true));
}

static tg_layer *max_pool(cifar_net *net, const char *name, int64_t k, int64_t stride,
                          int64_t pad) {
    tg_pool2d_opts o = tg_pool2d_defaults(k, k);
    o.stride_h = o.stride_w = stride;
    o.pad_h = o.pad_w = pad;
    return need(net, tg_max_pool2d_new(net->model, name, &o));
}

static tg_layer *avg_pool(cifar_net *net, const char *name, int64_t k, int64_t stride) {
    tg_pool2d_opts o = tg_pool2d_defaults(k, k);
    o.stride_h = o.stride_w = stride;
    return need(net, tg_avg_pool2d_new(net->model, name, &o));
}

static tg_layer *relu(cifar_net *net, const char *name) {
    return need(net, tg_activation_new(net->model, name, TG_ACT_RELU, 0));
}

static tg_layer *linear(cifar_net *net, const char *name, int64_t in, int64_t out) {
    return need(net, tg_linear_new(net->model, name, in, out, true, net->rng));
}

/* A Sequential stage being filled: children are named "<name>.0", "<name>.1", ... */
typedef struct seq {
    tg_layer *layer;
    int len;
    char name[32], child[48];
} seq;

static void seq_begin(cifar_net *net, seq *s, const char *name) {
    snprintf(s->name, sizeof s->name, "%s", name);
    s->len = 0;
    s->layer = tg_sequential_new(net->model, name);
    layer_stage(net, s->layer);
}

/* The name of the next child. */
static const char *seq_next(seq *s) {
    snprintf(s->child, sizeof s->child, "%s.%d", s->name, s->len);
    return s->child;
}

static void seq_add(cifar_net *net, seq *s, tg_layer *child) {
    if (!s->layer || !child || tg_sequential_add(s->layer, child) != 0) net->ok = false;
    s->len++;
}

/* Conv 3x3 pad 1 and ReLU, the unit of AlexNet, VGG and GoogLeNet's stem. */
static void seq_conv_relu(cifar_net *net, seq *s, int64_t in, int64_t out) {
    seq_add(net, s, conv(net, seq_next(s), in, out, 3, 1, 1));
    seq_add(net, s, relu(net, seq_next(s)));
}

static void seq_max_pool(cifar_net *net, seq *s, int64_t k, int64_t stride) {
    seq_add(net, s, max_pool(net, seq_next(s), k, stride, 0));
}

/* The notes' LocalResponseNorm(n=5, alpha=1e-4, beta=0.75, k=2) computes
 * x / (k + alpha * sum of x^2 over 5 channels)^beta; PyTorch's layer divides alpha by the size,
 * so it is given 5 * alpha to compute the same. */
static void seq_lrn(cifar_net *net, seq *s) {
    seq_add(net, s, need(net, tg_local_response_norm_new(net->model, seq_next(s), 5, 5e-4, 0.75,
                                                          2.0)));
}

/* Flatten, then the classifier. */
static void flatten_stage(cifar_net *net) {
    layer_stage(net, tg_flatten_new(net->model, "flatten", 1, -1));
}

static void inception_stage(cifar_net *net, const char *name, int64_t in, int64_t c1,
                            int64_t c3_reduce, int64_t c3, int64_t c5_reduce, int64_t c5,
                            int64_t c_pool) {
    stage *s = add_stage(net, STAGE_INCEPTION);
    if (!s) return;
    char buf[64];
    inception *b = &s->inc;
    b->b1 = conv(net, dotted(buf, sizeof buf, name, "b1"), in, c1, 1, 1, 0);
    b->b2_reduce = conv(net, dotted(buf, sizeof buf, name, "b2_reduce"), in, c3_reduce, 1, 1, 0);
    b->b2 = conv(net, dotted(buf, sizeof buf, name, "b2"), c3_reduce, c3, 3, 1, 1);
    b->b3_reduce = conv(net, dotted(buf, sizeof buf, name, "b3_reduce"), in, c5_reduce, 1, 1, 0);
    b->b3 = conv(net, dotted(buf, sizeof buf, name, "b3"), c5_reduce, c5, 5, 1, 2);
    b->b4_pool = max_pool(net, dotted(buf, sizeof buf, name, "b4_pool"), 3, 1, 1);
    b->b4 = conv(net, dotted(buf, sizeof buf, name, "b4"), in, c_pool, 1, 1, 0);
}

static void residual_stage(cifar_net *net, const char *name, int64_t in, int64_t out,
                           int64_t stride) {
    stage *s = add_stage(net, STAGE_RESIDUAL);
    if (!s) return;
    char buf[64];
    residual *b = &s->res;
    b->conv1 = conv_nb(net, dotted(buf, sizeof buf, name, "conv1"), in, out, 3, stride, 1);
    b->bn1 = batch_norm(net, dotted(buf, sizeof buf, name, "bn1"), out);
    b->conv2 = conv_nb(net, dotted(buf, sizeof buf, name, "conv2"), out, out, 3, 1, 1);
    b->bn2 = batch_norm(net, dotted(buf, sizeof buf, name, "bn2"), out);
    if (stride == 1 && in == out) return;
    char sc[48];
    b->shortcut = need(net, tg_sequential_new(net->model, dotted(sc, sizeof sc, name, "shortcut")));
    tg_layer *parts[] = {conv_nb(net, dotted(buf, sizeof buf, sc, "0"), in, out, 1, stride, 0),
                         batch_norm(net, dotted(buf, sizeof buf, sc, "1"), out)};
    for (int i = 0; i < 2; i++)
        if (!b->shortcut || !parts[i] || tg_sequential_add(b->shortcut, parts[i]) != 0)
            net->ok = false;
}

static void dense_stage(cifar_net *net, const char *name, int n, int64_t in, int64_t growth) {
    stage *s = add_stage(net, STAGE_DENSE);
    if (!s || n > MAX_DENSE_LAYERS) {
        net->ok = false;
        return;
    }
    dense_block *b = &s->dense;
    b->n = n;
    for (int i = 0; i < n; i++) {
        char buf[64];
        snprintf(buf, sizeof buf, "%s.layer%d.norm1", name, i + 1);
        b->norm1[i] = batch_norm(net, buf, in + i * growth);
        snprintf(buf, sizeof buf, "%s.layer%d.conv1", name, i + 1);
        b->conv1[i] = conv_nb(net, buf, in + i * growth, 4 * growth, 1, 1, 0);
        snprintf(buf, sizeof buf, "%s.layer%d.norm2", name, i + 1);
        b->norm2[i] = batch_norm(net, buf, 4 * growth);
        snprintf(buf, sizeof buf, "%s.layer%d.conv2", name, i + 1);
        b->conv2[i] = conv_nb(net, buf, 4 * growth, growth, 3, 1, 1);
    }
}

/* AlexNet-style: [3, 32, 32] -> conv 32, pool, LRN -> [32, 16, 16] -> conv 64, pool, LRN ->
 * [64, 8, 8] -> conv 128, 128, 64, pool -> [64, 4, 4] -> 1024 -> 512 -> 512 -> 10, with
 * dropout 0.5 after both hidden linear layers. */
static void build_alexnet(cifar_net *net) {
    seq f, c;
    seq_begin(net, &f, "features");
    seq_conv_relu(net, &f, 3, 32);
    seq_max_pool(net, &f, 2, 2);
    seq_lrn(net, &f);
    seq_conv_relu(net, &f, 32, 64);
    seq_max_pool(net, &f, 2, 2);
    seq_lrn(net, &f);
    seq_conv_relu(net, &f, 64, 128);
    seq_conv_relu(net, &f, 128, 128);
    seq_conv_relu(net, &f, 128, 64);
    seq_max_pool(net, &f, 2, 2);
    flatten_stage(net);
    seq_begin(net, &c, "classifier");
    for (int i = 0; i < 2; i++) {
        seq_add(net, &c, linear(net, seq_next(&c), i == 0 ? 4 * 4 * 64 : 512, 512));
        seq_add(net, &c, relu(net, seq_next(&c)));
        seq_add(net, &c, need(net, tg_dropout_new(net->model, seq_next(&c), 0.5, net->rng)));
    }
    seq_add(net, &c, linear(net, seq_next(&c), 512, 10));
}

/* VGG11: eight 3x3 convolutions (64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M; M is a
 * 2x2 max pool) take [3, 32, 32] to [512, 1, 1]; then 512 -> 512 -> 10 (the notes shrink the
 * classifier from 4096 and leave out dropout). */
static void build_vgg11(cifar_net *net) {
    static const int64_t cfg[] = {64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0};
    seq f, c;
    seq_begin(net, &f, "features");
    int64_t in = 3;
    for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
        if (cfg[i] == 0) {
            seq_max_pool(net, &f, 2, 2);
        } else {
            seq_conv_relu(net, &f, in, cfg[i]);
            in = cfg[i];
        }
    }
    flatten_stage(net);
    seq_begin(net, &c, "classifier");
    seq_add(net, &c, linear(net, seq_next(&c), 512, 512));
    seq_add(net, &c, relu(net, seq_next(&c)));
    seq_add(net, &c, linear(net, seq_next(&c), 512, 10));
}

/* GoogLeNet: stem conv 32, conv 64, max pool 3/2 -> [64, 15, 15]; Inception (32, 16->64,
 * 8->16, 16) -> [128, 15, 15]; Inception (64, 32->96, 16->32, 32) -> [224, 15, 15]; max pool
 * 3/2 -> [224, 7, 7]; average pool 7 -> 224 -> 10. */
static void build_googlenet(cifar_net *net) {
    seq stem;
    seq_begin(net, &stem, "stem");
    seq_conv_relu(net, &stem, 3, 32);
    seq_conv_relu(net, &stem, 32, 64);
    seq_max_pool(net, &stem, 3, 2);
    inception_stage(net, "incep1", 64, 32, 16, 64, 8, 16, 16);
    inception_stage(net, "incep2", 128, 64, 32, 96, 16, 32, 32);
    layer_stage(net, max_pool(net, "pool2", 3, 2, 0));
    layer_stage(net, avg_pool(net, "final_pool", 7, 1));
    flatten_stage(net);
    layer_stage(net, linear(net, "fc", 224, 10));
}

/* ResNet: conv 16, BN, ReLU -> [16, 32, 32]; two residual blocks of 16; two of 32, the first
 * with stride 2 -> [32, 16, 16]; two of 64 -> [64, 8, 8]; global average pool -> 64 -> 10.
 * The notes' channel counts; batch norm where torchvision's ResNet has it (the notes leave it
 * out, and their He-initialized net can then diverge at their lr 0.01). */
static void build_resnet(cifar_net *net) {
    static const int64_t widths[] = {16, 32, 64};
    layer_stage(net, conv_nb(net, "conv1", 3, 16, 3, 1, 1));
    layer_stage(net, batch_norm(net, "bn1", 16));
    layer_stage(net, relu(net, "relu"));
    int64_t in = 16;
    for (int l = 0; l < 3; l++) {
        for (int b = 0; b < 2; b++) {
            char name[32];
            snprintf(name, sizeof name, "layer%d.%d", l + 1, b);
            residual_stage(net, name, in, widths[l], l > 0 && b == 0 ? 2 : 1);
            in = widths[l];
        }
    }
    layer_stage(net, need(net, tg_adaptive_avg_pool2d_new(net->model, "avgpool", 1, 1)));
    flatten_stage(net);
    layer_stage(net, linear(net, "fc", 64, 10));
}

/* DenseNet (growth 12, compression 0.5): conv 16 -> [16, 32, 32]; dense block of 3 layers ->
 * [52, 32, 32]; transition (BN, ReLU, 1x1 conv to 26, average pool 2) -> [26, 16, 16]; dense
 * block of 3 -> [62, 16, 16]; BN, ReLU, global average pool -> 62 -> 10. The notes' layers
 * with a batch norm before every ReLU, as torchvision's DenseNet (BN-ReLU-conv). */
static void build_densenet(cifar_net *net) {
    const int64_t growth = 12;
    int64_t c = 16;
    layer_stage(net, conv_nb(net, "conv0", 3, c, 3, 1, 1));
    dense_stage(net, "block1", 3, c, growth);
    c += 3 * growth;
    tg_layer *trans = need(net, tg_sequential_new(net->model, "trans1"));
    layer_stage(net, trans);
    tg_layer *parts[] = {batch_norm(net, "trans1.norm", c), relu(net, "trans1.relu"),
                         conv_nb(net, "trans1.conv", c, c / 2, 1, 1, 0),
                         avg_pool(net, "trans1.pool", 2, 2)};
    for (int i = 0; i < 4; i++)
        if (!trans || !parts[i] || tg_sequential_add(trans, parts[i]) != 0) net->ok = false;
    c /= 2;
    dense_stage(net, "block2", 3, c, growth);
    c += 3 * growth;
    layer_stage(net, batch_norm(net, "final_norm", c));
    layer_stage(net, relu(net, "final_relu"));
    layer_stage(net, need(net, tg_adaptive_avg_pool2d_new(net->model, "avgpool", 1, 1)));
    flatten_stage(net);
    layer_stage(net, linear(net, "fc", c, 10));
}

/* The notes' initialization: every conv and linear weight normal with std sqrt(2 / fan_in)
 * (He), their biases zero. Batch norm keeps PyTorch's (weight 1, bias 0). Returns 0 or -1. */
static int init_he(tg_model *m, tg_rng *rng) {
    for (int i = 0; i < tg_model_num_entries(m); i++) {
        tg_model_entry e = tg_model_entry_at(m, i);
        size_t len = strlen(e.name);
        int rc = 0;
        if (!e.is_buffer && tg_tensor_ndim(e.tensor) >= 2)
            rc = tg_init_kaiming_normal(e.tensor, rng, 0.0, TG_FAN_IN, "relu");
        else if (!e.is_buffer && len >= 5 && strcmp(e.name + len - 5, ".bias") == 0)
            rc = tg_init_constant(e.tensor, 0.0);
        if (rc != 0) return -1;
    }
    return 0;
}

static const char *const model_names[CIFAR_NUM_MODELS] = {"alexnet", "vgg11", "googlenet",
                                                          "resnet", "densenet"};

bool cifar_model_parse(const char *name, cifar_model_kind *kind) {
    for (int i = 0; i < CIFAR_NUM_MODELS; i++)
        if (strcmp(name, model_names[i]) == 0) {
            *kind = (cifar_model_kind)i;
            return true;
        }
    return false;
}

const char *cifar_model_name(cifar_model_kind kind) {
    return (unsigned)kind < CIFAR_NUM_MODELS ? model_names[kind] : "?";
}

cifar_recipe cifar_recipe_for(cifar_model_kind kind) {
    switch (kind) {
    case CIFAR_ALEXNET: return (cifar_recipe){32, 0.01};
    case CIFAR_VGG11: return (cifar_recipe){16, 0.001};
    case CIFAR_GOOGLENET: return (cifar_recipe){8, 0.001};
    case CIFAR_RESNET: return (cifar_recipe){16, 0.01};
    case CIFAR_DENSENET: break;
    }
    return (cifar_recipe){8, 0.01};
}

cifar_net *cifar_net_new(cifar_model_kind kind, tg_rng *rng) {
    static const char *const type_names[CIFAR_NUM_MODELS] = {"AlexNet", "VGG11", "GoogLeNet",
                                                             "ResNet", "DenseNet"};
    cifar_net *net = calloc(1, sizeof *net);
    if (!net) return NULL;
    net->model = tg_model_new(type_names[kind]);
    net->rng = rng;
    net->ok = net->model != NULL;
    if (net->ok) {
        switch (kind) {
        case CIFAR_ALEXNET: build_alexnet(net); break;
        case CIFAR_VGG11: build_vgg11(net); break;
        case CIFAR_GOOGLENET: build_googlenet(net); break;
        case CIFAR_RESNET: build_resnet(net); break;
        case CIFAR_DENSENET: build_densenet(net); break;
        }
    }
    if (!net->ok || init_he(net->model, rng) != 0) {
        cifar_net_free(net);
        return NULL;
    }
    return net;
}

void cifar_net_free(cifar_net *net) {
    if (!net) return;
    tg_model_free(net->model);
    free(net);
}

tg_model *cifar_net_model(const cifar_net *net) {
    return net->model;
}
