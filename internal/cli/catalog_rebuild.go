package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"

	"github.com/airlock-mirror/airlock/internal/catalog"
	"github.com/airlock-mirror/airlock/internal/catalogimage"
	"github.com/airlock-mirror/airlock/internal/orchestrate"
	"github.com/airlock-mirror/airlock/internal/ref"
)

// CatalogRebuildFlags are the flags that push a filtered catalog as an
// image (`airlock catalog filter ... --to REF`). The filter command embeds
// them and calls Rebuild after filtering.
type CatalogRebuildFlags struct {
	// To is where the rebuilt catalog image goes (needs a tag).
	To string
	// ConvertToFBC turns a legacy sqlite catalog into a file-based catalog
	// image on Base instead of keeping sqlite.
	ConvertToFBC bool
	// Base is the opm image used for --convert-to-fbc and for catalogs read
	// from disk (which have no source image to rebuild).
	Base string
}

// AddFlags registers --to, --convert-to-fbc and --base.
func (f *CatalogRebuildFlags) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.To, "to", "", "push the filtered catalog as an image to REF: the source catalog image rebuilt for every platform (or built on --base for a catalog read from disk)")
	fs.BoolVar(&f.ConvertToFBC, "convert-to-fbc", false, "with --to and a legacy sqlite catalog image: build a file-based catalog image on --base instead of keeping sqlite")
	fs.StringVar(&f.Base, "base", "", "opm base image for --convert-to-fbc or for catalogs read from disk, e.g. quay.io/operator-framework/opm:v1.50.0")
}

// Validate checks the flags; source is the CATALOG argument, local whether
// it is a path on disk.
func (f *CatalogRebuildFlags) Validate(local bool) error {
	if f.To == "" {
		if f.ConvertToFBC || f.Base != "" {
			return fmt.Errorf("--convert-to-fbc and --base need --to REF")
		}
		return nil
	}
	to, err := ref.Parse(f.To)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	if to.Tag == "" || to.Digest != "" {
		return fmt.Errorf("--to %s: give a tag and no digest (the rebuilt image has a new digest)", f.To)
	}
	if (f.ConvertToFBC || local) && f.Base == "" {
		return fmt.Errorf("--base OPM_IMAGE is required with --convert-to-fbc or when CATALOG is on disk (there is no source image to rebuild)")
	}
	if f.Base != "" {
		b, err := ref.Parse(f.Base)
		if err != nil {
			return fmt.Errorf("--base: %w", err)
		}
		if !b.HasTagOrDigest() {
			return fmt.Errorf("--base %s: give a tag or digest", f.Base)
		}
	}
	return nil
}

// Rebuild pushes filtered to --to. src is the catalog as loaded (its Format
// says sqlite or FBC); srcImage the catalog image it came from (nil when
// read from disk). It returns the result of the push.
func (f *CatalogRebuildFlags) Rebuild(ctx context.Context, eng catalogimage.Images, src *catalog.Catalog, srcImage *ref.Ref, filtered *catalog.Catalog) (*catalogimage.Result, error) {
	to, err := ref.Parse(f.To)
	if err != nil {
		return nil, fmt.Errorf("--to: %w", err)
	}
	return orchestrate.PushFilteredCatalog(ctx, eng, orchestrate.FilteredCatalogPush{Source: src, SourceImage: srcImage, Filtered: filtered,
		To: to, ConvertToFBC: f.ConvertToFBC, Base: f.Base})
}

// Push is the whole --to step of `catalog filter`: it opens the engine
// from the command's CatalogSourceFlags, works out whether arg (CATALOG)
// was an image, pushes filtered with Rebuild, and prints the result to out.
// c is the catalog as loaded from arg.
func (f *CatalogRebuildFlags) Push(ctx context.Context, src CatalogSourceFlags, arg string, c, filtered *catalog.Catalog, out io.Writer) error {
	var srcImage *ref.Ref
	if !isLocalCatalog(arg) {
		r, err := ref.Parse(arg)
		if err != nil {
			return fmt.Errorf("CATALOG %q: %w", arg, err)
		}
		srcImage = &r
	}
	eng, err := src.RegistryFlags.NewEngine(src.Dir)
	if err != nil {
		return err
	}
	res, err := f.Rebuild(ctx, eng, c, srcImage, filtered)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "pushed filtered catalog (%d package(s)) to %s@%s, platforms %s\n", len(filtered.Config.Packages), f.To, res.Digest, strings.Join(res.Platforms, ", "))
	for _, n := range res.Notes {
		fmt.Fprintf(out, "note: %s\n", n)
	}
	return nil
}
