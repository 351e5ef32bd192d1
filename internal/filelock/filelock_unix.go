//go:build unix

// Package filelock takes advisory, exclusive locks on open files, so that two
// processes do not work on the same state at once. The kernel drops a lock
// when its process dies: a crash never leaves one behind.
package filelock

import (
	"errors"
	"os"
	"syscall"
)

// ErrLocked means another open of the file (usually another process) holds
// the lock.
var ErrLocked = errors.New("locked by another process")

// TryLock takes an exclusive lock on f without waiting. It holds until f is
// closed.
func TryLock(f *os.File) error {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return ErrLocked
	}
	return err
}
