/* bbox: seed 000's bounding-box regression. A small CNN looks at one 3-channel 28x28 image and
 * regresses the four corners of the object in it, normalized to [0, 1] as (left, top, right,
 * bottom); the loss is half the summed squared error and the optimizer Adam (lr 1e-2, 100
 * steps), as the notes train it on their cat photo. Here the image is generated: a coloured
 * rectangle on a noisy background, so the true box is known exactly.
 *
 * Prints the loss falling, the predicted and the true box and their IoU, and writes the image
 * (scaled 8x) with the true box in red and the predicted one in green as a binary PPM.
 * Exits 1 unless the IoU reaches 0.8.
 *
 *   bbox [--steps N] [--lr X] [--seed N] [--out PATH] [--help]
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <tapegrad.h>

#include "options.h"

enum { SIZE = 28, CHANNELS = 3, SCALE = 8 };

typedef struct options {
    int steps;
    double lr;
    uint64_t seed;
    const char *out;
} options;

/* A box as (left, top, right, bottom), each a fraction of the image side. */
typedef struct box { double x0, y0, x1, y1; } box;

/* Draws a noisy background and a rectangle of one random colour into pixels [SIZE, SIZE, 3]
 * (interleaved RGB bytes, as an image file holds them) and returns the rectangle. */
static box make_image(uint8_t *pixels, tg_rng *rng) {
    int bg[3], fg[3];
    for (int c = 0; c < 3; c++) {
        bg[c] = 60 + (int)tg_rng_below(rng, 80);
        fg[c] = (int)tg_rng_below(rng, 256);
    }
    int k = (int)tg_rng_below(rng, 3); /* one channel full and the next one dim: a vivid colour */
    fg[k] = 255;
    fg[(k + 1) % 3] = (int)tg_rng_below(rng, 100);
    int w = 8 + (int)tg_rng_below(rng, 11), h = 8 + (int)tg_rng_below(rng, 11);
    int x0 = 1 + (int)tg_rng_below(rng, (uint64_t)(SIZE - w - 1));
    int y0 = 1 + (int)tg_rng_below(rng, (uint64_t)(SIZE - h - 1));
    for (int y = 0; y < SIZE; y++)
        for (int x = 0; x < SIZE; x++) {
            bool inside = x >= x0 && x < x0 + w && y >= y0 && y < y0 + h;
            for (int c = 0; c < 3; c++) {
                int v = (inside ? fg[c] : bg[c]) + (int)tg_rng_below(rng, 61) - 30;
                pixels[(y * SIZE + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    return (box){(double)x0 / SIZE, (double)y0 / SIZE, (double)(x0 + w) / SIZE,
                 (double)(y0 + h) / SIZE};
}

/* The network input [1, 3, SIZE, SIZE]: the notes' ((pixel / 255) - 0.5), channels first. */
static tg_tensor *image_tensor(const uint8_t *pixels) {
    float chw[CHANNELS * SIZE * SIZE];
    for (int c = 0; c < CHANNELS; c++)
        for (int i = 0; i < SIZE * SIZE; i++)
            chw[c * SIZE * SIZE + i] = (float)pixels[i * 3 + c] / 255.0f - 0.5f;
    return tg_tensor_from(NULL, TG_F32, 4, (int64_t[]){1, CHANNELS, SIZE, SIZE}, chw);
}

static tg_conv2d_opts stride(int64_t s) {
    tg_conv2d_opts o = tg_conv2d_defaults();
    o.stride_h = o.stride_w = s;
    return o;
}

/* The notes' regression net as one Sequential "backbone": Conv 3->16 k3 s2, ReLU,
 * Conv 16->8 k3 s2, ReLU, Conv 8->8 k3, ReLU, Flatten, Linear 128->64, ReLU, Linear 64->4.
 * Sizes: 28 -> 13 -> 6 -> 4, and 8 * 4 * 4 = 128. NULL when a layer could not be made. */
static tg_layer *build_net(tg_model *m, tg_rng *rng) {
    tg_conv2d_opts s1 = stride(1), s2 = stride(2);
    tg_layer *layers[] = {
        tg_conv2d_new(m, "backbone.0", 3, 16, 3, 3, &s2, true, rng),
        tg_activation_new(m, "backbone.1", TG_ACT_RELU, 0),
        tg_conv2d_new(m, "backbone.2", 16, 8, 3, 3, &s2, true, rng),
        tg_activation_new(m, "backbone.3", TG_ACT_RELU, 0),
        tg_conv2d_new(m, "backbone.4", 8, 8, 3, 3, &s1, true, rng),
        tg_activation_new(m, "backbone.5", TG_ACT_RELU, 0),
        tg_flatten_new(m, "backbone.6", 1, -1),
        tg_linear_new(m, "backbone.7", 128, 64, true, rng),
        tg_activation_new(m, "backbone.8", TG_ACT_RELU, 0),
        tg_linear_new(m, "backbone.9", 64, 4, true, rng),
    };
    tg_layer *backbone = tg_sequential_new(m, "backbone");
    for (size_t i = 0; i < sizeof layers / sizeof *layers; i++)
        if (!backbone || tg_sequential_add(backbone, layers[i]) != 0) return NULL;
    return backbone;
}

/* Intersection over union of two boxes (0 when either is empty or they do not meet). */
static double iou(box a, box b) {
    double w = (a.x1 < b.x1 ? a.x1 : b.x1) - (a.x0 > b.x0 ? a.x0 : b.x0);
    double h = (a.y1 < b.y1 ? a.y1 : b.y1) - (a.y0 > b.y0 ? a.y0 : b.y0);
    double area_a = (a.x1 - a.x0) * (a.y1 - a.y0), area_b = (b.x1 - b.x0) * (b.y1 - b.y0);
    if (w <= 0 || h <= 0 || area_a <= 0 || area_b <= 0) return 0.0;
    return w * h / (area_a + area_b - w * h);
}

/* A box coordinate (a fraction) as a pixel column or row of an image of side n, kept within a
 * few pixels of the image whatever the network predicted (NaN included). */
static int to_pixel(double v, int n) {
    return (int)fmin(fmax(v * n, -4.0), n + 4.0);
}

/* Draws the outline of b, two pixels wide, into an RGB image of side n (clipped to it): just
 * inside the box, or just outside it, so that two boxes that agree both stay visible. */
static void draw_box(uint8_t *rgb, int n, box b, const uint8_t colour[3], bool outside) {
    int grow = outside ? 2 : 0;
    int x0 = to_pixel(b.x0, n) - grow, y0 = to_pixel(b.y0, n) - grow;
    int x1 = to_pixel(b.x1, n) - 1 + grow, y1 = to_pixel(b.y1, n) - 1 + grow;
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
            bool edge = x - x0 < 2 || x1 - x < 2 || y - y0 < 2 || y1 - y < 2;
            if (edge && x >= 0 && x < n && y >= 0 && y < n)
                memcpy(&rgb[(y * n + x) * 3], colour, 3);
        }
}

/* Writes the image scaled SCALE times as a binary PPM (P6), the true box drawn around its edge
 * and the predicted one inside its edge. */
static int write_ppm(const char *path, const uint8_t *pixels, box truth, box predicted) {
    enum { N = SIZE * SCALE };
    static uint8_t rgb[N * N * 3];
    for (int y = 0; y < N; y++)
        for (int x = 0; x < N; x++)
            memcpy(&rgb[(y * N + x) * 3], &pixels[((y / SCALE) * SIZE + x / SCALE) * 3], 3);
    draw_box(rgb, N, truth, (const uint8_t[3]){255, 0, 0}, true);
    draw_box(rgb, N, predicted, (const uint8_t[3]){0, 255, 0}, false);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    fprintf(f, "P6\n%d %d\n255\n", N, N);
    size_t written = fwrite(rgb, 1, sizeof rgb, f);
    return fclose(f) == 0 && written == sizeof rgb ? 0 : -1;
}

int main(int argc, char **argv) {
    options o = {.steps = 100, .lr = 1e-2, .seed = 3, .out = "bbox.ppm"};
    const option_def table[] = {
        {"--steps", OPT_INT, &o.steps, "N", "Adam steps (default 100)"},
        {"--lr", OPT_DOUBLE, &o.lr, "X", "learning rate (default 0.01)"},
        {"--seed", OPT_U64, &o.seed, "N", "seed of the image and the initial weights (default 3)"},
        {"--out", OPT_STRING, &o.out, "PATH",
         "the image with the true (red) and predicted (green) box\n(default bbox.ppm)"},
    };
    int parsed = options_parse(argc, argv, "bbox", table, sizeof table / sizeof table[0]);
    if (parsed != OPTIONS_RUN) return parsed;
    if (o.steps < 1 || !(o.lr > 0)) {
        fprintf(stderr, "bbox: --steps and --lr must be positive\n");
        return 2;
    }

    tg_rng *rng = tg_rng_new(o.seed);
    uint8_t pixels[SIZE * SIZE * 3];
    box truth = make_image(pixels, rng);
    tg_tensor *image = image_tensor(pixels);
    tg_tensor *target = tg_tensor_from(NULL, TG_F32, 2, (int64_t[]){1, 4},
                                       (const float[]){(float)truth.x0, (float)truth.y0,
                                                       (float)truth.x1, (float)truth.y1});
    tg_model *model = tg_model_new("Model");
    tg_layer *net = model ? build_net(model, rng) : NULL;
    tg_optim_opts adam = tg_optim_defaults(TG_OPTIM_ADAM);
    adam.lr = o.lr;
    tg_optim *optim = tg_optim_new(TG_OPTIM_ADAM, &adam);
    tg_tape *tp = tg_tape_new();
    if (!image || !target || !net || !optim || !tp ||
        tg_optim_add_model(optim, model, NULL, NULL, false, NULL) < 0) {
        fprintf(stderr, "bbox: setup failed: %s\n", tg_last_error());
        return 1;
    }
    tg_model_print(model, stdout);
    printf("true box (%.3f, %.3f, %.3f, %.3f)\n", truth.x0, truth.y0, truth.x1, truth.y1);

    float predicted[4] = {0};
    double first_loss = 0.0, loss_value = 0.0;
    for (int step = 0; step <= o.steps; step++) {
        tg_tape_reset(tp);
        tg_tensor *out = tg_layer_forward(tp, net, image); /* [1, 4] */
        /* the notes' loss: 0.5 * sum((gt - predict)^2) */
        tg_tensor *loss = tg_mul_scalar(tp, tg_mse_loss(tp, out, target, TG_REDUCTION_SUM), 0.5);
        if (!loss) {
            fprintf(stderr, "bbox: forward failed: %s\n", tg_tape_error(tp));
            return 1;
        }
        loss_value = tg_tensor_item(loss);
        memcpy(predicted, tg_tensor_data(out), sizeof predicted);
        if (step == 0) first_loss = loss_value;
        if (step % 10 == 0 || step == o.steps) printf("step %3d  loss %.3e\n", step, loss_value);
        if (step == o.steps) break; /* the last pass only measures */
        tg_optim_zero_grad(optim);
        if (tg_backward(tp, loss, NULL) != 0 || tg_optim_step(optim) != 0) {
            fprintf(stderr, "bbox: training failed: %s\n",
                    tg_tape_error(tp) ? tg_tape_error(tp) : tg_last_error());
            return 1;
        }
    }

    box pred = {predicted[0], predicted[1], predicted[2], predicted[3]};
    double score = iou(pred, truth);
    printf("predicted box (%.3f, %.3f, %.3f, %.3f)\n", pred.x0, pred.y0, pred.x1, pred.y1);
    printf("loss %.3e -> %.3e, IoU %.4f\n", first_loss, loss_value, score);
    int status = score >= 0.8 ? 0 : 1;
    if (write_ppm(o.out, pixels, truth, pred) != 0) {
        perror(o.out);
        status = 1;
    } else {
        printf("wrote %s (red: true box, green: predicted)\n", o.out);
    }

    tg_tape_free(tp);
    tg_optim_free(optim);
    tg_model_free(model);
    tg_tensor_free(image);
    tg_tensor_free(target);
    tg_rng_free(rng);
    return status;
}
