// The explanation section of the run report: why the model flags the rows it flags.
#include <algorithm>
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
  section["global_importance"] = importance_rows(global_importance(explanation));

  // Flagged rows: the test rows that the stored threshold labels positive, most probable first.
  json flagged = json::array();
  if (artifact.task == Task::BinaryClassification) {
    const Predictions predictions = Predictor(artifact).predict(encoded);
    std::vector<std::size_t> positives;
    for (std::size_t i = 0; i < predictions.rows; ++i) {
      if (predictions.label_index[i] == 1) positives.push_back(i);
    }
    std::stable_sort(positives.begin(), positives.end(), [&](std::size_t a, std::size_t b) {
      return predictions.probability[a] > predictions.probability[b];
    });
    for (std::size_t i : positives) {
      json contributions = json::array();
      for (std::size_t g = 0; g < explanation.groups; ++g) {
        contributions.push_back({{"feature", explanation.group_names[g]}, {"shap", explanation.value(i, g)}});
      }
      std::stable_sort(contributions.begin(), contributions.end(), [](const json& a, const json& b) {
        return std::abs(a["shap"].get<double>()) > std::abs(b["shap"].get<double>());
      });
      json ids = json::object();
      for (const std::string& name : id_columns) {
        const std::size_t column = table.column_index(name);
        if (!table.is_missing(test_rows[i], column)) ids[name] = table.cell(test_rows[i], column);
      }
      flagged.push_back({{"row", test_rows[i]},
                         {"location", table.locate(test_rows[i], 0)},
                         {"ids", ids},
                         {"probability", predictions.probability[i]},
                         {"values", raw_values(table, artifact.preprocessor, test_rows[i])},
                         {"contributions", contributions}});
    }
  }
  section["flagged_test_rows"] = flagged;
  return section;
}

}  // namespace lepton::detail
