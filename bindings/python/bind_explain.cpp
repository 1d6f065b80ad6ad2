// SHAP-style explainers. explain() releases the GIL; a model given as a Python function takes it back
// for each batch, so such a model runs one batch at a time.
#include <cstring>

#include <fmt/format.h>

#include "bindings.hpp"
#include "lepton/explain.hpp"

namespace lepton::python {
namespace {

// A read-only array over memory that the caller owns for the duration of one call. A capsule without a
// destructor stands in as the base, so numpy does not copy and does not free.
template <class T>
py::array_t<T> borrowed_rows(const T* rows, std::size_t count, std::size_t width) {
  py::capsule no_owner(rows, [](void*) {});
  py::array_t<T> array({static_cast<py::ssize_t>(count), static_cast<py::ssize_t>(width)}, rows, no_owner);
  py::detail::array_proxy(array.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  return array;
}

void copy_outputs(const py::object& result, std::size_t count, std::size_t outputs, double* destination) {
  const auto array = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(result);
  if (!array) {
    throw py::type_error("model function: expected it to return a float array [rows, outputs]");
  }
  const auto expected = static_cast<py::ssize_t>(count * outputs);
  if (array.size() != expected) {
    throw py::value_error(fmt::format("model function: returned {} values for {} rows x {} outputs; return an "
                                      "array of shape ({}, {})",
                                      array.size(), count, outputs, count, outputs));
  }
  std::memcpy(destination, array.data(), count * outputs * sizeof(double));
}

void check_callable(const py::object& function) {
  if (!PyCallable_Check(function.ptr())) {
    throw py::type_error(fmt::format("function: expected a callable(rows: ndarray[n, inputs]) -> ndarray[n, "
                                     "outputs], got {}",
                                     py::type::of(function).attr("__name__").cast<std::string>()));
  }
}

ExplainModel model_from_function(std::size_t inputs, std::size_t outputs, const py::object& function) {
  check_callable(function);
  PyCallable callable(function);
  return ExplainModel::from_function(inputs, outputs,
                                     [callable, inputs, outputs](const double* rows, std::size_t count, double* out) {
                                       py::gil_scoped_acquire gil;
                                       const py::object result =
                                           callable.function()(borrowed_rows(rows, count, inputs));
                                       copy_outputs(result, count, outputs, out);
                                     });
}

ExplainModel model_from_float_function(std::size_t inputs, std::size_t outputs, const py::object& function) {
  check_callable(function);
  PyCallable callable(function);
  return ExplainModel::from_float_function(
      inputs, outputs, [callable, inputs, outputs](const float* rows, std::size_t count, double* out) {
        py::gil_scoped_acquire gil;
        const py::object result = callable.function()(borrowed_rows(rows, count, inputs));
        copy_outputs(result, count, outputs, out);
      });
}

bool is_float32(const py::object& array) {
  return py::isinstance<py::array>(array) && py::reinterpret_borrow<py::array>(array).dtype().kind() == 'f' &&
         py::reinterpret_borrow<py::array>(array).itemsize() == 4;
}

void register_model(py::module_& m) {
  py::enum_<OutputLink> link(m, "OutputLink", "Mapping from an MLP's logits to the explained outputs.");
  link.value("Identity", OutputLink::Identity)
      .value("Logistic", OutputLink::Logistic)
      .value("Softmax", OutputLink::Softmax);
  use_lepton_names(link);

  py::class_<DoubleDenseLayer>(m, "DoubleDenseLayer", "A dense layer with float64 weights [outputs, inputs].")
      .def(py::init([](const py::object& weight, const py::object& bias, Activation activation) {
             const DoubleMatrix w = to_double_matrix(py::module_::import("numpy").attr("asarray")(weight, "float64"),
                                                     "weight");
             DoubleDenseLayer layer;
             layer.outputs = w.rows;
             layer.inputs = w.cols;
             layer.weight = w.data;
             layer.bias = to_double_vector(bias, "bias");
             layer.activation = activation;
             return layer;
           }),
           py::arg("weight"), py::arg("bias"), py::arg("activation") = Activation::Relu)
      .def_readonly("inputs", &DoubleDenseLayer::inputs, "Input width of the layer.")
      .def_readonly("outputs", &DoubleDenseLayer::outputs, "Output width of the layer.")
      .def_property_readonly("weight",
                             [](py::object self) {
                               const auto& l = self.cast<const DoubleDenseLayer&>();
                               return view_array(l.weight,
                                                 {static_cast<py::ssize_t>(l.outputs), static_cast<py::ssize_t>(l.inputs)},
                                                 self);
                             },
                             "Read-only float64 array [outputs, inputs].")
      .def_property_readonly("bias",
                             [](py::object self) {
                               const auto& l = self.cast<const DoubleDenseLayer&>();
                               return view_array(l.bias, {static_cast<py::ssize_t>(l.outputs)}, self);
                             },
                             "Read-only float64 array [outputs].")
      .def_readwrite("activation", &DoubleDenseLayer::activation, "Activation applied after W x + b.");

  py::class_<DoubleMlp>(m, "DoubleMlp", "An MLP with float64 weights, for reference weights that float32 cannot hold.")
      .def(py::init([](std::vector<DoubleDenseLayer> layers) { return DoubleMlp{std::move(layers), {}}; }),
           py::arg("layers"))
      .def_static("from_mlp", &DoubleMlp::from, py::arg("mlp"), "Convert a trained float32 Mlp exactly.")
      .def_readwrite("layers", &DoubleMlp::layers, "DoubleDenseLayer per layer, input first.")
      .def_readwrite("products", &DoubleMlp::products,
                     "InputProduct list: columns computed after the inputs, before the first layer.")
      .def_property_readonly("inputs", &DoubleMlp::inputs,
                             "Columns a caller passes: the first layer's inputs less the products; 0 without layers.")
      .def_property_readonly("outputs", &DoubleMlp::outputs, "Output width of the last layer; 0 without layers.");

  py::class_<ExplainModel>(m, "ExplainModel",
                           "The model as explainers see it: a batched function from encoded rows [n, d] to outputs "
                           "[n, k], in float64.")
      .def_static("from_mlp", py::overload_cast<const Mlp&, OutputLink>(&ExplainModel::from_mlp), py::arg("mlp"),
                  py::arg("link"),
                  "Wrap an MLP with a float64 forward pass that matches a scalar reference bit for bit. Logistic "
                  "needs one logit.")
      .def_static("from_mlp", py::overload_cast<DoubleMlp, OutputLink>(&ExplainModel::from_mlp), py::arg("mlp"),
                  py::arg("link"))
      .def_static("from_function", &model_from_function, py::arg("inputs"), py::arg("outputs"), py::arg("function"),
                  "Wrap a Python callable(rows: float64 [n, inputs]) -> array [n, outputs]. rows is a read-only view "
                  "that is valid only during the call. Explainers call it from worker threads, one call at a time "
                  "because of the GIL.")
      .def_static("from_float_function", &model_from_float_function, py::arg("inputs"), py::arg("outputs"),
                  py::arg("function"), "Same as from_function, with rows rounded to float32.")
      .def_property_readonly("inputs", &ExplainModel::inputs, "Width d of an encoded input row.")
      .def_property_readonly("outputs", &ExplainModel::outputs, "Number of model outputs K.")
      .def(
          "evaluate",
          [](const ExplainModel& self, const py::object& rows) {
            const DoubleMatrix input = to_double_matrix(rows, "rows", self.inputs());
            DoubleMatrix output;
            {
              py::gil_scoped_release release;
              output = self.evaluate(input);
            }
            return to_array(std::move(output));
          },
          py::arg("rows"), "Evaluate rows [n, inputs] into float64 [n, outputs].")
      .def_property_readonly("has_gradient", &ExplainModel::has_gradient,
                             "True for MLP models without step inputs, which have an analytic gradient.")
      .def(
          "gradient",
          [](const ExplainModel& self, const py::object& row, std::size_t output) {
            const std::vector<double> x = to_double_vector(row, "row");
            if (x.size() != self.inputs()) {
              throw py::value_error(fmt::format("row: expected {} values, got {}", self.inputs(), x.size()));
            }
            std::vector<double> gradient(self.inputs());
            self.gradient(x.data(), output, gradient.data());
            return to_array(std::move(gradient));
          },
          py::arg("row"), py::arg("output") = 0,
          "Return d outputs[output] / d row as float64 [inputs]; raises InvalidArgument without a gradient.");
}

void register_groups(py::module_& m) {
  py::class_<FeatureGroup>(m, "FeatureGroup", "Encoded columns that are switched on or off together.")
      .def(py::init([](std::string name, std::vector<std::size_t> columns, bool one_hot) {
             return FeatureGroup{std::move(name), std::move(columns), one_hot};
           }),
           py::arg("name"), py::arg("columns"), py::arg("one_hot") = false)
      .def_readwrite("name", &FeatureGroup::name, "The raw column's name, e.g. 'Type' for Type=L, Type=M, Type=H.")
      .def_readwrite("columns", &FeatureGroup::columns, "Encoded columns, ascending.")
      .def_readwrite("one_hot", &FeatureGroup::one_hot, "True for the one-hot block of a categorical column.");

  py::class_<FeatureGroups>(m, "FeatureGroups", "A partition of the encoded columns; attributions are per group.")
      .def_static("from_preprocessor", &FeatureGroups::from_preprocessor, py::arg("preprocessor"),
                  "One group per raw column; a categorical column's one-hot block is one group.")
      .def_static("from_features", &FeatureGroups::from_features, py::arg("features"),
                  "Same as from_preprocessor, from FeatureTransform objects.")
      .def_static("per_column", &FeatureGroups::per_column, py::arg("width"),
                  py::arg("names") = std::vector<std::string>{},
                  "One group per encoded column, named by names or 'x0', 'x1', ...")
      .def_static("custom", &FeatureGroups::custom, py::arg("width"), py::arg("groups"),
                  "User-named groups; raises InvalidArgument unless they partition the columns below width.")
      .def_property_readonly("width", &FeatureGroups::width, "Number of encoded columns that the groups partition.")
      .def_property_readonly("size", &FeatureGroups::size, "Number of groups.")
      .def("__len__", &FeatureGroups::size)
      .def_property_readonly("groups", &FeatureGroups::groups, "FeatureGroup per group, in order.")
      .def("names", &FeatureGroups::names, "Return the group names, in order.");
}

void register_background(py::module_& m) {
  py::class_<KMeansOptions>(m, "KMeansOptions", "Settings of the weighted k-means background summary.")
      .def(py::init([](std::size_t clusters, std::size_t iterations, std::uint64_t seed) {
             return KMeansOptions().clusters(clusters).iterations(iterations).seed(seed);
           }),
           py::arg("clusters") = 10, py::arg("iterations") = 100, py::arg("seed") = 0)
      .def_readwrite("clusters", &KMeansOptions::clusters_, "Number of k-means centres (default 10).")
      .def_readwrite("iterations", &KMeansOptions::iterations_, "Maximum Lloyd iterations.")
      .def_readwrite("seed", &KMeansOptions::seed_, "Seeds the k-means++ initialisation.");

  py::class_<Background>(m, "Background", "Weighted encoded rows that absent groups are drawn from.")
      .def_static(
          "uniform", [](const py::object& rows) { return Background::uniform(to_double_matrix(rows, "rows")); },
          py::arg("rows"), "Rows [count, d] with weights 1 / count.")
      .def_static(
          "weighted",
          [](const py::object& rows, const py::object& weights) {
            return Background::weighted(to_double_matrix(rows, "rows"), to_double_vector(weights, "weights"));
          },
          py::arg("rows"), py::arg("weights"), "Rows [count, d] with non-negative weights of positive sum.")
      .def_static(
          "sample",
          [](const py::object& data, std::size_t count, std::uint64_t seed) {
            if (is_float32(data)) return Background::sample(to_matrix(data, "data"), count, seed);
            return Background::sample(to_double_matrix(data, "data"), count, seed);
          },
          py::arg("data"), py::arg("count"), py::arg("seed"), "A uniform sample of min(count, rows) distinct rows.")
      .def_static(
          "kmeans",
          [](const py::object& data, const FeatureGroups& groups, const KMeansOptions& options) {
            if (is_float32(data)) {
              const Matrix rows = to_matrix(data, "data");
              py::gil_scoped_release release;
              return Background::kmeans(rows, groups, options);
            }
            const DoubleMatrix rows = to_double_matrix(data, "data");
            py::gil_scoped_release release;
            return Background::kmeans(rows, groups, options);
          },
          py::arg("data"), py::arg("groups"), py::arg("options") = KMeansOptions{},
          "A weighted k-means summary (k-means++, Lloyd); one-hot groups of each centre stay valid.")
      .def_property_readonly(
          "rows",
          [](py::object self) {
            const auto& b = self.cast<const Background&>();
            return view_array(b.rows.data,
                              {static_cast<py::ssize_t>(b.rows.rows), static_cast<py::ssize_t>(b.rows.cols)}, self);
          },
          "Read-only float64 [count, d].")
      .def_property_readonly(
          "weights",
          [](py::object self) {
            const auto& b = self.cast<const Background&>();
            return view_array(b.weights, {static_cast<py::ssize_t>(b.weights.size())}, self);
          },
          "Read-only float64 [count].")
      .def_property_readonly("size", &Background::size, "Number of background rows.")
      .def("validate", &Background::validate, "Raise InvalidArgument naming the first fault (shape, weight).")
      .def(
          "to_json", [](const Background& self) { return from_json(self.to_json()); },
          "Return {'format': 'lepton-explanation-background/1', ...} for ModelArtifact.extensions.")
      .def_static(
          "from_json",
          [](const py::object& value, const std::string& json_path) {
            return Background::from_json(to_json(value, "value"), json_path);
          },
          py::arg("value"), py::arg("json_path") = "$", "Parse; raises ParseError naming the JSON path.");
}

void register_explanation(py::module_& m) {
  py::class_<Explanation>(m, "Explanation",
                          "Result of an explainer, with R rows, G groups and K outputs. Arrays are read-only views "
                          "(no copy).")
      .def_readonly("method", &Explanation::method, "'exact', 'kernel', 'permutation' or 'integrated_gradients'.")
      .def_readonly("rows", &Explanation::rows, "Number of explained rows R.")
      .def_readonly("groups", &Explanation::groups, "Number of feature groups G.")
      .def_readonly("outputs", &Explanation::outputs, "Number of model outputs K.")
      .def_readonly("group_names", &Explanation::group_names, "Group names [G].")
      .def_property_readonly(
          "base_values",
          [](py::object self) {
            const auto& e = self.cast<const Explanation&>();
            return view_array(e.base_values, {static_cast<py::ssize_t>(e.outputs)}, self);
          },
          "float64 [K]: expected output over the background.")
      .def_property_readonly(
          "predictions",
          [](py::object self) {
            const auto& e = self.cast<const Explanation&>();
            return view_array(e.predictions, {static_cast<py::ssize_t>(e.rows), static_cast<py::ssize_t>(e.outputs)},
                              self);
          },
          "float64 [R, K]: model output at each explained row.")
      .def_property_readonly(
          "values",
          [](py::object self) {
            const auto& e = self.cast<const Explanation&>();
            return view_array(e.values,
                              {static_cast<py::ssize_t>(e.rows), static_cast<py::ssize_t>(e.groups),
                               static_cast<py::ssize_t>(e.outputs)},
                              self);
          },
          "float64 [R, G, K]: attribution of group g to output k of row r.")
      .def_property_readonly(
          "standard_errors",
          [](py::object self) {
            const auto& e = self.cast<const Explanation&>();
            return view_array(e.standard_errors,
                              {static_cast<py::ssize_t>(e.rows), static_cast<py::ssize_t>(e.groups),
                               static_cast<py::ssize_t>(e.outputs)},
                              self);
          },
          "float64 [R, G, K]: 0 for exact, the estimated sampling or integration error otherwise.")
      .def_property_readonly(
          "completeness_gaps",
          [](py::object self) {
            const auto& e = self.cast<const Explanation&>();
            return view_array(e.completeness_gaps,
                              {static_cast<py::ssize_t>(e.rows), static_cast<py::ssize_t>(e.outputs)}, self);
          },
          "float64 [R, K]: |sum of values - (prediction - base value)|.")
      .def(
          "value",
          [](const Explanation& e, std::size_t row, std::size_t group, std::size_t output) {
            if (row >= e.rows || group >= e.groups || output >= e.outputs) {
              throw py::index_error(fmt::format("value({}, {}, {}) is outside [{}, {}, {}]", row, group, output, e.rows,
                                                e.groups, e.outputs));
            }
            return e.value(row, group, output);
          },
          py::arg("row"), py::arg("group"), py::arg("output") = 0,
          "Return the attribution of group to output of row; raises IndexError outside the shape.")
      .def(
          "to_json", [](const Explanation& self) { return from_json(self.to_json()); }, "Return as a dict.");

  py::class_<GlobalImportance>(m, "GlobalImportance", "Mean |value| per group over the explained rows.")
      .def_readonly("groups", &GlobalImportance::groups, "Number of feature groups G.")
      .def_readonly("outputs", &GlobalImportance::outputs, "Number of model outputs K.")
      .def_readonly("group_names", &GlobalImportance::group_names, "Group names [G].")
      .def_property_readonly(
          "mean_abs",
          [](py::object self) {
            const auto& g = self.cast<const GlobalImportance&>();
            return view_array(g.mean_abs, {static_cast<py::ssize_t>(g.groups), static_cast<py::ssize_t>(g.outputs)},
                              self);
          },
          "float64 [G, K].")
      .def_property_readonly(
          "std_abs",
          [](py::object self) {
            const auto& g = self.cast<const GlobalImportance&>();
            return view_array(g.std_abs, {static_cast<py::ssize_t>(g.groups), static_cast<py::ssize_t>(g.outputs)},
                              self);
          },
          "float64 [G, K]: population standard deviation of |value| over rows.");

  m.def("default_output_link", &default_output_link, py::arg("artifact"),
        "Return the output that explanations attribute by default: Logistic (binary), Softmax (multiclass), "
        "Identity (regression).");
  m.def("explain_model", &explain_model, py::arg("artifact"), py::arg("link"),
        "Wrap the artifact's network for explainers with link.");
  m.def("store_background", &store_background, py::arg("artifact"), py::arg("background"),
        "Store background in artifact.extensions, so that explanations in deployment need no training data.");
  m.def("stored_background", &stored_background, py::arg("artifact"),
        "Return the background stored in the artifact; raises InvalidArgument when there is none.");
  m.attr("EXPLANATION_BACKGROUND_KEY") = kExplanationBackgroundKey;

  m.def("global_importance", &global_importance, py::arg("explanation"),
        "Mean and standard deviation of |value| per group; raises InvalidArgument for no rows.");
}

void register_options(py::module_& m) {
  py::enum_<CoalitionPath>(m, "CoalitionPath", "Computation path of coalition values.")
      .value("Reference", CoalitionPath::Reference)
      .value("Fast", CoalitionPath::Fast);

  py::class_<ExactOptions>(m, "ExactOptions", "Options of the exact explainer.")
      .def(py::init([](std::size_t threads, CoalitionPath path, std::size_t max_groups) {
             return ExactOptions().threads(threads).path(path).max_groups(max_groups);
           }),
           py::arg("threads") = 0, py::arg("path") = CoalitionPath::Reference, py::arg("max_groups") = 20)
      .def_readwrite("threads", &ExactOptions::threads_, "Rows explained in parallel; 0: hardware concurrency.")
      .def_readwrite("path", &ExactOptions::path_,
                     "How coalition values are computed (default CoalitionPath.Reference).")
      .def_readwrite("max_groups", &ExactOptions::max_groups_, "2^groups coalitions are enumerated; at most 24.");

  py::enum_<KernelSampler> sampler(m, "KernelSampler", "Coalition sampling scheme of Kernel SHAP.");
  sampler.value("Shap", KernelSampler::Shap, "shap 0.49.1's KernelExplainer scheme, weights from draw counts.")
      .value("Stratified", KernelSampler::Stratified,
             "A fixed number of complementary pairs per size, drawn without replacement (the default).");
  use_lepton_names(sampler);

  py::class_<KernelOptions>(m, "KernelOptions", "Options of Kernel SHAP.")
      .def(py::init([](std::size_t samples, std::uint64_t seed, std::size_t threads, std::size_t bootstrap,
                       CoalitionPath path, KernelSampler sampler) {
             return KernelOptions()
                 .samples(samples)
                 .seed(seed)
                 .threads(threads)
                 .bootstrap(bootstrap)
                 .path(path)
                 .sampler(sampler);
           }),
           py::arg("samples") = 0, py::arg("seed") = 0, py::arg("threads") = 0, py::arg("bootstrap") = 32,
           py::arg("path") = CoalitionPath::Reference, py::arg("sampler") = KernelSampler::Stratified)
      .def_readwrite("samples", &KernelOptions::samples_, "Coalition budget; 0: 2 * groups + 2048.")
      .def_readwrite("seed", &KernelOptions::seed_,
                     "Random seed; each row's generator is derived from (seed, row index).")
      .def_readwrite("threads", &KernelOptions::threads_,
                     "Worker threads; 0 means std::thread::hardware_concurrency().")
      .def_readwrite("bootstrap", &KernelOptions::bootstrap_, "Bootstrap resamples for the standard error.")
      .def_readwrite("path", &KernelOptions::path_,
                     "How coalition values are computed (default CoalitionPath.Reference).")
      .def_readwrite("sampler", &KernelOptions::sampler_,
                     "Coalition sampling scheme (default KernelSampler.Stratified).");

  py::class_<PermutationOptions>(m, "PermutationOptions", "Options of antithetic permutation SHAP.")
      .def(py::init([](std::size_t permutations, std::uint64_t seed, std::size_t threads, CoalitionPath path) {
             return PermutationOptions().permutations(permutations).seed(seed).threads(threads).path(path);
           }),
           py::arg("permutations") = 10, py::arg("seed") = 0, py::arg("threads") = 0,
           py::arg("path") = CoalitionPath::Reference)
      .def_readwrite("permutations", &PermutationOptions::permutations_, "Antithetic pairs.")
      .def_readwrite("seed", &PermutationOptions::seed_, "Random seed of the sampled permutations.")
      .def_readwrite("threads", &PermutationOptions::threads_, "Worker threads.")
      .def_readwrite("path", &PermutationOptions::path_,
                     "How coalition values are computed (default CoalitionPath.Reference).");

  py::enum_<GradientBaseline>(m, "GradientBaseline", "Starting point of integrated gradients.")
      .value("BackgroundMean", GradientBaseline::BackgroundMean)
      .value("EachBackground", GradientBaseline::EachBackground);

  py::class_<GradientOptions>(m, "GradientOptions", "Options of integrated gradients.")
      .def(py::init([](std::size_t steps, GradientBaseline baseline, std::size_t threads) {
             return GradientOptions().steps(steps).baseline(baseline).threads(threads);
           }),
           py::arg("steps") = 64, py::arg("baseline") = GradientBaseline::BackgroundMean, py::arg("threads") = 0)
      .def_readwrite("steps", &GradientOptions::steps_, "Trapezoid intervals along each path.")
      .def_readwrite("baseline", &GradientOptions::baseline_,
                     "Where integrated gradients start (default GradientBaseline.BackgroundMean).")
      .def_readwrite("threads", &GradientOptions::threads_, "Worker threads.");
}

template <class Explainer, class Options>
void register_explainer(py::module_& m, const char* name, const char* doc) {
  py::class_<Explainer>(m, name, doc)
      .def(py::init<ExplainModel, Background, FeatureGroups, Options>(), py::arg("model"), py::arg("background"),
           py::arg("groups"), py::arg("options") = Options{})
      .def(
          "explain",
          [](const Explainer& self, const py::object& rows) {
            if (is_float32(rows)) {
              const Matrix input = to_matrix(rows, "rows");
              py::gil_scoped_release release;
              return self.explain(input);
            }
            const DoubleMatrix input = to_double_matrix(rows, "rows");
            py::gil_scoped_release release;
            return self.explain(input);
          },
          py::arg("rows"),
          "Explain encoded rows [R, d] (float32 or float64; copied once), with the GIL released. Raises "
          "InvalidArgument on a width mismatch; an exception of the model function is raised here.");
}

}  // namespace

void register_explain(py::module_& m) {
  register_model(m);
  register_groups(m);
  register_background(m);
  register_explanation(m);
  register_options(m);
  register_explainer<ExactExplainer, ExactOptions>(
      m, "ExactExplainer", "Exact interventional Shapley values over all 2^G coalitions (G <= max_groups).");
  register_explainer<KernelExplainer, KernelOptions>(
      m, "KernelExplainer", "Kernel SHAP: weighted least squares with the Shapley kernel, efficiency exact.");
  register_explainer<PermutationExplainer, PermutationOptions>(
      m, "PermutationExplainer", "Permutation SHAP with antithetic permutations; efficiency exact.");
  register_explainer<GradientExplainer, GradientOptions>(
      m, "GradientExplainer", "Integrated gradients along straight paths (MLP models from ExplainModel.from_mlp).");
}

}  // namespace lepton::python
