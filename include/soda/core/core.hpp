// The tensor core: shapes, storage, tensors, factories, kernels, printing and comparison.
// Nothing here knows about autodiff.
#pragma once

#include "soda/core/compare.hpp"
#include "soda/core/convert.hpp"
#include "soda/core/error.hpp"
#include "soda/core/factories.hpp"
#include "soda/core/generator.hpp"
#include "soda/core/kernels/elementwise.hpp"
#include "soda/core/kernels/gemm.hpp"
#include "soda/core/kernels/reduce.hpp"
#include "soda/core/parallel.hpp"
#include "soda/core/print.hpp"
#include "soda/core/shape.hpp"
#include "soda/core/tensor.hpp"
