#!/usr/bin/python3
"""lenet5 in PyTorch: the twin of examples/lenet5.c, which is examples/mnist.c with the model
fixed to seed 003's LeNet-5 and its recipe (the same recipe_for and train_mnist): so this is
mnist.py --model lenet5. Conv 1->6 k5, tanh, AvgPool 2, Conv 6->16 k5, tanh, AvgPool 2,
Linear 400->120->84->10 with tanh between, on x/255 zero-padded to 32x32, the notes' init; SGD
lr 0.1, batch 64, shuffled, 5 epochs. Ends with
  final test accuracy: 0.XXXX (5 epochs, S s)

  /usr/bin/python3 examples/pytorch/lenet5.py [mnist.py's options but --model]
"""
import sys

import mnist

if __name__ == "__main__":
    mnist.main(sys.argv[1:], program="lenet5", fixed_model="lenet5")
