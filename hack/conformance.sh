#!/usr/bin/env bash
# hack/conformance.sh - run the OCI distribution-spec conformance suite
# (v1.1 profile: pull, push, content discovery, content management, sha512,
# referrers, non-distributable layers...) against any registry by hand.
#
#   hack/conformance.sh [flags] URL
#
#   URL                 http://HOST:PORT or https://HOST:PORT of the registry
#   --ca-file FILE      PEM CA that signed the registry's certificate
#                       (e.g. ROOT/certs/ca.crt of `airlock registry serve`)
#   --results DIR       where results.yaml, junit.xml and report.html go
#                       (default: ./conformance-results)
#   --repo1 R --repo2 R repositories the suite pushes to (default
#                       conformance/repo1 and conformance/repo2)
#
# Credentials come from the environment: OCI_USERNAME and OCI_PASSWORD.
# Any other OCI_* variable the suite documents is passed through, e.g.
# OCI_LOG=debug or OCI_FILTER_TEST="OCI Conformance Test/sha512".
#
# The suite is fetched through the Go module proxy at the version pinned
# below (the same one internal/registry/ocicompat's TestConformance runs)
# and built in a temporary directory, never added to airlock's go.mod.
# Exit status: 0 when every case passed, 1 when any failed, 2 on usage or
# setup errors.
set -euo pipefail

SUITE_MODULE=github.com/opencontainers/distribution-spec/conformance
SUITE_VERSION=v0.0.0-20260831232431-97274622c111

usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "conformance.sh: $*" >&2; exit 2; }

ca_file="" results="$PWD/conformance-results" repo1=conformance/repo1 repo2=conformance/repo2 url=""
while [ $# -gt 0 ]; do
	case "$1" in
	--ca-file) [ $# -ge 2 ] || die "--ca-file needs a file"; ca_file=$2; shift 2 ;;
	--results) [ $# -ge 2 ] || die "--results needs a directory"; results=$2; shift 2 ;;
	--repo1) [ $# -ge 2 ] || die "--repo1 needs a repository"; repo1=$2; shift 2 ;;
	--repo2) [ $# -ge 2 ] || die "--repo2 needs a repository"; repo2=$2; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	-*) die "unknown flag $1 (see --help)" ;;
	*) [ -z "$url" ] || die "only one URL, got $url and $1"; url=$1; shift ;;
	esac
done
[ -n "$url" ] || { usage >&2; exit 2; }

case "$url" in
http://*) tls=disabled host=${url#http://} ;;
https://*) tls=enabled host=${url#https://} ;;
*) die "URL must start with http:// or https:// (got $url)" ;;
esac
host=${host%%/*}
[ -n "$host" ] || die "no host in $url"
if [ -n "$ca_file" ]; then
	[ -r "$ca_file" ] || die "cannot read CA file $ca_file"
	ca_file=$(cd "$(dirname "$ca_file")" && pwd)/$(basename "$ca_file")
	[ "$tls" = enabled ] || die "--ca-file only applies to an https:// URL"
fi
command -v go >/dev/null || die "the go tool is needed to build the suite"
mkdir -p "$results" || die "cannot create results directory $results"
results=$(cd "$results" && pwd)

work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

echo "fetching $SUITE_MODULE@$SUITE_VERSION" >&2
dir=$(cd "$work" && GOFLAGS=-mod=mod GOWORK=off go mod download -json "$SUITE_MODULE@$SUITE_VERSION" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -n "$dir" ] || die "could not download the suite (is the Go module proxy reachable? GOPROXY=$(go env GOPROXY))"
cp -r "$dir" "$work/suite"
chmod -R u+w "$work/suite"
(cd "$work/suite" && GOFLAGS=-mod=mod GOWORK=off CGO_ENABLED=0 go build -o "$work/conformance" .) ||
	die "building the suite failed"

echo "running the OCI conformance suite (1.1) against $url" >&2
status=0
(
	cd "$results"
	export OCI_REGISTRY="$host" OCI_TLS="$tls" OCI_VERSION=1.1 OCI_RESULTS_DIR="$results" \
		OCI_REPO1="$repo1" OCI_REPO2="$repo2"
	# The suite has no CA option; Go reads extra roots from SSL_CERT_FILE.
	[ -z "$ca_file" ] || export SSL_CERT_FILE="$ca_file"
	exec "$work/conformance"
) || status=$?

if [ -r "$results/junit.xml" ]; then
	# The <testsuites> element carries the totals; zero counts are omitted.
	totals=$(grep -o '<testsuites [^>]*>' "$results/junit.xml" | head -1)
	count() { echo "$totals" | sed -n -E "s/.* $1=\"([0-9]+)\".*/\1/p" | grep . || echo 0; }
	echo "conformance: $(count tests) cases, $(count failures) failed, $(count skipped) skipped, $(count disabled) disabled" >&2
	echo "reports: $results/report.html, $results/junit.xml, $results/results.yaml" >&2
fi
[ "$status" -eq 0 ] || exit 1
