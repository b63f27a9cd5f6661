// The fused LSTM as two TensorFlow ops (CPU, float32): KerasLstmFused (the forward, keeping the
// workspace the backward reads when `training`) and KerasLstmFusedGrad. This file only checks shapes,
// allocates and calls lstm.h; Python registers the gradient and makes every decision
// (keras_lstm/kernels/fused.py).
//
// Inputs, as Keras holds them: x (B, T, D) batch-major, h0 (B, P), c0 (B, H), kernel (D, G·H),
// recurrent_kernel (P, G·H), bias (G·H), peephole (G-1, H) or empty, projection (H, P) or empty.
// G, the number of gate blocks, is kernel's width over c0's (4; 3 under coupled gates).

#include <cstdlib>

#include "lstm.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace keras_lstm {
namespace {

using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::Status;
using tensorflow::Tensor;
using tensorflow::TensorShape;
using tensorflow::errors::InvalidArgument;
using tensorflow::shape_inference::InferenceContext;
using tensorflow::shape_inference::ShapeHandle;

const float* In(const Tensor& t) { return t.NumElements() ? t.flat<float>().data() : nullptr; }
float* Out(Tensor* t) { return t->NumElements() ? t->flat<float>().data() : nullptr; }

// The threads of one call: TensorFlow's intra-op pool size, unless OMP_NUM_THREADS is set (then
// OpenMP's own setting, which the user chose).
int Threads(OpKernelContext* ctx) {
  static const bool user_set = std::getenv("OMP_NUM_THREADS") != nullptr;
  return user_set ? 0 : ctx->device()->tensorflow_cpu_worker_threads()->num_threads;
}

struct Attrs {
  bool reverse;
  float cell_clip, projection_clip;
  Status Read(OpKernelConstruction* ctx) {
    TF_RETURN_IF_ERROR(ctx->GetAttr("reverse", &reverse));
    TF_RETURN_IF_ERROR(ctx->GetAttr("cell_clip", &cell_clip));
    return ctx->GetAttr("projection_clip", &projection_clip);
  }
};

// The shape of a call from the forward's 8 inputs, each checked against the others.
Status ReadShape(OpKernelContext* ctx, const Attrs& attrs, LstmShape* s, LstmWeights* w) {
  const Tensor &x = ctx->input(0), &h0 = ctx->input(1), &c0 = ctx->input(2), &k = ctx->input(3),
               &rk = ctx->input(4), &b = ctx->input(5), &pe = ctx->input(6), &pr = ctx->input(7);
  if (x.dims() != 3) return InvalidArgument("x must be (batch, time, features), got ", x.shape().DebugString());
  if (c0.dims() != 2 || c0.dim_size(1) == 0)
    return InvalidArgument("c0 must be (batch, units), got ", c0.shape().DebugString());
  s->B = x.dim_size(0), s->T = x.dim_size(1), s->D = x.dim_size(2), s->H = c0.dim_size(1);
  if (k.dims() != 2 || k.dim_size(0) != s->D || k.dim_size(1) % s->H != 0)
    return InvalidArgument("kernel must be (", s->D, ", G*", s->H, "), got ", k.shape().DebugString());
  s->G = static_cast<int>(k.dim_size(1) / s->H);
  s->projection = pr.NumElements() > 0, s->peephole = pe.NumElements() > 0;
  if (s->projection && (pr.dims() != 2 || pr.dim_size(0) != s->H))
    return InvalidArgument("projection must be (", s->H, ", P), got ", pr.shape().DebugString());
  s->P = s->projection ? pr.dim_size(1) : s->H;
  s->reverse = attrs.reverse, s->cell_clip = attrs.cell_clip, s->projection_clip = attrs.projection_clip;
  const char* problem = CheckShape(*s);
  if (*problem)
    return InvalidArgument(problem, " (kernel ", k.shape().DebugString(), ", c0 ", c0.shape().DebugString(), ")");
  const int64_t GH = s->G * s->H;
  if (c0.dim_size(0) != s->B)
    return InvalidArgument("c0 must be (", s->B, ", ", s->H, "), got ", c0.shape().DebugString());
  if (h0.shape() != TensorShape({s->B, s->P}))
    return InvalidArgument("h0 must be (", s->B, ", ", s->P, "), got ", h0.shape().DebugString());
  if (rk.shape() != TensorShape({s->P, GH}))
    return InvalidArgument("recurrent_kernel must be (", s->P, ", ", GH, "), got ", rk.shape().DebugString());
  if (b.shape() != TensorShape({GH})) return InvalidArgument("bias must be (", GH, "), got ", b.shape().DebugString());
  if (s->peephole && pe.shape() != TensorShape({s->G - 1, s->H}))
    return InvalidArgument("peephole must be (", s->G - 1, ", ", s->H, "), got ", pe.shape().DebugString());
  *w = {In(k), In(rk), In(b), In(pe), In(pr)};
  return tensorflow::OkStatus();
}

class ForwardOp : public OpKernel {
 public:
  explicit ForwardOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, attrs_.Read(ctx));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("training", &training_));
  }

  void Compute(OpKernelContext* ctx) override {
    LstmShape s;
    LstmWeights w;
    OP_REQUIRES_OK(ctx, ReadShape(ctx, attrs_, &s, &w));
    Tensor *y, *h, *c, *ws;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({s.B, s.T, s.P}), &y));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({s.B, s.P}), &h));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, TensorShape({s.B, s.H}), &c));
    const TensorShape ws_shape({WorkspaceFloats(s)});
    Tensor temp;  // without a tape the workspace is only this call's
    if (training_) {
      OP_REQUIRES_OK(ctx, ctx->allocate_output(3, ws_shape, &ws));
    } else {
      OP_REQUIRES_OK(ctx, ctx->allocate_output(3, TensorShape({0}), &ws));
      OP_REQUIRES_OK(ctx, ctx->allocate_temp(tensorflow::DT_FLOAT, ws_shape, &temp));
      ws = &temp;
    }
    LstmForward(s, In(ctx->input(0)), In(ctx->input(1)), In(ctx->input(2)), w, Out(y), Out(h), Out(c), Out(ws),
                Threads(ctx));
  }

 private:
  Attrs attrs_;
  bool training_;
};

// Inputs: the forward's 8 inputs, its workspace, then dy, dh_T, dc_T. Outputs: the gradients of the 8
// inputs (empty for an absent peephole or projection).
class BackwardOp : public OpKernel {
 public:
  explicit BackwardOp(OpKernelConstruction* ctx) : OpKernel(ctx) { OP_REQUIRES_OK(ctx, attrs_.Read(ctx)); }

  void Compute(OpKernelContext* ctx) override {
    LstmShape s;
    LstmWeights w;
    OP_REQUIRES_OK(ctx, ReadShape(ctx, attrs_, &s, &w));
    const Tensor &ws = ctx->input(8), &dy = ctx->input(9), &dh = ctx->input(10), &dc = ctx->input(11);
    OP_REQUIRES(ctx, ws.NumElements() == WorkspaceFloats(s),
                InvalidArgument("workspace must hold ", WorkspaceFloats(s), " floats, got ", ws.NumElements(),
                                " (from a forward run with training=true on the same shapes)"));
    OP_REQUIRES(ctx, dy.shape() == TensorShape({s.B, s.T, s.P}),
                InvalidArgument("dy must be (", s.B, ", ", s.T, ", ", s.P, "), got ", dy.shape().DebugString()));
    OP_REQUIRES(ctx, dh.shape() == ctx->input(1).shape() && dc.shape() == ctx->input(2).shape(),
                InvalidArgument("dh and dc must have h0's and c0's shapes"));
    Tensor* d[8];
    for (int k = 0; k < 8; ++k) OP_REQUIRES_OK(ctx, ctx->allocate_output(k, ctx->input(k).shape(), &d[k]));
    Tensor scratch;
    OP_REQUIRES_OK(ctx, ctx->allocate_temp(tensorflow::DT_FLOAT, TensorShape({BackwardScratchFloats(s)}), &scratch));
    LstmBackward(s, In(ctx->input(0)), w, In(ws), In(dy), In(dh), In(dc), Out(d[0]), Out(d[1]), Out(d[2]),
                 {Out(d[3]), Out(d[4]), Out(d[5]), Out(d[6]), Out(d[7])}, Out(&scratch), Threads(ctx));
  }

 private:
  Attrs attrs_;
};

}  // namespace

REGISTER_OP("KerasLstmFused")
    .Input("x: float")
    .Input("h0: float")
    .Input("c0: float")
    .Input("kernel: float")
    .Input("recurrent_kernel: float")
    .Input("bias: float")
    .Input("peephole: float")
    .Input("projection: float")
    .Output("y: float")
    .Output("h: float")
    .Output("c: float")
    .Output("workspace: float")
    .Attr("reverse: bool = false")
    .Attr("training: bool = true")
    .Attr("cell_clip: float = 0")
    .Attr("projection_clip: float = 0")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle x = c->input(0);
      TF_RETURN_IF_ERROR(c->WithRank(x, 3, &x));
      c->set_output(0, c->MakeShape({c->Dim(x, 0), c->Dim(x, 1), c->Dim(c->input(1), 1)}));
      c->set_output(1, c->input(1));
      c->set_output(2, c->input(2));
      c->set_output(3, c->Vector(c->UnknownDim()));
      return tensorflow::OkStatus();
    });

REGISTER_OP("KerasLstmFusedGrad")
    .Input("x: float")
    .Input("h0: float")
    .Input("c0: float")
    .Input("kernel: float")
    .Input("recurrent_kernel: float")
    .Input("bias: float")
    .Input("peephole: float")
    .Input("projection: float")
    .Input("workspace: float")
    .Input("dy: float")
    .Input("dh: float")
    .Input("dc: float")
    .Output("dx: float")
    .Output("dh0: float")
    .Output("dc0: float")
    .Output("dkernel: float")
    .Output("drecurrent_kernel: float")
    .Output("dbias: float")
    .Output("dpeephole: float")
    .Output("dprojection: float")
    .Attr("reverse: bool = false")
    .Attr("cell_clip: float = 0")
    .Attr("projection_clip: float = 0")
    .SetShapeFn([](InferenceContext* c) {
      for (int k = 0; k < 8; ++k) c->set_output(k, c->input(k));
      return tensorflow::OkStatus();
    });

REGISTER_KERNEL_BUILDER(Name("KerasLstmFused").Device(tensorflow::DEVICE_CPU), ForwardOp);
REGISTER_KERNEL_BUILDER(Name("KerasLstmFusedGrad").Device(tensorflow::DEVICE_CPU), BackwardOp);

}  // namespace keras_lstm
