#!/usr/bin/env bash
# Builds the container image from deploy/docker/Dockerfile with buildah (storage driver vfs,
# chroot isolation: no daemon, no container runtime, no registry needed) and checks it: its
# configuration (user 10001, the three ports, the HEALTHCHECK, the gateway as entrypoint), then
# its filesystem, mounted, with tests/deploy/check_installed.sh: the installed binary starts with
# the image's configuration as uid 10001, answers, runs the image's HEALTHCHECK command, and
# drains on SIGTERM. The image's runtime stage is Debian slim plus the .deb that scripts/package
# makes, installed by apt with nothing but its Depends: so this is also the check that the
# package installs into a fresh root and its binary finds every library it needs.
#
# The base images (debian:bookworm, debian:bookworm-slim) come from a registry where one is
# reachable, else from a minimal Debian root made by debootstrap (the one scripts/in-fresh-root
# keeps in $GATEWAY_CI_CACHE when there is one).
#
# Usage: tests/deploy/check_image.sh   (as root; from the repository root)
set -euo pipefail
cd "$(dirname "$0")/../.."
say() { echo "check_image: $*"; }
fail() { echo "check_image: FAIL: $*" >&2; exit 1; }
command -v buildah >/dev/null || { say "SKIP: buildah is not installed"; exit 0; }
[ "$(id -u)" -eq 0 ] || { say "SKIP: not root (chroot isolation and mounts need it)"; exit 0; }
b() { buildah --storage-driver vfs "$@"; }
image=localhost/ratelimit-gateway:check
elapsed() { local s=$(( $(date +%s) - $1 )); printf '%dm%02ds' $((s / 60)) $((s % 60)); }

# Base images.
cache=${GATEWAY_CI_CACHE:-/var/cache/gateway-ci}
base_tar=$cache/bookworm-minbase.tar
for base in debian:bookworm debian:bookworm-slim; do
  b inspect --type image "$base" >/dev/null 2>&1 && continue
  if timeout 60 b pull --quiet "docker.io/library/$base" >/dev/null 2>&1; then
    say "$base pulled from docker.io"
    continue
  fi
  if [ ! -f "$base_tar" ]; then
    command -v debootstrap >/dev/null || fail "no registry for $base and no debootstrap"
    mirror=$(apt-get indextargets --format '$(REPO_URI)' 2>/dev/null | grep -m1 . || true)
    dir=$(mktemp -d /var/tmp/check-image-base.XXXXXX)
    say "no registry: debootstrap --variant=minbase bookworm from ${mirror:-deb.debian.org}"
    timeout 15m debootstrap --variant=minbase bookworm "$dir" "${mirror:-http://deb.debian.org/debian}" >/dev/null
    mkdir -p "$cache"
    tar -C "$dir" -cf "$base_tar" . && rm -rf --one-file-system "$dir"
  fi
  c=$(b from scratch)
  mnt=$(b mount "$c")
  tar -C "$mnt" -xf "$base_tar"
  # apt in the image reaches Debian the way this machine does (when it runs bookworm too).
  if grep -qs '^VERSION_CODENAME=bookworm' /etc/os-release; then
    rm -f "$mnt/etc/apt/sources.list"
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
      [ -f "$f" ] && cp "$f" "$mnt$f"
    done
    cp -a /etc/apt/trusted.gpg.d/. "$mnt/etc/apt/trusted.gpg.d/" 2>/dev/null || true
  fi
  for f in /etc/apt/apt.conf.d/*; do
    grep -q '^[[:space:]]*Acquire' "$f" 2>/dev/null && cp "$f" "$mnt$f"
  done
  b umount "$c" >/dev/null
  b commit --quiet "$c" "$base" >/dev/null
  b rm "$c" >/dev/null
  say "$base made from a debootstrap minbase root ($base_tar)"
done

# The compiler cache of this machine's builds, lent to the image's build stage: the same
# compiler, flags and /src path, so what scripts/test compiled is not compiled again.
lend=()
if [ -n "${CCACHE_DIR:-}" ] && [ -d "$CCACHE_DIR" ]; then
  lend=(--volume "$CCACHE_DIR:/ccache" --build-arg GATEWAY_CCACHE_DIR=/ccache)
fi
if [ -n "${CHECK_IMAGE:-}" ]; then
  image=$CHECK_IMAGE
  say "checking $image as built (CHECK_IMAGE)"
else
  start=$(date +%s)
  # --format docker: the OCI image format has no HEALTHCHECK (buildah would drop it).
  b bud --isolation chroot --network host --layers=false --format docker "${lend[@]}" \
    -t "$image" -f deploy/docker/Dockerfile . >/var/tmp/check-image-build.log 2>&1 ||
    { tail -30 /var/tmp/check-image-build.log >&2; fail "the image does not build"; }
  say "built $image in $(elapsed "$start") (log: /var/tmp/check-image-build.log)"
fi

# What the image says about itself.
b inspect --type image "$image" >/var/tmp/check-image-inspect.json
python3 - /var/tmp/check-image-inspect.json <<'PY'
import json, sys
with open(sys.argv[1]) as f:
    inspected = json.load(f)
oci = inspected["OCIv1"].get("config") or {}
docker = inspected["Docker"].get("config") or {}
def need(ok, what):
    if not ok:
        sys.exit(f"check_image: FAIL: {what}")
need(oci.get("User") == "10001:10001", f"User is {oci.get('User')!r}, not 10001:10001")
need(set(oci.get("ExposedPorts", {})) == {"8080/tcp", "9901/tcp", "8081/tcp"},
     f"ExposedPorts {sorted(oci.get('ExposedPorts', {}))}")
need(oci.get("Entrypoint") == ["/usr/bin/gateway"], f"Entrypoint {oci.get('Entrypoint')}")
need(oci.get("Cmd") == ["--config", "/etc/gateway/gateway.yaml"], f"Cmd {oci.get('Cmd')}")
need(oci.get("StopSignal") == "SIGTERM", f"StopSignal {oci.get('StopSignal')}")
health = docker.get("Healthcheck") or {}
test = health.get("Test") or []
need(test[:1] == ["CMD"] and "/healthz" in " ".join(test), f"Healthcheck {health}")
print("check_image: image config: user 10001:10001, ports 8080 9901 8081, entrypoint gateway, "
      "HEALTHCHECK on /healthz, STOPSIGNAL SIGTERM")
with open("/var/tmp/check-image-healthcheck", "w") as f:
    f.write(test[-1])
PY
healthcheck=$(cat /var/tmp/check-image-healthcheck)

# Its filesystem, as the container would see it.
c=$(b from --pull=never "$image")
mnt=$(b mount "$c")
cleanup() {
  umount "$mnt/proc" 2>/dev/null || true
  b umount "$c" >/dev/null 2>&1 || true
  b rm "$c" >/dev/null 2>&1 || true
}
trap cleanup EXIT
mount -t proc proc "$mnt/proc"
size=$(du -sm --exclude=proc "$mnt" | cut -f1)
say "image filesystem: ${size} MB"
for forbidden in /usr/bin/g++ /usr/bin/cmake /usr/include/boost; do
  [ ! -e "$mnt$forbidden" ] || fail "the runtime image holds build tooling: $forbidden"
done
missing=$(chroot "$mnt" ldd /usr/bin/gateway | grep 'not found' || true)
[ -z "$missing" ] || fail "libraries missing in the image: $missing"
GATEWAY_USER=gateway HEALTHCHECK="$healthcheck" tests/deploy/check_installed.sh "$mnt"
[ "$(chroot "$mnt" id -u gateway)" = 10001 ] || fail "the image's gateway user is not uid 10001"
say "ok"
