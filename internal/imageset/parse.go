package imageset

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"

	"github.com/blang/semver/v4"
	yaml3 "go.yaml.in/yaml/v3"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Load reads, strictly parses and validates an ImageSetConfiguration file:
// unknown fields are errors (see LoadWarn for the lenient form).
func Load(path string) (*ImageSetConfiguration, error) {
	cfg, _, err := LoadWarn(path, true)
	return cfg, err
}

// LoadWarn reads a file with ParseWarn.
func LoadWarn(path string, strict bool) (*ImageSetConfiguration, Problems, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading image set configuration: %w", err)
	}
	return ParseWarn(data, path, strict)
}

// Parse strictly parses and validates an ImageSetConfiguration; name (the
// file name) prefixes every error.
func Parse(data []byte, name string) (*ImageSetConfiguration, error) {
	cfg, _, err := ParseWarn(data, name, true)
	return cfg, err
}

// ParseWarn parses and validates an ImageSetConfiguration. Unknown fields
// and oc-mirror v1 leftovers are returned as warnings (their values
// ignored), or with strict as errors. The error, when not nil, is Problems:
// every problem of the file, each with its line and field path.
func ParseWarn(data []byte, name string, strict bool) (*ImageSetConfiguration, Problems, error) {
	var cfg ImageSetConfiguration
	c, err := decode(data, name, &cfg, strict)
	if err != nil {
		return nil, c.warnings, err
	}
	if cfg.APIVersion != APIVersion {
		c.errs = append(c.errs, Problem{File: name, Line: c.idx.lineOf("apiVersion"), Path: "apiVersion",
			Msg: apiVersionHint(cfg.APIVersion)})
	}
	if cfg.Kind != Kind {
		c.errs = append(c.errs, Problem{File: name, Line: c.idx.lineOf("kind"), Path: "kind",
			Msg: fmt.Sprintf("kind %q: want %s", cfg.Kind, Kind)})
	}
	c.located(cfg.Validate())
	if len(c.errs) > 0 {
		return nil, c.warnings, c.errs
	}
	cfg.file, cfg.lines = name, c.idx
	return &cfg, c.warnings, nil
}

func apiVersionHint(v string) string {
	msg := fmt.Sprintf("apiVersion %q: want %s", v, APIVersion)
	if strings.HasPrefix(v, "mirror.openshift.io/v1") {
		msg += " (this is oc-mirror v1's format: change apiVersion, drop storageConfig; the v2alpha1 fields are the same otherwise)"
	}
	return msg
}

// ParseDelete strictly parses and validates a DeleteImageSetConfiguration.
func ParseDelete(data []byte, name string) (*DeleteImageSetConfiguration, error) {
	var cfg DeleteImageSetConfiguration
	c, err := decode(data, name, &cfg, true)
	if err != nil {
		return nil, err
	}
	if cfg.APIVersion != APIVersion {
		c.errs = append(c.errs, Problem{File: name, Line: c.idx.lineOf("apiVersion"), Path: "apiVersion", Msg: apiVersionHint(cfg.APIVersion)})
	}
	if cfg.Kind != KindDelete {
		c.errs = append(c.errs, Problem{File: name, Line: c.idx.lineOf("kind"), Path: "kind",
			Msg: fmt.Sprintf("kind %q: want %s", cfg.Kind, KindDelete)})
	}
	m := Mirror{Platform: cfg.Delete.Platform, Operators: cfg.Delete.Operators,
		AdditionalImages: cfg.Delete.AdditionalImages, Helm: cfg.Delete.Helm}
	c.located(m.validate("delete"))
	if len(c.errs) > 0 {
		return nil, c.errs
	}
	return &cfg, nil
}

// decode checks the YAML against v's type (lines, unknown fields, value
// types), then decodes it case-sensitively: encoding/json (and so
// sigs.k8s.io/yaml's UnmarshalStrict) matches keys case-insensitively,
// which would silently accept "minversion" for "minVersion". Fields the
// checker reported unknown are left out of the decode.
func decode(data []byte, name string, v any, strict bool) (*checker, error) {
	c := &checker{file: name, idx: lineIndex{}}
	var doc yaml3.Node
	var err error
	if err = yaml3.Unmarshal(data, &doc); err != nil {
		return c, Problems{yamlProblem(name, err)}
	}
	if len(doc.Content) == 0 {
		return c, Problems{{File: name, Msg: "the file is empty; start it with apiVersion: " + APIVersion}}
	}
	c.idx[""] = 1
	c.walk(doc.Content[0], reflect.TypeOf(v), "", strict)
	if len(c.errs) > 0 {
		// Decode what is usable, so validation reports the rest too.
		if data, err = yaml3.Marshal(&doc); err != nil {
			return c, c.errs
		}
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return c, Problems{{File: name, Msg: "not valid YAML: " + strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")}}
	}
	if err := kjson.UnmarshalCaseSensitivePreserveInts(js, v); err != nil {
		return c, append(c.errs, Problem{File: name, Msg: fmt.Sprintf("decoding: %v", err)})
	}
	return c, nil
}

// Validate checks the whole configuration and reports every problem found,
// each with its location (e.g. `mirror.operators[0].packages[1]`).
func (c *ImageSetConfiguration) Validate() error {
	errs := []error{c.Mirror.validate("mirror")}
	if c.ArchiveSize < 0 {
		errs = append(errs, fieldErr("archiveSize", "%d: must be positive (GiB)", c.ArchiveSize))
	}
	return errors.Join(errs...)
}

// Validate checks the mirror section.
func (m *Mirror) Validate() error { return m.validate("mirror") }

// validate checks the section at path (mirror, or delete).
func (m *Mirror) validate(at string) error {
	var errs []error
	p := m.Platform
	if len(p.Architectures) > 0 && len(p.Platforms) > 0 {
		errs = append(errs, fieldErr(at+".platform", "architectures and platforms are mutually exclusive; use platforms (architectures is deprecated)"))
	}
	for i, a := range p.Architectures {
		switch a {
		case "amd64", "arm64", "ppc64le", "s390x", "multi":
		default:
			errs = append(errs, fieldErr(fmt.Sprintf("%s.platform.architectures[%d]", at, i), "%q: want amd64, arm64, ppc64le, s390x or multi", a))
		}
	}
	errs = append(errs, validatePlatforms(at+".platform.platforms", p.Platforms)...)
	seenCh := map[string]bool{}
	for i, ch := range p.Channels {
		loc := fmt.Sprintf("%s.platform.channels[%d]", at, i)
		if ch.Name == "" {
			errs = append(errs, fieldErr(loc+".name", "name is required"))
		}
		key := ch.Name + "/" + ch.Type
		if seenCh[key] {
			errs = append(errs, fieldErr(loc, "channel %q listed twice", ch.Name))
		}
		seenCh[key] = true
		if ch.Type != "" && ch.Type != "ocp" && ch.Type != "okd" {
			errs = append(errs, fieldErr(loc+".type", "%q: want ocp or okd", ch.Type))
		}
		errs = append(errs, validateRange(loc, "channel "+ch.Name, ch.MinVersion, ch.MaxVersion)...)
	}
	seenCat := map[string]bool{}
	for i, op := range m.Operators {
		loc := fmt.Sprintf("%s.operators[%d]", at, i)
		if op.Catalog == "" {
			errs = append(errs, fieldErr(loc+".catalog", "catalog is required"))
		}
		key := op.Catalog + "|" + op.TargetCatalog + "|" + op.TargetTag
		if seenCat[key] {
			errs = append(errs, fieldErr(loc, "catalog %s listed twice with the same targetCatalog and targetTag; merge the entries or set a different target", op.Catalog))
		}
		seenCat[key] = true
		errs = append(errs, op.validate(loc)...)
	}
	for i, ai := range m.AdditionalImages {
		loc := fmt.Sprintf("%s.additionalImages[%d]", at, i)
		if ai.Name == "" {
			errs = append(errs, fieldErr(loc+".name", "name is required"))
		}
		errs = append(errs, validatePlatforms(loc+".platforms", ai.Platforms)...)
	}
	for i, bi := range m.BlockedImages {
		if _, err := regexp.Compile(bi.Name); err != nil {
			errs = append(errs, fieldErr(fmt.Sprintf("%s.blockedImages[%d].name", at, i), "%q is not a valid regular expression: %v", bi.Name, err))
		}
	}
	for i, r := range m.Helm.Repositories {
		if r.Name == "" || r.URL == "" {
			errs = append(errs, fieldErr(fmt.Sprintf("%s.helm.repositories[%d]", at, i), "name and url are required"))
		}
	}
	for i, l := range m.Helm.Local {
		if l.Name == "" || l.Path == "" {
			errs = append(errs, fieldErr(fmt.Sprintf("%s.helm.local[%d]", at, i), "name and path are required"))
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
		errs = append(errs, fieldErr(loc+".targetCatalog", "%q: want repository path components only (e.g. my-ns/my-index), no registry and no tag", op.TargetCatalog))
	}
	if op.TargetTag != "" && !tagRE.MatchString(op.TargetTag) {
		errs = append(errs, fieldErr(loc+".targetTag", "%q is not a valid tag", op.TargetTag))
	}
	errs = append(errs, validatePlatforms(loc+".platforms", op.Platforms)...)
	seen := map[string]bool{}
	for j, pkg := range op.Packages {
		ploc := fmt.Sprintf("%s.packages[%d]", loc, j)
		if pkg.Name == "" {
			errs = append(errs, fieldErr(ploc+".name", "name is required"))
			continue
		}
		if seen[pkg.Name] {
			errs = append(errs, fieldErr(ploc, "package %s listed twice in the same catalog", pkg.Name))
		}
		seen[pkg.Name] = true
		errs = append(errs, validateRange(ploc, "package "+pkg.Name, pkg.MinVersion, pkg.MaxVersion)...)
		pkgRange := pkg.MinVersion != "" || pkg.MaxVersion != ""
		seenB := map[string]bool{}
		for k, b := range pkg.Bundles {
			bloc := fmt.Sprintf("%s.bundles[%d]", ploc, k)
			switch {
			case b.Name == "":
				errs = append(errs, fieldErr(bloc+".name", "name is required (the bundle name, e.g. %s.v1.2.3)", pkg.Name))
			case seenB[b.Name]:
				errs = append(errs, fieldErr(bloc, "bundle %s listed twice", b.Name))
			}
			seenB[b.Name] = true
		}
		chRange := false
		for _, ch := range pkg.Channels {
			chRange = chRange || ch.MinVersion != "" || ch.MaxVersion != ""
		}
		if len(pkg.Bundles) > 0 && (pkgRange || chRange) {
			errs = append(errs, fieldErr(ploc+".bundles", "package %s: bundles and a version range select the same thing two ways; keep one (bundles picks exact bundles)", pkg.Name))
		}
		seenCh := map[string]bool{}
		for k, ch := range pkg.Channels {
			cloc := fmt.Sprintf("%s.channels[%d]", ploc, k)
			if ch.Name == "" {
				errs = append(errs, fieldErr(cloc+".name", "name is required"))
				continue
			}
			what := "channel " + pkg.Name + "/" + ch.Name
			if seenCh[ch.Name] {
				errs = append(errs, fieldErr(cloc, "%s listed twice", what))
			}
			seenCh[ch.Name] = true
			if pkgRange && (ch.MinVersion != "" || ch.MaxVersion != "") {
				errs = append(errs, fieldErr(cloc, "%s: a version range is set both on the package and on this channel; set it in one place only (package level applies to all its channels)", what))
			}
			errs = append(errs, validateRange(cloc, what, ch.MinVersion, ch.MaxVersion)...)
		}
	}
	return errs
}

// validateRange checks minVersion/maxVersion of the thing at loc (what
// names it in messages).
func validateRange(loc, what, minV, maxV string) []error {
	var errs []error
	var lo, hi semver.Version
	var okLo, okHi bool
	if minV != "" {
		v, err := semver.Parse(minV)
		if err != nil {
			errs = append(errs, fieldErr(loc+".minVersion", "%s: minVersion %q is not a semantic version (e.g. 1.2.3): %v", what, minV, err))
		} else {
			lo, okLo = v, true
		}
	}
	if maxV != "" {
		v, err := semver.Parse(maxV)
		if err != nil {
			errs = append(errs, fieldErr(loc+".maxVersion", "%s: maxVersion %q is not a semantic version (e.g. 1.2.3): %v", what, maxV, err))
		} else {
			hi, okHi = v, true
		}
	}
	if okLo && okHi && lo.GT(hi) {
		errs = append(errs, fieldErr(loc+".minVersion", "%s: minVersion %s is greater than maxVersion %s", what, minV, maxV))
	}
	return errs
}

func validatePlatforms(loc string, ps []OSPlatform) []error {
	var errs []error
	seen := map[string]bool{}
	for i, p := range ps {
		if p.OS == "" || p.Architecture == "" {
			errs = append(errs, fieldErr(fmt.Sprintf("%s[%d]", loc, i), "os and architecture are required"))
			continue
		}
		if seen[p.String()] {
			errs = append(errs, fieldErr(fmt.Sprintf("%s[%d]", loc, i), "%s listed twice", p))
		}
		seen[p.String()] = true
	}
	return errs
}
