// What a store client reports about its connections, for metrics: an interface, so that store/
// knows nothing of Prometheus. Called on the worker thread that owns the client. (Round-trip
// times and errors are measured by the caller of store::check.)
#pragma once

#include "store/store.hpp"

#include <cstddef>

namespace gw::store {

class store_events {
 public:
  virtual ~store_events() = default;
  // One socket write: the commands in it, and the limit checks those commands carry.
  virtual void batch_written(std::size_t commands, std::size_t checks) = 0;
};

}  // namespace gw::store
