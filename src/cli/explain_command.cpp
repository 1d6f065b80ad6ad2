// `lepton explain`: SHAP attributions for rows of a CSV file, from a model artifact alone.
#include <algorithm>
#include <charconv>
#include <filesystem>
#include <iostream>
#include <limits>
#include <numeric>
#include <utility>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "cli/csv_fields.hpp"
#include "cli/input_files.hpp"
#include "lepton/error.hpp"
#include "lepton/explain.hpp"
#include "lepton/io.hpp"
#include "lepton/predictor.hpp"

namespace lepton::cli {
namespace {

// Row lists are 0-based, as in the CSV messages, `predict` output and the report.
constexpr const char* kRowListExample = "0-based row numbers and ranges such as 0-9,15";

std::string trim_spaces(const std::string& text) {
  const std::size_t first = text.find_first_not_of(' ');
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(' ') - first + 1);
}

// Parses one bound of a range. Only decimal digits are accepted, so "-1", "+3" and "3x" are rejected here
// instead of wrapping around or being cut short. A number too large for size_t becomes SIZE_MAX, which the
// caller reports as outside the file's rows.
std::size_t parse_row_number(const std::string& part, const std::string& item, const std::string& text) {
  const std::string digits = trim_spaces(part);
  if (!digits.empty() && (digits.front() == '-' || digits.front() == '+')) {
    throw InvalidArgument(fmt::format("--rows '{}': '{}' is not a row number; rows are 0-based non-negative "
                                      "numbers. Pass numbers and ranges such as 0-9,15",
                                      text, item));
  }

  std::size_t value = 0;
  const char* end = digits.data() + digits.size();
  const auto [stop, error] = std::from_chars(digits.data(), end, value);
  if (digits.empty() || stop != end || (error != std::errc() && error != std::errc::result_out_of_range)) {
    throw InvalidArgument(
        fmt::format("--rows '{}': '{}' is not a row number or range; pass {}", text, item, kRowListExample));
  }
  return error == std::errc::result_out_of_range ? std::numeric_limits<std::size_t>::max() : value;
}

// Parses "7" or "3-9" into the first and last row of the item.
std::pair<std::size_t, std::size_t> parse_row_item(const std::string& item, const std::string& text) {
  const std::string trimmed = trim_spaces(item);
  if (trimmed.empty()) {
    throw InvalidArgument(fmt::format("--rows '{}': an item between commas is empty; remove the extra comma and "
                                      "pass {}",
                                      text, kRowListExample));
  }

  // A leading '-' is a sign, not a range, so "-1" is reported as a negative number.
  const std::size_t dash = trimmed.find('-', 1);
  const std::size_t first = parse_row_number(trimmed.substr(0, dash), trimmed, text);
  const std::size_t last =
      dash == std::string::npos ? first : parse_row_number(trimmed.substr(dash + 1), trimmed, text);
  if (first > last) {
    throw InvalidArgument(fmt::format("--rows '{}': the range '{}' runs backwards; write the smaller row first, as "
                                      "'{}-{}'",
                                      text, trimmed, last, first));
  }
  return {first, last};
}

Explanation run_explainer(const ExplainArguments& arguments, const ModelArtifact& artifact, const Matrix& encoded) {
  ExplainModel model = explain_model(artifact, default_output_link(artifact));
  Background background = stored_background(artifact);
  FeatureGroups groups = FeatureGroups::from_preprocessor(artifact.preprocessor);

  const CoalitionPath path = arguments.path == "reference" ? CoalitionPath::Reference : CoalitionPath::Fast;
  if (arguments.method == "exact") {
    return ExactExplainer(model, background, groups, ExactOptions().threads(arguments.threads).path(path))
        .explain(encoded);
  }
  if (arguments.method == "kernel") {
    KernelOptions options = KernelOptions().threads(arguments.threads).seed(arguments.seed).path(path);
    if (arguments.samples > 0) options.samples(arguments.samples);
    return KernelExplainer(model, background, groups, options).explain(encoded);
  }
  if (arguments.method == "permutation") {
    PermutationOptions options = PermutationOptions().threads(arguments.threads).seed(arguments.seed).path(path);
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
  for (const std::string& name : explanation.group_names) csv += "," + csv_field(name);
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
  if (text.find_first_not_of(" ,") == std::string::npos) {
    throw InvalidArgument(fmt::format("--rows '{}' names no row; pass {}, or leave out --rows to explain every row",
                                      text, kRowListExample));
  }
  if (rows == 0) {
    throw InvalidArgument(fmt::format("--rows '{}': the file has no data rows to select; pass a CSV file with rows",
                                      text));
  }

  std::vector<std::size_t> selected;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, comma - start);
    const auto [first, last] = parse_row_item(item, text);
    if (last >= rows) {
      throw InvalidArgument(fmt::format("--rows '{}': '{}' is outside the file's rows 0-{}; rows are counted from 0",
                                        text, trim_spaces(item), rows - 1));
    }
    for (std::size_t row = first; row <= last; ++row) selected.push_back(row);
    start = comma + 1;
  }

  std::sort(selected.begin(), selected.end());
  selected.erase(std::unique(selected.begin(), selected.end()), selected.end());
  return selected;
}

int explain_command(const ExplainArguments& arguments) {
  check_input_file("--model", arguments.model_path);
  check_input_file("--data", arguments.data_path);
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
  if (arguments.method != "gradient") document["coalition_path"] = arguments.path;
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
