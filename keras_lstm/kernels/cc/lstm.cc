// The fused LSTM's core (see lstm.h for the maths, the layout and the threading).
//
// Workspace (the forward's record, what the backward reads), in floats, with S = T·B + kPad and
// S1 = (T+1)·B + kPad:
//   A   (G·H, S)   every step's activated gates, rows in weight order (i,) f, g, o
//   C   (H, S1)    C_{-1} = c0, then every step's C_t (after the clip)
//   Hs  (P, S1)    h_{-1} = h0, then every step's h_t
//   M   (H, S)     m_t = o⊙tanh(C_t), under projection only
//   Xt  (D, T·B)   the input in gate-major order (x_t read in processing order)
//   Ut  (G·H, P), Wt (G·H, D), PRt (P, H)   the weights transposed once per call
// Backward scratch: dZ (G·H, S) every step's pre-activation gradients; DHP (P, S) the gradient of
// h_t before the projection clip (projection only); R (P, B) the running dh; DC (H, B) the running
// dC; DM (H, B) dm under projection; dXt (D, T·B); dUt (G·H, P) and dWt (G·H, D) the weight gradients
// before their transpose; per-thread sums of the bias and peephole gradients (kMaxChunks, G·H + 3·H).

#include "lstm.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "oneapi/dnnl/dnnl.h"

namespace keras_lstm {
namespace {

constexpr int64_t kPad = 16;         // floats added to each row stride: rows off the same cache sets
constexpr int64_t kMinChunkRows = 8;  // a thread's batch slice is at least this many rows (one AVX2 vector)
constexpr int kMaxChunks = 64;
// With one slice (a batch under 2·kMinChunkRows rows), a step's GEMMs share the threads only from this
// many FLOPs up: below it a barrier per GEMM costs more than it saves (batch 1, H=64: a 32 kFLOP step).
constexpr int64_t kThreadedStepFlops = int64_t{1} << 22;

int64_t Stride(const LstmShape& s) { return s.T * s.B + kPad; }
int64_t Stride1(const LstmShape& s) { return (s.T + 1) * s.B + kPad; }

struct Workspace {
  float *A, *C, *Hs, *M, *Xt, *Ut, *Wt, *PRt;
  int64_t end;  // floats used
  Workspace(const LstmShape& s, float* base) {
    const int64_t GH = s.G * s.H, S = Stride(s), S1 = Stride1(s), TB = s.T * s.B;
    int64_t at = 0;
    auto take = [&](int64_t n) { float* p = base ? base + at : nullptr; at += n; return p; };
    A = take(GH * S), C = take(s.H * S1), Hs = take(s.P * S1), M = take(s.projection ? s.H * S : 0);
    Xt = take(s.D * TB), Ut = take(GH * s.P), Wt = take(GH * s.D), PRt = take(s.projection ? s.P * s.H : 0);
    end = at;
  }
};

struct Scratch {
  float *dZ, *DHP, *R, *DC, *DM, *dXt, *dUt, *dWt, *sums;
  int64_t end;
  Scratch(const LstmShape& s, float* base) {
    const int64_t GH = s.G * s.H, S = Stride(s);
    int64_t at = 0;
    auto take = [&](int64_t n) { float* p = base ? base + at : nullptr; at += n; return p; };
    dZ = take(GH * S), DHP = take(s.projection ? s.P * S : 0), R = take(s.P * s.B), DC = take(s.H * s.B);
    DM = take(s.projection ? s.H * s.B : 0), dXt = take(s.D * s.T * s.B), dUt = take(GH * s.P), dWt = take(GH * s.D);
    sums = take(kMaxChunks * SumWidth(s));
    end = at;
  }
  static int64_t SumWidth(const LstmShape& s) { return s.G * s.H + 3 * s.H; }
};

// Row-major C (M×N) = alpha·op(A)·op(B) + beta·C, oneDNN's sgemm (threads: the caller's OpenMP setting;
// one inside a parallel region).
void Gemm(char ta, char tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
          float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {  // sgemm would read nothing and scale C by beta
    for (int64_t r = 0; r < M; ++r)
      for (int64_t c = 0; c < N; ++c) C[r * ldc + c] = beta == 0.f ? 0.f : beta * C[r * ldc + c];
    return;
  }
  dnnl_sgemm(ta, tb, M, N, K, 1.f, A, lda, B, ldb, beta, C, ldc);
}

// dst (cols × rows, stride ldd) = or += srcᵀ, src (rows × cols, stride lds); 16×16 tiles.
template <bool kAdd>
void Transpose(int64_t rows, int64_t cols, const float* src, int64_t lds, float* dst, int64_t ldd) {
  constexpr int64_t kTile = 16;
  for (int64_t r0 = 0; r0 < rows; r0 += kTile)
    for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
      const int64_t r1 = std::min(rows, r0 + kTile), c1 = std::min(cols, c0 + kTile);
      for (int64_t c = c0; c < c1; ++c)
        for (int64_t r = r0; r < r1; ++r) {
          if (kAdd) dst[c * ldd + r] += src[r * lds + c];
          else dst[c * ldd + r] = src[r * lds + c];
        }
    }
}

// The elementwise passes run on vectors of N floats, written once with GCC's vector extensions and
// compiled three times: 16 lanes with AVX-512, 8 with AVX2 and FMA, 8 on the x86-64 baseline (as two
// SSE halves). The copy is picked once per process from what the CPU reports (Pointwise() below), so
// no CPU extension is required. (Scalar loops under `#pragma omp simd` did not vectorise: GCC kept the
// clamps as branches; and target_clones' "arch=" copies are picked by CPU model, not by feature, so an
// AMD CPU got the baseline.)
#define KERAS_LSTM_INLINE inline __attribute__((always_inline))

template <int N>
struct Vec {
  typedef float F __attribute__((vector_size(4 * N)));
  typedef int32_t I __attribute__((vector_size(4 * N)));
};

template <class V>
KERAS_LSTM_INLINE V Splat(float x) {
  return V{} + x;
}
// The lanes' floats at p (unaligned), and back.
template <class V>
KERAS_LSTM_INLINE V Load(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class V>
KERAS_LSTM_INLINE void Store(float* p, V v) {
  std::memcpy(p, &v, sizeof v);
}
template <class V>
KERAS_LSTM_INLINE float Sum(V v) {
  float s = 0.f;
  for (size_t l = 0; l < sizeof v / sizeof(float); ++l) s += v[l];
  return s;
}
template <class V>
KERAS_LSTM_INLINE V Clip(V x, float clip) {  // clip > 0; ∞ for none
  x = x < -clip ? Splat<V>(-clip) : x;
  return x > clip ? Splat<V>(clip) : x;
}

// exp as Cephes' expf: range reduction by ln 2, a degree-6 polynomial, 2^k set in the exponent bits;
// within 2 ulp of expf over the clamped range (outside it expf would over- or underflow). A NaN stays NaN.
template <class V, class VI>
KERAS_LSTM_INLINE V Exp(V x) {
  x = x < -87.3f ? Splat<V>(-87.3f) : x;
  x = x > 88.7f ? Splat<V>(88.7f) : x;
  const V t = x * 1.44269504088896341f + 0.5f;
  VI ki = __builtin_convertvector(t, VI);      // truncated towards 0,
  ki += (__builtin_convertvector(ki, V) > t);  // then floor: -1 where that rounded up
  const V k = __builtin_convertvector(ki, V);
  const V r = x - k * 0.693359375f + k * 2.12194440e-4f;
  V p = Splat<V>(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.f;
  const VI bits = (ki + 127) << 23;
  V scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}
template <class V, class VI>
KERAS_LSTM_INLINE V Sigmoid(V x) {
  return 1.f / (1.f + Exp<V, VI>(-x));
}
template <class V, class VI>
KERAS_LSTM_INLINE V Tanh(V x) {
  return 2.f / (1.f + Exp<V, VI>(-2.f * x)) - 1.f;
}

// Pointers of one step for one unit row j: what the elementwise passes read and write.
struct Row {
  float *i, *f, *g, *o;  // gate rows of A (or of dZ); i null under coupled gates
};
Row GateRows(const LstmShape& s, float* base, int64_t j, int64_t S, int64_t col) {
  const int64_t H = s.H;
  const int first = s.coupled() ? 0 : 1;  // blocks: (i,) f, g, o
  return {s.coupled() ? nullptr : base + j * S + col, base + ((first + 0) * H + j) * S + col,
          base + ((first + 1) * H + j) * S + col, base + ((first + 2) * H + j) * S + col};
}

// One unit's bias and peephole weights (0 where there are none).
struct UnitWeights {
  float bi, bf, bg, bo, pi, pf, po;
  UnitWeights(const LstmShape& s, const LstmWeights& w, int64_t j) {
    const int64_t H = s.H;
    const int fb = s.coupled() ? 0 : 1;
    bi = s.coupled() ? 0.f : w.bias[j], bf = w.bias[fb * H + j], bg = w.bias[(fb + 1) * H + j];
    bo = w.bias[(fb + 2) * H + j];
    pi = s.peephole && !s.coupled() ? w.peephole[j] : 0.f;
    pf = s.peephole ? w.peephole[(s.G - 3) * H + j] : 0.f, po = s.peephole ? w.peephole[(s.G - 2) * H + j] : 0.f;
  }
};

// The forward pass over N columns at b of one unit's row: the pre-activations in r (x·W + h·U, bias
// not yet added) become gates; C_t and m_t are written.
template <int N>
KERAS_LSTM_INLINE void ForwardLanes(bool coupled, float clip, const UnitWeights& u, const Row& r, const float* cp,
                                    float* c, float* m, int64_t b) {
  using V = typename Vec<N>::F;
  using VI = typename Vec<N>::I;
  const V c_prev = Load<V>(cp + b);
  const V f = Sigmoid<V, VI>(Load<V>(r.f + b) + u.bf + u.pf * c_prev);
  const V g = Tanh<V, VI>(Load<V>(r.g + b) + u.bg);
  const V i = coupled ? 1.f - f : Sigmoid<V, VI>(Load<V>(r.i + b) + u.bi + u.pi * c_prev);
  const V c_t = Clip(f * c_prev + i * g, clip);  // the conveyor belt
  const V o = Sigmoid<V, VI>(Load<V>(r.o + b) + u.bo + u.po * c_t);
  if (!coupled) Store<V>(r.i + b, i);
  Store<V>(r.f + b, f), Store<V>(r.g + b, g), Store<V>(r.o + b, o);
  Store<V>(c + b, c_t), Store<V>(m + b, o * Tanh<V, VI>(c_t));
}

// The forward elementwise pass of step k over columns [b0, b1) of the batch; m_t into `m` (stride ldm).
template <int N>
KERAS_LSTM_INLINE void ForwardRows(const LstmShape& s, const LstmWeights& w, const Workspace& ws, int64_t k,
                                   int64_t b0, int64_t b1, float* m, int64_t ldm) {
  const int64_t H = s.H, S = Stride(s), S1 = Stride1(s), B = s.B, col = k * B;
  const float clip = s.cell_clip > 0.f ? s.cell_clip : INFINITY;  // clipping at ∞: none, without a branch
  for (int64_t j = 0; j < H; ++j) {
    const Row r = GateRows(s, ws.A, j, S, col);
    const UnitWeights u(s, w, j);
    float* cp = ws.C + j * S1 + col;
    int64_t b = b0;
    for (; b + N <= b1; b += N) ForwardLanes<N>(s.coupled(), clip, u, r, cp, cp + B, m + j * ldm, b);
    for (; b < b1; ++b) ForwardLanes<1>(s.coupled(), clip, u, r, cp, cp + B, m + j * ldm, b);  // the rest, one by one
  }
}

// Running sums of one unit's bias and peephole gradients.
template <class V>
struct UnitSums {
  V i = {}, f = {}, g = {}, o = {}, pi = {}, pf = {}, po = {};
};

// The backward pass over N columns at b of one unit's row: from dm and the running dC to the
// pre-activation gradients (into d), dC_{t-1} (into dc) and the sums.
template <int N>
KERAS_LSTM_INLINE void BackwardLanes(bool coupled, float clip, const UnitWeights& u, const Row& a, const Row& d,
                                     const float* cp, const float* c, const float* dm, float* dc, int64_t b,
                                     UnitSums<typename Vec<N>::F>& sum) {
  using V = typename Vec<N>::F;
  using VI = typename Vec<N>::I;
  const V f = Load<V>(a.f + b), g = Load<V>(a.g + b), o = Load<V>(a.o + b);
  const V i = coupled ? 1.f - f : Load<V>(a.i + b);
  const V c_t = Load<V>(c + b), c_prev = Load<V>(cp + b), dm_t = Load<V>(dm + b);
  const V tc = Tanh<V, VI>(c_t);
  const V dzo = dm_t * tc * o * (1.f - o);
  V dc_t = Load<V>(dc + b) + dm_t * o * (1.f - tc * tc) + u.po * dzo;
  dc_t = (c_t < clip) & (c_t > -clip) ? dc_t : V{};  // a clipped C_t passes no gradient
  const V dzf = dc_t * (coupled ? c_prev - g : c_prev) * f * (1.f - f);
  const V dzg = dc_t * i * (1.f - g * g);
  const V dzi = coupled ? V{} : dc_t * g * i * (1.f - i);
  Store<V>(dc + b, dc_t * f + u.pi * dzi + u.pf * dzf);  // dC_{t-1}
  if (!coupled) Store<V>(d.i + b, dzi);
  Store<V>(d.f + b, dzf), Store<V>(d.g + b, dzg), Store<V>(d.o + b, dzo);
  sum.i += dzi, sum.f += dzf, sum.g += dzg, sum.o += dzo;
  sum.pi += dzi * c_prev, sum.pf += dzf * c_prev, sum.po += dzo * c_t;
}

// The backward pass reads the forward's gates and cell states and writes the gate gradients of step k:
// a short run of columns in each of 8-10 rows per unit, rows a whole stride apart (S floats), long out
// of cache and too far apart for the hardware prefetcher. So each unit asks for the rows of the unit
// kPrefetchUnits ahead. (With the transposed weight gradients in LstmBackward, the medium shape's backward
// went from 60 to 51-52 ms in interleaved runs; 8 units ahead measured the same as 4.)
constexpr int64_t kPrefetchUnits = 4;

KERAS_LSTM_INLINE void PrefetchRow(const float* p, int64_t n, bool write) {
  for (int64_t at = 0; at < n; at += 64 / sizeof(float)) {
    if (write) __builtin_prefetch(p + at, 1, 3);
    else __builtin_prefetch(p + at, 0, 3);
  }
}

KERAS_LSTM_INLINE void PrefetchUnit(const LstmShape& s, const Workspace& ws, const Scratch& sc, int64_t j,
                                    int64_t col, int64_t n) {
  const int64_t S = Stride(s), S1 = Stride1(s);
  const Row a = GateRows(s, ws.A, j, S, col), d = GateRows(s, sc.dZ, j, S, col);
  for (const float* row : {a.i, a.f, a.g, a.o})
    if (row) PrefetchRow(row, n, false);
  for (float* row : {d.i, d.f, d.g, d.o})
    if (row) PrefetchRow(row, n, true);
  PrefetchRow(ws.C + j * S1 + col, n + s.B, false);  // C_{t-1} and C_t
}

// The backward elementwise pass of step k over columns [b0, b1): from dm (stride ldm) and the running
// dC (DC, stride B) to the pre-activation gradients dZ of step k, dC_{t-1} (into DC), and this
// thread's sums of the bias and peephole gradients.
template <int N>
KERAS_LSTM_INLINE void BackwardRows(const LstmShape& s, const LstmWeights& w, const Workspace& ws, const Scratch& sc,
                                    int64_t k, int64_t b0, int64_t b1, const float* dm, int64_t ldm, float* sums) {
  using V = typename Vec<N>::F;
  const int64_t H = s.H, S = Stride(s), S1 = Stride1(s), B = s.B, col = k * B;
  const float clip = s.cell_clip > 0.f ? s.cell_clip : INFINITY;
  const bool coupled = s.coupled();
  const int fb = coupled ? 0 : 1;
  float* dbias = sums;            // (G·H)
  float* dpeep = sums + s.G * H;  // (3, H): i, f, o
  for (int64_t j = 0; j < H; ++j) {
    const Row a = GateRows(s, ws.A, j, S, col), d = GateRows(s, sc.dZ, j, S, col);
    if (j + kPrefetchUnits < H) PrefetchUnit(s, ws, sc, j + kPrefetchUnits, col + b0, b1 - b0);
    const UnitWeights u(s, w, j);
    const float* cp = ws.C + j * S1 + col;
    UnitSums<V> sum;
    UnitSums<typename Vec<1>::F> rest;
    int64_t b = b0;
    for (; b + N <= b1; b += N)
      BackwardLanes<N>(coupled, clip, u, a, d, cp, cp + B, dm + j * ldm, sc.DC + j * B, b, sum);
    for (; b < b1; ++b) BackwardLanes<1>(coupled, clip, u, a, d, cp, cp + B, dm + j * ldm, sc.DC + j * B, b, rest);
    if (!coupled) dbias[j] += Sum(sum.i) + rest.i[0];
    dbias[fb * H + j] += Sum(sum.f) + rest.f[0], dbias[(fb + 1) * H + j] += Sum(sum.g) + rest.g[0];
    dbias[(fb + 2) * H + j] += Sum(sum.o) + rest.o[0];
    dpeep[j] += Sum(sum.pi) + rest.pi[0], dpeep[H + j] += Sum(sum.pf) + rest.pf[0];
    dpeep[2 * H + j] += Sum(sum.po) + rest.po[0];
  }
}

using ForwardFn = void (*)(const LstmShape&, const LstmWeights&, const Workspace&, int64_t, int64_t, int64_t, float*,
                           int64_t);
using BackwardFn = void (*)(const LstmShape&, const LstmWeights&, const Workspace&, const Scratch&, int64_t, int64_t,
                            int64_t, const float*, int64_t, float*);

#define KERAS_LSTM_POINTWISE(NAME, TARGET, N)                                                                     \
  TARGET void Forward##NAME(const LstmShape& s, const LstmWeights& w, const Workspace& ws, int64_t k, int64_t b0,  \
                            int64_t b1, float* m, int64_t ldm) {                                                   \
    ForwardRows<N>(s, w, ws, k, b0, b1, m, ldm);                                                                   \
  }                                                                                                                \
  TARGET void Backward##NAME(const LstmShape& s, const LstmWeights& w, const Workspace& ws, const Scratch& sc,     \
                             int64_t k, int64_t b0, int64_t b1, const float* dm, int64_t ldm, float* sums) {       \
    BackwardRows<N>(s, w, ws, sc, k, b0, b1, dm, ldm, sums);                                                       \
  }

KERAS_LSTM_POINTWISE(Baseline, , 8)
#if defined(__x86_64__)
KERAS_LSTM_POINTWISE(Avx2, __attribute__((target("avx2,fma"))), 8)
KERAS_LSTM_POINTWISE(Avx512, __attribute__((target("avx512f,avx512vl,avx512dq,avx2,fma"))), 16)
#endif

struct Pointwise {
  ForwardFn forward;
  BackwardFn backward;
};

// The widest copy this CPU runs (KERAS_LSTM_ISA=avx2|baseline caps it, for tests and comparisons).
const Pointwise& PointwiseForCpu() {
  static const Pointwise chosen = [] {
    const char* cap = std::getenv("KERAS_LSTM_ISA");
    const std::string limit = cap ? cap : "";
#if defined(__x86_64__)
    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                        __builtin_cpu_supports("avx512dq");
    if (avx512 && limit.empty()) return Pointwise{ForwardAvx512, BackwardAvx512};
    if (avx2 && limit != "baseline") return Pointwise{ForwardAvx2, BackwardAvx2};
#endif
    return Pointwise{ForwardBaseline, BackwardBaseline};
  }();
  return chosen;
}

// The batch's column ranges, one per thread: at most `threads`, each of at least kMinChunkRows rows.
int Chunks(const LstmShape& s, int threads) {
  const int64_t most = std::max<int64_t>(1, s.B / kMinChunkRows);
  return static_cast<int>(std::min<int64_t>({threads, most, kMaxChunks}));
}
void ChunkBounds(const LstmShape& s, int n, int c, int64_t* b0, int64_t* b1) {
  *b0 = s.B * c / n, *b1 = s.B * (c + 1) / n;
}

// A whole call under this many FLOPs (forward) runs on one thread: its parallel regions would cost more
// than they save, and far more when another process holds a core and a barrier waits for the scheduler
// (batch 1, T=100, H=64, 3.7 MFLOP: 1.6 ms on one thread, 7-8 ms on two on a loaded machine).
constexpr int64_t kSerialFlops = int64_t{1} << 24;

int Threads(const LstmShape& s, int threads) {
  const int64_t flops = 2 * s.T * s.B * s.G * s.H * (s.D + s.P);
  if (flops < kSerialFlops) threads = 1;
  if (threads > 0) omp_set_num_threads(threads);  // this thread's setting only: the GEMMs outside the loop
  return omp_get_max_threads();
}

// The threads of each step's GEMMs inside the loop: 1 in a slice of several (oneDNN's sgemm runs on
// one inside a parallel region anyway), all of them for one slice whose step is large enough.
int StepGemmThreads(const LstmShape& s, int chunks, int threads) {
  const int64_t step_flops = 2 * s.B * s.G * s.H * s.P;
  return chunks == 1 && step_flops >= kThreadedStepFlops ? threads : 1;
}

}  // namespace

int64_t WorkspaceFloats(const LstmShape& s) { return Workspace(s, nullptr).end; }
int64_t BackwardScratchFloats(const LstmShape& s) { return Scratch(s, nullptr).end; }

const char* CheckShape(const LstmShape& s) {
  if (s.T < 0 || s.B < 0 || s.D < 0 || s.H <= 0 || s.P <= 0) return "dimensions must be >= 0, units and h's width > 0";
  if (s.G != 3 && s.G != 4) return "the kernel must hold 4 gate blocks (or 3 under coupled gates)";
  if (!s.projection && s.P != s.H) return "without projection, h's width equals the units";
  return "";
}

void LstmForward(const LstmShape& s, const float* x, const float* h0, const float* c0, const LstmWeights& w,
                 float* y, float* h_T, float* c_T, float* workspace, int threads) {
  const int64_t T = s.T, B = s.B, D = s.D, H = s.H, P = s.P, GH = s.G * H, S = Stride(s), S1 = Stride1(s), TB = T * B;
  const Workspace ws(s, workspace);
  threads = Threads(s, threads);
  Transpose<false>(P, GH, w.recurrent_kernel, GH, ws.Ut, P);
  Transpose<false>(D, GH, w.kernel, GH, ws.Wt, D);
  if (s.projection) Transpose<false>(H, P, w.projection, P, ws.PRt, H);
  for (int64_t k = 0; k < T; ++k)  // Xt[:, kB + b] = x[b, t_k, :]
    Transpose<false>(B, D, x + (s.reverse ? T - 1 - k : k) * D, T * D, ws.Xt + k * B, TB);
  Gemm('N', 'N', GH, TB, D, ws.Wt, D, ws.Xt, TB, 0.f, ws.A, S);  // every step's x·W, one GEMM (bias: pointwise)
  Transpose<false>(B, P, h0, P, ws.Hs, S1);
  Transpose<false>(B, H, c0, H, ws.C, S1);

  const int n = Chunks(s, threads);
  const Pointwise& pointwise = PointwiseForCpu();
  const int step_threads = StepGemmThreads(s, n, threads);
#pragma omp parallel num_threads(n)
  {
    omp_set_num_threads(step_threads);  // for the GEMMs this thread calls
    int64_t b0, b1;
    ChunkBounds(s, n, omp_get_thread_num(), &b0, &b1);
    const int64_t nb = b1 - b0;
    for (int64_t k = 0; k < T && nb > 0; ++k) {
      float* a = ws.A + k * B + b0;
      Gemm('N', 'N', GH, nb, P, ws.Ut, P, ws.Hs + k * B + b0, S1, 1.f, a, S);  // z_kᵀ += Uᵀ·h_{k-1}ᵀ
      float* h = ws.Hs + (k + 1) * B;
      if (!s.projection) {
        pointwise.forward(s, w, ws, k, b0, b1, h, S1);
        continue;
      }
      pointwise.forward(s, w, ws, k, b0, b1, ws.M + k * B, S);
      Gemm('N', 'N', P, nb, H, ws.PRt, H, ws.M + k * B + b0, S, 0.f, h + b0, S1);  // h_kᵀ = W_projᵀ·m_kᵀ
      const float clip = s.projection_clip;
      if (clip > 0.f)
        for (int64_t p = 0; p < P; ++p)
          for (int64_t b = b0; b < b1; ++b) h[p * S1 + b] = std::min(std::max(h[p * S1 + b], -clip), clip);
    }
    for (int64_t k = 0; k < T && nb > 0; ++k)  // y[b, k, :] = h_k
      Transpose<false>(P, nb, ws.Hs + (k + 1) * B + b0, S1, y + b0 * T * P + k * P, T * P);
  }
  Transpose<false>(P, B, ws.Hs + T * B, S1, h_T, P);
  Transpose<false>(H, B, ws.C + T * B, S1, c_T, H);
}

void LstmBackward(const LstmShape& s, const float* x, const LstmWeights& w, const float* workspace, const float* dy,
                  const float* dh_T, const float* dc_T, float* dx, float* dh0, float* dc0, const LstmWeightGrads& dw,
                  float* scratch, int threads) {
  const int64_t T = s.T, B = s.B, D = s.D, H = s.H, P = s.P, GH = s.G * H, S = Stride(s), S1 = Stride1(s), TB = T * B;
  const Workspace ws(s, const_cast<float*>(workspace));
  const Scratch sc(s, scratch);
  threads = Threads(s, threads);
  const int n = Chunks(s, threads);
  const Pointwise& pointwise = PointwiseForCpu();
  const int64_t width = Scratch::SumWidth(s);
  std::fill(sc.sums, sc.sums + n * width, 0.f);
  Transpose<false>(B, P, dh_T, P, sc.R, B);
  Transpose<false>(B, H, dc_T, H, sc.DC, B);

  const int step_threads = StepGemmThreads(s, n, threads);
#pragma omp parallel num_threads(n)
  {
    omp_set_num_threads(step_threads);
    const int c = omp_get_thread_num();
    int64_t b0, b1;
    ChunkBounds(s, n, c, &b0, &b1);
    const int64_t nb = b1 - b0;
    for (int64_t k = T - 1; k >= 0 && nb > 0; --k) {
      float* r = sc.R + b0;  // dh_k (P, nb), stride B: from step k+1, plus dy_k
      if (dy != nullptr) Transpose<true>(nb, P, dy + b0 * T * P + k * P, T * P, r, B);
      const float* dm = sc.R;
      int64_t ldm = B;
      if (s.projection) {
        float* dhp = sc.DHP + k * B;  // the gradient before the clip, kept for the projection's gradient
        const float* h = ws.Hs + (k + 1) * B;
        for (int64_t p = 0; p < P; ++p)
          for (int64_t b = b0; b < b1; ++b)
            dhp[p * S + b] = s.projection_clip > 0.f && !(__builtin_fabsf(h[p * S1 + b]) < s.projection_clip)
                                 ? 0.f : sc.R[p * B + b];
        Gemm('N', 'N', H, nb, P, w.projection, P, dhp + b0, S, 0.f, sc.DM + b0, B);  // dm_kᵀ = W_proj·dh_kᵀ
        dm = sc.DM;
      }
      pointwise.backward(s, w, ws, sc, k, b0, b1, dm, ldm, sc.sums + c * width);
      Gemm('N', 'N', P, nb, GH, w.recurrent_kernel, GH, sc.dZ + k * B + b0, S, 0.f, r, B);  // dh_{k-1}ᵀ = U·dz_kᵀ
    }
  }
  Transpose<false>(P, B, sc.R, B, dh0, P);
  Transpose<false>(H, B, sc.DC, B, dc0, H);

  // The weight and input gradients, each one GEMM over every step at once, on every thread.
  // dUᵀ and dWᵀ, the large dimension first again (at B=64, T=100, D=64, H=256: 201 against 180 and 187
  // against 123 GFLOP/s the other way round), then transposed into Keras's layout.
  Gemm('N', 'T', GH, P, TB, sc.dZ, S, ws.Hs, S1, 0.f, sc.dUt, P);  // dUᵀ = Σ_k dz_kᵀ·h_{k-1}
  Gemm('N', 'T', GH, D, TB, sc.dZ, S, ws.Xt, TB, 0.f, sc.dWt, D);  // dWᵀ = Σ_k dz_kᵀ·x_k
  Transpose<false>(GH, P, sc.dUt, P, dw.recurrent_kernel, GH);
  Transpose<false>(GH, D, sc.dWt, D, dw.kernel, GH);
  Gemm('N', 'N', D, TB, GH, w.kernel, GH, sc.dZ, S, 0.f, sc.dXt, TB);             // dx_kᵀ = W·dz_kᵀ
  for (int64_t k = 0; k < T; ++k)
    Transpose<false>(D, B, sc.dXt + k * B, TB, dx + (s.reverse ? T - 1 - k : k) * D, T * D);
  if (s.projection) Gemm('N', 'T', H, P, TB, ws.M, S, sc.DHP, S, 0.f, dw.projection, P);  // Σ_k m_kᵀ·dh_k

  std::fill(dw.bias, dw.bias + GH, 0.f);
  if (s.peephole) std::fill(dw.peephole, dw.peephole + (s.G - 1) * H, 0.f);
  for (int c = 0; c < n; ++c) {
    const float* sums = sc.sums + c * width;
    for (int64_t r = 0; r < GH; ++r) dw.bias[r] += sums[r];
    if (!s.peephole) continue;
    const float* dpeep = sums + GH;  // rows i, f, o; the kernel's rows are (i,) f, o
    for (int64_t j = 0; j < H; ++j) {
      if (!s.coupled()) dw.peephole[j] += dpeep[j];
      dw.peephole[(s.G - 3) * H + j] += dpeep[H + j];
      dw.peephole[(s.G - 2) * H + j] += dpeep[2 * H + j];
    }
  }
}

}  // namespace keras_lstm
