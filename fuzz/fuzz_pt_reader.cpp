// libFuzzer entry point: arbitrary bytes as a PyTorch checkpoint (.pt). The reader must
// refuse anything malformed with a txl::Error and never crash, hang or run code; every
// tensor it finds is read to exercise the storage bounds checks.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <unordered_set>

#include "txl/convert/torch_file.h"
#include "txl/core/error.h"

namespace {

// Each value once: pickles may share and even nest values in themselves.
void read_tensors(const txl::pt::TorchFile& f, const txl::pt::Value& v, std::unordered_set<const void*>& seen) {
  using Kind = txl::pt::Value::Kind;
  if (!seen.insert(&v).second) return;
  if (v.is(Kind::kTensor)) {
    try {
      f.floats(v, "fuzz");
    } catch (const txl::Error&) {
    }
    try {
      f.ints(v, "fuzz");
    } catch (const txl::Error&) {
    }
    return;
  }
  for (const txl::pt::Value* item : v.items) read_tensors(f, *item, seen);
  for (const auto& [key, value] : v.entries) read_tensors(f, *value, seen);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const txl::pt::TorchFile f = txl::pt::TorchFile::parse(std::span<const uint8_t>(data, size), "fuzz.pt");
    std::unordered_set<const void*> seen;
    read_tensors(f, f.root(), seen);
  } catch (const txl::Error&) {
  }
  return 0;
}
