//go:build unix

package transfer

import "golang.org/x/sys/unix"

// freeSpace returns the bytes free for this user in dir's file system.
func freeSpace(dir string) (uint64, bool) {
	var s unix.Statfs_t
	if unix.Statfs(dir, &s) != nil {
		return 0, false
	}
	return s.Bavail * uint64(s.Bsize), true
}
