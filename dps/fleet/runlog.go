package fleet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/dpsconsole/dpsconsole/dps/cleanup"
	"github.com/dpsconsole/dpsconsole/internal/journalfile"
)

// ErrRunning is returned when another process runs the same fleet run.
var ErrRunning = errors.New("running in another process")

// Spec is what a run registers; it is written (and synced) before the first
// device, so --resume needs nothing but the run id. It holds no key.
type Spec struct {
	ID        string    `json:"id"`
	Created   time.Time `json:"created"`
	Host      string    `json:"host"` // the DPS service host the run is for
	IDScope   string    `json:"idScope"`
	Group     string    `json:"group,omitempty"` // the enrollment group the keys derive from, when known
	Prefix    string    `json:"prefix"`
	Start     int       `json:"start"`
	Count     int       `json:"count"`
	Transport string    `json:"transport"`
	// KeySource is where the group key came from, so a resumed run derives
	// the same keys: KeyPrimary, KeySecondary (read from the group) or KeyFile.
	KeySource string `json:"keySource,omitempty"`
}

// Key sources of a run.
const (
	KeyPrimary   = "primary"
	KeySecondary = "secondary"
	KeyFile      = "file"
)

// RegistrationID is the ID of device i (0-based) of the run.
func (s Spec) RegistrationID(i int) string {
	return s.Prefix + "-" + strconv.Itoa(s.Start+i)
}

// Outcome is how one device's registration ended, as logged.
type Outcome string

const (
	OutcomeSent     Outcome = "sent"     // the register request is about to go; no answer logged yet
	OutcomeAssigned Outcome = "assigned" // DPS assigned the device to a hub
	OutcomeFailed   Outcome = "failed"   // DPS ran the registration and it ended failed
	OutcomeDisabled Outcome = "disabled" // the enrollment is disabled
	OutcomeError    Outcome = "error"    // DPS refused the request, or it never got an answer: not registered
)

// final reports whether DPS ran this device's registration: a resumed run
// leaves it alone (registering it again would be a second registration).
func (o Outcome) final() bool {
	return o == OutcomeAssigned || o == OutcomeFailed || o == OutcomeDisabled
}

// logLine is one line of the outcome log: short keys, since a large fleet
// writes a line per device twice.
type logLine struct {
	N         int     `json:"n"`
	Outcome   Outcome `json:"o"`
	Hub       string  `json:"h,omitempty"`
	Substatus string  `json:"s,omitempty"`
	Millis    int64   `json:"ms,omitempty"` // registration latency
	Error     string  `json:"e,omitempty"`  // the error group (see errorGroup)
	Throttled int     `json:"t,omitempty"`  // 429s this device's requests got
}

const (
	specFile = "run.json"
	logFile  = "outcomes.jsonl"
)

// RunsDir is where the run logs live.
func RunsDir(stateDir string) string { return filepath.Join(stateDir, "fleet-runs") }

// run is a run on disk: its spec and the last logged line of each device.
type run struct {
	Spec
	dir  string
	last []logLine                 // by device index; Outcome "" = never started
	log  *journalfile.Log[logLine] // appended with group commit; the "sent" before a register is waited for
}

// createRun writes a new run's spec.
func createRun(stateDir string, s Spec) (*run, error) {
	r := &run{Spec: s, dir: filepath.Join(RunsDir(stateDir), s.ID), last: make([]logLine, s.Count)}
	if err := os.MkdirAll(RunsDir(stateDir), 0o700); err != nil {
		return nil, fmt.Errorf("fleet: create the run directory: %w", err)
	}
	if err := os.Mkdir(r.dir, 0o700); err != nil {
		return nil, fmt.Errorf("fleet: create the run directory: %w", err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := cleanup.WriteFileSynced(filepath.Join(r.dir, specFile), append(b, '\n')); err != nil {
		return nil, fmt.Errorf("fleet: write run %s: %w", s.ID, err)
	}
	return r, nil
}

// OpenSpec reads the spec of run id, for --resume.
func OpenSpec(stateDir, id string) (Spec, error) {
	if id == "" || filepath.Base(id) != id || id == "." || id == ".." {
		return Spec{}, fmt.Errorf("fleet: %q is not a run id (the id printed when the run started, e.g. 20261201-101500-a1b2c3)", id)
	}
	b, err := os.ReadFile(filepath.Join(RunsDir(stateDir), id, specFile))
	if errors.Is(err, os.ErrNotExist) {
		return Spec{}, fmt.Errorf("fleet: no run %q in %s; give the id printed when the run started (each run is a directory there)", id, RunsDir(stateDir))
	}
	if err != nil {
		return Spec{}, fmt.Errorf("fleet: read run %s: %w", id, err)
	}
	var s Spec
	if err := json.Unmarshal(b, &s); err != nil || s.ID != id || s.Count < 0 {
		return Spec{}, fmt.Errorf("fleet: run %s is damaged (%s)", id, filepath.Join(RunsDir(stateDir), id, specFile))
	}
	return s, nil
}

// openRun opens an existing run and takes its log for this process.
func openRun(stateDir string, s Spec) (*run, error) {
	r := &run{Spec: s, dir: filepath.Join(RunsDir(stateDir), s.ID), last: make([]logLine, s.Count)}
	return r, r.openLog()
}

// openLog locks the outcome log, replays it and cuts a torn last line off.
func (r *run) openLog() error {
	l, err := journalfile.OpenLog[logLine](filepath.Join(r.dir, logFile), "fleet: write the run log", r.apply)
	var damaged damagedLog
	switch {
	case errors.Is(err, journalfile.ErrLocked):
		return fmt.Errorf("fleet: run %s is %w; wait for it to finish, or stop it (ctrl+c there) and resume it here", r.ID, ErrRunning)
	case errors.As(err, &damaged):
		return err
	case err != nil:
		return fmt.Errorf("fleet: open the log of run %s: %w", r.ID, err)
	}
	r.log = l
	return nil
}

// damagedLog is a log line that is not one of ours.
type damagedLog struct{ error }

// apply replays one whole line of the log.
func (r *run) apply(line []byte) error {
	var l logLine
	if err := json.Unmarshal(line, &l); err != nil || l.N < 0 || l.N >= len(r.last) {
		return damagedLog{fmt.Errorf("fleet: the log of run %s is damaged at %q", r.ID, bytes.TrimSpace(line))}
	}
	// A "sent" after a final outcome can only come from a run asked to
	// register again; keep the final outcome until its own answer.
	if l.Outcome == OutcomeSent && r.last[l.N].Outcome.final() {
		return nil
	}
	r.last[l.N] = l
	return nil
}
