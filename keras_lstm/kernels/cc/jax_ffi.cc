// The fused LSTM as two XLA FFI handlers for JAX on a CPU (jax.ffi), forward and backward, over the
// same core as the TensorFlow op (lstm.h). This file only decodes buffers and calls it; Python
// (keras_lstm/kernels/jax_fused.py) declares the result shapes, ties the two together with
// jax.custom_vjp and makes every decision.
//
// Buffers are Keras's: x (B, T, D), h0 (B, P), c0 (B, H), kernel (D, G·H), recurrent_kernel (P, G·H),
// bias (G·H), peephole (G-1, H) or (0,), projection (H, P) or (0, 0). The training forward's last result
// is the workspace (WorkspaceFloats) its backward reads, so XLA owns it; its size comes from
// keras_lstm_workspace_floats, called from Python with ctypes. The inference forward's workspace and the
// backward's scratch live only for the call, so they come from a buffer each calling thread keeps and
// reuses (Reused): XLA:CPU allocates results with malloc, which maps and unmaps buffers this large on every
// call, and the page faults of a fresh 43 MB cost the medium shape's forward about 20 of its 50 ms.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "lstm.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace keras_lstm {
namespace {

using F32 = ffi::Buffer<ffi::F32>;

// n floats that this thread keeps between calls (grown when a call needs more, never shrunk).
float* Reused(int64_t n) {
  thread_local std::vector<float> buffer;
  if (static_cast<int64_t>(buffer.size()) < n) buffer.resize(n);
  return buffer.data();
}
using Out = ffi::ResultBuffer<ffi::F32>;

const float* Data(const F32& b) { return b.element_count() ? b.typed_data() : nullptr; }
float* Data(Out& b) { return b->element_count() ? b->typed_data() : nullptr; }

// The shape of a call from the forward's inputs, each checked against the others (as tf_op.cc does).
ffi::Error ReadShape(const F32& x, const F32& h0, const F32& c0, const F32& k, const F32& rk, const F32& b,
                     const F32& pe, const F32& pr, bool reverse, float cell_clip, float projection_clip,
                     LstmShape* s) {
  auto bad = [](std::string what) { return ffi::Error::InvalidArgument("keras_lstm fused LSTM: " + what); };
  if (x.dimensions().size() != 3) return bad("x must be (batch, time, features)");
  if (c0.dimensions().size() != 2 || c0.dimensions()[1] == 0) return bad("c0 must be (batch, units)");
  s->B = x.dimensions()[0], s->T = x.dimensions()[1], s->D = x.dimensions()[2], s->H = c0.dimensions()[1];
  if (k.dimensions().size() != 2 || k.dimensions()[0] != s->D || k.dimensions()[1] % s->H != 0)
    return bad("kernel must be (features, G*units)");
  s->G = static_cast<int>(k.dimensions()[1] / s->H);
  s->projection = pr.element_count() > 0, s->peephole = pe.element_count() > 0;
  if (s->projection && (pr.dimensions().size() != 2 || pr.dimensions()[0] != s->H))
    return bad("projection must be (units, P)");
  s->P = s->projection ? pr.dimensions()[1] : s->H;
  s->reverse = reverse, s->cell_clip = cell_clip, s->projection_clip = projection_clip;
  const std::string problem = CheckShape(*s);
  if (!problem.empty()) return bad(problem);
  const int64_t GH = s->G * s->H;
  if (c0.dimensions()[0] != s->B) return bad("c0's batch differs from x's");
  if (h0.element_count() != s->B * s->P) return bad("h0 must be (batch, P)");
  if (rk.element_count() != s->P * GH) return bad("recurrent_kernel must be (P, G*units)");
  if (b.element_count() != GH) return bad("bias must be (G*units,)");
  if (s->peephole && pe.element_count() != (s->G - 1) * s->H) return bad("peephole must be (G-1, units)");
  return ffi::Error::Success();
}

ffi::Error Forward(F32 x, F32 h0, F32 c0, F32 k, F32 rk, F32 b, F32 pe, F32 pr, bool reverse, float cell_clip,
                   float projection_clip, Out y, Out h_T, Out c_T, Out workspace) {
  LstmShape s;
  if (auto err = ReadShape(x, h0, c0, k, rk, b, pe, pr, reverse, cell_clip, projection_clip, &s); err.failure())
    return err;
  if (workspace->element_count() != static_cast<size_t>(WorkspaceFloats(s)))
    return ffi::Error::InvalidArgument("keras_lstm fused LSTM: the workspace result has the wrong size");
  LstmForward(s, Data(x), Data(h0), Data(c0), {Data(k), Data(rk), Data(b), Data(pe), Data(pr)}, Data(y), Data(h_T),
              Data(c_T), Data(workspace), 0);
  return ffi::Error::Success();
}

ffi::Error Inference(F32 x, F32 h0, F32 c0, F32 k, F32 rk, F32 b, F32 pe, F32 pr, bool reverse, float cell_clip,
                     float projection_clip, Out y, Out h_T, Out c_T) {
  LstmShape s;
  if (auto err = ReadShape(x, h0, c0, k, rk, b, pe, pr, reverse, cell_clip, projection_clip, &s); err.failure())
    return err;
  LstmForward(s, Data(x), Data(h0), Data(c0), {Data(k), Data(rk), Data(b), Data(pe), Data(pr)}, Data(y), Data(h_T),
              Data(c_T), Reused(WorkspaceFloats(s)), 0);
  return ffi::Error::Success();
}

ffi::Error Backward(F32 x, F32 h0, F32 c0, F32 k, F32 rk, F32 b, F32 pe, F32 pr, F32 workspace, F32 dy, F32 dh_T,
                    F32 dc_T, bool reverse, float cell_clip, float projection_clip, Out dx, Out dh0, Out dc0, Out dk,
                    Out drk, Out db, Out dpe, Out dpr) {
  LstmShape s;
  if (auto err = ReadShape(x, h0, c0, k, rk, b, pe, pr, reverse, cell_clip, projection_clip, &s); err.failure())
    return err;
  if (workspace.element_count() != static_cast<size_t>(WorkspaceFloats(s)))
    return ffi::Error::InvalidArgument("keras_lstm fused LSTM: the workspace has the wrong size");
  LstmBackward(s, Data(x), {Data(k), Data(rk), Data(b), Data(pe), Data(pr)}, Data(workspace), Data(dy), Data(dh_T),
               Data(dc_T), Data(dx), Data(dh0), Data(dc0), {Data(dk), Data(drk), Data(db), Data(dpe), Data(dpr)},
               Reused(BackwardScratchFloats(s)), 0);
  return ffi::Error::Success();
}

}  // namespace
}  // namespace keras_lstm

namespace keras_lstm {
namespace {

// The forward's 8 inputs, in the order of lstm.h: x, h0, c0, kernel, recurrent_kernel, bias, peephole,
// projection.
template <typename Binding>
auto Inputs(Binding binding) {
  return std::move(binding).template Arg<F32>().template Arg<F32>().template Arg<F32>().template Arg<F32>()
      .template Arg<F32>().template Arg<F32>().template Arg<F32>().template Arg<F32>();
}

template <typename Binding>
auto Attrs(Binding binding) {
  return std::move(binding).template Attr<bool>("reverse").template Attr<float>("cell_clip")
      .template Attr<float>("projection_clip");
}

}  // namespace
}  // namespace keras_lstm

// Results: y, h_T, c_T, and the workspace.
XLA_FFI_DEFINE_HANDLER_SYMBOL(KerasLstmFusedForward, keras_lstm::Forward,
                              keras_lstm::Attrs(keras_lstm::Inputs(ffi::Ffi::Bind()))
                                  .Ret<keras_lstm::F32>()
                                  .Ret<keras_lstm::F32>()
                                  .Ret<keras_lstm::F32>()
                                  .Ret<keras_lstm::F32>());

// Results: y, h_T, c_T.
XLA_FFI_DEFINE_HANDLER_SYMBOL(KerasLstmFusedInference, keras_lstm::Inference,
                              keras_lstm::Attrs(keras_lstm::Inputs(ffi::Ffi::Bind()))
                                  .Ret<keras_lstm::F32>()
                                  .Ret<keras_lstm::F32>()
                                  .Ret<keras_lstm::F32>());

// Inputs: the forward's, its workspace, dy, dh_T, dc_T. Results: the gradients of the forward's 8 inputs.
XLA_FFI_DEFINE_HANDLER_SYMBOL(KerasLstmFusedBackward, keras_lstm::Backward,
                              keras_lstm::Attrs(keras_lstm::Inputs(ffi::Ffi::Bind())
                                                    .Arg<keras_lstm::F32>()
                                                    .Arg<keras_lstm::F32>()
                                                    .Arg<keras_lstm::F32>()
                                                    .Arg<keras_lstm::F32>())
                                  .Ret<keras_lstm::F32>()
                                  .Ret<keras_lstm::F32>()
                                  .Ret<keras_lstm::F32>()
                                  .Ret<keras_lstm::F32>()
                                  .Ret<keras_lstm::F32>()
                                  .Ret<keras_lstm::F32>()
                                  .Ret<keras_lstm::F32>()
                                  .Ret<keras_lstm::F32>());

// The workspace's size for Python (ctypes), from the same shape rules as the handlers.
extern "C" int64_t keras_lstm_workspace_floats(int64_t T, int64_t B, int64_t D, int64_t H, int64_t P, int G,
                                               int projection) {
  keras_lstm::LstmShape s;
  s.T = T, s.B = B, s.D = D, s.H = H, s.P = P, s.G = G, s.projection = projection != 0;
  return keras_lstm::WorkspaceFloats(s);
}
