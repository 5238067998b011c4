// The mixture-density head's training losses (sketch-rnn's L_s and L_p, eq. 9) and their
// gradient as one pass over the head's raw output each way (CPU, float32 and float64), built
// into the same extension as cell_kernels.cpp (which binds these functions).
//
// The reference is sketchrnn/nn/mixture.py (mixture_params + reconstruction_losses): some forty
// PyTorch operations over (B, T, M) tensors forward and as many backward, each a pass over
// memory (about 30 ms of a 0.8 s training step at the small preset, one thread). Here each
// row (one step of one sketch, 6M + 3 values) is read once forward and once backward, and the
// maths is the same:
//
//   y = [pen logits (3) | pi logits (M) | mu_x | mu_y | log sigma_x | log sigma_y | raw rho]
//   log pi = log_softmax(pi logits);  ls = clamp(log sigma, -5, 5);  rho = tanh(raw) * L
//   zx = (dx - mu_x) e^-ls_x;  zy = (dy - mu_y) e^-ls_y;  om = 1 - rho^2
//   q = (zx^2 + zy^2 - 2 rho zx zy) / om
//   a_k = log pi_k - log 2pi - ls_x - ls_y - log(om) / 2 - q / 2;  LL = logsumexp_k a_k
//   L_s = -sum_{real rows} LL / (B T);  L_p = -sum_{all rows} sum_j p_j log_softmax(pen)_j / (B T)
//
// Gradient of LL, with w = softmax(a) (each component's share of the point):
//   d pi logit_k = w_k - softmax(pi logits)_k
//   d mu_x_k = w_k (zx - rho zy) / om * e^-ls_x        (mu_y: x and y swapped)
//   d ls_x_k = w_k ((zx - rho zy) zx / om - 1), 0 outside the clamp (as torch.clamp's)
//   d raw_k  = w_k (rho + zx zy - rho q) / om * L (1 - tanh(raw)^2)
// and of a row's pen term: d pen logit_j = p_j - softmax(pen)_j sum_i p_i.
// Padded rows (t >= length) add nothing to L_s and get no offset gradient, whatever their
// values (NaN included), as the reference's where().

#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#define MIX_SIMD _Pragma("omp simd")

namespace sketchrnn_mixture {

using at::Tensor;

constexpr double kLog2Pi = 1.8378770664093453;  // log(2 pi)
constexpr double kLogSigmaMin = -5.0, kLogSigmaMax = 5.0;
constexpr double kRhoLimit = 1.0 - 1e-5;

// The same overloads as cell_kernels.cpp's: each file is compiled on its own, from a copy in
// the build folder (fused._sources_in), and a shared header would have to travel there too.
inline float exp_(float x) { return expf(x); }
inline double exp_(double x) { return exp(x); }
inline float log_(float x) { return logf(x); }
inline double log_(double x) { return log(x); }
inline float tanh_(float x) { return tanhf(x); }
inline double tanh_(double x) { return tanh(x); }

// exp(x) for x <= 0 (a log-probability less its maximum), with x raised to the smallest
// normal number's log first: the vector exp of glibc takes a scalar path for every lane that
// underflows, and most components of a mixture are that far from most points (the backward
// pass ran 2x slower on it). The terms change by under 1.2e-38 (2.2e-308 in float64), next to
// sums of at least 1.
inline float exp_neg_(float x) { return expf(std::max(x, -87.3f)); }
inline double exp_neg_(double x) { return exp(std::max(x, -708.3)); }

// Rows are taken 16 at a time (kLanes: one AVX-512 vector of floats) and transposed into a
// scratch block, column-major: every loop below then runs over the 16 rows of one column with
// whole vectors (over the M components of one row, M = 10 or 20, most of each loop would be
// a partial vector or a scalar remainder: that form ran 3x slower).
constexpr int64_t kLanes = 16;

template <typename T>
struct Block {
  int64_t M, C;
  std::vector<T> y, d;                     // (C, kLanes): the rows' values, their gradient
  std::vector<T> a, zx, zy, rho, q, th, isx, isy;  // (M, kLanes): each component's terms
  std::vector<T> lse_pi, ll, lse_pen, p_sum, dx, dy, real;  // (kLanes)
  explicit Block(int64_t M_)
      : M(M_), C(6 * M_ + 3), y(C * kLanes), d(C * kLanes), a(M_ * kLanes), zx(M_ * kLanes),
        zy(M_ * kLanes), rho(M_ * kLanes), q(M_ * kLanes), th(M_ * kLanes), isx(M_ * kLanes),
        isy(M_ * kLanes), lse_pi(kLanes),
        ll(kLanes), lse_pen(kLanes), p_sum(kLanes), dx(kLanes), dy(kLanes), real(kLanes) {}

  // Rows r0 .. r0 + n - 1 of y (B * T, C) and their targets into the block; lanes past n get
  // zeros (and count as padding).
  void load(const T* yp, const T* tp, const int64_t* lengths, int64_t Tn, int64_t r0, int64_t n) {
    if (n < kLanes) std::fill(y.begin(), y.end(), T(0));  // a full block overwrites it all
    for (int64_t l = 0; l < n; ++l) {
      const T* row = yp + (r0 + l) * C;
      for (int64_t c = 0; c < C; ++c) y[c * kLanes + l] = row[c];
    }
    for (int64_t l = 0; l < kLanes; ++l) {
      const int64_t r = r0 + l;
      const bool in = l < n;
      dx[l] = in ? tp[r * 5] : T(0);
      dy[l] = in ? tp[r * 5 + 1] : T(0);
      real[l] = (in && r % Tn < lengths[r / Tn]) ? T(1) : T(0);
    }
  }

  // Column c of the block.
  T* col(int64_t c) { return y.data() + c * kLanes; }
};

// Per lane: log sum_k exp(v_k) over n columns of kLanes values.
template <typename T>
inline void logsumexp_cols(const T* __restrict__ v, int64_t n, T* __restrict__ out) {
  T m[kLanes], s[kLanes];
  MIX_SIMD
  for (int64_t l = 0; l < kLanes; ++l) {
    m[l] = v[l];
    s[l] = 0;
  }
  for (int64_t k = 1; k < n; ++k) {
    MIX_SIMD
    for (int64_t l = 0; l < kLanes; ++l) m[l] = std::max(m[l], v[k * kLanes + l]);
  }
  for (int64_t k = 0; k < n; ++k) {
    MIX_SIMD
    for (int64_t l = 0; l < kLanes; ++l) s[l] += exp_neg_(v[k * kLanes + l] - m[l]);
  }
  MIX_SIMD
  for (int64_t l = 0; l < kLanes; ++l) out[l] = m[l] + log_(s[l]);
}

// The block's pen terms (sum_j p_j log_softmax(pen)_j per lane, into `pen_ll`) and offset
// log-likelihoods (block.ll; every lane computed, padding masked by the caller), with the
// terms the gradient needs left in the block. Pen states are the targets' columns 2-4.
template <typename T>
void block_forward(Block<T>& bk, const T* tp, int64_t r0, int64_t n, T* __restrict__ pen_ll) {
  const int64_t M = bk.M;
  // pen: columns 0-2; targets' pen states read row by row (5 per row).
  T p[3][kLanes];
  for (int64_t l = 0; l < kLanes; ++l)
    for (int64_t j = 0; j < 3; ++j) p[j][l] = l < n ? tp[(r0 + l) * 5 + 2 + j] : T(0);
  logsumexp_cols(bk.col(0), 3, bk.lse_pen.data());
  MIX_SIMD
  for (int64_t l = 0; l < kLanes; ++l) {
    T acc = 0, ps = 0;
    for (int64_t j = 0; j < 3; ++j) {
      acc += p[j][l] * (bk.y[j * kLanes + l] - bk.lse_pen[l]);
      ps += p[j][l];
    }
    pen_ll[l] = acc;
    bk.p_sum[l] = ps;
  }
  // offsets
  logsumexp_cols(bk.col(3), M, bk.lse_pi.data());
  const T lo = T(kLogSigmaMin), hi = T(kLogSigmaMax);
  for (int64_t k = 0; k < M; ++k) {
    const T* __restrict__ pi = bk.col(3 + k);
    const T* __restrict__ mux = bk.col(3 + M + k);
    const T* __restrict__ muy = bk.col(3 + 2 * M + k);
    const T* __restrict__ lsx_raw = bk.col(3 + 3 * M + k);
    const T* __restrict__ lsy_raw = bk.col(3 + 4 * M + k);
    const T* __restrict__ rr = bk.col(3 + 5 * M + k);
    const T* __restrict__ dx = bk.dx.data();
    const T* __restrict__ dy = bk.dy.data();
    const T* __restrict__ lse_pi = bk.lse_pi.data();
    T* __restrict__ a = bk.a.data() + k * kLanes;
    T* __restrict__ zx_ = bk.zx.data() + k * kLanes;
    T* __restrict__ zy_ = bk.zy.data() + k * kLanes;
    T* __restrict__ rho_ = bk.rho.data() + k * kLanes;
    T* __restrict__ q_ = bk.q.data() + k * kLanes;
    T* __restrict__ th_ = bk.th.data() + k * kLanes;
    T* __restrict__ isx_ = bk.isx.data() + k * kLanes;
    T* __restrict__ isy_ = bk.isy.data() + k * kLanes;
    MIX_SIMD
    for (int64_t l = 0; l < kLanes; ++l) {
      const T lsx = std::min(std::max(lsx_raw[l], lo), hi);
      const T lsy = std::min(std::max(lsy_raw[l], lo), hi);
      const T th = tanh_(rr[l]);
      const T rho = th * T(kRhoLimit);
      const T isx = exp_(-lsx), isy = exp_(-lsy);
      const T zx = (dx[l] - mux[l]) * isx;
      const T zy = (dy[l] - muy[l]) * isy;
      const T om = T(1) - rho * rho;
      const T q = (zx * zx + zy * zy - T(2) * rho * zx * zy) / om;
      a[l] = (pi[l] - lse_pi[l]) - T(kLog2Pi) - lsx - lsy - T(0.5) * log_(om) - T(0.5) * q;
      zx_[l] = zx;
      zy_[l] = zy;
      rho_[l] = rho;
      q_[l] = q;
      th_[l] = th;
      isx_[l] = isx;
      isy_[l] = isy;
    }
  }
  logsumexp_cols(bk.a.data(), M, bk.ll.data());
}

int64_t blocks_per_chunk(int64_t M) { return std::max<int64_t>(1, 512 / (6 * M + 3)); }

void check(const Tensor& y, const Tensor& targets, const Tensor& lengths, int64_t M) {
  TORCH_CHECK(y.device().is_cpu() && targets.device().is_cpu(), "mixture loss: CPU tensors only");
  TORCH_CHECK(M >= 1 && y.dim() == 3 && y.size(2) == 6 * M + 3 && y.is_contiguous(),
              "mixture loss: y must be a contiguous (B, T, 6M + 3) tensor");
  TORCH_CHECK(targets.dim() == 3 && targets.size(0) == y.size(0) && targets.size(1) == y.size(1) &&
                  targets.size(2) == 5 && targets.is_contiguous() &&
                  targets.scalar_type() == y.scalar_type(),
              "mixture loss: targets must be a contiguous (B, T, 5) tensor of y's dtype");
  TORCH_CHECK(lengths.dim() == 1 && lengths.size(0) == y.size(0) &&
                  lengths.scalar_type() == at::kLong && lengths.is_contiguous(),
              "mixture loss: lengths must be a (B,) int64 tensor");
}

// (L_s, L_p) as 0-dim tensors of y's dtype; the sums are taken per row in parallel, then in
// row order in float64 (the same result at any thread count).
template <typename T>
std::vector<Tensor> forward_impl(const Tensor& y, const Tensor& targets, const Tensor& lengths,
                                 int64_t M) {
  const int64_t B = y.size(0), Tn = y.size(1), R = B * Tn;
  const T* yp = y.data_ptr<T>();
  const T* tp = targets.data_ptr<T>();
  const int64_t* lp = lengths.data_ptr<int64_t>();
  const int64_t nblocks = (R + kLanes - 1) / kLanes;
  std::vector<double> s_rows(R), p_rows(R);
  at::parallel_for(0, nblocks, blocks_per_chunk(M), [&](int64_t begin, int64_t end) {
    Block<T> bk(M);
    T pen_ll[kLanes];
    for (int64_t blk = begin; blk < end; ++blk) {
      const int64_t r0 = blk * kLanes, n = std::min(kLanes, R - r0);
      bk.load(yp, tp, lp, Tn, r0, n);
      block_forward(bk, tp, r0, n, pen_ll);
      for (int64_t l = 0; l < n; ++l) {
        p_rows[r0 + l] = static_cast<double>(pen_ll[l]);
        s_rows[r0 + l] = bk.real[l] != T(0) ? static_cast<double>(bk.ll[l]) : 0.0;
      }
    }
  });
  double s_sum = 0, p_sum = 0;
  for (int64_t r = 0; r < R; ++r) {
    s_sum += s_rows[r];
    p_sum += p_rows[r];
  }
  const double count = static_cast<double>(R);
  return {at::scalar_tensor(-s_sum / count, y.options()),
          at::scalar_tensor(-p_sum / count, y.options())};
}

// dy (B, T, 6M + 3) given the gradients g_s, g_p of the two losses.
template <typename T>
Tensor backward_impl(const Tensor& y, const Tensor& targets, const Tensor& lengths, int64_t M,
                     double g_s, double g_p) {
  const int64_t B = y.size(0), Tn = y.size(1), C = 6 * M + 3, R = B * Tn;
  Tensor dy = at::empty_like(y);
  const T* yp = y.data_ptr<T>();
  const T* tp = targets.data_ptr<T>();
  const int64_t* lp = lengths.data_ptr<int64_t>();
  T* dp = dy.data_ptr<T>();
  const double count = static_cast<double>(R);
  const T scale_s = static_cast<T>(-g_s / count), scale_p = static_cast<T>(-g_p / count);
  const int64_t nblocks = (R + kLanes - 1) / kLanes;
  at::parallel_for(0, nblocks, blocks_per_chunk(M), [&](int64_t begin, int64_t end) {
    Block<T> bk(M);
    T pen_ll[kLanes], ws[kLanes];
    for (int64_t blk = begin; blk < end; ++blk) {
      const int64_t r0 = blk * kLanes, n = std::min(kLanes, R - r0);
      bk.load(yp, tp, lp, Tn, r0, n);
      block_forward(bk, tp, r0, n, pen_ll);
      T* __restrict__ d = bk.d.data();
      // pen: d logit_j = scale_p (p_j - softmax_j sum_i p_i)
      for (int64_t j = 0; j < 3; ++j) {
        const T* __restrict__ logit = bk.col(j);
        const T* __restrict__ lse = bk.lse_pen.data();
        const T* __restrict__ ps = bk.p_sum.data();
        T* __restrict__ dj = d + j * kLanes;
        MIX_SIMD
        for (int64_t l = 0; l < kLanes; ++l) {
          const T p = l < n ? tp[(r0 + l) * 5 + 2 + j] : T(0);
          dj[l] = scale_p * (p - exp_neg_(logit[l] - lse[l]) * ps[l]);
        }
      }
      // offsets: zero for padding (the lane's scale is 0)
      MIX_SIMD
      for (int64_t l = 0; l < kLanes; ++l) ws[l] = bk.real[l] * scale_s;
      for (int64_t k = 0; k < M; ++k) {
        const T* __restrict__ pi = bk.col(3 + k);
        const T* __restrict__ lsx_raw = bk.col(3 + 3 * M + k);
        const T* __restrict__ lsy_raw = bk.col(3 + 4 * M + k);
        const T* __restrict__ a = bk.a.data() + k * kLanes;
        const T* __restrict__ zx_ = bk.zx.data() + k * kLanes;
        const T* __restrict__ zy_ = bk.zy.data() + k * kLanes;
        const T* __restrict__ rho_ = bk.rho.data() + k * kLanes;
        const T* __restrict__ q_ = bk.q.data() + k * kLanes;
        const T* __restrict__ th_ = bk.th.data() + k * kLanes;
        const T* __restrict__ isx_ = bk.isx.data() + k * kLanes;
        const T* __restrict__ isy_ = bk.isy.data() + k * kLanes;
        const T* __restrict__ ll = bk.ll.data();
        const T* __restrict__ lse_pi = bk.lse_pi.data();
        T* __restrict__ dpi = d + (3 + k) * kLanes;
        T* __restrict__ dmx = d + (3 + M + k) * kLanes;
        T* __restrict__ dmy = d + (3 + 2 * M + k) * kLanes;
        T* __restrict__ dlx = d + (3 + 3 * M + k) * kLanes;
        T* __restrict__ dly = d + (3 + 4 * M + k) * kLanes;
        T* __restrict__ drr = d + (3 + 5 * M + k) * kLanes;
        const T lo = T(kLogSigmaMin), hi = T(kLogSigmaMax);
        MIX_SIMD
        for (int64_t l = 0; l < kLanes; ++l) {
          // a padded lane may hold NaN terms: select, never multiply, its gradient to 0
          const bool real = ws[l] != T(0);
          const T w = exp_neg_(a[l] - ll[l]) * ws[l];
          const T zx = zx_[l], zy = zy_[l], rho = rho_[l];
          const T om = T(1) - rho * rho;
          const T ex = (zx - rho * zy) / om, ey = (zy - rho * zx) / om;
          // torch.clamp's gradient: 1 where lo <= x <= hi
          const bool in_x = lsx_raw[l] >= lo && lsx_raw[l] <= hi;
          const bool in_y = lsy_raw[l] >= lo && lsy_raw[l] <= hi;
          dpi[l] = real ? w - ws[l] * exp_neg_(pi[l] - lse_pi[l]) : T(0);
          dmx[l] = real ? w * ex * isx_[l] : T(0);
          dmy[l] = real ? w * ey * isy_[l] : T(0);
          dlx[l] = (real && in_x) ? w * (ex * zx - T(1)) : T(0);
          dly[l] = (real && in_y) ? w * (ey * zy - T(1)) : T(0);
          drr[l] = real ? w * (rho + zx * zy - rho * q_[l]) / om * T(kRhoLimit) *
                              (T(1) - th_[l] * th_[l])
                        : T(0);
        }
      }
      for (int64_t l = 0; l < n; ++l) {
        T* row = dp + (r0 + l) * C;
        for (int64_t c = 0; c < C; ++c) row[c] = d[c * kLanes + l];
      }
    }
  });
  return dy;
}

std::vector<Tensor> mixture_loss_forward(const Tensor& y, const Tensor& targets,
                                         const Tensor& lengths, int64_t M) {
  check(y, targets, lengths, M);
  if (y.scalar_type() == at::kDouble) return forward_impl<double>(y, targets, lengths, M);
  TORCH_CHECK(y.scalar_type() == at::kFloat, "mixture loss: float32 or float64 only");
  return forward_impl<float>(y, targets, lengths, M);
}

Tensor mixture_loss_backward(const Tensor& y, const Tensor& targets, const Tensor& lengths,
                             int64_t M, double g_s, double g_p) {
  check(y, targets, lengths, M);
  if (y.scalar_type() == at::kDouble) return backward_impl<double>(y, targets, lengths, M, g_s, g_p);
  TORCH_CHECK(y.scalar_type() == at::kFloat, "mixture loss: float32 or float64 only");
  return backward_impl<float>(y, targets, lengths, M, g_s, g_p);
}

}  // namespace sketchrnn_mixture

// Called from cell_kernels.cpp's module definition.
void bind_mixture_kernels(pybind11::module& m) {
  m.def("mixture_loss_forward", &sketchrnn_mixture::mixture_loss_forward);
  m.def("mixture_loss_backward", &sketchrnn_mixture::mixture_loss_backward);
}
