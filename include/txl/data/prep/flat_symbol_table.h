// Open-addressing hash table from symbol text to a small value, for txl_prep's inner
// loops (a lookup per token). Slots hold the full hash and the symbol's place in one
// character arena, so a lookup usually touches one slot and one string: several times
// fewer cache misses than std::unordered_map's node chains.
#pragma once
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace txl::data::prep {

template <typename Value>
class FlatSymbolTable {
 public:
  explicit FlatSymbolTable(size_t expected = 1024) { rehash(capacity_for(expected)); }

  static uint64_t hash(std::string_view s) { return std::hash<std::string_view>{}(s) | 1; }  // 0 marks empty

  Value* find(std::string_view s) { return find(s, hash(s)); }
  Value* find(std::string_view s, uint64_t h) {
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      Slot& slot = slots_[i];
      if (slot.hash == 0) return nullptr;
      if (slot.hash == h && slot.length == s.size() &&
          std::memcmp(arena_.data() + slot.offset, s.data(), s.size()) == 0)
        return &slot.value;
    }
  }
  const Value* find(std::string_view s) const { return const_cast<FlatSymbolTable*>(this)->find(s); }

  // Inserts a symbol that is not present yet.
  Value& insert(std::string_view s, uint64_t h, const Value& value) {
    if ((size_ + 1) * 4 > slots_.size() * 3) rehash(slots_.size() * 2);
    ++size_;
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      Slot& slot = slots_[i];
      if (slot.hash != 0) continue;
      slot.hash = h;
      slot.offset = arena_.size();
      slot.length = s.size();
      slot.value = value;
      arena_.append(s);
      return slot.value;
    }
  }

  size_t size() const { return size_; }
  // fn(std::string_view symbol, Value& value) for every entry, in no particular order.
  template <typename Fn>
  void for_each(Fn&& fn) {
    for (Slot& slot : slots_)
      if (slot.hash != 0) fn(std::string_view(arena_.data() + slot.offset, slot.length), slot.value);
  }

 private:
  struct Slot {
    uint64_t hash = 0;
    size_t offset = 0;
    size_t length = 0;
    Value value{};
  };
  static size_t capacity_for(size_t n) {
    size_t c = 16;
    while (c * 3 < n * 4 + 4) c *= 2;
    return c;
  }
  void rehash(size_t capacity) {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(capacity, Slot{});
    mask_ = capacity - 1;
    for (const Slot& s : old) {
      if (s.hash == 0) continue;
      size_t i = s.hash & mask_;
      while (slots_[i].hash != 0) i = (i + 1) & mask_;
      slots_[i] = s;
    }
  }
  std::vector<Slot> slots_;
  std::string arena_;
  size_t mask_ = 0, size_ = 0;
};

}  // namespace txl::data::prep
