// Tests of file helpers, hashing, the log sink and ValidationError's message.

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "lepton/error.hpp"
#include "lepton/io.hpp"
#include "lepton/log.hpp"

namespace fs = std::filesystem;

namespace {

const std::string kAi4iPath = LEPTON_SHARED_DIR "/data/ai4i2020.csv";

/// A fresh folder under the system temp folder, removed when the test ends.
struct TempFolder {
  fs::path path;
  TempFolder() {
    path = fs::temp_directory_path() / ("lepton-test-io-" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempFolder() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

std::vector<std::string> files_in(const fs::path& folder) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(folder)) {
    names.push_back(entry.path().filename().string());
  }
  return names;
}

/// Restores the process-wide log state, so that one test's sink does not leak into the next.
struct LogReset {
  ~LogReset() {
    lepton::set_log_sink({});
    lepton::set_log_level(lepton::LogLevel::Off);
  }
};

}  // namespace

TEST_CASE("read_file missing file throws FileNotFound") {
  TempFolder folder;
  const std::string path = folder.file("absent.csv");

  CHECK_THROWS_AS(lepton::read_file(path), lepton::FileNotFound);
  CHECK_THROWS_WITH(lepton::read_file(path), Catch::Contains(path));
}

TEST_CASE("read_file on a folder throws IoError") {
  TempFolder folder;

  CHECK_THROWS_AS(lepton::read_file(folder.path.string()), lepton::IoError);
  CHECK_THROWS_WITH(lepton::read_file(folder.path.string()), Catch::Contains(folder.path.string()));
  // A folder exists, so it must not be reported as not found.
  bool not_found = false;
  try {
    lepton::read_file(folder.path.string());
  } catch (const lepton::FileNotFound&) {
    not_found = true;
  } catch (const lepton::IoError&) {
  }
  CHECK_FALSE(not_found);
}

TEST_CASE("read_file returns binary bytes unchanged") {
  TempFolder folder;
  const std::string bytes("a\0b\r\n\xff", 6);
  lepton::write_file_atomically(folder.file("binary"), bytes);

  CHECK(lepton::read_file(folder.file("binary")) == bytes);
}

TEST_CASE("read_file reads the AI4I file whole") {
  const std::string bytes = lepton::read_file(kAi4iPath);

  // Size from `stat -c %s ai4i2020.csv`.
  CHECK(bytes.size() == 522045);
  CHECK(bytes.substr(0, 4) == "UDI,");
}

TEST_CASE("write_file_atomically creates and replaces") {
  TempFolder folder;
  const std::string path = folder.file("model.json");

  lepton::write_file_atomically(path, "first");
  CHECK(lepton::read_file(path) == "first");

  lepton::write_file_atomically(path, "second, longer");
  CHECK(lepton::read_file(path) == "second, longer");

  lepton::write_file_atomically(path, "");
  CHECK(lepton::read_file(path).empty());

  // Only the target remains: no temporary file is left behind.
  CHECK(files_in(folder.path) == std::vector<std::string>{"model.json"});
}

TEST_CASE("write_file_atomically into a missing folder") {
  TempFolder folder;
  const std::string path = folder.file("no-such-folder/model.json");

  CHECK_THROWS_AS(lepton::write_file_atomically(path, "x"), lepton::IoError);
  CHECK_THROWS_WITH(lepton::write_file_atomically(path, "x"), Catch::Contains(path));
  CHECK_THROWS_WITH(lepton::write_file_atomically(path, "x"), Catch::Contains("No such file or directory"));
}

TEST_CASE("write_file_atomically removes temp when rename fails") {
  TempFolder folder;
  // rename() cannot replace a non-empty folder with a file, so the write fails after the temporary
  // file was written.
  const std::string path = folder.file("occupied");
  fs::create_directories(fs::path(path) / "inside");

  CHECK_THROWS_AS(lepton::write_file_atomically(path, "payload"), lepton::IoError);
  CHECK_THROWS_WITH(lepton::write_file_atomically(path, "payload"), Catch::Contains("rename"));

  CHECK(files_in(folder.path) == std::vector<std::string>{"occupied"});
}

TEST_CASE("sha256_hex known vectors") {
  // From `printf '' | sha256sum` and `printf abc | sha256sum`.
  CHECK(lepton::sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(lepton::sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("sha256_hex of the AI4I file") {
  // From `sha256sum ai4i2020.csv`.
  CHECK(lepton::sha256_hex(lepton::read_file(kAi4iPath)) ==
        "86a781eb21879efff711de9011a8d37973ceb083b61871fed9f8b6bef2c058ea");
}

TEST_CASE("sha256_hex from many threads") {
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&wrong] {
      for (int i = 0; i < 200; ++i) {
        if (lepton::sha256_hex("abc") != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") {
          ++wrong;
        }
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }

  CHECK(wrong == 0);
}

TEST_CASE("log is silent by default") {
  LogReset reset;
  int calls = 0;
  lepton::set_log_sink([&calls](lepton::LogLevel, std::string_view) { ++calls; });

  CHECK(lepton::log_level() == lepton::LogLevel::Off);
  lepton::log(lepton::LogLevel::Error, "not delivered");
  CHECK(calls == 0);
}

TEST_CASE("log level filters messages") {
  LogReset reset;
  std::vector<std::string> received;
  lepton::set_log_sink([&received](lepton::LogLevel, std::string_view message) { received.emplace_back(message); });
  lepton::set_log_level(lepton::LogLevel::Warning);

  lepton::log(lepton::LogLevel::Debug, "debug");
  lepton::log(lepton::LogLevel::Info, "info");
  lepton::log(lepton::LogLevel::Warning, "warning");
  lepton::log(lepton::LogLevel::Error, "error");
  lepton::log(lepton::LogLevel::Off, "off is not a message level");

  CHECK(received == std::vector<std::string>{"warning", "error"});
}

TEST_CASE("empty sink restores silence") {
  LogReset reset;
  int calls = 0;
  lepton::set_log_level(lepton::LogLevel::Debug);
  lepton::set_log_sink([&calls](lepton::LogLevel, std::string_view) { ++calls; });
  lepton::log(lepton::LogLevel::Info, "delivered");

  lepton::set_log_sink({});
  lepton::log(lepton::LogLevel::Info, "dropped");

  CHECK(calls == 1);
}

TEST_CASE("log from many threads") {
  LogReset reset;
  std::atomic<int> calls{0};
  lepton::set_log_level(lepton::LogLevel::Info);
  lepton::set_log_sink([&calls](lepton::LogLevel, std::string_view) { ++calls; });

  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([] {
      for (int i = 0; i < 1000; ++i) {
        lepton::log(lepton::LogLevel::Info, "tick");
      }
    });
  }
  // Replacing the sink while others log must be safe; the replacement counts too.
  lepton::set_log_sink([&calls](lepton::LogLevel, std::string_view) { ++calls; });
  for (std::thread& thread : threads) {
    thread.join();
  }

  CHECK(calls == 4000);
}

TEST_CASE("stderr_log_sink line format") {
  TempFolder folder;
  const std::string capture = folder.file("stderr.txt");

  // Point fd 2 at a file for the duration of one call.
  std::fflush(stderr);
  const int saved = ::dup(2);
  const int file = ::open(capture.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  REQUIRE(saved >= 0);
  REQUIRE(file >= 0);
  ::dup2(file, 2);
  lepton::stderr_log_sink()(lepton::LogLevel::Warning, "3 unseen categories");
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  ::close(file);

  CHECK(lepton::read_file(capture) == "[lepton] warning: 3 unseen categories\n");
}

TEST_CASE("ValidationError lists one problem per line") {
  const lepton::ValidationError error(
      "requirements.json", {{"$.constraints.max_model_bytes", "-5", "expected a positive integer"},
                            {"$.target", "", "missing key; add the target column name"}});

  CHECK(std::string(error.what()) ==
        "requirements.json: $.constraints.max_model_bytes: expected a positive integer (got -5)\n"
        "requirements.json: $.target: missing key; add the target column name");
  CHECK(error.source() == "requirements.json");
  CHECK(error.problems().size() == 2);
}

TEST_CASE("ValidationError is an InvalidArgument") {
  const auto thrower = [] { throw lepton::ValidationError("r.json", {{"$.a", "1", "bad"}}); };

  CHECK_THROWS_AS(thrower(), lepton::InvalidArgument);
  CHECK_THROWS_AS(thrower(), lepton::Error);
}
