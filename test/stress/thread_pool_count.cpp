// Long stress run (label "long", not part of test/run): hundreds of millions
// of handlers across the pool's workers, fed by 8 outside threads, every one
// counted. ZOKIO_LONG_HANDLERS sets the total (default 300,000,000).
//
//   ctest -L long        or        build/test/test/test_long_thread_pool_count
#include <zokio/thread_pool.hpp>

#define BOOST_TEST_MODULE long_thread_pool_count
#include <boost/test/unit_test.hpp>

#include <boost/asio/post.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <vector>

namespace asio = boost::asio;

namespace {

// One chain_link of a chain: counts itself, posts its successor and, every few
// links, a leaf (so both the LIFO slot and the stealable queue carry work).
struct chain_link
{
  zokio::thread_pool* pool;
  std::atomic<long>* count;
  int left;
  void operator()() const
  {
    count->fetch_add(1, std::memory_order_relaxed);
    if (left > 0)
    {
      asio::post(*pool, chain_link{pool, count, left - 1});
      if (left % 8 == 0)
        asio::post(*pool, chain_link{pool, count, 0});
    }
  }
};

// Handlers per chain: 64 links (left = 63 .. 0) and a leaf at left = 56,
// 48, ..., 8.
constexpr long per_chain = 64 + 7;

} // namespace

BOOST_AUTO_TEST_CASE(hundreds_of_millions_of_handlers)
{
  long total = 300'000'000;
  if (const char* v = std::getenv("ZOKIO_LONG_HANDLERS"))
    total = std::atol(v);
  const long chains_per_thread = total / per_chain / 8;
  const long expected = chains_per_thread * 8 * per_chain;

  std::atomic<long> count{0};
  auto t0 = std::chrono::steady_clock::now();
  zokio::thread_pool pool;
  std::vector<std::thread> feeders;
  for (int t = 0; t < 8; ++t)
    feeders.emplace_back([&] {
      for (long c = 0; c < chains_per_thread; ++c)
        asio::post(pool, chain_link{&pool, &count, 63});
    });
  for (auto& f : feeders)
    f.join();
  pool.join();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto s = pool.statistics();
  BOOST_TEST_MESSAGE(count.load() << " handlers on " << pool.size() << " workers in " << seconds
      << " s; steals " << s.steals << ", sleeps " << s.sleeps << ", wake-ups " << s.wakeups);
  BOOST_TEST(count.load() == expected);
  BOOST_TEST(s.handlers_run == static_cast<std::uint64_t>(expected));
}
