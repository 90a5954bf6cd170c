package clusterstate

// The world of the export tests, for the live-cluster tests of package
// clusterstate_test (which also drive the CLI, and package cli imports this
// one).
var (
	Export      = export
	MirrorWorld = mirrorWorld
)
