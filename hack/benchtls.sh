#!/usr/bin/env bash
# hack/benchtls.sh - the TLS + htpasswd variant of `make bench` (called by
# hack/bench.sh when WORKLOADS has "tls"; runnable alone once the shared
# harness's source registry holds its workload).
#
# What users run is not plain HTTP on loopback: a mirror registry has TLS
# and password auth. Every tool copies the same workload as the plain-HTTP
# run from the same plain-HTTP source registry, into two destinations:
#   dreg-tls  Debian docker-registry 2.8 (the plain-HTTP run's registry) with
#             TLS and htpasswd auth, so its rows compare one to one with the
#             plain-HTTP rows: only TLS + auth differ;
#   airlock-tls  airlock's embedded registry (distribution v3) with its
#             generated CA and htpasswd, as `airlock registry serve` runs it.
# Each run starts on a wiped destination; afterwards every manifest, blob and
# mapping tag is checked at the destination over TLS with the credentials
# (the same checks as the shared harness's run.sh). Clients trust the CA
# (none skips certificate verification at the destination) and read the
# credentials from an auth file: skopeo --dest-cert-dir/--dest-authfile,
# crane and regsync through SSL_CERT_FILE / DOCKER_CONFIG and regsync's creds,
# airlock --ca-file/--authfile.
#
# Env: BENCH_DIR, WL_DIR, SRC_ADDR as the harness (common.sh); AIRLOCK (the
# binary); TLS_OUT (directory for tls.tsv and logs, required);
# TLS_TOOLS (airlock regsync skopeo-sync skopeo-copy crane);
# TLS_DESTS (dreg-tls airlock-tls); TLS_AIRLOCK_ONLY_TOOLS tools run against
# airlock-tls (airlock regsync); PARALLEL (4); TLS_DREG_ADDR (127.0.0.1:5104);
# TLS_EMB_ADDR (127.0.0.1:5103).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_SRC=${BENCH_SRC:-$ROOT/../shared/bench}
# shellcheck source=/dev/null
. "$BENCH_SRC/common.sh"
AIRLOCK=${AIRLOCK:-$ROOT/bin/airlock}
: "${TLS_OUT:?TLS_OUT must name the output directory}"
PARALLEL=${PARALLEL:-4}
TLS_TOOLS=${TLS_TOOLS:-airlock regsync skopeo-sync skopeo-copy crane}
TLS_DESTS=${TLS_DESTS:-dreg-tls airlock-tls}
TLS_AIRLOCK_ONLY_TOOLS=${TLS_AIRLOCK_ONLY_TOOLS:-airlock regsync}
DREG_ADDR=${TLS_DREG_ADDR:-127.0.0.1:5104}
EMB_ADDR=${TLS_EMB_ADDR:-127.0.0.1:5103}
check_loopback "$DREG_ADDR"
check_loopback "$EMB_ADDR"
[ -x "$AIRLOCK" ] || die "$AIRLOCK not built"
[ -f "$WL_DIR/totals.env" ] || die "no workload in $WL_DIR"
# shellcheck source=/dev/null
. "$WL_DIR/totals.env"

TD="$BENCH_DIR/tls"
mkdir -p "$TD" "$TLS_OUT/logs" "$TLS_OUT/cmd"
USER_NAME=bench
PASS=bench-tls-local-only
# airlock's registry: the file `airlock registry htpasswd add` writes (bcrypt
# cost 10; the registry caches verified credentials). docker-registry checks
# bcrypt on every request, uncached: its file has cost 5, what Apache's
# `htpasswd -Bbn` (the registry:2 documentation's command) writes; at cost 10
# the destination spends ~0.1 s of CPU per request and every tool's run is
# that CPU, whatever the tool.
HTPASSWD="$TD/htpasswd"
HTPASSWD_DREG="$TD/htpasswd-cost5"
[ -s "$HTPASSWD" ] || echo "$PASS" | "$AIRLOCK" registry htpasswd add --file "$HTPASSWD" "$USER_NAME" --password-stdin >/dev/null
[ -s "$HTPASSWD_DREG" ] || echo "$PASS" | "$AIRLOCK" registry htpasswd add --bcrypt-cost 5 --file "$HTPASSWD_DREG" "$USER_NAME" --password-stdin >/dev/null
CERTS="$TD/certs"  # the generated CA + server cert (127.0.0.1 among its names), shared by both registries
EMB_ROOT="$TD/emb"
DREG_ROOT="$TD/dreg"

emb_pid="" dreg_pid=""
stop_regs() {
	local p
	for p in $emb_pid $dreg_pid; do kill "$p" 2>/dev/null || true; done
	for p in $emb_pid $dreg_pid; do wait "$p" 2>/dev/null || true; done
	emb_pid="" dreg_pid=""
}
trap stop_regs EXIT

wait_up() { # addr pid log
	for _ in $(seq 1 200); do
		# 401: up, TLS works with the CA, auth required
		if [ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CERTS/ca.crt" "https://$1/v2/" || true)" = 401 ]; then return 0; fi
		kill -0 "$2" 2>/dev/null || break
		sleep 0.1
	done
	tail -n 20 "$3" >&2 || true
	die "registry on $1 did not come up with TLS + auth"
}

start_emb() { # wipes its storage first; the certificates stay
	mkdir -p "$EMB_ROOT"
	find "$EMB_ROOT" -mindepth 1 -maxdepth 1 ! -name certs -exec rm -rf {} +
	if [ -d "$CERTS" ] && [ ! -d "$EMB_ROOT/certs" ]; then cp -r "$CERTS" "$EMB_ROOT/certs"; fi
	"$AIRLOCK" registry serve --addr "$EMB_ADDR" --root "$EMB_ROOT" --htpasswd "$HTPASSWD" --log-level warn \
		>>"$TLS_OUT/logs/airlock-registry.log" 2>&1 </dev/null &
	emb_pid=$!
	wait_up "$EMB_ADDR" "$emb_pid" "$TLS_OUT/logs/airlock-registry.log"
}

start_dreg() {
	rm -rf "$DREG_ROOT/storage"
	mkdir -p "$DREG_ROOT/storage"
	cat >"$DREG_ROOT/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $DREG_ROOT/storage
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
auth:
  htpasswd:
    realm: bench
    path: $HTPASSWD_DREG
http:
  addr: $DREG_ADDR
  secret: bench-local-only
  tls:
    certificate: $CERTS/server.crt
    key: $CERTS/server.key
EOF
	docker-registry serve "$DREG_ROOT/config.yml" >>"$TLS_OUT/logs/dreg.log" 2>&1 </dev/null &
	dreg_pid=$!
	wait_up "$DREG_ADDR" "$dreg_pid" "$TLS_OUT/logs/dreg.log"
}

# The CA and server certificate: airlock's registry generates them on its
# first start (as users get them); docker-registry then serves the same pair.
if [ ! -s "$CERTS/ca.crt" ]; then
	rm -rf "$EMB_ROOT"
	mkdir -p "$EMB_ROOT"
	"$AIRLOCK" registry serve --addr "$EMB_ADDR" --root "$EMB_ROOT" --htpasswd "$HTPASSWD" --log-level warn \
		>>"$TLS_OUT/logs/airlock-registry.log" 2>&1 </dev/null &
	emb_pid=$!
	for _ in $(seq 1 200); do [ -s "$EMB_ROOT/certs/server.key" ] && break; sleep 0.1; done
	CERTS="$EMB_ROOT/certs" wait_up "$EMB_ADDR" "$emb_pid" "$TLS_OUT/logs/airlock-registry.log"
	stop_regs
	rm -rf "$CERTS"
	cp -r "$EMB_ROOT/certs" "$CERTS"
fi

# Client configuration: one auth file, one certs.d-style directory.
AUTHDIR="$TD/auth"
mkdir -p "$AUTHDIR" "$TD/certs.d"
b64=$(printf '%s:%s' "$USER_NAME" "$PASS" | base64 -w0)
printf '{"auths":{"%s":{"auth":"%s"},"%s":{"auth":"%s"}}}\n' "$DREG_ADDR" "$b64" "$EMB_ADDR" "$b64" >"$AUTHDIR/config.json"
cp "$AUTHDIR/config.json" "$AUTHDIR/auth.json"
cp "$CERTS/ca.crt" "$TD/certs.d/ca.crt"
# Go clients (crane, regsync) trust the system roots plus nothing else through
# SSL_CERT_FILE: give them a bundle with the CA and the system roots.
cat /etc/ssl/certs/ca-certificates.crt "$CERTS/ca.crt" >"$TD/ca-bundle.crt" 2>/dev/null || cp "$CERTS/ca.crt" "$TD/ca-bundle.crt"

proc_cpu() { # pid -> utime+stime seconds (0 if gone)
	local f
	if [ -r "/proc/$1/stat" ]; then
		read -r -a f <"/proc/$1/stat"
		awk -v t=$((f[13] + f[14])) -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", t / hz}'
	else echo 0; fi
}

# write_cmds DEST ADDR: the exact command of each tool for one destination.
write_cmds() {
	local dest=$1 addr=$2 d="$TLS_OUT/cmd/$1"
	mkdir -p "$d"
	sed "s|=$DST_ADDR/|=$addr/|" "$WL_DIR/mapping.txt" >"$d/mapping.txt"
	{
		echo "version: 1"
		echo "creds:"
		echo "  - registry: $SRC_ADDR"
		echo "    tls: disabled"
		echo "  - registry: $addr"
		echo "    tls: enabled"
		echo "    user: $USER_NAME"
		echo "    pass: $PASS"
		echo "    regcert: |"
		sed 's/^/      /' "$CERTS/ca.crt"
		echo "defaults:"
		echo "  parallel: $PARALLEL"
		echo "  skipDockerConfig: true"
		echo "sync:"
		while IFS='=' read -r s t; do
			echo "  - source: $s"
			echo "    target: $t"
			echo "    type: image"
		done <"$d/mapping.txt"
	} >"$d/regsync.yaml"
	cat >"$d/airlock.sh" <<EOF
exec "$AIRLOCK" image mirror -f "$d/mapping.txt" --authfile "$AUTHDIR/auth.json" --ca-file "$CERTS/ca.crt" --blob-cache "$TD/blob-locations.json" --report "$d/airlock-errors.txt"
EOF
	cat >"$d/regsync.sh" <<EOF
exec regsync once -c "$d/regsync.yaml"
EOF
	cat >"$d/skopeo-sync.sh" <<EOF
exec skopeo --insecure-policy sync --all --preserve-digests --src yaml --dest docker \\
	--dest-cert-dir "$TD/certs.d" --dest-authfile "$AUTHDIR/auth.json" "$WL_DIR/skopeo-sync.yaml" "$addr"
EOF
	cat >"$d/skopeo-copy.sh" <<EOF
sed 's/=/ /' "$d/mapping.txt" | xargs -P "$PARALLEL" -n 2 sh -c \\
	'exec skopeo --insecure-policy copy --all --preserve-digests --src-tls-verify=false --dest-cert-dir "$TD/certs.d" --dest-authfile "$AUTHDIR/auth.json" "docker://\$1" "docker://\$2"' _
EOF
	cat >"$d/crane.sh" <<EOF
export SSL_CERT_FILE="$TD/ca-bundle.crt" DOCKER_CONFIG="$AUTHDIR"
sed 's/=/ /' "$d/mapping.txt" | xargs -P "$PARALLEL" -n 2 crane copy
EOF
}

# verify DEST ADDR MODE: every manifest and blob present, every tag right
# (mode basename: skopeo sync keeps only the last path element, no tags).
verify() {
	local dest=$1 addr=$2 mode=$3 cfg exp got repo d rest dst_repo s t p
	cfg="$TLS_OUT/logs/$dest-$4.verify.curl" exp="$TLS_OUT/logs/$dest-$4.verify.expect" got="$TLS_OUT/logs/$dest-$4.verify.got"
	: >"$cfg"
	: >"$exp"
	while IFS=$'\t' read -r repo d rest; do
		dst_repo=$repo
		[ "$mode" != basename ] || dst_repo=${repo##*/}
		printf 'url = "https://%s/v2/%s/manifests/%s"\noutput = "/dev/null"\n' "$addr" "$dst_repo" "$d" >>"$cfg"
		echo "200 [$d]" >>"$exp"
	done <"$WL_DIR/manifests.tsv"
	while IFS=$'\t' read -r repo d rest; do
		dst_repo=$repo
		[ "$mode" != basename ] || dst_repo=${repo##*/}
		printf 'url = "https://%s/v2/%s/blobs/%s"\noutput = "/dev/null"\n' "$addr" "$dst_repo" "$d" >>"$cfg"
		echo "200 [$d]" >>"$exp"
	done <"$WL_DIR/blobs.tsv"
	if [ "$mode" = mapping ]; then
		while IFS='=' read -r s t; do
			p=${t#"$addr"/}
			printf 'url = "https://%s/v2/%s/manifests/%s"\noutput = "/dev/null"\n' "$addr" "${p%:*}" "${p##*:}" >>"$cfg"
			echo "200 [${s##*@}]" >>"$exp"
		done <"$TLS_OUT/cmd/$dest/mapping.txt"
	fi
	curl -s -I --cacert "$CERTS/ca.crt" -u "$USER_NAME:$PASS" -H "Accept: $ACCEPT_MANIFESTS" \
		-w '%{http_code} [%header{docker-content-digest}]\n' -K "$cfg" >"$got" 2>/dev/null || true
	VERIFY_CHECKS=$(wc -l <"$exp")
	VERIFY_FAILS=$(paste -d' ' "$got" "$exp" | awk '$1 != $3 || $2 != $4' | wc -l)
	[ "$(wc -l <"$got")" -eq "$VERIFY_CHECKS" ] || VERIFY_FAILS=$VERIFY_CHECKS
}

printf 'dest\ttool\twall_s\tpeak_rss_mb\tcpu_user_s\tcpu_sys_s\tdst_reg_cpu_s\trc\tverified\tchecks\tfailed_checks\n' >"$TLS_OUT/tls.tsv"
run_one() { # dest addr tool label mode
	local dest=$1 addr=$2 tool=$3 label=$4 mode=$5 tf t0 t1 rc=0 pid c0 c1 wall peak user sys verified
	tf="$TLS_OUT/logs/$dest-$label.time"
	stop_regs
	rm -f "$TD/blob-locations.json" "$TD/blob-locations.json".* # a first run, as in the plain-HTTP bench
	if [ "$dest" = airlock-tls ]; then start_emb; pid=$emb_pid; else start_dreg; pid=$dreg_pid; fi
	sync
	sleep 1
	log "tls: $dest $label ..."
	c0=$(proc_cpu "$pid")
	t0=$(date +%s.%N)
	/usr/bin/time -v -o "$tf" timeout -k 10 "${TOOL_TIMEOUT:-1200}" bash "$TLS_OUT/cmd/$dest/$tool.sh" >"$TLS_OUT/logs/$dest-$label.log" 2>&1 || rc=$?
	t1=$(date +%s.%N)
	c1=$(proc_cpu "$pid")
	wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b - a}')
	peak=$(awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2/1024}' "$tf")
	user=$(awk -F': ' '/User time/ {print $2}' "$tf")
	sys=$(awk -F': ' '/System time/ {print $2}' "$tf")
	verify "$dest" "$addr" "$mode" "$label"
	verified=yes
	((VERIFY_FAILS == 0)) || verified=no
	((rc == 0)) || verified="$verified(rc=$rc)"
	log "tls: $dest $label: ${wall}s rc=$rc verified=$verified ($VERIFY_FAILS/$VERIFY_CHECKS checks failed)"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$dest" "$label" "$wall" "$peak" "$user" "$sys" \
		"$(awk -v a="$c0" -v b="$c1" 'BEGIN{printf "%.2f", b - a}')" "$rc" "$verified" "$VERIFY_CHECKS" "$VERIFY_FAILS" >>"$TLS_OUT/tls.tsv"
}

for dest in $TLS_DESTS; do
	case $dest in
	dreg-tls) addr=$DREG_ADDR tools=$TLS_TOOLS ;;
	airlock-tls) addr=$EMB_ADDR tools=$TLS_AIRLOCK_ONLY_TOOLS ;;
	*) die "unknown TLS destination $dest" ;;
	esac
	write_cmds "$dest" "$addr"
	for t in $tools; do
		case $t in
		airlock) run_one "$dest" "$addr" airlock airlock mapping ;;
		regsync) run_one "$dest" "$addr" regsync "regsync-p$PARALLEL" mapping ;;
		skopeo-sync) run_one "$dest" "$addr" skopeo-sync skopeo-sync basename ;;
		skopeo-copy) run_one "$dest" "$addr" skopeo-copy "skopeo-copy-p$PARALLEL" mapping ;;
		crane) run_one "$dest" "$addr" crane "crane-copy-p$PARALLEL" mapping ;;
		*) die "unknown tool $t" ;;
		esac
	done
done
stop_regs
column -t -s $'\t' "$TLS_OUT/tls.tsv" >&2
