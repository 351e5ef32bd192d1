package journalfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestLog: whole lines are replayed and a torn one cut off; a second opener
// is locked out; synced and queued lines are on disk after Close.
func TestLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.jsonl")
	if err := os.WriteFile(path, []byte("1\n2\n{\"tor"), 0o600); err != nil {
		t.Fatal(err)
	}
	var seen []string
	l, err := OpenLog[int](path, "test log", func(line []byte) error { seen = append(seen, string(line)); return nil })
	if err != nil || len(seen) != 2 || seen[1] != "2\n" {
		t.Fatalf("replayed %q, %v", seen, err)
	}
	if _, err := OpenLog[int](path, "test log", func([]byte) error { return nil }); !errors.Is(err, ErrLocked) {
		t.Errorf("a second opener: %v", err)
	}
	if err := <-l.AppendSynced(3); err != nil || l.Err() != nil {
		t.Fatal(err, l.Err())
	}
	l.Append(4)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "1\n2\n3\n4\n" {
		t.Errorf("log %q", b)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	bad := errors.New("damaged")
	if _, err := OpenLog[int](path, "test log", func([]byte) error { return bad }); !errors.Is(err, bad) {
		t.Errorf("a refused line: %v", err)
	}
}
