//go:build !unix

// Package filelock takes advisory, exclusive locks on open files. Where
// flock(2) does not exist the locks are not enforced.
package filelock

import (
	"errors"
	"os"
)

// ErrLocked means another open of the file holds the lock.
var ErrLocked = errors.New("locked by another process")

// TryLock does nothing here: there is no flock(2).
func TryLock(*os.File) error { return nil }
