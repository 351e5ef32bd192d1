package fleet

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dpsconsole/dpsconsole/internal/journalfile"
)

// TestRunLogReplay: a torn last line is cut off; a "sent" after a final
// outcome does not undo it; a line for no device is damage.
func TestRunLogReplay(t *testing.T) {
	dir := t.TempDir()
	s := Spec{ID: journalfile.NewID(time.Now()), Prefix: "d", Count: 3, Transport: TransportHTTPS}
	r, err := createRun(dir, s)
	if err != nil {
		t.Fatal(err)
	}
	log := `{"n":0,"o":"sent"}` + "\n" + `{"n":0,"o":"assigned","h":"hub1"}` + "\n" + `{"n":0,"o":"sent"}` + "\n" +
		`{"n":1,"o":"sent"}` + "\n" + `{"n":2,"o":"assi`
	if err := os.WriteFile(filepath.Join(r.dir, logFile), []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := OpenSpec(dir, s.ID)
	if err != nil || got.Prefix != "d" || got.Count != 3 {
		t.Fatalf("OpenSpec: %+v, %v", got, err)
	}
	r, err = openRun(dir, got)
	if err != nil {
		t.Fatal(err)
	}
	if r.last[0].Outcome != OutcomeAssigned || r.last[1].Outcome != OutcomeSent || r.last[2].Outcome != "" {
		t.Errorf("replayed %+v", r.last)
	}
	if _, err := openRun(dir, got); err == nil || !strings.Contains(err.Error(), "running in another process") {
		t.Errorf("a second opener: %v", err)
	}
	r.log.Append(logLine{N: 2, Outcome: OutcomeAssigned})
	if err := r.log.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(r.dir, logFile))
	if !strings.HasSuffix(string(b), `{"n":1,"o":"sent"}`+"\n"+`{"n":2,"o":"assigned"}`+"\n") {
		t.Errorf("log after the repair:\n%s", b)
	}
	if err := os.WriteFile(filepath.Join(r.dir, logFile), []byte(`{"n":7,"o":"sent"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := openRun(dir, got); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("damaged log: %v", err)
	}
	if _, err := OpenSpec(dir, "nope"); err == nil || !strings.Contains(err.Error(), `no run "nope"`) {
		t.Errorf("unknown run: %v", err)
	}
	if _, err := OpenSpec(dir, "../x"); err == nil {
		t.Error("a path as run id accepted")
	}
}

func TestNewSpecChecksIDs(t *testing.T) {
	if _, err := NewSpec("h", "s", "g", "sensor", 1, 10, TransportHTTPS); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		prefix       string
		start, count int
		transport    string
		want         string
	}{
		{"bad prefix", 1, 10, "https", `prefix "bad prefix"`},
		{strings.Repeat("a", 125), 1, 1000, "https", "not valid"},
		{"ok", 1, 0, "https", "1 or more"},
		{"ok", -1, 5, "https", "0 or more"},
		{"ok", 1, 5, "amqp", `transport "amqp"`},
	} {
		if _, err := NewSpec("h", "s", "g", c.prefix, c.start, c.count, c.transport); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewSpec(%q, %d, %d, %s): %v, want %q", c.prefix, c.start, c.count, c.transport, err, c.want)
		}
	}
}
