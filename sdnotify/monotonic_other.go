//go:build !linux

package sdnotify

// monotonicUsec has no systemd to compare with off Linux.
func monotonicUsec() (uint64, bool) { return 0, false }
