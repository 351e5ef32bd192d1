//go:build !race

// The race detector makes values escape, so allocation counts only hold
// without it.

package keys

import "testing"

func TestDeriverZeroAllocs(t *testing.T) {
	d := mustDeriver(t)
	id := []byte(tutorialRegID)
	buf := make([]byte, 0, DeviceKeyLen)
	if n := testing.AllocsPerRun(1000, func() { d.AppendDeviceKey(buf, id) }); n != 0 {
		t.Errorf("AppendDeviceKey allocates %.1f times per key, want 0", n)
	}
}
