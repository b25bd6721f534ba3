// What a store reports about itself, for metrics: kept as an interface so that store/ knows
// nothing of Prometheus. Called on the worker thread that owns the store client.
#pragma once

#include "store/store.hpp"

#include <cstddef>

namespace gw::store {

class store_events {
 public:
  virtual ~store_events() = default;
  virtual void check_finished(double seconds) = 0;         // one store round trip
  virtual void error(error_kind kind) = 0;                 // one failed check batch
  virtual void batch_written(std::size_t commands) = 0;    // commands in one socket write
};

}  // namespace gw::store
