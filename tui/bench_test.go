package tui

import (
	"context"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/keys"
)

// BenchmarkGroupFirstPage1M opens a group of 1,000,000 registration records
// on the in-process emulator and measures the time until its first page is
// rendered: the view's Cmds run as the Program would run them, concurrently,
// and the clock stops when View shows records.
func BenchmarkGroupFirstPage1M(b *testing.B) {
	target, emu := startEmulator(b, 0)
	ctx := context.Background()
	const group = "million"
	_, err := target.Service.CreateOrUpdateEnrollmentGroup(ctx, dps.EnrollmentGroup{EnrollmentGroupID: group,
		Attestation: dps.AttestationMechanism{Type: dps.AttestationSymmetricKey, SymmetricKey: &dps.SymmetricKeyAttestation{
			PrimaryKey: dps.Secret(keys.GenerateKey().Base64()), SecondaryKey: dps.Secret(keys.GenerateKey().Base64())}}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := emu.SeedRegistrations(ctx, group, 1_000_000); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded 1,000,000 records in %s", time.Since(start).Round(time.Millisecond))
	c := testCommon(b, 120, 37)
	c.Target = target
	b.ResetTimer()
	for b.Loop() {
		v := newGroupView(c, group)
		v.SetSize(c.Width, c.Height)
		msgs := make(chan tea.Msg, 4)
		batch, ok := v.Init()().(tea.BatchMsg)
		if !ok {
			b.Fatal("Init should batch the group and its first page")
		}
		for _, cmd := range batch {
			go func() { msgs <- cmd() }()
		}
		for v.table.Loaded() == 0 {
			v.Update((<-msgs).(routed).msg)
		}
		if v.View() == "" {
			b.Fatal("nothing rendered")
		}
	}
}
