package catalog

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/operator-framework/operator-registry/alpha/declcfg"
	"github.com/operator-framework/operator-registry/alpha/property"

	"github.com/airlock-mirror/airlock/internal/ref"
)

// parseImageRef parses a reference as written in a catalog: a bare docker
// reference, never with a transport prefix.
func parseImageRef(s string) (ref.Ref, error) {
	if strings.TrimSpace(s) == "" {
		return ref.Ref{}, fmt.Errorf("empty image reference")
	}
	if strings.Contains(s, "://") {
		return ref.Ref{}, fmt.Errorf("invalid reference %q: catalog images must not carry a transport prefix", s)
	}
	return ref.Parse(s)
}

// checkContent reports, without failing, the content problems that make
// other tools abort a whole catalog with "invalid reference format": empty
// or unparsable bundle and related image references. (A replaces target
// missing from its channel is not reported: it is normal for the oldest
// entry of a channel, and OLM's model accepts it.)
func checkContent(cfg *declcfg.DeclarativeConfig) []Warning {
	var ws []Warning
	for _, b := range cfg.Bundles {
		if b.Image == "" {
			// Bundles of old catalogs may legitimately carry only their
			// content (olm.bundle.object) and no image; nothing to mirror.
		} else if _, err := parseImageRef(b.Image); err != nil {
			ws = append(ws, Warning{Package: b.Package, Bundle: b.Name, Field: "image", Message: err.Error()})
		}
		for i, ri := range b.RelatedImages {
			if _, err := parseImageRef(ri.Image); err != nil {
				field := fmt.Sprintf("relatedImages[%d].image", i)
				if ri.Name != "" {
					field = fmt.Sprintf("relatedImages[%d] (%s).image", i, ri.Name)
				}
				ws = append(ws, Warning{Package: b.Package, Bundle: b.Name, Field: field, Message: err.Error()})
			}
		}
	}
	return ws
}

// legacyChannel is the value of the olm.channel bundle property written by
// early file-based catalogs (opm before olm.channel blobs existed).
type legacyChannel struct {
	Name     string `json:"name"`
	Replaces string `json:"replaces,omitempty"`
}

// Legacy per-bundle upgrade-edge properties of the same era.
const (
	legacyTypeSkips     = "olm.skips"
	legacyTypeSkipRange = "olm.skipRange"
)

// upgradeLegacyChannels builds olm.channel blobs for packages whose
// channels exist only as olm.channel bundle properties, the format opm
// wrote before channel blobs existed, and drops those properties: the
// current operator-registry model ignores them, so without this step such
// a catalog would load with no channels at all.
func upgradeLegacyChannels(cfg *declcfg.DeclarativeConfig) {
	hasBlobs := map[string]bool{}
	for _, ch := range cfg.Channels {
		hasBlobs[ch.Package] = true
	}
	type key struct{ pkg, ch string }
	chans := map[key]*declcfg.Channel{}
	var order []key
	for bi := range cfg.Bundles {
		b := &cfg.Bundles[bi]
		if hasBlobs[b.Package] {
			continue
		}
		var lcs []legacyChannel
		var skips []string
		var skipRange string
		var keep []property.Property
		for _, p := range b.Properties {
			switch p.Type {
			case property.TypeChannel:
				var lc legacyChannel
				if err := json.Unmarshal(p.Value, &lc); err == nil && lc.Name != "" {
					lcs = append(lcs, lc)
					continue
				}
			case legacyTypeSkips:
				var s []string
				if err := json.Unmarshal(p.Value, &s); err == nil {
					skips = append(skips, s...)
					continue
				}
				var one string
				if err := json.Unmarshal(p.Value, &one); err == nil {
					skips = append(skips, one)
					continue
				}
			case legacyTypeSkipRange:
				if err := json.Unmarshal(p.Value, &skipRange); err == nil {
					continue
				}
			}
			keep = append(keep, p)
		}
		if len(lcs) == 0 {
			continue
		}
		b.Properties = keep
		for _, lc := range lcs {
			k := key{b.Package, lc.Name}
			ch := chans[k]
			if ch == nil {
				ch = &declcfg.Channel{Schema: declcfg.SchemaChannel, Name: lc.Name, Package: b.Package}
				chans[k] = ch
				order = append(order, k)
			}
			ch.Entries = append(ch.Entries, declcfg.ChannelEntry{Name: b.Name, Replaces: lc.Replaces, Skips: skips, SkipRange: skipRange})
		}
	}
	for _, k := range order {
		cfg.Channels = append(cfg.Channels, *chans[k])
	}
}
