// txl_checkpoint_diff A.h5 B.h5 [TOLERANCE] [GROUP]
// Compares every dataset under GROUP (default /model) of two checkpoints. Per tensor it
// prints the largest absolute difference, max|a-b| / max|a| and ||a-b||_2 / ||a||_2; the
// last line says whether the tensors are bit-identical and gives the relative difference
// of all parameters together, ||A-B||_2 / ||A||_2 over the concatenation. Exit 0 when
// that is within TOLERANCE (default 1e-6), 1 otherwise, 2 on bad input. Used by the end-to-end tests
// (tests/dist/run_equivalence.sh, tests/slurm/run_slurm_e2e.sh).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "txl/io/h5file.h"

int main(int argc, char** argv) {
  if (argc < 3 || argc > 5) {
    std::fprintf(stderr, "usage: %s A.h5 B.h5 [TOLERANCE] [GROUP]\n", argv[0]);
    return 2;
  }
  const double tolerance = argc > 3 ? std::atof(argv[3]) : 1e-6;
  const std::string group = argc > 4 ? argv[4] : "/model";
  try {
    const txl::h5::File a = txl::h5::File::open(argv[1]);
    const txl::h5::File b = txl::h5::File::open(argv[2]);
    const std::vector<std::string> names = a.list(group);
    if (names.empty()) {
      std::fprintf(stderr, "error: %s has no datasets under %s\n", argv[1], group.c_str());
      return 2;
    }
    TXL_CHECK(b.list(group) == names, "{} and {} hold different tensors under {}", argv[1], argv[2], group);
    bool identical = true;
    double worst = 0.0, diff_sq_all = 0.0, norm_sq_all = 0.0;
    std::string worst_name;
    for (const std::string& name : names) {
      const std::string path = group + "/" + name;
      txl::Shape sa, sb;
      const std::vector<float> x = a.read<float>(path, &sa);
      const std::vector<float> y = b.read<float>(path, &sb);
      TXL_CHECK(sa == sb, "{}: shape {} in {} but {} in {}", path, txl::shape_string(sa), argv[1],
                txl::shape_string(sb), argv[2]);
      double max_diff = 0.0, max_abs = 0.0, diff_sq = 0.0, norm_sq = 0.0;
      for (size_t i = 0; i < x.size(); ++i) {
        const double d = static_cast<double>(x[i]) - y[i];
        max_diff = std::max(max_diff, std::fabs(d));
        max_abs = std::max(max_abs, std::fabs(static_cast<double>(x[i])));
        diff_sq += d * d;
        norm_sq += static_cast<double>(x[i]) * x[i];
      }
      diff_sq_all += diff_sq;
      norm_sq_all += norm_sq;
      if (std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) != 0) identical = false;
      const double relative = max_abs > 0.0 ? max_diff / max_abs : max_diff;
      if (relative >= worst) worst = relative, worst_name = name;
      std::printf("%-44s max_abs_diff %.3e max_rel %.3e l2_rel %.3e\n", name.c_str(), max_diff, relative,
                  norm_sq > 0.0 ? std::sqrt(diff_sq / norm_sq) : std::sqrt(diff_sq));
    }
    const double l2_relative = norm_sq_all > 0.0 ? std::sqrt(diff_sq_all / norm_sq_all) : std::sqrt(diff_sq_all);
    std::printf("%s: %zu tensors, %s, relative difference ||A-B||/||A|| %.3e (tolerance %.1e); largest per-tensor "
                "max|a-b|/max|a| %.3e (%s)\n",
                group.c_str(), names.size(), identical ? "bit-identical" : "not bit-identical", l2_relative, tolerance,
                worst, worst_name.c_str());
    return l2_relative <= tolerance ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
}
