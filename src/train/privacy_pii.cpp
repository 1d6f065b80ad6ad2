#include "train/privacy_pii.hpp"

#include <algorithm>
#include <cstdlib>

#include <fmt/format.h>
#include <sodium.h>

#include "lepton/error.hpp"

namespace lepton::detail {

std::optional<EncryptionKey> pii_key_from_environment() {
  if (auto key = EncryptionKey::from_environment(kPiiKeyVariable)) {
    return key;
  }
  const char* path = std::getenv(kPiiKeyFileVariable);
  if (path != nullptr && *path != '\0') {
    return EncryptionKey::from_file(path);
  }
  return std::nullopt;
}

std::string pii_hash(const std::string& value, const EncryptionKey& key) {
  if (sodium_init() < 0) {
    throw InternalError("libsodium: sodium_init() failed, so PII columns cannot be hashed");
  }

  unsigned char digest[crypto_generichash_BYTES];
  crypto_generichash(digest, sizeof digest, reinterpret_cast<const unsigned char*>(value.data()), value.size(),
                     key.data(), EncryptionKey::kBytes);
  char hex[2 * sizeof digest + 1];
  sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
  return hex;
}

Table mask_pii(const Table& table, const Requirements& requirements, const std::optional<EncryptionKey>& key) {
  if (requirements.pii.empty()) {
    return table;
  }
  for (const std::string& name : requirements.pii) {
    if (!table.find_column(name)) {
      throw InvalidArgument(fmt::format("pii: column '{}' is not in {}; fix its spelling in the requirements' pii "
                                        "list",
                                        name, table.source()));
    }
  }
  if (requirements.pii_handling == PiiHandling::Hash && !key) {
    throw InvalidArgument(fmt::format("pii_handling is \"hash\", but no hashing key is set; put 64 hex digits in {}, "
                                      "name a key file in {}, or set PipelineOptions::pii_key",
                                      kPiiKeyVariable, kPiiKeyFileVariable));
  }

  std::vector<std::string> names;
  std::vector<std::vector<std::string>> columns;
  for (std::size_t c = 0; c < table.columns(); ++c) {
    const std::string& name = table.column_names()[c];
    const bool is_pii = std::find(requirements.pii.begin(), requirements.pii.end(), name) != requirements.pii.end();
    if (is_pii && requirements.pii_handling == PiiHandling::Drop) {
      continue;
    }

    std::vector<std::string> cells = table.column(c);
    if (is_pii) {
      // The Table constructor marks exactly the empty cells as missing, and the CSV reader stores a missing
      // cell as the empty string, so missing cells stay missing.
      for (std::size_t r = 0; r < cells.size(); ++r) {
        cells[r] = table.is_missing(r, c) ? std::string() : pii_hash(cells[r], *key);
      }
    }
    names.push_back(name);
    columns.push_back(std::move(cells));
  }
  return Table(std::move(names), std::move(columns), table.source());
}

}  // namespace lepton::detail
