package dps

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
)

// RawPage is one page of a query with each item exactly as the service sent
// it: for passing records through (JSON lines, exports) and for counting
// them, neither of which needs them decoded.
type RawPage struct {
	// Items are slices of the page's body, one whole JSON value each.
	Items []json.RawMessage
	// ContinuationToken fetches the next page; "" on the last one.
	ContinuationToken string
}

// NewRawRegistrationStatePager is NewRegistrationStatePager with the
// records left undecoded.
func (c *Client) NewRawRegistrationStatePager(groupID string, opts *PagerOptions) *runtime.Pager[RawPage] {
	path, err := registrationQueryPath(groupID)
	return newRawPager(c, "NewRawRegistrationStatePager", path, err, noQuery, opts)
}

// NewRawEnrollmentGroupPager is NewEnrollmentGroupPager with the groups left
// undecoded.
func (c *Client) NewRawEnrollmentGroupPager(opts *PagerOptions) *runtime.Pager[RawPage] {
	return newRawPager(c, "NewRawEnrollmentGroupPager", groupsQueryPath, nil, queryAll, opts)
}

// NewRawEnrollmentPager is NewEnrollmentPager with the enrollments left
// undecoded.
func (c *Client) NewRawEnrollmentPager(opts *PagerOptions) *runtime.Pager[RawPage] {
	return newRawPager(c, "NewRawEnrollmentPager", enrollmentsQueryPath, nil, queryAll, opts)
}

func newRawPager(c *Client, name, path string, pathErr error, query *QuerySpecification, opts *PagerOptions) *runtime.Pager[RawPage] {
	return newQueryPager(c, name, path, pathErr, query, opts, splitJSONArray,
		func(items []json.RawMessage, token string) RawPage {
			return RawPage{Items: items, ContinuationToken: token}
		},
		func(p RawPage) string { return p.ContinuationToken })
}

var errNotArray = errors.New("the page is not a JSON array of objects")

// splitJSONArray cuts a page (a JSON array of objects) into its items
// without decoding them: one pass that follows strings and nesting, a few
// times cheaper than validating the page with encoding/json. It checks the
// structure (brackets matched, strings closed, items separated by commas) —
// enough to never cut an item in two — and leaves the items' contents to
// whoever reads them.
func splitJSONArray(data []byte) ([]json.RawMessage, error) {
	s := scanner{b: data}
	s.space()
	if !s.consume('[') {
		return nil, errNotArray
	}
	items := make([]json.RawMessage, 0, len(data)/256+1) // records are about 300 bytes
	s.space()
	if !s.consume(']') {
		for {
			s.space()
			start := s.i
			if s.i >= len(s.b) || s.b[s.i] != '{' || !s.skipNested() {
				return nil, errNotArray
			}
			items = append(items, json.RawMessage(s.b[start:s.i:s.i]))
			s.space()
			if s.consume(']') {
				break
			}
			if !s.consume(',') {
				return nil, errNotArray
			}
		}
	}
	s.space()
	if s.i != len(s.b) {
		return nil, errNotArray
	}
	return items, nil
}

// skipNested moves past the object or array starting at s.i; false when it
// is not closed, or closed by the wrong bracket. It works on locals (the
// compiler keeps them in registers) and jumps over strings with
// bytes.IndexByte: a record is mostly strings.
func (s *scanner) skipNested() bool {
	var stack []byte // open brackets beyond the first (records nest 2–3 deep)
	var first [8]byte
	stack = first[:0]
	b, i := s.b, s.i
	for i < len(b) {
		c := b[i]
		i++
		switch c {
		case '{', '[':
			stack = append(stack, c)
		case '}', ']':
			if len(stack) == 0 || stack[len(stack)-1] != c-2 { // '{'+2 == '}', '['+2 == ']'
				s.i = i
				return false
			}
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				s.i = i
				return true
			}
		case '"':
			if i = stringEnd(b, i); i < 0 {
				s.i = len(b)
				return false
			}
		}
	}
	s.i = i
	return false
}

// stringEnd returns the index just past the closing quote of the string
// whose content starts at start, or -1 when it is not closed. A quote is
// escaped when an odd run of backslashes (inside the string) precedes it.
func stringEnd(b []byte, start int) int {
	for i := start; ; {
		q := bytes.IndexByte(b[i:], '"')
		if q < 0 {
			return -1
		}
		end := i + q
		k := end
		for k > start && b[k-1] == '\\' {
			k--
		}
		if (end-k)%2 == 0 {
			return end + 1
		}
		i = end + 1
	}
}

// GetRawRegistrationState is GetRegistrationState with the record left as
// the service sent it.
func (c *Client) GetRawRegistrationState(ctx context.Context, registrationID string) (_ json.RawMessage, err error) {
	path, err := idPath(registrationsPath, "registration ID", registrationID)
	if err != nil {
		return nil, err
	}
	ctx, endSpan := runtime.StartSpan(ctx, "Client.GetRawRegistrationState", c.tracer(), nil)
	defer func() { endSpan(err) }()
	req, err := c.newRequest(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(req, http.StatusOK)
	if err != nil {
		return nil, err
	}
	body, err := runtime.Payload(resp)
	return bytes.TrimSpace(body), err // the record, without the body's line end
}

// Streaming returns a client of the same DPS and credentials for reading
// long listings (exports, counts), over HTTP/1.1 connections of its own,
// and a func that closes them. One long response at a time is cheaper over
// HTTP/1.1 than over HTTP/2, whose framing and flow control cost both ends
// CPU per 16 KB frame: `registrations export` of 100,000 records ran about
// a third faster (docs/benchmarks.md, #13). The official Node and Python
// clients use HTTP/1.1 too. A client whose transport is not an *http.Client
// over an *http.Transport is returned as it is.
func (c *Client) Streaming() (*Client, func()) {
	hc, ok := c.opts.Transport.(*http.Client)
	if !ok {
		return c, func() {}
	}
	tr, ok := hc.Transport.(*http.Transport)
	if !ok {
		return c, func() {}
	}
	tr = tr.Clone()
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP1(true)
	if tr.TLSClientConfig != nil {
		// The original's config may already offer h2 by ALPN (net/http adds
		// it on first use); Clone copied the config, so this one is ours.
		tr.TLSClientConfig.NextProtos = nil
	}
	opts := c.opts
	opts.Transport = &http.Client{Transport: tr, Timeout: hc.Timeout}
	s, err := newClient(c.host, c.auth, &opts)
	if err != nil { // the options made c, so they make s
		return c, func() {}
	}
	s.sas = c.sas
	return s, tr.CloseIdleConnections
}

// Query pages (300 KB for 1,000 records) are read by wholeBody, in one
// buffer of the response's Content-Length, rather than by azcore's body
// download, whose io.ReadAll starts at 512 bytes and doubles: ten copies
// and zeroed buffers a page, 10–15 % of an export's CPU. wholeBody sits at
// the bottom of the pipeline, inside the retry policy: a page whose body
// breaks off is retried (a query is read-only), where azcore's body
// download gave up at once.
type wholeBody struct{ next policy.Transporter }

// wholeBodyKey marks, in a request's context, a request whose body
// wholeBody reads.
type wholeBodyKey struct{}

// withWholeBody marks the requests made with ctx; they skip azcore's body
// download, and pageBody returns their body.
func withWholeBody(ctx context.Context) context.Context {
	return context.WithValue(ctx, wholeBodyKey{}, true)
}

// readBody is a response body read whole.
type readBody struct {
	bytes.Reader
	b []byte
}

func (*readBody) Close() error { return nil }

func (t wholeBody) Do(req *http.Request) (*http.Response, error) {
	resp, err := t.next.Do(req)
	if err != nil || req.Context().Value(wholeBodyKey{}) == nil {
		return resp, err
	}
	var b []byte
	if n := resp.ContentLength; n > 0 && n <= maxPageBody {
		b = make([]byte, n)
		_, err = io.ReadFull(resp.Body, b)
	} else {
		b, err = io.ReadAll(resp.Body)
	}
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	body := &readBody{b: b}
	body.Reset(b)
	resp.Body = body
	return resp, nil
}

// maxPageBody bounds the buffer a Content-Length may ask for.
const maxPageBody = 64 << 20

// pageBody returns the body of a page response, read by wholeBody.
func pageBody(resp *http.Response) ([]byte, error) {
	if b, ok := resp.Body.(*readBody); ok {
		return b.b, nil
	}
	return runtime.Payload(resp)
}
