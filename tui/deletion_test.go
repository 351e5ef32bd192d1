package tui

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/dpsconsole/dpsconsole/dps"
)

// pump runs cmd as the Program would and feeds its results to v, one at a
// time, until the chain of Cmds ends (a batch ends it too: the deletion's
// end) or stop says so; each message is passed to seen first.
func pump(t *testing.T, v view, cmd tea.Cmd, timeout time.Duration, seen func(tea.Msg) (stop bool)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for cmd != nil {
		done := make(chan tea.Msg, 1)
		go func() { done <- cmd() }()
		var msg tea.Msg
		select {
		case msg = <-done:
		case <-time.After(time.Until(deadline)):
			t.Fatalf("no message within %s", timeout)
		}
		r, ok := msg.(routed)
		if !ok {
			return
		}
		if seen(r.msg) {
			return
		}
		cmd = v.Update(r.msg)
	}
}

// millionRecords is a group of a million records with a real DPS's costs:
// a page of 1,000 takes 20 ms to list (so listing them all takes 20 s, as
// it does against DPS), a delete 1 ms.
type millionRecords struct {
	n       int
	pages   atomic.Int64
	deletes atomic.Int64
	// pagesAtFirstDelete is how many pages were listed when the first
	// delete went out.
	pagesAtFirstDelete atomic.Int64
}

func (f *millionRecords) NewRegistrationStatePager(groupID string, opts *dps.PagerOptions) *runtime.Pager[dps.RegistrationStatePage] {
	return runtime.NewPager(runtime.PagingHandler[dps.RegistrationStatePage]{
		More: func(p dps.RegistrationStatePage) bool { return p.ContinuationToken != "" },
		Fetcher: func(ctx context.Context, p *dps.RegistrationStatePage) (dps.RegistrationStatePage, error) {
			from := 0
			if p != nil {
				fmt.Sscan(p.ContinuationToken, &from)
			}
			select {
			case <-time.After(20 * time.Millisecond):
			case <-ctx.Done():
				return dps.RegistrationStatePage{}, ctx.Err()
			}
			f.pages.Add(1)
			var page dps.RegistrationStatePage
			for i := from; i < min(from+recordPageSize, f.n); i++ {
				page.Items = append(page.Items, dps.DeviceRegistrationState{RegistrationID: fmt.Sprintf("dev-%07d", i)})
			}
			if next := from + recordPageSize; next < f.n {
				page.ContinuationToken = fmt.Sprint(next)
			}
			return page, nil
		},
	})
}

func (f *millionRecords) DeleteRegistrationState(ctx context.Context, id string, _ *dps.WriteOptions) error {
	if f.deletes.Add(1) == 1 {
		f.pagesAtFirstDelete.Store(f.pages.Load())
	}
	time.Sleep(time.Millisecond)
	return nil
}

// markAllAndConfirm marks every record of the group view (n in all), asks
// to delete them and says yes; it returns the Cmd that starts the deletion.
func markAllAndConfirm(t *testing.T, v *groupView, n int) tea.Cmd {
	t.Helper()
	v.table.ToggleMarkAll()
	v.table.SetAllCount(n)
	v.Update(press("d"))
	if v.confirm == nil {
		t.Fatal("d should ask first")
	}
	cmd := v.Update(press("y"))
	if v.deleting == nil || cmd == nil {
		t.Fatal("y should start the deletion")
	}
	return cmd
}

// Deleting a million records shows the rate and the ETA within the first
// second: the first page's deletes go out while the rest is still listed.
// ctrl+x then stops the deletion, keeping the rest.
func TestGroupViewMillionRecordDeletionShowsRateAndETAAtOnce(t *testing.T) {
	c := testCommon(t, 120, 30)
	v := newGroupView(c, "big")
	src := &millionRecords{n: 1_000_000}
	v.records = src
	start := time.Now()
	var first *deleteProgress
	var final deleteProgress
	pump(t, v, markAllAndConfirm(t, v, src.n), 10*time.Second, func(msg tea.Msg) bool {
		p, ok := msg.(deleteProgress)
		if !ok {
			return false
		}
		if p.done {
			final = p
			return false
		}
		if first == nil && p.deleted > 0 {
			first = &p
			if time.Since(start) > time.Second {
				t.Fatalf("the first deletes were reported after %s", time.Since(start))
			}
			t.Logf("first progress after %s: %d/%d, %.0f deletes/s, ETA %s", time.Since(start).Round(time.Millisecond), p.deleted, p.total, p.rate, p.eta.Round(time.Second))
			v.Update(p)
			out := plain(v.View())
			if p.rate <= 0 || p.eta <= 0 || p.total != src.n || !strings.Contains(out, "/1000000") ||
				!strings.Contains(out, "deletes/s  ETA ") || !strings.Contains(out, "ctrl+x stops") {
				t.Fatalf("first progress %+v lacks the rate and ETA:\n%s", p, out)
			}
			v.Update(press("ctrl+x"))
		}
		return false
	})
	if first == nil || !final.stopped || final.deleted == 0 || final.deleted >= src.n || v.deleting != nil {
		t.Fatalf("the deletion should have run and stopped: first %+v, final deleted %d stopped %v", first, final.deleted, final.stopped)
	}
	if n := src.pagesAtFirstDelete.Load(); n != 1 {
		t.Fatalf("%d pages were listed before the first delete, want 1", n)
	}
}

// The same on the emulator: with every record marked across pages, the
// first delete goes out once the first page is listed, not after all of them.
func TestGroupViewDeletesWhileListing(t *testing.T) {
	target, emu := startEmulator(t, 0)
	if err := emu.SeedRegistrations(context.Background(), "big", 4000); err != nil {
		t.Fatal(err)
	}
	c := testCommon(t, 120, 30)
	c.Target = target
	v := newGroupView(c, "big")
	w := &countingSource{recordSource: target.Service}
	v.records = w
	var final deleteProgress
	pump(t, v, markAllAndConfirm(t, v, 4000), 60*time.Second, func(msg tea.Msg) bool {
		if p, ok := msg.(deleteProgress); ok && p.done {
			final = p
		}
		return false
	})
	if final.deleted != 4000 || final.failed != 0 {
		t.Fatalf("final %+v", final)
	}
	if n := w.pagesAtFirstDelete.Load(); n != 1 {
		t.Fatalf("%d pages were listed before the first delete, want 1", n)
	}
	if n, _, err := countRecords(context.Background(), target.Service, "big", 0); err != nil || n != 0 {
		t.Fatalf("%d records left (%v)", n, err)
	}
}

type countingSource struct {
	recordSource
	pages, deletes, pagesAtFirstDelete atomic.Int64
}

func (c *countingSource) NewRegistrationStatePager(groupID string, opts *dps.PagerOptions) *runtime.Pager[dps.RegistrationStatePage] {
	inner := c.recordSource.NewRegistrationStatePager(groupID, opts)
	return runtime.NewPager(runtime.PagingHandler[dps.RegistrationStatePage]{
		More: func(dps.RegistrationStatePage) bool { return inner.More() },
		Fetcher: func(ctx context.Context, _ *dps.RegistrationStatePage) (dps.RegistrationStatePage, error) {
			p, err := inner.NextPage(ctx)
			c.pages.Add(1)
			return p, err
		},
	})
}

func (c *countingSource) DeleteRegistrationState(ctx context.Context, id string, opts *dps.WriteOptions) error {
	if c.deletes.Add(1) == 1 {
		c.pagesAtFirstDelete.Store(c.pages.Load())
	}
	return c.recordSource.DeleteRegistrationState(ctx, id, opts)
}

// A DPS that stops answering is shown as such, live, with the retries; the
// deletion does not sit silently, and ctrl+x stops it.
func TestGroupViewSaysWhenDPSStopsAnswering(t *testing.T) {
	requestTimeout = 200 * time.Millisecond
	t.Cleanup(func() { requestTimeout = 10 * time.Second })
	c := testCommon(t, 160, 30)
	v := newGroupView(c, "g")
	v.records = stalledService(t)
	v.table.Append([]record{{id: "a"}, {id: "b"}}, false)
	v.table.ToggleMark()
	v.table.MoveBy(1)
	v.table.ToggleMark()
	v.Update(press("d"))
	cmd := v.Update(press("y"))
	var shown string
	var final deleteProgress
	pump(t, v, cmd, 10*time.Second, func(msg tea.Msg) bool {
		p, ok := msg.(deleteProgress)
		if !ok {
			return false
		}
		if p.done {
			final = p
			return false
		}
		if p.silent >= 2500*time.Millisecond && shown == "" {
			v.Update(p)
			shown = plain(v.View())
			v.Update(press("ctrl+x"))
		}
		return false
	})
	if !strings.Contains(shown, "DPS not answering for 2 s, retrying (") || !strings.Contains(shown, "attempts retried, 0 failed); ctrl+x stops") {
		t.Fatalf("the view should say DPS is not answering:\n%s", shown)
	}
	if !final.stopped || final.retries < 4 || final.deleted != 0 {
		t.Fatalf("final %+v: want stopped, with the timed-out attempts retried", final)
	}
}

// rejecting answers every delete with a long 400, as DPS does for a bad request.
type rejecting struct{ millionRecords }

func (r *rejecting) DeleteRegistrationState(ctx context.Context, id string, _ *dps.WriteOptions) error {
	req, _ := http.NewRequest(http.MethodDelete, "https://dps.example/registrations/"+id, nil)
	body := fmt.Sprintf(`{"errorCode":400004,"trackingId":"t-%s","message":"the record %s cannot be deleted now because %s"}`, id, id, strings.Repeat("of a long reason ", 8))
	return runtime.NewResponseError(&http.Response{StatusCode: http.StatusBadRequest, Status: "400 Bad Request", Request: req,
		Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body))})
}

// The end of a deletion lists every failure in full, in a report that
// scrolls, not one line cut at the screen's edge.
func TestGroupViewReportsEveryFailureInFull(t *testing.T) {
	c := testCommon(t, 80, 20)
	v := newGroupView(c, "g")
	v.records = &rejecting{millionRecords{n: 40}}
	var opened view
	for i := range 40 {
		v.table.Append([]record{{id: fmt.Sprintf("dev-%07d", i)}}, false)
	}
	for range 40 {
		v.table.ToggleMark()
		v.table.MoveBy(1)
	}
	v.Update(press("d"))
	pump(t, v, v.Update(press("y")), 20*time.Second, func(msg tea.Msg) bool {
		if p, ok := msg.(deleteProgress); ok && p.done {
			opened = openedBy(v.Update(p))
			return true
		}
		return false
	})
	if opened == nil {
		t.Fatal("no report after a deletion with failures")
	}
	opened.SetSize(c.Width, c.Height)
	out := plain(opened.View())
	if !strings.Contains(out, "deleted 0 of 40 records of g; 40 failed") || !strings.Contains(out, "40 failures") ||
		!strings.Contains(out, "lines 1–19 of") {
		t.Fatalf("report:\n%s", out)
	}
	var all strings.Builder
	for range 9 { // 164 lines, 19 a page
		page := strings.Split(plain(opened.View()), "\n")
		all.WriteString(strings.Join(page[:len(page)-1], "\n") + "\n") // without the position line
		opened.Update(press("pgdown"))
	}
	// Wrapping may break a line at any space or hyphen.
	squeeze := func(s string) string { return strings.Join(strings.Fields(s), "") }
	text := squeeze(all.String())
	for i := range 40 {
		id := fmt.Sprintf("dev-%07d", i)
		if !strings.Contains(text, squeeze("the record "+id+" cannot be deleted now because"+strings.Repeat(" of a long reason", 8))) ||
			!strings.Contains(text, squeeze("tracking ID t-"+id)) {
			t.Fatalf("the report lacks the whole failure of %s:\n%s", id, all.String())
		}
	}
}

// stalledService is a DPS client for a listener that accepts connections
// and never answers: a DPS that has hung.
func stalledService(t *testing.T) *dps.Client {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		var held []net.Conn // open, never read or written
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, conn)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	key := base64.StdEncoding.EncodeToString(make([]byte, 32))
	svc, err := dps.NewClientFromConnectionString("HostName="+ln.Addr().String()+";SharedAccessKeyName=provisioningserviceowner;SharedAccessKey="+key, nil)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// openedBy finds the view a Cmd (or a batch of them) opens.
func openedBy(cmd tea.Cmd) view {
	if cmd == nil {
		return nil
	}
	switch m := cmd().(type) {
	case openMsg:
		return m.v
	case tea.BatchMsg:
		for _, c := range m {
			if v := openedBy(c); v != nil {
				return v
			}
		}
	}
	return nil
}
