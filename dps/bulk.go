package dps

import (
	"context"
	"errors"
	"net/http"
)

// RunEnrollmentBulk applies op.Mode to any number of individual enrollments,
// sending them MaxBulkItems at a time as DPS requires. The result lists every
// enrollment that failed: those DPS rejected, and every member of a call that
// failed as a whole (with that call's error code and message). It stops early,
// returning the result so far and the error, only when carrying on is
// pointless: the context ended, or the credentials were refused.
func (c *Client) RunEnrollmentBulk(ctx context.Context, op BulkEnrollmentOperation) (BulkEnrollmentOperationResult, error) {
	res := BulkEnrollmentOperationResult{IsSuccessful: true}
	for chunk := range chunks(op.Enrollments) {
		r, err := call[BulkEnrollmentOperationResult](ctx, c, "RunEnrollmentBulk", http.MethodPost, enrollmentsPath,
			BulkEnrollmentOperation{Mode: op.Mode, Enrollments: chunk}, nil)
		if err != nil {
			code, status := bulkCallError(err)
			for _, e := range chunk {
				res.Errors = append(res.Errors, BulkEnrollmentOperationError{RegistrationID: e.RegistrationID, ErrorCode: code, ErrorStatus: status})
			}
			res.IsSuccessful = false
			if stopBulk(ctx, err) {
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
	for chunk := range chunks(op.EnrollmentGroups) {
		r, err := call[BulkEnrollmentGroupOperationResult](ctx, c, "RunEnrollmentGroupBulk", http.MethodPost, groupsPath,
			BulkEnrollmentGroupOperation{Mode: op.Mode, EnrollmentGroups: chunk}, nil)
		if err != nil {
			code, status := bulkCallError(err)
			for _, g := range chunk {
				res.Errors = append(res.Errors, BulkEnrollmentGroupOperationError{EnrollmentGroupID: g.EnrollmentGroupID, ErrorCode: code, ErrorStatus: status})
			}
			res.IsSuccessful = false
			if stopBulk(ctx, err) {
				return res, err
			}
			continue
		}
		res.IsSuccessful = res.IsSuccessful && r.IsSuccessful && len(r.Errors) == 0
		res.Errors = append(res.Errors, r.Errors...)
	}
	return res, nil
}

// chunks yields s in consecutive pieces of at most MaxBulkItems.
func chunks[T any](s []T) func(func([]T) bool) {
	return func(yield func([]T) bool) {
		for len(s) > 0 {
			n := min(len(s), MaxBulkItems)
			if !yield(s[:n:n]) {
				return
			}
			s = s[n:]
		}
	}
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
