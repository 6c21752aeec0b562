// Emits a pickle stream (protocol 2) the way torch.save lays out a checkpoint: tensors
// as torch._utils._rebuild_tensor_v2 calls on persistent storage references
// ('storage', torch.<Type>Storage, key, 'cpu', numel). The caller drives it like a
// stack machine: begin a container, write its items, end it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "txl/convert/pickle_value.h"

namespace txl::pt {

class PickleWriter {
 public:
  PickleWriter();
  void none();
  void boolean(bool v);
  void integer(int64_t v);
  void real(double v);
  void string(const std::string& v);
  // A contiguous tensor of `shape` over storage `key` holding exactly its elements.
  void tensor(DType dtype, const std::string& key, const std::vector<int64_t>& shape);

  void begin_dict();          // {} then MARK: key, value, key, value, ...
  void end_dict();            // SETITEMS
  void begin_ordered_dict();  // collections.OrderedDict() then MARK
  void begin_list();
  void end_list();
  void begin_tuple();
  void end_tuple();
  // An instance of module.name created without arguments, its attributes from the dict
  // written between begin_object and end_object (argparse.Namespace, utils.vocabulary.Vocab).
  void begin_object(const std::string& module, const std::string& name);
  void end_object();
  // module.name(arguments...): the arguments are written between the two.
  void begin_call(const std::string& module, const std::string& name);
  void end_call();

  std::vector<uint8_t> finish();  // STOP

 private:
  void op(uint8_t code) { out_.push_back(code); }
  void le(uint64_t v, int n);
  void global(const std::string& module, const std::string& name);
  std::vector<uint8_t> out_;
};

}  // namespace txl::pt
