// The fused LSTM's core: forward and backward over a whole sequence on a CPU, float32, with no
// framework in it. The TensorFlow op (tf_op.cc) and the XLA FFI handler for JAX (jax_ffi.cc) are thin
// wrappers that map their buffers onto these pointers; Python makes every decision (which calls come
// here, masks, dropout), keras_lstm/kernels/fused.py and jax_fused.py.
//
// The step, gate blocks in Keras's weight order (i, f, g, o; f, g, o under coupled gates, i = 1 - f):
//   z_t = x_t·W + b + h_{t-1}·U                       (G·H)  one GEMM for every x_t before the loop, one per step
//   i = σ(z_i + p_i⊙C_{t-1})  f = σ(z_f + p_f⊙C_{t-1})  g = tanh(z_g)
//   C_t = clip(f⊙C_{t-1} + i⊙g, ±cell_clip)           o = σ(z_o + p_o⊙C_t)
//   m_t = o⊙tanh(C_t)    h_t = m_t, or clip(m_t·W_proj, ±projection_clip) under projection
//
// Shapes (row-major, as Keras holds them): x (B, T, D), h0 (B, P), c0 (B, H), kernel W (D, G·H),
// recurrent kernel U (P, G·H), bias (G·H), peephole (G-1, H) rows (i,) f, o, projection (H, P);
// y (B, T, P) in processing order (under `reverse`, step k reads x[:, T-1-k] and writes y[:, k]).
//
// Layout of the loop, "gate-major": every per-step quantity is stored transposed, one row per unit
// and one column per (step, row) pair, column n = k·B + b, so step k is the column block
// [k·B, k·B + B) of matrices with a row stride S = T·B + kPad (or S1 = (T+1)·B + kPad for the states,
// whose block 0 holds h0/c0). The per-step product then runs as z_kᵀ (G·H × B) += Uᵀ (G·H × P) · h_{k-1}ᵀ
// (P × B): the large dimension G·H first, which oneDNN's sgemm runs at about twice the speed of the
// natural h (B × P) · U (P × G·H) at these sizes (the probe: 184-190 against 80-87 GFLOP/s);
// the pad keeps rows of one matrix off the same cache sets. The elementwise pass then walks each
// unit's row over the batch's contiguous columns, one vectorised loop per row.
//
// Threads: the batch is cut into independent column ranges, one per thread, each running the whole
// recurrence with single-threaded GEMMs and no synchronisation between steps (rows are independent),
// which held up when other processes shared the cores where a per-step barrier did not. The GEMMs
// outside the loop (x·W, and the gradients of W, U, the projection and x) use every thread.

#pragma once

#include <cstddef>
#include <cstdint>

namespace keras_lstm {

struct LstmShape {
  int64_t T = 0, B = 0, D = 0, H = 0, P = 0;  // steps, rows, input features, units, h's width
  int G = 4;                                  // gate blocks: 4 (i, f, g, o), or 3 (f, g, o) under coupled gates
  bool peephole = false, projection = false, reverse = false;
  float cell_clip = 0.f, projection_clip = 0.f;  // <= 0: no clip

  bool coupled() const { return G == 3; }
};

struct LstmWeights {
  const float *kernel, *recurrent_kernel, *bias;  // (D, G·H), (P, G·H), (G·H)
  const float *peephole, *projection;             // (G-1, H), (H, P), or null when off
};

// Weight gradients, same shapes as LstmWeights; peephole/projection null when off.
struct LstmWeightGrads {
  float *kernel, *recurrent_kernel, *bias, *peephole, *projection;
};

// Floats the forward keeps for the backward (its workspace), and the backward's own scratch.
int64_t WorkspaceFloats(const LstmShape& s);
int64_t BackwardScratchFloats(const LstmShape& s);
// A shape's problem, or an empty string when it is fine (dimensions positive, G 3 or 4, ...).
const char* CheckShape(const LstmShape& s);

// y (B, T, P), h_T (B, P), c_T (B, H); `workspace` (WorkspaceFloats) is written whole and is what
// LstmBackward reads. `threads` <= 0: OpenMP's default.
void LstmForward(const LstmShape& s, const float* x, const float* h0, const float* c0, const LstmWeights& w,
                 float* y, float* h_T, float* c_T, float* workspace, int threads);

// The gradient of a forward run with the same inputs: from dy (B, T, P) (null: zero), dh_T (B, P) and
// dc_T (B, H) to dx (B, T, D), dh0 (B, P), dc0 (B, H) and every weight's gradient (written whole).
void LstmBackward(const LstmShape& s, const float* x, const LstmWeights& w, const float* workspace, const float* dy,
                  const float* dh_T, const float* dc_T, float* dx, float* dh0, float* dc0, const LstmWeightGrads& dw,
                  float* scratch, int threads);

}  // namespace keras_lstm
