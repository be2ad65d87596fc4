// Batch-statistics normalisation, fused: normalize_channels(x) = (x − μ_c) / √(σ²_c + ε) with the
// mean and biased variance of each channel c over every axis but 1 (BatchNorm's x̂), and its
// companion channel_inverse_std(x) = 1 / √(σ²_c + ε). With r = 1/√(σ²+ε) and means per channel:
//   reverse  gx = r · (g − mean(g) − x̂ · mean(g · x̂))
//   forward  tx̂ = r · (tx − mean(tx) − x̂ · mean(x̂ · tx)),   tr = −r² · mean(x̂ · tx)
// Both reverse rules are written with differentiable ops (on x̂ and r themselves), so H·v through
// batch statistics stays exact at a fraction of the passes the op-by-op composition needs.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>

#include "soda/autodiff/ops/declarations.hpp"
#include "soda/autodiff/tangent.hpp"
#include "soda/core/parallel.hpp"

namespace soda {

namespace detail {

// [1, C, 1, ...] for an input of shape [N, C, ...]: how per-channel values broadcast against it.
inline Shape channel_view_shape(const Shape& shape) {
  Shape view(shape.size(), 1);
  view[1] = shape[1];
  return view;
}

inline void check_normalizable(const char* op, const Shape& shape, double eps) {
  if (shape.size() < 2) {
    throw ShapeError(std::string(op) + ": expects an input [N, C, ...] of rank >= 2, got " +
                     to_string(shape));
  }
  if (shape[1] > 0 && numel(shape) / shape[1] < 2) {
    throw ValueError(std::string(op) + ": needs more than one value per channel, got input " +
                     to_string(shape));
  }
  if (!(eps >= 0.0)) {
    throw ValueError(std::string(op) + ": eps must be non-negative, got " + std::to_string(eps));
  }
}

// Per-channel mean and biased variance of a contiguous [N, C, S] layout (two passes, in double,
// so a large mean does not cancel the variance away); channels run in parallel.
template <class T>
void channel_moments(const Tensor<T>& x, std::vector<double>& mean, std::vector<double>& var) {
  const std::int64_t batch = x.size(0), channels = x.size(1);
  const std::int64_t spatial = x.numel() / std::max<std::int64_t>(1, batch * channels);
  const double count = static_cast<double>(batch * spatial);
  mean.assign(static_cast<std::size_t>(channels), 0.0);
  var.assign(static_cast<std::size_t>(channels), 0.0);
  const T* data = x.raw_data();
  parallel_for(channels, 1, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t c = lo; c < hi; ++c) {
      double total = 0;
      for (std::int64_t n = 0; n < batch; ++n) {
        const T* row = data + (n * channels + c) * spatial;
        for (std::int64_t s = 0; s < spatial; ++s) total += static_cast<double>(row[s]);
      }
      const double mu = total / count;
      double squares = 0;
      for (std::int64_t n = 0; n < batch; ++n) {
        const T* row = data + (n * channels + c) * spatial;
        for (std::int64_t s = 0; s < spatial; ++s) {
          const double d = static_cast<double>(row[s]) - mu;
          squares += d * d;
        }
      }
      mean[static_cast<std::size_t>(c)] = mu;
      var[static_cast<std::size_t>(c)] = squares / count;
    }
  });
}

// x̂ from the moments: one pass, channels in parallel.
template <class T>
Tensor<T> normalize_kernel(const Tensor<T>& x, const std::vector<double>& mean,
                           const std::vector<double>& var, double eps) {
  const std::int64_t batch = x.size(0), channels = x.size(1);
  const std::int64_t spatial = x.numel() / std::max<std::int64_t>(1, batch * channels);
  auto out = Tensor<T>::empty(x.shape());
  const T* in = x.raw_data();
  T* result = out.raw_data();
  parallel_for(batch * channels, 1, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t row = lo; row < hi; ++row) {
      const auto c = static_cast<std::size_t>(row % channels);
      const T shift = static_cast<T>(mean[c]);
      const T scale = static_cast<T>(1.0 / std::sqrt(var[c] + eps));
      const T* src = in + row * spatial;
      T* dst = result + row * spatial;
      for (std::int64_t s = 0; s < spatial; ++s) dst[s] = (src[s] - shift) * scale;
    }
  });
  return out;
}

// Means over every axis of a tangent plane [k, N, C, ...] but k and C, kept as [k, 1, C, 1, ...].
template <class T>
Tensor<T> tangent_channel_mean(const Tensor<T>& t) {
  std::vector<std::int64_t> axes{1};
  for (std::int64_t a = 3; a < t.ndim(); ++a) axes.push_back(a);
  return mean(t, axes, true);
}

// The tangent of x̂ for a tangent plane tx: r · (tx − mean(tx) − x̂ · mean(x̂ · tx)).
template <class T>
Tensor<T> normalized_tangent(const Tensor<T>& tx, const Tensor<T>& normalized,
                             const Tensor<T>& inverse_std) {
  const auto centred = sub(tx, tangent_channel_mean(tx));
  const auto along = tangent_channel_mean(mul(tx, normalized));
  return mul(sub(centred, mul(normalized, along)), inverse_std);
}

// Records normalize_channels on x with precomputed moments (what batch_norm also needs for its
// running statistics, so they are computed once). r = 1/√(σ²+ε) from those moments is kept by the
// rules: the forward rule sees primal values only, and the reverse rule needs r as a
// differentiable function of x only when a tangent or the tape will see it.
template <class T>
Tensor<T> record_normalize_channels(const Tensor<T>& x, double eps,
                                    const std::vector<double>& channel_mean,
                                    const std::vector<double>& channel_var) {
  auto inverse_std = Tensor<T>::empty(channel_view_shape(x.shape()));
  for (std::size_t c = 0; c < channel_var.size(); ++c) {
    inverse_std.raw_data()[c] = static_cast<T>(1.0 / std::sqrt(channel_var[c] + eps));
  }
  return record_op<T>(
      "normalize_channels", {x}, normalize_kernel(x, channel_mean, channel_var, eps),
      [eps, inverse_std](const OpContext<T>& c, const Tensor<T>& g) {
        const auto& normalized = c.output;  // x̂, carrying its tangent when one rides on x
        const auto r = will_record(std::vector<Tensor<T>>{c.inputs[0]})
                           ? channel_inverse_std(c.inputs[0], eps)
                           : inverse_std;
        std::vector<std::int64_t> axes{0};
        for (std::int64_t a = 2; a < g.ndim(); ++a) axes.push_back(a);
        const auto centred = sub(g, mean(g, axes, true));
        const auto along = mean(mul(g, normalized), axes, true);
        return std::vector<Tensor<T>>{mul(sub(centred, mul(normalized, along)), r)};
      },
      [inverse_std](const OpContext<T>& c, const std::vector<Tensor<T>>& t) {
        return normalized_tangent(t[0], c.output, inverse_std);
      });
}

}  // namespace detail

template <class T>
Tensor<T> normalize_channels(const Tensor<T>& x, double eps) {
  detail::check_normalizable("normalize_channels", x.shape(), eps);
  const auto contiguous_x = x.is_contiguous() ? x : contiguous(x);
  std::vector<double> mean, var;
  detail::channel_moments(contiguous_x, mean, var);
  return detail::record_normalize_channels(contiguous_x, eps, mean, var);
}

template <class T>
Tensor<T> channel_inverse_std(const Tensor<T>& x, double eps) {
  detail::check_normalizable("channel_inverse_std", x.shape(), eps);
  const auto contiguous_x = x.is_contiguous() ? x : contiguous(x);
  std::vector<double> mean, var;
  detail::channel_moments(contiguous_x, mean, var);
  auto out = Tensor<T>::empty(detail::channel_view_shape(x.shape()));
  for (std::size_t c = 0; c < var.size(); ++c) {
    out.raw_data()[c] = static_cast<T>(1.0 / std::sqrt(var[c] + eps));
  }
  return record_op<T>(
      "channel_inverse_std", {contiguous_x}, out,
      // ∂r/∂x = −r² · x̂ / M, with M the count per channel.
      [eps](const OpContext<T>& c, const Tensor<T>& g) {
        const auto& input = c.inputs[0];
        // No channels (C = 0): an empty gradient, and no integer division by zero.
        const double count =
            static_cast<double>(input.numel() / std::max<std::int64_t>(1, input.size(1)));
        const auto r = c.output;
        const auto factor = mul(mul(r, r), g);
        return std::vector<Tensor<T>>{
            mul(normalize_channels(input, eps), mul(factor, Tensor<T>::scalar(T(-1.0 / count))))};
      },
      [eps](const OpContext<T>& c, const std::vector<Tensor<T>>& t) {
        const auto r = c.output;
        const auto along =
            detail::tangent_channel_mean(mul(t[0], normalize_channels(c.inputs[0], eps)));
        return mul(neg(mul(r, r)), along);
      });
}

}  // namespace soda
