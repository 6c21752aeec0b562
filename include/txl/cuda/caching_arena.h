// CachingArena: the CUDA backend's device memory allocator. Requests are rounded to a
// size class; freed blocks go to a per-class free list and are handed out again, so a
// training step that allocates the same tensors as the previous one never reaches
// cudaMalloc. New memory is carved from big raw blocks (chunks, default 64 MiB) obtained
// from a RawMemory source (cudaMalloc on the device, malloc in host-side tests).
//
// Blocks are reused in host order, which is safe because every kernel of the backend runs
// on one stream: a block freed on the host can only be reused by work enqueued later on
// that same stream.
//
// Private pools serve CUDA Graph capture: while a pool is open, allocations are tagged
// with it; a tagged block freed later, or any block freed while the pool is open, is
// kept for that pool (a replayed graph may write to it) and returns to the common cache
// only when the pool is released.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "txl/core/tensor.h"

namespace txl::cuda {

// Where the arena's raw blocks come from.
class RawMemory {
 public:
  virtual ~RawMemory() = default;
  virtual void* reserve(size_t bytes) = 0;  // nullptr when out of memory
  virtual void release(void* ptr) = 0;
  virtual Device device() const = 0;
};
std::unique_ptr<RawMemory> make_cuda_raw_memory(int device);
std::unique_ptr<RawMemory> make_host_raw_memory();  // malloc; for tests of the caching logic

struct ArenaStats {
  size_t in_use = 0;           // bytes handed out (rounded to size classes)
  size_t peak_in_use = 0;      // high-water mark of in_use since construction / reset_peak()
  size_t reserved = 0;         // bytes obtained from the raw source
  int64_t raw_reservations = 0;  // calls to RawMemory::reserve (cudaMalloc)
  int64_t allocations = 0;       // allocate() calls
  int64_t cache_hits = 0;        // allocate() calls served from a free list
};

class CachingArena final : public Allocator {
 public:
  static constexpr size_t kDefaultChunkBytes = size_t{64} << 20;
  static constexpr size_t kAlignment = 512;

  // initial_bytes > 0 reserves one chunk of that size up front.
  explicit CachingArena(std::unique_ptr<RawMemory> raw, size_t initial_bytes = 0,
                        size_t chunk_bytes = kDefaultChunkBytes);
  ~CachingArena() override;
  CachingArena(const CachingArena&) = delete;
  CachingArena& operator=(const CachingArena&) = delete;

  void* allocate(size_t bytes) override;
  void deallocate(void* ptr, size_t bytes) override;
  Device device() const override;

  ArenaStats stats() const;
  void reset_peak();
  // The rounded size a request of `bytes` occupies: multiples of 512 B up to 4 KiB, then
  // eight classes per power of two (at most 12.5% waste).
  static size_t size_class(size_t bytes);

  // Opens a private pool (one at a time) and returns its id (> 0).
  int open_private_pool();
  // Stops tagging new allocations; the pool's blocks stay reserved.
  void close_private_pool();
  // The pool's owner (a CUDA graph) is gone: its blocks return to the common cache.
  void release_private_pool(int pool);

 private:
  struct Live {
    size_t size;
    int pool;
  };
  struct Chunk {
    char* base;
    size_t size;
    size_t used;  // bump pointer for carving
  };
  using FreeLists = std::unordered_map<size_t, std::vector<void*>>;

  void* take_new_block(size_t size);  // carve from a chunk or reserve a new one
  void* reserve_raw(size_t bytes);
  bool release_cached_dedicated();     // frees cached blocks that own a whole raw block

  std::unique_ptr<RawMemory> raw_;
  size_t chunk_bytes_;
  mutable std::mutex mutex_;
  FreeLists free_;
  std::unordered_map<int, FreeLists> pool_free_;
  std::unordered_map<void*, Live> live_;
  std::vector<Chunk> chunks_;
  std::unordered_map<void*, size_t> dedicated_;  // blocks that are a whole raw block
  int open_pool_ = 0;
  int next_pool_ = 1;
  ArenaStats stats_;
};

}  // namespace txl::cuda
