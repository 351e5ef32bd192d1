package cleanup

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dpsconsole/dpsconsole/internal/journalfile"
)

// Journal is the known-groups journal of one DPS host: every enrollment group
// id the console has seen there, and which of them it deleted. DPS cannot
// list the records of a group it no longer knows, so this memory is what lets
// cleanup find a deleted group's orphans later.
//
// The file is append-only JSON lines, one O_APPEND write per change, so the
// CLI and the TUI can update the same journal at once without losing entries.
type Journal struct {
	path string

	mu     sync.Mutex
	groups map[string]JournalGroup
}

// JournalGroup is what the journal knows about one group id.
type JournalGroup struct {
	ID        string
	FirstSeen time.Time
	// Deleted is when the console deleted the group; zero while it is live
	// as far as the console knows.
	Deleted time.Time
}

type journalLine struct {
	Time    time.Time `json:"t"`
	Seen    []string  `json:"seen,omitempty"`
	Deleted string    `json:"deleted,omitempty"`
}

// OpenJournal opens (creating if needed) the journal of dpsHost in stateDir.
func OpenJournal(stateDir, dpsHost string) (*Journal, error) {
	if dpsHost == "" {
		return nil, errors.New("cleanup: journal needs the DPS host name")
	}
	dir := filepath.Join(stateDir, "journal")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cleanup: create the journal directory: %w", err)
	}
	j := &Journal{path: filepath.Join(dir, fileSafe(dpsHost)+".jsonl"), groups: map[string]JournalGroup{}}
	if err := j.load(); err != nil {
		return nil, err
	}
	return j, nil
}

// Path is the journal file.
func (j *Journal) Path() string { return j.path }

func (j *Journal) load() error {
	f, err := os.Open(j.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cleanup: read the known-groups journal: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var l journalLine
		// A torn last line (crash mid-write) is skipped; every whole line counts.
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue
		}
		j.apply(l)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("cleanup: read %s: %w", j.path, err)
	}
	return nil
}

func (j *Journal) apply(l journalLine) {
	for _, id := range l.Seen {
		g, ok := j.groups[id]
		if !ok || !g.Deleted.IsZero() {
			// First sighting, or the id was re-created after a deletion.
			g = JournalGroup{ID: id, FirstSeen: l.Time}
		}
		j.groups[id] = g
	}
	if l.Deleted != "" {
		g := j.groups[l.Deleted]
		g.ID = l.Deleted
		if g.FirstSeen.IsZero() {
			g.FirstSeen = l.Time
		}
		g.Deleted = l.Time
		j.groups[l.Deleted] = g
	}
}

// Seen records group ids the console saw live. Only ids new to the journal
// (or re-created after the console deleted them) are written.
func (j *Journal) Seen(ids ...string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	var fresh []string
	for _, id := range ids {
		if g, ok := j.groups[id]; id == "" || (ok && g.Deleted.IsZero()) || slices.Contains(fresh, id) {
			continue
		}
		fresh = append(fresh, id)
	}
	if len(fresh) == 0 {
		return nil
	}
	return j.write(journalLine{Time: time.Now().UTC(), Seen: fresh})
}

// Deleted records that the console deleted group id.
func (j *Journal) Deleted(id string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.write(journalLine{Time: time.Now().UTC(), Deleted: id})
}

// Groups returns every group id the journal knows, sorted.
func (j *Journal) Groups() []JournalGroup {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make([]JournalGroup, 0, len(j.groups))
	for _, g := range j.groups {
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b JournalGroup) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func (j *Journal) write(l journalLine) error {
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("cleanup: open the known-groups journal: %w", err)
	}
	if err := journalfile.WriteLine(f, b); err != nil {
		return fmt.Errorf("cleanup: write the known-groups journal %s: %w", j.path, err)
	}
	j.apply(l)
	return nil
}

// fileSafe turns a host name (possibly host:port) into a file name.
func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
			return r
		}
		return '_'
	}, s)
}
