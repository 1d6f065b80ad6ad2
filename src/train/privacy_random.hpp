#pragma once
// Randomness of DP-SGD: Gaussian noise and Poisson sampling, drawn from libsodium's CSPRNG so that nobody
// can predict or replay the noise, or from a seeded ChaCha20 stream that tests use to repeat a run.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace lepton::detail {

class PrivacyRandom {
 public:
  /// Draws from randombytes_buf, which reads the operating system's CSPRNG.
  PrivacyRandom();
  /// Draws from randombytes_buf_deterministic, keyed by `seed` and a call counter. For tests only: whoever
  /// knows the seed can recompute and subtract the noise.
  explicit PrivacyRandom(std::uint64_t seed);

  bool seeded() const noexcept { return seed_.has_value(); }

  /// Fills `out[0, count)` with independent N(0, stddev^2) values (Box-Muller over 53-bit uniforms).
  void fill_gaussian(float* out, std::size_t count, double stddev);

  /// Chooses each of `rows` rows independently with probability `rate`; returns the chosen indices in
  /// increasing order. The count varies from call to call and may be 0.
  std::vector<std::int64_t> poisson_sample(std::size_t rows, double rate);

 private:
  void fill_bytes(void* out, std::size_t bytes);
  void fill_uniform(std::vector<double>& out, std::size_t count);

  std::optional<std::array<unsigned char, 32>> seed_;
  std::uint64_t calls_ = 0;
};

}  // namespace lepton::detail
