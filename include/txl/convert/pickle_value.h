// The objects a PyTorch checkpoint pickle can describe, as plain data: Python scalars,
// strings, lists, tuples, dicts, instances of the few allowed classes (their attributes
// set by BUILD), and tensors (a view into a storage of the archive). A Document owns
// every value; values refer to each other by pointer, so shared and even cyclic
// references cost nothing and free nothing twice.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace txl::pt {

enum class DType { kFloat32, kFloat16, kBFloat16, kFloat64, kInt64, kInt32, kInt8, kUInt8, kBool };
const char* dtype_name(DType d);  // "float32", ...
int64_t dtype_size(DType d);

struct TensorView {
  DType dtype = DType::kFloat32;
  std::string storage_key;  // archive entry <archive>/data/<storage_key>
  int64_t storage_numel = 0;
  int64_t offset = 0;  // in elements
  std::vector<int64_t> shape, stride;
  int64_t numel() const;
};

struct Value {
  enum class Kind { kNone, kBool, kInt, kFloat, kString, kBytes, kList, kTuple, kDict, kObject, kGlobal, kStorage, kTensor };
  Kind kind = Kind::kNone;
  bool b = false;
  int64_t i = 0;
  double f = 0.0;
  std::string s;                                 // string, bytes; class of an object; "module.name" of a global
  std::vector<Value*> items;                     // list, tuple
  std::vector<std::pair<Value*, Value*>> entries;  // dict; an object's attributes
  TensorView tensor;                             // storage (dtype, key, numel) or tensor

  bool is(Kind k) const { return kind == k; }
  bool is_string(const std::string& text) const { return kind == Kind::kString && s == text; }
  // Dict or object: the value of the last entry whose key is the string `key`; nullptr if none.
  const Value* get(const std::string& key) const;
};

const char* kind_name(Value::Kind k);

class Document {
 public:
  Value* make(Value::Kind kind) {
    values_.push_back(std::make_unique<Value>());
    values_.back()->kind = kind;
    return values_.back().get();
  }
  Value* root = nullptr;
  size_t size() const { return values_.size(); }

 private:
  std::vector<std::unique_ptr<Value>> values_;
};

}  // namespace txl::pt
