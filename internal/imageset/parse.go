package imageset

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/blang/semver/v4"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Load reads, strictly parses and validates an ImageSetConfiguration file.
func Load(path string) (*ImageSetConfiguration, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading image set configuration: %w", err)
	}
	return Parse(data, path)
}

// Parse strictly parses and validates an ImageSetConfiguration; name (the
// file name) prefixes every error.
func Parse(data []byte, name string) (*ImageSetConfiguration, error) {
	var cfg ImageSetConfiguration
	if err := decodeStrict(data, &cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if cfg.APIVersion != APIVersion {
		return nil, fmt.Errorf("%s: apiVersion %q: want %s", name, cfg.APIVersion, APIVersion)
	}
	if cfg.Kind != Kind {
		return nil, fmt.Errorf("%s: kind %q: want %s", name, cfg.Kind, Kind)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &cfg, nil
}

// ParseDelete strictly parses and validates a DeleteImageSetConfiguration.
func ParseDelete(data []byte, name string) (*DeleteImageSetConfiguration, error) {
	var cfg DeleteImageSetConfiguration
	if err := decodeStrict(data, &cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if cfg.APIVersion != APIVersion {
		return nil, fmt.Errorf("%s: apiVersion %q: want %s", name, cfg.APIVersion, APIVersion)
	}
	if cfg.Kind != KindDelete {
		return nil, fmt.Errorf("%s: kind %q: want %s", name, cfg.Kind, KindDelete)
	}
	m := Mirror{Platform: cfg.Delete.Platform, Operators: cfg.Delete.Operators,
		AdditionalImages: cfg.Delete.AdditionalImages, Helm: cfg.Delete.Helm}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("%s: delete: %w", name, err)
	}
	return &cfg, nil
}

// decodeStrict converts YAML to JSON and decodes it case-sensitively,
// rejecting unknown and duplicate fields. encoding/json (and so
// sigs.k8s.io/yaml's UnmarshalStrict) matches keys case-insensitively,
// which would silently accept "minversion" for "minVersion".
func decodeStrict(data []byte, v any) error {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return fmt.Errorf("not valid YAML: %s", strings.TrimPrefix(err.Error(), "error converting YAML to JSON: "))
	}
	strict, err := kjson.UnmarshalStrict(js, v)
	if err != nil {
		return fmt.Errorf("decoding: %w", err)
	}
	if len(strict) > 0 {
		msgs := make([]string, len(strict))
		for i, e := range strict {
			msgs[i] = e.Error()
		}
		return fmt.Errorf("%s (check spelling, case and indentation against %s)", strings.Join(msgs, "; "), APIVersion)
	}
	return nil
}

// Validate checks the whole configuration and reports every problem found,
// each with its location (e.g. `mirror.operators[0].packages[1]`).
func (c *ImageSetConfiguration) Validate() error {
	if err := c.Mirror.Validate(); err != nil {
		return fmt.Errorf("mirror: %w", err)
	}
	if c.ArchiveSize < 0 {
		return fmt.Errorf("archiveSize %d: must be positive (GiB)", c.ArchiveSize)
	}
	return nil
}

// Validate checks the mirror section.
func (m *Mirror) Validate() error {
	var errs []error
	p := m.Platform
	if len(p.Architectures) > 0 && len(p.Platforms) > 0 {
		errs = append(errs, errors.New("platform: architectures and platforms are mutually exclusive; use platforms (architectures is deprecated)"))
	}
	for _, a := range p.Architectures {
		switch a {
		case "amd64", "arm64", "ppc64le", "s390x", "multi":
		default:
			errs = append(errs, fmt.Errorf("platform.architectures: %q: want amd64, arm64, ppc64le, s390x or multi", a))
		}
	}
	errs = append(errs, validatePlatforms("platform.platforms", p.Platforms)...)
	seenCh := map[string]bool{}
	for i, ch := range p.Channels {
		loc := fmt.Sprintf("platform.channels[%d]", i)
		if ch.Name == "" {
			errs = append(errs, fmt.Errorf("%s: name is required", loc))
		}
		key := ch.Name + "/" + ch.Type
		if seenCh[key] {
			errs = append(errs, fmt.Errorf("%s: channel %q listed twice", loc, ch.Name))
		}
		seenCh[key] = true
		if ch.Type != "" && ch.Type != "ocp" && ch.Type != "okd" {
			errs = append(errs, fmt.Errorf("%s: type %q: want ocp or okd", loc, ch.Type))
		}
		errs = append(errs, validateRange(loc, ch.MinVersion, ch.MaxVersion)...)
	}
	seenCat := map[string]bool{}
	for i, op := range m.Operators {
		loc := fmt.Sprintf("operators[%d]", i)
		if op.Catalog == "" {
			errs = append(errs, fmt.Errorf("%s: catalog is required", loc))
		}
		key := op.Catalog + "|" + op.TargetCatalog + "|" + op.TargetTag
		if seenCat[key] {
			errs = append(errs, fmt.Errorf("%s: catalog %s listed twice with the same targetCatalog and targetTag; merge the entries or set a different target", loc, op.Catalog))
		}
		seenCat[key] = true
		errs = append(errs, op.validate(loc)...)
	}
	for i, ai := range m.AdditionalImages {
		if ai.Name == "" {
			errs = append(errs, fmt.Errorf("additionalImages[%d]: name is required", i))
		}
		errs = append(errs, validatePlatforms(fmt.Sprintf("additionalImages[%d].platforms", i), ai.Platforms)...)
	}
	for i, bi := range m.BlockedImages {
		if _, err := regexp.Compile(bi.Name); err != nil {
			errs = append(errs, fmt.Errorf("blockedImages[%d]: %q is not a valid regular expression: %w", i, bi.Name, err))
		}
	}
	for i, r := range m.Helm.Repositories {
		if r.Name == "" || r.URL == "" {
			errs = append(errs, fmt.Errorf("helm.repositories[%d]: name and url are required", i))
		}
	}
	for i, l := range m.Helm.Local {
		if l.Name == "" || l.Path == "" {
			errs = append(errs, fmt.Errorf("helm.local[%d]: name and path are required", i))
		}
	}
	return errors.Join(errs...)
}

// targetCatalogRE is the repository-path syntax: lowercase components
// separated by '/', no registry, no tag.
var targetCatalogRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*)*$`)

var tagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

func (op *Operator) validate(loc string) []error {
	var errs []error
	if op.TargetCatalog != "" && !targetCatalogRE.MatchString(op.TargetCatalog) {
		errs = append(errs, fmt.Errorf("%s: targetCatalog %q: want repository path components only (e.g. my-ns/my-index), no registry and no tag", loc, op.TargetCatalog))
	}
	if op.TargetTag != "" && !tagRE.MatchString(op.TargetTag) {
		errs = append(errs, fmt.Errorf("%s: targetTag %q is not a valid tag", loc, op.TargetTag))
	}
	errs = append(errs, validatePlatforms(loc+".platforms", op.Platforms)...)
	seen := map[string]bool{}
	for j, pkg := range op.Packages {
		ploc := fmt.Sprintf("%s.packages[%d]", loc, j)
		if pkg.Name == "" {
			errs = append(errs, fmt.Errorf("%s: name is required", ploc))
			continue
		}
		ploc += " (" + pkg.Name + ")"
		if seen[pkg.Name] {
			errs = append(errs, fmt.Errorf("%s: package listed twice in the same catalog", ploc))
		}
		seen[pkg.Name] = true
		errs = append(errs, validateRange(ploc, pkg.MinVersion, pkg.MaxVersion)...)
		pkgRange := pkg.MinVersion != "" || pkg.MaxVersion != ""
		seenCh := map[string]bool{}
		for k, ch := range pkg.Channels {
			cloc := fmt.Sprintf("%s.channels[%d]", ploc, k)
			if ch.Name == "" {
				errs = append(errs, fmt.Errorf("%s: name is required", cloc))
				continue
			}
			cloc += " (" + ch.Name + ")"
			if seenCh[ch.Name] {
				errs = append(errs, fmt.Errorf("%s: channel listed twice", cloc))
			}
			seenCh[ch.Name] = true
			if pkgRange && (ch.MinVersion != "" || ch.MaxVersion != "") {
				errs = append(errs, fmt.Errorf("%s: a version range is set both on the package and on this channel; set it in one place only (package level applies to all its channels)", cloc))
			}
			errs = append(errs, validateRange(cloc, ch.MinVersion, ch.MaxVersion)...)
		}
	}
	return errs
}

func validateRange(loc, minV, maxV string) []error {
	var errs []error
	var lo, hi semver.Version
	var okLo, okHi bool
	if minV != "" {
		v, err := semver.Parse(minV)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: minVersion %q is not a semantic version (e.g. 1.2.3): %w", loc, minV, err))
		} else {
			lo, okLo = v, true
		}
	}
	if maxV != "" {
		v, err := semver.Parse(maxV)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: maxVersion %q is not a semantic version (e.g. 1.2.3): %w", loc, maxV, err))
		} else {
			hi, okHi = v, true
		}
	}
	if okLo && okHi && lo.GT(hi) {
		errs = append(errs, fmt.Errorf("%s: minVersion %s is greater than maxVersion %s", loc, minV, maxV))
	}
	return errs
}

func validatePlatforms(loc string, ps []OSPlatform) []error {
	var errs []error
	seen := map[string]bool{}
	for i, p := range ps {
		if p.OS == "" || p.Architecture == "" {
			errs = append(errs, fmt.Errorf("%s[%d]: os and architecture are required", loc, i))
			continue
		}
		if seen[p.String()] {
			errs = append(errs, fmt.Errorf("%s[%d]: %s listed twice", loc, i, p))
		}
		seen[p.String()] = true
	}
	return errs
}
