#include "txl/convert/pickle_reader.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "txl/core/error.h"

namespace txl::pt {
namespace {

using Kind = Value::Kind;

struct StorageType {
  const char* global;
  DType dtype;
};
constexpr StorageType kStorageTypes[] = {
    {"torch.FloatStorage", DType::kFloat32},  {"torch.HalfStorage", DType::kFloat16},
    {"torch.BFloat16Storage", DType::kBFloat16}, {"torch.DoubleStorage", DType::kFloat64},
    {"torch.LongStorage", DType::kInt64},     {"torch.IntStorage", DType::kInt32},
    {"torch.CharStorage", DType::kInt8},      {"torch.ByteStorage", DType::kUInt8},
    {"torch.BoolStorage", DType::kBool},
};
// Classes and functions turned into data.
constexpr const char* kCallables[] = {
    "collections.OrderedDict", "collections.Counter",         "argparse.Namespace",
    "utils.vocabulary.Vocab",  "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
};
// Plain values (torch dtypes, e.g. a model_config dtype entry).
constexpr const char* kConstants[] = {"torch.float32", "torch.float16", "torch.bfloat16", "torch.float64"};

constexpr int64_t kMaxDims = 64;

class Interpreter {
 public:
  Interpreter(std::span<const uint8_t> bytes, const std::string& what, Document& doc)
      : in_(bytes), what_(what), doc_(doc) {}

  Value* run() {
    while (true) {
      if (pos_ >= in_.size()) failf("{}: pickle ends without STOP (truncated?)", what_);
      op_pos_ = pos_;
      const uint8_t op = in_[pos_++];
      switch (op) {
        case 0x80: {  // PROTO
          const uint8_t v = byte();
          if (v > 5) bad(fmt::format("protocol {} is unknown", v));
          break;
        }
        case 0x95: take(8); break;  // FRAME: a length hint only
        case '.': {                 // STOP
          Value* v = pop();
          if (!stack_.empty() || !marks_.empty()) bad("values left on the stack at STOP");
          return v;
        }
        case '(': marks_.push_back(stack_.size()); break;
        case '}': push(doc_.make(Kind::kDict)); break;
        case ']': push(doc_.make(Kind::kList)); break;
        case ')': push(doc_.make(Kind::kTuple)); break;
        case 'N': push(doc_.make(Kind::kNone)); break;
        case 0x88: push_bool(true); break;
        case 0x89: push_bool(false); break;
        case 'K': push_int(byte()); break;
        case 'M': push_int(static_cast<int64_t>(le(2))); break;
        case 'J': push_int(static_cast<int32_t>(static_cast<uint32_t>(le(4)))); break;
        case 0x8a: long1(); break;
        case 'G': {  // BINFLOAT: big-endian IEEE double
          const uint8_t* p = take(8);
          uint64_t u = 0;
          for (int k = 0; k < 8; ++k) u = (u << 8) | p[k];
          Value* v = doc_.make(Kind::kFloat);
          std::memcpy(&v->f, &u, sizeof(double));
          push(v);
          break;
        }
        case 'X': push_text(Kind::kString, le(4)); break;
        case 0x8c: push_text(Kind::kString, byte()); break;
        case 0x8d: push_text(Kind::kString, le(8)); break;
        case 'B': push_text(Kind::kBytes, le(4)); break;
        case 'C': push_text(Kind::kBytes, byte()); break;
        case 0x8e: push_text(Kind::kBytes, le(8)); break;
        case 'c': {  // GLOBAL "module\nname\n"
          const std::string module = line();
          const std::string name = line();
          push(global(module + "." + name));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          Value* name = pop();
          Value* module = pop();
          if (!module->is(Kind::kString) || !name->is(Kind::kString)) bad("STACK_GLOBAL needs two strings");
          push(global(module->s + "." + name->s));
          break;
        }
        case 'q': memo_put(byte()); break;
        case 'r': memo_put(static_cast<uint32_t>(le(4))); break;
        case 0x94: memo_put(static_cast<uint32_t>(memo_.size())); break;
        case 'h': push(memo_get(byte())); break;
        case 'j': push(memo_get(static_cast<uint32_t>(le(4)))); break;
        case '0': pop(); break;
        case '1': pop_mark(); break;
        case '2': push(top()); break;
        case 0x85: tuple_of(1); break;
        case 0x86: tuple_of(2); break;
        case 0x87: tuple_of(3); break;
        case 't': {
          Value* t = doc_.make(Kind::kTuple);
          t->items = pop_mark();
          push(t);
          break;
        }
        case 'a': {
          Value* v = pop();
          list_top()->items.push_back(v);
          break;
        }
        case 'e': {
          std::vector<Value*> vs = pop_mark();
          Value* l = list_top();
          l->items.insert(l->items.end(), vs.begin(), vs.end());
          break;
        }
        case 's': {
          Value* v = pop();
          Value* k = pop();
          dict_top()->entries.emplace_back(k, v);
          break;
        }
        case 'u': {
          std::vector<Value*> vs = pop_mark();
          if (vs.size() % 2) bad("SETITEMS with an odd number of values");
          Value* d = dict_top();
          for (size_t k = 0; k < vs.size(); k += 2) d->entries.emplace_back(vs[k], vs[k + 1]);
          break;
        }
        case 'R': {
          Value* args = pop();
          Value* callable = pop();
          push(call(callable, args));
          break;
        }
        case 0x81: {  // NEWOBJ cls args
          Value* args = pop();
          Value* cls = pop();
          push(call(cls, args));
          break;
        }
        case 'b': {  // BUILD: state applied to the object below it
          Value* state = pop();
          build(top(), state);
          break;
        }
        case 'Q': push(persistent(pop())); break;
        default:
          bad(fmt::format("opcode 0x{:02x} is not one torch.save writes (not read by txl)", op));
      }
    }
  }

 private:
  [[noreturn]] void bad(const std::string& why) const {
    failf("{}: pickle byte {}: {}", what_, op_pos_, why);
  }
  const uint8_t* take(uint64_t n) {
    if (n > in_.size() - pos_) bad("the pickle is truncated");
    const uint8_t* p = in_.data() + pos_;
    pos_ += n;
    return p;
  }
  uint8_t byte() { return *take(1); }
  uint64_t le(int n) {
    const uint8_t* p = take(static_cast<uint64_t>(n));
    uint64_t v = 0;
    for (int k = n - 1; k >= 0; --k) v = (v << 8) | p[k];
    return v;
  }
  std::string line() {
    const uint8_t* begin = in_.data() + pos_;
    const uint8_t* end = in_.data() + in_.size();
    const uint8_t* nl = std::find(begin, end, uint8_t{'\n'});
    if (nl == end) bad("GLOBAL name without a line end (truncated?)");
    pos_ += static_cast<size_t>(nl - begin) + 1;
    return std::string(reinterpret_cast<const char*>(begin), static_cast<size_t>(nl - begin));
  }
  void push(Value* v) { stack_.push_back(v); }
  void push_bool(bool b) {
    Value* v = doc_.make(Kind::kBool);
    v->b = b;
    push(v);
  }
  void push_int(int64_t i) {
    Value* v = doc_.make(Kind::kInt);
    v->i = i;
    push(v);
  }
  void push_text(Kind kind, uint64_t n) {
    const uint8_t* p = take(n);
    Value* v = doc_.make(kind);
    v->s.assign(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
    push(v);
  }
  void long1() {  // little-endian two's complement of n bytes
    const uint8_t n = byte();
    if (n > 8) bad(fmt::format("integer of {} bytes is too large", n));
    const uint8_t* p = take(n);
    uint64_t u = 0;
    for (int k = n - 1; k >= 0; --k) u = (u << 8) | p[k];
    if (n > 0 && n < 8 && (p[n - 1] & 0x80)) u |= ~uint64_t{0} << (8 * n);
    push_int(static_cast<int64_t>(u));
  }
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  Value* pop() {
    if (stack_.size() <= floor()) bad("stack underflow");
    Value* v = stack_.back();
    stack_.pop_back();
    return v;
  }
  Value* top() {
    if (stack_.size() <= floor()) bad("stack underflow");
    return stack_.back();
  }
  std::vector<Value*> pop_mark() {
    if (marks_.empty()) bad("no MARK to pop to");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Value*> vs(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return vs;
  }
  Value* list_top() {
    Value* l = top();
    if (!l->is(Kind::kList)) bad(fmt::format("APPEND to a {}", kind_name(l->kind)));
    return l;
  }
  Value* dict_top() {
    Value* d = top();
    if (!d->is(Kind::kDict)) bad(fmt::format("SETITEM on a {}", kind_name(d->kind)));
    return d;
  }
  void tuple_of(size_t n) {
    Value* t = doc_.make(Kind::kTuple);
    t->items.resize(n);
    for (size_t k = n; k-- > 0;) t->items[k] = pop();
    push(t);
  }
  void memo_put(uint32_t index) { memo_[index] = top(); }
  Value* memo_get(uint32_t index) {
    const auto it = memo_.find(index);
    if (it == memo_.end()) bad(fmt::format("memo entry {} was never stored", index));
    return it->second;
  }

  Value* global(const std::string& name) {
    bool ok = false;
    for (const StorageType& t : kStorageTypes) ok = ok || name == t.global;
    for (const char* c : kCallables) ok = ok || name == c;
    for (const char* c : kConstants) ok = ok || name == c;
    if (!ok)
      failf("{}: the checkpoint names the Python global '{}', which txl does not accept (a converter never runs "
            "code; allowed: {})",
            what_, name, fmt::join(allowed_globals(), ", "));
    Value* v = doc_.make(Kind::kGlobal);
    v->s = name;
    return v;
  }

  const std::vector<Value*>& tuple_args(Value* args, const std::string& callee) {
    if (!args->is(Kind::kTuple)) bad(fmt::format("{} called with a {} instead of an argument tuple", callee,
                                                 kind_name(args->kind)));
    return args->items;
  }

  Value* call(Value* callable, Value* args) {
    if (!callable->is(Kind::kGlobal)) bad(fmt::format("call of a {} (only allowed classes can be called)",
                                                      kind_name(callable->kind)));
    const std::string& name = callable->s;
    const std::vector<Value*>& a = tuple_args(args, name);
    if (name == "collections.OrderedDict" || name == "collections.Counter") {
      Value* d = doc_.make(Kind::kDict);
      if (a.size() > 1) bad(fmt::format("{} with {} arguments", name, a.size()));
      if (a.size() == 1) {
        if (!a[0]->is(Kind::kDict)) bad(fmt::format("{} of a {}", name, kind_name(a[0]->kind)));
        charge_copy(a[0]->entries.size());
        d->entries = a[0]->entries;
      }
      return d;
    }
    if (name == "argparse.Namespace" || name == "utils.vocabulary.Vocab") {
      if (!a.empty()) bad(fmt::format("{} created with arguments", name));
      Value* o = doc_.make(Kind::kObject);
      o->s = name;
      return o;
    }
    if (name == "torch._utils._rebuild_tensor_v2") return rebuild_tensor(a);
    if (name == "torch._utils._rebuild_parameter") {
      if (a.size() < 1 || !a[0]->is(Kind::kTensor)) bad("_rebuild_parameter without a tensor");
      return a[0];
    }
    bad(fmt::format("'{}' cannot be called", name));
  }

  std::vector<int64_t> int_tuple(Value* v, const char* what) {
    if (!v->is(Kind::kTuple) && !v->is(Kind::kList)) bad(fmt::format("tensor {} is a {}", what, kind_name(v->kind)));
    if (static_cast<int64_t>(v->items.size()) > kMaxDims) bad(fmt::format("tensor {} has too many dimensions", what));
    std::vector<int64_t> out;
    for (Value* x : v->items) {
      if (!x->is(Kind::kInt) || x->i < 0) bad(fmt::format("tensor {} holds a non-integer or negative entry", what));
      out.push_back(x->i);
    }
    return out;
  }

  Value* rebuild_tensor(const std::vector<Value*>& a) {
    // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    if (a.size() < 4) bad(fmt::format("_rebuild_tensor_v2 with {} arguments", a.size()));
    if (!a[0]->is(Kind::kStorage)) bad("_rebuild_tensor_v2 without a storage");
    if (!a[1]->is(Kind::kInt) || a[1]->i < 0) bad("tensor storage offset is not a non-negative integer");
    Value* t = doc_.make(Kind::kTensor);
    t->tensor = a[0]->tensor;
    t->tensor.offset = a[1]->i;
    t->tensor.shape = int_tuple(a[2], "size");
    t->tensor.stride = int_tuple(a[3], "stride");
    if (t->tensor.shape.size() != t->tensor.stride.size())
      bad(fmt::format("tensor has {} sizes but {} strides", t->tensor.shape.size(), t->tensor.stride.size()));
    return t;
  }

  Value* persistent(Value* pid) {
    // ('storage', storage type, key, location, numel)
    if (!pid->is(Kind::kTuple) || pid->items.size() != 5 || !pid->items[0]->is_string("storage"))
      bad("persistent id is not a ('storage', type, key, location, numel) tuple");
    Value* type = pid->items[1];
    Value* key = pid->items[2];
    Value* numel = pid->items[4];
    if (!type->is(Kind::kGlobal)) bad("storage type is not a torch storage class");
    if (!key->is(Kind::kString) || key->s.empty() || key->s.size() > 64) bad("storage key is not a short string");
    if (!numel->is(Kind::kInt) || numel->i < 0) bad("storage size is not a non-negative integer");
    Value* s = doc_.make(Kind::kStorage);
    bool found = false;
    for (const StorageType& st : kStorageTypes)
      if (type->s == st.global) {
        s->tensor.dtype = st.dtype;
        found = true;
      }
    if (!found) bad(fmt::format("'{}' is not a storage type", type->s));
    s->tensor.storage_key = key->s;
    s->tensor.storage_numel = numel->i;
    return s;
  }

  void build(Value* obj, Value* state) {
    if (obj->is(Kind::kObject)) {
      if (!state->is(Kind::kDict)) bad(fmt::format("{} state is a {}", obj->s, kind_name(state->kind)));
      charge_copy(state->entries.size());
      obj->entries.insert(obj->entries.end(), state->entries.begin(), state->entries.end());
      return;
    }
    if (obj->is(Kind::kDict)) return;  // an OrderedDict's attributes (state_dict _metadata): not needed
    bad(fmt::format("BUILD on a {}", kind_name(obj->kind)));
  }

  // Copying a dict's entries is the one step whose cost is not bounded by the pickle's
  // length (the same dict can be copied again and again): a budget keeps it linear.
  void charge_copy(size_t n) {
    if (n > copy_budget_) bad("the pickle copies dicts more than a checkpoint ever does");
    copy_budget_ -= n;
  }

  std::span<const uint8_t> in_;
  const std::string& what_;
  Document& doc_;
  size_t pos_ = 0, op_pos_ = 0;
  size_t copy_budget_ = 4 * in_.size() + 1024;
  std::vector<Value*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, Value*> memo_;
};

}  // namespace

const std::vector<std::string>& allowed_globals() {
  static const std::vector<std::string> all = [] {
    std::vector<std::string> v;
    for (const char* c : kCallables) v.emplace_back(c);
    for (const StorageType& t : kStorageTypes) v.emplace_back(t.global);
    for (const char* c : kConstants) v.emplace_back(c);
    return v;
  }();
  return all;
}

void read_pickle(std::span<const uint8_t> bytes, const std::string& what, Document& doc) {
  if (bytes.size() >= 2 && bytes[0] == 0x80 && bytes[1] < 2)
    failf("{}: pickle protocol {} (torch.save writes protocol 2)", what, bytes[1]);
  Interpreter in(bytes, what, doc);
  doc.root = in.run();
}

}  // namespace txl::pt
