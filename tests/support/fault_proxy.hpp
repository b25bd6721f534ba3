// A TCP proxy for fault tests, placed between the gateway and Redis or an upstream: on 127.0.0.1
// and a port picked at run time, it relays bytes both ways until told to misbehave. A fault
// applies from the moment it is set, to every connection, open or new, and only to bytes not
// yet relayed. Runs on a thread of its own; every call is safe from the test's thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace gw::test {

enum class fault {
  none,         // relay as they come
  delay,        // every chunk, both ways, waits `pace` first
  black_hole,   // accept and read, never relay nor answer (afterwards: reset such connections)
  reset_reply,  // after `reset_after` more bytes towards the client, reset both sides
  drip,         // towards the client one byte at a time, `pace` apart
};

class fault_proxy {
 public:
  explicit fault_proxy(std::uint16_t target_port);
  ~fault_proxy();
  fault_proxy(const fault_proxy&) = delete;
  fault_proxy& operator=(const fault_proxy&) = delete;

  std::uint16_t port() const;
  void set(fault f, std::chrono::milliseconds pace = std::chrono::milliseconds(0),
           std::size_t reset_after = 0);
  // Connections accepted so far, and open now.
  std::size_t accepted() const;
  std::size_t open() const;

 private:
  struct state;
  std::shared_ptr<state> state_;
};

}  // namespace gw::test
