// ZIP archives as PyTorch writes them (torch.save since 1.6): entries stored or
// deflated, local headers that may defer sizes to a data descriptor (the central
// directory is authoritative), ZIP64 records for large files. The reader checks every
// offset and length against the bytes it was given, and each entry's CRC-32.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace txl::zip {

struct Entry {
  std::string name;
  uint16_t method = 0;  // 0 stored, 8 deflate
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0;
  uint64_t size = 0;
  uint64_t data_offset = 0;  // of the (compressed) data in the archive
};

class Archive {
 public:
  // Parses the central directory of `bytes` (which must outlive the archive). `what`
  // names the file in messages.
  static Archive parse(std::span<const uint8_t> bytes, std::string what);
  // Maps a file read-only and parses it.
  static Archive open(const std::string& path);

  const std::string& what() const { return what_; }
  const std::vector<Entry>& entries() const { return entries_; }
  const Entry* find(const std::string& name) const;
  // The entry's contents (inflated when deflated), CRC-checked.
  std::vector<uint8_t> read(const Entry& e) const;
  // Stored entries without a copy (the CRC is checked); deflated ones are inflated.
  std::span<const uint8_t> view(const Entry& e, std::vector<uint8_t>& scratch) const;

 private:
  std::shared_ptr<void> mapping_;  // keeps a mapped file alive
  std::span<const uint8_t> bytes_;
  std::string what_;
  std::vector<Entry> entries_;
};

// Writes a ZIP archive of stored entries, each entry's data aligned to 64 bytes (as
// torch.save does, so a reader may map tensors in place). Archives above 4 GiB are refused.
class Writer {
 public:
  void add(const std::string& name, std::span<const uint8_t> data);
  void add(const std::string& name, const std::string& text);
  // The finished archive (central directory appended).
  std::vector<uint8_t> finish();

 private:
  struct Record {
    std::string name;
    uint32_t crc32;
    uint64_t size;
    uint64_t header_offset;
  };
  std::vector<uint8_t> out_;
  std::vector<Record> records_;
};

}  // namespace txl::zip
