// The expiry index against a reference model: random pushes over ranges that
// hit the near heap, the wheel and the far heap, pops in order, and removal
// of arbitrary entries. Built twice: with normal capacities and with
// ZOKIO_STRESS_CAPACITIES (8 buckets of 1 us) so the wheel wraps constantly.
#include <zokio/detail/timer/expiry_index.hpp>

#define BOOST_TEST_MODULE detail_timer_expiry_index
#include <boost/test/unit_test.hpp>

#include <map>
#include <random>
#include <set>

using zokio::detail::expiry_index;
using zokio::detail::timer_entry;

namespace {

// Model: (time, id) pairs; ids are unique, so ties are ordered by nothing
// the index promises: compare times only.
struct model
{
  std::multimap<std::int64_t, std::uint32_t> entries;
};

} // namespace

BOOST_AUTO_TEST_CASE(pops_in_time_order_across_all_tiers)
{
  for (int scale_shift : {4, 12, 20, 28, 34})
  {
    expiry_index index;
    model m;
    std::mt19937_64 rng(static_cast<unsigned>(scale_shift));
    std::int64_t now = 1'000'000'000;
    std::uint32_t next_id = 0;
    std::set<std::uint32_t> removed;
    for (int round = 0; round < 20000; ++round)
    {
      int action = static_cast<int>(rng() % 10);
      if (action < 5)
      {
        // Mostly in the future, some already due, a few very far.
        std::int64_t delta = static_cast<std::int64_t>(rng() % (std::uint64_t(1) << scale_shift));
        if (rng() % 10 == 0)
          delta = -delta;
        if (rng() % 50 == 0)
          delta <<= 8;
        std::int64_t t = now + delta;
        index.push(timer_entry{t, next_id, 0});
        m.entries.emplace(t, next_id);
        ++next_id;
      }
      else if (action < 8)
      {
        // Pop everything due by a later "now", checking order.
        now += static_cast<std::int64_t>(rng() % (std::uint64_t(1) << scale_shift));
        std::int64_t last = std::numeric_limits<std::int64_t>::min();
        while (!index.empty() && index.top().time <= now)
        {
          timer_entry e = index.top();
          index.pop();
          BOOST_REQUIRE(e.time >= last);
          last = e.time;
          if (removed.count(e.slot))
            BOOST_FAIL("a removed entry came back");
          auto range = m.entries.equal_range(e.time);
          bool found = false;
          for (auto it = range.first; it != range.second; ++it)
            if (it->second == e.slot)
            {
              m.entries.erase(it);
              found = true;
              break;
            }
          BOOST_REQUIRE(found);
        }
        // Nothing due was left behind.
        BOOST_REQUIRE(m.entries.empty() || m.entries.begin()->first > now
            || index.empty() == false);
        if (!m.entries.empty() && m.entries.begin()->first <= now)
          BOOST_FAIL("an entry due by now was not popped");
      }
      else if (action == 8 && !m.entries.empty())
      {
        // Remove a random third of the entries.
        std::set<std::uint32_t> victims;
        for (auto it = m.entries.begin(); it != m.entries.end();)
        {
          if (rng() % 3 == 0)
          {
            victims.insert(it->second);
            removed.insert(it->second);
            it = m.entries.erase(it);
          }
          else
          {
            ++it;
          }
        }
        index.remove_if([&](const timer_entry& e) { return victims.count(e.slot) != 0; });
      }
      BOOST_REQUIRE(index.size() == m.entries.size());
    }
    // Drain.
    std::int64_t last = std::numeric_limits<std::int64_t>::min();
    while (!index.empty())
    {
      timer_entry e = index.top();
      index.pop();
      BOOST_REQUIRE(e.time >= last);
      last = e.time;
    }
  }
}

BOOST_AUTO_TEST_CASE(extreme_times)
{
  expiry_index index;
  const std::int64_t max = std::numeric_limits<std::int64_t>::max();
  const std::int64_t min = std::numeric_limits<std::int64_t>::min();
  index.push(timer_entry{max, 1, 0});
  index.push(timer_entry{min, 2, 0});
  index.push(timer_entry{0, 3, 0});
  index.push(timer_entry{max - 1, 4, 0});
  std::vector<std::uint32_t> order;
  while (!index.empty())
  {
    order.push_back(index.top().slot);
    index.pop();
  }
  BOOST_TEST(order == (std::vector<std::uint32_t>{2, 3, 4, 1}), boost::test_tools::per_element());
}
