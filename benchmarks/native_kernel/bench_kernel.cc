// Times GroupedBtKernel (grouped_bt.cc) at the 1M shape (20,000 users x 8 features x 50 slots,
// float32) against a streaming read of the same bytes (dx, outcomes, mask): medians of 101 runs.
// Build and run: see the top of grouped_bt.cc. Optional argument: the slots per user (default 50).
#include "grouped_bt.cc"
#include "median_ms.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>

int main(int argc, char** argv) {
  const int64_t U = 20000, F = 8, S = argc > 1 ? std::atoi(argv[1]) : 50;
  std::vector<float> W(U * F), X(U * F * S), LL(U), GW(U * F), GO(U), scratch(GroupedBtScratch<float>(S));
  std::vector<int32_t> Y(U * S);
  std::vector<uint8_t> M(U * S);
  std::mt19937 gen(0);
  std::normal_distribution<float> normal(0.0f, 0.5f);
  for (auto& v : W) v = normal(gen);
  for (auto& v : X) v = normal(gen);
  for (auto& v : Y) v = gen() % 2;
  for (auto& v : M) v = (gen() % 100) < 97;
  const double kernel = MedianMs([&] {
    GroupedBtKernel<float>(W.data(), 0.3f, X.data(), Y.data(), M.data(), U, F, S, LL.data(), GW.data(),
                           GO.data(), scratch.data());
  });
  volatile float sink = 0;
  const double read = MedianMs([&] {
    float a = 0;
    int32_t b = 0;
    uint32_t c = 0;
    for (int64_t i = 0; i < U * F * S; ++i) a += X[i];
    for (int64_t i = 0; i < U * S; ++i) b += Y[i];
    for (int64_t i = 0; i < U * S; ++i) c += M[i];
    sink = a + b + c;
  });
  double ll = 0;
  for (float v : LL) ll += v;
  const double mb = (X.size() * 4 + Y.size() * 4 + M.size()) / 1e6;
  std::printf("{\"slots\": %lld, \"bytes_mb\": %.1f, \"kernel_ms\": %.3f, \"read_ms\": %.3f, \"ratio\": %.2f, "
              "\"loglik\": %.1f}\n", (long long)S, mb, kernel, read, kernel / read, ll);
  return 0;
}
