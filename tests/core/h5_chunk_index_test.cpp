// h5::File checks every chunk record of a dataset's chunk index (a version-1 B-tree,
// without a checksum) before HDF5 reads the chunks: libhdf5 1.10.8's Fletcher-32 filter
// reads outside its buffer for a chunk recorded shorter than the checksum (fuzz_corpus).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "txl/core/error.h"
#include "txl/io/h5file.h"

namespace txl {
namespace {

namespace fs = std::filesystem;

// Rewrites the stored size in the B-tree key of chunk `index` of a 1-D dataset. The key
// (HDF5 file format, version-1 B-tree of chunks) is: size (uint32), filter mask (uint32),
// one uint64 offset per dimension plus one, then the chunk's address (uint64).
void set_recorded_chunk_size(const std::string& file, const std::string& dataset, uint32_t size) {
  haddr_t address = 0;
  {
    const h5::File f = h5::File::open(file);
    h5::Handle ds(H5Dopen2(f.id(), dataset.c_str(), H5P_DEFAULT), H5Dclose);
    h5::Handle space(H5Dget_space(ds.get()), H5Sclose);
    hsize_t offset[1] = {};
    unsigned mask = 0;
    hsize_t stored = 0;
    ASSERT_GE(H5Dget_chunk_info(ds.get(), space.get(), 0, offset, &mask, &address, &stored), 0);
  }
  std::ifstream in(file, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();
  const size_t key = 4 + 4 + 2 * 8;  // size, mask, offsets of a 1-D dataset
  size_t found = std::string::npos;
  for (size_t at = key; at + 8 <= bytes.size(); ++at) {
    uint64_t value = 0;
    std::memcpy(&value, bytes.data() + at, 8);
    if (value == address) found = at;  // the last match: the B-tree node follows the header
  }
  ASSERT_NE(found, std::string::npos);
  std::memcpy(bytes.data() + found - key, &size, 4);
  std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
}

TEST(H5ChunkIndex, AChunkRecordedShorterThanItsChecksumIsRefused) {
  const fs::path dir = fs::temp_directory_path() / ("txl_h5_chunk_index_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "short.h5").string();
  {
    h5::File f = h5::File::create(path);
    f.write("/tokens", std::vector<int32_t>(1000, 7), 256);
  }
  EXPECT_EQ(h5::File::open(path).read<int32_t>("/tokens").size(), 1000u);
  set_recorded_chunk_size(path, "/tokens", 2);
  const h5::File f = h5::File::open(path);
  for (int what = 0; what < 3; ++what) {
    SCOPED_TRACE(what);
    try {
      std::vector<int32_t> rows(10);
      if (what == 0) f.read<int32_t>("/tokens");
      if (what == 1) f.read_rows<int32_t>("/tokens", 0, 10, rows.data());
      if (what == 2) f.verify_datasets();
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("dataset '/tokens': chunk 0 is recorded at byte"), std::string::npos)
          << e.what();
    }
  }
}

}  // namespace
}  // namespace txl
