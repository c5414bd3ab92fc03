//go:build unix

package main

import "syscall"

// openFileLimit is the process's limit on open files. Go raises the soft limit
// to the hard one at start, so this is the hard limit (0 when unknown).
func openFileLimit() uint64 {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) != nil {
		return 0
	}
	return uint64(l.Cur)
}
