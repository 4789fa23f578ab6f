#!/usr/bin/env bash
# Load benchmark for Rampart (BENCHMARKS.md): 1,000,000 synthetic listed IPv4
# addresses plus the offline example's real feeds, synced into a temporary
# SQLite store; then `rampart serve` under wrk, alternating /healthz, /ip,
# /authz and a cache-hot /ip in one run, with gRPC Check and Envoy
# ext_authz (bench/grpcload) in the same rounds; then a CrowdSec startup
# stream of every decision.
#
#   bench/load.sh                   # from the repository root, ../shared beside it
#   ROUNDS=5 DURATION=10s bench/load.sh
#
# Needs: go, wrk (Debian package), curl. Everything generated goes into a
# temporary directory that is removed at the end (KEEP=1 keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-3s}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
MODES=${MODES:-"healthz ip healthzq authz iphot"}
GRPC_MODES=${GRPC_MODES:-"check extauthz"}
GRPC_CONNS=${GRPC_CONNS:-4}
HTTP_PORT=${HTTP_PORT:-18480}
GRPC_PORT=${GRPC_PORT:-18490}

for tool in go wrk curl; do
  command -v "$tool" >/dev/null || { echo "load.sh: $tool is needed" >&2; exit 1; }
done
[ -d ../shared/data ] || { echo "load.sh: ../shared/data is missing" >&2; exit 1; }

work=$(mktemp -d /tmp/rampart-load.XXXXXX)
# A fresh bouncer key per run, for the CrowdSec stream.
BOUNCER_KEY=bench-bouncer-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
  fi
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

now_ms() { date +%s%3N; }
say() { printf '%s\n' "$*" | tee -a "$work/report.txt"; }
rss() { awk -v k="$2" '$1 == k":" { printf "%.0f MB", $2 / 1024 }' "/proc/$1/status"; }

say "# Rampart load benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
say "machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(awk '/MemTotal/ { printf "%.1f GB", $2/1048576 }' /proc/meminfo) RAM, kernel $(uname -r)"
say "go: $(go version | cut -d' ' -f3-), wrk: $(wrk -v 2>&1 | head -1 | cut -d' ' -f2), load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
say "enrichment (GeoIP + warninglists): $([ "${ENRICH:-1}" = 0 ] && echo off || echo on)"
say "wrk: -t$THREADS -c$CONNS, rounds of $DURATION, $ROUNDS rounds alternating: $MODES"
say "grpcload: -c$CONNS callers over $GRPC_CONNS connections, in the same rounds after wrk: $GRPC_MODES"
say ""

go build -o "$work/rampart" ./cmd/rampart
go build -o "$work/grpcload" ./bench/grpcload
go run ./bench/gen1m -n 1000000 -sample 200000 -out "$work"

# The synthetic feed alone, for the first-sync and re-sync figures.
cat >"$work/synthetic.yaml" <<EOF
data_dir: $work/data
log: {level: warn}
feeds:
  - {name: synthetic_1m, provider: benchmark, url: $work/synthetic-1m.txt, source_format: freetext, category: bruteforce}
EOF
# The offline example's feeds, enrichment and warninglists beside it.
sed -e "s#^data_dir: .*#data_dir: $work/data#" \
    -e "/^feeds:/a\\  - {name: synthetic_1m, provider: benchmark, url: $work/synthetic-1m.txt, source_format: freetext, category: bruteforce}" \
    examples/offline.yaml >"$work/all.yaml"
# ENRICH=0 drops the enrichment block (GeoIP databases and warninglists):
# the core figures of issue #3 are about the feeds alone; issue #5 asks for
# the same ratio with enrichment on, which is the default here.
if [ "${ENRICH:-1}" = 0 ]; then
  awk '/^enrich:/ { skip = 1; next } skip && /^[^ ]/ { skip = 0 } !skip' "$work/all.yaml" >"$work/all.tmp" && mv "$work/all.tmp" "$work/all.yaml"
fi
cat >>"$work/all.yaml" <<EOF
http: {listen: "127.0.0.1:$HTTP_PORT", trusted_proxies: ["127.0.0.1/32"]}
grpc: {listen: "127.0.0.1:$GRPC_PORT"}
log: {level: info}
auth: {api_keys: [{name: bench-bouncer, key: "$BOUNCER_KEY", role: bouncer}]}
EOF

t0=$(now_ms)
"$work/rampart" sync --config "$work/synthetic.yaml" >"$work/sync1.txt" 2>"$work/sync1.log"
t1=$(now_ms)
say "first sync of the 1M feed into SQLite: $(( t1 - t0 )) ms wall for the whole command ($(awk '$1 == "synthetic_1m" { print "feed " $5 ", added " $2 }' "$work/sync1.txt"))"
t0=$(now_ms)
"$work/rampart" sync --config "$work/synthetic.yaml" >"$work/sync2.txt" 2>"$work/sync2.log"
t1=$(now_ms)
say "unchanged re-sync: $(( t1 - t0 )) ms wall ($(awk '$1 == "synthetic_1m" { print "feed " $5 ", added " $2 ", removed " $3 ", " $6 }' "$work/sync2.txt"))"
say "store file after the 1M sync: $(du -m "$work/data/rampart.db" | cut -f1) MB"

# start_server LABEL: starts serve, waits for /readyz, reports the time.
start_server() {
  : >"$work/serve.log"
  local t0 t1
  t0=$(now_ms)
  "$work/rampart" serve --config "$work/all.yaml" >>"$work/serve.log" 2>&1 &
  server_pid=$!
  until curl -fs -o /dev/null "http://127.0.0.1:$HTTP_PORT/readyz"; do
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
    (( $(now_ms) - t0 < 120000 )) || { echo "not ready after 120 s" >&2; exit 1; }
    sleep 0.05
  done
  t1=$(now_ms)
  say "$1: start to ready $(( t1 - t0 )) ms, RSS $(rss "$server_pid" VmRSS)"
  # The startup sync runs behind the served index; wait for it so that it
  # does not compete with the load.
  local deadline=$(( $(now_ms) + 300000 ))
  until grep -q 'initial sync done' "$work/serve.log"; do
    (( $(now_ms) < deadline )) || { echo "initial sync not done after 300 s" >&2; exit 1; }
    sleep 0.2
  done
  say "  startup sync done $(( $(now_ms) - t0 )) ms after start; $(grep -o 'prefixes=[0-9]*' "$work/serve.log" | tail -1) in the last index"
}
stop_server() {
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
}

start_server "serve, store holding the 1M feed only (the real feeds sync behind it)"
stop_server
start_server "serve, store holding the 1M feed and the real feeds"
say "  listed sample check: $(curl -s "http://127.0.0.1:$HTTP_PORT/ip?ip=$(head -1 "$work/listed-sample.txt")" | grep -o '"action":"[a-z]*"')"
say ""

bench() { # MODE DURATION
  wrk -t"$THREADS" -c"$CONNS" -d"$2" --timeout 5s -s bench/load.lua "http://127.0.0.1:$HTTP_PORT" -- "$1" "$work/listed-sample.txt"
}
# grpcbench MODE DURATION: the same address mix over gRPC, $CONNS callers
# sharing $GRPC_CONNS connections; RESULT lines as load.lua's (non2xx are
# ext_authz denials, socket_errors failed calls).
grpcbench() {
  "$work/grpcload" -addr "127.0.0.1:$GRPC_PORT" -mode "$1" -c "$CONNS" -conns "$GRPC_CONNS" -d "$2" -sample "$work/listed-sample.txt"
}
for m in $MODES; do bench "$m" "$WARMUP" >/dev/null; done
for m in $GRPC_MODES; do grpcbench "$m" "$WARMUP" >/dev/null; done
for r in $(seq 1 "$ROUNDS"); do
  for m in $MODES; do
    bench "$m" "$DURATION" >"$work/wrk-$r-$m.txt"
    sed -n "s/^RESULT /round=$r /p" "$work/wrk-$r-$m.txt" | tee -a "$work/results.txt"
  done
  for m in $GRPC_MODES; do
    grpcbench "$m" "$DURATION" >"$work/grpc-$r-$m.txt"
    sed -n "s/^RESULT /round=$r /p" "$work/grpc-$r-$m.txt" | tee -a "$work/results.txt"
  done
done
# Paced rounds: each connection waits PACE_MS between requests, for the
# latency at a steady rate below saturation.
PACED_MODES=${PACED_MODES:-"healthz ip"}
export PACE_MS=${PACE_MS:-2}
for m in $PACED_MODES; do
  wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --timeout 5s -s bench/paced.lua "http://127.0.0.1:$HTTP_PORT" -- "$m" "$work/listed-sample.txt" >"$work/wrk-paced-$m.txt"
  sed -n "s/^RESULT mode=\([a-z]*\)/paced pace_ms=$PACE_MS mode=\1/p" "$work/wrk-paced-$m.txt" | tee -a "$work/report.txt"
done
say ""
say "server RSS after the load: $(rss "$server_pid" VmRSS) (peak $(rss "$server_pid" VmHWM)); load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
say ""

# CrowdSec startup stream: every block decision of the served index, as a
# bouncer's first pull. The server's peak RSS is reset before each stream
# (writing 5 to clear_refs resets VmHWM to the current RSS), so the peak
# after it is the stream's own.
stream() { # LABEL QUERY
  local before peak_before out
  before=$(rss "$server_pid" VmRSS)
  echo 5 >"/proc/$server_pid/clear_refs" 2>/dev/null || true
  peak_before=$(rss "$server_pid" VmHWM)
  out=$(curl -fsS -H "X-Api-Key: $BOUNCER_KEY" -o "$work/stream.json" -w '%{time_starttransfer} %{time_total} %{size_download}' \
    "http://127.0.0.1:$HTTP_PORT/v1/decisions/stream?$2")
  set -- "$1" $out
  say "$1: $(awk -v a="$2" -v b="$3" 'BEGIN { printf "first byte %.0f ms, total %.0f ms", a * 1000, b * 1000 }'), $(awk -v n="$4" 'BEGIN { printf "%.1f MB", n / 1048576 }'), $(grep -o '"scope":' "$work/stream.json" | wc -l) decisions ($(grep -o '"duration":"0s"' "$work/stream.json" | wc -l) of them deleted); server RSS $before before, peak $(rss "$server_pid" VmHWM) during (reset to $peak_before), $(rss "$server_pid" VmRSS) after"
}
stream "CrowdSec startup stream" "startup=true"
stream "CrowdSec startup stream, again" "startup=true"
stream "CrowdSec stream right after (nothing changed)" "startup=false"
rm -f "$work/stream.json"
say ""

# Summary: per mode the median and range of requests/s, p50 and p99 over
# the rounds; the /ip ÷ /healthz ratio per round.
awk '
  { for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    m = f["mode"]; n[m]++; rps[m, n[m]] = f["rps"]; p50[m, n[m]] = f["p50_us"]; p99[m, n[m]] = f["p99_us"]
    bad[m] += f["socket_errors"]; non2xx[m] += f["non2xx"]; req[m] += f["requests"]
    if (!(m in seen)) { seen[m] = 1; order[++k] = m }
    byround[f["round"], m] = f["rps"] }
  function sortn(a, cnt,   i, j, t) { for (i = 2; i <= cnt; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t } }
  function stat(arr, m, scale,   i, v, c) { c = n[m]; for (i = 1; i <= c; i++) v[i] = arr[m, i] / scale; sortn(v, c)
    return sprintf(scale == 1 ? "%.0f (%.0f-%.0f)" : "%.2f (%.2f-%.2f)", v[int((c + 1) / 2)], v[1], v[c]) }
  function ratio(a, b, label,   r) {
    if (!((1, a) in byround) || !((1, b) in byround)) return
    printf "\n%s per round:", label
    for (r = 1; (r, a) in byround && (r, b) in byround; r++) printf " %.2f", byround[r, a] / byround[r, b]
  }
  END {
    print "| endpoint | requests/s median (range) | p50 ms median (range) | p99 ms median (range) | non-2xx | socket errors |"
    print "|---|---|---|---|---|---|"
    for (i = 1; i <= k; i++) { m = order[i]
      printf "| %s | %s | %s | %s | %.1f%% | %d |\n", m, stat(rps, m, 1), stat(p50, m, 1000), stat(p99, m, 1000), 100 * non2xx[m] / req[m], bad[m] }
    ratio("ip", "healthz", "/ip ÷ /healthz")
    ratio("ip", "healthzq", "/ip ÷ /healthz?ip= (same client work)")
    ratio("authz", "healthz", "/authz ÷ /healthz")
    ratio("iphot", "healthz", "cached /ip ÷ /healthz")
    ratio("grpc_check", "ip", "gRPC Check ÷ /ip")
    ratio("grpc_extauthz", "authz", "ext_authz ÷ /authz")
    print ""
  }' "$work/results.txt" | tee -a "$work/report.txt"
