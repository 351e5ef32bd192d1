package tui

import (
	"context"

	tea "charm.land/bubbletea/v2"
)

// streamJob is a view's background job run with runStream: running while
// cancel is set; gen drops what a stopped or replaced job still sends.
type streamJob struct {
	cancel context.CancelFunc
	gen    int
}

func (j *streamJob) running() bool { return j.cancel != nil }

// start stops any job under way and returns the context of a new one.
func (j *streamJob) start(parent context.Context) context.Context {
	j.stop()
	ctx, cancel := context.WithCancel(parent)
	j.cancel = cancel
	return ctx
}

// stop cancels the job under way; whatever it still sends is stale.
func (j *streamJob) stop() {
	j.finished()
	j.gen++
}

// finished forgets the job once its end arrived (releasing its context).
func (j *streamJob) finished() {
	if j.cancel != nil {
		j.cancel()
		j.cancel = nil
	}
}

// streamMsg carries a background job's latest progress, or (end) its
// result; next listens for the message after it.
type streamMsg[P, R any] struct {
	gen      int
	ch       <-chan streamMsg[P, R]
	progress P
	result   R
	err      error
	end      bool
}

func (m streamMsg[P, R]) next(to int) tea.Cmd {
	return do(to, func() tea.Msg { return <-m.ch })
}

// runStream runs work in a goroutine and delivers its progress and its end
// to view `to`, one message at a time. Progress never blocks the work: when
// the console is behind, snapshots are dropped (the next one says more),
// keeping room for the end.
func runStream[P, R any](to, gen int, work func(report func(P)) (R, error)) tea.Cmd {
	return do(to, func() tea.Msg {
		ch := make(chan streamMsg[P, R], 8)
		go func() {
			r, err := work(func(p P) {
				if len(ch) < cap(ch)-1 {
					ch <- streamMsg[P, R]{gen: gen, ch: ch, progress: p}
				}
			})
			ch <- streamMsg[P, R]{gen: gen, ch: ch, result: r, err: err, end: true}
		}()
		return <-ch
	})
}
