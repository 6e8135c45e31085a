// Experiment (not part of the package): the grouped Bradley-Terry log-likelihood and its gradient
// fused by hand, one pass per user block, to see whether the 1M-judgement gradient can come within
// 2x of the memory bound on a CPU when XLA's code cannot (benchmarks/RESULTS.md, "A hand-fused
// kernel"). It builds as an XLA FFI target (jax.ffi; headers from jaxlib) and, with bench_kernel.cc,
// as a standalone program that times the kernel alone against a streaming read of the same bytes:
//
//   g++ -O3 -march=native -ffast-math -std=c++17 -w -I$(python -c "import jax.ffi; print(jax.ffi.include_dir())") \
//       benchmarks/native_kernel/bench_kernel.cc -o /tmp/bench_kernel && taskset -c 1 /tmp/bench_kernel
//
// For user u with weights w_u (F) and comparison slots j = 1..S:
//   d_uj  = off + sum_f w_uf dx_ufj
//   t_uj  = s_uj d_uj,  s_uj = 2 y_uj - 1           (y = 1: the first option preferred)
//   ll_u  = sum_j m_uj log sigma(t_uj) = sum_j m_uj (min(t, 0) - log1p(exp(-|t|)))
//   r_uj  = d ll / d d_uj = m_uj s_uj sigma(-t_uj)
//   gw_uf = sum_j r_uj dx_ufj,   go_u = sum_j r_uj
#include <cmath>
#include <cstdint>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

// The kernel on raw row-major arrays (U users, F features, S slots). Users are taken in blocks of
// kBlock: the differences d of a block go to a buffer padded per user to whole vectors, the
// logistic terms run over that buffer as one flat loop (vectorised, with the C library's vector
// exp and log1p when the compiler has them), and the transposed product reads each user's dx
// block again while it is still in cache. Work buffers: see GroupedBtScratch.
constexpr int64_t kBlock = 32;
constexpr int64_t kAhead = 4;  // users prefetched ahead

template <typename R>
struct Vec { typedef R type __attribute__((vector_size(64))); };

template <typename R>
inline typename Vec<R>::type LoadU(const R* p) {
  typename Vec<R>::type v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}

template <typename R>
inline R HSum(typename Vec<R>::type v) {
  constexpr int L = 64 / sizeof(R);
  R s = 0;
  for (int i = 0; i < L; ++i) s += v[i];
  return s;
}

// Scratch length for S slots: three buffers of kBlock users x S rounded up to whole vectors.
template <typename R>
int64_t GroupedBtScratch(int64_t S) {
  constexpr int64_t L = 64 / sizeof(R);
  return 3 * kBlock * ((S + L - 1) / L) * L;
}

template <typename R>
__attribute__((noinline)) void GroupedBtKernel(const R* W, R o, const R* X, const int32_t* Y,
                                               const uint8_t* M, int64_t U, int64_t F, int64_t S,
                                               R* LL, R* GW, R* GO, R* scratch) {
  typedef typename Vec<R>::type V;
  constexpr int64_t L = 64 / sizeof(R);
  const int64_t Sp = ((S + L - 1) / L) * L, full = S / L;
  R* D = scratch;                 // differences, then signed margins t
  R* Sg = scratch + kBlock * Sp;  // m * s (0 in padding)
  R* Rr = Sg + kBlock * Sp;       // log sigma(t) terms, then residuals r
  for (int64_t u0 = 0; u0 < U; u0 += kBlock) {
    const int64_t nb = (U - u0 < kBlock) ? U - u0 : kBlock;
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t u = u0 + b;
      const R* x = X + u * F * S;
      const R* wu = W + u * F;
      R* d = D + b * Sp;
      if (u + kAhead < U) {  // the hardware prefetcher misses the F strided rows of a block
        const char* next = reinterpret_cast<const char*>(X + (u + kAhead) * F * S);
        for (int64_t k = 0; k < int64_t(F * S * sizeof(R)); k += 64) __builtin_prefetch(next + k);
      }
      for (int64_t c = 0; c < full; ++c) {
        V acc = V{} + o;
        for (int64_t f = 0; f < F; ++f) acc += wu[f] * LoadU<R>(x + f * S + c * L);
        __builtin_memcpy(d + c * L, &acc, sizeof(V));
      }
      for (int64_t j = full * L; j < Sp; ++j) {
        R a = o;
        if (j < S)
          for (int64_t f = 0; f < F; ++f) a += wu[f] * x[f * S + j];
        d[j] = a;
      }
      const int32_t* yu = Y + u * S;
      const uint8_t* mu = M + u * S;
      R* sg = Sg + b * Sp;
      for (int64_t j = 0; j < S; ++j) sg[j] = R(mu[j]) * R(2 * yu[j] - 1);
      for (int64_t j = S; j < Sp; ++j) sg[j] = 0;
    }
    const int64_t n = nb * Sp;
    for (int64_t i = 0; i < n; ++i) {
      const R s = Sg[i] < R(0) ? R(-1) : R(1);
      const R t = s * D[i];
      const R e = std::exp(-std::fabs(t));
      const R m = Sg[i] * Sg[i];
      Rr[i] = m * (std::fmin(t, R(0)) - std::log1p(e));
      D[i] = Sg[i] * (t >= R(0) ? e : R(1)) / (R(1) + e);
    }
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t u = u0 + b;
      const R* x = X + u * F * S;
      const R* r = D + b * Sp;
      const R* l = Rr + b * Sp;
      V vl{}, vr{};
      for (int64_t c = 0; c < Sp / L; ++c) {
        vl += LoadU<R>(l + c * L);
        vr += LoadU<R>(r + c * L);
      }
      LL[u] = HSum<R>(vl);
      GO[u] = HSum<R>(vr);
      R* g = GW + u * F;
      for (int64_t f = 0; f < F; ++f) {
        V acc{};
        for (int64_t c = 0; c < full; ++c) acc += LoadU<R>(r + c * L) * LoadU<R>(x + f * S + c * L);
        R a = HSum<R>(acc);
        for (int64_t j = full * L; j < S; ++j) a += r[j] * x[f * S + j];
        g[f] = a;
      }
    }
  }
}

template <ffi::DataType T>
static ffi::Error GroupedBt(ffi::Buffer<T> w, ffi::Buffer<T> off, ffi::Buffer<T> dx,
                            ffi::Buffer<ffi::S32> y, ffi::Buffer<ffi::PRED> mask,
                            ffi::ResultBuffer<T> ll, ffi::ResultBuffer<T> gw, ffi::ResultBuffer<T> go) {
  using R = ffi::NativeType<T>;
  auto dims = dx.dimensions();
  if (dims.size() != 3 || w.dimensions().size() != 2 || y.dimensions().size() != 2 ||
      mask.dimensions().size() != 2)
    return ffi::Error::InvalidArgument("grouped_bt: expected w (U, F), dx (U, F, S), y and mask (U, S)");
  const int64_t U = dims[0], F = dims[1], S = dims[2];
  if (w.dimensions()[0] != U || w.dimensions()[1] != F || y.dimensions()[0] != U ||
      y.dimensions()[1] != S || mask.dimensions()[0] != U || mask.dimensions()[1] != S)
    return ffi::Error::InvalidArgument("grouped_bt: shapes of w, dx, y and mask disagree");
  std::vector<R> scratch(GroupedBtScratch<R>(S));
  GroupedBtKernel<R>(w.typed_data(), off.typed_data()[0], dx.typed_data(), y.typed_data(),
                     reinterpret_cast<const uint8_t*>(mask.typed_data()), U, F, S, ll->typed_data(),
                     gw->typed_data(), go->typed_data(), scratch.data());
  return ffi::Error::Success();
}

#define BINDING(T)                                \
  ffi::Ffi::Bind()                                \
      .Arg<ffi::Buffer<T>>()                      \
      .Arg<ffi::Buffer<T>>()                      \
      .Arg<ffi::Buffer<T>>()                      \
      .Arg<ffi::Buffer<ffi::S32>>()               \
      .Arg<ffi::Buffer<ffi::PRED>>()              \
      .Ret<ffi::Buffer<T>>()                      \
      .Ret<ffi::Buffer<T>>()                      \
      .Ret<ffi::Buffer<T>>()

XLA_FFI_DEFINE_HANDLER_SYMBOL(BayesprefGroupedBtF32, GroupedBt<ffi::F32>, BINDING(ffi::F32));
XLA_FFI_DEFINE_HANDLER_SYMBOL(BayesprefGroupedBtF64, GroupedBt<ffi::F64>, BINDING(ffi::F64));
