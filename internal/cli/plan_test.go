package cli

import "testing"

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"123": 123, "10K": 10 << 10, "500M": 500 << 20, "1.5G": 3 << 29, "2T": 2 << 40, "2TiB": 2 << 40, "4gb": 4 << 30} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "G", "-1", "ten"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}
