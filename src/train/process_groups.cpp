// make_process_groups (process_groups.h): the world split into expert groups of P
// consecutive ranks and expert data-parallel groups of the ranks that hold the same
// experts. Consecutive ranks share a node under the usual launchers (--map-by slot,
// Slurm block distribution), so the per-layer token exchange stays inside a node when P
// is at most the GPUs per node, and only the experts' gradient reduction crosses nodes.
#include "zeroth/process_groups.h"

#include "zeroth/error.h"

namespace zeroth {

ProcessGroups make_process_groups(Communicator& world, int expert_parallel, int64_t routed_experts,
                                  const char* key) {
  ProcessGroups g;
  g.data = &world;
  g.expert_parallel = expert_parallel;
  const int W = world.size(), r = world.rank(), P = expert_parallel;
  ZT_THROW_IF_NOT(P >= 1 && W % P == 0, ConfigError,
                  "key '%s': expected a divisor of the %d rank(s), found %d", key, W, P);
  ZT_THROW_IF_NOT(routed_experts % P == 0, ConfigError,
                  "key '%s': expected a divisor of the model's n_routed_experts (%lld), found %d", key,
                  (long long)routed_experts, P);
  if (P == 1) return g;
  g.expert = world.split(r / P, r);
  g.expert_data = world.split(r % P, r);
  ZT_ASSERT(g.expert && g.expert->size() == P && g.expert_data && g.expert_data->size() == W / P,
            "process groups: expert group of %d, expert data-parallel group of %d (world %d, P %d)",
            g.expert ? g.expert->size() : -1, g.expert_data ? g.expert_data->size() : -1, W, P);
  return g;
}

}  // namespace zeroth
