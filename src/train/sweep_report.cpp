// sweep.h: `zeroth sweep status` / `report`: every trial's swept values, state, last
// step and the final/best value of the ranking metric read from its metrics.jsonl, as an
// aligned console table, CSV and Markdown.
// Must not: run anything (the plot is run by cmd_sweep.cpp).
#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "zeroth/error.h"
#include "zeroth/sweep.h"

namespace zeroth {

namespace {

const char* const kExtraMetrics[] = {"reward_mean", "accuracy", "format_rate"};

std::string num(double x) { return std::isfinite(x) ? strformat("%.4g", x) : std::string("nan"); }

// The cells of the table: a header row, then one row per trial.
std::vector<std::vector<std::string>> cells(const SweepReport& r) {
  std::vector<std::vector<std::string>> out;
  std::vector<std::string> head = {"rank", "trial"};
  for (const auto& k : r.param_keys) head.push_back(k);
  head.insert(head.end(), {"state", "step", r.metric + " final", r.metric + " best", "best step"});
  for (const auto& m : r.extra_metrics) head.push_back(m);
  out.push_back(head);
  for (const auto& row : r.rows) {
    std::vector<std::string> c = {row.rank > 0 ? std::to_string(row.rank) : "-", row.name};
    for (const auto& k : r.param_keys) {
      std::string v = "-";
      for (const auto& kv : row.params)
        if (kv.first == k) v = kv.second;
      c.push_back(v);
    }
    c.push_back(row.state.state);
    c.push_back(row.state.last_step >= 0 ? strformat("%lld/%lld", static_cast<long long>(row.state.last_step),
                                                     static_cast<long long>(row.steps))
                                         : strformat("-/%lld", static_cast<long long>(row.steps)));
    c.push_back(row.has_final ? num(row.final_value) : "-");
    c.push_back(row.has_best ? num(row.best_value) : "-");
    c.push_back(row.has_best ? std::to_string(row.best_step) : "-");
    for (const auto& m : r.extra_metrics) {
      auto it = row.last.find(m);
      c.push_back(it == row.last.end() ? "-" : num(it->second));
    }
    out.push_back(c);
  }
  return out;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace

SweepReport build_sweep_report(const std::string& out_dir, const std::string& metric, const std::string& by,
                               bool ranked, const std::string& mode) {
  const SweepPlan plan = read_sweep_plan(out_dir);
  SweepReport r;
  r.metric = metric.empty() ? plan.metric : metric;
  r.mode = mode.empty() ? plan.mode : mode;
  if (r.mode != "max" && r.mode != "min")
    throw UsageError(strformat("--mode: expected max or min, found '%s'", r.mode.c_str()));
  r.by = by.empty() ? "final" : by;
  if (r.by != "final" && r.by != "best")
    throw UsageError(strformat("--by: expected final or best, found '%s'", r.by.c_str()));
  std::set<std::string> seen_keys, seen_metrics;
  for (const auto& t : plan.trials) {
    SweepReportRow row;
    row.name = t.name;
    row.params = t.params;
    row.steps = t.steps;
    for (const auto& kv : t.params)
      if (seen_keys.insert(kv.first).second) r.param_keys.push_back(kv.first);
    const std::string dir = plan.out_dir + "/" + t.name;
    row.state = read_trial_state(dir);
    std::ifstream in(dir + "/metrics.jsonl");
    for (std::string line; std::getline(in, line);) {
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception&) {
        continue;  // a line cut short by a crash
      }
      if (!j.is_object() || !j.contains("step") || !j["step"].is_number()) continue;
      const int64_t step = j["step"].get<int64_t>();
      for (auto it = j.begin(); it != j.end(); ++it) {
        if (it.key() == "step" || !it.value().is_number()) continue;
        const double v = it.value().get<double>();
        row.last[it.key()] = v;
        seen_metrics.insert(it.key());
        if (it.key() != r.metric || !std::isfinite(v)) continue;
        row.has_final = true;
        row.final_value = v;
        const bool better = !row.has_best || (r.mode == "max" ? v > row.best_value : v < row.best_value);
        if (better) {
          row.has_best = true;
          row.best_value = v;
          row.best_step = step;
        }
      }
    }
    r.rows.push_back(std::move(row));
  }
  // An explicit --metric that no trial logs is a typo; the sweep's own metric may simply
  // not be logged yet (before the first eval), so status and report show dashes for it.
  if (!metric.empty() && !seen_metrics.empty() && !seen_metrics.count(r.metric)) {
    std::string known;
    for (const std::string& m : seen_metrics) known += (known.empty() ? "" : ", ") + m;
    throw UsageError(strformat("--metric '%s': no trial's metrics.jsonl has it; found %s", r.metric.c_str(),
                               known.c_str()));
  }
  for (const char* m : kExtraMetrics)
    if (seen_metrics.count(m) && m != r.metric) r.extra_metrics.push_back(m);

  // Rank by the metric (final or best value, per mode); trials without it come last.
  std::vector<size_t> order(r.rows.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  auto key = [&](const SweepReportRow& row, double* v) {
    *v = r.by == "best" ? row.best_value : row.final_value;
    return r.by == "best" ? row.has_best : row.has_final;
  };
  std::vector<size_t> valued;
  for (size_t i : order) {
    double v;
    if (key(r.rows[i], &v)) valued.push_back(i);
  }
  std::stable_sort(valued.begin(), valued.end(), [&](size_t a, size_t b) {
    double va, vb;
    key(r.rows[a], &va);
    key(r.rows[b], &vb);
    return r.mode == "max" ? va > vb : va < vb;
  });
  for (size_t k = 0; k < valued.size(); ++k) r.rows[valued[k]].rank = static_cast<int>(k) + 1;
  if (ranked) {
    std::vector<SweepReportRow> sorted;
    for (size_t i : valued) sorted.push_back(r.rows[i]);
    for (auto& row : r.rows)
      if (row.rank == 0) sorted.push_back(row);
    r.rows = std::move(sorted);
  }
  return r;
}

std::string format_sweep_table(const SweepReport& r) {
  const auto c = cells(r);
  std::vector<size_t> width(c[0].size(), 0);
  for (const auto& row : c)
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  std::string out;
  for (size_t k = 0; k < c.size(); ++k) {
    std::string line;
    for (size_t i = 0; i < c[k].size(); ++i) {
      line += c[k][i];
      if (i + 1 < c[k].size()) line += std::string(width[i] - c[k][i].size() + 2, ' ');
    }
    out += line + "\n";
  }
  int n_done = 0, n_run = 0, n_fail = 0;
  for (const auto& row : r.rows) {
    n_done += row.state.state == "done";
    n_run += row.state.state == "running";
    n_fail += row.state.state == "failed";
  }
  out += strformat("%zu trial(s): %d done, %d running, %d failed; ranked by %s %s (%s)\n", r.rows.size(), n_done,
                   n_run, n_fail, r.by.c_str(), r.metric.c_str(), r.mode.c_str());
  return out;
}

std::string format_sweep_csv(const SweepReport& r) {
  std::string out;
  for (const auto& row : cells(r)) {
    for (size_t i = 0; i < row.size(); ++i) out += (i ? "," : "") + csv_field(row[i] == "-" ? "" : row[i]);
    out += "\n";
  }
  return out;
}

std::string format_sweep_markdown(const SweepReport& r) {
  const auto c = cells(r);
  std::string out;
  for (size_t k = 0; k < c.size(); ++k) {
    out += "|";
    for (const auto& v : c[k]) {
      std::string e;
      for (char ch : v) e += ch == '|' ? std::string("\\|") : std::string(1, ch);
      out += " " + e + " |";
    }
    out += "\n";
    if (k == 0) {
      out += "|";
      for (size_t i = 0; i < c[0].size(); ++i) out += " --- |";
      out += "\n";
    }
  }
  return out;
}

}  // namespace zeroth
