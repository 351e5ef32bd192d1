package keys

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func mustDeriver(t testing.TB) *Deriver {
	t.Helper()
	d, err := NewDeriver(mustKey(t, tutorialGroupKey))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDeriverMatchesDeriveDeviceKey(t *testing.T) {
	d := mustDeriver(t)
	gk := mustKey(t, tutorialGroupKey)
	for _, id := range append([]string{tutorialRegID, strings.Repeat("z", 55), strings.Repeat("y", 56), strings.Repeat("x", 128)}, func() (s []string) {
		for _, b := range benchIDs(50) {
			s = append(s, string(b))
		}
		return s
	}()...) {
		want, err := DeriveDeviceKey(gk, id)
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.DeviceKey(id)
		if err != nil || !got.Equal(want) {
			t.Errorf("%q: DeviceKey differs", id)
		}
		b, err := d.AppendDeviceKey([]byte("prefix,"), []byte(id))
		if err != nil || string(b) != "prefix,"+want.Base64() {
			t.Errorf("%q: AppendDeviceKey = %q, want prefix,%s", id, b, want.Base64())
		}
	}
	if k, _ := d.DeviceKey(tutorialRegID); k.Base64() != tutorialDevKey {
		t.Errorf("tutorial vector: %s", k.Base64())
	}
	if _, err := d.AppendDeviceKey(nil, []byte("bad id")); err == nil {
		t.Error("AppendDeviceKey accepted an invalid ID")
	}
	if _, err := NewDeriver(Key{}); !errors.Is(err, ErrNoGroupKey) {
		t.Errorf("NewDeriver(zero) = %v", err)
	}
	if _, err := DeriveDeviceKey(Key{}, "a"); !errors.Is(err, ErrNoGroupKey) {
		t.Errorf("DeriveDeviceKey(zero) = %v", err)
	}
}

// The reference path (crypto/hmac, used without the SHA extensions or if the
// fast path's self-check ever fails) must give the same keys.
func TestDeriverReferencePath(t *testing.T) {
	d := mustDeriver(t)
	if d.fast == nil && sha256Digest != nil {
		t.Fatal("the SHA-256 assembly failed the Deriver's self-check")
	}
	ref := mustDeriver(t)
	ref.useReference()
	for _, id := range benchIDs(100) {
		if a, b := string(d.appendKey(nil, id)), string(ref.appendKey(nil, id)); a != b {
			t.Fatalf("%s: fast %s, reference %s", id, a, b)
		}
	}
	if k, _ := ref.DeviceKey(tutorialRegID); k.Base64() != tutorialDevKey {
		t.Errorf("reference path: %s", k.Base64())
	}
}

func TestDeriverMasked(t *testing.T) {
	d := mustDeriver(t)
	d.DeviceKey(tutorialRegID)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%d", "%x"} {
		if s := fmt.Sprintf(verb, d); s != "keys.Deriver{"+Mask+"}" {
			t.Errorf("%s: %s", verb, s)
		}
	}
}

// stream runs DeriveStream and returns its output, the reported lines and stats.
func stream(t *testing.T, d *Deriver, r io.Reader, opts StreamOptions) (string, []LineError, StreamStats) {
	t.Helper()
	var out bytes.Buffer
	var bad []LineError
	opts.OnInvalid = func(e LineError) { bad = append(bad, e) }
	st, err := d.DeriveStream(r, &out, opts)
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), bad, st
}

func TestDeriveStreamLines(t *testing.T) {
	d := mustDeriver(t)
	key := func(id string) string { k, _ := d.DeviceKey(id); return k.Base64() }
	in := "\uFEFFdev-1\r\n" + // BOM and CRLF
		"\n" +
		"# a comment\n" +
		"   \t\n" +
		"  dev-2  \n" + // surrounding white space trimmed
		"bad id\n" +
		"  # indented comment\n" +
		"Dev-3\n" +
		"dev.\n" +
		"dev-4" // no final newline
	for _, r := range []io.Reader{strings.NewReader(in), iotest.OneByteReader(strings.NewReader(in)), iotest.HalfReader(strings.NewReader(in))} {
		out, bad, st := stream(t, d, r, StreamOptions{})
		want := CSVHeader + "dev-1," + key("dev-1") + "\ndev-2," + key("dev-2") + "\nDev-3," + key("Dev-3") + "\ndev-4," + key("dev-4") + "\n"
		if out != want {
			t.Errorf("output:\n%s\nwant:\n%s", out, want)
		}
		if len(bad) != 2 || bad[0].Line != 6 || bad[1].Line != 9 || !strings.Contains(bad[0].Error(), "line 6: invalid registration ID: character 4: a space") || !strings.Contains(bad[1].Error(), "ends with '.'") {
			t.Errorf("reported %v", bad)
		}
		if st != (StreamStats{Derived: 4, Invalid: 2, UpperCase: 1, FirstUpperCase: 8}) {
			t.Errorf("stats %+v", st)
		}
	}
}

func TestDeriveStreamJSON(t *testing.T) {
	d := mustDeriver(t)
	out, _, _ := stream(t, d, strings.NewReader(tutorialRegID+"\nb\n"), StreamOptions{Format: FormatJSONLines})
	sc := bufio.NewScanner(strings.NewReader(out))
	var recs []map[string]string
	for sc.Scan() {
		var m map[string]string
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%q: %v", sc.Text(), err)
		}
		recs = append(recs, m)
	}
	if len(recs) != 2 || recs[0]["registration_id"] != tutorialRegID || recs[0]["device_key"] != tutorialDevKey || recs[1]["registration_id"] != "b" {
		t.Errorf("records %v", recs)
	}
	if _, err := d.DeriveStream(strings.NewReader("a"), io.Discard, StreamOptions{Format: "xml"}); err == nil {
		t.Error("unknown format accepted")
	}
}

// Many blocks through many workers must come out in input order, with every
// invalid line reported by its number.
func TestDeriveStreamOrderAndErrors(t *testing.T) {
	d := mustDeriver(t)
	const n = 60_000 // about 8 blocks
	var in strings.Builder
	var want strings.Builder
	want.WriteString(CSVHeader)
	var wantBad []int
	buf := make([]byte, 0, DeviceKeyLen)
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("device-%07d-abcdefghijklmnopqrstuvwxyz", i)
		if i%997 == 0 {
			id = "bad/" + id
			wantBad = append(wantBad, i)
		} else {
			k, _ := d.AppendDeviceKey(buf, []byte(id))
			fmt.Fprintf(&want, "%s,%s\n", id, k)
		}
		in.WriteString(id + "\n")
	}
	for _, workers := range []int{1, 3, 8} {
		out, bad, st := stream(t, d, strings.NewReader(in.String()), StreamOptions{Workers: workers})
		if out != want.String() {
			t.Errorf("workers=%d: output differs from the sequential derivation", workers)
		}
		var got []int
		for _, e := range bad {
			got = append(got, e.Line)
		}
		if fmt.Sprint(got) != fmt.Sprint(wantBad) || st.Derived != n-len(wantBad) {
			t.Errorf("workers=%d: bad lines %v, want %v; stats %+v", workers, got, wantBad, st)
		}
	}
}

func TestDeriveStreamOverlongLine(t *testing.T) {
	d := mustDeriver(t)
	long := strings.Repeat("a", 3*blockSize+17)
	in := "first\n" + long + "\nafter\n" + strings.Repeat("b", 200) + "\nlast"
	for _, name := range []string{"newline", "eof"} {
		src := in
		if name == "eof" {
			src = "first\n" + long // the overlong line is the last
		}
		out, bad, st := stream(t, d, strings.NewReader(src), StreamOptions{})
		if name == "eof" {
			if len(bad) != 1 || bad[0].Line != 2 || st.Derived != 1 {
				t.Errorf("eof: bad %v, stats %+v", bad, st)
			}
			continue
		}
		if len(bad) != 2 || bad[0].Line != 2 || !strings.Contains(bad[0].Error(), "longer than") || bad[1].Line != 4 || !strings.Contains(bad[1].Error(), "200 characters long") {
			t.Errorf("bad %v", bad)
		}
		if !strings.Contains(out, "\nfirst,") || !strings.Contains(out, "\nafter,") || !strings.Contains(out, "\nlast,") || st.Derived != 3 {
			t.Errorf("output %q, stats %+v", out, st)
		}
	}
}

type failWriter struct{ after int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.after <= 0 {
		return 0, errors.New("disk full")
	}
	w.after--
	return len(p), nil
}

func TestDeriveStreamIOErrors(t *testing.T) {
	d := mustDeriver(t)
	big := strings.Repeat(tutorialRegID+"\n", 100_000)
	before := runtime.NumGoroutine()
	for _, after := range []int{0, 1, 3} {
		if _, err := d.DeriveStream(strings.NewReader(big), &failWriter{after: after}, StreamOptions{}); err == nil || err.Error() != "disk full" {
			t.Errorf("write error after %d writes: %v", after, err)
		}
	}
	r := io.MultiReader(strings.NewReader("a\nb\n"), iotest.ErrReader(errors.New("read failed")))
	var out bytes.Buffer
	if _, err := d.DeriveStream(r, &out, StreamOptions{}); err == nil || err.Error() != "read failed" {
		t.Errorf("read error: %v", err)
	}
	// No goroutine may outlive the call.
	for i := 0; runtime.NumGoroutine() > before && i < 100; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before {
		t.Errorf("%d goroutines left running", g-before)
	}
}
