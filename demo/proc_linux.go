package demo

import "syscall"

// sysProcAttr: a member dies with the supervisor, even when the supervisor is
// SIGKILLed (no orphan keeps a port), and a Ctrl-C in the terminal reaches the
// supervisor only, which stops the members itself.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}
