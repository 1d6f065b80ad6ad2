#pragma once
/// Typed exceptions thrown by Lepton. The Python bindings map each one to a Python exception.

#include <stdexcept>
#include <string>
#include <vector>

namespace lepton {

/// Base of every exception that Lepton throws on purpose.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A caller passed an argument or a configuration that is not allowed (Python: ValueError).
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

/// Input text (CSV, JSON, model file) does not follow its format. The message names file:line:column
/// or the JSON path (Python: ValueError).
class ParseError : public InvalidArgument {
 public:
  using InvalidArgument::InvalidArgument;
};

/// A file or folder could not be opened, read, written or renamed (Python: OSError).
class IoError : public Error {
 public:
  using Error::Error;
};

/// A file that the caller named does not exist (Python: FileNotFoundError).
class FileNotFound : public IoError {
 public:
  using IoError::IoError;
};

/// One problem found while validating a JSON document, located by its JSON path.
struct ValidationProblem {
  std::string path;     ///< JSON path such as "$.constraints.max_model_bytes".
  std::string value;    ///< The offending value, serialized as JSON, or empty when the key is missing.
  std::string message;  ///< What is wrong and what is allowed, including a "did you mean" hint.
};

/// A requirements document with one or more problems. what() lists every problem, one per line.
class ValidationError : public InvalidArgument {
 public:
  ValidationError(std::string source, std::vector<ValidationProblem> problems);

  const std::string& source() const noexcept { return source_; }
  const std::vector<ValidationProblem>& problems() const noexcept { return problems_; }

 private:
  std::string source_;
  std::vector<ValidationProblem> problems_;
};

/// The requirements' constraints cannot all be met by any configuration that Lepton can build.
/// The message names each constraint in conflict (Python: ValueError).
class ConstraintError : public InvalidArgument {
 public:
  using InvalidArgument::InvalidArgument;
};

/// A broken internal invariant: a bug in Lepton, not in the caller's input (Python: RuntimeError).
class InternalError : public Error {
 public:
  using Error::Error;
};

}  // namespace lepton
