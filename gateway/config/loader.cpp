// Reads the YAML configuration into gateway_config, collecting every problem with its position.
// One function per section (and per route) so that later sections slot in beside the others.
#include "config/loader.hpp"

#include "config/units.hpp"

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
#include <system_error>
#include <utility>

namespace gw::config {
namespace {

// Bounds that catch typos rather than encode policy.
constexpr std::uint64_t max_workers = 1024;
constexpr std::uint64_t max_connections_limit = 1'000'000;
constexpr std::uint64_t max_idle_limit = 1'000'000;
constexpr std::uint64_t max_eject_after_failures = 1'000'000;

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

template <class T, class U>
void assign(T& target, const std::optional<U>& value) {
  if (value) target = static_cast<T>(*value);
}

class loader {
 public:
  load_result load(std::string_view text);

 private:
  void error(const YAML::Mark& at, std::string message);

  // Structure.
  std::optional<std::vector<field>> map_entries(const field& map);
  std::optional<std::vector<field>> list_elements(const field& list);
  void read_keys(const field& map, std::span<const key_reader> readers);

  // Scalars; each reports its own problem and returns nullopt on one.
  std::optional<std::string> read_scalar(const field& f, std::string_view expected);
  std::optional<std::string> read_name(const field& f);
  std::optional<std::uint64_t> read_integer(const field& f, std::uint64_t min, std::uint64_t max);
  std::optional<bool> read_bool(const field& f);
  std::optional<duration> read_duration(const field& f, bool allow_zero);
  std::optional<std::uint64_t> read_size(const field& f, std::uint64_t min);
  std::optional<endpoint> read_endpoint(const field& f);

  // Sections.
  void load_root(const YAML::Node& root);
  void load_server(const field& f);
  void load_admin(const field& f);
  void load_upstreams(const field& f);
  void load_upstream(const field& f);
  void load_routes(const field& f);
  void load_route(const field& f);
  void load_match(const field& f, route_match& match);
  void check_upstream_refs();

  gateway_config config_;
  std::vector<problem> problems_;
  std::vector<upstream_ref> upstream_refs_;
  std::map<std::string, int, std::less<>> route_name_lines_;
};

void loader::error(const YAML::Mark& at, std::string message) {
  problem p;
  if (!at.is_null()) {
    p.line = at.line + 1;
    p.column = at.column + 1;
  }
  p.message = std::move(message);
  problems_.push_back(std::move(p));
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
    error(f.mark(), f.path + ": must be between " + std::to_string(min) + " and " +
                        std::to_string(max) + ", got " + *text);
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
      {"upstreams", [&](const field& f) { load_upstreams(f); }},
      {"routes", [&](const field& f) { load_routes(f); }},
  };
  read_keys(field{"", root, root}, readers);
  check_upstream_refs();
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
       [&](const field& v) {
         static constexpr std::string_view expected = "one of trace, debug, info, warn, error";
         auto text = read_scalar(v, expected);
         if (!text) return;
         if (*text == "trace" || *text == "debug" || *text == "info" || *text == "warn" ||
             *text == "error") {
           s.log_level = *text;
         } else {
           error(v.mark(),
                 v.path + ": expected " + std::string{expected} + ", got " + quote(*text));
         }
       }},
      {"access_log", [&](const field& v) { assign(s.access_log, read_bool(v)); }},
  };
  read_keys(f, readers);
}

void loader::load_admin(const field& f) {
  admin_settings& a = config_.admin;
  const key_reader readers[] = {
      {"listen", [&](const field& v) { assign(a.listen, read_endpoint(v)); }},
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
    load_upstream(entry);
  }
}

void loader::load_upstream(const field& f) {
  upstream u;
  u.name = f.key.Scalar();
  const key_reader readers[] = {
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
         auto name = read_name(v);
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

void loader::check_upstream_refs() {
  for (const upstream_ref& ref : upstream_refs_) {
    if (!config_.find_upstream(ref.name)) {
      error(ref.where.mark(), ref.where.path + ": no upstream named " + quote(ref.name));
    }
  }
}

// --- driver ------------------------------------------------------------------------------------

load_result loader::load(std::string_view text) {
  try {
    std::vector<YAML::Node> documents = YAML::LoadAll(std::string{text});
    if (documents.empty()) {
      error(YAML::Mark{}, "the configuration is empty");
    } else {
      load_root(documents.front());
      // A second document would otherwise be ignored without a word.
      if (documents.size() > 1) error(documents[1].Mark(), "only one YAML document is allowed");
    }
  } catch (const YAML::Exception& e) {
    // A syntax error ends parsing: the node tree is incomplete, so nothing else is reported.
    error(e.mark, "invalid YAML: " + e.msg);
  }

  std::stable_sort(problems_.begin(), problems_.end(), [](const problem& a, const problem& b) {
    return std::pair{a.line, a.column} < std::pair{b.line, b.column};
  });
  load_result result;
  bool has_error =
      std::any_of(problems_.begin(), problems_.end(), [](const problem& p) { return !p.warning; });
  if (!has_error) result.config = std::make_shared<const gateway_config>(std::move(config_));
  result.problems = std::move(problems_);
  return result;
}

}  // namespace

load_result load_string(std::string_view yaml) {
  try {
    loader l;
    return l.load(yaml);
  } catch (const std::exception& e) {
    // Only resource exhaustion gets here; the caller still gets a result, not an exception.
    load_result result;
    result.problems.push_back(problem{0, 0, std::string{"cannot load configuration: "} + e.what()});
    return result;
  }
}

load_result load_file(const std::string& path) {
  auto cannot_read = [](int err) {
    load_result result;
    result.problems.push_back(problem{
        0, 0, "cannot read file: " + std::error_code{err, std::generic_category()}.message()});
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
  return load_string(text);
}

std::string format_problem(std::string_view file, const problem& p) {
  std::string out{file};
  if (p.line > 0) out += ":" + std::to_string(p.line) + ":" + std::to_string(p.column);
  out += ": ";
  if (p.warning) out += "warning: ";
  out += p.message;
  return out;
}

}  // namespace gw::config
