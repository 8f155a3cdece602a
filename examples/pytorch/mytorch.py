#!/usr/bin/python3
"""mytorch in PyTorch: the twin of examples/mytorch.c, which is examples/mnist.c with the model
fixed to seed 001's net and its recipe (the same recipe_for and train_mnist): so this is
mnist.py --model mytorch, followed by mytorch.c's comparison line. Conv 1->32 k3 s2 p1,
MaxPool 3/2, (Conv 32->64 k3 s2 p1, BatchNorm2d, ReLU), AvgPool 3, Flatten, Linear 64->10 on
(x/255 - 0.5)/0.5; AdamW lr 0.01, batch 10, cross-entropy with reduction "sum", 30 epochs over
the first 1,500 training images in order; tested in eval mode on the rest of the training file.
Ends with
  final test accuracy: 0.XXXX (30 epochs, S s)
  pytorch 0.XXXX   the post: 0.9248 (mytorch, numpy), 0.9153 (PyTorch)

  /usr/bin/python3 examples/pytorch/mytorch.py [mnist.py's options but --model]
"""
import sys

import mnist

# What the post reports on images 1,500..59,999 of the full training set (as mytorch.c).
POST_ACCURACY_NUMPY = 0.924752
POST_ACCURACY_TORCH = 0.915265

if __name__ == "__main__":
    acc = mnist.main(sys.argv[1:], program="mytorch", fixed_model="mytorch")
    print(f"pytorch {acc:.4f}   the post: {POST_ACCURACY_NUMPY:.4f} (mytorch, numpy), "
          f"{POST_ACCURACY_TORCH:.4f} (PyTorch)")
