// systemd's readiness protocol (sd_notify(3)), spoken without libsystemd: one datagram per state
// to the socket named by $NOTIFY_SOCKET. Outside systemd (no NOTIFY_SOCKET) it does nothing.
#pragma once

#include <string_view>

namespace gw::app {

// Sends `state` (lines such as "READY=1", "STATUS=...") if systemd asked for it. A failure is
// logged once and otherwise ignored: readiness reporting never stops the gateway.
void notify_systemd(std::string_view state);

}  // namespace gw::app
