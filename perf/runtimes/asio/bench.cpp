// Post and timer workloads for the Asio-shaped runtimes (zokio, asio_epoll,
// asio_uring): one source, three binaries; see runtime.hpp.
//
//   bench SCENARIO [--threads T] [scenario options]
//
// Scenarios (workloads described in perf/scenarios/<name>/README.md):
//   chained_post     --handlers N                 each handler posts the next
//   burst_post       --handlers N --burst B       another thread posts, bursts of B
//   timer_storm      --timers N --delay-ms D --window-ms W
//   sleep_precision  --count N --sleep-us U
//   spawn_many       --tasks N --iters I          (tokio rt bench shapes, T threads)
//   yield_many       --tasks N --yields Y
//   ping_pong        --pings N --iters I
//   chained_spawn    --depth N --iters I
//   spawn_outside    --tasks N [--busy 1]           handlers submitted from another thread
//   (the five shapes above take --pool 1: a thread pool of --threads workers)
//   future_ops       --ops N [--repeats R] [--op timer|post|tcp]
//                                                 one operation through each completion style
//   file_io          --file F --mode rand4k|seqread|seqwrite --depth D --ops N [--impl pread]
//                                                 file reads and writes through the runtime's
//                                                 random_access_file (zokio; Asio only with its
//                                                 io_uring backend), or --impl pread: D threads
//                                                 calling pread/pwrite
//   signal_latency   --count N                    SIGUSR1 from another thread to the handler
//   spawn_wait       --count N                    spawn /bin/true and wait for it (zokio::process;
//                                                 Boost.Process v2 on Asio)
//
// Prints one JSON object: {"runtime", "scenario", "threads", metrics..., "stats"}.
#include "runtime.hpp"

#if !defined(PERF_RUNTIME_ZOKIO)
// Boost.Process v2 for spawn_wait on Asio (header-only, std::filesystem;
// Boost 1.81's v2 headers use these two without including them).
#define BOOST_PROCESS_USE_STD_FS 1
#include <boost/optional.hpp>
#include <boost/type_traits/decay.hpp>
#include <boost/process/v2/process.hpp>
#endif

#include <sched.h>
#include <csignal>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace perf;

// Runs ctx on `threads` threads (the calling one included) until it runs out of work.
template <class Context>
void run_on(Context& ctx, unsigned threads) {
  std::vector<std::thread> extra;
  for (unsigned i = 1; i < threads; ++i) extra.emplace_back([&] { ctx.run(); });
  ctx.run();
  for (auto& t : extra) t.join();
}

json_line header(const char* scenario, unsigned threads) {
  json_line j;
  j.add("runtime", runtime_name).add("scenario", scenario).add("threads", std::uint64_t(threads));
  return j;
}

// --- chained_post ----------------------------------------------------------------
struct chain_link {
  rt::io_context* ctx;
  std::uint64_t* left;
  void operator()() const {
    if (--*left != 0) asio::post(*ctx, chain_link{ctx, left});
  }
};

void chained_post(const options& o) {
  const std::uint64_t n = o.num("handlers", 10'000'000);
  rt::io_context ctx;
  std::uint64_t left = n;
  asio::post(ctx, chain_link{&ctx, &left});
  auto c0 = process_cpu_ns();
  auto t0 = now_ns();
  ctx.run();
  auto t1 = now_ns();
  auto c1 = process_cpu_ns();
  if (left != 0) die("chained_post: not every handler ran");
  header("chained_post", 1)
      .add("handlers", n)
      .add("total_ms", double(t1 - t0) / 1e6)
      .add("ns_per_handler", double(t1 - t0) / double(n))
      .add("cpu_ns_per_handler", double(c1 - c0) / double(n))
      .raw("stats", context_statistics(ctx))
      .print();
}

// Pins the calling thread to the n-th CPU the process may use; false if there
// are not that many. burst_post puts the context and the poster on different
// cores: left to the scheduler, a wake-up may pull the context's thread onto
// the spinning poster's core, and the run measures time slices instead.
bool pin_to_nth_cpu(int n) {
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return false;
  for (int cpu = 0, seen = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &allowed) || seen++ != n) continue;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    return pthread_setaffinity_np(pthread_self(), sizeof one, &one) == 0;
  }
  return false;
}

// --- burst_post --------------------------------------------------------------------
// The producer posts a burst of B handlers, waits until the context has run all
// of them (so the context goes idle and must be woken), then posts the next.
void burst_post(const options& o) {
  const std::uint64_t n = o.num("handlers", 1'000'000);
  const std::uint64_t burst = o.num("burst", 1000);
  rt::io_context ctx;
  auto guard = asio::make_work_guard(ctx);
  std::atomic<std::uint64_t> done{0};
  std::uint64_t t_end = 0;
  std::thread runner([&] {
    pin_to_nth_cpu(0);
    ctx.run();
  });
  pin_to_nth_cpu(1);
  // Let the runner reach its idle wait first.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  auto t0 = now_ns();
  for (std::uint64_t posted = 0; posted < n;) {
    std::uint64_t b = std::min(burst, n - posted);
    for (std::uint64_t i = 0; i < b; ++i) {
      asio::post(ctx, [&done, &t_end, n] {
        auto d = done.load(std::memory_order_relaxed) + 1;
        if (d == n) t_end = now_ns();
        done.store(d, std::memory_order_release);
      });
    }
    posted += b;
    while (done.load(std::memory_order_acquire) < posted) {
#if defined(__x86_64__)
      __builtin_ia32_pause();
#endif
    }
  }
  guard.reset();
  runner.join();
  header("burst_post", 1)
      .add("handlers", n)
      .add("burst", burst)
      .add("total_ms", double(t_end - t0) / 1e6)
      .add("ns_per_handler", double(t_end - t0) / double(n))
      .raw("stats", context_statistics(ctx))
      .print();
}

// --- timer_storm -------------------------------------------------------------------
// Arms N timers whose expiries are spread (in a shuffled order) over
// [start + D, start + D + W], then runs until every one has fired.
void timer_storm(const options& o) {
  const std::uint64_t n = o.num("timers", 1'000'000);
  const auto delay = std::chrono::milliseconds(o.num("delay-ms", 300));
  const auto window_ns = o.num("window-ms", 100) * 1'000'000;
  rt::io_context ctx;
  std::vector<std::unique_ptr<rt::steady_timer>> timers;
  timers.reserve(n);
  std::uint64_t fired = 0, t_last = 0;
  auto c0 = process_cpu_ns();
  auto t0 = now_ns();
  auto base = std::chrono::steady_clock::now() + delay;
  for (std::uint64_t i = 0; i < n; ++i) {
    auto& t = timers.emplace_back(std::make_unique<rt::steady_timer>(ctx));
    std::uint64_t slot = (i * 7919) % n;  // shuffled, evenly spread
    t->expires_at(base + std::chrono::nanoseconds(slot * window_ns / n));
    t->async_wait([&](const boost::system::error_code& ec) {
      if (ec) die("timer_storm: wait failed");
      if (++fired == n) t_last = now_ns();
    });
  }
  auto t_armed = now_ns();
  ctx.run();
  auto c1 = process_cpu_ns();
  if (fired != n) die("timer_storm: not every timer fired");
  auto last_expiry_ns = double(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   base.time_since_epoch()).count()) +
                        double(window_ns);
  // steady_clock and CLOCK_MONOTONIC are the same clock on Linux.
  header("timer_storm", 1)
      .add("timers", n)
      .add("arm_ms", double(t_armed - t0) / 1e6)
      .add("arm_ns_per_timer", double(t_armed - t0) / double(n))
      .add("total_ms", double(t_last - t0) / 1e6)
      .add("last_fired_late_ms", (double(t_last) - last_expiry_ns) / 1e6)
      .add("cpu_ns_per_timer", double(c1 - c0) / double(n))
      .raw("stats", context_statistics(ctx))
      .print();
}

// --- sleep_precision ---------------------------------------------------------------
void sleep_precision(const options& o) {
  const std::uint64_t n = o.num("count", 1000);
  const auto sleep = std::chrono::microseconds(o.num("sleep-us", 1000));
  rt::io_context ctx;
  rt::steady_timer timer(ctx);
  std::vector<double> over_us;
  over_us.reserve(n);
  std::uint64_t started = 0;
  std::function<void()> next = [&] {
    started = now_ns();
    timer.expires_after(sleep);
    timer.async_wait([&](const boost::system::error_code& ec) {
      if (ec) die("sleep_precision: wait failed");
      over_us.push_back(double(now_ns() - started) / 1e3 - double(sleep.count()));
      if (over_us.size() < n) next();
    });
  };
  asio::post(ctx, next);
  ctx.run();
  header("sleep_precision", 1)
      .add("count", n)
      .add("sleep_us", std::uint64_t(sleep.count()))
      .add("mean_over_us", mean(over_us))
      .add("p50_over_us", percentile(over_us, 50))
      .add("p99_over_us", percentile(over_us, 99))
      .add("max_over_us", percentile(over_us, 100))
      .raw("stats", context_statistics(ctx))
      .print();
}

// --- Tokio runtime benchmark shapes --------------------------------------------------
// Each iteration is started from inside the context and, when finished, starts
// the next one, so no thread outside the context takes part in the timing.

// spawn_many: one handler posts N handlers; the last to finish starts the next round.
template <class Ctx>
struct spawn_many_state {
  Ctx& ctx;
  std::uint64_t tasks, iters;
  std::atomic<std::uint64_t> remaining{0};
  std::uint64_t round = 0;
  void start_round() {
    remaining.store(tasks, std::memory_order_relaxed);
    for (std::uint64_t i = 0; i < tasks; ++i)
      asio::post(ctx, [this] {
        if (remaining.fetch_sub(1, std::memory_order_acq_rel) == 1 && ++round < iters)
          asio::post(ctx, [this] { start_round(); });
      });
  }
};

// yield_many: N tasks, each re-posting itself Y times.
template <class Ctx>
struct yield_task {
  Ctx* ctx;
  std::uint64_t left;
  void operator()() {
    if (--left != 0) asio::post(*ctx, std::move(*this));
  }
};

// ping_pong: N pings per round; a ping posts a pong, the pong posts the reply,
// the reply counts down; the last reply starts the next round.
template <class Ctx>
struct ping_pong_state {
  Ctx& ctx;
  std::uint64_t pings, iters;
  std::atomic<std::uint64_t> remaining{0};
  std::uint64_t round = 0;
  void reply() {
    if (remaining.fetch_sub(1, std::memory_order_acq_rel) == 1 && ++round < iters)
      asio::post(ctx, [this] { start_round(); });
  }
  void start_round() {
    remaining.store(pings, std::memory_order_relaxed);
    for (std::uint64_t i = 0; i < pings; ++i)
      asio::post(ctx, [this] {                                 // ping
        asio::post(ctx, [this] {                               // pong
          asio::post(ctx, [this] { reply(); });                // reply
        });
      });
  }
};

// chained_spawn: a chain of N posts per round; its end starts the next round.
template <class Ctx>
struct chained_spawn_state {
  Ctx& ctx;
  std::uint64_t depth, iters, round = 0;
  void link(std::uint64_t left) {
    if (left != 0) {
      asio::post(ctx, [this, left] { link(left - 1); });
    } else if (++round < iters) {
      asio::post(ctx, [this] { link(depth); });
    }
  }
};

// Waits for the work to finish: run on `threads` threads for an io_context,
// join for a thread pool (whose workers already run).
template <class Ctx>
void finish(Ctx& ctx, unsigned threads) {
  if constexpr (requires { ctx.run(); }) run_on(ctx, threads);
  else ctx.join();
}

template <class Ctx, class Start>
void timed_rounds(const char* scenario, unsigned threads, Ctx& ctx, std::uint64_t ops,
                  Start&& start) {
  auto t0 = now_ns();
  start();
  finish(ctx, threads);
  auto t1 = now_ns();
  json_line j = header(scenario, threads);
  j.add("ops", ops)
      .add("total_ms", double(t1 - t0) / 1e6)
      .add("ns_per_op", double(t1 - t0) / double(ops));
  if constexpr (requires { ctx.run(); }) j.add("context", "io_context");
  else j.add("context", "thread_pool");
  j.raw("stats", context_statistics(ctx)).print();
}

template <class Ctx>
void tokio_shape(Ctx& ctx, const std::string& name, unsigned threads, const options& o) {
  if (name == "spawn_many") {
    spawn_many_state<Ctx> s{ctx, o.num("tasks", 10'000), o.num("iters", 100)};
    timed_rounds("spawn_many", threads, ctx, s.tasks * s.iters,
                 [&] { asio::post(ctx, [&] { s.start_round(); }); });
    if (s.round != s.iters) die("spawn_many: rounds missing");
  } else if (name == "yield_many") {
    const auto tasks = o.num("tasks", 200), yields = o.num("yields", 1000);
    timed_rounds("yield_many", threads, ctx, tasks * yields, [&] {
      for (std::uint64_t i = 0; i < tasks; ++i) asio::post(ctx, yield_task<Ctx>{&ctx, yields});
    });
  } else if (name == "ping_pong") {
    ping_pong_state<Ctx> s{ctx, o.num("pings", 1000), o.num("iters", 300)};
    timed_rounds("ping_pong", threads, ctx, s.pings * s.iters,
                 [&] { asio::post(ctx, [&] { s.start_round(); }); });
    if (s.round != s.iters) die("ping_pong: rounds missing");
  } else if (name == "spawn_outside") {
    // Another thread (this one) submits N handlers; the clock stops when the
    // last has run. With --busy 1, every worker also runs a stream of its
    // own handlers (self-posting chains) until then.
    const auto tasks = o.num("tasks", 1'000'000);
    const bool busy = o.num("busy", 0) != 0;
    std::atomic<std::uint64_t> remaining{tasks};
    std::atomic<bool> done{false};
    struct spinner {
      Ctx* ctx;
      std::atomic<bool>* done;
      void operator()() const {
        if (!done->load(std::memory_order_relaxed)) asio::post(*ctx, *this);
      }
    };
    auto guard = asio::make_work_guard(ctx); // until the last handler has run
    auto work = [&] {
      if (remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        done.store(true);
        asio::post(ctx, [&] { guard.reset(); });
      }
    };
    timed_rounds(busy ? "spawn_outside_busy" : "spawn_outside", threads, ctx, tasks, [&] {
      if (busy)
        for (unsigned t = 0; t < threads; ++t) asio::post(ctx, spinner{&ctx, &done});
      if constexpr (requires { ctx.run(); }) {
        // An io_context runs only inside run(): feed it from a side thread
        // while this one runs it.
        std::thread feeder([&] { for (std::uint64_t i = 0; i < tasks; ++i) asio::post(ctx, work); });
        run_on(ctx, threads);
        feeder.join();
      } else {
        for (std::uint64_t i = 0; i < tasks; ++i) asio::post(ctx, work);
      }
    });
    if (remaining.load() != 0) die("spawn_outside: handlers missing");
  } else {
    chained_spawn_state<Ctx> s{ctx, o.num("depth", 1000), o.num("iters", 1000)};
    timed_rounds("chained_spawn", threads, ctx, s.depth * s.iters,
                 [&] { asio::post(ctx, [&] { s.link(s.depth); }); });
    if (s.round != s.iters) die("chained_spawn: rounds missing");
  }
}

// Tokio's shapes on an io_context run by --threads threads, or with --pool 1
// on a thread pool of --threads workers (zokio::thread_pool or
// asio::thread_pool).
void tokio_shape(const std::string& name, const options& o) {
  const auto threads = unsigned(o.num("threads", 1));
  if (o.num("pool", 0) != 0) {
    rt::thread_pool pool(threads);
    tokio_shape(pool, name, threads, o);
  } else {
    rt::io_context ctx;
    tokio_shape(ctx, name, threads, o);
  }
}


// --- future_ops ------------------------------------------------------------------
// One operation that completes without waiting for anything external, consumed
// through each completion style, on a fresh io_context per measurement:
//   timer  a steady_timer wait of zero length
//   post   a round trip through the context's queue (asio::post)
//   tcp    TCP echo read: on a connected loopback pair (TCP_NODELAY), 64 bytes
//          written to one end with a blocking write, then read from the
//          other with async_read_some through the token (the bytes are there
//          when the read starts, so it measures the read's completion path)
// Styles (key <op>_<style>_ns):
//   zokio_future       co_await op(zokio::use_future) in an awaitable coroutine (zokio only)
//   zokio_future_then  a chain op(zokio::use_future).then(next) (zokio only)
//   zokio_future_get   op(zokio::use_future).get() on a thread that does not run
//                      the context; the context runs on a second thread (zokio only)
//   asio_future        op(asio::use_future).get(), std::future, the same two threads
//   use_awaitable      co_await op(asio::use_awaitable)
//   callback           a plain completion handler chain
// The two-thread styles run a tenth as many operations, and tcp a tenth as
// many as the others (so its two-thread styles a hundredth). Each figure is the
// median of --repeats measurements, of wall time / operations (<op>_<style>_ns)
// and of the process's CPU time / operations (<op>_<style>_cpu_ns, which a
// busy machine disturbs less); the styles are interleaved, so a disturbance
// of the machine spreads over all of them.
//
// Each operation type owns what it needs, made on the measurement's context.
struct timer_wait_op {
  static constexpr const char* name = "timer";
  rt::steady_timer timer;
  explicit timer_wait_op(rt::io_context& ctx) : timer(ctx) {}
  template <class Token>
  auto operator()(Token&& token) {
    timer.expires_after(std::chrono::nanoseconds(0));
    return timer.async_wait(std::forward<Token>(token));
  }
};

struct post_round_trip_op {
  static constexpr const char* name = "post";
  rt::io_context* ctx;
  explicit post_round_trip_op(rt::io_context& c) : ctx(&c) {}
  template <class Token>
  auto operator()(Token&& token) {
    return asio::post(*ctx, std::forward<Token>(token));
  }
};

struct tcp_echo_read_op {
  static constexpr const char* name = "tcp";
  static constexpr std::size_t message_size = 64;
  rt::ip::tcp::socket writer, reader;
  char out[message_size] = {}, in[message_size] = {};
  explicit tcp_echo_read_op(rt::io_context& ctx) : writer(ctx), reader(ctx) {
    rt::ip::tcp::acceptor acceptor(ctx, {asio::ip::address_v4::loopback(), 0});
    writer.connect(acceptor.local_endpoint());
    acceptor.accept(reader);
    writer.set_option(asio::ip::tcp::no_delay(true));
  }
  template <class Token>
  auto operator()(Token&& token) {
    asio::write(writer, asio::buffer(out));
    return reader.async_read_some(asio::buffer(in), std::forward<Token>(token));
  }
};

// ns per operation of `body` run once on a fresh context with `threads` == 1
// (the body starts the work and the calling thread runs the context) or 2
// (a second thread runs the context while the body waits on this one).
struct op_cost {
  double wall_ns;  // wall time per operation
  double cpu_ns;   // CPU time of the process (all threads) per operation
};

template <class Op, class Body>
op_cost measure_op(std::uint64_t n, bool other_thread, Body&& body) {
  rt::io_context ctx;
  Op op(ctx);
  std::uint64_t t0 = 0, t1 = 0;
  const std::uint64_t c0 = process_cpu_ns();
  if (other_thread) {
    auto guard = asio::make_work_guard(ctx);
    std::thread runner([&] { ctx.run(); });
    t0 = now_ns();
    body(ctx, op, n);
    t1 = now_ns();
    guard.reset();
    runner.join();
  } else {
    t0 = now_ns();
    body(ctx, op, n);
    ctx.run();
    t1 = now_ns();
  }
  const std::uint64_t c1 = process_cpu_ns();
  // PERF_FUTURE_STATS=1: the context's counters of each measurement on stderr.
  if (std::getenv("PERF_FUTURE_STATS"))
    std::fprintf(stderr, "%s %.1f ns/op %s\n", Op::name, double(t1 - t0) / double(n),
                 context_statistics(ctx).c_str());
  return {double(t1 - t0) / double(n), double(c1 - c0) / double(n)};
}

template <class Op>
struct callback_step {
  Op* op;
  std::uint64_t* left;
  void operator()(boost::system::error_code = {}, std::size_t = 0) {
    if (--*left > 0) (*op)(*this);
  }
};

#if defined(PERF_RUNTIME_ZOKIO)
template <class Op>
struct then_step {
  Op* op;
  std::uint64_t* left;
  void operator()(std::exception_ptr) {
    if (--*left > 0) (*op)(zokio::use_future).then(*this);
  }
  void operator()(std::exception_ptr e, std::size_t) { (*this)(e); }
};
#endif

template <class Op>
void future_ops_for(json_line& j, std::uint64_t n, unsigned repeats) {
  struct style {
    const char* name;
    bool other_thread;
    void (*body)(rt::io_context&, Op&, std::uint64_t);
  };
  std::vector<style> styles;
#if defined(PERF_RUNTIME_ZOKIO)
  styles.push_back({"zokio_future", false, [](rt::io_context& ctx, Op& op, std::uint64_t k) {
    asio::co_spawn(ctx, [&op, k]() -> asio::awaitable<void> {
      for (std::uint64_t i = 0; i < k; ++i) co_await op(zokio::use_future);
    }, asio::detached);
  }});
  styles.push_back({"zokio_future_then", false, [](rt::io_context& ctx, Op& op, std::uint64_t k) {
    // The chain's counter lives as long as the context runs (measure_op).
    static thread_local std::uint64_t left;
    left = k;
    asio::post(ctx, [&op] { op(zokio::use_future).then(then_step<Op>{&op, &left}); });
  }});
  styles.push_back({"zokio_future_get", true, [](rt::io_context&, Op& op, std::uint64_t k) {
    for (std::uint64_t i = 0; i < k; ++i) op(zokio::use_future).get();
  }});
#endif
  styles.push_back({"asio_future", true, [](rt::io_context&, Op& op, std::uint64_t k) {
    for (std::uint64_t i = 0; i < k; ++i) op(asio::use_future).get();
  }});
  styles.push_back({"use_awaitable", false, [](rt::io_context& ctx, Op& op, std::uint64_t k) {
    asio::co_spawn(ctx, [&op, k]() -> asio::awaitable<void> {
      for (std::uint64_t i = 0; i < k; ++i) co_await op(asio::use_awaitable);
    }, asio::detached);
  }});
  styles.push_back({"callback", false, [](rt::io_context& ctx, Op& op, std::uint64_t k) {
    static thread_local std::uint64_t left;
    left = k;
    asio::post(ctx, [&op] { op(callback_step<Op>{&op, &left}); });
  }});

  std::vector<std::vector<double>> wall(styles.size()), cpu(styles.size());
  for (unsigned r = 0; r < repeats; ++r)
    for (std::size_t i = 0; i < styles.size(); ++i) {
      const style& s = styles[i];
      std::uint64_t k = s.other_thread ? std::max<std::uint64_t>(n / 10, 1) : n;
      op_cost c = measure_op<Op>(k, s.other_thread, s.body);
      wall[i].push_back(c.wall_ns);
      cpu[i].push_back(c.cpu_ns);
    }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  for (std::size_t i = 0; i < styles.size(); ++i) {
    const std::string key = std::string(Op::name) + "_" + styles[i].name;
    j.add(key + "_ns", median(wall[i]));
    j.add(key + "_cpu_ns", median(cpu[i]));
  }
}

void future_ops(const options& o) {
  const std::uint64_t n = o.num("ops", 200'000);
  const auto repeats = unsigned(std::max<std::uint64_t>(1, o.num("repeats", 3)));
  json_line j = header("future_ops", 1);
  j.add("ops", n).add("repeats", std::uint64_t(repeats));
  // --op timer|post|tcp: only that operation (for profiling one row).
  const std::string only = o.str("op");
  if (only.empty() || only == timer_wait_op::name) future_ops_for<timer_wait_op>(j, n, repeats);
  if (only.empty() || only == post_round_trip_op::name) future_ops_for<post_round_trip_op>(j, n, repeats);
  // Two system calls per TCP read (about 10 us of CPU here): a tenth as many
  // operations keeps the run short and each measurement well above noise.
  if (only.empty() || only == tcp_echo_read_op::name)
    future_ops_for<tcp_echo_read_op>(j, std::max<std::uint64_t>(n / 10, 1), repeats);
  j.print();
}

// --- file_io -----------------------------------------------------------------
// Reads (4 KiB at random aligned offsets, or 1 MiB sequential) or 1 MiB
// sequential writes on a file the runner made and read once (so it is in
// the page cache): D operations in flight, N in all. Random offsets come
// from one xorshift sequence, so every runtime reads the same offsets.
struct file_job {
  std::string mode;
  std::size_t block;
  std::uint64_t file_size;
  std::uint64_t blocks;
  std::atomic<std::uint64_t> issued{0};
  std::uint64_t total;
  std::uint64_t seed = 88172645463325252ull;

  // The offset of operation i (any thread).
  std::uint64_t offset(std::uint64_t i) const {
    if (mode != "rand4k") return (i % blocks) * block;
    std::uint64_t x = seed ^ (i * 0x9E3779B97F4A7C15ull);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return (x % blocks) * block;
  }
  bool writes() const { return mode == "seqwrite"; }
};

void file_io_pread(file_job& job, int fd, unsigned depth) {
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < depth; ++t)
    threads.emplace_back([&] {
      std::vector<char> buf(job.block, 'w');
      for (;;) {
        std::uint64_t i = job.issued.fetch_add(1, std::memory_order_relaxed);
        if (i >= job.total) return;
        ssize_t r = job.writes() ? ::pwrite(fd, buf.data(), job.block, off_t(job.offset(i)))
                                 : ::pread(fd, buf.data(), job.block, off_t(job.offset(i)));
        if (r != ssize_t(job.block)) die("pread/pwrite");
      }
    });
  for (auto& t : threads) t.join();
}

#if defined(PERF_RUNTIME_ZOKIO) || defined(BOOST_ASIO_HAS_FILE)
// One chain per slot of depth: each completion issues the next operation.
struct file_chain {
  file_job* job;
  rt::random_access_file* file;
  std::vector<char> buf;
  void next() {
    std::uint64_t i = job->issued.fetch_add(1, std::memory_order_relaxed);
    if (i >= job->total) return;
    auto done = [this](boost::system::error_code ec, std::size_t n) {
      if (ec || n != job->block) die("file transfer");
      next();
    };
    if (job->writes())
      asio::async_write_at(*file, job->offset(i), asio::buffer(buf), done);
    else
      asio::async_read_at(*file, job->offset(i), asio::buffer(buf), done);
  }
};
#endif

void file_io(const options& o) {
  const std::string path = o.str("file");
  if (path.empty()) die("file_io needs --file");
  file_job job;
  job.mode = o.str("mode", "rand4k");
  job.block = job.mode == "rand4k" ? 4096 : (1u << 20);
  job.total = o.num("ops", 100'000);
  const auto depth = unsigned(std::max<std::uint64_t>(1, o.num("depth", 1)));
  const std::string impl = o.str("impl");
  const int flags = job.writes() ? O_RDWR : O_RDONLY;
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) die("open --file");
  job.file_size = std::uint64_t(::lseek(fd, 0, SEEK_END));
  job.blocks = job.file_size / job.block;
  if (job.blocks == 0) die("file smaller than one block");
  json_line j = header("file_io", 1);
  j.add("mode", job.mode).add("depth", std::uint64_t(depth)).add("ops", job.total);
  const std::uint64_t c0 = process_cpu_ns(), t0 = now_ns();
  if (impl == "pread") {
    j.add("impl", "pread");
    file_io_pread(job, fd, depth);
    ::close(fd);
  } else {
#if defined(PERF_RUNTIME_ZOKIO) || defined(BOOST_ASIO_HAS_FILE)
    rt::io_context ctx(1);
    rt::random_access_file file(ctx, fd);
    std::vector<file_chain> chains(depth);
    for (auto& c : chains) {
      c.job = &job;
      c.file = &file;
      c.buf.assign(job.block, 'w');
    }
    asio::post(ctx, [&] { for (auto& c : chains) c.next(); });
    ctx.run();
#if defined(PERF_RUNTIME_ZOKIO)
    j.add("blocking_calls", std::uint64_t(ctx.statistics().blocking_calls));
#endif
#else
    ::close(fd);
    die("this runtime has no files (Asio builds them only with its io_uring backend)");
#endif
  }
  const std::uint64_t wall = now_ns() - t0, cpu = process_cpu_ns() - c0;
  j.add("ops_per_sec", double(job.total) * 1e9 / double(wall));
  j.add("mib_per_sec", double(job.total) * double(job.block) / double(1 << 20) * 1e9 / double(wall));
  j.add("cpu_ns_per_op", double(cpu) / double(job.total));
  j.print();
}

// --- signal_latency ------------------------------------------------------------
// Another thread raises SIGUSR1 for this process (kill), stamping the time;
// the signal_set's handler takes the difference and arms the next wait,
// then lets the sender go on. Latency: kill to handler, in microseconds.
void signal_latency(const options& o) {
  const std::uint64_t n = o.num("count", 2000);
  rt::io_context ctx(1);
  rt::signal_set set(ctx, SIGUSR1);
  std::atomic<std::uint64_t> sent_at{0};
  std::atomic<std::uint64_t> armed{0};
  std::vector<double> lat;
  lat.reserve(n);
  std::uint64_t got = 0;
  std::function<void(boost::system::error_code, int)> on_signal = [&](boost::system::error_code ec, int) {
    if (ec) die("signal wait");
    lat.push_back(double(now_ns() - sent_at.load(std::memory_order_acquire)) / 1000.0);
    if (++got < n) {
      set.async_wait(on_signal);
      armed.store(got, std::memory_order_release);
    }
  };
  set.async_wait(on_signal);
  // The sender runs with SIGUSR1 blocked, so the kernel delivers it to the
  // thread that runs the context (as for a signal from another process
  // when the program blocks it in its other threads).
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  std::thread sender([&] {
    pthread_sigmask(SIG_BLOCK, &usr1, nullptr);
    for (std::uint64_t i = 0; i < n; ++i) {
      while (armed.load(std::memory_order_acquire) < i) std::this_thread::yield();
      // A quiet gap: the context is asleep when the signal comes.
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      sent_at.store(now_ns(), std::memory_order_release);
      ::kill(::getpid(), SIGUSR1);
    }
  });
  ctx.run();
  sender.join();
  json_line j = header("signal_latency", 1);
  j.add("count", n).add("p50_us", percentile(lat, 50)).add("p99_us", percentile(lat, 99));
  j.print();
}

// --- spawn_wait ----------------------------------------------------------------
// Spawns /bin/true and waits for its exit asynchronously, one after another.
void spawn_wait(const options& o) {
  const std::uint64_t n = o.num("count", 500);
  rt::io_context ctx(1);
  std::uint64_t done = 0;
#if defined(PERF_RUNTIME_ZOKIO)
  std::unique_ptr<zokio::process> p;
  std::function<void()> next = [&] {
    p = std::make_unique<zokio::process>(ctx, "/bin/true");
    p->async_wait([&](boost::system::error_code ec, int code) {
      if (ec || code != 0) die("spawn_wait");
      if (++done < n) asio::post(ctx, next);
    });
  };
#else
  namespace bp = boost::process::v2;
  std::unique_ptr<bp::process> p;
  std::function<void()> next = [&] {
    p = std::make_unique<bp::process>(ctx, "/bin/true", std::vector<std::string>{});
    p->async_wait([&](boost::system::error_code ec, int code) {
      if (ec || code != 0) die("spawn_wait");
      if (++done < n) asio::post(ctx, next);
    });
  };
#endif
  const std::uint64_t c0 = process_cpu_ns(), t0 = now_ns();
  asio::post(ctx, next);
  ctx.run();
  const std::uint64_t wall = now_ns() - t0, cpu = process_cpu_ns() - c0;
  p.reset();
  json_line j = header("spawn_wait", 1);
  j.add("count", n).add("us_per_spawn", double(wall) / double(n) / 1000.0)
      .add("cpu_us_per_spawn", double(cpu) / double(n) / 1000.0);
  j.print();
}

}  // namespace

int main(int argc, char** argv) {
  perf::options o(argc, argv);
  if (o.positional().empty()) {
    std::fprintf(stderr, "usage: %s SCENARIO [--option value ...]\n", argv[0]);
    return 2;
  }
  const std::string& s = o.positional()[0];
  if (s == "chained_post") chained_post(o);
  else if (s == "burst_post") burst_post(o);
  else if (s == "timer_storm") timer_storm(o);
  else if (s == "sleep_precision") sleep_precision(o);
  else if (s == "spawn_many" || s == "yield_many" || s == "ping_pong" || s == "chained_spawn"
           || s == "spawn_outside")
    tokio_shape(s, o);
  else if (s == "future_ops") future_ops(o);
  else if (s == "file_io") file_io(o);
  else if (s == "signal_latency") signal_latency(o);
  else if (s == "spawn_wait") spawn_wait(o);
  else {
    std::fprintf(stderr, "unknown scenario '%s'\n", s.c_str());
    return 2;
  }
  return 0;
}
