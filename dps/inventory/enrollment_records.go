package inventory

import (
	"context"
	"sync"

	"github.com/dpsconsole/dpsconsole/dps"
)

// lookupsInFlight is how many individual enrollments' records are read at
// once: enough to hide the round trip, few enough for DPS's throttle.
const lookupsInFlight = 8

// eachEnrollmentRecord reads the record of each registration ID (a page of
// individual enrollments) and hands those that exist to fn, in the IDs'
// order. DPS's enrollment query leaves registrationState out (only GET of
// one enrollment carries it; azure-iot-sdk-csharp issue #3478), so each
// record costs a request; an enrollment whose device never registered has
// none (404) and is skipped.
func eachEnrollmentRecord[T any](ctx context.Context, ids []string, get func(context.Context, string) (T, error), fn func(T) error) error {
	type result struct {
		v   T
		err error
	}
	results := make([]result, len(ids))
	sem := make(chan struct{}, lookupsInFlight)
	var wg sync.WaitGroup
	for i, id := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			v, err := get(ctx, id)
			results[i] = result{v, err}
		})
	}
	wg.Wait()
	for _, r := range results {
		switch {
		case dps.IsNotFound(r.err):
		case r.err != nil:
			return r.err
		default:
			if err := fn(r.v); err != nil {
				return err
			}
		}
	}
	return nil
}
