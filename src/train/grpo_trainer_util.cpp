// grpo_trainer_util.h: model source, prompt encoding, the TrainConfig load/dump, GRPO
// checkpoint discovery and held-out evaluation (evaluate_model).
// Must not: run training steps (GrpoRun does, grpo_run.h).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "grpo_trainer_util.h"

#include "grpo_rollout_link.h"
#include "io/io_util.h"
#include "zeroth/comm.h"
#include "zeroth/error.h"
#include "zeroth/math_verify.h"
#include "zeroth/model.h"
#include "zeroth/model_infer.h"
#include "zeroth/prompt_data.h"

namespace zeroth {

namespace fs = std::filesystem;

namespace grpo_detail {

std::vector<int32_t> encode_record(const PromptRecord& rec, const PromptTemplate& tmpl, const Tokenizer& tok,
                                   bool add_special_tokens) {
  return encode_prompt(tok, tmpl.render(rec.fields, rec.where), add_special_tokens, rec.where);
}

void add_completion_fields(nlohmann::ordered_json& o, int64_t prompt_index, int64_t sample_index,
                           const PromptDataset& data, const PromptRecord& rec, const std::string& prompt,
                           const Completion& c, double reward, const RewardResult& r, bool extra_info) {
  o["prompt_index"] = prompt_index;
  o["sample_index"] = sample_index;
  o["where"] = rec.where;
  if (size_t(rec.source) < data.source_names.size()) o["source"] = data.source_names[size_t(rec.source)];
  o["prompt"] = prompt;
  o["completion"] = c.text;
  o["tokens"] = c.ids.size();
  o["finish_reason"] = finish_reason_name(c.finish);
  o["reward"] = reward;
  nlohmann::ordered_json comp = nlohmann::ordered_json::object();
  for (const RewardComponent& rc : r.components) comp[rc.name] = rc.value;
  o["components"] = comp;
  o["verdict"] = r.verdict;
  o["kind"] = reward_kind_name(rec.kind);
  if (rec.kind == RewardKind::Math) {
    o["extracted"] = r.extracted;
    o["gold"] = rec.gold;
  } else {
    o["tests"] = nlohmann::ordered_json::parse(code_tests_json(rec.problem));
  }
  if (!r.reward_error.empty()) o["reward_error"] = r.reward_error;
  if (!r.python_extra.empty()) o["python_extra"] = r.python_extra;
  if (extra_info && !rec.record_json.empty()) o["extra_info"] = nlohmann::ordered_json::parse(rec.record_json);
}

void add_python_inputs(RewardSample& s, const PromptDataset& data, const PromptRecord& rec,
                       const PromptTemplate& tmpl) {
  if (size_t(rec.source) < data.source_names.size()) s.source = data.source_names[size_t(rec.source)];
  s.prompt = tmpl.render(rec.fields, rec.where);
  s.extra_info = rec.record_json;
}

std::string json_line(const nlohmann::ordered_json& o) {
  return o.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

void write_atomic(const std::string& path, const std::string& text) {
  io::write_file_atomic(path, [&](std::ostream& out) { out << text; });
}

void write_dump(const std::string& run_dir, const std::string& name, const std::string& text) {
  const std::string dir = run_dir + "/rollouts";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw RuntimeError(strformat("cannot create %s: %s", dir.c_str(), ec.message().c_str()));
  write_atomic(dir + "/" + name, text);
}

SamplingParams rollout_sampling(const TrainConfig& config) {
  SamplingParams p = config.rollout.sampling();
  if (config.rollout.seed == 0) p.seed = rng_stream_key(config.run.seed, "rollout");
  return p;
}

double max_expert_imbalance(const std::vector<std::vector<int64_t>>& loads) {
  double worst = 0.0;
  for (const auto& l : loads) {
    int64_t total = 0, mx = 0;
    for (int64_t x : l) {
      total += x;
      mx = std::max(mx, x);
    }
    if (total > 0) worst = std::max(worst, double(mx) * double(l.size()) / double(total));
  }
  return worst;
}

std::vector<MicroPlan> plan_micro_batches(const std::vector<int64_t>& lengths, int64_t micro, int64_t tokens,
                                          int64_t T_step) {
  ZT_ASSERT(micro >= 0 && tokens >= 0, "micro %lld, tokens %lld", (long long)micro, (long long)tokens);
  std::vector<MicroPlan> plans;
  if (tokens == 0) {
    const size_t m = micro > 0 ? size_t(micro) : std::max<size_t>(1, lengths.size());
    for (size_t first = 0; first < lengths.size(); first += m) {
      MicroPlan p;
      p.T = T_step;
      for (size_t i = first; i < std::min(lengths.size(), first + m); ++i) p.idx.push_back(i);
      plans.push_back(std::move(p));
    }
    return plans;
  }
  std::vector<size_t> order(lengths.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return lengths[a] > lengths[b]; });
  MicroPlan cur;
  for (size_t i : order) {
    const int64_t rows = int64_t(cur.idx.size()) + 1;
    if (!cur.idx.empty() && (rows * std::max(cur.T, lengths[i]) > tokens || (micro > 0 && rows > micro))) {
      plans.push_back(std::move(cur));
      cur = MicroPlan();
    }
    cur.idx.push_back(i);
    cur.T = std::max(cur.T, lengths[i]);
  }
  if (!cur.idx.empty()) plans.push_back(std::move(cur));
  return plans;
}

std::vector<int> balance_plan(const std::vector<double>& cost, int ranks, int64_t mini_batches) {
  ZT_ASSERT(ranks >= 1 && mini_batches >= 1, "ranks %d, mini-batches %lld", ranks, (long long)mini_batches);
  const int64_t n = int64_t(cost.size());
  std::vector<int> owner(size_t(n), 0);
  for (int64_t mb = 0; mb < mini_batches; ++mb) {
    const PromptShard range = prompt_shard(n, int(mb), int(mini_batches));
    std::vector<int64_t> order(size_t(range.count));
    for (int64_t i = 0; i < range.count; ++i) order[size_t(i)] = range.begin + i;
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return cost[size_t(a)] > cost[size_t(b)]; });
    std::vector<double> load(size_t(ranks), 0.0);
    for (int64_t i : order) {
      const int r = int(std::min_element(load.begin(), load.end()) - load.begin());
      owner[size_t(i)] = r;
      load[size_t(r)] += cost[size_t(i)];
    }
  }
  return owner;
}

double dp_imbalance(const std::vector<double>& cost, const std::vector<int>& owner, int ranks,
                    int64_t mini_batches) {
  ZT_ASSERT(owner.size() == cost.size(), "%zu owners for %zu groups", owner.size(), cost.size());
  double busiest = 0, mean = 0;
  for (int64_t mb = 0; mb < mini_batches; ++mb) {
    const PromptShard range = prompt_shard(int64_t(cost.size()), int(mb), int(mini_batches));
    std::vector<double> load(size_t(ranks), 0.0);
    for (int64_t i = range.begin; i < range.begin + range.count; ++i) load[size_t(owner[size_t(i)])] += cost[size_t(i)];
    busiest += *std::max_element(load.begin(), load.end());
    for (double l : load) mean += l / ranks;
  }
  return mean > 0 ? busiest / mean : 1.0;
}

}  // namespace grpo_detail

TrainConfig load_train_config(const std::string& path, const std::vector<std::string>& overrides) {
  return load_config_as<TrainConfig>(path, overrides);
}

std::string dump_train_config_yaml(const TrainConfig& config) {
  return "# Resolved zeroth train configuration: every key, defaults included.\n" + dump_config_as(config);
}

std::string latest_grpo_checkpoint(const std::string& run_dir) {
  return latest_checkpoint(run_dir, "grpo_state.json");
}

MetricMap EvalResult::metrics() const {
  MetricMap m;
  auto put = [&](const EvalSourceResult& r, const std::string& at) {  // at: "" or "/NAME"
    m["eval_prompts" + at] = double(r.prompts);
    if (greedy) {
      m["eval_accuracy" + at] = r.accuracy;
      m["eval_format_rate" + at] = r.format_rate;
      m["eval_response_len_mean" + at] = r.response_len_mean;
    }
    if (k > 0) {
      m["eval_pass_at_k" + at] = r.pass_at_k;
      m["eval_sampled_accuracy" + at] = r.sampled_accuracy;
      if (r.maj_prompts > 0) m["eval_maj_at_k" + at] = r.maj_at_k;
      for (size_t q = 0; q < r.pass_at.size() && q < pass_at_ks.size(); ++q)
        m["eval_pass_at_" + std::to_string(pass_at_ks[q]) + at] = r.pass_at[q];
    }
  };
  put(*this, "");
  if (k > 0) m["eval_k"] = double(k);
  for (const EvalSourceResult& s : sources) put(s, "/" + s.name);
  return m;
}

double pass_at_k_estimate(int64_t n, int64_t c, int64_t k) {
  ZT_ASSERT(k >= 1 && k <= n && c >= 0 && c <= n, "pass@%lld of %lld samples, %lld correct", (long long)k,
            (long long)n, (long long)c);
  if (n - c < k) return 1.0;  // every k-subset holds a correct sample
  double none = 1.0;          // C(n - c, k) / C(n, k)
  for (int64_t i = n - c + 1; i <= n; ++i) none *= 1.0 - double(k) / double(i);
  return 1.0 - none;
}

int64_t majority_answer(const std::vector<std::string>& answers,
                        const std::function<bool(const std::string&, const std::string&)>& same) {
  // Groups: (first member, size), in order of their first member.
  std::vector<std::pair<size_t, int64_t>> groups;
  std::vector<std::string> distinct;  // distinct strings seen, and the group of each
  std::vector<size_t> group_of;
  for (size_t i = 0; i < answers.size(); ++i) {
    const std::string& a = answers[i];
    if (a.empty()) continue;
    size_t g = groups.size();
    const auto seen = std::find(distinct.begin(), distinct.end(), a);
    if (seen != distinct.end()) {
      g = group_of[size_t(seen - distinct.begin())];
    } else {
      for (size_t j = 0; j < groups.size() && g == groups.size(); ++j)
        if (same(answers[groups[j].first], a)) g = j;
      distinct.push_back(a);
      group_of.push_back(g);
    }
    if (g == groups.size()) groups.push_back({i, 0});
    ++groups[g].second;
  }
  int64_t best = -1, most = 0;
  for (const auto& [first, size] : groups)
    if (size > most) {
      most = size;
      best = int64_t(first);
    }
  return best;
}

EvalResult evaluate_model(Model& model, const Tokenizer& tokenizer, const TrainConfig& config,
                          const PromptDataset& prompts, Communicator& comm, std::string* dump,
                          const std::function<bool()>& abort, const RewardComposer* shared_composer) {
  const RolloutConfig& rc = config.rollout;
  const EvalSection& ec = config.eval;
  int64_t n = prompts.size();
  if (ec.max_prompts > 0) n = std::min(n, ec.max_prompts);
  EvalResult res;
  res.prompts = n;
  res.k = ec.pass_k;
  if (ec.pass_k > 0) res.pass_at_ks = ec.pass_at;
  res.greedy = ec.greedy;
  if (dump != nullptr) dump->clear();
  if (n == 0) return res;
  const PromptShard shard = prompt_shard(n, comm.rank(), comm.size());
  const PromptTemplate tmpl(rc.prompt_template, "key 'rollout.prompt_template'");
  std::vector<std::vector<int32_t>> ids;
  for (int64_t i = shard.begin; i < shard.begin + shard.count; ++i)
    ids.push_back(grpo_detail::encode_record(prompts.records[size_t(i)], tmpl, tokenizer, rc.add_special_tokens));
  const KvCachePlan plan = plan_kv_cache(model.config(), rc);
  StopParams stop = rc.stop_params(tokenizer);
  stop.max_new_tokens = ec.max_new_tokens.value_or(rc.max_new_tokens);
  std::unique_ptr<RewardComposer> own_composer;
  if (shared_composer == nullptr) {
    RewardsConfig rewards = config.rewards;
    rewards.resolve_lengths(rc.max_new_tokens);
    own_composer = std::make_unique<RewardComposer>(std::move(rewards));
  }
  const RewardComposer& composer = shared_composer ? *shared_composer : *own_composer;
  // Sums, for all prompts and then for each source: greedy correct, greedy format ok,
  // greedy tokens, prompts with a correct sample, correct samples, math prompts whose
  // majority answer is correct, math prompts, prompts.
  // Then each eval.pass_at estimate.
  enum : size_t { kCorrect, kFormat, kTokens, kAnyCorrect, kSampledCorrect, kMajCorrect, kMajPrompts, kPrompts, kN };
  const size_t n_sources = prompts.source_names.size(), stride = kN + ec.pass_at.size();
  std::vector<double> sums(stride * (1 + n_sources), 0.0);
  auto add = [&](int64_t prompt, size_t what, double value) {  // prompt: index into `prompts`
    sums[what] += value;
    if (n_sources > 0) sums[stride * (1 + size_t(prompts.records[size_t(prompt)].source)) + what] += value;
  };
  for (int64_t i = shard.begin; i < shard.begin + shard.count; ++i) add(i, kPrompts, 1.0);
  const MathVerifyOptions math_opts = config.rewards.math_options();
  auto same = [&](const std::string& a, const std::string& b) {
    return math_equal(a, b, math_opts) || math_equal(b, a, math_opts);
  };
  if (ec.pass_k > plan.num_slots)
    throw ConfigError(strformat("key 'eval.pass_k': expected at most the %lld KV cache slots "
                                "(rollout.num_slots / kv_cache_mb), found %lld",
                                (long long)plan.num_slots, (long long)ec.pass_k));
  std::string greedy_lines, sampled_lines;     // eval dump: this rank's
  std::vector<double> prompt_correct(ec.pass_k > 0 ? size_t(n) : 0, 0.0);  // at the global prompt index
  int64_t aborted = 0;  // (abort: generation stopped on this rank)
  if (!ids.empty() || model.expert_group()) {  // expert parallelism: every rank takes part
    ModelInference engine(model, plan.num_slots, plan.max_len);
    // The dump's lines of one pass (mode greedy or sampled), in prompt order on this rank.
    auto dump_lines = [&](const char* mode, const std::vector<Completion>& out, const std::vector<RewardResult>& r,
                          std::string& lines) {
      if (dump == nullptr) return;
      for (size_t i = 0; i < out.size(); ++i) {
        const PromptRecord& rec = prompts.records[size_t(shard.begin + out[i].prompt_index)];
        nlohmann::ordered_json o;
        o["mode"] = mode;
        grpo_detail::add_completion_fields(o, shard.begin + out[i].prompt_index, out[i].sample_index, prompts, rec,
                                           tmpl.render(rec.fields, rec.where), out[i], r[i].reward, r[i],
                                           composer.config().has_python());
        o["correct"] = r[i].correct;
        o["format_ok"] = r[i].format_ok;
        lines += grpo_detail::json_line(o);
      }
    };
    auto score = [&](const std::vector<Completion>& out) {
      std::vector<RewardSample> samples;
      std::vector<int64_t> group_of;  // a prompt's samples are one group
      for (const Completion& c : out) {
        const PromptRecord& rec = prompts.records[size_t(shard.begin + c.prompt_index)];
        RewardSample s;
        s.kind = rec.kind;
        s.completion = c.text;
        s.gold = rec.gold;
        s.problem = rec.problem;
        s.num_tokens = int64_t(c.ids.size());
        if (composer.config().has_python()) grpo_detail::add_python_inputs(s, prompts, rec, tmpl);
        samples.push_back(std::move(s));
        group_of.push_back(c.prompt_index);
      }
      return composer.score_batch(samples, group_of);
    };
    if (ec.greedy) {
      SamplingParams sp = rc.sampling();
      sp.temperature = 0.0f;
      std::vector<Completion> out;
      try {
        out = generate(engine, &tokenizer, ids, 1, sp, stop, 0, nullptr, nullptr, abort);
      } catch (const GenerationAborted&) {
        aborted = 1;
      }
      const std::vector<RewardResult> r = aborted ? std::vector<RewardResult>() : score(out);
      dump_lines("greedy", out, r, greedy_lines);
      for (size_t i = 0; i < out.size(); ++i) {
        const int64_t p = shard.begin + out[i].prompt_index;
        add(p, kCorrect, r[i].correct);
        add(p, kFormat, r[i].format_ok);
        add(p, kTokens, double(out[i].ids.size()));
      }
    }
    if (ec.pass_k > 0 && !aborted) {
      SamplingParams sp = rc.sampling();
      sp.temperature = float(ec.temperature);
      sp.top_p = float(ec.top_p.value_or(rc.top_p));
      sp.top_k = ec.top_k.value_or(rc.top_k);
      sp.min_p = float(ec.min_p.value_or(rc.min_p));
      sp.seed = ec.seed != 0 ? ec.seed : rng_stream_key(config.run.seed, "eval");
      std::vector<Completion> out;
      try {
        out = generate(engine, &tokenizer, ids, ec.pass_k, sp, stop, uint64_t(shard.begin * ec.pass_k), nullptr,
                       nullptr, abort);
      } catch (const GenerationAborted&) {
        aborted = 1;
        out.clear();
      }
      const std::vector<RewardResult> r = aborted ? std::vector<RewardResult>() : score(out);
      dump_lines("sampled", out, r, sampled_lines);
      if (aborted) ids.clear();  // (nothing to count below)
      for (size_t p = 0; p < ids.size(); ++p) {
        const int64_t at = shard.begin + int64_t(p);
        int64_t correct = 0;
        std::vector<std::string> answers;
        for (int64_t j = 0; j < ec.pass_k; ++j) {
          const RewardResult& rj = r[p * size_t(ec.pass_k) + size_t(j)];
          correct += rj.correct ? 1 : 0;
          add(at, kSampledCorrect, rj.correct);
          answers.push_back(rj.extracted);
        }
        add(at, kAnyCorrect, correct > 0);
        prompt_correct[size_t(at)] = double(correct);
        for (size_t q = 0; q < ec.pass_at.size(); ++q)
          add(at, kN + q, pass_at_k_estimate(ec.pass_k, correct, ec.pass_at[q]));
        if (prompts.records[size_t(at)].kind == RewardKind::Math) {
          const int64_t m = majority_answer(answers, same);
          add(at, kMajCorrect, m >= 0 && r[p * size_t(ec.pass_k) + size_t(m)].correct);
          add(at, kMajPrompts, 1.0);
        }
      }
    }
  }
  if (abort) {  // every rank: the generation stopped on one of them
    comm.all_reduce_host(&aborted, 1, ReduceOp::Max);
    if (aborted) throw GenerationAborted{};
  }
  comm.all_reduce_host(sums.data(), sums.size(), ReduceOp::Sum);
  if (!prompt_correct.empty()) {
    comm.all_reduce_host(prompt_correct.data(), prompt_correct.size(), ReduceOp::Sum);
    for (double c : prompt_correct) res.prompt_correct.push_back(int64_t(c));
  }
  if (dump != nullptr) {
    *dump = grpo_detail::gather_text(comm, model.backend(), greedy_lines);
    *dump += grpo_detail::gather_text(comm, model.backend(), sampled_lines);
  }
  // The results of one set of sums (all prompts, or one source's).
  auto fill = [&](const double* v, EvalSourceResult& out) {
    const double np = v[kPrompts];
    out.prompts = int64_t(np);
    if (np <= 0) return;
    if (ec.greedy) {
      out.accuracy = v[kCorrect] / np;
      out.format_rate = v[kFormat] / np;
      out.response_len_mean = v[kTokens] / np;
    }
    if (ec.pass_k > 0) {
      out.pass_at_k = v[kAnyCorrect] / np;
      out.sampled_accuracy = v[kSampledCorrect] / (np * double(ec.pass_k));
      out.maj_prompts = int64_t(v[kMajPrompts]);
      if (out.maj_prompts > 0) out.maj_at_k = v[kMajCorrect] / v[kMajPrompts];
      for (size_t q = 0; q < ec.pass_at.size(); ++q) out.pass_at.push_back(v[kN + q] / np);
    }
  };
  fill(sums.data(), res);
  ZT_ASSERT(res.prompts == n, "%lld eval prompts counted of %lld", (long long)res.prompts, (long long)n);
  std::vector<EvalSourceResult> per;
  for (size_t s = 0; s < n_sources; ++s) {
    EvalSourceResult one;
    one.name = prompts.source_names[s];
    fill(sums.data() + stride * (1 + s), one);
    if (one.prompts > 0) per.push_back(std::move(one));
  }
  if (per.size() >= 2) res.sources = std::move(per);
  return res;
}

}  // namespace zeroth
