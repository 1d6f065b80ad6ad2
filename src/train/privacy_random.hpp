#pragma once
// Randomness of DP-SGD: Gaussian noise and Poisson sampling. Every draw is an XChaCha20 keystream block
// (libsodium crypto_stream_xchacha20) under a 256-bit key with a fresh nonce per call. The key comes from the
// operating system's CSPRNG, so the noise cannot be predicted or replayed without it. Tests may pass a seed
// instead, to repeat a run. Reading the kernel once per draw was slower than the whole forward and backward pass.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace lepton::detail {

class PrivacyRandom {
 public:
  /// Keys the stream with 32 bytes from randombytes_buf (the operating system's CSPRNG).
  PrivacyRandom();
  /// Keys the stream with `seed`. For tests only: whoever knows the seed can recompute and subtract the noise.
  explicit PrivacyRandom(std::uint64_t seed);
  ~PrivacyRandom();

  PrivacyRandom(const PrivacyRandom&) = default;
  PrivacyRandom& operator=(const PrivacyRandom&) = default;

  bool seeded() const noexcept { return seeded_; }

  /// Fills `out[0, count)` with independent N(0, stddev^2) values (Box-Muller over 53-bit uniforms).
  void fill_gaussian(float* out, std::size_t count, double stddev);

  /// Chooses each of `rows` rows independently with probability `rate`; returns the chosen indices in
  /// increasing order. The count varies from call to call and may be 0.
  std::vector<std::int64_t> poisson_sample(std::size_t rows, double rate);

  /// Resizes `out` to `count` uniform doubles in [0, 1), each with 53 random bits.
  void fill_uniform(std::vector<double>& out, std::size_t count);

 private:
  void fill_bytes(void* out, std::size_t bytes);

  std::array<unsigned char, 32> key_{};
  bool seeded_ = false;
  std::uint64_t calls_ = 0;  // The nonce of the next call, so that no keystream block is used twice.
};

}  // namespace lepton::detail
