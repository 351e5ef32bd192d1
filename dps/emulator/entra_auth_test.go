package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/dpsconsole/dpsconsole/dps"
	hubapi "github.com/dpsconsole/dpsconsole/dps/hub"
	"github.com/dpsconsole/dpsconsole/keys"
)

// bearerClient sends requests through an azcore pipeline with the bearer
// token policy, as an Azure SDK client does.
type bearerClient struct {
	t  testing.TB
	pl runtime.Pipeline
}

func newBearerClient(t testing.TB, e *Emulator, cred azcore.TokenCredential, scope string) *bearerClient {
	o := entraClientOptions(t, e)
	pl := runtime.NewPipeline("emulatortest", "v0", runtime.PipelineOptions{
		PerRetry: []policy.Policy{runtime.NewBearerTokenPolicy(cred, []string{scope}, nil)},
	}, &policy.ClientOptions{Transport: o.Transport, Retry: policy.RetryOptions{MaxRetries: -1}})
	return &bearerClient{t: t, pl: pl}
}

func (c *bearerClient) do(method, url string, body any) (int, string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := runtime.NewRequest(ctx, method, url)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		b, _ := json.Marshal(body)
		if err := req.SetBody(streamingNopCloser(b), "application/json"); err != nil {
			c.t.Fatal(err)
		}
	}
	resp, err := c.pl.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

func streamingNopCloser(b []byte) nopCloser { return nopCloser{bytes.NewReader(b)} }

func dpsURL(e *Emulator, path string) string {
	return "https://" + e.Env().DeviceEndpoint + path + "?api-version=" + dps.APIVersion
}

func TestEntraBearerOnDPSServiceAPIEnforcesDataRoles(t *testing.T) {
	e, logs := startEntra(t, Options{Seed: "demo"})
	env := e.Env()
	scope := audienceDPS + "/.default"
	contributor := newBearerClient(t, e, secretCredential(t, e, env.ClientID, env.ClientSecret), scope)
	reader := newBearerClient(t, e, secretCredential(t, e, env.ReaderClientID, env.ReaderClientSecret), scope)
	group := dps.EnrollmentGroup{
		EnrollmentGroupID:  "entra-made",
		Attestation:        dps.AttestationMechanism{Type: dps.AttestationSymmetricKey, SymmetricKey: &dps.SymmetricKeyAttestation{}},
		ProvisioningStatus: dps.ProvisioningEnabled,
	}

	if st, body := contributor.do(http.MethodPut, dpsURL(e, "/enrollmentGroups/entra-made"), group); st != 200 {
		t.Fatalf("Contributor PUT: %d %s", st, body)
	}
	if st, body := reader.do(http.MethodGet, dpsURL(e, "/enrollmentGroups/entra-made"), nil); st != 200 || !strings.Contains(body, "entra-made") {
		t.Fatalf("Reader GET: %d %s", st, body)
	}
	if st, body := reader.do(http.MethodPost, dpsURL(e, "/enrollmentGroups/query"), dps.QuerySpecification{Query: "SELECT * FROM enrollmentGroups"}); st != 200 {
		t.Fatalf("Reader query: %d %s", st, body)
	}
	for _, tc := range []struct{ method, path, action string }{
		{http.MethodDelete, "/enrollmentGroups/" + TutorialGroupID, "Microsoft.Devices/provisioningServices/enrollmentGroups/delete"},
		{http.MethodPut, "/enrollmentGroups/reader-made", "Microsoft.Devices/provisioningServices/enrollmentGroups/write"},
		{http.MethodPost, "/enrollments", "Microsoft.Devices/provisioningServices/enrollments/write"},
		{http.MethodDelete, "/registrations/nobody", "Microsoft.Devices/provisioningServices/registrationStates/delete"},
		{http.MethodPost, "/enrollmentGroups/" + TutorialGroupID + "/attestationmechanism", "Microsoft.Devices/provisioningServices/attestationmechanism/details/action"},
	} {
		var body any
		if tc.method == http.MethodPut {
			body = group
		}
		st, resp := reader.do(tc.method, dpsURL(e, tc.path), body)
		var ed dps.ErrorDetails
		json.Unmarshal([]byte(resp), &ed)
		if st != http.StatusForbidden || ed.ErrorCode != codeForbidden || !strings.Contains(ed.Message, "'"+tc.action+"'") || !strings.Contains(ed.Message, e.entra.reader.objectID) || ed.TrackingID == "" {
			t.Errorf("Reader %s %s: %d %s\nwant 403 in DPS's shape naming %s", tc.method, tc.path, st, resp, tc.action)
		}
	}
	// The refused delete lost nothing.
	if st, _ := reader.do(http.MethodGet, dpsURL(e, "/enrollmentGroups/"+TutorialGroupID), nil); st != 200 {
		t.Errorf("the tutorial group is gone after a refused delete: %d", st)
	}
	if st, body := contributor.do(http.MethodDelete, dpsURL(e, "/enrollmentGroups/entra-made"), nil); st != 204 {
		t.Errorf("Contributor DELETE: %d %s", st, body)
	}
	// SAS still works beside the tokens.
	if resp, body := newSvc(t, e).req(http.MethodGet, "/enrollmentGroups/"+TutorialGroupID+"?api-version="+dps.APIVersion, nil); resp.StatusCode != 200 {
		t.Errorf("SAS GET: %d %s", resp.StatusCode, body)
	}
	checkRequestLog(t, logs.String(), "listener=dps")
}

// checkRequestLog: the debug request log has lines for bearer and SAS
// requests on the listener, with neither credential in it.
func checkRequestLog(t *testing.T, log, listener string) {
	t.Helper()
	for _, want := range []string{listener + ` method=`, `authorization="Bearer [REDACTED]"`, `authorization="SharedAccessSignature [REDACTED]"`} {
		if !strings.Contains(log, want) {
			t.Errorf("the request log lacks %s:\n%s", want, log)
		}
	}
	if strings.Contains(log, "Bearer ey") || strings.Contains(log, "sig=") {
		t.Errorf("a credential is in the log:\n%s", log)
	}
}

// badTokens are an expired token, one for the hub's audience, one with a
// changed signature and one signed by another emulator's key.
func badTokens(t *testing.T, e *Emulator, audience, otherAudience string) map[string]string {
	t.Helper()
	p := e.entra.contributor
	now := time.Now()
	sign := func(a *entraAuthority, aud string, at time.Time) string {
		tok, err := a.accessToken(p, p.clientID, aud, false, at)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := sign(e.entra, audience, now)
	other, _ := startEntra(t, Options{})
	otherSigned := &entraAuthority{base: e.entra.base, tenant: e.entra.tenant, key: other.entra.key, kid: other.entra.kid, lifetime: time.Hour} // same issuer, other key
	flipped := good[:len(good)-3] + map[bool]string{true: "AAA", false: "BBB"}[!strings.HasSuffix(good, "AAA")]
	return map[string]string{
		"expired":        sign(e.entra, audience, now.Add(-2*e.entra.lifetime)),
		"wrong audience": sign(e.entra, otherAudience, now),
		"bad signature":  flipped,
		"other key":      sign(otherSigned, audience, now),
		"not a JWT":      "abc.def",
	}
}

func TestEntraBadTokensGet401OnDPSAndHub(t *testing.T) {
	e, logs := startEntra(t, Options{})
	hubCS, _ := keys.ParseServiceConnectionString(e.Env().HubConnectionStrings[0])
	for name, tok := range badTokens(t, e, audienceDPS, audienceHub) {
		st, body := rawCall(t, e, http.MethodGet, dpsURL(e, "/enrollmentGroups/x"), "Bearer "+tok)
		var ed dps.ErrorDetails
		json.Unmarshal([]byte(body), &ed)
		if st != 401 || ed.ErrorCode != codeUnauthorized || strings.Contains(body, tok) {
			t.Errorf("DPS, %s: %d %s", name, st, body)
		}
	}
	for name, tok := range badTokens(t, e, audienceHub, audienceDPS) {
		st, body := rawCall(t, e, http.MethodGet, "https://"+hubCS.HostName+"/devices?api-version=2021-04-12", "Bearer "+tok)
		var eb hubapi.ErrorBody
		json.Unmarshal([]byte(body), &eb)
		if st != 401 || !strings.HasPrefix(eb.Message, "ErrorCode:IotHubUnauthorizedAccess;") || strings.Contains(body, tok) {
			t.Errorf("hub, %s: %d %s", name, st, body)
		}
	}
	if st, body := rawCall(t, e, http.MethodGet, dpsURL(e, "/enrollmentGroups/x"), "Bearer "+badTokens(t, e, audienceDPS, audienceHub)["expired"]); !strings.Contains(body, "expired") || st != 401 {
		t.Errorf("expired: %d %s, want the reason named", st, body)
	}
	if strings.Contains(logs.String(), "Bearer ey") {
		t.Error("a bearer token is in the log")
	}
}

func TestEntraBearerWithoutEntraIsRefused(t *testing.T) {
	e := startTest(t, Options{MQTTAddr: MQTTOff})
	st, body := rawCall(t, e, http.MethodGet, dpsURL(e, "/enrollmentGroups/x"), "Bearer abc.def.ghi")
	if st != 401 || !strings.Contains(body, "without --entra") {
		t.Errorf("%d %s", st, body)
	}
}

func TestEntraBearerOnHubServiceAPIEnforcesDataRoles(t *testing.T) {
	e, logs := startEntra(t, Options{Seed: "demo"})
	env := e.Env()
	scope := audienceHub + "/.default"
	contributor := newBearerClient(t, e, secretCredential(t, e, env.ClientID, env.ClientSecret), scope)
	reader := newBearerClient(t, e, secretCredential(t, e, env.ReaderClientID, env.ReaderClientSecret), scope)
	cs, _ := keys.ParseServiceConnectionString(env.HubConnectionStrings[0])
	hubURL := func(path string) string { return "https://" + cs.HostName + path + "?api-version=2021-04-12" }

	st, body := reader.do(http.MethodGet, hubURL("/devices"), nil)
	var devices []hubapi.Device
	if err := json.Unmarshal([]byte(body), &devices); st != 200 || err != nil || len(devices) == 0 {
		t.Fatalf("Reader lists devices: %d %s", st, body)
	}
	id := devices[0].DeviceID
	if st, body := reader.do(http.MethodGet, hubURL("/twins/"+id), nil); st != 200 {
		t.Errorf("Reader reads a twin: %d %s", st, body)
	}
	if st, body := reader.do(http.MethodPost, hubURL("/devices/query"), map[string]string{"query": "SELECT * FROM devices"}); st != 200 {
		t.Errorf("Reader queries: %d %s", st, body)
	}
	for _, tc := range []struct{ method, path string }{
		{http.MethodDelete, "/devices/" + id},
		{http.MethodPatch, "/twins/" + id},
		{http.MethodPost, "/twins/" + id + "/methods"},
	} {
		var b any = map[string]any{"methodName": "reboot", "responseTimeoutInSeconds": 5}
		if tc.method == http.MethodPatch {
			b = map[string]any{"tags": map[string]string{"x": "y"}}
		}
		st, body := reader.do(tc.method, hubURL(tc.path), b)
		want := "ErrorCode:IotHubUnauthorized;Principal " + e.entra.reader.objectID + " is not authorized for " + tc.method + " on " + tc.path + " due to no assigned permissions"
		if st != 401 || !strings.Contains(body, want) {
			t.Errorf("Reader %s %s: %d %s\nwant 401 %q", tc.method, tc.path, st, body, want)
		}
	}
	if st, body := contributor.do(http.MethodPatch, hubURL("/twins/"+id), map[string]any{"tags": map[string]string{"x": "y"}}); st != 200 {
		t.Errorf("Contributor patches the twin: %d %s", st, body)
	}
	if st, body := contributor.do(http.MethodDelete, hubURL("/devices/"+id), nil); st != 204 && st != 200 {
		t.Errorf("Contributor deletes: %d %s", st, body)
	}
	sas := keys.SignSAS(cs.HostName, cs.SharedAccessKey, cs.SharedAccessKeyName, time.Now().Add(time.Hour))
	if st, body := rawCall(t, e, http.MethodGet, hubURL("/devices"), sas); st != 200 {
		t.Errorf("SAS beside tokens: %d %s", st, body)
	}
	checkRequestLog(t, logs.String(), "listener="+cs.HostName)
}

func TestEntraDisableLocalAuthRefusesSASKeepsTokens(t *testing.T) {
	e, _ := startEntra(t, Options{Seed: "demo", DisableLocalAuth: true})
	env := e.Env()
	resp, body := newSvc(t, e).req(http.MethodGet, "/enrollmentGroups/"+TutorialGroupID+"?api-version="+dps.APIVersion, nil)
	var ed dps.ErrorDetails
	json.Unmarshal(body, &ed)
	if resp.StatusCode != 401 || ed.ErrorCode != codeUnauthorized || !strings.Contains(ed.Message, "local authentication") {
		t.Errorf("DPS with SAS: %d %s", resp.StatusCode, body)
	}
	cs, _ := keys.ParseServiceConnectionString(env.HubConnectionStrings[0])
	hubURL := "https://" + cs.HostName + "/devices?api-version=2021-04-12"
	sas := keys.SignSAS(cs.HostName, cs.SharedAccessKey, cs.SharedAccessKeyName, time.Now().Add(time.Hour))
	if st, body := rawCall(t, e, http.MethodGet, hubURL, sas); st != 401 || !strings.Contains(body, "IotHubUnauthorizedAccess") || !strings.Contains(body, "local authentication") {
		t.Errorf("hub with SAS: %d %s", st, body)
	}
	cred := secretCredential(t, e, env.ClientID, env.ClientSecret)
	if st, body := newBearerClient(t, e, cred, audienceDPS+"/.default").do(http.MethodGet, dpsURL(e, "/enrollmentGroups/"+TutorialGroupID), nil); st != 200 {
		t.Errorf("DPS with a token: %d %s", st, body)
	}
	if st, body := newBearerClient(t, e, cred, audienceHub+"/.default").do(http.MethodGet, hubURL, nil); st != 200 {
		t.Errorf("hub with a token: %d %s", st, body)
	}
}
