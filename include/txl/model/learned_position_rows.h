// Which rows of a learned position table serve the rows of one step, as the recipe slices
// its tables (docs/model.md). `table_rows` is the table's length (max_klen).
#pragma once
#include <cstdint>
#include <vector>

namespace txl {

// attn_type 1 (r_emb, r_bias): window row r of klen (ordered like the sinusoids: position
// value klen-1-r first) uses table row max(first, table_rows - klen + r), where the table
// is first cut to its last clamp_len rows (clamp_len > 0), first = table_rows - that many:
// the last klen rows of the (cut) table, its first row repeated in front when klen exceeds
// it. So a distance d reads table row table_rows-1-min(d, kept-1).
std::vector<int32_t> learned_relative_rows(int64_t klen, int64_t table_rows, int64_t clamp_len);

// attn_type 3 (r_emb): key row r of concat(memory, input) (klen = mlen + qlen rows) uses
// table row max(0, table_rows - klen + r): the input the table's last qlen rows, the memory
// the rows before them (the first row repeated in front when the memory is longer). Each
// index is repeated for the `batch` streams: [klen*batch], time-major like the activations.
std::vector<int32_t> learned_absolute_rows(int64_t klen, int64_t batch, int64_t table_rows);

}  // namespace txl
