#include "txl/convert/zip_archive.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include "txl/core/error.h"

namespace txl::zip {
namespace {

constexpr uint32_t kLocalHeader = 0x04034b50;
constexpr uint32_t kCentralHeader = 0x02014b50;
constexpr uint32_t kEndOfCentralDir = 0x06054b50;
constexpr uint32_t kZip64EndOfCentralDir = 0x06064b50;
constexpr uint32_t kZip64Locator = 0x07064b50;
constexpr size_t kEndRecordSize = 22;
constexpr size_t kDataAlignment = 64;

// Little-endian reads with the bounds checked against the archive.
class Cursor {
 public:
  Cursor(std::span<const uint8_t> bytes, const std::string& what) : bytes_(bytes), what_(what) {}
  void need(uint64_t pos, uint64_t n, const char* item) const {
    if (pos > bytes_.size() || n > bytes_.size() - pos)
      failf("{}: {} at byte {} runs past the end of the file ({} bytes; truncated?)", what_, item, pos,
            bytes_.size());
  }
  uint64_t le(uint64_t pos, int n, const char* item) const {
    need(pos, static_cast<uint64_t>(n), item);
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | bytes_[pos + static_cast<uint64_t>(i)];
    return v;
  }
  uint16_t u16(uint64_t pos, const char* item) const { return static_cast<uint16_t>(le(pos, 2, item)); }
  uint32_t u32(uint64_t pos, const char* item) const { return static_cast<uint32_t>(le(pos, 4, item)); }
  uint64_t u64(uint64_t pos, const char* item) const { return le(pos, 8, item); }

 private:
  std::span<const uint8_t> bytes_;
  const std::string& what_;
};

uint32_t crc_of(std::span<const uint8_t> data) {
  uLong crc = crc32(0L, Z_NULL, 0);
  size_t done = 0;
  while (done < data.size()) {
    const size_t n = std::min<size_t>(data.size() - done, std::numeric_limits<uInt>::max());
    crc = crc32(crc, data.data() + done, static_cast<uInt>(n));
    done += n;
  }
  return static_cast<uint32_t>(crc);
}

std::vector<uint8_t> inflate_raw(std::span<const uint8_t> in, uint64_t size, const std::string& what,
                                 const std::string& name) {
  // Deflate expands at most ~1032:1, so a larger claim is corrupt (and is not allocated).
  if (size / 1032 > in.size() + 1)
    failf("{}: entry '{}' claims {} bytes from {} deflated bytes (corrupt?)", what, name, size, in.size());
  std::vector<uint8_t> out(static_cast<size_t>(size));
  z_stream zs{};
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) failf("{}: zlib cannot start inflating '{}'", what, name);
  size_t in_done = 0, out_done = 0;
  int rc = Z_OK;
  while (rc == Z_OK) {
    const size_t in_n = std::min<size_t>(in.size() - in_done, std::numeric_limits<uInt>::max());
    const size_t out_n = std::min<size_t>(out.size() - out_done, std::numeric_limits<uInt>::max());
    zs.next_in = const_cast<Bytef*>(in.data() + in_done);
    zs.avail_in = static_cast<uInt>(in_n);
    zs.next_out = out.data() + out_done;
    zs.avail_out = static_cast<uInt>(out_n);
    rc = inflate(&zs, Z_NO_FLUSH);
    in_done += in_n - zs.avail_in;
    out_done += out_n - zs.avail_out;
    if (rc == Z_OK && in_n == zs.avail_in && out_n == zs.avail_out) rc = Z_BUF_ERROR;  // no progress
  }
  inflateEnd(&zs);
  if (rc != Z_STREAM_END || out_done != out.size())
    failf("{}: entry '{}' does not inflate to its {} bytes (corrupt deflate data)", what, name, size);
  return out;
}

void put(std::vector<uint8_t>& out, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

}  // namespace

Archive Archive::parse(std::span<const uint8_t> bytes, std::string what) {
  Archive a;
  a.bytes_ = bytes;
  a.what_ = std::move(what);
  const Cursor c(bytes, a.what_);
  if (bytes.size() < kEndRecordSize)
    failf("{}: not a ZIP archive ({} bytes; truncated?)", a.what_, bytes.size());
  // The end record is the last 22 bytes plus a comment of at most 65535 bytes.
  uint64_t eocd = std::numeric_limits<uint64_t>::max();
  const uint64_t lowest = bytes.size() > kEndRecordSize + 0xFFFF ? bytes.size() - kEndRecordSize - 0xFFFF : 0;
  for (uint64_t p = bytes.size() - kEndRecordSize + 1; p-- > lowest;) {
    if (c.u32(p, "end record") == kEndOfCentralDir) {
      eocd = p;
      break;
    }
  }
  if (eocd == std::numeric_limits<uint64_t>::max())
    failf("{}: not a ZIP archive or truncated (no end-of-central-directory record)", a.what_);
  uint64_t count = c.u16(eocd + 10, "end record");
  uint64_t dir_size = c.u32(eocd + 12, "end record");
  uint64_t dir_offset = c.u32(eocd + 16, "end record");
  if (count == 0xFFFF || dir_size == 0xFFFFFFFF || dir_offset == 0xFFFFFFFF) {
    if (eocd < 20 || c.u32(eocd - 20, "ZIP64 locator") != kZip64Locator)
      failf("{}: ZIP64 archive without its ZIP64 locator (corrupt?)", a.what_);
    const uint64_t z64 = c.u64(eocd - 20 + 8, "ZIP64 locator");
    if (c.u32(z64, "ZIP64 end record") != kZip64EndOfCentralDir)
      failf("{}: ZIP64 end record missing at byte {} (corrupt?)", a.what_, z64);
    count = c.u64(z64 + 32, "ZIP64 end record");
    dir_size = c.u64(z64 + 40, "ZIP64 end record");
    dir_offset = c.u64(z64 + 48, "ZIP64 end record");
  }
  c.need(dir_offset, dir_size, "central directory");
  if (count > dir_size / 46 + 1) failf("{}: central directory claims {} entries in {} bytes", a.what_, count, dir_size);
  uint64_t p = dir_offset;
  for (uint64_t i = 0; i < count; ++i) {
    if (c.u32(p, "central directory entry") != kCentralHeader)
      failf("{}: central directory entry {} is corrupt (bad signature at byte {})", a.what_, i, p);
    Entry e;
    const uint16_t flags = c.u16(p + 8, "central directory entry");
    e.method = c.u16(p + 10, "central directory entry");
    e.crc32 = c.u32(p + 16, "central directory entry");
    e.compressed_size = c.u32(p + 20, "central directory entry");
    e.size = c.u32(p + 24, "central directory entry");
    const uint16_t name_len = c.u16(p + 28, "central directory entry");
    const uint16_t extra_len = c.u16(p + 30, "central directory entry");
    const uint16_t comment_len = c.u16(p + 32, "central directory entry");
    uint64_t header = c.u32(p + 42, "central directory entry");
    c.need(p + 46, uint64_t{name_len} + extra_len + comment_len, "central directory entry");
    e.name.assign(reinterpret_cast<const char*>(bytes.data() + p + 46), name_len);
    if (flags & 1) failf("{}: entry '{}' is encrypted", a.what_, e.name);
    // ZIP64 extra field: the 64-bit values of the fields that hold 0xFFFFFFFF, in order.
    uint64_t x = p + 46 + name_len;
    const uint64_t x_end = x + extra_len;
    while (x + 4 <= x_end) {
      const uint16_t id = c.u16(x, "extra field");
      const uint16_t len = c.u16(x + 2, "extra field");
      if (x + 4 + len > x_end) failf("{}: entry '{}' has a corrupt extra field", a.what_, e.name);
      if (id == 0x0001) {
        uint64_t q = x + 4;
        auto take = [&](uint64_t& field) {
          if (field != 0xFFFFFFFF) return;
          if (q + 8 > x + 4 + len) failf("{}: entry '{}' has a short ZIP64 extra field", a.what_, e.name);
          field = c.u64(q, "ZIP64 extra field");
          q += 8;
        };
        take(e.size);
        take(e.compressed_size);
        take(header);
      }
      x += 4 + uint64_t{len};
    }
    if (c.u32(header, "local header") != kLocalHeader)
      failf("{}: entry '{}' has no local header at byte {} (corrupt or truncated?)", a.what_, e.name, header);
    const uint16_t local_name = c.u16(header + 26, "local header");
    const uint16_t local_extra = c.u16(header + 28, "local header");
    e.data_offset = header + 30 + local_name + local_extra;
    c.need(e.data_offset, e.compressed_size, fmt::format("data of entry '{}'", e.name).c_str());
    if (e.method != 0 && e.method != 8)
      failf("{}: entry '{}' uses compression method {} (only stored and deflate are read)", a.what_, e.name,
            e.method);
    if (e.method == 0 && e.size != e.compressed_size)
      failf("{}: stored entry '{}' has sizes {} and {} (corrupt?)", a.what_, e.name, e.size, e.compressed_size);
    a.entries_.push_back(std::move(e));
    p += 46 + uint64_t{name_len} + extra_len + comment_len;
  }
  return a;
}

Archive Archive::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) failf("{}: cannot open: {}", path, std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    failf("{}: cannot stat: {}", path, std::strerror(errno));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  std::shared_ptr<void> mapping;
  const uint8_t* data = nullptr;
  if (size > 0) {
    void* m = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      ::close(fd);
      failf("{}: cannot map: {}", path, std::strerror(errno));
    }
    mapping = std::shared_ptr<void>(m, [size](void* q) { munmap(q, size); });
    data = static_cast<const uint8_t*>(m);
  }
  ::close(fd);
  Archive a = parse(std::span<const uint8_t>(data, size), path);
  a.mapping_ = std::move(mapping);
  return a;
}

const Entry* Archive::find(const std::string& name) const {
  for (const Entry& e : entries_)
    if (e.name == name) return &e;
  return nullptr;
}

std::span<const uint8_t> Archive::view(const Entry& e, std::vector<uint8_t>& scratch) const {
  const std::span<const uint8_t> raw = bytes_.subspan(e.data_offset, e.compressed_size);
  std::span<const uint8_t> data = raw;
  if (e.method == 8) {
    scratch = inflate_raw(raw, e.size, what_, e.name);
    data = scratch;
  }
  if (crc_of(data) != e.crc32) failf("{}: entry '{}' fails its CRC-32 check (corrupt file)", what_, e.name);
  return data;
}

std::vector<uint8_t> Archive::read(const Entry& e) const {
  std::vector<uint8_t> scratch;
  const std::span<const uint8_t> data = view(e, scratch);
  if (e.method == 8) return scratch;
  return std::vector<uint8_t>(data.begin(), data.end());
}

void Writer::add(const std::string& name, std::span<const uint8_t> data) {
  TXL_CHECK(name.size() < 0xFFFF, "zip: entry name too long: {}", name);
  const uint64_t header = out_.size();
  // The local extra field pads the data to the alignment.
  const uint64_t unpadded = header + 30 + name.size() + 4;
  const uint64_t pad = (kDataAlignment - unpadded % kDataAlignment) % kDataAlignment;
  const uint32_t crc = crc_of(data);
  put(out_, kLocalHeader, 4);
  put(out_, 20, 2);   // version needed
  put(out_, 0x800, 2);  // flags: UTF-8 names
  put(out_, 0, 2);    // stored
  put(out_, 0, 2);    // time
  put(out_, 0x21, 2);  // date 1980-01-01
  put(out_, crc, 4);
  put(out_, data.size(), 4);
  put(out_, data.size(), 4);
  put(out_, name.size(), 2);
  put(out_, 4 + pad, 2);
  out_.insert(out_.end(), name.begin(), name.end());
  put(out_, 0x4650, 2);  // a private extra-field id ("PF"): padding
  put(out_, pad, 2);
  out_.insert(out_.end(), static_cast<size_t>(pad), uint8_t{'Z'});
  out_.insert(out_.end(), data.begin(), data.end());
  if (out_.size() >= 0xFFFFFFFFull || data.size() >= 0xFFFFFFFFull)
    failf("zip: the archive would exceed 4 GiB (ZIP64 output is not supported)");
  records_.push_back({name, crc, data.size(), header});
}

void Writer::add(const std::string& name, const std::string& text) {
  add(name, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

std::vector<uint8_t> Writer::finish() {
  const uint64_t dir_offset = out_.size();
  for (const Record& r : records_) {
    put(out_, kCentralHeader, 4);
    put(out_, 20, 2);  // made by
    put(out_, 20, 2);  // needed
    put(out_, 0x800, 2);
    put(out_, 0, 2);
    put(out_, 0, 2);
    put(out_, 0x21, 2);
    put(out_, r.crc32, 4);
    put(out_, r.size, 4);
    put(out_, r.size, 4);
    put(out_, r.name.size(), 2);
    put(out_, 0, 2);  // extra
    put(out_, 0, 2);  // comment
    put(out_, 0, 2);  // disk
    put(out_, 0, 2);  // internal attributes
    put(out_, 0, 4);  // external attributes
    put(out_, r.header_offset, 4);
    out_.insert(out_.end(), r.name.begin(), r.name.end());
  }
  const uint64_t dir_size = out_.size() - dir_offset;
  TXL_CHECK(records_.size() < 0xFFFF && out_.size() < 0xFFFFFFFFull,
            "zip: {} entries / {} bytes need ZIP64, which is not supported", records_.size(), out_.size());
  put(out_, kEndOfCentralDir, 4);
  put(out_, 0, 2);
  put(out_, 0, 2);
  put(out_, records_.size(), 2);
  put(out_, records_.size(), 2);
  put(out_, dir_size, 4);
  put(out_, dir_offset, 4);
  put(out_, 0, 2);
  records_.clear();
  return std::move(out_);
}

}  // namespace txl::zip
