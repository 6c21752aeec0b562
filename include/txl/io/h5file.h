// Thin RAII layer over the HDF5 C API: files, datasets (whole or 1-D hyperslab), and
// attributes. Every failure becomes a txl::Error naming the file and object. HDF5's own
// error stack printing is switched off; we report one line instead.
#pragma once
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

#include "txl/core/tensor.h"

namespace txl::h5 {

// Owns one hid_t and closes it with the matching H5*close.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& o) noexcept : id_(o.id_), closer_(o.closer_) { o.id_ = H5I_INVALID_HID; }
  Handle& operator=(Handle&& o) noexcept;
  ~Handle() { reset(); }
  void reset();
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

class File {
 public:
  // Creates (truncates) a file for writing.
  static File create(const std::string& path);
  // Creates a file that lives in memory only (gone when closed); `name` labels messages.
  static File create_in_memory(const std::string& name);
  // Opens an existing file; a missing or non-HDF5 file gives a clear error.
  static File open(const std::string& path, bool writable = false);

  const std::string& path() const { return path_; }
  hid_t id() const { return file_.get(); }
  void flush();

  // True when an object (group or dataset) exists at `path` ("/a/b").
  bool exists(const std::string& path) const;
  // Creates a group (and its parents) unless it exists. Every group and object txl writes
  // keeps its links and attributes in its (checksummed) object header, however many.
  void create_group(const std::string& path);
  // Names of the direct children of a group.
  std::vector<std::string> list(const std::string& group) const;

  // Writes a dataset (parent groups are created), chunked along the first dimension
  // (chunk_rows rows per chunk, or about 1 MiB when 0) with a Fletcher-32 checksum per
  // chunk that HDF5 verifies whenever the chunk is read. Scalars and empty datasets are
  // stored without either.
  template <typename T>
  void write(const std::string& path, const T* data, const Shape& shape, int64_t chunk_rows = 0);
  template <typename T>
  void write(const std::string& path, const std::vector<T>& data, int64_t chunk_rows = 0) {
    write(path, data.data(), Shape{static_cast<int64_t>(data.size())}, chunk_rows);
  }
  // A list of strings (a vocabulary, BPE merges) as a group `path` holding two datasets
  // written as above: `bytes` (uint8, the strings one after another) and `offsets` (uint64
  // [n + 1]; string i is bytes [offsets[i], offsets[i + 1])). Not HDF5 variable-length
  // strings: those live in the global heap, which has no checksum and which libhdf5 1.10
  // trusts (a damaged heap can hang or crash the reader).
  void write_strings(const std::string& path, const std::vector<std::string>& strings);

  Shape shape(const std::string& path) const;
  // Reads a whole dataset, converting to T; checks the stored shape when `expect` is given.
  template <typename T>
  std::vector<T> read(const std::string& path, Shape* shape_out = nullptr) const;
  template <typename T>
  void read_into(const std::string& path, T* out, const Shape& expect) const;
  // Reads elements [offset, offset+count) of the first dimension of a dataset.
  template <typename T>
  void read_rows(const std::string& path, int64_t offset, int64_t count, T* out) const;
  // Reads a string list written by write_strings, checking its offsets; a variable-length
  // string dataset (files of earlier txl versions) is read through libhdf5 as before.
  std::vector<std::string> read_strings(const std::string& path) const;
  // True when `path` is a string list as write_strings writes it (a group), false for a
  // variable-length string dataset of an earlier version.
  bool is_string_list(const std::string& path) const;

  // True when the dataset carries per-chunk Fletcher-32 checksums (everything File::write
  // and txl_prep write since they were added; older files have none and still read).
  bool has_checksum(const std::string& path) const;
  // Reads every fixed-size dataset of the file once, so HDF5 checks each chunk's checksum
  // (and the metadata's); throws naming the file and the first dataset that fails.
  void verify_datasets() const;

  // Attributes on an object ("/" for the file).
  void set_attr(const std::string& obj, const std::string& name, int64_t value);
  void set_attr(const std::string& obj, const std::string& name, double value);
  void set_attr(const std::string& obj, const std::string& name, const std::string& value);
  void set_attr(const std::string& obj, const std::string& name, const std::vector<int64_t>& value);
  bool has_attr(const std::string& obj, const std::string& name) const;
  int64_t attr_int(const std::string& obj, const std::string& name) const;
  double attr_double(const std::string& obj, const std::string& name) const;
  std::string attr_string(const std::string& obj, const std::string& name) const;
  std::vector<int64_t> attr_ints(const std::string& obj, const std::string& name) const;

 private:
  File(std::string path, Handle file) : path_(std::move(path)), file_(std::move(file)) {}
  Handle open_object(const std::string& path) const;
  std::vector<std::string> read_vlen_strings(const std::string& path) const;
  void ensure_parent(const std::string& path);
  void put_attr(const std::string& obj, const std::string& name, hid_t type, hid_t space, const void* data);
  std::string path_;
  Handle file_;
};

// Writes `final_path` atomically: `write` fills a temporary file next to it, which is
// renamed into place only after `write` returns; on failure the temporary is removed and
// the old file (if any) is untouched.
template <typename Fn>
void write_atomically(const std::string& final_path, Fn&& write);
std::string temporary_path_for(const std::string& final_path);
void commit_temporary(const std::string& temp_path, const std::string& final_path);
void remove_quietly(const std::string& path);

template <typename Fn>
void write_atomically(const std::string& final_path, Fn&& write) {
  const std::string tmp = temporary_path_for(final_path);
  try {
    write(tmp);
  } catch (...) {
    remove_quietly(tmp);
    throw;
  }
  commit_temporary(tmp, final_path);
}

}  // namespace txl::h5
