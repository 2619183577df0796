// Stress test of the inject queue: several producers, consumers taking turns
// under the consumer lock; every operation must come out exactly once, and
// each producer's operations in the order it pushed them. Each case runs on
// the hand-written queue and on the Boost.Lockfree one the harness measures
// against it (lockfree_inject_queue.hpp).
#include <zokio/detail/sched/inject_queue.hpp>
#include <zokio/detail/sched/lockfree_inject_queue.hpp>

#define BOOST_TEST_MODULE detail_sched_inject_queue
#include <boost/test/unit_test.hpp>

#include <boost/mpl/list.hpp>

#include <atomic>
#include <thread>
#include <vector>

namespace {

struct item : zokio::detail::operation
{
  item(int p, int s) : operation(&complete), producer(p), seq(s) {}
  static void complete(zokio::detail::scheduler*, operation*) {}
  int producer;
  int seq;
};

#if defined(__SANITIZE_THREAD__)
// Boost.Lockfree's free list reads a node's link while another thread may
// reuse the node (a race it tolerates by design, with a tagged pointer's
// CAS deciding), which ThreadSanitizer reports; the library's queue is only
// the harness's comparison, so under ThreadSanitizer the hand-written queue
// alone is checked (the plain and ASan builds run both).
using queues = boost::mpl::list<zokio::detail::inject_queue>;
#else
using queues = boost::mpl::list<zokio::detail::inject_queue, zokio::detail::lockfree_inject_queue>;
#endif

} // namespace

BOOST_AUTO_TEST_CASE_TEMPLATE(every_item_exactly_once_in_producer_order, Queue, queues)
{
  constexpr int producers = 4;
#if defined(__SANITIZE_THREAD__)
  constexpr int per_producer = 20000;
#else
  constexpr int per_producer = 200000;
#endif
  std::vector<std::vector<item>> items(producers);
  for (int p = 0; p < producers; ++p)
    for (int s = 0; s < per_producer; ++s)
      items[p].emplace_back(p, s);

  Queue q;
  std::atomic<int> taken{0};
  std::vector<int> next_seq(producers, 0);
  std::atomic<int> errors{0};

  auto consume = [&] {
    while (taken.load() < producers * per_producer)
    {
      if (!q.try_lock_consumer())
        continue;
      while (auto* op = q.pop())
      {
        auto* it = static_cast<item*>(op);
        if (it->seq != next_seq[it->producer])
          ++errors;
        next_seq[it->producer] = it->seq + 1;
        ++taken;
      }
      q.unlock_consumer();
    }
  };

  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p)
    threads.emplace_back([&, p] {
      for (int s = 0; s < per_producer; ++s)
        q.push(&items[p][s]);
    });
  std::thread c1(consume), c2(consume);
  for (auto& t : threads)
    t.join();
  c1.join();
  c2.join();
  BOOST_TEST(taken.load() == producers * per_producer);
  BOOST_TEST(errors.load() == 0);
  for (int p = 0; p < producers; ++p)
    BOOST_TEST(next_seq[p] == per_producer);
  BOOST_TEST(!q.maybe_nonempty());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(chains_keep_their_order, Queue, queues)
{
  Queue q;
  std::vector<item> items;
  for (int i = 0; i < 10; ++i)
    items.emplace_back(0, i);
  zokio::detail::op_queue chain;
  for (int i = 0; i < 5; ++i)
    chain.push(&items[i]);
  q.push(chain);
  BOOST_TEST(chain.empty());
  for (int i = 5; i < 10; ++i)
    q.push(&items[i]);
  BOOST_TEST(q.maybe_nonempty());
  BOOST_TEST(q.try_lock_consumer());
  zokio::detail::op_queue out;
  BOOST_TEST(q.pop_into(out, 100) == 10u);
  q.unlock_consumer();
  for (int i = 0; i < 10; ++i)
    BOOST_TEST(static_cast<item*>(out.pop())->seq == i);
  BOOST_TEST(!q.maybe_nonempty());
}
