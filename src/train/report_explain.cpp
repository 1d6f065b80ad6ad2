// The explanation section of the run report: why the model flags the rows it flags, and which test rows it
// gets wrong.
#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

#include "lepton/explain.hpp"
#include "lepton/predictor.hpp"
#include "train/report.hpp"

namespace lepton::detail {
namespace {

using nlohmann::json;

// The raw values of the model's input columns in one row, as the user's file spells them.
json raw_values(const Table& table, const Preprocessor& preprocessor, std::size_t row) {
  json values = json::object();
  for (const FeatureTransform& feature : preprocessor.features()) {
    const std::size_t column = table.column_index(feature.column);
    values[feature.column] = table.is_missing(row, column) ? json(nullptr) : json(table.cell(row, column));
  }
  return values;
}

json importance_rows(const GlobalImportance& importance) {
  std::vector<std::size_t> order(importance.groups);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return importance.mean_abs[a * importance.outputs] > importance.mean_abs[b * importance.outputs];
  });
  json rows = json::array();
  for (std::size_t g : order) {
    rows.push_back({{"feature", importance.group_names[g]},
                    {"mean_abs_shap", importance.mean_abs[g * importance.outputs]},
                    {"std_abs_shap", importance.std_abs[g * importance.outputs]}});
  }
  return rows;
}

// The mean of each output over the explained rows, which a reader compares with the base value.
std::vector<double> mean_outputs(const Explanation& explanation) {
  std::vector<double> means(explanation.outputs, 0.0);
  if (explanation.rows == 0) return means;
  for (std::size_t r = 0; r < explanation.rows; ++r) {
    for (std::size_t k = 0; k < explanation.outputs; ++k) means[k] += explanation.predictions[r * explanation.outputs + k];
  }
  for (double& mean : means) mean /= static_cast<double>(explanation.rows);
  return means;
}

// The binary test rows as the report lists them: the explained rows, their data-row numbers in the table, the
// ID-like columns and the model's predictions.
struct ExplainedRows {
  const ModelArtifact& artifact;
  const Table& table;
  const std::vector<std::size_t>& test_rows;
  const std::vector<std::string>& id_columns;
  const Explanation& explanation;
  const Predictions& predictions;
};

// One test row of a binary model, where `i` indexes the explained rows: its 0-based data row in the table,
// its location in the file, its ID-like columns, the probability and its SHAP values, largest |SHAP| first.
json binary_row_record(const ExplainedRows& rows, std::size_t i) {
  json contributions = json::array();
  for (std::size_t g = 0; g < rows.explanation.groups; ++g) {
    contributions.push_back({{"feature", rows.explanation.group_names[g]}, {"shap", rows.explanation.value(i, g)}});
  }
  std::stable_sort(contributions.begin(), contributions.end(), [](const json& a, const json& b) {
    return std::abs(a["shap"].get<double>()) > std::abs(b["shap"].get<double>());
  });

  const std::size_t row = rows.test_rows[i];
  json ids = json::object();
  for (const std::string& name : rows.id_columns) {
    const std::size_t column = rows.table.column_index(name);
    if (!rows.table.is_missing(row, column)) ids[name] = rows.table.cell(row, column);
  }
  return {{"row", row},
          {"location", rows.table.locate(row, 0)},
          {"ids", ids},
          {"probability", rows.predictions.probability[i]},
          {"values", raw_values(rows.table, rows.artifact.preprocessor, row)},
          {"contributions", contributions}};
}

// The test rows that the stored threshold labels positive, most probable first.
json flagged_rows(const ExplainedRows& rows) {
  std::vector<std::size_t> positives;
  for (std::size_t i = 0; i < rows.predictions.rows; ++i) {
    if (rows.predictions.label_index[i] == 1) positives.push_back(i);
  }
  std::stable_sort(positives.begin(), positives.end(), [&](std::size_t a, std::size_t b) {
    return rows.predictions.probability[a] > rows.predictions.probability[b];
  });

  json flagged = json::array();
  for (std::size_t i : positives) flagged.push_back(binary_row_record(rows, i));
  return flagged;
}

// The test rows whose predicted class differs from their true class: false negatives (true positive class,
// predicted negative) and false positives. Each list is ordered by the distance |probability - threshold|,
// largest first, then by data row. The predictions are the ones that the test metrics count, so the list sizes
// equal the confusion matrix's off-diagonal cells.
json misclassified_rows(const ExplainedRows& rows) {
  const std::vector<std::int64_t> truth = rows.artifact.target.encode_labels(rows.table, rows.test_rows);
  const double threshold = rows.predictions.threshold;

  std::vector<std::size_t> false_negatives;
  std::vector<std::size_t> false_positives;
  for (std::size_t i = 0; i < rows.predictions.rows; ++i) {
    const std::int64_t predicted = rows.predictions.label_index[i];
    if (truth[i] == 1 && predicted == 0) false_negatives.push_back(i);
    if (truth[i] == 0 && predicted == 1) false_positives.push_back(i);
  }

  const auto listed = [&](std::vector<std::size_t> indices) {
    std::sort(indices.begin(), indices.end(), [&](std::size_t a, std::size_t b) {
      const double distance_a = std::abs(rows.predictions.probability[a] - threshold);
      const double distance_b = std::abs(rows.predictions.probability[b] - threshold);
      if (distance_a != distance_b) return distance_a > distance_b;
      return rows.test_rows[a] < rows.test_rows[b];
    });
    json list = json::array();
    for (std::size_t i : indices) {
      json record = binary_row_record(rows, i);
      record["distance_from_threshold"] = std::abs(rows.predictions.probability[i] - threshold);
      list.push_back(std::move(record));
    }
    return list;
  };

  return {{"threshold", threshold},
          {"positive_class", rows.artifact.target.classes.at(1)},
          {"negative_class", rows.artifact.target.classes.at(0)},
          {"false_negatives", listed(std::move(false_negatives))},
          {"false_positives", listed(std::move(false_positives))}};
}

}  // namespace

json explain_test_rows(const ModelArtifact& artifact, const Table& table, const std::vector<std::size_t>& test_rows,
                       const std::vector<std::string>& id_columns, int threads) {
  const OutputLink link = default_output_link(artifact);
  const FeatureGroups groups = FeatureGroups::from_preprocessor(artifact.preprocessor);
  const Background background = stored_background(artifact);
  const ExactExplainer explainer(explain_model(artifact, link), background, groups,
                                 ExactOptions().threads(static_cast<std::size_t>(std::max(threads, 1)))
                                     .path(CoalitionPath::Fast));

  const Matrix encoded = artifact.preprocessor.transform(table, test_rows);
  const Explanation explanation = explainer.explain(encoded);

  json section;
  section["method"] = "exact";
  section["output"] = to_string(link);
  section["background"] = {{"kind", "weighted_kmeans"}, {"rows", background.size()}};
  section["explained_rows"] = explanation.rows;
  section["base_value"] = explanation.base_values;
  section["mean_output"] = mean_outputs(explanation);
  section["global_importance"] = importance_rows(global_importance(explanation));

  json flagged = json::array();
  if (artifact.task == Task::BinaryClassification) {
    const Predictions predictions = Predictor(artifact).predict(encoded);
    const ExplainedRows rows{artifact, table, test_rows, id_columns, explanation, predictions};
    flagged = flagged_rows(rows);
    section["misclassified_test_rows"] = misclassified_rows(rows);
  }
  section["flagged_test_rows"] = flagged;
  return section;
}

}  // namespace lepton::detail
