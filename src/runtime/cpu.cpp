// CPU feature detection and the choice of the kernel level, once per process.

#include <cstdlib>

#include <cpuinfo.h>
#include <fmt/format.h>

#include "lepton/error.hpp"
#include "lepton/log.hpp"
#include "runtime/kernels.hpp"

namespace lepton {

namespace {

SimdLevel detect() {
  if (!cpuinfo_initialize()) {
    log(LogLevel::Warning, "cpuinfo_initialize() failed, so the predictor uses the scalar kernels");
    return SimdLevel::Scalar;
  }
  if (cpuinfo_has_x86_avx512f() && cpuinfo_has_x86_avx512bw() && cpuinfo_has_x86_avx512vl() &&
      cpuinfo_has_x86_avx512vnni()) {
    return SimdLevel::Avx512;
  }
  if (cpuinfo_has_x86_avx2() && cpuinfo_has_x86_fma3()) {
    return SimdLevel::Avx2;
  }
  return SimdLevel::Scalar;
}

SimdLevel choose_default() {
  const SimdLevel detected = detected_simd_level();
  const char* requested = std::getenv("LEPTON_SIMD");
  if (requested == nullptr || *requested == '\0') {
    log(LogLevel::Info, fmt::format("SIMD level {} (detected)", to_string(detected)));
    return detected;
  }

  SimdLevel level = detected;
  if (!detail::parse_simd_level(requested, level)) {
    log(LogLevel::Warning, fmt::format("LEPTON_SIMD={} is not one of scalar, avx2, avx512; using the detected "
                                       "level {}",
                                       requested, to_string(detected)));
    return detected;
  }
  if (level > detected) {
    log(LogLevel::Warning, fmt::format("LEPTON_SIMD={} is above what this CPU supports; using the detected "
                                       "level {}",
                                       requested, to_string(detected)));
    return detected;
  }
  log(LogLevel::Info, fmt::format("SIMD level {} (LEPTON_SIMD; detected {})", to_string(level), to_string(detected)));
  return level;
}

}  // namespace

std::string to_string(SimdLevel level) {
  switch (level) {
    case SimdLevel::Scalar: return "scalar";
    case SimdLevel::Avx2: return "avx2";
    case SimdLevel::Avx512: return "avx512";
  }
  throw InternalError(fmt::format("to_string: SimdLevel value {} is out of range", static_cast<int>(level)));
}

SimdLevel detected_simd_level() {
  static const SimdLevel level = detect();
  return level;
}

SimdLevel default_simd_level() {
  static const SimdLevel level = choose_default();
  return level;
}

namespace detail {

const KernelTable& kernels_for(SimdLevel level) {
  if (level > detected_simd_level()) {
    throw InvalidArgument(fmt::format("SIMD level {} was requested, but this CPU supports at most {}; request "
                                      "a lower level",
                                      to_string(level), to_string(detected_simd_level())));
  }
  switch (level) {
    case SimdLevel::Scalar: return scalar_kernels();
    case SimdLevel::Avx2: return avx2_kernels();
    case SimdLevel::Avx512: return avx512_kernels();
  }
  throw InternalError(fmt::format("kernels_for: SimdLevel value {} is out of range", static_cast<int>(level)));
}

}  // namespace detail

}  // namespace lepton
