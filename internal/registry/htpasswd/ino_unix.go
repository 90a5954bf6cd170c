//go:build unix

package htpasswd

import (
	"os"
	"syscall"
)

func sysIno(st os.FileInfo) any {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Ino
	}
	return nil
}
