#!/usr/bin/env bash
# Checks an installed gateway the way its systemd unit runs it, in a root where the .deb (or the
# container image's filesystem) was installed: the packaged files and user are there, the
# packaged configuration passes --check-config, and the installed binary, started with that
# configuration under the unit's restrictions as far as they can be had without systemd, answers
# /healthz, /readyz, /metrics and a proxied request, listens below 1024 with nothing but
# CAP_NET_BIND_SERVICE, reads its root:gateway 0640 file as its own user, and, as PID 1 of its
# own PID namespace, drains on SIGTERM (a request in flight finishes) and exits 0.
#
# The restrictions (deploy/systemd/gateway.service), and what stands in for each here:
#   User=gateway, NoNewPrivileges, CapabilityBoundingSet and AmbientCapabilities
#                                  setpriv --reuid/--regid/--clear-groups, --no-new-privs,
#                                  --bounding-set, --inh-caps and --ambient-caps
#   ProtectSystem=strict           every mount read-only (unshare --mount, remount ro)
#   ProtectHome, PrivateTmp        empty read-only /home and /root, an empty private /tmp
#   PrivateDevices                 /dev: only null, zero, random, urandom
#   UMask=0077                     umask 077
# The rest (SystemCallFilter, RestrictAddressFamilies, MemoryDenyWriteExecute, the Protect*
# kernel options) are systemd's own seccomp and namespace setup: systemd-analyze verify checks
# how the unit writes them, only a running systemd applies them.
#
# Usage: tests/deploy/check_installed.sh ROOT   (as root, from outside ROOT, with python3; ROOT
#        has /proc mounted)
#        GATEWAY_USER=name: the user to run as (default gateway, the package's)
#        HEALTHCHECK='command': also run this in ROOT, as that user, while the gateway serves
#        (the image's HEALTHCHECK); it must succeed
set -euo pipefail
root=$(realpath "${1:?usage: $0 ROOT}")
[ "$root" != / ] || { echo "check_installed: ROOT must be another root than this one" >&2; exit 2; }
user=${GATEWAY_USER:-gateway}
fail() { echo "check_installed: FAIL: $*" >&2; exit 1; }
say() { echo "check_installed: $*"; }
in_root() { chroot "$root" "$@"; }

for f in /usr/bin/gateway /etc/gateway/gateway.yaml /etc/gateway/rls/edge.yaml \
         /lib/systemd/system/gateway.service /usr/lib/ratelimit-gateway/demo-upstream; do
  [ -e "$root$f" ] || fail "$f is not installed"
done
uid=$(in_root id -u "$user") || fail "no user $user"
gid=$(in_root id -g "$user")
[ "$uid" -ne 0 ] || fail "$user is root"
say "user $user is uid $uid gid $gid"
if [ "$user" = gateway ] && [ -f "$root/var/lib/dpkg/info/ratelimit-gateway.list" ]; then
  [ "$(stat -c %u:%g:%a "$root/etc/gateway")" = "0:$gid:750" ] ||
    fail "/etc/gateway is $(stat -c %u:%g:%a "$root/etc/gateway") (uid:gid:mode), not 0:$gid:750"
fi
out=$(in_root /usr/bin/gateway --check-config /etc/gateway/gateway.yaml) ||
  fail "--check-config of the packaged file: $out"
say "--check-config /etc/gateway/gateway.yaml: $out"

# Free loopback ports, chosen by the kernel; and one below 1024.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
low_port() {
  python3 -c '
import socket
for p in range(1023, 899, -1):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); print(p); break
    except OSError: pass
    finally: s.close()'
}
listen=$(low_port)
admin=$(free_port)
rls=$(free_port)
upstream=$(free_port)
[ -n "$listen" ] || fail "no free port below 1024"

# The packaged configuration with its ports moved to free ones (the rest as shipped), put over
# /etc/gateway/gateway.yaml inside the gateway's mount namespace with the packaged owner and mode
# (root:gateway 0640), so that what the gateway reads as its user is that file where it lives.
work=$(mktemp -d)
chmod 0711 "$work"
trap 'pkill -9 -f "^/usr/bin/gateway --config /etc/gateway/gateway.yaml" 2>/dev/null || true; kill -9 ${gw:-} ${up:-} 2>/dev/null || true; rm -rf "$work"' EXIT
sed -E -e "s/^(  listen: )0\.0\.0\.0:8080$/\1127.0.0.1:$listen/" \
       -e "s/^(  listen: )(127\.0\.0\.1|0\.0\.0\.0):9901$/\1127.0.0.1:$admin/" \
       -e "s/^(  listen: )(127\.0\.0\.1|0\.0\.0\.0):8081$/\1127.0.0.1:$rls/" \
       -e "s/127\.0\.0\.1:9000/127.0.0.1:$upstream/" \
       "$root/etc/gateway/gateway.yaml" >"$work/gateway.yaml"
for p in "$listen" "$admin" "$rls" "$upstream"; do
  grep -q ":$p\b" "$work/gateway.yaml" || fail "the packaged file's ports moved: :$p missing"
done
chown "0:$gid" "$work/gateway.yaml"
chmod 0640 "$work/gateway.yaml"

in_root /usr/lib/ratelimit-gateway/demo-upstream --port "$upstream" >"$work/upstream.log" 2>&1 &
up=$!
disown "$up"

# The unit's restrictions, then the gateway as its user with nothing but CAP_NET_BIND_SERVICE,
# as PID 1 of a PID namespace of its own (as in a container: no init forwards signals to it).
cat >"$work/restricted" <<EOF
set -e
mount --make-rprivate /
# The root as a mount of its own, to be made read-only; its own /proc for the new PID namespace.
mount --rbind "$root" "$root"
mount -t proc proc "$root/proc"
mount --bind "$work/gateway.yaml" "$root/etc/gateway/gateway.yaml"
mkdir -p "$work/private-tmp"
chmod 1777 "$work/private-tmp"
mount --bind "$work/private-tmp" "$root/tmp"                          # PrivateTmp
for d in home root; do [ -d "$root/\$d" ] && mount -t tmpfs -o ro,mode=755 none "$root/\$d"; done  # ProtectHome
mkdir -p "$work/dev"
for n in null zero random urandom; do
  touch "$work/dev/\$n"; mount --bind "/dev/\$n" "$work/dev/\$n"
done
mount --rbind "$work/dev" "$root/dev"                                 # PrivateDevices
# ProtectSystem=strict: the root and every mount under it read-only (but /proc, /dev, /tmp).
for m in \$(awk -v r="$root" '\$2 == r || index(\$2, r "/") == 1 {print \$2}' /proc/self/mounts | sort -u); do
  case \$m in "$root/proc"|"$root/proc/"*|"$root/tmp"|"$root/dev"|"$root/dev/"*) continue ;; esac
  mount -o remount,bind,ro "\$m" 2>/dev/null || true
done
if touch "$root/etc/gateway/.writable" 2>/dev/null; then
  echo "the root is still writable: ProtectSystem=strict is not reproduced" >&2; exit 1
fi
umask 077
exec chroot "$root" setpriv --reuid=$uid --regid=$gid --clear-groups --no-new-privs \
  --inh-caps=-all,+net_bind_service --ambient-caps=-all,+net_bind_service \
  --bounding-set=-all,+net_bind_service \
  /usr/bin/gateway --config /etc/gateway/gateway.yaml
EOF
unshare --mount --pid --fork --kill-child bash "$work/restricted" >"$work/stdout.log" 2>"$work/stderr.log" &
gw=$!

get() {  # get PORT PATH -> the whole response, over bash's /dev/tcp
  exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
  printf 'GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$2" >&3
  cat <&3
  exec 3<&-
}
for _ in $(seq 100); do
  get "$admin" /healthz 2>/dev/null | head -1 | grep -q ' 200 ' && break
  kill -0 "$gw" 2>/dev/null || { cat "$work/stderr.log" >&2; fail "the gateway exited under the restrictions"; }
  sleep 0.1
done
get "$admin" /healthz | head -1 | grep -q ' 200 ' || { cat "$work/stderr.log" >&2; fail "/healthz never answered 200"; }
say "restricted gateway (uid $uid, CAP_NET_BIND_SERVICE only, read-only root) answers /healthz"
get "$admin" /readyz | head -1 | grep -q ' 200 ' || fail "/readyz is not 200"
metrics=$(get "$admin" /metrics)
grep -q '^process_resident_memory_bytes ' <<<"$metrics" || fail "/metrics has no process metrics"
grep -q '^process_start_time_seconds ' <<<"$metrics" || fail "/metrics has no process_start_time_seconds"
reply=$(get "$listen" /public/hello)
head -1 <<<"$reply" | grep -q ' 200 ' || fail "a request through port $listen: $(head -1 <<<"$reply")"
grep -qi '^RateLimit-Policy:' <<<"$reply" || fail "no RateLimit-Policy header on /public/hello"
say "port $listen (below 1024) proxies /public/hello to the demo upstream: 200 with RateLimit headers"
if [ -n "${HEALTHCHECK:-}" ]; then
  # The image's check, against the image's own ports: admin moved, so it is pointed at ours.
  check=${HEALTHCHECK//9901/$admin}
  in_root setpriv --reuid="$uid" --regid="$gid" --clear-groups bash -c "$check" ||
    fail "the HEALTHCHECK command failed: $check"
  say "the image's HEALTHCHECK command succeeds: $check"
fi
pid=$(pgrep -f -n "^/usr/bin/gateway --config /etc/gateway/gateway.yaml") || fail "no gateway process"
grep -qE '^NSpid:[[:space:]]+[0-9]+[[:space:]]+1$' "/proc/$pid/status" ||
  fail "the gateway is not PID 1 of its namespace: $(grep ^NSpid "/proc/$pid/status")"
ps -o user=,uid= -p "$pid" | grep -qw "$uid" || fail "the gateway does not run as uid $uid"
grep -q '^CapEff:.*0000000000000400$' "/proc/$pid/status" ||
  fail "effective capabilities are not CAP_NET_BIND_SERVICE alone: $(grep ^CapEff "/proc/$pid/status")"
grep -q '^NoNewPrivs:.*1' "/proc/$pid/status" || fail "no_new_privs is not set"
# SIGTERM to PID 1 with a request in flight: it finishes (200), then the gateway exits 0.
get "$listen" "/public/slow?ms=1000" >"$work/in-flight" 2>&1 &
in_flight=$!
sleep 0.3
kill -TERM "$pid"
rc=0
wait "$gw" || rc=$?
[ "$rc" -eq 0 ] || { cat "$work/stderr.log" >&2; fail "exit $rc after SIGTERM"; }
grep -q 'draining' "$work/stderr.log" || fail "no drain logged"
wait "$in_flight" || true
head -1 "$work/in-flight" | grep -q ' 200 ' ||
  fail "the request in flight at SIGTERM did not finish: $(head -1 "$work/in-flight")"
say "SIGTERM to PID 1: the request in flight finished with 200, then it exited 0"
