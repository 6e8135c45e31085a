// Median wall time in milliseconds of 101 calls of fn: the timing rule of the kernel benchmarks here.
#pragma once
#include <algorithm>
#include <chrono>
#include <vector>

template <typename Fn>
static double MedianMs(Fn fn) {
  std::vector<double> ts;
  for (int k = 0; k < 101; ++k) {
    auto t = std::chrono::steady_clock::now();
    fn();
    ts.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count());
  }
  std::sort(ts.begin(), ts.end());
  return ts[ts.size() / 2];
}
