#include "txl/convert/torch_file.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <fstream>

#include "txl/convert/pickle_reader.h"
#include "txl/core/error.h"
#include <fmt/ranges.h>

namespace txl::pt {
namespace {

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F;
  uint32_t mant = h & 0x3FF;
  uint32_t bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000 | (mant << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {  // subnormal: normalise
    exp = 113;
    while (!(mant & 0x400)) {
      mant <<= 1;
      --exp;
    }
    bits = sign | (exp << 23) | ((mant & 0x3FF) << 13);
  }
  return std::bit_cast<float>(bits);
}

template <typename T>
T load_le(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));  // little-endian host (x86-64, aarch64)
  return v;
}

}  // namespace

TorchFile TorchFile::open(const std::string& path) {
  TorchFile f(zip::Archive::open(path));
  f.load();
  return f;
}

TorchFile TorchFile::parse(std::span<const uint8_t> bytes, const std::string& what) {
  if (bytes.size() >= 3 && bytes[0] == 0x80 && bytes[1] == 0x02 && bytes[2] == 0x8a)
    failf("{}: a legacy (PyTorch < 1.6) checkpoint; re-save it in the zip format with PyTorch >= 1.6 "
          "(torch.save(torch.load(f), f))",
          what);
  TorchFile f(zip::Archive::parse(bytes, what));
  f.load();
  return f;
}

void TorchFile::load() {
  const zip::Entry* pkl = nullptr;
  for (const zip::Entry& e : archive_.entries()) {
    const size_t slash = e.name.find('/');
    if (slash != std::string::npos && e.name.substr(slash + 1) == "data.pkl") {
      pkl = &e;
      prefix_ = e.name.substr(0, slash);
      break;
    }
  }
  if (!pkl) failf("{}: not a PyTorch checkpoint (the archive has no <name>/data.pkl)", what());
  if (const zip::Entry* order = archive_.find(prefix_ + "/byteorder")) {
    const std::vector<uint8_t> b = archive_.read(*order);
    if (std::string(b.begin(), b.end()) != "little")
      failf("{}: storages are big-endian (byteorder '{}'); only little-endian checkpoints are read", what(),
            std::string(b.begin(), b.end()));
  }
  std::vector<uint8_t> scratch;
  read_pickle(archive_.view(*pkl, scratch), what() + " [" + pkl->name + "]", *doc_);
}

std::span<const uint8_t> TorchFile::storage_for(const TensorView& t, const std::string& name,
                                               std::vector<uint8_t>& scratch) const {
  const std::string entry = prefix_ + "/data/" + t.storage_key;
  const zip::Entry* e = archive_.find(entry);
  if (!e) failf("{}: tensor '{}' refers to storage '{}', which the archive lacks", what(), name, t.storage_key);
  const int64_t elem = dtype_size(t.dtype);
  if (t.storage_numel > static_cast<int64_t>(e->size / static_cast<uint64_t>(elem)))
    failf("{}: storage '{}' of tensor '{}' holds {} bytes, less than its {} {} elements", what(), t.storage_key, name,
          e->size, t.storage_numel, dtype_name(t.dtype));
  // The last element the view touches must lie inside the storage.
  bool empty = false;
  for (int64_t n : t.shape) empty = empty || n == 0;
  if (empty) return archive_.view(*e, scratch);
  int64_t last = std::min(t.offset, t.storage_numel);
  for (size_t d = 0; d < t.shape.size(); ++d) {
    if (t.shape[d] > 0 && t.stride[d] > (int64_t{1} << 40) / t.shape[d])
      failf("{}: tensor '{}' has an implausible stride {}", what(), name, t.stride[d]);
    last += (t.shape[d] - 1) * t.stride[d];
  }
  if (t.offset >= t.storage_numel || last >= t.storage_numel)
    failf("{}: tensor '{}' (shape {}, offset {}) reaches element {} of storage '{}', which holds {} elements", what(),
          name, fmt::format("[{}]", fmt::join(t.shape, ", ")), t.offset, last, t.storage_key, t.storage_numel);
  return archive_.view(*e, scratch);
}

template <typename Out, typename Convert>
std::vector<Out> TorchFile::gather(const TensorView& t, const std::string& name, Convert&& convert) const {
  std::vector<uint8_t> scratch;
  const std::span<const uint8_t> bytes = storage_for(t, name, scratch);
  // A view with more elements than its storage repeats elements (stride 0, expand()):
  // not something a checkpoint holds, and refusing it bounds memory by the file's size.
  if (t.numel() > t.storage_numel)
    failf("{}: tensor '{}' has {} elements but its storage '{}' only {} (an expanded view?)", what(), name,
          t.numel(), t.storage_key, t.storage_numel);
  std::vector<Out> out(static_cast<size_t>(t.numel()));
  if (out.empty()) return out;
  const size_t rank = t.shape.size();
  const int64_t elem = dtype_size(t.dtype);
  std::vector<int64_t> index(rank, 0);
  int64_t src = t.offset;
  for (size_t k = 0; k < out.size(); ++k) {
    out[k] = convert(bytes.data() + src * elem);
    for (size_t d = rank; d-- > 0;) {  // odometer over the shape, last dimension fastest
      src += t.stride[d];
      if (++index[d] < t.shape[d]) break;
      src -= t.stride[d] * t.shape[d];
      index[d] = 0;
    }
  }
  return out;
}

std::vector<float> TorchFile::floats(const Value& v, const std::string& name) const {
  if (!v.is(Value::Kind::kTensor)) failf("{}: '{}' is a {}, not a tensor", what(), name, kind_name(v.kind));
  const TensorView& t = v.tensor;
  switch (t.dtype) {
    case DType::kFloat32: return gather<float>(t, name, [](const uint8_t* p) { return load_le<float>(p); });
    case DType::kFloat16:
      return gather<float>(t, name, [](const uint8_t* p) { return half_to_float(load_le<uint16_t>(p)); });
    case DType::kBFloat16:
      return gather<float>(t, name, [](const uint8_t* p) {
        return std::bit_cast<float>(static_cast<uint32_t>(load_le<uint16_t>(p)) << 16);
      });
    case DType::kFloat64:
      return gather<float>(t, name, [](const uint8_t* p) { return static_cast<float>(load_le<double>(p)); });
    default: break;
  }
  failf("{}: tensor '{}' has dtype {}; a floating-point tensor (float32, float16, bfloat16) is expected", what(), name,
        dtype_name(t.dtype));
}

std::vector<int64_t> TorchFile::ints(const Value& v, const std::string& name) const {
  if (!v.is(Value::Kind::kTensor)) failf("{}: '{}' is a {}, not a tensor", what(), name, kind_name(v.kind));
  const TensorView& t = v.tensor;
  switch (t.dtype) {
    case DType::kInt64: return gather<int64_t>(t, name, [](const uint8_t* p) { return load_le<int64_t>(p); });
    case DType::kInt32:
      return gather<int64_t>(t, name, [](const uint8_t* p) { return static_cast<int64_t>(load_le<int32_t>(p)); });
    default: break;
  }
  failf("{}: tensor '{}' has dtype {}; an integer tensor (int64, int32) is expected", what(), name,
        dtype_name(t.dtype));
}

bool looks_like_torch_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char magic[4] = {};
  f.read(magic, 4);
  return f.gcount() == 4 && std::memcmp(magic, "PK\x03\x04", 4) == 0;
}

std::string TorchFileWriter::add_storage(std::vector<uint8_t> bytes) {
  storages_.push_back(std::move(bytes));
  return std::to_string(storages_.size() - 1);
}

std::vector<uint8_t> TorchFileWriter::finish(const std::vector<uint8_t>& pickle) {
  zip::Writer z;
  z.add(name_ + "/data.pkl", pickle);
  z.add(name_ + "/.format_version", std::string("1"));
  z.add(name_ + "/.storage_alignment", std::string("64"));
  z.add(name_ + "/byteorder", std::string("little"));
  for (size_t k = 0; k < storages_.size(); ++k) z.add(name_ + "/data/" + std::to_string(k), storages_[k]);
  z.add(name_ + "/version", std::string("3\n"));
  storages_.clear();
  return z.finish();
}

}  // namespace txl::pt
