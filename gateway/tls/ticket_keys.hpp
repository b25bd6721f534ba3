// The keys that seal TLS session tickets (what lets a returning client skip the full
// handshake). Whoever holds a ticket key can open every ticket sealed with it, and a TLS 1.2
// ticket holds the session's master secret: so a key must not live for the process's lifetime.
// One set for the whole process (every listener context, across reloads, so that a reload does
// not cost returning clients their resumption): a new key every `rotate_every`, the one before
// still opening tickets (which are then renewed with the new key) for one more period.
#pragma once

#include <chrono>

struct ssl_ctx_st;

namespace gw::tls {

inline constexpr std::chrono::hours ticket_key_rotation{12};

// Makes `ctx` seal and open its tickets with the process's rotating keys.
void use_rotating_ticket_keys(ssl_ctx_st* ctx);

}  // namespace gw::tls
