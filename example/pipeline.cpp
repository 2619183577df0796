// example/pipeline.cpp: runs two commands with a pipe between them, as a
// shell's `FIRST | SECOND`, and reads what the second prints.
//
//   pipeline [FIRST SECOND]
//
// Each command runs under /bin/sh -c (default: a list of words, and sort).
// The pipe between the children is an ordinary blocking pipe, as programs
// expect their standard streams; the output of the second reaches this
// process through a zokio::readable_pipe, read while both run; their exit
// codes come from zokio::process::async_wait.
#include <zokio/io_context.hpp>
#include <zokio/process.hpp>
#include <zokio/readable_pipe.hpp>

#include <boost/asio/read.hpp>
#include <boost/asio/streambuf.hpp>

#include <cstdio>
#include <exception>
#include <string>

#include <fcntl.h>
#include <unistd.h>

namespace asio = boost::asio;
using error_code = boost::system::error_code;

int main(int argc, char* argv[])
{
  const std::string first = argc > 2 ? argv[1] : "printf 'pear\\napple\\nfig\\n'";
  const std::string second = argc > 2 ? argv[2] : "sort";
  try
  {
    zokio::io_context ctx;
    int between[2];
    if (::pipe2(between, O_CLOEXEC) != 0)
      throw std::system_error(errno, std::generic_category(), "pipe2");
    zokio::readable_pipe output(ctx);
    zokio::process producer(ctx, "/bin/sh", {"-c", first},
        zokio::process_options{.stdio = {{}, zokio::process_stdio_target::native(between[1]), {}}});
    zokio::process consumer(ctx, "/bin/sh", {"-c", second},
        zokio::process_options{.stdio = {zokio::process_stdio_target::native(between[0]), output, {}}});
    // The children hold their ends now: ours would keep the pipe open.
    ::close(between[0]);
    ::close(between[1]);

    asio::streambuf result;
    int first_code = -1, second_code = -1;
    asio::async_read(output, result, [](error_code, std::size_t) {});
    producer.async_wait([&](error_code, int code) { first_code = code; });
    consumer.async_wait([&](error_code, int code) { second_code = code; });
    ctx.run();
    std::fwrite(result.data().data(), 1, result.size(), stdout);
    std::fprintf(stderr, "pipeline: exit codes %d and %d\n", first_code, second_code);
    return first_code == 0 && second_code == 0 ? 0 : 1;
  }
  catch (const std::exception& e)
  {
    std::fprintf(stderr, "pipeline: %s\n", e.what());
    return 1;
  }
}
