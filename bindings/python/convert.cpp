// Conversions at the Python boundary. Every check names the argument, the value at fault and the fix.
#include <chrono>
#include <cmath>
#include <cstring>
#include <future>
#include <limits>

#include <fmt/format.h>

#include "bindings.hpp"
#include "lepton/error.hpp"

namespace lepton::python {

// ---- JSON

nlohmann::json to_json(py::handle value, const std::string& argument) {
  if (value.is_none()) return nullptr;
  if (py::isinstance<py::bool_>(value)) return value.cast<bool>();

  if (py::isinstance<py::int_>(value) || py::hasattr(value, "__index__")) {
    int overflow = 0;
    py::int_ number = py::reinterpret_steal<py::int_>(PyNumber_Index(value.ptr()));
    if (!number) throw py::error_already_set();
    const long long signed_value = PyLong_AsLongLongAndOverflow(number.ptr(), &overflow);
    // nlohmann's parser stores non-negative integers as unsigned, and readers may check for that type.
    if (overflow == 0 && signed_value >= 0) return static_cast<std::uint64_t>(signed_value);
    if (overflow == 0) return static_cast<std::int64_t>(signed_value);
    const unsigned long long unsigned_value = PyLong_AsUnsignedLongLong(number.ptr());
    if (PyErr_Occurred()) {
      PyErr_Clear();
      throw py::value_error(fmt::format("{}: the integer {} does not fit in 64 bits; use a value in "
                                        "[-2^63, 2^64 - 1]",
                                        argument, py::str(value).cast<std::string>()));
    }
    return static_cast<std::uint64_t>(unsigned_value);
  }
  if (py::isinstance<py::float_>(value)) return value.cast<double>();
  if (py::isinstance<py::str>(value)) return value.cast<std::string>();

  if (py::isinstance<py::dict>(value)) {
    nlohmann::json object = nlohmann::json::object();
    for (const auto& item : value.cast<py::dict>()) {
      if (!py::isinstance<py::str>(item.first)) {
        throw py::type_error(fmt::format("{}: JSON object keys must be str, got {} ({})", argument,
                                         py::repr(item.first).cast<std::string>(),
                                         py::type::of(item.first).attr("__name__").cast<std::string>()));
      }
      const std::string key = item.first.cast<std::string>();
      object[key] = to_json(item.second, argument + "['" + key + "']");
    }
    return object;
  }
  if (py::isinstance<py::list>(value) || py::isinstance<py::tuple>(value)) {
    nlohmann::json array = nlohmann::json::array();
    std::size_t index = 0;
    for (const auto& item : value) array.push_back(to_json(item, fmt::format("{}[{}]", argument, index++)));
    return array;
  }
  if (py::hasattr(value, "__float__") && !py::isinstance<py::bytes>(value)) {
    const double number = PyFloat_AsDouble(value.ptr());  // numpy floating scalars
    if (PyErr_Occurred()) throw py::error_already_set();
    return number;
  }
  throw py::type_error(fmt::format("{}: {} is not JSON data; use dict, list, str, int, float, bool or None",
                                   argument, py::type::of(value).attr("__name__").cast<std::string>()));
}

py::object from_json(const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded:
      return py::none();
    case nlohmann::json::value_t::boolean:
      return py::bool_(value.get<bool>());
    case nlohmann::json::value_t::number_integer:
      return py::int_(value.get<std::int64_t>());
    case nlohmann::json::value_t::number_unsigned:
      return py::int_(value.get<std::uint64_t>());
    case nlohmann::json::value_t::number_float:
      return py::float_(value.get<double>());
    case nlohmann::json::value_t::string:
      return py::str(value.get_ref<const std::string&>());
    case nlohmann::json::value_t::binary:
      return py::bytes(std::string(value.get_binary().begin(), value.get_binary().end()));
    case nlohmann::json::value_t::array: {
      py::list list;
      for (const auto& item : value) list.append(from_json(item));
      return list;
    }
    case nlohmann::json::value_t::object: {
      py::dict dict;
      for (const auto& item : value.items()) dict[py::str(item.key())] = from_json(item.value());
      return dict;
    }
  }
  return py::none();
}

// ---- numpy out

py::array_t<float> to_array(Matrix&& matrix) {
  const auto rows = static_cast<py::ssize_t>(matrix.rows);
  const auto cols = static_cast<py::ssize_t>(matrix.cols);
  return to_array(std::move(matrix.data), {rows, cols});
}

py::array_t<double> to_array(DoubleMatrix&& matrix) {
  const auto rows = static_cast<py::ssize_t>(matrix.rows);
  const auto cols = static_cast<py::ssize_t>(matrix.cols);
  return to_array(std::move(matrix.data), {rows, cols});
}

// ---- numpy in

namespace {

std::string describe_dtype(const py::array& array) { return py::str(array.dtype()).cast<std::string>(); }

std::string describe_shape(const py::array& array) {
  std::string text = "(";
  for (py::ssize_t axis = 0; axis < array.ndim(); ++axis) {
    text += fmt::format("{}{}", axis == 0 ? "" : ", ", array.shape(axis));
  }
  return text + (array.ndim() == 1 ? ",)" : ")");
}

// Rejects what is not a numpy array, so that a list of lists is not silently reinterpreted.
py::array require_array(py::handle value, const std::string& argument) {
  if (!py::isinstance<py::array>(value)) {
    throw py::type_error(fmt::format("{}: expected a numpy.ndarray, got {}; wrap it with numpy.asarray(...)",
                                     argument, py::type::of(value).attr("__name__").cast<std::string>()));
  }
  return py::reinterpret_borrow<py::array>(value);
}

py::array require_float_matrix(py::handle value, const std::string& argument, std::size_t columns) {
  py::array array = require_array(value, argument);
  const char kind = array.dtype().kind();
  if (kind != 'f' || (array.itemsize() != 4 && array.itemsize() != 8)) {
    throw py::type_error(fmt::format("{}: expected dtype float32 or float64, got {}; convert with "
                                     ".astype(numpy.float32)",
                                     argument, describe_dtype(array)));
  }
  if (array.ndim() != 2) {
    throw py::value_error(fmt::format("{}: expected a 2-D array [rows, columns], got shape {}; use "
                                      ".reshape(1, -1) for a single row",
                                      argument, describe_shape(array)));
  }
  if (columns != 0 && static_cast<std::size_t>(array.shape(1)) != columns) {
    throw py::value_error(fmt::format("{}: expected {} columns (the model's encoded width), got shape {}", argument,
                                      columns, describe_shape(array)));
  }
  return array;
}

template <class Target>
void check_finite(const Target* data, std::size_t count, std::size_t cols, const std::string& argument) {
  for (std::size_t i = 0; i < count; ++i) {
    if (!std::isfinite(data[i])) {
      throw py::value_error(fmt::format("{}: element [{}, {}] is {}; encoded rows must be finite, so impute "
                                        "missing values first (or pass raw records to use the stored imputation)",
                                        argument, i / cols, i % cols, data[i]));
    }
  }
}

// Copies `array` into `data` as Target, converting dtype and layout in one pass.
template <class Target>
void copy_into(const py::array& array, std::vector<Target>& data) {
  using Exact = py::array_t<Target, py::array::c_style>;
  if (py::isinstance<Exact>(array)) {
    std::memcpy(data.data(), array.data(), data.size() * sizeof(Target));
    return;
  }
  // numpy converts strided or other-dtype input into a fresh C-contiguous array of Target: one copy.
  using Converted = py::array_t<Target, py::array::c_style | py::array::forcecast>;
  const Converted converted = Converted::ensure(array);
  if (!converted) {
    throw py::type_error(fmt::format("cannot convert an array of dtype {} to {}", describe_dtype(array),
                                     py::str(py::dtype::of<Target>()).cast<std::string>()));
  }
  std::memcpy(data.data(), converted.data(), data.size() * sizeof(Target));
}

}  // namespace

void check_finite_rows(const float* data, std::size_t rows, std::size_t cols, const std::string& argument) {
  check_finite(data, rows * cols, std::max<std::size_t>(cols, 1), argument);
}

Matrix to_matrix(py::handle value, const std::string& argument, std::size_t columns) {
  const py::array array = require_float_matrix(value, argument, columns);
  Matrix matrix(static_cast<std::size_t>(array.shape(0)), static_cast<std::size_t>(array.shape(1)));
  copy_into(array, matrix.data);
  check_finite(matrix.data.data(), matrix.data.size(), std::max<std::size_t>(matrix.cols, 1), argument);
  return matrix;
}

DoubleMatrix to_double_matrix(py::handle value, const std::string& argument, std::size_t columns) {
  const py::array array = require_float_matrix(value, argument, columns);
  DoubleMatrix matrix(static_cast<std::size_t>(array.shape(0)), static_cast<std::size_t>(array.shape(1)));
  copy_into(array, matrix.data);
  check_finite(matrix.data.data(), matrix.data.size(), std::max<std::size_t>(matrix.cols, 1), argument);
  return matrix;
}

namespace {

py::array require_vector(py::handle value, const std::string& argument) {
  py::array array = py::isinstance<py::array>(value) ? py::reinterpret_borrow<py::array>(value)
                                                     : py::array(py::module_::import("numpy").attr("asarray")(value));
  if (array.ndim() != 1) {
    throw py::value_error(fmt::format("{}: expected a 1-D array, got shape {}; use .ravel() for a column vector",
                                      argument, describe_shape(array)));
  }
  return array;
}

}  // namespace

std::vector<std::int64_t> to_int64_vector(py::handle value, const std::string& argument) {
  const py::array array = require_vector(value, argument);
  const char kind = array.dtype().kind();
  if (kind != 'i' && kind != 'u' && kind != 'b') {
    throw py::type_error(fmt::format("{}: expected integer class ids, got dtype {}; convert with "
                                     ".astype(numpy.int64)",
                                     argument, describe_dtype(array)));
  }
  std::vector<std::int64_t> values(static_cast<std::size_t>(array.shape(0)));
  copy_into(array, values);
  return values;
}

std::vector<double> to_double_vector(py::handle value, const std::string& argument) {
  const py::array array = require_vector(value, argument);
  const char kind = array.dtype().kind();
  if (kind != 'f' && kind != 'i' && kind != 'u') {
    throw py::type_error(fmt::format("{}: expected numbers, got dtype {}; convert with .astype(numpy.float64)",
                                     argument, describe_dtype(array)));
  }
  std::vector<double> values(static_cast<std::size_t>(array.shape(0)));
  copy_into(array, values);
  check_finite(values.data(), values.size(), 1, argument);
  return values;
}

std::vector<std::size_t> to_index_vector(py::handle value, const std::string& argument) {
  const std::vector<std::int64_t> signed_values = to_int64_vector(value, argument);
  std::vector<std::size_t> values;
  values.reserve(signed_values.size());
  for (std::size_t i = 0; i < signed_values.size(); ++i) {
    if (signed_values[i] < 0) {
      throw py::value_error(fmt::format("{}[{}] is {}; row indices must be non-negative", argument, i,
                                        signed_values[i]));
    }
    values.push_back(static_cast<std::size_t>(signed_values[i]));
  }
  return values;
}

// ---- tables

namespace {

bool is_data_frame(py::handle value) {
  const std::string module = py::type::of(value).attr("__module__").cast<std::string>();
  return module.rfind("pandas", 0) == 0 && py::hasattr(value, "columns") && py::hasattr(value, "dtypes");
}

// Formats one 1-D array as cells. `missing` (may be empty) marks cells to leave empty.
std::vector<std::string> format_column(const py::array& column, const std::vector<bool>& missing,
                                       const std::string& argument) {
  const std::size_t rows = static_cast<std::size_t>(column.shape(0));
  std::vector<std::string> cells(rows);
  const char kind = column.dtype().kind();

  if (kind == 'f') {
    // Shortest round-trip text of the double value: the Preprocessor parses it back to the same double.
    // NOTE: formatting and parsing cost about 0.2 us per cell; Table stores text only.
    const auto values = py::array_t<double, py::array::forcecast>::ensure(column);
    const auto view = values.unchecked<1>();
    for (std::size_t r = 0; r < rows; ++r) {
      const double value = view(static_cast<py::ssize_t>(r));
      if (std::isnan(value) || (!missing.empty() && missing[r])) continue;
      if (!std::isfinite(value)) {
        throw py::value_error(fmt::format("{}: row {} is {}; cells must be finite or NaN (missing)", argument, r,
                                          value));
      }
      cells[r] = fmt::format("{}", value);
    }
    return cells;
  }
  if (kind == 'i' || kind == 'u' || kind == 'b') {
    const auto values = py::array_t<std::int64_t, py::array::forcecast>::ensure(column);
    const auto view = values.unchecked<1>();
    for (std::size_t r = 0; r < rows; ++r) {
      if (!missing.empty() && missing[r]) continue;
      cells[r] = fmt::format("{}", view(static_cast<py::ssize_t>(r)));
    }
    return cells;
  }

  // Strings, objects, categoricals and dates: str(value) per cell.
  for (std::size_t r = 0; r < rows; ++r) {
    if (!missing.empty() && missing[r]) continue;
    py::object item = column[py::int_(r)];
    if (item.is_none()) continue;
    if (py::isinstance<py::float_>(item) && std::isnan(item.cast<double>())) continue;
    cells[r] = py::str(item).cast<std::string>();
  }
  return cells;
}

std::vector<bool> missing_mask(py::handle series) {
  const py::array mask = py::array(series.attr("isna")().attr("to_numpy")());
  const auto values = py::array_t<bool, py::array::forcecast>::ensure(mask);
  std::vector<bool> result(static_cast<std::size_t>(values.shape(0)));
  const auto view = values.unchecked<1>();
  for (std::size_t r = 0; r < result.size(); ++r) result[r] = view(static_cast<py::ssize_t>(r));
  return result;
}

Table table_from_data_frame(py::handle frame, const std::string& argument, const std::string& source) {
  std::vector<std::string> names;
  std::vector<std::vector<std::string>> columns;
  const py::object column_labels = frame.attr("columns");
  const py::ssize_t count = py::len(column_labels);
  for (py::ssize_t c = 0; c < count; ++c) {
    const std::string name = py::str(column_labels[py::int_(c)]).cast<std::string>();
    const py::object series = frame.attr("iloc")[py::make_tuple(py::slice(py::none(), py::none(), py::none()),
                                                                py::int_(c))];
    // Categorical and nullable dtypes convert to object arrays here; numpy dtypes stay as they are.
    const py::array values = py::array(series.attr("to_numpy")());
    names.push_back(name);
    columns.push_back(format_column(values, missing_mask(series), argument + "['" + name + "']"));
  }
  return Table(std::move(names), std::move(columns), source);
}

Table table_from_mapping(py::handle mapping, const std::string& argument, const std::string& source) {
  std::vector<std::string> names;
  std::vector<std::vector<std::string>> columns;
  const py::object numpy = py::module_::import("numpy");
  for (const auto& item : mapping.cast<py::dict>()) {
    const std::string name = py::str(item.first).cast<std::string>();
    const std::string column_argument = argument + "['" + name + "']";
    const py::array values = py::array(numpy.attr("asarray")(item.second));
    if (values.ndim() != 1) {
      throw py::value_error(fmt::format("{}: expected a 1-D column, got {} dimensions", column_argument,
                                        values.ndim()));
    }
    names.push_back(name);
    columns.push_back(format_column(values, {}, column_argument));
  }
  return Table(std::move(names), std::move(columns), source);
}

}  // namespace

bool is_records(py::handle records) {
  return py::isinstance<Table>(records) || is_data_frame(records) || py::isinstance<py::dict>(records);
}

Table to_table(py::handle records, const std::string& argument, const std::string& source) {
  if (py::isinstance<Table>(records)) return records.cast<Table>();
  if (is_data_frame(records)) return table_from_data_frame(records, argument, source);
  if (py::isinstance<py::dict>(records)) return table_from_mapping(records, argument, source);
  throw py::type_error(fmt::format("{}: expected a lepton.Table, a pandas.DataFrame or a dict of columns, got {}",
                                   argument, py::type::of(records).attr("__name__").cast<std::string>()));
}

const Table& table_ref(py::handle records, std::optional<Table>& storage, const std::string& argument,
                       const std::string& source) {
  if (py::isinstance<Table>(records)) return records.cast<const Table&>();
  storage.emplace(to_table(records, argument, source));
  return *storage;
}

Table table_from_array(py::handle value, const std::vector<std::string>& column_names, const std::string& source) {
  const py::array array = require_array(value, "array");
  if (array.ndim() != 2) {
    throw py::value_error(fmt::format("array: expected a 2-D array [rows, columns], got shape {}",
                                      describe_shape(array)));
  }
  const auto cols = static_cast<std::size_t>(array.shape(1));
  if (column_names.size() != cols) {
    throw py::value_error(fmt::format("column_names: got {} names for an array of shape {}; pass one name per "
                                      "column",
                                      column_names.size(), describe_shape(array)));
  }
  std::vector<std::vector<std::string>> columns;
  for (std::size_t c = 0; c < cols; ++c) {
    const py::array column = array[py::make_tuple(py::slice(py::none(), py::none(), py::none()), py::int_(c))];
    columns.push_back(format_column(column, {}, fmt::format("array[:, {}]", c)));
  }
  return Table(column_names, std::move(columns), source);
}

// ---- callbacks

PyCallable::PyCallable(py::object function)
    : function_(new py::object(std::move(function)), [](py::object* pointer) {
        py::gil_scoped_acquire gil;
        delete pointer;
      }) {}

void EpochCallback::operator()(const EpochRecord& record) const {
  py::gil_scoped_acquire gil;
  callable.function()(record);
}

std::function<void(const EpochRecord&)> to_epoch_callback(const py::object& function) {
  if (function.is_none()) return {};
  if (!PyCallable_Check(function.ptr())) {
    throw py::type_error(fmt::format("on_epoch: expected a callable taking one EpochRecord, got {}",
                                     py::type::of(function).attr("__name__").cast<std::string>()));
  }
  return EpochCallback{PyCallable(function)};
}

py::object from_epoch_callback(const std::function<void(const EpochRecord&)>& callback) {
  if (!callback) return py::none();
  if (const auto* python = callback.target<EpochCallback>()) return python->callable.function();
  return py::cpp_function(callback);
}

std::function<void(const EpochRecord&)> CallbackGuard::wrap(std::function<void(const EpochRecord&)> callback) const {
  if (!callback) return {};
  return [callback = std::move(callback), stop = stop, error = error](const EpochRecord& record) {
    if (*error) return;  // an earlier call failed; the job is stopping
    try {
      callback(record);
    } catch (py::error_already_set&) {
      *error = std::current_exception();
      stop->store(true);
    }
  };
}

void run_interruptible(const std::function<void()>& job, std::atomic<bool>& stop, StopToken* token,
                       const CallbackGuard& guard) {
  std::exception_ptr interrupt;
  std::future<void> done;
  {
    py::gil_scoped_release release;
    done = std::async(std::launch::async, job);
    while (done.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready) {
      if (token != nullptr && token->requested.load()) stop.store(true);
      if (interrupt) continue;

      py::gil_scoped_acquire gil;
      if (PyErr_CheckSignals() != 0) {
        try {
          throw py::error_already_set();
        } catch (py::error_already_set&) {
          interrupt = std::current_exception();
        }
        stop.store(true);
      }
    }
  }

  // A Ctrl-C that came after the last poll still interrupts, because a short job can finish between polls.
  if (!interrupt && PyErr_CheckSignals() != 0) {
    try {
      throw py::error_already_set();
    } catch (py::error_already_set&) {
      interrupt = std::current_exception();
    }
  }

  if (interrupt) {
    try {
      done.get();
    } catch (...) {
      // The job's own "interrupted" error is superseded by the KeyboardInterrupt that caused it.
    }
    std::rethrow_exception(interrupt);
  }
  if (*guard.error) {
    try {
      done.get();
    } catch (...) {
      // Same: the callback's exception is the cause.
    }
    std::rethrow_exception(*guard.error);
  }
  done.get();
}

}  // namespace lepton::python
