// Shared explainer plumbing: seeded generators, argument checks, the row-parallel runner and results.

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <limits>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "lepton/error.hpp"
#include "runtime/explain_detail.hpp"

namespace lepton {

namespace detail {

// SplitMix64's finaliser: a bijection with good avalanche, so neighbouring rows get unrelated streams.
std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t stream) {
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (stream + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

RowRandom::RowRandom(std::uint64_t seed, std::uint64_t row) : engine_(mix_seed(seed, row)) {}

std::uint64_t RowRandom::below(std::uint64_t bound) {
  // Rejects the top partial block of 2^64 so every residue is equally likely.
  const std::uint64_t limit = std::numeric_limits<std::uint64_t>::max() - std::numeric_limits<std::uint64_t>::max() % bound;
  std::uint64_t draw = engine_();
  while (draw >= limit) draw = engine_();
  return draw % bound;
}

double RowRandom::unit() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }

void RowRandom::shuffle(std::vector<std::size_t>& values) {
  for (std::size_t i = values.size(); i > 1; --i) std::swap(values[i - 1], values[below(i)]);
}

void check_setup(const ExplainModel& model, const Background& background, const FeatureGroups& groups,
                 const std::string& caller) {
  background.validate();
  if (background.rows.cols != model.inputs()) {
    throw InvalidArgument(fmt::format("{}: background rows have {} columns but the model takes {}; encode them first",
                                      caller, background.rows.cols, model.inputs()));
  }
  if (groups.width() != model.inputs()) {
    throw InvalidArgument(fmt::format(
        "{}: the feature groups cover {} columns but the model takes {}; build the groups from the same preprocessor",
        caller, groups.width(), model.inputs()));
  }
  if (groups.size() > kMaxMaskGroups) {
    throw InvalidArgument(fmt::format("{}: {} feature groups; at most {} are supported, so merge columns into groups",
                                      caller, groups.size(), kMaxMaskGroups));
  }
}

void check_rows(const DoubleMatrix& rows, std::size_t width, const std::string& caller) {
  if (rows.cols != width || rows.data.size() != rows.rows * rows.cols) {
    throw InvalidArgument(fmt::format("{}::explain: rows are {} x {} but the model takes {} columns; pass encoded rows",
                                      caller, rows.rows, rows.cols, width));
  }
}

std::size_t resolve_threads(std::size_t threads) {
  if (threads != 0) return threads;
  return std::max<std::size_t>(1, std::thread::hardware_concurrency());
}

void for_each_row(std::size_t rows, std::size_t threads, const std::function<void(std::size_t, std::size_t)>& work) {
  const std::size_t workers = std::min(resolve_threads(threads), std::max<std::size_t>(rows, 1));
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr first_error;
  std::mutex error_mutex;

  auto run = [&](std::size_t worker) {
    for (std::size_t row = next++; row < rows && !failed; row = next++) {
      try {
        work(row, worker);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!first_error) first_error = std::current_exception();
        failed = true;
      }
    }
  };

  std::vector<std::thread> pool;
  for (std::size_t worker = 1; worker < workers; ++worker) pool.emplace_back(run, worker);
  run(0);
  for (std::thread& thread : pool) thread.join();
  if (first_error) std::rethrow_exception(first_error);
}

Explanation make_explanation(const std::string& method, std::size_t rows, const FeatureGroups& groups,
                             std::size_t outputs) {
  Explanation explanation;
  explanation.method = method;
  explanation.rows = rows;
  explanation.groups = groups.size();
  explanation.outputs = outputs;
  explanation.group_names = groups.names();
  explanation.base_values.assign(outputs, 0.0);
  explanation.predictions.assign(rows * outputs, 0.0);
  explanation.values.assign(rows * groups.size() * outputs, 0.0);
  explanation.standard_errors.assign(rows * groups.size() * outputs, 0.0);
  explanation.completeness_gaps.assign(rows * outputs, 0.0);
  return explanation;
}

void finish_explanation(const ExplainModel& model, const DoubleMatrix& rows, Explanation& explanation) {
  model.evaluate(rows.data.data(), rows.rows, explanation.predictions.data());
  const std::size_t k_count = explanation.outputs;
  for (std::size_t r = 0; r < explanation.rows; ++r) {
    for (std::size_t k = 0; k < k_count; ++k) {
      double total = 0.0;
      for (std::size_t g = 0; g < explanation.groups; ++g) total += explanation.value(r, g, k);
      const double expected = explanation.predictions[r * k_count + k] - explanation.base_values[k];
      explanation.completeness_gaps[r * k_count + k] = std::abs(total - expected);
    }
  }
}

}  // namespace detail

nlohmann::json Explanation::to_json() const {
  nlohmann::json rows_json = nlohmann::json::array();
  for (std::size_t r = 0; r < rows; ++r) {
    nlohmann::json row_json;
    row_json["prediction"] = std::vector<double>(predictions.begin() + r * outputs, predictions.begin() + (r + 1) * outputs);
    nlohmann::json values_json = nlohmann::json::object();
    nlohmann::json errors_json = nlohmann::json::object();
    for (std::size_t g = 0; g < groups; ++g) {
      const std::size_t start = (r * groups + g) * outputs;
      values_json[group_names[g]] = std::vector<double>(values.begin() + start, values.begin() + start + outputs);
      errors_json[group_names[g]] =
          std::vector<double>(standard_errors.begin() + start, standard_errors.begin() + start + outputs);
    }
    row_json["values"] = std::move(values_json);
    row_json["standard_errors"] = std::move(errors_json);
    row_json["completeness_gap"] =
        std::vector<double>(completeness_gaps.begin() + r * outputs, completeness_gaps.begin() + (r + 1) * outputs);
    rows_json.push_back(std::move(row_json));
  }
  return {{"method", method}, {"groups", group_names}, {"base_values", base_values}, {"rows", std::move(rows_json)}};
}

GlobalImportance global_importance(const Explanation& explanation) {
  if (explanation.rows == 0) {
    throw InvalidArgument("global_importance: the explanation has no rows; explain at least one row");
  }
  GlobalImportance importance;
  importance.groups = explanation.groups;
  importance.outputs = explanation.outputs;
  importance.group_names = explanation.group_names;
  importance.mean_abs.assign(explanation.groups * explanation.outputs, 0.0);
  importance.std_abs.assign(explanation.groups * explanation.outputs, 0.0);

  const double count = static_cast<double>(explanation.rows);
  for (std::size_t g = 0; g < explanation.groups; ++g) {
    for (std::size_t k = 0; k < explanation.outputs; ++k) {
      double mean = 0.0;
      for (std::size_t r = 0; r < explanation.rows; ++r) mean += std::abs(explanation.value(r, g, k));
      mean /= count;

      double variance = 0.0;
      for (std::size_t r = 0; r < explanation.rows; ++r) {
        const double deviation = std::abs(explanation.value(r, g, k)) - mean;
        variance += deviation * deviation;
      }
      importance.mean_abs[g * explanation.outputs + k] = mean;
      importance.std_abs[g * explanation.outputs + k] = std::sqrt(variance / count);
    }
  }
  return importance;
}

}  // namespace lepton
