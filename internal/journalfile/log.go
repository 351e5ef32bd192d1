package journalfile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"github.com/dpsconsole/dpsconsole/internal/filelock"
)

// ErrLocked is returned by OpenLog when another process holds the log.
var ErrLocked = filelock.ErrLocked

// Log is an outcome log one process owns: JSON lines of T appended with
// group commit, a writer goroutine taking every line queued meanwhile,
// writing them at once and syncing once, so many workers share one fsync.
type Log[T any] struct {
	f      *os.File
	what   string // names the log in errors, e.g. "cleanup: write the job log"
	ch     chan entry[T]
	done   chan error
	failed atomic.Pointer[error]
}

type entry[T any] struct {
	v      T
	synced chan error // nil: nobody waits
}

// OpenLog opens (or creates, 0600) the log at path and locks it for this
// process (ErrLocked when another has it), replays every whole line through
// apply and cuts a torn last line off (a crash while writing it: its
// action simply runs again), so appends start on a clean line. what names
// the log in write errors.
func OpenLog[T any](path, what string, apply func(line []byte) error) (*Log[T], error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := take(f, apply); err != nil {
		f.Close()
		return nil, err
	}
	l := &Log[T]{f: f, what: what, ch: make(chan entry[T], 4096), done: make(chan error, 1)}
	go l.run()
	return l, nil
}

func take(f *os.File, apply func(line []byte) error) error {
	if err := filelock.TryLock(f); err != nil {
		return err
	}
	data, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<62))
	if err != nil {
		return err
	}
	whole := bytes.LastIndexByte(data, '\n') + 1
	for line := range bytes.Lines(data[:whole]) {
		if err := apply(line); err != nil {
			return err
		}
	}
	if whole < len(data) {
		return f.Truncate(int64(whole))
	}
	return nil
}

func (l *Log[T]) run() {
	var failed error
	var buf []byte
	var waiters []chan error
	for first := range l.ch {
		buf, waiters = buf[:0], waiters[:0]
		Batch(first, l.ch, func(e entry[T]) {
			b, _ := json.Marshal(e.v)
			buf = append(append(buf, b...), '\n')
			if e.synced != nil {
				waiters = append(waiters, e.synced)
			}
		})
		if failed == nil {
			if _, err := l.f.Write(buf); err != nil {
				failed = err
			} else if err := l.f.Sync(); err != nil {
				failed = err
			}
			if failed != nil {
				err := fmt.Errorf("%s: %w", l.what, failed)
				l.failed.Store(&err)
			}
		}
		for _, w := range waiters {
			w <- failed
		}
	}
	if err := l.f.Close(); failed == nil {
		failed = err
	}
	l.done <- failed
}

// Append queues a line without waiting for it.
func (l *Log[T]) Append(v T) { l.ch <- entry[T]{v: v} }

// AppendSynced queues a line; the channel gets the result of its sync.
func (l *Log[T]) AppendSynced(v T) <-chan error {
	ch := make(chan error, 1)
	l.ch <- entry[T]{v: v, synced: ch}
	return ch
}

// Err is a failed write: the run must stop, since what it does next would
// not be remembered.
func (l *Log[T]) Err() error {
	if e := l.failed.Load(); e != nil {
		return *e
	}
	return nil
}

// Close writes and syncs every queued line and closes the file.
func (l *Log[T]) Close() error {
	close(l.ch)
	if err := <-l.done; err != nil {
		return fmt.Errorf("%s: %w", l.what, err)
	}
	return nil
}
