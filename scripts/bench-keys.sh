#!/usr/bin/env bash
# bench-keys.sh: device-key derivation, side by side in one run.
#
#   1. Go benchmarks of the bulk deriver (ns/key on one core, allocations),
#      fastest of 5 runs.
#   2. dpsconsole keys derive --input over 1,000,000 IDs, file to file,
#      process start included (best of 3).
#   3. The tutorial's openssl pipeline, one device at a time, over 200 IDs,
#      extrapolated to 1,000,000.
#   4. A Node crypto.createHmac loop over the same 1,000,000 IDs, file to
#      file, process start included (best of 3); its output must equal ours.
#
# Usage: scripts/bench-keys.sh [N]   (N IDs, default 1000000)
set -euo pipefail

for c in go node openssl xxd base64 awk; do
	command -v "$c" >/dev/null || { echo "bench-keys.sh needs $c on PATH" >&2; exit 2; }
done
cd "$(dirname "$0")/.."
N=${1:-1000000}
SAMPLE=200
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

now() { date +%s%N; }
secs() { awk -v ns="$1" 'BEGIN { printf "%.3f", ns / 1e9 }'; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(go version | cut -d' ' -f3), node $(node --version), $(openssl version | cut -d' ' -f1-2)"

echo
echo "== Go benchmarks (keys; fastest of 5 runs, since the cores are shared)"
go test -run '^$' -bench 'Deriver|DeriveDeviceKey$|DeriveStream' -benchtime 1s -count 5 ./keys |
	awk '/^Benchmark/ { if (!($1 in best) || $3 < best[$1]) { best[$1] = $3; line[$1] = $0 }; if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 } }
	     END { for (i = 1; i <= n; i++) print line[order[i]] }'

go build -o "$work/dpsconsole" ./cmd/dpsconsole
bin=$work/dpsconsole
"$bin" keys generate >"$work/group.key"
awk -v n="$N" 'BEGIN { for (i = 1; i <= n; i++) printf "sn-007-888-abc-mac-%017d\n", i }' >"$work/ids.txt"

echo
echo "== dpsconsole keys derive --input ($N IDs, file to file, best of 3)"
best_ours=
for _ in 1 2 3; do
	t0=$(now)
	"$bin" keys derive --group-key-file "$work/group.key" --input "$work/ids.txt" --output-file "$work/ours.csv"
	t=$(($(now) - t0))
	if [ -z "$best_ours" ] || [ "$t" -lt "$best_ours" ]; then best_ours=$t; fi
done
lines=$(wc -l <"$work/ours.csv")
[ "$lines" -eq $((N + 1)) ] || { echo "expected $((N + 1)) lines, got $lines" >&2; exit 1; }
ours_rate=$(awk -v n="$N" -v ns="$best_ours" 'BEGIN { printf "%.0f", n / (ns / 1e9) }')
echo "$(secs "$best_ours") s, $ours_rate keys/s"

echo
echo "== tutorial openssl pipeline, per device ($SAMPLE IDs, extrapolated to $N)"
KEY=$(cat "$work/group.key")
head -n "$SAMPLE" "$work/ids.txt" >"$work/sample.txt"
t0=$(now)
while read -r REG_ID; do
	keybytes=$(echo "$KEY" | base64 --decode | xxd -p -u -c 1000)
	echo -n "$REG_ID" | openssl sha256 -mac HMAC -macopt hexkey:"$keybytes" -binary | base64
done <"$work/sample.txt" >"$work/openssl.txt"
t_openssl=$(($(now) - t0))
paste -d, "$work/sample.txt" "$work/openssl.txt" | cmp -s - <(sed -n "2,$((SAMPLE + 1))p" "$work/ours.csv") ||
	{ echo "openssl keys differ from ours" >&2; exit 1; }
openssl_1m=$(awk -v t="$t_openssl" -v s="$SAMPLE" -v n="$N" 'BEGIN { printf "%.0f", t / s * n }')
echo "$(secs "$t_openssl") s for $SAMPLE → $(secs "$openssl_1m") s for $N (same keys as ours)"

echo
echo "== Node crypto.createHmac loop ($N IDs, file to file, best of 3)"
cat >"$work/derive.js" <<'EOF'
const fs = require('fs');
const crypto = require('crypto');
const [keyFile, inFile, outFile] = process.argv.slice(2);
const key = Buffer.from(fs.readFileSync(keyFile, 'utf8').trim(), 'base64');
const ids = fs.readFileSync(inFile, 'utf8').split('\n');
const out = ['registration_id,device_key\n'];
for (const id of ids) {
  if (id === '') continue;
  out.push(id, ',', crypto.createHmac('sha256', key).update(id).digest('base64'), '\n');
}
fs.writeFileSync(outFile, out.join(''), { mode: 0o600 });
EOF
best_node=
for _ in 1 2 3; do
	t0=$(now)
	node "$work/derive.js" "$work/group.key" "$work/ids.txt" "$work/node.csv"
	t=$(($(now) - t0))
	if [ -z "$best_node" ] || [ "$t" -lt "$best_node" ]; then best_node=$t; fi
done
cmp -s "$work/ours.csv" "$work/node.csv" || { echo "node output differs from ours" >&2; exit 1; }
node_rate=$(awk -v n="$N" -v ns="$best_node" 'BEGIN { printf "%.0f", n / (ns / 1e9) }')
echo "$(secs "$best_node") s, $node_rate keys/s (identical output)"

echo
echo "== ratios (targets: ≥ 2,000,000 keys/s; ≥ 10,000× openssl; ≥ 2× node)"
vs_openssl=$(awk -v a="$openssl_1m" -v b="$best_ours" 'BEGIN { printf "%.0f", a / b }')
vs_node=$(awk -v a="$best_node" -v b="$best_ours" 'BEGIN { printf "%.1f", a / b }')
verdict() { if awk -v x="$1" -v t="$2" 'BEGIN { exit !(x >= t) }'; then echo met; else echo MISSED; fi; }
echo "dpsconsole:           $ours_rate keys/s ($(verdict "$ours_rate" 2000000))"
echo "vs openssl pipeline:  ${vs_openssl}× faster ($(verdict "$vs_openssl" 10000))"
echo "vs node createHmac:   ${vs_node}× faster ($(verdict "$vs_node" 2))"
