// Transformer-XL memory (docs/model.md §5): per layer L the last rows of concat(mem_L, hid_L),
// where hid_L is the input of layer L. Detached: no gradient flows into it.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "txl/core/ops.h"

namespace txl {

template <typename T>
struct Memory {
  std::vector<Tensor<T>> layers;  // per layer [mlen, batch, d_model] (time-major)
  int64_t mlen = 0;               // rows per stream; 0: empty (layers may then be empty)
  int64_t batch = 0;              // streams
  void clear() {
    layers.clear();
    mlen = 0;
    batch = 0;
  }
};

// Rows [begin, end) of concat(mem, hid) (mlen + qlen rows) that become the new memory:
// end = mlen + max(0, qlen - ext_len), begin = max(0, end - mem_len).
struct MemoryWindow {
  int64_t begin = 0, end = 0;
  int64_t length() const { return end - begin; }
};
inline MemoryWindow memory_window(int64_t mlen, int64_t qlen, int64_t mem_len, int64_t ext_len) {
  MemoryWindow w;
  w.end = mlen + std::max<int64_t>(0, qlen - ext_len);
  w.begin = std::max<int64_t>(0, w.end - mem_len);
  return w;
}

// Deep copy (Memory's tensors share storage when the struct is copied).
template <typename T>
Memory<T> clone_memory(Ops<T>& ops, const Memory<T>& src) {
  Memory<T> dst;
  dst.mlen = src.mlen;
  dst.batch = src.batch;
  for (const Tensor<T>& t : src.layers) {
    Tensor<T> c = ops.empty(t.shape());
    ops.copy(c.data(), t.data(), t.bytes());
    dst.layers.push_back(std::move(c));
  }
  return dst;
}

}  // namespace txl
