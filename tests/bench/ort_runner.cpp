#include "ort_runner.hpp"

#include <dlfcn.h>

#include <cstdint>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "lepton/error.hpp"

namespace lepton_bench {

namespace {

// Positions in struct OrtApi, counted in include/onnxruntime/core/session/onnxruntime_c_api.h of ONNX
// Runtime 1.13 (ORT_API_VERSION 13). The struct only grows at its end, so a newer library that accepts
// GetApi(13) keeps these positions.
constexpr std::uint32_t kApiVersion = 13;
enum ApiIndex : std::size_t {
  kCreateStatus = 0,
  kGetErrorMessage = 2,
  kCreateEnv = 3,
  kCreateSession = 7,
  kRun = 9,
  kCreateSessionOptions = 10,
  kSetSessionGraphOptimizationLevel = 23,
  kSetIntraOpNumThreads = 24,
  kSetInterOpNumThreads = 25,
  kCreateTensorWithDataAsOrtValue = 49,
  kCreateCpuMemoryInfo = 69,
  kReleaseEnv = 92,
  kReleaseStatus = 93,
  kReleaseMemoryInfo = 94,
  kReleaseSession = 95,
  kReleaseValue = 96,
  kReleaseSessionOptions = 100,
};

// Enum values of the same header.
constexpr int kLoggingLevelWarning = 2;
constexpr int kEnableAllOptimizations = 99;
constexpr int kElementTypeFloat = 1;
constexpr int kArenaAllocator = 1;
constexpr int kMemTypeDefault = 0;
constexpr int kErrorCodeFail = 1;

// Every handle is opaque here, and a null status means success.
using Status = void*;
using CreateStatusFn = Status (*)(int code, const char* message);
using GetErrorMessageFn = const char* (*)(const void* status);
using CreateEnvFn = Status (*)(int log_level, const char* log_id, void** env);
using CreateSessionFn = Status (*)(const void* env, const char* path, const void* options, void** session);
using RunFn = Status (*)(void* session, const void* run_options, const char* const* input_names,
                         const void* const* inputs, std::size_t input_count, const char* const* output_names,
                         std::size_t output_count, void** outputs);
using CreateSessionOptionsFn = Status (*)(void** options);
using SetIntOptionFn = Status (*)(void* options, int value);
using CreateTensorFn = Status (*)(const void* memory_info, void* data, std::size_t bytes, const std::int64_t* shape,
                                  std::size_t rank, int element_type, void** value);
using CreateCpuMemoryInfoFn = Status (*)(int allocator_type, int memory_type, void** memory_info);
using ReleaseFn = void (*)(void* handle);

// The two members of OrtApiBase, in the header's order.
struct ApiBase {
  const void* (*get_api)(std::uint32_t version);
  const char* (*get_version_string)();
};

}  // namespace

struct OrtRuntime::Impl {
  std::string path;
  void* library = nullptr;
  void* const* table = nullptr;
  std::string version;
  void* env = nullptr;
  void* memory_info = nullptr;

  template <typename Fn>
  Fn function(ApiIndex index) const {
    return reinterpret_cast<Fn>(table[index]);
  }

  // Throws lepton::Error naming `call` and ONNX Runtime's message when `status` is a failure.
  void check(Status status, const std::string& call) const {
    if (status == nullptr) return;
    const std::string message = function<GetErrorMessageFn>(kGetErrorMessage)(status);
    function<ReleaseFn>(kReleaseStatus)(status);
    throw lepton::Error(fmt::format("ONNX Runtime {} ({}): {} failed: {}", version, path, call, message));
  }

  ~Impl() {
    if (table != nullptr) {
      if (memory_info != nullptr) function<ReleaseFn>(kReleaseMemoryInfo)(memory_info);
      if (env != nullptr) function<ReleaseFn>(kReleaseEnv)(env);
    }
    // NOTE: the library stays loaded, because ONNX Runtime keeps thread-local state whose destructors
    // would run after dlclose.
  }
};

namespace {

// Opens the library and fills `impl.table` and `impl.version`.
void load_table(OrtRuntime::Impl& impl) {
  impl.library = dlopen(impl.path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (impl.library == nullptr) {
    throw lepton::IoError(fmt::format("ONNX Runtime library {}: dlopen failed: {}; pass the path of "
                                      "libonnxruntime.so.1 or unset LEPTON_ORT_LIBRARY",
                                      impl.path, dlerror()));
  }

  using GetApiBaseFn = const ApiBase* (*)();
  const auto get_api_base = reinterpret_cast<GetApiBaseFn>(dlsym(impl.library, "OrtGetApiBase"));
  if (get_api_base == nullptr) {
    throw lepton::IoError(fmt::format("ONNX Runtime library {}: symbol OrtGetApiBase not found; the file is "
                                      "not libonnxruntime",
                                      impl.path));
  }

  const ApiBase* base = get_api_base();
  impl.version = base->get_version_string();
  impl.table = static_cast<void* const*>(base->get_api(kApiVersion));
  if (impl.table == nullptr) {
    throw lepton::Error(fmt::format("ONNX Runtime {} ({}): GetApi({}) returned null; this library does not "
                                    "serve C API version {}",
                                    impl.version, impl.path, kApiVersion, kApiVersion));
  }
}

// Creates a status and reads its message back, which fails loudly when the table positions are wrong
// rather than calling a wrong function later.
void check_table(const OrtRuntime::Impl& impl) {
  const char* probe = "lepton probe";
  Status status = impl.function<CreateStatusFn>(kCreateStatus)(kErrorCodeFail, probe);
  const bool round_trip = status != nullptr &&
                          std::strcmp(impl.function<GetErrorMessageFn>(kGetErrorMessage)(status), probe) == 0;
  if (status != nullptr) impl.function<ReleaseFn>(kReleaseStatus)(status);
  if (!round_trip) {
    throw lepton::Error(fmt::format("ONNX Runtime {} ({}): the status round trip through the C API table "
                                    "failed, so the table positions in ort_runner.cpp do not fit this library",
                                    impl.version, impl.path));
  }
}

}  // namespace

OrtRuntime::OrtRuntime(const std::string& library_path) : impl_(std::make_unique<Impl>()) {
  impl_->path = library_path;
  load_table(*impl_);
  check_table(*impl_);

  impl_->check(impl_->function<CreateEnvFn>(kCreateEnv)(kLoggingLevelWarning, "lepton_bench", &impl_->env),
               "CreateEnv");
  impl_->check(impl_->function<CreateCpuMemoryInfoFn>(kCreateCpuMemoryInfo)(kArenaAllocator, kMemTypeDefault,
                                                                            &impl_->memory_info),
               "CreateCpuMemoryInfo");
}

OrtRuntime::~OrtRuntime() = default;
OrtRuntime::OrtRuntime(OrtRuntime&&) noexcept = default;
OrtRuntime& OrtRuntime::operator=(OrtRuntime&&) noexcept = default;

const std::string& OrtRuntime::version() const { return impl_->version; }

// An input tensor over the caller's rows and an output tensor over `probability`.
struct OrtSession::Binding {
  const OrtRuntime::Impl* runtime = nullptr;
  std::vector<float> probability;
  void* input = nullptr;
  void* output = nullptr;

  ~Binding() {
    if (input != nullptr) runtime->function<ReleaseFn>(kReleaseValue)(input);
    if (output != nullptr) runtime->function<ReleaseFn>(kReleaseValue)(output);
  }
};

OrtSession::OrtSession(const OrtRuntime& runtime, const std::string& model_path, std::size_t features,
                       std::size_t outputs)
    : runtime_(runtime.impl_.get()), features_(features), outputs_(outputs) {
  const OrtRuntime::Impl& api = *runtime_;
  void* options = nullptr;
  api.check(api.function<CreateSessionOptionsFn>(kCreateSessionOptions)(&options), "CreateSessionOptions");

  // One thread each, so the figures compare with Lepton's and LibTorch's single-thread runs.
  Status status = api.function<SetIntOptionFn>(kSetIntraOpNumThreads)(options, 1);
  if (status == nullptr) status = api.function<SetIntOptionFn>(kSetInterOpNumThreads)(options, 1);
  if (status == nullptr) {
    status = api.function<SetIntOptionFn>(kSetSessionGraphOptimizationLevel)(options, kEnableAllOptimizations);
  }
  if (status == nullptr) {
    status = api.function<CreateSessionFn>(kCreateSession)(api.env, model_path.c_str(), options, &session_);
  }
  api.function<ReleaseFn>(kReleaseSessionOptions)(options);
  api.check(status, fmt::format("loading {} (run tests/bench/export_onnx.py to write it)", model_path));
}

OrtSession::~OrtSession() {
  bindings_.clear();
  if (session_ != nullptr) runtime_->function<ReleaseFn>(kReleaseSession)(session_);
}

std::unique_ptr<OrtSession::Binding> OrtSession::make_binding(const float* data, std::size_t rows) const {
  const OrtRuntime::Impl& api = *runtime_;
  auto binding = std::make_unique<Binding>();
  binding->runtime = runtime_;
  binding->probability.assign(rows * outputs_, 0.0f);

  const auto create = api.function<CreateTensorFn>(kCreateTensorWithDataAsOrtValue);
  const std::int64_t input_shape[] = {static_cast<std::int64_t>(rows), static_cast<std::int64_t>(features_)};
  // ONNX Runtime takes a mutable pointer but only reads an input tensor.
  api.check(create(api.memory_info, const_cast<float*>(data), rows * features_ * sizeof(float), input_shape, 2,
                   kElementTypeFloat, &binding->input),
            "CreateTensorWithDataAsOrtValue (input)");
  const std::int64_t output_shape[] = {static_cast<std::int64_t>(rows), static_cast<std::int64_t>(outputs_)};
  api.check(create(api.memory_info, binding->probability.data(), binding->probability.size() * sizeof(float),
                   output_shape, 2, kElementTypeFloat, &binding->output),
            "CreateTensorWithDataAsOrtValue (output)");
  return binding;
}

std::size_t OrtSession::bind(const float* data, std::size_t rows) {
  bindings_.push_back(make_binding(data, rows));
  return bindings_.size() - 1;
}

void OrtSession::run(std::size_t binding) {
  static const char* const input_names[] = {"input"};
  static const char* const output_names[] = {"probability"};
  Binding& bound = *bindings_[binding];
  const void* inputs[] = {bound.input};
  runtime_->check(
      runtime_->function<RunFn>(kRun)(session_, nullptr, input_names, inputs, 1, output_names, 1, &bound.output),
      "Run");
}

const float* OrtSession::output(std::size_t binding) const { return bindings_[binding]->probability.data(); }

std::vector<float> OrtSession::predict(const float* data, std::size_t rows) {
  bindings_.push_back(make_binding(data, rows));
  const std::size_t id = bindings_.size() - 1;
  run(id);
  std::vector<float> probability = std::move(bindings_[id]->probability);
  bindings_.pop_back();
  return probability;
}

}  // namespace lepton_bench
