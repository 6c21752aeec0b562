// A PyTorch checkpoint file (torch.save since PyTorch 1.6): a ZIP archive with
// <archive>/data.pkl (the pickled object, tensors as persistent references to storages)
// and <archive>/data/<key> (each storage's raw little-endian bytes). Reading never runs
// anything the file says (pickle_reader.h); every tensor access is bounds-checked
// against its storage.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "txl/convert/pickle_value.h"
#include "txl/convert/zip_archive.h"

namespace txl::pt {

class TorchFile {
 public:
  static TorchFile open(const std::string& path);
  // `bytes` must outlive the file object.
  static TorchFile parse(std::span<const uint8_t> bytes, const std::string& what);
  TorchFile(TorchFile&&) = default;
  TorchFile& operator=(TorchFile&&) = default;

  const std::string& what() const { return archive_.what(); }
  const std::string& archive_name() const { return prefix_; }
  const Value& root() const { return *doc_->root; }

  // A tensor's elements in row-major order of its shape (the view's offset and strides
  // applied). Floating dtypes (float32, float16, bfloat16, float64) only; `name` labels messages.
  std::vector<float> floats(const Value& tensor, const std::string& name) const;
  // Integer dtypes only.
  std::vector<int64_t> ints(const Value& tensor, const std::string& name) const;

 private:
  TorchFile(zip::Archive a) : archive_(std::move(a)), doc_(std::make_unique<Document>()) {}
  void load();
  // The storage's bytes, checked to hold the view's elements.
  std::span<const uint8_t> storage_for(const TensorView& t, const std::string& name,
                                       std::vector<uint8_t>& scratch) const;
  template <typename Out, typename Convert>
  std::vector<Out> gather(const TensorView& t, const std::string& name, Convert&& convert) const;

  zip::Archive archive_;
  std::unique_ptr<Document> doc_;
  std::string prefix_;
};

// True when the file begins like a ZIP archive (a torch.save file rather than HDF5).
bool looks_like_torch_file(const std::string& path);

// Writes a torch.save-compatible archive: storages are added first, then the pickle
// that refers to them by key.
class TorchFileWriter {
 public:
  explicit TorchFileWriter(std::string archive_name) : name_(std::move(archive_name)) {}
  // A new storage holding `bytes`; returns its key.
  std::string add_storage(std::vector<uint8_t> bytes);
  std::vector<uint8_t> finish(const std::vector<uint8_t>& pickle);

 private:
  std::string name_;
  std::vector<std::vector<uint8_t>> storages_;
};

}  // namespace txl::pt
