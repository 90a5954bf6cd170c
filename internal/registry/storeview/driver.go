package storeview

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
)

// DriverName is the storage driver's name in a distribution storage
// section: {DriverName: {ParamLayout: *Layout}} (or {ParamDir: "DIR"}).
const DriverName = "airlock-store"

const (
	// ParamLayout passes an already built *Layout, so distribution and the
	// OCI compatibility layer, which each create a driver from the same
	// storage section, share one view computed once.
	ParamLayout = "layout"
	// ParamDir builds the layout from a store directory.
	ParamDir = "dir"
)

// ErrReadOnly is wrapped by every write: the store is served as it is.
var ErrReadOnly = errors.New("read-only: the store is served in place (registry serve --from); push with `airlock mirror` into the store or serve a --root registry to accept pushes")

func init() {
	factory.Register(DriverName, driverFactory{})
}

type driverFactory struct{}

func (driverFactory) Create(_ context.Context, params map[string]any) (storagedriver.StorageDriver, error) {
	if l, ok := params[ParamLayout].(*Layout); ok && l != nil {
		return New(l), nil
	}
	if dir, ok := params[ParamDir].(string); ok && dir != "" {
		l, err := Build(dir)
		if err != nil {
			return nil, err
		}
		return New(l), nil
	}
	return nil, fmt.Errorf("%s storage driver: set %q (a store directory)", DriverName, ParamDir)
}

// Driver is the read-only storagedriver.StorageDriver over a Layout.
type Driver struct {
	l *Layout
}

var _ storagedriver.StorageDriver = (*Driver)(nil)

// New returns a driver serving l.
func New(l *Layout) *Driver { return &Driver{l: l} }

// Name implements storagedriver.StorageDriver.
func (d *Driver) Name() string { return DriverName }

func (d *Driver) notFound(p string) error {
	return storagedriver.PathNotFoundError{Path: p, DriverName: DriverName}
}

func (d *Driver) readOnly(op, p string) error {
	// Not storagedriver.Error: it has no Unwrap, and callers test for
	// ErrReadOnly.
	return fmt.Errorf("%s: %s %s: %w", DriverName, op, p, ErrReadOnly)
}

func (d *Driver) file(p string) (*node, error) {
	if !valid(p) {
		return nil, storagedriver.InvalidPathError{Path: p, DriverName: DriverName}
	}
	n, ok := d.l.files[p]
	if !ok {
		return nil, d.notFound(p)
	}
	return n, nil
}

func valid(p string) bool {
	return p == "/" || storagedriver.PathRegexp.MatchString(p)
}

// GetContent implements storagedriver.StorageDriver. distribution uses it
// for link files and manifests, never for layers.
func (d *Driver) GetContent(_ context.Context, p string) ([]byte, error) {
	n, err := d.file(p)
	if err != nil {
		return nil, err
	}
	if n.blob == "" {
		return bytes.Clone(n.content), nil
	}
	b, err := os.ReadFile(n.blob)
	if err != nil {
		return nil, d.blobErr(p, n, err)
	}
	return b, nil
}

// blobErr maps a pool file that vanished after Build to "not found" (a 404
// for the client, not a 500) and names the file for anything else.
func (d *Driver) blobErr(p string, n *node, err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return d.notFound(p)
	}
	return storagedriver.Error{DriverName: DriverName, Detail: fmt.Errorf("reading store blob %s: %w", n.blob, err)}
}

// Reader implements storagedriver.StorageDriver: the pool file itself,
// opened and positioned at offset.
func (d *Driver) Reader(_ context.Context, p string, offset int64) (io.ReadCloser, error) {
	n, err := d.file(p)
	if err != nil {
		return nil, err
	}
	if offset < 0 || offset > n.size {
		return nil, storagedriver.InvalidOffsetError{Path: p, Offset: offset, DriverName: DriverName}
	}
	if n.blob == "" {
		return io.NopCloser(bytes.NewReader(n.content[offset:])), nil
	}
	f, err := os.Open(n.blob)
	if err != nil {
		return nil, d.blobErr(p, n, err)
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return nil, storagedriver.Error{DriverName: DriverName, Detail: fmt.Errorf("seeking store blob %s to %d: %w", n.blob, offset, err)}
	}
	return f, nil
}

// Stat implements storagedriver.StorageDriver.
func (d *Driver) Stat(_ context.Context, p string) (storagedriver.FileInfo, error) {
	if !valid(p) {
		return nil, storagedriver.InvalidPathError{Path: p, DriverName: DriverName}
	}
	if n, ok := d.l.files[p]; ok {
		return storagedriver.FileInfoInternal{FileInfoFields: storagedriver.FileInfoFields{Path: p, Size: n.size, ModTime: n.mod}}, nil
	}
	if _, ok := d.l.dirs[p]; ok {
		return storagedriver.FileInfoInternal{FileInfoFields: storagedriver.FileInfoFields{Path: p, IsDir: true}}, nil
	}
	return nil, d.notFound(p)
}

// List implements storagedriver.StorageDriver: full paths of the children,
// as distribution's filesystem driver returns them.
func (d *Driver) List(_ context.Context, p string) ([]string, error) {
	if !valid(p) {
		return nil, storagedriver.InvalidPathError{Path: p, DriverName: DriverName}
	}
	c, ok := d.l.dirs[p]
	if !ok {
		return nil, d.notFound(p)
	}
	return append([]string(nil), c...), nil
}

// Walk implements storagedriver.StorageDriver with distribution's List/Stat
// based walk (sorted, honouring the start-after hint of catalog paging).
func (d *Driver) Walk(ctx context.Context, p string, f storagedriver.WalkFn, options ...func(*storagedriver.WalkOptions)) error {
	return storagedriver.WalkFallback(ctx, d, p, f, options...)
}

// RedirectURL implements storagedriver.StorageDriver: content is always
// served by the registry itself.
func (d *Driver) RedirectURL(*http.Request, string) (string, error) { return "", nil }

// PutContent implements storagedriver.StorageDriver; it always fails.
func (d *Driver) PutContent(_ context.Context, p string, _ []byte) error {
	return d.readOnly("writing", p)
}

// Writer implements storagedriver.StorageDriver; it always fails.
func (d *Driver) Writer(_ context.Context, p string, _ bool) (storagedriver.FileWriter, error) {
	return nil, d.readOnly("writing", p)
}

// Move implements storagedriver.StorageDriver; it always fails.
func (d *Driver) Move(_ context.Context, src, _ string) error {
	return d.readOnly("moving", src)
}

// Delete implements storagedriver.StorageDriver; it always fails.
func (d *Driver) Delete(_ context.Context, p string) error {
	return d.readOnly("deleting", p)
}
