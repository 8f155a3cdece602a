/* The five CIFAR-10 networks of seed 003 (AlexNet-style, VGG11, GoogLeNet, ResNet, DenseNet)
 * for the cifar example: each built as layer objects in a tg_model under the state_dict names
 * of the equivalent PyTorch module (a checkpoint loads into it with strict=True), with the
 * notes' channel counts and He initialization, and the notes' training recipe (SGD, batch
 * size, learning rate). ResNet and DenseNet add batch norm where torchvision's versions have
 * it, which the notes leave out. The blocks (Inception module, residual block, dense block)
 * are C functions composing the layers' forwards with tg_relu, tg_add and tg_concat. Uses
 * only the public API. */
#ifndef CIFAR_MODELS_H
#define CIFAR_MODELS_H

#include <tapegrad.h>

typedef enum cifar_model_kind {
    CIFAR_ALEXNET,
    CIFAR_VGG11,
    CIFAR_GOOGLENET,
    CIFAR_RESNET,
    CIFAR_DENSENET,
} cifar_model_kind;

enum { CIFAR_NUM_MODELS = 5 };

/* "alexnet", "vgg11", "googlenet", "resnet", "densenet" -> kind; false for another name. */
bool cifar_model_parse(const char *name, cifar_model_kind *kind);
const char *cifar_model_name(cifar_model_kind kind);

/* How the notes train a net (plain SGD on the mean cross-entropy): batch size and lr. */
typedef struct cifar_recipe {
    int64_t batch;
    double lr;
} cifar_recipe;
cifar_recipe cifar_recipe_for(cifar_model_kind kind);

typedef struct cifar_net cifar_net;

/* Builds the net, its parameters drawn from rng (He normal weights, zero biases, as the notes
 * initialize them); rng is also borrowed by the dropout layers. NULL with tg_last_error. */
cifar_net *cifar_net_new(cifar_model_kind kind, tg_rng *rng);
void cifar_net_free(cifar_net *net);
/* The parameters, buffers and training flag. */
tg_model *cifar_net_model(const cifar_net *net);
/* x: [N, 3, 32, 32] -> logits [N, 10] on tp (NULL with the error on the tape). */
tg_tensor *cifar_net_forward(tg_tape *tp, const cifar_net *net, tg_tensor *x);

#endif
