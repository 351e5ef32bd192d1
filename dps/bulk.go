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
	ctx = c.retryOnlyRefused(ctx)
	res := BulkEnrollmentOperationResult{IsSuccessful: true}
	for i := 0; i < len(op.Enrollments); i += MaxBulkItems {
		chunk := op.Enrollments[i:min(i+MaxBulkItems, len(op.Enrollments))]
		r, err := call[BulkEnrollmentOperationResult](ctx, c, "RunEnrollmentBulk", http.MethodPost, enrollmentsPath,
			BulkEnrollmentOperation{Mode: op.Mode, Enrollments: chunk}, nil)
		if err != nil {
			res.IsSuccessful = false
			stop := stopBulk(ctx, err)
			if stop {
				chunk = op.Enrollments[i:]
			}
			code, status := bulkCallError(err)
			for _, e := range chunk {
				res.Errors = append(res.Errors, BulkEnrollmentOperationError{RegistrationID: e.RegistrationID, ErrorCode: code, ErrorStatus: status})
			}
			if stop {
				return res, err
			}
			continue
		}
		res.IsSuccessful = res.IsSuccessful && r.IsSuccessful && len(r.Errors) == 0
		res.Errors = append(res.Errors, r.Errors...)
	}
	return res, nil
}

// RunEnrollmentGroupBulk is RunEnrollmentBulk for enrollment groups.
func (c *Client) RunEnrollmentGroupBulk(ctx context.Context, op BulkEnrollmentGroupOperation) (BulkEnrollmentGroupOperationResult, error) {
	ctx = c.retryOnlyRefused(ctx)
	res := BulkEnrollmentGroupOperationResult{IsSuccessful: true}
	for i := 0; i < len(op.EnrollmentGroups); i += MaxBulkItems {
		chunk := op.EnrollmentGroups[i:min(i+MaxBulkItems, len(op.EnrollmentGroups))]
		r, err := call[BulkEnrollmentGroupOperationResult](ctx, c, "RunEnrollmentGroupBulk", http.MethodPost, groupsPath,
			BulkEnrollmentGroupOperation{Mode: op.Mode, EnrollmentGroups: chunk}, nil)
		if err != nil {
			res.IsSuccessful = false
			stop := stopBulk(ctx, err)
			if stop {
				chunk = op.EnrollmentGroups[i:]
			}
			code, status := bulkCallError(err)
			for _, g := range chunk {
				res.Errors = append(res.Errors, BulkEnrollmentGroupOperationError{EnrollmentGroupID: g.EnrollmentGroupID, ErrorCode: code, ErrorStatus: status})
			}
			if stop {
				return res, err
			}
			continue
		}
		res.IsSuccessful = res.IsSuccessful && r.IsSuccessful && len(r.Errors) == 0
		res.Errors = append(res.Errors, r.Errors...)
	}
	return res, nil
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
