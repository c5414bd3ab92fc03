//go:build !linux

package demo

import "syscall"

// sysProcAttr: only Linux can tie a child's life to its parent's (Pdeathsig).
func sysProcAttr() *syscall.SysProcAttr { return nil }
