//go:build !unix

package htpasswd

import "os"

func sysIno(os.FileInfo) any { return nil }
