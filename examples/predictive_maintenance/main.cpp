// Predictive maintenance on the AI4I 2020 data through the public API alone: the same stages that
// `lepton run` composes, written out step by step so that a host application can adapt each one.
//
//   predictive_maintenance REQUIREMENTS.json ai4i2020.csv MODEL_OUT.lepton
#include <algorithm>
#include <iostream>
#include <numeric>

#include <lepton/configurator.hpp>
#include <lepton/derived.hpp>
#include <lepton/ensemble.hpp>
#include <lepton/error.hpp>
#include <lepton/evaluator.hpp>
#include <lepton/predictor.hpp>
#include <lepton/requirements.hpp>
#include <lepton/trainer.hpp>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: predictive_maintenance REQUIREMENTS.json DATA.csv MODEL_OUT.lepton\n";
    return 2;
  }
  try {
    // 1. Requirements and data.
    const lepton::Requirements requirements = lepton::load_requirements(argv[1]);
    const lepton::Table table = lepton::read_csv(argv[2]);
    const lepton::DataProfile profile = lepton::profile_table(table, requirements.target, requirements.task);

    // 2. Configuration, with a reason for every choice.
    lepton::ModelConfig config = lepton::configure(requirements, profile);
    for (const auto& [field, reason] : config.reasons) std::cout << field << ": " << reason.text << "\n";

    // 3. Stratified split. With cross-fitting (config.cross_fit_folds > 1, chosen for small data) the model
    //    learns from the training and validation rows together; preprocessing is fitted on those rows only.
    std::vector<std::size_t> all_rows(table.rows());
    std::iota(all_rows.begin(), all_rows.end(), 0);
    const lepton::TargetEncoding target =
        lepton::TargetEncoding::fit(table, requirements.target, requirements.task, all_rows);
    const std::vector<std::int64_t> labels = target.encode_labels(table, all_rows);
    const lepton::Split split = lepton::stratified_split(labels, requirements.split, requirements.seed);
    const bool cross_fit = config.cross_fit_folds > 1;
    std::vector<std::size_t> learning_rows = split.train;
    if (cross_fit) {
      learning_rows.insert(learning_rows.end(), split.validation.begin(), split.validation.end());
      std::sort(learning_rows.begin(), learning_rows.end());
    }
    lepton::Preprocessor preprocessor = lepton::Preprocessor::fit(table, config.features, learning_rows);

    auto make_data = [&](const std::vector<std::size_t>& rows) {
      lepton::TrainingData data;
      data.features = preprocessor.transform(table, rows);
      for (std::size_t row : rows) data.labels.push_back(labels[row]);
      return data;
    };
    const lepton::TrainingData learning = make_data(learning_rows);

    // 3b. Derived inputs: the configurator may ask for a screen of the differences and products of numeric
    //     features, run on the learning rows only. By default each kept quantity brings a step input at its
    //     best split. The model trains on the kept inputs as extra columns. fold_derived() then moves a
    //     difference into the first layer and a product or a step into the network's input products, so the
    //     exported model takes the encoded columns alone.
    if (config.derived_search) {
      const lepton::DerivedSearchOptions search =
          lepton::DerivedSearchOptions().with_seed(config.seed).with_products(config.derived_products);
      config.derived_features =
          lepton::screen_derived_inputs(preprocessor, learning.features, learning.labels, search).kept;
      for (const auto& derived : config.derived_features) std::cout << "derived input: " << derived.name() << "\n";
    }
    const lepton::TrainingData test = make_data(split.test);
    auto with_derived = [&](lepton::TrainingData data) {
      data.features = lepton::append_derived(data.features, config.derived_features);
      return data;
    };

    // 4. Train with LibTorch; progress goes to stderr.
    lepton::TrainerOptions options;
    options.with_config(config).with_progress([](const lepton::EpochRecord& r) {
      if (r.epoch % 10 == 0) {
        std::cerr << "member " << r.member + 1 << "/" << r.members << " epoch " << r.epoch << " val "
                  << r.validation_metric << "\n";
      }
    });
    lepton::ModelArtifact artifact;
    artifact.task = requirements.task;
    artifact.preprocessor = preprocessor;
    artifact.target = target;
    artifact.configuration = config.to_json();

    // 5. Pick the decision threshold on rows that the scoring model never trained on: out-of-fold
    //    predictions with cross-fitting, the validation split without.
    if (cross_fit) {
      const lepton::CrossFitResult fitted =
          lepton::fit_cross_fitted(options, with_derived(learning), config.cross_fit_folds);
      artifact.network = lepton::fold_derived(fitted.network, config.derived_features);

      std::vector<double> out_of_fold(learning_rows.size());
      for (std::size_t member = 0; member < fitted.members.size(); ++member) {
        lepton::ModelArtifact single = artifact;
        single.network = lepton::fold_derived(fitted.members[member].network, config.derived_features);
        const lepton::Predictions all = lepton::Predictor(single).predict(learning.features);
        for (std::size_t row = 0; row < learning_rows.size(); ++row) {
          if (fitted.fold_of_row[row] == member) out_of_fold[row] = all.probability[row];
        }
      }
      artifact.threshold = lepton::choose_threshold(learning.labels, out_of_fold, config.objective);
    } else {
      const lepton::TrainingData train = make_data(split.train);
      const lepton::TrainingData validation = make_data(split.validation);
      const lepton::Mlp trained = lepton::Trainer(options).fit(with_derived(train), with_derived(validation)).network;
      artifact.network = lepton::fold_derived(trained, config.derived_features);
      const lepton::Predictions on_validation = lepton::Predictor(artifact).predict(validation.features);
      artifact.threshold = lepton::choose_threshold(validation.labels, on_validation.probability, config.objective);
    }

    // 6. Evaluate on the held-out test rows, then export one file that the runtime alone can load.
    const lepton::Predictor predictor(artifact);
    const lepton::Evaluation evaluation = lepton::evaluate(predictor.predict(test.features), test.labels);
    artifact.metrics = {{"test", evaluation.to_json()}};
    lepton::save_artifact(artifact, argv[3]);

    std::cout << "test F1 " << evaluation.binary.f1 << ", ROC-AUC " << evaluation.binary.roc_auc << ", threshold "
              << artifact.threshold << "\nwrote " << argv[3] << "\n";
    return 0;
  } catch (const lepton::Error& error) {
    std::cerr << "error: " << error.what() << "\n";
    return 1;
  }
}
