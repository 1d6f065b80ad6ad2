// `lepton explain`: SHAP attributions for rows of a CSV file, from a model artifact alone.
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <numeric>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "lepton/error.hpp"
#include "lepton/explain.hpp"
#include "lepton/io.hpp"
#include "lepton/predictor.hpp"

namespace lepton::cli {
namespace {

std::size_t parse_index(const std::string& item, const std::string& text) {
  std::size_t used = 0;
  unsigned long long value = 0;
  try {
    value = std::stoull(item, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != item.size()) {
    throw InvalidArgument(fmt::format("--rows '{}': '{}' is not a row number; use 0-based numbers and ranges such as "
                                      "0-9,15", text, item));
  }
  return static_cast<std::size_t>(value);
}

Explanation run_explainer(const ExplainArguments& arguments, const ModelArtifact& artifact, const Matrix& encoded) {
  ExplainModel model = explain_model(artifact, default_output_link(artifact));
  Background background = stored_background(artifact);
  FeatureGroups groups = FeatureGroups::from_preprocessor(artifact.preprocessor);

  if (arguments.method == "exact") {
    return ExactExplainer(model, background, groups, ExactOptions().threads(arguments.threads)).explain(encoded);
  }
  if (arguments.method == "kernel") {
    KernelOptions options = KernelOptions().threads(arguments.threads).seed(arguments.seed);
    if (arguments.samples > 0) options.samples(arguments.samples);
    return KernelExplainer(model, background, groups, options).explain(encoded);
  }
  if (arguments.method == "permutation") {
    PermutationOptions options = PermutationOptions().threads(arguments.threads).seed(arguments.seed);
    if (arguments.samples > 0) options.permutations(arguments.samples);
    return PermutationExplainer(model, background, groups, options).explain(encoded);
  }
  if (arguments.method == "gradient") {
    return GradientExplainer(model, background, groups, GradientOptions().threads(arguments.threads)).explain(encoded);
  }
  throw InvalidArgument(fmt::format("--method '{}' is not supported; use exact, kernel, permutation or gradient",
                                    arguments.method));
}

// One CSV row per (explained row, output): the row number, the prediction, the base value and one column per feature.
std::string attributions_csv(const Explanation& explanation, const std::vector<std::size_t>& rows) {
  std::string csv = "row,output,prediction,base_value";
  for (const std::string& name : explanation.group_names) {
    std::string quoted = name;
    if (quoted.find_first_of(",\"\n") != std::string::npos) {
      std::string escaped;
      for (char ch : quoted) escaped += ch == '"' ? std::string("\"\"") : std::string(1, ch);
      quoted = "\"" + escaped + "\"";
    }
    csv += "," + quoted;
  }
  csv += "\n";
  for (std::size_t r = 0; r < explanation.rows; ++r) {
    for (std::size_t k = 0; k < explanation.outputs; ++k) {
      csv += fmt::format("{},{},{:.17g},{:.17g}", rows[r], k, explanation.predictions[r * explanation.outputs + k],
                         explanation.base_values[k]);
      for (std::size_t g = 0; g < explanation.groups; ++g) csv += fmt::format(",{:.17g}", explanation.value(r, g, k));
      csv += "\n";
    }
  }
  return csv;
}

// Formats one line per row for the first output, e.g.
// "row 12: prediction 0.93 (base 0.02): Torque [Nm] +0.61, Tool wear [min] +0.20".
std::string top_k_text(const Explanation& explanation, const std::vector<std::size_t>& rows, std::size_t top_k) {
  std::string text;
  for (std::size_t r = 0; r < explanation.rows; ++r) {
    std::vector<std::size_t> order(explanation.groups);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return std::abs(explanation.value(r, a)) > std::abs(explanation.value(r, b));
    });
    text += fmt::format("row {}: prediction {:.4f} (base {:.4f}):", rows[r],
                        explanation.predictions[r * explanation.outputs], explanation.base_values[0]);
    for (std::size_t i = 0; i < std::min(top_k, order.size()); ++i) {
      text += fmt::format("{} {} {:+.4f}", i ? "," : "", explanation.group_names[order[i]],
                          explanation.value(r, order[i]));
    }
    text += "\n";
  }
  return text;
}

}  // namespace

std::vector<std::size_t> parse_row_list(const std::string& text, std::size_t rows) {
  std::vector<std::size_t> selected;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, comma - start);
    const std::size_t dash = item.find('-');
    const std::size_t first = parse_index(item.substr(0, dash), text);
    const std::size_t last = dash == std::string::npos ? first : parse_index(item.substr(dash + 1), text);
    if (first > last) {
      throw InvalidArgument(fmt::format("--rows '{}': the range '{}' runs backwards; write the smaller row first, as "
                                        "'{}-{}'",
                                        text, item, last, first));
    }
    if (last >= rows) {
      throw InvalidArgument(fmt::format("--rows '{}': '{}' is outside the file's rows 0-{}", text, item, rows - 1));
    }
    for (std::size_t row = first; row <= last; ++row) selected.push_back(row);
    start = comma + 1;
  }
  std::sort(selected.begin(), selected.end());
  selected.erase(std::unique(selected.begin(), selected.end()), selected.end());
  return selected;
}

int explain_command(const ExplainArguments& arguments) {
  const Predictor predictor = Predictor::load(arguments.model_path);
  const Table table = read_csv(arguments.data_path);
  if (table.rows() == 0) throw InvalidArgument(fmt::format("{}: the file has no data rows to explain", arguments.data_path));

  std::vector<std::size_t> rows(table.rows());
  std::iota(rows.begin(), rows.end(), 0);
  if (!arguments.rows.empty()) rows = parse_row_list(arguments.rows, table.rows());

  const Matrix encoded = predictor.artifact().preprocessor.transform(table, rows);
  const Explanation explanation = run_explainer(arguments, predictor.artifact(), encoded);

  nlohmann::json document = explanation.to_json();
  document["rows_explained"] = rows;
  const GlobalImportance importance = global_importance(explanation);
  document["global_importance"] = {{"features", importance.group_names},
                                   {"mean_abs", importance.mean_abs},
                                   {"std_abs", importance.std_abs}};

  std::error_code error;
  std::filesystem::create_directories(arguments.output_dir, error);
  if (error) throw IoError(fmt::format("cannot create output folder '{}': {}", arguments.output_dir, error.message()));
  const std::filesystem::path out(arguments.output_dir);
  const std::string top_k = top_k_text(explanation, rows, arguments.top_k);
  write_file_atomically((out / "attributions.json").string(), document.dump(2) + "\n");
  write_file_atomically((out / "attributions.csv").string(), attributions_csv(explanation, rows));
  write_file_atomically((out / "top_k.txt").string(), top_k);

  std::cout << top_k << fmt::format("Wrote {}/: attributions.json, attributions.csv, top_k.txt\n", arguments.output_dir);
  return 0;
}

}  // namespace lepton::cli
