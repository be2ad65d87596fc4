// Differentiable ops and the autodiff entry points: reverse mode (grad, backward),
// forward mode (jvp), forward-over-reverse (hvp, value_grad_hvp) and hessian_at.
#pragma once

#include "soda/autodiff/engine.hpp"
#include "soda/autodiff/functional.hpp"
#include "soda/autodiff/grad_mode.hpp"
#include "soda/autodiff/hessian_at.hpp"
#include "soda/autodiff/node.hpp"
#include "soda/autodiff/ops/arithmetic.hpp"
#include "soda/autodiff/ops/compare.hpp"
#include "soda/autodiff/ops/convolution.hpp"
#include "soda/autodiff/ops/indexing.hpp"
#include "soda/autodiff/ops/join.hpp"
#include "soda/autodiff/ops/matmul.hpp"
#include "soda/autodiff/ops/normalization.hpp"
#include "soda/autodiff/ops/pooling.hpp"
#include "soda/autodiff/ops/reduce.hpp"
#include "soda/autodiff/ops/softmax.hpp"
#include "soda/autodiff/ops/unary.hpp"
#include "soda/autodiff/ops/views.hpp"
