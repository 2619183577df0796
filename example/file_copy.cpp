// example/file_copy.cpp: copies a file with several reads in flight.
//
//   file_copy SOURCE DESTINATION [block_size [depth]]
//
// The source is read in blocks of block_size bytes (default 128 KiB), with
// up to depth reads in flight at once (default 4) at consecutive offsets
// (zokio::random_access_file: concurrent reads need offsets of their own);
// the destination is a zokio::stream_file written in order, one block after
// another, while the next reads proceed. On io_uring every read and write
// is a request on the ring; on epoll and kqueue zokio's blocking pool makes
// them. Prints the bytes copied and the rate.
#include <zokio/io_context.hpp>
#include <zokio/random_access_file.hpp>
#include <zokio/stream_file.hpp>

#include <boost/asio/read_at.hpp>
#include <boost/asio/write.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <string>
#include <vector>

namespace asio = boost::asio;
using error_code = boost::system::error_code;

namespace {

class copier
{
public:
  copier(zokio::io_context& ctx, const char* from, const char* to, std::size_t block,
      std::size_t depth)
    : in_(ctx, from, zokio::file_base::read_only),
      out_(ctx, to, zokio::file_base::write_only | zokio::file_base::create
          | zokio::file_base::truncate),
      size_(in_.size()), block_(block), depth_(depth)
  {
  }

  void start()
  {
    while (in_flight_ < depth_ && next_offset_ < size_)
      read_next();
  }

  std::uint64_t copied() const noexcept { return written_; }
  const error_code& error() const noexcept { return error_; }

private:
  struct slot
  {
    std::uint64_t offset;
    std::vector<char> data;
    std::size_t length = 0;
    bool ready = false;
  };

  void read_next()
  {
    slots_.push_back(slot{next_offset_, std::vector<char>(block_)});
    slot* s = &slots_.back();  // a deque keeps addresses on push_back/pop_front
    next_offset_ += block_;
    ++in_flight_;
    asio::async_read_at(in_, s->offset, asio::buffer(s->data), [this, s](error_code ec, std::size_t n) {
      --in_flight_;
      if (ec && ec != asio::error::eof)
        return fail(ec);
      s->length = n;
      s->ready = true;
      write_ready();
    });
  }

  // Writes the oldest block if it has arrived (blocks go out in order).
  void write_ready()
  {
    if (writing_ || error_ || slots_.empty() || !slots_.front().ready)
      return;
    writing_ = true;
    slot& s = slots_.front();
    asio::async_write(out_, asio::buffer(s.data.data(), s.length), [this](error_code ec, std::size_t n) {
      writing_ = false;
      if (ec)
        return fail(ec);
      written_ += n;
      slots_.pop_front();
      start();
      write_ready();
    });
  }

  void fail(const error_code& ec)
  {
    if (!error_)
      error_ = ec;
    in_.cancel();
  }

  zokio::random_access_file in_;
  zokio::stream_file out_;
  std::uint64_t size_;
  std::size_t block_;
  std::size_t depth_;
  std::uint64_t next_offset_ = 0;
  std::uint64_t written_ = 0;
  std::size_t in_flight_ = 0;
  bool writing_ = false;
  std::deque<slot> slots_;
  error_code error_;
};

} // namespace

int main(int argc, char* argv[])
{
  if (argc < 3)
  {
    std::fprintf(stderr, "usage: file_copy SOURCE DESTINATION [block_size [depth]]\n");
    return 2;
  }
  try
  {
    const std::size_t block = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 128 * 1024;
    const std::size_t depth = argc > 4 ? std::strtoul(argv[4], nullptr, 10) : 4;
    if (block == 0 || depth == 0)
    {
      std::fprintf(stderr, "file_copy: block_size and depth must be positive\n");
      return 2;
    }
    zokio::io_context ctx;
    copier c(ctx, argv[1], argv[2], block, depth);
    const auto t0 = std::chrono::steady_clock::now();
    c.start();
    ctx.run();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (c.error())
    {
      std::fprintf(stderr, "file_copy: %s\n", c.error().message().c_str());
      return 1;
    }
    std::printf("copied %llu bytes in %.3f s (%.1f MiB/s)\n",
        static_cast<unsigned long long>(c.copied()), s,
        s > 0 ? static_cast<double>(c.copied()) / (1 << 20) / s : 0.0);
  }
  catch (const std::exception& e)
  {
    std::fprintf(stderr, "file_copy: %s\n", e.what());
    return 1;
  }
}
