package device_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/hub"
)

// twin reads deviceID's twin from the hub with host name hubHost.
func (f *fixture) twin(t *testing.T, hubHost, deviceID string) hub.Twin {
	t.Helper()
	for _, cs := range f.em.Env().HubConnectionStrings {
		reg, err := hub.NewRegistryClientFromConnectionString(cs, &hub.ClientOptions{ClientOptions: f.options})
		if err != nil {
			t.Fatal(err)
		}
		if reg.Host() == hubHost {
			tw, err := reg.GetTwin(t.Context(), deviceID)
			if err != nil {
				t.Fatal(err)
			}
			return tw
		}
	}
	t.Fatalf("no hub %q", hubHost)
	return hub.Twin{}
}

// wantTwin checks a twin's tags and desired properties (without their
// $version), compared as JSON.
func wantTwin(t *testing.T, tw hub.Twin, tags, desired string) {
	t.Helper()
	got := []byte("{}") // IoT Hub leaves out empty tags
	if len(tw.Tags) > 0 {
		got, _ = json.Marshal(tw.Tags)
	}
	var gotDesired []byte
	if tw.Properties != nil {
		d := maps.Clone(tw.Properties.Desired)
		delete(d, "$version")
		gotDesired, _ = json.Marshal(d)
	}
	if string(got) != tags || string(gotDesired) != desired {
		t.Errorf("twin of %s: tags %s desired %s, want %s %s", tw.DeviceID, got, gotDesired, tags, desired)
	}
}

func initialTwin(tags, desired dps.TwinCollection) *dps.InitialTwin {
	return &dps.InitialTwin{Tags: tags, Properties: &dps.InitialTwinProperties{Desired: desired}}
}

func TestEnrollmentInitialTwinLandsInTwin(t *testing.T) {
	t.Parallel()
	f := start(t, 0)
	gk := f.group(t, dps.EnrollmentGroup{EnrollmentGroupID: "twinned",
		// A null removes a property in a twin; clients round-trip the
		// TwinCollection metadata fields as null.
		InitialTwin: initialTwin(dps.TwinCollection{"site": "oslo", "version": nil}, dps.TwinCollection{"interval": 30, "count": nil})})
	st, _, err := f.register(t, "dev-1", derive(t, gk, "dev-1"), "")
	if err != nil {
		t.Fatal(err)
	}
	tw := f.twin(t, st.AssignedHub, "dev-1")
	wantTwin(t, tw, `{"site":"oslo"}`, `{"interval":30}`)
	if tw.DeviceID != "dev-1" || tw.ETag == "" || tw.Version != 1 || len(tw.Properties.Reported) != 1 || tw.Properties.Reported["$version"] != 1.0 {
		t.Errorf("twin = %+v, want deviceId, etag, version 1 and empty reported properties ($version 1)", tw)
	}

	// The registry query returns the same twins.
	for _, cs := range f.em.Env().HubConnectionStrings {
		reg, _ := hub.NewRegistryClientFromConnectionString(cs, &hub.ClientOptions{ClientOptions: f.options})
		if reg.Host() != st.AssignedHub {
			continue
		}
		p, err := reg.NewDevicePager(nil).NextPage(t.Context())
		if err != nil || len(p.Items) != 1 {
			t.Fatalf("query: %+v, %v", p, err)
		}
		wantTwin(t, p.Items[0], `{"site":"oslo"}`, `{"interval":30}`)
	}

	// An individual enrollment's twin works the same; none gives an empty twin.
	for _, c := range []struct {
		rid           string
		twin          *dps.InitialTwin
		tags, desired string
	}{
		{"ind-1", initialTwin(dps.TwinCollection{"kind": "single"}, nil), `{"kind":"single"}`, `{}`},
		{"ind-2", nil, `{}`, `{}`},
	} {
		_, key := f.enrollment(t, dps.IndividualEnrollment{RegistrationID: c.rid, InitialTwin: c.twin})
		st, _, err := f.register(t, c.rid, key, "")
		if err != nil {
			t.Fatal(err)
		}
		wantTwin(t, f.twin(t, st.AssignedHub, c.rid), c.tags, c.desired)
	}
}

func TestWebhookInitialTwinWins(t *testing.T) {
	t.Parallel()
	f := start(t, 0)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req dps.AllocationRequest
		json.NewDecoder(r.Body).Decode(&req)
		ans := dps.AllocationResponse{IoTHubHostName: req.LinkedHubs[0]}
		if req.DeviceRuntimeContext.RegistrationID == "hooked" {
			ans.InitialTwin = initialTwin(dps.TwinCollection{"from": "webhook"}, dps.TwinCollection{"mode": "eco"})
		}
		json.NewEncoder(w).Encode(ans)
	}))
	defer hook.Close()
	gk := f.group(t, dps.EnrollmentGroup{EnrollmentGroupID: "custom", AllocationPolicy: dps.AllocationCustom,
		CustomAllocationDefinition: &dps.CustomAllocationDefinition{WebhookURL: hook.URL, APIVersion: "2021-10-01"},
		InitialTwin:                initialTwin(dps.TwinCollection{"from": "enrollment"}, dps.TwinCollection{"mode": "normal"})})
	for rid, want := range map[string][2]string{
		"hooked": {`{"from":"webhook"}`, `{"mode":"eco"}`},
		"plain":  {`{"from":"enrollment"}`, `{"mode":"normal"}`}, // no initialTwin in the answer
	} {
		st, _, err := f.register(t, rid, derive(t, gk, rid), "")
		if err != nil {
			t.Fatal(err)
		}
		wantTwin(t, f.twin(t, st.AssignedHub, rid), want[0], want[1])
	}
}
