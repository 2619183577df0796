// User-defined services on zokio::io_context, checked against
// boost::asio::io_context: each case runs the same code on both contexts
// and compares what happens (which instance use_service returns, what
// add_service throws, the order of shutdown() and destruction), so zokio
// behaves exactly as Asio does rather than as this file expects. Also the
// other nested names of io_context (service, id, strand, work).
#include <zokio/io_context.hpp>

#define BOOST_TEST_MODULE service
#include <boost/test/unit_test.hpp>

#include <support/run.hpp>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/io_context_strand.hpp>
#include <boost/asio/post.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace asio = boost::asio;

namespace {

// What the services of one run did, in order.
std::vector<std::string>& events()
{
  static std::vector<std::string> e;
  return e;
}

// A service of the context type's own kind (its constructor takes Context&,
// as Asio documents for io_context::service), one type per Tag.
template <typename Context, int Tag>
class context_service : public Context::service
{
public:
  static typename Context::id id;

  explicit context_service(Context& owner) : Context::service(owner)
  {
    events().push_back("construct " + std::to_string(Tag));
  }

  ~context_service() override { events().push_back("destroy " + std::to_string(Tag)); }

  Context& owner() { return this->get_io_context(); }

private:
  void shutdown() override { events().push_back("shutdown " + std::to_string(Tag)); }
};

template <typename Context, int Tag>
typename Context::id context_service<Context, Tag>::id;

// A service of any execution context (its constructor takes
// execution_context&), with its own id.
template <int Tag>
class plain_service : public asio::execution_context::service
{
public:
  static asio::execution_context::id id;

  explicit plain_service(asio::execution_context& owner) : asio::execution_context::service(owner)
  {
    events().push_back("construct plain " + std::to_string(Tag));
  }

  ~plain_service() override { events().push_back("destroy plain " + std::to_string(Tag)); }

private:
  void shutdown() override { events().push_back("shutdown plain " + std::to_string(Tag)); }
};

template <int Tag>
asio::execution_context::id plain_service<Tag>::id;

// The observable outcome of one scenario.
struct outcome
{
  std::vector<std::string> log;
  bool operator==(const outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const outcome& o)
{
  for (auto& e : o.log)
    os << e << "; ";
  return os;
}

template <typename Scenario>
void same_on_both(Scenario scenario)
{
  events().clear();
  scenario.template operator()<asio::io_context>();
  outcome on_asio{events()};
  events().clear();
  scenario.template operator()<zokio::io_context>();
  outcome on_zokio{events()};
  BOOST_TEST_MESSAGE("asio: " << on_asio);
  BOOST_TEST(on_zokio == on_asio);
  BOOST_TEST(!on_asio.log.empty());
}

} // namespace

BOOST_AUTO_TEST_CASE(use_service_creates_once_and_returns_the_instance)
{
  same_on_both([]<typename Context>() {
    using S = context_service<Context, 1>;
    Context ctx;
    events().push_back(std::string("has before: ") + (asio::has_service<S>(ctx) ? "yes" : "no"));
    S& a = asio::use_service<S>(ctx);
    S& b = asio::use_service<S>(ctx);
    events().push_back(std::string("same: ") + (&a == &b ? "yes" : "no"));
    events().push_back(std::string("owner: ") + (&a.owner() == &ctx ? "yes" : "no"));
    events().push_back(std::string("has after: ") + (asio::has_service<S>(ctx) ? "yes" : "no"));
    using P = plain_service<1>;
    P& p = asio::use_service<P>(ctx);
    events().push_back(std::string("plain same: ") + (&p == &asio::use_service<P>(ctx) ? "yes" : "no"));
  });
}

BOOST_AUTO_TEST_CASE(add_service_then_use_service_returns_the_added_one)
{
  same_on_both([]<typename Context>() {
    using S = context_service<Context, 2>;
    Context ctx;
    S* added = new S(ctx);
    asio::add_service<S>(ctx, added);
    events().push_back(std::string("has: ") + (asio::has_service<S>(ctx) ? "yes" : "no"));
    S& used = asio::use_service<S>(ctx);
    events().push_back(std::string("use returns the added one: ") + (&used == added ? "yes" : "no"));
  });
}

BOOST_AUTO_TEST_CASE(a_second_instance_is_service_already_exists)
{
  same_on_both([]<typename Context>() {
    using S = context_service<Context, 3>;
    using P = plain_service<3>;
    Context ctx;
    S& first = asio::use_service<S>(ctx);
    auto second = std::make_unique<S>(ctx);
    try
    {
      asio::add_service<S>(ctx, second.get());
      events().push_back("added twice");
    }
    catch (const asio::service_already_exists&)
    {
      events().push_back("service_already_exists");
    }
    second.reset();
    events().push_back(std::string("still the first: ")
        + (&asio::use_service<S>(ctx) == &first ? "yes" : "no"));
    asio::use_service<P>(ctx);
    auto p2 = std::make_unique<P>(ctx);
    try
    {
      asio::add_service<P>(ctx, p2.get());
      events().push_back("plain added twice");
    }
    catch (const asio::service_already_exists&)
    {
      events().push_back("plain service_already_exists");
    }
  });
}

BOOST_AUTO_TEST_CASE(a_service_of_another_context_is_invalid_service_owner)
{
  same_on_both([]<typename Context>() {
    using S = context_service<Context, 4>;
    Context ctx, other;
    auto foreign = std::make_unique<S>(other);
    try
    {
      asio::add_service<S>(ctx, foreign.get());
      events().push_back("added");
    }
    catch (const asio::invalid_service_owner&)
    {
      events().push_back("invalid_service_owner");
    }
    events().push_back(std::string("has: ") + (asio::has_service<S>(ctx) ? "yes" : "no"));
    foreign.reset();
    // And the context still creates its own afterwards.
    S& own = asio::use_service<S>(ctx);
    events().push_back(std::string("own owner: ") + (&own.owner() == &ctx ? "yes" : "no"));
  });
}

BOOST_AUTO_TEST_CASE(shutdown_and_destruction_order)
{
  same_on_both([]<typename Context>() {
    Context ctx;
    asio::use_service<context_service<Context, 10>>(ctx);
    asio::use_service<plain_service<11>>(ctx);
    asio::add_service<context_service<Context, 12>>(ctx, new context_service<Context, 12>(ctx));
    asio::use_service<context_service<Context, 13>>(ctx);
    events().push_back("destroying the context");
  });
}

// The deprecated nested names, as Asio's io_context has them.
BOOST_AUTO_TEST_CASE(nested_strand_and_work)
{
  static_assert(std::is_base_of_v<asio::execution_context::service, zokio::io_context::service>);
  static_assert(std::is_same_v<zokio::io_context::id, asio::execution_context::id>);

  zokio::io_context ctx;
  zokio::io_context::strand strand(ctx);
  std::atomic<int> inside{0}, overlaps{0}, ran{0};
  for (int i = 0; i < 200; ++i)
    strand.post([&] {
      if (inside.fetch_add(1) != 0)
        ++overlaps;
      if (!strand.running_in_this_thread())
        ++overlaps;
      inside.fetch_sub(1);
      ++ran;
    });
  std::thread t1([&] { ctx.run(); }), t2([&] { ctx.run(); });
  t1.join();
  t2.join();
  BOOST_TEST(ran.load() == 200);
  BOOST_TEST(overlaps.load() == 0, "the strand serialises handlers on two threads");

  // work keeps run() from returning until it is destroyed.
  ctx.restart();
  auto work = std::make_unique<zokio::io_context::work>(ctx);
  std::atomic<bool> returned{false};
  std::thread runner([&] {
    ctx.run();
    returned = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  BOOST_TEST(!returned.load(), "run() waits while work exists");
  BOOST_TEST(&work->get_io_context() == &ctx);
  work.reset();
  runner.join();
  BOOST_TEST(returned.load());
}
