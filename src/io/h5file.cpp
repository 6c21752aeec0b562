#include "txl/io/h5file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>

namespace txl::h5 {
namespace {

// HDF5 prints a stack trace per failed call unless told not to; we report one line.
// H5dont_atexit: HDF5's exit handler closes what is still open, and crashes on a file
// whose close already failed (a full disk); every txl file is closed by its Handle.
struct SilenceHdf5 {
  SilenceHdf5() {
    H5dont_atexit();
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
};
const SilenceHdf5 kSilence;

template <typename T>
hid_t native_type();
template <> hid_t native_type<float>() { return H5T_NATIVE_FLOAT; }
template <> hid_t native_type<double>() { return H5T_NATIVE_DOUBLE; }
template <> hid_t native_type<int32_t>() { return H5T_NATIVE_INT32; }
template <> hid_t native_type<int64_t>() { return H5T_NATIVE_INT64; }
template <> hid_t native_type<uint32_t>() { return H5T_NATIVE_UINT32; }
template <> hid_t native_type<uint8_t>() { return H5T_NATIVE_UINT8; }
template <> hid_t native_type<uint64_t>() { return H5T_NATIVE_UINT64; }

Handle check(hid_t id, Handle::Closer closer, const std::string& what) {
  if (id < 0) fail(what);
  return Handle(id, closer);
}

Handle simple_space(const Shape& shape) {
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  return check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose,
               "HDF5: cannot create dataspace");
}

// Rows per chunk when the caller gives none: about 1 MiB per chunk, so a read checks (and
// a flipped bit spoils) one small block, and chunk bookkeeping stays negligible.
hsize_t default_chunk_rows(const Shape& shape, size_t element_bytes) {
  int64_t row_bytes = static_cast<int64_t>(element_bytes);
  for (size_t d = 1; d < shape.size(); ++d) row_bytes *= std::max<int64_t>(shape[d], 1);
  const int64_t rows = std::max<int64_t>(1, (int64_t{1} << 20) / std::max<int64_t>(row_bytes, 1));
  return static_cast<hsize_t>(std::min(rows, shape[0]));
}

// Words of HDF5's error stack, for telling a failed checksum from other read failures.
herr_t collect_error(unsigned, const H5E_error2_t* e, void* out) {
  if (e->desc) *static_cast<std::string*>(out) += std::string(e->desc) + "; ";
  return 0;
}

// Why the last HDF5 call failed, in words a user can act on.
std::string read_failure_cause() {
  std::string stack;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_error, &stack);
  std::string lower = stack;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower.find("checksum") != std::string::npos || lower.find("fletcher") != std::string::npos)
    return "checksum mismatch: the file is corrupt";
  return "corrupt or truncated file?";
}

// Links and attributes stay in the object header (checksummed in the 1.8 format) however
// many there are, instead of moving to "dense" storage (a fractal heap and B-trees) past 8:
// libhdf5 1.10.8 crashed on a damaged dense group (fuzz/README.md). `plist` is a group,
// file or object creation property list.
void keep_links_and_attributes_compact(hid_t plist, bool links) {
  if (links) H5Pset_link_phase_change(plist, 65535, 6);
  H5Pset_attr_phase_change(plist, 65535, 6);
}

// Checks the size and place of every stored chunk of a dataset before HDF5 reads it: the
// chunk index (a version-1 B-tree) has no checksum, and libhdf5 1.10.8's Fletcher-32
// filter reads outside its buffer for a chunk recorded as shorter than the checksum
// (found by fuzz_corpus). A chunk must lie inside the file and, with only the checksum
// filter, hold its rows plus the 4 checksum bytes.
void check_chunk_index(hid_t file, hid_t ds, const std::string& file_name, const std::string& path) {
  Handle dcpl(H5Dget_create_plist(ds), H5Pclose);
  if (!dcpl.valid() || H5Pget_layout(dcpl.get()) != H5D_CHUNKED) return;
  const int n_filters = H5Pget_nfilters(dcpl.get());
  bool fletcher_only = n_filters == 1;
  for (int i = 0; i < n_filters; ++i) {
    unsigned flags = 0, config = 0;
    size_t n_values = 0;
    if (H5Pget_filter2(dcpl.get(), static_cast<unsigned>(i), &flags, &n_values, nullptr, 0, nullptr, &config) !=
        H5Z_FILTER_FLETCHER32)
      fletcher_only = false;
  }
  Handle ftype(H5Dget_type(ds), H5Tclose);
  const int rank = H5Pget_chunk(dcpl.get(), 0, nullptr);
  std::vector<hsize_t> dims(static_cast<size_t>(std::max(rank, 0)));
  if (!ftype.valid() || rank <= 0 || H5Pget_chunk(dcpl.get(), rank, dims.data()) != rank)
    failf("{}: dataset '{}' has an unreadable chunk layout (corrupt file?)", file_name, path);
  hsize_t chunk_bytes = H5Tget_size(ftype.get());
  for (const hsize_t d : dims) chunk_bytes *= d;
  hsize_t file_size = 0;
  H5Fget_filesize(file, &file_size);
  Handle space(H5Dget_space(ds), H5Sclose);
  hsize_t n_chunks = 0;
  if (!space.valid() || H5Dget_num_chunks(ds, space.get(), &n_chunks) < 0)
    failf("{}: dataset '{}': cannot read its chunk index (corrupt file?)", file_name, path);
  std::vector<hsize_t> offset(dims.size());
  for (hsize_t i = 0; i < n_chunks; ++i) {
    unsigned mask = 0;
    haddr_t address = 0;
    hsize_t size = 0;
    if (H5Dget_chunk_info(ds, space.get(), i, offset.data(), &mask, &address, &size) < 0 || address == HADDR_UNDEF ||
        address > file_size || size > file_size - address || (fletcher_only && mask == 0 && size != chunk_bytes + 4))
      failf("{}: dataset '{}': chunk {} is recorded at byte {} with {} bytes (corrupt file?)", file_name, path, i,
            address, size);
  }
}

Handle string_type() {
  Handle t = check(H5Tcopy(H5T_C_S1), H5Tclose, "HDF5: cannot create string type");
  H5Tset_size(t.get(), H5T_VARIABLE);
  H5Tset_cset(t.get(), H5T_CSET_UTF8);
  return t;
}

}  // namespace

Handle& Handle::operator=(Handle&& o) noexcept {
  if (this != &o) {
    reset();
    id_ = o.id_;
    closer_ = o.closer_;
    o.id_ = H5I_INVALID_HID;
  }
  return *this;
}

void Handle::reset() {
  if (id_ >= 0 && closer_) closer_(id_);
  id_ = H5I_INVALID_HID;
}

File File::create(const std::string& path) {
  // The 1.8 file format (superblock 2, object header 2) checksums every piece of metadata;
  // HDF5 1.8 and later read it.
  Handle fapl = check(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, "HDF5: property list");
  H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_LATEST);
  Handle fcpl = check(H5Pcreate(H5P_FILE_CREATE), H5Pclose, "HDF5: property list");
  keep_links_and_attributes_compact(fcpl.get(), true);  // the root group
  hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl.get(), fapl.get());
  if (id < 0) failf("{}: cannot create HDF5 file (directory missing or not writable?)", path);
  return File(path, Handle(id, H5Fclose));
}

File File::create_in_memory(const std::string& name) {
  // The core driver without a backing store: nothing touches the disk. HDF5 tells open
  // files apart by name, so each gets a distinct one.
  static std::atomic<int64_t> counter{0};
  const int64_t n = ++counter;
  const std::string unique = n == 1 ? name : fmt::format("{} #{}", name, n);
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  // Grows in 8 MiB steps (realloc; a converted model may be gigabytes).
  if (!fapl.valid() || H5Pset_fapl_core(fapl.get(), size_t{8} << 20, 0) < 0)
    failf("{}: cannot set up an in-memory file", name);
  Handle fcpl = check(H5Pcreate(H5P_FILE_CREATE), H5Pclose, "HDF5: property list");
  keep_links_and_attributes_compact(fcpl.get(), true);
  hid_t id = H5Fcreate(unique.c_str(), H5F_ACC_TRUNC, fcpl.get(), fapl.get());
  if (id < 0) failf("{}: cannot create an in-memory HDF5 file", name);
  return File(unique, Handle(id, H5Fclose));
}

File File::open(const std::string& path, bool writable) {
  if (!std::filesystem::exists(path)) failf("{}: file not found", path);
  if (H5Fis_hdf5(path.c_str()) <= 0) failf("{}: not an HDF5 file (truncated or foreign format)", path);
  hid_t id = H5Fopen(path.c_str(), writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, H5P_DEFAULT);
  if (id < 0) failf("{}: cannot open HDF5 file ({})", path, read_failure_cause());
  return File(path, Handle(id, H5Fclose));
}

void File::flush() {
  if (H5Fflush(file_.get(), H5F_SCOPE_GLOBAL) < 0) failf("{}: cannot write the file to disk (disk full?)", path_);
}

bool File::exists(const std::string& path) const {
  if (path == "/" || path.empty()) return true;
  // Check each prefix: H5Lexists fails on a missing intermediate group.
  size_t pos = 0;
  while (true) {
    pos = path.find('/', pos + 1);
    const std::string prefix = path.substr(0, pos);
    if (H5Lexists(file_.get(), prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    if (pos == std::string::npos) return true;
  }
}

std::vector<std::string> File::list(const std::string& group) const {
  Handle g = check(H5Gopen2(file_.get(), group.c_str(), H5P_DEFAULT), H5Gclose,
                   fmt::format("{}: no group '{}'", path_, group));
  H5G_info_t info;
  H5Gget_info(g.get(), &info);
  std::vector<std::string> names;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    ssize_t len = H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    std::string name(static_cast<size_t>(len), '\0');
    H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), static_cast<size_t>(len) + 1,
                       H5P_DEFAULT);
    names.push_back(name);
  }
  return names;
}

Handle File::open_object(const std::string& path) const {
  if (!exists(path)) failf("{}: missing '{}'", path_, path);
  return check(H5Oopen(file_.get(), path.c_str(), H5P_DEFAULT), H5Oclose,
               fmt::format("{}: cannot open '{}'", path_, path));
}

void File::ensure_parent(const std::string& path) {
  size_t pos = 0;
  while ((pos = path.find('/', pos + 1)) != std::string::npos) create_group(path.substr(0, pos));
}

void File::create_group(const std::string& path) {
  ensure_parent(path);
  if (H5Lexists(file_.get(), path.c_str(), H5P_DEFAULT) > 0) return;
  Handle gcpl = check(H5Pcreate(H5P_GROUP_CREATE), H5Pclose, "HDF5: property list");
  keep_links_and_attributes_compact(gcpl.get(), true);
  Handle g = check(H5Gcreate2(file_.get(), path.c_str(), H5P_DEFAULT, gcpl.get(), H5P_DEFAULT), H5Gclose,
                   fmt::format("{}: cannot create group '{}'", path_, path));
}

template <typename T>
void File::write(const std::string& path, const T* data, const Shape& shape, int64_t chunk_rows) {
  ensure_parent(path);
  Handle space = simple_space(shape);
  Handle dcpl = check(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, "HDF5: property list");
  keep_links_and_attributes_compact(dcpl.get(), false);
  if (!shape.empty() && shape_numel(shape) > 0) {
    // Chunked with a Fletcher-32 checksum per chunk, which HDF5 checks on every read.
    std::vector<hsize_t> chunk(shape.begin(), shape.end());
    chunk[0] = chunk_rows > 0 ? static_cast<hsize_t>(std::min<int64_t>(chunk_rows, shape[0]))
                              : default_chunk_rows(shape, sizeof(T));
    H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data());
    H5Pset_fletcher32(dcpl.get());
  }
  Handle ds = check(H5Dcreate2(file_.get(), path.c_str(), native_type<T>(), space.get(), H5P_DEFAULT, dcpl.get(),
                               H5P_DEFAULT),
                    H5Dclose, fmt::format("{}: cannot create dataset '{}'", path_, path));
  if (shape_numel(shape) > 0 &&
      H5Dwrite(ds.get(), native_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    failf("{}: cannot write dataset '{}' (disk full?)", path_, path);
}

void File::write_strings(const std::string& path, const std::vector<std::string>& strings) {
  std::vector<uint64_t> offsets{0};
  offsets.reserve(strings.size() + 1);
  for (const std::string& s : strings) offsets.push_back(offsets.back() + s.size());
  std::vector<uint8_t> bytes;
  bytes.reserve(offsets.back());
  for (const std::string& s : strings) bytes.insert(bytes.end(), s.begin(), s.end());
  ensure_parent(path + "/bytes");
  write(path + "/bytes", bytes);
  write(path + "/offsets", offsets);
}

Shape File::shape(const std::string& path) const {
  if (!exists(path)) failf("{}: missing dataset '{}'", path_, path);
  Handle ds = check(H5Dopen2(file_.get(), path.c_str(), H5P_DEFAULT), H5Dclose,
                    fmt::format("{}: '{}' is not a dataset", path_, path));
  Handle space = check(H5Dget_space(ds.get()), H5Sclose, "HDF5: dataspace");
  const int nd = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(static_cast<size_t>(std::max(nd, 0)));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return Shape(dims.begin(), dims.end());
}

template <typename T>
std::vector<T> File::read(const std::string& path, Shape* shape_out) const {
  const Shape s = shape(path);
  std::vector<T> out(static_cast<size_t>(shape_numel(s)));
  read_into(path, out.data(), s);
  if (shape_out) *shape_out = s;
  return out;
}

template <typename T>
void File::read_into(const std::string& path, T* out, const Shape& expect) const {
  const Shape s = shape(path);
  if (s != expect) failf("{}: dataset '{}' has shape {}, expected {}", path_, path, shape_string(s), shape_string(expect));
  Handle ds = check(H5Dopen2(file_.get(), path.c_str(), H5P_DEFAULT), H5Dclose,
                    fmt::format("{}: cannot open dataset '{}'", path_, path));
  check_chunk_index(file_.get(), ds.get(), path_, path);
  if (shape_numel(s) > 0 && H5Dread(ds.get(), native_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0)
    failf("{}: cannot read dataset '{}' ({})", path_, path, read_failure_cause());
}

template <typename T>
void File::read_rows(const std::string& path, int64_t offset, int64_t count, T* out) const {
  const Shape s = shape(path);
  if (s.empty() || offset < 0 || count < 0 || offset + count > s[0])
    failf("{}: rows [{}, {}) out of range for dataset '{}' of shape {}", path_, offset, offset + count, path,
          shape_string(s));
  if (count == 0) return;
  Handle ds = check(H5Dopen2(file_.get(), path.c_str(), H5P_DEFAULT), H5Dclose,
                    fmt::format("{}: cannot open dataset '{}'", path_, path));
  check_chunk_index(file_.get(), ds.get(), path_, path);
  Handle fspace = check(H5Dget_space(ds.get()), H5Sclose, "HDF5: dataspace");
  std::vector<hsize_t> start(s.size(), 0), cnt(s.begin(), s.end());
  start[0] = static_cast<hsize_t>(offset);
  cnt[0] = static_cast<hsize_t>(count);
  H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start.data(), nullptr, cnt.data(), nullptr);
  Handle mspace = check(H5Screate_simple(static_cast<int>(cnt.size()), cnt.data(), nullptr), H5Sclose,
                        "HDF5: dataspace");
  if (H5Dread(ds.get(), native_type<T>(), mspace.get(), fspace.get(), H5P_DEFAULT, out) < 0)
    failf("{}: cannot read rows [{}, {}) of dataset '{}' ({})", path_, offset, offset + count, path,
          read_failure_cause());
}

bool File::is_string_list(const std::string& path) const {
  Handle obj = open_object(path);
  return H5Iget_type(obj.get()) == H5I_GROUP;
}

std::vector<std::string> File::read_strings(const std::string& path) const {
  if (!is_string_list(path)) return read_vlen_strings(path);
  const std::string bytes_path = path + "/bytes", offsets_path = path + "/offsets";
  if (shape(bytes_path).size() != 1 || shape(offsets_path).size() != 1)
    failf("{}: string list '{}': bytes and offsets must be 1-D datasets", path_, path);
  const std::vector<uint8_t> bytes = read<uint8_t>(bytes_path);
  const std::vector<uint64_t> offsets = read<uint64_t>(offsets_path);
  if (offsets.empty() || offsets.front() != 0 || offsets.back() != bytes.size())
    failf("{}: string list '{}': offsets must run from 0 to the {} bytes (corrupt file?)", path_, path,
          bytes.size());
  std::vector<std::string> out;
  out.reserve(offsets.size() - 1);
  for (size_t i = 0; i + 1 < offsets.size(); ++i) {
    if (offsets[i + 1] < offsets[i] || offsets[i + 1] > bytes.size())
      failf("{}: string list '{}': offsets[{}] = {} is out of order (corrupt file?)", path_, path, i + 1,
            offsets[i + 1]);
    out.emplace_back(reinterpret_cast<const char*>(bytes.data()) + offsets[i], offsets[i + 1] - offsets[i]);
  }
  return out;
}

std::vector<std::string> File::read_vlen_strings(const std::string& path) const {
  const Shape s = shape(path);
  if (s.size() != 1) failf("{}: string dataset '{}' has shape {}, expected a 1-D list", path_, path, shape_string(s));
  Handle ds = check(H5Dopen2(file_.get(), path.c_str(), H5P_DEFAULT), H5Dclose,
                    fmt::format("{}: cannot open dataset '{}'", path_, path));
  Handle stored = check(H5Dget_type(ds.get()), H5Tclose, fmt::format("{}: '{}': datatype", path_, path));
  if (H5Tget_class(stored.get()) != H5T_STRING || H5Tis_variable_str(stored.get()) <= 0)
    failf("{}: '{}' is neither a string list nor a variable-length string dataset", path_, path);
  Handle type = string_type();
  std::vector<char*> ptrs(static_cast<size_t>(shape_numel(s)), nullptr);
  if (!ptrs.empty() && H5Dread(ds.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0)
    failf("{}: cannot read string dataset '{}' ({})", path_, path, read_failure_cause());
  std::vector<std::string> out;
  out.reserve(ptrs.size());
  for (char* p : ptrs) out.emplace_back(p ? p : "");
  if (!ptrs.empty()) {
    Handle space = check(H5Dget_space(ds.get()), H5Sclose, "HDF5: dataspace");
    H5Dvlen_reclaim(type.get(), space.get(), H5P_DEFAULT, ptrs.data());
  }
  return out;
}

bool File::has_checksum(const std::string& path) const {
  if (!exists(path)) failf("{}: missing dataset '{}'", path_, path);
  Handle ds = check(H5Dopen2(file_.get(), path.c_str(), H5P_DEFAULT), H5Dclose,
                    fmt::format("{}: '{}' is not a dataset", path_, path));
  Handle dcpl = check(H5Dget_create_plist(ds.get()), H5Pclose, "HDF5: property list");
  unsigned flags = 0;
  size_t n_values = 0;
  unsigned filter_config = 0;
  return H5Pget_filter_by_id2(dcpl.get(), H5Z_FILTER_FLETCHER32, &flags, &n_values, nullptr, 0, nullptr,
                              &filter_config) >= 0;
}

namespace {
herr_t collect_link(hid_t, const char* name, const H5L_info_t*, void* out) {
  static_cast<std::vector<std::string>*>(out)->push_back(std::string("/") + name);
  return 0;
}
}  // namespace

void File::verify_datasets() const {
  std::vector<std::string> names;
  if (H5Lvisit(file_.get(), H5_INDEX_NAME, H5_ITER_INC, collect_link, &names) < 0)
    failf("{}: cannot list the file's objects ({})", path_, read_failure_cause());
  std::vector<unsigned char> buffer;
  for (const std::string& name : names) {
    Handle obj = check(H5Oopen(file_.get(), name.c_str(), H5P_DEFAULT), H5Oclose,
                       fmt::format("{}: cannot open '{}' ({})", path_, name, read_failure_cause()));
    if (H5Iget_type(obj.get()) != H5I_DATASET) continue;
    Handle ftype = check(H5Dget_type(obj.get()), H5Tclose, fmt::format("{}: '{}': datatype", path_, name));
    if (H5Tdetect_class(ftype.get(), H5T_VLEN) > 0 || H5Tis_variable_str(ftype.get()) > 0) continue;
    check_chunk_index(file_.get(), obj.get(), path_, name);
    Handle mtype = check(H5Tget_native_type(ftype.get(), H5T_DIR_ASCEND), H5Tclose, "HDF5: native type");
    const size_t element = H5Tget_size(mtype.get());
    const Shape s = shape(name);
    if (s.empty() || shape_numel(s) == 0) {
      buffer.resize(element);
      if (shape_numel(s) > 0 && H5Dread(obj.get(), mtype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer.data()) < 0)
        failf("{}: cannot read dataset '{}' ({})", path_, name, read_failure_cause());
      continue;
    }
    // Slabs of whole rows, about 16 MiB at a time.
    const int64_t row = shape_numel(s) / s[0];
    const int64_t rows = std::max<int64_t>(1, (int64_t{16} << 20) / std::max<int64_t>(1, row * static_cast<int64_t>(element)));
    Handle fspace = check(H5Dget_space(obj.get()), H5Sclose, "HDF5: dataspace");
    for (int64_t at = 0; at < s[0]; at += rows) {
      const int64_t n = std::min(rows, s[0] - at);
      std::vector<hsize_t> start(s.size(), 0), cnt(s.begin(), s.end());
      start[0] = static_cast<hsize_t>(at);
      cnt[0] = static_cast<hsize_t>(n);
      H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start.data(), nullptr, cnt.data(), nullptr);
      Handle mspace = check(H5Screate_simple(static_cast<int>(cnt.size()), cnt.data(), nullptr), H5Sclose,
                            "HDF5: dataspace");
      buffer.resize(static_cast<size_t>(n * row) * element);
      if (H5Dread(obj.get(), mtype.get(), mspace.get(), fspace.get(), H5P_DEFAULT, buffer.data()) < 0)
        failf("{}: dataset '{}' is unreadable at rows [{}, {}) ({})", path_, name, at, at + n, read_failure_cause());
    }
  }
}

void File::put_attr(const std::string& obj, const std::string& name, hid_t type, hid_t space, const void* data) {
  Handle o = open_object(obj);
  if (H5Aexists(o.get(), name.c_str()) > 0) H5Adelete(o.get(), name.c_str());
  Handle a = check(H5Acreate2(o.get(), name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
                   fmt::format("{}: cannot create attribute '{}' on '{}'", path_, name, obj));
  if (H5Awrite(a.get(), type, data) < 0) failf("{}: cannot write attribute '{}'", path_, name);
}

void File::set_attr(const std::string& obj, const std::string& name, int64_t value) {
  Handle space = check(H5Screate(H5S_SCALAR), H5Sclose, "HDF5: dataspace");
  put_attr(obj, name, H5T_NATIVE_INT64, space.get(), &value);
}
void File::set_attr(const std::string& obj, const std::string& name, double value) {
  Handle space = check(H5Screate(H5S_SCALAR), H5Sclose, "HDF5: dataspace");
  put_attr(obj, name, H5T_NATIVE_DOUBLE, space.get(), &value);
}
void File::set_attr(const std::string& obj, const std::string& name, const std::string& value) {
  // A fixed-length string lives in the (checksummed) object header; a variable-length one
  // would go to the global heap, which has no checksum.
  Handle space = check(H5Screate(H5S_SCALAR), H5Sclose, "HDF5: dataspace");
  Handle type = check(H5Tcopy(H5T_C_S1), H5Tclose, "HDF5: cannot create string type");
  H5Tset_size(type.get(), std::max<size_t>(value.size(), 1));
  H5Tset_strpad(type.get(), H5T_STR_NULLPAD);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  const std::string padded = value.empty() ? std::string(1, '\0') : value;
  put_attr(obj, name, type.get(), space.get(), padded.data());
}
void File::set_attr(const std::string& obj, const std::string& name, const std::vector<int64_t>& value) {
  Handle space = simple_space({static_cast<int64_t>(value.size())});
  static const int64_t kNone = 0;  // H5Awrite rejects a null buffer even for an empty list
  put_attr(obj, name, H5T_NATIVE_INT64, space.get(), value.empty() ? &kNone : value.data());
}

bool File::has_attr(const std::string& obj, const std::string& name) const {
  if (!exists(obj)) return false;
  Handle o = open_object(obj);
  return H5Aexists(o.get(), name.c_str()) > 0;
}

namespace {
Handle open_attr(hid_t obj, const std::string& file, const std::string& objname, const std::string& name) {
  if (H5Aexists(obj, name.c_str()) <= 0) failf("{}: missing attribute '{}' on '{}'", file, name, objname);
  return check(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose,
               fmt::format("{}: cannot open attribute '{}'", file, name));
}
}  // namespace

int64_t File::attr_int(const std::string& obj, const std::string& name) const {
  Handle o = open_object(obj);
  Handle a = open_attr(o.get(), path_, obj, name);
  int64_t v = 0;
  if (H5Aread(a.get(), H5T_NATIVE_INT64, &v) < 0) failf("{}: attribute '{}' is not an integer", path_, name);
  return v;
}
double File::attr_double(const std::string& obj, const std::string& name) const {
  Handle o = open_object(obj);
  Handle a = open_attr(o.get(), path_, obj, name);
  double v = 0;
  if (H5Aread(a.get(), H5T_NATIVE_DOUBLE, &v) < 0) failf("{}: attribute '{}' is not a number", path_, name);
  return v;
}
std::string File::attr_string(const std::string& obj, const std::string& name) const {
  Handle o = open_object(obj);
  Handle a = open_attr(o.get(), path_, obj, name);
  Handle stored = check(H5Aget_type(a.get()), H5Tclose, fmt::format("{}: attribute '{}': type", path_, name));
  if (H5Tget_class(stored.get()) != H5T_STRING) failf("{}: attribute '{}' is not a string", path_, name);
  if (H5Tis_variable_str(stored.get()) > 0) {  // files of earlier txl versions
    Handle type = string_type();
    char* p = nullptr;
    if (H5Aread(a.get(), type.get(), &p) < 0)
      failf("{}: cannot read attribute '{}' ({})", path_, name, read_failure_cause());
    std::string s = p ? p : "";
    H5free_memory(p);
    return s;
  }
  const size_t size = H5Tget_size(stored.get());
  Handle type = check(H5Tcopy(stored.get()), H5Tclose, "HDF5: cannot create string type");  // same cset
  H5Tset_strpad(type.get(), H5T_STR_NULLPAD);
  std::string s(size, '\0');
  if (H5Aread(a.get(), type.get(), s.data()) < 0)
    failf("{}: cannot read attribute '{}' ({})", path_, name, read_failure_cause());
  s.resize(std::min(s.size(), s.find('\0')));
  return s;
}
std::vector<int64_t> File::attr_ints(const std::string& obj, const std::string& name) const {
  Handle o = open_object(obj);
  Handle a = open_attr(o.get(), path_, obj, name);
  Handle space = check(H5Aget_space(a.get()), H5Sclose, "HDF5: dataspace");
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  std::vector<int64_t> v(static_cast<size_t>(std::max<hssize_t>(n, 0)));
  if (!v.empty() && H5Aread(a.get(), H5T_NATIVE_INT64, v.data()) < 0)
    failf("{}: attribute '{}' is not an integer list", path_, name);
  return v;
}

std::string temporary_path_for(const std::string& final_path) {
  return final_path + ".tmp." + std::to_string(::getpid());
}

void commit_temporary(const std::string& temp_path, const std::string& final_path) {
  // Flush file contents to disk before the rename so a crash never exposes a torn file.
  if (FILE* f = std::fopen(temp_path.c_str(), "rb")) {
    ::fsync(::fileno(f));
    std::fclose(f);
  }
  std::error_code ec;
  std::filesystem::rename(temp_path, final_path, ec);
  if (ec) {
    remove_quietly(temp_path);
    failf("{}: cannot rename temporary file into place: {}", final_path, ec.message());
  }
  // And the directory entry, so the rename itself survives a node crash.
  const std::string dir = std::filesystem::path(final_path).parent_path().string();
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void remove_quietly(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove(path, ec);
}

#define TXL_H5_INSTANTIATE(T)                                                                  \
  template void File::write<T>(const std::string&, const T*, const Shape&, int64_t);          \
  template std::vector<T> File::read<T>(const std::string&, Shape*) const;                    \
  template void File::read_into<T>(const std::string&, T*, const Shape&) const;               \
  template void File::read_rows<T>(const std::string&, int64_t, int64_t, T*) const;
TXL_H5_INSTANTIATE(float)
TXL_H5_INSTANTIATE(double)
TXL_H5_INSTANTIATE(int32_t)
TXL_H5_INSTANTIATE(int64_t)
TXL_H5_INSTANTIATE(uint32_t)
TXL_H5_INSTANTIATE(uint8_t)
TXL_H5_INSTANTIATE(uint64_t)
#undef TXL_H5_INSTANTIATE

}  // namespace txl::h5
