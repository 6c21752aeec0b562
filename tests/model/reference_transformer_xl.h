// A naive O(n^2) double-precision Transformer-XL written straight from the formulas of
// docs/model.md with plain loops, independent of the engine's layouts and ops: adaptive
// embedding, sinusoid positions, attention scores with the explicit dist = mlen + i - j,
// masks, LayerNorm, feed-forward, projected adaptive log-softmax. No dropout.
// Parameters are looked up by their docs/model.md §8 names.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "txl/model/transformer_xl.h"

namespace txl::test {

using Vec = std::vector<double>;

class ReferenceTransformerXL {
 public:
  struct Output {
    Vec nll;                // [qlen*B]
    std::vector<Vec> hids;  // per layer: its input [qlen*B*M]
  };

  ReferenceTransformerXL(const ModelConfig& cfg, const ParamStore<double>& ps, Ops<double>& ops) : cfg_(cfg) {
    for (int id = 0; id < ps.size(); ++id) params_[ps.info(id).name] = to_host(ops, ps.param(id));
  }

  // mems: per layer [mlen*B*M] time-major (ignored when mlen == 0).
  Output forward(const std::vector<int32_t>& data, const std::vector<int32_t>& target, int64_t qlen, int64_t B,
                 const std::vector<Vec>& mems, int64_t mlen) const {
    const int64_t M = cfg_.d_model;
    Output out;
    Vec h(static_cast<size_t>(qlen * B * M));
    for (int64_t r = 0; r < qlen * B; ++r) {
      const Vec e = embed(data[static_cast<size_t>(r)]);
      for (int64_t m = 0; m < M; ++m) h[static_cast<size_t>(r * M + m)] = e[static_cast<size_t>(m)];
    }
    for (int64_t L = 0; L < cfg_.n_layer; ++L) {
      out.hids.push_back(h);
      h = layer(L, h, mlen > 0 ? mems[static_cast<size_t>(L)] : Vec{}, qlen, B, mlen);
    }
    for (int64_t r = 0; r < qlen * B; ++r) {
      const Vec x(h.begin() + r * M, h.begin() + (r + 1) * M);
      out.nll.push_back(-log_prob(x, target[static_cast<size_t>(r)]));
    }
    return out;
  }

  // New memory per layer: rows [beg, end) of concat(mem, hid) (docs/model.md §5).
  std::vector<Vec> new_memory(const std::vector<Vec>& mems, int64_t mlen, const Output& out, int64_t qlen, int64_t B,
                              int64_t* new_mlen) const {
    const int64_t M = cfg_.d_model;
    const int64_t end = mlen + std::max<int64_t>(0, qlen - cfg_.ext_len);
    const int64_t beg = std::max<int64_t>(0, end - cfg_.mem_len);
    std::vector<Vec> result;
    for (int64_t L = 0; L < cfg_.n_layer; ++L) {
      Vec cat = mlen > 0 ? mems[static_cast<size_t>(L)] : Vec{};
      cat.insert(cat.end(), out.hids[static_cast<size_t>(L)].begin(), out.hids[static_cast<size_t>(L)].end());
      result.emplace_back(cat.begin() + beg * B * M, cat.begin() + end * B * M);
    }
    *new_mlen = end - beg;
    return result;
  }

 private:
  const Vec& P(const std::string& name) const {
    auto it = params_.find(name);
    if (it == params_.end()) throw std::runtime_error("reference: no parameter " + name);
    return it->second;
  }
  bool has(const std::string& name) const { return params_.count(name) > 0; }

  int64_t cluster_of(int64_t id) const {
    for (int64_t c = 0; c <= cfg_.n_clusters(); ++c)
      if (id >= cfg_.cluster_begin(c) && id < cfg_.cluster_end(c)) return c;
    throw std::runtime_error("reference: id out of range");
  }

  // y[out] = W[out, in] · x[in]
  static Vec matvec(const Vec& W, int64_t out, int64_t in, const Vec& x, int64_t x_offset = 0) {
    Vec y(static_cast<size_t>(out), 0.0);
    for (int64_t o = 0; o < out; ++o) {
      double s = 0;
      for (int64_t i = 0; i < in; ++i) s += W[static_cast<size_t>(o * in + i)] * x[static_cast<size_t>(x_offset + i)];
      y[static_cast<size_t>(o)] = s;
    }
    return y;
  }

  Vec embed(int64_t id) const {
    const int64_t M = cfg_.d_model;
    Vec e;
    if (cfg_.div_val == 1) {
      const int64_t de = cfg_.embed_dim();
      const Vec& E = P("word_emb.emb_layers.0.weight");
      Vec row(E.begin() + id * de, E.begin() + (id + 1) * de);
      e = de != M ? matvec(P("word_emb.emb_projs.0"), M, de, row) : row;
    } else {
      const int64_t c = cluster_of(id);
      const int64_t dc = cfg_.cluster_dim(c), local = id - cfg_.cluster_begin(c);
      const Vec& E = P("word_emb.emb_layers." + std::to_string(c) + ".weight");
      Vec row(E.begin() + local * dc, E.begin() + (local + 1) * dc);
      e = matvec(P("word_emb.emb_projs." + std::to_string(c)), M, dc, row);
    }
    for (double& v : e) v *= std::sqrt(static_cast<double>(M));
    return e;
  }

  Vec position_vector(int64_t p) const {
    const int64_t M = cfg_.d_model, half = M / 2;
    Vec v(static_cast<size_t>(M));
    for (int64_t k = 0; k < half; ++k) {
      // float32, as the recipe's buffer (include/txl/model/positional_embedding.h)
      const double inv_freq = 1.0f / std::pow(10000.0f, static_cast<float>(2 * k) / static_cast<float>(M));
      v[static_cast<size_t>(k)] = std::sin(static_cast<double>(p) * inv_freq);
      v[static_cast<size_t>(half + k)] = std::cos(static_cast<double>(p) * inv_freq);
    }
    return v;
  }

  static Vec layer_norm(const Vec& x, const Vec& gamma, const Vec& beta) {
    const size_t n = x.size();
    double mean = 0, var = 0;
    for (double v : x) mean += v;
    mean /= static_cast<double>(n);
    for (double v : x) var += (v - mean) * (v - mean);
    var /= static_cast<double>(n);
    Vec y(n);
    for (size_t i = 0; i < n; ++i) y[i] = (x[i] - mean) / std::sqrt(var + 1e-5) * gamma[i] + beta[i];
    return y;
  }

  // One decoder layer. h: [qlen, B, M], mem: [mlen, B, M].
  Vec layer(int64_t L, const Vec& h, const Vec& mem, int64_t qlen, int64_t B, int64_t mlen) const {
    const int64_t M = cfg_.d_model, H = cfg_.n_head, D = cfg_.d_head, HD = H * D, klen = mlen + qlen;
    const std::string pa = "layers." + std::to_string(L) + ".dec_attn.";
    const std::string pf = "layers." + std::to_string(L) + ".pos_ff.";
    auto row_of = [&](int64_t j, int64_t b) {  // row j of concat(mem, h) for stream b
      const Vec& src = j < mlen ? mem : h;
      const int64_t t = j < mlen ? j : j - mlen;
      return Vec(src.begin() + (t * B + b) * M, src.begin() + (t * B + b + 1) * M);
    };
    const Vec& u = P("r_w_bias");
    const Vec& w = P("r_r_bias");
    const double scale = 1.0 / std::sqrt(static_cast<double>(D));
    int64_t shift = qlen;
    if (klen - cfg_.mem_len - 1 > 0) shift = qlen - (klen - cfg_.mem_len - 1);

    Vec out(static_cast<size_t>(qlen * B * M));
    for (int64_t b = 0; b < B; ++b) {
      // q, k, v for every row of the concat (pre-LN: of LayerNorm(concat)).
      std::vector<Vec> qkv(static_cast<size_t>(klen));
      for (int64_t j = 0; j < klen; ++j) {
        Vec c = row_of(j, b);
        if (cfg_.pre_lnorm) c = layer_norm(c, P(pa + "layer_norm.weight"), P(pa + "layer_norm.bias"));
        qkv[static_cast<size_t>(j)] = matvec(P(pa + "qkv_net.weight"), 3 * HD, M, c);
      }
      for (int64_t i = 0; i < qlen; ++i) {
        const Vec& q = qkv[static_cast<size_t>(mlen + i)];
        Vec attn_vec(static_cast<size_t>(HD), 0.0);
        for (int64_t hh = 0; hh < H; ++hh) {
          Vec score(static_cast<size_t>(klen), -std::numeric_limits<double>::infinity());
          double mx = -std::numeric_limits<double>::infinity();
          for (int64_t j = 0; j < klen; ++j) {
            const bool masked = j > i + mlen || (cfg_.same_length && j <= i - shift);
            if (masked) continue;
            int64_t dist = mlen + i - j;
            if (cfg_.clamp_len > 0 && dist > cfg_.clamp_len) dist = cfg_.clamp_len;
            const Vec R = matvec(P(pa + "r_net.weight"), HD, M, position_vector(dist));
            const Vec& k = qkv[static_cast<size_t>(j)];
            double ac = 0, bd = 0;
            for (int64_t d = 0; d < D; ++d) {
              const size_t hd = static_cast<size_t>(hh * D + d);
              ac += (q[hd] + u[hd]) * k[static_cast<size_t>(HD) + hd];
              bd += (q[hd] + w[hd]) * R[hd];
            }
            score[static_cast<size_t>(j)] = scale * (ac + bd);
            mx = std::max(mx, score[static_cast<size_t>(j)]);
          }
          double z = 0;
          for (double& s : score) z += std::isinf(s) ? 0.0 : std::exp(s - mx);
          for (int64_t j = 0; j < klen; ++j) {
            const double s = score[static_cast<size_t>(j)];
            if (std::isinf(s)) continue;
            const double p = std::exp(s - mx) / z;
            for (int64_t d = 0; d < D; ++d)
              attn_vec[static_cast<size_t>(hh * D + d)] +=
                  p * qkv[static_cast<size_t>(j)][static_cast<size_t>(2 * HD + hh * D + d)];
          }
        }
        const Vec o = matvec(P(pa + "o_net.weight"), M, HD, attn_vec);
        const Vec hi = row_of(mlen + i, b);
        Vec x(static_cast<size_t>(M));
        for (int64_t m = 0; m < M; ++m) x[static_cast<size_t>(m)] = hi[static_cast<size_t>(m)] + o[static_cast<size_t>(m)];
        if (!cfg_.pre_lnorm) x = layer_norm(x, P(pa + "layer_norm.weight"), P(pa + "layer_norm.bias"));
        // Position-wise feed-forward.
        const Vec ff_in = cfg_.pre_lnorm ? layer_norm(x, P(pf + "layer_norm.weight"), P(pf + "layer_norm.bias")) : x;
        Vec a = matvec(P(pf + "CoreNet.0.weight"), cfg_.d_inner, M, ff_in);
        for (int64_t k = 0; k < cfg_.d_inner; ++k)
          a[static_cast<size_t>(k)] = std::max(0.0, a[static_cast<size_t>(k)] + P(pf + "CoreNet.0.bias")[static_cast<size_t>(k)]);
        Vec f = matvec(P(pf + "CoreNet.3.weight"), M, cfg_.d_inner, a);
        Vec y(static_cast<size_t>(M));
        for (int64_t m = 0; m < M; ++m)
          y[static_cast<size_t>(m)] = x[static_cast<size_t>(m)] + f[static_cast<size_t>(m)] + P(pf + "CoreNet.3.bias")[static_cast<size_t>(m)];
        if (!cfg_.pre_lnorm) y = layer_norm(y, P(pf + "layer_norm.weight"), P(pf + "layer_norm.bias"));
        for (int64_t m = 0; m < M; ++m) out[static_cast<size_t>((i * B + b) * M + m)] = y[static_cast<size_t>(m)];
      }
    }
    return out;
  }

  // Name of the output projection of cluster c ("" when there is none).
  std::string proj_name(int64_t c) const {
    const std::string cs = std::to_string(c);
    if (cfg_.div_val == 1) {
      if (cfg_.embed_dim() == cfg_.d_model) return "";
      return cfg_.tie_proj(c) ? "word_emb.emb_projs.0" : "crit.out_projs." + cs;
    }
    return cfg_.tie_proj(c) ? "word_emb.emb_projs." + cs : "crit.out_projs." + cs;
  }

  // Logits of cluster c's ids [l_c, r_c) for hidden x.
  Vec cluster_logits(int64_t c, const Vec& x) const {
    const int64_t M = cfg_.d_model, dc = cfg_.cluster_dim(c);
    const std::string pn = proj_name(c);
    Vec xc = x;
    if (!pn.empty()) {  // x · P_c with P_c [M, d_c]
      const Vec& Pc = P(pn);
      xc.assign(static_cast<size_t>(dc), 0.0);
      for (int64_t k = 0; k < dc; ++k)
        for (int64_t m = 0; m < M; ++m) xc[static_cast<size_t>(k)] += x[static_cast<size_t>(m)] * Pc[static_cast<size_t>(m * dc + k)];
    }
    const bool one_table = cfg_.div_val == 1;
    const std::string table = cfg_.tie_weight ? "word_emb.emb_layers." + std::to_string(one_table ? 0 : c) + ".weight"
                                              : "crit.out_layers_weights." + std::to_string(one_table ? 0 : c);
    const std::string bias = "crit.out_layers_biases." + std::to_string(one_table ? 0 : c);
    const int64_t first = one_table ? cfg_.cluster_begin(c) : 0;
    const int64_t n = cfg_.cluster_end(c) - cfg_.cluster_begin(c);
    Vec logits(static_cast<size_t>(n));
    for (int64_t r = 0; r < n; ++r) {
      double s = P(bias)[static_cast<size_t>(first + r)];
      for (int64_t k = 0; k < dc; ++k) s += P(table)[static_cast<size_t>((first + r) * dc + k)] * xc[static_cast<size_t>(k)];
      logits[static_cast<size_t>(r)] = s;
    }
    if (c == 0) {  // head: shortlist logits followed by the cluster tokens
      for (int64_t r = 0; r < cfg_.n_clusters(); ++r) {
        double s = P("crit.cluster_bias")[static_cast<size_t>(r)];
        for (int64_t k = 0; k < dc; ++k) s += P("crit.cluster_weight")[static_cast<size_t>(r * dc + k)] * xc[static_cast<size_t>(k)];
        logits.push_back(s);
      }
    }
    return logits;
  }

  static double log_softmax_at(const Vec& logits, int64_t k) {
    double mx = -std::numeric_limits<double>::infinity();
    for (double v : logits) mx = std::max(mx, v);
    double z = 0;
    for (double v : logits) z += std::exp(v - mx);
    return logits[static_cast<size_t>(k)] - mx - std::log(z);
  }

  double log_prob(const Vec& x, int64_t t) const {
    const Vec head = cluster_logits(0, x);
    const int64_t c = cluster_of(t);
    if (c == 0) return log_softmax_at(head, t);
    const int64_t head_size = static_cast<int64_t>(head.size());  // shortlist + C
    return log_softmax_at(head, head_size - c) + log_softmax_at(cluster_logits(c, x), t - cfg_.cluster_begin(c));
  }

  ModelConfig cfg_;
  std::map<std::string, Vec> params_;
};

}  // namespace txl::test
