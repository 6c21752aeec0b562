// integrity_checks DIR [--tokens N] [--floats N] [--repeats R]: the cost of the Fletcher-32
// checksums (src/io/h5file.cpp) on what txl reads most: a corpus shard of N int32 tokens
// (default 103M, wt103's train split) in 1M-token chunks as txl_prep writes it, and a
// checkpoint of N floats (default 190M, wt103 base parameters) as 1 MiB chunks. Each is
// written twice into DIR, with and without checksums, then read R times (the best time
// is kept; the first read warms the page cache, so the figures are the CPU cost, not
// disk or network time). Prints wall and process CPU seconds per variant
// (docs/benchmarks.md, "Integrity checks").
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <exception>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "txl/io/h5file.h"

namespace {

namespace fs = std::filesystem;

struct Seconds {
  double wall = 1e300, cpu = 1e300;
};

double cpu_now() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}
double wall_now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

template <typename Fn>
Seconds best_of(int repeats, Fn&& fn) {
  Seconds best;
  for (int r = 0; r < repeats; ++r) {
    const double w = wall_now(), c = cpu_now();
    fn();
    best.wall = std::min(best.wall, wall_now() - w);
    best.cpu = std::min(best.cpu, cpu_now() - c);
  }
  return best;
}

// A 1-D dataset written with the raw API, so the variant without checksums can be made.
template <typename T>
void write_vector(const std::string& path, const std::vector<T>& v, hsize_t chunk, bool checksum, hid_t type) {
  const txl::h5::File f = txl::h5::File::create(path);
  const hsize_t n = v.size();
  txl::h5::Handle space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  txl::h5::Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  H5Pset_chunk(dcpl.get(), 1, &chunk);
  if (checksum) H5Pset_fletcher32(dcpl.get());
  txl::h5::Handle ds(H5Dcreate2(f.id(), "/data", type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT), H5Dclose);
  if (!ds.valid() || H5Dwrite(ds.get(), type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) < 0)
    txl::failf("{}: cannot write", path);
}

void report(const char* what, double bytes, const Seconds& plain, const Seconds& checked) {
  std::printf("%-34s %8.0f MB | no checksum %6.3f s wall %6.3f s cpu (%5.2f GB/s) | Fletcher-32 %6.3f s wall %6.3f s "
              "cpu (%5.2f GB/s) | +%.0f%% cpu\n",
              what, bytes / 1e6, plain.wall, plain.cpu, bytes / plain.wall / 1e9, checked.wall, checked.cpu,
              bytes / checked.wall / 1e9, 100.0 * (checked.cpu - plain.cpu) / plain.cpu);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cost of txl's integrity checks on reading a corpus shard and a checkpoint"};
  std::string dir;
  int64_t tokens = 103'000'000, floats = 190'000'000;
  int repeats = 3;
  app.add_option("dir", dir, "scratch directory (needs 2 x (4 x tokens + 4 x floats) bytes)")->required();
  app.add_option("--tokens", tokens, "corpus tokens");
  app.add_option("--floats", floats, "checkpoint floats");
  app.add_option("--repeats", repeats, "reads per variant (the best is kept)");
  CLI11_PARSE(app, argc, argv);
  try {
    fs::create_directories(dir);
    std::mt19937 rng(1);
    {
      std::vector<int32_t> v(static_cast<size_t>(tokens));
      for (auto& x : v) x = static_cast<int32_t>(rng() % 267735);
      Seconds read[2];
      for (int checked = 0; checked < 2; ++checked) {
        const std::string path = fmt::format("{}/corpus_{}.h5", dir, checked ? "fletcher32" : "plain");
        write_vector(path, v, 1 << 20, checked != 0, H5T_NATIVE_INT32);
        std::vector<int32_t> out(v.size());
        const txl::h5::File f = txl::h5::File::open(path);
        read[checked] = best_of(repeats + 1, [&] { f.read_rows<int32_t>("/data", 0, tokens, out.data()); });
        if (out != v) txl::fail("corpus read back differs");
        fs::remove(path);
      }
      report("corpus shard (int32 tokens)", 4.0 * static_cast<double>(tokens), read[0], read[1]);
    }
    {
      std::vector<float> v(static_cast<size_t>(floats));
      std::normal_distribution<float> normal(0.0f, 0.02f);
      for (auto& x : v) x = normal(rng);
      Seconds read[2], write[2], verify;
      for (int checked = 0; checked < 2; ++checked) {
        const std::string path = fmt::format("{}/checkpoint_{}.h5", dir, checked ? "fletcher32" : "plain");
        write[checked] = best_of(1, [&] { write_vector(path, v, 1 << 18, checked != 0, H5T_NATIVE_FLOAT); });
        std::vector<float> out(v.size());
        const txl::h5::File f = txl::h5::File::open(path);
        read[checked] = best_of(repeats + 1, [&] { f.read_into<float>("/data", out.data(), {floats}); });
        if (out != v) txl::fail("checkpoint read back differs");
        if (checked) verify = best_of(repeats, [&] { f.verify_datasets(); });
        fs::remove(path);
      }
      report("checkpoint (float32) read", 4.0 * static_cast<double>(floats), read[0], read[1]);
      report("checkpoint (float32) write", 4.0 * static_cast<double>(floats), write[0], write[1]);
      std::printf("checkpoint verification pass (File::verify_datasets): %.3f s wall %.3f s cpu\n", verify.wall,
                  verify.cpu);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
