package dps

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
)

// WriteOptions are the options of a create-or-update or delete.
type WriteOptions struct {
	// IfMatch makes the write conditional on the record's current ETag; DPS
	// answers 412 when it no longer matches (see IsPreconditionFailed). Nil or
	// azcore.ETagAny means unconditional.
	IfMatch *azcore.ETag
}

// newRequest builds a request for path (already escaped) with the
// api-version and, when opts has one, If-Match.
func (c *Client) newRequest(ctx context.Context, method, path string, opts *WriteOptions) (*policy.Request, error) {
	req, err := runtime.NewRequest(ctx, method, runtime.JoinPaths(c.endpoint, path))
	if err != nil {
		return nil, err
	}
	q := req.Raw().URL.Query()
	q.Set("api-version", APIVersion)
	req.Raw().URL.RawQuery = q.Encode()
	req.Raw().Header.Set("Accept", "application/json")
	if opts != nil && opts.IfMatch != nil {
		req.Raw().Header.Set("If-Match", string(*opts.IfMatch))
	}
	return req, nil
}

// idPath joins a collection and an escaped ID, refusing an empty ID (which
// would address the collection instead).
func idPath(collection, what, id string, suffix ...string) (string, error) {
	if id == "" {
		return "", errors.New("dps: the " + what + " is empty")
	}
	p := collection + "/" + url.PathEscape(id)
	for _, s := range suffix {
		p += "/" + s
	}
	return p, nil
}

// do sends req and returns the response when its status is one of want,
// else DPS's error as an *azcore.ResponseError.
func (c *Client) do(req *policy.Request, want ...int) (*http.Response, error) {
	resp, err := c.pipeline().Do(req)
	if err != nil {
		return nil, err
	}
	if !runtime.HasStatusCode(resp, want...) {
		err := newResponseError(resp)
		if c.SignedIn() {
			err = NewAccessError(err, "DPS", c.resourceID, req.Raw(), dpsDataAction)
		}
		return nil, err
	}
	return resp, nil
}

// call runs one JSON operation: create the request, send it, decode a 200 body
// into T. It is the shared "do + handle response" of every typed operation.
func call[T any](ctx context.Context, c *Client, name, method, path string, body any, opts *WriteOptions) (result T, err error) {
	ctx, endSpan := runtime.StartSpan(ctx, "Client."+name, c.tracer(), nil)
	defer func() { endSpan(err) }()
	req, err := c.newRequest(ctx, method, path, opts)
	if err != nil {
		return result, err
	}
	if body != nil {
		if err = runtime.MarshalAsJSON(req, body); err != nil {
			return result, err
		}
	}
	resp, err := c.do(req, http.StatusOK, http.StatusCreated)
	if err != nil {
		return result, err
	}
	err = runtime.UnmarshalAsJSON(resp, &result)
	return result, err
}

// callNoContent runs an operation that answers 204 (or 200) with no body
// worth reading: the deletes.
func (c *Client) callNoContent(ctx context.Context, name, method, path string, opts *WriteOptions) (err error) {
	ctx, endSpan := runtime.StartSpan(ctx, "Client."+name, c.tracer(), nil)
	defer func() { endSpan(err) }()
	req, err := c.newRequest(ctx, method, path, opts)
	if err != nil {
		return err
	}
	_, err = c.do(req, http.StatusNoContent, http.StatusOK)
	return err
}
