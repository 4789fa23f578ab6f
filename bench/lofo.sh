#!/bin/sh
# Leave-one-feed-out evaluation of the scoring model (docs/scoring.md,
# "Evaluation"), on the feeds of examples/offline.yaml.
#
# It syncs every feed once into a temporary data dir, then for each feed:
# builds the index without it (rampart eval --exclude), scores the feed's
# addresses that no other feed lists (the positives) against random
# announced IPv4 addresses (the negatives), and prints one row. The last
# row is the mean over the feeds.
#
#   bench/lofo.sh                      # from the repository root
#   RANDOM_N=20000 SEED=1 bench/lofo.sh
#   EVAL_FLAGS=--unlisted-negatives bench/lofo.sh
#
# Needs ../shared/data beside the repository (SHARED overrides it). Runs in
# well under a minute on 2 cores; nothing is written outside TMPDIR.
set -eu

cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
RANDOM_N=${RANDOM_N:-20000}
SEED=${SEED:-1}
EVAL_FLAGS=${EVAL_FLAGS:-}
CONFIG=examples/offline.yaml

[ -d "$SHARED/data" ] || { echo "lofo: $SHARED/data not found (set SHARED)" >&2; exit 1; }
SHARED=$(cd "$SHARED" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rampart-lofo.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM

go build -o "$WORK/rampart" ./cmd/rampart
# The example's paths are relative to the repository root; make them
# absolute and put the data dir in the temporary directory.
sed -e "s#\.\./shared#$SHARED#g" -e "s#^data_dir:.*#data_dir: $WORK/data#" "$CONFIG" >"$WORK/config.yaml"
"$WORK/rampart" sync --quiet --config "$WORK/config.yaml" >"$WORK/sync.txt" 2>&1 ||
	{ cat "$WORK/sync.txt" >&2; exit 1; }

# One feed per line of the example: "  - {name: NAME, ..., url: PATH, ...}".
sed -n 's/^ *- {name: \([^,]*\),.* url: \([^,]*\),.*/\1 \2/p' "$WORK/config.yaml" >"$WORK/feeds.txt"
[ -s "$WORK/feeds.txt" ] || { echo "lofo: no feeds found in $CONFIG" >&2; exit 1; }

printf '%-16s %9s %8s %10s %11s\n' "held-out feed" positives "ROC AUC" "TPR@1%FPR" "TPR@0.1%FPR"
while read -r name url; do
	# shellcheck disable=SC2086
	"$WORK/rampart" eval --config "$WORK/config.yaml" --positives "$url" --exclude "$name" \
		--unlisted-positives --random "$RANDOM_N" --seed "$SEED" $EVAL_FLAGS >"$WORK/$name.txt"
	awk -v name="$name" '
		/^positives:/ { for (i = 1; i <= NF; i++) if ($(i+1) == "scored") n = $i }
		/^ROC AUC/ { auc = $3 }
		/^TPR at 1% FPR/ { t1 = $5 }
		/^TPR at 0.1% FPR/ { t01 = $5 }
		END { printf "%-16s %9s %8s %10s %11s\n", name, n, auc, t1, t01 }' "$WORK/$name.txt"
done <"$WORK/feeds.txt" | tee "$WORK/table.txt"
# Feeds with no positives left (every address listed by another feed) have
# no metrics and are left out of the mean.
awk '$3 != "n/a" { n++; auc += $3; t1 += $4; t01 += $5 }
	END { printf "%-16s %9s %8.4f %10.4f %11.4f\n", "mean (" n " feeds)", "", auc / n, t1 / n, t01 / n }' "$WORK/table.txt"
echo "negatives: $RANDOM_N random announced IPv4 addresses, seed $SEED${EVAL_FLAGS:+, $EVAL_FLAGS}"
