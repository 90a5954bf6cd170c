package kubeapi

import "testing"

// TestBinaries builds (or finds cached) the servers; CI runs it alone
// before the test suite so the cold build does not count against a test
// binary's timeout.
func TestBinaries(t *testing.T) {
	apiserver, etcd := Binaries(t)
	t.Logf("kube-apiserver %s, etcd %s", apiserver, etcd)
}
