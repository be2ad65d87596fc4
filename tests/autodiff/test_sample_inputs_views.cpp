// Sample inputs for the view, join and indexing ops (autodiff/ops/views.hpp, join.hpp,
// indexing.hpp): each over unit, empty and scalar shapes, with its input seen through every view.
#include <doctest/doctest.h>
#include <soda/soda.hpp>

#include "sample_inputs.hpp"

namespace soda_test::samples {
namespace {

using Axes = std::vector<std::int64_t>;

// One op of one input of `shape`, over every view of that input.
void add_view_samples(std::vector<Sample>& out, const std::string& what, const Shape& shape,
                      const std::function<Tensor(const Tensor&)>& f) {
  auto more = unary_samples(what, [f](const Tensors& x) { return f(x[0]); }, {shape});
  out.insert(out.end(), more.begin(), more.end());
}

std::vector<Sample> view_op_samples() {
  std::vector<Sample> out;
  const std::vector<std::pair<Shape, Shape>> reshapes{
      {{2, 3}, {3, 2}},    {{2, 3}, {6}},       {{2, 3}, {1, 6, 1}}, {{2, 3}, {-1, 2}},
      {{2, 3, 2}, {6, 2}}, {{2, 3, 2}, {2, 6}}, {{1}, {}},           {{}, {1, 1}},
      {{0, 3}, {3, 0}},    {{2, 0, 3}, {0, 6}}, {{3, 1}, {1, 3}}};
  for (const auto& pair : reshapes) {
    const auto from = pair.first;
    const auto to = pair.second;  // captured below: no structured binding
    add_view_samples(out, "reshape to " + soda::to_string(to), from,
                     [to](const Tensor& x) { return soda::reshape(x, to); });
  }
  const std::vector<std::pair<Shape, Axes>> permutes{
      {{2, 3}, {1, 0}}, {{2, 1, 3}, {2, 0, 1}}, {{2, 3, 2}, {1, 2, 0}}, {{1, 0, 2}, {2, 1, 0}}};
  for (const auto& pair : permutes) {
    const auto shape = pair.first;
    const auto axes = pair.second;  // captured below: no structured binding
    add_view_samples(out, "permute " + soda::to_string(axes), shape,
                     [axes](const Tensor& x) { return soda::permute(x, axes); });
  }
  add_view_samples(out, "transpose 0 -1", {2, 3, 2},
                   [](const Tensor& x) { return soda::transpose(x, 0, -1); });
  const std::vector<std::pair<Shape, Shape>> broadcasts{
      {{3}, {2, 3}}, {{1}, {2, 2}},    {{}, {2, 3}},    {{2, 1}, {2, 4}}, {{2, 1, 3}, {4, 2, 2, 3}},
      {{0}, {2, 0}}, {{1, 3}, {0, 3}}, {{1, 1}, {1, 1}}};
  for (const auto& pair : broadcasts) {
    const auto from = pair.first;
    const auto to = pair.second;  // captured below: no structured binding
    add_view_samples(out, "broadcast_to " + soda::to_string(to), from,
                     [to](const Tensor& x) { return soda::broadcast_to(x, to); });
  }
  struct SliceCase {
    Shape shape;
    std::int64_t axis, start, stop, step;
  };
  const std::vector<SliceCase> slices{
      {{5, 3}, 0, 1, 4, 2}, {{5, 3}, 1, 0, 3, 2}, {{5, 3}, 0, -2, 5, 1}, {{5, 3}, 0, 3, 3, 1},
      {{4}, 0, 1, 100, 3},  {{2, 3}, 1, 0, 3, 1}, {{1, 3}, 0, 0, 1, 5},  {{0, 3}, 1, 1, 3, 1}};
  for (const auto& s : slices) {
    const std::string what = "slice axis " + std::to_string(s.axis) + " " +
                             std::to_string(s.start) + ":" + std::to_string(s.stop) + ":" +
                             std::to_string(s.step);
    add_view_samples(out, what, s.shape, [s](const Tensor& x) {
      return soda::slice(x, s.axis, s.start, s.stop, s.step);
    });
  }
  struct ScatterCase {
    Shape source, target;
    std::int64_t axis, start, stop, step;
  };
  const std::vector<ScatterCase> scatters{{{2, 3}, {5, 3}, 0, 1, 5, 2},
                                          {{2, 2}, {2, 3}, 1, 1, 3, 1},
                                          {{1, 3}, {1, 3}, 0, 0, 1, 1},
                                          {{0, 3}, {4, 3}, 0, 2, 2, 1}};
  for (const auto& s : scatters) {
    add_view_samples(out, "slice_scatter into " + soda::to_string(s.target), s.source,
                     [s](const Tensor& x) {
                       return soda::slice_scatter(x, s.target, s.axis, s.start, s.stop, s.step);
                     });
  }
  add_view_samples(out, "select axis 0 index -1", {2, 3, 2},
                   [](const Tensor& x) { return soda::select(x, 0, -1); });
  add_view_samples(out, "select axis 1 index 0", {2, 3, 2},
                   [](const Tensor& x) { return soda::select(x, 1, 0); });
  add_view_samples(out, "select axis 0 index 0", {1, 3},
                   [](const Tensor& x) { return soda::select(x, 0, 0); });
  for (const std::int64_t axis : {0, 1, -1}) {
    add_view_samples(out, "unsqueeze " + std::to_string(axis), {2, 3},
                     [axis](const Tensor& x) { return soda::unsqueeze(x, axis); });
  }
  add_view_samples(out, "unsqueeze 0", {}, [](const Tensor& x) { return soda::unsqueeze(x, 0); });
  add_view_samples(out, "squeeze 1", {2, 1, 3},
                   [](const Tensor& x) { return soda::squeeze(x, 1); });
  add_view_samples(out, "squeeze 0", {1}, [](const Tensor& x) { return soda::squeeze(x, 0); });
  add_view_samples(out, "squeeze -1", {1, 1}, [](const Tensor& x) { return soda::squeeze(x, -1); });
  for (const std::int64_t axis : {0, 1, -1}) {
    add_view_samples(out, "flatten " + std::to_string(axis), {2, 3, 2},
                     [axis](const Tensor& x) { return soda::flatten(x, axis); });
  }
  add_view_samples(out, "flatten 0", {}, [](const Tensor& x) { return soda::flatten(x, 0); });
  add_view_samples(out, "flatten 1", {2, 0, 3},
                   [](const Tensor& x) { return soda::flatten(x, 1); });
  for (const Shape& shape : {Shape{2, 3}, Shape{2, 1, 3}, Shape{}, Shape{0, 2}}) {
    add_view_samples(out, "contiguous", shape, [](const Tensor& x) { return soda::contiguous(x); });
    add_view_samples(out, "clone", shape, [](const Tensor& x) { return soda::clone(x); });
  }
  return out;
}

Body concat_body(std::int64_t axis) {
  return [axis](const Tensors& x) { return soda::concat(x, axis); };
}

Body stack_body(std::int64_t axis) {
  return [axis](const Tensors& x) { return soda::stack(x, axis); };
}

std::vector<Sample> join_samples() {
  std::vector<Sample> out;
  // Pieces of unequal lengths (one of them empty) along each axis, each piece in every view.
  const std::vector<std::pair<std::int64_t, std::vector<Shape>>> concats{
      {0, {{2, 3}, {1, 3}, {0, 3}}},
      {1, {{2, 3}, {2, 1}}},
      {-1, {{2, 1, 2}, {2, 1, 3}}},
      {1, {{2, 1, 3}, {2, 2, 3}}},
      {0, {{4}}},
      {0, {{1}, {1}}},
      {0, {{0, 2}, {0, 2}}}};
  for (const auto& [axis, shapes] : concats) {
    const std::string what = "concat axis " + std::to_string(axis);
    for (std::size_t i = 0; i < shapes.size(); ++i) {
      for (const auto view : views_for(shapes[i])) {
        std::vector<Operand> pieces;
        for (std::size_t j = 0; j < shapes.size(); ++j)
          pieces.push_back(
              {"piece " + std::to_string(j), shapes[j], j == i ? view : View::contiguous});
        out.push_back(make_sample(what, pieces, concat_body(axis)));
      }
    }
  }
  out.push_back(make_sample(
      "concat axis 0",
      {{"piece 0", {2, 3}, View::transposed, true}, {"piece 1", {1, 3}, View::expanded}},
      concat_body(0)));
  out.push_back(make_sample("concat of x with itself, axis 1", {{"x", {2, 3}, View::stepped}},
                            [](const Tensors& x) {
                              return soda::concat({x[0], x[0]}, 1);
                            }));
  for (const std::int64_t axis : {0, 1, -1}) {
    for (const auto view : views_for({2, 3})) {
      out.push_back(make_sample(
          "stack axis " + std::to_string(axis),
          {{"piece 0", {2, 3}, view}, {"piece 1", {2, 3}}, {"piece 2", {2, 3}, View::offset, true}},
          stack_body(axis)));
    }
  }
  out.push_back(make_sample("stack axis 0", {{"piece 0", {}}, {"piece 1", {}}}, stack_body(0)));
  out.push_back(
      make_sample("stack axis 1", {{"piece 0", {0, 2}}, {"piece 1", {0, 2}}}, stack_body(1)));
  out.push_back(make_sample("stack axis 0", {{"piece 0", {1, 1}}}, stack_body(0)));
  return out;
}

// A valid index tensor of `shape` with values in [0, bound), drawn from `seed`.
Index index_values(const Shape& shape, std::int64_t bound, std::uint64_t seed) {
  soda::Generator gen(seed);
  return soda::randint<std::int64_t>(shape, gen, 0, bound);
}

std::string index_text(const Index& index) {
  return "index " + soda::to_string(index.shape()) + " strides " + soda::to_string(index.strides());
}

std::vector<Sample> indexing_samples() {
  std::vector<Sample> out;
  struct SelectCase {
    Shape shape;
    std::int64_t axis;
    std::vector<std::int64_t> indices;
  };
  const std::vector<SelectCase> selects{
      {{4, 3}, 0, {3, 0, 3}},       {{4, 3}, 1, {2}}, {{4, 3}, -1, {}}, {{1, 3}, 0, {0, 0}},
      {{2, 3, 2}, 1, {1, 2, 1, 0}}, {{0, 3}, 1, {1}}};
  for (const auto& s : selects) {
    const std::string indices = "indices " + soda::to_string(s.indices);
    add_view_samples(out, "index_select axis " + std::to_string(s.axis) + " " + indices, s.shape,
                     [s](const Tensor& x) { return soda::index_select(x, s.axis, s.indices); });
    Shape source = s.shape;
    const auto axis = soda::normalize_axis(s.axis, static_cast<std::int64_t>(s.shape.size()), "");
    source[static_cast<std::size_t>(axis)] = static_cast<std::int64_t>(s.indices.size());
    add_view_samples(
        out, "index_add into " + soda::to_string(s.shape) + " " + indices, source,
        [s](const Tensor& x) { return soda::index_add(x, s.shape, s.axis, s.indices); });
  }
  struct GatherCase {
    Shape shape;
    std::int64_t axis;
    Shape index_shape;
    bool transposed_index;  // the index itself a non-contiguous view
  };
  const std::vector<GatherCase> gathers{
      {{3, 4}, 1, {3, 2}, false}, {{3, 4}, 0, {5, 4}, false}, {{3, 4}, 1, {2, 3}, true},
      {{1, 1}, 1, {1, 3}, false}, {{3, 4}, 1, {0, 2}, false}, {{2, 3, 2}, 1, {2, 4, 1}, false},
      {{3, 4}, -1, {3, 1}, false}};
  std::uint64_t seed = 1;
  for (const auto& g : gathers) {
    const auto axis = soda::normalize_axis(g.axis, static_cast<std::int64_t>(g.shape.size()), "");
    const auto bound = g.shape[static_cast<std::size_t>(axis)];
    Index index;
    if (g.transposed_index) {
      Shape stored = g.index_shape;
      std::swap(stored[0], stored[1]);
      index = soda::transpose(index_values(stored, bound, ++seed), 0, 1);
    } else {
      index = index_values(g.index_shape, bound, ++seed);
    }
    const std::string what = "axis " + std::to_string(g.axis) + " " + index_text(index);
    add_view_samples(out, "gather " + what, g.shape,
                     [g, index](const Tensor& x) { return soda::gather(x, g.axis, index); });
    add_view_samples(
        out, "scatter_add into " + soda::to_string(g.shape) + " " + what, g.index_shape,
        [g, index](const Tensor& x) { return soda::scatter_add(x, g.shape, g.axis, index); });
  }
  return out;
}

}  // namespace

TEST_CASE("sample inputs: view ops over unit, empty and scalar shapes, from every view") {
  check_samples(view_op_samples());
}

TEST_CASE("sample inputs: concat and stack of pieces in every view, empty pieces included") {
  check_samples(join_samples());
}

TEST_CASE("sample inputs: index_select, index_add, gather and scatter_add from every view") {
  check_samples(indexing_samples());
}

TEST_CASE("sample inputs: view and join ops refuse shapes they cannot take, naming them") {
  const auto x = soda::ones<double>({2, 3});
  check_rejections({
      {"reshape of [2, 3] to [4]",
       [&] { (void)soda::reshape(x, {4}); },
       {"reshape", "[2, 3]", "[4]"}},
      {"broadcast_to of [2, 3] to [3, 3]",
       [&] {
         (void)soda::broadcast_to(x, {3, 3});
       },
       {"broadcast_to", "[2, 3]", "[3, 3]"}},
      {"squeeze of a non-unit axis", [&] { (void)soda::squeeze(x, 1); }, {"squeeze", "[2, 3]"}},
      {"slice_scatter of a source that does not fill the slice",
       [&] {
         (void)soda::slice_scatter(x, {5, 3}, 0, 0, 5, 2);
       },
       {"slice_scatter", "[2, 3]", "[3, 3]"}},
      {"index_add of a source of the wrong length",
       [&] {
         (void)soda::index_add(x, {4, 3}, 0, {1});
       },
       {"index_add", "[2, 3]", "[1, 3]"}},
      {"gather with an index longer than the tensor off its axis",
       [&] {
         (void)soda::gather(x, 1, soda::zeros<std::int64_t>({3, 1}));
       },
       {"gather", "[3, 1]", "[2, 3]"}},
      {"concat of an empty piece of another width",
       [&] {
         (void)soda::concat({x, soda::ones<double>({0, 2})}, 0);
       },
       {"concat", "[2, 3]", "[0, 2]"}},
  });
}

TEST_CASE("sample inputs: view, join and indexing ops read a broadcast gradient") {
  check_samples(summed_samples(view_op_samples()));
  check_samples(summed_samples(join_samples()));
  check_samples(summed_samples(indexing_samples()));
}

}  // namespace soda_test::samples
