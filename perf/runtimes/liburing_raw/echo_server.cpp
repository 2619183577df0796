// Hand-written liburing TCP echo server: the "hardware limit" column.
//
//   echo_server --port P [--buf BYTES] [--buffers N]
//
// One thread, one ring (IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN where the
// kernel has them). The kernel fast paths are used throughout:
//   * one multishot accept on the listening socket (linux 5.19);
//   * one multishot receive per connection (linux 6.0) that picks its buffers
//     from a provided-buffer ring shared by all connections, so an idle
//     connection owns no buffer at all;
//   * a received buffer is sent back as is (no copy) and returns to the buffer
//     ring when its send has completed. One send is in flight per connection
//     (a short send is resumed), the rest wait in a per-connection FIFO that
//     is threaded through the buffer ids.
// Run-loop: handle every completion of the batch, then submit everything it
// queued and wait, in one io_uring_submit_and_wait.
//
// SIGTERM/SIGINT end the loop; the server prints its counters as one JSON
// object on stdout and exits.
#include <liburing.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>

#include "bench.hpp"

namespace {

using perf::die;

volatile std::sig_atomic_t stop_requested = 0;

enum : std::uint64_t { op_accept = 1, op_recv = 2, op_send = 3 };
constexpr std::uint16_t buffer_group = 0;
constexpr std::uint32_t no_buffer = 0xffffffff;

std::uint64_t tag(int fd, std::uint64_t op) { return (std::uint64_t(fd) << 8) | op; }

// A connection, indexed by its descriptor: 16 bytes, no buffer of its own.
struct connection {
  std::uint32_t head = no_buffer;   // first buffer waiting to be sent (or being sent)
  std::uint32_t tail = no_buffer;   // last buffer waiting
  bool open = false;
  bool send_busy = false;
  bool recv_armed = false;
  bool closing = false;             // peer closed; close once the sends are done
};

class server {
public:
  server(unsigned short port, std::uint32_t buf_size, std::uint32_t buffers)
      : buf_size_(buf_size), buffers_(buffers) {
    io_uring_params p{};
    p.flags = getenv("PERF_NO_DEFER") ? 0 : IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;  // linux 6.1
    if (io_uring_queue_init_params(4096, &ring_, &p) < 0) {
      p = io_uring_params{};
      p.flags = IORING_SETUP_COOP_TASKRUN;  // linux 5.19
      if (io_uring_queue_init_params(4096, &ring_, &p) < 0) {
        p = io_uring_params{};
        if (io_uring_queue_init_params(4096, &ring_, &p) < 0) die("io_uring_queue_init_params");
      }
    }
    setup_buffers();
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) die("bind");
    if (listen(listen_fd_, SOMAXCONN) < 0) die("listen");
    arm_accept();
  }

  void run() {
    while (!stop_requested) {
      int r = io_uring_submit_and_wait(&ring_, 1);
      ++kernel_entries_;
      if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
        errno = -r;
        std::perror("io_uring_submit_and_wait");
        die("io_uring wait failed");
      }
      unsigned head, n = 0;
      io_uring_cqe* cqe;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        ++n;
        complete(cqe);
      }
      io_uring_cq_advance(&ring_, n);
      if (returned_) {  // buffers sent back: make them available again, once
        io_uring_buf_ring_advance(br_, int(returned_));
        returned_ = 0;
        rearm_starved();
      }
      completions_ += n;
      if (n) ++batches_;
      max_batch_ = std::max<std::uint64_t>(max_batch_, n);
    }
    perf::json_line s;
    s.add("kernel_entries", kernel_entries_).add("completions", completions_)
        .add("batches", batches_).add("max_batch", max_batch_).add("submissions", submissions_);
    perf::json_line().add("runtime", "liburing_raw").raw("stats", s.str()).print();
  }

private:
  void setup_buffers() {
    // The ring of buffer descriptors and the buffers themselves; every buffer
    // is touched now, so the idle-memory baseline already holds them.
    std::size_t ring_bytes = sizeof(io_uring_buf) * buffers_;
    void* mem = mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED) die("mmap buffer ring");
    br_ = static_cast<io_uring_buf_ring*>(mem);
    io_uring_buf_ring_init(br_);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uint64_t>(br_);
    reg.ring_entries = buffers_;
    reg.bgid = buffer_group;
    if (int r = io_uring_register_buf_ring(&ring_, &reg, 0); r < 0) {
      errno = -r;
      std::perror("io_uring_register_buf_ring");  // linux 5.19
      die("provided buffer rings are not available");
    }
    data_ = static_cast<char*>(std::aligned_alloc(4096, std::size_t(buf_size_) * buffers_));
    std::memset(data_, 0, std::size_t(buf_size_) * buffers_);
    next_.assign(buffers_, no_buffer);
    len_.assign(buffers_, 0);
    off_.assign(buffers_, 0);
    for (std::uint32_t i = 0; i < buffers_; ++i)
      io_uring_buf_ring_add(br_, data_ + std::size_t(i) * buf_size_, buf_size_, std::uint16_t(i),
                            io_uring_buf_ring_mask(buffers_), int(i));
    io_uring_buf_ring_advance(br_, int(buffers_));
  }

  io_uring_sqe* sqe() {
    io_uring_sqe* s = io_uring_get_sqe(&ring_);
    if (!s) {
      io_uring_submit(&ring_);
      ++kernel_entries_;
      s = io_uring_get_sqe(&ring_);
      if (!s) die("submission queue full");
    }
    ++submissions_;
    return s;
  }

  void arm_accept() {
    io_uring_sqe* s = sqe();
    io_uring_prep_multishot_accept(s, listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(s, tag(listen_fd_, op_accept));
  }

  void arm_recv(int fd) {
    io_uring_sqe* s = sqe();
    io_uring_prep_recv_multishot(s, fd, nullptr, 0, 0);
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = buffer_group;
    io_uring_sqe_set_data64(s, tag(fd, op_recv));
    conns_[fd].recv_armed = true;
  }

  void arm_send(int fd) {
    connection& c = conns_[fd];
    std::uint32_t b = c.head;
    io_uring_sqe* s = sqe();
    io_uring_prep_send(s, fd, data_ + std::size_t(b) * buf_size_ + off_[b], len_[b] - off_[b],
                       MSG_NOSIGNAL);
    io_uring_sqe_set_data64(s, tag(fd, op_send));
    c.send_busy = true;
  }

  void give_back(std::uint32_t b) {
    io_uring_buf_ring_add(br_, data_ + std::size_t(b) * buf_size_, buf_size_, std::uint16_t(b),
                          io_uring_buf_ring_mask(buffers_), int(returned_));
    ++returned_;
  }

  void rearm_starved() {
    while (!starved_.empty()) {
      int fd = starved_.back();
      starved_.pop_back();
      if (conns_[fd].open && !conns_[fd].closing && !conns_[fd].recv_armed) arm_recv(fd);
    }
  }

  void close_conn(int fd) {
    connection& c = conns_[fd];
    for (std::uint32_t b = c.head; b != no_buffer;) {
      std::uint32_t n = next_[b];
      give_back(b);
      b = n;
    }
    c = connection{};
    close(fd);
  }

  void complete(io_uring_cqe* cqe) {
    const int fd = int(cqe->user_data >> 8);
    const int res = cqe->res;
    switch (cqe->user_data & 0xff) {
      case op_accept: {
        if (res >= 0) {
          if (std::size_t(res) >= conns_.size()) conns_.resize(std::size_t(res) * 2 + 64);
          int one = 1;
          setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          conns_[res] = connection{};
          conns_[res].open = true;
          arm_recv(res);
        }
        if (!(cqe->flags & IORING_CQE_F_MORE)) arm_accept();  // e.g. after EMFILE
        break;
      }
      case op_recv: {
        connection& c = conns_[fd];
        if (!(cqe->flags & IORING_CQE_F_MORE)) c.recv_armed = false;
        if (res > 0) {
          auto b = std::uint32_t(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
          len_[b] = std::uint32_t(res);
          off_[b] = 0;
          next_[b] = no_buffer;
          if (c.tail == no_buffer) c.head = b; else next_[c.tail] = b;
          c.tail = b;
          if (!c.send_busy) arm_send(fd);
          if (!c.recv_armed) arm_recv(fd);
        } else if (res == -ENOBUFS) {
          starved_.push_back(fd);  // re-armed once buffers come back
        } else {  // 0: peer closed; < 0: error
          if (c.recv_armed) break;  // more completions follow
          if (c.send_busy) c.closing = true; else close_conn(fd);
        }
        break;
      }
      case op_send: {
        connection& c = conns_[fd];
        c.send_busy = false;
        if (res < 0) {
          c.closing = true;
          if (!c.recv_armed) close_conn(fd);
          break;
        }
        std::uint32_t b = c.head;
        off_[b] += std::uint32_t(res);
        if (off_[b] == len_[b]) {
          c.head = next_[b];
          if (c.head == no_buffer) c.tail = no_buffer;
          give_back(b);
        }
        if (c.closing && !c.recv_armed) {
          close_conn(fd);
        } else if (c.head != no_buffer && !c.closing) {
          arm_send(fd);
        }
        break;
      }
    }
  }

  io_uring ring_{};
  int listen_fd_ = -1;
  std::uint32_t buf_size_, buffers_;
  io_uring_buf_ring* br_ = nullptr;
  char* data_ = nullptr;
  std::vector<std::uint32_t> next_, len_, off_;  // per buffer id: FIFO link, length, sent
  std::uint32_t returned_ = 0;                    // buffers added since the last advance
  std::vector<connection> conns_;
  std::vector<int> starved_;
  std::uint64_t kernel_entries_ = 0, completions_ = 0, batches_ = 0, max_batch_ = 0,
                submissions_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  perf::options o(argc, argv);
  struct sigaction sa{};
  sa.sa_handler = [](int) { stop_requested = 1; };
  sigaction(SIGTERM, &sa, nullptr);  // no SA_RESTART: the wait returns -EINTR
  sigaction(SIGINT, &sa, nullptr);
  auto buffers = std::uint32_t(o.num("buffers", 2048));
  if (buffers & (buffers - 1)) die("--buffers must be a power of two");
  server s(static_cast<unsigned short>(o.num("port", 7000)), std::uint32_t(o.num("buf", 4096)),
           buffers);
  std::fprintf(stderr, "liburing_raw echo server on 127.0.0.1:%llu\n",
               static_cast<unsigned long long>(o.num("port", 7000)));
  s.run();
  return 0;
}
