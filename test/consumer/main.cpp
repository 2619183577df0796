// Links against an installed zokio through find_package(zokio) and runs a
// post and a timer wait.
#include <zokio/zokio.hpp>

#include <boost/asio/post.hpp>

#include <cstdio>

int main()
{
  zokio::io_context ctx;
  int done = 0;
  boost::asio::post(ctx, [&] { ++done; });
  zokio::steady_timer timer(ctx, std::chrono::milliseconds(1));
  timer.async_wait([&](boost::system::error_code ec) { done += !ec; });
  ctx.run();
  std::printf("consumer: %d of 2 handlers ran on %s (%s)\n", done, zokio::to_string(ctx.backend()),
      zokio::current_backend().reason.c_str());
  return done == 2 ? 0 : 1;
}
