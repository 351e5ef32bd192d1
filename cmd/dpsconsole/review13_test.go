package main

import (
	"strings"
	"testing"
)

// Outside review of #13.

// Two hub devices without a record are "2 hub devices without a
// registration record", not "2 hub device without a registration records".
func TestCleanupCountsUnregisteredDevicesInPlainEnglish(t *testing.T) {
	c := newCLI(t)
	c.ok("registrations", "delete", "fleet-sensor-001", "fleet-sensor-002")
	out := c.ok("cleanup", "--dry-run")
	if !strings.Contains(out, "2 hub devices without a registration record, kept") {
		t.Errorf("dry run:\n%s", out)
	}
}
