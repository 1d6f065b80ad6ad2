// Model artifact, predictor and evaluator.
#include <fmt/format.h>

#include "bindings.hpp"
#include "lepton/evaluator.hpp"
#include "lepton/model.hpp"
#include "lepton/predictor.hpp"
#include "lepton/quantize.hpp"

namespace lepton::python {
namespace {

// Copies a 1-D or 2-D float array into a float vector of `expected` elements.
std::vector<float> to_float_buffer(const py::object& values, std::size_t expected, const std::string& argument) {
  const py::array array = py::array(py::module_::import("numpy").attr("asarray")(values, "float32"));
  if (static_cast<std::size_t>(array.size()) != expected) {
    throw py::value_error(fmt::format("{}: expected {} values, got {}", argument, expected, array.size()));
  }
  const auto contiguous = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(array);
  return std::vector<float>(contiguous.data(), contiguous.data() + expected);
}

void register_model(py::module_& m) {
  py::enum_<Activation> activation(m, "Activation", "Activation of a dense layer.");
  activation.value("Identity", Activation::Identity)
      .value("Relu", Activation::Relu)
      .value("Gelu", Activation::Gelu)
      .value("Tanh", Activation::Tanh);
  use_lepton_names(activation);

  py::enum_<LayerPrecision> precision(m, "LayerPrecision", "Numeric format in which the predictor runs a layer.");
  precision.value("F32", LayerPrecision::F32).value("Int8", LayerPrecision::Int8);
  use_lepton_names(precision);

  py::class_<QuantizedWeights>(m, "QuantizedWeights",
                               "Int8 form of a layer: W[o][k] ~ values[o * inputs + k] * scales[o].")
      .def_property_readonly(
          "values",
          [](py::object self) {
            const auto& q = self.cast<const QuantizedWeights&>();
            return view_array(q.values, {static_cast<py::ssize_t>(q.values.size())}, self);
          },
          "Read-only int8 array [outputs * inputs], each in [-127, 127].")
      .def_property_readonly(
          "scales",
          [](py::object self) {
            const auto& q = self.cast<const QuantizedWeights&>();
            return view_array(q.scales, {static_cast<py::ssize_t>(q.scales.size())}, self);
          },
          "Read-only float32 array [outputs] of per-channel scales.")
      .def_readonly("input_scale", &QuantizedWeights::input_scale,
                    "Static activation scale; 0 means one scale per row at run time (dynamic).");

  py::class_<DenseLayer>(m, "DenseLayer", "A fully connected layer y = act(W x + b), W row-major [outputs, inputs].")
      .def(py::init([](const py::object& weight, const py::object& bias, Activation activation) {
             const py::array weights = py::array(py::module_::import("numpy").attr("asarray")(weight));
             if (weights.ndim() != 2) {
               throw py::value_error(fmt::format("weight: expected a 2-D array [outputs, inputs], got {} dimensions",
                                                 weights.ndim()));
             }
             DenseLayer layer;
             layer.outputs = static_cast<std::size_t>(weights.shape(0));
             layer.inputs = static_cast<std::size_t>(weights.shape(1));
             layer.weight = to_float_buffer(weight, layer.outputs * layer.inputs, "weight");
             layer.bias = to_float_buffer(bias, layer.outputs, "bias");
             layer.activation = activation;
             return layer;
           }),
           py::arg("weight"), py::arg("bias"), py::arg("activation") = Activation::Relu,
           "Build a layer from weight [outputs, inputs] and bias [outputs] (copied to float32).")
      .def_readonly("inputs", &DenseLayer::inputs, "Input width of the layer.")
      .def_readonly("outputs", &DenseLayer::outputs, "Output width of the layer.")
      .def_property_readonly(
          "weight",
          [](py::object self) {
            const auto& layer = self.cast<const DenseLayer&>();
            return view_array(layer.weight,
                              {static_cast<py::ssize_t>(layer.outputs), static_cast<py::ssize_t>(layer.inputs)}, self);
          },
          "Read-only float32 array [outputs, inputs].")
      .def_property_readonly(
          "bias",
          [](py::object self) {
            const auto& layer = self.cast<const DenseLayer&>();
            return view_array(layer.bias, {static_cast<py::ssize_t>(layer.outputs)}, self);
          },
          "Read-only float32 array [outputs].")
      .def_readwrite("activation", &DenseLayer::activation, "Activation applied after W x + b.")
      .def_readwrite("precision", &DenseLayer::precision,
                     "Number format of the layer: LayerPrecision.F32 or LayerPrecision.Int8.")
      .def_readonly("quantized", &DenseLayer::quantized,
                    "Int8 weights when precision is Int8; weight then contains the dequantized values.");

  py::class_<InputProduct>(m, "InputProduct",
                           "A column that a network computes before its first layer from the factors L = "
                           "left_scale * x[left] + left_shift and R = right_scale * x[right] + right_shift: "
                           "(L * R - mean) / scale, with L - R when difference is set, and with the combination "
                           "replaced by 1 above step and 0 elsewhere when step is set.")
      .def(py::init<>())
      .def_readwrite("left", &InputProduct::left, "Input column of the left factor.")
      .def_readwrite("right", &InputProduct::right, "Input column of the right factor.")
      .def_readwrite("left_scale", &InputProduct::left_scale, "Scale of the left factor.")
      .def_readwrite("left_shift", &InputProduct::left_shift, "Shift of the left factor.")
      .def_readwrite("right_scale", &InputProduct::right_scale, "Scale of the right factor.")
      .def_readwrite("right_shift", &InputProduct::right_shift, "Shift of the right factor.")
      .def_readwrite("difference", &InputProduct::difference, "True for L - R instead of L * R.")
      .def_readwrite("step", &InputProduct::step, "Threshold of a step term, or None.")
      .def_readwrite("mean", &InputProduct::mean, "Mean subtracted from the product.")
      .def_readwrite("scale", &InputProduct::scale, "Standard deviation that divides it (> 0).");

  py::class_<Mlp>(m, "Mlp", "A multilayer perceptron; the last layer is Identity and emits logits or the value.")
      .def(py::init([](std::vector<DenseLayer> layers) { return Mlp{std::move(layers), {}}; }), py::arg("layers"))
      .def_readwrite("layers", &Mlp::layers, "DenseLayer per layer, input first.")
      .def_readwrite("products", &Mlp::products,
                     "InputProduct list: columns computed after the inputs, before the first layer.")
      .def_property_readonly("inputs", &Mlp::inputs,
                             "Columns a caller passes: the first layer's inputs less the products; 0 without layers.")
      .def_property_readonly("outputs", &Mlp::outputs, "Output width of the last layer; 0 without layers.")
      .def("parameter_count", &Mlp::parameter_count, "Return the number of weights and biases.")
      .def("validate", &Mlp::validate,
           "Raise InvalidArgument when shapes do not chain, a buffer has the wrong size, there are no layers, "
           "the last activation is not Identity, or a product reads a column outside the inputs.");

  py::class_<Provenance>(m, "Provenance", "Origin of a model: version, time, data file and seed.")
      .def(py::init<>())
      .def_readwrite("lepton_version", &Provenance::lepton_version, "Version of Lepton that wrote the model.")
      .def_readwrite("created_utc", &Provenance::created_utc, "ISO 8601, e.g. '2026-12-04T22:10:00Z'.")
      .def_readwrite("data_file", &Provenance::data_file, "Data file path as given by the caller.")
      .def_readwrite("data_sha256", &Provenance::data_sha256, "Hex SHA-256 of the data file's bytes.")
      .def_readwrite("requirements_sha256", &Provenance::requirements_sha256,
                     "Hex SHA-256 of the canonical requirements JSON.")
      .def_readwrite("seed", &Provenance::seed, "Random seed of the run.")
      .def(
          "to_json", [](const Provenance& self) { return from_json(self.to_json()); }, "Return as a dict.")
      .def_static(
          "from_json",
          [](const py::object& value, const std::string& json_path) {
            return Provenance::from_json(to_json(value, "value"), json_path);
          },
          py::arg("value"), py::arg("json_path") = "$", "Parse; raises ParseError naming the JSON path.");

  py::class_<ModelArtifact>(m, "ModelArtifact",
                            "Everything needed to run a trained model: preprocessing, network, threshold, metrics, "
                            "provenance.")
      .def(py::init<>())
      .def_property_readonly_static(
          "FORMAT_VERSION", [](py::object) { return ModelArtifact::kFormatVersion; }, "Model file format version.")
      .def_readwrite("task", &ModelArtifact::task, "Task the model was trained for.")
      .def_readwrite("preprocessor", &ModelArtifact::preprocessor, "Fitted encoding of the raw input columns.")
      .def_readwrite("target", &ModelArtifact::target, "Fitted encoding of the target column.")
      .def_readwrite("network", &ModelArtifact::network, "Trained network.")
      .def_readwrite("threshold", &ModelArtifact::threshold, "Binary decision threshold on P(positive).")
      .def_property(
          "configuration", [](const ModelArtifact& self) { return from_json(self.configuration); },
          [](ModelArtifact& self, const py::object& value) { self.configuration = to_json(value, "configuration"); },
          "Resolved model configuration with reasons (a dict copy; assign to change it).")
      .def_property(
          "metrics", [](const ModelArtifact& self) { return from_json(self.metrics); },
          [](ModelArtifact& self, const py::object& value) { self.metrics = to_json(value, "metrics"); },
          "Evaluation results (a dict copy; assign to change it).")
      .def_readwrite("provenance", &ModelArtifact::provenance, "Where the model came from.")
      .def_property(
          "extensions", [](const ModelArtifact& self) { return from_json(self.extensions); },
          [](ModelArtifact& self, const py::object& value) { self.extensions = to_json(value, "extensions"); },
          "Sections added by later components (a dict copy; assign to change it).");

  m.def(
      "save_artifact",
      [](const ModelArtifact& artifact, const std::string& path, const std::optional<SaveOptions>& options) {
        py::gil_scoped_release release;
        if (options) {
          save_artifact(artifact, path, *options);
        } else {
          save_artifact(artifact, path);
        }
      },
      py::arg("artifact"), py::arg("path"), py::arg("options") = py::none(),
      "Write the artifact atomically (temporary file, then rename). With options (SaveOptions), the file is "
      "encrypted and then signed as they ask. Raises IoError on failure.");
  m.def(
      "load_artifact",
      [](const std::string& path, const std::optional<LoadOptions>& options) {
        py::gil_scoped_release release;
        if (options) return load_artifact(path, *options);
        return load_artifact(path);
      },
      py::arg("path"), py::arg("options") = py::none(),
      "Load and validate an artifact (sizes, offsets, shapes and checksum). A plain, encrypted or signed file is "
      "opened with options (LoadOptions), or without them with LoadOptions.from_environment() "
      "(LEPTON_MODEL_KEY, LEPTON_MODEL_KEY_FILE, LEPTON_TRUSTED_KEY_FILE). Raises FileNotFound, IoError or "
      "ParseError; ParseError also for a missing, invalid or untrusted signature, a missing key or a failed "
      "decryption.");
  m.def(
      "parse_artifact",
      [](const py::bytes& data, const std::string& source) { return parse_artifact(std::string(data), source); },
      py::arg("data"), py::arg("source") = "<bytes>", "Same as load_artifact, for bytes already in memory.");
  m.def(
      "serialize_artifact", [](const ModelArtifact& artifact) { return py::bytes(serialize_artifact(artifact)); },
      py::arg("artifact"), "Return the bytes that save_artifact writes.");
}

void register_predictions(py::module_& m) {
  py::class_<Predictions>(m, "Predictions",
                          "Model outputs for a batch. Arrays are read-only views into this object (no copy).")
      .def_readonly("task", &Predictions::task, "Task of the model that made the predictions.")
      .def_readonly("rows", &Predictions::rows, "Number of predicted rows.")
      .def_readonly("classes", &Predictions::classes, "2 for binary, K for multiclass, 0 for regression.")
      .def_readonly("threshold", &Predictions::threshold, "Binary: the threshold that produced label_index.")
      .def_property_readonly(
          "probability",
          [](py::object self) {
            const auto& p = self.cast<const Predictions&>();
            const auto rows = static_cast<py::ssize_t>(p.rows);
            if (p.task == Task::MulticlassClassification) {
              return view_array(p.probability, {rows, static_cast<py::ssize_t>(p.classes)}, self);
            }
            return view_array(p.probability, {static_cast<py::ssize_t>(p.probability.size())}, self);
          },
          "float64: binary [rows] P(positive); multiclass [rows, classes]; regression empty.")
      .def_property_readonly(
          "label_index",
          [](py::object self) {
            const auto& p = self.cast<const Predictions&>();
            return view_array(p.label_index, {static_cast<py::ssize_t>(p.label_index.size())}, self);
          },
          "int64 [rows]: predicted class id (classification); empty for regression.")
      .def_property_readonly(
          "value",
          [](py::object self) {
            const auto& p = self.cast<const Predictions&>();
            return view_array(p.value, {static_cast<py::ssize_t>(p.value.size())}, self);
          },
          "float64 [rows]: regression prediction in target units; empty for classification.");
}

// Text values of a record, kept alive for the call because Value only views its characters.
struct RecordValues {
  std::vector<std::string> texts;
  std::vector<Value> values;
};

Value to_value(const py::handle item, std::vector<std::string>& texts, const std::string& argument) {
  if (item.is_none()) return Value::missing();
  if (py::isinstance<py::str>(item)) {
    texts.push_back(item.cast<std::string>());
    return Value(std::string_view(texts.back()));
  }
  if (py::isinstance<py::bool_>(item) || py::isinstance<py::int_>(item) || py::isinstance<py::float_>(item) ||
      py::hasattr(item, "__float__")) {
    const double number = PyFloat_AsDouble(item.ptr());
    if (PyErr_Occurred()) throw py::error_already_set();
    return Value(number);
  }
  throw py::type_error(fmt::format("{}: expected a number, a str or None, got {}", argument,
                                   py::type::of(item).attr("__name__").cast<std::string>()));
}

RecordValues to_record_values(const py::sequence& items, const std::string& argument) {
  RecordValues record;
  record.texts.reserve(py::len(items));  // no reallocation, so the views stay valid
  for (std::size_t i = 0; i < py::len(items); ++i) {
    record.values.push_back(to_value(items[i], record.texts, fmt::format("{}[{}]", argument, i)));
  }
  return record;
}

// A float32 C-contiguous array of the model's width is read in place; anything else is copied once.
Predictions predict_any(const Predictor& self, const py::object& x, Workspace* workspace) {
  if (py::isinstance<py::array>(x)) {
    using InPlace = py::array_t<float, py::array::c_style>;
    const std::size_t width = self.artifact().network.inputs();
    const auto array = py::reinterpret_borrow<py::array>(x);
    if (py::isinstance<InPlace>(x) && array.ndim() == 2 && static_cast<std::size_t>(array.shape(1)) == width) {
      const auto rows = static_cast<std::size_t>(array.shape(0));
      const auto* data = static_cast<const float*>(array.data());
      // The kernels do not check their input, and a NaN row would come out as a silent label 0.
      check_finite_rows(data, rows, width, "x");
      Workspace local;
      Predictions out;
      py::gil_scoped_release release;
      self.predict(data, rows, workspace != nullptr ? *workspace : local, out);
      return out;
    }
    const Matrix encoded = to_matrix(x, "x", width);
    py::gil_scoped_release release;
    return self.predict(encoded);
  }
  std::optional<Table> storage;
  const Table& table = table_ref(x, storage, "x", "<DataFrame>");
  py::gil_scoped_release release;
  return self.predict(table);
}

void register_simd(py::module_& m) {
  py::enum_<SimdLevel> level(m, "SimdLevel", "Instruction sets of the predictor's kernels, lowest first.");
  level.value("Scalar", SimdLevel::Scalar).value("Avx2", SimdLevel::Avx2).value("Avx512", SimdLevel::Avx512);
  use_lepton_names(level);

  m.def("detected_simd_level", &detected_simd_level, "Return the highest level that this CPU supports.");
  m.def("default_simd_level", &default_simd_level,
        "Return the level predictors use by default: the detected one, lowered by LEPTON_SIMD=scalar|avx2|avx512.");

  py::class_<PredictorOptions>(m, "PredictorOptions", "Per-predictor settings.")
      .def(py::init([](std::optional<SimdLevel> simd, std::size_t tile_rows) {
             PredictorOptions options;
             options.simd = simd;
             options.tile_rows = tile_rows;
             return options;
           }),
           py::arg("simd") = py::none(), py::arg("tile_rows") = 64)
      .def_readwrite("simd", &PredictorOptions::simd, "Kernel level; None means default_simd_level().")
      .def_readwrite("tile_rows", &PredictorOptions::tile_rows,
                     "Rows that pass through all layers together; changes no result. Range [1, 4096].");

  py::class_<RecordSchema>(m, "RecordSchema", "A caller's column order, resolved once by Predictor.bind().")
      .def_property_readonly("columns", &RecordSchema::columns, "Columns in the order that values are expected.");

  py::class_<Workspace>(m, "Workspace",
                        "Scratch memory that predict calls reuse; serves one thread at a time.")
      .def(py::init<>());
}

void register_predictor(py::module_& m) {
  register_simd(m);

  py::class_<Predictor>(m, "Predictor",
                        "Runs a loaded model (f32 and int8 layers) without LibTorch. Thread-safe; the GIL is "
                        "released while it computes.")
      .def(py::init<ModelArtifact, const PredictorOptions&>(), py::arg("artifact"),
           py::arg("options") = PredictorOptions{})
      .def_static(
          "load",
          [](const std::string& path, const PredictorOptions& options) {
            py::gil_scoped_release release;
            return Predictor::load(path, options);
          },
          py::arg("path"), py::arg("options") = PredictorOptions{},
          "Load the artifact at path (see load_artifact for the errors).")
      .def_property_readonly("artifact", &Predictor::artifact, py::return_value_policy::reference_internal,
                             "The loaded model.")
      .def_property_readonly("simd_level", &Predictor::simd_level, "Kernel level in use.")
      .def_property_readonly("quantized", &Predictor::quantized, "True when at least one layer runs in int8.")
      .def_property_readonly("layer_blocks", &Predictor::layer_blocks,
                             "Diagonal blocks each layer runs in: 1 dense, G > 1 for a merged model's "
                             "block-diagonal f32 layer run as G small layers.")
      .def(
          "encode",
          [](const Predictor& self, const py::object& records) {
            std::optional<Table> storage;
            const Table& table = table_ref(records, storage, "records", "<DataFrame>");
            Matrix encoded;
            {
              py::gil_scoped_release release;
              encoded = self.encode(table);
            }
            return to_array(std::move(encoded));
          },
          py::arg("records"),
          "Replay the stored preprocessing on raw records (Table, DataFrame or dict of columns); returns float32 "
          "[rows, inputs].")
      .def(
          "forward",
          [](const Predictor& self, const py::object& encoded) {
            const Matrix rows = to_matrix(encoded, "encoded", self.artifact().network.inputs());
            std::vector<double> outputs;
            {
              py::gil_scoped_release release;
              outputs = self.forward(rows);
            }
            const auto count = static_cast<py::ssize_t>(rows.rows);
            return to_array(std::move(outputs), {count, static_cast<py::ssize_t>(self.artifact().network.outputs())});
          },
          py::arg("encoded"),
          "Return raw network outputs (logits or standardized value) float64 [rows, outputs] for encoded rows.")
      .def("predict", &predict_any, py::arg("x"), py::arg("workspace") = nullptr,
           "Predict from encoded rows or from raw records (Table, DataFrame or dict of columns). Encoded rows are "
           "a 2-D array [rows, inputs]: float32 C-contiguous is read in place (reusing workspace when given), "
           "other float arrays are copied once into float32.")
      .def(
          "bind", &Predictor::bind, py::arg("columns"),
          "Resolve the caller's column names to the model's features once, for predict_values. Raises "
          "InvalidArgument for an absent feature column (naming the closest) or a repeated name.")
      .def(
          "predict_record",
          [](const Predictor& self, const py::dict& record) {
            std::vector<std::string> texts;
            texts.reserve(py::len(record));
            std::vector<std::pair<std::string, Value>> pairs;
            for (const auto& item : record) {
              const std::string name = py::str(item.first).cast<std::string>();
              pairs.emplace_back(name, to_value(item.second, texts, "record['" + name + "']"));
            }
            py::gil_scoped_release release;
            return self.predict(pairs);
          },
          py::arg("record"),
          "Predict one raw record given as {column: value}, value a number, a str (parsed like a CSV cell) or "
          "None (missing). Extra columns are ignored.")
      .def(
          "predict_values",
          [](const Predictor& self, const RecordSchema& schema, const py::sequence& values, Workspace* workspace) {
            const RecordValues record = to_record_values(values, "values");
            Workspace local;
            Predictions out;
            py::gil_scoped_release release;
            self.predict(schema, record.values.data(), record.values.size(),
                         workspace != nullptr ? *workspace : local, out);
            return out;
          },
          py::arg("schema"), py::arg("values"), py::arg("workspace") = nullptr,
          "Predict one record whose values follow schema.columns; see predict_record for the value types.")
      .def(
          "encode_values",
          [](const Predictor& self, const RecordSchema& schema, const py::sequence& values) {
            const RecordValues record = to_record_values(values, "values");
            std::vector<float> encoded(self.artifact().preprocessor.encoded_width());
            self.encode(schema, record.values.data(), record.values.size(), encoded.data());
            return to_array(std::move(encoded));
          },
          py::arg("schema"), py::arg("values"),
          "Encode one record whose values follow schema.columns into float32 [inputs]. Raises ParseError for "
          "a text that is not a number in a numeric feature.");
}

void register_quantize(py::module_& m) {
  py::enum_<ActivationScaling> scaling(m, "ActivationScaling", "Scaling rule of a layer's int8 input activations.");
  scaling.value("PerRow", ActivationScaling::PerRow)
      .value("MinMax", ActivationScaling::MinMax)
      .value("Percentile", ActivationScaling::Percentile);
  use_lepton_names(scaling);

  py::class_<QuantizationOptions>(m, "QuantizationOptions", "Options of quantize().")
      .def(py::init([](ActivationScaling activations, double percentile, std::string objective, double tolerance,
                       bool fallback_to_f32) {
             return QuantizationOptions()
                 .with_activations(activations)
                 .with_percentile(percentile)
                 .with_objective(std::move(objective))
                 .with_tolerance(tolerance)
                 .with_fallback_to_f32(fallback_to_f32);
           }),
           py::arg("activations") = ActivationScaling::PerRow, py::arg("percentile") = 99.99,
           py::arg("objective") = "", py::arg("tolerance") = 0.005, py::arg("fallback_to_f32") = true)
      .def_readwrite("activations", &QuantizationOptions::activations,
                     "Source of each layer's int8 input scale (default ActivationScaling.PerRow).")
      .def_readwrite("percentile", &QuantizationOptions::percentile, "For Percentile scaling, in (0, 100].")
      .def_readwrite("objective", &QuantizationOptions::objective, "Metric name of the gate; empty: the model's.")
      .def_readwrite("tolerance", &QuantizationOptions::tolerance,
                     "Largest allowed drop of the objective on the validation rows, in the metric's units.")
      .def_readwrite("fallback_to_f32", &QuantizationOptions::fallback_to_f32,
                     "Move harmful layers back to f32 (True) or raise ConstraintError (False).");

  py::class_<QuantizationResult>(m, "QuantizationResult", "Model and measurements produced by quantize().")
      .def_readonly("artifact", &QuantizationResult::artifact, "The mixed-precision model, ready for save_artifact.")
      .def_readonly("precisions", &QuantizationResult::precisions, "LayerPrecision per layer.")
      .def_readonly("objective", &QuantizationResult::objective, "Metric name of the gate, e.g. 'f1'.")
      .def_readonly("f32_metric", &QuantizationResult::f32_metric, "Objective of the f32 model on the validation rows.")
      .def_readonly("int8_metric", &QuantizationResult::int8_metric,
                    "Objective of the returned model on the validation rows.")
      .def_readonly("metric_drop", &QuantizationResult::metric_drop, "Worsening of the objective (>= 0 is worse).")
      .def_readonly("label_agreement", &QuantizationResult::label_agreement,
                    "Share of validation rows whose label equals the f32 label.")
      .def_readonly("max_abs_output_difference", &QuantizationResult::max_abs_output_difference,
                    "Largest abs(int8 - f32) of a raw network output.")
      .def_readonly("validation_rows", &QuantizationResult::validation_rows, "Number of validation rows of the gate.")
      .def(
          "to_json", [](const QuantizationResult& self) { return from_json(self.to_json()); }, "Return as a dict.");

  m.def(
      "quantize",
      [](const ModelArtifact& f32, const py::object& calibration, const py::object& validation,
         const py::object& truth, const QuantizationOptions& options) {
        const std::size_t width = f32.network.inputs();
        const Matrix calibration_rows = calibration.is_none() ? Matrix(0, width) : to_matrix(calibration, "calibration", width);
        const Matrix validation_rows = to_matrix(validation, "validation", width);
        if (f32.task == Task::Regression) {
          const std::vector<double> values = to_double_vector(truth, "validation_truth");
          py::gil_scoped_release release;
          return quantize(f32, calibration_rows, validation_rows, values, options);
        }
        const std::vector<std::int64_t> labels = to_int64_vector(truth, "validation_truth");
        py::gil_scoped_release release;
        return quantize(f32, calibration_rows, validation_rows, labels, options);
      },
      py::arg("f32"), py::arg("calibration"), py::arg("validation"), py::arg("validation_truth"),
      py::arg("options") = QuantizationOptions{},
      "Quantize every layer to int8, calibrate static activation scales on calibration (None for PerRow), and "
      "gate the result on validation rows (encoded) against class ids or regression values. Raises "
      "ConstraintError when the gate fails and fallback is off.");
  m.def("quantize_weights", &quantize_weights, py::arg("layer"),
        "Quantize one layer's weights symmetrically per output channel.");
}

void register_evaluator(py::module_& m) {
  py::class_<Evaluation>(m, "Evaluation", "Metrics of one evaluated split; only the member of the task is filled.")
      .def_readonly("task", &Evaluation::task, "Task of the evaluated model.")
      .def_readonly("rows", &Evaluation::rows, "Number of evaluated rows.")
      .def_readonly("binary", &Evaluation::binary, "Metrics of a binary classifier (task BinaryClassification).")
      .def_readonly("multiclass", &Evaluation::multiclass,
                    "Metrics of a multiclass classifier (task MulticlassClassification).")
      .def_readonly("regression", &Evaluation::regression, "Metrics of a regressor (task Regression).")
      .def("value", &Evaluation::value, py::arg("metric"),
           "Return the value of a Metric; raises InvalidArgument when it does not apply to the task.")
      .def(
          "to_json", [](const Evaluation& self) { return from_json(self.to_json()); },
          "Return the dict that metrics.json holds per split (NaN metrics become None).");

  m.def(
      "evaluate",
      [](const Predictions& predictions, const py::object& truth) {
        if (predictions.task == Task::Regression) return evaluate(predictions, to_double_vector(truth, "truth"));
        return evaluate(predictions, to_int64_vector(truth, "truth"));
      },
      py::arg("predictions"), py::arg("truth"),
      "Score Predictions against the truth: class ids (int array) for classification, values (float array) for "
      "regression.");
  m.def(
      "evaluate",
      [](const Predictor& predictor, const py::object& records) {
        std::optional<Table> storage;
        const Table& table = table_ref(records, storage, "records", "<DataFrame>");
        py::gil_scoped_release release;
        return evaluate(predictor, table);
      },
      py::arg("predictor"), py::arg("records"),
      "Predict records with predictor and score them against the artifact's target column.");
}

}  // namespace

void register_predict(py::module_& m) {
  register_model(m);
  register_predictions(m);
  register_predictor(m);
  register_quantize(m);
  register_evaluator(m);
}

}  // namespace lepton::python
