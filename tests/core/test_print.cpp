// soda/core/print.hpp: operator<< in NumPy's layout (aligned columns, nested brackets, "..."
// summaries for large tensors), checked against exact strings.
#include "oracle.hpp"

#include <cstdint>
#include <limits>
#include <sstream>
#include <string>

using soda::Tensor;

namespace {

template <class T>
std::string str(const Tensor<T>& t) {
  std::ostringstream s;
  s << t;
  return s.str();
}

}  // namespace

TEST_SUITE("core/print") {
  TEST_CASE("a 2x2 float tensor prints as nested rows aligned under the bracket") {
    CHECK(str(Tensor<float>({2, 2}, {1, 2, 3, 4})) ==
          "tensor([[1.0000, 2.0000],\n"
          "        [3.0000, 4.0000]], shape=[2, 2], dtype=float32)");
  }

  TEST_CASE("values are right-aligned to the widest one") {
    CHECK(str(Tensor<float>({2, 2}, {-1.5f, 2, 3, 10})) ==
          "tensor([[-1.5000,  2.0000],\n"
          "        [ 3.0000, 10.0000]], shape=[2, 2], dtype=float32)");
  }

  TEST_CASE("integer tensors print without decimals; int8 prints numbers, not characters") {
    CHECK(str(Tensor<std::int32_t>({3}, {1, -20, 300})) ==
          "tensor([  1, -20, 300], shape=[3], dtype=int32)");
    CHECK(str(Tensor<std::int8_t>({2}, {65, -1})) == "tensor([65, -1], shape=[2], dtype=int8)");
    CHECK(str(Tensor<std::uint8_t>({2}, {7, 255})) == "tensor([  7, 255], shape=[2], dtype=uint8)");
    std::vector<std::int64_t> v(8);
    for (int i = 0; i < 8; ++i) v[static_cast<std::size_t>(i)] = i;
    CHECK(str(Tensor<std::int64_t>({2, 2, 2}, v)) ==
          "tensor([[[0, 1],\n"
          "         [2, 3]],\n"
          "\n"
          "        [[4, 5],\n"
          "         [6, 7]]], shape=[2, 2, 2], dtype=int64)");
  }

  TEST_CASE("scalars, empty tensors, undefined tensors and requires_grad print compactly") {
    CHECK(str(Tensor<double>::scalar(3.5)) == "tensor(3.5000, shape=[], dtype=float64)");
    CHECK(str(Tensor<float>::empty({0})) == "tensor([], shape=[0], dtype=float32)");
    CHECK(str(Tensor<float>()) == "tensor(undefined)");
    Tensor<float> x({1}, {1});
    x.set_requires_grad(true);
    CHECK(str(x) == "tensor([1.0000], shape=[1], dtype=float32, requires_grad)");
  }

  TEST_CASE("non-finite values print as nan and inf") {
    const float inf = std::numeric_limits<float>::infinity();
    CHECK(str(Tensor<float>({3}, {std::numeric_limits<float>::quiet_NaN(), inf, -inf})) ==
          "tensor([ nan,  inf, -inf], shape=[3], dtype=float32)");
  }

  TEST_CASE("a strided view prints exactly like its contiguous copy") {
    const Tensor<float> x({2, 3}, {1, 2, 3, 4, 5, 6});
    const auto t = soda::transpose(x, 0, 1);
    CHECK(str(t) ==
          "tensor([[1.0000, 4.0000],\n"
          "        [2.0000, 5.0000],\n"
          "        [3.0000, 6.0000]], shape=[3, 2], dtype=float32)");
    CHECK(str(t) == str(soda::contiguous(t)));
    const auto s = soda::slice(x, 1, 0, 3, 2);
    CHECK(str(s) == str(soda::contiguous(s)));
    const auto b = soda::broadcast_to(Tensor<float>({2, 1}, {-1, 1}), {2, 2});
    CHECK(str(b) ==
          "tensor([[-1.0000, -1.0000],\n"
          "        [ 1.0000,  1.0000]], shape=[2, 2], dtype=float32)");
  }

  TEST_CASE("a tensor over 1000 elements is summarized with ... on long axes") {
    const auto t = soda::arange<float>(2000.f);
    CHECK(str(t) ==
          "tensor([   0.0000,    1.0000,    2.0000, ..., 1997.0000, 1998.0000, 1999.0000], "
          "shape=[2000], dtype=float32)");

    const auto m = soda::reshape(soda::arange<std::int32_t>(0, 40 * 50), {40, 50});
    const auto s = str(m);
    CHECK(s.rfind("tensor([[   0,    1,    2, ...,   47,   48,   49],\n", 0) == 0);
    CHECK(s.find("        [ 100,  101,  102, ...,  147,  148,  149],\n        ...,\n"
                 "        [1850, 1851, 1852, ..., 1897, 1898, 1899],\n") != std::string::npos);
    CHECK(s.find("[1950, 1951, 1952, ..., 1997, 1998, 1999]], shape=[40, 50], dtype=int32)") !=
          std::string::npos);
    // Exactly 6 rows and one "..." line are shown.
    CHECK(std::count(s.begin(), s.end(), '\n') == 6);

    // 1000 elements or fewer: everything is printed.
    CHECK(str(soda::arange<std::int32_t>(0, 1000)).find("...") == std::string::npos);
  }

}  // TEST_SUITE
