package interop

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/dpsconsole/dpsconsole/dps/emulator"
)

// TestNodeServiceSDK runs js/service.js: azure-iot-provisioning-service
// against the emulator's service API.
func TestNodeServiceSDK(t *testing.T) {
	e := startEmulator(t, 21, emulator.Options{Seed: "none"})
	const group, n = "node-seeded", 12
	if err := e.SeedRegistrations(context.Background(), group, n); err != nil {
		t.Fatal(err)
	}
	out := runNode(t, e, "service.js", "SEEDED_GROUP="+group, "SEEDED_COUNT="+strconv.Itoa(n))
	for _, step := range []string{"ok create group", "ok read keys", "ok query groups", "ok update with the ETag", "ok individual enrollment", "ok bulk", "ok registration states", "ok 404s", "ok 401", "ok clean up"} {
		if !strings.Contains(out, step) {
			t.Errorf("step %q did not pass", step)
		}
	}
}
