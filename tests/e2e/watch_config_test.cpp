// server.watch_config: the configuration mounted the way the kubelet mounts a ConfigMap
// (gateway.yaml -> ..data/gateway.yaml, ..data -> a timestamped folder), updated the way it
// updates one (a new folder, a new symlink renamed over ..data, the old folder removed), and
// nobody sending SIGHUP.
#include "admin_probes.hpp"
#include "e2e_config.hpp"
#include "support/gateway_process.hpp"
#include "support/http_client.hpp"
#include "support/test_pki.hpp"
#include "support/test_upstream.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <utility>
#include <vector>

namespace {

using namespace gw::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

// A ConfigMap or Secret volume: each key a file, seen through ..data.
class volume_mount {
 public:
  using files = std::vector<std::pair<std::string, std::string>>;  // name, content
  // In a fresh temp dir removed when the test program ends (write_temp_file's).
  explicit volume_mount(const files& contents, const std::string& name = "configmap")
      : dir_(fs::path(write_temp_file("", "placeholder")).parent_path() / name) {
    fs::create_directories(dir_);
    write_version(contents);
    fs::create_directory_symlink(version_, dir_ / "..data");
    for (const auto& [file, text] : contents)
      fs::create_symlink("..data/" + file, dir_ / file);
  }

  std::string path(const std::string& file = "gateway.yaml") const {
    return (dir_ / file).string();
  }

  // What the kubelet's atomic writer does on an update.
  void update(const files& contents) {
    const auto old = version_;
    write_version(contents);
    fs::create_directory_symlink(version_, dir_ / "..data_tmp");
    fs::rename(dir_ / "..data_tmp", dir_ / "..data");
    fs::remove_all(dir_ / old);
  }

 private:
  void write_version(const files& contents) {
    version_ = "..2026_12_03_10_00_00." + std::to_string(++versions_);
    fs::create_directory(dir_ / version_);
    for (const auto& [file, text] : contents) std::ofstream(dir_ / version_ / file) << text;
  }

  fs::path dir_;
  std::string version_;
  int versions_ = 0;
};

// A ConfigMap holding one key, gateway.yaml.
class configmap_mount : public volume_mount {
 public:
  explicit configmap_mount(const std::string& yaml) : volume_mount({{"gateway.yaml", yaml}}) {}
  void update(const std::string& yaml) { volume_mount::update({{"gateway.yaml", yaml}}); }
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string config_allowing(const e2e_ports& ports, std::uint16_t upstream, int requests) {
  return e2e_config(ports, {upstream}, "  watch_config: true\n", "",
                    "routes:\n  - name: all\n    match: { path_prefix: / }\n"
                    "    upstream: backend\n    limits:\n      - name: per_ip\n"
                    "        key: [client_ip]\n        algorithm: fixed_window\n"
                    "        requests: " + std::to_string(requests) + "\n        window: 1h\n");
}

double reloads(std::uint16_t admin, const char* result) {
  return metric(admin, "gateway_config_reloads_total",
                {std::string("result=\"") + result + "\""});
}

TEST(watch_config, a_configmap_update_applies_new_limits_and_a_broken_one_keeps_the_old) {
  test_upstream upstream;
  e2e_ports ports;
  configmap_mount mount{config_allowing(ports, upstream.port(), 2)};
  gateway_process gateway{gateway_binary(), "unused: true\n", {"--config", mount.path()}};
  gateway.wait_ready(ports.admin);
  EXPECT_EQ(request(ports.listen, "GET", "/a").header("RateLimit-Policy"),
            R"("per_ip";q=2;w=3600)");

  mount.update(config_allowing(ports, upstream.port(), 7));
  ASSERT_TRUE(eventually([&] { return reloads(ports.admin, "success") == 1; }, 5s))
      << gateway.stderr_text();
  EXPECT_EQ(request(ports.listen, "GET", "/b").header("RateLimit-Policy"),
            R"("per_ip";q=7;w=3600)");

  // A broken update: counted, logged with its line, and the running limits stay.
  mount.update("server:\n  workers: [oops]\n");
  ASSERT_TRUE(eventually([&] { return reloads(ports.admin, "failure") == 1; }, 5s))
      << gateway.stderr_text();
  EXPECT_TRUE(gateway.wait_for_stderr("reload failed", 1s)) << gateway.stderr_text();
  EXPECT_TRUE(gateway.wait_for_stderr("gateway.yaml:2:12:", 1s)) << gateway.stderr_text();
  int admitted = 0;
  for (int i = 0; i < 10; ++i) admitted += request(ports.listen, "GET", "/c").status == 200;
  EXPECT_EQ(admitted, 7 - 2);  // the window's count goes on across reloads: /a and /b are in it
  EXPECT_EQ(reloads(ports.admin, "success"), 1);
  EXPECT_TRUE(gateway.running());
}

TEST(watch_config, an_edit_in_place_and_a_rename_over_reload_once_each_and_a_touch_not_at_all) {
  test_upstream upstream;
  e2e_ports ports;
  gateway_process gateway{gateway_binary(), config_allowing(ports, upstream.port(), 3)};
  gateway.wait_ready(ports.admin);

  // Written in place, as an editor without backup files or `cat >` does.
  std::ofstream(gateway.config_path(), std::ios::trunc)
      << config_allowing(ports, upstream.port(), 4);
  ASSERT_TRUE(eventually([&] { return reloads(ports.admin, "success") == 1; }, 5s))
      << gateway.stderr_text();
  EXPECT_EQ(request(ports.listen, "GET", "/").header("RateLimit-Policy"), R"("per_ip";q=4;w=3600)");

  // Renamed over (write_config writes a sibling and renames it).
  gateway.write_config(config_allowing(ports, upstream.port(), 5));
  ASSERT_TRUE(eventually([&] { return reloads(ports.admin, "success") == 2; }, 5s))
      << gateway.stderr_text();
  EXPECT_EQ(request(ports.listen, "GET", "/").header("RateLimit-Policy"), R"("per_ip";q=5;w=3600)");

  // Touched, and rewritten with the same bytes: nothing changed, nothing reloads.
  fs::last_write_time(gateway.config_path(), fs::file_time_type::clock::now());
  gateway.write_config(config_allowing(ports, upstream.port(), 5));
  std::this_thread::sleep_for(1s);  // well past the watcher's settle time
  EXPECT_EQ(reloads(ports.admin, "success"), 2);
  EXPECT_EQ(reloads(ports.admin, "failure"), 0);
}

TEST(watch_config, a_renewed_certificate_in_a_mounted_secret_is_served_without_a_signal) {
  test_pki pki;
  const auto first = pki.issue({"api.example.com", {"api.example.com"}});
  const auto renewed = pki.issue({"api.example.com renewed", {"api.example.com"}});
  volume_mount secret{{{"tls.crt", read_file(first.cert_file)},
                       {"tls.key", read_file(first.key_file)}},
                      "secret"};
  test_upstream upstream;
  e2e_ports ports;
  const std::string yaml =
      "server:\n  listen: 127.0.0.1:" + std::to_string(ports.listen) +
      "\n  workers: 1\n  watch_config: true\n  tls:\n    certificates:\n      - cert: " +
      secret.path("tls.crt") + "\n        key: " + secret.path("tls.key") +
      "\nadmin:\n  listen: 127.0.0.1:" + std::to_string(ports.admin) +
      "\nupstreams:\n  backend:\n    servers: [127.0.0.1:" + std::to_string(upstream.port()) +
      "]\nroutes:\n  - name: all\n    match: { path_prefix: / }\n    upstream: backend\n";
  gateway_process gateway{gateway_binary(), yaml};
  gateway.wait_ready(ports.admin);
  tls_options client;
  client.enabled = true;
  client.server_name = "api.example.com";
  client.ca_file = pki.ca_file();
  EXPECT_EQ(client_connection(ports.listen, client).tls().peer_common_name, "api.example.com");

  secret.update({{"tls.crt", read_file(renewed.cert_file)},
                 {"tls.key", read_file(renewed.key_file)}});
  ASSERT_TRUE(eventually([&] { return reloads(ports.admin, "success") == 1; }, 5s))
      << gateway.stderr_text();
  EXPECT_EQ(client_connection(ports.listen, client).tls().peer_common_name,
            "api.example.com renewed");
}

TEST(watch_config, a_release_folder_swapped_under_the_path_is_seen) {
  // /srv/gw/current -> releases/v1, the file at current/gateway.yaml; a deploy points current at
  // releases/v2 (ln -sfn: a new link renamed over). The symlink is a folder of the path, not
  // the file itself.
  test_upstream upstream;
  e2e_ports ports;
  const fs::path top = fs::path(write_temp_file("", "placeholder")).parent_path() / "srv";
  fs::create_directories(top / "releases" / "v1");
  fs::create_directories(top / "releases" / "v2");
  std::ofstream(top / "releases" / "v1" / "gateway.yaml")
      << config_allowing(ports, upstream.port(), 2);
  std::ofstream(top / "releases" / "v2" / "gateway.yaml")
      << config_allowing(ports, upstream.port(), 9);
  fs::create_directory_symlink("releases/v1", top / "current");
  gateway_process gateway{gateway_binary(), "unused: true\n",
                          {"--config", (top / "current" / "gateway.yaml").string()}};
  gateway.wait_ready(ports.admin);
  fs::create_directory_symlink("releases/v2", top / "current.new");
  fs::rename(top / "current.new", top / "current");
  ASSERT_TRUE(eventually([&] { return reloads(ports.admin, "success") == 1; }, 5s))
      << gateway.stderr_text();
  EXPECT_EQ(request(ports.listen, "GET", "/").header("RateLimit-Policy"), R"("per_ip";q=9;w=3600)");
}

}  // namespace
