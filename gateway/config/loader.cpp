// Reads the YAML configuration into gateway_config, collecting every problem with its position.
// One function per section (and per route) so that later sections slot in beside the others.
#include "config/loader.hpp"

#include "config/key_hash.hpp"
#include "config/tls_files.hpp"

#include "config/units.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/ip/network_v6.hpp>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <span>
#include <stdexcept>
#include <system_error>
#include <tuple>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

namespace gw::config {
namespace {

// Bounds that catch typos rather than encode policy.
constexpr std::uint64_t max_workers = 1024;
constexpr std::uint64_t max_connections_limit = 1'000'000;
constexpr std::uint64_t max_idle_limit = 1'000'000;
constexpr std::uint64_t max_eject_after_failures = 1'000'000;
constexpr std::uint64_t max_redis_database = 1023;
constexpr std::uint64_t max_connections_per_worker = 64;
constexpr std::uint64_t no_upper_bound = std::numeric_limits<std::uint64_t>::max();

// The algorithms count integer microseconds and the Redis scripts compute in Lua doubles, which
// are exact up to 2^53: capacity x window must stay within it.
constexpr std::uint64_t max_request_microseconds = std::uint64_t{1} << 53;

// One value as the readers see it: how to name it in a message and where it came from.
struct field {
  std::string path;  // "server.listen", "routes[0].match.path"
  YAML::Node key;    // the map key; the value itself for a list element
  YAML::Node value;

  // An empty value ("listen:") carries the position of the next token; point at the key instead.
  YAML::Mark mark() const { return value.IsNull() ? key.Mark() : value.Mark(); }
};

// How one key of a map is read.
struct key_reader {
  std::string_view name;
  std::function<void(const field&)> read;
  bool required = false;
};

// A route's reference to an upstream, checked once every section is read (upstreams may come
// after routes in the file).
struct upstream_ref {
  std::string name;
  field where;
};

// A TLS file pair (or a CA bundle, `key` empty) to check once every section is read.
struct tls_file_ref {
  std::string cert;  // resolved paths
  std::string key;
  field where;       // the map that names them
};

// A reference to a consumer or a tier from a limit override, checked once every section is read.
struct name_ref {
  std::string name;
  field where;
};

// One allowed word of an enumerated value.
template <class T>
struct choice {
  std::string_view name;
  T value;
};

constexpr choice<std::string_view> log_level_choices[] = {
    {"trace", "trace"}, {"debug", "debug"}, {"info", "info"}, {"warn", "warn"}, {"error", "error"}};
constexpr choice<store_backend> backend_choices[] = {
    {"memory", store_backend::memory},
    {"redis", store_backend::redis},
    {"redis_cluster", store_backend::redis_cluster}};
constexpr choice<failure_mode> failure_mode_choices[] = {{"open", failure_mode::open},
                                                         {"closed", failure_mode::closed}};
constexpr choice<auth_mode> auth_choices[] = {{"none", auth_mode::none},
                                              {"optional", auth_mode::optional},
                                              {"required", auth_mode::required}};
constexpr choice<limit_algorithm> algorithm_choices[] = {
    {"gcra", limit_algorithm::gcra},
    {"token_bucket", limit_algorithm::token_bucket},
    {"sliding_window", limit_algorithm::sliding_window},
    {"sliding_log", limit_algorithm::sliding_log},
    {"fixed_window", limit_algorithm::fixed_window}};
enum class rate_limit_headers { ietf, legacy };
constexpr choice<rate_limit_headers> header_choices[] = {{"ietf", rate_limit_headers::ietf},
                                                         {"legacy", rate_limit_headers::legacy}};
constexpr choice<tls_version> tls_version_choices[] = {{"1.2", tls_version::v1_2},
                                                      {"1.3", tls_version::v1_3}};
constexpr choice<client_auth> client_auth_choices[] = {{"none", client_auth::none},
                                                      {"optional", client_auth::optional},
                                                      {"required", client_auth::required}};
// Key parts without a name; header:NAME and query:NAME are read apart.
constexpr choice<key_part::kind_t> plain_key_parts[] = {{"client_ip", key_part::client_ip},
                                                        {"api_key", key_part::api_key},
                                                        {"consumer", key_part::consumer},
                                                        {"tier", key_part::tier},
                                                        {"route", key_part::route},
                                                        {"method", key_part::method},
                                                        {"path", key_part::path},
                                                        {"client_cert", key_part::client_cert}};

// The first YAML document of `text`, and where the root of a second one starts, if any: all the
// loader wants of a file. Not YAML::LoadAll: in yaml-cpp 0.7 it never returns on some malformed
// text ("," alone), whose parser reports an empty document again and again without reading on,
// each one kept (jbeder/yaml-cpp#1040; fixed after 0.8), so that a typo would hang
// --check-config or a reload while its memory grows. Here the parser is asked for two at most.
struct yaml_documents {
  std::optional<YAML::Node> first;   // none: the text holds no document
  std::optional<YAML::Mark> second;  // the second document's root, as its node's Mark()
};

yaml_documents read_documents(const std::string& text) {
  // Counts documents and notes where the second one's root node starts.
  class probe : public YAML::EventHandler {
   public:
    std::optional<YAML::Mark> second_root;
    void OnDocumentStart(const YAML::Mark&) override { ++documents_; }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark& m, YAML::anchor_t) override { node(m); }
    void OnAlias(const YAML::Mark& m, YAML::anchor_t) override { node(m); }
    void OnScalar(const YAML::Mark& m, const std::string&, YAML::anchor_t,
                  const std::string&) override {
      node(m);
    }
    void OnSequenceStart(const YAML::Mark& m, const std::string&, YAML::anchor_t,
                         YAML::EmitterStyle::value) override {
      node(m);
    }
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t,
                    YAML::EmitterStyle::value) override {
      node(m);
    }
    void OnMapEnd() override {}

   private:
    void node(const YAML::Mark& m) {
      if (documents_ == 2 && !second_root) second_root = m;
    }
    int documents_ = 0;
  };
  std::istringstream in{text};
  YAML::Parser parser{in};
  probe p;
  yaml_documents out;
  if (!parser.HandleNextDocument(p)) return out;
  if (parser.HandleNextDocument(p)) out.second = p.second_root.value_or(YAML::Mark{});
  out.first = YAML::Load(text);  // the same first document, as a node tree
  return out;
}

// A limit override while its limit is still being read: the checks that combine it with the
// limit's values wait until the whole limit is known (algorithm may come after overrides).
struct override_reading {
  limit_override value;
  field where;
  std::optional<field> burst;  // set when the override gives one
  bool values_valid = true;    // requests, window and burst, as far as given, were read
};

// Quotes a value for a message, keeping the message on one line.
std::string quote(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      static constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return quote(node.Scalar());
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    default:
      return "nothing";
  }
}

std::string child_path(const std::string& parent, std::string_view key) {
  return parent.empty() ? std::string{key} : parent + "." + std::string{key};
}

std::string element_path(const std::string& parent, std::size_t index) {
  return parent + "[" + std::to_string(index) + "]";
}

std::string in_path(const std::string& path) {
  return path.empty() ? " at the top level" : " in " + path;
}

// RFC 9110 token characters: what a request method may be made of.
bool is_token(std::string_view text) {
  if (text.empty()) return false;
  return std::all_of(text.begin(), text.end(), [](unsigned char c) {
    return std::isalnum(c) ||
           std::string_view{"!#$%&'*+-.^_`|~"}.find(static_cast<char>(c)) != std::string_view::npos;
  });
}

std::string to_upper(std::string text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

std::string to_lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// Route and limit names end up in Redis keys and Prometheus labels.
bool is_identifier(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '.' || c == '-';
  });
}

// The shell's rule for a variable name.
bool is_environment_name(std::string_view text) {
  if (text.empty() || (text.front() >= '0' && text.front() <= '9')) return false;
  return std::all_of(text.begin(), text.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '_'; });
}

bool is_sha256_hex(std::string_view text) {
  return text.size() == 64 &&
         std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isxdigit(c); });
}

bool takes_burst(limit_algorithm a) {
  return a == limit_algorithm::gcra || a == limit_algorithm::token_bucket;
}

std::string_view name_of(limit_algorithm a) {
  for (const auto& c : algorithm_choices)
    if (c.value == a) return c.name;
  return "?";
}

// What one request may take at most: burst for the bucket algorithms (default = requests).
std::uint64_t capacity(limit_algorithm a, std::uint64_t requests,
                       std::optional<std::uint64_t> burst) {
  return takes_burst(a) ? burst.value_or(requests) : requests;
}

// max(requests, burst) x window in microseconds <= 2^53, without overflowing on the way.
bool fits_in_doubles(std::uint64_t requests, std::optional<std::uint64_t> burst, duration window) {
  std::uint64_t units = std::max(requests, burst.value_or(0));
  auto window_ms = static_cast<std::uint64_t>(window.count());
  if (window_ms == 0) return true;
  if (window_ms > max_request_microseconds / 1000) return false;
  return units <= max_request_microseconds / (window_ms * 1000);
}

const char* const plain_key_warning = "plain-text API key; ";

template <class T, class U>
void assign(T& target, const std::optional<U>& value) {
  if (value) target = static_cast<T>(*value);
}

class loader {
 public:
  // `base_dir`: where relative paths in the file (rls.config) start; "" = the working directory.
  explicit loader(std::string base_dir = {}) : base_dir_(std::move(base_dir)) {}
  load_result load(std::string_view text);

 private:
  void error(const YAML::Mark& at, std::string message);
  void warning(const YAML::Mark& at, std::string message);

  // Structure.
  std::optional<std::vector<field>> map_entries(const field& map);
  std::optional<std::vector<field>> list_elements(const field& list);
  void read_keys(const field& map, std::span<const key_reader> readers);

  // Scalars; each reports its own problem and returns nullopt on one.
  std::optional<std::string> read_scalar(const field& f, std::string_view expected);
  std::optional<std::string> read_name(const field& f);
  std::optional<std::string> read_identifier(const field& f);
  std::optional<std::string> read_text(const field& f);
  std::optional<std::string> read_header_name(const field& f);
  std::optional<std::string> read_cidr(const field& f);
  std::optional<std::string> read_api_key(const field& f, std::string_view advice);
  template <class T, std::size_t n>
  std::optional<T> read_choice(const field& f, const choice<T> (&choices)[n]);
  std::optional<std::uint64_t> read_integer(const field& f, std::uint64_t min, std::uint64_t max);
  std::optional<bool> read_bool(const field& f);
  std::optional<duration> read_duration(const field& f, bool allow_zero);
  std::optional<std::uint64_t> read_size(const field& f, std::uint64_t min);
  std::optional<endpoint> read_endpoint(const field& f);

  // Sections.
  void load_root(const YAML::Node& root);
  void load_server(const field& f);
  void load_admin(const field& f);
  void load_identity(const field& f);
  void load_consumers(const field& f);
  void load_consumer(const field& f);
  void load_storage(const field& f);
  void load_redis(const field& f, bool& nodes_listed);
  void load_upstreams(const field& f);
  void load_upstream(const field& f);
  void load_routes(const field& f);
  void load_route(const field& f);
  void load_match(const field& f, route_match& match);
  void load_headers(const field& f, bool& ietf, bool& legacy);
  void load_rls(const field& f);
  void load_rls_files(const field& paths);
  void load_domain_file(const std::string& path, const YAML::Node& root);
  void load_rls_descriptors(const field& f, std::vector<rls_descriptor>& out);
  void load_rls_descriptor(const field& f, rls_descriptor& d);
  void load_rls_rate_limit(const field& f, rls_rate_limit& r);
  void load_limits(const field& f, route& r);
  void load_limit(const field& f, route& r, std::map<std::string, int, std::less<>>& name_lines);
  void load_key(const field& f, std::vector<key_part>& key);
  std::optional<override_reading> load_override(const field& f);
  void load_when(const field& f, limit_override& o);
  void check_override(const override_reading& o, const limit& l);
  void check_upstream_refs();
  void check_consumer_refs();
  void load_server_tls(const field& f);
  std::optional<tls_certificate> load_tls_certificate(const field& f);
  void check_server_names(const field& certificates, const server_tls& t);
  void load_upstream_tls(const field& f, upstream& u);
  // A file path as written, relative ones from the gateway file's folder; nullopt if invalid.
  std::optional<std::string> read_path(const field& f);
  void check_tls_files();

  gateway_config config_;
  std::vector<problem> problems_;
  std::string base_dir_;
  YAML::Mark rls_mark_;
  std::string current_file_;  // "" while reading the gateway file, else the domain file's path
  std::vector<upstream_ref> upstream_refs_;
  std::vector<tls_file_ref> tls_files_;
  std::optional<field> client_cert_key_;  // the first limit keyed by client_cert
  std::optional<field> cert_consumer_;    // the first consumer with a cert_sha256
  std::vector<name_ref> consumer_refs_;
  std::vector<name_ref> tier_refs_;
  std::map<std::string, int, std::less<>> route_name_lines_;
  std::map<std::string, int, std::less<>> consumer_name_lines_;
  // key_sha256 -> "consumers[0] (line 3)", to name the first holder of a key given twice.
  std::map<std::string, std::string, std::less<>> consumer_keys_;
  std::map<std::string, std::string, std::less<>> consumer_certs_;  // cert_sha256 -> holder
};

void loader::error(const YAML::Mark& at, std::string message) {
  problem p;
  if (!at.is_null()) {
    p.line = at.line + 1;
    p.column = at.column + 1;
  }
  p.message = std::move(message);
  p.file = current_file_;
  problems_.push_back(std::move(p));
}

void loader::warning(const YAML::Mark& at, std::string message) {
  error(at, std::move(message));
  problems_.back().warning = true;
}

// --- structure ---------------------------------------------------------------------------------

// The entries of a map, reporting keys that are not names and keys given twice (yaml-cpp keeps
// both, and a silently ignored duplicate is the kind of typo that disables a limit). An empty
// value counts as an empty map.
std::optional<std::vector<field>> loader::map_entries(const field& map) {
  std::vector<field> entries;
  if (map.value.IsNull()) return entries;
  if (!map.value.IsMap()) {
    error(map.mark(), (map.path.empty() ? std::string{"the configuration"} : map.path) +
                          ": expected a map, got " + describe(map.value));
    return std::nullopt;
  }
  for (const auto& pair : map.value) {
    // Held by value: yaml-cpp's iterators yield temporaries, so a reference into `it->first`
    // dangles once the expression ends.
    YAML::Node key = pair.first;
    if (!key.IsScalar()) {
      error(key.Mark(), "expected a key name" + in_path(map.path) + ", got " + describe(key));
      continue;
    }
    bool duplicate = std::any_of(entries.begin(), entries.end(),
                                 [&](const field& e) { return e.key.Scalar() == key.Scalar(); });
    if (duplicate) {
      error(key.Mark(), "duplicate key " + quote(key.Scalar()) + in_path(map.path));
      continue;
    }
    entries.push_back(field{child_path(map.path, key.Scalar()), key, pair.second});
  }
  return entries;
}

// The elements of a list; an empty value counts as an empty list.
std::optional<std::vector<field>> loader::list_elements(const field& list) {
  std::vector<field> elements;
  if (list.value.IsNull()) return elements;
  if (!list.value.IsSequence()) {
    error(list.mark(), list.path + ": expected a list, got " + describe(list.value));
    return std::nullopt;
  }
  std::size_t index = 0;
  for (const YAML::Node& element : list.value) {
    elements.push_back(field{element_path(list.path, index++), element, element});
  }
  return elements;
}

void loader::read_keys(const field& map, std::span<const key_reader> readers) {
  auto entries = map_entries(map);
  if (!entries) return;
  for (const field& entry : *entries) {
    const std::string& name = entry.key.Scalar();
    auto reader = std::find_if(readers.begin(), readers.end(),
                               [&](const key_reader& r) { return r.name == name; });
    if (reader == readers.end()) {
      error(entry.key.Mark(), "unknown key " + quote(name) + in_path(map.path));
      continue;
    }
    reader->read(entry);
  }
  for (const key_reader& reader : readers) {
    if (!reader.required) continue;
    bool present = std::any_of(entries->begin(), entries->end(),
                               [&](const field& e) { return e.key.Scalar() == reader.name; });
    if (!present)
      error(map.mark(), "missing required key " + quote(reader.name) + in_path(map.path));
  }
}

// --- scalars -----------------------------------------------------------------------------------

std::optional<std::string> loader::read_scalar(const field& f, std::string_view expected) {
  if (!f.value.IsScalar()) {
    error(f.mark(), f.path + ": expected " + std::string{expected} + ", got " + describe(f.value));
    return std::nullopt;
  }
  return f.value.Scalar();
}

// A name other parts of the file refer to: any non-empty string.
std::optional<std::string> loader::read_name(const field& f) {
  auto text = read_scalar(f, "a name");
  if (!text) return std::nullopt;
  if (text->empty()) {
    error(f.mark(), f.path + ": must not be empty");
    return std::nullopt;
  }
  return text;
}

// A name that goes into Redis keys and metric labels: route and limit names.
std::optional<std::string> loader::read_identifier(const field& f) {
  auto text = read_name(f);
  if (!text) return std::nullopt;
  if (!is_identifier(*text)) {
    error(f.mark(), f.path + ": " + quote(*text) +
                        " may contain only letters, digits, \"_\", \".\" and \"-\"");
    return std::nullopt;
  }
  return text;
}

// Free text that may be empty; an empty value ("username:") is the empty string.
std::optional<std::string> loader::read_text(const field& f) {
  if (f.value.IsNull()) return std::string{};
  return read_scalar(f, "a string");
}

std::optional<std::string> loader::read_header_name(const field& f) {
  auto text = read_scalar(f, "an HTTP header name");
  if (!text) return std::nullopt;
  if (!is_token(*text)) {
    error(f.mark(), f.path + ": " + quote(*text) + " is not a valid HTTP header name");
    return std::nullopt;
  }
  return text;
}

// An address or a CIDR, returned in the canonical form "network/prefix" (a bare address gets
// /32 or /128). IPv4-mapped IPv6 addresses are kept as written: the resolver maps them.
std::optional<std::string> loader::read_cidr(const field& f) {
  namespace ip = boost::asio::ip;
  static constexpr std::string_view expected =
      "an IP address or CIDR (10.0.0.0/8, 2001:db8::/32, 127.0.0.1)";
  auto text = read_scalar(f, expected);
  if (!text) return std::nullopt;
  auto invalid = [&] {
    error(f.mark(), f.path + ": expected " + std::string{expected} + ", got " + quote(*text));
    return std::nullopt;
  };

  std::size_t slash = text->find('/');
  std::string address_text = text->substr(0, slash);
  // A zone ("fe80::1%eth0") names an interface of this host, never a proxy's address.
  if (address_text.find('%') != std::string::npos) return invalid();
  boost::system::error_code ec;
  ip::address address = ip::make_address(address_text, ec);
  if (ec) return invalid();
  if (slash != std::string::npos) {
    // Boost reads the length with atoi; a short run of digits keeps that well defined.
    std::string_view length = std::string_view{*text}.substr(slash + 1);
    if (length.empty() || length.size() > 3 ||
        !std::all_of(length.begin(), length.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return invalid();
    }
  }

  std::string network;
  bool host_bits = false;
  if (address.is_v4()) {
    ip::network_v4 net = slash == std::string::npos ? ip::network_v4{address.to_v4(), 32}
                                                    : ip::make_network_v4(*text, ec);
    if (ec) return invalid();
    host_bits = net != net.canonical();
    network = net.canonical().to_string();
  } else {
    ip::network_v6 net = slash == std::string::npos ? ip::network_v6{address.to_v6(), 128}
                                                    : ip::make_network_v6(*text, ec);
    if (ec) return invalid();
    host_bits = net != net.canonical();
    network = net.canonical().to_string();
  }
  if (host_bits) {
    // As nginx does: the meaning is clear, but the operator may have meant something narrower.
    warning(f.mark(), f.path + ": " + quote(*text) + " has host bits set; it means " + network);
  }
  return network;
}

// A plain-text API key, returned as its SHA-256. The key itself never appears in a message.
std::optional<std::string> loader::read_api_key(const field& f, std::string_view advice) {
  if (!f.value.IsScalar()) {
    error(f.mark(), f.path + ": expected an API key, got " + describe(f.value));
    return std::nullopt;
  }
  if (f.value.Scalar().empty()) {
    error(f.mark(), f.path + ": must not be empty");
    return std::nullopt;
  }
  warning(f.mark(), f.path + ": " + plain_key_warning + std::string{advice});
  return sha256_hex(f.value.Scalar());
}

template <class T, std::size_t n>
std::optional<T> loader::read_choice(const field& f, const choice<T> (&choices)[n]) {
  std::string expected = "one of ";
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0) expected += ", ";
    expected += choices[i].name;
  }
  auto text = read_scalar(f, expected);
  if (!text) return std::nullopt;
  for (const choice<T>& c : choices)
    if (c.name == *text) return c.value;
  error(f.mark(), f.path + ": expected " + expected + ", got " + quote(*text));
  return std::nullopt;
}

std::optional<std::uint64_t> loader::read_integer(const field& f, std::uint64_t min,
                                                  std::uint64_t max) {
  auto text = read_scalar(f, "an integer");
  if (!text) return std::nullopt;

  std::string_view digits = *text;
  bool negative = !digits.empty() && digits.front() == '-';
  if (negative) digits.remove_prefix(1);
  bool numeric = !digits.empty() && std::all_of(digits.begin(), digits.end(),
                                                [](char c) { return c >= '0' && c <= '9'; });
  if (!numeric) {
    error(f.mark(), f.path + ": expected an integer, got " + quote(*text));
    return std::nullopt;
  }
  // parse_size without a unit is exactly "digits that fit in 64 bits".
  auto value = negative ? std::nullopt : parse_size(digits);
  if (!value || *value < min || *value > max) {
    if (max == no_upper_bound && (value || negative)) {
      error(f.mark(), f.path + ": must be at least " + std::to_string(min) + ", got " + *text);
    } else {
      error(f.mark(), f.path + ": must be between " + std::to_string(min) + " and " +
                          std::to_string(max) + ", got " + *text);
    }
    return std::nullopt;
  }
  return value;
}

std::optional<bool> loader::read_bool(const field& f) {
  auto text = read_scalar(f, "true or false");
  if (!text) return std::nullopt;
  // YAML 1.2 booleans only: "yes", "on" and "y" are YAML 1.1 surprises.
  if (*text == "true" || *text == "True" || *text == "TRUE") return true;
  if (*text == "false" || *text == "False" || *text == "FALSE") return false;
  error(f.mark(), f.path + ": expected true or false, got " + quote(*text));
  return std::nullopt;
}

std::optional<duration> loader::read_duration(const field& f, bool allow_zero) {
  static constexpr std::string_view expected = "a duration with a unit (250ms, 10s, 5m, 1h, 1d)";
  auto text = read_scalar(f, expected);
  if (!text) return std::nullopt;
  auto value = parse_duration(*text);
  if (!value) {
    error(f.mark(), f.path + ": expected " + std::string{expected} + ", got " + quote(*text));
    return std::nullopt;
  }
  if (!allow_zero && value->count() == 0) {
    error(f.mark(), f.path + ": must be greater than 0, got " + quote(*text));
    return std::nullopt;
  }
  return value;
}

std::optional<std::uint64_t> loader::read_size(const field& f, std::uint64_t min) {
  static constexpr std::string_view expected =
      "a size in bytes, or with KiB, MiB or GiB (16KiB, 10MiB)";
  auto text = read_scalar(f, expected);
  if (!text) return std::nullopt;
  auto value = parse_size(*text);
  if (!value) {
    error(f.mark(), f.path + ": expected " + std::string{expected} + ", got " + quote(*text));
    return std::nullopt;
  }
  if (*value < min) {
    error(f.mark(),
          f.path + ": must be at least " + std::to_string(min) + " bytes, got " + quote(*text));
    return std::nullopt;
  }
  return value;
}

std::optional<endpoint> loader::read_endpoint(const field& f) {
  static constexpr std::string_view expected =
      "host:port or [IPv6]:port with a port from 1 to 65535";
  auto text = read_scalar(f, expected);
  if (!text) return std::nullopt;
  auto value = parse_endpoint(*text);
  if (!value) {
    error(f.mark(), f.path + ": expected " + std::string{expected} + ", got " + quote(*text));
    return std::nullopt;
  }
  return value;
}

// --- sections ----------------------------------------------------------------------------------

void loader::load_root(const YAML::Node& root) {
  if (!root.IsMap()) {
    // An empty document's mark points past its end; the start of the file reads better.
    if (root.IsNull())
      error(YAML::Mark{}, "the configuration is empty");
    else
      error(root.Mark(), "expected a map at the top level, got " + describe(root));
    return;
  }
  const key_reader readers[] = {
      {"server", [&](const field& f) { load_server(f); }},
      {"admin", [&](const field& f) { load_admin(f); }},
      {"identity", [&](const field& f) { load_identity(f); }},
      {"consumers", [&](const field& f) { load_consumers(f); }},
      {"storage", [&](const field& f) { load_storage(f); }},
      {"upstreams", [&](const field& f) { load_upstreams(f); }},
      {"routes", [&](const field& f) { load_routes(f); }},
      {"rls", [&](const field& f) { load_rls(f); }},
  };
  read_keys(field{"", root, root}, readers);
  // gRPC and HTTP on one port would split connections between them (SO_REUSEPORT).
  if (config_.rls && (config_.rls->listen == config_.server.listen ||
                      config_.rls->listen == config_.admin.listen))
    error(rls_mark_, "rls.listen " + config_.rls->listen.to_string() +
                         " is also the server's or the admin's address");
  check_upstream_refs();
  check_consumer_refs();
  check_tls_files();
  const bool client_certs = config_.server.tls && !config_.server.tls->client_ca.empty() &&
                            config_.server.tls->auth != client_auth::none;
  if (client_cert_key_ && !client_certs)
    error(client_cert_key_->mark(), client_cert_key_->path +
                                        ": client_cert needs server.tls with client_ca (and "
                                        "client_auth optional or required)");
  if (cert_consumer_ && !client_certs)
    warning(cert_consumer_->mark(), cert_consumer_->path +
                                        ": no client certificate is asked for (server.tls "
                                        "client_ca), so no request can match cert_sha256");
}

void loader::load_server(const field& f) {
  server_settings& s = config_.server;
  const key_reader readers[] = {
      {"listen", [&](const field& v) { assign(s.listen, read_endpoint(v)); }},
      {"workers", [&](const field& v) { assign(s.workers, read_integer(v, 0, max_workers)); }},
      {"max_connections",
       [&](const field& v) {
         assign(s.max_connections, read_integer(v, 1, max_connections_limit));
       }},
      {"header_timeout",
       [&](const field& v) { assign(s.header_timeout, read_duration(v, false)); }},
      {"idle_timeout", [&](const field& v) { assign(s.idle_timeout, read_duration(v, false)); }},
      {"max_header_bytes", [&](const field& v) { assign(s.max_header_bytes, read_size(v, 1)); }},
      {"max_body_bytes", [&](const field& v) { assign(s.max_body_bytes, read_size(v, 0)); }},
      // Zero is meaningful here: exit at once without waiting for in-flight requests.
      {"drain_timeout", [&](const field& v) { assign(s.drain_timeout, read_duration(v, true)); }},
      {"log_level",
       [&](const field& v) { assign(s.log_level, read_choice(v, log_level_choices)); }},
      {"access_log", [&](const field& v) { assign(s.access_log, read_bool(v)); }},
      {"watch_config", [&](const field& v) { assign(s.watch_config, read_bool(v)); }},
      {"tls", [&](const field& v) { load_server_tls(v); }},
  };
  read_keys(f, readers);
}

std::optional<std::string> loader::read_path(const field& f) {
  auto written = read_name(f);
  if (!written) return std::nullopt;
  // Relative to the gateway file's folder, as rls.config is.
  if (std::filesystem::path(*written).is_relative() && !base_dir_.empty())
    return (std::filesystem::path(base_dir_) / *written).lexically_normal().string();
  return written;
}

// A server name a certificate is chosen by: a DNS name, lower case, or "*." and one.
bool is_server_name(std::string_view name) {
  if (name.starts_with("*.")) name.remove_prefix(2);
  if (name.empty() || name.size() > 253) return false;
  std::size_t label = 0;
  for (char c : name) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
    } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '-') {
      if (++label > 63) return false;
    } else {
      return false;
    }
  }
  return label > 0;
}

void loader::load_server_tls(const field& f) {
  if (!f.value.IsMap()) {
    error(f.mark(), f.path + ": expected a map with certificates, got " + describe(f.value));
    return;
  }
  server_tls t;
  std::optional<field> auth_field;
  const key_reader readers[] = {
      {"certificates",
       [&](const field& v) {
         auto elements = list_elements(v);
         if (!elements) return;
         if (elements->empty()) error(v.mark(), v.path + ": needs at least one certificate");
         for (const field& element : *elements)
           if (auto c = load_tls_certificate(element)) t.certificates.push_back(std::move(*c));
         check_server_names(v, t);
       },
       true},
      {"min_version",
       [&](const field& v) { assign(t.min_version, read_choice(v, tls_version_choices)); }},
      {"client_ca",
       [&](const field& v) {
         if (auto path = read_path(v)) {
           t.client_ca = *path;
           tls_files_.push_back({*path, {}, v});
         }
       }},
      {"client_auth",
       [&](const field& v) {
         auth_field = v;
         assign(t.auth, read_choice(v, client_auth_choices));
       }},
  };
  read_keys(f, readers);
  if (!auth_field && !t.client_ca.empty()) t.auth = client_auth::optional;
  if (auth_field && t.auth != client_auth::none && t.client_ca.empty())
    error(auth_field->mark(), auth_field->path + ": client_auth " +
                                  (t.auth == client_auth::required ? "required" : "optional") +
                                  " needs client_ca, the CAs client certificates are checked "
                                  "against");
  config_.server.tls = std::move(t);
}

std::optional<tls_certificate> loader::load_tls_certificate(const field& f) {
  if (!f.value.IsMap()) {
    error(f.mark(), f.path + ": expected a map with cert, key and server_names, got " +
                        describe(f.value));
    return std::nullopt;
  }
  tls_certificate c;
  bool valid = true;
  const key_reader readers[] = {
      {"cert",
       [&](const field& v) {
         if (auto path = read_path(v)) c.cert = *path; else valid = false;
       },
       true},
      {"key",
       [&](const field& v) {
         if (auto path = read_path(v)) c.key = *path; else valid = false;
       },
       true},
      {"server_names",
       [&](const field& v) {
         auto elements = list_elements(v);
         if (!elements) return;
         for (const field& element : *elements) {
           auto name = read_name(element);
           if (!name) continue;
           const auto lower = to_lower(*name);
           if (!is_server_name(lower)) {
             error(element.mark(), element.path + ": " + quote(*name) +
                                       " is not a server name (a DNS name, or \"*.\" and one)");
             continue;
           }
           c.server_names.push_back(lower);
         }
       }},
  };
  read_keys(f, readers);
  if (!valid || c.cert.empty() || c.key.empty()) return std::nullopt;
  tls_files_.push_back({c.cert, c.key, f});
  return c;
}

void loader::check_server_names(const field& certificates, const server_tls& t) {
  std::map<std::string, std::size_t, std::less<>> first_of;  // name -> certificate index
  for (std::size_t i = 0; i < t.certificates.size(); ++i) {
    const auto& names = t.certificates[i].server_names;
    if (names.empty() && i > 0)
      warning(certificates.mark(), certificates.path + "[" + std::to_string(i) +
                                       "]: lists no server_names, so SNI never chooses it "
                                       "(only the first certificate serves names none lists)");
    for (const auto& name : names) {
      auto [at, inserted] = first_of.emplace(name, i);
      if (!inserted)
        error(certificates.mark(), certificates.path + "[" + std::to_string(i) +
                                       "]: server name " + quote(name) +
                                       " is already served by certificates[" +
                                       std::to_string(at->second) + "]");
    }
  }
}

void loader::load_upstream_tls(const field& f, upstream& u) {
  if (f.value.IsNull()) {  // "tls:" alone: TLS with the defaults
    u.tls = upstream_tls{};
    return;
  }
  if (!f.value.IsMap()) {
    error(f.mark(), f.path + ": expected a map (ca, server_name, verify, cert, key), got " +
                        describe(f.value));
    return;
  }
  upstream_tls t;
  // "" means not set (SPEC 13 writes cert: "" for "no client certificate").
  auto unset = [](const field& v) {
    return v.value.IsNull() || (v.value.IsScalar() && v.value.Scalar().empty());
  };
  std::optional<field> cert_field, key_field;
  const key_reader readers[] = {
      {"ca",
       [&](const field& v) {
         if (unset(v)) return;
         if (auto path = read_path(v)) {
           t.ca = *path;
           tls_files_.push_back({*path, {}, v});
         }
       }},
      {"server_name",
       [&](const field& v) {
         if (unset(v)) return;
         auto name = read_name(v);
         if (!name) return;
         if (!is_server_name(to_lower(*name)) || name->starts_with("*.")) {
           error(v.mark(), v.path + ": " + quote(*name) + " is not a DNS name");
           return;
         }
         t.server_name = to_lower(*name);
       }},
      {"verify", [&](const field& v) { assign(t.verify, read_bool(v)); }},
      {"cert",
       [&](const field& v) {
         if (unset(v)) return;
         cert_field = v;
         assign(t.cert, read_path(v));
       }},
      {"key",
       [&](const field& v) {
         if (unset(v)) return;
         key_field = v;
         assign(t.key, read_path(v));
       }},
  };
  read_keys(f, readers);
  if (cert_field && !key_field) {
    error(cert_field->mark(), cert_field->path + ": a client certificate needs its key (key)");
  } else if (key_field && !cert_field) {
    error(key_field->mark(), key_field->path + ": a key needs its client certificate (cert)");
  } else if (!t.cert.empty() && !t.key.empty()) {
    tls_files_.push_back({t.cert, t.key, *cert_field});
  }
  if (!t.verify)
    warning(f.mark(), f.path + ": verify: false accepts any certificate the upstream shows");
  u.tls = std::move(t);
}

void loader::check_tls_files() {
  const auto now = std::chrono::system_clock::now();
  for (const auto& ref : tls_files_) {
    if (ref.key.empty()) {
      if (auto problem = check_ca_bundle(ref.cert)) error(ref.where.mark(), ref.where.path + ": " + *problem);
      continue;
    }
    const auto checked = check_certificate_and_key(ref.cert, ref.key);
    if (checked.error) {
      error(ref.where.mark(), ref.where.path + ": " + *checked.error);
      continue;
    }
    const auto& leaf = checked.leaf;
    if (leaf.not_after <= now) {
      error(ref.where.mark(), ref.where.path + ": the certificate in " + quote(ref.cert) +
                                  " (" + leaf.subject + ") has expired");
    } else if (leaf.not_before > now) {
      error(ref.where.mark(), ref.where.path + ": the certificate in " + quote(ref.cert) +
                                  " (" + leaf.subject + ") is not valid yet");
    } else if (checked.chain_not_after <= now) {
      error(ref.where.mark(), ref.where.path + ": a certificate of the chain in " +
                                  quote(ref.cert) + " has expired");
    } else if (std::min(leaf.not_after, checked.chain_not_after) - now <
                                 std::chrono::hours(24 * 30)) {
      const auto hours = std::chrono::duration_cast<std::chrono::hours>(
                             std::min(leaf.not_after, checked.chain_not_after) - now)
                             .count();
      const auto when = hours < 48 ? std::to_string(hours) + (hours == 1 ? " hour" : " hours")
                                   : std::to_string(hours / 24) + " days";
      warning(ref.where.mark(), ref.where.path + ": the certificate in " + quote(ref.cert) +
                                    " (" + leaf.subject + ") expires in " + when);
    }
  }
}

void loader::load_admin(const field& f) {
  admin_settings& a = config_.admin;
  const key_reader readers[] = {
      {"listen", [&](const field& v) { assign(a.listen, read_endpoint(v)); }},
  };
  read_keys(f, readers);
}

void loader::load_identity(const field& f) {
  identity_settings& id = config_.identity;
  const key_reader readers[] = {
      {"trusted_proxies",
       [&](const field& v) {
         auto elements = list_elements(v);
         if (!elements) return;
         for (const field& element : *elements) {
           if (auto cidr = read_cidr(element)) id.trusted_proxies.push_back(std::move(*cidr));
         }
       }},
      {"forwarded_header",
       [&](const field& v) { assign(id.forwarded_header, read_header_name(v)); }},
      {"api_key_header", [&](const field& v) { assign(id.api_key_header, read_header_name(v)); }},
  };
  read_keys(f, readers);
}

void loader::load_consumers(const field& f) {
  auto elements = list_elements(f);
  if (!elements) return;
  for (const field& element : *elements) load_consumer(element);
}

void loader::load_consumer(const field& f) {
  // Not described: an operator who wrote the bare key here would find it in the message.
  if (!f.value.IsMap() && !f.value.IsNull()) {
    error(f.mark(), f.path + ": expected a map with name, key_sha256 and tier");
    return;
  }
  consumer c;
  std::optional<field> key_field;  // key or key_sha256, whichever came first
  std::optional<field> cert_field;
  const key_reader readers[] = {
      {"name",
       [&](const field& v) {
         auto name = read_name(v);
         if (!name) return;
         c.name = *name;
         auto [first, inserted] = consumer_name_lines_.emplace(*name, v.mark().line + 1);
         if (!inserted) {
           error(v.mark(), v.path + ": duplicate consumer name " + quote(*name) +
                               " (first at line " + std::to_string(first->second) + ")");
         }
       },
       true},
      {"key_sha256",
       [&](const field& v) {
         if (key_field) {
           error(v.key.Mark(), f.path + ": only one of key, key_sha256 may be set");
           return;
         }
         key_field = v;
         // The value is never quoted: it may be the plain key written in the wrong place.
         if (!v.value.IsScalar()) {
           error(v.mark(), v.path + ": expected 64 hexadecimal digits, got " + describe(v.value));
           return;
         }
         if (!is_sha256_hex(v.value.Scalar())) {
           error(v.mark(), v.path + ": expected 64 hexadecimal digits (a SHA-256), got " +
                               std::to_string(v.value.Scalar().size()) + " characters");
           return;
         }
         c.key_sha256 = to_lower(v.value.Scalar());
       }},
      {"key",
       [&](const field& v) {
         if (key_field) {
           error(v.key.Mark(), f.path + ": only one of key, key_sha256 may be set");
           return;
         }
         key_field = v;
         assign(c.key_sha256, read_api_key(v, "store its SHA-256 as key_sha256 instead"));
       }},
      {"tier", [&](const field& v) { assign(c.tier, read_name(v)); }},
      {"cert_sha256",
       [&](const field& v) {
         cert_field = v;
         if (!cert_consumer_) cert_consumer_ = v;
         if (!v.value.IsScalar()) {
           error(v.mark(), v.path + ": expected a SHA-256 fingerprint, got " + describe(v.value));
           return;
         }
         // As openssl x509 -fingerprint -sha256 prints it ("AB:CD:..."), or bare hex.
         std::string hex;
         for (char ch : v.value.Scalar())
           if (ch != ':') hex += ch;
         if (!is_sha256_hex(hex)) {
           error(v.mark(), v.path + ": expected a SHA-256 fingerprint (64 hexadecimal digits, "
                                    "colons allowed), got " + quote(v.value.Scalar()));
           return;
         }
         c.cert_sha256 = to_lower(hex);
         auto [first, inserted] = consumer_certs_.emplace(
             c.cert_sha256, f.path + " (line " + std::to_string(f.mark().line + 1) + ")");
         if (!inserted)
           error(v.mark(), v.path + ": the same certificate as " + first->second);
       }},
  };
  read_keys(f, readers);
  if (!key_field && !cert_field) {
    error(f.mark(), "missing required key \"key_sha256\" (or \"key\", or \"cert_sha256\") in " +
                        f.path);
  }
  if (!c.key_sha256.empty()) {
    std::string holder = f.path + " (line " + std::to_string(f.mark().line + 1) + ")";
    auto [first, inserted] = consumer_keys_.emplace(c.key_sha256, holder);
    if (!inserted) {
      error(key_field->mark(), key_field->path + ": the same API key as " + first->second);
    }
  }
  // Kept even when invalid, so that overrides naming it do not report a second problem.
  config_.consumers.push_back(std::move(c));
}

void loader::load_storage(const field& f) {
  storage_settings& s = config_.storage;
  std::optional<field> backend;
  std::optional<field> lease_field;
  bool nodes_listed = false;  // given and not empty, even if an entry was invalid
  const key_reader readers[] = {
      {"backend",
       [&](const field& v) {
         backend = v;
         assign(s.backend, read_choice(v, backend_choices));
       }},
      {"failure_mode",
       [&](const field& v) { assign(s.on_failure, read_choice(v, failure_mode_choices)); }},
      {"local_cache", [&](const field& v) { assign(s.local_cache, read_bool(v)); }},
      {"memory",
       [&](const field& v) {
         const key_reader memory_readers[] = {
             {"max_keys",
              [&](const field& m) {
                assign(s.memory_max_keys,
                       read_integer(m, 1, std::numeric_limits<std::size_t>::max()));
              }},
         };
         read_keys(v, memory_readers);
       }},
      {"redis", [&](const field& v) { load_redis(v, nodes_listed); }},
      {"lease",
       [&](const field& v) {
         lease_settings lease;
         const key_reader lease_readers[] = {
             {"max_units", [&](const field& m) { assign(lease.max_units, read_integer(m, 1, 4096)); }},
             {"max_duration",
              [&](const field& m) {
                auto d = read_duration(m, false);
                if (d && *d > std::chrono::seconds(10)) {
                  error(m.mark(), m.path + ": at most 10s (units held that long are units others "
                                           "wait for)");
                  return;
                }
                assign(lease.max_duration, d);
              }},
         };
         read_keys(v, lease_readers);
         lease_field = v;
         s.lease = lease;
       }},
  };
  read_keys(f, readers);
  if (lease_field && s.backend == store_backend::memory)
    warning(lease_field->mark(), lease_field->path +
                                     ": the memory store answers at once; leases apply to redis "
                                     "and redis_cluster only");
  if (backend && s.backend == store_backend::redis_cluster && !nodes_listed) {
    error(backend->mark(),
          backend->path + ": redis_cluster needs its seed nodes in storage.redis.nodes");
  }
  if (backend && s.backend == store_backend::redis_cluster && s.redis.database != 0) {
    error(backend->mark(), backend->path +
                               ": a Redis Cluster has only database 0, storage.redis.database is " +
                               std::to_string(s.redis.database));
  }
}

void loader::load_redis(const field& f, bool& nodes_listed) {
  redis_settings& r = config_.storage.redis;
  const key_reader readers[] = {
      {"address", [&](const field& v) { assign(r.address, read_endpoint(v)); }},
      {"nodes",
       [&](const field& v) {
         auto elements = list_elements(v);
         if (!elements) return;
         nodes_listed = !elements->empty();
         for (const field& element : *elements) {
           if (auto node = read_endpoint(element)) r.nodes.push_back(std::move(*node));
         }
       }},
      {"username", [&](const field& v) { assign(r.username, read_text(v)); }},
      {"password_env",
       [&](const field& v) {
         auto name = read_text(v);
         if (!name) return;
         // Not quoted: what is written here by mistake is most likely the password itself.
         if (!name->empty() && !is_environment_name(*name)) {
           error(v.mark(), v.path +
                               ": expected the name of an environment variable (letters, digits "
                               "and \"_\", not starting with a digit), not the password itself");
           return;
         }
         r.password_env = *name;
       }},
      {"database",
       [&](const field& v) { assign(r.database, read_integer(v, 0, max_redis_database)); }},
      {"key_prefix",
       [&](const field& v) {
         auto prefix = read_text(v);
         if (!prefix) return;
         if (prefix->find_first_of("{}") != std::string::npos) {
           error(v.mark(), v.path +
                               ": must not contain \"{\" or \"}\" (the gateway puts a Redis "
                               "Cluster hash tag after it), got " +
                               quote(*prefix));
           return;
         }
         r.key_prefix = *prefix;
       }},
      {"connect_timeout",
       [&](const field& v) { assign(r.connect_timeout, read_duration(v, false)); }},
      {"command_timeout",
       [&](const field& v) { assign(r.command_timeout, read_duration(v, false)); }},
      {"connections_per_worker",
       [&](const field& v) {
         assign(r.connections_per_worker, read_integer(v, 1, max_connections_per_worker));
       }},
  };
  read_keys(f, readers);
}

void loader::load_upstreams(const field& f) {
  auto entries = map_entries(f);
  if (!entries) return;
  for (const field& entry : *entries) {
    if (entry.key.Scalar().empty()) {
      error(entry.key.Mark(), f.path + ": an upstream name must not be empty");
      continue;
    }
    // A metric label, and the Host of an HTTP/1.0 request that came without one.
    if (!is_identifier(entry.key.Scalar())) {
      error(entry.key.Mark(), f.path + ": upstream name " + quote(entry.key.Scalar()) +
                                  " may contain only letters, digits, \"_\", \".\" and \"-\"");
      continue;
    }
    load_upstream(entry);
  }
}

void loader::load_upstream(const field& f) {
  upstream u;
  u.name = f.key.Scalar();
  const key_reader readers[] = {
      {"tls", [&](const field& v) { load_upstream_tls(v, u); }},
      {"servers",
       [&](const field& v) {
         auto elements = list_elements(v);
         if (!elements) return;
         if (elements->empty()) {
           error(v.mark(), v.path + ": an upstream needs at least one server");
           return;
         }
         for (const field& element : *elements) {
           if (auto server = read_endpoint(element)) u.servers.push_back(std::move(*server));
         }
       },
       true},
      {"connect_timeout",
       [&](const field& v) { assign(u.connect_timeout, read_duration(v, false)); }},
      {"timeout", [&](const field& v) { assign(u.timeout, read_duration(v, false)); }},
      {"max_idle_per_server",
       [&](const field& v) { assign(u.max_idle_per_server, read_integer(v, 0, max_idle_limit)); }},
      {"eject_after_failures",
       [&](const field& v) {
         assign(u.eject_after_failures, read_integer(v, 1, max_eject_after_failures));
       }},
      {"eject_for", [&](const field& v) { assign(u.eject_for, read_duration(v, false)); }},
  };
  read_keys(f, readers);
  // Kept even when invalid, so that routes naming it do not report a second, misleading problem.
  config_.upstreams.push_back(std::move(u));
}

void loader::load_routes(const field& f) {
  auto elements = list_elements(f);
  if (!elements) return;
  for (const field& element : *elements) load_route(element);
}

void loader::load_route(const field& f) {
  if (!f.value.IsMap()) {
    error(f.mark(), f.path + ": expected a map, got " + describe(f.value));
    return;
  }
  route r;
  std::optional<field> strip_prefix;
  const key_reader readers[] = {
      {"name",
       [&](const field& v) {
         auto name = read_identifier(v);
         if (!name) return;
         r.name = *name;
         auto [first, inserted] = route_name_lines_.emplace(*name, v.mark().line + 1);
         if (!inserted) {
           error(v.mark(), v.path + ": duplicate route name " + quote(*name) + " (first at line " +
                               std::to_string(first->second) + ")");
         }
       },
       true},
      {"match", [&](const field& v) { load_match(v, r.match); }},
      {"upstream",
       [&](const field& v) {
         auto name = read_name(v);
         if (!name) return;
         r.upstream = *name;
         upstream_refs_.push_back(upstream_ref{*name, v});
       },
       true},
      {"strip_prefix",
       [&](const field& v) {
         assign(r.strip_prefix, read_bool(v));
         strip_prefix = v;
       }},
      {"auth", [&](const field& v) { assign(r.auth, read_choice(v, auth_choices)); }},
      {"failure_mode",
       [&](const field& v) { assign(r.on_failure, read_choice(v, failure_mode_choices)); }},
      {"shadow", [&](const field& v) { assign(r.shadow, read_bool(v)); }},
      {"headers", [&](const field& v) { load_headers(v, r.ietf_headers, r.legacy_headers); }},
      {"limits", [&](const field& v) { load_limits(v, r); }},
  };
  read_keys(f, readers);
  // Checked after all keys: strip_prefix may come before match in the file.
  if (strip_prefix && r.strip_prefix && !r.match.path_prefix) {
    error(strip_prefix->mark(), strip_prefix->path + ": requires match.path_prefix");
  }
  config_.routes.push_back(std::move(r));
}

void loader::load_match(const field& f, route_match& match) {
  std::vector<field> path_matchers;  // in file order, to point at the second one
  // path and path_prefix are kept even when invalid, so that strip_prefix is judged on what the
  // operator wrote rather than reported a second time.
  auto read_path = [&](const field& v, std::optional<std::string>& target) {
    path_matchers.push_back(v);
    auto text = read_scalar(v, "a path starting with \"/\"");
    if (!text) return;
    if (text->empty() || text->front() != '/') {
      error(v.mark(), v.path + ": must start with \"/\", got " + quote(*text));
    }
    target = *text;
  };
  const key_reader readers[] = {
      {"path", [&](const field& v) { read_path(v, match.path); }},
      {"path_prefix", [&](const field& v) { read_path(v, match.path_prefix); }},
      {"path_regex",
       [&](const field& v) {
         path_matchers.push_back(v);
         auto text = read_scalar(v, "a regular expression");
         if (!text) return;
         try {
           std::regex compiled{*text, std::regex::ECMAScript};
         } catch (const std::regex_error& e) {
           error(v.mark(),
                 v.path + ": invalid regular expression " + quote(*text) + ": " + e.what());
         }
         match.path_regex = *text;
       }},
      {"methods",
       [&](const field& v) {
         auto elements = list_elements(v);
         if (!elements) return;
         for (const field& element : *elements) {
           auto method = read_scalar(element, "an HTTP method");
           if (!method) continue;
           if (!is_token(*method)) {
             error(element.mark(),
                   element.path + ": " + quote(*method) + " is not a valid HTTP method");
             continue;
           }
           match.methods.push_back(to_upper(*method));
         }
       }},
      {"host",
       [&](const field& v) {
         static constexpr std::string_view expected = "a host name without port or path";
         auto text = read_scalar(v, expected);
         if (!text) return;
         bool bad = text->empty() || std::any_of(text->begin(), text->end(), [](unsigned char c) {
                      return c == ':' || c == '/' || c <= 0x20 || c == 0x7f;
                    });
         if (bad) {
           error(v.mark(),
                 v.path + ": expected " + std::string{expected} + ", got " + quote(*text));
           return;
         }
         match.host = to_lower(*text);
       }},
  };
  read_keys(f, readers);
  for (std::size_t i = 1; i < path_matchers.size(); ++i) {
    error(path_matchers[i].key.Mark(),
          f.path + ": only one of path, path_prefix, path_regex may be set");
  }
}

void loader::load_headers(const field& f, bool& ietf, bool& legacy) {
  auto elements = list_elements(f);
  if (!elements) return;
  // Listing them replaces the default; an empty list sends none.
  ietf = false;
  legacy = false;
  for (const field& element : *elements) {
    auto kind = read_choice(element, header_choices);
    if (!kind) continue;
    bool& wanted = *kind == rate_limit_headers::ietf ? ietf : legacy;
    if (wanted) {
      error(element.mark(),
            element.path + ": " + quote(element.value.Scalar()) + " is listed twice");
    }
    wanted = true;
  }
}

void loader::load_limits(const field& f, route& r) {
  auto elements = list_elements(f);
  if (!elements) return;
  std::map<std::string, int, std::less<>> name_lines;
  for (const field& element : *elements) load_limit(element, r, name_lines);
}

void loader::load_limit(const field& f, route& r,
                        std::map<std::string, int, std::less<>>& name_lines) {
  limit l;
  // What the checks across keys need: which values were given, and whether they were valid.
  bool algorithm_valid = true;
  std::optional<std::uint64_t> requests;
  std::optional<duration> window;
  std::optional<field> burst;
  bool burst_valid = true;
  std::optional<field> cost;
  bool cost_valid = true;
  std::vector<override_reading> overrides;

  const key_reader readers[] = {
      {"name",
       [&](const field& v) {
         auto name = read_identifier(v);
         if (!name) return;
         l.name = *name;
         auto [first, inserted] = name_lines.emplace(*name, v.mark().line + 1);
         if (!inserted) {
           error(v.mark(), v.path + ": duplicate limit name " + quote(*name) +
                               " in this route (first at line " + std::to_string(first->second) +
                               ")");
         }
       },
       true},
      {"key", [&](const field& v) { load_key(v, l.key); }, true},
      {"algorithm",
       [&](const field& v) {
         auto algorithm = read_choice(v, algorithm_choices);
         algorithm_valid = algorithm.has_value();
         assign(l.algorithm, algorithm);
       }},
      {"requests",
       [&](const field& v) {
         requests = read_integer(v, 1, no_upper_bound);
         assign(l.requests, requests);
       },
       true},
      {"window",
       [&](const field& v) {
         window = read_duration(v, false);
         assign(l.window, window);
       },
       true},
      {"burst",
       [&](const field& v) {
         burst = v;
         l.burst = read_integer(v, 1, no_upper_bound);
         burst_valid = l.burst.has_value();
       }},
      {"cost",
       [&](const field& v) {
         cost = v;
         auto value = read_integer(v, 1, no_upper_bound);
         cost_valid = value.has_value();
         assign(l.cost, value);
       }},
      {"overrides",
       [&](const field& v) {
         auto elements = list_elements(v);
         if (!elements) return;
         for (const field& element : *elements) {
           if (auto o = load_override(element)) overrides.push_back(std::move(*o));
         }
       }},
      {"lease", [&](const field& v) { assign(l.lease, read_bool(v)); }},
  };
  read_keys(f, readers);

  // Checked after all keys: algorithm may come after burst and overrides in the file.
  // An invalid burst is already reported; one problem per value is enough.
  if (burst && l.burst && algorithm_valid && !takes_burst(l.algorithm)) {
    error(burst->mark(), burst->path + ": only gcra and token_bucket take a burst, not " +
                             std::string{name_of(l.algorithm)});
    burst_valid = false;
  }
  bool base_valid = algorithm_valid && requests && window && burst_valid && cost_valid;
  if (base_valid) {
    std::uint64_t most = capacity(l.algorithm, l.requests, l.burst);
    if (cost && l.cost > most) {
      error(cost->mark(), cost->path + ": " + std::to_string(l.cost) +
                              " is more than the limit's capacity of " + std::to_string(most) +
                              (takes_burst(l.algorithm) ? " (burst)" : " (requests)") +
                              ", so no request would ever be admitted");
    }
    if (!fits_in_doubles(l.requests, l.burst, l.window)) {
      error(f.mark(), f.path +
                          ": requests × window is too large (at most 2^53 "
                          "request-microseconds)");
    }
    for (override_reading& o : overrides) check_override(o, l);
  }
  for (override_reading& o : overrides) l.overrides.push_back(std::move(o.value));
  r.limits.push_back(std::move(l));
}

void loader::load_key(const field& f, std::vector<key_part>& key) {
  auto elements = list_elements(f);
  if (!elements) return;
  if (elements->empty()) {
    error(f.mark(), f.path + ": a limit needs at least one key part");
    return;
  }
  static constexpr std::string_view expected =
      "client_ip, api_key, consumer, tier, route, method, path, client_cert, header:NAME or "
      "query:NAME";
  for (const field& element : *elements) {
    auto text = read_scalar(element, "a key part");
    if (!text) continue;
    std::string_view written = *text;
    std::size_t colon = written.find(':');
    std::string_view kind = written.substr(0, colon);
    key_part part{key_part::client_ip, {}};
    if (colon != std::string_view::npos && (kind == "header" || kind == "query")) {
      std::string_view name = written.substr(colon + 1);
      std::string_view what = kind == "header" ? "header" : "query parameter";
      if (name.empty()) {
        error(element.mark(), element.path + ": " + quote(written) + " needs a " +
                                  std::string{what} + " name (" + std::string{kind} + ":NAME)");
        continue;
      }
      if (!is_token(name)) {
        error(element.mark(), element.path + ": " + quote(written) + ": " + quote(name) +
                                  " is not a valid " + std::string{what} + " name");
        continue;
      }
      // Header names are case-insensitive; query parameter names are not.
      part = kind == "header" ? key_part{key_part::header, to_lower(std::string{name})}
                              : key_part{key_part::query, std::string{name}};
    } else {
      auto plain = std::find_if(std::begin(plain_key_parts), std::end(plain_key_parts),
                                [&](const auto& c) { return c.name == written; });
      if (plain == std::end(plain_key_parts)) {
        error(element.mark(), element.path + ": unknown key part " + quote(written) +
                                  "; expected " + std::string{expected});
        continue;
      }
      part.kind = plain->value;
      if (part.kind == key_part::client_cert && !client_cert_key_) client_cert_key_ = element;
    }
    if (std::find(key.begin(), key.end(), part) != key.end()) {
      error(element.mark(), element.path + ": " + quote(written) + " is listed twice");
      continue;
    }
    key.push_back(std::move(part));
  }
}

std::optional<override_reading> loader::load_override(const field& f) {
  if (!f.value.IsMap()) {
    error(f.mark(), f.path + ": expected a map with when and requests, window or burst, got " +
                        describe(f.value));
    return std::nullopt;
  }
  override_reading o{{}, f, std::nullopt, true};
  bool any_value = false;
  const key_reader readers[] = {
      {"when", [&](const field& v) { load_when(v, o.value); }, true},
      {"requests",
       [&](const field& v) {
         any_value = true;
         o.value.requests = read_integer(v, 1, no_upper_bound);
         o.values_valid = o.values_valid && o.value.requests;
       }},
      {"window",
       [&](const field& v) {
         any_value = true;
         o.value.window = read_duration(v, false);
         o.values_valid = o.values_valid && o.value.window;
       }},
      {"burst",
       [&](const field& v) {
         any_value = true;
         o.burst = v;
         o.value.burst = read_integer(v, 1, no_upper_bound);
         o.values_valid = o.values_valid && o.value.burst;
       }},
  };
  read_keys(f, readers);
  if (!any_value) {
    error(f.mark(), f.path + ": an override needs at least one of requests, window, burst");
    o.values_valid = false;
  }
  return o;
}

void loader::load_when(const field& f, limit_override& o) {
  // Not described: a bare API key written here would otherwise end up in the message.
  if (!f.value.IsMap()) {
    error(f.mark(), f.path + ": expected a map with at least one of consumer, tier, api_key");
    return;
  }
  const key_reader readers[] = {
      {"consumer",
       [&](const field& v) {
         o.consumer = read_name(v);
         if (o.consumer) consumer_refs_.push_back(name_ref{*o.consumer, v});
       }},
      {"tier",
       [&](const field& v) {
         o.tier = read_name(v);
         if (o.tier) tier_refs_.push_back(name_ref{*o.tier, v});
       }},
      {"api_key",
       [&](const field& v) {
         o.api_key_sha256 =
             read_api_key(v, "give it to a consumer as key_sha256 and match when.consumer instead");
       }},
  };
  read_keys(f, readers);
  if (f.value.size() == 0) {
    error(f.mark(), f.path + ": needs at least one of consumer, tier, api_key");
  }
}

// An override against its limit: what it leaves out comes from the limit; an unset burst on both
// means the effective requests.
void loader::check_override(const override_reading& o, const limit& l) {
  if (o.burst && o.value.burst && !takes_burst(l.algorithm)) {
    error(o.burst->mark(), o.burst->path + ": only gcra and token_bucket take a burst, not " +
                               std::string{name_of(l.algorithm)});
    return;
  }
  if (!o.values_valid) return;
  const limit_override& v = o.value;
  std::uint64_t requests = v.requests.value_or(l.requests);
  std::optional<std::uint64_t> burst = v.burst ? v.burst : l.burst;
  duration window = v.window.value_or(l.window);
  std::uint64_t most = capacity(l.algorithm, requests, burst);
  if ((v.requests || v.burst) && l.cost > most) {
    error(o.where.mark(), o.where.path + ": the limit's cost of " + std::to_string(l.cost) +
                              " is more than this override's capacity of " + std::to_string(most) +
                              (takes_burst(l.algorithm) ? " (burst)" : " (requests)") +
                              ", so no request would ever be admitted");
  }
  if (!fits_in_doubles(requests, takes_burst(l.algorithm) ? burst : std::nullopt, window)) {
    error(o.where.mark(), o.where.path +
                              ": requests × window is too large (at most 2^53 "
                              "request-microseconds)");
  }
}

void loader::check_upstream_refs() {
  for (const upstream_ref& ref : upstream_refs_) {
    if (!config_.find_upstream(ref.name)) {
      error(ref.where.mark(), ref.where.path + ": no upstream named " + quote(ref.name));
    }
  }
}

void loader::check_consumer_refs() {
  const std::vector<consumer>& consumers = config_.consumers;
  for (const name_ref& ref : consumer_refs_) {
    bool known = std::any_of(consumers.begin(), consumers.end(),
                             [&](const consumer& c) { return c.name == ref.name; });
    if (!known) error(ref.where.mark(), ref.where.path + ": no consumer named " + quote(ref.name));
  }
  // A tier nobody has yet is not wrong (consumers come and go), but it is likely a typo.
  for (const name_ref& ref : tier_refs_) {
    bool known = std::any_of(consumers.begin(), consumers.end(),
                             [&](const consumer& c) { return c.tier == ref.name; });
    if (!known) {
      warning(ref.where.mark(), ref.where.path + ": no consumer has tier " + quote(ref.name));
    }
  }
}

// --- driver ------------------------------------------------------------------------------------

// --- rls: the Envoy rate limit service and its domain files (SPEC 11) --------------------------

constexpr choice<rls_unit> rls_unit_choices[] = {
    {"second", rls_unit::second}, {"minute", rls_unit::minute}, {"hour", rls_unit::hour},
    {"day", rls_unit::day},       {"week", rls_unit::week},     {"month", rls_unit::month},
    {"year", rls_unit::year}};

duration length_of(rls_unit unit) {
  switch (unit) {
    case rls_unit::second: return 1s;
    case rls_unit::minute: return 60s;
    case rls_unit::hour: return 3600s;
    case rls_unit::day: return 86400s;
    case rls_unit::week: return 7 * 86400s;
    case rls_unit::month: return 30 * 86400s;  // as envoyproxy/ratelimit counts them
    case rls_unit::year: return 365 * 86400s;
    case rls_unit::unknown: break;
  }
  return 0s;
}

// The unit Envoy is told for a window of ours: the one it equals, else unknown.
rls_unit unit_of(duration window) {
  for (const auto& c : rls_unit_choices)
    if (length_of(c.value) == window) return c.value;
  return rls_unit::unknown;
}

void loader::load_rls(const field& f) {
  rls_settings settings;
  std::optional<field> paths;
  const key_reader readers[] = {
      {"listen", [&](const field& v) { assign(settings.listen, read_endpoint(v)); }},
      {"config", [&](const field& v) { paths = v; }, true},
      {"failure_mode",
       [&](const field& v) { assign(settings.on_failure, read_choice(v, failure_mode_choices)); }},
      {"headers",
       [&](const field& v) { load_headers(v, settings.ietf_headers, settings.legacy_headers); }},
  };
  // Without `headers`, the IETF fields only (what Envoy's own filter would add is up to it).
  settings.legacy_headers = false;
  read_keys(f, readers);
  rls_mark_ = f.mark();
  config_.rls = std::move(settings);
  if (paths) load_rls_files(*paths);
}

// Each path is a domain file, or a folder whose *.yaml and *.yml files are (in name order).
void loader::load_rls_files(const field& paths) {
  std::vector<field> elements;
  if (paths.value.IsScalar()) {
    elements.push_back(paths);
  } else if (auto listed = list_elements(paths)) {
    elements = std::move(*listed);
  } else {
    return;
  }
  std::map<std::string, std::string, std::less<>> domain_files;  // domain -> first file
  for (const field& element : elements) {
    auto written = read_name(element);
    if (!written) continue;
    config_.rls->config.push_back(*written);
    // Relative to the gateway file's folder, as nginx's include is to its conf folder: the
    // same file works whatever the working directory.
    auto path = written;
    if (std::filesystem::path(*written).is_relative() && !base_dir_.empty())
      path = (std::filesystem::path(base_dir_) / *written).lexically_normal().string();
    std::vector<std::string> files;
    std::error_code ec;
    if (std::filesystem::is_directory(*path, ec)) {
      for (const auto& entry : std::filesystem::directory_iterator(*path, ec)) {
        const auto ext = entry.path().extension();
        if (entry.is_regular_file(ec) && (ext == ".yaml" || ext == ".yml"))
          files.push_back(entry.path().string());
      }
      if (ec) {
        error(element.mark(), element.path + ": cannot list " + quote(*path) + ": " + ec.message());
        continue;
      }
      std::sort(files.begin(), files.end());
      if (files.empty())
        warning(element.mark(), element.path + ": " + quote(*path) + " holds no *.yaml file");
    } else if (std::filesystem::exists(*path, ec)) {
      files.push_back(*path);
    } else {
      error(element.mark(), element.path + ": " + quote(*path) + " does not exist");
      continue;
    }
    for (const auto& file : files) {
      std::ifstream in(file, std::ios::binary);
      std::stringstream text;
      text << in.rdbuf();
      if (!in) {
        error(element.mark(), element.path + ": cannot read " + quote(file));
        continue;
      }
      const auto before = config_.rls->domains.size();
      current_file_ = file;
      try {
        const auto documents = read_documents(text.str());
        if (!documents.first) {
          error(YAML::Mark{}, "the domain file is empty");
        } else {
          load_domain_file(file, *documents.first);
          if (documents.second) error(*documents.second, "only one YAML document is allowed");
        }
      } catch (const YAML::Exception& e) {
        error(e.mark, "invalid YAML: " + e.msg);
      }
      current_file_.clear();
      if (config_.rls->domains.size() > before) {
        const auto& name = config_.rls->domains.back().domain;
        auto [first, inserted] = domain_files.emplace(name, file);
        if (!inserted) {
          error(element.mark(), element.path + ": domain " + quote(name) + " of " + quote(file) +
                                    " is already defined in " + quote(first->second));
          config_.rls->domains.pop_back();
        }
      }
    }
  }
}

void loader::load_domain_file(const std::string& path, const YAML::Node& root) {
  if (!root.IsMap()) {
    error(root.IsNull() ? YAML::Mark{} : root.Mark(),
          "expected a map with domain and descriptors at the top level, got " + describe(root));
    return;
  }
  rls_domain d;
  d.file = path;
  const key_reader readers[] = {
      {"domain",
       [&](const field& v) {
         // Into store keys and metric labels: an identifier; "unknown" names the series of
         // calls to domains no file defines.
         auto name = read_identifier(v);
         if (name && *name == "unknown") {
           error(v.mark(), v.path + ": \"unknown\" is reserved (the metrics of unknown domains)");
           return;
         }
         assign(d.domain, name);
       },
       true},
      {"descriptors", [&](const field& v) { load_rls_descriptors(v, d.descriptors); }},
  };
  read_keys(field{"", root, root}, readers);
  if (!d.domain.empty()) config_.rls->domains.push_back(std::move(d));
}

void loader::load_rls_descriptors(const field& f, std::vector<rls_descriptor>& out) {
  auto elements = list_elements(f);
  if (!elements) return;
  for (const field& element : *elements) {
    rls_descriptor d;
    load_rls_descriptor(element, d);
    if (d.key.empty()) continue;
    // Two entries for the same key and value: one would silently never match.
    auto same = std::find_if(out.begin(), out.end(), [&](const rls_descriptor& other) {
      return other.key == d.key && other.value == d.value;
    });
    if (same != out.end()) {
      // (Values may be secrets: the message names the line, not the value.)
      error(element.mark(), element.path + ": key " + quote(d.key) +
                                (d.value ? " with the same value" : std::string{}) +
                                " is already listed at line " + std::to_string(same->line));
      continue;
    }
    out.push_back(std::move(d));
  }
}

void loader::load_rls_descriptor(const field& f, rls_descriptor& d) {
  d.line = f.mark().line + 1;
  std::string key;
  const key_reader readers[] = {
      // Keys go into store keys and metric labels: identifiers only (values never do).
      {"key", [&](const field& v) { assign(key, read_identifier(v)); }, true},
      {"value",
       [&](const field& v) {
         auto value = read_name(v);
         if (value) d.value = std::move(*value);
       }},
      {"rate_limit",
       [&](const field& v) {
         rls_rate_limit r;
         load_rls_rate_limit(v, r);
         d.rate_limit = std::move(r);
       }},
      {"shadow_mode", [&](const field& v) { assign(d.shadow_mode, read_bool(v)); }},
      {"descriptors", [&](const field& v) { load_rls_descriptors(v, d.descriptors); }},
  };
  read_keys(f, readers);
  d.key = std::move(key);
}

void loader::load_rls_rate_limit(const field& f, rls_rate_limit& r) {
  std::optional<field> unit, window, requests, burst;
  bool algorithm_valid = true;
  bool algorithm_given = false;
  const key_reader readers[] = {
      {"name", [&](const field& v) { assign(r.name, read_identifier(v)); }},
      {"unit",
       [&](const field& v) {
         unit = v;
         auto u = read_choice(v, rls_unit_choices);
         if (u) {
           r.unit = *u;
           r.window = length_of(*u);
         }
       }},
      {"window",
       [&](const field& v) {
         window = v;
         auto w = read_duration(v, false);
         if (w) {
           r.window = *w;
           r.unit = unit_of(*w);
         }
       }},
      {"requests_per_unit",
       [&](const field& v) {
         requests = v;
         assign(r.requests, read_integer(v, 1, std::numeric_limits<std::uint32_t>::max()));
       }},
      {"unlimited", [&](const field& v) { assign(r.unlimited, read_bool(v)); }},
      {"lease", [&](const field& v) { assign(r.lease, read_bool(v)); }},
      {"algorithm",
       [&](const field& v) {
         algorithm_given = true;
         auto a = read_choice(v, algorithm_choices);
         algorithm_valid = a.has_value();
         assign(r.algorithm, a);
       }},
      {"burst",
       [&](const field& v) {
         burst = v;
         r.burst = read_integer(v, 1, no_upper_bound);
       }},
      {"replaces",
       [&](const field& v) {
         auto elements = list_elements(v);
         if (!elements) return;
         for (const field& element : *elements) {
           std::string name;
           const key_reader name_reader[] = {
               {"name", [&](const field& n) { assign(name, read_identifier(n)); }, true}};
           read_keys(element, name_reader);
           if (!name.empty()) r.replaces.push_back(std::move(name));
         }
       }},
  };
  read_keys(f, readers);
  if (unit && window)
    error(window->mark(), window->path + ": give unit or window, not both");
  if (r.unlimited) {
    if (requests || unit || window || burst || algorithm_given)
      error(f.mark(), f.path + ": an unlimited rate_limit takes no unit, window, "
                               "requests_per_unit, algorithm or burst");
    return;
  }
  if (!unit && !window)
    error(f.mark(), f.path + ": missing unit (second, minute, hour, day, week, month, year) or window");
  if (!requests) error(f.mark(), f.path + ": missing required key \"requests_per_unit\"");
  if (burst && r.burst && algorithm_valid && !takes_burst(r.algorithm))
    error(burst->mark(), burst->path + ": only gcra and token_bucket take a burst, not " +
                             std::string{name_of(r.algorithm)});
  // (Fixed windows and logs only count, so a year of them fits; the others multiply.)
  const bool multiplies =
      r.algorithm != limit_algorithm::fixed_window && r.algorithm != limit_algorithm::sliding_log;
  if (!multiplies && r.window.count() > 0 &&
      static_cast<std::uint64_t>(r.window.count()) > max_request_microseconds / 1000)
    error(f.mark(), f.path + ": the window is too long (at most 2^53 microseconds)");
  if (multiplies && r.requests > 0 && r.window.count() > 0 &&
      !fits_in_doubles(r.requests, r.burst, r.window))
    error(f.mark(), f.path + ": requests × window is too large (at most 2^53 request-microseconds)");
}

load_result loader::load(std::string_view text) {
  try {
    const auto documents = read_documents(std::string{text});
    if (!documents.first) {
      error(YAML::Mark{}, "the configuration is empty");
    } else {
      load_root(*documents.first);
      // A second document would otherwise be ignored without a word.
      if (documents.second) error(*documents.second, "only one YAML document is allowed");
    }
  } catch (const YAML::Exception& e) {
    // A syntax error ends parsing: the node tree is incomplete, so nothing else is reported.
    error(e.mark, "invalid YAML: " + e.msg);
  }

  // The gateway file's problems first, then each domain file's, each in file order.
  std::stable_sort(problems_.begin(), problems_.end(), [](const problem& a, const problem& b) {
    return std::tuple{!a.file.empty(), a.file, a.line, a.column} <
           std::tuple{!b.file.empty(), b.file, b.line, b.column};
  });
  load_result result;
  bool has_error =
      std::any_of(problems_.begin(), problems_.end(), [](const problem& p) { return !p.warning; });
  if (!has_error) result.config = std::make_shared<const gateway_config>(std::move(config_));
  result.problems = std::move(problems_);
  return result;
}

}  // namespace

namespace {

load_result load_text(std::string_view yaml, std::string base_dir) {
  try {
    loader l{std::move(base_dir)};
    return l.load(yaml);
  } catch (const std::exception& e) {
    // Only resource exhaustion gets here; the caller still gets a result, not an exception.
    load_result result;
    result.problems.push_back(
        problem{0, 0, std::string{"cannot load configuration: "} + e.what(), false, ""});
    return result;
  }
}

}  // namespace

load_result load_string(std::string_view yaml) { return load_text(yaml, ""); }

load_result load_file(const std::string& path) {
  auto cannot_read = [](int err) {
    load_result result;
    result.problems.push_back(problem{
        0, 0, "cannot read file: " + std::error_code{err, std::generic_category()}.message(),
        false, ""});
    return result;
  };

  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file{std::fopen(path.c_str(), "rb"),
                                                       &std::fclose};
  if (!file) return cannot_read(errno);
  std::string text;
  char buffer[64 * 1024];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, file.get())) > 0) text.append(buffer, n);
  // A directory opens fine on Linux and fails on the first read (EISDIR).
  if (std::ferror(file.get())) return cannot_read(errno);
  return load_text(text, std::filesystem::path(path).parent_path().string());
}

std::string format_problem(std::string_view file, const problem& p) {
  std::string out{p.file.empty() ? file : std::string_view{p.file}};
  if (p.line > 0) out += ":" + std::to_string(p.line) + ":" + std::to_string(p.column);
  out += ": ";
  if (p.warning) out += "warning: ";
  out += p.message;
  return out;
}

}  // namespace gw::config
