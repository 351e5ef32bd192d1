package cleanup

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dpsconsole/dpsconsole/internal/journalfile"
)

// ErrJobRunning is returned by Engine.Run when another process runs the job.
var ErrJobRunning = errors.New("running in another process")

// Outcome is how one action ended.
type Outcome string

const (
	OutcomeDeleted Outcome = "deleted"
	OutcomeGone    Outcome = "gone"    // it was already gone (404): done all the same
	OutcomeChanged Outcome = "changed" // 412: it changed since the scan (the device registered again), so it was left alone
	OutcomeFailed  Outcome = "failed"  // not done; a resumed job tries it again
)

// final reports whether an action with this outcome is settled for good.
func (o Outcome) final() bool { return o == OutcomeDeleted || o == OutcomeGone || o == OutcomeChanged }

// Job is a cleanup run on disk, so that a run killed at any moment can be
// resumed: the list of actions, fixed (and synced) before the first delete,
// and an append-only log with one synced line per outcome.
//
// The crash window: a delete can succeed and the process die before its log
// line is on disk. The resumed run then sends that delete again and DPS (or
// the hub) answers 404, which counts as done. So a resumed job repeats no
// effect and misses no action.
type Job struct {
	ID        string    `json:"id"`
	Host      string    `json:"host"` // the DPS host the job is for
	Created   time.Time `json:"created"`
	Selection Selection `json:"selection"`
	Actions   []Action  `json:"-"`

	dir      string
	outcomes []Outcome // last logged outcome per action
}

const (
	jobFile = "actions.jsonl" // header line, then one action per line
	logFile = "outcomes.jsonl"
)

type logLine struct {
	N       int     `json:"n"`
	Outcome Outcome `json:"o"`
	Error   string  `json:"e,omitempty"`
}

func jobsDir(stateDir string) string { return filepath.Join(stateDir, "cleanup-jobs") }

// NewJob writes a job for the selected part of plan.
func (e *Engine) NewJob(plan *Plan, sel Selection) (*Job, error) {
	return e.newJob(plan.Actions(sel), sel)
}

func (e *Engine) newJob(actions []Action, sel Selection) (*Job, error) {
	now := time.Now().UTC()
	j := &Job{
		ID:        journalfile.NewID(now),
		Host:      e.DPS.Host(),
		Created:   now,
		Selection: sel,
		Actions:   actions,
		outcomes:  make([]Outcome, len(actions)),
	}
	j.dir = filepath.Join(jobsDir(e.StateDir), j.ID)
	if err := os.MkdirAll(j.dir, 0o700); err != nil {
		return nil, fmt.Errorf("cleanup: create the job directory: %w", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	if err := enc.Encode(j); err != nil {
		return nil, err
	}
	for _, a := range actions {
		if err := enc.Encode(a); err != nil {
			return nil, err
		}
	}
	if err := writeFileSynced(filepath.Join(j.dir, jobFile), buf.Bytes()); err != nil {
		return nil, fmt.Errorf("cleanup: write job %s: %w", j.ID, err)
	}
	return j, nil
}

// writeFileSynced writes a file whole or not at all: temp file, fsync,
// rename, fsync of the directory.
func writeFileSynced(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// OpenJob loads job id from the state dir with the outcomes logged so far.
func (e *Engine) OpenJob(id string) (*Job, error) { return e.openJob(id, true) }

// openJob loads job id; without actions it only counts them (a million
// take seconds to decode), which is enough to tell what is pending.
func (e *Engine) openJob(id string, actions bool) (*Job, error) {
	if id == "" || filepath.Base(id) != id || id == "." || id == ".." {
		return nil, fmt.Errorf("cleanup: %q is not a job id (the id printed when the job started, e.g. 20261122-203256-a1b2c3)", id)
	}
	dir := filepath.Join(jobsDir(e.StateDir), id)
	f, err := os.Open(filepath.Join(dir, jobFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("cleanup: no job %q in %s; give the id printed when the job started (each job is a directory there)", id, jobsDir(e.StateDir))
	}
	if err != nil {
		return nil, fmt.Errorf("cleanup: open job %s: %w", id, err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	dec := json.NewDecoder(r)
	j := &Job{dir: dir}
	if err := dec.Decode(j); err != nil {
		return nil, fmt.Errorf("cleanup: job %s is damaged: %w", id, err)
	}
	if !sameHost(j.Host, e.DPS.Host()) {
		return nil, fmt.Errorf("cleanup: job %s was made for DPS %s, but the target is %s", id, j.Host, e.DPS.Host())
	}
	n := 0
	if actions {
		for {
			var a Action
			if err := dec.Decode(&a); err == io.EOF {
				break
			} else if err != nil {
				return nil, fmt.Errorf("cleanup: job %s is damaged: %w", id, err)
			}
			j.Actions = append(j.Actions, a)
		}
		n = len(j.Actions)
	} else if n, err = countLines(io.MultiReader(dec.Buffered(), r)); err != nil {
		return nil, fmt.Errorf("cleanup: read job %s: %w", id, err)
	}
	j.outcomes = make([]Outcome, n)
	data, err := os.ReadFile(filepath.Join(dir, logFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("cleanup: read the log of job %s: %w", id, err)
	}
	if _, err := j.replay(data); err != nil {
		return nil, err
	}
	return j, nil
}

// replay applies the outcome log's whole lines and returns their length. A
// torn last line (the process died while writing it) is ignored; that action
// simply runs again.
func (j *Job) replay(data []byte) (whole int, err error) {
	whole = bytes.LastIndexByte(data, '\n') + 1
	for line := range bytes.Lines(data[:whole]) {
		if err := j.apply(line); err != nil {
			return 0, err
		}
	}
	return whole, nil
}

// apply replays one whole line of the outcome log.
func (j *Job) apply(line []byte) error {
	var l logLine
	if err := json.Unmarshal(line, &l); err != nil || l.N < 0 || l.N >= len(j.outcomes) {
		return damagedLog{fmt.Errorf("cleanup: the log of job %s is damaged at %q", j.ID, bytes.TrimSpace(line))}
	}
	j.outcomes[l.N] = l.Outcome
	return nil
}

// damagedLog is a log line that is not one of ours.
type damagedLog struct{ error }

func sameHost(a, b string) bool { return strings.EqualFold(a, b) }

// countLines counts the action lines after the header: each ends in a
// newline, and so does the header, whose newline comes first.
func countLines(r io.Reader) (int, error) {
	buf := make([]byte, 64<<10)
	n := 0
	for {
		k, err := r.Read(buf)
		n += bytes.Count(buf[:k], []byte{'\n'})
		if err == io.EOF {
			return max(n-1, 0), nil
		}
		if err != nil {
			return 0, err
		}
	}
}

// JobStatus is how far a job got.
type JobStatus struct {
	ID               string
	Created          time.Time
	Actions, Pending int
}

// UnfinishedJobs lists the jobs for this engine's DPS that still have
// actions to do, newest first: runs that were interrupted, or that gave
// some actions up. A job directory that cannot be read is skipped.
func (e *Engine) UnfinishedJobs() ([]JobStatus, error) {
	entries, err := os.ReadDir(jobsDir(e.StateDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cleanup: list the jobs in %s: %w", jobsDir(e.StateDir), err)
	}
	var out []JobStatus
	for i := len(entries) - 1; i >= 0; i-- { // ids sort by creation time
		if !entries[i].IsDir() {
			continue
		}
		j, err := e.openJob(entries[i].Name(), false)
		if err != nil {
			continue
		}
		if pending := j.Pending(); pending > 0 {
			out = append(out, JobStatus{ID: j.ID, Created: j.Created, Actions: len(j.outcomes), Pending: pending})
		}
	}
	return out, nil
}

// Pending counts the actions not settled yet.
func (j *Job) Pending() int {
	n := 0
	for _, o := range j.outcomes {
		if !o.final() {
			n++
		}
	}
	return n
}

// outcomeLog is the job's outcome log, appended with group commit: the
// cost of fsync is shared by all workers instead of paid per delete.
type outcomeLog = journalfile.Log[logLine]

// openLog locks the job's log for this run, so that two processes never run
// one job at once, and brings the outcomes up to date: another process may
// have run the job since it was opened. A torn last line is cut off.
func (j *Job) openLog() (*outcomeLog, error) {
	l, err := journalfile.OpenLog[logLine](filepath.Join(j.dir, logFile), "cleanup: write the job log", j.apply)
	var damaged damagedLog
	switch {
	case errors.Is(err, journalfile.ErrLocked):
		return nil, fmt.Errorf("cleanup: job %s is %w; wait for it to finish, or stop it (ctrl+c there) and resume it here", j.ID, ErrJobRunning)
	case errors.As(err, &damaged):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("cleanup: open the log of job %s: %w", j.ID, err)
	}
	return l, nil
}
