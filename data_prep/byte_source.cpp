#include "txl/data/prep/byte_source.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <vector>

#include "txl/core/error.h"

namespace txl::data::prep {

// ---- plain files -------------------------------------------------------------------------

FileSource::FileSource(const std::string& path) : path_(path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) failf("{}: file not found", path);
  if (std::filesystem::is_directory(path, ec)) failf("{}: is a directory, expected a file", path);
  file_ = std::fopen(path.c_str(), "rb");
  if (!file_) failf("{}: cannot open for reading", path);
  const auto size = std::filesystem::file_size(path, ec);
  size_ = ec ? -1 : static_cast<int64_t>(size);
}

FileSource::~FileSource() {
  if (file_) std::fclose(file_);
}

size_t FileSource::read(char* buffer, size_t n) {
  const size_t got = std::fread(buffer, 1, n, file_);
  if (got < n && std::ferror(file_)) failf("{}: read error", path_);
  return got;
}

// ---- zip members ---------------------------------------------------------------------------

namespace {
uint32_t le16(const unsigned char* p) { return p[0] | (p[1] << 8); }
uint32_t le32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}
void read_at(std::FILE* f, const std::string& path, int64_t offset, void* out, size_t n) {
  if (fseeko(f, static_cast<off_t>(offset), SEEK_SET) != 0 || std::fread(out, 1, n, f) != n)
    failf("{}: truncated zip archive", path);
}
}  // namespace

struct ZipMemberSource::Inflater {
  z_stream stream{};
  std::vector<unsigned char> input = std::vector<unsigned char>(1 << 20);
  ~Inflater() { inflateEnd(&stream); }
};

ZipMemberSource::ZipMemberSource(const std::string& zip_path, const std::string& member) : zip_path_(zip_path) {
  std::error_code ec;
  if (!std::filesystem::exists(zip_path, ec)) failf("{}: file not found", zip_path);
  file_ = std::fopen(zip_path.c_str(), "rb");
  if (!file_) failf("{}: cannot open for reading", zip_path);
  const auto file_size = static_cast<int64_t>(std::filesystem::file_size(zip_path, ec));

  // End of central directory: the last "PK\5\6" record within the final 64 KiB + 22 bytes.
  const int64_t tail = std::min<int64_t>(file_size, 65535 + 22);
  if (tail < 22) failf("{}: not a zip archive (too short)", zip_path);
  std::vector<unsigned char> buf(static_cast<size_t>(tail));
  read_at(file_, zip_path, file_size - tail, buf.data(), buf.size());
  int64_t eocd = -1;
  for (int64_t i = tail - 22; i >= 0; --i) {
    if (le32(&buf[static_cast<size_t>(i)]) == 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) failf("{}: not a zip archive (no end-of-central-directory record)", zip_path);
  const unsigned char* e = &buf[static_cast<size_t>(eocd)];
  const uint32_t entries = le16(e + 10), cd_size = le32(e + 12), cd_offset = le32(e + 16);
  if (cd_offset == 0xFFFFFFFFu || entries == 0xFFFFu)
    failf("{}: zip64 archives are not supported; unpack it and pass the file", zip_path);
  if (static_cast<int64_t>(cd_offset) + cd_size > file_size) failf("{}: truncated zip archive", zip_path);

  std::vector<unsigned char> cd(cd_size);
  read_at(file_, zip_path, cd_offset, cd.data(), cd.size());
  struct Entry {
    std::string name;
    int method;
    uint32_t crc, csize, usize, local;
  };
  std::vector<Entry> files;
  size_t p = 0;
  for (uint32_t i = 0; i < entries; ++i) {
    if (p + 46 > cd.size() || le32(&cd[p]) != 0x02014b50) failf("{}: corrupt zip central directory", zip_path);
    Entry en;
    en.method = static_cast<int>(le16(&cd[p + 10]));
    en.crc = le32(&cd[p + 16]);
    en.csize = le32(&cd[p + 20]);
    en.usize = le32(&cd[p + 24]);
    const uint32_t nlen = le16(&cd[p + 28]), xlen = le16(&cd[p + 30]), clen = le16(&cd[p + 32]);
    en.local = le32(&cd[p + 42]);
    if (p + 46 + nlen > cd.size()) failf("{}: corrupt zip central directory", zip_path);
    en.name.assign(reinterpret_cast<const char*>(&cd[p + 46]), nlen);
    p += 46 + nlen + xlen + clen;
    if (!en.name.empty() && en.name.back() != '/') files.push_back(std::move(en));
  }
  const Entry* chosen = nullptr;
  for (const Entry& en : files) {
    const std::string base = std::filesystem::path(en.name).filename().string();
    if (!member.empty() && (en.name == member || base == member)) chosen = &en;
  }
  if (member.empty() && files.size() == 1) chosen = &files[0];
  if (!chosen) {
    if (member.empty()) failf("{}: the archive holds {} files; expected exactly one", zip_path, files.size());
    failf("{}: the archive has no member '{}'", zip_path, member);
  }
  if (chosen->csize == 0xFFFFFFFFu || chosen->usize == 0xFFFFFFFFu)
    failf("{}: zip64 members are not supported; unpack it and pass the file", zip_path);
  if (chosen->method != 0 && chosen->method != 8)
    failf("{}: member '{}' uses compression method {} (only stored and deflate are supported)", zip_path, chosen->name,
          chosen->method);
  name_ = zip_path + ":" + chosen->name;
  method_ = chosen->method;
  expected_crc_ = chosen->crc;
  compressed_left_ = chosen->csize;
  uncompressed_size_ = chosen->usize;

  unsigned char local[30];
  read_at(file_, zip_path, chosen->local, local, sizeof(local));
  if (le32(local) != 0x04034b50) failf("{}: corrupt zip local header for '{}'", zip_path, chosen->name);
  const int64_t data_start = static_cast<int64_t>(chosen->local) + 30 + le16(local + 26) + le16(local + 28);
  if (data_start + compressed_left_ > file_size) failf("{}: truncated zip archive", zip_path);
  if (fseeko(file_, static_cast<off_t>(data_start), SEEK_SET) != 0) failf("{}: seek failed", zip_path);
  if (method_ == 8) {
    inflater_ = std::make_unique<Inflater>();
    if (inflateInit2(&inflater_->stream, -MAX_WBITS) != Z_OK) failf("{}: zlib initialisation failed", zip_path);
  }
}

ZipMemberSource::~ZipMemberSource() {
  if (file_) std::fclose(file_);
}

size_t ZipMemberSource::read(char* buffer, size_t n) {
  if (finished_ || n == 0) return 0;
  size_t produced = 0;
  if (method_ == 0) {
    const size_t want = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(n), compressed_left_));
    produced = want ? std::fread(buffer, 1, want, file_) : 0;
    if (produced < want) failf("{}: truncated zip archive", zip_path_);
    compressed_left_ -= static_cast<int64_t>(produced);
  } else {
    z_stream& z = inflater_->stream;
    z.next_out = reinterpret_cast<Bytef*>(buffer);
    z.avail_out = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
    while (z.avail_out > 0) {
      if (z.avail_in == 0 && compressed_left_ > 0) {
        const size_t want =
            static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(inflater_->input.size()), compressed_left_));
        const size_t got = std::fread(inflater_->input.data(), 1, want, file_);
        if (got < want) failf("{}: truncated zip archive", zip_path_);
        compressed_left_ -= static_cast<int64_t>(got);
        z.next_in = inflater_->input.data();
        z.avail_in = static_cast<uInt>(got);
      }
      const int rc = inflate(&z, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) break;
      if (rc == Z_BUF_ERROR && z.avail_in == 0 && compressed_left_ == 0)
        failf("{}: truncated deflate data in '{}'", zip_path_, name_);
      if (rc != Z_OK && rc != Z_BUF_ERROR) failf("{}: corrupt deflate data in '{}'", zip_path_, name_);
    }
    produced = n - z.avail_out;
  }
  crc_ = static_cast<uint32_t>(crc32(crc_, reinterpret_cast<const Bytef*>(buffer), static_cast<uInt>(produced)));
  produced_ += static_cast<int64_t>(produced);
  if (produced == 0 || produced < n) {
    finished_ = true;
    if (produced_ != uncompressed_size_ || crc_ != expected_crc_)
      failf("{}: member '{}' fails its CRC/size check (corrupt archive)", zip_path_, name_);
  }
  return produced;
}

std::unique_ptr<ByteSource> open_byte_source(const std::string& path, const std::string& zip_member) {
  if (path.size() > 4 && path.compare(path.size() - 4, 4, ".zip") == 0)
    return std::make_unique<ZipMemberSource>(path, zip_member);
  return std::make_unique<FileSource>(path);
}

}  // namespace txl::data::prep
