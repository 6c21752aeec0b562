#include "txl/convert/pickle_writer.h"

#include <bit>

#include "txl/core/error.h"

namespace txl::pt {
namespace {

const char* storage_class(DType d) {
  switch (d) {
    case DType::kFloat32: return "FloatStorage";
    case DType::kFloat16: return "HalfStorage";
    case DType::kBFloat16: return "BFloat16Storage";
    case DType::kFloat64: return "DoubleStorage";
    case DType::kInt64: return "LongStorage";
    case DType::kInt32: return "IntStorage";
    case DType::kInt8: return "CharStorage";
    case DType::kUInt8: return "ByteStorage";
    case DType::kBool: return "BoolStorage";
  }
  return "FloatStorage";
}

}  // namespace

PickleWriter::PickleWriter() {
  op(0x80);  // PROTO 2
  op(2);
}

void PickleWriter::le(uint64_t v, int n) {
  for (int i = 0; i < n; ++i) out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

void PickleWriter::none() { op('N'); }
void PickleWriter::boolean(bool v) { op(v ? 0x88 : 0x89); }

void PickleWriter::integer(int64_t v) {
  if (v >= 0 && v < 256) {
    op('K');
    le(static_cast<uint64_t>(v), 1);
  } else if (v >= 0 && v < 65536) {
    op('M');
    le(static_cast<uint64_t>(v), 2);
  } else if (v >= INT32_MIN && v <= INT32_MAX) {
    op('J');
    le(static_cast<uint32_t>(static_cast<int32_t>(v)), 4);
  } else {
    op(0x8a);  // LONG1, 8 bytes two's complement
    op(8);
    le(static_cast<uint64_t>(v), 8);
  }
}

void PickleWriter::real(double v) {
  op('G');  // big-endian
  const uint64_t u = std::bit_cast<uint64_t>(v);
  for (int i = 7; i >= 0; --i) out_.push_back(static_cast<uint8_t>(u >> (8 * i)));
}

void PickleWriter::string(const std::string& v) {
  TXL_CHECK(v.size() < 0xFFFFFFFFull, "pickle: string of {} bytes is too long", v.size());
  op('X');
  le(v.size(), 4);
  out_.insert(out_.end(), v.begin(), v.end());
}

void PickleWriter::global(const std::string& module, const std::string& name) {
  op('c');
  out_.insert(out_.end(), module.begin(), module.end());
  op('\n');
  out_.insert(out_.end(), name.begin(), name.end());
  op('\n');
}

void PickleWriter::tensor(DType dtype, const std::string& key, const std::vector<int64_t>& shape) {
  int64_t numel = 1;
  for (int64_t d : shape) numel *= d;
  global("torch._utils", "_rebuild_tensor_v2");
  op('(');
  // persistent id: ('storage', torch.<Type>Storage, key, 'cpu', numel)
  op('(');
  string("storage");
  global("torch", storage_class(dtype));
  string(key);
  string("cpu");
  integer(numel);
  op('t');
  op('Q');  // BINPERSID
  integer(0);  // storage offset
  begin_tuple();
  for (int64_t d : shape) integer(d);
  end_tuple();
  begin_tuple();  // contiguous strides
  std::vector<int64_t> stride(shape.size(), 1);
  for (size_t d = shape.size(); d-- > 1;) stride[d - 1] = stride[d] * shape[d];
  for (int64_t s : stride) integer(s);
  end_tuple();
  boolean(false);  // requires_grad
  global("collections", "OrderedDict");  // backward hooks: OrderedDict()
  op(')');
  op('R');
  op('t');
  op('R');
}

void PickleWriter::begin_dict() {
  op('}');
  op('(');
}
void PickleWriter::end_dict() { op('u'); }
void PickleWriter::begin_ordered_dict() {
  global("collections", "OrderedDict");
  op(')');
  op('R');
  op('(');
}
void PickleWriter::begin_list() {
  op(']');
  op('(');
}
void PickleWriter::end_list() { op('e'); }
void PickleWriter::begin_tuple() { op('('); }
void PickleWriter::end_tuple() { op('t'); }
void PickleWriter::begin_object(const std::string& module, const std::string& name) {
  global(module, name);
  op(')');
  op(0x81);  // NEWOBJ
  begin_dict();
}
void PickleWriter::end_object() {
  end_dict();
  op('b');  // BUILD
}

void PickleWriter::begin_call(const std::string& module, const std::string& name) {
  global(module, name);
  op('(');
}
void PickleWriter::end_call() {
  op('t');
  op('R');
}

std::vector<uint8_t> PickleWriter::finish() {
  op('.');
  return std::move(out_);
}

}  // namespace txl::pt
