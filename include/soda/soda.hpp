// soda — second-order differentiable arrays. Include this one header for everything:
// tensors and kernels (core), autodiff with exact Hessian-vector products (autodiff).
#pragma once

#include "soda/autodiff/autodiff.hpp"
#include "soda/core/core.hpp"
#include "soda/data/cifar10.hpp"
#include "soda/data/data_loader.hpp"
#include "soda/data/dataset.hpp"
#include "soda/data/idx.hpp"
#include "soda/data/synthetic.hpp"
#include "soda/io/safetensors.hpp"
