// soda — second-order differentiable arrays. Include this one header for everything: tensors and
// kernels (core), autodiff with exact Hessian-vector products (autodiff), layers (nn), models,
// optimizers, training, Hessian analysis (hessian), integer kernels (quant), data and checkpoints.
#pragma once

#include "soda/autodiff/autodiff.hpp"
#include "soda/core/core.hpp"
#include "soda/data/cifar10.hpp"
#include "soda/data/data_loader.hpp"
#include "soda/data/dataset.hpp"
#include "soda/data/idx.hpp"
#include "soda/data/synthetic.hpp"
#include "soda/hessian/hessian.hpp"
#include "soda/io/safetensors.hpp"
#include "soda/io/state_dict.hpp"
#include "soda/models/classifiers.hpp"
#include "soda/models/resnet_cifar.hpp"
#include "soda/nn/nn.hpp"
#include "soda/optim/adahessian.hpp"
#include "soda/optim/adam.hpp"
#include "soda/optim/lr_schedule.hpp"
#include "soda/optim/optimizer.hpp"
#include "soda/optim/sgd.hpp"
#include "soda/quant/quant.hpp"
#include "soda/train/adaptive_batch_size.hpp"
#include "soda/train/adversarial.hpp"
#include "soda/train/large_batch.hpp"
#include "soda/train/progress.hpp"
#include "soda/train/trainer.hpp"
