// A host program that embeds Lepton's runtime: it links lepton::runtime only (no LibTorch), loads a model
// file and predicts a few records built in code, reusing one workspace so that the calls do not allocate.
//
// Usage: embedded_runtime MODEL   (for example tests/golden/ai4i_mlp.lepton, the AI4I failure model)

#include <cstdio>
#include <string>
#include <vector>

#include "lepton/error.hpp"
#include "lepton/predictor.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s MODEL\n", argv[0]);
    return 2;
  }

  try {
    const lepton::Predictor predictor = lepton::Predictor::load(argv[1]);
    std::printf("loaded %s: %s, %s kernels\n", argv[1], predictor.quantized() ? "int8" : "f32",
                lepton::to_string(predictor.simd_level()).c_str());

    // The host's own column order, resolved to the model's features once.
    const lepton::RecordSchema schema = predictor.bind({"Type", "Air temperature [K]", "Process temperature [K]",
                                                        "Rotational speed [rpm]", "Torque [Nm]", "Tool wear [min]"});
    const std::vector<std::vector<lepton::Value>> records = {
        {"M", 298.1, 308.6, 1551, 42.8, 0},    // a healthy machine
        {"L", 298.9, 309.1, 2861, 4.6, 143},   // very high speed, low torque
        {"L", 298.4, 308.2, 1282, 60.7, 216},  // worn tool under high torque
        {"H", "NA", "310.0", "1500", "40", lepton::Value::missing()},  // missing values take the training fill
    };

    lepton::Workspace workspace;
    lepton::Predictions out;
    const std::vector<std::string>& classes = predictor.artifact().target.classes;
    for (const std::vector<lepton::Value>& record : records) {
      predictor.predict(schema, record.data(), record.size(), workspace, out);
      std::printf("P(failure) = %.4f -> label %s (threshold %.3f)\n", out.probability[0],
                  classes[static_cast<std::size_t>(out.label_index[0])].c_str(), out.threshold);
    }
  } catch (const lepton::Error& error) {
    std::fprintf(stderr, "embedded_runtime: %s\n", error.what());
    return 1;
  }
  return 0;
}
