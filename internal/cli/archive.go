package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/airlock-mirror/airlock/internal/transfer"
)

func newArchiveCommand(streams IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "archive",
		Short: "Transfer sets: a store cut into checksummed tar segments for crossing the air gap",
		Long: `A transfer set is a local store cut into segments mirror_000001.tar, ...
of at most --archive-size GiB, with airlock-transfer.json listing every
segment's size and sha256 and every blob's segment (docs/transfer-format.md).
Sets are incremental: the next set of the same store ships only blobs no
earlier set shipped.`,
		Example: `  airlock archive create --from file:///mnt/store /media/usb
  airlock archive verify /media/usb
  airlock archive ls /media/usb`,
	}
	cmd.AddCommand(newArchiveCreateCommand(streams), newArchiveVerifyCommand(streams),
		newArchiveLsCommand(streams), newArchiveDiffCommand(streams), newArchiveExtractCommand(streams))
	return cmd
}

// ArchiveCreateOptions are the options of `archive create`.
type ArchiveCreateOptions struct {
	From        string
	ArchiveSize int64
	// SegmentBytes overrides ArchiveSize with a byte count (tests, DVDs).
	SegmentBytes string
	Full         bool
	Since        string
	SignKey      string

	store, out string
	segSize    int64
	since      time.Time
	streams    IOStreams
}

func newArchiveCreateCommand(streams IOStreams) *cobra.Command {
	o := &ArchiveCreateOptions{streams: streams, ArchiveSize: 4}
	cmd := &cobra.Command{
		Use:   "create --from file://STORE DIR",
		Short: "Write a transfer set of a local store into DIR",
		Long: `Write the store's blobs, index and metadata (config, pinned plan, history of
shipped blobs) into DIR as segments of at most --archive-size GiB and the
manifest airlock-transfer.json. Only blobs that no earlier set of this store
shipped are written unless --full. Segments are written under temporary
names and renamed when complete.`,
		Example: `  # 4 GiB segments (the default), only what earlier sets did not ship
  airlock archive create --from file:///mnt/store /media/usb
  # DVD-sized, everything, signed
  airlock archive create --from file:///mnt/store /media/dvd --segment-bytes 4700000000 --full --sign-key cosign.key
  # signed with an OpenPGP key (writes airlock-transfer.json.asc; gpg --verify checks it)
  airlock archive create --from file:///mnt/store /media/usb --sign-key <(gpg --armor --export-secret-keys KEYID)`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run()
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.From, "from", "", "the local store, file://DIR (required)")
	fs.Int64Var(&o.ArchiveSize, "archive-size", o.ArchiveSize, "maximum segment size in GiB")
	fs.StringVar(&o.SegmentBytes, "segment-bytes", "", "maximum segment size in bytes (overrides --archive-size)")
	fs.BoolVar(&o.Full, "full", false, "ship every blob, not only those earlier sets did not")
	fs.StringVar(&o.Since, "since", "", "only blobs added to the store since DATE (YYYY-MM-DD or RFC 3339)")
	fs.StringVar(&o.SignKey, "sign-key", "", "key to sign airlock-transfer.json with: an unencrypted PEM private key (ed25519 or ECDSA P-256, writes .sig) or an OpenPGP secret key without passphrase (writes .asc)")
	return cmd
}

func parseSince(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--since %q: want a date (2025-01-31) or an RFC 3339 time", s)
}

// segmentSize is the segment limit from GiB or an explicit byte count.
func segmentSize(gib int64, bytes string) (int64, error) {
	if bytes != "" {
		n, err := strconv.ParseInt(bytes, 10, 64)
		if err != nil || n < 4096 {
			return 0, fmt.Errorf("--segment-bytes %q: want a byte count of at least 4096", bytes)
		}
		return n, nil
	}
	if gib < 1 {
		return 0, fmt.Errorf("--archive-size %d: want 1 GiB or more", gib)
	}
	return gib * transfer.GiB, nil
}

// Complete resolves the store, the output directory and the sizes.
func (o *ArchiveCreateOptions) Complete(args []string) error {
	var err error
	if o.store, err = fileDir("--from", o.From); err != nil {
		return err
	}
	o.out = args[0]
	if o.segSize, err = segmentSize(o.ArchiveSize, o.SegmentBytes); err != nil {
		return err
	}
	if o.Since != "" {
		if o.since, err = parseSince(o.Since); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks the store exists and the set does not go into it.
func (o *ArchiveCreateOptions) Validate() error {
	if _, err := os.Stat(filepath.Join(o.store, "oci-layout")); err != nil {
		return fmt.Errorf("--from %s is no airlock store (no oci-layout): give the file://DIR of a mirror-to-disk run", o.store)
	}
	if o.Full && !o.since.IsZero() {
		return fmt.Errorf("--full and --since exclude each other")
	}
	return nil
}

// Run writes the set and signs it.
func (o *ArchiveCreateOptions) Run() error {
	m, err := transfer.Create(transfer.CreateOptions{Store: o.store, Out: o.out, SegmentSize: o.segSize, Full: o.Full,
		Since: o.since, AirlockVersion: Version, Warn: func(s string) { fmt.Fprintf(o.streams.ErrOut, "warning: %s\n", s) }})
	if err != nil {
		return err
	}
	if o.SignKey != "" {
		if err := transfer.Sign(o.out, o.SignKey); err != nil {
			return err
		}
	}
	printSetSummary(o.streams, o.out, m)
	return nil
}

func printSetSummary(streams IOStreams, dir string, m *transfer.Manifest) {
	var bytes int64
	for _, s := range m.Segments {
		bytes += s.Size
	}
	kind := "full"
	if !m.Full {
		kind = "incremental, depends on " + strings.Join(m.DependsOn, ", ")
	}
	fmt.Fprintf(streams.Out, "transfer set %s (%s): %d segment(s), %d bytes, %d image(s) in %s\n", m.SetID, kind, len(m.Segments), bytes, len(m.Images), dir)
}

// ArchiveVerifyOptions are the options of `archive verify`.
type ArchiveVerifyOptions struct {
	Key     string
	dirs    []string
	streams IOStreams
}

func newArchiveVerifyCommand(streams IOStreams) *cobra.Command {
	o := &ArchiveVerifyOptions{streams: streams}
	cmd := &cobra.Command{
		Use:   "verify DIR...",
		Short: "Check every segment of a transfer set against its manifest",
		Long: `Check the size and sha256 of every segment airlock-transfer.json lists.
Segments may be in any order and spread over several directories (the
manifest is taken from the first directory holding one). Each missing,
truncated, damaged or foreign segment (one of another set) is named with
the images it affects; the exit status is non-zero then. With --key the
signature is checked too: airlock-transfer.json.sig with a PEM public key
(cosign.pub), airlock-transfer.json.asc with an OpenPGP public key (as
gpg --export writes it; a signature made with gpg --armor --detach-sign
airlock-transfer.json works as well).`,
		Example: `  airlock archive verify /media/usb
  # segments carried on two disks
  airlock archive verify /media/usb1 /media/usb2 --key cosign.pub
  # an OpenPGP-signed set
  airlock archive verify /media/usb --key <(gpg --armor --export KEYID)`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.dirs = args
			return o.Run()
		},
	}
	cmd.Flags().StringVar(&o.Key, "key", "", "public key the signature must match: PEM (checks airlock-transfer.json.sig) or OpenPGP (checks airlock-transfer.json.asc)")
	return cmd
}

// Run verifies and prints the outcome.
func (o *ArchiveVerifyOptions) Run() error {
	r, err := transfer.Verify(o.dirs)
	if err != nil {
		return err
	}
	if o.Key != "" {
		if err := transfer.VerifySignature(r.Dir, o.Key); err != nil {
			return err
		}
		fmt.Fprintf(o.streams.Out, "signature of %s: valid\n", filepath.Join(r.Dir, transfer.ManifestName))
	}
	for _, g := range r.Gzip {
		fmt.Fprintf(o.streams.ErrOut, "note: %s is gzip-compressed; read transparently\n", g)
	}
	if !r.OK() {
		return fmt.Errorf("%s", r.Error())
	}
	fmt.Fprintf(o.streams.Out, "transfer set %s: all %d segment(s) intact\n", r.Manifest.SetID, len(r.Manifest.Segments))
	return nil
}

func newArchiveLsCommand(streams IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:     "ls DIR",
		Short:   "List what a transfer set holds, from its manifest alone",
		Example: `  airlock archive ls /media/usb`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := transfer.ReadManifest(args[0])
			if err != nil {
				return err
			}
			printSetSummary(streams, args[0], m)
			w := tabwriter.NewWriter(streams.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "IMAGE\tDIGEST\tBYTES")
			for _, img := range m.Images {
				fmt.Fprintf(w, "%s\t%s\t%d\n", img.Name, img.Digest, img.Size)
			}
			w.Flush()
			for _, l := range []struct {
				what  string
				items []string
			}{{"catalog", m.Catalogs}, {"package", m.Packages}, {"release", m.Releases}} {
				for _, it := range l.items {
					fmt.Fprintf(streams.Out, "%s %s\n", l.what, it)
				}
			}
			for _, s := range m.Segments {
				fmt.Fprintf(streams.Out, "segment %s %d bytes sha256:%s\n", s.Name, s.Size, s.SHA256)
			}
			return nil
		},
	}
}

func newArchiveDiffCommand(streams IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:     "diff A B",
		Short:   "Images added, removed or changed between two transfer sets",
		Example: `  airlock archive diff /media/usb-march /media/usb-april`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := transfer.ReadManifest(args[0])
			if err != nil {
				return err
			}
			b, err := transfer.ReadManifest(args[1])
			if err != nil {
				return err
			}
			for _, l := range diffImages(a, b) {
				fmt.Fprintln(streams.Out, l)
			}
			return nil
		},
	}
}

// diffImages compares the image lists of two sets by name and digest.
func diffImages(a, b *transfer.Manifest) []string {
	ad, bd := map[string]string{}, map[string]string{}
	for _, i := range a.Images {
		ad[i.Name] = i.Digest
	}
	for _, i := range b.Images {
		bd[i.Name] = i.Digest
	}
	var out []string
	for n, d := range bd {
		switch old, ok := ad[n]; {
		case !ok:
			out = append(out, "+ "+n+" "+d)
		case old != d:
			out = append(out, "~ "+n+" "+old+" -> "+d)
		}
	}
	for n, d := range ad {
		if _, ok := bd[n]; !ok {
			out = append(out, "- "+n+" "+d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i][2:] < out[j][2:] })
	return out
}

func newArchiveExtractCommand(streams IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:     "extract DIR... file://STORE",
		Short:   "Verify a transfer set and unpack it into a local store",
		Example: `  airlock archive extract /media/usb file:///var/lib/airlock/store`,
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			dst, err := fileDir("store", args[len(args)-1])
			if err != nil {
				return err
			}
			r, err := transfer.Verify(args[:len(args)-1])
			if err != nil {
				return err
			}
			if !r.OK() {
				return fmt.Errorf("%s", r.Error())
			}
			if err := transfer.Extract(r, dst); err != nil {
				return err
			}
			if miss := transfer.MissingDependencies(r.Manifest, dst); len(miss) > 0 {
				return missingSetsError(miss)
			}
			fmt.Fprintf(streams.Out, "transfer set %s unpacked into %s\n", r.Manifest.SetID, dst)
			return nil
		},
	}
}

func missingSetsError(miss map[string][]string) error {
	var parts []string
	for s, imgs := range miss {
		what := "set " + s
		if s == "before-since" {
			// --since left out blobs older than the date: any earlier set.
			what = "the set(s) holding blobs older than this set's --since date"
		}
		parts = append(parts, fmt.Sprintf("%s (needed by %d image(s), e.g. %s)", what, len(imgs), imgs[0]))
	}
	sort.Strings(parts)
	return fmt.Errorf("this incremental transfer set depends on earlier set(s) not imported here: %s; import those first (airlock archive ls shows a set's id)", strings.Join(parts, "; "))
}
