package tui

import (
	"context"
	"sync"
	"sync/atomic"

	tea "charm.land/bubbletea/v2"

	"github.com/dpsconsole/dpsconsole/dps"
)

// recordPageSize is the page size for registration-record queries: large
// enough to count a big group quickly, small enough for a fast first page.
const recordPageSize = 1000

// countRecords counts a group's registration records, stopping at limit
// (0 = no limit); more reports that it stopped early.
func countRecords(ctx context.Context, svc *dps.Client, groupID string, limit int) (n int, more bool, err error) {
	pager := svc.NewRegistrationStatePager(groupID, &dps.PagerOptions{PageSize: recordPageSize})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return n, false, err
		}
		n += len(page.Items)
		if limit > 0 && n >= limit && page.ContinuationToken != "" {
			return n, true, nil
		}
	}
	return n, false, nil
}

// recordIDs lists the registration IDs of a group, except those in skip.
func recordIDs(ctx context.Context, svc *dps.Client, groupID string, skip map[string]bool) ([]string, error) {
	var ids []string
	pager := svc.NewRegistrationStatePager(groupID, &dps.PagerOptions{PageSize: recordPageSize})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return ids, err
		}
		for _, r := range page.Items {
			if !skip[r.RegistrationID] {
				ids = append(ids, r.RegistrationID)
			}
		}
	}
	return ids, nil
}

// deleteProgress is reported while registration records are deleted; the
// last one has done set.
type deleteProgress struct {
	ch              <-chan deleteProgress
	deleted, failed int
	total           int
	firstErr        error
	gone            map[string]bool
	done            bool
}

// deleteWorkers bounds concurrent deletes (the client retries throttling).
const deleteWorkers = 4

// startDeleteRecords deletes the given records (or, with ids nil, every
// record of groupID except skip) in a goroutine and streams progress.
// The goroutine starts when the Cmd runs, not in Update.
func startDeleteRecords(ctx context.Context, to int, svc *dps.Client, groupID string, ids []string, skip map[string]bool) tea.Cmd {
	return do(to, func() tea.Msg {
		ch := make(chan deleteProgress, 16)
		go deleteRecords(ctx, ch, svc, groupID, ids, skip)
		return <-ch
	})
}

func deleteRecords(ctx context.Context, ch chan deleteProgress, svc *dps.Client, groupID string, ids []string, skip map[string]bool) {
	defer close(ch)
	if ids == nil {
		var err error
		if ids, err = recordIDs(ctx, svc, groupID, skip); err != nil {
			ch <- deleteProgress{ch: ch, firstErr: err, done: true}
			return
		}
	}
	total := len(ids)
	var deleted, failed atomic.Int64
	var mu sync.Mutex
	var firstErr error
	gone := make(map[string]bool, len(ids))
	work := make(chan string)
	var wg sync.WaitGroup
	for range deleteWorkers {
		wg.Go(func() {
			for id := range work {
				err := svc.DeleteRegistrationState(ctx, id, nil)
				mu.Lock()
				if err != nil && !dps.IsNotFound(err) {
					failed.Add(1)
					if firstErr == nil {
						firstErr = err
					}
				} else {
					deleted.Add(1)
					gone[id] = true
				}
				mu.Unlock()
			}
		})
	}
	reportEvery := max(total/100, 1)
	for i, id := range ids {
		if ctx.Err() != nil {
			break
		}
		work <- id
		// Reports never block and always leave room for the final one, so
		// the goroutine ends even when its view was closed.
		if i%reportEvery == 0 && len(ch) < cap(ch)-1 {
			ch <- deleteProgress{ch: ch, deleted: int(deleted.Load()), failed: int(failed.Load()), total: total}
		}
	}
	close(work)
	wg.Wait()
	ch <- deleteProgress{ch: ch, deleted: int(deleted.Load()), failed: int(failed.Load()), total: total, firstErr: firstErr, gone: gone, done: true}
}

func listenDelete(to int, ch <-chan deleteProgress) tea.Cmd {
	return do(to, func() tea.Msg {
		p, ok := <-ch
		if !ok {
			return deleteProgress{done: true}
		}
		return p
	})
}
