package dps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	// Prefetch requests the next page as soon as a page's headers arrive, so
	// the service prepares it while this page is decoded and handled. It
	// suits reading a whole listing; a caller that may stop early wastes one
	// request (one billed operation on DPS).
	Prefetch bool
}

// Query bodies: DPS treats any query string as "all"; nil sends no body.
var (
	queryAll = &QuerySpecification{Query: "*"}
	noQuery  *QuerySpecification
)

// newQueryPager pages a DPS query: each page is a POST carrying the previous
// page's x-ms-continuation; the last page has none, so More stops there.
func newQueryPager[T, P any](c *Client, name, path string, pathErr error, query *QuerySpecification, opts *PagerOptions,
	decode func([]byte) ([]T, error), makePage func([]T, string) P, token func(P) string) *runtime.Pager[P] {
	var o PagerOptions
	if opts != nil {
		o = *opts
	}
	fetch := func(ctx context.Context, continuation string) pageResponse {
		req, err := c.queryCreateRequest(withWholeBody(ctx), path, query, o.PageSize, continuation)
		if err != nil {
			return pageResponse{err: err}
		}
		runtime.SkipBodyDownload(req) // wholeBody reads it
		resp, err := c.do(req, http.StatusOK)
		return pageResponse{resp, err}
	}
	var prefetched chan pageResponse // the next page, when Prefetch is on
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
			var r pageResponse
			if prefetched != nil {
				r, prefetched = <-prefetched, nil
				// The prefetch ran under the previous call's context; if that
				// one ended, fetch again under this one.
				if r.err != nil && ctx.Err() == nil && (errors.Is(r.err, context.Canceled) || errors.Is(r.err, context.DeadlineExceeded)) {
					r = fetch(ctx, next)
				}
			} else {
				r = fetch(ctx, next)
			}
			if r.err != nil {
				return page, r.err
			}
			next = r.resp.Header.Get(headerContinuation)
			if o.Prefetch && next != "" {
				prefetched = make(chan pageResponse, 1)
				go func(ch chan<- pageResponse) { ch <- fetch(ctx, next) }(prefetched)
			}
			body, err := pageBody(r.resp)
			if err != nil {
				return page, err
			}
			items, err := decode(body)
			if err != nil {
				return page, fmt.Errorf("dps: decode a %s page: %w", name, err)
			}
			return makePage(items, next), nil
		},
		Tracer: c.tracer(),
	})
}

type pageResponse struct {
	resp *http.Response
	err  error
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

// decodeJSON is the decoder of pages with no faster one.
func decodeJSON[T any](body []byte) ([]T, error) {
	var items []T
	err := json.Unmarshal(body, &items)
	return items, err
}
