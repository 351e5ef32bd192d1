package journalfile

import (
	"os"
	"path/filepath"
	"testing"
)

// A line appended after a torn one starts on its own line.
func TestWriteLineEndsATornLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	if err := os.WriteFile(path, []byte(`{"a":1}`+"\n"+`{"tor`), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteLine(f, []byte(`{"b":2}`)); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if want := `{"a":1}` + "\n" + `{"tor` + "\n" + `{"b":2}` + "\n"; string(got) != want {
		t.Fatalf("file = %q, want %q", got, want)
	}
	if err := f.Close(); err == nil {
		t.Fatal("WriteLine left the file open")
	}
}

// Batch takes what is queued and stops at an empty or closed channel.
func TestBatchTakesWhatIsQueued(t *testing.T) {
	ch := make(chan int, 4)
	ch <- 2
	ch <- 3
	var got []int
	Batch(1, ch, func(n int) { got = append(got, n) })
	if len(got) != 3 || got[0] != 1 || got[2] != 3 {
		t.Fatalf("got %v, want [1 2 3]", got)
	}
	ch <- 4
	close(ch)
	got = got[:0]
	Batch(0, ch, func(n int) { got = append(got, n) })
	if len(got) != 2 || got[1] != 4 {
		t.Fatalf("got %v, want [0 4]", got)
	}
}
