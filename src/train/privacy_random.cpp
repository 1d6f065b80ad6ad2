#include "train/privacy_random.hpp"

#include <cmath>
#include <cstring>

#include <sodium.h>

#include "lepton/error.hpp"

namespace lepton::detail {

namespace {

void ensure_sodium() {
  static const int status = sodium_init();
  if (status < 0) {
    throw InternalError("libsodium: sodium_init() failed, so DP-SGD has no secure random source");
  }
}

}  // namespace

static_assert(crypto_stream_xchacha20_KEYBYTES == 32);

PrivacyRandom::PrivacyRandom() {
  ensure_sodium();
  randombytes_buf(key_.data(), key_.size());
}

PrivacyRandom::PrivacyRandom(std::uint64_t seed) : seeded_(true) {
  ensure_sodium();
  std::memcpy(key_.data(), &seed, sizeof seed);
}

PrivacyRandom::~PrivacyRandom() { sodium_memzero(key_.data(), key_.size()); }

void PrivacyRandom::fill_bytes(void* out, std::size_t bytes) {
  std::array<unsigned char, crypto_stream_xchacha20_NONCEBYTES> nonce{};
  std::memcpy(nonce.data(), &calls_, sizeof calls_);
  ++calls_;
  crypto_stream_xchacha20(static_cast<unsigned char*>(out), bytes, nonce.data(), key_.data());
}

// Uniform doubles in [0, 1) with 53 random bits each.
void PrivacyRandom::fill_uniform(std::vector<double>& out, std::size_t count) {
  std::vector<std::uint64_t> bits(count);
  fill_bytes(bits.data(), count * sizeof(std::uint64_t));
  out.resize(count);
  for (std::size_t i = 0; i < count; ++i) {
    out[i] = static_cast<double>(bits[i] >> 11) * 0x1.0p-53;
  }
}

void PrivacyRandom::fill_gaussian(float* out, std::size_t count, double stddev) {
  const std::size_t pairs = (count + 1) / 2;
  std::vector<double> uniform;
  fill_uniform(uniform, 2 * pairs);

  for (std::size_t p = 0; p < pairs; ++p) {
    // 1 - u lies in (0, 1], so the logarithm is finite.
    const double radius = stddev * std::sqrt(-2.0 * std::log(1.0 - uniform[2 * p]));
    const double angle = 2.0 * M_PI * uniform[2 * p + 1];
    out[2 * p] = static_cast<float>(radius * std::cos(angle));
    if (2 * p + 1 < count) {
      out[2 * p + 1] = static_cast<float>(radius * std::sin(angle));
    }
  }
}

std::vector<std::int64_t> PrivacyRandom::poisson_sample(std::size_t rows, double rate) {
  std::vector<double> uniform;
  fill_uniform(uniform, rows);

  std::vector<std::int64_t> chosen;
  chosen.reserve(static_cast<std::size_t>(rate * static_cast<double>(rows) * 1.5) + 16);
  for (std::size_t row = 0; row < rows; ++row) {
    if (uniform[row] < rate) {
      chosen.push_back(static_cast<std::int64_t>(row));
    }
  }
  return chosen;
}

}  // namespace lepton::detail
