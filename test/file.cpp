// Tests of zokio::stream_file and zokio::random_access_file on every backend
// (io_uring requests; the blocking pool on epoll and kqueue).
#include <zokio/async_open_file.hpp>
#include <zokio/random_access_file.hpp>
#include <zokio/stream_file.hpp>
#include <zokio/thread_pool.hpp>

#define BOOST_TEST_MODULE file
#include <boost/test/unit_test.hpp>

#include <support/descriptors.hpp>
#include <support/run.hpp>

#include <zokio/backend.hpp>
#include <zokio/detail/uring/net_features.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_at.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/write_at.hpp>

#include <array>
#include <cstdlib>
#include <atomic>
#include <filesystem>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace asio = boost::asio;
namespace fs = std::filesystem;
using error_code = boost::system::error_code;

namespace {

// A file name of its own in the temporary directory, removed afterwards.
struct temp_path
{
  fs::path path;
  temp_path()
  {
    static std::atomic<int> n{0};
    path = fs::temp_directory_path()
        / ("zokio-file-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
  }
  ~temp_path()
  {
    std::error_code ignored;
    fs::remove(path, ignored);
  }
  std::string str() const { return path.string(); }
};

std::vector<char> pattern(std::size_t n, unsigned seed = 1)
{
  std::vector<char> v(n);
  for (std::size_t i = 0; i < n; ++i)
    v[i] = static_cast<char>(((i + seed) * 2654435761u) >> 24);
  return v;
}

bool on_readiness() { return zokio::current_backend().backend != zokio::backend::io_uring; }

using zokio_test::open_descriptors;

// libkqueue (the kqueue backend's vehicle on Linux) keeps descriptors of
// its own per kqueue and a monitoring thread: counts are not comparable there.
bool descriptors_comparable()
{
  return zokio::current_backend().backend != zokio::backend::kqueue;
}

// Whether the ring of this kernel makes the file request (else the call is
// made on the initiating thread: no submission).
bool ring_makes(bool zokio::detail::uring::net_features::* f)
{
  return !on_readiness() && zokio::detail::uring::features().*f;
}

} // namespace

namespace compile {

static_assert(std::is_same_v<zokio::stream_file::native_handle_type, int>);
static_assert(zokio::file_base::read_only == O_RDONLY);
static_assert(zokio::file_base::seek_end == SEEK_END);
static_assert(!std::is_copy_constructible_v<zokio::random_access_file>);

[[maybe_unused]] asio::awaitable<void> coroutine(zokio::stream_file& s, zokio::random_access_file& r)
{
  char buf[16];
  std::size_t n = co_await s.async_read_some(asio::buffer(buf), asio::use_awaitable);
  n += co_await s.async_write_some(asio::buffer(buf), asio::use_awaitable);
  n += co_await r.async_read_some_at(0, asio::buffer(buf), asio::use_awaitable);
  n += co_await r.async_write_some_at(0, asio::buffer(buf), asio::use_awaitable);
  n += co_await asio::async_read_at(r, 0, asio::buffer(buf), asio::use_awaitable);
  n += co_await asio::async_write_at(r, 0, asio::buffer(buf), asio::use_awaitable);
  co_await r.async_sync_data(asio::use_awaitable);
  (void)n;
}

} // namespace compile

BOOST_AUTO_TEST_CASE(a_stream_file_is_written_and_read_back_through_composed_operations)
{
  temp_path tmp;
  zokio::io_context ctx;
  const auto data = pattern(3 << 20);
  error_code wec;
  {
    zokio::stream_file out(ctx, tmp.str(),
        zokio::file_base::write_only | zokio::file_base::create | zokio::file_base::truncate);
    // Several buffers at once (WRITEV).
    std::array<asio::const_buffer, 3> bufs{asio::buffer(data.data(), 100),
        asio::buffer(data.data() + 100, 1 << 20), asio::buffer(data.data() + 100 + (1 << 20), data.size() - 100 - (1 << 20))};
    asio::async_write(out, bufs, [&](error_code e, std::size_t n) {
      wec = e;
      BOOST_TEST(n == data.size());
    });
    zokio_test::run_bounded(ctx);
    BOOST_TEST(!wec);
    BOOST_TEST(out.size() == data.size());
  }
  zokio::stream_file in(ctx, tmp.str(), zokio::file_base::read_only);
  std::vector<char> got(data.size());
  error_code rec;
  ctx.restart();
  asio::async_read(in, asio::buffer(got), [&](error_code e, std::size_t n) {
    rec = e;
    BOOST_TEST(n == data.size());
  });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(!rec);
  BOOST_TEST((got == data));

  // At the end: eof, asynchronously and synchronously; seek back and read.
  char c;
  error_code eof;
  ctx.restart();
  in.async_read_some(asio::buffer(&c, 1), [&](error_code e, std::size_t) { eof = e; });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(eof == asio::error::eof);
  in.read_some(asio::buffer(&c, 1), eof);
  BOOST_TEST(eof == asio::error::eof);
  BOOST_TEST(in.seek(-10, zokio::file_base::seek_end) == data.size() - 10);
  std::array<char, 10> tail{};
  BOOST_TEST(asio::read(in, asio::buffer(tail)) == 10u);
  BOOST_TEST(std::equal(tail.begin(), tail.end(), data.end() - 10));
}

BOOST_AUTO_TEST_CASE(random_access_reads_in_flight_at_many_offsets)
{
  temp_path tmp;
  zokio::io_context ctx;
  const auto data = pattern(1 << 20, 7);
  zokio::random_access_file f(ctx, tmp.str(),
      zokio::file_base::read_write | zokio::file_base::create | zokio::file_base::exclusive);
  BOOST_TEST(asio::write_at(f, 0, asio::buffer(data)) == data.size());
  constexpr std::size_t block = 4096;
  const std::size_t blocks = data.size() / block;
  std::vector<char> got(data.size());
  std::size_t done = 0;
  // Every block at once, in reverse order.
  for (std::size_t i = blocks; i-- > 0;)
    asio::async_read_at(f, i * block, asio::buffer(got.data() + i * block, block),
        [&](error_code e, std::size_t n) {
          BOOST_TEST(!e);
          BOOST_TEST(n == block);
          ++done;
        });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(done == blocks);
  BOOST_TEST((got == data));

  // Past the end: eof; a write far out extends the file.
  char c;
  error_code ec;
  ctx.restart();
  f.async_read_some_at(data.size(), asio::buffer(&c, 1), [&](error_code e, std::size_t) { ec = e; });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(ec == asio::error::eof);
  ctx.restart();
  f.async_write_some_at(5 << 20, asio::buffer("z", 1), [&](error_code e, std::size_t) { ec = e; });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(!ec);
  BOOST_TEST(f.size() == (5u << 20) + 1);
  f.resize(10);
  BOOST_TEST(f.size() == 10u);
  BOOST_TEST(f.read_some_at(3, asio::buffer(&c, 1)) == 1u);
  BOOST_TEST(c == data[3]);
}

BOOST_AUTO_TEST_CASE(syncs_synchronous_and_asynchronous)
{
  temp_path tmp;
  zokio::io_context ctx;
  zokio::random_access_file f(ctx, tmp.str(), zokio::file_base::write_only | zokio::file_base::create);
  f.write_some_at(0, asio::buffer("abc", 3));
  f.sync_all();
  f.sync_data();
  error_code a = asio::error::would_block, d = asio::error::would_block;
  f.async_sync_all([&](error_code e) { a = e; });
  f.async_sync_data([&](error_code e) { d = e; });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(!a);
  BOOST_TEST(!d);
}

BOOST_AUTO_TEST_CASE(open_errors_and_closed_files)
{
  temp_path tmp;
  zokio::io_context ctx;
  zokio::stream_file f(ctx);
  error_code ec;
  f.open(tmp.str(), zokio::file_base::read_only, ec);
  BOOST_TEST(ec == boost::system::errc::no_such_file_or_directory);
  BOOST_TEST(!f.is_open());
  f.open(tmp.str(), zokio::file_base::write_only | zokio::file_base::create, ec);
  BOOST_TEST(!ec);
  f.open(tmp.str(), zokio::file_base::read_only, ec);
  BOOST_TEST(ec == asio::error::already_open);
  zokio::stream_file g(ctx);
  g.open(tmp.str(), zokio::file_base::write_only | zokio::file_base::create | zokio::file_base::exclusive, ec);
  BOOST_TEST(ec == boost::system::errc::file_exists);
  BOOST_CHECK_THROW(zokio::random_access_file(ctx, "/nonexistent/dir/file", zokio::file_base::read_only),
      boost::system::system_error);

  // A closed file: bad_descriptor everywhere, asynchronously too.
  char c;
  g.read_some(asio::buffer(&c, 1), ec);
  BOOST_TEST(ec == asio::error::bad_descriptor);
  g.size(ec);
  BOOST_TEST(ec == asio::error::bad_descriptor);
  g.sync_all(ec);
  BOOST_TEST(ec == asio::error::bad_descriptor);
  error_code ra, sa;
  g.async_read_some(asio::buffer(&c, 1), [&](error_code e, std::size_t) { ra = e; });
  g.async_sync_all([&](error_code e) { sa = e; });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(ra == asio::error::bad_descriptor);
  BOOST_TEST(sa == asio::error::bad_descriptor);

  // Writing a read-only file: the kernel's error.
  zokio::stream_file ro(ctx, tmp.str(), zokio::file_base::read_only);
  error_code we;
  ctx.restart();
  ro.async_write_some(asio::buffer("x", 1), [&](error_code e, std::size_t) { we = e; });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(we == asio::error::bad_descriptor);

  // release() keeps the descriptor open.
  int fd = ro.release();
  BOOST_TEST(!ro.is_open());
  BOOST_TEST(::fcntl(fd, F_GETFD) != -1);
  ::close(fd);
}

BOOST_AUTO_TEST_CASE(close_with_transfers_pending_completes_each_once)
{
  temp_path tmp;
  zokio::io_context ctx;
  const auto data = pattern(8 << 20, 3);
  zokio::random_access_file f(ctx, tmp.str(),
      zokio::file_base::read_write | zokio::file_base::create);
  asio::write_at(f, 0, asio::buffer(data));
  const int fd = f.native_handle();
  std::vector<char> got(data.size());
  int completions = 0, ok = 0;
  for (std::size_t i = 0; i < 64; ++i)
    f.async_read_some_at(i * (128 << 10), asio::buffer(got.data() + i * (128 << 10), 128 << 10),
        [&](error_code e, std::size_t) {
          ++completions;
          ok += !e;
        });
  f.close();
  zokio_test::run_bounded(ctx);
  BOOST_TEST(completions == 64);
  BOOST_TEST_MESSAGE(ok << " of 64 reads had started when the file was closed");
  BOOST_TEST(::fcntl(fd, F_GETFD) == -1, "closed once every transfer came back");
}

BOOST_AUTO_TEST_CASE(the_readiness_backends_use_the_blocking_pool)
{
  temp_path tmp;
  zokio::io_context ctx;
  zokio::random_access_file f(ctx, tmp.str(), zokio::file_base::read_write | zokio::file_base::create);
  for (int i = 0; i < 10; ++i)
    f.async_write_some_at(i, asio::buffer("q", 1), [](error_code, std::size_t) {});
  zokio_test::run_bounded(ctx);
  auto s = ctx.statistics();
  if (on_readiness())
  {
    BOOST_TEST(s.blocking_calls == 10u);
    BOOST_TEST(s.blocking_threads >= 1u);
    BOOST_TEST(s.blocking_threads <= 8u);
  }
  else
  {
    BOOST_TEST(s.blocking_calls == 0u, "io_uring makes file requests itself");
  }
  BOOST_TEST(f.size() == 10u);
}

BOOST_AUTO_TEST_CASE(files_on_a_thread_pool_with_coroutines)
{
  temp_path tmp;
  const auto data = pattern(2 << 20, 11);
  {
    zokio::io_context ctx;
    zokio::random_access_file f(ctx, tmp.str(), zokio::file_base::write_only | zokio::file_base::create);
    asio::write_at(f, 0, asio::buffer(data));
  }
  zokio::thread_pool pool(2);
  zokio::random_access_file f(pool, tmp.str(), zokio::file_base::read_only);
  std::atomic<int> good{0};
  constexpr int readers = 16;
  const std::size_t part = data.size() / readers;
  for (int i = 0; i < readers; ++i)
  {
    asio::co_spawn(pool, [&, i]() -> asio::awaitable<void> {
      std::vector<char> buf(part);
      std::size_t n = co_await asio::async_read_at(f, i * part, asio::buffer(buf), asio::use_awaitable);
      if (n == part && std::equal(buf.begin(), buf.end(), data.begin() + i * part))
        ++good;
    }, asio::detached);
  }
  pool.join();
  BOOST_TEST(good.load() == readers);
}

BOOST_AUTO_TEST_CASE(a_directory_is_refused_clearly)
{
  zokio::io_context ctx;
  auto dir = fs::temp_directory_path().string();
  zokio::stream_file f(ctx);
  error_code ec;
  f.open(dir, zokio::file_base::write_only, ec);
  BOOST_TEST(ec == boost::system::errc::is_a_directory);
  // Read-only, a directory opens (as open(2) allows); reading it is EISDIR.
  f.open(dir, zokio::file_base::read_only, ec);
  BOOST_REQUIRE(!ec);
  char c;
  error_code rec;
  f.async_read_some(asio::buffer(&c, 1), [&](error_code e, std::size_t) { rec = e; });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(rec == boost::system::errc::is_a_directory);
}

// A tmpfs of 1 MiB (needs the right to mount; skipped with a message where
// the container refuses it).
struct small_tmpfs
{
  fs::path dir;
  bool mounted = false;
  std::string why;
  small_tmpfs()
  {
    dir = fs::temp_directory_path() / ("zokio-tmpfs-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    std::string cmd = "mount -t tmpfs -o size=1m zokio-test " + dir.string() + " 2>/dev/null";
    mounted = std::system(cmd.c_str()) == 0;
    if (!mounted)
      why = "mounting a tmpfs was refused (no CAP_SYS_ADMIN, or no mount(8))";
  }
  ~small_tmpfs()
  {
    if (mounted)
      (void)std::system(("umount " + dir.string()).c_str());
    std::error_code ignored;
    fs::remove(dir, ignored);
  }
};

BOOST_AUTO_TEST_CASE(a_full_disk_is_no_space_on_device)
{
  small_tmpfs t;
  if (!t.mounted)
  {
    BOOST_TEST_MESSAGE("skipped: " << t.why);
    return;
  }
  zokio::io_context ctx;
  zokio::stream_file f(ctx, (t.dir / "fill").string(),
      zokio::file_base::write_only | zokio::file_base::create);
  const auto data = pattern(4 << 20);
  error_code ec;
  std::size_t n = 0;
  asio::async_write(f, asio::buffer(data), [&](error_code e, std::size_t m) {
    ec = e;
    n = m;
  });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(ec == boost::system::errc::no_space_on_device);
  BOOST_TEST(n <= (1u << 20), "what fitted was written and counted");
  BOOST_TEST(f.size() == n);
}

BOOST_AUTO_TEST_CASE(async_open_file_opens_creates_and_reports_errors)
{
  temp_path tmp;
  const auto data = pattern(10000, 5);
  zokio::io_context ctx;

  // Created and written through the file it hands over.
  error_code ec = asio::error::would_block;
  zokio::stream_file out(ctx);
  zokio::async_open_file<zokio::stream_file>(ctx, tmp.str(),
      zokio::file_base::write_only | zokio::file_base::create | zokio::file_base::exclusive,
      [&](error_code e, zokio::stream_file f) {
        ec = e;
        out = std::move(f);
      });
  zokio_test::run_bounded(ctx);
  BOOST_REQUIRE(!ec);
  BOOST_REQUIRE(out.is_open());
  BOOST_TEST((::fcntl(out.native_handle(), F_GETFD) & FD_CLOEXEC) != 0, "close-on-exec");
  asio::write(out, asio::buffer(data));
  out.close();

  // Opened again and read back, in a coroutine.
  std::vector<char> back(data.size());
  std::size_t n = 0;
  ctx.restart();
  asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
    auto f = co_await zokio::async_open_file<zokio::random_access_file>(
        ctx.get_executor(), tmp.str(), zokio::file_base::read_only, asio::use_awaitable);
    n = co_await asio::async_read_at(f, 0, asio::buffer(back), asio::use_awaitable);
  }, asio::detached);
  zokio_test::run_bounded(ctx);
  BOOST_TEST(n == data.size());
  BOOST_TEST((back == data));

  // The errors of open(2), with a closed file.
  struct result
  {
    error_code ec;
    bool open = true;
  };
  auto try_open = [&](const std::string& path, zokio::file_base::flags flags) {
    result r;
    ctx.restart();
    zokio::async_open_file<zokio::stream_file>(ctx, path, flags,
        [&](error_code e, zokio::stream_file f) {
          r.ec = e;
          r.open = f.is_open();
        });
    zokio_test::run_bounded(ctx);
    return r;
  };
  const int before = open_descriptors();
  result missing = try_open(tmp.str() + ".missing", zokio::file_base::read_only);
  BOOST_TEST(missing.ec == boost::system::errc::no_such_file_or_directory);
  BOOST_TEST(!missing.open);
  result exists = try_open(tmp.str(),
      zokio::file_base::write_only | zokio::file_base::create | zokio::file_base::exclusive);
  BOOST_TEST(exists.ec == boost::system::errc::file_exists);
  result dir = try_open(fs::temp_directory_path().string(), zokio::file_base::write_only);
  BOOST_TEST(dir.ec == boost::system::errc::is_a_directory);
  result empty = try_open("", zokio::file_base::read_only);
  BOOST_TEST(empty.ec == boost::system::errc::no_such_file_or_directory);
  if (descriptors_comparable())
    BOOST_TEST(open_descriptors() == before, "no descriptor left by a failed open");
}

BOOST_AUTO_TEST_CASE(async_size_and_async_resize)
{
  temp_path tmp;
  zokio::io_context ctx;
  zokio::random_access_file f(ctx, tmp.str(), zokio::file_base::read_write | zokio::file_base::create);
  asio::write_at(f, 0, asio::buffer(pattern(100)));

  auto size_now = [&] {
    std::uint64_t got = ~0ull;
    error_code ec = asio::error::would_block;
    ctx.restart();
    f.async_size([&](error_code e, std::uint64_t n) {
      ec = e;
      got = n;
    });
    zokio_test::run_bounded(ctx);
    BOOST_TEST(!ec);
    return got;
  };
  auto resize = [&](std::uint64_t n) {
    error_code ec = asio::error::would_block;
    ctx.restart();
    f.async_resize(n, [&](error_code e) { ec = e; });
    zokio_test::run_bounded(ctx);
    return ec;
  };

  const auto sub0 = ctx.statistics().submissions;
  BOOST_TEST(size_now() == 100u);
  const auto sub1 = ctx.statistics().submissions;
  BOOST_TEST(!resize(10));
  const auto sub2 = ctx.statistics().submissions;
  BOOST_TEST(f.size() == 10u);
  BOOST_TEST(size_now() == 10u);
  BOOST_TEST(!resize(3u << 20));
  BOOST_TEST(f.size() == (3u << 20));
  BOOST_TEST(size_now() == (3u << 20));

  // On io_uring each is one request where the kernel has its opcode, and a
  // call on this thread otherwise (no submission).
  using features = zokio::detail::uring::net_features;
  if (!on_readiness())
  {
    BOOST_TEST_MESSAGE("IORING_OP_STATX " << ring_makes(&features::statx)
        << ", IORING_OP_FTRUNCATE " << ring_makes(&features::ftruncate));
    BOOST_TEST((sub1 > sub0) == ring_makes(&features::statx));
    BOOST_TEST((sub2 > sub1) == ring_makes(&features::ftruncate));
  }

  // Past the largest offset: the kernel's EINVAL (or EFBIG).
  error_code big = resize(~0ull);
  BOOST_TEST((big == boost::system::errc::invalid_argument
      || big == boost::system::errc::file_too_large), big.message());

  // Closed: bad_descriptor.
  f.close();
  error_code se, re;
  ctx.restart();
  f.async_size([&](error_code e, std::uint64_t) { se = e; });
  f.async_resize(1, [&](error_code e) { re = e; });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(se == asio::error::bad_descriptor);
  BOOST_TEST(re == asio::error::bad_descriptor);

  // A read-only file cannot be resized: the kernel's error, asynchronously.
  zokio::random_access_file ro(ctx, tmp.str(), zokio::file_base::read_only);
  error_code rre = asio::error::would_block;
  ctx.restart();
  ro.async_resize(1, [&](error_code e) { rre = e; });
  zokio_test::run_bounded(ctx);
  BOOST_TEST((rre == boost::system::errc::invalid_argument
      || rre == asio::error::bad_descriptor), rre.message());
}

BOOST_AUTO_TEST_CASE(async_open_file_cancelled_or_never_run_leaks_nothing)
{
  temp_path tmp;
  {
    // Warm-up: what stays for the process (the feature probe, the blocking
    // pool's threads) is made before counting.
    zokio::io_context ctx;
    zokio::stream_file f(ctx, tmp.str(), zokio::file_base::write_only | zokio::file_base::create);
    zokio::async_open_file<zokio::stream_file>(ctx, tmp.str(), zokio::file_base::read_only,
        [](error_code, zokio::stream_file) {});
    zokio_test::run_bounded(ctx);
  }
  const int before = open_descriptors();
  {
    // Cancelled at once, many times: each completes once, either with the
    // file (the kernel had opened it) or aborted with a closed file.
    zokio::io_context ctx;
    int completions = 0, aborted = 0, opened = 0;
    std::vector<zokio::random_access_file> kept;
    // Half initiated from outside the context (cancelled before a driver
    // sees it), half from one of its handlers (cancelled with the request
    // prepared for the ring or queued on the blocking pool).
    for (int i = 0; i < 200; ++i)
    {
      asio::cancellation_signal sig;
      auto initiate = [&] {
        zokio::async_open_file<zokio::random_access_file>(ctx, tmp.str(), zokio::file_base::read_only,
            asio::bind_cancellation_slot(sig.slot(), [&](error_code e, zokio::random_access_file f) {
              ++completions;
              if (e == asio::error::operation_aborted)
              {
                ++aborted;
                BOOST_TEST(!f.is_open());
              }
              else if (!e && f.is_open())
              {
                ++opened;
                kept.push_back(std::move(f));
              }
            }));
        sig.emit(asio::cancellation_type::all);
      };
      if (i % 2)
        asio::post(ctx, initiate);
      else
        initiate();
      zokio_test::run_bounded(ctx);
      ctx.restart();
    }
    BOOST_TEST(completions == 200);
    BOOST_TEST(aborted + opened == 200);
    BOOST_TEST_MESSAGE(aborted << " aborted, " << opened << " opened before the cancellation");
    kept.clear();
  }
  if (descriptors_comparable())
    BOOST_TEST(open_descriptors() == before, "after the cancellations");
  {
    // Initiated and never run: destroyed with the context, its descriptor
    // (if any) closed.
    zokio::io_context ctx;
    for (int i = 0; i < 10; ++i)
      zokio::async_open_file<zokio::stream_file>(ctx, tmp.str(), zokio::file_base::read_only,
          [](error_code, zokio::stream_file) { BOOST_FAIL("never runs"); });
  }
  if (descriptors_comparable())
    BOOST_TEST(open_descriptors() == before, "after the context destroyed unrun");
  {
    // Run partly: started on the ring (or pool), then the context goes.
    zokio::io_context ctx;
    int done = 0;
    for (int i = 0; i < 10; ++i)
      zokio::async_open_file<zokio::stream_file>(ctx, tmp.str(), zokio::file_base::read_only,
          [&](error_code, zokio::stream_file) { ++done; });
    ctx.run_one();
    BOOST_TEST(done <= 10);
  }
  if (descriptors_comparable())
    BOOST_TEST(open_descriptors() == before, "no descriptor leaked");
  else
    BOOST_TEST_MESSAGE("descriptor counts not checked on kqueue (libkqueue keeps its own)");
}

// A read whose data the page cache holds is made at once (preadv2 with
// RWF_NOWAIT): no submission on io_uring, no blocking-pool call on epoll and
// kqueue. With ZOKIO_FILE_READ_NOWAIT=0 (variants file_ring_reads) every
// read goes to the driver.
BOOST_AUTO_TEST_CASE(cached_reads_are_made_at_once)
{
  temp_path tmp;
  const auto data = pattern(64 << 10, 9);
  zokio::io_context ctx;
  zokio::random_access_file f(ctx, tmp.str(), zokio::file_base::read_write | zokio::file_base::create);
  asio::write_at(f, 0, asio::buffer(data));  // now in the page cache
  zokio::stream_file s(ctx, tmp.str(), zokio::file_base::read_only);

  const auto before = ctx.statistics();
  std::vector<char> a(4096), b(4096), c(100);
  std::size_t na = 0, nb = 0, nc = 0;
  error_code ea, eb, ec, eeof;
  f.async_read_some_at(8192, asio::buffer(a), [&](error_code e, std::size_t n) { ea = e; na = n; });
  s.async_read_some(asio::buffer(b), [&](error_code e, std::size_t n) { eb = e; nb = n; });
  // Straddling the end: what is there; then at the end: eof.
  f.async_read_some_at(data.size() - 40, asio::buffer(c), [&](error_code e, std::size_t n) { ec = e; nc = n; });
  f.async_read_some_at(data.size(), asio::buffer(c), [&](error_code e, std::size_t) { eeof = e; });
  zokio_test::run_bounded(ctx);
  const auto after = ctx.statistics();

  BOOST_TEST(!ea);
  BOOST_TEST(na == 4096u);
  BOOST_TEST(std::equal(a.begin(), a.end(), data.begin() + 8192));
  BOOST_TEST(!eb);
  BOOST_TEST(nb == 4096u);
  BOOST_TEST(std::equal(b.begin(), b.end(), data.begin()));
  BOOST_TEST(!ec);
  BOOST_TEST(nc == 40u);
  BOOST_TEST(eeof == asio::error::eof);

  // The stream file's position moved past what it read.
  std::size_t next = 0;
  std::vector<char> d(16);
  ctx.restart();
  s.async_read_some(asio::buffer(d), [&](error_code, std::size_t n) { next = n; });
  zokio_test::run_bounded(ctx);
  BOOST_TEST(next == 16u);
  BOOST_TEST(std::equal(d.begin(), d.end(), data.begin() + 4096));

  const char* knob = std::getenv("ZOKIO_FILE_READ_NOWAIT");
  const bool cached_first = !(knob && std::string(knob) == "0");
  const auto driver_calls = on_readiness() ? after.blocking_calls - before.blocking_calls
                                           : after.submissions - before.submissions;
  BOOST_TEST_MESSAGE("reads tried from the page cache first: " << cached_first
      << "; requests the driver made: " << driver_calls);
  if (cached_first)
    BOOST_TEST(driver_calls == 0u, "every read came from the page cache at once");
  else
    BOOST_TEST(driver_calls >= 4u, "every read went to the driver");
}
