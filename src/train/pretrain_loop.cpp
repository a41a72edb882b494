// run_lm_training (train.h): the loop shared by pretraining and SFT.
// Must not: parse flags, choose the communicator/backend, or implement optimizer or
// collective math (optim.h, grad_sync.h); file formats live in checkpoint_io.cpp and
// data_*.cpp.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "zeroth/backend.h"
#include "zeroth/backend_factory.h"
#include "zeroth/comm.h"
#include "zeroth/error.h"
#include "zeroth/grad_sync.h"
#include "zeroth/log.h"
#include "zeroth/metrics.h"
#include "zeroth/model.h"
#include "zeroth/model_config.h"
#include "zeroth/model_params.h"
#include "zeroth/optim.h"
#include "zeroth/process_groups.h"
#include "zeroth/run_stop.h"
#include "zeroth/tokenizer.h"
#include "zeroth/train.h"

namespace zeroth {

namespace fs = std::filesystem;

const char* lm_stage_name(LmStage stage) { return stage == LmStage::Pretrain ? "pretrain" : "sft"; }

namespace {

SequenceDataset load_stage_data(const Config& config, LmStage stage, const Tokenizer& tok,
                                const ModelConfig& mc, const LmTrainOptions& options, int32_t* eos_out) {
  const DataSection& d = config.data;
  if (d.path.empty())
    throw ConfigError(strformat("key '%s': required by zeroth %s, found nothing", options.key("data", "path").c_str(),
                                lm_stage_name(stage)));
  int32_t eos = tok.special_ids().eos;
  if (eos < 0 && mc.eos_token_id) eos = int32_t(*mc.eos_token_id);
  if (eos < 0)
    throw ConfigError("key 'model.tokenizer': expected a tokenizer or model config with an EOS token, found none");
  *eos_out = eos;
  if (stage == LmStage::Pretrain)
    return load_pretrain_corpus(d.path, d.format, d.text_field, tok, eos, config.train.seq_len);
  SftFormat f;
  f.prompt_field = d.prompt_field;
  f.response_field = d.response_field;
  f.prompt_template = d.prompt_template;
  f.add_eos = d.add_eos;
  f.eos_id = eos;
  f.pad_id = tok.special_ids().pad >= 0 ? tok.special_ids().pad : eos;
  f.data_keys = options.key_section.empty() ? "data" : options.key_section;
  f.seq_len_key = options.key("train", "seq_len");
  return load_sft_dataset(d.path, f, tok, config.train.seq_len);
}

double max_imbalance(const std::vector<std::vector<int64_t>>& loads) {
  double worst = 0.0;
  for (const auto& l : loads) {
    if (l.empty()) continue;
    int64_t total = 0, mx = 0;
    for (int64_t x : l) {
      total += x;
      mx = std::max(mx, x);
    }
    if (total > 0) worst = std::max(worst, double(mx) * double(l.size()) / double(total));
  }
  return worst;
}

// The metrics.jsonl / TensorBoard row of a step.
MetricMap metrics_row(const StepMetrics& m) {
  return {{"loss", m.loss},
          {"aux_loss", m.aux_loss},
          {"lr", m.lr},
          {"grad_norm", m.grad_norm},
          {"trained_tokens", double(m.trained_tokens)},
          {"tokens", double(m.tokens)},
          {"tokens_per_s", m.tokens_per_s},
          {"expert_imbalance", m.expert_imbalance},
          {"data_epoch", double(m.cursor.epoch)},
          {"data_position", double(m.cursor.position)}};
}

}  // namespace

LmTrainResult run_lm_training(const Config& config, LmStage stage, Communicator& comm, Backend& backend,
                              const LmTrainOptions& options) {
  const char* name = lm_stage_name(stage);
  const int rank = comm.rank(), world = comm.size();
  const TrainSection& tc = config.train;
  const std::string& run_dir = config.run.run_dir;

  // Batch shape: each rank takes batch_size / world sequences, in micro-batches.
  if (tc.batch_size % world != 0)
    throw ConfigError(strformat("key '%s': expected a multiple of the %d data-parallel ranks, found %lld",
                                options.key("train", "batch_size").c_str(), world, (long long)tc.batch_size));
  const int64_t per_rank = tc.batch_size / world;
  const int64_t micro = tc.micro_batch > 0 ? tc.micro_batch : per_rank;
  if (per_rank % micro != 0)
    throw ConfigError(strformat("key 'train.micro_batch': expected a divisor of the %lld sequences per rank "
                                "(train.batch_size %lld over %d ranks), found %lld",
                                (long long)per_rank, (long long)tc.batch_size, world, (long long)micro));
  const int64_t T = tc.seq_len;

  // Model, tokenizer and data. On resume the newest checkpoint replaces model.init.
  ModelSource src = resolve_model_source(config.model.init, config.model.tokenizer, name);
  std::string resume_ckpt;
  TrainerState start;
  start.stage = name;
  if (!options.resume_dir.empty()) {
    resume_ckpt = latest_checkpoint(options.resume_dir);
    if (resume_ckpt.empty())
      throw CheckpointError(strformat("%s: --resume found no checkpoints/step_N directory to continue from",
                                      options.resume_dir.c_str()));
    start = read_trainer_state(resume_ckpt);
    if (start.stage != name)
      throw CheckpointError(strformat("%s/trainer_state.json: key 'stage': expected '%s', found '%s'",
                                      resume_ckpt.c_str(), name, start.stage.c_str()));
    check_resume_steps(resume_ckpt, start.step, tc.steps, options.key("train", "steps"));
    src.config = read_model_config(resume_ckpt);
    src.weights_dir = resume_ckpt;
    load_source_tokenizer(resume_ckpt, src);
    check_tokenizer_fits(src, resume_ckpt);  // resolve_model_source checked the init's
  }
  if (src.config.max_position_embeddings < T)
    throw ConfigError(strformat("key '%s': expected at most the model's max_position_embeddings (%lld), found %lld",
                                options.key("train", "seq_len").c_str(),
                                (long long)src.config.max_position_embeddings, (long long)T));
  int32_t eos = -1;
  const SequenceDataset data = load_stage_data(config, stage, *src.tokenizer, src.config, options, &eos);

  // Process groups: data parallelism over every rank; expert groups when
  // run.expert_parallel > 1 (the routed experts split over them).
  ProcessGroups groups = make_process_groups(comm, config.run.expert_parallel, src.config.n_routed_experts);
  groups.zero_stage = config.run.zero_stage;
  Model model(src.config, backend,
              compute_dtype_for(backend, config.run.compute_dtype, "key 'run.compute_dtype'"),
              groups.expert.get());
  model.set_recompute(config.model.recompute);
  if (src.weights_dir.empty())
    init_params(src.config, model.params(), config.model.seed ? *config.model.seed : config.run.seed);
  else
    load_hf_weights(src.weights_dir, src.config, model.params());
  model.set_aux_loss_alpha(float(config.model.aux_loss_alpha));
  model.set_aux_loss_sequences(tc.batch_size);  // the balance loss: a mean over the global batch
  GradSync grad_sync(comm, model.grads(), kDefaultGradBucketBytes, groups.expert_data.get(),
                     groups.zero_stage >= 1);
  const OptimizerShard zero{&model.params(), grad_sync.owned(), &comm};
  AdamW optimizer(config.optim, src.config, backend, model.expert_shard(), groups.expert.get(),
                  grad_sync.sharded() ? &zero : nullptr);
  if (!resume_ckpt.empty()) load_optimizer_state(resume_ckpt, optimizer, groups);
  const LrSchedule schedule = LrSchedule::from_config(config.optim, tc.steps);
  BatchSampler sampler(data.count, config.run.seed, config.data.shuffle, start.cursor);

  if (rank == 0) write_resolved_config(config, run_dir);
  // A resumed run's metrics.jsonl keeps the rows up to its checkpoint's step and drops
  // any written after it (an interrupted run may have logged steps it never saved).
  MetricsWriterOptions mo;
  mo.resume_step = resume_ckpt.empty() ? -1 : start.step;
  MetricsWriter metrics(run_dir, rank, mo);
  ZT_LOG_INFO("%s: %lld sequences of %lld tokens from %s (%lld %s%s); model %s, %.3f M parameters; "
              "%d rank(s), %lld sequences per step, micro-batch %lld",
              name, (long long)data.count, (long long)T, config.data.path.c_str(), (long long)data.documents,
              stage == LmStage::Pretrain ? "documents" : "examples",
              data.truncated ? strformat(", %lld truncated", (long long)data.truncated).c_str() : "",
              src.weights_dir.empty() ? ("initialised from " + config.model.init).c_str() : src.weights_dir.c_str(),
              double(src.config.num_parameters()) / 1e6, world, (long long)tc.batch_size, (long long)micro);
  if (groups.expert_parallel > 1)
    ZT_LOG_INFO("%s: expert parallelism over %d ranks: this rank holds routed experts [%lld, %lld) of %lld "
                "per MoE layer (%lld of %lld parameters)",
                name, groups.expert_parallel, (long long)model.expert_shard().first,
                (long long)(model.expert_shard().first + model.expert_shard().count),
                (long long)src.config.n_routed_experts, (long long)model.params().flat.numel(),
                (long long)src.config.num_parameters());
  if (!resume_ckpt.empty())
    ZT_LOG_INFO("%s: resuming from %s at step %lld", name, resume_ckpt.c_str(), (long long)start.step);

  // Host and device buffers of one micro-batch.
  const int64_t N = micro * T;
  std::vector<int32_t> share_ids(size_t(per_rank * T));
  std::vector<float> share_mask(size_t(per_rank * T));
  // SFT rows are padded: the forward then counts the expert loads (router-bias update)
  // and the balance loss over each row's real tokens only.
  const bool padded_rows = !data.packed;
  std::vector<int64_t> share_len(static_cast<size_t>(per_rank)), micro_len(static_cast<size_t>(micro));
  std::vector<int32_t> h_targets(static_cast<size_t>(N));
  std::vector<float> h_dlogprob(static_cast<size_t>(N)), h_logprob(static_cast<size_t>(N));
  Tensor ids = Tensor::empty(backend, {micro, T}, DType::I32);
  Tensor targets = Tensor::empty(backend, {N}, DType::I32);
  Tensor logprob = Tensor::empty(backend, {N}, DType::F32);
  Tensor dlogprob = Tensor::empty(backend, {N}, DType::F32);

  LmTrainResult result;
  result.final_dir = run_dir + "/final";
  const float gamma = float(config.model.bias_update_speed);
  Progress progress(name, tc.steps, "step");
  progress.resume_from(start.step);
  TrainerState state = start;
  std::string last_saved;  // the newest checkpoint this call wrote
  auto save_checkpoint = [&]() {
    const std::string dir = save_train_checkpoint(run_dir, src.config, model.params(), src.files, optimizer,
                                                  state, groups);
    ZT_LOG_INFO("%s: checkpoint %s", name, dir.c_str());
    if (rank == 0)
      for (const std::string& old : prune_checkpoints(run_dir, tc.keep_checkpoints))
        ZT_LOG_INFO("%s: removed %s (train.keep_checkpoints %lld)", name, old.c_str(), (long long)tc.keep_checkpoints);
    last_saved = dir;
    return dir;
  };
  StopCheck stop_check(tc.time_limit_minutes);
  SaveTimer save_timer(tc.save_every_minutes);
  for (int64_t step = start.step + 1; step <= tc.steps; ++step) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::vector<int64_t> batch = sampler.next(tc.batch_size);
    int64_t local_count = 0;
    for (int64_t i = 0; i < per_rank; ++i) {
      data.fill(batch[size_t(rank * per_rank + i)], &share_ids[size_t(i * T)], &share_mask[size_t(i * T)]);
      share_len[size_t(i)] = data.length(batch[size_t(rank * per_rank + i)]);
      for (int64_t t = 0; t < T; ++t) local_count += share_mask[size_t(i * T + t)] != 0.0f;
    }
    int64_t global_count = local_count;
    comm.all_reduce_host(&global_count, 1, ReduceOp::Sum);
    ZT_ASSERT(global_count > 0, "a batch with no trained tokens");

    model.zero_grad();
    double loss_sum = 0.0, aux_sum = 0.0;
    std::vector<std::vector<int64_t>> loads;
    for (int64_t mb = 0; mb < per_rank / micro; ++mb) {
      const int32_t* mids = &share_ids[size_t(mb * N)];
      const float* mmask = &share_mask[size_t(mb * N)];
      for (int64_t n = 0; n < N; ++n) {
        const bool last = (n % T) == T - 1;
        h_targets[size_t(n)] = (!last && mmask[n] != 0.0f) ? mids[n + 1] : -1;
        h_dlogprob[size_t(n)] = last ? 0.0f : -mmask[n] / float(global_count);
      }
      ids.copy_from_host(mids, size_t(N) * sizeof(int32_t));
      targets.copy_from_host(h_targets.data(), h_targets.size() * sizeof(int32_t));
      dlogprob.copy_from_host(h_dlogprob.data(), h_dlogprob.size() * sizeof(float));
      std::copy(share_len.begin() + mb * micro, share_len.begin() + (mb + 1) * micro, micro_len.begin());
      model.forward(ids, padded_rows ? &micro_len : nullptr);
      model.token_logprobs(targets, 1.0f, logprob, nullptr);
      model.backward_from_logprob_grad(dlogprob, nullptr);
      aux_sum += double(model.aux_loss());
      logprob.copy_to_host(h_logprob.data(), h_logprob.size() * sizeof(float));
      for (int64_t n = 0; n < N; ++n)
        if (h_targets[size_t(n)] >= 0) loss_sum -= double(mmask[n]) * double(h_logprob[size_t(n)]);
      const std::vector<MoeLayerStats> stats = model.moe_stats();
      if (loads.empty()) loads.assign(stats.size(), {});
      for (size_t l = 0; l < stats.size(); ++l) {
        if (loads[l].empty()) loads[l].assign(stats[l].load.size(), 0);
        for (size_t e = 0; e < stats[l].load.size(); ++e) loads[l][e] += stats[l].load[e];
      }
    }
    const double lr = schedule.lr_at(step);
    const float grad_norm = reduce_and_step(grad_sync, optimizer, model.params(), model.grads(), lr);
    if (!std::isfinite(grad_norm))
      ZT_LOG_WARN("%s: step %lld: gradient norm is %g; the update was skipped", name, (long long)step,
                  double(grad_norm));
    if (!loads.empty()) {
      all_reduce_loads(comm, loads);
      if (gamma > 0.0f) model.update_router_bias(gamma, loads);
    }
    double sums[2] = {loss_sum, aux_sum};
    comm.all_reduce_host(sums, 2, ReduceOp::Sum);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    StepMetrics m;
    m.step = step;
    m.loss = sums[0] / double(global_count);
    m.aux_loss = sums[1];  // each micro-batch's share of the mean over the global batch
    m.lr = lr;
    m.grad_norm = grad_norm;
    m.trained_tokens = global_count;
    m.tokens = tc.batch_size * T;
    m.tokens_per_s = seconds > 0 ? double(m.tokens) / seconds : 0.0;
    m.expert_imbalance = max_imbalance(loads);
    m.cursor = sampler.cursor();
    result.steps.push_back(m);
    MetricMap row = metrics_row(m);
    add_memory_metrics(comm, row);
    metrics.log(step, row);
    if (options.show_progress) progress.update(step, strformat("loss %.4f", m.loss));
    if (step % tc.log_every == 0 || step == tc.steps)
      ZT_LOG_INFO("%s step %lld/%lld | loss %.4f | lr %.3g | grad norm %.3f | %.0f tok/s | expert imbalance %.2f",
                  name, (long long)step, (long long)tc.steps, m.loss, m.lr, m.grad_norm, m.tokens_per_s,
                  m.expert_imbalance);

    state.step = step;
    state.cursor = m.cursor;
    const bool saved = (tc.save_every > 0 && step % tc.save_every == 0) || step == tc.steps || save_timer.due(comm);
    if (saved) {
      save_checkpoint();
      save_timer.saved();
    }
    // Every rank agrees whether to stop here (a signal, train.time_limit_minutes).
    if (step < tc.steps) {
      const std::string why = stop_check.poll(comm);
      if (!why.empty()) {
        result.stop = {true, step, why, ""};
        const std::string dir = saved ? last_saved : save_checkpoint();
        ZT_LOG_INFO("%s: stopped after step %lld of %lld; checkpoint %s", name, (long long)step, (long long)tc.steps,
                    dir.c_str());
        break;
      }
    }
  }
  if (options.show_progress)
    progress.finish(result.steps.empty() ? "" : strformat("loss %.4f", result.steps.back().loss));
  if (result.stop.stopped) {
    result.final_dir.clear();
    return result;
  }
  save_model_dir(result.final_dir, src.config, model.params(), src.files, groups);
  ZT_LOG_INFO("%s: final model in %s", name, result.final_dir.c_str());
  return result;
}

}  // namespace zeroth
