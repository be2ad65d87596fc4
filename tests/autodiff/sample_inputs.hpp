// Sample inputs for every differentiable op, in the spirit of PyTorch's OpInfo sample_inputs and
// Stan Math's test framework: each op is checked five ways (check_op) over unit and empty extents,
// broadcasting, scalars, non-contiguous views (transposed, permuted, stepped, offset, expanded)
// and products large enough to reach BLAS. Every sample carries a name that says which op, which
// shapes and which views, so a failure points at one case.
#pragma once

#include <doctest/doctest.h>
#include <soda/soda.hpp>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "checks.hpp"

namespace soda_test::samples {

using Shape = soda::Shape;
using Tensors = std::vector<Tensor>;
using Body = std::function<Tensor(const Tensors&)>;

// How an operand reaches the op. The parameter (or constant) is stored contiguously and the view
// is applied inside the op, so finite differences perturb the values under the view.
enum class View {
  contiguous,
  transposed,     // last two axes swapped
  permuted,       // every axis reversed (rank >= 3)
  stepped,        // every other element of a longer last axis: inner stride 2
  offset,         // rows 1.. of a longer first axis: a non-zero storage offset
  expanded,       // the first axis of extent > 1 broadcast from extent 1: stride 0
  rank_expanded,  // the leading axis broadcast from a tensor without it
};

inline const std::vector<View>& every_view() {
  static const std::vector<View> views{View::contiguous,   View::transposed, View::permuted,
                                       View::stepped,      View::offset,     View::expanded,
                                       View::rank_expanded};
  return views;
}

inline std::string view_name(View view) {
  switch (view) {
    case View::contiguous:
      return "contiguous";
    case View::transposed:
      return "transposed";
    case View::permuted:
      return "permuted";
    case View::stepped:
      return "stepped";
    case View::offset:
      return "offset";
    case View::expanded:
      return "expanded";
    case View::rank_expanded:
      return "rank-expanded";
  }
  return "?";
}

// The stored shape of an operand of `shape` seen through `view`, and the view itself.
struct Layout {
  Shape stored;
  std::function<Tensor(const Tensor&)> apply;
};

inline std::optional<Layout> layout_for(View view, const Shape& shape) {
  const std::size_t rank = shape.size();
  Shape stored = shape;
  switch (view) {
    case View::contiguous:
      return Layout{stored, [](const Tensor& x) { return x; }};
    case View::transposed:
      if (rank < 2) return std::nullopt;
      std::swap(stored[rank - 1], stored[rank - 2]);
      return Layout{stored, [](const Tensor& x) { return soda::transpose(x, -1, -2); }};
    case View::permuted: {
      if (rank < 3) return std::nullopt;
      std::reverse(stored.begin(), stored.end());
      std::vector<std::int64_t> axes;
      for (std::size_t a = rank; a-- > 0;) axes.push_back(static_cast<std::int64_t>(a));
      return Layout{stored, [axes](const Tensor& x) { return soda::permute(x, axes); }};
    }
    case View::stepped: {
      if (rank < 1) return std::nullopt;
      const std::int64_t length = shape.back() == 0 ? 0 : 2 * shape.back() - 1;
      stored.back() = length;
      return Layout{stored, [length](const Tensor& x) { return soda::slice(x, -1, 0, length, 2); }};
    }
    case View::offset: {
      if (rank < 1) return std::nullopt;
      const std::int64_t rows = shape[0];
      stored[0] = rows + 1;
      return Layout{stored, [rows](const Tensor& x) { return soda::slice(x, 0, 1, rows + 1); }};
    }
    case View::expanded: {
      const auto axis = std::find_if(shape.begin(), shape.end(), [](auto d) { return d > 1; });
      if (axis == shape.end()) return std::nullopt;
      stored[static_cast<std::size_t>(axis - shape.begin())] = 1;
      return Layout{stored, [shape](const Tensor& x) { return soda::broadcast_to(x, shape); }};
    }
    case View::rank_expanded:
      if (rank < 1) return std::nullopt;
      stored.erase(stored.begin());
      return Layout{stored, [shape](const Tensor& x) { return soda::broadcast_to(x, shape); }};
  }
  return std::nullopt;
}

// The views that apply to an operand of `shape` (contiguous first), leaving out `excluded`.
inline std::vector<View> views_for(const Shape& shape, const std::vector<View>& excluded = {}) {
  std::vector<View> out;
  for (const auto view : every_view()) {
    const bool skip = std::find(excluded.begin(), excluded.end(), view) != excluded.end();
    if (!skip && layout_for(view, shape)) out.push_back(view);
  }
  return out;
}

// How an operand's stored values are drawn: each op asks for values away from its kinks and
// outside its singularities, so central differences see a smooth function.
using Draw = std::function<Tensor(const Shape&, soda::Generator&)>;

inline Draw normal_values() {
  return [](const Shape& shape, soda::Generator& gen) { return soda::randn<double>(shape, gen); };
}

// Uniform on [0.5, 2]: inside the domain of log, sqrt and x^p, and a safe divisor.
inline Draw positive_values() {
  return [](const Shape& shape, soda::Generator& gen) {
    return soda::rand<double>(shape, gen, 0.5, 2.0);
  };
}

// Standard normal values at least 0.1 away from each kink.
inline Draw values_avoiding(std::vector<double> kinks) {
  return [kinks](const Shape& shape, soda::Generator& gen) {
    return randn_avoiding(shape, gen, kinks, 0.1);
  };
}

// Values that differ pairwise by at least 0.2 (a shuffled grid with small noise), so a maximum
// (reduction or pooling window) never ties, whatever the grouping.
inline Draw distinct_values() {
  return [](const Shape& shape, soda::Generator& gen) {
    auto x = soda::rand<double>(shape, gen, 0.0, 1.0);
    const auto n = x.numel();
    std::vector<std::int64_t> order(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
    std::sort(order.begin(), order.end(),
              [&](std::int64_t a, std::int64_t b) { return x.data()[a] < x.data()[b]; });
    const auto noise = soda::rand<double>(shape, gen, -0.05, 0.05);
    for (std::int64_t rank = 0; rank < n; ++rank) {
      const auto i = order[static_cast<std::size_t>(rank)];
      x.data()[i] = 0.3 * static_cast<double>(rank - n / 2) + noise.data()[i];
    }
    return x;
  };
}

// Integers in [-2, 2] plus `phase` plus noise within ±0.05: two operands drawn with phases 0.3
// and 0.7 differ by at least 0.3 everywhere, so maximum and minimum stay away from ties.
inline Draw lattice_values(double phase) {
  return [phase](const Shape& shape, soda::Generator& gen) {
    auto x = soda::randint<std::int64_t>(shape, gen, -2, 3).to<double>();
    const auto noise = soda::rand<double>(shape, gen, -0.05, 0.05);
    for (std::int64_t i = 0; i < x.numel(); ++i) x.data()[i] += phase + noise.data()[i];
    return x;
  };
}

// One operand of a sample: its shape as the op sees it, how it gets there, and its values.
struct Operand {
  std::string label;
  Shape shape;
  View view = View::contiguous;
  bool constant = false;  // captured by the op instead of differentiated
  Draw draw = normal_values();
};

// One sample: an op of its parameters, named for the failure report.
struct Sample {
  std::string name;
  std::function<Tensor(const Params&)> op;
  Params params;
};

// FNV-1a: a seed per sample name, so a sample's values do not depend on which others exist.
inline std::uint64_t seed_of(const std::string& name) {
  std::uint64_t hash = 14695981039346656037ull;
  for (const char c : name) hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return hash;
}

inline std::string describe(const Operand& operand, const Tensor& seen) {
  std::string text = operand.label + " " + soda::to_string(operand.shape);
  if (operand.view != View::contiguous) {
    text += " " + view_name(operand.view) + " (strides " + soda::to_string(seen.strides()) +
            ", offset " + std::to_string(seen.offset()) + ")";
  }
  if (operand.constant) text += " constant";
  return text;
}

// Builds the sample `what` over `operands`: body receives every operand as the op sees it.
inline Sample make_sample(const std::string& what, const std::vector<Operand>& operands,
                          Body body) {
  soda::Generator gen(seed_of(what));
  std::vector<Layout> layouts;
  std::vector<Tensor> constants;
  std::vector<std::int64_t> parameter_of;  // index in params, or -1 for a constant
  Params params;
  std::string name = what + ":";
  for (const auto& operand : operands) {
    const auto layout = layout_for(operand.view, operand.shape);
    if (!layout) {
      throw std::logic_error("sample " + what + ": view " + view_name(operand.view) +
                             " does not apply to shape " + soda::to_string(operand.shape));
    }
    const auto value = operand.draw(layout->stored, gen);
    name += (layouts.empty() ? " " : ", ") + describe(operand, layout->apply(value));
    layouts.push_back(*layout);
    constants.push_back(operand.constant ? value : Tensor{});
    parameter_of.push_back(operand.constant ? -1 : static_cast<std::int64_t>(params.size()));
    if (!operand.constant) params.push_back(value);
  }
  auto op = [layouts, constants, parameter_of, body](const Params& p) {
    Tensors seen;
    for (std::size_t i = 0; i < layouts.size(); ++i) {
      const auto index = parameter_of[i];
      seen.push_back(
          layouts[i].apply(index >= 0 ? p[static_cast<std::size_t>(index)] : constants[i]));
    }
    return body(seen);
  };
  return {name, op, params};
}

// A one-operand sample for every shape in `shapes` and every view that applies to it.
inline std::vector<Sample> unary_samples(const std::string& what, const Body& body,
                                         const std::vector<Shape>& shapes,
                                         const Draw& draw = normal_values(),
                                         const std::vector<View>& excluded = {}) {
  std::vector<Sample> out;
  for (const auto& shape : shapes) {
    for (const auto view : views_for(shape, excluded)) {
      out.push_back(make_sample(what, {{"x", shape, view, false, draw}}, body));
    }
  }
  return out;
}

// The samples whose operands are all contiguous, summed to a scalar: each op's reverse rule then
// receives the broadcast (stride-0 in every axis) gradient that sum's own reverse rule gives.
inline std::vector<Sample> summed_samples(const std::vector<Sample>& samples) {
  std::vector<Sample> out;
  for (const auto& sample : samples) {
    if (sample.name.find("(strides") != std::string::npos) continue;
    const auto op = sample.op;
    out.push_back({"sum of " + sample.name, [op](const Params& p) { return soda::sum(op(p)); },
                   sample.params});
  }
  return out;
}

// Runs check_op on a sample and CHECKs its five parts; the sample's name is printed on failure.
inline void check_sample(const Sample& sample) {
  INFO("sample " << sample.name);
  OpReport report{};
  try {
    report = check_op(sample.op, sample.params);
  } catch (const std::exception& e) {
    FAIL_CHECK("threw: " << std::string(e.what()));
    return;
  }
  CHECK(report.gradient < 1e-6);
  CHECK(report.hvp < 1e-6);
  CHECK(report.jvp < 1e-6);
  CHECK(report.replay == 0);
  CHECK(report.stacked < 1e-12);
}

inline void check_samples(const std::vector<Sample>& samples) {
  for (const auto& sample : samples) check_sample(sample);
}

// A call that must be refused with the exception E, naming the op and the shapes.
struct Rejection {
  std::string name;
  std::function<void()> call;
  std::vector<std::string> mentions;  // parts the message must contain
};

template <class E = soda::ShapeError>
void check_rejections(const std::vector<Rejection>& rejections) {
  for (const auto& rejection : rejections) {
    INFO("rejection " << rejection.name);
    const auto message = message_of<E>(rejection.call);
    for (const auto& part : rejection.mentions) {
      INFO("message \"" << message << "\" should mention \"" << part << "\"");
      CHECK(contains(message, part));
    }
  }
}

}  // namespace soda_test::samples
