package tui

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/dpsconsole/dpsconsole/internal/journalfile"
)

// The kinds of object a tutorial run creates on the target.
const (
	madeGroup  = "group"
	madeRecord = "record"
	madeDevice = "hub device"
)

// tutorialObject is one object a tutorial run created. Hub is set for a
// hub device only.
type tutorialObject struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
	Hub  string `json:"hub,omitempty"`
}

func (o tutorialObject) String() string {
	if o.Hub != "" {
		return o.Kind + " " + o.ID + " on " + o.Hub
	}
	return o.Kind + " " + o.ID
}

// tutorialRun is what one tutorial run (named by its group) left on a target.
type tutorialRun struct {
	Group   string
	Started time.Time
	Objects []tutorialObject
}

// tutorialJournal remembers, in the state directory, every object a tutorial
// run created and which of those it removed again, so a tutorial opened later
// can offer to remove the leftovers of one that was quit part-way. Only what
// the journal says a run created is ever removed, never something because its
// name looks like the tutorial's. The file holds IDs and host names, no keys;
// it is append-only JSON lines (0600), one write per line, so two consoles on
// one state directory do not lose each other's entries.
type tutorialJournal struct {
	path string
	dps  string // the target's DPS host: a journal line belongs to one target
}

type tutorialLine struct {
	Time time.Time      `json:"t"`
	DPS  string         `json:"dps"`
	Run  string         `json:"run"`
	Made tutorialObject `json:"made,omitzero"`
	Gone tutorialObject `json:"gone,omitzero"`
}

// tutorialJournalName is the journal's file in the state directory.
const tutorialJournalName = "tutorial-journal.jsonl"

// newTutorialJournal is the journal of the target, or nil when the console
// has no state directory (then a run is remembered only while it is open).
func newTutorialJournal(t *Target) *tutorialJournal {
	if t == nil || t.StateDir == "" {
		return nil
	}
	host := t.Name
	if t.Service != nil {
		host = t.Service.Host()
	}
	return &tutorialJournal{path: filepath.Join(t.StateDir, tutorialJournalName), dps: host}
}

// made records that run created o. It is written before the object exists
// when the tutorial has made sure the ID is free, so a crash cannot leave an
// object the journal does not know.
func (j *tutorialJournal) made(run string, o tutorialObject) error {
	return j.append(tutorialLine{Run: run, Made: o})
}

// gone records that run removed o (or found it already gone).
func (j *tutorialJournal) gone(run string, o tutorialObject) error {
	return j.append(tutorialLine{Run: run, Gone: o})
}

func (j *tutorialJournal) append(l tutorialLine) error {
	if j == nil {
		return nil
	}
	l.Time, l.DPS = time.Now().UTC(), j.dps
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(j.path), 0o700); err != nil {
		return fmt.Errorf("tutorial journal: %w", err)
	}
	f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("tutorial journal: %w", err)
	}
	if err := journalfile.WriteLine(f, b); err != nil {
		return fmt.Errorf("tutorial journal %s: %w", j.path, err)
	}
	return nil
}

// leftovers lists the runs on this target with objects not yet removed,
// oldest first, each run's objects in the order they were made.
func (j *tutorialJournal) leftovers() ([]tutorialRun, error) {
	if j == nil {
		return nil, nil
	}
	f, err := os.Open(j.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tutorial journal: %w", err)
	}
	defer f.Close()
	var runs []*tutorialRun
	byGroup := map[string]*tutorialRun{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l tutorialLine
		if len(sc.Bytes()) == 0 || json.Unmarshal(sc.Bytes(), &l) != nil || l.DPS != j.dps {
			continue // a torn line, or another target's
		}
		r := byGroup[l.Run]
		if r == nil {
			r = &tutorialRun{Group: l.Run, Started: l.Time}
			byGroup[l.Run] = r
			runs = append(runs, r)
		}
		if l.Made.Kind != "" && !slices.Contains(r.Objects, l.Made) {
			r.Objects = append(r.Objects, l.Made)
		}
		if l.Gone.Kind != "" {
			r.Objects = slices.DeleteFunc(r.Objects, func(o tutorialObject) bool { return o == l.Gone })
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tutorial journal %s: %w", j.path, err)
	}
	var out []tutorialRun
	for _, r := range runs {
		if len(r.Objects) > 0 {
			out = append(out, *r)
		}
	}
	return out, nil
}
