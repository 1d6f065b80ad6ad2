// Requirements, configurator, trainer and pipeline.
#include <fmt/format.h>

#include "bindings.hpp"
#include "lepton/configurator.hpp"
#include "lepton/crypto.hpp"
#include "lepton/derived.hpp"
#include "lepton/distributed.hpp"
#include "lepton/ensemble.hpp"
#include "lepton/error.hpp"
#include "lepton/pipeline.hpp"
#include "lepton/requirements.hpp"
#include "lepton/trainer.hpp"
#include "runtime/json_syntax.hpp"

namespace lepton::python {
namespace {

/// TrainerOptions::row_order backed by a Python callable(epoch, rows) that returns the epoch's row order. It
/// takes the GIL for the call; a Python exception in it propagates out of fit().
struct RowOrderCallback {
  PyCallable callable;

  std::vector<std::int64_t> operator()(std::size_t epoch, std::size_t rows) const {
    py::gil_scoped_acquire gil;
    const py::object order = callable.function()(epoch, rows);
    return to_int64_vector(order, "row_order(epoch, rows) result");
  }
};

std::function<std::vector<std::int64_t>(std::size_t, std::size_t)> to_row_order(const py::object& function) {
  if (function.is_none()) return {};
  if (!PyCallable_Check(function.ptr())) {
    throw py::type_error(fmt::format("row_order: expected a callable (epoch: int, rows: int) -> sequence of int, "
                                     "got {}",
                                     py::str(py::type::of(function).attr("__name__")).cast<std::string>()));
  }
  return RowOrderCallback{PyCallable(function)};
}

py::object from_row_order(const std::function<std::vector<std::int64_t>(std::size_t, std::size_t)>& order) {
  if (!order) return py::none();
  if (const auto* python = order.target<RowOrderCallback>()) return python->callable.function();
  return py::cpp_function(order);
}

/// Copies `values`, any 1-D real sequence, into float32. The TypeError names `argument`.
std::vector<float> to_float_vector(const py::object& values, const std::string& argument) {
  const auto array = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(values);
  if (!array || array.ndim() != 1) {
    throw py::type_error(fmt::format("{}: expected a 1-D sequence of numbers (float32), got {}", argument,
                                     py::str(py::type::of(values).attr("__name__")).cast<std::string>()));
  }
  return std::vector<float>(array.data(), array.data() + array.size());
}

void register_requirements(py::module_& m) {
  py::enum_<Interpretability> interpretability(m, "Interpretability", "Required level of explainability.");
  interpretability.value("None_", Interpretability::None)
      .value("Attribution", Interpretability::Attribution)
      .value("Transparent", Interpretability::Transparent);
  use_lepton_names(interpretability);

  py::enum_<PiiHandling> pii_handling(m, "PiiHandling",
                                      "Treatment of columns with personal data before anything else reads them.");
  pii_handling.value("Drop", PiiHandling::Drop, "Removed from the table.")
      .value("Hash", PiiHandling::Hash, "Each value replaced by its keyed BLAKE2b hash; equal values stay equal.");
  use_lepton_names(pii_handling);

  py::class_<PrivacyBudget>(m, "PrivacyBudget", "Differential-privacy budget for DP-SGD training.")
      .def(py::init([](double epsilon, double delta, double max_grad_norm) {
             return PrivacyBudget{epsilon, delta, max_grad_norm};
           }),
           py::arg("epsilon"), py::arg("delta") = 1e-5, py::arg("max_grad_norm") = 1.0)
      .def_readwrite("epsilon", &PrivacyBudget::epsilon,
                     "Privacy loss bound epsilon of (epsilon, delta)-differential privacy.")
      .def_readwrite("delta", &PrivacyBudget::delta,
                     "Failure probability delta of (epsilon, delta)-differential privacy (default 1e-5).")
      .def_readwrite("max_grad_norm", &PrivacyBudget::max_grad_norm, "Per-sample clipping norm C.");

  py::class_<Constraints>(m, "Constraints", "Limits the model must respect; None is unconstrained.")
      .def(py::init<>())
      .def_readwrite("max_latency_us", &Constraints::max_latency_us, "Per-row inference latency, microseconds.")
      .def_readwrite("max_model_bytes", &Constraints::max_model_bytes, "Size of the weights, bytes.")
      .def_readwrite("min_metric", &Constraints::min_metric, "Floor (or ceiling) on the test objective.")
      .def_readwrite("interpretability", &Constraints::interpretability,
                     "Required level of explainability (default Interpretability.Attribution).")
      .def_readwrite("privacy", &Constraints::privacy, "Differential-privacy budget; None trains without DP-SGD.")
      .def_readwrite("max_training_seconds", &Constraints::max_training_seconds,
                     "Training time limit, seconds; None is unlimited.")
      .def_readwrite("quantization_tolerance", &Constraints::quantization_tolerance,
                     "Largest objective drop accepted from int8 export.");

  py::class_<Requirements>(m, "Requirements",
                           "A parsed and validated requirements document. Build one with parse_requirements(dict) "
                           "or load_requirements(path).")
      .def_property_readonly_static(
          "SCHEMA_VERSION", [](py::object) { return Requirements::kSchemaVersion; }, "Document format version.")
      .def_readwrite("version", &Requirements::version,
                     "Requirements document format version (default SCHEMA_VERSION).")
      .def_readwrite("name", &Requirements::name, "Name of the model.")
      .def_readwrite("task", &Requirements::task, "Learning task (default Task.BinaryClassification).")
      .def_readwrite("target", &Requirements::target, "Target column name.")
      .def_readwrite("features", &Requirements::features, "Empty: inferred from the data.")
      .def_readwrite("exclude", &Requirements::exclude, "Columns never used as features.")
      .def_readwrite("pii", &Requirements::pii,
                     "Columns with personal data; their raw values never reach the model, report, logs or errors.")
      .def_readwrite("pii_handling", &Requirements::pii_handling, "PiiHandling.Drop (default) or PiiHandling.Hash.")
      .def_readwrite("search_derived_features", &Requirements::search_derived_features,
                     "True (\"derived_features\": \"auto\", the default): screen differences of numeric "
                     "features as extra inputs. False: \"off\".")
      .def_readwrite("derive_products", &Requirements::derive_products,
                     "True (\"derived_features\": \"products\"): screen products too.")
      .def_readwrite("objective", &Requirements::objective, "Objective metric (default Metric.F1).")
      .def_readwrite("constraints", &Requirements::constraints, "Limits the model must respect.")
      .def_readwrite("split", &Requirements::split, "Train, validation and test fractions.")
      .def_readwrite("seed", &Requirements::seed, "Random seed of the run (default 42).")
      .def(
          "to_json", [](const Requirements& self) { return from_json(self.to_json()); },
          "Return the canonical document (every field, defaults resolved) as a dict.");

  m.def(
      "parse_requirements",
      [](const py::object& document, const std::string& source) {
        if (py::isinstance<py::str>(document)) {
          const std::string text = document.cast<std::string>();
          nlohmann::json parsed;
          try {
            parsed = nlohmann::json::parse(text);
          } catch (const nlohmann::json::parse_error& error) {
            throw lepton::detail::json_syntax_error(error, text, source, "fix the JSON syntax there, or pass a dict");
          }
          return parse_requirements(parsed, source);
        }
        return parse_requirements(to_json(document, "document"), source);
      },
      py::arg("document"), py::arg("source") = "<memory>",
      "Validate and parse a requirements document given as a dict (or JSON text). Raises ValidationError that "
      "lists every problem with its JSON path, value and fix.");
  m.def("load_requirements", &load_requirements, py::arg("path"),
        "Read and parse a requirements JSON file. Raises FileNotFound, ParseError (file:line:column) or "
        "ValidationError.");
  m.def(
      "requirements_json_schema", []() { return from_json(requirements_json_schema()); },
      "Return the JSON Schema (draft 2020-12) of requirements documents as a dict.");
}

void register_configurator(py::module_& m) {
  py::class_<Reason>(m, "Reason", "Reason for one setting's value, and what drove it.")
      .def_readonly("text", &Reason::text,
                    "One sentence, e.g. 'Minority class is 3.4 %, so positives are weighted 5.2x'.")
      .def_readonly("driven_by", &Reason::driven_by,
                    "'requirements.constraints...', 'data.class_balance', 'default', ...")
      .def("__repr__", [](const Reason& r) { return fmt::format("Reason('{}', driven_by='{}')", r.text, r.driven_by); });

  py::enum_<DerivedKind>(m, "DerivedKind", "The operation that combines a derived input's two features.")
      .value("Difference", DerivedKind::Difference, "left - right, in raw units")
      .value("Product", DerivedKind::Product, "left * right, in raw units");

  py::class_<DerivedInput>(m, "DerivedInput",
                           "A derived input: the difference or product of two numeric features, standardized.")
      .def_readonly("kind", &DerivedInput::kind, "DerivedKind: difference or product.")
      .def_readonly("left", &DerivedInput::left, "First raw column.")
      .def_readonly("right", &DerivedInput::right, "Second raw column.")
      .def_readonly("left_input", &DerivedInput::left_input,
                    "Encoded column read for the left feature: its standardized column.")
      .def_readonly("right_input", &DerivedInput::right_input, "Encoded column read for the right feature.")
      .def_readonly("left_coefficient", &DerivedInput::left_coefficient, "Weight of the left encoded column.")
      .def_readonly("right_coefficient", &DerivedInput::right_coefficient, "Weight of the right encoded column.")
      .def_readonly("left_shift", &DerivedInput::left_shift, "Added to the left term: the feature's mean for a product.")
      .def_readonly("right_shift", &DerivedInput::right_shift, "Added to the right term: the feature's mean for a product.")
      .def_readonly("step", &DerivedInput::step,
                    "Threshold of a step input (1 above it, 0 elsewhere, in raw units), or None.")
      .def_readonly("mean", &DerivedInput::mean, "Mean of the raw difference or product over the learning rows.")
      .def_readonly("scale", &DerivedInput::scale, "Its standard deviation (1 if constant).")
      .def_readonly("loss_reduction", &DerivedInput::loss_reduction,
                    "Fraction of the screen's log-loss that its splits removed.")
      .def_property_readonly("name", &DerivedInput::name,
                             "'left - right' or 'left * right', with ' > threshold' for a step.")
      .def("__repr__", [](const DerivedInput& d) { return fmt::format("DerivedInput('{}')", d.name()); });

  py::class_<DerivedSearchResult>(m, "DerivedSearchResult",
                                  "Result of the derived-input screen: the kept inputs and the candidates' scores.")
      .def_readonly("kept", &DerivedSearchResult::kept, "Kept inputs, best first.")
      .def_readonly("base_loss", &DerivedSearchResult::base_loss,
                    "Cross-validated log-loss per row of the additive starting model.")
      .def_readonly("final_loss", &DerivedSearchResult::final_loss,
                    "base_loss less what the kept inputs' splits removed.")
      .def_readonly("candidates", &DerivedSearchResult::candidates, "Differences and products screened.")
      .def_readonly("screened_rows", &DerivedSearchResult::screened_rows,
                    "Rows the screen was fitted on (a stratified sample above max_rows).")
      .def_readonly("first_step", &DerivedSearchResult::first_step,
                    "(name, loss reduction) of every candidate's best split in the first round, best first.")
      .def_readonly("best_rejected", &DerivedSearchResult::best_rejected,
                    "The best candidate that was not kept ('' if every one was kept).")
      .def_readonly("best_rejected_reduction", &DerivedSearchResult::best_rejected_reduction,
                    "Its loss reduction.");

  m.def(
      "screen_derived_inputs",
      [](const Preprocessor& preprocessor, const py::object& encoded, const py::object& labels, std::uint64_t seed,
         bool products, double min_loss_reduction, double min_split_reduction, std::size_t max_features,
         std::size_t max_rows, bool steps) {
        const Matrix features = to_matrix(encoded, "encoded", preprocessor.encoded_width());
        const std::vector<std::int64_t> label_ids = to_int64_vector(labels, "labels");
        const DerivedSearchOptions options = DerivedSearchOptions()
                                                 .with_seed(seed)
                                                 .with_products(products)
                                                 .with_min_loss_reduction(min_loss_reduction)
                                                 .with_min_split_reduction(min_split_reduction)
                                                 .with_max_features(max_features)
                                                 .with_max_rows(max_rows)
                                                 .with_steps(steps);
        py::gil_scoped_release release;
        return screen_derived_inputs(preprocessor, features, label_ids, options);
      },
      py::arg("preprocessor"), py::arg("encoded"), py::arg("labels"), py::kw_only(), py::arg("seed") = 0,
      py::arg("products") = false, py::arg("min_loss_reduction") = DerivedSearchOptions().min_loss_reduction,
      py::arg("min_split_reduction") = DerivedSearchOptions().min_split_reduction, py::arg("max_features") = 3,
      py::arg("max_rows") = 20000, py::arg("steps") = true,
      "Screen the difference of every pair of numeric features on encoded rows with 0/1 labels, and keep those "
      "that cut a cross-validated additive model's log-loss by at least min_loss_reduction. With products=True, "
      "screen products too, with boosted splits, and keep those whose splits remove at least "
      "min_split_reduction of the log-loss, each with a step input at its best split unless steps=False. Kept "
      "inputs are bound to the preprocessor's columns.");
  m.def(
      "bind_derived",
      [](std::vector<DerivedInput> derived, const Preprocessor& preprocessor, const py::object& encoded) {
        const Matrix features = to_matrix(encoded, "encoded", preprocessor.encoded_width());
        bind_derived(derived, preprocessor, features);
        return derived;
      },
      py::arg("derived"), py::arg("preprocessor"), py::arg("encoded"),
      "Return the derived inputs bound to the preprocessor's encoded columns, standardized over the encoded "
      "learning rows.");

  m.def(
      "append_derived",
      [](const py::object& encoded, const std::vector<DerivedInput>& derived) {
        Matrix features = to_matrix(encoded, "encoded");
        return to_array(append_derived(features, derived));
      },
      py::arg("encoded"), py::arg("derived"),
      "Return the training columns: the encoded rows, then one standardized column per derived input, in order.");
  m.def("fold_derived", &fold_derived, py::arg("network"), py::arg("derived"),
        "Move the derived inputs of a network trained on append_derived() columns into the network: differences "
        "into its first layer, products into Mlp.products. The result takes the encoded columns alone and "
        "computes the same function.");

  py::class_<ModelConfig>(m, "ModelConfig", "A resolved, trainable configuration with a reason for every field.")
      .def(py::init<>())
      .def_readwrite("task", &ModelConfig::task, "Learning task.")
      .def_readwrite("features", &ModelConfig::features, "FeatureSpec per input column.")
      .def_readwrite("hidden_units", &ModelConfig::hidden_units,
                     "Units per hidden layer, input side first (default [128, 64]).")
      .def_readwrite("activation", &ModelConfig::activation,
                     "Activation of the hidden layers (default Activation.Relu).")
      .def_readwrite("dropout", &ModelConfig::dropout, "Dropout probability (default 0.0).")
      .def_readwrite("weight_decay", &ModelConfig::weight_decay, "AdamW weight decay (default 1e-4).")
      .def_readwrite("optimizer", &ModelConfig::optimizer, "Optimizer name (default 'adamw').")
      .def_readwrite("learning_rate", &ModelConfig::learning_rate, "Learning rate of the optimizer (default 1e-3).")
      .def_readwrite("lr_schedule", &ModelConfig::lr_schedule, "'constant', 'cosine' or 'plateau'.")
      .def_readwrite("warmup_epochs", &ModelConfig::warmup_epochs, "Epochs of learning-rate warm-up (default 0).")
      .def_readwrite("batch_size", &ModelConfig::batch_size, "Rows per batch (default 32).")
      .def_readwrite("max_epochs", &ModelConfig::max_epochs, "Maximum number of epochs (default 100).")
      .def_readwrite("patience", &ModelConfig::patience, "Epochs without validation improvement before stopping.")
      .def_readwrite("positive_class_weight", &ModelConfig::positive_class_weight,
                     "Binary: weight of positive rows in the loss.")
      .def_readwrite("class_weights", &ModelConfig::class_weights, "Multiclass: weight per class id.")
      .def_readwrite("threshold_strategy", &ModelConfig::threshold_strategy,
                     "'optimize_objective_on_validation' (default) or 'fixed_0.5'.")
      .def_readwrite("quantize", &ModelConfig::quantize, "Export an int8 model as well.")
      .def_readwrite("cross_fit_folds", &ModelConfig::cross_fit_folds,
                     "K > 1: train K cross-fitted members on the training and validation rows and merge them; "
                     "1: one model early-stopped on the validation split.")
      .def_readwrite("derived_search", &ModelConfig::derived_search,
                     "Screen differences of numeric features before training.")
      .def_readwrite("derived_products", &ModelConfig::derived_products,
                     "With derived_search: screen products too, with boosted splits.")
      .def_readwrite("derived_features", &ModelConfig::derived_features,
                     "DerivedInput list that the screen kept (filled in by run_pipeline).")
      .def_readwrite("objective", &ModelConfig::objective,
                     "Objective metric on the validation split (default Metric.F1).")
      .def_readwrite("seed", &ModelConfig::seed, "Random seed of training (default 42).")
      .def_readwrite("privacy", &ModelConfig::privacy, "PrivacyBudget for DP-SGD; None trains without it.")
      .def_readwrite("noise_multiplier", &ModelConfig::noise_multiplier,
                     "DP-SGD noise standard deviation in units of privacy.max_grad_norm; 0 with a budget lets the "
                     "trainer solve it.")
      .def_readwrite("reasons", &ModelConfig::reasons, "Reason per field name.")
      .def(
          "to_json", [](const ModelConfig& self) { return from_json(self.to_json()); },
          "Return the configuration as a dict (the content of config.json).")
      .def_static(
          "from_json",
          [](const py::object& value, const std::string& json_path) {
            return ModelConfig::from_json(to_json(value, "value"), json_path);
          },
          py::arg("value"), py::arg("json_path") = "$", "Parse; raises ParseError naming the JSON path.");

  m.def(
      "select_features",
      [](const Requirements& requirements, const DataProfile& profile) {
        std::vector<std::string> reasons;
        std::vector<FeatureSpec> features = select_features(requirements, profile, &reasons);
        return py::make_tuple(features, reasons);
      },
      py::arg("requirements"), py::arg("profile"),
      "Return (features, reasons): the columns that become features, and one line per dropped column.");
  m.def("configure", &configure, py::arg("requirements"), py::arg("profile"),
        "Choose a configuration for the requirements and data. Raises ConstraintError naming every constraint "
        "that no configuration can meet.");
}

void register_epoch_types(py::module_& m) {
  py::class_<EpochRecord>(m, "EpochRecord", "One finished epoch, as passed to the progress callback.")
      .def_readonly("epoch", &EpochRecord::epoch, "1-based.")
      .def_readonly("max_epochs", &EpochRecord::max_epochs, "Maximum number of epochs of the run.")
      .def_readonly("train_loss", &EpochRecord::train_loss, "Training loss of the epoch.")
      .def_readonly("validation_loss", &EpochRecord::validation_loss, "Loss on the validation split.")
      .def_readonly("validation_metric", &EpochRecord::validation_metric, "The objective on the validation split.")
      .def_readonly("learning_rate", &EpochRecord::learning_rate, "Learning rate of the epoch.")
      .def_readonly("elapsed_seconds", &EpochRecord::elapsed_seconds, "Training time so far, seconds.")
      .def_readonly("eta_seconds", &EpochRecord::eta_seconds, "Estimate at the mean epoch time.")
      .def_readonly("improved", &EpochRecord::improved, "True when this epoch improved the validation objective.")
      .def_readonly("member", &EpochRecord::member, "Cross-fitted training: the member (0-based) being trained.")
      .def_readonly("members", &EpochRecord::members, "Cross-fitted training: the number of members; 1 otherwise.")
      .def("__repr__", [](const EpochRecord& r) {
        return fmt::format("EpochRecord(epoch={}/{}, train_loss={:.4f}, validation_loss={:.4f}, "
                           "validation_metric={:.4f}, improved={})",
                           r.epoch, r.max_epochs, r.train_loss, r.validation_loss, r.validation_metric,
                           r.improved ? "True" : "False");
      });

  py::class_<StopToken>(m, "StopToken",
                        "A flag that stops training cleanly after the current batch. Set it from another thread or "
                        "from a progress callback; Ctrl-C stops training without one.")
      .def(py::init<>())
      .def(
          "request_stop", [](StopToken& token) { token.requested.store(true); }, "Ask the running job to stop.")
      .def_property_readonly(
          "requested", [](const StopToken& token) { return token.requested.load(); }, "True once stop was requested.")
      .def(
          "reset", [](StopToken& token) { token.requested.store(false); }, "Clear the flag for the next job.");
}

void register_trainer(py::module_& m) {
  py::class_<TrainingData>(m, "TrainingData", "Encoded features and encoded target, as the trainer consumes them.")
      .def(py::init([](const py::object& features, const py::object& labels, const py::object& values) {
             TrainingData data;
             data.features = to_matrix(features, "features");
             if (!labels.is_none()) data.labels = to_int64_vector(labels, "labels");
             if (!values.is_none()) data.values = to_double_vector(values, "values");
             return data;
           }),
           py::arg("features"), py::arg("labels") = py::none(), py::arg("values") = py::none(),
           "features: float32/float64 array [rows, inputs] (copied once into float32). labels: class ids "
           "(classification). values: standardized targets (regression).")
      .def_property_readonly(
          "features",
          [](py::object self) {
            const auto& data = self.cast<const TrainingData&>();
            return view_array(data.features.data,
                              {static_cast<py::ssize_t>(data.features.rows), static_cast<py::ssize_t>(data.features.cols)},
                              self);
          },
          "Read-only float32 array [rows, inputs].")
      .def_property_readonly(
          "labels",
          [](py::object self) {
            const auto& data = self.cast<const TrainingData&>();
            return view_array(data.labels, {static_cast<py::ssize_t>(data.labels.size())}, self);
          },
          "Read-only int64 array of class ids.")
      .def_property_readonly(
          "values",
          [](py::object self) {
            const auto& data = self.cast<const TrainingData&>();
            return view_array(data.values, {static_cast<py::ssize_t>(data.values.size())}, self);
          },
          "Read-only float64 array of standardized regression targets.");

  py::class_<TrainerOptions>(m, "TrainerOptions",
                             "Options of the Trainer. The with_* methods set a field and return the same object.")
      .def(py::init([](const std::optional<ModelConfig>& config, const py::object& on_epoch,
                       const std::string& checkpoint_path, bool resume, double max_seconds, int threads,
                       std::optional<EncryptionKey> checkpoint_key, std::optional<std::uint64_t> insecure_privacy_seed,
                       const py::object& row_order, const py::object& initial_parameters, double proximal_mu,
                       bool restore_best) {
             TrainerOptions options;
             if (config) options.config = *config;
             options.on_epoch = to_epoch_callback(on_epoch);
             options.checkpoint_path = checkpoint_path;
             options.resume = resume;
             options.max_seconds = max_seconds;
             options.threads = threads;
             options.checkpoint_key = std::move(checkpoint_key);
             options.insecure_privacy_seed = insecure_privacy_seed;
             options.row_order = to_row_order(row_order);
             if (!initial_parameters.is_none()) {
               options.initial_parameters = to_float_vector(initial_parameters, "initial_parameters");
             }
             options.proximal_mu = proximal_mu;
             options.restore_best = restore_best;
             return options;
           }),
           py::arg("config") = py::none(), py::arg("on_epoch") = py::none(), py::arg("checkpoint_path") = "",
           py::arg("resume") = false, py::arg("max_seconds") = 0.0, py::arg("threads") = 1,
           py::arg("checkpoint_key") = py::none(), py::arg("insecure_privacy_seed") = py::none(),
           py::arg("row_order") = py::none(), py::arg("initial_parameters") = py::none(),
           py::arg("proximal_mu") = 0.0, py::arg("restore_best") = true,
           "gradient_hook is C++-only: it hands a raw float pointer to the callee on every step, and data-parallel "
           "training (fit_data_parallel) installs the one it needs.")
      .def_readwrite("config", &TrainerOptions::config, "Configuration to train.")
      .def_property(
          "on_epoch", [](const TrainerOptions& self) { return from_epoch_callback(self.on_epoch); },
          [](TrainerOptions& self, const py::object& f) { self.on_epoch = to_epoch_callback(f); },
          "Callable(EpochRecord) called after each epoch on the training thread, with the GIL; None for none. "
          "An exception in it stops training and is raised by fit().")
      .def_readwrite("checkpoint_path", &TrainerOptions::checkpoint_path,
                     "Empty: no checkpoints. Written atomically after each epoch.")
      .def_readwrite("resume", &TrainerOptions::resume, "Continue from checkpoint_path when it matches the config.")
      .def_readwrite("max_seconds", &TrainerOptions::max_seconds, "0: no time budget.")
      .def_readwrite("threads", &TrainerOptions::threads, "Intra-op threads for LibTorch.")
      .def_readwrite("checkpoint_key", &TrainerOptions::checkpoint_key,
                     "EncryptionKey: checkpoints are encrypted with it, and resuming needs the same key. None: plain.")
      .def_readwrite("insecure_privacy_seed", &TrainerOptions::insecure_privacy_seed,
                     "DP-SGD tests only: seed the noise and sampling so that a run repeats. A seeded run has no "
                     "privacy guarantee. None: the operating system's CSPRNG.")
      .def_property(
          "row_order", [](const TrainerOptions& self) { return from_row_order(self.row_order); },
          [](TrainerOptions& self, const py::object& f) { self.row_order = to_row_order(f); },
          "Callable(epoch: int counted from 0, rows: int) returning a permutation of range(rows): the order in "
          "which an epoch visits the training rows. Called on the training thread with the GIL. None: a "
          "permutation drawn from config.seed.")
      .def_property(
          "initial_parameters",
          [](const TrainerOptions& self) {
            return to_array(std::vector<float>(self.initial_parameters));
          },
          [](TrainerOptions& self, const py::object& values) {
            self.initial_parameters = to_float_vector(values, "initial_parameters");
          },
          "Starting weights as one flat float32 array W1, b1, W2, b2, ... (each W [out, in], row-major), as "
          "initial_parameters() returns. Empty: PyTorch's initialization from config.seed. The getter returns "
          "a copy.")
      .def_readwrite("proximal_mu", &TrainerOptions::proximal_mu,
                     "FedProx: adds mu / 2 * ||w - initial_parameters||^2 to the loss; needs initial_parameters "
                     "when > 0.")
      .def_readwrite("restore_best", &TrainerOptions::restore_best,
                     "True: return the best validation epoch's weights. False: the last epoch's.")
      .def(
          "with_config",
          [](py::object self, const ModelConfig& config) {
            self.cast<TrainerOptions&>().with_config(config);
            return self;
          },
          py::arg("config"), "Set config; return this object.")
      .def(
          "with_progress",
          [](py::object self, const py::object& f) {
            self.cast<TrainerOptions&>().with_progress(to_epoch_callback(f));
            return self;
          },
          py::arg("on_epoch"), "Set the progress callable (or None); return this object.")
      .def(
          "with_checkpoint",
          [](py::object self, const std::string& path, bool resume) {
            self.cast<TrainerOptions&>().with_checkpoint(path, resume);
            return self;
          },
          py::arg("path"), py::arg("resume"), "Set checkpoint_path and resume; return this object.")
      .def(
          "with_time_budget",
          [](py::object self, double seconds) {
            self.cast<TrainerOptions&>().with_time_budget(seconds);
            return self;
          },
          py::arg("seconds"), "Set max_seconds; return this object.")
      .def(
          "with_threads",
          [](py::object self, int threads) {
            self.cast<TrainerOptions&>().with_threads(threads);
            return self;
          },
          py::arg("threads"), "Set threads; return this object.");

  py::class_<TrainingResult>(m, "TrainingResult", "The best weights (by the validation objective) and the history.")
      .def_readonly("network", &TrainingResult::network, "Network with the best weights by the validation objective.")
      .def_readonly("history", &TrainingResult::history, "EpochRecord per finished epoch.")
      .def_readonly("best_epoch", &TrainingResult::best_epoch, "Epoch whose weights network holds.")
      .def_readonly("stop_reason", &TrainingResult::stop_reason,
                    "'early_stopping', 'max_epochs', 'time_budget', 'stop_requested' or 'privacy_budget'.")
      .def_readonly("seconds", &TrainingResult::seconds,
                    "Training time, seconds, including the time recorded in the checkpoint when resumed.")
      .def_readonly("resumed", &TrainingResult::resumed, "True when training continued from the checkpoint.")
      .def_readonly("privacy", &TrainingResult::privacy, "PrivacySpent of a DP-SGD run; None otherwise.")
      .def(
          "to_json", [](const TrainingResult& self) { return from_json(self.to_json()); }, "Return as a dict.");

  py::class_<Trainer>(m, "Trainer", "Trains the configured MLP with LibTorch (AdamW, class weights, early stopping).")
      .def(py::init<TrainerOptions>(), py::arg("options"))
      .def_property_readonly("options", &Trainer::options, "Options the trainer was built with.")
      .def(
          "fit",
          [](const Trainer& self, const TrainingData& train, const TrainingData& validation, StopToken* token) {
            std::atomic<bool> stop{false};
            CallbackGuard guard;
            guard.stop = &stop;
            TrainerOptions options = self.options();
            options.on_epoch = guard.wrap(options.on_epoch);
            options.stop_requested = &stop;
            const Trainer trainer(options);

            TrainingResult result;
            run_interruptible([&] { result = trainer.fit(train, validation); }, stop, token, guard);
            return result;
          },
          py::arg("train"), py::arg("validation"), py::arg("stop") = nullptr,
          "Train on train and keep the best epoch on validation, with the GIL released. Ctrl-C (KeyboardInterrupt) "
          "or stop.request_stop() stops after the current batch: Ctrl-C and an exception in on_epoch are raised "
          "here, while a StopToken returns the result so far with stop_reason 'stop_requested'. The checkpoint "
          "file, when set, always holds the last finished epoch.");
}

void register_cross_fit(py::module_& m) {
  py::class_<CrossFitResult>(m, "CrossFitResult", "Result of fit_cross_fitted.")
      .def_readonly("network", &CrossFitResult::network, "The merged members: its output is their mean output.")
      .def_readonly("members", &CrossFitResult::members, "TrainingResult of each member; member k early-stopped on fold k.")
      .def_property_readonly(
          "fold_of_row",
          [](const CrossFitResult& self) {
            return to_array(std::vector<std::int64_t>(self.fold_of_row.begin(), self.fold_of_row.end()));
          },
          "Fold id of each training row (int64 array).")
      .def_readonly("stop_reason", &CrossFitResult::stop_reason,
                    "'completed', or 'stop_requested' or 'time_budget' when the run ended early.")
      .def_readonly("seconds", &CrossFitResult::seconds, "Wall-clock training time of all members, seconds.");

  m.def(
      "fit_cross_fitted",
      [](const TrainerOptions& options, const TrainingData& data, std::size_t folds, StopToken* token) {
        std::atomic<bool> stop{false};
        CallbackGuard guard;
        guard.stop = &stop;
        TrainerOptions guarded = options;
        guarded.on_epoch = guard.wrap(options.on_epoch);
        guarded.stop_requested = &stop;

        CrossFitResult result;
        run_interruptible([&] { result = fit_cross_fitted(guarded, data, folds); }, stop, token, guard);
        return result;
      },
      py::arg("options"), py::arg("data"), py::arg("folds"), py::arg("stop") = nullptr,
      "Train one member per fold, each early-stopped on its fold, and merge them, with the GIL released. Ctrl-C "
      "and stop behave as in Trainer.fit. Raises InvalidArgument for folds < 2, a class with fewer rows than "
      "folds, or options with initial_parameters or a privacy budget.");
  m.def("merge_mean_output", &merge_mean_output, py::arg("members"),
        "Return one Mlp whose output is the mean of the members' outputs (logits). Raises InvalidArgument when "
        "the members differ in shape or activations.");
  m.def("member_seed", &member_seed, py::arg("seed"), py::arg("member"),
        "Return the training seed of cross-fitted member `member` for the base seed.");
}

void register_pipeline(py::module_& m) {
  py::class_<PipelineOptions>(m, "PipelineOptions", "Options of run_pipeline.")
      .def(py::init([](const std::string& data_path, const std::string& output_dir, const py::object& on_epoch,
                       bool resume, int threads, std::optional<DistributedOptions> distributed,
                       std::optional<SaveOptions> protection, std::optional<EncryptionKey> pii_key) {
             PipelineOptions options;
             options.data_path = data_path;
             options.output_dir = output_dir;
             options.on_epoch = to_epoch_callback(on_epoch);
             options.resume = resume;
             options.threads = threads;
             options.distributed = std::move(distributed);
             options.protection = std::move(protection);
             options.pii_key = std::move(pii_key);
             return options;
           }),
           py::arg("data_path") = "", py::arg("output_dir") = "", py::arg("on_epoch") = py::none(),
           py::arg("resume") = false, py::arg("threads") = 1, py::arg("distributed") = py::none(),
           py::arg("protection") = py::none(), py::arg("pii_key") = py::none())
      .def_readwrite("data_path", &PipelineOptions::data_path, "Training data CSV file.")
      .def_readwrite("output_dir", &PipelineOptions::output_dir, "Folder for config, model, metrics and reports.")
      .def_property(
          "on_epoch", [](const PipelineOptions& self) { return from_epoch_callback(self.on_epoch); },
          [](PipelineOptions& self, const py::object& f) { self.on_epoch = to_epoch_callback(f); },
          "Callable(EpochRecord) for progress, or None.")
      .def_readwrite("resume", &PipelineOptions::resume, "Resume from output_dir's checkpoints (checkpoint.pt, or checkpoint.memberK.pt per "
                     "cross-fitted member counted from 1); models without one train from the first epoch, "
                     "with a warning.")
      .def_readwrite("threads", &PipelineOptions::threads, "Worker threads for training and explanations (default 1).")
      .def_readwrite("distributed", &PipelineOptions::distributed,
                     "DistributedOptions: this process is one rank of a data-parallel group and trains its shard. "
                     "Rank 0 evaluates and writes the outputs; other ranks return with only config, profile and "
                     "training set. None: one process.")
      .def_readwrite("protection", &PipelineOptions::protection,
                     "SaveOptions for the model files and checkpoints. None: the keys in LEPTON_MODEL_KEY, "
                     "LEPTON_MODEL_KEY_FILE and LEPTON_SIGNING_KEY_FILE; SaveOptions() for unprotected files.")
      .def_readwrite("pii_key", &PipelineOptions::pii_key,
                     "EncryptionKey for pii_handling 'hash'. None: LEPTON_PII_KEY or LEPTON_PII_KEY_FILE.");

  py::class_<PipelineResult>(m, "PipelineResult", "Files written and measurements taken by run_pipeline.")
      .def_readonly("config", &PipelineResult::config, "Resolved configuration.")
      .def_readonly("profile", &PipelineResult::profile, "Profile of the data file.")
      .def_readonly("training", &PipelineResult::training,
                    "Result of the training run; with cross-fitting the merged network and every member's epochs.")
      .def_readonly("members", &PipelineResult::members, "Cross-fitted members (TrainingResult list); else empty.")
      .def_readonly("validation", &PipelineResult::validation,
                    "Metrics on the validation split, or out-of-fold metrics with cross-fitting.")
      .def_readonly("test", &PipelineResult::test, "Metrics on the test split.")
      .def_readonly("model_path", &PipelineResult::model_path, "Path of the model, output_dir/model.lepton.")
      .def_readonly("int8_model_path", &PipelineResult::int8_model_path,
                    "output_dir/model_int8.lepton when the configuration quantizes, else empty.")
      .def_property_readonly(
          "quantization", [](const PipelineResult& self) { return from_json(self.quantization); },
          "The int8 accuracy gate's measurements as a dict, or None.")
      .def_readonly("report_json_path", &PipelineResult::report_json_path, "Path of the JSON report.")
      .def_readonly("report_md_path", &PipelineResult::report_md_path, "Path of the Markdown report.")
      .def_property_readonly(
          "explanations", [](const PipelineResult& self) { return from_json(self.explanations); },
          "SHAP section of the report as a dict: global importance over the test rows and the attributions of "
          "flagged test rows.")
      .def_readonly("seconds", &PipelineResult::seconds, "Wall-clock duration of the whole pipeline, seconds.");

  m.def(
      "run_pipeline",
      [](const Requirements& requirements, const PipelineOptions& given, StopToken* token) {
        std::atomic<bool> stop{false};
        CallbackGuard guard;
        guard.stop = &stop;
        PipelineOptions options = given;
        options.on_epoch = guard.wrap(options.on_epoch);
        options.stop_requested = &stop;

        PipelineResult result;
        run_interruptible([&] { result = run_pipeline(requirements, options); }, stop, token, guard);
        return result;
      },
      py::arg("requirements"), py::arg("options"), py::arg("stop") = nullptr,
      "Run the whole job (profile, configure, split, preprocess, train, evaluate, export) like `lepton run`, "
      "and write config.json, model.lepton, metrics.json, report.json and report.md into options.output_dir. "
      "The GIL is released. Ctrl-C raises KeyboardInterrupt; a StopToken raises OperationError; both keep the "
      "checkpoint, so options.resume = True continues.");
}

}  // namespace

void register_train(py::module_& m) {
  register_requirements(m);
  register_configurator(m);
  register_epoch_types(m);
  register_trainer(m);
  register_cross_fit(m);
  register_pipeline(m);
}

}  // namespace lepton::python
