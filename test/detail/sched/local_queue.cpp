// Stress test of a runner's local queue: the owner pushes and pops while
// thieves steal halves; every item must be taken exactly once. Built with
// normal capacity (256) and, as stress_local_queue, with capacity 4.
#include <zokio/detail/sched/local_queue.hpp>

#define BOOST_TEST_MODULE detail_sched_local_queue
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

namespace {

struct item : zokio::detail::operation
{
  explicit item(int i) : operation(&complete), id(i) {}
  static void complete(zokio::detail::scheduler*, operation*) {}
  int id;
};

} // namespace

BOOST_AUTO_TEST_CASE(owner_pops_in_fifo_order)
{
  zokio::detail::local_queue q;
  std::vector<std::unique_ptr<item>> items;
  zokio::detail::op_queue overflow;
  for (int i = 0; i < 3 * static_cast<int>(zokio::detail::local_queue::capacity); ++i)
  {
    items.push_back(std::make_unique<item>(i));
    bool local = q.push(items.back().get(), overflow);
    BOOST_TEST(local == (i < static_cast<int>(zokio::detail::local_queue::capacity)));
  }
  for (int i = 0; i < static_cast<int>(zokio::detail::local_queue::capacity); ++i)
    BOOST_TEST(static_cast<item*>(q.pop())->id == i);
  BOOST_TEST(q.pop() == nullptr);
  // The overflow keeps the order of the rest.
  int expected = static_cast<int>(zokio::detail::local_queue::capacity);
  while (auto* op = overflow.pop())
    BOOST_TEST(static_cast<item*>(op)->id == expected++);
}

BOOST_AUTO_TEST_CASE(every_item_taken_exactly_once_under_stealing)
{
#if defined(__SANITIZE_THREAD__)
  constexpr int n = 100000;
#else
  constexpr int n = 2000000;
#endif
  constexpr int thieves = 3;
  std::vector<item> items;
  items.reserve(n);
  for (int i = 0; i < n; ++i)
    items.emplace_back(i);
  std::vector<std::atomic<int>> taken(n);
  std::atomic<int> total{0};
  std::atomic<bool> producing{true};

  zokio::detail::local_queue owner_queue;
  auto take = [&](zokio::detail::operation* op) {
    taken[static_cast<item*>(op)->id].fetch_add(1, std::memory_order_relaxed);
    total.fetch_add(1, std::memory_order_relaxed);
  };

  std::vector<std::thread> threads;
  for (int t = 0; t < thieves; ++t)
    threads.emplace_back([&] {
      zokio::detail::local_queue mine;
      while (producing.load() || !owner_queue.empty())
      {
        zokio::detail::operation* first = nullptr;
        if (owner_queue.steal_into(mine, first) != 0)
        {
          take(first);
          while (auto* op = mine.pop())
            take(op);
        }
      }
    });

  zokio::detail::op_queue overflow;
  for (int i = 0; i < n; ++i)
  {
    if (!owner_queue.push(&items[i], overflow))
      take(overflow.pop()); // a full queue: the owner runs it itself
    if (i % 3 == 0)
      if (auto* op = owner_queue.pop())
        take(op);
  }
  while (auto* op = owner_queue.pop())
    take(op);
  producing = false;
  for (auto& t : threads)
    t.join();

  BOOST_TEST(total.load() == n);
  int wrong = 0;
  for (int i = 0; i < n; ++i)
    wrong += taken[i].load() != 1;
  BOOST_TEST(wrong == 0);
}
