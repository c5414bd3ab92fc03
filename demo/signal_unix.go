//go:build unix

package demo

import (
	"os"
	"syscall"
)

// freeze and thaw pause a member's process and let it run again.
func freeze(p *os.Process) error { return p.Signal(syscall.SIGSTOP) }
func thaw(p *os.Process) error   { return p.Signal(syscall.SIGCONT) }
