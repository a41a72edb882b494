// Process groups of a training run, built once from the config and passed down
// explicitly (STYLE.md practice 6): data parallelism over every rank, and, with expert
// parallelism (run.expert_parallel = P > 1), the expert groups (P consecutive ranks that
// together hold one copy of the routed experts) and the expert data-parallel groups
// (the W/P ranks that hold the same experts: rank r, r + P, r + 2P, ...).
//
// Owns: the split of the world communicator and the checks that P divides the rank
// count. Must not: keep global state (the caller owns the groups).
#pragma once

#include <memory>

#include "zeroth/comm.h"

namespace zeroth {

struct ProcessGroups {
  Communicator* data = nullptr;                  // every rank (the world passed in)
  int expert_parallel = 1;                       // P
  std::unique_ptr<Communicator> expert;          // P ranks; nullptr when P == 1
  std::unique_ptr<Communicator> expert_data;     // W / P ranks; nullptr when P == 1
  // ZeRO stage (run.zero_stage): 1 shards the optimizer state over the data-parallel
  // ranks (grad_sync.h, optim.h). Set by the caller after make_process_groups.
  int zero_stage = 0;

  // The expert group's rank (0 when P == 1): which experts this rank holds.
  int expert_rank() const { return expert ? expert->rank() : 0; }
};

// Collective over world. ConfigError naming `key` when P does not divide world.size()
// or the model's `routed_experts` (n_routed_experts).
ProcessGroups make_process_groups(Communicator& world, int expert_parallel, int64_t routed_experts,
                                  const char* key = "run.expert_parallel");

}  // namespace zeroth
