package dps

import (
	"context"
	"net/http"
	"strconv"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
)

// Paging headers (dps-protocol.md §1.4).
const (
	headerMaxItemCount = "x-ms-max-item-count"
	headerContinuation = "x-ms-continuation"
)

// PagerOptions configures a query pager.
type PagerOptions struct {
	// PageSize asks for at most this many items a page (x-ms-max-item-count);
	// 0 leaves it to the service.
	PageSize int32
	// ContinuationToken resumes a listing where an earlier page left off.
	ContinuationToken string
}

// Query bodies: DPS treats any query string as "all"; nil sends no body.
var (
	queryAll = &QuerySpecification{Query: "*"}
	noQuery  *QuerySpecification
)

// newQueryPager pages a DPS query: each page is a POST carrying the previous
// page's x-ms-continuation; the last page has none, so More stops there.
func newQueryPager[T, P any](c *Client, name, path string, pathErr error, query *QuerySpecification, opts *PagerOptions,
	makePage func([]T, string) P, token func(P) string) *runtime.Pager[P] {
	var o PagerOptions
	if opts != nil {
		o = *opts
	}
	return runtime.NewPager(runtime.PagingHandler[P]{
		More: func(p P) bool { return token(p) != "" },
		Fetcher: func(ctx context.Context, cur *P) (page P, err error) {
			if pathErr != nil {
				return page, pathErr
			}
			ctx, endSpan := runtime.StartSpan(ctx, "Client."+name, c.tracer(), nil)
			defer func() { endSpan(err) }()
			next := o.ContinuationToken
			if cur != nil {
				next = token(*cur)
			}
			req, err := c.queryCreateRequest(ctx, path, query, o.PageSize, next)
			if err != nil {
				return page, err
			}
			resp, err := c.do(req, http.StatusOK)
			if err != nil {
				return page, err
			}
			var items []T
			if err = runtime.UnmarshalAsJSON(resp, &items); err != nil {
				return page, err
			}
			return makePage(items, resp.Header.Get(headerContinuation)), nil
		},
		Tracer: c.tracer(),
	})
}

func (c *Client) queryCreateRequest(ctx context.Context, path string, query *QuerySpecification, pageSize int32, continuation string) (*policy.Request, error) {
	req, err := c.newRequest(ctx, http.MethodPost, path, nil)
	if err != nil {
		return nil, err
	}
	if pageSize > 0 {
		req.Raw().Header.Set(headerMaxItemCount, strconv.Itoa(int(pageSize)))
	}
	if continuation != "" {
		req.Raw().Header.Set(headerContinuation, continuation)
	}
	if query != nil {
		if err := runtime.MarshalAsJSON(req, query); err != nil {
			return nil, err
		}
	}
	return req, nil
}
