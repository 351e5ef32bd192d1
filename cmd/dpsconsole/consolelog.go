package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/dpsconsole/dpsconsole/dps"
)

// consoleLogMax is the size at which the console's log is rotated. One old
// file is kept, so the log never takes more than twice this: a long session
// at debug level once wrote 170 MB.
const consoleLogMax = 10 << 20

// logLevels are the values of --log-level.
var logLevels = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}

// parseLogLevel reads --log-level.
func parseLogLevel(s string) (slog.Level, error) {
	l, ok := logLevels[strings.ToLower(strings.TrimSpace(s))]
	if !ok {
		return 0, usagef("--log-level %q is not a level: use debug, info, warn or error (debug adds a line per request)", s)
	}
	return l, nil
}

// openConsoleLog opens the console's log at path, rotated at max bytes, and
// a logger on it at level. Only at debug does it take azcore's per-request
// lines (redacted by azcore: no Authorization header, no query).
func openConsoleLog(path string, level slog.Level, max int64) (*slog.Logger, io.Closer, error) {
	f, err := openRotatingFile(path, max)
	if err != nil {
		return nil, nil, fmt.Errorf("open the log file: %w", err)
	}
	logger := slog.New(slog.NewJSONHandler(f, &slog.HandlerOptions{Level: level}))
	if level <= slog.LevelDebug {
		dps.LogToSlog(logger)
	} else {
		dps.LogToSlog(nil)
	}
	return logger, f, nil
}

// rotatingFile is an append-only 0600 file that, when a write would take it
// past max bytes, is renamed to path.1 (replacing the previous old one) and
// started afresh.
type rotatingFile struct {
	path string
	max  int64

	mu   sync.Mutex
	f    *os.File
	size int64
}

func openRotatingFile(path string, max int64) (*rotatingFile, error) {
	r := &rotatingFile{path: path, max: max}
	if err := r.open(os.O_APPEND); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *rotatingFile) open(mode int) error {
	f, err := openPrivate(r.path, mode) // a file from an older version may be wider
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	r.f, r.size = f, fi.Size()
	return nil
}

func (r *rotatingFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return 0, os.ErrClosed
	}
	if r.size > 0 && r.size+int64(len(p)) > r.max {
		if err := r.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	return n, err
}

func (r *rotatingFile) rotate() error {
	if err := r.f.Close(); err != nil {
		return err
	}
	r.f = nil
	if err := os.Rename(r.path, r.path+".1"); err != nil {
		return err
	}
	return r.open(os.O_TRUNC)
}

func (r *rotatingFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}
