package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/dpsconsole/dpsconsole/dps"
)

func TestRegistrationsCommands(t *testing.T) {
	c := newCLI(t)
	out := c.ok("registrations", "list", "--group", "hashed-fleet", "--page-size", "5")
	rows := strings.Split(strings.TrimSpace(out), "\n")
	if len(rows) != 37 || !strings.HasPrefix(rows[0], "REGISTRATION ID") || !strings.Contains(out, "fleet-sensor-036") {
		t.Fatalf("list: %d rows\n%s", len(rows), out)
	}
	var recs []dps.DeviceRegistrationState
	if err := json.Unmarshal([]byte(c.ok("registrations", "list", "--group", "retired-sensors", "-o", "json")), &recs); err != nil || len(recs) != 12 {
		t.Fatalf("list -o json: %d records, %v", len(recs), err)
	}
	c.fails(2, []string{"registrations", "list"}, "--group is required")

	var rec dps.DeviceRegistrationState
	if err := json.Unmarshal([]byte(c.ok("registrations", "show", "fleet-sensor-001", "-o", "json")), &rec); err != nil || rec.Status != dps.StatusAssigned || rec.ETag == "" {
		t.Fatalf("show: %+v %v", rec, err)
	}
	if out := c.ok("registrations", "show", "fleet-sensor-001"); !strings.Contains(out, rec.AssignedHub) {
		t.Errorf("show table:\n%s", out)
	}

	c.fails(2, []string{"registrations", "delete", "a", "b", "--etag", rec.ETag}, "one registration ID")
	c.fails(1, []string{"registrations", "delete", "fleet-sensor-001", "--etag", `"stale"`}, "412")
	errOut := c.fails(1, []string{"registrations", "delete", "fleet-sensor-001", "no-such-device", "fleet-sensor-002"},
		"deleted registration record fleet-sensor-001", "deleted registration record fleet-sensor-002")
	if !strings.Contains(errOut, `"no-such-device" does not exist`) || !strings.Contains(errOut, "1 of 3 deletes failed") {
		t.Errorf("stderr:\n%s", errOut)
	}
	c.fails(1, []string{"registrations", "show", "fleet-sensor-001"}, "does not exist")

	code, out, _ := c.run("registrations", "delete", "fleet-sensor-003", "fleet-sensor-001", "-o", "json")
	var res []deleted
	if code != 1 || json.Unmarshal([]byte(out), &res) != nil || len(res) != 2 || !res[0].Deleted || res[1].Deleted || res[1].ErrorCode/1000 != 404 {
		t.Errorf("delete -o json: exit %d\n%s", code, out)
	}
}
