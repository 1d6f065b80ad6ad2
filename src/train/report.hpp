#pragma once
// Builds the run report: report.json for programs, and report.md rendered from that same JSON for people.

#include <string>

#include <nlohmann/json.hpp>

#include "lepton/model.hpp"
#include "lepton/pipeline.hpp"

namespace lepton::detail {

/// Collects data profile, configuration with reasons, training history, metrics, constraint checks and
/// provenance into one JSON document. `int8_artifact` is the int8 export when the run wrote one. Its
/// latency and weight bytes are measured too, and the latency and size limits judge it, because it is the
/// export made for the limits.
nlohmann::json build_report(const Requirements& requirements, const PipelineResult& result,
                            const ModelArtifact& artifact, const ModelArtifact* int8_artifact = nullptr);

/// Explains the test rows exactly over the artifact's stored background: global importance (mean |SHAP| per
/// raw feature, with its spread) and, for binary classification, the attributions of every test row that the
/// model flags as positive, with the row's raw values. For binary classification it also lists the test rows
/// that the model gets wrong (misclassified_test_rows: false negatives and false positives at the artifact's
/// threshold). `test_rows` are 0-based data rows of `table`, the numbers that each listed row carries.
/// `id_columns` (ID-like columns of the data, such as a serial number) are copied into each listed row, so
/// that a reader can find the machine or customer it describes.
nlohmann::json explain_test_rows(const ModelArtifact& artifact, const Table& table,
                                 const std::vector<std::size_t>& test_rows, const std::vector<std::string>& id_columns,
                                 int threads);

/// Renders the report JSON as Markdown for plant engineers and risk officers.
std::string render_report_markdown(const nlohmann::json& report);

/// Median single-row latency of the runtime predictor in microseconds, over `repetitions` calls on `row`.
double measure_single_row_latency_us(const ModelArtifact& artifact, const Matrix& row, int repetitions = 2000);

}  // namespace lepton::detail
