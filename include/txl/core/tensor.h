// Tensor<T>: a typed, contiguous, row-major n-d array living on one device.
// Storage is reference counted; views (slices, reshapes) share it. Tensors carry no
// operations: all arithmetic goes through Ops<T> (include/txl/core/ops.h).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "txl/core/error.h"

namespace txl {

enum class Device { kCPU, kCUDA };
const char* device_name(Device d);

// Device memory provider. The CPU one is 64-byte aligned malloc; the CUDA one is an
// arena (no cudaMalloc inside the step loop).
class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* ptr, size_t bytes) = 0;
  virtual Device device() const = 0;
};
Allocator& cpu_allocator();

using Shape = std::vector<int64_t>;
int64_t shape_numel(const Shape& shape);
std::string shape_string(const Shape& shape);  // "[3, 4]"

template <typename T>
class Tensor {
 public:
  Tensor() = default;
  // Owning tensor allocated from `alloc` (contents uninitialised).
  Tensor(Shape shape, Allocator& alloc) : shape_(std::move(shape)), device_(alloc.device()) {
    const int64_t n = shape_numel(shape_);
    const size_t bytes = static_cast<size_t>(n > 0 ? n : 1) * sizeof(T);
    Allocator* a = &alloc;
    storage_ = std::shared_ptr<void>(a->allocate(bytes), [a, bytes](void* p) { a->deallocate(p, bytes); });
    data_ = static_cast<T*>(storage_.get());
  }
  // Non-owning view of memory managed elsewhere.
  static Tensor view(T* data, Shape shape, Device device) {
    Tensor t;
    t.data_ = data;
    t.shape_ = std::move(shape);
    t.device_ = device;
    return t;
  }

  T* data() const { return data_; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_.at(static_cast<size_t>(i < 0 ? i + ndim() : i)); }
  int64_t numel() const { return shape_numel(shape_); }
  size_t bytes() const { return static_cast<size_t>(numel()) * sizeof(T); }
  Device device() const { return device_; }
  bool defined() const { return data_ != nullptr; }

  // Same storage, new shape with the same element count.
  Tensor reshaped(Shape shape) const {
    TXL_CHECK(shape_numel(shape) == numel(), "reshape {} -> {}: element count differs",
              shape_string(shape_), shape_string(shape));
    Tensor t = *this;
    t.shape_ = std::move(shape);
    return t;
  }
  // Rows [begin, end) of the first dimension (contiguous, shares storage).
  Tensor slice(int64_t begin, int64_t end) const {
    TXL_CHECK(ndim() >= 1 && 0 <= begin && begin <= end && end <= shape_[0],
              "slice [{}, {}) out of range for shape {}", begin, end, shape_string(shape_));
    Tensor t = *this;
    int64_t row = numel() / (shape_[0] > 0 ? shape_[0] : 1);
    t.data_ = data_ + begin * row;
    t.shape_[0] = end - begin;
    return t;
  }

 private:
  std::shared_ptr<void> storage_;
  T* data_ = nullptr;
  Shape shape_;
  Device device_ = Device::kCPU;
};

}  // namespace txl
