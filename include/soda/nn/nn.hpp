// Layers and losses in PyTorch's spirit: Module, Linear, Conv2d, BatchNorm, activations, pooling,
// Dropout, Sequential, BasicBlock, initialisers, cross_entropy and mse_loss.
#pragma once

#include "soda/nn/activation.hpp"
#include "soda/nn/basic_block.hpp"
#include "soda/nn/batch_norm.hpp"
#include "soda/nn/conv2d.hpp"
#include "soda/nn/dropout.hpp"
#include "soda/nn/flatten.hpp"
#include "soda/nn/init.hpp"
#include "soda/nn/linear.hpp"
#include "soda/nn/loss.hpp"
#include "soda/nn/mode_guard.hpp"
#include "soda/nn/module.hpp"
#include "soda/nn/pooling.hpp"
#include "soda/nn/sequential.hpp"
