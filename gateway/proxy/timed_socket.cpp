// Deadlines with one lazily re-armed timer (see timed_socket.hpp).
#include "proxy/timed_socket.hpp"

namespace gw::proxy {

namespace asio = boost::asio;

timed_socket::timed_socket(asio::ip::tcp::socket socket)
    : socket_(std::move(socket)),
      timer_(socket_.get_executor()),
      alive_(std::make_shared<timed_socket*>(this)) {}

timed_socket::timed_socket(asio::io_context& io)
    : socket_(io), timer_(io), alive_(std::make_shared<timed_socket*>(this)) {}

timed_socket::~timed_socket() { *alive_ = nullptr; }

void timed_socket::begin() {
  ++pending_;
  timed_out_ = false;
  if (deadline_ == clock::time_point::max()) return;
  if (deadline_ <= coarse_now()) {
    // Already past: the operation fails as it would when the timer fired.
    timed_out_ = true;
    boost::system::error_code ignored;
    socket_.close(ignored);
    return;
  }
  if (!armed_ || deadline_ < armed_for_) arm(deadline_);
}

boost::system::error_code timed_socket::end(boost::system::error_code ec) {
  --pending_;
  if (timed_out_ && (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor))
    return boost::beast::error::timeout;
  return ec;
}

void timed_socket::arm(clock::time_point t) {
  armed_ = true;
  armed_for_ = t;
  timer_.expires_at(t);  // cancels an earlier wait, whose handler then returns at once
  timer_.async_wait([alive = std::weak_ptr<timed_socket*>(alive_)](boost::system::error_code ec) {
    if (ec) return;
    const auto self = alive.lock();
    if (self && *self) (*self)->on_timer();
  });
}

void timed_socket::on_timer() {
  armed_ = false;
  if (pending_ == 0 || deadline_ == clock::time_point::max()) return;
  if (clock::now() < deadline_) {
    arm(deadline_);  // the deadline moved later since the timer was armed
    return;
  }
  timed_out_ = true;
  boost::system::error_code ignored;
  socket_.close(ignored);  // pending operations complete with operation_aborted
}

}  // namespace gw::proxy
