// The Python module `lepton`: the C++ SDK's own objects, registered one area at a time.
#include "bindings.hpp"
#include "lepton/version.hpp"

namespace {

// pybind11 2.10's py::enum_ defines the `value` property without a docstring; give every enum one.
void document_enum_values(pybind11::module_& m) {
  for (const auto& item : m.attr("__dict__").cast<pybind11::dict>()) {
    const pybind11::handle type = item.second;
    if (!PyType_Check(type.ptr()) || !pybind11::hasattr(type, "__members__")) {
      continue;
    }
    type.attr("__dict__")["value"].attr("__doc__") = "Integer value of the member.";
  }
}

}  // namespace

PYBIND11_MODULE(lepton, m) {
  m.doc() =
      "Lepton: requirements and data in, a trained, evaluated and explainable model out. The classes and "
      "functions are the C++ SDK's own (lepton::runtime and lepton::train); docs/python.md maps each C++ "
      "entry point to its Python name.";
  m.attr("__version__") = LEPTON_VERSION_STRING;

  // Exceptions first: the other areas' defaults and docstrings may raise while they register.
  lepton::python::register_support(m);
  lepton::python::register_data(m);
  lepton::python::register_crypto(m);
  lepton::python::register_privacy(m);
  lepton::python::register_predict(m);
  lepton::python::register_distributed_options(m);
  lepton::python::register_train(m);
  lepton::python::register_distributed(m);
  lepton::python::register_explain(m);

  document_enum_values(m);
}
