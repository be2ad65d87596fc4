// soda::Tensor<T>: a handle to a strided view over shared, 64-byte aligned storage.
// Copies of a Tensor share data (like PyTorch); views (reshape, permute, slice, broadcast_to) share
// storage with their base. The autodiff layer hangs its tape node and tangent plane on the impl.
#pragma once

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "soda/core/dtype.hpp"
#include "soda/core/error.hpp"
#include "soda/core/shape.hpp"
#include "soda/core/storage.hpp"

namespace soda {

// Defined by the autodiff layer (autodiff/node.hpp); core only carries the pointer.
template <class T>
class Node;

namespace detail {

inline std::uint64_t next_tensor_id() {
  static std::atomic<std::uint64_t> counter{1};
  return counter.fetch_add(1, std::memory_order_relaxed);
}

template <class T>
struct TensorImpl {
  std::shared_ptr<T[]> storage;
  std::int64_t offset = 0;
  Shape shape;
  Strides strides;
  // Identity of the value for autodiff: aliases made by the tape share it, user copies do not.
  std::uint64_t id = next_tensor_id();
  bool requires_grad = false;
  std::shared_ptr<Node<T>> grad_fn;
  // Forward-mode tangent plane: shape [k, shape...], k tangents stacked; null means zero.
  std::shared_ptr<TensorImpl<T>> tangent;
  // Gradient accumulated by backward() into a leaf.
  std::shared_ptr<TensorImpl<T>> grad;
};

}  // namespace detail

template <class T = float>
class Tensor {
  static_assert(Element<T>, "soda::Tensor supports float, double, int8, uint8, int32 and int64");

 public:
  using value_type = T;

  // An undefined tensor (no storage); used for "no gradient" and "zero tangent".
  Tensor() = default;

  // A contiguous tensor of `shape` holding `values` (row-major); sizes must agree.
  Tensor(Shape shape, std::vector<T> values) {
    check_shape_valid(shape, "Tensor", sizeof(T));
    const auto n = soda::numel(shape);
    if (static_cast<std::int64_t>(values.size()) != n) {
      throw ShapeError("Tensor: shape " + to_string(shape) + " holds " + std::to_string(n) +
                       " values but " + std::to_string(values.size()) + " were given");
    }
    *this = empty(std::move(shape));
    std::copy(values.begin(), values.end(), data());
  }

  // Uninitialised contiguous storage; factories (zeros, full, ...) build on it. A shape whose size
  // overflows int64 is a ShapeError; memory the system refuses is an AllocationError.
  static Tensor empty(Shape shape) {
    check_shape_valid(shape, "empty", sizeof(T));
    auto impl = std::make_shared<detail::TensorImpl<T>>();
    const auto count = soda::numel(shape);
    try {
      impl->storage = detail::allocate_storage<T>(static_cast<std::size_t>(count));
    } catch (const AllocationError& e) {
      throw AllocationError("empty: no memory for a " + std::string(dtype_name<T>()) +
                            " tensor of shape " + to_string(shape) + " (" + std::to_string(count) +
                            " elements of " + std::to_string(sizeof(T)) + " bytes): " + e.what());
    }
    impl->strides = contiguous_strides(shape);
    impl->shape = std::move(shape);
    return Tensor(std::move(impl));
  }

  static Tensor scalar(T value) { return Tensor(Shape{}, std::vector<T>{value}); }

  explicit Tensor(std::shared_ptr<detail::TensorImpl<T>> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return checked().shape; }
  const Strides& strides() const { return checked().strides; }
  std::int64_t ndim() const { return static_cast<std::int64_t>(shape().size()); }
  std::int64_t numel() const { return soda::numel(shape()); }
  std::int64_t size(std::int64_t axis) const {
    return shape()[static_cast<std::size_t>(normalize_axis(axis, ndim(), "size"))];
  }
  std::int64_t offset() const { return checked().offset; }

  bool is_contiguous() const {
    const auto& s = shape();
    const auto& st = strides();
    std::int64_t expected = 1;
    for (std::size_t i = s.size(); i-- > 0;) {
      if (s[i] != 1 && st[i] != expected) return false;
      expected *= s[i];
    }
    return true;
  }

  // Pointer to the first element; only for contiguous tensors, so that data()[i] is element i.
  T* data() const {
    if (!is_contiguous()) {
      throw ValueError("data(): tensor of shape " + to_string(shape()) +
                       " is a non-contiguous view; call contiguous() first");
    }
    return raw_data();
  }
  // Pointer to the first element of any view (strided access with strides()).
  T* raw_data() const { return checked().storage.get() + checked().offset; }

  // The single value of a one-element tensor.
  T item() const {
    if (numel() != 1) {
      throw ValueError("item(): tensor of shape " + to_string(shape()) + " has " +
                       std::to_string(numel()) + " elements, not 1");
    }
    return *raw_data();
  }

  // Element access by multi-index (bounds-checked); writes go to the shared storage.
  T& at(std::initializer_list<std::int64_t> index) const {
    return at(std::vector<std::int64_t>(index));
  }
  T& at(const std::vector<std::int64_t>& index) const {
    if (static_cast<std::int64_t>(index.size()) != ndim()) {
      throw IndexError("at: index of length " + std::to_string(index.size()) +
                       " for a tensor of rank " + std::to_string(ndim()));
    }
    std::int64_t offset = 0;
    for (std::size_t i = 0; i < index.size(); ++i) {
      auto k = index[i];
      if (k < 0) k += shape()[i];
      if (k < 0 || k >= shape()[i]) {
        throw IndexError("at: index " + std::to_string(index[i]) + " is out of bounds for axis " +
                         std::to_string(i) + " of size " + std::to_string(shape()[i]));
      }
      offset += k * strides()[i];
    }
    return raw_data()[offset];
  }

  // A view with new shape/strides over the same storage (no autodiff; ops wrap this).
  Tensor view_with(Shape shape, Strides strides, std::int64_t offset) const {
    check_shape_valid(shape, "view", sizeof(T));
    auto impl = std::make_shared<detail::TensorImpl<T>>();
    impl->storage = checked().storage;
    impl->offset = offset;
    impl->shape = std::move(shape);
    impl->strides = std::move(strides);
    return Tensor(std::move(impl));
  }

  // A contiguous copy with each value cast to U (defined in core/convert.hpp).
  template <class U>
  Tensor<U> to() const;

  // Same values and storage, cut from the tape and from any tangent: a constant.
  Tensor detach() const { return view_with(shape(), strides(), offset()); }

  // Autodiff state (interpreted by the autodiff layer).
  bool requires_grad() const { return defined() && impl_->requires_grad; }
  Tensor& set_requires_grad(bool on) {
    if (on && !std::is_floating_point_v<T>) {
      throw ValueError(std::string("set_requires_grad: ") + std::string(dtype_name<T>()) +
                       " tensors are not differentiable");
    }
    checked().requires_grad = on;
    return *this;
  }
  bool is_leaf() const { return checked().grad_fn == nullptr; }
  // Gradient accumulated by backward(); undefined before.
  Tensor grad() const { return Tensor(checked().grad); }
  void zero_grad() const { checked().grad.reset(); }
  // Tangent plane of shape [k, shape...] when forward-mode tangents ride on this tensor.
  Tensor tangent() const { return Tensor(checked().tangent); }
  bool has_tangent() const { return defined() && impl_->tangent != nullptr; }

  std::uint64_t id() const { return checked().id; }
  const std::shared_ptr<detail::TensorImpl<T>>& impl() const { return impl_; }

 private:
  detail::TensorImpl<T>& checked() const {
    if (!impl_) throw ValueError("use of an undefined tensor");
    return *impl_;
  }

  std::shared_ptr<detail::TensorImpl<T>> impl_;
};

}  // namespace soda
