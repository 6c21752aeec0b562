// swap_mem (the recipe's --swap_mem): between steps a Transformer-XL memory lives in the
// backend's host staging buffers (pinned host memory on the GPU, ops.h) and the device
// holds none of it. The caller moves it out after the step that updated it and back in
// before anything reads it; both moves are plain byte copies queued on the backend's
// stream, so a run with swapping computes exactly what a run without it does.
#pragma once
#include <cstddef>
#include <memory>
#include <vector>

#include "txl/core/error.h"
#include "txl/model/memory.h"

namespace txl {

template <typename T>
class MemorySwap {
 public:
  explicit MemorySwap(Ops<T>& ops) : ops_(ops) {}

  // Queues a copy of every layer of `mem` into its host buffer and releases the device
  // tensors (mem.layers is emptied; mlen and batch stay, so the memory still says what it
  // holds). A memory already on the host, or an empty one, is left as it is.
  void to_host(Memory<T>& mem) {
    if (on_host_ || mem.layers.empty()) return;
    const size_t n = mem.layers.size();
    host_.resize(n);
    capacity_.resize(n, 0);
    shapes_.assign(n, Shape{});
    for (size_t l = 0; l < n; ++l) {
      Tensor<T>& t = mem.layers[l];
      if (capacity_[l] < t.bytes()) {  // buffers are kept across steps: allocated once per size
        host_[l] = ops_.staging_buffer(t.bytes());
        capacity_[l] = t.bytes();
      }
      shapes_[l] = t.shape();
      ops_.stage_to_host(host_[l].get(), t.data(), t.bytes());
    }
    // The device blocks go back to the backend's allocator; on the CUDA backend a block is
    // reused only by work queued after the copy above, on the same stream.
    mem.layers.clear();
    on_host_ = true;
  }

  // Gives `mem` device tensors again, filled from the host copy (queued: nothing waits).
  // A memory that is on the device already is left as it is.
  void to_device(Memory<T>& mem) {
    if (!on_host_) return;
    TXL_CHECK(mem.layers.empty(), "swap_mem: the memory was given device tensors while its copy was on the host");
    mem.layers.reserve(shapes_.size());
    for (size_t l = 0; l < shapes_.size(); ++l) {
      Tensor<T> t = ops_.empty(shapes_[l]);
      ops_.stage_to_device(t.data(), host_[l].get(), t.bytes());
      mem.layers.push_back(std::move(t));
    }
    on_host_ = false;
  }

  bool on_host() const { return on_host_; }

 private:
  Ops<T>& ops_;
  std::vector<std::shared_ptr<void>> host_;  // one staging buffer per layer
  std::vector<size_t> capacity_;             // bytes of each buffer
  std::vector<Shape> shapes_;                // the layers' shapes while on the host
  bool on_host_ = false;
};

}  // namespace txl
