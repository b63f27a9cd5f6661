// Two TensorFlow ops around oneDNN's fused LSTM primitive (CPU, float32): the forward
// (forward_training with a workspace, or forward_inference) and its backward (lstm_backward,
// reusing that workspace). Python registers the gradient and makes every decision
// (keras_lstm/kernels/onednn.py); this file only maps tensors onto oneDNN memory and runs primitives.
//
// Layouts, taken as they are: x (T, B, D) is oneDNN's `tnc` (time-major: its backward ran faster
// than with batch-major `ntc`, 184-194 against 258-294 ms at B=64, T=100, D=64, H=256); h0 (B, P) and c0 (B, H) are `ldnc`
// with L = D = 1; the Keras kernel (D, 4H) and recurrent kernel (P, 4H), gate blocks i, f, g (C~), o,
// are `ldigo`; the bias (4H) and the peephole kernel (3, H), rows i, f, o, are `ldgo`; the
// projection kernel (H, P) is `ldio`. An empty peephole or projection tensor means the variant is off.
// The primitive picks its own weight layouts (format `any`), reached by one reorder per call; what
// depends only on the shapes is built once per shape (Plan).

#include <omp.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "oneapi/dnnl/dnnl.hpp"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace keras_lstm {
namespace {

using dnnl::memory;
using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::Status;
using tensorflow::Tensor;
using tensorflow::TensorShape;
using tensorflow::errors::InvalidArgument;
using tag = memory::format_tag;

dnnl::engine& CpuEngine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// oneDNN's OpenMP team follows the size of TensorFlow's intra-op pool, or is one thread when a step's
// recurrent GEMM is too small to share (below kSerialFlops, threads cost more in barriers than they
// save: batch 1, H=64 took 2.3 ms with two threads and 0.9 with one). omp_set_num_threads sets the
// calling thread's ICV only, so nothing changes for other threads; OMP_NUM_THREADS, when set, wins.
constexpr int64_t kSerialFlops = 1 << 20;

void MatchThreads(OpKernelContext* ctx, int64_t step_flops) {
  static const bool user_set = std::getenv("OMP_NUM_THREADS") != nullptr;
  if (user_set) return;
  const int pool = ctx->device()->tensorflow_cpu_worker_threads()->num_threads;
  const int n = step_flops < kSerialFlops ? 1 : pool;
  if (n > 0 && omp_get_max_threads() != n) omp_set_num_threads(n);
}

memory::desc F32(memory::dims dims, tag t) { return memory::desc(dims, memory::data_type::f32, t); }

void* Ptr(const Tensor& t) { return const_cast<char*>(t.tensor_data().data()); }

// The descriptors of one call, from the forward inputs (0..7: x, h0, c0, kernel, recurrent_kernel,
// bias, peephole, projection).
struct Problem {
  int64_t B, T, D, H, P;
  bool peephole, projection;
  memory::desc x, h, c, w_layer, w_iter, w_peephole, w_projection, bias, y;

  Status Read(OpKernelContext* ctx) {
    const Tensor &xt = ctx->input(0), &h0 = ctx->input(1), &c0 = ctx->input(2), &k = ctx->input(3),
                 &rk = ctx->input(4), &b = ctx->input(5), &pe = ctx->input(6), &pr = ctx->input(7);
    if (xt.dims() != 3) return InvalidArgument("x must be (time, batch, features), got ", xt.shape().DebugString());
    T = xt.dim_size(0), B = xt.dim_size(1), D = xt.dim_size(2);
    if (k.dims() != 2 || k.dim_size(0) != D || k.dim_size(1) % 4 != 0)
      return InvalidArgument("kernel must be (", D, ", 4*units), got ", k.shape().DebugString());
    H = k.dim_size(1) / 4;
    projection = pr.NumElements() > 0;
    peephole = pe.NumElements() > 0;
    if (projection && (pr.dims() != 2 || pr.dim_size(0) != H))
      return InvalidArgument("projection must be (", H, ", P), got ", pr.shape().DebugString());
    P = projection ? pr.dim_size(1) : H;
    if (rk.shape() != TensorShape({P, 4 * H}))
      return InvalidArgument("recurrent_kernel must be (", P, ", ", 4 * H, "), got ", rk.shape().DebugString());
    if (b.shape() != TensorShape({4 * H}))
      return InvalidArgument("bias must be (", 4 * H, "), got ", b.shape().DebugString());
    if (peephole && pe.shape() != TensorShape({3, H}))
      return InvalidArgument("peephole must be (3, ", H, "), got ", pe.shape().DebugString());
    if (h0.shape() != TensorShape({B, P}))
      return InvalidArgument("h0 must be (", B, ", ", P, "), got ", h0.shape().DebugString());
    if (c0.shape() != TensorShape({B, H}))
      return InvalidArgument("c0 must be (", B, ", ", H, "), got ", c0.shape().DebugString());
    x = F32({T, B, D}, tag::tnc);
    y = F32({T, B, P}, tag::tnc);
    h = F32({1, 1, B, P}, tag::ldnc);
    c = F32({1, 1, B, H}, tag::ldnc);
    w_layer = F32({1, 1, D, 4, H}, tag::ldigo);
    w_iter = F32({1, 1, P, 4, H}, tag::ldigo);
    bias = F32({1, 1, 4, H}, tag::ldgo);
    w_peephole = peephole ? F32({1, 1, 3, H}, tag::ldgo) : memory::desc();
    w_projection = projection ? F32({1, 1, H, P}, tag::ldio) : memory::desc();
    return tensorflow::OkStatus();
  }

  int64_t StepFlops() const { return 2 * B * P * 4 * H; }  // one step's h·U

  std::string Key(bool training) const {
    return std::to_string(T) + "," + std::to_string(B) + "," + std::to_string(D) + "," + std::to_string(H) + "," +
           std::to_string(P) + "," + std::to_string(peephole) + "," + std::to_string(training);
  }

  static memory::desc Any(const memory::desc& d) {
    return d.is_zero() ? d : memory::desc(d.get_dims(), memory::data_type::f32, tag::any);
  }

  dnnl::lstm_forward::primitive_desc Forward(bool training, bool reverse) const {
    return dnnl::lstm_forward::primitive_desc(
        CpuEngine(), training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference,
        Direction(reverse), x, h, c, Any(w_layer), Any(w_iter), w_peephole, Any(w_projection), bias, y, h, c,
        UserScratchpad());
  }

  static dnnl::rnn_direction Direction(bool reverse) {
    return reverse ? dnnl::rnn_direction::unidirectional_right2left
                   : dnnl::rnn_direction::unidirectional_left2right;
  }

  static dnnl::primitive_attr UserScratchpad() {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    return attr;
  }
};

// Scratch memory for one call, owned by TensorFlow's allocator.
Status Bytes(OpKernelContext* ctx, size_t n, Tensor* t) {
  return ctx->allocate_temp(tensorflow::DT_UINT8, TensorShape({static_cast<int64_t>(n)}), t);
}

// What depends only on a call's shapes, built once per shape and op instance (oneDNN's primitive
// cache would rebuild the descriptors at every call): the primitive, its memory descriptors, and the
// reorders between Keras's weight layouts and the primitive's (empty where they are the same).
struct Plan {
  dnnl::primitive primitive;
  memory::desc workspace, scratchpad;
  memory::desc weights[3];       // layer, iter, projection, as the primitive reads them
  dnnl::reorder to_weights[3];   // Keras's layout -> the primitive's
  memory::desc diff_weights[3];  // backward: as the primitive writes the weight gradients
  dnnl::reorder from_diff[3];    // backward: the primitive's layout -> Keras's
  size_t forward_workspace = 0;  // backward: the bytes the forward kept
};

dnnl::reorder ReorderIfNeeded(const memory::desc& from, const memory::desc& to) {
  if (from.is_zero() || from == to) return dnnl::reorder();
  return dnnl::reorder(dnnl::reorder::primitive_desc(CpuEngine(), from, CpuEngine(), to));
}

class PlanCache {
 public:
  template <typename Build>
  std::shared_ptr<const Plan> Get(const std::string& key, Build build) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = plans_.find(key);
    if (it != plans_.end()) return it->second;
    if (plans_.size() >= 64) plans_.clear();  // many shapes (e.g. every sequence length): start over
    return plans_[key] = std::make_shared<const Plan>(build());
  }

 private:
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<const Plan>> plans_;
};

// The weights the primitive reads: each Keras tensor itself, or its reordered copy in `tmp`.
Status WeightArgs(OpKernelContext* ctx, dnnl::stream& s, const Problem& p, const Plan& plan, Tensor tmp[3],
                  memory out[3]) {
  const memory::desc user[3] = {p.w_layer, p.w_iter, p.w_projection};
  const int input[3] = {3, 4, 7};
  for (int k = 0; k < 3; ++k) {
    if (user[k].is_zero()) continue;
    memory user_mem(user[k], CpuEngine(), Ptr(ctx->input(input[k])));
    if (!plan.to_weights[k]) {
      out[k] = user_mem;
      continue;
    }
    TF_RETURN_IF_ERROR(Bytes(ctx, plan.weights[k].get_size(), &tmp[k]));
    out[k] = memory(plan.weights[k], CpuEngine(), Ptr(tmp[k]));
    plan.to_weights[k].execute(s, user_mem, out[k]);
  }
  return tensorflow::OkStatus();
}

#define DNNL_OK(ctx, expr)                                                                  \
  try {                                                                                     \
    expr;                                                                                   \
  } catch (const dnnl::error& e) {                                                          \
    ctx->CtxFailure(__FILE__, __LINE__, tensorflow::errors::Internal("oneDNN: ", e.what())); \
    return;                                                                                 \
  }

class ForwardOp : public OpKernel {
 public:
  explicit ForwardOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("reverse", &reverse_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("training", &training_));
  }

  void Compute(OpKernelContext* ctx) override {
    Problem p;
    OP_REQUIRES_OK(ctx, p.Read(ctx));
    Tensor *y, *h, *c, *ws;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({p.T, p.B, p.P}), &y));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({p.B, p.P}), &h));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, TensorShape({p.B, p.H}), &c));
    if (p.B == 0 || p.T == 0) {  // nothing to run: the state passes through
      h->flat<float>() = ctx->input(1).flat<float>();
      c->flat<float>() = ctx->input(2).flat<float>();
      OP_REQUIRES_OK(ctx, ctx->allocate_output(3, TensorShape({0}), &ws));
      return;
    }
    MatchThreads(ctx, p.StepFlops());
    DNNL_OK(ctx, Run(ctx, p, y, h, c, &ws));
  }

 private:
  Plan Build(const Problem& p) const {
    auto pd = p.Forward(training_, reverse_);
    Plan plan;
    plan.primitive = dnnl::lstm_forward(pd);
    plan.workspace = training_ ? pd.workspace_desc() : memory::desc();
    plan.scratchpad = pd.scratchpad_desc();
    const memory::desc user[3] = {p.w_layer, p.w_iter, p.w_projection};
    const memory::desc want[3] = {pd.weights_layer_desc(), pd.weights_iter_desc(), pd.weights_projection_desc()};
    for (int k = 0; k < 3; ++k) plan.weights[k] = want[k], plan.to_weights[k] = ReorderIfNeeded(user[k], want[k]);
    return plan;
  }

  void Run(OpKernelContext* ctx, const Problem& p, Tensor* y, Tensor* h, Tensor* c, Tensor** ws) {
    dnnl::stream s(CpuEngine());
    auto plan = plans_.Get(p.Key(training_), [&] { return Build(p); });
    const size_t ws_size = plan->workspace.is_zero() ? 0 : plan->workspace.get_size();
    OP_REQUIRES_OK(ctx, ctx->allocate_output(3, TensorShape({static_cast<int64_t>(ws_size)}), ws));
    Tensor tmp[3], t_scratch;
    memory w[3];
    OP_REQUIRES_OK(ctx, WeightArgs(ctx, s, p, *plan, tmp, w));
    OP_REQUIRES_OK(ctx, Bytes(ctx, plan->scratchpad.get_size(), &t_scratch));
    auto e = CpuEngine();
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC_LAYER, memory(p.x, e, Ptr(ctx->input(0)))},
        {DNNL_ARG_SRC_ITER, memory(p.h, e, Ptr(ctx->input(1)))},
        {DNNL_ARG_SRC_ITER_C, memory(p.c, e, Ptr(ctx->input(2)))},
        {DNNL_ARG_WEIGHTS_LAYER, w[0]},
        {DNNL_ARG_WEIGHTS_ITER, w[1]},
        {DNNL_ARG_BIAS, memory(p.bias, e, Ptr(ctx->input(5)))},
        {DNNL_ARG_DST_LAYER, memory(p.y, e, Ptr(*y))},
        {DNNL_ARG_DST_ITER, memory(p.h, e, Ptr(*h))},
        {DNNL_ARG_DST_ITER_C, memory(p.c, e, Ptr(*c))},
        {DNNL_ARG_SCRATCHPAD, memory(plan->scratchpad, e, Ptr(t_scratch))},
    };
    if (p.peephole) args[DNNL_ARG_WEIGHTS_PEEPHOLE] = memory(p.w_peephole, e, Ptr(ctx->input(6)));
    if (p.projection) args[DNNL_ARG_WEIGHTS_PROJECTION] = w[2];
    if (training_) args[DNNL_ARG_WORKSPACE] = memory(plan->workspace, e, Ptr(**ws));
    plan->primitive.execute(s, args);
    s.wait();
  }

  PlanCache plans_;
  bool reverse_, training_;
};

// Inputs: the forward's 8 inputs, then its outputs y, h_T, c_T, workspace, then dy, dh_T, dc_T.
// Outputs: the gradients of the 8 inputs (empty for an absent peephole or projection).
class BackwardOp : public OpKernel {
 public:
  explicit BackwardOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("reverse", &reverse_));
  }

  void Compute(OpKernelContext* ctx) override {
    Problem p;
    OP_REQUIRES_OK(ctx, p.Read(ctx));
    Tensor* d[8];
    for (int k = 0; k < 8; ++k) {
      OP_REQUIRES_OK(ctx, ctx->allocate_output(k, ctx->input(k).shape(), &d[k]));
      // oneDNN accumulates into the weight gradients (3..7); it writes dx, dh0 and dc0 whole.
      if (k >= 3) std::memset(Ptr(*d[k]), 0, d[k]->TotalBytes());
    }
    if (p.B == 0 || p.T == 0) {
      d[1]->flat<float>() = ctx->input(13).flat<float>();
      d[2]->flat<float>() = ctx->input(14).flat<float>();
      return;
    }
    MatchThreads(ctx, p.StepFlops());
    DNNL_OK(ctx, Run(ctx, p, d));
  }

 private:
  Plan Build(const Problem& p) const {
    auto fwd = p.Forward(true, reverse_);
    auto any = Problem::Any;
    dnnl::lstm_backward::primitive_desc pd(
        CpuEngine(), dnnl::prop_kind::backward, Problem::Direction(reverse_), p.x, p.h, p.c, any(p.w_layer),
        any(p.w_iter), p.w_peephole, any(p.w_projection), p.bias, p.y, p.h, p.c, p.x, p.h, p.c,
        any(p.w_layer), any(p.w_iter), p.w_peephole, any(p.w_projection), p.bias, p.y, p.h, p.c, fwd,
        Problem::UserScratchpad());
    Plan plan;
    plan.primitive = dnnl::lstm_backward(pd);
    plan.workspace = pd.workspace_desc();
    plan.scratchpad = pd.scratchpad_desc();
    plan.forward_workspace = fwd.workspace_desc().get_size();
    const memory::desc user[3] = {p.w_layer, p.w_iter, p.w_projection};
    const memory::desc want[3] = {pd.weights_layer_desc(), pd.weights_iter_desc(), pd.weights_projection_desc()};
    const memory::desc diff[3] = {pd.diff_weights_layer_desc(), pd.diff_weights_iter_desc(),
                                  pd.diff_weights_projection_desc()};
    for (int k = 0; k < 3; ++k) {
      plan.weights[k] = want[k], plan.to_weights[k] = ReorderIfNeeded(user[k], want[k]);
      plan.diff_weights[k] = diff[k], plan.from_diff[k] = ReorderIfNeeded(diff[k], user[k]);
    }
    return plan;
  }

  void Run(OpKernelContext* ctx, const Problem& p, Tensor** d) {
    dnnl::stream s(CpuEngine());
    auto plan = plans_.Get(p.Key(true), [&] { return Build(p); });
    OP_REQUIRES(ctx, ctx->input(11).NumElements() == static_cast<int64_t>(plan->forward_workspace),
                InvalidArgument("workspace has ", ctx->input(11).NumElements(), " bytes, the primitive needs ",
                                plan->forward_workspace, ": run the forward with training=True"));
    Tensor tmp[3], t_diff[3], t_scratch;
    memory w[3], dw[3];
    OP_REQUIRES_OK(ctx, WeightArgs(ctx, s, p, *plan, tmp, w));
    // Weight gradients in the primitive's layouts (zeroed: it accumulates), reordered to Keras's after.
    const memory::desc user[3] = {p.w_layer, p.w_iter, p.w_projection};
    Tensor* out[3] = {d[3], d[4], d[7]};
    auto e = CpuEngine();
    for (int k = 0; k < 3; ++k) {
      if (user[k].is_zero()) continue;
      if (!plan->from_diff[k]) {
        dw[k] = memory(user[k], e, Ptr(*out[k]));
        continue;
      }
      OP_REQUIRES_OK(ctx, Bytes(ctx, plan->diff_weights[k].get_size(), &t_diff[k]));
      std::memset(Ptr(t_diff[k]), 0, t_diff[k].TotalBytes());
      dw[k] = memory(plan->diff_weights[k], e, Ptr(t_diff[k]));
    }
    OP_REQUIRES_OK(ctx, Bytes(ctx, plan->scratchpad.get_size(), &t_scratch));
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC_LAYER, memory(p.x, e, Ptr(ctx->input(0)))},
        {DNNL_ARG_SRC_ITER, memory(p.h, e, Ptr(ctx->input(1)))},
        {DNNL_ARG_SRC_ITER_C, memory(p.c, e, Ptr(ctx->input(2)))},
        {DNNL_ARG_WEIGHTS_LAYER, w[0]},
        {DNNL_ARG_WEIGHTS_ITER, w[1]},
        {DNNL_ARG_BIAS, memory(p.bias, e, Ptr(ctx->input(5)))},
        {DNNL_ARG_DST_LAYER, memory(p.y, e, Ptr(ctx->input(8)))},
        {DNNL_ARG_DST_ITER, memory(p.h, e, Ptr(ctx->input(9)))},
        {DNNL_ARG_DST_ITER_C, memory(p.c, e, Ptr(ctx->input(10)))},
        {DNNL_ARG_WORKSPACE, memory(plan->workspace, e, Ptr(ctx->input(11)))},
        {DNNL_ARG_DIFF_DST_LAYER, memory(p.y, e, Ptr(ctx->input(12)))},
        {DNNL_ARG_DIFF_DST_ITER, memory(p.h, e, Ptr(ctx->input(13)))},
        {DNNL_ARG_DIFF_DST_ITER_C, memory(p.c, e, Ptr(ctx->input(14)))},
        {DNNL_ARG_DIFF_SRC_LAYER, memory(p.x, e, Ptr(*d[0]))},
        {DNNL_ARG_DIFF_SRC_ITER, memory(p.h, e, Ptr(*d[1]))},
        {DNNL_ARG_DIFF_SRC_ITER_C, memory(p.c, e, Ptr(*d[2]))},
        {DNNL_ARG_DIFF_WEIGHTS_LAYER, dw[0]},
        {DNNL_ARG_DIFF_WEIGHTS_ITER, dw[1]},
        {DNNL_ARG_DIFF_BIAS, memory(p.bias, e, Ptr(*d[5]))},
        {DNNL_ARG_SCRATCHPAD, memory(plan->scratchpad, e, Ptr(t_scratch))},
    };
    if (p.peephole) {
      args[DNNL_ARG_WEIGHTS_PEEPHOLE] = memory(p.w_peephole, e, Ptr(ctx->input(6)));
      args[DNNL_ARG_DIFF_WEIGHTS_PEEPHOLE] = memory(p.w_peephole, e, Ptr(*d[6]));
    }
    if (p.projection) {
      args[DNNL_ARG_WEIGHTS_PROJECTION] = w[2];
      args[DNNL_ARG_DIFF_WEIGHTS_PROJECTION] = dw[2];
    }
    plan->primitive.execute(s, args);
    for (int k = 0; k < 3; ++k) {
      if (user[k].is_zero() || !plan->from_diff[k]) continue;
      memory dst(user[k], e, Ptr(*out[k]));
      plan->from_diff[k].execute(s, dw[k], dst);
    }
    s.wait();
  }

  PlanCache plans_;
  bool reverse_;
};

}  // namespace

using tensorflow::shape_inference::InferenceContext;
using tensorflow::shape_inference::ShapeHandle;

REGISTER_OP("KerasLstmOnednn")
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
    .Output("workspace: uint8")
    .Attr("reverse: bool = false")
    .Attr("training: bool = true")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle x = c->input(0);
      TF_RETURN_IF_ERROR(c->WithRank(x, 3, &x));
      auto p = c->Dim(c->input(1), 1);
      c->set_output(0, c->MakeShape({c->Dim(x, 0), c->Dim(x, 1), p}));
      c->set_output(1, c->input(1));
      c->set_output(2, c->input(2));
      c->set_output(3, c->Vector(c->UnknownDim()));
      return tensorflow::OkStatus();
    });

REGISTER_OP("KerasLstmOnednnGrad")
    .Input("x: float")
    .Input("h0: float")
    .Input("c0: float")
    .Input("kernel: float")
    .Input("recurrent_kernel: float")
    .Input("bias: float")
    .Input("peephole: float")
    .Input("projection: float")
    .Input("y: float")
    .Input("h: float")
    .Input("c: float")
    .Input("workspace: uint8")
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
    .SetShapeFn([](InferenceContext* c) {
      for (int k = 0; k < 8; ++k) c->set_output(k, c->input(k));
      return tensorflow::OkStatus();
    });

REGISTER_KERNEL_BUILDER(Name("KerasLstmOnednn").Device(tensorflow::DEVICE_CPU), ForwardOp);
REGISTER_KERNEL_BUILDER(Name("KerasLstmOnednnGrad").Device(tensorflow::DEVICE_CPU), BackwardOp);

}  // namespace keras_lstm
