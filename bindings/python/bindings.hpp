#pragma once
// Shared by the binding files: one registration function per area, and the conversions at the
// Python boundary (numpy arrays, JSON values, tables, callbacks, interruptible jobs).

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <nlohmann/json.hpp>

#include "lepton/explain.hpp"
#include "lepton/matrix.hpp"
#include "lepton/table.hpp"
#include "lepton/trainer.hpp"

namespace lepton::python {

namespace py = pybind11;

void register_support(py::module_& m);  // exceptions, io, log
void register_data(py::module_& m);     // table, CSV, dataset, preprocessing, metrics
void register_crypto(py::module_& m);   // keys, envelopes, save and load options
void register_privacy(py::module_& m);  // RDP accountant, noise multiplier solver, privacy spent
void register_predict(py::module_& m);  // model artifact, predictor, evaluator
/// DistributedOptions only, registered before the pipeline whose options hold one.
void register_distributed_options(py::module_& m);
void register_train(py::module_& m);        // requirements, configurator, trainer, pipeline
void register_distributed(py::module_& m);  // process group, data-parallel and federated training
void register_explain(py::module_& m);      // explainers

/// Replaces the __str__ that py::enum_ defines ("Task.Regression") with Lepton's to_string ("regression").
template <class Enum>
void use_lepton_names(py::enum_<Enum>& type) {
  type.attr("__str__") = py::cpp_function([](Enum value) { return to_string(value); }, py::is_method(type),
                                          py::name("__str__"));
}

// ---- JSON: nlohmann::json <-> dict, list, str, int, float, bool, None.

/// Converts a Python value to JSON. `argument` names it in the TypeError for an unsupported type.
nlohmann::json to_json(py::handle value, const std::string& argument);
py::object from_json(const nlohmann::json& value);

// ---- numpy out. The array owns the moved buffer through a capsule, so nothing is copied.

py::array_t<float> to_array(Matrix&& matrix);
py::array_t<double> to_array(DoubleMatrix&& matrix);

template <class T>
py::array_t<T> to_array(std::vector<T>&& values, std::vector<py::ssize_t> shape) {
  auto* owned = new std::vector<T>(std::move(values));
  py::capsule owner(owned, [](void* pointer) { delete static_cast<std::vector<T>*>(pointer); });
  return py::array_t<T>(shape, owned->data(), owner);
}

template <class T>
py::array_t<T> to_array(std::vector<T>&& values) {
  const auto size = static_cast<py::ssize_t>(values.size());
  return to_array(std::move(values), {size});
}

/// A read-only array over `values`, which `owner` keeps alive (a member of a bound C++ object).
template <class T>
py::array_t<T> view_array(const std::vector<T>& values, std::vector<py::ssize_t> shape, py::handle owner) {
  py::array_t<T> array(shape, values.data(), owner);
  py::detail::array_proxy(array.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  return array;
}

// ---- numpy in. Each checks dtype and shape and names `argument` in its ValueError or TypeError.

/// A read-only int64 array over row indices, which `owner` keeps alive.
py::array_t<std::int64_t> index_view(const std::vector<std::size_t>& indices, py::handle owner);

/// A 2-D float32 or float64 array as an owning Matrix. Matrix owns its buffer, so this is one copy
/// (float32 C-contiguous: memcpy; otherwise one converting copy). `columns` 0 accepts any width.
Matrix to_matrix(py::handle array, const std::string& argument, std::size_t columns = 0);
/// Raises ValueError naming `argument` and the element when one of `rows` x `cols` floats is NaN or infinite.
void check_finite_rows(const float* data, std::size_t rows, std::size_t cols, const std::string& argument);
/// Same for a DoubleMatrix (float64 C-contiguous: memcpy; otherwise one converting copy).
DoubleMatrix to_double_matrix(py::handle array, const std::string& argument, std::size_t columns = 0);
/// A 1-D integer array or sequence, as class ids.
std::vector<std::int64_t> to_int64_vector(py::handle values, const std::string& argument);
/// A 1-D float array or sequence of finite numbers.
std::vector<double> to_double_vector(py::handle values, const std::string& argument);
std::vector<std::size_t> to_index_vector(py::handle values, const std::string& argument);

// ---- tables

/// True for a lepton.Table, a pandas DataFrame or a mapping of column name to 1-D array.
bool is_records(py::handle records);
/// Builds a Table from a Table, a pandas DataFrame or a mapping of column name to 1-D array.
/// Numbers become their shortest round-trip text, so a float64 column encodes exactly as the
/// same numbers read from CSV. NaN, None and pandas NA become missing cells.
Table to_table(py::handle records, const std::string& argument, const std::string& source);
/// Returns the Table behind `records` without a copy when it is a lepton.Table; otherwise builds one
/// into `storage` with to_table.
const Table& table_ref(py::handle records, std::optional<Table>& storage, const std::string& argument,
                       const std::string& source);
/// A table from a 2-D array and one name per column.
Table table_from_array(py::handle array, const std::vector<std::string>& column_names, const std::string& source);

// ---- callbacks and long jobs

/// A Python callable held by C++ code that may copy or destroy it without the GIL.
class PyCallable {
 public:
  explicit PyCallable(py::object function);
  const py::object& function() const { return *function_; }

 private:
  std::shared_ptr<py::object> function_;  // deleter takes the GIL
};

/// The progress callback stored in TrainerOptions and PipelineOptions. It takes the GIL for the call.
struct EpochCallback {
  PyCallable callable;
  void operator()(const EpochRecord& record) const;
};

std::function<void(const EpochRecord&)> to_epoch_callback(const py::object& function);
py::object from_epoch_callback(const std::function<void(const EpochRecord&)>& callback);

/// A flag that Python code (another thread, a callback) sets to stop training cleanly.
struct StopToken {
  std::atomic<bool> requested{false};
};

/// Collects the first Python exception raised by a callback on a worker thread and stops the job.
struct CallbackGuard {
  std::atomic<bool>* stop = nullptr;
  std::shared_ptr<std::exception_ptr> error = std::make_shared<std::exception_ptr>();

  /// Wraps `callback` so that a Python exception is recorded and requests a stop instead of unwinding
  /// through the trainer.
  std::function<void(const EpochRecord&)> wrap(std::function<void(const EpochRecord&)> callback) const;
};

/// Runs `job` on a worker thread with the GIL released, while this thread polls for Ctrl-C
/// (PyErr_CheckSignals) and for `token` every 50 ms. Either sets `stop`, which the job polls. The job
/// always runs to its end; then a KeyboardInterrupt wins, then a callback's exception, then the job's.
void run_interruptible(const std::function<void()>& job, std::atomic<bool>& stop, StopToken* token,
                       const CallbackGuard& guard);

}  // namespace lepton::python
