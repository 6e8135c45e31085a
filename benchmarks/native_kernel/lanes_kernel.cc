// Experiment (not part of the package), second layout: users interleaved across the 16 lanes of a
// 512-bit vector, so the per-user products need no tail steps and no horizontal sums. Layout: users in
// groups of L = 16; dx (U/L, F, S, L), the signed mask m * (2y - 1) (U/L, S, L), w (U/L, F, L). Per
// group: t = (off + sum_f w_f dx_f) per slot and lane (f outer, so dx is read in order), the logistic
// terms over the group's S*L values in one flat loop (glibc's vector expf/logf), then the transposed
// product from cache. Times itself against a streaming read of the same bytes (medians of 101 runs):
//
//   g++ -O3 -march=native -ffast-math -std=c++17 -w benchmarks/native_kernel/lanes_kernel.cc -o /tmp/lanes_kernel
//   taskset -c 1 /tmp/lanes_kernel
//
// Results: benchmarks/RESULTS.md, "A hand-fused kernel for the 1M gradient".
#include <cmath>
#include <cstdint>
#include <vector>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

#include "median_ms.h"
constexpr int L = 16;
typedef float V __attribute__((vector_size(64)));
static inline V ld(const float* p){ V v; __builtin_memcpy(&v,p,64); return v; }
static inline void st(float* p, V v){ __builtin_memcpy(p,&v,64); }
__attribute__((noinline)) void LanesKernel(const float* W, float o, const float* X, const float* SG, int64_t B, int64_t F, int64_t S,
                 float* LL, float* GW, float* GO, float* T, float* R) {
  for (int64_t b = 0; b < B; ++b) {
    const float* x = X + b * F * S * L;
    const float* w = W + b * F * L;
    const float* sg = SG + b * S * L;
    // forward: t_j = s_j * (o + sum_f w_f x_fj), per lane
    for (int64_t j = 0; j < S; ++j) st(T + j * L, ld(x + j * L) * ld(w) + o);
    for (int64_t f = 1; f < F; ++f) {
      const V wf = ld(w + f * L);
      const float* xf = x + f * S * L;
      for (int64_t j = 0; j < S; ++j) st(T + j * L, ld(T + j * L) + wf * ld(xf + j * L));
    }
    // logistic over S*L contiguous floats (auto-vectorised, libmvec)
    float* t = T; float* r = R;
    V vl{}, vr{};
    for (int64_t i = 0; i < S * L; ++i) {
      const float s = sg[i];                 // m * (2y - 1): 0 in padding
      const float tt = (s < 0 ? -t[i] : t[i]);
      const float e = std::exp(-std::fabs(tt));
      const float m = s * s;
      t[i] = m * (std::fmin(tt, 0.f) - std::log(1.f + e));
      r[i] = s * (tt >= 0 ? e : 1.f) / (1.f + e);
    }
    for (int64_t j = 0; j < S; ++j) { vl += ld(T + j * L); vr += ld(R + j * L); }
    st(LL + b * L, vl); st(GO + b * L, vr);
    for (int64_t f = 0; f < F; ++f) {
      V acc{};
      for (int64_t j = 0; j < S; ++j) acc += ld(R + j * L) * ld(x + (f * S + j) * L);
      st(GW + (b * F + f) * L, acc);
    }
  }
}
int main(){
  const int64_t U=20000,F=8,S=50,B=U/L;
  std::vector<float> W(U*F),X(U*F*S),SG(U*S),LL(U),GW(U*F),GO(U),T(S*L),R(S*L);
  std::vector<int32_t> Y(U*S); std::vector<uint8_t> M(U*S);
  std::mt19937 g(0); std::normal_distribution<float> n(0,0.5f);
  for(auto&v:W)v=n(g); for(auto&v:X)v=n(g); for(auto&v:Y)v=g()%2; for(auto&v:M)v=(g()%100)<97;
  for(int64_t i=0;i<U*S;++i) SG[i]=M[i]*(2.f*Y[i]-1.f);
  double k=MedianMs([&]{LanesKernel(W.data(),0.3f,X.data(),SG.data(),B,F,S,LL.data(),GW.data(),GO.data(),T.data(),R.data());});
  volatile float sink=0;
  double rd=MedianMs([&]{float a=0,c=0; for(int64_t i=0;i<U*F*S;++i)a+=X[i]; for(int64_t i=0;i<U*S;++i)c+=SG[i]; sink=a+c;});
  // reference: plain scalar loops per user on the same interleaved arrays
  double err = 0;
  for (int64_t u = 0; u < U; ++u) {
    const int64_t b = u / L, l = u % L;
    double lu = 0;
    std::vector<double> gu(F, 0.0);
    for (int64_t j = 0; j < S; ++j) {
      double d = 0.3;
      for (int64_t f = 0; f < F; ++f) d += W[(b * F + f) * L + l] * X[((b * F + f) * S + j) * L + l];
      const double s = SG[(b * S + j) * L + l];
      if (s == 0) continue;
      lu += -std::log1p(std::exp(-s * d));
      const double r = s / (1 + std::exp(s * d));
      for (int64_t f = 0; f < F; ++f) gu[f] += r * X[((b * F + f) * S + j) * L + l];
    }
    err = std::max(err, std::fabs(lu - LL[b * L + l]) / (1 + std::fabs(lu)));
    for (int64_t f = 0; f < F; ++f) err = std::max(err, std::fabs(gu[f] - GW[(b * F + f) * L + l]) / (1 + std::fabs(gu[f])));
  }
  double ll=0; for(float v:LL) ll+=v;
  printf("lanes kernel %.3f ms, read %.3f ms (%.1f MB), ratio %.2f, ll %.1f, max rel. error vs scalar reference %.1e\n",k,rd,(X.size()+SG.size())*4/1e6,k/rd,ll,err);
}
