#include "txl/model/learned_position_rows.h"

#include <algorithm>

#include "txl/core/error.h"

namespace txl {

std::vector<int32_t> learned_relative_rows(int64_t klen, int64_t table_rows, int64_t clamp_len) {
  TXL_CHECK(klen > 0 && table_rows > 0, "learned_relative_rows: klen {} and table rows {} must be positive", klen,
            table_rows);
  const int64_t kept = clamp_len > 0 ? std::min(clamp_len, table_rows) : table_rows;
  const int64_t first = table_rows - kept;
  std::vector<int32_t> rows(static_cast<size_t>(klen));
  for (int64_t r = 0; r < klen; ++r) rows[static_cast<size_t>(r)] = static_cast<int32_t>(std::max(first, table_rows - klen + r));
  return rows;
}

std::vector<int32_t> learned_absolute_rows(int64_t klen, int64_t batch, int64_t table_rows) {
  TXL_CHECK(klen > 0 && batch > 0 && table_rows > 0,
            "learned_absolute_rows: klen {}, batch {} and table rows {} must be positive", klen, batch, table_rows);
  std::vector<int32_t> rows(static_cast<size_t>(klen * batch));
  for (int64_t r = 0; r < klen; ++r)
    for (int64_t b = 0; b < batch; ++b)
      rows[static_cast<size_t>(r * batch + b)] = static_cast<int32_t>(std::max<int64_t>(0, table_rows - klen + r));
  return rows;
}

}  // namespace txl
