// perf/runtimes/zokio/future_ops.cpp: the cost of one asynchronous operation
// consumed through different completion styles, on one zokio::io_context.
//
// Operations (each completes without waiting for anything external):
//   timer  a zokio::steady_timer wait of zero length
//   post   a round trip through the context's queue (boost::asio::post)
//   nop    an IORING_OP_NOP kernel operation (zokio::detail::async_nop)
//
// Variants:
//   zokio_future       co_await op(zokio::use_future) in an awaitable coroutine
//   zokio_future_then  a callback chain: op(zokio::use_future).then(next)
//   zokio_future_get   op(zokio::use_future).get() on a thread that does not
//                      run the context (the context runs on another thread)
//   asio_future        op(boost::asio::use_future).get(), std::future, the
//                      same two threads
//   use_awaitable      co_await op(boost::asio::use_awaitable)
//   callback           a plain completion handler chain
//
// Output, one line per operation and variant:
//   future_ops <operation> <variant> <ns_per_op>
// where ns_per_op is the median over the repeats of time / operations; time
// is wall-clock time, or with "cpu" the CPU time of the process (all its
// threads), which a busy machine disturbs much less.
//
// Usage: future_ops [operations_per_run [repeats [wall|cpu]]]
// (defaults 200000, 7, wall; the two-thread variants run a tenth as many
// operations)
#include <zokio/future.hpp>
#include <zokio/io_context.hpp>
#include <zokio/timer/steady_timer.hpp>
#include <zokio/detail/uring/ops/nop_op.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;

namespace {

bool cpu_time = false; // measure process CPU time instead of wall time

std::int64_t now_ns()
{
  timespec ts;
  ::clock_gettime(cpu_time ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
  return std::int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// The three operations, for any completion token.
struct timer_op
{
  static constexpr const char* name = "timer";
  zokio::steady_timer& timer;

  template <typename Token>
  auto operator()(Token&& token)
  {
    timer.expires_after(std::chrono::nanoseconds(0));
    return timer.async_wait(std::forward<Token>(token));
  }
};

struct post_op
{
  static constexpr const char* name = "post";
  zokio::io_context& ctx;

  template <typename Token>
  auto operator()(Token&& token)
  {
    return asio::post(ctx, std::forward<Token>(token));
  }
};

struct nop_op
{
  static constexpr const char* name = "nop";
  zokio::io_context& ctx;

  template <typename Token>
  auto operator()(Token&& token)
  {
    return zokio::detail::async_nop(ctx.get_executor(), std::forward<Token>(token));
  }
};

template <typename Make>
double ns_per_op(long n, Make&& run_once)
{
  std::int64_t t0 = now_ns();
  run_once();
  std::int64_t t1 = now_ns();
  return double(t1 - t0) / double(n);
}

// Every variant of one operation; Op is built per run from the context.
template <typename Op>
struct variants
{
  long n;

  double zokio_future()
  {
    zokio::io_context ctx;
    zokio::steady_timer timer(ctx);
    Op op = make(ctx, timer);
    return ns_per_op(n, [&] {
      asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
        for (long i = 0; i < n; ++i)
          co_await op(zokio::use_future);
      }, asio::detached);
      ctx.run();
    });
  }

  double zokio_future_then()
  {
    zokio::io_context ctx;
    zokio::steady_timer timer(ctx);
    Op op = make(ctx, timer);
    long left = n;
    struct step
    {
      Op* op;
      long* left;
      void operator()(std::exception_ptr)
      {
        if (--*left > 0)
          (*op)(zokio::use_future).then(*this);
      }
    };
    return ns_per_op(n, [&] {
      asio::post(ctx, [&] { op(zokio::use_future).then(step{&op, &left}); });
      ctx.run();
    });
  }

  double zokio_future_get()
  {
    zokio::io_context ctx;
    zokio::steady_timer timer(ctx);
    Op op = make(ctx, timer);
    auto guard = asio::make_work_guard(ctx);
    std::thread runner([&] { ctx.run(); });
    long m = n / 10;
    double r = ns_per_op(m, [&] {
      for (long i = 0; i < m; ++i)
        op(zokio::use_future).get();
    });
    guard.reset();
    runner.join();
    return r;
  }

  double asio_future()
  {
    zokio::io_context ctx;
    zokio::steady_timer timer(ctx);
    Op op = make(ctx, timer);
    auto guard = asio::make_work_guard(ctx);
    std::thread runner([&] { ctx.run(); });
    long m = n / 10;
    double r = ns_per_op(m, [&] {
      for (long i = 0; i < m; ++i)
        op(asio::use_future).get();
    });
    guard.reset();
    runner.join();
    return r;
  }

  double use_awaitable()
  {
    zokio::io_context ctx;
    zokio::steady_timer timer(ctx);
    Op op = make(ctx, timer);
    return ns_per_op(n, [&] {
      asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
        for (long i = 0; i < n; ++i)
          co_await op(asio::use_awaitable);
      }, asio::detached);
      ctx.run();
    });
  }

  double callback()
  {
    zokio::io_context ctx;
    zokio::steady_timer timer(ctx);
    Op op = make(ctx, timer);
    long left = n;
    struct step
    {
      Op* op;
      long* left;
      void operator()(boost::system::error_code = {})
      {
        if (--*left > 0)
          (*op)(*this);
      }
    };
    return ns_per_op(n, [&] {
      asio::post(ctx, [&] { op(step{&op, &left}); });
      ctx.run();
    });
  }

  static Op make(zokio::io_context& ctx, zokio::steady_timer& timer)
  {
    if constexpr (std::is_same_v<Op, timer_op>)
      return Op{timer};
    else
      return Op{ctx};
  }
};

double median(std::vector<double> v)
{
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

template <typename Op>
void measure(long n, int repeats)
{
  using v = variants<Op>;
  struct variant
  {
    const char* name;
    double (v::*run)();
  };
  const variant all[] = {
    {"zokio_future", &v::zokio_future},
    {"zokio_future_then", &v::zokio_future_then},
    {"zokio_future_get", &v::zokio_future_get},
    {"asio_future", &v::asio_future},
    {"use_awaitable", &v::use_awaitable},
    {"callback", &v::callback},
  };
  // Repeats interleave the variants, so that a disturbance on the machine
  // (another process, frequency changes) spreads over all of them.
  std::vector<std::vector<double>> results(std::size(all));
  v runner{n};
  for (int r = 0; r < repeats; ++r)
    for (std::size_t i = 0; i < std::size(all); ++i)
      results[i].push_back((runner.*all[i].run)());
  for (std::size_t i = 0; i < std::size(all); ++i)
    std::printf("future_ops %s %s %.1f\n", Op::name, all[i].name, median(results[i]));
  std::fflush(stdout);
}

} // namespace

int main(int argc, char** argv)
{
  long n = argc > 1 ? std::atol(argv[1]) : 200000;
  int repeats = argc > 2 ? std::atoi(argv[2]) : 7;
  std::string mode = argc > 3 ? argv[3] : "wall";
  if (n < 10 || repeats < 1 || (mode != "wall" && mode != "cpu"))
  {
    std::fprintf(stderr, "usage: future_ops [operations_per_run>=10 [repeats>=1 [wall|cpu]]]\n");
    return 2;
  }
  cpu_time = mode == "cpu";
  measure<timer_op>(n, repeats);
  measure<post_op>(n, repeats);
  measure<nop_op>(n, repeats);
}
