// The Hessian analysis layer in one include: the model's Hessian operator, top eigenvalues, trace,
// diagonal, eigenvalue density, per-layer curvature and the loss landscape.
#pragma once

#include "soda/hessian/density.hpp"
#include "soda/hessian/diagonal.hpp"
#include "soda/hessian/eigenvalues.hpp"
#include "soda/hessian/estimator.hpp"
#include "soda/hessian/hessian_operator.hpp"
#include "soda/hessian/lanczos.hpp"
#include "soda/hessian/landscape.hpp"
#include "soda/hessian/layer_report.hpp"
#include "soda/hessian/parameter_vector.hpp"
#include "soda/hessian/trace.hpp"
