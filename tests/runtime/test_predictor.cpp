#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "lepton/error.hpp"
#include "lepton/model.hpp"
#include "lepton/predictor.hpp"
#include "lepton/table.hpp"

using Catch::Matchers::Contains;
using lepton::Activation;
using lepton::FeatureType;
using lepton::Task;

namespace {

const char* const kAi4iPath = LEPTON_SHARED_DIR "/data/ai4i2020.csv";

lepton::DenseLayer dense(std::size_t inputs, std::size_t outputs, std::vector<float> weight, std::vector<float> bias,
                         Activation activation) {
  lepton::DenseLayer layer;
  layer.inputs = inputs;
  layer.outputs = outputs;
  layer.weight = std::move(weight);
  layer.bias = std::move(bias);
  layer.activation = activation;
  return layer;
}

// Two numeric columns x1 and x2. The hand-checked tests feed encoded matrices directly, so this table
// only sets the encoded width to 2.
lepton::Table two_column_table() {
  return lepton::Table({"x1", "x2", "y"}, {{"-1", "1"}, {"-1", "1"}, {"0", "1"}}, "two_columns");
}

lepton::ModelArtifact two_input_artifact(Task task) {
  const lepton::Table table = two_column_table();
  lepton::ModelArtifact artifact;
  artifact.task = task;
  artifact.preprocessor =
      lepton::Preprocessor::fit(table, {{"x1", FeatureType::Numeric}, {"x2", FeatureType::Numeric}}, {0, 1});
  artifact.target.task = task;
  artifact.target.column = "y";
  if (task == Task::BinaryClassification) {
    artifact.target.classes = {"0", "1"};
  } else if (task == Task::MulticlassClassification) {
    artifact.target.classes = {"a", "b", "c"};
  }
  return artifact;
}

lepton::Matrix matrix(std::size_t rows, std::size_t cols, std::vector<float> values) {
  lepton::Matrix m(rows, cols);
  m.data = std::move(values);
  return m;
}

// A model with one hidden activation between two 1 x 1 identity maps, so that the output is act(x).
lepton::Predictor activation_probe(Activation activation) {
  lepton::ModelArtifact artifact = two_input_artifact(Task::Regression);
  artifact.target.mean = 0;
  artifact.target.scale = 1;
  artifact.network.layers.push_back(dense(2, 1, {1, 0}, {0}, activation));
  artifact.network.layers.push_back(dense(1, 1, {1}, {0}, Activation::Identity));
  return lepton::Predictor(std::move(artifact));
}

// A binary model on the AI4I columns: 5 numeric features and Type one-hot (H, L, M) = 8 encoded columns,
// with seeded random weights. Only properties are checked, so the exact weights do not matter.
// A random network on AI4I's six features; with `log_columns`, speed, torque and tool wear also get log columns.
lepton::ModelArtifact ai4i_artifact(const lepton::Table& table, bool log_columns = false) {
  std::vector<std::size_t> rows(table.rows());
  std::iota(rows.begin(), rows.end(), std::size_t{0});

  lepton::ModelArtifact artifact;
  artifact.task = Task::BinaryClassification;
  artifact.preprocessor = lepton::Preprocessor::fit(table,
                                                    {{"Type", FeatureType::Categorical},
                                                     {"Air temperature [K]", FeatureType::Numeric},
                                                     {"Process temperature [K]", FeatureType::Numeric},
                                                     {"Rotational speed [rpm]", FeatureType::Numeric, log_columns},
                                                     {"Torque [Nm]", FeatureType::Numeric, log_columns},
                                                     {"Tool wear [min]", FeatureType::Numeric, log_columns}},
                                                    rows);
  artifact.target = lepton::TargetEncoding::fit(table, "Machine failure", Task::BinaryClassification, rows);
  artifact.threshold = 0.4;

  std::mt19937 generator(42);
  std::normal_distribution<float> normal(0.0f, 0.7f);
  const std::vector<std::size_t> widths = {artifact.preprocessor.encoded_width(), 16, 7, 1};
  for (std::size_t i = 0; i + 1 < widths.size(); ++i) {
    std::vector<float> weight(widths[i] * widths[i + 1]);
    std::vector<float> bias(widths[i + 1]);
    for (float& w : weight) w = normal(generator);
    for (float& b : bias) b = normal(generator);
    const Activation activation = i + 2 == widths.size() ? Activation::Identity
                                  : i == 0              ? Activation::Gelu
                                                        : Activation::Tanh;
    artifact.network.layers.push_back(dense(widths[i], widths[i + 1], weight, bias, activation));
  }
  return artifact;
}

const lepton::Table& ai4i_table() {
  static const lepton::Table table = lepton::read_csv(kAi4iPath);
  return table;
}

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

}  // namespace

TEST_CASE("predictor hand-made two-layer network", "[predictor]") {
  // Hidden: relu([x1 - x2, 0.5 x1 + 2 x2 - 1]). Output: h1 - 2 h2 + 0.5.
  //   (3, 1):   h = relu(2, 2.5) = (2, 2.5),  logit = 2 - 5 + 0.5   = -2.5
  //   (0, 1):   h = relu(-1, 1)  = (0, 1),    logit = 0 - 2 + 0.5   = -1.5
  //   (-1, -1): h = relu(0, -3.5) = (0, 0),   logit = 0.5
  lepton::ModelArtifact artifact = two_input_artifact(Task::BinaryClassification);
  artifact.network.layers.push_back(dense(2, 2, {1, -1, 0.5f, 2}, {0, -1}, Activation::Relu));
  artifact.network.layers.push_back(dense(2, 1, {1, -2}, {0.5f}, Activation::Identity));
  artifact.threshold = 0.5;
  const lepton::Predictor predictor(std::move(artifact));

  const lepton::Matrix input = matrix(3, 2, {3, 1, 0, 1, -1, -1});
  const std::vector<double> logits = predictor.forward(input);
  REQUIRE(logits.size() == 3);
  CHECK(logits[0] == -2.5);
  CHECK(logits[1] == -1.5);
  CHECK(logits[2] == 0.5);

  // sigmoid values from Python: 1 / (1 + math.exp(-z)).
  const lepton::Predictions predictions = predictor.predict(input);
  CHECK(predictions.task == Task::BinaryClassification);
  CHECK(predictions.rows == 3);
  CHECK(predictions.classes == 2);
  CHECK(predictions.threshold == 0.5);
  CHECK(predictions.probability[0] == Approx(0.07585818002124355).epsilon(1e-15));
  CHECK(predictions.probability[1] == Approx(0.18242552380635635).epsilon(1e-15));
  CHECK(predictions.probability[2] == Approx(0.6224593312018546).epsilon(1e-15));
  CHECK(predictions.label_index == std::vector<std::int64_t>{0, 0, 1});
  CHECK(predictions.value.empty());
}

TEST_CASE("predictor binary threshold is inclusive", "[predictor]") {
  // Logit 0 gives probability exactly 0.5, which is a positive at threshold 0.5.
  lepton::ModelArtifact artifact = two_input_artifact(Task::BinaryClassification);
  artifact.network.layers.push_back(dense(2, 1, {0, 0}, {0}, Activation::Identity));
  artifact.threshold = 0.5;
  const lepton::Predictions predictions = lepton::Predictor(artifact).predict(matrix(1, 2, {7, 7}));
  CHECK(predictions.probability[0] == 0.5);
  CHECK(predictions.label_index[0] == 1);
}

TEST_CASE("predictor sigmoid is stable at extreme logits", "[predictor]") {
  lepton::ModelArtifact artifact = two_input_artifact(Task::BinaryClassification);
  artifact.network.layers.push_back(dense(2, 1, {1000, 0}, {0}, Activation::Identity));
  const lepton::Predictions predictions = lepton::Predictor(artifact).predict(matrix(2, 2, {1, 0, -1, 0}));
  CHECK(predictions.probability[0] == 1.0);
  CHECK(predictions.probability[1] >= 0.0);
  CHECK(predictions.probability[1] < 1e-300);
  CHECK_FALSE(std::isnan(predictions.probability[1]));
}

TEST_CASE("predictor multiclass softmax", "[predictor]") {
  // Logits per row: (x1, x2, 0). Row (1000, 0) would overflow exp() without the max shift.
  lepton::ModelArtifact artifact = two_input_artifact(Task::MulticlassClassification);
  artifact.network.layers.push_back(dense(2, 3, {1, 0, 0, 1, 0, 0}, {0, 0, 0}, Activation::Identity));
  const lepton::Predictor predictor(std::move(artifact));

  const lepton::Predictions predictions = predictor.predict(matrix(3, 2, {0, 0, 1, 2, 1000, 0}));
  CHECK(predictions.classes == 3);
  REQUIRE(predictions.probability.size() == 9);

  // Equal logits: 1/3 each. Ties pick the first class, as numpy.argmax.
  CHECK(predictions.probability[0] == Approx(1.0 / 3.0).epsilon(1e-15));
  CHECK(predictions.label_index[0] == 0);

  // Logits (1, 2, 0): softmax from Python, numpy.exp(z) / numpy.exp(z).sum().
  CHECK(predictions.probability[3] == Approx(0.24472847105479764).epsilon(1e-15));
  CHECK(predictions.probability[4] == Approx(0.6652409557748219).epsilon(1e-15));
  CHECK(predictions.probability[5] == Approx(0.09003057317038046).epsilon(1e-15));
  CHECK(predictions.label_index[1] == 1);

  CHECK(predictions.probability[6] == 1.0);
  CHECK(predictions.probability[7] == 0.0);
  CHECK(predictions.label_index[2] == 0);
}

TEST_CASE("predictor regression destandardizes", "[predictor]") {
  lepton::ModelArtifact artifact = two_input_artifact(Task::Regression);
  artifact.target.mean = 10;
  artifact.target.scale = 2;
  artifact.network.layers.push_back(dense(2, 1, {1, 1}, {0}, Activation::Identity));
  const lepton::Predictions predictions = lepton::Predictor(artifact).predict(matrix(2, 2, {1, 0.5f, -3, 0}));
  CHECK(predictions.classes == 0);
  CHECK(predictions.value == std::vector<double>{13.0, 4.0});
  CHECK(predictions.probability.empty());
  CHECK(predictions.label_index.empty());
}

TEST_CASE("predictor activations", "[predictor]") {
  const std::vector<float> inputs = {-3.0f, -0.5f, 0.0f, 1.0f, 2.5f};
  lepton::Matrix input(inputs.size(), 2);
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    input(i, 0) = inputs[i];
  }

  // float32 math: 1e-6 covers erf and tanh rounding in single precision.
  const auto check_activation = [&](Activation activation, double (*reference)(double)) {
    const std::vector<double> out = activation_probe(activation).predict(input).value;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      INFO(lepton::to_string(activation) << "(" << inputs[i] << ")");
      CHECK(out[i] == Approx(reference(inputs[i])).margin(1e-6));
    }
  };
  check_activation(Activation::Identity, [](double x) { return x; });
  check_activation(Activation::Relu, [](double x) { return x > 0 ? x : 0.0; });
  check_activation(Activation::Tanh, [](double x) { return std::tanh(x); });
  check_activation(Activation::Gelu, [](double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); });

  // GELU(1) = Phi(1) = 0.8413447460685429, from Python: 0.5 * (1 + math.erf(1 / math.sqrt(2))).
  CHECK(activation_probe(Activation::Gelu).predict(matrix(1, 2, {1, 0})).value[0] ==
        Approx(0.8413447460685429).margin(1e-6));
}

TEST_CASE("predictor width mismatch message", "[predictor]") {
  const lepton::Predictor predictor(ai4i_artifact(ai4i_table()));
  REQUIRE(predictor.artifact().preprocessor.encoded_width() == 8);
  CHECK_THROWS_WITH(predictor.predict(lepton::Matrix(2, 7)), Contains("model expects 8 encoded columns, got 7"));
  CHECK_THROWS_AS(predictor.forward(lepton::Matrix(1, 9)), lepton::InvalidArgument);

  lepton::Matrix short_data(2, 8);
  short_data.data.pop_back();
  CHECK_THROWS_AS(predictor.predict(short_data), lepton::InvalidArgument);
}

TEST_CASE("predictor rejects inconsistent artifacts", "[predictor]") {
  lepton::ModelArtifact wrong_width = two_input_artifact(Task::BinaryClassification);
  wrong_width.network.layers.push_back(dense(3, 1, {1, 1, 1}, {0}, Activation::Identity));
  CHECK_THROWS_WITH(lepton::Predictor(wrong_width), Contains("the network has 3 inputs but the preprocessor"));

  lepton::ModelArtifact wrong_outputs = two_input_artifact(Task::MulticlassClassification);
  wrong_outputs.network.layers.push_back(dense(2, 2, {1, 1, 1, 1}, {0, 0}, Activation::Identity));
  CHECK_THROWS_WITH(lepton::Predictor(wrong_outputs), Contains("needs 3"));

  lepton::ModelArtifact empty = two_input_artifact(Task::Regression);
  CHECK_THROWS_WITH(lepton::Predictor(empty), Contains("no layers"));
}

TEST_CASE("predictor empty batch", "[predictor]") {
  const lepton::Predictor predictor(ai4i_artifact(ai4i_table()));
  const lepton::Predictions predictions = predictor.predict(lepton::Matrix(0, 8));
  CHECK(predictions.rows == 0);
  CHECK(predictions.probability.empty());
  CHECK(predictions.label_index.empty());
}

TEST_CASE("predictor batch equals single rows", "[predictor][ai4i]") {
  const lepton::Table& table = ai4i_table();
  REQUIRE(table.rows() == 10000);
  const lepton::Predictor predictor(ai4i_artifact(table));
  const lepton::Matrix encoded = predictor.encode(table);
  const lepton::Predictions batch = predictor.predict(encoded);
  REQUIRE(batch.rows == 10000);

  // Eigen may use a matrix-vector kernel for one row and a blocked product for many, which sum
  // float32 terms in another order; 1e-5 absolute is far above that rounding.
  std::size_t label_disagreements = 0;
  for (std::size_t r = 0; r < encoded.rows; ++r) {
    lepton::Matrix one(1, encoded.cols);
    std::copy(encoded.row(r), encoded.row(r) + encoded.cols, one.data.begin());
    const lepton::Predictions single = predictor.predict(one);
    if (std::abs(single.probability[0] - batch.probability[r]) > 1e-5) {
      FAIL_CHECK("row " << r << ": single " << single.probability[0] << " batch " << batch.probability[r]);
    }
    const bool near_threshold = std::abs(batch.probability[r] - predictor.artifact().threshold) < 1e-5;
    if (single.label_index[0] != batch.label_index[r] && !near_threshold) {
      ++label_disagreements;
    }
  }
  CHECK(label_disagreements == 0);
}

TEST_CASE("predictor raw table equals encoded", "[predictor][ai4i]") {
  const lepton::Table& table = ai4i_table();
  const lepton::Predictor predictor(ai4i_artifact(table));
  const lepton::Predictions from_table = predictor.predict(table);
  const lepton::Predictions from_matrix = predictor.predict(predictor.encode(table));
  CHECK(same_bits(from_table.probability, from_matrix.probability));
  CHECK(from_table.label_index == from_matrix.label_index);

  // Columns in another order and extra columns are matched by name.
  const lepton::Table reordered({"Torque [Nm]", "Type", "Tool wear [min]", "Rotational speed [rpm]", "extra",
                                 "Process temperature [K]", "Air temperature [K]"},
                                {{"42.8"}, {"M"}, {"0"}, {"1551"}, {"x"}, {"308.6"}, {"298.1"}}, "reordered");
  const lepton::Predictions one = predictor.predict(reordered);
  // Row 1 of ai4i2020.csv: M14860, M, 298.1, 308.6, 1551, 42.8, 0. One row takes Eigen's
  // matrix-vector kernel, so the float32 sums differ from the batch in the last bits.
  CHECK(one.probability[0] == Approx(from_table.probability[0]).margin(1e-5));
}

TEST_CASE("predictor log columns: records equal tables", "[predictor][ai4i]") {
  const lepton::Table& table = ai4i_table();
  const lepton::Predictor predictor(ai4i_artifact(table, true));
  const lepton::Matrix expected = predictor.artifact().preprocessor.transform(table);
  REQUIRE(expected.cols == 11);
  CHECK(predictor.encode(table).data == expected.data);

  const lepton::RecordSchema schema = predictor.bind(table.column_names());
  std::vector<lepton::Value> values(table.columns());
  std::vector<float> encoded(expected.cols);
  for (std::size_t r = 0; r < table.rows(); r += 101) {
    for (std::size_t c = 0; c < table.columns(); ++c) values[c] = lepton::Value(table.cell(r, c));
    predictor.encode(schema, values.data(), values.size(), encoded.data());
    INFO("row " << r);
    CHECK(std::memcmp(encoded.data(), expected.row(r), expected.cols * sizeof(float)) == 0);
  }

  // A missing tool wear takes the training median in both columns; a negative one counts as 0 in the log.
  const lepton::FeatureTransform& wear = predictor.artifact().preprocessor.features()[5];
  REQUIRE(wear.log_column);
  const auto record = [&](lepton::Value tool_wear) {
    const std::vector<std::pair<std::string, lepton::Value>> cells = {
        {"Type", "M"}, {"Air temperature [K]", 298.1}, {"Process temperature [K]", 308.6},
        {"Rotational speed [rpm]", 1551}, {"Torque [Nm]", 42.8}, {"Tool wear [min]", tool_wear}};
    std::vector<std::string> names;
    std::vector<lepton::Value> cell_values;
    for (const auto& [name, value] : cells) {
      names.push_back(name);
      cell_values.push_back(value);
    }
    std::vector<float> out(expected.cols);
    predictor.encode(predictor.bind(names), cell_values.data(), cell_values.size(), out.data());
    return out;
  };
  const std::vector<float> missing = record(lepton::Value::missing());
  CHECK(missing[wear.offset] == static_cast<float>((wear.fill - wear.mean) / wear.scale));
  CHECK(missing[wear.offset + 1] == static_cast<float>(wear.log_input(wear.fill)));
  const std::vector<float> negative = record(-3.0);
  const std::vector<float> zero = record(0.0);
  CHECK(negative[wear.offset + 1] == zero[wear.offset + 1]);
  CHECK(negative[wear.offset] < zero[wear.offset]);
}

TEST_CASE("predictor concurrent predictions agree", "[predictor][ai4i]") {
  const lepton::Table& table = ai4i_table();
  const lepton::Predictor predictor(ai4i_artifact(table));
  const lepton::Predictions reference = predictor.predict(table);

  std::vector<lepton::Predictions> results(4);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < results.size(); ++t) {
    threads.emplace_back([&, t] { results[t] = predictor.predict(table); });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }

  for (std::size_t t = 0; t < results.size(); ++t) {
    INFO("thread " << t);
    CHECK(same_bits(results[t].probability, reference.probability));
    CHECK(results[t].label_index == reference.label_index);
  }
}

TEST_CASE("predictor load of save predicts identically", "[predictor][ai4i]") {
  const lepton::Table& table = ai4i_table();
  const lepton::Predictor original(ai4i_artifact(table));
  const std::string path = LEPTON_BINARY_DIR "/test_predictor_roundtrip.lepton";
  lepton::save_artifact(original.artifact(), path);

  const lepton::Predictor loaded = lepton::Predictor::load(path);
  std::remove(path.c_str());

  const lepton::Predictions before = original.predict(table);
  const lepton::Predictions after = loaded.predict(table);
  CHECK(same_bits(before.probability, after.probability));
  CHECK(before.label_index == after.label_index);
  CHECK(after.threshold == 0.4);
}
