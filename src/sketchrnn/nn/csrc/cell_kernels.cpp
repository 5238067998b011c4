// Fused elementwise kernels for the recurrent cells of sketchrnn.nn.cells (CPU, float32 and
// float64), loaded by sketchrnn/nn/fused.py with torch.utils.cpp_extension.load.
//
// One step of a cell is a matmul (left to ATen) followed by ~25 small elementwise operations
// (layer norm of each gate, sigmoid/tanh, dropout, products). Here each step's elementwise
// part is one pass over each batch row, forward and backward, parallel over the batch rows
// (at::parallel_for). The gamma/beta gradients are summed over the batch deterministically:
// the row pass writes per-row terms to a scratch buffer, a second pass over the columns sums
// the rows in order.
//
// Maths (gate order i, f, g, o; `mask` is the recurrent-dropout mask already scaled by
// 1 / (1 - p), or absent):
//   LayerNorm LSTM: a_k = LN(pre_k) * gate_gamma_k + gate_beta_k  (LN without affine, per gate)
//                   c = sigmoid(a_f) * c_prev + sigmoid(a_i) * mask * tanh(a_g)
//                   h = sigmoid(a_o) * tanh(LN(c) * cell_gamma + cell_beta)
//   plain LSTM:     a = pre;  same c;  h = sigmoid(a_o) * tanh(c)
//
// Besides the per-step kernels, the whole time loop of the plain and LayerNorm LSTMs (the
// recurrent matmul per step included) runs here too: `*_seq_forward` / `*_seq_backward`, so
// the Python autograd.Function around them has one node for the whole sequence, and the
// recurrent weight's gradient is one matmul over all steps.

#include <torch/extension.h>

#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <mutex>
#include <vector>

#if defined(__SSE2__)
#include <immintrin.h>
#endif
#if defined(__linux__)
#include <sys/mman.h>
#endif

// The inner loops over the hidden units are marked for vectorisation: gcc does not take the
// __restrict__ of pointers local to the parallel_for lambdas into account, and without these
// pragmas it vectorised only some loops (the others called the scalar expf/tanhf, 30x slower).
#define SIMD _Pragma("omp simd")
#define SIMD_PRAGMA(x) _Pragma(#x)
#define SIMD_REDUCE(...) SIMD_PRAGMA(omp simd reduction(+ : __VA_ARGS__))

namespace {

using at::Tensor;

inline float exp_(float x) { return expf(x); }
inline double exp_(double x) { return exp(x); }
inline float tanh_(float x) { return tanhf(x); }
inline double tanh_(double x) { return tanh(x); }
inline float sqrt_(float x) { return sqrtf(x); }
inline double sqrt_(double x) { return sqrt(x); }

// exp(-x) overflows below x = -88 (float; -709 double), and under -ffast-math 1 / (1 + inf) is
// not 0 but NaN (seen: sigmoid(-100) gave NaN, and the NaN reached every weight gradient).
// Below the clamp the true value is under 1e-34 (float) and 1e-304 (double).
template <typename T>
inline T sigmoid_(T x) {
  const T lowest = sizeof(T) == sizeof(float) ? T(-80) : T(-700);
  return T(1) / (T(1) + exp_(-(x < lowest ? lowest : x)));
}

// Rows per parallel chunk: enough work per thread to pay for waking it.
inline int64_t grain_rows(int64_t width) {
  int64_t g = 16384 / (width > 0 ? width : 1);
  return g < 1 ? 1 : g;
}

void check_cpu_float(const Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu(), name, " must be a CPU tensor");
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, name,
              " must be float32 or float64");
}

// out = a + b, where a missing operand (nullptr) counts as zero.
template <typename T>
inline void sum_into(T* __restrict__ out, const T* __restrict__ a, const T* __restrict__ b,
                     int64_t n) {
  if (a && b) {
    SIMD
    for (int64_t j = 0; j < n; ++j) out[j] = a[j] + b[j];
  } else if (a || b) {
    const T* __restrict__ src = a ? a : b;
    SIMD
    for (int64_t j = 0; j < n; ++j) out[j] = src[j];
  } else {
    SIMD
    for (int64_t j = 0; j < n; ++j) out[j] = T(0);
  }
}

// Mean and 1/sqrt(var + eps) of n values (two passes, biased variance as F.layer_norm).
template <typename T>
inline void moments(const T* __restrict__ x, int64_t n, double eps, T& mean, T& rstd) {
  T sum = 0;
  SIMD_REDUCE(sum)
  for (int64_t j = 0; j < n; ++j) sum += x[j];
  const T m = sum / T(n);
  T sq = 0;
  SIMD_REDUCE(sq)
  for (int64_t j = 0; j < n; ++j) {
    const T d = x[j] - m;
    sq += d * d;
  }
  mean = m;
  rstd = T(1) / sqrt_(sq / T(n) + T(eps));
}

// One vector of the widest streaming store the build has (kStreamBytes; the destination
// aligned to it), for float and for double.
#if defined(__AVX512F__)
constexpr int64_t kStreamBytes = 64;
inline void stream_vector(float* d, const float* s) { _mm512_stream_ps(d, _mm512_loadu_ps(s)); }
inline void stream_vector(double* d, const double* s) { _mm512_stream_pd(d, _mm512_loadu_pd(s)); }
#elif defined(__AVX__)
constexpr int64_t kStreamBytes = 32;
inline void stream_vector(float* d, const float* s) { _mm256_stream_ps(d, _mm256_loadu_ps(s)); }
inline void stream_vector(double* d, const double* s) { _mm256_stream_pd(d, _mm256_loadu_pd(s)); }
#elif defined(__SSE2__)
constexpr int64_t kStreamBytes = 16;
inline void stream_vector(float* d, const float* s) { _mm_stream_ps(d, _mm_loadu_ps(s)); }
inline void stream_vector(double* d, const double* s) { _mm_stream_pd(d, _mm_loadu_pd(s)); }
#endif

// n values copied to dst with non-temporal (streaming) stores where the CPU has them, for
// what is written once and read back much later: the activations a forward step saves for
// the backward (read after the whole sequence, hundreds of MB later). An ordinary store first
// reads the destination's cache line from memory (read for ownership) and then keeps the
// line in cache, pushing out what the next step needs; a streaming store writes the line
// without reading it. Head and tail up to the vector alignment are ordinary stores.
// Written here: there is no such operator in ATen, and memcpy decides for itself.
template <typename T>
inline void stream_copy(T* __restrict__ dst, const T* __restrict__ src, int64_t n) {
#if defined(__SSE2__)
  constexpr int64_t W = kStreamBytes / static_cast<int64_t>(sizeof(T));
  const auto misaligned = reinterpret_cast<uintptr_t>(dst) % kStreamBytes;
  if (misaligned % sizeof(T) != 0) {  // never in a tensor of T; no vector store can align it
    std::memcpy(dst, src, n * sizeof(T));
    return;
  }
  int64_t j = 0;
  const int64_t head =
      misaligned ? static_cast<int64_t>((kStreamBytes - misaligned) / sizeof(T)) : 0;
  for (; j < head && j < n; ++j) dst[j] = src[j];
  for (; j + W <= n; j += W) stream_vector(dst + j, src + j);
  for (; j < n; ++j) dst[j] = src[j];
#else
  std::memcpy(dst, src, n * sizeof(T));
#endif
}

// Orders this thread's streaming stores before whatever it writes next (the end of a
// parallel chunk, after which another thread may read them).
inline void stream_fence() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

// A step's rows (B, W), contiguous, streamed into dst (contiguous, the same shape), in
// parallel over the rows.
template <typename T>
void stream_rows(const Tensor& dst, const Tensor& src) {
  const int64_t B = src.size(0), W = src.numel() / (B > 0 ? B : 1);
  T* d = dst.data_ptr<T>();
  const T* sp = src.data_ptr<T>();
  at::parallel_for(0, B, grain_rows(W), [&](int64_t begin, int64_t end) {
    stream_copy(d + begin * W, sp + begin * W, (end - begin) * W);
    stream_fence();
  });
}

// A thread's scratch row of at least n values, reused from step to step, where a row's
// saved values are computed before they are streamed out.
template <typename T>
T* scratch_row(int64_t n) {
  thread_local std::vector<T> row;
  if (static_cast<int64_t>(row.size()) < n) row.resize(n);
  return row.data();
}

// The input term of one step's pre-activations (B, 4H), which the row kernels add to the
// recurrent product row by row, while the row is in cache: x_proj[t] (`proj`, the input
// projection taken before the loop) and/or x_in[t] @ w_x^T + row (`x` (B, K), `wx_t` (K, 4H),
// `row` (B, 4H): narrow inputs, the strokes' five columns, projected here at K multiply-adds
// an entry instead of as a (T, B, 4H) tensor written before the loop and read back at every
// step; `row` is what is the same at every step: the bias and a decoder's per-sketch term).
// Every pointer is to row 0 of the rows the kernel runs; rows are contiguous.
template <typename T>
struct StepInput {
  const T* proj = nullptr;
  const T* x = nullptr;
  const T* wx_t = nullptr;
  const T* row = nullptr;
  int64_t K = 0;
};

// Row b of the step's input term added into row b of the gates `pre` ((B, 4, H), gate
// stride sk), in place.
template <typename T>
inline void add_input_row(T* __restrict__ pre_row, int64_t sk, const StepInput<T>& in, int64_t b,
                          int64_t H) {
  const int64_t G = 4 * H;
  for (int64_t k = 0; k < 4; ++k) {
    T* __restrict__ r = pre_row + k * sk;
    if (in.proj) {
      const T* __restrict__ a = in.proj + b * G + k * H;
      SIMD
      for (int64_t j = 0; j < H; ++j) r[j] += a[j];
    }
    if (in.row) {
      const T* __restrict__ a = in.row + b * G + k * H;
      SIMD
      for (int64_t j = 0; j < H; ++j) r[j] += a[j];
    }
    for (int64_t i = 0; i < in.K; ++i) {
      const T xi = in.x[b * in.K + i];
      const T* __restrict__ w = in.wx_t + i * G + k * H;
      SIMD
      for (int64_t j = 0; j < H; ++j) r[j] += xi * w[j];
    }
  }
}

// Row b of a step's d_pre (B, 4H) added into row b of d_row (B, 4H), the gradient of the
// narrow inputs' per-row term (StepInput::row) summed over the steps, while the row is in
// cache (no pass over the (T, B, 4H) gradient after the loop).
template <typename T>
inline void add_row_grad(T* __restrict__ d_row, const T* __restrict__ d_pre, int64_t n) {
  SIMD
  for (int64_t j = 0; j < n; ++j) d_row[j] += d_pre[j];
}

// One step's part of the narrow inputs' weight gradient, d w_x^T (K, 4H) += x_t^T d_pre_t
// over the step's n rows, while d_pre is in cache (rather than a product over all steps after
// the loop, which reads the (T, B, 4H) gradient back from memory). Summed in float64: a sum
// over every step and row (25,000 terms at batch 100, N_max 250). Zeros are skipped (the
// one-hot pen columns).
template <typename T>
void add_input_weight_grad(double* __restrict__ dwx, const T* __restrict__ x,
                           const T* __restrict__ d_pre, int64_t n, int64_t K, int64_t G) {
  for (int64_t b = 0; b < n; ++b) {
    const T* __restrict__ d = d_pre + b * G;
    for (int64_t k = 0; k < K; ++k) {
      const double xv = static_cast<double>(x[b * K + k]);
      if (xv == 0.0) continue;
      double* __restrict__ acc = dwx + k * G;
      SIMD
      for (int64_t j = 0; j < G; ++j) acc[j] += xv * static_cast<double>(d[j]);
    }
  }
}

// ------------------------------------------------------------------ LayerNorm LSTM, one step
//
// pre: (B, 4, H) with unit stride along H (any row and gate strides).
// Saved for backward: xh (B, 4H) normalised gates, act (B, 4H) = [sig i, sig f, tanh g,
// sig o], xc (B, H) normalised c, ty (B, H) = tanh(LN(c) * gamma + beta), stats (B, 5) =
// the four gates' rstd and c's rstd.

template <typename T>
void ln_forward_rows(const Tensor& pre, const Tensor& c_prev, const Tensor& gg, const Tensor& gb,
                     const Tensor& cg, const Tensor& cb, const Tensor& mask, double eps,
                     Tensor& h, Tensor& c, Tensor& xh, Tensor& act, Tensor& xc, Tensor& ty,
                     Tensor& stats, const StepInput<T>& in = StepInput<T>()) {
  const int64_t B = pre.size(0), H = pre.size(2);
  const int64_t sb = pre.stride(0), sk = pre.stride(1);
  T* pre_p = pre.data_ptr<T>();  // the input term is added into it (add_input_row)
  const bool has_input = in.proj || in.row || in.K > 0;
  const T* cp_p = c_prev.data_ptr<T>();
  const T* gg_p = gg.data_ptr<T>();
  const T* gb_p = gb.data_ptr<T>();
  const T* cg_p = cg.data_ptr<T>();
  const T* cb_p = cb.data_ptr<T>();
  const bool has_mask = mask.defined() && mask.numel() > 0;
  const T* m_p = has_mask ? mask.data_ptr<T>() : nullptr;
  T* h_p = h.data_ptr<T>();
  T* c_p = c.data_ptr<T>();
  T* xh_p = xh.data_ptr<T>();
  T* act_p = act.data_ptr<T>();
  T* xc_p = xc.data_ptr<T>();
  T* ty_p = ty.data_ptr<T>();
  T* st_p = stats.data_ptr<T>();
  at::parallel_for(0, B, grain_rows(5 * H), [&](int64_t begin, int64_t end) {
    // A row's saved xh, act, xc and ty are computed here and streamed out (stream_copy).
    T* const saved = scratch_row<T>(10 * H);
    for (int64_t b = begin; b < end; ++b) {
      T* __restrict__ xhb = saved;
      T* __restrict__ ab = saved + 4 * H;
      T* __restrict__ st = st_p + b * 5;
      if (has_input) add_input_row(pre_p + b * sb, sk, in, b, H);
      for (int64_t k = 0; k < 4; ++k) {
        const T* __restrict__ x = pre_p + b * sb + k * sk;
        T mean, rstd;
        moments(x, H, eps, mean, rstd);
        st[k] = rstd;
        T* __restrict__ xo = xhb + k * H;
        T* __restrict__ ao = ab + k * H;
        const T* __restrict__ g = gg_p + k * H;
        const T* __restrict__ be = gb_p + k * H;
        if (k == 2) {
          SIMD
          for (int64_t j = 0; j < H; ++j) {
            const T v = (x[j] - mean) * rstd;
            xo[j] = v;
            ao[j] = tanh_(v * g[j] + be[j]);
          }
        } else {
          SIMD
          for (int64_t j = 0; j < H; ++j) {
            const T v = (x[j] - mean) * rstd;
            xo[j] = v;
            ao[j] = sigmoid_(v * g[j] + be[j]);
          }
        }
      }
      const T* __restrict__ si = ab;
      const T* __restrict__ sf = ab + H;
      const T* __restrict__ tg = ab + 2 * H;
      const T* __restrict__ so = ab + 3 * H;
      const T* __restrict__ cpb = cp_p + b * H;
      T* __restrict__ cb_out = c_p + b * H;
      if (m_p) {
        const T* __restrict__ mb = m_p + b * H;
        SIMD
        for (int64_t j = 0; j < H; ++j) cb_out[j] = sf[j] * cpb[j] + si[j] * mb[j] * tg[j];
      } else {
        SIMD
        for (int64_t j = 0; j < H; ++j) cb_out[j] = sf[j] * cpb[j] + si[j] * tg[j];
      }
      T mean, rstd;
      moments<T>(cb_out, H, eps, mean, rstd);
      st[4] = rstd;
      T* __restrict__ xcb = saved + 8 * H;
      T* __restrict__ tyb = saved + 9 * H;
      T* __restrict__ hb = h_p + b * H;
      // Local copies of the captured pointers: read through the lambda's references inside
      // the loop, gcc reloaded them at every element and vectorised that as a gather.
      const T* __restrict__ cgb = cg_p;
      const T* __restrict__ cbb = cb_p;
      SIMD
      for (int64_t j = 0; j < H; ++j) {
        const T v = (cb_out[j] - mean) * rstd;
        xcb[j] = v;
        const T t = tanh_(v * cgb[j] + cbb[j]);
        tyb[j] = t;
        hb[j] = so[j] * t;
      }
      stream_copy(xh_p + b * 4 * H, saved, 4 * H);
      stream_copy(act_p + b * 4 * H, saved + 4 * H, 4 * H);
      stream_copy(xc_p + b * H, saved + 8 * H, H);
      stream_copy(ty_p + b * H, saved + 9 * H, H);
    }
    stream_fence();
  });
}

// Backward of one LayerNorm LSTM step. dh = dh1 (+ dh2), dc = dc1 (+ dc2) (dh2, dc2 and dc1
// may be undefined). Writes d_pre (B, 4H) and dc_prev (B, H); ADDS the batch sums of the
// gamma/beta gradients into dgg, dgb (4, H) and dcg, dcb (H).
template <typename T>
void ln_backward_rows(const Tensor& dh1, const Tensor& dh2, const Tensor& dc1, const Tensor& dc2,
                      const Tensor& xh, const Tensor& act, const Tensor& xc, const Tensor& ty,
                      const Tensor& stats, const Tensor& c_prev, const Tensor& mask,
                      const Tensor& gg, const Tensor& cg, Tensor& d_pre, Tensor& dc_prev,
                      Tensor& dgg, Tensor& dgb, Tensor& dcg, Tensor& dcb,
                      const Tensor& d_row = Tensor()) {
  const int64_t B = xh.size(0), H = xc.size(1);
  auto opt = [](const Tensor& t) -> const T* {
    return (t.defined() && t.numel() > 0) ? t.data_ptr<T>() : nullptr;
  };
  const T* dh1_p = opt(dh1);
  const T* dh2_p = opt(dh2);
  const T* dc1_p = opt(dc1);
  const T* dc2_p = opt(dc2);
  const T* m_p = opt(mask);
  const T* xh_p = xh.data_ptr<T>();
  const T* act_p = act.data_ptr<T>();
  const T* xc_p = xc.data_ptr<T>();
  const T* ty_p = ty.data_ptr<T>();
  const T* st_p = stats.data_ptr<T>();
  const T* cp_p = c_prev.data_ptr<T>();
  const T* gg_p = gg.data_ptr<T>();
  const T* cg_p = cg.data_ptr<T>();
  T* dp_p = d_pre.data_ptr<T>();
  T* dcp_p = dc_prev.data_ptr<T>();
  T* drow_p = d_row.defined() ? d_row.data_ptr<T>() : nullptr;
  // Per-row terms of the parameter gradients: da (B, 4H) and dy (B, H).
  Tensor da_buf = at::empty({B, 4 * H}, xh.options());
  Tensor dy_buf = at::empty({B, H}, xh.options());
  T* da_p = da_buf.data_ptr<T>();
  T* dy_p = dy_buf.data_ptr<T>();
  at::parallel_for(0, B, grain_rows(5 * H), [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const T* __restrict__ ab = act_p + b * 4 * H;
      const T* __restrict__ si = ab;
      const T* __restrict__ sf = ab + H;
      const T* __restrict__ tg = ab + 2 * H;
      const T* __restrict__ so = ab + 3 * H;
      const T* __restrict__ xcb = xc_p + b * H;
      const T* __restrict__ tyb = ty_p + b * H;
      const T* __restrict__ cpb = cp_p + b * H;
      const T* __restrict__ st = st_p + b * 5;
      T* __restrict__ dab = da_p + b * 4 * H;
      T* __restrict__ dyb = dy_p + b * H;
      T* __restrict__ dcpb = dcp_p + b * H;  // holds dc (the full gradient of c) for now
      // Local copy of the captured pointer: read through the lambda's reference inside the
      // loops, gcc reloaded it at every element and vectorised that as a gather (the first
      // loop below ran 2-3x slower for it, `perf annotate`).
      const T* __restrict__ cgb = cg_p;
      // h = so * ty, ty = tanh(y), y = xc * cg + cb
      const int64_t o = b * H;
      sum_into<T>(dyb, dh1_p ? dh1_p + o : nullptr, dh2_p ? dh2_p + o : nullptr, H);  // dh
      sum_into<T>(dcpb, dc1_p ? dc1_p + o : nullptr, dc2_p ? dc2_p + o : nullptr, H);  // dc
      T s1 = 0, s2 = 0;
      SIMD_REDUCE(s1, s2)
      for (int64_t j = 0; j < H; ++j) {
        const T dh = dyb[j];
        const T t = tyb[j];
        dab[3 * H + j] = dh * t * so[j] * (T(1) - so[j]);  // d a_o
        const T dy = dh * so[j] * (T(1) - t * t);
        dyb[j] = dy;
        const T dxc = dy * cgb[j];
        s1 += dxc;
        s2 += dxc * xcb[j];
      }
      const T rstd_c = st[4];
      const T m1 = s1 / T(H), m2 = s2 / T(H);
      SIMD
      for (int64_t j = 0; j < H; ++j) {
        const T dxc = dyb[j] * cgb[j];
        dcpb[j] += rstd_c * (dxc - m1 - xcb[j] * m2);
      }
      // c = sf * c_prev + si * mask * tg
      if (m_p) {
        const T* __restrict__ mb = m_p + b * H;
        SIMD
        for (int64_t j = 0; j < H; ++j) {
          const T dc = dcpb[j];
          const T gm = tg[j] * mb[j];
          dab[j] = dc * gm * si[j] * (T(1) - si[j]);
          dab[H + j] = dc * cpb[j] * sf[j] * (T(1) - sf[j]);
          dab[2 * H + j] = dc * si[j] * mb[j] * (T(1) - tg[j] * tg[j]);
          dcpb[j] = dc * sf[j];
        }
      } else {
        SIMD
        for (int64_t j = 0; j < H; ++j) {
          const T dc = dcpb[j];
          dab[j] = dc * tg[j] * si[j] * (T(1) - si[j]);
          dab[H + j] = dc * cpb[j] * sf[j] * (T(1) - sf[j]);
          dab[2 * H + j] = dc * si[j] * (T(1) - tg[j] * tg[j]);
          dcpb[j] = dc * sf[j];
        }
      }
      // a_k = xh_k * gg_k + gb_k, xh_k = LN(pre_k)
      T* __restrict__ dpb = dp_p + b * 4 * H;
      const T* __restrict__ xhb = xh_p + b * 4 * H;
      for (int64_t k = 0; k < 4; ++k) {
        const T* __restrict__ da = dab + k * H;
        const T* __restrict__ x = xhb + k * H;
        const T* __restrict__ g = gg_p + k * H;
        T a1 = 0, a2 = 0;
        SIMD_REDUCE(a1, a2)
        for (int64_t j = 0; j < H; ++j) {
          const T dx = da[j] * g[j];
          a1 += dx;
          a2 += dx * x[j];
        }
        const T rstd = st[k];
        const T n1 = a1 / T(H), n2 = a2 / T(H);
        T* __restrict__ out = dpb + k * H;
        SIMD
        for (int64_t j = 0; j < H; ++j) out[j] = rstd * (da[j] * g[j] - n1 - x[j] * n2);
      }
      if (drow_p) add_row_grad(drow_p + b * 4 * H, dpb, 4 * H);
    }
  });
  // Parameter gradients: sums over the batch, column by column, rows in order.
  T* dgg_p = dgg.data_ptr<T>();
  T* dgb_p = dgb.data_ptr<T>();
  T* dcg_p = dcg.data_ptr<T>();
  T* dcb_p = dcb.data_ptr<T>();
  const int64_t W = 4 * H;
  const int64_t col_block = 64;
  const int64_t n_blocks = (W + H + col_block - 1) / col_block;
  at::parallel_for(0, n_blocks, 1 + 16384 / (col_block * (B > 0 ? B : 1)),
                   [&](int64_t begin, int64_t end) {
    T acc_w[64], acc_b[64];
    for (int64_t blk = begin; blk < end; ++blk) {
      int64_t j0 = blk * col_block;
      int64_t j1 = j0 + col_block < W + H ? j0 + col_block : W + H;
      // A block lies in the gate columns [0, W) or in the cell columns [W, W + H) or spans
      // both; split it so that each part is handled with its own arrays.
      while (j0 < j1) {
        const bool gates = j0 < W;
        const int64_t stop = gates ? (j1 < W ? j1 : W) : j1;
        const int64_t n = stop - j0;
        const int64_t width = gates ? W : H;
        const int64_t off = gates ? j0 : j0 - W;
        const T* src_d = gates ? da_p : dy_p;
        const T* src_x = gates ? xh_p : xc_p;
        for (int64_t j = 0; j < n; ++j) acc_w[j] = acc_b[j] = 0;
        for (int64_t b = 0; b < B; ++b) {
          const T* __restrict__ d = src_d + b * width + off;
          const T* __restrict__ x = src_x + b * width + off;
          SIMD
          for (int64_t j = 0; j < n; ++j) {
            acc_w[j] += d[j] * x[j];
            acc_b[j] += d[j];
          }
        }
        T* __restrict__ ow = (gates ? dgg_p : dcg_p) + off;
        T* __restrict__ ob = (gates ? dgb_p : dcb_p) + off;
        SIMD
        for (int64_t j = 0; j < n; ++j) {
          ow[j] += acc_w[j];
          ob[j] += acc_b[j];
        }
        j0 = stop;
      }
    }
  });
}

// A row of n ones (the mask where there is no dropout), kept per thread rather than allocated
// at every step (two tensors a step, forward and backward, each with its fill).
template <typename T>
const T* ones_row(int64_t n) {
  thread_local std::vector<T> ones;
  if (static_cast<int64_t>(ones.size()) < n) ones.assign(n, T(1));
  return ones.data();
}

// ------------------------------------------------------------------ plain LSTM, one step
//
// pre: (B, 4, H) unit stride along H. Saved: act (B, 4H), tc (B, H) = tanh(c).

template <typename T>
void lstm_forward_rows(const Tensor& pre, const Tensor& c_prev, const Tensor& mask, Tensor& h,
                       Tensor& c, Tensor& act, Tensor& tc,
                       const StepInput<T>& in = StepInput<T>()) {
  const int64_t B = pre.size(0), H = pre.size(2);
  const int64_t sb = pre.stride(0), sk = pre.stride(1);
  T* pre_p = pre.data_ptr<T>();  // the input term is added into it (add_input_row)
  const bool has_input = in.proj || in.row || in.K > 0;
  const T* cp_p = c_prev.data_ptr<T>();
  const bool has_mask = mask.defined() && mask.numel() > 0;
  const T* m_p = has_mask ? mask.data_ptr<T>() : nullptr;
  T* h_p = h.data_ptr<T>();
  T* c_p = c.data_ptr<T>();
  T* act_p = act.data_ptr<T>();
  T* tc_p = tc.data_ptr<T>();
  const T* ones_p = m_p ? nullptr : ones_row<T>(H);
  at::parallel_for(0, B, grain_rows(5 * H), [&](int64_t begin, int64_t end) {
    // The saved act and tanh(c) of a row are computed here and streamed out (stream_copy).
    T* const saved = scratch_row<T>(5 * H);
    for (int64_t b = begin; b < end; ++b) {
      if (has_input) add_input_row(pre_p + b * sb, sk, in, b, H);
      const T* __restrict__ pi = pre_p + b * sb;
      const T* __restrict__ pf = pi + sk;
      const T* __restrict__ pg = pi + 2 * sk;
      const T* __restrict__ po = pi + 3 * sk;
      T* __restrict__ ab = saved;
      const T* __restrict__ cpb = cp_p + b * H;
      T* __restrict__ cb = c_p + b * H;
      T* __restrict__ tcb = saved + 4 * H;
      T* __restrict__ hb = h_p + b * H;
      // Without dropout the mask is all ones: read from a row of ones, never through a null
      // pointer inside the loop (gcc turned `mb ? mb[j] : 1` into a masked load from address
      // 0, which AVX-512 CPUs serve with a fault-suppression assist at every vector: the
      // step ran 15x slower without dropout than with it).
      const T* __restrict__ mb = m_p ? m_p + b * H : ones_p;
      SIMD
      for (int64_t j = 0; j < H; ++j) {
        const T si = sigmoid_(pi[j]);
        const T sf = sigmoid_(pf[j]);
        const T tg = tanh_(pg[j]);
        const T so = sigmoid_(po[j]);
        ab[j] = si;
        ab[H + j] = sf;
        ab[2 * H + j] = tg;
        ab[3 * H + j] = so;
        const T cn = sf * cpb[j] + si * mb[j] * tg;
        cb[j] = cn;
        const T t = tanh_(cn);
        tcb[j] = t;
        hb[j] = so * t;
      }
      stream_copy(act_p + b * 4 * H, saved, 4 * H);
      stream_copy(tc_p + b * H, saved + 4 * H, H);
    }
    stream_fence();
  });
}

template <typename T>
void lstm_backward_rows(const Tensor& dh1, const Tensor& dh2, const Tensor& dc1,
                        const Tensor& dc2, const Tensor& act, const Tensor& tc,
                        const Tensor& c_prev, const Tensor& mask, Tensor& d_pre,
                        Tensor& dc_prev, const Tensor& d_row = Tensor()) {
  const int64_t B = act.size(0), H = tc.size(1);
  auto opt = [](const Tensor& t) -> const T* {
    return (t.defined() && t.numel() > 0) ? t.data_ptr<T>() : nullptr;
  };
  const T* dh1_p = opt(dh1);
  const T* dh2_p = opt(dh2);
  const T* dc1_p = opt(dc1);
  const T* dc2_p = opt(dc2);
  const T* m_p = opt(mask);
  const T* act_p = act.data_ptr<T>();
  const T* tc_p = tc.data_ptr<T>();
  const T* cp_p = c_prev.data_ptr<T>();
  T* dp_p = d_pre.data_ptr<T>();
  T* dcp_p = dc_prev.data_ptr<T>();
  T* drow_p = d_row.defined() ? d_row.data_ptr<T>() : nullptr;
  const T* ones_p = m_p ? nullptr : ones_row<T>(H);
  at::parallel_for(0, B, grain_rows(5 * H), [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const T* __restrict__ ab = act_p + b * 4 * H;
      const T* __restrict__ tcb = tc_p + b * H;
      const T* __restrict__ cpb = cp_p + b * H;
      const T* __restrict__ mb = m_p ? m_p + b * H : ones_p;
      T* __restrict__ dpb = dp_p + b * 4 * H;
      T* __restrict__ dcpb = dcp_p + b * H;
      const int64_t o = b * H;
      T* __restrict__ dhb = dpb + 3 * H;  // dh for now, then d a_o
      sum_into<T>(dhb, dh1_p ? dh1_p + o : nullptr, dh2_p ? dh2_p + o : nullptr, H);
      sum_into<T>(dcpb, dc1_p ? dc1_p + o : nullptr, dc2_p ? dc2_p + o : nullptr, H);
      SIMD
      for (int64_t j = 0; j < H; ++j) {
        const T dh = dhb[j];
        T dc = dcpb[j];
        const T si = ab[j], sf = ab[H + j], tg = ab[2 * H + j], so = ab[3 * H + j];
        const T t = tcb[j];
        const T m = mb[j];
        dc += dh * so * (T(1) - t * t);
        dpb[3 * H + j] = dh * t * so * (T(1) - so);
        dpb[j] = dc * m * tg * si * (T(1) - si);
        dpb[H + j] = dc * cpb[j] * sf * (T(1) - sf);
        dpb[2 * H + j] = dc * si * m * (T(1) - tg * tg);
        dcpb[j] = dc * sf;
      }
      if (drow_p) add_row_grad(drow_p + b * 4 * H, dpb, 4 * H);
    }
  });
}

// ------------------------------------------------------------------ HyperLSTM weight modulation
//
// pre_k = d_x,k * x_main_k + d_h,k * h_main_k + bias_k + d_b,k per gate k, with d (12, B, H)
// = [d_x (4), d_h (4), d_b (4)], x_main and h_main (B, 4H) with unit stride along the row.

template <typename T>
void modulate_forward_rows(const Tensor& x_main, const Tensor& h_main, const Tensor& d,
                           const Tensor& bias, Tensor& pre) {
  const int64_t B = pre.size(0), H = pre.size(1) / 4;
  const int64_t sx = x_main.stride(0), sh = h_main.stride(0);
  const T* x_p = x_main.data_ptr<T>();
  const T* hm_p = h_main.data_ptr<T>();
  const T* d_p = d.data_ptr<T>();
  const T* b_p = bias.data_ptr<T>();
  T* pre_p = pre.data_ptr<T>();
  at::parallel_for(0, B, grain_rows(8 * H), [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      for (int64_t k = 0; k < 4; ++k) {
        const T* __restrict__ x = x_p + b * sx + k * H;
        const T* __restrict__ hm = hm_p + b * sh + k * H;
        const T* __restrict__ dx = d_p + (k * B + b) * H;
        const T* __restrict__ dh = d_p + ((4 + k) * B + b) * H;
        const T* __restrict__ db = d_p + ((8 + k) * B + b) * H;
        const T* __restrict__ bi = b_p + k * H;
        T* __restrict__ out = pre_p + b * 4 * H + k * H;
        SIMD
        for (int64_t j = 0; j < H; ++j) out[j] = dx[j] * x[j] + dh[j] * hm[j] + (bi[j] + db[j]);
      }
    }
  });
}

// Given d_pre (B, 4H): dd (12, B, H) = [d_pre * x_main, d_pre * h_main, d_pre] per gate,
// dx_main = d_pre * d_x and dh_main = d_pre * d_h written into the given (B, 4H) views.
template <typename T>
void modulate_backward_rows(const Tensor& d_pre, const Tensor& x_main, const Tensor& h_main,
                            const Tensor& d, Tensor& dd, Tensor& dx_main, Tensor& dh_main) {
  const int64_t B = d_pre.size(0), H = d_pre.size(1) / 4;
  const int64_t sx = x_main.stride(0), sh = h_main.stride(0);
  const int64_t sdx = dx_main.stride(0), sdh = dh_main.stride(0);
  const T* dp_p = d_pre.data_ptr<T>();
  const T* x_p = x_main.data_ptr<T>();
  const T* hm_p = h_main.data_ptr<T>();
  const T* d_p = d.data_ptr<T>();
  T* dd_p = dd.data_ptr<T>();
  T* dxm_p = dx_main.data_ptr<T>();
  T* dhm_p = dh_main.data_ptr<T>();
  at::parallel_for(0, B, grain_rows(10 * H), [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      for (int64_t k = 0; k < 4; ++k) {
        const T* __restrict__ g = dp_p + b * 4 * H + k * H;
        const T* __restrict__ x = x_p + b * sx + k * H;
        const T* __restrict__ hm = hm_p + b * sh + k * H;
        const T* __restrict__ dx = d_p + (k * B + b) * H;
        const T* __restrict__ dh = d_p + ((4 + k) * B + b) * H;
        T* __restrict__ ddx = dd_p + (k * B + b) * H;
        T* __restrict__ ddh = dd_p + ((4 + k) * B + b) * H;
        T* __restrict__ ddb = dd_p + ((8 + k) * B + b) * H;
        T* __restrict__ ox = dxm_p + b * sdx + k * H;
        T* __restrict__ oh = dhm_p + b * sdh + k * H;
        SIMD
        for (int64_t j = 0; j < H; ++j) {
          const T v = g[j];
          ddx[j] = v * x[j];
          ddh[j] = v * hm[j];
          ddb[j] = v;
          ox[j] = v * dx[j];
          oh[j] = v * dh[j];
        }
      }
    }
  });
}

void check_rows(const Tensor& t, const Tensor& ref, int64_t B, int64_t W, const char* name) {
  check_cpu_float(t, name);
  TORCH_CHECK(t.scalar_type() == ref.scalar_type(), name, " has another dtype");
  TORCH_CHECK(t.dim() == 2 && t.size(0) == B && t.size(1) == W && t.stride(1) == 1, name,
              " must be (B, 4H) with unit stride along the row");
}

Tensor hyper_modulate_forward(const Tensor& x_main, const Tensor& h_main, const Tensor& d,
                              const Tensor& bias) {
  TORCH_CHECK(d.dim() == 3 && d.size(0) == 12 && d.is_contiguous(), "d must be (12, B, H)");
  const int64_t B = d.size(1), H = d.size(2);
  check_rows(x_main, d, B, 4 * H, "x_main");
  check_rows(h_main, d, B, 4 * H, "h_main");
  TORCH_CHECK(bias.numel() == 4 * H && bias.is_contiguous(), "bias must be (4H,)");
  Tensor pre = at::empty({B, 4 * H}, d.options());
  AT_DISPATCH_FLOATING_TYPES(d.scalar_type(), "hyper_modulate_forward", [&] {
    modulate_forward_rows<scalar_t>(x_main, h_main, d, bias, pre);
  });
  return pre;
}

// Returns dd (12, B, H); writes dx_main and dh_main (row-strided (B, 4H) views).
Tensor hyper_modulate_backward(const Tensor& d_pre, const Tensor& x_main, const Tensor& h_main,
                               const Tensor& d, Tensor dx_main, Tensor dh_main) {
  TORCH_CHECK(d.dim() == 3 && d.size(0) == 12 && d.is_contiguous(), "d must be (12, B, H)");
  const int64_t B = d.size(1), H = d.size(2);
  TORCH_CHECK(d_pre.is_contiguous(), "d_pre must be contiguous");
  check_rows(d_pre, d, B, 4 * H, "d_pre");
  check_rows(x_main, d, B, 4 * H, "x_main");
  check_rows(h_main, d, B, 4 * H, "h_main");
  check_rows(dx_main, d, B, 4 * H, "dx_main");
  check_rows(dh_main, d, B, 4 * H, "dh_main");
  Tensor dd = at::empty({12, B, H}, d.options());
  AT_DISPATCH_FLOATING_TYPES(d.scalar_type(), "hyper_modulate_backward", [&] {
    modulate_backward_rows<scalar_t>(d_pre, x_main, h_main, d, dd, dx_main, dh_main);
  });
  return dd;
}

// ------------------------------------------------------------------ dropout masks
//
// Recurrent-dropout masks for all steps at once: element i is 1 / (1 - p) where
// u_i = splitmix64(seed + i) / 2^64 is below 1 - p, else 0. A counter-based generator (the
// splitmix64 output function on the element's index), so that rows are filled in parallel
// and vectorised; `seed` comes from torch's generator (fused.py), so torch.manual_seed fixes
// the masks. torch's bernoulli_ took 80 ms, single-threaded, for the 250 x 100 x 512 masks of a
// training step (8% of a LayerNorm cell's forward + backward); this takes a few.

Tensor seq_empty(at::IntArrayRef shape, const at::TensorOptions& opts);

Tensor dropout_masks(std::vector<int64_t> shape, double p, int64_t seed, const Tensor& like) {
  TORCH_CHECK(p >= 0.0 && p < 1.0, "dropout probability must be in [0, 1)");
  Tensor out = seq_empty(shape, like.options());
  const int64_t n = out.numel();
  const uint64_t s = static_cast<uint64_t>(seed);
  // keep if the top 53 bits, read as an integer, are below (1 - p) * 2^53
  const uint64_t threshold = static_cast<uint64_t>((1.0 - p) * 9007199254740992.0);
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "dropout_masks", [&] {
    scalar_t* const out_p = out.data_ptr<scalar_t>();
    const scalar_t scale_v = scalar_t(1.0 / (1.0 - p));
    at::parallel_for(0, n, 1 << 16, [&](int64_t begin, int64_t end) {
      // Locals, not the captured references: through those, gcc had to assume that a store
      // to o[i] might change the scale or the seed, and ran the loop scalar, with a branch
      // that missed at every dropped element (2.2 ns an element; vectorised about 0.2).
      scalar_t* __restrict__ o = out_p;
      const scalar_t scale = scale_v;
      const uint64_t s_local = s, thr = threshold;
      SIMD
      for (int64_t i = begin; i < end; ++i) {
        uint64_t z = s_local + static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        o[i] = (z >> 11) < thr ? scale : scalar_t(0);
      }
    });
  });
  return out;
}

// ------------------------------------------------------------------ checks and bindings

Tensor as_gates(const Tensor& pre, int64_t H) {
  // (B, 4H) or (B, 4, H) -> (B, 4, H) view with unit stride along H.
  Tensor p = pre.dim() == 2 ? pre.view({pre.size(0), 4, H}) : pre;
  TORCH_CHECK(p.dim() == 3 && p.size(1) == 4 && p.size(2) == H, "pre must be (B, 4H) or (B, 4, H)");
  if (p.stride(2) != 1) p = p.contiguous();
  return p;
}

Tensor maybe(const c10::optional<Tensor>& t) { return t.has_value() ? *t : Tensor(); }

void check_same(const Tensor& ref, const Tensor& t, const char* name) {
  if (!t.defined() || t.numel() == 0) return;
  check_cpu_float(t, name);
  TORCH_CHECK(t.scalar_type() == ref.scalar_type(), name, " has another dtype");
  TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
}

std::vector<Tensor> ln_lstm_step_forward(const Tensor& pre_in, const Tensor& c_prev,
                                         const Tensor& gg, const Tensor& gb, const Tensor& cg,
                                         const Tensor& cb, const c10::optional<Tensor>& mask_opt,
                                         double eps) {
  check_cpu_float(c_prev, "c_prev");
  const int64_t B = c_prev.size(0), H = c_prev.size(1);
  Tensor pre = as_gates(pre_in, H);
  Tensor mask = maybe(mask_opt);
  for (auto& [t, n] : std::vector<std::pair<Tensor, const char*>>{
           {c_prev, "c_prev"}, {gg, "gate_gamma"}, {gb, "gate_beta"}, {cg, "cell_gamma"},
           {cb, "cell_beta"}, {mask, "mask"}})
    check_same(c_prev, t, n);
  TORCH_CHECK(pre.scalar_type() == c_prev.scalar_type() && pre.size(0) == B, "pre mismatch");
  auto opts = c_prev.options();
  Tensor h = at::empty({B, H}, opts), c = at::empty({B, H}, opts);
  Tensor xh = at::empty({B, 4 * H}, opts), act = at::empty({B, 4 * H}, opts);
  Tensor xc = at::empty({B, H}, opts), ty = at::empty({B, H}, opts);
  Tensor stats = at::empty({B, 5}, opts);
  AT_DISPATCH_FLOATING_TYPES(c_prev.scalar_type(), "ln_lstm_step_forward", [&] {
    ln_forward_rows<scalar_t>(pre, c_prev, gg, gb, cg, cb, mask, eps, h, c, xh, act, xc, ty,
                              stats);
  });
  return {h, c, xh, act, xc, ty, stats};
}

// The same into given tensors (slices of sequence buffers): h, c (B, H), xh, act (B, 4H),
// xc, ty (B, H), stats (B, 5), all contiguous.
void ln_lstm_step_forward_out(const Tensor& pre_in, const Tensor& c_prev, const Tensor& gg,
                              const Tensor& gb, const Tensor& cg, const Tensor& cb,
                              const c10::optional<Tensor>& mask_opt, double eps, Tensor h,
                              Tensor c, Tensor xh, Tensor act, Tensor xc, Tensor ty,
                              Tensor stats) {
  check_cpu_float(c_prev, "c_prev");
  const int64_t B = c_prev.size(0), H = c_prev.size(1);
  Tensor pre = as_gates(pre_in, H);
  Tensor mask = maybe(mask_opt);
  for (auto& [t, n] : std::vector<std::pair<Tensor, const char*>>{
           {c_prev, "c_prev"}, {gg, "gate_gamma"}, {gb, "gate_beta"}, {cg, "cell_gamma"},
           {cb, "cell_beta"}, {mask, "mask"}, {h, "h"}, {c, "c"}, {xh, "xh"}, {act, "act"},
           {xc, "xc"}, {ty, "ty"}, {stats, "stats"}})
    check_same(c_prev, t, n);
  TORCH_CHECK(pre.scalar_type() == c_prev.scalar_type() && pre.size(0) == B, "pre mismatch");
  TORCH_CHECK(h.numel() == B * H && xh.numel() == 4 * B * H && stats.numel() == 5 * B,
              "output sizes");
  AT_DISPATCH_FLOATING_TYPES(c_prev.scalar_type(), "ln_lstm_step_forward_out", [&] {
    ln_forward_rows<scalar_t>(pre, c_prev, gg, gb, cg, cb, mask, eps, h, c, xh, act, xc, ty,
                              stats);
  });
}

// Returns d_pre (B, 4H), dc_prev, d_gate_gamma, d_gate_beta, d_cell_gamma, d_cell_beta.
std::vector<Tensor> ln_lstm_step_backward(const c10::optional<Tensor>& dh,
                                          const c10::optional<Tensor>& dc, const Tensor& xh,
                                          const Tensor& act, const Tensor& xc, const Tensor& ty,
                                          const Tensor& stats, const Tensor& c_prev,
                                          const c10::optional<Tensor>& mask_opt,
                                          const Tensor& gg, const Tensor& cg) {
  const int64_t B = c_prev.size(0), H = c_prev.size(1);
  Tensor dh_t = maybe(dh), dc_t = maybe(dc), mask = maybe(mask_opt);
  if (dh_t.defined()) dh_t = dh_t.contiguous();
  if (dc_t.defined()) dc_t = dc_t.contiguous();
  for (auto& [t, n] : std::vector<std::pair<Tensor, const char*>>{
           {dh_t, "dh"}, {dc_t, "dc"}, {xh, "xh"}, {act, "act"}, {xc, "xc"}, {ty, "ty"},
           {stats, "stats"}, {c_prev, "c_prev"}, {mask, "mask"}, {gg, "gate_gamma"},
           {cg, "cell_gamma"}})
    check_same(c_prev, t, n);
  auto opts = c_prev.options();
  Tensor d_pre = at::empty({B, 4 * H}, opts), dc_prev = at::empty({B, H}, opts);
  Tensor dgg = at::zeros({4, H}, opts), dgb = at::zeros({4, H}, opts);
  Tensor dcg = at::zeros({H}, opts), dcb = at::zeros({H}, opts);
  AT_DISPATCH_FLOATING_TYPES(c_prev.scalar_type(), "ln_lstm_step_backward", [&] {
    ln_backward_rows<scalar_t>(dh_t, Tensor(), dc_t, Tensor(), xh, act, xc, ty, stats, c_prev,
                               mask, gg, cg, d_pre, dc_prev, dgg, dgb, dcg, dcb);
  });
  return {d_pre, dc_prev, dgg, dgb, dcg, dcb};
}

std::vector<Tensor> lstm_step_forward(const Tensor& pre_in, const Tensor& c_prev,
                                      const c10::optional<Tensor>& mask_opt) {
  check_cpu_float(c_prev, "c_prev");
  const int64_t B = c_prev.size(0), H = c_prev.size(1);
  Tensor pre = as_gates(pre_in, H);
  Tensor mask = maybe(mask_opt);
  check_same(c_prev, c_prev, "c_prev");
  check_same(c_prev, mask, "mask");
  TORCH_CHECK(pre.scalar_type() == c_prev.scalar_type() && pre.size(0) == B, "pre mismatch");
  auto opts = c_prev.options();
  Tensor h = at::empty({B, H}, opts), c = at::empty({B, H}, opts);
  Tensor act = at::empty({B, 4 * H}, opts), tc = at::empty({B, H}, opts);
  AT_DISPATCH_FLOATING_TYPES(c_prev.scalar_type(), "lstm_step_forward", [&] {
    lstm_forward_rows<scalar_t>(pre, c_prev, mask, h, c, act, tc);
  });
  return {h, c, act, tc};
}

// Returns d_pre (B, 4H), dc_prev.
std::vector<Tensor> lstm_step_backward(const c10::optional<Tensor>& dh,
                                       const c10::optional<Tensor>& dc, const Tensor& act,
                                       const Tensor& tc, const Tensor& c_prev,
                                       const c10::optional<Tensor>& mask_opt) {
  const int64_t B = c_prev.size(0), H = c_prev.size(1);
  Tensor dh_t = maybe(dh), dc_t = maybe(dc), mask = maybe(mask_opt);
  if (dh_t.defined()) dh_t = dh_t.contiguous();
  if (dc_t.defined()) dc_t = dc_t.contiguous();
  for (auto& [t, n] : std::vector<std::pair<Tensor, const char*>>{
           {dh_t, "dh"}, {dc_t, "dc"}, {act, "act"}, {tc, "tc"}, {c_prev, "c_prev"},
           {mask, "mask"}})
    check_same(c_prev, t, n);
  auto opts = c_prev.options();
  Tensor d_pre = at::empty({B, 4 * H}, opts), dc_prev = at::empty({B, H}, opts);
  AT_DISPATCH_FLOATING_TYPES(c_prev.scalar_type(), "lstm_step_backward", [&] {
    lstm_backward_rows<scalar_t>(dh_t, Tensor(), dc_t, Tensor(), act, tc, c_prev, mask, d_pre,
                                 dc_prev);
  });
  return {d_pre, dc_prev};
}

// ------------------------------------------------------------------ whole sequences
//
// x_proj (T, B, 4H) is the input projection of every step (bias included); w_hh (4H, H);
// masks (T, B, H) or empty. The forward returns h_all, c_all (T, B, H) and what the backward
// needs; the backward takes the gradients of h_all and c_all (either may be empty) and
// returns d x_proj (T, B, 4H), dh0, dc0, dw_hh (and the norm parameters' gradients).

// The recurrent matmuls: ATen's (addmm, mm) by default, or oneDNN's with a weight that the
// caller packed once per sequence (mkldnn::_reorder_linear_weight; fused.py passes it where
// oneDNN passed its probe): forward pre = x_t + h_prev @ W.T, backward dh = d_pre @ W.
// oneDNN is reached through the dispatcher (the operator PyTorch's inductor uses), so the loop
// never returns to Python and can run on a thread of its own (lstm_seq_*_many).
Tensor packed_linear(const Tensor& x, const Tensor& packed) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("mkldnn::_linear_pointwise", "")
          .typed<Tensor(const Tensor&, const Tensor&, const c10::optional<Tensor>&,
                        c10::string_view, c10::List<c10::optional<at::Scalar>>,
                        c10::optional<c10::string_view>)>();
  return op.call(x, packed, c10::nullopt, "none", c10::List<c10::optional<at::Scalar>>(),
                 c10::string_view(""));
}

// The step's input term: x_proj[t] and/or the narrow inputs x_in[t], w_x^T, row (StepInput),
// for rows [r0, r0 + n) given as views (narrowed along the batch).
template <typename T>
StepInput<T> step_input(const Tensor& xp, const Tensor& xin, const Tensor& wx_t,
                        const Tensor& row, int64_t t) {
  StepInput<T> in;
  if (xp.defined()) in.proj = xp.data_ptr<T>() + t * xp.stride(0);
  if (xin.defined()) {
    in.x = xin.data_ptr<T>() + t * xin.stride(0);
    in.wx_t = wx_t.data_ptr<T>();
    in.K = xin.size(2);
  }
  if (row.defined()) in.row = row.data_ptr<T>();
  return in;
}

// h_prev @ w_hh^T, a step's recurrent product. oneDNN's comes back as a fresh tensor; torch's
// is written into `pre`, with x_proj[t] added by torch.addmm where there is one (the row
// kernel then need not add it: in.proj cleared). The row kernel adds the rest of the input.
template <typename T>
Tensor recurrent_pre(Tensor& pre, const Tensor& xp, int64_t t, const Tensor& h_prev,
                     const Tensor& w_t, const Tensor& packed, StepInput<T>& in) {
  if (packed.defined()) return packed_linear(h_prev, packed);
  if (in.proj) {
    at::addmm_out(pre, xp.select(0, t), h_prev, w_t);
    in.proj = nullptr;
  } else {
    at::mm_out(pre, h_prev, w_t);
  }
  return pre;
}

void recurrent_grad(Tensor& dh, const Tensor& d_pre, const Tensor& w, const Tensor& packed) {
  if (!packed.defined()) {
    at::mm_out(dh, d_pre, w);
  } else {
    dh = packed_linear(d_pre, packed);
  }
}

// A small cache of the sequence buffers (T x B x ...): the saved activations and the input
// gradient of a sequence are hundreds of MB, which the C library maps fresh from the kernel at
// every call and the kernel zero-fills page by page on first touch (about 15% of a LayerNorm
// cell's training step at batch 100, T 250, hidden 512). A buffer is handed out again once
// nothing but the cache refers to its storage (autograd has released it after the backward);
// a miss drops the unused buffers that did not fit. `release_workspace` empties the cache.
struct Workspace {
  std::mutex mutex;
  std::vector<Tensor> buffers;
  bool enabled = true;
};

Workspace& workspace() {
  static Workspace* w = new Workspace();  // never destroyed: no exit-time ordering issues
  return *w;
}

constexpr int64_t kPoolMinBytes = 1 << 22;  // smaller buffers come from the allocator

// n values in memory the kernel is asked to back with 2 MiB pages (Linux's transparent huge
// pages, where they are on only for memory that asks: `madvise`, the common setting): a row
// kernel reads five to seven streams from buffers of hundreds of MB and the weight gradient
// reads them back, and with 4 KiB pages every stream crosses a page every 4 KiB, missing the
// TLB (training steps 2-4% faster with the pool's buffers on huge pages in the pairs of
// docs/performance.md's tenth session). The block is 2 MiB longer than asked for, so that
// the buffer starts on a 2 MiB boundary. Elsewhere (or where madvise fails) an ordinary
// buffer.
Tensor huge_page_empty(int64_t n, const at::TensorOptions& opts) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr int64_t kHuge = int64_t(1) << 21;
  const int64_t elem = static_cast<int64_t>(c10::elementSize(opts.dtype().toScalarType()));
  Tensor raw = at::empty({n + kHuge / elem}, opts);
  const auto start = reinterpret_cast<uintptr_t>(raw.data_ptr());
  const uintptr_t aligned = (start + kHuge - 1) & ~static_cast<uintptr_t>(kHuge - 1);
  const int64_t bytes = (n * elem) & ~(kHuge - 1);
  if (bytes > 0) madvise(reinterpret_cast<void*>(aligned), bytes, MADV_HUGEPAGE);
  // A tensor of its own on raw's storage, not a view of raw (a view holds its base, and the
  // pool counts the storage's users).
  Tensor t = at::empty({0}, opts);
  t.set_(raw.storage(), static_cast<int64_t>(aligned - start) / elem, {n}, {1});
  return t;
#else
  return at::empty({n}, opts);
#endif
}

Tensor seq_empty(at::IntArrayRef shape, const at::TensorOptions& opts) {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  Workspace& w = workspace();
  const int64_t bytes = n * static_cast<int64_t>(c10::elementSize(opts.dtype().toScalarType()));
  if (!w.enabled || bytes < kPoolMinBytes) return at::empty(shape, opts);
  std::lock_guard<std::mutex> lock(w.mutex);
  int64_t best = -1;
  for (int64_t i = 0; i < static_cast<int64_t>(w.buffers.size()); ++i) {
    const Tensor& t = w.buffers[i];
    if (t.scalar_type() != opts.dtype().toScalarType() || t.storage().use_count() != 1 ||
        t.numel() < n || t.numel() > 2 * n)
      continue;
    if (best < 0 || t.numel() < w.buffers[best].numel()) best = i;
  }
  if (best >= 0) return w.buffers[best].narrow(0, 0, n).view(shape);
  std::vector<Tensor> kept;
  for (auto& t : w.buffers)
    if (t.storage().use_count() != 1) kept.push_back(t);
  w.buffers.swap(kept);
  Tensor t = huge_page_empty(n, opts);
  w.buffers.push_back(t);
  return t.view(shape);
}

void release_workspace() {
  Workspace& w = workspace();
  std::lock_guard<std::mutex> lock(w.mutex);
  w.buffers.clear();
}

void set_workspace_enabled(bool enabled) {
  Workspace& w = workspace();
  std::lock_guard<std::mutex> lock(w.mutex);
  w.enabled = enabled;
  if (!enabled) w.buffers.clear();
}

Tensor step_slice(const Tensor& t, int64_t i) {
  return (t.defined() && t.numel() > 0) ? t.select(0, i) : Tensor();
}

// One plain-LSTM sequence: the checked, contiguous inputs and their outputs.
struct LstmSeq {
  Tensor xp, h0, c0, w, w_t, masks, packed;  // packed: oneDNN's weight for this direction
  Tensor xin, wx_t, row;                     // the narrow inputs (StepInput), or undefined
  Tensor h_all, c_all, act_all, tc_all;      // forward's outputs (the backward's inputs)
  Tensor dh_all, dc_all, dx, dh0, dc0, dw;   // backward's inputs and outputs
  Tensor d_row;  // (B, 4H): dx summed over the steps, where asked for (the per-row term's)
  Tensor d_wx;   // (K, 4H) float64: the narrow inputs' weight gradient, where asked for
};

// A sequence's input term (StepInput): x_proj (T, B, 4H), and/or the narrow inputs x_in
// (T, B, K) with w_x (4H, K) and row (B, 4H), checked and made contiguous (w_x transposed);
// returns the number of steps.
int64_t sequence_inputs(const c10::optional<Tensor>& x_proj_opt,
                        const c10::optional<Tensor>& x_in_opt,
                        const c10::optional<Tensor>& w_x_opt,
                        const c10::optional<Tensor>& row_opt, const Tensor& h0, Tensor& xp,
                        Tensor& xin, Tensor& wx_t, Tensor& row) {
  const int64_t B = h0.size(0), G = 4 * h0.size(1);
  auto check = [&](const Tensor& t, const char* name) {  // any strides: made contiguous below
    check_cpu_float(t, name);
    TORCH_CHECK(t.scalar_type() == h0.scalar_type(), name, " has another dtype");
  };
  xp = maybe(x_proj_opt);
  xin = maybe(x_in_opt);
  row = maybe(row_opt);
  TORCH_CHECK(xp.defined() || xin.defined(), "x_proj or x_in is needed");
  int64_t T = -1;
  if (xp.defined()) {
    check(xp, "x_proj");
    TORCH_CHECK(xp.dim() == 3 && xp.size(1) == B && xp.size(2) == G, "x_proj must be (T, B, 4H)");
    xp = xp.contiguous();
    T = xp.size(0);
  }
  if (xin.defined()) {
    const Tensor w_x = maybe(w_x_opt);
    check(xin, "x_in");
    TORCH_CHECK(w_x.defined(), "x_in needs w_x");
    check(w_x, "w_x");
    TORCH_CHECK(xin.dim() == 3 && xin.size(1) == B && (T < 0 || xin.size(0) == T),
                "x_in must be (T, B, K)");
    TORCH_CHECK(w_x.dim() == 2 && w_x.size(0) == G && w_x.size(1) == xin.size(2),
                "w_x must be (4H, K)");
    xin = xin.contiguous();
    wx_t = w_x.t().contiguous();
    T = xin.size(0);
  }
  if (row.defined()) {
    check(row, "row");
    TORCH_CHECK(row.dim() == 2 && row.size(0) == B && row.size(1) == G, "row must be (B, 4H)");
    row = row.contiguous();
  }
  return T;
}

LstmSeq lstm_seq_inputs(const Tensor& x_proj, const Tensor& h0, const Tensor& c0,
                        const Tensor& w_hh, const c10::optional<Tensor>& masks_opt,
                        const c10::optional<Tensor>& packed_opt) {
  LstmSeq s;
  if (x_proj.defined()) {
    check_cpu_float(x_proj, "x_proj");
    s.xp = x_proj.contiguous();
  }
  s.masks = maybe(masks_opt);
  s.packed = maybe(packed_opt);
  s.h0 = h0.contiguous();
  s.c0 = c0.contiguous();
  s.w = w_hh.contiguous();
  s.w_t = w_hh.t();
  check_cpu_float(s.h0, "h0");
  check_same(s.h0, s.masks, "masks");
  return s;
}

void lstm_seq_forward_loop(LstmSeq& s) {
  const int64_t T = s.h_all.size(0), B = s.h0.size(0), H = s.h0.size(1);
  Tensor pre = at::empty({B, 4 * H}, s.h0.options());
  AT_DISPATCH_FLOATING_TYPES(s.h0.scalar_type(), "lstm_seq_forward", [&] {
    for (int64_t t = 0; t < T; ++t) {
      const Tensor h_prev = t == 0 ? s.h0 : s.h_all.select(0, t - 1);
      const Tensor c_prev = t == 0 ? s.c0 : s.c_all.select(0, t - 1);
      StepInput<scalar_t> in = step_input<scalar_t>(s.xp, s.xin, s.wx_t, s.row, t);
      const Tensor gates = recurrent_pre(pre, s.xp, t, h_prev, s.w_t, s.packed, in);
      Tensor h = s.h_all.select(0, t), c = s.c_all.select(0, t);
      Tensor act = s.act_all.select(0, t), tc = s.tc_all.select(0, t);
      lstm_forward_rows<scalar_t>(gates.view({B, 4, H}), c_prev, step_slice(s.masks, t), h, c,
                                  act, tc, in);
    }
  });
}

// dW_hh = sum_t d_pre_t^T h_{t-1}: step 0 reads h0, the others h_all[:-1]; one product over
// all steps and rows.
void lstm_weight_grad(LstmSeq& s) {
  const int64_t T = s.h_all.size(0), B = s.h_all.size(1), H = s.h_all.size(2);
  s.dw = at::mm(s.dx.select(0, 0).t(), s.h0);
  if (T > 1) {
    s.dw.addmm_(s.dx.narrow(0, 1, T - 1).reshape({(T - 1) * B, 4 * H}).t(),
                s.h_all.narrow(0, 0, T - 1).reshape({(T - 1) * B, H}));
  }
}

void lstm_seq_backward_loop(LstmSeq& s, bool weight_grad = true) {
  const int64_t T = s.h_all.size(0), B = s.h_all.size(1), H = s.h_all.size(2);
  auto opts = s.h_all.options();
  Tensor dh_rec = at::zeros({B, H}, opts);  // gradient reaching h_t from step t + 1
  Tensor dc_a = at::empty({B, H}, opts), dc_b = at::empty({B, H}, opts);
  // A step's d_pre is written here, in cache for the step's products, then streamed into dx
  // (read again only by the weight gradient, after the loop): stream_rows.
  Tensor d_pre = at::empty({B, 4 * H}, opts);
  bool have_dc_rec = false;
  AT_DISPATCH_FLOATING_TYPES(s.h_all.scalar_type(), "lstm_seq_backward", [&] {
    for (int64_t t = T - 1; t >= 0; --t) {
      const Tensor c_prev = t == 0 ? s.c0 : s.c_all.select(0, t - 1);
      lstm_backward_rows<scalar_t>(step_slice(s.dh_all, t), t == T - 1 ? Tensor() : dh_rec,
                                   step_slice(s.dc_all, t), have_dc_rec ? dc_a : Tensor(),
                                   s.act_all.select(0, t), s.tc_all.select(0, t), c_prev,
                                   step_slice(s.masks, t), d_pre, dc_b, s.d_row);
      if (s.d_wx.defined())
        add_input_weight_grad<scalar_t>(s.d_wx.data_ptr<double>(),
                                        s.xin.data_ptr<scalar_t>() + t * s.xin.stride(0),
                                        d_pre.data_ptr<scalar_t>(), B, s.xin.size(2), 4 * H);
      std::swap(dc_a, dc_b);
      have_dc_rec = true;
      recurrent_grad(dh_rec, d_pre, s.w, s.packed);
      stream_rows<scalar_t>(s.dx.select(0, t), d_pre);
    }
  });
  s.dh0 = dh_rec;
  s.dc0 = T > 0 ? dc_a : at::zeros({B, H}, opts);
  if (weight_grad) lstm_weight_grad(s);
}

void lstm_seq_allocate_forward(LstmSeq& s, int64_t T) {
  const int64_t B = s.h0.size(0), H = s.h0.size(1);
  auto opts = s.h0.options();
  s.h_all = seq_empty({T, B, H}, opts);
  s.c_all = seq_empty({T, B, H}, opts);
  s.act_all = seq_empty({T, B, 4 * H}, opts);
  s.tc_all = seq_empty({T, B, H}, opts);
}

// The float64 sum of d w_x^T (K, 4H) that a backward loop adds each step to
// (add_input_weight_grad).
Tensor input_weight_grad_sum(int64_t K, int64_t G) {
  return at::zeros({K, G}, at::TensorOptions().dtype(at::kDouble));
}

// d w_x (4H, K) in the gradients' dtype from the float64 sums of one or two parts.
Tensor input_weight_grad(const Tensor& a, const Tensor& b, at::ScalarType dtype) {
  if (!a.defined()) return Tensor();
  return (b.defined() ? a + b : a).t().to(dtype);
}

// Where x_in is given, the loop sums the narrow inputs' weight gradient; where row_grad, the
// per-row term's.
void lstm_seq_backward_inputs(LstmSeq& s, const c10::optional<Tensor>& dh_all_opt,
                              const c10::optional<Tensor>& dc_all_opt, bool row_grad,
                              const c10::optional<Tensor>& x_in) {
  s.dh_all = maybe(dh_all_opt);
  s.dc_all = maybe(dc_all_opt);
  if (s.dh_all.defined()) s.dh_all = s.dh_all.contiguous();
  if (s.dc_all.defined()) s.dc_all = s.dc_all.contiguous();
  const int64_t T = s.h_all.size(0), B = s.h_all.size(1), H = s.h_all.size(2);
  s.dx = seq_empty({T, B, 4 * H}, s.h_all.options());
  if (row_grad) s.d_row = at::zeros({B, 4 * H}, s.h_all.options());
  if (x_in.has_value()) {
    check_same(s.h_all, *x_in, "x_in");
    TORCH_CHECK(x_in->dim() == 3 && x_in->size(0) == T && x_in->size(1) == B,
                "x_in must be (T, B, K)");
    s.xin = *x_in;
    s.d_wx = input_weight_grad_sum(x_in->size(2), 4 * H);
  }
}

// Runs fn(i) for i < n: side by side, one thread each, where the process has exactly n
// threads (the two directions of the encoder on two cores: each sequence's small products
// and row kernels stay on one core, with no hand-over between threads at every step;
// oneDNN, MKL and at::parallel_for run single-threaded inside a parallel region); one after
// the other, each on all threads, otherwise.
template <typename F>
void side_by_side(int64_t n, F fn) {
  if (n > 1 && at::get_num_threads() == n && !at::in_parallel_region()) {
    // The caller's thread-local state (autograd off inside an autograd.Function, ...) holds
    // on the worker threads too.
    const at::ThreadLocalState caller;
    at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
      at::ThreadLocalStateGuard guard(caller);
      for (int64_t i = begin; i < end; ++i) fn(i);
    });
  } else {
    for (int64_t i = 0; i < n; ++i) fn(i);
  }
}

// The rows of a recurrent layer are independent of each other: with exactly two threads, each
// half of the batch runs its whole time loop on one thread (side_by_side), with no hand-over
// between the threads at any step (at two threads every product and row kernel of a step
// was a parallel region of its own, and waking the partner thread at each one costs the
// most); the weight gradient is one product over all rows after. Returns the rows of the
// first half, or 0 where the batch is not split (other thread counts, small batches).
int64_t half_rows(int64_t B) {
  const bool split = B >= 16 && at::get_num_threads() == 2 && !at::in_parallel_region();
  return split ? (B + 1) / 2 : 0;
}

// Rows [r0, r0 + n) of every per-row tensor of `s` (views: a step's slice of each is
// contiguous, as the row kernels need).
LstmSeq lstm_rows(const LstmSeq& s, int64_t r0, int64_t n) {
  auto rows = [&](const Tensor& t, int64_t dim) {
    return (t.defined() && t.numel() > 0) ? t.narrow(dim, r0, n) : t;
  };
  LstmSeq part = s;
  part.xp = rows(s.xp, 1);
  part.xin = rows(s.xin, 1);
  part.row = rows(s.row, 0);
  part.h0 = rows(s.h0, 0);
  part.c0 = rows(s.c0, 0);
  part.masks = rows(s.masks, 1);
  for (Tensor* t : {&part.h_all, &part.c_all, &part.act_all, &part.tc_all, &part.dh_all,
                    &part.dc_all, &part.dx})
    *t = rows(*t, 1);
  part.d_row = rows(s.d_row, 0);
  return part;
}

std::vector<Tensor> lstm_seq_forward(const c10::optional<Tensor>& x_proj, const Tensor& h0,
                                     const Tensor& c0, const Tensor& w_hh,
                                     const c10::optional<Tensor>& masks_opt,
                                     const c10::optional<Tensor>& packed,
                                     const c10::optional<Tensor>& x_in,
                                     const c10::optional<Tensor>& w_x,
                                     const c10::optional<Tensor>& row) {
  LstmSeq s = lstm_seq_inputs(Tensor(), h0, c0, w_hh, masks_opt, packed);
  const int64_t T = sequence_inputs(x_proj, x_in, w_x, row, s.h0, s.xp, s.xin, s.wx_t, s.row);
  lstm_seq_allocate_forward(s, T);
  const int64_t B = s.h0.size(0), half = half_rows(B);
  if (half) {
    std::vector<LstmSeq> parts{lstm_rows(s, 0, half), lstm_rows(s, half, B - half)};
    side_by_side(2, [&](int64_t i) { lstm_seq_forward_loop(parts[i]); });
  } else {
    lstm_seq_forward_loop(s);
  }
  return {s.h_all, s.c_all, s.act_all, s.tc_all};
}

std::vector<Tensor> lstm_seq_backward(const c10::optional<Tensor>& dh_all_opt,
                                      const c10::optional<Tensor>& dc_all_opt,
                                      const Tensor& h0, const Tensor& c0, const Tensor& w_hh,
                                      const c10::optional<Tensor>& masks_opt,
                                      const Tensor& h_all, const Tensor& c_all,
                                      const Tensor& act_all, const Tensor& tc_all,
                                      const c10::optional<Tensor>& packed, bool row_grad,
                                      const c10::optional<Tensor>& x_in) {
  // No input term: the backward needs none (it gives the gradient of each step's).
  LstmSeq s = lstm_seq_inputs(Tensor(), h0, c0, w_hh, masks_opt, packed);
  s.h_all = h_all;
  s.c_all = c_all;
  s.act_all = act_all;
  s.tc_all = tc_all;
  lstm_seq_backward_inputs(s, dh_all_opt, dc_all_opt, row_grad, x_in);
  const int64_t B = s.h_all.size(1), half = half_rows(B);
  Tensor d_wx;
  if (half) {
    std::vector<LstmSeq> parts{lstm_rows(s, 0, half), lstm_rows(s, half, B - half)};
    if (s.d_wx.defined()) parts[1].d_wx = at::zeros_like(s.d_wx);  // a sum of its own
    side_by_side(2, [&](int64_t i) { lstm_seq_backward_loop(parts[i], false); });
    s.dh0 = at::cat({parts[0].dh0, parts[1].dh0}, 0);
    s.dc0 = at::cat({parts[0].dc0, parts[1].dc0}, 0);
    lstm_weight_grad(s);
    d_wx = input_weight_grad(parts[0].d_wx, parts[1].d_wx, h_all.scalar_type());
  } else {
    lstm_seq_backward_loop(s);
    d_wx = input_weight_grad(s.d_wx, Tensor(), h_all.scalar_type());
  }
  return {s.dx, s.dh0, s.dc0, s.dw, s.d_row, d_wx};
}

// Several independent plain-LSTM sequences without dropout, from zero states (the two
// directions of a bidirectional encoder): as one lstm_seq_forward each, side by side where the
// threads allow (side_by_side). Returns h_all, c_all, act_all, tc_all of each, in order.
// Each sequence's input term is x_projs[i] or, where x_projs[i] is None, its narrow inputs
// x_ins[i], w_xs[i], rows[i] (StepInput).
std::vector<Tensor> lstm_seq_forward_many(const std::vector<c10::optional<Tensor>>& x_projs,
                                          const std::vector<Tensor>& w_hhs,
                                          const std::vector<c10::optional<Tensor>>& packed,
                                          const std::vector<c10::optional<Tensor>>& x_ins,
                                          const std::vector<c10::optional<Tensor>>& w_xs,
                                          const std::vector<c10::optional<Tensor>>& rows) {
  const int64_t n = static_cast<int64_t>(x_projs.size());
  TORCH_CHECK(w_hhs.size() == x_projs.size() && packed.size() == x_projs.size() &&
                  x_ins.size() == x_projs.size() && w_xs.size() == x_projs.size() &&
                  rows.size() == x_projs.size(),
              "one w_hh, packed weight, x_in, w_x and row (or None) per sequence");
  std::vector<LstmSeq> seqs;
  for (int64_t i = 0; i < n; ++i) {
    const Tensor& some = x_projs[i].has_value() ? *x_projs[i] : maybe(x_ins[i]);
    TORCH_CHECK(some.defined() && some.dim() == 3 && w_hhs[i].dim() == 2,
                "x_proj (T, B, 4H) or x_in (T, B, K), and w_hh (4H, H) expected");
    check_cpu_float(some, "x_proj");
    Tensor zeros = at::zeros({some.size(1), w_hhs[i].size(1)}, some.options());
    LstmSeq s = lstm_seq_inputs(Tensor(), zeros, zeros, w_hhs[i], c10::nullopt, packed[i]);
    const int64_t T =
        sequence_inputs(x_projs[i], x_ins[i], w_xs[i], rows[i], s.h0, s.xp, s.xin, s.wx_t, s.row);
    lstm_seq_allocate_forward(s, T);
    seqs.push_back(s);
  }
  side_by_side(n, [&](int64_t i) { lstm_seq_forward_loop(seqs[i]); });
  std::vector<Tensor> out;
  for (auto& s : seqs) out.insert(out.end(), {s.h_all, s.c_all, s.act_all, s.tc_all});
  return out;
}

// The backward of lstm_seq_forward_many: dh_alls[i] the gradient of sequence i's h_all
// (T, B, H), saved[4 i .. 4 i + 3] its forward's outputs. Returns d x_proj and d w_hh of each.
std::vector<Tensor> lstm_seq_backward_many(const std::vector<Tensor>& dh_alls,
                                           const std::vector<Tensor>& saved,
                                           const std::vector<Tensor>& w_hhs,
                                           const std::vector<c10::optional<Tensor>>& packed,
                                           const std::vector<bool>& row_grads,
                                           const std::vector<c10::optional<Tensor>>& x_ins) {
  const int64_t n = static_cast<int64_t>(dh_alls.size());
  TORCH_CHECK(row_grads.size() == dh_alls.size() && x_ins.size() == dh_alls.size(),
              "one row_grad flag and one x_in (or None) per sequence");
  TORCH_CHECK(saved.size() == 4 * dh_alls.size() && w_hhs.size() == dh_alls.size() &&
                  packed.size() == dh_alls.size(),
              "four saved tensors, one w_hh and one packed weight (or None) per sequence");
  std::vector<LstmSeq> seqs;
  for (int64_t i = 0; i < n; ++i) {
    const Tensor& h_all = saved[4 * i];
    Tensor zeros = at::zeros({h_all.size(1), h_all.size(2)}, h_all.options());
    LstmSeq s = lstm_seq_inputs(Tensor(), zeros, zeros, w_hhs[i], c10::nullopt, packed[i]);
    s.h_all = h_all;
    s.c_all = saved[4 * i + 1];
    s.act_all = saved[4 * i + 2];
    s.tc_all = saved[4 * i + 3];
    check_cpu_float(dh_alls[i], "dh_all");
    lstm_seq_backward_inputs(s, dh_alls[i], c10::nullopt, row_grads[i], x_ins[i]);
    seqs.push_back(s);
  }
  side_by_side(n, [&](int64_t i) { lstm_seq_backward_loop(seqs[i]); });
  std::vector<Tensor> out;
  for (auto& s : seqs)
    out.insert(out.end(), {s.dx, s.dw, s.d_row,
                           input_weight_grad(s.d_wx, Tensor(), s.h_all.scalar_type())});
  return out;
}

std::vector<Tensor> ln_lstm_seq_forward(const c10::optional<Tensor>& x_proj, const Tensor& h0,
                                        const Tensor& c0, const Tensor& w_hh, const Tensor& gg,
                                        const Tensor& gb, const Tensor& cg, const Tensor& cb,
                                        const c10::optional<Tensor>& masks_opt, double eps,
                                        const c10::optional<Tensor>& packed_opt,
                                        const c10::optional<Tensor>& x_in,
                                        const c10::optional<Tensor>& w_x,
                                        const c10::optional<Tensor>& row) {
  const Tensor packed = maybe(packed_opt);
  check_cpu_float(h0, "h0");
  const int64_t B = h0.size(0), H = h0.size(1);
  Tensor xp, xin, wx_t, row_c, masks = maybe(masks_opt);
  Tensor h0c = h0.contiguous(), c0c = c0.contiguous(), w_t = w_hh.t();
  const int64_t T = sequence_inputs(x_proj, x_in, w_x, row, h0c, xp, xin, wx_t, row_c);
  Tensor ggc = gg.contiguous(), gbc = gb.contiguous(), cgc = cg.contiguous(),
         cbc = cb.contiguous();
  check_same(h0c, masks, "masks");
  auto opts = h0c.options();
  Tensor h_all = seq_empty({T, B, H}, opts), c_all = seq_empty({T, B, H}, opts);
  Tensor xh_all = seq_empty({T, B, 4 * H}, opts), act_all = seq_empty({T, B, 4 * H}, opts);
  Tensor xc_all = seq_empty({T, B, H}, opts), ty_all = seq_empty({T, B, H}, opts);
  Tensor st_all = seq_empty({T, B, 5}, opts);
  // The time loop over rows [r0, r0 + n) (all of them, or one half on each of two threads:
  // half_rows).
  auto loop = [&](int64_t r0, int64_t n) {
    auto rows = [&](const Tensor& t, int64_t dim) {
      return (t.defined() && t.numel() > 0) ? t.narrow(dim, r0, n) : t;
    };
    const Tensor xp_r = rows(xp, 1), masks_r = rows(masks, 1), xin_r = rows(xin, 1),
                 row_r = rows(row_c, 0);
    const Tensor h0_r = rows(h0c, 0), c0_r = rows(c0c, 0);
    Tensor h_r = rows(h_all, 1), c_r = rows(c_all, 1), xh_r = rows(xh_all, 1),
           act_r = rows(act_all, 1), xc_r = rows(xc_all, 1), ty_r = rows(ty_all, 1),
           st_r = rows(st_all, 1);
    Tensor pre = at::empty({n, 4 * H}, opts);
    AT_DISPATCH_FLOATING_TYPES(h0c.scalar_type(), "ln_lstm_seq_forward", [&] {
      for (int64_t t = 0; t < T; ++t) {
        const Tensor h_prev = t == 0 ? h0_r : h_r.select(0, t - 1);
        const Tensor c_prev = t == 0 ? c0_r : c_r.select(0, t - 1);
        StepInput<scalar_t> in = step_input<scalar_t>(xp_r, xin_r, wx_t, row_r, t);
        const Tensor gates = recurrent_pre(pre, xp_r, t, h_prev, w_t, packed, in);
        Tensor h = h_r.select(0, t), c = c_r.select(0, t), xh = xh_r.select(0, t),
               act = act_r.select(0, t), xc = xc_r.select(0, t), ty = ty_r.select(0, t),
               st = st_r.select(0, t);
        ln_forward_rows<scalar_t>(gates.view({n, 4, H}), c_prev, ggc, gbc, cgc, cbc,
                                  step_slice(masks_r, t), eps, h, c, xh, act, xc, ty, st, in);
      }
    });
  };
  const int64_t half = half_rows(B);
  if (half) {
    side_by_side(2, [&](int64_t i) { i == 0 ? loop(0, half) : loop(half, B - half); });
  } else {
    loop(0, B);
  }
  return {h_all, c_all, xh_all, act_all, xc_all, ty_all, st_all};
}

std::vector<Tensor> ln_lstm_seq_backward(
    const c10::optional<Tensor>& dh_all_opt, const c10::optional<Tensor>& dc_all_opt,
    const Tensor& h0, const Tensor& c0, const Tensor& w_hh, const Tensor& gg, const Tensor& cg,
    const c10::optional<Tensor>& masks_opt, const Tensor& h_all, const Tensor& c_all,
    const Tensor& xh_all, const Tensor& act_all, const Tensor& xc_all, const Tensor& ty_all,
    const Tensor& st_all, const c10::optional<Tensor>& packed_opt, bool row_grad,
    const c10::optional<Tensor>& x_in_opt) {
  const Tensor packed = maybe(packed_opt);
  const int64_t T = h_all.size(0), B = h_all.size(1), H = h_all.size(2);
  Tensor dh_all = maybe(dh_all_opt), dc_all = maybe(dc_all_opt), masks = maybe(masks_opt);
  if (dh_all.defined()) dh_all = dh_all.contiguous();
  if (dc_all.defined()) dc_all = dc_all.contiguous();
  Tensor h0c = h0.contiguous(), c0c = c0.contiguous(), w = w_hh.contiguous();
  Tensor ggc = gg.contiguous(), cgc = cg.contiguous();
  auto opts = h_all.options();
  Tensor dx = seq_empty({T, B, 4 * H}, opts);
  Tensor d_row = row_grad ? at::zeros({B, 4 * H}, opts) : Tensor();
  const Tensor x_in = maybe(x_in_opt);  // where given, the loop sums d w_x (StepInput)
  if (x_in.defined()) {
    check_same(h_all, x_in, "x_in");
    TORCH_CHECK(x_in.dim() == 3 && x_in.size(0) == T && x_in.size(1) == B,
                "x_in must be (T, B, K)");
  }
  // The reversed time loop over rows [r0, r0 + n) (all, or one half on each of two threads:
  // half_rows); each part sums its own norm-parameter gradients, added after.
  struct Part {
    Tensor dh0, dc0, dgg, dgb, dcg, dcb, d_wx;
  };
  auto loop = [&](int64_t r0, int64_t n) {
    auto rows = [&](const Tensor& t, int64_t dim) {
      return (t.defined() && t.numel() > 0) ? t.narrow(dim, r0, n) : t;
    };
    const Tensor dh_r = rows(dh_all, 1), dc_r = rows(dc_all, 1), masks_r = rows(masks, 1);
    const Tensor c0_r = rows(c0c, 0), c_all_r = rows(c_all, 1), xh_r = rows(xh_all, 1),
                 act_r = rows(act_all, 1), xc_r = rows(xc_all, 1), ty_r = rows(ty_all, 1),
                 st_r = rows(st_all, 1);
    Tensor dx_r = rows(dx, 1), d_row_r = rows(d_row, 0), x_in_r = rows(x_in, 1);
    Part out{at::zeros({n, H}, opts), Tensor(),           at::zeros({4, H}, opts),
             at::zeros({4, H}, opts), at::zeros({H}, opts), at::zeros({H}, opts)};
    if (x_in.defined()) out.d_wx = input_weight_grad_sum(x_in.size(2), 4 * H);
    Tensor dc_a = at::empty({n, H}, opts), dc_b = at::empty({n, H}, opts);
    // A step's d_pre, in cache for the step's products, then streamed into dx (stream_rows).
    Tensor d_pre = at::empty({n, 4 * H}, opts);
    bool have_dc_rec = false;
    AT_DISPATCH_FLOATING_TYPES(h_all.scalar_type(), "ln_lstm_seq_backward", [&] {
      for (int64_t t = T - 1; t >= 0; --t) {
        const Tensor c_prev = t == 0 ? c0_r : c_all_r.select(0, t - 1);
        ln_backward_rows<scalar_t>(step_slice(dh_r, t), t == T - 1 ? Tensor() : out.dh0,
                                   step_slice(dc_r, t), have_dc_rec ? dc_a : Tensor(),
                                   xh_r.select(0, t), act_r.select(0, t), xc_r.select(0, t),
                                   ty_r.select(0, t), st_r.select(0, t), c_prev,
                                   step_slice(masks_r, t), ggc, cgc, d_pre, dc_b, out.dgg,
                                   out.dgb, out.dcg, out.dcb, d_row_r);
        if (out.d_wx.defined())
          add_input_weight_grad<scalar_t>(out.d_wx.data_ptr<double>(),
                                          x_in_r.data_ptr<scalar_t>() + t * x_in_r.stride(0),
                                          d_pre.data_ptr<scalar_t>(), n, x_in.size(2), 4 * H);
        std::swap(dc_a, dc_b);
        have_dc_rec = true;
        recurrent_grad(out.dh0, d_pre, w, packed);  // the gradient reaching h_{t-1}
        stream_rows<scalar_t>(dx_r.select(0, t), d_pre);
      }
    });
    out.dc0 = T > 0 ? dc_a : at::zeros({n, H}, opts);
    return out;
  };
  const int64_t half = half_rows(B);
  std::vector<Part> parts(half ? 2 : 1);
  if (half) {
    side_by_side(2, [&](int64_t i) { parts[i] = i == 0 ? loop(0, half) : loop(half, B - half); });
  } else {
    parts[0] = loop(0, B);
  }
  Part all = parts[0];
  if (half) {
    all.dh0 = at::cat({parts[0].dh0, parts[1].dh0}, 0);
    all.dc0 = at::cat({parts[0].dc0, parts[1].dc0}, 0);
    for (auto [sum, other] : {std::pair{&all.dgg, &parts[1].dgg}, {&all.dgb, &parts[1].dgb},
                              {&all.dcg, &parts[1].dcg}, {&all.dcb, &parts[1].dcb}})
      *sum = *sum + *other;
  }
  Tensor dw = at::mm(dx.select(0, 0).t(), h0c);
  if (T > 1) {
    dw.addmm_(dx.narrow(0, 1, T - 1).reshape({(T - 1) * B, 4 * H}).t(),
              h_all.narrow(0, 0, T - 1).reshape({(T - 1) * B, H}));
  }
  const Tensor d_wx = input_weight_grad(parts[0].d_wx, half ? parts[1].d_wx : Tensor(),
                                        h_all.scalar_type());
  return {dx, all.dh0, all.dc0, dw, all.dgg, all.dgb, all.dcg, all.dcb, d_row, d_wx};
}

}  // namespace

// mixture_kernels.cpp: the mixture head's training losses.
void bind_mixture_kernels(pybind11::module& m);

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "Fused elementwise kernels of sketchrnn's recurrent cells and mixture loss (CPU)";
  bind_mixture_kernels(m);
  m.def("ln_lstm_step_forward", &ln_lstm_step_forward);
  m.def("ln_lstm_step_forward_out", &ln_lstm_step_forward_out);
  m.def("ln_lstm_step_backward", &ln_lstm_step_backward);
  m.def("lstm_step_forward", &lstm_step_forward);
  m.def("lstm_step_backward", &lstm_step_backward);
  m.def("lstm_seq_forward", &lstm_seq_forward);
  m.def("lstm_seq_backward", &lstm_seq_backward);
  m.def("lstm_seq_forward_many", &lstm_seq_forward_many);
  m.def("lstm_seq_backward_many", &lstm_seq_backward_many);
  m.def("packed_linear", &packed_linear);
  m.def("ln_lstm_seq_forward", &ln_lstm_seq_forward);
  m.def("ln_lstm_seq_backward", &ln_lstm_seq_backward);
  m.def("hyper_modulate_forward", &hyper_modulate_forward);
  m.def("hyper_modulate_backward", &hyper_modulate_backward);
  m.def("workspace_empty", [](std::vector<int64_t> shape, const Tensor& like) {
    return seq_empty(shape, like.options());
  });
  m.def("dropout_masks", &dropout_masks);
  m.def("release_workspace", &release_workspace);
  m.def("set_workspace_enabled", &set_workspace_enabled);
  m.def("num_threads", [] { return at::get_num_threads(); });
  m.def("parallel_chunks", [](int64_t n) {
    // How many chunks at::parallel_for splits n rows into (grain 1): > 1 means it runs
    // multi-threaded in this build.
    std::atomic<int64_t> chunks{0};
    at::parallel_for(0, n, 1, [&](int64_t, int64_t) { chunks++; });
    return chunks.load();
  });
}
