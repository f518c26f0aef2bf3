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
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <sched.h>
#include <unistd.h>
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

// sigmoid(x) as word2vec.c's table gives it (0 or 1 beyond ±kMaxExp), and
// -log(sigmoid(x)) (not clamped), from one exp and one log1p.
struct Sigmoid {
  float value, neg_log;
};
inline Sigmoid SigmoidAndLoss(float x) {
  const float e = std::exp(-std::fabs(x));  // in (0, 1]
  // log(1 + e) rather than log1p(e): several times cheaper, and for the tiny e
  // where log1p is more exact both are below float's resolution of the loss sum.
  const float log_term = std::log(1.0f + e);
  Sigmoid out;
  out.value = x > kMaxExp ? 1.0f : x < -kMaxExp ? 0.0f : (x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e));
  out.neg_log = x >= 0.0f ? log_term : -x + log_term;
  return out;
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
// Chunks: the batch's centres are split into `chunks` contiguous runs. Each run
// is trained in order, example by example, against the tables as of the batch
// start plus its own earlier updates (rows are copied into the chunk's private
// buffer on first touch); then each chunk's change (private - start) is added
// to the tables in chunk order. The runs are independent, so threads may train
// them in any order and any number of threads gives the same bits. With one
// chunk the tables are updated in place: word2vec.c's single thread. With
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

// A table's rows as one chunk sees them: a row is copied from the batch-start
// table into this chunk's buffer when first touched; later touches use the copy.
struct PrivateRows {
  const float* start;
  int64_t dim;
  std::vector<int32_t> slot;     // [V], -1 = not copied
  std::vector<int32_t> touched;  // rows in order of first touch
  std::unique_ptr<float[]> rows;

  PrivateRows(const float* start_table, int64_t vocab, int64_t dim_, int64_t capacity)
      : start(start_table), dim(dim_), slot(vocab, -1), rows(new float[capacity * dim_]) {
    touched.reserve(capacity);
  }
  float* Get(int32_t row) {
    int32_t& s = slot[row];
    if (s < 0) {
      s = static_cast<int32_t>(touched.size());
      touched.push_back(row);
      std::memcpy(rows.get() + s * dim, start + row * dim, dim * sizeof(float));
    }
    return rows.get() + s * dim;
  }
  void Prefetch(int32_t row) const {  // the private copy if made, else the start row (no copy)
    const int32_t s = slot[row];
    PrefetchRow(s < 0 ? start + row * dim : rows.get() + s * dim, dim);
  }
  // Turns every copied row into its change since the batch start.
  void ToChanges() {
    for (size_t s = 0; s < touched.size(); ++s)
      Subtract(start + touched[s] * dim, rows.get() + s * dim, dim);
  }
  void AddChangesTo(float* table) const {
    for (size_t s = 0; s < touched.size(); ++s)
      Axpy(1.0f, rows.get() + s * dim, table + touched[s] * dim, dim);
  }
};

struct Examples {
  const int32_t *centre, *context;
  const float* mask;
  NoiseTable noise;
  int64_t window, k, dim;
  bool skip_gram;
  float lr;
};

// Trains h against the centre and the noise words of `example`; returns the loss.
template <typename Rows>
float TrainExample(const Examples& e, const float* h, float* error, Rows& out, int32_t centre,
                   int64_t example, int32_t* targets) {  // targets: scratch [K + 1]
  float loss = 0.0f;
  targets[0] = centre;
  for (int64_t d = 1; d <= e.k; ++d) {  // draw all K first, so their rows load meanwhile
    targets[d] = e.noise.Draw(example, d - 1);
    out.Prefetch(targets[d]);
  }
  for (int64_t d = 0; d <= e.k; ++d) {
    const int32_t target = targets[d];
    if (d > 0 && target == centre) continue;  // word2vec.c skips a draw equal to the centre
    const float label = d == 0 ? 1.0f : 0.0f;
    float* row = out.Get(target);
    const Sigmoid fit = SigmoidAndLoss(d == 0 ? Dot(h, row, e.dim) : -Dot(h, row, e.dim));
    const float sigma = d == 0 ? fit.value : 1.0f - fit.value;  // sigmoid(h . row)
    const float g = (label - sigma) * e.lr;
    loss += fit.neg_log;
    Axpy(g, row, error, e.dim);
    Axpy(g, h, row, e.dim);
  }
  return loss;
}

// Centres [first, last) in order; adds to *loss and *pairs.
template <typename Rows>
void TrainCentres(const Examples& e, Rows& in, Rows& out, int64_t first, int64_t last, float* loss,
                  float* pairs) {
  const int64_t window = e.window, dim = e.dim;
  std::vector<float> error(dim), hidden(dim);
  std::vector<int32_t> targets(e.k + 1);
  for (int64_t b = first; b < last; ++b) {
    if (e.skip_gram) {
      for (int64_t c = 0; c < window; ++c) {
        if (e.mask[b * window + c] == 0.0f) continue;
        const int64_t next = b * window + c + 1;  // the next slot's context row, if it trains
        if (next < last * window && e.mask[next] != 0.0f) in.Prefetch(e.context[next]);
        float* h = in.Get(e.context[b * window + c]);
        std::fill(error.begin(), error.end(), 0.0f);
        *loss += TrainExample(e, h, error.data(), out, e.centre[b], b * window + c, targets.data());
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
    *loss += TrainExample(e, hidden.data(), error.data(), out, e.centre[b], b, targets.data());
    for (int64_t c = 0; c < window; ++c)  // word2vec.c adds the whole error to each context row
      if (e.mask[b * window + c] != 0.0f) Axpy(1.0f, error.data(), in.Get(e.context[b * window + c]), dim);
    *pairs += 1.0f;
  }
}

// TrainCentres for each kind of rows, with everything inlined (see Axpy).
#define JAXDL_WIDE __attribute__((flatten))
JAXDL_WIDE void TrainRun(const Examples& e, DirectRows& in, DirectRows& out, int64_t first, int64_t last,
                         float* loss, float* pairs) {
  TrainCentres(e, in, out, first, last, loss, pairs);
}
JAXDL_WIDE void TrainRun(const Examples& e, PrivateRows& in, PrivateRows& out, int64_t first, int64_t last,
                         float* loss, float* pairs) {
  TrainCentres(e, in, out, first, last, loss, pairs);
}
JAXDL_WIDE void ToChanges(PrivateRows& rows) { rows.ToChanges(); }
JAXDL_WIDE void AddChanges(const PrivateRows& rows, float* table) { rows.AddChangesTo(table); }
#undef JAXDL_WIDE

// Threads kept for the runs of a batch. A std::thread started per call got going
// only well into the call (docs/EMBEDDING_RESULTS.md has the timing), so the
// workers stay: after a run each spins for up to kSpin (a step's make_batch between
// two calls is shorter) and then sleeps until the next. Never destroyed (no join
// at process exit while XLA may still call in). A forked child, which inherits the
// object but not its threads, makes its own.
class Workers {
 public:
  static Workers& Get() {
    static Workers* workers = nullptr;
    static pid_t owner = 0;
    static std::mutex create;
    std::lock_guard<std::mutex> lock(create);
    if (workers == nullptr || owner != getpid()) {
      workers = new Workers();  // a parent's workers are left behind in a child, unused
      owner = getpid();
    }
    return *workers;
  }

  // work(0) on the calling thread and work(1 … n-1) on kept threads; returns when all did.
  void Run(int64_t n, const std::function<void(int64_t)>& work) {
    std::lock_guard<std::mutex> one_call(call_mutex_);  // concurrent kernel calls take turns
    for (int64_t id = static_cast<int64_t>(threads_.size()) + 1; id < n; ++id)
      threads_.emplace_back([this, id] { Loop(id); });
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &work;
      wanted_ = n - 1;
      remaining_.store(n - 1, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    work(0);
    while (remaining_.load(std::memory_order_acquire) > 0) __builtin_ia32_pause();
  }

 private:
  static constexpr std::chrono::microseconds kSpin{1000};

  void Loop(int64_t id) {
    uint64_t seen = 0;
    for (;;) {
      const auto until = std::chrono::steady_clock::now() + kSpin;
      while (generation_.load(std::memory_order_acquire) == seen &&
             std::chrono::steady_clock::now() < until)
        __builtin_ia32_pause();
      const std::function<void(int64_t)>* job;
      int64_t wanted;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
        // Generation, job and count read together: each generation runs at most once here.
        seen = generation_.load(std::memory_order_acquire);
        job = job_;
        wanted = wanted_;
      }
      if (id > wanted) continue;
      (*job)(id);
      remaining_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  std::mutex call_mutex_, mutex_;
  std::condition_variable wake_;
  std::vector<std::thread> threads_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int64_t> remaining_{0};
  const std::function<void(int64_t)>* job_ = nullptr;
  int64_t wanted_ = 0;
};

int64_t AvailableCpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

constexpr char kSequential[] = "jaxdl_sgns_sequential";

ffi::Error SequentialImpl(ffi::Buffer<ffi::F32> inputs, ffi::Buffer<ffi::F32> outputs,
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
  if (chunks == 1) {
    DirectRows in_rows{in, dim}, out_rows{out, dim};
    float loss = 0.0f, count = 0.0f;
    TrainRun(e, in_rows, out_rows, 0, batch, &loss, &count);
    loss_sum->typed_data()[0] = loss;
    pairs->typed_data()[0] = count;
    return ffi::Error::Success();
  }
  std::vector<float> loss(chunks, 0.0f), count(chunks, 0.0f);
  const int64_t threads = std::min(chunks, workers > 0 ? workers : AvailableCpus());
  auto run_on_threads = [&](auto&& run_chunk) {
    std::atomic<int64_t> next{0};
    auto work = [&] {
      for (int64_t c; (c = next.fetch_add(1)) < chunks;) run_chunk(c);
    };
    Workers::Get().Run(threads, [&](int64_t) { work(); });
  };
  if (lock_free) {
    // word2vec.c's and gensim's threads: every run reads and writes the shared
    // tables in place, unlocked (Hogwild). No copies and no merge; a row two runs
    // touch at once may lose or mix an update, so the bits depend on timing.
    DirectRows in_rows{in, dim}, out_rows{out, dim};
    run_on_threads([&](int64_t c) {
      DirectRows my_in = in_rows, my_out = out_rows;
      TrainRun(e, my_in, my_out, batch * c / chunks, batch * (c + 1) / chunks, &loss[c], &count[c]);
    });
  } else {
    // Chunks read the batch-start tables, which stay untouched until the merge.
    std::vector<std::unique_ptr<PrivateRows>> private_in(chunks), private_out(chunks);
    run_on_threads([&](int64_t c) {
      const int64_t first = batch * c / chunks, last = batch * (c + 1) / chunks, n = last - first;
    private_in[c] = std::make_unique<PrivateRows>(in_start, vocab, dim, std::min(vocab, n * window));
    private_out[c] = std::make_unique<PrivateRows>(
        out_start, vocab, dim, std::min(vocab, n * (skip_gram ? window * (k + 1) : k + 1)));
      TrainRun(e, *private_in[c], *private_out[c], first, last, &loss[c], &count[c]);
      ToChanges(*private_in[c]);
      ToChanges(*private_out[c]);
    });
    for (int64_t c = 0; c < chunks; ++c) {  // chunk order: the same sums whatever ran where
      AddChanges(*private_in[c], in);
      AddChanges(*private_out[c], out);
    }
  }
  float total_loss = 0.0f, total_pairs = 0.0f;
  for (int64_t c = 0; c < chunks; ++c) {
    total_loss += loss[c];
    total_pairs += count[c];
  }
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
