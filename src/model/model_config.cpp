#include "txl/model/model_config.h"

namespace txl {

int64_t ModelConfig::cluster_dim(int64_t c) const {
  int64_t d = embed_dim();
  for (int64_t i = 0; i < c; ++i) d /= div_val;
  return d;
}

void ModelConfig::validate() const {
  TXL_CHECK(n_token > 0, "n_token must be positive (got {})", n_token);
  TXL_CHECK(n_layer > 0, "n_layer must be positive (got {})", n_layer);
  TXL_CHECK(n_head > 0 && d_head > 0, "n_head and d_head must be positive (got {}, {})", n_head, d_head);
  TXL_CHECK(d_model > 0 && d_model % 2 == 0, "d_model must be positive and even (got {})", d_model);
  TXL_CHECK(d_inner > 0, "d_inner must be positive (got {})", d_inner);
  TXL_CHECK(div_val >= 1, "div_val must be >= 1 (got {})", div_val);
  TXL_CHECK(attn_type >= 0 && attn_type <= 3,
            "attn_type must be 0 (relative, Transformer-XL), 1 (learned relative), 2 (absolute sinusoids) or 3 "
            "(learned absolute); got {}",
            attn_type);
  TXL_CHECK(max_klen >= 0, "max_klen must be >= 0 (got {})", max_klen);
  int64_t prev = 0;
  for (int64_t c : cutoffs) {
    TXL_CHECK(c > prev && c < n_token, "cutoffs must be increasing and inside (0, n_token={}); got {}", n_token, c);
    prev = c;
  }
  for (int64_t c = 0; c <= n_clusters(); ++c)
    TXL_CHECK(cluster_dim(c) >= 1, "d_embed {} / div_val^{} is zero", embed_dim(), c);
  TXL_CHECK(tie_projs.empty() || tie_projs.size() == cutoffs.size() + 1,
            "tie_projs needs {} entries (one per cluster), got {}", cutoffs.size() + 1, tie_projs.size());
  TXL_CHECK(dropout >= 0 && dropout < 1, "dropout must be in [0, 1) (got {})", dropout);
  TXL_CHECK(dropatt >= 0 && dropatt < 1, "dropatt must be in [0, 1) (got {})", dropatt);
  TXL_CHECK(tgt_len > 0, "tgt_len must be positive (got {})", tgt_len);
  TXL_CHECK(mem_len >= 0 && ext_len >= 0, "mem_len and ext_len must be >= 0 (got {}, {})", mem_len, ext_len);
  // The recipe slices its learned tables without bounds checks; these are the settings
  // under which its slices mean what they say (attn_type 1 repeats the first row when klen
  // exceeds the table, which is accepted).
  if (attn_type == 1)
    TXL_CHECK(clamp_len <= position_rows(),
              "attn_type 1: clamp_len {} exceeds the {} rows of r_emb (max_klen); clamp_len <= {} or -1", clamp_len,
              position_rows(), position_rows());
  if (attn_type == 3) {
    const int64_t qlen = tgt_len + ext_len;
    TXL_CHECK(mem_len > 0 ? qlen < position_rows() : qlen <= position_rows(),
              "attn_type 3: tgt_len + ext_len = {} needs {} the {} rows of r_emb (max_klen)", qlen,
              mem_len > 0 ? "fewer than" : "at most", position_rows());
  }
}

}  // namespace txl
