// Glue between model artifacts and explainers: the default output, and the stored background.
#include <fmt/format.h>

#include "lepton/error.hpp"
#include "lepton/explain.hpp"

namespace lepton {

OutputLink default_output_link(const ModelArtifact& artifact) {
  switch (artifact.task) {
    case Task::BinaryClassification: return OutputLink::Logistic;
    case Task::MulticlassClassification: return OutputLink::Softmax;
    case Task::Regression: break;
  }
  // NOTE: regression attributions are in standardized target units; multiply by target.scale for raw units.
  return OutputLink::Identity;
}

ExplainModel explain_model(const ModelArtifact& artifact, OutputLink link) {
  return ExplainModel::from_mlp(artifact.network, link);
}

void store_background(ModelArtifact& artifact, const Background& background) {
  background.validate();
  if (background.rows.cols != artifact.preprocessor.encoded_width()) {
    throw InvalidArgument(fmt::format("store_background: background rows have {} columns but the model encodes {}",
                                      background.rows.cols, artifact.preprocessor.encoded_width()));
  }
  artifact.extensions[kExplanationBackgroundKey] = background.to_json();
}

Background stored_background(const ModelArtifact& artifact) {
  if (!artifact.extensions.contains(kExplanationBackgroundKey)) {
    throw InvalidArgument(
        "the model file stores no explanation background; retrain it with this version of lepton run, or build a "
        "Background from training rows and pass it to the explainer");
  }
  return Background::from_json(artifact.extensions.at(kExplanationBackgroundKey),
                               std::string("$.extensions.") + kExplanationBackgroundKey);
}

}  // namespace lepton
