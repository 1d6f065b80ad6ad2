#pragma once
// ONNX Runtime's C API, loaded with dlopen so that bench_inference builds and runs without ONNX Runtime
// and without its C header. Only the benchmark uses this; it is not part of Lepton.

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace lepton_bench {

/// A loaded libonnxruntime.so and its C API function table, plus one OrtEnv. Move-only.
class OrtRuntime {
 public:
  /// Loads the library at `library_path` and checks its function table with a status round trip.
  /// Throws lepton::IoError when the library or OrtGetApiBase is missing, lepton::Error when the
  /// library rejects the API version or the round trip fails.
  explicit OrtRuntime(const std::string& library_path);
  ~OrtRuntime();
  OrtRuntime(OrtRuntime&&) noexcept;
  OrtRuntime& operator=(OrtRuntime&&) noexcept;

  /// The version string that the library reports, such as "1.30.0".
  const std::string& version() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;

  friend class OrtSession;
};

/// One ONNX model in a session with one intra-op and one inter-op thread and full graph optimization.
/// The graph has input "input" [N, features] and output "probability" [N, outputs], both float32, as
/// tests/bench/export_onnx.py writes them.
class OrtSession {
 public:
  /// Throws lepton::Error with ONNX Runtime's message when the model cannot be loaded.
  OrtSession(const OrtRuntime& runtime, const std::string& model_path, std::size_t features, std::size_t outputs);
  ~OrtSession();
  OrtSession(const OrtSession&) = delete;
  OrtSession& operator=(const OrtSession&) = delete;

  /// Wraps `rows` rows at `data` as an input tensor and allocates the output tensor once, so that
  /// run() only calls OrtApi::Run. `data` is not copied and must outlive the session. Returns the
  /// binding's id for run() and output().
  std::size_t bind(const float* data, std::size_t rows);

  /// Runs one bound batch. Throws lepton::Error with ONNX Runtime's message on failure.
  void run(std::size_t binding);

  /// Returns the probabilities written by the last run of `binding`, row-major [rows, outputs].
  const float* output(std::size_t binding) const;

  /// Runs `rows` rows at `data` once, without keeping the binding, and returns [rows, outputs].
  std::vector<float> predict(const float* data, std::size_t rows);

 private:
  struct Binding;

  const OrtRuntime::Impl* runtime_;
  void* session_ = nullptr;
  std::size_t features_;
  std::size_t outputs_;
  std::vector<std::unique_ptr<Binding>> bindings_;

  std::unique_ptr<Binding> make_binding(const float* data, std::size_t rows) const;
};

}  // namespace lepton_bench
