package keys

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// benchIDs are realistic registration IDs (36 characters, like the tutorial's).
func benchIDs(n int) [][]byte {
	ids := make([][]byte, n)
	for i := range ids {
		ids[i] = fmt.Appendf(nil, "sn-%03d-888-abc-mac-a1-b2-c3-%012x", i%1000, i)
	}
	return ids
}

// BenchmarkDeriverAppend is the bulk hot path: validate, HMAC, base64.
// Target: ≤ 200 ns and 0 allocations per key on one core.
func BenchmarkDeriverAppend(b *testing.B) {
	d, err := NewDeriver(mustKey(b, tutorialGroupKey))
	if err != nil {
		b.Fatal(err)
	}
	ids := benchIDs(1024)
	buf := make([]byte, 0, DeviceKeyLen)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := d.AppendDeviceKey(buf, ids[i%len(ids)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeriverParallel runs the same on every core: ns/op is wall time
// per key with all cores busy.
func BenchmarkDeriverParallel(b *testing.B) {
	gk := mustKey(b, tutorialGroupKey)
	ids := benchIDs(1024)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		d, _ := NewDeriver(gk)
		buf := make([]byte, 0, DeviceKeyLen)
		for i := 0; pb.Next(); i++ {
			d.AppendDeviceKey(buf, ids[i%len(ids)])
		}
	})
}

// BenchmarkDeriveDeviceKey is the single-key path (a new HMAC per key), for
// comparison with the Deriver in the same run.
func BenchmarkDeriveDeviceKey(b *testing.B) {
	gk := mustKey(b, tutorialGroupKey)
	ids := benchIDs(1024)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := DeriveDeviceKey(gk, string(ids[i%len(ids)])); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeriveStream is the whole streaming path over 100,000 IDs in
// memory; ns/op divided by 100,000 is the wall time per key.
func BenchmarkDeriveStream(b *testing.B) {
	d, _ := NewDeriver(mustKey(b, tutorialGroupKey))
	var in bytes.Buffer
	for _, id := range benchIDs(100_000) {
		in.Write(id)
		in.WriteByte('\n')
	}
	b.SetBytes(int64(in.Len()))
	b.ReportAllocs()
	for b.Loop() {
		st, err := d.DeriveStream(bytes.NewReader(in.Bytes()), io.Discard, StreamOptions{})
		if err != nil || st.Derived != 100_000 {
			b.Fatal(st, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100_000, "ns/key")
}

func BenchmarkValidateRegistrationID(b *testing.B) {
	id := strings.Repeat("a-b.c_d:", 15) + "x"
	b.ReportAllocs()
	for b.Loop() {
		if err := ValidateRegistrationID(id); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignSAS is what every client request pays when it renews its token.
func BenchmarkSignSAS(b *testing.B) {
	k := mustKey(b, tutorialDevKey)
	exp := time.Unix(1700000000, 0)
	b.ReportAllocs()
	for b.Loop() {
		SignSAS("0ne00000A0A/registrations/"+tutorialRegID, k, "registration", exp)
	}
}

// BenchmarkParseVerifySAS is what the emulator pays per request.
func BenchmarkParseVerifySAS(b *testing.B) {
	k := mustKey(b, tutorialDevKey)
	resource := "0ne00000A0A/registrations/" + tutorialRegID
	tok := SignSAS(resource, k, "registration", time.Unix(1700000000, 0))
	now := time.Unix(1600000000, 0)
	b.ReportAllocs()
	for b.Loop() {
		sas, err := ParseSAS(tok)
		if err != nil {
			b.Fatal(err)
		}
		if err := sas.Verify(k, resource, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSASSigner is what a hub client request pays for its token: a
// new signature once a second, the cached one otherwise.
func BenchmarkSASSigner(b *testing.B) {
	s := NewSASSigner("hub.azure-devices.net/devices/"+tutorialRegID, mustKey(b, tutorialDevKey), "")
	b.ReportAllocs()
	for b.Loop() {
		s.Sign(time.Now().Add(time.Hour))
	}
}
