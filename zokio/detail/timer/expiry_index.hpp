// zokio/detail/timer/expiry_index.hpp: timer entries ordered by expiry.
//
// Three tiers, so that the entries the run loop pops live in a small array
// that stays in cache however many timers are pending:
//   near   every entry that expires before horizon_: the bucket loaded last,
//          radix-sorted into a run read in order, plus a 4-ary heap for
//          entries added below the horizon afterwards (few: timers due
//          within the current millisecond);
//   wheel  256 buckets of 2^20 ns (about 1 ms) each, covering the next
//          268 ms after horizon_; a bucket is an unsorted vector, so adding a
//          timer there is one push_back;
//   far    a 4-ary heap of entries beyond the wheel.
// When near runs empty the first non-empty bucket becomes the new run
// (sorted in O(k) by the low bits of its times, which are all that differ
// within a bucket) and the horizon moves past it; far entries that now fall
// within the wheel move into it. Entries are popped in exact expiry order:
// the wheel only defers the sorting of each millisecond's timers until that
// millisecond comes up, when they are few and fit in cache.
//
// Measured (perf/scenarios/timer_storm, 1,000,000 timers over 100 ms): a
// single heap of a million entries spends most of its time in cache misses
// and mispredicted branches while sifting; sorting each millisecond's
// entries with two counting passes costs a few nanoseconds per entry.
//
// Not thread-safe: the owning timer_queue locks around every call.
#ifndef ZOKIO_DETAIL_TIMER_EXPIRY_INDEX_HPP
#define ZOKIO_DETAIL_TIMER_EXPIRY_INDEX_HPP

#include <zokio/detail/config.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace zokio {
namespace detail {

// One armed timer: when it expires (nanoseconds since its clock's epoch),
// which slot of the queue it belongs to, and that slot's generation when it
// was armed (an entry whose generation is out of date is stale).
struct timer_entry
{
  std::int64_t time;
  std::uint32_t slot;
  std::uint32_t gen;
};

class expiry_index
{
public:
  static constexpr int bucket_shift = ZOKIO_CAPACITY(20, 10);      // 2^20 ns per bucket
  static constexpr std::size_t bucket_count = ZOKIO_CAPACITY(256, 8);

  // Entries each bucket and the near heap can hold before they first grow;
  // reserved when the wheel is first used (256 x 8 x 16 bytes = 32 KiB), so a
  // timer re-armed every few milliseconds allocates nothing from the start.
  static constexpr std::size_t initial_capacity = 8;

  bool empty() const noexcept
  {
    return run_pos_ == run_.size() && near_.empty() && wheel_size_ == 0 && far_.empty();
  }

  std::size_t size() const noexcept
  {
    return (run_.size() - run_pos_) + near_.size() + wheel_size_ + far_.size();
  }

  void push(const timer_entry& e)
  {
    // While nothing is below the horizon, the wheel may start earlier, at the
    // new entry's bucket, as long as it still covers every bucket in use: so
    // entries added in any order land in buckets rather than in the near
    // heap or the far heap.
    if (e.time < horizon() && e.time >= 0 && run_pos_ == run_.size() && near_.empty())
    {
      std::int64_t b = e.time >> bucket_shift;
      if (wheel_size_ == 0 || wheel_max_ - b < static_cast<std::int64_t>(bucket_count))
        base_ = b; // far entries stay beyond the (now earlier) end of the wheel
    }
    else if (empty() && e.time >= 0)
    {
      base_ = e.time >> bucket_shift;
    }
    if (e.time < horizon())
    {
      near_.push_back(e);
      sift_up(near_, near_.size() - 1);
      return;
    }
    std::int64_t b = e.time >> bucket_shift;
    if (b - base_ < static_cast<std::int64_t>(bucket_count))
    {
      add_to_wheel(e, b);
      return;
    }
    far_.push_back(e);
    sift_up(far_, far_.size() - 1);
  }

  // The entry that expires first. Requires !empty().
  const timer_entry& top()
  {
    if (run_pos_ == run_.size() && near_.empty())
      advance();
    if (run_pos_ == run_.size())
      return near_.front();
    if (!near_.empty() && near_.front().time < run_[run_pos_].time)
      return near_.front();
    return run_[run_pos_];
  }

  // Removes top(). Requires !empty() and a preceding top().
  void pop() noexcept
  {
    if (run_pos_ == run_.size()
        || (!near_.empty() && near_.front().time < run_[run_pos_].time))
      pop_heap(near_);
    else
      ++run_pos_;
  }

  // Removes every entry for which stale(entry) is true.
  template <typename IsStale>
  void remove_if(IsStale stale)
  {
    run_.erase(run_.begin(), run_.begin() + static_cast<std::ptrdiff_t>(run_pos_));
    run_pos_ = 0;
    filter(run_, stale);
    filter(near_, stale);
    heapify(near_);
    filter(far_, stale);
    heapify(far_);
    for (std::size_t i = 0; i < bucket_count; ++i)
    {
      if (buckets_[i].empty())
        continue;
      std::size_t before = buckets_[i].size();
      filter(buckets_[i], stale);
      wheel_size_ -= before - buckets_[i].size();
      if (buckets_[i].empty())
        bits_[i / 64] &= ~(std::uint64_t(1) << (i % 64));
    }
  }

  void clear() noexcept
  {
    run_.clear();
    run_pos_ = 0;
    near_.clear();
    far_.clear();
    for (auto& b : buckets_)
      b.clear();
    bits_.fill(0);
    wheel_size_ = 0;
  }

private:
  static constexpr std::size_t arity = 4;
  using heap = std::vector<timer_entry>;

  std::int64_t horizon() const noexcept
  {
    // base_ never exceeds INT64_MAX >> bucket_shift, so this cannot overflow.
    return base_ << bucket_shift;
  }

  // The run and near_ are empty: the earliest remaining bucket becomes the
  // new run.
  void advance()
  {
    if (wheel_size_ == 0)
    {
      if (far_.empty())
        return;
      // Jump the wheel to the earliest far entry.
      base_ = far_.front().time >> bucket_shift;
      migrate_far();
    }
    std::size_t start = static_cast<std::size_t>(base_) & (bucket_count - 1);
    std::size_t offset = first_set_from(start);
    std::size_t i = (start + offset) & (bucket_count - 1);
    // Copy rather than swap, so that the run and every bucket keep the
    // capacity they have grown to and steady-state arming allocates nothing.
    run_.assign(buckets_[i].begin(), buckets_[i].end());
    run_pos_ = 0;
    buckets_[i].clear();
    bits_[i / 64] &= ~(std::uint64_t(1) << (i % 64));
    wheel_size_ -= run_.size();
    sort_run();
    base_ += static_cast<std::int64_t>(offset) + 1;
    migrate_far();
  }

  // Sorts run_ by time. All its entries share the bits above bucket_shift,
  // so a least-significant-digit counting sort over the low bits orders
  // them, in passes of radix_bits, without a data-dependent branch.
  void sort_run()
  {
    const std::size_t n = run_.size();
    if (n < 32)
    {
      for (std::size_t i = 1; i < n; ++i)
      {
        timer_entry e = run_[i];
        std::size_t j = i;
        for (; j > 0 && e.time < run_[j - 1].time; --j)
          run_[j] = run_[j - 1];
        run_[j] = e;
      }
      return;
    }
    constexpr int radix_bits = 10;
    constexpr std::size_t radix = std::size_t(1) << radix_bits;
    scratch_.resize(n);
    std::uint32_t counts[radix];
    for (int shift = 0; shift < bucket_shift; shift += radix_bits)
    {
      std::fill(counts, counts + radix, 0u);
      for (const timer_entry& e : run_)
        ++counts[(e.time >> shift) & (radix - 1)];
      std::uint32_t sum = 0;
      for (std::size_t d = 0; d < radix; ++d)
      {
        std::uint32_t c = counts[d];
        counts[d] = sum;
        sum += c;
      }
      for (const timer_entry& e : run_)
        scratch_[counts[(e.time >> shift) & (radix - 1)]++] = e;
      run_.swap(scratch_);
    }
  }

  void reserve()
  {
    near_.reserve(initial_capacity);
    run_.reserve(initial_capacity);
    scratch_.reserve(initial_capacity);
    for (auto& b : buckets_)
      b.reserve(initial_capacity);
    reserved_ = true;
  }

  // Moves far entries that the wheel now covers into their buckets.
  void migrate_far()
  {
    if (!far_.empty() && !reserved_)
      reserve();
    while (!far_.empty()
        && (far_.front().time >> bucket_shift) - base_ < static_cast<std::int64_t>(bucket_count))
    {
      timer_entry e = far_.front();
      pop_heap(far_);
      add_to_wheel(e, e.time >> bucket_shift);
    }
  }

  void add_to_wheel(const timer_entry& e, std::int64_t b)
  {
    if (!reserved_)
      reserve();
    if (wheel_size_ == 0 || b > wheel_max_)
      wheel_max_ = b;
    std::size_t i = static_cast<std::size_t>(b) & (bucket_count - 1);
    buckets_[i].push_back(e);
    bits_[i / 64] |= std::uint64_t(1) << (i % 64);
    ++wheel_size_;
  }

  // Offset from start of the first non-empty bucket (wheel_size_ != 0).
  std::size_t first_set_from(std::size_t start) const noexcept
  {
    constexpr std::size_t words = bucket_count / 64 ? bucket_count / 64 : 1;
    std::size_t w = start / 64;
    std::uint64_t word = bits_[w] & (~std::uint64_t(0) << (start % 64));
    for (std::size_t n = 0; n <= words; ++n)
    {
      if (word)
      {
        std::size_t i = w * 64 + static_cast<std::size_t>(__builtin_ctzll(word));
        return (i - start) & (bucket_count - 1);
      }
      w = (w + 1) % words;
      word = bits_[w];
    }
    return 0; // unreachable while wheel_size_ != 0
  }

  template <typename IsStale>
  static void filter(heap& h, IsStale& stale)
  {
    std::size_t kept = 0;
    for (std::size_t i = 0; i < h.size(); ++i)
      if (!stale(h[i]))
        h[kept++] = h[i];
    h.resize(kept);
  }

  static void heapify(heap& h) noexcept
  {
    if (h.size() > 1)
      for (std::size_t i = (h.size() - 2) / arity + 1; i-- > 0;)
        sift_down(h, i);
  }

  static void sift_up(heap& h, std::size_t i) noexcept
  {
    timer_entry moving = h[i];
    while (i > 0)
    {
      std::size_t parent = (i - 1) / arity;
      if (!(moving.time < h[parent].time))
        break;
      h[i] = h[parent];
      i = parent;
    }
    h[i] = moving;
  }

  static void sift_down(heap& h, std::size_t i) noexcept
  {
    const std::size_t n = h.size();
    timer_entry moving = h[i];
    for (;;)
    {
      std::size_t first = i * arity + 1;
      if (first >= n)
        break;
      std::size_t last = first + arity < n ? first + arity : n;
      std::size_t best = first;
      for (std::size_t c = first + 1; c < last; ++c)
        if (h[c].time < h[best].time)
          best = c;
      if (!(h[best].time < moving.time))
        break;
      h[i] = h[best];
      i = best;
    }
    h[i] = moving;
  }

  static void pop_heap(heap& h) noexcept
  {
    std::size_t last = h.size() - 1;
    if (last > 0)
    {
      h[0] = h[last];
      h.pop_back();
      sift_down(h, 0);
    }
    else
    {
      h.pop_back();
    }
  }

  heap run_;                                    // sorted; [run_pos_, end) pending, < horizon()
  std::size_t run_pos_ = 0;                     // next entry of run_
  heap scratch_;                                // sort buffer (swapped with run_)
  heap near_;                                   // added below horizon() after the run was made
  std::array<heap, bucket_count> buckets_;      // bucket b holds [b, b+1) << shift
  std::array<std::uint64_t, (bucket_count + 63) / 64> bits_{};  // non-empty buckets
  std::size_t wheel_size_ = 0;                  // entries in all buckets
  heap far_;                                    // beyond the wheel
  std::int64_t base_ = 0;                       // absolute bucket number of horizon()
  std::int64_t wheel_max_ = 0;                  // highest bucket in use (if wheel_size_ != 0)
  bool reserved_ = false;                       // buckets have their initial capacity
};

} // namespace detail
} // namespace zokio

#endif // ZOKIO_DETAIL_TIMER_EXPIRY_INDEX_HPP
