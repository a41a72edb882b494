// Finite-difference checks of every block's backward (attention with and without
// q-LoRA, yarn RoPE, dense SwiGLU MLP, MoE with shared experts and the balance loss,
// and the whole model's embedding / norms / lm_head through cross_entropy_step).
//
// Method: the ops are float32, so float64 central differences are not available.
// Each block's scalar loss is L = sum(r * y) with a fixed random r, accumulated in
// double on the host; central differences with eps = 1e-2 on weights of scale ~0.2
// give a truncation error ~1e-4 relative and f32 rounding noise ~1e-5 relative, so
// each probe must satisfy |fd - analytic| <= 1e-2 * max|analytic of that tensor| +
// 1e-5. A wrong or missing term in a backward is off by O(1) relative. MoE probes
// whose perturbation changes the expert selection (the loss is not differentiable
// there) are skipped, and at least 80% of probes must be checked.
// Must not: assert on time, or loosen tolerances to hide a failing block.
#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "model/layers.h"
#include "zeroth/backend.h"
#include "zeroth/model.h"
#include "zeroth/model_config.h"
#include "zeroth/model_params.h"

using namespace zeroth;

namespace {

ModelConfig tiny_config(bool q_lora, bool yarn) {
  ModelConfig c;
  c.vocab_size = 24;
  c.hidden_size = 16;
  c.intermediate_size = 24;
  c.moe_intermediate_size = 8;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 2;
  c.n_shared_experts = 1;
  c.n_routed_experts = 8;
  c.kv_lora_rank = 8;
  if (q_lora) c.q_lora_rank = 12;
  else c.q_lora_rank.reset();
  c.qk_rope_head_dim = 4;
  c.v_head_dim = 6;
  c.qk_nope_head_dim = 6;
  c.n_group = 4;
  c.topk_group = 2;
  c.num_experts_per_tok = 2;
  c.first_k_dense_replace = 1;
  c.max_position_embeddings = 64;
  c.initializer_range = 0.2;
  c.tie_word_embeddings = false;
  if (yarn) {
    RopeScaling rs;
    rs.factor = 4.0;
    rs.original_max_position_embeddings = 16;
    rs.mscale = 0.9;
    rs.mscale_all_dim = 1.0;
    c.rope_scaling = rs;
  }
  c.validate("test_layer_grads");
  return c;
}

void fill_random(Tensor& t, std::mt19937& rng, float scale) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(size_t(t.numel()));
  for (float& x : v) x = d(rng);
  t.copy_from_host(v.data(), v.size() * sizeof(float));
}

double dot_host(const Tensor& y, const std::vector<float>& r) {
  std::vector<float> v = y.to_float_vector();
  double s = 0.0;
  for (size_t i = 0; i < v.size(); ++i) s += double(v[i]) * double(r[i]);
  return s;
}

struct Probe {
  std::string name;
  Tensor value;  // F32, contiguous
  Tensor grad;   // analytic gradient, same shape (read before probing)
};

// Central differences of loss() at a few elements of each probe's tensor. route()
// (may be empty) returns the expert selection; probes that change it are skipped.
void check_fd(const std::vector<Probe>& probes, const std::function<double()>& loss,
              const std::function<std::vector<int32_t>()>& route, double eps = 1e-2) {
  std::vector<int32_t> base_route = route ? route() : std::vector<int32_t>();
  size_t checked = 0, skipped = 0;
  for (const Probe& p : probes) {
    std::vector<float> grad = p.grad.to_float_vector();
    Tensor target = p.value;  // a handle to the same memory
    std::vector<float> val = target.to_float_vector();
    double gmax = 0.0;
    for (float gv : grad) gmax = std::max(gmax, double(std::fabs(gv)));
    INFO("tensor " << p.name << " max|grad| " << gmax);
    REQUIRE(gmax > 0.0);  // a block whose gradient vanishes entirely is a bug here
    const int64_t n = int64_t(val.size());
    const int64_t count = std::min<int64_t>(n, 7);
    for (int64_t j = 0; j < count; ++j) {
      const size_t i = size_t((j * 7919 + 3) % n);
      const float orig = val[i];
      val[i] = orig + float(eps);
      target.copy_from_host(val.data(), val.size() * sizeof(float));
      const double lp = loss();
      const bool same_p = !route || route() == base_route;
      val[i] = orig - float(eps);
      target.copy_from_host(val.data(), val.size() * sizeof(float));
      const double lm = loss();
      const bool same_m = !route || route() == base_route;
      val[i] = orig;
      target.copy_from_host(val.data(), val.size() * sizeof(float));
      if (!same_p || !same_m) {
        ++skipped;
        continue;
      }
      const double fd = (lp - lm) / (2.0 * eps);
      INFO("element " << i << " fd " << fd << " analytic " << grad[i]);
      CHECK(std::fabs(fd - double(grad[i])) <= 1e-2 * gmax + 1e-5);
      ++checked;
    }
  }
  if (route) loss();  // restore the unperturbed activations
  INFO("checked " << checked << " skipped " << skipped);
  CHECK(checked >= 4 * (checked + skipped) / 5);
}

void attention_case(bool q_lora, bool yarn) {
  auto be = make_cpu_backend(1);
  ModelConfig c = tiny_config(q_lora, yarn);
  ParamSet params = make_param_set(c, *be), grads = make_param_set(c, *be);
  init_params(c, params, 11);
  be->fill(grads.flat, 0.0);
  const int64_t B = 2, T = 5, N = B * T, C = c.hidden_size;
  std::mt19937 rng(5);
  // Norm weights away from 1 so their gradients are exercised.
  AttentionParams& p = params.params.layers[0].attn;
  AttentionParams& g = grads.params.layers[0].attn;
  if (q_lora) fill_random(p.q_a_norm, rng, 0.3f);
  fill_random(p.kv_a_norm, rng, 0.3f);
  Tensor x = Tensor::empty(*be, {N, C}, DType::F32), y = Tensor::empty(*be, {N, C}, DType::F32);
  Tensor dx = Tensor::empty(*be, {N, C}, DType::F32), dy = Tensor::empty(*be, {N, C}, DType::F32);
  fill_random(x, rng, 1.0f);
  fill_random(dy, rng, 1.0f);
  std::vector<float> r = dy.to_float_vector();
  model::RopeTables rope;
  model::build_rope_tables(*be, c, B, T, rope);
  model::AttentionActs a;
  model::AttentionScratch s;
  model::alloc_attention(*be, c, B, T, a);
  model::alloc_attention_scratch(*be, c, B, T, s);
  auto loss = [&]() {
    model::attention_forward(*be, c, B, T, p, rope, x, a, s, y);
    return dot_host(y, r);
  };
  loss();
  model::attention_backward(*be, c, B, T, p, g, rope, x, a, s, dy, dx);
  std::vector<Probe> probes = {{"x", x, dx},
                               {"kv_a_proj", p.kv_a_proj, g.kv_a_proj},
                               {"kv_a_norm", p.kv_a_norm, g.kv_a_norm},
                               {"kv_b_proj", p.kv_b_proj, g.kv_b_proj},
                               {"o_proj", p.o_proj, g.o_proj}};
  if (q_lora) {
    probes.push_back({"q_a_proj", p.q_a_proj, g.q_a_proj});
    probes.push_back({"q_a_norm", p.q_a_norm, g.q_a_norm});
    probes.push_back({"q_b_proj", p.q_b_proj, g.q_b_proj});
  } else {
    probes.push_back({"q_proj", p.q_proj, g.q_proj});
  }
  check_fd(probes, loss, nullptr);
}

}  // namespace

TEST_CASE("MLA attention backward (q_proj, default RoPE) by finite differences", "[model][grad]") {
  attention_case(false, false);
}

TEST_CASE("MLA attention backward (q-LoRA, yarn RoPE) by finite differences", "[model][grad]") {
  attention_case(true, true);
}

TEST_CASE("dense SwiGLU MLP backward by finite differences", "[model][grad]") {
  auto be = make_cpu_backend(1);
  ModelConfig c = tiny_config(true, false);
  ParamSet params = make_param_set(c, *be), grads = make_param_set(c, *be);
  init_params(c, params, 12);
  be->fill(grads.flat, 0.0);
  const int64_t N = 9, C = c.hidden_size;
  MlpParams& p = params.params.layers[0].mlp;
  MlpParams& g = grads.params.layers[0].mlp;
  std::mt19937 rng(6);
  Tensor x = Tensor::empty(*be, {N, C}, DType::F32), y = Tensor::empty(*be, {N, C}, DType::F32);
  Tensor dx = Tensor::empty(*be, {N, C}, DType::F32), dy = Tensor::empty(*be, {N, C}, DType::F32);
  fill_random(x, rng, 1.0f);
  fill_random(dy, rng, 1.0f);
  std::vector<float> r = dy.to_float_vector();
  model::MlpActs a;
  model::MlpScratch s;
  model::alloc_mlp(*be, N, c.intermediate_size, a);
  model::alloc_mlp_scratch(*be, N, c.intermediate_size, s);
  auto loss = [&]() {
    model::mlp_forward(*be, p, x, a, y);
    return dot_host(y, r);
  };
  loss();
  model::mlp_backward(*be, p, g, x, a, s, dy, dx, false);
  check_fd({{"x", x, dx}, {"gate", p.gate, g.gate}, {"up", p.up, g.up}, {"down", p.down, g.down}},
           loss, nullptr);
}

TEST_CASE("MoE backward (router, experts, shared, balance loss) by finite differences",
          "[model][grad]") {
  auto be = make_cpu_backend(1);
  ModelConfig c = tiny_config(true, false);
  ParamSet params = make_param_set(c, *be), grads = make_param_set(c, *be);
  init_params(c, params, 13);
  be->fill(grads.flat, 0.0);
  const int64_t B = 2, T = 6, N = B * T, C = c.hidden_size;
  MoeParams& p = params.params.layers[1].moe;
  MoeParams& g = grads.params.layers[1].moe;
  std::mt19937 rng(7);
  fill_random(p.router_bias, rng, 0.05f);
  Tensor x = Tensor::empty(*be, {N, C}, DType::F32), y = Tensor::empty(*be, {N, C}, DType::F32);
  Tensor dx = Tensor::empty(*be, {N, C}, DType::F32), dy = Tensor::empty(*be, {N, C}, DType::F32);
  fill_random(x, rng, 1.0f);
  fill_random(dy, rng, 1.0f);
  std::vector<float> r = dy.to_float_vector();
  model::MoeActs a;
  model::MoeScratch s;
  model::MlpScratch ms;
  model::alloc_moe(*be, c, N, a);
  model::alloc_moe_scratch(*be, c, N, s);
  model::alloc_mlp_scratch(*be, N, c.moe_intermediate_size, ms);
  const float alpha = 0.5f;  // large, so the balance-loss gradient is visible
  auto loss = [&]() {
    model::moe_forward(*be, c, B, T, p, x, a, alpha, y);
    return dot_host(y, r) + double(a.aux_loss);
  };
  auto route = [&]() {
    std::vector<int32_t> idx(size_t(a.topk_idx.numel()));
    a.topk_idx.copy_to_host(idx.data(), idx.size() * sizeof(int32_t));
    return idx;
  };
  loss();
  model::moe_backward(*be, c, p, g, x, a, s, ms, true, dy, dx);
  // Unchosen experts have exactly zero gradient.
  const int64_t E = c.n_routed_experts, Im = c.moe_intermediate_size;
  std::vector<float> gg = g.experts_gate.to_float_vector();
  for (int64_t e = 0; e < E; ++e) {
    bool all_zero = std::all_of(gg.begin() + e * Im * C, gg.begin() + (e + 1) * Im * C,
                                [](float v) { return v == 0.0f; });
    CHECK(all_zero == (a.load[size_t(e)] == 0));
  }
  check_fd({{"x", x, dx},
            {"router", p.router, g.router},
            {"experts_gate", p.experts_gate, g.experts_gate},
            {"experts_up", p.experts_up, g.experts_up},
            {"experts_down", p.experts_down, g.experts_down},
            {"shared.gate", p.shared.gate, g.shared.gate},
            {"shared.down", p.shared.down, g.shared.down}},
           loss, route);
  // The balance loss alone: its router gradient is checked separately, because the
  // combine term dominates the one above.
  be->fill(grads.flat, 0.0);
  std::vector<float> zero(r.size(), 0.0f);
  Tensor dy0 = Tensor::zeros(*be, {N, C}, DType::F32);
  auto aux_only = [&]() {
    model::moe_forward(*be, c, B, T, p, x, a, alpha, y);
    return double(a.aux_loss);
  };
  aux_only();
  model::moe_backward(*be, c, p, g, x, a, s, ms, true, dy0, dx);
  check_fd({{"router (balance loss)", p.router, g.router}, {"x (balance loss)", x, dx}}, aux_only,
           route);
  // The same with padded rows (real lengths 6 and 3) and a mean over 5 sequences.
  const std::vector<int64_t> lengths = {6, 3};
  auto aux_padded = [&]() {
    model::moe_forward(*be, c, B, T, p, x, a, model::BalanceLoss(alpha, &lengths, 5), y);
    return double(a.aux_loss);
  };
  be->fill(grads.flat, 0.0);
  aux_padded();
  model::moe_backward(*be, c, p, g, x, a, s, ms, true, dy0, dx);
  check_fd({{"router (balance loss, lengths)", p.router, g.router}, {"x (balance loss, lengths)", x, dx}},
           aux_padded, route);
}

TEST_CASE("balance loss: a row's sequence is its real tokens and the mean is over a given count",
          "[model][moe]") {
  std::mt19937 rng(5);
  const int64_t E = 8, k = 2, T = 7;
  std::uniform_real_distribution<float> u(0.05f, 0.95f);
  auto random_rows = [&](int64_t rows, std::vector<float>& sc, std::vector<int32_t>& idx) {
    sc.resize(size_t(rows * T * E));
    idx.resize(size_t(rows * T * k));
    for (auto& v : sc) v = u(rng);
    for (int64_t n = 0; n < rows * T; ++n) {  // k distinct experts per token
      idx[size_t(n * k)] = int32_t(rng() % E);
      idx[size_t(n * k + 1)] = int32_t((idx[size_t(n * k)] + 1 + rng() % (E - 1)) % E);
    }
  };
  std::vector<float> sc, d_all, d_row;
  std::vector<int32_t> idx;
  random_rows(2, sc, idx);
  // Row 1 with 4 real tokens == that row's first 4 tokens alone (T = 4), per sequence.
  const std::vector<int64_t> lengths = {7, 4};
  const float l_all = model::balance_loss_host(sc, idx, 2, T, E, k, 0.3f, d_all, &lengths, 2);
  std::vector<float> sc0(sc.begin(), sc.begin() + T * E), sc1(sc.begin() + T * E, sc.begin() + (T + 4) * E);
  std::vector<int32_t> i0(idx.begin(), idx.begin() + T * k), i1(idx.begin() + T * k, idx.begin() + (T + 4) * k);
  std::vector<float> d0, d1;
  const float l0 = model::balance_loss_host(sc0, i0, 1, T, E, k, 0.3f, d0, nullptr, 2);
  const float l1 = model::balance_loss_host(sc1, i1, 1, 4, E, k, 0.3f, d1, nullptr, 2);
  CHECK(l_all == Approx(l0 + l1).epsilon(1e-6));
  for (int64_t i = 0; i < T * E; ++i) CHECK(d_all[size_t(i)] == Approx(d0[size_t(i)]).margin(1e-9));
  for (int64_t i = 0; i < 4 * E; ++i) CHECK(d_all[size_t(T * E + i)] == Approx(d1[size_t(i)]).margin(1e-9));
  for (int64_t i = 4 * E; i < T * E; ++i) CHECK(d_all[size_t(T * E + i)] == 0.0f);  // padding
  // sequences 0 is the mean over the call's rows; a row of length 0 adds nothing.
  const float mean2 = model::balance_loss_host(sc, idx, 2, T, E, k, 0.3f, d_row);
  const float sum2 = model::balance_loss_host(sc, idx, 2, T, E, k, 0.3f, d_row, nullptr, 1);
  CHECK(sum2 == Approx(2 * mean2).epsilon(1e-6));
  const std::vector<int64_t> none = {0, 0};
  CHECK(model::balance_loss_host(sc, idx, 2, T, E, k, 0.3f, d_row, &none, 4) == 0.0f);
  CHECK(std::all_of(d_row.begin(), d_row.end(), [](float v) { return v == 0.0f; }));
}

TEST_CASE("sync-free MoE forward (per-row experts) equals the grouped forward", "[model][moe]") {
  auto be = make_cpu_backend(2);
  for (bool shared : {true, false}) {
    ModelConfig c = tiny_config(true, false);
    if (!shared) c.n_shared_experts = 0;
    ParamSet params = make_param_set(c, *be);
    init_params(c, params, 17);
    MoeParams& p = params.params.layers[1].moe;
    std::mt19937 rng(9);
    fill_random(p.router_bias, rng, 0.05f);
    const int64_t N = 9, C = c.hidden_size, k = c.num_experts_per_tok;
    Tensor x = Tensor::empty(*be, {N, C}, DType::F32);
    fill_random(x, rng, 1.0f);
    Tensor y0 = Tensor::empty(*be, {N, C}, DType::F32), y1 = Tensor::empty(*be, {N, C}, DType::F32);
    model::MoeActs a0, a1;
    model::alloc_moe(*be, c, N, a0);
    model::alloc_moe(*be, c, N, a1);
    std::vector<int32_t> iota(size_t(N * k));
    for (size_t i = 0; i < iota.size(); ++i) iota[i] = int32_t(i);
    a1.slot_to_sorted.copy_from_host(iota.data(), iota.size() * sizeof(int32_t));
    model::moe_forward(*be, c, 1, N, p, x, a0, 0.0f, y0);
    model::moe_forward_rows(*be, c, N, p, x, a1, y1);
    const std::vector<float> r0 = y0.to_float_vector(), r1 = y1.to_float_vector();
    double worst = 0.0, scale = 0.0;
    for (size_t i = 0; i < r0.size(); ++i) {
      worst = std::max(worst, std::fabs(double(r0[i]) - double(r1[i])));
      scale = std::max(scale, std::fabs(double(r0[i])));
    }
    INFO("shared experts " << shared << ": max |diff| " << worst << " of max |y| " << scale);
    CHECK(worst <= 1e-5 * std::max(scale, 1.0));
    std::vector<int32_t> i0(size_t(N * k)), i1(size_t(N * k));
    a0.topk_idx.copy_to_host(i0.data(), i0.size() * sizeof(int32_t));
    a1.topk_idx.copy_to_host(i1.data(), i1.size() * sizeof(int32_t));
    CHECK(i0 == i1);
  }
}

TEST_CASE("whole-model backward (embedding, norms, lm_head) by finite differences",
          "[model][grad]") {
  auto be = make_cpu_backend(1);
  ModelConfig c = tiny_config(true, true);
  Model m(c, *be);
  init_params(c, m.params(), 21);
  std::mt19937 rng(8);
  ModelParams& p = m.params().params;
  for (LayerParams& l : p.layers) {
    fill_random(l.input_norm, rng, 0.5f);
    fill_random(l.post_attn_norm, rng, 0.5f);
  }
  fill_random(p.final_norm, rng, 0.5f);
  m.set_aux_loss_alpha(0.1f);
  const int64_t B = 2, T = 6;
  std::vector<int32_t> ids(size_t(B * T));
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t((i * 7 + 3) % size_t(c.vocab_size));
  std::vector<float> mask(size_t(B * T), 1.0f);
  mask[2] = 0.0f;
  Tensor tid = Tensor::empty(*be, {B, T}, DType::I32), tmask = Tensor::empty(*be, {B, T}, DType::F32);
  tid.copy_from_host(ids.data(), ids.size() * sizeof(int32_t));
  tmask.copy_from_host(mask.data(), mask.size() * sizeof(float));
  m.zero_grad();
  m.cross_entropy_step(tid, tmask);
  // Snapshot the analytic gradients, then probe with forward-only losses.
  ParamSet snap = make_param_set(c, *be);
  be->copy(m.grads().flat, snap.flat);
  auto loss = [&]() {
    m.zero_grad();
    return double(m.cross_entropy_step(tid, tmask));
  };
  auto route = [&]() {
    std::vector<int32_t> all;
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
      if (!c.is_moe_layer(l)) continue;
      const Tensor& t = m.routing_topk_idx(l);
      std::vector<int32_t> idx(size_t(t.numel()));
      t.copy_to_host(idx.data(), idx.size() * sizeof(int32_t));
      all.insert(all.end(), idx.begin(), idx.end());
    }
    return all;
  };
  const ModelParams& sg = snap.params;
  check_fd({{"embed", p.embed, sg.embed},
            {"lm_head", p.lm_head, sg.lm_head},
            {"final_norm", p.final_norm, sg.final_norm},
            {"layers.0.input_norm", p.layers[0].input_norm, sg.layers[0].input_norm},
            {"layers.0.post_attn_norm", p.layers[0].post_attn_norm, sg.layers[0].post_attn_norm},
            {"layers.1.input_norm", p.layers[1].input_norm, sg.layers[1].input_norm},
            {"layers.1.post_attn_norm", p.layers[1].post_attn_norm, sg.layers[1].post_attn_norm},
            {"layers.1.router", p.layers[1].moe.router, sg.layers[1].moe.router},
            {"layers.0.kv_b_proj", p.layers[0].attn.kv_b_proj, sg.layers[0].attn.kv_b_proj}},
           loss, route);
}
