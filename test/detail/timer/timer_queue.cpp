// Tests of the timer heap against a reference model, with a clock the test
// controls.
#include <zokio/detail/timer/timer_queue.hpp>

#define BOOST_TEST_MODULE detail_timer_timer_queue
#include <boost/test/unit_test.hpp>

#include <boost/asio/wait_traits.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <vector>

namespace {

struct manual_clock
{
  using rep = std::int64_t;
  using period = std::nano;
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<manual_clock>;
  static constexpr bool is_steady = true;
  static inline time_point current{};
  static time_point now() noexcept { return current; }
};

struct test_wait : zokio::detail::wait_op
{
  explicit test_wait(int id) : wait_op(&complete), id(id) {}
  static void complete(zokio::detail::scheduler*, operation*) {}
  int id;
};

using queue_type = zokio::detail::timer_queue<manual_clock, boost::asio::wait_traits<manual_clock>>;

} // namespace

BOOST_AUTO_TEST_CASE(random_inserts_cancels_and_expiries_match_a_model)
{
  queue_type q;
  std::mt19937 rng(7);
  constexpr int timers = 3000;
  std::vector<zokio::detail::per_timer_data> data(timers);
  std::vector<std::int64_t> expiry(timers, -1); // -1: no waits pending
  std::vector<std::unique_ptr<test_wait>> waits;
  std::multimap<std::int64_t, int> model; // expiry -> timer

  manual_clock::current = manual_clock::time_point(std::chrono::nanoseconds(0));
  zokio::detail::op_queue out;
  for (int round = 0; round < 20000; ++round)
  {
    int t = static_cast<int>(rng() % timers);
    int action = static_cast<int>(rng() % 10);
    std::lock_guard<std::mutex> lock(q.mutex());
    if (action < 6)
    {
      if (expiry[t] < 0)
      {
        expiry[t] = manual_clock::current.time_since_epoch().count() + 1 + static_cast<int>(rng() % 100000);
        model.emplace(expiry[t], t);
      }
      waits.push_back(std::make_unique<test_wait>(t));
      q.enqueue(manual_clock::time_point(std::chrono::nanoseconds(expiry[t])), data[t], waits.back().get());
    }
    else if (action < 8)
    {
      zokio::detail::op_queue cancelled;
      std::size_t n = q.cancel_timer(data[t], cancelled);
      BOOST_TEST((n > 0) == (expiry[t] >= 0));
      while (auto* op = cancelled.pop())
      {
        BOOST_TEST(static_cast<test_wait*>(op)->id == t);
        BOOST_TEST((static_cast<zokio::detail::wait_op*>(op)->ec_ == boost::asio::error::operation_aborted));
      }
      if (expiry[t] >= 0)
      {
        for (auto it = model.lower_bound(expiry[t]); it != model.end(); ++it)
          if (it->second == t) { model.erase(it); break; }
        expiry[t] = -1;
      }
    }
    else
    {
      manual_clock::current += std::chrono::nanoseconds(rng() % 20000);
      auto now = manual_clock::current.time_since_epoch().count();
      zokio::detail::op_queue ready;
      q.mutex().unlock();
      q.get_ready(ready);
      q.mutex().lock();
      std::int64_t last = -1;
      std::vector<int> fired;
      while (auto* op = ready.pop())
      {
        int id = static_cast<test_wait*>(op)->id;
        BOOST_TEST(expiry[id] >= 0);
        BOOST_TEST(expiry[id] <= now);          // never early
        BOOST_TEST(expiry[id] >= last);         // in order
        last = expiry[id];
        fired.push_back(id);
      }
      // Everything due has fired.
      while (!model.empty() && model.begin()->first <= now)
      {
        int id = model.begin()->second;
        BOOST_TEST((std::find(fired.begin(), fired.end(), id) != fired.end()));
        expiry[id] = -1;
        model.erase(model.begin());
      }
    }
    BOOST_TEST(q.pending() >= model.size());
  }
}
