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
