// h5::File keeps every group's links and every object's attributes in the object header
// (checksummed), not in HDF5's "dense" storage (a fractal heap and B-trees), however many
// there are: libhdf5 1.10.8 crashed on a damaged dense group (fuzz/README.md).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "txl/io/h5file.h"

namespace txl {
namespace {

namespace fs = std::filesystem;

// Storage of a group's links, and bytes of dense attribute storage of an object.
H5G_storage_type_t link_storage(const h5::File& f, const std::string& group) {
  h5::Handle g(H5Gopen2(f.id(), group.c_str(), H5P_DEFAULT), H5Gclose);
  H5G_info_t info{};
  EXPECT_GE(H5Gget_info(g.get(), &info), 0) << group;
  return info.storage_type;
}
hsize_t dense_attribute_bytes(const h5::File& f, const std::string& object) {
  H5O_info_t info{};
  EXPECT_GE(H5Oget_info_by_name2(f.id(), object.c_str(), &info, H5O_INFO_META_SIZE, H5P_DEFAULT), 0) << object;
  return info.meta_size.attr.index_size + info.meta_size.attr.heap_size;
}

TEST(H5CompactStorage, ManyLinksAndAttributesStayInTheObjectHeader) {
  const fs::path dir = fs::temp_directory_path() / ("txl_h5_compact_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "many.h5").string();
  {
    h5::File f = h5::File::create(path);
    for (int i = 0; i < 200; ++i) {
      f.write(fmt::format("/model/layers.{}.weight", i), std::vector<float>{1.0f, 2.0f});
      f.set_attr("/", fmt::format("root_attr_{}", i), int64_t{i});
      f.set_attr("/model", fmt::format("attr_{}", i), std::string("value"));
      f.set_attr("/model/layers.0.weight", fmt::format("attr_{}", i), 0.5);
    }
    for (int i = 0; i < 20; ++i) f.create_group(fmt::format("/group_{}", i));
  }
  const h5::File f = h5::File::open(path);
  EXPECT_EQ(f.list("/model").size(), 200u);
  EXPECT_EQ(f.attr_int("/", "root_attr_199"), 199);
  EXPECT_EQ(link_storage(f, "/"), H5G_STORAGE_TYPE_COMPACT);
  EXPECT_EQ(link_storage(f, "/model"), H5G_STORAGE_TYPE_COMPACT);
  for (const char* object : {"/", "/model", "/model/layers.0.weight"})
    EXPECT_EQ(dense_attribute_bytes(f, object), 0u) << object;
}

// What the property lists change: HDF5's defaults move past 8 links to dense storage.
TEST(H5CompactStorage, HdfDefaultsWouldUseDenseStorage) {
  const fs::path dir = fs::temp_directory_path() / ("txl_h5_compact_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "defaults.h5").string();
  h5::Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_LATEST);
  {
    h5::Handle file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), H5Fclose);
    for (int i = 0; i < 20; ++i)
      h5::Handle g(H5Gcreate2(file.get(), fmt::format("/g{}", i).c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                   H5Gclose);
  }
  EXPECT_EQ(link_storage(h5::File::open(path), "/"), H5G_STORAGE_TYPE_DENSE);
}

}  // namespace
}  // namespace txl
