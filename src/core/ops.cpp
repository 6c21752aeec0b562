// Argument checks of ops.h that both backends share (one message per problem).
#include "txl/core/ops.h"

#include "txl/core/error.h"

namespace txl {

void check_rel_attention_args(const char* op, const RelAttentionArgs& a) {
  TXL_CHECK(a.heads > 0 && a.batch > 0 && a.qlen >= 0 && a.d_head > 0,
            "{}: bad shape (heads {}, batch {}, qlen {}, d_head {})", op, a.heads, a.batch, a.qlen, a.d_head);
  TXL_CHECK(a.mask.mlen >= 0 && a.klen == a.qlen + a.mask.mlen, "{}: klen {} != qlen {} + mlen {}", op, a.klen,
            a.qlen, a.mask.mlen);
  TXL_CHECK(a.dropatt >= 0.0f && a.dropatt < 1.0f, "{}: dropatt {} outside [0, 1)", op, a.dropatt);
  if (a.dropatt > 0.0f)
    TXL_CHECK(a.layout.outer == a.heads && a.layout.batch == a.batch && a.layout.inner == a.qlen * a.klen &&
                  a.layout.batch_offset >= 0 && a.layout.batch_offset + a.batch <= a.layout.batch_global,
              "{}: dropout layout [{}, {}, {}] (offset {}, global {}) does not match [heads {}, batch {}, "
              "qlen*klen {}]",
              op, a.layout.outer, a.layout.batch, a.layout.inner, a.layout.batch_offset, a.layout.batch_global,
              a.heads, a.batch, a.qlen * a.klen);
}

}  // namespace txl
