package dps

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// A page as a service might send it: odd spacing, escapes, brackets and
// quotes inside strings, nested objects and arrays.
const rawSamplePage = ` [ {"registrationId":"a","payload":{"s":"]},{\"x\":[1,2]"}} ,
	{"registrationId":"b\\","tags":[{"k":"v"},[]],"n":1.5e3}
	,{} ]
`

func TestSplitJSONArrayKeepsItemsByteForByte(t *testing.T) {
	got, err := splitJSONArray([]byte(rawSamplePage))
	if err != nil {
		t.Fatal(err)
	}
	var want []json.RawMessage // encoding/json's RawMessage is the exact bytes
	if err := json.Unmarshal([]byte(rawSamplePage), &want); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d items, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("item %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
	if items, err := splitJSONArray([]byte(" []\n")); err != nil || len(items) != 0 {
		t.Errorf("empty page: %v, %v", items, err)
	}
}

func TestSplitJSONArrayRefusesWhatIsNotAPage(t *testing.T) {
	for _, page := range []string{``, `{}`, `[`, `[{}`, `[{},]`, `[{} {}]`, `[{"a":"]}]`, `[{"a":[}]`, `[{}]x`, `[1]`, `[{}],`, `[{"a":"\"}]`} {
		if items, err := splitJSONArray([]byte(page)); err == nil {
			t.Errorf("%q: split into %q, want an error", page, items)
		}
	}
}

// FuzzSplitJSONArray checks that whatever the splitter accepts and
// encoding/json also accepts comes out as encoding/json's items, and that
// every valid array of objects is accepted.
func FuzzSplitJSONArray(f *testing.F) {
	f.Add([]byte(rawSamplePage))
	f.Add(samplePage(3))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := splitJSONArray(data)
		var want []json.RawMessage
		wantErr := json.Unmarshal(data, &want)
		objects := wantErr == nil
		for _, w := range want {
			objects = objects && len(w) > 0 && w[0] == '{'
		}
		if objects && err != nil {
			t.Fatalf("%q: refused a valid page: %v", data, err)
		}
		if err != nil || wantErr != nil {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("%q: %d items, want %d", data, len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("%q: item %d is %s, want %s", data, i, got[i], want[i])
			}
		}
	})
}

func TestRawPagerPassesItemsThrough(t *testing.T) {
	pages := map[string]string{"": rawSamplePage, "next": `[{"registrationId":"c"}]`}
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/registrations/g%201/query" && r.URL.EscapedPath() != "/registrations/g%201/query" {
			http.Error(w, r.URL.Path, http.StatusNotFound)
			return
		}
		token := r.Header.Get(headerContinuation)
		if token == "" {
			w.Header().Set(headerContinuation, "next")
		}
		w.Write([]byte(pages[token]))
	}, nil)
	var want []json.RawMessage
	json.Unmarshal([]byte(rawSamplePage), &want)
	want = append(want, json.RawMessage(`{"registrationId":"c"}`))
	var got []json.RawMessage
	pager := c.NewRawRegistrationStatePager("g 1", &PagerOptions{Prefetch: true})
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, page.Items...)
	}
	if len(got) != len(want) {
		t.Fatalf("%d items, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("item %d: %s, want %s", i, got[i], want[i])
		}
	}
}

func TestRawPagerSaysWhatIsWrongWithAPage(t *testing.T) {
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`[{"a":1}`)) }, nil)
	_, err := c.NewRawEnrollmentPager(nil).NextPage(context.Background())
	if err == nil || err.Error() != "dps: decode a NewRawEnrollmentPager page: the page is not a JSON array of objects" {
		t.Fatalf("err = %v", err)
	}
}

func TestStreamingClientSpeaksHTTP1(t *testing.T) {
	protos := make(chan int, 4)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		protos <- r.ProtoMajor
		w.Write([]byte(`[]`))
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	tr, err := NewTransport(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	if err != nil {
		t.Fatal(err)
	}
	opts := &ClientOptions{}
	opts.Transport = tr
	c, err := NewClientFromConnectionString(fmt.Sprintf("HostName=%s;SharedAccessKeyName=%s;SharedAccessKey=%s",
		strings.TrimPrefix(srv.URL, "https://"), testKeyName, testKeyB64), opts)
	if err != nil {
		t.Fatal(err)
	}
	s, done := c.Streaming()
	defer done()
	for _, client := range []*Client{c, s} {
		if _, err := client.NewRawEnrollmentPager(nil).NextPage(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if a, b := <-protos, <-protos; a != 2 || b != 1 {
		t.Errorf("HTTP/%d for the client, HTTP/%d for its streaming client; want 2 and 1", a, b)
	}
}

// BenchmarkSplitJSONArray cuts a page of 1,000 records, the most DPS sends.
func BenchmarkSplitJSONArray(b *testing.B) {
	page := samplePage(1000)
	b.SetBytes(int64(len(page)))
	for b.Loop() {
		if items, err := splitJSONArray(page); err != nil || len(items) != 1000 {
			b.Fatal(len(items), err)
		}
	}
}

// A page is read into one buffer of its Content-Length, not grown from 512
// bytes by doubling (ten copies of a 300 KB page), and a body that breaks
// off is still retried.
func TestRawPagerReadsAPageInOneBuffer(t *testing.T) {
	page := samplePage(1000)
	var calls atomic.Int32
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(page)))
		if calls.Add(1) == 1 {
			w.Write(page[:len(page)/2]) // the connection drops mid-body
			panic(http.ErrAbortHandler)
		}
		w.Write(page)
	}, nil)
	ctx := context.Background()
	p, err := c.NewRawRegistrationStatePager("g", nil).NextPage(ctx)
	if err != nil || len(p.Items) != 1000 || calls.Load() != 2 {
		t.Fatalf("%d items after %d requests, err %v; want 1000 after a retry", len(p.Items), calls.Load(), err)
	}
	var before, after runtime.MemStats
	const pages = 20
	runtime.ReadMemStats(&before)
	for range pages {
		if _, err := c.NewRawRegistrationStatePager("g", nil).NextPage(ctx); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / pages; per > uint64(len(page))*3/2 {
		t.Errorf("a %d-byte page allocated %d bytes; want less than 1.5 times the page", len(page), per)
	}
}
