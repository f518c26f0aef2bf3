// Negative-sampling updates on the CPU. jaxdl_sgns_update: one batched skip-gram
// step with window-shared negatives, word2vec.sgns_update's arithmetic without
// XLA's chain of small batched ops. jaxdl_sgns_sequential (below): the batch
// applied example by example, as word2vec.c does.
//
// Why: XLA:CPU runs sgns_update as ~30 small gathers, batched dot products and
// scatters one after another, most of a step's time. Here each thread scores and differentiates its own centres against
// the old tables into private buffers; one thread then counts rows and adds the
// updates in a fixed order (centres' contexts, then centres, then negatives), so
// the bits repeat from run to run. Results equal the XLA path up to float
// rounding. Compiled and registered by sgns_update.py, one library per build
// (avx512, avx2, portable: isa.py picks the one this CPU runs best).
//
//   inputs, outputs [V, D] (updated in place), centres [B], contexts [B, C],
//   context_mask [B, C], negatives [B, K], negative_mask [B, K], lr [] ->
//   new inputs, new outputs, loss_sum [], pairs []

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <mutex>
#include <sched.h>
#include <string>
#include <vector>

#include "native_kernels.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

// Which kind of id, if any, is not a row of a `vocab`-row table: checked before
// any read, so a bad id is an error rather than a read outside the table.
const char* IdOutsideVocabulary(const int32_t* centre, int64_t centres, const int32_t* context,
                                int64_t contexts, const int32_t* noise, int64_t negatives,
                                int64_t vocab) {
  auto outside = [vocab](const int32_t* ids, int64_t count) {
    for (int64_t i = 0; i < count; ++i)
      if (ids[i] < 0 || ids[i] >= vocab) return true;
    return false;
  };
  if (outside(context, contexts)) return "a context id is outside the vocabulary";
  if (outside(centre, centres)) return "a centre id is outside the vocabulary";
  if (outside(noise, negatives)) return "a negative id is outside the vocabulary";
  return nullptr;
}

constexpr float kMaxExp = 6.0f;  // word2vec.c's sigmoid table range

// exp(x) for x ≤ 0, inlined: Cephes expf's range reduction and polynomial
// (within 2 ulp of std::exp), so the compiler can schedule it with the rows'
// arithmetic instead of calling libm per scored row. Below -87, where exp
// underflows, it returns exp(-87) ≈ 1.6e-38 (no subnormals, no branch).
inline float ExpNonPositive(float x) {
  x = std::max(x, -87.0f);
  // Round x / ln 2 to the nearest integer: adding and removing 1.5 * 2^23 (exact
  // without -ffast-math, which these kernels are never built with).
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;  // x - n ln 2, ln 2 in two parts
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;  // 2^n, n in [-126, 0]
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return y * scale;
}

// log(1 + e) for e in [0, 1], inlined: 2 atanh(s) with s = e / (2 + e) ≤ 1/3, its
// series to s^13 (the next term is below 2e-8 of the sum): no libm call per scored
// row, and within a few ulp of log1p even where e is tiny (log(1.0f + e) loses e
// below float's resolution of 1).
inline float Log1pUnit(float e) {
  const float s = e / (2.0f + e), s2 = s * s;
  float q = 1.0f / 13.0f;
  q = q * s2 + 1.0f / 11.0f;
  q = q * s2 + 1.0f / 9.0f;
  q = q * s2 + 1.0f / 7.0f;
  q = q * s2 + 1.0f / 5.0f;
  q = q * s2 + 1.0f / 3.0f;
  q = q * s2 + 1.0f;
  return 2.0f * s * q;
}

// sigmoid(x) as word2vec.c's table gives it (0 or 1 beyond ±kMaxExp), from e = exp(-|x|).
inline float SigmoidOf(float x, float e) {
  return x > kMaxExp ? 1.0f : x < -kMaxExp ? 0.0f : (x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e));
}

// -log(sigmoid(x)) (not clamped), from e = exp(-|x|).
inline float NegLogSigmoidOf(float x, float e) {
  const float log_term = Log1pUnit(e);
  return x >= 0.0f ? log_term : -x + log_term;
}

// sigmoid(x) and -log(sigmoid(x)), from one exp and one log1p.
struct Sigmoid {
  float value, neg_log;
};
inline Sigmoid SigmoidAndLoss(float x) {
  const float e = ExpNonPositive(-std::fabs(x));  // in (0, 1]
  return Sigmoid{SigmoidOf(x, e), NegLogSigmoidOf(x, e)};
}

// A target's fit before its loss is taken: sigmoid(x), x and exp(-|x|).
struct Fit {
  float value, x, e;
};
inline Fit FitOf(float x) {
  const float e = ExpNonPositive(-std::fabs(x));  // in (0, 1]
  return Fit{SigmoidOf(x, e), x, e};
}

// 16 partial sums, so the compiler can keep them in one vector register.
inline float Dot(const float* a, const float* b, int64_t n) {
  float partial[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) partial[j] += a[i + j] * b[i + j];
  float sum = 0.0f;
  for (; i < n; ++i) sum += a[i] * b[i];
  for (int j = 0; j < 16; ++j) sum += partial[j];
  return sum;
}

struct Centre {
  const float *in_old, *out_old, *mask, *noise_mask;
  const int32_t *centre, *context, *noise_ids;
  int64_t dim, window, noise;
  float lr;
  float *context_update, *centre_update, *noise_update, *loss, *pair_count;
};

struct AddArgs {
  int64_t dim;
  float row_cap;
  const float *input_count, *output_count;
  float *inputs, *outputs;
};

// table[row] += update * min(1, row_cap / max(count[row], 1)).
void AddScaled(const AddArgs& a, float* table, const float* count, int64_t row,
               const float* update) {
  const float s = std::min(1.0f, a.row_cap / std::max(count[row], 1.0f));
  float* dst = table + row * a.dim;
  for (int64_t d = 0; d < a.dim; ++d) dst[d] += update[d] * s;
}

// Scores and updates of centre b against the old tables.
void ScoreCentre(const Centre& a, int64_t b) {
  const int64_t dim = a.dim, window = a.window, noise = a.noise;
  const float* positive = a.out_old + a.centre[b] * dim;
  std::fill(a.centre_update + b * dim, a.centre_update + (b + 1) * dim, 0.0f);
  std::fill(a.noise_update + b * noise * dim, a.noise_update + (b + 1) * noise * dim, 0.0f);
  float noise_gain[64];
  for (int64_t c = 0; c < window; ++c) {
    const float m = a.mask[b * window + c];
    if (m == 0.0f) continue;  // contributes exactly nothing
    const float* hidden = a.in_old + a.context[b * window + c] * dim;
    const Sigmoid positive_fit = SigmoidAndLoss(Dot(hidden, positive, dim));
    const float positive_gain = (1.0f - positive_fit.value) * a.lr * m;
    float pair_loss = positive_fit.neg_log;
    float* error = a.context_update + (b * window + c) * dim;
    for (int64_t d = 0; d < dim; ++d) error[d] = positive_gain * positive[d];
    for (int64_t k = 0; k < noise; ++k) {
      const float nm = a.noise_mask[b * noise + k];
      const float* negative_row = a.out_old + a.noise_ids[b * noise + k] * dim;
      // -log sigmoid(-score) is the loss of a noise word: flip the sign.
      const Sigmoid noise_fit = SigmoidAndLoss(-Dot(hidden, negative_row, dim));
      noise_gain[k] = -(1.0f - noise_fit.value) * a.lr * m * nm;
      pair_loss += noise_fit.neg_log * nm;
      for (int64_t d = 0; d < dim; ++d) error[d] += noise_gain[k] * negative_row[d];
    }
    float* to_centre = a.centre_update + b * dim;
    for (int64_t d = 0; d < dim; ++d) to_centre[d] += positive_gain * hidden[d];
    for (int64_t k = 0; k < noise; ++k) {
      float* to_noise = a.noise_update + (b * noise + k) * dim;
      for (int64_t d = 0; d < dim; ++d) to_noise[d] += noise_gain[k] * hidden[d];
    }
    a.loss[b] += pair_loss * m;
    a.pair_count[b] += m;
  }
}

constexpr char kKernel[] = "jaxdl_sgns_update";  // names the kernel in errors

ffi::Error SgnsImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> inputs,
                    ffi::Buffer<ffi::F32> outputs, ffi::Buffer<ffi::S32> centres,
                    ffi::Buffer<ffi::S32> contexts, ffi::Buffer<ffi::F32> context_mask,
                    ffi::Buffer<ffi::S32> negatives, ffi::Buffer<ffi::F32> negative_mask,
                    ffi::Buffer<ffi::F32> learning_rate, ffi::ResultBuffer<ffi::F32> new_inputs,
                    ffi::ResultBuffer<ffi::F32> new_outputs, ffi::ResultBuffer<ffi::F32> loss_sum,
                    ffi::ResultBuffer<ffi::F32> pairs, float row_cap) {
  const auto table = inputs.dimensions();
  const auto ctx = contexts.dimensions();
  const auto neg = negatives.dimensions();
  if (table.size() != 2 || ctx.size() != 2 || neg.size() != 2) return jaxdl::Invalid(kKernel, "bad ranks");
  const int64_t vocab = table[0], dim = table[1], batch = ctx[0], window = ctx[1],
                noise = neg[1];
  if (noise > 64) return jaxdl::Invalid(kKernel, "more than 64 negatives per centre");
  if (outputs.element_count() != vocab * dim || centres.element_count() != batch ||
      context_mask.element_count() != batch * window || neg[0] != batch ||
      negative_mask.element_count() != batch * noise) {
    return jaxdl::Invalid(kKernel, "shapes do not match tables [V, D], contexts [B, C], negatives [B, K]");
  }
  const float* in_old = inputs.typed_data();
  const float* out_old = outputs.typed_data();
  const int32_t* centre = centres.typed_data();
  const int32_t* context = contexts.typed_data();
  const int32_t* noise_ids = negatives.typed_data();
  const float* mask = context_mask.typed_data();
  const float* noise_mask = negative_mask.typed_data();
  const float lr = learning_rate.typed_data()[0];
  if (const char* bad = IdOutsideVocabulary(centre, batch, context, batch * window, noise_ids,
                                             batch * noise, vocab))
    return jaxdl::Invalid(kKernel, bad);

  // Phase 1, per centre, from the old tables only. Buffers start uninitialised:
  // ScoreCentre zeroes its centre's sums and writes every unmasked pair's error.
  std::unique_ptr<float[]> context_update(new float[batch * window * dim]);
  std::unique_ptr<float[]> centre_update(new float[batch * dim]);
  std::unique_ptr<float[]> noise_update(new float[batch * noise * dim]);
  std::vector<float> loss(batch, 0.0f), pair_count(batch, 0.0f);
  const Centre args{in_old, out_old, mask, noise_mask, centre, context, noise_ids, dim, window,
                    noise, lr, context_update.get(), centre_update.get(), noise_update.get(),
                    loss.data(), pair_count.data()};
  jaxdl::ParallelFor(pool, batch, batch, [&args](int64_t, int64_t b) { ScoreCentre(args, b); });

  // Phase 2: per-row contribution counts, then the capped additions (see
  // word2vec._capped_row_add) in one fixed order. Threads own disjoint ranges of
  // rows and each walks all updates in that order, so every row sees its
  // additions in the same order whatever the thread count: the same bits.
  float* in_new = new_inputs->typed_data();
  float* out_new = new_outputs->typed_data();
  if (in_new != in_old) std::memcpy(in_new, in_old, vocab * dim * sizeof(float));
  if (out_new != out_old) std::memcpy(out_new, out_old, vocab * dim * sizeof(float));
  std::vector<float> input_count(vocab, 0.0f), output_count(vocab, 0.0f);
  for (int64_t i = 0; i < batch * window; ++i) input_count[context[i]] += mask[i];
  for (int64_t b = 0; b < batch; ++b) output_count[centre[b]] += pair_count[b];
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t k = 0; k < noise; ++k)
      output_count[noise_ids[b * noise + k]] += pair_count[b] * noise_mask[b * noise + k];
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(pool.num_threads(), 8));
  const int64_t rows_per_part = (vocab + parts - 1) / parts;
  const AddArgs add{dim, row_cap, input_count.data(), output_count.data(), in_new, out_new};
  jaxdl::ParallelFor(pool, parts, parts, [&](int64_t, int64_t part) {
    const int64_t first = part * rows_per_part, last = first + rows_per_part;
    for (int64_t i = 0; i < batch * window; ++i)  // masked pairs add exactly nothing
      if (mask[i] != 0.0f && context[i] >= first && context[i] < last)
        AddScaled(add, add.inputs, add.input_count, context[i], context_update.get() + i * dim);
    for (int64_t b = 0; b < batch; ++b)
      if (centre[b] >= first && centre[b] < last)
        AddScaled(add, add.outputs, add.output_count, centre[b], centre_update.get() + b * dim);
    for (int64_t i = 0; i < batch * noise; ++i)
      if (noise_ids[i] >= first && noise_ids[i] < last)
        AddScaled(add, add.outputs, add.output_count, noise_ids[i], noise_update.get() + i * dim);
  });
  float total_loss = 0.0f, total_pairs = 0.0f;
  for (int64_t b = 0; b < batch; ++b) {
    total_loss += loss[b];
    total_pairs += pair_count[b];
  }
  loss_sum->typed_data()[0] = total_loss;
  pairs->typed_data()[0] = total_pairs;
  return ffi::Error::Success();
}


// --- The sequential update: word2vec.c's training thread, example by example. ---
//
// Skip-gram: for each centre b, each context c in window order, with
// h = inputs[context]: for the centre (label 1) then each noise word (label 0)
// other than the centre, g = (label - sigmoid(h . outputs[t])) * lr;
// error += g * outputs[t]; outputs[t] += g * h; finally inputs[context] += error.
// CBOW: h = the mean of the context input rows, the same loop over the centre
// and noise words, then error is added to every context row.
//
// Noise words are drawn here, per example, from a counter-based hash keyed by
// (noise_keys[k], example): the formula is in word2vec/noise.py, whose JAX copy
// gives the same words. Drawing here skips the masked slots and the [B, 2W, K]
// array.
//
// Chunks: the batch's centres are split into `chunks` contiguous runs of about
// the same number of examples (ChunkBounds), each
// trained in order, example by example, from the tables as of the batch start
// plus its own earlier updates. The first run trains the tables in place (as
// word2vec.c's single thread does: no copies); every later run first copies
// each row it will touch (its contexts, centres and noise draws, known before
// training) into a private buffer, twice (one copy to train, one to keep the
// start), before the first run writes anything. After all runs, each later run's
// change (trained - start) is added to the tables in chunk order. The runs are
// independent, so threads may train them in any order and any number of threads
// gives the same bits. With one chunk this is word2vec.c's single thread. With
// lock_free the runs instead share the tables in place at once, as word2vec.c's
// threads do: no copies, no merge, and bits that depend on thread timing.
//
// Speed: the helpers below are plain inline functions; the entry points that run
// them (TrainRun, ToChanges, AddChanges) have everything they call inlined
// (flatten), so the compiler vectorises the whole per-example loop for the build's
// ISA (isa.py: avx512, avx2 or portable x86-64 flags).
// Rounding: the avx512 and avx2 builds fuse multiply-adds (-mfma) and the portable
// build does not, and the vector widths differ, so the bits repeat on machines
// that load the same build, not across builds.
inline void Axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t d = 0; d < n; ++d) y[d] += a * x[d];
}

inline void Subtract(const float* x, float* y, int64_t n) {  // y -= x
  for (int64_t d = 0; d < n; ++d) y[d] -= x[d];
}

inline uint32_t Fmix32(uint32_t x) {  // MurmurHash3's finaliser, as noise.fmix32
  x ^= x >> 16;
  x *= 0x85EBCA6Bu;
  x ^= x >> 13;
  x *= 0xC2B2AE35u;
  return x ^ (x >> 16);
}

struct NoiseTable {
  const uint32_t* keys;
  const float* accept;
  const int32_t* alias;
  uint32_t vocab;

  // noise.hashed_noise's word for (example, k).
  int32_t Draw(int64_t example, int64_t k) const {
    const uint32_t counter = 2u * static_cast<uint32_t>(example) + 1u;
    const uint32_t slot = Fmix32(keys[k] + 0x9E3779B9u * counter) % vocab;
    const uint32_t bits = Fmix32(keys[k] + 0x9E3779B9u * (counter + 1u));
    const float uniform = static_cast<float>(bits >> 8) * (1.0f / 16777216.0f);
    return uniform < accept[slot] ? static_cast<int32_t>(slot) : alias[slot];
  }
};

// Where TrainExample gets an example's noise words: hashed on the spot ...
struct HashedNoise {
  void Reach(int64_t) {}
  int32_t Draw(const NoiseTable& noise, int64_t example, int64_t k) const { return noise.Draw(example, k); }
};

// ... or read from `draws` [examples, K], which another thread fills in example
// order (DrawAhead) and publishes in `ready` (examples [0, ready) drawn): an
// example past it is hashed here instead. Either way the same words, since a
// draw is a function of (example, k) alone.
struct DrawnNoise {
  const int32_t* draws;
  const std::atomic<int64_t>* ready;
  int64_t k, known = 0;
  bool drawn = false;
  void Reach(int64_t example) {  // before the example's first Draw
    if (example >= known) known = ready->load(std::memory_order_acquire);
    drawn = example < known;
  }
  int32_t Draw(const NoiseTable& noise, int64_t example, int64_t j) const {
    return drawn ? draws[example * k + j] : noise.Draw(example, j);
  }
};

// Asks for a row's cache lines ahead of use: rows are random reads from tables
// larger than the caches, and the arithmetic on one is shorter than a miss.
inline void PrefetchRow(const float* row, int64_t dim) {
  const char* bytes = reinterpret_cast<const char*>(row);
  for (int64_t offset = 0; offset < dim * static_cast<int64_t>(sizeof(float)); offset += 64)
    __builtin_prefetch(bytes + offset, 1, 3);
}

// A table's rows, read and written in place.
struct DirectRows {
  float* table;
  int64_t dim;
  float* Get(int32_t row) { return table + row * dim; }
  void Prefetch(int32_t row) const { PrefetchRow(table + row * dim, dim); }
};

// A table's rows as one later chunk sees them: every row the chunk will touch is
// listed (Take), then copied from the batch-start table (Copy, in slices on all
// threads, before any chunk trains) into `rows`, which the chunk trains, and into
// `starts`, kept for the merge. Kept from call to call (see ChunkScratch): its
// buffers are allocated once, and `slot` is reset row by row from `touched`
// rather than refilled.
struct PrivateRows {
  int64_t dim = 0;
  std::vector<int32_t> slot;     // [V], -1 = not copied
  std::vector<int32_t> touched;  // rows in order of copying
  std::vector<float> rows;       // [capacity, D], trained
  std::vector<float> starts;     // [capacity, D], as at the batch start
  bool missed = false;           // Get found a row Take never copied (a bug; the call fails)

  // Ready to copy at most `capacity` rows of a `vocab`-row table.
  void Begin(int64_t vocab, int64_t dim_, int64_t capacity) {
    for (int32_t row : touched)
      if (row < static_cast<int64_t>(slot.size())) slot[row] = -1;
    touched.clear();
    if (static_cast<int64_t>(slot.size()) != vocab) slot.assign(vocab, -1);
    touched.reserve(capacity);
    if (static_cast<int64_t>(rows.size()) < capacity * dim_) {
      rows.resize(capacity * dim_);
      starts.resize(capacity * dim_);
    }
    dim = dim_;
    missed = false;
  }
  void Take(int32_t row) {  // lists the row once, however often it is taken
    int32_t& s = slot[row];
    if (s >= 0) return;
    s = static_cast<int32_t>(touched.size());
    touched.push_back(row);
  }
  // Copies the taken rows first ≤ s < last of `table` into `rows` and `starts`.
  void Copy(const float* table, int64_t first, int64_t last) {
    for (int64_t s = first; s < last; ++s) {
      const float* from = table + static_cast<int64_t>(touched[s]) * dim;
      std::memcpy(rows.data() + s * dim, from, dim * sizeof(float));
      std::memcpy(starts.data() + s * dim, from, dim * sizeof(float));
    }
  }
  float* Get(int32_t row) {
    const int32_t s = slot[row];
    if (s < 0) {  // never expected: CollectRows takes every row TrainCentres gets
      missed = true;
      return rows.data();
    }
    return rows.data() + s * dim;
  }
  void Prefetch(int32_t row) const {
    const int32_t s = slot[row];
    if (s >= 0) PrefetchRow(rows.data() + s * dim, dim);
  }
};

// One chunk's private copies of the two tables.
struct ChunkScratch {
  PrivateRows in, out;
};

// Adds the later chunks' changes to `table` (the first chunk's result) for the
// rows r with first ≤ r < last: table[r] += rows_c[r] - starts_c[r] for each
// copy c in chunk order, the sums the pure-JAX twin makes (a row a chunk copied
// but left alone adds exactly 0). Threads given disjoint row ranges write
// disjoint rows, and each row's sum is made in chunk order on one thread: the
// same bits whatever the split.
void MergeRows(const std::vector<const PrivateRows*>& copies, float* table, int64_t dim, int64_t first,
               int64_t last) {
  for (const PrivateRows* copy : copies)
    for (int64_t s = 0; s < static_cast<int64_t>(copy->touched.size()); ++s) {
      const int32_t row = copy->touched[s];
      if (row < first || row >= last) continue;
      float* target = table + row * dim;
      const float *trained = copy->rows.data() + s * dim, *start = copy->starts.data() + s * dim;
      for (int64_t d = 0; d < dim; ++d) target[d] = target[d] + (trained[d] - start[d]);
    }
}

struct Examples {
  const int32_t *centre, *context;
  const float* mask;
  NoiseTable noise;
  int64_t window, k, dim;
  bool skip_gram;
  float lr;
};

// Per-example scratch of TrainExample, [K + 1] each.
struct ExampleScratch {
  std::vector<int32_t> targets;
  std::vector<float*> rows;
  std::vector<Fit> fits;
  std::vector<char> repeat;  // the target is an earlier target's row again
  explicit ExampleScratch(int64_t k) : targets(k + 1), rows(k + 1), fits(k + 1), repeat(k + 1) {}
};

// Trains h against the centre and the noise words of `example`; returns the loss.
// word2vec.c scores and updates the targets one after another. A target's score
// reads only h (fixed during the example) and its own row, which no earlier target
// changed unless it is the same row; so every score but a repeated row's is taken
// first, all at once (independent dot products the CPU overlaps, where one after
// another each waited on the last), and a repeated row is scored in its turn, after
// the update before it. The same arithmetic on the same values as in word2vec.c's
// order: the same bits.
template <typename Rows, typename Noise>
float TrainExample(const Examples& e, const float* h, float* error, Rows& out, int32_t centre,
                   int64_t example, ExampleScratch& s, Noise& noise) {
  float loss = 0.0f;
  int32_t* targets = s.targets.data();
  targets[0] = centre;
  noise.Reach(example);
  for (int64_t d = 1; d <= e.k; ++d) {  // draw all K first, so their rows load meanwhile
    targets[d] = noise.Draw(e.noise, example, d - 1);
    out.Prefetch(targets[d]);
  }
  for (int64_t d = 0; d <= e.k; ++d) {
    if (d > 0 && targets[d] == centre) continue;  // word2vec.c skips a draw equal to the centre
    bool repeat = false;
    for (int64_t j = 1; j < d && !repeat; ++j) repeat = targets[j] == targets[d];
    s.repeat[d] = repeat;
    s.rows[d] = out.Get(targets[d]);
    if (!repeat) s.fits[d] = FitOf(d == 0 ? Dot(h, s.rows[d], e.dim) : -Dot(h, s.rows[d], e.dim));
  }
  for (int64_t d = 0; d <= e.k; ++d) {
    if (d > 0 && targets[d] == centre) continue;
    float* row = s.rows[d];
    if (s.repeat[d]) s.fits[d] = FitOf(-Dot(h, row, e.dim));  // after the earlier update
    const Fit fit = s.fits[d];
    const float label = d == 0 ? 1.0f : 0.0f;
    const float sigma = d == 0 ? fit.value : 1.0f - fit.value;  // sigmoid(h . row)
    const float g = (label - sigma) * e.lr;
    Axpy(g, row, error, e.dim);
    Axpy(g, h, row, e.dim);
  }
  // The loss (word2vec.c computes none) after the updates, in target order: off
  // the updates' path, its log1p's overlap them (benchmarks/RESULTS.md has the gain).
  for (int64_t d = 0; d <= e.k; ++d)
    if (d == 0 || targets[d] != centre) loss += NegLogSigmoidOf(s.fits[d].x, s.fits[d].e);
  return loss;
}

// Centres [first, last) in order; adds to *loss and *pairs.
template <typename Rows, typename Noise>
void TrainCentres(const Examples& e, Rows& in, Rows& out, int64_t first, int64_t last, float* loss,
                  float* pairs, Noise& noise) {
  const int64_t window = e.window, dim = e.dim;
  std::vector<float> error(dim), hidden(dim);
  ExampleScratch scratch(e.k);
  for (int64_t b = first; b < last; ++b) {
    if (e.skip_gram) {
      for (int64_t c = 0; c < window; ++c) {
        if (e.mask[b * window + c] == 0.0f) continue;
        const int64_t next = b * window + c + 1;  // the next slot's context row, if it trains
        if (next < last * window && e.mask[next] != 0.0f) in.Prefetch(e.context[next]);
        float* h = in.Get(e.context[b * window + c]);
        std::fill(error.begin(), error.end(), 0.0f);
        *loss += TrainExample(e, h, error.data(), out, e.centre[b], b * window + c, scratch, noise);
        Axpy(1.0f, error.data(), h, dim);
        *pairs += 1.0f;
      }
      continue;
    }
    float count = 0.0f;
    std::fill(hidden.begin(), hidden.end(), 0.0f);
    for (int64_t c = 0; c < window; ++c)
      if (e.mask[b * window + c] != 0.0f) {
        Axpy(1.0f, in.Get(e.context[b * window + c]), hidden.data(), dim);
        count += 1.0f;
      }
    if (count == 0.0f) continue;
    for (int64_t d = 0; d < dim; ++d) hidden[d] /= count;
    std::fill(error.begin(), error.end(), 0.0f);
    *loss += TrainExample(e, hidden.data(), error.data(), out, e.centre[b], b, scratch, noise);
    for (int64_t c = 0; c < window; ++c)  // word2vec.c adds the whole error to each context row
      if (e.mask[b * window + c] != 0.0f) Axpy(1.0f, error.data(), in.Get(e.context[b * window + c]), dim);
    *pairs += 1.0f;
  }
}

// Lists in `in` and `out` every row TrainCentres(e, ..., first, last) gets:
// the context rows of unmasked slots, and each example's centre and noise draws
// (a superset: a draw equal to the centre, or a CBOW centre with no context,
// is copied but not trained, and adds 0 in the merge).
void CollectRows(const Examples& e, PrivateRows& in, PrivateRows& out, int64_t first, int64_t last) {
  const int64_t window = e.window;
  for (int64_t b = first; b < last; ++b) {
    bool any = false;
    for (int64_t c = 0; c < window; ++c) {
      if (e.mask[b * window + c] == 0.0f) continue;
      any = true;
      in.Take(e.context[b * window + c]);
      if (!e.skip_gram) continue;
      out.Take(e.centre[b]);
      for (int64_t k = 0; k < e.k; ++k) out.Take(e.noise.Draw(b * window + c, k));
    }
    if (e.skip_gram || !any) continue;
    out.Take(e.centre[b]);
    for (int64_t k = 0; k < e.k; ++k) out.Take(e.noise.Draw(b, k));
  }
}

// The chunks' centre ranges: chunk c trains centres [bounds[c], bounds[c + 1]),
// bounds[c] being the first centre b with examples(0 … b-1) · chunks ≥ total · c,
// where an example is an unmasked (centre, context) slot (skip-gram) or a centre
// with any (CBOW). So the chunks share the examples evenly, wherever the masks
// put them (the corpus's padding fills the last streams of a batch), and the
// bounds are a function of the batch alone. Returns chunks + 1 bounds.
std::vector<int64_t> ChunkBounds(const Examples& e, int64_t batch, int64_t chunks) {
  std::vector<int64_t> examples(batch);
  int64_t total = 0;
  for (int64_t b = 0; b < batch; ++b) {
    int64_t n = 0;
    for (int64_t c = 0; c < e.window; ++c) n += e.mask[b * e.window + c] != 0.0f;
    examples[b] = e.skip_gram ? n : (n > 0);
    total += examples[b];
  }
  std::vector<int64_t> bounds(chunks + 1, batch);  // a bound no centre reaches stays B
  bounds[0] = 0;
  int64_t c = 1, before = 0;  // examples of centres 0 … b-1
  for (int64_t b = 0; b < batch && c < chunks; ++b) {
    while (c < chunks && before * chunks >= total * c) bounds[c++] = b;
    before += examples[b];
  }
  return bounds;
}

// TrainCentres for each kind of rows, with everything inlined (see Axpy).
#define JAXDL_WIDE __attribute__((flatten))
JAXDL_WIDE void TrainRun(const Examples& e, DirectRows& in, DirectRows& out, int64_t first, int64_t last,
                         float* loss, float* pairs) {
  HashedNoise noise;
  TrainCentres(e, in, out, first, last, loss, pairs, noise);
}
JAXDL_WIDE void TrainRun(const Examples& e, PrivateRows& in, PrivateRows& out, int64_t first, int64_t last,
                         float* loss, float* pairs) {
  HashedNoise noise;
  TrainCentres(e, in, out, first, last, loss, pairs, noise);
}
JAXDL_WIDE void TrainRun(const Examples& e, DirectRows& in, DirectRows& out, int64_t first, int64_t last,
                         float* loss, float* pairs, DrawnNoise& noise) {
  TrainCentres(e, in, out, first, last, loss, pairs, noise);
}
JAXDL_WIDE void Merge(const std::vector<const PrivateRows*>& copies, float* table, int64_t dim, int64_t first,
                      int64_t last) {
  MergeRows(copies, table, dim, first, last);
}
#undef JAXDL_WIDE

int64_t AvailableCpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

// Buffers of type T, one per kernel call in flight: kept from call to call
// (fresh buffers each call would fault in every page they touch).
template <typename T>
class KeptBuffers {
 public:
  std::unique_ptr<T> Take() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!free_.empty()) {
        std::unique_ptr<T> kept = std::move(free_.back());
        free_.pop_back();
        return kept;
      }
    }
    return std::make_unique<T>();
  }
  void Give(std::unique_ptr<T> kept) {
    std::lock_guard<std::mutex> lock(mutex_);
    free_.push_back(std::move(kept));
  }

 private:
  std::mutex mutex_;
  std::vector<std::unique_ptr<T>> free_;
};

// Fills draws [examples, K] (examples: B·C slots in skip-gram, B centres in
// CBOW, TrainExample's `example`) with the noise words of the examples that train
// (an unmasked slot in skip-gram, a centre with any context in CBOW), in
// example order, publishing each block of kBlock examples in `ready`; stops at
// the end or once `finished` (the trainer is done: a drawer that starts late,
// after the trainer ran on the same thread, draws nothing).
void DrawAhead(const Examples& e, int64_t examples, int32_t* draws, std::atomic<int64_t>& ready,
               const std::atomic<bool>& finished) {
  constexpr int64_t kBlock = 64;
  const int64_t window = e.window;
  for (int64_t first = 0; first < examples; first += kBlock) {
    if (finished.load(std::memory_order_relaxed)) return;
    const int64_t last = std::min(examples, first + kBlock);
    for (int64_t example = first; example < last; ++example) {
      bool trains = e.skip_gram && e.mask[example] != 0.0f;
      for (int64_t c = 0; !e.skip_gram && !trains && c < window; ++c) trains = e.mask[example * window + c] != 0.0f;
      if (!trains) continue;
      for (int64_t k = 0; k < e.k; ++k) draws[example * e.k + k] = e.noise.Draw(example, k);
    }
    ready.store(last, std::memory_order_release);
  }
}

// The batch's centres in `chunks` contiguous runs, applied to the tables `in`
// and `out` [V, D] in place; the loss and the pairs trained are added to
// *total_loss and *total_pairs (in chunk order: the same sums whatever ran where).
// `threads` is how many may run at once: one run (chunks = 1) with 2 or more
// takes a second thread to draw its noise words (DrawAhead), the same bits.
// `parallel(items, body)` calls body(item) for items 0 … items-1, some at once
// (jaxdl::ParallelFor on XLA's thread pool: the threads XLA already has running,
// so no third thread competes for the cores with them).
template <typename Parallel>
bool TrainSequential(const Examples& e, float* in, float* out, int64_t vocab, int64_t batch, int64_t chunks,
                     bool lock_free, int64_t threads, Parallel&& parallel, float* total_loss, float* total_pairs) {
  const int64_t dim = e.dim, window = e.window;
  if (chunks == 1 && threads < 2) {
    DirectRows in_rows{in, dim}, out_rows{out, dim};
    TrainRun(e, in_rows, out_rows, 0, batch, total_loss, total_pairs);
    return true;
  }
  if (chunks == 1) {
    // One run, and a second thread drawing its noise words ahead of it (hashing
    // them took about a sixth of the run: benchmarks/RESULTS.md).
    static KeptBuffers<std::vector<int32_t>>* kept = new KeptBuffers<std::vector<int32_t>>();  // never destroyed
    auto draws = kept->Take();
    const int64_t examples = e.skip_gram ? batch * window : batch;
    if (static_cast<int64_t>(draws->size()) < examples * e.k) draws->resize(examples * e.k);
    std::atomic<int64_t> ready{0};
    std::atomic<bool> finished{false};
    parallel(2, [&](int64_t item) {
      if (item == 1) return DrawAhead(e, examples, draws->data(), ready, finished);
      DirectRows in_rows{in, dim}, out_rows{out, dim};
      DrawnNoise noise{draws->data(), &ready, e.k};
      TrainRun(e, in_rows, out_rows, 0, batch, total_loss, total_pairs, noise);
      finished.store(true, std::memory_order_relaxed);
    });
    kept->Give(std::move(draws));
    return true;
  }
  std::vector<float> loss(chunks, 0.0f), count(chunks, 0.0f);
  const std::vector<int64_t> bounds = ChunkBounds(e, batch, chunks);
  if (lock_free) {
    // word2vec.c's and gensim's threads: every run reads and writes the shared
    // tables in place, unlocked (Hogwild). No copies and no merge; a row two runs
    // touch at once may lose or mix an update, so the bits depend on timing.
    parallel(chunks, [&](int64_t c) {
      DirectRows my_in{in, dim}, my_out{out, dim};
      TrainRun(e, my_in, my_out, bounds[c], bounds[c + 1], &loss[c], &count[c]);
    });
  } else {
    // Every later chunk copies the rows it will touch from the batch-start tables
    // (one item per chunk, all before any chunk trains) ...
    using ScratchSet = std::vector<ChunkScratch>;
    static KeptBuffers<ScratchSet>* sets = new KeptBuffers<ScratchSet>();  // never destroyed: XLA may call in at exit
    auto scratch = sets->Take();
    if (static_cast<int64_t>(scratch->size()) < chunks) scratch->resize(chunks);
    parallel(chunks - 1, [&](int64_t item) {
      const int64_t c = item + 1, first = bounds[c], last = bounds[c + 1], n = last - first;
      ChunkScratch& mine = (*scratch)[c];
      mine.in.Begin(vocab, dim, std::max<int64_t>(1, std::min(vocab, n * window)));
      mine.out.Begin(vocab, dim, std::max<int64_t>(1, std::min(vocab, n * (e.skip_gram ? window * (e.k + 1) : e.k + 1))));
      CollectRows(e, mine.in, mine.out, first, last);
    });
    // (the listed rows copied in `pieces` slices per chunk, so every thread copies) ...
    const int64_t pieces = std::min<int64_t>(chunks, 8) * 2;
    parallel((chunks - 1) * pieces, [&](int64_t item) {
      const int64_t piece = item % pieces;
      ChunkScratch& mine = (*scratch)[1 + item / pieces];
      for (PrivateRows* rows : {&mine.in, &mine.out}) {
        const int64_t n = static_cast<int64_t>(rows->touched.size());
        rows->Copy(rows == &mine.in ? in : out, n * piece / pieces, n * (piece + 1) / pieces);
      }
    });
    // ... then the first chunk trains the tables in place and the others their copies, at once ...
    parallel(chunks, [&](int64_t c) {
      const int64_t first = bounds[c], last = bounds[c + 1];
      if (c == 0) {
        DirectRows my_in{in, dim}, my_out{out, dim};
        TrainRun(e, my_in, my_out, first, last, &loss[c], &count[c]);
      } else {
        TrainRun(e, (*scratch)[c].in, (*scratch)[c].out, first, last, &loss[c], &count[c]);
      }
    });
    // ... and their changes are added in row ranges, each range on one thread (both tables).
    std::vector<const PrivateRows*> ins, outs;
    bool missed = false;
    for (int64_t c = 1; c < chunks; ++c) {
      ins.push_back(&(*scratch)[c].in);
      outs.push_back(&(*scratch)[c].out);
      missed = missed || (*scratch)[c].in.missed || (*scratch)[c].out.missed;
    }
    const int64_t parts = std::min<int64_t>(chunks, 8);
    if (!missed)
      parallel(parts, [&](int64_t part) {
        const int64_t first = vocab * part / parts, last = vocab * (part + 1) / parts;
        Merge(ins, in, dim, first, last);
        Merge(outs, out, dim, first, last);
      });
    sets->Give(std::move(scratch));
    if (missed) return false;
  }
  for (int64_t c = 0; c < chunks; ++c) {
    *total_loss += loss[c];
    *total_pairs += count[c];
  }
  return true;
}

constexpr char kSequential[] = "jaxdl_sgns_sequential";

ffi::Error SequentialImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> inputs, ffi::Buffer<ffi::F32> outputs,
                          ffi::Buffer<ffi::S32> centres, ffi::Buffer<ffi::S32> contexts,
                          ffi::Buffer<ffi::F32> context_mask, ffi::Buffer<ffi::U32> noise_keys,
                          ffi::Buffer<ffi::F32> noise_accept, ffi::Buffer<ffi::S32> noise_alias,
                          ffi::Buffer<ffi::F32> learning_rate, ffi::ResultBuffer<ffi::F32> new_inputs,
                          ffi::ResultBuffer<ffi::F32> new_outputs, ffi::ResultBuffer<ffi::F32> loss_sum,
                          ffi::ResultBuffer<ffi::F32> pairs, int64_t skip_gram, int64_t chunks,
                          int64_t workers, int64_t lock_free) {
  const auto table = inputs.dimensions();
  const auto ctx = contexts.dimensions();
  if (table.size() != 2 || ctx.size() != 2 || noise_keys.dimensions().size() != 1)
    return jaxdl::Invalid(kSequential, "bad ranks");
  const int64_t vocab = table[0], dim = table[1], batch = ctx[0], window = ctx[1],
                k = noise_keys.element_count();
  if (outputs.element_count() != vocab * dim || centres.element_count() != batch ||
      context_mask.element_count() != batch * window || noise_accept.element_count() != vocab ||
      noise_alias.element_count() != vocab)
    return jaxdl::Invalid(kSequential, "shapes do not match tables [V, D], centres [B], contexts [B, C], "
                                       "noise_accept and noise_alias [V]");
  if (chunks < 1 || chunks > std::max<int64_t>(batch, 1))
    return jaxdl::Invalid(kSequential, "chunks=" + std::to_string(chunks) + ": expected 1 to B=" +
                                           std::to_string(batch));
  const int32_t* alias = noise_alias.typed_data();
  if (const char* bad = IdOutsideVocabulary(centres.typed_data(), batch, contexts.typed_data(),
                                             batch * window, alias, vocab, vocab))
    return jaxdl::Invalid(kSequential, std::string(bad) == "a negative id is outside the vocabulary"
                                           ? "a noise alias is outside the vocabulary" : bad);
  const Examples e{centres.typed_data(), contexts.typed_data(), context_mask.typed_data(),
                   NoiseTable{noise_keys.typed_data(), noise_accept.typed_data(), alias,
                              static_cast<uint32_t>(vocab)},
                   window, k, dim, skip_gram != 0, learning_rate.typed_data()[0]};
  const float* in_start = inputs.typed_data();
  const float* out_start = outputs.typed_data();
  float* in = new_inputs->typed_data();
  float* out = new_outputs->typed_data();
  if (in != in_start) std::memcpy(in, in_start, vocab * dim * sizeof(float));
  if (out != out_start) std::memcpy(out, out_start, vocab * dim * sizeof(float));
  float total_loss = 0.0f, total_pairs = 0.0f;
  const int64_t threads = std::min<int64_t>(pool.num_threads(), workers > 0 ? workers : AvailableCpus());
  auto parallel = [&](int64_t items, auto&& body) {
    jaxdl::ParallelFor(pool, items, threads, [&body](int64_t, int64_t item) { body(item); });
  };
  if (!TrainSequential(e, in, out, vocab, batch, chunks, lock_free != 0, threads, parallel, &total_loss,
                       &total_pairs))
    return ffi::Error::Internal("jaxdl_sgns_sequential: a chunk trained a row it had not copied (a kernel bug)");
  loss_sum->typed_data()[0] = total_loss;
  pairs->typed_data()[0] = total_pairs;
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxdlSgnsUpdate, SgnsImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // inputs
                                  .Arg<ffi::Buffer<ffi::F32>>()  // outputs
                                  .Arg<ffi::Buffer<ffi::S32>>()  // centres
                                  .Arg<ffi::Buffer<ffi::S32>>()  // contexts
                                  .Arg<ffi::Buffer<ffi::F32>>()  // context_mask
                                  .Arg<ffi::Buffer<ffi::S32>>()  // negatives
                                  .Arg<ffi::Buffer<ffi::F32>>()  // negative_mask
                                  .Arg<ffi::Buffer<ffi::F32>>()  // lr
                                  .Ret<ffi::Buffer<ffi::F32>>()  // new inputs
                                  .Ret<ffi::Buffer<ffi::F32>>()  // new outputs
                                  .Ret<ffi::Buffer<ffi::F32>>()  // loss_sum
                                  .Ret<ffi::Buffer<ffi::F32>>()  // pairs
                                  .Attr<float>("row_cap"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxdlSgnsSequential, SequentialImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // inputs
                                  .Arg<ffi::Buffer<ffi::F32>>()  // outputs
                                  .Arg<ffi::Buffer<ffi::S32>>()  // centres
                                  .Arg<ffi::Buffer<ffi::S32>>()  // contexts
                                  .Arg<ffi::Buffer<ffi::F32>>()  // context_mask
                                  .Arg<ffi::Buffer<ffi::U32>>()  // noise_keys
                                  .Arg<ffi::Buffer<ffi::F32>>()  // noise_accept
                                  .Arg<ffi::Buffer<ffi::S32>>()  // noise_alias
                                  .Arg<ffi::Buffer<ffi::F32>>()  // lr
                                  .Ret<ffi::Buffer<ffi::F32>>()  // new inputs
                                  .Ret<ffi::Buffer<ffi::F32>>()  // new outputs
                                  .Ret<ffi::Buffer<ffi::F32>>()  // loss_sum
                                  .Ret<ffi::Buffer<ffi::F32>>()  // pairs
                                  .Attr<int64_t>("skip_gram")
                                  .Attr<int64_t>("chunks")
                                  .Attr<int64_t>("workers")
                                  .Attr<int64_t>("lock_free"));
