// Table and CSV reader, profile and split, preprocessing, metrics.
#include <fmt/format.h>

#include "bindings.hpp"
#include "lepton/dataset.hpp"
#include "lepton/metrics.hpp"
#include "lepton/preprocess.hpp"
#include "lepton/table.hpp"

namespace lepton::python {
namespace {

void check_cell(const Table& table, std::size_t row, std::size_t column) {
  if (row >= table.rows() || column >= table.columns()) {
    throw py::index_error(fmt::format("cell ({}, {}) is outside the table of {} rows and {} columns", row, column,
                                      table.rows(), table.columns()));
  }
}

py::object to_data_frame(const Table& table) {
  py::dict columns;
  for (std::size_t c = 0; c < table.columns(); ++c) {
    py::list cells(table.rows());
    for (std::size_t r = 0; r < table.rows(); ++r) {
      if (table.is_missing(r, c)) {
        cells[r] = py::none();
      } else {
        cells[r] = py::str(table.cell(r, c));
      }
    }
    columns[py::str(table.column_names()[c])] = cells;
  }
  return py::module_::import("pandas").attr("DataFrame")(columns);
}

void register_table(py::module_& m) {
  py::class_<Table>(m, "Table",
                    "A table of text cells in column-major order, read from CSV or built from Python data. A cell "
                    "is missing when it is empty (built tables) or a missing-value marker (CSV).")
      .def(py::init<std::vector<std::string>, std::vector<std::vector<std::string>>, std::string>(),
           py::arg("column_names"), py::arg("columns"), py::arg("source") = "<memory>",
           "Build a table from named columns of text cells of equal length. An empty cell is missing.")
      .def_static(
          "from_pandas",
          [](const py::object& frame, const std::string& source) { return to_table(frame, "frame", source); },
          py::arg("frame"), py::arg("source") = "<DataFrame>",
          "Build a table from a pandas DataFrame. Numbers become their shortest round-trip text (about 0.2 us "
          "per cell), so float64 values encode exactly as the same values read from CSV. NaN, None and pd.NA "
          "become missing cells; other objects become str(value).")
      .def_static(
          "from_columns",
          [](const py::dict& columns, const std::string& source) { return to_table(columns, "columns", source); },
          py::arg("columns"), py::arg("source") = "<dict>",
          "Build a table from a dict of column name to 1-D array or sequence, converted like from_pandas.")
      .def_static("from_numpy", &table_from_array, py::arg("array"), py::arg("column_names"),
                  py::arg("source") = "<ndarray>",
                  "Build a table from a 2-D array [rows, columns] and one name per column, converted like "
                  "from_pandas.")
      .def_property_readonly("rows", &Table::rows, "Number of data rows.")
      .def_property_readonly("columns", &Table::columns, "Number of columns.")
      .def_property_readonly("source", &Table::source, "Origin named in error messages (file path or '<memory>').")
      .def_property_readonly("column_names", &Table::column_names, "Column names, in order.")
      .def("__len__", &Table::rows)
      .def("find_column", &Table::find_column, py::arg("name"),
           "Return the index of the column with this exact name, or None.")
      .def("column_index", &Table::column_index, py::arg("name"),
           "Return the index of the column; raises InvalidArgument naming the closest existing column.")
      .def(
          "cell",
          [](const Table& table, std::size_t row, std::size_t column) {
            check_cell(table, row, column);
            return table.cell(row, column);
          },
          py::arg("row"), py::arg("column"), "Return the text of one cell (empty when missing).")
      .def(
          "is_missing",
          [](const Table& table, std::size_t row, std::size_t column) {
            check_cell(table, row, column);
            return table.is_missing(row, column);
          },
          py::arg("row"), py::arg("column"), "Return True when the cell is missing.")
      .def(
          "column",
          [](const Table& table, std::size_t column) {
            check_cell(table, 0, column);
            return table.column(column);
          },
          py::arg("column"), "Return the cells of one column as a list of str.")
      .def(
          "locate",
          [](const Table& table, std::size_t row, std::size_t column) {
            check_cell(table, row, column);
            return table.locate(row, column);
          },
          py::arg("row"), py::arg("column"),
          "Return 'file:line:column' for a cell read from a file, else '<source> row R column name'.")
      .def(
          "select_rows",
          [](const Table& table, const py::object& rows) {
            const std::vector<std::size_t> indices = to_index_vector(rows, "rows");
            for (std::size_t i = 0; i < indices.size(); ++i) {
              if (indices[i] >= table.rows()) {
                throw py::index_error(fmt::format("rows[{}] is {}, but the table has {} rows", i, indices[i],
                                                  table.rows()));
              }
            }
            return table.select_rows(indices);
          },
          py::arg("rows"), "Return a table with only the given rows, in the given order.")
      .def("to_pandas", &to_data_frame,
           "Return a pandas DataFrame of str cells, with None for missing cells (needs pandas).")
      .def("__repr__", [](const Table& table) {
        return fmt::format("<lepton.Table {} rows x {} columns from {}>", table.rows(), table.columns(),
                           table.source());
      });
}

void register_csv(py::module_& m) {
  py::class_<CsvOptions>(m, "CsvOptions", "Options of the CSV reader.")
      .def(py::init([](const py::object& delimiter, const py::object& missing_markers, bool trim_whitespace) {
             CsvOptions options;
             if (!delimiter.is_none()) {
               const std::string text = delimiter.cast<std::string>();
               if (text.size() != 1) {
                 throw py::value_error(fmt::format("delimiter: expected one character, got '{}'", text));
               }
               options.delimiter = text[0];
             }
             if (!missing_markers.is_none()) options.missing_markers = missing_markers.cast<std::vector<std::string>>();
             options.trim_whitespace = trim_whitespace;
             return options;
           }),
           py::arg("delimiter") = py::none(), py::arg("missing_markers") = py::none(),
           py::arg("trim_whitespace") = true,
           "delimiter: one character, or None to sniff ',', ';' or tab from the header. missing_markers: cell "
           "texts that mean missing (default '', NA, N/A, NaN, nan, ?, null, NULL). trim_whitespace: trim "
           "spaces and tabs around unquoted cells.")
      .def_property(
          "delimiter",
          [](const CsvOptions& options) -> py::object {
            if (!options.delimiter) return py::none();
            return py::str(std::string(1, *options.delimiter));
          },
          [](CsvOptions& options, const std::optional<char>& delimiter) { options.delimiter = delimiter; },
          "Field delimiter, or None to sniff it from the header line.")
      .def_readwrite("missing_markers", &CsvOptions::missing_markers,
                     "Cell texts (after trimming) that mean missing; matched exactly.")
      .def_readwrite("trim_whitespace", &CsvOptions::trim_whitespace, "Trim spaces and tabs around unquoted cells.");

  m.def(
      "read_csv",
      [](const std::string& path, const std::optional<CsvOptions>& options) {
        py::gil_scoped_release release;
        return read_csv(path, options.value_or(CsvOptions{}));
      },
      py::arg("path"), py::arg("options") = py::none(),
      "Read a CSV file with a header row (RFC 4180 quoting, UTF-8 BOM, CRLF or LF). Raises FileNotFound, "
      "IoError, or ParseError with file:line:column.");
  m.def(
      "parse_csv",
      [](const std::string& text, const std::string& source, const std::optional<CsvOptions>& options) {
        py::gil_scoped_release release;
        return parse_csv(text, source, options.value_or(CsvOptions{}));
      },
      py::arg("text"), py::arg("source") = "<memory>", py::arg("options") = py::none(),
      "Parse CSV text held in memory; source names it in error messages.");
  m.def("parse_number", &parse_number, py::arg("text"),
        "Parse a cell as a finite float; return None for anything else (surrounding spaces are accepted).");
}

void register_dataset(py::module_& m) {
  py::enum_<Task> task(m, "Task", "The kind of machine-learning task.");
  task.value("BinaryClassification", Task::BinaryClassification)
      .value("MulticlassClassification", Task::MulticlassClassification)
      .value("Regression", Task::Regression);
  use_lepton_names(task);

  py::enum_<FeatureType> feature_type(m, "FeatureType", "Encoding of a column in the model.");
  feature_type.value("Numeric", FeatureType::Numeric)
      .value("Categorical", FeatureType::Categorical)
      .value("Text", FeatureType::Text)
      .value("Ignore", FeatureType::Ignore);
  use_lepton_names(feature_type);

  py::enum_<ColumnKind> column_kind(m, "ColumnKind", "Column kind that schema inference concluded.");
  column_kind.value("Numeric", ColumnKind::Numeric)
      .value("Categorical", ColumnKind::Categorical)
      .value("Text", ColumnKind::Text)
      .value("IdLike", ColumnKind::IdLike)
      .value("Constant", ColumnKind::Constant)
      .value("Empty", ColumnKind::Empty);
  use_lepton_names(column_kind);

  py::class_<ColumnProfile>(m, "ColumnProfile", "Summary statistics of one column.")
      .def_readonly("name", &ColumnProfile::name, "Column name.")
      .def_readonly("kind", &ColumnProfile::kind, "Inferred kind of the column.")
      .def_readonly("missing", &ColumnProfile::missing, "Missing cells.")
      .def_readonly("distinct", &ColumnProfile::distinct, "Distinct non-missing texts.")
      .def_readonly("min", &ColumnProfile::min, "Numeric columns only.")
      .def_readonly("max", &ColumnProfile::max, "Numeric columns only.")
      .def_readonly("mean", &ColumnProfile::mean, "Numeric columns only.")
      .def_readonly("std", &ColumnProfile::std, "Numeric columns only; population standard deviation (ddof 0).")
      .def_readonly("top_categories", &ColumnProfile::top_categories, "Categorical: up to 20 most frequent texts.")
      .def_readonly("reason", &ColumnProfile::reason, "Why inference chose kind.");

  py::class_<DataProfile>(m, "DataProfile", "Profile of a data set: columns and, with a target, its classes.")
      .def_readonly("rows", &DataProfile::rows, "Number of data rows.")
      .def_readonly("columns", &DataProfile::columns, "ColumnProfile per column.")
      .def_readonly("target", &DataProfile::target, "Target column name; empty until a target is known.")
      .def_readonly("classes", &DataProfile::classes, "Sorted class labels (classification).")
      .def_readonly("class_counts", &DataProfile::class_counts, "Rows per class, in the order of classes.")
      .def_readonly("minority_fraction", &DataProfile::minority_fraction, "Smallest class count / rows.")
      .def("column", &DataProfile::column, py::arg("name"), py::return_value_policy::reference_internal,
           "Return the ColumnProfile of a column; raises InvalidArgument for an unknown name.")
      .def(
          "to_json", [](const DataProfile& profile) { return from_json(profile.to_json()); },
          "Return the profile as a dict (the JSON that `lepton profile` prints).");

  m.def(
      "profile_table",
      [](const py::object& records, const std::string& target, Task task) {
        std::optional<Table> storage;
        const Table& table = table_ref(records, storage, "table", "<DataFrame>");
        py::gil_scoped_release release;
        return profile_table(table, target, task);
      },
      py::arg("table"), py::arg("target") = "", py::arg("task") = Task::BinaryClassification,
      "Profile every column of a Table, DataFrame or dict of columns: kind, missing and distinct counts, "
      "numeric moments, top categories; with a target, count its classes.");

  py::class_<SplitFractions>(m, "SplitFractions", "Fractions of a split; positive and summing to 1.")
      .def(py::init([](double train, double validation, double test) {
             return SplitFractions{train, validation, test};
           }),
           py::arg("train") = 0.6, py::arg("validation") = 0.2, py::arg("test") = 0.2)
      .def_readwrite("train", &SplitFractions::train, "Share of rows in the training split (default 0.6).")
      .def_readwrite("validation", &SplitFractions::validation, "Share of rows in the validation split (default 0.2).")
      .def_readwrite("test", &SplitFractions::test, "Share of rows in the test split (default 0.2).");

  py::class_<Split>(m, "Split", "Row indices of the train, validation and test parts (int64 arrays).")
      .def_property_readonly(
          "train", [](py::object self) { return index_view(self.cast<const Split&>().train, self); },
          "Row indices of the training split.")
      .def_property_readonly(
          "validation", [](py::object self) { return index_view(self.cast<const Split&>().validation, self); },
          "Row indices of the validation split.")
      .def_property_readonly(
          "test", [](py::object self) { return index_view(self.cast<const Split&>().test, self); },
          "Row indices of the test split.");

  m.def(
      "stratified_split",
      [](const py::object& labels, const SplitFractions& fractions, std::uint64_t seed) {
        const std::vector<std::int64_t> values = to_int64_vector(labels, "labels");
        py::gil_scoped_release release;
        return stratified_split(values, fractions, seed);
      },
      py::arg("labels"), py::arg("fractions") = SplitFractions{}, py::arg("seed") = 42,
      "Split rows so that each class keeps its share in every part; deterministic for a seed on every "
      "platform. Raises InvalidArgument when a class has too few rows.");
  m.def("random_split", &random_split, py::arg("rows"), py::arg("fractions") = SplitFractions{},
        py::arg("seed") = 42, "Split rows 0..rows-1 without strata (regression).");
  m.def(
      "stratified_folds",
      [](const py::object& labels, std::size_t folds, std::uint64_t seed) {
        const std::vector<std::int64_t> values = to_int64_vector(labels, "labels");
        const std::vector<std::size_t> fold_of_row = stratified_folds(values, folds, seed);
        return to_array(std::vector<std::int64_t>(fold_of_row.begin(), fold_of_row.end()));
      },
      py::arg("labels"), py::arg("folds"), py::arg("seed") = 42,
      "Return the fold id of each row (int64 array) for K-fold cross-validation, each class keeping its share "
      "in every fold. Raises InvalidArgument when folds < 2 or a class has fewer rows than folds.");
  m.def(
      "random_folds",
      [](std::size_t rows, std::size_t folds, std::uint64_t seed) {
        const std::vector<std::size_t> fold_of_row = random_folds(rows, folds, seed);
        return to_array(std::vector<std::int64_t>(fold_of_row.begin(), fold_of_row.end()));
      },
      py::arg("rows"), py::arg("folds"), py::arg("seed") = 42,
      "Return the fold id of each of rows 0..rows-1 (int64 array) without strata (regression).");
}

void register_preprocess(py::module_& m) {
  py::class_<FeatureSpec>(m, "FeatureSpec", "A raw column and how it enters the model.")
      .def(py::init([](std::string column, FeatureType type, bool log_column) {
             return FeatureSpec{std::move(column), type, log_column};
           }),
           py::arg("column"), py::arg("type") = FeatureType::Numeric, py::kw_only(), py::arg("log_column") = false)
      .def_readwrite("column", &FeatureSpec::column, "Raw column name.")
      .def_readwrite("type", &FeatureSpec::type, "How the column is encoded (default FeatureType.Numeric).")
      .def_readwrite("log_column", &FeatureSpec::log_column,
                     "Numeric only: also encode the standardized log(max(value, 0) + shift), for a value whose effect is multiplicative.")
      .def("__repr__", [](const FeatureSpec& spec) {
        return fmt::format("FeatureSpec('{}', {}{})", spec.column, to_string(spec.type),
                           spec.log_column ? ", log_column=True" : "");
      });

  py::class_<FeatureTransform>(m, "FeatureTransform", "Fitted state of one raw input column.")
      .def_readonly("column", &FeatureTransform::column, "Raw column name.")
      .def_readonly("type", &FeatureTransform::type, "How the column is encoded (default FeatureType.Numeric).")
      .def_readonly("fill", &FeatureTransform::fill, "Numeric: value that replaces a missing cell (training median).")
      .def_readonly("mean", &FeatureTransform::mean, "Numeric: z = (value - mean) / scale.")
      .def_readonly("scale", &FeatureTransform::scale, "Numeric: divisor in z = (value - mean) / scale (default 1).")
      .def_readonly("log_column", &FeatureTransform::log_column,
                    "Numeric: whether a second column contains (log(max(value, 0) + log_shift) - log_mean) / log_scale.")
      .def_readonly("log_shift", &FeatureTransform::log_shift, "Numeric with a log column: added before the log.")
      .def_readonly("log_mean", &FeatureTransform::log_mean, "Numeric with a log column: mean of the log.")
      .def_readonly("log_scale", &FeatureTransform::log_scale,
                    "Numeric with a log column: standard deviation of the log (1 if constant).")
      .def_readonly("categories", &FeatureTransform::categories, "Categorical: one encoded column per category.")
      .def_readonly("fill_category", &FeatureTransform::fill_category, "Categorical: replaces a missing cell.")
      .def_readonly("bucket_mean", &FeatureTransform::bucket_mean,
                    "Text: mean token share of each hash bucket over the training rows.")
      .def_readonly("bucket_scale", &FeatureTransform::bucket_scale,
                    "Text: standard deviation of each bucket's token share (1 for a constant bucket).")
      .def_readonly("offset", &FeatureTransform::offset, "First encoded column that this feature writes.")
      .def_readonly("width", &FeatureTransform::width, "Encoded columns that this feature writes.");

  py::class_<Preprocessor>(m, "Preprocessor",
                           "Imputation, standardization and one-hot encoding, fitted on training rows and replayed "
                           "exactly at inference.")
      .def(py::init<>())
      .def_static(
          "fit",
          [](const py::object& records, const std::vector<FeatureSpec>& features, const py::object& rows) {
            std::optional<Table> storage;
            const Table& table = table_ref(records, storage, "table", "<DataFrame>");
            const std::vector<std::size_t> indices = to_index_vector(rows, "rows");
            py::gil_scoped_release release;
            return Preprocessor::fit(table, features, indices);
          },
          py::arg("table"), py::arg("features"), py::arg("rows"),
          "Fit on the given rows of a Table (or DataFrame, or dict of columns). Raises ParseError naming "
          "file:line:column for a non-numeric value in a numeric feature, InvalidArgument for a missing column.")
      .def(
          "transform",
          [](const Preprocessor& self, const py::object& records, const py::object& rows) {
            std::optional<Table> storage;
            const Table& table = table_ref(records, storage, "table", "<DataFrame>");
            Matrix encoded;
            if (rows.is_none()) {
              py::gil_scoped_release release;
              encoded = self.transform(table);
            } else {
              const std::vector<std::size_t> indices = to_index_vector(rows, "rows");
              py::gil_scoped_release release;
              encoded = self.transform(table, indices);
            }
            return to_array(std::move(encoded));
          },
          py::arg("table"), py::arg("rows") = py::none(),
          "Encode all rows (or the listed rows) into a float32 array [rows, encoded_width], without a copy of "
          "the result. Columns are matched by name; extra columns are ignored.")
      .def_property_readonly("encoded_width", &Preprocessor::encoded_width, "Columns of the encoded matrix.")
      .def_property_readonly("features", &Preprocessor::features, "FeatureTransform per raw column.")
      .def("encoded_names", &Preprocessor::encoded_names,
           "Return the names of the encoded columns, e.g. 'Torque [Nm]' or 'Type=L'.")
      .def(
          "to_json", [](const Preprocessor& self) { return from_json(self.to_json()); },
          "Return the fitted state as a dict.")
      .def_static(
          "from_json",
          [](const py::object& state, const std::string& json_path) {
            return Preprocessor::from_json(to_json(state, "state"), json_path);
          },
          py::arg("state"), py::arg("json_path") = "$",
          "Restore a fitted state; raises ParseError naming the JSON path of a bad field.");

  py::class_<TargetEncoding>(m, "TargetEncoding",
                             "Maps target texts to class ids, or regression values to standardized values.")
      .def(py::init<>())
      .def_static(
          "fit",
          [](const py::object& records, const std::string& column, Task task, const py::object& rows) {
            std::optional<Table> storage;
            const Table& table = table_ref(records, storage, "table", "<DataFrame>");
            return TargetEncoding::fit(table, column, task, to_index_vector(rows, "rows"));
          },
          py::arg("table"), py::arg("column"), py::arg("task"), py::arg("rows"),
          "Build the encoding from the training rows; raises InvalidArgument for a target with one class.")
      .def_readwrite("task", &TargetEncoding::task, "Task that decides the encoding: class ids or standardized values.")
      .def_readwrite("column", &TargetEncoding::column, "Target column name.")
      .def_readwrite("classes", &TargetEncoding::classes, "Classification: sorted labels; index = class id.")
      .def_readwrite("mean", &TargetEncoding::mean, "Regression: y_model = (y - mean) / scale.")
      .def_readwrite("scale", &TargetEncoding::scale,
                     "Regression: divisor in y_model = (y - mean) / scale (default 1).")
      .def(
          "encode_labels",
          [](const TargetEncoding& self, const py::object& records, const py::object& rows) {
            std::optional<Table> storage;
            const Table& table = table_ref(records, storage, "table", "<DataFrame>");
            return to_array(self.encode_labels(table, to_index_vector(rows, "rows")));
          },
          py::arg("table"), py::arg("rows"),
          "Return class ids (int64 array) for the rows; raises ParseError for a missing or unknown label.")
      .def(
          "encode_values",
          [](const TargetEncoding& self, const py::object& records, const py::object& rows) {
            std::optional<Table> storage;
            const Table& table = table_ref(records, storage, "table", "<DataFrame>");
            return to_array(self.encode_values(table, to_index_vector(rows, "rows")));
          },
          py::arg("table"), py::arg("rows"),
          "Return raw regression values (float64 array); raises ParseError for a missing or non-numeric value.")
      .def(
          "to_json", [](const TargetEncoding& self) { return from_json(self.to_json()); },
          "Return the encoding as a dict.")
      .def_static(
          "from_json",
          [](const py::object& state, const std::string& json_path) {
            return TargetEncoding::from_json(to_json(state, "state"), json_path);
          },
          py::arg("state"), py::arg("json_path") = "$", "Restore an encoding; raises ParseError naming the JSON path.");
}

// Accepts probabilities as a 1-D array [rows * classes] or a 2-D array [rows, classes].
std::vector<double> flat_probabilities(const py::object& probability, std::size_t classes) {
  py::array array = py::array(py::module_::import("numpy").attr("asarray")(probability));
  if (array.ndim() == 2) {
    if (static_cast<std::size_t>(array.shape(1)) != classes) {
      throw py::value_error(fmt::format("probability: expected {} columns (one per class), got {}", classes,
                                        array.shape(1)));
    }
    array = array.attr("reshape")(-1);
  }
  return to_double_vector(array, "probability");
}

void register_metrics(py::module_& m) {
  py::class_<ConfusionMatrix>(m, "ConfusionMatrix", "Counts[true class][predicted class].")
      .def_readonly("classes", &ConfusionMatrix::classes, "Number of classes; counts has classes x classes entries.")
      .def_property_readonly(
          "counts",
          [](py::object self) {
            const auto& matrix = self.cast<const ConfusionMatrix&>();
            const auto k = static_cast<py::ssize_t>(matrix.classes);
            return view_array(matrix.counts, {k, k}, self);
          },
          "Read-only array [classes, classes] of row counts (rows: truth, columns: prediction).")
      .def(
          "at",
          [](const ConfusionMatrix& matrix, std::size_t truth, std::size_t predicted) {
            if (truth >= matrix.classes || predicted >= matrix.classes) {
              throw py::index_error(fmt::format("at({}, {}): classes are 0..{}", truth, predicted,
                                                matrix.classes == 0 ? 0 : matrix.classes - 1));
            }
            return matrix.at(truth, predicted);
          },
          py::arg("truth"), py::arg("predicted"), "Return the count of rows of class truth predicted as predicted.");

  m.def(
      "confusion_matrix",
      [](const py::object& truth, const py::object& predicted, std::size_t classes) {
        return confusion_matrix(to_int64_vector(truth, "truth"), to_int64_vector(predicted, "predicted"), classes);
      },
      py::arg("truth"), py::arg("predicted"), py::arg("classes"), "Count truth/prediction pairs of class ids.");

  py::class_<BinaryMetrics>(m, "BinaryMetrics", "Metrics of a binary classifier at one decision threshold.")
      .def_readonly("threshold", &BinaryMetrics::threshold, "Decision threshold of these metrics (default 0.5).")
      .def_readonly("accuracy", &BinaryMetrics::accuracy, "Share of rows predicted correctly, in [0, 1].")
      .def_readonly("precision", &BinaryMetrics::precision, "Precision of the positive class, in [0, 1].")
      .def_readonly("recall", &BinaryMetrics::recall, "Recall of the positive class, in [0, 1].")
      .def_readonly("f1", &BinaryMetrics::f1, "F1 score of the positive class, in [0, 1].")
      .def_readonly("roc_auc", &BinaryMetrics::roc_auc, "Area under the ROC curve (sklearn roc_auc_score).")
      .def_readonly("pr_auc", &BinaryMetrics::pr_auc, "Average precision (sklearn average_precision_score).")
      .def_readonly("log_loss", &BinaryMetrics::log_loss, "Probabilities clipped to [1e-15, 1 - 1e-15].")
      .def_readonly("confusion", &BinaryMetrics::confusion, "Confusion matrix of the 2 classes.")
      .def(
          "to_json", [](const BinaryMetrics& self) { return from_json(self.to_json()); }, "Return the metrics as a dict.");

  m.def(
      "binary_metrics",
      [](const py::object& truth, const py::object& probability, double threshold) {
        return binary_metrics(to_int64_vector(truth, "truth"), to_double_vector(probability, "probability"),
                              threshold);
      },
      py::arg("truth"), py::arg("probability"), py::arg("threshold") = 0.5,
      "Compute BinaryMetrics from labels in {0, 1} and probabilities of label 1 (sklearn 1.2 definitions).");
  m.def(
      "roc_auc",
      [](const py::object& truth, const py::object& score) {
        return roc_auc(to_int64_vector(truth, "truth"), to_double_vector(score, "score"));
      },
      py::arg("truth"), py::arg("score"), "ROC-AUC of finite scores; raises InvalidArgument for one class only.");
  m.def(
      "average_precision",
      [](const py::object& truth, const py::object& score) {
        return average_precision(to_int64_vector(truth, "truth"), to_double_vector(score, "score"));
      },
      py::arg("truth"), py::arg("score"), "Average precision; raises InvalidArgument when no row is positive.");
  m.def(
      "binary_log_loss",
      [](const py::object& truth, const py::object& probability) {
        return binary_log_loss(to_int64_vector(truth, "truth"), to_double_vector(probability, "probability"));
      },
      py::arg("truth"), py::arg("probability"), "Mean negative log-likelihood of labels in {0, 1}.");

  py::enum_<Metric> metric(m, "Metric", "Objective metrics that a requirements document can name.");
  metric.value("F1", Metric::F1)
      .value("RocAuc", Metric::RocAuc)
      .value("PrAuc", Metric::PrAuc)
      .value("Accuracy", Metric::Accuracy)
      .value("LogLoss", Metric::LogLoss)
      .value("MacroF1", Metric::MacroF1)
      .value("WeightedF1", Metric::WeightedF1)
      .value("Mae", Metric::Mae)
      .value("Rmse", Metric::Rmse)
      .value("R2", Metric::R2);
  use_lepton_names(metric);

  m.def(
      "parse_metric",
      [](const std::string& name) -> std::optional<Metric> {
        Metric value{};
        if (!parse_metric(name, value)) return std::nullopt;
        return value;
      },
      py::arg("name"), "Parse 'f1', 'roc_auc', ...; return None for an unknown name.");
  m.def("higher_is_better", &higher_is_better, py::arg("metric"),
        "True when larger values are better (False for log-loss, MAE and RMSE).");
  m.def(
      "choose_threshold",
      [](const py::object& truth, const py::object& probability, Metric objective) {
        return choose_threshold(to_int64_vector(truth, "truth"), to_double_vector(probability, "probability"),
                                objective);
      },
      py::arg("truth"), py::arg("probability"), py::arg("objective") = Metric::F1,
      "Choose the decision threshold that maximizes objective on validation data (midpoints between distinct "
      "probabilities, ties keep the highest).");

  py::class_<MulticlassMetrics>(m, "MulticlassMetrics", "Metrics of a multiclass classifier.")
      .def_readonly("accuracy", &MulticlassMetrics::accuracy, "Share of rows predicted correctly, in [0, 1].")
      .def_readonly("macro_precision", &MulticlassMetrics::macro_precision,
                    "Unweighted mean of the per-class precisions.")
      .def_readonly("macro_recall", &MulticlassMetrics::macro_recall, "Unweighted mean of the per-class recalls.")
      .def_readonly("macro_f1", &MulticlassMetrics::macro_f1, "Unweighted mean of the per-class F1 scores.")
      .def_readonly("weighted_precision", &MulticlassMetrics::weighted_precision,
                    "Mean of the per-class precisions, weighted by true rows per class.")
      .def_readonly("weighted_recall", &MulticlassMetrics::weighted_recall,
                    "Mean of the per-class recalls, weighted by true rows per class.")
      .def_readonly("weighted_f1", &MulticlassMetrics::weighted_f1,
                    "Mean of the per-class F1 scores, weighted by true rows per class.")
      .def_readonly("roc_auc_ovr", &MulticlassMetrics::roc_auc_ovr,
                    "Macro one-vs-rest ROC-AUC; NaN when a class is absent.")
      .def_readonly("log_loss", &MulticlassMetrics::log_loss, "Mean negative log-likelihood of the true classes.")
      .def_readonly("precision", &MulticlassMetrics::precision, "Per class.")
      .def_readonly("recall", &MulticlassMetrics::recall, "Per class.")
      .def_readonly("f1", &MulticlassMetrics::f1, "Per class.")
      .def_readonly("support", &MulticlassMetrics::support, "Rows per class in the truth.")
      .def_readonly("confusion", &MulticlassMetrics::confusion, "Confusion matrix over all classes.")
      .def(
          "to_json", [](const MulticlassMetrics& self) { return from_json(self.to_json()); },
          "Return the metrics as a dict.");

  m.def(
      "multiclass_metrics",
      [](const py::object& truth, const py::object& probability, std::size_t classes) {
        return multiclass_metrics(to_int64_vector(truth, "truth"), flat_probabilities(probability, classes), classes);
      },
      py::arg("truth"), py::arg("probability"), py::arg("classes"),
      "Compute MulticlassMetrics from class ids and probabilities [rows, classes] (or flattened row-major).");

  py::class_<RegressionMetrics>(m, "RegressionMetrics", "Metrics of a regressor.")
      .def_readonly("mae", &RegressionMetrics::mae, "Mean absolute error, in target units.")
      .def_readonly("rmse", &RegressionMetrics::rmse, "Root mean squared error, in target units.")
      .def_readonly("r2", &RegressionMetrics::r2, "sklearn r2_score: 1 - SS_res / SS_tot.")
      .def(
          "to_json", [](const RegressionMetrics& self) { return from_json(self.to_json()); },
          "Return the metrics as a dict.");

  m.def(
      "regression_metrics",
      [](const py::object& truth, const py::object& prediction) {
        return regression_metrics(to_double_vector(truth, "truth"), to_double_vector(prediction, "prediction"));
      },
      py::arg("truth"), py::arg("prediction"), "Compute MAE, RMSE and R² of predictions.");
}

}  // namespace

py::array_t<std::int64_t> index_view(const std::vector<std::size_t>& indices, py::handle owner) {
  // size_t and int64 share their layout on every platform that Lepton builds for (LP64).
  static_assert(sizeof(std::size_t) == sizeof(std::int64_t));
  const auto count = static_cast<py::ssize_t>(indices.size());
  py::array_t<std::int64_t> array({count}, reinterpret_cast<const std::int64_t*>(indices.data()), owner);
  py::detail::array_proxy(array.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  return array;
}

void register_data(py::module_& m) {
  register_table(m);
  register_csv(m);
  register_dataset(m);
  register_preprocess(m);
  register_metrics(m);
}

}  // namespace lepton::python
