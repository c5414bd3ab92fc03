//go:build !unix

package demo

import (
	"errors"
	"os"
)

var errNoPause = errors.New("pausar um processo pede SIGSTOP, que só existe em sistemas Unix")

func freeze(*os.Process) error { return errNoPause }
func thaw(*os.Process) error   { return errNoPause }
