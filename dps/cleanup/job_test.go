package cleanup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/internal/filelock"
)

// One job, two processes: the second is refused while the first runs, and
// a job opened before another process ran part of it does not redo that
// part (nor trip over the torn line the other one left).
func TestJobRunsInOneProcessAtATime(t *testing.T) {
	f := startFixture(t, emulator.Options{})
	ctx := context.Background()
	f.seed(t, "gone", 10)
	plan, err := f.engine.Scan(ctx, ScanOptions{GroupIDs: []string{"gone"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	created, err := f.engine.NewJob(plan, Selection{})
	if err != nil {
		t.Fatal(err)
	}
	job, err := f.engine.OpenJob(created.ID) // as `cleanup --resume` does
	if err != nil {
		t.Fatal(err)
	}

	// "Another process" holds the log: flock locks belong to an open file,
	// so a second open here stands in for it.
	other, err := os.OpenFile(filepath.Join(job.dir, logFile), os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := filelock.TryLock(other); err != nil {
		t.Fatal(err)
	}
	if _, err := f.engine.Run(ctx, job, RunOptions{}, nil); !errors.Is(err, ErrJobRunning) {
		t.Fatalf("Run while another process runs the job: %v, want ErrJobRunning", err)
	}
	if len(f.wire.deletes()) != 0 {
		t.Fatal("a refused run sent deletes")
	}
	// It deletes three records, logs them and dies mid-line.
	for n := range 3 {
		if err := f.dps.DeleteRegistrationState(ctx, job.Actions[n].ID, nil); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(other, `{"n":%d,"o":"deleted"}`+"\n", n)
	}
	fmt.Fprint(other, `{"n":3,"o":"del`)
	other.Close()

	sum, err := f.engine.Run(ctx, job, RunOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(f.wire.deletes()) - 3; got != 7 {
		t.Errorf("the resumed run sent %d deletes, want 7 (the other process did 3)", got)
	}
	if n := sum.Outcomes[DeleteRecord][OutcomeDeleted]; n != 10 || len(job.Actions) != 10 {
		t.Errorf("summary: %v over %d actions; want 10 records deleted", sum.Outcomes, len(job.Actions))
	}
	if left := f.records(t, "gone"); len(left) != 0 {
		t.Errorf("records left: %v", left)
	}
	reopened, err := f.engine.OpenJob(job.ID)
	if err != nil {
		t.Fatalf("the log after the repair: %v", err)
	}
	if reopened.Pending() != 0 {
		t.Errorf("pending after the run: %d", reopened.Pending())
	}
}
