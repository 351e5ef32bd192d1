// Package journalfile appends lines to append-only journal files that other
// processes may append to as well and that a crash may leave torn.
package journalfile

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"time"
)

// NewID names a job or run started at now: sortable by time (UTC, to the
// second), with 6 random hex digits so two started in one second differ.
func NewID(now time.Time) string {
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	return now.UTC().Format("20060102-150405-") + hex.EncodeToString(rnd[:])
}

// WriteLine writes line to f, opened with O_APPEND, as one write, syncs and
// closes f. One write of a whole line means appends from other processes never
// interleave inside it; the leading newline ends a torn line a crash may have
// left, so it cannot swallow this one.
func WriteLine(f *os.File, line []byte) error {
	_, err := f.Write(append(append([]byte{'\n'}, line...), '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Batch calls add for first and then for every value already queued on ch,
// without waiting for more: what a group-commit writer writes and syncs at
// once.
func Batch[T any](first T, ch <-chan T, add func(T)) {
	add(first)
	for {
		select {
		case next, ok := <-ch:
			if !ok {
				return
			}
			add(next)
		default:
			return
		}
	}
}
