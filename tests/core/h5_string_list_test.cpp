// h5::File string lists (src/io/h5file.cpp): write_strings stores a group of checksummed
// `bytes` and `offsets`; read_strings checks the offsets before using them, and still reads
// the variable-length string datasets of files written before.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "txl/core/error.h"
#include "txl/io/h5file.h"

namespace txl {
namespace {

namespace fs = std::filesystem;

std::string temp_file(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("txl_h5_string_list_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return (dir / name).string();
}

// The message of the txl::Error `fn` throws ("" when it throws none).
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// A dataset of variable-length UTF-8 strings, as write_strings stored lists before.
void write_vlen_strings(const h5::File& f, const std::string& path, const std::vector<std::string>& strings) {
  std::vector<const char*> ptrs;
  for (const std::string& s : strings) ptrs.push_back(s.c_str());
  h5::Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  const hsize_t n = strings.size();
  h5::Handle space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  h5::Handle ds(H5Dcreate2(f.id(), path.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                H5Dclose);
  ASSERT_TRUE(ds.valid());
  ASSERT_GE(H5Dwrite(ds.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), 0);
}

TEST(H5StringList, RoundTripsEmptyMultiByteAndNulStrings) {
  const std::string path = temp_file("round_trip.h5");
  const std::vector<std::string> strings = {"the", "", "<eos>", "\xc3\xa9t\xc3\xa9", std::string("a\0b", 3), " "};
  {
    h5::File f = h5::File::create(path);
    f.write_strings("/vocab/symbols", strings);
    f.write_strings("/vocab/none", {});
  }
  const h5::File f = h5::File::open(path);
  EXPECT_TRUE(f.is_string_list("/vocab/symbols"));
  EXPECT_EQ(f.read_strings("/vocab/symbols"), strings);
  EXPECT_EQ(f.read_strings("/vocab/none"), std::vector<std::string>{});
  EXPECT_TRUE(f.has_checksum("/vocab/symbols/bytes"));
  EXPECT_TRUE(f.has_checksum("/vocab/symbols/offsets"));
  EXPECT_EQ(f.read<uint64_t>("/vocab/symbols/offsets"), (std::vector<uint64_t>{0, 3, 3, 8, 13, 16, 17}));
  f.verify_datasets();
}

TEST(H5StringList, BadOffsetsAreRefusedNamingTheList) {
  const std::string path = temp_file("bad_offsets.h5");
  const std::vector<uint8_t> bytes = {'a', 'b', 'c', 'd'};
  struct Case {
    const char* name;
    std::vector<uint64_t> offsets;
  };
  const Case cases[] = {{"/not_from_zero", {1, 2, 4}},
                        {"/past_the_end", {0, 2, 5}},
                        {"/short_of_the_end", {0, 2, 3}},
                        {"/out_of_order", {0, 3, 1, 4}},
                        {"/far_past_the_end", {0, uint64_t{1} << 62, 4}},
                        {"/no_offsets", {}}};
  {
    h5::File f = h5::File::create(path);
    for (const Case& c : cases) {
      f.write(std::string(c.name) + "/bytes", bytes);
      f.write(std::string(c.name) + "/offsets", c.offsets);
    }
  }
  const h5::File f = h5::File::open(path);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string message = error_of([&] { f.read_strings(c.name); });
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find(std::string("string list '") + c.name + "'"), std::string::npos) << message;
  }
}

TEST(H5StringList, AListWithoutItsOffsetsIsRefused) {
  const std::string path = temp_file("no_offsets.h5");
  {
    h5::File f = h5::File::create(path);
    f.write("/list/bytes", std::vector<uint8_t>{'a'});
  }
  const h5::File f = h5::File::open(path);
  EXPECT_NE(error_of([&] { f.read_strings("/list"); }).find("/list/offsets"), std::string::npos);
}

TEST(H5StringList, VariableLengthStringsOfEarlierFilesStillRead) {
  const std::string path = temp_file("vlen.h5");
  const std::vector<std::string> strings = {"<unk>", "", "w\xc3\xb6rd"};
  {
    h5::File f = h5::File::create(path);
    write_vlen_strings(f, "/symbols", strings);
    f.write("/numbers", std::vector<int32_t>{1, 2});
  }
  const h5::File f = h5::File::open(path);
  EXPECT_FALSE(f.is_string_list("/symbols"));
  EXPECT_EQ(f.read_strings("/symbols"), strings);
  EXPECT_NE(error_of([&] { f.read_strings("/numbers"); }).find("neither a string list"), std::string::npos);
}

// String attributes: fixed-length now (in the checksummed object header); the
// variable-length ones of earlier files still read.
TEST(H5StringList, FixedAndVariableLengthStringAttributesRead) {
  const std::string path = temp_file("attrs.h5");
  {
    h5::File f = h5::File::create(path);
    f.set_attr("/", "fixed", std::string("lamb"));
    f.set_attr("/", "empty", std::string());
    h5::Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(type.get(), H5T_VARIABLE);
    H5Tset_cset(type.get(), H5T_CSET_UTF8);
    h5::Handle space(H5Screate(H5S_SCALAR), H5Sclose);
    h5::Handle a(H5Acreate2(f.id(), "vlen", type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    const char* value = "seed: 7";
    ASSERT_GE(H5Awrite(a.get(), type.get(), &value), 0);
  }
  const h5::File f = h5::File::open(path);
  EXPECT_EQ(f.attr_string("/", "fixed"), "lamb");
  EXPECT_EQ(f.attr_string("/", "empty"), "");
  EXPECT_EQ(f.attr_string("/", "vlen"), "seed: 7");
}

}  // namespace
}  // namespace txl
