package dps

import (
	"context"
	"errors"
	"net/http"
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

// bulkCallError is what each member of a failed bulk call is reported with.
func bulkCallError(err error) (int32, string) {
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
