#!/usr/bin/env bash
# hack/bench.sh - `make bench`: run the shared mirroring benchmark
# (../shared/bench) with airlock as its EXTRA_CMD next to skopeo, crane and
# regsync, measure airlock's no-op re-run, and write BENCHMARKS.md.
#
# Idempotent: setup.sh only installs what is missing, registries.sh start
# leaves running registries alone, and the workload is rebuilt only when the
# one in $BENCH_DIR was made with another SCALE/SEED or the source registry no
# longer holds it. Registries this script started are stopped at the end
# (KEEP_REGISTRIES=1 keeps them).
#
# Env (all optional):
#   SCALE           workload scale (1; use 0.1 while developing)
#   SEED            workload seed (21)
#   TOOLS           run.sh tool list (default: all peers, airlock, physical)
#   BENCH_SRC       the harness directory (<repo>/../shared/bench)
#   BENCH_DIR       harness work directory (/tmp/airlock-bench)
#   AIRLOCK_FLAGS   extra flags for `airlock image mirror`
#   BENCH_OUT       file to write (<repo>/BENCHMARKS.md); "-" = do not write
#   SRC_ADDR/DST_ADDR  registry addresses (127.0.0.1:5101 / 127.0.0.1:5102)
#   WORKLOADS       which workloads ("large small tls"): large = the shared 1.5 GB
#                   one; small = many small images (hack/benchsmall), with its
#                   registry-ingest-manifests row and no-op re-run; tls = the
#                   large one again into TLS + htpasswd destinations
#                   (hack/benchtls.sh; needs large)
#   SMALL_IMAGES    images of the small workload (2000)
#   GOBENCH         1 (default) runs airlock's Go benchmarks; 0 skips them
# TOOLS (run.sh's list) selects the peer rows of both workloads.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_SRC=${BENCH_SRC:-$ROOT/../shared/bench}
BENCH_SRC=$(cd "$BENCH_SRC" && pwd) || { echo "error: benchmark harness not found at $BENCH_SRC" >&2; exit 1; }
export SCALE=${SCALE:-1}
export SEED=${SEED:-21}
export BENCH_DIR=${BENCH_DIR:-/tmp/airlock-bench}
BENCH_OUT=${BENCH_OUT:-$ROOT/BENCHMARKS.md}
AIRLOCK=$ROOT/bin/airlock
AIRLOCK_FLAGS=${AIRLOCK_FLAGS:-}

# common.sh gives WL_DIR, SRC_ADDR, DST_ADDR, log, die and the loopback check.
# shellcheck source=/dev/null
. "$BENCH_SRC/common.sh"

[ -x "$AIRLOCK" ] || die "$AIRLOCK not built (run make build, or make bench)"

log "setup (installs only what is missing)"
"$BENCH_SRC/setup.sh"

started_registries=0
if ! "$BENCH_SRC/registries.sh" pid src >/dev/null 2>&1 || ! "$BENCH_SRC/registries.sh" pid dst >/dev/null 2>&1; then
	started_registries=1
fi
"$BENCH_SRC/registries.sh" start
cleanup() {
	if [ "$started_registries" = 1 ] && [ "${KEEP_REGISTRIES:-0}" != 1 ]; then
		"$BENCH_SRC/registries.sh" stop || true
	fi
}
trap cleanup EXIT

# Rebuild the workload only when needed: it takes minutes at SCALE=1.
workload_ok() {
	[ -f "$WL_DIR/totals.env" ] || return 1
	local s d
	s=$(sed -n 's/^WL_SCALE=//p' "$WL_DIR/totals.env")
	d=$(sed -n 's/^WL_SEED=//p' "$WL_DIR/totals.env")
	[ "$s" = "$SCALE" ] && [ "$d" = "$SEED" ] || return 1
	# the source registry must still hold it (it may have been reset)
	curl -fs -o /dev/null -H "Accept: $ACCEPT_MANIFESTS" \
		"http://$SRC_ADDR/v2/$(head -n1 "$WL_DIR/images.txt" | sed "s|^$SRC_ADDR/||; s|@|/manifests/|")"
}
if ! [[ " ${WORKLOADS:-large small tls} " == *" large "* ]]; then
	:
elif workload_ok; then
	log "workload SCALE=$SCALE SEED=$SEED already in $WL_DIR and the source registry"
else
	log "building workload SCALE=$SCALE SEED=$SEED"
	"$BENCH_SRC/workload.sh"
fi

# airlock's blob-location cache starts empty, as on a first run: entries
# left by an earlier bench would name repositories of a wiped registry.
export AIRLOCK_BLOB_CACHE="$BENCH_DIR/airlock-blob-locations.json"
rm -f "$AIRLOCK_BLOB_CACHE" "$AIRLOCK_BLOB_CACHE.journal"
WORKLOADS=${WORKLOADS:-large small tls}
SMALL_IMAGES=${SMALL_IMAGES:-2000}
want() { case " $WORKLOADS " in *" $1 "*) return 0 ;; esac; return 1; }

# noop_measure OUT MAPPING: mirror everything once into a fresh destination,
# then time the second, identical run (it should only check, never copy);
# writes OUT/noop.tsv and sets noop_wall, noop_rss, noop_rc.
noop_measure() {
	local out=$1 noop_log="$1/logs/airlock-noop.log" t0 t1
	"$BENCH_SRC/registries.sh" reset-dst 2>>"$out/logs/registries.log"
	rm -f "$AIRLOCK_BLOB_CACHE" "$AIRLOCK_BLOB_CACHE.journal"
	MAPPING=$2 bash -c "$AIRLOCK_CMD --log-level debug" >"$out/logs/airlock-fill.log" 2>&1 || die "airlock fill run failed, see $out/logs/airlock-fill.log"
	t0=$(date +%s.%N)
	noop_rc=0
	MAPPING=$2 /usr/bin/time -v -o "$out/logs/airlock-noop.time" bash -c "$AIRLOCK_CMD --log-level debug" >"$noop_log" 2>&1 || noop_rc=$?
	t1=$(date +%s.%N)
	noop_wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b - a}')
	noop_rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2/1024}' "$out/logs/airlock-noop.time")
	"$BENCH_SRC/registries.sh" reset-dst 2>>"$out/logs/registries.log"
	printf 'airlock-noop\t%s\t%s\t%s\n' "$noop_wall" "$noop_rss" "$noop_rc" >"$out/noop.tsv"
	log "no-op re-run: ${noop_wall}s, peak RSS ${noop_rss} MB, rc=$noop_rc"
}

# The airlock command, as run.sh runs it (MAPPING and BENCH_DIR come from run.sh).
AIRLOCK_CMD="$AIRLOCK image mirror -f \"\$MAPPING\" --insecure --report \"\$BENCH_DIR/airlock-errors.txt\" $AIRLOCK_FLAGS"

# The machine may be shared: record how busy it was, to read the numbers.
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# run_bench WL_DIR [env...]: run.sh over one workload; prints the new results directory.
run_bench() {
	local wl=$1 before id
	shift
	before=$(ls -1 "$RESULTS_DIR" 2>/dev/null | sort | tail -n1 || true)
	env WL_DIR="$wl" "$@" "$BENCH_SRC/run.sh" >>"$BENCH_DIR/bench-table.txt"
	id=$(ls -1 "$RESULTS_DIR" | sort | tail -n1)
	[ -n "$id" ] && [ "$id" != "$before" ] || die "run.sh wrote no new results directory in $RESULTS_DIR"
	echo "$id"
}
: >"$BENCH_DIR/bench-table.txt"
run_id="" OUT="" DETAIL=""
if want large; then
	log "run.sh with airlock: $AIRLOCK_CMD"
	run_id=$(run_bench "$WL_DIR" EXTRA_NAME=airlock EXTRA_CMD="$AIRLOCK_CMD")
	OUT="$RESULTS_DIR/$run_id"
	DETAIL="$OUT/results-detail.tsv"
	[ -s "$DETAIL" ] || die "no $DETAIL"
	log "no-op re-run measurement"
	noop_measure "$OUT" "$WL_DIR/mapping.txt"
	if want tls; then
		log "TLS + htpasswd destinations (hack/benchtls.sh)"
		TLS_OUT="$OUT/tls" AIRLOCK="$AIRLOCK" "$ROOT/hack/benchtls.sh" || die "TLS bench failed, see $OUT/tls/logs"
	fi
fi

# The many-small-images workload: pushed next to the large one (workload.sh
# wipes the source registry, so it is re-pushed when it is gone).
SWL="$BENCH_DIR/workload-small-$SMALL_IMAGES"
if want small; then
	BENCHSMALL="$BENCH_DIR/benchsmall"
	(cd "$ROOT" && CGO_ENABLED=0 go build -o "$BENCHSMALL" ./hack/benchsmall) || die "building hack/benchsmall"
	small_ok() {
		[ -f "$SWL/totals.env" ] || return 1
		local l
		for l in "$(head -n1 "$SWL/images.txt")" "$(tail -n1 "$SWL/images.txt")"; do
			curl -fs -o /dev/null -H "Accept: $ACCEPT_MANIFESTS" "http://$SRC_ADDR/v2/$(echo "$l" | sed "s|^$SRC_ADDR/||; s|@|/manifests/|")" || return 1
		done
	}
	if small_ok; then
		log "small workload already in $SWL and the source registry"
	else
		log "pushing the small workload ($SMALL_IMAGES images) to $SRC_ADDR"
		"$BENCHSMALL" push -src "$SRC_ADDR" -dst "$DST_ADDR" -dir "$SWL" -images "$SMALL_IMAGES" || die "pushing the small workload"
	fi
	rm -f "$AIRLOCK_BLOB_CACHE" "$AIRLOCK_BLOB_CACHE.journal"
	small_id=$(run_bench "$SWL" EXTRA_NAME=airlock EXTRA_CMD="$AIRLOCK_CMD")
	SOUT="$RESULTS_DIR/$small_id"
	ingest_cmd="$BENCHSMALL ingest -dir \"\$WL_DIR\" -storage \"\$SRC_STORAGE\" -dst \"\$DST_ADDR\" -p \"\$PARALLEL\""
	ing_id=$(run_bench "$SWL" TOOLS=extra EXTRA_NAME="registry-ingest-manifests-p${PARALLEL:-4}" EXTRA_CMD="$ingest_cmd")
	tail -n +2 "$RESULTS_DIR/$ing_id/results-detail.tsv" >>"$SOUT/results-detail.tsv"
	cp -r "$RESULTS_DIR/$ing_id/logs/." "$SOUT/logs/"
	log "small workload no-op re-run"
	noop_measure "$SOUT" "$SWL/mapping.txt"
	# request counts of the airlock rows (from --log-level debug of the no-op run and the JSON-free first run)
	small_noop_wall=$noop_wall small_noop_rss=$noop_rss small_noop_rc=$noop_rc
	if [ -n "$OUT" ]; then
		read -r noop_wall noop_rss noop_rc < <(cut -f2-4 "$OUT/noop.tsv")
	fi
fi
cat "$BENCH_DIR/bench-table.txt"

# Go benchmarks of airlock's own hot paths, each in its own process so its
# peak RSS is its own: catalog load+filter+write (community catalog and a
# synthetic one 10x its size), catalog -> plan, release payload read,
# streaming a large blob, cached htpasswd checks.
OUT=${OUT:-$SOUT}
log "Go benchmarks"
gob_dir="$OUT/gobench"
mkdir -p "$gob_dir"
: >"$OUT/gobench.tsv"
gobench() { # package benchmark-regexp benchtime
	local pkg=$1 re=$2 bt=$3 bin
	bin="$gob_dir/$(basename "$pkg").test"
	[ -x "$bin" ] || (cd "$ROOT" && CGO_ENABLED=0 go test -c -o "$bin" "./$pkg") || die "building $pkg benchmarks"
	(cd "$ROOT/$pkg" && /usr/bin/time -v -o "$gob_dir/$re.time" "$bin" -test.run '^$' -test.bench "^$re\$" -test.benchmem -test.benchtime "$bt") >"$gob_dir/$re.txt" 2>&1 ||
		die "benchmark $re failed, see $gob_dir/$re.txt"
	awk -v re="$re" -v rss="$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$gob_dir/$re.time")" '
		$1 ~ "^"re"(-[0-9]+)?$" { for (i = 2; i <= NF; i++) { if ($(i+1) == "ns/op") ns = $i; if ($(i+1) == "B/op") bop = $i; if ($(i+1) == "allocs/op") al = $i }
			t = ns >= 1e9 ? sprintf("%.2f s", ns / 1e9) : ns >= 1e6 ? sprintf("%.1f ms", ns / 1e6) : sprintf("%.1f µs", ns / 1e3)
			printf "%s\t%s\t%.1f\t%s\t%s\n", re, t, bop / 1e6, al, rss }' "$gob_dir/$re.txt" >>"$OUT/gobench.tsv"
}
if [ "${GOBENCH:-1}" = 1 ]; then
gobench internal/catalog BenchmarkLoadFilterWriteCommunity 3x
gobench internal/catalog BenchmarkLoadFilterWriteCommunity10x 1x
gobench internal/catalog BenchmarkPruneSQLite 3x
gobench internal/catalogmirror BenchmarkCollectCommunity 3x
gobench internal/release BenchmarkReadRealPayload 10x
gobench internal/engine BenchmarkCopyLargeBlob 3x
gobench internal/engine BenchmarkPlan10kImages 1x
gobench internal/registry/htpasswd BenchmarkAuthenticateCached 1000x
gobench internal/transfer BenchmarkCreateVerify 3x
fi

[ "$BENCH_OUT" != "-" ] || exit 0
if [ -z "$DETAIL" ]; then
	log "the large workload was not run (WORKLOADS=$WORKLOADS): BENCHMARKS.md not written; results in ${SOUT:-nowhere}"
	exit 0
fi

# --- BENCHMARKS.md ----------------------------------------------------------
# shellcheck source=/dev/null
. "$WL_DIR/totals.env"
col() { # tool column-name -> value from results-detail.tsv
	awk -F'\t' -v t="$1" -v c="$2" 'NR == 1 { for (i = 1; i <= NF; i++) h[$i] = i; next }
		$1 == t { print $(h[c]); exit }' "$DETAIL"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }

airlock_wall=$(col airlock wall_s)
airlock_rss=$(col airlock peak_rss_mb)
airlock_ok=$(col airlock verified)
ingest_wall=$(col "registry-ingest-p${PARALLEL:-4}" wall_s)
# fastest verified peer tool (not airlock, not the physical rows)
read -r peer peer_wall < <(awk -F'\t' 'NR > 1 && $1 != "airlock" && $1 !~ /^(physical|registry-ingest)/ && $13 == "yes" { print $1, $2 }' "$DETAIL" |
	sort -k2,2g | head -n1) || true
peer=${peer:-none}
peer_wall=${peer_wall:-}
# small_section: the many-small-images table and its reading.
small_section() {
	local d="$SOUT/results-detail.tsv" a ing t w
	scol() { awk -F'\t' -v t="$1" -v c="$2" 'NR == 1 { for (i = 1; i <= NF; i++) h[$i] = i; next } $1 == t { print $(h[c]); exit }' "$d"; }
	# shellcheck source=/dev/null
	. "$SWL/totals.env"
	a=$(scol airlock wall_s)
	ing=$(scol "registry-ingest-manifests-p${PARALLEL:-4}" wall_s)
	echo
	echo "## Many small images"
	echo
	echo "$(hack_small_line)"
	echo
	echo "| tool | wall s | MB/s | peak RSS MB | sum RSS MB | user s | sys s | dst reg CPU s | src sent MB | dst read MB | verified |"
	echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
	awk -F'\t' 'NR > 1 { printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $5, $3, $4, $6, $7, $9, $10, $11, $13 }' "$d"
	echo
	echo "No-op re-run of the $WL_IMAGES images: **${small_noop_wall} s** (goal < 5 s), peak RSS ${small_noop_rss} MB, exit $small_noop_rc."
	echo
	echo "- airlock: ${a} s, verified $(scol airlock verified); peak RSS $(scol airlock peak_rss_mb) MB (goal < 150 MB)."
	for t in regsync-p${PARALLEL:-4} skopeo-sync skopeo-copy-p${PARALLEL:-4} crane-copy-p${PARALLEL:-4}; do
		w=$(scol "$t" wall_s)
		[ -z "$w" ] || echo "- airlock / $t = $(ratio "$a" "$w") (goal ≤ 0.5 for regsync and skopeo)."
	done
	echo "- airlock / registry-ingest-manifests (every unique blob POST + PUT once, mounts, every manifest PUT, P${PARALLEL:-4}, from the source's files) = $(ratio "$a" "$ing") (goal ≤ 1.5)."
	echo "- airlock's requests (first run into the empty destination, \`--log-level debug\`): $(grep -m1 'msg=requests ' "$SOUT/logs/airlock-fill.log" | sed 's/.*msg=requests //')"
	echo "- airlock's requests (no-op re-run): $(grep -m1 'msg=requests ' "$SOUT/logs/airlock-noop.log" | sed 's/.*msg=requests //')"
	echo "- Raw results: \`$SOUT\`."
}
# tls_section: the TLS + htpasswd rows and their ratios next to plain HTTP.
tls_section() {
	local f="$OUT/tls/tls.tsv" t h w
	tcol() { awk -F'\t' -v d="$1" -v t="$2" -v c="$3" 'NR == 1 { for (i = 1; i <= NF; i++) h[$i] = i; next } $1 == d && $2 == t { print $(h[c]); exit }' "$f"; }
	echo
	echo "## TLS + htpasswd destinations"
	echo
	echo "The same workload from the same plain-HTTP source into destinations with TLS and password auth, as users run"
	echo "them (hack/benchtls.sh): \`dreg-tls\` is the docker-registry 2.8 of the table above with TLS and an htpasswd file"
	echo "of bcrypt cost 5 (what \`htpasswd -Bbn\` writes; docker-registry checks bcrypt on every request); \`airlock-tls\`"
	echo "is \`airlock registry serve\` with its generated CA and an \`airlock registry htpasswd\` file (cost 10, verified"
	echo "credentials cached). Every client trusts the CA (no verification skipped) and reads the credentials from an auth"
	echo "file; every manifest, blob and tag is checked afterwards over TLS."
	echo
	echo "| destination | tool | wall s | peak RSS MB | user s | sys s | dst reg CPU s | verified |"
	echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
	awk -F'\t' 'NR > 1 { printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $9 }' "$f"
	echo
	local a_h a_t
	a_h=$(col airlock wall_s)
	a_t=$(tcol dreg-tls airlock wall_s)
	echo "- airlock over TLS + auth / plain HTTP (docker-registry): $(ratio "$a_t" "$a_h")."
	for t in regsync-p${PARALLEL:-4} skopeo-sync skopeo-copy-p${PARALLEL:-4} crane-copy-p${PARALLEL:-4}; do
		h=$(col "$t" wall_s)
		w=$(tcol dreg-tls "$t" wall_s)
		[ -n "$w" ] || continue
		echo "- airlock / $t: plain HTTP $(ratio "$a_h" "$h"), TLS + auth $(ratio "$a_t" "$w") (goal: within 10 % of each other)."
	done
	w=$(tcol airlock-tls regsync-p${PARALLEL:-4} wall_s)
	[ -z "$w" ] || echo "- into airlock's own registry (TLS + auth): airlock $(tcol airlock-tls airlock wall_s) s, regsync-p${PARALLEL:-4} $w s, airlock / regsync = $(ratio "$(tcol airlock-tls airlock wall_s)" "$w")."
	echo "- Raw results: \`$OUT/tls\` (tls.tsv, logs, cmd/ with each exact command)."
}
hack_small_line() {
	echo "Workload (hack/benchsmall): $WL_IMAGES images in $WL_REPOS repositories ($WL_INDEXES two-platform indexes), $WL_MANIFESTS manifests, 5 layers of 4-64 KiB per image (one of 50 shared base layers), $WL_UNIQUE_BLOBS unique blobs, $(awk -v b="$WL_UNIQUE_BYTES" 'BEGIN{printf "%.1f MB", b/1e6}'); same registries and verification as above."
}
tmp=$(mktemp "$(dirname "$BENCH_OUT")/.BENCHMARKS.md.tmp-XXXXXX")
{
	echo "# Benchmarks"
	echo
	echo "Written by \`make bench\` (hack/bench.sh) — do not edit by hand; re-run it."
	echo
	echo "- date: $(date -u +'%Y-%m-%d %H:%M UTC'), run \`$run_id\`"
	echo "- load average (1/5/15 min) when the run started: $load_before"
	echo "- machine: $(nproc) cores $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, $(. /etc/os-release && echo "$PRETTY_NAME")"
	echo "- airlock: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown), command: \`$(echo "airlock image mirror -f mapping.txt --insecure $AIRLOCK_FLAGS" | sed 's/ *$//')\`"
	echo "- workload: SCALE=$SCALE SEED=$SEED — $WL_IMAGES images ($WL_INDEXES multi-arch indexes), $WL_MANIFESTS manifests, $WL_UNIQUE_BLOBS unique blobs, $(awk -v b="$WL_UNIQUE_BYTES" 'BEGIN{printf "%.1f MB", b/1e6}') unique bytes"
	echo "- peers: $(tr '\n' ';' <"$BENCH_DIR/versions.txt" | sed 's/;$//; s/;/; /g')"
	echo
	echo "Every tool copies the same workload from a source registry to a freshly wiped destination registry"
	echo "(two \`docker-registry\` processes on 127.0.0.1), then every manifest, blob and tag is checked at the"
	echo "destination (\`verified\`). See ../shared/bench/README.md for what each column means."
	echo
	echo "| tool | wall s | MB/s | peak RSS MB | sum RSS MB | user s | sys s | dst reg CPU s | src sent MB | dst read MB | verified |"
	echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
	awk -F'\t' 'NR > 1 { printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $5, $3, $4, $6, $7, $9, $10, $11, $13 }' "$DETAIL"
	echo
	echo "No-op re-run (airlock again over the complete destination): **${noop_wall} s**, peak RSS ${noop_rss} MB, exit $noop_rc."
	echo
	echo "## Reading"
	echo
	if [ "$airlock_ok" = yes ]; then
		echo "- airlock: ${airlock_wall} s, verified; peak RSS ${airlock_rss} MB (goal < 150 MB)."
	else
		echo "- airlock: ${airlock_wall} s but **not verified ($airlock_ok)**: its time does not count; see logs/airlock.log of the run."
	fi
	echo "- fastest verified peer: $peer ${peer_wall} s; airlock / peer = $(ratio "$airlock_wall" "$peer_wall") (goal ≤ 0.5)."
	echo "- destination ingest limit (registry-ingest): ${ingest_wall} s; airlock / ingest = $(ratio "$airlock_wall" "$ingest_wall") (goal ≤ 1.5)."
	echo "- no-op re-run: ${noop_wall} s (goal < 2 s)."
	echo "- \`src sent MB\` / \`dst read MB\` show wire bytes: a tool that mounts shared blobs across repositories"
	echo "  sends each unique blob once (≈ the unique bytes above); one that does not sends the per-repository total."
	if [ "$SCALE" != 1 ]; then
		echo "- SCALE=$SCALE is a reduced run: fixed costs weigh more; the goals are stated for SCALE=1."
	fi
	if [ -s "$OUT/tls/tls.tsv" ]; then
		tls_section
	fi
	if [ -n "${SOUT:-}" ]; then
		small_section
	fi
	echo
	echo
	echo "## airlock's own hot paths (Go benchmarks, one process each)"
	echo
	echo "| benchmark | time/op | MB allocated/op | allocs/op | peak RSS MB |"
	echo "| --- | --- | --- | --- | --- |"
	awk -F'\t' '{ printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5 }' "$OUT/gobench.tsv"
	echo
	echo "- LoadFilterWriteCommunity: the real community-operators 4.18 catalog (35 packages, 727 bundles) loaded,"
	echo "  filtered to heads with dependencies, written as FBC; ...10x: the same on a synthetic catalog ten times its size."
	echo "- PruneSQLite: a legacy sqlite index.db of 600 packages / 2000 bundles (operator-registry's indexer database at the"
	echo "  latest schema, cloned 200 times) pruned to 40 packages with channel and version ranges, verified and read back (its"
	echo "  peak RSS is the whole process: building and loading the 2000-bundle source once, with every bundle's manifests,"
	echo "  dominates it; one prune allocates 195 MB in total)."
	echo "- CollectCommunity: that catalog turned into a mirror plan with oc naming; ReadRealPayload: image-references and"
	echo "  release-metadata read from the real 4.12.0 payload layer; CopyLargeBlob: a 64 MiB layer streamed between two"
	echo "  in-process registries (11 MB allocated for 64 MiB moved: blobs are streamed; its RSS is the benchmark's own 64 MiB"
	echo "  source layer plus both registries, not the engine); AuthenticateCached: a request's"
	echo "  htpasswd check once the bcrypt result is cached (bcrypt itself costs ~60-190 ms); Plan10kImages: a dry run"
	echo "  (the plan resolved: every manifest read, verified, parsed, sized) of 10,000 images with 20 blobs each (200,000"
	echo "  blobs) from the in-process registry (its RSS and allocations include that registry serving 10,000 manifests)."
	echo "- CreateVerify: a 128 MiB store packed into 64 MiB transfer segments (fsynced) and verified, next to"
	echo "  \`tar cf\` + \`sync\` + \`sha256sum\` of the same files; ours/baseline: $(grep -o '[0-9.]* ratio' "$gob_dir/BenchmarkCreateVerify.txt" | cut -d' ' -f1) (goal ≤ 1.25, i.e. ≥ 80 % of its speed)."
	echo
	echo "Raw results: \`$OUT\` (results-detail.tsv, logs, exact command scripts)."
} >"$tmp"
mv -f "$tmp" "$BENCH_OUT"
log "wrote $BENCH_OUT"
