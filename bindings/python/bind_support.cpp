// Exceptions, file helpers and the log sink.
//
// Exception classes keep the C++ hierarchy and also derive from the built-in class that Python code
// catches: InvalidArgument (and ParseError, ValidationError, ConstraintError) from ValueError, IoError from
// OSError, FileNotFound from FileNotFoundError, InternalError and DistributedError from RuntimeError. lepton.Error is the
// common base. A plain lepton::Error (the pipeline's "training was interrupted") is raised as
// lepton.OperationError, a RuntimeError.
#include <fmt/format.h>

#include "bindings.hpp"
#include "lepton/distributed.hpp"
#include "lepton/error.hpp"
#include "lepton/io.hpp"
#include "lepton/log.hpp"

namespace lepton::python {
namespace {

struct ExceptionTypes {
  py::handle error, invalid_argument, parse_error, validation_error, constraint_error, io_error, file_not_found,
      internal_error, distributed_error, operation_error;
};

// Filled once at import and never released: the interpreter owns the classes through the module.
ExceptionTypes g_types;

py::handle make_exception(py::module_& m, const char* name, std::initializer_list<py::handle> bases,
                          const char* doc) {
  py::tuple base_tuple(bases.size());
  std::size_t i = 0;
  for (py::handle base : bases) base_tuple[i++] = py::reinterpret_borrow<py::object>(base);
  const std::string qualified = std::string("lepton.") + name;
  PyObject* type = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, base_tuple.ptr(), nullptr);
  if (type == nullptr) throw py::error_already_set();
  m.add_object(name, py::handle(type));
  return type;
}

void raise(py::handle type, const char* message) {
  PyErr_SetString(type.ptr(), message);
}

void raise_validation_error(const ValidationError& error) {
  py::object instance = g_types.validation_error(error.what());
  instance.attr("source") = error.source();
  instance.attr("problems") = py::cast(error.problems());
  PyErr_SetObject(g_types.validation_error.ptr(), instance.ptr());
}

void translate(std::exception_ptr pointer) {
  // Most derived first.
  try {
    std::rethrow_exception(pointer);
  } catch (const ValidationError& e) {
    raise_validation_error(e);
  } catch (const ConstraintError& e) {
    raise(g_types.constraint_error, e.what());
  } catch (const ParseError& e) {
    raise(g_types.parse_error, e.what());
  } catch (const InvalidArgument& e) {
    raise(g_types.invalid_argument, e.what());
  } catch (const FileNotFound& e) {
    raise(g_types.file_not_found, e.what());
  } catch (const IoError& e) {
    raise(g_types.io_error, e.what());
  } catch (const InternalError& e) {
    raise(g_types.internal_error, e.what());
  } catch (const DistributedError& e) {
    raise(g_types.distributed_error, e.what());
  } catch (const Error& e) {
    raise(g_types.operation_error, e.what());
  }
}

void register_exceptions(py::module_& m) {
  py::class_<ValidationProblem>(m, "ValidationProblem", "One problem found in a requirements document.")
      .def_readonly("path", &ValidationProblem::path, "JSON path such as '$.constraints.max_model_bytes'.")
      .def_readonly("value", &ValidationProblem::value,
                    "The offending value as JSON text; empty when the key is missing.")
      .def_readonly("message", &ValidationProblem::message, "What is wrong and what is allowed.")
      .def("__repr__", [](const ValidationProblem& p) {
        return fmt::format("ValidationProblem(path={}, value={}, message={})", py::repr(py::str(p.path)).cast<std::string>(),
                           py::repr(py::str(p.value)).cast<std::string>(),
                           py::repr(py::str(p.message)).cast<std::string>());
      });

  const py::handle exception = PyExc_Exception;
  g_types.error = make_exception(m, "Error", {exception}, "Base of every exception that Lepton raises on purpose.");
  g_types.invalid_argument = make_exception(m, "InvalidArgument", {g_types.error, PyExc_ValueError},
                                            "An argument or configuration that is not allowed.");
  g_types.parse_error = make_exception(m, "ParseError", {g_types.invalid_argument},
                                       "Text (CSV, JSON, model file) that does not follow its format; the message "
                                       "names file:line:column or the JSON path.");
  g_types.validation_error = make_exception(
      m, "ValidationError", {g_types.invalid_argument},
      "A requirements document with problems. Attributes: source (str) and problems (list of ValidationProblem).");
  g_types.constraint_error = make_exception(m, "ConstraintError", {g_types.invalid_argument},
                                            "Requirements whose constraints no configuration can meet.");
  g_types.io_error = make_exception(m, "IoError", {g_types.error, PyExc_OSError},
                                    "A file or folder that could not be opened, read, written or renamed.");
  g_types.file_not_found = make_exception(m, "FileNotFound", {g_types.io_error, PyExc_FileNotFoundError},
                                          "A file that the caller named does not exist.");
  g_types.internal_error = make_exception(m, "InternalError", {g_types.error, PyExc_RuntimeError},
                                          "A broken internal invariant: a bug in Lepton, not in the input.");
  g_types.distributed_error = make_exception(m, "DistributedError", {g_types.error, PyExc_RuntimeError},
                                             "A rendezvous, a collective or a peer failed: a rank died, hung past "
                                             "the timeout, or the group started with inconsistent settings.");
  g_types.operation_error = make_exception(m, "OperationError", {g_types.error, PyExc_RuntimeError},
                                           "An operation that failed for another reason, such as interrupted "
                                           "training inside run_pipeline.");
  py::register_exception_translator(&translate);
}

void register_io(py::module_& m) {
  m.def(
      "read_file", [](const std::string& path) { return py::bytes(read_file(path)); }, py::arg("path"),
      "Read a whole file as bytes. Raises FileNotFound or IoError naming the path.");
  m.def(
      "write_file_atomically",
      [](const std::string& path, const py::bytes& data) { write_file_atomically(path, std::string(data)); },
      py::arg("path"), py::arg("data"),
      "Write bytes to a temporary file in the same folder, then rename it onto path, so that readers never see "
      "a partial file. Raises IoError naming the path.");
  m.def(
      "sha256_hex", [](const py::bytes& data) { return sha256_hex(std::string(data)); }, py::arg("data"),
      "Return the lower-case hex SHA-256 of bytes.");
}

void register_log(py::module_& m) {
  py::enum_<LogLevel>(m, "LogLevel", "Minimum level of messages that reach the log sink.")
      .value("Debug", LogLevel::Debug)
      .value("Info", LogLevel::Info)
      .value("Warning", LogLevel::Warning)
      .value("Error", LogLevel::Error)
      .value("Off", LogLevel::Off);

  m.def(
      "set_log_sink",
      [](const py::object& sink) {
        if (sink.is_none()) {
          set_log_sink({});
          return;
        }
        if (!PyCallable_Check(sink.ptr())) {
          throw py::type_error("sink: expected a callable (level: LogLevel, message: str) or None");
        }
        // Messages come from any thread, including training threads that do not hold the GIL.
        PyCallable callable(sink);
        set_log_sink([callable](LogLevel level, std::string_view message) {
          py::gil_scoped_acquire gil;
          try {
            callable.function()(level, py::str(message.data(), message.size()));
          } catch (py::error_already_set& error) {
            // A sink must not unwind through library code; report the error like an unraisable one.
            error.discard_as_unraisable("lepton log sink");
          }
        });
      },
      py::arg("sink"),
      "Replace the process-wide log sink with a callable(level, message), called from the thread that logs "
      "(with the GIL). An exception in the sink is printed as unraisable, not raised. None restores the "
      "silent default.");
  m.def("set_log_level", &set_log_level, py::arg("level"),
        "Set the minimum LogLevel that reaches the sink (default LogLevel.Off).");
  m.def("log_level", &log_level, "Return the current minimum LogLevel.");
  m.def(
      "log", [](LogLevel level, const std::string& message) { log(level, message); }, py::arg("level"),
      py::arg("message"), "Send one message to the sink if level passes the current threshold.");
  m.def(
      "use_stderr_log_sink", []() { set_log_sink(stderr_log_sink()); },
      "Install the sink that writes '[lepton] level: message' lines to stderr (C++ stderr_log_sink()).");

  // A Python sink must not outlive the interpreter: the C++ sink is a static that is destroyed later.
  py::module_::import("atexit").attr("register")(py::cpp_function([]() { set_log_sink({}); }));
}

}  // namespace

void register_support(py::module_& m) {
  register_exceptions(m);
  register_io(m);
  register_log(m);
}

}  // namespace lepton::python
