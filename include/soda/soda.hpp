// soda — second-order differentiable arrays. Include this one header for everything:
// tensors and kernels (core), autodiff with exact Hessian-vector products (autodiff).
#pragma once

#include "soda/core/core.hpp"
#include "soda/autodiff/autodiff.hpp"
