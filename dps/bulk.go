package dps

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// RunEnrollmentBulk applies op.Mode to any number of individual enrollments,
// sending them MaxBulkItems at a time as DPS requires. The result lists every
// enrollment that failed: those DPS rejected, and every member of a call that
// failed as a whole (with that call's error code and message). It stops early
// only when carrying on is pointless (the context ended, or the credentials
// were refused) and then returns that error too, with every enrollment not
// yet applied listed as failed: res.Errors always names every enrollment that
// was not applied.
func (c *Client) RunEnrollmentBulk(ctx context.Context, op BulkEnrollmentOperation) (BulkEnrollmentOperationResult, error) {
	ok, errs, err := runBulk(ctx, c, op.Enrollments,
		func(ctx context.Context, chunk []IndividualEnrollment) (bool, []BulkEnrollmentOperationError, error) {
			r, err := call[BulkEnrollmentOperationResult](ctx, c, "RunEnrollmentBulk", http.MethodPost, enrollmentsPath,
				BulkEnrollmentOperation{Mode: op.Mode, Enrollments: chunk}, nil)
			return r.IsSuccessful, r.Errors, err
		},
		func(e IndividualEnrollment, code int32, status string) BulkEnrollmentOperationError {
			return BulkEnrollmentOperationError{RegistrationID: e.RegistrationID, ErrorCode: code, ErrorStatus: status}
		})
	return BulkEnrollmentOperationResult{IsSuccessful: ok, Errors: errs}, err
}

// RunEnrollmentGroupBulk is RunEnrollmentBulk for enrollment groups.
func (c *Client) RunEnrollmentGroupBulk(ctx context.Context, op BulkEnrollmentGroupOperation) (BulkEnrollmentGroupOperationResult, error) {
	ok, errs, err := runBulk(ctx, c, op.EnrollmentGroups,
		func(ctx context.Context, chunk []EnrollmentGroup) (bool, []BulkEnrollmentGroupOperationError, error) {
			r, err := call[BulkEnrollmentGroupOperationResult](ctx, c, "RunEnrollmentGroupBulk", http.MethodPost, groupsPath,
				BulkEnrollmentGroupOperation{Mode: op.Mode, EnrollmentGroups: chunk}, nil)
			return r.IsSuccessful, r.Errors, err
		},
		func(g EnrollmentGroup, code int32, status string) BulkEnrollmentGroupOperationError {
			return BulkEnrollmentGroupOperationError{EnrollmentGroupID: g.EnrollmentGroupID, ErrorCode: code, ErrorStatus: status}
		})
	return BulkEnrollmentGroupOperationResult{IsSuccessful: ok, Errors: errs}, err
}

// runBulk sends items MaxBulkItems at a time with send and gathers the
// per-member errors; failed makes the error of a member of a call that
// failed as a whole (see RunEnrollmentBulk).
func runBulk[T, E any](ctx context.Context, c *Client, items []T,
	send func(ctx context.Context, chunk []T) (ok bool, errs []E, err error),
	failed func(item T, code int32, status string) E,
) (ok bool, errs []E, err error) {
	ctx = c.retryOnlyRefused(ctx)
	ok = true
	for i := 0; i < len(items); i += MaxBulkItems {
		chunk := items[i:min(i+MaxBulkItems, len(items))]
		chunkOK, chunkErrs, err := send(ctx, chunk)
		if err != nil {
			ok = false
			stop := stopBulk(ctx, err)
			if stop {
				chunk = items[i:]
			}
			code, status := bulkCallError(err)
			for _, it := range chunk {
				errs = append(errs, failed(it, code, status))
			}
			if stop {
				return ok, errs, err
			}
			continue
		}
		ok = ok && chunkOK && len(chunkErrs) == 0
		errs = append(errs, chunkErrs...)
	}
	return ok, errs, nil
}

// retryOnlyRefused limits retries of a bulk call to answers that say it was
// not applied (throttled, unavailable). A bulk call is not idempotent: after a
// dropped connection it may have been applied, and a retried create would then
// report every member as "already exists".
func (c *Client) retryOnlyRefused(ctx context.Context) context.Context {
	o := c.retry
	o.ShouldRetry = func(resp *http.Response, err error) bool {
		return err == nil && resp != nil && slices.Contains(retryStatuses, resp.StatusCode)
	}
	return policy.WithRetryOptions(ctx, o)
}

// retryStatuses are the statuses azcore retries by default.
var retryStatuses = []int{http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
	http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}

// bulkCallError is what each member of a failed bulk call is reported with.
func bulkCallError(err error) (int32, string) {
	if statusOf(err) == 0 {
		return 0, ErrorMessage(err) + " (no answer arrived, so whether this call was applied is unknown: check before retrying)"
	}
	code := ErrorCodeOf(err)
	if code == 0 {
		code = int32(statusOf(err)) * 1000
	}
	return code, ErrorMessage(err)
}

// stopBulk reports whether no later bulk call can succeed either.
func stopBulk(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	s := statusOf(err)
	return s == http.StatusUnauthorized || s == http.StatusForbidden
}
