// Shared by jaxdl's native CPU kernels (blocked_patches.cc, conv_direct.cc,
// lstm_recurrence.cc, sgns_update.cc): argument errors and a parallel for over
// XLA's intra-op pool. (Vector widths: simd.h; which build runs: isa.py.)
//
// ParallelFor: the calling thread works too and takes items from the same counter as the
// pool's tasks, so a call never waits on a task that a busy pool has not started
// (it waits only for items already being run). The queue is held by shared_ptr:
// a task that starts after the call returned finds no item left and touches
// nothing else. Items must be independent; for results that do not depend on
// which thread ran what, give each item its own output (or partial sum).

#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "xla/ffi/api/ffi.h"

namespace jaxdl {

// An InvalidArgument error that names the kernel: "<kernel>: <message>".
inline xla::ffi::Error Invalid(const char* kernel, const std::string& message) {
  return xla::ffi::Error::InvalidArgument(std::string(kernel) + ": " + message);
}

template <typename Body>
struct WorkQueue {
  explicit WorkQueue(Body b) : body(std::move(b)) {}
  Body body;
  int64_t items = 0;
  std::atomic<int64_t> next{0}, done{0}, workers{0};

  void Work() {
    const int64_t worker = workers.fetch_add(1);
    for (int64_t item; (item = next.fetch_add(1)) < items;) {
      body(worker, item);
      done.fetch_add(1, std::memory_order_release);
    }
  }
};

// Runs body(worker, item) for every item in [0, items) and returns when all
// have run. `worker` (0 <= worker < max_workers) indexes per-thread scratch.
template <typename Body>
void ParallelFor(xla::ffi::ThreadPool& pool, int64_t items, int64_t max_workers, Body body) {
  if (items <= 0) return;
  auto queue = std::make_shared<WorkQueue<Body>>(std::move(body));
  queue->items = items;
  const int64_t workers = std::max<int64_t>(
      1, std::min<int64_t>({pool.num_threads(), items, max_workers}));
  for (int64_t t = 1; t < workers; ++t) pool.Schedule([queue] { queue->Work(); });
  queue->Work();
  while (queue->done.load(std::memory_order_acquire) < items) std::this_thread::yield();
}

}  // namespace jaxdl
