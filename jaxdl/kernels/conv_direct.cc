// Direct stride-1 VALID convolution on the CPU (AVX-512 or AVX2 + FMA builds,
// simd.h): the output and the kernel gradient, for conv_cpu.py's layers with
// few channels.
//
// Why: for the tutorial CNN's first layer (3 -> 6 channels, 5x5, 32x32) every
// GEMM formulation pays for a patch matrix 8x the image and a GEMM only 24
// columns wide; XLA's own convolution is slower still. Here each thread copies
// its images into planar rows ([C][H][W], zero-padded to whole vectors) and
// runs 16 (avx2: 8) output columns per vector: one unaligned load of an input row per
// kernel tap, multiplied into up to 8 output channels at once. The kernel
// gradient pairs the same input rows with the output gradient's rows, and each
// thread sums its images into its own partial, added at the end.
//
//   forward:  x [B, H, W, C], k [KH, KW, C, O], zero padding (pad_h, pad_w) on
//             each side -> y [B, H+2 pad_h-KH+1, W+2 pad_w-KW+1, O]
//   backward: x, dy [B, OH, OW, O] -> dk [KH, KW, C, O]
//
// Sums run in another order than XLA's: results equal lax.conv up to float
// rounding; each build repeats its own bits. Compiled and registered by
// conv_direct.py, one library per build (isa.py).

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "native_kernels.h"
#include "simd.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
namespace simd = jaxdl::simd;
using simd::Vec;

namespace {

constexpr int kLanes = simd::kLanes;
// The forward pass's register tile: kRowVectors neighbouring vectors of an output
// row x kOutBlock output channels, each broadcast kernel tap used kRowVectors
// times (AVX-512's FMA broadcasts its tap from memory for free; AVX2 needs a
// separate broadcast, so its tile reuses it: 2 x 6 of 16 registers).
constexpr int kRowVectors = simd::kWide ? 1 : 2;
constexpr int kOutBlock = simd::kWide ? 8 : 6;

struct Geometry {
  int64_t batch, in_height, in_width;  // the image as stored
  int64_t pad_h, pad_w;               // zeros on each side, added in the planar copy
  int64_t height, width, in_ch, kh, kw, out_ch, out_h, out_w;  // height, width: padded
  int64_t vectors;    // ceil(out_w / kLanes)
  int64_t row_pitch;  // planar row length: vectors * kLanes + kw - 1 (>= width), zero tail
  int64_t out_pitch;  // vectors * kLanes
};

// One image NHWC -> planar [C][H + 2 pad_h][row_pitch], zeros in the padding
// and past the last column.
void ToPlanar(const float* image, const Geometry& g, float* planar) {
  std::fill(planar, planar + g.in_ch * g.height * g.row_pitch, 0.0f);
  for (int64_t h = 0; h < g.in_height; ++h)
    for (int64_t w = 0; w < g.in_width; ++w)
      for (int64_t c = 0; c < g.in_ch; ++c)
        planar[(c * g.height + h + g.pad_h) * g.row_pitch + w + g.pad_w] =
            image[(h * g.in_width + w) * g.in_ch + c];
}

constexpr char kKernel[] = "jaxdl_conv_direct";  // names the kernel in errors

// Output channels [o0, o0 + ob) of row oh, vectors [v, v + V), into planar `out`.
template <int V>
inline void ForwardVectors(const float* in, const float* ks, const Geometry& g, int64_t o0,
                           int64_t ob, int64_t oh, int64_t v, float* out) {
  Vec acc[V][kOutBlock];
  for (int u = 0; u < V; ++u)
    for (int q = 0; q < kOutBlock; ++q) acc[u][q] = simd::Zero();
  for (int64_t c = 0; c < g.in_ch; ++c) {
    for (int64_t i = 0; i < g.kh; ++i) {
      const float* row = in + (c * g.height + oh + i) * g.row_pitch + v * kLanes;
      const float* taps = ks + ((i * g.kw) * g.in_ch + c) * g.out_ch + o0;
      for (int64_t j = 0; j < g.kw; ++j) {
        Vec pixels[V];
        for (int u = 0; u < V; ++u) pixels[u] = simd::Load(row + j + u * kLanes);
        const float* tap = taps + j * g.in_ch * g.out_ch;
        for (int q = 0; q < kOutBlock; ++q) {
          if (q >= ob) break;
          const Vec weight = simd::Set1(tap[q]);
          for (int u = 0; u < V; ++u) acc[u][q] = simd::MulAdd(weight, pixels[u], acc[u][q]);
        }
      }
    }
  }
  for (int u = 0; u < V; ++u)
    for (int q = 0; q < kOutBlock; ++q)
      if (q < ob) simd::Store(out + ((o0 + q) * g.out_h + oh) * g.out_pitch + (v + u) * kLanes, acc[u][q]);
}

ffi::Error ReadGeometry(ffi::Buffer<ffi::F32>& x, int64_t kh, int64_t kw, int64_t out_ch,
                        int64_t pad_h, int64_t pad_w, Geometry* g) {
  const auto d = x.dimensions();
  if (d.size() != 4) return jaxdl::Invalid(kKernel, "x must be [B, H, W, C]");
  if (pad_h < 0 || pad_w < 0) return jaxdl::Invalid(kKernel, "negative padding");
  g->batch = d[0]; g->in_height = d[1]; g->in_width = d[2]; g->in_ch = d[3];
  g->pad_h = pad_h; g->pad_w = pad_w;
  g->height = d[1] + 2 * pad_h; g->width = d[2] + 2 * pad_w;
  g->kh = kh; g->kw = kw; g->out_ch = out_ch;
  g->out_h = g->height - kh + 1;
  g->out_w = g->width - kw + 1;
  if (g->out_h < 1 || g->out_w < 1) return jaxdl::Invalid(kKernel, "kernel larger than the image");
  g->vectors = (g->out_w + kLanes - 1) / kLanes;
  g->out_pitch = g->vectors * kLanes;
  g->row_pitch = g->out_pitch + kw - 1;
  return ffi::Error::Success();
}

constexpr int64_t kMaxWorkers = 64;
constexpr int64_t kImagesPerGroup = 8;
// The kernel gradient's register tile, taps x output channels: 30 accumulators
// of the 32 AVX-512 registers; 10 of AVX2's 16.
constexpr int kGradTaps = 5, kGradOut = simd::kWide ? 6 : 2;

ffi::Error ForwardImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> k,
                       ffi::ResultBuffer<ffi::F32> y, int64_t pad_h, int64_t pad_w) {
  const auto kd = k.dimensions();
  if (kd.size() != 4) return jaxdl::Invalid(kKernel, "kernel must be [KH, KW, C, O]");
  Geometry g;
  if (auto error = ReadGeometry(x, kd[0], kd[1], kd[3], pad_h, pad_w, &g); error.failure())
    return error;
  if (kd[2] != g.in_ch) return jaxdl::Invalid(kKernel, "kernel input channels differ from the image's");
  const float* xs = x.typed_data();
  const float* ks = k.typed_data();
  float* ys = y->typed_data();
  std::vector<std::vector<float>> planar(kMaxWorkers), outputs(kMaxWorkers);

  jaxdl::ParallelFor(pool, g.batch, kMaxWorkers, [&](int64_t worker, int64_t image) {
    auto& in = planar[worker];
    auto& out = outputs[worker];
    in.resize(g.in_ch * g.height * g.row_pitch);
    out.resize(g.out_ch * g.out_h * g.out_pitch);
    ToPlanar(xs + image * g.in_height * g.in_width * g.in_ch, g, in.data());
    for (int64_t o0 = 0; o0 < g.out_ch; o0 += kOutBlock) {
      const int64_t ob = std::min<int64_t>(kOutBlock, g.out_ch - o0);
      for (int64_t oh = 0; oh < g.out_h; ++oh) {
        int64_t v = 0;
        for (; v + kRowVectors <= g.vectors; v += kRowVectors)
          ForwardVectors<kRowVectors>(in.data(), ks, g, o0, ob, oh, v, out.data());
        for (; v < g.vectors; ++v) ForwardVectors<1>(in.data(), ks, g, o0, ob, oh, v, out.data());
      }
    }
    // Planar [O][OH][pitch] -> NHWC.
    float* dst = ys + image * g.out_h * g.out_w * g.out_ch;
    for (int64_t oh = 0; oh < g.out_h; ++oh)
      for (int64_t ow = 0; ow < g.out_w; ++ow)
        for (int64_t o = 0; o < g.out_ch; ++o)
          dst[(oh * g.out_w + ow) * g.out_ch + o] = out[(o * g.out_h + oh) * g.out_pitch + ow];
  });
  return ffi::Error::Success();
}

ffi::Error KernelGradImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x,
                          ffi::Buffer<ffi::F32> dy, ffi::ResultBuffer<ffi::F32> dk) {
  const auto kd = dk->dimensions();
  const auto yd = dy.dimensions();
  if (kd.size() != 4 || yd.size() != 4) return jaxdl::Invalid(kKernel, "dy must be [B, OH, OW, O], dk [KH, KW, C, O]");
  Geometry g;
  if (auto error = ReadGeometry(x, kd[0], kd[1], kd[3], 0, 0, &g); error.failure()) return error;
  if (kd[2] != g.in_ch || yd[0] != g.batch || yd[1] != g.out_h || yd[2] != g.out_w ||
      yd[3] != g.out_ch) {
    return jaxdl::Invalid(kKernel, "dy's shape does not match x and dk");
  }
  const float* xs = x.typed_data();
  const float* dys = dy.typed_data();
  const int64_t taps = g.kh * g.kw * g.in_ch * g.out_ch;
  // Each image's gradient goes into the partial of its fixed group of images,
  // and the groups are added in order: the same bits whichever thread ran what.
  const int64_t groups = (g.batch + kImagesPerGroup - 1) / kImagesPerGroup;
  std::vector<std::vector<float>> planar(kMaxWorkers), grads(kMaxWorkers);
  std::vector<float> partial(groups * taps, 0.0f);

  jaxdl::ParallelFor(pool, groups, kMaxWorkers, [&](int64_t worker, int64_t group) {
   for (int64_t image = group * kImagesPerGroup;
        image < std::min(g.batch, (group + 1) * kImagesPerGroup); ++image) {
    auto& in = planar[worker];
    auto& grad = grads[worker];
    float* sum = partial.data() + group * taps;
    in.resize(g.in_ch * g.height * g.row_pitch);
    grad.assign(g.out_ch * g.out_h * g.out_pitch, 0.0f);  // zero lanes past out_w
    ToPlanar(xs + image * g.in_height * g.in_width * g.in_ch, g, in.data());
    const float* src = dys + image * g.out_h * g.out_w * g.out_ch;
    for (int64_t oh = 0; oh < g.out_h; ++oh)
      for (int64_t ow = 0; ow < g.out_w; ++ow)
        for (int64_t o = 0; o < g.out_ch; ++o)
          grad[(o * g.out_h + oh) * g.out_pitch + ow] = src[(oh * g.out_w + ow) * g.out_ch + o];
    // Register tile: kGradTaps neighbouring taps j x kGradOut output channels
    // (kGradTaps * kGradOut accumulators); each pass loads the output gradient's vectors once
    // and each shifted input vector once.
    for (int64_t c = 0; c < g.in_ch; ++c) {
      for (int64_t i = 0; i < g.kh; ++i) {
        for (int64_t j0 = 0; j0 < g.kw; j0 += kGradTaps) {
          const int64_t jb = std::min<int64_t>(kGradTaps, g.kw - j0);
          for (int64_t o0 = 0; o0 < g.out_ch; o0 += kGradOut) {
            const int64_t ob = std::min<int64_t>(kGradOut, g.out_ch - o0);
            Vec acc[kGradTaps][kGradOut];
            for (int t = 0; t < kGradTaps; ++t)
              for (int q = 0; q < kGradOut; ++q) acc[t][q] = simd::Zero();
            for (int64_t oh = 0; oh < g.out_h; ++oh) {
              const float* row = in.data() + (c * g.height + oh + i) * g.row_pitch + j0;
              for (int64_t v = 0; v < g.vectors; ++v) {
                Vec d[kGradOut];
                for (int q = 0; q < kGradOut; ++q)
                  d[q] = q < ob ? simd::Load(grad.data() + ((o0 + q) * g.out_h + oh) * g.out_pitch + v * kLanes)
                                : simd::Zero();
                for (int t = 0; t < kGradTaps; ++t) {
                  if (t >= jb) break;
                  const Vec pixels = simd::Load(row + v * kLanes + t);
                  for (int q = 0; q < kGradOut; ++q) acc[t][q] = simd::MulAdd(pixels, d[q], acc[t][q]);
                }
              }
            }
            for (int t = 0; t < jb; ++t) {
              float* out = sum + ((i * g.kw + j0 + t) * g.in_ch + c) * g.out_ch + o0;
              for (int q = 0; q < ob; ++q) out[q] += simd::ReduceAdd(acc[t][q]);
            }
          }
        }
      }
    }
   }
  });
  float* result = dk->typed_data();
  std::fill(result, result + taps, 0.0f);
  for (int64_t group = 0; group < groups; ++group)
    for (int64_t t = 0; t < taps; ++t) result[t] += partial[group * taps + t];
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxdlConvForward, ForwardImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // x
                                  .Arg<ffi::Buffer<ffi::F32>>()  // kernel
                                  .Ret<ffi::Buffer<ffi::F32>>()  // y
                                  .Attr<int64_t>("pad_h")
                                  .Attr<int64_t>("pad_w"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxdlConvKernelGrad, KernelGradImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // x
                                  .Arg<ffi::Buffer<ffi::F32>>()  // dy
                                  .Ret<ffi::Buffer<ffi::F32>>());  // dk
