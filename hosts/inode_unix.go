//go:build unix

package hosts

import (
	"io/fs"
	"syscall"
)

// inode is fi's inode number: a file replaced by rename has a new one.
func inode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}
