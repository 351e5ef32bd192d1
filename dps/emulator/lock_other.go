//go:build !unix

package emulator

import "os"

// lockDataDir is not enforced where flock(2) does not exist: do not run two
// emulators on one data dir there.
func lockDataDir(string) (*os.File, error) { return nil, nil }
