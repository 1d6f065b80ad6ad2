// libFuzzer target for the model file parser. Any input must either parse or raise lepton::Error; a crash,
// a sanitizer report, an uncaught exception or a huge allocation is a bug. Seed corpus: the golden model
// files in tests/golden.
//
// The harness writes the correct checksum into every input of at least 64 bytes before parsing. Otherwise
// almost every mutation would stop at the checksum check, and the fuzzer would never reach the header and
// tensor validation behind it. The unit tests cover the checksum check itself.

#include <cstddef>
#include <cstdint>
#include <string>

#include "lepton/error.hpp"
#include "lepton/model.hpp"
#include "lepton/predictor.hpp"
#include "runtime/artifact_detail.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  if (bytes.size() >= lepton::detail::kArtifactPrefixBytes) {
    const auto checksum = lepton::detail::artifact_checksum(bytes);
    bytes.replace(lepton::detail::kChecksumOffset, checksum.size(), reinterpret_cast<const char*>(checksum.data()),
                  checksum.size());
  }
  try {
    const lepton::ModelArtifact artifact = lepton::parse_artifact(bytes, "fuzz");
    // A file that parses must also build a predictor or be rejected with a typed error.
    const lepton::Predictor predictor(artifact);
    (void)predictor;
  } catch (const lepton::Error&) {
    // Rejected with a message: the expected outcome for almost every input.
  }
  return 0;
}
