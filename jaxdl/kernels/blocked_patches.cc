// The column-blocked patch matrix of conv_cpu.py, copied by the CPU in long runs.
//
// XLA:CPU builds this matrix from kh * groups strided slices and a concatenate,
// at about 5 GB/s: its loop emitter copies 12-value rows element by element, and
// the concatenate copies everything a second time. Here each (image, output row,
// block, kernel row) is one memcpy of `groups * R` contiguous values, shared out
// over XLA's intra-op thread pool. Compiled and registered by native_patches.py.
//
//   in   grouped  [..., H, G, R]            (any leading batch dims, any dtype)
//   out  patches  [..., OH, BL, kh * groups, R]
//   patches[..., y, x, i * groups + g, :] = grouped[..., y * sh + i, x + g, :]

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#include "native_kernels.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

// One call's copy, in chunks of output rows that any thread may take.
struct PatchCopy {
  const char* src;
  char* dst;
  int64_t height, num_groups, group_values, out_height, blocks, kh, sh;
  size_t value_bytes, run_bytes;  // one value; one kernel row's `groups * R` values
  int64_t rows, rows_per_chunk, num_chunks;  // rows: batch * OH

  void CopyChunk(int64_t chunk) {
    const int64_t first = chunk * rows_per_chunk;
    const int64_t last = std::min(rows, first + rows_per_chunk);
    const size_t group_bytes = group_values * value_bytes;
    char* out = dst + first * blocks * kh * run_bytes;
    for (int64_t row = first; row < last; ++row) {
      const int64_t image = row / out_height, y = row % out_height;
      for (int64_t x = 0; x < blocks; ++x) {
        for (int64_t i = 0; i < kh; ++i) {
          const int64_t in_row = image * height + y * sh + i;
          std::memcpy(out, src + (in_row * num_groups + x) * group_bytes, run_bytes);
          out += run_bytes;
        }
      }
    }
  }
};

constexpr char kKernel[] = "jaxdl_blocked_patches";  // names the kernel in errors

ffi::Error BlockedPatchesImpl(ffi::ThreadPool pool, ffi::AnyBuffer grouped,
                              ffi::Result<ffi::AnyBuffer> patches, int64_t kh,
                              int64_t groups, int64_t sh) {
  const auto in = grouped.dimensions();
  const auto out = patches->dimensions();
  const int64_t rank = in.size();
  if (rank < 3 || static_cast<int64_t>(out.size()) != rank + 1) {
    return jaxdl::Invalid(kKernel, "expected grouped [..., H, G, R] and patches [..., OH, BL, kh*groups, R]");
  }
  if (grouped.element_type() != patches->element_type()) {
    return jaxdl::Invalid(kKernel, "grouped and patches differ in dtype");
  }
  int64_t batch = 1;
  for (int64_t d = 0; d < rank - 3; ++d) {
    if (in[d] != out[d]) return jaxdl::Invalid(kKernel, "leading batch dimensions differ");
    batch *= in[d];
  }
  const int64_t height = in[rank - 3], num_groups = in[rank - 2], r = in[rank - 1];
  const int64_t out_height = out[rank - 3], blocks = out[rank - 2];
  if (kh < 1 || groups < 1 || sh < 1 || out[rank - 1] != kh * groups || out[rank] != r ||
      (out_height - 1) * sh + kh > height || blocks + groups - 1 > num_groups) {
    return jaxdl::Invalid(kKernel, "window (kh, groups, sh) does not fit the grouped image");
  }
  PatchCopy copy_state;
  PatchCopy* copy = &copy_state;
  copy->src = static_cast<const char*>(grouped.untyped_data());
  copy->dst = static_cast<char*>(patches->untyped_data());
  copy->height = height;
  copy->num_groups = num_groups;
  copy->out_height = out_height;
  copy->blocks = blocks;
  copy->kh = kh;
  copy->sh = sh;
  copy->group_values = r;
  copy->value_bytes = ffi::ByteWidth(grouped.element_type());
  copy->run_bytes = groups * r * copy->value_bytes;
  copy->rows = batch * out_height;
  // ~16 output rows per chunk: large enough that taking a chunk costs nothing,
  // small enough that two threads finish together.
  copy->rows_per_chunk = 16;
  copy->num_chunks = (copy->rows + copy->rows_per_chunk - 1) / copy->rows_per_chunk;
  jaxdl::ParallelFor(pool, copy->num_chunks, copy->num_chunks,
                     [copy](int64_t, int64_t chunk) { copy->CopyChunk(chunk); });
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxdlBlockedPatches, BlockedPatchesImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Attr<int64_t>("kh")
                                  .Attr<int64_t>("groups")
                                  .Attr<int64_t>("sh"));
