// Streams of raw bytes for txl_prep: a plain file, or one member of a .zip archive
// (stored or deflated; inflated with zlib on the fly, CRC-checked), so the standard
// enwik8.zip / text8.zip downloads are read without unpacking them first.
#pragma once
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

namespace txl::data::prep {

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to `n` bytes; returns 0 only at the end. Throws txl::Error on read errors.
  virtual size_t read(char* buffer, size_t n) = 0;
  // Name for messages ("DIR/train.txt", "enwik8.zip:enwik8").
  virtual const std::string& name() const = 0;
  // Total bytes this source yields, or -1 when unknown.
  virtual int64_t size() const = 0;
};

class FileSource : public ByteSource {
 public:
  explicit FileSource(const std::string& path);  // "PATH: file not found" when missing
  ~FileSource() override;
  size_t read(char* buffer, size_t n) override;
  const std::string& name() const override { return path_; }
  int64_t size() const override { return size_; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  int64_t size_ = -1;
};

class ZipMemberSource : public ByteSource {
 public:
  // `member` empty: the archive must hold exactly one file.
  ZipMemberSource(const std::string& zip_path, const std::string& member);
  ~ZipMemberSource() override;
  size_t read(char* buffer, size_t n) override;
  const std::string& name() const override { return name_; }
  int64_t size() const override { return uncompressed_size_; }

 private:
  struct Inflater;
  std::string zip_path_, name_;
  std::FILE* file_ = nullptr;
  int method_ = 0;
  uint32_t expected_crc_ = 0, crc_ = 0;
  int64_t compressed_left_ = 0, uncompressed_size_ = 0, produced_ = 0;
  std::unique_ptr<Inflater> inflater_;
  bool finished_ = false;
};

// A file, or `member` of it when the path ends in ".zip".
std::unique_ptr<ByteSource> open_byte_source(const std::string& path, const std::string& zip_member = "");

}  // namespace txl::data::prep
