// test/support/process.hpp: running an example program as a child process.
#ifndef ZOKIO_TEST_SUPPORT_PROCESS_HPP
#define ZOKIO_TEST_SUPPORT_PROCESS_HPP

#include <chrono>
#include <csignal>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace zokio_test {

// A child process with its stdout on a pipe. The destructor kills it
// (SIGKILL) if it is still running.
class child
{
public:
  explicit child(const std::vector<std::string>& args)
  {
    int fds[2];
    if (::pipe(fds) != 0)
      throw std::runtime_error("pipe");
    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    ::posix_spawn_file_actions_addclose(&actions, fds[0]);
    std::vector<char*> argv;
    for (const auto& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    int r = ::posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    ::posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    out_ = fds[0];
    if (r != 0)
    {
      ::close(out_);
      throw std::runtime_error("posix_spawn " + args[0]);
    }
  }

  child(const child&) = delete;
  child& operator=(const child&) = delete;

  ~child()
  {
    if (pid_ > 0 && status_ < 0)
    {
      ::kill(pid_, SIGKILL);
      int st;
      ::waitpid(pid_, &st, 0);
    }
    ::close(out_);
  }

  // One line of the child's stdout (without the newline), or "" after limit.
  std::string read_line(std::chrono::milliseconds limit = std::chrono::seconds(10))
  {
    auto deadline = std::chrono::steady_clock::now() + limit;
    std::string line;
    for (;;)
    {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now()).count();
      if (left <= 0)
        return line;
      ::pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0)
        continue;
      char c;
      if (::read(out_, &c, 1) != 1)
        return line;
      if (c == '\n')
        return line;
      line += c;
    }
  }

  // The exit status, or -1 if the child has not exited within limit.
  int wait(std::chrono::milliseconds limit = std::chrono::seconds(30))
  {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (status_ < 0)
    {
      int st;
      pid_t r = ::waitpid(pid_, &st, WNOHANG);
      if (r == pid_)
      {
        status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        break;
      }
      if (std::chrono::steady_clock::now() > deadline)
        return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return status_;
  }

  void kill(int sig = SIGTERM) { ::kill(pid_, sig); }

private:
  pid_t pid_ = -1;
  int out_ = -1;
  int status_ = -1;
};

// The port from a server's first line, "listening on <port>" (0 if none).
inline unsigned short port_from(const std::string& line)
{
  auto pos = line.rfind(' ');
  if (line.rfind("listening on ", 0) != 0 || pos == std::string::npos)
    return 0;
  return static_cast<unsigned short>(std::stoi(line.substr(pos + 1)));
}

} // namespace zokio_test

#endif // ZOKIO_TEST_SUPPORT_PROCESS_HPP
